// Performer FAVOR+ against independent references written here: features are positive; over many
// draws of W the mean of φ(q)·φ(k) (unstabilised, ε = 0) approaches exp(q·k/√d) within the
// standard error, for orthogonal and i.i.d. features; the output error against exact softmax
// falls about as m^(−1/2) (log-log slope over m = 16..1024 and several seeds); orthogonal
// features give a lower error than i.i.d. ones on average; causal prefix sums, non-causal sums
// and the traced weights equal the masked quadratic form built here in double from the feature
// matrix (with ε = 0 straight from Σ_f exp(a_f(q) + a_f(k)), so the stabilisers must cancel);
// rows of W within a block are orthogonal; causal outputs before token j are bit-identical
// when token j changes; the running states equal sums computed here; L = 64k runs in linear
// memory; seeds and `redraw` decide the features.
#include <QtTest>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "analysis/approximation.h"
#include "attention/feature_maps.h"
#include "attention/performer.h"
#include "attention/registry.h"
#include "core/memory_meter.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::padding_every;
using attnlab::test::random_tensor;
using attnlab::test::head_rows_identical;
using attnlab::test::key_visible;
using attnlab::test::log_log_slope;
using attnlab::test::max_relative_error;

namespace {

struct Config {
  std::int64_t features = 64;
  bool orthogonal = true;
  std::string norms = "gaussian";
  std::int64_t redraw = 0;
  double eps = 1e-4;
  bool causal = false;
  std::uint64_t seed = 5;
};

using Run = test::VariantRun;

Run run_performer(const Tensor& q, const Tensor& k, const Tensor& v, const Config& c, bool with_trace,
                  const std::vector<std::uint8_t>* padding = nullptr) {
  const nlohmann::json params = {{"n_features", c.features}, {"orthogonal", c.orthogonal}, {"feature_norms", c.norms},
                                 {"redraw", c.redraw},       {"feature_eps", c.eps}};
  return test::run_variant("performer", q, k, v, params, {c.causal, c.seed, with_trace, padding});
}

Run run_softmax(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  return test::run_variant("softmax", q, k, v, nullptr, {causal, 0, true});
}

// a_f(x) = w_f·x' − ‖x'‖²/2 with x' = x·d^{−1/4}, in double, for row i of head h.
std::vector<double> favor_logits(const Tensor& w, std::int64_t h, const Tensor& x, std::int64_t i) {
  const std::int64_t m = w.dim(1), d = w.dim(2);
  const double s = std::pow(static_cast<double>(d), -0.25);
  double norm = 0.0;
  for (std::int64_t c = 0; c < d; ++c) norm += s * x.at(h, i, c) * s * x.at(h, i, c);
  std::vector<double> a(static_cast<std::size_t>(m));
  for (std::int64_t f = 0; f < m; ++f) {
    double dot = 0.0;
    for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(w.at(h, f, c)) * s * x.at(h, i, c);
    a[static_cast<std::size_t>(f)] = dot - 0.5 * norm;
  }
  return a;
}

// The documented kernel, from its definition: κ_ij = e^{μ_k} φ̃(q_i)·φ̃(k_j) where
// φ̃(x)_f = m^{−1/2}(e^{a_f − μ} + ε), μ = max_f a_f. With ε = 0 this is m^{−1} Σ_f e^{a_f(q) + a_f(k)}
// (computed that way, without any stabiliser). Returns A [H, Lq, Lk] and out [H, Lq, dv].
struct Reference {
  std::vector<double> weights, out;
};

Reference favor_reference(const Tensor& w, const Tensor& q, const Tensor& k, const Tensor& v, double eps, bool causal,
                          const std::vector<std::uint8_t>* padding) {
  const std::int64_t H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), dv = v.dim(2), m = w.dim(1);
  Reference r{std::vector<double>(static_cast<std::size_t>(H * Lq * Lk), 0.0),
              std::vector<double>(static_cast<std::size_t>(H * Lq * dv), 0.0)};
  for (std::int64_t h = 0; h < H; ++h) {
    std::vector<std::vector<double>> ak(static_cast<std::size_t>(Lk));
    for (std::int64_t j = 0; j < Lk; ++j) ak[static_cast<std::size_t>(j)] = favor_logits(w, h, k, j);
    for (std::int64_t i = 0; i < Lq; ++i) {
      const std::vector<double> aq = favor_logits(w, h, q, i);
      const double mq = *std::max_element(aq.begin(), aq.end());
      std::vector<double> kappa(static_cast<std::size_t>(Lk), 0.0);
      double total = 0.0;
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!key_visible(i, j, causal, padding)) continue;
        const auto& a = ak[static_cast<std::size_t>(j)];
        const double mk = *std::max_element(a.begin(), a.end());
        double kap = 0.0;
        for (std::int64_t f = 0; f < m; ++f) {
          const std::size_t u = static_cast<std::size_t>(f);
          if (eps == 0.0) kap += std::exp(aq[u] - mq + a[u]);  // the query's own scale cancels in the row
          else kap += (std::exp(aq[u] - mq) + eps) * (std::exp(a[u] - mk) + eps) * std::exp(mk);
        }
        kappa[static_cast<std::size_t>(j)] = kap / static_cast<double>(m);
        total += kappa[static_cast<std::size_t>(j)];
      }
      if (total <= 0.0) continue;
      for (std::int64_t j = 0; j < Lk; ++j) {
        const double a = kappa[static_cast<std::size_t>(j)] / total;
        r.weights[static_cast<std::size_t>((h * Lq + i) * Lk + j)] = a;
        for (std::int64_t c = 0; c < dv; ++c) r.out[static_cast<std::size_t>((h * Lq + i) * dv + c)] += a * v.at(h, j, c);
      }
    }
  }
  return r;
}


// φ(q)·φ(k) with unstabilised features (ε = 0) for one draw of W.
double kernel_estimate(const Tensor& w, const Tensor& q, const Tensor& k) {
  const PositiveFeatureOptions raw{0.0f, false, 0.0f};
  const Tensor fq = positive_random_features(q, w, raw), fk = positive_random_features(k, w, raw);
  double dot = 0.0;
  for (std::int64_t f = 0; f < w.dim(0); ++f) dot += static_cast<double>(fq.data()[f]) * fk.data()[f];
  return dot;
}

}  // namespace

class TestPerformer : public QObject {
  Q_OBJECT

 private slots:
  void schema_and_defaults() {
    const Attention& variant = Registry::builtin().get("performer");
    const Params p(variant.spec().params);
    QCOMPARE(p.get_int("n_features"), std::int64_t{64});
    QCOMPARE(p.get_bool("orthogonal"), true);
    QCOMPARE(p.get_choice("feature_norms"), std::string("gaussian"));
    QCOMPARE(p.get_int("redraw"), std::int64_t{0});
    QCOMPARE(p.get_float("feature_eps"), 1e-4);
  }

  // φ(Q) and φ(K) are strictly positive (ε > 0), and positive even with ε = 0 on moderate inputs.
  void features_are_positive() {
    const Tensor q = random_tensor({2, 50, 16}, 1), k = random_tensor({2, 60, 16}, 2), v = random_tensor({2, 60, 4}, 3);
    for (double eps : {1e-4, 0.0}) {
      Config c;
      c.eps = eps;
      const Run run = run_performer(q, k, v, c, true);
      const FavorTrace& f = run.extras<PerformerExtras>().data().favor;
      QCOMPARE(f.query_features.shape(), (Shape{2, 50, 64}));
      QCOMPARE(f.key_features.shape(), (Shape{2, 60, 64}));
      for (std::int64_t i = 0; i < f.query_features.size(); ++i) QVERIFY(f.query_features.data()[i] > 0.0f);
      for (std::int64_t i = 0; i < f.key_features.size(); ++i) QVERIFY(f.key_features.data()[i] > 0.0f);
    }
  }

  // Over many draws of W, the mean of φ(q)·φ(k) is exp(q·k/√d) within 4 standard errors.
  void kernel_estimate_is_unbiased_data() {
    QTest::addColumn<bool>("orthogonal");
    QTest::addColumn<int>("features");
    QTest::addColumn<int>("pair");
    QTest::newRow("orthogonal m=8, random pair") << true << 8 << 0;
    QTest::newRow("orthogonal m=20, aligned pair") << true << 20 << 1;
    QTest::newRow("orthogonal m=16, correlated pair") << true << 16 << 2;
    QTest::newRow("iid m=8, random pair") << false << 8 << 0;
    QTest::newRow("iid m=3, aligned pair") << false << 3 << 1;
  }

  void kernel_estimate_is_unbiased() {
    QFETCH(bool, orthogonal);
    QFETCH(int, features);
    QFETCH(int, pair);
    const std::int64_t d = 8;
    // pair 0: independent random vectors; 1: k = q with q·k = 2; 2: smaller q and k = 0.3(q + r). (k = −q would
    // be exact for every draw: φ(q)·φ(−q) = exp(−‖q'‖²).)
    Tensor q = random_tensor({1, d}, 100, 0.7f), k = random_tensor({1, d}, 200, 0.7f);
    if (pair == 1) {
      q.matrix() *= std::sqrt(2.0f) / q.matrix().norm();
      k.matrix() = q.matrix();
    } else if (pair == 2) {
      q.matrix() *= 0.6f;
      k.matrix() = 0.3f * (q.matrix() + k.matrix());
    }
    double dot = 0.0;
    for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(q.data()[c]) * k.data()[c];
    const double exact = std::exp(dot / std::sqrt(static_cast<double>(d)));
    const RandomFeatureOptions o{features, orthogonal, FeatureNorms::Gaussian};
    const int draws = 20000;
    double sum = 0.0, sum_sq = 0.0;
    for (int s = 0; s < draws; ++s) {
      const double x = kernel_estimate(draw_random_features(d, favor_seed(77, 0, s), o), q, k);
      sum += x;
      sum_sq += x * x;
    }
    const double mean = sum / draws;
    const double se = std::sqrt((sum_sq / draws - mean * mean) / draws);
    QVERIFY2(std::abs(mean - exact) < 4.0 * se,
             qPrintable(QString("mean %1, exp(q·k/√d) %2, standard error %3").arg(mean).arg(exact).arg(se)));
    QVERIFY(se < 0.02 * exact);  // the test has power: a 10% bias would be found
  }

  // Rows of W within a d-block are orthogonal; norms: Gaussian (varying, about √d) or exactly √d;
  // i.i.d. rows are not orthogonal.
  void feature_matrix_rows_orthogonal_in_blocks() {
    const std::int64_t d = 16, m = 40;  // two full blocks and a partial one
    for (FeatureNorms norms : {FeatureNorms::Gaussian, FeatureNorms::SqrtDim}) {
      const Tensor w = draw_random_features(d, 9, RandomFeatureOptions{m, true, norms});
      QCOMPARE(w.shape(), (Shape{m, d}));
      double norm_sum = 0.0;
      for (std::int64_t f = 0; f < m; ++f) {
        const double nf = w.matrix().row(f).norm();
        norm_sum += nf;
        if (norms == FeatureNorms::SqrtDim) QVERIFY(std::abs(nf - 4.0) < 1e-5);
        for (std::int64_t g = f + 1; g < m; ++g) {
          if (f / d != g / d) continue;
          const double cosine = w.matrix().row(f).dot(w.matrix().row(g)) / (nf * w.matrix().row(g).norm());
          QVERIFY2(std::abs(cosine) < 1e-5, qPrintable(QString("rows %1, %2: cosine %3").arg(f).arg(g).arg(cosine)));
        }
      }
      if (norms == FeatureNorms::Gaussian) QVERIFY(std::abs(norm_sum / m - 4.0) < 1.0);
    }
    const Tensor iid = draw_random_features(d, 9, RandomFeatureOptions{m, false, FeatureNorms::Gaussian});
    double largest = 0.0;
    for (std::int64_t f = 0; f < d; ++f)
      for (std::int64_t g = f + 1; g < d; ++g)
        largest = std::max(largest, std::abs(static_cast<double>(iid.matrix().row(f).dot(iid.matrix().row(g)))) /
                                        (iid.matrix().row(f).norm() * iid.matrix().row(g).norm()));
    QVERIFY(largest > 0.1);
    // The traced matrices are these draws, one per head.
    const Tensor q = random_tensor({2, 5, d}, 1), v = random_tensor({2, 5, 3}, 2);
    Config c;
    c.features = m;
    const Run run = run_performer(q, q, v, c, true);
    for (std::int64_t h = 0; h < 2; ++h) {
      const Tensor expected = draw_random_features(d, favor_seed(c.seed, h, 0), RandomFeatureOptions{m, true, FeatureNorms::Gaussian});
      QVERIFY(std::memcmp(run.extras<PerformerExtras>().data().favor.feature_matrix.data() + h * m * d, expected.data(), sizeof(float) * m * d) == 0);
    }
    QCOMPARE(run.extras<PerformerExtras>().n_features(), m);
    QVERIFY(run.extras<PerformerExtras>().orthogonal());
  }

  // Prefix sums (causal), global sums (non-causal) and the traced weights against the quadratic
  // form built here from the traced W; keys are spread wide so the stabilisers matter.
  void matches_quadratic_reference_data() {
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::addColumn<double>("eps");
    QTest::addColumn<int>("features");
    QTest::newRow("non-causal") << false << false << 1e-4 << 64;
    QTest::newRow("causal") << true << false << 1e-4 << 64;
    QTest::newRow("causal eps 0") << true << false << 0.0 << 32;
    QTest::newRow("non-causal eps 0 padded") << false << true << 0.0 << 48;
    QTest::newRow("causal padded m=7") << true << true << 1e-4 << 7;
  }

  void matches_quadratic_reference() {
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    QFETCH(double, eps);
    QFETCH(int, features);
    const std::int64_t L = 150;
    Tensor q = random_tensor({2, L, 16}, 11), k = random_tensor({2, L, 16}, 12);
    for (std::int64_t j = 0; j < L; ++j) k.matrix(1).row(j) *= 0.2f + 0.03f * static_cast<float>(j);  // norms 0.2..4.7
    const Tensor v = random_tensor({2, L, 5}, 13);
    const auto padding = padding_every(L, 5, 3);
    const auto* pad = padded ? &padding : nullptr;
    Config c;
    c.causal = causal;
    c.eps = eps;
    c.features = features;
    const Run fast = run_performer(q, k, v, c, false, pad);
    const Run traced = run_performer(q, k, v, c, true, pad);
    const Reference ref = favor_reference(traced.extras<PerformerExtras>().data().favor.feature_matrix, q, k, v, eps, causal, pad);
    QVERIFY2(max_relative_error(fast.out, ref.out) < 1e-5, qPrintable(QString("fast %1").arg(max_relative_error(fast.out, ref.out))));
    QVERIFY2(max_relative_error(traced.out, ref.out) < 1e-5, "traced");
    QVERIFY2(max_relative_error(traced.trace.weights, ref.weights) < 1e-5, "weights");
    // Rows sum to 1 (no denominator ε), hidden keys exactly 0.
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t i = 0; i < L; ++i) {
        double sum = 0.0;
        for (std::int64_t j = 0; j < L; ++j) {
          if (!key_visible(i, j, causal, pad)) QCOMPARE(traced.trace.weights.at(h, i, j), 0.0f);
          sum += traced.trace.weights.at(h, i, j);
        }
        QVERIFY(std::abs(sum - 1.0) < 1e-5);
      }
  }

  // The trace's kernel record gives back the unnormalised kernel: κ = e^{ν_i + M} φ(q_i)·φ(k_j).
  void trace_features_give_the_kernel() {
    const Tensor q = random_tensor({1, 20, 8}, 21), k = random_tensor({1, 30, 8}, 22), v = random_tensor({1, 30, 3}, 23);
    Config c;
    c.eps = 0.0;
    c.features = 16;
    const Run run = run_performer(q, k, v, c, true);
    const FavorTrace& f = run.extras<PerformerExtras>().data().favor;
    for (std::int64_t i = 0; i < 20; ++i)
      for (std::int64_t j = 0; j < 30; ++j) {
        const auto aq = favor_logits(f.feature_matrix, 0, q, i), ak = favor_logits(f.feature_matrix, 0, k, j);
        double exact = 0.0;
        for (std::size_t u = 0; u < aq.size(); ++u) exact += std::exp(aq[u] + ak[u]) / 16.0;
        double dot = 0.0;
        for (std::int64_t u = 0; u < 16; ++u) dot += static_cast<double>(f.query_features.at(0, i, u)) * f.key_features.at(0, j, u);
        const double kappa = std::exp(static_cast<double>(f.query_log_scale.at(0, i)) + f.key_reference.data()[0]) * dot;
        QVERIFY2(std::abs(kappa - exact) < 1e-4 * exact, qPrintable(QString("%1 vs %2").arg(kappa).arg(exact)));
      }
    const nlohmann::json j = run.extras<PerformerExtras>().to_json();
    QCOMPARE(j["kind"].get<std::string>(), std::string("performer"));
    QCOMPARE(j["favor"]["features"].get<int>(), 16);
    QCOMPARE(j["favor"]["feature_matrix"][0].size(), std::size_t(16));
  }

  // Mean relative output error against exact softmax over seeds falls about as m^(−1/2).
  void error_falls_as_inverse_sqrt_features() {
    // Moderate inputs (‖q'‖² ≈ 1): the variance of positive features grows like exp(‖q' + k'‖²),
    // and for large inputs the error saturates near 1 before m reaches its 1/√m regime.
    const Tensor q = random_tensor({1, 64, 16}, 31, 0.5f), k = random_tensor({1, 64, 16}, 32, 0.5f), v = random_tensor({1, 64, 8}, 33);
    for (const auto& [causal, orthogonal] : {std::pair{false, true}, std::pair{true, true}, std::pair{false, false}}) {
      const Run exact = run_softmax(q, k, v, causal);
      std::vector<double> ms, errors;
      for (int m : {16, 32, 64, 128, 256, 512, 1024}) {
        double total = 0.0;
        const int seeds = 16;
        for (int s = 0; s < seeds; ++s) {
          Config c;
          c.features = m;
          c.causal = causal;
          c.orthogonal = orthogonal;
          c.seed = 1000 + static_cast<std::uint64_t>(s);
          const Run run = run_performer(q, k, v, c, true);
          total += compare_attention(exact.trace.weights, exact.out, run.trace.weights, run.out, 8).rel_output_error;
        }
        ms.push_back(m);
        errors.push_back(total / seeds);
      }
      const double slope = log_log_slope(ms, errors);
      qInfo("causal %d, orthogonal %d: mean error %.4f at m = 16, %.4f at m = 1024, log-log slope %.3f", causal, orthogonal,
            errors.front(), errors.back(), slope);
      QVERIFY2(slope > -0.75 && slope < -0.3,
               qPrintable(QString("slope %1 (errors %2 .. %3)").arg(slope).arg(errors.front()).arg(errors.back())));
      QVERIFY(errors.back() < errors.front());
    }
  }

  // Averaged over seeds, orthogonal features estimate the kernel with a lower mean squared
  // error than i.i.d. ones (the kernel on small inputs, ‖q'‖² ≈ 0.4, where the estimator's tails
  // are light enough for a mean over 10000 estimates to settle; the gain there is about 25%),
  // and give a lower output error against softmax.
  void orthogonal_beats_iid() {
    const std::int64_t d = 16;
    double kernel_mse[2] = {0, 0};
    for (int o = 0; o < 2; ++o)
      for (int s = 0; s < 1000; ++s) {
        const RandomFeatureOptions options{d, o == 1, FeatureNorms::Gaussian};
        const Tensor w = draw_random_features(d, favor_seed(500 + static_cast<std::uint64_t>(s), 0, 0), options);
        const Tensor qs = random_tensor({10, d}, 20000 + static_cast<std::uint64_t>(s), 0.3f);
        const Tensor ks = random_tensor({10, d}, 30000 + static_cast<std::uint64_t>(s), 0.3f);
        for (std::int64_t i = 0; i < 10; ++i) {
          const Tensor qi = Tensor::from_data({1, d}, qs.data() + i * d, static_cast<std::size_t>(d));
          const Tensor ki = Tensor::from_data({1, d}, ks.data() + i * d, static_cast<std::size_t>(d));
          double dot = 0.0;
          for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(qi.data()[c]) * ki.data()[c];
          const double diff = kernel_estimate(w, qi, ki) - std::exp(dot / 4.0);
          kernel_mse[o] += diff * diff / 10000.0;
        }
      }
    QVERIFY2(kernel_mse[1] < 0.9 * kernel_mse[0],
             qPrintable(QString("kernel MSE orthogonal %1, iid %2").arg(kernel_mse[1]).arg(kernel_mse[0])));

    const Tensor q = random_tensor({1, 40, d}, 41, 0.5f), k = random_tensor({1, 40, d}, 42, 0.5f), v = random_tensor({1, 40, 8}, 43);
    const Run exact = run_softmax(q, k, v, false);
    double output_error[2] = {0, 0};
    const int seeds = 100;
    for (int o = 0; o < 2; ++o)
      for (int s = 0; s < seeds; ++s) {
        Config c;
        c.features = d;
        c.orthogonal = o == 1;
        c.seed = 900 + static_cast<std::uint64_t>(s);
        const Run run = run_performer(q, k, v, c, true);
        output_error[o] += compare_attention(exact.trace.weights, exact.out, run.trace.weights, run.out, 8).rel_output_error;
      }
    qInfo("kernel MSE orthogonal %.4g, iid %.4g; output error orthogonal %.4f, iid %.4f", kernel_mse[1], kernel_mse[0],
          output_error[1] / seeds, output_error[0] / seeds);
    QVERIFY2(output_error[1] < output_error[0],
             qPrintable(QString("output error orthogonal %1, iid %2").arg(output_error[1] / seeds).arg(output_error[0] / seeds)));
  }

  // Changing token j leaves outputs (fast and traced) and weight rows before j bit-identical,
  // even when the new key has the largest log scale of all.
  void causal_never_looks_ahead() {
    const std::int64_t L = 160;
    const Tensor q = random_tensor({2, L, 16}, 51), k = random_tensor({2, L, 16}, 52), v = random_tensor({2, L, 4}, 53);
    for (std::int64_t j : {0, 64, 100, 159}) {
      Tensor q2 = q, k2 = k, v2 = v;
      for (std::int64_t h = 0; h < 2; ++h) {
        q2.matrix(h).row(j) *= -2.0f;
        k2.matrix(h).row(j) *= 3.0f;
        v2.matrix(h).row(j).array() += 5.0f;
      }
      Config c;
      c.causal = true;
      for (bool traced : {false, true}) {
        const Run a = run_performer(q, k, v, c, traced), b = run_performer(q2, k2, v2, c, traced);
        for (std::int64_t h = 0; h < 2; ++h) {
          QVERIFY2(head_rows_identical(a.out, b.out, h, j), qPrintable(QString("token %1 traced %2").arg(j).arg(traced)));
          if (traced) QVERIFY(head_rows_identical(a.trace.weights, b.trace.weights, h, j));
        }
      }
    }
  }

  // Padded keys: exactly 0 weight, and their content changes nothing.
  void padded_keys_have_no_influence() {
    const Tensor q = random_tensor({1, 70, 8}, 61), k = random_tensor({1, 70, 8}, 62), v = random_tensor({1, 70, 4}, 63);
    const auto padding = padding_every(70, 5, 3);
    Tensor k2 = k, v2 = v;
    for (std::int64_t j = 3; j < 70; j += 5) {
      k2.matrix(0).row(j) *= 10.0f;
      v2.matrix(0).row(j).array() = -50.0f;
    }
    for (bool causal : {false, true}) {
      Config c;
      c.causal = causal;
      const Run a = run_performer(q, k, v, c, true, &padding), b = run_performer(q, k2, v2, c, true, &padding);
      const Run fa = run_performer(q, k, v, c, false, &padding), fb = run_performer(q, k2, v2, c, false, &padding);
      for (std::int64_t i = 0; i < a.out.size(); ++i) {
        QCOMPARE(a.out.data()[i], b.out.data()[i]);
        QCOMPARE(fa.out.data()[i], fb.out.data()[i]);
      }
      for (std::int64_t i = 0; i < 70; ++i)
        for (std::int64_t j = 3; j < 70; j += 5) QCOMPARE(a.trace.weights.at(0, i, j), 0.0f);
    }
  }

  // Snapshots times e^{P_t} are the true running sums Σ_{j<=t} e^{μ(k_j)} φ(k_j) v_jᵀ, summed here.
  void recurrent_states_are_running_sums() {
    const std::int64_t L = 40, d = 8, m = 16, dv = 3;
    Tensor q = random_tensor({1, L, d}, 71), k = random_tensor({1, L, d}, 72);
    for (std::int64_t j = 0; j < L; ++j) k.matrix(0).row(j) *= 0.3f + 0.1f * static_cast<float>(j);
    const Tensor v = random_tensor({1, L, dv}, 73);
    Config c;
    c.causal = true;
    c.features = m;
    c.eps = 0.0;
    const Run run = run_performer(q, k, v, c, true);
    const PerformerExtras& e = run.extras<PerformerExtras>();
    const RecurrentStates& s = e.recurrent();
    QCOMPARE(s.steps, RecurrentStates::snapshot_steps(L));
    QCOMPARE(s.states.shape(), (Shape{1, L, m, dv}));
    QCOMPARE(e.data().state_log_scale.shape(), (Shape{1, L}));
    std::vector<double> S(static_cast<std::size_t>(m * dv), 0.0), z(static_cast<std::size_t>(m), 0.0);
    for (std::int64_t t = 0; t < L; ++t) {
      const auto a = favor_logits(e.data().favor.feature_matrix, 0, k, t);
      for (std::int64_t f = 0; f < m; ++f) {
        const double phi = std::exp(a[static_cast<std::size_t>(f)]) / 4.0;  // m^{−1/2} e^{a_f}, unstabilised
        z[static_cast<std::size_t>(f)] += phi;
        for (std::int64_t cc = 0; cc < dv; ++cc) S[static_cast<std::size_t>(f * dv + cc)] += phi * v.at(0, t, cc);
      }
      const double scale = std::exp(static_cast<double>(e.data().state_log_scale.at(0, t)));
      for (std::int64_t f = 0; f < m; ++f) {
        const double zf = z[static_cast<std::size_t>(f)];
        QVERIFY(std::abs(s.normalizers.data()[t * m + f] * scale - zf) < 1e-4 * std::max(1.0, zf));
        for (std::int64_t cc = 0; cc < dv; ++cc) {
          const double sf = S[static_cast<std::size_t>(f * dv + cc)];
          QVERIFY(std::abs(s.states.data()[(t * m + f) * dv + cc] * scale - sf) < 1e-4 * std::max(1.0, std::abs(zf)));
        }
      }
    }
  }

  // Same seed: same output; another `redraw` or seed: other features; orthogonal flag respected.
  void seeds_and_redraw_decide_the_features() {
    const Tensor q = random_tensor({1, 30, 8}, 81), k = random_tensor({1, 30, 8}, 82), v = random_tensor({1, 30, 4}, 83);
    Config c;
    const Run a = run_performer(q, k, v, c, true), b = run_performer(q, k, v, c, true);
    QVERIFY(std::memcmp(a.out.data(), b.out.data(), sizeof(float) * a.out.size()) == 0);
    Config r = c;
    r.redraw = 1;
    const Run redrawn = run_performer(q, k, v, r, true);
    Config s = c;
    s.seed = 6;
    const Run reseeded = run_performer(q, k, v, s, true);
    const auto& wa = a.extras<PerformerExtras>().data().favor.feature_matrix;
    QVERIFY(std::memcmp(wa.data(), redrawn.extras<PerformerExtras>().data().favor.feature_matrix.data(), sizeof(float) * wa.size()) != 0);
    QVERIFY(std::memcmp(wa.data(), reseeded.extras<PerformerExtras>().data().favor.feature_matrix.data(), sizeof(float) * wa.size()) != 0);
    QVERIFY(std::abs(a.out.data()[0] - redrawn.out.data()[0]) > 0.0f);
  }

  // L = 64k causal fast path: memory linear in L (features + chunk states), far below L·m·dv.
  void long_sequence_fast_path() {
    const std::int64_t L = 65536, d = 32;
    const Tensor q = random_tensor({1, L, d}, 91, 0.5f), k = random_tensor({1, L, d}, 92, 0.5f), v = random_tensor({1, L, d}, 93);
    Config c;
    c.causal = true;
    memory::reset_peak();
    const std::int64_t before = memory::current_bytes();
    const Run run = run_performer(q, k, v, c, false);
    const std::int64_t peak = memory::peak_bytes() - before;
    QVERIFY2(peak < L * 64 * d * 4 / 4, qPrintable(QString("peak %1 bytes").arg(peak)));
    for (std::int64_t i = 0; i < run.out.size(); ++i) QVERIFY(std::isfinite(run.out.data()[i]));
  }

  void parameter_errors_name_the_range() {
    Params p(Registry::builtin().get("performer").spec().params);
    EXPECT_ERROR(ParamError, p.set("n_features", std::int64_t{0}), "n_features");
    EXPECT_ERROR(ParamError, p.set("n_features", std::int64_t{5000}), "4096");
    EXPECT_ERROR(ParamError, p.set("feature_norms", std::string("unit")), "feature_norms");
    EXPECT_ERROR(ParamError, p.set("redraw", std::int64_t{-1}), "redraw");
    EXPECT_ERROR(ParamError, draw_random_features(8, 1, RandomFeatureOptions{0, true, FeatureNorms::Gaussian}), "m = 0");
  }
};

QTEST_GUILESS_MAIN(TestPerformer)
#include "test_performer.moc"
