// HeatmapView under Xvfb (Mesa llvmpipe): the pixels the shader writes are compared with
// Colormap's table computed on the CPU (an independent path), and zoom, hover, highlight, the
// 4096 x 4096 case and the texture-size limit are driven like a user would.
#include <QtTest>

#include <QCursor>
#include <QMouseEvent>
#include <QOffscreenSurface>
#include <QOpenGLContext>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>
#include <limits>

#include "colormap.h"
#include "heatmap_data.h"
#include "heatmap_view.h"

using namespace attnlab;

namespace {

constexpr int kTolerance = 3;  // per channel, 0..255

std::shared_ptr<HeatmapData> makeData(int rows, int cols, float vmin, float vmax) {
  auto data = std::make_shared<HeatmapData>();
  data->title = QStringLiteral("test");
  data->rows = rows;
  data->cols = cols;
  data->values.assign(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols), 0.0f);
  for (int r = 0; r < rows; ++r) data->row_labels << QStringLiteral("q%1").arg(r);
  for (int c = 0; c < cols; ++c) data->col_labels << QStringLiteral("k%1").arg(c);
  data->vmin = vmin;
  data->vmax = vmax;
  return data;
}

// A value in the middle of colormap bin `bin` of the scale [vmin, vmax], so rounding in the
// shader cannot move it to a neighbouring bin.
float binCentre(int bin, float vmin, float vmax) {
  return vmin + (static_cast<float>(bin) + 0.5f) / 256.0f * (vmax - vmin);
}

QRgb pixelAt(const QImage& image, QPointF logical) {
  const double dpr = image.devicePixelRatio();
  return image.pixel(static_cast<int>(std::floor(logical.x() * dpr)), static_cast<int>(std::floor(logical.y() * dpr)));
}

bool sameColour(QRgb a, QRgb b, int tolerance = kTolerance) {
  return std::abs(qRed(a) - qRed(b)) <= tolerance && std::abs(qGreen(a) - qGreen(b)) <= tolerance &&
         std::abs(qBlue(a) - qBlue(b)) <= tolerance;
}

QString describe(QRgb c) { return QStringLiteral("(%1, %2, %3)").arg(qRed(c)).arg(qGreen(c)).arg(qBlue(c)); }

void sendMouseMove(QWidget* widget, QPointF pos) {
  QMouseEvent event(QEvent::MouseMove, pos, widget->mapToGlobal(pos), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
  QApplication::sendEvent(widget, &event);
}

void sendClick(QWidget* widget, QPointF pos) {
  const QPointF global = widget->mapToGlobal(pos);
  QMouseEvent press(QEvent::MouseButtonPress, pos, global, Qt::LeftButton, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(widget, &press);
  QMouseEvent release(QEvent::MouseButtonRelease, pos, global, Qt::LeftButton, Qt::NoButton, Qt::NoModifier);
  QApplication::sendEvent(widget, &release);
}

// Twelve tokens with a plausible attention pattern (peaked, rows summing to 1), for screenshots.
std::shared_ptr<HeatmapData> exampleSentence() {
  const QStringList tokens = {QStringLiteral("The"), QStringLiteral("cat"), QStringLiteral("sat"), QStringLiteral("on"),
                              QStringLiteral("the"), QStringLiteral("mat"), QStringLiteral("because"),
                              QStringLiteral("it"), QStringLiteral("was"), QStringLiteral("extraordinarily"),
                              QStringLiteral("tired"), QStringLiteral(".")};
  const int n = static_cast<int>(tokens.size());
  auto data = makeData(n, n, 0.0f, 0.5f);
  data->title = QStringLiteral("softmax \u00b7 layer 1 \u00b7 head 3");
  data->row_labels = tokens;
  data->col_labels = tokens;
  for (int r = 0; r < n; ++r) {
    double sum = 0;
    std::vector<double> row(static_cast<std::size_t>(n));
    for (int c = 0; c < n; ++c) {
      const double score = -0.5 * std::abs(r - c) + ((r * 7 + c * 3) % 5) * 0.3 + (c == 1 && r > 6 ? 2.0 : 0.0);
      row[static_cast<std::size_t>(c)] = std::exp(score);
      sum += row[static_cast<std::size_t>(c)];
    }
    for (int c = 0; c < n; ++c) {
      data->values[static_cast<std::size_t>(r * n + c)] = static_cast<float>(row[static_cast<std::size_t>(c)] / sum);
    }
  }
  return data;
}

}  // namespace

class TestHeatmapView : public QObject {
  Q_OBJECT

 private:
  // Shows a view of the given size and waits until GL has drawn into it.
  static bool showView(HeatmapView& view, QSize size = {600, 500}) {
    view.resize(size);
    view.move(0, 0);
    view.show();
    return QTest::qWaitForWindowExposed(&view) && view.isValid();
  }

  // Compares every cell centre of `data` with the colormap table.
  static void checkCellColours(const HeatmapView& view, const QImage& image, const HeatmapData& data, ColormapId id) {
    const Colormap& map = Colormap::get(id);
    for (int r = 0; r < data.rows; ++r) {
      for (int c = 0; c < data.cols; ++c) {
        const QRgb expected = map.color(data.at(r, c), data.vmin, data.vmax);
        const QRgb actual = pixelAt(image, view.cellRect(r, c).center());
        QVERIFY2(sameColour(actual, expected), qPrintable(QStringLiteral("cell (%1, %2) value %3: got %4, expected %5")
                                                               .arg(r).arg(c).arg(static_cast<double>(data.at(r, c)))
                                                               .arg(describe(actual), describe(expected))));
      }
    }
  }

 private slots:
  void initTestCase() {
    QSurfaceFormat format;
    format.setVersion(3, 3);
    format.setProfile(QSurfaceFormat::CoreProfile);
    QOpenGLContext context;
    context.setFormat(format);
    if (!context.create() || context.format().version() < qMakePair(3, 3)) {
      QSKIP("No OpenGL 3.3 core context can be created on this display; run under xvfb-run with Mesa");
    }
    QOffscreenSurface surface;
    surface.setFormat(context.format());
    surface.create();
    if (!context.makeCurrent(&surface)) QSKIP("An OpenGL 3.3 context was created but cannot be made current");
    context.doneCurrent();
    QCOMPARE(HeatmapView::openGLUnavailableReason(), QString());  // agrees with the probe above
    // Keep the pointer away from the views so no stray hover draws a tooltip over the cells.
    QCursor::setPos(1590, 990);
  }

  void cellColoursMatchColormapTable() {
    HeatmapView view;
    QSignalSpy problems(&view, &HeatmapView::glProblem);
    QVERIFY(showView(view));
    auto data = makeData(4, 5, -1.0f, 3.0f);
    int bin = 3;
    for (float& v : data->values) {
      v = binCentre(bin, data->vmin, data->vmax);
      bin = (bin + 13) % 256;
    }
    data->values[1] = -7.0f;                                     // below the scale: first colour
    data->values[7] = 42.0f;                                     // above the scale: last colour
    data->values[12] = std::numeric_limits<float>::quiet_NaN();  // missing: mid grey
    view.setData(data);
    const QImage image = view.grabFramebuffer();
    QVERIFY(!image.isNull());
    checkCellColours(view, image, *data, ColormapId::Viridis);
    QCOMPARE(pixelAt(image, view.cellRect(0, 1).center()) & 0xffffff, Colormap::get(ColormapId::Viridis).table()[0] & 0xffffff);

    // Square cells, whole matrix inside the widget at zoom 1.
    const QRectF cell = view.cellRect(0, 0);
    QCOMPARE(cell.width(), cell.height());
    QVERIFY(QRectF(view.rect()).contains(view.plotRect()));
    QCOMPARE(view.plotRect(), QRectF(view.cellRect(0, 0).topLeft(), view.cellRect(3, 4).bottomRight()));
    QVERIFY(problems.isEmpty());
  }

  void colormapChangeRecoloursCells() {
    HeatmapView view;
    QVERIFY(showView(view));
    auto data = makeData(3, 3, 0.0f, 1.0f);
    for (std::size_t i = 0; i < data->values.size(); ++i) data->values[i] = binCentre(static_cast<int>(i * 29 % 256), 0.0f, 1.0f);
    view.setData(data);
    const QImage before = view.grabFramebuffer();
    checkCellColours(view, before, *data, ColormapId::Viridis);
    for (ColormapId id : {ColormapId::Magma, ColormapId::Cividis, ColormapId::Coolwarm}) {
      view.setColormap(id);
      QCOMPARE(view.colormap(), id);
      const QImage after = view.grabFramebuffer();
      checkCellColours(view, after, *data, id);
      QVERIFY(!sameColour(pixelAt(before, view.cellRect(1, 1).center()), pixelAt(after, view.cellRect(1, 1).center())));
    }
  }

  void zoomAtMagnifiesTheCellUnderTheCursor() {
    HeatmapView view;
    QVERIFY(showView(view));
    auto data = makeData(32, 32, 0.0f, 1.0f);
    for (std::size_t i = 0; i < data->values.size(); ++i) data->values[i] = binCentre(static_cast<int>(i * 37 % 256), 0.0f, 1.0f);
    view.setData(data);
    const QRectF before = view.cellRect(10, 20);
    const QPointF pos = before.center() + QPointF(before.width() * 0.2, -before.height() * 0.1);
    QCOMPARE(view.cellAt(pos), QPoint(10, 20));
    QCOMPARE(view.zoom(), 1.0);

    view.zoomAt(4.0, pos);
    QVERIFY(qFuzzyCompare(view.zoom(), 4.0));
    QCOMPARE(view.cellAt(pos), QPoint(10, 20));  // the point under the cursor stays put
    const QRectF after = view.cellRect(10, 20);
    QVERIFY(qFuzzyCompare(after.width(), 4.0 * before.width()));
    QVERIFY(after.contains(pos));

    // Pixels: the magnified cell is one colour over an area that spanned several cells before.
    const QImage image = view.grabFramebuffer();
    const QRgb expected = Colormap::get(ColormapId::Viridis).color(data->at(10, 20), 0.0f, 1.0f);
    const double reach = 1.4 * before.width();  // more than one old cell from the centre
    for (QPointF offset : {QPointF(0, 0), QPointF(reach, 0), QPointF(-reach, 0), QPointF(0, reach), QPointF(0, -reach)}) {
      QVERIFY2(sameColour(pixelAt(image, after.center() + offset), expected), qPrintable(describe(pixelAt(image, after.center() + offset))));
    }
  }

  void zoomAndPanAreClamped() {
    HeatmapView view;
    QVERIFY(showView(view));
    view.setData(makeData(32, 32, 0.0f, 1.0f));
    const QRectF fitted = view.plotRect();
    view.zoomAt(1e6, fitted.center());
    QVERIFY(view.cellRect(0, 0).width() <= 80.0 + 1e-9);
    QVERIFY(view.zoom() > 1.0);
    // A huge pan stops at the matrix edge: cell (0, 0) sits at the top-left of the plot.
    view.panBy(QPointF(1e5, 1e5));
    QCOMPARE(view.cellAt(view.plotRect().topLeft() + QPointF(1, 1)), QPoint(0, 0));
    view.panBy(QPointF(-1e6, -1e6));
    QCOMPARE(view.cellAt(view.plotRect().bottomRight() - QPointF(1, 1)), QPoint(31, 31));
    view.zoomAt(1e-6, fitted.center());
    QCOMPARE(view.zoom(), 1.0);
    QCOMPARE(view.plotRect(), fitted);
    view.zoomAt(3.0, fitted.center());
    view.resetView();
    QCOMPARE(view.plotRect(), fitted);
  }

  void wheelAndKeysZoom() {
    HeatmapView view;
    QVERIFY(showView(view));
    view.setData(makeData(16, 16, 0.0f, 1.0f));
    const QPointF pos = view.plotRect().center();
    QWheelEvent wheel(pos, view.mapToGlobal(pos), QPoint(), QPoint(0, 120), Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
    QApplication::sendEvent(&view, &wheel);
    QVERIFY(std::abs(view.zoom() - 1.15) < 1e-9);
    QTest::keyClick(&view, Qt::Key_Plus);
    QVERIFY(view.zoom() > 1.15 * 1.2);
    QTest::keyClick(&view, Qt::Key_0);
    QCOMPARE(view.zoom(), 1.0);
  }

  void hoverEmitsTokenHoveredAndShowsInspector() {
    HeatmapView view;
    QVERIFY(showView(view));
    auto data = makeData(6, 7, 0.0f, 1.0f);
    for (std::size_t i = 0; i < data->values.size(); ++i) data->values[i] = static_cast<float>(i) / 42.0f;
    view.setData(data);
    const QImage quiet = view.grabFramebuffer();
    QSignalSpy hovered(&view, &HeatmapView::tokenHovered);

    const QPointF pos = view.cellRect(2, 3).center();
    sendMouseMove(&view, pos);
    QCOMPARE(hovered.count(), 1);
    QCOMPARE(hovered.last().at(0).toInt(), 2);
    QCOMPARE(hovered.last().at(1).toInt(), 3);

    // The ImGui inspector is drawn inside the canvas, just below and right of the cursor.
    const QImage inspecting = view.grabFramebuffer();
    int changed = 0;
    for (int dy = 20; dy < 60; dy += 4) {
      for (int dx = 20; dx < 160; dx += 4) {
        const QPointF p = pos + QPointF(dx, dy);
        if (!sameColour(pixelAt(quiet, p), pixelAt(inspecting, p), 10)) ++changed;
      }
    }
    QVERIFY2(changed > 50, qPrintable(QStringLiteral("only %1 sampled pixels changed under the inspector").arg(changed)));

    sendMouseMove(&view, view.cellRect(5, 6).center());
    QCOMPARE(hovered.last().at(0).toInt(), 5);
    QCOMPARE(hovered.last().at(1).toInt(), 6);
    sendMouseMove(&view, QPointF(2, 2));  // outside the matrix
    QCOMPARE(hovered.last().at(0).toInt(), -1);
    QCOMPARE(hovered.last().at(1).toInt(), -1);
    sendMouseMove(&view, pos);
    QEvent leave(QEvent::Leave);
    QApplication::sendEvent(&view, &leave);
    QCOMPARE(hovered.last().at(0).toInt(), -1);
    // Once the cursor is gone the inspector is gone too.
    const QImage after = view.grabFramebuffer();
    QCOMPARE(pixelAt(after, pos + QPointF(60, 40)), pixelAt(quiet, pos + QPointF(60, 40)));
  }

  void clickEmitsCellClicked() {
    HeatmapView view;
    QVERIFY(showView(view));
    view.setData(makeData(5, 5, 0.0f, 1.0f));
    QSignalSpy clicked(&view, &HeatmapView::cellClicked);
    sendClick(&view, view.cellRect(4, 1).center());
    QCOMPARE(clicked.count(), 1);
    QCOMPARE(clicked.last().at(0).toInt(), 4);
    QCOMPARE(clicked.last().at(1).toInt(), 1);
  }

  void highlightOutlinesRowAndColumn() {
    HeatmapView view;
    QVERIFY(showView(view));
    auto data = makeData(6, 6, 0.0f, 1.0f);
    for (std::size_t i = 0; i < data->values.size(); ++i) data->values[i] = binCentre(static_cast<int>(i * 41 % 256), 0.0f, 1.0f);
    view.setData(data);
    const QImage plain = view.grabFramebuffer();
    view.setHighlightedToken(2);
    QCOMPARE(view.highlightedToken(), 2);
    const QImage marked = view.grabFramebuffer();
    const QRectF row_cell = view.cellRect(2, 4);
    const QRectF col_cell = view.cellRect(4, 2);
    // Borders of the row and of the column change colour...
    QVERIFY(!sameColour(pixelAt(plain, QPointF(row_cell.center().x(), row_cell.top())),
                        pixelAt(marked, QPointF(row_cell.center().x(), row_cell.top())), 20));
    QVERIFY(!sameColour(pixelAt(plain, QPointF(col_cell.left(), col_cell.center().y())),
                        pixelAt(marked, QPointF(col_cell.left(), col_cell.center().y())), 20));
    // ...their insides and other rows do not.
    QCOMPARE(pixelAt(marked, row_cell.center()), pixelAt(plain, row_cell.center()));
    QCOMPARE(pixelAt(marked, view.cellRect(4, 4).center()), pixelAt(plain, view.cellRect(4, 4).center()));
    view.setHighlightedToken(-1);
    const QImage cleared = view.grabFramebuffer();
    QCOMPARE(pixelAt(cleared, QPointF(row_cell.center().x(), row_cell.top())),
             pixelAt(plain, QPointF(row_cell.center().x(), row_cell.top())));
  }

  void noDataShowsAMessage() {
    HeatmapView view;
    QVERIFY(showView(view));
    view.setData(nullptr);
    QVERIFY(view.plotRect().isEmpty());
    QCOMPARE(view.cellAt(QPointF(300, 250)), QPoint(-1, -1));
    const QImage image = view.grabFramebuffer();
    const QRgb background = view.palette().color(QPalette::Base).rgb();
    int text_pixels = 0;
    const QPointF centre = QRectF(view.rect()).center();
    for (double dy = -30; dy < 30; dy += 1) {
      for (double dx = -200; dx < 200; dx += 1) {
        text_pixels += sameColour(pixelAt(image, centre + QPointF(dx, dy)), background, 30) ? 0 : 1;
      }
    }
    QVERIFY2(text_pixels > 50, "the 'no data' message is missing");
  }

  void largeMatrix4096Renders() {
    HeatmapView view;
    QVERIFY(showView(view));
    QSignalSpy problems(&view, &HeatmapView::glProblem);
    constexpr int n = 4096;
    auto data = makeData(n, n, 0.0f, 1.0f);
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < n; ++c) data->values[static_cast<std::size_t>(r) * n + c] = binCentre((r * 31 + c * 17) % 256, 0.0f, 1.0f);
    }
    view.setData(data);
    QVERIFY(!view.grabFramebuffer().isNull());
    QVERIFY2(problems.isEmpty(), problems.isEmpty() ? "" : qPrintable(problems.first().first().toString()));

    // Zoom in around one cell until it is large, then check its colour.
    const QPointF pos = view.plotRect().center();
    view.setMeasureFrameTime(true);
    std::vector<double> frame_ms;
    while (view.zoom() < view.maxZoom()) {
      view.zoomAt(1.15, pos);
      QCoreApplication::processEvents();
      frame_ms.push_back(view.lastFrameMs());
    }
    std::sort(frame_ms.begin(), frame_ms.end());
    // Informational only (a benchmark, not a test): paintGL incl. glFinish while zooming.
    qInfo("4096x4096 at %dx%d: %zu zoom frames, median %.2f ms, worst %.2f ms", view.width(), view.height(),
          frame_ms.size(), frame_ms[frame_ms.size() / 2], frame_ms.back());
    const QPoint cell = view.cellAt(pos);
    QVERIFY(cell.x() >= 0);
    const QImage image = view.grabFramebuffer();
    const QRgb expected = Colormap::get(ColormapId::Viridis).color(data->at(cell.x(), cell.y()), 0.0f, 1.0f);
    QVERIFY(sameColour(pixelAt(image, view.cellRect(cell.x(), cell.y()).center()), expected));
    QVERIFY(problems.isEmpty());
  }

  void matrixBeyondTextureLimitIsReported() {
    HeatmapView view;
    QVERIFY(showView(view));
    const int limit = view.maxTextureSize();
    QVERIFY(limit > 0);
    QSignalSpy problems(&view, &HeatmapView::glProblem);
    view.setData(makeData(1, limit + 1, 0.0f, 1.0f));
    QCOMPARE(problems.count(), 1);
    QVERIFY(problems.first().first().toString().contains(QString::number(limit)));
    QVERIFY(!view.grabFramebuffer().isNull());  // draws the message, does not crash
    QCOMPARE(problems.count(), 1);              // reported once, not once per frame
    QCOMPARE(view.cellAt(QPointF(300, 250)), QPoint(-1, -1));

    // A normal matrix afterwards draws normally again.
    auto data = makeData(2, 2, 0.0f, 1.0f);
    data->values = {binCentre(10, 0, 1), binCentre(100, 0, 1), binCentre(200, 0, 1), binCentre(250, 0, 1)};
    view.setData(data);
    checkCellColours(view, view.grabFramebuffer(), *data, ColormapId::Viridis);
  }

  // The twelve-token figure a class would see: colorbar, labels, inspector. Also writes
  // screenshots to look at when ATTNLAB_SCREENSHOT_DIR is set.
  void exampleFigureHasColorbarLabelsAndInspector() {
    const QString dir = qEnvironmentVariable("ATTNLAB_SCREENSHOT_DIR");
    for (bool dark : {false, true}) {
      HeatmapView view;
      if (dark) {
        QPalette palette;
        palette.setColor(QPalette::Base, QColor(30, 30, 34));
        palette.setColor(QPalette::Window, QColor(45, 45, 50));
        palette.setColor(QPalette::Text, QColor(230, 230, 230));
        palette.setColor(QPalette::WindowText, QColor(230, 230, 230));
        palette.setColor(QPalette::PlaceholderText, QColor(160, 160, 170));
        view.setPalette(palette);
      }
      QSignalSpy problems(&view, &HeatmapView::glProblem);
      QVERIFY(showView(view, {900, 700}));
      const auto data = exampleSentence();
      view.setData(data);
      view.setHighlightedToken(5);
      sendMouseMove(&view, view.cellRect(7, 1).center());
      const QImage image = view.grabFramebuffer();
      QVERIFY(problems.isEmpty());

      // The colorbar shows the colormap: maximum at the top, minimum at the bottom.
      const QRectF bar = view.colorbarRect();
      QVERIFY(bar.left() > view.plotRect().right() && bar.right() < view.width());
      const auto& table = Colormap::get(ColormapId::Viridis).table();
      QVERIFY(sameColour(pixelAt(image, QPointF(bar.center().x(), bar.top() + 2)), table[255], 8));
      QVERIFY(sameColour(pixelAt(image, QPointF(bar.center().x(), bar.bottom() - 2)), table[0], 8));

      // Every row label is drawn left of its row, in the text colour of the theme.
      const QRgb background = view.palette().color(QPalette::Base).rgb();
      for (int r = 0; r < data->rows; ++r) {
        const QRectF cell = view.cellRect(r, 0);
        int ink = 0;
        for (double x = cell.left() - 60; x < cell.left() - 2; x += 0.5) {
          for (double y = cell.center().y() - 8; y < cell.center().y() + 8; y += 0.5) {
            ink += sameColour(pixelAt(image, QPointF(x, y)), background, 40) ? 0 : 1;
          }
        }
        QVERIFY2(ink >= 2, qPrintable(QStringLiteral("row label %1 missing").arg(r)));
      }
      if (!dir.isEmpty()) {
        QVERIFY(image.save(dir + (dark ? QStringLiteral("/heatmap_view_dark.png") : QStringLiteral("/heatmap_view.png"))));
        view.zoomAt(2.5, view.cellRect(9, 9).center());
        sendMouseMove(&view, view.cellRect(9, 10).center());
        QVERIFY(view.grabFramebuffer().save(dir + (dark ? QStringLiteral("/heatmap_view_dark_zoom.png") : QStringLiteral("/heatmap_view_zoom.png"))));
      }
    }
    if (!dir.isEmpty()) {
      HeatmapView big;
      QVERIFY(showView(big, {900, 700}));
      auto data = makeData(512, 512, 0.0f, 1.0f);
      for (std::size_t i = 0; i < data->values.size(); ++i) data->values[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f;
      big.setData(data);
      QVERIFY(big.grabFramebuffer().save(dir + QStringLiteral("/heatmap_view_512.png")));
    }
  }
};

QTEST_MAIN(TestHeatmapView)
#include "test_heatmap_view.moc"
