// The "Routing clusters" view (name "clusters") of results of the routing variant: the figure of
// figures/routing_figure.h on screen, with Play/Pause and a slider to step through the k-means
// iterations (animated on a QTimer only while playing), linked highlighting of the hovered
// token, and a line describing it. Data export: CSV (one line per token: its query's and its
// key's clusters, routed or not) and JSON (the engine's trace of the selected head).
//
// View option: step (int; -1 = the last k-means step; a step beyond the result's last is
// clamped to it).
#pragma once

#include <QByteArray>
#include <nlohmann/json.hpp>
#include <optional>

#include "figures/routing_figure.h"
#include "trace_view.h"

class QLabel;
class QPushButton;
class QSlider;
class QTimer;

namespace attnlab {

ViewSpec routing_view_spec();

// position,token,query_clusters,key_clusters,nearest_query_cluster,nearest_key_cluster,routed;
// cluster lists space-separated ("3 7"), nearest clusters at the last k-means step, routed 1/0
// (0: output 0 and a zero weight row). For a local head the cluster columns are empty.
QByteArray routing_csv(const RoutingFigureData& data);
// {"view": "clusters", "variant", "layer", "head", "tokens": [...], "routing": the head's trace}
QByteArray routing_json(const RoutingFigureData& data);

class FigureCanvas;

class RoutingView final : public TraceViewWidget {
  Q_OBJECT

 public:
  // Time between two k-means steps while playing.
  static constexpr int kStepIntervalMs = 700;

  explicit RoutingView(QWidget* parent = nullptr);

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;

  // The k-means step shown (the option clamped to the result's steps).
  int step() const;
  int steps() const { return data_ ? data_->steps() : 0; }
  bool playing() const;
  int highlightedToken() const { return highlighted_; }
  void setStep(int step);
  void play();
  void pause();
  const RoutingFigureData* figureData() const { return data_ ? &*data_ : nullptr; }
  QString message() const { return message_; }
  QString hoverText() const;
  FigureStyle figureStyle() const;
  FigureCanvas* canvas() const { return canvas_; }

 private:
  void advance();
  void refreshControls();
  void showFigure();

  FigureCanvas* canvas_ = nullptr;
  QPushButton* play_button_ = nullptr;
  QSlider* step_slider_ = nullptr;
  QLabel* step_label_ = nullptr;
  QLabel* hover_label_ = nullptr;
  QTimer* timer_ = nullptr;
  std::optional<RoutingFigureData> data_;
  QString message_;
  int step_option_ = -1;  // as chosen; -1: the last step of whatever result is shown
  int highlighted_ = -1;
};

}  // namespace attnlab
