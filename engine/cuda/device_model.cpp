#include "cuda/device_model.h"

#include <algorithm>
#include <cmath>

#include "attention/registry.h"
#include "core/error.h"
#include "core/rng.h"
#include "layers/layer_norm.h"
#include "models/layer_types.h"

namespace attnlab::gpu {
namespace {

constexpr const char* kWhatRuns =
    "the device path runs transformer layers (dense Q/K/V, dense or no feed-forward) and block_recurrent layers";

const float kNormEps = LayerNorm{}.eps;

}  // namespace

DeviceModel::DeviceModel(const Encoder& encoder, std::shared_ptr<ComputeBackend> backend)
    : config_(encoder.config()), backend_(std::move(backend)) {
  if (!backend_) throw ParamError("a device model needs a backend");
  const SafetensorsFile file = encoder.to_weights();
  const auto upload = [&](const std::string& name) {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end()) throw FormatError("the model has no weight '" + name + "'");
    DeviceArray a = backend_->alloc(it->second.size());
    backend_->upload(it->second.data(), it->second.size(), a);
    weight_bytes_ += it->second.size() * static_cast<std::int64_t>(sizeof(float));
    return a;
  };
  const auto norm = [&](const std::string& name) {
    return NormWeights{upload(name + ".gamma"), upload(name + ".beta")};
  };
  const auto linear = [&](const std::string& name) {
    return LinearWeights{upload(name + ".weight"), upload(name + ".bias")};
  };

  // Check every layer before uploading anything large.
  for (std::size_t i = 0; i < config_.layers.size(); ++i) {
    const LayerSpec& spec = config_.layers[i];
    const std::string name = "layer " + std::to_string(i) + " (" + spec.type + ")";
    const Params p = schema_params(layer_type(spec.type).params, spec.params);
    const bool transformer =
        spec.type == "transformer" && p.get_choice("qkv") == "dense" && (spec.ffn == "dense" || spec.ffn == "none");
    const bool window = spec.type == "block_recurrent";
    if (!transformer && !window) {
      std::string what = spec.type;
      if (spec.type == "transformer") what += " with " + spec.ffn + " feed-forward, " + p.get_choice("qkv") + " Q/K/V";
      throw ParamError(name + " is a " + what + " layer; " + kWhatRuns);
    }
  }

  embedding_ = upload("embed.weight");
  for (std::size_t i = 0; i < config_.layers.size(); ++i) {
    const LayerSpec& spec = config_.layers[i];
    const std::string prefix = "layers." + std::to_string(i) + ".";
    Layer layer;
    layer.name = "layer " + std::to_string(i) + " (" + spec.type + ")";
    layer.reversible = spec.reversible;
    std::string part = prefix;
    if (spec.type == "block_recurrent") {
      const Params p = schema_params(layer_type(spec.type).params, spec.params);
      layer.window = p.get_int("window");
      layer.recurrent = p.get_bool("recurrent");
      part += "mixer.";
      if (layer.recurrent) {
        layer.state_size = p.get_int("state_size");
        layer.gate = p.get_choice("gate");
        layer.gate_bias = static_cast<float>(p.get_float("gate_bias"));
        layer.token_state_q = linear(part + "token_state.w_q");
        layer.token_state_o = linear(part + "token_state.w_o");
        layer.initial_state = upload(part + "state.initial");
        layer.state_position = upload(part + "state.position");
        layer.norm_state = norm(part + "state.norm");
        layer.state_q_self = linear(part + "state.w_q_self");
        layer.state_k = linear(part + "state.w_k");
        layer.state_v = linear(part + "state.w_v");
        layer.state_q_tokens = linear(part + "state.w_q_tokens");
        layer.state_projection = linear(part + "state.projection");
        if (layer.gate == "full") layer.gate_full = linear(part + "state.gate");
        if (layer.gate == "lstm") {
          layer.gate_forget = linear(part + "state.gate_forget");
          layer.gate_input = linear(part + "state.gate_input");
        }
      }
    } else if (spec.attention != "inherit") {
      layer.own_variant = &Registry::builtin().get(spec.attention);
      layer.own_params =
          std::make_shared<const Params>(schema_params(layer.own_variant->spec().params, spec.attention_params));
    }
    layer.norm_attention = norm(part + "norm_attention");
    layer.w_q = linear(part + "attention.w_q");
    layer.w_k = linear(part + "attention.w_k");
    layer.w_v = linear(part + "attention.w_v");
    layer.w_o = linear(part + "attention.w_o");
    layer.has_ff = spec.type == "block_recurrent" || spec.ffn == "dense";
    if (layer.has_ff) {
      const std::string ff = spec.type == "block_recurrent" ? part + "feed_forward" : part + "ff";
      layer.norm_ff = norm(part + "norm_ff");
      layer.up = linear(ff + ".up");
      layer.down = linear(ff + ".down");
    }
    layers_.push_back(std::move(layer));
  }
  final_norm_ = norm("final_norm");
  zero_bias_ = backend_->alloc(config_.d_model);
  backend_->fill(zero_bias_, 0.0f, config_.d_model);
  weight_bytes_ += config_.d_model * static_cast<std::int64_t>(sizeof(float));
}

AttentionCall DeviceModel::call_for(std::size_t i, const DeviceRunOptions& options, const Params& inherited,
                                    std::int64_t length) const {
  const Layer& layer = layers_[i];
  AttentionCall call;
  call.window = layer.window;
  call.causal = layer.window > 0 || options.causal;
  if (layer.window == 0) {
    call.variant = layer.own_variant ? layer.own_variant : options.variant;
    call.params = layer.own_variant ? layer.own_params.get() : &inherited;
  }
  call.seed = Rng::derive(options.attention_seed, "layer" + std::to_string(i));
  call.heads = config_.heads;
  call.length = length;
  call.dim = config_.head_dim();
  return call;
}

std::string DeviceModel::unsupported(const DeviceRunOptions& options, std::int64_t length) const {
  if (!options.variant) return "no attention variant given";
  const Params inherited = options.params ? *options.params : Params(options.variant->spec().params);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const std::string why = backend_->unsupported(call_for(i, options, inherited, length));
    if (!why.empty()) return layers_[i].name + ": " + why;
  }
  return {};
}

DeviceModel::TokenProjections DeviceModel::project_tokens(const Layer& layer, const DeviceArray& x,
                                                          std::int64_t L) const {
  ComputeBackend& b = *backend_;
  const std::int64_t D = config_.d_model, H = config_.heads, d = config_.head_dim(), n = L * D;
  TokenProjections t{b.alloc(n), b.alloc(n), {}, {}, {}};
  b.layer_norm(x, layer.norm_attention.gamma, layer.norm_attention.beta, kNormEps, t.normed, L, D);
  for (auto [w, heads] : {std::pair{&layer.w_q, &t.q}, {&layer.w_k, &t.k}, {&layer.w_v, &t.v}}) {
    b.linear(t.normed, w->weight, w->bias, t.scratch, L, D, D);
    *heads = b.alloc(n);
    b.split_heads(t.scratch, *heads, 1, L, H, d);
  }
  return t;
}

DeviceArray DeviceModel::attention_block(const Layer& layer, const AttentionCall& call, const DeviceArray& x,
                                         std::int64_t L) const {
  ComputeBackend& b = *backend_;
  const std::int64_t D = config_.d_model, H = config_.heads, d = config_.head_dim(), n = L * D;
  TokenProjections t = project_tokens(layer, x, L);
  DeviceArray &u = t.normed, &projected = t.scratch;
  const DeviceArray &q = t.q, &k = t.k, &v = t.v;
  u = {};
  DeviceArray attended = b.alloc(n);
  b.attention(call, q, k, v, attended);
  b.merge_heads(attended, projected, 1, L, H, d);
  attended = {};
  DeviceArray out = b.alloc(n);
  b.linear(projected, layer.w_o.weight, layer.w_o.bias, out, L, D, D);
  return out;
}

void DeviceModel::two_part_linear(const DeviceArray& a, const DeviceArray& b, const LinearWeights& w, DeviceArray& y,
                                  DeviceArray& scratch, std::int64_t rows) const {
  ComputeBackend& be = *backend_;
  const std::int64_t D = config_.d_model;
  be.linear(a, w.weight.slice(0, D * D), w.bias, y, rows, D, D);
  be.linear(b, w.weight.slice(D * D, D * D), zero_bias_, scratch, rows, D, D);
  be.axpby(y, 1.0f, scratch, 1.0f, rows * D);
}

// The recurrent block-recurrent layer's mixer output W_o·A + b_o + W_ox·A_state + b_ox [L, D]
// (layers/block_recurrent.h), with `call` its token window.
DeviceArray DeviceModel::recurrent_block(const Layer& layer, const AttentionCall& call, const DeviceArray& x,
                                         std::int64_t L, const CancelToken* cancel) const {
  ComputeBackend& b = *backend_;
  const std::int64_t D = config_.d_model, H = config_.heads, d = config_.head_dim(), n = L * D;
  const std::int64_t W = layer.window, S = layer.state_size, windows = (L + W - 1) / W, SD = S * D;

  // Token projections: q, k, v [H, L, d]; the queries that read the state, padded to whole windows.
  TokenProjections t = project_tokens(layer, x, L);
  DeviceArray &u = t.normed, &projected = t.scratch;
  const DeviceArray &q = t.q, &k = t.k, &v = t.v;
  DeviceArray state_queries = b.alloc(windows * W * D);
  b.fill(state_queries, 0.0f, windows * W * D);
  DeviceArray token_rows = state_queries.slice(0, n);
  b.linear(u, layer.token_state_q.weight, layer.token_state_q.bias, token_rows, L, D, D);
  u = {};

  // Token self-attention over the band, then W_o.
  {
    DeviceArray attended = b.alloc(n);
    b.attention(call, q, k, v, attended);
    b.merge_heads(attended, projected, 1, L, H, d);
  }
  DeviceArray out = b.alloc(n);
  b.linear(projected, layer.w_o.weight, layer.w_o.bias, out, L, D, D);

  // The states, window by window: the keys and values of s_w go to slot w.
  DeviceArray state_keys = b.alloc(windows * SD), state_values = b.alloc(windows * SD);
  DeviceArray state = b.alloc(SD), s_hat = b.alloc(SD), q_self = b.alloc(SD), q_tokens = b.alloc(SD);
  DeviceArray qh = b.alloc(SD), kh = b.alloc(SD), vh = b.alloc(SD), attended = b.alloc(SD);
  DeviceArray a_ss = b.alloc(SD), a_st = b.alloc(SD), z = b.alloc(SD), logits = b.alloc(SD), input_logits = b.alloc(SD);
  DeviceArray scratch = b.alloc(SD);
  const std::int64_t span = std::min(2 * W, L);
  DeviceArray token_keys = b.alloc(H * span * d), token_values = b.alloc(H * span * d);
  b.axpby(state, 0.0f, layer.initial_state, 1.0f, SD);
  const float fixed_gate = 1.0f / (1.0f + std::exp(-layer.gate_bias));
  for (std::int64_t w = 0; w < windows; ++w) {
    check_cancelled(cancel);
    b.layer_norm(state, layer.norm_state.gamma, layer.norm_state.beta, kNormEps, s_hat, S, D);
    b.axpby(s_hat, 1.0f, layer.state_position, 1.0f, SD);
    DeviceArray ks = state_keys.slice(w * SD, SD), vs = state_values.slice(w * SD, SD);
    b.linear(s_hat, layer.state_k.weight, layer.state_k.bias, ks, S, D, D);
    b.linear(s_hat, layer.state_v.weight, layer.state_v.bias, vs, S, D, D);
    b.linear(s_hat, layer.state_q_self.weight, layer.state_q_self.bias, q_self, S, D, D);
    b.linear(s_hat, layer.state_q_tokens.weight, layer.state_q_tokens.bias, q_tokens, S, D, D);
    // a_ss: every state over every state.
    b.split_heads(q_self, qh, 1, S, H, d);
    b.split_heads(ks, kh, 1, S, H, d);
    b.split_heads(vs, vh, 1, S, H, d);
    b.cross_attention(qh, kh, vh, attended, H, S, S, d);
    b.merge_heads(attended, a_ss, 1, S, H, d);
    // a_st: every state over the tokens of windows w − 1 and w, no mask.
    const std::int64_t k0 = std::max<std::int64_t>(0, (w - 1) * W), k1 = std::min(L, (w + 1) * W);
    b.copy_rows(k, H, L, k0, k1 - k0, d, token_keys);
    b.copy_rows(v, H, L, k0, k1 - k0, d, token_values);
    b.split_heads(q_tokens, qh, 1, S, H, d);
    b.cross_attention(qh, token_keys, token_values, attended, H, S, k1 - k0, d);
    b.merge_heads(attended, a_st, 1, S, H, d);
    // z and the gate.
    two_part_linear(a_ss, a_st, layer.state_projection, z, scratch, S);
    if (layer.gate == "fixed") {
      b.axpby(state, fixed_gate, z, 1.0f - fixed_gate, SD);
    } else if (layer.gate == "full") {
      two_part_linear(a_ss, a_st, layer.gate_full, logits, scratch, S);
      b.gate_state(state, logits, nullptr, z, SD);
    } else {
      two_part_linear(a_ss, a_st, layer.gate_forget, logits, scratch, S);
      two_part_linear(a_ss, a_st, layer.gate_input, input_logits, scratch, S);
      b.gate_state(state, logits, &input_logits, z, SD);
    }
  }

  // The tokens of every window read that window's state: one batched attention over the windows.
  DeviceArray queries = b.alloc(windows * W * D), keys = b.alloc(windows * SD), values = b.alloc(windows * SD);
  b.split_heads(state_queries, queries, windows, W, H, d);
  b.split_heads(state_keys, keys, windows, S, H, d);
  b.split_heads(state_values, values, windows, S, H, d);
  state_keys = {};
  state_values = {};
  DeviceArray read = b.alloc(windows * W * D);
  b.cross_attention(queries, keys, values, read, windows * H, W, S, d);
  b.merge_heads(read, state_queries, windows, W, H, d);  // [windows·W, D]: the first L rows are the tokens'
  b.linear(state_queries.slice(0, n), layer.token_state_o.weight, layer.token_state_o.bias, projected, L, D, D);
  b.axpby(out, 1.0f, projected, 1.0f, n);
  return out;
}

DeviceArray DeviceModel::feed_forward_block(const Layer& layer, const DeviceArray& x, std::int64_t L,
                                            std::int64_t row_chunk) const {
  ComputeBackend& b = *backend_;
  const std::int64_t D = config_.d_model, F = config_.d_ff;
  const std::int64_t chunk = std::clamp<std::int64_t>(row_chunk, 1, L);
  DeviceArray out = b.alloc(L * D), u = b.alloc(chunk * D), hidden = b.alloc(chunk * F);
  for (std::int64_t r0 = 0; r0 < L; r0 += chunk) {
    const std::int64_t rows = std::min(chunk, L - r0);
    b.layer_norm(x.slice(r0 * D, rows * D), layer.norm_ff.gamma, layer.norm_ff.beta, kNormEps, u, rows, D);
    b.linear(u, layer.up.weight, layer.up.bias, hidden, rows, D, F);
    b.gelu(hidden, rows * F);
    DeviceArray dst = out.slice(r0 * D, rows * D);
    b.linear(hidden, layer.down.weight, layer.down.bias, dst, rows, F, D);
  }
  return out;
}

DeviceForward DeviceModel::forward(const std::vector<std::int32_t>& ids, const DeviceRunOptions& options) const {
  const auto L = static_cast<std::int64_t>(ids.size());
  if (L == 0) throw ParamError("the input has no tokens");
  if (L > config_.max_length)
    throw ParamError("the input has " + std::to_string(L) + " tokens; model '" + config_.name + "' takes at most " +
                     std::to_string(config_.max_length));
  for (std::int64_t p = 0; p < L; ++p) {
    const std::int32_t id = ids[static_cast<std::size_t>(p)];
    if (id < 0 || id >= config_.vocab_size)
      throw ParamError("token id " + std::to_string(id) + " at position " + std::to_string(p) +
                       " is outside the vocabulary [0, " + std::to_string(config_.vocab_size) + ")");
  }
  const std::string why = unsupported(options, L);
  if (!why.empty()) throw ParamError(why);
  const Params inherited = options.params ? *options.params : Params(options.variant->spec().params);

  ComputeBackend& b = *backend_;
  const std::int64_t D = config_.d_model, n = L * D;
  b.reset_peak();
  const std::int64_t before = b.bytes_in_use();
  b.start_timer();
  DeviceArray x = b.alloc(n);
  b.embed(ids, embedding_, D, x);
  for (std::size_t i = 0; i < layers_.size();) {
    if (!layers_[i].reversible) {
      check_cancelled(options.cancel);
      const Layer& layer = layers_[i];
      const AttentionCall call = call_for(i, options, inherited, L);
      b.axpby(x, 1.0f,
              layer.recurrent ? recurrent_block(layer, call, x, L, options.cancel) : attention_block(layer, call, x, L),
              1.0f, n);
      if (layer.has_ff) b.axpby(x, 1.0f, feed_forward_block(layer, x, L, options.row_chunk), 1.0f, n);
      ++i;
      continue;
    }
    // A run of reversible layers: two streams, merged by their mean at the end of the run.
    DeviceArray x1 = x, x2 = b.alloc(n);
    b.axpby(x2, 0.0f, x, 1.0f, n);
    for (; i < layers_.size() && layers_[i].reversible; ++i) {
      check_cancelled(options.cancel);
      const Layer& layer = layers_[i];
      b.axpby(x1, 1.0f, attention_block(layer, call_for(i, options, inherited, L), x2, L), 1.0f, n);
      check_cancelled(options.cancel);
      if (layer.has_ff) b.axpby(x2, 1.0f, feed_forward_block(layer, x1, L, options.row_chunk), 1.0f, n);
    }
    b.axpby(x1, 0.5f, x2, 0.5f, n);
    x = x1;
  }
  DeviceArray y = b.alloc(n);
  b.layer_norm(x, final_norm_.gamma, final_norm_.beta, kNormEps, y, L, D);
  x = {};
  DeviceForward result;
  result.ms = b.stop_timer();
  result.peak_bytes = b.peak_bytes() - before;
  if (options.download_hidden) {
    result.hidden.resize(L, D);
    b.download(y, n, result.hidden.data());
  }
  return result;
}

}  // namespace attnlab::gpu
