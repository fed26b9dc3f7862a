// Exact softmax attention against an independent naive loop in double precision, plus the
// properties that must hold: rows sum to 1, shift invariance of logits, causal independence
// (bit-identical outputs), Q = 0 gives the (prefix) mean of V, key permutation invariance,
// and the fast blockwise path equal to the dense traced path.
#include <QtTest>
#include <cmath>
#include <numeric>
#include <vector>

#include "attention/registry.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

struct Reference {
  std::vector<double> out;      // [H, Lq, dv]
  std::vector<double> weights;  // [H, Lq, Lk]
};

// The textbook definition, written independently of the engine: double precision, one query at
// a time, masked keys skipped; a query with no visible key gets zero output and zero weights.
Reference naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                          const std::vector<std::uint8_t>* padding) {
  const auto H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), d = q.dim(2), dv = v.dim(2);
  Reference ref{std::vector<double>(static_cast<std::size_t>(H * Lq * dv), 0.0),
                std::vector<double>(static_cast<std::size_t>(H * Lq * Lk), 0.0)};
  for (std::int64_t h = 0; h < H; ++h) {
    for (std::int64_t i = 0; i < Lq; ++i) {
      std::vector<double> logit(static_cast<std::size_t>(Lk), 0.0);
      std::vector<bool> visible(static_cast<std::size_t>(Lk), true);
      double max_logit = -1e300;
      for (std::int64_t j = 0; j < Lk; ++j) {
        if ((causal && j > i) || (padding && (*padding)[static_cast<std::size_t>(j)])) {
          visible[static_cast<std::size_t>(j)] = false;
          continue;
        }
        double dot = 0.0;
        for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(q.at(h, i, c)) * k.at(h, j, c);
        logit[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
        max_logit = std::max(max_logit, logit[static_cast<std::size_t>(j)]);
      }
      double total = 0.0;
      for (std::int64_t j = 0; j < Lk; ++j)
        if (visible[static_cast<std::size_t>(j)]) total += std::exp(logit[static_cast<std::size_t>(j)] - max_logit);
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!visible[static_cast<std::size_t>(j)]) continue;
        const double w = std::exp(logit[static_cast<std::size_t>(j)] - max_logit) / total;
        ref.weights[static_cast<std::size_t>((h * Lq + i) * Lk + j)] = w;
        for (std::int64_t c = 0; c < dv; ++c) ref.out[static_cast<std::size_t>((h * Lq + i) * dv + c)] += w * v.at(h, j, c);
      }
    }
  }
  return ref;
}

struct Run {
  Tensor out;
  Trace trace;
};

Run run_softmax(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, bool with_trace,
                const std::vector<std::uint8_t>* padding = nullptr) {
  const Attention& softmax = Registry::builtin().get("softmax");
  Run run;
  run.out = run_attention(softmax, AttentionInput{q, k, v, causal, padding}, with_trace ? &run.trace : nullptr);
  return run;
}

}  // namespace

class TestSoftmaxAttention : public QObject {
  Q_OBJECT

 private slots:
  void matches_naive_loop_data() {
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::addColumn<int>("dim");
    QTest::addColumn<int>("dv");
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    // Lengths straddle the query block (64) and key block (256) of the fast path.
    QTest::newRow("one token") << 1 << 1 << 1 << 8 << 8 << false << false;
    QTest::newRow("small") << 2 << 7 << 7 << 16 << 16 << false << false;
    QTest::newRow("small causal") << 2 << 7 << 7 << 16 << 16 << true << false;
    QTest::newRow("cross lengths") << 3 << 5 << 70 << 8 << 12 << false << false;
    QTest::newRow("65 causal padded") << 2 << 65 << 65 << 32 << 32 << true << true;
    QTest::newRow("300 keys padded") << 1 << 130 << 300 << 24 << 8 << false << true;
    QTest::newRow("600 causal") << 2 << 600 << 600 << 32 << 32 << true << false;
    QTest::newRow("512 x 8 heads") << 8 << 512 << 512 << 32 << 32 << false << false;
  }

  void matches_naive_loop() {
    QFETCH(int, heads);
    QFETCH(int, lq);
    QFETCH(int, lk);
    QFETCH(int, dim);
    QFETCH(int, dv);
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    const Tensor q = random_tensor({heads, lq, dim}, 1, 1.5f);
    const Tensor k = random_tensor({heads, lk, dim}, 2, 1.5f);
    const Tensor v = random_tensor({heads, lk, dv}, 3);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(lk), 0);
    if (padded) {
      for (int j = 0; j < lk; j += 3) padding[static_cast<std::size_t>(j)] = 1;
    }
    const auto* pad = padded ? &padding : nullptr;
    const Reference ref = naive_attention(q, k, v, causal, pad);

    const Run dense = run_softmax(q, k, v, causal, true, pad);
    const Run fast = run_softmax(q, k, v, causal, false, pad);
    QCOMPARE(dense.out.shape(), (Shape{heads, lq, dv}));
    QCOMPARE(fast.out.shape(), (Shape{heads, lq, dv}));
    QCOMPARE(dense.trace.weights.shape(), (Shape{heads, lq, lk}));
    const double out_err_dense = test::max_relative_error(dense.out.data(), ref.out.data(), dense.out.size());
    const double out_err_fast = test::max_relative_error(fast.out.data(), ref.out.data(), fast.out.size());
    const double w_err = test::max_relative_error(dense.trace.weights.data(), ref.weights.data(), dense.trace.weights.size());
    QVERIFY2(out_err_dense < 1e-5, qPrintable(QString("dense output error %1").arg(out_err_dense)));
    QVERIFY2(out_err_fast < 1e-5, qPrintable(QString("blockwise output error %1").arg(out_err_fast)));
    QVERIFY2(w_err < 1e-6, qPrintable(QString("weight error %1").arg(w_err)));
  }

  void rows_sum_to_one() {
    const Tensor q = random_tensor({4, 50, 16}, 11, 3.0f);
    const Tensor k = random_tensor({4, 50, 16}, 12, 3.0f);
    const Tensor v = random_tensor({4, 50, 16}, 13);
    for (bool causal : {false, true}) {
      const Run run = run_softmax(q, k, v, causal, true);
      for (std::int64_t h = 0; h < 4; ++h) {
        for (std::int64_t i = 0; i < 50; ++i) {
          double sum = 0.0;
          for (std::int64_t j = 0; j < 50; ++j) {
            const float w = run.trace.weights.at(h, i, j);
            QVERIFY(w >= 0.0f);
            if (causal && j > i) QCOMPARE(w, 0.0f);
            sum += w;
          }
          QVERIFY2(std::abs(sum - 1.0) < 1e-5, qPrintable(QString("row %1 sums to %2").arg(i).arg(sum)));
        }
      }
    }
  }

  // Adding the same vector c to every key shifts each query's logits by the constant q·c/√d,
  // which softmax must ignore.
  void constant_logit_shift_changes_nothing() {
    const Tensor q = random_tensor({2, 40, 16}, 21);
    Tensor k = random_tensor({2, 40, 16}, 22);
    const Tensor v = random_tensor({2, 40, 16}, 23);
    const Run before = run_softmax(q, k, v, false, false);
    const Tensor shift = random_tensor({16}, 24, 2.0f);
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t j = 0; j < 40; ++j)
        for (std::int64_t c = 0; c < 16; ++c) k.at(h, j, c) += shift.data()[c];
    const Run after = run_softmax(q, k, v, false, false);
    for (std::int64_t i = 0; i < before.out.size(); ++i) QVERIFY(std::abs(before.out.data()[i] - after.out.data()[i]) < 1e-5f);
  }

  // Causal: changing token j (its q, k and v) leaves every output before j bit-identical.
  void causal_outputs_before_j_are_bit_identical() {
    const int L = 300;
    const Tensor q = random_tensor({2, L, 16}, 31);
    const Tensor k = random_tensor({2, L, 16}, 32);
    const Tensor v = random_tensor({2, L, 16}, 33);
    for (bool trace : {false, true}) {
      const Run base = run_softmax(q, k, v, true, trace);
      for (int j : {1, 63, 64, 200, L - 1}) {
        Tensor q2 = q, k2 = k, v2 = v;
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t c = 0; c < 16; ++c) {
            q2.at(h, j, c) += 5.0f;
            k2.at(h, j, c) -= 7.0f;
            v2.at(h, j, c) *= -3.0f;
          }
        const Run changed = run_softmax(q2, k2, v2, true, trace);
        for (std::int64_t h = 0; h < 2; ++h) {
          const auto a = base.out.matrix(h).topRows(j);
          const auto b = changed.out.matrix(h).topRows(j);
          QVERIFY2(std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0,
                   qPrintable(QString("outputs before %1 changed (trace=%2)").arg(j).arg(trace)));
          // ...and the output at j itself does change.
          QVERIFY(base.out.matrix(h).row(j) != changed.out.matrix(h).row(j));
        }
      }
    }
  }

  void zero_queries_give_mean_of_values() {
    const int L = 90;
    const Tensor q({1, L, 8});
    const Tensor k = random_tensor({1, L, 8}, 41);
    const Tensor v = random_tensor({1, L, 5}, 42);
    for (bool causal : {false, true}) {
      for (bool trace : {false, true}) {
        const Run run = run_softmax(q, k, v, causal, trace);
        for (std::int64_t i = 0; i < L; ++i) {
          const std::int64_t n = causal ? i + 1 : L;
          for (std::int64_t c = 0; c < 5; ++c) {
            double mean = 0.0;
            for (std::int64_t j = 0; j < n; ++j) mean += v.at(0, j, c);
            mean /= static_cast<double>(n);
            QVERIFY(std::abs(run.out.at(0, i, c) - mean) < 1e-5);
          }
        }
      }
    }
  }

  void key_permutation_invariance() {
    const Tensor q = random_tensor({2, 30, 8}, 51);
    const Tensor k = random_tensor({2, 30, 8}, 52);
    const Tensor v = random_tensor({2, 30, 8}, 53);
    std::vector<int> perm(30);
    std::iota(perm.begin(), perm.end(), 0);
    Rng rng(54);
    for (int i = 29; i > 0; --i) std::swap(perm[static_cast<std::size_t>(i)], perm[rng.below(static_cast<std::uint64_t>(i + 1))]);
    Tensor kp({2, 30, 8}), vp({2, 30, 8});
    for (std::int64_t h = 0; h < 2; ++h)
      for (int j = 0; j < 30; ++j) {
        kp.matrix(h).row(j) = k.matrix(h).row(perm[static_cast<std::size_t>(j)]);
        vp.matrix(h).row(j) = v.matrix(h).row(perm[static_cast<std::size_t>(j)]);
      }
    const Run a = run_softmax(q, k, v, false, false);
    const Run b = run_softmax(q, kp, vp, false, false);
    for (std::int64_t i = 0; i < a.out.size(); ++i) QVERIFY(std::abs(a.out.data()[i] - b.out.data()[i]) < 1e-5f);
  }

  void fully_padded_query_gets_zero_output() {
    const Tensor q = random_tensor({1, 4, 8}, 61);
    const Tensor k = random_tensor({1, 4, 8}, 62);
    const Tensor v = random_tensor({1, 4, 8}, 63);
    std::vector<std::uint8_t> padding = {1, 0, 0, 0};  // causal query 0 sees only key 0, which is padded
    for (bool trace : {false, true}) {
      const Run run = run_softmax(q, k, v, true, trace, &padding);
      for (std::int64_t c = 0; c < 8; ++c) QCOMPARE(run.out.at(0, 0, c), 0.0f);
      QVERIFY(run.out.matrix(0).row(1).norm() > 0.0f);
      if (trace) QCOMPARE(run.trace.weights.matrix(0).row(0).sum(), 0.0f);
    }
  }

  void rejects_bad_input() {
    const Attention& softmax = Registry::builtin().get("softmax");
    const Tensor q = random_tensor({2, 5, 8}, 1), k = random_tensor({2, 5, 8}, 2), v = random_tensor({2, 5, 8}, 3);
    const Tensor k_dim = random_tensor({2, 5, 4}, 4), k_heads = random_tensor({3, 5, 8}, 5);
    const Tensor k_long = random_tensor({2, 6, 8}, 6), v_long = random_tensor({2, 6, 8}, 7);
    const Tensor flat = random_tensor({5, 8}, 8);
    EXPECT_ERROR(ShapeError, run_attention(softmax, AttentionInput{q, k_dim, v}, nullptr), "head dim");
    EXPECT_ERROR(ShapeError, run_attention(softmax, AttentionInput{q, k_heads, v}, nullptr), "heads");
    EXPECT_ERROR(ShapeError, run_attention(softmax, AttentionInput{q, k_long, v}, nullptr), "same length");
    EXPECT_ERROR(ShapeError, run_attention(softmax, AttentionInput{q, k_long, v_long, true}, nullptr), "causal");
    EXPECT_ERROR(ShapeError, run_attention(softmax, AttentionInput{flat, k, v}, nullptr), "[heads, length, dim]");
    std::vector<std::uint8_t> short_padding(3, 0);
    EXPECT_ERROR(ShapeError, run_attention(softmax, AttentionInput{q, k, v, false, &short_padding}, nullptr), "padding");
    Tensor q_nan = q;
    q_nan.data()[7] = std::nanf("");
    EXPECT_ERROR(ShapeError, run_attention(softmax, AttentionInput{q_nan, k, v}, nullptr), "non-finite");
  }

  void honours_cancellation() {
    const Attention& softmax = Registry::builtin().get("softmax");
    const Tensor q = random_tensor({2, 5, 8}, 1), k = random_tensor({2, 5, 8}, 2), v = random_tensor({2, 5, 8}, 3);
    CancelToken token;
    token.cancel();
    AttentionInput input{q, k, v};
    input.cancel = &token;
    Trace trace;
    QVERIFY_THROWS_EXCEPTION(CancelledError, run_attention(softmax, input, nullptr));
    QVERIFY_THROWS_EXCEPTION(CancelledError, run_attention(softmax, input, &trace));
  }
};

QTEST_GUILESS_MAIN(TestSoftmaxAttention)
#include "test_softmax_attention.moc"
