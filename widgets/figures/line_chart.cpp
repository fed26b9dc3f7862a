#include "figures/line_chart.h"

#include <QFontMetricsF>
#include <QPainter>
#include <QPainterPath>
#include <algorithm>
#include <cmath>
#include <limits>

namespace attnlab {
namespace {

PlotAxis make_axis(const LineChart& chart, bool x_axis) {
  const bool log = x_axis ? chart.log_x : chart.log_y;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  const auto take = [&](double v) {
    if (!std::isfinite(v) || (log && v <= 0)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  };
  for (const ChartSeries& s : chart.series) {
    for (const QPointF& p : s.points) take(x_axis ? p.x() : p.y());
    if (!x_axis) {
      // Error bars widen the value axis.
      for (const auto& [low, high] : s.y_ranges) {
        take(low);
        take(high);
      }
    }
  }
  if (x_axis && !chart.x_ticks.empty()) {
    // The given ticks, with a little room beyond the outer ones.
    PlotAxis axis;
    axis.log = log;
    for (double t : chart.x_ticks) {
      if (!std::isfinite(t) || (log && t <= 0)) continue;
      axis.ticks.push_back(t);
      take(t);
    }
    if (!axis.ticks.empty()) {
      if (log) {
        const double pad = hi > lo ? std::pow(hi / lo, 0.06) : 2.0;
        axis.lo = lo / pad;
        axis.hi = hi * pad;
      } else {
        const double pad = hi > lo ? 0.06 * (hi - lo) : std::max(1.0, std::abs(lo) * 0.1);
        axis.lo = lo - pad;
        axis.hi = hi + pad;
      }
      return axis;
    }
  }
  if (!std::isfinite(lo)) return log ? decade_axis(1, 10) : nice_linear_axis(0, 1, 5);
  if (!log && !x_axis) lo = std::min(lo, 0.0);  // value axes start at zero
  return log ? decade_axis(lo, hi) : nice_linear_axis(lo, hi, 5);
}

QString tick_text(double v, bool log, bool given = false) {
  if (given) return QString::number(v, 'g', 6).replace(QLatin1Char('-'), QChar(0x2212));
  if (log) {
    const int e = static_cast<int>(std::lround(std::log10(v)));
    if (e >= 0 && e <= 4) return QString::number(std::pow(10.0, e), 'f', 0);
    return QStringLiteral("1e%1").arg(e);
  }
  QString s = QString::number(v, 'g', 6);
  return s.replace(QLatin1Char('-'), QChar(0x2212));
}

}  // namespace

QSizeF line_chart_size(const LineChart&, const FigureStyle& style) {
  const double em = QFontMetricsF(style.font).height();
  return QSizeF(std::ceil(em * 36), std::ceil(em * 24));
}

void draw_line_chart(QPainter& painter, const QRectF& target, const LineChart& chart, const FigureStyle& style) {
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing);
  painter.fillRect(target, style.background);
  painter.setFont(style.font);
  const QFontMetricsF fm(style.font, painter.device());
  const double em = fm.height();
  QFont title_font = style.font;
  title_font.setBold(true);
  title_font.setPointSizeF(style.font.pointSizeF() * 1.25);
  const QFontMetricsF title_fm(title_font, painter.device());

  const PlotAxis xa = make_axis(chart, true), ya = make_axis(chart, false);
  double y_label_width = 0;
  for (double t : ya.ticks) y_label_width = std::max(y_label_width, fm.horizontalAdvance(tick_text(t, ya.log)));
  double top = target.top() + em * 0.6;
  if (!chart.title.isEmpty()) top += title_fm.height();
  if (!chart.note.isEmpty()) top += em;
  const QRectF plot(target.left() + em * 2.2 + y_label_width, top + em * 0.5, 0, 0);
  QRectF area = plot;
  area.setRight(target.right() - em * 1.0);
  area.setBottom(target.bottom() - em * 3.2);

  const auto to_px = [&](QPointF p) { return plot_point(area, xa, ya, p.x(), p.y()); };
  // A point the axes can place: finite, and positive on a log axis.
  const auto plottable = [&](const QPointF& p) {
    return std::isfinite(p.x()) && std::isfinite(p.y()) && !(xa.log && p.x() <= 0) && !(ya.log && p.y() <= 0);
  };

  // Title, note.
  painter.setPen(style.foreground);
  double y = target.top() + em * 0.4;
  if (!chart.title.isEmpty()) {
    painter.setFont(title_font);
    painter.drawText(QRectF(target.left(), y, target.width(), title_fm.height()), Qt::AlignHCenter, chart.title);
    y += title_fm.height();
    painter.setFont(style.font);
  }
  if (!chart.note.isEmpty()) {
    QColor muted = style.foreground;
    muted.setAlphaF(0.7);
    painter.setPen(muted);
    painter.drawText(QRectF(target.left(), y, target.width(), em), Qt::AlignHCenter, chart.note);
    painter.setPen(style.foreground);
  }

  // Grid and ticks.
  QColor grid = style.foreground;
  grid.setAlphaF(0.15);
  for (double t : xa.ticks) {
    const double px = area.left() + xa.fraction(t) * area.width();
    painter.setPen(QPen(grid, 0));
    painter.drawLine(QPointF(px, area.top()), QPointF(px, area.bottom()));
    painter.setPen(style.foreground);
    painter.drawText(QRectF(px - em * 3, area.bottom() + em * 0.2, em * 6, em), Qt::AlignHCenter | Qt::AlignTop,
                     tick_text(t, xa.log, !chart.x_ticks.empty()));
  }
  for (double t : ya.ticks) {
    const double py = area.bottom() - ya.fraction(t) * area.height();
    painter.setPen(QPen(grid, 0));
    painter.drawLine(QPointF(area.left(), py), QPointF(area.right(), py));
    painter.setPen(style.foreground);
    painter.drawText(QRectF(area.left() - em * 0.4 - y_label_width, py - em / 2, y_label_width, em),
                     Qt::AlignRight | Qt::AlignVCenter, tick_text(t, ya.log));
  }
  painter.setPen(QPen(style.foreground, 0));
  painter.drawRect(area);

  // Axis labels.
  painter.drawText(QRectF(area.left(), area.bottom() + em * 1.5, area.width(), em * 1.2), Qt::AlignHCenter, chart.x_label);
  painter.save();
  painter.translate(target.left() + em * 0.2, area.center().y());
  painter.rotate(-90);
  painter.drawText(QRectF(-area.height() / 2, 0, area.height(), em * 1.2), Qt::AlignHCenter | Qt::AlignTop, chart.y_label);
  painter.restore();

  // Series.
  painter.setClipRect(area.adjusted(-em * 0.3, -em * 0.3, em * 0.3, em * 0.3));
  for (const ChartSeries& s : chart.series) {
    QPainterPath path;
    bool started = false;
    std::vector<QPointF> marks;
    for (const QPointF& p : s.points) {
      if (!plottable(p)) continue;
      const QPointF px = to_px(p);
      if (started) path.lineTo(px);
      else path.moveTo(px);
      started = true;
      marks.push_back(px);
    }
    QPen pen(s.color, em * 0.14);
    if (s.dashed) pen.setStyle(Qt::DashLine);
    // Error bars: whiskers with caps from low to high at each point that has them.
    if (s.y_ranges.size() == s.points.size()) {
      painter.setPen(QPen(s.color, em * 0.08));
      for (std::size_t i = 0; i < s.points.size(); ++i) {
        const QPointF& p = s.points[i];
        auto [low, high] = s.y_ranges[i];
        if (!std::isfinite(p.x()) || !std::isfinite(low) || !std::isfinite(high) || (xa.log && p.x() <= 0)) continue;
        if (ya.log) {
          if (high <= 0) continue;
          if (low <= 0) low = ya.lo;
        }
        const QPointF a = to_px(QPointF(p.x(), low)), b = to_px(QPointF(p.x(), high));
        const double cap = em * 0.3;
        painter.drawLine(a, b);
        painter.drawLine(QPointF(a.x() - cap, a.y()), QPointF(a.x() + cap, a.y()));
        painter.drawLine(QPointF(b.x() - cap, b.y()), QPointF(b.x() + cap, b.y()));
      }
    }
    painter.setPen(pen);
    painter.setBrush(Qt::NoBrush);
    painter.drawPath(path);
    if (!s.dashed) {
      painter.setBrush(s.color);
      for (const QPointF& m : marks) painter.drawEllipse(m, em * 0.18, em * 0.18);
    }
  }
  painter.setClipping(false);

  // Legend inside the plot, in the chosen corner.
  double legend_w = 0;
  for (const ChartSeries& s : chart.series) legend_w = std::max(legend_w, fm.horizontalAdvance(s.name));
  legend_w = std::min(legend_w + em * 2.6, area.width() - em * 0.5);
  const double legend_h = em * 1.1 * static_cast<double>(chart.series.size());
  const auto legend_box = [&](LegendCorner corner) {
    const bool r = corner == LegendCorner::TopRight || corner == LegendCorner::BottomRight;
    const bool b = corner == LegendCorner::BottomLeft || corner == LegendCorner::BottomRight;
    return QRectF(r ? area.right() - legend_w - em * 0.3 : area.left(), b ? area.bottom() - legend_h - em * 0.3 : area.top() + em * 0.4,
                  legend_w + em * 0.3, legend_h);
  };
  LegendCorner corner = chart.legend;
  if (corner == LegendCorner::Auto) {
    // Sample every drawn line (20 points per segment, markers included) and count what each
    // corner's box would hide.
    std::vector<QPointF> samples;
    for (const ChartSeries& s : chart.series) {
      std::vector<QPointF> px;
      for (const QPointF& p : s.points) {
        if (!plottable(p)) continue;
        px.push_back(to_px(p));
      }
      for (std::size_t i = 0; i < px.size(); ++i) {
        samples.push_back(px[i]);
        if (i + 1 < px.size()) {
          for (int k = 1; k < 20; ++k) samples.push_back(px[i] + (px[i + 1] - px[i]) * (k / 20.0));
        }
      }
    }
    std::size_t best = std::numeric_limits<std::size_t>::max();
    for (const LegendCorner c : {LegendCorner::TopLeft, LegendCorner::TopRight, LegendCorner::BottomLeft, LegendCorner::BottomRight}) {
      const QRectF box = legend_box(c).adjusted(-em * 0.3, -em * 0.3, em * 0.3, em * 0.3);
      const auto hidden = static_cast<std::size_t>(std::count_if(samples.begin(), samples.end(), [&](const QPointF& q) { return box.contains(q); }));
      if (hidden < best) {
        best = hidden;
        corner = c;
      }
    }
  }
  const QRectF box = legend_box(corner);
  const double lx = box.left();
  double ly = box.top();
  if (!chart.series.empty() && corner != LegendCorner::TopLeft) {
    // Away from the default corner the legend may cover data: a translucent backing keeps it legible.
    QColor backing = style.background;
    backing.setAlphaF(0.8f);
    painter.fillRect(QRectF(lx, ly - em * 0.1, legend_w + em * 0.3, legend_h + em * 0.2), backing);
  }
  for (const ChartSeries& s : chart.series) {
    QPen pen(s.color, em * 0.14);
    if (s.dashed) pen.setStyle(Qt::DashLine);
    painter.setPen(pen);
    painter.drawLine(QPointF(lx + em * 0.5, ly + em / 2), QPointF(lx + em * 1.8, ly + em / 2));
    painter.setPen(style.foreground);
    painter.drawText(QRectF(lx + em * 2.1, ly, std::max(0.0, legend_w - em * 2.1), em), Qt::AlignLeft | Qt::AlignVCenter,
                     fm.elidedText(s.name, Qt::ElideRight, std::max(0.0, legend_w - em * 2.1)));
    ly += em * 1.1;
  }
  painter.restore();
}

PaintedFigure line_chart_figure(const LineChart& chart, const FigureStyle& style) {
  PaintedFigure figure;
  figure.size = line_chart_size(chart, style);
  figure.title = chart.title;
  figure.description = chart.note;
  figure.background = style.background;
  figure.draw = [chart, style](QPainter& painter, const QRectF& target) { draw_line_chart(painter, target, chart, style); };
  return figure;
}

}  // namespace attnlab
