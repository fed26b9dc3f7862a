// From an engine result to what views draw: the data of one head's heatmap, of every head of a
// layer, and the token labels. No numbers are computed here beyond copying and the colour range.
#pragma once

#include <QString>
#include <QStringList>
#include <string>
#include <vector>

#include "heatmap_data.h"
#include "models/playground.h"

namespace attnlab {

// Axis labels: the token texts (SentencePiece's "▁" shown as a leading space marker).
QStringList token_labels(const PlaygroundResult& result);

// What layer `layer` ran: the attention variant's name, the layer type's name for a layer with
// its own attention (mega, block_recurrent), or "none".
std::string layer_kind(const PlaygroundResult& result, int layer);
// The heads of `layer`'s attention map: the model's heads for a multi-head layer, 1 for a
// single-head layer (mega) and for a layer without attention (its map is empty).
int layer_head_count(const PlaygroundResult& result, int layer);

// One head's weights [L, L]. A layer without attention gives an all-zero map whose title says
// so. Colour scale [0, max weight of the matrix] so that long inputs,
// whose weights are all small, still show their structure; the colorbar states the range.
HeatmapDataPtr attention_heatmap(const PlaygroundResult& result, int layer, int head, ColormapId colormap);

// Every head of `layer`, in head order.
std::vector<HeatmapDataPtr> layer_heatmaps(const PlaygroundResult& result, int layer, ColormapId colormap);

// Byte offsets of the tokens converted to QString (UTF-16) positions in `text`: [begin, end).
std::vector<std::pair<int, int>> token_spans_utf16(const PlaygroundResult& result, const QString& text);

}  // namespace attnlab
