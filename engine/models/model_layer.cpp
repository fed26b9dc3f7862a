#include "models/model_layer.h"

#include "attention/registry.h"
#include "core/error.h"
#include "models/layer_types.h"
#include "core/rng.h"

namespace attnlab {
namespace {

template <typename Part>
Part seed_part(const LayerSpec& spec, const ModelConfig& c, std::uint64_t seed) {
  return Part::seeded(c.d_model, c.heads, c.d_ff, schema_params(Part::schema(), spec.params), seed);
}

}  // namespace

ModelLayer ModelLayer::seeded(const LayerSpec& spec, const ModelConfig& c, std::uint64_t seed) {
  ModelLayer layer;
  layer.spec_ = spec;
  layer.d_model_ = c.d_model;
  layer.heads_ = c.heads;
  layer.d_ff_ = c.d_ff;
  if (spec.attention != "inherit") {
    layer.own_variant_ = &Registry::builtin().get(spec.attention);
    layer.own_params_ = std::make_shared<const Params>(
        schema_params(layer.own_variant_->spec().params, spec.attention_params));
  }
  // Seeds keep the plain encoder's stream names, so a plain stack draws the same weights as before.
  const auto attention_mixer = [&] {
    return AttentionMixer{LayerNorm::identity(c.d_model),
                          MultiHeadAttention::seeded(c.d_model, c.heads, Rng::derive(seed, "attention"), c.qk_gain),
                          std::nullopt};
  };
  const std::string& type = spec.type;
  if (type == "transformer") {
    AttentionMixer m = attention_mixer();
    const Params p = schema_params(layer_type("transformer").params, spec.params);
    if (p.get_choice("qkv") == "sparse") {
      Params qkv(SparseQkv::schema());
      for (const ParamSpec& s : SparseQkv::schema()) qkv.set(s.key, p.get(s.key));
      m.sparse_qkv = SparseQkv::seeded(c.d_model, c.heads, c.d_ff, qkv, Rng::derive(seed, "sparse_qkv"));
    }
    layer.mixer_ = std::move(m);
  }
  else if (type == "universal") layer.mixer_ = UniversalMixer{attention_mixer(), seed_part<AdaptiveComputationTime>(spec, c, Rng::derive(seed, "act"))};
  else if (type == "block_recurrent") layer.mixer_ = seed_part<BlockRecurrentLayer>(spec, c, Rng::derive(seed, "mixer"));
  else if (type == "perceiver_ar") layer.mixer_ = seed_part<PerceiverArLayer>(spec, c, Rng::derive(seed, "mixer"));
  else if (type == "infinity_former") layer.mixer_ = seed_part<InfinityMemoryLayer>(spec, c, Rng::derive(seed, "mixer"));
  else if (type == "mega") layer.mixer_ = seed_part<MegaLayer>(spec, c, Rng::derive(seed, "mixer"));
  else if (type == "gss") layer.mixer_ = seed_part<GssLayer>(spec, c, Rng::derive(seed, "mixer"));
  else throw ParamError("unknown layer type '" + type + "'");

  layer.norm_ff_ = LayerNorm::identity(c.d_model);
  const std::uint64_t ff_seed = Rng::derive(seed, "feed_forward");
  if (spec.ffn == "dense") layer.ff_ = FeedForward::seeded(c.d_model, c.d_ff, ff_seed);
  else if (spec.ffn == "moe")
    layer.ff_ = MoeFeedForward::seeded(c.d_model, c.heads, c.d_ff, schema_params(MoeFeedForward::schema(), spec.ffn_params), ff_seed);
  else if (spec.ffn == "sparse_ff")
    layer.ff_ = SparseFeedForward::seeded(c.d_model, c.heads, c.d_ff,
                                          schema_params(SparseFeedForward::schema(), spec.ffn_params), ff_seed);
  else if (spec.ffn != "none") throw ParamError("unknown feed-forward kind '" + spec.ffn + "'");
  return layer;
}

void ModelLayer::visit_weights(const std::string& prefix, WeightTable& table) {
  const std::int64_t D = d_model_;
  std::visit(
      [&](auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, AttentionMixer>) {
          table.norm(prefix + "norm_attention", m.norm, D);
          if (m.sparse_qkv) {
            m.sparse_qkv->visit_weights(prefix + "attention.sparse_qkv.", table);
            table.linear(prefix + "attention.w_o", m.attention.w_o, D, D);
          } else {
            table.attention(prefix + "attention", m.attention, D);
          }
        } else if constexpr (std::is_same_v<M, UniversalMixer>) {
          table.norm(prefix + "norm_attention", m.block.norm, D);
          table.attention(prefix + "attention", m.block.attention, D);
          m.act.visit_weights(prefix + "act.", table);
        } else {
          m.visit_weights(prefix + "mixer.", table);
        }
      },
      mixer_);
  if (std::holds_alternative<std::monostate>(ff_)) return;
  table.norm(prefix + "norm_ff", norm_ff_, D);
  std::visit(
      [&](auto& f) {
        using F = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<F, FeedForward>) table.feed_forward(prefix + "ff", f, D, d_ff_);
        else if constexpr (!std::is_same_v<F, std::monostate>) f.visit_weights(prefix + "ff.", table);
      },
      ff_);
}

std::string ModelLayer::variant_name(const std::string& inherited) const {
  switch (layer_type(spec_.type).attention) {
    case LayerAttention::Variant: return own_variant_ ? own_variant_->spec().name : inherited;
    case LayerAttention::Own: return spec_.type;
    case LayerAttention::None: return "none";
  }
  return inherited;
}

AttentionOptions ModelLayer::resolved(const AttentionOptions& options) const {
  AttentionOptions o = options;
  if (own_variant_) {
    o.variant = own_variant_;
    o.params = own_params_.get();
  }
  return o;
}

RowMatrix ModelLayer::attend(const AttentionMixer& m, const RowMatrix& x, const AttentionOptions& options,
                             Trace* trace) const {
  if (!m.sparse_qkv) return m.attention.forward(m.norm.forward(x), options, trace);
  // Sparse Q/K/V: the same attention call and output projection, other projections.
  if (!options.variant) throw ParamError("multi-head attention needs an attention variant");
  const SparseQkv::Projections p = m.sparse_qkv->project(m.norm.forward(x));
  const Tensor q = split_heads(p.q, heads_), k = split_heads(p.k, heads_), v = split_heads(p.v, heads_);
  const AttentionInput input{q, k, v, options.causal, options.key_padding, options.params, options.seed, options.cancel};
  const Tensor attended = run_attention(*options.variant, input, trace);
  if (options.probe) options.probe->observe(options.layer, input, attended, trace);
  return m.attention.w_o.forward(merge_heads(attended));
}

RowMatrix ModelLayer::feed_forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  return std::visit(
      [&](const auto& f) -> RowMatrix {
        using F = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<F, std::monostate>) {
          return RowMatrix::Zero(x.rows(), x.cols());
        } else if constexpr (std::is_same_v<F, FeedForward>) {
          return f.forward(norm_ff_.forward(x));
        } else {
          return f.forward(norm_ff_.forward(x), Rng::derive(options.seed, "feed_forward"), trace);
        }
      },
      ff_);
}

RowMatrix ModelLayer::forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  const AttentionOptions o = resolved(options);
  const bool has_ff = !std::holds_alternative<std::monostate>(ff_);
  RowMatrix h = std::visit(
      [&](const auto& m) -> RowMatrix {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, AttentionMixer>) {
          return x + attend(m, x, o, trace);
        } else if constexpr (std::is_same_v<M, UniversalMixer>) {
          // One shared block; the trace keeps the attention of the first step and the FFN parts'
          // extras of the first step too (later steps would repeat them).
          const auto block = [&](const RowMatrix& s, int step) -> RowMatrix {
            Trace* step_trace = step == 0 ? trace : nullptr;
            AttentionOptions so = o;
            so.seed = Rng::derive(o.seed, static_cast<std::uint64_t>(step));
            if (step != 0) so.probe = nullptr;
            RowMatrix b = s + attend(m.block, s, so, step_trace);
            check_cancelled(o.cancel);
            if (has_ff) b += feed_forward(b, so, step_trace);
            return b;
          };
          return m.act.run(x, block, o.cancel, trace);
        } else {
          return m.forward(x, o, trace);
        }
      },
      mixer_);
  if (std::holds_alternative<UniversalMixer>(mixer_) || !has_ff) return h;
  check_cancelled(o.cancel);
  h += feed_forward(h, o, trace);
  return h;
}

RowMatrix ModelLayer::reversible_f(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  const auto* m = std::get_if<AttentionMixer>(&mixer_);
  if (!m) throw ParamError("layer type '" + spec_.type + "' cannot run in a reversible stack");
  return attend(*m, x, resolved(options), trace);
}

RowMatrix ModelLayer::reversible_g(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  return feed_forward(x, resolved(options), trace);
}

}  // namespace attnlab
