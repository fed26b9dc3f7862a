// Long convolution kernels of the sequence-mixing layers — Mega's damped EMA (layers/mega.h) and
// the diagonal state space of GSS (layers/gss.h) — drawn the same way by both figures:
//   - a channel × lag map (a token grid whose rows are channels) on the diverging colormap,
//     symmetric around 0, each channel divided by its own largest |k| (or all by the largest of
//     all), with a two-sided kernel's later-token half on negative offsets;
//   - the curves of a few channels against the lag, as |k| / max |k| on decades (decay) or signed
//     k / max |k| (oscillation), the channels marked beside the map in their curve colours.
// Both figures also draw their gates as one-column token grids (gate_column_data).
// The kernels are the engine's (trace extras); the figures only scale them for colour and pick
// which channels to draw (spread over the order of a per-channel key such as the decay rate).
#pragma once

#include <QColor>
#include <QRectF>
#include <QString>
#include <QStringList>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "figures/figure_frame.h"
#include "figures/figure_kit.h"
#include "figures/plot_frame.h"
#include "figures/token_grid.h"

class QPainter;
class QPaintDevice;

namespace attnlab {

enum class KernelScale { PerChannel, Shared };

// "per_channel" / "shared" (the view options' spelling) and back; unknown text gives PerChannel.
KernelScale kernel_scale_from(const std::string& name);

// How many lags are worth drawing: the first lag from which on every channel's |k| stays at or
// below `fraction` of that channel's largest |k| (both kernels when `backward` is given and not
// empty), at least min(16, lags) and at most lags. A fast-decaying EMA fills a few lags of 256.
inline constexpr double kKernelExtentFraction = 1e-3;
int kernel_extent(const Tensor& forward, const Tensor* backward, double fraction = kKernelExtentFraction);

// The map of `forward` [C, lags] (lags 0 .. lags−1) and, when given and not empty, `backward`
// [C, lags] (the kernel over later tokens: b_d at offset −(d + 1)), its first `shown` lags of
// each. Columns run over the offsets −shown .. shown−1 with a backward kernel, else
// 0 .. shown−1; rows are channels. Values are k / s, s = max |k| of the row over all its lags
// (PerChannel) or of both whole kernels (Shared), on Coolwarm over [−1, 1].
struct KernelMap {
  TokenGridData grid;
  int first_offset = 0;  // the offset of column 0

  int column(int offset) const { return offset - first_offset; }
};
KernelMap kernel_map(const Tensor& forward, const Tensor* backward, KernelScale scale, const QString& value_label, int shown);

// Ticks at `ticks` below a token grid whose column labels are empty strings (its own labels sit
// at multiples of its stride, so at odd values): column value v drawn at x_of(v). The grid's
// stride ticks below the matrix are cleared first.
void draw_grid_column_axis(QPainter& painter, const TokenGridLayout& grid, const std::vector<AxisTick>& ticks,
                           const std::function<double(double)>& x_of, const FigureText& text, const FigureStyle& style);
// The kernel map's offsets at round values, thinned to fit under its matrix.
std::vector<AxisTick> kernel_map_ticks(const KernelMap& map, const TokenGridLayout& grid, const FigureText& text,
                                       const QPaintDevice* device);
// The x of offset `offset` under the map's matrix (its column's centre).
double kernel_map_x(const KernelMap& map, const TokenGridLayout& grid, double offset);

// `count` channels spread evenly over the ascending order of key[c] (first: smallest key, last:
// largest), without repeats; all channels when there are no more than `count`.
std::vector<int> spread_channels(const std::vector<float>& key, int count);

// The colour of the i-th curve (Okabe–Ito, skipping yellow: too light on white).
QColor kernel_curve_color(int index);

enum class CurveScale { LogMagnitude, Signed };

struct KernelCurves {
  const Tensor* kernel = nullptr;  // [C, lags], lags 0 .. lags−1
  int lags = 0;                    // lags drawn, 0 .. lags−1 (0: all of the kernel's)
  std::vector<int> channels;
  QStringList labels;  // legend text per channel
  CurveScale scale = CurveScale::LogMagnitude;
  QString symbol = QStringLiteral("k");  // the kernel's name in the axis title
};

// The axes of the curves plot: lag 0 .. lags−1 (the lags drawn); |k|/max on decades from kCurveFloor to 1, or
// k/max on [−1, 1].
inline constexpr double kCurveFloor = 1e-4;
PlotAxis kernel_curve_x_axis(const KernelCurves& curves);
PlotAxis kernel_curve_y_axis(const KernelCurves& curves);
// Ticks at the decades of a logarithmic axis, written 10⁻³ etc. (decade_label).
std::vector<AxisTick> decade_ticks(const PlotAxis& axis);
// Where the curve of `channel` passes at `lag` (the value clamped to the axis).
QPointF kernel_curve_point(const QRectF& plot, const KernelCurves& curves, int channel, int lag);
// Room the frame of the plot needs left of and below it.
PlotFrameRoom kernel_curves_room(const FigureText& text, const QPaintDevice* device, const KernelCurves& curves);

// Frame, caption, one polyline per channel and a legend in the plot's upper right corner.
void draw_kernel_curves(QPainter& painter, const QRectF& plot, const KernelCurves& curves, const QString& caption,
                        const FigureText& text, const FigureStyle& style);

// One value per token as a one-column grid on [min, max] of the values, in `colormap`. Without
// `labels` the rows stay unlabelled (a grid beside another that names the tokens).
TokenGridData gate_column_data(const Tensor& values, const QStringList& labels, ColormapId colormap, const QString& column,
                               const QString& value_label);

// The kernels as .npy, atomically: float32 [C, lags] (forward only) or [2, C, lags] with the
// backward kernel at index 1. Throws IoError when the file cannot be written.
void export_kernels_npy(const QString& path, const Tensor& forward, const Tensor* backward);

// A legend box in the upper right corner of `plot`: a line sample in each colour and its label,
// on a veil of the background; nothing when it does not fit.
void draw_series_legend(QPainter& painter, const QRectF& plot, const std::vector<QColor>& colours, const QStringList& labels,
                        const FigureText& text, const FigureStyle& style);

// The map in its grid layout: cells, the offset axis, the marks of the curve channels in the
// grid's strip and `caption` above.
void draw_kernel_map(QPainter& painter, const TokenGridLayout& layout, const KernelMap& map, const std::vector<int>& curve_channels,
                     const QString& caption, const FigureText& text, const FigureStyle& style);

// Small triangles right of the map's rows of `channels` (in their curve colours) inside `strip`.
void draw_channel_marks(QPainter& painter, const TokenGridLayout& map, const QRectF& strip, const std::vector<int>& channels,
                        const FigureText& text);

}  // namespace attnlab
