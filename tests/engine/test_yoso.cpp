// YOSO against independent references written here: the expected mode against a naive
// double-precision loop of the normalised kernel output; the sampled kernel against collisions
// counted here from the traced codes; single-hash collision frequency over many seeded draws
// against the closed form (1 - θ/π)^τ within binomial error; the sampled output converging to
// the expected one with a log-log slope near -1/2; symmetry and unit diagonal when Q = K;
// causal zeros and bit-identical earlier outputs; fast path equal to the traced one; the error
// curve and angle bins recomputed here; parameter errors naming the range.
#include <QtTest>
#include <cmath>
#include <cstring>
#include <numbers>
#include <set>
#include <vector>

#include "attention/registry.h"
#include "attention/yoso.h"
#include "core/memory_meter.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::log_log_slope;
using attnlab::test::random_tensor;

namespace {

struct Config {
  int bits = 8;
  int hashes = 32;
  std::string mode = "sampled";
  bool causal = false;
  std::uint64_t seed = 3;
};

struct Run {
  Tensor out;
  Trace trace;
  const YosoExtras& extras() const { return dynamic_cast<const YosoExtras&>(*trace.extras); }
};

Run run_yoso(const Tensor& q, const Tensor& k, const Tensor& v, const Config& c, bool with_trace,
             const std::vector<std::uint8_t>* padding = nullptr) {
  const Params p = test::params_of("yoso", {{"hash_bits", c.bits}, {"n_hashes", c.hashes}, {"mode", c.mode}});
  AttentionInput in{q, k, v, c.causal, padding, &p, c.seed};
  Run run;
  run.out = run_attention(Registry::builtin().get("yoso"), in, with_trace ? &run.trace : nullptr);
  return run;
}

bool visible(std::int64_t i, std::int64_t j, bool causal, const std::vector<std::uint8_t>* padding) {
  return !(causal && j > i) && !(padding && (*padding)[static_cast<std::size_t>(j)]);
}

double norm_of(const Tensor& t, std::int64_t h, std::int64_t i) {
  double s = 0.0;
  for (std::int64_t c = 0; c < t.dim(2); ++c) s += static_cast<double>(t.at(h, i, c)) * t.at(h, i, c);
  return std::sqrt(s);
}

struct Reference {
  std::vector<double> kernel;  // [H, Lq, Lk]
  std::vector<double> out;     // [H, Lq, dv]
};

// The expected kernel and the normalised output, from the definition, in double precision.
Reference naive_expected(const Tensor& q, const Tensor& k, const Tensor& v, int bits, bool causal,
                         const std::vector<std::uint8_t>* padding) {
  const auto H = q.dim(0), Lq = q.dim(1), Lk = k.dim(1), d = q.dim(2), dv = v.dim(2);
  Reference ref{std::vector<double>(static_cast<std::size_t>(H * Lq * Lk), 0.0),
                std::vector<double>(static_cast<std::size_t>(H * Lq * dv), 0.0)};
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < Lq; ++i) {
      std::vector<double> y(static_cast<std::size_t>(dv), 0.0);
      for (std::int64_t j = 0; j < Lk; ++j) {
        if (!visible(i, j, causal, padding)) continue;
        double dot = 0.0;
        for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(q.at(h, i, c)) * k.at(h, j, c);
        const double cosine = std::clamp(dot / (norm_of(q, h, i) * norm_of(k, h, j)), -1.0, 1.0);
        const double b = std::pow(1.0 - std::acos(cosine) / std::numbers::pi, bits);
        ref.kernel[static_cast<std::size_t>((h * Lq + i) * Lk + j)] = b;
        for (std::int64_t c = 0; c < dv; ++c) y[static_cast<std::size_t>(c)] += b * v.at(h, j, c);
      }
      double n = 0.0;
      for (double x : y) n += x * x;
      n = std::max(std::sqrt(n), 1e-12);
      for (std::int64_t c = 0; c < dv; ++c) ref.out[static_cast<std::size_t>((h * Lq + i) * dv + c)] = y[static_cast<std::size_t>(c)] / n;
    }
  return ref;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double worst = 0.0;
  for (std::int64_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a.data()[i]) - b.data()[i]));
  return worst;
}

// Two unit vectors in R^d at angle `angle` (in the plane of the first two axes).
void pair_at_angle(Tensor& q, Tensor& k, std::int64_t h, double angle) {
  for (std::int64_t c = 0; c < q.dim(2); ++c) q.at(h, 0, c) = k.at(h, 0, c) = 0.0f;
  q.at(h, 0, 0) = 1.0f;
  k.at(h, 0, 0) = static_cast<float>(std::cos(angle));
  k.at(h, 0, 1) = static_cast<float>(std::sin(angle));
}

}  // namespace

class TestYoso : public QObject {
  Q_OBJECT

 private slots:
  void schema_and_defaults() {
    const Params p(Registry::builtin().get("yoso").spec().params);
    QCOMPARE(p.get_int("hash_bits"), std::int64_t{8});
    QCOMPARE(p.get_int("n_hashes"), std::int64_t{32});
    QCOMPARE(p.get_choice("mode"), std::string("sampled"));
  }

  // Codes lie in [0, 2^τ), use more than one value, do not change when a vector is scaled by
  // a positive factor; the sampled kernel is the collision frequency counted from them.
  void codes_in_range_and_kernel_counts_collisions() {
    for (int bits : {1, 5, 16}) {
      const Tensor q = random_tensor({2, 40, 16}, 1), k = random_tensor({2, 30, 16}, 2), v = random_tensor({2, 30, 8}, 3);
      Tensor q_scaled = q;
      for (std::int64_t i = 0; i < q_scaled.size(); ++i) q_scaled.data()[i] *= 3.5f;
      const Config c{bits, 12, "sampled", false, 4};
      const Run run = run_yoso(q, k, v, c, true);
      const Run scaled = run_yoso(q_scaled, k, v, c, true);
      const YosoExtras& e = run.extras();
      QCOMPARE(e.hash_bits(), bits);
      std::set<int> seen;
      for (std::int64_t h = 0; h < 2; ++h)
        for (int t = 0; t < 12; ++t) {
          for (std::int64_t i = 0; i < 40; ++i) {
            QVERIFY(e.query_code(h, t, i) >= 0 && e.query_code(h, t, i) < (1 << bits));
            QCOMPARE(scaled.extras().query_code(h, t, i), e.query_code(h, t, i));
            seen.insert(e.query_code(h, t, i));
          }
          for (std::int64_t j = 0; j < 30; ++j) QVERIFY(e.key_code(h, t, j) >= 0 && e.key_code(h, t, j) < (1 << bits));
        }
      QVERIFY(seen.size() > 1);
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t i = 0; i < 40; ++i)
          for (std::int64_t j = 0; j < 30; ++j) {
            int same = 0;
            for (int t = 0; t < 12; ++t) same += e.query_code(h, t, i) == e.key_code(h, t, j) ? 1 : 0;
            QCOMPARE(e.collisions(h, i, j), same);
            QVERIFY(std::abs(run.trace.weights.at(h, i, j) - same / 12.0) < 1e-6);
          }
    }
  }

  // One hash, many independent draws (heads and seeds): the collision frequency of a fixed pair
  // at angle θ approaches (1 - θ/π)^τ within 4 binomial standard errors.
  void single_hash_collision_frequency_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<double>("angle");
    QTest::newRow("τ=1, 60°") << 1 << std::numbers::pi / 3;
    QTest::newRow("τ=3, 45°") << 3 << std::numbers::pi / 4;
    QTest::newRow("τ=8, 20°") << 8 << std::numbers::pi / 9;
    QTest::newRow("τ=2, 150°") << 2 << 5 * std::numbers::pi / 6;
  }

  void single_hash_collision_frequency() {
    QFETCH(int, bits);
    QFETCH(double, angle);
    const std::int64_t heads = 64;
    Tensor q({heads, 1, 12}), k({heads, 1, 12});
    for (std::int64_t h = 0; h < heads; ++h) pair_at_angle(q, k, h, angle);
    const Tensor v = random_tensor({heads, 1, 4}, 9);
    int trials = 0, hits = 0;
    for (std::uint64_t seed = 0; seed < 60; ++seed) {
      const Run run = run_yoso(q, k, v, Config{bits, 1, "sampled", false, seed * 7919 + 1}, true);
      for (std::int64_t h = 0; h < heads; ++h) {
        ++trials;
        hits += run.trace.weights.at(h, 0, 0) == 1.0f ? 1 : 0;
      }
    }
    const double p = std::pow(1.0 - angle / std::numbers::pi, bits);
    const double freq = static_cast<double>(hits) / trials;
    const double se = std::sqrt(p * (1.0 - p) / trials);
    QVERIFY2(std::abs(freq - p) < 4.0 * se + 1e-9, qPrintable(QString("frequency %1, closed form %2, se %3").arg(freq).arg(p).arg(se)));
    QVERIFY(std::abs(yoso_collision_probability(angle, bits) - p) < 1e-12);
  }

  void expected_mode_matches_naive_loop_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::addColumn<int>("lq");
    QTest::addColumn<int>("lk");
    QTest::newRow("τ=8") << 8 << false << false << 50 << 50;
    QTest::newRow("τ=3 causal") << 3 << true << false << 70 << 70;
    QTest::newRow("τ=12 padded, cross lengths") << 12 << false << true << 33 << 300;
    QTest::newRow("τ=1 causal padded") << 1 << true << true << 65 << 65;
  }

  void expected_mode_matches_naive_loop() {
    QFETCH(int, bits);
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    QFETCH(int, lq);
    QFETCH(int, lk);
    const Tensor q = random_tensor({2, lq, 16}, 11), k = random_tensor({2, lk, 16}, 12), v = random_tensor({2, lk, 8}, 13);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(lk), 0);
    for (int j = 1; j < lk; j += 4) padding[static_cast<std::size_t>(j)] = 1;
    const auto* pad = padded ? &padding : nullptr;
    const Reference ref = naive_expected(q, k, v, bits, causal, pad);
    const Config c{bits, 8, "expected", causal, 1};
    const Run fast = run_yoso(q, k, v, c, false, pad);
    const Run traced = run_yoso(q, k, v, c, true, pad);
    EXPECT_NEAR_REFERENCE(fast.out, ref.out, 2e-5, "fast output");
    EXPECT_NEAR_REFERENCE(traced.out, ref.out, 2e-5, "traced output");
    EXPECT_NEAR_REFERENCE(traced.trace.weights, ref.kernel, 2e-5, "kernel");
    // Outputs are unit rows wherever a key is visible: no softmax denominator.
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t i = 0; i < lq; ++i) QVERIFY(std::abs(norm_of(fast.out, h, i) - 1.0) < 1e-5);
    // The extras hold the same expected kernel, and weights in expected mode are that kernel.
    for (std::int64_t i = 0; i < traced.trace.weights.size(); ++i)
      QCOMPARE(traced.extras().data().expected.data()[i], traced.trace.weights.data()[i]);
  }

  // Q = K: B is symmetric with B_ii = 1 (exact, through the chord formula), and so is B̂.
  void kernel_symmetric_with_unit_diagonal_when_q_equals_k() {
    const Tensor q = random_tensor({2, 60, 16}, 21), v = random_tensor({2, 60, 8}, 22);
    const Run run = run_yoso(q, q, v, Config{8, 16, "sampled", false, 2}, true);
    const YosoExtras& e = run.extras();
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t i = 0; i < 60; ++i) {
        QCOMPARE(e.expected(h, i, i), 1.0f);
        QCOMPARE(e.sampled(h, i, i), 1.0f);
        for (std::int64_t j = 0; j < i; ++j) {
          QVERIFY(std::abs(e.expected(h, i, j) - e.expected(h, j, i)) < 1e-6f);
          QCOMPARE(e.sampled(h, i, j), e.sampled(h, j, i));
        }
      }
  }

  // Sampled output -> expected output as m grows, with error ∝ m^(-1/2).
  void sampled_converges_to_expected() {
    const Tensor q = random_tensor({1, 64, 16}, 31), k = random_tensor({1, 64, 16}, 32), v = random_tensor({1, 64, 8}, 33);
    const Run expected = run_yoso(q, k, v, Config{4, 1, "expected", false, 0}, false);
    std::vector<double> ms, errors;
    for (int m : {4, 16, 64, 256}) {
      double total = 0.0;
      const int seeds = 12;
      for (int s = 0; s < seeds; ++s) {
        const Run sampled = run_yoso(q, k, v, Config{4, m, "sampled", false, static_cast<std::uint64_t>(100 + s)}, false);
        double num = 0.0, den = 0.0;
        for (std::int64_t i = 0; i < sampled.out.size(); ++i) {
          const double d = static_cast<double>(sampled.out.data()[i]) - expected.out.data()[i];
          num += d * d;
          den += static_cast<double>(expected.out.data()[i]) * expected.out.data()[i];
        }
        total += std::sqrt(num / den);
      }
      ms.push_back(m);
      errors.push_back(total / seeds);
    }
    const double slope = log_log_slope(ms, errors);
    QVERIFY2(slope > -0.7 && slope < -0.3, qPrintable(QString("slope %1 (errors %2 .. %3)").arg(slope).arg(errors.front()).arg(errors.back())));
    QVERIFY(errors.back() < 0.25 * errors.front());

    // The kernel error curve of the trace, recomputed here from the codes and the expected kernel.
    const Run traced = run_yoso(q, k, v, Config{4, 256, "sampled", false, 7}, true);
    const YosoExtras& e = traced.extras();
    QCOMPARE(e.data().error_hashes, (std::vector<int>{1, 2, 4, 8, 16, 32, 64, 128, 256}));
    for (std::size_t p = 0; p < e.data().error_hashes.size(); ++p) {
      const int m = e.data().error_hashes[p];
      double num = 0.0, den = 0.0;
      for (std::int64_t i = 0; i < 64; ++i)
        for (std::int64_t j = 0; j < 64; ++j) {
          int same = 0;
          for (int t = 0; t < m; ++t) same += e.query_code(0, t, i) == e.key_code(0, t, j) ? 1 : 0;
          const double b = e.expected(0, i, j);
          num += (static_cast<double>(same) / m - b) * (static_cast<double>(same) / m - b);
          den += b * b;
        }
      const double mine = std::sqrt(num / den);
      QVERIFY2(std::abs(e.relative_error(0, p) - mine) < 1e-5 * std::max(1.0, mine),
               qPrintable(QString("m'=%1: trace %2, here %3").arg(m).arg(e.relative_error(0, p)).arg(mine)));
      QVERIFY(std::abs(e.data().relative_error_all[p] - mine) < 1e-5 * std::max(1.0, mine));  // one head
    }
    std::vector<double> xs, ys;
    for (std::size_t p = 0; p < e.data().error_hashes.size(); ++p) {
      xs.push_back(e.data().error_hashes[p]);
      ys.push_back(e.relative_error(0, p));
    }
    const double kernel_slope = log_log_slope(xs, ys);
    QVERIFY2(kernel_slope > -0.7 && kernel_slope < -0.3, qPrintable(QString("kernel error slope %1").arg(kernel_slope)));
  }

  // The binned collision frequencies: every visible pair counted once, each bin's mean angle
  // inside the bin, its mean closed form close to the closed form at the mean angle, and the
  // empirical frequency close to it for well-filled bins.
  void angle_bins_follow_closed_form() {
    const Tensor q = random_tensor({1, 120, 6}, 41), k = random_tensor({1, 120, 6}, 42), v = random_tensor({1, 120, 4}, 43);
    const Run run = run_yoso(q, k, v, Config{2, 128, "sampled", true, 5}, true);
    const YosoExtras& e = run.extras();
    std::int64_t pairs = 0;
    constexpr int bins = YosoExtras::kAngleBins;
    for (int b = 0; b < bins; ++b) {
      const std::size_t k_index = e.bin_index(0, b);
      const std::int64_t n = e.data().bin_pairs[k_index];
      pairs += n;
      if (n == 0) continue;
      const double lo = std::numbers::pi * b / bins, hi = std::numbers::pi * (b + 1) / bins;
      const double mean_angle = e.data().bin_angle[k_index];
      QVERIFY(mean_angle >= lo - 1e-5 && mean_angle <= hi + 1e-5);
      QVERIFY(std::abs(e.data().bin_expected[k_index] - yoso_collision_probability(mean_angle, 2)) < 0.01);
      if (n >= 200) QVERIFY2(std::abs(e.data().bin_sampled[k_index] - e.data().bin_expected[k_index]) < 0.03,
                             qPrintable(QString("bin %1").arg(b)));
    }
    QCOMPARE(pairs, std::int64_t{120 * 121 / 2});  // causal: j <= i
    QCOMPARE(static_cast<int>(e.data().curve_angle.size()), YosoExtras::kCurvePoints);
    for (int p = 0; p < YosoExtras::kCurvePoints; p += 30)
      QVERIFY(std::abs(e.data().curve_probability[static_cast<std::size_t>(p)] -
                       std::pow(1.0 - e.data().curve_angle[static_cast<std::size_t>(p)] / std::numbers::pi, 2)) < 1e-12);
  }

  void fast_path_equals_traced_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::addColumn<int>("dv");
    QTest::newRow("defaults") << 8 << false << false << 32;
    QTest::newRow("causal") << 6 << true << false << 20;
    QTest::newRow("padded") << 3 << false << true << 17;
    QTest::newRow("causal padded 16 bits") << 16 << true << true << 8;
  }

  void fast_path_equals_traced() {
    QFETCH(int, bits);
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    QFETCH(int, dv);
    const std::int64_t L = 150;
    // Correlated queries and keys so that codes collide often.
    const Tensor base = random_tensor({3, L, 16}, 51);
    Tensor q = base, k = base;
    const Tensor noise = random_tensor({3, L, 16}, 52, 0.5f);
    for (std::int64_t i = 0; i < k.size(); ++i) k.data()[i] += noise.data()[i];
    const Tensor v = random_tensor({3, L, dv}, 53);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(L), 0);
    for (std::int64_t j = 3; j < L; j += 7) padding[static_cast<std::size_t>(j)] = 1;
    const auto* pad = padded ? &padding : nullptr;
    const Config c{bits, 24, "sampled", causal, 9};
    const Run fast = run_yoso(q, k, v, c, false, pad);
    const Run traced = run_yoso(q, k, v, c, true, pad);
    QVERIFY2(max_abs_diff(fast.out, traced.out) < 1e-5, qPrintable(QString("diff %1").arg(max_abs_diff(fast.out, traced.out))));
    // Zero weight on later and padded keys, in the weights and in both kernels.
    const YosoExtras& e = traced.extras();
    for (std::int64_t h = 0; h < 3; ++h)
      for (std::int64_t i = 0; i < L; ++i)
        for (std::int64_t j = 0; j < L; ++j)
          if (!visible(i, j, causal, pad)) {
            QCOMPARE(traced.trace.weights.at(h, i, j), 0.0f);
            QCOMPARE(e.sampled(h, i, j), 0.0f);
            QCOMPARE(e.expected(h, i, j), 0.0f);
          }
  }

  // Causal: changing token j leaves every output before j bit-identical, in every path.
  void causal_outputs_before_j_are_bit_identical() {
    const std::int64_t L = 90;
    const Tensor q = random_tensor({2, L, 8}, 61), k = random_tensor({2, L, 8}, 62), v = random_tensor({2, L, 8}, 63);
    for (const std::string mode : {"sampled", "expected"}) {
      for (bool trace : {false, true}) {
        const Config c{5, 16, mode, true, 3};
        const Run base = run_yoso(q, k, v, c, trace);
        for (std::int64_t j : {std::int64_t{1}, std::int64_t{40}, L - 1}) {
          Tensor q2 = q, k2 = k, v2 = v;
          for (std::int64_t h = 0; h < 2; ++h)
            for (std::int64_t c2 = 0; c2 < 8; ++c2) {
              q2.at(h, j, c2) += 2.0f;
              k2.at(h, j, c2) -= 3.0f;
              v2.at(h, j, c2) = v2.at(h, j, c2) * -2.0f + 1.0f;
            }
          const Run changed = run_yoso(q2, k2, v2, c, trace);
          for (std::int64_t h = 0; h < 2; ++h) {
            const auto a = base.out.matrix(h).topRows(j);
            const auto b = changed.out.matrix(h).topRows(j);
            QVERIFY2(std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0,
                     qPrintable(QString("%1: outputs before %2 changed (trace=%3)").arg(mode.c_str()).arg(j).arg(trace)));
          }
        }
      }
    }
  }

  void seeds_select_the_hashes() {
    const Tensor q = random_tensor({1, 30, 8}, 71), k = random_tensor({1, 30, 8}, 72), v = random_tensor({1, 30, 8}, 73);
    const Run a = run_yoso(q, k, v, Config{8, 8, "sampled", false, 1}, true);
    const Run b = run_yoso(q, k, v, Config{8, 8, "sampled", false, 1}, true);
    const Run c = run_yoso(q, k, v, Config{8, 8, "sampled", false, 2}, true);
    QVERIFY(a.extras().data().query_codes == b.extras().data().query_codes);
    QVERIFY(a.extras().data().query_codes != c.extras().data().query_codes);
    QCOMPARE(max_abs_diff(a.out, b.out), 0.0);
  }

  void parameter_errors_name_the_range() {
    Params p(Registry::builtin().get("yoso").spec().params);
    EXPECT_ERROR(ParamError, p.set("hash_bits", std::int64_t{17}), "hash_bits: an integer in [1, 16]");
    EXPECT_ERROR(ParamError, p.set("hash_bits", std::int64_t{0}), "[1, 16]");
    EXPECT_ERROR(ParamError, p.set("n_hashes", std::int64_t{257}), "n_hashes: an integer in [1, 256]");
    EXPECT_ERROR(ParamError, p.set("mode", std::string("exact")), "mode: one of sampled, expected");
  }

  // Without a trace nothing of size L x L is allocated, in either mode.
  void fast_path_has_no_quadratic_buffer() {
    const std::int64_t L = 4096;
    const Tensor q = random_tensor({1, L, 64}, 1), k = random_tensor({1, L, 64}, 2), v = random_tensor({1, L, 64}, 3);
    for (const std::string mode : {"sampled", "expected"}) {
      const std::int64_t extra = test::peak_bytes_of([&] { run_yoso(q, k, v, Config{8, 32, mode, false, 1}, false); });
      QVERIFY2(extra < L * L * 4 / 8, qPrintable(QString("%1 fast path held %2 bytes").arg(mode.c_str()).arg(extra)));
    }
  }

  void honours_cancellation() { test::expect_cancelled_on_both_paths("yoso", random_tensor({2, 16, 8}, 1)); }
};

QTEST_GUILESS_MAIN(TestYoso)
#include "test_yoso.moc"
