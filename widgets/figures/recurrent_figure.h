// The "Block-recurrent state" figure: one block-recurrent layer of a model (Hutchins et al. 2022,
// engine/layers/block_recurrent.h), read window by window:
//   - the state norms ‖s_w‖ as a heatmap of windows × state slots (row w: the state window w
//     reads; row 0 the learned initial state, the last row the state after the last window).
//     Norms rather than components: a state vector has D components (256 in the presets), far
//     too many to show per slot, and its norm shows which slots grow, shrink or stay put;
//   - the keep gate per window and slot (mean over the D features of the gate on the old state:
//     the forget gate F for "lstm", G for "full", σ(gate_bias) for "fixed") on [0, 1];
//   - the token self-attention of the selected head: the banded window mask (each query sees
//     the previous window and, causally, its own; the keys outside it greyed out), window
//     boundaries dashed over it and the selected window's band outlined;
//   - the state ↔ token cross-attention of the selected window (head means, as the engine
//     records them), both with state slots as rows and tokens as columns: the states reading the
//     tokens of windows w − 1 and w, and the tokens of window w reading the states.
// The token attention stands on the left, the state panels in a column on its right.
// A layer with recurrent = false carries no state: the figure says so (and names the recurrent
// layers of the model) instead of drawing empty state panels. Every number comes from
// BlockRecurrentTrace and the layer's attention weights; the figure only crops, places and
// colours them.
#pragma once

#include <QColor>
#include <QPainter>
#include <QRectF>
#include <QSizeF>
#include <cstdint>
#include <vector>

#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"
#include "layers/block_recurrent.h"
#include "trace_view.h"

namespace attnlab {

struct RecurrentFigureOptions {
  int window = 0;  // the window whose cross-attention is shown; past the last: the last
};

// Where the parts of the figure fall, in the painter's units (hit testing, tests).
struct RecurrentFigureLayout {
  QRectF figure;
  QRectF title;
  std::vector<QRectF> panels;  // each panel with its caption and labels, in drawing order
  int layer = -1;              // the layer drawn
  bool recurrent = false;
  std::int64_t length = 0;
  std::int64_t window = 0;         // the selected window (resolved)
  std::int64_t window_first = 0;   // its first token
  std::int64_t window_tokens = 0;  // its tokens (the last window may be short)
  std::int64_t span_first = 0;     // first token of the states' columns (window w − 1, or w for w = 0)
  std::int64_t span_tokens = 0;
  // Targets of the heatmap figures and their matrices; empty for a layer without state.
  QRectF norms_panel, gates_panel, attention_panel, state_token_panel, token_state_panel;
  HeatmapFigureLayout norms, gates, attention, state_token, token_state;
  QRectF note;  // the text that stands in for the state panels of a non-recurrent layer
  QRectF legend;
  QRectF summary;

  // The token under `pos`: the query row of the token attention, the token column of either
  // cross-attention table; -1 elsewhere.
  int token_at(const QPointF& pos) const;
};

// The trace the view draws (the context's layer when it is block-recurrent, else the first
// block-recurrent layer), or nullptr.
const BlockRecurrentTrace* block_recurrent_trace(const ViewContext& context);
// The window `window` stands for: values past the last give the last; 0 for a trace without windows.
std::int64_t resolve_recurrent_window(const BlockRecurrentTrace& trace, int window);
// The layers of the result whose block-recurrent trace is recurrent.
std::vector<int> recurrent_state_layers(const PlaygroundResult& result);

// Colours of the marks drawn over the heatmaps: the selected window's band and the boundary
// between windows w − 1 and w (Okabe–Ito vermillion); the window grid is dashed in the colour
// that contrasts with the colormap's low end.
QColor recurrent_window_color();
// The keys outside the window mask (a query of window w sees only windows w − 1 and w, causally):
// the background with a little of the foreground.
QColor recurrent_masked_color(const FigureStyle& style);

// The heatmaps as drawn, for tests: norms on [0, largest norm], gates on [0, 1], the token
// attention of context.head on [0, its largest weight], the selected window's cross-attention
// on [0, the largest weight of each table]. Sequential colormaps: the context's, or viridis when
// the context's is diverging. Throw ParamError when the drawn layer is not recurrent (all but
// the token attention). The token attention's cells outside the window mask are drawn over in
// recurrent_masked_color; the tokens' reading of the states is transposed (slots × tokens).
HeatmapData recurrent_norms_heatmap(const ViewContext& context);
HeatmapData recurrent_gates_heatmap(const ViewContext& context);
HeatmapData recurrent_attention_heatmap(const ViewContext& context);
HeatmapData recurrent_state_token_heatmap(const ViewContext& context, const RecurrentFigureOptions& options);
HeatmapData recurrent_token_state_heatmap(const ViewContext& context, const RecurrentFigureOptions& options);

QSizeF recurrent_figure_size(const ViewContext& context, const FigureStyle& style, const RecurrentFigureOptions& options = {});
// Throws ParamError when the context holds no block-recurrent layer.
RecurrentFigureLayout compute_recurrent_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                               const QPaintDevice* device, const RecurrentFigureOptions& options = {});
void draw_recurrent_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                           const RecurrentFigureOptions& options = {});
PaintedFigure recurrent_painted_figure(const ViewContext& context, const FigureStyle& style,
                                       const RecurrentFigureOptions& options = {});

// Data export of the view (format from the extension):
//   .csv   one line per (window, state slot): the window, its first and last token (index and
//          text), the slot, the norm of the state the window reads and of the state it leaves,
//          and the keep gate; a non-recurrent layer gives one line per window with the state
//          columns empty;
//   .json  the layer's BlockRecurrentTrace (BlockRecurrentTrace::to_json) with the selected
//          window, the layer's type and the layer, head and token texts;
//   .npy   float32 [n_w + 1, S, D]: the states (a non-recurrent layer has none: ParamError).
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_recurrent_data(const ViewContext& context, const QString& path);

}  // namespace attnlab
