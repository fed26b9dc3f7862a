// Measured complexity of attention variants: time and peak memory of the fast path (no trace)
// over a range of lengths, with log-log slopes — what `attnlab-cli bench` writes and the curves
// panel will plot (issue 6).
//
//   per (variant, length): random q, k, v [heads, L, dim] from the seed; one warm-up call, then
//   `repeats` timed calls; median / min / max ms; peak bytes the engine's tensors held during a
//   call (memory::peak_bytes after reset_peak, cached blocks released first) — the inputs are
//   allocated before and not counted.
//   refusals: a length whose inputs alone exceed the engine's allocation limit is not run; a call
//   that runs out of the engine's memory (ResourceError) is recorded as such; once a variant's
//   median exceeds the time budget, its longer lengths are skipped. Each is a row with a status,
//   so a plot can mark the frontier.
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

struct ComplexityOptions {
  std::vector<std::string> variants;   // registered names, default parameters
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
};

struct ComplexityRow {
  std::string variant;
  std::int64_t length = 0;
  std::string device;    // "cpu" | "cuda"
  std::string status;    // "ok", "out of memory: …", "skipped: …"
  double median_ms = 0, min_ms = 0, max_ms = 0;
  std::int64_t peak_bytes = 0;
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

// Throws ParamError for an unknown variant or an option out of range, DeviceError when CUDA is
// asked for where there is none (or a variant without a GPU kernel), CancelledError.
ComplexityResult run_complexity(ComplexityOptions options);

// Slopes over the largest half (at least two) of the "ok" rows of `variant`, by length.
ComplexityFit fit_complexity(const std::string& variant, const std::vector<ComplexityRow>& rows);

// {"machine": {...}, "options": {...}, "rows": [...], "fits": [...]}
nlohmann::json complexity_to_json(const ComplexityOptions& options, const ComplexityResult& result);

}  // namespace attnlab
