#include "decode/attention_stack.h"

namespace attnlab {

int AttentionStack::head_count() const { return layers.empty() || layers.front().rank() != 3 ? 0 : static_cast<int>(layers.front().dim(0)); }

AttentionStack AttentionStack::from_maps(AttentionMaps maps) {
  AttentionStack s;
  s.layers = std::move(maps);
  if (s.layers.empty()) return s;
  const Shape shape = s.layers.front().shape();
  for (const Tensor& t : s.layers)
    if (t.rank() != 3 || t.shape() != shape || t.empty()) return s;
  const std::int64_t heads = shape[0], rows = shape[1], cols = shape[2];
  const auto layer_count = static_cast<float>(s.layers.size());
  for (const Tensor& t : s.layers) {
    RowMatrix sum = RowMatrix::Zero(rows, cols);
    for (std::int64_t h = 0; h < heads; ++h) sum += t.matrix(h);
    s.head_average.push_back(sum / static_cast<float>(heads));
  }
  for (std::int64_t h = 0; h < heads; ++h) {
    RowMatrix sum = RowMatrix::Zero(rows, cols);
    for (const Tensor& t : s.layers) sum += t.matrix(h);
    s.layer_average.push_back(sum / layer_count);
  }
  s.average = RowMatrix::Zero(rows, cols);
  for (const Tensor& t : s.layers)
    for (std::int64_t h = 0; h < heads; ++h) s.average += t.matrix(h);
  s.average /= layer_count * static_cast<float>(heads);
  return s;
}

RowMatrix AttentionStack::select(int layer, int head) const {
  if (layer >= layer_count() || head >= head_count()) return {};
  if (layer >= 0 && head >= 0) {
    const Tensor& t = layers[static_cast<std::size_t>(layer)];
    if (t.rank() != 3 || t.empty()) return {};
    return t.matrix(head);
  }
  if (layer >= 0) return static_cast<std::size_t>(layer) < head_average.size() ? head_average[static_cast<std::size_t>(layer)] : RowMatrix();
  if (head >= 0) return static_cast<std::size_t>(head) < layer_average.size() ? layer_average[static_cast<std::size_t>(head)] : RowMatrix();
  return average;
}

}  // namespace attnlab
