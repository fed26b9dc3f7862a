// Attention maps of one kind (cross, encoder self, decoder self) of a translation, with their
// means over heads, over layers and over both, for the views' "average" choices.
//   layers: per layer [H, Lq, Lk];  head_average: per layer [Lq, Lk];  layer_average: per head
//   [Lq, Lk];  average: [Lq, Lk]
#pragma once

#include <vector>

#include "core/tensor.h"
#include "decode/translator.h"

namespace attnlab {

// The maps of one attention kind (cross, encoder self, decoder self) and their averages.
struct AttentionStack {
  AttentionMaps layers;                  // per layer [H, Lq, Lk]
  std::vector<RowMatrix> head_average;   // per layer [Lq, Lk]: the mean over its heads
  std::vector<RowMatrix> layer_average;  // per head [Lq, Lk]: the mean over the layers
  RowMatrix average;                     // [Lq, Lk]: the mean over layers and heads

  // Averages of `maps`; where the layers differ in shape or carry no weights (a variant without
  // a dense matrix) only the layers are kept.
  static AttentionStack from_maps(AttentionMaps maps);
  int layer_count() const { return static_cast<int>(layers.size()); }
  int head_count() const;
  // The [Lq, Lk] map of `layer` and `head` (0-based; -1: the average over that axis); 0 x 0 when
  // there is none.
  RowMatrix select(int layer, int head) const;
};

}  // namespace attnlab
