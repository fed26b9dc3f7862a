#include "bigbird_view.h"

#include <QHBoxLayout>
#include <QMouseEvent>
#include <QPainter>
#include <QVBoxLayout>

#include "core/error.h"

namespace attnlab {

// The figure itself: paints draw_bigbird_figure into its whole rectangle.
class BigBirdCanvas final : public QWidget {
 public:
  explicit BigBirdCanvas(BigBirdView* view) : QWidget(view), view_(view) {
    setMouseTracking(true);
    setMinimumSize(320, 200);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  }

 protected:
  void paintEvent(QPaintEvent*) override {
    QPainter painter(this);
    painter.fillRect(rect(), palette().color(QPalette::Base));
    if (!bigbird_extras(view_->context_)) {
      painter.setPen(palette().color(QPalette::PlaceholderText));
      painter.drawText(rect(), Qt::AlignCenter, tr("Run the bigbird variant to see its blocks"));
      return;
    }
    draw_bigbird_figure(painter, QRectF(rect()), view_->context_, view_->figureStyle(),
                        BigBirdFigureOptions{view_->receptiveLayers()});
  }
  // Room for the panels in one row at a readable size; the dock shrinks it when it must.
  QSize sizeHint() const override { return QSize(1100, 420); }
  void mouseMoveEvent(QMouseEvent* event) override { view_->hoverAt(event->position()); }
  void leaveEvent(QEvent*) override { view_->hoverAt(QPointF(-1, -1)); }

 private:
  BigBirdView* view_;
};

BigBirdView::BigBirdView(QWidget* parent) : TraceViewWidget(parent) {
  layers_slider_ = new QSlider(Qt::Horizontal);
  layers_slider_->setObjectName(QStringLiteral("receptiveLayers"));
  layers_slider_->setRange(1, BigBirdExtras::kMaxReceptiveLayers);
  layers_slider_->setValue(BigBirdExtras::kMaxReceptiveLayers);
  layers_slider_->setPageStep(1);
  layers_slider_->setTickPosition(QSlider::TicksBelow);
  layers_slider_->setMaximumWidth(160);
  layers_slider_->setToolTip(tr("Number of layers of this pattern stacked: which key blocks each query block can "
                                "depend on after n layers (through any head)"));
  layers_label_ = new QLabel;
  message_ = new QLabel;
  message_->setWordWrap(true);
  message_->hide();
  canvas_ = new BigBirdCanvas(this);

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Receptive field after")));
  controls->addWidget(layers_slider_);
  controls->addWidget(layers_label_);
  controls->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(message_);
  layout->addWidget(canvas_, 1);

  const auto show_layers = [this](int n) {
    layers_label_->setText(n == 1 ? tr("1 layer") : tr("%1 layers").arg(n));
    canvas_->update();
  };
  connect(layers_slider_, &QSlider::valueChanged, this, show_layers);
  show_layers(layers_slider_->value());
}

void BigBirdView::setContext(const ViewContext& context) {
  context_ = context;
  message_->hide();
  if (context_.result && !bigbird_extras(context_)) {
    message_->setText(tr("This view needs the bigbird variant."));
    message_->show();
  }
  canvas_->update();
}

void BigBirdView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->update();
}

int BigBirdView::receptiveLayers() const { return layers_slider_->value(); }

void BigBirdView::setReceptiveLayers(int layers) { layers_slider_->setValue(layers); }

FigureStyle BigBirdView::figureStyle() const {
  FigureStyle style;
  style.background = canvas_->palette().color(QPalette::Base);
  style.foreground = canvas_->palette().color(QPalette::Text);
  return style;
}

BigBirdFigureLayout BigBirdView::figureLayout() const {
  if (!bigbird_extras(context_)) return {};
  return compute_bigbird_layout(context_, figureStyle(), QRectF(canvas_->rect()), canvas_);
}

void BigBirdView::hoverAt(QPointF pos) {
  const BigBirdExtras* extras = bigbird_extras(context_);
  int token = -1;
  if (extras && pos.x() >= 0) token = figureLayout().token_at(pos, extras->layout().block_size);
  if (token == hovered_) return;
  hovered_ = token;
  if (token >= 0) {
    canvas_->setToolTip(tr("query #%1 “%2”: block %3, sees %4 keys")
                            .arg(token)
                            .arg(QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text))
                            .arg(extras->layout().block_of(token))
                            .arg(extras->key_count(context_.head, token)));
  } else {
    canvas_->setToolTip(QString());
  }
  setHighlightedToken(token);
  emit tokenHovered(token);
}

ViewSpec bigbird_view_spec() {
  ViewSpec v;
  v.name = "blocks";
  v.title = QStringLiteral("BigBird blocks");
  v.requirement = QStringLiteral("needs the bigbird variant");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) {
    return r.variant == "bigbird" && !r.layers.empty() &&
           dynamic_cast<const BigBirdExtras*>(r.layers.front().extras.get()) != nullptr;
  };
  v.figure = [](const ViewContext& c, const FigureStyle& style) { return bigbird_painted_figure(c, style); };
  v.export_data = [](const ViewContext& c, const QString& path) { export_bigbird_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new BigBirdView(parent); };
  return v;
}

}  // namespace attnlab
