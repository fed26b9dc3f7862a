// The "LSH buckets" view (name "buckets"): how Reformer LSH attention hashed, sorted, chunked
// and combined one head (figures/lsh_figure.h draws it). The widget adds a round selector, a k
// slider that reads the engine's precomputed recall, a step-through mode for class (Back/Next,
// Play) and linked highlighting. Data export: CSV (one line per token) and JSON (the trace).
//
// View options: round (int; a round ≥ the result's n_hashes is refused, naming the range), k
// (int; clamped to the K the trace holds), stage ("overview", "rotate", ... "unsort").
#pragma once

#include <QByteArray>
#include <memory>
#include <nlohmann/json.hpp>

#include "figures/lsh_figure.h"
#include "trace_view.h"

class QLabel;
class QPushButton;
class QSlider;
class QSpinBox;
class QTimer;

namespace attnlab {

ViewSpec lsh_view_spec();

// One line per token: token, position, then per round r: bucket_r, sorted_position_r, chunk_r
// (and key_bucket_r, key_sorted_position_r without shared QK), then recall@1..recall@K.
// Throws ParamError when the context cannot be drawn (see check_view_context).
QByteArray lsh_view_csv(const ViewContext& context);
// {"format": "attnlab-lsh-buckets", "version", "variant", "layer", "head", "tokens", "params",
//  "settings": the trace's settings, "trace": the head's trace (ReformerLshExtras::head_to_json)}.
nlohmann::json lsh_view_json(const ViewContext& context);

class FigureCanvas;

class LshViewWidget final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit LshViewWidget(QWidget* parent = nullptr);
  ~LshViewWidget() override;

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  void setRound(int round);
  void setRecallK(int k);
  void setStage(LshStage stage);
  void setStepping(bool on);  // on: starts at "Rotate"; off: back to the overview
  void nextStage();
  void previousStage();

  // The options the figure is drawn with: round and k clamped to the result's ranges.
  LshFigureOptions options() const;
  std::shared_ptr<const LshFigureModel> model() const { return model_; }
  FigureCanvas* canvas() const { return canvas_; }
  QString stageText() const;        // what the stage label shows
  QString recallText() const;       // what the k label shows
  QString message() const;          // why nothing is drawn ("" when a figure is shown)
  bool playing() const;

 private:
  void refreshControls();
  void showFigure();
  void optionsChanged();  // repaint, controls, viewOptionsChanged

  ViewContext context_;
  std::shared_ptr<const LshFigureModel> model_;
  // As chosen: round and k are clamped when drawn, so a result with fewer rounds does not lose
  // the choice (options() gives the clamped values).
  LshFigureOptions options_;
  QString message_;
  FigureCanvas* canvas_ = nullptr;
  QSpinBox* round_box_ = nullptr;
  QSlider* k_slider_ = nullptr;
  QLabel* k_label_ = nullptr;
  QPushButton* step_button_ = nullptr;
  QPushButton* back_button_ = nullptr;
  QPushButton* next_button_ = nullptr;
  QPushButton* play_button_ = nullptr;
  QLabel* stage_label_ = nullptr;
  QTimer* play_timer_ = nullptr;
  bool updating_ = false;  // controls are being set from code: their signals change nothing
};

}  // namespace attnlab
