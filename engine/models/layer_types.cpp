#include "models/layer_types.h"

#include "core/error.h"
#include "layers/act.h"
#include "layers/block_recurrent.h"
#include "layers/gss.h"
#include "layers/infinity_memory.h"
#include "layers/mega.h"
#include "layers/moe.h"
#include "layers/perceiver_ar.h"
#include "layers/sparse_ff.h"
#include "layers/sparse_qkv.h"

namespace attnlab {
namespace {

// The transformer layer's own choice: dense projections or the Scaling Transformers' sparse
// Q/K/V (layers/sparse_qkv.h), whose kernel sizes follow.
std::vector<ParamSpec> transformer_params() {
  std::vector<ParamSpec> p = {ParamSpec::choice(
      "qkv", "Q/K/V projections", "dense", {"dense", "sparse"},
      "dense: three D × D projections; sparse: Scaling Transformers' multiplicative layer shared by q, k, v, then a "
      "small causal convolution each (length_kernel, module_kernel)")};
  for (const ParamSpec& s : SparseQkv::schema()) p.push_back(s);
  return p;
}

}  // namespace

const std::vector<LayerTypeSpec>& layer_types() {
  static const std::vector<LayerTypeSpec> types = {
      {"transformer", "Transformer layer", "Vaswani et al. 2017, Attention Is All You Need",
       "Multi-head attention with the layer's variant, then the feed-forward part, both pre-LN residual.",
       LayerAttention::Variant, false, "dense", transformer_params()},
      {"universal", "Universal Transformer with ACT", "Dehghani et al. 2019, Universal Transformers",
       "One shared block applied again and again; each token halts when its halting probability reaches 1 − ε.",
       LayerAttention::Variant, false, "dense", AdaptiveComputationTime::schema()},
      {"block_recurrent", "Block-Recurrent Transformer layer", "Hutchins et al. 2022, Block-Recurrent Transformers",
       "Windows of W tokens attend to themselves and the previous window; state vectors carry memory across windows.",
       LayerAttention::Own, true, "none", BlockRecurrentLayer::schema()},
      {"perceiver_ar", "Perceiver AR layer", "Hawthorne et al. 2022, General-purpose, long-context autoregressive modeling with Perceiver AR",
       "The last N positions are latents that cross-attend to the whole prefix, then attend causally among themselves.",
       LayerAttention::Variant, true, "none", PerceiverArLayer::schema()},
      {"infinity_former", "∞-former layer", "Martins et al. 2022, ∞-former: Infinite Memory Transformer",
       "Attention within a segment plus a continuous long-term memory of earlier segments read through Gaussians.",
       LayerAttention::Variant, true, "none", InfinityMemoryLayer::schema()},
      {"mega", "Mega layer", "Ma et al. 2023, Mega: Moving Average Equipped Gated Attention",
       "A multi-dimensional damped moving average feeds a gated single-head attention.",
       LayerAttention::Own, false, "dense", MegaLayer::schema()},
      {"gss", "Gated State Space layer", "Mehta et al. 2023, Long Range Language Modeling via Gated State Spaces",
       "A diagonal state-space convolution (DSS kernel) gated by a dense branch; no attention.",
       LayerAttention::None, false, "none", GssLayer::schema()},
  };
  return types;
}

const LayerTypeSpec& layer_type(const std::string& name) {
  std::string known;
  for (const auto& t : layer_types()) {
    if (t.name == name) return t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  throw ParamError("unknown layer type '" + name + "'; known: " + known);
}

const std::vector<FeedForwardKindSpec>& feed_forward_kinds() {
  static const std::vector<FeedForwardKindSpec> kinds = {
      {"dense", "Dense feed-forward", "Vaswani et al. 2017", "down(GELU(up(x))), d_model → d_ff → d_model.", {}},
      {"moe", "Mixture of experts (Switch / GShard)", "Fedus et al. 2022, Switch Transformers; Lepikhin et al. 2021, GShard",
       "A router sends each token to its top-k experts, each a dense FFN, up to a capacity per expert.",
       MoeFeedForward::schema()},
      {"sparse_ff", "Sparse feed-forward (Scaling Transformers)", "Jaszczur et al. 2021, Sparse is Enough in Scaling Transformers",
       "A low-rank controller keeps one unit per block of d_ff; only those units are computed.",
       SparseFeedForward::schema()},
      {"none", "No feed-forward", "", "The layer has no feed-forward part (or its own).", {}},
  };
  return kinds;
}

const FeedForwardKindSpec& feed_forward_kind(const std::string& name) {
  std::string known;
  for (const auto& k : feed_forward_kinds()) {
    if (k.name == name) return k;
    known += (known.empty() ? "" : ", ") + k.name;
  }
  throw ParamError("unknown feed-forward kind '" + name + "'; known: " + known);
}

Params schema_params(const std::vector<ParamSpec>& schema, const nlohmann::json& overrides) {
  Params p(schema);
  p.set_from_json(overrides);
  return p;
}

}  // namespace attnlab
