// Line charts drawn with QPainter: series of (x, y) points on linear or logarithmic axes, with
// "nice" ticks (figure_kit.h), a legend and an optional note; series take their colours from the
// categorical palettes of figure_kit.h; optional error bars per point. Used for measured curves
// (activation memory against depth, approximation error against a swept hyperparameter; later
// the memory/time curves) in export and the CLI.
#pragma once

#include <QColor>
#include <QPointF>
#include <QString>
#include <utility>
#include <vector>

#include "figures/figure_export.h"
#include "figures/figure_kit.h"
#include "figures/heatmap_figure.h"

namespace attnlab {

struct ChartSeries {
  QString name;
  QColor color;
  std::vector<QPointF> points;  // in data units; non-positive values are skipped on a log axis
  bool dashed = false;          // for reference lines
  // Optional error bars: (low, high) in y data units per point (same length as points), drawn
  // as whiskers with caps; the y axis covers them. Empty: none.
  std::vector<std::pair<double, double>> y_ranges;
};

// Where the legend sits inside the plot. Auto: the corner whose legend box covers the fewest
// points of the drawn lines (ties in the order listed).
enum class LegendCorner { TopLeft, TopRight, BottomLeft, BottomRight, Auto };

struct LineChart {
  QString title;
  QString x_label;
  QString y_label;
  bool log_x = false;
  bool log_y = false;
  std::vector<ChartSeries> series;
  QString note;  // one line under the title
  LegendCorner legend = LegendCorner::TopLeft;
  // Optional ticks of the x axis at these values (e.g. the values of a sweep), labelled as
  // numbers; the axis then spans them with a little room. Empty: decades or 1-2-5 ticks.
  std::vector<double> x_ticks;
};

QSizeF line_chart_size(const LineChart& chart, const FigureStyle& style);  // points
void draw_line_chart(QPainter& painter, const QRectF& target, const LineChart& chart, const FigureStyle& style);
PaintedFigure line_chart_figure(const LineChart& chart, const FigureStyle& style);

}  // namespace attnlab
