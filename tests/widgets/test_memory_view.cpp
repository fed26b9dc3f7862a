// The "∞-former memory" view on the offscreen platform: which results it accepts (models with
// ∞-former layers; a tiny-encoder result is refused with the requirement); one segment says why
// nothing is drawn; the density strip's colours at cells found through the public layout against
// the colormap applied here to the trace's densities of the selected head; the reconstructed
// signal, the highlighted query's Gaussian and the sticky histogram's bars where their data put
// them; the segment option; legibility at 512 tokens; the widget following setContext, emitting
// tokenHovered and layerParamsEdited (τ, sticky) but never while showing a new result; exports
// read back.
#include <QDir>
#include <QImage>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "figure_canvas.h"
#include "figures/memory_figure.h"
#include "memory_view.h"
#include "preset_runs.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kShort = "a small cat sleeps on the warm mat while two birds sing in the old green tree";
constexpr int kMemoryLayer = 2;  // the preset's first ∞-former layer

// Segments of 16 tokens over 60 tokens: segments 1, 2 and 3 read the memory.
PlaygroundResultPtr segmented(bool sticky = false) {
  return run_preset_with("infinity-former", "infinity_former", {{"segment", 16}, {"sticky", sticky}}, long_text(60));
}

Rendered<MemoryFigureLayout> render(const ViewContext& c, const MemoryFigureOptions& options = {}, double dpi = 100, const FigureStyle& style = {}) {
  return render_laid_out<MemoryFigureLayout>(memory_painted_figure(c, style, options), dpi, [&](const QRectF& target, const QPaintDevice* device) {
    return compute_memory_layout(c, style, target, device, options);
  });
}

const MemoryTrace& trace_of(const ViewContext& c) { return *memory_trace(c); }

}  // namespace

class TestMemoryView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_models_with_memory_layers() {
    const ViewSpec& spec = view_spec("memory");
    QCOMPARE(spec.title, QStringLiteral("∞-former memory"));
    QCOMPARE(spec.requirement, QStringLiteral("needs a model with ∞-former layers, e.g. the infinity-former preset"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json"}));
    QVERIFY(spec.make_widget);
    QCOMPARE(spec.options.size(), std::size_t{2});
    QVERIFY(spec.accepts(*run_model("infinity-former", kShort)));
    const PlaygroundResultPtr plain = run_playground("softmax", nlohmann::json::object(), false, kShort);
    QVERIFY(!spec.accepts(*plain));
    QVERIFY(!spec.accepts(*run_model("mega", kShort)));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(plain)), "needs a model with ∞-former layers");
    EXPECT_ERROR(ParamError, render_view("memory", view_context(plain)), "infinity-former preset");
    EXPECT_ERROR(ParamError, export_view(spec, view_context(plain), QDir::temp().filePath("x.csv"), ExportOptions{}),
                 "needs a model with ∞-former layers");
  }

  // A text shorter than a segment is read in one piece: no memory read, a message instead of
  // empty panels, a CSV with its header only; the selected layer falls back to a memory layer.
  void one_segment_says_so() {
    const ViewContext c = view_context(run_model("infinity-former", kShort));
    QCOMPARE(memory_layer(c), kMemoryLayer);
    QVERIFY(trace_of(c).reads.empty());
    QVERIFY(!memory_read(c, {}));
    const auto r = render(c);
    QVERIFY(!r.layout.message.isEmpty());
    QVERIFY(r.layout.grid.matrix.isEmpty() && r.layout.signal_plot.isEmpty());
    QTemporaryDir dir;
    export_each("memory", c, dir, {"d.csv", "f.svg"});
    QCOMPARE(read_csv(dir.filePath("d.csv")).size(), std::size_t{1});
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("never read its memory")));
  }

  // The strip shows the selected head's densities through the colormap on [min, max] of the strip.
  void density_strip_shows_the_selected_head() {
    ViewContext c = view_context(segmented(), kMemoryLayer, 3);
    c.colormap = ColormapId::Magma;
    const MemoryTrace& m = trace_of(c);
    QCOMPARE(m.reads.size(), std::size_t{3});
    const MemorySegmentTrace& read = m.reads.back();  // the default: the last segment
    QCOMPARE(memory_read(c, {}), &read);
    const std::int64_t S = read.density.dim(1), B = read.density.dim(2);
    QCOMPARE(S, std::int64_t{12});  // tokens 48 .. 59
    float lo = read.density.at(3, 0, 0), hi = lo;
    for (std::int64_t i = 0; i < S; ++i)
      for (std::int64_t b = 0; b < B; ++b) {
        lo = std::min(lo, read.density.data()[(3 * S + i) * B + b]);
        hi = std::max(hi, read.density.data()[(3 * S + i) * B + b]);
      }
    QVERIFY(hi > lo);
    const auto r = render(c, {}, 150);
    QCOMPARE(r.layout.first_token, 48);
    const Colormap& magma = Colormap::get(ColormapId::Magma);
    int checked = 0;
    for (int i = 0; i < S; i += 1)
      for (int b = 3; b < B; b += 17) {
        const float v = read.density.data()[(3 * S + i) * B + b];
        const QRgb got = pixel_at(r.image, r.layout.grid.cell_rect(i, b).center());
        QVERIFY2(near_colour(got, QColor(magma.color(v, lo, hi)), 4),
                 qPrintable(QString("query %1 bin %2: %3").arg(i).arg(b).arg(describe(got))));
        ++checked;
      }
    QVERIFY(checked > 50);
    // Another head draws other numbers.
    c.head = 0;
    QVERIFY(render(c, {}, 150).image != r.image);
  }

  // The reconstructed signal X̄(t) of channel 0 passes where the trace puts it; stored points
  // lie at (t_i, x_i); the compressed region is shaded from segment 2 on.
  void signal_and_points_where_the_trace_puts_them() {
    const ViewContext c = view_context(segmented(), kMemoryLayer);
    const MemoryFigureOptions one{-1, 1};
    const auto r = render(c, one, 200);
    const MemorySegmentTrace& read = *memory_read(c, one);
    QVERIFY(read.compressed);
    const QColor blue = memory_channel_color(0);
    int on_curve = 0;
    for (int k = 10; k < 190; k += 12) {
      const QPointF at = memory_signal_point(r.layout, c, one, k / 199.0, read.reconstructed.at(0, k));
      QVERIFY(r.layout.signal_plot.contains(at));
      on_curve += near_colour(pixel_at(r.image, at), blue, 30) ? 1 : 0;
    }
    QVERIFY2(on_curve >= 13, qPrintable(QString("%1 of 15 curve samples in the channel colour").arg(on_curve)));
    // Stored points: more of the channel's colour than the background at each point's centre.
    int on_point = 0;
    const int P = static_cast<int>(read.positions.size());
    for (int p = 0; p < P; p += 5) {
      const QRgb got = pixel_at(r.image, memory_signal_point(r.layout, c, one, read.positions.data()[p], read.stored.at(0, p)));
      on_point += qBlue(got) > qRed(got) + 30 ? 1 : 0;
    }
    QVERIFY2(on_point * 10 >= (P / 5 + 1) * 9, qPrintable(QString("%1 points blue").arg(on_point)));
    // Without the compressed region (segment 1 reads segment 0 alone) the left of the plot is unshaded.
    const MemoryFigureOptions first{1, 1};
    QVERIFY(!memory_read(c, first)->compressed);
    const auto plain = render(c, first, 200);
    const QPointF corner(plain.layout.signal_plot.left() + 3, plain.layout.signal_plot.bottom() - 3);
    QVERIFY(near_colour(pixel_at(plain.image, corner), QColor(Qt::white), 2));
    const QPointF shaded(r.layout.signal_plot.left() + 3, r.layout.signal_plot.bottom() - 3);
    QVERIFY(!near_colour(pixel_at(r.image, shaded), QColor(Qt::white), 2));
  }

  // The highlighted query's Gaussian in orange through the trace's bin densities; its row outlined.
  void highlighted_query_curve() {
    ViewContext c = view_context(segmented(), kMemoryLayer, 1);
    const MemorySegmentTrace& read = *memory_read(c, {});
    const int row = 5;
    c.highlighted_token = static_cast<int>(read.start) + row;
    const auto r = render(c, {}, 200);
    const std::int64_t S = read.density.dim(1), B = read.density.dim(2);
    int hits = 0;
    for (int b = 4; b < B; b += 8) {
      const double v = read.density.data()[(1 * S + row) * B + b];
      hits += near_colour(pixel_at(r.image, memory_density_point(r.layout, c, {}, (b + 0.5) / B, v)), memory_highlight_color(), 30) ? 1 : 0;
    }
    QVERIFY2(hits >= 14, qPrintable(QString("%1 of 16").arg(hits)));
    c.highlighted_token = -1;
    const auto plain = render(c, {}, 200);
    const double v = read.density.data()[(1 * S + row) * B + 60];
    QVERIFY(!near_colour(pixel_at(plain.image, memory_density_point(plain.layout, c, {}, 60.5 / B, v)), memory_highlight_color(), 30));
    // A token outside the segment highlights nothing here.
    const QImage none = render(c, {}, 100).image;
    c.highlighted_token = 2;
    QCOMPARE(render(c, {}, 100).image, none);
  }

  void sticky_histogram_bars() {
    const ViewContext c = view_context(segmented(true), kMemoryLayer);
    const MemorySegmentTrace& read = *memory_read(c, {});
    QCOMPARE(read.sticky_histogram.size(), std::int64_t{128});
    const auto r = render(c, {}, 200);
    QVERIFY(!r.layout.sticky_plot.isEmpty());
    QVERIFY(r.layout.density_plot.bottom() < r.layout.sticky_plot.top());
    int bars = 0;
    for (int b = 0; b < 128; b += 9) {
      const QPointF top = memory_sticky_point(r.layout, c, {}, b);
      if (r.layout.sticky_plot.bottom() - top.y() < 6) continue;  // too short to probe
      const QPointF inside(top.x() - 0.2 * r.layout.sticky_plot.width() / 128, 0.5 * (top.y() + r.layout.sticky_plot.bottom()));
      QVERIFY2(near_colour(pixel_at(r.image, inside), memory_sticky_color(), 3), qPrintable(QString("bin %1").arg(b)));
      ++bars;
    }
    QVERIFY(bars > 5);
    QVERIFY(render(view_context(segmented(false), kMemoryLayer), {}, 100).layout.sticky_plot.isEmpty());
  }

  void segment_option_selects_the_read() {
    ViewContext c = view_context(segmented(), kMemoryLayer);
    QCOMPARE(memory_read(c, {2, 3})->segment, std::int64_t{2});
    QCOMPARE(memory_read(c, {0, 3})->segment, std::int64_t{3});
    QCOMPARE(memory_read(c, {99, 3})->segment, std::int64_t{3});
    c.options = {{"segment", 1}};
    const QImage one = render_view("memory", c);
    c.options = {{"segment", 2}};
    QVERIFY(render_view("memory", c) != one);
    QCOMPARE(render(c, {1, 3}).layout.first_token, 16);
    EXPECT_ERROR(ParamError, set_view_option(view_spec("memory"), c.options, "channels=9"), "channels");
  }

  void long_inputs_dark_style_and_hit_testing() {
    for (const std::string& text : {long_text(512), long_text(140)}) {
      const ViewContext c = view_context(run_model("infinity-former", text), kMemoryLayer);
      const QSizeF size = view_spec("memory").figure(c, FigureStyle{}).size;
      QVERIFY(size.width() > 400 && size.width() < 1400 && size.height() > 250 && size.height() < 1000);
      const auto r = render(c, {}, 72);
      const std::vector<QRectF> parts = {r.layout.grid.matrix, r.layout.grid.colorbar, r.layout.signal_plot, r.layout.density_plot};
      for (std::size_t a = 0; a < parts.size(); ++a) {
        QVERIFY(!parts[a].isEmpty());
        QVERIFY(QRectF(r.image.rect()).contains(parts[a]));
        for (std::size_t b = a + 1; b < parts.size(); ++b) QVERIFY(!parts[a].intersects(parts[b]));
      }
      QVERIFY(r.layout.summary.bottom() <= r.image.height());
      const MemorySegmentTrace& read = *memory_read(c, {});
      const int rows = static_cast<int>(read.mu.size());
      QCOMPARE(r.layout.token_at(r.layout.grid.cell_rect(rows / 2, 64).center()), static_cast<int>(read.start) + rows / 2);
      QCOMPARE(r.layout.token_at(r.layout.signal_plot.center()), -1);
      if (rows == 128) QVERIFY(r.layout.grid.row_stride > 1);
    }
    ViewContext c = view_context(segmented(), kMemoryLayer);
    const FigureStyle dark = FigureStyle::dark();
    const auto plain = render(c, {}, 100, dark);
    QVERIFY(near_colour(plain.image.pixel(1, 1), dark.background));
    c.highlighted_token = 50;
    QVERIFY(render(c, {}, 100, dark).image != plain.image);
  }

  void widget_shows_the_trace_and_emits_parameter_edits() {
    MemoryView view;
    view.resize(1100, 700);
    view.show();
    QVERIFY(!view.tauBox()->isEnabled());
    std::vector<std::pair<int, nlohmann::json>> edits;
    QObject::connect(&view, &TraceViewWidget::layerParamsEdited, &view,
                     [&edits](int layer, const nlohmann::json& params) { edits.emplace_back(layer, params); });
    view.setContext(view_context(run_preset_with("infinity-former", "infinity_former",
                                                 {{"segment", 16}, {"tau", 0.6}, {"sticky", true}}, long_text(40))));
    QVERIFY(view.tauBox()->isEnabled());
    QCOMPARE(view.tauBox()->value(), 0.6);
    QVERIFY(view.stickyBox()->isChecked());
    QCOMPARE(static_cast<int>(edits.size()), 0);  // showing a result is not an edit
    const QImage first = view.canvas()->grab().toImage();

    view.tauBox()->setValue(0.8);
    QCOMPARE(static_cast<int>(edits.size()), 1);
    QCOMPARE(edits.back().first, kMemoryLayer);
    QCOMPARE(edits.back().second, (nlohmann::json{{"tau", 0.8}}));
    view.stickyBox()->setChecked(false);
    QCOMPARE(static_cast<int>(edits.size()), 2);
    QCOMPARE(edits.back().second, (nlohmann::json{{"sticky", false}}));

    // A rerun brings the trace's values back without emitting.
    view.setContext(view_context(segmented(false)));
    QCOMPARE(static_cast<int>(edits.size()), 2);
    QCOMPARE(view.tauBox()->value(), 0.75);
    QVERIFY(!view.stickyBox()->isChecked());
    QVERIFY(view.canvas()->grab().toImage() != first);

    QSignalSpy hovered(&view, &TraceViewWidget::tokenHovered);
    const MemoryFigureLayout layout = view.figureLayout();
    move_pointer(view.canvas()->surface(), layout.grid.cell_rect(4, 30).center());
    QTRY_VERIFY(!hovered.isEmpty());
    QCOMPARE(hovered.last().at(0).toInt(), 48 + 4);
    QCOMPARE(view.context().highlighted_token, 52);

    // View options: the widget shows them and exports them.
    QSignalSpy changed(&view, &TraceViewWidget::viewOptionsChanged);
    view.setViewOptions({{"segment", 2}, {"channels", 5}});
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"segment", 2}, {"channels", 5}}));
    QCOMPARE(view.figureOptions().segment, 2);
    QVERIFY(!changed.isEmpty());
    QCOMPARE(view.figureLayout().first_token, 32);
    view.setViewOptions(nlohmann::json::object());
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"segment", -1}, {"channels", 3}}));
    EXPECT_ERROR(ParamError, view.setViewOptions({{"round", 1}}), "view 'memory' has no option 'round'");
    QCOMPARE(static_cast<int>(edits.size()), 2);

    view.setContext(view_context(run_playground("softmax", nlohmann::json::object(), false, kShort)));
    QVERIFY(view.canvas()->message().contains(QStringLiteral("infinity-former")));
    QVERIFY(!view.tauBox()->isEnabled());
  }

  void exports_read_back() {
    ViewContext c = view_context(segmented(), kMemoryLayer, 2);
    c.options = {{"segment", 2}};
    const MemorySegmentTrace& read = trace_of(c).reads[1];
    QCOMPARE(read.segment, std::int64_t{2});
    QTemporaryDir dir;
    export_each("memory", c, dir, {"f.png", "f.svg", "f.pdf", "d.json", "d.csv"});
    const QImage png(dir.filePath("f.png"));
    QCOMPARE(png.width(), static_cast<int>(std::lround(memory_figure_size(c, FigureStyle{}).width() * 150.0 / 72.0)));
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("∞-former memory")));
    QVERIFY(is_pdf(dir.filePath("f.pdf")));

    const nlohmann::json j = read_json(dir.filePath("d.json"));
    QCOMPARE(j.at("layer").get<int>(), kMemoryLayer);
    QCOMPARE(j.at("head").get<int>(), 2);
    QCOMPARE(j.at("drawn_segment").get<int>(), 2);
    QCOMPARE(j.at("layer_type").get<std::string>(), std::string("infinity_former"));
    QCOMPARE(j.at("tokens").size(), c.result->tokens.size());
    for (const char* key : {"segments", "segment", "basis", "tau", "sticky", "per_segment"}) QVERIFY2(j.contains(key), key);
    QCOMPARE(j.at("per_segment").size(), std::size_t{3});
    for (const char* key : {"density", "head_mu", "head_sigma", "stored", "positions", "reconstructed", "compressed"})
      QVERIFY2(j.at("per_segment")[1].contains(key), key);

    const auto rows = read_csv(dir.filePath("d.csv"));
    QCOMPARE(rows.front(), (QStringList{"token_index", "token", "segment", "mu", "sigma", "mu_mean", "sigma_mean"}));
    QCOMPARE(rows.size(), static_cast<std::size_t>(read.mu.size()) + 1);
    for (std::size_t line = 1; line < rows.size(); ++line) {
      const QStringList& row = rows[line];
      const auto i = static_cast<std::int64_t>(line - 1);
      QCOMPARE(row[0].toInt(), 32 + static_cast<int>(i));
      QCOMPARE(row[1], QString::fromStdString(c.result->tokens[static_cast<std::size_t>(32 + i)].text));
      QCOMPARE(row[2].toInt(), 2);
      QCOMPARE(parse_float(row[3]), read.head_mu.at(2, i));
      QCOMPARE(parse_float(row[4]), read.head_sigma.at(2, i));
      QCOMPARE(parse_float(row[5]), read.mu.data()[i]);
      QCOMPARE(parse_float(row[6]), read.sigma.data()[i]);
    }
    EXPECT_ERROR(ParamError, export_view(view_spec("memory"), c, dir.filePath("d.npy"), ExportOptions{}), ".csv, .json");
  }
};

QTEST_MAIN(TestMemoryView)
#include "test_memory_view.moc"
