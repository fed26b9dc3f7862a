// The "∞-former memory" view of a model with ∞-former layers: for one segment, the memory it
// read (stored values against the reconstructed signal, the compressed region [0, τ] shaded),
// each query's Gaussian over [0, 1] as a density strip and as curves, and the sticky histogram
// when the layer has sticky memories; drawn by figures/memory_figure.h for the layer
// model_view_layer picks, following the window's head. Two controls change the MODEL, not the
// view: the old-memory share τ and sticky memories; editing either emits
// layerParamsEdited(layer, {"tau": τ}) or ({"sticky": on}) and the window reruns. Both show the
// trace's own values whenever a new result arrives (without emitting). Hovering a strip row
// reports its token.
//
// View options: segment (the segment s whose read is drawn, 1 .. segments − 1; −1, the
// default: the last one; a larger value draws the last one) and channels (memory channels drawn
// in the signal plot, 1 .. 6).
#pragma once

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QSpinBox>

#include "figures/memory_figure.h"
#include "trace_view.h"

namespace attnlab {

class FigureCanvas;

ViewSpec memory_view_spec();

class MemoryView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit MemoryView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  QDoubleSpinBox* tauBox() const { return tau_box_; }
  QCheckBox* stickyBox() const { return sticky_box_; }
  QSpinBox* segmentBox() const { return segment_box_; }
  QSpinBox* channelsBox() const { return channels_box_; }
  MemoryFigureOptions figureOptions() const;
  FigureCanvas* canvas() const { return canvas_; }
  MemoryFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  void showFigure();
  void syncControls();

  ViewContext context_;
  QDoubleSpinBox* tau_box_ = nullptr;
  QCheckBox* sticky_box_ = nullptr;
  QSpinBox* segment_box_ = nullptr;
  QSpinBox* channels_box_ = nullptr;
  QLabel* layer_label_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
