#include "figures/state_figure.h"

#include <QFile>
#include <QFileInfo>
#include <QFontMetricsF>
#include <QPainter>
#include <QPainterPath>
#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/npy.h"
#include "figures/figure_kit.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights, so the figure scales with its font.
constexpr double kPanelGapLines = 2.0;
constexpr double kRowGapLines = 1.2;
constexpr double kNaturalPanelLines = 18;
constexpr double kTokenStripLines = 1.4;
constexpr double kTokenTextMinCellLines = 2.5;  // token texts under the strip when cells are this wide
constexpr double kFrameLines = 0.05;
constexpr double kMarkLines = 0.14;

enum class PanelKind { State, Normalizer, Tokens, Error };

struct Content {
  const PlaygroundResult* result = nullptr;
  const RecurrentStates* states = nullptr;
  int layer = 0, head = 0, highlight = -1;
  std::int64_t length = 0, snapshots = 0, rows = 0, cols = 0;
  bool has_normalizer = false, has_error = false;
  QStringList tokens;
};

bool any_finite(const float* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    if (std::isfinite(p[i])) return true;
  return false;
}

Content gather(const ViewContext& context) {
  check_view_context(view_spec("state"), context);
  const RecurrentTraceExtras* extras = recurrent_extras(context);
  if (!extras || extras->recurrent().states.rank() != 4 || extras->recurrent().steps.empty()) {
    throw ParamError("view 'state': layer " + std::to_string(context.layer) + " has no recurrent state trace");
  }
  Content c;
  c.result = context.result.get();
  c.states = &extras->recurrent();
  c.layer = context.layer;
  c.head = context.head;
  c.length = context.result->length();
  c.highlight = context.highlighted_token < c.length ? context.highlighted_token : -1;
  const Tensor& s = c.states->states;
  c.snapshots = s.dim(1);
  c.rows = s.dim(2);
  c.cols = s.dim(3);
  c.has_normalizer = c.states->normalizers.rank() == 3;
  const Tensor& e = c.states->retrieval_error;
  c.has_error = e.rank() == 2 && any_finite(e.data() + c.head * e.dim(1), e.dim(1));
  c.tokens = token_labels(*context.result);
  return c;
}

const float* state_at(const Content& c, std::int64_t step) {
  return c.states->states.data() + (static_cast<std::int64_t>(c.head) * c.snapshots + step) * c.rows * c.cols;
}

double index_label_width(const FigureText& t, const QPaintDevice* device, const QString& widest) {
  return QFontMetricsF(t.label, device).horizontalAdvance(widest);
}

std::vector<FlowPanel> make_panels(const Content& c, const HeatmapData& heat, const FigureStyle& style, const FigureText& t,
                                   const QPaintDevice* device) {
  std::vector<FlowPanel> panels;
  const double probe = 1000.0 * t.line, huge = 1e4 * t.line;
  const HeatmapFigureLayout wide = compute_heatmap_layout(heat, style, QRectF(0, 0, huge, probe), device);
  const HeatmapFigureLayout tall = compute_heatmap_layout(heat, style, QRectF(0, 0, probe, huge), device);
  panels.push_back(FlowPanel{static_cast<int>(PanelKind::State), 1, 1, 0, probe - tall.matrix.width(), 0, probe - wide.matrix.height()});
  const double caption = t.line + t.gap;
  const double axes_bottom = 0.5 * t.gap + 2 * t.line;
  if (c.has_normalizer) {
    const double left = t.gap + index_label_width(t, device, QStringLiteral("0.000e+00"));
    panels.push_back(FlowPanel{static_cast<int>(PanelKind::Normalizer), 1, 0.5, left, t.gap, caption, axes_bottom});
  }
  panels.push_back(FlowPanel{static_cast<int>(PanelKind::Tokens), 1.5, 0, t.gap, t.gap,
                             caption + kTokenStripLines * t.line, 0.5 * t.gap + 2 * t.line});
  if (c.has_error) {
    const double left = t.line + t.gap + index_label_width(t, device, QStringLiteral("0.00")) + t.gap;
    panels.push_back(FlowPanel{static_cast<int>(PanelKind::Error), 1.2, 0.6, left, t.gap, caption, axes_bottom});
  }
  return panels;
}

PanelFlowSpacing spacing_for(const FigureText& t) {
  return PanelFlowSpacing{t.margin, kPanelGapLines * t.line, kRowGapLines * t.line, t.margin + t.title_line + t.gap,
                          t.gap + 2 * t.line + t.gap + t.margin};
}

StateFigureLayout layout_content(const Content& c, const HeatmapData& heat, const FigureStyle& style, const QRectF& target,
                                 const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  const std::vector<FlowPanel> panels = make_panels(c, heat, style, t, device);
  const PanelFlow placement = flow_panels(panels, target, spacing_for(t));
  StateFigureLayout layout;
  layout.figure = target;
  layout.length = c.length;
  const double caption = t.line + t.gap;
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const FlowPanel& p = panels[i];
    const QRectF outer = placement.outer[i];
    switch (static_cast<PanelKind>(p.kind)) {
      case PanelKind::State:
        layout.state_panel = outer;
        layout.state = compute_heatmap_layout(heat, style, outer, device);
        break;
      case PanelKind::Normalizer: layout.normalizer = p.inner(outer, placement.side); break;
      case PanelKind::Error: layout.error_plot = p.inner(outer, placement.side); break;
      case PanelKind::Tokens:
        layout.tokens = QRectF(outer.left() + p.left, outer.top() + caption, p.unit_w * placement.side, kTokenStripLines * t.line);
        break;
    }
  }
  layout.panels = placement.outer;
  layout.title = QRectF(target.left() + t.margin, placement.top + t.margin, target.width() - 2 * t.margin, t.title_line);
  layout.formula = QRectF(target.left() + t.margin, placement.footer_top + t.gap, target.width() - 2 * t.margin, t.line);
  layout.summary = QRectF(target.left() + t.margin, layout.formula.bottom() + t.gap, target.width() - 2 * t.margin, t.line);
  return layout;
}

QColor mix(const QColor& a, const QColor& b, double w) {
  return QColor::fromRgbF(static_cast<float>(a.redF() * (1 - w) + b.redF() * w), static_cast<float>(a.greenF() * (1 - w) + b.greenF() * w),
                          static_cast<float>(a.blueF() * (1 - w) + b.blueF() * w));
}

void draw_frame(QPainter& painter, const QRectF& rect, const FigureStyle& style, double line) {
  painter.save();
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, kFrameLines * line));
  painter.drawRect(rect);
  painter.restore();
}

QString number_text(double v) { return QString::number(v, 'g', 3).replace(QLatin1Char('-'), QChar(0x2212)); }

// Index ticks every stride-th item, stride from 1, 2, 5, 10, ... so labels stay apart.
std::int64_t tick_stride(double cell, double label_w, double line) {
  const double need = std::max(label_w + line, 1.3 * line);
  for (std::int64_t base = 1;; base *= 10)
    for (const std::int64_t m : {1, 2, 5})
      if (static_cast<double>(base * m) * cell >= need || base > 1'000'000) return base * m;
}

void draw_normalizer(QPainter& painter, const StateFigureLayout& layout, const Content& c, std::int64_t step,
                     const FigureText& t, const FigureStyle& style) {
  const QRectF& plot = layout.normalizer;
  if (plot.isEmpty()) return;
  const Tensor& z = c.states->normalizers;  // [H, T, dk]
  const std::int64_t n = z.dim(2);
  const float* head = z.data() + static_cast<std::int64_t>(c.head) * c.snapshots * n;
  float top = 0.0f;
  for (std::int64_t i = 0; i < c.snapshots * n; ++i)
    if (std::isfinite(head[i])) top = std::max(top, std::abs(head[i]));
  if (top <= 0.0f) top = 1.0f;
  draw_caption_above(painter, plot, caption_room(layout.panels, plot, kPanelGapLines * t.line), t, style.foreground,
                     QStringLiteral("Normaliser z = Σ φ(k) · step %1").arg(step));
  const float* now = head + step * n;
  const double w = plot.width() / static_cast<double>(n);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = std::isfinite(now[i]) ? now[i] / top : 0.0;
    const double h = std::clamp(v, -1.0, 1.0) * plot.height();
    painter.fillRect(QRectF(plot.left() + static_cast<double>(i) * w + 0.1 * w, plot.bottom() - std::max(h, 0.0), 0.8 * w, std::abs(h)),
                     state_bar_color());
  }
  painter.restore();
  draw_frame(painter, plot, style, t.line);
  painter.save();
  painter.setPen(style.foreground);
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  for (const auto& [value, y] : {std::pair{0.0, plot.bottom()}, std::pair{static_cast<double>(top), plot.top()}}) {
    const QString label = number_text(value);
    painter.drawText(QRectF(plot.left() - t.gap - fm.horizontalAdvance(label), y - t.line / 2, fm.horizontalAdvance(label), t.line),
                     Qt::AlignRight | Qt::AlignVCenter, label);
  }
  const std::int64_t stride = tick_stride(w, fm.horizontalAdvance(QString::number(n - 1)), t.line);
  for (std::int64_t i = 0; i < n; i += stride) {
    const double x = plot.left() + (static_cast<double>(i) + 0.5) * w;
    const QString label = QString::number(i);
    const double lwid = fm.horizontalAdvance(label);
    painter.drawText(QRectF(x - lwid, plot.bottom() + 0.5 * t.gap, 2 * lwid, t.line), Qt::AlignHCenter | Qt::AlignTop, label);
  }
  painter.drawText(QRectF(plot.left(), plot.bottom() + 0.5 * t.gap + t.line, plot.width(), t.line), Qt::AlignHCenter | Qt::AlignTop,
                   QString::fromStdString(c.states->key_axis));
  painter.restore();
}

void draw_tokens(QPainter& painter, const StateFigureLayout& layout, const Content& c, std::int64_t step, const FigureText& t,
                 const FigureStyle& style) {
  const QRectF& strip = layout.tokens;
  if (strip.isEmpty() || c.length <= 0) return;
  const std::int64_t current = c.states->steps[static_cast<std::size_t>(step)];
  draw_caption_above(painter, strip, strip.width(), t, style.foreground,
                     QStringLiteral("Tokens · after #%1 “%2” (%3 of %4 absorbed)")
                         .arg(current)
                         .arg(c.tokens.value(static_cast<int>(current)))
                         .arg(current + 1)
                         .arg(c.length));
  const double cell = strip.width() / static_cast<double>(c.length);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  for (std::int64_t j = 0; j < c.length; ++j) {
    const QColor colour = j == current ? okabe_ito(OkabeIto::Vermillion)
                          : j < current ? state_absorbed_color(style)
                                        : state_pending_color(style);
    painter.fillRect(QRectF(strip.left() + static_cast<double>(j) * cell, strip.top(), cell, strip.height()), colour);
  }
  // Thin separators between cells, when they are wide enough to be seen.
  if (cell > 0.6 * t.line) {
    painter.setPen(QPen(style.background, kFrameLines * t.line));
    for (std::int64_t j = 1; j < c.length; ++j) {
      const double x = strip.left() + static_cast<double>(j) * cell;
      painter.drawLine(QPointF(x, strip.top()), QPointF(x, strip.bottom()));
    }
  }
  painter.restore();
  draw_frame(painter, strip, style, t.line);
  if (c.highlight >= 0) {
    painter.save();
    painter.setBrush(Qt::NoBrush);
    painter.setPen(QPen(style.foreground, kMarkLines * t.line));
    painter.drawRect(QRectF(strip.left() + static_cast<double>(c.highlight) * cell, strip.top(), cell, strip.height()));
    painter.restore();
  }
  // Under the strip: token texts when cells are wide, else indices.
  painter.save();
  painter.setPen(style.foreground);
  const QFontMetricsF fm(t.small, painter.device());
  painter.setFont(t.small);
  if (cell >= kTokenTextMinCellLines * t.line) {
    for (std::int64_t j = 0; j < c.length; ++j) {
      const QRectF box(strip.left() + static_cast<double>(j) * cell, strip.bottom() + 0.3 * t.gap, cell, t.line);
      painter.setFont(j == current ? t.small_bold : t.small);
      painter.drawText(box, Qt::AlignHCenter | Qt::AlignTop, fm.elidedText(c.tokens.value(static_cast<int>(j)), Qt::ElideRight, cell));
    }
  } else {
    const std::int64_t stride = tick_stride(cell, fm.horizontalAdvance(QString::number(c.length - 1)), t.line);
    for (std::int64_t j = 0; j < c.length; j += stride) {
      const double x = strip.left() + (static_cast<double>(j) + 0.5) * cell;
      const QString label = QString::number(j);
      const double w = fm.horizontalAdvance(label);
      painter.drawText(QRectF(x - w, strip.bottom() + 0.3 * t.gap, 2 * w, t.line), Qt::AlignHCenter | Qt::AlignTop, label);
    }
  }
  painter.restore();
}

void draw_error(QPainter& painter, const StateFigureLayout& layout, const Content& c, std::int64_t step, const FigureText& t,
                const FigureStyle& style) {
  const QRectF& plot = layout.error_plot;
  if (plot.isEmpty()) return;
  const Tensor& e = c.states->retrieval_error;  // [H, T]
  const float* err = e.data() + static_cast<std::int64_t>(c.head) * c.snapshots;
  double top = 0;
  for (std::int64_t s = 0; s < c.snapshots; ++s)
    if (std::isfinite(err[s])) top = std::max(top, static_cast<double>(err[s]));
  const PlotAxis x = nice_linear_axis(0, static_cast<double>(std::max<std::int64_t>(1, c.length - 1)), 5);
  const PlotAxis y = nice_linear_axis(0, top > 0 ? top : 1.0, 4);
  draw_caption_above(painter, plot, caption_room(layout.panels, plot, kPanelGapLines * t.line), t, style.foreground,
                     QStringLiteral("Retrieval error of stored pairs ‖W k_j − v_j‖/‖v_j‖"));
  painter.save();
  QColor grid = style.foreground;
  grid.setAlphaF(0.15f);
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  for (double tick : y.ticks) {
    const double py = plot.bottom() - y.fraction(tick) * plot.height();
    painter.setPen(QPen(grid, 0));
    painter.drawLine(QPointF(plot.left(), py), QPointF(plot.right(), py));
    painter.setPen(style.foreground);
    const QString label = number_text(tick);
    painter.drawText(QRectF(plot.left() - t.gap - fm.horizontalAdvance(label), py - t.line / 2, fm.horizontalAdvance(label), t.line),
                     Qt::AlignRight | Qt::AlignVCenter, label);
  }
  for (double tick : x.ticks) {
    const double px = plot.left() + x.fraction(tick) * plot.width();
    painter.setPen(style.foreground);
    const QString label = QString::number(tick, 'g', 6);
    const double w = fm.horizontalAdvance(label);
    painter.drawText(QRectF(px - w, plot.bottom() + 0.5 * t.gap, 2 * w, t.line), Qt::AlignHCenter | Qt::AlignTop, label);
  }
  painter.drawText(QRectF(plot.left(), plot.bottom() + 0.5 * t.gap + t.line, plot.width(), t.line), Qt::AlignHCenter | Qt::AlignTop,
                   QStringLiteral("token"));
  painter.restore();
  draw_frame(painter, plot, style, t.line);

  // The curve through the evaluated snapshots (NaN: not evaluated, skipped).
  painter.save();
  painter.setClipRect(plot.adjusted(-t.line, -t.line, t.line, t.line));
  QPainterPath path;
  bool started = false;
  std::vector<QPointF> marks;
  for (std::int64_t s = 0; s < c.snapshots; ++s) {
    if (!std::isfinite(err[s])) continue;
    const QPointF p = plot_point(plot, x, y, static_cast<double>(c.states->steps[static_cast<std::size_t>(s)]), err[s]);
    if (started) path.lineTo(p);
    else path.moveTo(p);
    started = true;
    marks.push_back(p);
  }
  painter.setPen(QPen(state_error_color(), 0.12 * t.line));
  painter.setBrush(Qt::NoBrush);
  painter.drawPath(path);
  painter.setBrush(state_error_color());
  painter.setPen(Qt::NoPen);
  for (const QPointF& m : marks) painter.drawEllipse(m, 0.16 * t.line, 0.16 * t.line);
  // The current step.
  const double cx = plot.left() + x.fraction(static_cast<double>(c.states->steps[static_cast<std::size_t>(step)])) * plot.width();
  QPen mark(style.foreground, 0.08 * t.line);
  mark.setStyle(Qt::DashLine);
  painter.setPen(mark);
  painter.drawLine(QPointF(cx, plot.top()), QPointF(cx, plot.bottom()));
  painter.restore();
}

HeatmapData make_heatmap(const Content& c, int step, ColormapId colormap) {
  HeatmapData h;
  const std::int64_t t = step;
  const std::int64_t token = c.states->steps[static_cast<std::size_t>(t)];
  const bool keys = state_rows_are_keys(*c.states);
  h.title = QStringLiteral("State after token #%1 “%2” · head %3").arg(token).arg(c.tokens.value(static_cast<int>(token))).arg(c.head);
  h.rows = static_cast<int>(c.rows);
  h.cols = static_cast<int>(c.cols);
  const float* s = state_at(c, t);
  h.values.assign(s, s + c.rows * c.cols);
  for (std::int64_t r = 0; r < c.rows; ++r) h.row_labels << QString::number(r);
  for (std::int64_t k = 0; k < c.cols; ++k) h.col_labels << QString::number(k);
  const QString key_axis = QString::fromStdString(c.states->key_axis), value_axis = QString::fromStdString(c.states->value_axis);
  h.row_axis = keys ? key_axis : value_axis;
  h.col_axis = keys ? value_axis : key_axis;
  h.value_label = QStringLiteral("state entry");
  // One range for every step of the head, so colours compare across steps.
  float lo = 0.0f, hi = 0.0f;
  const float* all = state_at(c, 0);
  for (std::int64_t i = 0; i < c.snapshots * c.rows * c.cols; ++i) {
    if (!std::isfinite(all[i])) continue;
    lo = std::min(lo, all[i]);
    hi = std::max(hi, all[i]);
  }
  if (lo < 0.0f) {
    const float m = std::max(-lo, hi);
    h.vmin = -m;
    h.vmax = m;
    h.colormap = ColormapId::Coolwarm;
  } else {
    h.vmin = 0.0f;
    h.vmax = hi > 0.0f ? hi : 1.0f;
    h.colormap = colormap == ColormapId::Coolwarm ? ColormapId::Viridis : colormap;
  }
  return h;
}

}  // namespace

QPointF StateFigureLayout::token_centre(std::int64_t token) const {
  const double cell = tokens.width() / static_cast<double>(std::max<std::int64_t>(1, length));
  return QPointF(tokens.left() + (static_cast<double>(token) + 0.5) * cell, tokens.center().y());
}

int StateFigureLayout::token_at(const QPointF& pos) const {
  if (length <= 0 || !tokens.contains(pos)) return -1;
  return static_cast<int>(std::clamp<std::int64_t>(
      static_cast<std::int64_t>((pos.x() - tokens.left()) / tokens.width() * static_cast<double>(length)), 0, length - 1));
}

const RecurrentTraceExtras* recurrent_extras(const ViewContext& context) { return layer_extras<RecurrentTraceExtras>(context); }

bool result_has_recurrent_state(const PlaygroundResult& result) {
  // Non-causal performer keeps its prefix states in the trace too, but its output never reads
  // them: the streaming view is for its causal (recurrent) form only.
  if (result.layers.empty() || (result.variant == "performer" && !result.causal)) return false;
  const auto* extras = dynamic_cast<const RecurrentTraceExtras*>(result.layers.front().extras.get());
  return extras && extras->recurrent().states.rank() == 4 && !extras->recurrent().steps.empty();
}

int resolve_state_step(const RecurrentStates& states, int step) {
  const auto T = static_cast<int>(states.steps.size());
  if (T == 0) return 0;
  return step < 0 || step >= T ? T - 1 : step;
}

bool state_rows_are_keys(const RecurrentStates& states) { return states.rows_are_keys; }

HeatmapData state_heatmap(const ViewContext& context, int step) {
  const Content c = gather(context);
  return make_heatmap(c, resolve_state_step(*c.states, step), context.colormap);
}

QColor state_bar_color() { return okabe_ito(OkabeIto::Blue); }
QColor state_absorbed_color(const FigureStyle& style) { return mix(style.background, okabe_ito(OkabeIto::SkyBlue), 0.7); }
QColor state_pending_color(const FigureStyle& style) { return mix(style.background, style.foreground, 0.08); }
QColor state_error_color() { return okabe_ito(OkabeIto::ReddishPurple); }

QSizeF state_figure_size(const ViewContext& context, const FigureStyle& style) {
  const Content c = gather(context);
  const HeatmapData heat = make_heatmap(c, static_cast<int>(c.snapshots - 1), context.colormap);
  return natural_flow_size(
      style, kNaturalPanelLines, [&](const FigureText& t, const QPaintDevice* device) { return make_panels(c, heat, style, t, device); },
      spacing_for);
}

StateFigureLayout compute_state_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                       const QPaintDevice* device) {
  const Content c = gather(context);
  // The layout does not depend on the step: the heatmap's labels and range are the same at every step.
  return layout_content(c, make_heatmap(c, static_cast<int>(c.snapshots - 1), context.colormap), style, target, device);
}

void draw_state_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                       const StateFigureOptions& options) {
  const Content c = gather(context);
  const int step = resolve_state_step(*c.states, options.step);
  const HeatmapData heat = make_heatmap(c, step, context.colormap);
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const StateFigureLayout layout = layout_content(c, heat, style, target, painter.device());

  painter.setPen(style.foreground);
  draw_text_line(painter, layout.title, t.title,
                 QStringLiteral("Streaming state · %1 · layer %2 · head %3 · step %4 of %5")
                     .arg(QString::fromStdString(c.result->variant))
                     .arg(c.layer)
                     .arg(c.head)
                     .arg(step)
                     .arg(c.snapshots - 1),
                 Qt::AlignHCenter | Qt::AlignVCenter);
  if (!layout.state_panel.isEmpty()) draw_heatmap_figure(painter, layout.state_panel, heat, style);
  draw_normalizer(painter, layout, c, step, t, style);
  draw_tokens(painter, layout, c, step, t, style);
  draw_error(painter, layout, c, step, t, style);

  painter.setPen(style.foreground);
  draw_text_line(painter, layout.formula, t.bold, QString::fromStdString(c.states->state_formula));
  const bool keys = state_rows_are_keys(*c.states);
  QString summary = QStringLiteral("state %1 × %2: rows = %3, columns = %4 · %5 snapshots%6")
                        .arg(c.rows)
                        .arg(c.cols)
                        .arg(QString::fromStdString(keys ? c.states->key_axis : c.states->value_axis))
                        .arg(QString::fromStdString(keys ? c.states->value_axis : c.states->key_axis))
                        .arg(c.snapshots)
                        .arg(c.snapshots < c.length ? QStringLiteral(" of %1 tokens (evenly spaced)").arg(c.length)
                                                    : QString());
  if (c.has_error) {
    const float e = c.states->retrieval_error.at(c.head, step);
    summary += QStringLiteral(" · retrieval error here: %1").arg(std::isfinite(e) ? number_text(e) : QStringLiteral("not evaluated"));
  }
  draw_text_line(painter, layout.summary, t.label, summary);
}

PaintedFigure state_painted_figure(const ViewContext& context, const FigureStyle& style, const StateFigureOptions& options) {
  return PaintedFigure{state_figure_size(context, style),
                       QStringLiteral("AttnLab: streaming state, layer %1, head %2").arg(context.layer).arg(context.head),
                       QStringLiteral("the recurrent state after each token"), style.background,
                       [context, style, options](QPainter& painter, const QRectF& target) {
                         draw_state_figure(painter, target, context, style, options);
                       }};
}

void export_state_data(const ViewContext& context, const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix != QLatin1String("json") && suffix != QLatin1String("npy")) {
    throw ParamError(QStringLiteral("cannot export '%1' from view 'state': data formats are .json, .npy").arg(path).toStdString());
  }
  const Content c = gather(context);
  const RecurrentStates& s = *c.states;
  if (suffix == QLatin1String("npy")) {
    write_npy(QFile::encodeName(path).toStdString(),
              Tensor::from_data({c.snapshots, c.rows, c.cols}, state_at(c, 0), static_cast<std::size_t>(c.snapshots * c.rows * c.cols)));
    return;
  }
  const int step = resolve_state_step(s, static_cast<int>(view_options(view_spec("state"), context.options).get_int("step")));
  const bool keys = state_rows_are_keys(s);
  nlohmann::json j{{"kind", "state"},
                   {"variant", c.result->variant},
                   {"state_formula", s.state_formula},
                   {"key_axis", s.key_axis},
                   {"value_axis", s.value_axis},
                   {"rows_axis", keys ? s.key_axis : s.value_axis},
                   {"cols_axis", keys ? s.value_axis : s.key_axis},
                   {"state_shape", s.states.shape()},
                   {"steps", s.steps},
                   {"step", step}};
  if (c.has_normalizer) {
    nlohmann::json z = nlohmann::json::array();
    const std::int64_t n = s.normalizers.dim(2);
    for (std::int64_t t = 0; t < c.snapshots; ++t) {
      const float* p = s.normalizers.data() + (static_cast<std::int64_t>(c.head) * c.snapshots + t) * n;
      z.push_back(std::vector<float>(p, p + n));
    }
    j["normalizers"] = std::move(z);
  } else {
    j["normalizers"] = nullptr;
  }
  if (s.retrieval_error.rank() == 2) {
    nlohmann::json e = nlohmann::json::array();
    for (std::int64_t t = 0; t < c.snapshots; ++t) {
      const float v = s.retrieval_error.at(c.head, t);
      e.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
    }
    j["retrieval_error"] = std::move(e);
  } else {
    j["retrieval_error"] = nullptr;
  }
  write_bytes_atomically(path, view_json_bytes(std::move(j), c.layer, c.head, c.tokens));
}

}  // namespace attnlab
