// ∞-former layer: the continuous memory (ridge fit, closed-form Gaussian expectations), the read,
// and the whole layer against a naive double-precision reference that refits the memory segment
// by segment with an explicit matrix inverse; one segment reduces to a plain pre-LN layer.
#include <QtTest>

#include <Eigen/LU>
#include <numbers>

#include "attention/registry.h"
#include "core/safetensors.h"
#include "layers/infinity_memory.h"
#include "layers/weight_table.h"
#include "naive_reference.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;
using namespace attnlab::test::naive;  // layer_norm, affine, options, max_relative, ...

namespace {

using MatrixD = Eigen::MatrixXd;
using VectorD = Eigen::VectorXd;

Params memory_params(const nlohmann::json& values) {
  Params p(InfinityMemoryLayer::schema());
  p.set_from_json(values);
  return p;
}

// D = 8, 2 heads, d_ff = 16, segments of 8, 8 basis functions, 16 compression samples.
InfinityMemoryLayer small_layer(const nlohmann::json& values = nlohmann::json::object(), std::uint64_t seed = 7,
                                std::int64_t heads = 2) {
  nlohmann::json v = {{"segment", 8}, {"basis", 8}, {"samples", 16}};
  v.update(values);
  return InfinityMemoryLayer::seeded(8, heads, 16, memory_params(v), seed);
}

double density(double t, double mean, double variance) {
  return std::exp(-0.5 * (t - mean) * (t - mean) / variance) / std::sqrt(2.0 * std::numbers::pi * variance);
}

// The basis written out independently: N/2 centres on [0, 1], each with width 0.01 then 0.05
// (the documented order j = 2·centre + width, which w_μ and w_σ index).
struct Basis {
  std::vector<double> centre, width;
  explicit Basis(std::int64_t n) {
    for (std::int64_t c = 0; c < n / 2; ++c)
      for (double w : {0.01, 0.05}) {
        centre.push_back(static_cast<double>(c) / static_cast<double>(n / 2 - 1));
        width.push_back(w);
      }
  }
  MatrixD psi(const VectorD& t) const {  // [N, P]
    MatrixD f(centre.size(), t.size());
    for (std::size_t j = 0; j < centre.size(); ++j)
      for (Eigen::Index p = 0; p < t.size(); ++p) f(static_cast<Eigen::Index>(j), p) = density(t(p), centre[j], width[j] * width[j]);
    return f;
  }
};

MatrixD ridge_fit(const Basis& b, const VectorD& t, const MatrixD& values, double lambda) {
  const MatrixD f = b.psi(t);
  const MatrixD gram = f * f.transpose() + lambda * MatrixD::Identity(f.rows(), f.rows());
  return gram.inverse() * f * values;
}

// Softmax multi-head attention of xn [S, D] on itself, heads concatenated, before W_o.
MatrixD naive_short_term(const MultiHeadAttention& mha, const MatrixD& xn, bool causal) {
  const MatrixD q = affine(mha.w_q, xn), k = affine(mha.w_k, xn), v = affine(mha.w_v, xn);
  const Eigen::Index S = xn.rows(), D = xn.cols(), d = D / mha.heads;
  MatrixD out = MatrixD::Zero(S, D);
  for (Eigen::Index h = 0; h < mha.heads; ++h)
    for (Eigen::Index i = 0; i < S; ++i) {
      std::vector<double> w;
      double top = -1e300, sum = 0.0;
      for (Eigen::Index j = 0; j < S; ++j) {
        w.push_back(causal && j > i ? -1e300 : q.row(i).segment(h * d, d).dot(k.row(j).segment(h * d, d)) / std::sqrt(double(d)));
        top = std::max(top, w.back());
      }
      for (double& e : w) sum += (e = e <= -1e299 ? 0.0 : std::exp(e - top));
      for (Eigen::Index j = 0; j < S; ++j) out.row(i).segment(h * d, d) += w[static_cast<std::size_t>(j)] / sum * v.row(j).segment(h * d, d);
    }
  return out;
}

// The long-term read of memory coefficients B [N, D] by xn [S, D].
MatrixD naive_read(const InfinityMemoryLayer& m, const Basis& b, const MatrixD& coefficients, const MatrixD& xn) {
  const MatrixD q = affine(m.memory_q, xn), k = affine(m.memory_k, coefficients), v = affine(m.memory_v, coefficients);
  const Eigen::Index S = xn.rows(), D = xn.cols(), d = D / m.heads, N = coefficients.rows();
  MatrixD out = MatrixD::Zero(S, D);
  for (Eigen::Index h = 0; h < m.heads; ++h)
    for (Eigen::Index i = 0; i < S; ++i) {
      double mu_logit = m.memory_mu.bias(0), sigma_logit = m.memory_sigma.bias(0);
      for (Eigen::Index j = 0; j < N; ++j) {
        const double s = q.row(i).segment(h * d, d).dot(k.row(j).segment(h * d, d)) / std::sqrt(double(d));
        mu_logit += s * m.memory_mu.weight(j, 0);
        sigma_logit += s * m.memory_sigma.weight(j, 0);
      }
      const double mu = sigmoid(mu_logit), variance = softplus(sigma_logit);
      for (Eigen::Index j = 0; j < N; ++j) {
        const double r = density(mu, b.centre[static_cast<std::size_t>(j)],
                                 variance + b.width[static_cast<std::size_t>(j)] * b.width[static_cast<std::size_t>(j)]);
        out.row(i).segment(h * d, d) += r * v.row(j).segment(h * d, d);
      }
    }
  return out;
}

// The whole layer: segment by segment, memory refitted after each (uniform compression samples).
MatrixD naive_layer(const InfinityMemoryLayer& m, const RowMatrix& x_float, bool causal) {
  const MatrixD x = x_float.cast<double>();
  const Eigen::Index L = x.rows(), D = x.cols();
  const Basis b(m.basis.size());
  MatrixD out(L, D), memory;
  for (Eigen::Index start = 0; start < L; start += m.segment) {
    const Eigen::Index S = std::min<Eigen::Index>(m.segment, L - start);
    const MatrixD xs = x.middleRows(start, S);
    const MatrixD xn = layer_norm(m.norm_attention, xs);
    MatrixD mixed = naive_short_term(m.attention, xn, causal);
    if (memory.size() > 0) mixed += naive_read(m, b, memory, xn);
    const MatrixD h = xs + affine(m.attention.w_o, mixed);
    out.middleRows(start, S) = h + feed_forward(m.feed_forward, layer_norm(m.norm_ff, h));
    // Refit: old signal sampled at (k + ½)/samples into [0, τ], the segment at (i + ½)/S in [τ, 1].
    const bool old = memory.size() > 0;
    const Eigen::Index P = (old ? m.samples : 0) + S;
    VectorD t(P);
    MatrixD values(P, D);
    Eigen::Index row = 0;
    if (old) {
      VectorD p(m.samples);
      for (Eigen::Index k = 0; k < m.samples; ++k) p(k) = (k + 0.5) / static_cast<double>(m.samples);
      const MatrixD sampled = b.psi(p).transpose() * memory;
      for (Eigen::Index k = 0; k < m.samples; ++k, ++row) {
        t(row) = m.tau * p(k);
        values.row(row) = sampled.row(k);
      }
    }
    const double lo = old ? m.tau : 0.0;
    for (Eigen::Index i = 0; i < S; ++i, ++row) {
      t(row) = lo + (1.0 - lo) * (i + 0.5) / static_cast<double>(S);
      values.row(row) = xn.row(i);
    }
    memory = ridge_fit(b, t, values, m.ridge);
  }
  return out;
}

}  // namespace

class TestInfinityMemory : public QObject {
  Q_OBJECT

 private slots:
  void fit_reproduces_the_points_when_basis_exceeds_them() {
    const GaussianBasis basis = GaussianBasis::standard(32);
    const std::int64_t L = 16;
    VectorD t(L);
    for (std::int64_t i = 0; i < L; ++i) t(i) = (i + 0.5) / L;
    const MatrixD x = random_tensor({L, 5}, 1).matrix().cast<double>();
    const ContinuousSignal signal = ContinuousSignal::fit(basis, t, x, 1e-6);
    const double error = (signal.evaluate(basis, t) - x).cwiseAbs().maxCoeff();
    QVERIFY2(error < 1e-3, qPrintable(QString("error %1").arg(error)));
    // A strong penalty does not interpolate: the test above could fail.
    QVERIFY((ContinuousSignal::fit(basis, t, x, 10.0).evaluate(basis, t) - x).cwiseAbs().maxCoeff() > 1e-2);
  }

  void expectation_equals_numerical_integral() {
    const GaussianBasis basis = GaussianBasis::standard(8);
    for (const auto& [mu, sigma] : {std::pair{0.3, 0.05}, std::pair{0.9, 0.2}, std::pair{0.5, 0.004}, std::pair{0.02, 0.5}}) {
      const VectorD r = basis.expected(mu, sigma * sigma);
      // Trapezoid rule for ∫ N(t; μ, σ²) ψ_j(t) dt over [−4, 5], step 2e-5.
      const double lo = -4.0, hi = 5.0, step = 2e-5;
      const auto n = static_cast<std::int64_t>((hi - lo) / step);
      for (std::int64_t j = 0; j < basis.size(); ++j) {
        double integral = 0.0;
        for (std::int64_t p = 0; p <= n; ++p) {
          const double t = lo + p * step;
          const double f = density(t, mu, sigma * sigma) * density(t, basis.centres(j), basis.widths(j) * basis.widths(j));
          integral += (p == 0 || p == n ? 0.5 : 1.0) * f * step;
        }
        QVERIFY2(std::abs(r(j) - integral) <= 1e-5 * std::max(1.0, std::abs(integral)),
                 qPrintable(QString("mu %1 sigma %2 j %3: %4 vs %5").arg(mu).arg(sigma).arg(j).arg(r(j)).arg(integral)));
      }
    }
  }

  void vanishing_variance_reads_the_basis_at_mu() {
    InfinityMemoryLayer m = small_layer(nlohmann::json::object(), 7, 1);
    m.memory_sigma.weight.setZero();
    m.memory_sigma.bias.setConstant(-80.0f);  // σ² = softplus(−80) ≈ 2e-35
    VectorD t(8);
    for (int i = 0; i < 8; ++i) t(i) = (i + 0.5) / 8;
    const ContinuousSignal memory = ContinuousSignal::fit(m.basis, t, random_tensor({8, 8}, 2).matrix().cast<double>(), 1.0);
    const RowMatrix normed = random_tensor({6, 8}, 3).matrix();
    const MemoryRead read = m.read(normed, memory);
    const MatrixD v = affine(m.memory_v, memory.coefficients);  // [N, D]
    MatrixD reference(6, 8);
    for (int i = 0; i < 6; ++i) {
      QVERIFY(read.variance(0, i) < 1e-30);
      VectorD mu(1);
      mu(0) = read.mu(0, i);
      reference.row(i) = (m.basis.evaluate(mu).transpose() * v).row(0);
    }
    QVERIFY2(max_relative(read.context, reference) < 1e-4, qPrintable(QString::number(max_relative(read.context, reference))));
    m.memory_sigma.bias.setConstant(0.0f);
    QVERIFY(max_relative(m.read(normed, memory).context, reference) > 1e-3);
  }

  void one_segment_is_a_plain_pre_ln_layer() {
    const InfinityMemoryLayer m = small_layer({{"segment", 32}});
    const RowMatrix x = random_tensor({20, 8}, 4).matrix();
    for (bool causal : {false, true}) {
      const MatrixD xd = x.cast<double>();
      const MatrixD h = xd + affine(m.attention.w_o, naive_short_term(m.attention, layer_norm(m.norm_attention, xd), causal));
      const MatrixD reference = h + feed_forward(m.feed_forward, layer_norm(m.norm_ff, h));
      Trace trace;
      const RowMatrix out = m.forward(x, options(causal), &trace);
      const double e = max_relative(out, reference);
      QVERIFY2(e < 1e-4, qPrintable(QString("causal %1: error %2").arg(causal).arg(e)));
      const auto* t = dynamic_cast<const MemoryTrace*>(trace.layer_extra("memory"));
      QVERIFY(t && t->segments == 1 && t->reads.empty());
      QVERIFY(trace.extras);  // the variant's own extras survive with one segment
    }
  }

  void segments_match_naive_reference() {
    for (const double tau : {0.75, 0.3}) {
      const InfinityMemoryLayer m = small_layer({{"tau", tau}});
      const RowMatrix x = random_tensor({27, 8}, 5).matrix();  // segments of 8, 8, 8, 3
      for (bool causal : {false, true}) {
        const double e = max_relative(m.forward(x, options(causal), nullptr), naive_layer(m, x, causal));
        QVERIFY2(e < 1e-4, qPrintable(QString("tau %1 causal %2: error %3").arg(tau).arg(causal).arg(e)));
      }
    }
    // The long-term term matters: without it the later segments differ.
    InfinityMemoryLayer silent = small_layer();
    const RowMatrix x = random_tensor({27, 8}, 5).matrix();
    const RowMatrix with_memory = silent.forward(x, options(false), nullptr);
    silent.memory_v.weight.setZero();
    silent.memory_v.bias.setZero();
    const RowMatrix without = silent.forward(x, options(false), nullptr);
    QVERIFY(rows_identical(with_memory, without, 0, 8));
    QVERIFY(with_memory.bottomRows(19) != without.bottomRows(19));
  }

  void causal_outputs_ignore_later_tokens_bit_for_bit() {
    for (bool sticky : {false, true}) {
      const InfinityMemoryLayer m = small_layer({{"sticky", sticky}});
      const RowMatrix x = random_tensor({40, 8}, 6).matrix();
      const RowMatrix a = m.forward(x, options(true), nullptr);
      for (std::int64_t j : {3, 8, 21, 39}) {
        RowMatrix changed = x;
        changed.row(j) *= -3.0f;
        const RowMatrix b = m.forward(changed, options(true), nullptr);
        QVERIFY2(rows_identical(a, b, 0, j), qPrintable(QString("sticky %1 j=%2").arg(sticky).arg(j)));
        QVERIFY(a.row(j) != b.row(j));
      }
    }
  }

  // A padded token is neither attended nor stored: changing it moves only its own output.
  void padded_tokens_are_not_stored() {
    const InfinityMemoryLayer m = small_layer();
    const RowMatrix x = random_tensor({30, 8}, 8).matrix();
    const std::vector<std::uint8_t> padding = attnlab::test::padding_every(30, 11, 5);  // 5, 16, 27
    RowMatrix changed = x;
    changed.row(5) *= 4.0f;
    const RowMatrix a = m.forward(x, options(false, &padding), nullptr);
    const RowMatrix b = m.forward(changed, options(false, &padding), nullptr);
    QVERIFY(rows_identical(a, b, 0, 5));
    QVERIFY(rows_identical(a, b, 6, 24));
  }

  void deterministic_with_a_consistent_trace() {
    for (bool sticky : {false, true}) {
      const InfinityMemoryLayer m = small_layer({{"sticky", sticky}});
      const std::int64_t L = 27;
      const RowMatrix x = random_tensor({L, 8}, 9).matrix();
      Trace trace;
      const RowMatrix fast = m.forward(x, options(false, nullptr, 11), nullptr);
      QVERIFY(fast == m.forward(x, options(false, nullptr, 11), nullptr));
      if (sticky) QVERIFY(fast != m.forward(x, options(false, nullptr, 12), nullptr));  // other sample positions
      // The traced softmax takes its dense path, the fast one its blockwise path: equal up to rounding.
      const RowMatrix traced = m.forward(x, options(false, nullptr, 11), &trace);
      QVERIFY((traced - fast).cwiseAbs().maxCoeff() < 1e-4f);
      QCOMPARE(trace.weights.shape(), (Shape{2, L, L}));
      QVERIFY(!trace.extras);  // several segments: no per-call variant extras
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t i = 0; i < L; ++i) {
          double sum = 0.0;
          for (std::int64_t j = 0; j < L; ++j) {
            if (i / 8 != j / 8) QCOMPARE(trace.weights.at(h, i, j), 0.0f);
            sum += trace.weights.at(h, i, j);
          }
          QVERIFY(std::abs(sum - 1.0) < 1e-5);
        }
      const auto* t = dynamic_cast<const MemoryTrace*>(trace.layer_extra("memory"));
      QVERIFY(t);
      QCOMPARE(t->segments, std::int64_t{4});
      QCOMPARE(t->reads.size(), std::size_t{3});
      QCOMPARE(t->reads[0].stored.shape(), (Shape{8, 8}));       // segment 0's tokens
      QCOMPARE(t->reads[1].stored.shape(), (Shape{8, 16 + 8}));  // samples + segment 1
      QCOMPARE(t->reads[2].positions.shape(), (Shape{24}));
      QCOMPARE(t->reads[2].reconstructed.shape(), (Shape{8, 200}));
      QCOMPARE(t->reads[2].mu.shape(), (Shape{3}));
      QCOMPARE(t->reads[2].sigma.shape(), (Shape{3}));
      QVERIFY(!t->reads[0].compressed);  // segment 1 reads segment 0 alone
      QVERIFY(t->reads[1].compressed && t->reads[2].compressed);
      for (const MemorySegmentTrace& r : t->reads) {
        QCOMPARE(r.head_mu.shape(), (Shape{2, r.mu.size()}));
        QCOMPARE(r.head_sigma.shape(), (Shape{2, r.mu.size()}));
        QCOMPARE(r.density.shape(), (Shape{2, r.mu.size(), 128}));
        for (std::int64_t i = 0; i < r.mu.size(); ++i) {
          QVERIFY(std::abs(0.5 * (r.head_mu.at(0, i) + r.head_mu.at(1, i)) - r.mu.data()[i]) < 1e-6);
          QVERIFY(std::abs(0.5 * (r.head_sigma.at(0, i) + r.head_sigma.at(1, i)) - r.sigma.data()[i]) < 1e-6);
          for (std::int64_t h = 0; h < 2; ++h) {
            // The bin average of N(t; μ, σ²) by Simpson's rule over each bin, written out here.
            const double mu = r.head_mu.at(h, i), variance = double(r.head_sigma.at(h, i)) * r.head_sigma.at(h, i);
            for (std::int64_t b = 0; b < 128; b += 9) {
              const int steps = 400;
              const double a = b / 128.0, w = 1.0 / 128.0 / steps;
              double integral = 0.0;
              for (int k = 0; k <= steps; ++k)
                integral += (k == 0 || k == steps ? 1.0 : (k % 2 ? 4.0 : 2.0)) * density(a + k * w, mu, variance);
              const double average = integral * w / 3.0 * 128.0;
              const double got = r.density.at(h, i, b);
              QVERIFY2(std::abs(got - average) <= 1e-3 * std::max(1.0, average),
                       qPrintable(QString("h=%1 i=%2 bin %3: %4 vs %5").arg(h).arg(i).arg(b).arg(got).arg(average)));
            }
          }
        }
      }
      for (std::int64_t p = 0; p < 24; ++p) {
        const float pos = t->reads[1].positions.data()[p];
        QVERIFY(pos >= 0.0f && pos <= 1.0f);
        QVERIFY((p < 16) == (pos < 0.75f));
      }
      QCOMPARE(t->reads[0].sticky_histogram.empty(), !sticky);
      if (sticky) {
        double total = 0.0;
        for (std::int64_t b = 0; b < 128; ++b) total += t->reads[0].sticky_histogram.data()[b];
        QVERIFY(std::abs(total - 1.0) < 1e-5);
      }
      const nlohmann::json j = t->to_json();
      for (const char* key : {"segments", "basis", "tau", "per_segment"}) QVERIFY2(j.contains(key), key);
      for (const char* key : {"stored", "positions", "reconstructed", "mu", "sigma", "head_mu", "head_sigma", "density", "compressed"})
        QVERIFY2(j["per_segment"][0].contains(key), key);
      QCOMPARE(j["per_segment"][0].contains("sticky_histogram"), sticky);
    }
  }

  void weights_round_trip_through_the_table() {
    InfinityMemoryLayer a = small_layer(nlohmann::json::object(), 30);
    InfinityMemoryLayer b = small_layer(nlohmann::json::object(), 31);
    SafetensorsFile file;
    WeightWriter writer(file);
    a.visit_weights("layers.2.mixer.", writer);
    QCOMPARE(file.tensors.at("layers.2.mixer.memory.w_mu.weight").shape(), (Shape{8, 1}));
    QCOMPARE(file.tensors.at("layers.2.mixer.ff.up.weight").shape(), (Shape{8, 16}));
    WeightReader reader(file);
    b.visit_weights("layers.2.mixer.", reader);
    const RowMatrix x = random_tensor({20, 8}, 32).matrix();
    QVERIFY(a.forward(x, options(false), nullptr) == b.forward(x, options(false), nullptr));
  }

  void refuses_bad_input() {
    EXPECT_ERROR(ParamError, memory_params({{"segment", 3}}), "segment");
    EXPECT_ERROR(ParamError, memory_params({{"tau", 0.99}}), "tau");
    EXPECT_ERROR(ParamError, memory_params({{"ridge", 0.0}}), "ridge");
    EXPECT_ERROR(ParamError, small_layer({{"basis", 9}}), "basis");
    EXPECT_ERROR(ParamError, InfinityMemoryLayer::seeded(8, 3, 16, memory_params(nlohmann::json::object()), 1), "heads");
    const InfinityMemoryLayer m = small_layer();
    EXPECT_ERROR(ShapeError, m.forward(RowMatrix::Zero(4, 7), options(false), nullptr), "[4, 7]");
    AttentionOptions no_variant = options(false);
    no_variant.variant = nullptr;
    EXPECT_ERROR(ParamError, m.forward(RowMatrix::Zero(4, 8), no_variant, nullptr), "variant");
    CancelToken token;
    token.cancel();
    AttentionOptions o = options(false);
    o.cancel = &token;
    EXPECT_ERROR(CancelledError, m.forward(RowMatrix::Ones(20, 8), o, nullptr), "cancelled");
  }
};

QTEST_APPLESS_MAIN(TestInfinityMemory)
#include "test_infinity_memory.moc"
