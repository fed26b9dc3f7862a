#include "layers/mega.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <unsupported/Eigen/SpecialFunctions>

#include "analysis/convolution.h"
#include "core/error.h"
#include "core/rng.h"
#include "layers/weight_table.h"

namespace attnlab {
namespace {

// ---- attention ---------------------------------------------------------------------------------

constexpr std::int64_t kQueryBlock = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

const char* activation_name(MegaActivation a) {
  switch (a) {
    case MegaActivation::Softmax: return "softmax";
    case MegaActivation::Laplace: return "laplace";
    case MegaActivation::Relu2: return "relu2";
  }
  return "softmax";
}

struct QueryBlock {
  std::int64_t q0, rows;  // queries [q0, q0 + rows)
  std::int64_t c0, c1;    // their chunk's keys [c0, c1)
};

// Single-head attention of q [L, z] on k [L, z] with values v [L, E], within chunks of
// `chunk_len` tokens -> [L, E]. With `weights` ([1, L, L], zero), writes the applied weights.
RowMatrix gated_attention(const RowMatrix& q, const RowMatrix& k, const RowMatrix& v, std::int64_t chunk_len,
                          MegaActivation activation, bool causal, const std::vector<std::uint8_t>* padding,
                          const CancelToken* cancel, Tensor* weights) {
  const std::int64_t L = q.rows(), E = v.cols();
  std::vector<QueryBlock> blocks;
  for (std::int64_t c0 = 0; c0 < L; c0 += chunk_len) {
    const std::int64_t c1 = std::min(c0 + chunk_len, L);
    for (std::int64_t q0 = c0; q0 < c1; q0 += kQueryBlock) blocks.push_back({q0, std::min(kQueryBlock, c1 - q0), c0, c1});
  }
  const float softmax_scale = 1.0f / std::sqrt(static_cast<float>(q.cols()));
  const float laplace_mu = 0.707107f, laplace_inv = 1.0f / (0.282095f * std::sqrt(2.0f));
  RowMatrix out(L, E);
  std::atomic<bool> cancelled{false};
#pragma omp parallel
  {
    RowMatrix logits(kQueryBlock, std::min(chunk_len, L));  // scratch per thread, one block of keys
#pragma omp for schedule(dynamic)
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      if (cancelled.load(std::memory_order_relaxed) || (cancel && cancel->cancelled())) {
        cancelled.store(true, std::memory_order_relaxed);
        continue;
      }
      const QueryBlock& blk = blocks[b];
      // Causal: keys after the block's last query are hidden from the whole block.
      const std::int64_t key_end = causal ? blk.q0 + blk.rows : blk.c1;
      const std::int64_t cols = key_end - blk.c0;
      auto s = logits.topLeftCorner(blk.rows, cols);
      s.noalias() = q.middleRows(blk.q0, blk.rows) * k.middleRows(blk.c0, cols).transpose();
      for (std::int64_t r = 0; r < blk.rows; ++r) {
        const std::int64_t query = blk.q0 + r;
        const std::int64_t seen = causal ? query - blk.c0 + 1 : cols;  // keys [c0, c0 + seen) by position
        auto row = s.row(r);
        std::int64_t visible = seen;
        if (padding) {
          for (std::int64_t j = 0; j < seen; ++j) {
            if ((*padding)[static_cast<std::size_t>(blk.c0 + j)]) --visible;
          }
        }
        if (visible == 0) {
          row.setZero();
          continue;
        }
        if (activation == MegaActivation::Softmax) {
          row.head(seen) *= softmax_scale;
          if (padding) {
            for (std::int64_t j = 0; j < seen; ++j)
              if ((*padding)[static_cast<std::size_t>(blk.c0 + j)]) row(j) = kNegInf;
          }
          const float m = row.head(seen).maxCoeff();
          row.head(seen) = (row.head(seen).array() - m).exp().matrix();
        } else {
          const float inv_n = 1.0f / static_cast<float>(visible);
          if (activation == MegaActivation::Laplace) {
            row.head(seen) = (0.5f * (1.0f + ((row.head(seen).array() * inv_n - laplace_mu) * laplace_inv).erf())).matrix();
          } else {
            row.head(seen) = (row.head(seen).array() * inv_n).max(0.0f).square().matrix();
          }
        }
        // Exact zeros by position for every key the query must not see.
        if (seen < cols) row.tail(cols - seen).setZero();
        if (padding) {
          for (std::int64_t j = 0; j < seen; ++j)
            if ((*padding)[static_cast<std::size_t>(blk.c0 + j)]) row(j) = 0.0f;
        }
        if (activation == MegaActivation::Softmax) row /= row.sum();
      }
      out.middleRows(blk.q0, blk.rows).noalias() = s * v.middleRows(blk.c0, cols);
      if (weights) weights->matrix(0).block(blk.q0, blk.c0, blk.rows, cols) = s;
    }
  }
  if (cancelled.load()) throw CancelledError();
  return out;
}

// ---- small helpers ------------------------------------------------------------------------------

void silu_inplace(RowMatrix& x) { x.array() /= (1.0f + (-x.array()).exp()); }
void sigmoid_inplace(RowMatrix& x) { x = (1.0f + (-x.array()).exp()).inverse().matrix(); }

RowMatrix normal_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed, float mean, float stddev) {
  RowMatrix m(rows, cols);
  Rng::fill_normal_chunked(m.data(), m.size(), seed, mean, stddev);
  return m;
}

RowVector normal_vector(std::int64_t size, std::uint64_t seed, float mean, float stddev) {
  RowVector v(size);
  Rng::fill_normal_chunked(v.data(), v.size(), seed, mean, stddev);
  return v;
}

DampedEma seeded_ema(std::int64_t D, std::int64_t n, std::uint64_t seed) {
  // As the reference initialises it: δ, α̃ ~ N(0, 0.2); β ~ N(0, 0.02) + (1, −1, 1, −1, ...); γ ~ N(0, 1).
  DampedEma e;
  e.delta = normal_matrix(D, n, Rng::derive(seed, "delta"), 0.0f, 0.2f);
  e.alpha = normal_matrix(D, n, Rng::derive(seed, "alpha"), 0.0f, 0.2f);
  e.beta = normal_matrix(D, n, Rng::derive(seed, "beta"), 0.0f, 0.02f);
  for (std::int64_t j = 1; j < n; j += 2) e.beta.col(j).array() -= 1.0f;
  for (std::int64_t j = 0; j < n; j += 2) e.beta.col(j).array() += 1.0f;
  e.gamma = normal_matrix(D, n, Rng::derive(seed, "gamma"), 0.0f, 1.0f);
  return e;
}

void visit_ema(const std::string& name, DampedEma& e, std::int64_t D, std::int64_t n, WeightTable& table) {
  table.matrix(name + ".delta", e.delta, D, n);
  table.matrix(name + ".alpha", e.alpha, D, n);
  table.matrix(name + ".beta", e.beta, D, n);
  table.matrix(name + ".gamma", e.gamma, D, n);
}

Tensor to_tensor(const Eigen::MatrixXd& m) {
  Tensor t({m.rows(), m.cols()});
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) t.at(i, j) = static_cast<float>(m(i, j));
  return t;
}

Tensor row_means(const RowMatrix& m) {
  Tensor t({m.rows()});
  const Eigen::VectorXf means = m.rowwise().mean();
  std::copy(means.data(), means.data() + means.size(), t.data());
  return t;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

// ---- DampedEma ---------------------------------------------------------------------------------------

void DampedEma::kernel(std::int64_t channel, std::int64_t length, double* lags) const {
  const std::int64_t n = ndim();
  constexpr std::int64_t kMaxNdim = 64;  // the schema's upper bound
  if (n > kMaxNdim) throw ParamError("ndim: an integer in [1, 64], got " + std::to_string(n));
  std::array<double, kMaxNdim> coefficient{}, q{};
  const double scale = std::sqrt(1.0 / static_cast<double>(n));
  for (std::int64_t j = 0; j < n; ++j) {
    const double p = sigmoid(delta(channel, j));
    const double a = sigmoid(alpha(channel, j));
    q[static_cast<std::size_t>(j)] = 1.0 - p * a;
    coefficient[static_cast<std::size_t>(j)] = gamma(channel, j) * scale * p * beta(channel, j);
  }
  // k_t = Σ_j c_j q_j^t, the powers by repeated multiplication (relative error ~ t·1e-16).
  for (std::int64_t t = 0; t < length; ++t) {
    double sum = 0.0;
    for (std::int64_t j = 0; j < n; ++j) {
      sum += coefficient[static_cast<std::size_t>(j)];
      coefficient[static_cast<std::size_t>(j)] *= q[static_cast<std::size_t>(j)];
    }
    lags[t] = sum;
  }
}

double DampedEma::decay(std::int64_t channel) const {
  double worst = 0.0;
  for (std::int64_t j = 0; j < ndim(); ++j)
    worst = std::max(worst, 1.0 - sigmoid(delta(channel, j)) * sigmoid(alpha(channel, j)));
  return worst;
}

// ---- trace -------------------------------------------------------------------------------------------

nlohmann::json MegaTrace::to_json() const {
  nlohmann::json j;
  j["kind"] = "mega";
  j["ema_kernel"] = tensor_to_json(ema_kernel);
  if (!causal) j["ema_kernel_backward"] = tensor_to_json(ema_kernel_backward);
  j["decay"] = tensor_to_json(decay);
  j["gate_u"] = tensor_to_json(gate_u);
  j["gate_r"] = tensor_to_json(gate_r);
  j["chunk"] = chunk;
  j["causal"] = causal;
  j["attention"] = attention;
  return j;
}

// ---- MegaLayer -----------------------------------------------------------------------------------------

const std::vector<ParamSpec>& MegaLayer::schema() {
  static const std::vector<ParamSpec> specs{
      ParamSpec::integer("ndim", "EMA dimensions", 16, 1, 64, "Expansion n of the damped EMA: n decay rates per channel"),
      ParamSpec::integer("z_dim", "Query/key width", 64, 4, 1024, "Width z of the shared query/key projection"),
      ParamSpec::real("hidden_ratio", "Value width ratio", 2.0, 0.5, 8.0,
                      "Width of the values and of the reset gate r, as a multiple of d_model"),
      ParamSpec::integer("chunk", "Chunk size", 0, 0, 65536,
                         "0: attention over the whole sequence; else only within chunks of this many tokens"),
      ParamSpec::choice("attention", "Attention function", "softmax", {"softmax", "laplace", "relu2"},
                        "softmax(QKᵀ/√z), or laplace / relu² of QKᵀ divided by the number of visible keys"),
  };
  return specs;
}

MegaLayer MegaLayer::seeded(std::int64_t d_model, std::int64_t /*heads*/, std::int64_t /*d_ff*/, const Params& params,
                            std::uint64_t seed) {
  if (d_model < 1) throw ParamError("Mega needs d_model >= 1, got " + std::to_string(d_model));
  MegaLayer m;
  m.d_model = d_model;
  m.ndim = params.get_int("ndim");
  m.z_dim = params.get_int("z_dim");
  m.hidden = std::max<std::int64_t>(1, std::llround(params.get_float("hidden_ratio") * static_cast<double>(d_model)));
  m.chunk = params.get_int("chunk");
  const std::string& activation = params.get_choice("attention");
  m.activation = activation == "laplace" ? MegaActivation::Laplace
                 : activation == "relu2" ? MegaActivation::Relu2
                                         : MegaActivation::Softmax;
  const std::int64_t D = d_model, n = m.ndim, z = m.z_dim, E = m.hidden;
  m.norm = LayerNorm::identity(D);
  m.ema = seeded_ema(D, n, Rng::derive(seed, "ema"));
  m.ema_backward = seeded_ema(D, n, Rng::derive(seed, "ema_backward"));
  m.omega = normal_vector(D, Rng::derive(seed, "ema.omega"), 0.0f, 1.0f);
  m.w_v = Linear::seeded(D, E, Rng::derive(seed, "w_v"));
  m.w_z = Linear::seeded(D, z, Rng::derive(seed, "w_z"));
  m.w_r = Linear::seeded(D, E, Rng::derive(seed, "w_r"));
  m.w_u = Linear::seeded(D, D, Rng::derive(seed, "w_u"));
  m.w_h = Linear::seeded(D, D, Rng::derive(seed, "w_h"));
  // The reference starts κ near 0 (uniform attention until trained); unit-variance scales give
  // an untrained layer visible attention structure.
  m.q_scale = normal_vector(z, Rng::derive(seed, "q_scale"), 0.0f, 1.0f);
  m.k_scale = normal_vector(z, Rng::derive(seed, "k_scale"), 0.0f, 1.0f);
  m.q_offset = RowVector::Zero(z);
  m.k_offset = RowVector::Zero(z);
  m.u_h = Linear::seeded(E, D, Rng::derive(seed, "u_h"));
  return m;
}

void MegaLayer::visit_weights(const std::string& prefix, WeightTable& table) {
  const std::int64_t D = d_model, n = ndim, z = z_dim, E = hidden;
  table.norm(prefix + "norm", norm, D);
  visit_ema(prefix + "ema", ema, D, n, table);
  table.vector(prefix + "ema.omega", omega, D);
  visit_ema(prefix + "ema_backward", ema_backward, D, n, table);
  table.linear(prefix + "w_v", w_v, D, E);
  table.linear(prefix + "w_z", w_z, D, z);
  table.linear(prefix + "w_r", w_r, D, E);
  table.linear(prefix + "w_u", w_u, D, D);
  table.linear(prefix + "w_h", w_h, D, D);
  table.vector(prefix + "q_scale", q_scale, z);
  table.vector(prefix + "q_offset", q_offset, z);
  table.vector(prefix + "k_scale", k_scale, z);
  table.vector(prefix + "k_offset", k_offset, z);
  table.linear(prefix + "u_h", u_h, E, D);
}

RowMatrix MegaLayer::ema_filter(const RowMatrix& x, bool causal, const CancelToken* cancel) const {
  if (x.cols() != d_model) {
    throw ShapeError("Mega EMA expects " + std::to_string(d_model) + " channels, got [" + std::to_string(x.rows()) + ", " +
                     std::to_string(x.cols()) + "]");
  }
  const KernelFill forward_kernel = [this](std::int64_t c, std::int64_t length, double* lags) {
    ema.kernel(c, length, lags);
  };
  if (causal) return causal_fft_convolution(x, forward_kernel, cancel);
  const KernelFill backward_kernel = [this](std::int64_t c, std::int64_t length, double* lags) {
    ema_backward.kernel(c, length, lags);
  };
  return two_sided_fft_convolution(x, forward_kernel, backward_kernel, cancel);
}

Eigen::MatrixXd MegaLayer::ema_kernels(std::int64_t lags, bool backward) const {
  const DampedEma& e = backward ? ema_backward : ema;
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> k(d_model, lags);
  for (std::int64_t c = 0; c < d_model; ++c) e.kernel(c, lags, k.row(c).data());
  return k;
}

RowMatrix MegaLayer::forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  const std::int64_t L = x.rows(), D = d_model;
  if (x.cols() != D) {
    throw ShapeError("Mega layer expects [L, " + std::to_string(D) + "], got [" + std::to_string(L) + ", " +
                     std::to_string(x.cols()) + "]");
  }
  const std::vector<std::uint8_t>* padding = options.key_padding;
  if (padding && static_cast<std::int64_t>(padding->size()) != L) {
    throw ShapeError("key padding has " + std::to_string(padding->size()) + " entries for " + std::to_string(L) + " tokens");
  }
  if (L == 0) return x;

  const RowMatrix xn = norm.forward(x);  // X̂ [L, D]
  RowMatrix ema_in = xn;
  if (padding) {
    for (std::int64_t i = 0; i < L; ++i)
      if ((*padding)[static_cast<std::size_t>(i)]) ema_in.row(i).setZero();
  }
  RowMatrix mx = ema_filter(ema_in, options.causal, options.cancel);  // EMA(X̂) [L, D]
  mx += xn * omega.asDiagonal();
  silu_inplace(mx);  // X' [L, D]
  check_cancelled(options.cancel);

  RowMatrix v = w_v.forward(xn);  // [L, E]
  silu_inplace(v);
  RowMatrix zq = w_z.forward(mx);  // [L, z]
  silu_inplace(zq);
  const RowMatrix q = (zq.array().rowwise() * q_scale.array()).rowwise() + q_offset.array();
  const RowMatrix k = (zq.array().rowwise() * k_scale.array()).rowwise() + k_offset.array();
  RowMatrix r = w_r.forward(mx);  // [L, E]
  silu_inplace(r);
  RowMatrix u = w_u.forward(mx);  // [L, D]
  sigmoid_inplace(u);
  check_cancelled(options.cancel);

  const std::int64_t chunk_len = chunk == 0 ? L : std::min(chunk, L);
  Tensor weights;
  if (trace) weights = Tensor({1, L, L});
  const RowMatrix attended =
      gated_attention(q, k, v, chunk_len, activation, options.causal, padding, options.cancel, trace ? &weights : nullptr);

  RowMatrix h = w_h.forward(mx);  // [L, D]
  h.noalias() += (r.array() * attended.array()).matrix() * u_h.weight;
  h.rowwise() += u_h.bias;
  silu_inplace(h);
  RowMatrix out = x + (u.array() * (h - x).array()).matrix();

  if (trace) {
    const std::int64_t lags = std::min<std::int64_t>(L, 256);
    auto t = std::make_shared<MegaTrace>();
    t->ema_kernel = to_tensor(ema_kernels(lags));
    if (!options.causal) t->ema_kernel_backward = to_tensor(ema_kernels(lags, true));
    t->decay = Tensor({D});
    for (std::int64_t c = 0; c < D; ++c) t->decay.data()[c] = static_cast<float>(ema.decay(c));
    t->gate_u = row_means(u);
    t->gate_r = row_means(r);
    t->chunk = chunk_len;
    t->causal = options.causal;
    t->attention = activation_name(activation);
    trace->weights = std::move(weights);
    trace->layer_extras.push_back(std::move(t));
  }
  return out;
}

}  // namespace attnlab
