// The Curves panel on the offscreen platform: its figures put each measured row where the numbers
// say (pixel colours at the layout's mapped positions on rows written here), draw a ✕ for a row
// that did not run, and write the slope fit_complexity gives (a power law of known exponent)
// and the decoding ratio in the legends; the depth chart on linear axes; the runner streams rows
// one by one from the engine and the chart holds them; Cancel returns at once, keeps the rows
// so far, and the next run starts promptly; bad input gives a one-line error and keeps the last
// chart; hovering a point shows its numbers; exports (PNG, SVG, PDF, JSON, CSV) read back; the
// settings round-trip through JSON and the panel.
#include <QElapsedTimer>
#include <QImage>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <nlohmann/json.hpp>

#include "bench/activation_memory.h"
#include "bench/complexity.h"
#include "bench/decoding.h"
#include "core/error.h"
#include "cuda/gpu_attention.h"
#include "curves_view.h"
#include "figure_canvas.h"
#include "figures/curves_figure.h"
#include "test_support.h"
#include "view_test_support.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTabWidget>

using namespace attnlab;
using namespace attnlab::test;

namespace {

ComplexityRow ok_row(const std::string& variant, std::int64_t L, double ms, std::int64_t bytes) {
  ComplexityRow r;
  r.variant = variant;
  r.length = L;
  r.device = "cpu";
  r.status = "ok";
  r.median_ms = ms;
  r.min_ms = ms * 0.9;
  r.max_ms = ms * 1.2;
  r.peak_bytes = bytes;
  r.estimated_bytes = bytes + 100;
  return r;
}

ComplexityRow refused_row(const std::string& variant, std::int64_t L, const std::string& status) {
  ComplexityRow r;
  r.variant = variant;
  r.length = L;
  r.device = "cpu";
  r.status = status;
  return r;
}

// softmax: time c·L², memory c·L² up to 512, out of memory at 1024 and skipped at 2048; linear:
// time and memory c·L at every length.
struct Synthetic {
  ComplexityOptions options;
  std::vector<ComplexityRow> rows;
};

Synthetic synthetic_length_run() {
  Synthetic s;
  s.options.variants = {"softmax", "linear"};
  s.options.lengths = {128, 256, 512, 1024, 2048};
  s.options.repeats = 3;
  for (const std::int64_t L : s.options.lengths) {
    const double l = static_cast<double>(L);
    if (L <= 512) s.rows.push_back(ok_row("softmax", L, 1e-5 * l * l, static_cast<std::int64_t>(4 * l * l)));
    s.rows.push_back(ok_row("linear", L, 2e-3 * l, static_cast<std::int64_t>(300 * l)));
  }
  s.rows.push_back(refused_row("softmax", 1024, "out of memory: 4 GiB asked, 1 GiB left"));
  s.rows.push_back(refused_row("softmax", 2048, "skipped: a shorter length ran out of memory"));
  return s;
}

struct RenderedCurves {
  QImage image;
  CurvesFigureLayout layout;
};

RenderedCurves render(const CurvesFigureData& data, double dpi = 150) {
  RenderedCurves r;
  r.image = render_figure_image(curves_painted_figure(std::make_shared<const CurvesFigureData>(data), FigureStyle{}), dpi);
  r.layout = compute_curves_layout(data, FigureStyle{}, QRectF(r.image.rect()), &r.image);
  return r;
}

QString slope(double s) { return QString::number(s, 'f', 2).replace(QLatin1Char('-'), QChar(0x2212)); }

// A view set to a tiny length run: `variants` at `lengths`, one repeat.
void set_tiny_length_run(CurvesView& view, const std::vector<std::string>& variants, const QString& lengths) {
  view.setMode(CurvesMode::Length);
  view.setCheckedVariants(variants);
  view.lengthsEdit()->setText(lengths);
  view.repeatsBox()->setValue(1);
  view.dimBox()->setValue(16);
}

}  // namespace

class TestCurvesView : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  // Each ok row's median and peak sit at the mapped position in the series colour; the rows that
  // did not run are ✕ at the top of both plots in the variant's colour, the first one larger.
  void figure_puts_points_where_the_numbers_say() {
    const Synthetic s = synthetic_length_run();
    const CurvesFigureData data = length_curves_data(s.options, s.rows);
    QCOMPARE(data.charts.size(), std::size_t{2});
    const RenderedCurves r = render(data);
    QVERIFY(!r.image.isNull());
    const CurveChartLayout& time = r.layout.charts[0];
    const CurveChartLayout& memory = r.layout.charts[1];
    QVERIFY(time.x.log && time.y.log && memory.x.log && memory.y.log);
    QVERIFY(time.plot.right() < memory.plot.left());  // side by side
    const QColor softmax = curves_series_color(0), linear = curves_series_color(1);
    QVERIFY(softmax != linear);
    for (const ComplexityRow& row : s.rows) {
      if (row.status != "ok") continue;
      const QColor colour = row.variant == "softmax" ? softmax : linear;
      const auto L = static_cast<double>(row.length);
      const QPointF t = time.map(L, row.median_ms), m = memory.map(L, static_cast<double>(row.peak_bytes));
      QVERIFY2(time.plot.contains(t) && memory.plot.contains(m), qPrintable(QStringLiteral("L=%1").arg(L)));
      QVERIFY2(colour_near(r.image, t, colour, 1, 30), qPrintable(describe(pixel_at(r.image, t))));
      QVERIFY2(colour_near(r.image, m, colour, 1, 30), qPrintable(describe(pixel_at(r.image, m))));
    }
    // A place with no point has no series colour: the background or a grid line.
    const QPointF empty = time.map(181, 1e-5 * 512 * 512 * 4);
    QVERIFY(!colour_near(r.image, empty, softmax, 1, 30));

    for (int chart = 0; chart < 2; ++chart) {
      const CurvesMarker* oom = r.layout.frontier_marker(chart, 0, 1024);
      const CurvesMarker* skipped = r.layout.frontier_marker(chart, 0, 2048);
      QVERIFY(oom && skipped);
      QVERIFY(!r.layout.frontier_marker(chart, 1, 1024));  // linear ran everywhere
      const CurveChartLayout& c = r.layout.charts[static_cast<std::size_t>(chart)];
      QVERIFY(oom->centre.y() < c.plot.top() + 2 * c.marker);  // at the top edge
      QCOMPARE(oom->centre.x(), c.map(1024, 1).x());
      QVERIFY2(colour_near(r.image, oom->centre, softmax, 1, 40), qPrintable(describe(pixel_at(r.image, oom->centre))));
      QVERIFY(colour_near(r.image, skipped->centre, softmax, 1, 60));
      QVERIFY(oom->tip.contains(QStringLiteral("out of memory: 4 GiB asked")));
      QVERIFY(skipped->tip.contains(QStringLiteral("skipped")));
      // The ✕ is bigger than a point: its arms reach further than a dot's radius.
      const QPointF arm = oom->centre + QPointF(0.4 * c.marker, 0.4 * c.marker);
      QVERIFY(colour_near(r.image, arm, softmax, 1, 60));
    }
    // Hit testing finds the points and the marks.
    const QPointF p = time.map(256, 1e-5 * 256 * 256);
    const int hit = r.layout.marker_at(p + QPointF(1, 1));
    QVERIFY(hit >= 0);
    QVERIFY(r.layout.markers[static_cast<std::size_t>(hit)].tip.contains(QStringLiteral("softmax · L = 256")));
    QVERIFY(r.layout.markers[static_cast<std::size_t>(hit)].tip.contains(QStringLiteral("peak")));
    QVERIFY(r.layout.markers[static_cast<std::size_t>(hit)].tip.contains(QStringLiteral("estimate")));
    QCOMPARE(r.layout.marker_at(QPointF(1, 1)), -1);
  }

  // Time ∝ L² and memory ∝ L give slopes 2 and 1 exactly; the legend writes fit_complexity's
  // slope; reference lines start at the first point of the first variant.
  void legend_slope_is_fit_complexity() {
    const Synthetic s = synthetic_length_run();
    const CurvesFigureData data = length_curves_data(s.options, s.rows);
    const ComplexityFit softmax = fit_complexity("softmax", s.rows), linear = fit_complexity("linear", s.rows);
    QVERIFY(std::abs(softmax.time_slope - 2.0) < 1e-9);
    QVERIFY(std::abs(linear.memory_slope - 1.0) < 1e-9);
    QCOMPARE(data.charts[0].series[0].name, QStringLiteral("softmax  slope ") + slope(softmax.time_slope));
    QCOMPARE(data.charts[0].series[0].name, QStringLiteral("softmax  slope 2.00"));
    QCOMPARE(data.charts[1].series[0].name, QStringLiteral("softmax  slope ") + slope(softmax.memory_slope));
    QCOMPARE(data.charts[0].series[1].name, QStringLiteral("linear  slope ") + slope(linear.time_slope));
    QCOMPARE(data.charts[1].series[1].name, QStringLiteral("linear  slope 1.00"));
    // One row: no fit, the name alone.
    const std::vector<ComplexityRow> one = {ok_row("softmax", 128, 1, 100)};
    QCOMPARE(length_curves_data(s.options, one).charts[0].series[0].name, QStringLiteral("softmax"));

    const CurveChart& time = data.charts[0];
    QCOMPARE(time.references.size(), std::size_t{4});
    QCOMPARE(time.references[0].x0, 128.0);
    QCOMPARE(time.references[0].y0, s.rows[0].median_ms);
    QCOMPARE(time.references[3].label, QStringLiteral("O(L²)"));
    // O(L²) through softmax's first point passes through its other points (same law): the
    // reference colour is drawn under the series there, and on the line between points.
    const RenderedCurves r = render(data);
    const QPointF mid = r.layout.charts[0].map(181.0, 1e-5 * 128 * 128 * (181.0 / 128) * (181.0 / 128));
    QVERIFY(colour_near(r.image, mid, curves_series_color(0), 2, 40));

    QTemporaryDir dir;
    export_length_curves(s.options, s.rows, dir.filePath("c.svg"), ExportOptions{});
    QVERIFY(svg_has_text(dir.filePath("c.svg"), QStringLiteral("softmax  slope 2.00")));
    QVERIFY(svg_has_text(dir.filePath("c.svg"), QStringLiteral("O(L log L)")));
  }

  // Decoding: tokens/s and bytes on log-log axes, the ratio to the KV cache at the largest N both
  // reached in the legend; depth: linear axes, MiB, the reconstruction error in the summary.
  void decoding_and_depth_figures() {
    DecodingOptions o;
    o.methods = {"softmax_kv_cache", "linear_recurrent"};
    o.tokens = {256, 512, 1024};
    std::vector<DecodingRow> rows;
    for (const std::int64_t n : o.tokens) {
      DecodingRow kv{"softmax_kv_cache", n, "ok", 10, 9, 11, 1000.0, 5, 2 * n * 64 * 4};
      DecodingRow rec{"linear_recurrent", n, "ok", 2, 2, 3, 4000.0, 1, 64 * 64 * 4};
      if (n == 1024) rec.tokens_per_second = 8000;
      rows.push_back(kv);
      rows.push_back(rec);
    }
    const CurvesFigureData data = decoding_curves_data(o, rows);
    QCOMPARE(data.charts[0].series[0].name, QStringLiteral("softmax_kv_cache  (reference)"));
    QCOMPARE(data.charts[0].series[1].name, QStringLiteral("linear_recurrent  ×8.0 at N = 1k"));
    QCOMPARE(data.charts[1].series[1].name, QStringLiteral("linear_recurrent  ×0.031 at N = 1k"));
    const RenderedCurves r = render(data);
    const QPointF p = r.layout.charts[0].map(512, 4000);
    QVERIFY(colour_near(r.image, p, curves_series_color(1), 1, 30));
    const QPointF b = r.layout.charts[1].map(1024, 2.0 * 1024 * 64 * 4);
    QVERIFY(colour_near(r.image, b, curves_series_color(0), 1, 30));

    DepthMemoryOptions d;
    d.max_layers = 3;
    std::vector<DepthMemoryPoint> points;
    for (int n = 1; n <= 3; ++n) points.push_back({n, n * 3 * 1048576LL, 2 * 1048576LL, 1e-7 * n, 1.0, 2.0});
    const CurvesFigureData depth = depth_curves_data(d, points);
    QCOMPARE(depth.charts.size(), std::size_t{1});
    QVERIFY(!depth.charts[0].log_x && !depth.charts[0].log_y);
    QVERIFY(depth.summary.contains(QStringLiteral("within 3e-07 of max|x|")));
    const RenderedCurves rd = render(depth);
    QVERIFY(!rd.layout.charts[0].x.log);
    QVERIFY(colour_near(rd.image, rd.layout.charts[0].map(2, 6.0), okabe_ito(OkabeIto::Vermillion), 1, 30));
    QVERIFY(colour_near(rd.image, rd.layout.charts[0].map(3, 2.0), okabe_ito(OkabeIto::Blue), 1, 30));
    QVERIFY(rd.layout.charts[0].map(3, 9.0).y() < rd.layout.charts[0].map(1, 3.0).y());  // up is more

    QTemporaryDir dir;
    export_depth_curves(d, points, dir.filePath("d.json"), ExportOptions{});
    const nlohmann::json j = read_json(dir.filePath("d.json"));
    QCOMPARE(j, depth_curves_json(d, points));
    QCOMPARE(j.at("rows").size(), std::size_t{3});
    QCOMPARE(j.at("rows")[2].at("standard_bytes").get<std::int64_t>(), 9 * 1048576LL);
    export_depth_curves(d, points, dir.filePath("d.csv"), ExportOptions{});
    const auto csv = read_csv(dir.filePath("d.csv"));
    QCOMPARE(csv.size(), std::size_t{4});
    QCOMPARE(csv[0][0], QStringLiteral("layers"));
    QCOMPARE(csv[3][1].toLongLong(), 9 * 1048576LL);
    export_decoding_curves(o, rows, dir.filePath("dec.csv"), ExportOptions{});
    const auto dec = read_csv(dir.filePath("dec.csv"));
    QCOMPARE(dec.size(), rows.size() + 1);
    QCOMPARE(dec[2][0], QStringLiteral("linear_recurrent"));
    QCOMPARE(dec[2][6].toDouble(), 4000.0);
    EXPECT_ERROR(ParamError, export_depth_curves(d, {}, dir.filePath("e.png"), ExportOptions{}), "nothing to export");
    EXPECT_ERROR(ParamError, export_depth_curves(d, points, dir.filePath("e.txt"), ExportOptions{}), ".csv");
  }

  void size_lists_and_up_to() {
    QCOMPARE(parse_size_list(QStringLiteral("128, 256;1k  4K"), 2, 1 << 24, "lengths"),
             (std::vector<std::int64_t>{128, 256, 1024, 4096}));
    EXPECT_ERROR(ParamError, parse_size_list(QStringLiteral("128, lots"), 2, 1 << 24, "lengths"), "'lots'");
    EXPECT_ERROR(ParamError, parse_size_list(QStringLiteral("1"), 2, 1 << 24, "lengths"), "outside [2,");
    EXPECT_ERROR(ParamError, parse_size_list(QStringLiteral("64, 64"), 2, 1 << 24, "lengths"), "twice");
    EXPECT_ERROR(ParamError, parse_size_list(QStringLiteral(" "), 2, 1 << 24, "lengths"), "at least one");

    CurvesView view;
    QCOMPARE(view.lengthsEdit()->text(), QStringLiteral("128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536"));
    QCOMPARE(view.tokensEdit()->text(), QStringLiteral("256, 512, 1024, 2048, 4096, 8192, 16384"));
    QCOMPARE(view.lengthsUpTo()->value(), 65536);
    view.lengthsUpTo()->setValue(1024);
    QCOMPARE(view.lengthsEdit()->text(), QStringLiteral("128, 256, 512, 1024"));
    view.lengthsUpTo()->stepBy(1);
    QCOMPARE(view.lengthsUpTo()->value(), 2048);
    QCOMPARE(view.lengthsEdit()->text(), QStringLiteral("128, 256, 512, 1024, 2048"));
    view.lengthsEdit()->setText(QStringLiteral("64, 100"));
    view.lengthsUpTo()->setValue(512);
    QCOMPARE(view.lengthsEdit()->text(), QStringLiteral("64, 128, 256, 512"));
    QCOMPARE(view.depthLayersBox()->value(), 12);

    // Registered variants and model presets are offered; CUDA only with a GPU.
    QStringList names;
    for (int i = 0; i < view.variantList()->count(); ++i) names << view.variantList()->item(i)->text();
    QVERIFY(names.contains(QStringLiteral("reformer_lsh")));
    QVERIFY(names.contains(QStringLiteral("model:tiny-encoder")));
    const auto* model = qobject_cast<QStandardItemModel*>(view.deviceBox()->model());
    QVERIFY(model);
    std::string why;
    const bool gpu = gpu::gpu_available(&why);
    QCOMPARE(model->item(1)->isEnabled(), gpu);
    if (!gpu) QVERIFY(view.deviceBox()->itemData(1, Qt::ToolTipRole).toString().contains(QString::fromStdString(why)));
  }

  // Two variants × lengths 64, 128, one repeat: four rows arrive one by one; the chart holds
  // exactly them; hovering a point shows its numbers.
  void runner_streams_rows() {
    CurvesView view;
    view.resize(1400, 800);
    view.show();
    set_tiny_length_run(view, {"softmax", "linear"}, QStringLiteral("64, 128"));
    std::vector<std::size_t> seen;
    connect(view.runner(), &CurvesRunner::rowsAdded, &view, [&] { seen.push_back(view.runner()->lengthRows().size()); });
    QSignalSpy finished(view.runner(), &CurvesRunner::finished);
    QVERIFY(view.run());
    QVERIFY(view.runner()->isRunning());
    QVERIFY(!view.runButton()->isEnabled());
    QVERIFY(view.cancelButton()->isEnabled());
    QVERIFY(view.statusLine()->text().startsWith(QStringLiteral("Running")));
    QVERIFY(view.runner()->waitForFinished(120000));
    QCOMPARE(finished.count(), 1);
    QCOMPARE(seen, (std::vector<std::size_t>{1, 2, 3, 4}));
    QCOMPARE(view.progressBar()->value(), 4);
    QCOMPARE(view.progressBar()->maximum(), 4);
    QVERIFY(view.statusLine()->text().startsWith(QStringLiteral("Finished: 4 points")));
    QVERIFY(view.runButton()->isEnabled());
    QVERIFY(view.exportButton()->isEnabled());

    const std::vector<ComplexityRow>& rows = view.runner()->lengthRows();
    QCOMPARE(rows.size(), std::size_t{4});
    const CurvesFigureData data = view.lengthFigure();
    for (std::size_t v = 0; v < 2; ++v) {
      const std::string name = v == 0 ? "softmax" : "linear";
      const CurveSeries& series = data.charts[0].series[v];
      QCOMPARE(series.points.size(), std::size_t{2});
      for (const CurveMark& p : series.points) {
        const auto it = std::find_if(rows.begin(), rows.end(), [&](const ComplexityRow& r) {
          return r.variant == name && static_cast<double>(r.length) == p.x;
        });
        QVERIFY(it != rows.end());
        QCOMPARE(it->status, std::string("ok"));
        QCOMPARE(p.y, it->median_ms);
      }
    }
    QVERIFY(view.canvas(CurvesMode::Length)->hasFigure());

    // Hover: the pointer on softmax at L = 128 in the time chart.
    FigureCanvas* canvas = view.canvas(CurvesMode::Length);
    const CurvesFigureLayout layout =
        compute_curves_layout(data, canvas->figureStyle(), canvas->figureRect(), canvas->surface());
    const auto softmax128 = std::find_if(rows.begin(), rows.end(), [](const ComplexityRow& r) {
      return r.variant == "softmax" && r.length == 128;
    });
    move_pointer(canvas->surface(), layout.charts[0].map(128, softmax128->median_ms));
    QVERIFY2(canvas->surface()->toolTip().contains(QStringLiteral("softmax · L = 128")),
             qPrintable(canvas->surface()->toolTip()));
    QVERIFY(canvas->surface()->toolTip().contains(QStringLiteral("median")));
  }

  // Cancel returns at once and keeps the rows so far; the next run does not wait for the
  // cancelled one's whole remaining work; destroying a running panel joins promptly.
  void cancel_is_prompt_and_keeps_rows() {
    CurvesView view;
    // The first row comes at once; the second takes many seconds (100 calls at L = 8192).
    set_tiny_length_run(view, {"softmax"}, QStringLiteral("64, 8192, 16384"));
    view.repeatsBox()->setValue(100);
    view.dimBox()->setValue(64);
    QVERIFY(view.run());
    QTRY_VERIFY_WITH_TIMEOUT(!view.runner()->lengthRows().empty(), 60000);
    QElapsedTimer timer;
    timer.start();
    QTest::mouseClick(view.cancelButton(), Qt::LeftButton);
    // Not a timing test: Cancel must not wait for the worker's remaining calls (~100 of ~0.1 s each, far
    // more under load); the bound only catches a join, generously for a loaded CI machine.
    QVERIFY2(timer.elapsed() < 2000, qPrintable(QStringLiteral("cancel took %1 ms").arg(timer.elapsed())));
    QVERIFY(!view.runner()->isRunning());
    const std::size_t kept = view.runner()->lengthRows().size();
    QVERIFY(kept >= 1 && kept < 3);
    QVERIFY(view.statusLine()->text().startsWith(QStringLiteral("Cancelled after")));
    QVERIFY(view.runButton()->isEnabled());
    QTest::qWait(200);
    QCOMPARE(view.runner()->lengthRows().size(), kept);  // nothing stale arrives
    QVERIFY(view.canvas(CurvesMode::Length)->hasFigure());

    // The next run starts once the cancelled one has stopped at its next repeat.
    set_tiny_length_run(view, {"linear"}, QStringLiteral("64"));
    timer.restart();
    QVERIFY(view.run());
    QVERIFY(view.runner()->waitForFinished(20000));
    QVERIFY2(timer.elapsed() < 10000, qPrintable(QStringLiteral("next run took %1 ms").arg(timer.elapsed())));
    QCOMPARE(view.runner()->lengthRows().size(), std::size_t{1});

    auto* doomed = new CurvesView;
    set_tiny_length_run(*doomed, {"softmax"}, QStringLiteral("8192, 16384"));
    doomed->repeatsBox()->setValue(100);
    QVERIFY(doomed->run());
    QTest::qWait(100);
    timer.restart();
    delete doomed;
    QVERIFY2(timer.elapsed() < 5000, qPrintable(QStringLiteral("destruction took %1 ms").arg(timer.elapsed())));
  }

  // Bad input: one line in the status, nothing started, the chart and rows stay.
  void bad_input_keeps_the_last_chart() {
    CurvesView view;
    set_tiny_length_run(view, {"linear"}, QStringLiteral("64, 128"));
    QVERIFY(view.run());
    QVERIFY(view.runner()->waitForFinished(60000));
    const std::vector<ComplexityRow> before = view.runner()->lengthRows();
    QCOMPARE(before.size(), std::size_t{2});

    view.lengthsEdit()->setText(QStringLiteral("64, lots"));
    QVERIFY(!view.run());
    QVERIFY(!view.runner()->isRunning());
    QVERIFY(view.statusLine()->text().contains(QStringLiteral("'lots'")));
    QVERIFY(!view.statusLine()->text().contains(QLatin1Char('\n')));
    QCOMPARE(view.runner()->lengthRows().size(), before.size());
    QVERIFY(view.canvas(CurvesMode::Length)->hasFigure());
    // settings() keeps the last list that parsed.
    QCOMPARE(view.settings().length.lengths, (std::vector<std::int64_t>{64, 128}));

    view.lengthsEdit()->setText(QStringLiteral("64"));
    view.setCheckedVariants({});
    QVERIFY(!view.run());
    QVERIFY(view.statusLine()->text().contains(QStringLiteral("check at least one")));
    QCOMPARE(view.runner()->lengthRows().size(), before.size());

    view.setMode(CurvesMode::Decoding);
    view.setCheckedMethods({});
    QVERIFY(!view.run());
    QVERIFY(view.statusLine()->text().contains(QStringLiteral("at least one method")));
    view.setMode(CurvesMode::Depth);
    view.depthModelBox()->setValue(250);
    view.depthHeadsBox()->setValue(8);
    QVERIFY(!view.run());
    QVERIFY(view.statusLine()->text().contains(QStringLiteral("divisible")));

    // An error the engine reports (a length its cost model or limits refuse as an option) leaves
    // the chart of the last run: here an out-of-range dim cannot be typed, so use the runner.
    view.setMode(CurvesMode::Length);
    ComplexityOptions broken = view.runner()->lengthOptions();
    broken.variants = {"no_such_variant"};
    QSignalSpy failed(view.runner(), &CurvesRunner::failed);
    view.runner()->startLength(broken);
    QVERIFY(view.runner()->waitForFinished(10000));
    QCOMPARE(failed.count(), 1);
    QVERIFY(view.statusLine()->text().contains(QStringLiteral("no_such_variant")));
    QCOMPARE(view.runner()->lengthRows().size(), before.size());
    QCOMPARE(view.runner()->lengthOptions().variants, std::vector<std::string>{"linear"});
    QVERIFY(view.canvas(CurvesMode::Length)->hasFigure());
  }

  // The panel's exports of a tiny real run read back: the figure formats, complexity_to_json
  // and the CSV rows.
  void exports_read_back() {
    CurvesView view;
    set_tiny_length_run(view, {"softmax", "linear"}, QStringLiteral("64, 128, 256"));
    QVERIFY(view.run());
    QVERIFY(view.runner()->waitForFinished(120000));
    const std::vector<ComplexityRow>& rows = view.runner()->lengthRows();
    QCOMPARE(rows.size(), std::size_t{6});
    QTemporaryDir dir;
    for (const char* name : {"c.png", "c.svg", "c.pdf", "c.json", "c.csv"}) view.exportCurrent(dir.filePath(name));
    const QImage png(dir.filePath("c.png"));
    QVERIFY(!png.isNull());
    QVERIFY(png.width() > png.height());
    QVERIFY(svg_has_text(dir.filePath("c.svg"), QStringLiteral("slope")));
    QVERIFY(svg_has_text(dir.filePath("c.svg"), QStringLiteral("Time per call")));
    QVERIFY(is_pdf(dir.filePath("c.pdf")));

    const nlohmann::json j = read_json(dir.filePath("c.json"));
    QCOMPARE(j, complexity_to_json(view.runner()->lengthOptions(), complexity_result(view.runner()->lengthOptions(), rows)));
    QCOMPARE(j.at("rows").size(), rows.size());
    QCOMPARE(j.at("fits").size(), std::size_t{2});
    QCOMPARE(j.at("fits")[0].at("variant").get<std::string>(), std::string("softmax"));
    QCOMPARE(j.at("fits")[0].at("time_slope").get<double>(), fit_complexity("softmax", rows).time_slope);

    const auto csv = read_csv(dir.filePath("c.csv"));
    QCOMPARE(csv.size(), rows.size() + 1);
    QCOMPARE(csv[0], (QStringList{"variant", "length", "device", "status", "median_ms", "min_ms", "max_ms", "peak_bytes",
                                  "estimated_bytes", "high_water_bytes"}));
    for (std::size_t i = 0; i < rows.size(); ++i) {
      QCOMPARE(csv[i + 1][0], QString::fromStdString(rows[i].variant));
      QCOMPARE(csv[i + 1][1].toLongLong(), static_cast<qlonglong>(rows[i].length));
      QCOMPARE(csv[i + 1][3], QString::fromStdString(rows[i].status));
      QCOMPARE(csv[i + 1][4].toDouble(), rows[i].median_ms);
      QCOMPARE(csv[i + 1][7].toLongLong(), static_cast<qlonglong>(rows[i].peak_bytes));
    }
    EXPECT_ERROR(ParamError, view.exportCurrent(dir.filePath("c.txt")), ".json");
    view.setMode(CurvesMode::Decoding);
    EXPECT_ERROR(ParamError, view.exportCurrent(dir.filePath("d.png")), "nothing to export");
  }

  // Depth memory streams its points into a linear chart; decoding rows arrive one by one.
  void depth_and_decoding_runs() {
    CurvesView view;
    view.setMode(CurvesMode::Depth);
    view.depthLengthBox()->setValue(32);
    view.depthModelBox()->setValue(32);
    view.depthHeadsBox()->setValue(4);
    view.depthFfBox()->setValue(64);
    view.depthLayersBox()->setValue(3);
    QVERIFY(view.run());
    QVERIFY(view.runner()->waitForFinished(60000));
    const std::vector<DepthMemoryPoint>& points = view.runner()->depthPoints();
    QCOMPARE(points.size(), std::size_t{3});
    const CurvesFigureData depth = view.depthFigure();
    QCOMPARE(depth.charts[0].series[0].points.size(), std::size_t{3});
    QCOMPARE(depth.charts[0].series[0].points[2].y, static_cast<double>(points[2].standard_bytes) / 1048576.0);
    QCOMPARE(depth.charts[0].series[1].points[2].y, static_cast<double>(points[2].reversible_bytes) / 1048576.0);
    QCOMPARE(view.progressBar()->value(), 3);

    view.setMode(CurvesMode::Decoding);
    view.setCheckedMethods({"softmax_kv_cache", "linear_recurrent"});
    view.tokensEdit()->setText(QStringLiteral("16, 32"));
    view.decodingRepeatsBox()->setValue(1);
    view.decodingDimBox()->setValue(16);
    std::vector<std::size_t> seen;
    connect(view.runner(), &CurvesRunner::rowsAdded, &view, [&](CurvesMode m) {
      if (m == CurvesMode::Decoding) seen.push_back(view.runner()->decodingRows().size());
    });
    QVERIFY(view.run());
    QVERIFY(view.runner()->waitForFinished(60000));
    QCOMPARE(seen, (std::vector<std::size_t>{1, 2, 3, 4}));
    const CurvesFigureData decoding = view.decodingFigure();
    for (const DecodingRow& r : view.runner()->decodingRows()) QCOMPARE(r.status, std::string("ok"));
    QCOMPARE(decoding.charts[0].series[0].points.size(), std::size_t{2});
    QTemporaryDir dir;
    view.exportCurrent(dir.filePath("dec.json"));
    QCOMPARE(read_json(dir.filePath("dec.json")),
             decoding_to_json(view.runner()->decodingOptions(), view.runner()->decodingRows()));
    // The depth tab still shows its own run.
    QCOMPARE(view.runner()->depthPoints().size(), std::size_t{3});
  }

  // Settings: JSON round trip with validation; the panel shows and returns them.
  void settings_round_trip() {
    CurvesSettings s;
    s.mode = CurvesMode::Decoding;
    s.length.variants = {"performer", "model:tiny-encoder"};
    s.length.lengths = {64, 4096};
    s.length.dim = 32;
    s.length.heads = 2;
    s.length.causal = true;
    s.length.repeats = 7;
    s.length.time_budget_ms = 2500;
    s.length.seed = 42;
    s.decoding.methods = {"linear_recurrent"};
    s.decoding.tokens = {128, 1024};
    s.decoding.seed = 9;
    s.depth.variant = "linear";
    s.depth.max_layers = 5;
    s.depth.d_model = 128;
    s.depth.heads = 4;
    const CurvesSettings back = CurvesSettings::from_json(s.to_json());
    QCOMPARE(back.to_json(), s.to_json());
    QCOMPARE(CurvesSettings::from_json(nlohmann::json::object()).to_json(), CurvesSettings{}.to_json());

    CurvesView view;
    QSignalSpy changed(&view, &CurvesView::settingsChanged);
    view.setSettings(s);
    QCOMPARE(changed.count(), 0);
    QCOMPARE(view.settings().to_json(), s.to_json());
    QCOMPARE(view.mode(), CurvesMode::Decoding);
    QVERIFY(view.causalBox()->isChecked());
    QCOMPARE(view.lengthsEdit()->text(), QStringLiteral("64, 4096"));
    view.seedBox()->setValue(43);
    QVERIFY(changed.count() >= 1);

    nlohmann::json bad = s.to_json();
    bad["length"]["dim"] = 4096;
    EXPECT_ERROR(ParamError, CurvesSettings::from_json(bad), "length.dim");
    bad = s.to_json();
    bad["length"]["variants"] = {"softmax", "bogus"};
    EXPECT_ERROR(ParamError, CurvesSettings::from_json(bad), "bogus");
    bad = s.to_json();
    bad["mode"] = "speed";
    EXPECT_ERROR(ParamError, CurvesSettings::from_json(bad), "length, decoding, depth");
    bad = s.to_json();
    bad["decoding"]["methods"] = {"beam_search"};
    EXPECT_ERROR(ParamError, CurvesSettings::from_json(bad), "beam_search");
    bad = s.to_json();
    bad["depth"]["heads"] = 3;
    EXPECT_ERROR(ParamError, CurvesSettings::from_json(bad), "divisible");
    bad = s.to_json();
    bad["length"]["lengths"] = "64";
    EXPECT_ERROR(ParamError, CurvesSettings::from_json(bad), "wrong type");
    // An invalid setting changes nothing in the panel.
    CurvesSettings invalid = s;
    invalid.length.lengths = {};
    EXPECT_ERROR(ParamError, view.setSettings(invalid), "length.lengths");
    QCOMPARE(view.lengthsEdit()->text(), QStringLiteral("64, 4096"));
  }
};

QTEST_MAIN(TestCurvesView)
#include "test_curves_view.moc"
