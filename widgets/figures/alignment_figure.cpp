#include "figures/alignment_figure.h"

#include <QPainter>
#include <QPen>
#include <algorithm>

#include "figures/figure_kit.h"

namespace attnlab {
namespace {

constexpr double kTintAlpha = 0.5;      // of the strongest tint
constexpr double kOutlineLines = 0.14;  // outline of the hovered row or column
constexpr double kMinTint = 0.02;       // fainter tints are left out

bool valid_matrix(const HeatmapData& map) {
  return map.rows > 0 && map.cols > 0 &&
         map.values.size() == static_cast<std::size_t>(map.rows) * static_cast<std::size_t>(map.cols);
}

// The figure without the heatmap's own highlight (the overlay draws its own).
FigureStyle plain(const FigureStyle& style) { return with_highlight(style, -1); }

void draw_overlay(QPainter& painter, const AlignmentFigureLayout& layout, const AlignmentFigureData& data, double line) {
  const HeatmapFigureLayout& h = layout.heatmap;
  const AlignmentOverlay& o = data.overlay;
  const QColor colour = alignment_tint_color();
  painter.save();
  painter.setPen(Qt::NoPen);
  // Tints over the labels: a band per row left of the matrix, a band per column below it.
  for (int r = 0; r < data.map.rows && r < static_cast<int>(o.row_tint.size()); ++r) {
    const float t = std::clamp(o.row_tint[static_cast<std::size_t>(r)], 0.0f, 1.0f);
    if (t < kMinTint) continue;
    QColor c = colour;
    c.setAlphaF(static_cast<float>(kTintAlpha * t));
    const QRectF cell = h.cell_rect(r, 0);
    painter.fillRect(QRectF(h.row_labels.left(), cell.top(), h.matrix.left() - h.row_labels.left(), cell.height()), c);
  }
  for (int col = 0; col < data.map.cols && col < static_cast<int>(o.col_tint.size()); ++col) {
    const float t = std::clamp(o.col_tint[static_cast<std::size_t>(col)], 0.0f, 1.0f);
    if (t < kMinTint) continue;
    QColor c = colour;
    c.setAlphaF(static_cast<float>(kTintAlpha * t));
    const QRectF cell = h.cell_rect(0, col);
    painter.fillRect(QRectF(cell.left(), h.matrix.bottom(), cell.width(), h.col_labels.bottom() - h.matrix.bottom()), c);
  }
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(colour, kOutlineLines * line, Qt::SolidLine, Qt::SquareCap, Qt::MiterJoin));
  if (o.row >= 0 && o.row < data.map.rows) {
    painter.drawRect(QRectF(h.matrix.left(), h.matrix.top() + o.row * h.cell, h.matrix.width(), h.cell));
  }
  if (o.col >= 0 && o.col < data.map.cols) {
    painter.drawRect(QRectF(h.matrix.left() + o.col * h.cell, h.matrix.top(), h.cell, h.matrix.height()));
  }
  painter.restore();
}

}  // namespace

int AlignmentHit::code(int cols) const {
  switch (kind) {
    case Kind::None: return -1;
    case Kind::Row: return 3 * row;
    case Kind::Column: return 3 * col + 1;
    case Kind::Cell: return 3 * (row * cols + col) + 2;
  }
  return -1;
}

AlignmentHit AlignmentHit::from_code(int code, int cols) {
  AlignmentHit hit;
  if (code < 0 || cols <= 0) return hit;
  const int index = code / 3;
  switch (code % 3) {
    case 0:
      hit.kind = Kind::Row;
      hit.row = index;
      break;
    case 1:
      hit.kind = Kind::Column;
      hit.col = index;
      break;
    default:
      hit.kind = Kind::Cell;
      hit.row = index / cols;
      hit.col = index % cols;
      break;
  }
  return hit;
}

AlignmentHit AlignmentFigureLayout::hit(const QPointF& pos, int rows, int cols) const {
  AlignmentHit out;
  const HeatmapFigureLayout& h = heatmap;
  if (h.cell <= 0 || rows <= 0 || cols <= 0) return out;
  const int row = static_cast<int>((pos.y() - h.matrix.top()) / h.cell);
  const int col = static_cast<int>((pos.x() - h.matrix.left()) / h.cell);
  const bool in_rows = pos.y() >= h.matrix.top() && pos.y() < h.matrix.bottom() && row < rows;
  const bool in_cols = pos.x() >= h.matrix.left() && pos.x() < h.matrix.right() && col < cols;
  if (in_rows && in_cols) {
    out.kind = AlignmentHit::Kind::Cell;
    out.row = row;
    out.col = col;
  } else if (in_rows && pos.x() < h.matrix.left() && pos.x() >= h.row_labels.left() - h.cell) {
    out.kind = AlignmentHit::Kind::Row;
    out.row = row;
  } else if (in_cols && pos.y() >= h.matrix.bottom() && pos.y() <= h.col_labels.bottom()) {
    out.kind = AlignmentHit::Kind::Column;
    out.col = col;
  }
  return out;
}

QPointF AlignmentFigureLayout::row_label_centre(int row) const {
  return QPointF(heatmap.row_labels.center().x(), heatmap.matrix.top() + (row + 0.5) * heatmap.cell);
}

QPointF AlignmentFigureLayout::col_label_centre(int col) const {
  return QPointF(heatmap.matrix.left() + (col + 0.5) * heatmap.cell, heatmap.col_labels.center().y());
}

QColor alignment_tint_color() { return okabe_ito(OkabeIto::Vermillion); }

QSizeF alignment_figure_size(const AlignmentFigureData& data, const FigureStyle& style) {
  return heatmap_figure_size(data.map, plain(style));
}

AlignmentFigureLayout compute_alignment_layout(const AlignmentFigureData& data, const FigureStyle& style, const QRectF& target,
                                               const QPaintDevice* device) {
  AlignmentFigureLayout layout;
  layout.heatmap = compute_heatmap_layout(data.map, plain(style), target, device);
  return layout;
}

void draw_alignment_figure(QPainter& painter, const QRectF& target, const AlignmentFigureData& data, const FigureStyle& style) {
  draw_heatmap_figure(painter, target, data.map, plain(style));
  if (!valid_matrix(data.map)) return;
  const AlignmentFigureLayout layout = compute_alignment_layout(data, style, target, painter.device());
  if (layout.heatmap.cell <= 0) return;
  const FigureText text = measure_figure_text(style, painter.device());
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  draw_overlay(painter, layout, data, text.line);
  painter.restore();
}

PaintedFigure alignment_painted_figure(AlignmentFigureDataPtr data, const FigureStyle& style) {
  PaintedFigure figure;
  figure.size = alignment_figure_size(*data, style);
  figure.title = data->map.title.isEmpty() ? QStringLiteral("AttnLab alignment") : data->map.title;
  figure.description = QStringLiteral("AttnLab attention map, %1 %2 x %3 %4").arg(data->map.rows).arg(data->map.row_axis).arg(data->map.cols).arg(data->map.col_axis);
  figure.background = style.background;
  figure.draw = [data, style](QPainter& painter, const QRectF& target) { draw_alignment_figure(painter, target, *data, style); };
  return figure;
}

QByteArray alignment_csv(const AlignmentFigureData& data) { return heatmap_csv(data.map); }

}  // namespace attnlab
