#include "figures/perceiver_figure.h"

#include <QFile>
#include <QFontMetricsF>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/npy.h"
#include "figures/figure_kit.h"
#include "models/layer_types.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights, so the figure scales with its font.
constexpr double kPanelGapLines = 2.0;
constexpr double kRowGapLines = 1.2;
constexpr double kNaturalPanelLines = 22;  // longer side of a panel's matrix at the natural size
constexpr double kMassUnitHeight = 0.8;    // the bars' plot, in panel sides
constexpr double kCrossScale = 2.0;        // the widest cross-attention's longer side, in panel sides
constexpr double kNoteUnitHeight = 0.45;
constexpr double kFrameLines = 0.05;
constexpr double kMarkLines = 0.18;       // the prefix | latent boundary
constexpr double kHighlightLines = 0.1;   // the linked token's row, column or bar
constexpr double kTickLines = 0.3;
constexpr double kSwatchLines = 0.8;      // legend squares

enum class PanelKind { Cross, Mass, Latent, Note };

// Everything the figure shows, gathered once per draw.
struct Content {
  const PlaygroundResult* result = nullptr;
  const PerceiverTrace* trace = nullptr;
  int layer = 0, head = 0, highlight = -1, latent_layer = -1;
  std::int64_t length = 0, latents = 0, prefix = 0, configured_latents = 0;
  QStringList tokens;
  QString type;
  HeatmapData cross, latent;  // latent: empty when there are no latent layers
};

std::int64_t latent_layer_count(const PerceiverTrace& t) { return t.latent_weights.rank() == 4 ? t.latent_weights.dim(0) : 0; }

HeatmapData cross_heatmap(const Content& c, ColormapId colormap) {
  const PerceiverTrace& t = *c.trace;
  HeatmapData h;
  h.rows = static_cast<int>(c.latents);
  h.cols = static_cast<int>(c.length);
  const std::int64_t n = c.latents * c.length;
  const float* begin = t.cross_weights.data() + static_cast<std::int64_t>(c.head) * n;
  h.values.assign(begin, begin + n);
  h.row_labels = c.tokens.mid(static_cast<qsizetype>(c.prefix));
  h.col_labels = c.tokens;
  h.row_axis = QStringLiteral("latent");
  h.col_axis = c.prefix > 0 ? QStringLiteral("position: prefix 0–%1 | latents %2–%3").arg(c.prefix - 1).arg(c.prefix).arg(c.length - 1)
                            : QStringLiteral("position (no prefix: every position is a latent)");
  h.vmin = 0.0f;
  h.vmax = largest_finite(h.values);
  h.colormap = sequential_colormap(colormap);
  return h;
}

HeatmapData latent_heatmap(const Content& c, ColormapId colormap) {
  const PerceiverTrace& t = *c.trace;
  HeatmapData h;
  const std::int64_t N = c.latents, n = N * N, H = t.latent_weights.dim(1);
  h.rows = static_cast<int>(N);
  h.cols = static_cast<int>(N);
  const float* begin = t.latent_weights.data() + (static_cast<std::int64_t>(c.latent_layer) * H + c.head) * n;
  h.values.assign(begin, begin + n);
  h.row_labels = c.tokens.mid(static_cast<qsizetype>(c.prefix));
  h.col_labels = h.row_labels;
  h.row_axis = QStringLiteral("latent (query)");
  h.col_axis = QStringLiteral("latent (key)");
  h.vmin = 0.0f;
  h.vmax = largest_finite(h.values);
  h.colormap = sequential_colormap(colormap);
  return h;
}

std::int64_t configured_latents(const PlaygroundResult& result, int layer) {
  const std::string& type = result.layer_types.at(static_cast<std::size_t>(layer));
  Params params(layer_type(type).params);
  if (static_cast<std::size_t>(layer) < result.model.layers.size()) {
    params.set_from_json(result.model.layers[static_cast<std::size_t>(layer)].params);
  }
  return params.get_int("latents");
}

Content gather(const ViewContext& context, const PerceiverFigureOptions& options) {
  Content c;
  c.trace = &checked_model_layer_extra<PerceiverTrace>(context, "perceiver", "perceiver", "the result has no Perceiver AR layer");
  c.layer = model_view_layer(context, "perceiver");
  const PerceiverTrace& t = *c.trace;
  c.result = context.result.get();
  c.length = c.result->length();
  c.latents = t.latents;
  c.prefix = t.prefix_length;
  if (t.cross_weights.shape() != Shape{c.result->heads(), c.latents, c.length} || c.prefix + c.latents != c.length) {
    throw ParamError("view 'perceiver': layer " + std::to_string(c.layer) + " holds no cross-attention of the text's length");
  }
  c.head = context.head;
  c.highlight = highlighted_token(context, c.length);
  c.tokens = token_labels(*c.result);
  c.type = QString::fromStdString(c.result->layer_types.at(static_cast<std::size_t>(c.layer)));
  c.configured_latents = configured_latents(*c.result, c.layer);
  c.latent_layer = resolve_latent_layer(t, options.latent_layer);
  c.cross = cross_heatmap(c, context.colormap);
  if (c.latent_layer >= 0) c.latent = latent_heatmap(c, context.colormap);
  return c;
}

std::vector<FlowPanel> make_panels(const Content& c, const FigureStyle& style, const FigureText& t, const QPaintDevice* device) {
  const QFontMetricsF fm(t.label, device);
  const double caption = t.line + t.gap;
  std::vector<FlowPanel> panels;
  // The cross-attention is the figure's subject: a wide one spans the two panels below it.
  const double aspect = static_cast<double>(std::max(1, c.cross.cols)) / std::max(1, c.cross.rows);
  panels.push_back(heatmap_flow_panel(static_cast<int>(PanelKind::Cross), c.cross, style, t, device, std::clamp(aspect, 1.0, kCrossScale)));
  const double tick_w = widest_text(fm, {QStringLiteral("0.5"), QStringLiteral("1")});
  const double x_label = widest_text(fm, {QString::number(std::max<std::int64_t>(0, c.length - 1))});
  panels.push_back(FlowPanel{static_cast<int>(PanelKind::Mass), 1, kMassUnitHeight, t.line + t.gap + tick_w + t.gap,
                             0.5 * x_label + t.gap, caption, 0.5 * t.gap + 2 * t.line + t.gap});
  if (c.latent_layer >= 0) {
    panels.push_back(heatmap_flow_panel(static_cast<int>(PanelKind::Latent), c.latent, style, t, device));
  } else {
    panels.push_back(FlowPanel{static_cast<int>(PanelKind::Note), 1, kNoteUnitHeight, t.gap, t.gap, caption, t.gap});
  }
  return panels;
}

// Title above the rows; the legend and the summary below.
PanelFlowSpacing spacing_for(const FigureText& t) { return titled_flow_spacing(t, kPanelGapLines, kRowGapLines); }

PerceiverFigureLayout layout_content(const Content& c, const FigureStyle& style, const QRectF& target, const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  const std::vector<FlowPanel> panels = make_panels(c, style, t, device);
  const PanelFlow placement = flow_panels(panels, target, spacing_for(t));
  PerceiverFigureLayout layout;
  layout.figure = target;
  const TitledFrame frame = titled_frame(t, target, placement);
  layout.title = frame.title;
  layout.legend = frame.legend;
  layout.summary = frame.summary;
  layout.panels = placement.outer;
  layout.layer = c.layer;
  layout.length = c.length;
  layout.latents = c.latents;
  layout.prefix_length = c.prefix;
  layout.latent_layer = c.latent_layer;
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const FlowPanel& p = panels[i];
    const QRectF outer = placement.outer[i];
    const QRectF heat(outer.left(), outer.top() + p.top, outer.width(), outer.height() - p.top);
    switch (static_cast<PanelKind>(p.kind)) {
      case PanelKind::Cross:
        layout.cross_panel = heat;
        layout.cross = compute_heatmap_layout(c.cross, style, heat, device);
        break;
      case PanelKind::Latent:
        layout.latent_panel = heat;
        layout.latent = compute_heatmap_layout(c.latent, style, heat, device);
        break;
      case PanelKind::Mass: layout.mass_plot = p.inner(outer, placement.side); break;
      case PanelKind::Note: layout.note = p.inner(outer, placement.side); break;
    }
  }
  return layout;
}

// ---- drawing ---------------------------------------------------------------------------------

void draw_caption(QPainter& painter, const PerceiverFigureLayout& layout, const QRectF& area, const FigureText& t,
                  const FigureStyle& style, const QString& text) {
  draw_caption_above(painter, area, caption_room(layout.panels, area, kPanelGapLines * t.line), t, style.foreground, text);
}

void outline(QPainter& painter, const QRectF& rect, const QColor& colour, const FigureText& t) {
  draw_outline(painter, rect, colour, kHighlightLines * t.line);
}

// The cross-attention's marks: the prefix | latent boundary, and the linked token's column (as a
// key) and row (when it is a latent).
void draw_cross_marks(QPainter& painter, const PerceiverFigureLayout& layout, const Content& c, const FigureText& t) {
  const HeatmapFigureLayout& h = layout.cross;
  if (h.cell <= 0) return;
  const QRectF& m = h.matrix;
  if (c.prefix > 0) draw_column_boundary(painter, m, layout.boundary_x(), perceiver_boundary_color(), kMarkLines * t.line, t);
  if (c.highlight < 0) return;
  const QColor colour = heatmap_outline_color(c.cross);
  outline(painter, QRectF(m.left() + static_cast<double>(c.highlight) * h.cell, m.top(), h.cell, m.height()), colour, t);
  if (c.highlight >= c.prefix) {
    outline(painter, QRectF(m.left(), m.top() + static_cast<double>(c.highlight - c.prefix) * h.cell, m.width(), h.cell), colour, t);
  }
}

// Every stride-th latent gets an x tick, stride from 1, 2, 5, 10, ... so labels stay apart.
std::int64_t tick_stride(double bar, double label_w, double line) {
  const double need = label_w + line;
  for (std::int64_t base = 1;; base *= 10)
    for (const std::int64_t m : {1, 2, 5})
      if (static_cast<double>(base * m) * bar >= need || base > 1'000'000) return base * m;
}

void draw_mass_plot(QPainter& painter, const PerceiverFigureLayout& layout, const Content& c, const FigureText& t,
                    const FigureStyle& style) {
  const QRectF& plot = layout.mass_plot;
  if (plot.isEmpty() || c.latents <= 0) return;
  const PerceiverTrace& tr = *c.trace;
  draw_caption(painter, layout, plot, t, style, QStringLiteral("Prefix vs recent mass per latent · head %1").arg(c.head));
  const double bar = plot.width() / static_cast<double>(c.latents);
  QColor grid = style.foreground;
  grid.setAlphaF(0.25f);
  painter.save();  // the half-way line behind the bars
  painter.setPen(QPen(grid, kFrameLines * t.line, Qt::DashLine));
  painter.drawLine(QPointF(plot.left(), plot.center().y()), QPointF(plot.right(), plot.center().y()));
  painter.restore();
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  // Bars touch when they are narrow; wider ones keep a small gap so that each reads alone.
  const double inset = bar > 0.5 * t.line ? 0.1 * bar : 0.0;
  for (std::int64_t i = 0; i < c.latents; ++i) {
    const double prefix = std::clamp(static_cast<double>(tr.prefix_mass.at(c.head, i)), 0.0, 1.0);
    const double recent = std::clamp(static_cast<double>(tr.recent_mass.at(c.head, i)), 0.0, 1.0 - prefix);
    const double left = plot.left() + static_cast<double>(i) * bar + inset, width = bar - 2 * inset;
    const double y_prefix = plot.bottom() - prefix * plot.height();
    const double y_recent = y_prefix - recent * plot.height();
    painter.fillRect(QRectF(left, y_prefix, width, plot.bottom() - y_prefix), perceiver_prefix_color());
    painter.fillRect(QRectF(left, y_recent, width, y_prefix - y_recent), perceiver_recent_color());
  }
  painter.restore();

  // Axes: 0, ½ and 1 on the left; latent positions below.
  painter.save();
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  const double tick = kTickLines * t.line;
  for (const auto& [value, text] : {std::pair{0.0, QStringLiteral("0")}, std::pair{0.5, QStringLiteral("0.5")},
                                    std::pair{1.0, QStringLiteral("1")}}) {
    const double y = plot.bottom() - value * plot.height();
    painter.setPen(QPen(style.foreground, kFrameLines * t.line));
    painter.drawLine(QPointF(plot.left() - tick, y), QPointF(plot.left(), y));
    painter.drawText(QRectF(plot.left() - t.gap - tick - 10 * t.line, y - 0.5 * t.line, 10 * t.line, t.line),
                     Qt::AlignRight | Qt::AlignVCenter, text);
  }
  const std::int64_t stride = tick_stride(bar, fm.horizontalAdvance(QString::number(c.length - 1)), t.line);
  for (std::int64_t i = 0; i < c.latents; i += stride) {
    const double x = plot.left() + (static_cast<double>(i) + 0.5) * bar;
    const QString text = QString::number(c.prefix + i);
    const double w = fm.horizontalAdvance(text) + t.line;
    painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + tick));
    painter.drawText(QRectF(x - 0.5 * w, plot.bottom() + 0.5 * t.gap, w, t.line), Qt::AlignCenter, text);
  }
  painter.setBrush(Qt::NoBrush);
  painter.drawRect(plot);
  const double room = plot.width() + 2 * t.line;
  painter.drawText(QRectF(plot.center().x() - 0.5 * room, plot.bottom() + 0.5 * t.gap + t.line, room, t.line), Qt::AlignCenter,
                   fm.elidedText(QStringLiteral("latent (position)"), Qt::ElideRight, room));
  painter.translate(plot.left() - t.gap - tick - fm.horizontalAdvance(QStringLiteral("0.5")) - t.gap - 0.5 * t.line, plot.center().y());
  painter.rotate(-90.0);
  painter.drawText(QRectF(-0.5 * plot.height() - t.line, -0.5 * t.line, plot.height() + 2 * t.line, t.line), Qt::AlignCenter,
                   fm.elidedText(QStringLiteral("mass"), Qt::ElideRight, plot.height() + 2 * t.line));
  painter.restore();

  if (c.highlight >= c.prefix) {
    const double left = plot.left() + static_cast<double>(c.highlight - c.prefix) * bar;
    outline(painter, QRectF(left, plot.top(), bar, plot.height()), style.foreground, t);
  }
}

QString note_text(const Content& c) {
  return QStringLiteral("Layer %1 has no latent layers (latent_layers = 0): the latents leave the layer right after the "
                        "cross-attention and its feed-forward part, so there is no latent self-attention to show.")
      .arg(c.layer);
}

void draw_note(QPainter& painter, const PerceiverFigureLayout& layout, const Content& c, const FigureText& t, const FigureStyle& style) {
  if (layout.note.isEmpty()) return;
  draw_caption(painter, layout, layout.note, t, style, QStringLiteral("No latent self-attention"));
  draw_note_box(painter, layout.note, t, style, kFrameLines, note_text(c));
}

// Swatches and their texts, left to right, as long as they fit.
void draw_legend(QPainter& painter, const PerceiverFigureLayout& layout, const Content& c, const FigureText& t, const FigureStyle& style) {
  const QRectF& box = layout.legend;
  painter.save();
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  const double swatch = kSwatchLines * t.line;
  double x = box.left();
  const auto entry = [&](const QColor& colour, bool line, const QString& text) {
    const double w = swatch + 0.5 * t.gap + fm.horizontalAdvance(text);
    if (x + w > box.right()) return;
    const QRectF sample(x, box.center().y() - 0.5 * swatch, swatch, swatch);
    if (line) {
      painter.setPen(QPen(colour, kMarkLines * t.line, Qt::SolidLine, Qt::FlatCap));
      painter.drawLine(QPointF(sample.center().x(), sample.top()), QPointF(sample.center().x(), sample.bottom()));
    } else {
      painter.fillRect(sample, colour);
    }
    painter.setPen(style.foreground);
    painter.drawText(QRectF(sample.right() + 0.5 * t.gap, box.top(), w, box.height()), Qt::AlignLeft | Qt::AlignVCenter, text);
    x += w + 1.5 * t.line;
  };
  entry(perceiver_prefix_color(), false, QStringLiteral("mass on the prefix"));
  entry(perceiver_recent_color(), false, QStringLiteral("mass on recent positions (the latents)"));
  if (c.prefix > 0) entry(perceiver_boundary_color(), true, QStringLiteral("prefix | latent boundary"));
  painter.restore();
  painter.save();
  painter.setPen(style.foreground);
  const QString causal = QStringLiteral("latent i sees the prefix and the positions up to its own");
  if (box.right() - x >= fm.horizontalAdvance(causal)) draw_text_line(painter, QRectF(x, box.top(), box.right() - x, box.height()), t.label, causal);
  painter.restore();
}

QString summary_text(const Content& c) {
  const PerceiverTrace& tr = *c.trace;
  const std::int64_t depth = latent_layer_count(tr);
  QString text = QStringLiteral("L = %1 tokens · %2 latent layer%3 · ").arg(c.length).arg(depth).arg(depth == 1 ? QString() : QStringLiteral("s"));
  if (c.prefix > 0) {
    text += QStringLiteral("prefix length Lp = %1 (positions 0–%2) · N = %3 latents (positions %4–%5)")
                .arg(c.prefix)
                .arg(c.prefix - 1)
                .arg(c.latents)
                .arg(c.prefix)
                .arg(c.length - 1);
  } else {
    text += QStringLiteral("no prefix (Lp = 0): the text is not longer than the %1 latents the layer allows, so every "
                           "position is a latent (N = %2)")
                .arg(c.configured_latents)
                .arg(c.latents);
  }
  if (!tr.dropped_prefix.empty()) text += QStringLiteral(" · prefix dropout hid %1 of %2 prefix keys").arg(tr.dropped_prefix.size()).arg(c.prefix);
  if (c.highlight >= 0) {
    text += QStringLiteral(" · token #%1 “%2”: ").arg(c.highlight).arg(c.tokens.value(c.highlight));
    if (c.highlight < c.prefix) {
      text += QStringLiteral("prefix");
    } else {
      const std::int64_t i = c.highlight - c.prefix;
      text += QStringLiteral("latent %1, prefix mass %2").arg(i).arg(static_cast<double>(tr.prefix_mass.at(c.head, i)), 0, 'f', 3);
    }
  }
  return text;
}

}  // namespace

QPointF PerceiverFigureLayout::mass_point(std::int64_t index, double mass) const {
  const double bar = mass_plot.width() / static_cast<double>(std::max<std::int64_t>(1, latents));
  return QPointF(mass_plot.left() + (static_cast<double>(index) + 0.5) * bar, mass_plot.bottom() - mass * mass_plot.height());
}

double PerceiverFigureLayout::boundary_x() const { return cross.matrix.left() + static_cast<double>(prefix_length) * cross.cell; }

int PerceiverFigureLayout::token_at(const QPointF& pos) const {
  if (latents <= 0) return -1;
  const auto row_token = [&](const HeatmapFigureLayout& h) {
    const auto row = static_cast<std::int64_t>((pos.y() - h.matrix.top()) / h.cell);
    return static_cast<int>(prefix_length + std::clamp<std::int64_t>(row, 0, latents - 1));
  };
  if (cross.cell > 0 && cross.matrix.contains(pos)) return row_token(cross);
  if (latent.cell > 0 && latent.matrix.contains(pos)) return row_token(latent);
  if (!mass_plot.isEmpty() && mass_plot.contains(pos)) {
    const auto i = static_cast<std::int64_t>((pos.x() - mass_plot.left()) / mass_plot.width() * static_cast<double>(latents));
    return static_cast<int>(prefix_length + std::clamp<std::int64_t>(i, 0, latents - 1));
  }
  return -1;
}

const PerceiverTrace* perceiver_trace(const ViewContext& context) { return model_layer_extra<PerceiverTrace>(context, "perceiver"); }

int resolve_latent_layer(const PerceiverTrace& trace, int latent_layer) {
  const std::int64_t count = latent_layer_count(trace);
  if (count <= 0) return -1;
  return static_cast<int>(std::clamp<std::int64_t>(latent_layer, 0, count - 1));
}

QColor perceiver_prefix_color() { return okabe_ito(OkabeIto::Blue); }
QColor perceiver_recent_color() { return okabe_ito(OkabeIto::Orange); }
QColor perceiver_boundary_color() { return okabe_ito(OkabeIto::Vermillion); }

HeatmapData perceiver_cross_heatmap(const ViewContext& context) { return gather(context, {}).cross; }

HeatmapData perceiver_latent_heatmap(const ViewContext& context, const PerceiverFigureOptions& options) {
  const Content c = gather(context, options);
  if (c.latent_layer < 0) throw ParamError("view 'perceiver': layer " + std::to_string(c.layer) + " has no latent layers");
  return c.latent;
}

QSizeF perceiver_figure_size(const ViewContext& context, const FigureStyle& style, const PerceiverFigureOptions& options) {
  const Content c = gather(context, options);
  return natural_flow_size(
      style, kNaturalPanelLines, [&](const FigureText& t, const QPaintDevice* device) { return make_panels(c, style, t, device); },
      spacing_for);
}

PerceiverFigureLayout compute_perceiver_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                               const QPaintDevice* device, const PerceiverFigureOptions& options) {
  return layout_content(gather(context, options), style, target, device);
}

void draw_perceiver_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                           const PerceiverFigureOptions& options) {
  const Content c = gather(context, options);
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const PerceiverFigureLayout layout = layout_content(c, style, target, painter.device());

  painter.setPen(style.foreground);
  draw_text_line(painter, layout.title, t.title, QStringLiteral("Perceiver AR · layer %1 (%2)").arg(c.layer).arg(c.type),
                 Qt::AlignHCenter | Qt::AlignVCenter);
  if (!layout.cross_panel.isEmpty()) {
    draw_heatmap_figure(painter, layout.cross_panel, c.cross, style);
    draw_caption(painter, layout, layout.cross.matrix, t, style,
                 QStringLiteral("Cross-attention · head %1 · prefix Lp = %2, N = %3 latents%4")
                     .arg(c.head)
                     .arg(c.prefix)
                     .arg(c.latents)
                     .arg(c.trace->dropped_prefix.empty()
                              ? QString()
                              : QStringLiteral(" · %1 prefix keys dropped").arg(c.trace->dropped_prefix.size())));
    draw_cross_marks(painter, layout, c, t);
  }
  draw_mass_plot(painter, layout, c, t, style);
  if (!layout.latent_panel.isEmpty()) {
    const int latent_highlight = c.highlight >= c.prefix ? static_cast<int>(c.highlight - c.prefix) : -1;
    draw_heatmap_figure(painter, layout.latent_panel, c.latent, with_highlight(style, latent_highlight));
    draw_caption(painter, layout, layout.latent.matrix, t, style,
                 QStringLiteral("Latent self-attention · latent layer %1 of %2 · head %3")
                     .arg(c.latent_layer)
                     .arg(latent_layer_count(*c.trace))
                     .arg(c.head));
  }
  draw_note(painter, layout, c, t, style);
  draw_legend(painter, layout, c, t, style);
  draw_summary_line(painter, layout.summary, t, style, summary_text(c));
}

PaintedFigure perceiver_painted_figure(const ViewContext& context, const FigureStyle& style, const PerceiverFigureOptions& options) {
  return view_painted_figure(
      perceiver_figure_size(context, style, options),
      QStringLiteral("AttnLab: Perceiver AR, layer %1, head %2").arg(model_view_layer(context, "perceiver")).arg(context.head),
      QStringLiteral("latent cross-attention over prefix and latents, prefix mass, latent self-attention"), context, style,
      [options](QPainter& painter, const QRectF& target, const ViewContext& c, const FigureStyle& s) {
        draw_perceiver_figure(painter, target, c, s, options);
      });
}

void export_perceiver_data(const ViewContext& context, const QString& path) {
  const QString suffix = view_data_format("perceiver", path, {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")});
  const int latent_layer = static_cast<int>(view_options(view_spec("perceiver"), context.options).get_int("latent_layer"));
  const Content c = gather(context, PerceiverFigureOptions{latent_layer});
  const PerceiverTrace& tr = *c.trace;
  if (suffix == QLatin1String("npy")) {
    write_npy(QFile::encodeName(path).toStdString(), tr.cross_weights);
  } else if (suffix == QLatin1String("json")) {
    const nlohmann::json all = tr.to_json();
    nlohmann::json j;
    for (const char* key : {"kind", "latents", "prefix_length", "prefix_mass", "recent_mass", "dropped_prefix"}) j[key] = all.at(key);
    j["cross_weights"] = all.at("cross_weights").at(static_cast<std::size_t>(c.head));  // the selected head only
    nlohmann::json latent = nlohmann::json::array();
    for (const nlohmann::json& per_layer : all.at("latent_weights")) latent.push_back(per_layer.at(static_cast<std::size_t>(c.head)));
    j["latent_weights"] = std::move(latent);
    j["latent_layers"] = latent_layer_count(tr);
    j["selected_latent_layer"] = c.latent_layer >= 0 ? nlohmann::json(c.latent_layer) : nlohmann::json(nullptr);
    j["type"] = c.type.toStdString();
    write_view_json(path, std::move(j), c.layer, c.head, c.tokens);
  } else {
    QByteArray out = "latent,position,token,prefix_mass,recent_mass\r\n";
    for (std::int64_t i = 0; i < c.latents; ++i) {
      const std::int64_t position = c.prefix + i;
      out += QByteArray::number(static_cast<qlonglong>(i)) + ',' + QByteArray::number(static_cast<qlonglong>(position)) + ',' +
             csv_field(c.tokens.value(static_cast<int>(position))) + ',';
      append_csv_value(out, tr.prefix_mass.at(c.head, i));
      out += ',';
      append_csv_value(out, tr.recent_mass.at(c.head, i));
      out += "\r\n";
    }
    write_bytes_atomically(path, out);
  }
}

}  // namespace attnlab
