// The "BigBird blocks" view on the offscreen platform: which results it accepts, the colours of
// its figure at cells found through the public layout (block types from the engine's trace
// mapped through the fixed palette; the receptive field cut at the slider's n), the widget
// following setContext, the slider and the hovered token, and every export read back with
// independent readers (QImage, an XML parser, nlohmann::json, read_npy, a CSV reader); the view
// option "layers" in the widget and in the exported figure.
#include <QFile>
#include <QImage>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "attention/bigbird.h"
#include "bigbird_view.h"
#include "core/error.h"
#include "core/npy.h"
#include "figure_canvas.h"
#include "figures/bigbird_figure.h"
#include "models/playground.h"
#include "test_support.h"
#include "view_test_support.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

const char* kText =
    "the quick brown fox jumps over the lazy dog while a small cat sleeps on the warm mat and birds sing above";

PlaygroundResultPtr run(const std::string& variant, nlohmann::json params, bool causal = false,
                        const std::string& text = kText) {
  return run_playground(variant, std::move(params), causal, text, 5);
}

const BigBirdExtras& extras_of(const ViewContext& c) { return *layer_extras<BigBirdExtras>(c); }

Rendered<BigBirdFigureLayout> render(const ViewContext& c, const FigureStyle& style, const BigBirdFigureOptions& options = {},
                                     double dpi = 100) {
  return render_with_layout(bigbird_painted_figure(c, style, options), dpi, compute_bigbird_layout, c, style);
}

}  // namespace

class TestBigBirdView : public QObject {
  Q_OBJECT

 private slots:
  void spec_accepts_only_bigbird() {
    const ViewSpec& spec = view_spec("blocks");
    QCOMPARE(spec.title, QStringLiteral("BigBird blocks"));
    QCOMPARE(spec.requirement, QStringLiteral("needs the bigbird variant"));
    QCOMPARE(spec.data_extensions, (QStringList{"csv", "json", "npy"}));
    QVERIFY(spec.make_widget);
    QVERIFY(spec.accepts(*run("bigbird", {{"block_size", 2}})));
    const PlaygroundResultPtr softmax = run("softmax", nlohmann::json::object());
    QVERIFY(!spec.accepts(*softmax));
    EXPECT_ERROR(ParamError, check_view_context(spec, view_context(softmax)), "needs the bigbird variant");
  }

  // Each cell of the block grid, of the token mask and of every head's small grid has the
  // colour of the block type the engine recorded.
  void figure_cells_show_block_types() {
    const ViewContext c = view_context(run("bigbird", {{"block_size", 2}, {"random_blocks", 2}}, true), 1, 3);
    const BigBirdExtras& e = extras_of(c);
    const FigureStyle style;
    const auto r = render(c, style);
    QVERIFY(!r.image.isNull());
    const std::int64_t nb = e.n_blocks(), L = e.length();
    QCOMPARE(r.layout.blocks, nb);
    int random_cells = 0;
    for (std::int64_t qb = 0; qb < nb; ++qb)
      for (std::int64_t kb = 0; kb < nb; ++kb) {
        const QColor expected = bigbird_block_color(e.block_type(3, qb, kb), style);
        random_cells += e.block_type(3, qb, kb) == BigBirdBlock::Random ? 1 : 0;
        const QRgb got = pixel_at(r.image, BigBirdFigureLayout::cell_centre(r.layout.block_grid, nb, qb, kb));
        QVERIFY2(near_colour(got, expected), qPrintable(QString("block (%1, %2): %3").arg(qb).arg(kb).arg(describe(got))));
        for (std::int64_t h = 0; h < e.heads(); ++h) {
          const QRgb small = pixel_at(r.image, BigBirdFigureLayout::cell_centre(r.layout.head_grids[static_cast<std::size_t>(h)], nb, qb, kb));
          QVERIFY(near_colour(small, bigbird_block_color(e.block_type(h, qb, kb), style)));
        }
      }
    QVERIFY(random_cells > 0);
    // Token mask: causal zeros (j > i) are "none"; visible keys take their block's colour.
    for (std::int64_t i = 0; i < L; i += 3)
      for (std::int64_t j = 0; j < L; j += 2) {
        const QColor expected = e.visible(3, i, j) ? bigbird_block_color(e.block_type(3, i / 2, j / 2), style)
                                                   : bigbird_block_color(BigBirdBlock::None, style);
        if (j > i) QVERIFY(!e.visible(3, i, j));
        const QRgb got = pixel_at(r.image, BigBirdFigureLayout::cell_centre(r.layout.token_mask, L, i, j));
        QVERIFY2(near_colour(got, expected), qPrintable(QString("token (%1, %2): %3").arg(i).arg(j).arg(describe(got))));
      }
  }

  // Window only (no globals, no random blocks) at block 1: key block kb is first reached after
  // |qb - kb| layers, so the slider's n decides which cells are coloured.
  void receptive_field_follows_layers() {
    const ViewContext c =
        view_context(run("bigbird", {{"block_size", 1}, {"global_blocks", 0}, {"random_blocks", 0}, {"window_blocks", 3}}));
    const BigBirdExtras& e = extras_of(c);
    const FigureStyle style;
    const std::int64_t nb = e.n_blocks();
    for (int n = 1; n <= 4; ++n) {
      const auto r = render(c, style, BigBirdFigureOptions{n});
      for (std::int64_t qb = 0; qb < nb; qb += 3)
        for (std::int64_t kb = 0; kb < nb; ++kb) {
          const auto distance = static_cast<int>(std::abs(qb - kb));
          const int first = distance == 0 ? 1 : distance;  // the block itself: one layer
          QCOMPARE(e.reachable(n, qb, kb), first <= n);
          const QColor expected = bigbird_reach_color(first <= n ? first : 0, c.colormap, style);
          const QRgb got = pixel_at(r.image, BigBirdFigureLayout::cell_centre(r.layout.receptive, nb, qb, kb));
          QVERIFY2(near_colour(got, expected),
                   qPrintable(QString("n=%1 cell (%2, %3): %4").arg(n).arg(qb).arg(kb).arg(describe(got))));
        }
    }
  }

  void dark_style_and_highlight() {
    ViewContext c = view_context(run("bigbird", {{"block_size", 2}}));
    const FigureStyle dark = FigureStyle::dark();
    const auto plain = render(c, dark);
    QVERIFY(near_colour(plain.image.pixel(1, 1), dark.background));
    const QColor none = bigbird_block_color(BigBirdBlock::None, dark);
    QVERIFY(none.lightness() < 80);  // "none" follows the dark background
    c.highlighted_token = 6;
    const auto marked = render(c, dark);
    QVERIFY(plain.image != marked.image);
    // The hovered token under a cell of the token mask's row 6 is token 6; a block grid row
    // gives the first token of its block.
    const std::int64_t L = extras_of(c).length(), nb = extras_of(c).n_blocks();
    QCOMPARE(marked.layout.token_at(BigBirdFigureLayout::cell_centre(marked.layout.token_mask, L, 6, 1), 2), 6);
    QCOMPARE(marked.layout.token_at(BigBirdFigureLayout::cell_centre(marked.layout.block_grid, nb, 4, 0), 2), 8);
    QCOMPARE(marked.layout.token_at(QPointF(1, 1), 2), -1);
  }

  void readable_from_5_to_512_tokens() {
    QString long_text;
    for (int i = 0; i < 512; ++i) long_text += QStringLiteral("w%1 ").arg(i % 37);
    for (const std::string& text : {std::string("one two three four five"), long_text.toStdString()}) {
      const ViewContext c = view_context(run("bigbird", nlohmann::json::object(), false, text));
      const PaintedFigure figure = view_spec("blocks").figure(c, FigureStyle{});
      QVERIFY(figure.size.width() > 300 && figure.size.width() < 2500);
      QVERIFY(figure.size.height() > 200 && figure.size.height() < 2000);
      const auto r = render(c, FigureStyle{}, {}, 72);
      QVERIFY(r.layout.block_grid.width() > 100);
      QVERIFY(r.layout.token_mask.width() > 100);
      QVERIFY(r.layout.heatmap.matrix.width() > 100);
      // No panel overlaps another.
      const std::vector<QRectF> panels = {r.layout.block_grid, r.layout.token_mask, r.layout.heatmap.matrix,
                                          r.layout.receptive};
      for (std::size_t a = 0; a < panels.size(); ++a)
        for (std::size_t b = a + 1; b < panels.size(); ++b) QVERIFY(!panels[a].intersects(panels[b]));
      QVERIFY(r.image.rect().contains(r.layout.summary.toAlignedRect()));
    }
  }

  void widget_follows_context_slider_and_hover() {
    BigBirdView view;
    view.resize(1400, 700);
    view.show();
    const ViewContext c = view_context(run("bigbird", {{"block_size", 2}}), 0, 0);
    view.setContext(c);
    QCoreApplication::processEvents();
    const QImage first = view.canvas()->grab().toImage();
    ViewContext other = c;
    other.head = 5;
    view.setContext(other);
    QCOMPARE(view.context().head, 5);
    const QImage second = view.canvas()->grab().toImage();
    QVERIFY(first != second);
    view.layersSlider()->setValue(1);
    QCOMPARE(view.receptiveLayers(), 1);
    QVERIFY(view.canvas()->grab().toImage() != second);

    // Hovering a token-mask cell reports its query token.
    QSignalSpy spy(&view, &TraceViewWidget::tokenHovered);
    const BigBirdFigureLayout layout = view.figureLayout();
    const QPointF at = BigBirdFigureLayout::cell_centre(layout.token_mask, extras_of(c).length(), 9, 2);
    QTest::mouseMove(view.canvas()->surface(), at.toPoint());
    QTRY_VERIFY(!spy.isEmpty());
    QCOMPARE(spy.last().at(0).toInt(), 9);
    QCOMPARE(view.context().highlighted_token, 9);

    // Another variant: the view says what it needs instead of drawing.
    view.setContext(view_context(run("softmax", nlohmann::json::object())));
    QVERIFY(!view.canvas()->hasFigure());
    QVERIFY(view.canvas()->message().contains(QStringLiteral("needs the bigbird variant")));
  }

  // The exported figure draws the receptive field at the depth its options give; the widget's
  // slider is that option.
  void receptive_layers_option() {
    const ViewContext c = view_context(run("bigbird", {{"block_size", 1}, {"global_blocks", 0}, {"random_blocks", 0}}));
    const QImage deepest = render_view("blocks", c);
    QCOMPARE(render_view("blocks", view_context(c.result, 0, 0, {{"layers", 4}})), deepest);
    QVERIFY(render_view("blocks", view_context(c.result, 0, 0, {{"layers", 1}})) != deepest);
    EXPECT_ERROR(ParamError, render_view("blocks", view_context(c.result, 0, 0, {{"layers", 5}})),
                 "view 'blocks' option layers=5 is not allowed; layers: an integer in [1, 4]");
    BigBirdView view;
    view.setContext(c);
    QSignalSpy changed(&view, &TraceViewWidget::viewOptionsChanged);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"layers", 4}}));
    view.setViewOptions({{"layers", 2}});
    QCOMPARE(view.receptiveLayers(), 2);
    QCOMPARE(view.layersSlider()->value(), 2);
    QCOMPARE(changed.count(), 1);
    view.layersSlider()->setValue(3);
    QCOMPARE(view.viewOptions(), (nlohmann::json{{"layers", 3}}));
    QCOMPARE(changed.count(), 2);
    EXPECT_ERROR(ParamError, view.setViewOptions({{"depth", 2}}), "view 'blocks' has no option 'depth'; its options: layers");
    QCOMPARE(view.receptiveLayers(), 3);
  }

  void exports_read_back() {
    const ViewContext c = view_context(run("bigbird", {{"block_size", 2}, {"random_blocks", 1}}), 2, 1);
    const BigBirdExtras& e = extras_of(c);
    QTemporaryDir dir;
    const auto path = [&](const char* name) { return dir.filePath(QString::fromLatin1(name)); };
    export_each("blocks", c, dir, {"f.png", "f.svg", "f.pdf", "d.json", "d.csv", "d.npy"});

    const QImage png(path("f.png"));
    QVERIFY(!png.isNull());
    const QSizeF points = bigbird_figure_size(c, FigureStyle{});
    QCOMPARE(png.width(), static_cast<int>(std::lround(points.width() * 150.0 / 72.0)));
    QVERIFY(svg_has_text(path("f.svg"), QStringLiteral("BigBird blocks")));
    QVERIFY(is_pdf(path("f.pdf")));

    const nlohmann::json j = read_json(path("d.json"));
    QCOMPARE(j.at("kind").get<std::string>(), std::string("bigbird"));
    QCOMPARE(j.at("layer").get<int>(), 2);
    QCOMPARE(j.at("block_size").get<std::int64_t>(), e.layout().block_size);
    QCOMPARE(j.at("tokens").size(), static_cast<std::size_t>(e.length()));
    for (std::int64_t h = 0; h < e.heads(); ++h)
      for (std::int64_t qb = 0; qb < e.n_blocks(); ++qb)
        for (std::int64_t kb = 0; kb < e.n_blocks(); ++kb)
          QCOMPARE(j.at("block_types")[h][qb][kb].get<int>(), static_cast<int>(e.block_type(h, qb, kb)));
    for (std::int64_t i = 0; i < e.length(); ++i) QCOMPARE(j.at("key_counts")[1][i].get<int>(), e.key_count(1, i));

    const Tensor types = read_npy(path("d.npy").toStdString());
    QCOMPARE(types.shape(), (Shape{e.heads(), e.n_blocks(), e.n_blocks()}));
    for (std::int64_t h = 0; h < e.heads(); ++h)
      for (std::int64_t qb = 0; qb < e.n_blocks(); ++qb)
        for (std::int64_t kb = 0; kb < e.n_blocks(); ++kb)
          QCOMPARE(types.at(h, qb, kb), static_cast<float>(e.block_type(h, qb, kb)));

    const auto rows = read_csv(path("d.csv"));
    const std::int64_t L = e.length();
    QCOMPARE(static_cast<std::int64_t>(rows.size()), L * L + 1);
    QCOMPARE(rows[0].front(), QStringLiteral("query_index"));
    const Tensor& weights = c.result->layers[2].weights;
    for (std::size_t line = 1; line < rows.size(); ++line) {
      const auto& row = rows[line];
      QCOMPARE(row.size(), qsizetype{9});
      const int i = row[0].toInt(), k = row[3].toInt();
      QCOMPARE(row[6], QString::fromLatin1(bigbird_block_name(e.block_type(1, i / 2, k / 2)).data()));
      QCOMPARE(row[7] == QLatin1String("1"), e.visible(1, i, k));
      QCOMPARE(parse_float(row[8]), weights.at(1, i, k));
    }
    EXPECT_ERROR(ParamError, export_view(view_spec("blocks"), c, path("d.txt"), ExportOptions{}), ".npy");
  }
};

QTEST_MAIN(TestBigBirdView)
#include "test_bigbird_view.moc"
