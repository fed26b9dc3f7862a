// The frame the model-layer figures (∞-former memory, Mega, GSS) share: a natural size of about
// the view tab's aspect, a bold title line on top, one summary line at the bottom and the body
// between them; plus the caption above a token grid, which spans the grid's labels and colorbar.
#pragma once

#include <QRectF>
#include <QSizeF>
#include <QString>

#include "figures/figure_kit.h"
#include "figures/token_grid.h"

class QPainter;

namespace attnlab {

struct FigureFrame {
  QRectF title;
  QRectF body;
  QRectF summary;
};

// 80 × 48 label lines, in points.
QSizeF layer_figure_natural_size(const FigureStyle& style);
FigureFrame layer_figure_frame(const FigureText& text, const QRectF& target);
// The title centred in frame.title and the summary elided into frame.summary.
void draw_layer_figure_frame(QPainter& painter, const FigureFrame& frame, const QString& title, const QString& summary,
                             const FigureText& text, const FigureStyle& style);
// A caption above the grid's matrix, as wide as the grid's panel right of the matrix's left edge.
void draw_grid_caption(QPainter& painter, const TokenGridLayout& grid, const QString& caption, const FigureText& text,
                       const FigureStyle& style);

}  // namespace attnlab
