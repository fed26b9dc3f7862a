// The heatmap figure drawn with QPainter: title, token labels on both axes, axis titles, the
// matrix with square cells, a highlighted token, and a colorbar with ticks and the value label.
// One renderer serves the GUI's export and the headless CLI; it needs a QGuiApplication (fonts)
// but no display and no GL, so it runs on the `offscreen` platform.
//
// Units. Font sizes are in points; the painter's device turns them into its own units (a QImage
// at 300 dpi draws a 9 pt font 37.5 px tall). Every other length (margins, gaps, cell minimums,
// line widths) is derived from the font's metrics on that device, so the same figure keeps its
// proportions on a 72 dpi SVG, a 1200 dpi PDF page or a 300 dpi PNG.
#pragma once

#include <QColor>
#include <QFont>
#include <QImage>
#include <QRectF>
#include <QSizeF>

#include "heatmap_data.h"

class QPainter;
class QPaintDevice;

namespace attnlab {

struct FigureStyle {
  QFont font = default_figure_font();  // labels; the title is this font, bold and larger
  QColor background = QColor(255, 255, 255);
  QColor foreground = QColor(32, 33, 36);  // text, ticks, frames
  bool show_colorbar = true;
  int highlight_index = -1;  // token whose row and column are outlined; -1 for none

  static QFont default_figure_font();  // "DejaVu Sans" 9 pt, unhinted (same shapes at any dpi)
  static FigureStyle light() { return {}; }
  static FigureStyle dark();
};

// Where the parts of a figure fall inside a target rectangle, in the device's logical units.
// The GUI uses it for hit testing, the tests to find the pixel at the centre of a cell.
struct HeatmapFigureLayout {
  QRectF figure;             // the target
  QRectF title;              // empty when there is no title
  QRectF matrix;             // rows x cols square cells
  double cell = 0.0;         // side of one cell
  QRectF row_labels;         // left of the matrix (queries)
  QRectF col_labels;         // below the matrix (keys), text rotated by 90 degrees
  QRectF colorbar;           // the colour ramp only, vmax at the top; empty when hidden
  int row_label_stride = 1;  // every n-th label is drawn so that labels never overlap
  int col_label_stride = 1;

  QRectF cell_rect(int row, int col) const;
};

// Natural size of the figure in points (1/72 inch): cells of about 1.3 font heights, the matrix
// between ~300 pt and ~1400 pt on its longer side, plus room for labels, titles and colorbar.
QSizeF heatmap_figure_size(const HeatmapData& data, const FigureStyle& style);

// Lays the figure out in `target`, measuring text on `device` (the one the painter will draw on).
// The widest of labels[0..count) elided to `elide_width`, in `font` on `device`; remembered for
// the last 16 label lists, since a figure measures the same token labels for rows, columns,
// panels and layout passes (text shaping was most of a redraw at 512 tokens).
double widest_elided_label(const QFont& font, const QPaintDevice* device, const QStringList& labels, int count,
                           double elide_width);

HeatmapFigureLayout compute_heatmap_layout(const HeatmapData& data, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device);

// Draws the figure into `target` (painter units). Leaves the painter's state as it found it.
void draw_heatmap_figure(QPainter& painter, const QRectF& target, const HeatmapData& data, const FigureStyle& style);

}  // namespace attnlab
