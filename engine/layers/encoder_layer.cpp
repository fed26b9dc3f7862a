#include "layers/encoder_layer.h"

#include "core/rng.h"

namespace attnlab {

EncoderLayer EncoderLayer::seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, std::uint64_t seed,
                                  float qk_gain) {
  return EncoderLayer{LayerNorm::identity(d_model),
                      MultiHeadAttention::seeded(d_model, heads, Rng::derive(seed, "attention"), qk_gain),
                      LayerNorm::identity(d_model),
                      FeedForward::seeded(d_model, d_ff, Rng::derive(seed, "feed_forward"))};
}

RowMatrix EncoderLayer::forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  RowMatrix h = x + attention.forward(norm_attention.forward(x), options, trace);
  check_cancelled(options.cancel);
  h += feed_forward.forward(norm_ff.forward(h));
  return h;
}

}  // namespace attnlab
