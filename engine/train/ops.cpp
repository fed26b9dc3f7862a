#include "train/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace attnlab::train {
namespace {

constexpr double kLayerNormEps = 1e-5;

// Row loops parallelise only when there is enough work to pay for a team; every row writes its
// own outputs, so the result does not depend on the thread count.
constexpr std::int64_t kParallelRows = 256;

}  // namespace

// ---- affine map -----------------------------------------------------------------------------------

template <typename T>
void linear_forward(const Mat<T>& x, const MatMap<T>& w, const VecMap<T>& b, Mat<T>& y) {
  y.resize(x.rows(), w.cols());
  y.noalias() = x * w;
  y.rowwise() += b;
}

template <typename T>
void linear_backward(const Mat<T>& dy, const Mat<T>& x, const MatMap<T>& w, Mat<T>* dx, MatMap<T>& dw, VecMap<T>& db) {
  if (dx) dx->noalias() += dy * w.transpose();
  dw.noalias() += x.transpose() * dy;
  db += dy.colwise().sum();
}

// ---- layer norm -----------------------------------------------------------------------------------

template <typename T>
void layer_norm_forward(const Mat<T>& x, const VecMap<T>& gain, const VecMap<T>& bias, Mat<T>& y, std::vector<T>& mean,
                        std::vector<T>& rstd) {
  const std::int64_t n = x.rows(), d = x.cols();
  y.resize(n, d);
  mean.resize(static_cast<std::size_t>(n));
  rstd.resize(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static) if (n >= kParallelRows)
  for (std::int64_t i = 0; i < n; ++i) {
    const auto row = x.row(i);
    const T m = row.mean();
    const T var = (row.array() - m).square().mean();
    const T r = T(1) / std::sqrt(var + T(kLayerNormEps));
    mean[static_cast<std::size_t>(i)] = m;
    rstd[static_cast<std::size_t>(i)] = r;
    y.row(i) = ((row.array() - m) * r * gain.array() + bias.array()).matrix();
  }
}

// With x̂ = (x − μ)·r and g = dy ⊙ gain:  dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)).
template <typename T>
void layer_norm_backward(const Mat<T>& dy, const Mat<T>& x, const std::vector<T>& mean, const std::vector<T>& rstd,
                         const VecMap<T>& gain, Mat<T>& dx, VecMap<T>& dgain, VecMap<T>& dbias) {
  const std::int64_t n = x.rows(), d = x.cols();
  Mat<T> xhat(n, d);
#pragma omp parallel for schedule(static) if (n >= kParallelRows)
  for (std::int64_t i = 0; i < n; ++i) {
    const T m = mean[static_cast<std::size_t>(i)], r = rstd[static_cast<std::size_t>(i)];
    xhat.row(i) = ((x.row(i).array() - m) * r).matrix();
    const Vec<T> g = (dy.row(i).array() * gain.array()).matrix();
    const T g_mean = g.mean();
    const T gx_mean = (g.array() * xhat.row(i).array()).mean();
    dx.row(i).array() += r * (g.array() - g_mean - xhat.row(i).array() * gx_mean);
  }
  dgain += (dy.array() * xhat.array()).colwise().sum().matrix();
  dbias += dy.colwise().sum();
}

// ---- ReLU -----------------------------------------------------------------------------------------

template <typename T>
void relu_forward(Mat<T>& x) {
  x = x.cwiseMax(T(0));
}

template <typename T>
void relu_backward(const Mat<T>& y, Mat<T>& dy) {
  dy.array() = (y.array() > T(0)).select(dy.array(), T(0));
}

// ---- attention ------------------------------------------------------------------------------------

namespace {

void check_layouts(const AttentionShapeInfo& info, std::int64_t q_rows, std::int64_t k_rows) {
  // Internal contract (the model builds the layouts), so violations are programming errors; they
  // are still reported rather than read out of bounds.
  if (!info.q_layout || !info.k_layout || info.q_layout->count() != info.k_layout->count() ||
      info.q_layout->rows() != q_rows || info.k_layout->rows() != k_rows) {
    throw std::logic_error("attention: sequence layouts do not match the q/k rows");
  }
}

// Is key j (0-based within the sequence, packed row `row`) visible to query i?
inline bool visible(const AttentionShapeInfo& info, std::int64_t i, std::int64_t j, std::int64_t row) {
  if (info.causal && j > i) return false;
  return !(info.key_padding && (*info.key_padding)[static_cast<std::size_t>(row)]);
}

}  // namespace

template <typename T>
void attention_forward(const Mat<T>& q, const Mat<T>& k, const Mat<T>& v, const AttentionShapeInfo& info, Mat<T>& out,
                       std::vector<Mat<T>>& probs) {
  check_layouts(info, q.rows(), k.rows());
  const std::int64_t heads = info.heads, dh = q.cols() / heads, batch = info.q_layout->count();
  const T scale = T(1) / std::sqrt(static_cast<T>(dh));
  out.setZero(q.rows(), v.cols());
  probs.resize(static_cast<std::size_t>(batch * heads));
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t task = 0; task < batch * heads; ++task) {
    const std::int64_t b = task / heads, h = task % heads;
    const std::int64_t q0 = info.q_layout->begin(b), lq = info.q_layout->length(b);
    const std::int64_t k0 = info.k_layout->begin(b), lk = info.k_layout->length(b);
    Mat<T>& p = probs[static_cast<std::size_t>(task)];
    p.noalias() = (q.block(q0, h * dh, lq, dh) * k.block(k0, h * dh, lk, dh).transpose()) * scale;
    for (std::int64_t i = 0; i < lq; ++i) {
      T row_max = -std::numeric_limits<T>::infinity();
      for (std::int64_t j = 0; j < lk; ++j) {
        if (visible(info, i, j, k0 + j)) row_max = std::max(row_max, p(i, j));
      }
      if (row_max == -std::numeric_limits<T>::infinity()) {
        p.row(i).setZero();
        continue;
      }
      T sum = 0;
      for (std::int64_t j = 0; j < lk; ++j) {
        const T e = visible(info, i, j, k0 + j) ? std::exp(p(i, j) - row_max) : T(0);
        p(i, j) = e;
        sum += e;
      }
      p.row(i) /= sum;
    }
    out.block(q0, h * dh, lq, dh).noalias() = p * v.block(k0, h * dh, lk, dh);
  }
}

// Per (sequence, head), with P the probabilities and S the scaled logits:
//   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),  dQ = scale·dS·K,  dK = scale·dSᵀ·Q.
// Masked entries have P = 0 and so get no gradient.
template <typename T>
void attention_backward(const Mat<T>& dout, const Mat<T>& q, const Mat<T>& k, const Mat<T>& v,
                        const AttentionShapeInfo& info, const std::vector<Mat<T>>& probs, Mat<T>& dq, Mat<T>& dk,
                        Mat<T>& dv) {
  check_layouts(info, q.rows(), k.rows());
  const std::int64_t heads = info.heads, dh = q.cols() / heads, batch = info.q_layout->count();
  const T scale = T(1) / std::sqrt(static_cast<T>(dh));
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t task = 0; task < batch * heads; ++task) {
    const std::int64_t b = task / heads, h = task % heads;
    const std::int64_t q0 = info.q_layout->begin(b), lq = info.q_layout->length(b);
    const std::int64_t k0 = info.k_layout->begin(b), lk = info.k_layout->length(b);
    const Mat<T>& p = probs[static_cast<std::size_t>(task)];
    const auto d_o = dout.block(q0, h * dh, lq, dh);
    dv.block(k0, h * dh, lk, dh).noalias() += p.transpose() * d_o;
    Mat<T> ds = d_o * v.block(k0, h * dh, lk, dh).transpose();  // dP
    const Eigen::Matrix<T, Eigen::Dynamic, 1> row_dot = (p.array() * ds.array()).rowwise().sum();
    ds = (p.array() * (ds.array().colwise() - row_dot.array())).matrix();
    dq.block(q0, h * dh, lq, dh).noalias() += scale * (ds * k.block(k0, h * dh, lk, dh));
    dk.block(k0, h * dh, lk, dh).noalias() += scale * (ds.transpose() * q.block(q0, h * dh, lq, dh));
  }
}

// ---- embedding ------------------------------------------------------------------------------------

template <typename T>
void positional_encoding(std::int64_t position, std::int64_t d_model, T* out) {
  for (std::int64_t i = 0; i < d_model; i += 2) {
    const double angle = static_cast<double>(position) /
                         std::pow(10000.0, static_cast<double>(i) / static_cast<double>(d_model));
    out[i] = static_cast<T>(std::sin(angle));
    if (i + 1 < d_model) out[i + 1] = static_cast<T>(std::cos(angle));
  }
}

template <typename T>
void embedding_forward(const MatMap<T>& table, const std::vector<std::int32_t>& tokens, const SeqLayout& layout,
                       Mat<T>& x) {
  const std::int64_t d = table.cols();
  const T scale = std::sqrt(static_cast<T>(d));
  x.resize(static_cast<std::int64_t>(tokens.size()), d);
  for (std::int64_t b = 0; b < layout.count(); ++b) {
    for (std::int64_t p = 0; p < layout.length(b); ++p) {
      const std::int64_t row = layout.begin(b) + p;
      positional_encoding(p, d, x.row(row).data());
      x.row(row) += scale * table.row(tokens[static_cast<std::size_t>(row)]);
    }
  }
}

template <typename T>
void embedding_backward(const Mat<T>& dx, const std::vector<std::int32_t>& tokens, MatMap<T>& dtable) {
  const T scale = std::sqrt(static_cast<T>(dtable.cols()));
  for (std::size_t n = 0; n < tokens.size(); ++n) {
    dtable.row(tokens[n]) += scale * dx.row(static_cast<std::int64_t>(n));
  }
}

// ---- cross-entropy --------------------------------------------------------------------------------

// Per row, with p = softmax(z), lse = log Σ exp(z):
//   loss = −Σ_j q_j log p_j = lse − (1−ε)·z_t − (ε/V)·Σ_j z_j,   nll = lse − z_t,
//   ∂loss/∂z = p − q.
template <typename T>
CrossEntropySums cross_entropy(const Mat<T>& logits, const std::vector<std::int32_t>& targets, double smoothing,
                               double scale, Mat<T>* grad) {
  const std::int64_t n = logits.rows(), vocab = logits.cols();
  if (grad && grad != &logits) grad->resize(n, vocab);
  std::vector<double> loss(static_cast<std::size_t>(n), 0.0), nll(static_cast<std::size_t>(n), 0.0);
  std::vector<std::uint8_t> correct(static_cast<std::size_t>(n), 0);
  const double off = smoothing / static_cast<double>(vocab);
#pragma omp parallel for schedule(static) if (n >= 16)
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int32_t t = targets[static_cast<std::size_t>(i)];
    if (t < 0) {
      if (grad) grad->row(i).setZero();
      continue;
    }
    const auto z = logits.row(i);
    std::int64_t arg = 0;
    const T z_max = z.maxCoeff(&arg);
    const double sum_exp = (z.array() - z_max).exp().template cast<double>().sum();
    const double lse = static_cast<double>(z_max) + std::log(sum_exp);
    const double z_t = static_cast<double>(z(t));
    const double z_sum = z.template cast<double>().sum();
    loss[static_cast<std::size_t>(i)] = lse - (1.0 - smoothing) * z_t - off * z_sum;
    nll[static_cast<std::size_t>(i)] = lse - z_t;
    correct[static_cast<std::size_t>(i)] = arg == t ? 1 : 0;
    if (grad) {
      auto g = grad->row(i);
      g = ((z.array() - static_cast<T>(lse)).exp() - static_cast<T>(off)) * static_cast<T>(scale);
      g(t) -= static_cast<T>((1.0 - smoothing) * scale);
    }
  }
  CrossEntropySums sums;
  for (std::int64_t i = 0; i < n; ++i) {
    if (targets[static_cast<std::size_t>(i)] < 0) continue;
    sums.loss += loss[static_cast<std::size_t>(i)];
    sums.nll += nll[static_cast<std::size_t>(i)];
    sums.correct += correct[static_cast<std::size_t>(i)];
    ++sums.tokens;
  }
  return sums;
}

#define ATTNLAB_TRAIN_OPS(T)                                                                                      \
  template void linear_forward<T>(const Mat<T>&, const MatMap<T>&, const VecMap<T>&, Mat<T>&);                     \
  template void linear_backward<T>(const Mat<T>&, const Mat<T>&, const MatMap<T>&, Mat<T>*, MatMap<T>&,            \
                                   VecMap<T>&);                                                                    \
  template void layer_norm_forward<T>(const Mat<T>&, const VecMap<T>&, const VecMap<T>&, Mat<T>&, std::vector<T>&, \
                                      std::vector<T>&);                                                            \
  template void layer_norm_backward<T>(const Mat<T>&, const Mat<T>&, const std::vector<T>&, const std::vector<T>&, \
                                       const VecMap<T>&, Mat<T>&, VecMap<T>&, VecMap<T>&);                         \
  template void relu_forward<T>(Mat<T>&);                                                                          \
  template void relu_backward<T>(const Mat<T>&, Mat<T>&);                                                          \
  template void attention_forward<T>(const Mat<T>&, const Mat<T>&, const Mat<T>&, const AttentionShapeInfo&,       \
                                     Mat<T>&, std::vector<Mat<T>>&);                                               \
  template void attention_backward<T>(const Mat<T>&, const Mat<T>&, const Mat<T>&, const Mat<T>&,                  \
                                      const AttentionShapeInfo&, const std::vector<Mat<T>>&, Mat<T>&, Mat<T>&,     \
                                      Mat<T>&);                                                                    \
  template void positional_encoding<T>(std::int64_t, std::int64_t, T*);                                            \
  template void embedding_forward<T>(const MatMap<T>&, const std::vector<std::int32_t>&, const SeqLayout&,         \
                                     Mat<T>&);                                                                     \
  template void embedding_backward<T>(const Mat<T>&, const std::vector<std::int32_t>&, MatMap<T>&);                \
  template CrossEntropySums cross_entropy<T>(const Mat<T>&, const std::vector<std::int32_t>&, double, double,      \
                                             Mat<T>*);

ATTNLAB_TRAIN_OPS(float)
ATTNLAB_TRAIN_OPS(double)

}  // namespace attnlab::train
