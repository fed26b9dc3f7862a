#include "mega_view.h"

#include <QHBoxLayout>
#include <QSignalBlocker>
#include <QVBoxLayout>

#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {
namespace {

const ParamSpec& mega_spec(const std::string& key) {
  for (const ParamSpec& spec : MegaLayer::schema())
    if (spec.key == key) return spec;
  throw ParamError("Mega has no parameter '" + key + "'");
}

MegaFigureOptions figure_options(const nlohmann::json& options) {
  return MegaFigureOptions{kernel_scale_from(view_options(view_spec("mega"), options).get_choice("kernel_scale"))};
}

}  // namespace

MegaView::MegaView(QWidget* parent) : TraceViewWidget(parent) {
  chunk_box_ = new QSpinBox;
  chunk_box_->setObjectName(QStringLiteral("megaChunk"));
  chunk_box_->setRange(static_cast<int>(mega_spec("chunk").min), static_cast<int>(mega_spec("chunk").max));
  chunk_box_->setSpecialValueText(tr("whole sequence"));
  chunk_box_->setKeyboardTracking(false);
  chunk_box_->setToolTip(tr("Attention runs only within chunks of this many tokens (0: the whole sequence); the EMA "
                            "still carries information across chunks. Changing it reruns the model."));
  attention_box_ = new QComboBox;
  attention_box_->setObjectName(QStringLiteral("megaAttention"));
  for (const std::string& name : mega_spec("attention").choices) attention_box_->addItem(QString::fromStdString(name));
  attention_box_->setToolTip(tr("softmax(QKᵀ/√z), or laplace / relu² of QKᵀ divided by the number of visible keys. "
                                "Changing it reruns the model."));
  scale_box_ = new QComboBox;
  scale_box_->setObjectName(QStringLiteral("megaKernelScale"));
  scale_box_->addItem(tr("each channel to its own max"), QStringLiteral("per_channel"));
  scale_box_->addItem(tr("one scale for all channels"), QStringLiteral("shared"));
  scale_box_->setToolTip(tr("Colour scale of the kernel map (display only)"));
  layer_label_ = new QLabel;
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("megaCanvas"));

  auto* controls = new QHBoxLayout;
  auto* chunk_label = new QLabel(tr("Chunk"));
  chunk_label->setBuddy(chunk_box_);
  controls->addWidget(chunk_label);
  controls->addWidget(chunk_box_);
  controls->addSpacing(12);
  auto* attention_label = new QLabel(tr("Attention"));
  attention_label->setBuddy(attention_box_);
  controls->addWidget(attention_label);
  controls->addWidget(attention_box_);
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

  connect(chunk_box_, &QSpinBox::valueChanged, this, [this](int chunk) {
    const int layer = mega_layer(context_);
    if (layer >= 0) emit layerParamsEdited(layer, nlohmann::json{{"chunk", chunk}});
  });
  connect(attention_box_, &QComboBox::currentTextChanged, this, [this](const QString& name) {
    const int layer = mega_layer(context_);
    if (layer >= 0) emit layerParamsEdited(layer, nlohmann::json{{"attention", name.toStdString()}});
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

void MegaView::setContext(const ViewContext& context) {
  context_ = context;
  syncControls();
  showFigure();
}

void MegaView::syncControls() {
  const MegaTrace* trace = mega_trace(context_);
  chunk_box_->setEnabled(trace != nullptr);
  attention_box_->setEnabled(trace != nullptr);
  if (!trace) {
    layer_label_->clear();
    return;
  }
  const QSignalBlocker b1(chunk_box_), b2(attention_box_);
  const std::int64_t tokens = trace->gate_u.size();
  chunk_box_->setValue(trace->chunk >= tokens ? 0 : static_cast<int>(trace->chunk));
  attention_box_->setCurrentText(QString::fromStdString(trace->attention));
  layer_label_->setText(tr("(layer %1; changes rerun the model)").arg(mega_layer(context_)));
}

void MegaView::showFigure() {
  if (!mega_trace(context_)) {
    canvas_->clearFigure(context_.result ? tr("This view needs a model with Mega layers, e.g. the mega preset.")
                                         : tr("Run a model with Mega layers (the mega preset) to see its EMA kernels and gates."));
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = mega_figure_size(context_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_mega_figure(painter, target, context_, style, figureOptions());
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_mega_layout(context_, style, target, device).token_at(pos);
  };
  figure.tooltip = [this](int token) {
    const MegaTrace* m = mega_trace(context_);
    if (!m || token < 0 || token >= m->gate_u.size()) return QString();
    return tr("token #%1 “%2”: u = %3, r = %4, chunk %5")
        .arg(token)
        .arg(QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text))
        .arg(m->gate_u.data()[token], 0, 'g', 4)
        .arg(m->gate_r.data()[token], 0, 'g', 4)
        .arg(token / std::max<std::int64_t>(1, m->chunk));
  };
  canvas_->setFigure(std::move(figure));
}

void MegaView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

MegaFigureOptions MegaView::figureOptions() const {
  return MegaFigureOptions{kernel_scale_from(scale_box_->currentData().toString().toStdString())};
}

nlohmann::json MegaView::viewOptions() const { return {{"kernel_scale", scale_box_->currentData().toString().toStdString()}}; }

void MegaView::setViewOptions(const nlohmann::json& options) {
  const MegaFigureOptions o = figure_options(options);
  scale_box_->setCurrentIndex(o.kernel_scale == KernelScale::Shared ? 1 : 0);
}

FigureStyle MegaView::figureStyle() const { return canvas_->figureStyle(); }

MegaFigureLayout MegaView::figureLayout() const {
  if (!mega_trace(context_)) return {};
  return compute_mega_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface());
}

ViewSpec mega_view_spec() {
  ViewSpec v;
  v.name = "mega";
  v.title = QStringLiteral("Mega EMA and gates");
  v.requirement = QStringLiteral("needs a model with Mega layers, e.g. the mega preset");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_layer_extra(r, "mega"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) { return mega_painted_figure(c, style, figure_options(c.options)); };
  v.export_data = [](const ViewContext& c, const QString& path) { export_mega_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new MegaView(parent); };
  v.options = {ParamSpec::choice("kernel_scale", "Kernel colour scale", "per_channel", {"per_channel", "shared"},
                                 "per_channel: each row of the kernel map divided by its own largest |k| (every channel's "
                                 "decay shows); shared: all rows by the largest |k| of the layer (channels compare)")};
  return v;
}

}  // namespace attnlab
