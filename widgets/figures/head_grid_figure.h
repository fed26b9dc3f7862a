// The figure of every head of one layer: a grid of small heatmaps sharing one style, for the
// "Heads" view's export (PNG/SVG/PDF) and its data (.npy [H, L, L], CSV in long form).
#pragma once

#include <QPainter>
#include <QSizeF>
#include <QString>
#include <vector>

#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"
#include "heatmap_data.h"

namespace attnlab {

QSizeF head_grid_figure_size(const std::vector<HeatmapDataPtr>& heads, const FigureStyle& style);
void draw_head_grid_figure(QPainter& painter, const QRectF& target, const std::vector<HeatmapDataPtr>& heads, int layer,
                           const FigureStyle& style);
// Format from the extension as for export_heatmap; throws ParamError / IoError; atomic.
void export_head_grid(const std::vector<HeatmapDataPtr>& heads, int layer, const QString& path,
                      const ExportOptions& options);

}  // namespace attnlab
