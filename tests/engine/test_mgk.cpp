// Transformer-MGK against references written here in double precision: the full squared
// distances -‖q - k_c‖²/2σ² (not the engine's shortened logits), the second key rebuilt from the
// traced shift or projection, soft-EM run here over the documented query sets, hard-EM by the
// nearer key; k1 = k2 reducing to single-Gaussian attention for any π; equal-norm keys reducing
// it to exact softmax (the registry's softmax); unit rows, component maps adding to the weights;
// causal outputs bit-identical before a changed token in every π mode; parameter errors.
#include <QtTest>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "attention/mgk.h"
#include "attention/registry.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;
using attnlab::test::head_rows_identical;
using attnlab::test::key_visible;
using attnlab::test::max_abs_diff;

namespace {

struct Config {
  std::string mode = "fixed";
  double pi1 = 0.3;
  std::int64_t em_steps = 1;
  std::string second_key = "shift";
  double key2_scale = 0.5;
  bool causal = false;
  std::uint64_t seed = 9;
};

using Run = test::VariantRun;

Run run_mgk(const Tensor& q, const Tensor& k, const Tensor& v, const Config& c, bool with_trace,
            const std::vector<std::uint8_t>* padding = nullptr) {
  const nlohmann::json params = {{"pi_mode", c.mode},         {"pi1", c.pi1},
                                 {"em_steps", c.em_steps},    {"second_key", c.second_key},
                                 {"key2_scale", c.key2_scale}};
  return test::run_variant("mgk", q, k, v, params, {c.causal, c.seed, with_trace, padding});
}

struct Reference {
  std::vector<double> weights, comp1, comp2;  // [H, Lq, Lk]
  std::vector<double> out;                    // [H, Lq, dv]
  std::vector<double> pi;                     // [H, Lk]
};

// MGK from its definition. The second key from the trace's shift (k - μ) or projection (R k).
Reference naive(const MgkExtras::Data& e, const Tensor& q, const Tensor& k, const Tensor& v, const Config& c,
                const std::vector<std::uint8_t>* padding) {
  const auto H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), d = q.dim(2), dv = v.dim(2);
  const double sigma2 = std::sqrt(static_cast<double>(d));
  Reference r;
  r.weights.assign(static_cast<std::size_t>(H * Lq * Lk), 0.0);
  r.comp1 = r.comp2 = r.weights;
  r.out.assign(static_cast<std::size_t>(H * Lq * dv), 0.0);
  r.pi.assign(static_cast<std::size_t>(H * Lk), c.pi1);
  for (std::int64_t h = 0; h < H; ++h) {
    std::vector<std::vector<double>> k2(static_cast<std::size_t>(Lk), std::vector<double>(static_cast<std::size_t>(d)));
    for (std::int64_t j = 0; j < Lk; ++j)
      for (std::int64_t a = 0; a < d; ++a) {
        double x = 0.0;
        if (c.second_key == "shift") x = static_cast<double>(k.at(h, j, a)) - e.key_shift.at(h, a);
        else
          for (std::int64_t b = 0; b < d; ++b) x += static_cast<double>(e.key_projection.at(h, a, b)) * k.at(h, j, b);
        k2[static_cast<std::size_t>(j)][static_cast<std::size_t>(a)] = x;
      }
    // g_c(i, j) = -‖q_i - k_c,j‖² / 2σ²
    std::vector<double> g1(static_cast<std::size_t>(Lq * Lk)), g2(g1.size());
    for (std::int64_t i = 0; i < Lq; ++i)
      for (std::int64_t j = 0; j < Lk; ++j) {
        double d1 = 0.0, d2 = 0.0;
        for (std::int64_t a = 0; a < d; ++a) {
          const double x = q.at(h, i, a);
          d1 += (x - k.at(h, j, a)) * (x - k.at(h, j, a));
          d2 += (x - k2[static_cast<std::size_t>(j)][static_cast<std::size_t>(a)]) * (x - k2[static_cast<std::size_t>(j)][static_cast<std::size_t>(a)]);
        }
        g1[static_cast<std::size_t>(i * Lk + j)] = -d1 / (2 * sigma2);
        g2[static_cast<std::size_t>(i * Lk + j)] = -d2 / (2 * sigma2);
      }
    std::vector<double> pi(static_cast<std::size_t>(Lk), c.pi1);
    if (c.mode == "soft_em") {
      for (std::int64_t step = 0; step < c.em_steps; ++step) {
        std::vector<double> next = pi;
        for (std::int64_t j = 0; j < Lk; ++j) {
          double sum = 0.0;
          int n = 0;
          for (std::int64_t i = 0; i < Lq; ++i) {
            if (c.causal && i > j) continue;                // causal: queries i <= j
            if (Lq == Lk && is_key_padded(padding, i)) continue;  // padded positions
            const double p = pi[static_cast<std::size_t>(j)];
            const double a = p * std::exp(g1[static_cast<std::size_t>(i * Lk + j)]);
            const double b = (1 - p) * std::exp(g2[static_cast<std::size_t>(i * Lk + j)]);
            sum += a / (a + b);
            ++n;
          }
          if (n > 0) next[static_cast<std::size_t>(j)] = sum / n;
        }
        pi = next;
      }
    }
    for (std::int64_t j = 0; j < Lk; ++j) r.pi[static_cast<std::size_t>(h * Lk + j)] = pi[static_cast<std::size_t>(j)];
    for (std::int64_t i = 0; i < Lq; ++i) {
      std::vector<double> a1(static_cast<std::size_t>(Lk), 0.0), a2(a1.size(), 0.0);
      double z = 0.0;
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!key_visible(i, j, c.causal, padding)) continue;
        const double e1 = std::exp(g1[static_cast<std::size_t>(i * Lk + j)]), e2 = std::exp(g2[static_cast<std::size_t>(i * Lk + j)]);
        if (c.mode == "hard_em") {
          (e1 >= e2 ? a1 : a2)[static_cast<std::size_t>(j)] = std::max(e1, e2);
        } else {
          a1[static_cast<std::size_t>(j)] = pi[static_cast<std::size_t>(j)] * e1;
          a2[static_cast<std::size_t>(j)] = (1 - pi[static_cast<std::size_t>(j)]) * e2;
        }
        z += a1[static_cast<std::size_t>(j)] + a2[static_cast<std::size_t>(j)];
      }
      if (z == 0.0) continue;
      for (std::int64_t j = 0; j < Lk; ++j) {
        const auto at = static_cast<std::size_t>((h * Lq + i) * Lk + j);
        r.comp1[at] = a1[static_cast<std::size_t>(j)] / z;
        r.comp2[at] = a2[static_cast<std::size_t>(j)] / z;
        r.weights[at] = r.comp1[at] + r.comp2[at];
        for (std::int64_t cc = 0; cc < dv; ++cc) r.out[static_cast<std::size_t>((h * Lq + i) * dv + cc)] += r.weights[at] * v.at(h, j, cc);
      }
    }
  }
  return r;
}

// Single-Gaussian attention softmax_j(-‖q_i - k_j‖²/2σ²) times V, in double.
std::vector<double> single_gaussian(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const auto H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), d = q.dim(2), dv = v.dim(2);
  const double sigma2 = std::sqrt(static_cast<double>(d));
  std::vector<double> out(static_cast<std::size_t>(H * Lq * dv), 0.0);
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < Lq; ++i) {
      std::vector<double> w(static_cast<std::size_t>(Lk), 0.0);
      double z = 0.0;
      for (std::int64_t j = 0; j < Lk && !(causal && j > i); ++j) {
        double dist = 0.0;
        for (std::int64_t a = 0; a < d; ++a) dist += (q.at(h, i, a) - k.at(h, j, a)) * static_cast<double>(q.at(h, i, a) - k.at(h, j, a));
        w[static_cast<std::size_t>(j)] = std::exp(-dist / (2 * sigma2));
        z += w[static_cast<std::size_t>(j)];
      }
      for (std::int64_t j = 0; j < Lk; ++j)
        for (std::int64_t a = 0; a < dv; ++a) out[static_cast<std::size_t>((h * Lq + i) * dv + a)] += w[static_cast<std::size_t>(j)] / z * v.at(h, j, a);
    }
  return out;
}


}  // namespace

class TestMgk : public QObject {
  Q_OBJECT

 private slots:
  void schema_and_defaults() {
    const Params p(Registry::builtin().get("mgk").spec().params);
    QCOMPARE(p.get_choice("pi_mode"), std::string("fixed"));
    QCOMPARE(p.get_float("pi1"), 0.5);
    QCOMPARE(p.get_int("em_steps"), std::int64_t{1});
    QCOMPARE(p.get_choice("second_key"), std::string("shift"));
    QCOMPARE(p.get_float("key2_scale"), 0.5);
  }

  void matches_definition_data() {
    QTest::addColumn<QString>("mode");
    QTest::addColumn<QString>("second_key");
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::newRow("fixed shift") << "fixed" << "shift" << false << false << 40 << 40;
    QTest::newRow("fixed projection causal padded") << "fixed" << "projection" << true << true << 300 << 300;
    QTest::newRow("soft_em cross lengths padded") << "soft_em" << "shift" << false << true << 70 << 280;
    QTest::newRow("soft_em causal padded") << "soft_em" << "projection" << true << true << 290 << 290;
    QTest::newRow("hard_em") << "hard_em" << "shift" << false << false << 50 << 60;
    QTest::newRow("hard_em causal") << "hard_em" << "projection" << true << false << 100 << 100;
  }

  void matches_definition() {
    QFETCH(QString, mode);
    QFETCH(QString, second_key);
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    QFETCH(int, lq);
    QFETCH(int, lk);
    const Tensor q = random_tensor({2, lq, 16}, 1), k = random_tensor({2, lk, 16}, 2), v = random_tensor({2, lk, 8}, 3);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(lk), 0);
    for (int j = 3; j < lk; j += 7) padding[static_cast<std::size_t>(j)] = 1;
    const auto* pad = padded ? &padding : nullptr;
    Config c;
    c.mode = mode.toStdString();
    c.second_key = second_key.toStdString();
    c.causal = causal;
    c.em_steps = 2;
    c.key2_scale = 0.8;
    const Run fast = run_mgk(q, k, v, c, false, pad);
    const Run traced = run_mgk(q, k, v, c, true, pad);
    const Reference ref = naive(traced.data<MgkExtras>(), q, k, v, c, pad);
    const auto err = [](const Tensor& t, const std::vector<double>& r) { return test::max_relative_error(t.data(), r.data(), t.size()); };
    QVERIFY2(err(fast.out, ref.out) < 1e-5, qPrintable(QString("fast %1").arg(err(fast.out, ref.out))));
    QVERIFY2(err(traced.out, ref.out) < 1e-5, qPrintable(QString("traced %1").arg(err(traced.out, ref.out))));
    QVERIFY2(err(traced.trace.weights, ref.weights) < 1e-5, qPrintable(QString("weights %1").arg(err(traced.trace.weights, ref.weights))));
    QVERIFY(err(traced.data<MgkExtras>().component1, ref.comp1) < 1e-5);
    QVERIFY(err(traced.data<MgkExtras>().component2, ref.comp2) < 1e-5);
    if (c.mode != "hard_em") QVERIFY2(err(traced.data<MgkExtras>().pi, ref.pi) < 1e-5, qPrintable(QString("pi %1").arg(err(traced.data<MgkExtras>().pi, ref.pi))));
    // Soft-EM moves π away from its start.
    if (c.mode == "soft_em") {
      double moved = 0.0;
      for (std::int64_t i = 0; i < traced.data<MgkExtras>().pi.size(); ++i) moved = std::max(moved, std::abs(traced.data<MgkExtras>().pi.data()[i] - 0.3));
      QVERIFY(moved > 0.01);
    }
  }

  // k1 = k2 (key2_scale = 0): every mixture collapses to single-Gaussian attention, for any π.
  void equal_keys_give_single_gaussian() {
    const Tensor q = random_tensor({2, 45, 16}, 11), k = random_tensor({2, 45, 16}, 12), v = random_tensor({2, 45, 8}, 13);
    for (bool causal : {false, true}) {
      const std::vector<double> ref = single_gaussian(q, k, v, causal);
      for (const char* mode : {"fixed", "soft_em", "hard_em"})
        for (const char* second : {"shift", "projection"})
          for (double pi1 : {0.0, 0.3, 1.0}) {
            Config c;
            c.mode = mode;
            c.second_key = second;
            c.pi1 = pi1;
            c.key2_scale = 0.0;
            c.causal = causal;
            c.em_steps = 3;
            for (bool traced : {false, true}) {
              const Run run = run_mgk(q, k, v, c, traced);
              const double e = test::max_relative_error(run.out.data(), ref.data(), run.out.size());
              QVERIFY2(e < 1e-5, qPrintable(QString("%1 %2 π1=%3 traced=%4: %5").arg(mode).arg(second).arg(pi1).arg(traced).arg(e)));
            }
          }
    }
  }

  // Keys of equal norm: -‖q - k‖²/2σ² = q·k/σ² + terms constant in j, so single-Gaussian attention
  // is softmax(q·k/σ²) = softmax(q·k/√d): the registry's exact softmax, weights and output.
  void equal_norm_keys_give_softmax() {
    const Tensor q = random_tensor({2, 60, 16}, 21), v = random_tensor({2, 60, 8}, 23);
    Tensor k = random_tensor({2, 60, 16}, 22);
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t j = 0; j < 60; ++j) k.matrix(h).row(j) *= 3.0f / k.matrix(h).row(j).norm();
    for (bool causal : {false, true}) {
      AttentionInput in{q, k, v, causal, nullptr, nullptr, 0};
      Trace exact;
      const Tensor exact_out = run_attention(Registry::builtin().get("softmax"), in, &exact);
      Config c;
      c.key2_scale = 0.0;
      c.causal = causal;
      const Run fast = run_mgk(q, k, v, c, false), traced = run_mgk(q, k, v, c, true);
      QVERIFY2(max_abs_diff(fast.out, exact_out) < 1e-5, qPrintable(QString::number(max_abs_diff(fast.out, exact_out))));
      QVERIFY(max_abs_diff(traced.out, exact_out) < 1e-5);
      QVERIFY(max_abs_diff(traced.trace.weights, exact.weights) < 1e-5);
    }
  }

  // Rows over visible keys sum to 1; hidden keys exactly 0; component1 + component2 = weights; π1 = 1
  // leaves component 2 empty; responsibilities and π lie in [0, 1]; π steps start at pi1.
  void rows_components_and_pi() {
    const Tensor q = random_tensor({2, 64, 16}, 31), k = random_tensor({2, 64, 16}, 32), v = random_tensor({2, 64, 8}, 33);
    std::vector<std::uint8_t> padding(64, 0);
    padding[0] = padding[33] = 1;
    for (const char* mode : {"fixed", "soft_em", "hard_em"})
      for (bool causal : {false, true}) {
        Config c;
        c.mode = mode;
        c.causal = causal;
        c.em_steps = 3;
        const Run run = run_mgk(q, k, v, c, true, &padding);
        const auto& e = run.data<MgkExtras>();
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t i = 0; i < 64; ++i) {
            double sum = 0.0;
            bool any = false;
            for (std::int64_t j = 0; j < 64; ++j) {
              const float w = run.trace.weights.at(h, i, j);
              if (!key_visible(i, j, causal, &padding)) QCOMPARE(w, 0.0f);
              else any = true;
              QVERIFY(w >= 0.0f);
              QVERIFY(std::abs(e.component1.at(h, i, j) + e.component2.at(h, i, j) - w) < 1e-6f);
              sum += w;
            }
            QVERIFY(any ? std::abs(sum - 1.0) < 1e-5 : sum == 0.0);
          }
        for (std::int64_t i = 0; i < e.pi.size(); ++i) {
          QVERIFY(e.pi.data()[i] >= 0.0f && e.pi.data()[i] <= 1.0f);
          QVERIFY(e.responsibility.data()[i] >= 0.0f && e.responsibility.data()[i] <= 1.0f);
        }
        const std::int64_t steps = std::string(mode) == "soft_em" ? 3 : 0;
        QCOMPARE(e.pi_steps.shape(), (Shape{2, steps + 1, 64}));
        if (std::string(mode) != "hard_em") {
          for (std::int64_t j = 0; j < 64; ++j) {
            QCOMPARE(e.pi_steps.at(1, 0, j), 0.3f);
            QCOMPARE(e.pi_steps.at(1, steps, j), e.pi.at(1, j));
          }
        }
      }
    Config c;
    c.pi1 = 1.0;
    const Run only_first = run_mgk(q, k, v, c, true);
    for (std::int64_t i = 0; i < only_first.data<MgkExtras>().component2.size(); ++i) QCOMPARE(only_first.data<MgkExtras>().component2.data()[i], 0.0f);
  }

  // Changing token j (q, k, v) leaves earlier outputs bit-identical in every π mode, including
  // soft-EM whose π(j') only averages queries i <= j'.
  void causal_never_looks_ahead() {
    const Tensor q = random_tensor({2, 300, 16}, 41), k = random_tensor({2, 300, 16}, 42), v = random_tensor({2, 300, 8}, 43);
    for (const char* mode : {"fixed", "soft_em", "hard_em"})
      for (std::int64_t j : {0, 1, 64, 256, 299}) {
        Tensor q2 = q, k2 = k, v2 = v;
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t c = 0; c < 16; ++c) {
            q2.at(h, j, c) -= 1.0f;
            k2.at(h, j, c) += 2.0f;
            if (c < 8) v2.at(h, j, c) = 5.0f;
          }
        Config c;
        c.mode = mode;
        c.causal = true;
        c.em_steps = 2;
        for (bool traced : {false, true}) {
          const Run a = run_mgk(q, k, v, c, traced), b = run_mgk(q2, k2, v2, c, traced);
          for (std::int64_t h = 0; h < 2; ++h) {
            QVERIFY2(head_rows_identical(a.out, b.out, h, j), qPrintable(QString("%1 j=%2 traced=%3").arg(mode).arg(j).arg(traced)));
            if (traced) QVERIFY(head_rows_identical(a.trace.weights, b.trace.weights, h, j));
          }
          QVERIFY(max_abs_diff(a.out, b.out) > 1e-4);
        }
      }
  }

  // Seeds fix the second key; the extras name it; key2_scale scales it.
  void second_key_is_seeded() {
    const Tensor q = random_tensor({2, 10, 8}, 51), k = random_tensor({2, 10, 8}, 52), v = random_tensor({2, 10, 4}, 53);
    Config c;
    const Run a = run_mgk(q, k, v, c, true), b = run_mgk(q, k, v, c, true);
    QVERIFY(max_abs_diff(a.data<MgkExtras>().key_shift, b.data<MgkExtras>().key_shift) == 0.0);
    QCOMPARE(a.data<MgkExtras>().key_shift.shape(), (Shape{2, 8}));
    QVERIFY(a.data<MgkExtras>().key_projection.empty());
    c.seed = 10;
    QVERIFY(max_abs_diff(a.data<MgkExtras>().key_shift, run_mgk(q, k, v, c, true).data<MgkExtras>().key_shift) > 0.05);
    c.second_key = "projection";
    const Run p = run_mgk(q, k, v, c, true);
    QCOMPARE(p.data<MgkExtras>().key_projection.shape(), (Shape{2, 8, 8}));
    QVERIFY(p.data<MgkExtras>().key_shift.empty());
    QVERIFY(std::abs(p.data<MgkExtras>().sigma2 - std::sqrt(8.0)) < 1e-6);
    QVERIFY(a.trace.extras->to_json().at("component1").size() == 2);
  }

  void parameter_errors_name_the_range() {
    Params p(Registry::builtin().get("mgk").spec().params);
    EXPECT_ERROR(ParamError, p.set("pi1", 1.5), "pi1");
    EXPECT_ERROR(ParamError, p.set("em_steps", std::int64_t{0}), "em_steps");
    EXPECT_ERROR(ParamError, p.set("pi_mode", std::string("em")), "pi_mode");
  }
};

QTEST_GUILESS_MAIN(TestMgk)
#include "test_mgk.moc"
