// Perceiver AR layer (Hawthorne, Jaegle, Cangea, Borgeaud, Nash, Malinowski, Dieleman, Vinyals,
// Botvinick, Simon, Sheahan, Zeghidour, Alayrac, Carreira, Engel 2022, "General-purpose,
// long-context autoregressive modeling with Perceiver AR", arXiv:2202.07765): a whole layer that
// reads a long input through a cross-attention into N latents and then works on the latents only.
//
// Shapes: x, output [L, D]; H heads of d = D/H; N = min(latents, L) latents, the last N
// positions; the first Lp = L − N positions are the prefix.
//   u = LN_c(x)                                  [L, D]
//   q = u[Lp:]·W_q  [N, D];   k, v = u·W_k, u·W_v  [L, D]   (prefix and latents share W_k, W_v)
//   A_h = softmax(q_h k_hᵀ/√d + M),  M_ij = 0 for j ≤ Lp + i (and j not dropped), else −∞
//   h = x[Lp:] + concat_h(A_h v_h)·W_o;   z = h + FFN(LN_f(h))          [N, D]
//   then latent_layers pre-LN causal self-attention layers over the N latents (EncoderLayer,
//   with options.variant / options.params and causal = true), each with its FFN.
//   output: rows 0..Lp−1 = x (copied unchanged), rows Lp.. = the processed latents.
// The layer is autoregressive, so it is causal whatever AttentionOptions::causal says: latent i
// (absolute position Lp + i) depends on no token after Lp + i. Padded keys (options.key_padding)
// are never attended.
// Prefix dropout (Perceiver AR's cross_attn_dropout): with prefix_dropout = p > 0 every prefix key
// is hidden from the cross-attention with probability p, drawn from options.seed
// (Rng::derive(seed, "perceiver_ar/prefix_dropout")); the same seed drops the same keys. Weights
// are renormalised over the keys that remain, as when the dropped tokens are removed.
//
// Weights (visit_weights names, shapes): norm_cross [D], cross_attention.{w_q,w_k,w_v,w_o} [D, D],
// norm_ff [D], feed_forward (D → d_ff → D), latent_layers.<i>.{norm_attention, attention.*,
// norm_ff, feed_forward} as an EncoderLayer.
//
// Cost: cross-attention O(N·L·D), latent layers O(latent_layers·N²·D) with softmax: linear in L
// for fixed N. Without a trace no L×L (nor N×L) matrix exists: keys and values are [L, D]
// tensors (counted by the memory meter, as is the scratch of one block of 64 latents against
// at most L keys per thread).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/params.h"
#include "core/tensor.h"
#include "layers/encoder_layer.h"
#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/multi_head_attention.h"
#include "layers/weight_table.h"

namespace attnlab {

// What the layer did. kind() "perceiver".
struct PerceiverTrace final : public TraceExtras {
  std::int64_t latents = 0;        // N
  std::int64_t prefix_length = 0;  // Lp
  Tensor cross_weights;            // [H, N, L]; row i is 0 after key Lp + i
  Tensor prefix_mass;              // [H, N]   attention mass on the prefix keys (0 when Lp = 0)
  Tensor recent_mass;              // [H, N]   attention mass on the latent (recent) keys Lp .. Lp + i;
                                   //          prefix + recent = 1 for a latent that sees any key
  Tensor latent_weights;           // [latent_layers, H, N, N] the latent layers' attention
  std::vector<std::int64_t> dropped_prefix;  // prefix positions hidden by prefix dropout, ascending

  std::string_view kind() const override { return "perceiver"; }
  // {"kind", "latents", "prefix_length", "cross_weights", "prefix_mass", "recent_mass",
  //  "latent_weights", "dropped_prefix"}
  nlohmann::json to_json() const override;
};

struct PerceiverArLayer {
  // Settings (from Params; not weights).
  std::int64_t d_model = 0;
  std::int64_t heads = 1;
  std::int64_t d_ff = 0;
  std::int64_t latents = 64;
  double prefix_dropout = 0.0;

  LayerNorm norm_cross;
  MultiHeadAttention cross_attention;  // holds W_q, W_k, W_v, W_o; its forward() is not used
  LayerNorm norm_ff;
  FeedForward feed_forward;
  std::vector<EncoderLayer> latent_layers;  // causal self-attention over the latents

  static const std::vector<ParamSpec>& schema();
  // Throws ParamError for a d_model not divisible by heads or a non-positive size.
  static PerceiverArLayer seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, const Params& params,
                                 std::uint64_t seed);

  void visit_weights(const std::string& prefix, WeightTable& table);

  // x: [L, D] -> [L, D]. With a trace: weights [H, L, L] holding the cross-attention in the
  // latent rows (prefix rows all 0) and one PerceiverTrace in layer_extras.
  RowMatrix forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;
};

}  // namespace attnlab
