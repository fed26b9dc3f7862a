#include "figures/token_grid.h"

#include <QFontMetricsF>
#include <QImage>
#include <QPaintEngine>
#include <QPainter>
#include <QPainterPath>
#include <algorithm>

namespace attnlab {
namespace {

// Lengths in label line heights.
constexpr double kLabelGapLines = 0.5;     // matrix edge to a token label; holds the label ticks
constexpr double kLabelTickLines = 0.25;   // ticks mark the labelled rows when labels are thinned
constexpr double kLabelPitchLines = 1.05;  // closest two row labels may sit, centre to centre
constexpr double kStripGapLines = 0.8;
constexpr double kColorbarGapLines = 1.2;
constexpr double kColorbarWidthLines = 1.0;
constexpr double kColorbarTickLines = 0.3;
constexpr double kFrameLines = 0.05;
constexpr double kHighlightLines = 0.1;
constexpr double kPointerLines = 0.45;   // the triangles that point at the highlighted row
constexpr double kMarkBlockLines = 1.2;  // height of a cell mark on rows taller than a line
constexpr double kElideChars = 12.0;     // longer token labels are elided at this many average characters

// Up to this many cells the matrix is drawn as vector rectangles; above, as one image.
constexpr int kVectorCellLimit = 64 * 64;
// Vector viewers smooth an embedded image they enlarge; one already enlarged (nearest neighbour)
// to about this many pixels keeps its cells sharp.
constexpr int kVectorImageTargetPx = 2048;
constexpr int kVectorImageMaxFactor = 16;

// A token as it should read on an axis: control characters made visible.
QString display_label(const QStringList& labels, int index) {
  if (index >= labels.size()) return QString::number(index);
  QString text;
  for (const QChar ch : labels[index]) {
    if (ch == QLatin1Char('\n'))
      text += QStringLiteral("\\n");
    else if (ch == QLatin1Char('\t'))
      text += QStringLiteral("\\t");
    else if (ch.unicode() < 0x20)
      text += QChar(0x2400 + ch.unicode());
    else if (ch.unicode() == 0x7f)
      text += QChar(0x2421);
    else
      text += ch;
  }
  return text;
}

double elide_width(const FigureText& t, const QPaintDevice* device) {
  return kElideChars * QFontMetricsF(t.label, device).averageCharWidth();
}

double widest(const QFontMetricsF& fm, const QStringList& texts) {
  double w = 0;
  for (const QString& s : texts) w = std::max(w, fm.horizontalAdvance(s));
  return w;
}

QString tick_text(double value) {
  QString text = QString::number(value, 'g', 3);
  if (text.startsWith(QLatin1Char('-'))) text.replace(0, 1, QChar(0x2212));
  return text;
}

// Colorbar ticks, top to bottom.
std::vector<double> colorbar_ticks(const TokenGridData& data) {
  if (!(data.vmax > data.vmin)) return {data.vmin};
  return {data.vmax, 0.5 * (data.vmin + data.vmax), data.vmin};
}

double colorbar_tick_width(const TokenGridData& data, const QFontMetricsF& fm) {
  double w = 0;
  for (double v : colorbar_ticks(data)) w = std::max(w, fm.horizontalAdvance(tick_text(v)));
  return w;
}

int stride_for(double pitch, double cell) {
  if (cell <= 0.0) return 1;
  return std::max(1, static_cast<int>(std::ceil(pitch / cell - 1e-9)));
}

// Every stride-th row label, plus the highlighted one, whose neighbours closer than a stride
// make way.
std::vector<int> visible_rows(int count, int stride, int highlight) {
  const bool has = highlight >= 0 && highlight < count;
  std::vector<int> out;
  for (int i = 0; i < count; i += stride) {
    if (has && i != highlight && std::abs(i - highlight) < stride) continue;
    out.push_back(i);
  }
  if (has && std::find(out.begin(), out.end(), highlight) == out.end())
    out.insert(std::upper_bound(out.begin(), out.end(), highlight), highlight);
  return out;
}

bool is_vector_device(const QPainter& painter) {
  const QPaintEngine* engine = painter.paintEngine();
  if (!engine) return false;
  const QPaintEngine::Type type = engine->type();
  return type == QPaintEngine::SVG || type == QPaintEngine::Pdf || type == QPaintEngine::Picture;
}

void draw_cells(QPainter& painter, const TokenGridLayout& layout, const TokenGridData& data, const FigureStyle& style) {
  const Colormap& map = Colormap::get(data.colormap);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  if (static_cast<long long>(data.rows) * data.cols <= kVectorCellLimit) {
    // Each cell reaches a little into the neighbours drawn after it, so vector viewers show no
    // hairline seams; not into a blank neighbour.
    const double over_w = 0.2 * layout.cell_w, over_h = 0.2 * layout.cell_h;
    for (int r = 0; r < data.rows; ++r) {
      for (int c = 0; c < data.cols; ++c) {
        if (!data.has_value(r, c)) continue;
        QRectF rect = layout.cell_rect(r, c);
        const bool right = c + 1 < data.cols && data.has_value(r, c + 1);
        const bool down = r + 1 < data.rows && data.has_value(r + 1, c) && (!right || data.has_value(r + 1, c + 1));
        if (right) rect.setRight(rect.right() + over_w);
        if (down) rect.setBottom(rect.bottom() + over_h);
        painter.fillRect(rect, QColor(map.color(data.at(r, c), data.vmin, data.vmax)));
      }
    }
  } else {
    QImage image(data.cols, data.rows, QImage::Format_RGB32);
    if (!image.isNull()) {
      const QRgb blank = style.background.rgb();
      for (int r = 0; r < data.rows; ++r) {
        auto* line = reinterpret_cast<QRgb*>(image.scanLine(r));
        for (int c = 0; c < data.cols; ++c)
          line[c] = data.has_value(r, c) ? map.color(data.at(r, c), data.vmin, data.vmax) : blank;
      }
      if (is_vector_device(painter)) {
        const int longest = std::max(data.rows, data.cols);
        const int factor = std::clamp(kVectorImageTargetPx / std::max(1, longest), 1, kVectorImageMaxFactor);
        if (factor > 1)
          image = image.scaled(data.cols * factor, data.rows * factor, Qt::IgnoreAspectRatio, Qt::FastTransformation);
      }
      painter.setRenderHint(QPainter::SmoothPixmapTransform, false);  // one block per cell, no blur
      painter.drawImage(layout.matrix, image);
    }
  }
  painter.restore();
}

void draw_vertical_text(QPainter& painter, const QPointF& centre, double length, double line, const QString& text) {
  painter.save();
  painter.translate(centre);
  painter.rotate(-90.0);
  const QFontMetricsF fm(painter.font(), painter.device());
  painter.drawText(QRectF(-0.5 * length, -0.5 * line, length, line), Qt::AlignCenter,
                   fm.elidedText(text, Qt::ElideRight, length));
  painter.restore();
}

void draw_labels(QPainter& painter, const TokenGridLayout& layout, const TokenGridData& data, const FigureText& t,
                 const FigureStyle& style, int highlight) {
  const QRectF& m = layout.matrix;
  const double tick = kLabelTickLines * t.line;
  const double elide = elide_width(t, painter.device());
  painter.save();
  painter.setPen(QPen(style.foreground, kFrameLines * t.line));
  for (int r : visible_rows(data.rows, layout.row_stride, highlight)) {
    const bool bold = r == highlight;
    painter.setFont(bold ? t.bold : t.label);
    const QString text =
        QFontMetricsF(painter.font(), painter.device()).elidedText(display_label(data.row_labels, r), Qt::ElideRight, elide);
    const double cy = m.top() + (r + 0.5) * layout.cell_h;
    painter.drawText(QRectF(layout.row_labels.left() - t.line, cy - 0.5 * t.line, layout.row_labels.width() + t.line, t.line),
                     Qt::AlignRight | Qt::AlignVCenter, text);
    if (layout.row_stride > 1) painter.drawLine(QPointF(m.left() - tick, cy), QPointF(m.left(), cy));
  }
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  for (int c = 0; c < data.cols; c += layout.col_stride) {
    const double cx = m.left() + (c + 0.5) * layout.cell_w;
    const QString text = data.col_labels.value(c, QString::number(c));
    const double w = fm.horizontalAdvance(text) + t.gap;
    painter.drawText(QRectF(cx - 0.5 * w, layout.col_labels.top(), w, t.line), Qt::AlignCenter, text);
    if (layout.col_stride > 1) painter.drawLine(QPointF(cx, m.bottom()), QPointF(cx, m.bottom() + tick));
  }
  if (!data.row_axis.isEmpty()) {
    const double cx = layout.row_labels.left() - t.gap - 0.5 * t.line;
    draw_vertical_text(painter, QPointF(cx, m.center().y()), std::max(m.height(), t.line), t.line, data.row_axis);
  }
  if (!data.col_axis.isEmpty()) {
    const double room = std::max(m.width() + 4 * t.line, t.line);
    painter.drawText(QRectF(m.center().x() - 0.5 * room, layout.col_labels.bottom() + t.gap, room, t.line), Qt::AlignCenter,
                     fm.elidedText(data.col_axis, Qt::ElideRight, room));
  }
  painter.restore();
}

void draw_colorbar(QPainter& painter, const TokenGridLayout& layout, const TokenGridData& data, const FigureText& t,
                   const FigureStyle& style) {
  const QRectF& bar = layout.colorbar;
  if (bar.isEmpty()) return;
  const Colormap& map = Colormap::get(data.colormap);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  const int bands = Colormap::kSize;
  const double band = bar.height() / bands;
  for (int k = 0; k < bands; ++k) {
    const double bottom = bar.bottom() - k * band;
    const double top = k + 1 < bands ? bottom - 1.5 * band : bar.top();
    painter.fillRect(QRectF(bar.left(), top, bar.width(), bottom - top),
                     QColor(map.color(static_cast<float>((k + 0.5) / bands))));
  }
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, kFrameLines * t.line));
  painter.drawRect(bar);
  const std::vector<double> ticks = colorbar_ticks(data);
  const int n = static_cast<int>(ticks.size());
  std::vector<int> shown;
  if (n == 1 || bar.height() >= 3.2 * t.line) {
    for (int i = 0; i < n; ++i) shown.push_back(i);
  } else {
    shown = {0, n - 1};
  }
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  const double tick_len = kColorbarTickLines * t.line;
  const double text_left = bar.right() + tick_len + 0.5 * t.gap;
  const double tick_w = colorbar_tick_width(data, fm);
  for (int i : shown) {
    const double y = n == 1 ? bar.center().y() : bar.top() + bar.height() * i / (n - 1);
    painter.drawLine(QPointF(bar.right(), y), QPointF(bar.right() + tick_len, y));
    painter.drawText(QRectF(text_left, y - 0.5 * t.line, tick_w + t.line, t.line), Qt::AlignLeft | Qt::AlignVCenter,
                     tick_text(ticks[static_cast<std::size_t>(i)]));
  }
  if (!data.value_label.isEmpty())
    draw_vertical_text(painter, QPointF(text_left + tick_w + t.gap + 0.5 * t.line, bar.center().y()), bar.height() + 2 * t.line,
                       t.line, data.value_label);
  painter.restore();
}

void draw_highlight(QPainter& painter, const TokenGridLayout& layout, const TokenGridData& data, const FigureText& t,
                    const FigureStyle& style, int highlight) {
  if (highlight < 0 || highlight >= data.rows) return;
  const Colormap& map = Colormap::get(data.colormap);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  const QRectF row(layout.matrix.left(), layout.matrix.top() + highlight * layout.cell_h, layout.matrix.width(), layout.cell_h);
  painter.setPen(
      QPen(Colormap::contrasting(map.color(0.0f)), kHighlightLines * t.line, Qt::SolidLine, Qt::SquareCap, Qt::MiterJoin));
  painter.drawRect(row);
  // Triangles on both sides point at the row: on 512 thin rows the outline alone is easy to miss.
  const double s = kPointerLines * t.line, cy = row.center().y();
  painter.setPen(Qt::NoPen);
  painter.setBrush(style.foreground);
  QPainterPath left, right;
  left.moveTo(row.left(), cy);
  left.lineTo(row.left() - s, cy - 0.6 * s);
  left.lineTo(row.left() - s, cy + 0.6 * s);
  left.closeSubpath();
  const double rx = layout.strip.isEmpty() ? row.right() : layout.strip.right();
  right.moveTo(rx, cy);
  right.lineTo(rx + s, cy - 0.6 * s);
  right.lineTo(rx + s, cy + 0.6 * s);
  right.closeSubpath();
  painter.drawPath(left);
  painter.drawPath(right);
  painter.restore();
}

}  // namespace

QRectF TokenGridLayout::cell_rect(int row, int col) const {
  return QRectF(matrix.left() + col * cell_w, matrix.top() + row * cell_h, cell_w, cell_h);
}

QRectF TokenGridLayout::row_band(int row) const {
  const double right = strip.isEmpty() ? matrix.right() : strip.right();
  return QRectF(row_labels.left(), matrix.top() + row * cell_h, right - row_labels.left(), cell_h);
}

int TokenGridLayout::row_at_y(double y) const {
  if (cell_h <= 0) return -1;
  const int rows = static_cast<int>(std::lround(matrix.height() / cell_h));
  return std::clamp(static_cast<int>(std::floor((y - matrix.top()) / cell_h)), 0, std::max(0, rows - 1));
}

int TokenGridLayout::row_at(const QPointF& pos) const {
  if (cell_h <= 0 || pos.y() < matrix.top() || pos.y() >= matrix.bottom()) return -1;
  const double right = strip.isEmpty() ? matrix.right() : strip.right();
  if (pos.x() < row_labels.left() || pos.x() >= right) return -1;
  return row_at_y(pos.y());
}

TokenGridRoom measure_token_grid(const TokenGridData& data, const FigureText& t, const QPaintDevice* device, double strip_width) {
  const QFontMetricsF fm(t.label, device);
  TokenGridRoom room;
  const double label_w = widest_elided_label(t.bold, device, data.row_labels, data.rows, elide_width(t, device));
  room.left = (data.row_axis.isEmpty() ? 0.0 : t.line + t.gap) + label_w + kLabelGapLines * t.line;
  room.right = (strip_width > 0 ? kStripGapLines * t.line + strip_width : 0.0) + kColorbarGapLines * t.line +
               kColorbarWidthLines * t.line + kColorbarTickLines * t.line + 0.5 * t.gap + colorbar_tick_width(data, fm) +
               (data.value_label.isEmpty() ? 0.0 : t.gap + t.line) + 0.5 * t.gap;
  room.top = t.line + t.gap;
  room.bottom = kLabelGapLines * t.line + t.line + (data.col_axis.isEmpty() ? 0.0 : t.gap + t.line);
  return room;
}

TokenGridLayout layout_token_grid(const TokenGridData& data, const FigureText& t, const QPaintDevice* device, const QRectF& panel,
                                  double strip_width, double max_cell_w) {
  const TokenGridRoom room = measure_token_grid(data, t, device, strip_width);
  const int rows = std::max(1, data.rows), cols = std::max(1, data.cols);
  TokenGridLayout layout;
  layout.cell_w = std::clamp((panel.width() - room.left - room.right) / cols, 0.0, max_cell_w);
  layout.cell_h = std::max(0.0, (panel.height() - room.top - room.bottom) / rows);
  layout.matrix = QRectF(panel.left() + room.left, panel.top() + room.top, cols * layout.cell_w, rows * layout.cell_h);
  layout.panel = QRectF(panel.left(), panel.top(), room.left + layout.matrix.width() + room.right, panel.height());
  const double label_gap = kLabelGapLines * t.line;
  const double label_w = room.left - label_gap - (data.row_axis.isEmpty() ? 0.0 : t.line + t.gap);
  layout.row_labels = QRectF(layout.matrix.left() - label_gap - label_w, layout.matrix.top(), label_w, layout.matrix.height());
  layout.col_labels = QRectF(layout.matrix.left(), layout.matrix.bottom() + label_gap, layout.matrix.width(), t.line);
  double x = layout.matrix.right();
  if (strip_width > 0) {
    layout.strip = QRectF(x + kStripGapLines * t.line, layout.matrix.top(), strip_width, layout.matrix.height());
    x = layout.strip.right();
  }
  layout.colorbar =
      QRectF(x + kColorbarGapLines * t.line, layout.matrix.top(), kColorbarWidthLines * t.line, layout.matrix.height());
  layout.row_stride = stride_for(kLabelPitchLines * t.line, layout.cell_h);
  const QFontMetricsF fm(t.label, device);
  layout.col_stride = stride_for(widest(fm, data.col_labels) + t.gap, layout.cell_w);
  return layout;
}

void draw_token_grid(QPainter& painter, const TokenGridLayout& layout, const TokenGridData& data, const FigureText& t,
                     const FigureStyle& style, int highlight) {
  if (data.rows <= 0 || data.cols <= 0 || layout.cell_w <= 0 || layout.cell_h <= 0) return;
  draw_cells(painter, layout, data, style);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, kFrameLines * t.line));
  painter.drawRect(layout.matrix);
  painter.restore();
  draw_labels(painter, layout, data, t, style, highlight);
  draw_colorbar(painter, layout, data, t, style);
  draw_highlight(painter, layout, data, t, style, highlight);
}

QRectF cell_mark_rect(const TokenGridLayout& layout, int row, int col, const FigureText& t, double fraction) {
  const QRectF cell = layout.cell_rect(row, col);
  const double w = fraction * cell.width();
  const double h = cell.height() <= t.line ? cell.height() : std::min(0.6 * cell.height(), kMarkBlockLines * t.line);
  return QRectF(cell.center().x() - 0.5 * w, cell.center().y() - 0.5 * h, w, h);
}

void draw_cell_mark(QPainter& painter, const TokenGridLayout& layout, int row, int col, const QColor& colour, const FigureText& t,
                    bool filled, double fraction) {
  const QRectF rect = cell_mark_rect(layout, row, col, t, fraction);
  painter.save();
  const bool block = layout.cell_h > t.line;
  painter.setRenderHint(QPainter::Antialiasing, block);
  if (filled || !block) {
    // An outline inside a row a pixel or two tall would not show: a half-transparent fill instead.
    QColor fill = colour;
    if (!filled) fill.setAlphaF(0.5f);
    painter.setPen(Qt::NoPen);
    painter.setBrush(fill);
  } else {
    const double pen = std::min(0.15 * t.line, 0.3 * std::min(rect.width(), rect.height()));
    painter.setPen(QPen(colour, pen));
    painter.setBrush(Qt::NoBrush);
  }
  const QRectF shape = filled || !block ? rect
                                        : rect.adjusted(0.5 * painter.pen().widthF(), 0.5 * painter.pen().widthF(),
                                                        -0.5 * painter.pen().widthF(), -0.5 * painter.pen().widthF());
  if (block) {
    const double radius = 0.2 * std::min(rect.width(), rect.height());
    painter.drawRoundedRect(shape, radius, radius);
  } else {
    painter.drawRect(shape);
  }
  painter.restore();
}

GridColumnLayout layout_grid_and_column(const TokenGridData& data, const FigureText& t, const QPaintDevice* device,
                                        const QRectF& body, const GridColumnSpec& spec) {
  const TokenGridRoom room = measure_token_grid(data, t, device, spec.strip_width);
  const double gap = spec.gap;
  const double grid_w = std::min(room.left + std::max(1, data.cols) * spec.max_cell_w + room.right, spec.max_share * body.width());
  const double plots_w = body.right() - (body.left() + grid_w + gap + spec.plot_left) - t.line;
  GridColumnLayout out;
  out.column = plots_w >= spec.min_plot_w;
  out.grid = layout_token_grid(data, t, device, QRectF(body.left(), body.top(), out.column ? grid_w : body.width(), body.height()),
                               spec.strip_width, spec.max_cell_w);
  if (out.column) {
    out.column_left = out.grid.panel.right() + gap;
    out.column_right = body.right() - t.line;
  }
  return out;
}

void draw_token_grid_caption(QPainter& painter, const TokenGridLayout& layout, const FigureText& t, const FigureStyle& style,
                             const QString& caption) {
  if (layout.matrix.isEmpty()) return;
  draw_caption_above(painter, layout.matrix, layout.panel.right() - layout.matrix.left(), t, style.foreground, caption);
}

}  // namespace attnlab
