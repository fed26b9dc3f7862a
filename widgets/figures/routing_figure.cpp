#include "figures/routing_figure.h"

#include <QFontMetricsF>
#include <QPainter>
#include <QPainterPath>
#include <QPen>
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "core/error.h"
#include "figures/figure_kit.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights, so the figure keeps its proportions at any dpi.
constexpr double kMarginLines = 0.8;
constexpr double kGapLines = 1.2;          // between panels
constexpr double kTitleScale = 1.2;
constexpr double kAxisLines = 1.3;         // an axis title and its gap
constexpr double kScatterLines = 26.0;     // natural side of the PCA plane
constexpr double kHistogramLines = 9.0;    // natural height of the histogram's plot
constexpr double kLegendPitch = 1.15;      // legend line to line
constexpr double kHistogramFooterLines = 2.2;  // cluster numbers and the axis title
constexpr double kWideAspect = 2.0;        // wider content than this: plane, histogram, matrix side by side
constexpr double kMemberRowLines = 1.2;    // height of one cluster row of the grid (below the matrix)
constexpr double kMembersMaxShare = 0.3;   // the grid takes at most this share of its column
constexpr double kCentroidLabelLimit = 40; // cluster numbers beside centroids up to this many
constexpr double kPlanePadding = 0.06;     // free border inside the plane's frame
constexpr int kPaleAlpha = 110;            // keys: the cluster colour, pale

// Fonts and lengths: the gap between panels is the figure's basic gap.
using Metrics = FigureText;

Metrics measure(const FigureStyle& style, const QPaintDevice* device) {
  return measure_figure_text(style, device, FigureTextSpec{kTitleScale, FigureTextSpec{}.small_scale, kMarginLines, kGapLines});
}

int info_lines(const RoutingFigureData& data) { return data.local() ? 1 : 2; }

double header_height(const RoutingFigureData& data, const Metrics& m) {
  return m.title_line + (0.2 + info_lines(data) + 0.6) * m.line;
}

// The legend: entries that flow into as many lines as `width` needs.
enum class Glyph { Query, Key, Centroid, Unrouted, None };
struct LegendEntry {
  Glyph glyph;
  QString text;
};

std::vector<LegendEntry> legend_entries() {
  return {{Glyph::Query, QStringLiteral("query")},
          {Glyph::Key, QStringLiteral("key")},
          {Glyph::Centroid, QStringLiteral("centroid (line: its path)")},
          {Glyph::Unrouted, QStringLiteral("unrouted query (output 0)")},
          {Glyph::None, QStringLiteral("colour: nearest centroid")}};
}

double glyph_width(Glyph glyph, double line) { return glyph == Glyph::None ? 0.0 : 0.8 * line; }

// Top-left corner of every entry, relative to the legend's origin; `lines` receives the count.
std::vector<QPointF> legend_flow(double width, const QFontMetricsF& fm, double line, int* lines) {
  std::vector<QPointF> at;
  double x = 0.0, y = 0.0;
  for (const LegendEntry& e : legend_entries()) {
    const double w = glyph_width(e.glyph, line) + fm.horizontalAdvance(e.text);
    if (x > 0.0 && x + w > width) {
      x = 0.0;
      y += kLegendPitch * line;
    }
    at.emplace_back(x, y);
    x += w + line;
  }
  if (lines) *lines = static_cast<int>(std::lround(y / (kLegendPitch * line))) + 1;
  return at;
}

double legend_height(double width, const Metrics& m, const QPaintDevice* device) {
  int lines = 1;
  legend_flow(width, QFontMetricsF(m.label, device), m.line, &lines);
  return lines * kLegendPitch * m.line;
}

// Left column of the tall arrangement, without the plane and the histogram plot: the plane's
// axis title, the histogram's title and footer, the legend, gaps.
double left_fixed_height(const Metrics& m, double legend) {
  return (kAxisLines + 1.0 + kHistogramFooterLines) * m.line + 1.5 * m.gap + legend;
}

double members_height(int clusters, double column_height, const Metrics& m) {
  return std::min(clusters * kMemberRowLines * m.line, kMembersMaxShare * column_height);
}

constexpr double kMemberColumnLines = 0.9;  // natural width of one cluster column (grid beside the matrix)
constexpr double kUnroutedMarkLines = 1.0;  // room for the marks of unrouted queries

// Title line, the members grid's title above it and the unrouted marks below it.
double members_block(double grid_height, const Metrics& m) { return m.gap + m.line + grid_height + 1.0 * m.line; }

QString display_token(const QStringList& tokens, int index) {
  QString text = index < tokens.size() ? tokens[index] : QString::number(index);
  text.replace(QLatin1Char('\n'), QStringLiteral("\\n"));
  text.replace(QLatin1Char('\t'), QStringLiteral("\\t"));
  return text;
}

int shown_step(const RoutingFigureData& data, const RoutingFigureOptions& options) {
  const int last = std::max(0, data.steps() - 1);
  return options.step < 0 ? last : std::min(options.step, last);
}

int cluster_count(const RoutingFigureData& data) { return static_cast<int>(data.extras->settings().n_clusters); }

QColor pale(QColor c) {
  c.setAlpha(kPaleAlpha);
  return c;
}

// Outline for a marker filled with `fill`: darker, so that the yellow reads on white.
QColor outline_of(const QColor& fill, const FigureStyle& style) {
  return style.background.lightness() > 128 ? fill.darker(150) : fill.lighter(130);
}

QString settings_text(const RoutingFigureData& data) {
  const RoutingSettings& s = data.extras->settings();
  QString text;
  if (data.local()) {
    text = QStringLiteral("local head: every query attends a sliding window of %1 keys%2 — no clusters")
               .arg(s.window)
               .arg(s.causal ? QStringLiteral(" (itself and the ones before)") : QStringLiteral(" around it"));
  } else {
    text = QStringLiteral("k = %1 clusters · window %2 queries, %3 keys · %4 k-means steps · EMA decay %5")
               .arg(s.n_clusters)
               .arg(s.query_window)
               .arg(s.key_window)
               .arg(s.kmeans_iters)
               .arg(s.ema_decay, 0, 'g', 3);
    if (s.local_heads > 0) text += QStringLiteral(" · heads 0–%1 local").arg(s.local_heads - 1);
  }
  return text;
}

QString unrouted_text(const RoutingFigureData& data) {
  const auto& unrouted = data.trace().unrouted_queries;
  if (unrouted.empty()) return QStringLiteral("every query is routed: it sees at least one key in a cluster");
  QString text = QStringLiteral("unrouted queries (output 0, zero weight row): %1 —").arg(unrouted.size());
  for (std::size_t n = 0; n < unrouted.size() && n < 40; ++n) {
    text += QStringLiteral(" #%1 '%2'").arg(unrouted[n]).arg(display_token(data.tokens, unrouted[n]));
  }
  return text;
}

// ---- layout ------------------------------------------------------------------------------------

void fit_plane(RoutingFigureLayout& layout, const RoutingFigureData& data) {
  const RoutingHeadTrace& t = data.trace();
  double lo_x = std::numeric_limits<double>::infinity(), lo_y = lo_x, hi_x = -lo_x, hi_y = -lo_x;
  const auto add = [&](double x, double y) {
    lo_x = std::min(lo_x, x), hi_x = std::max(hi_x, x), lo_y = std::min(lo_y, y), hi_y = std::max(hi_y, y);
  };
  for (Eigen::Index i = 0; i < t.query_xy.rows(); ++i) add(t.query_xy(i, 0), t.query_xy(i, 1));
  for (Eigen::Index j = 0; j < t.key_xy.rows(); ++j) {
    if (t.nearest_key_cluster(0, j) >= 0) add(t.key_xy(j, 0), t.key_xy(j, 1));
  }
  const float* c = t.centroid_xy.data();
  for (std::int64_t e = 0; e < t.centroid_xy.size() / 2; ++e) add(c[2 * e], c[2 * e + 1]);
  if (!std::isfinite(lo_x)) lo_x = hi_x = lo_y = hi_y = 0.0;
  layout.plane_centre = QPointF(0.5 * (lo_x + hi_x), 0.5 * (lo_y + hi_y));
  const double extent = std::max({hi_x - lo_x, hi_y - lo_y, 1e-9});
  const double side = std::min(layout.scatter.width(), layout.scatter.height()) * (1.0 - 2.0 * kPlanePadding);
  layout.plane_scale = side / extent;
  const double points = static_cast<double>(t.query_xy.rows() + t.key_xy.rows());
  layout.marker = layout.line * std::clamp(0.4 * std::sqrt(100.0 / std::max(1.0, points)), 0.15, 0.35);
}

// One scale for every step, so that the bars move and the axis does not.
int histogram_top(const RoutingFigureData& data) {
  const RoutingHeadTrace& t = data.trace();
  const RoutingSettings& s = data.extras->settings();
  int top = static_cast<int>(std::max(s.query_window, s.key_window));
  for (int v : t.query_occupancy) top = std::max(top, v);
  for (int v : t.key_occupancy) top = std::max(top, v);
  return std::max(1, top);
}

}  // namespace

QColor routing_cluster_color(int cluster) { return categorical_color(std::max(0, cluster), CategoricalPalette::OkabeIto); }

QPointF RoutingFigureLayout::to_scatter(double x, double y) const {
  return scatter.center() + QPointF((x - plane_centre.x()) * plane_scale, -(y - plane_centre.y()) * plane_scale);
}

QRectF RoutingFigureLayout::member_cell(int cluster, int token) const {
  const double band = (members_by_row ? members.width() : members.height()) / std::max(1, clusters);
  if (members_by_row) return QRectF(members.left() + cluster * band, members.top() + token * matrix.cell, band, matrix.cell);
  return QRectF(members.left() + token * matrix.cell, members.top() + cluster * band, matrix.cell, band);
}

QRectF RoutingFigureLayout::member_half(int cluster, int token, bool key) const {
  const QRectF cell = member_cell(cluster, token);
  if (members_by_row) return QRectF(cell.left() + (key ? 0.5 * cell.width() : 0.0), cell.top(), 0.5 * cell.width(), cell.height());
  return QRectF(cell.left(), cell.top() + (key ? 0.5 * cell.height() : 0.0), cell.width(), 0.5 * cell.height());
}

QRectF RoutingFigureLayout::histogram_bar(int cluster, bool keys, int count) const {
  const double group = histogram.width() / std::max(1, clusters);
  const double bar = 0.4 * group;
  const double x = histogram.left() + cluster * group + 0.1 * group + (keys ? bar : 0.0);
  return QRectF(x, histogram.bottom() - count * count_scale, bar, count * count_scale);
}

RoutingFigureData routing_figure_data(const PlaygroundResult& result, int layer, int head, ColormapId colormap) {
  if (layer < 0 || layer >= static_cast<int>(result.layers.size())) {
    throw ParamError("layer " + std::to_string(layer) + " does not exist; this model has layers 0.." +
                     std::to_string(result.layers.size() - 1));
  }
  const Trace& trace = result.layers[static_cast<std::size_t>(layer)];
  auto extras = std::dynamic_pointer_cast<const RoutingExtras>(trace.extras);
  if (!extras) {
    throw ParamError("layer " + std::to_string(layer) + " has no routing trace; the clusters view needs the routing variant");
  }
  if (head < 0 || head >= extras->head_count()) {
    throw ParamError("head " + std::to_string(head) + " does not exist; this model has heads 0.." +
                     std::to_string(extras->head_count() - 1));
  }
  RoutingFigureData data;
  data.layer = layer;
  data.head = head;
  data.tokens = token_labels(result);
  data.extras = std::move(extras);
  auto matrix = std::make_shared<HeatmapData>(*attention_heatmap(result, layer, head, colormap));
  matrix->title = data.local() ? QStringLiteral("sliding-window attention (token order)")
                               : QStringLiteral("routed attention in token order");
  data.matrix = std::move(matrix);
  data.variant_title = QStringLiteral("%1 · layer %2 · head %3%4")
                           .arg(QString::fromStdString(result.variant))
                           .arg(layer)
                           .arg(head)
                           .arg(result.causal ? QStringLiteral(" · causal") : QString());
  return data;
}

QSizeF routing_figure_size(const RoutingFigureData& data, const FigureStyle& style) {
  const QImage device = measuring_device();
  const double to_points = measured_to_points(1.0);
  const Metrics m = measure(style, &device);
  const double line = m.line * to_points, margin = m.margin * to_points, gap = m.gap * to_points;
  const double header = header_height(data, m) * to_points;
  const QSizeF heat = heatmap_figure_size(*data.matrix, style);
  const double title_w = QFontMetricsF(m.title, &device).horizontalAdvance(QStringLiteral("Routing clusters · ") + data.variant_title) * to_points * 1.03;
  if (data.local()) {
    return QSizeF(std::ceil(std::max(heat.width(), title_w) + 2 * margin), std::ceil(header + heat.height() + 2 * margin));
  }
  const double side = kScatterLines * line;
  const double legend = legend_height((kAxisLines * m.line + kScatterLines * m.line), m, &device);
  const double column = side + kHistogramLines * line + left_fixed_height(m, legend) * to_points;
  const double grid = members_height(cluster_count(data), column, m) * to_points;
  const double heat_h = std::max(10.0 * line, column - (members_block(m.line, m) * to_points - line + grid));
  const double heat_w = heat.width() * heat_h / heat.height();
  const double width = 2 * margin + kAxisLines * line + side + gap + heat_w;
  return QSizeF(std::ceil(std::max(width, title_w + 2 * margin)), std::ceil(margin + header + column + margin));
}

RoutingFigureLayout compute_routing_layout(const RoutingFigureData& data, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device) {
  const Metrics m = measure(style, device);
  RoutingFigureLayout layout;
  layout.figure = target;
  layout.line = m.line;
  layout.clusters = data.local() ? 0 : cluster_count(data);
  const double x0 = target.left() + m.margin, width = std::max(0.0, target.width() - 2 * m.margin);
  double y = target.top() + m.margin;
  layout.title = QRectF(x0, y, width, m.title_line);
  y += m.title_line + 0.2 * m.line;
  layout.info = QRectF(x0, y, width, info_lines(data) * m.line);
  y += (info_lines(data) + 0.6) * m.line;
  const QRectF content(x0, y, width, std::max(0.0, target.bottom() - m.margin - y));
  if (data.local()) {
    layout.heatmap = content;
    layout.matrix = compute_heatmap_layout(*data.matrix, style, content, device);
    return layout;
  }
  const double axis = kAxisLines * m.line;
  double right_left = 0.0;
  if (content.width() > kWideAspect * content.height()) {
    // Wide (a docked panel): plane | histogram over legend | matrix over members.
    const double side = std::max(4.0 * m.line, std::min(content.height() - axis, 0.34 * content.width() - axis));
    layout.scatter = QRectF(content.left() + axis, content.top(), side, side);
    const double hist_w = 0.8 * side;
    const double legend = legend_height(axis + hist_w, m, device);
    const double hist_left = layout.scatter.right() + m.gap + axis;
    const double hist_h = std::max(2.0 * m.line, content.height() - (1.0 + kHistogramFooterLines) * m.line - 0.5 * m.gap - legend);
    layout.histogram = QRectF(hist_left, content.top() + m.line, hist_w, hist_h);
    layout.legend = QRectF(hist_left - axis, layout.histogram.bottom() + kHistogramFooterLines * m.line + 0.5 * m.gap,
                           axis + hist_w, legend);
    // The matrix, then the membership grid beside it: one row per token, aligned with the
    // matrix's query rows, one column per cluster (height is short here, width is not).
    const double right_left_wide = layout.histogram.right() + m.gap;
    const double right_w = std::max(0.0, content.right() - right_left_wide);
    const double grid_w = std::min(std::max(cluster_count(data) * kMemberColumnLines, 5.0) * m.line, kMembersMaxShare * right_w);
    layout.members_by_row = true;
    // The matrix figure centres itself in its rectangle: give it about the width its natural
    // proportions need at this height, so that the grid sits close to it.
    const QSizeF natural = heatmap_figure_size(*data.matrix, style);
    const double heat_w = std::min(std::max(0.0, right_w - grid_w - m.gap - kUnroutedMarkLines * m.line),
                                   content.height() * natural.width() / std::max(1.0, natural.height()));
    layout.heatmap = QRectF(right_left_wide, content.top(), heat_w, content.height());
    layout.matrix = compute_heatmap_layout(*data.matrix, style, layout.heatmap, device);
    layout.members = QRectF(layout.heatmap.right() + m.gap, layout.matrix.matrix.top(), grid_w, layout.matrix.matrix.height());
    layout.members_title = QRectF(layout.members.left(), layout.members.bottom() + 0.3 * m.line,
                                  std::max(0.0, content.right() - layout.members.left()), 3.0 * m.line);
    layout.count_scale = layout.histogram.height() / (1.08 * histogram_top(data));
    fit_plane(layout, data);
    return layout;
  } else {
    // Tall: the plane (square) above the histogram, whose plot gets the share of height it has
    // in the natural size, at most half the plane; the matrix over the members on the right.
    double side = 0.45 * content.width() - axis;
    double legend = legend_height(axis + side, m, device);
    const double avail = std::max(0.0, content.height() - left_fixed_height(m, legend));
    side = std::max(4.0 * m.line, std::min(avail * kScatterLines / (kScatterLines + kHistogramLines), side));
    legend = legend_height(axis + side, m, device);
    const double hist_h = std::max(3.0 * m.line, std::min(avail - side, 0.5 * side));
    const double left = content.left() + axis;
    layout.scatter = QRectF(left, content.top(), side, side);
    const double hist_top = layout.scatter.bottom() + axis + m.gap + m.line;  // axis title, gap, histogram title
    layout.histogram = QRectF(left, hist_top, side, hist_h);
    layout.legend = QRectF(content.left(), layout.histogram.bottom() + kHistogramFooterLines * m.line + 0.5 * m.gap,
                           axis + side, legend);
    right_left = content.left() + axis + side + m.gap;
  }
  layout.count_scale = layout.histogram.height() / (1.08 * histogram_top(data));

  const QRectF right(right_left, content.top(), std::max(0.0, content.right() - right_left), content.height());
  const double grid = members_height(cluster_count(data), right.height(), m);
  layout.heatmap = QRectF(right.left(), right.top(), right.width(), std::max(0.0, right.height() - members_block(grid, m)));
  layout.matrix = compute_heatmap_layout(*data.matrix, style, layout.heatmap, device);
  layout.members = QRectF(layout.matrix.matrix.left(), layout.heatmap.bottom() + m.gap + m.line,
                          layout.matrix.matrix.width(), grid);
  layout.members_title = QRectF(layout.heatmap.left(), layout.members.top() - m.line, layout.heatmap.width(), m.line);
  fit_plane(layout, data);
  return layout;
}

// ---- drawing -------------------------------------------------------------------------------------

namespace {

struct Painting {
  QPainter& painter;
  const RoutingFigureData& data;
  const FigureStyle& style;
  const RoutingFigureLayout& layout;
  const Metrics& m;
  int step;
  int highlighted;
};

void draw_rotated_text(QPainter& painter, const QPointF& centre, const QString& text) {
  painter.save();
  painter.translate(centre);
  painter.rotate(-90.0);
  const QFontMetricsF fm(painter.font(), painter.device());
  const double w = fm.horizontalAdvance(text);
  painter.drawText(QPointF(-0.5 * w, 0.5 * (fm.ascent() - fm.descent())), text);
  painter.restore();
}

void draw_header(const Painting& p) {
  QPainter& painter = p.painter;
  painter.setPen(p.style.foreground);
  draw_text_line(painter, p.layout.title, p.m.title, QStringLiteral("Routing clusters · ") + p.data.variant_title);
  QRectF line1 = p.layout.info;
  line1.setHeight(p.m.line);
  QString settings = settings_text(p.data);
  if (!p.data.local()) {
    settings += QStringLiteral(" · showing step %1 of %2").arg(p.step).arg(p.data.steps() - 1);
  }
  draw_text_line(painter, line1, p.m.label, settings);
  if (!p.data.local()) draw_text_line(painter, line1.translated(0, p.m.line), p.m.label, unrouted_text(p.data));
}

QPainterPath triangle(const QPointF& c, double r) {
  QPainterPath path;
  path.moveTo(c + QPointF(0, -1.2 * r));
  path.lineTo(c + QPointF(1.1 * r, 0.75 * r));
  path.lineTo(c + QPointF(-1.1 * r, 0.75 * r));
  path.closeSubpath();
  return path;
}

QPainterPath diamond(const QPointF& c, double r) {
  QPainterPath path;
  path.moveTo(c + QPointF(0, -r));
  path.lineTo(c + QPointF(r, 0));
  path.lineTo(c + QPointF(0, r));
  path.lineTo(c + QPointF(-r, 0));
  path.closeSubpath();
  return path;
}

void draw_scatter(const Painting& p) {
  QPainter& painter = p.painter;
  const RoutingFigureLayout& L = p.layout;
  const RoutingHeadTrace& t = p.data.trace();
  const int k = cluster_count(p.data);
  const double r = L.marker, thin = std::max(0.05 * p.m.line, 0.5);
  painter.save();
  painter.setClipRect(L.scatter);
  // Centroid paths up to the shown step, under the points.
  for (int c = 0; c < k; ++c) {
    QPainterPath path;
    for (int s = 0; s <= p.step; ++s) {
      const float* xy = t.centroid_xy.data() + (static_cast<std::int64_t>(s) * k + c) * 2;
      const QPointF at = L.to_scatter(xy[0], xy[1]);
      if (s == 0) path.moveTo(at);
      else path.lineTo(at);
    }
    painter.setPen(QPen(routing_cluster_color(c), 2.0 * thin, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin));
    painter.setBrush(Qt::NoBrush);
    painter.drawPath(path);
  }
  // Keys (triangles), then queries (circles); unrouted queries hollow.
  for (Eigen::Index j = 0; j < t.key_xy.rows(); ++j) {
    const int c = t.nearest_key_cluster(p.step, j);
    if (c < 0) continue;  // padded
    const QColor fill = routing_cluster_color(c);
    painter.setPen(QPen(outline_of(fill, p.style), thin));
    painter.setBrush(pale(fill));
    painter.drawPath(triangle(L.to_scatter(t.key_xy(j, 0), t.key_xy(j, 1)), r));
  }
  for (Eigen::Index i = 0; i < t.query_xy.rows(); ++i) {
    const QColor fill = routing_cluster_color(t.nearest_query_cluster(p.step, i));
    const bool routed = t.query_averaged[static_cast<std::size_t>(i)] > 0;
    painter.setPen(QPen(routed ? outline_of(fill, p.style) : fill, routed ? thin : 3.0 * thin));
    painter.setBrush(routed ? QBrush(fill) : QBrush(Qt::NoBrush));
    painter.drawEllipse(L.to_scatter(t.query_xy(i, 0), t.query_xy(i, 1)), r, r);
  }
  // Centroids at the shown step, numbered while there are few.
  const double cr = std::max(2.2 * r, 0.45 * p.m.line);
  painter.setFont(p.m.bold);
  const QFontMetricsF fm(p.m.bold, painter.device());
  for (int c = 0; c < k; ++c) {
    const float* xy = t.centroid_xy.data() + (static_cast<std::int64_t>(p.step) * k + c) * 2;
    const QPointF at = L.to_scatter(xy[0], xy[1]);
    painter.setPen(QPen(p.style.foreground, 2.0 * thin));
    painter.setBrush(routing_cluster_color(c));
    painter.drawPath(diamond(at, cr));
    if (k <= kCentroidLabelLimit) {
      painter.setPen(p.style.foreground);
      painter.drawText(at + QPointF(1.2 * cr, -0.6 * cr), QString::number(c));
    }
  }
  // The highlighted token: rings around its query and its key, and its text.
  if (p.highlighted >= 0 && p.highlighted < t.query_xy.rows()) {
    painter.setBrush(Qt::NoBrush);
    painter.setPen(QPen(p.style.foreground, 3.0 * thin));
    const QPointF q = L.to_scatter(t.query_xy(p.highlighted, 0), t.query_xy(p.highlighted, 1));
    painter.drawEllipse(q, 2.2 * r + thin, 2.2 * r + thin);
    if (p.highlighted < t.key_xy.rows()) {
      const QPointF kp = L.to_scatter(t.key_xy(p.highlighted, 0), t.key_xy(p.highlighted, 1));
      painter.drawPath(triangle(kp, 2.2 * r + thin));
      painter.setPen(QPen(p.style.foreground, thin, Qt::DotLine));
      painter.drawLine(q, kp);
    }
    painter.setPen(p.style.foreground);
    painter.drawText(q + QPointF(2.6 * r, 0.5 * fm.ascent()), display_token(p.data.tokens, p.highlighted));
  }
  painter.restore();
  // Frame and axis titles.
  painter.setPen(QPen(p.style.foreground, thin));
  painter.setBrush(Qt::NoBrush);
  painter.drawRect(L.scatter);
  painter.setFont(p.m.label);
  const QRectF below(L.scatter.left(), L.scatter.bottom() + 0.2 * p.m.line, L.scatter.width(), p.m.line);
  draw_text_line(painter, below, p.m.label,
                 QStringLiteral("PCA 1 (%1% of variance)")
                     .arg(100.0 * t.explained[0], 0, 'f', 0),
                 Qt::AlignHCenter | Qt::AlignVCenter);
  painter.setFont(p.m.label);
  draw_rotated_text(painter, QPointF(L.scatter.left() - 0.65 * kAxisLines * p.m.line, L.scatter.center().y()),
                    QStringLiteral("PCA 2 (%1%)").arg(100.0 * t.explained[1], 0, 'f', 0));
}

void draw_histogram(const Painting& p) {
  QPainter& painter = p.painter;
  const RoutingFigureLayout& L = p.layout;
  const RoutingHeadTrace& t = p.data.trace();
  const RoutingSettings& s = p.data.extras->settings();
  const int k = cluster_count(p.data);
  const QRectF plot = L.histogram;
  const double thin = std::max(0.05 * p.m.line, 0.5);
  const int top = histogram_top(p.data);
  const double scale = L.count_scale;
  const double group = plot.width() / std::max(1, k);
  painter.setPen(p.style.foreground);
  draw_text_line(painter, QRectF(plot.left(), plot.top() - p.m.line, plot.width(), p.m.line), p.m.label,
                 QStringLiteral("tokens nearest to each centroid at step %1").arg(p.step));
  // The highlighted token's clusters at this step: a band behind their bars.
  if (p.highlighted >= 0 && p.highlighted < t.query_xy.rows()) {
    QColor band = p.style.foreground;
    band.setAlpha(40);
    for (int c : {t.nearest_query_cluster(p.step, p.highlighted),
                  p.highlighted < t.key_xy.rows() ? t.nearest_key_cluster(p.step, p.highlighted) : -1}) {
      if (c >= 0) painter.fillRect(QRectF(plot.left() + c * group, plot.top(), group, plot.height()), band);
    }
  }
  for (int c = 0; c < k; ++c) {
    const int nq = t.query_occupancy[static_cast<std::size_t>(p.step * k + c)];
    const int nk = t.key_occupancy[static_cast<std::size_t>(p.step * k + c)];
    const QColor fill = routing_cluster_color(c);
    painter.setPen(group > 4 * thin ? QPen(outline_of(fill, p.style), thin) : Qt::NoPen);
    painter.setBrush(fill);
    painter.drawRect(L.histogram_bar(c, false, nq));
    painter.setBrush(pale(fill));
    painter.drawRect(L.histogram_bar(c, true, nk));
  }
  // The window: what each cluster takes, whatever its occupancy.
  painter.setPen(QPen(p.style.foreground, 1.5 * thin, Qt::DashLine));
  const double wy = plot.bottom() - s.query_window * scale;
  painter.drawLine(QPointF(plot.left(), wy), QPointF(plot.right(), wy));
  QString window_label = QStringLiteral("window %1").arg(s.query_window);
  if (s.key_window != s.query_window) {
    const double ky = plot.bottom() - s.key_window * scale;
    painter.setPen(QPen(p.style.foreground, thin, Qt::DotLine));
    painter.drawLine(QPointF(plot.left(), ky), QPointF(plot.right(), ky));
    window_label = QStringLiteral("window %1 queries (dashed), %2 keys (dotted)").arg(s.query_window).arg(s.key_window);
  }
  painter.setPen(p.style.foreground);
  painter.setFont(p.m.label);
  const QFontMetricsF fm(p.m.label, painter.device());
  const QRectF label_box(plot.right() - fm.horizontalAdvance(window_label) - 0.4 * p.m.line, wy - 1.05 * p.m.line,
                         fm.horizontalAdvance(window_label) + 0.4 * p.m.line, p.m.line);
  QColor veil = p.style.background;
  veil.setAlpha(200);
  painter.fillRect(label_box, veil);  // readable over the bars
  painter.drawText(label_box, Qt::AlignCenter, window_label);
  // Axes: counts on the left, cluster numbers below (thinned to fit).
  painter.setPen(QPen(p.style.foreground, thin));
  painter.drawLine(plot.bottomLeft(), plot.bottomRight());
  painter.drawLine(plot.bottomLeft(), plot.topLeft());
  const QString top_label = QString::number(top);
  // Right-aligned before the axis; wider than the axis column for three-digit counts.
  const double tick_w = 4.0 * p.m.line;
  painter.drawText(QRectF(plot.left() - tick_w - 0.2 * p.m.line, plot.bottom() - top * scale - 0.5 * p.m.line, tick_w, p.m.line),
                   Qt::AlignRight | Qt::AlignVCenter, top_label);
  painter.drawText(QRectF(plot.left() - tick_w - 0.2 * p.m.line, plot.bottom() - 0.5 * p.m.line, tick_w, p.m.line),
                   Qt::AlignRight | Qt::AlignVCenter, QStringLiteral("0"));
  const double label_w = fm.horizontalAdvance(QString::number(k - 1)) + 0.4 * p.m.line;
  const int stride = std::max(1, static_cast<int>(std::ceil(label_w / group)));
  for (int c = 0; c < k; c += stride) {
    painter.drawText(QRectF(plot.left() + c * group - label_w, plot.bottom(), group + 2 * label_w, p.m.line),
                     Qt::AlignHCenter | Qt::AlignVCenter, QString::number(c));
  }
  draw_text_line(painter, QRectF(plot.left(), plot.bottom() + p.m.line, plot.width(), p.m.line), p.m.label,
                 QStringLiteral("cluster (solid: queries, pale: keys)"), Qt::AlignHCenter | Qt::AlignVCenter);
}

void draw_legend(const Painting& p) {
  QPainter& painter = p.painter;
  const QRectF rect = p.layout.legend;
  const double line = p.m.line, r = 0.3 * line, thin = std::max(0.05 * line, 0.5);
  painter.setFont(p.m.label);
  const QFontMetricsF fm(p.m.label, painter.device());
  const QColor sample = routing_cluster_color(1);
  const std::vector<LegendEntry> entries = legend_entries();
  const std::vector<QPointF> at = legend_flow(rect.width(), fm, line, nullptr);
  for (std::size_t e = 0; e < entries.size(); ++e) {
    const QPointF origin = rect.topLeft() + at[e];
    const QPointF c = origin + QPointF(r, 0.5 * line);
    switch (entries[e].glyph) {
      case Glyph::Query:
        painter.setPen(QPen(outline_of(sample, p.style), thin));
        painter.setBrush(sample);
        painter.drawEllipse(c, r, r);
        break;
      case Glyph::Key:
        painter.setPen(QPen(outline_of(sample, p.style), thin));
        painter.setBrush(pale(sample));
        painter.drawPath(triangle(c, r));
        break;
      case Glyph::Centroid:
        painter.setPen(QPen(p.style.foreground, 2 * thin));
        painter.setBrush(sample);
        painter.drawPath(diamond(c, 1.2 * r));
        break;
      case Glyph::Unrouted:
        painter.setPen(QPen(sample, 3 * thin));
        painter.setBrush(Qt::NoBrush);
        painter.drawEllipse(c, r, r);
        break;
      case Glyph::None: break;
    }
    painter.setPen(p.style.foreground);
    const double x = origin.x() + glyph_width(entries[e].glyph, line);
    painter.drawText(QPointF(x, origin.y() + 0.5 * line + 0.5 * (fm.ascent() - fm.descent())),
                     fm.elidedText(entries[e].text, Qt::ElideRight, std::max(0.0, rect.right() - x)));
  }
}

void draw_members(const Painting& p) {
  QPainter& painter = p.painter;
  const RoutingFigureLayout& L = p.layout;
  const RoutingHeadTrace& t = p.data.trace();
  const RoutingSettings& s = p.data.extras->settings();
  const int k = cluster_count(p.data);
  const int tokens = static_cast<int>(t.query_xy.rows());
  const QRectF grid = L.members;
  if (grid.width() <= 0 || grid.height() <= 0) return;
  const bool by_row = L.members_by_row;
  const double band = (by_row ? grid.width() : grid.height()) / k;
  const double thin = std::max(0.05 * p.m.line, 0.5);
  QColor rule = p.style.foreground;
  rule.setAlpha(30);
  painter.fillRect(grid, rule);
  painter.setPen(Qt::NoPen);
  // Runs of consecutive members as one rectangle: at most 2·k·window rectangles.
  const auto draw_runs = [&](const std::vector<std::int32_t>& members, std::int64_t w, int c, bool key, const QColor& fill) {
    painter.setBrush(fill);
    for (std::int64_t a = 0; a < w;) {
      std::int64_t b = a + 1;
      while (b < w && members[static_cast<std::size_t>(c * w + b)] == members[static_cast<std::size_t>(c * w + b - 1)] + 1) ++b;
      const int first = members[static_cast<std::size_t>(c * w + a)];
      const int last = members[static_cast<std::size_t>(c * w + b - 1)];
      painter.drawRect(L.member_half(c, first, key).united(L.member_half(c, last, key)));
      a = b;
    }
  };
  for (int c = 0; c < k; ++c) {
    const QColor fill = routing_cluster_color(c);
    draw_runs(t.query_members, s.query_window, c, false, fill);
    draw_runs(t.key_members, s.key_window, c, true, pale(fill));
  }
  // Cluster numbers (thinned), the title, and a mark beside or under each unrouted query.
  painter.setPen(p.style.foreground);
  painter.setFont(p.m.label);
  const QFontMetricsF fm(p.m.label, painter.device());
  const double pitch = by_row ? fm.horizontalAdvance(QString::number(k - 1)) + 0.4 * p.m.line : 1.05 * p.m.line;
  const int stride = std::max(1, static_cast<int>(std::ceil(pitch / band)));
  for (int c = 0; c < k; c += stride) {
    const QRectF label = by_row ? QRectF(grid.left() + (c + 0.5) * band - pitch, grid.top() - 1.1 * p.m.line, 2 * pitch, p.m.line)
                                : QRectF(grid.left() - 3.0 * p.m.line, grid.top() + (c + 0.5) * band - 0.5 * p.m.line,
                                         2.7 * p.m.line, p.m.line);
    painter.drawText(label, (by_row ? Qt::AlignHCenter : Qt::AlignRight) | Qt::AlignVCenter, QString::number(c));
  }
  if (by_row) {
    painter.drawText(L.members_title, Qt::AlignLeft | Qt::AlignTop | Qt::TextWordWrap,
                     QStringLiteral("cluster members after routing: a row per query token; left half: query, right half: "
                                    "key; × unrouted"));
  } else {
    draw_text_line(painter, L.members_title, p.m.label,
                   QStringLiteral("cluster members after routing (upper half: query, lower half: key; × unrouted)"),
                   Qt::AlignHCenter | Qt::AlignVCenter);
  }
  const double cell = L.matrix.cell;
  const double mark = std::min(0.35 * p.m.line, std::max(cell, 2 * thin));
  painter.setPen(QPen(p.style.foreground, thin));
  for (int i : t.unrouted_queries) {
    const QPointF centre = by_row ? QPointF(grid.right() + 0.2 * p.m.line + 0.5 * mark, grid.top() + (i + 0.5) * cell)
                                  : QPointF(grid.left() + (i + 0.5) * cell, grid.bottom() + 0.2 * p.m.line + 0.5 * mark);
    painter.drawLine(centre + QPointF(-0.5 * mark, -0.5 * mark), centre + QPointF(0.5 * mark, 0.5 * mark));
    painter.drawLine(centre + QPointF(0.5 * mark, -0.5 * mark), centre + QPointF(-0.5 * mark, 0.5 * mark));
  }
  if (p.highlighted >= 0 && p.highlighted < tokens) {
    painter.setPen(QPen(p.style.foreground, 2.0 * thin));
    painter.setBrush(Qt::NoBrush);
    painter.drawRect(by_row ? QRectF(grid.left(), grid.top() + p.highlighted * cell, grid.width(), cell)
                            : QRectF(grid.left() + p.highlighted * cell, grid.top(), cell, grid.height()));
  }
}

}  // namespace

void draw_routing_figure(QPainter& painter, const QRectF& target, const RoutingFigureData& data, const FigureStyle& style,
                         const RoutingFigureOptions& options) {
  const FigureScope scope(painter, target, style);
  const Metrics m = measure(style, painter.device());
  const RoutingFigureLayout layout = compute_routing_layout(data, style, target, painter.device());
  const int tokens = data.matrix ? data.matrix->rows : 0;
  const int highlighted = options.highlighted >= 0 && options.highlighted < tokens ? options.highlighted : -1;
  const Painting p{painter, data, style, layout, m, shown_step(data, options), highlighted};
  draw_header(p);
  draw_heatmap_figure(painter, layout.heatmap, *data.matrix, with_highlight(style, highlighted));
  if (!data.local() && layout.scatter.width() > 0) {
    draw_scatter(p);
    draw_histogram(p);
    draw_legend(p);
    draw_members(p);
  }
}

int routing_token_at(const RoutingFigureLayout& layout, const RoutingFigureData& data, QPointF pos) {
  const int tokens = data.matrix ? data.matrix->rows : 0;
  if (layout.matrix.matrix.contains(pos) && layout.matrix.cell > 0) {
    const int row = static_cast<int>((pos.y() - layout.matrix.matrix.top()) / layout.matrix.cell);
    return row >= 0 && row < tokens ? row : -1;
  }
  if (data.local()) return -1;
  if (layout.members.contains(pos) && layout.matrix.cell > 0) {
    const double along = layout.members_by_row ? pos.y() - layout.members.top() : pos.x() - layout.members.left();
    const int token = static_cast<int>(along / layout.matrix.cell);
    return token >= 0 && token < tokens ? token : -1;
  }
  if (layout.scatter.contains(pos)) {
    const RoutingHeadTrace& t = data.trace();
    const double reach = std::max(1.5 * layout.marker, 0.4 * layout.line);
    double best = reach * reach;
    int found = -1;
    const auto consider = [&](const RowMatrix& xy, Eigen::Index i) {
      const QPointF d = layout.to_scatter(xy(i, 0), xy(i, 1)) - pos;
      const double dist = d.x() * d.x() + d.y() * d.y();
      if (dist < best) best = dist, found = static_cast<int>(i);
    };
    for (Eigen::Index i = 0; i < t.query_xy.rows(); ++i) consider(t.query_xy, i);
    for (Eigen::Index j = 0; j < t.key_xy.rows(); ++j) {
      if (t.nearest_key_cluster(0, j) >= 0) consider(t.key_xy, j);
    }
    return found < tokens ? found : -1;
  }
  return -1;
}

PaintedFigure routing_painted_figure(const RoutingFigureData& data, const FigureStyle& style,
                                     const RoutingFigureOptions& options) {
  return PaintedFigure{routing_figure_size(data, style), QStringLiteral("AttnLab: routing clusters, ") + data.variant_title,
                       settings_text(data), style.background, [data, style, options](QPainter& painter, const QRectF& target) {
                         draw_routing_figure(painter, target, data, style, options);
                       }};
}

}  // namespace attnlab
