// ∞-former layer: segment attention plus a continuous long-term memory (Martins et al. 2022,
// ∞-former: Infinite Memory Transformer, arXiv:2109.00301). One whole layer with its own FFN.
//
// The text is read in segments of S tokens (the last one may be shorter). For segment s, with
// x_s: [S, D], H heads of width d = D/H, N Gaussian basis functions:
//   X̂_s   = LayerNorm_1(x_s)                                                   [S, D]
//   short = MHA(X̂_s) before W_o: the layer's attention variant within the segment (causal when
//           options.causal)                                                    [S, D]
//   long  = the read of the memory of segments 0 .. s−1 (zero for s = 0)       [S, D]
//   h     = x_s + (short + long)·W_o + b_o
//   out_s = h + FFN(LayerNorm_2(h))                                            [S, D]
// The short-term attention sees its own segment only, so trace->weights [H, L, L] is block
// diagonal. The variant's own extras (trace->extras) are kept only when there is one segment
// (with several, its per-segment tables would not match the whole sequence).
//
// Memory. Basis ψ_j(t) = N(t; μ_j, σ_j²), centres linspace(0, 1, N/2) × widths {0.01, 0.05}
// (j = 2·centre + width). A signal X̄(t) = Bᵀψ(t), B: [N, D], is fitted to values X [P, D] at
// positions t [P] by ridge regression, F = ψ(t) [N, P]:
//   B = (F Fᵀ + λ I)⁻¹ F X.
// After segment 0 the memory is fitted to X̂_0 at t_i = (i + ½)/S. After each later segment s:
// the old signal is sampled at `samples` positions p_k ∈ [0, 1] (p_k = (k + ½)/samples; with
// sticky memories drawn instead from a 128-bin histogram of the attention mass that segment s's
// queries put on [0, 1]), its values X̄(p_k) are placed at τ·p_k, segment s's X̂_s at
// τ + (1 − τ)(i + ½)/S, and B is refitted to both. Padded tokens are not stored. The memory's size
// is N × D whatever the length read so far.
//
// Read, per head h, for the queries of segment s (all in double precision for r):
//   q = X̂_s·W_q^mem [S, D],  K = B·W_k^mem, V = B·W_v^mem [N, D]   (head h: columns h·d .. h·d + d)
//   s_i = q_i K_hᵀ / √d  [N]
//   μ_i = sigmoid(s_i·w_μ + b_μ),  σ_i² = softplus(s_i·w_σ + b_σ)
//   r_ij = E_{t~N(μ_i, σ_i²)} ψ_j(t) = N(μ_i; μ_j, σ_i² + σ_j²)        (closed form)
//   long_i[head h] = Σ_j r_ij V_h[j]
//
// Weights (under the layer's prefix):
//   norm_attention.{gamma,beta} [D]; attention.w_{q,k,v,o} Linear [D, D];
//   memory.w_q, memory.w_k, memory.w_v Linear [D, D]; memory.w_mu, memory.w_sigma Linear [N, 1];
//   norm_ff.{gamma,beta} [D]; ff.up Linear [D, d_ff], ff.down Linear [d_ff, D].
// Cost per segment: attention of S tokens, O(N·D² + S·N·D) for the read, O((samples + S)·N·(N + D))
// for the refit; memory O(N·D).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "attention/attention.h"
#include "attention/params.h"
#include "core/tensor.h"
#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "layers/multi_head_attention.h"

namespace attnlab {

class WeightTable;

// N Gaussian densities on [0, 1].
struct GaussianBasis {
  Eigen::VectorXd centres;  // [N] μ_j
  Eigen::VectorXd widths;   // [N] σ_j

  // count/2 centres linspace(0, 1, count/2), each with width 0.01 and 0.05; count even, >= 4.
  static GaussianBasis standard(std::int64_t count);
  std::int64_t size() const { return centres.size(); }
  // ψ_j(t_p) for every function j and position p: [N, P].
  Eigen::MatrixXd evaluate(const Eigen::VectorXd& positions) const;
  // E_{t ~ N(μ, variance)} ψ_j(t) = N(μ; μ_j, variance + σ_j²): [N].
  Eigen::VectorXd expected(double mu, double variance) const;
};

// X̄(t) = Bᵀψ(t).
struct ContinuousSignal {
  Eigen::MatrixXd coefficients;  // B [N, D]

  // Ridge regression of values [P, D] at positions [P] (see the header comment); ridge λ > 0.
  static ContinuousSignal fit(const GaussianBasis& basis, const Eigen::VectorXd& positions,
                              const Eigen::MatrixXd& values, double ridge);
  // X̄ at each position: [P, D].
  Eigen::MatrixXd evaluate(const GaussianBasis& basis, const Eigen::VectorXd& positions) const;
};

// One read of the memory by the S queries of a segment.
struct MemoryRead {
  RowMatrix context;         // [S, D] the long-term term, heads concatenated, before W_o
  Eigen::MatrixXd mu;        // [H, S] μ per head and query
  Eigen::MatrixXd variance;  // [H, S] σ² per head and query
};

// The memory as segment s (s >= 1) read it.
struct MemorySegmentTrace {
  std::int64_t segment = 0;  // s
  std::int64_t start = 0;    // first token of the segment
  Tensor stored;             // [C, P] the values the memory was fitted to, channels 0 .. C−1 (C = min(D, 8))
  Tensor positions;          // [P] their positions in [0, 1]
  Tensor reconstructed;      // [C, 200] X̄(t) on t = linspace(0, 1, 200)
  Tensor mu;                 // [S] μ per query, mean over heads
  Tensor sigma;              // [S] σ per query, mean over heads
  Tensor head_mu;            // [H, S] μ per head and query
  Tensor head_sigma;         // [H, S] σ per head and query
  Tensor density;            // [H, S, 128] N(t; μ, σ²) of each head and query averaged over each of 128
                             // equal bins of [0, 1] (the bin's probability mass × 128): a narrow
                             // Gaussian still shows in the bin that holds it
  bool compressed = false;   // [0, τ] holds the older memory compressed (segments s >= 2); segment
                             // 1 reads a memory fitted to segment 0 alone, over all of [0, 1]
  Tensor sticky_histogram;   // [128] attention mass per bin of [0, 1] (sums to 1); empty unless sticky
};

struct MemoryTrace final : public TraceExtras {
  std::int64_t segments = 0;  // number of segments read
  std::int64_t segment = 0;   // tokens per segment
  std::int64_t basis = 0;     // N
  double tau = 0.0;
  bool sticky = false;
  std::vector<MemorySegmentTrace> reads;  // one per segment s >= 1, in order

  std::string_view kind() const override { return "memory"; }
  // Keys: kind, segments, segment, basis, tau, sticky, and per_segment: one object per read with
  // segment, start, compressed, stored, positions, reconstructed, mu, sigma, head_mu, head_sigma,
  // density and (sticky only) sticky_histogram.
  nlohmann::json to_json() const override;
};

struct InfinityMemoryLayer {
  std::int64_t d_model = 0;
  std::int64_t heads = 1;
  std::int64_t d_ff = 0;
  std::int64_t segment = 64;
  std::int64_t samples = 512;
  double tau = 0.75;
  double ridge = 1.0;
  bool sticky = false;
  GaussianBasis basis;  // fixed by the basis size, not a weight

  LayerNorm norm_attention;
  MultiHeadAttention attention;  // short-term; its w_o also maps the long-term context
  Linear memory_q, memory_k, memory_v;  // [D, D]
  Linear memory_mu, memory_sigma;       // [N, 1]
  LayerNorm norm_ff;
  FeedForward feed_forward;

  // segment, basis, tau, ridge, samples, sticky.
  static const std::vector<ParamSpec>& schema();
  static InfinityMemoryLayer seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, const Params& params,
                                    std::uint64_t seed);
  void visit_weights(const std::string& prefix, WeightTable& table);

  // The long-term read for normalised segment tokens x̂ [S, D].
  MemoryRead read(const RowMatrix& normed, const ContinuousSignal& memory) const;

  // x: [L, D] -> [L, D]. Needs options.variant (the short-term attention). With a trace:
  // weights [H, L, L] (block diagonal) and one MemoryTrace.
  RowMatrix forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;
};

}  // namespace attnlab
