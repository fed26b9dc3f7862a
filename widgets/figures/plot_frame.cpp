#include "figures/plot_frame.h"

#include <QFontMetricsF>
#include <QPainter>
#include <algorithm>
#include <cmath>

namespace attnlab {
namespace {

constexpr double kFrameLines = 0.05;
constexpr double kTickLines = 0.3;

QString number_text(double value, int precision) {
  QString text = QString::number(value, 'g', precision);
  if (text.startsWith(QLatin1Char('-'))) text.replace(0, 1, QChar(0x2212));
  return text;
}

}  // namespace

std::vector<AxisTick> axis_ticks(const PlotAxis& axis) {
  std::vector<AxisTick> ticks;
  for (int precision = 3; precision <= 9; ++precision) {
    ticks.clear();
    QStringList texts;
    for (double v : axis.ticks) {
      ticks.push_back({v, number_text(v, precision)});
      texts << ticks.back().text;
    }
    if (texts.removeDuplicates() == 0) break;
  }
  return ticks;
}

std::vector<AxisTick> thinned_ticks(const std::vector<AxisTick>& ticks, double length, double pitch) {
  if (ticks.size() < 2 || pitch <= 0) return ticks;
  const double spacing = length / static_cast<double>(ticks.size() - 1);
  const auto stride = static_cast<std::size_t>(std::max(1.0, std::ceil(pitch / std::max(spacing, 1e-9))));
  std::vector<AxisTick> out;
  for (std::size_t i = 0; i < ticks.size(); i += stride) out.push_back(ticks[i]);
  return out;
}

PlotFrameRoom plot_frame_room(const FigureText& t, const QPaintDevice* device, const QStringList& y_tick_texts) {
  const QFontMetricsF fm(t.label, device);
  double widest = 0;
  for (const QString& s : y_tick_texts) widest = std::max(widest, fm.horizontalAdvance(s));
  return PlotFrameRoom{t.line + t.gap + widest + t.gap, 0.5 * t.gap + 2 * t.line + 0.5 * t.gap};
}

void draw_plot_frame(QPainter& painter, const QRectF& plot, const PlotFrame& f, const FigureText& t, const FigureStyle& style) {
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  QColor grid = style.foreground;
  grid.setAlphaF(0.15f);
  const double tick = kTickLines * t.line, pen = kFrameLines * t.line;
  for (const AxisTick& k : f.x_ticks) {
    const double px = plot.left() + f.x.fraction(k.value) * plot.width();
    if (f.x_grid) {
      painter.setPen(QPen(grid, pen));
      painter.drawLine(QPointF(px, plot.top()), QPointF(px, plot.bottom()));
    }
    painter.setPen(QPen(style.foreground, pen));
    painter.drawLine(QPointF(px, plot.bottom()), QPointF(px, plot.bottom() + tick));
    const double w = fm.horizontalAdvance(k.text) + t.line;
    painter.drawText(QRectF(px - 0.5 * w, plot.bottom() + 0.5 * t.gap, w, t.line), Qt::AlignCenter, k.text);
  }
  double label_w = 0;
  for (const AxisTick& k : f.y_ticks) {
    const double py = plot.bottom() - f.y.fraction(k.value) * plot.height();
    if (f.y_grid) {
      painter.setPen(QPen(grid, pen));
      painter.drawLine(QPointF(plot.left(), py), QPointF(plot.right(), py));
    }
    painter.setPen(QPen(style.foreground, pen));
    painter.drawLine(QPointF(plot.left() - tick, py), QPointF(plot.left(), py));
    painter.drawText(QRectF(plot.left() - t.gap - 10 * t.line, py - 0.5 * t.line, 10 * t.line, t.line),
                     Qt::AlignRight | Qt::AlignVCenter, k.text);
    label_w = std::max(label_w, fm.horizontalAdvance(k.text));
  }
  painter.setPen(QPen(style.foreground, pen));
  painter.setBrush(Qt::NoBrush);
  painter.drawRect(plot);
  const double x_room = plot.width() + 2 * t.line, y_room = plot.height() + 2 * t.line;
  painter.drawText(QRectF(plot.center().x() - 0.5 * x_room, plot.bottom() + 0.5 * t.gap + t.line, x_room, t.line),
                   Qt::AlignCenter, fm.elidedText(f.x_title, Qt::ElideRight, x_room));
  painter.translate(plot.left() - t.gap - label_w - t.gap - 0.5 * t.line, plot.center().y());
  painter.rotate(-90.0);
  painter.drawText(QRectF(-0.5 * y_room, -0.5 * t.line, y_room, t.line), Qt::AlignCenter,
                   fm.elidedText(f.y_title, Qt::ElideRight, y_room));
  painter.restore();
}

}  // namespace attnlab
