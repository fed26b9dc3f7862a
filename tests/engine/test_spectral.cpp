// Learned spectral kernels against references written here: the features recomputed from the
// traced ω by their definitions and the quadratic masked form in double precision (both kinds,
// causal, padded); RKS kernel estimates converging to exp(-‖Δ‖²/2) with error ∝ M^(-1/2) (log-log
// slope); PRF features unbiased for the Gaussian kernel and for the mixture's closed form
// (Monte Carlo within 4 standard errors); a seed fixing ω; unit row sums, non-negative PRF weights,
// RKS clamping exactly where the rule says; causal outputs bit-identical before a changed token;
// W·V == out; equal-norm keys making the Gaussian kernel exact softmax, approached as M^(-1/2);
// the kernel curves and the ω projection recomputed here; parameter errors.
#include <QtTest>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "analysis/approximation.h"
#include "attention/registry.h"
#include "attention/spectral.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;
using attnlab::test::head_rows_identical;
using attnlab::test::key_visible;
using attnlab::test::log_log_slope;
using attnlab::test::max_abs_diff;

namespace {

struct Config {
  std::string kind = "prf";
  std::int64_t features = 32;
  std::int64_t components = 2;
  double mean_scale = 0.5;
  double spread = 1.0;
  bool causal = false;
  std::uint64_t seed = 3;
};

using Run = test::VariantRun;

Run run_spectral(const Tensor& q, const Tensor& k, const Tensor& v, const Config& c, bool with_trace,
                 const std::vector<std::uint8_t>* padding = nullptr) {
  const nlohmann::json params = {{"kind", c.kind},
                                 {"n_features", c.features},
                                 {"components", c.components},
                                 {"mean_scale", c.mean_scale},
                                 {"spread", c.spread}};
  return test::run_variant("spectral", q, k, v, params, {c.causal, c.seed, with_trace, padding});
}

// x' = x·d^(-1/4) of row `row` of head h, in double.
std::vector<double> scaled(const Tensor& x, std::int64_t h, std::int64_t row) {
  const std::int64_t d = x.dim(2);
  const double s = std::pow(static_cast<double>(d), -0.25);
  std::vector<double> r(static_cast<std::size_t>(d));
  for (std::int64_t c = 0; c < d; ++c) r[static_cast<std::size_t>(c)] = x.at(h, row, c) * s;
  return r;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The features of the reference's formulas, from the traced ω, in double.
std::vector<double> features(const SpectralExtras::Data& e, std::int64_t h, const std::vector<double>& xs) {
  const std::int64_t M = e.samples, d = e.head_dim;
  std::vector<double> f(static_cast<std::size_t>(e.feature_dim));
  const double norm2 = dot(xs, xs);
  for (std::int64_t m = 0; m < M; ++m) {
    double u = 0.0;
    for (std::int64_t c = 0; c < d; ++c) u += static_cast<double>(e.omega.at(h, m, c)) * xs[static_cast<std::size_t>(c)];
    if (e.kind == "prf") {
      f[static_cast<std::size_t>(m)] = std::exp(u - norm2 - 0.5 * std::log(static_cast<double>(M)));
    } else {
      f[static_cast<std::size_t>(m)] = std::cos(u) / std::sqrt(static_cast<double>(M));
      f[static_cast<std::size_t>(M + m)] = std::sin(u) / std::sqrt(static_cast<double>(M));
    }
  }
  return f;
}

struct Reference {
  std::vector<double> weights;         // [H, Lq, Lk]
  std::vector<double> out;             // [H, Lq, dv]
  std::vector<std::uint8_t> clamped;   // [H, Lq]
};

// Quadratic masked form: K_ij = φ(q_i)·φ(k_j) on visible pairs, D_i = Σ_j K_ij (for "rks" clamped
// at 1e-3 per visible key), A = K / D.
Reference naive(const SpectralExtras::Data& e, const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                const std::vector<std::uint8_t>* padding) {
  const auto H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), dv = v.dim(2);
  Reference r{std::vector<double>(static_cast<std::size_t>(H * Lq * Lk), 0.0),
              std::vector<double>(static_cast<std::size_t>(H * Lq * dv), 0.0),
              std::vector<std::uint8_t>(static_cast<std::size_t>(H * Lq), 0)};
  for (std::int64_t h = 0; h < H; ++h) {
    std::vector<std::vector<double>> fk;
    for (std::int64_t j = 0; j < Lk; ++j) fk.push_back(features(e, h, scaled(k, h, j)));
    for (std::int64_t i = 0; i < Lq; ++i) {
      const auto fq = features(e, h, scaled(q, h, i));
      std::vector<double> row(static_cast<std::size_t>(Lk), 0.0);
      double sum = 0.0;
      int seen = 0;
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!key_visible(i, j, causal, padding)) continue;
        row[static_cast<std::size_t>(j)] = dot(fq, fk[static_cast<std::size_t>(j)]);
        sum += row[static_cast<std::size_t>(j)];
        ++seen;
      }
      if (seen == 0) continue;
      if (e.kind == "rks" && sum < 1e-3 * seen) {
        sum = 1e-3 * seen;
        r.clamped[static_cast<std::size_t>(h * Lq + i)] = 1;
      }
      for (std::int64_t j = 0; j < Lk; ++j) {
        const double w = row[static_cast<std::size_t>(j)] / sum;
        r.weights[static_cast<std::size_t>((h * Lq + i) * Lk + j)] = w;
        for (std::int64_t c = 0; c < dv; ++c) r.out[static_cast<std::size_t>((h * Lq + i) * dv + c)] += w * v.at(h, j, c);
      }
    }
  }
  return r;
}



}  // namespace

class TestSpectral : public QObject {
  Q_OBJECT

 private slots:
  void schema_and_defaults() {
    const Params p(Registry::builtin().get("spectral").spec().params);
    QCOMPARE(p.get_choice("kind"), std::string("prf"));
    QCOMPARE(p.get_int("n_features"), std::int64_t{64});
    QCOMPARE(p.get_int("components"), std::int64_t{2});
    QCOMPARE(p.get_float("mean_scale"), 0.5);
    QCOMPARE(p.get_float("spread"), 1.0);
  }

  void matches_quadratic_masked_form_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::newRow("prf") << "prf" << false << false << 60 << 60;
    QTest::newRow("prf causal padded, 2 blocks") << "prf" << true << true << 300 << 300;
    QTest::newRow("prf cross lengths padded") << "prf" << false << true << 40 << 290;
    QTest::newRow("rks") << "rks" << false << false << 60 << 60;
    QTest::newRow("rks causal padded") << "rks" << true << true << 270 << 270;
  }

  void matches_quadratic_masked_form() {
    QFETCH(QString, kind);
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    QFETCH(int, lq);
    QFETCH(int, lk);
    const Tensor q = random_tensor({2, lq, 16}, 1), k = random_tensor({2, lk, 16}, 2), v = random_tensor({2, lk, 8}, 3);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(lk), 0);
    for (int j = 1; j < lk; j += 6) padding[static_cast<std::size_t>(j)] = 1;
    const auto* pad = padded ? &padding : nullptr;
    Config c;
    c.kind = kind.toStdString();
    c.causal = causal;
    c.features = kind == "rks" ? 256 : 32;
    c.spread = kind == "rks" ? 0.5 : 1.0;  // a smoother kernel keeps RKS normalisers away from the clamp
    const Run fast = run_spectral(q, k, v, c, false, pad);
    const Run traced = run_spectral(q, k, v, c, true, pad);
    const Reference ref = naive(traced.data<SpectralExtras>(), q, k, v, causal, pad);
    const double fast_err = test::max_relative_error(fast.out.data(), ref.out.data(), fast.out.size());
    const double weight_err = test::max_relative_error(traced.trace.weights.data(), ref.weights.data(), traced.trace.weights.size());
    QVERIFY2(fast_err < 2e-5, qPrintable(QString("fast output error %1").arg(fast_err)));
    QVERIFY2(weight_err < 2e-5, qPrintable(QString("weights error %1").arg(weight_err)));
    // The traced output is the fast path's, bit for bit.
    QVERIFY(std::memcmp(fast.out.data(), traced.out.data(), static_cast<std::size_t>(fast.out.size()) * sizeof(float)) == 0);
    QVERIFY(ref.clamped == traced.data<SpectralExtras>().clamped);
    // The stored features are the definition's.
    const auto& e = traced.data<SpectralExtras>();
    double feature_err = 0.0;
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t i = 0; i < lq; i += 7) {
        const auto f = features(e, h, scaled(q, h, i));
        for (std::int64_t m = 0; m < e.feature_dim; ++m)
          feature_err = std::max(feature_err, std::abs(e.query_features.at(h, i, m) - f[static_cast<std::size_t>(m)]) /
                                                  std::max(1e-3, std::abs(f[static_cast<std::size_t>(m)])));
      }
    QVERIFY2(feature_err < 1e-4, qPrintable(QString("feature error %1").arg(feature_err)));
  }

  // μ = 0, S = I: φ(x)·φ(y) estimates exp(-‖x'-y'‖²/2) with factor exactly 1 (φ(x)·φ(x) = 1), and the
  // RMS error over pairs and seeds falls like M^(-1/2).
  void rks_estimate_converges_with_inverse_sqrt_m() {
    const Tensor q = random_tensor({1, 12, 8}, 11, 0.7f), k = random_tensor({1, 12, 8}, 12, 0.7f), v = random_tensor({1, 12, 2}, 13);
    std::vector<double> ms, errors;
    for (std::int64_t m : {16, 64, 256, 1024}) {
      double sq = 0.0;
      int n = 0;
      for (std::uint64_t seed = 1; seed <= 8; ++seed) {
        Config c;
        c.kind = "rks";
        c.features = m;
        c.mean_scale = 0.0;
        c.components = 1;
        c.seed = seed;
        const Run run = run_spectral(q, k, v, c, true);
        const auto& e = run.data<SpectralExtras>();
        for (std::int64_t i = 0; i < 12; ++i) {
          double self = 0.0;
          for (std::int64_t a = 0; a < e.feature_dim; ++a) self += static_cast<double>(e.query_features.at(0, i, a)) * e.query_features.at(0, i, a);
          QVERIFY(std::abs(self - 1.0) < 1e-5);
          for (std::int64_t j = 0; j < 12; ++j) {
            double est = 0.0;
            for (std::int64_t a = 0; a < e.feature_dim; ++a) est += static_cast<double>(e.query_features.at(0, i, a)) * e.key_features.at(0, j, a);
            const auto xq = scaled(q, 0, i), xk = scaled(k, 0, j);
            double dist2 = 0.0;
            for (std::size_t c2 = 0; c2 < xq.size(); ++c2) dist2 += (xq[c2] - xk[c2]) * (xq[c2] - xk[c2]);
            sq += (est - std::exp(-dist2 / 2.0)) * (est - std::exp(-dist2 / 2.0));
            ++n;
          }
        }
      }
      ms.push_back(static_cast<double>(m));
      errors.push_back(std::sqrt(sq / n));
    }
    const double slope = log_log_slope(ms, errors);
    QVERIFY2(slope > -0.65 && slope < -0.35, qPrintable(QString("slope %1").arg(slope)));
    QVERIFY(errors.back() < 0.05);
  }

  // PRF, μ = 0, spread = 1 (the reference's σ = 0): for ω ~ N(0, I), E exp(ωᵀu) = exp(‖u‖²/2), so
  //   E φ(x)·φ(y) = M · (1/M) E exp(ωᵀ(x'+y') - ‖x'‖² - ‖y'‖²) = exp(‖x'+y'‖²/2 - ‖x'‖² - ‖y'‖²)
  //              = exp(x'·y' - ‖x'‖²/2 - ‖y'‖²/2) = exp(-‖x'-y'‖²/2).
  // Many independent draws (64 heads × 40 seeds, one feature each) must average to it within 4
  // standard errors; with a mixture (mean_scale 0.8, spread 0.6, 3 components) the average of
  // φ(x)·φ(y) minus its closed form given the drawn means, Σ_c w_c exp(μ_cᵀu + s²‖u‖²/2 - ‖x'‖² - ‖y'‖²),
  // must be 0 within 4 standard errors.
  void prf_features_are_unbiased() {
    const std::int64_t heads = 64, d = 6;
    for (bool mixture : {false, true}) {
      Tensor q({heads, 1, d}), k({heads, 1, d});
      const Tensor base_q = random_tensor({1, 1, d}, 21, 0.45f), base_k = random_tensor({1, 1, d}, 22, 0.45f);
      for (std::int64_t h = 0; h < heads; ++h)
        for (std::int64_t c = 0; c < d; ++c) {
          q.at(h, 0, c) = base_q.at(0, 0, c);
          k.at(h, 0, c) = base_k.at(0, 0, c);
        }
      const Tensor v = random_tensor({heads, 1, 2}, 23);
      const auto xq = scaled(q, 0, 0), xk = scaled(k, 0, 0);
      std::vector<double> u(xq.size());
      for (std::size_t c = 0; c < u.size(); ++c) u[c] = xq[c] + xk[c];
      double sum = 0.0, sum_sq = 0.0;
      int n = 0;
      for (std::uint64_t seed = 0; seed < 40; ++seed) {
        Config c;
        c.features = mixture ? 3 : 1;
        c.components = mixture ? 3 : 1;
        c.mean_scale = mixture ? 0.8 : 0.0;
        c.spread = mixture ? 0.6 : 1.0;
        c.seed = seed * 104729 + 7;
        const Run run = run_spectral(q, k, v, c, true);
        const auto& e = run.data<SpectralExtras>();
        for (std::int64_t h = 0; h < heads; ++h) {
          double est = 0.0;
          for (std::int64_t a = 0; a < e.feature_dim; ++a) est += static_cast<double>(e.query_features.at(h, 0, a)) * e.key_features.at(h, 0, a);
          double expected = 0.0;
          if (!mixture) {
            expected = std::exp(-(dot(xq, xq) + dot(xk, xk) - 2 * dot(xq, xk)) / 2.0);
          } else {
            for (std::int64_t comp = 0; comp < 3; ++comp) {
              double mu_u = 0.0;
              for (std::int64_t cc = 0; cc < d; ++cc) mu_u += e.means.at(h, comp, cc) * u[static_cast<std::size_t>(cc)];
              expected += e.component_weight[static_cast<std::size_t>(comp)] *
                          std::exp(mu_u + 0.36 * dot(u, u) / 2.0 - dot(xq, xq) - dot(xk, xk));
            }
          }
          const double x = mixture ? est - expected : est;
          sum += x;
          sum_sq += x * x;
          ++n;
          if (!mixture && h == 0 && seed == 0) QVERIFY(expected > 0.1);
        }
      }
      const double mean = sum / n;
      const double se = std::sqrt(std::max(0.0, sum_sq / n - mean * mean) / n);
      const double target = mixture ? 0.0 : std::exp(-(dot(xq, xq) + dot(xk, xk) - 2 * dot(xq, xk)) / 2.0);
      QVERIFY2(std::abs(mean - target) < 4.0 * se, qPrintable(QString("mixture=%1 mean %2 target %3 se %4").arg(mixture).arg(mean).arg(target).arg(se)));
      QVERIFY(se > 0.0);
    }
  }

  // Equal-norm keys: exp(-‖q'-k'‖²/2) ∝_j exp(q'·k') = exp(q·k/√d), so the Gaussian-kernel PRF is an
  // estimator of exact softmax attention; the output error against softmax falls like M^(-1/2).
  void equal_norm_keys_approach_softmax() {
    const std::int64_t L = 48, d = 16;
    Tensor q = random_tensor({1, L, d}, 31, 0.5f), k = random_tensor({1, L, d}, 32);
    for (std::int64_t j = 0; j < L; ++j) k.matrix(0).row(j) *= 2.0f / k.matrix(0).row(j).norm();
    const Tensor v = random_tensor({1, L, 8}, 33);
    AttentionInput exact_in{q, k, v, false, nullptr, nullptr, 0};
    Trace exact;
    const Tensor exact_out = run_attention(Registry::builtin().get("softmax"), exact_in, &exact);
    std::vector<double> ms, errors;
    for (std::int64_t m : {16, 64, 256, 1024}) {
      double total = 0.0;
      for (std::uint64_t seed = 1; seed <= 8; ++seed) {
        Config c;
        c.features = m;
        c.mean_scale = 0.0;
        c.components = 1;
        c.seed = seed;
        const Run run = run_spectral(q, k, v, c, true);
        total += compare_attention(exact.weights, exact_out, run.trace.weights, run.out, 4).rel_output_error;
      }
      ms.push_back(static_cast<double>(m));
      errors.push_back(total / 8.0);
    }
    const double slope = log_log_slope(ms, errors);
    QVERIFY2(slope > -0.7 && slope < -0.3, qPrintable(QString("slope %1, errors %2 .. %3").arg(slope).arg(errors.front()).arg(errors.back())));
    QVERIFY(errors.back() < 0.1);
  }

  // A fixed seed fixes ω: the same output and ω bit for bit; another seed draws other ω.
  void seed_fixes_the_frequencies() {
    const Tensor q = random_tensor({2, 30, 8}, 41), k = random_tensor({2, 30, 8}, 42), v = random_tensor({2, 30, 4}, 43);
    for (const char* kind : {"prf", "rks"}) {
      for (bool causal : {false, true}) {
        Config c;
        c.kind = kind;
        c.causal = causal;
        const Run a = run_spectral(q, k, v, c, true), b = run_spectral(q, k, v, c, true);
        const Run fast = run_spectral(q, k, v, c, false);
        QVERIFY(std::memcmp(a.out.data(), b.out.data(), static_cast<std::size_t>(a.out.size()) * sizeof(float)) == 0);
        QVERIFY(std::memcmp(a.out.data(), fast.out.data(), static_cast<std::size_t>(a.out.size()) * sizeof(float)) == 0);
        QVERIFY(std::memcmp(a.data<SpectralExtras>().omega.data(), b.data<SpectralExtras>().omega.data(), static_cast<std::size_t>(a.data<SpectralExtras>().omega.size()) * sizeof(float)) == 0);
        c.seed = 4;
        const Run other = run_spectral(q, k, v, c, true);
        QVERIFY(max_abs_diff(a.data<SpectralExtras>().omega, other.data<SpectralExtras>().omega) > 0.1);
        QVERIFY(max_abs_diff(a.out, other.out) > 1e-4);
      }
    }
  }

  // Mixture structure: ‖μ_c‖ = mean_scale, feature m from component m mod C, weights n_c/M summing
  // to 1, and spread 0 puts every ω on its component mean.
  void mixture_structure() {
    const Tensor q = random_tensor({2, 5, 8}, 51), k = random_tensor({2, 5, 8}, 52), v = random_tensor({2, 5, 4}, 53);
    Config c;
    c.features = 10;
    c.components = 3;
    c.mean_scale = 1.7;
    c.spread = 0.0;
    const Run run = run_spectral(q, k, v, c, true);
    const auto& e = run.data<SpectralExtras>();
    QCOMPARE(e.component, (std::vector<int>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0}));
    QCOMPARE(e.component_weight.size(), std::size_t{3});
    QVERIFY(std::abs(e.component_weight[0] - 0.4) < 1e-12 && std::abs(e.component_weight[1] - 0.3) < 1e-12);
    for (std::int64_t h = 0; h < 2; ++h) {
      for (std::int64_t comp = 0; comp < 3; ++comp) QVERIFY(std::abs(e.means.matrix(h).row(comp).norm() - 1.7f) < 1e-5f);
      for (std::int64_t m = 0; m < 10; ++m) QVERIFY((e.omega.matrix(h).row(m) - e.means.matrix(h).row(m % 3)).norm() == 0.0f);
    }
    QVERIFY((e.means.matrix(0).row(0) - e.means.matrix(1).row(0)).norm() > 0.1f);  // per head
  }

  // PRF: weights >= 0, visible rows sum to 1, hidden keys exactly 0 (causal and padded). RKS:
  // unclamped rows sum to 1; a clamped row sums to (its raw sum) / floor.
  void rows_sum_to_one() {
    const Tensor q = random_tensor({2, 50, 8}, 61), k = random_tensor({2, 50, 8}, 62), v = random_tensor({2, 50, 4}, 63);
    std::vector<std::uint8_t> padding(50, 0);
    padding[0] = padding[20] = 1;
    for (const char* kind : {"prf", "rks"})
      for (bool causal : {false, true}) {
        Config c;
        c.kind = kind;
        c.causal = causal;
        c.features = 4;  // few features: some RKS rows clamp
        c.spread = 1.5;
        const Run run = run_spectral(q, k, v, c, true, &padding);
        int clamped = 0;
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t i = 0; i < 50; ++i) {
            double sum = 0.0;
            bool any = false;
            for (std::int64_t j = 0; j < 50; ++j) {
              const float w = run.trace.weights.at(h, i, j);
              if (!key_visible(i, j, causal, &padding)) QCOMPARE(w, 0.0f);
              else any = true;
              if (std::string(kind) == "prf") QVERIFY(w >= 0.0f);
              sum += w;
            }
            const bool was_clamped = run.data<SpectralExtras>().clamped[static_cast<std::size_t>(h * 50 + i)] != 0;
            clamped += was_clamped ? 1 : 0;
            if (!any) QCOMPARE(sum, 0.0);
            else if (!was_clamped) QVERIFY2(std::abs(sum - 1.0) < 1e-4, qPrintable(QString("%1 row sum %2").arg(kind).arg(sum)));
            else QVERIFY(sum < 1.0);
          }
        if (std::string(kind) == "prf") QCOMPARE(clamped, 0);
        else QVERIFY(clamped > 0);
        // The fast path clamps the same rows the same way: W·V == out, to float rounding of the
        // row's absolute mass (RKS rows just above the clamp carry weights in the hundreds).
        const double vmax = v.matrix(0).cwiseAbs().maxCoeff() + v.matrix(1).cwiseAbs().maxCoeff();
        for (std::int64_t h = 0; h < 2; ++h) {
          const RowMatrix wv = run.trace.weights.matrix(h) * v.matrix(h);
          for (std::int64_t i = 0; i < 50; ++i) {
            const double mass = run.trace.weights.matrix(h).row(i).cwiseAbs().sum();
            const double diff = (wv.row(i) - run.out.matrix(h).row(i)).cwiseAbs().maxCoeff();
            QVERIFY2(diff < 1e-5 * (1.0 + mass * vmax), qPrintable(QString("%1 causal=%2 row %3: %4").arg(kind).arg(causal).arg(i).arg(diff)));
          }
        }
      }
  }

  // Changing token j leaves the outputs before j bit-identical (prf: also a key so large that it
  // raises the running maximum of every feature).
  void causal_never_looks_ahead() {
    const Tensor q = random_tensor({2, 300, 8}, 71), k = random_tensor({2, 300, 8}, 72), v = random_tensor({2, 300, 4}, 73);
    for (const char* kind : {"prf", "rks"})
      for (std::int64_t j : {0, 1, 100, 256, 299}) {
        Tensor q2 = q, k2 = k, v2 = v;
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t c = 0; c < 8; ++c) {
            q2.at(h, j, c) += 0.7f;
            k2.at(h, j, c) = 6.0f * (c % 2 ? 1.0f : -1.0f);
            if (c < 4) v2.at(h, j, c) += 2.0f;
          }
        Config c;
        c.kind = kind;
        c.causal = true;
        const Run a = run_spectral(q, k, v, c, true), b = run_spectral(q2, k2, v2, c, true);
        for (std::int64_t h = 0; h < 2; ++h) QVERIFY2(head_rows_identical(a.out, b.out, h, j), qPrintable(QString("%1 j=%2").arg(kind).arg(j)));
        QVERIFY(max_abs_diff(a.out, b.out) > 1e-4);
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t i = 0; i < j; ++i)
            for (std::int64_t jj = i + 1; jj < 300; ++jj) QCOMPARE(a.trace.weights.at(h, i, jj), 0.0f);
      }
  }

  // The implied matrix reproduces the output: W·V == out.
  void weights_reproduce_output() {
    const Tensor q = random_tensor({3, 90, 16}, 81), k = random_tensor({3, 90, 16}, 82), v = random_tensor({3, 90, 8}, 83);
    for (const char* kind : {"prf", "rks"})
      for (bool causal : {false, true}) {
        Config c;
        c.kind = kind;
        c.causal = causal;
        c.features = 128;
        c.spread = 0.5;
        const Run run = run_spectral(q, k, v, c, true);
        double worst = 0.0;
        for (std::int64_t h = 0; h < 3; ++h) {
          const RowMatrix wv = run.trace.weights.matrix(h) * v.matrix(h);
          worst = std::max(worst, static_cast<double>((wv - run.out.matrix(h)).cwiseAbs().maxCoeff()));
        }
        QVERIFY2(worst < 2e-5, qPrintable(QString("%1 causal=%2: %3").arg(kind).arg(causal).arg(worst)));
      }
  }

  // The kernel curves recomputed from ω, μ, the directions and the distances; at Δ = 0 the kernel
  // is 1; with many samples at μ = 0, spread = 1 the estimate follows exp(-Δ²/2).
  void kernel_curves_recomputed() {
    const Tensor q = random_tensor({2, 20, 8}, 91), k = random_tensor({2, 20, 8}, 92), v = random_tensor({2, 20, 4}, 93);
    for (const char* kind : {"prf", "rks"}) {
      Config c;
      c.kind = kind;
      c.components = 3;
      c.mean_scale = 0.9;
      c.spread = 0.8;
      const Run run = run_spectral(q, k, v, c, true);
      const auto& e = run.data<SpectralExtras>();
      const auto& x = run.extras<SpectralExtras>();
      QCOMPARE(static_cast<int>(e.curve_delta.size()), SpectralExtras::kCurvePoints);
      QCOMPARE(e.curve_delta.front(), 0.0);
      double worst = 0.0;
      for (std::int64_t h = 0; h < 2; ++h) {
        QVERIFY(std::abs(x.kernel_closed(h, 0) - 1.0) < 1e-9);
        for (int p = 0; p < SpectralExtras::kCurvePoints; p += 9) {
          const double r = e.curve_delta[static_cast<std::size_t>(p)];
          double closed = 0.0, estimate = 0.0;
          for (int u = 0; u < SpectralExtras::kCurveDirections; ++u) {
            for (std::int64_t comp = 0; comp < 3; ++comp) {
              double mu_u = 0.0;
              for (std::int64_t cc = 0; cc < 8; ++cc) mu_u += static_cast<double>(e.means.at(h, comp, cc)) * e.curve_directions.at(u, cc);
              const double wc = e.component_weight[static_cast<std::size_t>(comp)];
              closed += std::string(kind) == "prf" ? wc * std::exp(r * mu_u + (0.64 / 2 - 1) * r * r)
                                                   : wc * std::cos(r * mu_u) * std::exp(-0.64 * r * r / 2);
            }
            for (std::int64_t m = 0; m < e.samples; ++m) {
              double w_u = 0.0;
              for (std::int64_t cc = 0; cc < 8; ++cc) w_u += static_cast<double>(e.omega.at(h, m, cc)) * e.curve_directions.at(u, cc);
              estimate += std::string(kind) == "prf" ? std::exp(r * w_u - r * r) : std::cos(r * w_u);
            }
          }
          closed /= SpectralExtras::kCurveDirections;
          estimate /= SpectralExtras::kCurveDirections * static_cast<double>(e.samples);
          worst = std::max({worst, std::abs(closed - x.kernel_closed(h, p)), std::abs(estimate - x.kernel_estimate(h, p))});
        }
      }
      QVERIFY2(worst < 1e-5, qPrintable(QString("%1 curve error %2").arg(kind).arg(worst)));
    }
    Config c;
    c.kind = "rks";
    c.features = 1024;
    c.mean_scale = 0.0;
    const Run big = run_spectral(q, k, v, c, true);
    for (int p = 0; p < SpectralExtras::kCurvePoints; ++p) {
      const double r = big.data<SpectralExtras>().curve_delta[static_cast<std::size_t>(p)];
      QVERIFY(std::abs(big.extras<SpectralExtras>().kernel_closed(0, p) - std::exp(-r * r / 2)) < 1e-9);
      QVERIFY(std::abs(big.extras<SpectralExtras>().kernel_estimate(0, p) - std::exp(-r * r / 2)) < 0.08);
    }
  }

  // Projection axes are orthonormal, the first has at least the variance of the second, and the
  // 2-D points are the centred ω on them.
  void omega_projection() {
    const Tensor q = random_tensor({1, 5, 8}, 95), k = random_tensor({1, 5, 8}, 96), v = random_tensor({1, 5, 4}, 97);
    Config c;
    c.features = 200;
    c.components = 2;
    c.mean_scale = 3.0;
    const Run run = run_spectral(q, k, v, c, true);
    const auto& e = run.data<SpectralExtras>();
    const RowMatrix axes = e.projection_axes.matrix(0);
    QVERIFY(std::abs(axes.row(0).norm() - 1.0f) < 1e-5f && std::abs(axes.row(1).norm() - 1.0f) < 1e-5f);
    QVERIFY(std::abs(axes.row(0).dot(axes.row(1))) < 1e-5f);
    const RowMatrix omega = e.omega.matrix(0);
    const RowVector mean = omega.colwise().mean();
    double var0 = 0.0, var1 = 0.0, worst = 0.0;
    for (std::int64_t m = 0; m < 200; ++m) {
      const RowVector centred = omega.row(m) - mean;
      for (int a = 0; a < 2; ++a) worst = std::max(worst, static_cast<double>(std::abs(centred.dot(axes.row(a)) - e.omega_2d.at(0, m, a))));
      var0 += e.omega_2d.at(0, m, 0) * e.omega_2d.at(0, m, 0);
      var1 += e.omega_2d.at(0, m, 1) * e.omega_2d.at(0, m, 1);
    }
    QVERIFY(worst < 1e-4);
    QVERIFY(var0 >= var1);
    // Two well separated components: the first axis runs along μ_0 - μ_1.
    const RowVector gap = (e.means.matrix(0).row(0) - e.means.matrix(0).row(1)).normalized();
    QVERIFY(std::abs(gap.dot(axes.row(0))) > 0.9f);
    QVERIFY(run.trace.extras->to_json().at("omega_2d").size() == 1);
  }

  void parameter_errors_name_the_range() {
    Params p(Registry::builtin().get("spectral").spec().params);
    EXPECT_ERROR(ParamError, p.set("n_features", std::int64_t{0}), "n_features");
    EXPECT_ERROR(ParamError, p.set("components", std::int64_t{9}), "components");
    EXPECT_ERROR(ParamError, p.set("spread", 3.0), "spread");
    EXPECT_ERROR(ParamError, p.set("kind", std::string("fastfood")), "kind");
  }
};

QTEST_GUILESS_MAIN(TestSpectral)
#include "test_spectral.moc"
