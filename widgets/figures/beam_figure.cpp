#include "figures/beam_figure.h"

#include <QFontMetricsF>
#include <QPainter>
#include <QPainterPath>
#include <QPen>
#include <algorithm>
#include <cmath>

namespace attnlab {
namespace {

// Lengths in label line heights.
constexpr double kMarkerLines = 0.8;    // marker diameter
constexpr double kColumnGapLines = 3.0; // between a node's labels and the next column's markers
constexpr double kRowGapLines = 1.0;    // between a node's score line and the next node
constexpr double kPieceChars = 9.0;     // pieces are elided at this many average characters
constexpr double kNbestLines = 22.0;    // width of the n-best column
constexpr double kEdgeLines = 0.07;
constexpr double kBestEdgeLines = 0.2;
constexpr double kMinTreeLines = 12.0;  // the tree's least width (a short greedy path)

QString signed_number(double v, int decimals = 2) {
  QString text = QString::number(v, 'f', decimals);
  if (text.startsWith(QLatin1Char('-'))) text.replace(0, 1, QChar(0x2212));
  return text;
}

QString score_text(const BeamFigureNode& n) { return n.state == BeamFigureNode::State::Root ? QString() : signed_number(n.score); }

// Rank of each node within its step (tree order) and the counts.
struct Grid {
  std::vector<int> rank;
  int steps = 0;  // columns
  int rows = 0;   // most nodes in one step
};

Grid grid_of(const BeamFigureData& data) {
  Grid g;
  std::vector<int> per_step;
  for (const BeamFigureNode& n : data.nodes) {
    if (n.step >= static_cast<int>(per_step.size())) per_step.resize(static_cast<std::size_t>(n.step) + 1, 0);
    g.rank.push_back(per_step[static_cast<std::size_t>(n.step)]++);
  }
  g.steps = static_cast<int>(per_step.size());
  for (const int c : per_step) g.rows = std::max(g.rows, c);
  return g;
}

// Sizes in device units that do not depend on the target.
struct Parts {
  FigureText text;
  double marker = 0, label_w = 0, column = 0, row = 0, nbest_w = 0, nbest_entry = 0;
};

Parts measure_parts(const BeamFigureData& data, const FigureStyle& style, const QPaintDevice* device) {
  Parts p;
  p.text = measure_figure_text(style, device);
  const FigureText& t = p.text;
  const QFontMetricsF bold(t.bold, device), small(t.small, device);
  const double elide = kPieceChars * bold.averageCharWidth();
  for (const BeamFigureNode& n : data.nodes) {
    p.label_w = std::max(p.label_w, bold.horizontalAdvance(bold.elidedText(n.piece, Qt::ElideRight, elide)));
    p.label_w = std::max(p.label_w, small.horizontalAdvance(score_text(n)));
  }
  p.marker = kMarkerLines * t.line;
  p.column = p.marker + t.gap + p.label_w + kColumnGapLines * t.line;
  p.row = t.line + t.small_line + kRowGapLines * t.line;
  p.nbest_w = kNbestLines * t.line;
  p.nbest_entry = 2 * t.line + t.gap;
  return p;
}

double tree_width(const Parts& p, const Grid& g) {
  return std::max(kMinTreeLines * p.text.line, std::max(1, g.steps) * p.column - kColumnGapLines * p.text.line);
}
double tree_height(const Parts& p, const Grid& g) { return std::max(1, g.rows) * p.row; }
double nbest_height(const Parts& p, const BeamFigureData& data) {
  return p.text.line + p.text.gap + static_cast<double>(data.nbest.size()) * p.nbest_entry;
}

BeamFigureLayout layout_from(const BeamFigureData& data, const Parts& p, const QRectF& target) {
  BeamFigureLayout l;
  const FigureText& t = p.text;
  const Grid g = grid_of(data);
  l.figure = target;
  const TitledFrame frame = titled_frame(t, target);
  l.title = frame.title;
  l.legend = frame.legend;
  l.summary = frame.summary;
  // The n-best column on the left (seen first when a long tree scrolls), the tree right of it;
  // the tree takes the body's width beyond its natural one.
  const double natural_tree = tree_width(p, g), gap = 2 * t.line;
  const double natural_w = natural_tree + gap + p.nbest_w;
  const double scale = natural_w > 0 ? frame.body.width() / natural_w : 1.0;
  const double nbest_w = p.nbest_w * std::min(1.0, scale);
  l.nbest = QRectF(frame.body.left(), frame.body.top(), nbest_w, frame.body.height());
  l.tree = QRectF(l.nbest.right() + gap, frame.body.top(), std::max(0.0, frame.body.right() - l.nbest.right() - gap),
                  frame.body.height());
  l.radius = 0.5 * p.marker;
  // Columns spread over the tree's width and rows over its height (rows at most twice their
  // natural pitch); a node's labels keep to its column.
  const double content = p.column - kColumnGapLines * t.line;
  const double column = g.steps > 1 ? std::max(0.0, l.tree.width() - content) / (g.steps - 1) : p.column;
  const double row = g.rows > 0 ? std::min(l.tree.height() / g.rows, 2.0 * p.row) : p.row;
  const double box_w = std::min(content, std::max(p.marker, column - 0.5 * kColumnGapLines * t.line));
  for (std::size_t i = 0; i < data.nodes.size(); ++i) {
    const BeamFigureNode& n = data.nodes[i];
    const double x = l.tree.left() + n.step * column;
    const double y = l.tree.top() + g.rank[i] * row + 0.5 * t.line;
    l.centres.emplace_back(x + l.radius, y);
    l.boxes.emplace_back(x, y - 0.5 * t.line, box_w, t.line + t.small_line);
    if (n.parent >= 0 && n.parent < static_cast<int>(data.nodes.size())) l.edges.emplace_back(n.parent, static_cast<int>(i));
  }
  double y = l.nbest.top() + t.line + t.gap;
  for (std::size_t i = 0; i < data.nbest.size(); ++i) {
    l.nbest_rows.emplace_back(l.nbest.left(), y, l.nbest.width(), 2 * t.line);
    y += p.nbest_entry;
  }
  return l;
}

QColor faded(const QColor& c, double alpha) {
  QColor out = c;
  out.setAlphaF(static_cast<float>(alpha));
  return out;
}

void draw_edges(QPainter& painter, const BeamFigureLayout& l, const BeamFigureData& data, const FigureStyle& style,
                const FigureText& t) {
  painter.save();
  painter.setBrush(Qt::NoBrush);
  // Pruned under kept under the best path.
  for (int pass = 0; pass < 3; ++pass) {
    for (const auto& [parent, child] : l.edges) {
      const BeamFigureNode& c = data.nodes[static_cast<std::size_t>(child)];
      const bool best = c.best && data.nodes[static_cast<std::size_t>(parent)].best;
      const int level = best ? 2 : (c.state == BeamFigureNode::State::Pruned ? 0 : 1);
      if (level != pass) continue;
      const QRectF& from_box = l.boxes[static_cast<std::size_t>(parent)];
      const QPointF from(from_box.right() + 0.3 * t.gap, l.centres[static_cast<std::size_t>(parent)].y());
      const QPointF to = l.centres[static_cast<std::size_t>(child)] - QPointF(l.radius + 0.3 * t.gap, 0);
      QPainterPath path(from);
      const double dx = 0.5 * (to.x() - from.x());
      path.cubicTo(from + QPointF(dx, 0), to - QPointF(dx, 0), to);
      const QColor colour = best ? beam_best_color() : (level == 0 ? faded(style.foreground, 0.3) : faded(style.foreground, 0.75));
      painter.setPen(QPen(colour, (best ? kBestEdgeLines : kEdgeLines) * t.line, Qt::SolidLine, Qt::RoundCap));
      painter.drawPath(path);
    }
  }
  painter.restore();
}

void draw_marker(QPainter& painter, const QPointF& c, double r, BeamFigureNode::State state, bool best, const FigureStyle& style,
                 const FigureText& t) {
  const double pen = kEdgeLines * t.line * 1.5;
  switch (state) {
    case BeamFigureNode::State::Root:
      painter.setPen(Qt::NoPen);
      painter.setBrush(style.foreground);
      painter.drawEllipse(c, r, r);
      break;
    case BeamFigureNode::State::Kept:
      painter.setPen(QPen(style.foreground, pen));
      painter.setBrush(beam_kept_color());
      painter.drawEllipse(c, r, r);
      break;
    case BeamFigureNode::State::Finished:
      painter.setPen(QPen(style.foreground, pen));
      painter.setBrush(beam_finished_color());
      painter.drawRect(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r));
      break;
    case BeamFigureNode::State::Pruned:
      painter.setPen(QPen(faded(style.foreground, 0.45), pen));
      painter.setBrush(style.background);
      painter.drawEllipse(c, 0.8 * r, 0.8 * r);
      break;
  }
  if (best && state != BeamFigureNode::State::Root) {
    painter.setBrush(Qt::NoBrush);
    painter.setPen(QPen(beam_best_color(), kBestEdgeLines * t.line));
    painter.drawEllipse(c, r + 0.15 * t.line, r + 0.15 * t.line);
  }
}

void draw_nodes(QPainter& painter, const BeamFigureLayout& l, const BeamFigureData& data, const FigureStyle& style,
                const FigureText& t) {
  painter.save();
  const QFontMetricsF bold(t.bold, painter.device());
  for (std::size_t i = 0; i < data.nodes.size(); ++i) {
    const BeamFigureNode& n = data.nodes[i];
    draw_marker(painter, l.centres[i], l.radius, n.state, n.best, style, t);
    const QRectF& box = l.boxes[i];
    const double left = box.left() + 2 * l.radius + t.gap;
    const QRectF piece(left, box.top(), box.right() - left, t.line);
    const QRectF score(left, piece.bottom(), box.right() - left, t.small_line);
    const bool pruned = n.state == BeamFigureNode::State::Pruned;
    painter.setPen(pruned ? faded(style.foreground, 0.55) : style.foreground);
    draw_text_line(painter, piece, n.best ? t.bold : t.label, n.piece);
    painter.setPen(faded(style.foreground, pruned ? 0.5 : 0.8));
    draw_text_line(painter, score, t.small, score_text(n));
  }
  painter.restore();
}

void draw_nbest(QPainter& painter, const BeamFigureLayout& l, const BeamFigureData& data, const FigureStyle& style,
                const FigureText& t) {
  if (l.nbest.width() <= t.line) return;
  painter.save();
  painter.setPen(style.foreground);
  draw_text_line(painter, QRectF(l.nbest.left(), l.nbest.top(), l.nbest.width(), t.line), t.bold,
                 QStringLiteral("n-best (%1)").arg(data.nbest.size()));
  for (std::size_t i = 0; i < data.nbest.size() && i < l.nbest_rows.size(); ++i) {
    const BeamFigureEntry& e = data.nbest[i];
    const QRectF& row = l.nbest_rows[i];
    QString head = QStringLiteral("%1.  score %2 · log p %3").arg(i + 1).arg(signed_number(e.score), signed_number(e.log_prob));
    if (!e.finished) head += QStringLiteral(" · cut at the length limit");
    painter.setPen(i == 0 ? beam_best_color() : style.foreground);
    draw_text_line(painter, QRectF(row.left(), row.top(), row.width(), t.line), i == 0 ? t.bold : t.label, head);
    painter.setPen(style.foreground);
    draw_text_line(painter, QRectF(row.left() + t.line, row.top() + t.line, row.width() - t.line, t.line), t.label,
                   e.text.isEmpty() ? QStringLiteral("(empty)") : e.text);
  }
  painter.restore();
}

void draw_legend(QPainter& painter, const BeamFigureLayout& l, const FigureStyle& style, const FigureText& t) {
  double x = l.legend.left();
  const auto marker = [&](BeamFigureNode::State state, bool best) {
    return [&painter, state, best, &style, &t](const QRectF& box) {
      draw_marker(painter, box.center(), 0.32 * t.line, state, best, style, t);
    };
  };
  x = draw_legend_entry(painter, x, l.legend, QStringLiteral("kept in the beam"), t, style, marker(BeamFigureNode::State::Kept, false));
  x = draw_legend_entry(painter, x, l.legend, QStringLiteral("finished (EOS)"), t, style,
                        marker(BeamFigureNode::State::Finished, false));
  x = draw_legend_entry(painter, x, l.legend, QStringLiteral("pruned"), t, style, marker(BeamFigureNode::State::Pruned, false));
  draw_legend_entry(painter, x, l.legend, QStringLiteral("best hypothesis"), t, style, [&](const QRectF& box) {
    painter.setPen(QPen(beam_best_color(), kBestEdgeLines * t.line, Qt::SolidLine, Qt::RoundCap));
    painter.drawLine(QPointF(box.left(), box.center().y()), QPointF(box.right(), box.center().y()));
  });
}

}  // namespace

QColor beam_kept_color() { return okabe_ito(OkabeIto::Blue); }
QColor beam_finished_color() { return okabe_ito(OkabeIto::BluishGreen); }
QColor beam_best_color() { return okabe_ito(OkabeIto::Vermillion); }

BeamFigureData beam_figure_data(const SearchResult& search, const std::vector<std::string>& pieces,
                                const std::vector<std::string>& nbest_text, const BeamSearchInfo& info) {
  BeamFigureData d;
  const int steps = search.tree.empty() ? 0 : std::max_element(search.tree.begin(), search.tree.end(), [](const BeamNode& a, const BeamNode& b) {
                                                return a.step < b.step;
                                              })->step;
  d.title = info.beam > 1 ? QStringLiteral("Beam search · width %1 · length penalty %2").arg(info.beam).arg(info.length_penalty)
                          : QStringLiteral("Greedy search");
  for (std::size_t i = 0; i < search.tree.size(); ++i) {
    const BeamNode& b = search.tree[i];
    BeamFigureNode n;
    n.step = b.step;
    n.parent = static_cast<int>(b.parent);
    n.piece = QString::fromStdString(i < pieces.size() ? pieces[i] : std::to_string(b.token));
    n.log_prob = b.log_prob;
    n.score = b.score;
    n.state = b.parent < 0 ? BeamFigureNode::State::Root
              : b.finished ? BeamFigureNode::State::Finished
              : b.kept     ? BeamFigureNode::State::Kept
                           : BeamFigureNode::State::Pruned;
    d.nodes.push_back(n);
  }
  // The best path: from the root, the child with each next token of the best hypothesis.
  if (!search.hypotheses.empty() && !d.nodes.empty()) {
    const Hypothesis& best = search.hypotheses.front();
    std::vector<std::int32_t> path = best.tokens;
    if (best.finished) path.push_back(info.eos);
    int at = 0;
    d.nodes[0].best = true;
    for (const std::int32_t token : path) {
      int next = -1;
      for (std::size_t i = 0; i < search.tree.size() && next < 0; ++i) {
        if (search.tree[i].parent == at && search.tree[i].token == token) next = static_cast<int>(i);
      }
      if (next < 0) break;
      d.nodes[static_cast<std::size_t>(next)].best = true;
      at = next;
    }
  }
  for (std::size_t i = 0; i < search.hypotheses.size(); ++i) {
    const Hypothesis& h = search.hypotheses[i];
    d.nbest.push_back(BeamFigureEntry{QString::fromStdString(i < nbest_text.size() ? nbest_text[i] : std::string()), h.score,
                                      h.log_prob, h.finished});
  }
  const auto candidates = search.tree.empty() ? 0 : static_cast<int>(search.tree.size()) - 1;
  d.summary = QStringLiteral("%1 step%2 · %3 candidate%4 drawn").arg(steps).arg(steps == 1 ? "" : "s").arg(candidates).arg(candidates == 1 ? "" : "s");
  if (!search.hypotheses.empty()) d.summary += QStringLiteral(" · best score %1").arg(signed_number(search.hypotheses.front().score));
  return d;
}

int BeamFigureLayout::node_at(const QPointF& pos) const {
  for (std::size_t i = 0; i < boxes.size(); ++i)
    if (boxes[i].contains(pos)) return static_cast<int>(i);
  return -1;
}

QSizeF beam_figure_size(const BeamFigureData& data, const FigureStyle& style) {
  const QImage device = measuring_device();
  const Parts p = measure_parts(data, style, &device);
  const Grid g = grid_of(data);
  const FigureText& t = p.text;
  const double width = 2 * t.margin + tree_width(p, g) + 2 * t.line + p.nbest_w;
  const double body = std::max(tree_height(p, g), nbest_height(p, data));
  const double height = titled_frame_header(t) + body + titled_frame_footer(t);
  return measured_size_in_points(QSizeF(width, height));
}

BeamFigureLayout compute_beam_layout(const BeamFigureData& data, const FigureStyle& style, const QRectF& target,
                                     const QPaintDevice* device) {
  return layout_from(data, measure_parts(data, style, device), target);
}

void draw_beam_figure(QPainter& painter, const QRectF& target, const BeamFigureData& data, const FigureStyle& style) {
  FigureScope scope(painter, target, style);
  const Parts p = measure_parts(data, style, painter.device());
  const BeamFigureLayout l = layout_from(data, p, target);
  const FigureText& t = p.text;
  // Left-aligned: a long tree scrolls, and its start (the n-best, the root) is what shows first.
  painter.setPen(style.foreground);
  draw_text_line(painter, l.title, t.title, data.title);
  if (data.nodes.empty()) {
    draw_note_box(painter, l.tree, t, style, 0.05, QStringLiteral("No search to draw."));
  } else {
    draw_edges(painter, l, data, style, t);
    draw_nodes(painter, l, data, style, t);
  }
  draw_nbest(painter, l, data, style, t);
  draw_legend(painter, l, style, t);
  draw_summary_line(painter, l.summary, t, style, data.summary);
}

PaintedFigure beam_painted_figure(BeamFigureDataPtr data, const FigureStyle& style) {
  PaintedFigure figure;
  figure.size = beam_figure_size(*data, style);
  figure.title = data->title;
  figure.description = QStringLiteral("AttnLab beam tree: %1").arg(data->summary);
  figure.background = style.background;
  figure.draw = [data, style](QPainter& painter, const QRectF& target) { draw_beam_figure(painter, target, *data, style); };
  return figure;
}

QString beam_node_tip(const BeamFigureData& data, int index) {
  if (index < 0 || index >= static_cast<int>(data.nodes.size())) return {};
  const BeamFigureNode& n = data.nodes[static_cast<std::size_t>(index)];
  if (n.state == BeamFigureNode::State::Root) return QStringLiteral("<s>: the start of every hypothesis");
  const char* fate = n.state == BeamFigureNode::State::Finished ? "finished: a result"
                     : n.state == BeamFigureNode::State::Kept   ? "kept in the beam"
                                                                : "pruned";
  QString tip = QStringLiteral("step %1 · “%2” · log p %3 · score %4 · %5")
                    .arg(n.step)
                    .arg(n.piece, signed_number(n.log_prob, 3), signed_number(n.score, 3), QString::fromLatin1(fate));
  if (n.best) tip += QStringLiteral(" · on the best path");
  return tip;
}

}  // namespace attnlab
