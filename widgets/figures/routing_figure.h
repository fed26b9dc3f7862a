// The "Routing clusters" figure of a routing-attention result (one layer, one head), drawn with
// QPainter for the widget, for PNG/SVG/PDF export and for `attnlab-cli figure --view clusters`:
//   - the PCA plane of the normalised queries (●) and keys (▲), coloured by their nearest
//     centroid at the shown k-means step, with the centroids (◆) and the path each took over the
//     steps so far; unrouted queries (output 0) are hollow;
//   - the occupancy histogram at that step (queries solid, keys pale) with the window marked;
//   - the routed attention matrix in token order (draw_heatmap_figure);
//   - the cluster × token membership grid of the final routing, under the matrix's key columns
//     (or, on a wide target, beside its query rows).
// Every number comes from the engine's RoutingExtras; nothing is computed here but positions.
// Lengths derive from the font's line height on the painter's device (see heatmap_figure.h).
#pragma once

#include <QColor>
#include <QPointF>
#include <QRectF>
#include <QSizeF>
#include <QStringList>
#include <memory>

#include "attention/routing.h"
#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"
#include "heatmap_data.h"
#include "models/playground.h"

class QPainter;
class QPaintDevice;

namespace attnlab {

// One head of one layer of a routing result, ready to draw.
struct RoutingFigureData {
  QString variant_title;  // "routing · layer 1 · head 3 · causal"
  int layer = 0;
  int head = 0;
  QStringList tokens;
  std::shared_ptr<const RoutingExtras> extras;  // shares the result's trace
  HeatmapDataPtr matrix;                        // the routed weights [L, L], token order

  const RoutingHeadTrace& trace() const { return extras->head(head); }
  bool local() const { return trace().local; }
  int steps() const { return static_cast<int>(trace().steps); }
};

// Throws ParamError when the layer or head does not exist or the layer has no routing trace.
RoutingFigureData routing_figure_data(const PlaygroundResult& result, int layer, int head, ColormapId colormap);

struct RoutingFigureOptions {
  int step = -1;         // k-means step shown (0 = initial centroids); -1 = the last
  int highlighted = -1;  // token marked in every panel; -1 for none
};

// Where the panels fall in a target rectangle (device units); for hit testing and tests.
struct RoutingFigureLayout {
  QRectF figure;
  QRectF title, info;       // header lines
  QRectF scatter;           // frame of the PCA plane; empty for a local head
  QRectF histogram;         // plot area of the occupancy bars; empty for a local head
  QRectF legend;
  QRectF heatmap;           // target of the routed matrix
  HeatmapFigureLayout matrix;  // the matrix inside `heatmap`
  QRectF members;           // the membership grid; empty for a local head
  // Below the matrix: a row per cluster, a column per token (under the matrix's key columns).
  // Beside the matrix (wide targets): a row per token (beside its query row), a column per cluster.
  bool members_by_row = false;
  QRectF members_title;
  double line = 0.0;        // font line height
  double marker = 0.0;      // radius of a token marker in the plane
  // PCA plane -> device: centre of the data, scale (equal on both axes).
  QPointF plane_centre;
  double plane_scale = 1.0;
  // Histogram: height of one token, the same at every step (the largest occupancy fits).
  double count_scale = 0.0;
  int clusters = 0;

  QPointF to_scatter(double x, double y) const;
  // Cluster c's band, token j's cell in the membership grid; the half of that cell marking the
  // query (upper / left half) or the key (lower / right half).
  QRectF member_cell(int cluster, int token) const;
  QRectF member_half(int cluster, int token, bool key) const;
  // The bar of `count` queries (or keys) nearest to cluster c.
  QRectF histogram_bar(int cluster, bool keys, int count) const;
};

QColor routing_cluster_color(int cluster);  // Okabe–Ito palette, repeating every 8 clusters

QSizeF routing_figure_size(const RoutingFigureData& data, const FigureStyle& style);  // points
RoutingFigureLayout compute_routing_layout(const RoutingFigureData& data, const FigureStyle& style,
                                           const QRectF& target, const QPaintDevice* device);
void draw_routing_figure(QPainter& painter, const QRectF& target, const RoutingFigureData& data,
                         const FigureStyle& style, const RoutingFigureOptions& options);

// The token under `pos`: a marker in the plane, a column of the grid, a row of the matrix; -1.
int routing_token_at(const RoutingFigureLayout& layout, const RoutingFigureData& data, QPointF pos);

// The figure at `options` for export (keeps `data` alive).
PaintedFigure routing_painted_figure(const RoutingFigureData& data, const FigureStyle& style,
                                     const RoutingFigureOptions& options = {});

}  // namespace attnlab
