// The Translate panel's attention maps: the cross-attention alignment (target pieces as rows ×
// source pieces as columns) and the encoder's and decoder's self-attention, drawn as the heatmap
// figure (heatmap_figure.h: piece labels on both axes, square cells, colorbar) with a hover
// overlay on top:
//   - a hovered row (a target piece) is outlined and the column labels are tinted in proportion
//     to that row's weights, the strongest fully: which source pieces it reads;
//   - a hovered column (a source piece) likewise outlines the column and tints the row labels.
// The tints are the map's own numbers scaled by their largest value; nothing else is computed.
// One renderer serves the screen, the export (PNG/SVG/PDF) and the tests.
#pragma once

#include <QByteArray>
#include <QRectF>
#include <QSizeF>
#include <QString>
#include <memory>
#include <vector>

#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"
#include "heatmap_data.h"

class QPainter;
class QPaintDevice;

namespace attnlab {

struct AlignmentOverlay {
  int row = -1;                 // outlined row; -1 for none
  int col = -1;                 // outlined column; -1 for none
  std::vector<float> row_tint;  // per row in [0, 1] (empty: no tint): tints the row labels
  std::vector<float> col_tint;  // per column in [0, 1]: tints the column labels
};

struct AlignmentFigureData {
  HeatmapData map;  // rows: queries (target pieces for the alignment), cols: keys
  AlignmentOverlay overlay;
};
using AlignmentFigureDataPtr = std::shared_ptr<const AlignmentFigureData>;

// What the pointer is over: a row label, a column label or a cell.
struct AlignmentHit {
  enum class Kind { None, Row, Column, Cell };
  Kind kind = Kind::None;
  int row = -1, col = -1;

  // One int for FigureCanvas's token_at (-1: none), and back for a map of `cols` columns.
  int code(int cols) const;
  static AlignmentHit from_code(int code, int cols);
};

struct AlignmentFigureLayout {
  HeatmapFigureLayout heatmap;  // matrix, cells, label areas

  AlignmentHit hit(const QPointF& pos, int rows, int cols) const;
  // The centre of a row's label (left of the matrix) and of a column's (below it).
  QPointF row_label_centre(int row) const;
  QPointF col_label_centre(int col) const;
};

// The colour of the overlay's tints and outlines (Okabe–Ito vermillion: apart from viridis).
QColor alignment_tint_color();

QSizeF alignment_figure_size(const AlignmentFigureData& data, const FigureStyle& style);
AlignmentFigureLayout compute_alignment_layout(const AlignmentFigureData& data, const FigureStyle& style, const QRectF& target,
                                               const QPaintDevice* device);
void draw_alignment_figure(QPainter& painter, const QRectF& target, const AlignmentFigureData& data, const FigureStyle& style);
// The figure for export (keeps `data` alive).
PaintedFigure alignment_painted_figure(AlignmentFigureDataPtr data, const FigureStyle& style);

// The matrix as CSV (heatmap_csv: a header of column labels, one line per row).
QByteArray alignment_csv(const AlignmentFigureData& data);

}  // namespace attnlab
