// Position-wise feed-forward block.  x: [L, D] -> down(gelu(up(x))): [L, D], up: D -> d_ff
#pragma once

#include <cstdint>

#include "layers/linear.h"

namespace attnlab {

struct FeedForward {
  Linear up;    // [D, d_ff]
  Linear down;  // [d_ff, D]

  static FeedForward seeded(std::int64_t d_model, std::int64_t d_ff, std::uint64_t seed);
  RowMatrix forward(const RowMatrix& x) const;
};

// GELU with the exact erf form: x · Φ(x).
void gelu_inplace(RowMatrix& x);

}  // namespace attnlab
