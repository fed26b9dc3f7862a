// The "YOSO kernel" view: collision probability against angle, the sampled and expected kernels
// side by side and their difference, and the kernel error as the number of hashes grows, drawn
// by figures/yoso_figure.h. The widget follows the window's layer and head (setContext) and the
// linked token; hovering a kernel heatmap reports the query token under the pointer.
//
// View option: log_probability (bool: the collision plot's probability axis logarithmic or
// linear).
#pragma once

#include <QCheckBox>

#include "figures/yoso_figure.h"
#include "trace_view.h"

namespace attnlab {

class FigureCanvas;

ViewSpec yoso_view_spec();

class YosoView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit YosoView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  QCheckBox* logScaleBox() const { return log_box_; }
  YosoFigureOptions figureOptions() const;
  // The figure's canvas and the layout of the figure on its surface, for hit testing and tests.
  FigureCanvas* canvas() const { return canvas_; }
  YosoFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  void showFigure();

  ViewContext context_;
  QCheckBox* log_box_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
