// The beam search of one translation as a tree (engine/decode/search.h: SearchResult::tree),
// with the n-best list beside it.
//
//   n-best   on the left (what shows first when a long tree scrolls): rank, score,
//            log-probability and the English of each result;
//   tree     one column per decoding step (the root <s> at step 0), in each column the
//            candidates the search looked at, top to bottom in the order it ranked them; every
//            node shows its piece and its score (log-probability under the length penalty).
//            Kept hypotheses are filled blue discs, finished ones (an EOS that became a result)
//            green squares, pruned candidates hollow grey rings; an edge joins each node to its
//            parent, and the path of the best hypothesis is drawn thick in vermillion.
//
// Greedy search lists only its path: one node per step. Every number comes from the
// SearchResult; the figure places and draws them. Lengths derive from the label font
// (figure_kit.h), so exports at any dpi keep the proportions.
#pragma once

#include <QPointF>
#include <QRectF>
#include <QSizeF>
#include <QString>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "decode/search.h"
#include "figures/figure_export.h"
#include "figures/figure_kit.h"

namespace attnlab {

struct BeamFigureNode {
  enum class State { Root, Kept, Finished, Pruned };
  int step = 0;
  int parent = -1;  // index into BeamFigureData::nodes; -1 for the root
  QString piece;
  double log_prob = 0, score = 0;
  State state = State::Pruned;
  bool best = false;  // on the path of the best hypothesis
};

struct BeamFigureEntry {
  QString text;
  double score = 0, log_prob = 0;
  bool finished = true;
};

struct BeamFigureData {
  QString title;
  QString summary;
  std::vector<BeamFigureNode> nodes;  // in SearchResult::tree order
  std::vector<BeamFigureEntry> nbest;
};
using BeamFigureDataPtr = std::shared_ptr<const BeamFigureData>;

struct BeamSearchInfo {
  int beam = 1;
  double length_penalty = 0;
  std::int32_t eos = 1;
};

// The tree of `search`: `pieces` holds each tree node's text (SearchResult::tree order),
// `nbest_text` the English of each hypothesis. The best path follows the first hypothesis'
// tokens (and its EOS when finished) from the root.
BeamFigureData beam_figure_data(const SearchResult& search, const std::vector<std::string>& pieces,
                                const std::vector<std::string>& nbest_text, const BeamSearchInfo& info);

struct BeamFigureLayout {
  QRectF figure, title, tree, nbest, legend, summary;
  double radius = 0;               // of a node's marker
  std::vector<QPointF> centres;    // per node, its marker
  std::vector<QRectF> boxes;       // per node, marker and labels (hover)
  std::vector<std::pair<int, int>> edges;  // (parent, child) per drawn edge
  std::vector<QRectF> nbest_rows;  // per n-best entry

  // The node whose box holds `pos`, or -1.
  int node_at(const QPointF& pos) const;
};

QSizeF beam_figure_size(const BeamFigureData& data, const FigureStyle& style);
BeamFigureLayout compute_beam_layout(const BeamFigureData& data, const FigureStyle& style, const QRectF& target,
                                     const QPaintDevice* device);
void draw_beam_figure(QPainter& painter, const QRectF& target, const BeamFigureData& data, const FigureStyle& style);
PaintedFigure beam_painted_figure(BeamFigureDataPtr data, const FigureStyle& style);
// What hovering node `index` says: step, piece, log-probability, score and its fate.
QString beam_node_tip(const BeamFigureData& data, int index);

// The marker colours (tests read them back).
QColor beam_kept_color();
QColor beam_finished_color();
QColor beam_best_color();

}  // namespace attnlab
