// BigBird block-sparse attention against a dense masked softmax whose mask this test builds
// from the definition (window and global blocks by index arithmetic; random blocks read from the
// trace and checked separately for being valid draws), plus the properties ALGORITHMS.md and
// issue 3 list: all-ones mask equals softmax, exact key counts of interior rows, full global
// rows and columns, per-head and per-seed random draws, causal zeros and bit-identical earlier
// outputs, the receptive field as a boolean matrix power, and parameter errors naming ranges.
#include <omp.h>

#include <QtTest>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "attention/bigbird.h"
#include "attention/registry.h"
#include "core/memory_meter.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

struct Config {
  std::int64_t block_size = 4;
  std::int64_t window_blocks = 3;
  std::int64_t global_blocks = 1;
  std::int64_t random_blocks = 3;
  bool causal = false;
  std::uint64_t seed = 7;
};

struct Run {
  Tensor out;
  Trace trace;
  const BigBirdExtras* extras() const { return dynamic_cast<const BigBirdExtras*>(trace.extras.get()); }
};

Params make_params(const Config& c) {
  return test::params_of("bigbird", {{"block_size", c.block_size},
                                     {"window_blocks", c.window_blocks},
                                     {"global_blocks", c.global_blocks},
                                     {"random_blocks", c.random_blocks}});
}

Run run_bigbird(const Tensor& q, const Tensor& k, const Tensor& v, const Config& c, bool with_trace,
                const std::vector<std::uint8_t>* padding = nullptr) {
  const Params params = make_params(c);
  AttentionInput in{q, k, v, c.causal, padding, &params, c.seed};
  Run run;
  run.out = run_attention(Registry::builtin().get("bigbird"), in, with_trace ? &run.trace : nullptr);
  return run;
}

// The deterministic part of the pattern, straight from the definition: global rows and
// columns (first and last g blocks) and the window |qb - kb| <= w/2.
bool fixed_pattern(std::int64_t qb, std::int64_t kb, std::int64_t nb, const Config& c) {
  const auto global = [&](std::int64_t b) { return b < c.global_blocks || b >= nb - c.global_blocks; };
  return global(qb) || global(kb) || std::abs(qb - kb) <= c.window_blocks / 2;
}

// Token mask [H, L, L] (1 = visible) from the definition; random blocks taken from `random`.
std::vector<std::uint8_t> reference_mask(std::int64_t H, std::int64_t L, const Config& c,
                                         const std::vector<std::set<std::int64_t>>& random,  // [H * nb]
                                         const std::vector<std::uint8_t>* padding) {
  const std::int64_t b = c.block_size, nb = (L + b - 1) / b;
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(H * L * L), 0);
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < L; ++i)
      for (std::int64_t j = 0; j < L; ++j) {
        const std::int64_t qb = i / b, kb = j / b;
        bool on = fixed_pattern(qb, kb, nb, c) || random[static_cast<std::size_t>(h * nb + qb)].count(kb) > 0;
        if (c.causal && j > i) on = false;
        if (padding && (*padding)[static_cast<std::size_t>(j)]) on = false;
        mask[static_cast<std::size_t>((h * L + i) * L + j)] = on ? 1 : 0;
      }
  return mask;
}

struct Reference {
  std::vector<double> out;      // [H, L, dv]
  std::vector<double> weights;  // [H, L, L]
};

// Dense softmax in double precision with -inf outside `mask`; no visible key gives zeros.
Reference masked_softmax(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<std::uint8_t>& mask) {
  const auto H = q.dim(0), L = q.dim(1), d = q.dim(2), dv = v.dim(2);
  Reference ref{std::vector<double>(static_cast<std::size_t>(H * L * dv), 0.0),
                std::vector<double>(static_cast<std::size_t>(H * L * L), 0.0)};
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < L; ++i) {
      std::vector<double> logit(static_cast<std::size_t>(L), -INFINITY);
      double top = -INFINITY;
      for (std::int64_t j = 0; j < L; ++j) {
        if (!mask[static_cast<std::size_t>((h * L + i) * L + j)]) continue;
        double dot = 0.0;
        for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(q.at(h, i, c)) * k.at(h, j, c);
        logit[static_cast<std::size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
        top = std::max(top, logit[static_cast<std::size_t>(j)]);
      }
      if (top == -INFINITY) continue;
      double total = 0.0;
      for (double x : logit) total += x == -INFINITY ? 0.0 : std::exp(x - top);
      for (std::int64_t j = 0; j < L; ++j) {
        const double x = logit[static_cast<std::size_t>(j)];
        if (x == -INFINITY) continue;
        const double w = std::exp(x - top) / total;
        ref.weights[static_cast<std::size_t>((h * L + i) * L + j)] = w;
        for (std::int64_t c = 0; c < dv; ++c) ref.out[static_cast<std::size_t>((h * L + i) * dv + c)] += w * v.at(h, j, c);
      }
    }
  return ref;
}

// Random blocks as the trace reports them, [H * nb] sets.
std::vector<std::set<std::int64_t>> random_blocks_of(const BigBirdExtras& extras) {
  const std::int64_t nb = extras.n_blocks();
  std::vector<std::set<std::int64_t>> random(static_cast<std::size_t>(extras.heads() * nb));
  for (std::int64_t h = 0; h < extras.heads(); ++h)
    for (std::int64_t qb = 0; qb < nb; ++qb)
      for (std::int64_t kb = 0; kb < nb; ++kb)
        if (extras.block_type(h, qb, kb) == BigBirdBlock::Random) random[static_cast<std::size_t>(h * nb + qb)].insert(kb);
  return random;
}

std::vector<std::uint8_t> block_grid(const BigBirdExtras& e, std::int64_t head) {
  std::vector<std::uint8_t> grid;
  for (std::int64_t qb = 0; qb < e.n_blocks(); ++qb)
    for (std::int64_t kb = 0; kb < e.n_blocks(); ++kb) grid.push_back(static_cast<std::uint8_t>(e.block_type(head, qb, kb)));
  return grid;
}

void perturb_token(Tensor& q, Tensor& k, Tensor& v, std::int64_t j) {
  for (std::int64_t h = 0; h < q.dim(0); ++h) {
    for (std::int64_t c = 0; c < q.dim(2); ++c) {
      q.at(h, j, c) += 5.0f;
      k.at(h, j, c) -= 7.0f;
    }
    for (std::int64_t c = 0; c < v.dim(2); ++c) v.at(h, j, c) = v.at(h, j, c) * -3.0f + 1.0f;
  }
}

}  // namespace

class TestBigBird : public QObject {
  Q_OBJECT

 private slots:
  void schema_and_defaults() {
    const VariantSpec& spec = Registry::builtin().get("bigbird").spec();
    QCOMPARE(spec.name, std::string("bigbird"));
    const Params p(spec.params);
    QCOMPARE(p.get_int("block_size"), std::int64_t{0});
    QCOMPARE(p.get_int("window_blocks"), std::int64_t{3});
    QCOMPARE(p.get_int("global_blocks"), std::int64_t{1});
    QCOMPARE(p.get_int("random_blocks"), std::int64_t{3});
  }

  void matches_dense_masked_softmax_data() {
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("length");
    QTest::addColumn<int>("block");
    QTest::addColumn<int>("window");
    QTest::addColumn<int>("globals");
    QTest::addColumn<int>("randoms");
    QTest::addColumn<bool>("causal");
    QTest::addColumn<bool>("padded");
    QTest::newRow("defaults 64 tokens") << 2 << 64 << 4 << 3 << 1 << 3 << false << false;
    QTest::newRow("no random blocks") << 2 << 96 << 8 << 3 << 1 << 0 << false << false;
    QTest::newRow("partial last block") << 3 << 70 << 8 << 3 << 1 << 2 << false << false;
    QTest::newRow("causal partial") << 2 << 61 << 4 << 3 << 1 << 3 << true << false;
    QTest::newRow("causal padded") << 2 << 80 << 5 << 5 << 2 << 2 << true << true;
    QTest::newRow("padded wide window") << 1 << 100 << 4 << 7 << 0 << 4 << false << true;
    QTest::newRow("block 1") << 2 << 40 << 1 << 3 << 2 << 5 << false << false;
    QTest::newRow("block larger than text") << 1 << 20 << 64 << 3 << 1 << 3 << false << false;
    QTest::newRow("global rows in several chunks") << 1 << 1100 << 8 << 3 << 1 << 3 << false << true;
    QTest::newRow("causal, several chunks") << 1 << 1100 << 16 << 3 << 2 << 3 << true << false;
    QTest::newRow("many randoms, few candidates") << 2 << 48 << 4 << 3 << 1 << 20 << false << false;
  }

  void matches_dense_masked_softmax() {
    QFETCH(int, heads);
    QFETCH(int, length);
    QFETCH(int, block);
    QFETCH(int, window);
    QFETCH(int, globals);
    QFETCH(int, randoms);
    QFETCH(bool, causal);
    QFETCH(bool, padded);
    const Config c{block, window, globals, randoms, causal, 11};
    const Tensor q = random_tensor({heads, length, 16}, 1, 1.5f);
    const Tensor k = random_tensor({heads, length, 16}, 2, 1.5f);
    const Tensor v = random_tensor({heads, length, 12}, 3);
    std::vector<std::uint8_t> padding(static_cast<std::size_t>(length), 0);
    for (int j = 2; j < length; j += 5) padding[static_cast<std::size_t>(j)] = 1;
    const auto* pad = padded ? &padding : nullptr;

    const Run traced = run_bigbird(q, k, v, c, true, pad);
    const Run fast = run_bigbird(q, k, v, c, false, pad);
    const BigBirdExtras* extras = traced.extras();
    QVERIFY(extras);
    QCOMPARE(extras->layout().block_size, std::int64_t{block});
    const std::vector<std::uint8_t> mask = reference_mask(heads, length, c, random_blocks_of(*extras), pad);
    const Reference ref = masked_softmax(q, k, v, mask);

    QCOMPARE(fast.out.shape(), (Shape{heads, length, 12}));
    EXPECT_NEAR_REFERENCE(fast.out, ref.out, 1e-5, "block-sparse output");
    EXPECT_NEAR_REFERENCE(traced.out, ref.out, 1e-5, "traced output");
    EXPECT_NEAR_REFERENCE(traced.trace.weights, ref.weights, 1e-6, "weight");
    // Exact zeros outside the mask; key counts and visible() agree with the reference mask.
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t i = 0; i < length; ++i) {
        std::int32_t count = 0;
        for (std::int64_t j = 0; j < length; ++j) {
          const bool on = mask[static_cast<std::size_t>((h * length + i) * length + j)] != 0;
          count += on ? 1 : 0;
          QCOMPARE(extras->visible(h, i, j), on);
          if (!on) QCOMPARE(traced.trace.weights.at(h, i, j), 0.0f);
        }
        QCOMPARE(extras->key_count(h, i), count);
      }
  }

  // The random draws are valid: min(r, candidates) distinct blocks per non-global row, none in
  // the window or among the global blocks (nor after the row when causal); global rows have none.
  void random_blocks_are_valid_draws() {
    for (bool causal : {false, true}) {
      const Config c{4, 3, 1, 3, causal, 5};
      const Tensor q = random_tensor({4, 120, 8}, 1), k = random_tensor({4, 120, 8}, 2), v = random_tensor({4, 120, 8}, 3);
      const Run run = run_bigbird(q, k, v, c, true);
      const BigBirdExtras& e = *run.extras();
      const std::int64_t nb = e.n_blocks();
      QCOMPARE(nb, std::int64_t{30});
      for (std::int64_t h = 0; h < 4; ++h)
        for (std::int64_t qb = 0; qb < nb; ++qb) {
          const bool global_row = qb < 1 || qb >= nb - 1;
          std::int64_t candidates = 0, drawn = 0;
          for (std::int64_t kb = 0; kb < nb; ++kb) {
            const bool fixed = fixed_pattern(qb, kb, nb, c);
            const bool allowed = !fixed && (!causal || kb < qb);
            candidates += allowed ? 1 : 0;
            if (e.block_type(h, qb, kb) == BigBirdBlock::Random) {
              ++drawn;
              QVERIFY2(allowed, qPrintable(QString("head %1 row %2 drew block %3").arg(h).arg(qb).arg(kb)));
            }
          }
          QCOMPARE(drawn, global_row ? 0 : std::min<std::int64_t>(3, candidates));
        }
    }
  }

  // Mask all ones (few blocks) => exactly the softmax variant.
  void full_mask_equals_softmax() {
    const Tensor q = random_tensor({2, 16, 8}, 1, 2.0f), k = random_tensor({2, 16, 8}, 2, 2.0f), v = random_tensor({2, 16, 8}, 3);
    const Attention& softmax = Registry::builtin().get("softmax");
    for (bool causal : {false, true}) {
      Trace soft_trace;
      const Tensor expected = run_attention(softmax, AttentionInput{q, k, v, causal}, &soft_trace);
      // 4 blocks of 4: rows 1 and 2 see blocks 0..3 through window + globals.
      const Config few{4, 3, 1, 3, causal, 1};
      // A window covering the whole sequence, nothing else.
      const Config wide{2, 15, 0, 0, causal, 1};
      for (const Config& c : {few, wide}) {
        for (bool trace : {false, true}) {
          const Run run = run_bigbird(q, k, v, c, trace);
          for (std::int64_t i = 0; i < expected.size(); ++i)
            QVERIFY(std::abs(run.out.data()[i] - expected.data()[i]) < 1e-5f);
          if (trace) {
            for (std::int64_t i = 0; i < soft_trace.weights.size(); ++i)
              QVERIFY(std::abs(run.trace.weights.data()[i] - soft_trace.weights.data()[i]) < 1e-6f);
          }
        }
      }
    }
  }

  // Interior rows attend exactly (w + 2g + r)·b keys: window, global and random blocks disjoint.
  void interior_rows_have_exact_key_count_data() {
    QTest::addColumn<int>("block");
    QTest::addColumn<int>("window");
    QTest::addColumn<int>("globals");
    QTest::addColumn<int>("randoms");
    QTest::newRow("paper defaults") << 16 << 3 << 1 << 3;
    QTest::newRow("w5 g2 r2") << 8 << 5 << 2 << 2;
    QTest::newRow("w1 g0 r1") << 8 << 1 << 0 << 1;
  }

  void interior_rows_have_exact_key_count() {
    QFETCH(int, block);
    QFETCH(int, window);
    QFETCH(int, globals);
    QFETCH(int, randoms);
    const Config c{block, window, globals, randoms, false, 3};
    const std::int64_t L = 512, nb = L / block;
    const Tensor q = random_tensor({3, L, 8}, 1), k = random_tensor({3, L, 8}, 2), v = random_tensor({3, L, 8}, 3);
    const Run run = run_bigbird(q, k, v, c, true);
    const BigBirdExtras& e = *run.extras();
    const std::int64_t expected = static_cast<std::int64_t>(window + 2 * globals + randoms) * block;
    const std::int64_t first = globals + window / 2, last = nb - 1 - globals - window / 2;
    for (std::int64_t h = 0; h < 3; ++h)
      for (std::int64_t qb = first; qb <= last; ++qb) {
        std::int64_t by_type[4] = {0, 0, 0, 0};
        for (std::int64_t kb = 0; kb < nb; ++kb) ++by_type[static_cast<int>(e.block_type(h, qb, kb))];
        QCOMPARE(by_type[static_cast<int>(BigBirdBlock::Window)], std::int64_t{window});
        QCOMPARE(by_type[static_cast<int>(BigBirdBlock::Global)], std::int64_t{2 * globals});
        QCOMPARE(by_type[static_cast<int>(BigBirdBlock::Random)], std::int64_t{randoms});
        for (std::int64_t i = qb * block; i < (qb + 1) * block; ++i) {
          std::int64_t nonzero = 0;
          for (std::int64_t j = 0; j < L; ++j) nonzero += run.trace.weights.at(h, i, j) > 0.0f ? 1 : 0;
          QCOMPARE(nonzero, expected);
          QCOMPARE(std::int64_t{e.key_count(h, i)}, expected);
        }
      }
  }

  void global_rows_and_columns_are_full() {
    const Config c{8, 3, 2, 2, false, 9};
    const std::int64_t L = 200;  // 25 blocks, the last one full
    const Tensor q = random_tensor({2, L, 8}, 1), k = random_tensor({2, L, 8}, 2), v = random_tensor({2, L, 8}, 3);
    const Run run = run_bigbird(q, k, v, c, true);
    const auto global_token = [&](std::int64_t t) { return t < 16 || t >= L - 16; };
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t i = 0; i < L; ++i)
        for (std::int64_t j = 0; j < L; ++j)
          if (global_token(i) || global_token(j)) QVERIFY(run.trace.weights.at(h, i, j) > 0.0f);
  }

  void random_blocks_follow_heads_and_seeds() {
    const Tensor q = random_tensor({2, 256, 8}, 1), k = random_tensor({2, 256, 8}, 2), v = random_tensor({2, 256, 8}, 3);
    const Config base{8, 3, 1, 3, false, 100};
    Config other_seed = base;
    other_seed.seed = 101;
    const Run a = run_bigbird(q, k, v, base, true);
    const Run b = run_bigbird(q, k, v, base, true);
    const Run c = run_bigbird(q, k, v, other_seed, true);
    QVERIFY(block_grid(*a.extras(), 0) != block_grid(*a.extras(), 1));  // heads differ
    QVERIFY(block_grid(*a.extras(), 0) == block_grid(*b.extras(), 0));  // same seed, same draw
    QVERIFY(block_grid(*a.extras(), 1) == block_grid(*b.extras(), 1));
    QVERIFY(block_grid(*a.extras(), 0) != block_grid(*c.extras(), 0));  // another seed, another draw
    // The fast path draws the same blocks: its output equals the traced one.
    const Run fast = run_bigbird(q, k, v, base, false);
    for (std::int64_t i = 0; i < fast.out.size(); ++i) QVERIFY(std::abs(fast.out.data()[i] - a.out.data()[i]) < 1e-5f);
  }

  void causal_outputs_before_j_are_bit_identical() {
    const Config c{8, 3, 1, 3, true, 4};
    const std::int64_t L = 203;  // partial last block
    const Tensor q = random_tensor({2, L, 16}, 31), k = random_tensor({2, L, 16}, 32), v = random_tensor({2, L, 16}, 33);
    for (bool trace : {false, true}) {
      const Run base = run_bigbird(q, k, v, c, trace);
      if (trace) {
        for (std::int64_t h = 0; h < 2; ++h)
          for (std::int64_t i = 0; i < L; ++i)
            for (std::int64_t j = i + 1; j < L; ++j) QCOMPARE(base.trace.weights.at(h, i, j), 0.0f);
      }
      for (std::int64_t j : {std::int64_t{1}, std::int64_t{7}, std::int64_t{8}, std::int64_t{100}, L - 1}) {
        Tensor q2 = q, k2 = k, v2 = v;
        perturb_token(q2, k2, v2, j);
        const Run changed = run_bigbird(q2, k2, v2, c, trace);
        for (std::int64_t h = 0; h < 2; ++h) {
          const auto a = base.out.matrix(h).topRows(j);
          const auto b = changed.out.matrix(h).topRows(j);
          QVERIFY2(std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0,
                   qPrintable(QString("outputs before %1 changed (trace=%2)").arg(j).arg(trace)));
          QVERIFY(base.out.matrix(h).row(j) != changed.out.matrix(h).row(j));
        }
      }
    }
  }

  // The fast path rounds the same whichever thread computes a block row.
  void fast_path_independent_of_thread_count() {
    const Tensor q = random_tensor({3, 300, 16}, 1), k = random_tensor({3, 300, 16}, 2), v = random_tensor({3, 300, 16}, 3);
    const Config c{8, 3, 1, 3, true, 2};
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const Run one = run_bigbird(q, k, v, c, false);
    omp_set_num_threads(std::max(2, threads));
    const Run many = run_bigbird(q, k, v, c, false);
    omp_set_num_threads(threads);
    QVERIFY(std::memcmp(one.out.data(), many.out.data(), sizeof(float) * static_cast<std::size_t>(one.out.size())) == 0);
  }

  // field[n] = A^n over blocks (A = union over heads), computed here by plain boolean products.
  void receptive_field_is_the_matrix_power() {
    for (bool causal : {false, true}) {
      const Config c{4, 3, 1, 1, causal, 8};
      const Tensor q = random_tensor({3, 96, 8}, 1), k = random_tensor({3, 96, 8}, 2), v = random_tensor({3, 96, 8}, 3);
      const Run run = run_bigbird(q, k, v, c, true);
      const BigBirdExtras& e = *run.extras();
      const std::int64_t nb = e.n_blocks();
      std::vector<int> adjacency(static_cast<std::size_t>(nb * nb), 0);
      for (std::int64_t h = 0; h < 3; ++h)
        for (std::int64_t i = 0; i < nb; ++i)
          for (std::int64_t j = 0; j < nb; ++j)
            if (e.block_type(h, i, j) != BigBirdBlock::None) adjacency[static_cast<std::size_t>(i * nb + j)] = 1;
      std::vector<int> power = adjacency;
      for (int n = 1; n <= BigBirdExtras::kMaxReceptiveLayers; ++n) {
        if (n > 1) {
          std::vector<int> next(power.size(), 0);
          for (std::int64_t i = 0; i < nb; ++i)
            for (std::int64_t m = 0; m < nb; ++m)
              if (power[static_cast<std::size_t>(i * nb + m)])
                for (std::int64_t j = 0; j < nb; ++j)
                  next[static_cast<std::size_t>(i * nb + j)] |= adjacency[static_cast<std::size_t>(m * nb + j)];
          power = next;
        }
        for (std::int64_t i = 0; i < nb; ++i)
          for (std::int64_t j = 0; j < nb; ++j) QCOMPARE(e.reachable(n, i, j), power[static_cast<std::size_t>(i * nb + j)] != 0);
      }
      // Non-causal, every block reaches every block in 2 layers through the global blocks; causal,
      // no block ever reaches a later one.
      for (std::int64_t i = 0; i < nb; ++i) {
        if (!causal) QCOMPARE(e.reachable_count(2, i), nb);
        for (std::int64_t j = i + 1; causal && j < nb; ++j) QVERIFY(!e.reachable(4, i, j));
      }
    }
  }

  void auto_block_size_rule() {
    QCOMPARE(bigbird_auto_block_size(1), std::int64_t{1});
    QCOMPARE(bigbird_auto_block_size(12), std::int64_t{1});
    QCOMPARE(bigbird_auto_block_size(40), std::int64_t{2});
    QCOMPARE(bigbird_auto_block_size(100), std::int64_t{4});
    QCOMPARE(bigbird_auto_block_size(512), std::int64_t{32});
    QCOMPARE(bigbird_auto_block_size(1023), std::int64_t{32});
    QCOMPARE(bigbird_auto_block_size(1024), std::int64_t{64});
    QCOMPARE(bigbird_auto_block_size(100000), std::int64_t{64});
    const Tensor q = random_tensor({1, 100, 8}, 1), k = random_tensor({1, 100, 8}, 2), v = random_tensor({1, 100, 8}, 3);
    const Run run = run_bigbird(q, k, v, Config{0, 3, 1, 3, false, 1}, true);
    QCOMPARE(run.extras()->layout().block_size, std::int64_t{4});
    QCOMPARE(run.extras()->n_blocks(), std::int64_t{25});
    QVERIFY(run.extras()->data().auto_block_size);
    const auto json = run.extras()->to_json();
    QCOMPARE(json.at("block_size").get<int>(), 4);
    QCOMPARE(json.at("block_types").size(), std::size_t{1});
    QCOMPARE(json.at("block_types")[0].size(), std::size_t{25});
  }

  void parameter_errors_name_the_range() {
    const Tensor q = random_tensor({1, 32, 8}, 1), k = random_tensor({1, 32, 8}, 2), v = random_tensor({1, 32, 8}, 3);
    EXPECT_ERROR(ParamError, run_bigbird(q, k, v, Config{4, 4, 1, 3, false, 1}, false), "window_blocks: an odd integer in [1, 1023]");
    EXPECT_ERROR(ParamError, run_bigbird(q, k, v, Config{4, 2, 1, 3, false, 1}, true), "odd");
    Params p(Registry::builtin().get("bigbird").spec().params);
    EXPECT_ERROR(ParamError, p.set("block_size", std::int64_t{513}), "block_size: an integer in [0, 512]");
    EXPECT_ERROR(ParamError, p.set("window_blocks", std::int64_t{0}), "[1, 1023]");
    EXPECT_ERROR(ParamError, p.set("global_blocks", std::int64_t{-1}), "global_blocks: an integer in [0, 64]");
    EXPECT_ERROR(ParamError, p.set("random_blocks", std::int64_t{65}), "random_blocks: an integer in [0, 64]");
    const Tensor k_long = random_tensor({1, 40, 8}, 4), v_long = random_tensor({1, 40, 8}, 5);
    const Params defaults(Registry::builtin().get("bigbird").spec().params);
    EXPECT_ERROR(ShapeError, run_attention(Registry::builtin().get("bigbird"), AttentionInput{q, k_long, v_long, false, nullptr, &defaults}, nullptr),
                 "as many queries as keys");
  }

  // Without a trace nothing of size L x L is allocated.
  void fast_path_has_no_quadratic_buffer() {
    const std::int64_t L = 4096;
    const Tensor q = random_tensor({1, L, 64}, 1), k = random_tensor({1, L, 64}, 2), v = random_tensor({1, L, 64}, 3);
    const std::int64_t extra = test::peak_bytes_of([&] { run_bigbird(q, k, v, Config{64, 3, 1, 3, false, 1}, false); });
    QVERIFY2(extra < L * L * 4 / 8, qPrintable(QString("fast path held %1 bytes").arg(extra)));
  }

  void honours_cancellation() { test::expect_cancelled_on_both_paths("bigbird", random_tensor({2, 32, 8}, 1)); }
};

QTEST_GUILESS_MAIN(TestBigBird)
#include "test_bigbird.moc"
