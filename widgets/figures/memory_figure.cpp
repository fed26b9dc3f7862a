#include "figures/memory_figure.h"

#include <QFileInfo>
#include <QFontMetricsF>
#include <QPainterPath>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "figures/figure_frame.h"
#include "figures/kernel_plots.h"
#include "figures/plot_frame.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights, so the figure scales with its font.
constexpr double kPanelGapLines = 2.4;
constexpr double kPlotGapLines = 1.4;
constexpr double kGridShare = 0.42;  // of the body's width, for the density strip
constexpr double kMaxBinLines = 0.4;
constexpr double kSignalShare = 0.5;  // of the plot column's height
constexpr double kCurveLines = 0.12;
constexpr double kFaintLines = 0.05;
constexpr double kPointLines = 0.13;

struct Content {
  const PlaygroundResult* result = nullptr;
  const MemoryTrace* trace = nullptr;
  const MemorySegmentTrace* read = nullptr;
  int layer = -1;
  int head = 0;
  int queries = 0;    // S
  int start = 0;      // token of query 0
  int bins = 0;       // columns of the density
  int channels = 0;   // drawn
  int highlight = -1; // row of the highlighted token, -1 when it is outside the segment
  QString layer_type;
  TokenGridData grid;
};

const MemoryTrace& checked_trace(const ViewContext& context) {
  check_view_context(view_spec("memory"), context);
  const MemoryTrace* trace = memory_trace(context);
  if (!trace) throw ParamError("view 'memory': no layer of this result carries an ∞-former memory trace");
  return *trace;
}

// The head the strip follows: context.head, or the last one the read has.
int read_head(const MemorySegmentTrace& read, int head) {
  const int heads = read.head_mu.empty() ? 1 : static_cast<int>(read.head_mu.dim(0));
  return std::clamp(head, 0, heads - 1);
}

Content gather(const ViewContext& context, const MemoryFigureOptions& options) {
  Content c;
  c.trace = &checked_trace(context);
  c.result = context.result.get();
  c.layer = memory_layer(context);
  const auto at = static_cast<std::size_t>(c.layer);
  c.layer_type = at < c.result->layer_types.size() ? QString::fromStdString(c.result->layer_types[at]) : QStringLiteral("infinity_former");
  c.read = memory_read(context, options);
  if (!c.read) return c;
  c.head = read_head(*c.read, context.head);
  c.queries = static_cast<int>(c.read->mu.size());
  c.start = static_cast<int>(c.read->start);
  c.bins = c.read->density.empty() ? 0 : static_cast<int>(c.read->density.dim(2));
  c.channels = memory_channels_shown(*c.read, options);
  const int row = context.highlighted_token - c.start;
  c.highlight = context.highlighted_token >= 0 && row >= 0 && row < c.queries ? row : -1;
  c.grid = memory_density_grid(context, options);
  return c;
}

PlotAxis t_axis() { return PlotAxis{0.0, 1.0, false, {0.0, 0.25, 0.5, 0.75, 1.0}}; }

PlotAxis signal_y_axis(const Content& c) {
  double lo = 0.0, hi = 0.0;
  bool any = false;
  for (const Tensor* values : {&c.read->stored, &c.read->reconstructed}) {
    if (values->empty()) continue;
    for (int ch = 0; ch < c.channels; ++ch)
      for (std::int64_t p = 0; p < values->dim(1); ++p) {
        const double v = values->at(ch, p);
        lo = any ? std::min(lo, v) : v;
        hi = any ? std::max(hi, v) : v;
        any = true;
      }
  }
  return nice_linear_axis(lo, hi, 4);
}

PlotAxis density_y_axis(const Content& c) { return nice_linear_axis(0.0, std::max(1e-6, static_cast<double>(c.grid.vmax)), 3); }

PlotAxis sticky_y_axis(const Content& c) {
  const Tensor& h = c.read->sticky_histogram;
  const double top = h.empty() ? 1.0 : *std::max_element(h.data(), h.data() + h.size());
  return nice_linear_axis(0.0, std::max(1e-6, top), 3);
}

QStringList tick_texts(const std::vector<AxisTick>& ticks) {
  QStringList texts;
  for (const AxisTick& t : ticks) texts << t.text;
  return texts;
}

MemoryFigureLayout layout_content(const Content& c, const FigureStyle& style, const QRectF& target, const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  MemoryFigureLayout layout;
  layout.figure = target;
  const FigureFrame frame = layer_figure_frame(t, target);
  layout.title = frame.title;
  layout.summary = frame.summary;
  const QRectF& body = frame.body;
  if (!c.read) {
    layout.message = body;
    return layout;
  }
  layout.first_token = c.start;

  // The density strip on the right, full height.
  const TokenGridRoom room = measure_token_grid(c.grid, t, device, 0.0);
  const double grid_w = std::min(kGridShare * body.width(), room.left + std::max(1, c.bins) * kMaxBinLines * t.line + room.right);
  layout.grid = layout_token_grid(c.grid, t, device, QRectF(body.right() - grid_w, body.top(), grid_w, body.height()), 0.0,
                                  kMaxBinLines * t.line);

  // The plots on the left, one above the other, sharing the t axis.
  QStringList y_texts = tick_texts(axis_ticks(signal_y_axis(c)));
  y_texts += tick_texts(axis_ticks(density_y_axis(c)));
  const PlotFrameRoom plot_room = plot_frame_room(t, device, y_texts);
  const double x = body.left() + plot_room.left;
  const double w = layout.grid.panel.left() - kPanelGapLines * t.line - x;
  const double caption = t.line + t.gap;
  const bool sticky = !c.read->sticky_histogram.empty();
  const int plots = sticky ? 3 : 2;
  const double avail = body.height() - plots * (caption + plot_room.bottom) - (plots - 1) * kPlotGapLines * t.line;
  if (w > 6 * t.line && avail > 6 * t.line) {
    const double signal_h = kSignalShare * avail;
    const double rest_h = (avail - signal_h) / (plots - 1);
    layout.signal_plot = QRectF(x, body.top() + caption, w, signal_h);
    double top = layout.signal_plot.bottom() + plot_room.bottom + kPlotGapLines * t.line + caption;
    layout.density_plot = QRectF(x, top, w, rest_h);
    if (sticky) {
      top = layout.density_plot.bottom() + plot_room.bottom + kPlotGapLines * t.line + caption;
      layout.sticky_plot = QRectF(x, top, w, rest_h);
    }
  }
  return layout;
}

// ---- drawing ---------------------------------------------------------------------------------

// A dashed vertical line at t = τ through `area` (the border between the compressed old memory
// and the last segment's tokens).
void draw_tau_line(QPainter& painter, const QRectF& area, const Content& c, const FigureText& t, const FigureStyle& style) {
  if (!c.read->compressed || area.isEmpty()) return;
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, true);
  QColor line = style.foreground;
  line.setAlphaF(0.6f);
  painter.setPen(QPen(line, 0.08 * t.line, Qt::DashLine));
  const double x = area.left() + c.trace->tau * area.width();
  painter.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()));
  painter.restore();
}

void draw_signal_plot(QPainter& painter, const MemoryFigureLayout& layout, const Content& c, const FigureText& t,
                      const FigureStyle& style) {
  const QRectF& plot = layout.signal_plot;
  if (plot.isEmpty()) return;
  const MemorySegmentTrace& r = *c.read;
  const PlotAxis x = t_axis(), y = signal_y_axis(c);
  // The regions of [0, 1]: older memory compressed into [0, τ], the last segment in [τ, 1].
  if (r.compressed) {
    QColor shade = style.foreground;
    shade.setAlphaF(0.07f);
    painter.fillRect(QRectF(plot.left(), plot.top(), c.trace->tau * plot.width(), plot.height()), shade);
  }
  PlotFrame frame{x, y, axis_ticks(x), thinned_ticks(axis_ticks(y), plot.height(), 1.2 * t.line), QStringLiteral("position t"),
                  QStringLiteral("value"), true, true};
  draw_plot_frame(painter, plot, frame, t, style);
  draw_tau_line(painter, plot, c, t, style);
  draw_caption_above(painter, plot, plot.width(), t, style.foreground,
                     QStringLiteral("Memory read by segment %1: stored values (points) and X̄(t) = Bᵀψ(t) (curves)").arg(r.segment));
  painter.save();
  painter.setFont(t.small);
  painter.setPen(style.foreground);
  const QRectF labels(plot.left() + 0.5 * t.gap, plot.top() + 0.3 * t.gap, plot.width() - t.gap, t.small_line);
  if (r.compressed) {
    const double split = c.trace->tau * plot.width();
    painter.drawText(QRectF(labels.left(), labels.top(), split - t.gap, labels.height()), Qt::AlignLeft | Qt::AlignVCenter,
                     QFontMetricsF(t.small, painter.device())
                         .elidedText(QStringLiteral("[0, τ]: segments 0–%1 compressed").arg(r.segment - 2), Qt::ElideRight, split - t.gap));
    painter.drawText(QRectF(plot.left() + split + 0.5 * t.gap, labels.top(), plot.width() - split - t.gap, labels.height()),
                     Qt::AlignLeft | Qt::AlignVCenter,
                     QFontMetricsF(t.small, painter.device())
                         .elidedText(QStringLiteral("segment %1").arg(r.segment - 1), Qt::ElideRight, plot.width() - split - t.gap));
  } else {
    painter.drawText(labels, Qt::AlignLeft | Qt::AlignVCenter, QStringLiteral("segment 0 over all of [0, 1]"));
  }
  painter.setClipRect(plot);
  painter.setRenderHint(QPainter::Antialiasing, true);
  const auto samples = r.reconstructed.empty() ? 0 : static_cast<int>(r.reconstructed.dim(1));
  const auto stored = r.stored.empty() ? 0 : static_cast<int>(r.stored.dim(1));
  for (int ch = 0; ch < c.channels; ++ch) {
    QColor point = memory_channel_color(ch);
    point.setAlphaF(0.55f);
    painter.setPen(Qt::NoPen);
    painter.setBrush(point);
    const double radius = kPointLines * t.line;
    for (int p = 0; p < stored; ++p) painter.drawEllipse(plot_point(plot, x, y, r.positions.data()[p], r.stored.at(ch, p)), radius, radius);
    QPainterPath curve;
    for (int k = 0; k < samples; ++k) {
      const QPointF at = plot_point(plot, x, y, samples > 1 ? static_cast<double>(k) / (samples - 1) : 0.0, r.reconstructed.at(ch, k));
      if (k == 0) curve.moveTo(at);
      else curve.lineTo(at);
    }
    painter.setPen(QPen(memory_channel_color(ch), kCurveLines * t.line));
    painter.setBrush(Qt::NoBrush);
    painter.drawPath(curve);
  }
  if (c.highlight >= 0) {
    const double mu = r.head_mu.at(c.head, c.highlight);
    const double px = plot_point(plot, x, y, mu, 0.0).x();
    painter.setPen(QPen(memory_highlight_color(), kCurveLines * t.line, Qt::DashLine));
    painter.drawLine(QPointF(px, plot.top()), QPointF(px, plot.bottom()));
  }
  painter.restore();
  std::vector<QColor> colours;
  QStringList names;
  for (int ch = 0; ch < c.channels; ++ch) {
    colours.push_back(memory_channel_color(ch));
    names << QStringLiteral("channel %1").arg(ch);
  }
  if (c.highlight >= 0) {
    colours.push_back(memory_highlight_color());
    names << QStringLiteral("μ of token #%1").arg(c.start + c.highlight);
  }
  draw_series_legend(painter, plot.adjusted(0, t.small_line + 0.5 * t.gap, 0, 0), colours, names, t, style);
}

QPainterPath density_curve(const QRectF& plot, const PlotAxis& x, const PlotAxis& y, const Content& c, int row) {
  QPainterPath path;
  for (int b = 0; b < c.bins; ++b) {
    const QPointF at = plot_point(plot, x, y, (b + 0.5) / c.bins, c.read->density.at(c.head, row, b));
    if (b == 0) path.moveTo(at);
    else path.lineTo(at);
  }
  return path;
}

void draw_density_plot(QPainter& painter, const MemoryFigureLayout& layout, const Content& c, const FigureText& t,
                       const FigureStyle& style, const QStringList& labels) {
  const QRectF& plot = layout.density_plot;
  if (plot.isEmpty()) return;
  const PlotAxis x = t_axis(), y = density_y_axis(c);
  PlotFrame frame{x, y, axis_ticks(x), thinned_ticks(axis_ticks(y), plot.height(), 1.2 * t.line), QStringLiteral("position t"),
                  QStringLiteral("density"), true, true};
  draw_plot_frame(painter, plot, frame, t, style);
  draw_tau_line(painter, plot, c, t, style);
  QString caption = QStringLiteral("Where the queries read: N(t; μ, σ²), head %1").arg(c.head);
  if (c.highlight >= 0) {
    caption += QStringLiteral(" · token #%1 “%2”: μ = %3, σ = %4")
                   .arg(c.start + c.highlight)
                   .arg(labels.value(c.start + c.highlight))
                   .arg(c.read->head_mu.at(c.head, c.highlight), 0, 'g', 3)
                   .arg(c.read->head_sigma.at(c.head, c.highlight), 0, 'g', 3);
  }
  draw_caption_above(painter, plot, plot.width(), t, style.foreground, caption);
  painter.save();
  painter.setClipRect(plot);
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  // Every query thin and translucent (more queries, fainter: overlaps darken where many agree).
  painter.setOpacity(std::max(0.06, 0.4 / (1.0 + c.queries / 16.0)));
  painter.setPen(QPen(style.foreground, kFaintLines * t.line));
  for (int i = 0; i < c.queries; ++i)
    if (i != c.highlight) painter.drawPath(density_curve(plot, x, y, c, i));
  painter.setOpacity(1.0);
  if (c.highlight >= 0) {
    painter.setPen(QPen(memory_highlight_color(), kCurveLines * t.line));
    painter.drawPath(density_curve(plot, x, y, c, c.highlight));
  }
  painter.restore();
}

void draw_sticky_plot(QPainter& painter, const MemoryFigureLayout& layout, const Content& c, const FigureText& t,
                      const FigureStyle& style) {
  const QRectF& plot = layout.sticky_plot;
  if (plot.isEmpty()) return;
  const Tensor& h = c.read->sticky_histogram;
  const PlotAxis x = t_axis(), y = sticky_y_axis(c);
  PlotFrame frame{x, y, axis_ticks(x), thinned_ticks(axis_ticks(y), plot.height(), 1.2 * t.line), QStringLiteral("position t"),
                  QStringLiteral("mass"), false, true};
  draw_plot_frame(painter, plot, frame, t, style);
  draw_caption_above(painter, plot, plot.width(), t, style.foreground,
                     QStringLiteral("Sticky memory: attention mass per bin (where the next compression samples)"));
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  const auto bins = static_cast<int>(h.size());
  const double w = plot.width() / std::max(1, bins);
  for (int b = 0; b < bins; ++b) {
    const QPointF top = plot_point(plot, x, y, (b + 0.5) / bins, h.data()[b]);
    painter.fillRect(QRectF(plot.left() + b * w, top.y(), std::max(w * 0.85, 0.5), plot.bottom() - top.y()), memory_sticky_color());
  }
  painter.restore();
}

QString summary_text(const Content& c) {
  const MemoryTrace& m = *c.trace;
  QString text = QStringLiteral("%1 of %2 tokens · %3 Gaussian basis functions · τ = %4%5")
                     .arg(m.segments == 1 ? QStringLiteral("1 segment") : QStringLiteral("%1 segments").arg(m.segments))
                     .arg(m.segment)
                     .arg(m.basis)
                     .arg(m.tau, 0, 'g', 3)
                     .arg(m.sticky ? QStringLiteral(" · sticky memories") : QString());
  if (c.read) {
    text += QStringLiteral(" · segment %1: tokens %2–%3 read a memory of %4 stored points")
                .arg(c.read->segment)
                .arg(c.start)
                .arg(c.start + c.queries - 1)
                .arg(c.read->positions.size());
  }
  return text;
}

}  // namespace

int MemoryFigureLayout::token_at(const QPointF& pos) const {
  const int row = grid.row_at(pos);
  return row >= 0 ? first_token + row : -1;
}

int memory_layer(const ViewContext& context) { return model_view_layer(context, "memory"); }

const MemoryTrace* memory_trace(const ViewContext& context) { return model_layer_extra<MemoryTrace>(context, "memory"); }

const MemorySegmentTrace* memory_read(const ViewContext& context, const MemoryFigureOptions& options) {
  const MemoryTrace* m = memory_trace(context);
  if (!m || m->reads.empty()) return nullptr;
  const auto last = static_cast<int>(m->reads.size());  // reads[s − 1] is segment s
  const int segment = options.segment < 1 ? last : std::min(options.segment, last);
  return &m->reads[static_cast<std::size_t>(segment - 1)];
}

int memory_channels_shown(const MemorySegmentTrace& read, const MemoryFigureOptions& options) {
  const int stored = read.stored.empty() ? 0 : static_cast<int>(read.stored.dim(0));
  return std::clamp(options.channels, 0, std::min(stored, kMemoryMaxChannels));
}

TokenGridData memory_density_grid(const ViewContext& context, const MemoryFigureOptions& options) {
  checked_trace(context);
  const MemorySegmentTrace* read = memory_read(context, options);
  TokenGridData d;
  if (!read || read->density.empty()) return d;
  const int head = read_head(*read, context.head);
  d.rows = static_cast<int>(read->density.dim(1));
  d.cols = static_cast<int>(read->density.dim(2));
  const float* begin = read->density.data() + static_cast<std::ptrdiff_t>(head) * d.rows * d.cols;
  d.values.assign(begin, begin + static_cast<std::ptrdiff_t>(d.rows) * d.cols);
  const auto [lo, hi] = std::minmax_element(d.values.begin(), d.values.end());
  d.vmin = *lo;
  d.vmax = std::max(*hi, *lo + 1e-6f);
  d.colormap = context.colormap;
  d.row_labels = token_labels(*context.result).mid(static_cast<int>(read->start), d.rows);
  for (int b = 0; b < d.cols; ++b) d.col_labels << QString();
  d.row_axis = QStringLiteral("query token");
  d.col_axis = QStringLiteral("position t in the memory");
  d.value_label = QStringLiteral("density N(t; μ, σ²)");
  return d;
}

QColor memory_channel_color(int channel) {
  static const OkabeIto colours[] = {OkabeIto::Blue, OkabeIto::Vermillion, OkabeIto::BluishGreen, OkabeIto::ReddishPurple,
                                     OkabeIto::SkyBlue, OkabeIto::Grey};
  return okabe_ito(colours[static_cast<std::size_t>(std::clamp(channel, 0, kMemoryMaxChannels - 1))]);
}

QColor memory_highlight_color() { return okabe_ito(OkabeIto::Orange); }
QColor memory_sticky_color() { return okabe_ito(OkabeIto::BluishGreen); }

QPointF memory_signal_point(const MemoryFigureLayout& layout, const ViewContext& context, const MemoryFigureOptions& options,
                            double t, double value) {
  return plot_point(layout.signal_plot, t_axis(), signal_y_axis(gather(context, options)), t, value);
}

QPointF memory_density_point(const MemoryFigureLayout& layout, const ViewContext& context, const MemoryFigureOptions& options,
                             double t, double density) {
  return plot_point(layout.density_plot, t_axis(), density_y_axis(gather(context, options)), t, density);
}

QPointF memory_sticky_point(const MemoryFigureLayout& layout, const ViewContext& context, const MemoryFigureOptions& options, int bin) {
  const Content c = gather(context, options);
  const Tensor& h = c.read->sticky_histogram;
  return plot_point(layout.sticky_plot, t_axis(), sticky_y_axis(c), (bin + 0.5) / static_cast<double>(h.size()), h.data()[bin]);
}

QSizeF memory_figure_size(const ViewContext& context, const FigureStyle& style) {
  checked_trace(context);
  return layer_figure_natural_size(style);
}

MemoryFigureLayout compute_memory_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                         const QPaintDevice* device, const MemoryFigureOptions& options) {
  return layout_content(gather(context, options), style, target, device);
}

void draw_memory_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                        const MemoryFigureOptions& options) {
  const Content c = gather(context, options);
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const MemoryFigureLayout layout = layout_content(c, style, target, painter.device());
  const QStringList labels = token_labels(*c.result);

  QString title = QStringLiteral("∞-former memory · layer %1 (%2)").arg(c.layer).arg(c.layer_type);
  if (c.read) title += QStringLiteral(" · segment %1 · head %2").arg(c.read->segment).arg(c.head);
  draw_layer_figure_frame(painter, FigureFrame{layout.title, {}, layout.summary}, title, summary_text(c), t, style);

  if (!c.read) {
    painter.setFont(t.label);
    painter.setPen(style.foreground);
    painter.drawText(layout.message, Qt::AlignCenter | Qt::TextWordWrap,
                     QStringLiteral("The text (%2 tokens) fits into one segment of %1 tokens, so this layer never read its "
                                    "memory: the memory holds the segments before the current one.\nGive more than %1 "
                                    "tokens, or a shorter segment, to see it.")
                         .arg(c.trace->segment)
                         .arg(c.result->length()));
  } else {
    draw_signal_plot(painter, layout, c, t, style);
    draw_density_plot(painter, layout, c, t, style, labels);
    draw_sticky_plot(painter, layout, c, t, style);
    draw_token_grid(painter, layout.grid, c.grid, t, style, c.highlight);
    // The grid's own column labels would be bin numbers: t ticks instead.
    const QRectF& m = layout.grid.matrix;
    draw_grid_column_axis(painter, layout.grid, axis_ticks(t_axis()), [&m](double v) { return m.left() + v * m.width(); }, t, style);
    draw_tau_line(painter, layout.grid.matrix, c, t, style);
    draw_grid_caption(painter, layout.grid, QStringLiteral("Each query's Gaussian over the memory"), t, style);
  }
}

PaintedFigure memory_painted_figure(const ViewContext& context, const FigureStyle& style, const MemoryFigureOptions& options) {
  const int layer = memory_layer(context);
  return PaintedFigure{memory_figure_size(context, style), QStringLiteral("AttnLab: ∞-former memory, layer %1").arg(layer),
                       QStringLiteral("∞-former continuous memory: stored values, reconstructed signal, query Gaussians"),
                       style.background, [context, style, options](QPainter& painter, const QRectF& target) {
                         draw_memory_figure(painter, target, context, style, options);
                       }};
}

void export_memory_data(const ViewContext& context, const QString& path, const MemoryFigureOptions& options) {
  const MemoryTrace& m = checked_trace(context);
  const int layer = memory_layer(context);
  const MemorySegmentTrace* read = memory_read(context, options);
  const QStringList labels = token_labels(*context.result);
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == QLatin1String("json")) {
    nlohmann::json j = m.to_json();
    j["drawn_segment"] = read ? read->segment : -1;
    j["layer_type"] = context.result->layer_types.at(static_cast<std::size_t>(layer));
    write_bytes_atomically(path, view_json_bytes(std::move(j), layer, read ? read_head(*read, context.head) : context.head, labels));
  } else if (suffix == QLatin1String("csv")) {
    QByteArray out = "token_index,token,segment,mu,sigma,mu_mean,sigma_mean\r\n";
    if (read) {
      const int head = read_head(*read, context.head);
      for (std::int64_t i = 0; i < read->mu.size(); ++i) {
        const std::int64_t token = read->start + i;
        out += QByteArray::number(token) + ',' + csv_field(labels.value(static_cast<int>(token))) + ',' +
               QByteArray::number(read->segment) + ',';
        append_csv_value(out, read->head_mu.at(head, i));
        out += ',';
        append_csv_value(out, read->head_sigma.at(head, i));
        out += ',';
        append_csv_value(out, read->mu.data()[i]);
        out += ',';
        append_csv_value(out, read->sigma.data()[i]);
        out += "\r\n";
      }
    }
    write_bytes_atomically(path, out);
  } else {
    throw ParamError(QStringLiteral("cannot export '%1' from view 'memory': data formats are .csv, .json").arg(path).toStdString());
  }
}

}  // namespace attnlab
