// The "Perceiver AR" view on the offscreen platform: which results it accepts (models with
// Perceiver AR layers; a tiny-encoder result is refused with the requirement); the colours of the
// cross-attention (latents × all positions) and of the latent self-attention at cells found
// through the public layout against the colormap applied to the engine's weights on [0, max of
// the head] worked out here; the stacked bars at the heights the prefix and recent masses put
// them; the prefix | latent boundary at column Lp; a text shorter than the latents (no prefix), a
// layer without latent layers (a note) and prefix dropout (the hidden keys counted); the linked
// token; sizes at 5 and 512 tokens; the widget following setContext, hover, the latent_layer
// option and the model controls (layerParamsEdited); exports read back.
#include <QDoubleSpinBox>
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
#include "figures/perceiver_figure.h"
#include "layers/perceiver_ar.h"
#include "models/playground.h"
#include "perceiver_view.h"
#include "result_views.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

// 12 latents and 2 latent layers: 40 tokens give a prefix of 28 and cells big enough to read.
nlohmann::json small_model(const nlohmann::json& params) {
  return {{"name", "small-perceiver"}, {"d_model", 64},       {"heads", 4}, {"d_ff", 128}, {"max_length", 4096},
          {"layers", nlohmann::json::array({{{"type", "perceiver_ar"}, {"params", params}}})}};
}

// A config file for `params` of the one Perceiver AR layer.
std::string model_path(const nlohmann::json& params) { return write_model_file(QByteArray::fromStdString(small_model(params).dump())); }

PlaygroundResultPtr small_result(int tokens = 40, const nlohmann::json& params = {{"latents", 12}, {"latent_layers", 2}}) {
  return run_model(model_path(params), numbered_words(tokens).toStdString());
}

const PerceiverTrace& trace_of(const PlaygroundResultPtr& r, int layer = 0) {
  return *dynamic_cast<const PerceiverTrace*>(r->layers[static_cast<std::size_t>(layer)].layer_extra("perceiver"));
}

Rendered<PerceiverFigureLayout> render(const ViewContext& c, const PerceiverFigureOptions& options = {}, double dpi = 150,
                                       const FigureStyle& style = FigureStyle{}) {
  return render_with_layout(perceiver_painted_figure(c, style, options), dpi, compute_perceiver_layout, c, style, options);
}


}  // namespace

class TestPerceiverView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_perceiver_models() {
    const ViewSpec& spec = view_spec("perceiver");
    QCOMPARE(spec.title, QStringLiteral("Perceiver AR"));
    QCOMPARE(spec.requirement, QStringLiteral("needs a model with Perceiver AR layers, e.g. the perceiver-ar preset"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json", "npy"}));
    QVERIFY(spec.make_widget);
    QVERIFY(spec.accepts(*run_model("perceiver-ar", numbered_words(20).toStdString())));
    const PlaygroundResultPtr tiny = run_model("tiny-encoder", numbered_words(20).toStdString());
    QVERIFY(!spec.accepts(*tiny));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(tiny)), "needs a model with Perceiver AR layers");
    EXPECT_ERROR(ParamError, render_view("perceiver", view_context(tiny)), "e.g. the perceiver-ar preset");
    QVERIFY(!spec.accepts(*run_model("block-recurrent", numbered_words(20).toStdString())));
  }

  void heatmap_cells_show_the_weights() {
    ViewContext c = view_context(small_result(), 0, 3);
    c.colormap = ColormapId::Magma;
    const PerceiverTrace& t = trace_of(c.result);
    const std::int64_t L = c.result->length(), N = t.latents, Lp = t.prefix_length;
    QCOMPARE(L, std::int64_t{40});
    QCOMPARE(N, std::int64_t{12});
    QCOMPARE(Lp, std::int64_t{28});
    const auto r = render(c, PerceiverFigureOptions{1});
    QCOMPARE(r.layout.latent_layer, 1);
    const Colormap& magma = Colormap::get(ColormapId::Magma);
    float cross_max = 0.0f, latent_max = 0.0f;
    for (std::int64_t i = 0; i < N; ++i) {
      for (std::int64_t j = 0; j < L; ++j) cross_max = std::max(cross_max, t.cross_weights.at(3, i, j));
      for (std::int64_t j = 0; j < N; ++j) latent_max = std::max(latent_max, t.latent_weights.data()[((1 * 4 + 3) * N + i) * N + j]);
    }
    for (int i = 0; i < N; ++i) {
      for (int j = 0; j < L; ++j) {
        const QRgb got = pixel_at(r.image, r.layout.cross.cell_rect(i, j).center());
        const float w = t.cross_weights.at(3, i, j);
        QVERIFY2(near_colour(got, magma.color(w, 0.0f, cross_max)), qPrintable(QString("cross (%1,%2) %3").arg(i).arg(j).arg(describe(got))));
        if (j > Lp + i) QCOMPARE(w, 0.0f);  // causal: latent i sees positions up to Lp + i
      }
      for (int j = 0; j < N; ++j) {
        const QRgb got = pixel_at(r.image, r.layout.latent.cell_rect(i, j).center());
        const float w = t.latent_weights.data()[((1 * 4 + 3) * N + i) * N + j];
        QVERIFY2(near_colour(got, magma.color(w, 0.0f, latent_max)), qPrintable(QString("latent (%1,%2) %3").arg(i).arg(j).arg(describe(got))));
      }
    }
    // Another latent layer draws other weights.
    QVERIFY(render(c, PerceiverFigureOptions{0}).image != r.image);
  }

  // Bars stack the prefix mass under the recent mass; the boundary sits after column Lp − 1.
  void bars_and_boundary_where_the_data_put_them() {
    const ViewContext c = view_context(small_result(), 0, 1);
    const PerceiverTrace& t = trace_of(c.result);
    const auto r = render(c, {}, 200);
    const PerceiverFigureLayout& l = r.layout;
    int checked = 0;
    for (std::int64_t i = 0; i < t.latents; ++i) {
      const double prefix = t.prefix_mass.at(1, i), recent = t.recent_mass.at(1, i);
      QVERIFY(std::abs(prefix + recent - 1.0) < 1e-5);
      if (prefix * l.mass_plot.height() > 4) {
        QVERIFY2(near_colour(pixel_at(r.image, l.mass_point(i, 0.5 * prefix)), perceiver_prefix_color()),
                 qPrintable(QString("%1: %2 at (%3, %4) in %5 %6").arg(i).arg(describe(pixel_at(r.image, l.mass_point(i, 0.5 * prefix)))).arg(l.mass_point(i, 0.5 * prefix).x()).arg(l.mass_point(i, 0.5 * prefix).y()).arg(l.mass_plot.left()).arg(l.mass_plot.top())));
        ++checked;
      }
      if (recent * l.mass_plot.height() > 4) {
        QVERIFY2(near_colour(pixel_at(r.image, l.mass_point(i, prefix + 0.5 * recent)), perceiver_recent_color()),
                 qPrintable(QString::number(i)));
        ++checked;
      }
      // Above the stack: the background.
      if (prefix + recent < 0.97) QVERIFY(near_colour(pixel_at(r.image, l.mass_point(i, 0.99)), QColor(255, 255, 255)));
    }
    QVERIFY(checked >= static_cast<int>(t.latents));
    QCOMPARE(l.boundary_x(), l.cross.matrix.left() + 28 * l.cross.cell);
    QVERIFY(colour_near(r.image, QPointF(l.boundary_x(), l.cross.matrix.center().y()), perceiver_boundary_color()));
    QVERIFY(!colour_near(r.image, QPointF(l.boundary_x() - 5 * l.cross.cell, l.cross.matrix.center().y()), perceiver_boundary_color(), 1, 30));
  }

  // A text no longer than the latents: no prefix, every position a latent, said in the figure.
  void short_text_has_no_prefix() {
    const ViewContext c = view_context(small_result(8), 0, 0);
    const PerceiverTrace& t = trace_of(c.result);
    QCOMPARE(t.prefix_length, std::int64_t{0});
    QCOMPARE(t.latents, std::int64_t{8});
    const auto r = render(c);
    QCOMPARE(r.layout.cross.matrix.width(), r.layout.cross.matrix.height());
    for (std::int64_t i = 0; i < 8; ++i) QVERIFY(near_colour(pixel_at(r.image, r.layout.mass_point(i, 0.5)), perceiver_recent_color()));
    QTemporaryDir dir;
    export_each("perceiver", c, dir, {"f.svg"});
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("no prefix (Lp = 0)")));
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("12 latents the layer allows")));
  }

  void no_latent_layers_and_prefix_dropout() {
    const ViewContext none = view_context(small_result(40, {{"latents", 12}, {"latent_layers", 0}}), 0, 0);
    const auto r = render(none);
    QCOMPARE(r.layout.latent_layer, -1);
    QVERIFY(!r.layout.note.isEmpty());
    QVERIFY(r.layout.latent_panel.isEmpty());
    EXPECT_ERROR(ParamError, perceiver_latent_heatmap(none, {}), "no latent layers");
    QTemporaryDir dir;
    export_each("perceiver", none, dir, {"n.svg"});
    QVERIFY(svg_has_text(dir.filePath("n.svg"), QStringLiteral("has no latent layers")));

    const ViewContext dropped = view_context(small_result(40, {{"latents", 12}, {"latent_layers", 1}, {"prefix_dropout", 0.5}}), 0, 2);
    const PerceiverTrace& t = trace_of(dropped.result);
    QVERIFY(!t.dropped_prefix.empty());
    const auto d = render(dropped);
    const Colormap& viridis = Colormap::get(ColormapId::Viridis);
    for (std::int64_t key : t.dropped_prefix) {
      QCOMPARE(t.cross_weights.at(2, 5, key), 0.0f);
      QVERIFY(near_colour(pixel_at(d.image, d.layout.cross.cell_rect(5, static_cast<int>(key)).center()), viridis.color(0.0f)));
    }
    export_each("perceiver", dropped, dir, {"d.svg"});
    QVERIFY(svg_has_text(dir.filePath("d.svg"), QStringLiteral("%1 prefix keys dropped").arg(t.dropped_prefix.size())));
  }

  void highlight_and_hover_positions() {
    ViewContext c = view_context(small_result(), 0, 0);
    const auto plain = render(c);
    c.highlighted_token = 31;  // latent 3
    const auto marked = render(c);
    QVERIFY(plain.image != marked.image);
    const PerceiverFigureLayout& l = marked.layout;
    QCOMPARE(l.token_at(l.cross.cell_rect(3, 10).center()), 31);
    QCOMPARE(l.token_at(l.latent.cell_rect(3, 1).center()), 31);
    QCOMPARE(l.token_at(l.mass_point(3, 0.5)), 31);
    QCOMPARE(l.token_at(l.title.center()), -1);
    c.highlighted_token = 4;  // a prefix token: its column only
    QVERIFY(render(c).image != plain.image);
  }

  void sizes_and_dark_style() {
    for (const int tokens : {5, 512}) {
      const ViewContext c = view_context(run_model("perceiver-ar", numbered_words(tokens).toStdString()), 0, 0);
      QCOMPARE(c.result->length(), std::int64_t{tokens});
      const QSizeF size = view_spec("perceiver").figure(c, FigureStyle{}).size;
      QVERIFY2(size.width() > 300 && size.width() < 2500 && size.height() > 200 && size.height() < 2000,
               qPrintable(QString("%1 x %2").arg(size.width()).arg(size.height())));
      const auto r = render(c, {}, 72);
      const std::vector<QRectF> parts = {r.layout.cross.matrix, r.layout.mass_plot, r.layout.latent.matrix};
      for (std::size_t a = 0; a < parts.size(); ++a) {
        QVERIFY(parts[a].width() > 50 && parts[a].height() > 5);
        for (std::size_t b = a + 1; b < parts.size(); ++b) QVERIFY(!parts[a].intersects(parts[b]));
      }
      QVERIFY(r.image.rect().contains(r.layout.summary.toAlignedRect()));
    }
    const FigureStyle dark = FigureStyle::dark();
    const auto r = render(view_context(small_result()), {}, 100, dark);
    QVERIFY(near_colour(r.image.pixel(1, 1), dark.background.rgb()));
  }

  void widget_follows_context_hover_and_latent_layer() {
    PerceiverView view;
    view.resize(1400, 800);
    view.show();
    const PlaygroundResultPtr result = small_result();
    view.setContext(view_context(result, 0, 0));
    QCOMPARE(view.drawnLayer(), 0);
    QCOMPARE(view.latentLayerBox()->maximum(), 1);
    QCOMPARE(view.latentsBox()->value(), 12);
    QCOMPARE(view.dropoutBox()->value(), 0.0);
    const QImage first = view.canvas()->grab().toImage();
    QSignalSpy options(&view, &TraceViewWidget::viewOptionsChanged);
    view.latentLayerBox()->setValue(1);
    QCOMPARE(view.latentLayer(), 1);
    QCOMPARE(options.count(), 1);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"latent_layer", 1}}));
    QVERIFY(view.canvas()->grab().toImage() != first);
    view.setContext(view_context(result, 0, 2));
    QCOMPARE(view.context().head, 2);

    QSignalSpy hovered(&view, &TraceViewWidget::tokenHovered);
    const PerceiverFigureLayout layout = view.figureLayout();
    move_pointer(view.canvas()->surface(), layout.cross.cell_rect(5, 3).center());
    QTRY_VERIFY(!hovered.isEmpty());
    QCOMPARE(hovered.last().at(0).toInt(), 33);
    QCOMPARE(view.context().highlighted_token, 33);

    view.setViewOptions({{"latent_layer", 9}});
    QCOMPARE(view.latentLayer(), 9);
    QCOMPARE(view.resolvedLatentLayer(), 1);
    EXPECT_ERROR(ParamError, view.setViewOptions({{"latent_layer", -1}}), "latent_layer");
    QCOMPARE(view.latentLayer(), 9);

    view.setContext(view_context(run_model("tiny-encoder", numbered_words(10).toStdString())));
    QVERIFY(!view.canvas()->hasFigure());
    QVERIFY(view.canvas()->message().contains(QStringLiteral("Perceiver AR")));
  }

  void model_controls_emit_layer_params() {
    PerceiverView view;
    std::vector<std::pair<int, nlohmann::json>> edited;
    QObject::connect(&view, &TraceViewWidget::layerParamsEdited,
                     [&](int layer, const nlohmann::json& params) { edited.emplace_back(layer, params); });
    view.setContext(view_context(small_result(), 0, 0));
    view.setContext(view_context(small_result(40, {{"latents", 16}, {"latent_layers", 1}}), 0, 0));
    QCOMPARE(view.latentsBox()->value(), 16);
    QCOMPARE(edited.size(), std::size_t(0));  // syncing to a result asks for nothing
    view.latentsBox()->setValue(20);
    QCOMPARE(edited.size(), std::size_t(1));
    QCOMPARE(edited.back().first, 0);
    QCOMPARE(edited.back().second, (nlohmann::json{{"latents", 20}}));
    view.dropoutBox()->setValue(0.3);
    QCOMPARE(edited.size(), std::size_t(2));
    QCOMPARE(edited.back().second.at("prefix_dropout").get<double>(), 0.3);
  }

  void latent_layer_option_in_the_exported_figure() {
    const ViewContext c = view_context(small_result(), 0, 0);
    const QImage first = render_view("perceiver", c);
    QCOMPARE(render_view("perceiver", view_context(c.result, 0, 0, {{"latent_layer", 0}})), first);
    const QImage second = render_view("perceiver", view_context(c.result, 0, 0, {{"latent_layer", 1}}));
    QVERIFY(second != first);
    QCOMPARE(render_view("perceiver", view_context(c.result, 0, 0, {{"latent_layer", 30}})), second);
    EXPECT_ERROR(ParamError, render_view("perceiver", view_context(c.result, 0, 0, {{"latent_layer", 48}})), "latent_layer");
  }

  void exports_read_back() {
    const ViewContext c = view_context(small_result(), 0, 2, {{"latent_layer", 1}});
    const PerceiverTrace& t = trace_of(c.result);
    const QStringList tokens = token_labels(*c.result);
    QTemporaryDir dir;
    const auto path = [&](const char* name) { return dir.filePath(QString::fromLatin1(name)); };
    export_each("perceiver", c, dir, {"f.png", "f.svg", "f.pdf", "d.csv", "d.json", "d.npy"});
    QVERIFY(!QImage(path("f.png")).isNull());
    QVERIFY(svg_has_text(path("f.svg"), QStringLiteral("Perceiver AR · layer 0 (perceiver_ar)")));
    QVERIFY(svg_has_text(path("f.svg"), QStringLiteral("prefix Lp = 28, N = 12 latents")));
    QVERIFY(is_pdf(path("f.pdf")));

    const auto rows = read_csv(path("d.csv"));
    QCOMPARE(static_cast<std::int64_t>(rows.size()), t.latents + 1);
    QCOMPARE(rows[0].join(','), QStringLiteral("latent,position,token,prefix_mass,recent_mass"));
    for (std::size_t line = 1; line < rows.size(); ++line) {
      const QStringList& row = rows[line];
      QCOMPARE(row.size(), qsizetype{5});
      const int i = row[0].toInt();
      QCOMPARE(row[1].toInt(), 28 + i);
      QCOMPARE(row[2], tokens[28 + i]);
      QCOMPARE(parse_float(row[3]), t.prefix_mass.at(2, i));
      QCOMPARE(parse_float(row[4]), t.recent_mass.at(2, i));
    }

    const nlohmann::json j = read_json(path("d.json"));
    for (const char* key : {"kind", "latents", "prefix_length", "prefix_mass", "recent_mass", "dropped_prefix", "cross_weights",
                            "latent_weights", "latent_layers", "selected_latent_layer", "type", "layer", "head", "tokens"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j.at("head").get<int>(), 2);
    QCOMPARE(j.at("selected_latent_layer").get<int>(), 1);
    QCOMPARE(j.at("prefix_length").get<int>(), 28);
    QCOMPARE(j.at("cross_weights").size(), std::size_t(12));
    QCOMPARE(j.at("cross_weights")[4][30].get<float>(), t.cross_weights.at(2, 4, 30));
    QCOMPARE(j.at("latent_weights")[1][7][3].get<float>(), t.latent_weights.data()[((1 * 4 + 2) * 12 + 7) * 12 + 3]);
    QCOMPARE(j.at("prefix_mass")[3][5].get<float>(), t.prefix_mass.at(3, 5));

    const Tensor cross = read_npy(path("d.npy").toStdString());
    QCOMPARE(cross.shape(), (Shape{4, 12, 40}));
    QCOMPARE(cross.at(3, 11, 39), t.cross_weights.at(3, 11, 39));
    EXPECT_ERROR(ParamError, export_view(view_spec("perceiver"), c, path("d.txt"), ExportOptions{}), ".npy");
  }
};

QTEST_MAIN(TestPerceiverView)
#include "test_perceiver_view.moc"
