// T2R against references written here: the quadratic masked form in double precision, built
// from the seeded W and b the trace exposes (φ recomputed here from its definition); the chunked
// parallel fast path against the recurrent traced path; non-negative weights with unit row sums
// and exact zeros on hidden keys; causal outputs before token j bit-identical when j changes;
// recurrent snapshots equal to the sums recomputed here; the floor = 0 degenerate query; key
// permutation invariance; seeding; parameter errors.
#include <QtTest>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "attention/registry.h"
#include "attention/t2r.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;
using attnlab::test::head_rows_identical;
using attnlab::test::key_visible;
using attnlab::test::max_abs_diff;

namespace {

struct Config {
  std::int64_t features = 32;
  double bias_scale = 0.3;
  double floor = 1e-3;
  bool causal = false;
  std::uint64_t seed = 5;
};

using Run = test::VariantRun;

Run run_t2r(const Tensor& q, const Tensor& k, const Tensor& v, const Config& c, bool with_trace,
            const std::vector<std::uint8_t>* padding = nullptr) {
  const nlohmann::json params = {{"features", c.features}, {"bias_scale", c.bias_scale}, {"floor", c.floor}};
  return test::run_variant("t2r", q, k, v, params, {c.causal, c.seed, with_trace, padding});
}

// φ(x) = max(W x·scale + b, 0) + floor, in double, from the trace's W and b.
std::vector<double> phi(const T2rExtras::Data& e, std::int64_t h, const Tensor& x, std::int64_t row, double scale,
                        double floor) {
  const std::int64_t d = e.head_dim;
  std::vector<double> f(static_cast<std::size_t>(e.features));
  for (std::int64_t a = 0; a < e.features; ++a) {
    double s = 0.0;
    for (std::int64_t c = 0; c < d; ++c) s += static_cast<double>(e.weight.at(h, a, c)) * x.at(h, row, c) * scale;
    s += e.bias.at(h, a);
    f[static_cast<std::size_t>(a)] = std::max(s, 0.0) + floor;
  }
  return f;
}

struct Reference {
  std::vector<double> weights;  // [H, Lq, Lk]
  std::vector<double> out;      // [H, Lq, dv]
};

// The quadratic masked form: K_ij = φ(q_i/√d)·φ(k_j) on visible pairs, rows normalised, times V.
Reference naive(const T2rExtras::Data& e, const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                const std::vector<std::uint8_t>* padding) {
  const auto H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), dv = v.dim(2);
  const double qs = 1.0 / std::sqrt(static_cast<double>(q.dim(2)));
  Reference r{std::vector<double>(static_cast<std::size_t>(H * Lq * Lk), 0.0),
              std::vector<double>(static_cast<std::size_t>(H * Lq * dv), 0.0)};
  for (std::int64_t h = 0; h < H; ++h) {
    std::vector<std::vector<double>> fk;
    for (std::int64_t j = 0; j < Lk; ++j) fk.push_back(phi(e, h, k, j, 1.0, e.floor));
    for (std::int64_t i = 0; i < Lq; ++i) {
      const auto fq = phi(e, h, q, i, qs, e.floor);
      std::vector<double> row(static_cast<std::size_t>(Lk), 0.0);
      double sum = 0.0;
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!key_visible(i, j, causal, padding)) continue;
        row[static_cast<std::size_t>(j)] = std::inner_product(fq.begin(), fq.end(), fk[static_cast<std::size_t>(j)].begin(), 0.0);
        sum += row[static_cast<std::size_t>(j)];
      }
      if (sum <= 0.0) continue;
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

class TestT2r : public QObject {
  Q_OBJECT

 private slots:
  void schema_and_defaults() {
    const Params p(Registry::builtin().get("t2r").spec().params);
    QCOMPARE(p.get_int("features"), std::int64_t{64});
    QCOMPARE(p.get_float("bias_scale"), 0.0);
    QCOMPARE(p.get_float("floor"), 1e-3);
  }

  void matches_quadratic_masked_form_data() {
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::addColumn<int>("features");
    QTest::newRow("non-causal") << false << false << 90 << 90 << 32;
    QTest::newRow("causal, 3 blocks") << true << false << 150 << 150 << 32;
    QTest::newRow("causal padded") << true << true << 130 << 130 << 7;
    QTest::newRow("non-causal padded, cross lengths") << false << true << 37 << 300 << 64;
  }

  void matches_quadratic_masked_form() {
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    QFETCH(int, lq);
    QFETCH(int, lk);
    QFETCH(int, features);
    const Tensor q = random_tensor({2, lq, 16}, 1), k = random_tensor({2, lk, 16}, 2), v = random_tensor({2, lk, 8}, 3);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(lk), 0);
    for (int j = 2; j < lk; j += 5) padding[static_cast<std::size_t>(j)] = 1;
    const auto* pad = padded ? &padding : nullptr;
    Config c;
    c.causal = causal;
    c.features = features;
    const Run fast = run_t2r(q, k, v, c, false, pad);
    const Run traced = run_t2r(q, k, v, c, true, pad);
    const Reference ref = naive(traced.data<T2rExtras>(), q, k, v, causal, pad);
    const double fast_err = test::max_relative_error(fast.out.data(), ref.out.data(), fast.out.size());
    const double traced_err = test::max_relative_error(traced.out.data(), ref.out.data(), traced.out.size());
    const double weight_err = test::max_relative_error(traced.trace.weights.data(), ref.weights.data(), traced.trace.weights.size());
    QVERIFY2(fast_err < 1e-5, qPrintable(QString("chunked output error %1").arg(fast_err)));
    QVERIFY2(traced_err < 1e-5, qPrintable(QString("recurrent output error %1").arg(traced_err)));
    QVERIFY2(weight_err < 1e-5, qPrintable(QString("weights error %1").arg(weight_err)));
  }

  // The chunked parallel form (fast path) and the recurrent form (traced path) agree to 1e-5 over
  // many blocks, and the implied matrix reproduces the output.
  void parallel_equals_recurrent() {
    for (bool causal : {true, false}) {
      const Tensor q = random_tensor({3, 333, 24}, 7), k = random_tensor({3, 333, 24}, 8), v = random_tensor({3, 333, 12}, 9);
      Config c;
      c.causal = causal;
      c.features = 64;
      const Run fast = run_t2r(q, k, v, c, false);
      const Run traced = run_t2r(q, k, v, c, true);
      const double diff = max_abs_diff(fast.out, traced.out);
      QVERIFY2(diff < 1e-5, qPrintable(QString("chunked vs recurrent %1").arg(diff)));
      double wv = 0.0;
      for (std::int64_t h = 0; h < 3; ++h) {
        const RowMatrix prod = traced.trace.weights.matrix(h) * v.matrix(h);
        wv = std::max(wv, static_cast<double>((prod - traced.out.matrix(h)).cwiseAbs().maxCoeff()));
      }
      QVERIFY2(wv < 1e-5, qPrintable(QString("W·V vs out %1").arg(wv)));
    }
  }

  // φ >= 0 everywhere, hence weights >= 0; rows over visible keys sum to 1; hidden keys get exact 0.
  void weights_nonnegative_rows_sum_to_one() {
    const Tensor q = random_tensor({2, 70, 16}, 11), k = random_tensor({2, 70, 16}, 12), v = random_tensor({2, 70, 4}, 13);
    std::vector<std::uint8_t> padding(70, 0);
    padding[3] = padding[40] = 1;
    for (bool causal : {false, true}) {
      for (double floor : {0.0, 1e-3}) {
        Config c;
        c.causal = causal;
        c.floor = floor;
        c.bias_scale = 0.5;
        const Run run = run_t2r(q, k, v, c, true, &padding);
        const auto& e = run.data<T2rExtras>();
        for (std::int64_t i = 0; i < e.query_features.size(); ++i) QVERIFY(e.query_features.data()[i] >= floor);
        for (std::int64_t i = 0; i < e.key_features.size(); ++i) QVERIFY(e.key_features.data()[i] >= floor);
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t i = 0; i < 70; ++i) {
            double sum = 0.0;
            bool any_visible = false;
            for (std::int64_t j = 0; j < 70; ++j) {
              const float w = run.trace.weights.at(h, i, j);
              QVERIFY(w >= 0.0f);
              if (!key_visible(i, j, causal, &padding)) QCOMPARE(w, 0.0f);
              else any_visible = true;
              sum += w;
            }
            // With a floor every visible row has mass; without one a row may be empty (then 0).
            if (any_visible && (floor > 0.0 || sum > 0.0)) QVERIFY2(std::abs(sum - 1.0) < 1e-5, qPrintable(QString::number(sum)));
          }
      }
    }
  }

  // Changing token j (its q, k and v) leaves the outputs of queries i < j bit-identical, in the
  // chunked path (j inside a block and on a block boundary) and in the traced path.
  void causal_never_looks_ahead() {
    const Tensor q = random_tensor({2, 160, 16}, 21), k = random_tensor({2, 160, 16}, 22), v = random_tensor({2, 160, 8}, 23);
    for (std::int64_t j : {0, 1, 64, 70, 159}) {
      Tensor q2 = q, k2 = k, v2 = v;
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t c = 0; c < 16; ++c) {
          q2.at(h, j, c) += 1.5f;
          k2.at(h, j, c) -= 2.0f;
          if (c < 8) v2.at(h, j, c) *= -3.0f;
        }
      Config c;
      c.causal = true;
      for (bool traced : {false, true}) {
        const Run a = run_t2r(q, k, v, c, traced), b = run_t2r(q2, k2, v2, c, traced);
        for (std::int64_t h = 0; h < 2; ++h) {
          QVERIFY2(head_rows_identical(a.out, b.out, h, j), qPrintable(QString("j=%1 traced=%2").arg(j).arg(traced)));
          if (traced) QVERIFY(head_rows_identical(a.trace.weights, b.trace.weights, h, j));
        }
        // The change is seen from j on.
        if (j < 159) QVERIFY(std::abs(a.out.at(0, j, 0) - b.out.at(0, j, 0)) > 0.0f || std::abs(a.out.at(0, j + 1, 1) - b.out.at(0, j + 1, 1)) > 0.0f);
      }
    }
  }

  // Each snapshot holds S = Σ_{j<=step, visible} φ(k_j) v_jᵀ and z = Σ φ(k_j), recomputed here;
  // for L > 512 the snapshot steps are evenly spaced and end at L - 1.
  void recurrent_snapshots_hold_the_sums() {
    const std::int64_t L = 600;
    const Tensor q = random_tensor({1, L, 8}, 31), k = random_tensor({1, L, 8}, 32), v = random_tensor({1, L, 3}, 33);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(L), 0);
    padding[5] = padding[100] = 1;
    Config c;
    c.features = 6;
    c.causal = true;
    const Run run = run_t2r(q, k, v, c, true, &padding);
    const auto& e = run.data<T2rExtras>();
    const RecurrentStates& rs = dynamic_cast<const RecurrentTraceExtras&>(*run.trace.extras).recurrent();
    QCOMPARE(rs.steps, RecurrentStates::snapshot_steps(L));
    QCOMPARE(static_cast<std::int64_t>(rs.steps.size()), RecurrentStates::kMaxSnapshots);
    QCOMPARE(rs.steps.back(), L - 1);
    QCOMPARE(rs.states.shape(), (Shape{1, RecurrentStates::kMaxSnapshots, 6, 3}));
    QVERIFY(rs.retrieval_error.empty());
    std::vector<double> s(18, 0.0), z(6, 0.0);
    std::size_t next = 0;
    double worst = 0.0;
    for (std::int64_t t = 0; t < L; ++t) {
      if (!padding[static_cast<std::size_t>(t)]) {
        const auto f = phi(e, 0, k, t, 1.0, e.floor);
        for (int a = 0; a < 6; ++a) {
          z[static_cast<std::size_t>(a)] += f[static_cast<std::size_t>(a)];
          for (int b = 0; b < 3; ++b) s[static_cast<std::size_t>(a * 3 + b)] += f[static_cast<std::size_t>(a)] * v.at(0, t, b);
        }
      }
      if (next < rs.steps.size() && rs.steps[next] == t) {
        for (int a = 0; a < 6; ++a) {
          worst = std::max(worst, std::abs(rs.normalizers.at(0, static_cast<std::int64_t>(next), a) - z[static_cast<std::size_t>(a)]) /
                                      std::max(1.0, z[static_cast<std::size_t>(a)]));
          for (int b = 0; b < 3; ++b) {
            const float got = rs.states.data()[((static_cast<std::int64_t>(next)) * 6 + a) * 3 + b];
            worst = std::max(worst, std::abs(got - s[static_cast<std::size_t>(a * 3 + b)]) / std::max(1.0, std::abs(s[static_cast<std::size_t>(a * 3 + b)])));
          }
        }
        ++next;
      }
    }
    QCOMPARE(next, rs.steps.size());
    // float sums of up to 600 terms against double: rounding grows like the number of terms.
    QVERIFY2(worst < 1e-4, qPrintable(QString("snapshot error %1").arg(worst)));
  }

  // floor = 0 and b = 0: a zero query has φ = 0, so its denominator is 0, its output 0 and its row 0.
  void all_zero_features_give_zero_row() {
    Tensor q = random_tensor({1, 20, 8}, 41);
    const Tensor k = random_tensor({1, 20, 8}, 42), v = random_tensor({1, 20, 4}, 43);
    for (std::int64_t c = 0; c < 8; ++c) q.at(0, 7, c) = 0.0f;
    Config c;
    c.floor = 0.0;
    c.bias_scale = 0.0;
    for (bool causal : {false, true}) {
      c.causal = causal;
      for (bool traced : {false, true}) {
        const Run run = run_t2r(q, k, v, c, traced);
        for (std::int64_t a = 0; a < 4; ++a) QCOMPARE(run.out.at(0, 7, a), 0.0f);
        QVERIFY(std::abs(run.out.at(0, 8, 0)) > 0.0f);
        if (traced) {
          QCOMPARE(run.data<T2rExtras>().denominators.at(0, 7), 0.0f);
          for (std::int64_t j = 0; j < 20; ++j) QCOMPARE(run.trace.weights.at(0, 7, j), 0.0f);
        }
      }
    }
  }

  // Non-causal: permuting keys and values together leaves every output unchanged.
  void non_causal_invariant_to_key_permutation() {
    const Tensor q = random_tensor({2, 30, 16}, 51), k = random_tensor({2, 50, 16}, 52), v = random_tensor({2, 50, 8}, 53);
    Tensor kp = k, vp = v;
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t j = 0; j < 50; ++j) {
        kp.matrix(h).row(j) = k.matrix(h).row((j * 17 + 3) % 50);
        vp.matrix(h).row(j) = v.matrix(h).row((j * 17 + 3) % 50);
      }
    const Run a = run_t2r(q, k, v, Config{}, false), b = run_t2r(q, kp, vp, Config{}, false);
    QVERIFY(max_abs_diff(a.out, b.out) < 1e-5);
  }

  // The same seed draws the same W and b (same output bit for bit); another seed draws others.
  void seeded_and_deterministic() {
    const Tensor q = random_tensor({2, 40, 16}, 61), k = random_tensor({2, 40, 16}, 62), v = random_tensor({2, 40, 8}, 63);
    Config c;
    const Run a = run_t2r(q, k, v, c, true), b = run_t2r(q, k, v, c, true);
    QVERIFY(std::memcmp(a.out.data(), b.out.data(), static_cast<std::size_t>(a.out.size()) * sizeof(float)) == 0);
    QVERIFY(std::memcmp(a.data<T2rExtras>().weight.data(), b.data<T2rExtras>().weight.data(),
                        static_cast<std::size_t>(a.data<T2rExtras>().weight.size()) * sizeof(float)) == 0);
    c.seed = 6;
    const Run other = run_t2r(q, k, v, c, true);
    QVERIFY(max_abs_diff(a.data<T2rExtras>().weight, other.data<T2rExtras>().weight) > 0.1);
    // Heads draw different maps.
    QVERIFY(std::abs(a.data<T2rExtras>().weight.at(0, 0, 0) - a.data<T2rExtras>().weight.at(1, 0, 0)) > 0.0f);
    QCOMPARE(a.data<T2rExtras>().weight.shape(), (Shape{2, 32, 16}));
    QCOMPARE(a.data<T2rExtras>().bias.shape(), (Shape{2, 32}));
    QVERIFY(a.trace.extras->to_json().at("recurrent").at("states").size() == 2);
  }

  void parameter_errors_name_the_range() {
    Params p(Registry::builtin().get("t2r").spec().params);
    EXPECT_ERROR(ParamError, p.set("features", std::int64_t{0}), "features");
    EXPECT_ERROR(ParamError, p.set("features", std::int64_t{2000}), "1024");
    EXPECT_ERROR(ParamError, p.set("floor", 0.5), "floor");
  }
};

QTEST_GUILESS_MAIN(TestT2r)
#include "test_t2r.moc"
