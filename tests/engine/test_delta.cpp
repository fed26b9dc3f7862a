// DeltaNet against references written here: the recurrence in double precision, the chunkwise form,
// the closed cases of the delta rule, the implied linear map, causality, and the recorded states.
#include <QtTest>
#include <cmath>
#include <nlohmann/json.hpp>

#include "attention/delta.h"
#include "attention/registry.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

// delta with `params` over its defaults; the trace, when one is passed, is filled.
Tensor run(const Tensor& q, const Tensor& k, const Tensor& v, const nlohmann::json& params, bool causal,
           Trace* trace = nullptr, std::uint64_t seed = 1) {
  test::VariantRun r = test::run_variant("delta", q, k, v, params, {causal, seed, trace != nullptr});
  if (trace) *trace = std::move(r.trace);
  return std::move(r.out);
}

// The delta rule in double precision, written from the equations: [L, dv] for head h.
Eigen::MatrixXd reference(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t h, double beta, bool causal) {
  const std::int64_t L = q.dim(1), d = q.dim(2), dv = v.dim(2);
  Eigen::MatrixXd W = Eigen::MatrixXd::Zero(dv, d), out(L, dv);
  for (std::int64_t t = 0; t < L; ++t) {
    Eigen::VectorXd key(d), value(dv), query(d);
    for (std::int64_t c = 0; c < d; ++c) {
      key(c) = k.at(h, t, c);
      query(c) = q.at(h, t, c) / std::sqrt(static_cast<double>(d));
    }
    key /= key.norm();
    for (std::int64_t c = 0; c < dv; ++c) value(c) = v.at(h, t, c);
    W += beta * (value - W * key) * key.transpose();
    out.row(t) = (W * query).transpose();
  }
  if (!causal) {
    for (std::int64_t t = 0; t < L; ++t) {
      Eigen::VectorXd query(d);
      for (std::int64_t c = 0; c < d; ++c) query(c) = q.at(h, t, c) / std::sqrt(static_cast<double>(d));
      out.row(t) = (W * query).transpose();
    }
  }
  return out;
}

double max_diff(const Tensor& a, std::int64_t h, const Eigen::MatrixXd& b) {
  return (a.matrix(h).cast<double>() - b).cwiseAbs().maxCoeff();
}

}  // namespace

class TestDelta : public QObject {
  Q_OBJECT

 private slots:
  void matches_the_recurrence_in_every_form() {
    const Tensor q = random_tensor({2, 70, 16}, 1), k = random_tensor({2, 70, 16}, 2), v = random_tensor({2, 70, 8}, 3);
    for (bool causal : {true, false}) {
      for (int chunk : {0, 1, 7, 16, 64, 128}) {
        const Tensor out = run(q, k, v, {{"beta", 0.7}, {"chunk", chunk}}, causal);
        for (std::int64_t h = 0; h < 2; ++h) {
          const double e = max_diff(out, h, reference(q, k, v, h, 0.7, causal));
          QVERIFY2(e < 1e-4, qPrintable(QString("chunk %1 causal %2: %3").arg(chunk).arg(causal).arg(e)));
        }
      }
    }
  }

  void zero_beta_never_writes() {
    const Tensor q = random_tensor({1, 10, 8}, 4), k = random_tensor({1, 10, 8}, 5), v = random_tensor({1, 10, 8}, 6);
    const Tensor out = run(q, k, v, {{"beta", 0.0}}, true);
    QCOMPARE(out.matrix(0).cwiseAbs().maxCoeff(), 0.0f);
  }

  // Unit keys and β = 1: right after writing, the memory returns exactly the stored value.
  void full_strength_retrieves_the_last_value() {
    const Tensor k = random_tensor({1, 12, 8}, 7), v = random_tensor({1, 12, 4}, 8);
    Tensor q = k;  // query t = key t, so y_t = W_t k̂_t·|k_t|/√d
    Trace trace;
    const Tensor out = run(q, k, v, {{"beta", 1.0}, {"chunk", 0}}, true, &trace);
    for (std::int64_t t = 0; t < 12; ++t) {
      const double factor = k.matrix(0).row(t).norm() / std::sqrt(8.0);
      for (std::int64_t c = 0; c < 4; ++c) QVERIFY(std::abs(out.at(0, t, c) - factor * v.at(0, t, c)) < 1e-4);
    }
    // The retrieval error of the newest pair is 0; older pairs may be overwritten.
    const auto* extras = dynamic_cast<const DeltaExtras*>(trace.extras.get());
    QVERIFY(extras);
    QVERIFY(extras->recurrent().retrieval_error.at(0, 0) < 1e-5f);
  }

  // Mutually orthogonal keys and an empty memory: the delta rule is the sum rule with values β·v.
  void orthogonal_keys_reduce_to_linear_attention() {
    const int L = 6, d = 8;
    Tensor k({1, L, d});
    for (int t = 0; t < L; ++t) k.at(0, t, t) = 2.0f;  // orthogonal, not unit: normalised inside
    const Tensor q = random_tensor({1, L, d}, 9), v = random_tensor({1, L, 3}, 10);
    const double beta = 0.3;
    const Tensor out = run(q, k, v, {{"beta", beta}, {"chunk", 4}}, true);
    for (int t = 0; t < L; ++t) {
      for (int c = 0; c < 3; ++c) {
        double expected = 0;
        for (int j = 0; j <= t; ++j) expected += beta * v.at(0, j, c) * q.at(0, t, j) / std::sqrt(double(d));
        QVERIFY(std::abs(out.at(0, t, c) - expected) < 1e-5);
      }
    }
  }

  void implied_map_reproduces_the_output_and_respects_causality() {
    const Tensor q = random_tensor({2, 20, 8}, 11), k = random_tensor({2, 20, 8}, 12), v = random_tensor({2, 20, 5}, 13);
    for (bool causal : {true, false}) {
      Trace trace;
      const Tensor out = run(q, k, v, {{"beta_mode", "gate"}}, causal, &trace);
      QCOMPARE(trace.weights.shape(), (Shape{2, 20, 20}));
      for (std::int64_t h = 0; h < 2; ++h) {
        const RowMatrix applied = trace.weights.matrix(h) * v.matrix(h);
        QVERIFY((applied - out.matrix(h)).cwiseAbs().maxCoeff() < 1e-4f);
        if (causal)
          for (int i = 0; i < 20; ++i)
            for (int j = i + 1; j < 20; ++j) QCOMPARE(trace.weights.at(h, i, j), 0.0f);
      }
      // The traced and the fast path give the same output.
      const Tensor fast = run(q, k, v, {{"beta_mode", "gate"}}, causal);
      QVERIFY((fast.matrix(1) - out.matrix(1)).cwiseAbs().maxCoeff() < 1e-4f);
    }
  }

  void causal_outputs_before_j_are_bit_identical() {
    const Tensor q = random_tensor({1, 30, 8}, 14), k = random_tensor({1, 30, 8}, 15), v = random_tensor({1, 30, 4}, 16);
    for (int chunk : {0, 8}) {
      const Tensor base = run(q, k, v, {{"chunk", chunk}}, true);
      Tensor q2 = q, k2 = k, v2 = v;
      for (int c = 0; c < 8; ++c) {
        q2.at(0, 17, c) += 3.0f;
        k2.at(0, 17, c) -= 2.0f;
      }
      v2.at(0, 17, 0) = 9.0f;
      const Tensor changed = run(q2, k2, v2, {{"chunk", chunk}}, true);
      QVERIFY(std::memcmp(base.data(), changed.data(), sizeof(float) * 17 * 4) == 0);
      QVERIFY(base.matrix(0).row(17) != changed.matrix(0).row(17));
    }
  }

  void states_follow_the_tokens() {
    const Tensor q = random_tensor({1, 9, 4}, 17), k = random_tensor({1, 9, 4}, 18), v = random_tensor({1, 9, 3}, 19);
    Trace trace;
    run(q, k, v, {{"beta", 0.5}}, true, &trace);
    const auto& s = dynamic_cast<const DeltaExtras&>(*trace.extras).recurrent();
    QCOMPARE(s.steps.size(), std::size_t{9});
    QCOMPARE(s.states.shape(), (Shape{1, 9, 3, 4}));
    // The last state applied to the scaled last query gives the last output.
    Eigen::Map<const RowMatrix> W(s.states.data() + 8 * 12, 3, 4);
    const Eigen::VectorXf y = W * (q.matrix(0).row(8).transpose() / 2.0f);
    const Tensor out = run(q, k, v, {{"beta", 0.5}}, true);
    for (int c = 0; c < 3; ++c) QVERIFY(std::abs(y(c) - out.at(0, 8, c)) < 1e-5f);
    // Long inputs keep at most kMaxSnapshots states, ending at the last token.
    const auto steps = RecurrentStates::snapshot_steps(2000);
    QCOMPARE(static_cast<std::int64_t>(steps.size()), RecurrentStates::kMaxSnapshots);
    QCOMPARE(steps.back(), std::int64_t{1999});
  }

  void errors_and_seeds() {
    const Tensor q = random_tensor({1, 5, 4}, 20), k = random_tensor({1, 6, 4}, 21), v = random_tensor({1, 6, 4}, 22);
    EXPECT_ERROR(ShapeError, run(q, k, v, nlohmann::json::object(), false), "self-attention");
    const Tensor k5 = random_tensor({1, 5, 4}, 23), v5 = random_tensor({1, 5, 4}, 24);
    EXPECT_ERROR(ParamError, run(q, k5, v5, {{"beta", 1.5}}, true), "beta: a number in [0, 1]");
    Trace a, b, c;
    run(q, k5, v5, {{"beta_mode", "gate"}}, true, &a, 1);
    run(q, k5, v5, {{"beta_mode", "gate"}}, true, &b, 1);
    run(q, k5, v5, {{"beta_mode", "gate"}}, true, &c, 2);
    const auto beta = [](const Trace& t) { return dynamic_cast<const DeltaExtras&>(*t.extras).beta.matrix(0); };
    QCOMPARE(beta(a), beta(b));
    QVERIFY(beta(a) != beta(c));
  }
};

QTEST_GUILESS_MAIN(TestDelta)
#include "test_delta.moc"
