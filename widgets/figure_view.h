// The heatmap drawn with QPainter through the figure renderer: the fallback for machines where
// no OpenGL 3.3 context can be made (HeatmapView::openGLUnavailableReason()). It shows the same
// figure as an export, reports the hovered cell and marks the linked token; it does not zoom.
#pragma once

#include <QWidget>

#include "heatmap_data.h"

namespace attnlab {

class FigureView : public QWidget {
  Q_OBJECT

 public:
  explicit FigureView(QWidget* parent = nullptr);

  void setData(HeatmapDataPtr data);
  HeatmapDataPtr data() const { return data_; }
  void setHighlightedToken(int index);
  // The cell under `pos` as QPoint(row, col), (-1, -1) outside; same convention as HeatmapView.
  QPoint cellAt(QPointF pos) const;

 signals:
  void tokenHovered(int row, int col);
  void cellClicked(int row, int col);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void leaveEvent(QEvent* event) override;

 private:
  HeatmapDataPtr data_;
  int highlighted_ = -1;
  QPoint hovered_{-1, -1};
};

}  // namespace attnlab
