// rpe_fft and the FFT under it, against independent references written here: the FFT against
// a naive O(n²) DFT; Toeplitz products by circulant FFT against a double loop over C_ij = c_{j−i}
// (1e-5 and far below), for equal and unequal lengths, causal or not; with decay = 0 the variant
// equals performer with the same seed and features; its weights are performer's unnormalised
// weights times exp(−decay·|i − j|), renormalised per row; the FFT fast path equals the quadratic
// reference built here from the traced feature matrix; causal weights hide later keys exactly,
// the traced path is bit-identical before a changed token and the FFT path within 1e-6; the
// bias table, coefficients and Toeplitz matrix in the trace are the documented ones.
#include <QtTest>
#include <cmath>
#include <complex>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numbers>
#include <vector>

#include "analysis/fft.h"
#include "attention/performer.h"
#include "attention/registry.h"
#include "attention/rpe_fft.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::padding_every;
using attnlab::test::random_tensor;
using attnlab::test::head_rows_identical;
using attnlab::test::key_visible;
using attnlab::test::max_relative_error;

namespace {

struct Config {
  std::int64_t features = 64;
  bool orthogonal = true;
  double decay = 0.1;
  bool causal = false;
  std::uint64_t seed = 5;
};

using Run = test::VariantRun;

// performer or rpe_fft with the same FAVOR+ settings from `c` (the decay only for rpe_fft).
Run run_favor(const std::string& name, const Tensor& q, const Tensor& k, const Tensor& v, const Config& c,
              bool with_trace, const std::vector<std::uint8_t>* padding = nullptr) {
  nlohmann::json params = {{"n_features", c.features}, {"orthogonal", c.orthogonal}};
  if (name == "rpe_fft") params["decay"] = c.decay;
  return test::run_variant(name, q, k, v, params, {c.causal, c.seed, with_trace, padding});
}

Run run_rpe(const Tensor& q, const Tensor& k, const Tensor& v, const Config& c, bool with_trace,
            const std::vector<std::uint8_t>* padding = nullptr) {
  return run_favor("rpe_fft", q, k, v, c, with_trace, padding);
}

double relative_difference(const Tensor& a, const Tensor& b) {
  double num = 0.0, den = 0.0;
  for (std::int64_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a.data()[i]) - b.data()[i];
    num += d * d;
    den += static_cast<double>(b.data()[i]) * b.data()[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// The documented kernel from its definition, in double: a_f(x) = w_f·x d^{−1/4} − ‖x‖² d^{−1/2}/2,
// κ_ij ∝ Σ_f (e^{a_f(q) − μ_q} + ε)(e^{a_f(k) − μ_k} + ε) e^{μ_k}, times e^{−decay·|i − j|}, normalised.
struct Reference {
  std::vector<double> weights, out;
};

Reference rpe_reference(const Tensor& w, const Tensor& q, const Tensor& k, const Tensor& v, double eps, double decay,
                        bool causal, const std::vector<std::uint8_t>* padding) {
  const std::int64_t H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), dv = v.dim(2), m = w.dim(1), d = w.dim(2);
  const double s = std::pow(static_cast<double>(d), -0.25);
  const auto logits = [&](std::int64_t h, const Tensor& x, std::int64_t i) {
    double norm = 0.0;
    for (std::int64_t c = 0; c < d; ++c) norm += s * x.at(h, i, c) * s * x.at(h, i, c);
    std::vector<double> a(static_cast<std::size_t>(m));
    for (std::int64_t f = 0; f < m; ++f) {
      double dot = 0.0;
      for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(w.at(h, f, c)) * s * x.at(h, i, c);
      a[static_cast<std::size_t>(f)] = dot - 0.5 * norm;
    }
    return a;
  };
  Reference r{std::vector<double>(static_cast<std::size_t>(H * Lq * Lk), 0.0),
              std::vector<double>(static_cast<std::size_t>(H * Lq * dv), 0.0)};
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < Lq; ++i) {
      const auto aq = logits(h, q, i);
      const double mq = *std::max_element(aq.begin(), aq.end());
      std::vector<double> log_kappa(static_cast<std::size_t>(Lk), -INFINITY);
      double largest = -INFINITY;
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!key_visible(i, j, causal, padding)) continue;
        const auto ak = logits(h, k, j);
        const double mk = *std::max_element(ak.begin(), ak.end());
        double sum = 0.0;
        for (std::int64_t f = 0; f < m; ++f)
          sum += (std::exp(aq[static_cast<std::size_t>(f)] - mq) + eps) * (std::exp(ak[static_cast<std::size_t>(f)] - mk) + eps);
        log_kappa[static_cast<std::size_t>(j)] = std::log(sum) + mk - decay * std::abs(static_cast<double>(j - i));
        largest = std::max(largest, log_kappa[static_cast<std::size_t>(j)]);
      }
      if (largest == -INFINITY) continue;
      double total = 0.0;
      for (std::int64_t j = 0; j < Lk; ++j) total += std::exp(log_kappa[static_cast<std::size_t>(j)] - largest);
      for (std::int64_t j = 0; j < Lk; ++j) {
        const double a = std::exp(log_kappa[static_cast<std::size_t>(j)] - largest) / total;
        r.weights[static_cast<std::size_t>((h * Lq + i) * Lk + j)] = a;
        for (std::int64_t c = 0; c < dv; ++c) r.out[static_cast<std::size_t>((h * Lq + i) * dv + c)] += a * v.at(h, j, c);
      }
    }
  return r;
}

}  // namespace

class TestRpeFft : public QObject {
  Q_OBJECT

 private slots:
  void schema_and_defaults() {
    const Attention& variant = Registry::builtin().get("rpe_fft");
    const Params p(variant.spec().params);
    QCOMPARE(p.get_int("n_features"), std::int64_t{64});
    QCOMPARE(p.get_bool("orthogonal"), true);
    QCOMPARE(p.get_float("decay"), 0.1);
    QCOMPARE(p.get_float("feature_eps"), 1e-4);
    Params bad = p;
    EXPECT_ERROR(ParamError, bad.set("decay", 11.0), "decay");
    EXPECT_ERROR(ParamError, bad.set("decay", -0.5), "decay");
    EXPECT_ERROR(ParamError, decay_toeplitz_kernel(3, 3, -1.0, false), "decay");
  }

  // The FFT against the definition X_k = Σ_t x_t e^{−2πi kt/n}, natural and scrambled orders;
  // the inverse undoes it; sizes that are not powers of two are refused.
  void fft_matches_naive_dft() {
    for (std::int64_t n : {1, 2, 4, 8, 64, 512}) {
      std::vector<double> re(static_cast<std::size_t>(n)), im(static_cast<std::size_t>(n));
      Rng rng(static_cast<std::uint64_t>(n));
      for (std::int64_t t = 0; t < n; ++t) {
        re[static_cast<std::size_t>(t)] = rng.normal();
        im[static_cast<std::size_t>(t)] = rng.normal();
      }
      std::vector<std::complex<double>> expected(static_cast<std::size_t>(n));
      for (std::int64_t f = 0; f < n; ++f)
        for (std::int64_t t = 0; t < n; ++t)
          expected[static_cast<std::size_t>(f)] += std::complex<double>(re[static_cast<std::size_t>(t)], im[static_cast<std::size_t>(t)]) *
                                                   std::polar(1.0, -2.0 * std::numbers::pi * static_cast<double>((f * t) % n) / static_cast<double>(n));
      const fft::Plan plan(n);
      auto r = re, i = im;
      plan.forward(r.data(), i.data());
      auto rs = re, is = im;
      plan.forward_scrambled(rs.data(), is.data());
      for (std::int64_t f = 0; f < n; ++f) {
        const auto e = expected[static_cast<std::size_t>(f)];
        QVERIFY(std::abs(r[static_cast<std::size_t>(f)] - e.real()) < 1e-10 * n);
        QVERIFY(std::abs(i[static_cast<std::size_t>(f)] - e.imag()) < 1e-10 * n);
        const auto p = static_cast<std::size_t>(plan.scrambled_index(f));
        QVERIFY(std::abs(rs[p] - e.real()) < 1e-10 * n && std::abs(is[p] - e.imag()) < 1e-10 * n);
      }
      plan.inverse(r.data(), i.data());
      plan.inverse_scrambled(rs.data(), is.data());
      for (std::int64_t t = 0; t < n; ++t) {
        QVERIFY(std::abs(r[static_cast<std::size_t>(t)] - re[static_cast<std::size_t>(t)]) < 1e-12 * n);
        QVERIFY(std::abs(is[static_cast<std::size_t>(t)] - im[static_cast<std::size_t>(t)]) < 1e-12 * n);
      }
    }
    EXPECT_ERROR(ParamError, fft::Plan(12), "power of two");
    QCOMPARE(fft::next_power_of_two(1023), std::int64_t{1024});
    QCOMPARE(circulant_size(512, 512), std::int64_t{1024});
    QCOMPARE(circulant_size(513, 512), std::int64_t{1024});
    QCOMPARE(circulant_size(513, 513), std::int64_t{2048});
  }

  // C·x by circulant FFT equals the double loop over C_ij = c_{j−i} (and the library's direct
  // product), for an odd number of columns (the last transform carries one real signal).
  void toeplitz_fft_equals_direct_data() {
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::addColumn<double>("decay");
    QTest::addColumn<bool>("causal");
    QTest::newRow("1x1") << 1 << 1 << 0.1 << false;
    QTest::newRow("33 causal") << 33 << 33 << 0.3 << true;
    QTest::newRow("100x37 decay 0") << 100 << 37 << 0.0 << false;
    QTest::newRow("37x100 decay 10") << 37 << 100 << 10.0 << false;
    QTest::newRow("512 causal decay 0.01") << 512 << 512 << 0.01 << true;
    QTest::newRow("300 decay 2") << 300 << 300 << 2.0 << false;
  }

  void toeplitz_fft_equals_direct() {
    QFETCH(int, lq);
    QFETCH(int, lk);
    QFETCH(double, decay);
    QFETCH(bool, causal);
    const ToeplitzKernel kernel = decay_toeplitz_kernel(lq, lk, decay, causal);
    Eigen::MatrixXd x(lk, 7);
    Rng rng(3);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = rng.normal();
    Eigen::MatrixXd expected = Eigen::MatrixXd::Zero(lq, 7);
    for (int i = 0; i < lq; ++i)
      for (int j = 0; j < lk; ++j) {
        if (causal && j > i) continue;
        expected.row(i) += std::exp(-decay * std::abs(j - i)) * x.row(j);
      }
    const Eigen::MatrixXd by_fft = toeplitz_multiply_fft(kernel, x);
    const Eigen::MatrixXd direct = toeplitz_multiply_direct(kernel, x);
    const double scale = std::max(1.0, expected.cwiseAbs().maxCoeff());
    QVERIFY2((by_fft - expected).cwiseAbs().maxCoeff() < 1e-5 * scale,
             qPrintable(QString("fft error %1").arg((by_fft - expected).cwiseAbs().maxCoeff())));
    QVERIFY((by_fft - expected).cwiseAbs().maxCoeff() < 1e-12 * scale * lk);  // double precision throughout
    QVERIFY((direct - expected).cwiseAbs().maxCoeff() < 1e-12 * scale);
    EXPECT_ERROR(ShapeError, toeplitz_multiply_fft(kernel, Eigen::MatrixXd(lk + 1, 2)), "rows");
  }

  // decay = 0 is performer: same features (the trace's W, φ(Q), φ(K) are identical), same
  // output (fast path by FFT against performer's prefix sums) and weights.
  void decay_zero_equals_performer_data() {
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::newRow("non-causal") << false << false;
    QTest::newRow("causal") << true << false;
    QTest::newRow("non-causal padded") << false << true;
    QTest::newRow("causal padded") << true << true;
  }

  void decay_zero_equals_performer() {
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    const std::int64_t L = 120;
    const Tensor q = random_tensor({2, L, 16}, 1), k = random_tensor({2, L, 16}, 2), v = random_tensor({2, L, 6}, 3);
    const auto padding = padding_every(L, 4, 1);
    const auto* pad = padded ? &padding : nullptr;
    Config c;
    c.decay = 0.0;
    c.causal = causal;
    const Run rpe_fast = run_rpe(q, k, v, c, false, pad), rpe = run_rpe(q, k, v, c, true, pad);
    const Run perf_fast = run_favor("performer", q, k, v, c, false, pad), perf = run_favor("performer", q, k, v, c, true, pad);
    QVERIFY2(relative_difference(rpe_fast.out, perf_fast.out) < 1e-5,
             qPrintable(QString("fast paths differ by %1").arg(relative_difference(rpe_fast.out, perf_fast.out))));
    QVERIFY(relative_difference(rpe.out, perf.out) < 1e-5);
    QVERIFY(relative_difference(rpe.trace.weights, perf.trace.weights) < 1e-5);
    const FavorTrace& a = rpe.data<RpeFftExtras>().favor;
    const FavorTrace& b = perf.data<PerformerExtras>().favor;
    QVERIFY(std::memcmp(a.feature_matrix.data(), b.feature_matrix.data(), sizeof(float) * a.feature_matrix.size()) == 0);
    QVERIFY(std::memcmp(a.query_features.data(), b.query_features.data(), sizeof(float) * a.query_features.size()) == 0);
    QVERIFY(std::memcmp(a.key_features.data(), b.key_features.data(), sizeof(float) * a.key_features.size()) == 0);
  }

  // Weights = performer's (unnormalised) weights × exp(−decay·|i − j|), renormalised per row.
  void weights_are_performer_times_decay() {
    const std::int64_t L = 90;
    const Tensor q = random_tensor({2, L, 8}, 11), k = random_tensor({2, L, 8}, 12), v = random_tensor({2, L, 4}, 13);
    for (double decay : {0.05, 0.5, 3.0})
      for (bool causal : {false, true}) {
        Config c;
        c.decay = decay;
        c.causal = causal;
        c.features = 32;
        const Run rpe = run_rpe(q, k, v, c, true);
        const Run perf = run_favor("performer", q, k, v, c, true);
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t i = 0; i < L; ++i) {
            double total = 0.0;
            for (std::int64_t j = 0; j < L; ++j) total += perf.trace.weights.at(h, i, j) * std::exp(-decay * std::abs(i - j));
            for (std::int64_t j = 0; j < L; ++j) {
              const double expected = perf.trace.weights.at(h, i, j) * std::exp(-decay * std::abs(i - j)) / total;
              QVERIFY2(std::abs(rpe.trace.weights.at(h, i, j) - expected) < 1e-5 * std::max(1e-2, expected),
                       qPrintable(QString("decay %1 (%2, %3): %4 vs %5").arg(decay).arg(i).arg(j)
                                      .arg(rpe.trace.weights.at(h, i, j)).arg(expected)));
            }
          }
      }
  }

  // The FFT fast path and the traced (dense) path against the quadratic reference built here
  // from the traced feature matrix.
  void fft_path_matches_quadratic_reference_data() {
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::addColumn<double>("decay");
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::newRow("non-causal") << false << false << 0.1 << 100 << 100;
    QTest::newRow("causal") << true << false << 0.3 << 130 << 130;
    QTest::newRow("causal padded, decay 10") << true << true << 10.0 << 77 << 77;
    QTest::newRow("cross 40x150 padded") << false << true << 0.02 << 40 << 150;
    QTest::newRow("cross 150x40 decay 1") << false << false << 1.0 << 150 << 40;  // far rows: direct fallback
    QTest::newRow("cross 150x40 decay 10") << false << true << 10.0 << 150 << 40;  // c underflows double
  }

  void fft_path_matches_quadratic_reference() {
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    QFETCH(double, decay);
    QFETCH(int, lq);
    QFETCH(int, lk);
    Tensor q = random_tensor({2, lq, 16}, 21), k = random_tensor({2, lk, 16}, 22);
    for (std::int64_t j = 0; j < lk; ++j) k.matrix(1).row(j) *= 0.3f + 0.03f * static_cast<float>(j % 100);
    const Tensor v = random_tensor({2, lk, 5}, 23);
    const auto padding = padding_every(lk, 4, 1);
    const auto* pad = padded ? &padding : nullptr;
    Config c;
    c.decay = decay;
    c.causal = causal;
    c.features = 24;
    const Run fast = run_rpe(q, k, v, c, false, pad), traced = run_rpe(q, k, v, c, true, pad);
    const Reference ref = rpe_reference(traced.data<RpeFftExtras>().favor.feature_matrix, q, k, v, 1e-4, decay, causal, pad);
    QVERIFY2(max_relative_error(fast.out, ref.out) < 1e-5, qPrintable(QString("fast %1").arg(max_relative_error(fast.out, ref.out))));
    QVERIFY2(max_relative_error(traced.out, ref.out) < 1e-5, qPrintable(QString("traced %1").arg(max_relative_error(traced.out, ref.out))));
    QVERIFY(max_relative_error(traced.trace.weights, ref.weights) < 1e-5);
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t i = 0; i < lq; ++i) {
        double sum = 0.0;
        for (std::int64_t j = 0; j < lk; ++j) {
          if (!key_visible(i, j, causal, pad)) QCOMPARE(traced.trace.weights.at(h, i, j), 0.0f);
          sum += traced.trace.weights.at(h, i, j);
        }
        QVERIFY(std::abs(sum - 1.0) < 1e-5);
      }
  }

  // Causal: the traced path before a changed token is bit-identical; the FFT path agrees to 1e-6
  // (a circulant FFT spreads rounding over all positions; see rpe_fft.cpp).
  void causal_never_looks_ahead() {
    const std::int64_t L = 150;
    const Tensor q = random_tensor({1, L, 16}, 31), k = random_tensor({1, L, 16}, 32), v = random_tensor({1, L, 4}, 33);
    Config c;
    c.causal = true;
    for (std::int64_t j : {0, 70, 149}) {
      Tensor q2 = q, k2 = k, v2 = v;
      q2.matrix(0).row(j) *= -1.5f;
      k2.matrix(0).row(j) *= 3.0f;
      v2.matrix(0).row(j).array() += 9.0f;
      const Run a = run_rpe(q, k, v, c, true), b = run_rpe(q2, k2, v2, c, true);
      QVERIFY(head_rows_identical(a.out, b.out, 0, j));
      QVERIFY(head_rows_identical(a.trace.weights, b.trace.weights, 0, j));
      const Run fa = run_rpe(q, k, v, c, false), fb = run_rpe(q2, k2, v2, c, false);
      for (std::int64_t i = 0; i < j; ++i)
        for (std::int64_t cc = 0; cc < 4; ++cc)
          QVERIFY(std::abs(fa.out.at(0, i, cc) - fb.out.at(0, i, cc)) < 1e-6f * std::max(1.0f, std::abs(fa.out.at(0, i, cc))));
      bool changed = false;
      for (std::int64_t cc = 0; cc < 4; ++cc) changed |= fa.out.at(0, j, cc) != fb.out.at(0, j, cc);
      QVERIFY(changed);
    }
  }

  // The trace's tables: offsets −(Lq−1)..Lk−1, b(δ) = −decay·|δ| (−inf for δ > 0 when causal),
  // c = exp(b), C_ij = c_{j−i}; the circulant size; JSON with nulls for −inf.
  void trace_tables() {
    const Tensor q = random_tensor({1, 20, 8}, 41), k = random_tensor({1, 30, 8}, 42), v = random_tensor({1, 30, 2}, 43);
    Config c;
    c.decay = 0.7;
    const Run run = run_rpe(q, k, v, c, true);
    const RpeFftExtras::Data& d = run.data<RpeFftExtras>();
    QCOMPARE(d.offsets.size(), std::int64_t{49});
    QCOMPARE(d.fft_size, std::int64_t{64});
    for (std::int64_t t = 0; t < 49; ++t) {
      const double delta = static_cast<double>(t) - 19.0;
      QCOMPARE(d.offsets.data()[t], static_cast<float>(delta));
      QVERIFY(std::abs(d.bias.data()[t] + 0.7 * std::abs(delta)) < 1e-5);
      QVERIFY(std::abs(d.coefficients.data()[t] - std::exp(-0.7 * std::abs(delta))) < 1e-6);
    }
    for (std::int64_t i = 0; i < 20; ++i)
      for (std::int64_t j = 0; j < 30; ++j)
        QVERIFY(std::abs(d.toeplitz.at(i, j) - std::exp(-0.7 * std::abs(static_cast<double>(j - i)))) < 1e-6);
    Config cc = c;
    cc.causal = true;
    const Tensor v20 = random_tensor({1, 20, 2}, 44);
    const Run causal = run_rpe(q, q, v20, cc, true);
    const RpeFftExtras::Data& e = causal.data<RpeFftExtras>();
    for (std::int64_t t = 0; t < e.offsets.size(); ++t) {
      if (e.offsets.data()[t] > 0) {
        QVERIFY(std::isinf(e.bias.data()[t]) && e.bias.data()[t] < 0);
        QCOMPARE(e.coefficients.data()[t], 0.0f);
      }
    }
    for (std::int64_t i = 0; i < 20; ++i)
      for (std::int64_t j = i + 1; j < 20; ++j) QCOMPARE(e.toeplitz.at(i, j), 0.0f);
    const nlohmann::json j = causal.extras<RpeFftExtras>().to_json();
    QCOMPARE(j["kind"].get<std::string>(), std::string("rpe_fft"));
    QVERIFY(j["bias"].back().is_null());
    QCOMPARE(j["toeplitz"].size(), std::size_t(20));
    QCOMPARE(j["favor"]["features"].get<int>(), 64);
  }

  // A longer sequence through the FFT path stays finite and equals the traced path.
  void longer_sequence_fft_equals_dense() {
    const std::int64_t L = 700;
    const Tensor q = random_tensor({1, L, 16}, 51), k = random_tensor({1, L, 16}, 52), v = random_tensor({1, L, 8}, 53);
    for (bool causal : {false, true}) {
      Config c;
      c.causal = causal;
      c.decay = 0.01;
      c.features = 16;
      const Run fast = run_rpe(q, k, v, c, false), traced = run_rpe(q, k, v, c, true);
      QVERIFY2(relative_difference(fast.out, traced.out) < 1e-5,
               qPrintable(QString("%1").arg(relative_difference(fast.out, traced.out))));
    }
  }
};

QTEST_GUILESS_MAIN(TestRpeFft)
#include "test_rpe_fft.moc"
