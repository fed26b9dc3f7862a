// Token embedding plus sinusoidal positions (Vaswani et al. 2017, section 3.5).
//   ids: [L] -> table[ids] · sqrt(D) + PE: [L, D]
//   PE(p, 2i) = sin(p / 10000^(2i/D)),  PE(p, 2i+1) = cos(p / 10000^(2i/D))
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace attnlab {

struct TokenEmbedding {
  RowMatrix table;  // [vocab, D]

  // Normal(0, 1/D) entries, so table rows · sqrt(D) have unit-variance features.
  static TokenEmbedding seeded(std::int64_t vocab, std::int64_t d_model, std::uint64_t seed);
  std::int64_t vocab_size() const { return table.rows(); }
  std::int64_t dim() const { return table.cols(); }

  // Throws ParamError for an id outside [0, vocab).
  RowMatrix forward(const std::vector<std::int32_t>& ids) const;
};

// [L, D] sinusoidal position table.
RowMatrix sinusoidal_positions(std::int64_t length, std::int64_t d_model);

}  // namespace attnlab
