#include "head_grid.h"

#include <QMouseEvent>
#include <QPainter>
#include <algorithm>
#include <cmath>

namespace attnlab {
namespace {

constexpr int kMaxThumbnailPixels = 160;  // thumbnails larger than this are max-pooled down
constexpr int kSpacing = 8;

}  // namespace

HeadGrid::HeadGrid(QWidget* parent) : QWidget(parent) {
  setMouseTracking(true);
  setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Preferred);
  setToolTip(tr("All heads of this layer; click one to show it in the main heatmap"));
}

void HeadGrid::setHeads(std::vector<HeatmapDataPtr> heads, int layer) {
  heads_ = std::move(heads);
  layer_ = layer;
  empty_reason_.clear();
  thumbnails_.clear();
  for (const auto& h : heads_) thumbnails_.push_back(thumbnail(*h));
  current_ = std::clamp(current_, 0, std::max(0, static_cast<int>(heads_.size()) - 1));
  updateGeometry();
  update();
}

void HeadGrid::showNoHeads(int layer, const QString& why) {
  setHeads({}, layer);
  empty_reason_ = why;
  update();
}

void HeadGrid::setCurrentHead(int head) {
  if (head == current_) return;
  current_ = head;
  update();
}

void HeadGrid::setHighlightedToken(int token) {
  if (token == highlighted_token_) return;
  highlighted_token_ = token;
  update();
}

// Max-pooling keeps thin, strong patterns (a diagonal, one attended token) visible when a long
// sequence is shrunk to a thumbnail.
QImage HeadGrid::thumbnail(const HeatmapData& head) const {
  const int size = std::min(std::max(head.rows, head.cols), kMaxThumbnailPixels);
  if (size <= 0) return {};
  QImage image(size, size, QImage::Format_RGB32);
  image.fill(palette().color(QPalette::Base));
  const Colormap& cmap = Colormap::get(head.colormap);
  const int n = std::max(head.rows, head.cols);
  for (int y = 0; y < size; ++y) {
    const int r0 = y * n / size, r1 = std::max(r0 + 1, (y + 1) * n / size);
    auto* line = reinterpret_cast<QRgb*>(image.scanLine(y));
    for (int x = 0; x < size; ++x) {
      const int c0 = x * n / size, c1 = std::max(c0 + 1, (x + 1) * n / size);
      float best = -INFINITY;
      for (int r = r0; r < std::min(r1, head.rows); ++r)
        for (int c = c0; c < std::min(c1, head.cols); ++c) best = std::max(best, head.at(r, c));
      if (best > -INFINITY) line[x] = cmap.color(best, head.vmin, head.vmax);
    }
  }
  return image;
}

int HeadGrid::columns() const {
  const int n = static_cast<int>(heads_.size());
  if (n <= 1) return 1;
  if (n <= 4) return 2;
  if (n <= 9) return n <= 6 ? 3 : (width() > height() * 1.3 ? 4 : 3);
  return static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
}

int HeadGrid::cellSize() const {
  const int cols = std::max(1, columns());
  const int rows = std::max(1, (static_cast<int>(heads_.size()) + cols - 1) / cols);
  const int label = fontMetrics().height();
  const int by_width = (width() - kSpacing * (cols + 1)) / cols;
  const int by_height = (height() - kSpacing * (rows + 1)) / rows - label;
  return std::max(24, std::min(by_width, by_height));
}

QRect HeadGrid::thumbnailRect(int head) const {
  const int cols = std::max(1, columns());
  const int cell = cellSize();
  const int label = fontMetrics().height();
  const int row = head / cols, col = head % cols;
  const int x = kSpacing + col * (cell + kSpacing);
  const int y = kSpacing + row * (cell + label + kSpacing) + label;
  return QRect(x, y, cell, cell);
}

int HeadGrid::headAt(QPoint pos) const {
  for (int h = 0; h < static_cast<int>(heads_.size()); ++h) {
    if (thumbnailRect(h).adjusted(-2, -fontMetrics().height(), 2, 2).contains(pos)) return h;
  }
  return -1;
}

QSize HeadGrid::sizeHint() const { return QSize(320, heightForWidth(320)); }

QSize HeadGrid::minimumSizeHint() const { return QSize(160, 120); }

int HeadGrid::heightForWidth(int w) const {
  const int n = std::max(1, static_cast<int>(heads_.size()));
  const int cols = n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int rows = (n + cols - 1) / cols;
  const int cell = std::max(24, (w - kSpacing * (cols + 1)) / cols);
  return kSpacing + rows * (cell + fontMetrics().height() + kSpacing);
}

void HeadGrid::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), palette().color(QPalette::Window));
  if (heads_.empty()) {
    p.setPen(palette().color(QPalette::PlaceholderText));
    p.drawText(rect().adjusted(8, 8, -8, -8), Qt::AlignCenter | Qt::TextWordWrap,
               empty_reason_.isEmpty() ? tr("Heads appear here once the text is computed.") : empty_reason_);
    return;
  }
  const QColor text = palette().color(QPalette::WindowText);
  const QColor accent = palette().color(QPalette::Highlight);
  for (int h = 0; h < static_cast<int>(heads_.size()); ++h) {
    const QRect r = thumbnailRect(h);
    p.setPen(text);
    p.drawText(QRect(r.left(), r.top() - fontMetrics().height(), r.width(), fontMetrics().height()),
               Qt::AlignLeft | Qt::AlignVCenter, tr("head %1").arg(h));
    p.setRenderHint(QPainter::SmoothPixmapTransform, false);
    p.drawImage(r, thumbnails_[static_cast<std::size_t>(h)]);
    const HeatmapData& d = *heads_[static_cast<std::size_t>(h)];
    if (highlighted_token_ >= 0 && highlighted_token_ < d.rows && d.rows > 0) {
      // The linked token: its row and column, a thin translucent band so the pattern under it
      // stays visible in a small thumbnail.
      const double cell = static_cast<double>(r.height()) / d.rows;
      QColor mark = Colormap::contrasting(Colormap::get(d.colormap).color(0.0f));
      mark.setAlpha(150);
      const double band = std::max(1.0, cell);
      p.fillRect(QRectF(r.left(), r.top() + highlighted_token_ * cell, r.width(), band), mark);
      p.fillRect(QRectF(r.left() + highlighted_token_ * cell, r.top(), band, r.height()), mark);
    }
    if (h == current_ || h == hovered_head_) {
      p.setPen(QPen(h == current_ ? accent : text, h == current_ ? 3 : 1));
      p.setBrush(Qt::NoBrush);
      p.drawRect(r.adjusted(-2, -2, 1, 1));
    }
  }
}

void HeadGrid::mousePressEvent(QMouseEvent* event) {
  const int h = headAt(event->position().toPoint());
  if (h >= 0) {
    setCurrentHead(h);
    emit headSelected(h);
  }
}

void HeadGrid::mouseMoveEvent(QMouseEvent* event) {
  const int h = headAt(event->position().toPoint());
  if (h != hovered_head_) {
    hovered_head_ = h;
    setCursor(h >= 0 ? Qt::PointingHandCursor : Qt::ArrowCursor);
    update();
  }
}

void HeadGrid::leaveEvent(QEvent*) {
  hovered_head_ = -1;
  update();
}

void HeadGrid::resizeEvent(QResizeEvent*) { update(); }

}  // namespace attnlab
