// Performer FAVOR+ attention (Choromanski et al. 2021), registered as "performer".
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   per head h: W_h [m, d] from favor_seed(seed, h, redraw) — orthogonal blocks or i.i.d., rows
//   with Gaussian norms or √d (attention/feature_maps.h); x' = x·d^{−1/4}, a_f(x) = w_f·x' − ‖x'‖²/2
//   queries  φ(q)_f = m^{−1/2} (exp(a_f(q) − μ(q)) + ε)                 μ(x) = max_f a_f(x)
//   keys     φ(k)_f = m^{−1/2} (exp(a_f(k) − μ(k)) + ε), log scale μ(k)
//   kernel   κ_ij = e^{μ(k_j)} φ(q_i)·φ(k_j)   (∝ Σ_f e^{a_f(q_i) + a_f(k_j)}, whose mean over draws of W is
//            exp(q_i·k_j/√d) when ε = 0)
//   out_i = Σ_j κ_ij v_j / Σ_j κ_ij over visible keys (j <= i when causal): linear attention
//   (attention/linear.h) with the key log scales, by chunked prefix sums when causal.
//   weights (trace): the implied normalised matrix A_ij = κ_ij / Σ_j' κ_ij'; out = A·V.
//
// References: google-research performer/fast_attention/jax/fast_attention.py (FAVOR+, orthogonal
// Gaussian matrix, stabilisers) and lucidrains/performer-pytorch. Where we differ or choose:
//   - Stabilisers. The reference subtracts the row maximum per query (which cancels in the
//     normalisation) and, for keys, one maximum over all features and positions, then adds
//     ε = 1e-4. With ε > 0 that key maximum does not cancel: the effective kernel of every key
//     depends on the largest key anywhere, so in causal mode earlier outputs depend on later
//     tokens. We stabilise each key by its own maximum μ(k) (ε thus relative to the key's own
//     largest feature, like the query's) and carry μ(k) as a log scale that the kernel applies
//     relative to the running maximum of the visible keys (linear.h), which cancels exactly.
//     With ε = 0 both give the same weights; with ε = 1e-4 they differ only in that ε term.
//   - No ε in the denominator (the official code has none; lucidrains adds 1e-6 in causal mode):
//     features are strictly positive, so a query with a visible key has a positive denominator.
//   - Features: orthogonal blocks from the QR of Gaussian d×d matrices (Q's signs fixed, so Q is
//     Haar), norms of Gaussian vectors (scaling = 0, the default) or √d (scaling = 1); i.i.d.
//     features are Gaussian rows as drawn.
//   - Each head draws its own W (the reference shares one W across heads); `redraw` picks the draw.
//     The official code redraws every call; here features change only with the seed or `redraw`,
//     so a figure is reproducible.
//
// Fast path: features O(L·m·d) (GEMMs per head and block of rows, in parallel), then linear
// attention O(L·m·dv); memory O(L·m) for the features plus O(L·m·dv / 64) for chunk states.
#include "attention/performer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "attention/linear.h"
#include "attention/variants.h"
#include "core/error.h"

namespace attnlab {

nlohmann::json PerformerExtras::to_json() const {
  nlohmann::json j;
  j["kind"] = "performer";
  j["causal"] = data_.causal;
  j["favor"] = data_.favor.to_json();
  j["states"] = recurrent_states_to_json(data_.states);
  j["state_log_scale"] = tensor_to_json(data_.state_log_scale);  // [H][T]
  return j;
}

namespace {

class PerformerAttention final : public Attention {
 public:
  PerformerAttention() {
    spec_.name = "performer";
    spec_.title = "Performer (FAVOR+)";
    spec_.paper = "Choromanski et al. 2021, Rethinking Attention with Performers (arXiv:2009.14794)";
    spec_.summary = "exp(q·k/√d) estimated by positive random features φ(q)·φ(k) (orthogonal by default): "
                    "linear in length; the error falls as 1/√m.";
    spec_.params = favor_param_specs();
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    const FavorSettings settings = favor_settings(*in.params);
    FavorFeatures favor = compute_favor_features(in.q, in.k, in.seed, settings, in.cancel);
    KernelFeatures kernel{std::move(favor.query), std::move(favor.key), std::move(favor.key_log_scale)};
    LinearAttentionOptions o;
    o.causal = in.causal;
    o.eps = 0.0f;
    o.key_padding = in.key_padding;
    o.cancel = in.cancel;
    Tensor out = linear_attention_chunked(kernel, in.v, o);
    if (!trace) return out;

    const std::int64_t H = in.q.dim(0), Lk = in.k.dim(1);
    PerformerExtras::Data data;
    data.causal = in.causal;
    trace->weights = linear_attention_weights(kernel, o);
    data.states = linear_attention_states(kernel, in.v, o,
                                          budgeted_snapshot_steps(Lk, H, settings.random.features * in.v.dim(2)),
                                          &data.state_log_scale);
    data.states.state_formula = "S_t = S_{t-1} + φ(k_t) v_tᵀ, z_t = z_{t-1} + φ(k_t), φ = FAVOR+ (stored ÷ e^{P_t})";
    data.states.key_axis = "random feature of φ(k)";
    data.states.value_axis = "value dimension";
    favor.query = std::move(kernel.query);
    favor.key = std::move(kernel.key);
    favor.key_log_scale = std::move(kernel.key_log_scale);
    data.favor = make_favor_trace(std::move(favor), settings, in.key_padding);
    trace->extras = std::make_shared<PerformerExtras>(std::move(data));
    return out;
  }

  // FAVOR+ features (W, φ(q), φ(k), log scales), held throughout, plus the chunked kernel with
  // F = m (linear.h). The trace adds, after the kernel's scratch is gone: the weights with their
  // temporaries, then the snapshot states with log scales, then W copied into the trace record.
  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override {
    const std::int64_t m = favor_settings(params).random.features;
    const std::int64_t features = favor_features_bytes(s.heads, s.lq, s.lk, s.d, m);
    const std::int64_t kernel = linear_attention_chunked_bytes(s.heads, s.lq, s.lk, m, s.dv, s.causal);
    if (!s.trace) return features + kernel;
    const std::int64_t out = float_bytes(s.heads * s.lq * s.dv);
    const auto steps = static_cast<std::int64_t>(budgeted_snapshot_steps(s.lk, s.heads, m * s.dv).size());
    const std::int64_t after = std::max({kernel - out, linear_attention_weights_bytes(s.heads, s.lq, s.lk),
                                         float_bytes(s.heads * s.lq * s.lk) +
                                             linear_attention_states_bytes(s.heads, steps, m, s.dv, true) +
                                             favor_trace_bytes(s.heads, s.d, m)});
    return features + out + after;
  }

 private:
  VariantSpec spec_;
};

}  // namespace

std::unique_ptr<Attention> make_performer_attention() { return std::make_unique<PerformerAttention>(); }

}  // namespace attnlab
