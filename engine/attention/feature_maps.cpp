#include "attention/feature_maps.h"

#include "attention/attention.h"

#include <Eigen/Householder>
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <deque>
#include <mutex>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

void elu_plus_one(Eigen::Ref<const RowMatrix> x, Eigen::Ref<RowMatrix> out) {
  if (out.rows() != x.rows() || out.cols() != x.cols())
    throw ShapeError("elu_plus_one: output is " + std::to_string(out.rows()) + "x" + std::to_string(out.cols()) +
                     " but input is " + std::to_string(x.rows()) + "x" + std::to_string(x.cols()));
  // elu(x) + 1 = max(x, 0) + exp(min(x, 0)): x + 1 for x > 0 (exp(0) is exactly 1), exp(x) for
  // x <= 0. Written without select() so that Eigen vectorises the exp (its select() is scalar,
  // which made this map cost more than the whole causal linear attention after it); exp only
  // sees non-positive numbers, so large inputs never overflow.
  out.array() = x.array().max(0.0f) + x.array().min(0.0f).exp();
}

Tensor elu_plus_one(const Tensor& x) {
  constexpr std::int64_t kBlock = std::int64_t{1} << 16;  // elements per task: 256 KiB
  Tensor out = Tensor::uninitialized(x.shape());
  const std::int64_t n = x.size(), blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t begin = b * kBlock, count = std::min(kBlock, n - begin);
    elu_plus_one(ConstUnalignedMatrixMap(x.data() + begin, 1, count), UnalignedMatrixMap(out.data() + begin, 1, count));
  }
  return out;
}

const char* feature_norms_name(FeatureNorms norms) { return norms == FeatureNorms::Gaussian ? "gaussian" : "sqrt_d"; }

FeatureNorms parse_feature_norms(const std::string& name) {
  if (name == "gaussian") return FeatureNorms::Gaussian;
  if (name == "sqrt_d") return FeatureNorms::SqrtDim;
  throw ParamError("feature_norms=" + name + ": allowed gaussian, sqrt_d");
}

namespace {

// Drawing W costs a QR decomposition per block of d rows, and decoding with a swapped-in
// Performer asks for the same draw at every step and layer (same seed, same options): the last
// draws are kept. Their storage is plain memory outside the engine's meter; callers get a fresh
// tensor as before, so memory accounting and results are unchanged.
struct FeatureDraw {
  std::int64_t dim = 0, features = 0;
  std::uint64_t seed = 0;
  bool orthogonal = false;
  FeatureNorms norms = FeatureNorms::Gaussian;
  std::vector<float> values;
  bool same(std::int64_t d, std::uint64_t s, const RandomFeatureOptions& o) const {
    return dim == d && seed == s && features == o.features && orthogonal == o.orthogonal && norms == o.norms;
  }
};

constexpr std::size_t kKeptDraws = 64;
std::mutex draws_mutex;
std::deque<FeatureDraw> kept_draws;  // most recent first

Tensor draw_uncached(std::int64_t dim, std::uint64_t seed, const RandomFeatureOptions& o);

}  // namespace

Tensor draw_random_features(std::int64_t dim, std::uint64_t seed, const RandomFeatureOptions& o) {
  if (o.features < 1) throw ParamError("random features: m = " + std::to_string(o.features) + ", need at least 1");
  if (dim < 1) throw ParamError("random features: dimension " + std::to_string(dim) + ", need at least 1");
  {
    const std::lock_guard<std::mutex> lock(draws_mutex);
    for (const FeatureDraw& k : kept_draws) {
      if (k.same(dim, seed, o)) return Tensor::from_data({o.features, dim}, k.values.data(), k.values.size());
    }
  }
  Tensor w = draw_uncached(dim, seed, o);
  const std::lock_guard<std::mutex> lock(draws_mutex);
  kept_draws.push_front({dim, o.features, seed, o.orthogonal, o.norms, std::vector<float>(w.data(), w.data() + w.size())});
  if (kept_draws.size() > kKeptDraws) kept_draws.pop_back();
  return w;
}

namespace {

Tensor draw_uncached(std::int64_t dim, std::uint64_t seed, const RandomFeatureOptions& o) {
  const std::int64_t m = o.features, d = dim;
  Rng rng(seed);
  Tensor w = Tensor::uninitialized({m, d});
  auto wm = w.matrix();
  if (o.orthogonal) {
    Eigen::MatrixXd gaussian(d, d);
    for (std::int64_t b0 = 0; b0 < m; b0 += d) {
      for (std::int64_t r = 0; r < d; ++r)
        for (std::int64_t c = 0; c < d; ++c) gaussian(r, c) = rng.normal();
      const Eigen::HouseholderQR<Eigen::MatrixXd> qr(gaussian);
      Eigen::MatrixXd q = qr.householderQ();
      // Householder QR leaves the signs of R's diagonal to the data; making them positive makes
      // the factorisation unique and Q Haar-distributed, so each row is uniform on the sphere.
      for (std::int64_t c = 0; c < d; ++c)
        if (qr.matrixQR()(c, c) < 0.0) q.col(c) = -q.col(c);
      const std::int64_t rows = std::min(d, m - b0);
      for (std::int64_t r = 0; r < rows; ++r) wm.row(b0 + r) = q.col(r).transpose().cast<float>();
    }
    for (std::int64_t f = 0; f < m; ++f) {
      double norm = std::sqrt(static_cast<double>(d));
      if (o.norms == FeatureNorms::Gaussian) {
        double s = 0.0;
        for (std::int64_t c = 0; c < d; ++c) {
          const double g = rng.normal();
          s += g * g;
        }
        norm = std::sqrt(s);
      }
      wm.row(f) *= static_cast<float>(norm);
    }
  } else {
    for (std::int64_t f = 0; f < m; ++f) {
      for (std::int64_t c = 0; c < d; ++c) wm(f, c) = static_cast<float>(rng.normal());
      if (o.norms == FeatureNorms::SqrtDim) {
        const float n = wm.row(f).norm();
        if (n > 0.0f) wm.row(f) *= std::sqrt(static_cast<float>(d)) / n;
      }
    }
  }
  return w;
}

}  // namespace

std::uint64_t favor_seed(std::uint64_t seed, std::int64_t head, std::int64_t redraw) {
  return Rng::derive(seed, "favor/head" + std::to_string(head) + "/draw" + std::to_string(redraw));
}

void positive_random_features(Eigen::Ref<const RowMatrix> x, const Tensor& w, const PositiveFeatureOptions& o,
                              Eigen::Ref<RowMatrix> out, float* log_scale) {
  const std::int64_t rows = x.rows(), d = x.cols();
  if (w.rank() != 2 || w.dim(1) != d)
    throw ShapeError("positive random features: W has shape " + w.shape_string() + " but the input has " +
                     std::to_string(d) + " columns");
  const std::int64_t m = w.dim(0);
  if (out.rows() != rows || out.cols() != m)
    throw ShapeError("positive random features: output is " + std::to_string(out.rows()) + "x" +
                     std::to_string(out.cols()) + ", need " + std::to_string(rows) + "x" + std::to_string(m));
  const float s = o.input_scale > 0.0f ? o.input_scale : std::pow(static_cast<float>(d), -0.25f);
  const float ratio = 1.0f / std::sqrt(static_cast<float>(m));
  out.noalias() = x * w.matrix().transpose();
  for (std::int64_t i = 0; i < rows; ++i) {
    auto row = out.row(i).array();
    // a_f = w_f·x' − ‖x'‖²/2 with x' = s·x.
    const float half_norm = 0.5f * s * s * x.row(i).squaredNorm();
    row = row * s - half_norm;
    if (o.stabilize) {
      const float mu = row.maxCoeff();
      row = ((row - mu).exp() + o.eps) * ratio;
      if (log_scale) log_scale[i] = mu;
    } else {
      row = row.exp() * ratio;
      if (log_scale) log_scale[i] = 0.0f;
    }
  }
}

Tensor positive_random_features(const Tensor& x, const Tensor& w, const PositiveFeatureOptions& o, Tensor* log_scale) {
  if (x.rank() != 2) throw ShapeError("positive random features: x must have shape [L, d], got " + x.shape_string());
  if (w.rank() != 2) throw ShapeError("positive random features: W must have shape [m, d], got " + w.shape_string());
  Tensor out = Tensor::uninitialized({x.dim(0), w.dim(0)});
  if (log_scale) *log_scale = Tensor::uninitialized({x.dim(0)});
  positive_random_features(x.matrix(), w, o, out.matrix(), log_scale ? log_scale->data() : nullptr);
  return out;
}

std::vector<ParamSpec> favor_param_specs() {
  return {
      ParamSpec::integer("n_features", "Random features m", 64, 1, kMaxRandomFeatures,
                         "Positive random features per head; the error against softmax falls about as 1/sqrt(m)."),
      ParamSpec::boolean("orthogonal", "Orthogonal features", true,
                         "Draw the feature directions in orthogonal blocks of d (lower variance) instead of i.i.d."),
      ParamSpec::choice("feature_norms", "Feature norms", "gaussian", {"gaussian", "sqrt_d"},
                        "Row lengths of W: norms of Gaussian vectors (unbiased) or all sqrt(d) (lower variance, "
                        "slightly biased)."),
      ParamSpec::integer("redraw", "Redraw", 0, 0, kMaxRedraw,
                         "Index of the feature draw: another value draws fresh features without changing the seed."),
      ParamSpec::real("feature_eps", "Feature epsilon", 1e-4, 0.0, 1.0,
                      "Added to every stabilised feature (relative to the row's largest), keeping all features > 0."),
  };
}

FavorSettings favor_settings(const Params& params) {
  FavorSettings s;
  s.random.features = params.get_int("n_features");
  s.random.orthogonal = params.get_bool("orthogonal");
  s.random.norms = parse_feature_norms(params.get_choice("feature_norms"));
  s.redraw = params.get_int("redraw");
  s.eps = static_cast<float>(params.get_float("feature_eps"));
  return s;
}

FavorFeatures compute_favor_features(const Tensor& q, const Tensor& k, std::uint64_t seed, const FavorSettings& settings,
                                     const CancelToken* cancel) {
  constexpr std::int64_t kRows = 256;  // rows per task
  const std::int64_t H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), d = q.dim(2), m = settings.random.features;
  FavorFeatures f;
  f.matrices.resize(static_cast<std::size_t>(H));
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic) if (H > 1)
  for (std::int64_t h = 0; h < H; ++h) {
    try {
      f.matrices[static_cast<std::size_t>(h)] = draw_random_features(d, favor_seed(seed, h, settings.redraw), settings.random);
    } catch (...) {
#pragma omp critical(attnlab_favor_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  check_cancelled(cancel);
  f.query = Tensor::uninitialized({H, Lq, m});
  f.key = Tensor::uninitialized({H, Lk, m});
  f.query_log_scale = Tensor::uninitialized({H, Lq});
  f.key_log_scale = Tensor::uninitialized({H, Lk});
  const PositiveFeatureOptions options{settings.eps, true, 0.0f};
  const std::int64_t q_blocks = (Lq + kRows - 1) / kRows, k_blocks = (Lk + kRows - 1) / kRows;
  const std::int64_t tasks = H * (q_blocks + k_blocks);
  bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t task = 0; task < tasks; ++task) {
    if (cancelled || (cancel && cancel->cancelled())) {
      cancelled = true;
      continue;
    }
    const std::int64_t h = task / (q_blocks + k_blocks), b = task % (q_blocks + k_blocks);
    const bool is_query = b < q_blocks;
    const Tensor& x = is_query ? q : k;
    Tensor& out = is_query ? f.query : f.key;
    Tensor& scale = is_query ? f.query_log_scale : f.key_log_scale;
    const std::int64_t L = x.dim(1), r0 = (is_query ? b : b - q_blocks) * kRows, rows = std::min(kRows, L - r0);
    positive_random_features(x.matrix(h).middleRows(r0, rows), f.matrices[static_cast<std::size_t>(h)], options,
                             out.matrix(h).middleRows(r0, rows), scale.data() + h * L + r0);
  }
  if (cancelled) throw CancelledError();
  return f;
}

std::int64_t favor_features_bytes(std::int64_t heads, std::int64_t lq, std::int64_t lk, std::int64_t d, std::int64_t m) {
  return float_bytes(heads * m * d + heads * (lq + lk) * m + heads * (lq + lk));
}

std::int64_t favor_trace_bytes(std::int64_t heads, std::int64_t d, std::int64_t m) {
  return float_bytes(heads * m * d + heads);
}

FavorTrace make_favor_trace(FavorFeatures features, const FavorSettings& settings,
                            const std::vector<std::uint8_t>* key_padding) {
  const std::int64_t H = features.key.dim(0), Lk = features.key.dim(1), m = features.key.dim(2);
  const std::int64_t d = features.matrices.empty() ? 0 : features.matrices.front().dim(1);
  FavorTrace t;
  t.features = settings.random.features;
  t.orthogonal = settings.random.orthogonal;
  t.norms = settings.random.norms;
  t.redraw = settings.redraw;
  t.eps = settings.eps;
  t.input_scale = d > 0 ? std::pow(static_cast<float>(d), -0.25f) : 0.0f;
  t.feature_matrix = Tensor::uninitialized({H, m, d});
  for (std::int64_t h = 0; h < H; ++h) t.feature_matrix.matrix(h) = features.matrices[static_cast<std::size_t>(h)].matrix();
  t.key_reference = Tensor({H});
  const auto is_padded = [&](std::int64_t j) { return key_padding && (*key_padding)[static_cast<std::size_t>(j)]; };
  for (std::int64_t h = 0; h < H; ++h) {
    float reference = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < Lk; ++j)
      if (!is_padded(j)) reference = std::max(reference, features.key_log_scale.at(h, j));
    if (!std::isfinite(reference)) reference = 0.0f;
    t.key_reference.data()[h] = reference;
    auto keys = features.key.matrix(h);
    for (std::int64_t j = 0; j < Lk; ++j) {
      if (is_padded(j)) keys.row(j).setZero();
      else keys.row(j) *= std::exp(features.key_log_scale.at(h, j) - reference);
    }
  }
  t.query_features = std::move(features.query);
  t.key_features = std::move(features.key);
  t.query_log_scale = std::move(features.query_log_scale);
  t.key_log_scale = std::move(features.key_log_scale);
  return t;
}

nlohmann::json FavorTrace::to_json() const {
  nlohmann::json j;
  j["features"] = features;
  j["orthogonal"] = orthogonal;
  j["feature_norms"] = feature_norms_name(norms);
  j["redraw"] = redraw;
  j["eps"] = eps;
  j["input_scale"] = input_scale;
  j["feature_matrix"] = tensor_to_json(feature_matrix);    // [H][m][d]
  j["query_features"] = tensor_to_json(query_features);    // [H][Lq][m]
  j["key_features"] = tensor_to_json(key_features);        // [H][Lk][m]
  j["query_log_scale"] = tensor_to_json(query_log_scale);  // [H][Lq]
  j["key_log_scale"] = tensor_to_json(key_log_scale);      // [H][Lk]
  j["key_reference"] = tensor_to_json(key_reference);      // [H]
  j["kernel"] = "kappa_ij = exp(query_log_scale_i + key_reference_h) * query_features_i . key_features_j";
  return j;
}

}  // namespace attnlab
