// Export of a heatmap to a file: the figure as PNG (at a chosen dpi), SVG or PDF (vector text),
// or its numbers as .npy (float32 [rows, cols]) or CSV. Used by the GUI's Export and by
// `attnlab-cli figure`. Every write is atomic: the file appears complete or not at all, and an
// earlier file at the path survives any failure untouched.
#pragma once

#include <QByteArray>
#include <QColor>
#include <QSizeF>
#include <QString>
#include <QStringList>
#include <functional>

#include "figures/heatmap_figure.h"
#include "heatmap_data.h"

namespace attnlab {

enum class ExportFormat { Png, Svg, Pdf, Npy, Csv };

// From the file name's extension, case-insensitive. Throws ParamError listing the allowed ones.
ExportFormat export_format_for_path(const QString& path);
// "PNG image (*.png)", ... for QFileDialog, in the order of ExportFormat.
QStringList export_name_filters();

inline constexpr double kMinExportDpi = 30.0;
inline constexpr double kMaxExportDpi = 1200.0;

struct ExportOptions {
  double dpi = 150.0;  // PNG only; must lie in [kMinExportDpi, kMaxExportDpi] for every format
  FigureStyle style;
};

// Any figure drawn with QPainter: its natural size in points (1/72 in) and the function that
// draws it into a target rectangle measured in the painter's units. Heatmaps, the head grid and
// later views export through this one path, so every figure gets the same PNG/SVG/PDF handling.
struct PaintedFigure {
  QSizeF size;  // points
  QString title;
  QString description;
  QColor background = QColor(255, 255, 255);
  std::function<void(QPainter&, const QRectF&)> draw;
};

// The figure rendered at `dpi` (pixels = points · dpi / 72), dots-per-meter set. Null image when
// it cannot be allocated.
QImage render_figure_image(const PaintedFigure& figure, double dpi);

// Writes the figure as PNG, SVG or PDF (from the extension), atomically. Throws ParamError for
// another extension or a dpi outside [kMinExportDpi, kMaxExportDpi], ResourceError for a PNG
// too large, IoError when the file cannot be written.
void export_figure(const PaintedFigure& figure, const QString& path, const ExportOptions& options);

// CSV field quoting (RFC 4180) and the shortest float32 text that reads back exactly, shared by
// every view's data export.
QByteArray csv_field(const QString& text);
void append_csv_value(QByteArray& out, float value);

// Writes bytes atomically (QSaveFile); throws IoError naming the path.
void write_bytes_atomically(const QString& path, const QByteArray& bytes);

// The heatmap as a PaintedFigure (it refers to `data`, which must outlive it).
PaintedFigure heatmap_painted_figure(const HeatmapData& data, const FigureStyle& style);
// The heatmap figure at its natural size rendered at `dpi`; null when it cannot be allocated.
QImage render_heatmap_image(const HeatmapData& data, const FigureStyle& style, double dpi);

// Writes `data` to `path` in the format its extension names.
// Throws ParamError (unknown extension, dpi out of range, nothing to export), ShapeError (values
// do not match rows x cols), ResourceError (a PNG too large to allocate) or IoError (cannot
// write); each message is one line naming the path and the reason.
void export_heatmap(const HeatmapData& data, const QString& path, const ExportOptions& options = {});

// The CSV text export_heatmap writes: a header `row_axis\col_axis,<col labels>`, then one line
// per row, `<row label>,<values>`. Values are the shortest decimal that reads back as the same
// float32; fields with commas, quotes or line breaks are quoted (RFC 4180); lines end in CRLF.
QByteArray heatmap_csv(const HeatmapData& data);

}  // namespace attnlab
