// Line charts drawn with QPainter: series of (x, y) points on linear or logarithmic axes, with
// "nice" ticks, a legend and an optional note. Used for measured curves (activation memory
// against depth; later the memory/time curves) in export and the CLI.
#pragma once

#include <QColor>
#include <QPointF>
#include <QString>
#include <vector>

#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"

namespace attnlab {

struct ChartSeries {
  QString name;
  QColor color;
  std::vector<QPointF> points;  // in data units; non-positive values are skipped on a log axis
  bool dashed = false;          // for reference lines
};

struct LineChart {
  QString title;
  QString x_label;
  QString y_label;
  bool log_x = false;
  bool log_y = false;
  std::vector<ChartSeries> series;
  QString note;  // one line under the title
};

// Colour-blind-friendly categorical colours (Okabe–Ito), for series and categories.
QColor categorical_color(int index);

QSizeF line_chart_size(const LineChart& chart, const FigureStyle& style);  // points
void draw_line_chart(QPainter& painter, const QRectF& target, const LineChart& chart, const FigureStyle& style);
PaintedFigure line_chart_figure(const LineChart& chart, const FigureStyle& style);

}  // namespace attnlab
