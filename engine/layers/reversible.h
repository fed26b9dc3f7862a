// Reversible residual layers (Gomez et al. 2017, RevNet; used by Kitaev et al. 2020, Reformer).
//
// The model width D is kept; the input is duplicated into two streams (x1, x2) = (x, x) and each
// block computes
//     y1 = x1 + F(x2)        F = attention(LayerNorm(·))   [L, D] -> [L, D]
//     y2 = x2 + G(y1)        G = feed-forward(LayerNorm(·)) [L, D] -> [L, D]
// which can be undone exactly (up to rounding) from the outputs alone:
//     x2 = y2 − G(y1),   x1 = y1 − F(x2).
// The stack's output is the mean of the two streams (as in lucidrains/reformer-pytorch; trax
// concatenates them). Because every block's input can be recomputed from its output, training
// needs to keep only the last block's outputs: activation memory does not grow with depth,
// while a standard residual stack keeps every block's activations.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/multi_head_attention.h"

namespace attnlab {

struct ReversibleBlock {
  LayerNorm norm_f;
  MultiHeadAttention attention;  // F
  LayerNorm norm_g;
  FeedForward feed_forward;      // G

  static ReversibleBlock seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, std::uint64_t seed);
  RowMatrix f(const RowMatrix& x, const AttentionOptions& options) const;
  RowMatrix g(const RowMatrix& x) const;
};

// The two streams, each [L, D].
struct TwoStreams {
  RowMatrix x1;
  RowMatrix x2;
};

// Activations kept for a backward pass, as tracked tensors (the memory meter counts them).
struct ActivationTape {
  std::vector<Tensor> kept;
  std::int64_t bytes() const;
};

class ReversibleStack {
 public:
  static ReversibleStack seeded(std::int64_t layers, std::int64_t d_model, std::int64_t heads, std::int64_t d_ff,
                                std::uint64_t seed);
  std::int64_t depth() const { return static_cast<std::int64_t>(blocks_.size()); }
  const std::vector<ReversibleBlock>& blocks() const { return blocks_; }

  // x: [L, D] -> the two output streams. With a tape, keeps what backward needs: only the
  // final streams (inputs are recomputed block by block).
  TwoStreams forward(const RowMatrix& x, const AttentionOptions& options, ActivationTape* tape = nullptr) const;
  // The mean of the two output streams: [L, D].
  static RowMatrix merge(const TwoStreams& y);
  // Walks back from the outputs to the inputs, block by block, as a backward pass would.
  TwoStreams reconstruct_inputs(const TwoStreams& y, const AttentionOptions& options) const;

 private:
  std::vector<ReversibleBlock> blocks_;
};

// The same blocks as an ordinary pre-LN residual stack (x + F(x), then + G(·)), for comparison.
// With a tape it keeps, per block, what backward needs without recomputation: the block input,
// the input of G, and the feed-forward hidden activations [L, d_ff].
RowMatrix standard_forward(const std::vector<ReversibleBlock>& blocks, const RowMatrix& x,
                           const AttentionOptions& options, ActivationTape* tape = nullptr);

}  // namespace attnlab
