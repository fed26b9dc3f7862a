// The "BigBird blocks" view: block types per head, the token mask, the attention inside it and
// the receptive field after n layers (slider n = 1..4), drawn by figures/bigbird_figure.h. The
// widget follows the window's layer and head (setContext) and the linked token; hovering a
// matrix reports the query token under the pointer.
#pragma once

#include <QSlider>
#include <QLabel>

#include "figures/bigbird_figure.h"
#include "trace_view.h"

namespace attnlab {

ViewSpec bigbird_view_spec();

class BigBirdView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit BigBirdView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;

  const ViewContext& context() const { return context_; }
  int receptiveLayers() const;
  void setReceptiveLayers(int layers);
  QSlider* layersSlider() const { return layers_slider_; }
  // The figure area (child widget) and its current layout, for hit testing and tests.
  QWidget* canvas() const { return canvas_; }
  BigBirdFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  friend class BigBirdCanvas;
  void hoverAt(QPointF pos);

  ViewContext context_;
  QSlider* layers_slider_ = nullptr;
  QLabel* layers_label_ = nullptr;
  QLabel* message_ = nullptr;
  QWidget* canvas_ = nullptr;
  int hovered_ = -1;
};

}  // namespace attnlab
