// Gated State Space layer (Mehta et al. 2022, Long Range Language Modeling via Gated State Spaces,
// arXiv:2206.13947) around a diagonal state space with the DSS kernel (Gupta et al. 2022,
// Diagonal State Spaces are as Effective as Structured State Spaces, arXiv:2203.14343).
// One whole layer; it has no attention.
//
// Shapes, for L tokens, model width D, expansion e, H state-space channels (ssm_dim), N states:
//   x: [L, D] -> out: [L, D]
//
//   X̂  = LayerNorm(x)                     [L, D]   (pre-norm, as lucidrains' GSS)
//   u  = GELU(X̂·W1)                       [L, e·D]
//   v  = GELU(X̂·W2)                       [L, H]
//   ŷ  = DSS(v) = K ⋆ v + d ⊙ v           [L, H]   causal convolution per channel
//   uc = ŷ·W3                             [L, e·D]
//   out = (uc ⊙ u)·W4 + x                 [L, D]
//
// DSS kernel of channel h (Λ ∈ C^N with Re Λ < 0, shared by the channels; W ∈ C^{H×N};
// Δ_h = exp(log_dt_h); z_n = e^{Δ_h Λ_n}):
//   exp:      K_l = Re Σ_n W_hn · (z_n − 1)/Λ_n · z_n^l
//   softmax:  K_l = Re Σ_n W_hn / Λ_n · z_n^l · (z_n − 1)/(z_n^L − 1)   (the row softmax of l·ΔΛ_n over
//             l < L, written in closed form; it depends on L)
// The exp kernel is the impulse response of the diagonal recurrence
//   s_l = z ⊙ s_{l−1} + (z − 1)/Λ · v_l,   y_l = Re(W·s_l).
// Re Λ = −exp(lambda_re) is negative whatever the stored value, so |z| < 1 and K_l → 0.
//
// A state space runs left to right: the layer is always causal (options.causal is ignored), and
// the convolution is exactly causal (causal_fft_convolution, analysis/convolution.h): changing token j
// leaves every output before j bit-identical. Padded tokens (options.key_padding) enter the
// state space as zeros.
//
// Weights (under the layer's prefix):
//   norm.{gamma,beta} [D];  w1 Linear [D, e·D];  w2 Linear [D, H];  w3 Linear [H, e·D];  w4 Linear [e·D, D];
//   dss.lambda_re [N] (log(−Re Λ)), dss.lambda_im [N], dss.w_re [H, N], dss.w_im [H, N],
//   dss.log_dt [H], dss.d [H].
// Cost: kernel O(H·N·L); convolution O(H·L log² L); projections O(L·D·(e·D + H)). No L × L tensor.
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

enum class DssKernel { Exp, Softmax };

// What one GSS forward computed, for the views.
struct GssTrace final : public TraceExtras {
  Tensor kernel;     // [H, lags] K_l, lags = min(L, 256)
  Tensor lambda_re;  // [N] Re Λ (negative)
  Tensor lambda_im;  // [N] Im Λ
  Tensor gate;       // [L] mean |u| per token
  Tensor dt;         // [H] Δ = exp(log_dt)
  std::string kernel_kind;  // "exp" or "softmax"

  std::string_view kind() const override { return "gss"; }
  // Keys: kind, kernel, lambda_re, lambda_im, gate, dt, kernel_kind.
  nlohmann::json to_json() const override;
};

struct GssLayer {
  std::int64_t d_model = 0;
  std::int64_t state_dim = 64;   // N
  std::int64_t ssm_dim = 256;    // H
  std::int64_t expansion = 4;    // e
  DssKernel kernel_kind = DssKernel::Exp;

  LayerNorm norm;
  Linear w1, w2, w3, w4;  // [D, e·D], [D, H], [H, e·D], [e·D, D]
  RowVector lambda_re;    // [N] log(−Re Λ)
  RowVector lambda_im;    // [N]
  RowMatrix w_re, w_im;   // [H, N]
  RowVector log_dt;       // [H]
  RowVector d;            // [H]

  // state_dim, ssm_dim, expansion, kernel, dt_min, dt_max.
  static const std::vector<ParamSpec>& schema();
  // `heads` and `d_ff` are unused (no attention; the expansion sets the gate width).
  // Λ starts at −½ + iπn (S4D-Lin), W ~ CN(0, 1), log Δ uniform in [log dt_min, log dt_max], d ~ N(0, 1).
  static GssLayer seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, const Params& params,
                         std::uint64_t seed);
  void visit_weights(const std::string& prefix, WeightTable& table);

  // K_l of channel h for l = 0 .. count−1 into lags[count], for a sequence of `length` tokens
  // (the softmax kernel's normalisation depends on it).
  void kernel(std::int64_t channel, std::int64_t length, double* lags, std::int64_t count) const;
  // [H, lags]: the kernels of a sequence of `length` tokens, first `lags` lags (lags ≤ length).
  Eigen::MatrixXd kernels(std::int64_t length, std::int64_t lags) const;
  // The DSS block: v [L, H] -> K ⋆ v + d ⊙ v: [L, H].
  RowMatrix dss(const RowMatrix& v, const CancelToken* cancel = nullptr) const;

  // x: [L, D] -> [L, D]. Uses options.key_padding and cancel. With a trace: one GssTrace;
  // trace->weights stays empty.
  RowMatrix forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;
};

}  // namespace attnlab
