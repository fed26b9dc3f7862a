// The kinds of layer a model config can stack, and the feed-forward kinds a layer can end with.
//
// A layer of a composable model is a *mixer* (what mixes information across tokens) followed by
// an optional feed-forward part, both around pre-LN residuals:
//
//   type             mixer                                               attention   own FFN
//   transformer      multi-head attention (any registered variant)       variant     no
//   universal        one shared transformer block applied with ACT       variant     no
//   block_recurrent  sliding windows + recurrent state (Hutchins 2022)   own         yes
//   perceiver_ar     cross-attention into latents + latent self-attn     variant     yes
//   infinity_former  segment attention + continuous long-term memory    variant     yes
//   mega             damped EMA + gated single-head attention            own         no
//   gss              gated state space (DSS kernel)                      none        no
//
// Each type and each feed-forward kind declares a hyperparameter schema (attention/params.h), so
// the model composer and the config validation are generated from the same table.
#pragma once

#include <string>
#include <vector>

#include "attention/params.h"

namespace attnlab {

enum class LayerAttention {
  Variant,  // runs the layer's attention variant (its own, or the run's when "inherit")
  Own,      // a specific attention written into the layer (windowed, gated single-head)
  None,     // no attention at all
};

struct LayerTypeSpec {
  std::string name;     // key in model configs, fixed forever
  std::string title;
  std::string paper;
  std::string summary;  // one sentence for tooltips
  LayerAttention attention = LayerAttention::Variant;
  bool own_feed_forward = false;  // the layer ends with its own FFN; the config's "ffn" must be "none"
  std::string default_ffn = "dense";
  std::vector<ParamSpec> params;
};

struct FeedForwardKindSpec {
  std::string name;  // "dense", "moe", "sparse_ff", "none"
  std::string title;
  std::string paper;
  std::string summary;
  std::vector<ParamSpec> params;
};

const std::vector<LayerTypeSpec>& layer_types();
// Throws ParamError listing the known types.
const LayerTypeSpec& layer_type(const std::string& name);

const std::vector<FeedForwardKindSpec>& feed_forward_kinds();

// The values of `schema` with the keys of a JSON object set over its defaults (a layer spec's
// "params", "attention_params" or "ffn_params"); throws ParamError for an unknown key or a bad value.
Params schema_params(const std::vector<ParamSpec>& schema, const nlohmann::json& overrides);
// Throws ParamError listing the known kinds.
const FeedForwardKindSpec& feed_forward_kind(const std::string& name);

}  // namespace attnlab
