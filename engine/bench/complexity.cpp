#include "bench/complexity.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <set>

#include "analysis/sweep.h"
#include "attention/registry.h"
#include "core/error.h"
#include "core/memory_meter.h"
#include "core/rng.h"
#include "core/timer.h"
#include "cuda/gpu_attention.h"

namespace attnlab {
namespace {

constexpr std::int64_t kMaxLength = std::int64_t{1} << 24;

std::string number(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", x);
  return text;
}

void require(const char* name, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi)) {
    throw ParamError(std::string(name) + "=" + number(value) + " is not allowed; " + name + ": a number in [" +
                     number(lo) + ", " + number(hi) + "]");
  }
}

// One call of `variant` on the device; returns its time in ms (GPU: the kernels' own time).
double run_once(const Attention& variant, const Params& params, const Tensor& q, const Tensor& k, const Tensor& v,
                const ComplexityOptions& o) {
  if (o.device != DevicePreference::Cuda) {
    const AttentionInput in{q, k, v, o.causal, nullptr, &params, o.seed, o.cancel};
    Timer t;
    run_attention(variant, in, nullptr);
    return t.elapsed_ms();
  }
  const std::string& name = variant.spec().name;
  gpu::SoftmaxAttentionOptions so;
  so.causal = o.causal;
  if (name == "softmax") return gpu::softmax_attention(q, k, v, so).kernel_ms;
  if (name == "bigbird") return gpu::bigbird_attention(q, k, v, params, o.seed, so).kernel_ms;
  if (name == "linear") return gpu::linear_attention(q, k, v, o.causal, static_cast<float>(params.get_float("eps"))).kernel_ms;
  if (name == "reformer_lsh") return gpu::reformer_lsh_attention(q, v, params, o.seed, o.causal).kernel_ms;
  throw DeviceError("variant '" + name + "' has no GPU kernel yet (GPU: softmax, bigbird, linear, reformer_lsh)");
}

}  // namespace

ComplexityFit fit_complexity(const std::string& variant, const std::vector<ComplexityRow>& rows) {
  std::vector<const ComplexityRow*> ok;
  for (const ComplexityRow& r : rows)
    if (r.variant == variant && r.status == "ok") ok.push_back(&r);
  std::sort(ok.begin(), ok.end(), [](const ComplexityRow* a, const ComplexityRow* b) { return a->length < b->length; });
  ComplexityFit fit;
  fit.variant = variant;
  if (ok.size() < 2) return fit;
  const std::size_t use = std::max<std::size_t>(2, (ok.size() + 1) / 2);  // the largest half
  std::vector<double> x, t, m;
  for (std::size_t i = ok.size() - use; i < ok.size(); ++i) {
    x.push_back(static_cast<double>(ok[i]->length));
    t.push_back(ok[i]->median_ms);
    m.push_back(static_cast<double>(ok[i]->peak_bytes));
  }
  const SweepFit time = fit_log_log("time", x, t), memory = fit_log_log("memory", x, m);
  fit.time_slope = time.slope;
  fit.memory_slope = memory.points >= 2 ? memory.slope : 0.0;
  fit.points = time.points;
  return fit;
}

ComplexityResult run_complexity(ComplexityOptions o) {
  if (o.variants.empty()) throw ParamError("bench needs at least one variant");
  if (o.lengths.empty()) throw ParamError("bench needs at least one length");
  for (const std::string& name : o.variants) Registry::builtin().get(name);  // unknown names fail here
  std::sort(o.lengths.begin(), o.lengths.end());
  if (std::adjacent_find(o.lengths.begin(), o.lengths.end()) != o.lengths.end())
    throw ParamError("bench: a length is listed twice");
  require("length", static_cast<double>(o.lengths.front()), 2, static_cast<double>(kMaxLength));
  require("length", static_cast<double>(o.lengths.back()), 2, static_cast<double>(kMaxLength));
  require("dim", o.dim, 1, 512);
  require("heads", o.heads, 1, 64);
  require("repeats", o.repeats, 1, 1000);
  require("time_budget_ms", o.time_budget_ms, 1, 3.6e6);
  std::string why;
  if (o.device == DevicePreference::Cuda && !gpu::gpu_available(&why)) throw DeviceError("no GPU to run on: " + why);
  const bool cuda = o.device == DevicePreference::Cuda;

  ComplexityResult result;
  const int total = static_cast<int>(o.variants.size() * o.lengths.size());
  int done = 0;
  for (const std::string& name : o.variants) {
    const Attention& variant = Registry::builtin().get(name);
    const Params params(variant.spec().params);
    std::string skip;  // set once a length ran over the time budget
    for (const std::int64_t L : o.lengths) {
      check_cancelled(o.cancel);
      ComplexityRow row;
      row.variant = name;
      row.length = L;
      row.device = cuda ? "cuda" : "cpu";
      const double input_bytes = 4.0 * o.heads * static_cast<double>(L) * o.dim * 4.0;
      if (!skip.empty()) {
        row.status = skip;
      } else if (input_bytes > static_cast<double>(memory::allocation_limit_bytes())) {
        char limit[32];
        memory::format_bytes(memory::allocation_limit_bytes(), limit, sizeof limit);
        row.status = "skipped: q, k, v and the output alone exceed the engine's memory limit (" + std::string(limit) + ")";
      } else {
        try {
          Tensor q({o.heads, L, o.dim}), k({o.heads, L, o.dim}), v({o.heads, L, o.dim});
          Rng rng(o.seed);
          rng.fill_normal(q, 0.0f, 1.0f);
          rng.fill_normal(k, 0.0f, 1.0f);
          rng.fill_normal(v, 0.0f, 1.0f);
          memory::release_cached_blocks();
          memory::reset_peak();
          const std::int64_t before = memory::current_bytes();
          const double warm = run_once(variant, params, q, k, v, o);  // warm-up, and the peak
          row.peak_bytes = cuda ? 0 : std::max<std::int64_t>(0, memory::peak_bytes() - before);
          std::vector<double> ms;
          if (warm > o.time_budget_ms) {
            ms.push_back(warm);  // one call is all the budget allows
          } else {
            for (int r = 0; r < o.repeats; ++r) {
              check_cancelled(o.cancel);
              ms.push_back(run_once(variant, params, q, k, v, o));
            }
          }
          std::sort(ms.begin(), ms.end());
          row.median_ms = ms[ms.size() / 2];
          row.min_ms = ms.front();
          row.max_ms = ms.back();
          row.status = "ok";
          if (row.median_ms > o.time_budget_ms)
            skip = "skipped: length " + std::to_string(L) + " took longer than the time budget";
        } catch (const ResourceError& e) {
          row.status = std::string("out of memory: ") + e.what();
          skip = "skipped: a shorter length ran out of memory";
          memory::release_cached_blocks();
        }
      }
      result.rows.push_back(row);
      if (o.progress) o.progress(++done, total);
    }
  }
  for (const std::string& name : o.variants) result.fits.push_back(fit_complexity(name, result.rows));
  return result;
}

nlohmann::json complexity_to_json(const ComplexityOptions& o, const ComplexityResult& result) {
  nlohmann::json machine{{"device", select_device(o.device == DevicePreference::Cuda ? DevicePreference::Auto
                                                                                     : DevicePreference::Cpu)
                                        .describe()},
                         {"cpu_threads", cpu_threads()},
                         {"physical_bytes", memory::physical_bytes()},
                         {"engine_memory_limit_bytes", memory::allocation_limit_bytes()}};
  nlohmann::json rows = nlohmann::json::array();
  for (const ComplexityRow& r : result.rows) {
    nlohmann::json j{{"variant", r.variant}, {"length", r.length}, {"device", r.device}, {"status", r.status}};
    if (r.status == "ok") {
      j["median_ms"] = r.median_ms;
      j["min_ms"] = r.min_ms;
      j["max_ms"] = r.max_ms;
      j["peak_bytes"] = r.device == "cuda" ? nlohmann::json(nullptr) : nlohmann::json(r.peak_bytes);
    } else {
      j["median_ms"] = j["min_ms"] = j["max_ms"] = j["peak_bytes"] = nullptr;
    }
    rows.push_back(std::move(j));
  }
  nlohmann::json fits = nlohmann::json::array();
  for (const ComplexityFit& f : result.fits) {
    nlohmann::json j{{"variant", f.variant}, {"points", f.points}};
    j["time_slope"] = f.points >= 2 ? nlohmann::json(f.time_slope) : nlohmann::json(nullptr);
    j["memory_slope"] = f.points >= 2 && o.device != DevicePreference::Cuda ? nlohmann::json(f.memory_slope)
                                                                           : nlohmann::json(nullptr);
    fits.push_back(std::move(j));
  }
  return nlohmann::json{{"machine", machine},
                        {"options",
                         {{"dim", o.dim},
                          {"heads", o.heads},
                          {"causal", o.causal},
                          {"repeats", o.repeats},
                          {"time_budget_ms", o.time_budget_ms},
                          {"seed", o.seed}}},
                        {"rows", rows},
                        {"fits", fits}};
}

}  // namespace attnlab
