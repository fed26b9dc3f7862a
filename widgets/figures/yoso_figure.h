// The "YOSO kernel" figure: for one layer and head of a yoso result,
//   - collision probability against the query-key angle: the closed form (1 - θ/π)^τ as a curve
//     and the measured collision frequencies of the actual pairs (5° bins) as points;
//   - the sampled kernel B̂ and the expected kernel B side by side on one colour scale;
//   - their difference B̂ - B on the diverging map, symmetric around 0;
//   - the relative error ‖B̂ - B‖/‖B‖ from the first m' hashes, log-log, with the 1/sqrt(m')
//     reference line through its first point.
// YOSO's weights are the kernel applied, not row-normalised, and its outputs are scaled to unit
// length; the figure says so under the panels. Every number comes from YosoExtras
// (engine/attention/yoso.h); the figure only places and colours them. Panels flow into one, two
// or three rows, whichever gives the largest panels in the target; text keeps the font's size.
#pragma once

#include <QColor>
#include <QPainter>
#include <QRectF>
#include <QSizeF>
#include <vector>

#include "attention/yoso.h"
#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"
#include "trace_view.h"

namespace attnlab {

struct YosoFigureOptions {
  bool log_probability = true;  // collision plot: logarithmic probability axis (else linear)
};

// Where the parts of the figure fall, in the painter's units (hit testing, tests).
struct YosoFigureLayout {
  QRectF figure;
  QRectF title;
  std::vector<QRectF> panels;  // each panel with its caption and labels, in drawing order
  QRectF collision_plot;       // the plotting area (inside the axes)
  QRectF error_plot;
  QRectF sampled_panel, expected_panel, difference_panel;  // targets of the heatmap figures
  HeatmapFigureLayout sampled, expected, difference;       // their matrices, labels, colorbars
  QRectF legend;
  QRectF summary;

  // The query token under `pos` in any of the three heatmaps, or -1.
  int token_at(const QPointF& pos) const;
};

// The extras of the context's layer, or nullptr when they are not YOSO's.
const YosoExtras* yoso_extras(const ViewContext& context);

// Marker colours of the collision plot (Okabe-Ito vermillion for measured frequencies) and of
// the error plot (Okabe-Ito blue for the measured error); curves use the foreground colour.
QColor yoso_measured_color();
QColor yoso_error_color();

// The heatmaps the figure draws for the context's head: sampled and expected kernels on the
// shared scale [0, max of both], and the difference on [-a, a] with a = max |B̂ - B|.
HeatmapData yoso_sampled_heatmap(const ViewContext& context);
HeatmapData yoso_expected_heatmap(const ViewContext& context);
HeatmapData yoso_difference_heatmap(const ViewContext& context);

// Data → plot coordinates of the two plots, for tests and hit testing.
QPointF yoso_collision_point(const YosoFigureLayout& layout, const ViewContext& context, const YosoFigureOptions& options,
                             double angle, double probability);
QPointF yoso_error_point(const YosoFigureLayout& layout, const ViewContext& context, double hashes, double error);

QSizeF yoso_figure_size(const ViewContext& context, const FigureStyle& style);
// Throws ParamError when the context holds no yoso result.
YosoFigureLayout compute_yoso_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                     const QPaintDevice* device);
void draw_yoso_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                      const YosoFigureOptions& options = {});
PaintedFigure yoso_painted_figure(const ViewContext& context, const FigureStyle& style, const YosoFigureOptions& options = {});

// Data export of the view (format from the extension):
//   .json  the selected head's codes, kernels, error curve and angle bins (the layout of
//          YosoExtras::to_json with one head), plus layer, head and token texts;
//   .csv   one line per (query, key) of the selected head: indices, tokens, collisions, sampled,
//          expected, difference and the weight applied;
//   .npy   float32 [2, H, Lq, Lk]: the sampled (index 0) and expected (1) kernels of every head.
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_yoso_data(const ViewContext& context, const QString& path);

}  // namespace attnlab
