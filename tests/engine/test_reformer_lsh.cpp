// Reformer LSH attention against references written here, independently of the engine:
//   - the hash (argmax over [xR; −xR] in double) and its invariances: bucket(αx) = bucket(x) for
//     α > 0, bucket(−x) = bucket(x) + n_b/2 (mod n_b);
//   - sort then un-sort is the identity, and the order is the stable (bucket, position) order;
//   - degenerate settings: one chunk covering the sequence equals a dense softmax with logits
//     q·k̂/√d and a −5·10⁴ self score (causal and not); R identical rotations equal one round;
//   - causal: exactly zero weight on later positions, position 0 returns v_0;
//   - the fast path equals the traced path, W·V equals the output, rows sum to one;
//   - the whole procedure against a naive double-precision implementation (its own sort, its own
//     window rule, its own dedup counts and round combination) for several rounds, chunks,
//     chunks_before 0/1/2, causal on/off, dedup on/off, shared QK on/off, padding;
//   - recall of the exact top-k against a direct count; angle view sectors; parameter errors;
//   - the fast path allocates nothing of size L × L.
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "attention/reformer_lsh.h"
#include "attention/registry.h"
#include "core/memory_meter.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

struct Config {
  std::int64_t n_hashes = 2;
  std::int64_t bucket_size = 4;
  std::int64_t n_buckets = 0;
  std::int64_t chunks_before = 1;
  bool shared_qk = true;
  bool dedup = false;
  bool causal = false;
  const std::vector<std::uint8_t>* padding = nullptr;
};

const Attention& lsh() { return Registry::builtin().get("reformer_lsh"); }

Params params_for(const Config& c) {
  return test::params_of("reformer_lsh", {{"n_hashes", c.n_hashes},
                                          {"bucket_size", c.bucket_size},
                                          {"n_buckets", c.n_buckets},
                                          {"chunks_before", c.chunks_before},
                                          {"shared_qk", c.shared_qk},
                                          {"dedup", c.dedup}});
}

std::int64_t buckets_for(const Config& c, std::int64_t L) {
  return c.n_buckets ? c.n_buckets : 2 * std::max<std::int64_t>(1, L / c.bucket_size);
}

// Rotations drawn here (not by the engine): [H, R, d, n_b/2].
Tensor test_rotations(std::int64_t H, std::int64_t R, std::int64_t d, std::int64_t n_buckets, std::uint64_t seed) {
  return random_tensor({H, R, d, n_buckets / 2}, seed);
}

struct Run {
  Tensor out;
  Trace trace;
};

Run run_with(const Config& c, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rotations, bool traced) {
  const Params p = params_for(c);
  const AttentionInput in{q, k, v, c.causal, c.padding, &p, 7};
  Run run;
  run.out = reformer_lsh_forward(in, rotations, traced ? &run.trace : nullptr);
  return run;
}

Run run_seeded(const Config& c, const Tensor& q, const Tensor& k, const Tensor& v, bool traced, std::uint64_t seed = 7) {
  const Params p = params_for(c);
  const AttentionInput in{q, k, v, c.causal, c.padding, &p, seed};
  Run run;
  run.out = run_attention(lsh(), in, traced ? &run.trace : nullptr);
  return run;
}

const ReformerLshExtras& extras_of(const Run& run) {
  const auto* x = dynamic_cast<const ReformerLshExtras*>(run.trace.extras.get());
  if (!x) qFatal("trace without ReformerLshExtras");
  return *x;
}

// ---- the independent reference --------------------------------------------------------------

// argmax over [x·R, −x·R] in double, first index on ties.
int naive_bucket(const std::vector<double>& x, const Tensor& rotations, std::int64_t slice) {
  const auto rot = rotations.matrix(slice);
  const std::int64_t d = rot.rows(), m = rot.cols();
  std::vector<double> both(static_cast<std::size_t>(2 * m));
  for (std::int64_t j = 0; j < m; ++j) {
    double y = 0.0;
    for (std::int64_t c = 0; c < d; ++c) y += x[static_cast<std::size_t>(c)] * rot(c, j);
    both[static_cast<std::size_t>(j)] = y;
    both[static_cast<std::size_t>(m + j)] = -y;
  }
  return static_cast<int>(std::max_element(both.begin(), both.end()) - both.begin());
}

std::vector<double> row_of(const Tensor& t, std::int64_t h, std::int64_t i) {
  std::vector<double> x(static_cast<std::size_t>(t.dim(2)));
  for (std::int64_t c = 0; c < t.dim(2); ++c) x[static_cast<std::size_t>(c)] = t.at(h, i, c);
  return x;
}

struct Naive {
  std::vector<double> out;      // [H, L, dv]
  std::vector<double> weights;  // [H, L, L]
  std::vector<int> counts;      // [H, L, L] rounds in which j is in i's window
  std::vector<double> scores;   // [H, L, L] exact-attention scores; NaN where not allowed
};

// Reformer LSH written as plainly as possible: per round, sort positions with std::stable_sort by
// bucket, give each token its chunk, and let query i see key j in that round when j's chunk is
// one of the chunks_before+1 chunks ending at i's chunk, counted cyclically (a set of chunks).
Naive naive_lsh(const Config& c, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rotations) {
  const std::int64_t H = q.dim(0), L = q.dim(1), d = q.dim(2), dv = v.dim(2), R = c.n_hashes;
  const std::int64_t n_chunks = (L + c.bucket_size - 1) / c.bucket_size;
  const std::int64_t reach = std::min(c.chunks_before, n_chunks - 1);
  const auto idx = [L](std::int64_t h, std::int64_t i, std::int64_t j) { return static_cast<std::size_t>((h * L + i) * L + j); };
  Naive n{std::vector<double>(static_cast<std::size_t>(H * L * dv), 0.0),
          std::vector<double>(static_cast<std::size_t>(H * L * L), 0.0), std::vector<int>(static_cast<std::size_t>(H * L * L), 0),
          std::vector<double>(static_cast<std::size_t>(H * L * L), std::nan(""))};
  for (std::int64_t h = 0; h < H; ++h) {
    std::vector<std::vector<double>> qs, keys, vs;
    for (std::int64_t i = 0; i < L; ++i) {
      qs.push_back(row_of(q, h, i));
      vs.push_back(row_of(v, h, i));
      std::vector<double> key = c.shared_qk ? row_of(q, h, i) : row_of(k, h, i);
      if (c.shared_qk) {
        double norm = 0.0;
        for (double x : key) norm += x * x;
        norm = std::sqrt(norm);
        for (double& x : key) x = norm > 0 ? x / norm : 0.0;
      }
      keys.push_back(key);
    }
    // visible[r][i][j]
    std::vector<std::vector<std::vector<bool>>> visible(static_cast<std::size_t>(R));
    for (std::int64_t r = 0; r < R; ++r) {
      std::vector<int> qb(static_cast<std::size_t>(L)), kb(static_cast<std::size_t>(L));
      for (std::int64_t i = 0; i < L; ++i) {
        qb[static_cast<std::size_t>(i)] = naive_bucket(qs[static_cast<std::size_t>(i)], rotations, h * R + r);
        kb[static_cast<std::size_t>(i)] = c.shared_qk ? qb[static_cast<std::size_t>(i)]
                                                      : naive_bucket(row_of(k, h, i), rotations, h * R + r);
      }
      const auto chunks_of = [&](const std::vector<int>& b) {
        std::vector<int> pos(static_cast<std::size_t>(L));
        std::iota(pos.begin(), pos.end(), 0);
        std::stable_sort(pos.begin(), pos.end(), [&](int a, int bb) { return b[static_cast<std::size_t>(a)] < b[static_cast<std::size_t>(bb)]; });
        std::vector<int> chunk(static_cast<std::size_t>(L));
        for (std::int64_t s = 0; s < L; ++s) chunk[static_cast<std::size_t>(pos[static_cast<std::size_t>(s)])] = static_cast<int>(s / c.bucket_size);
        return chunk;
      };
      const std::vector<int> qc = chunks_of(qb), kc = chunks_of(kb);
      visible[static_cast<std::size_t>(r)].assign(static_cast<std::size_t>(L), std::vector<bool>(static_cast<std::size_t>(L), false));
      for (std::int64_t i = 0; i < L; ++i) {
        for (std::int64_t j = 0; j < L; ++j) {
          bool sees = false;
          for (std::int64_t t = 0; t <= reach; ++t) {
            const std::int64_t chunk = ((qc[static_cast<std::size_t>(i)] - t) % n_chunks + n_chunks) % n_chunks;
            sees = sees || chunk == kc[static_cast<std::size_t>(j)];
          }
          visible[static_cast<std::size_t>(r)][static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = sees;
          if (sees) ++n.counts[idx(h, i, j)];
        }
      }
    }
    for (std::int64_t i = 0; i < L; ++i) {
      const auto allowed = [&](std::int64_t j) {
        return !(c.causal && j > i) && !(c.padding && (*c.padding)[static_cast<std::size_t>(j)]);
      };
      std::vector<double> score(static_cast<std::size_t>(L));
      for (std::int64_t j = 0; j < L; ++j) {
        double dot = 0.0;
        for (std::int64_t e = 0; e < d; ++e) dot += qs[static_cast<std::size_t>(i)][static_cast<std::size_t>(e)] * keys[static_cast<std::size_t>(j)][static_cast<std::size_t>(e)];
        score[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
        if (c.shared_qk && i == j) score[static_cast<std::size_t>(j)] = -5e4;
        if (allowed(j)) n.scores[idx(h, i, j)] = score[static_cast<std::size_t>(j)];
      }
      // Per round: softmax over the visible, allowed keys; then combine by log-sum-exp.
      std::vector<double> lse(static_cast<std::size_t>(R), -INFINITY);
      std::vector<std::vector<double>> p(static_cast<std::size_t>(R), std::vector<double>(static_cast<std::size_t>(L), 0.0));
      for (std::int64_t r = 0; r < R; ++r) {
        double mx = -INFINITY;
        std::vector<double> logit(static_cast<std::size_t>(L), -INFINITY);
        for (std::int64_t j = 0; j < L; ++j) {
          if (!visible[static_cast<std::size_t>(r)][static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] || !allowed(j)) continue;
          logit[static_cast<std::size_t>(j)] = score[static_cast<std::size_t>(j)] - (c.dedup ? std::log(static_cast<double>(n.counts[idx(h, i, j)])) : 0.0);
          mx = std::max(mx, logit[static_cast<std::size_t>(j)]);
        }
        if (mx == -INFINITY) continue;
        double z = 0.0;
        for (std::int64_t j = 0; j < L; ++j)
          if (logit[static_cast<std::size_t>(j)] > -INFINITY) z += std::exp(logit[static_cast<std::size_t>(j)] - mx);
        lse[static_cast<std::size_t>(r)] = mx + std::log(z);
        for (std::int64_t j = 0; j < L; ++j)
          if (logit[static_cast<std::size_t>(j)] > -INFINITY) p[static_cast<std::size_t>(r)][static_cast<std::size_t>(j)] = std::exp(logit[static_cast<std::size_t>(j)] - mx) / z;
      }
      double top = -INFINITY;
      for (double x : lse) top = std::max(top, x);
      if (top == -INFINITY) continue;
      double total = 0.0;
      for (double x : lse) total += std::exp(x - top);
      const double all = top + std::log(total);
      for (std::int64_t r = 0; r < R; ++r) {
        if (lse[static_cast<std::size_t>(r)] == -INFINITY) continue;
        const double share = std::exp(lse[static_cast<std::size_t>(r)] - all);
        for (std::int64_t j = 0; j < L; ++j) {
          const double w = share * p[static_cast<std::size_t>(r)][static_cast<std::size_t>(j)];
          n.weights[idx(h, i, j)] += w;
          for (std::int64_t e = 0; e < dv; ++e) n.out[static_cast<std::size_t>((h * L + i) * dv + e)] += w * vs[static_cast<std::size_t>(j)][static_cast<std::size_t>(e)];
        }
      }
    }
  }
  return n;
}

// Dense softmax with logits q·k̂/√d (k̂ = q/|q|) and −5·10⁴ on the diagonal: [H, L, dv].
std::vector<double> dense_shared_qk(const Tensor& q, const Tensor& v, bool causal) {
  const std::int64_t H = q.dim(0), L = q.dim(1), d = q.dim(2), dv = v.dim(2);
  std::vector<double> out(static_cast<std::size_t>(H * L * dv), 0.0);
  for (std::int64_t h = 0; h < H; ++h) {
    for (std::int64_t i = 0; i < L; ++i) {
      std::vector<double> logit(static_cast<std::size_t>(L), -INFINITY);
      double mx = -INFINITY;
      for (std::int64_t j = 0; j < L; ++j) {
        if (causal && j > i) continue;
        double dot = 0.0, norm = 0.0;
        for (std::int64_t c = 0; c < d; ++c) {
          dot += static_cast<double>(q.at(h, i, c)) * q.at(h, j, c);
          norm += static_cast<double>(q.at(h, j, c)) * q.at(h, j, c);
        }
        logit[static_cast<std::size_t>(j)] = i == j ? -5e4 : dot / std::sqrt(norm) / std::sqrt(static_cast<double>(d));
        mx = std::max(mx, logit[static_cast<std::size_t>(j)]);
      }
      double z = 0.0;
      for (double x : logit) z += x == -INFINITY ? 0.0 : std::exp(x - mx);
      for (std::int64_t j = 0; j < L; ++j) {
        if (logit[static_cast<std::size_t>(j)] == -INFINITY) continue;
        const double w = std::exp(logit[static_cast<std::size_t>(j)] - mx) / z;
        for (std::int64_t c = 0; c < dv; ++c) out[static_cast<std::size_t>((h * L + i) * dv + c)] += w * v.at(h, j, c);
      }
    }
  }
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double worst = 0.0;
  for (std::int64_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a.data()[i]) - b.data()[i]));
  return worst;
}

}  // namespace

class TestReformerLsh : public QObject {
  Q_OBJECT

 private slots:
  void schema_has_the_documented_params() {
    const auto& params = lsh().spec().params;
    const Params defaults(params);
    QCOMPARE(defaults.get_int("n_hashes"), std::int64_t{2});
    QCOMPARE(defaults.get_int("bucket_size"), std::int64_t{64});
    QCOMPARE(defaults.get_int("n_buckets"), std::int64_t{0});
    QCOMPARE(defaults.get_int("chunks_before"), std::int64_t{1});
    QCOMPARE(defaults.get_bool("shared_qk"), true);
    QCOMPARE(defaults.get_bool("dedup"), false);
  }

  // The engine's hash against an argmax in double, and bucket(αx) = bucket(x) for α > 0.
  void bucket_is_scale_invariant() {
    for (std::int64_t n_buckets : {2, 4, 8, 32}) {
      const RowMatrix x = random_tensor({50, 16}, 101).matrix();
      const Tensor rot = random_tensor({1, 1, 16, n_buckets / 2}, 102);
      const RowMatrix rotation = rot.matrix(0);
      const std::vector<std::int32_t> b = lsh_buckets(x, rotation);
      for (int i = 0; i < 50; ++i) {
        std::vector<double> row(16);
        for (int c = 0; c < 16; ++c) row[static_cast<std::size_t>(c)] = x(i, c);
        QCOMPARE(b[static_cast<std::size_t>(i)], naive_bucket(row, rot, 0));
        QVERIFY(b[static_cast<std::size_t>(i)] >= 0 && b[static_cast<std::size_t>(i)] < n_buckets);
      }
      for (float alpha : {1e-3f, 0.25f, 3.0f, 1e3f}) {
        const RowMatrix scaled = x * alpha;
        QCOMPARE(lsh_buckets(scaled, rotation), b);
      }
    }
  }

  void negation_moves_to_the_opposite_bucket() {
    for (std::int64_t n_buckets : {2, 4, 6, 16}) {
      const RowMatrix x = random_tensor({60, 8}, 111).matrix();
      const RowMatrix rotation = random_tensor({8, n_buckets / 2}, 112).matrix();
      const std::vector<std::int32_t> b = lsh_buckets(x, rotation);
      const std::vector<std::int32_t> neg = lsh_buckets(RowMatrix(-x), rotation);
      for (std::size_t i = 0; i < b.size(); ++i) QCOMPARE(neg[i], static_cast<std::int32_t>((b[i] + n_buckets / 2) % n_buckets));
    }
  }

  void sort_then_unsort_is_identity() {
    Rng rng(121);
    std::vector<std::int32_t> buckets(200);
    for (auto& b : buckets) b = static_cast<std::int32_t>(rng.below(7));
    const std::vector<std::int32_t> order = lsh_sort_order(buckets, 7);
    const std::vector<std::int32_t> inverse = inverse_permutation(order);
    // The order is the stable (bucket, position) order, checked pair by pair.
    for (std::size_t s = 1; s < order.size(); ++s) {
      const auto a = order[s - 1], b = order[s];
      QVERIFY(buckets[static_cast<std::size_t>(a)] < buckets[static_cast<std::size_t>(b)] ||
              (buckets[static_cast<std::size_t>(a)] == buckets[static_cast<std::size_t>(b)] && a < b));
    }
    // Sorting any per-token values, then un-sorting them, gives them back.
    std::vector<double> values(200), sorted(200), back(200);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = rng.normal();
    for (std::size_t s = 0; s < order.size(); ++s) sorted[s] = values[static_cast<std::size_t>(order[s])];
    for (std::size_t i = 0; i < values.size(); ++i) back[i] = sorted[static_cast<std::size_t>(inverse[i])];
    QCOMPARE(back, values);
    for (std::size_t s = 0; s < order.size(); ++s) QCOMPARE(inverse[static_cast<std::size_t>(order[s])], static_cast<std::int32_t>(s));
    EXPECT_ERROR(ParamError, lsh_sort_order({0, 9}, 4), "bucket 9");
  }

  void one_chunk_equals_dense_softmax_data() {
    QTest::addColumn<bool>("causal");
    QTest::addColumn<int>("rounds");
    QTest::addColumn<int>("chunks_before");
    QTest::newRow("one round") << false << 1 << 1;
    QTest::newRow("one round causal") << true << 1 << 1;
    QTest::newRow("no look-back") << false << 1 << 0;
    QTest::newRow("three rounds causal") << true << 3 << 2;
  }

  void one_chunk_equals_dense_softmax() {
    QFETCH(bool, causal);
    QFETCH(int, rounds);
    QFETCH(int, chunks_before);
    const Tensor q = random_tensor({2, 19, 8}, 131, 2.0f);
    const Tensor v = random_tensor({2, 19, 5}, 132);
    Config c;
    c.n_hashes = rounds;
    c.bucket_size = 32;  // ≥ L: one chunk holds the whole sorted sequence
    c.chunks_before = chunks_before;
    c.causal = causal;
    const std::vector<double> ref = dense_shared_qk(q, v, causal);
    for (bool traced : {false, true}) {
      const Run run = run_seeded(c, q, q, v, traced);
      const double err = test::max_relative_error(run.out.data(), ref.data(), run.out.size());
      QVERIFY2(err < 2e-5, qPrintable(QString("error %1 (traced %2)").arg(err).arg(traced)));
    }
  }

  // R rounds that all use the same rotation are one round, with and without dedup (without it,
  // every key counts R times, which the softmax cancels; with it, log R is subtracted from all).
  void identical_rotations_equal_one_round() {
    const std::int64_t H = 2, L = 37, d = 8;
    const Tensor q = random_tensor({H, L, d}, 141, 1.5f);
    const Tensor k = random_tensor({H, L, d}, 142);
    const Tensor v = random_tensor({H, L, 6}, 143);
    for (bool dedup : {false, true}) {
      for (bool causal : {false, true}) {
        Config one;
        one.n_hashes = 1;
        one.bucket_size = 5;
        one.chunks_before = 1;
        one.dedup = dedup;
        one.causal = causal;
        Config many = one;
        many.n_hashes = 4;
        const std::int64_t nb = buckets_for(one, L);
        const Tensor single = test_rotations(H, 1, d, nb, 144);
        Tensor repeated({H, 4, d, nb / 2});
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t r = 0; r < 4; ++r) repeated.matrix(h * 4 + r) = single.matrix(h);
        for (bool traced : {false, true}) {
          const Run a = run_with(one, q, k, v, single, traced);
          const Run b = run_with(many, q, k, v, repeated, traced);
          const double diff = max_abs_diff(a.out, b.out);
          QVERIFY2(diff < 1e-5, qPrintable(QString("dedup %1 causal %2 traced %3: diff %4").arg(dedup).arg(causal).arg(traced).arg(diff)));
        }
      }
    }
  }

  void causal_puts_zero_weight_on_later_positions() {
    const Tensor q = random_tensor({3, 45, 8}, 151);
    const Tensor v = random_tensor({3, 45, 4}, 152);
    for (bool shared : {true, false}) {
      Config c;
      c.causal = true;
      c.bucket_size = 6;
      c.n_hashes = 3;
      c.shared_qk = shared;
      const Run run = run_seeded(c, q, random_tensor({3, 45, 8}, 153), v, true);
      for (std::int64_t h = 0; h < 3; ++h)
        for (std::int64_t i = 0; i < 45; ++i)
          for (std::int64_t j = i + 1; j < 45; ++j) QCOMPARE(run.trace.weights.at(h, i, j), 0.0f);
    }
  }

  void causal_position_zero_returns_v0() {
    const Tensor q = random_tensor({4, 30, 8}, 161);
    const Tensor v = random_tensor({4, 30, 5}, 162);
    for (int rounds : {1, 3}) {
      for (bool traced : {false, true}) {
        Config c;
        c.causal = true;
        c.bucket_size = 4;
        c.n_hashes = rounds;
        const Run run = run_seeded(c, q, q, v, traced);
        for (std::int64_t h = 0; h < 4; ++h)
          for (std::int64_t e = 0; e < 5; ++e) QVERIFY(std::abs(run.out.at(h, 0, e) - v.at(h, 0, e)) < 1e-6f);
      }
    }
  }

  void fast_path_equals_traced_and_weights_reproduce_output() {
    const std::int64_t H = 3, L = 53, d = 16, dv = 7;
    const Tensor q = random_tensor({H, L, d}, 171, 2.0f);
    const Tensor k = random_tensor({H, L, d}, 172, 2.0f);
    const Tensor v = random_tensor({H, L, dv}, 173);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(L), 0);
    for (std::int64_t j = 3; j < L; j += 7) padding[static_cast<std::size_t>(j)] = 1;
    for (bool causal : {false, true}) {
      for (bool dedup : {false, true}) {
        for (bool shared : {true, false}) {
          Config c;
          c.n_hashes = 3;
          c.bucket_size = 8;
          c.chunks_before = 2;
          c.causal = causal;
          c.dedup = dedup;
          c.shared_qk = shared;
          c.padding = &padding;
          const Run fast = run_seeded(c, q, k, v, false);
          const Run traced = run_seeded(c, q, k, v, true);
          QVERIFY(max_abs_diff(fast.out, traced.out) < 1e-5);
          // W·V == out, rows with a visible key sum to 1, padded keys get 0.
          for (std::int64_t h = 0; h < H; ++h) {
            const RowMatrix wv = traced.trace.weights.matrix(h) * v.matrix(h);
            QVERIFY((wv - RowMatrix(traced.out.matrix(h))).cwiseAbs().maxCoeff() < 1e-5f);
            for (std::int64_t i = 0; i < L; ++i) {
              const double sum = traced.trace.weights.matrix(h).row(i).cast<double>().sum();
              QVERIFY2(std::abs(sum - 1.0) < 1e-5 || sum == 0.0, qPrintable(QString("row sum %1").arg(sum)));
              for (std::int64_t j = 3; j < L; j += 7) QCOMPARE(traced.trace.weights.at(h, i, j), 0.0f);
            }
          }
        }
      }
    }
  }

  void matches_naive_procedure_data() {
    QTest::addColumn<int>("length");
    QTest::addColumn<int>("rounds");
    QTest::addColumn<int>("bucket_size");
    QTest::addColumn<int>("n_buckets");
    QTest::addColumn<int>("chunks_before");
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("dedup");
    QTest::addColumn<bool>("shared");
    QTest::addColumn<bool>("padded");
    QTest::newRow("2 rounds, 4 chunks") << 16 << 2 << 4 << 0 << 1 << false << false << true << false;
    QTest::newRow("3 rounds, back 0") << 17 << 3 << 4 << 6 << 0 << false << false << true << false;
    QTest::newRow("3 rounds, back 2, dedup") << 23 << 3 << 3 << 8 << 2 << false << true << true << false;
    QTest::newRow("causal, back 1") << 21 << 2 << 5 << 4 << 1 << true << false << true << false;
    QTest::newRow("causal dedup, back 2") << 19 << 4 << 3 << 0 << 2 << true << true << true << false;
    QTest::newRow("wrap covers all chunks") << 12 << 2 << 4 << 4 << 5 << false << true << true << false;
    QTest::newRow("separate keys") << 18 << 3 << 4 << 6 << 1 << false << false << false << false;
    QTest::newRow("separate keys, causal dedup") << 20 << 2 << 3 << 4 << 2 << true << true << false << false;
    QTest::newRow("padded, 2 buckets") << 15 << 3 << 4 << 2 << 1 << false << true << true << true;
    QTest::newRow("bucket size 1") << 9 << 2 << 1 << 4 << 1 << true << false << true << false;
  }

  void matches_naive_procedure() {
    QFETCH(int, length);
    QFETCH(int, rounds);
    QFETCH(int, bucket_size);
    QFETCH(int, n_buckets);
    QFETCH(int, chunks_before);
    QFETCH(bool, causal);
    QFETCH(bool, dedup);
    QFETCH(bool, shared);
    QFETCH(bool, padded);
    const std::int64_t H = 2, L = length, d = 6, dv = 3;
    const Tensor q = random_tensor({H, L, d}, 181 + static_cast<std::uint64_t>(length), 1.5f);
    const Tensor k = random_tensor({H, L, d}, 182 + static_cast<std::uint64_t>(length), 1.5f);
    const Tensor v = random_tensor({H, L, dv}, 183);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(L), 0);
    for (std::int64_t j = 2; j < L; j += 5) padding[static_cast<std::size_t>(j)] = 1;
    Config c;
    c.n_hashes = rounds;
    c.bucket_size = bucket_size;
    c.n_buckets = n_buckets;
    c.chunks_before = chunks_before;
    c.causal = causal;
    c.dedup = dedup;
    c.shared_qk = shared;
    c.padding = padded ? &padding : nullptr;
    const Tensor rotations = test_rotations(H, rounds, d, buckets_for(c, L), 184);
    const Naive ref = naive_lsh(c, q, k, v, rotations);
    const Run fast = run_with(c, q, k, v, rotations, false);
    const Run traced = run_with(c, q, k, v, rotations, true);
    EXPECT_NEAR_REFERENCE(fast.out, ref.out, 1e-5, "fast output");
    EXPECT_NEAR_REFERENCE(traced.out, ref.out, 1e-5, "traced output");
    EXPECT_NEAR_REFERENCE(traced.trace.weights, ref.weights, 1e-5, "weight");
    const ReformerLshExtras& x = extras_of(traced);
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i = 0; i < L; ++i)
        for (std::int64_t j = 0; j < L; ++j)
          QCOMPARE(x.cooccurrence.at(h, i, j), static_cast<float>(ref.counts[static_cast<std::size_t>((h * L + i) * L + j)]));
  }

  void recall_matches_direct_count_data() {
    QTest::addColumn<int>("length");
    QTest::addColumn<bool>("causal");
    QTest::newRow("24 tokens") << 24 << false;
    QTest::newRow("24 tokens causal") << 24 << true;
    // Long rows take the engine's sampled-threshold selection; short causal rows the direct one.
    QTest::newRow("300 tokens") << 300 << false;
    QTest::newRow("300 tokens causal") << 300 << true;
    // Zero queries: every score of such a row ties at 0, ranked by position.
    QTest::newRow("ties") << -40 << false;
    QTest::newRow("ties causal") << -40 << true;
  }

  // The recall of the exact top-k against a count made here from the reference's windows.
  void recall_matches_direct_count() {
    QFETCH(int, length);
    QFETCH(bool, causal);
    const bool ties = length < 0;
    const std::int64_t H = 2, L = std::abs(length), d = 6, K = std::min<std::int64_t>(L, 64);
    Tensor q = random_tensor({H, L, d}, 191, 1.5f);
    if (ties) {
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t i = 0; i < L; i += 3) q.matrix(h).row(i).setZero();
    }
    const Tensor v = random_tensor({H, L, 3}, 192);
    {
      Config c;
      c.n_hashes = 2;
      c.bucket_size = L > 100 ? 20 : 4;
      c.n_buckets = 6;
      c.chunks_before = 0;
      c.causal = causal;
      const Tensor rotations = test_rotations(H, 2, d, 6, 193);
      const Naive ref = naive_lsh(c, q, q, v, rotations);
      const Run run = run_with(c, q, q, v, rotations, true);
      const ReformerLshExtras& x = extras_of(run);
      QCOMPARE(x.recall_k, K);
      bool some_below_one = false;
      for (std::int64_t h = 0; h < H; ++h) {
        std::vector<double> mean(static_cast<std::size_t>(K), 0.0);
        for (std::int64_t i = 0; i < L; ++i) {
          std::vector<std::int64_t> keys;
          for (std::int64_t j = 0; j < L; ++j)
            if (!std::isnan(ref.scores[static_cast<std::size_t>((h * L + i) * L + j)])) keys.push_back(j);
          std::stable_sort(keys.begin(), keys.end(), [&](std::int64_t a, std::int64_t b) {
            return ref.scores[static_cast<std::size_t>((h * L + i) * L + a)] > ref.scores[static_cast<std::size_t>((h * L + i) * L + b)];
          });
          for (std::int64_t kk = 1; kk <= K; ++kk) {
            const auto top = std::min<std::int64_t>(kk, static_cast<std::int64_t>(keys.size()));
            int seen = 0;
            for (std::int64_t t = 0; t < top; ++t) seen += ref.counts[static_cast<std::size_t>((h * L + i) * L + keys[static_cast<std::size_t>(t)])] > 0;
            const double expected = static_cast<double>(seen) / static_cast<double>(top);
            QVERIFY2(std::abs(x.recall.at(h, i, kk - 1) - expected) < 1e-6,
                     qPrintable(QString("h%1 i%2 k%3: %4 vs %5").arg(h).arg(i).arg(kk).arg(x.recall.at(h, i, kk - 1)).arg(expected)));
            some_below_one = some_below_one || expected < 1.0;
            mean[static_cast<std::size_t>(kk - 1)] += expected / static_cast<double>(L);
          }
        }
        for (std::int64_t kk = 0; kk < K; ++kk) QVERIFY(std::abs(x.mean_recall.at(h, kk) - mean[static_cast<std::size_t>(kk)]) < 1e-6);
      }
      QVERIFY(some_below_one);  // the case is not degenerate
    }
  }

  void recall_is_one_when_one_chunk_covers_everything() {
    const Tensor q = random_tensor({2, 70, 8}, 201);
    const Tensor v = random_tensor({2, 70, 4}, 202);
    for (bool causal : {false, true}) {
      Config c;
      c.bucket_size = 128;
      c.causal = causal;
      const Run run = run_seeded(c, q, q, v, true);
      const ReformerLshExtras& x = extras_of(run);
      QCOMPARE(x.recall_k, std::int64_t{64});
      for (std::int64_t i = 0; i < x.recall.size(); ++i) QCOMPARE(x.recall.data()[i], 1.0f);
      for (std::int64_t i = 0; i < x.mean_recall.size(); ++i) QCOMPARE(x.mean_recall.data()[i], 1.0f);
    }
  }

  // The trace's bookkeeping agrees with itself: orders invert ranks, buckets ascend along the
  // order, shares sum to one, each round's own matrix has rows summing to one.
  void trace_is_consistent() {
    const std::int64_t H = 2, L = 40;
    const Tensor q = random_tensor({H, L, 8}, 211);
    const Tensor v = random_tensor({H, L, 4}, 212);
    Config c;
    c.n_hashes = 3;
    c.bucket_size = 6;
    const Run run = run_seeded(c, q, q, v, true);
    const ReformerLshExtras& x = extras_of(run);
    QCOMPARE(x.geometry.n_buckets, std::int64_t{12});
    QCOMPARE(x.geometry.n_chunks, std::int64_t{7});
    QCOMPARE(x.rotations.shape(), (Shape{H, 3, 8, 6}));
    QCOMPARE(x.round_weights.shape(), (Shape{H, 3, L, 12}));
    QCOMPARE(x.cooccurrence.shape(), (Shape{H, L, L}));
    QCOMPARE(x.angle_points.shape(), (Shape{H, 3, L, 2}));
    QCOMPARE(x.recall.shape(), (Shape{H, L, L}));
    for (std::int64_t h = 0; h < H; ++h) {
      for (std::int64_t r = 0; r < 3; ++r) {
        for (std::int64_t s = 0; s < L; ++s) {
          const auto token = x.query_order[x.index(h, r, s)];
          QCOMPARE(x.query_rank[x.index(h, r, token)], static_cast<std::int32_t>(s));
          if (s > 0) QVERIFY(x.query_buckets[x.index(h, r, x.query_order[x.index(h, r, s - 1)])] <= x.query_buckets[x.index(h, r, token)]);
        }
        const RowMatrix m = x.round_matrix(h, r);
        for (std::int64_t i = 0; i < L; ++i) QVERIFY(std::abs(m.row(i).sum() - 1.0f) < 1e-5f);
      }
      for (std::int64_t i = 0; i < L; ++i) {
        float sum = 0.0f;
        for (std::int64_t r = 0; r < 3; ++r) sum += x.round_share.at(h, r, i);
        QVERIFY(std::abs(sum - 1.0f) < 1e-5f);
      }
    }
    const nlohmann::json j = x.head_to_json(1);
    QCOMPARE(j["query_buckets"].size(), std::size_t{3});
    QCOMPARE(j["query_buckets"][0].size(), static_cast<std::size_t>(L));
    QCOMPARE(j["recall"].size(), static_cast<std::size_t>(L));
    QCOMPARE(j["query_buckets"][2][5].get<int>(), x.query_buckets[x.index(1, 2, 5)]);
    QCOMPARE(x.to_json()["heads"].size(), static_cast<std::size_t>(H));
  }

  // For n_b = 4 the angle view is exact: each point lies in the 90° sector of its bucket; for
  // n_b = 2 the bucket is the side of the vertical axis.
  void angle_view_shows_the_bucket_decision() {
    const std::int64_t L = 50;
    const Tensor q = random_tensor({2, L, 8}, 221);
    const Tensor v = random_tensor({2, L, 4}, 222);
    for (std::int64_t n_buckets : {2, 4, 10}) {
      Config c;
      c.n_buckets = n_buckets;
      c.bucket_size = 5;
      const Run run = run_seeded(c, q, q, v, true);
      const ReformerLshExtras& x = extras_of(run);
      QCOMPARE(x.angle_anchors.shape(), (Shape{2, 2, n_buckets, 2}));
      for (std::int64_t h = 0; h < 2; ++h) {
        for (std::int64_t r = 0; r < 2; ++r) {
          const auto points = x.angle_points.matrix(h * 2 + r);
          for (std::int64_t i = 0; i < L; ++i) {
            const std::int32_t bucket = x.query_buckets[x.index(h, r, i)];
            if (n_buckets == 2) {
              QCOMPARE(x.angle_method, LshAngleMethod::SignAxis);
              QCOMPARE(points(i, 0) >= 0.0f, bucket == 0);
              QVERIFY(std::abs(points.row(i).norm() - 1.0f) < 1e-5f);
            } else if (n_buckets == 4) {
              QCOMPARE(x.angle_method, LshAngleMethod::RotatedPlane);
              const double angle = std::atan2(points(i, 1), points(i, 0));  // bucket b: centred on b·90°
              const int sector = static_cast<int>(std::lround(angle / (M_PI / 2.0)) + 4) % 4;
              QCOMPARE(sector, bucket);
            } else {
              QCOMPARE(x.angle_method, LshAngleMethod::Pca);
            }
          }
          const float* explained = x.angle_explained.data() + (h * 2 + r) * 2;
          QVERIFY(explained[0] >= explained[1] && explained[0] <= 1.0f + 1e-6f && explained[1] >= 0.0f);
        }
      }
    }
  }

  void seed_decides_the_rotations() {
    const Tensor q = random_tensor({2, 40, 8}, 231);
    const Tensor v = random_tensor({2, 40, 4}, 232);
    Config c;
    c.bucket_size = 5;
    const Run a = run_seeded(c, q, q, v, true, 1);
    const Run b = run_seeded(c, q, q, v, true, 1);
    const Run other = run_seeded(c, q, q, v, true, 2);
    QCOMPARE(max_abs_diff(a.out, b.out), 0.0);
    QVERIFY(max_abs_diff(extras_of(a).rotations, extras_of(other).rotations) > 0.1);
    // Each head and each round has its own rotation.
    const Tensor& rot = extras_of(a).rotations;
    QVERIFY(RowMatrix(rot.matrix(0)) != RowMatrix(rot.matrix(1)));
    QVERIFY(RowMatrix(rot.matrix(0)) != RowMatrix(rot.matrix(2)));
    // lsh_rotations is what the variant uses.
    const Tensor drawn = lsh_rotations(1, 2, 2, 8, extras_of(a).geometry.n_buckets);
    QCOMPARE(max_abs_diff(drawn, rot), 0.0);
  }

  void parameter_errors_name_the_range() {
    const Tensor q = random_tensor({1, 10, 4}, 241);
    Params p(lsh().spec().params);
    p.set("n_buckets", std::int64_t{7});
    EXPECT_ERROR(ParamError, run_attention(lsh(), (AttentionInput{q, q, q, false, nullptr, &p}), nullptr), "n_buckets=7");
    EXPECT_ERROR(ParamError, run_attention(lsh(), (AttentionInput{q, q, q, false, nullptr, &p}), nullptr), "even integer in [2, 4096]");
    p.set("n_buckets", std::int64_t{1});
    EXPECT_ERROR(ParamError, run_attention(lsh(), (AttentionInput{q, q, q, false, nullptr, &p}), nullptr), "n_buckets=1");
    EXPECT_ERROR(ParamError, p.set("n_hashes", std::int64_t{17}), "n_hashes: an integer in [1, 16]");
    EXPECT_ERROR(ParamError, p.set("bucket_size", std::int64_t{0}), "bucket_size: an integer in [1, 1024]");
    EXPECT_ERROR(ParamError, p.set("chunks_before", std::int64_t{9}), "chunks_before: an integer in [0, 8]");
    EXPECT_ERROR(ParamError, p.set("n_buckets", std::int64_t{5000}), "n_buckets: an integer in [0, 4096]");
    const Tensor shorter = random_tensor({1, 6, 4}, 242);
    EXPECT_ERROR(ShapeError, run_attention(lsh(), (AttentionInput{q, shorter, shorter}), nullptr), "as many queries as keys");
    const Params defaults(lsh().spec().params);
    EXPECT_ERROR(ShapeError, reformer_lsh_forward((AttentionInput{q, q, q, false, nullptr, &defaults}), Tensor({1, 1, 4, 1}), nullptr),
                 "rotations must have shape [1, 2, 4, 1]");
  }

  void cancellation_stops_both_paths() { test::expect_cancelled_on_both_paths("reformer_lsh", random_tensor({2, 64, 8}, 251)); }

  // The fast path never holds an L × L matrix: at L = 2048 its peak is far below 4·L² bytes.
  void fast_path_allocates_no_square_matrix() {
    const std::int64_t L = 2048;
    const Tensor q = random_tensor({1, L, 32}, 261);
    const Tensor v = random_tensor({1, L, 32}, 262);
    Config c;
    c.bucket_size = 32;
    const Params p = params_for(c);
    const std::int64_t peak =
        test::peak_bytes_of([&] { run_attention(lsh(), AttentionInput{q, q, v, false, nullptr, &p, 3}, nullptr); });
    QVERIFY2(peak < L * L * 4 / 16, qPrintable(QString("peak %1 bytes").arg(peak)));
    QVERIFY(peak >= L * 32 * 4);  // at least the output, so the meter did count
  }
};

QTEST_GUILESS_MAIN(TestReformerLsh)
#include "test_reformer_lsh.moc"
