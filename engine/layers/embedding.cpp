#include "layers/embedding.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

TokenEmbedding TokenEmbedding::seeded(std::int64_t vocab, std::int64_t d_model, std::uint64_t seed) {
  checked_element_count({vocab, d_model});  // refuse impossible sizes before allocating
  TokenEmbedding e{RowMatrix(vocab, d_model)};
  Rng::fill_normal_chunked(e.table.data(), e.table.size(), seed, 0.0f, 1.0f / std::sqrt(static_cast<float>(d_model)));
  return e;
}

RowMatrix sinusoidal_positions(std::int64_t length, std::int64_t d_model) {
  RowMatrix pe(length, d_model);
  for (std::int64_t i = 0; i < d_model; i += 2) {
    const double inv_freq = std::pow(10000.0, -static_cast<double>(i) / static_cast<double>(d_model));
    for (std::int64_t p = 0; p < length; ++p) {
      const double angle = static_cast<double>(p) * inv_freq;
      pe(p, i) = static_cast<float>(std::sin(angle));
      if (i + 1 < d_model) pe(p, i + 1) = static_cast<float>(std::cos(angle));
    }
  }
  return pe;
}

RowMatrix TokenEmbedding::forward(const std::vector<std::int32_t>& ids) const {
  const std::int64_t L = static_cast<std::int64_t>(ids.size());
  RowMatrix x = sinusoidal_positions(L, dim());
  const float scale = std::sqrt(static_cast<float>(dim()));
  for (std::int64_t p = 0; p < L; ++p) {
    const std::int32_t id = ids[static_cast<std::size_t>(p)];
    if (id < 0 || id >= vocab_size()) {
      throw ParamError("token id " + std::to_string(id) + " at position " + std::to_string(p) +
                       " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")");
    }
    x.row(p) += table.row(id) * scale;
  }
  return x;
}

}  // namespace attnlab
