#include "figures/yoso_figure.h"

#include <QFile>
#include <QFileInfo>
#include <QFontMetricsF>
#include <QImage>
#include <QPainterPath>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>

#include "core/error.h"
#include "core/npy.h"
#include "figures/figure_kit.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights, so the figure scales with its font (margin and basic gap: the
// defaults of FigureTextSpec).
constexpr double kPanelGapLines = 2.0;
constexpr double kRowGapLines = 1.2;
constexpr double kNaturalPanelLines = 18;  // side of a panel's square area at the natural size
constexpr double kFrameLines = 0.05;
constexpr double kCurveLines = 0.12;
constexpr double kMarkerLines = 0.28;  // radius of a plotted point
constexpr double kTickLines = 0.3;
constexpr double kMinProbability = 1e-6;  // lowest decade the log probability axis may reach

enum class PanelKind { Collision, Sampled, Expected, Difference, Error };

// Everything the figure shows, gathered once per draw.
struct Content {
  const PlaygroundResult* result = nullptr;
  const YosoExtras* extras = nullptr;
  int layer = 0, head = 0, highlight = -1;
  HeatmapData sampled, expected, difference;
  QStringList tokens;
  std::size_t points = 0;  // error checkpoints
};

const YosoExtras& checked_extras(const ViewContext& context) {
  return checked_layer_extras<YosoExtras>(context, "yoso", "YOSO");
}

HeatmapData kernel_heatmap(const ViewContext& context, bool sampled) {
  const YosoExtras& e = checked_extras(context);
  HeatmapData data;
  data.rows = static_cast<int>(e.queries());
  data.cols = static_cast<int>(e.keys());
  const Tensor& kernel = sampled ? e.data().sampled : e.data().expected;
  const float* begin = kernel.data() + static_cast<std::int64_t>(context.head) * e.queries() * e.keys();
  data.values.assign(begin, begin + e.queries() * e.keys());
  data.row_labels = token_labels(*context.result);
  data.col_labels = data.row_labels;
  data.value_label = sampled ? QStringLiteral("B̂: collision frequency") : QStringLiteral("B = (1 − θ/π)^τ");
  // One colour scale for both kernels.
  float top = 0.0f;
  for (const Tensor* t : {&e.data().sampled, &e.data().expected}) {
    const float* p = t->data() + static_cast<std::int64_t>(context.head) * e.queries() * e.keys();
    top = std::max(top, *std::max_element(p, p + e.queries() * e.keys()));
  }
  data.vmin = 0.0f;
  data.vmax = top > 0.0f ? top : 1.0f;
  data.colormap = context.colormap;
  return data;
}

Content gather(const ViewContext& context) {
  Content c;
  c.extras = &checked_extras(context);
  c.result = context.result.get();
  c.layer = context.layer;
  c.head = context.head;
  c.highlight = context.highlighted_token < c.extras->queries() ? context.highlighted_token : -1;
  c.sampled = yoso_sampled_heatmap(context);
  c.expected = yoso_expected_heatmap(context);
  c.difference = yoso_difference_heatmap(context);
  c.tokens = token_labels(*c.result);
  c.points = c.extras->data().error_hashes.size();
  return c;
}

// The collision plot's probability axis: decades from below the smallest value shown up to 1.
PlotAxis probability_axis(const Content& c, const YosoFigureOptions& options) {
  if (!options.log_probability) return PlotAxis{0.0, 1.0, false, {}};
  const YosoExtras::Data& d = c.extras->data();
  double smallest = 0.1;
  for (int b = 0; b < YosoExtras::kAngleBins; ++b) {
    const std::size_t k = c.extras->bin_index(c.head, b);
    if (d.bin_pairs[k] == 0) continue;
    for (double v : {d.bin_sampled[k], d.bin_expected[k]})
      if (v > 0.0) smallest = std::min(smallest, v);
  }
  return decade_axis(std::max(smallest, kMinProbability), 1.0);
}

// The error plot's axes: hashes on a log axis from 1 to m, errors in whole decades.
std::pair<PlotAxis, PlotAxis> error_axes(const Content& c) {
  const YosoExtras& e = *c.extras;
  const double m = std::max(2, e.n_hashes());
  double lo = 1e300, hi = 0.0;
  for (std::size_t p = 0; p < c.points; ++p) {
    for (double v : {e.relative_error(c.head, p), e.error_reference(c.head, p)}) {
      if (v > 0.0) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
  }
  if (!(hi > 0.0)) {
    lo = 0.1;
    hi = 1.0;
  }
  return {PlotAxis{1.0, m, true, {}}, decade_axis(lo, hi)};
}

std::vector<FlowPanel> make_panels(const Content& c, const FigureStyle& style, const FigureText& t, const QPaintDevice* device) {
  const QFontMetricsF fm(t.label, device);
  const double caption = t.line + t.gap;
  // Plots: tick labels and an axis title on the left and below.
  const double tick_w = widest_text(fm, {decade_label(-6), QStringLiteral("0.75"), decade_label(-3)});
  // Room on the right for half an x tick label ("180°", "256") centred on the last tick.
  const double plot_right = 0.5 * widest_text(fm, {QStringLiteral("180°"), QStringLiteral("256")}) + t.gap;
  const FlowPanel plot{static_cast<int>(PanelKind::Collision), 1, 1, t.line + t.gap + tick_w + t.gap, plot_right, caption,
                       0.5 * t.gap + 2 * t.line + t.gap};
  // The two kernels first and next to each other (one colour scale), then their difference,
  // then the two plots.
  std::vector<FlowPanel> panels;
  const FigureStyle hs = with_highlight(style, c.highlight);
  const double probe = 1000.0 * t.line, huge = 1e4 * t.line;
  for (const auto& [kind, data] : {std::pair{PanelKind::Sampled, &c.sampled}, std::pair{PanelKind::Expected, &c.expected},
                                   std::pair{PanelKind::Difference, &c.difference}}) {
    const HeatmapFigureLayout wide = compute_heatmap_layout(*data, hs, QRectF(0, 0, huge, probe), device);
    const HeatmapFigureLayout tall = compute_heatmap_layout(*data, hs, QRectF(0, 0, probe, huge), device);
    panels.push_back(FlowPanel{static_cast<int>(kind), 1, 1, 0, probe - tall.matrix.width(), caption, probe - wide.matrix.height()});
  }
  panels.push_back(plot);
  FlowPanel error = plot;
  error.kind = static_cast<int>(PanelKind::Error);
  panels.push_back(error);
  return panels;
}

// Title above the rows; the note and the summary below.
PanelFlowSpacing spacing_for(const FigureText& t) {
  return PanelFlowSpacing{t.margin, kPanelGapLines * t.line, kRowGapLines * t.line, t.margin + t.title_line + t.gap,
                          t.gap + t.line + t.gap + t.line + t.margin};
}

YosoFigureLayout layout_content(const Content& c, const FigureStyle& style, const QRectF& target, const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  const std::vector<FlowPanel> panels = make_panels(c, style, t, device);
  const PanelFlow placement = flow_panels(panels, target, spacing_for(t));
  YosoFigureLayout layout;
  layout.figure = target;
  layout.title = QRectF(target.left() + t.margin, placement.top + t.margin, target.width() - 2 * t.margin, t.title_line);
  layout.panels = placement.outer;
  const FigureStyle hs = with_highlight(style, c.highlight);
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const FlowPanel& p = panels[i];
    const QRectF outer = placement.outer[i];
    const QRectF square = p.inner(outer, placement.side);
    const QRectF heat_target(outer.left(), outer.top() + p.top, outer.width(), outer.height() - p.top);
    switch (static_cast<PanelKind>(p.kind)) {
      case PanelKind::Collision: layout.collision_plot = square; break;
      case PanelKind::Error: layout.error_plot = square; break;
      case PanelKind::Sampled:
        layout.sampled_panel = heat_target;
        layout.sampled = compute_heatmap_layout(c.sampled, hs, heat_target, device);
        break;
      case PanelKind::Expected:
        layout.expected_panel = heat_target;
        layout.expected = compute_heatmap_layout(c.expected, hs, heat_target, device);
        break;
      case PanelKind::Difference:
        layout.difference_panel = heat_target;
        layout.difference = compute_heatmap_layout(c.difference, hs, heat_target, device);
        break;
    }
  }
  const double footer_top = placement.footer_top + t.gap;
  layout.legend = QRectF(target.left() + t.margin, footer_top, target.width() - 2 * t.margin, t.line);
  layout.summary = QRectF(target.left() + t.margin, layout.legend.bottom() + t.gap, target.width() - 2 * t.margin, t.line);
  return layout;
}

// ---- drawing helpers -------------------------------------------------------------------------

void draw_caption(QPainter& painter, const YosoFigureLayout& layout, const QRectF& area, const FigureText& t,
                  const FigureStyle& style, const QString& text) {
  draw_caption_above(painter, area, caption_room(layout.panels, area, kPanelGapLines * t.line), t, style.foreground, text);
}

struct Tick {
  double value;
  QString text;
};

// Frame, ticks with labels and axis titles of a plot.
void draw_plot_axes(QPainter& painter, const QRectF& plot, const PlotAxis& x, const PlotAxis& y, const std::vector<Tick>& x_ticks,
                    const std::vector<Tick>& y_ticks, const QString& x_title, const QString& y_title, const FigureText& t,
                    const FigureStyle& style) {
  painter.save();
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  QColor grid = style.foreground;
  grid.setAlphaF(0.15f);
  const double tick = kTickLines * t.line;
  for (const Tick& k : x_ticks) {
    const double px = plot.left() + x.fraction(k.value) * plot.width();
    painter.setPen(QPen(grid, kFrameLines * t.line));
    painter.drawLine(QPointF(px, plot.top()), QPointF(px, plot.bottom()));
    painter.setPen(QPen(style.foreground, kFrameLines * t.line));
    painter.drawLine(QPointF(px, plot.bottom()), QPointF(px, plot.bottom() + tick));
    const double w = fm.horizontalAdvance(k.text) + t.line;
    painter.drawText(QRectF(px - 0.5 * w, plot.bottom() + 0.5 * t.gap, w, t.line), Qt::AlignCenter, k.text);
  }
  double label_w = 0;
  for (const Tick& k : y_ticks) {
    const double py = plot.bottom() - y.fraction(k.value) * plot.height();
    painter.setPen(QPen(grid, kFrameLines * t.line));
    painter.drawLine(QPointF(plot.left(), py), QPointF(plot.right(), py));
    painter.setPen(QPen(style.foreground, kFrameLines * t.line));
    painter.drawLine(QPointF(plot.left() - tick, py), QPointF(plot.left(), py));
    painter.drawText(QRectF(plot.left() - t.gap - 10 * t.line, py - 0.5 * t.line, 10 * t.line, t.line),
                     Qt::AlignRight | Qt::AlignVCenter, k.text);
    label_w = std::max(label_w, fm.horizontalAdvance(k.text));
  }
  painter.setPen(QPen(style.foreground, kFrameLines * t.line));
  painter.setBrush(Qt::NoBrush);
  painter.drawRect(plot);
  const double x_room = plot.width() + 2 * t.line, y_room = plot.height() + 2 * t.line;
  painter.drawText(QRectF(plot.center().x() - 0.5 * x_room, plot.bottom() + 0.5 * t.gap + t.line, x_room, t.line),
                   Qt::AlignCenter, fm.elidedText(x_title, Qt::ElideRight, x_room));
  painter.translate(plot.left() - t.gap - label_w - t.gap - 0.5 * t.line, plot.center().y());
  painter.rotate(-90.0);
  painter.drawText(QRectF(-0.5 * y_room, -0.5 * t.line, y_room, t.line), Qt::AlignCenter,
                   fm.elidedText(y_title, Qt::ElideRight, y_room));
  painter.restore();
}

std::vector<Tick> decade_ticks(const PlotAxis& axis, double plot_height, double line) {
  std::vector<Tick> ticks;
  const int lo = static_cast<int>(std::lround(std::log10(axis.lo))), hi = static_cast<int>(std::lround(std::log10(axis.hi)));
  const int stride = std::max(1, static_cast<int>(std::ceil(1.5 * line / std::max(plot_height / std::max(1, hi - lo), 1e-9))));
  for (int e = hi; e >= lo; e -= stride) ticks.push_back({std::pow(10.0, e), decade_label(e)});
  return ticks;
}

void draw_marker(QPainter& painter, const QPointF& at, double radius, const QColor& fill, const QColor& edge, double line) {
  painter.setPen(QPen(edge, kFrameLines * line));
  painter.setBrush(fill);
  painter.drawEllipse(at, radius, radius);
}

// A legend line: a short sample (line and/or marker) and its text.
void draw_legend_entry(QPainter& painter, QPointF at, const QString& text, const QColor& line_colour, Qt::PenStyle line_style,
                       const QColor& marker, const FigureText& t, const FigureStyle& style) {
  const double sample = 1.6 * t.line;
  const double y = at.y() + 0.5 * t.line;
  if (line_style != Qt::NoPen) {
    painter.setPen(QPen(line_colour, kCurveLines * t.line, line_style));
    painter.drawLine(QPointF(at.x(), y), QPointF(at.x() + sample, y));
  }
  if (marker.isValid()) draw_marker(painter, QPointF(at.x() + 0.5 * sample, y), kMarkerLines * t.line, marker, style.background, t.line);
  painter.setPen(style.foreground);
  painter.drawText(QRectF(at.x() + sample + t.gap, at.y(), 40 * t.line, t.line), Qt::AlignLeft | Qt::AlignVCenter, text);
}

QString code_bits(int code, int bits) {
  QString text;
  for (int b = bits - 1; b >= 0; --b) text += (code >> b) & 1 ? QLatin1Char('1') : QLatin1Char('0');
  return text;
}

QString summary_text(const Content& c) {
  const YosoExtras& e = *c.extras;
  QString text = QStringLiteral("τ = %1 bits · m = %2 · mode %3 · ‖B̂ − B‖/‖B‖ = %4 (head %5), %6 (all heads) at m = %2")
                     .arg(e.hash_bits())
                     .arg(e.n_hashes())
                     .arg(QString::fromStdString(e.mode()))
                     .arg(e.relative_error(c.head, c.points - 1), 0, 'g', 3)
                     .arg(c.head)
                     .arg(e.data().relative_error_all[c.points - 1], 0, 'g', 3);
  if (c.highlight >= 0) {
    QStringList codes;
    const int shown = std::min(3, e.n_hashes());
    for (int t = 0; t < shown; ++t) codes << code_bits(e.query_code(c.head, t, c.highlight), e.hash_bits());
    text += QStringLiteral(" · query #%1 “%2” codes %3%4")
                .arg(c.highlight)
                .arg(c.tokens.value(c.highlight))
                .arg(codes.join(QStringLiteral(", ")))
                .arg(e.n_hashes() > shown ? QStringLiteral(", …") : QString());
  }
  return text;
}

void draw_collision_plot(QPainter& painter, const YosoFigureLayout& layout, const Content& c, const YosoFigureOptions& options,
                         const FigureText& t, const FigureStyle& style) {
  const QRectF& plot = layout.collision_plot;
  if (plot.isEmpty()) return;
  const YosoExtras& e = *c.extras;
  const YosoExtras::Data& d = e.data();
  const PlotAxis x{0.0, std::numbers::pi, false, {}};
  const PlotAxis y = probability_axis(c, options);
  draw_caption(painter, layout, plot, t, style, QStringLiteral("Collision probability vs angle"));
  // Every 45°, or every 90° or only the ends when the labels would touch.
  const QFontMetricsF fm(t.label, painter.device());
  const double label_pitch = fm.horizontalAdvance(QStringLiteral("180°")) + t.line;
  int step = 45;
  while (step < 180 && plot.width() * step / 180.0 < label_pitch) step *= 2;
  std::vector<Tick> x_ticks;
  for (int deg = 0; deg <= 180; deg += std::min(step, 180))
    x_ticks.push_back({deg * std::numbers::pi / 180.0, QStringLiteral("%1°").arg(deg)});
  std::vector<Tick> y_ticks;
  if (y.log) {
    y_ticks = decade_ticks(y, plot.height(), t.line);
  } else {
    for (double v : {0.0, 0.25, 0.5, 0.75, 1.0}) y_ticks.push_back({v, QString::number(v)});
  }
  draw_plot_axes(painter, plot, x, y, x_ticks, y_ticks, QStringLiteral("angle θ between q and k"),
                 QStringLiteral("P(same code)"), t, style);
  painter.save();
  painter.setClipRect(plot);
  painter.setRenderHint(QPainter::Antialiasing, true);
  QPainterPath curve;
  bool started = false;
  for (std::size_t p = 0; p < d.curve_angle.size(); ++p) {
    const double prob = d.curve_probability[p];
    if (y.log && prob < y.lo * 0.5) break;  // the rest lies below the axis
    const QPointF at = plot_point(plot, x, y, d.curve_angle[p], prob);
    if (!started) curve.moveTo(at);
    else curve.lineTo(at);
    started = true;
  }
  painter.setPen(QPen(style.foreground, kCurveLines * t.line));
  painter.setBrush(Qt::NoBrush);
  painter.drawPath(curve);
  for (int b = 0; b < YosoExtras::kAngleBins; ++b) {
    const std::size_t k = e.bin_index(c.head, b);
    if (d.bin_pairs[k] == 0 || (y.log && !(d.bin_sampled[k] > 0.0))) continue;
    draw_marker(painter, plot_point(plot, x, y, d.bin_angle[k], d.bin_sampled[k]), kMarkerLines * t.line, yoso_measured_color(),
                style.background, t.line);
  }
  painter.restore();
  painter.save();
  painter.setFont(t.label);
  // Top right: the curve falls from the top left and the measured points sit below it. Left
  // out when the plot is too small to hold it clear of the data.
  const QString curve_text = QStringLiteral("(1 − θ/π)") + superscript(e.hash_bits());
  const QString points_text = QStringLiteral("measured B̂ (5° bins)");
  const double legend_w = 1.6 * t.line + t.gap + widest_text(fm, {curve_text, points_text});
  if (legend_w > 0.75 * plot.width() || 2.5 * t.line > 0.3 * plot.height()) {
    painter.restore();
    return;
  }
  const QPointF legend(plot.right() - t.gap - legend_w, plot.top() + t.gap);
  draw_legend_entry(painter, legend, curve_text, style.foreground, Qt::SolidLine, QColor(), t, style);
  draw_legend_entry(painter, legend + QPointF(0, t.line + 0.5 * t.gap), points_text, QColor(), Qt::NoPen,
                    yoso_measured_color(), t, style);
  painter.restore();
}

void draw_error_plot(QPainter& painter, const YosoFigureLayout& layout, const Content& c, const FigureText& t, const FigureStyle& style) {
  const QRectF& plot = layout.error_plot;
  if (plot.isEmpty()) return;
  const YosoExtras& e = *c.extras;
  const auto [x, y] = error_axes(c);
  draw_caption(painter, layout, plot, t, style, QStringLiteral("Kernel error vs hashes m′"));
  std::vector<Tick> x_ticks;
  const double span = std::log2(x.hi);
  const int stride = std::max(1, static_cast<int>(std::ceil(3.0 * t.line / std::max(plot.width() / std::max(span, 1.0), 1e-9))));
  for (int p = 0; (1 << p) <= static_cast<int>(x.hi); p += stride) x_ticks.push_back({static_cast<double>(1 << p), QString::number(1 << p)});
  draw_plot_axes(painter, plot, x, y, x_ticks, decade_ticks(y, plot.height(), t.line), QStringLiteral("first m′ hashes"),
                 QStringLiteral("‖B̂ − B‖ / ‖B‖"), t, style);
  painter.save();
  painter.setClipRect(plot.adjusted(-t.line, -t.line, t.line, t.line));
  QPainterPath reference, measured;
  for (std::size_t p = 0; p < c.points; ++p) {
    const double m = e.data().error_hashes[p];
    const QPointF r = plot_point(plot, x, y, m, e.error_reference(c.head, p));
    const QPointF v = plot_point(plot, x, y, m, e.relative_error(c.head, p));
    if (p == 0) {
      reference.moveTo(r);
      measured.moveTo(v);
    } else {
      reference.lineTo(r);
      measured.lineTo(v);
    }
  }
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, kCurveLines * t.line, Qt::DashLine));
  painter.drawPath(reference);
  painter.setPen(QPen(yoso_error_color(), kCurveLines * t.line));
  painter.drawPath(measured);
  for (std::size_t p = 0; p < c.points; ++p)
    draw_marker(painter, plot_point(plot, x, y, e.data().error_hashes[p], e.relative_error(c.head, p)), kMarkerLines * t.line,
                yoso_error_color(), style.background, t.line);
  painter.restore();
  painter.save();
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  const double legend_w = 1.6 * t.line + t.gap + widest_text(fm, {QStringLiteral("head 00"), QStringLiteral("∝ 1/√m′")});
  if (legend_w > 0.75 * plot.width() || 2.5 * t.line > 0.3 * plot.height()) {
    painter.restore();
    return;
  }
  const QPointF legend(plot.left() + t.gap, plot.bottom() - 2 * t.line - 2 * t.gap);
  draw_legend_entry(painter, legend, QStringLiteral("head %1").arg(c.head), yoso_error_color(), Qt::SolidLine, yoso_error_color(), t,
                    style);
  draw_legend_entry(painter, legend + QPointF(0, t.line + 0.5 * t.gap), QStringLiteral("∝ 1/√m′"), style.foreground, Qt::DashLine,
                    QColor(), t, style);
  painter.restore();
}

}  // namespace

int YosoFigureLayout::token_at(const QPointF& pos) const {
  for (const HeatmapFigureLayout* h : {&sampled, &expected, &difference}) {
    if (h->cell <= 0 || !h->matrix.contains(pos)) continue;
    return static_cast<int>((pos.y() - h->matrix.top()) / h->cell);
  }
  return -1;
}

const YosoExtras* yoso_extras(const ViewContext& context) { return layer_extras<YosoExtras>(context); }

QColor yoso_measured_color() { return okabe_ito(OkabeIto::Vermillion); }
QColor yoso_error_color() { return okabe_ito(OkabeIto::Blue); }

HeatmapData yoso_sampled_heatmap(const ViewContext& context) { return kernel_heatmap(context, true); }
HeatmapData yoso_expected_heatmap(const ViewContext& context) { return kernel_heatmap(context, false); }

HeatmapData yoso_difference_heatmap(const ViewContext& context) {
  HeatmapData data = kernel_heatmap(context, true);
  const YosoExtras& e = checked_extras(context);
  const float* expected = e.data().expected.data() + static_cast<std::int64_t>(context.head) * e.queries() * e.keys();
  float largest = 0.0f;
  for (std::size_t i = 0; i < data.values.size(); ++i) {
    data.values[i] -= expected[i];
    largest = std::max(largest, std::abs(data.values[i]));
  }
  data.value_label = QStringLiteral("B̂ − B");
  data.vmax = largest > 0.0f ? largest : 1.0f;
  data.vmin = -data.vmax;
  data.colormap = ColormapId::Coolwarm;
  return data;
}

QPointF yoso_collision_point(const YosoFigureLayout& layout, const ViewContext& context, const YosoFigureOptions& options,
                             double angle, double probability) {
  const Content c = gather(context);
  return plot_point(layout.collision_plot, PlotAxis{0.0, std::numbers::pi, false, {}}, probability_axis(c, options), angle,
                    probability);
}

QPointF yoso_error_point(const YosoFigureLayout& layout, const ViewContext& context, double hashes, double error) {
  const Content c = gather(context);
  const auto [x, y] = error_axes(c);
  return plot_point(layout.error_plot, x, y, hashes, error);
}

QSizeF yoso_figure_size(const ViewContext& context, const FigureStyle& style) {
  const Content c = gather(context);
  return natural_flow_size(
      style, kNaturalPanelLines, [&](const FigureText& t, const QPaintDevice* device) { return make_panels(c, style, t, device); },
      spacing_for);
}

YosoFigureLayout compute_yoso_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                     const QPaintDevice* device) {
  return layout_content(gather(context), style, target, device);
}

void draw_yoso_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                      const YosoFigureOptions& options) {
  const Content c = gather(context);
  const YosoExtras& e = *c.extras;
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const YosoFigureLayout layout = layout_content(c, style, target, painter.device());

  painter.setFont(t.title);
  painter.setPen(style.foreground);
  painter.drawText(layout.title, Qt::AlignHCenter | Qt::AlignVCenter,
                   QStringLiteral("YOSO kernel · layer %1 · head %2%3")
                       .arg(c.layer)
                       .arg(c.head)
                       .arg(e.data().causal ? QStringLiteral(" · causal") : QString()));

  draw_collision_plot(painter, layout, c, options, t, style);
  const FigureStyle hs = with_highlight(style, c.highlight);
  const auto heatmap = [&](const QRectF& panel, const HeatmapFigureLayout& inner, const HeatmapData& data, const QString& caption) {
    if (panel.isEmpty()) return;
    draw_heatmap_figure(painter, panel, data, hs);
    draw_caption(painter, layout, inner.matrix, t, style, caption);
  };
  heatmap(layout.sampled_panel, layout.sampled, c.sampled,
          QStringLiteral("Sampled kernel B̂ (m = %1)%2").arg(e.n_hashes()).arg(e.mode() == "sampled" ? QStringLiteral(" · applied") : QString()));
  heatmap(layout.expected_panel, layout.expected, c.expected,
          QStringLiteral("Expected kernel B%1").arg(e.mode() == "expected" ? QStringLiteral(" · applied") : QString()));
  heatmap(layout.difference_panel, layout.difference, c.difference, QStringLiteral("Difference B̂ − B"));
  draw_error_plot(painter, layout, c, t, style);

  painter.save();
  painter.setFont(t.label);
  painter.setPen(style.foreground);
  const QFontMetricsF fm(t.label, painter.device());
  painter.drawText(layout.legend, Qt::AlignLeft | Qt::AlignVCenter,
                   fm.elidedText(QStringLiteral("YOSO's weights are the kernel applied (not normalised: rows do not sum to 1); "
                                                "each output row is then scaled to unit length. B̂ and B share one colour scale."),
                                 Qt::ElideRight, layout.legend.width()));
  painter.drawText(layout.summary, Qt::AlignLeft | Qt::AlignVCenter,
                   fm.elidedText(summary_text(c), Qt::ElideRight, layout.summary.width()));
  painter.restore();
}

PaintedFigure yoso_painted_figure(const ViewContext& context, const FigureStyle& style, const YosoFigureOptions& options) {
  return PaintedFigure{yoso_figure_size(context, style),
                       QStringLiteral("AttnLab: YOSO kernel, layer %1, head %2").arg(context.layer).arg(context.head),
                       QStringLiteral("collision probability, sampled and expected kernels, error against hashes"),
                       style.background, [context, style, options](QPainter& painter, const QRectF& target) {
                         draw_yoso_figure(painter, target, context, style, options);
                       }};
}

void export_yoso_data(const ViewContext& context, const QString& path) {
  const Content c = gather(context);
  const YosoExtras& e = *c.extras;
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == QLatin1String("json")) {
    nlohmann::json all = e.to_json();
    nlohmann::json j;
    for (const char* key : {"kind", "hash_bits", "n_hashes", "mode", "causal", "weights_convention", "error_hashes",
                            "relative_error_all_heads", "curve_angle", "curve_probability"})
      j[key] = all.at(key);
    for (const char* key : {"query_codes", "key_codes", "sampled_kernel", "expected_kernel", "relative_error",
                            "error_reference", "angle_bins"})
      j[key] = all.at(key).at(static_cast<std::size_t>(c.head));  // the selected head only
    write_bytes_atomically(path, view_json_bytes(std::move(j), c.layer, c.head, c.tokens));
  } else if (suffix == QLatin1String("csv")) {
    QByteArray out = "query_index,query_token,key_index,key_token,collisions,sampled,expected,difference,weight\r\n";
    const Tensor& weights = c.result->layers[static_cast<std::size_t>(c.layer)].weights;
    for (std::int64_t i = 0; i < e.queries(); ++i) {
      const QByteArray query = QByteArray::number(static_cast<qlonglong>(i)) + ',' + csv_field(c.tokens.value(static_cast<int>(i))) + ',';
      for (std::int64_t k = 0; k < e.keys(); ++k) {
        out += query + QByteArray::number(static_cast<qlonglong>(k)) + ',' + csv_field(c.tokens.value(static_cast<int>(k))) + ',' +
               QByteArray::number(e.collisions(c.head, i, k)) + ',';
        append_csv_value(out, e.sampled(c.head, i, k));
        out += ',';
        append_csv_value(out, e.expected(c.head, i, k));
        out += ',';
        append_csv_value(out, c.difference.at(static_cast<int>(i), static_cast<int>(k)));
        out += ',';
        append_csv_value(out, weights.at(c.head, i, k));
        out += "\r\n";
      }
    }
    write_bytes_atomically(path, out);
  } else if (suffix == QLatin1String("npy")) {
    const std::int64_t n = e.heads() * e.queries() * e.keys();
    Tensor both = Tensor::uninitialized({2, e.heads(), e.queries(), e.keys()});
    std::copy(e.data().sampled.data(), e.data().sampled.data() + n, both.data());
    std::copy(e.data().expected.data(), e.data().expected.data() + n, both.data() + n);
    write_npy(QFile::encodeName(path).toStdString(), both);
  } else {
    throw ParamError(QStringLiteral("cannot export '%1' from view 'yoso': data formats are .json, .csv, .npy").arg(path).toStdString());
  }
}

}  // namespace attnlab
