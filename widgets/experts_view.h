// The "Experts" view of a model with mixture-of-experts layers (the switch-moe preset): the
// token → expert grid, the dropped tokens, slots per expert against the capacity and the router
// losses, drawn by figures/experts_figure.h for the layer model_view_layer picks. Hovering a
// token's row reports it for linked highlighting.
//
// No view options, no model controls (the routing hyperparameters live in the model composer).
#pragma once

#include "figures/experts_figure.h"
#include "trace_view.h"

namespace attnlab {

class FigureCanvas;

ViewSpec experts_view_spec();

class ExpertsView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit ExpertsView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  FigureCanvas* canvas() const { return canvas_; }
  ExpertsFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  void showFigure();

  ViewContext context_;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
