// Mega layer: the FFT convolutions against direct sums and the EMA recurrence (double), the whole
// layer against a naive double-precision reference, and the degenerate cases of the task: chunk ≥ L
// equals full attention, u = 0 passes x through, the EMA kernel decays, causality is exact.
#include <QtTest>

#include "attention/registry.h"
#include "analysis/convolution.h"
#include "core/safetensors.h"
#include "layers/mega.h"
#include "layers/weight_table.h"
#include "naive_reference.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;
using namespace attnlab::test::naive;  // layer_norm, affine, options, max_relative, ...

namespace {

using MatrixD = Eigen::MatrixXd;

Params mega_params(const nlohmann::json& values) {
  Params p(MegaLayer::schema());
  p.set_from_json(values);
  return p;
}

MegaLayer small_layer(const nlohmann::json& values = nlohmann::json::object(), std::uint64_t seed = 3) {
  nlohmann::json v = {{"ndim", 4}, {"z_dim", 8}, {"hidden_ratio", 1.5}};
  v.update(values);
  return MegaLayer::seeded(12, 1, 0, mega_params(v), seed);
}

// The damped EMA by its recurrence, one step at a time: h_t = p·β·x_t + q·h_{t−1},
// y_t = Σ_j γ_j √(1/n) h_{t,j}. With `reverse`, the scan runs from the end over strictly later
// tokens (the bidirectional half): g_t = Σ_{s>t} p·β·q^{s−t−1}·x_s.
MatrixD ema_recurrence(const DampedEma& e, const MatrixD& x, bool reverse) {
  const Eigen::Index L = x.rows(), D = x.cols(), n = e.ndim();
  MatrixD y = MatrixD::Zero(L, D);
  for (Eigen::Index c = 0; c < D; ++c) {
    for (Eigen::Index j = 0; j < n; ++j) {
      const double p = sigmoid(e.delta(c, j)), a = sigmoid(e.alpha(c, j)), q = 1.0 - p * a;
      const double out = e.gamma(c, j) * std::sqrt(1.0 / static_cast<double>(n));
      double h = 0.0;
      if (!reverse) {
        for (Eigen::Index t = 0; t < L; ++t) {
          h = p * e.beta(c, j) * x(t, c) + q * h;
          y(t, c) += out * h;
        }
      } else {
        for (Eigen::Index t = L - 1; t >= 0; --t) {
          y(t, c) += out * h;  // h holds the scan of tokens after t
          h = p * e.beta(c, j) * x(t, c) + q * h;
        }
      }
    }
  }
  return y;
}

MatrixD apply(MatrixD m, double (*f)(double)) { return m.unaryExpr(f); }

// The whole Mega layer, term by term as in the header, in double with plain loops for attention.
MatrixD naive_mega(const MegaLayer& m, const RowMatrix& x_float, bool causal, const std::vector<std::uint8_t>* padding) {
  const MatrixD x = x_float.cast<double>();
  const Eigen::Index L = x.rows(), D = x.cols();
  const auto padded = [&](Eigen::Index j) { return padding && (*padding)[static_cast<std::size_t>(j)]; };
  const MatrixD xn = layer_norm(m.norm, x);
  MatrixD ema_in = xn;
  for (Eigen::Index i = 0; i < L; ++i)
    if (padded(i)) ema_in.row(i).setZero();
  MatrixD ema = ema_recurrence(m.ema, ema_in, false);
  if (!causal) ema += ema_recurrence(m.ema_backward, ema_in, true);
  MatrixD mx(L, D);
  for (Eigen::Index i = 0; i < L; ++i)
    for (Eigen::Index c = 0; c < D; ++c) mx(i, c) = silu(ema(i, c) + m.omega(c) * xn(i, c));
  const MatrixD v = apply(affine(m.w_v, xn), silu);
  const MatrixD z = apply(affine(m.w_z, mx), silu);
  const MatrixD r = apply(affine(m.w_r, mx), silu);
  const MatrixD u = apply(affine(m.w_u, mx), sigmoid);
  const MatrixD hx = affine(m.w_h, mx);
  MatrixD q = z, k = z;
  for (Eigen::Index i = 0; i < L; ++i)
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
      q(i, j) = z(i, j) * m.q_scale(j) + m.q_offset(j);
      k(i, j) = z(i, j) * m.k_scale(j) + m.k_offset(j);
    }
  const Eigen::Index chunk = m.chunk == 0 ? L : std::min<Eigen::Index>(m.chunk, L);
  MatrixD attended = MatrixD::Zero(L, v.cols());
  for (Eigen::Index i = 0; i < L; ++i) {
    const Eigen::Index c0 = (i / chunk) * chunk, c1 = std::min(c0 + chunk, L);
    std::vector<Eigen::Index> keys;
    for (Eigen::Index j = c0; j < c1; ++j)
      if (!(causal && j > i) && !padded(j)) keys.push_back(j);
    if (keys.empty()) continue;
    std::vector<double> w;
    const double n = static_cast<double>(keys.size());
    for (Eigen::Index j : keys) {
      const double s = q.row(i).dot(k.row(j));
      switch (m.activation) {
        case MegaActivation::Softmax: w.push_back(s / std::sqrt(static_cast<double>(q.cols()))); break;
        case MegaActivation::Laplace: w.push_back(0.5 * (1.0 + std::erf((s / n - 0.707107) / (0.282095 * std::sqrt(2.0))))); break;
        case MegaActivation::Relu2: w.push_back(std::pow(std::max(s / n, 0.0), 2.0)); break;
      }
    }
    if (m.activation == MegaActivation::Softmax) {
      const double top = *std::max_element(w.begin(), w.end());
      double sum = 0.0;
      for (double& e : w) sum += (e = std::exp(e - top));
      for (double& e : w) e /= sum;
    }
    for (std::size_t t = 0; t < keys.size(); ++t) attended.row(i) += w[t] * v.row(keys[t]);
  }
  MatrixD gated(L, attended.cols());
  for (Eigen::Index i = 0; i < L; ++i)
    for (Eigen::Index j = 0; j < attended.cols(); ++j) gated(i, j) = r(i, j) * attended(i, j);
  const MatrixD h = apply(hx + affine(m.u_h, gated), silu);
  MatrixD out(L, D);
  for (Eigen::Index i = 0; i < L; ++i)
    for (Eigen::Index c = 0; c < D; ++c) out(i, c) = u(i, c) * h(i, c) + (1.0 - u(i, c)) * x(i, c);
  return out;
}

}  // namespace

class TestMega : public QObject {
  Q_OBJECT

 private slots:
  // Any kernel (not only a decaying one): the dyadic causal FFT convolution and the two-sided
  // circular one against direct double sums, at lengths around the 128-row direct blocks.
  void convolutions_equal_direct_sums() {
    for (std::int64_t L : {1, 7, 128, 129, 300, 1031}) {
      const std::int64_t C = 3;
      const RowMatrix x = random_tensor({L, C}, 11).matrix();
      const MatrixD f = random_tensor({C, L}, 12).matrix().cast<double>();
      const MatrixD b = random_tensor({C, L}, 13).matrix().cast<double>();
      const KernelFill fill_f = [&](std::int64_t c, std::int64_t n, double* out) {
        for (std::int64_t t = 0; t < n; ++t) out[t] = f(c, t);
      };
      const KernelFill fill_b = [&](std::int64_t c, std::int64_t n, double* out) {
        for (std::int64_t t = 0; t < n; ++t) out[t] = b(c, t);
      };
      MatrixD causal = MatrixD::Zero(L, C), two_sided = MatrixD::Zero(L, C);
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < L; ++i)
          for (std::int64_t s = 0; s < L; ++s) {
            if (s <= i) causal(i, c) += f(c, i - s) * x(s, c);
            two_sided(i, c) += (s <= i ? f(c, i - s) : b(c, s - i - 1)) * x(s, c);
          }
      // The sums grow like √L; compare relative to the largest entry.
      const double scale_c = std::max(1.0, causal.cwiseAbs().maxCoeff());
      const double scale_t = std::max(1.0, two_sided.cwiseAbs().maxCoeff());
      const RowMatrix yc = causal_fft_convolution(x, fill_f);
      const RowMatrix yt = two_sided_fft_convolution(x, fill_f, fill_b);
      QVERIFY2((yc.cast<double>() - causal).cwiseAbs().maxCoeff() / scale_c < 1e-6, qPrintable(QString("L=%1").arg(L)));
      QVERIFY2((yt.cast<double>() - two_sided).cwiseAbs().maxCoeff() / scale_t < 1e-6, qPrintable(QString("L=%1").arg(L)));
    }
  }

  // A later input 1e12 times larger: one FFT of the whole signal would leak its rounding error
  // (≈1e-16 of it) into every earlier output, far above their float resolution.
  void causal_convolution_is_exactly_causal() {
    const std::int64_t L = 300, C = 4;
    const RowMatrix x = random_tensor({L, C}, 14).matrix();
    const MatrixD f = random_tensor({C, L}, 15).matrix().cast<double>();
    const KernelFill fill = [&](std::int64_t c, std::int64_t n, double* out) {
      for (std::int64_t t = 0; t < n; ++t) out[t] = f(c, t);
    };
    const RowMatrix y = causal_fft_convolution(x, fill);
    for (std::int64_t j : {1, 127, 128, 200, 256, 299}) {
      RowMatrix changed = x;
      changed.row(j) *= 1e12f;
      const RowMatrix z = causal_fft_convolution(changed, fill);
      QVERIFY2(rows_identical(y, z, 0, j), qPrintable(QString("j=%1").arg(j)));
      QVERIFY(y.row(j) != z.row(j));
    }
  }

  void ema_fft_equals_sequential_recurrence() {
    const MegaLayer m = small_layer({{"ndim", 5}});
    for (std::int64_t L : {1, 64, 129, 700}) {
      const RowMatrix x = random_tensor({L, 12}, 20).matrix();
      const MatrixD xd = x.cast<double>();
      const MatrixD causal = ema_recurrence(m.ema, xd, false);
      const MatrixD both = causal + ema_recurrence(m.ema_backward, xd, true);
      const double ec = max_relative(m.ema_filter(x, true), causal);
      const double eb = max_relative(m.ema_filter(x, false), both);
      QVERIFY2(ec < 1e-5, qPrintable(QString("causal L=%1 error %2").arg(L).arg(ec)));
      QVERIFY2(eb < 1e-5, qPrintable(QString("bidirectional L=%1 error %2").arg(L).arg(eb)));
    }
  }

  void layer_matches_naive_reference() {
    const RowMatrix x = random_tensor({37, 12}, 30).matrix();
    const std::vector<std::uint8_t> padding = attnlab::test::padding_every(37, 5, 2);
    for (const char* activation : {"softmax", "laplace", "relu2"}) {
      for (int chunk : {0, 8}) {
        for (bool causal : {false, true}) {
          for (const std::vector<std::uint8_t>* pad : {static_cast<const std::vector<std::uint8_t>*>(nullptr), &padding}) {
            const MegaLayer m = small_layer({{"attention", activation}, {"chunk", chunk}});
            const double e = max_relative(m.forward(x, options(causal, pad), nullptr), naive_mega(m, x, causal, pad));
            QVERIFY2(e < 1e-4, qPrintable(QString("%1 chunk %2 causal %3 padded %4: error %5")
                                              .arg(activation).arg(chunk).arg(causal).arg(pad != nullptr).arg(e)));
          }
        }
      }
    }
  }

  void chunk_at_least_length_equals_full_attention() {
    const RowMatrix x = random_tensor({40, 12}, 31).matrix();
    for (const char* activation : {"softmax", "laplace", "relu2"}) {
      for (bool causal : {false, true}) {
        const RowMatrix full = small_layer({{"attention", activation}}).forward(x, options(causal), nullptr);
        for (int chunk : {40, 41, 1000}) {
          const RowMatrix chunked =
              small_layer({{"attention", activation}, {"chunk", chunk}}).forward(x, options(causal), nullptr);
          QVERIFY(chunked == full);
        }
        // A real chunking does change the result.
        QVERIFY(small_layer({{"attention", activation}, {"chunk", 8}}).forward(x, options(causal), nullptr) != full);
      }
    }
  }

  void gate_u_zero_passes_input_through() {
    MegaLayer m = small_layer();
    m.w_u.bias.setConstant(-1e4f);
    const RowMatrix x = random_tensor({25, 12}, 32).matrix();
    for (bool causal : {false, true}) QVERIFY(m.forward(x, options(causal), nullptr) == x);
  }

  // q = 1 − σ(δ)σ(α̃) ∈ (0, 1): |k_t| ≤ Σ_j |c_j| · max_j q_j^t, so the kernel dies out.
  void ema_kernel_decays() {
    MegaLayer m = small_layer({{"ndim", 6}}, 9);
    m.ema.delta *= 5.0f;  // spread the decay rates, some close to 1
    m.ema.alpha *= 5.0f;
    const std::int64_t lags = 4000;
    const MatrixD k = m.ema_kernels(lags);
    for (std::int64_t c = 0; c < m.d_model; ++c) {
      const double q = m.ema.decay(c);
      QVERIFY(q > 0.0 && q < 1.0);
      double bound0 = 0.0;
      for (std::int64_t j = 0; j < m.ndim; ++j) {
        const double p = sigmoid(m.ema.delta(c, j));
        bound0 += std::abs(m.ema.gamma(c, j) * std::sqrt(1.0 / m.ndim) * p * m.ema.beta(c, j));
      }
      for (std::int64_t t = 0; t < lags; t += 37) QVERIFY(std::abs(k(c, t)) <= bound0 * std::pow(q, t) * (1 + 1e-9) + 1e-300);
      QVERIFY(std::abs(k(c, lags - 1)) < 1e-3 * std::max(std::abs(k(c, 0)), bound0));
    }
  }

  void causal_outputs_ignore_later_tokens_bit_for_bit() {
    for (const char* activation : {"softmax", "laplace", "relu2"}) {
      for (int chunk : {0, 64}) {
        const MegaLayer m = small_layer({{"attention", activation}, {"chunk", chunk}});
        const RowMatrix x = random_tensor({300, 12}, 33).matrix();
        for (std::int64_t j : {1, 129, 200, 299}) {
          RowMatrix changed = x;
          changed.row(j) = random_tensor({1, 12}, 34 + static_cast<std::uint64_t>(j)).matrix() * 3.0f;
          const RowMatrix a = m.forward(x, options(true), nullptr);
          const RowMatrix b = m.forward(changed, options(true), nullptr);
          QVERIFY2(rows_identical(a, b, 0, j), qPrintable(QString("%1 chunk %2 j=%3").arg(activation).arg(chunk).arg(j)));
          QVERIFY(a.row(j) != b.row(j));
        }
      }
    }
  }

  void trace_has_weights_and_extras() {
    const std::int64_t L = 20;
    const RowMatrix x = random_tensor({L, 12}, 35).matrix();
    for (bool causal : {false, true}) {
      const MegaLayer m = small_layer({{"chunk", 8}});
      Trace trace;
      const RowMatrix traced = m.forward(x, options(causal), &trace);
      QVERIFY(traced == m.forward(x, options(causal), nullptr));
      QCOMPARE(trace.weights.shape(), (Shape{1, L, L}));
      for (std::int64_t i = 0; i < L; ++i) {
        double sum = 0.0;
        for (std::int64_t j = 0; j < L; ++j) {
          const bool visible = j / 8 == i / 8 && !(causal && j > i);
          if (!visible) QCOMPARE(trace.weights.at(0, i, j), 0.0f);
          sum += trace.weights.at(0, i, j);
        }
        QVERIFY(std::abs(sum - 1.0) < 1e-5);
      }
      const auto* extra = dynamic_cast<const MegaTrace*>(trace.layer_extra("mega"));
      QVERIFY(extra);
      QCOMPARE(extra->ema_kernel.shape(), (Shape{12, L}));
      QCOMPARE(extra->ema_kernel_backward.empty(), causal);
      QCOMPARE(extra->decay.shape(), (Shape{12}));
      QCOMPARE(extra->gate_u.shape(), (Shape{L}));
      QCOMPARE(extra->gate_r.shape(), (Shape{L}));
      QCOMPARE(extra->chunk, std::int64_t{8});
      const MatrixD k = m.ema_kernels(L);
      QVERIFY(std::abs(extra->ema_kernel.at(3, 5) - k(3, 5)) < 1e-6);
      const nlohmann::json j = extra->to_json();
      for (const char* key : {"ema_kernel", "decay", "gate_u", "gate_r", "chunk"}) QVERIFY2(j.contains(key), key);
      QCOMPARE(j["ema_kernel"].size(), std::size_t{12});
      QCOMPARE(j["ema_kernel"][0].size(), std::size_t{L});
    }
  }

  void weights_round_trip_through_the_table() {
    MegaLayer a = small_layer(nlohmann::json::object(), 40);
    MegaLayer b = small_layer(nlohmann::json::object(), 41);
    SafetensorsFile file;
    WeightWriter writer(file);
    a.visit_weights("layers.0.mixer.", writer);
    QVERIFY(file.tensors.count("layers.0.mixer.ema.delta"));
    QVERIFY(file.tensors.count("layers.0.mixer.ema.omega"));
    QCOMPARE(file.tensors.at("layers.0.mixer.w_u.weight").shape(), (Shape{12, 12}));
    WeightReader reader(file);
    b.visit_weights("layers.0.mixer.", reader);
    const RowMatrix x = random_tensor({16, 12}, 42).matrix();
    for (bool causal : {false, true}) QVERIFY(a.forward(x, options(causal), nullptr) == b.forward(x, options(causal), nullptr));
  }

  void refuses_bad_input() {
    EXPECT_ERROR(ParamError, mega_params({{"ndim", 0}}), "ndim");
    EXPECT_ERROR(ParamError, mega_params({{"z_dim", 2}}), "z_dim");
    EXPECT_ERROR(ParamError, mega_params({{"hidden_ratio", 9.0}}), "hidden_ratio");
    EXPECT_ERROR(ParamError, mega_params({{"chunk", -1}}), "chunk");
    EXPECT_ERROR(ParamError, mega_params({{"attention", "cosine"}}), "attention");
    EXPECT_ERROR(ParamError, MegaLayer::seeded(0, 1, 0, mega_params(nlohmann::json::object()), 1), "d_model");
    const MegaLayer m = small_layer();
    EXPECT_ERROR(ShapeError, m.forward(RowMatrix::Zero(4, 11), options(false), nullptr), "[4, 11]");
    const std::vector<std::uint8_t> short_padding(3, 0);
    EXPECT_ERROR(ShapeError, m.forward(RowMatrix::Zero(4, 12), options(false, &short_padding), nullptr), "padding");
    CancelToken token;
    token.cancel();
    AttentionOptions o = options(true);
    o.cancel = &token;
    EXPECT_ERROR(CancelledError, m.forward(RowMatrix::Ones(300, 12), o, nullptr), "cancelled");
  }
};

QTEST_APPLESS_MAIN(TestMega)
#include "test_mega.moc"
