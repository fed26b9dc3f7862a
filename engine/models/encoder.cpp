#include "models/encoder.h"

#include "core/error.h"
#include "core/rng.h"
#include "layers/weight_table.h"

namespace attnlab {
namespace {

std::string layer_prefix(std::size_t i) { return "layers." + std::to_string(i) + "."; }

}  // namespace

// One list of every weight and its name, walked for both saving and loading.
void Encoder::visit_weights(WeightTable& table) {
  Encoder& self = *this;
  const ModelConfig& c = self.config_;
  const std::int64_t D = c.d_model, F = c.d_ff;
  table.matrix("embed.weight", self.embedding_.table, c.vocab_size, D);
  for (std::size_t i = 0; i < self.layers_.size(); ++i) {
    const std::string p = layer_prefix(i);
    auto& layer = self.layers_[i];
    table.norm(p + "norm_attention", layer.norm_attention, D);
    table.linear(p + "attention.w_q", layer.attention.w_q, D, D);
    table.linear(p + "attention.w_k", layer.attention.w_k, D, D);
    table.linear(p + "attention.w_v", layer.attention.w_v, D, D);
    table.linear(p + "attention.w_o", layer.attention.w_o, D, D);
    table.norm(p + "norm_ff", layer.norm_ff, D);
    table.linear(p + "ff.up", layer.feed_forward.up, D, F);
    table.linear(p + "ff.down", layer.feed_forward.down, F, D);
  }
  table.norm("final_norm", self.final_norm_, D);
}

Encoder Encoder::seeded(const ModelConfig& config, std::uint64_t seed) {
  config.validate();
  Encoder e;
  e.config_ = config;
  e.embedding_ = TokenEmbedding::seeded(config.vocab_size, config.d_model, Rng::derive(seed, "embed"));
  for (std::int64_t i = 0; i < config.layers; ++i) {
    e.layers_.push_back(EncoderLayer::seeded(config.d_model, config.heads, config.d_ff,
                                             Rng::derive(seed, "layer" + std::to_string(i)), config.qk_gain));
  }
  e.final_norm_ = LayerNorm::identity(config.d_model);
  return e;
}

Encoder Encoder::from_weights(const ModelConfig& config, const SafetensorsFile& weights) {
  config.validate();
  Encoder e;
  e.config_ = config;
  e.layers_.resize(static_cast<std::size_t>(config.layers));
  for (auto& layer : e.layers_) layer.attention.heads = config.heads;
  WeightReader reader(weights);
  e.visit_weights(reader);
  return e;
}

SafetensorsFile Encoder::to_weights() const {
  SafetensorsFile file;
  file.metadata["model"] = config_.name;
  WeightWriter writer(file);
  // The writer only reads the weights; the walk is shared with loading, hence non-const.
  const_cast<Encoder*>(this)->visit_weights(writer);
  return file;
}

EncoderOutput Encoder::forward(const std::vector<std::int32_t>& ids, const EncoderRunOptions& options) const {
  const auto L = static_cast<std::int64_t>(ids.size());
  if (L == 0) throw ParamError("the input has no tokens");
  if (L > config_.max_length) {
    throw ParamError("the input has " + std::to_string(L) + " tokens; model '" + config_.name + "' takes at most " +
                     std::to_string(config_.max_length));
  }
  if (options.trace) {
    // Traces keep layers × heads × L² weights: refuse what would not fit before computing.
    const std::int64_t trace_bytes = config_.layers * config_.heads * L * L * static_cast<std::int64_t>(sizeof(float));
    if (trace_bytes > memory::allocation_limit_bytes()) {
      char need[32], have[32];
      memory::format_bytes(trace_bytes, need, sizeof need);
      memory::format_bytes(memory::allocation_limit_bytes(), have, sizeof have);
      throw ResourceError("attention maps of " + std::to_string(L) + " tokens for " + std::to_string(config_.layers) +
                          " layers × " + std::to_string(config_.heads) + " heads need " + need +
                          "; this machine allows " + have);
    }
  }
  EncoderOutput out;
  out.hidden = embedding_.forward(ids);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    check_cancelled(options.cancel);
    AttentionOptions attention{options.variant, options.params, options.causal, options.key_padding,
                               Rng::derive(options.attention_seed, "layer" + std::to_string(i)), options.cancel,
                               options.probe, static_cast<std::int64_t>(i)};
    Trace trace;
    out.hidden = layers_[i].forward(out.hidden, attention, options.trace ? &trace : nullptr);
    if (options.trace) out.traces.push_back(std::move(trace));
  }
  out.hidden = final_norm_.forward(out.hidden);
  return out;
}

}  // namespace attnlab
