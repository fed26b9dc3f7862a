// The "LSH buckets" figure: how Reformer LSH attention (reformer_lsh) treats one head, drawn with
// QPainter for the widget, PNG/SVG/PDF export and `attnlab-cli figure --view buckets`.
//
// Six panels, in the order of the algorithm:
//   ① angle view of round r: the hashed vectors, coloured by bucket (the projection is named in
//     the panel: exact for 2 and 4 buckets, PCA of the rotated unit vectors above);
//   ②③ the sequence sorted by (bucket, position), lines from each token to its sorted place,
//     and the chunks of the sorted order;
//   ④ round r's attention in sorted order (blocks of chunk windows), or back in token order;
//   ⑤ the combined matrix of all rounds in token order (the trace's weights);
//   ⑥ co-occurrence: in how many rounds each key shares a window with each query;
//   ⑦ recall of the exact top-k: the mean over queries for k = 1..K and each query's at k.
// A step-through mode (rotate → hash → sort → chunk → attend → un-sort) dims the panels a step
// does not touch and frames the ones it does. Every number comes from the engine's trace
// (ReformerLshExtras); this file only copies, permutes and draws them.
#pragma once

#include <QColor>
#include <QPointF>
#include <QRectF>
#include <QSizeF>
#include <QString>
#include <QStringList>
#include <memory>
#include <string>
#include <vector>

#include "attention/reformer_lsh.h"
#include "figures/figure_export.h"
#include "models/playground.h"

class QPaintDevice;

namespace attnlab {

// The steps of the step-through mode, in order; Overview shows every panel at full strength.
enum class LshStage { Overview, Rotate, Hash, Sort, Chunk, Attend, Unsort };
inline constexpr int kLshStepCount = 6;  // Rotate .. Unsort

// The stages' names in view options and sessions, in the order of LshStage: "overview",
// "rotate", "hash", "sort", "chunk", "attend", "unsort".
const std::vector<std::string>& lsh_stage_names();
std::string lsh_stage_name(LshStage stage);
LshStage lsh_stage_from_name(const std::string& name);  // throws ParamError listing the names

QString lsh_stage_title(LshStage stage);        // "Step 3 of 6 · Sort"
QString lsh_stage_explanation(LshStage stage);  // one or two sentences for the class

// Categorical bucket colours: Paul Tol's colour-blind-safe "bright" scheme, repeating after 7.
inline constexpr int kLshBucketColors = 7;
QColor lsh_bucket_color(int bucket);

inline constexpr int kLshDefaultRecallK = 8;  // the figure's k when none is chosen

struct LshFigureOptions {
  int round = 0;                 // hash round shown in panels ①–④
  int k = kLshDefaultRecallK;    // recall@k marked (clamped to [1, K])
  LshStage stage = LshStage::Overview;
  int highlight = -1;            // linked-highlighted token, -1 for none
  // The widget shows the step and the causal note in its own labels: its figure header is just
  // the settings line. Exported figures carry the full header.
  bool compact_header = false;
};

// One head of one layer of a reformer_lsh result, with the matrices the panels draw. The
// permuted copies are built on first use and kept (the widget repaints on every hover).
class LshFigureModel {
 public:
  // Throws ParamError when the result has no reformer_lsh trace, or layer/head do not exist.
  LshFigureModel(PlaygroundResultPtr result, int layer, int head, ColormapId colormap);

  const PlaygroundResult& result() const { return *result_; }
  const ReformerLshExtras& extras() const { return *extras_; }
  int layer() const { return layer_; }
  int head() const { return head_; }
  int length() const { return static_cast<int>(extras_->length()); }
  int rounds() const { return static_cast<int>(extras_->rounds()); }
  int recall_k() const { return static_cast<int>(extras_->recall_k); }
  const QStringList& labels() const { return labels_; }

  int query_bucket(int round, int token) const;
  int key_bucket(int round, int token) const;
  int sorted_position(int round, int token) const;  // of the token as a query
  int token_at(int round, int sorted_position) const;
  int query_chunk(int round, int token) const;
  float recall(int token, int k) const;  // k in [1, K]
  float mean_recall(int k) const;

  HeatmapDataPtr combined() const;                  // the trace's weights, token order
  HeatmapDataPtr cooccurrence() const;              // rounds in the same window, token order
  HeatmapDataPtr round_sorted(int round) const;     // round's own weights, sorted query × sorted key order
  HeatmapDataPtr round_tokens(int round) const;     // round's own weights, token order

 private:
  PlaygroundResultPtr result_;
  std::shared_ptr<const ReformerLshExtras> extras_;
  int layer_ = 0;
  int head_ = 0;
  ColormapId colormap_ = ColormapId::Viridis;
  QStringList labels_;
  HeatmapDataPtr combined_, cooccurrence_;
  mutable std::vector<HeatmapDataPtr> round_sorted_, round_tokens_;
};

// Where the panels fall inside a target rectangle (device units).
struct LshFigureLayout {
  QRectF header;
  QRectF angle, sort, round_matrix, combined, cooccurrence, recall;
  int columns = 3;
};

QSizeF lsh_figure_size(const LshFigureModel& model, const FigureStyle& style);
LshFigureLayout compute_lsh_layout(const LshFigureModel& model, const LshFigureOptions& options, const FigureStyle& style,
                                   const QRectF& target, const QPaintDevice* device);
void draw_lsh_figure(QPainter& painter, const QRectF& target, const LshFigureModel& model, const LshFigureOptions& options,
                     const FigureStyle& style);
// The token under `pos` in a panel that shows tokens (points, strips, matrix rows, bars); -1 if none.
int lsh_token_at(const LshFigureModel& model, const LshFigureOptions& options, const FigureStyle& style,
                 const QRectF& target, const QPaintDevice* device, QPointF pos);

// Centre of `token`'s point in the angle view, and the cell of a sorted position in the sorted
// strip (tests read the drawn colours there).
QPointF lsh_angle_point(const LshFigureModel& model, const LshFigureOptions& options, const FigureStyle& style,
                        const QRectF& target, const QPaintDevice* device, int token);
QRectF lsh_sorted_cell(const LshFigureModel& model, const LshFigureOptions& options, const FigureStyle& style,
                       const QRectF& target, const QPaintDevice* device, int sorted_position);

PaintedFigure lsh_painted_figure(std::shared_ptr<const LshFigureModel> model, const LshFigureOptions& options,
                                 const FigureStyle& style);

}  // namespace attnlab
