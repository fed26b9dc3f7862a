// Row softmax over a prefix of visible keys, skipping hidden (padded, dropped) keys — the inner
// step of the layers that write their own attention (block-recurrent windows, Perceiver AR).
#pragma once

#include <cstdint>
#include <limits>

namespace attnlab {

// Softmax of a row of logits over its first `visible` entries, without the keys flagged in
// `hidden` (indexed like the row; may be null). Every other entry becomes exactly 0 (set by
// position, not left to exp(−inf)), so a key a query must not see has no influence at all; a row
// that sees no key becomes all 0. `row` is any Eigen row expression.
template <typename Row>
void masked_softmax(Row&& row, std::int64_t visible, const std::uint8_t* hidden) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const std::int64_t cols = row.size();
  if (visible < cols) row.tail(cols - visible).setZero();
  auto seen = row.head(visible);
  if (hidden) {
    for (std::int64_t c = 0; c < visible; ++c)
      if (hidden[c]) seen(c) = kNegInf;
  }
  const float m = visible > 0 ? seen.maxCoeff() : kNegInf;
  if (m == kNegInf) {
    seen.setZero();
    return;
  }
  seen = (seen.array() - m).exp().matrix();
  if (hidden) {
    for (std::int64_t c = 0; c < visible; ++c)
      if (hidden[c]) seen(c) = 0.0f;
  }
  seen /= seen.sum();
}

}  // namespace attnlab
