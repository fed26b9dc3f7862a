// Autoregressive decoding speed: generating N tokens one at a time with exact softmax attention
// (a KV cache, and — for reference — recomputing the causal prefix without a cache) against the
// recurrent forms of the kernel variants ("Transformers are RNNs", Katharopoulos et al. 2020,
// §3.4: the state S_t = S_{t−1} + φ(k_t) v_tᵀ and z_t = z_{t−1} + φ(k_t) make every step O(1) in t).
// What `attnlab-cli decoding` writes, attnlab-bench prints and the curves panel plots.
//
// Per method and N: q, k, v [heads, N, dim] from the seed (the projections of the generated
// tokens, drawn up front so that only attention is timed); step t attends query t to keys
// 0 … t and appends key t (KV cache: to the cache; recurrent: into the state). One warm-up run,
// then `repeats` timed runs of all N steps; tokens/s = N / median seconds. state_bytes: what the
// method holds after N steps (cache [2, H, N, d] or state [H, F, dv] + z [H, F]), from the
// memory meter. Each step loop runs on one thread (a step is microseconds; the no-cache step's
// softmax uses the engine's threads), with no allocation inside it except the no-cache method's
// prefix copies. Sizes that would not fit in memory are refused before running.
//
// Methods: "softmax_kv_cache", "softmax_no_cache" (step t recomputes causal attention over the
// whole prefix: O(t²·d) per step; skipped past the time budget), "linear_recurrent" (φ = elu + 1),
// "performer_recurrent" (m = 64 positive orthogonal random features, the variant's defaults).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/tensor.h"

namespace attnlab {

// The method names above, in the order plots list them.
const std::vector<std::string>& decoding_methods();

struct DecodingRow {
  std::string method;
  std::int64_t tokens = 0;
  std::string status;  // "ok", "out of memory: …", "skipped: …"
  double median_ms = 0, min_ms = 0, max_ms = 0;  // all N steps
  double tokens_per_second = 0;                  // N / median
  double last_step_us = 0;                       // median time of the final step (the cost at position N)
  std::int64_t state_bytes = 0;                  // cache (no cache: the keys and values kept) or state after N steps
};

struct DecodingOptions {
  std::vector<std::string> methods;    // from decoding_methods()
  std::vector<std::int64_t> tokens;    // N values, distinct, 1 … 2^20; sorted ascending
  int dim = 64;                        // 1 … 512
  int heads = 1;                       // 1 … 64
  int repeats = 3;                     // 1 … 100
  double time_budget_ms = 60000;       // per run of N steps: a run past it stops ("skipped: over the time
                                       // budget …") and longer N of that method are skipped
  std::uint64_t seed = 1;
  const CancelToken* cancel = nullptr;
  std::function<void(int done, int total)> progress;
  std::function<void(const DecodingRow&)> on_row;  // each row as soon as it is measured (the caller's thread)
};

// Throws ParamError for an unknown method or an option out of range, CancelledError.
std::vector<DecodingRow> run_decoding(DecodingOptions options);

// The per-step outputs of `method`'s step loop, [H, N, dv], for q, k [H, N, d] and v [H, N, dv]
// (the seed draws performer's features as the performer variant does): row t of each head is
// what step t produced. For tests against the variants' causal forward passes. Throws ParamError
// for an unknown method, ShapeError for shapes that disagree.
Tensor decode_outputs(const std::string& method, const Tensor& q, const Tensor& k, const Tensor& v, std::uint64_t seed);

// {"machine": {...}, "options": {...}, "rows": [...]}
nlohmann::json decoding_to_json(const DecodingOptions& options, const std::vector<DecodingRow>& rows);

}  // namespace attnlab
