// Adaptive Computation Time (basic, per position): the halting bookkeeping against a naive
// double-precision re-implementation of the equations written here, and its closed-form cases.
#include <QtTest>
#include <cmath>
#include <map>

#include "layers/act.h"
#include "layers/weight_table.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

constexpr std::int64_t kD = 16;

RowMatrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed, float stddev = 1.0f) {
  return random_tensor({rows, cols}, seed, stddev).matrix();
}

Params act_params(double epsilon, std::int64_t max_steps, double halting_bias, double ponder_weight = 0.01) {
  Params p(AdaptiveComputationTime::schema());
  p.set("epsilon", epsilon);
  p.set("max_steps", max_steps);
  p.set("halting_bias", halting_bias);
  p.set("ponder_weight", ponder_weight);
  return p;
}

// The test's block: T(s) = tanh(s·M), M [D, D].
struct TanhBlock {
  RowMatrix m;
  explicit TanhBlock(std::uint64_t seed) : m(random_matrix(kD, kD, seed, 1.0f / std::sqrt(static_cast<float>(kD)))) {}
  RowMatrix operator()(const RowMatrix& s) const {
    RowMatrix t = s * m;
    return t.array().tanh().matrix();
  }
  Eigen::MatrixXd exact(const Eigen::MatrixXd& s) const { return (s * m.cast<double>()).array().tanh().matrix(); }
};

// PE(p, 2i) = sin(p / 10000^(2i/D)), PE(p, 2i+1) = cos(same angle), in double.
double sinusoid(std::int64_t position, std::int64_t feature, std::int64_t D) {
  const std::int64_t even = feature - feature % 2;
  const double angle = static_cast<double>(position) / std::pow(10000.0, static_cast<double>(even) / static_cast<double>(D));
  return feature % 2 == 0 ? std::sin(angle) : std::cos(angle);
}

struct Reference {
  Eigen::MatrixXd out;
  std::vector<double> n, remainder, hp;
  int steps_run = 0;
};

// The halting loop of ALGORITHMS.md §10 in double precision, with (1 − w)·previous.
Reference naive_act(const AdaptiveComputationTime& act, const TanhBlock& block, const RowMatrix& x) {
  const Eigen::Index L = x.rows(), D = x.cols();
  const double threshold = 1.0 - act.epsilon;
  const Eigen::VectorXd w_halt = act.halting.weight.col(0).cast<double>();
  const double b_halt = act.halting.bias(0);
  Reference r;
  r.out = Eigen::MatrixXd::Zero(L, D);
  r.n.assign(static_cast<std::size_t>(L), 0.0);
  r.remainder = r.n;
  r.hp = r.n;
  Eigen::MatrixXd state = x.cast<double>();
  for (int step = 0;; ++step) {
    bool any = false;
    for (Eigen::Index i = 0; i < L; ++i) any = any || (r.hp[i] < threshold && r.n[i] < act.max_steps);
    if (!any) break;
    Eigen::MatrixXd s = state;
    for (Eigen::Index i = 0; i < L; ++i)
      for (Eigen::Index f = 0; f < D; ++f) s(i, f) += sinusoid(i, f, D) + sinusoid(step, f, D);
    const Eigen::MatrixXd transformed = block.exact(s);
    for (Eigen::Index i = 0; i < L; ++i) {
      const double p = 1.0 / (1.0 + std::exp(-(s.row(i).dot(w_halt) + b_halt)));
      double& hp = r.hp[i];
      double running = hp < 1.0 ? 1.0 : 0.0;
      const double new_halted = (hp + p * running > threshold ? 1.0 : 0.0) * running;
      running = (hp + p * running <= threshold ? 1.0 : 0.0) * running;
      hp += p * running;
      r.remainder[i] += new_halted * (1.0 - hp);
      hp += new_halted * r.remainder[i];
      r.n[i] += running + new_halted;
      const double w = p * running + new_halted * r.remainder[i];
      r.out.row(i) = w * transformed.row(i) + (1.0 - w) * r.out.row(i);
    }
    state = transformed;
    r.steps_run = step + 1;
  }
  return r;
}

struct Run {
  RowMatrix out;
  Trace trace;
  const HaltingTrace& halting() const { return dynamic_cast<const HaltingTrace&>(*trace.layer_extra("halting")); }
};

Run run_act(const AdaptiveComputationTime& act, const TanhBlock& block, const RowMatrix& x) {
  Run r;
  r.out = act.run(x, [&](const RowMatrix& s, int) { return block(s); }, nullptr, &r.trace);
  return r;
}

// Records every visited weight's name and shape.
class ShapeRecorder final : public WeightTable {
 public:
  std::map<std::string, Shape> shapes;
  void matrix(const std::string& name, RowMatrix&, std::int64_t rows, std::int64_t cols) override { shapes[name] = {rows, cols}; }
  void vector(const std::string& name, RowVector&, std::int64_t size) override { shapes[name] = {size}; }
};

}  // namespace

class TestAct : public QObject {
  Q_OBJECT

 private slots:
  // A mix of threshold-halted and max-stopped positions, compared with the double reference.
  void whole_run_matches_the_naive_double_reference() {
    int halted_seen = 0, stopped_seen = 0;
    for (const double bias : {-3.0, -1.5, 0.0, 1.0}) {
      for (const std::int64_t max_steps : {2, 3, 6}) {
        const AdaptiveComputationTime act = AdaptiveComputationTime::seeded(kD, 2, 32, act_params(0.01, max_steps, bias), 3);
        const TanhBlock block(4);
        const RowMatrix x = random_matrix(24, kD, 5);
        const Run run = run_act(act, block, x);
        const Reference ref = naive_act(act, block, x);
        const HaltingTrace& h = run.halting();
        QCOMPARE(h.steps_run, std::int64_t{ref.steps_run});
        QVERIFY((run.out.cast<double>() - ref.out).cwiseAbs().maxCoeff() < 1e-5);
        for (std::size_t i = 0; i < h.steps.size(); ++i) {
          QCOMPARE(static_cast<double>(h.steps[i]), ref.n[i]);
          QVERIFY(std::abs(h.remainder[i] - ref.remainder[i]) < 1e-5);
          if (h.stopped_by_max[i]) ++stopped_seen; else ++halted_seen;
        }
      }
    }
    QVERIFY(halted_seen > 20);
    QVERIFY(stopped_seen > 20);
  }

  void halted_positions_weights_sum_to_one_and_max_stopped_ones_to_hp() {
    int halted_seen = 0, stopped_seen = 0;
    for (const double bias : {-3.0, -1.5, 0.0, 1.0}) {
      const AdaptiveComputationTime act = AdaptiveComputationTime::seeded(kD, 2, 32, act_params(0.01, 3, bias), 7);
      const RowMatrix x = random_matrix(32, kD, 8);
      const Run run = run_act(act, TanhBlock(9), x);
      const HaltingTrace& h = run.halting();
      for (std::size_t i = 0; i < h.steps.size(); ++i) {
        double sum = 0.0;
        for (const double w : h.update_weights[i]) sum += w;
        QVERIFY(std::abs(sum - h.weights_sum[i]) < 1e-12);
        QVERIFY(h.remainder[i] >= 0.0 && h.remainder[i] <= 1.0);
        QVERIFY(h.steps[i] >= 1 && h.steps[i] <= act.max_steps);
        if (h.stopped_by_max[i]) {
          ++stopped_seen;
          QCOMPARE(std::int64_t{h.steps[i]}, act.max_steps);
          QCOMPARE(h.remainder[i], 0.0);
          QVERIFY(std::abs(h.weights_sum[i] - h.cumulative[i].back()) < 1e-12);
          QVERIFY(h.weights_sum[i] < 1.0 - act.epsilon);
        } else {
          ++halted_seen;
          QVERIFY(std::abs(h.weights_sum[i] - 1.0) < 1e-6);
          QVERIFY(h.remainder[i] > 0.0);
          // After the halting step: p and w are 0 and hp stays at 1.
          for (std::int64_t t = h.steps[i]; t < h.steps_run; ++t) {
            QCOMPARE(h.probabilities[i][static_cast<std::size_t>(t)], 0.0);
            QCOMPARE(h.update_weights[i][static_cast<std::size_t>(t)], 0.0);
            QVERIFY(std::abs(h.cumulative[i][static_cast<std::size_t>(t)] - 1.0) < 1e-12);
          }
        }
      }
    }
    QVERIFY(halted_seen > 20);
    QVERIFY(stopped_seen > 20);
  }

  void huge_halting_bias_takes_exactly_one_full_step() {
    const AdaptiveComputationTime act = AdaptiveComputationTime::seeded(kD, 2, 32, act_params(0.01, 8, 20.0), 11);
    const RowMatrix x = random_matrix(12, kD, 12);
    const TanhBlock block(13);
    RowMatrix seen;
    int calls = 0;
    Trace trace;
    const RowMatrix out = act.run(x, [&](const RowMatrix& s, int step) {
      calls += step == 0 ? 1 : 100;
      seen = s;
      return block(s);
    }, nullptr, &trace);
    QCOMPARE(calls, 1);
    const auto& h = dynamic_cast<const HaltingTrace&>(*trace.layer_extra("halting"));
    QCOMPARE(h.steps_run, std::int64_t{1});
    for (std::size_t i = 0; i < h.steps.size(); ++i) {
      QCOMPARE(h.steps[i], 1);
      QCOMPARE(h.update_weights[i][0], 1.0);
      QCOMPARE(h.remainder[i], 1.0);
      QVERIFY(!h.stopped_by_max[i]);
    }
    // The transition saw x + timing(0), and the output is exactly its result.
    for (Eigen::Index i = 0; i < x.rows(); ++i)
      for (Eigen::Index f = 0; f < kD; ++f)
        QVERIFY(std::abs(seen(i, f) - (x(i, f) + sinusoid(i, f, kD) + sinusoid(0, f, kD))) < 1e-5);
    QVERIFY(out == block(seen));
  }

  void very_negative_bias_stops_every_position_at_max_steps() {
    const AdaptiveComputationTime act = AdaptiveComputationTime::seeded(kD, 2, 32, act_params(0.01, 3, -20.0), 14);
    const Run run = run_act(act, TanhBlock(15), random_matrix(10, kD, 16));
    const HaltingTrace& h = run.halting();
    QCOMPARE(h.steps_run, std::int64_t{3});
    for (std::size_t i = 0; i < h.steps.size(); ++i) {
      QVERIFY(h.stopped_by_max[i]);
      QCOMPARE(h.steps[i], 3);
      QCOMPARE(h.remainder[i], 0.0);
      QVERIFY(h.weights_sum[i] < 1e-6);
    }
  }

  void ponder_cost_and_json_follow_the_trace() {
    const AdaptiveComputationTime act = AdaptiveComputationTime::seeded(kD, 2, 32, act_params(0.05, 4, 0.0, 0.5), 17);
    const Run run = run_act(act, TanhBlock(18), random_matrix(9, kD, 19));
    const HaltingTrace& h = run.halting();
    double total = 0.0;
    for (std::size_t i = 0; i < h.steps.size(); ++i) total += h.steps[i] + h.remainder[i];
    QVERIFY(std::abs(h.ponder_cost - 0.5 * total / 9.0) < 1e-12);
    QCOMPARE(h.kind(), std::string_view("halting"));
    const nlohmann::json j = h.to_json();
    for (const char* key : {"steps", "probabilities", "update_weights", "cumulative", "remainder", "weights_sum",
                            "stopped_by_max", "ponder_cost", "epsilon", "max_steps", "steps_run"}) {
      QVERIFY2(j.contains(key), key);
    }
    QCOMPARE(j["probabilities"].size(), std::size_t{9});
    QCOMPARE(j["update_weights"][0].size(), static_cast<std::size_t>(h.steps_run));
    QCOMPARE(j["max_steps"].get<std::int64_t>(), std::int64_t{4});
    QVERIFY(run.trace.weights.empty());
  }

  void fast_path_equals_traced_path() {
    const AdaptiveComputationTime act = AdaptiveComputationTime::seeded(kD, 2, 32, act_params(0.01, 5, 0.0), 20);
    const TanhBlock block(21);
    const RowMatrix x = random_matrix(14, kD, 22);
    const RowMatrix fast = act.run(x, [&](const RowMatrix& s, int) { return block(s); }, nullptr, nullptr);
    QVERIFY(fast == run_act(act, block, x).out);
  }

  void weights_are_listed_once() {
    AdaptiveComputationTime act = AdaptiveComputationTime::seeded(kD, 2, 32, act_params(0.01, 8, 1.0), 23);
    QCOMPARE(act.halting.bias(0), 1.0f);
    ShapeRecorder table;
    act.visit_weights("layers.2.", table);
    QCOMPARE(table.shapes.size(), std::size_t{2});
    QVERIFY((table.shapes["layers.2.halting.weight"] == Shape{kD, 1}));
    QVERIFY((table.shapes["layers.2.halting.bias"] == Shape{1}));
  }

  void bad_inputs_are_refused() {
    Params p(AdaptiveComputationTime::schema());
    EXPECT_ERROR(ParamError, p.set("epsilon", 0.9), "epsilon");
    EXPECT_ERROR(ParamError, p.set("max_steps", std::int64_t{0}), "max_steps: an integer in [1, 64]");
    EXPECT_ERROR(ParamError, p.set("halting_bias", 30.0), "halting_bias");
    const AdaptiveComputationTime act = AdaptiveComputationTime::seeded(kD, 2, 32, p, 24);
    const auto identity = [](const RowMatrix& s, int) { return s; };
    EXPECT_ERROR(ShapeError, act.run(random_matrix(4, kD + 1, 25), identity, nullptr, nullptr), "ACT expects");
    EXPECT_ERROR(ShapeError,
                 act.run(random_matrix(4, kD, 25), [](const RowMatrix& s, int) { return RowMatrix(s.leftCols(3)); },
                         nullptr, nullptr),
                 "transition must return");
    CancelToken token;
    token.cancel();
    EXPECT_ERROR(CancelledError, act.run(random_matrix(4, kD, 25), identity, &token, nullptr), "cancelled");
  }
};

QTEST_APPLESS_MAIN(TestAct)
#include "test_act.moc"
