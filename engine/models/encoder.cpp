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
  const std::int64_t D = config_.d_model;
  table.matrix("embed.weight", embedding_.table, config_.vocab_size, D);
  for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i].visit_weights(layer_prefix(i), table);
  table.norm("final_norm", final_norm_, D);
}

Encoder Encoder::seeded(const ModelConfig& config, std::uint64_t seed) {
  config.validate();
  Encoder e;
  e.config_ = config;
  e.embedding_ = TokenEmbedding::seeded(config.vocab_size, config.d_model, Rng::derive(seed, "embed"));
  for (std::size_t i = 0; i < config.layers.size(); ++i) {
    e.layers_.push_back(ModelLayer::seeded(config.layers[i], config, Rng::derive(seed, "layer" + std::to_string(i))));
  }
  e.final_norm_ = LayerNorm::identity(config.d_model);
  return e;
}

Encoder Encoder::from_weights(const ModelConfig& config, const SafetensorsFile& weights) {
  config.validate();
  // Every weight is overwritten by the file; seeding first builds each part with its shapes and
  // settings in one place.
  Encoder e = seeded(config, 0);
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
    const std::int64_t trace_bytes = config_.layer_count() * config_.heads * L * L * static_cast<std::int64_t>(sizeof(float));
    if (trace_bytes > memory::allocation_limit_bytes()) {
      char need[32], have[32];
      memory::format_bytes(trace_bytes, need, sizeof need);
      memory::format_bytes(memory::allocation_limit_bytes(), have, sizeof have);
      throw ResourceError("attention maps of " + std::to_string(L) + " tokens for " + std::to_string(config_.layer_count()) +
                          " layers × " + std::to_string(config_.heads) + " heads need " + need +
                          "; this machine allows " + have);
    }
  }
  EncoderOutput out;
  out.hidden = embedding_.forward(ids);
  const auto layer_options = [&](std::size_t i) {
    return AttentionOptions{options.variant, options.params, options.causal, options.key_padding,
                            Rng::derive(options.attention_seed, "layer" + std::to_string(i)), options.cancel,
                            options.probe, static_cast<std::int64_t>(i)};
  };
  if (options.trace) out.traces.resize(layers_.size());
  const auto trace_of = [&](std::size_t i) { return options.trace ? &out.traces[i] : nullptr; };
  for (std::size_t i = 0; i < layers_.size();) {
    if (!layers_[i].spec().reversible) {
      check_cancelled(options.cancel);
      out.hidden = layers_[i].forward(out.hidden, layer_options(i), trace_of(i));
      ++i;
      continue;
    }
    // A run of reversible layers: two streams, merged by their mean at the end of the run.
    RowMatrix x1 = out.hidden, x2 = out.hidden;
    for (; i < layers_.size() && layers_[i].spec().reversible; ++i) {
      check_cancelled(options.cancel);
      const AttentionOptions o = layer_options(i);
      x1 += layers_[i].reversible_f(x2, o, trace_of(i));
      check_cancelled(options.cancel);
      x2 += layers_[i].reversible_g(x1, o, trace_of(i));
    }
    out.hidden = 0.5f * (x1 + x2);
  }
  out.hidden = final_norm_.forward(out.hidden);
  return out;
}

}  // namespace attnlab
