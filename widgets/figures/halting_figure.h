// The "Halting map" figure: what Adaptive Computation Time decided in one universal layer of a
// model (HaltingTrace, engine/layers/act.h):
//   - the token × step map of the halting probabilities p on [0, 1] (rows tokens, columns the
//     steps the loop ran), blank after a token's last step; a bar along the right edge of each
//     token's last cell (the whole cell outlined when rows are taller than a line): the
//     foreground colour where the token halted (hp + p > 1 − ε), Okabe–Ito vermillion where
//     max_steps stopped it;
//   - beside the map, each token's remainder R as a bar on [0, 1] (stopped tokens get none and a
//     vermillion tick instead);
//   - the cumulative halting probability hp against the step: every token faint, the highlighted
//     token in orange with its last step marked, the threshold 1 − ε dashed;
//   - how many tokens halted at each step (stopped ones stacked in vermillion);
//   - threshold, max steps, steps run, ponder cost and tokens stopped in the caption.
// Every number comes from the trace; the figure counts tokens per step and takes a mean for the
// caption, nothing more.
#pragma once

#include <QColor>
#include <QPainter>
#include <QRectF>
#include <QSizeF>

#include "figures/figure_export.h"
#include "figures/token_grid.h"
#include "layers/act.h"
#include "trace_view.h"

namespace attnlab {

// Where the parts fall, in the painter's units (hit testing, tests).
struct HaltingFigureLayout {
  QRectF figure;
  QRectF title;
  TokenGridLayout grid;  // grid.strip holds the remainder bars
  QRectF curve_plot;     // hp against step (inside the axes); empty when the figure is too narrow
  QRectF count_plot;     // tokens per halting step
  QRectF legend;
  QRectF summary;

  // The token under `pos` (its label, map row or remainder bar), or -1.
  int token_at(const QPointF& pos) const;
};

// The layer the view draws (model_view_layer for "halting"), -1 when none carries a halting trace.
int halting_layer(const ViewContext& context);
// That layer's trace, or nullptr.
const HaltingTrace* halting_trace(const ViewContext& context);

// The map: p of each token at each step the loop ran on [0, 1]; NaN after the token's last step.
TokenGridData halting_grid(const ViewContext& context);

QColor halting_stopped_color();  // Okabe–Ito vermillion: stopped by max_steps
QColor halting_curve_color();    // Okabe–Ito orange: the highlighted token's hp curve
QColor halting_count_color();    // Okabe–Ito bluish green: halted tokens per step; the R bars
// The mark of a halted token's last cell (the style's foreground: it borders the blank cells).
QColor halting_mark_color(const FigureStyle& style);
// The bar along the right edge of the cell (token, step_index) that marks it as the token's last.
QRectF halting_mark_rect(const TokenGridLayout& grid, int token, int step_index, double line);

// (step, hp) of the curve plot and the end of token's remainder bar, in the layout's units.
QPointF halting_curve_point(const HaltingFigureLayout& layout, const ViewContext& context, double step, double hp);
QPointF halting_remainder_end(const HaltingFigureLayout& layout, int token, double remainder);
// The top centre of the bar counting `count` tokens at `step` (1-based) of the count plot.
QPointF halting_count_point(const HaltingFigureLayout& layout, const ViewContext& context, int step, int count);

QSizeF halting_figure_size(const ViewContext& context, const FigureStyle& style);
// Throws ParamError when the context's result has no halting trace.
HaltingFigureLayout compute_halting_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device);
void draw_halting_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style);
PaintedFigure halting_painted_figure(const ViewContext& context, const FigureStyle& style);

// Data export (format from the extension):
//   .csv   one line per token and step the loop ran: token_index, token, step (1-based),
//          probability, update_weight, cumulative, then the token's steps, remainder,
//          weights_sum and stopped_by_max (repeated on each of its lines);
//   .json  HaltingTrace::to_json with "layer", "layer_type", "tokens" ("head" is -1: no heads).
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_halting_data(const ViewContext& context, const QString& path);

}  // namespace attnlab
