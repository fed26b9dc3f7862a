// What a heatmap shows: a matrix with labelled rows and columns and a value range. Produced
// by the app from an engine result; drawn by HeatmapView (GL, on screen) and by the figure
// renderer (QPainter: PNG/SVG/PDF); exported as .npy / CSV. Immutable once shared.
#pragma once

#include <QString>
#include <QStringList>
#include <memory>
#include <vector>

#include "colormap.h"

namespace attnlab {

struct HeatmapData {
  QString title;                // "softmax · layer 1 · head 3"
  int rows = 0;                 // queries
  int cols = 0;                 // keys
  std::vector<float> values;    // row-major, rows * cols
  QStringList row_labels;       // one per row (query tokens)
  QStringList col_labels;       // one per column (key tokens)
  QString row_axis = QStringLiteral("query");
  QString col_axis = QStringLiteral("key");
  QString value_label = QStringLiteral("attention weight");
  float vmin = 0.0f;            // colour scale
  float vmax = 1.0f;
  ColormapId colormap = ColormapId::Viridis;

  float at(int r, int c) const { return values[static_cast<std::size_t>(r) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(c)]; }
};

using HeatmapDataPtr = std::shared_ptr<const HeatmapData>;

}  // namespace attnlab
