// Affine map.  x: [L, in]  weight: [in, out]  bias: [out]  ->  y = x·weight + bias: [L, out]
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace attnlab {

struct Linear {
  RowMatrix weight;  // [in, out]
  RowVector bias;    // [out]

  // Normal(0, gain² / in) weights (gain 1 is LeCun's scaling), zero bias; numbers from `seed`.
  static Linear seeded(std::int64_t in, std::int64_t out, std::uint64_t seed, float gain = 1.0f);

  std::int64_t in_features() const { return weight.rows(); }
  std::int64_t out_features() const { return weight.cols(); }
  RowMatrix forward(const RowMatrix& x) const;
};

}  // namespace attnlab
