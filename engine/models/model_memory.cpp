#include "models/model_memory.h"

#include <omp.h>

#include <algorithm>

#include "attention/registry.h"
#include "core/error.h"
#include "models/layer_types.h"

namespace attnlab {
namespace {

// The runtime's own scratch that a forward pass touches whatever the length: Eigen's GEMM
// packing buffers and the per-thread blocks of the layers (a few MiB, measured on presets).
constexpr std::int64_t kRuntimeBytes = std::int64_t{4} << 20;
constexpr std::int64_t kRuntimeBytesPerThread = std::int64_t{1} << 20;
// Perceiver AR scores a block of 64 latents against every key per thread.
constexpr std::int64_t kPerceiverQueryBlock = 64;
// Block-recurrent layers keep the states of at most this many floats of windows at once.
constexpr std::int64_t kBlockRecurrentStateBudget = std::int64_t{1} << 22;

struct LayerCost {
  std::int64_t running = 0;  // held while the layer runs, beyond the hidden state it reads
  std::int64_t kept = 0;     // its trace, held to the end of the pass
};

class Estimator {
 public:
  Estimator(const ModelConfig& c, std::int64_t length, bool trace, const ForwardMemoryOptions& o)
      : c_(c), L_(length), D_(c.d_model), H_(c.heads), trace_(trace), causal_(o.causal),
        inherited_(o.variant ? o.variant : &Registry::builtin().get("softmax")), inherited_params_(o.params) {}

  std::int64_t activation(std::int64_t rows = -1) const { return float_bytes((rows < 0 ? L_ : rows) * D_); }

  // One multi-head attention call over `rows` tokens: q, k, v [H, rows, d] and the variant's
  // own cost (its output included); with a trace, what it leaves in the trace.
  LayerCost attention_call(const LayerSpec& spec, std::int64_t rows, bool causal) const {
    const Attention* variant = inherited_;
    Params own;
    const Params* params = inherited_params_;
    if (spec.attention != "inherit") {
      variant = &Registry::builtin().get(spec.attention);
      own = schema_params(variant->spec().params, spec.attention_params);
      params = &own;
    }
    const Params defaults(variant->spec().params);
    if (!params) params = &defaults;
    const std::int64_t d = D_ / H_;
    const AttentionShape shape{H_, rows, rows, d, d, causal, trace_};
    const std::int64_t workspace = variant->workspace_bytes(shape, *params);
    LayerCost cost{float_bytes(3 * H_ * rows * d) + workspace, 0};
    if (trace_) cost.kept = workspace - float_bytes(H_ * rows * d);  // the weights and extras outlive the call
    return cost;
  }

  // The layer's mixer, then its feed-forward part (whichever holds more while it runs).
  LayerCost layer(const LayerSpec& spec) const {
    const std::int64_t A = activation();
    const std::int64_t weights = trace_ ? float_bytes(H_ * L_ * L_) : 0;
    LayerCost mixer;
    if (spec.type == "transformer" || spec.type == "universal") {
      mixer = attention_call(spec, L_, causal_);
      // The norm, one projection at a time, the merged heads and the output projection; ACT
      // also carries its state, its accumulated output and the halting sums.
      mixer.running += (spec.type == "universal" ? 12 : 4) * A;
    } else if (spec.type == "block_recurrent") {
      const Params p = schema_params(layer_type(spec.type).params, spec.params);
      const bool recurrent = p.get_bool("recurrent");
      const std::int64_t S = p.get_int("state_size"), W = p.get_int("window");
      const std::int64_t windows = (L_ + W - 1) / W;
      const std::int64_t group = recurrent ? std::clamp<std::int64_t>(kBlockRecurrentStateBudget / (S * D_), 1, windows) : 0;
      // q, k, v and the attended rows (plus the state queries and state reads when recurrent),
      // the states of a group of windows; the output and a chunk's norm in Eigen.
      mixer.running = (recurrent ? 6 : 4) * A + float_bytes(2 * group * S * D_) + 3 * A;
      if (trace_) mixer.kept = weights + (recurrent ? float_bytes(windows * S * (D_ + 3 * W + 4)) : 0);
    } else if (spec.type == "perceiver_ar") {
      const Params p = schema_params(layer_type(spec.type).params, spec.params);
      const std::int64_t N = std::min(p.get_int("latents"), L_), layers = p.get_int("latent_layers");
      const std::int64_t threads = std::max(1, omp_get_max_threads());
      LayerSpec latent = spec;
      latent.type = "transformer";
      const LayerCost latent_call = attention_call(latent, N, true);
      // Cross-attention keys and values [L, D], per-thread scores [64, L]; the input copied to
      // the output; the latent layers' attention and feed-forward parts over N rows.
      const std::int64_t latent_layer = std::max(latent_call.running, 2 * float_bytes(N * c_.d_ff)) + 4 * activation(N);
      mixer.running = 2 * A + float_bytes(threads * kPerceiverQueryBlock * L_) + std::max(latent_layer, 3 * A);
      if (trace_) mixer.kept = weights + float_bytes(H_ * N * L_ + layers * H_ * N * N) + layers * latent_call.kept;
    } else {
      // mega, gss, infinity_former: their own projections, moving averages, state-space
      // convolutions and segment attention, all linear in L.
      mixer.running = 20 * A;
      if (trace_) mixer.kept = 2 * weights;
    }
    LayerCost ff;
    if (spec.ffn != "none" && !layer_type(spec.type).own_feed_forward) {
      // The residual, the norm, up [L, d_ff] (GELU in place) and down, with room for a sparse
      // unit's selection; a mixture of experts also gathers and scatters its tokens.
      ff.running = 4 * A + (spec.ffn == "moe" ? 3 : 2) * float_bytes(L_ * c_.d_ff);
    }
    return LayerCost{std::max(mixer.running, ff.running), mixer.kept};
  }

  std::int64_t total() const {
    std::int64_t running = 0, kept = 0;
    bool reversible = false;
    for (const LayerSpec& spec : c_.layers) {
      const LayerCost cost = layer(spec);
      running = std::max(running, cost.running);
      kept += cost.kept;
      reversible = reversible || spec.reversible;
    }
    // The running hidden state and the layer's output; a reversible stack's two streams.
    const std::int64_t hidden = (reversible ? 4 : 2) * activation();
    const std::int64_t runtime = kRuntimeBytes + kRuntimeBytesPerThread * std::max(1, omp_get_max_threads());
    return hidden + running + kept + runtime;
  }

 private:
  const ModelConfig& c_;
  std::int64_t L_, D_, H_;
  bool trace_, causal_;
  const Attention* inherited_;
  const Params* inherited_params_;
};

}  // namespace

std::int64_t estimate_forward_bytes(const ModelConfig& config, std::int64_t length, bool trace,
                                    const ForwardMemoryOptions& options) {
  if (length < 1) throw ParamError("a model forward needs at least one token; got " + std::to_string(length));
  config.validate();
  return Estimator(config, length, trace, options).total();
}

}  // namespace attnlab
