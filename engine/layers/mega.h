// Mega: moving-average equipped gated attention (Ma et al. 2022, arXiv:2209.10655), one whole
// layer (it replaces attention + FFN; a model may still put its own FFN after it).
//
// Shapes, for L tokens, model width D, EMA expansion n (ndim), attention width z (z_dim),
// value width E = round(hidden_ratio · D):
//   x: [L, D] -> out: [L, D]
//
//   X̂  = LayerNorm(x)                                                   [L, D]  (pre-norm, as the reference)
//   EMA, per channel c and expansion dimension j < n (p = σ(δ), a = σ(α̃), q = 1 − p·a):
//        h_t = p·β·x_t + q·h_{t−1}   y_t = Σ_j γ_j·√(1/n)·h_{t,j}
//        = a causal convolution with kernel k_t = Σ_j γ_j·√(1/n)·p_j·β_j·q_j^t            [D, L]
//        options.causal: y = k ⋆ x (causal).  Otherwise the bidirectional form of the reference
//        (fairseq MultiHeadEMA, shift on): a second, independent parameter set gives a kernel b
//        over strictly later tokens,  y_t = Σ_{s≤t} k_{t−s}·x_s + Σ_{s>t} b_{s−t−1}·x_s.
//        Padded tokens (options.key_padding) enter the EMA as zeros.
//   X'  = SiLU(EMA(X̂) + ω ⊙ X̂)                                          [L, D]
//   V   = SiLU(X̂·W_v)                                                   [L, E]
//   Z   = SiLU(X'·W_z)                                                   [L, z]
//   Q   = Z ⊙ κ_q + μ_q,   K = Z ⊙ κ_k + μ_k                             [L, z]
//   r   = SiLU(X'·W_r)                                                   [L, E]
//   u   = σ(X'·W_u)                                                      [L, D]
//   A   = single-head attention of Q on K, within chunks of c tokens when chunk > 0  [L, L]
//           softmax:  softmax(Q Kᵀ / √z)
//           laplace:  ½(1 + erf((s − 0.707107) / (0.282095·√2))),  s = Q Kᵀ / n_i
//           relu2:    max(s, 0)²,                                       s = Q Kᵀ / n_i
//         n_i = the number of keys query i sees (its chunk, or the keys up to i when causal,
//         padded keys excluded): the reference scales by the visible length for both laplace and
//         relu2. Masked keys get weight exactly 0; only softmax rows sum to 1.
//         The reference's relative position bias is omitted (the EMA already carries position).
//   H   = SiLU(X'·W_h + (r ⊙ A V)·U_h)                                   [L, D]
//   out = u ⊙ H + (1 − u) ⊙ x                                            [L, D]
//
// Weights (under the layer's prefix):
//   norm.{gamma,beta} [D];  ema.{delta,alpha,beta,gamma} [D, n], ema.omega [D];
//   ema_backward.{delta,alpha,beta,gamma} [D, n] (bidirectional EMA only);
//   w_v Linear [D, E];  w_z Linear [D, z];  w_r Linear [D, E];  w_u Linear [D, D];  w_h Linear [D, D];
//   q_scale, q_offset, k_scale, k_offset [z];  u_h Linear [E, D].
//
// Cost: EMA O(L log² L · D) (causal_fft_convolution, analysis/convolution.h) or O(L log L · D) bidirectional;
// attention O(L² z) full or O(L·c·(z + E)) chunked. The fast path never holds an L × L tensor:
// attention runs over blocks of 64 queries against the keys of their chunk.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention.h"
#include "attention/params.h"
#include "core/cancel.h"
#include "core/tensor.h"
#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "layers/multi_head_attention.h"

namespace attnlab {

class WeightTable;

// One set of damped-EMA parameters, raw (before the sigmoids).
struct DampedEma {
  RowMatrix delta;  // [D, n]  p = σ(delta)
  RowMatrix alpha;  // [D, n]  a = σ(alpha), q = 1 − p·a
  RowMatrix beta;   // [D, n]
  RowMatrix gamma;  // [D, n]

  std::int64_t channels() const { return delta.rows(); }
  std::int64_t ndim() const { return delta.cols(); }
  // k_t of channel c for t = 0 .. length−1 (double).
  void kernel(std::int64_t channel, std::int64_t length, double* lags) const;
  // max_j q_j of channel c (q ∈ (0, 1), so the kernel decays at least as fast as this power).
  double decay(std::int64_t channel) const;
};

enum class MegaActivation { Softmax, Laplace, Relu2 };

// What one Mega forward computed, for the views.
struct MegaTrace final : public TraceExtras {
  Tensor ema_kernel;           // [D, lags] forward (causal) kernel k_t, lags = min(L, 256)
  Tensor ema_kernel_backward;  // [D, lags] kernel b over later tokens; empty when causal
  Tensor decay;                // [D] max_j q_j
  Tensor gate_u;               // [L] mean over channels of u
  Tensor gate_r;               // [L] mean over the E channels of r
  std::int64_t chunk = 0;      // tokens per attention chunk as applied (L when the whole sequence)
  bool causal = false;
  std::string attention;       // "softmax", "laplace" or "relu2"

  std::string_view kind() const override { return "mega"; }
  // Keys: kind, ema_kernel, ema_kernel_backward (only when not causal), decay, gate_u, gate_r,
  // chunk, causal, attention.
  nlohmann::json to_json() const override;
};

struct MegaLayer {
  std::int64_t d_model = 0;
  std::int64_t ndim = 16;
  std::int64_t z_dim = 64;
  std::int64_t hidden = 0;  // E
  std::int64_t chunk = 0;   // 0: whole sequence
  MegaActivation activation = MegaActivation::Softmax;

  LayerNorm norm;
  DampedEma ema;           // forward (causal) kernel
  DampedEma ema_backward;  // kernel over later tokens, bidirectional mode only
  RowVector omega;         // [D]
  Linear w_v, w_z, w_r, w_u, w_h;  // [D, E], [D, z], [D, E], [D, D], [D, D]
  RowVector q_scale, q_offset, k_scale, k_offset;  // [z]
  Linear u_h;              // [E, D]

  // ndim, z_dim, hidden_ratio, chunk, attention.
  static const std::vector<ParamSpec>& schema();
  // `heads` and `d_ff` are unused (Mega has one attention head and no FFN of its own).
  static MegaLayer seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, const Params& params,
                          std::uint64_t seed);
  void visit_weights(const std::string& prefix, WeightTable& table);

  // EMA(x) for x: [L, D] (already normalised, padded rows already zero) -> [L, D], by FFT.
  RowMatrix ema_filter(const RowMatrix& x, bool causal, const CancelToken* cancel = nullptr) const;
  // The kernels at lags 0 .. lags−1: [D, lags] (backward: the b kernel).
  Eigen::MatrixXd ema_kernels(std::int64_t lags, bool backward = false) const;

  // x: [L, D] -> [L, D]. Uses options.causal, key_padding and cancel (not the variant: the
  // attention is Mega's own). With a trace: weights [1, L, L] and one MegaTrace.
  RowMatrix forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;
};

}  // namespace attnlab
