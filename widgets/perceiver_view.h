// The "Perceiver AR" view (name "perceiver") of models with Perceiver AR layers (the perceiver-ar
// preset): the figure of figures/perceiver_figure.h for the window's layer (or, when that layer
// is not a Perceiver AR layer, the first that is) and head. A spin box picks the latent layer
// whose self-attention is shown (a view option); "Latents" and "Prefix dropout" change the
// MODEL: they emit layerParamsEdited for the drawn layer and the window reruns. Hovering a
// latent's row or bar reports its token for linked highlighting.
//
// View option: latent_layer (int, 0 .. latent_layers − 1; values past the last show the last,
// since the number of latent layers depends on the model).
#pragma once

#include "figures/perceiver_figure.h"
#include "trace_view.h"

class QDoubleSpinBox;
class QLabel;
class QSpinBox;

namespace attnlab {

class FigureCanvas;

ViewSpec perceiver_view_spec();

class PerceiverView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit PerceiverView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  // The option as chosen, and the latent layer it shows for the current result (-1: none).
  int latentLayer() const { return latent_layer_; }
  int resolvedLatentLayer() const;
  void setLatentLayer(int latent_layer);
  // The layer the figure draws (-1 without a Perceiver AR result).
  int drawnLayer() const;

  QSpinBox* latentLayerBox() const { return latent_layer_box_; }
  QSpinBox* latentsBox() const { return latents_box_; }
  QDoubleSpinBox* dropoutBox() const { return dropout_box_; }
  FigureCanvas* canvas() const { return canvas_; }
  PerceiverFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  void showFigure();
  void syncControls();
  // The drawn layer's hyperparameter `key` as the model config sets it (or its default).
  double layerParam(const std::string& key) const;

  ViewContext context_;
  int latent_layer_ = 0;
  QSpinBox* latent_layer_box_ = nullptr;
  QLabel* latent_layer_label_ = nullptr;
  QSpinBox* latents_box_ = nullptr;
  QDoubleSpinBox* dropout_box_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
