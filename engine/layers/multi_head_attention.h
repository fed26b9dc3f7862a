// Multi-head attention around any registered variant.
//
//   x: [L, D] -> q, k, v = x·W_q, x·W_k, x·W_v, split into heads: [H, L, D/H]
//   -> variant(q, k, v): [H, L, D/H] -> concatenated heads [L, D] -> ·W_o: [L, D]
#pragma once

#include <cstdint>
#include <vector>

#include "attention/attention.h"
#include "layers/linear.h"

namespace attnlab {

// Sees every attention call of a model run — the variant's inputs, output and (when traced) its
// trace — like ggml's eval callback. The playground uses it to compare a variant with exact
// attention on the very same q, k, v.
class AttentionProbe {
 public:
  virtual ~AttentionProbe() = default;
  virtual void observe(std::int64_t layer, const AttentionInput& input, const Tensor& output, const Trace* trace) = 0;
};

struct AttentionOptions {
  const Attention* variant = nullptr;  // required
  const Params* params = nullptr;      // the variant's values; defaults when null
  bool causal = false;
  const std::vector<std::uint8_t>* key_padding = nullptr;  // [L]
  std::uint64_t seed = 0;
  const CancelToken* cancel = nullptr;
  AttentionProbe* probe = nullptr;  // optional observer of the attention call
  std::int64_t layer = 0;           // passed to the probe
};

struct MultiHeadAttention {
  std::int64_t heads = 1;
  Linear w_q, w_k, w_v, w_o;  // each [D, D]

  // `qk_gain` scales the initial W_q and W_k; > 1 gives sharper attention maps for untrained,
  // seeded weights.
  static MultiHeadAttention seeded(std::int64_t d_model, std::int64_t heads, std::uint64_t seed,
                                   float qk_gain = 1.0f);

  // x: [L, D] -> [L, D]; trace (optional) gets weights [H, L, L] and the variant's extras.
  RowMatrix forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;
};

// The sizes every layer part takes: d_model, heads and d_ff at least 1, heads dividing d_model.
// Throws ParamError naming the value.
void check_layer_sizes(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff);

// [L, H·d] -> [H, L, d]
Tensor split_heads(const RowMatrix& x, std::int64_t heads);
// [H, L, d] -> [L, H·d]
RowMatrix merge_heads(const Tensor& x);

}  // namespace attnlab
