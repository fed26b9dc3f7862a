// AdamW (Loshchilov & Hutter 2019) over the model's flat parameter array, with global-norm
// gradient clipping and a warm-up learning-rate schedule.
//
//   g ← g · min(1, clip / ‖g‖₂)
//   m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  m̂ = m/(1−β₁ᵗ),  v̂ = v/(1−β₂ᵗ)
//   θ ← θ − lr_t·(m̂/(√v̂ + ε) + λθ)      (λ only on entries marked `decay`)
//
// Schedules (t counts from 1): "inverse_sqrt" lr·min(t/w, √(w/t)) (Vaswani et al. 2017 with the
// peak given directly), "cosine" linear warm-up then lr·(r + (1−r)·½(1+cos(π·p))) down to r·lr at
// total_steps. The update is element-parallel with a fixed partition and the norm is summed in
// fixed chunks, so a step is bit-identical for a given thread count.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "train/transformer.h"

namespace attnlab::train {

struct OptimizerOptions {
  double lr = 7e-4;  // peak learning rate
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-9;
  double weight_decay = 0.01;
  double clip_norm = 1.0;  // 0 = no clipping
  std::int64_t warmup_steps = 1000;
  std::string schedule = "inverse_sqrt";  // or "cosine"
  std::int64_t total_steps = 0;           // needed by "cosine"
  double min_lr_ratio = 0.1;              // "cosine" ends at min_lr_ratio · lr

  // Throws ParamError naming the value.
  void validate() const;
  nlohmann::json to_json() const;
};

// The learning rate at step t ≥ 1.
double learning_rate(const OptimizerOptions& options, std::int64_t step);

class AdamW {
 public:
  AdamW(const OptimizerOptions& options, std::size_t parameter_count);

  // One update of `values` from `grads` (clipped in place) at step t ≥ 1; returns ‖g‖₂ before clipping.
  double step(ParamArray<float>& values, ParamArray<float>& grads, const std::vector<ParamEntry>& entries,
              std::int64_t t);

  const OptimizerOptions& options() const { return options_; }
  ParamArray<float>& first_moment() { return m_; }
  ParamArray<float>& second_moment() { return v_; }

 private:
  OptimizerOptions options_;
  ParamArray<float> m_, v_;
};

// ‖g‖₂ summed in double over fixed chunks (deterministic).
double global_norm(const ParamArray<float>& grads);

}  // namespace attnlab::train
