// The "BigBird blocks" figure: for one layer and head of a bigbird result,
//   - the block grid (query block x key block) coloured by block type: window, global, random;
//   - the token-level mask (L x L) in the same colours, with the causal and padding masks;
//   - the attention weights inside it (the heatmap figure, with token labels and a colorbar);
//   - the receptive field: which key blocks each query block reaches, coloured by the number of
//     layers of this pattern it takes (1..4), cut at `receptive_layers`;
//   - small multiples of the block grid of every head of the layer.
// Everything drawn comes from BigBirdExtras (engine/attention/bigbird.h) and the trace weights;
// the figure only copies and colours. Panels flow into one, two or three rows, whichever gives
// the largest matrices in the target; text keeps the font's size, so the figure reads the same
// in a small dock and on a 300 dpi page.
#pragma once

#include <QColor>
#include <QPainter>
#include <QRectF>
#include <QSizeF>
#include <vector>

#include "attention/bigbird.h"
#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"
#include "trace_view.h"

namespace attnlab {

struct BigBirdFigureOptions {
  // 1..kMaxReceptiveLayers: receptive-field cells that need more layers are drawn as not reached.
  int receptive_layers = BigBirdExtras::kMaxReceptiveLayers;
};

// Where the parts of the figure fall, in the painter's units (hit testing, tests).
struct BigBirdFigureLayout {
  QRectF figure;
  QRectF title;
  std::vector<QRectF> panels;       // each panel with its captions and labels, in drawing order
  QRectF block_grid;                // nb x nb cells of the selected head
  QRectF token_mask;                // L x L cells
  QRectF heatmap_panel;             // target of the heatmap figure
  HeatmapFigureLayout heatmap;      // its matrix, labels and colorbar
  QRectF receptive;                 // nb x nb cells
  std::vector<QRectF> head_grids;   // nb x nb cells per head, in head order
  QRectF legend;
  QRectF summary;                   // the line of numbers at the bottom
  std::int64_t blocks = 0;
  std::int64_t length = 0;

  // Centre of a cell of an nb x nb grid / of the L x L token mask.
  static QPointF cell_centre(const QRectF& grid, std::int64_t n, std::int64_t row, std::int64_t col);
  // The query token under `pos` (for block grids the first token of the block row), or -1.
  int token_at(const QPointF& pos, std::int64_t block_size) const;
};

// The extras of the context's layer, or nullptr when they are not BigBird's.
const BigBirdExtras* bigbird_extras(const ViewContext& context);

// The fixed, colour-blind-safe colours of the block types (Okabe-Ito blue, orange, reddish
// purple); "none" is the background tinted towards the foreground, so it follows the theme.
QColor bigbird_block_color(BigBirdBlock type, const FigureStyle& style);
// A receptive-field cell first reached after `layers` layers (1..4); 0 = not reached.
QColor bigbird_reach_color(int layers, ColormapId colormap, const FigureStyle& style);

QSizeF bigbird_figure_size(const ViewContext& context, const FigureStyle& style);
// Throws ParamError when the context holds no bigbird result.
BigBirdFigureLayout compute_bigbird_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device);
void draw_bigbird_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                         const BigBirdFigureOptions& options = {});
PaintedFigure bigbird_painted_figure(const ViewContext& context, const FigureStyle& style,
                                     const BigBirdFigureOptions& options = {});

// Data export of the view (format from the extension):
//   .json  the layer's BigBirdExtras::to_json() plus layer, head and token texts;
//   .csv   one line per (query, key) of the selected head: indices, tokens, blocks, block type,
//          visible (0/1) and the attention weight;
//   .npy   float32 [H, nb, nb] block types of every head (0 none, 1 window, 2 global, 3 random).
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_bigbird_data(const ViewContext& context, const QString& path);

}  // namespace attnlab
