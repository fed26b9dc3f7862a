// The "Experts" figure: what the router of one mixture-of-experts layer decided (ExpertsTrace,
// engine/layers/moe.h):
//   - the token → expert grid (rows tokens, columns experts) coloured by the router probability
//     p (the gate of a Switch slot is its p; GShard renormalises the top two), on [0, largest p];
//     a mark in each kept slot's cell in the cell's contrasting colour (filled: first choice,
//     outlined: second choice) and an Okabe–Ito vermillion mark where a slot was routed but
//     dropped by the capacity;
//   - tokens left without any expert (dropped) in a vermillion band across their row and a
//     vermillion cell in the strip beside the grid (orange there: only the second choice dropped);
//   - slots per expert: demand (routed, before capacity) outlined, load (kept) filled, the
//     overflow in vermillion, against the capacity line C;
//   - the dropped tokens listed by index and text;
//   - aux loss, z loss, capacity and routing in the caption.
// Every number comes from the trace; the figure takes the largest p for the colour scale and
// counts dropped tokens for the caption, nothing more.
#pragma once

#include <QColor>
#include <QPainter>
#include <QRectF>
#include <QSizeF>

#include "figures/figure_export.h"
#include "figures/token_grid.h"
#include "layers/moe.h"
#include "trace_view.h"

namespace attnlab {

struct ExpertsFigureLayout {
  QRectF figure;
  QRectF title;
  TokenGridLayout grid;  // grid.strip: the dropped-token strip
  QRectF load_plot;      // slots per expert (inside the axes); empty when the figure is too narrow
  QRectF dropped_list;   // the list of dropped tokens
  QRectF legend;
  QRectF summary;

  // The token under `pos` (its label, grid row or strip cell), or -1.
  int token_at(const QPointF& pos) const;
};

// The layer the view draws (model_view_layer for "experts"), -1 when none routes to experts.
int experts_layer(const ViewContext& context);
const ExpertsTrace* experts_trace(const ViewContext& context);

// The grid: router probabilities [L, E] on [0, largest p].
TokenGridData experts_grid(const ViewContext& context);

QColor experts_dropped_color();  // Okabe–Ito vermillion: dropped slots, dropped tokens, overflow
QColor experts_partial_color();  // Okabe–Ito orange: a token that lost only its second choice
QColor experts_load_color();     // Okabe–Ito blue: kept slots per expert
// The mark of a kept slot: contrasting with its cell.
QColor experts_mark_color(const TokenGridData& grid, int token, int expert);

// (expert, slots) of the load plot, in the layout's units.
QPointF experts_load_point(const ExpertsFigureLayout& layout, const ViewContext& context, double expert, double slot_count);

QSizeF experts_figure_size(const ViewContext& context, const FigureStyle& style);
// Throws ParamError when the context's result has no experts trace.
ExpertsFigureLayout compute_experts_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device);
void draw_experts_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style);
PaintedFigure experts_painted_figure(const ViewContext& context, const FigureStyle& style);

// Data export (format from the extension):
//   .csv   one line per token: token_index, token, dropped, then per slot s = 1..k expert_s,
//          gate_s, routed_s (-1: none), then p_0 .. p_{E-1};
//   .json  ExpertsTrace::to_json with "layer", "layer_type", "tokens" ("head" is -1: no heads).
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_experts_data(const ViewContext& context, const QString& path);

}  // namespace attnlab
