// Performer FAVOR+ attention: its typed trace extras (see performer.cpp for the equations).
//
// A view draws the feature matrices W, the positive features φ(Q) and φ(K) with their log
// scales (FavorTrace, attention/feature_maps.h), the implied normalised weights (trace->weights)
// and the running states S_t, z_t of the recurrent form.
#pragma once

#include "attention/feature_maps.h"
#include "attention/recurrent_state.h"

namespace attnlab {

class PerformerExtras final : public RecurrentTraceExtras {
 public:
  struct Data {
    bool causal = false;
    FavorTrace favor;  // W [H, m, d], φ(Q) [H, Lq, m], φ(K) [H, Lk, m], log scales, m, orthogonal, ...
    // S_t [H, T, m, dv] = Σ_{j <= steps[t]} e^{μ(k_j) − P_t} φ(k_j) v_jᵀ and z_t [H, T, m] likewise, where
    // φ(k_j) is stabilised by its own row maximum μ(k_j) and P_t = max_{j <= steps[t]} μ(k_j); the
    // true (unstabilised) state is e^{P_t} times the stored one. Filled in both modes (in
    // non-causal mode every query reads the last state); T is capped so that the snapshots of
    // one call stay within kStateBudgetFloats.
    RecurrentStates states;
    Tensor state_log_scale;  // [H, T]  P_t
  };

  explicit PerformerExtras(Data data) : data_(std::move(data)) {}
  std::string_view kind() const override { return "performer"; }
  // The FAVOR+ record, the snapshot steps, and the last state per head (not every step's).
  nlohmann::json to_json() const override;
  const RecurrentStates& recurrent() const override { return data_.states; }
  const Data& data() const { return data_; }
  std::int64_t n_features() const { return data_.favor.features; }
  bool orthogonal() const { return data_.favor.orthogonal; }

 private:
  Data data_;
};

}  // namespace attnlab
