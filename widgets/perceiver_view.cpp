#include "perceiver_view.h"

#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <variant>

#include "core/error.h"
#include "figure_canvas.h"
#include "figures/figure_kit.h"
#include "models/layer_types.h"

namespace attnlab {
namespace {

int latent_layer_option(const nlohmann::json& options) {
  return static_cast<int>(view_options(view_spec("perceiver"), options).get_int("latent_layer"));
}

const ParamSpec& perceiver_param(const std::string& key) {
  for (const ParamSpec& spec : layer_type("perceiver_ar").params)
    if (spec.key == key) return spec;
  throw ParamError("perceiver_ar has no parameter '" + key + "'");
}

std::int64_t latent_layer_count(const PerceiverTrace& t) { return t.latent_weights.rank() == 4 ? t.latent_weights.dim(0) : 0; }

}  // namespace

PerceiverView::PerceiverView(QWidget* parent) : TraceViewWidget(parent) {
  latent_layer_box_ = new QSpinBox;
  latent_layer_box_->setObjectName(QStringLiteral("perceiverLatentLayer"));
  latent_layer_box_->setRange(0, 0);
  latent_layer_box_->setToolTip(tr("The latent layer whose causal self-attention over the latents is shown"));
  latent_layer_label_ = new QLabel;

  const ParamSpec& latents = perceiver_param("latents");
  latents_box_ = new QSpinBox;
  latents_box_->setObjectName(QStringLiteral("perceiverLatents"));
  latents_box_->setRange(static_cast<int>(latents.min), static_cast<int>(latents.max));
  latents_box_->setKeyboardTracking(false);  // one run per committed value, not per digit typed
  latents_box_->setToolTip(tr("Changes the model: the last N positions become latents (the rest is the prefix) — runs again"));
  const ParamSpec& dropout = perceiver_param("prefix_dropout");
  dropout_box_ = new QDoubleSpinBox;
  dropout_box_->setObjectName(QStringLiteral("perceiverPrefixDropout"));
  dropout_box_->setRange(dropout.min, dropout.max);
  dropout_box_->setSingleStep(0.1);
  dropout_box_->setDecimals(2);
  dropout_box_->setKeyboardTracking(false);
  dropout_box_->setToolTip(tr("Changes the model: the fraction of prefix keys hidden from the cross-attention — runs again"));
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("perceiverCanvas"));

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Latent layer")));
  controls->addWidget(latent_layer_box_);
  controls->addWidget(latent_layer_label_);
  controls->addSpacing(24);
  controls->addWidget(new QLabel(tr("Latents N")));
  controls->addWidget(latents_box_);
  controls->addWidget(new QLabel(tr("Prefix dropout")));
  controls->addWidget(dropout_box_);
  controls->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(canvas_, 1);

  connect(latent_layer_box_, &QSpinBox::valueChanged, this, [this](int value) { setLatentLayer(value); });
  // syncControls() blocks these signals: only the user's edits ask for a new run.
  connect(latents_box_, &QSpinBox::valueChanged, this, [this](int value) {
    const int layer = drawnLayer();
    if (layer >= 0 && value != static_cast<int>(layerParam("latents"))) emit layerParamsEdited(layer, nlohmann::json{{"latents", value}});
  });
  connect(dropout_box_, &QDoubleSpinBox::valueChanged, this, [this](double value) {
    const int layer = drawnLayer();
    if (layer >= 0 && std::abs(value - layerParam("prefix_dropout")) > 1e-9) {
      emit layerParamsEdited(layer, nlohmann::json{{"prefix_dropout", value}});
    }
  });
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  syncControls();
  showFigure();
}

int PerceiverView::drawnLayer() const { return model_view_layer(context_, "perceiver"); }

double PerceiverView::layerParam(const std::string& key) const {
  const int layer = drawnLayer();
  const ParamSpec& spec = perceiver_param(key);
  double value = spec.type == ParamType::Int ? static_cast<double>(std::get<std::int64_t>(spec.default_value))
                                             : std::get<double>(spec.default_value);
  if (layer < 0 || static_cast<std::size_t>(layer) >= context_.result->model.layers.size()) return value;
  const nlohmann::json& params = context_.result->model.layers[static_cast<std::size_t>(layer)].params;
  if (params.contains(key) && params.at(key).is_number()) value = params.at(key).get<double>();
  return value;
}

int PerceiverView::resolvedLatentLayer() const {
  const PerceiverTrace* trace = perceiver_trace(context_);
  return trace ? resolve_latent_layer(*trace, latent_layer_) : -1;
}

void PerceiverView::setLatentLayer(int latent_layer) {
  latent_layer = std::max(0, latent_layer);
  if (latent_layer == latent_layer_) return;
  latent_layer_ = latent_layer;
  syncControls();
  canvas_->refresh();
  emit viewOptionsChanged();
}

void PerceiverView::syncControls() {
  const PerceiverTrace* trace = perceiver_trace(context_);
  const QSignalBlocker block_layer(latent_layer_box_);
  const QSignalBlocker block_latents(latents_box_);
  const QSignalBlocker block_dropout(dropout_box_);
  const std::int64_t count = trace ? latent_layer_count(*trace) : 0;
  latent_layer_box_->setRange(0, static_cast<int>(std::max<std::int64_t>(0, count - 1)));
  latent_layer_box_->setValue(std::max(0, resolvedLatentLayer()));
  latent_layer_box_->setEnabled(count > 0);
  latents_box_->setEnabled(trace != nullptr);
  dropout_box_->setEnabled(trace != nullptr);
  if (!trace) {
    latent_layer_label_->clear();
    return;
  }
  latent_layer_label_->setText(count > 0 ? tr("of %1 · layer %2").arg(count).arg(drawnLayer()) : tr("none · layer %1").arg(drawnLayer()));
  latents_box_->setValue(static_cast<int>(layerParam("latents")));
  dropout_box_->setValue(layerParam("prefix_dropout"));
}

void PerceiverView::setContext(const ViewContext& context) {
  context_ = context;
  syncControls();
  showFigure();
}

void PerceiverView::showFigure() {
  if (!context_.result || !view_spec("perceiver").accepts(*context_.result) || !perceiver_trace(context_)) {
    canvas_->clearFigure(context_.result ? tr("This view needs a model with Perceiver AR layers, e.g. the perceiver-ar preset.")
                                         : tr("Run a model with Perceiver AR layers (the perceiver-ar preset) to see its latents."));
    return;
  }
  FigureCanvas::Figure figure;
  try {
    figure.size = perceiver_figure_size(context_, canvas_->figureStyle(), PerceiverFigureOptions{latent_layer_});
  } catch (const Error& e) {
    canvas_->clearFigure(QString::fromUtf8(e.what()));
    return;
  }
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_perceiver_figure(painter, target, context_, style, PerceiverFigureOptions{latent_layer_});
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_perceiver_layout(context_, style, target, device, PerceiverFigureOptions{latent_layer_}).token_at(pos);
  };
  figure.tooltip = [this](int token) {
    const PerceiverTrace* trace = perceiver_trace(context_);
    const std::int64_t prefix = trace ? trace->prefix_length : 0;
    return tr("token #%1 “%2” · %3")
        .arg(token)
        .arg(QString::fromStdString(context_.result->tokens[static_cast<std::size_t>(token)].text))
        .arg(token < prefix ? tr("prefix") : tr("latent %1").arg(token - prefix));
  };
  canvas_->setFigure(std::move(figure));
}

void PerceiverView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

nlohmann::json PerceiverView::viewOptions() const { return {{"latent_layer", latent_layer_}}; }

void PerceiverView::setViewOptions(const nlohmann::json& options) { setLatentLayer(latent_layer_option(options)); }

FigureStyle PerceiverView::figureStyle() const { return canvas_->figureStyle(); }

PerceiverFigureLayout PerceiverView::figureLayout() const {
  if (!canvas_->hasFigure()) return {};
  return compute_perceiver_layout(context_, figureStyle(), canvas_->figureRect(), canvas_->surface(),
                                  PerceiverFigureOptions{latent_layer_});
}

ViewSpec perceiver_view_spec() {
  ViewSpec v;
  v.name = "perceiver";
  v.title = QStringLiteral("Perceiver AR");
  v.requirement = QStringLiteral("needs a model with Perceiver AR layers, e.g. the perceiver-ar preset");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_layer_extra(r, "perceiver"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    return perceiver_painted_figure(c, style, PerceiverFigureOptions{latent_layer_option(c.options)});
  };
  v.export_data = [](const ViewContext& c, const QString& path) { export_perceiver_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new PerceiverView(parent); };
  const ParamSpec& depth = perceiver_param("latent_layers");
  v.options = {ParamSpec::integer("latent_layer", "Latent layer", 0, 0, static_cast<std::int64_t>(depth.max) - 1,
                                  "The latent layer whose self-attention is shown: 0 .. latent_layers − 1 (3 latent "
                                  "layers in the perceiver-ar preset); values past the last show the last")};
  return v;
}

}  // namespace attnlab
