// The "Gated state space" view of a model with GSS layers: the state-space kernels per channel,
// a few of them as curves, the eigenvalues Λ in the complex plane, the step Δ per channel and
// the gate per token, drawn by figures/gss_figure.h for the layer model_view_layer picks. Two
// controls change the MODEL, not the view: the DSS kernel (exp or softmax) and the number of
// states N; editing either emits layerParamsEdited(layer, {"kernel": name}) or
// ({"state_dim": n}) and the window reruns. Both show the trace's own values whenever a new
// result arrives (without emitting). Hovering a gate row reports its token.
//
// View option: kernel_scale ("per_channel" or "shared", as in the Mega view).
#pragma once

#include <QComboBox>
#include <QLabel>
#include <QSpinBox>

#include "figures/gss_figure.h"
#include "trace_view.h"

namespace attnlab {

class FigureCanvas;

ViewSpec gss_view_spec();

class GssView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit GssView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  QComboBox* kernelBox() const { return kernel_box_; }
  QSpinBox* statesBox() const { return states_box_; }
  QComboBox* kernelScaleBox() const { return scale_box_; }
  GssFigureOptions figureOptions() const;
  FigureCanvas* canvas() const { return canvas_; }
  GssFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  void showFigure();
  void syncControls();

  ViewContext context_;
  QComboBox* kernel_box_ = nullptr;
  QSpinBox* states_box_ = nullptr;
  QComboBox* scale_box_ = nullptr;
  QLabel* layer_label_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
