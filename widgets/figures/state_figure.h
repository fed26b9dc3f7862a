// The "Streaming state" figure: the state a recurrent (linear-time) form of attention carries as
// tokens arrive (RecurrentStates of linear, performer, delta, t2r), for one layer, head and
// snapshot step:
//   - the state matrix after that step as a heatmap in the variant's own layout (rows and
//     columns named by RecurrentStates' axes), on the diverging map symmetric about zero when
//     the head's states take negative values, else on the sequential map from zero; the range
//     covers every step of the head, so colours compare across steps;
//   - the normaliser z at that step as bars (when the form has one), on the range of all steps;
//   - the tokens, those already absorbed tinted, the current one marked;
//   - the retrieval error of the stored pairs over steps (delta; NaN snapshots skipped) with the
//     current step marked;
//   - the state formula.
// Everything comes from the trace; the figure only copies and colours.
#pragma once

#include <QRectF>
#include <QSizeF>
#include <vector>

#include "attention/recurrent_state.h"
#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"
#include "trace_view.h"

namespace attnlab {

struct StateFigureOptions {
  int step = -1;  // snapshot index 0..T−1; −1 (or anything past the last) = the last
};

// The recurrent extras of the context's layer, or nullptr.
const RecurrentTraceExtras* recurrent_extras(const ViewContext& context);
// Whether the view can draw `result`: its layers carry RecurrentTraceExtras with states (for
// performer only its causal form).
bool result_has_recurrent_state(const PlaygroundResult& result);
// The snapshot index `step` stands for: −1 and values past the last give T−1; 0 when T = 0.
int resolve_state_step(const RecurrentStates& states, int step);
// Whether the state's rows index keys (S = Σ φ(k) vᵀ [dk, dv]) or, as the engine marks it
// values (the delta rule's fast weights W [dv, dk], which map a key to a value).
bool state_rows_are_keys(const RecurrentStates& states);
// The state of `head` after snapshot `step` (resolved) as heatmap data, colour range over every
// step of the head.
HeatmapData state_heatmap(const ViewContext& context, int step);

struct StateFigureLayout {
  QRectF figure;
  QRectF title;
  std::vector<QRectF> panels;
  QRectF state_panel;        // target of the heatmap figure
  HeatmapFigureLayout state;
  QRectF normalizer;         // plot area of the bars; empty without a normaliser
  QRectF tokens;             // 1 x L cells
  QRectF error_plot;         // plot area; empty without retrieval errors
  QRectF formula;
  QRectF summary;
  std::int64_t length = 0;

  QPointF token_centre(std::int64_t token) const;
  // The token under `pos` (a cell of the token strip), or -1.
  int token_at(const QPointF& pos) const;
};

QSizeF state_figure_size(const ViewContext& context, const FigureStyle& style);
// Throws ParamError when the context holds no recurrent state.
StateFigureLayout compute_state_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                       const QPaintDevice* device);
void draw_state_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                       const StateFigureOptions& options = {});
PaintedFigure state_painted_figure(const ViewContext& context, const FigureStyle& style, const StateFigureOptions& options = {});

// Colours the figure uses, for tests: a normaliser bar, an absorbed token, a token still to come,
// the error curve.
QColor state_bar_color();
QColor state_absorbed_color(const FigureStyle& style);
QColor state_pending_color(const FigureStyle& style);
QColor state_error_color();

// Data export of the view (format from the extension):
//   .json  variant, formula, axes, steps, the selected step, state shape, and for the head: the
//          normalisers [T][dk] (or null) and retrieval errors [T] (null where not evaluated),
//          with layer, head and token texts;
//   .npy   float32 [T, rows, cols]: the head's states in the variant's layout.
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_state_data(const ViewContext& context, const QString& path);

}  // namespace attnlab
