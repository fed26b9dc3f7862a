// A token grid: one row per token of a result, a few columns (ACT steps, experts), each cell
// coloured through the colormap table; token labels left of the matrix (thinned so that they never
// overlap), column labels below, a vertical colorbar on the right, and room between the matrix
// and the colorbar for a figure's own strip (the halting remainders, the dropped-token marks).
//
// Unlike heatmap_figure's square cells, a cell here is as wide as the columns' share of the panel
// and as tall as the tokens' share: 512 tokens × 8 steps still fill a panel (rows about a pixel
// tall), and 6 tokens × 3 steps make large cells. Used by the halting and experts figures; it
// draws the numbers it is given and computes none.
#pragma once

#include <QColor>
#include <QRectF>
#include <QString>
#include <QStringList>
#include <cmath>
#include <vector>

#include "colormap.h"
#include "figures/figure_kit.h"

class QPainter;
class QPaintDevice;

namespace attnlab {

struct TokenGridData {
  int rows = 0;  // tokens
  int cols = 0;
  std::vector<float> values;  // [rows, cols] row-major; NaN: no value, the cell is left blank
  float vmin = 0.0f, vmax = 1.0f;
  ColormapId colormap = ColormapId::Viridis;
  QStringList row_labels;  // token texts
  QStringList col_labels;  // short: "1", "e3"
  QString row_axis = QStringLiteral("token");
  QString col_axis;
  QString value_label;

  float at(int row, int col) const {
    return values[static_cast<std::size_t>(row) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(col)];
  }
  bool has_value(int row, int col) const { return !std::isnan(at(row, col)); }
  // The colour the grid draws a cell with a value in.
  QColor color(float value) const { return QColor(Colormap::get(colormap).color(value, vmin, vmax)); }
};

// Where the grid's parts fall, in the painter's units.
struct TokenGridLayout {
  QRectF panel;   // everything: axis title, labels, matrix, strip, colorbar
  QRectF matrix;  // rows x cols cells
  double cell_w = 0, cell_h = 0;
  QRectF row_labels;                   // left of the matrix
  QRectF col_labels;                   // below the matrix
  QRectF strip;                        // the figure's own strip right of the matrix (matrix height); empty when none asked
  QRectF colorbar;                     // the ramp only, vmax at the top
  int row_stride = 1, col_stride = 1;  // every n-th label is drawn

  QRectF cell_rect(int row, int col) const;
  // A whole row: across the labels, the matrix and the strip.
  QRectF row_band(int row) const;
  // The token under `pos` (over the labels, the matrix or the strip), or -1.
  int row_at(const QPointF& pos) const;
  // The row whose vertical span holds y (clamped to the rows), for hit tests of row-aligned parts.
  int row_at_y(double y) const;
};

// The room the grid needs around its matrix, measured on a device (the panel's width is
// left + cols·cell_w + right).
struct TokenGridRoom {
  double left = 0;    // row axis title, token labels, label gap
  double right = 0;   // strip (with its gap), colorbar, ticks, value label
  double top = 0;     // a caption line above the matrix
  double bottom = 0;  // column labels and the column axis title
};

TokenGridRoom measure_token_grid(const TokenGridData& data, const FigureText& text, const QPaintDevice* device,
                                 double strip_width);
// Lays the grid out in `panel`: the matrix fills it below the caption line, its cells at most
// `max_cell_w` wide (the panel then keeps its left edge and leaves room on the right).
TokenGridLayout layout_token_grid(const TokenGridData& data, const FigureText& text, const QPaintDevice* device,
                                  const QRectF& panel, double strip_width, double max_cell_w);

// A grid at the left of a figure's body and a column of plots on its right.
struct GridColumnSpec {
  double strip_width = 0;  // the grid's strip
  double max_cell_w = 0;   // widest grid column
  double max_share = 1;    // of the body's width the grid may take
  double gap = 0;          // between the grid's panel and the column
  double plot_left = 0;    // room the plots need left of their axes (plot_frame_room)
  double min_plot_w = 0;   // a narrower plot area leaves the column out
};

struct GridColumnLayout {
  TokenGridLayout grid;
  bool column = false;  // false: no room for the column, the grid spans the body
  // The column from `gap` right of the grid's panel to a line short of the body's right edge.
  double column_left = 0, column_right = 0;
};

GridColumnLayout layout_grid_and_column(const TokenGridData& data, const FigureText& text, const QPaintDevice* device,
                                        const QRectF& body, const GridColumnSpec& spec);

// Matrix, frame, labels (the highlighted token's in bold), axis titles, colorbar and, for
// `highlight` >= 0, an outline around that row. NaN cells stay the background colour.
void draw_token_grid(QPainter& painter, const TokenGridLayout& layout, const TokenGridData& data, const FigureText& text,
                     const FigureStyle& style, int highlight);
// A bold caption above the grid's matrix, as wide as the panel right of the matrix's left edge
// (over the colorbar and the strip); nothing when the grid has no matrix.
void draw_token_grid_caption(QPainter& painter, const TokenGridLayout& layout, const FigureText& text, const FigureStyle& style,
                             const QString& caption);

// A mark in a cell: a bar over the middle `fraction` of its width (full row height on thin rows,
// a rounded block on rows taller than a line); `filled` false draws only its outline (on thin
// rows, a half-transparent fill).
void draw_cell_mark(QPainter& painter, const TokenGridLayout& layout, int row, int col, const QColor& colour,
                    const FigureText& text, bool filled = true, double fraction = 0.44);
// The rectangle draw_cell_mark fills.
QRectF cell_mark_rect(const TokenGridLayout& layout, int row, int col, const FigureText& text, double fraction = 0.44);

}  // namespace attnlab
