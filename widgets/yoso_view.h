// The "YOSO kernel" view: collision probability against angle, the sampled and expected kernels
// side by side and their difference, and the kernel error as the number of hashes grows, drawn
// by figures/yoso_figure.h. The widget follows the window's layer and head (setContext) and the
// linked token; hovering a kernel heatmap reports the query token under the pointer.
#pragma once

#include <QCheckBox>
#include <QLabel>

#include "figures/yoso_figure.h"
#include "trace_view.h"

namespace attnlab {

ViewSpec yoso_view_spec();

class YosoView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit YosoView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;

  const ViewContext& context() const { return context_; }
  QCheckBox* logScaleBox() const { return log_box_; }
  YosoFigureOptions figureOptions() const;
  // The figure area (child widget) and its current layout, for hit testing and tests.
  QWidget* canvas() const { return canvas_; }
  YosoFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  friend class YosoCanvas;
  void hoverAt(QPointF pos);

  ViewContext context_;
  QCheckBox* log_box_ = nullptr;
  QLabel* message_ = nullptr;
  QWidget* canvas_ = nullptr;
  int hovered_ = -1;
};

}  // namespace attnlab
