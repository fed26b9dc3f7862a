// The approximation lab's measurements: a variant against exact softmax on the same inputs, once
// (compare_variant) or over a sweep of one hyperparameter averaged over seeds (run_sweep), with
// log-log slopes fitted to the error curves. Used by the lab view and `attnlab-cli compare|sweep`.
//
// Sweep inputs: for seed s, q, k, v ~ Normal(0, 1) of shape [heads, length, dim] drawn from
// derive(seed, "inputs/s"); the variant's own random draws use derive(seed, "variant/s"), so every
// value of the swept parameter meets the same inputs and the same seeds.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/approximation.h"
#include "attention/attention.h"

namespace attnlab {

// Runs `variant` (traced) and exact softmax on the same q, k, v; throws what the variant throws.
ApproximationMetrics compare_variant(const Attention& variant, const Params& params, const Tensor& q, const Tensor& k,
                                     const Tensor& v, bool causal, std::uint64_t seed, int topk);

struct SweepOptions {
  std::string variant;
  nlohmann::json base_params = nlohmann::json::object();  // the other parameters
  std::string key;                                         // the swept parameter
  std::vector<std::string> values;                         // parsed by the parameter's schema
  int seeds = 3;
  int length = 256;
  int dim = 64;
  int heads = 1;
  // Standard deviation of the random q and k entries (v is N(0, 1)): the logits q·k/√d have
  // standard deviation qk_std². Random-feature estimators of exp(q·k/√d) have a variance that
  // grows like exp(‖q‖²/√d + ‖k‖²/√d), so at qk_std = 1 and d = 64 (‖q‖²/√d ≈ 8) their error
  // hardly falls with more features; trained attention is usually in between.
  double qk_std = 1.0;
  bool causal = false;
  int topk = 8;
  std::uint64_t seed = 1;
  const CancelToken* cancel = nullptr;
  // After each value, with the rows so far: for progress bars and streaming plots.
  std::function<void(int done, int total)> progress;
};

struct MetricSummary {
  double mean = 0, stddev = 0, min = 0, max = 0;
};

struct SweepRow {
  std::string value;  // as given
  double numeric = 0; // the value as a number (NaN for choices and booleans)
  MetricSummary rel_output_error, mean_row_kl, topk_overlap, time_ms;
};

// metric ≈ exp(intercept) · value^slope, least squares on log-log over positive points.
struct SweepFit {
  std::string metric;  // "rel_output_error", "mean_row_kl"
  double slope = 0, intercept = 0;
  int points = 0;      // fewer than 2: no fit
};

struct SweepResult {
  std::vector<SweepRow> rows;
  std::vector<SweepFit> fits;
};

// Throws ParamError for an unknown variant/parameter, a value out of range, seeds outside
// [1, 64], length outside [2, 8192], dim outside [1, 512], heads outside [1, 16]; CancelledError.
SweepResult run_sweep(const SweepOptions& options);

nlohmann::json sweep_to_json(const SweepOptions& options, const SweepResult& result);

// Least-squares line through (log x, log y) for x, y > 0.
SweepFit fit_log_log(const std::string& metric, const std::vector<double>& x, const std::vector<double>& y);

}  // namespace attnlab
