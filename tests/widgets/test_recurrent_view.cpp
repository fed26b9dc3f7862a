// The "Block-recurrent state" view on the offscreen platform: which results it accepts (models
// with block-recurrent layers; a tiny-encoder result is refused with the requirement); the
// colours of the five heatmaps at cells found through the public layout against the colormap
// applied to the engine's numbers with the ranges worked out here (norms on [0, max], gates on
// [0, 1], the head's token attention on [0, max] inside the window band and the mask colour
// outside it, where the weights are exactly 0; the selected window's cross-attention tables on
// [0, max], cropped to the tokens that exist, slots as rows); the selected window's band and
// the window boundary where the window size puts them; a non-recurrent layer drawn with its note
// and no state panels; the linked token; figure sizes at 5 and 512 tokens; the widget following
// setContext, hovering, the window option and the model controls (layerParamsEdited); exports
// read back.
#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QImage>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/npy.h"
#include "figure_canvas.h"
#include "figures/recurrent_figure.h"
#include "layers/block_recurrent.h"
#include "models/playground.h"
#include "recurrent_view.h"
#include "result_views.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

// Windows of 8 tokens and 6 state slots: 43 tokens make 6 windows, the last one short, and
// cells big enough to read single pixels. Layer 0 is a plain sliding-window layer.
const char* kSmallModel = R"({"name": "small-recurrent", "d_model": 64, "heads": 4, "d_ff": 128, "max_length": 4096,
  "layers": [{"type": "block_recurrent", "params": {"window": 8, "recurrent": false}},
             {"type": "block_recurrent", "params": {"window": 8, "state_size": 6, "recurrent": true, "gate": "lstm"}}]})";

// The small model's config file, written once.
std::string small_model_path() {
  static const std::string path = write_model_file(kSmallModel);
  return path;
}

PlaygroundResultPtr small_result(int tokens = 43) { return run_model(small_model_path(), numbered_words(tokens).toStdString()); }

const BlockRecurrentTrace& trace_of(const PlaygroundResultPtr& r, int layer) {
  return *dynamic_cast<const BlockRecurrentTrace*>(r->layers[static_cast<std::size_t>(layer)].layer_extra("block_recurrent"));
}

Rendered<RecurrentFigureLayout> render(const ViewContext& c, const RecurrentFigureOptions& options = {}, double dpi = 150,
                                       const FigureStyle& style = FigureStyle{}) {
  return render_with_layout(recurrent_painted_figure(c, style, options), dpi, compute_recurrent_layout, c, style, options);
}


}  // namespace

class TestRecurrentView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_block_recurrent_models() {
    const ViewSpec& spec = view_spec("recurrent");
    QCOMPARE(spec.title, QStringLiteral("Block-recurrent state"));
    QCOMPARE(spec.requirement, QStringLiteral("needs a model with block-recurrent layers, e.g. the block-recurrent preset"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json", "npy"}));
    QVERIFY(spec.make_widget);
    const PlaygroundResultPtr preset = run_model("block-recurrent", numbered_words(20).toStdString());
    QVERIFY(spec.accepts(*preset));
    const PlaygroundResultPtr tiny = run_model("tiny-encoder", numbered_words(20).toStdString());
    QVERIFY(!spec.accepts(*tiny));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(tiny)), "needs a model with block-recurrent layers");
    EXPECT_ERROR(ParamError, render_view("recurrent", view_context(tiny)), "e.g. the block-recurrent preset");
    QVERIFY(!spec.accepts(*run_model("perceiver-ar", numbered_words(20).toStdString())));
    // The preset's state is in layer 2; a context on it draws it, one on layer 1 draws layer 1.
    QCOMPARE(recurrent_state_layers(*preset), std::vector<int>{2});
    QVERIFY(compute_recurrent_layout(view_context(preset, 2), FigureStyle{}, QRectF(0, 0, 1400, 900), nullptr).recurrent);
    const RecurrentFigureLayout plain = compute_recurrent_layout(view_context(preset, 1), FigureStyle{}, QRectF(0, 0, 1400, 900), nullptr);
    QCOMPARE(plain.layer, 1);
    QVERIFY(!plain.recurrent);
  }

  // Every panel shows the engine's numbers through the colormap on the ranges computed here.
  void heatmap_cells_show_the_trace() {
    ViewContext c = view_context(small_result(), 1, 2);
    c.colormap = ColormapId::Magma;
    const BlockRecurrentTrace& t = trace_of(c.result, 1);
    const std::int64_t L = c.result->length(), W = t.window, S = t.state_size, windows = t.windows;
    QCOMPARE(L, std::int64_t{43});
    QCOMPARE(windows, std::int64_t{6});
    QCOMPARE(S, std::int64_t{6});
    const int w = 2;
    const auto r = render(c, RecurrentFigureOptions{w});
    QVERIFY(r.layout.recurrent);
    QCOMPARE(r.layout.window, std::int64_t{w});
    const Colormap& magma = Colormap::get(ColormapId::Magma);
    const auto check = [&](const HeatmapFigureLayout& h, int row, int col, float value, float vmax, const char* what) {
      const QRgb got = pixel_at(r.image, h.cell_rect(row, col).center());
      QVERIFY2(near_colour(got, magma.color(value, 0.0f, vmax)),
               qPrintable(QString("%1 (%2,%3): %4 expected %5").arg(what).arg(row).arg(col).arg(describe(got)).arg(value)));
    };

    float norm_max = 0.0f;
    for (std::int64_t i = 0; i < t.state_norms.size(); ++i) norm_max = std::max(norm_max, t.state_norms.data()[i]);
    for (int row = 0; row <= windows; ++row)
      for (int s = 0; s < S; ++s) check(r.layout.norms, row, s, t.state_norms.at(row, s), norm_max, "norm");
    for (int row = 0; row < windows; ++row)
      for (int s = 0; s < S; ++s) {
        QVERIFY(t.gate_values.at(row, s) > 0.0f && t.gate_values.at(row, s) < 1.0f);
        check(r.layout.gates, row, s, t.gate_values.at(row, s), 1.0f, "gate");
      }

    const Tensor& weights = c.result->layers[1].weights;
    float attention_max = 0.0f;
    for (std::int64_t i = 0; i < L; ++i)
      for (std::int64_t j = 0; j < L; ++j) attention_max = std::max(attention_max, weights.at(2, i, j));
    // Inside the band (query i of window ⌊i/W⌋ sees keys max(0, (⌊i/W⌋ − 1)·W) .. i) the weights;
    // outside it the mask colour, and weights of exactly 0.
    int masked = 0;
    for (int i = 0; i < L; i += 3)
      for (int j = 0; j < L; j += 2) {
        const bool seen = j <= i && j >= std::max<std::int64_t>(0, (i / W - 1) * W);
        if (seen) {
          check(r.layout.attention, i, j, weights.at(2, i, j), attention_max, "attention");
        } else {
          QCOMPARE(weights.at(2, i, j), 0.0f);
          const QRgb got = pixel_at(r.image, r.layout.attention.cell_rect(i, j).center());
          QVERIFY2(near_colour(got, recurrent_masked_color(FigureStyle{})), qPrintable(QString("masked (%1,%2) %3").arg(i).arg(j).arg(describe(got))));
          ++masked;
        }
      }
    QVERIFY(masked > 100);

    // Window 2: states read tokens 8 .. 23 (windows 1 and 2), tokens 16 .. 23 read the states.
    QCOMPARE(r.layout.span_first, W * (w - 1));
    QCOMPARE(r.layout.span_tokens, 2 * W);
    QCOMPARE(r.layout.window_first, W * w);
    float st_max = 0.0f, ts_max = 0.0f;
    for (int s = 0; s < S; ++s)
      for (int k = 0; k < 2 * W; ++k) st_max = std::max(st_max, t.state_token_attention.at(w, s, k));
    for (int k = 0; k < W; ++k)
      for (int s = 0; s < S; ++s) ts_max = std::max(ts_max, t.token_state_attention.at(w, k, s));
    for (int s = 0; s < S; ++s) {
      for (int k = 0; k < 2 * W; ++k) check(r.layout.state_token, s, k, t.state_token_attention.at(w, s, k), st_max, "state→token");
      for (int k = 0; k < W; ++k) check(r.layout.token_state, s, k, t.token_state_attention.at(w, k, s), ts_max, "token→state");
    }

    // Window 0 has no previous window: its states' columns start at token 0 (the trace's
    // columns W .. 2W − 1); the short last window has 3 tokens.
    const auto first = render(c, RecurrentFigureOptions{0});
    QCOMPARE(first.layout.span_first, std::int64_t{0});
    QCOMPARE(first.layout.span_tokens, W);
    QCOMPARE(first.layout.state_token.matrix.width(), first.layout.state_token.cell * static_cast<double>(W));
    const auto last = render(c, RecurrentFigureOptions{99});
    QCOMPARE(last.layout.window, windows - 1);
    QCOMPARE(last.layout.window_tokens, L - (windows - 1) * W);
    QCOMPARE(last.layout.token_state.matrix.width(), last.layout.token_state.cell * static_cast<double>(L - (windows - 1) * W));

    // A diverging context map is replaced by viridis for these non-negative numbers.
    c.colormap = ColormapId::Coolwarm;
    QCOMPARE(recurrent_gates_heatmap(c).colormap, ColormapId::Viridis);
  }

  // The selected window's band (its queries over the keys of windows w − 1 and w) and the
  // boundary between those windows in the states' attention, where W puts them.
  void window_marks_follow_the_window() {
    const ViewContext c = view_context(small_result(), 1, 0);
    const std::int64_t W = trace_of(c.result, 1).window;
    for (int w : {1, 3}) {
      const auto r = render(c, RecurrentFigureOptions{w});
      const HeatmapFigureLayout& a = r.layout.attention;
      const double cell = a.cell;
      QVERIFY(cell > 3);
      // Left edge of the band: column (w − 1)·W, halfway down the window's rows.
      const QPointF left(a.matrix.left() + static_cast<double>((w - 1) * W) * cell,
                         a.matrix.top() + (static_cast<double>(w * W) + 0.5 * static_cast<double>(W)) * cell);
      QVERIFY2(colour_near(r.image, left, recurrent_window_color()), qPrintable(QString("band edge, window %1").arg(w)));
      // Bottom edge: below the window's last row, between its first column and the diagonal.
      const QPointF bottom(a.matrix.left() + (static_cast<double>((w - 1) * W) + 2.5) * cell,
                           a.matrix.top() + static_cast<double>((w + 1) * W) * cell);
      QVERIFY(colour_near(r.image, bottom, recurrent_window_color()));
      // Not at the same spot of another window's band.
      const QPointF elsewhere(left.x(), left.y() + 2.0 * static_cast<double>(W) * cell);
      if (a.matrix.contains(elsewhere)) QVERIFY(!colour_near(r.image, elsewhere, recurrent_window_color(), 1, 30));
      // The boundary after the W tokens of window w − 1.
      const HeatmapFigureLayout& st = r.layout.state_token;
      const QPointF boundary(st.matrix.left() + static_cast<double>(W) * st.cell, st.matrix.center().y());
      QVERIFY(colour_near(r.image, boundary, recurrent_window_color()));
      QVERIFY(!colour_near(r.image, QPointF(st.matrix.left() + 0.5 * static_cast<double>(W) * st.cell, st.matrix.center().y()),
                           recurrent_window_color(), 1, 30));
    }
  }

  // A non-recurrent layer: the token attention and a note, no state panels.
  void plain_layer_says_it_has_no_state() {
    const ViewContext c = view_context(small_result(), 0, 1);
    const auto r = render(c);
    QCOMPARE(r.layout.layer, 0);
    QVERIFY(!r.layout.recurrent);
    QVERIFY(!r.layout.note.isEmpty());
    QVERIFY(r.layout.norms_panel.isEmpty() && r.layout.gates_panel.isEmpty() && r.layout.state_token_panel.isEmpty() &&
            r.layout.token_state_panel.isEmpty());
    QVERIFY(r.layout.attention.matrix.width() > 100);
    QVERIFY(!r.layout.note.intersects(r.layout.attention.matrix));
    EXPECT_ERROR(ParamError, recurrent_norms_heatmap(c), "layer 0 is not recurrent");
    QTemporaryDir dir;
    export_each("recurrent", c, dir, {"f.svg"});
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("plain sliding-window layer")));
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("The state lives in layer 1")));
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("Block-recurrent state · layer 0 (block_recurrent)")));
  }

  void highlight_and_hover_positions() {
    ViewContext c = view_context(small_result(), 1, 0);
    const auto plain = render(c, RecurrentFigureOptions{2});
    c.highlighted_token = 19;  // in window 2, column 11 of the states' table
    const auto marked = render(c, RecurrentFigureOptions{2});
    QVERIFY(plain.image != marked.image);
    const RecurrentFigureLayout& l = marked.layout;
    QCOMPARE(l.token_at(l.attention.cell_rect(19, 4).center()), 19);
    QCOMPARE(l.token_at(l.state_token.cell_rect(3, 11).center()), 19);
    QCOMPARE(l.token_at(l.token_state.cell_rect(2, 3).center()), 19);
    QCOMPARE(l.token_at(l.norms.cell_rect(1, 1).center()), -1);
    QCOMPARE(l.token_at(l.gates.cell_rect(0, 0).center()), -1);
    // The outline of the linked token's column differs from the unmarked figure there.
    const QPointF column_top(l.state_token.cell_rect(0, 11).center().x(), l.state_token.matrix.top() + 1);
    QVERIFY(pixel_at(marked.image, column_top) != pixel_at(plain.image, column_top));
  }

  void sizes_and_dark_style() {
    for (const int tokens : {5, 512}) {
      const ViewContext c = view_context(run_model("block-recurrent", numbered_words(tokens).toStdString()), 2, 0);
      QCOMPARE(c.result->length(), std::int64_t{tokens});
      const QSizeF size = view_spec("recurrent").figure(c, FigureStyle{}).size;
      QVERIFY2(size.width() > 300 && size.width() < 2500 && size.height() > 200 && size.height() < 2000,
               qPrintable(QString("%1 x %2").arg(size.width()).arg(size.height())));
      const auto r = render(c, {}, 72);
      const std::vector<QRectF> parts = {r.layout.norms.matrix, r.layout.gates.matrix, r.layout.attention.matrix,
                                         r.layout.state_token.matrix, r.layout.token_state.matrix};
      for (std::size_t a = 0; a < parts.size(); ++a) {
        QVERIFY(parts[a].width() > 20 && parts[a].height() > 5);
        for (std::size_t b = a + 1; b < parts.size(); ++b) QVERIFY(!parts[a].intersects(parts[b]));
      }
      QVERIFY(r.image.rect().contains(r.layout.summary.toAlignedRect()));
    }
    const FigureStyle dark = FigureStyle::dark();
    const auto r = render(view_context(small_result(), 1), {}, 100, dark);
    QVERIFY(near_colour(r.image.pixel(1, 1), dark.background.rgb()));
  }

  void widget_follows_context_hover_and_window() {
    RecurrentView view;
    view.resize(1400, 800);
    view.show();
    const PlaygroundResultPtr result = small_result();
    view.setContext(view_context(result, 1, 0));
    QCOMPARE(view.drawnLayer(), 1);
    QCOMPARE(view.windowBox()->maximum(), 5);
    QVERIFY(view.recurrentBox()->isChecked());
    QCOMPARE(view.gateBox()->currentText(), QStringLiteral("lstm"));
    const QImage first = view.canvas()->grab().toImage();
    QSignalSpy options(&view, &TraceViewWidget::viewOptionsChanged);
    view.windowBox()->setValue(3);
    QCOMPARE(view.window(), 3);
    QCOMPARE(options.count(), 1);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"window", 3}}));
    QVERIFY(view.canvas()->grab().toImage() != first);
    ViewContext other = view_context(result, 1, 3);
    view.setContext(other);
    QCOMPARE(view.context().head, 3);

    QSignalSpy hovered(&view, &TraceViewWidget::tokenHovered);
    const RecurrentFigureLayout layout = view.figureLayout();
    QCOMPARE(layout.window, std::int64_t{3});
    move_pointer(view.canvas()->surface(), layout.token_state.cell_rect(1, 2).center());
    QTRY_VERIFY(!hovered.isEmpty());
    QCOMPARE(hovered.last().at(0).toInt(), 26);  // window 3 starts at token 24
    QCOMPARE(view.context().highlighted_token, 26);

    // setViewOptions: validated; past the last window shows the last.
    view.setViewOptions({{"window", 40}});
    QCOMPARE(view.window(), 40);
    QCOMPARE(view.resolvedWindow(), std::int64_t{5});
    QCOMPARE(view.windowBox()->value(), 5);
    EXPECT_ERROR(ParamError, view.setViewOptions({{"window", -2}}), "window");
    EXPECT_ERROR(ParamError, view.setViewOptions({{"windows", 1}}), "has no option 'windows'");
    QCOMPARE(view.window(), 40);

    view.setContext(view_context(run_model("tiny-encoder", numbered_words(10).toStdString())));
    QVERIFY(!view.canvas()->hasFigure());
    QVERIFY(view.canvas()->message().contains(QStringLiteral("block-recurrent")));
    QVERIFY(!view.recurrentBox()->isEnabled());
  }

  // The model controls ask for a new run of the drawn layer; syncing them from a result does not.
  void model_controls_emit_layer_params() {
    RecurrentView view;
    view.resize(1200, 700);
    view.show();
    std::vector<std::pair<int, nlohmann::json>> edited;
    QObject::connect(&view, &TraceViewWidget::layerParamsEdited,
                     [&](int layer, const nlohmann::json& params) { edited.emplace_back(layer, params); });
    view.setContext(view_context(small_result(), 1, 0));
    QCOMPARE(edited.size(), std::size_t(0));
    emit view.gateBox()->activated(view.gateBox()->findText(QStringLiteral("full")));  // as a user's pick
    QCOMPARE(edited.size(), std::size_t(1));
    QCOMPARE(edited.back().first, 1);
    QCOMPARE(edited.back().second, (nlohmann::json{{"gate", "full"}}));
    emit view.gateBox()->activated(view.gateBox()->findText(QStringLiteral("lstm")));  // unchanged: no run
    QCOMPARE(edited.size(), std::size_t(1));
    view.recurrentBox()->click();
    QCOMPARE(edited.size(), std::size_t(2));
    QCOMPARE(edited.back().second, (nlohmann::json{{"recurrent", false}}));

    view.setContext(view_context(small_result(), 0, 0));  // the plain layer
    QCOMPARE(edited.size(), std::size_t(2));
    QVERIFY(!view.recurrentBox()->isChecked());
    QVERIFY(!view.gateBox()->isEnabled());
    view.recurrentBox()->click();
    QCOMPARE(edited.size(), std::size_t(3));
    QCOMPARE(edited.back().first, 0);
    QCOMPARE(edited.back().second, (nlohmann::json{{"recurrent", true}}));
  }

  void window_option_in_the_exported_figure() {
    const ViewContext c = view_context(small_result(), 1, 0);
    const QImage default_window = render_view("recurrent", c);
    QCOMPARE(render_view("recurrent", view_context(c.result, 1, 0, {{"window", 0}})), default_window);
    const QImage third = render_view("recurrent", view_context(c.result, 1, 0, {{"window", 2}}));
    QVERIFY(third != default_window);
    QCOMPARE(render_view("recurrent", view_context(c.result, 1, 0, {{"window", 5}})),
             render_view("recurrent", view_context(c.result, 1, 0, {{"window", 500}})));
    EXPECT_ERROR(ParamError, render_view("recurrent", view_context(c.result, 1, 0, {{"window", -1}})), "window");
  }

  void exports_read_back() {
    const ViewContext c = view_context(small_result(), 1, 2, {{"window", 4}});
    const BlockRecurrentTrace& t = trace_of(c.result, 1);
    const QStringList tokens = token_labels(*c.result);
    QTemporaryDir dir;
    const auto path = [&](const char* name) { return dir.filePath(QString::fromLatin1(name)); };
    export_each("recurrent", c, dir, {"f.png", "f.svg", "f.pdf", "d.csv", "d.json", "d.npy"});
    QVERIFY(!QImage(path("f.png")).isNull());
    QVERIFY(svg_has_text(path("f.svg"), QStringLiteral("Block-recurrent state · layer 1 (block_recurrent)")));
    QVERIFY(is_pdf(path("f.pdf")));

    const auto rows = read_csv(path("d.csv"));
    QCOMPARE(static_cast<std::int64_t>(rows.size()), t.windows * t.state_size + 1);
    QCOMPARE(rows[0].join(','), QStringLiteral("window,first_token_index,first_token,last_token_index,last_token,slot,norm_read,norm_after,kept"));
    for (std::size_t line = 1; line < rows.size(); ++line) {
      const QStringList& row = rows[line];
      QCOMPARE(row.size(), qsizetype{9});
      const int w = row[0].toInt(), s = row[5].toInt();
      QCOMPARE(row[1].toInt(), w * 8);
      QCOMPARE(row[2], tokens[w * 8]);
      QCOMPARE(row[3].toInt(), std::min(42, w * 8 + 7));
      QCOMPARE(row[4], tokens[std::min(42, w * 8 + 7)]);
      QCOMPARE(parse_float(row[6]), t.state_norms.at(w, s));
      QCOMPARE(parse_float(row[7]), t.state_norms.at(w + 1, s));
      QCOMPARE(parse_float(row[8]), t.gate_values.at(w, s));
    }

    const nlohmann::json j = read_json(path("d.json"));
    for (const char* key : {"kind", "recurrent", "windows", "window", "state_size", "gate", "gate_values", "state_norms", "states",
                            "state_token_attention", "token_state_attention", "layer", "head", "tokens", "selected_window", "type"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j.at("layer").get<int>(), 1);
    QCOMPARE(j.at("head").get<int>(), 2);
    QCOMPARE(j.at("selected_window").get<int>(), 4);
    QCOMPARE(j.at("tokens").size(), std::size_t(43));
    QCOMPARE(j.at("gate_values")[3][5].get<float>(), t.gate_values.at(3, 5));

    const Tensor states = read_npy(path("d.npy").toStdString());
    QCOMPARE(states.shape(), t.states.shape());
    QCOMPARE(states.data()[states.size() - 1], t.states.data()[t.states.size() - 1]);

    // The plain layer: one line per window without state columns; no states to write as .npy.
    const ViewContext plain = view_context(c.result, 0, 0);
    export_each("recurrent", plain, dir, {"p.csv"});
    const auto plain_rows = read_csv(path("p.csv"));
    QCOMPARE(static_cast<std::int64_t>(plain_rows.size()), trace_of(c.result, 0).windows + 1);
    QCOMPARE(plain_rows[1][5], QString());
    EXPECT_ERROR(ParamError, export_view(view_spec("recurrent"), plain, path("p.npy"), ExportOptions{}), "not recurrent");
    EXPECT_ERROR(ParamError, export_view(view_spec("recurrent"), c, path("d.txt"), ExportOptions{}), ".npy");
  }
};

QTEST_MAIN(TestRecurrentView)
#include "test_recurrent_view.moc"
