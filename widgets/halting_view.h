// The "Halting map" view of a model with universal (ACT) layers: the token × step map of halting
// probabilities, remainders, the cumulative halting curve and the ponder cost, drawn by
// figures/halting_figure.h for the layer model_view_layer picks. Two controls change the MODEL,
// not the view: the halting threshold 1 − ε (a slider on a logarithmic scale of ε and a spin box
// of the threshold) and the maximum number of steps; editing either emits layerParamsEdited(layer,
// {"epsilon": ε}) or ({"max_steps": n}) and the window reruns. Both show the trace's own values
// whenever a new result arrives (without emitting). Hovering a token's row reports it.
//
// No view options.
#pragma once

#include <QDoubleSpinBox>
#include <QSlider>
#include <QSpinBox>

#include "figures/halting_figure.h"
#include "trace_view.h"

namespace attnlab {

class FigureCanvas;

ViewSpec halting_view_spec();

class HaltingView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit HaltingView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  QDoubleSpinBox* thresholdBox() const { return threshold_box_; }
  QSlider* epsilonSlider() const { return epsilon_slider_; }
  QSpinBox* maxStepsBox() const { return max_steps_box_; }
  FigureCanvas* canvas() const { return canvas_; }
  HaltingFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

  // The slider's scale: position 0..kSliderSteps maps ε from its schema's largest value down to
  // its smallest, evenly in log ε (so the threshold rises to the right).
  static constexpr int kSliderSteps = 200;
  static int sliderPosition(double epsilon);
  static double sliderEpsilon(int position);

 private:
  void showFigure();
  void syncControls();
  void emitEpsilon(double epsilon);

  ViewContext context_;
  QDoubleSpinBox* threshold_box_ = nullptr;
  QSlider* epsilon_slider_ = nullptr;
  QSpinBox* max_steps_box_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
