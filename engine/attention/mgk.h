// Transformer-MGK (mixture of Gaussian keys): the typed trace extras. Equations and choices are in
// mgk.cpp.
//
// Shapes (H heads, Lq queries, Lk keys, d head dim, S = em_steps in mode soft_em, else 0):
//   component1, component2 [H, Lq, Lk]  each component's share of the weights:
//                     component_c[i, j] = π_c(j)·exp(-‖q_i - k_c,j‖²/2σ²) / Z_i (hard_em: the whole
//                     weight goes to the nearer key), so component1 + component2 = trace->weights
//   pi                [H, Lk]      π1(j), the mixing weight of key component 1 used for key j
//                                  (π2 = 1 - π1; the constant pi1 in mode fixed; hard_em has no
//                                  mixing weights and stores 0.5)
//   pi_steps          [H, S+1, Lk] π1 before the first EM step and after each one
//   responsibility    [H, Lk]      mean over the EM query set of the posterior of component 1,
//                                  r_ij = π1 e1 / (π1 e1 + π2 e2) under the π used (hard_em: the
//                                  fraction of those queries nearer to k1_j than to k2_j)
//   key_shift         [H, d]       μ of k2 = k - μ (second_key = shift; else empty)
//   key_projection    [H, d, d]    R of k2 = R k (second_key = projection; else empty)
// The EM query set of key j: every query (non-causal) or the queries i <= j (causal), leaving out
// padded positions when queries and keys are the same sequence.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attention/attention.h"

namespace attnlab {

class MgkExtras final : public TraceExtras {
 public:
  struct Data {
    std::int64_t heads = 0, queries = 0, keys = 0, head_dim = 0;
    bool causal = false;
    std::string pi_mode = "fixed";     // fixed | soft_em | hard_em
    std::string second_key = "shift";  // shift | projection
    double pi1 = 0.5;
    int em_steps = 0;                  // steps actually run (0 unless soft_em)
    double key2_scale = 0.0;
    double sigma2 = 1.0;               // σ² = sqrt(d)
    Tensor key_shift;
    Tensor key_projection;
    Tensor component1;
    Tensor component2;
    Tensor pi;
    Tensor pi_steps;
    Tensor responsibility;
  };

  explicit MgkExtras(Data data) : data_(std::move(data)) {}

  std::string_view kind() const override { return "mgk"; }
  nlohmann::json to_json() const override;

  const Data& data() const { return data_; }

 private:
  Data data_;
};

}  // namespace attnlab
