#include "bench/complexity.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "analysis/sweep.h"
#include "attention/registry.h"
#include "bench/bench_limits.h"
#include "core/error.h"
#include "core/memory_meter.h"
#include "core/rng.h"
#include "core/timer.h"
#include "cuda/device_model.h"
#include "cuda/gpu_attention.h"
#include "models/encoder.h"
#include "models/model_config.h"
#include "models/model_memory.h"

namespace attnlab {
namespace {

constexpr std::int64_t kMaxLength = std::int64_t{1} << 24;
constexpr std::int64_t kMaxModelLength = std::int64_t{1} << 20;  // the most a model config accepts
constexpr std::string_view kModelPrefix = "model:";


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

// What one bench entry runs: a registered variant on random q, k, v, or a model preset's whole
// forward pass ("model:NAME") on token ids.
struct Subject {
  std::string name;
  const Attention* variant = nullptr;
  std::shared_ptr<const Encoder> model;  // set for a model entry
  std::shared_ptr<const gpu::DeviceModel> device_model;  // a model entry on CUDA: its weights on the GPU
  std::int64_t max_length = 0;           // the model's, raised for the bench

  static Subject of_variant(const std::string& name, const Attention& a) {
    Subject s;
    s.name = name;
    s.variant = &a;
    return s;
  }

  // The preset with max_length raised to the longest length asked for (within what a config
  // accepts), seeded from the bench's seed.
  static Subject of_model(const std::string& name, ModelConfig config, const ComplexityOptions& o) {
    Subject s;
    s.name = name;
    config.max_length = std::clamp(o.lengths.back(), config.max_length, kMaxModelLength);
    s.max_length = config.max_length;
    s.model = std::make_shared<const Encoder>(Encoder::seeded(config, o.seed));
    if (o.device == DevicePreference::Cuda)  // ParamError naming a layer without a GPU path
      s.device_model = std::make_shared<const gpu::DeviceModel>(*s.model, gpu::make_cuda_backend());
    return s;
  }

  // The cost model's bytes beyond the inputs (see the header); throws ParamError for a length a
  // model does not take.
  std::int64_t estimate(std::int64_t L, const ComplexityOptions& o) const {
    if (model) {
      if (L > max_length)
        throw ParamError("model " + model->config().name + " takes at most " + std::to_string(max_length) + " tokens");
      if (device_model) return 0;  // GPU memory: the allocator's own error says when it runs out
      ForwardMemoryOptions m;
      m.causal = o.causal;
      return estimate_forward_bytes(model->config(), L, false, m);
    }
    if (o.device == DevicePreference::Cuda) return float_bytes(o.heads * L * (o.dim + 1));  // output and lse on the host
    const Params params(variant->spec().params);
    return variant->workspace_bytes(AttentionShape{o.heads, L, L, o.dim, o.dim, o.causal, false}, params);
  }

  // q, k, v [heads, L, dim], or the token ids.
  std::int64_t input_bytes(std::int64_t L, const ComplexityOptions& o) const {
    if (model) return L * static_cast<std::int64_t>(sizeof(std::int32_t));
    return float_bytes(3 * o.heads * L * o.dim);
  }
};

// The warm-up call (peak bytes and high-water growth measured on it, the block cache and freed
// heap pages handed back first), then the timed calls; fills the row's times and status "ok".
void measure(const Subject& subject, std::int64_t L, const ComplexityOptions& o, ComplexityRow& row) {
  const bool cuda = o.device == DevicePreference::Cuda;
  std::function<double()> call;
  Tensor q, k, v;
  std::vector<std::int32_t> ids;
  std::optional<Params> params;
  EncoderRunOptions run;
  std::int64_t device_peak = 0;  // GPU bytes at the peak of a model's pass on CUDA
  if (subject.model) {
    const std::int32_t vocab = subject.model->config().vocab_size;
    ids.resize(static_cast<std::size_t>(L));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * 7919) % static_cast<std::size_t>(vocab));
    run.variant = &Registry::builtin().get("softmax");
    run.causal = o.causal;
    run.trace = false;
    run.attention_seed = o.seed;
    run.cancel = o.cancel;
    if (!subject.device_model) {
      call = [&] {
        Timer t;
        (void)subject.model->forward(ids, run);
        return t.elapsed_ms();
      };
    } else {
      call = [&] {
        gpu::DeviceRunOptions d;
        d.variant = run.variant;
        d.causal = run.causal;
        d.attention_seed = run.attention_seed;
        d.cancel = run.cancel;
        d.download_hidden = false;
        const gpu::DeviceForward f = subject.device_model->forward(ids, d);
        device_peak = std::max(device_peak, f.peak_bytes);
        return f.ms;  // CUDA events around the pass
      };
    }
  } else {
    q = Tensor({o.heads, L, o.dim});
    k = Tensor({o.heads, L, o.dim});
    v = Tensor({o.heads, L, o.dim});
    Rng rng(o.seed);
    rng.fill_normal(q, 0.0f, 1.0f);
    rng.fill_normal(k, 0.0f, 1.0f);
    rng.fill_normal(v, 0.0f, 1.0f);
    params.emplace(subject.variant->spec().params);
    call = [&] { return run_once(*subject.variant, *params, q, k, v, o); };
  }
  memory::release_cached_blocks();
  memory::trim_heap();
  const bool high_water_known = memory::reset_process_high_water();
  const std::int64_t resident_before = memory::process_resident_bytes();
  memory::reset_peak();
  const std::int64_t before = memory::current_bytes();
  const double warm = call();  // warm-up, and the memory figures
  row.peak_bytes = cuda ? device_peak : std::max<std::int64_t>(0, memory::peak_bytes() - before);
  if (high_water_known && resident_before > 0)
    row.high_water_bytes = std::max<std::int64_t>(0, memory::process_high_water_bytes() - resident_before);
  std::vector<double> ms;
  if (warm > o.time_budget_ms) {
    ms.push_back(warm);  // one call is all the budget allows
  } else {
    for (int r = 0; r < o.repeats; ++r) {
      check_cancelled(o.cancel);
      ms.push_back(call());
    }
  }
  std::sort(ms.begin(), ms.end());
  row.median_ms = ms[ms.size() / 2];
  row.min_ms = ms.front();
  row.max_ms = ms.back();
  row.status = "ok";
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

namespace {

constexpr std::string_view kPredictedPrefix = "skipped: predicted";

// A length whose one call would take longer than the budget is not started: a call cannot be
// stopped halfway (softmax at 1M tokens would run for hours). The prediction extrapolates the
// last measured time with the log-log slope of the last two measured lengths, clamped to [1, 3]
// (one measured length: slope 1, the least any variant grows).
std::string refuse_by_time(const std::vector<std::pair<double, double>>& measured, double length, double budget_ms) {
  if (measured.empty()) return {};
  const auto [l1, t1] = measured.back();
  double slope = 1.0;
  if (measured.size() >= 2) {
    const auto [l0, t0] = measured[measured.size() - 2];
    if (t0 > 0 && t1 > 0 && l1 > l0) slope = std::log(t1 / t0) / std::log(l1 / l0);
  }
  slope = std::clamp(slope, 1.0, 3.0);
  const double predicted = t1 * std::pow(length / l1, slope);
  if (!(predicted > budget_ms)) return {};
  char text[200];
  std::snprintf(text, sizeof text, "%s to take about %.3g s a call (slope %.2f from the measured lengths), over the %.3g s time budget",
                std::string(kPredictedPrefix).c_str(), predicted / 1000.0, slope, budget_ms / 1000.0);
  return text;
}

}  // namespace

ComplexityResult run_complexity(ComplexityOptions o) {
  if (o.variants.empty()) throw ParamError("bench needs at least one variant");
  if (o.lengths.empty()) throw ParamError("bench needs at least one length");
  std::sort(o.lengths.begin(), o.lengths.end());
  if (std::adjacent_find(o.lengths.begin(), o.lengths.end()) != o.lengths.end())
    throw ParamError("bench: a length is listed twice");
  require_in_range("length", static_cast<double>(o.lengths.front()), 2, static_cast<double>(kMaxLength));
  require_in_range("length", static_cast<double>(o.lengths.back()), 2, static_cast<double>(kMaxLength));
  require_in_range("dim", o.dim, 1, 512);
  require_in_range("heads", o.heads, 1, 64);
  require_in_range("repeats", o.repeats, 1, 1000);
  require_in_range("time_budget_ms", o.time_budget_ms, 1, 3.6e6);
  const bool cuda = o.device == DevicePreference::Cuda;
  std::string why;
  if (cuda && !gpu::gpu_available(&why)) throw DeviceError("no GPU to run on: " + why);
  // Every entry resolves before anything runs: unknown names fail here (a model on CUDA also
  // uploads its weights here).
  std::vector<Subject> subjects;
  for (const std::string& name : o.variants) {
    if (name.rfind(kModelPrefix, 0) == 0) {
      subjects.push_back(Subject::of_model(name, builtin_model(name.substr(kModelPrefix.size())), o));
    } else {
      subjects.push_back(Subject::of_variant(name, Registry::builtin().get(name)));
    }
  }
  ComplexityResult result;
  const int total = static_cast<int>(o.variants.size() * o.lengths.size());
  int done = 0;
  for (const Subject& subject : subjects) {
    std::string skip;  // set once a length ran over the time budget or out of memory
    std::vector<std::pair<double, double>> measured;  // (L, median ms) of this subject's ok rows
    for (const std::int64_t L : o.lengths) {
      check_cancelled(o.cancel);
      ComplexityRow row;
      row.variant = subject.name;
      row.length = L;
      row.device = cuda ? "cuda" : "cpu";
      std::string refusal;
      try {
        row.estimated_bytes = subject.estimate(L, o);
        refusal = memory_refusal(row.estimated_bytes + subject.input_bytes(L, o), " (cost model)");
      } catch (const Error& e) {  // a shape the subject cannot take
        refusal = std::string("skipped: ") + e.what();
      }
      if (refusal.empty()) refusal = refuse_by_time(measured, static_cast<double>(L), o.time_budget_ms);
      if (!skip.empty()) {
        row.status = skip;
      } else if (!refusal.empty()) {
        row.status = refusal;
        if (refusal.rfind(kPredictedPrefix, 0) == 0) skip = "skipped: a shorter length was predicted to exceed the time budget";
      } else {
        try {
          measure(subject, L, o, row);
          measured.emplace_back(static_cast<double>(L), row.median_ms);
          if (row.median_ms > o.time_budget_ms)
            skip = "skipped: length " + std::to_string(L) + " took longer than the time budget";
        } catch (const ResourceError& e) {
          row.status = std::string("out of memory: ") + e.what();
          skip = "skipped: a shorter length ran out of memory";
        } catch (const std::bad_alloc&) {
          row.status = "out of memory: the system refused an allocation";
          skip = "skipped: a shorter length ran out of memory";
        }
        if (row.status != "ok") memory::release_cached_blocks();
      }
      result.rows.push_back(row);
      if (o.on_row) o.on_row(result.rows.back());
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
    // The estimate is made for every row that got as far as the cost model (also the refused ones).
    j["estimated_bytes"] = r.estimated_bytes > 0 ? nlohmann::json(r.estimated_bytes) : nlohmann::json(nullptr);
    if (r.status == "ok") {
      j["median_ms"] = r.median_ms;
      j["min_ms"] = r.min_ms;
      j["max_ms"] = r.max_ms;
      j["peak_bytes"] = r.device == "cuda" ? nlohmann::json(nullptr) : nlohmann::json(r.peak_bytes);
      j["high_water_bytes"] = r.high_water_bytes > 0 ? nlohmann::json(r.high_water_bytes) : nlohmann::json(nullptr);
    } else {
      j["median_ms"] = j["min_ms"] = j["max_ms"] = j["peak_bytes"] = j["high_water_bytes"] = nullptr;
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
