#include "figures/heatmap_figure.h"

#include <QFontMetricsF>
#include <QPaintEngine>
#include <QPainter>
#include <QPen>
#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

namespace attnlab {
namespace {

// Up to this many cells the matrix is drawn as vector rectangles (crisp in SVG/PDF); above it,
// as one image, which keeps files small and drawing fast for long sequences.
constexpr int kVectorCellLimit = 64 * 64;

// Natural size of the matrix, in points, and of one cell, in label line heights.
constexpr double kMinMatrixPt = 300.0;
constexpr double kMaxMatrixPt = 1400.0;
constexpr double kCellLines = 1.3;

// Lengths as fractions of the label font's line height, so the figure scales with its font.
constexpr double kMarginLines = 0.8;
constexpr double kGapLines = 0.35;
constexpr double kLabelGapLines = 0.5;    // matrix edge to token label; holds the label ticks
constexpr double kLabelTickLines = 0.25;  // ticks mark labelled cells when labels are thinned
constexpr double kTitleGapLines = 0.6;
constexpr double kColorbarGapLines = 1.2;
constexpr double kColorbarWidthLines = 1.0;
constexpr double kColorbarTickLines = 0.3;  // tick marks beside the colorbar
constexpr double kLabelPitchLines = 1.05;   // closest two labels may sit, centre to centre
constexpr double kFrameLines = 0.05;        // matrix and colorbar frame width
constexpr double kHighlightLines = 0.1;     // outline of the highlighted token
constexpr double kTitleScale = 1.2;
constexpr double kElideChars = 16.0;  // longer labels are elided at this many average characters

constexpr int kColorbarBands = Colormap::kSize;

// Vector viewers smooth embedded images when they scale them up, which blurs cells into each
// other; an image already enlarged (nearest neighbour) to about this many pixels keeps them sharp.
constexpr int kVectorImageTargetPx = 2048;
constexpr int kVectorImageMaxFactor = 16;

QFont scaled_font(const QFont& font, double factor) {
  QFont out = font;
  if (font.pointSizeF() > 0) {
    out.setPointSizeF(font.pointSizeF() * factor);
  } else {
    out.setPixelSize(std::max(1, static_cast<int>(std::lround(font.pixelSize() * factor))));
  }
  return out;
}

// A token as it should read on an axis: control characters made visible; a missing label
// (fewer labels than rows) shows the index.
QString display_label(const QStringList& labels, int index) {
  if (index >= labels.size()) return QString::number(index);
  QString text;
  for (const QChar ch : labels[index]) {
    if (ch == QLatin1Char('\n')) {
      text += QStringLiteral("\\n");
    } else if (ch == QLatin1Char('\t')) {
      text += QStringLiteral("\\t");
    } else if (ch.unicode() < 0x20) {
      text += QChar(0x2400 + ch.unicode());  // Unicode "control pictures": U+240D shows a CR
    } else if (ch.unicode() == 0x7f) {
      text += QChar(0x2421);
    } else {
      text += ch;
    }
  }
  return text;
}

bool has_matrix(const HeatmapData& data) {
  return data.rows > 0 && data.cols > 0 &&
         data.values.size() >= static_cast<std::size_t>(data.rows) * static_cast<std::size_t>(data.cols);
}

// Colorbar ticks, top to bottom: vmax, the middle, vmin (just one when the range is empty).
std::vector<double> tick_values(const HeatmapData& data) {
  const double lo = data.vmin;
  const double hi = data.vmax;
  if (!(hi > lo)) return {lo};
  double mid = 0.5 * (lo + hi);
  if (mid == 0.0) mid = 0.0;  // never "-0"
  return {hi, mid, lo};
}

QString format_tick(double value, int precision) {
  QString text = QString::number(value, 'g', precision);
  if (text.startsWith(QLatin1Char('-'))) text.replace(0, 1, QChar(0x2212));  // typographic minus
  return text;
}

// Tick labels with the fewest significant digits (at least 3) that tell them apart.
QStringList tick_labels(const std::vector<double>& values) {
  QStringList labels;
  for (int precision = 3; precision <= 9; ++precision) {
    labels.clear();
    for (double v : values) labels << format_tick(v, precision);
    QStringList distinct = labels;
    if (distinct.removeDuplicates() == 0) break;
  }
  return labels;
}

// Everything in the figure's frame whose size does not depend on the cell size. Device units.
struct Parts {
  QFont label_font, bold_font, title_font;
  double line = 0, title_line = 0, margin = 0, gap = 0, label_gap = 0, elide_width = 0;
  double title_h = 0;      // title line and the gap below it
  double row_axis_w = 0;   // rotated row axis title and its gap
  double row_label_w = 0;  // widest (elided) row label
  double col_label_h = 0;  // widest (elided) column label, standing upright
  double col_axis_h = 0;   // column axis title and its gap
  double colorbar_gap = 0, colorbar_w = 0, tick_len = 0, tick_label_w = 0, value_label_w = 0;
  std::vector<double> ticks;
  QStringList tick_texts;

  double left() const { return margin + row_axis_w + row_label_w + label_gap; }
  double right() const {
    if (colorbar_w <= 0) return margin;
    return colorbar_gap + colorbar_w + tick_len + 0.5 * gap + tick_label_w + value_label_w + margin;
  }
  double top() const { return margin + title_h; }
  double bottom() const { return label_gap + col_label_h + col_axis_h + margin; }
};

double widest_label_uncached(const QFontMetricsF& fm, const QStringList& labels, int count, double elide_width) {
  double widest = 0.0;
  for (int i = 0; i < count; ++i) {
    const QString text = fm.elidedText(display_label(labels, i), Qt::ElideRight, elide_width);
    widest = std::max(widest, fm.horizontalAdvance(text));
  }
  return widest;
}

Parts measure_parts(const HeatmapData& data, const FigureStyle& style, const QPaintDevice* device) {
  Parts p;
  p.label_font = style.font;
  p.bold_font = style.font;
  p.bold_font.setBold(true);
  p.title_font = scaled_font(p.bold_font, kTitleScale);
  const QFontMetricsF fm(p.label_font, device);
  const QFontMetricsF title_fm(p.title_font, device);

  p.line = fm.height();
  p.title_line = title_fm.height();
  p.margin = kMarginLines * p.line;
  p.gap = kGapLines * p.line;
  p.label_gap = kLabelGapLines * p.line;
  p.elide_width = kElideChars * fm.averageCharWidth();

  p.title_h = data.title.isEmpty() ? 0.0 : p.title_line + kTitleGapLines * p.line;
  p.row_axis_w = data.row_axis.isEmpty() ? 0.0 : p.line + p.gap;
  p.col_axis_h = data.col_axis.isEmpty() ? 0.0 : p.line + p.gap;
  // Bold is wider: measure with it so a highlighted label fits too.
  p.row_label_w = widest_elided_label(p.bold_font, device, data.row_labels, data.rows, p.elide_width);
  p.col_label_h = widest_elided_label(p.bold_font, device, data.col_labels, data.cols, p.elide_width);

  if (style.show_colorbar) {
    p.colorbar_gap = kColorbarGapLines * p.line;
    p.colorbar_w = kColorbarWidthLines * p.line;
    p.tick_len = kColorbarTickLines * p.line;
    p.ticks = tick_values(data);
    p.tick_texts = tick_labels(p.ticks);
    for (const QString& text : p.tick_texts) p.tick_label_w = std::max(p.tick_label_w, fm.horizontalAdvance(text));
    p.value_label_w = data.value_label.isEmpty() ? 0.0 : p.gap + p.line;
  }
  return p;
}

double natural_cell(double line, int rows, int cols) {
  const double longest = std::max(1, std::max(rows, cols));
  const double cell = kCellLines * line;
  return std::clamp(cell * longest, kMinMatrixPt, kMaxMatrixPt) / longest;
}

// Text for the natural size is measured on a 1x1 image at this dpi: fonts snap to whole pixels,
// which at 72 dpi would make a 10.8 pt title 2% wider than it is.
constexpr double kReferenceDpi = 1200.0;

QImage reference_device() {
  QImage image(1, 1, QImage::Format_RGB32);
  const int dots_per_meter = static_cast<int>(std::lround(kReferenceDpi / 0.0254));
  image.setDotsPerMeterX(dots_per_meter);
  image.setDotsPerMeterY(dots_per_meter);
  return image;
}

int label_stride(double cell, double line) {
  if (cell <= 0.0) return 1;
  return std::max(1, static_cast<int>(std::ceil(kLabelPitchLines * line / cell - 1e-9)));
}

// Which labels to draw: every stride-th one, plus the highlighted token, whose neighbours closer
// than a stride make way so that no two labels overlap.
std::vector<int> visible_labels(int count, int stride, int highlight) {
  const bool has_highlight = highlight >= 0 && highlight < count;
  std::vector<int> out;
  for (int i = 0; i < count; i += stride) {
    if (has_highlight && i != highlight && std::abs(i - highlight) < stride) continue;
    out.push_back(i);
  }
  if (has_highlight && std::find(out.begin(), out.end(), highlight) == out.end()) {
    out.insert(std::upper_bound(out.begin(), out.end(), highlight), highlight);
  }
  return out;
}

// Horizontal span of `width` centred on `centre`, pushed inside [lo, hi] where possible.
double centred_left(double centre, double width, double lo, double hi) {
  double left = centre - 0.5 * width;
  left = std::min(left, hi - width);
  return std::max(left, lo);
}

HeatmapFigureLayout layout_from_parts(const HeatmapData& data, const Parts& p, const QRectF& target) {
  HeatmapFigureLayout layout;
  layout.figure = target;
  const int rows = std::max(1, data.rows);
  const int cols = std::max(1, data.cols);
  const double avail_w = target.width() - p.left() - p.right();
  const double avail_h = target.height() - p.top() - p.bottom();
  layout.cell = std::max(0.0, std::min(avail_w / cols, avail_h / rows));
  const double matrix_w = layout.cell * cols;
  const double matrix_h = layout.cell * rows;
  // Centre the whole composition when the target is larger than the matrix needs.
  const double x = target.left() + p.left() + 0.5 * std::max(0.0, avail_w - matrix_w);
  const double y = target.top() + p.top() + 0.5 * std::max(0.0, avail_h - matrix_h);
  layout.matrix = QRectF(x, y, matrix_w, matrix_h);

  layout.row_labels = QRectF(x - p.label_gap - p.row_label_w, y, p.row_label_w, matrix_h);
  layout.col_labels = QRectF(x, layout.matrix.bottom() + p.label_gap, matrix_w, p.col_label_h);
  if (p.colorbar_w > 0) {
    layout.colorbar = QRectF(layout.matrix.right() + p.colorbar_gap, y, p.colorbar_w, matrix_h);
  }
  if (!data.title.isEmpty()) {
    const double lo = target.left() + p.margin;
    const double hi = target.right() - p.margin;
    const double width = std::max(0.0, hi - lo);
    const double top = y - p.title_h;
    layout.title = QRectF(lo, top, width, p.title_line);
  }
  layout.row_label_stride = label_stride(layout.cell, p.line);
  layout.col_label_stride = layout.row_label_stride;
  return layout;
}

// ---- drawing ---------------------------------------------------------------------------------

// Draws `text` rotated to read bottom to top, centred on `centre`, within `length`.
void draw_vertical_text(QPainter& painter, const QPointF& centre, double length, double line, const QString& text) {
  painter.save();
  painter.translate(centre);
  painter.rotate(-90.0);
  const QFontMetricsF fm(painter.font(), painter.device());
  const QString shown = fm.elidedText(text, Qt::ElideRight, length);
  painter.drawText(QRectF(-0.5 * length, -0.5 * line, length, line), Qt::AlignCenter, shown);
  painter.restore();
}

// A centred line of text, elided to [lo, hi] and kept inside it.
void draw_centred_text(QPainter& painter, const QFontMetricsF& fm, double centre_x, double top, double lo, double hi,
                       const QString& text) {
  const QString shown = fm.elidedText(text, Qt::ElideRight, std::max(0.0, hi - lo));
  const double width = fm.horizontalAdvance(shown);
  const double left = centred_left(centre_x, width, lo, hi);
  painter.drawText(QRectF(left, top, width + 1.0, fm.height()), Qt::AlignLeft | Qt::AlignVCenter, shown);
}

void draw_matrix_rects(QPainter& painter, const HeatmapFigureLayout& layout, const HeatmapData& data,
                       const Colormap& map) {
  // Each cell reaches a little into its right and lower neighbours, which are drawn later and
  // cover it: vector viewers then show no hairline seams between cells.
  const double overlap = 0.2 * layout.cell;
  for (int r = 0; r < data.rows; ++r) {
    for (int c = 0; c < data.cols; ++c) {
      QRectF rect = layout.cell_rect(r, c);
      if (c + 1 < data.cols) rect.setRight(rect.right() + overlap);
      if (r + 1 < data.rows) rect.setBottom(rect.bottom() + overlap);
      painter.fillRect(rect, QColor(map.color(data.at(r, c), data.vmin, data.vmax)));
    }
  }
}

bool is_vector_device(const QPainter& painter) {
  const QPaintEngine* engine = painter.paintEngine();
  if (engine == nullptr) return false;
  const QPaintEngine::Type type = engine->type();
  return type == QPaintEngine::SVG || type == QPaintEngine::Pdf || type == QPaintEngine::Picture;
}

void draw_matrix_image(QPainter& painter, const HeatmapFigureLayout& layout, const HeatmapData& data,
                       const Colormap& map) {
  QImage image(data.cols, data.rows, QImage::Format_RGB32);
  if (image.isNull()) return;  // out of memory: leave the area blank rather than crash
  for (int r = 0; r < data.rows; ++r) {
    auto* line = reinterpret_cast<QRgb*>(image.scanLine(r));
    for (int c = 0; c < data.cols; ++c) line[c] = map.color(data.at(r, c), data.vmin, data.vmax);
  }
  if (is_vector_device(painter)) {
    const int longest = std::max(data.rows, data.cols);
    const int factor = std::clamp(kVectorImageTargetPx / longest, 1, kVectorImageMaxFactor);
    if (factor > 1)
      image = image.scaled(data.cols * factor, data.rows * factor, Qt::IgnoreAspectRatio, Qt::FastTransformation);
  }
  painter.setRenderHint(QPainter::SmoothPixmapTransform, false);  // one block per cell, no blur
  painter.drawImage(layout.matrix, image);
}

void draw_matrix(QPainter& painter, const HeatmapFigureLayout& layout, const HeatmapData& data,
                 const FigureStyle& style, const Parts& p) {
  const Colormap& map = Colormap::get(data.colormap);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  if (static_cast<long long>(data.rows) * data.cols <= kVectorCellLimit) {
    draw_matrix_rects(painter, layout, data, map);
  } else {
    draw_matrix_image(painter, layout, data, map);
  }
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, kFrameLines * p.line));
  painter.drawRect(layout.matrix);

  const int h = style.highlight_index;
  if (h >= 0 && (h < data.rows || h < data.cols)) {
    // Most attention weights sit near vmin, so contrast with the low end of the map.
    const QColor outline = Colormap::contrasting(map.color(0.0f));
    painter.setPen(QPen(outline, kHighlightLines * p.line, Qt::SolidLine, Qt::SquareCap, Qt::MiterJoin));
    const QRectF& m = layout.matrix;
    if (h < data.rows) painter.drawRect(QRectF(m.left(), m.top() + h * layout.cell, m.width(), layout.cell));
    if (h < data.cols) painter.drawRect(QRectF(m.left() + h * layout.cell, m.top(), layout.cell, m.height()));
  }
  painter.restore();
}

void draw_token_labels(QPainter& painter, const HeatmapFigureLayout& layout, const HeatmapData& data,
                       const FigureStyle& style, const Parts& p) {
  const QRectF& m = layout.matrix;
  const double tick = kLabelTickLines * p.line;
  painter.save();
  painter.setPen(QPen(style.foreground, kFrameLines * p.line));

  for (int r : visible_labels(data.rows, layout.row_label_stride, style.highlight_index)) {
    const bool bold = r == style.highlight_index;
    painter.setFont(bold ? p.bold_font : p.label_font);
    const QString text = QFontMetricsF(painter.font(), painter.device())
                             .elidedText(display_label(data.row_labels, r), Qt::ElideRight, p.elide_width);
    const double cy = m.top() + (r + 0.5) * layout.cell;
    painter.drawText(QRectF(layout.row_labels.left() - p.line, cy - 0.5 * p.line, p.row_label_w + p.line, p.line),
                     Qt::AlignRight | Qt::AlignVCenter, text);
    if (layout.row_label_stride > 1) painter.drawLine(QPointF(m.left() - tick, cy), QPointF(m.left(), cy));
  }

  for (int c : visible_labels(data.cols, layout.col_label_stride, style.highlight_index)) {
    const bool bold = c == style.highlight_index;
    painter.setFont(bold ? p.bold_font : p.label_font);
    const QString text = QFontMetricsF(painter.font(), painter.device())
                             .elidedText(display_label(data.col_labels, c), Qt::ElideRight, p.elide_width);
    const double cx = m.left() + (c + 0.5) * layout.cell;
    painter.save();
    painter.translate(cx, layout.col_labels.top());
    painter.rotate(-90.0);  // reads bottom to top, ending at the matrix
    painter.drawText(QRectF(-(p.col_label_h + p.line), -0.5 * p.line, p.col_label_h + p.line, p.line),
                     Qt::AlignRight | Qt::AlignVCenter, text);
    painter.restore();
    if (layout.col_label_stride > 1) painter.drawLine(QPointF(cx, m.bottom()), QPointF(cx, m.bottom() + tick));
  }
  painter.restore();
}

void draw_axis_titles(QPainter& painter, const HeatmapFigureLayout& layout, const HeatmapData& data,
                      const FigureStyle& style, const Parts& p) {
  painter.save();
  painter.setPen(style.foreground);
  painter.setFont(p.label_font);
  const QRectF& m = layout.matrix;
  if (!data.row_axis.isEmpty()) {
    const double cx = layout.row_labels.left() - p.gap - 0.5 * p.line;  // row_axis_w = line + gap
    draw_vertical_text(painter, QPointF(cx, m.center().y()), std::max(m.height(), p.line), p.line, data.row_axis);
  }
  if (!data.col_axis.isEmpty()) {
    const QFontMetricsF fm(p.label_font, painter.device());
    const double top = layout.col_labels.bottom() + p.gap;
    draw_centred_text(painter, fm, m.center().x(), top, layout.figure.left() + p.margin,
                      layout.figure.right() - p.margin, data.col_axis);
  }
  if (!layout.title.isEmpty()) {
    painter.setFont(p.title_font);
    const QFontMetricsF fm(p.title_font, painter.device());
    draw_centred_text(painter, fm, m.center().x(), layout.title.top(), layout.title.left(), layout.title.right(),
                      data.title);
  }
  painter.restore();
}

void draw_colorbar(QPainter& painter, const HeatmapFigureLayout& layout, const HeatmapData& data,
                   const FigureStyle& style, const Parts& p) {
  const QRectF& bar = layout.colorbar;
  if (bar.isEmpty()) return;
  const Colormap& map = Colormap::get(data.colormap);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  // Band k from the bottom shows table entry k; each overlaps the band above (drawn later).
  const double band = bar.height() / kColorbarBands;
  for (int k = 0; k < kColorbarBands; ++k) {
    const double t = (k + 0.5) / kColorbarBands;
    const double bottom = bar.bottom() - k * band;
    const double top = k + 1 < kColorbarBands ? bottom - 1.5 * band : bar.top();
    painter.fillRect(QRectF(bar.left(), top, bar.width(), bottom - top), QColor(map.color(static_cast<float>(t))));
  }

  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, kFrameLines * p.line));
  painter.drawRect(bar);

  // Ticks that fit: all three when the bar is tall enough, else the ends, else only vmax.
  std::vector<int> shown;
  const int n = static_cast<int>(p.ticks.size());
  if (n == 1 || bar.height() >= 3.2 * p.line) {
    for (int i = 0; i < n; ++i) shown.push_back(i);
  } else if (bar.height() >= 2.0 * p.line) {
    shown = {0, n - 1};
  } else {
    shown = {0};
  }
  painter.setFont(p.label_font);
  const double text_left = bar.right() + p.tick_len + 0.5 * p.gap;
  for (int i : shown) {
    const double y = n == 1 ? bar.center().y() : bar.top() + bar.height() * i / (n - 1);
    painter.drawLine(QPointF(bar.right(), y), QPointF(bar.right() + p.tick_len, y));
    painter.drawText(QRectF(text_left, y - 0.5 * p.line, p.tick_label_w + p.line, p.line),
                     Qt::AlignLeft | Qt::AlignVCenter, p.tick_texts.value(i));
  }
  if (!data.value_label.isEmpty()) {
    const double cx = text_left + p.tick_label_w + p.gap + 0.5 * p.line;
    draw_vertical_text(painter, QPointF(cx, bar.center().y()), bar.height() + p.line, p.line, data.value_label);
  }
  painter.restore();
}

}  // namespace

// The widest (elided) label, remembered for the last few label lists: a figure measures the same
// 512 token labels for rows and columns, several panels and every layout pass, and text shaping
// was most of a view's redraw (the Approximation lab: three heatmaps, ~50 ms at 512 tokens).
double widest_elided_label(const QFont& font, const QPaintDevice* device, const QStringList& labels, int count,
                           double elide_width) {
  struct Entry {
    QString font_key;
    int dpi_x = 0, dpi_y = 0, count = 0;
    double elide_width = 0;
    QStringList labels;  // implicitly shared: comparing an unchanged list is a pointer check
    double widest = 0;
  };
  static std::mutex mutex;
  static std::vector<Entry> cache;  // most recent last
  constexpr std::size_t kEntries = 16;
  const int dpi_x = device ? device->logicalDpiX() : 0, dpi_y = device ? device->logicalDpiY() : 0;
  const QString key = font.key();
  {
    std::lock_guard lock(mutex);
    for (const Entry& e : cache)
      if (e.count == count && e.elide_width == elide_width && e.dpi_x == dpi_x && e.dpi_y == dpi_y &&
          e.font_key == key && e.labels == labels)
        return e.widest;
  }
  const double widest = widest_label_uncached(QFontMetricsF(font, device), labels, count, elide_width);
  std::lock_guard lock(mutex);
  if (cache.size() == kEntries) cache.erase(cache.begin());
  cache.push_back(Entry{key, dpi_x, dpi_y, count, elide_width, labels, widest});
  return widest;
}

QFont FigureStyle::default_figure_font() {
  QFont font(QStringLiteral("DejaVu Sans"));
  font.setPointSizeF(9.0);
  font.setStyleHint(QFont::SansSerif);
  // Unhinted glyphs keep their proportions at every size, so the natural size measured once
  // holds for a 100 dpi PNG, a 300 dpi PNG and the vector files alike.
  font.setHintingPreference(QFont::PreferNoHinting);
  return font;
}

FigureStyle FigureStyle::dark() {
  FigureStyle style;
  style.background = QColor(30, 31, 34);
  style.foreground = QColor(225, 226, 229);
  return style;
}

QRectF HeatmapFigureLayout::cell_rect(int row, int col) const {
  return QRectF(matrix.left() + col * cell, matrix.top() + row * cell, cell, cell);
}

QSizeF heatmap_figure_size(const HeatmapData& data, const FigureStyle& style) {
  const QImage device = reference_device();
  const double to_points = 72.0 / kReferenceDpi;
  const Parts p = measure_parts(data, style, &device);
  const double cell = natural_cell(p.line * to_points, data.rows, data.cols);
  double width = (p.left() + p.right()) * to_points + std::max(1, data.cols) * cell;
  const double height = (p.top() + p.bottom()) * to_points + std::max(1, data.rows) * cell;
  if (!data.title.isEmpty()) {
    // 3% spare: at low dpi the title's font snaps to a slightly larger whole pixel size.
    const double title_w = QFontMetricsF(p.title_font, &device).horizontalAdvance(data.title) * to_points * 1.03;
    width = std::max(width, std::min(title_w, kMaxMatrixPt) + 2.0 * p.margin * to_points);
  }
  return QSizeF(std::ceil(width), std::ceil(height));
}

HeatmapFigureLayout compute_heatmap_layout(const HeatmapData& data, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device) {
  return layout_from_parts(data, measure_parts(data, style, device), target);
}

void draw_heatmap_figure(QPainter& painter, const QRectF& target, const HeatmapData& data, const FigureStyle& style) {
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setRenderHint(QPainter::TextAntialiasing, true);
  painter.fillRect(target, style.background);

  const Parts p = measure_parts(data, style, painter.device());
  const HeatmapFigureLayout layout = layout_from_parts(data, p, target);
  if (!has_matrix(data)) {
    painter.setPen(style.foreground);
    painter.setFont(p.label_font);
    painter.drawText(target, Qt::AlignCenter, QStringLiteral("no data"));
  } else if (layout.cell > 0.0) {  // else the target is too small for even the labels
    draw_matrix(painter, layout, data, style, p);
    draw_token_labels(painter, layout, data, style, p);
    draw_colorbar(painter, layout, data, style, p);
    draw_axis_titles(painter, layout, data, style, p);
  }
  painter.restore();
}

}  // namespace attnlab
