// The attention-variant contract.
//
// A variant is one file that declares a VariantSpec (name, paper, hyperparameter schema) and
// implements forward(). Shapes, for H heads, Lq queries, Lk keys:
//   q: [H, Lq, d]   k: [H, Lk, d]   v: [H, Lk, dv]   ->   output: [H, Lq, dv]
// With a Trace, forward() also fills trace->weights [H, Lq, Lk] with the dense matrix it
// effectively applied (for kernel methods: the implied normalised matrix) and, where the
// variant has them, its own typed extras. Without a trace it takes its fast path.
//
// Every variant also states its memory cost model, workspace_bytes(): what its forward allocates
// in engine tensors (core/tensor.h, and the other buffers the memory meter counts) beyond its
// inputs, at the peak. Benchmarks refuse a size whose estimate would not fit before running it.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "attention/params.h"
#include "core/cancel.h"
#include "core/tensor.h"

namespace attnlab {

struct VariantSpec {
  std::string name;   // registry key, fixed forever: "softmax", "reformer_lsh", ...
  std::string title;  // "Exact softmax attention"
  std::string paper;  // "Vaswani et al. 2017, Attention Is All You Need"
  std::string summary;  // one sentence for tooltips
  std::vector<ParamSpec> params;
};

struct AttentionInput {
  const Tensor& q;  // [H, Lq, d]
  const Tensor& k;  // [H, Lk, d]
  const Tensor& v;  // [H, Lk, dv]
  bool causal = false;                            // query i sees keys j <= i (needs Lq == Lk)
  const std::vector<std::uint8_t>* key_padding = nullptr;  // [Lk]; nonzero = padded, never attended
  const Params* params = nullptr;                 // validated values for this variant's schema
  std::uint64_t seed = 0;                         // for every random draw of the variant
  const CancelToken* cancel = nullptr;
};

// Family-specific trace data (LSH buckets, routing clusters, block types, ...). A view checks
// kind() to know whether it can draw a trace.
class TraceExtras {
 public:
  virtual ~TraceExtras() = default;
  virtual std::string_view kind() const = 0;
  virtual nlohmann::json to_json() const = 0;
};

struct Trace {
  Tensor weights;  // [H, Lq, Lk]; rows with at least one visible key sum to 1; empty for a layer without attention
  std::shared_ptr<const TraceExtras> extras;  // the attention variant's own (LSH buckets, clusters, ...)
  // Filled by model layers, never by attention variants: what the layer around the attention
  // decided — halting, experts, block-recurrent state, memories, EMA kernels — one entry per part,
  // told apart by kind().
  std::vector<std::shared_ptr<const TraceExtras>> layer_extras;

  // The first layer extra of the given kind, or null.
  const TraceExtras* layer_extra(std::string_view kind) const {
    for (const auto& e : layer_extras) {
      if (e && e->kind() == kind) return e.get();
    }
    return nullptr;
  }
};

// The sizes a cost model needs: q [heads, lq, d], k [heads, lk, d], v [heads, lk, dv]; the mask
// and the path (trace = true: the traced path with its dense weights and extras).
struct AttentionShape {
  std::int64_t heads = 1, lq = 1, lk = 1, d = 1, dv = 1;
  bool causal = false;
  bool trace = false;
};

// Bytes of `count` float32 values, the unit of most cost models.
constexpr std::int64_t float_bytes(std::int64_t count) { return count * static_cast<std::int64_t>(sizeof(float)); }

class Attention {
 public:
  virtual ~Attention() = default;
  virtual const VariantSpec& spec() const = 0;
  // Called with validated input (see validate_attention_input); may throw ParamError for
  // combinations of values the schema cannot express, and CancelledError.
  virtual Tensor forward(const AttentionInput& input, Trace* trace) const = 0;
  // The cost model: the most bytes of engine tensors forward() holds at once beyond its inputs
  // (output, trace weights and extras included), for this shape and these validated parameters,
  // on this machine's thread count, without key padding. An upper bound that stays within about
  // 2x of the measured peak (tests/engine/test_cost_model.cpp). Throws ParamError or ShapeError
  // where forward would refuse these parameters or this shape.
  virtual std::int64_t workspace_bytes(const AttentionShape& shape, const Params& params) const = 0;
};

// Checks ranks, matching head counts and dims, causal needing Lq == Lk, padding length, and
// that every value is finite; throws ShapeError / ParamError naming the tensor and its shape.
void validate_attention_input(const AttentionInput& input);

// True when key `key` is padded (never attended); no padding vector means none is.
inline bool is_key_padded(const std::vector<std::uint8_t>* padding, std::int64_t key) {
  return padding && (*padding)[static_cast<std::size_t>(key)];
}

// A tensor as nested JSON arrays (one level per axis), for trace extras' to_json().
nlohmann::json tensor_to_json(const Tensor& t);

// Validates the input (and fills in default params if none were given), then runs `variant`.
Tensor run_attention(const Attention& variant, const AttentionInput& input, Trace* trace);

}  // namespace attnlab
