#include "figures/experts_figure.h"

#include <QFontMetricsF>
#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "figures/plot_frame.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights.
constexpr double kNaturalWidthLines = 70;  // about the aspect of the view tab (1100 × 700 px)
constexpr double kNaturalHeightLines = 44;
constexpr double kMaxCellLines = 3.0;  // widest expert column
constexpr double kStripLines = 1.4;    // the dropped-token strip
constexpr double kGridShare = 0.55;
constexpr double kPanelGapLines = 2.0;
constexpr double kPlotGapLines = 1.4;
constexpr double kMinPlotLines = 9;
constexpr double kListShare = 0.45;  // most of the right column's height the dropped lists may take
constexpr double kBandAlpha = 0.3;   // the dropped tokens' row band

struct Content {
  const PlaygroundResult* result = nullptr;
  const ExpertsTrace* trace = nullptr;
  int layer = -1;
  int highlight = -1;
  int tokens = 0;
  int experts = 0;
  TokenGridData grid;
  QStringList labels;
  QString layer_type;
  std::vector<int> partial;                  // tokens that kept a slot but lost another
  QStringList dropped_items, partial_items;  // "#3 “cat”"
};

const ExpertsTrace& checked_trace(const ViewContext& context) {
  return checked_model_layer_extra<ExpertsTrace>(context, "experts", "experts",
                                                 "no layer of this result carries an experts trace");
}

bool slot_dropped(const ExpertsTrace& e, std::size_t token, std::size_t slot) {
  return slot < e.routed[token].size() && e.routed[token][slot] >= 0 && e.experts[token][slot] < 0;
}

Content gather(const ViewContext& context) {
  Content c;
  c.trace = &checked_trace(context);
  c.result = context.result.get();
  c.layer = experts_layer(context);
  c.tokens = static_cast<int>(c.trace->experts.size());
  c.experts = static_cast<int>(c.trace->load.size());
  c.highlight = highlighted_token(context, c.tokens);
  c.grid = experts_grid(context);
  c.labels = token_labels(*c.result);
  c.layer_type = layer_type_name(*c.result, c.layer, QStringLiteral("transformer"));
  const ExpertsTrace& e = *c.trace;
  for (int i = 0; i < c.tokens; ++i) {
    const auto u = static_cast<std::size_t>(i);
    if (std::binary_search(e.dropped.begin(), e.dropped.end(), i)) continue;
    for (std::size_t s = 0; s < e.experts[u].size(); ++s)
      if (slot_dropped(e, u, s)) {
        c.partial.push_back(i);
        break;
      }
  }
  const auto item = [&](int token) { return QStringLiteral("#%1 “%2”").arg(token).arg(c.labels.value(token)); };
  for (std::int32_t i : e.dropped) c.dropped_items << item(i);
  for (int i : c.partial) c.partial_items << item(i);
  return c;
}

// `items` flowed into lines `width` wide, separated by ", ". With `max_lines` > 0 and items left
// over, the last line ends with "… and n more".
QStringList flow_items(const QFontMetricsF& fm, const QStringList& items, double width, int max_lines) {
  QStringList lines{QString()};
  int placed = 0;
  for (; placed < items.size(); ++placed) {
    const QString piece = lines.back().isEmpty() ? items[placed] : lines.back() + QStringLiteral(", ") + items[placed];
    if (lines.back().isEmpty() || fm.horizontalAdvance(piece) <= width) {
      lines.back() = fm.elidedText(piece, Qt::ElideRight, width);
      continue;
    }
    if (max_lines > 0 && lines.size() == static_cast<qsizetype>(max_lines)) break;
    lines.back() += QLatin1Char(',');
    lines << fm.elidedText(items[placed], Qt::ElideRight, width);
  }
  if (placed < items.size()) {
    const QString more = QStringLiteral(" … and %1 more").arg(items.size() - placed);
    QString& last = lines.back();
    while (!last.isEmpty() && fm.horizontalAdvance(last + more) > width) {
      const qsizetype cut = last.lastIndexOf(QStringLiteral(", "));
      last = cut > 0 ? last.left(cut) : QString();
    }
    last += more;
  }
  return lines;
}

// The height the dropped lists take at `width` when nothing is left out.
double dropped_list_height(const Content& c, const FigureText& t, const QPaintDevice* device, double width) {
  const QFontMetricsF fm(t.small, device);
  if (c.dropped_items.isEmpty() && c.partial_items.isEmpty()) return 2 * t.line;
  double h = std::max<qsizetype>(1, flow_items(fm, c.dropped_items, width, 0).size()) * t.small_line;
  if (!c.partial_items.isEmpty())
    h += t.gap + t.line + 0.5 * t.gap + flow_items(fm, c.partial_items, width, 0).size() * t.small_line;
  return h;
}

PlotAxis load_x_axis(const Content& c) { return PlotAxis{-0.5, std::max(1, c.experts) - 0.5, false, {}}; }

PlotAxis load_y_axis(const Content& c) {
  double top = static_cast<double>(c.trace->capacity);
  for (std::int32_t d : c.trace->demand) top = std::max(top, static_cast<double>(d));
  return nice_linear_axis(0.0, std::max(1.0, top), 4);
}

ExpertsFigureLayout layout_content(const Content& c, const FigureStyle& style, const QRectF& target, const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  const TitledFrame frame = titled_frame(t, target);
  const QRectF& body = frame.body;
  ExpertsFigureLayout layout;
  layout.figure = target;
  layout.title = frame.title;
  layout.legend = frame.legend;
  layout.summary = frame.summary;
  const PlotFrameRoom plot_room = plot_frame_room(t, device, {QString::number(load_y_axis(c).hi)});
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
    const double caption = t.line + t.gap;
    const double right = split.column_right;
    const double x = split.column_left;
    const double avail = body.height() - 2 * caption - plot_room.bottom - kPlotGapLines * t.line;
    if (right - x - plot_room.left > 0 && avail > 4 * t.line) {
      const double list_h = std::clamp(dropped_list_height(c, t, device, right - x), 2 * t.line, kListShare * avail);
      const double load_h = avail - list_h;
      layout.load_plot = QRectF(x + plot_room.left, body.top() + caption, right - x - plot_room.left, load_h);
      const double list_top = layout.load_plot.bottom() + plot_room.bottom + kPlotGapLines * t.line + caption;
      layout.dropped_list = QRectF(x, list_top, right - x, body.bottom() - list_top);
    }
  }
  return layout;
}

// ---- drawing ---------------------------------------------------------------------------------

void draw_bands(QPainter& painter, const ExpertsFigureLayout& layout, const Content& c) {
  QColor band = experts_dropped_color();
  band.setAlphaF(static_cast<float>(kBandAlpha));
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  for (std::int32_t i : c.trace->dropped) painter.fillRect(layout.grid.row_band(i), band);
  painter.restore();
}

void draw_strip(QPainter& painter, const ExpertsFigureLayout& layout, const Content& c, const FigureText& t,
                const FigureStyle& style) {
  const QRectF& strip = layout.grid.strip;
  if (strip.isEmpty()) return;
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  const auto row = [&](int i) {
    return QRectF(strip.left(), strip.top() + i * layout.grid.cell_h, strip.width(), layout.grid.cell_h);
  };
  for (std::int32_t i : c.trace->dropped) painter.fillRect(row(i), experts_dropped_color());
  for (int i : c.partial) painter.fillRect(row(i), experts_partial_color());
  painter.setRenderHint(QPainter::Antialiasing, true);
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, 0.05 * t.line));
  painter.drawRect(strip);
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  const QString text = QStringLiteral("drop");
  const double w = fm.horizontalAdvance(text) + t.gap;
  painter.drawText(QRectF(strip.center().x() - 0.5 * w, layout.grid.col_labels.top(), w, t.line), Qt::AlignCenter, text);
  painter.restore();
}

void draw_marks(QPainter& painter, const ExpertsFigureLayout& layout, const Content& c, const FigureText& t) {
  const ExpertsTrace& e = *c.trace;
  for (int i = 0; i < c.tokens; ++i) {
    const auto u = static_cast<std::size_t>(i);
    for (std::size_t s = 0; s < e.experts[u].size(); ++s) {
      const std::int32_t kept = e.experts[u][s];
      if (kept >= 0 && kept < c.experts) {
        draw_cell_mark(painter, layout.grid, i, kept, experts_mark_color(c.grid, i, kept), t, s == 0);
      } else if (slot_dropped(e, u, s) && e.routed[u][s] < c.experts) {
        draw_cell_mark(painter, layout.grid, i, e.routed[u][s], experts_dropped_color(), t, true);
      }
    }
  }
}

void draw_load_plot(QPainter& painter, const ExpertsFigureLayout& layout, const Content& c, const FigureText& t,
                    const FigureStyle& style) {
  const QRectF& plot = layout.load_plot;
  if (plot.isEmpty()) return;
  const ExpertsTrace& e = *c.trace;
  const PlotAxis x = load_x_axis(c), y = load_y_axis(c);
  const QFontMetricsF fm(t.label, painter.device());
  std::vector<AxisTick> x_ticks;
  const double pitch = fm.horizontalAdvance(QString::number(c.experts - 1)) + t.line;
  const int stride = std::max(1, static_cast<int>(std::ceil(pitch / std::max(plot.width() / std::max(1, c.experts), 1e-9))));
  for (int k = 0; k < c.experts; k += stride) x_ticks.push_back({static_cast<double>(k), QString::number(k)});
  PlotFrame frame{x,
                  y,
                  x_ticks,
                  thinned_ticks(axis_ticks(y), plot.height(), 1.2 * t.line),
                  QStringLiteral("expert"),
                  QStringLiteral("slots"),
                  false,
                  true};
  draw_plot_frame(painter, plot, frame, t, style);
  draw_caption_above(painter, plot, plot.width(), t, style.foreground,
                     QStringLiteral("Slots per expert · capacity C = %1 (dashed)").arg(e.capacity));

  painter.save();
  painter.setClipRect(plot);
  const double half = 0.35 * plot.width() / std::max(1, c.experts);
  QColor demand_fill = style.foreground;
  demand_fill.setAlphaF(0.1f);
  QColor overflow = experts_dropped_color();
  for (int k = 0; k < c.experts; ++k) {
    const auto u = static_cast<std::size_t>(k);
    const double cx = plot_point(plot, x, y, k, 0).x();
    const double base = plot.bottom();
    const double load_top = plot_point(plot, x, y, k, e.load[u]).y();
    const double demand_top = plot_point(plot, x, y, k, e.demand[u]).y();
    painter.setRenderHint(QPainter::Antialiasing, false);
    painter.setPen(Qt::NoPen);
    painter.fillRect(QRectF(cx - half, demand_top, 2 * half, base - demand_top), demand_fill);
    painter.fillRect(QRectF(cx - half, load_top, 2 * half, base - load_top), experts_load_color());
    if (e.demand[u] > e.load[u]) painter.fillRect(QRectF(cx - half, demand_top, 2 * half, load_top - demand_top), overflow);
    painter.setRenderHint(QPainter::Antialiasing, true);
    painter.setBrush(Qt::NoBrush);
    painter.setPen(QPen(style.foreground, 0.05 * t.line));
    if (e.demand[u] > 0) painter.drawRect(QRectF(cx - half, demand_top, 2 * half, base - demand_top));
  }
  // The capacity C (named in the caption).
  const double cy = plot_point(plot, x, y, 0, static_cast<double>(e.capacity)).y();
  painter.setPen(QPen(style.foreground, 0.12 * t.line, Qt::DashLine));
  painter.drawLine(QPointF(plot.left(), cy), QPointF(plot.right(), cy));
  painter.restore();
}

void draw_lines(QPainter& painter, const QRectF& rect, const QFont& font, const QStringList& lines, double line) {
  painter.setFont(font);
  for (qsizetype k = 0; k < lines.size(); ++k)
    painter.drawText(QRectF(rect.left(), rect.top() + static_cast<double>(k) * line, rect.width(), line),
                     Qt::AlignLeft | Qt::AlignVCenter, lines[k]);
}

void draw_dropped_list(QPainter& painter, const ExpertsFigureLayout& layout, const Content& c, const FigureText& t,
                       const FigureStyle& style) {
  const QRectF& box = layout.dropped_list;
  if (box.isEmpty()) return;
  const ExpertsTrace& e = *c.trace;
  painter.save();
  painter.setPen(style.foreground);
  if (c.dropped_items.isEmpty() && c.partial_items.isEmpty()) {
    draw_caption_above(painter, box, box.width(), t, style.foreground, QStringLiteral("Dropped tokens: none"));
    painter.setFont(t.label);
    painter.drawText(box, Qt::AlignLeft | Qt::AlignTop | Qt::TextWordWrap,
                     QStringLiteral("Every routed slot fit its expert's capacity C = %1.").arg(e.capacity));
    painter.restore();
    return;
  }
  draw_caption_above(painter, box, box.width(), t, experts_dropped_color(),
                     QStringLiteral("Dropped tokens (no expert): %1 of %2").arg(e.dropped.size()).arg(c.tokens));
  const QFontMetricsF fm(t.small, painter.device());
  const auto fit = [&](double height) { return std::max(1, static_cast<int>(std::floor(height / t.small_line + 1e-6))); };
  const double partial_head = c.partial_items.isEmpty() ? 0.0 : t.gap + t.line + 0.5 * t.gap;
  // The dropped tokens take what they need, leaving at least a line for the second list.
  const int dropped_lines = fit(box.height() - partial_head - (c.partial_items.isEmpty() ? 0.0 : t.small_line));
  const QStringList dropped = c.dropped_items.isEmpty() ? QStringList{QStringLiteral("none")}
                                                        : flow_items(fm, c.dropped_items, box.width(), dropped_lines);
  draw_lines(painter, box, t.small, dropped, t.small_line);
  if (!c.partial_items.isEmpty()) {
    const double top = box.top() + static_cast<double>(dropped.size()) * t.small_line + t.gap;
    painter.setPen(experts_partial_color());
    draw_text_line(painter, QRectF(box.left(), top, box.width(), t.line), t.bold,
                   QStringLiteral("Second choice dropped (first kept): %1").arg(c.partial.size()));
    painter.setPen(style.foreground);
    const QRectF rest(box.left(), top + t.line + 0.5 * t.gap, box.width(), box.bottom() - top - t.line - 0.5 * t.gap);
    draw_lines(painter, rest, t.small, flow_items(fm, c.partial_items, rest.width(), fit(rest.height())), t.small_line);
  }
  painter.restore();
}

void draw_legend(QPainter& painter, const ExpertsFigureLayout& layout, const Content& c, const FigureText& t,
                 const FigureStyle& style) {
  painter.save();
  const QRectF& row = layout.legend;
  const QColor mid = c.grid.color(0.5f * (c.grid.vmin + c.grid.vmax));
  const QColor contrast = Colormap::contrasting(mid.rgb());
  const auto cell_with_mark = [&painter, mid, &t](const QColor& mark, bool filled) {
    return [&painter, mid, mark, filled, &t](const QRectF& r) {
      painter.fillRect(r, mid);
      const double w = 0.44 * r.width();
      const QRectF m(r.center().x() - 0.5 * w, r.top() + 0.15 * r.height(), w, 0.7 * r.height());
      if (filled) {
        painter.fillRect(m, mark);
      } else {
        painter.setPen(QPen(mark, 0.12 * t.line));
        painter.setBrush(Qt::NoBrush);
        painter.drawRect(m.adjusted(0.06 * t.line, 0.06 * t.line, -0.06 * t.line, -0.06 * t.line));
      }
    };
  };
  double x = row.left();
  x = draw_legend_entry(painter, x, row, c.trace->top_k > 1 ? QStringLiteral("first choice") : QStringLiteral("chosen expert"), t,
                        style, cell_with_mark(contrast, true));
  if (c.trace->top_k > 1)
    x = draw_legend_entry(painter, x, row, QStringLiteral("second choice"), t, style, cell_with_mark(contrast, false));
  x = draw_legend_entry(painter, x, row, QStringLiteral("routed, dropped (over capacity)"), t, style,
                        cell_with_mark(experts_dropped_color(), true));
  x = draw_legend_entry(painter, x, row, QStringLiteral("token without expert"), t, style, [&](const QRectF& r) {
    QColor band = experts_dropped_color();
    band.setAlphaF(static_cast<float>(kBandAlpha));
    painter.fillRect(r, band);
    painter.fillRect(QRectF(r.right() - 0.3 * r.width(), r.top(), 0.3 * r.width(), r.height()), experts_dropped_color());
  });
  x = draw_legend_entry(painter, x, row, QStringLiteral("load (kept)"), t, style, [&](const QRectF& r) {
    painter.fillRect(r.adjusted(0.25 * r.width(), 0, -0.25 * r.width(), 0), experts_load_color());
  });
  draw_legend_entry(painter, x, row, QStringLiteral("demand (routed)"), t, style, [&](const QRectF& r) {
    painter.setPen(QPen(style.foreground, 0.05 * t.line));
    painter.setBrush(Qt::NoBrush);
    painter.drawRect(r.adjusted(0.25 * r.width(), 0, -0.25 * r.width(), 0));
  });
  painter.restore();
}

QString summary_text(const Content& c) {
  const ExpertsTrace& e = *c.trace;
  return QStringLiteral(
             "router aux loss %1 (weighted %2) · z loss %3 (weighted %4) · %5 · C = max(1, ⌊%6·%7/%8⌋) = %9 · "
             "%10 of %6 tokens dropped")
      .arg(e.aux_loss, 0, 'g', 4)
      .arg(e.aux_loss_weighted, 0, 'g', 4)
      .arg(e.z_loss, 0, 'g', 4)
      .arg(e.z_loss_weighted, 0, 'g', 4)
      .arg(e.top_k > 1 ? QStringLiteral("top-2 (GShard)") : QStringLiteral("top-1 (Switch)"))
      .arg(c.tokens)
      .arg(e.capacity_factor, 0, 'g', 3)
      .arg(c.experts)
      .arg(e.capacity)
      .arg(e.dropped.size());
}

}  // namespace

int ExpertsFigureLayout::token_at(const QPointF& pos) const { return grid.row_at(pos); }

int experts_layer(const ViewContext& context) { return model_view_layer(context, "experts"); }

const ExpertsTrace* experts_trace(const ViewContext& context) { return model_layer_extra<ExpertsTrace>(context, "experts"); }

TokenGridData experts_grid(const ViewContext& context) {
  const ExpertsTrace& e = checked_trace(context);
  const Tensor& p = e.router_probabilities;  // [L, E]
  TokenGridData data;
  data.rows = static_cast<int>(p.dim(0));
  data.cols = static_cast<int>(p.dim(1));
  data.values.assign(p.data(), p.data() + p.size());
  const float top = data.values.empty() ? 1.0f : *std::max_element(data.values.begin(), data.values.end());
  data.vmin = 0.0f;
  data.vmax = top > 0.0f ? top : 1.0f;
  data.colormap = context.colormap;
  data.row_labels = token_labels(*context.result);
  for (int k = 0; k < data.cols; ++k) data.col_labels << QString::number(k);
  data.col_axis = QStringLiteral("expert");
  data.value_label = QStringLiteral("router probability p");
  return data;
}

QColor experts_dropped_color() { return okabe_ito(OkabeIto::Vermillion); }
QColor experts_partial_color() { return okabe_ito(OkabeIto::Orange); }
QColor experts_load_color() { return okabe_ito(OkabeIto::Blue); }

QColor experts_mark_color(const TokenGridData& grid, int token, int expert) {
  return Colormap::contrasting(grid.color(grid.at(token, expert)).rgb());
}

QPointF experts_load_point(const ExpertsFigureLayout& layout, const ViewContext& context, double expert, double slot_count) {
  const Content c = gather(context);
  return plot_point(layout.load_plot, load_x_axis(c), load_y_axis(c), expert, slot_count);
}

QSizeF experts_figure_size(const ViewContext& context, const FigureStyle& style) {
  checked_trace(context);
  return natural_size_in_lines(style, kNaturalWidthLines, kNaturalHeightLines);
}

ExpertsFigureLayout compute_experts_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device) {
  return layout_content(gather(context), style, target, device);
}

void draw_experts_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style) {
  const Content c = gather(context);
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const ExpertsFigureLayout layout = layout_content(c, style, target, painter.device());

  draw_centred_title(painter, layout.title, t, style, QStringLiteral("Experts · layer %1 (%2)").arg(c.layer).arg(c.layer_type));

  draw_bands(painter, layout, c);
  draw_token_grid(painter, layout.grid, c.grid, t, style, c.highlight);
  draw_marks(painter, layout, c, t);
  draw_strip(painter, layout, c, t, style);
  draw_token_grid_caption(painter, layout.grid, t, style, QStringLiteral("Router probability p; marks: slots taken"));
  draw_load_plot(painter, layout, c, t, style);
  draw_dropped_list(painter, layout, c, t, style);
  draw_legend(painter, layout, c, t, style);
  draw_summary_line(painter, layout.summary, t, style, summary_text(c));
}

PaintedFigure experts_painted_figure(const ViewContext& context, const FigureStyle& style) {
  return view_painted_figure(experts_figure_size(context, style),
                             QStringLiteral("AttnLab: experts, layer %1").arg(experts_layer(context)),
                             QStringLiteral("mixture-of-experts routing per token, load per expert against capacity"), context,
                             style, draw_experts_figure);
}

void export_experts_data(const ViewContext& context, const QString& path) {
  const Content c = gather(context);
  const ExpertsTrace& e = *c.trace;
  if (view_data_format("experts", path, {QStringLiteral("csv"), QStringLiteral("json")}) == QLatin1String("json")) {
    nlohmann::json j = e.to_json();
    j["layer_type"] = c.layer_type.toStdString();
    write_view_json(path, std::move(j), c.layer, -1, c.labels);
  } else {
    QByteArray out = "token_index,token,dropped";
    for (std::int64_t s = 1; s <= e.top_k; ++s)
      out += ",expert_" + QByteArray::number(static_cast<qlonglong>(s)) + ",gate_" +
             QByteArray::number(static_cast<qlonglong>(s)) + ",routed_" + QByteArray::number(static_cast<qlonglong>(s));
    for (int k = 0; k < c.experts; ++k) out += ",p_" + QByteArray::number(k);
    out += "\r\n";
    const float* p = e.router_probabilities.data();
    for (int i = 0; i < c.tokens; ++i) {
      const auto u = static_cast<std::size_t>(i);
      out += QByteArray::number(i) + ',' + csv_field(c.labels.value(i)) + ',';
      out += std::binary_search(e.dropped.begin(), e.dropped.end(), i) ? "true" : "false";
      for (std::size_t s = 0; s < e.experts[u].size(); ++s) {
        out += ',' + QByteArray::number(e.experts[u][s]) + ',';
        append_csv_value(out, e.gates[u][s]);
        out += ',' + QByteArray::number(e.routed[u][s]);
      }
      for (int k = 0; k < c.experts; ++k) {
        out += ',';
        append_csv_value(out, p[static_cast<std::size_t>(i) * static_cast<std::size_t>(c.experts) + static_cast<std::size_t>(k)]);
      }
      out += "\r\n";
    }
    write_bytes_atomically(path, out);
  }
}

}  // namespace attnlab
