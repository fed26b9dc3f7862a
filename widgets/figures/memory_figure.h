// The "∞-former memory" figure: how one ∞-former layer of a model read its continuous long-term
// memory for one segment (MemoryTrace, engine/layers/infinity_memory.h):
//   - the memory as that segment read it: the values it was fitted to (points at their
//     positions t_i, a few channels) against the reconstructed signal X̄(t) (curves), with the
//     region [0, τ] that holds the older memory compressed shaded (segments s ≥ 2);
//   - each query's Gaussian N(t; μ, σ²) over [0, 1] for the selected head, as a density strip
//     (queries as rows, t as columns, the colormap) — averaged over 128 bins, so a narrow
//     Gaussian still shows;
//   - the same densities as curves, the highlighted token's drawn over the others;
//   - with sticky memories, the histogram of the attention mass that decides where the next
//     compression samples the old signal;
//   - segment, τ, basis size and the highlighted query's μ and σ in the captions.
// A text that fits into one segment has no memory read: the figure says so. Every number comes
// from the trace; the figure only places and colours it.
#pragma once

#include <QColor>
#include <QPainter>
#include <QRectF>
#include <QSizeF>

#include "figures/figure_export.h"
#include "figures/token_grid.h"
#include "layers/infinity_memory.h"
#include "trace_view.h"

namespace attnlab {

struct MemoryFigureOptions {
  int segment = -1;   // the segment s whose read is drawn (>= 1); -1: the last one
  int channels = 3;   // channels of the memory signal drawn (1 .. 6, at most the trace's)
};

inline constexpr int kMemoryMaxChannels = 6;

// Where the parts fall, in the painter's units (hit testing, tests). Without a memory read only
// title, message and summary are set.
struct MemoryFigureLayout {
  QRectF figure;
  QRectF title;
  QRectF message;        // why nothing is drawn (one segment); empty otherwise
  QRectF signal_plot;    // X̄(t) and the stored points (inside the axes)
  QRectF density_plot;   // the queries' densities as curves
  QRectF sticky_plot;    // the sticky histogram; empty unless sticky
  TokenGridLayout grid;  // the density strip: rows are the segment's queries
  int first_token = 0;   // the token of grid row 0
  QRectF summary;

  // The token under `pos` (a strip row or its label), or -1.
  int token_at(const QPointF& pos) const;
};

// The layer the view draws (model_view_layer for "memory"), -1 when none carries a memory trace.
int memory_layer(const ViewContext& context);
const MemoryTrace* memory_trace(const ViewContext& context);
// The read the figure draws for `options.segment` (clamped to the segments read), or nullptr
// when the memory was never read.
const MemorySegmentTrace* memory_read(const ViewContext& context, const MemoryFigureOptions& options);
// The channels the figure draws: min(options.channels, stored channels, kMemoryMaxChannels).
int memory_channels_shown(const MemorySegmentTrace& read, const MemoryFigureOptions& options);

// The density strip of the read for context.head: [S, 128] on [min, max] of the strip.
TokenGridData memory_density_grid(const ViewContext& context, const MemoryFigureOptions& options);

// Colours: channel c of the signal (Okabe–Ito, no orange); the highlighted query (orange); the
// sticky histogram's bars (bluish green).
QColor memory_channel_color(int channel);
QColor memory_highlight_color();
QColor memory_sticky_color();

// Data → plot coordinates.
QPointF memory_signal_point(const MemoryFigureLayout& layout, const ViewContext& context, const MemoryFigureOptions& options,
                            double t, double value);
QPointF memory_density_point(const MemoryFigureLayout& layout, const ViewContext& context, const MemoryFigureOptions& options,
                             double t, double density);
// The top centre of bin `bin`'s bar in the sticky histogram.
QPointF memory_sticky_point(const MemoryFigureLayout& layout, const ViewContext& context, const MemoryFigureOptions& options, int bin);

QSizeF memory_figure_size(const ViewContext& context, const FigureStyle& style);
// Throws ParamError when the context's result has no ∞-former layer.
MemoryFigureLayout compute_memory_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                         const QPaintDevice* device, const MemoryFigureOptions& options = {});
void draw_memory_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                        const MemoryFigureOptions& options = {});
PaintedFigure memory_painted_figure(const ViewContext& context, const FigureStyle& style, const MemoryFigureOptions& options = {});

// Data export (format from the extension):
//   .csv   one line per query token of the drawn segment: token_index, token, segment, mu and
//          sigma of context.head, mu_mean and sigma_mean over heads (a header only when the
//          memory was never read);
//   .json  MemoryTrace::to_json (every read) with "drawn_segment" (-1: none), "layer",
//          "layer_type", "head" and "tokens".
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_memory_data(const ViewContext& context, const QString& path, const MemoryFigureOptions& options = {});

}  // namespace attnlab
