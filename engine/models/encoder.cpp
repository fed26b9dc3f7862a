#include "models/encoder.h"

#include "core/error.h"
#include "core/rng.h"

namespace attnlab {
namespace {

std::string layer_prefix(std::size_t i) { return "layers." + std::to_string(i) + "."; }

// Saving: copies every visited weight into a safetensors table.
class WeightWriter {
 public:
  explicit WeightWriter(SafetensorsFile& out) : out_(out) {}
  void matrix(const std::string& name, const RowMatrix& m, std::int64_t, std::int64_t) {
    out_.tensors[name] = Tensor::from_matrix(m);
  }
  void vector(const std::string& name, const RowVector& v, std::int64_t) {
    out_.tensors[name] = Tensor::from_data({v.size()}, v.data(), static_cast<std::size_t>(v.size()));
  }
  void linear(const std::string& name, const Linear& l, std::int64_t in, std::int64_t out) {
    matrix(name + ".weight", l.weight, in, out);
    vector(name + ".bias", l.bias, out);
  }
  void norm(const std::string& name, const LayerNorm& n, std::int64_t dim) {
    vector(name + ".gamma", n.gamma, dim);
    vector(name + ".beta", n.beta, dim);
  }

 private:
  SafetensorsFile& out_;
};

// Loading: fills every visited weight from a safetensors table, checking names and shapes.
class WeightReader {
 public:
  explicit WeightReader(const SafetensorsFile& in) : in_(in) {}
  void matrix(const std::string& name, RowMatrix& m, std::int64_t rows, std::int64_t cols) {
    m = lookup(name, {rows, cols}).matrix();
  }
  void vector(const std::string& name, RowVector& v, std::int64_t size) {
    v = Eigen::Map<const RowVector>(lookup(name, {size}).data(), size);
  }
  void linear(const std::string& name, Linear& l, std::int64_t in, std::int64_t out) {
    matrix(name + ".weight", l.weight, in, out);
    vector(name + ".bias", l.bias, out);
  }
  void norm(const std::string& name, LayerNorm& n, std::int64_t dim) {
    vector(name + ".gamma", n.gamma, dim);
    vector(name + ".beta", n.beta, dim);
  }

 private:
  const Tensor& lookup(const std::string& name, const Shape& shape) const {
    const auto it = in_.tensors.find(name);
    if (it == in_.tensors.end()) throw FormatError("model weights lack the tensor '" + name + "'");
    if (it->second.shape() != shape) {
      throw FormatError("model weight '" + name + "' has shape " + it->second.shape_string() + ", expected " +
                        shape_to_string(shape));
    }
    return it->second;
  }
  const SafetensorsFile& in_;
};

}  // namespace

// One list of every weight and its name, walked for both saving and loading.
template <typename Table, typename Self>
void Encoder::visit_weights(Table& table, Self& self) {
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
  visit_weights(reader, e);
  return e;
}

SafetensorsFile Encoder::to_weights() const {
  SafetensorsFile file;
  file.metadata["model"] = config_.name;
  WeightWriter writer(file);
  visit_weights(writer, *this);
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
