#include "figure_canvas.h"

#include <QEvent>
#include <QFontMetricsF>
#include <QMouseEvent>
#include <QPainter>
#include <algorithm>
#include <cmath>

namespace attnlab {

namespace {
constexpr double kPointsPerInch = 72.0;
}  // namespace

// The widget inside the scroll area's viewport. The scroll area resizes it to the viewport, but
// not below its minimum size (the figure's readable minimum): then the viewport scrolls.
class FigureCanvas::Surface final : public QWidget {
 public:
  explicit Surface(FigureCanvas* canvas) : canvas_(canvas) {
    setMouseTracking(true);
    setAttribute(Qt::WA_OpaquePaintEvent);  // paintSurface fills every pixel
  }

  QSize sizeHint() const override {
    // The figure as large as on paper at the screen's dpi, when there is room for it.
    if (!canvas_->hasFigure()) return minimumSize();
    const double ppp = logicalDpiX() / kPointsPerInch;
    return QSize(static_cast<int>(std::ceil(canvas_->figure_.size.width() * ppp)),
                 static_cast<int>(std::ceil(canvas_->figure_.size.height() * ppp)));
  }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter painter(this);
    canvas_->paintSurface(painter);
  }
  void mouseMoveEvent(QMouseEvent* event) override { canvas_->hoverAt(event->position()); }
  void leaveEvent(QEvent*) override { canvas_->hoverAt(QPointF(-1, -1)); }

 private:
  FigureCanvas* canvas_;
};

FigureCanvas::FigureCanvas(QWidget* parent) : QScrollArea(parent) {
  surface_ = new Surface(this);
  surface_->setObjectName(QStringLiteral("figureSurface"));
  setWidget(surface_);
  setWidgetResizable(true);
  setFrameShape(QFrame::NoFrame);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

FigureCanvas::~FigureCanvas() = default;

QWidget* FigureCanvas::surface() const { return surface_; }

FigureStyle FigureCanvas::figureStyle() const {
  FigureStyle style;
  style.background = palette().color(QPalette::Base);
  style.foreground = palette().color(QPalette::Text);
  return style;
}

double FigureCanvas::pixelsPerPoint() const { return surface_->logicalDpiX() / kPointsPerInch; }

QSize FigureCanvas::readableMinimum() const {
  if (!hasFigure() || figure_.size.isEmpty()) return QSize(0, 0);
  const double scale = kReadableScale * pixelsPerPoint();
  return QSize(static_cast<int>(std::ceil(figure_.size.width() * scale)),
               static_cast<int>(std::ceil(figure_.size.height() * scale)));
}

QRectF FigureCanvas::figureRect() const {
  if (!hasFigure() || figure_.size.isEmpty()) return QRectF();
  const QRectF area(surface_->rect());
  // Logical pixels per point: as large as fits, never below the readable minimum.
  const double fit = std::min(area.width() / figure_.size.width(), area.height() / figure_.size.height());
  const double scale = std::max(fit, kReadableScale * pixelsPerPoint());
  const QSizeF size = figure_.size * scale;
  // Centred across, at the top: the controls above stay next to the figure's title.
  return QRectF(area.left() + 0.5 * std::max(0.0, area.width() - size.width()), area.top(), size.width(), size.height());
}

void FigureCanvas::setFigure(Figure figure) {
  figure_ = std::move(figure);
  message_.clear();
  surface_->setMinimumSize(readableMinimum());
  surface_->updateGeometry();
  refresh();
}

void FigureCanvas::clearFigure(const QString& message) {
  figure_ = Figure{};
  message_ = message;
  surface_->setMinimumSize(0, 0);
  surface_->setToolTip(QString());
  hovered_ = -1;
  refresh();
}

void FigureCanvas::refresh() { surface_->update(); }

void FigureCanvas::paintSurface(QPainter& painter) {
  const QRect area = surface_->rect();
  const FigureStyle style = figureStyle();
  painter.fillRect(area, style.background);
  if (!hasFigure()) {
    const double margin = QFontMetricsF(font(), surface_).height();
    painter.setPen(palette().color(QPalette::PlaceholderText));
    painter.drawText(QRectF(area).adjusted(margin, margin, -margin, -margin), Qt::AlignCenter | Qt::TextWordWrap, message_);
    return;
  }
  figure_.draw(painter, figureRect(), style);
}

void FigureCanvas::hoverAt(QPointF pos) {
  int token = -1;
  if (hasFigure() && figure_.token_at && pos.x() >= 0) token = figure_.token_at(figureRect(), figureStyle(), surface_, pos);
  if (token == hovered_) return;
  hovered_ = token;
  surface_->setToolTip(token >= 0 && figure_.tooltip ? figure_.tooltip(token) : QString());
  emit tokenHovered(token);
}

}  // namespace attnlab
