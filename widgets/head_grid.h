// All heads of one layer as a grid of thumbnails: the overview that lets a user spot the
// interesting head and click it into the main heatmap. The current head is framed; the
// hovered token (linked highlighting) is marked by a thin row/column line in every thumbnail.
#pragma once

#include <QImage>
#include <QWidget>
#include <vector>

#include "heatmap_data.h"

namespace attnlab {

class HeadGrid : public QWidget {
  Q_OBJECT

 public:
  explicit HeadGrid(QWidget* parent = nullptr);

  void setHeads(std::vector<HeatmapDataPtr> heads, int layer);
  // No heads to show for `layer` (a layer without attention); the panel says `why`.
  void showNoHeads(int layer, const QString& why);
  const std::vector<HeatmapDataPtr>& heads() const { return heads_; }
  int layer() const { return layer_; }
  void setCurrentHead(int head);
  int currentHead() const { return current_; }
  void setHighlightedToken(int token);
  // Index of the head whose thumbnail contains `pos`, or -1.
  int headAt(QPoint pos) const;
  QRect thumbnailRect(int head) const;

  QSize sizeHint() const override;
  QSize minimumSizeHint() const override;
  bool hasHeightForWidth() const override { return true; }
  int heightForWidth(int width) const override;

 signals:
  void headSelected(int head);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void leaveEvent(QEvent* event) override;
  void resizeEvent(QResizeEvent* event) override;

 private:
  int columns() const;
  int cellSize() const;
  QImage thumbnail(const HeatmapData& head) const;

  std::vector<HeatmapDataPtr> heads_;
  std::vector<QImage> thumbnails_;
  int layer_ = 0;
  QString empty_reason_;  // why there are no heads (a layer without attention), or empty
  int current_ = 0;
  int hovered_head_ = -1;
  int highlighted_token_ = -1;
};

}  // namespace attnlab
