#include "figures/recurrent_figure.h"

#include <QFile>
#include <QFontMetricsF>
#include <QPainterPath>
#include <algorithm>
#include <cmath>
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
constexpr double kNaturalPanelLines = 20;  // longer side of a panel's matrix at the natural size
constexpr double kGridLines = 0.08;        // window grid over the token attention
constexpr double kFrameLines = 0.05;
constexpr double kMarkLines = 0.18;        // selected window band, window boundary
constexpr double kHighlightLines = 0.1;    // the linked token's row or column
constexpr double kNoteUnitHeight = 0.4;    // the note panel, in panel sides
constexpr int kAxisTitleRows = 6;          // fewer rows leave no room for a rotated axis title
constexpr double kAttentionScale = 1.5;    // the token attention's side, in panel sides
constexpr double kStripScale = 1.3;        // the state strips' longer side, in panel sides
constexpr double kStripGapLines = 0.8;     // between the strips of the state column

enum class PanelKind { Norms, Gates, Attention, StateToken, TokenState, Note, Column };

// Everything the figure shows, gathered once per draw.
struct Content {
  const PlaygroundResult* result = nullptr;
  const BlockRecurrentTrace* trace = nullptr;
  int layer = 0, head = 0, highlight = -1;
  std::int64_t length = 0, window = 0, window_first = 0, window_tokens = 0, span_first = 0, span_tokens = 0;
  QStringList tokens;
  QString type;
  bool recurrent = false;
  HeatmapData attention, norms, gates, state_token, token_state;  // the last four only when recurrent
};

QStringList numbered(std::int64_t count, const QString& prefix = QString()) {
  QStringList out;
  for (std::int64_t i = 0; i < count; ++i) out << prefix + QString::number(i);
  return out;
}

const BlockRecurrentTrace& checked_trace(const ViewContext& context, int* layer) {
  const BlockRecurrentTrace& trace =
      checked_model_layer_extra<BlockRecurrentTrace>(context, "recurrent", "block_recurrent", "the result has no block-recurrent layer");
  *layer = model_view_layer(context, "block_recurrent");
  return trace;
}

bool has_state(const BlockRecurrentTrace& t) {
  return t.recurrent && t.state_norms.rank() == 2 && t.gate_values.rank() == 2 && t.state_token_attention.rank() == 3 &&
         t.token_state_attention.rank() == 3 && t.windows > 0;
}

void require_state(const Content& c) {
  if (!c.recurrent) {
    throw ParamError("view 'recurrent': layer " + std::to_string(c.layer) + " is not recurrent; it carries no state");
  }
}

HeatmapData attention_heatmap(const Content& c, const Tensor& weights, ColormapId colormap) {
  HeatmapData h;
  h.rows = static_cast<int>(c.length);
  h.cols = static_cast<int>(c.length);
  const std::int64_t n = c.length * c.length;
  const float* begin = weights.data() + static_cast<std::int64_t>(c.head) * n;
  h.values.assign(begin, begin + n);
  h.row_labels = c.tokens;
  h.col_labels = c.tokens;
  h.vmin = 0.0f;
  h.vmax = largest_finite(h.values);
  h.colormap = sequential_colormap(colormap);
  return h;
}

HeatmapData norms_heatmap(const Content& c, ColormapId colormap) {
  const Tensor& n = c.trace->state_norms;  // [n_w + 1, S]
  HeatmapData h;
  h.rows = static_cast<int>(n.dim(0));
  h.cols = static_cast<int>(n.dim(1));
  h.values.assign(n.data(), n.data() + n.size());
  h.row_labels = numbered(n.dim(0), QStringLiteral("s"));
  h.col_labels = numbered(n.dim(1));
  h.row_axis.clear();  // the row labels s0, s1, ... say it
  h.col_axis = QStringLiteral("slot");
  h.value_label = QStringLiteral("‖s‖");
  h.vmin = 0.0f;
  h.vmax = largest_finite(h.values);
  h.colormap = sequential_colormap(colormap);
  return h;
}

HeatmapData gates_heatmap(const Content& c, ColormapId colormap) {
  const Tensor& g = c.trace->gate_values;  // [n_w, S]
  HeatmapData h;
  h.rows = static_cast<int>(g.dim(0));
  h.cols = static_cast<int>(g.dim(1));
  h.values.assign(g.data(), g.data() + g.size());
  h.row_labels = numbered(g.dim(0));
  h.col_labels = numbered(g.dim(1));
  h.row_axis = h.rows >= kAxisTitleRows ? QStringLiteral("window") : QString();  // one row: the caption says it
  h.col_axis = QStringLiteral("slot");
  h.value_label = QStringLiteral("kept");
  h.vmin = 0.0f;
  h.vmax = 1.0f;
  h.colormap = sequential_colormap(colormap);
  return h;
}

// States of window w over the tokens of windows w − 1 and w: column c of the trace's table is
// token (w − 1)·W + c; the columns before the first token (w = 0) are left out.
HeatmapData state_token_heatmap(const Content& c, ColormapId colormap) {
  const BlockRecurrentTrace& t = *c.trace;
  const std::int64_t S = t.state_size, column0 = c.span_first - (c.window - 1) * t.window;
  HeatmapData h;
  h.rows = static_cast<int>(S);
  h.cols = static_cast<int>(c.span_tokens);
  h.values.resize(static_cast<std::size_t>(S * c.span_tokens));
  for (std::int64_t s = 0; s < S; ++s)
    for (std::int64_t k = 0; k < c.span_tokens; ++k)
      h.values[static_cast<std::size_t>(s * c.span_tokens + k)] = t.state_token_attention.at(c.window, s, column0 + k);
  h.row_labels = numbered(S);
  h.col_labels = c.tokens.mid(static_cast<qsizetype>(c.span_first), static_cast<qsizetype>(c.span_tokens));
  h.row_axis = QStringLiteral("slot");
  h.col_axis = c.window > 0 ? QStringLiteral("token of windows %1 and %2 (read)").arg(c.window - 1).arg(c.window)
                            : QStringLiteral("token of window 0 (read)");
  h.value_label = QStringLiteral("weight");
  h.vmin = 0.0f;
  h.vmax = largest_finite(h.values);
  h.colormap = sequential_colormap(colormap);
  return h;
}

// Tokens of window w over the states s_w, transposed to the states' layout: state slots as rows,
// the window's tokens as columns.
HeatmapData token_state_heatmap(const Content& c, ColormapId colormap) {
  const BlockRecurrentTrace& t = *c.trace;
  const std::int64_t S = t.state_size;
  HeatmapData h;
  h.rows = static_cast<int>(S);
  h.cols = static_cast<int>(c.window_tokens);
  h.values.resize(static_cast<std::size_t>(c.window_tokens * S));
  for (std::int64_t s = 0; s < S; ++s)
    for (std::int64_t k = 0; k < c.window_tokens; ++k)
      h.values[static_cast<std::size_t>(s * c.window_tokens + k)] = t.token_state_attention.at(c.window, k, s);
  h.row_labels = numbered(S);
  h.col_labels = c.tokens.mid(static_cast<qsizetype>(c.window_first), static_cast<qsizetype>(c.window_tokens));
  h.row_axis = QStringLiteral("slot");
  h.col_axis = QStringLiteral("token of window %1 (the reader)").arg(c.window);
  h.value_label = QStringLiteral("weight");
  h.vmin = 0.0f;
  h.vmax = largest_finite(h.values);
  h.colormap = sequential_colormap(colormap);
  return h;
}

Content gather(const ViewContext& context, const RecurrentFigureOptions& options) {
  Content c;
  c.trace = &checked_trace(context, &c.layer);
  c.result = context.result.get();
  const BlockRecurrentTrace& t = *c.trace;
  const Tensor& weights = c.result->layers[static_cast<std::size_t>(c.layer)].weights;
  c.length = c.result->length();
  if (weights.shape() != Shape{c.result->heads(), c.length, c.length}) {
    throw ParamError("view 'recurrent': layer " + std::to_string(c.layer) + " holds no token attention weights");
  }
  c.head = context.head;
  c.highlight = highlighted_token(context, c.length);
  c.tokens = token_labels(*c.result);
  c.type = QString::fromStdString(c.result->layer_types.at(static_cast<std::size_t>(c.layer)));
  c.recurrent = has_state(t);
  c.window = resolve_recurrent_window(t, options.window);
  c.window_first = std::min(c.length, c.window * t.window);
  c.window_tokens = std::min(c.length, (c.window + 1) * t.window) - c.window_first;
  c.span_first = std::max<std::int64_t>(0, (c.window - 1) * t.window);
  c.span_tokens = c.window_first + c.window_tokens - c.span_first;
  c.attention = attention_heatmap(c, weights, context.colormap);
  if (c.recurrent) {
    c.norms = norms_heatmap(c, context.colormap);
    c.gates = gates_heatmap(c, context.colormap);
    c.state_token = state_token_heatmap(c, context.colormap);
    c.token_state = token_state_heatmap(c, context.colormap);
  }
  return c;
}

// The state panels stand in a column beside the token attention, one strip under the other; the
// two cross-attention tables share a line when they are taller than wide (few tokens).
struct StripColumn {
  std::vector<std::vector<FlowPanel>> lines;
  double left = 0;  // room left of the matrices (the widest row labels): matrices align on it

  // The column as one panel. Its lines differ in their matrix widths and fixed rooms; the column
  // takes those of the line that is widest at `reference_side`, exact near that side (the
  // natural size) and close elsewhere. Heights add up line by line (each line's tallest strip).
  FlowPanel as_panel(double gap, double reference_side) const {
    FlowPanel p{static_cast<int>(PanelKind::Column), 0, 0, left, 0, 0, 0};
    double widest = -1, fixed_h = 0;
    for (std::size_t l = 0; l < lines.size(); ++l) {
      double unit_w = 0, fixed_w = left - lines[l].front().left, unit_h = 0, line_fixed_h = 0;
      for (std::size_t i = 0; i < lines[l].size(); ++i) {
        const FlowPanel& s = lines[l][i];
        unit_w += s.unit_w;
        fixed_w += (i == 0 ? 0.0 : s.left + gap) + s.right;
        unit_h = std::max(unit_h, s.unit_h);
        line_fixed_h = std::max(line_fixed_h, s.top + s.bottom);
      }
      if (unit_w * reference_side + fixed_w > widest) {
        widest = unit_w * reference_side + fixed_w;
        p.unit_w = unit_w;
        p.right = fixed_w;
      }
      p.unit_h += unit_h;
      fixed_h += line_fixed_h + (l > 0 ? gap : 0.0);
    }
    p.bottom = fixed_h;
    return p;
  }
};

StripColumn strip_column(const Content& c, const FigureStyle& style, const FigureText& t, const QPaintDevice* device) {
  StripColumn col;
  const auto strip = [&](PanelKind kind, const HeatmapData& data) {
    return heatmap_flow_panel(static_cast<int>(kind), data, style, t, device, kStripScale);
  };
  col.lines.push_back({strip(PanelKind::Norms, c.norms)});
  col.lines.push_back({strip(PanelKind::Gates, c.gates)});
  const FlowPanel reads = strip(PanelKind::StateToken, c.state_token), read = strip(PanelKind::TokenState, c.token_state);
  if (reads.unit_h > reads.unit_w && read.unit_h > read.unit_w) {
    col.lines.push_back({reads, read});
  } else {
    col.lines.push_back({reads});
    col.lines.push_back({read});
  }
  for (const auto& line : col.lines) col.left = std::max(col.left, line.front().left);
  return col;
}

std::vector<FlowPanel> make_panels(const Content& c, const FigureStyle& style, const FigureText& t, const QPaintDevice* device) {
  std::vector<FlowPanel> panels;
  panels.push_back(heatmap_flow_panel(static_cast<int>(PanelKind::Attention), c.attention, style, t, device, kAttentionScale));
  if (c.recurrent) {
    panels.push_back(strip_column(c, style, t, device).as_panel(kStripGapLines * t.line, kNaturalPanelLines * t.line));
  } else {
    panels.push_back(FlowPanel{static_cast<int>(PanelKind::Note), 1, kNoteUnitHeight, t.gap, t.gap, t.line + t.gap, t.gap});
  }
  return panels;
}

// Title above the panels; the legend and the summary below.
PanelFlowSpacing spacing_for(const FigureText& t) { return titled_flow_spacing(t, kPanelGapLines, kRowGapLines); }

RecurrentFigureLayout layout_content(const Content& c, const FigureStyle& style, const QRectF& target, const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  const std::vector<FlowPanel> panels = make_panels(c, style, t, device);
  const PanelFlow placement = flow_panels(panels, target, spacing_for(t));
  const double side = placement.side;
  RecurrentFigureLayout layout;
  layout.figure = target;
  const TitledFrame frame = titled_frame(t, target, placement);
  layout.title = frame.title;
  layout.legend = frame.legend;
  layout.summary = frame.summary;
  layout.layer = c.layer;
  layout.recurrent = c.recurrent;
  layout.length = c.length;
  layout.window = c.window;
  layout.window_first = c.window_first;
  layout.window_tokens = c.window_tokens;
  layout.span_first = c.span_first;
  layout.span_tokens = c.span_tokens;
  const auto place = [&](PanelKind kind, const QRectF& outer, const FlowPanel& p) {
    // The heatmap's target: below the caption, exactly as large as the panel needs, so that the
    // matrix starts `p.left` from the left and right under the caption.
    const QRectF heat(outer.left(), outer.top() + p.top, p.left + p.unit_w * side + p.right, p.unit_h * side + p.bottom);
    layout.panels.push_back(QRectF(outer.topLeft(), QSizeF(heat.width(), heat.bottom() - outer.top())));
    switch (kind) {
      case PanelKind::Norms: layout.norms_panel = heat; layout.norms = compute_heatmap_layout(c.norms, style, heat, device); break;
      case PanelKind::Gates: layout.gates_panel = heat; layout.gates = compute_heatmap_layout(c.gates, style, heat, device); break;
      case PanelKind::Attention:
        layout.attention_panel = heat;
        layout.attention = compute_heatmap_layout(c.attention, style, heat, device);
        break;
      case PanelKind::StateToken:
        layout.state_token_panel = heat;
        layout.state_token = compute_heatmap_layout(c.state_token, style, heat, device);
        break;
      case PanelKind::TokenState:
        layout.token_state_panel = heat;
        layout.token_state = compute_heatmap_layout(c.token_state, style, heat, device);
        break;
      case PanelKind::Note:
      case PanelKind::Column: break;
    }
  };
  place(PanelKind::Attention, placement.outer[0], panels[0]);
  if (c.recurrent) {
    const StripColumn column = strip_column(c, style, t, device);
    const double gap = kStripGapLines * t.line;
    const QRectF& outer = placement.outer[1];
    double y = outer.top();
    for (const auto& line : column.lines) {
      double x = outer.left() + column.left - line.front().left, line_h = 0;
      for (const FlowPanel& s : line) {
        place(static_cast<PanelKind>(s.kind), QRectF(x, y, 0, 0), s);
        x += s.left + s.unit_w * side + s.right + gap;
        line_h = std::max(line_h, s.top + s.unit_h * side + s.bottom);
      }
      y += line_h + gap;
    }
  } else {
    layout.note = panels[1].inner(placement.outer[1], side);
    layout.panels.push_back(placement.outer[1]);
  }
  return layout;
}

// ---- drawing ---------------------------------------------------------------------------------

// A caption above `area`, within its panel: the next strip's heatmap fills its own background.
void draw_caption(QPainter& painter, const RecurrentFigureLayout& layout, const QRectF& area, const FigureText& t,
                  const FigureStyle& style, const QString& text) {
  draw_caption_above(painter, area, caption_room(layout.panels, area, 0.0), t, style.foreground, text);
}

// The linked token's row (or column) of a heatmap whose rows (or columns) are tokens first.. .
void outline_token(QPainter& painter, const HeatmapFigureLayout& h, const HeatmapData& data, bool rows, std::int64_t index,
                   const FigureText& t) {
  if (h.cell <= 0 || index < 0 || index >= (rows ? data.rows : data.cols)) return;
  const QRectF& m = h.matrix;
  const double at = static_cast<double>(index) * h.cell;
  draw_outline(painter, rows ? QRectF(m.left(), m.top() + at, m.width(), h.cell) : QRectF(m.left() + at, m.top(), h.cell, m.height()),
               heatmap_outline_color(data), kHighlightLines * t.line);
}

// The band of window w as a staircase (cell units: x = key, y = query): its rows r0 .. r1 − 1, row
// i seeing the keys c0 .. i.
QPainterPath window_band(const HeatmapFigureLayout& h, std::int64_t c0, std::int64_t r0, std::int64_t r1) {
  const auto point = [&](std::int64_t col, std::int64_t row) {
    return QPointF(h.matrix.left() + static_cast<double>(col) * h.cell, h.matrix.top() + static_cast<double>(row) * h.cell);
  };
  QPainterPath band;
  band.moveTo(point(c0, r0));
  for (std::int64_t i = r0; i < r1; ++i) {
    band.lineTo(point(i + 1, i));
    band.lineTo(point(i + 1, i + 1));
  }
  band.lineTo(point(c0, r1));
  band.closeSubpath();
  return band;
}

// The banded window mask over the token attention: the keys no query of a window may see (before
// the previous window, after the query) greyed out, window boundaries dashed, and the band of
// the selected window outlined.
void draw_window_marks(QPainter& painter, const RecurrentFigureLayout& layout, const Content& c, const FigureText& t,
                       const FigureStyle& style) {
  const HeatmapFigureLayout& h = layout.attention;
  if (h.cell <= 0) return;
  const QRectF& m = h.matrix;
  const std::int64_t W = c.trace->window;
  painter.save();
  QPainterPath masked;
  masked.setFillRule(Qt::OddEvenFill);
  masked.addRect(m);
  for (std::int64_t first = 0; first < c.length; first += W) {
    masked.addPath(window_band(h, std::max<std::int64_t>(0, first - W), first, std::min(c.length, first + W)));
  }
  painter.setPen(Qt::NoPen);
  painter.setBrush(recurrent_masked_color(style));
  painter.drawPath(masked);
  QColor grid = Colormap::contrasting(Colormap::get(c.attention.colormap).color(0.0f));
  grid.setAlphaF(0.6f);
  painter.setPen(QPen(grid, kGridLines * t.line, Qt::DashLine));
  for (std::int64_t k = W; k < c.length; k += W) {
    const double at = static_cast<double>(k) * h.cell;
    painter.drawLine(QPointF(m.left() + at, m.top()), QPointF(m.left() + at, m.bottom()));
    painter.drawLine(QPointF(m.left(), m.top() + at), QPointF(m.right(), m.top() + at));
  }
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(recurrent_window_color(), kMarkLines * t.line, Qt::SolidLine, Qt::FlatCap, Qt::MiterJoin));
  painter.drawPath(window_band(h, c.span_first, c.window_first, c.window_first + c.window_tokens));
  painter.setPen(QPen(style.foreground, kFrameLines * t.line));
  painter.drawRect(m);
  painter.restore();
}

// In the states' attention: the boundary between the tokens of windows w − 1 and w.
void draw_span_boundary(QPainter& painter, const RecurrentFigureLayout& layout, const Content& c, const FigureText& t) {
  const HeatmapFigureLayout& h = layout.state_token;
  if (h.cell <= 0 || c.window_first <= c.span_first) return;
  const double x = h.matrix.left() + static_cast<double>(c.window_first - c.span_first) * h.cell;
  draw_column_boundary(painter, h.matrix, x, recurrent_window_color(), kMarkLines * t.line, t);
}

QString token_span_text(const Content& c, std::int64_t first, std::int64_t count) {
  if (count <= 0) return QStringLiteral("no tokens");
  const std::int64_t last = first + count - 1;
  return QStringLiteral("tokens %1–%2 (“%3” … “%4”)")
      .arg(first)
      .arg(last)
      .arg(c.tokens.value(static_cast<int>(first)))
      .arg(c.tokens.value(static_cast<int>(last)));
}

QString layer_list(const std::vector<int>& layers) {
  QStringList out;
  for (int l : layers) out << QString::number(l);
  return out.join(QStringLiteral(", "));
}

QString note_text(const Content& c) {
  const std::vector<int> others = recurrent_state_layers(*c.result);
  QString text = QStringLiteral("Layer %1 is a plain sliding-window layer (recurrent = false): it carries no state, so it "
                                "has no state norms, gates or state ↔ token attention to show. ")
                     .arg(c.layer);
  if (others.empty()) {
    text += QStringLiteral("No layer of this model is recurrent.");
  } else {
    text += QStringLiteral("The state lives in layer%1 %2: select %3 to see it.")
                .arg(others.size() > 1 ? QStringLiteral("s") : QString())
                .arg(layer_list(others))
                .arg(others.size() > 1 ? QStringLiteral("one of them") : QStringLiteral("it"));
  }
  return text;
}

void draw_note(QPainter& painter, const RecurrentFigureLayout& layout, const Content& c, const FigureText& t, const FigureStyle& style) {
  if (layout.note.isEmpty()) return;
  draw_caption(painter, layout, layout.note, t, style, QStringLiteral("No recurrent state in layer %1").arg(c.layer));
  draw_note_box(painter, layout.note, t, style, kGridLines, note_text(c));
}

QString legend_text(const Content& c) {
  const BlockRecurrentTrace& t = *c.trace;
  if (!c.recurrent) {
    return QStringLiteral("Grey: keys outside the window mask · dashed: window boundaries every W = %1 tokens · outlined: "
                          "the band of window %2")
        .arg(t.window)
        .arg(c.window);
  }
  const QString gate = t.gate == "lstm"    ? QStringLiteral("forget gate F")
                       : t.gate == "full"  ? QStringLiteral("gate G")
                                           : QStringLiteral("σ(gate_bias)");
  return QStringLiteral("‖s_w‖ stands for the D = %1 components of a slot · kept: mean over D of the %2 · state ↔ token "
                        "weights: mean over heads · grey: masked keys")
      .arg(c.result->model.d_model)
      .arg(gate);
}

QString summary_text(const Content& c) {
  const BlockRecurrentTrace& t = *c.trace;
  QString text = QStringLiteral("L = %1 tokens · W = %2 · %3 window%4").arg(c.length).arg(t.window).arg(t.windows).arg(t.windows == 1 ? QString() : QStringLiteral("s"));
  if (c.recurrent) text += QStringLiteral(" · S = %1 state slots · gate %2").arg(t.state_size).arg(QString::fromStdString(t.gate));
  text += QStringLiteral(" · window %1: %2").arg(c.window).arg(token_span_text(c, c.window_first, c.window_tokens));
  if (c.highlight >= 0) {
    text += QStringLiteral(" · token #%1 “%2” is in window %3").arg(c.highlight).arg(c.tokens.value(c.highlight)).arg(c.highlight / t.window);
  }
  return text;
}

}  // namespace

int RecurrentFigureLayout::token_at(const QPointF& pos) const {
  const auto cell_index = [](const HeatmapFigureLayout& h, const QPointF& p, bool row) {
    return static_cast<std::int64_t>((row ? p.y() - h.matrix.top() : p.x() - h.matrix.left()) / h.cell);
  };
  if (attention.cell > 0 && attention.matrix.contains(pos)) return static_cast<int>(std::min(length - 1, cell_index(attention, pos, true)));
  if (state_token.cell > 0 && state_token.matrix.contains(pos)) {
    return static_cast<int>(span_first + std::min(span_tokens - 1, cell_index(state_token, pos, false)));
  }
  if (token_state.cell > 0 && token_state.matrix.contains(pos)) {
    return static_cast<int>(window_first + std::min(window_tokens - 1, cell_index(token_state, pos, false)));
  }
  return -1;
}

const BlockRecurrentTrace* block_recurrent_trace(const ViewContext& context) {
  return model_layer_extra<BlockRecurrentTrace>(context, "block_recurrent");
}

std::int64_t resolve_recurrent_window(const BlockRecurrentTrace& trace, int window) {
  if (trace.windows <= 0) return 0;
  return std::clamp<std::int64_t>(window, 0, trace.windows - 1);
}

std::vector<int> recurrent_state_layers(const PlaygroundResult& result) {
  std::vector<int> out;
  for (std::size_t i = 0; i < result.layers.size(); ++i) {
    const auto* t = dynamic_cast<const BlockRecurrentTrace*>(result.layers[i].layer_extra("block_recurrent"));
    if (t && has_state(*t)) out.push_back(static_cast<int>(i));
  }
  return out;
}

QColor recurrent_window_color() { return okabe_ito(OkabeIto::Vermillion); }

QColor recurrent_masked_color(const FigureStyle& style) {
  const QColor& b = style.background;
  const QColor& f = style.foreground;
  const auto mix = [](int x, int y) { return (x * 82 + y * 18 + 50) / 100; };
  return QColor(mix(b.red(), f.red()), mix(b.green(), f.green()), mix(b.blue(), f.blue()));
}

HeatmapData recurrent_norms_heatmap(const ViewContext& context) {
  const Content c = gather(context, {});
  require_state(c);
  return c.norms;
}

HeatmapData recurrent_gates_heatmap(const ViewContext& context) {
  const Content c = gather(context, {});
  require_state(c);
  return c.gates;
}

HeatmapData recurrent_attention_heatmap(const ViewContext& context) { return gather(context, {}).attention; }

HeatmapData recurrent_state_token_heatmap(const ViewContext& context, const RecurrentFigureOptions& options) {
  const Content c = gather(context, options);
  require_state(c);
  return c.state_token;
}

HeatmapData recurrent_token_state_heatmap(const ViewContext& context, const RecurrentFigureOptions& options) {
  const Content c = gather(context, options);
  require_state(c);
  return c.token_state;
}

QSizeF recurrent_figure_size(const ViewContext& context, const FigureStyle& style, const RecurrentFigureOptions& options) {
  const Content c = gather(context, options);
  // The token attention and the state column (or the note) side by side: the view's tab is wide.
  const QImage device = measuring_device();
  const FigureText t = measure_figure_text(style, &device);
  return measured_size_in_points(panel_rows_size(make_panels(c, style, t, &device), PanelRows{2}, kNaturalPanelLines * t.line, spacing_for(t)));
}

RecurrentFigureLayout compute_recurrent_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                               const QPaintDevice* device, const RecurrentFigureOptions& options) {
  return layout_content(gather(context, options), style, target, device);
}

void draw_recurrent_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                           const RecurrentFigureOptions& options) {
  const Content c = gather(context, options);
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const RecurrentFigureLayout layout = layout_content(c, style, target, painter.device());

  painter.setPen(style.foreground);
  draw_text_line(painter, layout.title, t.title, QStringLiteral("Block-recurrent state · layer %1 (%2)").arg(c.layer).arg(c.type),
                 Qt::AlignHCenter | Qt::AlignVCenter);

  const auto heatmap = [&](const QRectF& panel, const HeatmapFigureLayout& inner, const HeatmapData& data, const FigureStyle& s,
                           const QString& caption) {
    if (panel.isEmpty()) return;
    draw_heatmap_figure(painter, panel, data, s);
    draw_caption(painter, layout, inner.matrix, t, style, caption);
  };
  const BlockRecurrentTrace& tr = *c.trace;
  if (c.recurrent) {
    heatmap(layout.norms_panel, layout.norms, c.norms, style, QStringLiteral("State norms ‖s_w‖ (s_w: read by window w)"));
    heatmap(layout.gates_panel, layout.gates, c.gates, style,
            QStringLiteral("Gate: kept per window × slot (%1) · %2–%3")
                .arg(QString::fromStdString(tr.gate))
                .arg(static_cast<double>(*std::min_element(c.gates.values.begin(), c.gates.values.end())), 0, 'f', 3)
                .arg(static_cast<double>(*std::max_element(c.gates.values.begin(), c.gates.values.end())), 0, 'f', 3));
  }
  // The highlight (its label in bold) with the heatmap, its outline again over the mask.
  heatmap(layout.attention_panel, layout.attention, c.attention, with_highlight(style, c.highlight),
          QStringLiteral("Token attention · head %1 · windows of W = %2").arg(c.head).arg(tr.window));
  draw_window_marks(painter, layout, c, t, style);
  outline_token(painter, layout.attention, c.attention, true, c.highlight, t);
  outline_token(painter, layout.attention, c.attention, false, c.highlight, t);
  if (c.recurrent) {
    heatmap(layout.state_token_panel, layout.state_token, c.state_token, style,
            QStringLiteral("States → tokens"));
    draw_span_boundary(painter, layout, c, t);
    outline_token(painter, layout.state_token, c.state_token, false, c.highlight - c.span_first, t);
    heatmap(layout.token_state_panel, layout.token_state, c.token_state, style,
            QStringLiteral("Tokens → states"));
    outline_token(painter, layout.token_state, c.token_state, false, c.highlight - c.window_first, t);
  }
  draw_note(painter, layout, c, t, style);

  draw_summary_line(painter, layout.legend, t, style, legend_text(c));
  draw_summary_line(painter, layout.summary, t, style, summary_text(c));
}

PaintedFigure recurrent_painted_figure(const ViewContext& context, const FigureStyle& style, const RecurrentFigureOptions& options) {
  return view_painted_figure(
      recurrent_figure_size(context, style, options),
      QStringLiteral("AttnLab: block-recurrent state, layer %1").arg(model_view_layer(context, "block_recurrent")),
      QStringLiteral("state norms and gates per window, banded token attention, state-token cross-attention"), context, style,
      [options](QPainter& painter, const QRectF& target, const ViewContext& c, const FigureStyle& s) {
        draw_recurrent_figure(painter, target, c, s, options);
      });
}

void export_recurrent_data(const ViewContext& context, const QString& path) {
  const QString suffix = view_data_format("recurrent", path, {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")});
  const int window = static_cast<int>(view_options(view_spec("recurrent"), context.options).get_int("window"));
  const Content c = gather(context, RecurrentFigureOptions{window});
  const BlockRecurrentTrace& t = *c.trace;
  if (suffix == QLatin1String("json")) {
    nlohmann::json j = t.to_json();
    j["type"] = c.type.toStdString();
    j["selected_window"] = c.window;
    write_view_json(path, std::move(j), c.layer, c.head, c.tokens);
  } else if (suffix == QLatin1String("npy")) {
    if (!c.recurrent || t.states.rank() != 3) {
      throw ParamError("view 'recurrent': layer " + std::to_string(c.layer) + " is not recurrent; it has no states to export as .npy");
    }
    write_npy(QFile::encodeName(path).toStdString(), t.states);
  } else {
    QByteArray out = "window,first_token_index,first_token,last_token_index,last_token,slot,norm_read,norm_after,kept\r\n";
    for (std::int64_t w = 0; w < t.windows; ++w) {
      const std::int64_t first = std::min(c.length, w * t.window);
      const std::int64_t last = std::min(c.length, (w + 1) * t.window) - 1;
      const QByteArray prefix = QByteArray::number(static_cast<qlonglong>(w)) + ',' + QByteArray::number(static_cast<qlonglong>(first)) +
                                ',' + csv_field(c.tokens.value(static_cast<int>(first))) + ',' +
                                QByteArray::number(static_cast<qlonglong>(last)) + ',' +
                                csv_field(c.tokens.value(static_cast<int>(last))) + ',';
      if (!c.recurrent) {
        out += prefix + ",,,\r\n";
        continue;
      }
      for (std::int64_t s = 0; s < t.state_size; ++s) {
        out += prefix + QByteArray::number(static_cast<qlonglong>(s)) + ',';
        append_csv_value(out, t.state_norms.at(w, s));
        out += ',';
        append_csv_value(out, t.state_norms.at(w + 1, s));
        out += ',';
        append_csv_value(out, t.gate_values.at(w, s));
        out += "\r\n";
      }
    }
    write_bytes_atomically(path, out);
  }
}

}  // namespace attnlab
