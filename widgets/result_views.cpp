#include "result_views.h"

#include <algorithm>

#include "core/error.h"

namespace attnlab {

QStringList token_labels(const PlaygroundResult& result) {
  QStringList labels;
  labels.reserve(static_cast<int>(result.tokens.size()));
  for (const Token& t : result.tokens) labels << QString::fromStdString(t.text);
  return labels;
}

std::string layer_kind(const PlaygroundResult& result, int layer) {
  const auto i = static_cast<std::size_t>(layer);
  if (i < result.layer_variants.size()) return result.layer_variants[i];
  return result.variant;
}

int layer_head_count(const PlaygroundResult& result, int layer) {
  if (layer < 0 || layer >= static_cast<int>(result.layers.size())) return 0;
  const Tensor& weights = result.layers[static_cast<std::size_t>(layer)].weights;
  return weights.empty() ? 1 : static_cast<int>(weights.dim(0));
}

HeatmapDataPtr attention_heatmap(const PlaygroundResult& result, int layer, int head, ColormapId colormap) {
  if (layer < 0 || layer >= static_cast<int>(result.layers.size())) {
    throw ParamError("layer " + std::to_string(layer) + " does not exist; this model has layers 0.." +
                     std::to_string(result.layers.size() - 1));
  }
  const Tensor& weights = result.layers[static_cast<std::size_t>(layer)].weights;  // [H, L, L]
  auto data = std::make_shared<HeatmapData>();
  if (weights.empty()) {
    // A layer without attention (a state-space layer): an empty map that says so, not an error,
    // so the window keeps working while such a layer is selected.
    const auto L = static_cast<int>(result.tokens.size());
    data->rows = L;
    data->cols = L;
    data->values.assign(static_cast<std::size_t>(L) * static_cast<std::size_t>(L), 0.0f);
    data->row_labels = token_labels(result);
    data->col_labels = data->row_labels;
    data->title = QStringLiteral("layer %1 · %2 · no attention in this layer").arg(layer).arg(QString::fromStdString(layer_kind(result, layer)));
    data->vmin = 0.0f;
    data->vmax = 1.0f;
    data->colormap = colormap;
    return data;
  }
  if (head < 0 || head >= weights.dim(0)) {
    throw ParamError("head " + std::to_string(head) + " does not exist; layer " + std::to_string(layer) + " has heads 0.." +
                     std::to_string(weights.dim(0) - 1));
  }
  const auto L = static_cast<int>(weights.dim(1));
  data->rows = L;
  data->cols = static_cast<int>(weights.dim(2));
  const float* begin = weights.data() + static_cast<std::ptrdiff_t>(head) * L * data->cols;
  data->values.assign(begin, begin + static_cast<std::ptrdiff_t>(L) * data->cols);
  data->row_labels = token_labels(result);
  data->col_labels = data->row_labels;
  data->title = QStringLiteral("%1 · layer %2 · head %3%4")
                    .arg(QString::fromStdString(layer_kind(result, layer)))
                    .arg(layer)
                    .arg(head)
                    .arg(result.causal ? QStringLiteral(" · causal") : QString());
  data->vmin = 0.0f;
  const float max_weight = data->values.empty() ? 1.0f : *std::max_element(data->values.begin(), data->values.end());
  data->vmax = max_weight > 0.0f ? max_weight : 1.0f;
  data->colormap = colormap;
  return data;
}

std::vector<HeatmapDataPtr> layer_heatmaps(const PlaygroundResult& result, int layer, ColormapId colormap) {
  std::vector<HeatmapDataPtr> out;
  for (int h = 0; h < layer_head_count(result, layer); ++h) out.push_back(attention_heatmap(result, layer, h, colormap));
  return out;
}

std::vector<std::pair<int, int>> token_spans_utf16(const PlaygroundResult& result, const QString& text) {
  // Walk the UTF-8 encoding once, mapping byte offsets to UTF-16 positions.
  const QByteArray utf8 = text.toUtf8();
  std::vector<int> utf16_at(static_cast<std::size_t>(utf8.size()) + 1, 0);
  int pos16 = 0;
  for (qsizetype i = 0; i < utf8.size();) {
    const auto b = static_cast<unsigned char>(utf8[i]);
    const int len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    for (int k = 0; k < len && i + k <= utf8.size(); ++k) utf16_at[static_cast<std::size_t>(i + k)] = pos16;
    pos16 += len == 4 ? 2 : 1;  // 4-byte sequences are surrogate pairs in UTF-16
    i += len;
  }
  utf16_at[static_cast<std::size_t>(utf8.size())] = pos16;
  std::vector<std::pair<int, int>> spans;
  for (const Token& t : result.tokens) {
    const auto clamp = [&](std::size_t byte) { return utf16_at[std::min(byte, static_cast<std::size_t>(utf8.size()))]; };
    spans.emplace_back(clamp(t.begin), clamp(t.end));
  }
  return spans;
}

}  // namespace attnlab
