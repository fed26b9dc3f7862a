#include "figures/figure_frame.h"

#include <QFontMetricsF>
#include <QImage>
#include <QPainter>
#include <algorithm>

namespace attnlab {
namespace {

constexpr double kNaturalWidthLines = 80;  // about the aspect of the view tab (1100 × 700 px)
constexpr double kNaturalHeightLines = 48;

}  // namespace

QSizeF layer_figure_natural_size(const FigureStyle& style) {
  const QImage device = measuring_device();
  const FigureText t = measure_figure_text(style, &device);
  return measured_size_in_points(QSizeF(kNaturalWidthLines * t.line, kNaturalHeightLines * t.line));
}

FigureFrame layer_figure_frame(const FigureText& t, const QRectF& target) {
  FigureFrame f;
  f.title = QRectF(target.left() + t.margin, target.top() + t.margin, target.width() - 2 * t.margin, t.title_line);
  const double footer = t.gap + t.line + t.margin;
  const double body_top = f.title.bottom() + t.gap;
  f.body = QRectF(target.left() + t.margin, body_top, target.width() - 2 * t.margin, std::max(0.0, target.bottom() - footer - body_top));
  f.summary = QRectF(f.body.left(), f.body.bottom() + t.gap, f.body.width(), t.line);
  return f;
}

void draw_layer_figure_frame(QPainter& painter, const FigureFrame& frame, const QString& title, const QString& summary,
                             const FigureText& t, const FigureStyle& style) {
  painter.save();
  painter.setPen(style.foreground);
  painter.setFont(t.title);
  painter.drawText(frame.title, Qt::AlignHCenter | Qt::AlignVCenter, title);
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  painter.drawText(frame.summary, Qt::AlignLeft | Qt::AlignVCenter, fm.elidedText(summary, Qt::ElideRight, frame.summary.width()));
  painter.restore();
}

void draw_grid_caption(QPainter& painter, const TokenGridLayout& grid, const QString& caption, const FigureText& t,
                       const FigureStyle& style) {
  if (grid.matrix.isEmpty()) return;
  draw_caption_above(painter, grid.matrix, grid.panel.right() - grid.matrix.left(), t, style.foreground, caption);
}

}  // namespace attnlab
