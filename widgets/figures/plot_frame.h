// The frame of a small plot in a figure: a box, grid lines and ticks at given values, tick labels,
// and the axis titles (the y title turned to read bottom to top), drawn in the style's
// foreground; plus the room those take left of and below the plot. The halting and experts
// figures use it for their curves and bar charts; axes and data → point mapping are figure_kit's
// PlotAxis and plot_point.
#pragma once

#include <QRectF>
#include <QString>
#include <vector>

#include "figures/figure_kit.h"

class QPainter;
class QPaintDevice;

namespace attnlab {

struct AxisTick {
  double value = 0;
  QString text;
};

// Ticks at the axis's own tick values, written with the fewest digits that tell them apart.
std::vector<AxisTick> axis_ticks(const PlotAxis& axis);
// Every `stride`-th of `ticks`, always including the first, so that labels `pitch` apart fit into
// `length`.
std::vector<AxisTick> thinned_ticks(const std::vector<AxisTick>& ticks, double length, double pitch);

// Room left of the plot (y tick labels as wide as the widest of `y_tick_texts`, the y title) and
// below it (x tick labels, the x title).
struct PlotFrameRoom {
  double left = 0, bottom = 0;
};
PlotFrameRoom plot_frame_room(const FigureText& text, const QPaintDevice* device, const QStringList& y_tick_texts);

struct PlotFrame {
  PlotAxis x, y;
  std::vector<AxisTick> x_ticks, y_ticks;
  QString x_title, y_title;
  bool x_grid = true, y_grid = true;
};
void draw_plot_frame(QPainter& painter, const QRectF& plot, const PlotFrame& frame, const FigureText& text,
                     const FigureStyle& style);

}  // namespace attnlab
