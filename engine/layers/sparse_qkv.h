// Sparse Q/K/V projections of the Scaling Transformers (Jaszczur et al. 2021, "Sparse is Enough
// in Scaling Transformers", section 3.2; trax sparsity.py MultiplicativeConvCausalAttention with
// v_concat_type 'none'): a multiplicative dense layer shared by q, k and v, then one small
// convolution each, causal over length.
//
// Shapes, for L tokens, width D, S = heads modules of M = D / S features:
//   x: [L, D]   gating G: [S, D]   projection E: [D, M]   bias b: [D]
//   u[l, s, m] = Σ_d x[l, d] · G[s, d] · E[d, m] + b[s·M + m]                   [L, S, M] = [L, D]
// Each of q, k, v convolves u over (length, module) with a kernel shared by all modules:
//   out[l, s, :] = c + Σ_{τ < T} Σ_{j < J} u[l − τ, s + j − (J − 1)/2, :] · K[τ, j]     [L, D]
// with zeros where l − τ < 0 (causal: out[l] depends on x[0..l] only) or the module index leaves
// [0, S). T = length_kernel; J = module_kernel for q and k, 1 for v (as in trax).
//   K stored as a matrix [T·J·M, M], row (τ·J + j)·M + c_in; c: [M].
// Cost: O(L·D·M) for u and O(T·J·L·D·M) per convolution; parameters O(S·D + D·M + T·J·M²)
// instead of the 3·D² of three dense projections.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/params.h"
#include "core/tensor.h"

namespace attnlab {

class WeightTable;

struct SparseQkv {
  std::int64_t d_model = 0;
  std::int64_t modules = 1;        // S
  std::int64_t length_kernel = 3;  // T
  std::int64_t module_kernel = 3;  // J for q and k (v uses 1)
  RowMatrix gating;                // [S, D]
  RowMatrix projection;            // [D, M]
  RowVector bias;                  // [D]

  struct Conv {
    std::int64_t module_kernel = 1;  // J
    RowMatrix kernel;                // [T·J·M, M]
    RowVector bias;                  // [M]
  };
  Conv conv_q, conv_k, conv_v;

  struct Projections {
    RowMatrix q, k, v;  // each [L, D]
  };

  // length_kernel, module_kernel (odd).
  static const std::vector<ParamSpec>& schema();
  // S = heads, which must divide d_model; d_ff is not used.
  static SparseQkv seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, const Params& params,
                          std::uint64_t seed);
  std::int64_t module_size() const { return d_model / modules; }
  // prefix + "gating" [S, D], "projection" [D, M], "bias" [D], and for c in q, k, v:
  // "conv_c.kernel" [T·J·M, M], "conv_c.bias" [M].
  void visit_weights(const std::string& prefix, WeightTable& table);

  // x: [L, D] -> q, k, v: [L, D] each.
  Projections project(const RowMatrix& x) const;
  // The shared multiplicative dense output u: [L, D].
  RowMatrix multiplicative(const RowMatrix& x) const;
};

}  // namespace attnlab
