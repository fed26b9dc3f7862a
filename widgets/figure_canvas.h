// The drawing surface of the variant views: a figure painted through its draw callback at the
// size of the tab, but never below a readable minimum; a smaller tab scrolls instead of
// squeezing the panels.
//
// Size. The figure keeps the aspect of its natural size (points, as exported) and is drawn at s
// logical pixels per point: the largest s that fits the viewport, but at least
//   kReadableScale · (logical dpi / 72),
// below which its text (which keeps the widget font's size at any s) crowds out the panels. In
// logical pixels, so a high-DPI screen draws the same layout with more device pixels.
//
// Repaints happen on new data (setFigure, clearFigure), on refresh() (an option or the
// highlighted token changed) and on palette changes (the figure takes the palette's Base and
// Text colours: light and dark themes) — never on a timer.
//
// Hover. The figure's token_at callback maps the pointer to a token; the canvas emits
// tokenHovered when that token changes (-1 on leaving) and shows the figure's tooltip for it.
#pragma once

#include <QScrollArea>
#include <QSizeF>
#include <functional>

#include "figures/heatmap_figure.h"

namespace attnlab {

class FigureCanvas : public QScrollArea {
  Q_OBJECT

 public:
  // The smallest drawing scale, relative to the figure's exported size at the screen's logical
  // dpi (1: as large as on paper).
  static constexpr double kReadableScale = 0.8;

  struct Figure {
    QSizeF size;  // natural size, points
    // Draws into `target` (logical pixels of the canvas's surface) in the palette's style.
    std::function<void(QPainter& painter, const QRectF& target, const FigureStyle& style)> draw;
    // The token under `pos` (surface coordinates) of the figure drawn into `target` on
    // `device`, or -1. Optional: without it the canvas reports no hover.
    std::function<int(const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos)> token_at;
    // The tooltip for a hovered token. Optional.
    std::function<QString(int token)> tooltip;
  };

  explicit FigureCanvas(QWidget* parent = nullptr);
  ~FigureCanvas() override;

  // A new figure (new data): sizes the surface and repaints.
  void setFigure(Figure figure);
  // No figure: `message` instead (why nothing can be drawn).
  void clearFigure(const QString& message);
  // The figure's options or highlight changed: repaint.
  void refresh();

  bool hasFigure() const { return static_cast<bool>(figure_.draw); }
  QString message() const { return message_; }
  // The palette's Base (background) and Text (foreground) colours.
  FigureStyle figureStyle() const;
  // The widget the figure is painted on (inside the viewport): the device for layouts and hit
  // tests, and the widget that receives the mouse.
  QWidget* surface() const;
  // Where the figure is drawn on the surface (logical pixels); empty without a figure.
  QRectF figureRect() const;
  // The smallest size the figure is drawn at (logical pixels); empty without a figure.
  QSize readableMinimum() const;
  int hoveredToken() const { return hovered_; }

 signals:
  void tokenHovered(int token);

 private:
  class Surface;
  friend class Surface;
  void paintSurface(QPainter& painter);
  void hoverAt(QPointF pos);  // pos outside the surface (x < 0): the pointer left
  double pixelsPerPoint() const;

  Surface* surface_ = nullptr;
  Figure figure_;
  QString message_;
  int hovered_ = -1;
};

}  // namespace attnlab
