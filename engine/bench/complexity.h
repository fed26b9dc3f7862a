// Measured complexity of attention variants: time and peak memory of the fast path (no trace)
// over a range of lengths, with log-log slopes — what `attnlab-cli bench` writes and the curves
// panel will plot (issue 6).
//
//   per (variant, length): random q, k, v [heads, L, dim] from the seed; one warm-up call, then
//   `repeats` timed calls; median / min / max ms; peak bytes the engine's tensors held during a
//   call (memory::peak_bytes after reset_peak, cached blocks released first) — the inputs are
//   allocated before and not counted — and the growth of the process high-water mark over the
//   warm-up call (VmHWM reset first, freed heap pages handed back).
//   per ("model:NAME", length): the preset's whole forward pass (seeded weights, built once; its
//   max_length raised to the longest length, at most 2^20) on L token ids cycling through the
//   vocabulary, causal as asked, no traces, "inherit" layers running softmax; timed the same way.
//   on CUDA a model runs on the GPU end to end (cuda/device_model.h: weights uploaded once,
//   fp32); its time is the pass's CUDA-event time and peak_bytes the GPU bytes its device
//   allocator held at the pass's peak beyond the weights.
//   estimate, before running: a variant's cost model (Attention::workspace_bytes, engine tensors
//   only, comparable with peak_bytes); a model's estimate_forward_bytes (its Eigen activations
//   too, which the meter does not see: compare it with high_water_bytes); on CUDA the output
//   copied back to the host.
//   refusals: a length whose estimate plus inputs exceeds the engine's allocation limit or the
//   memory the system has available (MemAvailable) is not run ("skipped: needs about X (cost
//   model), more than the Y available"); a call that runs out of memory (ResourceError,
//   bad_alloc) is recorded as such; a length whose call is predicted to exceed the time budget
//   (the last measured time extrapolated with the last measured slope, clamped to [1, 3]) is not
//   started ("skipped: predicted …"), and once a variant's median exceeds the budget or a length
//   was predicted to, its longer lengths are skipped. Each is a row with a status, so a plot can mark the frontier.
//   fits: least squares of log(median_ms) and log(peak_bytes) on log(L) over the largest half of
//   the lengths that ran (at least two).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/device.h"

namespace attnlab {

struct ComplexityRow;

struct ComplexityOptions {
  // Registered attention variants (default parameters), and model presets as "model:NAME"
  // (the whole forward pass of builtin_model(NAME), seeded weights, no traces, L token ids;
  // heads/dim do not apply to a model, its config does).
  std::vector<std::string> variants;
  std::vector<std::int64_t> lengths;   // distinct, 2 … 2^24; sorted ascending by run_complexity
  int dim = 64;                        // 1 … 512
  int heads = 1;                       // 1 … 64
  bool causal = false;
  int repeats = 5;                     // 1 … 1000
  double time_budget_ms = 60000;       // per call; longer lengths of a variant past it are skipped
  DevicePreference device = DevicePreference::Cpu;
  std::uint64_t seed = 1;
  const CancelToken* cancel = nullptr;
  std::function<void(int done, int total)> progress;
  std::function<void(const ComplexityRow&)> on_row;  // each row as soon as it is measured (the caller's thread)
};

struct ComplexityRow {
  std::string variant;
  std::int64_t length = 0;
  std::string device;    // "cpu" | "cuda"
  std::string status;    // "ok", "out of memory: …", "skipped: …"
  double median_ms = 0, min_ms = 0, max_ms = 0;
  std::int64_t peak_bytes = 0;       // engine tensors during a call, beyond the inputs (memory meter)
  std::int64_t estimated_bytes = 0;  // the cost model's estimate made before running (see refusals)
  std::int64_t high_water_bytes = 0; // growth of the process high-water mark (VmHWM) over the run; 0 if unknown
};

struct ComplexityFit {
  std::string variant;
  double time_slope = 0, memory_slope = 0;
  int points = 0;  // lengths the fit used; fewer than 2: no fit
};

struct ComplexityResult {
  std::vector<ComplexityRow> rows;
  std::vector<ComplexityFit> fits;
};

// Throws ParamError for an unknown variant or model or an option out of range (and, on CUDA, for
// a model with a layer that has no GPU path: cuda/device_model.h), DeviceError when CUDA is asked
// for where there is none (or a variant without a GPU kernel),
// CancelledError. on_row and progress are called from the calling thread after every row.
ComplexityResult run_complexity(ComplexityOptions options);

// Slopes over the largest half (at least two) of the "ok" rows of `variant`, by length.
ComplexityFit fit_complexity(const std::string& variant, const std::vector<ComplexityRow>& rows);

// {"machine": {...}, "options": {...}, "rows": [...], "fits": [...]}
nlohmann::json complexity_to_json(const ComplexityOptions& options, const ComplexityResult& result);

}  // namespace attnlab
