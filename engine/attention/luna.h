// Luna (pack and unpack attention): the typed trace extras. Equations and choices are in luna.cpp.
//
// Shapes (H heads, Lq queries, Lk keys, d head dim, dv value dim, l = pack_len):
//   packed_sequence [H, l, d]    P, the seeded packed sequence (the reference's learned P)
//   pack_map        [H, l, Lk]   how each packed slot reads the keys: non-causal the pack softmax
//                                A_pack (rows sum to 1 over visible keys); causal the pack weights
//                                of the last step (normalized: s_j[p] / N_L[p]; reference:
//                                σ_j[p] / n_L, rows not normalised)
//   unpack_map      [H, Lq, l]   a_i, each query's softmax over the packed slots
//   packed_keys     [H, l, dk]   Y_K = A_pack K (causal: at the last step)
//   packed_values   [H, l, dv]   Y_P = Y_V = A_pack V (causal: at the last step)
// trace->weights [H, Lq, Lk] is the composition unpack ∘ pack, W = A_unpack A_pack (non-causal),
// W_tj = Σ_p a_t[p] s_j[p] / N_t[p] (causal); out = W V. Its rows sum to 1 except in
// causal_form "reference", whose averages by 1/t do not normalise (see luna.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attention/attention.h"

namespace attnlab {

class LunaExtras final : public TraceExtras {
 public:
  struct Data {
    std::int64_t heads = 0, queries = 0, keys = 0, head_dim = 0, pack_len = 0;
    bool causal = false;
    std::string causal_form = "normalized";  // normalized | reference
    double p_scale = 1.0;
    Tensor packed_sequence;
    Tensor pack_map;
    Tensor unpack_map;
    Tensor packed_keys;
    Tensor packed_values;
  };

  explicit LunaExtras(Data data) : data_(std::move(data)) {}

  std::string_view kind() const override { return "luna"; }
  nlohmann::json to_json() const override;

  const Data& data() const { return data_; }

 private:
  Data data_;
};

}  // namespace attnlab
