#include "layers/reversible.h"

#include "core/rng.h"

namespace attnlab {
namespace {

void keep(ActivationTape* tape, const RowMatrix& m) {
  if (tape) tape->kept.push_back(Tensor::from_matrix(m));
}

}  // namespace

std::int64_t ActivationTape::bytes() const {
  std::int64_t total = 0;
  for (const Tensor& t : kept) total += t.size() * static_cast<std::int64_t>(sizeof(float));
  return total;
}

ReversibleBlock ReversibleBlock::seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff, std::uint64_t seed) {
  return ReversibleBlock{LayerNorm::identity(d_model),
                         MultiHeadAttention::seeded(d_model, heads, Rng::derive(seed, "attention")),
                         LayerNorm::identity(d_model), FeedForward::seeded(d_model, d_ff, Rng::derive(seed, "feed_forward"))};
}

RowMatrix ReversibleBlock::f(const RowMatrix& x, const AttentionOptions& options) const {
  return attention.forward(norm_f.forward(x), options, nullptr);
}

RowMatrix ReversibleBlock::g(const RowMatrix& x) const { return feed_forward.forward(norm_g.forward(x)); }

ReversibleStack ReversibleStack::seeded(std::int64_t layers, std::int64_t d_model, std::int64_t heads, std::int64_t d_ff,
                                        std::uint64_t seed) {
  ReversibleStack stack;
  for (std::int64_t i = 0; i < layers; ++i) {
    stack.blocks_.push_back(ReversibleBlock::seeded(d_model, heads, d_ff, Rng::derive(seed, "block" + std::to_string(i))));
  }
  return stack;
}

TwoStreams ReversibleStack::forward(const RowMatrix& x, const AttentionOptions& options, ActivationTape* tape) const {
  TwoStreams s{x, x};
  for (const ReversibleBlock& block : blocks_) {
    check_cancelled(options.cancel);
    s.x1 += block.f(s.x2, options);  // y1 = x1 + F(x2)
    s.x2 += block.g(s.x1);           // y2 = x2 + G(y1)
  }
  keep(tape, s.x1);
  keep(tape, s.x2);
  return s;
}

RowMatrix ReversibleStack::merge(const TwoStreams& y) { return (y.x1 + y.x2) * 0.5f; }

TwoStreams ReversibleStack::reconstruct_inputs(const TwoStreams& y, const AttentionOptions& options) const {
  TwoStreams s = y;
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
    check_cancelled(options.cancel);
    s.x2 -= it->g(s.x1);  // x2 = y2 − G(y1)
    s.x1 -= it->f(s.x2, options);  // x1 = y1 − F(x2)
  }
  return s;
}

RowMatrix standard_forward(const std::vector<ReversibleBlock>& blocks, const RowMatrix& x, const AttentionOptions& options,
                           ActivationTape* tape) {
  RowMatrix h = x;
  for (const ReversibleBlock& block : blocks) {
    check_cancelled(options.cancel);
    keep(tape, h);
    h += block.f(h, options);
    keep(tape, h);
    const RowMatrix normed = block.norm_g.forward(h);
    RowMatrix hidden = block.feed_forward.up.forward(normed);
    keep(tape, hidden);  // pre-activation, needed for the GELU derivative
    gelu_inplace(hidden);
    h += block.feed_forward.down.forward(hidden);
  }
  return h;
}

}  // namespace attnlab
