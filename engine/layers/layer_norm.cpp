#include "layers/layer_norm.h"

#include "core/error.h"

namespace attnlab {

LayerNorm LayerNorm::identity(std::int64_t dim) {
  return LayerNorm{RowVector::Ones(dim), RowVector::Zero(dim), 1e-5f};
}

RowMatrix LayerNorm::forward(const RowMatrix& x) const {
  if (x.cols() != gamma.size()) {
    throw ShapeError("layer norm expects " + std::to_string(gamma.size()) + " features, got " +
                     std::to_string(x.cols()));
  }
  RowMatrix y(x.rows(), x.cols());
  const float n = static_cast<float>(x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const float mean = x.row(i).sum() / n;
    const auto centred = (x.row(i).array() - mean).matrix();
    const float var = centred.squaredNorm() / n;
    const float inv = 1.0f / std::sqrt(var + eps);
    y.row(i) = (centred.array() * inv * gamma.array() + beta.array()).matrix();
  }
  return y;
}

}  // namespace attnlab
