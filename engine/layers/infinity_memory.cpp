#include "layers/infinity_memory.h"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>

#include "core/error.h"
#include "core/rng.h"
#include "layers/weight_table.h"

namespace attnlab {
namespace {

constexpr std::int64_t kShownChannels = 8;
constexpr std::int64_t kReconstructionGrid = 200;
constexpr std::int64_t kStickyBins = 128;
constexpr std::int64_t kDensityBins = 128;  // of MemorySegmentTrace::density
constexpr double kNarrowWidth = 0.01, kWideWidth = 0.05;

double gaussian_density(double t, double mean, double variance) {
  const double diff = t - mean;
  return std::exp(-0.5 * diff * diff / variance) / std::sqrt(2.0 * std::numbers::pi * variance);
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus(double x) { return x > 30.0 ? x : std::log1p(std::exp(x)); }
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

Tensor vector_tensor(const Eigen::Ref<const Eigen::VectorXd>& v) {
  Tensor t({static_cast<std::int64_t>(v.size())});
  for (Eigen::Index i = 0; i < v.size(); ++i) t.data()[i] = static_cast<float>(v(i));
  return t;
}

// The first `channels` columns of values [P, D], transposed: [channels, P].
Tensor channel_rows(const Eigen::MatrixXd& values, std::int64_t channels) {
  Tensor t({channels, static_cast<std::int64_t>(values.rows())});
  for (std::int64_t c = 0; c < channels; ++c)
    for (Eigen::Index p = 0; p < values.rows(); ++p) t.at(c, p) = static_cast<float>(values(p, c));
  return t;
}

// What a memory was fitted to.
struct FitPoints {
  Eigen::VectorXd positions;  // [P]
  Eigen::MatrixXd values;     // [P, D]
};

// Adds the probability mass of N(mu, variance) in each of `bins` equal bins of [0, 1] to mass[0..bins).
void add_bin_masses(double mu, double variance, std::int64_t bins, double* mass) {
  const double sigma = std::max(std::sqrt(variance), 1e-12);
  double below = normal_cdf((0.0 - mu) / sigma);
  for (std::int64_t b = 0; b < bins; ++b) {
    const double upper = normal_cdf((static_cast<double>(b + 1) / static_cast<double>(bins) - mu) / sigma);
    mass[b] += upper - below;
    below = upper;
  }
}

// Share of the attention densities N(μ, σ²) of every head and query that falls in each of 128
// equal bins of [0, 1], normalised to sum 1 (uniform if no mass falls inside).
Eigen::VectorXd attention_histogram(const MemoryRead& read) {
  Eigen::VectorXd mass = Eigen::VectorXd::Zero(kStickyBins);
  for (Eigen::Index h = 0; h < read.mu.rows(); ++h)
    for (Eigen::Index i = 0; i < read.mu.cols(); ++i) add_bin_masses(read.mu(h, i), read.variance(h, i), kStickyBins, mass.data());
  const double total = mass.sum();
  if (!(total > 0.0)) return Eigen::VectorXd::Constant(kStickyBins, 1.0 / kStickyBins);
  return mass / total;
}

// `count` positions in [0, 1] drawn from the histogram (a bin by its probability, then uniformly
// inside it), ascending.
Eigen::VectorXd sample_positions(const Eigen::VectorXd& histogram, std::int64_t count, std::uint64_t seed) {
  Eigen::VectorXd cumulative(histogram.size());
  double running = 0.0;
  for (Eigen::Index b = 0; b < histogram.size(); ++b) cumulative(b) = (running += histogram(b));
  Rng rng(seed);
  std::vector<double> positions(static_cast<std::size_t>(count));
  for (double& p : positions) {
    const double u = rng.uniform() * running;
    const auto bin = std::min<Eigen::Index>(
        std::upper_bound(cumulative.data(), cumulative.data() + cumulative.size(), u) - cumulative.data(),
        histogram.size() - 1);
    p = (static_cast<double>(bin) + rng.uniform()) / static_cast<double>(histogram.size());
  }
  std::sort(positions.begin(), positions.end());
  return Eigen::Map<const Eigen::VectorXd>(positions.data(), count);
}

// Per head and query, N(μ, σ²) averaged over each of kDensityBins equal bins of [0, 1]:
// [H, S, kDensityBins].
Tensor binned_densities(const MemoryRead& read) {
  const std::int64_t H = read.mu.rows(), S = read.mu.cols();
  Tensor t({H, S, kDensityBins});
  std::vector<double> mass(static_cast<std::size_t>(kDensityBins));
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < S; ++i) {
      std::fill(mass.begin(), mass.end(), 0.0);
      add_bin_masses(read.mu(h, i), read.variance(h, i), kDensityBins, mass.data());
      float* out = t.data() + (h * S + i) * kDensityBins;
      for (std::int64_t b = 0; b < kDensityBins; ++b)
        out[b] = static_cast<float>(mass[static_cast<std::size_t>(b)] * static_cast<double>(kDensityBins));
    }
  return t;
}

// [rows, cols] of a double matrix as a float tensor.
Tensor matrix_tensor(const Eigen::MatrixXd& m) {
  Tensor t({static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())});
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) t.at(r, c) = static_cast<float>(m(r, c));
  return t;
}

}  // namespace

// ---- basis and signal ------------------------------------------------------------------------------

GaussianBasis GaussianBasis::standard(std::int64_t count) {
  if (count < 4 || count % 2 != 0) {
    throw ParamError("basis: an even integer >= 4 (centres × 2 widths), got " + std::to_string(count));
  }
  const std::int64_t centres = count / 2;
  GaussianBasis b;
  b.centres.resize(count);
  b.widths.resize(count);
  for (std::int64_t c = 0; c < centres; ++c) {
    const double centre = static_cast<double>(c) / static_cast<double>(centres - 1);
    b.centres(2 * c) = b.centres(2 * c + 1) = centre;
    b.widths(2 * c) = kNarrowWidth;
    b.widths(2 * c + 1) = kWideWidth;
  }
  return b;
}

Eigen::MatrixXd GaussianBasis::evaluate(const Eigen::VectorXd& positions) const {
  Eigen::MatrixXd f(size(), positions.size());
  for (Eigen::Index p = 0; p < positions.size(); ++p)
    for (Eigen::Index j = 0; j < size(); ++j) f(j, p) = gaussian_density(positions(p), centres(j), widths(j) * widths(j));
  return f;
}

Eigen::VectorXd GaussianBasis::expected(double mu, double variance) const {
  Eigen::VectorXd r(size());
  for (Eigen::Index j = 0; j < size(); ++j) r(j) = gaussian_density(mu, centres(j), variance + widths(j) * widths(j));
  return r;
}

ContinuousSignal ContinuousSignal::fit(const GaussianBasis& basis, const Eigen::VectorXd& positions,
                                       const Eigen::MatrixXd& values, double ridge) {
  if (values.rows() != positions.size()) {
    throw ShapeError("memory fit: " + std::to_string(values.rows()) + " values for " + std::to_string(positions.size()) +
                     " positions");
  }
  if (!(ridge > 0.0)) throw ParamError("ridge: a number > 0, got " + std::to_string(ridge));
  const Eigen::MatrixXd f = basis.evaluate(positions);  // [N, P]
  Eigen::MatrixXd gram = Eigen::MatrixXd::Identity(basis.size(), basis.size()) * ridge;
  gram.selfadjointView<Eigen::Lower>().rankUpdate(f);  // F Fᵀ + λ I
  ContinuousSignal s;
  s.coefficients = gram.selfadjointView<Eigen::Lower>().llt().solve(f * values);
  return s;
}

Eigen::MatrixXd ContinuousSignal::evaluate(const GaussianBasis& basis, const Eigen::VectorXd& positions) const {
  return basis.evaluate(positions).transpose() * coefficients;
}

// ---- trace ---------------------------------------------------------------------------------------------

nlohmann::json MemoryTrace::to_json() const {
  nlohmann::json j;
  j["kind"] = "memory";
  j["segments"] = segments;
  j["segment"] = segment;
  j["basis"] = basis;
  j["tau"] = tau;
  j["sticky"] = sticky;
  nlohmann::json per = nlohmann::json::array();
  for (const MemorySegmentTrace& r : reads) {
    nlohmann::json s;
    s["segment"] = r.segment;
    s["start"] = r.start;
    s["stored"] = tensor_to_json(r.stored);
    s["positions"] = tensor_to_json(r.positions);
    s["reconstructed"] = tensor_to_json(r.reconstructed);
    s["compressed"] = r.compressed;
    s["mu"] = tensor_to_json(r.mu);
    s["sigma"] = tensor_to_json(r.sigma);
    s["head_mu"] = tensor_to_json(r.head_mu);
    s["head_sigma"] = tensor_to_json(r.head_sigma);
    s["density"] = tensor_to_json(r.density);
    if (sticky) s["sticky_histogram"] = tensor_to_json(r.sticky_histogram);
    per.push_back(std::move(s));
  }
  j["per_segment"] = std::move(per);
  return j;
}

// ---- layer -----------------------------------------------------------------------------------------------

const std::vector<ParamSpec>& InfinityMemoryLayer::schema() {
  static const std::vector<ParamSpec> specs{
      ParamSpec::integer("segment", "Segment length", 64, 4, 65536, "Tokens read at a time; attention stays inside a segment"),
      ParamSpec::integer("basis", "Basis functions", 64, 4, 1024,
                         "N Gaussians of the continuous memory (even: N/2 centres × 2 widths)"),
      ParamSpec::real("tau", "Old-memory share τ", 0.75, 0.05, 0.95,
                      "The old signal is compressed into [0, τ]; the new segment takes [τ, 1]"),
      ParamSpec::real("ridge", "Ridge λ", 1.0, 1e-6, 100.0, "Penalty of the ridge regression that fits the memory"),
      ParamSpec::integer("samples", "Compression samples", 512, 16, 8192, "Points the old signal is sampled at before refitting"),
      ParamSpec::boolean("sticky", "Sticky memories", false,
                         "Sample the old signal where the last queries attended (128-bin histogram) instead of uniformly"),
  };
  return specs;
}

InfinityMemoryLayer InfinityMemoryLayer::seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff,
                                                const Params& params, std::uint64_t seed) {
  if (d_model < 1) throw ParamError("∞-former needs d_model >= 1, got " + std::to_string(d_model));
  if (d_ff < 1) throw ParamError("∞-former needs d_ff >= 1, got " + std::to_string(d_ff));
  InfinityMemoryLayer m;
  m.d_model = d_model;
  m.heads = heads;
  m.d_ff = d_ff;
  m.segment = params.get_int("segment");
  m.samples = params.get_int("samples");
  m.tau = params.get_float("tau");
  m.ridge = params.get_float("ridge");
  m.sticky = params.get_bool("sticky");
  m.basis = GaussianBasis::standard(params.get_int("basis"));
  const std::int64_t D = d_model, N = m.basis.size();
  m.norm_attention = LayerNorm::identity(D);
  m.attention = MultiHeadAttention::seeded(D, heads, Rng::derive(seed, "attention"));  // checks D % heads
  m.memory_q = Linear::seeded(D, D, Rng::derive(seed, "memory.w_q"));
  m.memory_k = Linear::seeded(D, D, Rng::derive(seed, "memory.w_k"));
  m.memory_v = Linear::seeded(D, D, Rng::derive(seed, "memory.w_v"));
  m.memory_mu = Linear::seeded(N, 1, Rng::derive(seed, "memory.w_mu"));
  m.memory_sigma = Linear::seeded(N, 1, Rng::derive(seed, "memory.w_sigma"));
  m.norm_ff = LayerNorm::identity(D);
  m.feed_forward = FeedForward::seeded(D, d_ff, Rng::derive(seed, "feed_forward"));
  return m;
}

void InfinityMemoryLayer::visit_weights(const std::string& prefix, WeightTable& table) {
  const std::int64_t D = d_model, N = basis.size();
  table.norm(prefix + "norm_attention", norm_attention, D);
  table.attention(prefix + "attention", attention, D);
  table.linear(prefix + "memory.w_q", memory_q, D, D);
  table.linear(prefix + "memory.w_k", memory_k, D, D);
  table.linear(prefix + "memory.w_v", memory_v, D, D);
  table.linear(prefix + "memory.w_mu", memory_mu, N, 1);
  table.linear(prefix + "memory.w_sigma", memory_sigma, N, 1);
  table.norm(prefix + "norm_ff", norm_ff, D);
  table.feed_forward(prefix + "ff", feed_forward, D, d_ff);
}

MemoryRead InfinityMemoryLayer::read(const RowMatrix& normed, const ContinuousSignal& memory) const {
  const std::int64_t S = normed.rows(), D = d_model, H = heads, d = D / H, N = basis.size();
  if (memory.coefficients.rows() != N || memory.coefficients.cols() != D) {
    throw ShapeError("memory has coefficients [" + std::to_string(memory.coefficients.rows()) + ", " +
                     std::to_string(memory.coefficients.cols()) + "], expected [" + std::to_string(N) + ", " +
                     std::to_string(D) + "]");
  }
  const RowMatrix q = memory_q.forward(normed);  // [S, D]
  const RowMatrix b = memory.coefficients.cast<float>();
  const RowMatrix k = memory_k.forward(b);  // [N, D]
  const RowMatrix v = memory_v.forward(b);  // [N, D]
  const float inv_sqrt_d = 1.0f / std::sqrt(static_cast<float>(d));
  MemoryRead out{RowMatrix(S, D), Eigen::MatrixXd(H, S), Eigen::MatrixXd(H, S)};
  RowMatrix scores(S, N), r(S, N);
  for (std::int64_t h = 0; h < H; ++h) {
    scores.noalias() = (q.middleCols(h * d, d) * k.middleCols(h * d, d).transpose()) * inv_sqrt_d;  // [S, N]
    const Eigen::VectorXf mu_logit = scores * memory_mu.weight;        // [S]
    const Eigen::VectorXf sigma_logit = scores * memory_sigma.weight;  // [S]
    for (std::int64_t i = 0; i < S; ++i) {
      const double mu = sigmoid(static_cast<double>(mu_logit(i)) + memory_mu.bias(0));
      const double variance = softplus(static_cast<double>(sigma_logit(i)) + memory_sigma.bias(0));
      out.mu(h, i) = mu;
      out.variance(h, i) = variance;
      for (std::int64_t j = 0; j < N; ++j)
        r(i, j) = static_cast<float>(gaussian_density(mu, basis.centres(j), variance + basis.widths(j) * basis.widths(j)));
    }
    out.context.middleCols(h * d, d).noalias() = r * v.middleCols(h * d, d);
  }
  return out;
}

RowMatrix InfinityMemoryLayer::forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  const std::int64_t L = x.rows(), D = d_model, H = heads;
  if (x.cols() != D) {
    throw ShapeError("∞-former layer expects [L, " + std::to_string(D) + "], got [" + std::to_string(L) + ", " +
                     std::to_string(x.cols()) + "]");
  }
  if (!options.variant) throw ParamError("∞-former layer needs an attention variant");
  const std::vector<std::uint8_t>* padding = options.key_padding;
  if (padding && static_cast<std::int64_t>(padding->size()) != L) {
    throw ShapeError("key padding has " + std::to_string(padding->size()) + " entries for " + std::to_string(L) + " tokens");
  }
  if (L == 0) return x;

  const std::int64_t segments = (L + segment - 1) / segment;
  const std::int64_t shown = std::min(D, kShownChannels);
  RowMatrix out(L, D);
  Tensor weights;
  std::shared_ptr<MemoryTrace> memory_trace;
  Eigen::VectorXd grid;
  if (trace) {
    weights = Tensor({H, L, L});
    memory_trace = std::make_shared<MemoryTrace>();
    memory_trace->segments = segments;
    memory_trace->segment = segment;
    memory_trace->basis = basis.size();
    memory_trace->tau = tau;
    memory_trace->sticky = sticky;
    grid = Eigen::VectorXd::LinSpaced(kReconstructionGrid, 0.0, 1.0);
  }
  ContinuousSignal memory;
  bool has_memory = false;
  FitPoints fitted;  // what `memory` was fitted to (kept for the trace)
  const std::uint64_t sticky_seed = Rng::derive(options.seed, "sticky");

  for (std::int64_t s = 0; s < segments; ++s) {
    check_cancelled(options.cancel);
    const std::int64_t start = s * segment, S = std::min(segment, L - start);
    std::vector<std::uint8_t> segment_padding;
    AttentionOptions o = options;
    if (padding) {
      segment_padding.assign(padding->begin() + start, padding->begin() + start + S);
      o.key_padding = &segment_padding;
    }
    // The first segment keeps the caller's seed, so one segment is exactly a plain layer.
    if (s > 0) o.seed = Rng::derive(options.seed, static_cast<std::uint64_t>(s));

    const RowMatrix xs = x.middleRows(start, S);
    const RowMatrix normed = norm_attention.forward(xs);
    Trace segment_trace;
    RowMatrix h = xs + attention.forward(normed, o, trace ? &segment_trace : nullptr);
    MemoryRead memory_read;
    if (has_memory) {
      memory_read = read(normed, memory);
      h.noalias() += memory_read.context * attention.w_o.weight;
    }
    check_cancelled(options.cancel);
    h += feed_forward.forward(norm_ff.forward(h));
    out.middleRows(start, S) = h;

    Eigen::VectorXd histogram;
    if (has_memory && sticky) histogram = attention_histogram(memory_read);
    if (trace) {
      for (std::int64_t head = 0; head < H; ++head)
        weights.matrix(head).block(start, start, S, S) = segment_trace.weights.matrix(head);
      if (segments == 1) trace->extras = segment_trace.extras;
      if (has_memory) {
        MemorySegmentTrace r;
        r.segment = s;
        r.start = start;
        r.stored = channel_rows(fitted.values, shown);
        r.positions = vector_tensor(fitted.positions);
        r.reconstructed = channel_rows(memory.evaluate(basis, grid), shown);
        r.mu = vector_tensor(memory_read.mu.colwise().mean().transpose());
        r.sigma = vector_tensor(memory_read.variance.cwiseSqrt().colwise().mean().transpose());
        r.head_mu = matrix_tensor(memory_read.mu);
        r.head_sigma = matrix_tensor(memory_read.variance.cwiseSqrt());
        r.density = binned_densities(memory_read);
        r.compressed = s >= 2;
        if (sticky) r.sticky_histogram = vector_tensor(histogram);
        memory_trace->reads.push_back(std::move(r));
      }
    }
    if (s + 1 == segments) break;

    // Store this segment: old signal (if any) compressed into [0, τ], the new tokens in [τ, 1].
    std::vector<std::int64_t> kept;
    for (std::int64_t i = 0; i < S; ++i)
      if (!padding || !segment_padding[static_cast<std::size_t>(i)]) kept.push_back(i);
    const std::int64_t old_count = has_memory ? samples : 0;
    const std::int64_t total = old_count + static_cast<std::int64_t>(kept.size());
    if (total == 0) continue;  // nothing stored yet and this segment is all padding
    FitPoints points{Eigen::VectorXd(total), Eigen::MatrixXd(total, D)};
    const double new_start = has_memory ? tau : 0.0;
    if (has_memory) {
      const Eigen::VectorXd sampled =
          sticky ? sample_positions(histogram, samples, Rng::derive(sticky_seed, static_cast<std::uint64_t>(s)))
                 : Eigen::VectorXd((Eigen::VectorXd::LinSpaced(samples, 0.0, static_cast<double>(samples - 1)).array() + 0.5) /
                                   static_cast<double>(samples));
      points.values.topRows(old_count) = memory.evaluate(basis, sampled);
      points.positions.head(old_count) = sampled * tau;
    }
    for (std::size_t n = 0; n < kept.size(); ++n) {
      const std::int64_t row = old_count + static_cast<std::int64_t>(n);
      points.positions(row) = new_start + (1.0 - new_start) * (static_cast<double>(kept[n]) + 0.5) / static_cast<double>(S);
      points.values.row(row) = normed.row(kept[n]).cast<double>();
    }
    memory = ContinuousSignal::fit(basis, points.positions, points.values, ridge);
    has_memory = true;
    if (trace) fitted = std::move(points);
  }

  if (trace) {
    trace->weights = std::move(weights);
    trace->layer_extras.push_back(std::move(memory_trace));
  }
  return out;
}

}  // namespace attnlab
