// The "BigBird blocks" view: block types per head, the token mask, the attention inside it and
// the receptive field after n layers (slider n = 1..4), drawn by figures/bigbird_figure.h. The
// widget follows the window's layer and head (setContext) and the linked token; hovering a
// matrix reports the query token under the pointer.
//
// View option: layers (int 1..4, the receptive field's depth; no range depends on the result).
#pragma once

#include <QLabel>
#include <QSlider>

#include "figures/bigbird_figure.h"
#include "trace_view.h"

namespace attnlab {

class FigureCanvas;

ViewSpec bigbird_view_spec();

class BigBirdView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit BigBirdView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  int receptiveLayers() const;
  void setReceptiveLayers(int layers);
  QSlider* layersSlider() const { return layers_slider_; }
  // The figure's canvas and the layout of the figure on its surface, for hit testing and tests.
  FigureCanvas* canvas() const { return canvas_; }
  BigBirdFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  void showFigure();

  ViewContext context_;
  QSlider* layers_slider_ = nullptr;
  QLabel* layers_label_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
