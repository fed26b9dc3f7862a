// The "Halting map" view on the offscreen platform: which results it accepts (models with a
// universal ACT layer; a plain tiny-encoder result is refused with the requirement); the map's
// colours at cells found through the public layout against the colormap applied here to the
// trace's p, blank cells after each token's last step; the last-step marks (foreground for
// halted, vermillion for stopped by max_steps), the remainder bars, the highlighted token's hp
// markers and the per-step counts where the trace puts them; legibility at 512 tokens; the
// widget following setContext, emitting tokenHovered and layerParamsEdited (threshold box,
// slider, max steps) but never while showing a new result; exports read back.
#include <QDir>
#include <QFontMetricsF>
#include <QImage>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "figure_canvas.h"
#include "figures/halting_figure.h"
#include "halting_view.h"
#include "models/model_config.h"
#include "models/playground.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kText = "a small cat sleeps on the warm mat while two birds sing in the old green tree";

// The universal-act preset with its ACT parameters replaced by `params`, run on `text`.
PlaygroundResultPtr run_act(nlohmann::json params, const std::string& text = kText) {
  ModelConfig config = builtin_model("universal-act");
  config.name = "universal-act-test";
  config.layers[0].params = std::move(params);
  return run_model_config(config, text);
}

// max_steps 3 with a low initial halting bias: on kText some tokens halt after 2 or 3 steps and
// some are stopped by max_steps.
PlaygroundResultPtr mixed_run() { return run_act({{"max_steps", 3}, {"halting_bias", -0.5}}); }

const HaltingTrace& trace_of(const ViewContext& c) { return *halting_trace(c); }

Rendered<HaltingFigureLayout> render(const ViewContext& c, const FigureStyle& style = FigureStyle{}, double dpi = 100) {
  return render_with_layout(halting_painted_figure(c, style), dpi, compute_halting_layout, c, style);
}

// A point inside cell (token, step) clear of its last-step bar and outline.
QPointF cell_probe(const TokenGridLayout& grid, int token, int step) {
  const QRectF cell = grid.cell_rect(token, step);
  return QPointF(cell.left() + 0.3 * cell.width(), cell.center().y());
}

}  // namespace

class TestHaltingView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_models_with_act_layers() {
    const ViewSpec& spec = view_spec("halting");
    QCOMPARE(spec.title, QStringLiteral("Halting map"));
    QCOMPARE(spec.requirement, QStringLiteral("needs a model with universal (ACT) layers, e.g. the universal-act preset"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json"}));
    QVERIFY(spec.make_widget);
    QVERIFY(spec.options.empty());
    QVERIFY(spec.accepts(*run_model("universal-act", kText)));
    const PlaygroundResultPtr plain = run_playground("softmax", nlohmann::json::object(), false, kText);
    QVERIFY(!spec.accepts(*plain));
    QVERIFY(!spec.accepts(*run_model("switch-moe", kText)));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(plain)), "needs a model with universal (ACT) layers");
    EXPECT_ERROR(ParamError, render_view("halting", view_context(plain)), "universal-act preset");
    EXPECT_ERROR(ParamError, export_view(spec, view_context(plain), QDir::temp().filePath("x.csv"), ExportOptions{}),
                 "needs a model with universal (ACT) layers");
  }

  // Cells before a token's last step show p through the colormap on [0, 1]; cells after it are
  // the background.
  void map_cells_show_the_halting_probabilities() {
    ViewContext c = view_context(mixed_run());
    c.colormap = ColormapId::Magma;
    const HaltingTrace& h = trace_of(c);
    QCOMPARE(h.steps_run, std::int64_t{3});
    const auto r = render(c);
    const TokenGridData grid = halting_grid(c);
    QCOMPARE(grid.rows, static_cast<int>(c.result->length()));
    QCOMPARE(grid.cols, 3);
    const Colormap& magma = Colormap::get(ColormapId::Magma);
    int coloured = 0, blank = 0;
    for (int i = 0; i < grid.rows; ++i) {
      for (int s = 0; s < grid.cols; ++s) {
        const QRgb got = pixel_at(r.image, cell_probe(r.layout.grid, i, s));
        if (s < h.steps[i]) {
          const QColor want(magma.color(static_cast<float>(h.probabilities[i][s]), 0.0f, 1.0f));
          QVERIFY2(near_colour(got, want), qPrintable(QString("token %1 step %2: %3").arg(i).arg(s).arg(describe(got))));
          ++coloured;
        } else {
          QCOMPARE(h.probabilities[i][s], 0.0);
          QVERIFY2(near_colour(got, QColor(Qt::white)), qPrintable(QString("token %1 step %2 not blank").arg(i).arg(s)));
          ++blank;
        }
      }
    }
    QVERIFY(coloured > 0 && blank > 0);
    // The scale is [0, 1] whatever the values: a cell's colour moves when its p does.
    QVERIFY(magma.color(static_cast<float>(h.probabilities[0][0]), 0.0f, 1.0f) != magma.color(1.0f));
  }

  // Last-step bars where steps[i] puts them, vermillion for tokens max_steps stopped; remainder
  // bars as long as R; the per-step counts.
  void marks_bars_and_counts_follow_the_trace() {
    const ViewContext c = view_context(mixed_run());
    const HaltingTrace& h = trace_of(c);
    const FigureStyle style;
    const auto r = render(c, style);
    const double line = QFontMetricsF(style.font, &r.image).height();
    int stopped = 0, halted = 0;
    for (int i = 0; i < static_cast<int>(h.steps.size()); ++i) {
      const int last = h.steps[i] - 1;
      const QRgb mark = pixel_at(r.image, halting_mark_rect(r.layout.grid, i, last, line).center());
      if (h.stopped_by_max[i]) {
        ++stopped;
        QCOMPARE(h.steps[i], 3);
        QCOMPARE(h.remainder[i], 0.0);
        QVERIFY2(near_colour(mark, halting_stopped_color()), qPrintable(QString("token %1: %2").arg(i).arg(describe(mark))));
        // The remainder strip: a vermillion tick at its left edge instead of a bar.
        const QRgb tick = pixel_at(r.image, halting_remainder_end(r.layout, i, 0.0) + QPointF(2, 0));
        QVERIFY(near_colour(tick, halting_stopped_color()));
      } else {
        ++halted;
        QVERIFY2(near_colour(mark, style.foreground), qPrintable(QString("token %1: %2").arg(i).arg(describe(mark))));
        QVERIFY(h.remainder[i] > 0.0 && h.remainder[i] <= 1.0);
        const QPointF end = halting_remainder_end(r.layout, i, h.remainder[i]);
        const QPointF inside = halting_remainder_end(r.layout, i, 0.5 * h.remainder[i]);
        if (end.x() - r.layout.grid.strip.left() > 6) QVERIFY(near_colour(pixel_at(r.image, inside), halting_count_color()));
        if (h.remainder[i] < 0.9) QVERIFY(!near_colour(pixel_at(r.image, end + QPointF(3, 0)), halting_count_color(), 20));
      }
      // No mark in the cell before the last one.
      if (last > 0)
        QVERIFY(
            !near_colour(pixel_at(r.image, halting_mark_rect(r.layout.grid, i, last - 1, line).center()), style.foreground, 20));
    }
    QVERIFY(stopped > 0 && halted > 0);
    // Count bars: halted tokens per last step in bluish green, stopped ones stacked in vermillion.
    for (int step = 1; step <= 3; ++step) {
      int n_halted = 0, n_stopped = 0;
      for (std::size_t i = 0; i < h.steps.size(); ++i)
        if (h.steps[i] == step) (h.stopped_by_max[i] ? n_stopped : n_halted) += 1;
      if (n_halted > 0) {
        const QPointF mid =
            halting_count_point(r.layout, c, step, 0) + QPointF(0, -0.5 * (halting_count_point(r.layout, c, step, 0).y() -
                                                                           halting_count_point(r.layout, c, step, n_halted).y()));
        QVERIFY2(near_colour(pixel_at(r.image, mid), halting_count_color()), qPrintable(QString("step %1").arg(step)));
      }
      if (n_stopped > 0) {
        const double top = halting_count_point(r.layout, c, step, n_halted + n_stopped).y();
        const double bottom = halting_count_point(r.layout, c, step, n_halted).y();
        const QPointF mid(halting_count_point(r.layout, c, step, 0).x(), 0.5 * (top + bottom));
        QVERIFY2(near_colour(pixel_at(r.image, mid), halting_stopped_color()), qPrintable(QString("step %1").arg(step)));
      }
    }
  }

  // The highlighted token's cumulative halting probability, a marker per step at (t, hp_t).
  void highlighted_curve_follows_cumulative() {
    ViewContext c = view_context(mixed_run());
    const HaltingTrace& h = trace_of(c);
    for (int token = 0; token < static_cast<int>(h.steps.size()); ++token) {
      if (h.steps[token] != 3) continue;  // a token with three markers
      c.highlighted_token = token;
      const auto r = render(c, FigureStyle{}, 150);
      for (int s = 0; s < 3; ++s) {
        const QPointF at = halting_curve_point(r.layout, c, s + 1, h.cumulative[token][s]);
        QVERIFY(r.layout.curve_plot.adjusted(-2, -2, 2, 2).contains(at));
        const QColor want = s == 2 && h.stopped_by_max[token] ? halting_stopped_color() : halting_curve_color();
        const QRgb got = pixel_at(r.image, at);
        QVERIFY2(near_colour(got, want, 6), qPrintable(QString("token %1 step %2: %3").arg(token).arg(s + 1).arg(describe(got))));
      }
      if (h.stopped_by_max[token])
        QVERIFY(h.cumulative[token][2] < 1.0 - h.epsilon);
      else
        QCOMPARE(h.cumulative[token][2], 1.0);
      // Without the highlight the orange markers are gone.
      c.highlighted_token = -1;
      const auto plain = render(c, FigureStyle{}, 150);
      const QPointF first = halting_curve_point(plain.layout, c, 1, h.cumulative[token][0]);
      QVERIFY(!near_colour(pixel_at(plain.image, first), halting_curve_color(), 20));
      return;
    }
    QFAIL("no token ran three steps");
  }

  void long_inputs_dark_style_and_hit_testing() {
    QString long_text;
    for (int i = 0; i < 512; ++i) long_text += QStringLiteral("w%1 ").arg(i % 37);
    for (const std::string& text : {std::string("one two three"), long_text.toStdString()}) {
      const ViewContext c = view_context(run_model("universal-act", text));
      const QSizeF size = view_spec("halting").figure(c, FigureStyle{}).size;
      QVERIFY(size.width() > 400 && size.width() < 1400 && size.height() > 250 && size.height() < 1000);
      const auto r = render(c, FigureStyle{}, 72);
      const std::vector<QRectF> parts = {r.layout.grid.matrix, r.layout.grid.strip, r.layout.grid.colorbar, r.layout.curve_plot,
                                         r.layout.count_plot};
      for (std::size_t a = 0; a < parts.size(); ++a) {
        QVERIFY(!parts[a].isEmpty());
        QVERIFY(QRectF(r.image.rect()).contains(parts[a]));
        for (std::size_t b = a + 1; b < parts.size(); ++b) QVERIFY(!parts[a].intersects(parts[b]));
      }
      QVERIFY(r.layout.summary.bottom() <= r.image.height());
      QVERIFY(r.layout.grid.matrix.bottom() < r.layout.legend.top());
      const int L = static_cast<int>(c.result->length());
      const int probe = L / 2;
      QCOMPARE(r.layout.token_at(r.layout.grid.cell_rect(probe, 0).center()), probe);
      QCOMPARE(r.layout.token_at(QPointF(r.layout.grid.row_labels.right() - 1, r.layout.grid.cell_rect(1, 0).center().y())), 1);
      QCOMPARE(r.layout.token_at(r.layout.curve_plot.center()), -1);
      if (L == 512) QVERIFY(r.layout.grid.row_stride > 1);
    }
    ViewContext c = view_context(run_model("universal-act", kText));
    const FigureStyle dark = FigureStyle::dark();
    const auto plain = render(c, dark);
    QVERIFY(near_colour(plain.image.pixel(1, 1), dark.background));
    c.highlighted_token = 4;
    QVERIFY(render(c, dark).image != plain.image);
  }

  void widget_shows_the_trace_and_emits_parameter_edits() {
    HaltingView view;
    view.resize(1100, 700);
    view.show();
    QVERIFY(!view.thresholdBox()->isEnabled());
    std::vector<std::pair<int, nlohmann::json>> edits;
    QObject::connect(&view, &TraceViewWidget::layerParamsEdited, &view,
                     [&edits](int layer, const nlohmann::json& params) { edits.emplace_back(layer, params); });
    const ViewContext c = view_context(run_act({{"max_steps", 5}, {"epsilon", 0.05}}));
    view.setContext(c);
    QVERIFY(view.thresholdBox()->isEnabled());
    QCOMPARE(view.thresholdBox()->value(), 0.95);
    QCOMPARE(view.maxStepsBox()->value(), 5);
    QCOMPARE(view.epsilonSlider()->value(), HaltingView::sliderPosition(0.05));
    QCOMPARE(static_cast<int>(edits.size()), 0);  // showing a result is not an edit
    const QImage first = view.canvas()->grab().toImage();

    view.thresholdBox()->setValue(0.98);
    QCOMPARE(static_cast<int>(edits.size()), 1);
    QCOMPARE(edits.back().first, 0);
    QCOMPARE(edits.back().second, (nlohmann::json{{"epsilon", 0.02}}));
    QCOMPARE(view.epsilonSlider()->value(), HaltingView::sliderPosition(0.02));
    view.maxStepsBox()->setValue(7);
    QCOMPARE(static_cast<int>(edits.size()), 2);
    QCOMPARE(edits.back().second, (nlohmann::json{{"max_steps", 7}}));
    view.epsilonSlider()->setValue(HaltingView::kSliderSteps);  // the smallest ε
    QCOMPARE(static_cast<int>(edits.size()), 3);
    QCOMPARE(edits.back().second.at("epsilon").get<double>(), 1e-4);
    QCOMPARE(view.thresholdBox()->value(), 0.9999);
    QCOMPARE(HaltingView::sliderEpsilon(0), 0.5);

    // A rerun brings the trace's values back without emitting.
    view.setContext(view_context(run_act({{"max_steps", 2}, {"epsilon", 0.1}})));
    QCOMPARE(static_cast<int>(edits.size()), 3);
    QCOMPARE(view.thresholdBox()->value(), 0.9);
    QCOMPARE(view.maxStepsBox()->value(), 2);
    QVERIFY(view.canvas()->grab().toImage() != first);

    QSignalSpy hovered(&view, &TraceViewWidget::tokenHovered);
    const HaltingFigureLayout layout = view.figureLayout();
    QTest::mouseMove(view.canvas()->surface(), layout.grid.cell_rect(6, 0).center().toPoint());
    QTRY_VERIFY(!hovered.isEmpty());
    QCOMPARE(hovered.last().at(0).toInt(), 6);
    QCOMPARE(view.context().highlighted_token, 6);
    view.setHighlightedToken(2);
    QCOMPARE(view.context().highlighted_token, 2);

    view.setContext(view_context(run_playground("softmax", nlohmann::json::object(), false, kText)));
    QVERIFY(view.canvas()->message().contains(QStringLiteral("universal-act")));
    QVERIFY(!view.maxStepsBox()->isEnabled());
    view.maxStepsBox()->setValue(3);
    QCOMPARE(static_cast<int>(edits.size()), 3);  // no layer to edit
    QCOMPARE(view.viewOptions(), nlohmann::json::object());
    EXPECT_ERROR(ParamError, view.setViewOptions({{"round", 1}}), "view 'halting' has no options");
  }

  void exports_read_back() {
    const ViewContext c = view_context(mixed_run());
    const HaltingTrace& h = trace_of(c);
    QTemporaryDir dir;
    export_each("halting", c, dir, {"f.png", "f.svg", "f.pdf", "d.json", "d.csv"});
    const QImage png(dir.filePath("f.png"));
    QCOMPARE(png.width(), static_cast<int>(std::lround(halting_figure_size(c, FigureStyle{}).width() * 150.0 / 72.0)));
    QVERIFY(svg_has_text(dir.filePath("f.svg"), QStringLiteral("Halting map")));
    QVERIFY(is_pdf(dir.filePath("f.pdf")));

    const nlohmann::json j = read_json(dir.filePath("d.json"));
    QCOMPARE(j.at("layer").get<int>(), 0);
    QCOMPARE(j.at("layer_type").get<std::string>(), std::string("universal"));
    QCOMPARE(j.at("tokens").size(), h.steps.size());
    QCOMPARE(j.at("tokens")[2].get<std::string>(), c.result->tokens[2].text);
    for (const char* key : {"steps", "probabilities", "update_weights", "cumulative", "remainder", "weights_sum",
                            "stopped_by_max", "ponder_cost", "epsilon", "max_steps", "steps_run"})
      QVERIFY2(j.contains(key), key);
    QCOMPARE(j.at("ponder_cost").get<double>(), h.ponder_cost);
    QVERIFY(j.at("probabilities").get<std::vector<std::vector<double>>>() == h.probabilities);

    const auto rows = read_csv(dir.filePath("d.csv"));
    QCOMPARE(rows.front(), (QStringList{"token_index", "token", "step", "probability", "update_weight", "cumulative", "steps",
                                        "remainder", "weights_sum", "stopped_by_max"}));
    QCOMPARE(rows.size(), h.steps.size() * static_cast<std::size_t>(h.steps_run) + 1);
    for (std::size_t line = 1; line < rows.size(); ++line) {
      const QStringList& row = rows[line];
      QCOMPARE(row.size(), qsizetype{10});
      const int i = row[0].toInt(), s = row[2].toInt() - 1;
      QCOMPARE(row[1], QString::fromStdString(c.result->tokens[i].text));
      QCOMPARE(row[3].toDouble(), h.probabilities[i][s]);
      QCOMPARE(row[4].toDouble(), h.update_weights[i][s]);
      QCOMPARE(row[5].toDouble(), h.cumulative[i][s]);
      QCOMPARE(row[6].toInt(), h.steps[i]);
      QCOMPARE(row[7].toDouble(), h.remainder[i]);
      QCOMPARE(row[8].toDouble(), h.weights_sum[i]);
      QCOMPARE(row[9] == QLatin1String("true"), static_cast<bool>(h.stopped_by_max[i]));
    }
    EXPECT_ERROR(ParamError, export_view(view_spec("halting"), c, dir.filePath("d.npy"), ExportOptions{}), ".csv, .json");
  }
};

QTEST_MAIN(TestHaltingView)
#include "test_halting_view.moc"
