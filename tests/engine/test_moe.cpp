// Mixture-of-experts feed-forward (Switch top-1, GShard top-2): routing, capacity and the combine
// against naive double-precision experts and router written here, and the closed-form losses.
#include <QtTest>
#include <cmath>
#include <map>

#include "layers/moe.h"
#include "layers/weight_table.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

constexpr std::int64_t kD = 16, kF = 24;

RowMatrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  return random_tensor({rows, cols}, seed).matrix();
}

Params moe_params(std::int64_t experts, std::int64_t top_k, double capacity_factor, double second_threshold = 0.2) {
  Params p(MoeFeedForward::schema());
  p.set("experts", experts);
  p.set("top_k", top_k);
  p.set("capacity_factor", capacity_factor);
  p.set("second_threshold", second_threshold);
  return p;
}

// down(gelu(up(x))) with the exact erf GELU, in double.
Eigen::RowVectorXd naive_expert(const FeedForward& ff, const Eigen::RowVectorXd& x) {
  Eigen::RowVectorXd h = x * ff.up.weight.cast<double>() + ff.up.bias.cast<double>();
  for (Eigen::Index u = 0; u < h.size(); ++u) h(u) = 0.5 * h(u) * (1.0 + std::erf(h(u) / std::sqrt(2.0)));
  return h * ff.down.weight.cast<double>() + ff.down.bias.cast<double>();
}

// softmax(x·W_r + b_r) per token, in double: [L, E].
Eigen::MatrixXd naive_router(const MoeFeedForward& moe, const RowMatrix& x) {
  Eigen::MatrixXd logits = x.cast<double>() * moe.router.weight.cast<double>();
  logits.rowwise() += moe.router.bias.cast<double>();
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const double m = logits.row(i).maxCoeff();
    logits.row(i) = (logits.row(i).array() - m).exp();
    logits.row(i) /= logits.row(i).sum();
  }
  return logits;
}

struct Run {
  RowMatrix out;
  Trace trace;
  const ExpertsTrace& experts() const { return dynamic_cast<const ExpertsTrace&>(*trace.layer_extra("experts")); }
};

Run run_moe(const MoeFeedForward& moe, const RowMatrix& x, std::uint64_t seed = 1) {
  Run r;
  r.out = moe.forward(x, seed, &r.trace);
  return r;
}

double max_abs_diff(const RowMatrix& a, const Eigen::MatrixXd& b) { return (a.cast<double>() - b).cwiseAbs().maxCoeff(); }

// Σ over the trace's kept slots of gate · Expert_e(x_i), in double.
Eigen::MatrixXd naive_combine(const MoeFeedForward& moe, const ExpertsTrace& t, const RowMatrix& x) {
  Eigen::MatrixXd y = Eigen::MatrixXd::Zero(x.rows(), x.cols());
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (std::size_t s = 0; s < t.experts[i].size(); ++s) {
      const std::int32_t e = t.experts[i][s];
      if (e < 0) continue;
      y.row(i) += t.gates[i][s] * naive_expert(moe.experts[e], x.row(i).cast<double>());
    }
  }
  return y;
}

class ShapeRecorder final : public WeightTable {
 public:
  std::map<std::string, Shape> shapes;
  void matrix(const std::string& name, RowMatrix&, std::int64_t rows, std::int64_t cols) override { shapes[name] = {rows, cols}; }
  void vector(const std::string& name, RowVector&, std::int64_t size) override { shapes[name] = {size}; }
};

}  // namespace

class TestMoe : public QObject {
  Q_OBJECT

 private slots:
  void tokens_per_expert_never_exceed_capacity() {
    for (const std::int64_t k : {1, 2}) {
      for (const double cf : {0.25, 0.5, 1.0, 1.25}) {
        const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(4, k, cf, 0.0), 2);
        const std::int64_t L = 40;
        const Run run = run_moe(moe, random_matrix(L, kD, 3));
        const ExpertsTrace& t = run.experts();
        const std::int64_t C = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::floor(L * cf / 4)));
        QCOMPARE(t.capacity, C);
        std::vector<std::int32_t> counted(4, 0);
        std::int64_t dropped = 0;
        for (std::int64_t i = 0; i < L; ++i) {
          bool kept = false;
          for (const std::int32_t e : t.experts[i]) {
            if (e >= 0) ++counted[e], kept = true;
          }
          if (!kept) ++dropped;
        }
        QCOMPARE(static_cast<std::int64_t>(t.dropped.size()), dropped);
        // Demand counts the slots routed before capacity; a kept slot keeps its routed expert.
        std::vector<std::int32_t> routed(4, 0);
        for (std::int64_t i = 0; i < L; ++i) {
          for (std::size_t s = 0; s < t.routed[i].size(); ++s) {
            if (t.routed[i][s] >= 0) ++routed[t.routed[i][s]];
            if (t.experts[i][s] >= 0) QCOMPARE(t.experts[i][s], t.routed[i][s]);
          }
        }
        QVERIFY(routed == t.demand);
        for (std::int64_t e = 0; e < 4; ++e) {
          QCOMPARE(counted[e], t.load[e]);
          QVERIFY(t.load[e] <= C);
          QCOMPARE(t.load[e], std::min<std::int32_t>(t.demand[e], static_cast<std::int32_t>(C)));
        }
      }
    }
  }

  // First choices take their positions before any second choice: with capacity for exactly the
  // first choices of an expert, its second-choice slots are all dropped.
  void first_choices_are_placed_before_second_choices() {
    const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(2, 2, 1.0, 0.0), 4);
    const std::int64_t L = 30;
    const Run run = run_moe(moe, random_matrix(L, kD, 5));
    const ExpertsTrace& t = run.experts();
    const Eigen::MatrixXd p = naive_router(moe, random_matrix(L, kD, 5));
    // Recount from the naive router: expert of each slot, position by first-then-second order.
    std::vector<std::int32_t> used(2, 0);
    std::vector<std::vector<std::int32_t>> expected(L, std::vector<std::int32_t>(2, -1));
    for (int s = 0; s < 2; ++s) {
      for (std::int64_t i = 0; i < L; ++i) {
        const int first = p(i, 1) > p(i, 0) ? 1 : 0;
        const int e = s == 0 ? first : 1 - first;
        if (used[e]++ < t.capacity) expected[i][s] = e;
      }
    }
    for (std::int64_t i = 0; i < L; ++i) {
      QVERIFY(t.experts[i] == expected[i]);
      const int first = p(i, 1) > p(i, 0) ? 1 : 0;
      QVERIFY((t.routed[i] == std::vector<std::int32_t>{first, 1 - first}));  // threshold 0: both routed
    }
  }

  void huge_capacity_factor_drops_nothing() {
    for (const std::int64_t k : {1, 2}) {
      const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(4, k, 64.0, 0.0), 6);
      const Run run = run_moe(moe, random_matrix(50, kD, 7));
      const ExpertsTrace& t = run.experts();
      QVERIFY(t.dropped.empty());
      QVERIFY(t.load == t.demand);
      for (const auto& token_slots : t.experts)
        for (const std::int32_t e : token_slots) QVERIFY(e >= 0);
    }
  }

  void one_expert_is_the_dense_feed_forward() {
    for (const std::int64_t k : {1, 2}) {
      const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(1, k, 1.0), 8);
      const RowMatrix x = random_matrix(20, kD, 9);
      Eigen::MatrixXd dense(x.rows(), kD);
      for (Eigen::Index i = 0; i < x.rows(); ++i) dense.row(i) = naive_expert(moe.experts[0], x.row(i).cast<double>());
      QVERIFY(max_abs_diff(moe.forward(x, 1, nullptr), dense) < 1e-5);
    }
  }

  // Uniform router probabilities: aux = E · Σ f_e / E = 1, z = log(E)².
  void uniform_router_gives_unit_aux_loss() {
    for (const std::int64_t E : {1, 3, 4, 7}) {
      MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(E, 1, 1.25), 10);
      moe.router.weight.setZero();
      const Run run = run_moe(moe, random_matrix(33, kD, 11));
      const ExpertsTrace& t = run.experts();
      QVERIFY(std::abs(t.aux_loss - 1.0) < 1e-6);
      QVERIFY(std::abs(t.aux_loss_weighted - 0.01 * t.aux_loss) < 1e-12);
      const double lse = std::log(static_cast<double>(E));
      QVERIFY(std::abs(t.z_loss - lse * lse) < 1e-5);
      QVERIFY(std::abs(t.z_loss_weighted - 0.001 * t.z_loss) < 1e-12);
    }
  }

  void losses_match_the_naive_router() {
    const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(5, 2, 1.0), 12);
    const RowMatrix x = random_matrix(37, kD, 13);
    const Run held = run_moe(moe, x);
    const ExpertsTrace& t = held.experts();
    const Eigen::MatrixXd p = naive_router(moe, x);
    Eigen::MatrixXd logits = x.cast<double>() * moe.router.weight.cast<double>();
    Eigen::RowVectorXd f = Eigen::RowVectorXd::Zero(5);
    double z = 0.0;
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      Eigen::Index best;
      p.row(i).maxCoeff(&best);
      f(best) += 1.0 / static_cast<double>(x.rows());
      const double lse = std::log(logits.row(i).array().exp().sum());
      z += lse * lse / static_cast<double>(x.rows());
      for (Eigen::Index e = 0; e < 5; ++e) QVERIFY(std::abs(t.router_probabilities.at(i, e) - p(i, e)) < 1e-6);
    }
    const double aux = 5.0 * f.dot(p.colwise().mean());
    QVERIFY(std::abs(t.aux_loss - aux) < 1e-6);
    QVERIFY(std::abs(t.z_loss - z) < 1e-5);
  }

  void output_is_the_gated_sum_of_expert_outputs() {
    for (const std::int64_t k : {1, 2}) {
      for (const double cf : {0.5, 2.0}) {
        const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(4, k, cf, 0.3), 14);
        const RowMatrix x = random_matrix(30, kD, 15);
        const Run run = run_moe(moe, x, 16);
        const ExpertsTrace& t = run.experts();
        QVERIFY(max_abs_diff(run.out, naive_combine(moe, t, x)) < 1e-5);
        // The gates are the router's: p of the top choice (top-1), or the renormalised pair (top-2).
        const Eigen::MatrixXd p = naive_router(moe, x);
        for (Eigen::Index i = 0; i < x.rows(); ++i) {
          std::vector<Eigen::Index> order(4);
          for (Eigen::Index e = 0; e < 4; ++e) order[e] = e;
          std::sort(order.begin(), order.end(), [&](Eigen::Index a, Eigen::Index b) { return p(i, a) > p(i, b); });
          const double g1 = k == 1 ? p(i, order[0]) : p(i, order[0]) / (p(i, order[0]) + p(i, order[1]));
          if (t.experts[i][0] >= 0) {
            QCOMPARE(t.experts[i][0], static_cast<std::int32_t>(order[0]));
            QVERIFY(std::abs(t.gates[i][0] - g1) < 1e-6);
          } else {
            QCOMPARE(t.gates[i][0], 0.0f);
          }
          if (k == 2 && t.experts[i][1] >= 0) {
            QCOMPARE(t.experts[i][1], static_cast<std::int32_t>(order[1]));
            QVERIFY(std::abs(t.gates[i][1] - (1.0 - g1)) < 1e-6);
          }
        }
        // The fast path gives the same output.
        QVERIFY(moe.forward(x, 16, nullptr) == run.out);
      }
    }
  }

  void top2_with_zero_threshold_keeps_both_experts() {
    const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(4, 2, 64.0, 0.0), 17);
    const Run held = run_moe(moe, random_matrix(40, kD, 18));
    const ExpertsTrace& t = held.experts();
    for (std::size_t i = 0; i < t.experts.size(); ++i) {
      QVERIFY(t.experts[i][0] >= 0 && t.experts[i][1] >= 0 && t.experts[i][0] != t.experts[i][1]);
      QVERIFY(std::abs(t.gates[i][0] + t.gates[i][1] - 1.0f) < 1e-6f);
      QVERIFY(t.gates[i][0] >= t.gates[i][1]);
    }
  }

  // The second expert is kept with probability min(1, g2 / threshold): the kept count over many
  // tokens is within 5 standard deviations of the expected count.
  void second_expert_keep_rate_follows_its_gate() {
    const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(4, 2, 64.0, 0.6), 19);
    const std::int64_t L = 3000;
    const Run held = run_moe(moe, random_matrix(L, kD, 20), 21);
    const ExpertsTrace& t = held.experts();
    const Eigen::MatrixXd p = naive_router(moe, random_matrix(L, kD, 20));
    double expected = 0.0, variance = 0.0;
    std::int64_t kept = 0;
    for (std::int64_t i = 0; i < L; ++i) {
      Eigen::RowVectorXd row = p.row(i);
      Eigen::Index first, second;
      const double p1 = row.maxCoeff(&first);
      row(first) = -1.0;
      const double p2 = row.maxCoeff(&second);
      const double keep = std::min(1.0, p2 / (p1 + p2) / 0.6);
      expected += keep;
      variance += keep * (1.0 - keep);
      if (t.experts[i][1] >= 0) ++kept;
    }
    QVERIFY(expected > 100 && expected < L - 100);  // the test exercises the random keep
    QVERIFY2(std::abs(static_cast<double>(kept) - expected) < 5.0 * std::sqrt(variance),
             qPrintable(QString("kept %1, expected %2").arg(kept).arg(expected)));
  }

  void same_seed_same_result_other_seed_other_draws() {
    const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(4, 2, 1.0, 1.0), 22);
    const RowMatrix x = random_matrix(60, kD, 23);
    const Run a = run_moe(moe, x, 5), b = run_moe(moe, x, 5), c = run_moe(moe, x, 6);
    QVERIFY(a.out == b.out);
    QVERIFY(a.experts().experts == b.experts().experts);
    QVERIFY(a.experts().experts != c.experts().experts);
    // Seeded construction is reproducible too.
    const MoeFeedForward again = MoeFeedForward::seeded(kD, 2, kF, moe_params(4, 2, 1.0, 1.0), 22);
    QVERIFY(again.forward(x, 5, nullptr) == a.out);
  }

  void dropped_tokens_output_exactly_zero() {
    for (const std::int64_t k : {1, 2}) {
      const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(4, k, 0.25, 0.2), 24);
      const RowMatrix x = random_matrix(40, kD, 25);
      const Run run = run_moe(moe, x);
      const ExpertsTrace& t = run.experts();
      QVERIFY(!t.dropped.empty());
      for (const std::int32_t i : t.dropped) {
        QVERIFY(run.out.row(i).isZero(0.0f));
        for (std::size_t s = 0; s < t.experts[i].size(); ++s) {
          QCOMPARE(t.experts[i][s], -1);
          QCOMPARE(t.gates[i][s], 0.0f);
        }
      }
    }
  }

  void json_and_weights() {
    MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, moe_params(3, 2, 1.0), 26);
    const Run run = run_moe(moe, random_matrix(8, kD, 27));
    QCOMPARE(run.experts().kind(), std::string_view("experts"));
    QVERIFY(run.trace.weights.empty());
    const nlohmann::json j = run.experts().to_json();
    for (const char* key : {"experts", "routed", "gates", "router_probabilities", "load", "demand", "capacity", "dropped",
                            "aux_loss", "aux_loss_weighted", "z_loss", "z_loss_weighted", "top_k", "capacity_factor"}) {
      QVERIFY2(j.contains(key), key);
    }
    QCOMPARE(j["router_probabilities"].size(), std::size_t{8});
    QCOMPARE(j["router_probabilities"][0].size(), std::size_t{3});
    QCOMPARE(j["experts"][0].size(), std::size_t{2});
    ShapeRecorder table;
    moe.visit_weights("layers.0.", table);
    QCOMPARE(table.shapes.size(), std::size_t{2 + 3 * 4});
    QVERIFY((table.shapes["layers.0.router.weight"] == Shape{kD, 3}));
    QVERIFY((table.shapes["layers.0.experts.2.up.weight"] == Shape{kD, kF}));
    QVERIFY((table.shapes["layers.0.experts.2.down.bias"] == Shape{kD}));
  }

  void bad_inputs_are_refused() {
    Params p(MoeFeedForward::schema());
    EXPECT_ERROR(ParamError, p.set("experts", std::int64_t{0}), "experts: an integer in [1, 128]");
    EXPECT_ERROR(ParamError, p.set("top_k", std::int64_t{3}), "top_k: an integer in [1, 2]");
    EXPECT_ERROR(ParamError, p.set("capacity_factor", 0.0), "capacity_factor");
    EXPECT_ERROR(ParamError, p.set("second_threshold", 1.5), "second_threshold");
    EXPECT_ERROR(ParamError, MoeFeedForward::seeded(kD, 2, 0, p, 1), "d_ff");
    const MoeFeedForward moe = MoeFeedForward::seeded(kD, 2, kF, p, 1);
    EXPECT_ERROR(ShapeError, moe.forward(random_matrix(3, kD + 2, 1), 0, nullptr), "mixture of experts expects");
  }
};

QTEST_APPLESS_MAIN(TestMoe)
#include "test_moe.moc"
