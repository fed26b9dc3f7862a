// Approximation metrics against closed forms, and the playground's comparison of a variant with
// exact softmax on the same q, k, v.
#include <QtTest>
#include <cmath>

#include "analysis/approximation.h"
#include "analysis/sweep.h"
#include "models/playground.h"
#include "test_support.h"

using namespace attnlab;

namespace {
Tensor tensor3(std::int64_t h, std::int64_t r, std::int64_t c, std::initializer_list<float> values) {
  return Tensor::from_data({h, r, c}, std::data(values), values.size());
}
}  // namespace

class TestApproximation : public QObject {
  Q_OBJECT

 private slots:
  void identical_attention_scores_perfectly() {
    const Tensor w = tensor3(1, 2, 3, {0.2f, 0.3f, 0.5f, 0.6f, 0.4f, 0.0f});
    const Tensor o = tensor3(1, 2, 2, {1, 2, 3, 4});
    const ApproximationMetrics m = compare_attention(w, o, w, o, 2);
    QCOMPARE(m.rel_output_error, 0.0);
    QVERIFY(std::abs(m.mean_row_kl) < 1e-12);
    QCOMPARE(m.topk_overlap, 1.0);
    QCOMPARE(m.rows, std::int64_t{2});
  }

  void closed_forms() {
    // Exact row [1/2, 1/2]; approximation [1, 0]: KL = 1/2·log(1/2) + 1/2·log(1/2 / floor).
    const Tensor exact = tensor3(1, 1, 2, {0.5f, 0.5f});
    const Tensor approx = tensor3(1, 1, 2, {1.0f, 0.0f});
    const Tensor o = tensor3(1, 1, 1, {2.0f});
    const Tensor o2 = tensor3(1, 1, 1, {3.0f});
    const ApproximationMetrics m = compare_attention(exact, o, approx, o2, 1);
    QVERIFY(std::abs(m.rel_output_error - 0.5) < 1e-12);  // |3 − 2| / |2|
    const double expected_kl = 0.5 * std::log(0.5) + 0.5 * std::log(0.5 / kKlFloor);
    QVERIFY(std::abs(m.mean_row_kl - expected_kl) < 1e-6);
    QCOMPARE(m.topk_overlap, 1.0);  // top-1 of the exact row is key 0 (tie → lower index)
    // Unnormalised rows (YOSO) are renormalised: [2, 2] against [1/2, 1/2] has KL 0.
    const ApproximationMetrics scaled = compare_attention(exact, o, tensor3(1, 1, 2, {2.0f, 2.0f}), o, 1);
    QVERIFY(std::abs(scaled.mean_row_kl) < 1e-12);
  }

  void topk_overlap_counts_shared_keys() {
    const Tensor exact = tensor3(1, 1, 4, {0.4f, 0.3f, 0.2f, 0.1f});
    const Tensor approx = tensor3(1, 1, 4, {0.1f, 0.2f, 0.3f, 0.4f});
    const Tensor o = tensor3(1, 1, 1, {1.0f});
    QCOMPARE(compare_attention(exact, o, approx, o, 2).topk_overlap, 0.0);  // {0,1} vs {2,3}
    QCOMPARE(compare_attention(exact, o, approx, o, 3).topk_overlap, 2.0 / 3);  // {0,1,2} vs {1,2,3}
    QCOMPARE(compare_attention(exact, o, approx, o, 9).topk, 4);  // k capped at the number of keys
  }

  void rows_without_keys_are_skipped_and_heads_selectable() {
    const Tensor exact = tensor3(2, 2, 2, {0, 0, 0.5f, 0.5f, 1, 0, 0, 1});
    const Tensor approx = tensor3(2, 2, 2, {0, 0, 0.5f, 0.5f, 0, 1, 0, 1});
    const Tensor o = tensor3(2, 2, 1, {0, 1, 1, 1});
    QCOMPARE(compare_attention(exact, o, approx, o, 1, 0).rows, std::int64_t{1});
    QCOMPARE(compare_attention(exact, o, approx, o, 1, 1).topk_overlap, 0.5);
    EXPECT_ERROR(ShapeError, compare_attention(exact, o, approx, o, 1, 2), "head 2 does not exist");
    EXPECT_ERROR(ShapeError, compare_attention(exact, o, tensor3(1, 1, 2, {1, 0}), o, 1), "cannot compare");
  }

  // A BigBird window that covers the sequence is exact attention: the playground's comparison,
  // computed on the same q, k, v, must say so; softmax itself is not compared.
  void playground_compares_each_layer_with_exact_attention() {
    Playground playground;
    PlaygroundRequest r;
    r.text = "one two three four five six seven eight nine ten";
    QVERIFY(playground.run(r)->comparisons.empty());
    r.variant = "bigbird";
    r.params = {{"block_size", 2}, {"window_blocks", 15}};
    const auto dense = playground.run(r);
    QCOMPARE(dense->comparisons.size(), std::size_t{4});
    for (const LayerComparison& c : dense->comparisons) {
      QCOMPARE(c.per_head.size(), std::size_t{8});
      QVERIFY(c.all_heads.rel_output_error < 1e-5);
      QCOMPARE(c.all_heads.topk_overlap, 1.0);
      QCOMPARE(c.exact_weights.shape(), (Shape{8, 10, 10}));
    }
    r.params = {{"block_size", 1}, {"window_blocks", 1}, {"global_blocks", 0}, {"random_blocks", 1}};
    const auto sparse = playground.run(r);
    QVERIFY(sparse->comparisons[0].all_heads.rel_output_error > 1e-3);
    QVERIFY(sparse->comparisons[0].all_heads.topk_overlap < 1.0);
    r.compare_layer = 2;  // only the layer on screen
    const auto one = playground.run(r);
    QCOMPARE(one->comparisons.size(), std::size_t{4});
    QVERIFY(one->comparisons[0].exact_weights.empty() && one->comparisons[0].per_head.empty());
    QCOMPARE(one->comparisons[2].per_head.size(), std::size_t{8});
    QCOMPARE(one->comparisons[2].all_heads.rel_output_error, sparse->comparisons[2].all_heads.rel_output_error);
    r.compare_exact = false;
    QVERIFY(playground.run(r)->comparisons.empty());
  }

  void log_log_fit_recovers_a_power_law() {
    std::vector<double> x = {16, 32, 64, 128, 256}, y;
    for (double v : x) y.push_back(3.0 * std::pow(v, -0.5));
    const SweepFit fit = fit_log_log("e", x, y);
    QCOMPARE(fit.points, 5);
    QVERIFY(std::abs(fit.slope + 0.5) < 1e-9);
    QVERIFY(std::abs(fit.intercept - std::log(3.0)) < 1e-9);
    x.push_back(-1);  // non-positive points are left out
    y.push_back(5);
    QCOMPARE(fit_log_log("e", x, y).points, 5);
    QCOMPARE(fit_log_log("e", {4}, {2}).points, 1);
  }

  // BigBird's error against exact attention shrinks as the window grows and is ~0 once the window
  // covers the sequence (32 tokens in blocks of 4: 15 blocks of window cover everything).
  void sweep_over_bigbird_windows() {
    SweepOptions o;
    o.variant = "bigbird";
    o.base_params = {{"block_size", 4}, {"global_blocks", 0}, {"random_blocks", 0}};
    o.key = "window_blocks";
    o.values = {"1", "3", "7", "15"};
    o.seeds = 2;
    o.length = 32;
    o.dim = 16;
    std::vector<int> progress;
    o.progress = [&](int done, int total) {
      QCOMPARE(total, 4);
      progress.push_back(done);
    };
    const SweepResult r = run_sweep(o);
    QCOMPARE(progress, (std::vector<int>{1, 2, 3, 4}));
    QCOMPARE(r.rows.size(), std::size_t{4});
    for (std::size_t i = 1; i < r.rows.size(); ++i) {
      QVERIFY(r.rows[i].rel_output_error.mean < r.rows[i - 1].rel_output_error.mean);
    }
    QVERIFY(r.rows.back().rel_output_error.mean < 1e-5);
    QCOMPARE(r.rows.back().topk_overlap.mean, 1.0);
    QCOMPARE(r.rows[2].numeric, 7.0);
    QVERIFY(r.fits[0].points >= 3 && r.fits[0].slope < 0);
    const nlohmann::json j = sweep_to_json(o, r);
    QCOMPARE(j["rows"].size(), std::size_t{4});
    QCOMPARE(j["fits"][0]["metric"].get<std::string>(), std::string("rel_output_error"));
  }

  // With small q, k (qk_std 0.35: logits of spread 0.12) Performer's error follows the
  // m^(-1/2) law of a Monte Carlo estimate; at qk_std 1 and d = 64 the estimator's variance
  // (~exp(‖q‖²/√d)) swamps it, which is why the sweep exposes the input scale.
  void performer_sweep_error_falls_as_inverse_sqrt_features() {
    SweepOptions o;
    o.variant = "performer";
    o.key = "n_features";
    o.values = {"16", "32", "64", "128", "256", "512"};
    o.seeds = 3;
    o.length = 128;
    o.dim = 64;
    o.qk_std = 0.35;
    const SweepResult r = run_sweep(o);
    const double slope = r.fits[0].slope;
    QVERIFY2(slope > -0.75 && slope < -0.3, qPrintable(QString("slope %1").arg(slope)));
    o.qk_std = 1.0;
    const double flat = run_sweep(o).fits[0].slope;
    QVERIFY2(flat > slope + 0.15, qPrintable(QString("qk_std 1 slope %1 vs %2").arg(flat).arg(slope)));
  }

  void sweep_refuses_bad_requests_before_working() {
    SweepOptions o;
    o.variant = "bigbird";
    o.key = "window_blocks";
    o.values = {"3", "0"};  // 0 is outside the schema's range: refused before the first value runs
    bool worked = false;
    o.progress = [&](int, int) { worked = true; };
    EXPECT_ERROR(ParamError, run_sweep(o), "window_blocks=0 is not allowed");
    QVERIFY(!worked);
    o.values = {"3"};
    o.key = "blocks";
    EXPECT_ERROR(ParamError, run_sweep(o), "unknown parameter 'blocks'");
    o.key = "window_blocks";
    o.seeds = 0;
    EXPECT_ERROR(ParamError, run_sweep(o), "seeds: an integer in [1, 64]");
    o.seeds = 1;
    o.qk_std = -1;
    EXPECT_ERROR(ParamError, run_sweep(o), "qk_std=-1 is not allowed");
    o.qk_std = 1;
    o.variant = "nope";
    EXPECT_ERROR(ParamError, run_sweep(o), "unknown attention variant");
    o.variant = "bigbird";
    CancelToken cancel;
    cancel.cancel();
    o.cancel = &cancel;
    QVERIFY_THROWS_EXCEPTION(CancelledError, run_sweep(o));
  }
};

QTEST_GUILESS_MAIN(TestApproximation)
#include "test_approximation.moc"
