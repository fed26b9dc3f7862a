// The "Gated state space" view on the offscreen platform: which results it accepts (models with
// GSS layers; a tiny-encoder result is refused with the requirement); the kernel map's colours at
// cells found through the public layout against the diverging colormap applied here to the
// trace's kernels; the gate through the colormap; the eigenvalues, the steps Δ and the kernel
// curves where the trace puts them; legibility at 512 tokens; the widget following setContext,
// emitting tokenHovered and layerParamsEdited (kernel, states) but never while showing a new
// result; exports read back (.npy with the engine's kernels).
#include <QDir>
#include <QImage>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/npy.h"
#include "figure_canvas.h"
#include "figures/gss_figure.h"
#include "gss_view.h"
#include "preset_runs.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kText = "a small cat sleeps on the warm mat while two birds sing in the old green tree near the river";

Rendered<GssFigureLayout> render(const ViewContext& c, const GssFigureOptions& options = {}, double dpi = 100, const FigureStyle& style = {}) {
  return render_laid_out<GssFigureLayout>(gss_painted_figure(c, style, options), dpi, [&](const QRectF& target, const QPaintDevice* device) {
    return compute_gss_layout(c, style, target, device);
  });
}

const GssTrace& trace_of(const ViewContext& c) { return *gss_trace(c); }

// Six eigenvalues (seeded as −½ + iπn) and steps Δ from 0.01 on.
PlaygroundResultPtr few_states() { return run_preset_with("gss", "gss", {{"state_dim", 6}, {"dt_min", 0.01}}, kText); }

}  // namespace

class TestGssView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_models_with_gss_layers() {
    const ViewSpec& spec = view_spec("gss");
    QCOMPARE(spec.title, QStringLiteral("Gated state space"));
    QCOMPARE(spec.requirement, QStringLiteral("needs a model with GSS layers, e.g. the gss preset"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json", "npy"}));
    QVERIFY(spec.make_widget);
    QCOMPARE(spec.options.size(), std::size_t{1});
    QVERIFY(spec.accepts(*run_model("gss", kText)));
    const PlaygroundResultPtr plain = run_playground("softmax", nlohmann::json::object(), false, kText);
    QVERIFY(!spec.accepts(*plain));
    QVERIFY(!spec.accepts(*run_model("mega", kText)));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(plain)), "needs a model with GSS layers");
    EXPECT_ERROR(ParamError, render_view("gss", view_context(plain)), "gss preset");
    EXPECT_ERROR(ParamError, export_view(spec, view_context(plain), QDir::temp().filePath("x.csv"), ExportOptions{}),
                 "needs a model with GSS layers");
  }

  // Each map row is K of the channel divided by its largest |K| (or all by the largest of all), on
  // Coolwarm over [−1, 1]; the gate through the context's colormap on its [min, max].
  void kernel_map_and_gate_show_the_trace() {
    ViewContext c = view_context(run_model("gss", kText), 2);
    c.colormap = ColormapId::Magma;
    const GssTrace& g = trace_of(c);
    const std::int64_t H = g.kernel.dim(0);
    const int L = static_cast<int>(c.result->length());
    QCOMPARE(g.kernel.dim(1), static_cast<std::int64_t>(L));
    const KernelMap map = gss_kernel_map(c);
    QCOMPARE(map.first_offset, 0);
    const Colormap& coolwarm = Colormap::get(ColormapId::Coolwarm);
    for (const KernelScale scale : {KernelScale::PerChannel, KernelScale::Shared}) {
      float shared = 0.0f;
      for (std::int64_t h = 0; h < H; ++h) shared = std::max(shared, largest_abs(g.kernel, h));
      const auto r = render(c, {scale}, 150);
      for (int h = 0; h < H; h += 23)
        for (int l = 0; l < map.grid.cols; l += 3) {
          const float s = scale == KernelScale::Shared ? shared : largest_abs(g.kernel, h);
          const QRgb got = pixel_at(r.image, r.layout.kernel.cell_rect(h, map.column(l)).center());
          QVERIFY2(near_colour(got, QColor(coolwarm.color(g.kernel.at(h, l) / s, -1.0f, 1.0f)), 4),
                   qPrintable(QString("channel %1 lag %2: %3").arg(h).arg(l).arg(describe(got))));
        }
      const float lo = *std::min_element(g.gate.data(), g.gate.data() + L), hi = *std::max_element(g.gate.data(), g.gate.data() + L);
      QVERIFY(hi > lo);
      const Colormap& magma = Colormap::get(ColormapId::Magma);
      for (int i = 0; i < L; ++i) {
        const QRgb got = pixel_at(r.image, r.layout.gate.cell_rect(i, 0).center());
        QVERIFY2(near_colour(got, QColor(magma.color(g.gate.data()[i], lo, hi)), 4), qPrintable(QString("token %1").arg(i)));
      }
    }
  }

  // Eigenvalue markers at (Re Λ, Im Λ), all left of the imaginary axis; the four curve channels'
  // Δ markers in their colours; the curves through K / max |K|.
  void eigenvalues_steps_and_curves_where_the_trace_puts_them() {
    const ViewContext c = view_context(few_states(), 0);
    const GssTrace& g = trace_of(c);
    QCOMPARE(g.lambda_re.size(), std::int64_t{6});
    const auto r = render(c, {}, 200);
    const QRectF& plot = r.layout.eigen_plot;
    const double zero_x = gss_eigen_point(r.layout, g, 0.0, 0.0).x();
    QVERIFY(std::abs(zero_x - plot.right()) < 1e-6);
    for (std::int64_t n = 0; n < 6; ++n) {
      QVERIFY(g.lambda_re.data()[n] < 0.0f);
      const QPointF at = gss_eigen_point(r.layout, g, g.lambda_re.data()[n], g.lambda_im.data()[n]);
      QVERIFY(plot.contains(at) && at.x() < zero_x);
      QVERIFY2(near_colour(pixel_at(r.image, at), gss_eigen_color(), 6), qPrintable(QString("Λ_%1: %2").arg(n).arg(describe(pixel_at(r.image, at)))));
    }
    const KernelCurves curves = gss_kernel_curves(c);
    QCOMPARE(curves.channels.size(), std::size_t{4});
    QVERIFY(curves.scale == CurveScale::Signed);
    QCOMPARE(g.dt.data()[curves.channels.front()], *std::min_element(g.dt.data(), g.dt.data() + g.dt.size()));
    QCOMPARE(g.dt.data()[curves.channels.back()], *std::max_element(g.dt.data(), g.dt.data() + g.dt.size()));
    for (std::size_t i = 0; i < curves.channels.size(); ++i) {
      const int h = curves.channels[i];
      const QPointF dt_at = gss_dt_point(r.layout, g, h, g.dt.data()[h]);
      QVERIFY(r.layout.dt_plot.adjusted(-1, -1, 1, 1).contains(dt_at));
      QVERIFY2(near_colour(pixel_at(r.image, dt_at), kernel_curve_color(static_cast<int>(i)), 6),
               qPrintable(QString("Δ of channel %1: %2").arg(h).arg(describe(pixel_at(r.image, dt_at)))));
      const QPointF k_at = kernel_curve_point(r.layout.curves_plot, curves, h, 0);
      const double rel = g.kernel.at(h, 0) / largest_abs(g.kernel, h);
      QVERIFY(std::abs((r.layout.curves_plot.bottom() - k_at.y()) / r.layout.curves_plot.height() - (rel + 1.0) / 2.0) < 1e-6);
    }
    // The curve of the slowest channel (smallest Δ) is drawn in the first colour at a lag far
    // from the legend in the upper right corner.
    const int slow = curves.channels.front();
    int hits = 0;
    for (int l = 1; l < 6; ++l)
      hits += near_colour(pixel_at(r.image, kernel_curve_point(r.layout.curves_plot, curves, slow, l)), kernel_curve_color(0), 60) ? 1 : 0;
    QVERIFY2(hits >= 3, qPrintable(QString("%1 of 5").arg(hits)));
  }

  void long_inputs_dark_style_and_hit_testing() {
    for (const std::string& text : {std::string("one two three"), long_text(512)}) {
      const ViewContext c = view_context(run_model("gss", text));
      const QSizeF size = view_spec("gss").figure(c, FigureStyle{}).size;
      QVERIFY(size.width() > 400 && size.width() < 1400 && size.height() > 250 && size.height() < 1000);
      const auto r = render(c, {}, 72);
      const std::vector<QRectF> parts = {r.layout.kernel.matrix, r.layout.kernel.colorbar, r.layout.curves_plot, r.layout.eigen_plot,
                                         r.layout.dt_plot, r.layout.gate.matrix, r.layout.gate.colorbar};
      for (std::size_t a = 0; a < parts.size(); ++a) {
        QVERIFY(!parts[a].isEmpty());
        QVERIFY(QRectF(r.image.rect()).contains(parts[a]));
        for (std::size_t b = a + 1; b < parts.size(); ++b) QVERIFY(!parts[a].intersects(parts[b]));
      }
      QVERIFY(r.layout.summary.bottom() <= r.image.height());
      const int L = static_cast<int>(c.result->length());
      QCOMPARE(r.layout.token_at(r.layout.gate.cell_rect(L / 2, 0).center()), L / 2);
      QCOMPARE(r.layout.token_at(r.layout.eigen_plot.center()), -1);
      if (L == 512) QVERIFY(r.layout.gate.row_stride > 1);
    }
    ViewContext c = view_context(run_model("gss", kText));
    const FigureStyle dark = FigureStyle::dark();
    const auto plain = render(c, {}, 100, dark);
    QVERIFY(near_colour(plain.image.pixel(1, 1), dark.background));
    c.highlighted_token = 4;
    QVERIFY(render(c, {}, 100, dark).image != plain.image);
  }

  void widget_shows_the_trace_and_emits_parameter_edits() {
    GssView view;
    view.resize(1100, 700);
    view.show();
    QVERIFY(!view.kernelBox()->isEnabled());
    std::vector<std::pair<int, nlohmann::json>> edits;
    QObject::connect(&view, &TraceViewWidget::layerParamsEdited, &view,
                     [&edits](int layer, const nlohmann::json& params) { edits.emplace_back(layer, params); });
    view.setContext(view_context(run_preset_with("gss", "gss", {{"state_dim", 12}, {"kernel", "softmax"}}, kText), 2));
    QVERIFY(view.kernelBox()->isEnabled());
    QCOMPARE(view.kernelBox()->currentText(), QStringLiteral("softmax"));
    QCOMPARE(view.statesBox()->value(), 12);
    QCOMPARE(static_cast<int>(edits.size()), 0);  // showing a result is not an edit
    const QImage first = view.canvas()->grab().toImage();

    view.kernelBox()->setCurrentText(QStringLiteral("exp"));
    QCOMPARE(static_cast<int>(edits.size()), 1);
    QCOMPARE(edits.back().first, 2);
    QCOMPARE(edits.back().second, (nlohmann::json{{"kernel", "exp"}}));
    view.statesBox()->setValue(32);
    QCOMPARE(static_cast<int>(edits.size()), 2);
    QCOMPARE(edits.back().second, (nlohmann::json{{"state_dim", 32}}));

    view.setContext(view_context(run_model("gss", kText), 2));
    QCOMPARE(static_cast<int>(edits.size()), 2);
    QCOMPARE(view.kernelBox()->currentText(), QStringLiteral("exp"));
    QCOMPARE(view.statesBox()->value(), 64);
    QVERIFY(view.canvas()->grab().toImage() != first);

    QSignalSpy hovered(&view, &TraceViewWidget::tokenHovered);
    const GssFigureLayout layout = view.figureLayout();
    // Sent to the surface directly: the offscreen screen (800 px wide) holds no pointer this far right.
    move_pointer(view.canvas()->surface(), layout.gate.cell_rect(7, 0).center());
    QTRY_VERIFY(!hovered.isEmpty());
    QCOMPARE(hovered.last().at(0).toInt(), 7);
    QCOMPARE(view.context().highlighted_token, 7);

    QSignalSpy changed(&view, &TraceViewWidget::viewOptionsChanged);
    view.setViewOptions({{"kernel_scale", "shared"}});
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"kernel_scale", "shared"}}));
    QCOMPARE(changed.count(), 1);
    EXPECT_ERROR(ParamError, view.setViewOptions({{"segment", 1}}), "view 'gss' has no option 'segment'");
    QCOMPARE(static_cast<int>(edits.size()), 2);

    view.setContext(view_context(run_playground("softmax", nlohmann::json::object(), false, kText)));
    QVERIFY(view.canvas()->message().contains(QStringLiteral("gss preset")));
    QVERIFY(!view.kernelBox()->isEnabled());
  }

  void exports_read_back() {
    const ViewContext c = view_context(few_states(), 1);
    const GssTrace& g = trace_of(c);
    QTemporaryDir dir;
    export_each("gss", c, dir, {"f.png", "f.svg", "f.pdf", "d.json", "d.csv", "d.npy"});
    const QImage png(dir.filePath("f.png"));
    QCOMPARE(png.width(), static_cast<int>(std::lround(gss_figure_size(c, FigureStyle{}).width() * 150.0 / 72.0)));
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("Gated state space")));
    QVERIFY(is_pdf(dir.filePath("f.pdf")));

    const nlohmann::json j = read_json(dir.filePath("d.json"));
    QCOMPARE(j.at("layer").get<int>(), 1);
    QCOMPARE(j.at("layer_type").get<std::string>(), std::string("gss"));
    QCOMPARE(j.at("tokens").size(), c.result->tokens.size());
    for (const char* key : {"kernel", "lambda_re", "lambda_im", "gate", "dt", "kernel_kind"}) QVERIFY2(j.contains(key), key);

    const auto rows = read_csv(dir.filePath("d.csv"));
    QCOMPARE(rows.front(), (QStringList{"token_index", "token", "gate"}));
    QCOMPARE(rows.size(), c.result->tokens.size() + 1);
    for (std::size_t line = 1; line < rows.size(); ++line) {
      const int i = static_cast<int>(line - 1);
      QCOMPARE(rows[line][0].toInt(), i);
      QCOMPARE(rows[line][1], QString::fromStdString(c.result->tokens[static_cast<std::size_t>(i)].text));
      QCOMPARE(parse_float(rows[line][2]), g.gate.data()[i]);
    }

    const Tensor npy = read_npy(dir.filePath("d.npy").toStdString());
    QCOMPARE(npy.shape(), g.kernel.shape());
    QVERIFY(std::equal(g.kernel.data(), g.kernel.data() + g.kernel.size(), npy.data()));
  }
};

QTEST_MAIN(TestGssView)
#include "test_gss_view.moc"
