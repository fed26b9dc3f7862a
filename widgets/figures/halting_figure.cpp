#include "figures/halting_figure.h"

#include <QFontMetricsF>
#include <QPainterPath>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "figures/plot_frame.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights, so the figure scales with its font.
constexpr double kNaturalWidthLines = 70;  // about the aspect of the view tab (1100 × 700 px)
constexpr double kNaturalHeightLines = 44;
constexpr double kMaxCellLines = 3.5;  // widest step column
constexpr double kStripLines = 4.5;    // the remainder bars
constexpr double kGridShare = 0.55;    // most of the width the map may take
constexpr double kPanelGapLines = 2.0;
constexpr double kPlotGapLines = 1.2;
constexpr double kMinPlotLines = 9;  // a narrower plot column is left out
constexpr double kCurveLines = 0.12;
constexpr double kFaintLines = 0.06;
constexpr double kMarkerLines = 0.28;
constexpr double kStopTickLines = 0.3;
constexpr double kMarkLines = 0.3;     // the bar at the right edge of a token's last cell
constexpr double kOutlineLines = 0.1;  // its outline on tall rows
constexpr double kCurveShare = 0.58;   // of the plot column's height, for the hp curve

struct Content {
  const PlaygroundResult* result = nullptr;
  const HaltingTrace* trace = nullptr;
  int layer = -1;
  int highlight = -1;
  int tokens = 0;
  int steps_run = 0;
  TokenGridData grid;
  QStringList labels;
  QString layer_type;
};

const HaltingTrace& checked_trace(const ViewContext& context) {
  return checked_model_layer_extra<HaltingTrace>(context, "halting", "halting",
                                                 "no layer of this result carries a halting trace");
}

Content gather(const ViewContext& context) {
  Content c;
  c.trace = &checked_trace(context);
  c.result = context.result.get();
  c.layer = halting_layer(context);
  c.tokens = static_cast<int>(c.trace->steps.size());
  c.steps_run = static_cast<int>(c.trace->steps_run);
  c.highlight = highlighted_token(context, c.tokens);
  c.grid = halting_grid(context);
  c.labels = token_labels(*c.result);
  c.layer_type = layer_type_name(*c.result, c.layer, QStringLiteral("universal"));
  return c;
}

// The plots' axes: steps 0..T for the hp curve (hp = 0 before the first step), 0..1 for hp.
PlotAxis step_axis(const Content& c) { return PlotAxis{0.0, static_cast<double>(std::max(1, c.steps_run)), false, {}}; }
PlotAxis hp_axis() { return PlotAxis{0.0, 1.0, false, {0.0, 0.25, 0.5, 0.75, 1.0}}; }
PlotAxis count_x_axis(const Content& c) { return PlotAxis{0.5, std::max(1, c.steps_run) + 0.5, false, {}}; }

// Tokens whose last step is `step` (1-based): halted there, and stopped there by max_steps.
struct StepCounts {
  std::vector<int> halted, stopped;
  int largest = 0;
};

StepCounts step_counts(const Content& c) {
  StepCounts n;
  const auto size = static_cast<std::size_t>(std::max(1, c.steps_run) + 1);
  n.halted.assign(size, 0);
  n.stopped.assign(size, 0);
  for (int i = 0; i < c.tokens; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const auto step =
        static_cast<std::size_t>(std::clamp<std::int32_t>(c.trace->steps[u], 0, static_cast<std::int32_t>(size - 1)));
    (c.trace->stopped_by_max[u] ? n.stopped : n.halted)[step] += 1;
  }
  for (std::size_t s = 0; s < size; ++s) n.largest = std::max(n.largest, n.halted[s] + n.stopped[s]);
  return n;
}

PlotAxis count_y_axis(const Content& c) { return nice_linear_axis(0.0, std::max(1, step_counts(c).largest), 4); }

// Whole steps from `first` to T, thinned so that labels of the widest step number do not touch.
std::vector<AxisTick> step_ticks(const Content& c, int first, double plot_width, double pitch) {
  const int last = std::max(1, c.steps_run);
  const int stride = std::max(1, static_cast<int>(std::ceil(pitch / std::max(plot_width / last, 1e-9))));
  std::vector<AxisTick> ticks;
  for (int s = first; s <= last; s += stride) ticks.push_back({static_cast<double>(s), QString::number(s)});
  return ticks;
}

HaltingFigureLayout layout_content(const Content& c, const FigureStyle& style, const QRectF& target, const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  const TitledFrame frame = titled_frame(t, target);
  const QRectF& body = frame.body;
  HaltingFigureLayout layout;
  layout.figure = target;
  layout.title = frame.title;
  layout.legend = frame.legend;
  layout.summary = frame.summary;
  const PlotFrameRoom plot_room = plot_frame_room(t, device, {QStringLiteral("0.75"), QString::number(count_y_axis(c).hi)});
  const GridColumnLayout split =
      layout_grid_and_column(c.grid, t, device, body,
                             GridColumnSpec{.strip_width = kStripLines * t.line,
                                            .max_cell_w = kMaxCellLines * t.line,
                                            .max_share = kGridShare,
                                            .gap = kPanelGapLines * t.line,
                                            .plot_left = plot_room.left,
                                            .min_plot_w = kMinPlotLines * t.line});
  layout.grid = split.grid;
  if (split.column) {
    const double x = split.column_left + plot_room.left;
    const double w = split.column_right - x;
    const double caption = t.line + t.gap;
    const double avail = body.height() - 2 * caption - 2 * plot_room.bottom - kPlotGapLines * t.line;
    if (w > 0 && avail > 4 * t.line) {
      const double curve_h = kCurveShare * avail;
      layout.curve_plot = QRectF(x, body.top() + caption, w, curve_h);
      layout.count_plot =
          QRectF(x, layout.curve_plot.bottom() + plot_room.bottom + kPlotGapLines * t.line + caption, w, avail - curve_h);
    }
  }
  return layout;
}

// ---- drawing ---------------------------------------------------------------------------------

// A bar along the right edge of each token's last cell, where the map turns blank; on rows taller
// than a line the whole cell is outlined as well.
void draw_marks(QPainter& painter, const HaltingFigureLayout& layout, const Content& c, const FigureText& t,
                const FigureStyle& style) {
  painter.save();
  const bool outline = layout.grid.cell_h > t.line;
  painter.setRenderHint(QPainter::Antialiasing, outline);
  for (int i = 0; i < c.tokens; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const int last = c.trace->steps[u] - 1;
    if (last < 0 || last >= c.grid.cols) continue;
    const QColor colour = c.trace->stopped_by_max[u] ? halting_stopped_color() : halting_mark_color(style);
    painter.fillRect(halting_mark_rect(layout.grid, i, last, t.line), colour);
    if (outline) {
      const double pen = kOutlineLines * t.line;
      painter.setPen(QPen(colour, pen, Qt::SolidLine, Qt::SquareCap, Qt::MiterJoin));
      painter.setBrush(Qt::NoBrush);
      painter.drawRect(layout.grid.cell_rect(i, last).adjusted(0.5 * pen, 0.5 * pen, -0.5 * pen, -0.5 * pen));
    }
  }
  painter.restore();
}

void draw_remainders(QPainter& painter, const HaltingFigureLayout& layout, const Content& c, const FigureText& t,
                     const FigureStyle& style) {
  const QRectF& strip = layout.grid.strip;
  if (strip.isEmpty()) return;
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  for (int i = 0; i < c.tokens; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const double top = strip.top() + i * layout.grid.cell_h;
    const double h = layout.grid.cell_h > t.line ? std::min(0.7 * layout.grid.cell_h, 1.2 * t.line) : layout.grid.cell_h;
    const double y = top + 0.5 * (layout.grid.cell_h - h);
    if (c.trace->stopped_by_max[u]) {
      painter.fillRect(QRectF(strip.left(), y, kStopTickLines * t.line, h), halting_stopped_color());
    } else {
      const double r = std::clamp(c.trace->remainder[u], 0.0, 1.0);
      painter.fillRect(QRectF(strip.left(), y, r * strip.width(), h), halting_count_color());
    }
  }
  painter.setRenderHint(QPainter::Antialiasing, true);
  QColor faint = style.foreground;
  faint.setAlphaF(0.3f);
  painter.setPen(QPen(faint, 0.05 * t.line, Qt::DashLine));
  painter.drawLine(strip.topRight(), strip.bottomRight());
  painter.drawLine(QPointF(strip.center().x(), strip.top()), QPointF(strip.center().x(), strip.bottom()));
  painter.setPen(QPen(style.foreground, 0.05 * t.line));
  painter.drawLine(strip.topLeft(), strip.bottomLeft());
  painter.setFont(t.label);
  const QRectF labels(strip.left() - t.line, layout.grid.col_labels.top(), strip.width() + 2 * t.line, t.line);
  painter.drawText(labels, Qt::AlignLeft | Qt::AlignVCenter, QStringLiteral("  0"));
  painter.drawText(labels, Qt::AlignRight | Qt::AlignVCenter, QStringLiteral("1  "));
  painter.drawText(labels, Qt::AlignHCenter | Qt::AlignVCenter, QStringLiteral("R"));
  painter.restore();
}

void draw_marker(QPainter& painter, const QPointF& at, double radius, const QColor& fill, const QColor& edge, double line) {
  painter.setPen(QPen(edge, 0.05 * line));
  painter.setBrush(fill);
  painter.drawEllipse(at, radius, radius);
}

void draw_stop_marker(QPainter& painter, const QPointF& at, double radius, const QColor& edge, double line) {
  painter.setPen(QPen(edge, 0.05 * line));
  painter.setBrush(halting_stopped_color());
  painter.drawRect(QRectF(at.x() - radius, at.y() - radius, 2 * radius, 2 * radius));
}

QPainterPath token_curve(const HaltingFigureLayout& layout, const Content& c, const PlotAxis& x, const PlotAxis& y, int token) {
  const auto u = static_cast<std::size_t>(token);
  QPainterPath path;
  path.moveTo(plot_point(layout.curve_plot, x, y, 0.0, 0.0));
  const int n = std::min<int>(c.trace->steps[u], static_cast<int>(c.trace->cumulative[u].size()));
  for (int s = 0; s < n; ++s)
    path.lineTo(plot_point(layout.curve_plot, x, y, s + 1.0, c.trace->cumulative[u][static_cast<std::size_t>(s)]));
  return path;
}

void draw_curve_plot(QPainter& painter, const HaltingFigureLayout& layout, const Content& c, const FigureText& t,
                     const FigureStyle& style) {
  const QRectF& plot = layout.curve_plot;
  if (plot.isEmpty()) return;
  const PlotAxis x = step_axis(c), y = hp_axis();
  const QFontMetricsF fm(t.label, painter.device());
  PlotFrame frame{x,
                  y,
                  step_ticks(c, 0, plot.width(), fm.horizontalAdvance(QString::number(c.steps_run)) + t.line),
                  axis_ticks(y),
                  QStringLiteral("step"),
                  QStringLiteral("cumulative halting hp"),
                  true,
                  true};
  draw_plot_frame(painter, plot, frame, t, style);
  QString caption = QStringLiteral("Cumulative halting hp");
  if (c.highlight >= 0) {
    const auto u = static_cast<std::size_t>(c.highlight);
    caption += QStringLiteral(" · token #%1 “%2”: %3 steps, %4")
                   .arg(c.highlight)
                   .arg(c.labels.value(c.highlight))
                   .arg(c.trace->steps[u])
                   .arg(c.trace->stopped_by_max[u] ? QStringLiteral("stopped by max_steps")
                                                   : QStringLiteral("R = %1").arg(c.trace->remainder[u], 0, 'g', 3));
  } else {
    caption += QStringLiteral(" of every token");
  }
  draw_caption_above(painter, plot, plot.width(), t, style.foreground, caption);

  painter.save();
  painter.setClipRect(plot.adjusted(-t.line, -t.line, t.line, t.line));
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  QColor faint = style.foreground;
  faint.setAlphaF(static_cast<float>(std::clamp(1.2 / std::sqrt(std::max(1, c.tokens)), 0.05, 0.35)));
  painter.setPen(QPen(faint, kFaintLines * t.line));
  for (int i = 0; i < c.tokens; ++i)
    if (i != c.highlight) painter.drawPath(token_curve(layout, c, x, y, i));
  // The threshold 1 − ε, labelled below its line on the right.
  const double threshold = 1.0 - c.trace->epsilon;
  const double ty = plot.bottom() - y.fraction(threshold) * plot.height();
  painter.setPen(QPen(style.foreground, kCurveLines * t.line, Qt::DashLine));
  painter.drawLine(QPointF(plot.left(), ty), QPointF(plot.right(), ty));
  painter.setFont(t.small);
  painter.setPen(style.foreground);
  painter.drawText(QRectF(plot.left(), ty + 0.15 * t.line, plot.width() - t.gap, t.small_line), Qt::AlignRight | Qt::AlignVCenter,
                   QStringLiteral("threshold 1 − ε = %1").arg(threshold, 0, 'g', 4));
  if (c.highlight >= 0) {
    const auto u = static_cast<std::size_t>(c.highlight);
    painter.setPen(QPen(halting_curve_color(), kCurveLines * t.line));
    painter.setBrush(Qt::NoBrush);
    painter.drawPath(token_curve(layout, c, x, y, c.highlight));
    const int n = std::min<int>(c.trace->steps[u], static_cast<int>(c.trace->cumulative[u].size()));
    for (int s = 0; s < n; ++s) {
      const QPointF at = plot_point(plot, x, y, s + 1.0, c.trace->cumulative[u][static_cast<std::size_t>(s)]);
      if (s + 1 < n) {
        draw_marker(painter, at, kMarkerLines * t.line, halting_curve_color(), style.background, t.line);
      } else if (c.trace->stopped_by_max[u]) {
        draw_stop_marker(painter, at, 1.4 * kMarkerLines * t.line, style.background, t.line);
      } else {
        draw_marker(painter, at, 1.4 * kMarkerLines * t.line, halting_curve_color(), style.foreground, t.line);
      }
    }
  }
  painter.restore();
}

void draw_count_plot(QPainter& painter, const HaltingFigureLayout& layout, const Content& c, const FigureText& t,
                     const FigureStyle& style) {
  const QRectF& plot = layout.count_plot;
  if (plot.isEmpty()) return;
  const PlotAxis x = count_x_axis(c), y = count_y_axis(c);
  const QFontMetricsF fm(t.label, painter.device());
  PlotFrame frame{x,
                  y,
                  step_ticks(c, 1, plot.width(), fm.horizontalAdvance(QString::number(c.steps_run)) + t.line),
                  axis_ticks(y),
                  QStringLiteral("last step"),
                  QStringLiteral("tokens"),
                  false,
                  true};
  frame.y_ticks = thinned_ticks(frame.y_ticks, plot.height(), 1.2 * t.line);
  draw_plot_frame(painter, plot, frame, t, style);
  draw_caption_above(painter, plot, plot.width(), t, style.foreground, QStringLiteral("Tokens by their last step"));
  const StepCounts n = step_counts(c);
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  const double half = 0.3 * plot.width() / std::max(1, c.steps_run);
  for (int s = 1; s <= std::max(1, c.steps_run); ++s) {
    const auto u = static_cast<std::size_t>(s);
    const double cx = plot_point(plot, x, y, s, 0).x();
    const double base = plot.bottom();
    const double halted_top = plot_point(plot, x, y, s, n.halted[u]).y();
    const double stopped_top = plot_point(plot, x, y, s, n.halted[u] + n.stopped[u]).y();
    if (n.halted[u] > 0) painter.fillRect(QRectF(cx - half, halted_top, 2 * half, base - halted_top), halting_count_color());
    if (n.stopped[u] > 0)
      painter.fillRect(QRectF(cx - half, stopped_top, 2 * half, halted_top - stopped_top), halting_stopped_color());
  }
  painter.restore();
}

void draw_legend(QPainter& painter, const HaltingFigureLayout& layout, const Content& c, const FigureText& t,
                 const FigureStyle& style) {
  painter.save();
  const QRectF& row = layout.legend;
  const QColor mid = c.grid.color(0.6f);
  const auto cell_with_mark = [&](const QColor& mark) {
    return [&painter, mid, mark](const QRectF& r) {
      painter.fillRect(r, mid);
      painter.fillRect(QRectF(r.right() - 0.25 * r.width(), r.top(), 0.25 * r.width(), r.height()), mark);
    };
  };
  double x = row.left();
  x = draw_legend_entry(painter, x, row, QStringLiteral("last step: halted (hp + p > 1 − ε)"), t, style,
                        cell_with_mark(halting_mark_color(style)));
  x = draw_legend_entry(painter, x, row, QStringLiteral("stopped by max_steps (no remainder)"), t, style,
                        cell_with_mark(halting_stopped_color()));
  x = draw_legend_entry(painter, x, row, QStringLiteral("blank: after the last step"), t, style, [&](const QRectF& r) {
    painter.setPen(QPen(style.foreground, 0.05 * t.line));
    painter.setBrush(Qt::NoBrush);
    painter.drawRect(r);
  });
  x = draw_legend_entry(painter, x, row, QStringLiteral("R: remainder"), t, style, [&](const QRectF& r) {
    painter.fillRect(r.adjusted(0, 0.2 * r.height(), -0.3 * r.width(), -0.2 * r.height()), halting_count_color());
  });
  draw_legend_entry(painter, x, row, QStringLiteral("highlighted token's hp"), t, style, [&](const QRectF& r) {
    painter.setPen(QPen(halting_curve_color(), kCurveLines * t.line));
    painter.drawLine(QPointF(r.left(), r.center().y()), QPointF(r.right(), r.center().y()));
  });
  painter.restore();
}

QString summary_text(const Content& c) {
  const HaltingTrace& h = *c.trace;
  double mean_steps = 0;
  int stopped = 0;
  for (int i = 0; i < c.tokens; ++i) {
    mean_steps += h.steps[static_cast<std::size_t>(i)];
    stopped += h.stopped_by_max[static_cast<std::size_t>(i)] ? 1 : 0;
  }
  mean_steps /= std::max(1, c.tokens);
  return QStringLiteral(
             "1 − ε = %1 (ε = %2) · max steps %3 · ran %4 · mean %5 steps per token · stopped by "
             "max_steps: %6 of %7 · ponder cost λ·mean(n + R) = %8")
      .arg(1.0 - h.epsilon, 0, 'g', 4)
      .arg(h.epsilon, 0, 'g', 3)
      .arg(h.max_steps)
      .arg(h.steps_run)
      .arg(mean_steps, 0, 'f', 2)
      .arg(stopped)
      .arg(c.tokens)
      .arg(h.ponder_cost, 0, 'g', 4);
}

void append_double(QByteArray& out, double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, static_cast<qsizetype>(result.ptr - buffer));
}

}  // namespace

int HaltingFigureLayout::token_at(const QPointF& pos) const { return grid.row_at(pos); }

int halting_layer(const ViewContext& context) { return model_view_layer(context, "halting"); }

const HaltingTrace* halting_trace(const ViewContext& context) { return model_layer_extra<HaltingTrace>(context, "halting"); }

TokenGridData halting_grid(const ViewContext& context) {
  const HaltingTrace& h = checked_trace(context);
  TokenGridData data;
  data.rows = static_cast<int>(h.steps.size());
  data.cols = static_cast<int>(h.steps_run);
  data.values.assign(static_cast<std::size_t>(data.rows) * static_cast<std::size_t>(data.cols),
                     std::numeric_limits<float>::quiet_NaN());
  for (int i = 0; i < data.rows; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const int n = std::min<int>(h.steps[u], static_cast<int>(h.probabilities[u].size()));
    for (int s = 0; s < std::min(n, data.cols); ++s)
      data.values[u * static_cast<std::size_t>(data.cols) + static_cast<std::size_t>(s)] =
          static_cast<float>(h.probabilities[u][static_cast<std::size_t>(s)]);
  }
  data.vmin = 0.0f;
  data.vmax = 1.0f;
  data.colormap = context.colormap;
  data.row_labels = token_labels(*context.result);
  for (int s = 1; s <= data.cols; ++s) data.col_labels << QString::number(s);
  data.col_axis = QStringLiteral("step");
  data.value_label = QStringLiteral("halting probability p");
  return data;
}

QColor halting_stopped_color() { return okabe_ito(OkabeIto::Vermillion); }
QColor halting_curve_color() { return okabe_ito(OkabeIto::Orange); }
QColor halting_count_color() { return okabe_ito(OkabeIto::BluishGreen); }

QColor halting_mark_color(const FigureStyle& style) { return style.foreground; }

QRectF halting_mark_rect(const TokenGridLayout& grid, int token, int step_index, double line) {
  const QRectF cell = grid.cell_rect(token, step_index);
  const double w = std::min(kMarkLines * line, 0.4 * cell.width());
  return QRectF(cell.right() - w, cell.top(), w, cell.height());
}

QPointF halting_curve_point(const HaltingFigureLayout& layout, const ViewContext& context, double step, double hp) {
  return plot_point(layout.curve_plot, step_axis(gather(context)), hp_axis(), step, hp);
}

QPointF halting_remainder_end(const HaltingFigureLayout& layout, int token, double remainder) {
  const QRectF& strip = layout.grid.strip;
  return QPointF(strip.left() + std::clamp(remainder, 0.0, 1.0) * strip.width(),
                 strip.top() + (token + 0.5) * layout.grid.cell_h);
}

QPointF halting_count_point(const HaltingFigureLayout& layout, const ViewContext& context, int step, int count) {
  const Content c = gather(context);
  return plot_point(layout.count_plot, count_x_axis(c), count_y_axis(c), step, count);
}

QSizeF halting_figure_size(const ViewContext& context, const FigureStyle& style) {
  checked_trace(context);
  return natural_size_in_lines(style, kNaturalWidthLines, kNaturalHeightLines);
}

HaltingFigureLayout compute_halting_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device) {
  return layout_content(gather(context), style, target, device);
}

void draw_halting_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style) {
  const Content c = gather(context);
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const HaltingFigureLayout layout = layout_content(c, style, target, painter.device());

  draw_centred_title(painter, layout.title, t, style, QStringLiteral("Halting map · layer %1 (%2)").arg(c.layer).arg(c.layer_type));

  draw_token_grid(painter, layout.grid, c.grid, t, style, c.highlight);
  draw_marks(painter, layout, c, t, style);
  draw_remainders(painter, layout, c, t, style);
  draw_token_grid_caption(painter, layout.grid, t, style, QStringLiteral("Halting probability p"));
  draw_curve_plot(painter, layout, c, t, style);
  draw_count_plot(painter, layout, c, t, style);
  draw_legend(painter, layout, c, t, style);
  draw_summary_line(painter, layout.summary, t, style, summary_text(c));
}

PaintedFigure halting_painted_figure(const ViewContext& context, const FigureStyle& style) {
  return view_painted_figure(halting_figure_size(context, style),
                             QStringLiteral("AttnLab: halting map, layer %1").arg(halting_layer(context)),
                             QStringLiteral("ACT halting probabilities per token and step, remainders, cumulative halting"),
                             context, style, draw_halting_figure);
}

void export_halting_data(const ViewContext& context, const QString& path) {
  const Content c = gather(context);
  const HaltingTrace& h = *c.trace;
  if (view_data_format("halting", path, {QStringLiteral("csv"), QStringLiteral("json")}) == QLatin1String("json")) {
    nlohmann::json j = h.to_json();
    j["layer_type"] = c.layer_type.toStdString();
    write_view_json(path, std::move(j), c.layer, -1, c.labels);
  } else {
    QByteArray out = "token_index,token,step,probability,update_weight,cumulative,steps,remainder,weights_sum,stopped_by_max\r\n";
    for (int i = 0; i < c.tokens; ++i) {
      const auto u = static_cast<std::size_t>(i);
      QByteArray tail = ",";
      tail += QByteArray::number(h.steps[u]) + ',';
      append_double(tail, h.remainder[u]);
      tail += ',';
      append_double(tail, h.weights_sum[u]);
      tail += h.stopped_by_max[u] ? ",true\r\n" : ",false\r\n";
      const QByteArray head = QByteArray::number(i) + ',' + csv_field(c.labels.value(i)) + ',';
      for (std::size_t s = 0; s < h.probabilities[u].size(); ++s) {
        out += head + QByteArray::number(static_cast<qulonglong>(s + 1)) + ',';
        append_double(out, h.probabilities[u][s]);
        out += ',';
        append_double(out, h.update_weights[u][s]);
        out += ',';
        append_double(out, h.cumulative[u][s]);
        out += tail;
      }
    }
    write_bytes_atomically(path, out);
  }
}

}  // namespace attnlab
