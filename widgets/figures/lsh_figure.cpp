#include "figures/lsh_figure.h"

#include <QFontMetricsF>
#include <QImage>
#include <QPainter>
#include <QPainterPath>
#include <QPen>
#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.h"
#include "figures/figure_kit.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in line heights of the label font, so the figure keeps its proportions at any dpi.
constexpr double kMarginLines = 0.8;
constexpr double kPanelGapLines = 1.2;
constexpr double kCaptionGapLines = 0.35;
constexpr double kStripLines = 1.3;       // height of a token strip in the sort panel
constexpr double kChunkBarLines = 1.1;
constexpr double kLabelPitchLines = 1.05;  // closest two labels may sit, centre to centre
constexpr double kPointLines = 0.32;       // radius of a point in the angle view
constexpr double kHitLines = 0.6;          // how close the pointer must be to a point
constexpr double kFrameLines = 0.12;       // frame of a panel the current step works on
constexpr double kTitleScale = 1.25;
constexpr double kSmallScale = 0.85;
constexpr double kDimOpacity = 0.25;       // visibility of panels the current step does not touch
constexpr int kLabelChars = 10;            // token labels are elided at this many average characters
constexpr int kPointLabelLimit = 32;       // up to this many tokens the angle view names points
constexpr int kFootnoteLines = 4;          // a panel's footnote: the PCA note needs 4 lines in a narrow panel

const QColor kAccent = okabe_ito(OkabeIto::Orange);  // frames of the current step, highlights

// Fonts and lengths: the panel gap is the figure's basic gap.
using Metrics = FigureText;

Metrics measure(const FigureStyle& style, const QPaintDevice* device) {
  return measure_figure_text(style, device, FigureTextSpec{kTitleScale, kSmallScale, kMarginLines, kPanelGapLines});
}

int stage_index(LshStage stage) { return static_cast<int>(stage); }
bool at_or_after(const LshFigureOptions& o, LshStage step) {
  return o.stage == LshStage::Overview || stage_index(o.stage) >= stage_index(step);
}

int clamp_round(const LshFigureModel& model, int round) { return std::clamp(round, 0, std::max(0, model.rounds() - 1)); }
int clamp_k(const LshFigureModel& model, int k) { return std::clamp(k, 1, std::max(1, model.recall_k())); }

QString label_text(const LshFigureModel& model, int token) {
  QString text = model.labels().value(token, QString::number(token));
  text.replace(QLatin1Char('\n'), QStringLiteral("\\n"));
  return text;
}

// ---- header ------------------------------------------------------------------------------------

QStringList header_lines(const LshFigureModel& model, const LshFigureOptions& o) {
  const ReformerLshExtras& x = model.extras();
  const LshGeometry& g = x.geometry;
  QStringList lines;
  if (!o.compact_header) {
    lines << QStringLiteral("Reformer LSH buckets · layer %1 · head %2 · round %3 of %4 (rounds count from 0)")
                 .arg(model.layer())
                 .arg(model.head())
                 .arg(clamp_round(model, o.round))
                 .arg(model.rounds());
  }
  QString back;
  if (g.window_chunk_count() == g.n_chunks) {
    back = QStringLiteral("every window holds every chunk: exact attention");
  } else if (g.chunks_before == 0) {
    back = QStringLiteral("each chunk attends only to itself");
  } else {
    back = QStringLiteral("each chunk also sees %1 chunk%2 before it, wrapping around")
               .arg(g.chunks_before)
               .arg(g.chunks_before == 1 ? QString() : QStringLiteral("s"));
  }
  lines << QStringLiteral("%1 tokens · %2 buckets per round · chunks of %3 (%4 chunk%5) · %6 · %7 · dedup %8")
               .arg(g.length)
               .arg(g.n_buckets)
               .arg(g.chunk_size)
               .arg(g.n_chunks)
               .arg(g.n_chunks == 1 ? QString() : QStringLiteral("s"))
               .arg(back)
               .arg(x.shared_qk ? QStringLiteral("shared QK (keys = unit queries)") : QStringLiteral("separate keys"))
               .arg(x.dedup ? QStringLiteral("on") : QStringLiteral("off"));
  if (o.compact_header) return lines;
  if (x.causal) {
    lines << QStringLiteral(
        "Causal: a later token can change the sort order and move chunk boundaries, so earlier outputs may change "
        "even though no query attends to a later key.");
  }
  if (o.stage != LshStage::Overview) lines << lsh_stage_title(o.stage) + QStringLiteral(" — ") + lsh_stage_explanation(o.stage);
  return lines;
}

double header_height(const LshFigureModel& model, const LshFigureOptions& o, const Metrics& m) {
  const auto lines = static_cast<double>(header_lines(model, o).size());
  if (o.compact_header) return lines * m.line + kCaptionGapLines * m.line;
  return m.title_line + (lines - 1) * m.line + kCaptionGapLines * m.line;
}

// ---- layout ------------------------------------------------------------------------------------

std::array<QRectF*, 6> panels_of(LshFigureLayout& l) {
  return {&l.angle, &l.sort, &l.round_matrix, &l.combined, &l.cooccurrence, &l.recall};
}

LshFigureLayout layout_for(const LshFigureModel& model, const LshFigureOptions& o, const QRectF& target, const Metrics& m) {
  LshFigureLayout l;
  const QRectF inner = target.adjusted(m.margin, m.margin, -m.margin, -m.margin);
  l.header = QRectF(inner.left(), inner.top(), inner.width(), header_height(model, o, m));
  const QRectF area(inner.left(), l.header.bottom() + 0.5 * m.gap, inner.width(),
                    std::max(0.0, inner.bottom() - l.header.bottom() - 0.5 * m.gap));
  // The column count that gives the panels the largest short side; 3 x 2 on ties.
  double best = -1.0;
  for (int columns : {3, 2, 6, 1}) {
    const int rows = (6 + columns - 1) / columns;
    const double w = (area.width() - (columns - 1) * m.gap) / columns;
    const double h = (area.height() - (rows - 1) * m.gap) / rows;
    if (std::min(w, h) > best + 1e-9) {
      best = std::min(w, h);
      l.columns = columns;
    }
  }
  const int rows = (6 + l.columns - 1) / l.columns;
  const double w = std::max(0.0, (area.width() - (l.columns - 1) * m.gap) / l.columns);
  const double h = std::max(0.0, (area.height() - (rows - 1) * m.gap) / rows);
  int index = 0;
  for (QRectF* panel : panels_of(l)) {
    const int row = index / l.columns, col = index % l.columns;
    *panel = QRectF(area.left() + col * (w + m.gap), area.top() + row * (h + m.gap), w, h);
    ++index;
  }
  return l;
}

// A panel's caption line on top; returns the rest.
QRectF below_caption(const QRectF& panel, const Metrics& m) {
  return panel.adjusted(0, m.line + kCaptionGapLines * m.line, 0, 0);
}

void draw_caption(QPainter& p, const QRectF& panel, const QString& text, const FigureStyle& style, const Metrics& m) {
  p.save();
  p.setPen(style.foreground);
  draw_text_line(p, QRectF(panel.left(), panel.top(), panel.width(), m.line), m.bold, text);
  p.restore();
}

// Up to `max_lines` lines of small text at the bottom of `area`, word-wrapped; returns the rest.
QRectF draw_footnote(QPainter* p, const QRectF& area, const QString& text, const FigureStyle& style, const Metrics& m,
                     int max_lines, const QPaintDevice* device) {
  const QFontMetricsF fm(m.small, device);
  const QRectF bounds = fm.boundingRect(QRectF(0, 0, area.width(), 1e6), Qt::TextWordWrap, text);
  const double height = std::min(bounds.height(), max_lines * m.small_line);
  const QRectF box(area.left(), area.bottom() - height, area.width(), height);
  if (p) {
    p->save();
    p->setFont(m.small);
    p->setPen(style.foreground);
    p->setClipRect(box);
    p->drawText(box, Qt::TextWordWrap | Qt::AlignLeft | Qt::AlignTop, text);
    p->restore();
  }
  return QRectF(area.left(), area.top(), area.width(), std::max(0.0, area.height() - height - kCaptionGapLines * m.line));
}

// ---- ① angle view ------------------------------------------------------------------------------

QString angle_caption(int round) {
  return QStringLiteral("① Rotate & hash (round %1)").arg(round);
}

QString angle_footnote(const LshFigureModel& model, int round) {
  const ReformerLshExtras& x = model.extras();
  QString text;
  switch (x.angle_method) {
    case LshAngleMethod::SignAxis:
      text = QStringLiteral("2 buckets: each vector at its exact angle to the rotation direction r; "
                            "bucket 0 right of the dashed line (x·r ≥ 0), 1 left.");
      break;
    case LshAngleMethod::RotatedPlane:
      text = QStringLiteral("4 buckets: the exact angle of (x·r₀, x·r₁); buckets are the 90° sectors "
                            "around the axes b0…b3.");
      break;
    case LshAngleMethod::Pca: {
      const float* e = x.angle_explained.data() + (model.head() * x.rounds() + round) * 2;
      text = QStringLiteral("PCA of the rotated unit vectors xR/|xR| (%1% + %2% of variance); "
                            "bucket = nearest signed axis, marked b0…b%3. A projection: neighbours may hide.")
                 .arg(std::lround(100.0 * e[0]))
                 .arg(std::lround(100.0 * e[1]))
                 .arg(x.geometry.n_buckets - 1);
      break;
    }
  }
  if (!x.shared_qk) text += QStringLiteral(" Dots: queries; rings: keys.");
  if (x.geometry.n_buckets > kLshBucketColors) {
    text += QStringLiteral(" Colours repeat every %1 buckets.").arg(kLshBucketColors);
  }
  return text;
}

// Maps data coordinates of the angle view to the panel.
struct AngleFrame {
  QRectF plot;
  QPointF centre;       // device position of the data point `data_centre`
  QPointF data_centre;
  double scale = 1.0;   // device units per data unit
  QPointF map(double x, double y) const {
    return QPointF(centre.x() + (x - data_centre.x()) * scale, centre.y() - (y - data_centre.y()) * scale);
  }
};

AngleFrame angle_frame(const LshFigureModel& model, int round, const QRectF& panel, const Metrics& m,
                       const QPaintDevice* device) {
  const ReformerLshExtras& x = model.extras();
  QRectF area = below_caption(panel, m);
  area = draw_footnote(nullptr, area, angle_footnote(model, round), FigureStyle{}, m, kFootnoteLines, device);
  const double side = std::max(0.0, std::min(area.width(), area.height()));
  AngleFrame f;
  f.plot = QRectF(area.center().x() - 0.5 * side, area.top() + 0.5 * (area.height() - side), side, side);
  f.centre = f.plot.center();
  // Room for the anchor labels outside the data.
  const double label_room = 2.2 * m.line;
  const double usable = std::max(1.0, 0.5 * side - label_room);
  if (x.angle_method == LshAngleMethod::Pca) {
    const std::int64_t slice = model.head() * x.rounds() + round;
    const auto points = x.angle_points.matrix(slice);
    const auto anchors = x.angle_anchors.matrix(slice);
    float lo_x = anchors.col(0).minCoeff(), hi_x = anchors.col(0).maxCoeff();
    float lo_y = anchors.col(1).minCoeff(), hi_y = anchors.col(1).maxCoeff();
    lo_x = std::min(lo_x, points.col(0).minCoeff());
    hi_x = std::max(hi_x, points.col(0).maxCoeff());
    lo_y = std::min(lo_y, points.col(1).minCoeff());
    hi_y = std::max(hi_y, points.col(1).maxCoeff());
    f.data_centre = QPointF(0.5 * (lo_x + hi_x), 0.5 * (lo_y + hi_y));
    const double half = std::max({0.5 * (hi_x - lo_x), 0.5 * (hi_y - lo_y), 1e-6});
    f.scale = usable / half;
  } else {
    f.data_centre = QPointF(0, 0);
    f.scale = usable;  // the unit circle fills the plot
  }
  return f;
}

void draw_point(QPainter& p, QPointF at, double radius, const QColor& fill, bool ring, const QColor& outline) {
  if (ring) {
    p.setBrush(Qt::NoBrush);
    p.setPen(QPen(fill, 0.45 * radius));
    p.drawEllipse(at, radius * 0.85, radius * 0.85);
  } else {
    p.setBrush(fill);
    p.setPen(QPen(outline, 0.18 * radius));
    p.drawEllipse(at, radius, radius);
  }
}

void draw_angle_panel(QPainter& p, const QRectF& panel, const LshFigureModel& model, const LshFigureOptions& o,
                      const FigureStyle& style, const Metrics& m) {
  const ReformerLshExtras& x = model.extras();
  const int round = clamp_round(model, o.round);
  draw_caption(p, panel, angle_caption(round), style, m);
  draw_footnote(&p, below_caption(panel, m), angle_footnote(model, round), style, m, kFootnoteLines, p.device());
  const AngleFrame f = angle_frame(model, round, panel, m, p.device());
  if (f.plot.width() <= 0) return;
  const bool hashed = at_or_after(o, LshStage::Hash);
  const std::int64_t slice = model.head() * x.rounds() + round;
  const auto points = x.angle_points.matrix(slice);
  const auto anchors = x.angle_anchors.matrix(slice);
  const QColor faint = QColor(style.foreground.red(), style.foreground.green(), style.foreground.blue(), 90);
  const QColor neutral = QColor(style.foreground.red(), style.foreground.green(), style.foreground.blue(), 150);

  p.save();
  p.setRenderHint(QPainter::Antialiasing, true);
  const bool exact = x.angle_method != LshAngleMethod::Pca;
  if (exact) {
    p.setBrush(Qt::NoBrush);
    p.setPen(QPen(faint, 0.06 * m.line));
    p.drawEllipse(f.map(0, 0), f.scale, f.scale);
    if (hashed) {
      p.setPen(QPen(neutral, 0.07 * m.line, Qt::DashLine));
      for (float angle : x.sector_boundaries) {
        p.drawLine(f.map(0, 0), f.map(1.08 * std::cos(angle), 1.08 * std::sin(angle)));
      }
    }
  } else {
    p.setPen(QPen(faint, 0.06 * m.line));
    p.drawLine(QPointF(f.plot.left(), f.map(0, 0).y()), QPointF(f.plot.right(), f.map(0, 0).y()));
    p.drawLine(QPointF(f.map(0, 0).x(), f.plot.top()), QPointF(f.map(0, 0).x(), f.plot.bottom()));
  }
  // Anchors: the direction each bucket stands for (the signed axes of the rotated space).
  p.setFont(m.small);
  const QFontMetricsF small_fm(m.small, p.device());
  std::vector<QRectF> taken;  // label boxes already written: later labels avoid them
  for (int b = 0; b < anchors.rows(); ++b) {
    const QPointF at = f.map(anchors(b, 0), anchors(b, 1));
    const QColor colour = hashed ? lsh_bucket_color(b) : neutral;
    p.setPen(QPen(colour, 0.12 * m.line));
    const double arm = 0.35 * m.line;
    p.drawLine(at - QPointF(arm, 0), at + QPointF(arm, 0));
    p.drawLine(at - QPointF(0, arm), at + QPointF(0, arm));
    // Label pushed outward from the data centre.
    QPointF out = at - f.centre;
    const double len = std::hypot(out.x(), out.y());
    out = len > 1e-9 ? out / len : QPointF(0, -1);
    const QString text = QStringLiteral("b%1").arg(b);
    const QPointF c = at + out * (exact ? 1.5 * m.line : 0.9 * m.line);
    p.setPen(hashed ? style.foreground : neutral);
    const double w = small_fm.horizontalAdvance(text);
    const QRectF box(c.x() - 0.5 * w, c.y() - 0.5 * m.small_line, w, m.small_line);
    taken.push_back(box);
    p.drawText(box.adjusted(-0.5 * w, 0, 0.5 * w, 0), Qt::AlignCenter, text);
  }
  // Points: keys (rings) under queries (dots); the highlighted token last and larger.
  const int L = model.length();
  const double radius = kPointLines * m.line;
  const int P = static_cast<int>(points.rows());
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = P - 1; i >= 0; --i) {
      const bool key = i >= L;
      const int token = key ? i - L : i;
      const bool highlighted = token == o.highlight;
      if (highlighted != (pass == 1)) continue;
      const int bucket = key ? model.key_bucket(round, token) : model.query_bucket(round, token);
      const QColor fill = hashed ? lsh_bucket_color(bucket) : neutral;
      draw_point(p, f.map(points(i, 0), points(i, 1)), highlighted ? 1.6 * radius : radius, fill, key,
                 highlighted ? style.foreground : style.background);
    }
  }
  // Names beside the points when there are few (the highlighted token first, always), skipping
  // any that would overlap a name already written.
  p.setPen(style.foreground);
  std::vector<int> order;
  if (o.highlight >= 0 && o.highlight < L) order.push_back(o.highlight);
  if (L <= kPointLabelLimit)
    for (int i = 0; i < L; ++i)
      if (i != o.highlight) order.push_back(i);
  for (int i : order) {
    p.setFont(i == o.highlight ? m.small_bold : m.small);
    const QFontMetricsF fm(p.font(), p.device());
    const QString text = fm.elidedText(label_text(model, i), Qt::ElideRight, kLabelChars * fm.averageCharWidth());
    const QPointF at = f.map(points(i, 0), points(i, 1));
    // Outside the circle's centre: to the right of points on the right half, else to the left.
    const bool right = at.x() >= f.centre.x();
    const double w = fm.horizontalAdvance(text);
    const QRectF box(right ? at.x() + 1.3 * radius : at.x() - 1.3 * radius - w, at.y() - 0.5 * fm.height(), w, fm.height());
    const bool overlaps = std::any_of(taken.begin(), taken.end(), [&](const QRectF& r) { return r.intersects(box); });
    if (overlaps && i != o.highlight) continue;
    taken.push_back(box);
    p.drawText(box, Qt::AlignLeft | Qt::AlignVCenter, text);
  }
  p.restore();
}

// ---- ②③ sort and chunks ----------------------------------------------------------------------

struct SortFrame {
  QRectF top_labels, top_strip, bottom_strip, chunk_bar, bottom_labels;
  double cell = 0;
  int stride = 1;
  double x_of(int index) const { return top_strip.left() + (index + 0.5) * cell; }
};

QString sort_footnote(const LshFigureModel& model) {
  QString text = QStringLiteral("Top: text order, coloured by bucket; bottom: sorted by (bucket, position); lines join "
                                "each token to its sorted place; the bar marks the chunks.");
  if (!model.extras().shared_qk) text += QStringLiteral(" Queries shown; keys are sorted by their own buckets.");
  return text;
}

SortFrame sort_frame(const LshFigureModel& model, const QRectF& panel, const Metrics& m, const QPaintDevice* device) {
  SortFrame f;
  QRectF area = below_caption(panel, m);
  area = draw_footnote(nullptr, area, sort_footnote(model), FigureStyle{}, m, kFootnoteLines, device);
  const int L = std::max(1, model.length());
  f.cell = area.width() / L;
  f.stride = std::max(1, static_cast<int>(std::ceil(kLabelPitchLines * m.small_line / std::max(f.cell, 1e-9) - 1e-9)));
  const double elide = kLabelChars * QFontMetricsF(m.small, device).averageCharWidth();
  QStringList texts;
  texts.reserve(L);
  for (int i = 0; i < L; ++i) texts.push_back(label_text(model, i));
  // Bold is wider: a highlighted label fits too.
  const double widest = widest_elided_label(m.small_bold, device, texts, L, elide);
  const double strip = std::min(kStripLines * m.line, 0.12 * area.height());
  const double bar = std::min(kChunkBarLines * m.line, 0.1 * area.height());
  const double labels = std::min(widest + 0.3 * m.line, 0.2 * area.height());
  f.top_labels = QRectF(area.left(), area.top(), area.width(), labels);
  f.top_strip = QRectF(area.left(), f.top_labels.bottom(), area.width(), strip);
  f.bottom_labels = QRectF(area.left(), area.bottom() - labels, area.width(), labels);
  f.chunk_bar = QRectF(area.left(), f.bottom_labels.top() - bar, area.width(), bar);
  f.bottom_strip = QRectF(area.left(), f.chunk_bar.top() - strip, area.width(), strip);
  return f;
}

void draw_strip_labels(QPainter& p, const SortFrame& f, const QRectF& band, bool above, const LshFigureModel& model,
                       int round, bool sorted, int highlight, const FigureStyle& style, const Metrics& m) {
  const int L = model.length();
  const QFontMetricsF fm(m.small, p.device());
  const double elide = kLabelChars * fm.averageCharWidth();
  const int highlight_index = highlight < 0 ? -1 : (sorted ? model.sorted_position(round, highlight) : highlight);
  p.save();
  p.setPen(style.foreground);
  for (int index = 0; index < L; ++index) {
    const bool is_highlight = index == highlight_index;
    const bool regular = index % f.stride == 0 && (highlight_index < 0 || std::abs(index - highlight_index) >= f.stride);
    if (!is_highlight && !regular) continue;
    const int token = sorted ? model.token_at(round, index) : index;
    p.setFont(is_highlight ? m.small_bold : m.small);
    const QString text = QFontMetricsF(p.font(), p.device()).elidedText(label_text(model, token), Qt::ElideRight, elide);
    p.save();
    p.translate(f.x_of(index), above ? band.bottom() - 0.15 * m.line : band.top() + 0.15 * m.line);
    p.rotate(-90.0);
    const double w = band.height();
    // Reads bottom to top; above the strip it ends at the strip, below it starts there.
    p.drawText(above ? QRectF(0, -0.5 * m.small_line, w, m.small_line) : QRectF(-w, -0.5 * m.small_line, w, m.small_line),
               (above ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignVCenter, text);
    p.restore();
  }
  p.restore();
}

void draw_sort_panel(QPainter& p, const QRectF& panel, const LshFigureModel& model, const LshFigureOptions& o,
                     const FigureStyle& style, const Metrics& m) {
  const ReformerLshExtras& x = model.extras();
  const LshGeometry& g = x.geometry;
  const int round = clamp_round(model, o.round);
  draw_caption(p, panel,
               QStringLiteral("② Sort · ③ chunks of %1 (round %2)").arg(g.chunk_size).arg(round), style, m);
  draw_footnote(&p, below_caption(panel, m), sort_footnote(model), style, m, kFootnoteLines, p.device());
  const SortFrame f = sort_frame(model, panel, m, p.device());
  const int L = model.length();
  if (f.cell <= 0 || L == 0) return;
  const bool hashed = at_or_after(o, LshStage::Hash);
  const bool sorted = at_or_after(o, LshStage::Sort);
  const bool chunked = at_or_after(o, LshStage::Chunk);
  const QColor neutral(style.foreground.red(), style.foreground.green(), style.foreground.blue(), 110);
  const QFontMetricsF small_fm(m.small, p.device());
  const double number_width = small_fm.horizontalAdvance(QString::number(g.n_buckets - 1));
  const bool numbers = f.cell >= 1.15 * number_width && f.top_strip.height() >= 0.9 * m.small_line;

  p.save();
  // Lines first, under the strips.
  if (sorted) {
    p.setRenderHint(QPainter::Antialiasing, true);
    const double width = std::clamp(0.35 * f.cell, 0.02 * m.line, 0.1 * m.line);
    for (int pass = 0; pass < 2; ++pass) {
      for (int i = 0; i < L; ++i) {
        const bool highlighted = i == o.highlight;
        if (highlighted != (pass == 1)) continue;
        QColor colour = lsh_bucket_color(model.query_bucket(round, i));
        if (!highlighted) colour.setAlpha(o.highlight >= 0 ? 70 : 170);
        p.setPen(QPen(highlighted ? style.foreground : colour, highlighted ? 0.14 * m.line : width));
        p.drawLine(QPointF(f.x_of(i), f.top_strip.bottom()), QPointF(f.x_of(model.sorted_position(round, i)), f.bottom_strip.top()));
      }
    }
  }
  // The strips: one cell per token.
  p.setRenderHint(QPainter::Antialiasing, false);
  const auto draw_strip = [&](const QRectF& strip, bool sorted_order) {
    for (int index = 0; index < L; ++index) {
      const int token = sorted_order ? model.token_at(round, index) : index;
      const int bucket = model.query_bucket(round, token);
      QRectF cell(strip.left() + index * f.cell, strip.top(), f.cell, strip.height());
      if (index + 1 < L) cell.setRight(cell.right() + 0.2 * f.cell);  // no seams in vector output
      const QColor fill = hashed ? lsh_bucket_color(bucket) : neutral;
      p.fillRect(cell, fill);
      if (numbers && hashed) {
        p.setFont(m.small);
        p.setPen(Colormap::contrasting(fill.rgb()));
        p.drawText(QRectF(strip.left() + index * f.cell, strip.top(), f.cell, strip.height()), Qt::AlignCenter,
                   QString::number(bucket));
      }
    }
    p.setPen(QPen(style.foreground, 0.05 * m.line));
    p.setBrush(Qt::NoBrush);
    p.drawRect(strip);
  };
  draw_strip(f.top_strip, false);
  draw_strip_labels(p, f, f.top_labels, true, model, round, false, o.highlight, style, m);
  if (sorted) {
    draw_strip(f.bottom_strip, true);
    draw_strip_labels(p, f, f.bottom_labels, false, model, round, true, o.highlight, style, m);
  }
  if (chunked) {
    // Chunk bar: alternating shades, the window of the highlighted token's chunk in the accent colour.
    std::vector<std::int64_t> window;
    if (o.highlight >= 0) window = g.window_chunks(model.query_chunk(round, o.highlight));
    p.setFont(m.small);
    for (std::int64_t c = 0; c < g.n_chunks; ++c) {
      const QRectF seg(f.chunk_bar.left() + g.chunk_begin(c) * f.cell, f.chunk_bar.top(),
                       (g.chunk_end(c) - g.chunk_begin(c)) * f.cell, f.chunk_bar.height());
      const bool in_window = std::find(window.begin(), window.end(), c) != window.end();
      QColor shade = style.foreground;
      shade.setAlpha(c % 2 ? 40 : 85);
      p.fillRect(seg, in_window ? kAccent : shade);
      const QString text = QStringLiteral("c%1").arg(c);
      if (small_fm.horizontalAdvance(text) < 0.95 * seg.width() && seg.height() >= 0.8 * m.small_line) {
        p.setPen(in_window ? QColor(0, 0, 0) : style.foreground);
        p.drawText(seg, Qt::AlignCenter, text);
      }
    }
    // Boundaries through both the sorted strip and the bar.
    p.setRenderHint(QPainter::Antialiasing, true);
    p.setPen(QPen(style.foreground, std::max(0.08 * m.line, 0.02 * m.line)));
    for (std::int64_t c = 1; c < g.n_chunks; ++c) {
      const double xpos = f.chunk_bar.left() + g.chunk_begin(c) * f.cell;
      p.drawLine(QPointF(xpos, f.bottom_strip.top() - 0.3 * m.line), QPointF(xpos, f.chunk_bar.bottom()));
    }
  }
  // The highlighted token's cells.
  if (o.highlight >= 0 && o.highlight < L) {
    p.setRenderHint(QPainter::Antialiasing, true);
    p.setPen(QPen(style.foreground, 0.12 * m.line));
    p.setBrush(Qt::NoBrush);
    p.drawRect(QRectF(f.top_strip.left() + o.highlight * f.cell, f.top_strip.top(), f.cell, f.top_strip.height()));
    if (sorted) {
      const int s = model.sorted_position(round, o.highlight);
      p.drawRect(QRectF(f.bottom_strip.left() + s * f.cell, f.bottom_strip.top(), f.cell, f.bottom_strip.height()));
    }
  }
  p.restore();
}

// ---- ④⑤⑥ matrices -----------------------------------------------------------------------------

bool round_in_token_order(const LshFigureOptions& o) { return o.stage == LshStage::Unsort; }

HeatmapDataPtr round_data(const LshFigureModel& model, const LshFigureOptions& o) {
  const int round = clamp_round(model, o.round);
  return round_in_token_order(o) ? model.round_tokens(round) : model.round_sorted(round);
}

int round_highlight(const LshFigureModel& model, const LshFigureOptions& o) {
  if (o.highlight < 0 || o.highlight >= model.length()) return -1;
  return round_in_token_order(o) ? o.highlight : model.sorted_position(clamp_round(model, o.round), o.highlight);
}

// A matrix panel: our caption on top (the heatmap's own title left empty), the heatmap below.
QRectF matrix_area(const QRectF& panel, const Metrics& m) { return below_caption(panel, m); }

void draw_matrix_panel(QPainter& p, const QRectF& panel, const QString& caption, const HeatmapData& data,
                       const FigureStyle& style, int highlight, const Metrics& m) {
  draw_caption(p, panel, caption, style, m);
  draw_heatmap_figure(p, matrix_area(panel, m), data, with_highlight(style, highlight));
}

QString round_caption(const LshFigureModel& model, const LshFigureOptions& o) {
  const int round = clamp_round(model, o.round);
  return round_in_token_order(o) ? QStringLiteral("④ Round %1, back in text order").arg(round)
                                 : QStringLiteral("④ Attend, sorted order (round %1)").arg(round);
}

void draw_round_panel(QPainter& p, const QRectF& panel, const LshFigureModel& model, const LshFigureOptions& o,
                      const FigureStyle& style, const Metrics& m) {
  const HeatmapDataPtr data = round_data(model, o);
  const FigureStyle s = with_highlight(style, round_highlight(model, o));
  draw_matrix_panel(p, panel, round_caption(model, o), *data, style, s.highlight_index, m);
  if (round_in_token_order(o)) return;
  // Chunk boundaries of the sorted order (the same positions for sorted queries and sorted keys):
  // each query chunk sees the key chunks of its window.
  const LshGeometry& g = model.extras().geometry;
  const HeatmapFigureLayout layout = compute_heatmap_layout(*data, s, matrix_area(panel, m), p.device());
  if (layout.cell <= 0) return;
  p.save();
  p.setRenderHint(QPainter::Antialiasing, true);
  QColor line = Colormap::contrasting(Colormap::get(data->colormap).color(0.0f));
  line.setAlpha(150);
  p.setPen(QPen(line, std::max(0.04 * m.line, 0.01)));
  const QRectF& mat = layout.matrix;
  for (std::int64_t c = 1; c < g.n_chunks; ++c) {
    const double at = g.chunk_begin(c) * layout.cell;
    p.drawLine(QPointF(mat.left() + at, mat.top()), QPointF(mat.left() + at, mat.bottom()));
    p.drawLine(QPointF(mat.left(), mat.top() + at), QPointF(mat.right(), mat.top() + at));
  }
  p.restore();
}

// ---- ⑦ recall ----------------------------------------------------------------------------------

struct RecallFrame {
  QRectF chart, bars;
};

RecallFrame recall_frame(const QRectF& panel, const Metrics& m) {
  const QRectF area = below_caption(panel, m);
  const double axis_w = 2.6 * m.line;  // tick labels left of the chart
  const double title_h = m.line;       // "mean recall@k = ..."
  const double x_axis_h = 1.3 * m.small_line;
  const double chart_h = std::max(0.0, 0.58 * area.height() - title_h - x_axis_h);
  RecallFrame f;
  f.chart = QRectF(area.left() + axis_w, area.top() + title_h, std::max(0.0, area.width() - axis_w - 0.5 * m.line), chart_h);
  const double bars_top = f.chart.bottom() + x_axis_h + 1.4 * m.small_line;
  f.bars = QRectF(f.chart.left(), bars_top, f.chart.width(), std::max(0.0, area.bottom() - bars_top - 0.2 * m.line));
  return f;
}

void draw_recall_panel(QPainter& p, const QRectF& panel, const LshFigureModel& model, const LshFigureOptions& o,
                       const FigureStyle& style, const Metrics& m, ColormapId colormap) {
  const int K = model.recall_k(), k = clamp_k(model, o.k), L = model.length();
  draw_caption(p, panel, QStringLiteral("⑦ Recall of the exact top-k"), style, m);
  const RecallFrame f = recall_frame(panel, m);
  if (f.chart.width() <= 0 || f.chart.height() <= 0) return;
  const QFontMetricsF small_fm(m.small, p.device());
  p.save();
  p.setRenderHint(QPainter::Antialiasing, true);
  // Headline.
  p.setFont(m.label);
  p.setPen(style.foreground);
  p.drawText(QRectF(panel.left(), f.chart.top() - m.line, panel.width(), m.line), Qt::AlignLeft | Qt::AlignVCenter,
             QFontMetricsF(m.label, p.device())
                 .elidedText(QStringLiteral("mean recall@%1 = %2   (K = %3)").arg(k).arg(model.mean_recall(k), 0, 'f', 3).arg(K),
                             Qt::ElideRight, panel.width()));
  // Axes and ticks.
  const auto x_at = [&](double kk) { return K <= 1 ? f.chart.center().x() : f.chart.left() + (kk - 1) / (K - 1) * f.chart.width(); };
  const auto y_at = [&](double r) { return f.chart.bottom() - r * f.chart.height(); };
  QColor grid = style.foreground;
  grid.setAlpha(60);
  p.setFont(m.small);
  for (double r : {0.0, 0.5, 1.0}) {
    p.setPen(QPen(grid, 0.04 * m.line));
    p.drawLine(QPointF(f.chart.left(), y_at(r)), QPointF(f.chart.right(), y_at(r)));
    p.setPen(style.foreground);
    p.drawText(QRectF(f.chart.left() - 2.5 * m.line, y_at(r) - 0.5 * m.small_line, 2.2 * m.line, m.small_line),
               Qt::AlignRight | Qt::AlignVCenter, QString::number(r, 'g', 2));
  }
  p.setPen(QPen(style.foreground, 0.05 * m.line));
  p.drawLine(f.chart.bottomLeft(), f.chart.bottomRight());
  p.drawLine(f.chart.bottomLeft(), f.chart.topLeft());
  p.setPen(style.foreground);
  const double tick_y = f.chart.bottom() + 0.15 * m.small_line;
  for (int kk : {1, K}) {
    const QString text = QString::number(kk);
    p.drawText(QRectF(x_at(kk) - small_fm.horizontalAdvance(text), tick_y, 2 * small_fm.horizontalAdvance(text), m.small_line),
               Qt::AlignCenter, text);
  }
  p.drawText(QRectF(f.chart.left(), tick_y, f.chart.width(), m.small_line), Qt::AlignCenter, QStringLiteral("k"));
  // The mean curve, and the chosen k.
  const Colormap& map = Colormap::get(colormap);
  const QColor curve = map.diverging() ? style.foreground : QColor(map.color(0.35f));
  QPainterPath path;
  for (int kk = 1; kk <= K; ++kk) {
    const QPointF pt(x_at(kk), y_at(model.mean_recall(kk)));
    if (kk == 1) path.moveTo(pt);
    else path.lineTo(pt);
  }
  p.setPen(QPen(curve, 0.14 * m.line));
  p.setBrush(Qt::NoBrush);
  p.drawPath(path);
  p.setPen(QPen(kAccent, 0.1 * m.line, Qt::DashLine));
  p.drawLine(QPointF(x_at(k), f.chart.top()), QPointF(x_at(k), f.chart.bottom()));
  p.setPen(QPen(style.foreground, 0.08 * m.line));
  p.setBrush(kAccent);
  p.drawEllipse(QPointF(x_at(k), y_at(model.mean_recall(k))), 0.3 * m.line, 0.3 * m.line);
  // Per-query recall at k, in token order.
  if (f.bars.height() > 0 && L > 0) {
    p.setFont(m.small);
    p.setPen(style.foreground);
    p.drawText(QRectF(panel.left(), f.bars.top() - 1.3 * m.small_line, panel.width(), m.small_line),
               Qt::AlignLeft | Qt::AlignVCenter,
               small_fm.elidedText(QStringLiteral("each query's recall@%1 (token order; height 1 = all found)").arg(k),
                                   Qt::ElideRight, panel.width()));
    p.setRenderHint(QPainter::Antialiasing, false);
    const double w = f.bars.width() / L;
    for (int i = 0; i < L; ++i) {
      const float r = model.recall(i, k);
      if (!std::isfinite(r)) continue;
      QRectF bar(f.bars.left() + i * w, f.bars.bottom() - r * f.bars.height(), w, r * f.bars.height());
      if (i + 1 < L) bar.setRight(bar.right() + 0.2 * w);
      p.fillRect(bar, QColor(map.color(r, 0.0f, 1.0f)));
    }
    p.setRenderHint(QPainter::Antialiasing, true);
    p.setPen(QPen(grid, 0.04 * m.line));
    p.setBrush(Qt::NoBrush);
    p.drawRect(f.bars);
    if (o.highlight >= 0 && o.highlight < L) {
      p.setPen(QPen(style.foreground, 0.1 * m.line));
      p.drawRect(QRectF(f.bars.left() + o.highlight * w, f.bars.top(), w, f.bars.height()));
    }
  }
  p.restore();
}

// ---- the whole figure --------------------------------------------------------------------------

// Which panels a step works on (the others are dimmed).
struct Active {
  bool angle = true, sort = true, round_matrix = true, combined = true, cooccurrence = true, recall = true;
};

Active active_panels(LshStage stage) {
  Active a;
  if (stage == LshStage::Overview) return a;
  a = Active{false, false, false, false, false, false};
  switch (stage) {
    case LshStage::Overview: break;
    case LshStage::Rotate: a.angle = true; break;
    case LshStage::Hash: a.angle = a.sort = true; break;
    case LshStage::Sort:
    case LshStage::Chunk: a.sort = true; break;
    case LshStage::Attend: a.round_matrix = true; break;
    case LshStage::Unsort: a.round_matrix = a.combined = a.cooccurrence = a.recall = true; break;
  }
  return a;
}

void draw_header(QPainter& p, const QRectF& header, const LshFigureModel& model, const LshFigureOptions& o,
                 const FigureStyle& style, const Metrics& m) {
  const QStringList lines = header_lines(model, o);
  p.save();
  p.setPen(style.foreground);
  double y = header.top();
  for (int i = 0; i < lines.size(); ++i) {
    const bool first = i == 0 && !o.compact_header;
    const bool causal_note = model.extras().causal && !o.compact_header && i == 2;
    const QFont& font = first ? m.title : m.label;
    p.setFont(font);
    p.setPen(causal_note ? okabe_ito(OkabeIto::Vermillion) : style.foreground);
    const double h = first ? m.title_line : m.line;
    p.drawText(QRectF(header.left(), y, header.width(), h), Qt::AlignLeft | Qt::AlignVCenter,
               QFontMetricsF(font, p.device()).elidedText(lines[i], Qt::ElideRight, header.width()));
    y += h;
  }
  p.restore();
}

template <typename Draw>
void draw_panel(QPainter& p, const QRectF& rect, bool active, bool stepping, const FigureStyle& style, const Metrics& m,
                Draw&& draw) {
  if (rect.width() <= 0 || rect.height() <= 0) return;
  const QRectF area = rect.adjusted(-0.3 * m.line, -0.3 * m.line, 0.3 * m.line, 0.3 * m.line);
  p.save();
  p.setClipRect(area);
  draw();
  if (!active) {
    // A veil of the background over the finished panel (drawing each part translucent would
    // show where neighbouring cells overlap).
    QColor veil = style.background;
    veil.setAlphaF(1.0 - kDimOpacity);
    p.fillRect(area, veil);
  }
  p.restore();
  if (stepping && active) {
    p.save();
    p.setRenderHint(QPainter::Antialiasing, true);
    p.setPen(QPen(kAccent, kFrameLines * m.line));
    p.setBrush(Qt::NoBrush);
    p.drawRoundedRect(rect.adjusted(-0.25 * m.line, -0.25 * m.line, 0.25 * m.line, 0.25 * m.line), 0.3 * m.line, 0.3 * m.line);
    p.restore();
  }
}

// Natural panel side in points: larger for long sequences, whose matrices need the room.
double natural_panel_side(int length) { return 290.0 + std::clamp((length - 32) * (170.0 / 480.0), 0.0, 170.0); }

int nearest_index(double pos, double start, double cell, int count) {
  if (cell <= 0) return -1;
  const int index = static_cast<int>(std::floor((pos - start) / cell));
  return index >= 0 && index < count ? index : -1;
}

}  // namespace

// ---- public --------------------------------------------------------------------------------------

const std::vector<std::string>& lsh_stage_names() {
  static const std::vector<std::string> names = {"overview", "rotate", "hash", "sort", "chunk", "attend", "unsort"};
  return names;
}

std::string lsh_stage_name(LshStage stage) { return lsh_stage_names()[static_cast<std::size_t>(stage_index(stage))]; }

LshStage lsh_stage_from_name(const std::string& name) {
  const std::vector<std::string>& names = lsh_stage_names();
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) {
    std::string allowed;
    for (const std::string& n : names) allowed += (allowed.empty() ? "" : ", ") + n;
    throw ParamError("LSH stage '" + name + "' is not known; allowed: " + allowed);
  }
  return static_cast<LshStage>(it - names.begin());
}

QString lsh_stage_title(LshStage stage) {
  switch (stage) {
    case LshStage::Overview: return QStringLiteral("Overview");
    case LshStage::Rotate: return QStringLiteral("Step 1 of 6 · Rotate");
    case LshStage::Hash: return QStringLiteral("Step 2 of 6 · Hash");
    case LshStage::Sort: return QStringLiteral("Step 3 of 6 · Sort");
    case LshStage::Chunk: return QStringLiteral("Step 4 of 6 · Chunk");
    case LshStage::Attend: return QStringLiteral("Step 5 of 6 · Attend");
    case LshStage::Unsort: return QStringLiteral("Step 6 of 6 · Un-sort");
  }
  return {};
}

QString lsh_stage_explanation(LshStage stage) {
  switch (stage) {
    case LshStage::Overview:
      return QStringLiteral("Every step of the chosen round at once; use Step through to walk it.");
    case LshStage::Rotate:
      return QStringLiteral("Each vector x is multiplied by a random matrix R drawn for this round; ① shows where the "
                            "rotated vectors point.");
    case LshStage::Hash:
      return QStringLiteral("The bucket is the largest entry of [xR, −xR]: vectors pointing the same way share a bucket "
                            "(colour).");
    case LshStage::Sort:
      return QStringLiteral("Tokens are sorted by bucket, ties by position; each line joins a token to its sorted place.");
    case LshStage::Chunk:
      return QStringLiteral("The sorted sequence is cut into equal chunks; a chunk attends to itself and the chunks "
                            "before it (orange: the window of the highlighted token).");
    case LshStage::Attend:
      return QStringLiteral("Softmax inside each window, in sorted order: blocks near the diagonal. Keys outside the "
                            "window get exactly zero.");
    case LshStage::Unsort:
      return QStringLiteral("Results go back to text order; the rounds are combined by their softmax normalisers. "
                            "Co-occurrence and recall show what hashing missed.");
  }
  return {};
}

QColor lsh_bucket_color(int bucket) { return categorical_color(bucket, CategoricalPalette::TolBright); }

LshFigureModel::LshFigureModel(PlaygroundResultPtr result, int layer, int head, ColormapId colormap)
    : result_(std::move(result)), layer_(layer), head_(head), colormap_(colormap) {
  if (!result_) throw ParamError("LSH buckets view: nothing has been computed yet");
  if (layer < 0 || layer >= static_cast<int>(result_->layers.size())) {
    throw ParamError("layer " + std::to_string(layer) + " does not exist; this result has layers 0.." +
                     std::to_string(static_cast<int>(result_->layers.size()) - 1));
  }
  extras_ = std::dynamic_pointer_cast<const ReformerLshExtras>(result_->layers[static_cast<std::size_t>(layer)].extras);
  if (!extras_) throw ParamError("LSH buckets view needs the reformer_lsh variant; this result is " + result_->variant);
  if (head < 0 || head >= extras_->heads) {
    throw ParamError("head " + std::to_string(head) + " does not exist; this model has heads 0.." +
                     std::to_string(extras_->heads - 1));
  }
  labels_ = token_labels(*result_);
  auto combined = std::make_shared<HeatmapData>(*attention_heatmap(*result_, layer, head, colormap));
  combined->title.clear();  // the panel's caption names it
  combined_ = combined;

  const int L = length();
  auto cooc = std::make_shared<HeatmapData>();
  cooc->rows = cooc->cols = L;
  const float* begin = extras_->cooccurrence.data() + static_cast<std::ptrdiff_t>(head) * L * L;
  cooc->values.assign(begin, begin + static_cast<std::ptrdiff_t>(L) * L);
  cooc->row_labels = cooc->col_labels = labels_;
  cooc->value_label = QStringLiteral("rounds");
  cooc->vmin = 0.0f;
  cooc->vmax = static_cast<float>(rounds());
  cooc->colormap = colormap;
  cooccurrence_ = cooc;
  round_sorted_.resize(static_cast<std::size_t>(rounds()));
  round_tokens_.resize(static_cast<std::size_t>(rounds()));
}

int LshFigureModel::query_bucket(int round, int token) const {
  return extras_->query_buckets[extras_->index(head_, round, token)];
}
int LshFigureModel::key_bucket(int round, int token) const { return extras_->key_buckets[extras_->index(head_, round, token)]; }
int LshFigureModel::sorted_position(int round, int token) const {
  return extras_->query_rank[extras_->index(head_, round, token)];
}
int LshFigureModel::token_at(int round, int sorted_position) const {
  return extras_->query_order[extras_->index(head_, round, sorted_position)];
}
int LshFigureModel::query_chunk(int round, int token) const {
  return static_cast<int>(extras_->query_chunk(head_, round, token));
}
float LshFigureModel::recall(int token, int k) const { return extras_->recall.at(head_, token, k - 1); }
float LshFigureModel::mean_recall(int k) const { return extras_->mean_recall.at(head_, k - 1); }
HeatmapDataPtr LshFigureModel::combined() const { return combined_; }
HeatmapDataPtr LshFigureModel::cooccurrence() const { return cooccurrence_; }

HeatmapDataPtr LshFigureModel::round_tokens(int round) const {
  auto& slot = round_tokens_[static_cast<std::size_t>(round)];
  if (slot) return slot;
  const RowMatrix m = extras_->round_matrix(head_, round);
  auto data = std::make_shared<HeatmapData>();
  data->rows = data->cols = length();
  data->values.assign(m.data(), m.data() + m.size());
  data->row_labels = data->col_labels = labels_;
  data->value_label = QStringLiteral("round weight");
  data->vmax = std::max(1e-6f, m.maxCoeff());
  data->colormap = colormap_;
  slot = data;
  return slot;
}

HeatmapDataPtr LshFigureModel::round_sorted(int round) const {
  auto& slot = round_sorted_[static_cast<std::size_t>(round)];
  if (slot) return slot;
  const RowMatrix m = extras_->round_matrix(head_, round);
  const int L = length();
  auto data = std::make_shared<HeatmapData>();
  data->rows = data->cols = L;
  data->values.resize(static_cast<std::size_t>(L) * static_cast<std::size_t>(L));
  const std::int32_t* q_order = extras_->query_order.data() + extras_->index(head_, round, 0);
  const std::int32_t* k_order = extras_->key_order.data() + extras_->index(head_, round, 0);
  for (int s = 0; s < L; ++s) {
    data->row_labels << labels_.value(q_order[s]);
    data->col_labels << labels_.value(k_order[s]);
    for (int t = 0; t < L; ++t) data->values[static_cast<std::size_t>(s) * L + t] = m(q_order[s], k_order[t]);
  }
  data->row_axis = QStringLiteral("query, sorted");
  data->col_axis = QStringLiteral("key, sorted");
  data->value_label = QStringLiteral("round weight");
  data->vmax = std::max(1e-6f, m.maxCoeff());
  data->colormap = colormap_;
  slot = data;
  return slot;
}

QSizeF lsh_figure_size(const LshFigureModel& model, const FigureStyle& style) {
  const QImage device = measuring_device();
  const Metrics m = measure(style, &device);
  const LshFigureOptions overview;  // exported figures show the overview
  const double side = natural_panel_side(model.length());
  const double width = measured_to_points(2 * m.margin + 2 * m.gap) + 3 * side;
  const double height = measured_to_points(2 * m.margin + header_height(model, overview, m) + 0.5 * m.gap + m.gap) + 2 * side;
  return QSizeF(std::ceil(width), std::ceil(height));
}

LshFigureLayout compute_lsh_layout(const LshFigureModel& model, const LshFigureOptions& options, const FigureStyle& style,
                                   const QRectF& target, const QPaintDevice* device) {
  return layout_for(model, options, target, measure(style, device));
}

void draw_lsh_figure(QPainter& p, const QRectF& target, const LshFigureModel& model, const LshFigureOptions& options,
                     const FigureStyle& style) {
  const FigureScope scope(p, target, style);
  const Metrics m = measure(style, p.device());
  const LshFigureLayout l = layout_for(model, options, target, m);
  draw_header(p, l.header, model, options, style, m);
  const Active a = active_panels(options.stage);
  const bool stepping = options.stage != LshStage::Overview;
  const ColormapId colormap = model.combined()->colormap;
  draw_panel(p, l.angle, a.angle, stepping, style, m, [&] { draw_angle_panel(p, l.angle, model, options, style, m); });
  draw_panel(p, l.sort, a.sort, stepping, style, m, [&] { draw_sort_panel(p, l.sort, model, options, style, m); });
  draw_panel(p, l.round_matrix, a.round_matrix, stepping, style, m, [&] { draw_round_panel(p, l.round_matrix, model, options, style, m); });
  draw_panel(p, l.combined, a.combined, stepping, style, m, [&] {
    draw_matrix_panel(p, l.combined, QStringLiteral("⑤ All rounds combined, text order"), *model.combined(), style,
                      options.highlight, m);
  });
  draw_panel(p, l.cooccurrence, a.cooccurrence, stepping, style, m, [&] {
    draw_matrix_panel(p, l.cooccurrence, QStringLiteral("⑥ Co-occurrence across rounds"),
                      *model.cooccurrence(), style, options.highlight, m);
  });
  draw_panel(p, l.recall, a.recall, stepping, style, m, [&] { draw_recall_panel(p, l.recall, model, options, style, m, colormap); });
}

int lsh_token_at(const LshFigureModel& model, const LshFigureOptions& o, const FigureStyle& style, const QRectF& target,
                 const QPaintDevice* device, QPointF pos) {
  const Metrics m = measure(style, device);
  const LshFigureLayout l = layout_for(model, o, target, m);
  const int L = model.length();
  const int round = clamp_round(model, o.round);
  if (l.angle.contains(pos)) {
    const AngleFrame f = angle_frame(model, round, l.angle, m, device);
    const ReformerLshExtras& x = model.extras();
    const auto points = x.angle_points.matrix(model.head() * x.rounds() + round);
    int best = -1;
    double best_d = kHitLines * m.line;
    for (int i = 0; i < points.rows(); ++i) {
      const QPointF at = f.map(points(i, 0), points(i, 1));
      const double d = std::hypot(at.x() - pos.x(), at.y() - pos.y());
      if (d < best_d) {
        best_d = d;
        best = i % L;
      }
    }
    return best;
  }
  if (l.sort.contains(pos)) {
    const SortFrame f = sort_frame(model, l.sort, m, device);
    const int index = nearest_index(pos.x(), f.top_strip.left(), f.cell, L);
    if (index < 0) return -1;
    if (pos.y() <= f.top_strip.bottom()) return index;
    if (pos.y() >= f.bottom_strip.top()) return model.token_at(round, index);
    return -1;
  }
  const auto matrix_token = [&](const QRectF& panel, const HeatmapData& data, bool sorted) {
    const HeatmapFigureLayout hl = compute_heatmap_layout(data, style, matrix_area(panel, m), device);
    int index = -1;
    if (pos.y() >= hl.matrix.top() && pos.y() < hl.matrix.bottom() && pos.x() <= hl.matrix.right()) {
      index = nearest_index(pos.y(), hl.matrix.top(), hl.cell, data.rows);  // query row (or its label)
    } else if (pos.x() >= hl.matrix.left() && pos.x() < hl.matrix.right() && pos.y() >= hl.matrix.bottom()) {
      index = nearest_index(pos.x(), hl.matrix.left(), hl.cell, data.cols);  // key column label
      if (index >= 0 && sorted) {
        return static_cast<int>(model.extras().key_order[model.extras().index(model.head(), round, index)]);
      }
      return index;
    }
    if (index >= 0 && sorted) return model.token_at(round, index);
    return index;
  };
  if (l.round_matrix.contains(pos)) return matrix_token(l.round_matrix, *round_data(model, o), !round_in_token_order(o));
  if (l.combined.contains(pos)) return matrix_token(l.combined, *model.combined(), false);
  if (l.cooccurrence.contains(pos)) return matrix_token(l.cooccurrence, *model.cooccurrence(), false);
  if (l.recall.contains(pos)) {
    const RecallFrame f = recall_frame(l.recall, m);
    if (f.bars.contains(pos)) return nearest_index(pos.x(), f.bars.left(), f.bars.width() / std::max(1, L), L);
  }
  return -1;
}

QPointF lsh_angle_point(const LshFigureModel& model, const LshFigureOptions& o, const FigureStyle& style,
                        const QRectF& target, const QPaintDevice* device, int token) {
  const Metrics m = measure(style, device);
  const LshFigureLayout l = layout_for(model, o, target, m);
  const int round = clamp_round(model, o.round);
  const AngleFrame f = angle_frame(model, round, l.angle, m, device);
  const ReformerLshExtras& x = model.extras();
  const auto points = x.angle_points.matrix(model.head() * x.rounds() + round);
  return f.map(points(token, 0), points(token, 1));
}

QRectF lsh_sorted_cell(const LshFigureModel& model, const LshFigureOptions& o, const FigureStyle& style,
                       const QRectF& target, const QPaintDevice* device, int sorted_position) {
  const Metrics m = measure(style, device);
  const LshFigureLayout l = layout_for(model, o, target, m);
  const SortFrame f = sort_frame(model, l.sort, m, device);
  return QRectF(f.bottom_strip.left() + sorted_position * f.cell, f.bottom_strip.top(), f.cell, f.bottom_strip.height());
}

PaintedFigure lsh_painted_figure(std::shared_ptr<const LshFigureModel> model, const LshFigureOptions& options,
                                 const FigureStyle& style) {
  const QString description = QStringLiteral("Reformer LSH attention, round %1 of %2: angle view, sorted sequence with "
                                             "chunks, round attention, combined weights, co-occurrence, recall@%3")
                                  .arg(clamp_round(*model, options.round))
                                  .arg(model->rounds())
                                  .arg(clamp_k(*model, options.k));
  const QSizeF size = lsh_figure_size(*model, style);
  const QString title = QStringLiteral("AttnLab: Reformer LSH buckets, layer %1, head %2").arg(model->layer()).arg(model->head());
  return PaintedFigure{size, title, description, style.background,
                       [model = std::move(model), options, style](QPainter& painter, const QRectF& target) {
                         draw_lsh_figure(painter, target, *model, options, style);
                       }};
}

}  // namespace attnlab
