#include "recurrent_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>

#include "core/error.h"
#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {
namespace {

// Beyond any traced result (a trace holds [H, L, L] weights); a round bound reads well in the
// option's range ("window: an integer in [0, 999999]").
constexpr std::int64_t kMaxWindowOption = 999'999;

int window_option(const nlohmann::json& options) {
  return static_cast<int>(view_options(view_spec("recurrent"), options).get_int("window"));
}

}  // namespace

RecurrentView::RecurrentView(QWidget* parent) : TraceViewWidget(parent) {
  window_box_ = new QSpinBox;
  window_box_->setObjectName(QStringLiteral("recurrentWindow"));
  window_box_->setRange(0, 0);
  window_box_->setToolTip(tr("The window whose state ↔ token cross-attention is shown (outlined in the token attention)"));
  window_label_ = new QLabel;
  recurrent_box_ = new QCheckBox(tr("Recurrent state"));
  recurrent_box_->setObjectName(QStringLiteral("recurrentState"));
  recurrent_box_->setToolTip(tr("Changes the model: make the drawn layer carry a recurrent state (or a plain sliding-window "
                                "layer) and run again"));
  gate_box_ = new QComboBox;
  gate_box_->setObjectName(QStringLiteral("recurrentGate"));
  gate_box_->addItems({QStringLiteral("lstm"), QStringLiteral("fixed"), QStringLiteral("full")});
  gate_box_->setToolTip(tr("Changes the model: how the new state mixes the old one with the update (lstm: forget and input "
                           "gates; fixed: σ(gate_bias); full: one learned gate) — runs again"));
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("recurrentCanvas"));

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Window")));
  controls->addWidget(window_box_);
  controls->addWidget(window_label_);
  controls->addSpacing(24);
  controls->addWidget(recurrent_box_);
  controls->addWidget(new QLabel(tr("Gate")));
  controls->addWidget(gate_box_);
  controls->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(canvas_, 1);

  connect(window_box_, &QSpinBox::valueChanged, this, [this](int value) { setWindow(value); });
  // clicked/activated: only the user's changes ask for a new run, never syncControls().
  connect(recurrent_box_, &QCheckBox::clicked, this, [this](bool on) {
    const int layer = drawnLayer();
    if (layer >= 0) emit layerParamsEdited(layer, nlohmann::json{{"recurrent", on}});
  });
  connect(gate_box_, &QComboBox::activated, this, [this](int index) {
    const int layer = drawnLayer();
    const BlockRecurrentTrace* trace = block_recurrent_trace(context_);
    const std::string gate = gate_box_->itemText(index).toStdString();
    if (layer >= 0 && trace && gate != trace->gate) emit layerParamsEdited(layer, nlohmann::json{{"gate", gate}});
  });
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  syncControls();
  showFigure();
}

int RecurrentView::drawnLayer() const { return model_view_layer(context_, "block_recurrent"); }

std::int64_t RecurrentView::resolvedWindow() const {
  const BlockRecurrentTrace* trace = block_recurrent_trace(context_);
  return trace ? resolve_recurrent_window(*trace, window_) : 0;
}

void RecurrentView::setWindow(int window) {
  window = std::max(0, window);
  if (window == window_) return;
  window_ = window;
  syncControls();
  showFigure();  // the panels' sizes follow the window (the last one may be short)
  emit viewOptionsChanged();
}

void RecurrentView::syncControls() {
  const BlockRecurrentTrace* trace = block_recurrent_trace(context_);
  const QSignalBlocker block(window_box_);
  window_box_->setRange(0, trace ? static_cast<int>(std::max<std::int64_t>(0, trace->windows - 1)) : 0);
  window_box_->setValue(static_cast<int>(resolvedWindow()));
  window_box_->setEnabled(trace != nullptr);
  recurrent_box_->setEnabled(trace != nullptr);
  recurrent_box_->setChecked(trace && trace->recurrent);
  gate_box_->setEnabled(trace && trace->recurrent);
  if (trace) gate_box_->setCurrentText(QString::fromStdString(trace->gate));
  if (!trace) {
    window_label_->clear();
    return;
  }
  const std::int64_t w = resolvedWindow();
  const std::int64_t first = std::min(context_.result->length(), w * trace->window);
  const std::int64_t last = std::min(context_.result->length(), (w + 1) * trace->window) - 1;
  window_label_->setText(tr("of %1 · tokens %2–%3 · layer %4").arg(trace->windows).arg(first).arg(last).arg(drawnLayer()));
}

void RecurrentView::setContext(const ViewContext& context) {
  context_ = context;
  syncControls();
  showFigure();
}

void RecurrentView::showFigure() {
  if (!context_.result || !view_spec("recurrent").accepts(*context_.result) || !block_recurrent_trace(context_)) {
    canvas_->clearFigure(context_.result ? tr("This view needs a model with block-recurrent layers, e.g. the block-recurrent preset.")
                                         : tr("Run a model with block-recurrent layers (the block-recurrent preset) to see its state."));
    return;
  }
  const RecurrentFigureOptions options{window_};
  FigureCanvas::Figure figure;
  try {
    figure.size = recurrent_figure_size(context_, canvas_->figureStyle(), options);
  } catch (const Error& e) {
    canvas_->clearFigure(QString::fromUtf8(e.what()));
    return;
  }
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_recurrent_figure(painter, target, context_, style, RecurrentFigureOptions{window_});
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_recurrent_layout(context_, style, target, device, RecurrentFigureOptions{window_}).token_at(pos);
  };
  figure.tooltip = [this](int token) {
    const BlockRecurrentTrace* trace = block_recurrent_trace(context_);
    return tr("token #%1 “%2” · window %3")
        .arg(token)
        .arg(QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text))
        .arg(trace ? token / trace->window : 0);
  };
  canvas_->setFigure(std::move(figure));
}

void RecurrentView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

nlohmann::json RecurrentView::viewOptions() const { return {{"window", window_}}; }

void RecurrentView::setViewOptions(const nlohmann::json& options) { setWindow(window_option(options)); }

FigureStyle RecurrentView::figureStyle() const { return canvas_->figureStyle(); }

RecurrentFigureLayout RecurrentView::figureLayout() const {
  if (!canvas_->hasFigure()) return {};
  return compute_recurrent_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface(), RecurrentFigureOptions{window_});
}

ViewSpec recurrent_view_spec() {
  ViewSpec v;
  v.name = "recurrent";
  v.title = QStringLiteral("Block-recurrent state");
  v.requirement = QStringLiteral("needs a model with block-recurrent layers, e.g. the block-recurrent preset");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_layer_extra(r, "block_recurrent"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    return recurrent_painted_figure(c, style, RecurrentFigureOptions{window_option(c.options)});
  };
  v.export_data = [](const ViewContext& c, const QString& path) { export_recurrent_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new RecurrentView(parent); };
  v.options = {ParamSpec::integer("window", "Window", 0, 0, kMaxWindowOption,
                                  "The window whose state ↔ token cross-attention is shown: 0 .. n_w − 1, n_w = ⌈L / W⌉ "
                                  "windows of W tokens (W = 128 in the block-recurrent preset: 4 windows at 512 tokens); "
                                  "values past the last show the last")};
  return v;
}

}  // namespace attnlab
