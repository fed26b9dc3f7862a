// The state of a recurrent (linear-time) attention form as tokens arrive — what the streaming
// state view draws. Variants with a recurrent form (linear, delta, t2r) derive their trace
// extras from RecurrentTraceExtras and fill RecurrentStates in trace mode.
//
//   states        [H, T, dk, dv]  the state after token steps[t]: S = Σ φ(k_j) v_jᵀ (linear, t2r);
//                 [H, T, dv, dk]  the fast-weight matrix W (delta), which maps keys to values
//                                  (rows_are_keys = false)
//   normalizers   [H, T, dk]      z = Σ φ(k_j) (linear, t2r); empty when the form has none (delta)
//   retrieval_error [H, T]        mean over stored pairs j ≤ steps[t] of ‖S k_j − v_j‖ / ‖v_j‖
//                                  (delta; empty when not meaningful; NaN at snapshots where it
//                                  was not evaluated — it costs O(t·dk·dv) per snapshot)
//   steps         [T]             token index after which each snapshot was taken, ascending;
//                                  every token for L ≤ kMaxSnapshots, else evenly spaced ending at L−1
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention.h"

namespace attnlab {

struct RecurrentStates {
  static constexpr std::int64_t kMaxSnapshots = 512;

  Tensor states;
  Tensor normalizers;
  Tensor retrieval_error;
  std::vector<std::int64_t> steps;
  std::string state_formula;  // how the state is built, for the view: "S_t = S_{t-1} + φ(k_t) v_tᵀ"
  std::string key_axis;       // what the key-side axis indexes: "feature of φ(k)"
  std::string value_axis;     // what the value-side axis indexes: "value dimension"
  bool rows_are_keys = true;  // states [H, T, dk, dv]; false: [H, T, dv, dk]

  // The snapshot steps for a sequence of `length` tokens.
  static std::vector<std::int64_t> snapshot_steps(std::int64_t length) {
    std::vector<std::int64_t> steps;
    const std::int64_t count = std::min(length, kMaxSnapshots);
    for (std::int64_t t = 0; t < count; ++t) steps.push_back(count == length ? t : (t + 1) * length / count - 1);
    return steps;
  }
};

class RecurrentTraceExtras : public TraceExtras {
 public:
  virtual const RecurrentStates& recurrent() const = 0;
};

}  // namespace attnlab
