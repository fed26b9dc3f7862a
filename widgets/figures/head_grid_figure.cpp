#include "figures/head_grid_figure.h"

#include <QFile>
#include <QFontMetricsF>
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/npy.h"

namespace attnlab {
namespace {

int grid_columns(int heads) {
  if (heads <= 4) return std::max(1, heads);
  if (heads <= 8) return 4;
  return static_cast<int>(std::ceil(std::sqrt(static_cast<double>(heads))));
}

// Panels are smaller than a lone heatmap: the grid is an overview, the single view the detail.
QSizeF panel_size(const HeatmapData& data, const FigureStyle& style) {
  const QSizeF natural = heatmap_figure_size(data, style);
  const double scale = std::min(1.0, 420.0 / std::max(natural.width(), natural.height()));
  return natural * scale;
}

double title_height(const FigureStyle& style) {
  QFont font = style.font;
  font.setBold(true);
  font.setPointSizeF(style.font.pointSizeF() * 1.4);
  return QFontMetricsF(font).height() * 1.8;  // points: QFontMetricsF without a device uses 72 dpi
}

void check_heads(const std::vector<HeatmapDataPtr>& heads, const QString& path) {
  if (heads.empty()) throw ParamError(("cannot export '" + path + "': nothing to export (no heads)").toStdString());
  for (const auto& h : heads) {
    if (!h || h->rows != heads.front()->rows || h->cols != heads.front()->cols) {
      throw ShapeError(("cannot export '" + path + "': the heads' matrices differ in size").toStdString());
    }
  }
}

void export_npy(const std::vector<HeatmapDataPtr>& heads, const QString& path) {
  const auto H = static_cast<std::int64_t>(heads.size());
  const std::int64_t rows = heads.front()->rows, cols = heads.front()->cols;
  Tensor all({H, rows, cols});
  for (std::int64_t h = 0; h < H; ++h) {
    std::copy(heads[static_cast<std::size_t>(h)]->values.begin(), heads[static_cast<std::size_t>(h)]->values.end(),
              all.data() + h * rows * cols);
  }
  write_npy(QFile::encodeName(path).toStdString(), all);  // [H, rows, cols]
}

// Long form, one line per weight: head, query index, query token, key index, key token, weight.
QByteArray long_csv(const std::vector<HeatmapDataPtr>& heads) {
  const HeatmapData& first = *heads.front();
  QByteArray out = "head," + csv_field(first.row_axis + QStringLiteral("_index")) + ',' + csv_field(first.row_axis) + ',' +
                   csv_field(first.col_axis + QStringLiteral("_index")) + ',' + csv_field(first.col_axis) + ',' +
                   csv_field(first.value_label) + "\r\n";
  for (std::size_t h = 0; h < heads.size(); ++h) {
    const HeatmapData& d = *heads[h];
    for (int r = 0; r < d.rows; ++r) {
      const QByteArray row_part = QByteArray::number(static_cast<qulonglong>(h)) + ',' + QByteArray::number(r) + ',' +
                                  csv_field(r < d.row_labels.size() ? d.row_labels[r] : QString::number(r)) + ',';
      for (int c = 0; c < d.cols; ++c) {
        out += row_part + QByteArray::number(c) + ',' + csv_field(c < d.col_labels.size() ? d.col_labels[c] : QString::number(c)) + ',';
        append_csv_value(out, d.at(r, c));
        out += "\r\n";
      }
    }
  }
  return out;
}

}  // namespace

QSizeF head_grid_figure_size(const std::vector<HeatmapDataPtr>& heads, const FigureStyle& style) {
  if (heads.empty()) return QSizeF(300, 200);
  const int cols = grid_columns(static_cast<int>(heads.size()));
  const int rows = (static_cast<int>(heads.size()) + cols - 1) / cols;
  const QSizeF panel = panel_size(*heads.front(), style);
  return QSizeF(std::ceil(panel.width() * cols), std::ceil(panel.height() * rows + title_height(style)));
}

void draw_head_grid_figure(QPainter& painter, const QRectF& target, const std::vector<HeatmapDataPtr>& heads, int layer,
                           const FigureStyle& style) {
  painter.save();
  painter.fillRect(target, style.background);
  if (heads.empty()) {
    painter.restore();
    return;
  }
  const QSizeF natural = head_grid_figure_size(heads, style);
  const double scale = std::min(target.width() / natural.width(), target.height() / natural.height());
  const double title_h = title_height(style) * scale;
  QFont title_font = style.font;
  title_font.setBold(true);
  title_font.setPointSizeF(style.font.pointSizeF() * 1.4);
  painter.setFont(title_font);
  painter.setPen(style.foreground);
  QString title = heads.front()->title;
  const int head_marker = title.lastIndexOf(QStringLiteral(" · head "));
  if (head_marker >= 0) {
    // "softmax · layer 1 · head 3 · causal" -> "softmax · layer 1 · causal · all heads"
    const int next = title.indexOf(QStringLiteral(" · "), head_marker + 3);
    title = title.left(head_marker) + (next >= 0 ? title.mid(next) : QString());
  }
  title = title.isEmpty() ? QStringLiteral("layer %1").arg(layer) : title;
  painter.drawText(QRectF(target.left(), target.top(), target.width(), title_h), Qt::AlignCenter,
                   QStringLiteral("%1 · all %2 heads").arg(title).arg(heads.size()));

  const int cols = grid_columns(static_cast<int>(heads.size()));
  const QSizeF panel = panel_size(*heads.front(), style) * scale;
  for (std::size_t h = 0; h < heads.size(); ++h) {
    const int r = static_cast<int>(h) / cols, c = static_cast<int>(h) % cols;
    const QRectF cell(target.left() + c * panel.width(), target.top() + title_h + r * panel.height(), panel.width(),
                      panel.height());
    HeatmapData one = *heads[h];
    one.title = QStringLiteral("head %1").arg(h);
    // Draw each panel at its natural size scaled into the cell, so fonts keep their proportions.
    const QSizeF natural_panel = heatmap_figure_size(one, style);
    const double s = std::min(cell.width() / natural_panel.width(), cell.height() / natural_panel.height());
    painter.save();
    painter.translate(cell.center() - QPointF(natural_panel.width() * s / 2, natural_panel.height() * s / 2));
    painter.scale(s, s);
    draw_heatmap_figure(painter, QRectF(QPointF(0, 0), natural_panel), one, style);
    painter.restore();
  }
  painter.restore();
}

void export_head_grid(const std::vector<HeatmapDataPtr>& heads, int layer, const QString& path,
                      const ExportOptions& options) {
  const ExportFormat format = export_format_for_path(path);
  check_heads(heads, path);
  if (!(options.dpi >= kMinExportDpi && options.dpi <= kMaxExportDpi)) {
    throw ParamError(QStringLiteral("cannot export '%1': dpi=%2: allowed %3..%4")
                         .arg(path)
                         .arg(options.dpi)
                         .arg(kMinExportDpi)
                         .arg(kMaxExportDpi)
                         .toStdString());
  }
  switch (format) {
    case ExportFormat::Npy: export_npy(heads, path); return;
    case ExportFormat::Csv: write_bytes_atomically(path, long_csv(heads)); return;
    case ExportFormat::Png:
    case ExportFormat::Svg:
    case ExportFormat::Pdf: {
      PaintedFigure figure;
      figure.size = head_grid_figure_size(heads, options.style);
      figure.title = QStringLiteral("AttnLab: all heads of layer %1").arg(layer);
      figure.description = QStringLiteral("%1 heads, %2 x %3 each").arg(heads.size()).arg(heads.front()->rows).arg(heads.front()->cols);
      figure.background = options.style.background;
      figure.draw = [&](QPainter& painter, const QRectF& target) {
        draw_head_grid_figure(painter, target, heads, layer, options.style);
      };
      export_figure(figure, path, options);
      return;
    }
  }
}

}  // namespace attnlab
