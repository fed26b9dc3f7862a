#include "figures/compare_figure.h"

#include <QFile>
#include <QFileInfo>
#include <QFontMetricsF>
#include <QPainter>
#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "analysis/approximation.h"
#include "core/error.h"
#include "core/npy.h"
#include "figures/figure_kit.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights, so the figure scales with its font.
constexpr double kPanelGapLines = 2.0;
constexpr double kRowGapLines = 1.2;
constexpr double kNaturalPanelLines = 18;  // side of a matrix at the figure's natural size
constexpr double kStripLines = 1.6;        // height of the per-query strip
constexpr double kStripUnits = 2.0;        // its width, in matrix sides
constexpr double kFrameLines = 0.05;
constexpr double kHighlightLines = 0.14;
constexpr double kTableColumnGapLines = 1.5;

enum class PanelKind { Exact, Approx, Difference, Strip, Metrics };

QString metric_text(double v) {
  if (!std::isfinite(v)) return QStringLiteral("–");
  return QString::number(v, 'g', 4);
}

// The table of metrics: a header row and four metric rows, three columns.
struct Table {
  QStringList header;
  std::vector<QStringList> rows;
};

Table metrics_table(const CompareFigureData& d) {
  Table t;
  t.header = {QStringLiteral("metric"), QStringLiteral("head %1").arg(d.head), QStringLiteral("all heads")};
  const auto row = [](const QString& name, double a, double b) { return QStringList{name, metric_text(a), metric_text(b)}; };
  t.rows.push_back(row(QStringLiteral("rel. output error ‖O − O*‖/‖O*‖"), d.head_metrics.rel_output_error,
                       d.all_heads.rel_output_error));
  t.rows.push_back(row(QStringLiteral("mean row KL(A* ‖ A)"), d.head_metrics.mean_row_kl, d.all_heads.mean_row_kl));
  t.rows.push_back(row(QStringLiteral("top-%1 overlap").arg(d.topk), d.head_metrics.topk_overlap, d.all_heads.topk_overlap));
  t.rows.push_back(QStringList{QStringLiteral("query rows compared"), QString::number(d.head_metrics.rows),
                               QString::number(d.all_heads.rows)});
  return t;
}

QString metrics_caption(const CompareFigureData& d) { return QStringLiteral("Against exact softmax · layer %1").arg(d.layer); }

// Column widths of the table (device units).
std::vector<double> table_columns(const Table& table, const FigureText& t, const QPaintDevice* device) {
  const QFontMetricsF bold(t.bold, device), plain(t.label, device);
  std::vector<double> widths(3, 0.0);
  for (int c = 0; c < 3; ++c) widths[static_cast<std::size_t>(c)] = bold.horizontalAdvance(table.header[c]);
  for (const QStringList& row : table.rows)
    for (int c = 0; c < 3; ++c)
      widths[static_cast<std::size_t>(c)] = std::max(widths[static_cast<std::size_t>(c)], plain.horizontalAdvance(row[c]));
  return widths;
}

QSizeF table_size(const Table& table, const FigureText& t, const QPaintDevice* device) {
  const std::vector<double> w = table_columns(table, t, device);
  const double width = w[0] + w[1] + w[2] + 2 * kTableColumnGapLines * t.line;
  const double height = static_cast<double>(table.rows.size() + 1) * (t.line + 0.5 * t.gap);
  return QSizeF(width, height);
}

double index_label_width(const FigureText& t, const QPaintDevice* device, std::int64_t n) {
  return QFontMetricsF(t.label, device).horizontalAdvance(QString::number(std::max<std::int64_t>(0, n - 1)));
}

std::vector<FlowPanel> make_panels(const CompareFigureData& d, const FigureStyle& style, const FigureText& t,
                                   const QPaintDevice* device) {
  std::vector<FlowPanel> panels;
  // Each heatmap figure's own room for title, labels and colorbar, found by laying it out in
  // targets unbounded in one direction (the matrix then fills the other exactly).
  const double probe = 1000.0 * t.line, huge = 1e4 * t.line;
  for (const auto& [kind, data] : {std::pair{PanelKind::Exact, &d.exact}, std::pair{PanelKind::Approx, &d.approx},
                                   std::pair{PanelKind::Difference, &d.difference}}) {
    const HeatmapFigureLayout wide = compute_heatmap_layout(*data, style, QRectF(0, 0, huge, probe), device);
    const HeatmapFigureLayout tall = compute_heatmap_layout(*data, style, QRectF(0, 0, probe, huge), device);
    panels.push_back(FlowPanel{static_cast<int>(kind), 1, 1, 0, probe - tall.matrix.width(), 0, probe - wide.matrix.height()});
  }
  // The strip: as wide as a matrix, a fixed height; caption above, query indices below.
  const double caption = t.line + t.gap;
  const double left = t.line + t.gap + std::max(index_label_width(t, device, d.length), t.line);
  panels.push_back(FlowPanel{static_cast<int>(PanelKind::Strip), kStripUnits, 0, left, t.gap, caption + kStripLines * t.line,
                             0.5 * t.gap + 2 * t.line});
  const QSizeF table = table_size(metrics_table(d), t, device);
  const double width = std::max(table.width(), QFontMetricsF(t.bold, device).horizontalAdvance(metrics_caption(d)));
  panels.push_back(FlowPanel{static_cast<int>(PanelKind::Metrics), 0, 0, width, t.gap, caption + table.height(), 0});
  return panels;
}

PanelFlowSpacing spacing_for(const FigureText& t) {
  return PanelFlowSpacing{t.margin, kPanelGapLines * t.line, kRowGapLines * t.line, t.margin + t.title_line + t.gap,
                          t.gap + t.line + t.margin};
}

CompareFigureLayout layout_content(const CompareFigureData& d, const FigureStyle& style, const QRectF& target,
                                   const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  const std::vector<FlowPanel> panels = make_panels(d, style, t, device);
  const PanelFlow placement = flow_panels(panels, target, spacing_for(t));
  CompareFigureLayout layout;
  layout.figure = target;
  layout.length = d.length;
  const double caption = t.line + t.gap;
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const FlowPanel& p = panels[i];
    const QRectF outer = placement.outer[i];
    switch (static_cast<PanelKind>(p.kind)) {
      case PanelKind::Exact:
        layout.exact_panel = outer;
        layout.exact = compute_heatmap_layout(d.exact, style, outer, device);
        break;
      case PanelKind::Approx:
        layout.approx_panel = outer;
        layout.approx = compute_heatmap_layout(d.approx, style, outer, device);
        break;
      case PanelKind::Difference:
        layout.difference_panel = outer;
        layout.difference = compute_heatmap_layout(d.difference, style, outer, device);
        break;
      case PanelKind::Strip:
        layout.strip = QRectF(outer.left() + p.left, outer.top() + caption, p.unit_w * placement.side, kStripLines * t.line);
        break;
      case PanelKind::Metrics:
        layout.metrics = QRectF(outer.left(), outer.top() + caption, p.left, p.top - caption);
        break;
    }
  }
  layout.panels = placement.outer;
  layout.title = QRectF(target.left() + t.margin, placement.top + t.margin, target.width() - 2 * t.margin, t.title_line);
  layout.summary = QRectF(target.left() + t.margin, placement.footer_top + t.gap, target.width() - 2 * t.margin, t.line);
  return layout;
}

void draw_frame(QPainter& painter, const QRectF& rect, const FigureStyle& style, double line) {
  painter.save();
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, kFrameLines * line));
  painter.drawRect(rect);
  painter.restore();
}

QString scale_name(CompareScale scale) { return scale == CompareScale::Shared ? QStringLiteral("shared") : QStringLiteral("separate"); }

QString params_text(const PlaygroundResult& r) {
  QStringList parts;
  for (const auto& [key, value] : r.params.values())
    parts << QString::fromStdString(key + "=" + param_value_to_string(value));
  return parts.join(QStringLiteral(", "));
}

QString summary_text(const CompareFigureData& d, int highlight) {
  const PlaygroundResult& r = *d.result;
  QString text = QStringLiteral("%1%2 vs exact softmax on the same q, k, v · %3 colour scales · difference = variant − exact")
                     .arg(QString::fromStdString(r.variant))
                     .arg(r.params.values().empty() ? QString() : QStringLiteral(" (%1)").arg(params_text(r)))
                     .arg(scale_name(d.options.scale));
  if (highlight >= 0 && highlight < d.length) {
    const auto i = static_cast<std::size_t>(highlight);
    text = QStringLiteral("query #%1 “%2”: top-%3 overlap %4, KL %5 · ")
               .arg(highlight)
               .arg(d.tokens.value(highlight))
               .arg(d.topk)
               .arg(metric_text(d.row_overlap[i]))
               .arg(metric_text(d.row_kl[i])) +
           text;
  }
  return text;
}

// Index ticks under the strip: every stride-th query, stride from 1, 2, 5, 10, ... so labels
// stay apart.
std::int64_t tick_stride(double cell, double label_w, double line) {
  const double need = std::max(label_w + line, 1.3 * line);
  for (std::int64_t base = 1;; base *= 10)
    for (const std::int64_t m : {1, 2, 5})
      if (static_cast<double>(base * m) * cell >= need || base > 1'000'000) return base * m;
}

void draw_strip(QPainter& painter, const CompareFigureLayout& layout, const CompareFigureData& d, const FigureText& t,
                const FigureStyle& style, int highlight) {
  const QRectF& strip = layout.strip;
  if (strip.isEmpty() || d.length <= 0) return;
  draw_caption_above(painter, strip, std::max(strip.width(), caption_room(layout.panels, strip, kPanelGapLines * t.line)), t,
                     style.foreground,
                     QStringLiteral("Top-%1 overlap per query · head %2 (0 → 1)").arg(d.topk).arg(d.head));
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  const double cell = strip.width() / static_cast<double>(d.length);
  for (std::int64_t i = 0; i < d.length; ++i) {
    // Each cell reaches into its right neighbour, drawn later: no seams.
    const double extra = i + 1 < d.length ? 0.2 * cell : 0.0;
    painter.fillRect(QRectF(strip.left() + static_cast<double>(i) * cell, strip.top(), cell + extra, strip.height()),
                     compare_strip_color(d.row_overlap[static_cast<std::size_t>(i)], d.exact.colormap));
  }
  painter.restore();
  draw_frame(painter, strip, style, t.line);
  // Row title left of the strip, index ticks below.
  painter.save();
  painter.setPen(style.foreground);
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  const std::int64_t stride = tick_stride(cell, index_label_width(t, painter.device(), d.length), t.line);
  for (std::int64_t i = 0; i < d.length; i += stride) {
    const double x = strip.left() + (static_cast<double>(i) + 0.5) * cell;
    painter.drawLine(QPointF(x, strip.bottom()), QPointF(x, strip.bottom() + 0.3 * t.gap));
    const QString label = QString::number(i);
    const double w = fm.horizontalAdvance(label);
    painter.drawText(QRectF(x - w, strip.bottom() + 0.5 * t.gap, 2 * w, t.line), Qt::AlignHCenter | Qt::AlignTop, label);
  }
  painter.drawText(QRectF(strip.left(), strip.bottom() + 0.5 * t.gap + t.line, strip.width(), t.line),
                   Qt::AlignHCenter | Qt::AlignTop, QStringLiteral("query"));
  painter.restore();
  if (highlight >= 0 && highlight < d.length) {
    painter.save();
    painter.setBrush(Qt::NoBrush);
    painter.setPen(QPen(style.foreground, kHighlightLines * t.line));
    painter.drawRect(QRectF(strip.left() + static_cast<double>(highlight) * cell, strip.top(), cell, strip.height()));
    painter.restore();
  }
}

void draw_table(QPainter& painter, const CompareFigureLayout& layout, const CompareFigureData& d, const FigureText& t,
                const FigureStyle& style) {
  const QRectF& area = layout.metrics;
  if (area.isEmpty()) return;
  draw_caption_above(painter, area, area.width(), t, style.foreground, metrics_caption(d));
  const Table table = metrics_table(d);
  const std::vector<double> w = table_columns(table, t, painter.device());
  const double gap = kTableColumnGapLines * t.line;
  const double pitch = t.line + 0.5 * t.gap;
  painter.save();
  painter.setPen(style.foreground);
  const auto draw_row = [&](const QStringList& cells, double y, const QFont& font) {
    double x = area.left();
    for (int c = 0; c < 3; ++c) {
      const auto width = w[static_cast<std::size_t>(c)];
      draw_text_line(painter, QRectF(x, y, width, t.line), font, cells[c],
                     (c == 0 ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignVCenter);
      x += width + gap;
    }
  };
  draw_row(table.header, area.top(), t.bold);
  QColor rule = style.foreground;
  rule.setAlphaF(0.4f);
  painter.setPen(QPen(rule, kFrameLines * t.line));
  painter.drawLine(QPointF(area.left(), area.top() + t.line + 0.2 * t.gap), QPointF(area.right(), area.top() + t.line + 0.2 * t.gap));
  painter.setPen(style.foreground);
  double y = area.top() + pitch;
  for (const QStringList& row : table.rows) {
    draw_row(row, y, t.label);
    y += pitch;
  }
  painter.restore();
}

float finite_max(const std::vector<float>& v, float fallback) {
  float m = -std::numeric_limits<float>::infinity();
  for (float x : v)
    if (std::isfinite(x)) m = std::max(m, x);
  return std::isfinite(m) ? m : fallback;
}

float finite_min(const std::vector<float>& v, float fallback) {
  float m = std::numeric_limits<float>::infinity();
  for (float x : v)
    if (std::isfinite(x)) m = std::min(m, x);
  return std::isfinite(m) ? m : fallback;
}

}  // namespace

QPointF CompareFigureLayout::strip_cell_centre(std::int64_t query) const {
  const double cell = strip.width() / static_cast<double>(std::max<std::int64_t>(1, length));
  return QPointF(strip.left() + (static_cast<double>(query) + 0.5) * cell, strip.center().y());
}

int CompareFigureLayout::token_at(const QPointF& pos) const {
  if (length <= 0) return -1;
  for (const HeatmapFigureLayout* h : {&exact, &approx, &difference}) {
    if (!h->matrix.contains(pos)) continue;
    return static_cast<int>(std::clamp<std::int64_t>(
        static_cast<std::int64_t>((pos.y() - h->matrix.top()) / h->matrix.height() * static_cast<double>(length)), 0, length - 1));
  }
  if (strip.contains(pos)) {
    return static_cast<int>(std::clamp<std::int64_t>(
        static_cast<std::int64_t>((pos.x() - strip.left()) / strip.width() * static_cast<double>(length)), 0, length - 1));
  }
  return -1;
}

const LayerComparison* layer_comparison(const ViewContext& context) {
  if (!context.result || context.layer < 0) return nullptr;
  const auto& comparisons = context.result->comparisons;
  if (context.layer >= static_cast<int>(comparisons.size())) return nullptr;
  const LayerComparison& c = comparisons[static_cast<std::size_t>(context.layer)];
  return c.exact_weights.rank() == 3 && !c.per_head.empty() ? &c : nullptr;
}

bool result_has_comparison(const PlaygroundResult& result) {
  if (result.variant == "softmax" || result.layers.empty()) return false;
  return std::any_of(result.comparisons.begin(), result.comparisons.end(),
                     [](const LayerComparison& c) { return c.exact_weights.rank() == 3 && !c.per_head.empty(); });
}

CompareFigureOptions compare_options_from_json(const nlohmann::json& options) {
  const Params p = view_options(view_spec("compare"), options);
  CompareFigureOptions o;
  o.scale = p.get_choice("scale") == "separate" ? CompareScale::Separate : CompareScale::Shared;
  return o;
}

CompareFigureDataPtr compare_figure_data(const ViewContext& context, const CompareFigureOptions& options) {
  check_view_context(view_spec("compare"), context);
  const LayerComparison* cmp = layer_comparison(context);
  if (!cmp) {
    throw ParamError("view 'compare': layer " + std::to_string(context.layer) +
                     " was not compared with exact softmax (the playground compares the layer it was asked for)");
  }
  auto d = std::make_shared<CompareFigureData>();
  const PlaygroundResult& r = *context.result;
  d->result = context.result;
  d->layer = context.layer;
  d->head = context.head;
  d->options = options;
  d->tokens = token_labels(r);
  const Tensor& weights = r.layers[static_cast<std::size_t>(context.layer)].weights;  // [H, L, L]
  const Tensor& exact = cmp->exact_weights;                                          // [H, L, L]
  const std::int64_t L = weights.dim(1), Lk = weights.dim(2);
  d->length = L;
  d->per_head = cmp->per_head;
  d->all_heads = cmp->all_heads;
  d->head_metrics = cmp->per_head[static_cast<std::size_t>(context.head)];
  d->topk = d->head_metrics.topk;

  const auto fill = [&](HeatmapData& h, const Tensor& t, const QString& title) {
    h.title = title;
    h.rows = static_cast<int>(L);
    h.cols = static_cast<int>(Lk);
    h.row_labels = d->tokens;
    h.col_labels = d->tokens;
    h.values.assign(t.data() + context.head * L * Lk, t.data() + (context.head + 1) * L * Lk);
    h.colormap = context.colormap == ColormapId::Coolwarm ? ColormapId::Viridis : context.colormap;
  };
  fill(d->exact, exact, QStringLiteral("Exact softmax · head %1").arg(context.head));
  fill(d->approx, weights, QStringLiteral("%1 · head %2").arg(QString::fromStdString(r.variant)).arg(context.head));
  apply_compare_scale(*d, options.scale);

  HeatmapData& diff = d->difference;
  fill(diff, weights, QStringLiteral("Difference (variant − exact) · head %1").arg(context.head));
  float largest = 0.0f;
  for (std::size_t i = 0; i < diff.values.size(); ++i) {
    diff.values[i] -= d->exact.values[i];
    if (std::isfinite(diff.values[i])) largest = std::max(largest, std::abs(diff.values[i]));
  }
  diff.vmax = largest > 0.0f ? largest : 1e-6f;  // symmetric about zero: white is "no difference"
  diff.vmin = -diff.vmax;
  diff.colormap = ColormapId::Coolwarm;
  diff.value_label = QStringLiteral("weight difference");

  // Per-row metrics, as the engine computed them with the comparison (NaN: the row sees no key).
  const auto head_row = [&](const Tensor& t) {
    return std::vector<float>(t.data() + context.head * L, t.data() + (context.head + 1) * L);
  };
  d->row_overlap = head_row(cmp->row_topk_overlap);
  d->row_kl = head_row(cmp->row_kl);
  return d;
}

void apply_compare_scale(CompareFigureData& d, CompareScale scale) {
  d.options.scale = scale;
  const auto scale_of = [](HeatmapData& h, float lo, float hi) {
    h.vmin = std::min(0.0f, lo);
    h.vmax = hi > h.vmin ? hi : h.vmin + 1.0f;
  };
  const float exact_lo = finite_min(d.exact.values, 0.0f), exact_hi = finite_max(d.exact.values, 1.0f);
  const float approx_lo = finite_min(d.approx.values, 0.0f), approx_hi = finite_max(d.approx.values, 1.0f);
  if (scale == CompareScale::Shared) {
    scale_of(d.exact, std::min(exact_lo, approx_lo), std::max(exact_hi, approx_hi));
    scale_of(d.approx, std::min(exact_lo, approx_lo), std::max(exact_hi, approx_hi));
  } else {
    scale_of(d.exact, exact_lo, exact_hi);
    scale_of(d.approx, approx_lo, approx_hi);
  }
}

QColor compare_strip_color(float overlap, ColormapId colormap) {
  return QColor(Colormap::get(colormap == ColormapId::Coolwarm ? ColormapId::Viridis : colormap).color(overlap, 0.0f, 1.0f));
}

QSizeF compare_figure_size(const CompareFigureData& data, const FigureStyle& style) {
  return natural_flow_size(
      style, kNaturalPanelLines,
      [&](const FigureText& t, const QPaintDevice* device) { return make_panels(data, style, t, device); }, spacing_for);
}

CompareFigureLayout compute_compare_layout(const CompareFigureData& data, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device) {
  return layout_content(data, style, target, device);
}

void draw_compare_figure(QPainter& painter, const QRectF& target, const CompareFigureData& d, const FigureStyle& style,
                         int highlight) {
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const CompareFigureLayout layout = layout_content(d, style, target, painter.device());
  if (highlight >= d.length) highlight = -1;
  const PlaygroundResult& r = *d.result;

  painter.setPen(style.foreground);
  draw_text_line(painter, layout.title, t.title,
                 QStringLiteral("Approximation lab · %1 vs exact softmax · layer %2 · head %3%4")
                     .arg(QString::fromStdString(r.variant))
                     .arg(d.layer)
                     .arg(d.head)
                     .arg(r.causal ? QStringLiteral(" · causal") : QString()),
                 Qt::AlignHCenter | Qt::AlignVCenter);

  const FigureStyle marked = with_highlight(style, highlight);
  if (!layout.exact_panel.isEmpty()) draw_heatmap_figure(painter, layout.exact_panel, d.exact, marked);
  if (!layout.approx_panel.isEmpty()) draw_heatmap_figure(painter, layout.approx_panel, d.approx, marked);
  if (!layout.difference_panel.isEmpty()) draw_heatmap_figure(painter, layout.difference_panel, d.difference, marked);
  draw_strip(painter, layout, d, t, style, highlight);
  draw_table(painter, layout, d, t, style);

  painter.setPen(style.foreground);
  draw_text_line(painter, layout.summary, t.label, summary_text(d, highlight));
}

PaintedFigure compare_painted_figure(const CompareFigureDataPtr& data, const FigureStyle& style, int highlight) {
  return PaintedFigure{compare_figure_size(*data, style),
                       QStringLiteral("AttnLab: %1 vs exact softmax, layer %2, head %3")
                           .arg(QString::fromStdString(data->result->variant))
                           .arg(data->layer)
                           .arg(data->head),
                       QStringLiteral("exact and approximate attention weights, their difference and the approximation metrics"),
                       style.background,
                       [data, style, highlight](QPainter& painter, const QRectF& target) {
                         draw_compare_figure(painter, target, *data, style, highlight);
                       }};
}

void export_compare_data(const ViewContext& context, const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix != QLatin1String("csv") && suffix != QLatin1String("json") && suffix != QLatin1String("npy")) {
    throw ParamError(QStringLiteral("cannot export '%1' from view 'compare': data formats are .csv, .json, .npy").arg(path).toStdString());
  }
  const CompareFigureDataPtr d = compare_figure_data(context, compare_options_from_json(context.options));
  if (suffix == QLatin1String("csv")) {
    QByteArray out = "head,rel_output_error,mean_row_kl,topk_overlap,topk,rows\r\n";
    const auto line = [&out](const QByteArray& head, const ApproximationMetrics& m) {
      out += head + ',' + QByteArray::number(m.rel_output_error, 'g', 17) + ',' + QByteArray::number(m.mean_row_kl, 'g', 17) +
             ',' + QByteArray::number(m.topk_overlap, 'g', 17) + ',' + QByteArray::number(m.topk) + ',' +
             QByteArray::number(static_cast<qlonglong>(m.rows)) + "\r\n";
    };
    for (std::size_t h = 0; h < d->per_head.size(); ++h) line(QByteArray::number(static_cast<qulonglong>(h)), d->per_head[h]);
    line("all", d->all_heads);
    write_bytes_atomically(path, out);
  } else if (suffix == QLatin1String("json")) {
    const PlaygroundResult& r = *d->result;
    nlohmann::json per_head = nlohmann::json::array();
    for (const ApproximationMetrics& m : d->per_head) per_head.push_back(m.to_json());
    const auto finite_or_null = [](const std::vector<float>& v) {
      nlohmann::json a = nlohmann::json::array();
      for (float x : v) a.push_back(std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr));
      return a;
    };
    nlohmann::json j{{"kind", "compare"},
                     {"variant", r.variant},
                     {"params", r.params.to_json()},
                     {"causal", r.causal},
                     {"attention_seed", r.attention_seed},
                     {"topk", d->topk},
                     {"per_head", per_head},
                     {"all_heads", d->all_heads.to_json()},
                     {"head_metrics", d->head_metrics.to_json()},
                     {"row_topk_overlap", finite_or_null(d->row_overlap)},
                     {"row_kl", finite_or_null(d->row_kl)}};
    write_bytes_atomically(path, view_json_bytes(std::move(j), d->layer, d->head, d->tokens));
  } else {
    write_npy(QFile::encodeName(path).toStdString(),
              Tensor::from_data({d->length, d->length}, d->difference.values.data(), d->difference.values.size()));
  }
}

}  // namespace attnlab

namespace attnlab {
namespace {

QString slope_text(const SweepResult& r, const std::string& metric) {
  for (const SweepFit& f : r.fits)
    if (f.metric == metric && f.points >= 2) return QStringLiteral(", slope %1").arg(f.slope, 0, 'f', 2).replace(QLatin1Char('-'), QChar(0x2212));
  return QString();
}

}  // namespace

LineChart sweep_line_chart(const std::vector<SweepSeries>& series) {
  LineChart chart;
  if (series.empty()) return chart;
  const SweepOptions& o = series.front().options;
  chart.title = QStringLiteral("%1: error vs %2").arg(QString::fromStdString(o.variant), QString::fromStdString(o.key));
  chart.note = QStringLiteral("L=%1, d=%2, q,k σ=%3, %4 head%5, %6 seed%7, top-%8%9 · bars: min–max over seeds")
                   .arg(o.length)
                   .arg(o.dim)
                   .arg(o.qk_std, 0, 'g', 3)
                   .arg(o.heads)
                   .arg(o.heads == 1 ? "" : "s")
                   .arg(o.seeds)
                   .arg(o.seeds == 1 ? "" : "s")
                   .arg(o.topk)
                   .arg(o.causal ? QStringLiteral(", causal") : QString());
  chart.x_label = QString::fromStdString(o.key);
  chart.y_label = QStringLiteral("error against exact softmax");
  chart.log_x = true;
  chart.log_y = true;
  chart.legend = LegendCorner::BottomLeft;
  std::vector<double> ticks;
  for (std::size_t s = 0; s < series.size(); ++s) {
    const SweepSeries& one = series[s];
    const QString suffix = one.name.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(one.name);
    // Series s in its own pair of colours; the KL line dashed-free but lighter-named.
    ChartSeries err{QStringLiteral("rel. output error") + suffix + slope_text(one.result, "rel_output_error"),
                    s == 0 ? okabe_ito(OkabeIto::Blue) : okabe_ito(OkabeIto::SkyBlue), {}, false, {}};
    ChartSeries kl{QStringLiteral("mean row KL") + suffix + slope_text(one.result, "mean_row_kl"),
                   s == 0 ? okabe_ito(OkabeIto::Vermillion) : okabe_ito(OkabeIto::Orange), {}, s > 0, {}};
    for (const SweepRow& row : one.result.rows) {
      if (!std::isfinite(row.numeric) || row.numeric <= 0) continue;
      err.points.emplace_back(row.numeric, row.rel_output_error.mean);
      err.y_ranges.emplace_back(row.rel_output_error.min, row.rel_output_error.max);
      kl.points.emplace_back(row.numeric, row.mean_row_kl.mean);
      kl.y_ranges.emplace_back(row.mean_row_kl.min, row.mean_row_kl.max);
      if (std::find(ticks.begin(), ticks.end(), row.numeric) == ticks.end()) ticks.push_back(row.numeric);
    }
    if (s > 0) err.dashed = true;
    chart.series.push_back(std::move(err));
    chart.series.push_back(std::move(kl));
  }
  std::sort(ticks.begin(), ticks.end());
  chart.x_ticks = ticks;
  return chart;
}

nlohmann::json sweep_series_json(const std::vector<SweepSeries>& series) {
  if (series.size() == 1) return sweep_to_json(series.front().options, series.front().result);
  nlohmann::json list = nlohmann::json::array();
  for (const SweepSeries& s : series) {
    nlohmann::json j = sweep_to_json(s.options, s.result);
    j["name"] = s.name.toStdString();
    list.push_back(std::move(j));
  }
  return nlohmann::json{{"series", list}};
}

void export_sweep(const std::vector<SweepSeries>& series, const QString& path, const ExportOptions& options) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == QLatin1String("json")) {
    write_bytes_atomically(path, QByteArray::fromStdString(sweep_series_json(series).dump(1) + "\n"));
  } else if (suffix == QLatin1String("csv")) {
    QByteArray out = "series,value,numeric";
    for (const char* metric : {"rel_output_error", "mean_row_kl", "topk_overlap", "time_ms"})
      for (const char* stat : {"mean", "std", "min", "max"}) out += QByteArray(",") + metric + "_" + stat;
    out += "\r\n";
    for (const SweepSeries& s : series) {
      for (const SweepRow& row : s.result.rows) {
        out += csv_field(s.name) + ',' + csv_field(QString::fromStdString(row.value)) + ',' +
               (std::isfinite(row.numeric) ? QByteArray::number(row.numeric, 'g', 17) : QByteArray());
        for (const MetricSummary* m : {&row.rel_output_error, &row.mean_row_kl, &row.topk_overlap, &row.time_ms})
          for (double v : {m->mean, m->stddev, m->min, m->max}) out += ',' + QByteArray::number(v, 'g', 17);
        out += "\r\n";
      }
    }
    write_bytes_atomically(path, out);
  } else if (suffix == QLatin1String("png") || suffix == QLatin1String("svg") || suffix == QLatin1String("pdf")) {
    export_figure(line_chart_figure(sweep_line_chart(series), options.style), path, options);
  } else {
    throw ParamError(QStringLiteral("cannot export the sweep to '%1': allowed extensions .png, .svg, .pdf, .json, .csv")
                         .arg(path)
                         .toStdString());
  }
}

}  // namespace attnlab
