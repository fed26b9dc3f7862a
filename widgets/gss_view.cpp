#include "gss_view.h"

#include <QHBoxLayout>
#include <QSignalBlocker>
#include <QVBoxLayout>

#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {
namespace {

const ParamSpec& gss_spec(const std::string& key) {
  for (const ParamSpec& spec : GssLayer::schema())
    if (spec.key == key) return spec;
  throw ParamError("GSS has no parameter '" + key + "'");
}

GssFigureOptions figure_options(const nlohmann::json& options) {
  return GssFigureOptions{kernel_scale_from(view_options(view_spec("gss"), options).get_choice("kernel_scale"))};
}

}  // namespace

GssView::GssView(QWidget* parent) : TraceViewWidget(parent) {
  kernel_box_ = new QComboBox;
  kernel_box_->setObjectName(QStringLiteral("gssKernel"));
  for (const std::string& name : gss_spec("kernel").choices) kernel_box_->addItem(QString::fromStdString(name));
  kernel_box_->setToolTip(QString::fromStdString(gss_spec("kernel").help) + tr(". Changing it reruns the model."));
  states_box_ = new QSpinBox;
  states_box_->setObjectName(QStringLiteral("gssStates"));
  states_box_->setRange(static_cast<int>(gss_spec("state_dim").min), static_cast<int>(gss_spec("state_dim").max));
  states_box_->setKeyboardTracking(false);
  states_box_->setToolTip(tr("N: complex states (eigenvalues Λ) of the diagonal state space. Changing it reruns the model "
                             "with new seeded weights for this layer's state space."));
  scale_box_ = new QComboBox;
  scale_box_->setObjectName(QStringLiteral("gssKernelScale"));
  scale_box_->addItem(tr("each channel to its own max"), QStringLiteral("per_channel"));
  scale_box_->addItem(tr("one scale for all channels"), QStringLiteral("shared"));
  scale_box_->setToolTip(tr("Colour scale of the kernel map (display only)"));
  layer_label_ = new QLabel;
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("gssCanvas"));

  auto* controls = new QHBoxLayout;
  auto* kernel_label = new QLabel(tr("DSS kernel"));
  kernel_label->setBuddy(kernel_box_);
  controls->addWidget(kernel_label);
  controls->addWidget(kernel_box_);
  controls->addSpacing(12);
  auto* states_label = new QLabel(tr("States N"));
  states_label->setBuddy(states_box_);
  controls->addWidget(states_label);
  controls->addWidget(states_box_);
  controls->addSpacing(12);
  controls->addWidget(layer_label_);
  controls->addStretch(1);
  auto* scale_label = new QLabel(tr("Kernel colours"));
  scale_label->setBuddy(scale_box_);
  controls->addWidget(scale_label);
  controls->addWidget(scale_box_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(canvas_, 1);

  connect(kernel_box_, &QComboBox::currentTextChanged, this, [this](const QString& name) {
    const int layer = gss_layer(context_);
    if (layer >= 0) emit layerParamsEdited(layer, nlohmann::json{{"kernel", name.toStdString()}});
  });
  connect(states_box_, &QSpinBox::valueChanged, this, [this](int states) {
    const int layer = gss_layer(context_);
    if (layer >= 0) emit layerParamsEdited(layer, nlohmann::json{{"state_dim", states}});
  });
  connect(scale_box_, &QComboBox::currentIndexChanged, canvas_, &FigureCanvas::refresh);
  connect(scale_box_, &QComboBox::currentIndexChanged, this, &TraceViewWidget::viewOptionsChanged);
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  syncControls();
  showFigure();
}

void GssView::setContext(const ViewContext& context) {
  context_ = context;
  syncControls();
  showFigure();
}

void GssView::syncControls() {
  const GssTrace* trace = gss_trace(context_);
  kernel_box_->setEnabled(trace != nullptr);
  states_box_->setEnabled(trace != nullptr);
  if (!trace) {
    layer_label_->clear();
    return;
  }
  const QSignalBlocker b1(kernel_box_), b2(states_box_);
  kernel_box_->setCurrentText(QString::fromStdString(trace->kernel_kind));
  states_box_->setValue(static_cast<int>(trace->lambda_re.size()));
  layer_label_->setText(tr("(layer %1; changes rerun the model)").arg(gss_layer(context_)));
}

void GssView::showFigure() {
  if (!gss_trace(context_)) {
    canvas_->clearFigure(context_.result ? tr("This view needs a model with GSS layers, e.g. the gss preset.")
                                         : tr("Run a model with GSS layers (the gss preset) to see its state-space kernels."));
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = gss_figure_size(context_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_gss_figure(painter, target, context_, style, figureOptions());
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_gss_layout(context_, style, target, device).token_at(pos);
  };
  figure.tooltip = [this](int token) {
    const GssTrace* g = gss_trace(context_);
    if (!g || token < 0 || token >= g->gate.size()) return QString();
    return tr("token #%1 “%2”: gate mean |u| = %3")
        .arg(token)
        .arg(QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text))
        .arg(g->gate.data()[token], 0, 'g', 4);
  };
  canvas_->setFigure(std::move(figure));
}

void GssView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

GssFigureOptions GssView::figureOptions() const {
  return GssFigureOptions{kernel_scale_from(scale_box_->currentData().toString().toStdString())};
}

nlohmann::json GssView::viewOptions() const { return {{"kernel_scale", scale_box_->currentData().toString().toStdString()}}; }

void GssView::setViewOptions(const nlohmann::json& options) {
  scale_box_->setCurrentIndex(figure_options(options).kernel_scale == KernelScale::Shared ? 1 : 0);
}

FigureStyle GssView::figureStyle() const { return canvas_->figureStyle(); }

GssFigureLayout GssView::figureLayout() const {
  if (!gss_trace(context_)) return {};
  return compute_gss_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface());
}

ViewSpec gss_view_spec() {
  ViewSpec v;
  v.name = "gss";
  v.title = QStringLiteral("Gated state space");
  v.requirement = QStringLiteral("needs a model with GSS layers, e.g. the gss preset");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_layer_extra(r, "gss"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) { return gss_painted_figure(c, style, figure_options(c.options)); };
  v.export_data = [](const ViewContext& c, const QString& path) { export_gss_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new GssView(parent); };
  v.options = {ParamSpec::choice("kernel_scale", "Kernel colour scale", "per_channel", {"per_channel", "shared"},
                                 "per_channel: each row of the kernel map divided by its own largest |K| (every channel's "
                                 "shape shows); shared: all rows by the largest |K| of the layer (channels compare)")};
  return v;
}

}  // namespace attnlab
