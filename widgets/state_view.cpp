#include "state_view.h"

#include <QHBoxLayout>
#include <QSignalBlocker>
#include <QVBoxLayout>
#include <algorithm>

#include "core/error.h"
#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {
namespace {

// A whole sequence plays in about this long, each step shown at least kMinStepMs (a frame the
// eye follows) and at most kMaxStepMs.
constexpr int kPlayMs = 6000;
constexpr int kMinStepMs = 40;
constexpr int kMaxStepMs = 300;

}  // namespace

StateView::StateView(QWidget* parent) : TraceViewWidget(parent) {
  slider_ = new QSlider(Qt::Horizontal);
  slider_->setObjectName(QStringLiteral("stateStep"));
  slider_->setRange(0, 0);
  slider_->setPageStep(1);
  slider_->setToolTip(tr("The snapshot shown: the state after this token"));
  step_label_ = new QLabel;
  step_label_->setMinimumWidth(step_label_->fontMetrics().horizontalAdvance(QStringLiteral("step 0000 of 0000")));
  play_button_ = new QPushButton(tr("Play"));
  play_button_->setObjectName(QStringLiteral("statePlay"));
  play_button_->setCheckable(true);
  play_button_->setToolTip(tr("Walk through the steps as the tokens arrive"));
  timer_ = new QTimer(this);
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("stateCanvas"));

  auto* controls = new QHBoxLayout;
  controls->addWidget(play_button_);
  controls->addWidget(new QLabel(tr("Step")));
  controls->addWidget(slider_, 1);
  controls->addWidget(step_label_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(canvas_, 1);

  connect(slider_, &QSlider::valueChanged, this, [this](int value) {
    // The last position stands for "last", so a session keeps showing the end of a longer text.
    setStep(value >= slider_->maximum() ? -1 : value);
  });
  connect(play_button_, &QPushButton::toggled, this, &StateView::setPlaying);
  connect(timer_, &QTimer::timeout, this, &StateView::advance);
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  showFigure();
}

int StateView::resolvedStep() const {
  const RecurrentTraceExtras* extras = recurrent_extras(context_);
  return extras ? resolve_state_step(extras->recurrent(), step_) : 0;
}

void StateView::setStep(int step) {
  step = std::max(-1, step);
  if (step == step_) return;
  step_ = step;
  syncSlider();
  canvas_->refresh();
  emit viewOptionsChanged();
}

void StateView::syncSlider() {
  const RecurrentTraceExtras* extras = recurrent_extras(context_);
  const int T = extras ? static_cast<int>(extras->recurrent().steps.size()) : 1;
  const QSignalBlocker block(slider_);
  slider_->setRange(0, std::max(0, T - 1));
  slider_->setValue(resolvedStep());
  step_label_->setText(tr("step %1 of %2").arg(resolvedStep()).arg(std::max(0, T - 1)));
}

void StateView::setPlaying(bool playing) {
  if (playing == timer_->isActive()) return;
  if (playing) {
    const RecurrentTraceExtras* extras = recurrent_extras(context_);
    if (!extras) {
      play_button_->setChecked(false);
      return;
    }
    const int T = static_cast<int>(extras->recurrent().steps.size());
    if (resolvedStep() >= T - 1) setStep(0);  // from the start again
    timer_->start(std::clamp(kPlayMs / std::max(1, T), kMinStepMs, kMaxStepMs));
  } else {
    timer_->stop();
  }
  const QSignalBlocker block(play_button_);
  play_button_->setChecked(playing);
  play_button_->setText(playing ? tr("Pause") : tr("Play"));
}

void StateView::advance() {
  const RecurrentTraceExtras* extras = recurrent_extras(context_);
  const int T = extras ? static_cast<int>(extras->recurrent().steps.size()) : 0;
  const int next = resolvedStep() + 1;
  if (!extras || next >= T - 1) {
    setStep(-1);
    setPlaying(false);
    return;
  }
  setStep(next);
}

void StateView::setContext(const ViewContext& context) {
  context_ = context;
  syncSlider();
  showFigure();
}

void StateView::showFigure() {
  if (!context_.result || !result_has_recurrent_state(*context_.result) || !recurrent_extras(context_)) {
    setPlaying(false);
    canvas_->clearFigure(context_.result ? tr("This view needs a variant with a recurrent form (linear, performer causal, "
                                              "delta, t2r).")
                                         : tr("Run a recurrent variant (linear, performer, delta, t2r) to see its state."));
    return;
  }
  FigureCanvas::Figure figure;
  try {
    figure.size = state_figure_size(context_, canvas_->figureStyle());
  } catch (const Error& e) {
    canvas_->clearFigure(QString::fromUtf8(e.what()));
    return;
  }
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_state_figure(painter, target, context_, style, StateFigureOptions{step_});
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_state_layout(context_, style, target, device).token_at(pos);
  };
  figure.tooltip = [this](int token) {
    const RecurrentTraceExtras* extras = recurrent_extras(context_);
    const std::int64_t current = extras ? extras->recurrent().steps[static_cast<std::size_t>(resolvedStep())] : 0;
    return tr("token #%1 “%2”%3")
        .arg(token)
        .arg(QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text))
        .arg(token <= current ? tr(": in the state") : tr(": not yet absorbed"));
  };
  canvas_->setFigure(std::move(figure));
}

void StateView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

nlohmann::json StateView::viewOptions() const { return {{"step", step_}}; }

void StateView::setViewOptions(const nlohmann::json& options) {
  setStep(static_cast<int>(view_options(view_spec("state"), options).get_int("step")));
}

FigureStyle StateView::figureStyle() const { return canvas_->figureStyle(); }

StateFigureLayout StateView::figureLayout() const {
  if (!recurrent_extras(context_)) return {};
  return compute_state_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface());
}

ViewSpec state_view_spec() {
  ViewSpec v;
  v.name = "state";
  v.title = QStringLiteral("Streaming state");
  v.requirement = QStringLiteral("needs a variant with a recurrent form (linear, performer causal, delta, t2r)");
  v.data_extensions = {QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_recurrent_state(r); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    const int step = static_cast<int>(view_options(view_spec("state"), c.options).get_int("step"));
    return state_painted_figure(c, style, StateFigureOptions{step});
  };
  v.export_data = [](const ViewContext& c, const QString& path) { export_state_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new StateView(parent); };
  v.options = {ParamSpec::integer("step", "Step", -1, -1, RecurrentStates::kMaxSnapshots - 1,
                                  "Snapshot shown: 0 .. T-1, the state after token steps[t] (T = every token up to 512 "
                                  "tokens, else 512 evenly spaced, fewer for large performer states); -1 or a value past "
                                  "the last shows the last")};
  return v;
}

}  // namespace attnlab
