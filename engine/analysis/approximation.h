// How far an attention variant is from exact softmax attention on the same q, k, v.
//
//   exact:  weights A* [H, Lq, Lk], output O* [H, Lq, dv]
//   approx: weights A  [H, Lq, Lk], output O  [H, Lq, dv]
//
//   rel_output_error = ‖O − O*‖_F / ‖O*‖_F
//   mean_row_kl      = mean over attended query rows of KL(A*_i ‖ Â_i) = Σ_j A*_ij log(A*_ij / Â_ij),
//                      Â_i = A_i renormalised to sum 1 (YOSO's kernel rows do not) and floored at
//                      kKlFloor, so a key the variant never looks at costs log(1/kKlFloor) per
//                      unit of exact weight instead of infinity
//   topk_overlap     = mean over query rows of |top-k(A*_i) ∩ top-k(A_i)| / k,  k = min(k, Lk)
//                      (ties broken by the lower key index)
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "core/tensor.h"

namespace attnlab {

inline constexpr double kKlFloor = 1e-9;

struct ApproximationMetrics {
  double rel_output_error = 0.0;
  double mean_row_kl = 0.0;
  double topk_overlap = 1.0;
  int topk = 0;
  std::int64_t rows = 0;  // query rows that entered the averages

  nlohmann::json to_json() const;
};

// Over all heads, or one head (head >= 0). Throws ShapeError when shapes differ.
ApproximationMetrics compare_attention(const Tensor& exact_weights, const Tensor& exact_out, const Tensor& weights,
                                       const Tensor& out, int topk, int head = -1);

// Every head and all heads together in one pass (what the playground needs per layer).
struct HeadwiseMetrics {
  std::vector<ApproximationMetrics> per_head;
  ApproximationMetrics all_heads;
  Tensor row_kl;            // [H, Lq]: KL(A*_i ‖ Â_i) of each query row; NaN where it sees no key
  Tensor row_topk_overlap;  // [H, Lq]: |top-k ∩ top-k| / k of each query row; NaN likewise
};
HeadwiseMetrics compare_attention_by_head(const Tensor& exact_weights, const Tensor& exact_out, const Tensor& weights,
                                          const Tensor& out, int topk);

}  // namespace attnlab
