// Gated State Space layer: the DSS convolution by FFT against the direct O(L²) convolution with the
// closed-form kernel and against the diagonal recurrence (complex double), the kernel's decay,
// exact causality, and the whole layer against a naive double-precision reference.
#include <QtTest>

#include <complex>

#include "attention/registry.h"
#include "core/safetensors.h"
#include "layers/gss.h"
#include "layers/weight_table.h"
#include "naive_reference.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;
using namespace attnlab::test::naive;  // layer_norm, affine, options, max_relative, ...

namespace {

using MatrixD = Eigen::MatrixXd;
using Complex = std::complex<double>;

Params gss_params(const nlohmann::json& values) {
  Params p(GssLayer::schema());
  p.set_from_json(values);
  return p;
}

GssLayer small_layer(const nlohmann::json& values = nlohmann::json::object(), std::uint64_t seed = 5) {
  nlohmann::json v = {{"state_dim", 5}, {"ssm_dim", 3}, {"expansion", 2}};
  v.update(values);
  GssLayer g = GssLayer::seeded(6, 1, 0, gss_params(v), seed);
  // Varied eigenvalues instead of the uniform −½ + iπn start.
  Rng rng(seed + 100);
  for (std::int64_t n = 0; n < g.state_dim; ++n) {
    g.lambda_re(n) = static_cast<float>(rng.uniform(-2.0, 1.0));
    g.lambda_im(n) = static_cast<float>(rng.uniform(-3.0, 3.0));
  }
  return g;
}

Complex lambda_of(const GssLayer& g, std::int64_t n) {
  return {-std::exp(static_cast<double>(g.lambda_re(n))), static_cast<double>(g.lambda_im(n))};
}
double dt_of(const GssLayer& g, std::int64_t h) { return std::exp(static_cast<double>(g.log_dt(h))); }

// The kernels [H, L] straight from the formulas: exp: Re Σ W (e^{ΔΛ} − 1)/Λ e^{lΔΛ};
// softmax: Re Σ W/Λ · e^{lΔΛ} / Σ_{l' < L} e^{l'ΔΛ} (the sum written out, not in closed form).
MatrixD closed_form_kernels(const GssLayer& g, std::int64_t L) {
  MatrixD k = MatrixD::Zero(g.ssm_dim, L);
  for (std::int64_t h = 0; h < g.ssm_dim; ++h)
    for (std::int64_t n = 0; n < g.state_dim; ++n) {
      const Complex lambda = lambda_of(g, n), w(g.w_re(h, n), g.w_im(h, n));
      const Complex step = dt_of(g, h) * lambda;
      Complex softmax_sum = 0.0;
      for (std::int64_t l = 0; l < L; ++l) softmax_sum += std::exp(static_cast<double>(l) * step);
      for (std::int64_t l = 0; l < L; ++l) {
        const Complex power = std::exp(static_cast<double>(l) * step);
        const Complex term = g.kernel_kind == DssKernel::Exp ? w * (std::exp(step) - 1.0) / lambda * power
                                                             : w / lambda * power / softmax_sum;
        k(h, l) += term.real();
      }
    }
  return k;
}

// y_l = Σ_{s ≤ l} K_{l−s} v_s + d·v_l, directly.
MatrixD direct_dss(const GssLayer& g, const MatrixD& kernel, const MatrixD& v) {
  const Eigen::Index L = v.rows();
  MatrixD y = MatrixD::Zero(L, v.cols());
  for (Eigen::Index h = 0; h < v.cols(); ++h)
    for (Eigen::Index l = 0; l < L; ++l) {
      for (Eigen::Index s = 0; s <= l; ++s) y(l, h) += kernel(h, l - s) * v(s, h);
      y(l, h) += g.d(h) * v(l, h);
    }
  return y;
}

// The diagonal recurrence s_l = z s_{l−1} + (z − 1)/Λ v_l, y_l = Re(W·s_l) + d v_l (exp kernel).
MatrixD recurrent_dss(const GssLayer& g, const MatrixD& v) {
  const Eigen::Index L = v.rows(), N = g.state_dim;
  MatrixD y(L, v.cols());
  for (Eigen::Index h = 0; h < v.cols(); ++h) {
    std::vector<Complex> state(static_cast<std::size_t>(N), 0.0);
    for (Eigen::Index l = 0; l < L; ++l) {
      Complex out = 0.0;
      for (Eigen::Index n = 0; n < N; ++n) {
        const Complex lambda = lambda_of(g, n), z = std::exp(dt_of(g, h) * lambda);
        Complex& s = state[static_cast<std::size_t>(n)];
        s = z * s + (z - 1.0) / lambda * v(l, h);
        out += Complex(g.w_re(h, n), g.w_im(h, n)) * s;
      }
      y(l, h) = out.real() + g.d(h) * v(l, h);
    }
  }
  return y;
}

}  // namespace

class TestGss : public QObject {
  Q_OBJECT

 private slots:
  void fft_equals_direct_convolution_and_recurrence() {
    const GssLayer g = small_layer();
    for (std::int64_t L : {1, 50, 129, 400}) {
      const RowMatrix v = random_tensor({L, 3}, 10).matrix();
      const MatrixD vd = v.cast<double>();
      const RowMatrix fft = g.dss(v);
      const MatrixD direct = direct_dss(g, closed_form_kernels(g, L), vd);
      const MatrixD recurrent = recurrent_dss(g, vd);
      const double e1 = max_relative(fft, direct), e2 = max_relative(fft, recurrent);
      QVERIFY2(e1 < 1e-4, qPrintable(QString("L=%1 FFT vs direct %2").arg(L).arg(e1)));
      QVERIFY2(e2 < 1e-4, qPrintable(QString("L=%1 FFT vs recurrence %2").arg(L).arg(e2)));
      QVERIFY((direct - recurrent).cwiseAbs().maxCoeff() < 1e-9);
    }
  }

  void softmax_kernel_equals_its_normalised_sum() {
    const GssLayer g = small_layer({{"kernel", "softmax"}});
    for (std::int64_t L : {1, 70, 300}) {
      const MatrixD reference = closed_form_kernels(g, L);
      const MatrixD k = g.kernels(L, L);
      QVERIFY2((k - reference).cwiseAbs().maxCoeff() < 1e-9 * std::max(1.0, reference.cwiseAbs().maxCoeff()),
               qPrintable(QString("L=%1").arg(L)));
      const RowMatrix v = random_tensor({L, 3}, 11).matrix();
      QVERIFY(max_relative(g.dss(v), direct_dss(g, reference, v.cast<double>())) < 1e-4);
    }
  }

  // |K_l| ≤ Σ_n |W_n (e^{ΔΛ_n} − 1)/Λ_n| · e^{lΔ·max Re Λ}, and Re Λ < 0 whatever the stored value.
  void kernel_decays_to_zero() {
    GssLayer g = small_layer();
    g.log_dt.setConstant(std::log(0.05f));
    g.lambda_re(0) = -3.0f;
    const std::int64_t L = 20000;
    const MatrixD k = g.kernels(L, L);
    for (std::int64_t h = 0; h < g.ssm_dim; ++h) {
      double bound0 = 0.0, slowest = -1e300;
      for (std::int64_t n = 0; n < g.state_dim; ++n) {
        const Complex lambda = lambda_of(g, n), step = 0.05 * lambda;
        QVERIFY(lambda.real() < 0.0);
        bound0 += std::abs(Complex(g.w_re(h, n), g.w_im(h, n)) * (std::exp(step) - 1.0) / lambda);
        slowest = std::max(slowest, step.real());
      }
      for (std::int64_t l = 0; l < L; l += 97) QVERIFY(std::abs(k(h, l)) <= bound0 * std::exp(slowest * l) * (1 + 1e-9));
      QVERIFY(std::abs(k(h, L - 1)) < 1e-3 * bound0);
    }
  }

  void layer_matches_naive_reference() {
    const GssLayer g = small_layer();
    const RowMatrix x = random_tensor({40, 6}, 12).matrix();
    const MatrixD xd = x.cast<double>();
    const MatrixD xn = layer_norm(g.norm, xd);
    const MatrixD u = affine(g.w1, xn).unaryExpr(&gelu);
    const MatrixD v = affine(g.w2, xn).unaryExpr(&gelu);
    const MatrixD y = recurrent_dss(g, v);
    const MatrixD uc = affine(g.w3, y);
    const MatrixD reference = affine(g.w4, uc.cwiseProduct(u)) + xd;
    const double e = max_relative(g.forward(x, options(true), nullptr), reference);
    QVERIFY2(e < 1e-4, qPrintable(QString("error %1").arg(e)));
  }

  void outputs_ignore_later_tokens_bit_for_bit() {
    const GssLayer g = small_layer();
    const RowMatrix x = random_tensor({300, 6}, 13).matrix();
    const RowMatrix a = g.forward(x, options(true), nullptr);
    // Always causal: the causal flag changes nothing.
    QVERIFY(g.forward(x, options(false), nullptr) == a);
    for (std::int64_t j : {1, 128, 129, 257, 299}) {
      RowMatrix changed = x;
      changed.row(j) *= -2.0f;
      const RowMatrix b = g.forward(changed, options(true), nullptr);
      QVERIFY2(rows_identical(a, b, 0, j), qPrintable(QString("j=%1").arg(j)));
      QVERIFY(a.row(j) != b.row(j));
    }
  }

  // The convolution itself: a later input 1e12 times larger leaves earlier outputs bit-identical.
  void dss_is_exactly_causal() {
    const GssLayer g = small_layer();
    const RowMatrix v = random_tensor({300, 3}, 16).matrix();
    const RowMatrix y = g.dss(v);
    for (std::int64_t j : {2, 128, 255, 299}) {
      RowMatrix changed = v;
      changed.row(j) *= 1e12f;
      QVERIFY2(rows_identical(y, g.dss(changed), 0, j), qPrintable(QString("j=%1").arg(j)));
    }
  }

  // A padded token enters the state space as zero: changing it moves no other output.
  void padded_tokens_do_not_reach_other_outputs() {
    const GssLayer g = small_layer();
    const std::int64_t L = 30;
    const std::vector<std::uint8_t> padding = attnlab::test::padding_every(L, 7, 3);
    const RowMatrix x = random_tensor({L, 6}, 14).matrix();
    RowMatrix changed = x;
    changed.row(10) *= 5.0f;  // padded (3, 10, 17, 24)
    const RowMatrix a = g.forward(x, options(true, &padding), nullptr);
    const RowMatrix b = g.forward(changed, options(true, &padding), nullptr);
    QVERIFY(rows_identical(a, b, 0, 10));
    QVERIFY(rows_identical(a, b, 11, L - 11));
  }

  void trace_has_the_kernel_and_no_weights() {
    const GssLayer g = small_layer();
    const std::int64_t L = 300;
    const RowMatrix x = random_tensor({L, 6}, 15).matrix();
    Trace trace;
    QVERIFY(g.forward(x, options(true), &trace) == g.forward(x, options(true), nullptr));
    QVERIFY(trace.weights.empty());
    const auto* t = dynamic_cast<const GssTrace*>(trace.layer_extra("gss"));
    QVERIFY(t);
    QCOMPARE(t->kernel.shape(), (Shape{3, 256}));
    const MatrixD k = closed_form_kernels(g, L);
    QVERIFY(std::abs(t->kernel.at(2, 100) - k(2, 100)) < 1e-6 * std::max(1.0, std::abs(k(2, 100))));
    QCOMPARE(t->lambda_re.shape(), (Shape{5}));
    for (std::int64_t n = 0; n < 5; ++n) {
      QVERIFY(t->lambda_re.data()[n] < 0.0f);
      QCOMPARE(t->lambda_im.data()[n], g.lambda_im(n));
    }
    QCOMPARE(t->gate.shape(), (Shape{L}));
    QVERIFY(t->gate.data()[7] > 0.0f);
    QCOMPARE(t->dt.shape(), (Shape{3}));
    QVERIFY(std::abs(t->dt.data()[1] - dt_of(g, 1)) < 1e-6);
    const nlohmann::json j = t->to_json();
    for (const char* key : {"kernel", "lambda_re", "lambda_im", "gate", "dt"}) QVERIFY2(j.contains(key), key);
  }

  void default_init_is_in_range() {
    const GssLayer g = GssLayer::seeded(8, 2, 32, gss_params(nlohmann::json::object()), 1);
    QCOMPARE(g.state_dim, std::int64_t{64});
    QCOMPARE(g.ssm_dim, std::int64_t{256});
    QCOMPARE(g.w1.out_features(), std::int64_t{32});
    for (std::int64_t h = 0; h < g.ssm_dim; ++h) {
      QVERIFY(dt_of(g, h) >= 1e-3 * (1 - 1e-6) && dt_of(g, h) <= 1e-1 * (1 + 1e-6));
    }
  }

  void weights_round_trip_through_the_table() {
    GssLayer a = small_layer(nlohmann::json::object(), 20);
    GssLayer b = small_layer(nlohmann::json::object(), 21);
    SafetensorsFile file;
    WeightWriter writer(file);
    a.visit_weights("layers.1.mixer.", writer);
    QCOMPARE(file.tensors.at("layers.1.mixer.dss.w_re").shape(), (Shape{3, 5}));
    QCOMPARE(file.tensors.at("layers.1.mixer.dss.lambda_re").shape(), (Shape{5}));
    QCOMPARE(file.tensors.at("layers.1.mixer.w4.weight").shape(), (Shape{12, 6}));
    WeightReader reader(file);
    b.visit_weights("layers.1.mixer.", reader);
    const RowMatrix x = random_tensor({20, 6}, 22).matrix();
    QVERIFY(a.forward(x, options(true), nullptr) == b.forward(x, options(true), nullptr));
  }

  void refuses_bad_input() {
    EXPECT_ERROR(ParamError, gss_params({{"state_dim", 0}}), "state_dim");
    EXPECT_ERROR(ParamError, gss_params({{"ssm_dim", 5000}}), "ssm_dim");
    EXPECT_ERROR(ParamError, gss_params({{"kernel", "cauchy"}}), "kernel");
    EXPECT_ERROR(ParamError, GssLayer::seeded(6, 1, 0, gss_params({{"dt_min", 0.5}, {"dt_max", 0.1}}), 1), "dt_min");
    const GssLayer g = small_layer();
    EXPECT_ERROR(ShapeError, g.forward(RowMatrix::Zero(4, 5), options(true), nullptr), "[4, 5]");
    EXPECT_ERROR(ShapeError, g.dss(RowMatrix::Zero(4, 4)), "channels");
    CancelToken token;
    token.cancel();
    AttentionOptions o = options(true);
    o.cancel = &token;
    EXPECT_ERROR(CancelledError, g.forward(RowMatrix::Ones(50, 6), o, nullptr), "cancelled");
  }
};

QTEST_APPLESS_MAIN(TestGss)
#include "test_gss.moc"
