// The "Routing clusters" view on the offscreen platform: which results it accepts, its figure's
// pixels at positions computed from the public layout and the engine's trace (cluster colours of
// centroids, histogram bars of the traced occupancy, membership cells, matrix cells from the
// colormap), the widget's step-through and animation, linked highlighting, and every export
// format read back and compared with the engine's numbers; the view option "step" in the widget
// and in the exported figure.
#include <QFile>
#include <QImage>
#include <QPainter>
#include <QPushButton>
#include <QSignalSpy>
#include <QSlider>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <nlohmann/json.hpp>

#include "colormap.h"
#include "figure_canvas.h"
#include "figures/routing_figure.h"
#include "routing_view.h"
#include "test_support.h"
#include "trace_view.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

constexpr double kDpi = 150.0;

PlaygroundResultPtr run(const std::string& variant, nlohmann::json params, bool causal = false,
                        const std::string& text = "the cat sat on the mat while the dog slept by the door") {
  return run_playground(variant, std::move(params), causal, text);
}

PlaygroundResultPtr routing_result(bool causal = false) {
  return run("routing", {{"n_clusters", 3}, {"kmeans_iters", 4}, {"window", 5}}, causal);
}

ViewContext context_for(PlaygroundResultPtr result, int layer = 0, int head = 0) { return view_context(std::move(result), layer, head); }

bool near(QRgb a, QRgb b, int tolerance = 6) { return near_colour(a, b, tolerance); }

Rendered<RoutingFigureLayout> render(const RoutingFigureData& data, const RoutingFigureOptions& options = {}) {
  return render_with_layout(routing_painted_figure(data, FigureStyle{}, options), kDpi, compute_routing_layout, data, FigureStyle{});
}

QRgb pixel(const QImage& image, QPointF at) { return pixel_at(image, at); }

}  // namespace

class TestRoutingView : public QObject {
  Q_OBJECT

 private slots:
  void accepts_only_routing_results() {
    const ViewSpec& view = view_spec("clusters");
    QCOMPARE(view.title, QStringLiteral("Routing clusters"));
    QCOMPARE(view.data_extensions, QStringList({"csv", "json"}));
    QVERIFY(view.accepts(*routing_result()));
    const auto softmax = run("softmax", nlohmann::json::object());
    QVERIFY(!view.accepts(*softmax));
    EXPECT_ERROR(ParamError, check_view_context(view, context_for(softmax)),
                 "view 'clusters' cannot draw this result (model tiny-encoder, variant softmax); it needs the routing variant");
    EXPECT_ERROR(ParamError, routing_figure_data(*softmax, 0, 0, ColormapId::Viridis), "has no routing trace");
  }

  // Centroids (final step) in their cluster colour at their projected position.
  void centroids_are_drawn_in_cluster_colours() {
    const RoutingFigureData data = routing_figure_data(*routing_result(), 1, 2, ColormapId::Viridis);
    const auto r = render(data);
    const RoutingHeadTrace& t = data.trace();
    const int k = 3, last = data.steps() - 1;
    QCOMPARE(data.steps(), 5);
    int checked = 0;
    for (int c = 0; c < k; ++c) {
      const float* xy = t.centroid_xy.data() + (last * k + c) * 2;
      const QPointF at = r.layout.to_scatter(xy[0], xy[1]);
      QVERIFY(r.layout.scatter.contains(at));
      bool alone = true;  // another centroid's diamond on top would hide this one's colour
      for (int o = c + 1; o < k; ++o) {
        const float* other = t.centroid_xy.data() + (last * k + o) * 2;
        const QPointF d = r.layout.to_scatter(other[0], other[1]) - at;
        alone = alone && std::hypot(d.x(), d.y()) > r.layout.line;
      }
      if (!alone) continue;
      ++checked;
      const QRgb got = pixel(r.image, at);
      QVERIFY2(near(got, routing_cluster_color(c).rgb()), qPrintable(describe(got)));
    }
    QVERIFY(checked > 0);
  }

  // Occupancy bars: the traced counts, at the shown step, with the cluster colour inside and the
  // background just above the bar's top.
  void histogram_shows_traced_occupancy() {
    const RoutingFigureData data = routing_figure_data(*routing_result(), 0, 1, ColormapId::Viridis);
    const RoutingHeadTrace& t = data.trace();
    const QColor white(255, 255, 255);
    for (int step : {0, 4}) {
      RoutingFigureOptions options;
      options.step = step;
      const auto r = render(data, options);
      int bars = 0;
      for (int c = 0; c < 3; ++c) {
        for (bool keys : {false, true}) {
          const int n = (keys ? t.key_occupancy : t.query_occupancy)[static_cast<std::size_t>(step * 3 + c)];
          const QRectF bar = r.layout.histogram_bar(c, keys, n);
          if (n == 0 || bar.height() < 6) continue;
          // Below the window line, above the axis: the fill.
          const QPointF inside(bar.center().x(), bar.bottom() - 3);
          const QRgb want = keys ? over(routing_cluster_color(c), 110, white) : routing_cluster_color(c).rgb();
          QVERIFY2(near(pixel(r.image, inside), want, 8), qPrintable(describe(pixel(r.image, inside)) + " vs " + describe(want)));
          const QPointF above(bar.center().x(), bar.top() - 3);
          const double window_y = r.layout.histogram.bottom() - data.extras->settings().query_window * r.layout.count_scale;
          if (std::abs(above.y() - window_y) > 4) QVERIFY2(near(pixel(r.image, above), white.rgb()), qPrintable(describe(pixel(r.image, above))));
          ++bars;
        }
      }
      QVERIFY(bars >= 2);
    }
  }

  // Membership grid: the query half of a member's cell has its cluster's colour; a token that is
  // not a member shows the grid's grey.
  void member_grid_marks_members() {
    const RoutingFigureData data = routing_figure_data(*routing_result(), 0, 0, ColormapId::Viridis);
    const RoutingHeadTrace& t = data.trace();
    const auto r = render(data);
    const int w = static_cast<int>(data.extras->settings().query_window);
    const int tokens = data.matrix->rows;
    for (int c = 0; c < 3; ++c) {
      std::vector<bool> member(static_cast<std::size_t>(tokens), false);
      for (int a = 0; a < w; ++a) member[static_cast<std::size_t>(t.query_members[static_cast<std::size_t>(c * w + a)])] = true;
      for (int i = 0; i < tokens; ++i) {
        const QRgb got = pixel(r.image, r.layout.member_half(c, i, false).center());
        if (member[static_cast<std::size_t>(i)]) {
          QVERIFY2(near(got, routing_cluster_color(c).rgb()), qPrintable(describe(got)));
        } else {
          QVERIFY2(near(got, over(QColor(32, 33, 36), 30, QColor(255, 255, 255))), qPrintable(describe(got)));
        }
      }
    }
  }

  // On a wide target (a docked panel) the grid stands beside the matrix, a row per token.
  void member_grid_beside_the_matrix_when_wide() {
    const RoutingFigureData data = routing_figure_data(*routing_result(), 0, 0, ColormapId::Viridis);
    QImage image(1500, 330, QImage::Format_RGB32);
    image.fill(Qt::white);
    QPainter painter(&image);
    draw_routing_figure(painter, QRectF(image.rect()), data, FigureStyle{}, RoutingFigureOptions{});
    painter.end();
    const RoutingFigureLayout layout = compute_routing_layout(data, FigureStyle{}, QRectF(image.rect()), &image);
    if (!qgetenv("ROUTING_VIEW_SNAPSHOTS").isEmpty()) image.save(QString::fromLocal8Bit(qgetenv("ROUTING_VIEW_SNAPSHOTS")) + "/wide.png");
    QVERIFY(layout.members_by_row);
    QVERIFY(layout.members.left() > layout.matrix.matrix.right());
    QCOMPARE(layout.members.top(), layout.matrix.matrix.top());
    const RoutingHeadTrace& t = data.trace();
    const int w = static_cast<int>(data.extras->settings().key_window);
    for (int c = 0; c < 3; ++c) {
      const int key = t.key_members[static_cast<std::size_t>(c * w)];
      // The pale key colour over the grid's grey.
      const QRgb want = over(routing_cluster_color(c), 110, QColor(over(QColor(32, 33, 36), 30, QColor(255, 255, 255))));
      const QRgb got = pixel(image, layout.member_half(c, key, true).center());
      QVERIFY2(near(got, want, 8), qPrintable(describe(got) + " vs " + describe(want)));
      QCOMPARE(routing_token_at(layout, data, layout.member_cell(c, key).center()), key);
    }
  }

  // The matrix is the trace's weights through the colormap.
  void matrix_cells_follow_the_weights() {
    const auto result = routing_result(true);
    const RoutingFigureData data = routing_figure_data(*result, 2, 3, ColormapId::Magma);
    const auto r = render(data);
    const Tensor& w = result->layers[2].weights;
    const auto& cmap = Colormap::get(ColormapId::Magma);
    for (int i = 0; i < data.matrix->rows; i += 3) {
      for (int j = 0; j < data.matrix->cols; j += 2) {
        const QRgb want = cmap.color(w.at(3, i, j), data.matrix->vmin, data.matrix->vmax);
        const QRgb got = pixel(r.image, r.layout.matrix.cell_rect(i, j).center());
        QVERIFY2(near(got, want, 3), qPrintable(describe(got) + " vs " + describe(want)));
      }
    }
  }

  // A local head draws only the matrix (and says so).
  void local_head_has_no_planes() {
    const auto result = run("routing", {{"local_heads", 2}});
    const RoutingFigureData local = routing_figure_data(*result, 0, 1, ColormapId::Viridis);
    QVERIFY(local.local());
    const auto r = render(local);
    QVERIFY(r.layout.scatter.isEmpty());
    QVERIFY(r.layout.members.isEmpty());
    QVERIFY(!r.layout.matrix.matrix.isEmpty());
    const RoutingFigureData routed = routing_figure_data(*result, 0, 2, ColormapId::Viridis);
    QVERIFY(!routed.local());
  }

  void widget_steps_and_animates() {
    RoutingView view;
    view.resize(1100, 650);
    view.show();
    QVERIFY(!view.figureData());
    auto* play = view.findChild<QPushButton*>(QStringLiteral("routingPlay"));
    auto* slider = view.findChild<QSlider*>(QStringLiteral("routingStep"));
    QVERIFY(play && slider);
    QVERIFY(!play->isEnabled());

    view.setContext(context_for(routing_result()));
    QVERIFY(view.figureData());
    QCOMPARE(view.steps(), 5);
    QCOMPARE(view.step(), 4);  // the final centroids first
    QCOMPARE(slider->maximum(), 4);
    QVERIFY(play->isEnabled());
    const QImage final_step = view.grab().toImage();
    slider->setValue(0);
    QCOMPARE(view.step(), 0);
    const QImage first_step = view.grab().toImage();
    QVERIFY(first_step != final_step);

    view.play();
    QVERIFY(view.playing());
    QCOMPARE(play->text(), QStringLiteral("Pause"));
    QTRY_VERIFY_WITH_TIMEOUT(view.step() >= 1, 3 * RoutingView::kStepIntervalMs);
    QTRY_VERIFY_WITH_TIMEOUT(!view.playing(), 6 * RoutingView::kStepIntervalMs);  // stops at the end
    QCOMPARE(view.step(), 4);
    QCOMPARE(slider->value(), 4);

    // Another result of another variant: a message, nothing to play.
    view.setContext(context_for(run("softmax", nlohmann::json::object())));
    QVERIFY(!view.figureData());
    QVERIFY(view.message().contains(QStringLiteral("routing variant")));
    QVERIFY(!play->isEnabled());
  }

  // The view draws on the widget palette (light and dark themes). With ROUTING_VIEW_SNAPSHOTS
  // set to a folder, the grabs are saved there to look at.
  void follows_the_palette() {
    for (bool dark : {false, true}) {
      RoutingView view;
      QPalette palette = view.palette();
      const QColor base = dark ? QColor(30, 31, 34) : QColor(255, 255, 255);
      const QColor text = dark ? QColor(225, 226, 229) : QColor(32, 33, 36);
      palette.setColor(QPalette::Base, base);
      palette.setColor(QPalette::Text, text);
      view.setPalette(palette);
      view.resize(1300, 760);
      view.show();
      ViewContext c = context_for(run("routing", {{"kmeans_iters", 5}}, true,
                                      "routing sends every query to the keys of its nearest centroids and nowhere else"));
      c.highlighted_token = 3;
      view.setContext(c);
      QWidget* surface = view.canvas()->surface();
      const QImage image = surface->grab().toImage();
      QVERIFY(near(image.pixel(2, 2), base.rgb(), 1));
      const RoutingFigureLayout layout =
          compute_routing_layout(*view.figureData(), view.figureStyle(), view.canvas()->figureRect(), surface);
      int text_pixels = 0;  // the title is written in the palette's text colour
      for (int y = static_cast<int>(layout.title.top()); y < static_cast<int>(layout.title.bottom()); ++y)
        for (int x = static_cast<int>(layout.title.left()); x < static_cast<int>(layout.title.left() + 200); ++x)
          text_pixels += near(image.pixel(x, y), text.rgb(), 20);
      QVERIFY(text_pixels > 50);
      const QByteArray folder = qgetenv("ROUTING_VIEW_SNAPSHOTS");
      if (!folder.isEmpty()) view.grab().save(QString::fromLocal8Bit(folder) + (dark ? "/view_dark.png" : "/view_light.png"));
    }
  }

  void linked_highlighting() {
    RoutingView view;
    view.resize(1100, 650);
    view.show();
    const auto result = routing_result();
    view.setContext(context_for(result, 0, 0));
    view.setHighlightedToken(2);
    QCOMPARE(view.highlightedToken(), 2);
    QVERIFY(view.hoverText().contains(QStringLiteral("#2 'sat'")));
    // Hovering a query marker in the plane emits its token.
    QSignalSpy spy(&view, &TraceViewWidget::tokenHovered);
    QVERIFY(view.findChild<FigureCanvas*>(QStringLiteral("routingCanvas")) == view.canvas());
    QWidget* canvas = view.canvas()->surface();
    const RoutingFigureData& data = *view.figureData();
    const RoutingFigureLayout layout = compute_routing_layout(data, view.figureStyle(), view.canvas()->figureRect(), canvas);
    const RoutingHeadTrace& t = data.trace();
    const int target = 5;
    const QPointF at = layout.to_scatter(t.query_xy(target, 0), t.query_xy(target, 1));
    const int found = routing_token_at(layout, data, at);
    QVERIFY(found >= 0);  // this token, or another at the same spot
    QTest::mouseMove(canvas, at.toPoint());
    QTRY_VERIFY(!spy.isEmpty());
    QCOMPARE(spy.last().at(0).toInt(), routing_token_at(layout, data, QPointF(at.toPoint())));
    // A row of the matrix is its query token.
    const QPointF row = layout.matrix.cell_rect(7, 1).center();
    QCOMPARE(routing_token_at(layout, data, row), 7);
    QCOMPARE(routing_token_at(layout, data, layout.member_cell(1, 4).center()), 4);
  }

  // The exported figure shows the k-means step of its options: -1 and every step past the last
  // are the last; step 0 shows the seeded initial centroids.
  void figure_honours_the_step_option() {
    const ViewContext c = context_for(routing_result(), 1, 2);
    const auto with_step = [&](int step) { return render_view("clusters", view_context(c.result, 1, 2, {{"step", step}})); };
    const QImage last = with_step(-1);
    QCOMPARE(render_view("clusters", c), last);  // the default
    QCOMPARE(with_step(4), last);
    QCOMPARE(with_step(50), last);  // clamped to the result's last step
    QVERIFY(with_step(0) != last);
    EXPECT_ERROR(ParamError, with_step(-2), "view 'clusters' option step=-2 is not allowed; step: an integer in [-1, 50]");
    EXPECT_ERROR(ParamError, render_view("clusters", view_context(c.result, 1, 2, {{"round", 1}})),
                 "view 'clusters' has no option 'round'; its options: step");
  }

  void widget_view_options_round_trip() {
    RoutingView view;
    view.resize(1100, 650);
    QSignalSpy changed(&view, &TraceViewWidget::viewOptionsChanged);
    view.setViewOptions({{"step", 2}});  // before any result: kept for the first one
    QCOMPARE(changed.count(), 1);
    view.setContext(context_for(routing_result()));
    QCOMPARE(view.step(), 2);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"step", 2}}));
    view.findChild<QSlider*>(QStringLiteral("routingStep"))->setValue(4);  // the last: saved as -1
    QCOMPARE(changed.count(), 2);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"step", -1}}));
    // More k-means steps: the last stays the last.
    view.setContext(context_for(run("routing", {{"n_clusters", 3}, {"kmeans_iters", 7}, {"window", 5}})));
    QCOMPARE(view.step(), 7);
    view.setViewOptions(nlohmann::json::object());  // the defaults
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"step", -1}}));
    EXPECT_ERROR(ParamError, view.setViewOptions({{"step", "first"}}), "step: an integer in [-1, 50]");
  }

  void exports_every_format_and_the_numbers_read_back() {
    QTemporaryDir dir;
    const auto result = routing_result(true);
    const ViewSpec& view = view_spec("clusters");
    const ViewContext context = context_for(result, 1, 3);
    ExportOptions options;
    options.dpi = 100;
    for (const char* ext : {"png", "svg", "pdf", "csv", "json"}) {
      const QString path = dir.filePath(QStringLiteral("clusters.") + ext);
      export_view(view, context, path, options);
      QVERIFY2(QFileInfo(path).size() > 100, ext);
    }
    QVERIFY(!QImage(dir.filePath("clusters.png")).isNull());
    EXPECT_ERROR(ParamError, export_view(view, context, dir.filePath("x.npy"), options), "allowed extensions .png, .svg, .pdf, .csv, .json");

    const auto* extras = dynamic_cast<const RoutingExtras*>(result->layers[1].extras.get());
    QVERIFY(extras);
    const RoutingHeadTrace& t = extras->head(3);
    const int w = static_cast<int>(extras->settings().query_window), k = static_cast<int>(extras->settings().n_clusters);

    const auto rows = read_csv(dir.filePath("clusters.csv"));
    QCOMPARE(rows.front(), QStringList({"position", "token", "query_clusters", "key_clusters", "nearest_query_cluster",
                                        "nearest_key_cluster", "routed"}));
    QCOMPARE(static_cast<std::int64_t>(rows.size()) - 1, result->length());
    for (int i = 0; i < result->length(); ++i) {
      const QStringList& row = rows[static_cast<std::size_t>(i + 1)];
      QCOMPARE(row[0].toInt(), i);
      QCOMPARE(row[1], QString::fromStdString(result->tokens[static_cast<std::size_t>(i)].text));
      QStringList expected;
      for (int c = 0; c < k; ++c)
        for (int a = 0; a < w; ++a)
          if (t.query_members[static_cast<std::size_t>(c * w + a)] == i) expected << QString::number(c);
      QCOMPARE(row[2], expected.join(' '));
      QCOMPARE(row[4].toInt(), t.nearest_query_cluster(t.steps - 1, i));
      QCOMPARE(row[6], QString(t.query_averaged[static_cast<std::size_t>(i)] > 0 ? "1" : "0"));
    }

    QFile json_file(dir.filePath("clusters.json"));
    QVERIFY(json_file.open(QIODevice::ReadOnly));
    const nlohmann::json j = nlohmann::json::parse(json_file.readAll().toStdString());
    QCOMPARE(j["layer"].get<int>(), 1);
    QCOMPARE(j["head"].get<int>(), 3);
    QCOMPARE(j["routing"]["query_members"].size(), static_cast<std::size_t>(k));
    for (int c = 0; c < k; ++c)
      for (int a = 0; a < w; ++a)
        QCOMPARE(j["routing"]["query_members"][c][a].get<int>(), t.query_members[static_cast<std::size_t>(c * w + a)]);
    QCOMPARE(j["routing"]["unrouted_queries"].get<std::vector<int>>(),
             std::vector<int>(t.unrouted_queries.begin(), t.unrouted_queries.end()));
    const float c0 = t.centroids.data()[0];
    QCOMPARE(j["routing"]["centroids"][0][0][0].get<float>(), c0);
  }
};

QTEST_MAIN(TestRoutingView)
#include "test_routing_view.moc"
