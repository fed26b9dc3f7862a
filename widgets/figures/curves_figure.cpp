#include "figures/curves_figure.h"

#include <QFileInfo>
#include <QFontMetricsF>
#include <QPainter>
#include <QPainterPath>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/memory_meter.h"
#include "figures/plot_frame.h"

namespace attnlab {
namespace {

// Lengths in label line heights.
constexpr double kChartGapLines = 2.5;
constexpr double kLegendRowLines = 1.2;
constexpr double kLegendSampleLines = 1.6;
constexpr double kLegendSpacingLines = 1.5;
constexpr double kMarkerLines = 0.75;
constexpr double kDotLines = 0.22;
constexpr double kLineLines = 0.12;
constexpr double kWhiskerLines = 0.06;
constexpr double kReferenceLines = 0.08;
constexpr double kHitLines = 0.7;
constexpr int kReferenceSamples = 64;

const QString kFrontierLegend = QStringLiteral("not run: out of memory, refused or past the time budget");

bool drawable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

QString minus_signs(QString text) { return text.replace(QLatin1Char('-'), QChar(0x2212)); }

QString count_text(double v) {
  const auto n = static_cast<std::int64_t>(std::llround(v));
  if (std::abs(v - static_cast<double>(n)) < 1e-9 && n > 0) {
    if (n % (std::int64_t{1} << 20) == 0) return QStringLiteral("%1M").arg(n >> 20);
    if (n % 1024 == 0) return QStringLiteral("%1k").arg(n >> 10);
  }
  return minus_signs(QString::number(v, 'g', 6));
}

bool is_decade(double v) { return std::abs(std::log10(v) - std::round(std::log10(v))) < 1e-9; }

QString bytes_decade_text(double v) {
  if (!is_decade(v)) return curves_bytes_text(static_cast<std::int64_t>(std::llround(v)));
  const int e = static_cast<int>(std::lround(std::log10(v)));
  static const char* const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  if (e < 0) return decade_label(e) + QStringLiteral(" B");
  const int unit = std::min(e / 3, 5);
  return QStringLiteral("%1 %2").arg(static_cast<qint64>(std::llround(std::pow(10.0, e - 3 * unit)))).arg(QLatin1String(units[unit]));
}

QString tick_text(double v, const PlotAxis& axis, CurveTicks as) {
  switch (as) {
    case CurveTicks::Count: return count_text(v);
    case CurveTicks::Bytes:
      if (axis.log) return bytes_decade_text(v);
      return curves_bytes_text(static_cast<std::int64_t>(std::llround(v)));
    case CurveTicks::Plain: break;
  }
  if (axis.log && is_decade(v)) return decade_label(static_cast<int>(std::lround(std::log10(v))));
  return minus_signs(QString::number(v, 'g', 6));
}

// The chart's drawable points as (x, y), whiskers included in y.
void extent(const CurveChart& chart, bool x_axis, double& lo, double& hi) {
  lo = std::numeric_limits<double>::infinity();
  hi = -lo;
  const bool log = x_axis ? chart.log_x : chart.log_y;
  const auto take = [&](double v) {
    if (!drawable(v, log)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  };
  for (const CurveSeries& s : chart.series) {
    for (const CurveMark& p : s.points) {
      if (!drawable(p.x, chart.log_x) || !drawable(p.y, chart.log_y)) continue;
      if (x_axis) {
        take(p.x);
      } else {
        take(p.y);
        if (p.high > p.low && p.low > 0) {
          take(p.low);
          take(p.high);
        }
      }
    }
    if (x_axis)
      for (const CurveFrontierMark& f : s.frontier) take(f.x);
  }
  if (x_axis)
    for (double t : chart.x_ticks) take(t);
}

bool has_frontier(const CurveChart& chart) {
  for (const CurveSeries& s : chart.series)
    if (!s.frontier.empty()) return true;
  return false;
}

bool has_points(const CurveChart& chart) {
  for (const CurveSeries& s : chart.series)
    for (const CurveMark& p : s.points)
      if (drawable(p.x, chart.log_x) && drawable(p.y, chart.log_y)) return true;
  return false;
}

PlotAxis x_axis_of(const CurveChart& chart) {
  double lo, hi;
  extent(chart, true, lo, hi);
  if (!std::isfinite(lo)) return chart.log_x ? decade_axis(1, 10) : nice_linear_axis(0, 1, 5);
  if (!chart.log_x) return nice_linear_axis(std::min(0.0, lo), hi, 6);
  PlotAxis axis;
  axis.log = true;
  const double pad = hi > lo ? std::pow(hi / lo, 0.05) : 2.0;
  axis.lo = lo / pad;
  axis.hi = hi * pad;
  if (!chart.x_ticks.empty()) {
    axis.ticks = chart.x_ticks;
    std::sort(axis.ticks.begin(), axis.ticks.end());
  } else {
    for (const double t : decade_axis(lo, hi).ticks)
      if (t >= axis.lo && t <= axis.hi) axis.ticks.push_back(t);
  }
  return axis;
}

// A logarithmic axis over [lo, hi] with a little room, ticks at the decades inside it (and at
// 2 and 5 times them when fewer than two decades fall inside).
PlotAxis padded_log_axis(double lo, double hi, double top_room) {
  PlotAxis axis;
  axis.log = true;
  const double span = std::max(hi / lo, 10.0);
  axis.lo = lo / std::pow(span, 0.06);
  axis.hi = hi * std::pow(span, 0.06 + top_room);
  const auto decade_ticks = [&](std::initializer_list<double> mantissas) {
    std::vector<double> ticks;
    for (int e = static_cast<int>(std::floor(std::log10(axis.lo))); e <= static_cast<int>(std::ceil(std::log10(axis.hi))); ++e)
      for (const double m : mantissas) {
        const double v = m * std::pow(10.0, e);
        if (v >= axis.lo && v <= axis.hi) ticks.push_back(v);
      }
    return ticks;
  };
  axis.ticks = decade_ticks({1.0});
  if (axis.ticks.size() < 3) axis.ticks = decade_ticks({1.0, 2.0, 5.0});
  return axis;
}

PlotAxis y_axis_of(const CurveChart& chart) {
  double lo, hi;
  extent(chart, false, lo, hi);
  if (!std::isfinite(lo)) return chart.log_y ? decade_axis(1, 10) : nice_linear_axis(0, 1, 5);
  // Room above the data for the ✕ row.
  if (!chart.log_y) return nice_linear_axis(std::min(0.0, lo), hi * (has_frontier(chart) ? 1.12 : 1.0), 5);
  return padded_log_axis(lo, hi, has_frontier(chart) ? 0.1 : 0.0);
}

struct ChartTicks {
  std::vector<AxisTick> x, y;
};

// Ticks labelled per the chart, thinned so that labels keep a line apart.
ChartTicks ticks_for(const CurveChart& chart, const PlotAxis& xa, const PlotAxis& ya, const QRectF& plot, const QFontMetricsF& fm,
                     double line) {
  ChartTicks out;
  double last_right = -std::numeric_limits<double>::infinity();
  for (const double v : xa.ticks) {
    if (v < xa.lo || v > xa.hi) continue;
    const QString text = tick_text(v, xa, chart.x_ticks_as);
    const double px = plot.left() + xa.fraction(v) * plot.width();
    const double half = 0.5 * fm.horizontalAdvance(text);
    if (px - half < last_right + 0.6 * line) continue;
    out.x.push_back({v, text});
    last_right = px + half;
  }
  std::vector<AxisTick> y;
  for (const double v : ya.ticks) y.push_back({v, tick_text(v, ya, chart.y_ticks_as)});
  out.y = thinned_ticks(y, plot.height(), 1.4 * line);
  return out;
}

QStringList y_tick_texts(const CurveChart& chart, const PlotAxis& ya) {
  QStringList texts;
  for (const double v : ya.ticks) texts << tick_text(v, ya, chart.y_ticks_as);
  return texts;
}

struct LegendEntry {
  QString text;
  QColor color;
  bool frontier = false;
};

std::vector<LegendEntry> legend_entries(const CurveChart& chart, const FigureStyle& style) {
  std::vector<LegendEntry> out;
  for (const CurveSeries& s : chart.series) out.push_back({s.name, s.color, false});
  if (has_frontier(chart)) out.push_back({kFrontierLegend, style.foreground, true});
  return out;
}

double entry_width(const LegendEntry& e, const QFontMetricsF& fm, const FigureText& t) {
  return kLegendSampleLines * t.line + t.gap + fm.horizontalAdvance(e.text);
}

// Rows of entries flowed into `width`; each row lists entry indices.
std::vector<std::vector<std::size_t>> legend_rows(const std::vector<LegendEntry>& entries, double width, const QFontMetricsF& fm,
                                                  const FigureText& t) {
  std::vector<std::vector<std::size_t>> rows;
  double x = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    // Half a line of slack: text shaped for drawing can come out a hair wider than measured.
    const double w = entry_width(entries[i], fm, t) + 0.5 * t.line;
    if (rows.empty() || (x > 0 && x + w > width)) {
      rows.emplace_back();
      x = 0;
    }
    rows.back().push_back(i);
    x += w - 0.5 * t.line + kLegendSpacingLines * t.line;
  }
  return rows;
}

// The room left of the plot for this chart's y labels and title.
double plot_left_room(const CurveChart& chart, const PlotAxis& ya, const FigureText& t, const QPaintDevice* device) {
  return plot_frame_room(t, device, y_tick_texts(chart, ya)).left;
}

// The summary takes two lines where one is too narrow for it.
double summary_lines(const QString& summary, double width, const QFontMetricsF& fm) {
  return fm.horizontalAdvance(summary) > width ? 2.0 : 1.0;
}

double reference_factor(const CurveReference& r, double x) {
  double f = std::pow(x, r.exponent);
  if (r.log_factor) f *= std::log(x);
  return f;
}

// Earlier series are drawn a little wider, so that a later one on the same values leaves a rim
// of the earlier colour around it instead of hiding it.
double series_widening(std::size_t index, std::size_t count) {
  if (count < 2) return 1.0;
  return 1.0 + 0.6 * static_cast<double>(count - 1 - index) / static_cast<double>(count - 1);
}

void draw_cross(QPainter& painter, const QPointF& c, double size, const QColor& colour, double width) {
  painter.setPen(QPen(colour, width, Qt::SolidLine, Qt::RoundCap));
  const double h = 0.5 * size;
  painter.drawLine(QPointF(c.x() - h, c.y() - h), QPointF(c.x() + h, c.y() + h));
  painter.drawLine(QPointF(c.x() - h, c.y() + h), QPointF(c.x() + h, c.y() - h));
}

}  // namespace

// ---- layout ------------------------------------------------------------------------------------------

QPointF CurveChartLayout::frontier_centre(double vx, int stack) const {
  return QPointF(plot.left() + x.fraction(vx) * plot.width(), plot.top() + marker * (0.75 + 1.15 * stack));
}

int CurvesFigureLayout::marker_at(const QPointF& pos) const {
  int best = -1;
  double best_d = hit_radius;
  for (std::size_t i = 0; i < markers.size(); ++i) {
    const double d = std::hypot(markers[i].centre.x() - pos.x(), markers[i].centre.y() - pos.y());
    if (d <= best_d) {
      best_d = d;
      best = static_cast<int>(i);
    }
  }
  return best;
}

const CurvesMarker* CurvesFigureLayout::frontier_marker(int chart, int series, double vx) const {
  for (const CurvesMarker& m : markers) {
    if (!m.frontier || m.chart != chart || m.series != series) continue;
    const double px = charts[static_cast<std::size_t>(chart)].map(vx, 1).x();
    if (std::abs(m.centre.x() - px) < 0.5) return &m;
  }
  return nullptr;
}

CurvesFigureLayout compute_curves_layout(const CurvesFigureData& data, const FigureStyle& style, const QRectF& target,
                                         const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  const QFontMetricsF fm(t.label, device);
  CurvesFigureLayout layout;
  layout.figure = target;
  layout.hit_radius = kHitLines * t.line;
  layout.title = QRectF(target.left() + t.margin, target.top() + t.margin, target.width() - 2 * t.margin, t.title_line);
  const double summary_h = summary_lines(data.summary, target.width() - 2 * t.margin, fm) * t.line;
  layout.summary = QRectF(target.left() + t.margin, target.bottom() - t.margin - summary_h, target.width() - 2 * t.margin, summary_h);
  const QRectF body(layout.title.left(), layout.title.bottom() + t.gap, layout.title.width(),
                    std::max(0.0, layout.summary.top() - t.gap - (layout.title.bottom() + t.gap)));
  const auto n = static_cast<int>(data.charts.size());
  if (n == 0) return layout;
  const double gap = kChartGapLines * t.line;
  const double chart_w = std::max(0.0, (body.width() - (n - 1) * gap) / n);

  // Axes first (they set the y labels' room), then one legend height for all charts so that the
  // plots line up.
  std::vector<PlotAxis> xs, ys;
  std::vector<double> lefts;
  std::size_t legend_lines = 0;
  for (const CurveChart& chart : data.charts) {
    xs.push_back(x_axis_of(chart));
    ys.push_back(y_axis_of(chart));
    lefts.push_back(plot_left_room(chart, ys.back(), t, device));
    const double legend_w = std::max(0.0, chart_w - lefts.back());
    legend_lines = std::max(legend_lines, legend_rows(legend_entries(chart, style), legend_w, fm, t).size());
  }
  const double legend_h = static_cast<double>(legend_lines) * kLegendRowLines * t.line;
  const PlotFrameRoom room = plot_frame_room(t, device, {});
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    CurveChartLayout c;
    c.outer = QRectF(body.left() + i * (chart_w + gap), body.top(), chart_w, body.height());
    c.x = xs[k];
    c.y = ys[k];
    c.marker = kMarkerLines * t.line;
    const double plot_top = c.outer.top() + t.line + t.gap;
    const double plot_bottom = c.outer.bottom() - legend_h - (legend_lines > 0 ? t.gap : 0.0) - room.bottom;
    c.plot = QRectF(c.outer.left() + lefts[k], plot_top, std::max(0.0, chart_w - lefts[k] - 0.5 * t.line),
                    std::max(0.0, plot_bottom - plot_top));
    c.caption = QRectF(c.plot.left(), c.outer.top(), c.plot.width(), t.line);
    c.legend = QRectF(c.plot.left(), c.plot.bottom() + room.bottom + t.gap, chart_w - lefts[k], legend_h);
    layout.charts.push_back(c);
  }

  // Markers: points, then the ✕ row of every chart.
  for (int i = 0; i < n; ++i) {
    const CurveChart& chart = data.charts[static_cast<std::size_t>(i)];
    const CurveChartLayout& c = layout.charts[static_cast<std::size_t>(i)];
    for (std::size_t s = 0; s < chart.series.size(); ++s) {
      const CurveSeries& series = chart.series[s];
      for (std::size_t p = 0; p < series.points.size(); ++p) {
        const CurveMark& m = series.points[p];
        if (!drawable(m.x, chart.log_x) || !drawable(m.y, chart.log_y)) continue;
        layout.markers.push_back({i, static_cast<int>(s), static_cast<int>(p), false, c.map(m.x, m.y), m.tip});
      }
    }
    std::map<double, int> stacked;  // x -> ✕ already at it
    for (std::size_t s = 0; s < chart.series.size(); ++s) {
      const CurveSeries& series = chart.series[s];
      for (std::size_t p = 0; p < series.frontier.size(); ++p) {
        const CurveFrontierMark& f = series.frontier[p];
        if (!drawable(f.x, chart.log_x)) continue;
        const int stack = stacked[f.x]++;
        layout.markers.push_back({i, static_cast<int>(s), static_cast<int>(p), true, c.frontier_centre(f.x, stack), f.tip});
      }
    }
  }
  return layout;
}

QSizeF curves_figure_size(const CurvesFigureData& data, const FigureStyle& style) {
  const QImage device = measuring_device();
  const FigureText t = measure_figure_text(style, &device);
  const QFontMetricsF fm(t.label, &device);
  const double n = std::max<double>(1.0, static_cast<double>(data.charts.size()));
  // About the aspect of the panel's figure area (a dock of ~1360 x 780 px less its controls).
  const double width_lines = n > 1 ? 34.0 * n : 48.0;
  const double chart_w = (width_lines * t.line - 2 * t.margin - (n - 1) * kChartGapLines * t.line) / n;
  std::size_t legend_lines = 0;
  for (const CurveChart& chart : data.charts) {
    const double left = plot_left_room(chart, y_axis_of(chart), t, &device);
    legend_lines = std::max(legend_lines, legend_rows(legend_entries(chart, style), chart_w - left, fm, t).size());
  }
  const double height_lines = (n > 1 ? 37.0 : 32.0) + kLegendRowLines * static_cast<double>(legend_lines) +
                              summary_lines(data.summary, width_lines * t.line - 2 * t.margin, fm);
  return measured_size_in_points(QSizeF(width_lines * t.line, height_lines * t.line));
}

// ---- drawing -----------------------------------------------------------------------------------------

QColor curves_series_color(int index) {
  static const OkabeIto order[] = {OkabeIto::Blue,        OkabeIto::Vermillion, OkabeIto::BluishGreen, OkabeIto::ReddishPurple,
                                   OkabeIto::Orange,      OkabeIto::SkyBlue,    OkabeIto::Grey,        OkabeIto::Yellow};
  const int count = static_cast<int>(std::size(order));
  return okabe_ito(order[((index % count) + count) % count]);
}

QColor curves_reference_color(const FigureStyle& style) {
  QColor c = style.foreground;
  c.setAlphaF(0.55f);
  return c;
}

namespace {

struct ReferenceLabel {
  QRectF box;
  QString text;
};

// The dashed lines; returns where their labels go (drawn over the series by draw_reference_labels).
// `keep_clear`: the ✕ marks, which labels must not cover.
std::vector<ReferenceLabel> draw_references(QPainter& painter, const CurveChart& chart, const CurveChartLayout& c,
                                            const FigureText& t, const FigureStyle& style,
                                            const std::vector<QRectF>& keep_clear) {
  std::vector<ReferenceLabel> labels;
  const QColor colour = curves_reference_color(style);
  const QFontMetricsF fm(t.small, painter.device());
  std::vector<QRectF> placed = keep_clear;
  for (const CurveReference& r : chart.references) {
    if (!drawable(r.x0, c.x.log) || !drawable(r.y0, c.y.log) || !(c.x.hi > r.x0)) continue;
    const double f0 = reference_factor(r, r.x0);
    if (!(f0 > 0)) continue;
    QPainterPath path;
    QPointF last_inside;
    bool inside = false;
    for (int i = 0; i <= kReferenceSamples; ++i) {
      const double x = c.x.log ? r.x0 * std::pow(c.x.hi / r.x0, static_cast<double>(i) / kReferenceSamples)
                               : r.x0 + (c.x.hi - r.x0) * i / kReferenceSamples;
      const double y = r.y0 * reference_factor(r, x) / f0;
      if (!drawable(y, c.y.log)) continue;
      const QPointF p = c.map(x, y);
      if (i == 0) path.moveTo(p);
      else path.lineTo(p);
      if (y <= c.y.hi && y >= c.y.lo) {
        last_inside = p;
        inside = true;
      }
      if (y > c.y.hi) break;  // the rest lies above the plot
    }
    QPen pen(colour, kReferenceLines * t.line, Qt::DashLine);
    painter.setPen(pen);
    painter.setBrush(Qt::NoBrush);
    painter.drawPath(path);
    if (!inside) continue;
    // The label where the line leaves the plot, left of its end, moved off earlier labels.
    const double w = fm.horizontalAdvance(r.label) + 0.3 * t.line;
    QRectF box(last_inside.x() - w - 0.2 * t.line, last_inside.y() - t.small_line - 0.1 * t.line, w, t.small_line);
    if (box.top() < c.plot.top()) box.moveTop(last_inside.y() + 0.2 * t.line);
    if (box.left() < c.plot.left()) box.moveLeft(c.plot.left() + 0.2 * t.line);
    for (const double dy : {0.0, 1.0, -1.0, 2.0, -2.0, 3.0, 4.0}) {
      const QRectF tried = box.translated(0, dy * t.small_line);
      const bool clear = std::none_of(placed.begin(), placed.end(), [&](const QRectF& q) { return q.intersects(tried); });
      if (clear && c.plot.contains(tried)) {
        box = tried;
        break;
      }
    }
    placed.push_back(box);
    labels.push_back({box, r.label});
  }
  return labels;
}

// On a translucent backing, so that a series crossing a label leaves it legible.
void draw_reference_labels(QPainter& painter, const std::vector<ReferenceLabel>& labels, const FigureText& t,
                           const FigureStyle& style) {
  QColor backing = style.background;
  backing.setAlphaF(0.75f);
  painter.setFont(t.small);
  for (const ReferenceLabel& l : labels) {
    const QFontMetricsF fm(t.small, painter.device());
    const double w = fm.horizontalAdvance(l.text);
    painter.fillRect(QRectF(l.box.right() - w - 0.1 * t.line, l.box.top(), w + 0.2 * t.line, l.box.height()), backing);
    painter.setPen(curves_reference_color(style));
    painter.drawText(l.box, Qt::AlignRight | Qt::AlignVCenter, l.text);
  }
}

void draw_series(QPainter& painter, const CurveChart& chart, const CurveChartLayout& c, const FigureText& t) {
  for (std::size_t k = 0; k < chart.series.size(); ++k) {
    const CurveSeries& s = chart.series[k];
    const double widen = series_widening(k, chart.series.size());
    QPainterPath path;
    bool started = false;
    std::vector<QPointF> dots;
    painter.setPen(QPen(s.color, kWhiskerLines * t.line));
    for (const CurveMark& p : s.points) {
      if (!drawable(p.x, chart.log_x) || !drawable(p.y, chart.log_y)) continue;
      const QPointF px = c.map(p.x, p.y);
      if (p.high > p.low && drawable(p.low, chart.log_y)) {
        const QPointF a = c.map(p.x, p.low), b = c.map(p.x, p.high);
        const double cap = 0.25 * t.line;
        painter.drawLine(a, b);
        painter.drawLine(QPointF(a.x() - cap, a.y()), QPointF(a.x() + cap, a.y()));
        painter.drawLine(QPointF(b.x() - cap, b.y()), QPointF(b.x() + cap, b.y()));
      }
      if (started) path.lineTo(px);
      else path.moveTo(px);
      started = true;
      dots.push_back(px);
    }
    painter.setPen(QPen(s.color, widen * kLineLines * t.line, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin));
    painter.setBrush(Qt::NoBrush);
    painter.drawPath(path);
    painter.setPen(Qt::NoPen);
    painter.setBrush(s.color);
    for (const QPointF& d : dots) painter.drawEllipse(d, widen * kDotLines * t.line, widen * kDotLines * t.line);
  }
}

void draw_legend(QPainter& painter, const CurveChart& chart, const CurveChartLayout& c, const FigureText& t,
                 const FigureStyle& style) {
  const std::vector<LegendEntry> entries = legend_entries(chart, style);
  const QFontMetricsF fm(t.label, painter.device());
  const auto rows = legend_rows(entries, c.legend.width(), fm, t);
  double y = c.legend.top();
  for (const auto& row : rows) {
    double x = c.legend.left();
    for (const std::size_t i : row) {
      const LegendEntry& e = entries[i];
      const QRectF sample(x, y, kLegendSampleLines * t.line, t.line);
      if (e.frontier) {
        draw_cross(painter, sample.center(), kMarkerLines * t.line, e.color, 0.14 * t.line);
      } else {
        painter.setPen(QPen(e.color, kLineLines * t.line));
        painter.drawLine(QPointF(sample.left(), sample.center().y()), QPointF(sample.right(), sample.center().y()));
        painter.setPen(Qt::NoPen);
        painter.setBrush(e.color);
        painter.drawEllipse(sample.center(), kDotLines * t.line, kDotLines * t.line);
      }
      const double text_w = std::min(fm.horizontalAdvance(e.text) + 0.5 * t.line, c.legend.right() - (sample.right() + t.gap));
      painter.setPen(style.foreground);
      draw_text_line(painter, QRectF(sample.right() + t.gap, y, std::max(0.0, text_w), t.line), t.label, e.text);
      x = sample.right() + t.gap + fm.horizontalAdvance(e.text) + kLegendSpacingLines * t.line;
    }
    y += kLegendRowLines * t.line;
  }
}

}  // namespace

void draw_curves_figure(QPainter& painter, const QRectF& target, const CurvesFigureData& data, const FigureStyle& style) {
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const QFontMetricsF fm(t.label, painter.device());
  const CurvesFigureLayout layout = compute_curves_layout(data, style, target, painter.device());

  painter.setPen(style.foreground);
  draw_text_line(painter, layout.title, t.title, data.title, Qt::AlignHCenter | Qt::AlignVCenter);

  for (std::size_t i = 0; i < layout.charts.size(); ++i) {
    const CurveChart& chart = data.charts[i];
    const CurveChartLayout& c = layout.charts[i];
    if (c.plot.width() <= 0 || c.plot.height() <= 0) continue;
    painter.setPen(style.foreground);
    draw_text_line(painter, c.caption, t.bold, chart.caption, Qt::AlignHCenter | Qt::AlignVCenter);
    const ChartTicks ticks = ticks_for(chart, c.x, c.y, c.plot, fm, t.line);
    PlotFrame frame;
    frame.x = c.x;
    frame.y = c.y;
    frame.x_ticks = ticks.x;
    frame.y_ticks = ticks.y;
    frame.x_title = chart.x_title;
    frame.y_title = chart.y_title;
    draw_plot_frame(painter, c.plot, frame, t, style);

    painter.save();
    painter.setClipRect(c.plot);
    std::vector<QRectF> crosses;
    for (const CurvesMarker& m : layout.markers)
      if (m.frontier && m.chart == static_cast<int>(i))
        crosses.emplace_back(m.centre.x() - c.marker, m.centre.y() - c.marker, 2 * c.marker, 2 * c.marker);
    const std::vector<ReferenceLabel> labels = draw_references(painter, chart, c, t, style, crosses);
    painter.setClipRect(c.plot.adjusted(-0.4 * t.line, -0.4 * t.line, 0.4 * t.line, 0.4 * t.line));
    draw_series(painter, chart, c, t);
    draw_reference_labels(painter, labels, t, style);
    painter.restore();
    if (!has_points(chart) && !chart.empty_note.isEmpty()) {
      QColor muted = style.foreground;
      muted.setAlphaF(0.6f);
      painter.setPen(muted);
      painter.setFont(t.label);
      painter.drawText(c.plot.adjusted(t.line, t.line, -t.line, -t.line), Qt::AlignCenter | Qt::TextWordWrap, chart.empty_note);
    }
    draw_legend(painter, chart, c, t, style);
  }
  // The ✕ marks over everything else in the plots.
  for (const CurvesMarker& m : layout.markers) {
    if (!m.frontier) continue;
    const CurveSeries& s = data.charts[static_cast<std::size_t>(m.chart)].series[static_cast<std::size_t>(m.series)];
    const bool first = s.frontier[static_cast<std::size_t>(m.index)].first;
    const double size = kMarkerLines * t.line * (first ? 1.0 : 0.6);
    draw_cross(painter, m.centre, size, s.color, (first ? 0.16 : 0.1) * t.line);
  }
  painter.setPen(style.foreground);
  painter.setFont(t.label);
  if (layout.summary.height() > 1.5 * t.line) {
    painter.drawText(layout.summary, Qt::AlignLeft | Qt::AlignTop | Qt::TextWordWrap, data.summary);
  } else {
    draw_text_line(painter, layout.summary, t.label, data.summary);
  }
}

PaintedFigure curves_painted_figure(CurvesFigureDataPtr data, const FigureStyle& style) {
  PaintedFigure figure;
  figure.size = curves_figure_size(*data, style);
  figure.title = data->title;
  figure.description = data->summary;
  figure.background = style.background;
  figure.draw = [data, style](QPainter& painter, const QRectF& target) { draw_curves_figure(painter, target, *data, style); };
  return figure;
}

QString curves_bytes_text(std::int64_t bytes) {
  char buffer[32];
  return QString::fromLatin1(memory::format_bytes(bytes, buffer, sizeof buffer));
}

// ---- length scaling ------------------------------------------------------------------------------------

namespace {

QString slope_text(double slope) { return minus_signs(QString::number(slope, 'f', 2)); }

QString ms_text(double ms) {
  if (ms >= 1000) return QStringLiteral("%1 s").arg(ms / 1000, 0, 'g', 3);
  if (ms < 0.1) return QStringLiteral("%1 µs").arg(ms * 1000, 0, 'g', 3);
  return QStringLiteral("%1 ms").arg(ms, 0, 'g', 3);
}

// The rows of `name`, by length.
template <typename Row, typename Key>
std::vector<const Row*> rows_of(const std::vector<Row>& rows, const std::string& name, Key key) {
  std::vector<const Row*> out;
  for (const Row& r : rows)
    if (key(r) == name) out.push_back(&r);
  return out;
}

QString length_tip(const ComplexityRow& r) {
  QString tip = QStringLiteral("%1 · L = %2").arg(QString::fromStdString(r.variant)).arg(r.length);
  if (r.status != "ok") return tip + QStringLiteral(" · ") + QString::fromStdString(r.status);
  tip += QStringLiteral(" · median %1 (%2–%3)").arg(ms_text(r.median_ms), ms_text(r.min_ms), ms_text(r.max_ms));
  tip += QStringLiteral(" · peak %1").arg(curves_bytes_text(r.peak_bytes));
  if (r.estimated_bytes > 0) tip += QStringLiteral(" · estimate %1").arg(curves_bytes_text(r.estimated_bytes));
  if (r.high_water_bytes > 0) tip += QStringLiteral(" · process high-water +%1").arg(curves_bytes_text(r.high_water_bytes));
  return tip;
}

std::vector<CurveReference> complexity_references(double x0, double y0) {
  return {{QStringLiteral("O(L)"), x0, y0, 1.0, false},
          {QStringLiteral("O(L log L)"), x0, y0, 1.0, true},
          {QStringLiteral("O(L^1.5)"), x0, y0, 1.5, false},
          {QStringLiteral("O(L²)"), x0, y0, 2.0, false}};
}

// Through the first drawable point of the first series that has one.
void anchor_references(CurveChart& chart) {
  for (const CurveSeries& s : chart.series) {
    for (const CurveMark& p : s.points) {
      if (drawable(p.x, chart.log_x) && drawable(p.y, chart.log_y)) {
        chart.references = complexity_references(p.x, p.y);
        return;
      }
    }
  }
}

QString device_text(DevicePreference d) { return d == DevicePreference::Cuda ? QStringLiteral("cuda") : QStringLiteral("cpu"); }

}  // namespace

QString complexity_legend_name(const std::string& variant, const ComplexityFit& fit, bool memory) {
  const QString name = QString::fromStdString(variant);
  if (fit.points < 2) return name;
  return QStringLiteral("%1  slope %2").arg(name, slope_text(memory ? fit.memory_slope : fit.time_slope));
}

ComplexityResult complexity_result(const ComplexityOptions& options, const std::vector<ComplexityRow>& rows) {
  ComplexityResult r;
  r.rows = rows;
  for (const std::string& v : options.variants) r.fits.push_back(fit_complexity(v, rows));
  return r;
}

CurvesFigureData length_curves_data(const ComplexityOptions& o, const std::vector<ComplexityRow>& rows) {
  CurvesFigureData d;
  d.title = QStringLiteral("Measured time and peak memory against sequence length");
  CurveChart time, memory;
  time.caption = QStringLiteral("Time per call");
  time.y_title = QStringLiteral("median time (ms)");
  memory.caption = QStringLiteral("Peak memory of the call");
  memory.y_title = QStringLiteral("peak bytes (engine allocator)");
  for (CurveChart* c : {&time, &memory}) {
    c->x_title = QStringLiteral("sequence length L");
    c->x_ticks_as = CurveTicks::Count;
  }
  memory.y_ticks_as = CurveTicks::Bytes;
  time.empty_note = QStringLiteral("No call has finished yet.");
  memory.empty_note = o.device == DevicePreference::Cuda ? QStringLiteral("On CUDA, GPU memory is measured for model presets (their device allocator); the kernels of single variants report time only.")
                                                         : QStringLiteral("No call has finished yet.");
  std::vector<double> ticks;
  for (std::size_t i = 0; i < o.variants.size(); ++i) {
    const std::string& name = o.variants[i];
    std::vector<const ComplexityRow*> mine = rows_of(rows, name, [](const ComplexityRow& r) { return r.variant; });
    std::stable_sort(mine.begin(), mine.end(), [](const ComplexityRow* a, const ComplexityRow* b) { return a->length < b->length; });
    const ComplexityFit fit = fit_complexity(name, rows);
    CurveSeries ts{complexity_legend_name(name, fit, false), curves_series_color(static_cast<int>(i)), {}, {}};
    CurveSeries ms{complexity_legend_name(name, fit, true), ts.color, {}, {}};
    bool stopped = false;
    for (const ComplexityRow* r : mine) {
      const auto L = static_cast<double>(r->length);
      if (std::find(ticks.begin(), ticks.end(), L) == ticks.end()) ticks.push_back(L);
      const QString tip = length_tip(*r);
      if (r->status != "ok") {
        ts.frontier.push_back({L, !stopped, tip});
        ms.frontier.push_back({L, !stopped, tip});
        stopped = true;
        continue;
      }
      ts.points.push_back({L, r->median_ms, r->min_ms, r->max_ms, tip});
      if (r->peak_bytes > 0) ms.points.push_back({L, static_cast<double>(r->peak_bytes), 0, 0, tip});
    }
    time.series.push_back(std::move(ts));
    memory.series.push_back(std::move(ms));
  }
  for (const std::int64_t L : o.lengths)
    if (std::find(ticks.begin(), ticks.end(), static_cast<double>(L)) == ticks.end()) ticks.push_back(static_cast<double>(L));
  std::sort(ticks.begin(), ticks.end());
  time.x_ticks = memory.x_ticks = ticks;
  anchor_references(time);
  anchor_references(memory);
  d.summary = QStringLiteral("d = %1, %2 head%3%4, %5 · median of %6 call%7 after a warm-up, budget %8 a call · slope: "
                             "log-log least squares over the largest half of the lengths · dashed: complexity classes "
                             "through the first point")
                  .arg(o.dim)
                  .arg(o.heads)
                  .arg(o.heads == 1 ? "" : "s")
                  .arg(o.causal ? QStringLiteral(", causal") : QString())
                  .arg(device_text(o.device))
                  .arg(o.repeats)
                  .arg(o.repeats == 1 ? "" : "s")
                  .arg(ms_text(o.time_budget_ms));
  d.charts = {std::move(time), std::move(memory)};
  return d;
}

PaintedFigure length_curves_figure(const ComplexityOptions& options, const std::vector<ComplexityRow>& rows,
                                   const FigureStyle& style) {
  return curves_painted_figure(std::make_shared<const CurvesFigureData>(length_curves_data(options, rows)), style);
}

namespace {

QByteArray number_field(double v) { return QByteArray::number(v, 'g', 17); }
QByteArray integer_field(std::int64_t v) { return QByteArray::number(static_cast<qlonglong>(v)); }

QString suffix_of(const QString& path) { return QFileInfo(path).suffix().toLower(); }

bool is_figure_suffix(const QString& s) {
  return s == QLatin1String("png") || s == QLatin1String("svg") || s == QLatin1String("pdf");
}

[[noreturn]] void bad_extension(const QString& what, const QString& path) {
  throw ParamError(QStringLiteral("cannot export the %1 to '%2': allowed extensions .png, .svg, .pdf, .json, .csv")
                       .arg(what, path)
                       .toStdString());
}

void write_json(const QString& path, const nlohmann::json& j) {
  write_bytes_atomically(path, QByteArray::fromStdString(j.dump(1) + "\n"));
}

}  // namespace

QByteArray length_curves_csv(const std::vector<ComplexityRow>& rows) {
  QByteArray out = "variant,length,device,status,median_ms,min_ms,max_ms,peak_bytes,estimated_bytes,high_water_bytes\r\n";
  for (const ComplexityRow& r : rows) {
    out += csv_field(QString::fromStdString(r.variant)) + ',' + integer_field(r.length) + ',' +
           csv_field(QString::fromStdString(r.device)) + ',' + csv_field(QString::fromStdString(r.status)) + ',' +
           number_field(r.median_ms) + ',' + number_field(r.min_ms) + ',' + number_field(r.max_ms) + ',' +
           integer_field(r.peak_bytes) + ',' + integer_field(r.estimated_bytes) + ',' + integer_field(r.high_water_bytes) +
           "\r\n";
  }
  return out;
}

void export_length_curves(const ComplexityOptions& options, const std::vector<ComplexityRow>& rows, const QString& path,
                          const ExportOptions& export_options) {
  const QString suffix = suffix_of(path);
  if (!is_figure_suffix(suffix) && suffix != QLatin1String("json") && suffix != QLatin1String("csv"))
    bad_extension(QStringLiteral("length curves"), path);
  if (rows.empty()) throw ParamError("nothing to export: run the length scaling first");
  if (suffix == QLatin1String("json")) {
    write_json(path, complexity_to_json(options, complexity_result(options, rows)));
  } else if (suffix == QLatin1String("csv")) {
    write_bytes_atomically(path, length_curves_csv(rows));
  } else {
    export_figure(length_curves_figure(options, rows, export_options.style), path, export_options);
  }
}

// ---- decoding ----------------------------------------------------------------------------------------

namespace {

QString ratio_text(double r) {
  if (r >= 10) return QStringLiteral("×%1").arg(r, 0, 'f', 0);
  if (r >= 1) return QStringLiteral("×%1").arg(r, 0, 'f', 1);
  return QStringLiteral("×%1").arg(r, 0, 'g', 2);
}

QString decoding_tip(const DecodingRow& r) {
  QString tip = QStringLiteral("%1 · N = %2").arg(QString::fromStdString(r.method)).arg(r.tokens);
  if (r.status != "ok") return tip + QStringLiteral(" · ") + QString::fromStdString(r.status);
  return tip + QStringLiteral(" · %1 tokens/s · all steps %2 (%3–%4) · last step %5 · state %6")
                   .arg(r.tokens_per_second, 0, 'g', 3)
                   .arg(ms_text(r.median_ms), ms_text(r.min_ms), ms_text(r.max_ms), ms_text(r.last_step_us / 1000))
                   .arg(curves_bytes_text(r.state_bytes));
}

// The ok row of `method` at N, or nullptr.
const DecodingRow* ok_row(const std::vector<DecodingRow>& rows, const std::string& method, std::int64_t n) {
  for (const DecodingRow& r : rows)
    if (r.method == method && r.tokens == n && r.status == "ok") return &r;
  return nullptr;
}

}  // namespace

std::string decoding_reference_method(const DecodingOptions& options) {
  for (const std::string& m : options.methods)
    if (m == "softmax_kv_cache") return m;
  return options.methods.empty() ? std::string() : options.methods.front();
}

CurvesFigureData decoding_curves_data(const DecodingOptions& o, const std::vector<DecodingRow>& rows) {
  CurvesFigureData d;
  d.title = QStringLiteral("Autoregressive decoding: KV cache against the recurrent form");
  CurveChart speed, state;
  speed.caption = QStringLiteral("Generation speed");
  speed.y_title = QStringLiteral("tokens per second");
  state.caption = QStringLiteral("State or KV cache after N tokens");
  state.y_title = QStringLiteral("bytes held");
  state.y_ticks_as = CurveTicks::Bytes;
  for (CurveChart* c : {&speed, &state}) {
    c->x_title = QStringLiteral("tokens generated N");
    c->x_ticks_as = CurveTicks::Count;
    c->empty_note = QStringLiteral("No run has finished yet.");
  }
  const std::string reference = decoding_reference_method(o);
  std::vector<double> ticks;
  for (const std::int64_t n : o.tokens) ticks.push_back(static_cast<double>(n));
  for (std::size_t i = 0; i < o.methods.size(); ++i) {
    const std::string& name = o.methods[i];
    std::vector<const DecodingRow*> mine = rows_of(rows, name, [](const DecodingRow& r) { return r.method; });
    std::stable_sort(mine.begin(), mine.end(), [](const DecodingRow* a, const DecodingRow* b) { return a->tokens < b->tokens; });
    // The ratio to the reference at the largest N both ran.
    QString speed_name = QString::fromStdString(name), state_name = speed_name;
    if (name == reference) {
      if (o.methods.size() > 1) {
        speed_name += QStringLiteral("  (reference)");
        state_name += QStringLiteral("  (reference)");
      }
    } else {
      for (auto it = mine.rbegin(); it != mine.rend(); ++it) {
        const DecodingRow* ref = (*it)->status == "ok" ? ok_row(rows, reference, (*it)->tokens) : nullptr;
        if (!ref) continue;
        const QString at = QStringLiteral(" at N = %1").arg(count_text(static_cast<double>((*it)->tokens)));
        if (ref->tokens_per_second > 0)
          speed_name += QStringLiteral("  %1%2").arg(ratio_text((*it)->tokens_per_second / ref->tokens_per_second), at);
        if (ref->state_bytes > 0 && (*it)->state_bytes > 0)
          state_name += QStringLiteral("  %1%2").arg(
              ratio_text(static_cast<double>((*it)->state_bytes) / static_cast<double>(ref->state_bytes)), at);
        break;
      }
    }
    CurveSeries sp{speed_name, curves_series_color(static_cast<int>(i)), {}, {}};
    CurveSeries st{state_name, sp.color, {}, {}};
    bool stopped = false;
    for (const DecodingRow* r : mine) {
      const auto n = static_cast<double>(r->tokens);
      if (std::find(ticks.begin(), ticks.end(), n) == ticks.end()) ticks.push_back(n);
      const QString tip = decoding_tip(*r);
      if (r->status != "ok") {
        sp.frontier.push_back({n, !stopped, tip});
        st.frontier.push_back({n, !stopped, tip});
        stopped = true;
        continue;
      }
      if (r->tokens_per_second > 0) sp.points.push_back({n, r->tokens_per_second, 0, 0, tip});
      if (r->state_bytes > 0) st.points.push_back({n, static_cast<double>(r->state_bytes), 0, 0, tip});
    }
    speed.series.push_back(std::move(sp));
    state.series.push_back(std::move(st));
  }
  std::sort(ticks.begin(), ticks.end());
  speed.x_ticks = state.x_ticks = ticks;
  d.summary = QStringLiteral("d = %1, %2 head%3 · tokens/s = N / median time of all N steps (%4 run%5 after a warm-up) · "
                             "×: ratio to %6 at the largest N both reached")
                  .arg(o.dim)
                  .arg(o.heads)
                  .arg(o.heads == 1 ? "" : "s")
                  .arg(o.repeats)
                  .arg(o.repeats == 1 ? "" : "s")
                  .arg(QString::fromStdString(reference));
  d.charts = {std::move(speed), std::move(state)};
  return d;
}

PaintedFigure decoding_curves_figure(const DecodingOptions& options, const std::vector<DecodingRow>& rows,
                                     const FigureStyle& style) {
  return curves_painted_figure(std::make_shared<const CurvesFigureData>(decoding_curves_data(options, rows)), style);
}

QByteArray decoding_curves_csv(const std::vector<DecodingRow>& rows) {
  QByteArray out = "method,tokens,status,median_ms,min_ms,max_ms,tokens_per_second,last_step_us,state_bytes\r\n";
  for (const DecodingRow& r : rows) {
    out += csv_field(QString::fromStdString(r.method)) + ',' + integer_field(r.tokens) + ',' +
           csv_field(QString::fromStdString(r.status)) + ',' + number_field(r.median_ms) + ',' + number_field(r.min_ms) + ',' +
           number_field(r.max_ms) + ',' + number_field(r.tokens_per_second) + ',' + number_field(r.last_step_us) + ',' +
           integer_field(r.state_bytes) + "\r\n";
  }
  return out;
}

void export_decoding_curves(const DecodingOptions& options, const std::vector<DecodingRow>& rows, const QString& path,
                            const ExportOptions& export_options) {
  const QString suffix = suffix_of(path);
  if (!is_figure_suffix(suffix) && suffix != QLatin1String("json") && suffix != QLatin1String("csv"))
    bad_extension(QStringLiteral("decoding curves"), path);
  if (rows.empty()) throw ParamError("nothing to export: run the decoding comparison first");
  if (suffix == QLatin1String("json")) {
    write_json(path, decoding_to_json(options, rows));
  } else if (suffix == QLatin1String("csv")) {
    write_bytes_atomically(path, decoding_curves_csv(rows));
  } else {
    export_figure(decoding_curves_figure(options, rows, export_options.style), path, export_options);
  }
}

// ---- depth memory ------------------------------------------------------------------------------------

CurvesFigureData depth_curves_data(const DepthMemoryOptions& o, const std::vector<DepthMemoryPoint>& points) {
  CurvesFigureData d;
  d.title = QStringLiteral("Activation memory against depth: standard and reversible stacks");
  CurveChart chart;
  chart.caption = QStringLiteral("Activations kept for backward");
  chart.x_title = QStringLiteral("layers");
  chart.y_title = QStringLiteral("activations kept (MiB)");
  chart.log_x = chart.log_y = false;
  chart.empty_note = QStringLiteral("No depth has finished yet.");
  const auto mib = [](std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); };
  CurveSeries standard{QStringLiteral("standard residual stack"), okabe_ito(OkabeIto::Vermillion), {}, {}};
  CurveSeries reversible{QStringLiteral("reversible stack"), okabe_ito(OkabeIto::Blue), {}, {}};
  double worst = 0;
  for (const DepthMemoryPoint& p : points) {
    const QString tip = QStringLiteral("%1 layer%2 · standard %3 (%4) · reversible %5 (%6) · reconstruction error %7")
                            .arg(p.layers)
                            .arg(p.layers == 1 ? "" : "s")
                            .arg(curves_bytes_text(p.standard_bytes), ms_text(p.standard_ms),
                                 curves_bytes_text(p.reversible_bytes), ms_text(p.reversible_ms))
                            .arg(p.reconstruction_error, 0, 'g', 2);
    standard.points.push_back({static_cast<double>(p.layers), mib(p.standard_bytes), 0, 0, tip});
    reversible.points.push_back({static_cast<double>(p.layers), mib(p.reversible_bytes), 0, 0, tip});
    worst = std::max(worst, p.reconstruction_error);
  }
  chart.series = {std::move(standard), std::move(reversible)};
  for (int n = 1; n <= o.max_layers; ++n) chart.x_ticks.push_back(n);
  d.summary = QStringLiteral("L = %1, d_model = %2, %3 heads, d_ff = %4, %5 attention · reversible stack: inputs "
                             "recomputed from outputs within %6 of max|x|")
                  .arg(o.length)
                  .arg(o.d_model)
                  .arg(o.heads)
                  .arg(o.d_ff)
                  .arg(QString::fromStdString(o.variant))
                  .arg(points.empty() ? QStringLiteral("–") : QString::number(worst, 'g', 2));
  d.charts = {std::move(chart)};
  return d;
}

PaintedFigure depth_curves_figure(const DepthMemoryOptions& options, const std::vector<DepthMemoryPoint>& points,
                                  const FigureStyle& style) {
  return curves_painted_figure(std::make_shared<const CurvesFigureData>(depth_curves_data(options, points)), style);
}

nlohmann::json depth_curves_json(const DepthMemoryOptions& o, const std::vector<DepthMemoryPoint>& points) {
  nlohmann::json rows = nlohmann::json::array();
  for (const DepthMemoryPoint& p : points) {
    rows.push_back({{"layers", p.layers},
                    {"standard_bytes", p.standard_bytes},
                    {"reversible_bytes", p.reversible_bytes},
                    {"reconstruction_error", p.reconstruction_error},
                    {"standard_ms", p.standard_ms},
                    {"reversible_ms", p.reversible_ms}});
  }
  return nlohmann::json{{"kind", "depth_memory"}, {"variant", o.variant}, {"length", o.length},     {"d_model", o.d_model},
                        {"heads", o.heads},       {"d_ff", o.d_ff},         {"max_layers", o.max_layers}, {"seed", o.seed},
                        {"rows", rows}};
}

QByteArray depth_curves_csv(const std::vector<DepthMemoryPoint>& points) {
  QByteArray out = "layers,standard_bytes,reversible_bytes,reconstruction_error,standard_ms,reversible_ms\r\n";
  for (const DepthMemoryPoint& p : points) {
    out += QByteArray::number(p.layers) + ',' + integer_field(p.standard_bytes) + ',' + integer_field(p.reversible_bytes) + ',' +
           number_field(p.reconstruction_error) + ',' + number_field(p.standard_ms) + ',' + number_field(p.reversible_ms) +
           "\r\n";
  }
  return out;
}

void export_depth_curves(const DepthMemoryOptions& options, const std::vector<DepthMemoryPoint>& points, const QString& path,
                         const ExportOptions& export_options) {
  const QString suffix = suffix_of(path);
  if (!is_figure_suffix(suffix) && suffix != QLatin1String("json") && suffix != QLatin1String("csv"))
    bad_extension(QStringLiteral("depth memory curves"), path);
  if (points.empty()) throw ParamError("nothing to export: run the depth memory first");
  if (suffix == QLatin1String("json")) {
    write_json(path, depth_curves_json(options, points));
  } else if (suffix == QLatin1String("csv")) {
    write_bytes_atomically(path, depth_curves_csv(points));
  } else {
    export_figure(depth_curves_figure(options, points, export_options.style), path, export_options);
  }
}

}  // namespace attnlab
