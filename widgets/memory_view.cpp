#include "memory_view.h"

#include <QHBoxLayout>
#include <QSignalBlocker>
#include <QVBoxLayout>
#include <cmath>

#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {
namespace {

const ParamSpec& memory_spec(const std::string& key) {
  for (const ParamSpec& spec : InfinityMemoryLayer::schema())
    if (spec.key == key) return spec;
  throw ParamError("∞-former has no parameter '" + key + "'");
}

MemoryFigureOptions figure_options(const nlohmann::json& options) {
  const Params p = view_options(view_spec("memory"), options);
  return MemoryFigureOptions{static_cast<int>(p.get_int("segment")), static_cast<int>(p.get_int("channels"))};
}

constexpr int kMaxSegmentOption = 65535;

}  // namespace

MemoryView::MemoryView(QWidget* parent) : TraceViewWidget(parent) {
  tau_box_ = new QDoubleSpinBox;
  tau_box_->setObjectName(QStringLiteral("memoryTau"));
  tau_box_->setRange(memory_spec("tau").min, memory_spec("tau").max);
  tau_box_->setDecimals(2);
  tau_box_->setSingleStep(0.05);
  tau_box_->setKeyboardTracking(false);
  tau_box_->setToolTip(QString::fromStdString(memory_spec("tau").help) + tr(". Changing it reruns the model."));
  sticky_box_ = new QCheckBox(tr("Sticky memories"));
  sticky_box_->setObjectName(QStringLiteral("memorySticky"));
  sticky_box_->setToolTip(QString::fromStdString(memory_spec("sticky").help) + tr(". Changing it reruns the model."));
  segment_box_ = new QSpinBox;
  segment_box_->setObjectName(QStringLiteral("memorySegment"));
  segment_box_->setRange(-1, kMaxSegmentOption);
  segment_box_->setValue(-1);
  segment_box_->setSpecialValueText(tr("last"));
  segment_box_->setToolTip(tr("The segment whose memory read is drawn (segment 0 has no memory to read)"));
  channels_box_ = new QSpinBox;
  channels_box_->setObjectName(QStringLiteral("memoryChannels"));
  channels_box_->setRange(1, kMemoryMaxChannels);
  channels_box_->setValue(3);
  channels_box_->setToolTip(tr("Memory channels drawn in the signal plot"));
  layer_label_ = new QLabel;
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("memoryCanvas"));

  auto* controls = new QHBoxLayout;
  auto* tau_label = new QLabel(tr("Old-memory share τ"));
  tau_label->setBuddy(tau_box_);
  controls->addWidget(tau_label);
  controls->addWidget(tau_box_);
  controls->addSpacing(12);
  controls->addWidget(sticky_box_);
  controls->addSpacing(12);
  controls->addWidget(layer_label_);
  controls->addStretch(1);
  auto* segment_label = new QLabel(tr("Segment"));
  segment_label->setBuddy(segment_box_);
  controls->addWidget(segment_label);
  controls->addWidget(segment_box_);
  auto* channels_label = new QLabel(tr("Channels"));
  channels_label->setBuddy(channels_box_);
  controls->addWidget(channels_label);
  controls->addWidget(channels_box_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(canvas_, 1);

  connect(tau_box_, &QDoubleSpinBox::valueChanged, this, [this](double tau) {
    const int layer = memory_layer(context_);
    if (layer >= 0) emit layerParamsEdited(layer, nlohmann::json{{"tau", std::round(tau * 100.0) / 100.0}});
  });
  connect(sticky_box_, &QCheckBox::toggled, this, [this](bool sticky) {
    const int layer = memory_layer(context_);
    if (layer >= 0) emit layerParamsEdited(layer, nlohmann::json{{"sticky", sticky}});
  });
  for (QSpinBox* box : {segment_box_, channels_box_}) {
    connect(box, &QSpinBox::valueChanged, this, [this] { showFigure(); });
    connect(box, &QSpinBox::valueChanged, this, &TraceViewWidget::viewOptionsChanged);
  }
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  syncControls();
  showFigure();
}

void MemoryView::setContext(const ViewContext& context) {
  context_ = context;
  syncControls();
  showFigure();
}

void MemoryView::syncControls() {
  const MemoryTrace* trace = memory_trace(context_);
  tau_box_->setEnabled(trace != nullptr);
  sticky_box_->setEnabled(trace != nullptr);
  if (!trace) {
    layer_label_->clear();
    return;
  }
  const QSignalBlocker b1(tau_box_), b2(sticky_box_);
  tau_box_->setValue(trace->tau);
  sticky_box_->setChecked(trace->sticky);
  layer_label_->setText(tr("(layer %1, %2 segments; changes rerun the model)").arg(memory_layer(context_)).arg(trace->segments));
}

void MemoryView::showFigure() {
  if (!memory_trace(context_)) {
    canvas_->clearFigure(context_.result
                             ? tr("This view needs a model with ∞-former layers, e.g. the infinity-former preset.")
                             : tr("Run a model with ∞-former layers (the infinity-former preset) to see its memory."));
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = memory_figure_size(context_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_memory_figure(painter, target, context_, style, figureOptions());
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_memory_layout(context_, style, target, device, figureOptions()).token_at(pos);
  };
  figure.tooltip = [this](int token) {
    const MemorySegmentTrace* read = memory_read(context_, figureOptions());
    const std::int64_t row = read ? token - read->start : -1;
    if (!read || row < 0 || row >= read->mu.size()) return QString();
    return tr("token #%1 “%2” reads the memory at μ = %3 with σ = %4 (mean over heads)")
        .arg(token)
        .arg(QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text))
        .arg(read->mu.data()[row], 0, 'g', 3)
        .arg(read->sigma.data()[row], 0, 'g', 3);
  };
  canvas_->setFigure(std::move(figure));
}

void MemoryView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

MemoryFigureOptions MemoryView::figureOptions() const { return MemoryFigureOptions{segment_box_->value(), channels_box_->value()}; }

nlohmann::json MemoryView::viewOptions() const {
  return {{"segment", segment_box_->value()}, {"channels", channels_box_->value()}};
}

void MemoryView::setViewOptions(const nlohmann::json& options) {
  const MemoryFigureOptions o = figure_options(options);
  const QSignalBlocker b1(segment_box_), b2(channels_box_);
  segment_box_->setValue(o.segment);
  channels_box_->setValue(o.channels);
  showFigure();
  emit viewOptionsChanged();
}

FigureStyle MemoryView::figureStyle() const { return canvas_->figureStyle(); }

MemoryFigureLayout MemoryView::figureLayout() const {
  if (!memory_trace(context_)) return {};
  return compute_memory_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface(), figureOptions());
}

ViewSpec memory_view_spec() {
  ViewSpec v;
  v.name = "memory";
  v.title = QStringLiteral("∞-former memory");
  v.requirement = QStringLiteral("needs a model with ∞-former layers, e.g. the infinity-former preset");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_layer_extra(r, "memory"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) { return memory_painted_figure(c, style, figure_options(c.options)); };
  v.export_data = [](const ViewContext& c, const QString& path) { export_memory_data(c, path, figure_options(c.options)); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new MemoryView(parent); };
  v.options = {ParamSpec::integer("segment", "Segment", -1, -1, kMaxSegmentOption,
                                  "The segment s whose memory read is drawn: 1 .. (number of segments − 1), segment 0 "
                                  "having nothing to read; −1 (default), 0 or a larger value: the last segment"),
               ParamSpec::integer("channels", "Channels", 3, 1, kMemoryMaxChannels,
                                  "Memory channels drawn in the signal plot (the trace keeps the first 8 of d_model)")};
  return v;
}

}  // namespace attnlab
