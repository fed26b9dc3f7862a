// Naive double-precision building blocks for the layer tests: each written straight from its
// formula with plain loops or one Eigen product, no shared code with the engine, so a test that
// composes them into a whole layer checks the engine against an independent reference.
//
// Argument order is (module, input) everywhere: layer_norm(norm, x), affine(linear, x).
// Shapes: x [rows, D] in double; a Linear maps [rows, in] -> [rows, out].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <Eigen/Core>

#include "attention/attention.h"
#include "attention/registry.h"
#include "core/tensor.h"
#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "test_support.h"

namespace attnlab::test::naive {

using Matrix = Eigen::MatrixXd;

// Per row: (x − mean) / √(var + eps) · γ + β, the variance with 1/D (biased), as LayerNorm defines.
inline Matrix layer_norm(const LayerNorm& norm, const Matrix& x) {
  Matrix y(x.rows(), x.cols());
  const double eps = static_cast<double>(norm.eps);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    double mean = 0.0;
    for (Eigen::Index c = 0; c < x.cols(); ++c) mean += x(i, c);
    mean /= static_cast<double>(x.cols());
    double variance = 0.0;
    for (Eigen::Index c = 0; c < x.cols(); ++c) variance += (x(i, c) - mean) * (x(i, c) - mean);
    variance /= static_cast<double>(x.cols());
    for (Eigen::Index c = 0; c < x.cols(); ++c)
      y(i, c) = (x(i, c) - mean) / std::sqrt(variance + eps) * norm.gamma(c) + norm.beta(c);
  }
  return y;
}

// x·W + b.
inline Matrix affine(const Linear& linear, const Matrix& x) {
  Matrix y = x * linear.weight.cast<double>();
  y.rowwise() += linear.bias.cast<double>();
  return y;
}

// GELU in its exact form x·Φ(x).
inline double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double silu(double x) { return x * sigmoid(x); }
inline double softplus(double x) { return std::log1p(std::exp(x)); }

// down(GELU(up(x))).
inline Matrix feed_forward(const FeedForward& ff, const Matrix& x) {
  return affine(ff.down, affine(ff.up, x).unaryExpr(&gelu));
}

// Largest |actual − reference| / max(1, |reference|) over all entries; shapes must match.
inline double max_relative(const RowMatrix& actual, const Matrix& reference) {
  double worst = 0.0;
  for (Eigen::Index i = 0; i < actual.rows(); ++i)
    for (Eigen::Index j = 0; j < actual.cols(); ++j)
      worst = std::max(worst, std::abs(actual(i, j) - reference(i, j)) / std::max(1.0, std::abs(reference(i, j))));
  return worst;
}

// Whether rows first .. first + count − 1 of a and b are equal to the bit (exact causality).
inline bool rows_identical(const RowMatrix& a, const RowMatrix& b, Eigen::Index first, Eigen::Index count) {
  return std::memcmp(a.data() + first * a.cols(), b.data() + first * b.cols(),
                     static_cast<std::size_t>(count * a.cols()) * sizeof(float)) == 0;
}

// Options that run the softmax variant (for layers with attention of their own it goes unused).
inline AttentionOptions options(bool causal = false, const std::vector<std::uint8_t>* padding = nullptr,
                                std::uint64_t seed = 0) {
  AttentionOptions o;
  o.variant = &Registry::builtin().get("softmax");
  o.causal = causal;
  o.key_padding = padding;
  o.seed = seed;
  return o;
}

// [L, D] with Normal(0, 1) entries from `seed`.
inline RowMatrix random_input(std::int64_t L, std::int64_t D, std::uint64_t seed) {
  return random_tensor({L, D}, seed).matrix();
}

}  // namespace attnlab::test::naive
