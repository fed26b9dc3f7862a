// The "Experts" view on the offscreen platform: which results it accepts (models with a
// mixture-of-experts layer; tiny-encoder and scaling-sparse results are refused with the
// requirement); the grid's colours at cells found through the public layout against the
// colormap applied here to the router probabilities on [0, largest p]; the marks of kept slots
// (filled first choice, outlined second choice), dropped slots and dropped tokens (band, strip)
// where the trace puts them; the load bars, overflow and capacity line; legibility at 512 tokens;
// the widget following setContext and emitting tokenHovered; exports read back.
#include <QDir>
#include <QFontMetricsF>
#include <QImage>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "experts_view.h"
#include "figure_canvas.h"
#include "figures/experts_figure.h"
#include "models/model_config.h"
#include "models/playground.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kText = "a small cat sleeps on the warm mat while two birds sing in the old green tree";

// A transformer layer, then a mixture-of-experts layer with 4 experts and `moe` parameters.
PlaygroundResultPtr run_moe(nlohmann::json moe, const std::string& text = kText) {
  ModelConfig config = builtin_model("switch-moe");
  config.name = "moe-test";
  config.layers.resize(2);
  moe["experts"] = 4;
  config.layers[1].ffn_params = std::move(moe);
  return run_model_config(config, text);
}

const ExpertsTrace& trace_of(const ViewContext& c) { return *experts_trace(c); }

Rendered<ExpertsFigureLayout> render(const ViewContext& c, const FigureStyle& style = FigureStyle{}, double dpi = 100) {
  return render_with_layout(experts_painted_figure(c, style), dpi, compute_experts_layout, c, style);
}

FigureText text_of(const QImage& image) { return measure_figure_text(FigureStyle{}, &image); }

bool is_dropped(const ExpertsTrace& e, int token) { return std::binary_search(e.dropped.begin(), e.dropped.end(), token); }

float probability(const ExpertsTrace& e, int token, int expert) {
  return e.router_probabilities
      .data()[static_cast<std::size_t>(token) * static_cast<std::size_t>(e.load.size()) + static_cast<std::size_t>(expert)];
}

}  // namespace

class TestExpertsView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_models_with_experts() {
    const ViewSpec& spec = view_spec("experts");
    QCOMPARE(spec.title, QStringLiteral("Experts"));
    QCOMPARE(spec.requirement, QStringLiteral("needs a model with mixture-of-experts layers, e.g. the switch-moe preset"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json"}));
    QVERIFY(spec.make_widget);
    QVERIFY(spec.accepts(*run_model("switch-moe", kText)));
    const PlaygroundResultPtr plain = run_playground("softmax", nlohmann::json::object(), false, kText);
    QVERIFY(!spec.accepts(*plain));
    QVERIFY(!spec.accepts(*run_model("scaling-sparse", kText)));  // sparse feed-forward, no router
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(plain)), "needs a model with mixture-of-experts layers");
    EXPECT_ERROR(ParamError, render_view("experts", view_context(plain)), "switch-moe preset");
  }

  // The layer drawn: the selected one when it routes, else the first that does.
  void draws_the_selected_moe_layer() {
    const PlaygroundResultPtr r = run_model("switch-moe", kText);
    QCOMPARE(experts_layer(view_context(r, 0)), 1);
    QCOMPARE(experts_layer(view_context(r, 1)), 1);
    QCOMPARE(experts_layer(view_context(r, 2)), 1);
    QCOMPARE(experts_layer(view_context(r, 3)), 3);
    QVERIFY(experts_trace(view_context(r, 3)) == r->layers[3].layer_extra("experts"));
    QVERIFY(render_view("experts", view_context(r, 1)) != render_view("experts", view_context(r, 3)));
    QTemporaryDir dir;
    const QString path = dir.filePath("layer3.svg");
    export_view(view_spec("experts"), view_context(r, 3), path, ExportOptions{});
    QVERIFY(svg_has_text(path, QStringLiteral("Experts · layer 3 (transformer)")));
  }

  // Unmarked cells show p through the colormap on [0, largest p]; kept first choices carry a
  // filled mark in the cell's contrasting colour, dropped slots a vermillion one.
  void grid_cells_and_marks_follow_the_router() {
    ViewContext c = view_context(run_model("switch-moe", kText), 1);
    c.colormap = ColormapId::Cividis;
    const ExpertsTrace& e = trace_of(c);
    const int L = static_cast<int>(e.experts.size()), E = static_cast<int>(e.load.size());
    float top = 0.0f;
    for (int i = 0; i < L; ++i)
      for (int k = 0; k < E; ++k) top = std::max(top, probability(e, i, k));
    const auto r = render(c);
    const FigureText line = text_of(r.image);
    const Colormap& cividis = Colormap::get(ColormapId::Cividis);
    int kept = 0, dropped_slots = 0;
    for (int i = 0; i < L; ++i) {
      for (int k = 0; k < E; ++k) {
        const QRectF cell = r.layout.grid.cell_rect(i, k);
        const QColor want(cividis.color(probability(e, i, k), 0.0f, top));
        const QRgb edge = pixel_at(r.image, QPointF(cell.left() + 0.12 * cell.width(), cell.center().y()));
        QVERIFY2(near_colour(edge, want), qPrintable(QString("cell %1,%2: %3").arg(i).arg(k).arg(describe(edge))));
        const QRgb centre = pixel_at(r.image, cell_mark_rect(r.layout.grid, i, k, line).center());
        if (e.experts[i][0] == k) {
          QVERIFY2(near_colour(centre, Colormap::contrasting(want.rgb())), qPrintable(QString("kept %1,%2").arg(i).arg(k)));
          ++kept;
        } else if (e.routed[i][0] == k) {
          QCOMPARE(e.experts[i][0], -1);
          QVERIFY2(near_colour(centre, experts_dropped_color()), qPrintable(QString("dropped %1,%2").arg(i).arg(k)));
          ++dropped_slots;
        } else {
          QVERIFY2(near_colour(centre, want), qPrintable(QString("unmarked %1,%2").arg(i).arg(k)));
        }
      }
    }
    QVERIFY(kept > 0 && dropped_slots > 0);
    QCOMPARE(dropped_slots, static_cast<int>(e.dropped.size()));  // top-1: a dropped slot is a dropped token
  }

  // Dropped tokens: a vermillion strip cell and a band behind the label; others neither.
  void dropped_tokens_are_banded_and_listed() {
    const ViewContext c = view_context(run_model("switch-moe", kText), 1);
    const ExpertsTrace& e = trace_of(c);
    QVERIFY(!e.dropped.empty());
    const FigureStyle style;
    const auto r = render(c, style);
    QColor band = experts_dropped_color();
    for (int i = 0; i < static_cast<int>(e.experts.size()); ++i) {
      const QRectF row = r.layout.grid.row_band(i);
      const QRgb strip = pixel_at(r.image, QPointF(r.layout.grid.strip.center().x(), row.center().y()));
      const QRgb label = pixel_at(r.image, QPointF(row.left() + 1.5, row.center().y()));
      if (is_dropped(e, i)) {
        QVERIFY2(near_colour(strip, experts_dropped_color()), qPrintable(QString("strip %1").arg(i)));
        QVERIFY2(near_colour(label, over(band, 77, style.background), 4),
                 qPrintable(QString("band %1: %2").arg(i).arg(describe(label))));
      } else {
        QVERIFY(near_colour(strip, style.background));
        QVERIFY(near_colour(label, style.background));
      }
    }
    QVERIFY(!r.layout.dropped_list.isEmpty());
    QVERIFY(r.layout.dropped_list.top() > r.layout.load_plot.bottom());
  }

  // Load bars (blue) up to the kept slots, overflow (vermillion) up to the demand, the dashed
  // capacity line at C.
  void load_bars_and_capacity() {
    const ViewContext c = view_context(run_model("switch-moe", kText), 1);
    const ExpertsTrace& e = trace_of(c);
    const auto r = render(c, FigureStyle{}, 150);
    int overflowing = 0;
    for (int k = 0; k < static_cast<int>(e.load.size()); ++k) {
      QVERIFY(e.load[k] <= e.capacity && e.load[k] <= e.demand[k]);
      if (e.load[k] > 0) {
        const QRgb got = pixel_at(r.image, experts_load_point(r.layout, c, k, 0.5 * e.load[k]));
        QVERIFY2(near_colour(got, experts_load_color()), qPrintable(QString("load %1: %2").arg(k).arg(describe(got))));
      }
      if (e.demand[k] > e.load[k]) {
        ++overflowing;
        const QRgb got = pixel_at(r.image, experts_load_point(r.layout, c, k, 0.5 * (e.load[k] + e.demand[k])));
        QVERIFY2(near_colour(got, experts_dropped_color()), qPrintable(QString("overflow %1: %2").arg(k).arg(describe(got))));
      } else {
        const QRgb above = pixel_at(r.image, experts_load_point(r.layout, c, k, e.demand[k] + 0.5));
        QVERIFY(!near_colour(above, experts_dropped_color(), 30) && !near_colour(above, experts_load_color(), 30));
      }
    }
    QVERIFY(overflowing > 0);
    // The dashed capacity line: dark pixels along y(C) over a good part of the plot's width.
    const double y = experts_load_point(r.layout, c, 0, static_cast<double>(e.capacity)).y();
    int dark = 0, total = 0;
    for (double x = r.layout.load_plot.left() + 2; x < r.layout.load_plot.right() - 2; x += 1.0, ++total) {
      bool hit = false;
      for (int dy = -1; dy <= 1; ++dy) hit = hit || qGray(pixel_at(r.image, QPointF(x, y + dy))) < 90;
      dark += hit ? 1 : 0;
    }
    QVERIFY2(dark > total / 3, qPrintable(QString("%1 of %2").arg(dark).arg(total)));
  }

  // Top-2: second choices outlined, a token that lost only its second choice orange in the strip.
  void second_choices_and_partial_drops() {
    const ViewContext c = view_context(run_moe({{"top_k", 2}, {"capacity_factor", 1.0}, {"second_threshold", 0.0}}), 1);
    const ExpertsTrace& e = trace_of(c);
    QCOMPARE(e.top_k, std::int64_t{2});
    const auto r = render(c, FigureStyle{}, 150);
    const FigureText line = text_of(r.image);
    const TokenGridData grid = experts_grid(c);
    int outlined = 0, partial = 0;
    for (int i = 0; i < static_cast<int>(e.experts.size()); ++i) {
      const int second = e.experts[i][1];
      if (second >= 0) {
        const QRectF mark = cell_mark_rect(r.layout.grid, i, second, line);
        const QColor cell = grid.color(grid.at(i, second));
        QVERIFY(near_colour(pixel_at(r.image, mark.center()), cell));  // hollow
        bool edge = false;
        for (double x = mark.left(); x < mark.left() + 0.2 * line.line; x += 0.5)
          edge = edge || near_colour(pixel_at(r.image, QPointF(x, mark.center().y())), experts_mark_color(grid, i, second), 40);
        QVERIFY2(edge, qPrintable(QString("token %1").arg(i)));
        ++outlined;
      }
      const bool lost_second = e.routed[i][1] >= 0 && e.experts[i][1] < 0;
      if (!is_dropped(e, i) && lost_second) {
        ++partial;
        const QRgb strip = pixel_at(r.image, QPointF(r.layout.grid.strip.center().x(), r.layout.grid.row_band(i).center().y()));
        QVERIFY(near_colour(strip, experts_partial_color()));
        QVERIFY(near_colour(pixel_at(r.image, cell_mark_rect(r.layout.grid, i, e.routed[i][1], line).center()),
                            experts_dropped_color()));
      }
    }
    QVERIFY(outlined > 0 && partial > 0);
  }

  void long_inputs_dark_style_and_hit_testing() {
    QString long_text;
    for (int i = 0; i < 512; ++i) long_text += QStringLiteral("w%1 ").arg(i % 37);
    for (const std::string& text : {std::string("one two three"), long_text.toStdString()}) {
      const ViewContext c = view_context(run_model("switch-moe", text), 1);
      const QSizeF size = view_spec("experts").figure(c, FigureStyle{}).size;
      QVERIFY(size.width() > 400 && size.width() < 1400 && size.height() > 250 && size.height() < 1000);
      const auto r = render(c, FigureStyle{}, 72);
      const std::vector<QRectF> parts = {r.layout.grid.matrix, r.layout.grid.strip, r.layout.grid.colorbar, r.layout.load_plot,
                                         r.layout.dropped_list};
      for (std::size_t a = 0; a < parts.size(); ++a) {
        QVERIFY(!parts[a].isEmpty());
        QVERIFY(QRectF(r.image.rect()).contains(parts[a]));
        for (std::size_t b = a + 1; b < parts.size(); ++b) QVERIFY(!parts[a].intersects(parts[b]));
      }
      QVERIFY(r.layout.summary.bottom() <= r.image.height());
      const int L = static_cast<int>(c.result->length());
      QCOMPARE(r.layout.token_at(r.layout.grid.cell_rect(L - 1, 2).center()), L - 1);
      QCOMPARE(r.layout.token_at(r.layout.load_plot.center()), -1);
      if (L == 512) QVERIFY(r.layout.grid.row_stride > 1);
    }
    ViewContext c = view_context(run_model("switch-moe", kText), 1);
    const FigureStyle dark = FigureStyle::dark();
    const auto plain = render(c, dark);
    QVERIFY(near_colour(plain.image.pixel(1, 1), dark.background));
    c.highlighted_token = 4;
    QVERIFY(render(c, dark).image != plain.image);
  }

  void widget_follows_context_and_hover() {
    ExpertsView view;
    view.resize(1100, 700);
    view.show();
    const PlaygroundResultPtr result = run_model("switch-moe", kText);
    view.setContext(view_context(result, 1));
    const QImage first = view.canvas()->grab().toImage();
    view.setContext(view_context(result, 3));
    QCOMPARE(view.context().layer, 3);
    QVERIFY(view.canvas()->grab().toImage() != first);

    QSignalSpy hovered(&view, &TraceViewWidget::tokenHovered);
    const ExpertsFigureLayout layout = view.figureLayout();
    QTest::mouseMove(view.canvas()->surface(), layout.grid.cell_rect(5, 1).center().toPoint());
    QTRY_VERIFY(!hovered.isEmpty());
    QCOMPARE(hovered.last().at(0).toInt(), 5);
    QCOMPARE(view.context().highlighted_token, 5);

    view.setContext(view_context(run_model("scaling-sparse", kText)));
    QVERIFY(!view.canvas()->hasFigure());
    QVERIFY(view.canvas()->message().contains(QStringLiteral("switch-moe")));
    QCOMPARE(view.viewOptions(), nlohmann::json::object());
  }

  void exports_read_back() {
    for (const std::int64_t k : {1, 2}) {
      const ViewContext c = view_context(run_moe({{"top_k", k}, {"capacity_factor", 1.0}}), 0);
      const ExpertsTrace& e = trace_of(c);
      QTemporaryDir dir;
      export_each("experts", c, dir, {"f.png", "f.svg", "f.pdf", "d.json", "d.csv"});
      QVERIFY(!QImage(dir.filePath("f.png")).isNull());
      QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("Experts")));
      QVERIFY(is_pdf(dir.filePath("f.pdf")));

      const nlohmann::json j = read_json(dir.filePath("d.json"));
      QCOMPARE(j.at("layer").get<int>(), 1);
      QCOMPARE(j.at("tokens").size(), e.experts.size());
      for (const char* key : {"experts", "routed", "gates", "router_probabilities", "load", "demand", "capacity", "dropped",
                              "aux_loss", "aux_loss_weighted", "z_loss", "z_loss_weighted", "top_k", "capacity_factor"})
        QVERIFY2(j.contains(key), key);
      QCOMPARE(j.at("aux_loss").get<double>(), e.aux_loss);
      QVERIFY(j.at("load").get<std::vector<std::int32_t>>() == e.load);

      const auto rows = read_csv(dir.filePath("d.csv"));
      const int E = static_cast<int>(e.load.size());
      QCOMPARE(rows.size(), e.experts.size() + 1);
      QCOMPARE(rows.front().size(), qsizetype{3 + 3 * k + E});
      QCOMPARE(rows.front()[3], QStringLiteral("expert_1"));
      QCOMPARE(rows.front().back(), QStringLiteral("p_%1").arg(E - 1));
      for (std::size_t line = 1; line < rows.size(); ++line) {
        const QStringList& row = rows[line];
        const int i = row[0].toInt();
        QCOMPARE(row[1], QString::fromStdString(c.result->tokens[i].text));
        QCOMPARE(row[2] == QLatin1String("true"), is_dropped(e, i));
        for (int s = 0; s < k; ++s) {
          QCOMPARE(row[3 + 3 * s].toInt(), e.experts[i][s]);
          QCOMPARE(parse_float(row[4 + 3 * s]), e.gates[i][s]);
          QCOMPARE(row[5 + 3 * s].toInt(), e.routed[i][s]);
        }
        for (int x = 0; x < E; ++x) QCOMPARE(parse_float(row[3 + 3 * k + x]), probability(e, i, x));
      }
      EXPECT_ERROR(ParamError, export_view(view_spec("experts"), c, dir.filePath("d.npy"), ExportOptions{}), ".csv, .json");
    }
  }
};

QTEST_MAIN(TestExpertsView)
#include "test_experts_view.moc"
