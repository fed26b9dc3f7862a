// Scaling-Transformer sparse feed-forward (eval mode): against a naive double-precision dense
// FFN with the unselected units zeroed, written here; gather path against masked dense path.
#include <QtTest>
#include <cmath>
#include <map>

#include "layers/sparse_ff.h"
#include "layers/weight_table.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

constexpr std::int64_t kD = 24;

RowMatrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  return random_tensor({rows, cols}, seed).matrix();
}

Params sparse_params(std::int64_t block_size, std::int64_t d_lowrank) {
  Params p(SparseFeedForward::schema());
  p.set("block_size", block_size);
  p.set("d_lowrank", d_lowrank);
  return p;
}

// A layer with nonzero biases everywhere (seeded ones are zero), so the test sees them used.
SparseFeedForward layer_with_biases(std::int64_t d_ff, std::int64_t block_size, std::int64_t d_lowrank, std::uint64_t seed) {
  SparseFeedForward ff = SparseFeedForward::seeded(kD, 4, d_ff, sparse_params(block_size, d_lowrank), seed);
  ff.up.bias = random_matrix(1, d_ff, seed + 100) * 0.3f;
  ff.down.bias = random_matrix(1, kD, seed + 101) * 0.3f;
  ff.controller_m1.bias = random_matrix(1, d_lowrank, seed + 102) * 0.3f;
  ff.controller_m2.bias = random_matrix(1, d_ff, seed + 103) * 0.3f;
  return ff;
}

struct Reference {
  Eigen::MatrixXd y;                             // [L, D]
  std::vector<std::vector<std::int32_t>> active;  // [L][B]
};

// logits = (x·M1 + b)·M2 + b, argmax per block; y = (ReLU(x·W1 + b1) ⊙ mask)·W2 + b2, in double.
Reference naive_sparse_ff(const SparseFeedForward& ff, const RowMatrix& x) {
  const Eigen::MatrixXd xd = x.cast<double>();
  Eigen::MatrixXd low = xd * ff.controller_m1.weight.cast<double>();
  low.rowwise() += ff.controller_m1.bias.cast<double>();
  Eigen::MatrixXd logits = low * ff.controller_m2.weight.cast<double>();
  logits.rowwise() += ff.controller_m2.bias.cast<double>();
  Eigen::MatrixXd h = xd * ff.up.weight.cast<double>();
  h.rowwise() += ff.up.bias.cast<double>();
  const std::int64_t N = ff.block_size, B = ff.d_ff / N;
  Reference r;
  r.active.assign(static_cast<std::size_t>(x.rows()), std::vector<std::int32_t>(static_cast<std::size_t>(B)));
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (std::int64_t b = 0; b < B; ++b) {
      Eigen::Index best;
      logits.row(i).segment(b * N, N).maxCoeff(&best);
      r.active[i][b] = static_cast<std::int32_t>(best);
      for (std::int64_t n = 0; n < N; ++n) {
        if (n != best) h(i, b * N + n) = 0.0;
      }
    }
  }
  h = h.cwiseMax(0.0);
  r.y = h * ff.down.weight.cast<double>();
  r.y.rowwise() += ff.down.bias.cast<double>();
  return r;
}

double max_abs_diff(const RowMatrix& a, const Eigen::MatrixXd& b) { return (a.cast<double>() - b).cwiseAbs().maxCoeff(); }

struct Run {
  RowMatrix out;
  Trace trace;
  const SparseFfTrace& sparse() const { return dynamic_cast<const SparseFfTrace&>(*trace.layer_extra("sparse_ff")); }
};

Run traced(const SparseFeedForward& ff, const RowMatrix& x) {
  Run r;
  r.out = ff.forward(x, 0, &r.trace);
  return r;
}

class ShapeRecorder final : public WeightTable {
 public:
  std::map<std::string, Shape> shapes;
  void matrix(const std::string& name, RowMatrix&, std::int64_t rows, std::int64_t cols) override { shapes[name] = {rows, cols}; }
  void vector(const std::string& name, RowVector&, std::int64_t size) override { shapes[name] = {size}; }
};

}  // namespace

class TestSparseFf : public QObject {
  Q_OBJECT

 private slots:
  void equals_dense_ffn_with_unselected_units_zeroed() {
    for (const auto& [d_ff, N, rank] : std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>>{
             {64, 8, 6}, {96, 32, 16}, {40, 2, 3}, {32, 32, 8}}) {
      const SparseFeedForward ff = layer_with_biases(d_ff, N, rank, 2);
      const RowMatrix x = random_matrix(19, kD, 3);
      const Reference ref = naive_sparse_ff(ff, x);
      const Run run = traced(ff, x);
      QVERIFY(max_abs_diff(run.out, ref.y) < 1e-5);
      QVERIFY(max_abs_diff(ff.forward(x, 0, nullptr), ref.y) < 1e-5);
      QVERIFY(run.sparse().active_units == ref.active);
    }
  }

  void exactly_one_unit_per_block_is_used() {
    const std::int64_t F = 64, N = 8;
    const SparseFeedForward ff = layer_with_biases(F, N, 5, 4);
    const RowMatrix x = random_matrix(1, kD, 5);  // one token, as in decoding
    const Run run = traced(ff, x);
    const auto& active = run.sparse().active_units;
    QCOMPARE(active.size(), std::size_t{1});
    QCOMPARE(static_cast<std::int64_t>(active[0].size()), F / N);
    for (const std::int32_t a : active[0]) QVERIFY(a >= 0 && a < N);
    // Changing every unselected unit's weights leaves both paths' output bit-identical ...
    SparseFeedForward changed = ff;
    std::vector<bool> selected(F, false);
    for (std::int64_t b = 0; b < F / N; ++b) selected[b * N + active[0][b]] = true;
    for (std::int64_t u = 0; u < F; ++u) {
      if (selected[u]) continue;
      changed.up.weight.col(u).array() += 1.0f;
      changed.up.bias(u) += 5.0f;
      changed.down.weight.row(u).array() -= 2.0f;
    }
    // (the controller is untouched, so the same units are selected)
    QVERIFY(changed.forward(x, 0, nullptr) == ff.forward(x, 0, nullptr));
    QVERIFY(traced(changed, x).out == run.out);
    // ... while changing a selected one does not.
    SparseFeedForward touched = ff;
    for (std::int64_t u = 0; u < F; ++u) {
      if (selected[u]) touched.down.weight.row(u).array() += 1.0f, touched.up.bias(u) += 5.0f;
    }
    QVERIFY(touched.forward(x, 0, nullptr) != ff.forward(x, 0, nullptr));
  }

  void gather_path_equals_masked_dense_path() {
    const SparseFeedForward ff = layer_with_biases(128, 16, 12, 6);
    const RowMatrix x = random_matrix(300, kD, 7);
    const RowMatrix gathered = ff.forward(x, 0, nullptr);
    const RowMatrix dense = traced(ff, x).out;
    QVERIFY((gathered - dense).cwiseAbs().maxCoeff() < 1e-5f);
  }

  void controller_entropy_matches_its_definition() {
    // Uniform logits: every block's softmax is uniform (entropy log N) and the first unit wins ties.
    SparseFeedForward ff = layer_with_biases(48, 6, 4, 8);
    ff.controller_m2.weight.setZero();
    ff.controller_m2.bias.setZero();
    const Run uniform = traced(ff, random_matrix(5, kD, 9));
    for (std::size_t i = 0; i < 5; ++i) {
      QVERIFY(std::abs(uniform.sparse().controller_entropy[i] - std::log(6.0)) < 1e-9);
      for (const std::int32_t a : uniform.sparse().active_units[i]) QCOMPARE(a, 0);
    }
    // General logits: mean over blocks of −Σ p log p, from the naive logits.
    const SparseFeedForward g = layer_with_biases(48, 6, 4, 10);
    const RowMatrix x = random_matrix(7, kD, 11);
    const Run run = traced(g, x);
    Eigen::MatrixXd low = x.cast<double>() * g.controller_m1.weight.cast<double>();
    low.rowwise() += g.controller_m1.bias.cast<double>();
    Eigen::MatrixXd logits = low * g.controller_m2.weight.cast<double>();
    logits.rowwise() += g.controller_m2.bias.cast<double>();
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      double mean = 0.0;
      for (int b = 0; b < 8; ++b) {
        double total = 0.0, entropy = 0.0;
        for (int n = 0; n < 6; ++n) total += std::exp(logits(i, b * 6 + n));
        for (int n = 0; n < 6; ++n) {
          const double p = std::exp(logits(i, b * 6 + n)) / total;
          entropy -= p * std::log(p);
        }
        mean += entropy / 8.0;
      }
      QVERIFY(std::abs(run.sparse().controller_entropy[i] - mean) < 1e-5);
    }
  }

  void json_and_weights() {
    SparseFeedForward ff = SparseFeedForward::seeded(kD, 4, 64, sparse_params(16, 10), 12);
    QVERIFY(ff.controller_m1.bias.isZero(0.0f));
    const Run run = traced(ff, random_matrix(3, kD, 13));
    QCOMPARE(run.sparse().kind(), std::string_view("sparse_ff"));
    QVERIFY(run.trace.weights.empty());
    const nlohmann::json j = run.sparse().to_json();
    for (const char* key : {"active_units", "controller_entropy", "block_size", "blocks"}) QVERIFY2(j.contains(key), key);
    QCOMPARE(j["blocks"].get<std::int64_t>(), std::int64_t{4});
    QCOMPARE(j["block_size"].get<std::int64_t>(), std::int64_t{16});
    QCOMPARE(j["active_units"][2].size(), std::size_t{4});
    ShapeRecorder table;
    ff.visit_weights("layers.1.", table);
    const std::map<std::string, Shape> expected{
        {"layers.1.up.weight", {kD, 64}},           {"layers.1.up.bias", {64}},
        {"layers.1.down.weight", {64, kD}},         {"layers.1.down.bias", {kD}},
        {"layers.1.controller.m1.weight", {kD, 10}}, {"layers.1.controller.m1.bias", {10}},
        {"layers.1.controller.m2.weight", {10, 64}}, {"layers.1.controller.m2.bias", {64}}};
    QVERIFY(table.shapes == expected);
  }

  void bad_inputs_are_refused() {
    EXPECT_ERROR(ParamError, SparseFeedForward::seeded(kD, 4, 100, sparse_params(32, 8), 1),
                 "d_ff=100 is not divisible by block_size=32");
    EXPECT_ERROR(ParamError, SparseFeedForward::seeded(kD, 4, 16, sparse_params(32, 8), 1), "block_size=32");
    Params p(SparseFeedForward::schema());
    EXPECT_ERROR(ParamError, p.set("block_size", std::int64_t{1}), "block_size: an integer in [2, 1024]");
    EXPECT_ERROR(ParamError, p.set("d_lowrank", std::int64_t{0}), "d_lowrank: an integer in [1, 4096]");
    const SparseFeedForward ff = SparseFeedForward::seeded(kD, 4, 64, sparse_params(8, 8), 1);
    EXPECT_ERROR(ShapeError, ff.forward(random_matrix(2, kD - 1, 1), 0, nullptr), "sparse feed-forward expects");
  }
};

QTEST_APPLESS_MAIN(TestSparseFf)
#include "test_sparse_ff.moc"
