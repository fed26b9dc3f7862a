// The "LSH buckets" view on the offscreen platform: which results it accepts, the colours it
// draws at positions computed from its public layout (each token's bucket colour in the angle
// view and in the sorted strip), the widget's controls, hover and linked highlighting, and the
// exports (PNG/SVG/PDF through the figure; CSV and JSON read back here and compared with the
// engine's numbers in the trace), and the view options (round, k, stage) in the widget and in
// the exported figure.
#include <QFile>
#include <QImage>
#include <QMouseEvent>
#include <QPushButton>
#include <QSignalSpy>
#include <QSlider>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <nlohmann/json.hpp>

#include "attention/reformer_lsh.h"
#include "core/error.h"
#include "figure_canvas.h"
#include "figures/lsh_figure.h"
#include "lsh_view.h"
#include "models/playground.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kText = "The quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun";

PlaygroundResultPtr run(const std::string& variant, nlohmann::json params, bool causal = false, const char* text = kText) {
  return run_playground(variant, std::move(params), causal, text);
}

PlaygroundResultPtr lsh_result(bool causal = false) {
  return run("reformer_lsh", {{"bucket_size", 4}, {"n_buckets", 4}, {"n_hashes", 2}}, causal);
}

const ViewSpec& buckets() { return view_spec("buckets"); }

ViewContext context_for(PlaygroundResultPtr result, int layer = 1, int head = 2) { return view_context(std::move(result), layer, head); }

bool close_colour(QRgb a, QColor b, int tolerance = 6) { return near_colour(a, b, tolerance); }

}  // namespace

class TestLshView : public QObject {
  Q_OBJECT

 private slots:
  void spec_is_registered() {
    const ViewSpec& v = buckets();
    QCOMPARE(v.title, QStringLiteral("LSH buckets"));
    QCOMPARE(v.requirement, QStringLiteral("needs the reformer_lsh variant"));
    QCOMPARE(v.data_extensions, (QStringList{QStringLiteral("csv"), QStringLiteral("json")}));
    QVERIFY(v.make_widget);
  }

  void accepts_only_reformer_lsh_results() {
    QVERIFY(buckets().accepts(*lsh_result()));
    QVERIFY(!buckets().accepts(*run("softmax", nlohmann::json::object())));
    EXPECT_ERROR(ParamError, check_view_context(buckets(), context_for(run("softmax", nlohmann::json::object()))),
                 "needs the reformer_lsh variant");
  }

  // Each token's point in the angle view and each sorted cell carry the colour of their bucket.
  void figure_draws_bucket_colours() {
    const PlaygroundResultPtr result = lsh_result();
    for (const FigureStyle& style : {FigureStyle::light(), FigureStyle::dark()}) {
      const ViewContext c = context_for(result);
      const PaintedFigure figure = buckets().figure(c, style);
      const double dpi = 150.0;
      const QImage image = render_figure_image(figure, dpi);
      QVERIFY(!image.isNull());
      const QString shots = qEnvironmentVariable("ATTNLAB_LSH_SHOTS");
      if (!shots.isEmpty()) image.save(QStringLiteral("%1/figure_%2.png").arg(shots, style.background.lightness() < 128 ? "dark" : "light"));
      QVERIFY(close_colour(image.pixel(2, 2), style.background, 1));
      const QImage device = measuring_device(dpi);
      const QRectF target(0, 0, image.width(), image.height());
      const LshFigureModel model(c.result, c.layer, c.head, c.colormap);
      const LshFigureOptions options;
      // Token 0 is drawn last of all points, so no other point covers its centre.
      const QPointF at = lsh_angle_point(model, options, style, target, &device, 0);
      const QColor expected = lsh_bucket_color(model.query_bucket(0, 0));
      QVERIFY2(close_colour(image.pixel(at.toPoint()), expected),
               qPrintable(describe(image.pixel(at.toPoint())) + " at token 0's point"));
      for (int s = 0; s < model.length(); ++s) {
        const QRectF cell = lsh_sorted_cell(model, options, style, target, &device, s);
        const QPoint probe(static_cast<int>(cell.left() + 0.2 * cell.width()), static_cast<int>(cell.bottom() - 0.15 * cell.height()));
        const QColor bucket = lsh_bucket_color(model.query_bucket(0, model.token_at(0, s)));
        QVERIFY2(close_colour(image.pixel(probe), bucket, 8),
                 qPrintable(QStringLiteral("sorted cell %1: %2").arg(s).arg(describe(image.pixel(probe)))));
      }
      // The sorted strip really is sorted by bucket.
      for (int s = 1; s < model.length(); ++s) QVERIFY(model.query_bucket(0, model.token_at(0, s - 1)) <= model.query_bucket(0, model.token_at(0, s)));
    }
  }

  void figure_marks_the_highlighted_token() {
    ViewContext c = context_for(lsh_result());
    const QImage plain = render_figure_image(buckets().figure(c, FigureStyle::light()), 72.0);
    c.highlighted_token = 3;
    const QImage marked = render_figure_image(buckets().figure(c, FigureStyle::light()), 72.0);
    QCOMPARE(plain.size(), marked.size());
    QVERIFY(plain != marked);
  }

  void causal_results_say_that_boundaries_move() {
    LshViewWidget widget;
    widget.setContext(context_for(lsh_result(true)));
    QVERIFY(widget.stageText().contains(QStringLiteral("move chunk boundaries")));
    widget.setContext(context_for(lsh_result(false)));
    QVERIFY(!widget.stageText().contains(QStringLiteral("move chunk boundaries")));
  }

  void widget_follows_context_and_controls() {
    LshViewWidget widget;
    widget.resize(1400, 900);
    widget.show();
    QVERIFY(QTest::qWaitForWindowExposed(&widget));
    QVERIFY(!widget.model());
    const PlaygroundResultPtr result = lsh_result();
    widget.setContext(context_for(result));
    QVERIFY(widget.model());
    QVERIFY(widget.message().isEmpty());
    const auto* x = dynamic_cast<const ReformerLshExtras*>(result->layers[1].extras.get());
    QVERIFY(x);
    auto* round_box = widget.findChild<QSpinBox*>(QStringLiteral("lshRound"));
    auto* k_slider = widget.findChild<QSlider*>(QStringLiteral("lshRecallK"));
    QVERIFY(round_box && k_slider);
    QCOMPARE(round_box->maximum(), 1);
    QCOMPARE(k_slider->maximum(), static_cast<int>(x->recall_k));
    QCOMPARE(k_slider->value(), kLshDefaultRecallK);
    // The k slider reads the engine's precomputed mean recall of this head.
    k_slider->setValue(5);
    QCOMPARE(widget.options().k, 5);
    QCOMPARE(widget.recallText(), QStringLiteral("recall@5: mean %1").arg(x->mean_recall.at(2, 4), 0, 'f', 3));
    round_box->setValue(1);
    QCOMPARE(widget.options().round, 1);
    // Step through: Rotate, Next ... Un-sort, Back; off returns to the overview.
    widget.setStepping(true);
    QCOMPARE(widget.options().stage, LshStage::Rotate);
    QVERIFY(widget.stageText().contains(QStringLiteral("Step 1 of 6")));
    auto* next = widget.findChild<QPushButton*>(QStringLiteral("lshNext"));
    auto* back = widget.findChild<QPushButton*>(QStringLiteral("lshBack"));
    QVERIFY(!back->isEnabled());
    for (int i = 0; i < 5; ++i) next->click();
    QCOMPARE(widget.options().stage, LshStage::Unsort);
    QVERIFY(!next->isEnabled());
    back->click();
    QCOMPARE(widget.options().stage, LshStage::Attend);
    QVERIFY(widget.stageText().contains(QStringLiteral("Attend")));
    // Every stage paints (set ATTNLAB_LSH_SHOTS to a folder to keep the pictures for a look).
    const QString shots = qEnvironmentVariable("ATTNLAB_LSH_SHOTS");
    for (LshStage stage : {LshStage::Overview, LshStage::Rotate, LshStage::Hash, LshStage::Sort, LshStage::Chunk,
                           LshStage::Attend, LshStage::Unsort}) {
      widget.setStage(stage);
      widget.setHighlightedToken(stage == LshStage::Overview ? -1 : 6);
      const QImage shot = widget.grab().toImage();
      QVERIFY(!shot.isNull());
      if (!shots.isEmpty()) shot.save(QStringLiteral("%1/widget_stage%2.png").arg(shots).arg(static_cast<int>(stage)));
    }
    widget.setHighlightedToken(-1);
    // Play starts a timer only while playing.
    auto* play = widget.findChild<QPushButton*>(QStringLiteral("lshPlay"));
    QVERIFY(!widget.playing());
    play->click();
    QVERIFY(widget.playing());
    play->click();
    QVERIFY(!widget.playing());
    widget.setStepping(false);
    QCOMPARE(widget.options().stage, LshStage::Overview);
    // Another layer / head changes the drawing.
    const QImage before = widget.canvas()->grab().toImage();
    widget.setContext(context_for(result, 0, 5));
    QCOMPARE(widget.model()->head(), 5);
    QVERIFY(widget.canvas()->grab().toImage() != before);
    // A result it cannot draw: a message instead of a figure.
    widget.setContext(context_for(run("softmax", nlohmann::json::object())));
    QVERIFY(!widget.model());
    QVERIFY(widget.message().contains(QStringLiteral("reformer_lsh")));
  }

  void hover_reports_the_token_and_highlight_follows() {
    LshViewWidget widget;
    widget.resize(1400, 900);
    widget.show();
    QVERIFY(QTest::qWaitForWindowExposed(&widget));
    const ViewContext c = context_for(lsh_result());
    widget.setContext(c);
    QSignalSpy spy(&widget, &TraceViewWidget::tokenHovered);
    QWidget* surface = widget.canvas()->surface();
    const FigureStyle style = widget.canvas()->figureStyle();
    const QRectF target = widget.canvas()->figureRect();
    const QPointF at = lsh_angle_point(*widget.model(), widget.options(), style, target, surface, 0);
    move_pointer(surface, at);
    QCOMPARE(spy.count(), 1);
    QCOMPARE(spy.takeFirst().at(0).toInt(), 0);
    QCOMPARE(widget.options().highlight, 0);
    // A token in the sorted strip: the one at sorted position 4.
    const QRectF cell = lsh_sorted_cell(*widget.model(), widget.options(), style, target, surface, 4);
    move_pointer(surface, cell.center());
    QCOMPARE(spy.count(), 1);
    QCOMPARE(spy.takeFirst().at(0).toInt(), widget.model()->token_at(0, 4));
    QEvent leave(QEvent::Leave);
    QCoreApplication::sendEvent(surface, &leave);
    QCOMPARE(spy.takeFirst().at(0).toInt(), -1);
    // Linked highlighting from elsewhere.
    widget.setHighlightedToken(7);
    QCOMPARE(widget.options().highlight, 7);
  }

  void exports_figures_and_data_formats() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const PlaygroundResultPtr result = lsh_result();
    const ViewContext c = context_for(result);
    const ViewSpec& v = buckets();
    for (const char* ext : {"png", "svg", "pdf"}) {
      const QString path = dir.filePath(QStringLiteral("lsh.") + ext);
      export_view(v, c, path, ExportOptions{});
      QFile file(path);
      QVERIFY(file.open(QIODevice::ReadOnly));
      QVERIFY(file.size() > 1000);
    }
    QVERIFY(!QImage(dir.filePath(QStringLiteral("lsh.png"))).isNull());

    const auto& x = dynamic_cast<const ReformerLshExtras&>(*result->layers[1].extras);
    const int L = static_cast<int>(x.length()), K = static_cast<int>(x.recall_k);
    // CSV: one line per token; buckets, sorted positions, chunks and recall read back.
    export_view(v, c, dir.filePath(QStringLiteral("lsh.csv")), ExportOptions{});
    const std::vector<QStringList> rows = read_csv(dir.filePath(QStringLiteral("lsh.csv")));
    QCOMPARE(static_cast<int>(rows.size()), L + 1);
    const QStringList& header = rows[0];
    QCOMPARE(header.mid(0, 4), (QStringList{"token", "position", "bucket_r0", "bucket_r1"}));
    QVERIFY(header.contains(QStringLiteral("recall@8")));
    QCOMPARE(header.size(), 2 + 3 * 2 + K);
    for (int i = 0; i < L; ++i) {
      const QStringList& row = rows[static_cast<std::size_t>(i + 1)];
      QCOMPARE(row[1].toInt(), i);
      for (int r = 0; r < 2; ++r) {
        QCOMPARE(row[header.indexOf(QStringLiteral("bucket_r%1").arg(r))].toInt(), x.query_buckets[x.index(2, r, i)]);
        QCOMPARE(row[header.indexOf(QStringLiteral("sorted_position_r%1").arg(r))].toInt(), x.query_rank[x.index(2, r, i)]);
        QCOMPARE(row[header.indexOf(QStringLiteral("chunk_r%1").arg(r))].toInt(), static_cast<int>(x.query_chunk(2, r, i)));
      }
      QCOMPARE(row[header.indexOf(QStringLiteral("recall@8"))].toFloat(), x.recall.at(2, i, 7));
    }
    // JSON: the head's trace.
    export_view(v, c, dir.filePath(QStringLiteral("lsh.json")), ExportOptions{});
    QFile json_file(dir.filePath(QStringLiteral("lsh.json")));
    QVERIFY(json_file.open(QIODevice::ReadOnly));
    const nlohmann::json j = nlohmann::json::parse(json_file.readAll().toStdString());
    QCOMPARE(j["format"].get<std::string>(), std::string("attnlab-lsh-buckets"));
    QCOMPARE(j["head"].get<int>(), 2);
    QCOMPARE(j["tokens"].size(), static_cast<std::size_t>(L));
    QCOMPARE(j["settings"]["n_buckets"].get<int>(), 4);
    for (int r = 0; r < 2; ++r)
      for (int i = 0; i < L; ++i) QCOMPARE(j["trace"]["query_buckets"][r][i].get<int>(), x.query_buckets[x.index(2, r, i)]);
    for (int k = 0; k < K; ++k) QCOMPARE(j["trace"]["mean_recall"][k].get<float>(), x.mean_recall.at(2, k));
    // Other extensions are refused with the allowed list.
    EXPECT_ERROR(ParamError, export_view(v, c, dir.filePath(QStringLiteral("lsh.npy")), ExportOptions{}), ".csv, .json");
  }

  // The exported figure draws the options it is given: another round, k or stage changes the
  // pixels; a round the result lacks and an unknown option are refused with the allowed ones.
  void figure_honours_view_options() {
    const PlaygroundResultPtr result = lsh_result();
    const QImage round0 = render_view("buckets", view_context(result, 1, 2, {{"round", 0}}));
    const QImage round1 = render_view("buckets", view_context(result, 1, 2, {{"round", 1}}));
    QCOMPARE(round0.size(), round1.size());
    QVERIFY(round0 != round1);
    QCOMPARE(render_view("buckets", view_context(result, 1, 2, nlohmann::json::object())), round0);  // the defaults
    QVERIFY(render_view("buckets", view_context(result, 1, 2, {{"k", 3}})) != round0);
    QVERIFY(render_view("buckets", view_context(result, 1, 2, {{"stage", "sort"}})) != round0);
    EXPECT_ERROR(ParamError, render_view("buckets", view_context(result, 1, 2, {{"round", 2}})),
                 "round=2 is out of range: this result has hash rounds 0..1 (n_hashes = 2)");
    EXPECT_ERROR(ParamError, render_view("buckets", view_context(result, 1, 2, {{"rounds", 1}})),
                 "view 'buckets' has no option 'rounds'; its options: round, k, stage");
    EXPECT_ERROR(ParamError, render_view("buckets", view_context(result, 1, 2, {{"stage", "shuffle"}})),
                 "view 'buckets' option stage=shuffle is not allowed; stage: one of overview, rotate, hash, sort, chunk, attend, unsort");
  }

  // The widget's options round-trip through viewOptions / setViewOptions, announce changes, and
  // an export with them draws what the widget draws.
  void widget_view_options_round_trip() {
    LshViewWidget widget;
    widget.resize(1400, 900);
    const ViewContext c = context_for(lsh_result());
    widget.setContext(c);
    QCOMPARE(widget.viewOptions(), (nlohmann::json{{"round", 0}, {"k", kLshDefaultRecallK}, {"stage", "overview"}}));
    QSignalSpy changed(&widget, &TraceViewWidget::viewOptionsChanged);
    const nlohmann::json chosen = {{"round", 1}, {"k", 3}, {"stage", "chunk"}};
    widget.setViewOptions(chosen);
    QCOMPARE(changed.count(), 1);
    QCOMPARE(widget.viewOptions(), chosen);
    QCOMPARE(widget.options().round, 1);
    QCOMPARE(widget.options().stage, LshStage::Chunk);
    QCOMPARE(widget.findChild<QSpinBox*>(QStringLiteral("lshRound"))->value(), 1);
    widget.findChild<QSlider*>(QStringLiteral("lshRecallK"))->setValue(4);  // the user
    QCOMPARE(changed.count(), 2);
    QCOMPARE(widget.viewOptions()["k"].get<int>(), 4);
    // A bad value changes nothing.
    EXPECT_ERROR(ParamError, widget.setViewOptions({{"round", 99}}), "round: an integer in [0, 15]");
    QCOMPARE(widget.viewOptions()["k"].get<int>(), 4);
    // A result with one round shows round 0 (the choice of round 1 is kept for the next one).
    widget.setContext(context_for(run("reformer_lsh", {{"bucket_size", 4}, {"n_hashes", 1}})));
    QCOMPARE(widget.viewOptions()["round"].get<int>(), 0);
    widget.setContext(c);
    QCOMPARE(widget.viewOptions()["round"].get<int>(), 1);
    nlohmann::json expected = chosen;
    expected["k"] = 4;
    QCOMPARE(widget.viewOptions(), expected);
  }

  // A long input still renders (image path of the matrices, thinned labels).
  void long_input_renders() {
    QString text;
    for (int i = 0; i < 300; ++i) text += QStringLiteral("w%1 ").arg(i % 37);
    const QByteArray utf8 = text.toUtf8();
    const PlaygroundResultPtr result = run("reformer_lsh", {{"bucket_size", 32}}, true, utf8.constData());
    const QImage image = render_figure_image(buckets().figure(context_for(result, 0, 0), FigureStyle::light()), 60.0);
    QVERIFY(!image.isNull());
  }
};

QTEST_MAIN(TestLshView)
#include "test_lsh_view.moc"
