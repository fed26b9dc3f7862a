#include "figures/figure_export.h"

#include <QFile>
#include <QFileInfo>
#include <QImageWriter>
#include <QMarginsF>
#include <QPageLayout>
#include <QPageSize>
#include <QPainter>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgGenerator>
#include <array>
#include <charconv>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/npy.h"
#include "core/tensor.h"

namespace attnlab {
namespace {

struct FormatInfo {
  ExportFormat format;
  const char* suffix;
  const char* filter;
};

constexpr std::array<FormatInfo, 5> kFormats = {{
    {ExportFormat::Png, "png", "PNG image (*.png)"},
    {ExportFormat::Svg, "svg", "SVG vector image (*.svg)"},
    {ExportFormat::Pdf, "pdf", "PDF document (*.pdf)"},
    {ExportFormat::Npy, "npy", "NumPy array (*.npy)"},
    {ExportFormat::Csv, "csv", "CSV table (*.csv)"},
}};

// A PNG larger than this is refused before allocating it (4 bytes a pixel: 800 MB); the raster
// engine also cannot address more than 32767 px on a side.
constexpr double kMaxPngPixels = 200e6;
constexpr int kMaxPngSide = 32767;

[[noreturn]] void fail_io(const QString& path, const QString& reason) {
  throw IoError(QStringLiteral("cannot export '%1': %2").arg(path, reason).toStdString());
}

[[noreturn]] void fail_param(const QString& path, const QString& reason) {
  throw ParamError(QStringLiteral("cannot export '%1': %2").arg(path, reason).toStdString());
}

void check_exportable(const HeatmapData& data, const QString& path) {
  if (data.rows <= 0 || data.cols <= 0) {
    fail_param(path, QStringLiteral("nothing to export (the heatmap is %1 x %2)").arg(data.rows).arg(data.cols));
  }
  const auto expected = static_cast<std::size_t>(data.rows) * static_cast<std::size_t>(data.cols);
  if (data.values.size() != expected) {
    throw ShapeError(QStringLiteral("cannot export '%1': the heatmap has %2 values for %3 x %4")
                         .arg(path)
                         .arg(data.values.size())
                         .arg(data.rows)
                         .arg(data.cols)
                         .toStdString());
  }
}

// Opens the temporary file behind `path`; nothing appears at `path` before commit().
void open_for_writing(QSaveFile& file, const QString& path) {
  if (!file.open(QIODevice::WriteOnly)) fail_io(path, file.errorString());
}

void commit(QSaveFile& file, const QString& path) {
  if (!file.commit()) fail_io(path, file.errorString());
}

void write_bytes(QSaveFile& file, const QString& path, const QByteArray& bytes) {
  if (file.write(bytes) != bytes.size()) fail_io(path, file.errorString());
}

// ---- figure formats --------------------------------------------------------------------------

void check_dpi(const QString& path, double dpi) {
  if (!(dpi >= kMinExportDpi && dpi <= kMaxExportDpi)) {
    fail_param(path, QStringLiteral("dpi=%1: allowed %2..%3").arg(dpi).arg(kMinExportDpi).arg(kMaxExportDpi));
  }
}

void export_png(const PaintedFigure& figure, const QString& path, const ExportOptions& options) {
  const QSizeF points = figure.size;
  const double scale = options.dpi / 72.0;
  const double width = std::round(points.width() * scale);
  const double height = std::round(points.height() * scale);
  if (width * height > kMaxPngPixels || width > kMaxPngSide || height > kMaxPngSide) {
    const double max_dpi = std::floor(std::min(72.0 * std::sqrt(kMaxPngPixels / (points.width() * points.height())),
                                               72.0 * kMaxPngSide / std::max(points.width(), points.height())));
    throw ResourceError(
        QStringLiteral("cannot export '%1': a %2 x %3 px image at %4 dpi is too large; use at most %5 dpi")
            .arg(path)
            .arg(width)
            .arg(height)
            .arg(options.dpi)
            .arg(max_dpi)
            .toStdString());
  }
  const QImage image = render_figure_image(figure, options.dpi);
  if (image.isNull()) {
    throw ResourceError(QStringLiteral("cannot export '%1': out of memory for a %2 x %3 px image")
                            .arg(path)
                            .arg(width)
                            .arg(height)
                            .toStdString());
  }
  QSaveFile file(path);
  open_for_writing(file, path);
  QImageWriter writer(&file, "png");
  if (!writer.write(image)) fail_io(path, writer.errorString());
  commit(file, path);
}

void export_svg(const PaintedFigure& figure, const QString& path) {
  // One SVG user unit = one point (resolution 72), so the file has the figure's physical size.
  const QSize size(static_cast<int>(std::ceil(figure.size.width())), static_cast<int>(std::ceil(figure.size.height())));
  QSaveFile file(path);
  open_for_writing(file, path);
  QSvgGenerator generator;
  generator.setOutputDevice(&file);
  generator.setResolution(72);
  generator.setSize(size);
  generator.setViewBox(QRectF(QPointF(0, 0), QSizeF(size)));
  generator.setTitle(figure.title);
  generator.setDescription(figure.description);
  QPainter painter;
  if (!painter.begin(&generator)) fail_io(path, QStringLiteral("cannot start the SVG writer"));
  figure.draw(painter, QRectF(QPointF(0, 0), QSizeF(size)));
  if (!painter.end()) fail_io(path, QStringLiteral("the SVG writer failed"));
  commit(file, path);
}

void export_pdf(const PaintedFigure& figure, const QString& path) {
  const QSizeF points = figure.size;
  QSaveFile file(path);
  open_for_writing(file, path);
  QPdfWriter writer(&file);
  writer.setCreator(QStringLiteral("AttnLab"));
  writer.setTitle(figure.title);
  // ExactMatch: without it Qt snaps a size close to a standard one (A4, Letter) to that size.
  const QPageSize page(points, QPageSize::Point, QString(), QPageSize::ExactMatch);
  if (!writer.setPageLayout(QPageLayout(page, QPageLayout::Portrait, QMarginsF(0, 0, 0, 0), QPageLayout::Point))) {
    fail_io(path, QStringLiteral("the PDF writer refused a %1 x %2 pt page").arg(points.width()).arg(points.height()));
  }
  QPainter painter;
  if (!painter.begin(&writer)) fail_io(path, QStringLiteral("cannot start the PDF writer"));
  // The PDF device counts in dots of writer.resolution(); the figure fills the whole page.
  const double scale = writer.resolution() / 72.0;
  figure.draw(painter, QRectF(0, 0, points.width() * scale, points.height() * scale));
  if (!painter.end()) fail_io(path, QStringLiteral("the PDF writer failed"));
  commit(file, path);
}

// ---- data formats ----------------------------------------------------------------------------

void export_npy(const HeatmapData& data, const QString& path) {
  const Tensor tensor = Tensor::from_data({data.rows, data.cols}, data.values.data(), data.values.size());
  write_npy(QFile::encodeName(path).toStdString(), tensor);  // atomic; throws IoError naming the path
}

}  // namespace

QByteArray csv_field(const QString& text) {
  const bool needs_quotes = text.contains(QLatin1Char(',')) || text.contains(QLatin1Char('"')) ||
                            text.contains(QLatin1Char('\n')) || text.contains(QLatin1Char('\r'));
  if (!needs_quotes) return text.toUtf8();
  QString quoted = text;
  quoted.replace(QLatin1Char('"'), QStringLiteral("\"\""));
  return '"' + quoted.toUtf8() + '"';
}

QString label_or_index(const QStringList& labels, int index) {
  return index < labels.size() ? labels[index] : QString::number(index);
}

// Shortest decimal that reads back as exactly `value` (float32); independent of the C locale,
// which QCoreApplication sets from the environment (a German one would write "0,5").
void append_csv_value(QByteArray& out, float value) {
  std::array<char, 32> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), static_cast<qsizetype>(result.ptr - buffer.data()));
}

namespace {

QByteArray csv_row(const HeatmapData& data, int row) {
  QByteArray line = csv_field(label_or_index(data.row_labels, row));
  for (int c = 0; c < data.cols; ++c) {
    line += ',';
    append_csv_value(line, data.at(row, c));
  }
  line += "\r\n";
  return line;
}

QByteArray csv_header(const HeatmapData& data) {
  QByteArray line = csv_field(data.row_axis + QLatin1Char('\\') + data.col_axis);
  for (int c = 0; c < data.cols; ++c) {
    line += ',';
    line += csv_field(label_or_index(data.col_labels, c));
  }
  line += "\r\n";
  return line;
}

void export_csv(const HeatmapData& data, const QString& path) {
  QSaveFile file(path);
  open_for_writing(file, path);
  write_bytes(file, path, csv_header(data));
  for (int r = 0; r < data.rows; ++r) write_bytes(file, path, csv_row(data, r));  // row by row: no 2nd copy
  commit(file, path);
}

}  // namespace

ExportFormat export_format_for_path(const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  QStringList allowed;
  for (const FormatInfo& info : kFormats) {
    if (suffix == QLatin1String(info.suffix)) return info.format;
    allowed << QStringLiteral(".") + QLatin1String(info.suffix);
  }
  const QString found =
      suffix.isEmpty() ? QStringLiteral("no extension") : QStringLiteral("extension '.%1'").arg(suffix);
  fail_param(path, QStringLiteral("%1; allowed: %2").arg(found, allowed.join(QStringLiteral(", "))));
}

QStringList export_name_filters() {
  QStringList filters;
  for (const FormatInfo& info : kFormats) filters << QLatin1String(info.filter);
  return filters;
}

PaintedFigure heatmap_painted_figure(const HeatmapData& data, const FigureStyle& style) {
  PaintedFigure figure;
  figure.size = heatmap_figure_size(data, style);
  figure.title = data.title.isEmpty() ? QStringLiteral("AttnLab heatmap") : data.title;
  figure.description = QStringLiteral("AttnLab heatmap, %1 x %2 (%3 x %4), %5 colormap, %6 from %7 to %8")
                           .arg(data.rows)
                           .arg(data.cols)
                           .arg(data.row_axis, data.col_axis, Colormap::name_of(data.colormap), data.value_label)
                           .arg(data.vmin)
                           .arg(data.vmax);
  figure.background = style.background;
  figure.draw = [&data, style](QPainter& painter, const QRectF& target) { draw_heatmap_figure(painter, target, data, style); };
  return figure;
}

QImage render_heatmap_image(const HeatmapData& data, const FigureStyle& style, double dpi) {
  return render_figure_image(heatmap_painted_figure(data, style), dpi);
}

QImage render_figure_image(const PaintedFigure& figure, double dpi) {
  const double scale = dpi / 72.0;
  const int width = std::max(1, static_cast<int>(std::lround(figure.size.width() * scale)));
  const int height = std::max(1, static_cast<int>(std::lround(figure.size.height() * scale)));
  QImage image(width, height, QImage::Format_RGB32);
  if (image.isNull()) return image;
  const int dots_per_meter = static_cast<int>(std::lround(dpi / 0.0254));
  image.setDotsPerMeterX(dots_per_meter);
  image.setDotsPerMeterY(dots_per_meter);
  image.fill(figure.background);
  QPainter painter(&image);
  figure.draw(painter, QRectF(0, 0, width, height));
  painter.end();
  return image;
}

void export_figure(const PaintedFigure& figure, const QString& path, const ExportOptions& options) {
  const ExportFormat format = export_format_for_path(path);
  check_dpi(path, options.dpi);
  switch (format) {
    case ExportFormat::Png: export_png(figure, path, options); return;
    case ExportFormat::Svg: export_svg(figure, path); return;
    case ExportFormat::Pdf: export_pdf(figure, path); return;
    case ExportFormat::Npy:
    case ExportFormat::Csv:
      fail_param(path, QStringLiteral("this export writes a figure (.png, .svg or .pdf), not data"));
  }
}

void write_bytes_atomically(const QString& path, const QByteArray& bytes) {
  QSaveFile file(path);
  open_for_writing(file, path);
  write_bytes(file, path, bytes);
  commit(file, path);
}

QByteArray heatmap_csv(const HeatmapData& data) {
  QByteArray out = csv_header(data);
  for (int r = 0; r < data.rows; ++r) out += csv_row(data, r);
  return out;
}

void export_heatmap(const HeatmapData& data, const QString& path, const ExportOptions& options) {
  const ExportFormat format = export_format_for_path(path);
  check_exportable(data, path);
  check_dpi(path, options.dpi);
  switch (format) {
    case ExportFormat::Png:
    case ExportFormat::Svg:
    case ExportFormat::Pdf:
      export_figure(heatmap_painted_figure(data, options.style), path, options);
      return;
    case ExportFormat::Npy:
      export_npy(data, path);
      return;
    case ExportFormat::Csv:
      export_csv(data, path);
      return;
  }
}

}  // namespace attnlab
