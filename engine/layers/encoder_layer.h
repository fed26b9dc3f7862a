// Pre-LN Transformer encoder layer (Xiong et al. 2020 placement):
//   h = x + MHA(LN1(x));  y = h + FFN(LN2(h))      x, h, y: [L, D]
#pragma once

#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/multi_head_attention.h"

namespace attnlab {

struct EncoderLayer {
  LayerNorm norm_attention;
  MultiHeadAttention attention;
  LayerNorm norm_ff;
  FeedForward feed_forward;

  static EncoderLayer seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, std::uint64_t seed,
                             float qk_gain = 1.0f);
  RowMatrix forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;
};

}  // namespace attnlab
