// Reversible residual stack: the block equations, reconstruction of inputs from outputs, and
// activation memory flat in depth (against the closed-form byte counts of both tapes).
#include <QtTest>

#include "attention/registry.h"
#include "bench/activation_memory.h"
#include "layers/reversible.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {
AttentionOptions softmax_options(bool causal = false) {
  AttentionOptions o;
  o.variant = &Registry::builtin().get("softmax");
  o.causal = causal;
  return o;
}
}  // namespace

class TestReversible : public QObject {
  Q_OBJECT

 private slots:
  void forward_follows_the_block_equations() {
    const ReversibleStack stack = ReversibleStack::seeded(3, 32, 4, 64, 5);
    const RowMatrix x = random_tensor({10, 32}, 6).matrix();
    const AttentionOptions o = softmax_options();
    // y1 = x1 + F(x2), y2 = x2 + G(y1), block after block, starting from (x, x).
    RowMatrix x1 = x, x2 = x;
    for (const ReversibleBlock& b : stack.blocks()) {
      x1 = x1 + b.f(x2, o);
      x2 = x2 + b.g(x1);
    }
    const TwoStreams y = stack.forward(x, o);
    QVERIFY((y.x1 - x1).cwiseAbs().maxCoeff() < 1e-5f);
    QVERIFY((y.x2 - x2).cwiseAbs().maxCoeff() < 1e-5f);
    QVERIFY((ReversibleStack::merge(y) - (x1 + x2) / 2).cwiseAbs().maxCoeff() < 1e-5f);
  }

  void six_layers_reconstruct_within_1e4() {
    for (bool causal : {false, true}) {
      const ReversibleStack stack = ReversibleStack::seeded(6, 64, 4, 256, 7);
      const RowMatrix x = random_tensor({40, 64}, 8).matrix();
      const AttentionOptions o = softmax_options(causal);
      const TwoStreams y = stack.forward(x, o);
      QVERIFY((y.x1 - x).norm() > 1.0f);  // the stack did transform its input
      const TwoStreams back = stack.reconstruct_inputs(y, o);
      const float error = std::max((back.x1 - x).cwiseAbs().maxCoeff(), (back.x2 - x).cwiseAbs().maxCoeff()) /
                          x.cwiseAbs().maxCoeff();
      QVERIFY2(error <= 1e-4f, qPrintable(QString("reconstruction error %1").arg(error)));
    }
  }

  // Kept bytes: reversible 2·L·D floats at any depth; standard n·(2·L·D + L·d_ff) floats.
  void tapes_have_the_closed_form_sizes() {
    const int L = 24, D = 32, F = 80;
    const RowMatrix x = random_tensor({L, D}, 9).matrix();
    for (int n : {1, 2, 5}) {
      const ReversibleStack stack = ReversibleStack::seeded(n, D, 4, F, 10);
      ActivationTape reversible, standard;
      stack.forward(x, softmax_options(), &reversible);
      standard_forward(stack.blocks(), x, softmax_options(), &standard);
      QCOMPARE(reversible.bytes(), std::int64_t{2} * L * D * 4);
      QCOMPARE(standard.bytes(), std::int64_t{n} * (2 * L * D + L * F) * 4);
    }
  }

  void measured_memory_is_flat_for_reversible_and_linear_for_standard() {
    DepthMemoryOptions o;
    o.max_layers = 4;
    o.length = 32;
    o.d_model = 32;
    o.heads = 4;
    o.d_ff = 64;
    int progress_calls = 0;
    o.progress = [&](int done, int total) {
      ++progress_calls;
      QVERIFY(done <= total);
    };
    const auto points = measure_activation_memory(o);
    QCOMPARE(points.size(), std::size_t{4});
    QCOMPARE(progress_calls, 4);
    for (const auto& p : points) {
      QCOMPARE(p.reversible_bytes, points.front().reversible_bytes);
      QCOMPARE(p.standard_bytes, p.layers * points.front().standard_bytes);
      QVERIFY(p.reconstruction_error < 1e-4);
    }
    o.max_layers = 0;
    EXPECT_ERROR(ParamError, measure_activation_memory(o), "layers: an integer in [1, 96]");
    o.max_layers = 2;
    o.heads = 5;
    EXPECT_ERROR(ParamError, measure_activation_memory(o), "divisible by heads");
  }
};

QTEST_GUILESS_MAIN(TestReversible)
#include "test_reversible.moc"
