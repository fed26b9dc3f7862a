#include "models/model_config.h"

#include <filesystem>
#include <fstream>

#include "attention/registry.h"
#include "core/error.h"
#include "models/layer_types.h"

namespace attnlab {
namespace {

void require_range(const char* field, std::int64_t value, std::int64_t min, std::int64_t max) {
  if (value < min || value > max) {
    throw ParamError(std::string("model ") + field + "=" + std::to_string(value) + " is not allowed; " + field +
                     ": an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
}

std::string layer_name(std::size_t index, const std::string& type) {
  return "layer " + std::to_string(index) + " (" + type + ")";
}

// Validates `overrides` against `schema`, prefixing any error with where it came from.
void check_params(const std::vector<ParamSpec>& schema, const nlohmann::json& overrides, const std::string& where) {
  if (!overrides.is_object()) throw ParamError(where + " must be a JSON object");
  try {
    Params p(schema);
    p.set_from_json(overrides);
  } catch (const ParamError& e) {
    throw ParamError(where + ": " + e.what());
  }
}

}  // namespace

void LayerSpec::validate(std::size_t index) const {
  const LayerTypeSpec& t = layer_type(type);
  const std::string where = layer_name(index, type);
  if (attention != "inherit") {
    if (t.attention != LayerAttention::Variant) {
      throw ParamError(where + (t.attention == LayerAttention::None ? " has no attention" : " has its own attention") +
                       "; its 'attention' must be 'inherit'");
    }
    const Attention& variant = Registry::builtin().get(attention);
    check_params(variant.spec().params, attention_params, where + " attention '" + attention + "'");
  } else if (!attention_params.empty()) {
    throw ParamError(where + " sets attention_params but inherits its variant; name the variant in 'attention'");
  }
  const FeedForwardKindSpec& f = feed_forward_kind(ffn);
  if (t.own_feed_forward && ffn != "none") {
    throw ParamError(where + " ends with its own feed-forward; its 'ffn' must be 'none', not '" + ffn + "'");
  }
  check_params(f.params, ffn_params, where + " ffn '" + ffn + "'");
  check_params(t.params, params, where + " params");
  if (reversible && (type != "transformer" || ffn == "none")) {
    throw ParamError(where + " cannot be reversible; only transformer layers with a feed-forward part can");
  }
}

nlohmann::json LayerSpec::to_json() const {
  return nlohmann::json{{"type", type},         {"attention", attention}, {"attention_params", attention_params},
                        {"ffn", ffn},           {"ffn_params", ffn_params}, {"params", params},
                        {"reversible", reversible}};
}

LayerSpec LayerSpec::from_json(const nlohmann::json& j, std::size_t index) {
  if (!j.is_object()) throw ParamError("model layer " + std::to_string(index) + " must be a JSON object");
  LayerSpec s;
  if (j.contains("type")) {
    if (!j["type"].is_string()) throw ParamError("model layer " + std::to_string(index) + " 'type' must be a string");
    s.type = j["type"].get<std::string>();
  }
  const LayerTypeSpec& t = layer_type(s.type);
  s.ffn = t.default_ffn;
  bool has_recurrent = false, recurrent = false;
  for (const auto& [key, value] : j.items()) {
    try {
      if (key == "type" || key == "repeat") continue;
      if (key == "attention") s.attention = value.get<std::string>();
      else if (key == "attention_params") s.attention_params = value;
      else if (key == "ffn") s.ffn = value.get<std::string>();
      else if (key == "ffn_params") s.ffn_params = value;
      else if (key == "params") s.params = value;
      else if (key == "reversible") s.reversible = value.get<bool>();
      else if (key == "recurrent") has_recurrent = true, recurrent = value.get<bool>();
      else throw ParamError("model " + layer_name(index, s.type) + " has an unknown field '" + key + "'");
    } catch (const nlohmann::json::exception&) {
      throw ParamError("model " + layer_name(index, s.type) + " field '" + key + "' has the wrong type: " + value.dump());
    }
  }
  if (has_recurrent) {
    if (s.type != "block_recurrent") {
      throw ParamError("model " + layer_name(index, s.type) + ": 'recurrent' applies to block_recurrent layers only");
    }
    if (!s.params.is_object()) throw ParamError("model " + layer_name(index, s.type) + " params must be a JSON object");
    s.params["recurrent"] = recurrent;
  }
  return s;
}

bool ModelConfig::is_plain() const {
  const LayerSpec plain;
  for (const auto& l : layers) {
    if (!(l == plain)) return false;
  }
  return true;
}

void ModelConfig::validate() const {
  if (name.empty()) throw ParamError("model config needs a name");
  if (kind != "encoder") throw ParamError("model kind '" + kind + "' is not supported; allowed: encoder");
  require_range("vocab_size", vocab_size, 2, 1 << 22);
  require_range("d_model", d_model, 4, 8192);
  require_range("heads", heads, 1, 64);
  require_range("layers", layer_count(), 1, 96);
  require_range("d_ff", d_ff, 4, 65536);
  require_range("max_length", max_length, 1, 1 << 20);
  if (d_model % heads != 0) {
    throw ParamError("model d_model=" + std::to_string(d_model) + " is not divisible by heads=" +
                     std::to_string(heads));
  }
  if (!(qk_gain > 0.0f && qk_gain <= 16.0f)) throw ParamError("model qk_gain must be in (0, 16]");
  for (std::size_t i = 0; i < layers.size(); ++i) layers[i].validate(i);
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json layer_json;
  if (is_plain()) {
    layer_json = layer_count();
  } else {
    layer_json = nlohmann::json::array();
    for (std::size_t i = 0; i < layers.size();) {
      std::size_t run = 1;
      while (i + run < layers.size() && layers[i + run] == layers[i]) ++run;
      nlohmann::json l = layers[i].to_json();
      if (run > 1) l["repeat"] = run;
      layer_json.push_back(std::move(l));
      i += run;
    }
  }
  return nlohmann::json{{"name", name},       {"kind", kind},     {"vocab_size", vocab_size},
                        {"d_model", d_model}, {"heads", heads},   {"layers", layer_json},
                        {"d_ff", d_ff},       {"max_length", max_length}, {"tokenizer", tokenizer},
                        {"qk_gain", qk_gain}, {"description", description}};
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ParamError("model config must be a JSON object");
  ModelConfig c;
  for (const auto& [key, value] : j.items()) {
    try {
      if (key == "name") c.name = value.get<std::string>();
      else if (key == "kind") c.kind = value.get<std::string>();
      else if (key == "vocab_size") c.vocab_size = value.get<std::int32_t>();
      else if (key == "d_model") c.d_model = value.get<std::int64_t>();
      else if (key == "heads") c.heads = value.get<std::int64_t>();
      else if (key == "d_ff") c.d_ff = value.get<std::int64_t>();
      else if (key == "max_length") c.max_length = value.get<std::int64_t>();
      else if (key == "tokenizer") c.tokenizer = value.get<std::string>();
      else if (key == "qk_gain") c.qk_gain = value.get<float>();
      else if (key == "description") c.description = value.get<std::string>();
      else if (key == "layers") {
        c.layers.clear();
        if (value.is_number_integer()) {
          const auto n = value.get<std::int64_t>();
          require_range("layers", n, 1, 96);
          c.layers.resize(static_cast<std::size_t>(n));
        } else if (value.is_array()) {
          for (const auto& l : value) {
            const LayerSpec spec = LayerSpec::from_json(l, c.layers.size());
            std::int64_t repeat = 1;
            if (l.contains("repeat")) {
              if (!l["repeat"].is_number_integer()) throw ParamError("model layer 'repeat' must be an integer");
              repeat = l["repeat"].get<std::int64_t>();
              require_range("repeat", repeat, 1, 96);
            }
            for (std::int64_t r = 0; r < repeat && c.layers.size() <= 96; ++r) c.layers.push_back(spec);
          }
        } else {
          throw ParamError("model config field 'layers' must be a count or a list of layer specs");
        }
      } else {
        throw ParamError("model config has an unknown field '" + key + "'");
      }
    } catch (const nlohmann::json::exception&) {
      throw ParamError("model config field '" + key + "' has the wrong type: " + value.dump());
    }
  }
  c.validate();
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open model config '" + path + "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError("model config '" + path + "' is not valid JSON: " + e.what());
  }
  ModelConfig c = from_json(j);
  if (c.tokenizer != "word" && std::filesystem::path(c.tokenizer).is_relative()) {
    c.tokenizer = (std::filesystem::path(path).parent_path() / c.tokenizer).string();
  }
  return c;
}

namespace {

LayerSpec spec(const std::string& type, nlohmann::json params = nlohmann::json::object()) {
  LayerSpec s;
  s.type = type;
  s.ffn = layer_type(type).default_ffn;
  s.params = std::move(params);
  return s;
}

ModelConfig small(const std::string& name, std::string description, std::vector<LayerSpec> layers) {
  ModelConfig c;
  c.name = name;
  c.vocab_size = 8192;
  c.d_model = 256;
  c.heads = 8;
  c.d_ff = 1024;
  c.max_length = 4096;
  c.qk_gain = 2.0f;
  c.description = std::move(description);
  c.layers = std::move(layers);
  return c;
}

std::vector<LayerSpec> repeat(const LayerSpec& s, int n) { return std::vector<LayerSpec>(static_cast<std::size_t>(n), s); }

}  // namespace

const std::vector<ModelConfig>& builtin_models() {
  static const std::vector<ModelConfig> models = [] {
    std::vector<ModelConfig> m;
    m.push_back(small("tiny-encoder", "4 layers, d_model 256, 8 heads of 32, pre-LN; seeded weights",
                      repeat(LayerSpec{}, 4)));

    m.push_back(small("universal-act",
                      "Universal Transformer: one shared block (d_model 256, 8 heads) repeated up to 8 times, "
                      "per-token ACT halting",
                      {spec("universal", {{"max_steps", 8}})}));

    {
      std::vector<LayerSpec> layers = repeat(spec("block_recurrent", {{"window", 128}, {"recurrent", false}}), 4);
      layers[2].params = {{"window", 128}, {"state_size", 32}, {"recurrent", true}, {"gate", "lstm"}};
      ModelConfig c = small("block-recurrent",
                            "4 sliding-window layers (W = 128, previous window cached); layer 2 recurrent with 32 "
                            "state vectors and LSTM gates",
                            layers);
      c.max_length = 65536;
      m.push_back(c);
    }
    {
      LayerSpec moe;
      moe.ffn = "moe";
      moe.ffn_params = {{"experts", 8}, {"top_k", 1}, {"capacity_factor", 1.25}};
      m.push_back(small("switch-moe",
                        "4 layers; layers 1 and 3 route each token to one of 8 experts (Switch, capacity 1.25)",
                        {LayerSpec{}, moe, LayerSpec{}, moe}));
    }
    {
      LayerSpec sparse;
      sparse.ffn = "sparse_ff";
      sparse.ffn_params = {{"block_size", 32}, {"d_lowrank", 64}};
      sparse.params = {{"qkv", "sparse"}};
      m.push_back(small("scaling-sparse",
                        "4 layers with sparse Q/K/V and sparse feed-forward: one of 32 units per block active "
                        "(Scaling Transformers)",
                        repeat(sparse, 4)));
    }
    {
      ModelConfig c = small("perceiver-ar",
                            "Perceiver AR: the last 128 positions are latents cross-attending to the prefix, then 3 "
                            "causal self-attention layers over the latents",
                            {spec("perceiver_ar", {{"latents", 128}, {"latent_layers", 3}})});
      c.max_length = 65536;
      m.push_back(c);
    }
    {
      std::vector<LayerSpec> layers = repeat(LayerSpec{}, 2);
      const LayerSpec memory = spec("infinity_former", {{"segment", 128}, {"basis", 64}});
      layers.push_back(memory);
      layers.push_back(memory);
      ModelConfig c = small("infinity-former",
                            "2 Transformer layers, then 2 ∞-former layers reading segments of 128 tokens with a "
                            "64-basis continuous memory",
                            layers);
      c.max_length = 65536;
      m.push_back(c);
    }
    m.push_back(small("mega", "4 Mega layers: 16-dim damped EMA + gated single-head attention, dense FFN",
                      repeat(spec("mega", {{"ndim", 16}, {"z_dim", 64}}), 4)));
    {
      ModelConfig c = small("gss", "4 Gated State Space layers (DSS kernel, 64 states, 256 SSM channels); no attention",
                            repeat(spec("gss", {{"state_dim", 64}, {"ssm_dim", 256}}), 4));
      c.max_length = 65536;
      m.push_back(c);
    }
    {
      LayerSpec lsh;
      lsh.attention = "reformer_lsh";
      lsh.reversible = true;
      m.push_back(small("reformer", "Reformer: 4 reversible layers with LSH attention (activation memory flat in depth)",
                        repeat(lsh, 4)));
    }

    ModelConfig base = small("base-encoder", "6 layers, d_model 512, 8 heads of 64, pre-LN; seeded weights",
                             repeat(LayerSpec{}, 6));
    base.vocab_size = 16384;
    base.d_model = 512;
    base.d_ff = 2048;
    m.push_back(base);

    // Large presets: for long sequences and the memory/time curves, not for 100 ms edits.
    {
      std::vector<LayerSpec> layers = repeat(spec("block_recurrent", {{"window", 512}, {"recurrent", false}}), 12);
      layers[9].params = {{"window", 512}, {"state_size", 128}, {"recurrent", true}, {"gate", "lstm"}};
      ModelConfig c = small("large-block-recurrent",
                            "12 sliding-window layers of d_model 512 (W = 512), layer 9 recurrent with 128 states; "
                            "linear in length",
                            layers);
      c.vocab_size = 16384;
      c.d_model = 512;
      c.d_ff = 2048;
      c.max_length = 1 << 20;
      c.qk_gain = 1.0f;
      m.push_back(c);
    }
    {
      ModelConfig c = small("large-perceiver-ar",
                            "Perceiver AR, d_model 512: 1024 latents over up to 1M tokens, then 11 latent layers",
                            {spec("perceiver_ar", {{"latents", 1024}, {"latent_layers", 11}})});
      c.vocab_size = 16384;
      c.d_model = 512;
      c.d_ff = 2048;
      c.max_length = 1 << 20;
      c.qk_gain = 1.0f;
      m.push_back(c);
    }
    {
      LayerSpec lsh;
      lsh.attention = "reformer_lsh";
      lsh.reversible = true;
      ModelConfig c = small("large-reformer",
                            "24 reversible LSH-attention layers of d_model 512: activation memory flat in depth",
                            repeat(lsh, 24));
      c.vocab_size = 16384;
      c.d_model = 512;
      c.d_ff = 2048;
      c.max_length = 1 << 20;
      c.qk_gain = 1.0f;
      m.push_back(c);
    }
    return m;
  }();
  return models;
}

const ModelConfig& builtin_model(const std::string& name) {
  std::string known;
  for (const auto& m : builtin_models()) {
    if (m.name == name) return m;
    known += (known.empty() ? "" : ", ") + m.name;
  }
  throw ParamError("unknown model '" + name + "'; known: " + known);
}

}  // namespace attnlab
