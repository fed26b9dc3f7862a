#include "bigbird_view.h"

#include <QHBoxLayout>
#include <QVBoxLayout>

#include "core/error.h"
#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {

BigBirdView::BigBirdView(QWidget* parent) : TraceViewWidget(parent) {
  layers_slider_ = new QSlider(Qt::Horizontal);
  layers_slider_->setObjectName(QStringLiteral("receptiveLayers"));
  layers_slider_->setRange(1, BigBirdExtras::kMaxReceptiveLayers);
  layers_slider_->setValue(BigBirdExtras::kMaxReceptiveLayers);
  layers_slider_->setPageStep(1);
  layers_slider_->setTickPosition(QSlider::TicksBelow);
  layers_slider_->setMaximumWidth(layers_slider_->fontMetrics().horizontalAdvance(QStringLiteral("M")) * 12);
  layers_slider_->setToolTip(tr("Number of layers of this pattern stacked: which key blocks each query block can "
                                "depend on after n layers (through any head)"));
  layers_label_ = new QLabel;
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("bigbirdCanvas"));

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Receptive field after")));
  controls->addWidget(layers_slider_);
  controls->addWidget(layers_label_);
  controls->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(canvas_, 1);

  const auto show_layers = [this](int n) {
    layers_label_->setText(n == 1 ? tr("1 layer") : tr("%1 layers").arg(n));
    canvas_->refresh();
  };
  connect(layers_slider_, &QSlider::valueChanged, this, show_layers);
  connect(layers_slider_, &QSlider::valueChanged, this, &TraceViewWidget::viewOptionsChanged);
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  show_layers(layers_slider_->value());
  showFigure();
}

void BigBirdView::setContext(const ViewContext& context) {
  context_ = context;
  showFigure();
}

void BigBirdView::showFigure() {
  if (!bigbird_extras(context_)) {
    canvas_->clearFigure(context_.result ? tr("This view needs the bigbird variant.")
                                         : tr("Run the bigbird variant to see its blocks."));
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = bigbird_figure_size(context_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_bigbird_figure(painter, target, context_, style, BigBirdFigureOptions{receptiveLayers()});
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_bigbird_layout(context_, style, target, device).token_at(pos, bigbird_extras(context_)->layout().block_size);
  };
  figure.tooltip = [this](int token) {
    const BigBirdExtras& extras = *bigbird_extras(context_);
    return tr("query #%1 “%2”: block %3, sees %4 keys")
        .arg(token)
        .arg(QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text))
        .arg(extras.layout().block_of(token))
        .arg(extras.key_count(context_.head, token));
  };
  canvas_->setFigure(std::move(figure));
}

void BigBirdView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

int BigBirdView::receptiveLayers() const { return layers_slider_->value(); }

void BigBirdView::setReceptiveLayers(int layers) { layers_slider_->setValue(layers); }

nlohmann::json BigBirdView::viewOptions() const { return {{"layers", receptiveLayers()}}; }

void BigBirdView::setViewOptions(const nlohmann::json& options) {
  setReceptiveLayers(static_cast<int>(view_options(view_spec("blocks"), options).get_int("layers")));
}

FigureStyle BigBirdView::figureStyle() const { return canvas_->figureStyle(); }

BigBirdFigureLayout BigBirdView::figureLayout() const {
  if (!bigbird_extras(context_)) return {};
  return compute_bigbird_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface());
}

ViewSpec bigbird_view_spec() {
  ViewSpec v;
  v.name = "blocks";
  v.title = QStringLiteral("BigBird blocks");
  v.requirement = QStringLiteral("needs the bigbird variant");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_extras<BigBirdExtras>(r, "bigbird"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    const int layers = static_cast<int>(view_options(view_spec("blocks"), c.options).get_int("layers"));
    return bigbird_painted_figure(c, style, BigBirdFigureOptions{layers});
  };
  v.export_data = [](const ViewContext& c, const QString& path) { export_bigbird_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new BigBirdView(parent); };
  v.options = {ParamSpec::integer("layers", "Receptive field layers", BigBirdExtras::kMaxReceptiveLayers, 1,
                                  BigBirdExtras::kMaxReceptiveLayers,
                                  "Depth of the receptive field: the key blocks each query block can depend on after "
                                  "this many layers of the pattern (through any head)")};
  return v;
}

}  // namespace attnlab
