#include "analysis/sweep.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "attention/registry.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"

namespace attnlab {
namespace {

void require(const char* name, int value, int lo, int hi) {
  if (value < lo || value > hi) {
    throw ParamError(std::string(name) + "=" + std::to_string(value) + " is not allowed; " + name +
                     ": an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
}

MetricSummary summarise(const std::vector<double>& xs) {
  MetricSummary s;
  if (xs.empty()) return s;
  s.min = std::numeric_limits<double>::infinity();
  s.max = -s.min;
  for (double x : xs) {
    s.mean += x;
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
  }
  s.mean /= static_cast<double>(xs.size());
  for (double x : xs) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = xs.size() > 1 ? std::sqrt(s.stddev / static_cast<double>(xs.size() - 1)) : 0.0;
  return s;
}

double numeric_value(const ParamValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  return std::numeric_limits<double>::quiet_NaN();
}

nlohmann::json summary_json(const MetricSummary& s) {
  return nlohmann::json{{"mean", s.mean}, {"std", s.stddev}, {"min", s.min}, {"max", s.max}};
}

}  // namespace

ApproximationMetrics compare_variant(const Attention& variant, const Params& params, const Tensor& q, const Tensor& k,
                                     const Tensor& v, bool causal, std::uint64_t seed, int topk) {
  const Attention& softmax = Registry::builtin().get("softmax");
  Trace approx, exact;
  const Tensor out = run_attention(variant, AttentionInput{q, k, v, causal, nullptr, &params, seed}, &approx);
  const Tensor exact_out = run_attention(softmax, AttentionInput{q, k, v, causal, nullptr, nullptr, seed}, &exact);
  return compare_attention(exact.weights, exact_out, approx.weights, out, topk);
}

SweepFit fit_log_log(const std::string& metric, const std::vector<double>& x, const std::vector<double>& y) {
  SweepFit fit;
  fit.metric = metric;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (!(x[i] > 0) || !(y[i] > 0) || !std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    const double lx = std::log(x[i]), ly = std::log(y[i]);
    sx += lx;
    sy += ly;
    sxx += lx * lx;
    sxy += lx * ly;
    ++fit.points;
  }
  const double n = fit.points;
  const double denominator = n * sxx - sx * sx;
  if (fit.points < 2 || std::abs(denominator) < 1e-12) {
    fit.points = std::min(fit.points, 1);
    return fit;
  }
  fit.slope = (n * sxy - sx * sy) / denominator;
  fit.intercept = (sy - fit.slope * sx) / n;
  return fit;
}

SweepResult run_sweep(const SweepOptions& o) {
  const Attention& variant = Registry::builtin().get(o.variant);
  require("seeds", o.seeds, 1, 64);
  require("length", o.length, 2, 8192);
  require("dim", o.dim, 1, 512);
  require("heads", o.heads, 1, 16);
  if (!(o.qk_std > 0.0 && o.qk_std <= 10.0)) {
    char shown[32];
    std::snprintf(shown, sizeof shown, "%g", o.qk_std);
    throw ParamError(std::string("qk_std=") + shown + " is not allowed; qk_std: a number in (0, 10]");
  }
  if (o.values.empty()) throw ParamError("sweep of '" + o.key + "' needs at least one value");
  Params base(variant.spec().params);
  base.set_from_json(o.base_params);
  // Parse every value before any work, so a typo fails at once.
  std::vector<ParamValue> values;
  for (const std::string& text : o.values) {
    Params probe = base;
    probe.set_from_assignment(o.key + "=" + text);
    values.push_back(probe.get(o.key));
  }

  SweepResult result;
  const int total = static_cast<int>(values.size());
  for (int vi = 0; vi < total; ++vi) {
    Params params = base;
    params.set(o.key, values[static_cast<std::size_t>(vi)]);
    std::vector<double> err, kl, overlap, ms;
    for (int s = 0; s < o.seeds; ++s) {
      check_cancelled(o.cancel);
      Rng rng(Rng::derive(o.seed, "inputs/" + std::to_string(s)));
      Tensor q({o.heads, o.length, o.dim}), k({o.heads, o.length, o.dim}), v({o.heads, o.length, o.dim});
      rng.fill_normal(q, 0.0f, static_cast<float>(o.qk_std));
      rng.fill_normal(k, 0.0f, static_cast<float>(o.qk_std));
      rng.fill_normal(v, 0.0f, 1.0f);
      Timer t;
      const ApproximationMetrics m = compare_variant(variant, params, q, k, v, o.causal,
                                                     Rng::derive(o.seed, "variant/" + std::to_string(s)), o.topk);
      ms.push_back(t.elapsed_ms());
      err.push_back(m.rel_output_error);
      kl.push_back(m.mean_row_kl);
      overlap.push_back(m.topk_overlap);
    }
    SweepRow row;
    row.value = o.values[static_cast<std::size_t>(vi)];
    row.numeric = numeric_value(values[static_cast<std::size_t>(vi)]);
    row.rel_output_error = summarise(err);
    row.mean_row_kl = summarise(kl);
    row.topk_overlap = summarise(overlap);
    row.time_ms = summarise(ms);
    result.rows.push_back(row);
    if (o.progress) o.progress(vi + 1, total);
  }
  std::vector<double> x, err, kl;
  for (const SweepRow& r : result.rows) {
    x.push_back(r.numeric);
    err.push_back(r.rel_output_error.mean);
    kl.push_back(r.mean_row_kl.mean);
  }
  result.fits = {fit_log_log("rel_output_error", x, err), fit_log_log("mean_row_kl", x, kl)};
  return result;
}

nlohmann::json sweep_to_json(const SweepOptions& o, const SweepResult& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (const SweepRow& row : r.rows) {
    rows.push_back({{"value", row.value},
                    {"numeric", std::isfinite(row.numeric) ? nlohmann::json(row.numeric) : nlohmann::json(nullptr)},
                    {"rel_output_error", summary_json(row.rel_output_error)},
                    {"mean_row_kl", summary_json(row.mean_row_kl)},
                    {"topk_overlap", summary_json(row.topk_overlap)},
                    {"time_ms", summary_json(row.time_ms)}});
  }
  nlohmann::json fits = nlohmann::json::array();
  for (const SweepFit& f : r.fits) {
    fits.push_back({{"metric", f.metric},
                    {"slope", f.points >= 2 ? nlohmann::json(f.slope) : nlohmann::json(nullptr)},
                    {"intercept", f.points >= 2 ? nlohmann::json(f.intercept) : nlohmann::json(nullptr)},
                    {"points", f.points}});
  }
  return nlohmann::json{{"variant", o.variant}, {"sweep", o.key},        {"base_params", o.base_params},
                        {"seeds", o.seeds},     {"length", o.length},    {"dim", o.dim}, {"qk_std", o.qk_std},
                        {"heads", o.heads},     {"causal", o.causal},    {"topk", o.topk},
                        {"seed", o.seed},       {"rows", rows},          {"fits", fits}};
}

}  // namespace attnlab
