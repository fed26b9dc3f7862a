#include "figures/mega_figure.h"

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
constexpr double kGateCellLines = 2.2;  // width of a gate column
constexpr double kMarkStripLines = 0.8;
constexpr double kKernelShare = 0.47;     // of the left area's height, for the kernel map
constexpr double kAttentionShare = 0.55;  // of the left area's width at most, for the attention map
constexpr double kOutlineLines = 0.08;
constexpr int kCurveChannels = 4;

struct Content {
  const PlaygroundResult* result = nullptr;
  const MegaTrace* trace = nullptr;
  int layer = -1;
  int tokens = 0;
  int highlight = -1;
  QString layer_type;
  QStringList labels;
  KernelMap map;
  KernelCurves curves;
  TokenGridData gate_u, gate_r;
  HeatmapData attention;
};

const MegaTrace& checked_trace(const ViewContext& context) {
  check_view_context(view_spec("mega"), context);
  const MegaTrace* trace = mega_trace(context);
  if (!trace) throw ParamError("view 'mega': no layer of this result carries a Mega trace");
  return *trace;
}

TokenGridData gate_grid(const MegaTrace& m, const PlaygroundResult& result, ColormapId colormap, bool reset_gate) {
  // The u grid names the tokens; the r grid beside it only marks the labelled rows.
  return reset_gate ? gate_column_data(m.gate_r, {}, colormap, QStringLiteral("r"), QStringLiteral("reset gate r (mean)"))
                    : gate_column_data(m.gate_u, token_labels(result), colormap, QStringLiteral("u"),
                                       QStringLiteral("update gate u (mean)"));
}

Content gather(const ViewContext& context, const MegaFigureOptions& options) {
  Content c;
  c.trace = &checked_trace(context);
  c.result = context.result.get();
  c.layer = mega_layer(context);
  c.tokens = static_cast<int>(c.trace->gate_u.size());
  c.highlight = context.highlighted_token >= 0 && context.highlighted_token < c.tokens ? context.highlighted_token : -1;
  const auto at = static_cast<std::size_t>(c.layer);
  c.layer_type = at < c.result->layer_types.size() ? QString::fromStdString(c.result->layer_types[at]) : QStringLiteral("mega");
  c.labels = token_labels(*c.result);
  c.map = mega_kernel_map(context, options);
  c.curves = mega_kernel_curves(context);
  c.gate_u = gate_grid(*c.trace, *c.result, context.colormap, false);
  c.gate_r = gate_grid(*c.trace, *c.result, context.colormap, true);
  c.attention = mega_attention_heatmap(context);
  return c;
}

// The room a heatmap figure takes around its matrix (labels, axis titles, colorbar), measured
// by laying it out in targets far wider and far taller than the matrix.
struct HeatmapRoom {
  double width = 0, height = 0;
};

HeatmapRoom heatmap_room(const HeatmapData& data, const FigureStyle& style, const QPaintDevice* device, const FigureText& t) {
  const double probe = 1000.0 * t.line, huge = 1e4 * t.line;
  const HeatmapFigureLayout tall = compute_heatmap_layout(data, style, QRectF(0, 0, probe, huge), device);
  const HeatmapFigureLayout wide = compute_heatmap_layout(data, style, QRectF(0, 0, huge, probe), device);
  return HeatmapRoom{probe - tall.matrix.width(), probe - wide.matrix.height()};
}

MegaFigureLayout layout_content(const Content& c, const FigureStyle& style, const QRectF& target, const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  MegaFigureLayout layout;
  layout.figure = target;
  const FigureFrame frame = layer_figure_frame(t, target);
  layout.title = frame.title;
  layout.summary = frame.summary;
  const QRectF& body = frame.body;

  // The gates on the right, full height: u with the token labels, r beside it.
  const double cell = kGateCellLines * t.line;
  const TokenGridRoom room_u = measure_token_grid(c.gate_u, t, device, 0.0);
  const TokenGridRoom room_r = measure_token_grid(c.gate_r, t, device, 0.0);
  const double u_w = room_u.left + cell + room_u.right, r_w = room_r.left + cell + room_r.right;
  const double gates_left = body.right() - u_w - r_w;
  layout.gate_u = layout_token_grid(c.gate_u, t, device, QRectF(gates_left, body.top(), u_w, body.height()), 0.0, cell);
  layout.gate_r = layout_token_grid(c.gate_r, t, device, QRectF(gates_left + u_w, body.top(), r_w, body.height()), 0.0, cell);

  // Left of them: the kernel map on top, the attention map and the decay curves below.
  const QRectF left(body.left(), body.top(), std::max(0.0, gates_left - kPanelGapLines * t.line - body.left()), body.height());
  const double kernel_h = kKernelShare * left.height();
  layout.kernel = layout_token_grid(c.map.grid, t, device, QRectF(left.left(), left.top(), left.width(), kernel_h),
                                    kMarkStripLines * t.line, 1e9);
  const double bottom_top = left.top() + kernel_h + kRowGapLines * t.line;
  const double bottom_h = std::max(0.0, left.bottom() - bottom_top);
  const FigureStyle hs = with_highlight(style, c.highlight);
  // The attention panel: its square matrix as tall as the row allows, at most a share of the width.
  const double caption = t.line + t.gap;
  const HeatmapRoom room = heatmap_room(c.attention, hs, device, t);
  double side = std::max(0.0, bottom_h - caption - room.height);
  side = std::max(0.0, std::min(side, kAttentionShare * left.width() - room.width));
  layout.attention_panel = QRectF(left.left(), bottom_top + caption, side + room.width, side + room.height);
  layout.attention = compute_heatmap_layout(c.attention, hs, layout.attention_panel, device);

  const PlotFrameRoom plot_room = kernel_curves_room(t, device, c.curves);
  const double plot_left = layout.attention_panel.right() + kPanelGapLines * t.line + plot_room.left;
  const double plot_w = left.right() - t.line - plot_left;
  const double plot_h = bottom_h - caption - plot_room.bottom;
  if (plot_w > 6 * t.line && plot_h > 4 * t.line) layout.curves_plot = QRectF(plot_left, bottom_top + caption, plot_w, plot_h);
  return layout;
}

// Outlines of the chunks along the diagonal of the attention map (nothing when one chunk holds all).
void draw_chunks(QPainter& painter, const MegaFigureLayout& layout, const Content& c, const FigureText& t, const FigureStyle& style) {
  const int chunk = static_cast<int>(c.trace->chunk);
  if (chunk <= 0 || chunk >= c.tokens || layout.attention.cell <= 0) return;
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, kOutlineLines * t.line, Qt::DashLine));
  for (int c0 = 0; c0 < c.tokens; c0 += chunk) {
    const int n = std::min(chunk, c.tokens - c0);
    const QRectF a = layout.attention.cell_rect(c0, c0), b = layout.attention.cell_rect(c0 + n - 1, c0 + n - 1);
    painter.drawRect(QRectF(a.topLeft(), b.bottomRight()));
  }
  painter.restore();
}

QString summary_text(const Content& c) {
  const MegaTrace& m = *c.trace;
  const float lo = m.decay.empty() ? 0.0f : *std::min_element(m.decay.data(), m.decay.data() + m.decay.size());
  const float hi = m.decay.empty() ? 0.0f : *std::max_element(m.decay.data(), m.decay.data() + m.decay.size());
  const QString chunk = m.chunk >= c.tokens ? QStringLiteral("one chunk of %1 tokens").arg(c.tokens)
                                            : QStringLiteral("chunks of %1 tokens").arg(m.chunk);
  return QStringLiteral("%1 attention in %2 · %3 EMA · %4 channels, max q %5–%6 · lags to %7 shown (beyond: |k| < 0.1 % of max)")
      .arg(QString::fromStdString(m.attention))
      .arg(chunk)
      .arg(m.causal ? QStringLiteral("causal") : QStringLiteral("bidirectional"))
      .arg(m.ema_kernel.empty() ? 0 : m.ema_kernel.dim(0))
      .arg(lo, 0, 'g', 3)
      .arg(hi, 0, 'g', 3)
      .arg(c.curves.lags - 1);
}

}  // namespace

int MegaFigureLayout::token_at(const QPointF& pos) const {
  for (const TokenGridLayout* g : {&gate_u, &gate_r}) {
    const int row = g->row_at(pos);
    if (row >= 0) return row;
  }
  if (attention.cell > 0) {
    const QRectF rows(attention.row_labels.left(), attention.matrix.top(), attention.matrix.right() - attention.row_labels.left(),
                      attention.matrix.height());
    if (rows.contains(pos)) return std::clamp(static_cast<int>((pos.y() - attention.matrix.top()) / attention.cell), 0,
                                              static_cast<int>(attention.matrix.height() / attention.cell + 0.5) - 1);
  }
  return -1;
}

int mega_layer(const ViewContext& context) { return model_view_layer(context, "mega"); }

const MegaTrace* mega_trace(const ViewContext& context) { return model_layer_extra<MegaTrace>(context, "mega"); }

KernelMap mega_kernel_map(const ViewContext& context, const MegaFigureOptions& options) {
  const MegaTrace& m = checked_trace(context);
  const Tensor* backward = m.causal ? nullptr : &m.ema_kernel_backward;
  return kernel_map(m.ema_kernel, backward, options.kernel_scale,
                    options.kernel_scale == KernelScale::PerChannel ? QStringLiteral("k / max |k| of the channel")
                                                                    : QStringLiteral("k / max |k| of all channels"),
                    kernel_extent(m.ema_kernel, backward));
}

KernelCurves mega_kernel_curves(const ViewContext& context) {
  const MegaTrace& m = checked_trace(context);
  KernelCurves curves;
  curves.kernel = &m.ema_kernel;
  curves.lags = kernel_extent(m.ema_kernel, m.causal ? nullptr : &m.ema_kernel_backward);
  std::vector<float> decay(m.decay.data(), m.decay.data() + m.decay.size());
  curves.channels = spread_channels(decay, kCurveChannels);
  std::reverse(curves.channels.begin(), curves.channels.end());  // slowest decay (largest q) first
  for (int ch : curves.channels)
    curves.labels << QStringLiteral("channel %1 · max q %2").arg(ch).arg(decay[static_cast<std::size_t>(ch)], 0, 'g', 3);
  curves.scale = CurveScale::LogMagnitude;
  return curves;
}

TokenGridData mega_gate_grid(const ViewContext& context, bool reset_gate) {
  return gate_grid(checked_trace(context), *context.result, context.colormap, reset_gate);
}

HeatmapData mega_attention_heatmap(const ViewContext& context) {
  checked_trace(context);
  HeatmapData data = *attention_heatmap(*context.result, mega_layer(context), 0, context.colormap);
  data.title.clear();
  return data;
}

QSizeF mega_figure_size(const ViewContext& context, const FigureStyle& style) {
  checked_trace(context);
  return layer_figure_natural_size(style);
}

MegaFigureLayout compute_mega_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                     const QPaintDevice* device) {
  return layout_content(gather(context, {}), style, target, device);
}

void draw_mega_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                      const MegaFigureOptions& options) {
  const Content c = gather(context, options);
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const MegaFigureLayout layout = layout_content(c, style, target, painter.device());

  draw_layer_figure_frame(painter, FigureFrame{layout.title, {}, layout.summary},
                          QStringLiteral("Mega EMA and gates · layer %1 (%2)").arg(c.layer).arg(c.layer_type), summary_text(c), t, style);
  draw_kernel_map(painter, layout.kernel, c.map, c.curves.channels,
                  c.trace->causal ? QStringLiteral("Damped EMA kernel k per channel (causal: y(t) = Σ_s k(t − s)·x(s))")
                                  : QStringLiteral("Damped EMA kernels per channel: k over earlier tokens, b over later ones"),
                  t, style);
  if (!layout.attention_panel.isEmpty()) {
    draw_heatmap_figure(painter, layout.attention_panel, c.attention, with_highlight(style, c.highlight));
    draw_chunks(painter, layout, c, t, style);
    draw_caption_above(painter, layout.attention.matrix, layout.attention_panel.width(), t, style.foreground,
                       QStringLiteral("Attention weights (%1, one head)").arg(QString::fromStdString(c.trace->attention)));
  }
  draw_kernel_curves(painter, layout.curves_plot, c.curves, QStringLiteral("Decay of four channels"), t, style);
  draw_token_grid(painter, layout.gate_u, c.gate_u, t, style, c.highlight);
  draw_token_grid(painter, layout.gate_r, c.gate_r, t, style, c.highlight);
  if (!layout.gate_u.matrix.isEmpty())
    draw_caption_above(painter, layout.gate_u.matrix, layout.gate_r.panel.right() - layout.gate_u.matrix.left(), t, style.foreground,
                       QStringLiteral("Gates per token"));
}

PaintedFigure mega_painted_figure(const ViewContext& context, const FigureStyle& style, const MegaFigureOptions& options) {
  const int layer = mega_layer(context);
  return PaintedFigure{mega_figure_size(context, style), QStringLiteral("AttnLab: Mega EMA and gates, layer %1").arg(layer),
                       QStringLiteral("Mega damped-EMA kernels, chunked attention weights and gates per token"), style.background,
                       [context, style, options](QPainter& painter, const QRectF& target) {
                         draw_mega_figure(painter, target, context, style, options);
                       }};
}

void export_mega_data(const ViewContext& context, const QString& path) {
  const MegaTrace& m = checked_trace(context);
  const int layer = mega_layer(context);
  const QStringList labels = token_labels(*context.result);
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == QLatin1String("json")) {
    nlohmann::json j = m.to_json();
    j["layer_type"] = context.result->layer_types.at(static_cast<std::size_t>(layer));
    write_bytes_atomically(path, view_json_bytes(std::move(j), layer, 0, labels));
  } else if (suffix == QLatin1String("csv")) {
    QByteArray out = "token_index,token,gate_u,gate_r,chunk\r\n";
    const std::int64_t chunk = std::max<std::int64_t>(1, m.chunk);
    for (std::int64_t i = 0; i < m.gate_u.size(); ++i) {
      out += QByteArray::number(i) + ',' + csv_field(labels.value(static_cast<int>(i))) + ',';
      append_csv_value(out, m.gate_u.data()[i]);
      out += ',';
      append_csv_value(out, m.gate_r.data()[i]);
      out += ',' + QByteArray::number(i / chunk) + "\r\n";
    }
    write_bytes_atomically(path, out);
  } else if (suffix == QLatin1String("npy")) {
    export_kernels_npy(path, m.ema_kernel, m.causal ? nullptr : &m.ema_kernel_backward);
  } else {
    throw ParamError(
        QStringLiteral("cannot export '%1' from view 'mega': data formats are .csv, .json, .npy").arg(path).toStdString());
  }
}

}  // namespace attnlab
