// The "Gated state space" figure: what one GSS layer of a model computed (GssTrace,
// engine/layers/gss.h):
//   - the convolution kernel K_l of every state-space channel against the lag (channel × lag
//     map, diverging colormap, each channel scaled to its own largest |K| or all to one scale);
//   - the kernels of four channels (smallest to largest step Δ) as K / max |K| against the lag,
//     marked beside the map in their colours;
//   - the eigenvalues Λ in the complex plane: the stable half-plane Re Λ < 0 shaded, the
//     imaginary axis drawn;
//   - the step Δ of every channel on decades (the four curve channels in their colours);
//   - the gate per token (mean |u| over the gate's channels);
//   - kernel kind and sizes in the caption.
// Every number comes from the trace; the figure scales kernels for colour and picks the curve
// channels, nothing more.
#pragma once

#include <QPainter>
#include <QRectF>
#include <QSizeF>

#include "figures/figure_export.h"
#include "figures/kernel_plots.h"
#include "figures/token_grid.h"
#include "layers/gss.h"
#include "trace_view.h"

namespace attnlab {

struct GssFigureOptions {
  KernelScale kernel_scale = KernelScale::PerChannel;
};

// Where the parts fall, in the painter's units (hit testing, tests).
struct GssFigureLayout {
  QRectF figure;
  QRectF title;
  TokenGridLayout kernel;  // the kernel map; kernel.strip holds the curve channels' marks
  QRectF curves_plot;      // the four kernels (inside the axes)
  QRectF eigen_plot;       // Λ in the complex plane
  QRectF dt_plot;          // Δ per channel
  TokenGridLayout gate;
  QRectF summary;

  // The token under `pos` (a gate row or its label), or -1.
  int token_at(const QPointF& pos) const;
};

// The layer the view draws (model_view_layer for "gss"), -1 when none carries a GSS trace.
int gss_layer(const ViewContext& context);
const GssTrace* gss_trace(const ViewContext& context);

KernelMap gss_kernel_map(const ViewContext& context, const GssFigureOptions& options = {});
// Up to four channels spread over the order of Δ, smallest first.
KernelCurves gss_kernel_curves(const ViewContext& context);
// The gate per token on [min, max] over the tokens.
TokenGridData gss_gate_grid(const ViewContext& context);

// The axes of the two plots and where a datum falls on them.
PlotAxis gss_eigen_x_axis(const GssTrace& trace);  // Re Λ, ending at 0
PlotAxis gss_eigen_y_axis(const GssTrace& trace);  // Im Λ
PlotAxis gss_dt_x_axis(const GssTrace& trace);     // channel
PlotAxis gss_dt_y_axis(const GssTrace& trace);     // Δ, decades
QPointF gss_eigen_point(const GssFigureLayout& layout, const GssTrace& trace, double re, double im);
QPointF gss_dt_point(const GssFigureLayout& layout, const GssTrace& trace, int channel, double dt);
QColor gss_eigen_color();  // Okabe–Ito blue

QSizeF gss_figure_size(const ViewContext& context, const FigureStyle& style);
// Throws ParamError when the context's result has no GSS layer.
GssFigureLayout compute_gss_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                   const QPaintDevice* device);
void draw_gss_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                     const GssFigureOptions& options = {});
PaintedFigure gss_painted_figure(const ViewContext& context, const FigureStyle& style, const GssFigureOptions& options = {});

// Data export (format from the extension):
//   .csv   one line per token: token_index, token, gate;
//   .json  GssTrace::to_json with "layer", "layer_type", "tokens" ("head" is -1: no heads);
//   .npy   float32 [H, lags]: the kernels K.
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_gss_data(const ViewContext& context, const QString& path);

}  // namespace attnlab
