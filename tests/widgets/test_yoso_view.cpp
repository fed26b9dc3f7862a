// The "YOSO kernel" view on the offscreen platform: which results it accepts; the colours of the
// three heatmaps at cells found through the public layout, against the colormap table applied to
// the engine's kernels with the colour ranges worked out here (one scale for B̂ and B, a
// symmetric diverging one for B̂ - B); the measured points of both plots where their data put
// them, on log and linear probability axes; the widget following setContext, the log toggle and
// the hovered token; every export read back with independent readers; the view option
// "log_probability" in the widget and in the exported figure.
#include <QFile>
#include <QImage>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "attention/yoso.h"
#include "core/error.h"
#include "core/npy.h"
#include "figure_canvas.h"
#include "figures/yoso_figure.h"
#include "models/playground.h"
#include "test_support.h"
#include "view_test_support.h"
#include "yoso_view.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kText = "a small cat sleeps on the warm mat while two birds sing in the old green tree near the river";

PlaygroundResultPtr run(const std::string& variant, nlohmann::json params, bool causal = false,
                        const std::string& text = kText) {
  return run_playground(variant, std::move(params), causal, text, 3);
}

const YosoExtras& extras_of(const ViewContext& c) { return *layer_extras<YosoExtras>(c); }

Rendered<YosoFigureLayout> render(const ViewContext& c, const FigureStyle& style, const YosoFigureOptions& options = {},
                                  double dpi = 100) {
  return render_with_layout(yoso_painted_figure(c, style, options), dpi, compute_yoso_layout, c, style);
}

}  // namespace

class TestYosoView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_only_yoso() {
    const ViewSpec& spec = view_spec("yoso");
    QCOMPARE(spec.title, QStringLiteral("YOSO kernel"));
    QCOMPARE(spec.requirement, QStringLiteral("needs the yoso variant"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json", "npy"}));
    QVERIFY(spec.make_widget);
    QVERIFY(spec.accepts(*run("yoso", nlohmann::json::object())));
    const PlaygroundResultPtr bigbird = run("bigbird", nlohmann::json::object());
    QVERIFY(!spec.accepts(*bigbird));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(bigbird)), "needs the yoso variant");
  }

  // The heatmaps show the engine's kernels: B̂ and B on one scale [0, max of both], the
  // difference on the diverging map over [-a, a].
  void heatmap_cells_show_the_kernels() {
    ViewContext c = view_context(run("yoso", {{"hash_bits", 4}, {"n_hashes", 16}}, true), 1, 2);
    c.colormap = ColormapId::Magma;
    const YosoExtras& e = extras_of(c);
    const std::int64_t L = e.queries();
    float top = 0.0f, spread = 0.0f;
    for (std::int64_t i = 0; i < L; ++i)
      for (std::int64_t j = 0; j < L; ++j) {
        top = std::max({top, e.sampled(2, i, j), e.expected(2, i, j)});
        spread = std::max(spread, std::abs(e.sampled(2, i, j) - e.expected(2, i, j)));
      }
    QVERIFY(top > 0.0f && spread > 0.0f);
    const auto r = render(c, FigureStyle{});
    const Colormap& magma = Colormap::get(ColormapId::Magma);
    const Colormap& coolwarm = Colormap::get(ColormapId::Coolwarm);
    for (int i = 0; i < L; i += 2)
      for (int j = 0; j < L; j += 3) {
        const QRgb s = pixel_at(r.image, r.layout.sampled.cell_rect(i, j).center());
        const QRgb x = pixel_at(r.image, r.layout.expected.cell_rect(i, j).center());
        const QRgb d = pixel_at(r.image, r.layout.difference.cell_rect(i, j).center());
        QVERIFY2(near_colour(s, magma.color(e.sampled(2, i, j), 0.0f, top)), qPrintable(QString("B̂ (%1,%2) %3").arg(i).arg(j).arg(describe(s))));
        QVERIFY2(near_colour(x, magma.color(e.expected(2, i, j), 0.0f, top)), qPrintable(QString("B (%1,%2) %3").arg(i).arg(j).arg(describe(x))));
        const float diff = e.sampled(2, i, j) - e.expected(2, i, j);
        QVERIFY2(near_colour(d, coolwarm.color(diff, -spread, spread)), qPrintable(QString("diff (%1,%2) %3").arg(i).arg(j).arg(describe(d))));
        if (j > i) QCOMPARE(e.sampled(2, i, j), 0.0f);  // causal
      }
  }

  // Measured points sit where their numbers put them, on a log and on a linear axis.
  void plots_place_measured_points() {
    const ViewContext c = view_context(run("yoso", {{"hash_bits", 2}, {"n_hashes", 64}}), 0, 1);
    const YosoExtras& e = extras_of(c);
    for (bool log_axis : {true, false}) {
      const YosoFigureOptions options{log_axis};
      const auto r = render(c, FigureStyle{}, options, 150);
      int checked = 0;
      for (int b = 0; b < YosoExtras::kAngleBins; b += 2) {
        const std::size_t k = e.bin_index(1, b);
        if (e.data().bin_pairs[k] == 0 || e.data().bin_sampled[k] <= 0.0) continue;
        const QPointF at = yoso_collision_point(r.layout, c, options, e.data().bin_angle[k], e.data().bin_sampled[k]);
        QVERIFY(r.layout.collision_plot.adjusted(-1, -1, 1, 1).contains(at));
        const QRgb got = pixel_at(r.image, at);
        QVERIFY2(near_colour(got, yoso_measured_color().rgb(), 6), qPrintable(QString("bin %1: %2").arg(b).arg(describe(got))));
        ++checked;
      }
      QVERIFY(checked >= 3);
      // The closed-form curve passes through (60°, (2/3)^2): a dark pixel near that point.
      const QPointF on_curve = yoso_collision_point(r.layout, c, options, std::numbers::pi / 3, std::pow(2.0 / 3.0, 2));
      bool dark = false;
      for (int dx = -2; dx <= 2; ++dx)
        for (int dy = -2; dy <= 2; ++dy) dark = dark || qGray(pixel_at(r.image, on_curve + QPointF(dx, dy))) < 110;
      QVERIFY(dark);
      for (std::size_t p = 0; p < e.data().error_hashes.size(); ++p) {
        const QPointF at = yoso_error_point(r.layout, c, e.data().error_hashes[p], e.relative_error(1, p));
        const QRgb got = pixel_at(r.image, at);
        QVERIFY2(near_colour(got, yoso_error_color().rgb(), 6), qPrintable(QString("error point %1: %2").arg(p).arg(describe(got))));
      }
    }
  }

  void dark_style_highlight_and_sizes() {
    ViewContext c = view_context(run("yoso", nlohmann::json::object()));
    const FigureStyle dark = FigureStyle::dark();
    const auto plain = render(c, dark);
    QVERIFY(near_colour(plain.image.pixel(1, 1), dark.background.rgb()));
    c.highlighted_token = 4;
    const auto marked = render(c, dark);
    QVERIFY(plain.image != marked.image);
    QCOMPARE(marked.layout.token_at(marked.layout.expected.cell_rect(4, 1).center()), 4);
    QCOMPARE(marked.layout.token_at(marked.layout.collision_plot.center()), -1);
    QString long_text;
    for (int i = 0; i < 512; ++i) long_text += QStringLiteral("w%1 ").arg(i % 41);
    for (const std::string& text : {std::string("one two three four five"), long_text.toStdString()}) {
      const ViewContext ci = view_context(run("yoso", nlohmann::json::object(), false, text));
      const QSizeF size = view_spec("yoso").figure(ci, FigureStyle{}).size;
      QVERIFY(size.width() > 300 && size.width() < 2500 && size.height() > 200 && size.height() < 2000);
      const auto r = render(ci, FigureStyle{}, {}, 72);
      const std::vector<QRectF> parts = {r.layout.collision_plot, r.layout.error_plot, r.layout.sampled.matrix,
                                         r.layout.expected.matrix, r.layout.difference.matrix};
      for (std::size_t a = 0; a < parts.size(); ++a) {
        QVERIFY(parts[a].width() > 100);
        for (std::size_t b = a + 1; b < parts.size(); ++b) QVERIFY(!parts[a].intersects(parts[b]));
      }
      QVERIFY(r.image.rect().contains(r.layout.summary.toAlignedRect()));
    }
  }

  void widget_follows_context_toggle_and_hover() {
    YosoView view;
    view.resize(1400, 700);
    view.show();
    const ViewContext c = view_context(run("yoso", {{"hash_bits", 3}}));
    view.setContext(c);
    const QImage first = view.canvas()->grab().toImage();
    ViewContext other = c;
    other.head = 6;
    view.setContext(other);
    QCOMPARE(view.context().head, 6);
    const QImage second = view.canvas()->grab().toImage();
    QVERIFY(first != second);
    view.logScaleBox()->setChecked(false);
    QVERIFY(!view.figureOptions().log_probability);
    QVERIFY(view.canvas()->grab().toImage() != second);

    QSignalSpy spy(&view, &TraceViewWidget::tokenHovered);
    const YosoFigureLayout layout = view.figureLayout();
    QTest::mouseMove(view.canvas()->surface(), layout.sampled.cell_rect(7, 2).center().toPoint());
    QTRY_VERIFY(!spy.isEmpty());
    QCOMPARE(spy.last().at(0).toInt(), 7);
    QCOMPARE(view.context().highlighted_token, 7);
    view.setContext(view_context(run("softmax", nlohmann::json::object())));
    QVERIFY(!yoso_extras(view.context()));
    QVERIFY(view.canvas()->message().contains(QStringLiteral("needs the yoso variant")));
  }

  // The exported figure's probability axis follows the option; the widget's check box is it.
  void log_probability_option() {
    const ViewContext c = view_context(run("yoso", {{"hash_bits", 3}}));
    const QImage log_axis = render_view("yoso", c);
    QCOMPARE(render_view("yoso", view_context(c.result, 0, 0, {{"log_probability", true}})), log_axis);
    QVERIFY(render_view("yoso", view_context(c.result, 0, 0, {{"log_probability", false}})) != log_axis);
    EXPECT_ERROR(ParamError, render_view("yoso", view_context(c.result, 0, 0, {{"log_probability", "no"}})),
                 "log_probability: true or false");
    YosoView view;
    view.setContext(c);
    QSignalSpy changed(&view, &TraceViewWidget::viewOptionsChanged);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"log_probability", true}}));
    view.setViewOptions({{"log_probability", false}});
    QVERIFY(!view.logScaleBox()->isChecked());
    QCOMPARE(changed.count(), 1);
    view.logScaleBox()->setChecked(true);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"log_probability", true}}));
    QCOMPARE(changed.count(), 2);
  }

  void exports_read_back() {
    const ViewContext c = view_context(run("yoso", {{"n_hashes", 8}, {"mode", "expected"}}), 3, 5);
    const YosoExtras& e = extras_of(c);
    QTemporaryDir dir;
    const auto path = [&](const char* name) { return dir.filePath(QString::fromLatin1(name)); };
    export_each("yoso", c, dir, {"f.png", "f.svg", "f.pdf", "d.json", "d.csv", "d.npy"});

    const QImage png(path("f.png"));
    QVERIFY(!png.isNull());
    QCOMPARE(png.width(), static_cast<int>(std::lround(yoso_figure_size(c, FigureStyle{}).width() * 150.0 / 72.0)));
    QVERIFY(svg_has_text(path("f.svg"), QStringLiteral("YOSO kernel")));
    QVERIFY(is_pdf(path("f.pdf")));

    const std::int64_t L = e.queries();
    const nlohmann::json j = read_json(path("d.json"));
    QCOMPARE(j.at("head").get<int>(), 5);
    QCOMPARE(j.at("mode").get<std::string>(), std::string("expected"));
    for (std::int64_t i = 0; i < L; ++i)
      for (std::int64_t k = 0; k < L; ++k) {
        QCOMPARE(j.at("sampled_kernel")[i][k].get<float>(), e.sampled(5, i, k));
        QCOMPARE(j.at("expected_kernel")[i][k].get<float>(), e.expected(5, i, k));
      }
    QCOMPARE(j.at("query_codes")[7][3].get<int>(), e.query_code(5, 7, 3));
    for (std::size_t p = 0; p < e.data().error_hashes.size(); ++p)
      QCOMPARE(j.at("relative_error")[p].get<double>(), e.relative_error(5, p));

    const Tensor kernels = read_npy(path("d.npy").toStdString());
    QCOMPARE(kernels.shape(), (Shape{2, e.heads(), L, L}));
    for (std::int64_t h = 0; h < e.heads(); ++h)
      for (std::int64_t i = 0; i < L; ++i)
        for (std::int64_t k = 0; k < L; ++k) {
          QCOMPARE(kernels.data()[((0 * e.heads() + h) * L + i) * L + k], e.sampled(h, i, k));
          QCOMPARE(kernels.data()[((1 * e.heads() + h) * L + i) * L + k], e.expected(h, i, k));
        }

    const auto rows = read_csv(path("d.csv"));
    QCOMPARE(static_cast<std::int64_t>(rows.size()), L * L + 1);
    const Tensor& weights = c.result->layers[3].weights;
    for (std::size_t line = 1; line < rows.size(); ++line) {
      const auto& row = rows[line];
      QCOMPARE(row.size(), qsizetype{9});
      const int i = row[0].toInt(), k = row[2].toInt();
      QCOMPARE(row[4].toInt(), e.collisions(5, i, k));
      QCOMPARE(parse_float(row[5]), e.sampled(5, i, k));
      QCOMPARE(parse_float(row[6]), e.expected(5, i, k));
      QCOMPARE(parse_float(row[8]), weights.at(5, i, k));
      QCOMPARE(weights.at(5, i, k), e.expected(5, i, k));  // expected mode applies B
    }
    EXPECT_ERROR(ParamError, export_view(view_spec("yoso"), c, path("d.txt"), ExportOptions{}), ".npy");
  }
};

QTEST_MAIN(TestYosoView)
#include "test_yoso_view.moc"
