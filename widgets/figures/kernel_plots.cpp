#include "figures/kernel_plots.h"

#include <QFontMetricsF>
#include <QPainter>
#include <QPainterPath>
#include <algorithm>
#include <cmath>
#include <string>

#include "core/npy.h"
#include "figures/figure_export.h"

namespace attnlab {
namespace {

constexpr double kCurveLines = 0.12;
constexpr double kMarkLines = 0.45;
constexpr double kTickLines = 0.3;

// U+2212 for negative numbers, as the axes write them.
QString signed_text(int value) {
  return value < 0 ? QChar(0x2212) + QString::number(-value) : QString::number(value);
}

// k(c, lag) / max over lags of |k(c, ·)|, or 0 for an all-zero channel.
double relative(const Tensor& kernel, int channel, int lag) {
  const std::int64_t lags = kernel.dim(1);
  double top = 0.0;
  for (std::int64_t l = 0; l < lags; ++l) top = std::max(top, static_cast<double>(std::abs(kernel.at(channel, l))));
  return top > 0.0 ? kernel.at(channel, lag) / top : 0.0;
}

double curve_value(const KernelCurves& curves, int channel, int lag) {
  const double v = relative(*curves.kernel, channel, lag);
  if (curves.scale == CurveScale::Signed) return std::clamp(v, -1.0, 1.0);
  return std::clamp(std::abs(v), kCurveFloor, 1.0);
}

std::vector<AxisTick> y_ticks(const KernelCurves& curves) {
  const PlotAxis y = kernel_curve_y_axis(curves);
  return curves.scale == CurveScale::Signed ? axis_ticks(y) : decade_ticks(y);
}

QStringList tick_texts(const std::vector<AxisTick>& ticks) {
  QStringList texts;
  for (const AxisTick& t : ticks) texts << t.text;
  return texts;
}

}  // namespace

std::vector<AxisTick> decade_ticks(const PlotAxis& axis) {
  std::vector<AxisTick> ticks;
  for (double v : axis.ticks) ticks.push_back({v, decade_label(static_cast<int>(std::lround(std::log10(v))))});
  return ticks;
}

KernelScale kernel_scale_from(const std::string& name) { return name == "shared" ? KernelScale::Shared : KernelScale::PerChannel; }

int kernel_extent(const Tensor& forward, const Tensor* backward, double fraction) {
  const int lags = static_cast<int>(forward.dim(1));
  int extent = 0;
  for (const Tensor* k : {&forward, backward}) {
    if (!k || k->empty()) continue;
    for (std::int64_t c = 0; c < k->dim(0); ++c) {
      float top = 0.0f;
      for (int l = 0; l < lags; ++l) top = std::max(top, std::abs(k->at(c, l)));
      for (int l = lags - 1; l >= extent; --l) {
        if (std::abs(k->at(c, l)) > fraction * top) {
          extent = l + 1;
          break;
        }
      }
    }
  }
  return std::clamp(extent, std::min(16, lags), lags);
}

KernelMap kernel_map(const Tensor& forward, const Tensor* backward, KernelScale scale, const QString& value_label, int shown) {
  const int channels = static_cast<int>(forward.dim(0)), lags = static_cast<int>(forward.dim(1));
  const bool two_sided = backward && !backward->empty();
  shown = std::clamp(shown, std::min(1, lags), lags);
  KernelMap map;
  map.first_offset = two_sided ? -shown : 0;
  TokenGridData& d = map.grid;
  d.rows = channels;
  d.cols = two_sided ? 2 * shown : shown;
  d.values.resize(static_cast<std::size_t>(d.rows) * static_cast<std::size_t>(d.cols));
  // The scale of each row over all its lags, not only the ones shown.
  std::vector<float> row_scale(static_cast<std::size_t>(channels), 0.0f);
  for (const Tensor* k : {&forward, two_sided ? backward : nullptr}) {
    if (!k) continue;
    for (int c = 0; c < channels; ++c)
      for (int l = 0; l < lags; ++l) row_scale[static_cast<std::size_t>(c)] = std::max(row_scale[static_cast<std::size_t>(c)], std::abs(k->at(c, l)));
  }
  const float shared = row_scale.empty() ? 0.0f : *std::max_element(row_scale.begin(), row_scale.end());
  for (int c = 0; c < channels; ++c) {
    const float s = scale == KernelScale::PerChannel ? row_scale[static_cast<std::size_t>(c)] : shared;
    for (int col = 0; col < d.cols; ++col) {
      const int offset = map.first_offset + col;
      const float k = offset >= 0 ? forward.at(c, offset) : backward->at(c, -offset - 1);
      d.values[static_cast<std::size_t>(c) * static_cast<std::size_t>(d.cols) + static_cast<std::size_t>(col)] = s > 0.0f ? k / s : 0.0f;
    }
  }
  d.vmin = -1.0f;
  d.vmax = 1.0f;
  d.colormap = ColormapId::Coolwarm;
  for (int c = 0; c < channels; ++c) d.row_labels << QString::number(c);
  for (int col = 0; col < d.cols; ++col) d.col_labels << QString();  // drawn by draw_grid_column_axis
  d.row_axis = QStringLiteral("channel");
  d.col_axis = two_sided ? QStringLiteral("offset t − s (negative: later tokens)") : QStringLiteral("lag t − s");
  d.value_label = value_label;
  return map;
}

void draw_grid_column_axis(QPainter& painter, const TokenGridLayout& g, const std::vector<AxisTick>& ticks,
                           const std::function<double(double)>& x_of, const FigureText& t, const FigureStyle& style) {
  if (g.matrix.isEmpty()) return;
  painter.save();
  // Below the matrix's frame (0.05 line wide, centred on its edge), down to the labels' bottom.
  // The grid's labels are empty: only its ticks below the matrix need clearing (not the row
  // labels that reach below the matrix's left corner); then the frame's bottom edge again.
  painter.fillRect(QRectF(g.matrix.left() - 0.1 * t.line, g.matrix.bottom(), g.matrix.width() + 0.2 * t.line,
                          g.col_labels.bottom() - g.matrix.bottom()),
                   style.background);
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setPen(QPen(style.foreground, 0.05 * t.line));
  painter.drawLine(g.matrix.bottomLeft(), g.matrix.bottomRight());
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  for (const AxisTick& tick : ticks) {
    const double px = x_of(tick.value);
    painter.drawLine(QPointF(px, g.matrix.bottom()), QPointF(px, g.matrix.bottom() + kTickLines * t.line));
    const double w = fm.horizontalAdvance(tick.text) + t.gap;
    painter.drawText(QRectF(px - 0.5 * w, g.col_labels.top(), w, t.line), Qt::AlignCenter, tick.text);
  }
  painter.restore();
}

double kernel_map_x(const KernelMap& map, const TokenGridLayout& grid, double offset) {
  return grid.matrix.left() + (offset - map.first_offset + 0.5) * grid.cell_w;
}

std::vector<AxisTick> kernel_map_ticks(const KernelMap& map, const TokenGridLayout& grid, const FigureText& t,
                                       const QPaintDevice* device) {
  const int first = map.first_offset, last = map.first_offset + std::max(1, map.grid.cols) - 1;
  const QFontMetricsF fm(t.label, device);
  const double pitch = fm.horizontalAdvance(signed_text(std::min(first, -100))) + 1.5 * t.gap;
  const int steps = std::clamp(static_cast<int>(grid.matrix.width() / std::max(pitch, 1e-9)), 1, 10);
  const PlotAxis axis = nice_linear_axis(first, last, steps);
  std::vector<AxisTick> ticks;
  for (double v : axis.ticks)
    if (v >= first - 1e-9 && v <= last + 1e-9) ticks.push_back({v, signed_text(static_cast<int>(std::lround(v)))});
  return ticks;
}

std::vector<int> spread_channels(const std::vector<float>& key, int count) {
  std::vector<int> order(key.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key[static_cast<std::size_t>(a)] < key[static_cast<std::size_t>(b)]; });
  const int n = static_cast<int>(order.size());
  if (n <= count) return order;
  std::vector<int> picked;
  for (int i = 0; i < count; ++i) {
    const int rank = count == 1 ? 0 : static_cast<int>(std::lround(static_cast<double>(i) * (n - 1) / (count - 1)));
    const int channel = order[static_cast<std::size_t>(rank)];
    if (std::find(picked.begin(), picked.end(), channel) == picked.end()) picked.push_back(channel);
  }
  return picked;
}

QColor kernel_curve_color(int index) {
  static const OkabeIto colours[] = {OkabeIto::Blue, OkabeIto::Vermillion, OkabeIto::BluishGreen, OkabeIto::ReddishPurple,
                                     OkabeIto::Orange, OkabeIto::SkyBlue, OkabeIto::Grey};
  const int n = static_cast<int>(std::size(colours));
  return okabe_ito(colours[((index % n) + n) % n]);
}

namespace {

int drawn_lags(const KernelCurves& curves) {
  const auto all = static_cast<int>(curves.kernel->dim(1));
  return curves.lags > 0 ? std::min(curves.lags, all) : all;
}

}  // namespace

PlotAxis kernel_curve_x_axis(const KernelCurves& curves) {
  const double last = std::max<double>(1.0, static_cast<double>(drawn_lags(curves) - 1));
  return nice_linear_axis(0.0, last, 4);
}

PlotAxis kernel_curve_y_axis(const KernelCurves& curves) {
  if (curves.scale == CurveScale::Signed) return PlotAxis{-1.0, 1.0, false, {-1.0, -0.5, 0.0, 0.5, 1.0}};
  return decade_axis(kCurveFloor, 1.0);
}

QPointF kernel_curve_point(const QRectF& plot, const KernelCurves& curves, int channel, int lag) {
  return plot_point(plot, kernel_curve_x_axis(curves), kernel_curve_y_axis(curves), lag, curve_value(curves, channel, lag));
}

PlotFrameRoom kernel_curves_room(const FigureText& text, const QPaintDevice* device, const KernelCurves& curves) {
  return plot_frame_room(text, device, tick_texts(y_ticks(curves)));
}

void draw_kernel_curves(QPainter& painter, const QRectF& plot, const KernelCurves& curves, const QString& caption,
                        const FigureText& t, const FigureStyle& style) {
  if (plot.isEmpty() || !curves.kernel || curves.kernel->empty()) return;
  const PlotAxis x = kernel_curve_x_axis(curves), y = kernel_curve_y_axis(curves);
  const QFontMetricsF fm(t.label, painter.device());
  PlotFrame frame{x, y, {}, y_ticks(curves), QStringLiteral("lag"),
                  (curves.scale == CurveScale::Signed ? QStringLiteral("%1 / max |%1|") : QStringLiteral("|%1| / max |%1|")).arg(curves.symbol),
                  true, true};
  frame.x_ticks = thinned_ticks(axis_ticks(x), plot.width(), fm.horizontalAdvance(QStringLiteral("0000")) + t.line);
  frame.y_ticks = thinned_ticks(frame.y_ticks, plot.height(), 1.2 * t.line);
  draw_plot_frame(painter, plot, frame, t, style);
  draw_caption_above(painter, plot, plot.width(), t, style.foreground, caption);

  const int lags = drawn_lags(curves);
  painter.save();
  painter.setClipRect(plot);
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  for (std::size_t i = 0; i < curves.channels.size(); ++i) {
    QPainterPath path;
    for (int l = 0; l < lags; ++l) {
      const QPointF p = kernel_curve_point(plot, curves, curves.channels[i], l);
      if (l == 0) path.moveTo(p);
      else path.lineTo(p);
    }
    painter.setPen(QPen(kernel_curve_color(static_cast<int>(i)), kCurveLines * t.line));
    painter.drawPath(path);
  }
  painter.restore();
  std::vector<QColor> colours;
  for (std::size_t i = 0; i < curves.channels.size(); ++i) colours.push_back(kernel_curve_color(static_cast<int>(i)));
  draw_series_legend(painter, plot, colours, curves.labels, t, style);
}

TokenGridData gate_column_data(const Tensor& values, const QStringList& labels, ColormapId colormap, const QString& column,
                               const QString& value_label) {
  TokenGridData d;
  d.rows = static_cast<int>(values.size());
  d.cols = 1;
  d.values.assign(values.data(), values.data() + values.size());
  if (!d.values.empty()) {
    const auto [lo, hi] = std::minmax_element(d.values.begin(), d.values.end());
    d.vmin = *lo;
    d.vmax = std::max(*hi, *lo + 1e-6f);
  }
  d.colormap = colormap;
  if (labels.isEmpty()) {
    for (int i = 0; i < d.rows; ++i) d.row_labels << QString();
    d.row_axis.clear();
  } else {
    d.row_labels = labels;
  }
  d.col_labels << column;
  d.value_label = value_label;
  return d;
}

void export_kernels_npy(const QString& path, const Tensor& forward, const Tensor* backward) {
  Tensor kernels = forward;
  if (backward && !backward->empty()) {
    const std::int64_t C = forward.dim(0), lags = forward.dim(1);
    kernels = Tensor({2, C, lags});
    std::copy(forward.data(), forward.data() + C * lags, kernels.data());
    std::copy(backward->data(), backward->data() + C * lags, kernels.data() + C * lags);
  }
  const std::string bytes = serialize_npy(kernels);
  write_bytes_atomically(path, QByteArray(bytes.data(), static_cast<qsizetype>(bytes.size())));
}

void draw_series_legend(QPainter& painter, const QRectF& plot, const std::vector<QColor>& colours, const QStringList& labels,
                        const FigureText& t, const FigureStyle& style) {
  const QFontMetricsF small(t.small, painter.device());
  double widest = 0;
  for (const QString& s : labels) widest = std::max(widest, small.horizontalAdvance(s));
  const double sample = 1.4 * t.line;
  const double w = t.gap + sample + t.gap + widest + t.gap;
  const double h = t.gap + labels.size() * t.small_line + t.gap;
  if (labels.isEmpty() || w >= plot.width() || h >= plot.height()) return;
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  const QRectF box(plot.right() - w - 0.5 * t.gap, plot.top() + 0.5 * t.gap, w, h);
  QColor veil = style.background;
  veil.setAlphaF(0.85f);
  painter.fillRect(box, veil);
  painter.setFont(t.small);
  for (int i = 0; i < labels.size(); ++i) {
    const double cy = box.top() + t.gap + (i + 0.5) * t.small_line;
    painter.setPen(QPen(colours[static_cast<std::size_t>(i) % std::max<std::size_t>(1, colours.size())], kCurveLines * t.line));
    painter.drawLine(QPointF(box.left() + t.gap, cy), QPointF(box.left() + t.gap + sample, cy));
    painter.setPen(style.foreground);
    painter.drawText(QRectF(box.left() + 2 * t.gap + sample, cy - 0.5 * t.small_line, widest + t.gap, t.small_line),
                     Qt::AlignLeft | Qt::AlignVCenter, labels[i]);
  }
  painter.restore();
}

void draw_channel_marks(QPainter& painter, const TokenGridLayout& map, const QRectF& strip, const std::vector<int>& channels,
                        const FigureText& t) {
  if (strip.isEmpty()) return;
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setPen(Qt::NoPen);
  const double s = std::min(kMarkLines * t.line, strip.width());
  for (std::size_t i = 0; i < channels.size(); ++i) {
    const double cy = map.matrix.top() + (channels[i] + 0.5) * map.cell_h;
    QPainterPath mark;
    mark.moveTo(strip.left(), cy);
    mark.lineTo(strip.left() + s, cy - 0.6 * s);
    mark.lineTo(strip.left() + s, cy + 0.6 * s);
    mark.closeSubpath();
    painter.setBrush(kernel_curve_color(static_cast<int>(i)));
    painter.drawPath(mark);
  }
  painter.restore();
}

void draw_kernel_map(QPainter& painter, const TokenGridLayout& layout, const KernelMap& map, const std::vector<int>& curve_channels,
                     const QString& caption, const FigureText& t, const FigureStyle& style) {
  draw_token_grid(painter, layout, map.grid, t, style, -1);
  draw_grid_column_axis(painter, layout, kernel_map_ticks(map, layout, t, painter.device()),
                        [&](double offset) { return kernel_map_x(map, layout, offset); }, t, style);
  draw_channel_marks(painter, layout, layout.strip, curve_channels, t);
  draw_grid_caption(painter, layout, caption, t, style);
}

}  // namespace attnlab
