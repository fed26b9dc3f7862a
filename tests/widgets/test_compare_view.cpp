// The "Approximation lab" view on the offscreen platform: which results it accepts; the colours
// of its figure at cells found through the public layout (the engine's exact and approximate
// weights and their difference through the colormaps, on ranges computed here from the
// tensors); the per-query top-k overlap strip against an independent top-k (and its mean against
// the engine's head metric); a degenerate case (BigBird seeing every key equals softmax); the
// "scale" option; the widget (context, hover, options); exports read back with independent
// readers; and the Sweeps panel: prefilled values, rows equal to run_sweep's, streaming,
// cancellation (button, variant change, destruction), the orthogonal vs i.i.d. series, export.
#include <QElapsedTimer>
#include <QImage>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>

#include "analysis/sweep.h"
#include "attention/registry.h"
#include "compare_view.h"
#include "core/error.h"
#include "core/npy.h"
#include "figure_canvas.h"
#include "figures/compare_figure.h"
#include "models/playground.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kText =
    "the quick brown fox jumps over the lazy dog while a small cat sleeps on the warm mat and birds sing above";

PlaygroundResultPtr run(const std::string& variant, nlohmann::json params, bool causal = false,
                        const std::string& text = kText) {
  return run_playground(variant, std::move(params), causal, text, 5);
}

struct Rendered {
  QImage image;
  CompareFigureLayout layout;
};

Rendered render(const ViewContext& c, const CompareFigureOptions& options = {}, double dpi = 100) {
  const CompareFigureDataPtr data = compare_figure_data(c, options);
  Rendered r;
  r.image = render_figure_image(compare_painted_figure(data, FigureStyle{}, c.highlighted_token), dpi);
  r.layout = compute_compare_layout(*data, FigureStyle{}, QRectF(r.image.rect()), &r.image);
  return r;
}

QPointF cell_centre(const HeatmapFigureLayout& h, int row, int col) { return h.cell_rect(row, col).center(); }

// Top-k key indices of one row, ties to the lower index (an independent sort).
std::vector<std::int64_t> top_k(const float* row, std::int64_t n, int k) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::int64_t a, std::int64_t b) { return row[a] > row[b]; });
  idx.resize(static_cast<std::size_t>(std::min<std::int64_t>(k, n)));
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::pair<float, float> min_max(const Tensor& t, std::int64_t head) {
  const std::int64_t n = t.dim(1) * t.dim(2);
  const float* p = t.data() + head * n;
  return {*std::min_element(p, p + n), *std::max_element(p, p + n)};
}

// Waits for the runner to stop, processing queued rows.
bool wait_idle(SweepRunner* runner, int ms = 60000) { return runner->waitForFinished(ms); }

}  // namespace

class TestCompareView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_variants_other_than_softmax() {
    const ViewSpec& spec = view_spec("compare");
    QCOMPARE(spec.title, QStringLiteral("Approximation lab"));
    QCOMPARE(spec.requirement, QStringLiteral("needs a variant other than softmax"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json", "npy"}));
    QVERIFY(spec.make_widget);
    QVERIFY(spec.accepts(*run("performer", {{"n_features", 16}})));
    QVERIFY(spec.accepts(*run("bigbird", {{"block_size", 2}})));
    const PlaygroundResultPtr softmax = run("softmax", nlohmann::json::object());
    QVERIFY(!spec.accepts(*softmax));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(softmax)), "needs a variant other than softmax");
  }

  // Every sampled cell of the three matrices has the colour of the engine's number on the range
  // the figure promises; the strip shows each query's top-k overlap.
  void figure_cells_are_the_engine_numbers() {
    const ViewContext c = view_context(run("performer", {{"n_features", 8}}), 1, 2);
    const Tensor& approx = c.result->layers[1].weights;
    const Tensor& exact = c.result->comparisons[1].exact_weights;
    const auto r = render(c);
    QVERIFY(!r.image.isNull());
    const std::int64_t L = approx.dim(1);
    QCOMPARE(r.layout.length, L);
    const auto [elo, ehi] = min_max(exact, 2);
    const auto [alo, ahi] = min_max(approx, 2);
    const float lo = std::min({0.0f, elo, alo}), hi = std::max(ehi, ahi);
    float largest = 0;
    for (std::int64_t i = 0; i < L; ++i)
      for (std::int64_t j = 0; j < L; ++j) largest = std::max(largest, std::abs(approx.at(2, i, j) - exact.at(2, i, j)));
    QVERIFY(largest > 0);
    const Colormap& viridis = Colormap::get(ColormapId::Viridis);
    const Colormap& coolwarm = Colormap::get(ColormapId::Coolwarm);
    for (std::int64_t i = 0; i < L; i += 3)
      for (std::int64_t j = 0; j < L; j += 2) {
        const int ii = static_cast<int>(i), jj = static_cast<int>(j);
        const QRgb e = pixel_at(r.image, cell_centre(r.layout.exact, ii, jj));
        QVERIFY2(near_colour(e, QColor(viridis.color(exact.at(2, i, j), lo, hi))), qPrintable(describe(e)));
        const QRgb a = pixel_at(r.image, cell_centre(r.layout.approx, ii, jj));
        QVERIFY2(near_colour(a, QColor(viridis.color(approx.at(2, i, j), lo, hi))), qPrintable(describe(a)));
        const QRgb d = pixel_at(r.image, cell_centre(r.layout.difference, ii, jj));
        const QColor expected(coolwarm.color(approx.at(2, i, j) - exact.at(2, i, j), -largest, largest));
        QVERIFY2(near_colour(d, expected), qPrintable(QString("diff (%1, %2): %3").arg(i).arg(j).arg(describe(d))));
      }

    // Per-query overlap: an independent top-k; its mean is the engine's head metric.
    const LayerComparison& cmp = c.result->comparisons[1];
    const int k = cmp.per_head[2].topk;
    QCOMPARE(k, 8);
    double sum = 0;
    for (std::int64_t i = 0; i < L; ++i) {
      const auto te = top_k(exact.data() + (2 * L + i) * L, L, k), ta = top_k(approx.data() + (2 * L + i) * L, L, k);
      std::vector<std::int64_t> common;
      std::set_intersection(te.begin(), te.end(), ta.begin(), ta.end(), std::back_inserter(common));
      const double overlap = static_cast<double>(common.size()) / k;
      sum += overlap;
      const QRgb s = pixel_at(r.image, r.layout.strip_cell_centre(i));
      QVERIFY2(near_colour(s, compare_strip_color(static_cast<float>(overlap), ColormapId::Viridis)),
               qPrintable(QString("strip %1: %2").arg(i).arg(describe(s))));
    }
    QVERIFY(std::abs(sum / static_cast<double>(L) - cmp.per_head[2].topk_overlap) < 1e-9);
    const CompareFigureDataPtr data = compare_figure_data(c, {});
    QVERIFY(std::abs(data->head_metrics.rel_output_error - cmp.per_head[2].rel_output_error) < 1e-12);
  }

  // BigBird whose window covers every block attends to every key: exactly softmax. The
  // difference is ~0 (the middle of the diverging map), the error ~0 and the overlap 1.
  void full_window_bigbird_equals_softmax() {
    const ViewContext c =
        view_context(run("bigbird", {{"block_size", 1}, {"window_blocks", 63}, {"global_blocks", 0}, {"random_blocks", 0}}));
    const CompareFigureDataPtr d = compare_figure_data(c, {});
    QVERIFY(d->all_heads.rel_output_error < 1e-5);
    QVERIFY(d->all_heads.mean_row_kl < 1e-5);
    QCOMPARE(d->all_heads.topk_overlap, 1.0);
    for (float v : d->row_overlap) QCOMPARE(v, 1.0f);
    for (float v : d->difference.values) QVERIFY(std::abs(v) < 1e-5f);
  }

  void scale_option_and_highlight() {
    const ViewContext c = view_context(run("performer", {{"n_features", 4}}), 0, 1);
    const CompareFigureDataPtr shared = compare_figure_data(c, {CompareScale::Shared});
    const CompareFigureDataPtr separate = compare_figure_data(c, {CompareScale::Separate});
    QCOMPARE(shared->exact.vmax, shared->approx.vmax);
    QCOMPARE(separate->exact.vmax, *std::max_element(separate->exact.values.begin(), separate->exact.values.end()));
    QCOMPARE(separate->approx.vmax, *std::max_element(separate->approx.values.begin(), separate->approx.values.end()));
    QVERIFY(separate->exact.vmax != separate->approx.vmax);
    const QImage a = render_view("compare", view_context(c.result, 0, 1, {{"scale", "shared"}}));
    QCOMPARE(render_view("compare", view_context(c.result, 0, 1)), a);
    QVERIFY(render_view("compare", view_context(c.result, 0, 1, {{"scale", "separate"}})) != a);
    EXPECT_ERROR(ParamError, render_view("compare", view_context(c.result, 0, 1, {{"scale", "log"}})), "scale");
    ViewContext marked = c;
    marked.highlighted_token = 4;
    const auto r = render(marked);
    QVERIFY(r.image != render(c).image);
    QCOMPARE(r.layout.token_at(r.layout.strip_cell_centre(4)), 4);
    QCOMPARE(r.layout.token_at(cell_centre(r.layout.approx, 7, 2)), 7);
    QCOMPARE(r.layout.token_at(QPointF(1, 1)), -1);
  }

  void widget_follows_context_hover_and_options() {
    CompareView view;
    view.resize(1500, 1000);
    view.show();
    const ViewContext c = view_context(run("performer", {{"n_features", 16}}), 0, 0);
    view.setContext(c);
    QVERIFY(view.canvas()->hasFigure());
    const QImage first = view.canvas()->grab().toImage();
    ViewContext other = c;
    other.head = 3;
    view.setContext(other);
    QCOMPARE(view.figureData()->head, 3);
    QVERIFY(view.canvas()->grab().toImage() != first);

    QSignalSpy hovered(&view, &TraceViewWidget::tokenHovered);
    const CompareFigureLayout layout = view.figureLayout();
    QTest::mouseMove(view.canvas()->surface(), cell_centre(layout.exact, 5, 2).toPoint());
    QTRY_VERIFY(!hovered.isEmpty());
    QCOMPARE(hovered.last().at(0).toInt(), 5);
    QCOMPARE(view.context().highlighted_token, 5);

    QSignalSpy changed(&view, &TraceViewWidget::viewOptionsChanged);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"scale", "shared"}}));
    view.setViewOptions({{"scale", "separate"}});
    QCOMPARE(view.scale(), CompareScale::Separate);
    QCOMPARE(changed.count(), 1);
    QCOMPARE(view.figureData()->exact.vmax,
             *std::max_element(view.figureData()->exact.values.begin(), view.figureData()->exact.values.end()));
    EXPECT_ERROR(ParamError, view.setViewOptions({{"range", 1}}), "view 'compare' has no option 'range'; its options: scale");

    view.setContext(view_context(run("softmax", nlohmann::json::object())));
    QVERIFY(!view.canvas()->hasFigure());
    QVERIFY(view.canvas()->message().contains(QStringLiteral("other than softmax")));
  }

  void exports_read_back() {
    const ViewContext c = view_context(run("performer", {{"n_features", 8}}, true), 2, 1);
    const LayerComparison& cmp = c.result->comparisons[2];
    QTemporaryDir dir;
    const auto path = [&](const char* name) { return dir.filePath(QString::fromLatin1(name)); };
    export_each("compare", c, dir, {"f.png", "f.svg", "f.pdf", "d.csv", "d.json", "d.npy"});
    QVERIFY(!QImage(path("f.png")).isNull());
    QVERIFY(svg_has_text(path("f.svg"), QStringLiteral("Approximation lab")));
    QVERIFY(is_pdf(path("f.pdf")));

    const auto rows = read_csv(path("d.csv"));
    QCOMPARE(rows.size(), cmp.per_head.size() + 2);
    QCOMPARE(rows[0], (QStringList{"head", "rel_output_error", "mean_row_kl", "topk_overlap", "topk", "rows"}));
    for (std::size_t h = 0; h < cmp.per_head.size(); ++h) {
      QCOMPARE(rows[h + 1][0].toInt(), static_cast<int>(h));
      QCOMPARE(rows[h + 1][1].toDouble(), cmp.per_head[h].rel_output_error);
      QCOMPARE(rows[h + 1][2].toDouble(), cmp.per_head[h].mean_row_kl);
      QCOMPARE(rows[h + 1][3].toDouble(), cmp.per_head[h].topk_overlap);
    }
    QCOMPARE(rows.back()[0], QStringLiteral("all"));
    QCOMPARE(rows.back()[1].toDouble(), cmp.all_heads.rel_output_error);

    const nlohmann::json j = read_json(path("d.json"));
    QCOMPARE(j.at("variant").get<std::string>(), std::string("performer"));
    QCOMPARE(j.at("layer").get<int>(), 2);
    QCOMPARE(j.at("head").get<int>(), 1);
    QCOMPARE(j.at("causal").get<bool>(), true);
    QCOMPARE(j.at("head_metrics").at("topk_overlap").get<double>(), cmp.per_head[1].topk_overlap);
    QCOMPARE(j.at("all_heads").at("mean_row_kl").get<double>(), cmp.all_heads.mean_row_kl);
    QCOMPARE(j.at("params").at("n_features").get<int>(), 8);

    const Tensor diff = read_npy(path("d.npy").toStdString());
    const Tensor& w = c.result->layers[2].weights;
    QCOMPARE(diff.shape(), (Shape{w.dim(1), w.dim(2)}));
    for (std::int64_t i = 0; i < w.dim(1); ++i)
      for (std::int64_t k = 0; k < w.dim(2); ++k) QCOMPARE(diff.at(i, k), w.at(1, i, k) - cmp.exact_weights.at(1, i, k));
    EXPECT_ERROR(ParamError, export_view(view_spec("compare"), c, path("d.txt"), ExportOptions{}), ".npy");
  }

  void default_sweep_values_follow_the_schema() {
    QCOMPARE(default_sweep_values(ParamSpec::integer("n_features", "m", 64, 1, 4096, "")),
             (QStringList{"8", "16", "32", "64", "128", "256"}));
    QCOMPARE(default_sweep_values(ParamSpec::integer("block_size", "b", 0, 0, 512, "")),
             (QStringList{"1", "2", "4", "8", "16", "32"}));
    QCOMPARE(default_sweep_values(ParamSpec::integer("pack_len", "p", 16, 1, 20, "")), (QStringList{"2", "4", "8", "16"}));
    QCOMPARE(default_sweep_values(ParamSpec::real("decay", "d", 0.1, 0, 10, "")),
             (QStringList{"0.025", "0.05", "0.1", "0.2", "0.4"}));
    QCOMPARE(default_sweep_values(ParamSpec::real("p", "p", 0.0, 0, 4, "")), (QStringList{"0.25", "0.5", "1", "2", "4"}));
  }

  // The panel's rows equal run_sweep with the same options (same inputs, same seeds); they
  // stream in one by one; the chart shows them and exports.
  void sweep_streams_rows_equal_to_run_sweep() {
    CompareView view;
    view.resize(1500, 1000);
    view.show();
    view.setContext(view_context(run("performer", {{"n_features", 16}}), 0, 0));
    QCOMPARE(view.sweepParameter()->currentText(), QStringLiteral("n_features"));
    QCOMPARE(view.sweepValues()->text(), QStringLiteral("8, 16, 32, 64, 128, 256"));
    QCOMPARE(view.sweepSeeds()->value(), 3);
    QCOMPARE(view.sweepLength()->value(), 256);
    QCOMPARE(view.sweepDim()->value(), 64);
    QVERIFY(!view.sweepIid()->isHidden());
    view.sweepValues()->setText(QStringLiteral("4, 16, 64"));
    view.sweepLength()->setValue(48);
    view.sweepDim()->setValue(8);
    view.sweepSeeds()->setValue(2);
    QCOMPARE(view.sweepQkStd()->value(), 0.35);
    view.sweepQkStd()->setValue(0.5);
    QSignalSpy rows(view.runner(), &SweepRunner::rowAdded);
    QVERIFY(view.runSweep());
    QVERIFY(view.runner()->isRunning());
    QVERIFY(!view.runButton()->isEnabled());
    QVERIFY(view.cancelButton()->isEnabled());
    QVERIFY(wait_idle(view.runner()));
    QCOMPARE(rows.count(), 3);
    QCOMPARE(view.sweepProgress()->value(), 3);
    QVERIFY(view.runButton()->isEnabled());
    QVERIFY(view.chartCanvas()->hasFigure());

    const std::vector<SweepSeries>& got = view.runner()->series();
    QCOMPARE(got.size(), std::size_t{1});
    SweepOptions o = got.front().options;
    QCOMPARE(o.values, (std::vector<std::string>{"4", "16", "64"}));
    QCOMPARE(o.base_params.contains("n_features"), false);
    QCOMPARE(o.qk_std, 0.5);
    const SweepResult direct = run_sweep(o);
    QCOMPARE(got.front().result.rows.size(), direct.rows.size());
    for (std::size_t i = 0; i < direct.rows.size(); ++i) {
      QCOMPARE(got.front().result.rows[i].rel_output_error.mean, direct.rows[i].rel_output_error.mean);
      QCOMPARE(got.front().result.rows[i].mean_row_kl.max, direct.rows[i].mean_row_kl.max);
    }
    QCOMPARE(got.front().result.fits[0].slope, direct.fits[0].slope);
    QVERIFY(direct.fits[0].slope < 0);  // more features, less error

    QTemporaryDir dir;
    view.exportSweep(dir.filePath("s.json"));
    view.exportSweep(dir.filePath("s.csv"));
    view.exportSweep(dir.filePath("s.svg"));
    view.exportSweep(dir.filePath("s.png"));
    // Everything but the measured times.
    nlohmann::json written = read_json(dir.filePath("s.json")), expected = sweep_to_json(o, direct);
    for (auto* j : {&written, &expected})
      for (auto& row : (*j)["rows"]) row.erase("time_ms");
    QCOMPARE(written, expected);
    const auto csv = read_csv(dir.filePath("s.csv"));
    QCOMPARE(csv.size(), std::size_t{4});
    QCOMPARE(csv[2][1], QStringLiteral("16"));
    QCOMPARE(csv[2][3].toDouble(), direct.rows[1].rel_output_error.mean);
    QVERIFY(svg_has_text(dir.filePath("s.svg"), QStringLiteral("slope")));
    QVERIFY(!QImage(dir.filePath("s.png")).isNull());
    EXPECT_ERROR(ParamError, view.exportSweep(dir.filePath("s.txt")), ".csv");

    // Redraw: the next sweep seed, other inputs, other numbers.
    const std::uint64_t seed = view.sweepSeed();
    QVERIFY(view.redrawSweep());
    QCOMPARE(view.sweepSeed(), seed + 1);
    QVERIFY(wait_idle(view.runner()));
    QVERIFY(view.runner()->series().front().result.rows[0].rel_output_error.mean != direct.rows[0].rel_output_error.mean);
  }

  void sweep_orthogonal_vs_iid_and_bad_values() {
    CompareView view;
    view.setContext(view_context(run("performer", {{"n_features", 16}}), 0, 0));
    view.sweepIid()->setChecked(true);
    view.sweepValues()->setText(QStringLiteral("8, 32"));
    view.sweepLength()->setValue(32);
    view.sweepDim()->setValue(8);
    view.sweepSeeds()->setValue(1);
    const std::vector<SweepSeries> request = view.sweepRequest();
    QCOMPARE(request.size(), std::size_t{2});
    QCOMPARE(request[0].options.base_params.at("orthogonal").get<bool>(), true);
    QCOMPARE(request[1].options.base_params.at("orthogonal").get<bool>(), false);
    QVERIFY(view.runSweep());
    QVERIFY(wait_idle(view.runner()));
    QCOMPARE(view.runner()->series()[1].result.rows.size(), std::size_t{2});
    const LineChart chart = sweep_line_chart(view.runner()->series());
    QCOMPARE(chart.series.size(), std::size_t{4});
    QVERIFY(chart.series[2].name.contains(QStringLiteral("i.i.d.")));

    view.sweepValues()->setText(QStringLiteral("8, many"));
    QVERIFY(!view.runSweep());
    QVERIFY(view.sweepStatus()->text().contains(QStringLiteral("n_features")));
    QVERIFY(!view.runner()->isRunning());

    // BigBird: no orthogonal switch, its block size preselected.
    view.setContext(view_context(run("bigbird", {{"block_size", 2}}), 0, 0));
    QVERIFY(view.sweepIid()->isHidden());
    QCOMPARE(view.sweepParameter()->currentText(), QStringLiteral("block_size"));
  }

  // Cancel stops promptly (within one comparison), a new variant cancels, destruction joins.
  void sweep_cancels_promptly() {
    CompareView view;
    view.resize(1500, 1000);
    view.show();
    view.setContext(view_context(run("performer", {{"n_features", 16}}), 0, 0));
    view.sweepValues()->setText(QStringLiteral("1, 2, 4, 8, 16, 32, 64"));
    view.sweepSeeds()->setValue(64);
    view.sweepLength()->setValue(512);
    QSignalSpy cancelled(view.runner(), &SweepRunner::cancelled);
    QSignalSpy finished(view.runner(), &SweepRunner::finished);
    QVERIFY(view.runSweep());
    QTest::qWait(50);
    QElapsedTimer timer;
    timer.start();
    QTest::mouseClick(view.cancelButton(), Qt::LeftButton);
    QCOMPARE(cancelled.count(), 1);
    QVERIFY(!view.runner()->isRunning());
    QVERIFY(view.runButton()->isEnabled());
    QVERIFY(view.sweepStatus()->text().contains(QStringLiteral("cancelled")));

    // A new variant's result cancels a running sweep.
    QVERIFY(view.runSweep());
    view.setContext(view_context(run("linear", nlohmann::json::object()), 0, 0));
    QCOMPARE(cancelled.count(), 2);
    QVERIFY(!view.runner()->isRunning());
    QCOMPARE(view.sweepParameter()->currentText(), QStringLiteral("eps"));
    QTest::qWait(100);
    QCOMPARE(finished.count(), 0);

    // Destroying the widget mid-sweep returns within a comparison or so.
    auto* doomed = new CompareView;
    doomed->setContext(view_context(run("performer", {{"n_features", 16}}), 0, 0));
    doomed->sweepValues()->setText(QStringLiteral("1, 2, 4, 8, 16, 32, 64"));
    doomed->sweepSeeds()->setValue(64);
    doomed->sweepLength()->setValue(512);
    QVERIFY(doomed->runSweep());
    QTest::qWait(50);
    timer.restart();
    delete doomed;
    QVERIFY2(timer.elapsed() < 2000, qPrintable(QString("destruction took %1 ms").arg(timer.elapsed())));
  }

  // Interactive edits at L = 512: what the window pays when the text, variant or layer changes
  // (one forward pass with the comparison of one layer) and when the head changes (the view's
  // data). Printed, not asserted: timings are measured, not tested.
  void timing_at_512_tokens() {
    QString text;
    for (int i = 0; i < 512; ++i) text += QStringLiteral("w%1 ").arg(i % 37);
    Playground playground;
    PlaygroundRequest request;
    request.text = text.toStdString();
    request.variant = "performer";
    request.compare_layer = 0;
    playground.run(request);  // builds the model
    // Best of three, alternating, so that a busy machine hurts both alike.
    QElapsedTimer timer;
    double with_ms = 1e300, without_ms = 1e300;
    PlaygroundResultPtr with;
    for (int rep = 0; rep < 3; ++rep) {
      request.compare_exact = true;
      timer.restart();
      with = playground.run(request);
      with_ms = std::min(with_ms, static_cast<double>(timer.nsecsElapsed()) / 1e6);
      request.compare_exact = false;
      timer.restart();
      playground.run(request);
      without_ms = std::min(without_ms, static_cast<double>(timer.nsecsElapsed()) / 1e6);
    }
    QCOMPARE(with->length(), std::int64_t{512});
    CompareView view;
    view.resize(1500, 1000);
    view.show();
    timer.restart();
    view.setContext(view_context(with, 0, 1));
    view.canvas()->grab();
    const double view_ms = static_cast<double>(timer.nsecsElapsed()) / 1e6;
    qInfo("L=512 performer: forward with comparison of one layer %.1f ms, without %.1f ms; view data + first paint %.1f ms",
          with_ms, without_ms, view_ms);
  }
};

QTEST_MAIN(TestCompareView)
#include "test_compare_view.moc"
