// The "Block-recurrent state" view (name "recurrent") of models with block-recurrent layers (the
// block-recurrent preset): the figure of figures/recurrent_figure.h for the window's layer (or,
// when that layer is not block-recurrent, the first that is) and head. A spin box picks the
// window whose state ↔ token cross-attention is shown (a view option); "Recurrent state" and
// "Gate" change the MODEL: they emit layerParamsEdited for the drawn layer and the window reruns.
// Hovering a token row or column reports that token for linked highlighting.
//
// View option: window (int, 0 .. n_w − 1 where n_w = ⌈L / W⌉; values past the last show the last,
// since the number of windows depends on the result).
#pragma once

#include <cstdint>

#include "figures/recurrent_figure.h"
#include "trace_view.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QSpinBox;

namespace attnlab {

class FigureCanvas;

ViewSpec recurrent_view_spec();

class RecurrentView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit RecurrentView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  // The option as chosen, and the window it shows for the current result.
  int window() const { return window_; }
  std::int64_t resolvedWindow() const;
  void setWindow(int window);
  // The layer the figure draws (-1 without a block-recurrent result).
  int drawnLayer() const;

  QSpinBox* windowBox() const { return window_box_; }
  QCheckBox* recurrentBox() const { return recurrent_box_; }
  QComboBox* gateBox() const { return gate_box_; }
  FigureCanvas* canvas() const { return canvas_; }
  RecurrentFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  void showFigure();
  void syncControls();

  ViewContext context_;
  int window_ = 0;
  QSpinBox* window_box_ = nullptr;
  QLabel* window_label_ = nullptr;
  QCheckBox* recurrent_box_ = nullptr;
  QComboBox* gate_box_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
