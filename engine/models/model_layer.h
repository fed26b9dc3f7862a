// One layer of a composable model (models/model_config.h): the mixer its type names, then its
// feed-forward part, each a pre-LN residual.
//
//   x: [L, D] -> mixer -> h: [L, D] -> h + FFN(LN(h)): [L, D]
//
//   transformer      h = x + MHA(LN(x))            (MHA runs the layer's attention variant; with
//                    params.qkv = "sparse" its q, k, v come from layers/sparse_qkv.h)
//   universal        the block b(s) = s + MHA(LN(s)), then + FFN(LN(·)), applied with ACT halting
//   block_recurrent, perceiver_ar, infinity_former, mega, gss
//                    h = the part's own forward (its residuals inside; layers/<part>.h)
//
// Weights under "layers.{i}.": transformer and universal keep the names of the plain encoder
// (norm_attention, attention.w_*, norm_ff, ff.*) so older weight files still load; universal adds
// act.halting, sparse Q/K/V attention.sparse_qkv.* (and attention.w_o only); the other types put their weights under "mixer."; feed-forward parts under "ff."
// (moe: ff.router, ff.experts.{e}.up/down; sparse_ff: ff.up, ff.down, ff.controller.m1/m2).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "attention/attention.h"
#include "layers/act.h"
#include "layers/block_recurrent.h"
#include "layers/feed_forward.h"
#include "layers/gss.h"
#include "layers/infinity_memory.h"
#include "layers/layer_norm.h"
#include "layers/mega.h"
#include "layers/moe.h"
#include "layers/multi_head_attention.h"
#include "layers/perceiver_ar.h"
#include "layers/sparse_ff.h"
#include "layers/sparse_qkv.h"
#include "layers/weight_table.h"
#include "models/model_config.h"

namespace attnlab {

class ModelLayer {
 public:
  // Throws ParamError for values a part refuses (e.g. d_ff not divisible by a sparse block).
  static ModelLayer seeded(const LayerSpec& spec, const ModelConfig& config, std::uint64_t seed);

  const LayerSpec& spec() const { return spec_; }
  void visit_weights(const std::string& prefix, WeightTable& table);

  // What this layer runs: its own variant's name, `inherited` for an "inherit" layer, the type's
  // name for a layer with its own attention, "none" for a layer without.
  std::string variant_name(const std::string& inherited) const;

  // x: [L, D] -> [L, D]. `options` carries the run's (inherited) variant, seed, causal flag,
  // cancel token and probe; trace (optional) gets the attention weights and the layer extras.
  RowMatrix forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;

  // The two halves of a reversible transformer layer (layers/reversible.h):
  //   F(x) = MHA(LN(x)),  G(x) = FFN(LN(x)).
  RowMatrix reversible_f(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;
  RowMatrix reversible_g(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;

 private:
  struct AttentionMixer {
    LayerNorm norm;
    MultiHeadAttention attention;  // with sparse_qkv, only its w_o is used (and saved)
    std::optional<SparseQkv> sparse_qkv;
  };
  struct UniversalMixer {
    AttentionMixer block;  // shared by every step; the layer's FFN completes the block
    AdaptiveComputationTime act;
  };
  using Mixer = std::variant<AttentionMixer, UniversalMixer, BlockRecurrentLayer, PerceiverArLayer,
                             InfinityMemoryLayer, MegaLayer, GssLayer>;
  using FeedForwardPart = std::variant<std::monostate, FeedForward, MoeFeedForward, SparseFeedForward>;

  AttentionOptions resolved(const AttentionOptions& options) const;
  RowMatrix attend(const AttentionMixer& m, const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;
  RowMatrix feed_forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const;

  LayerSpec spec_;
  std::int64_t d_model_ = 0;
  std::int64_t heads_ = 0;
  std::int64_t d_ff_ = 0;
  const Attention* own_variant_ = nullptr;  // when the spec names one
  std::shared_ptr<const Params> own_params_;
  Mixer mixer_;
  LayerNorm norm_ff_;
  FeedForwardPart ff_;
};

}  // namespace attnlab
