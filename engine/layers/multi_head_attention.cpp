#include "layers/multi_head_attention.h"

#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

void check_layer_sizes(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff) {
  for (const auto& [name, value] : {std::pair{"d_model", d_model}, {"heads", heads}, {"d_ff", d_ff}}) {
    if (value < 1) throw ParamError(std::string(name) + "=" + std::to_string(value) + " is not allowed; it must be at least 1");
  }
  if (d_model % heads != 0) {
    throw ParamError("heads=" + std::to_string(heads) + " does not divide d_model=" + std::to_string(d_model));
  }
}

Tensor split_heads(const RowMatrix& x, std::int64_t heads) {
  const std::int64_t L = x.rows(), D = x.cols();
  if (heads <= 0 || D % heads != 0) {
    throw ShapeError("cannot split " + std::to_string(D) + " features into " + std::to_string(heads) + " heads");
  }
  const std::int64_t d = D / heads;
  Tensor out({heads, L, d});
  for (std::int64_t h = 0; h < heads; ++h) out.matrix(h) = x.middleCols(h * d, d);
  return out;
}

RowMatrix merge_heads(const Tensor& x) {
  const std::int64_t H = x.dim(0), L = x.dim(1), d = x.dim(2);
  RowMatrix out(L, H * d);
  for (std::int64_t h = 0; h < H; ++h) out.middleCols(h * d, d) = x.matrix(h);
  return out;
}

MultiHeadAttention MultiHeadAttention::seeded(std::int64_t d_model, std::int64_t heads, std::uint64_t seed,
                                              float qk_gain) {
  if (heads <= 0 || d_model % heads != 0) {
    throw ParamError("d_model=" + std::to_string(d_model) + " is not divisible by heads=" + std::to_string(heads));
  }
  MultiHeadAttention mha;
  mha.heads = heads;
  mha.w_q = Linear::seeded(d_model, d_model, Rng::derive(seed, "w_q"), qk_gain);
  mha.w_k = Linear::seeded(d_model, d_model, Rng::derive(seed, "w_k"), qk_gain);
  mha.w_v = Linear::seeded(d_model, d_model, Rng::derive(seed, "w_v"));
  mha.w_o = Linear::seeded(d_model, d_model, Rng::derive(seed, "w_o"));
  return mha;
}

RowMatrix MultiHeadAttention::forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  if (!options.variant) throw ParamError("multi-head attention needs an attention variant");
  const Tensor q = split_heads(w_q.forward(x), heads);
  const Tensor k = split_heads(w_k.forward(x), heads);
  const Tensor v = split_heads(w_v.forward(x), heads);
  const AttentionInput input{q, k, v, options.causal, options.key_padding, options.params, options.seed,
                             options.cancel};
  const Tensor attended = run_attention(*options.variant, input, trace);
  if (options.probe) options.probe->observe(options.layer, input, attended, trace);
  return w_o.forward(merge_heads(attended));
}

}  // namespace attnlab
