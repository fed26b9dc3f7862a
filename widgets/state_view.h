// The "Streaming state" view: the state of a recurrent form of attention (linear, performer,
// delta, t2r) after each token, drawn by figures/state_figure.h for the window's layer and head.
// A slider picks the snapshot step; Play walks through the steps with a QTimer (the only time
// the view repaints without new input) and stops at the last. Hovering the token strip reports
// that token for linked highlighting.
//
// View option: step (int, −1 = the last snapshot; values past the last show the last, since the
// number of snapshots depends on the result).
#pragma once

#include <QLabel>
#include <QPushButton>
#include <QSlider>
#include <QTimer>

#include "figures/state_figure.h"
#include "trace_view.h"

namespace attnlab {

class FigureCanvas;

ViewSpec state_view_spec();

class StateView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit StateView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  const ViewContext& context() const { return context_; }
  // The option value (−1 = last) and the snapshot it resolves to for the current result.
  int step() const { return step_; }
  int resolvedStep() const;
  void setStep(int step);
  bool isPlaying() const { return timer_->isActive(); }
  void setPlaying(bool playing);

  QSlider* stepSlider() const { return slider_; }
  QPushButton* playButton() const { return play_button_; }
  QTimer* playTimer() const { return timer_; }
  FigureCanvas* canvas() const { return canvas_; }
  StateFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

 private:
  void showFigure();
  void syncSlider();
  void advance();

  ViewContext context_;
  int step_ = -1;
  QSlider* slider_ = nullptr;
  QLabel* step_label_ = nullptr;
  QPushButton* play_button_ = nullptr;
  QTimer* timer_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
};

}  // namespace attnlab
