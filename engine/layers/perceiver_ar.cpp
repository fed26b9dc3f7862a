#include "layers/perceiver_ar.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/cancel.h"
#include "core/error.h"
#include "core/rng.h"
#include "layers/masked_softmax.h"

namespace attnlab {
namespace {

constexpr std::int64_t kQueryBlock = 64;  // latents per cross-attention task
constexpr std::int64_t kRowChunk = 256;   // rows per key/value projection task

using ConstRows = Eigen::Ref<const RowMatrix>;
using Rows = Eigen::Ref<RowMatrix>;

// Receives (head, probabilities [rows, keys]) of every head, in trace mode.
using WeightSink = std::function<void(std::int64_t, const ConstRows&)>;

// Cross-attention of a block of latent queries [rows, D] (the first at absolute position
// `first_position`) over the keys and values [keys, D] of positions 0 .. keys − 1: query row r
// sees the keys up to first_position + r. Head h uses columns h·d .. h·d + d − 1.
void cross_attend(const ConstRows& q, const ConstRows& k, const ConstRows& v, std::int64_t heads,
                  std::int64_t first_position, const std::uint8_t* hidden, Rows scratch, Rows out,
                  const WeightSink* sink) {
  const std::int64_t rows = q.rows(), keys = k.rows(), d = q.cols() / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  auto p = scratch.topLeftCorner(rows, keys);
  for (std::int64_t h = 0; h < heads; ++h) {
    p.noalias() = (q.middleCols(h * d, d) * k.middleCols(h * d, d).transpose()) * scale;
    for (std::int64_t r = 0; r < rows; ++r) masked_softmax(p.row(r), std::min(keys, first_position + r + 1), hidden);
    out.middleCols(h * d, d).noalias() = p * v.middleCols(h * d, d);
    if (sink) (*sink)(h, p);
  }
}

}  // namespace

nlohmann::json PerceiverTrace::to_json() const {
  nlohmann::json j;
  j["kind"] = "perceiver";
  j["latents"] = latents;
  j["prefix_length"] = prefix_length;
  j["cross_weights"] = tensor_to_json(cross_weights);
  j["prefix_mass"] = tensor_to_json(prefix_mass);
  j["recent_mass"] = tensor_to_json(recent_mass);
  j["latent_weights"] = tensor_to_json(latent_weights);
  j["dropped_prefix"] = dropped_prefix;
  return j;
}

const std::vector<ParamSpec>& PerceiverArLayer::schema() {
  static const std::vector<ParamSpec> specs = {
      ParamSpec::integer("latents", "Latents N", 64, 1, 65536,
                         "The last N positions are latents (queries of the cross-attention); the rest is the prefix"),
      ParamSpec::integer("latent_layers", "Latent layers", 1, 0, 48,
                         "Causal self-attention layers (with FFN) over the latents after the cross-attention"),
      ParamSpec::real("prefix_dropout", "Prefix dropout", 0.0, 0.0, 0.9,
                      "Fraction of prefix keys hidden from the cross-attention, drawn from the seed (0: none)"),
  };
  return specs;
}

PerceiverArLayer PerceiverArLayer::seeded(std::int64_t d_model, std::int64_t heads, std::int64_t d_ff,
                                          const Params& params, std::uint64_t seed) {
  check_layer_sizes(d_model, heads, d_ff);
  PerceiverArLayer l;
  l.d_model = d_model;
  l.heads = heads;
  l.d_ff = d_ff;
  l.latents = params.get_int("latents");
  l.prefix_dropout = params.get_float("prefix_dropout");
  l.norm_cross = LayerNorm::identity(d_model);
  l.cross_attention = MultiHeadAttention::seeded(d_model, heads, Rng::derive(seed, "cross_attention"));
  l.norm_ff = LayerNorm::identity(d_model);
  l.feed_forward = FeedForward::seeded(d_model, d_ff, Rng::derive(seed, "feed_forward"));
  const std::int64_t depth = params.get_int("latent_layers");
  for (std::int64_t i = 0; i < depth; ++i) {
    l.latent_layers.push_back(
        EncoderLayer::seeded(d_model, heads, d_ff, Rng::derive(seed, "latent_layer" + std::to_string(i))));
  }
  return l;
}

void PerceiverArLayer::visit_weights(const std::string& prefix, WeightTable& table) {
  const std::int64_t D = d_model;
  table.norm(prefix + "norm_cross", norm_cross, D);
  table.attention(prefix + "cross_attention", cross_attention, D);
  table.norm(prefix + "norm_ff", norm_ff, D);
  table.feed_forward(prefix + "feed_forward", feed_forward, D, d_ff);
  for (std::size_t i = 0; i < latent_layers.size(); ++i) {
    const std::string name = prefix + "latent_layers." + std::to_string(i) + ".";
    EncoderLayer& layer = latent_layers[i];
    table.norm(name + "norm_attention", layer.norm_attention, D);
    table.attention(name + "attention", layer.attention, D);
    table.norm(name + "norm_ff", layer.norm_ff, D);
    table.feed_forward(name + "feed_forward", layer.feed_forward, D, d_ff);
  }
}

RowMatrix PerceiverArLayer::forward(const RowMatrix& x, const AttentionOptions& options, Trace* trace) const {
  const std::int64_t L = x.rows(), D = d_model, H = heads;
  if (x.cols() != D) {
    throw ShapeError("Perceiver AR layer expects [L, " + std::to_string(D) + "] input, got [" + std::to_string(L) +
                     ", " + std::to_string(x.cols()) + "]");
  }
  if (L == 0) throw ShapeError("Perceiver AR layer needs at least one token, got [0, " + std::to_string(x.cols()) + "]");
  if (!x.allFinite()) throw ShapeError("Perceiver AR layer input holds a non-finite value (NaN or infinity)");
  if (options.key_padding && static_cast<std::int64_t>(options.key_padding->size()) != L) {
    throw ShapeError("key padding mask has " + std::to_string(options.key_padding->size()) + " entries but there are " +
                     std::to_string(L) + " tokens");
  }
  const std::int64_t N = std::min(latents, L), Lp = L - N;

  // Keys hidden from the cross-attention: padded ones and dropped prefix keys.
  std::vector<std::uint8_t> hidden;
  std::vector<std::int64_t> dropped;
  if (options.key_padding) hidden = *options.key_padding;
  if (prefix_dropout > 0.0 && Lp > 0) {
    hidden.resize(static_cast<std::size_t>(L), 0);
    Rng rng(Rng::derive(options.seed, "perceiver_ar/prefix_dropout"));
    for (std::int64_t j = 0; j < Lp; ++j) {
      if (rng.uniform() < prefix_dropout) {
        hidden[static_cast<std::size_t>(j)] = 1;
        dropped.push_back(j);
      }
    }
  }
  const std::uint8_t* hidden_keys = hidden.empty() ? nullptr : hidden.data();

  // Keys and values of every position, from LN_c(x): [L, D].
  Tensor keys = Tensor::uninitialized({L, D});
  Tensor values = Tensor::uninitialized({L, D});
  auto K = keys.matrix(), V = values.matrix();
  {
    const std::int64_t chunks = (L + kRowChunk - 1) / kRowChunk;
    std::atomic<bool> cancelled{false};
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t c = 0; c < chunks; ++c) {
      if (cancelled.load(std::memory_order_relaxed) || (options.cancel && options.cancel->cancelled())) {
        cancelled.store(true, std::memory_order_relaxed);
        continue;
      }
      const std::int64_t r0 = c * kRowChunk, n = std::min(kRowChunk, L - r0);
      const RowMatrix u = norm_cross.forward(x.middleRows(r0, n));
      K.middleRows(r0, n).noalias() = u * cross_attention.w_k.weight;
      K.middleRows(r0, n).rowwise() += cross_attention.w_k.bias;
      V.middleRows(r0, n).noalias() = u * cross_attention.w_v.weight;
      V.middleRows(r0, n).rowwise() += cross_attention.w_v.bias;
    }
    if (cancelled.load()) throw CancelledError();
  }
  const RowMatrix q = cross_attention.w_q.forward(norm_cross.forward(x.bottomRows(N)));  // [N, D]

  std::shared_ptr<PerceiverTrace> extras;
  Tensor weights;
  if (trace) {
    extras = std::make_shared<PerceiverTrace>();
    extras->latents = N;
    extras->prefix_length = Lp;
    extras->cross_weights = Tensor({H, N, L});
    extras->prefix_mass = Tensor({H, N});
    extras->recent_mass = Tensor({H, N});
    extras->latent_weights = Tensor({static_cast<std::int64_t>(latent_layers.size()), H, N, N});
    extras->dropped_prefix = dropped;
    weights = Tensor({H, L, L});
  }

  // Cross-attention, one block of latents per task: [N, D].
  RowMatrix attended(N, D);
  {
    const std::int64_t blocks = (N + kQueryBlock - 1) / kQueryBlock;
    Tensor scratch = Tensor::uninitialized({std::max(1, omp_get_max_threads()), kQueryBlock, L});
    std::atomic<bool> cancelled{false};
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t b = 0; b < blocks; ++b) {
      if (cancelled.load(std::memory_order_relaxed) || (options.cancel && options.cancel->cancelled())) {
        cancelled.store(true, std::memory_order_relaxed);
        continue;
      }
      const std::int64_t i0 = b * kQueryBlock, rows = std::min(kQueryBlock, N - i0);
      const std::int64_t visible_keys = Lp + i0 + rows;  // the block's last latent sees them all
      WeightSink sink;
      if (extras) {
        sink = [&](std::int64_t h, const ConstRows& p) {
          for (std::int64_t r = 0; r < rows; ++r) {
            Eigen::Map<RowVector>(&extras->cross_weights.at(h, i0 + r, 0), visible_keys) = p.row(r);
            Eigen::Map<RowVector>(&weights.at(h, Lp + i0 + r, 0), visible_keys) = p.row(r);
            extras->prefix_mass.at(h, i0 + r) = Lp > 0 ? p.row(r).head(Lp).sum() : 0.0f;
            extras->recent_mass.at(h, i0 + r) = p.row(r).segment(Lp, i0 + r + 1).sum();
          }
        };
      }
      cross_attend(q.middleRows(i0, rows), K.topRows(visible_keys), V.topRows(visible_keys), H, Lp + i0, hidden_keys,
                   scratch.matrix(omp_get_thread_num()), attended.middleRows(i0, rows), extras ? &sink : nullptr);
    }
    if (cancelled.load()) throw CancelledError();
  }

  RowMatrix z = x.bottomRows(N);
  z.noalias() += attended * cross_attention.w_o.weight;
  z.rowwise() += cross_attention.w_o.bias;
  z += feed_forward.forward(norm_ff.forward(z));

  // Causal self-attention layers over the latents, with the layer's attention variant.
  std::vector<std::uint8_t> latent_padding;
  if (options.key_padding) latent_padding.assign(options.key_padding->begin() + Lp, options.key_padding->end());
  for (std::size_t i = 0; i < latent_layers.size(); ++i) {
    check_cancelled(options.cancel);
    AttentionOptions latent_options = options;
    latent_options.causal = true;
    latent_options.key_padding = options.key_padding ? &latent_padding : nullptr;
    latent_options.seed = Rng::derive(options.seed, "latent_layer" + std::to_string(i));
    Trace latent_trace;
    z = latent_layers[i].forward(z, latent_options, trace ? &latent_trace : nullptr);
    if (extras && latent_trace.weights.shape() == Shape{H, N, N}) {
      std::copy(latent_trace.weights.data(), latent_trace.weights.data() + latent_trace.weights.size(),
                extras->latent_weights.data() + static_cast<std::int64_t>(i) * H * N * N);
    }
  }

  RowMatrix out = x;  // the prefix rows stay as they came
  out.bottomRows(N) = z;
  if (trace) {
    trace->weights = std::move(weights);
    trace->layer_extras.push_back(std::move(extras));
  }
  return out;
}

}  // namespace attnlab
