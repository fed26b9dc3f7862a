// T2R (Kasai et al. 2021) trace extras: the learned ReLU feature map, the features of every
// query and key, the normalisers, and the recurrent state (S, z) as tokens arrive — what the
// streaming state view and the feature views draw. The equations are in t2r.cpp.
//
// Shapes (H heads, Lq queries, Lk keys, d head dim, k = `features`, dv value dim,
// T = RecurrentStates::snapshot_steps(Lk).size()):
//   weight          [H, k, d]   W of φ(x) = ReLU(W x + b) + floor (seeded, one per head)
//   bias            [H, k]      b
//   query_features  [H, Lq, k]  φ(q_i / sqrt(d))
//   key_features    [H, Lk, k]  φ(k_j)  (a padded key's row is stored but never summed)
//   denominators    [H, Lq]     D_i = φ(q_i/sqrt(d)) · z_i, z_i = Σ_{visible j} φ(k_j); 0 = no mass
//   recurrent       states [H, T, k, dv] = S after key steps[t]; normalizers [H, T, k] = z;
//                   retrieval_error empty (not meaningful for a sum-rule state)
#pragma once

#include <cstdint>
#include <string_view>

#include "attention/recurrent_state.h"

namespace attnlab {

class T2rExtras final : public RecurrentTraceExtras {
 public:
  struct Data {
    std::int64_t heads = 0, queries = 0, keys = 0, head_dim = 0, features = 0;
    bool causal = false;
    double bias_scale = 0.0;
    double floor = 0.0;
    Tensor weight;
    Tensor bias;
    Tensor query_features;
    Tensor key_features;
    Tensor denominators;
    RecurrentStates recurrent;
  };

  explicit T2rExtras(Data data) : data_(std::move(data)) {}

  std::string_view kind() const override { return "t2r"; }
  nlohmann::json to_json() const override;
  const RecurrentStates& recurrent() const override { return data_.recurrent; }

  const Data& data() const { return data_; }

 private:
  Data data_;
};

}  // namespace attnlab
