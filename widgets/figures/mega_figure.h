// The "Mega EMA and gates" figure: what one Mega layer of a model computed (MegaTrace,
// engine/layers/mega.h):
//   - the damped-EMA kernel k of every channel against the lag (channel × lag map, diverging
//     colormap, each channel scaled to its own largest |k| or all to one scale); a bidirectional
//     layer's kernel b over later tokens on the negative offsets;
//   - the decay of four channels (slowest to fastest by the trace's max_j q_j) as |k| / max |k|
//     on decades, marked beside the map in their colours;
//   - the chunk-block attention weights (one head: Mega's attention is single-headed) with the
//     chunks outlined;
//   - the update gate u and the reset gate r per token (means over channels), each on its own
//     colour scale;
//   - attention function, chunk size and EMA direction in the caption.
// Every number comes from the trace; the figure scales kernels for colour, picks the curve
// channels and outlines chunks, nothing more.
#pragma once

#include <QPainter>
#include <QRectF>
#include <QSizeF>

#include "figures/figure_export.h"
#include "figures/kernel_plots.h"
#include "figures/token_grid.h"
#include "layers/mega.h"
#include "trace_view.h"

namespace attnlab {

struct MegaFigureOptions {
  KernelScale kernel_scale = KernelScale::PerChannel;
};

// Where the parts fall, in the painter's units (hit testing, tests).
struct MegaFigureLayout {
  QRectF figure;
  QRectF title;
  TokenGridLayout kernel;         // the EMA kernel map; kernel.strip holds the curve channels' marks
  QRectF curves_plot;             // decay curves (inside the axes)
  QRectF attention_panel;         // target of the attention heatmap
  HeatmapFigureLayout attention;  // its matrix, labels and colorbar
  TokenGridLayout gate_u, gate_r;
  QRectF summary;

  // The token under `pos` (a gate row or label, an attention row or its label), or -1.
  int token_at(const QPointF& pos) const;
};

// The layer the view draws (model_view_layer for "mega"), -1 when none carries a Mega trace.
int mega_layer(const ViewContext& context);
const MegaTrace* mega_trace(const ViewContext& context);

// The kernel map as drawn (see kernel_plots.h).
KernelMap mega_kernel_map(const ViewContext& context, const MegaFigureOptions& options = {});
// The curves: up to four channels spread over the order of the trace's decay, slowest first.
KernelCurves mega_kernel_curves(const ViewContext& context);
// A gate per token: u (update) or r (reset), on [min, max] of the gate over the tokens.
TokenGridData mega_gate_grid(const ViewContext& context, bool reset_gate);
// The attention weights [L, L] of the trace (head 0), untitled.
HeatmapData mega_attention_heatmap(const ViewContext& context);

QSizeF mega_figure_size(const ViewContext& context, const FigureStyle& style);
// Throws ParamError when the context's result has no Mega layer.
MegaFigureLayout compute_mega_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                     const QPaintDevice* device);
void draw_mega_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                      const MegaFigureOptions& options = {});
PaintedFigure mega_painted_figure(const ViewContext& context, const FigureStyle& style, const MegaFigureOptions& options = {});

// Data export (format from the extension):
//   .csv   one line per token: token_index, token, gate_u, gate_r, chunk (the token's chunk index);
//   .json  MegaTrace::to_json with "layer", "layer_type", "tokens" ("head" is 0);
//   .npy   float32 [D, lags]: the forward EMA kernel k, or [2, D, lags] with the backward kernel b
//          at index 1 when the layer is bidirectional.
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_mega_data(const ViewContext& context, const QString& path);

}  // namespace attnlab
