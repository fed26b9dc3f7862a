// The QPainter heatmap figure and its export, on the offscreen platform.
//
// Colours are checked against the colormap table itself (Colormap::color), at cell centres found
// through the public layout; files are read back with independent readers (QImage, an XML
// parser, read_npy, a small CSV reader written here).
#include <QFile>
#include <QFontMetricsF>
#include <QImage>
#include <QPainter>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QXmlStreamReader>
#include <QtTest>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <random>

#include "core/error.h"
#include "core/npy.h"
#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"

using namespace attnlab;

namespace {

HeatmapData small_matrix() {
  HeatmapData data;
  data.title = QStringLiteral("test · 5 x 5");
  data.rows = 5;
  data.cols = 5;
  for (int i = 0; i < 25; ++i) data.values.push_back(static_cast<float>(i) / 24.0f);
  data.row_labels = {"alpha", "beta", "gamma", "delta", "epsilon"};
  data.col_labels = {"one", "two", "three", "four", "five"};
  return data;
}

// Rows of softmax weights over seeded random scores, with a bump near the diagonal.
HeatmapData attention_like(const QStringList& tokens, std::uint32_t seed) {
  HeatmapData data;
  const int n = static_cast<int>(tokens.size());
  data.rows = n;
  data.cols = n;
  data.row_labels = tokens;
  data.col_labels = tokens;
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  data.values.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    std::vector<float> row(static_cast<std::size_t>(n));
    float sum = 0.0f;
    for (int c = 0; c < n; ++c) {
      const float score = noise(rng) + (std::abs(r - c) <= 1 ? 2.5f : 0.0f);
      row[static_cast<std::size_t>(c)] = std::exp(score);
      sum += row[static_cast<std::size_t>(c)];
    }
    for (int c = 0; c < n; ++c)
      data.values[static_cast<std::size_t>(r * n + c)] = row[static_cast<std::size_t>(c)] / sum;
  }
  return data;
}

bool near_colour(QRgb actual, QRgb expected, int tolerance) {
  return std::abs(qRed(actual) - qRed(expected)) <= tolerance &&
         std::abs(qGreen(actual) - qGreen(expected)) <= tolerance &&
         std::abs(qBlue(actual) - qBlue(expected)) <= tolerance;
}

QString describe(QRgb c) { return QStringLiteral("(%1, %2, %3)").arg(qRed(c)).arg(qGreen(c)).arg(qBlue(c)); }

QRgb pixel_at(const QImage& image, const QPointF& p) {
  return image.pixel(static_cast<int>(std::floor(p.x())), static_cast<int>(std::floor(p.y())));
}

// Checks the pixel at the centre of each listed cell against the colormap table.
void check_cells(const QImage& image, const HeatmapData& data, const FigureStyle& style,
                 const std::vector<std::pair<int, int>>& cells) {
  const HeatmapFigureLayout layout = compute_heatmap_layout(data, style, QRectF(image.rect()), &image);
  QVERIFY(layout.cell > 1.0);
  const Colormap& map = Colormap::get(data.colormap);
  for (auto [r, c] : cells) {
    const QRgb actual = pixel_at(image, layout.cell_rect(r, c).center());
    const QRgb expected = map.color(data.at(r, c), data.vmin, data.vmax);
    QVERIFY2(
        near_colour(actual, expected, 2),
        qPrintable(
            QStringLiteral("cell (%1, %2): %3, expected %4").arg(r).arg(c).arg(describe(actual), describe(expected))));
  }
}

// Counts pixels in `area` that differ clearly from the background: drawn text or lines.
int ink_pixels(const QImage& image, const QRectF& area, QColor background) {
  const QRect box = area.toAlignedRect().intersected(image.rect());
  int count = 0;
  for (int y = box.top(); y <= box.bottom(); ++y) {
    for (int x = box.left(); x <= box.right(); ++x) {
      if (!near_colour(image.pixel(x, y), background.rgb(), 40)) ++count;
    }
  }
  return count;
}

QByteArray read_all(const QString& path) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) return {};
  return file.readAll();
}

bool write_all(const QString& path, const QByteArray& bytes) {
  QFile file(path);
  return file.open(QIODevice::WriteOnly) && file.write(bytes) == bytes.size();
}

// RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks.
std::vector<std::vector<QString>> parse_csv(const QByteArray& bytes) {
  const QString text = QString::fromUtf8(bytes);
  std::vector<std::vector<QString>> rows(1);
  QString field;
  bool quoted = false;
  for (qsizetype i = 0; i < text.size(); ++i) {
    const QChar ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      rows.back().push_back(field);
      field.clear();
    } else if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      rows.back().push_back(field);
      field.clear();
      rows.emplace_back();
      ++i;
    } else {
      field += ch;
    }
  }
  if (!field.isEmpty() || !rows.back().empty()) rows.back().push_back(field);
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

bool parse_float(const QString& text, float& out) {
  const QByteArray bytes = text.toLatin1();
  const auto result = std::from_chars(bytes.data(), bytes.data() + bytes.size(), out);
  return result.ec == std::errc() && result.ptr == bytes.data() + bytes.size();
}

template <typename E, typename F>
QString expect_throw(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return QString::fromStdString(e.what());
  } catch (const std::exception& e) {
    return QStringLiteral("WRONG TYPE: ") + QString::fromStdString(e.what());
  }
  return QStringLiteral("NO THROW");
}

}  // namespace

class TestFigures : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { QVERIFY(dir_.isValid()); }

  void small_matrix_cells_have_colormap_colours() {
    const HeatmapData data = small_matrix();
    const FigureStyle style;
    const QImage image = render_heatmap_image(data, style, 150);
    QVERIFY(!image.isNull());
    std::vector<std::pair<int, int>> all;
    for (int r = 0; r < 5; ++r)
      for (int c = 0; c < 5; ++c) all.emplace_back(r, c);
    check_cells(image, data, style, all);
  }

  void other_colormap_and_range() {
    HeatmapData data = small_matrix();
    data.colormap = ColormapId::Coolwarm;
    data.vmin = -0.5f;
    data.vmax = 0.5f;
    for (float& v : data.values) v -= 0.5f;
    const FigureStyle style = FigureStyle::dark();
    const QImage image = render_heatmap_image(data, style, 96);
    check_cells(image, data, style, {{0, 0}, {2, 2}, {4, 4}, {1, 3}});
    QVERIFY(near_colour(image.pixel(1, 1), style.background.rgb(), 0));
  }

  void colorbar_runs_from_vmax_at_top_to_vmin_at_bottom() {
    const HeatmapData data = small_matrix();
    const FigureStyle style;
    const QImage image = render_heatmap_image(data, style, 150);
    const HeatmapFigureLayout layout = compute_heatmap_layout(data, style, QRectF(image.rect()), &image);
    QVERIFY(!layout.colorbar.isEmpty());
    const Colormap& map = Colormap::get(data.colormap);
    const double inset = 2.5;  // past the frame line
    const QRgb top = pixel_at(image, QPointF(layout.colorbar.center().x(), layout.colorbar.top() + inset));
    const QRgb bottom = pixel_at(image, QPointF(layout.colorbar.center().x(), layout.colorbar.bottom() - inset));
    const QRgb middle = pixel_at(image, layout.colorbar.center());
    QVERIFY2(near_colour(top, map.color(data.vmax, data.vmin, data.vmax), 3), qPrintable(describe(top)));
    QVERIFY2(near_colour(bottom, map.color(data.vmin, data.vmin, data.vmax), 3), qPrintable(describe(bottom)));
    QVERIFY2(near_colour(middle, map.color(0.5f), 3), qPrintable(describe(middle)));
    // Tick labels and the value label stand to the right of the bar.
    const QRectF right_of_bar(layout.colorbar.right() + 2, layout.colorbar.top(),
                              layout.figure.right() - layout.colorbar.right() - 2, layout.colorbar.height());
    QVERIFY(ink_pixels(image, right_of_bar, style.background) > 50);
  }

  void without_colorbar_there_is_none() {
    const HeatmapData data = small_matrix();
    FigureStyle style;
    style.show_colorbar = false;
    const QSizeF with = heatmap_figure_size(data, FigureStyle{});
    const QSizeF without = heatmap_figure_size(data, style);
    QVERIFY(without.width() < with.width());
    const QImage image = render_heatmap_image(data, style, 100);
    const HeatmapFigureLayout layout = compute_heatmap_layout(data, style, QRectF(image.rect()), &image);
    QVERIFY(layout.colorbar.isEmpty());
    check_cells(image, data, style, {{0, 0}, {4, 4}});
  }

  void labels_are_drawn_and_everything_fits() {
    const HeatmapData data = small_matrix();
    const FigureStyle style;
    const QImage image = render_heatmap_image(data, style, 150);
    const HeatmapFigureLayout layout = compute_heatmap_layout(data, style, QRectF(image.rect()), &image);
    const QRectF inside = layout.figure;
    for (const QRectF& part : {layout.matrix, layout.row_labels, layout.col_labels, layout.colorbar, layout.title}) {
      QVERIFY2(inside.contains(part), qPrintable(QStringLiteral("part %1,%2 %3x%4 leaves the figure")
                                                     .arg(part.x())
                                                     .arg(part.y())
                                                     .arg(part.width())
                                                     .arg(part.height())));
    }
    QCOMPARE(layout.matrix.width(), layout.matrix.height());  // square cells, 5 x 5
    QVERIFY(ink_pixels(image, layout.row_labels, style.background) > 100);
    QVERIFY(ink_pixels(image, layout.col_labels, style.background) > 100);
    QVERIFY(ink_pixels(image, layout.title, style.background) > 100);
    QCOMPARE(layout.row_label_stride, 1);
  }

  void highlight_outlines_row_and_column() {
    const HeatmapData data = small_matrix();
    FigureStyle style;
    style.highlight_index = 2;
    const QImage image = render_heatmap_image(data, style, 150);
    const HeatmapFigureLayout layout = compute_heatmap_layout(data, style, QRectF(image.rect()), &image);
    const QColor outline = Colormap::contrasting(Colormap::get(data.colormap).color(0.0f));
    // The top edge of row 2, in the middle of column 0, carries the outline colour...
    const QRectF cell = layout.cell_rect(2, 0);
    const QRgb edge = pixel_at(image, QPointF(cell.center().x(), cell.top()));
    QVERIFY2(near_colour(edge, outline.rgb(), 40), qPrintable(describe(edge)));
    // ...and the centres still show the data.
    check_cells(image, data, style, {{2, 0}, {2, 2}, {0, 2}, {4, 4}});
  }

  void large_matrix_goes_through_the_image_path() {
    const int n = 300;
    HeatmapData data;
    data.rows = n;
    data.cols = n;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (int i = 0; i < n * n; ++i) data.values.push_back(uniform(rng));
    for (int i = 0; i < n; ++i) {
      data.row_labels << QStringLiteral("q%1").arg(i);
      data.col_labels << QStringLiteral("k%1").arg(i);
    }
    const FigureStyle style;
    const QImage image = render_heatmap_image(data, style, 150);
    QVERIFY(!image.isNull());
    std::vector<std::pair<int, int>> cells;
    for (int i = 0; i < 60; ++i) cells.emplace_back(static_cast<int>(rng() % n), static_cast<int>(rng() % n));
    cells.emplace_back(0, 0);
    cells.emplace_back(n - 1, n - 1);
    check_cells(image, data, style, cells);

    // Labels are thinned so that neighbours are at least a line apart.
    const HeatmapFigureLayout layout = compute_heatmap_layout(data, style, QRectF(image.rect()), &image);
    const double line = QFontMetricsF(style.font, &image).height();
    QVERIFY(layout.row_label_stride > 1);
    QVERIFY(layout.row_label_stride * layout.cell >= line);
    QVERIFY((layout.row_label_stride - 1) * layout.cell < 1.1 * line);  // but not thinned more than needed
  }

  void natural_size_grows_with_tokens_within_bounds() {
    const FigureStyle style;
    QStringList few, many, huge;
    for (int i = 0; i < 12; ++i) few << QStringLiteral("w%1").arg(i);
    for (int i = 0; i < 200; ++i) many << QStringLiteral("w%1").arg(i);
    for (int i = 0; i < 2000; ++i) huge << QStringLiteral("w%1").arg(i);
    const QSizeF s12 = heatmap_figure_size(attention_like(few, 1), style);
    const QSizeF s200 = heatmap_figure_size(attention_like(many, 1), style);
    HeatmapData big;
    big.rows = big.cols = 2000;  // size only: values are not needed to measure
    big.row_labels = big.col_labels = huge;
    const QSizeF s2000 = heatmap_figure_size(big, style);
    QVERIFY(s12.width() >= 300 && s12.height() >= 300);
    QVERIFY(s200.width() > s12.width());
    QVERIFY(s2000.width() < 1400 + 400);              // the matrix is capped
    QCOMPARE(s200.width(), std::ceil(s200.width()));  // whole points
  }

  void png_scales_with_dpi() {
    const HeatmapData data = small_matrix();
    const QString low = dir_.filePath("low.png");
    const QString high = dir_.filePath("high.png");
    ExportOptions options;
    options.dpi = 100;
    export_heatmap(data, low, options);
    options.dpi = 300;
    export_heatmap(data, high, options);
    const QImage a(low);
    const QImage b(high);
    QVERIFY(!a.isNull() && !b.isNull());
    const QSizeF points = heatmap_figure_size(data, options.style);
    QVERIFY(std::abs(a.width() - points.width() * 100 / 72) <= 1);
    QVERIFY(std::abs(b.height() - points.height() * 300 / 72) <= 1);
    QVERIFY2(
        std::abs(b.width() - 3 * a.width()) <= 2 && std::abs(b.height() - 3 * a.height()) <= 2,
        qPrintable(QStringLiteral("%1x%2 vs %3x%4").arg(a.width()).arg(a.height()).arg(b.width()).arg(b.height())));
    QCOMPARE(a.dotsPerMeterX(), static_cast<int>(std::lround(100 / 0.0254)));
    QCOMPARE(b.dotsPerMeterY(), static_cast<int>(std::lround(300 / 0.0254)));
    check_cells(b, data, options.style, {{0, 0}, {3, 1}, {4, 4}});
  }

  void svg_is_xml_with_size_and_labels() {
    HeatmapData data = small_matrix();
    data.row_labels[1] = QStringLiteral("<b&\"q\">");  // must be escaped, then read back intact
    data.col_labels[4] = QStringLiteral("bell\x07");   // no control characters may reach the XML
    const QString path = dir_.filePath("figure.svg");
    export_heatmap(data, path);
    QXmlStreamReader xml(read_all(path));
    QString root, width, height, view_box;
    QString text;
    int rects = 0;
    while (!xml.atEnd()) {
      xml.readNext();
      if (xml.isStartElement()) {
        if (root.isEmpty()) {
          root = xml.name().toString();
          width = xml.attributes().value("width").toString();
          height = xml.attributes().value("height").toString();
          view_box = xml.attributes().value("viewBox").toString();
        }
        if (xml.name() == QLatin1String("rect")) ++rects;
      } else if (xml.isCharacters()) {
        text += xml.text().toString() + QLatin1Char('\n');
      }
    }
    QVERIFY2(!xml.hasError(), qPrintable(xml.errorString()));
    QCOMPARE(root, QStringLiteral("svg"));
    QVERIFY(!width.isEmpty() && !height.isEmpty());
    // Physical size: the figure's points in millimetres.
    const QSizeF points = heatmap_figure_size(data, FigureStyle{});
    QVERIFY2(std::abs(width.chopped(2).toDouble() - points.width() * 25.4 / 72) < 0.5, qPrintable(width));
    QVERIFY(view_box.split(' ', Qt::SkipEmptyParts).size() == 4);
    for (const QString& label : data.row_labels + data.col_labels.mid(0, 4)) {
      QVERIFY2(text.contains(label), qPrintable(label));
    }
    QVERIFY(text.contains(QStringLiteral("bell") + QChar(0x2407)));
    QVERIFY(text.contains(data.value_label));
    QVERIFY2(rects >= 25, qPrintable(QString::number(rects)));  // cells are vector rectangles
  }

  // Viewers smooth embedded images; the SVG gets the matrix enlarged by a whole factor so that
  // the smoothing cannot blend neighbouring cells.
  void svg_embeds_large_matrices_as_enlarged_images() {
    QStringList tokens;
    for (int i = 0; i < 100; ++i) tokens << QStringLiteral("t%1").arg(i);
    const HeatmapData data = attention_like(tokens, 2);
    const QString path = dir_.filePath("large.svg");
    export_heatmap(data, path);
    QXmlStreamReader xml(read_all(path));
    QImage embedded;
    while (!xml.atEnd()) {
      if (xml.readNext() == QXmlStreamReader::StartElement && xml.name() == QLatin1String("image")) {
        const QString href = xml.attributes().value("http://www.w3.org/1999/xlink", "href").toString();
        const qsizetype comma = href.indexOf(',');
        QVERIFY(href.startsWith("data:image/png;base64,"));
        embedded = QImage::fromData(QByteArray::fromBase64(href.mid(comma + 1).toLatin1()), "PNG");
      }
    }
    QVERIFY(!xml.hasError());
    QVERIFY(!embedded.isNull());
    QVERIFY2(embedded.width() >= 1000 && embedded.width() % 100 == 0 && embedded.height() == embedded.width(),
             qPrintable(QStringLiteral("%1 x %2").arg(embedded.width()).arg(embedded.height())));
    const int factor = embedded.width() / 100;
    const Colormap& map = Colormap::get(data.colormap);
    for (auto [r, c] : {std::pair{0, 0}, {17, 42}, {99, 99}}) {
      const QRgb expected = map.color(data.at(r, c), data.vmin, data.vmax);
      QVERIFY(near_colour(embedded.pixel(c * factor + factor / 2, r * factor + factor / 2), expected, 0));
    }
  }

  void pdf_has_a_page_of_the_figure_size() {
    const HeatmapData data = small_matrix();
    const QString path = dir_.filePath("figure.pdf");
    export_heatmap(data, path);
    const QByteArray bytes = read_all(path);
    QVERIFY(bytes.startsWith("%PDF-"));
    QVERIFY(bytes.size() > 2000);
    QVERIFY(bytes.trimmed().endsWith("%%EOF"));
    const QRegularExpression media(QStringLiteral("/MediaBox \\[\\s*0 0 ([0-9.]+) ([0-9.]+)\\s*\\]"));
    const QRegularExpressionMatch match = media.match(QString::fromLatin1(bytes));
    QVERIFY(match.hasMatch());
    const QSizeF points = heatmap_figure_size(data, FigureStyle{});
    QVERIFY2(std::abs(match.captured(1).toDouble() - points.width()) < 1.0, qPrintable(match.captured(0)));
    QVERIFY2(std::abs(match.captured(2).toDouble() - points.height()) < 1.0, qPrintable(match.captured(0)));
  }

  void csv_round_trips_labels_and_floats_bit_exactly() {
    HeatmapData data;
    data.rows = 3;
    data.cols = 4;
    data.row_labels = {"plain", "with, comma", "say \"hi\""};
    data.col_labels = {"▁Zürich", "a\nb", "\"", ","};
    data.values = {0.1f,          1.0f / 3.0f, 1e-30f,      1e-45f,           -0.0f, 123456.789f,
                   3.4028235e38f, 0.5f,        2.0f / 7.0f, -1.17549435e-38f, 7.0f,  0.99999994f};
    const QString path = dir_.filePath("data.csv");
    export_heatmap(data, path);
    const auto table = parse_csv(read_all(path));
    QCOMPARE(static_cast<int>(table.size()), data.rows + 1);
    QCOMPARE(static_cast<int>(table[0].size()), data.cols + 1);
    QCOMPARE(table[0][0], QStringLiteral("query\\key"));
    for (int c = 0; c < data.cols; ++c) QCOMPARE(table[0][static_cast<std::size_t>(c + 1)], data.col_labels[c]);
    for (int r = 0; r < data.rows; ++r) {
      const auto& row = table[static_cast<std::size_t>(r + 1)];
      QCOMPARE(static_cast<int>(row.size()), data.cols + 1);
      QCOMPARE(row[0], data.row_labels[r]);
      for (int c = 0; c < data.cols; ++c) {
        float value = 0.0f;
        QVERIFY2(parse_float(row[static_cast<std::size_t>(c + 1)], value),
                 qPrintable(row[static_cast<std::size_t>(c + 1)]));
        QCOMPARE(std::bit_cast<std::uint32_t>(value), std::bit_cast<std::uint32_t>(data.at(r, c)));
      }
    }
    QCOMPARE(read_all(path), heatmap_csv(data));
  }

  void npy_round_trips() {
    const HeatmapData data = small_matrix();
    const QString path = dir_.filePath("data.npy");
    try {
      export_heatmap(data, path);
    } catch (const Error& e) {
      if (QString::fromStdString(e.what()).contains("not implemented")) QSKIP("engine/core/npy.cpp is still a stub");
      throw;
    }
    const Tensor back = read_npy(QFile::encodeName(path).toStdString());
    QCOMPARE(back.rank(), 2);
    QCOMPARE(back.dim(0), std::int64_t{5});
    QCOMPARE(back.dim(1), std::int64_t{5});
    for (int r = 0; r < 5; ++r)
      for (int c = 0; c < 5; ++c) QCOMPARE(back.at(r, c), data.at(r, c));
  }

  void format_from_extension() {
    QCOMPARE(export_format_for_path("a/b.PNG"), ExportFormat::Png);
    QCOMPARE(export_format_for_path("x.svg"), ExportFormat::Svg);
    QCOMPARE(export_format_for_path("x.Pdf"), ExportFormat::Pdf);
    QCOMPARE(export_format_for_path("x.npy"), ExportFormat::Npy);
    QCOMPARE(export_format_for_path("x.csv"), ExportFormat::Csv);
    const QString message = expect_throw<ParamError>([] { export_format_for_path("x.jpg"); });
    QVERIFY2(message.contains(".jpg") && message.contains(".png") && message.contains(".csv"), qPrintable(message));
    QVERIFY(!expect_throw<ParamError>([] { export_format_for_path("noext"); }).startsWith("NO THROW"));
    QCOMPARE(export_name_filters().size(), 5);
    QVERIFY(export_name_filters().join(";").contains("*.svg"));
  }

  void bad_options_are_refused() {
    const HeatmapData data = small_matrix();
    const QString path = dir_.filePath("refused.png");
    ExportOptions options;
    options.dpi = 5;
    QString message = expect_throw<ParamError>([&] { export_heatmap(data, path, options); });
    QVERIFY2(message.contains("30") && message.contains("1200") && message.contains(path), qPrintable(message));
    options.dpi = 5000;
    QVERIFY(!expect_throw<ParamError>([&] { export_heatmap(data, path, options); }).startsWith("NO THROW"));
    options.dpi = std::nan("");
    QVERIFY(!expect_throw<ParamError>([&] { export_heatmap(data, path, options); }).startsWith("NO THROW"));
    message = expect_throw<ParamError>([&] { export_heatmap(HeatmapData{}, path); });
    QVERIFY2(message.contains("nothing to export"), qPrintable(message));
    HeatmapData short_values = data;
    short_values.values.pop_back();
    QVERIFY(!expect_throw<ShapeError>([&] { export_heatmap(short_values, path); }).startsWith("NO THROW"));
    QVERIFY(!QFile::exists(path));
  }

  void missing_folder_is_an_io_error_for_every_format() {
    const HeatmapData data = small_matrix();
    for (const char* name : {"f.png", "f.svg", "f.pdf", "f.csv", "f.npy"}) {
      const QString path = dir_.filePath(QStringLiteral("no/such/folder/") + QLatin1String(name));
      const QString message = expect_throw<IoError>([&] { export_heatmap(data, path); });
      if (message.contains("not implemented")) continue;  // npy stub
      QVERIFY2(!message.startsWith("NO THROW") && !message.startsWith("WRONG TYPE") && message.contains(path),
               qPrintable(message));
      QVERIFY(!QFile::exists(path));
    }
  }

  void failed_export_leaves_an_existing_file_untouched() {
    const QByteArray earlier = "an earlier figure the user cares about\n";
    const HeatmapData data = small_matrix();
    for (const char* name : {"keep.png", "keep.svg", "keep.csv"}) {
      const QString path = dir_.filePath(QLatin1String(name));
      QVERIFY(write_all(path, earlier));
      ExportOptions options;
      options.dpi = 5;
      QVERIFY(!expect_throw<ParamError>([&] { export_heatmap(data, path, options); }).startsWith("NO THROW"));
      QCOMPARE(read_all(path), earlier);
    }
    // A failure past validation: a PNG too large to allocate.
    const QString path = dir_.filePath("keep.png");
    HeatmapData big = attention_like(QStringList(400, QStringLiteral("tok")), 3);
    ExportOptions options;
    options.dpi = 1200;
    const QString message = expect_throw<ResourceError>([&] { export_heatmap(big, path, options); });
    QVERIFY2(message.contains("dpi") && !message.startsWith("NO THROW"), qPrintable(message));
    QCOMPARE(read_all(path), earlier);
    // A successful export replaces it.
    export_heatmap(data, path);
    QVERIFY(read_all(path).startsWith("\x89PNG"));
    // No temporary files are left behind.
    const QStringList left = QDir(dir_.path()).entryList({"keep*"}, QDir::Files | QDir::Hidden, QDir::Name);
    QCOMPARE(left, QStringList({"keep.csv", "keep.png", "keep.svg"}));
  }

  // Writes example figures for a person to look at: ATTNLAB_FIGURE_EXAMPLES=/tmp/figures.
  void write_examples() {
    const QString out = qEnvironmentVariable("ATTNLAB_FIGURE_EXAMPLES");
    if (out.isEmpty()) QSKIP("set ATTNLAB_FIGURE_EXAMPLES=DIR to write example figures");
    QVERIFY(QDir().mkpath(out));
    const QStringList sentence = QStringLiteral("The quick brown fox jumps over the lazy dog by the river").split(' ');
    HeatmapData small = attention_like(sentence, 11);
    small.title = QStringLiteral("softmax · layer 1 · head 3");
    ExportOptions options;
    options.style.highlight_index = 3;
    for (const char* ext : {"png", "svg", "pdf", "csv", "npy"}) {
      try {
        export_heatmap(small, out + QStringLiteral("/sentence12.") + QLatin1String(ext), options);
      } catch (const Error& e) {
        qWarning("%s", e.what());
      }
    }
    options.style = FigureStyle::dark();
    export_heatmap(small, out + QStringLiteral("/sentence12_dark.png"), options);

    const QStringList words = QStringLiteral(
                                  "▁in ▁the ▁beginning ▁attention ▁was ▁all ▁you ▁needed , ▁but "
                                  "▁then ▁came ▁supercalifragilisticexpialidocious ▁sequences ▁of ▁length "
                                  "▁two ▁hundred .")
                                  .split(' ');
    QStringList tokens;
    for (int i = 0; i < 200; ++i) tokens << words[i % words.size()];
    HeatmapData long_text = attention_like(tokens, 5);
    long_text.title = QStringLiteral("softmax · layer 2 · head 0 · 200 tokens");
    options.style = FigureStyle{};
    for (const char* ext : {"png", "svg", "pdf"}) {
      export_heatmap(long_text, out + QStringLiteral("/text200.") + QLatin1String(ext), options);
    }

    // Cross-attention shape, a long title, long and missing labels, a diverging signed range.
    HeatmapData cross;
    cross.title =
        QStringLiteral("difference to exact attention · reformer_lsh (n_hashes=2, bucket_size=4) · layer 3 · head 7");
    cross.rows = 3;
    cross.cols = 20;
    cross.row_axis = QStringLiteral("target");
    cross.col_axis = QStringLiteral("source");
    cross.value_label = QStringLiteral("Δ weight");
    cross.colormap = ColormapId::Coolwarm;
    cross.vmin = -0.25f;
    cross.vmax = 0.25f;
    cross.row_labels = {"Das", "Haus", "an_extraordinarily_long_token_that_must_be_elided"};
    for (int c = 0; c < 18; ++c) cross.col_labels << QStringLiteral("src%1").arg(c);  // two missing
    for (int i = 0; i < 60; ++i) cross.values.push_back(0.25f * std::sin(static_cast<float>(i) * 0.7f));
    export_heatmap(cross, out + QStringLiteral("/cross3x20.png"), ExportOptions{});
    HeatmapData tall = cross;
    tall.rows = 20;
    tall.cols = 3;
    std::swap(tall.row_labels, tall.col_labels);
    tall.title = QStringLiteral("tall");
    export_heatmap(tall, out + QStringLiteral("/tall20x3.png"), ExportOptions{});
  }

 private:
  QTemporaryDir dir_;
};

QTEST_MAIN(TestFigures)
#include "test_figures.moc"
