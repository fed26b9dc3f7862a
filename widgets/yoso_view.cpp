#include "yoso_view.h"

#include <QHBoxLayout>
#include <QMouseEvent>
#include <QPainter>
#include <QVBoxLayout>

namespace attnlab {

// The figure itself: paints draw_yoso_figure into its whole rectangle.
class YosoCanvas final : public QWidget {
 public:
  explicit YosoCanvas(YosoView* view) : QWidget(view), view_(view) {
    setMouseTracking(true);
    setMinimumSize(320, 200);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  }

  // Room for the panels in one row at a readable size; the dock shrinks it when it must.
  QSize sizeHint() const override { return QSize(1100, 420); }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter painter(this);
    painter.fillRect(rect(), palette().color(QPalette::Base));
    if (!yoso_extras(view_->context_)) {
      painter.setPen(palette().color(QPalette::PlaceholderText));
      painter.drawText(rect(), Qt::AlignCenter, tr("Run the yoso variant to see its kernel"));
      return;
    }
    draw_yoso_figure(painter, QRectF(rect()), view_->context_, view_->figureStyle(), view_->figureOptions());
  }
  void mouseMoveEvent(QMouseEvent* event) override { view_->hoverAt(event->position()); }
  void leaveEvent(QEvent*) override { view_->hoverAt(QPointF(-1, -1)); }

 private:
  YosoView* view_;
};

YosoView::YosoView(QWidget* parent) : TraceViewWidget(parent) {
  log_box_ = new QCheckBox(tr("Logarithmic probability axis"));
  log_box_->setObjectName(QStringLiteral("logProbability"));
  log_box_->setChecked(true);
  log_box_->setToolTip(tr("Collision probabilities fall fast with the angle ((1 − θ/π)^τ); a log axis shows the "
                          "measured points against the curve over the whole range"));
  message_ = new QLabel;
  message_->setWordWrap(true);
  message_->hide();
  canvas_ = new YosoCanvas(this);

  auto* controls = new QHBoxLayout;
  controls->addWidget(log_box_);
  controls->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(message_);
  layout->addWidget(canvas_, 1);
  connect(log_box_, &QCheckBox::toggled, canvas_, qOverload<>(&QWidget::update));
}

void YosoView::setContext(const ViewContext& context) {
  context_ = context;
  message_->hide();
  if (context_.result && !yoso_extras(context_)) {
    message_->setText(tr("This view needs the yoso variant."));
    message_->show();
  }
  canvas_->update();
}

void YosoView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->update();
}

YosoFigureOptions YosoView::figureOptions() const { return YosoFigureOptions{log_box_->isChecked()}; }

FigureStyle YosoView::figureStyle() const {
  FigureStyle style;
  style.background = canvas_->palette().color(QPalette::Base);
  style.foreground = canvas_->palette().color(QPalette::Text);
  return style;
}

YosoFigureLayout YosoView::figureLayout() const {
  if (!yoso_extras(context_)) return {};
  return compute_yoso_layout(context_, figureStyle(), QRectF(canvas_->rect()), canvas_);
}

void YosoView::hoverAt(QPointF pos) {
  const YosoExtras* extras = yoso_extras(context_);
  int token = -1;
  if (extras && pos.x() >= 0) token = figureLayout().token_at(pos);
  if (token == hovered_) return;
  hovered_ = token;
  if (token >= 0) {
    canvas_->setToolTip(tr("query #%1 “%2”").arg(token).arg(
        QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text)));
  } else {
    canvas_->setToolTip(QString());
  }
  setHighlightedToken(token);
  emit tokenHovered(token);
}

ViewSpec yoso_view_spec() {
  ViewSpec v;
  v.name = "yoso";
  v.title = QStringLiteral("YOSO kernel");
  v.requirement = QStringLiteral("needs the yoso variant");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) {
    return r.variant == "yoso" && !r.layers.empty() &&
           dynamic_cast<const YosoExtras*>(r.layers.front().extras.get()) != nullptr;
  };
  v.figure = [](const ViewContext& c, const FigureStyle& style) { return yoso_painted_figure(c, style); };
  v.export_data = [](const ViewContext& c, const QString& path) { export_yoso_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new YosoView(parent); };
  return v;
}

}  // namespace attnlab
