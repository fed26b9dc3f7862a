// Adaptive Computation Time around a shared block (Dehghani et al. 2019, Universal Transformers,
// section 2.2; Graves 2016, ACT), the "basic" per-position variant of tensor2tensor's
// universal_transformer_act_basic.
//
// Not a layer by itself: the model hands run() its shared block as `transition`. Shapes:
//   x: [L, D]   transition: [L, D] -> [L, D]   halting unit: Linear [D, 1]   output: [L, D]
//
// Step t = 0, 1, ... (per position i; all products are per position):
//   s_t      = in_t + PE_position + PE_step(t)       in_0 = x, in_{t+1} = T(s_t)        [L, D]
//   p        = σ(s_t · w_halt + b_halt)                                                  [L]
//   running  = not yet halted
//   halts    = running ∧ hp + p > 1 − ε           (this step is its last)
//   running  = running ∧ hp + p ≤ 1 − ε
//   hp      += p · running
//   R       += halts · (1 − hp);   hp += halts · R
//   n       += running + halts
//   w        = p · running + halts · R            (0 once halted)
//   out_t    = w · T(s_t) + (1 − w) · out_{t−1}     out_{−1} = 0                        [L, D]
// The loop runs while some position has hp < 1 − ε and n < max_steps. As in tensor2tensor, the
// next step's input is the block's output T(s_t) for every position (halted ones too: their
// out no longer changes because w = 0), and the returned state is out. tensor2tensor's source text
// reads `previous_state * 1 - update_weights`; we implement the intended (1 − w).
// A position still running after max_steps is "stopped by max": its weights sum to hp < 1 − ε
// and it gets no remainder (R = 0), as in tensor2tensor.
// Ponder cost = ponder_weight · mean_i(n_i + R_i).
// The halting bookkeeping (hp, R, w) is kept in double; p, T and the state are float.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention.h"
#include "attention/params.h"
#include "core/cancel.h"
#include "core/tensor.h"
#include "layers/linear.h"

namespace attnlab {

class WeightTable;

// What the halting decided, per position i of L, over the steps_run steps the loop ran.
struct HaltingTrace final : public TraceExtras {
  std::vector<std::int32_t> steps;                  // [L] n: steps that updated position i
  std::vector<std::vector<double>> probabilities;   // [L][steps_run] p while running (incl. the halting step), then 0
  std::vector<std::vector<double>> update_weights;  // [L][steps_run] w
  std::vector<std::vector<double>> cumulative;      // [L][steps_run] hp after each step
  std::vector<double> remainder;                    // [L] R (0 when stopped by max)
  std::vector<double> weights_sum;                  // [L] Σ_t w
  std::vector<bool> stopped_by_max;                 // [L]
  double ponder_cost = 0.0;                         // ponder_weight · mean(n + R)
  double epsilon = 0.0;
  std::int64_t max_steps = 0;
  std::int64_t steps_run = 0;

  std::string_view kind() const override { return "halting"; }
  // Keys: steps, probabilities, update_weights, cumulative, remainder, weights_sum,
  // stopped_by_max, ponder_cost, epsilon, max_steps, steps_run.
  nlohmann::json to_json() const override;
};

struct AdaptiveComputationTime {
  std::int64_t d_model = 0;
  double epsilon = 0.01;
  std::int64_t max_steps = 8;
  double ponder_weight = 0.01;
  Linear halting;  // [D, 1]; bias initialised to halting_bias

  // epsilon, max_steps, halting_bias (initial bias of the halting unit), ponder_weight.
  static const std::vector<ParamSpec>& schema();
  // heads and d_ff belong to the wrapped block and are not used here.
  static AdaptiveComputationTime seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff,
                                        const Params& params, std::uint64_t seed);
  // prefix + "halting": Linear [D, 1].
  void visit_weights(const std::string& prefix, WeightTable& table);

  // `transition(state_with_timing [L, D], step)` must return [L, D]. Pushes one HaltingTrace
  // onto trace->layer_extras when trace is given; never touches trace->weights.
  RowMatrix run(const RowMatrix& x, const std::function<RowMatrix(const RowMatrix&, int step)>& transition,
                const CancelToken* cancel, Trace* trace) const;
};

}  // namespace attnlab
