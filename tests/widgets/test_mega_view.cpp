// The "Mega EMA and gates" view on the offscreen platform: which results it accepts (models with
// Mega layers; a tiny-encoder result is refused with the requirement); the kernel map's colours
// at cells found through the public layout against the diverging colormap applied here to the
// trace's kernels (scaled per channel or shared), the backward kernel on negative offsets, the
// lags shown; the attention weights and the gates u and r through the colormap; the decay curves
// where the kernels put them; chunk outlines; legibility at 512 tokens; the widget following
// setContext, emitting tokenHovered and layerParamsEdited (chunk, attention) but never while
// showing a new result; exports read back (.npy with the engine's kernels).
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
#include "figures/mega_figure.h"
#include "mega_view.h"
#include "preset_runs.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kText = "a small cat sleeps on the warm mat while two birds sing in the old green tree near the river";

Rendered<MegaFigureLayout> render(const ViewContext& c, const MegaFigureOptions& options = {}, double dpi = 100, const FigureStyle& style = {}) {
  return render_laid_out<MegaFigureLayout>(mega_painted_figure(c, style, options), dpi, [&](const QRectF& target, const QPaintDevice* device) {
    return compute_mega_layout(c, style, target, device);
  });
}

const MegaTrace& trace_of(const ViewContext& c) { return *mega_trace(c); }

}  // namespace

class TestMegaView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_models_with_mega_layers() {
    const ViewSpec& spec = view_spec("mega");
    QCOMPARE(spec.title, QStringLiteral("Mega EMA and gates"));
    QCOMPARE(spec.requirement, QStringLiteral("needs a model with Mega layers, e.g. the mega preset"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json", "npy"}));
    QVERIFY(spec.make_widget);
    QCOMPARE(spec.options.size(), std::size_t{1});
    QVERIFY(spec.accepts(*run_model("mega", kText)));
    const PlaygroundResultPtr plain = run_playground("softmax", nlohmann::json::object(), false, kText);
    QVERIFY(!spec.accepts(*plain));
    QVERIFY(!spec.accepts(*run_model("gss", kText)));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(plain)), "needs a model with Mega layers");
    EXPECT_ERROR(ParamError, render_view("mega", view_context(plain)), "mega preset");
    EXPECT_ERROR(ParamError, export_view(spec, view_context(plain), QDir::temp().filePath("x.csv"), ExportOptions{}),
                 "needs a model with Mega layers");
  }

  // Each map row is the channel's kernel divided by its largest |k| (over both directions), on
  // Coolwarm over [−1, 1]; offset −d − 1 holds the backward kernel b_d.
  void kernel_map_shows_the_ema_kernels() {
    const ViewContext c = view_context(run_model("mega", kText), 1);
    const MegaTrace& m = trace_of(c);
    QVERIFY(!m.causal);
    const std::int64_t D = m.ema_kernel.dim(0), lags = m.ema_kernel.dim(1);
    QCOMPARE(lags, static_cast<std::int64_t>(c.result->length()));
    const KernelMap map = mega_kernel_map(c);
    const int shown = map.grid.cols / 2;
    QVERIFY(shown >= std::min<int>(16, static_cast<int>(lags)) && shown <= lags);
    QCOMPARE(map.first_offset, -shown);
    const Colormap& coolwarm = Colormap::get(ColormapId::Coolwarm);
    for (const KernelScale scale : {KernelScale::PerChannel, KernelScale::Shared}) {
      float shared = 0.0f;
      for (std::int64_t ch = 0; ch < D; ++ch)
        shared = std::max({shared, largest_abs(m.ema_kernel, ch), largest_abs(m.ema_kernel_backward, ch)});
      const auto r = render(c, {scale}, 150);
      int checked = 0;
      for (int ch = 5; ch < D - 1; ch += 37)
        for (const int offset : {-shown, -3, -1, 0, 1, 2, shown - 1}) {
          const float k = offset >= 0 ? m.ema_kernel.at(ch, offset) : m.ema_kernel_backward.at(ch, -offset - 1);
          const float s = scale == KernelScale::Shared ? shared
                                                       : std::max(largest_abs(m.ema_kernel, ch), largest_abs(m.ema_kernel_backward, ch));
          const QRgb got = pixel_at(r.image, r.layout.kernel.cell_rect(ch, map.column(offset)).center());
          QVERIFY2(near_colour(got, QColor(coolwarm.color(k / s, -1.0f, 1.0f)), 4),
                   qPrintable(QString("channel %1 offset %2: %3").arg(ch).arg(offset).arg(describe(got))));
          ++checked;
        }
      QVERIFY(checked > 40);
    }
    // Beyond the lags shown every channel has decayed below 0.1 % of its largest |k|.
    for (std::int64_t ch = 0; ch < D; ++ch)
      for (std::int64_t l = shown; l < lags; ++l) QVERIFY(std::abs(m.ema_kernel.at(ch, l)) <= 1e-3f * largest_abs(m.ema_kernel, ch));
    // A causal run has no backward half.
    const ViewContext causal = view_context(run_model("mega", kText, "softmax", true), 0);
    QVERIFY(trace_of(causal).causal && trace_of(causal).ema_kernel_backward.empty());
    QCOMPARE(mega_kernel_map(causal).first_offset, 0);
  }

  // Attention weights through the colormap on [0, max]; u and r on their own [min, max]; the
  // decay curves through |k| / max |k| of their channels.
  void attention_gates_and_curves_follow_the_trace() {
    ViewContext c = view_context(run_model("mega", kText), 2);
    c.colormap = ColormapId::Cividis;
    const MegaTrace& m = trace_of(c);
    const Tensor& w = c.result->layers[2].weights;
    const int L = static_cast<int>(c.result->length());
    QCOMPARE(w.shape(), (Shape{1, L, L}));
    const float top = *std::max_element(w.data(), w.data() + w.size());
    const auto r = render(c, {}, 150);
    const Colormap& cividis = Colormap::get(ColormapId::Cividis);
    for (int i = 0; i < L; i += 3)
      for (int j = 1; j < L; j += 4) {
        const QRgb got = pixel_at(r.image, r.layout.attention.cell_rect(i, j).center());
        QVERIFY2(near_colour(got, QColor(cividis.color(w.at(0, i, j), 0.0f, top)), 4),
                 qPrintable(QString("weight %1,%2: %3").arg(i).arg(j).arg(describe(got))));
      }
    for (const bool reset : {false, true}) {
      const Tensor& gate = reset ? m.gate_r : m.gate_u;
      const float lo = *std::min_element(gate.data(), gate.data() + L), hi = *std::max_element(gate.data(), gate.data() + L);
      QVERIFY(hi > lo);
      const TokenGridLayout& grid = reset ? r.layout.gate_r : r.layout.gate_u;
      for (int i = 0; i < L; ++i) {
        const QRgb got = pixel_at(r.image, grid.cell_rect(i, 0).center());
        QVERIFY2(near_colour(got, QColor(cividis.color(gate.data()[i], lo, hi)), 4),
                 qPrintable(QString("%1 of token %2: %3").arg(reset ? "r" : "u").arg(i).arg(describe(got))));
      }
    }
    const KernelCurves curves = mega_kernel_curves(c);
    QCOMPARE(curves.channels.size(), std::size_t{4});
    // Slowest decay first: the channel with the largest max_j q_j.
    QCOMPARE(m.decay.data()[curves.channels.front()], *std::max_element(m.decay.data(), m.decay.data() + m.decay.size()));
    QCOMPARE(m.decay.data()[curves.channels.back()], *std::min_element(m.decay.data(), m.decay.data() + m.decay.size()));
    const auto big = render(c, {}, 200);
    for (std::size_t i = 0; i < curves.channels.size(); ++i) {
      const int ch = curves.channels[i];
      const double rel = std::abs(m.ema_kernel.at(ch, 2)) / largest_abs(m.ema_kernel, ch);
      const QPointF at = kernel_curve_point(big.layout.curves_plot, curves, ch, 2);
      QVERIFY(rel > kCurveFloor);
      QVERIFY(std::abs(big.layout.curves_plot.bottom() - at.y() -
                       big.layout.curves_plot.height() * (std::log10(rel) + 4.0) / 4.0) < 1e-3);
      QVERIFY2(near_colour(pixel_at(big.image, at), kernel_curve_color(static_cast<int>(i)), 60),
               qPrintable(QString("curve %1: %2").arg(ch).arg(describe(pixel_at(big.image, at)))));
    }
  }

  // Chunks of 6 tokens: weights only inside the diagonal blocks, each outlined.
  void chunk_blocks() {
    const ViewContext c = view_context(run_preset_with("mega", "mega", {{"chunk", 6}}, kText), 0);
    const MegaTrace& m = trace_of(c);
    QCOMPARE(m.chunk, std::int64_t{6});
    const auto r = render(c, {}, 150);
    const int L = static_cast<int>(c.result->length());
    const Colormap& viridis = Colormap::get(ColormapId::Viridis);
    for (int i = 0; i < L; ++i)
      for (int j = 0; j < L; j += 5)
        if (i / 6 != j / 6) {
          QCOMPARE(c.result->layers[0].weights.at(0, i, j), 0.0f);
          QVERIFY(near_colour(pixel_at(r.image, r.layout.attention.cell_rect(i, j).center()), QColor(viridis.color(0.0f)), 4));
        }
    // The outline of the second chunk passes along its top edge (dashed: some of its pixels).
    const QRectF a = r.layout.attention.cell_rect(6, 6), b = r.layout.attention.cell_rect(11, 11);
    int dark = 0;
    for (double x = a.left() + 1; x < b.right() - 1; x += 1.0)
      dark += qGray(pixel_at(r.image, QPointF(x, a.top()))) < 60 ? 1 : 0;
    QVERIFY2(dark > 5, qPrintable(QString("%1 outline pixels").arg(dark)));
  }

  void long_inputs_dark_style_and_hit_testing() {
    for (const std::string& text : {std::string("one two three"), long_text(512)}) {
      const ViewContext c = view_context(run_model("mega", text));
      const QSizeF size = view_spec("mega").figure(c, FigureStyle{}).size;
      QVERIFY(size.width() > 400 && size.width() < 1400 && size.height() > 250 && size.height() < 1000);
      const auto r = render(c, {}, 72);
      const std::vector<QRectF> parts = {r.layout.kernel.matrix, r.layout.kernel.colorbar, r.layout.attention.matrix, r.layout.curves_plot,
                                         r.layout.gate_u.matrix, r.layout.gate_r.matrix};
      for (std::size_t a = 0; a < parts.size(); ++a) {
        QVERIFY(!parts[a].isEmpty());
        QVERIFY(QRectF(r.image.rect()).contains(parts[a]));
        for (std::size_t b = a + 1; b < parts.size(); ++b) QVERIFY(!parts[a].intersects(parts[b]));
      }
      QVERIFY(r.layout.summary.bottom() <= r.image.height());
      const int L = static_cast<int>(c.result->length());
      QCOMPARE(r.layout.token_at(r.layout.gate_u.cell_rect(L / 2, 0).center()), L / 2);
      QCOMPARE(r.layout.token_at(r.layout.gate_r.cell_rect(L - 1, 0).center()), L - 1);
      QCOMPARE(r.layout.token_at(r.layout.attention.cell_rect(L / 3, 0).center()), L / 3);
      QCOMPARE(r.layout.token_at(r.layout.curves_plot.center()), -1);
      if (L == 512) QVERIFY(r.layout.gate_u.row_stride > 1 && r.layout.kernel.row_stride > 1);
    }
    ViewContext c = view_context(run_model("mega", kText));
    const FigureStyle dark = FigureStyle::dark();
    const auto plain = render(c, {}, 100, dark);
    QVERIFY(near_colour(plain.image.pixel(1, 1), dark.background));
    c.highlighted_token = 4;
    QVERIFY(render(c, {}, 100, dark).image != plain.image);
  }

  void widget_shows_the_trace_and_emits_parameter_edits() {
    MegaView view;
    view.resize(1100, 700);
    view.show();
    QVERIFY(!view.chunkBox()->isEnabled());
    std::vector<std::pair<int, nlohmann::json>> edits;
    QObject::connect(&view, &TraceViewWidget::layerParamsEdited, &view,
                     [&edits](int layer, const nlohmann::json& params) { edits.emplace_back(layer, params); });
    view.setContext(view_context(run_preset_with("mega", "mega", {{"chunk", 5}, {"attention", "laplace"}}, kText), 1));
    QVERIFY(view.chunkBox()->isEnabled());
    QCOMPARE(view.chunkBox()->value(), 5);
    QCOMPARE(view.attentionBox()->currentText(), QStringLiteral("laplace"));
    QCOMPARE(static_cast<int>(edits.size()), 0);  // showing a result is not an edit
    const QImage first = view.canvas()->grab().toImage();

    view.chunkBox()->setValue(8);
    QCOMPARE(static_cast<int>(edits.size()), 1);
    QCOMPARE(edits.back().first, 1);
    QCOMPARE(edits.back().second, (nlohmann::json{{"chunk", 8}}));
    view.attentionBox()->setCurrentText(QStringLiteral("relu2"));
    QCOMPARE(static_cast<int>(edits.size()), 2);
    QCOMPARE(edits.back().second, (nlohmann::json{{"attention", "relu2"}}));

    // A rerun brings the trace's values back without emitting; one chunk shows as 0.
    view.setContext(view_context(run_model("mega", kText), 1));
    QCOMPARE(static_cast<int>(edits.size()), 2);
    QCOMPARE(view.chunkBox()->value(), 0);
    QCOMPARE(view.chunkBox()->text(), QStringLiteral("whole sequence"));
    QCOMPARE(view.attentionBox()->currentText(), QStringLiteral("softmax"));
    QVERIFY(view.canvas()->grab().toImage() != first);

    QSignalSpy hovered(&view, &TraceViewWidget::tokenHovered);
    const MegaFigureLayout layout = view.figureLayout();
    // Sent to the surface directly: the offscreen screen (800 px wide) holds no pointer this far right.
    move_pointer(view.canvas()->surface(), layout.gate_u.cell_rect(6, 0).center());
    QTRY_VERIFY(!hovered.isEmpty());
    QCOMPARE(hovered.last().at(0).toInt(), 6);
    QCOMPARE(view.context().highlighted_token, 6);

    QSignalSpy changed(&view, &TraceViewWidget::viewOptionsChanged);
    view.setViewOptions({{"kernel_scale", "shared"}});
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"kernel_scale", "shared"}}));
    QVERIFY(view.figureOptions().kernel_scale == KernelScale::Shared);
    QCOMPARE(changed.count(), 1);
    EXPECT_ERROR(ParamError, view.setViewOptions({{"kernel_scale", "log"}}), "kernel_scale");
    QCOMPARE(static_cast<int>(edits.size()), 2);

    view.setContext(view_context(run_playground("softmax", nlohmann::json::object(), false, kText)));
    QVERIFY(view.canvas()->message().contains(QStringLiteral("mega preset")));
    QVERIFY(!view.chunkBox()->isEnabled());
  }

  void exports_read_back() {
    for (const bool causal : {false, true}) {
      const ViewContext c = view_context(run_preset_with("mega", "mega", {{"chunk", 7}}, kText, causal), 3);
      const MegaTrace& m = trace_of(c);
      QTemporaryDir dir;
      export_each("mega", c, dir, {"f.png", "f.svg", "f.pdf", "d.json", "d.csv", "d.npy"});
      const QImage png(dir.filePath("f.png"));
      QCOMPARE(png.width(), static_cast<int>(std::lround(mega_figure_size(c, FigureStyle{}).width() * 150.0 / 72.0)));
      QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("Mega EMA and gates")));
      QVERIFY(is_pdf(dir.filePath("f.pdf")));

      const nlohmann::json j = read_json(dir.filePath("d.json"));
      QCOMPARE(j.at("layer").get<int>(), 3);
      QCOMPARE(j.at("layer_type").get<std::string>(), std::string("mega"));
      QCOMPARE(j.at("tokens").size(), c.result->tokens.size());
      for (const char* key : {"ema_kernel", "decay", "gate_u", "gate_r", "chunk", "causal", "attention"}) QVERIFY2(j.contains(key), key);
      QCOMPARE(j.contains("ema_kernel_backward"), !causal);
      QCOMPARE(j.at("chunk").get<int>(), 7);

      const auto rows = read_csv(dir.filePath("d.csv"));
      QCOMPARE(rows.front(), (QStringList{"token_index", "token", "gate_u", "gate_r", "chunk"}));
      QCOMPARE(rows.size(), c.result->tokens.size() + 1);
      for (std::size_t line = 1; line < rows.size(); ++line) {
        const int i = static_cast<int>(line - 1);
        QCOMPARE(rows[line][0].toInt(), i);
        QCOMPARE(rows[line][1], QString::fromStdString(c.result->tokens[static_cast<std::size_t>(i)].text));
        QCOMPARE(parse_float(rows[line][2]), m.gate_u.data()[i]);
        QCOMPARE(parse_float(rows[line][3]), m.gate_r.data()[i]);
        QCOMPARE(rows[line][4].toInt(), i / 7);
      }

      const Tensor npy = read_npy(dir.filePath("d.npy").toStdString());
      const std::int64_t D = m.ema_kernel.dim(0), lags = m.ema_kernel.dim(1);
      QCOMPARE(npy.shape(), causal ? (Shape{D, lags}) : (Shape{2, D, lags}));
      QVERIFY(std::equal(m.ema_kernel.data(), m.ema_kernel.data() + D * lags, npy.data()));
      if (!causal) QVERIFY(std::equal(m.ema_kernel_backward.data(), m.ema_kernel_backward.data() + D * lags, npy.data() + D * lags));
    }
  }
};

QTEST_MAIN(TestMegaView)
#include "test_mega_view.moc"
