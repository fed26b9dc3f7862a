// Layer normalisation over the feature axis.  x: [L, D] -> (x - mean) / sqrt(var + eps) · gamma + beta
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace attnlab {

struct LayerNorm {
  RowVector gamma;  // [D]
  RowVector beta;   // [D]
  float eps = 1e-5f;

  static LayerNorm identity(std::int64_t dim);  // gamma 1, beta 0
  RowMatrix forward(const RowMatrix& x) const;
};

}  // namespace attnlab
