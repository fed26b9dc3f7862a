#include "figure_view.h"

#include <QMouseEvent>
#include <QPainter>

#include "figures/heatmap_figure.h"

namespace attnlab {
namespace {

FigureStyle style_for(const QWidget& widget, int highlight) {
  FigureStyle style;
  style.background = widget.palette().color(QPalette::Base);
  style.foreground = widget.palette().color(QPalette::Text);
  style.highlight_index = highlight;
  return style;
}

}  // namespace

FigureView::FigureView(QWidget* parent) : QWidget(parent) {
  setMouseTracking(true);
  setMinimumSize(200, 160);
}

void FigureView::setData(HeatmapDataPtr data) {
  data_ = std::move(data);
  update();
}

void FigureView::setHighlightedToken(int index) {
  highlighted_ = index;
  update();
}

QPoint FigureView::cellAt(QPointF pos) const {
  if (!data_ || data_->rows == 0) return {-1, -1};
  const HeatmapFigureLayout layout =
      compute_heatmap_layout(*data_, style_for(*this, highlighted_), QRectF(rect()), this);
  if (!layout.matrix.contains(pos) || layout.cell <= 0) return {-1, -1};
  const int row = static_cast<int>((pos.y() - layout.matrix.top()) / layout.cell);
  const int col = static_cast<int>((pos.x() - layout.matrix.left()) / layout.cell);
  if (row < 0 || row >= data_->rows || col < 0 || col >= data_->cols) return {-1, -1};
  return {row, col};
}

void FigureView::paintEvent(QPaintEvent*) {
  QPainter painter(this);
  painter.fillRect(rect(), palette().color(QPalette::Base));
  if (!data_ || data_->rows == 0) {
    painter.setPen(palette().color(QPalette::PlaceholderText));
    painter.drawText(rect(), Qt::AlignCenter, tr("No data"));
    return;
  }
  painter.setRenderHint(QPainter::Antialiasing);
  draw_heatmap_figure(painter, QRectF(rect()), *data_, style_for(*this, highlighted_));
}

void FigureView::mouseMoveEvent(QMouseEvent* event) {
  const QPoint cell = cellAt(event->position());
  if (cell != hovered_) {
    hovered_ = cell;
    if (cell.x() >= 0) {
      setToolTip(tr("query #%1 '%2' → key #%3 '%4'\nweight %5")
                     .arg(cell.x())
                     .arg(data_->row_labels.value(cell.x()))
                     .arg(cell.y())
                     .arg(data_->col_labels.value(cell.y()))
                     .arg(static_cast<double>(data_->at(cell.x(), cell.y())), 0, 'g', 4));
    } else {
      setToolTip(QString());
    }
    emit tokenHovered(cell.x(), cell.y());
  }
}

void FigureView::mousePressEvent(QMouseEvent* event) {
  const QPoint cell = cellAt(event->position());
  if (cell.x() >= 0) emit cellClicked(cell.x(), cell.y());
}

void FigureView::leaveEvent(QEvent*) {
  if (hovered_.x() >= 0) {
    hovered_ = {-1, -1};
    emit tokenHovered(-1, -1);
  }
}

}  // namespace attnlab
