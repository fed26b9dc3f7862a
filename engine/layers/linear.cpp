#include "layers/linear.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

Linear Linear::seeded(std::int64_t in, std::int64_t out, std::uint64_t seed, float gain) {
  Linear layer;
  checked_element_count({in, out});  // refuse impossible sizes before allocating
  layer.weight.resize(in, out);
  Rng::fill_normal_chunked(layer.weight.data(), layer.weight.size(), seed, 0.0f, gain / std::sqrt(static_cast<float>(in)));
  layer.bias = RowVector::Zero(out);
  return layer;
}

RowMatrix Linear::forward(const RowMatrix& x) const {
  if (x.cols() != weight.rows()) {
    throw ShapeError("linear layer expects " + std::to_string(weight.rows()) + " input features, got [" +
                     std::to_string(x.rows()) + ", " + std::to_string(x.cols()) + "]");
  }
  RowMatrix y(x.rows(), weight.cols());
  y.noalias() = x * weight;
  y.rowwise() += bias;
  return y;
}

}  // namespace attnlab
