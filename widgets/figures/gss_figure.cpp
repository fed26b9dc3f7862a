#include "figures/gss_figure.h"

#include <QFileInfo>
#include <QFontMetricsF>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "figures/figure_frame.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights, so the figure scales with its font.
constexpr double kPanelGapLines = 2.0;
constexpr double kRowGapLines = 1.6;
constexpr double kGateCellLines = 2.4;
constexpr double kMarkStripLines = 0.8;
constexpr double kKernelShare = 0.5;  // of the left area's height, for the kernel map
constexpr double kMarkerLines = 0.22;
constexpr double kBigMarkerLines = 0.36;
constexpr int kCurveChannels = 4;

struct Content {
  const PlaygroundResult* result = nullptr;
  const GssTrace* trace = nullptr;
  int layer = -1;
  int tokens = 0;
  int highlight = -1;
  QString layer_type;
  KernelMap map;
  KernelCurves curves;
  TokenGridData gate;
};

const GssTrace& checked_trace(const ViewContext& context) {
  check_view_context(view_spec("gss"), context);
  const GssTrace* trace = gss_trace(context);
  if (!trace) throw ParamError("view 'gss': no layer of this result carries a GSS trace");
  return *trace;
}

Content gather(const ViewContext& context, const GssFigureOptions& options) {
  Content c;
  c.trace = &checked_trace(context);
  c.result = context.result.get();
  c.layer = gss_layer(context);
  c.tokens = static_cast<int>(c.trace->gate.size());
  c.highlight = context.highlighted_token >= 0 && context.highlighted_token < c.tokens ? context.highlighted_token : -1;
  const auto at = static_cast<std::size_t>(c.layer);
  c.layer_type = at < c.result->layer_types.size() ? QString::fromStdString(c.result->layer_types[at]) : QStringLiteral("gss");
  c.map = gss_kernel_map(context, options);
  c.curves = gss_kernel_curves(context);
  c.gate = gss_gate_grid(context);
  return c;
}

std::vector<AxisTick> linear_ticks(const PlotAxis& axis, double length, double pitch) {
  return thinned_ticks(axis_ticks(axis), length, pitch);
}

GssFigureLayout layout_content(const Content& c, const FigureStyle& style, const QRectF& target, const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  GssFigureLayout layout;
  layout.figure = target;
  const FigureFrame frame = layer_figure_frame(t, target);
  layout.title = frame.title;
  layout.summary = frame.summary;
  const QRectF& body = frame.body;

  // The gate on the right, full height.
  const double cell = kGateCellLines * t.line;
  const TokenGridRoom room = measure_token_grid(c.gate, t, device, 0.0);
  const double gate_w = room.left + cell + room.right;
  layout.gate = layout_token_grid(c.gate, t, device, QRectF(body.right() - gate_w, body.top(), gate_w, body.height()), 0.0, cell);

  // Left of it: the kernel map on top, three plots below.
  const QRectF left(body.left(), body.top(), std::max(0.0, body.right() - gate_w - kPanelGapLines * t.line - body.left()),
                    body.height());
  const double kernel_h = kKernelShare * left.height();
  layout.kernel = layout_token_grid(c.map.grid, t, device, QRectF(left.left(), left.top(), left.width(), kernel_h),
                                    kMarkStripLines * t.line, 1e9);
  const double caption = t.line + t.gap;
  const double plots_top = left.top() + kernel_h + kRowGapLines * t.line + caption;
  const PlotFrameRoom curve_room = kernel_curves_room(t, device, c.curves);
  const PlotFrameRoom eigen_room = plot_frame_room(t, device, {QStringLiteral("200"), QStringLiteral("−200")});
  const PlotFrameRoom dt_room = plot_frame_room(t, device, {decade_label(-3)});
  const double bottom_room = std::max({curve_room.bottom, eigen_room.bottom, dt_room.bottom});
  const double plot_h = left.bottom() - plots_top - bottom_room;
  const double plot_w = (left.width() - curve_room.left - eigen_room.left - dt_room.left - 2 * kPanelGapLines * t.line - t.line) / 3.0;
  if (plot_h > 4 * t.line && plot_w > 5 * t.line) {
    double x = left.left() + curve_room.left;
    layout.curves_plot = QRectF(x, plots_top, plot_w, plot_h);
    x = layout.curves_plot.right() + kPanelGapLines * t.line + eigen_room.left;
    layout.eigen_plot = QRectF(x, plots_top, plot_w, plot_h);
    x = layout.eigen_plot.right() + kPanelGapLines * t.line + dt_room.left;
    layout.dt_plot = QRectF(x, plots_top, plot_w, plot_h);
  }
  return layout;
}

void draw_marker(QPainter& painter, const QPointF& at, double radius, const QColor& fill, const QColor& edge, double line) {
  painter.setPen(QPen(edge, 0.04 * line));
  painter.setBrush(fill);
  painter.drawEllipse(at, radius, radius);
}

void draw_eigen_plot(QPainter& painter, const GssFigureLayout& layout, const Content& c, const FigureText& t,
                     const FigureStyle& style) {
  const QRectF& plot = layout.eigen_plot;
  if (plot.isEmpty()) return;
  const GssTrace& g = *c.trace;
  const PlotAxis x = gss_eigen_x_axis(g), y = gss_eigen_y_axis(g);
  const QFontMetricsF fm(t.label, painter.device());
  // The stable half-plane Re Λ < 0 (the whole plot left of the imaginary axis), lightly shaded.
  QColor shade = okabe_ito(OkabeIto::BluishGreen);
  shade.setAlphaF(0.10f);
  const double zero_x = plot_point(plot, x, y, 0.0, 0.0).x();
  painter.fillRect(QRectF(plot.left(), plot.top(), zero_x - plot.left(), plot.height()), shade);
  PlotFrame frame{x, y, linear_ticks(x, plot.width(), fm.horizontalAdvance(QStringLiteral("−0.00")) + t.line),
                  linear_ticks(y, plot.height(), 1.2 * t.line), QStringLiteral("Re Λ"), QStringLiteral("Im Λ"), true, true};
  draw_plot_frame(painter, plot, frame, t, style);
  draw_caption_above(painter, plot, plot.width(), t, style.foreground,
                     QStringLiteral("Eigenvalues Λ (N = %1)").arg(g.lambda_re.size()));
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setPen(QPen(style.foreground, 0.1 * t.line));
  painter.drawLine(QPointF(zero_x, plot.top()), QPointF(zero_x, plot.bottom()));
  painter.setFont(t.small);
  painter.drawText(QRectF(plot.left() + 0.5 * t.gap, plot.bottom() - t.small_line - 0.5 * t.gap, plot.width() - t.gap, t.small_line),
                   Qt::AlignLeft | Qt::AlignVCenter, QStringLiteral("stable: Re Λ < 0"));
  painter.setClipRect(plot.adjusted(-t.line, -t.line, t.line, t.line));
  for (std::int64_t n = 0; n < g.lambda_re.size(); ++n)
    draw_marker(painter, gss_eigen_point(layout, g, g.lambda_re.data()[n], g.lambda_im.data()[n]), kMarkerLines * t.line,
                gss_eigen_color(), style.background, t.line);
  painter.restore();
}

void draw_dt_plot(QPainter& painter, const GssFigureLayout& layout, const Content& c, const FigureText& t, const FigureStyle& style) {
  const QRectF& plot = layout.dt_plot;
  if (plot.isEmpty()) return;
  const GssTrace& g = *c.trace;
  const PlotAxis x = gss_dt_x_axis(g), y = gss_dt_y_axis(g);
  const QFontMetricsF fm(t.label, painter.device());
  PlotFrame frame{x, y, linear_ticks(x, plot.width(), fm.horizontalAdvance(QStringLiteral("0000")) + t.line), decade_ticks(y),
                  QStringLiteral("channel"), QStringLiteral("step Δ"), true, true};
  frame.y_ticks = thinned_ticks(frame.y_ticks, plot.height(), 1.2 * t.line);
  draw_plot_frame(painter, plot, frame, t, style);
  draw_caption_above(painter, plot, plot.width(), t, style.foreground, QStringLiteral("Step Δ per channel"));
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setClipRect(plot.adjusted(-t.line, -t.line, t.line, t.line));
  QColor faint = style.foreground;
  faint.setAlphaF(0.45f);
  for (std::int64_t h = 0; h < g.dt.size(); ++h)
    draw_marker(painter, gss_dt_point(layout, g, static_cast<int>(h), g.dt.data()[h]), 0.6 * kMarkerLines * t.line, faint, faint, t.line);
  for (std::size_t i = 0; i < c.curves.channels.size(); ++i) {
    const int h = c.curves.channels[i];
    draw_marker(painter, gss_dt_point(layout, g, h, g.dt.data()[h]), kBigMarkerLines * t.line, kernel_curve_color(static_cast<int>(i)),
                style.background, t.line);
  }
  painter.restore();
}

QString summary_text(const Content& c) {
  const GssTrace& g = *c.trace;
  return QStringLiteral("%1 kernel · %2 state-space channels · N = %3 states · Δ from %4 to %5 · lags up to %6 shown · "
                        "the layer is causal and has no attention")
      .arg(QString::fromStdString(g.kernel_kind))
      .arg(g.kernel.empty() ? 0 : g.kernel.dim(0))
      .arg(g.lambda_re.size())
      .arg(g.dt.empty() ? 0.0 : *std::min_element(g.dt.data(), g.dt.data() + g.dt.size()), 0, 'g', 3)
      .arg(g.dt.empty() ? 0.0 : *std::max_element(g.dt.data(), g.dt.data() + g.dt.size()), 0, 'g', 3)
      .arg(c.curves.lags - 1);
}

}  // namespace

int GssFigureLayout::token_at(const QPointF& pos) const { return gate.row_at(pos); }

int gss_layer(const ViewContext& context) { return model_view_layer(context, "gss"); }

const GssTrace* gss_trace(const ViewContext& context) { return model_layer_extra<GssTrace>(context, "gss"); }

KernelMap gss_kernel_map(const ViewContext& context, const GssFigureOptions& options) {
  const GssTrace& g = checked_trace(context);
  return kernel_map(g.kernel, nullptr, options.kernel_scale,
                    options.kernel_scale == KernelScale::PerChannel ? QStringLiteral("K / max |K| of the channel")
                                                                    : QStringLiteral("K / max |K| of all channels"),
                    kernel_extent(g.kernel, nullptr));
}

KernelCurves gss_kernel_curves(const ViewContext& context) {
  const GssTrace& g = checked_trace(context);
  KernelCurves curves;
  curves.kernel = &g.kernel;
  curves.lags = kernel_extent(g.kernel, nullptr);
  const std::vector<float> dt(g.dt.data(), g.dt.data() + g.dt.size());
  curves.channels = spread_channels(dt, kCurveChannels);
  for (int h : curves.channels) curves.labels << QStringLiteral("channel %1 · Δ %2").arg(h).arg(dt[static_cast<std::size_t>(h)], 0, 'g', 3);
  curves.scale = CurveScale::Signed;
  curves.symbol = QStringLiteral("K");
  return curves;
}

TokenGridData gss_gate_grid(const ViewContext& context) {
  const GssTrace& g = checked_trace(context);
  return gate_column_data(g.gate, token_labels(*context.result), context.colormap, QStringLiteral("gate"),
                          QStringLiteral("mean |u| per token"));
}

PlotAxis gss_eigen_x_axis(const GssTrace& g) {
  const float* re = g.lambda_re.data();
  const double lo = g.lambda_re.empty() ? -1.0 : *std::min_element(re, re + g.lambda_re.size());
  PlotAxis axis = nice_linear_axis(std::min(1.25 * lo, -1e-3), 0.0, 4);
  axis.hi = 0.0;  // the imaginary axis is the right edge
  while (!axis.ticks.empty() && axis.ticks.back() > 0.0) axis.ticks.pop_back();
  return axis;
}

PlotAxis gss_eigen_y_axis(const GssTrace& g) {
  const float* im = g.lambda_im.data();
  const auto n = g.lambda_im.size();
  const double lo = n ? *std::min_element(im, im + n) : -1.0, hi = n ? *std::max_element(im, im + n) : 1.0;
  const double pad = 0.05 * std::max(hi - lo, 1e-3);
  return nice_linear_axis(lo - pad, hi + pad, 4);
}

PlotAxis gss_dt_x_axis(const GssTrace& g) {
  return nice_linear_axis(0.0, std::max<double>(1.0, static_cast<double>(g.dt.size() - 1)), 4);
}

PlotAxis gss_dt_y_axis(const GssTrace& g) {
  const float* dt = g.dt.data();
  const auto n = g.dt.size();
  const double lo = n ? *std::min_element(dt, dt + n) : 1e-3, hi = n ? *std::max_element(dt, dt + n) : 1e-1;
  return decade_axis(std::max(lo, 1e-12), std::max(hi, lo * 1.0001));
}

QPointF gss_eigen_point(const GssFigureLayout& layout, const GssTrace& trace, double re, double im) {
  return plot_point(layout.eigen_plot, gss_eigen_x_axis(trace), gss_eigen_y_axis(trace), re, im);
}

QPointF gss_dt_point(const GssFigureLayout& layout, const GssTrace& trace, int channel, double dt) {
  return plot_point(layout.dt_plot, gss_dt_x_axis(trace), gss_dt_y_axis(trace), channel, dt);
}

QColor gss_eigen_color() { return okabe_ito(OkabeIto::Blue); }

QSizeF gss_figure_size(const ViewContext& context, const FigureStyle& style) {
  checked_trace(context);
  return layer_figure_natural_size(style);
}

GssFigureLayout compute_gss_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                   const QPaintDevice* device) {
  return layout_content(gather(context, {}), style, target, device);
}

void draw_gss_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                     const GssFigureOptions& options) {
  const Content c = gather(context, options);
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const GssFigureLayout layout = layout_content(c, style, target, painter.device());

  draw_layer_figure_frame(painter, FigureFrame{layout.title, {}, layout.summary},
                          QStringLiteral("Gated state space · layer %1 (%2)").arg(c.layer).arg(c.layer_type), summary_text(c), t, style);
  draw_kernel_map(painter, layout.kernel, c.map, c.curves.channels,
                  QStringLiteral("State-space kernel K per channel (%1): y(t) = Σ_s K(t − s)·v(s) + d·v(t)")
                      .arg(QString::fromStdString(c.trace->kernel_kind)),
                  t, style);
  draw_kernel_curves(painter, layout.curves_plot, c.curves, QStringLiteral("Kernels of four channels"), t, style);
  draw_eigen_plot(painter, layout, c, t, style);
  draw_dt_plot(painter, layout, c, t, style);
  draw_token_grid(painter, layout.gate, c.gate, t, style, c.highlight);
  draw_grid_caption(painter, layout.gate, QStringLiteral("Gate per token"), t, style);
}

PaintedFigure gss_painted_figure(const ViewContext& context, const FigureStyle& style, const GssFigureOptions& options) {
  const int layer = gss_layer(context);
  return PaintedFigure{gss_figure_size(context, style), QStringLiteral("AttnLab: gated state space, layer %1").arg(layer),
                       QStringLiteral("GSS state-space kernels, eigenvalues, steps and gate per token"), style.background,
                       [context, style, options](QPainter& painter, const QRectF& target) {
                         draw_gss_figure(painter, target, context, style, options);
                       }};
}

void export_gss_data(const ViewContext& context, const QString& path) {
  const GssTrace& g = checked_trace(context);
  const int layer = gss_layer(context);
  const QStringList labels = token_labels(*context.result);
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == QLatin1String("json")) {
    nlohmann::json j = g.to_json();
    j["layer_type"] = context.result->layer_types.at(static_cast<std::size_t>(layer));
    write_bytes_atomically(path, view_json_bytes(std::move(j), layer, -1, labels));
  } else if (suffix == QLatin1String("csv")) {
    QByteArray out = "token_index,token,gate\r\n";
    for (std::int64_t i = 0; i < g.gate.size(); ++i) {
      out += QByteArray::number(i) + ',' + csv_field(labels.value(static_cast<int>(i))) + ',';
      append_csv_value(out, g.gate.data()[i]);
      out += "\r\n";
    }
    write_bytes_atomically(path, out);
  } else if (suffix == QLatin1String("npy")) {
    export_kernels_npy(path, g.kernel, nullptr);
  } else {
    throw ParamError(QStringLiteral("cannot export '%1' from view 'gss': data formats are .csv, .json, .npy").arg(path).toStdString());
  }
}

}  // namespace attnlab
