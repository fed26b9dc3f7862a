#include "halting_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "figure_canvas.h"
#include "figures/figure_kit.h"
#include "layers/act.h"

namespace attnlab {
namespace {

const ParamSpec& act_spec(const std::string& key) {
  for (const ParamSpec& spec : AdaptiveComputationTime::schema())
    if (spec.key == key) return spec;
  throw ParamError("ACT has no parameter '" + key + "'");
}

double epsilon_min() { return act_spec("epsilon").min; }
double epsilon_max() { return act_spec("epsilon").max; }

// ε as the threshold box shows it (1 − ε to 4 decimals), kept inside the schema's range.
double rounded_epsilon(double epsilon) { return std::clamp(std::round(epsilon * 1e4) / 1e4, epsilon_min(), epsilon_max()); }

}  // namespace

int HaltingView::sliderPosition(double epsilon) {
  const double span = std::log(epsilon_max() / epsilon_min());
  const double at = std::log(epsilon_max() / std::clamp(epsilon, epsilon_min(), epsilon_max())) / span;
  return static_cast<int>(std::lround(at * kSliderSteps));
}

double HaltingView::sliderEpsilon(int position) {
  const double at = std::clamp(position, 0, kSliderSteps) / static_cast<double>(kSliderSteps);
  return epsilon_max() * std::pow(epsilon_min() / epsilon_max(), at);
}

HaltingView::HaltingView(QWidget* parent) : TraceViewWidget(parent) {
  const QString threshold_help = tr("A token halts at the first step where its summed halting probability hp + p "
                                    "exceeds 1 − ε (ε = %1 … %2). Changing it reruns the model.")
                                     .arg(epsilon_min())
                                     .arg(epsilon_max());
  threshold_box_ = new QDoubleSpinBox;
  threshold_box_->setObjectName(QStringLiteral("haltingThreshold"));
  threshold_box_->setDecimals(4);
  threshold_box_->setRange(1.0 - epsilon_max(), 1.0 - epsilon_min());
  threshold_box_->setSingleStep(0.005);
  threshold_box_->setKeyboardTracking(false);
  threshold_box_->setToolTip(threshold_help);
  epsilon_slider_ = new QSlider(Qt::Horizontal);
  epsilon_slider_->setObjectName(QStringLiteral("haltingEpsilonSlider"));
  epsilon_slider_->setRange(0, kSliderSteps);
  epsilon_slider_->setTracking(false);  // one rerun when the slider is released, not one per pixel
  epsilon_slider_->setMinimumWidth(160);
  epsilon_slider_->setToolTip(threshold_help);
  max_steps_box_ = new QSpinBox;
  max_steps_box_->setObjectName(QStringLiteral("haltingMaxSteps"));
  max_steps_box_->setRange(static_cast<int>(act_spec("max_steps").min), static_cast<int>(act_spec("max_steps").max));
  max_steps_box_->setKeyboardTracking(false);
  max_steps_box_->setToolTip(tr("Steps after which every token stops, halted or not. Changing it reruns the model."));
  auto* rerun_label = new QLabel(tr("(changes rerun the model)"));
  rerun_label->setEnabled(false);  // greyed: a note, not a control
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("haltingCanvas"));

  auto* controls = new QHBoxLayout;
  auto* threshold_label = new QLabel(tr("Halting threshold 1 − ε"));
  threshold_label->setBuddy(threshold_box_);
  controls->addWidget(threshold_label);
  controls->addWidget(epsilon_slider_);
  controls->addWidget(threshold_box_);
  controls->addSpacing(16);
  auto* steps_label = new QLabel(tr("Max steps"));
  steps_label->setBuddy(max_steps_box_);
  controls->addWidget(steps_label);
  controls->addWidget(max_steps_box_);
  controls->addSpacing(16);
  controls->addWidget(rerun_label);
  controls->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(canvas_, 1);

  connect(threshold_box_, &QDoubleSpinBox::valueChanged, this, [this](double threshold) {
    const double epsilon = rounded_epsilon(1.0 - threshold);
    const QSignalBlocker block(epsilon_slider_);
    epsilon_slider_->setValue(sliderPosition(epsilon));
    emitEpsilon(epsilon);
  });
  // While dragging, the box previews the threshold; the model reruns on release.
  connect(epsilon_slider_, &QSlider::sliderMoved, this, [this](int position) {
    const QSignalBlocker block(threshold_box_);
    threshold_box_->setValue(1.0 - rounded_epsilon(sliderEpsilon(position)));
  });
  connect(epsilon_slider_, &QSlider::valueChanged, this, [this](int position) {
    const double epsilon = rounded_epsilon(sliderEpsilon(position));
    const QSignalBlocker block(threshold_box_);
    threshold_box_->setValue(1.0 - epsilon);
    emitEpsilon(epsilon);
  });
  connect(max_steps_box_, &QSpinBox::valueChanged, this, [this](int steps) {
    const int layer = halting_layer(context_);
    if (layer >= 0) emit layerParamsEdited(layer, nlohmann::json{{"max_steps", steps}});
  });
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  syncControls();
  showFigure();
}

void HaltingView::emitEpsilon(double epsilon) {
  const int layer = halting_layer(context_);
  if (layer >= 0) emit layerParamsEdited(layer, nlohmann::json{{"epsilon", epsilon}});
}

void HaltingView::setContext(const ViewContext& context) {
  context_ = context;
  syncControls();
  showFigure();
}

void HaltingView::syncControls() {
  const HaltingTrace* trace = halting_trace(context_);
  for (QWidget* w : std::initializer_list<QWidget*>{threshold_box_, epsilon_slider_, max_steps_box_})
    w->setEnabled(trace != nullptr);
  if (!trace) return;
  const QSignalBlocker b1(threshold_box_), b2(epsilon_slider_), b3(max_steps_box_);
  threshold_box_->setValue(1.0 - trace->epsilon);
  epsilon_slider_->setValue(sliderPosition(trace->epsilon));
  max_steps_box_->setValue(static_cast<int>(trace->max_steps));
}

void HaltingView::showFigure() {
  if (!halting_trace(context_)) {
    canvas_->clearFigure(context_.result
                             ? tr("This view needs a model with universal (ACT) layers, e.g. the universal-act preset.")
                             : tr("Run a model with universal (ACT) layers (the universal-act preset) to see its halting map."));
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = halting_figure_size(context_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_halting_figure(painter, target, context_, style);
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_halting_layout(context_, style, target, device).token_at(pos);
  };
  figure.tooltip = [this](int token) {
    const HaltingTrace* h = halting_trace(context_);
    const auto u = static_cast<std::size_t>(token);
    if (!h || u >= h->steps.size()) return QString();
    const QString text = QString::fromStdString(context_.result->tokens[u].text);
    if (h->stopped_by_max[u])
      return tr("token #%1 “%2”: stopped by max_steps after %3 steps, hp = %4")
          .arg(token)
          .arg(text)
          .arg(h->steps[u])
          .arg(h->weights_sum[u], 0, 'g', 4);
    return tr("token #%1 “%2”: halted after %3 steps, remainder R = %4")
        .arg(token)
        .arg(text)
        .arg(h->steps[u])
        .arg(h->remainder[u], 0, 'g', 4);
  };
  canvas_->setFigure(std::move(figure));
}

void HaltingView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

nlohmann::json HaltingView::viewOptions() const { return nlohmann::json::object(); }

void HaltingView::setViewOptions(const nlohmann::json& options) { view_options(view_spec("halting"), options); }

FigureStyle HaltingView::figureStyle() const { return canvas_->figureStyle(); }

HaltingFigureLayout HaltingView::figureLayout() const {
  if (!halting_trace(context_)) return {};
  return compute_halting_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface());
}

ViewSpec halting_view_spec() {
  ViewSpec v;
  v.name = "halting";
  v.title = QStringLiteral("Halting map");
  v.requirement = QStringLiteral("needs a model with universal (ACT) layers, e.g. the universal-act preset");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_layer_extra(r, "halting"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) { return halting_painted_figure(c, style); };
  v.export_data = [](const ViewContext& c, const QString& path) { export_halting_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new HaltingView(parent); };
  return v;
}

}  // namespace attnlab
