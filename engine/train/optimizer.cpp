#include "train/optimizer.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace attnlab::train {

void OptimizerOptions::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ParamError(what);
  };
  need(lr > 0 && lr <= 1, "lr=" + std::to_string(lr) + ": allowed (0, 1]");
  need(beta1 >= 0 && beta1 < 1, "beta1=" + std::to_string(beta1) + ": allowed [0, 1)");
  need(beta2 >= 0 && beta2 < 1, "beta2=" + std::to_string(beta2) + ": allowed [0, 1)");
  need(eps > 0, "eps=" + std::to_string(eps) + ": must be positive");
  need(weight_decay >= 0 && weight_decay < 1, "weight_decay=" + std::to_string(weight_decay) + ": allowed [0, 1)");
  need(clip_norm >= 0, "clip_norm=" + std::to_string(clip_norm) + ": must be >= 0 (0 = no clipping)");
  need(warmup_steps >= 0, "warmup_steps=" + std::to_string(warmup_steps) + ": must be >= 0");
  need(schedule == "inverse_sqrt" || schedule == "cosine", "schedule '" + schedule + "': expected inverse_sqrt or cosine");
  if (schedule == "cosine") {
    need(total_steps > warmup_steps, "the cosine schedule needs total steps (" + std::to_string(total_steps) +
                                         ") beyond the warm-up (" + std::to_string(warmup_steps) + ")");
  }
  need(min_lr_ratio >= 0 && min_lr_ratio <= 1, "min_lr_ratio=" + std::to_string(min_lr_ratio) + ": allowed [0, 1]");
}

nlohmann::json OptimizerOptions::to_json() const {
  return {{"lr", lr},           {"beta1", beta1},       {"beta2", beta2},
          {"eps", eps},         {"weight_decay", weight_decay}, {"clip_norm", clip_norm},
          {"warmup_steps", warmup_steps}, {"schedule", schedule}, {"total_steps", total_steps},
          {"min_lr_ratio", min_lr_ratio}};
}

double learning_rate(const OptimizerOptions& o, std::int64_t step) {
  const double t = static_cast<double>(std::max<std::int64_t>(step, 1));
  const double w = static_cast<double>(o.warmup_steps);
  if (o.schedule == "cosine") {
    if (t <= w) return o.lr * t / w;
    const double p = std::min(1.0, (t - w) / std::max(1.0, static_cast<double>(o.total_steps) - w));
    return o.lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * p)));
  }
  if (o.warmup_steps == 0) return o.lr;
  return o.lr * std::min(t / w, std::sqrt(w / t));
}

double global_norm(const ParamArray<float>& grads) {
  constexpr std::size_t kChunk = 1 << 14;
  const std::size_t chunks = (grads.size() + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks, 0.0);
#pragma omp parallel for schedule(static)
  for (std::size_t c = 0; c < chunks; ++c) {
    double s = 0;
    const std::size_t end = std::min(grads.size(), (c + 1) * kChunk);
    for (std::size_t i = c * kChunk; i < end; ++i) s += static_cast<double>(grads[i]) * grads[i];
    partial[c] = s;
  }
  double total = 0;
  for (const double s : partial) total += s;
  return std::sqrt(total);
}

AdamW::AdamW(const OptimizerOptions& options, std::size_t parameter_count)
    : options_(options), m_(parameter_count, 0.0f), v_(parameter_count, 0.0f) {
  options_.validate();
}

double AdamW::step(ParamArray<float>& values, ParamArray<float>& grads, const std::vector<ParamEntry>& entries,
                   std::int64_t t) {
  if (values.size() != m_.size() || grads.size() != m_.size()) {
    throw ShapeError("optimizer holds " + std::to_string(m_.size()) + " parameters but was given " +
                     std::to_string(values.size()));
  }
  const double norm = global_norm(grads);
  if (!std::isfinite(norm)) throw Error("gradient norm is not finite (the loss diverged); lower the learning rate");
  const double clip = options_.clip_norm > 0 && norm > options_.clip_norm ? options_.clip_norm / norm : 1.0;
  const double lr = learning_rate(options_, t);
  const double bc1 = 1.0 - std::pow(options_.beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(options_.beta2, static_cast<double>(t));
  const float b1 = static_cast<float>(options_.beta1), b2 = static_cast<float>(options_.beta2);
  const float step_size = static_cast<float>(lr / bc1), inv_bc2 = static_cast<float>(1.0 / bc2);
  const float eps = static_cast<float>(options_.eps), fclip = static_cast<float>(clip);
  for (const ParamEntry& e : entries) {
    const float decay = e.decay ? static_cast<float>(lr * options_.weight_decay) : 0.0f;
    float* theta = values.data() + e.offset;
    float* g = grads.data() + e.offset;
    float* m = m_.data() + e.offset;
    float* v = v_.data() + e.offset;
    const std::int64_t n = e.size();
#pragma omp parallel for schedule(static) if (n >= (1 << 15))
    for (std::int64_t i = 0; i < n; ++i) {
      const float gi = g[i] * fclip;
      g[i] = gi;
      m[i] = b1 * m[i] + (1.0f - b1) * gi;
      v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
      theta[i] -= step_size * m[i] / (std::sqrt(v[i] * inv_bc2) + eps) + decay * theta[i];
    }
  }
  return norm;
}

}  // namespace attnlab::train
