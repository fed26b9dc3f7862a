#include "figures/bigbird_figure.h"

#include <QFile>
#include <QFileInfo>
#include <QFontMetricsF>
#include <QImage>
#include <QPaintEngine>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/npy.h"
#include "figures/figure_kit.h"
#include "result_views.h"

namespace attnlab {
namespace {

// Lengths in label line heights, so the figure scales with its font (margin and basic gap: the
// defaults of FigureTextSpec).
constexpr double kPanelGapLines = 2.0;     // between panels in a row
constexpr double kRowGapLines = 1.2;       // between rows of panels
constexpr double kNaturalPanelLines = 20;  // side of a main matrix at the figure's natural size
constexpr double kHeadScale = 0.5;         // small multiples: half a main panel each
constexpr int kHeadColumns = 4;
constexpr double kFrameLines = 0.05;
constexpr double kHighlightLines = 0.14;
constexpr double kSeparatorLines = 0.05;   // block separators, drawn when cells are large enough
constexpr double kSwatchLines = 0.9;
constexpr double kTickPitchLines = 1.3;    // closest two index labels may sit
constexpr int kVectorCellLimit = 64 * 64;  // above: cells as one image
constexpr int kVectorImageTargetPx = 2048;

enum class PanelKind { BlockGrid, TokenMask, Heatmap, Receptive, Heads };

// Everything the figure shows, gathered once per draw.
struct Content {
  const PlaygroundResult* result = nullptr;
  const BigBirdExtras* extras = nullptr;
  int layer = 0, head = 0, highlight = -1;
  std::int64_t heads = 0, blocks = 0, length = 0;
  HeatmapData heatmap;
  QStringList tokens;
};

Content gather(const ViewContext& context) {
  Content c;
  c.extras = &checked_layer_extras<BigBirdExtras>(context, "blocks", "BigBird");
  c.result = context.result.get();
  c.layer = context.layer;
  c.head = context.head;
  c.highlight = context.highlighted_token < c.extras->length() ? context.highlighted_token : -1;
  c.heads = c.extras->heads();
  c.blocks = c.extras->n_blocks();
  c.length = c.extras->length();
  c.heatmap = *attention_heatmap(*c.result, context.layer, context.head, context.colormap);
  c.heatmap.title.clear();
  c.tokens = token_labels(*c.result);
  return c;
}

double index_label_width(const FigureText& t, const QPaintDevice* device, std::int64_t n) {
  return QFontMetricsF(t.label, device).horizontalAdvance(QString::number(std::max<std::int64_t>(0, n - 1)));
}

double legend_width(const FigureText& t, const QPaintDevice* device) {
  const QFontMetricsF fm(t.label, device);
  double widest = 0;
  for (const QString& s : {QStringLiteral("1 layer"), QStringLiteral("4 layers"), QStringLiteral("not reached")})
    widest = std::max(widest, fm.horizontalAdvance(s));
  return kSwatchLines * t.line + t.gap + widest;
}

std::vector<FlowPanel> make_panels(const Content& c, const FigureStyle& style, const FigureText& t, const QPaintDevice* device) {
  const double caption = t.line + t.gap;
  const double axes_left = t.line + t.gap + std::max(index_label_width(t, device, c.length), t.line) + t.gap;
  const double axes_bottom = 0.5 * t.gap + t.line + t.line;
  std::vector<FlowPanel> panels;
  FlowPanel grid{static_cast<int>(PanelKind::BlockGrid), 1, 1, axes_left, t.gap, caption, axes_bottom};
  panels.push_back(grid);
  FlowPanel mask = grid;
  mask.kind = static_cast<int>(PanelKind::TokenMask);
  panels.push_back(mask);

  // The heatmap figure's own room for labels and colorbar, found by laying it out in targets
  // that are unbounded in one direction (the matrix then fills the other exactly).
  const FigureStyle hs = with_highlight(style, c.highlight);
  const double probe = 1000.0 * t.line, huge = 1e4 * t.line;
  const HeatmapFigureLayout wide = compute_heatmap_layout(c.heatmap, hs, QRectF(0, 0, huge, probe), device);
  const HeatmapFigureLayout tall = compute_heatmap_layout(c.heatmap, hs, QRectF(0, 0, probe, huge), device);
  FlowPanel heat{static_cast<int>(PanelKind::Heatmap), 1, 1, 0, probe - tall.matrix.width(), caption,
                 probe - wide.matrix.height()};
  panels.push_back(heat);

  FlowPanel receptive = grid;
  receptive.kind = static_cast<int>(PanelKind::Receptive);
  receptive.right = t.gap * 2 + legend_width(t, device);
  panels.push_back(receptive);

  if (c.heads > 1) {
    const int cols = static_cast<int>(std::min<std::int64_t>(c.heads, kHeadColumns));
    const int rows = static_cast<int>((c.heads + kHeadColumns - 1) / kHeadColumns);
    FlowPanel heads{static_cast<int>(PanelKind::Heads), cols * kHeadScale, rows * kHeadScale, t.gap, t.gap,
                caption + rows * (t.line + 0.5 * t.gap), (rows - 1) * t.gap};
    heads.right += (cols - 1) * t.gap;
    panels.push_back(heads);
  }
  return panels;
}

// Title above the rows; legend and summary below.
PanelFlowSpacing spacing_for(const FigureText& t) {
  return PanelFlowSpacing{t.margin, kPanelGapLines * t.line, kRowGapLines * t.line, t.margin + t.title_line + t.gap,
                          t.gap + kSwatchLines * t.line + t.gap + t.line + t.margin};
}

BigBirdFigureLayout layout_content(const Content& c, const FigureStyle& style, const QRectF& target,
                                   const QPaintDevice* device) {
  const FigureText t = measure_figure_text(style, device);
  const std::vector<FlowPanel> panels = make_panels(c, style, t, device);
  const PanelFlow placement = flow_panels(panels, target, spacing_for(t));
  BigBirdFigureLayout layout;
  layout.figure = target;
  layout.blocks = c.blocks;
  layout.length = c.length;
  const double side = placement.side;
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const FlowPanel& p = panels[i];
    const QRectF outer = placement.outer[i];
    const QRectF inner = p.inner(outer, side);
    switch (static_cast<PanelKind>(p.kind)) {
      case PanelKind::BlockGrid: layout.block_grid = inner; break;
      case PanelKind::TokenMask: layout.token_mask = inner; break;
      case PanelKind::Receptive: layout.receptive = inner; break;
      case PanelKind::Heatmap:
        layout.heatmap_panel = QRectF(outer.left(), outer.top() + p.top, outer.width(), outer.height() - p.top);
        layout.heatmap = compute_heatmap_layout(c.heatmap, with_highlight(style, c.highlight), layout.heatmap_panel, device);
        break;
      case PanelKind::Heads: {
        const double small = kHeadScale * side;
        const double caption = t.line + t.gap;
        for (std::int64_t h = 0; h < c.heads; ++h) {
          const auto row = static_cast<double>(h / kHeadColumns), col = static_cast<double>(h % kHeadColumns);
          const double x = outer.left() + p.left + col * (small + t.gap);
          const double y = outer.top() + caption + (row + 1) * (t.line + 0.5 * t.gap) + row * (small + t.gap);
          layout.head_grids.emplace_back(x, y, small, small);
        }
        break;
      }
    }
  }
  layout.title = QRectF(target.left() + t.margin, placement.top + t.margin, target.width() - 2 * t.margin, t.title_line);
  layout.panels = placement.outer;
  const double footer_top = placement.footer_top + t.gap;
  layout.legend = QRectF(target.left() + t.margin, footer_top, target.width() - 2 * t.margin, kSwatchLines * t.line);
  layout.summary = QRectF(target.left() + t.margin, layout.legend.bottom() + t.gap, target.width() - 2 * t.margin, t.line);
  return layout;
}

// ---- drawing helpers -------------------------------------------------------------------------

bool is_vector_device(const QPainter& painter) {
  const QPaintEngine* engine = painter.paintEngine();
  if (engine == nullptr) return false;
  const QPaintEngine::Type type = engine->type();
  return type == QPaintEngine::SVG || type == QPaintEngine::Pdf || type == QPaintEngine::Picture;
}

// A rows x cols matrix of colours: rectangles while few (crisp in SVG/PDF), else one image
// drawn without smoothing (enlarged first on vector devices, whose viewers would blur it).
template <typename ColourAt>
void draw_cells(QPainter& painter, const QRectF& rect, std::int64_t rows, std::int64_t cols, ColourAt&& colour_at) {
  if (rows <= 0 || cols <= 0 || rect.isEmpty()) return;
  painter.save();
  painter.setRenderHint(QPainter::Antialiasing, false);
  painter.setPen(Qt::NoPen);
  if (rows * cols <= kVectorCellLimit) {
    const double w = rect.width() / static_cast<double>(cols), h = rect.height() / static_cast<double>(rows);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) {
        // Each cell reaches into its right and lower neighbours, drawn later: no seams.
        const double right = c + 1 < cols ? 0.2 * w : 0.0, below = r + 1 < rows ? 0.2 * h : 0.0;
        painter.fillRect(QRectF(rect.left() + static_cast<double>(c) * w, rect.top() + static_cast<double>(r) * h,
                                w + right, h + below),
                         colour_at(r, c));
      }
  } else {
    QImage image(static_cast<int>(cols), static_cast<int>(rows), QImage::Format_RGB32);
    if (!image.isNull()) {
      for (int r = 0; r < image.height(); ++r) {
        auto* line = reinterpret_cast<QRgb*>(image.scanLine(r));
        for (int c = 0; c < image.width(); ++c) line[c] = colour_at(r, c).rgb();
      }
      if (is_vector_device(painter)) {
        const int factor = std::clamp(kVectorImageTargetPx / static_cast<int>(std::max(rows, cols)), 1, 16);
        if (factor > 1) image = image.scaled(image.width() * factor, image.height() * factor);
      }
      painter.setRenderHint(QPainter::SmoothPixmapTransform, false);
      painter.drawImage(rect, image);
    }
  }
  painter.restore();
}

// Thin separators every `every` cells of an n x n grid, when they are far enough apart.
void draw_separators(QPainter& painter, const QRectF& rect, std::int64_t n, std::int64_t every, const QColor& colour,
                     double line) {
  if (n <= 1 || every <= 0 || rect.isEmpty()) return;
  const double step = rect.width() / static_cast<double>(n) * static_cast<double>(every);
  if (step < 0.6 * line) return;
  painter.save();
  painter.setPen(QPen(colour, kSeparatorLines * line));
  for (std::int64_t k = every; k < n; k += every) {
    const double x = rect.left() + rect.width() * static_cast<double>(k) / static_cast<double>(n);
    const double y = rect.top() + rect.height() * static_cast<double>(k) / static_cast<double>(n);
    painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()));
    painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y));
  }
  painter.restore();
}

// The smallest of 1, 2, 5, 10, 20, 50, ... cells that keeps index labels kTickPitchLines apart.
std::int64_t tick_stride(double cell, double line, double label_w) {
  const double needed = std::max(kTickPitchLines * line, label_w + line) / std::max(cell, 1e-9);
  for (std::int64_t base = 1;; base *= 10) {
    for (std::int64_t m : {1, 2, 5})
      if (static_cast<double>(base * m) >= needed) return base * m;
    if (base > (std::int64_t{1} << 40)) return base;
  }
}

// Index labels on the left and below an n x n grid, and the axis titles.
void draw_axes(QPainter& painter, const QRectF& grid, std::int64_t n, const FigureText& t, const FigureStyle& style,
               const QString& row_title, const QString& col_title) {
  painter.save();
  painter.setFont(t.label);
  painter.setPen(QPen(style.foreground, kFrameLines * t.line));
  const QFontMetricsF fm(t.label, painter.device());
  const double cell = grid.width() / static_cast<double>(std::max<std::int64_t>(1, n));
  const std::int64_t stride = tick_stride(cell, t.line, fm.horizontalAdvance(QString::number(n - 1)));
  const double tick = 0.25 * t.gap;
  for (std::int64_t k = 0; k < n; k += stride) {
    const QString text = QString::number(k);
    const double cy = grid.top() + (static_cast<double>(k) + 0.5) * cell;
    const double cx = grid.left() + (static_cast<double>(k) + 0.5) * cell;
    painter.drawText(QRectF(grid.left() - t.gap - 10 * t.line, cy - 0.5 * t.line, 10 * t.line, t.line),
                     Qt::AlignRight | Qt::AlignVCenter, text);
    const double w = fm.horizontalAdvance(text) + t.line;
    painter.drawText(QRectF(cx - 0.5 * w, grid.bottom() + 0.5 * t.gap, w, t.line), Qt::AlignCenter, text);
    if (stride > 1) {
      painter.drawLine(QPointF(grid.left() - tick, cy), QPointF(grid.left(), cy));
      painter.drawLine(QPointF(cx, grid.bottom()), QPointF(cx, grid.bottom() + tick));
    }
  }
  painter.drawText(QRectF(grid.left(), grid.bottom() + 0.5 * t.gap + t.line, grid.width(), t.line), Qt::AlignCenter,
                   col_title);
  const double index_w = fm.horizontalAdvance(QString::number(n - 1));
  painter.translate(grid.left() - t.gap - std::max(index_w, t.line) - t.gap - 0.5 * t.line, grid.center().y());
  painter.rotate(-90.0);
  painter.drawText(QRectF(-0.5 * grid.height() - 2 * t.line, -0.5 * t.line, grid.height() + 4 * t.line, t.line),
                   Qt::AlignCenter, row_title);
  painter.restore();
}

void draw_frame(QPainter& painter, const QRectF& rect, const FigureStyle& style, double line) {
  painter.save();
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(style.foreground, kFrameLines * line));
  painter.drawRect(rect);
  painter.restore();
}

// Outlines row `row` and column `col` (either may be -1) of an n x n grid.
void draw_cross(QPainter& painter, const QRectF& grid, std::int64_t n, std::int64_t row, std::int64_t col,
                const QColor& colour, double line) {
  if (n <= 0) return;
  const double cell = grid.width() / static_cast<double>(n);
  painter.save();
  painter.setBrush(Qt::NoBrush);
  painter.setPen(QPen(colour, kHighlightLines * line, Qt::SolidLine, Qt::SquareCap, Qt::MiterJoin));
  if (row >= 0 && row < n) painter.drawRect(QRectF(grid.left(), grid.top() + static_cast<double>(row) * cell, grid.width(), cell));
  if (col >= 0 && col < n) painter.drawRect(QRectF(grid.left() + static_cast<double>(col) * cell, grid.top(), cell, grid.height()));
  painter.restore();
}

void draw_swatch(QPainter& painter, const QPointF& at, const QColor& colour, const QString& text, const FigureText& t,
                 const FigureStyle& style) {
  const double s = kSwatchLines * t.line;
  painter.fillRect(QRectF(at.x(), at.y() + 0.5 * (t.line - s), s, s), colour);
  painter.setPen(QPen(style.foreground, kFrameLines * t.line));
  painter.setBrush(Qt::NoBrush);
  painter.drawRect(QRectF(at.x(), at.y() + 0.5 * (t.line - s), s, s));
  painter.drawText(QRectF(at.x() + s + t.gap, at.y(), 20 * t.line, t.line), Qt::AlignLeft | Qt::AlignVCenter, text);
}

QColor highlight_colour(const FigureStyle& style) { return style.foreground; }

// A caption above `matrix`, with the room its panel gives.
void draw_caption(QPainter& painter, const BigBirdFigureLayout& layout, const QRectF& matrix, const FigureText& t,
                  const FigureStyle& style, const QString& text) {
  draw_caption_above(painter, matrix, caption_room(layout.panels, matrix, kPanelGapLines * t.line), t, style.foreground, text);
}

// First layer (1..4) at which `kb` is reachable from `qb`, or 0.
int first_reach(const BigBirdExtras& e, std::int64_t qb, std::int64_t kb, int max_layers) {
  for (int n = 1; n <= max_layers; ++n)
    if (e.reachable(n, qb, kb)) return n;
  return 0;
}

QString summary_text(const Content& c, const BigBirdFigureOptions& options) {
  const BigBirdExtras& e = *c.extras;
  const BigBirdLayout& lay = e.layout();
  std::int32_t lo = std::numeric_limits<std::int32_t>::max(), hi = 0;
  for (std::int64_t i = 0; i < c.length; ++i) {
    lo = std::min(lo, e.key_count(c.head, i));
    hi = std::max(hi, e.key_count(c.head, i));
  }
  QString text = QStringLiteral("block size %1%2 · %3 blocks · window %4 · global %5 · random %6 · keys per query %7–%8 of %9")
                     .arg(lay.block_size)
                     .arg(e.data().auto_block_size ? QStringLiteral(" (auto)") : QString())
                     .arg(lay.n_blocks)
                     .arg(lay.window_blocks)
                     .arg(lay.global_blocks)
                     .arg(lay.random_blocks)
                     .arg(lo)
                     .arg(hi)
                     .arg(c.length);
  if (c.highlight >= 0) {
    const std::int64_t qb = lay.block_of(c.highlight);
    text += QStringLiteral(" · query #%1 “%2” sees %3 keys; block %4 reaches %5 of %6 blocks in %7 layer%8")
                .arg(c.highlight)
                .arg(c.tokens.value(c.highlight))
                .arg(e.key_count(c.head, c.highlight))
                .arg(qb)
                .arg(e.reachable_count(options.receptive_layers, qb))
                .arg(c.blocks)
                .arg(options.receptive_layers)
                .arg(options.receptive_layers == 1 ? QString() : QStringLiteral("s"));
  }
  return text;
}

}  // namespace

QPointF BigBirdFigureLayout::cell_centre(const QRectF& grid, std::int64_t n, std::int64_t row, std::int64_t col) {
  const double cell = grid.width() / static_cast<double>(std::max<std::int64_t>(1, n));
  return QPointF(grid.left() + (static_cast<double>(col) + 0.5) * cell, grid.top() + (static_cast<double>(row) + 0.5) * cell);
}

int BigBirdFigureLayout::token_at(const QPointF& pos, std::int64_t block_size) const {
  const auto row_in = [&](const QRectF& grid, std::int64_t n) -> std::int64_t {
    if (n <= 0 || !grid.contains(pos)) return -1;
    return std::clamp<std::int64_t>(static_cast<std::int64_t>((pos.y() - grid.top()) / grid.height() * static_cast<double>(n)), 0, n - 1);
  };
  if (const auto r = row_in(token_mask, length); r >= 0) return static_cast<int>(r);
  if (const auto r = row_in(heatmap.matrix, length); r >= 0) return static_cast<int>(r);
  for (const QRectF& grid : {block_grid, receptive}) {
    if (const auto r = row_in(grid, blocks); r >= 0) return static_cast<int>(r * block_size);
  }
  for (const QRectF& grid : head_grids) {
    if (const auto r = row_in(grid, blocks); r >= 0) return static_cast<int>(r * block_size);
  }
  return -1;
}

const BigBirdExtras* bigbird_extras(const ViewContext& context) { return layer_extras<BigBirdExtras>(context); }

QColor bigbird_block_color(BigBirdBlock type, const FigureStyle& style) {
  switch (type) {
    case BigBirdBlock::Window: return okabe_ito(OkabeIto::Blue);
    case BigBirdBlock::Global: return okabe_ito(OkabeIto::Orange);
    case BigBirdBlock::Random: return okabe_ito(OkabeIto::ReddishPurple);
    case BigBirdBlock::None: break;
  }
  const QColor bg = style.background, fg = style.foreground;
  const double mix = 0.1;
  return QColor::fromRgbF(static_cast<float>(bg.redF() * (1 - mix) + fg.redF() * mix),
                          static_cast<float>(bg.greenF() * (1 - mix) + fg.greenF() * mix),
                          static_cast<float>(bg.blueF() * (1 - mix) + fg.blueF() * mix));
}

QColor bigbird_reach_color(int layers, ColormapId colormap, const FigureStyle& style) {
  if (layers <= 0) return bigbird_block_color(BigBirdBlock::None, style);
  // One layer brightest; every further layer a step down the sequential map.
  const float t = 0.95f - 0.25f * static_cast<float>(layers - 1);
  return QColor(Colormap::get(colormap).color(t));
}

QSizeF bigbird_figure_size(const ViewContext& context, const FigureStyle& style) {
  const Content c = gather(context);
  return natural_flow_size(
      style, kNaturalPanelLines, [&](const FigureText& t, const QPaintDevice* device) { return make_panels(c, style, t, device); },
      spacing_for);
}

BigBirdFigureLayout compute_bigbird_layout(const ViewContext& context, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device) {
  return layout_content(gather(context), style, target, device);
}

void draw_bigbird_figure(QPainter& painter, const QRectF& target, const ViewContext& context, const FigureStyle& style,
                         const BigBirdFigureOptions& options) {
  const Content c = gather(context);
  const BigBirdExtras& e = *c.extras;
  const BigBirdLayout& lay = e.layout();
  const int layers = std::clamp(options.receptive_layers, 1, BigBirdExtras::kMaxReceptiveLayers);
  const FigureScope scope(painter, target, style);
  const FigureText t = measure_figure_text(style, painter.device());
  const BigBirdFigureLayout layout = layout_content(c, style, target, painter.device());
  const QColor none = bigbird_block_color(BigBirdBlock::None, style);
  const QColor mark = highlight_colour(style);
  const std::int64_t hb = c.highlight >= 0 ? lay.block_of(c.highlight) : -1;

  // Title.
  painter.setFont(t.title);
  painter.setPen(style.foreground);
  painter.drawText(layout.title, Qt::AlignHCenter | Qt::AlignVCenter,
                   QStringLiteral("BigBird blocks · layer %1 · head %2%3")
                       .arg(c.layer)
                       .arg(c.head)
                       .arg(lay.causal ? QStringLiteral(" · causal") : QString()));

  const auto block_colour = [&](std::int64_t head) {
    return [&e, &style, head](std::int64_t qb, std::int64_t kb) { return bigbird_block_color(e.block_type(head, qb, kb), style); };
  };
  const QColor separator = style.background;

  // Block grid of the selected head.
  if (!layout.block_grid.isEmpty()) {
    draw_caption(painter, layout, layout.block_grid, t, style, QStringLiteral("Block types · head %1").arg(c.head));
    draw_cells(painter, layout.block_grid, c.blocks, c.blocks, block_colour(c.head));
    draw_separators(painter, layout.block_grid, c.blocks, 1, separator, t.line);
    draw_frame(painter, layout.block_grid, style, t.line);
    draw_axes(painter, layout.block_grid, c.blocks, t, style, QStringLiteral("query block"), QStringLiteral("key block"));
    draw_cross(painter, layout.block_grid, c.blocks, hb, hb, mark, t.line);
  }

  // Token-level mask: visible keys in their block's colour.
  if (!layout.token_mask.isEmpty()) {
    draw_caption(painter, layout, layout.token_mask, t, style, QStringLiteral("Token mask · %1 × %1").arg(c.length));
    draw_cells(painter, layout.token_mask, c.length, c.length, [&](std::int64_t i, std::int64_t j) {
      return e.visible(c.head, i, j) ? bigbird_block_color(e.block_type(c.head, lay.block_of(i), lay.block_of(j)), style) : none;
    });
    draw_separators(painter, layout.token_mask, c.length, lay.block_size, separator, t.line);
    draw_frame(painter, layout.token_mask, style, t.line);
    draw_axes(painter, layout.token_mask, c.length, t, style, QStringLiteral("query"), QStringLiteral("key"));
    draw_cross(painter, layout.token_mask, c.length, c.highlight, c.highlight, mark, t.line);
  }

  // The weights inside the mask.
  if (!layout.heatmap_panel.isEmpty()) {
    draw_heatmap_figure(painter, layout.heatmap_panel, c.heatmap, with_highlight(style, c.highlight));
    // The heatmap figure filled its panel; draw the caption again on top of that background.
    draw_caption(painter, layout, layout.heatmap.matrix, t, style, QStringLiteral("Attention inside the mask"));
  }

  // Receptive field: colour = layers needed, cut at `layers`.
  if (!layout.receptive.isEmpty()) {
    draw_caption(painter, layout, layout.receptive, t, style,
                 QStringLiteral("Receptive field after %1 layer%2 (all heads)").arg(layers).arg(layers == 1 ? "" : "s"));
    draw_cells(painter, layout.receptive, c.blocks, c.blocks, [&](std::int64_t qb, std::int64_t kb) {
      return bigbird_reach_color(first_reach(e, qb, kb, layers), context.colormap, style);
    });
    draw_separators(painter, layout.receptive, c.blocks, 1, separator, t.line);
    draw_frame(painter, layout.receptive, style, t.line);
    draw_axes(painter, layout.receptive, c.blocks, t, style, QStringLiteral("query block"), QStringLiteral("key block"));
    draw_cross(painter, layout.receptive, c.blocks, hb, -1, mark, t.line);
    painter.save();
    painter.setFont(t.label);
    QPointF at(layout.receptive.right() + 2 * t.gap, layout.receptive.top());
    for (int n = 1; n <= layers; ++n) {
      draw_swatch(painter, at, bigbird_reach_color(n, context.colormap, style),
                  n == 1 ? QStringLiteral("1 layer") : QStringLiteral("%1 layers").arg(n), t, style);
      at.ry() += t.line + t.gap;
    }
    draw_swatch(painter, at, none, QStringLiteral("not reached"), t, style);
    painter.restore();
  }

  // Small multiples: every head's block grid.
  if (!layout.head_grids.empty()) {
    const QRectF& first = layout.head_grids.front();
    painter.save();
    painter.setFont(t.bold);
    painter.setPen(style.foreground);
    painter.drawText(QRectF(first.left(), first.top() - 2 * t.line - 1.5 * t.gap, 30 * t.line, t.line),
                     Qt::AlignLeft | Qt::AlignVCenter, QStringLiteral("Block types of every head"));
    painter.restore();
    for (std::size_t h = 0; h < layout.head_grids.size(); ++h) {
      const QRectF& grid = layout.head_grids[h];
      draw_cells(painter, grid, c.blocks, c.blocks, block_colour(static_cast<std::int64_t>(h)));
      const bool current = static_cast<int>(h) == c.head;
      painter.save();
      painter.setBrush(Qt::NoBrush);
      painter.setPen(QPen(style.foreground, (current ? 2.5 : 1.0) * kFrameLines * t.line));
      painter.drawRect(grid);
      painter.setFont(current ? t.bold : t.label);
      const QString name = QStringLiteral("head %1").arg(h);
      const bool fits = QFontMetricsF(painter.font(), painter.device()).horizontalAdvance(name) <= grid.width() + t.gap;
      painter.drawText(QRectF(grid.left(), grid.top() - t.line - 0.25 * t.gap, grid.width() + t.gap, t.line),
                       Qt::AlignLeft | Qt::AlignVCenter, fits ? name : QString::number(h));
      painter.restore();
      draw_cross(painter, grid, c.blocks, hb, -1, mark, 0.6 * t.line);
    }
  }

  // Legend of block types and the numbers.
  painter.save();
  painter.setFont(t.label);
  const QFontMetricsF fm(t.label, painter.device());
  QPointF at(layout.legend.left(), layout.legend.top());
  for (BigBirdBlock type : {BigBirdBlock::Window, BigBirdBlock::Global, BigBirdBlock::Random, BigBirdBlock::None}) {
    QString text = QString::fromUtf8(bigbird_block_name(type).data(), static_cast<qsizetype>(bigbird_block_name(type).size()));
    if (type == BigBirdBlock::None) text = lay.causal ? QStringLiteral("not attended (or later key)") : QStringLiteral("not attended");
    draw_swatch(painter, at, bigbird_block_color(type, style), text, t, style);
    at.rx() += kSwatchLines * t.line + t.gap + fm.horizontalAdvance(text) + 2 * t.line;
  }
  painter.setPen(style.foreground);
  painter.drawText(layout.summary, Qt::AlignLeft | Qt::AlignVCenter,
                   fm.elidedText(summary_text(c, BigBirdFigureOptions{layers}), Qt::ElideRight, layout.summary.width()));
  painter.restore();
}

PaintedFigure bigbird_painted_figure(const ViewContext& context, const FigureStyle& style,
                                     const BigBirdFigureOptions& options) {
  return PaintedFigure{bigbird_figure_size(context, style),
                       QStringLiteral("AttnLab: BigBird blocks, layer %1, head %2").arg(context.layer).arg(context.head),
                       QStringLiteral("block types, token mask, attention and receptive field"), style.background,
                       [context, style, options](QPainter& painter, const QRectF& target) {
                         draw_bigbird_figure(painter, target, context, style, options);
                       }};
}

void export_bigbird_data(const ViewContext& context, const QString& path) {
  const Content c = gather(context);
  const BigBirdExtras& e = *c.extras;
  const BigBirdLayout& lay = e.layout();
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == QLatin1String("json")) {
    write_bytes_atomically(path, view_json_bytes(e.to_json(), c.layer, c.head, c.tokens));
  } else if (suffix == QLatin1String("csv")) {
    QByteArray out = "query_index,query_token,query_block,key_index,key_token,key_block,block_type,visible,weight\r\n";
    const Tensor& weights = c.result->layers[static_cast<std::size_t>(c.layer)].weights;
    for (std::int64_t i = 0; i < c.length; ++i) {
      const QByteArray query = QByteArray::number(static_cast<qlonglong>(i)) + ',' + csv_field(c.tokens.value(static_cast<int>(i))) +
                               ',' + QByteArray::number(static_cast<qlonglong>(lay.block_of(i))) + ',';
      for (std::int64_t j = 0; j < c.length; ++j) {
        const BigBirdBlock type = e.block_type(c.head, lay.block_of(i), lay.block_of(j));
        out += query + QByteArray::number(static_cast<qlonglong>(j)) + ',' + csv_field(c.tokens.value(static_cast<int>(j))) + ',' +
               QByteArray::number(static_cast<qlonglong>(lay.block_of(j))) + ',' +
               QByteArray(bigbird_block_name(type).data(), static_cast<qsizetype>(bigbird_block_name(type).size())) + ',' +
               (e.visible(c.head, i, j) ? "1," : "0,");
        append_csv_value(out, weights.at(c.head, i, j));
        out += "\r\n";
      }
    }
    write_bytes_atomically(path, out);
  } else if (suffix == QLatin1String("npy")) {
    Tensor types({c.heads, c.blocks, c.blocks});
    for (std::int64_t h = 0; h < c.heads; ++h)
      for (std::int64_t qb = 0; qb < c.blocks; ++qb)
        for (std::int64_t kb = 0; kb < c.blocks; ++kb) types.at(h, qb, kb) = static_cast<float>(e.block_type(h, qb, kb));
    write_npy(QFile::encodeName(path).toStdString(), types);
  } else {
    throw ParamError(QStringLiteral("cannot export '%1' from view 'blocks': data formats are .json, .csv, .npy").arg(path).toStdString());
  }
}

}  // namespace attnlab
