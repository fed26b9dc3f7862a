// The "Perceiver AR" figure: one Perceiver AR layer of a model (Hawthorne et al. 2022,
// engine/layers/perceiver_ar.h) for the selected head:
//   - the cross-attention as a rectangle: the N latents (the last N positions) as rows, all L
//     positions as columns, the boundary between the prefix (positions 0 .. Lp − 1) and the
//     latents marked; row i is causal: it sees the prefix and the latents up to its own position;
//   - the attention mass each latent puts on the prefix and on the recent (latent) positions, as
//     stacked bars on [0, 1];
//   - the causal self-attention of one latent layer (view option latent_layer) over the latents.
// Prefix length, latents, latent layers and the keys hidden by prefix dropout are written under
// the panels. A layer with no latent layers shows a note instead of the third panel; a text not
// longer than N has no prefix, which the caption says. Every number comes from PerceiverTrace;
// the figure only places and colours them.
#pragma once

#include <QColor>
#include <QPainter>
#include <QRectF>
#include <QSizeF>
#include <cstdint>
#include <vector>

#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"
#include "layers/perceiver_ar.h"
#include "trace_view.h"

namespace attnlab {

struct PerceiverFigureOptions {
  int latent_layer = 0;  // the latent layer whose self-attention is shown; past the last: the last
};

// Where the parts of the figure fall, in the painter's units (hit testing, tests).
struct PerceiverFigureLayout {
  QRectF figure;
  QRectF title;
  std::vector<QRectF> panels;  // each panel with its caption and labels, in drawing order
  int layer = -1;              // the layer drawn
  std::int64_t length = 0, latents = 0, prefix_length = 0;
  int latent_layer = -1;  // the latent layer shown (resolved); -1: the layer has none
  QRectF cross_panel, latent_panel;  // targets of the heatmap figures
  HeatmapFigureLayout cross, latent;
  QRectF mass_plot;  // the bars' plotting area
  QRectF note;       // stands in for the latent panel when there are no latent layers
  QRectF legend;
  QRectF summary;

  // In the mass plot: the centre of latent `index`'s bar at height `mass` (0 at the bottom, 1 at the top).
  QPointF mass_point(std::int64_t index, double mass) const;
  // The x of the prefix | latent boundary in the cross-attention (its left edge when Lp = 0).
  double boundary_x() const;
  // The token under `pos`: a latent row (cross-attention, latent attention) or bar; -1 elsewhere.
  int token_at(const QPointF& pos) const;
};

// The trace the view draws (the context's layer when it is a Perceiver AR layer, else the first
// one), or nullptr.
const PerceiverTrace* perceiver_trace(const ViewContext& context);
// The latent layer `latent_layer` stands for: past the last gives the last; -1 when there are none.
int resolve_latent_layer(const PerceiverTrace& trace, int latent_layer);

// Colours: the prefix and recent parts of the bars (Okabe–Ito blue and orange) and the
// prefix | latent boundary over the cross-attention (Okabe–Ito vermillion).
QColor perceiver_prefix_color();
QColor perceiver_recent_color();
QColor perceiver_boundary_color();

// The heatmaps as drawn, for tests: the cross-attention of context.head on [0, its largest
// weight]; the latent self-attention of the resolved latent layer and context.head on [0, its
// largest weight] (ParamError when the layer has no latent layers). Sequential colormaps: the
// context's, or viridis when the context's is diverging.
HeatmapData perceiver_cross_heatmap(const ViewContext& context);
HeatmapData perceiver_latent_heatmap(const ViewContext& context, const PerceiverFigureOptions& options);

QSizeF perceiver_figure_size(const ViewContext& context, const FigureStyle& style, const PerceiverFigureOptions& options = {});
// Throws ParamError when the context holds no Perceiver AR layer.
PerceiverFigureLayout compute_perceiver_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                               const QPaintDevice* device, const PerceiverFigureOptions& options = {});
void draw_perceiver_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                           const PerceiverFigureOptions& options = {});
PaintedFigure perceiver_painted_figure(const ViewContext& context, const FigureStyle& style,
                                       const PerceiverFigureOptions& options = {});

// Data export of the view (format from the extension):
//   .csv   one line per latent of the selected head: latent index, its position and token, the
//          attention mass on the prefix and on the recent (latent) positions;
//   .json  latents, prefix_length, dropped_prefix, prefix_mass and recent_mass of every head,
//          and the selected head's cross_weights [N][L] and latent_weights [layers][N][N], with
//          the layer's type, the selected latent layer, layer, head and token texts;
//   .npy   float32 [H, N, L]: the cross-attention of every head.
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_perceiver_data(const ViewContext& context, const QString& path);

}  // namespace attnlab
