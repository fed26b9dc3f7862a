// DeltaNet: linear attention with the delta rule (Schlag, Irie, Schmidhuber 2021; Yang et al.
// 2024 chunkwise form), registered as "delta".
//
//   q: [H, L, d]  k: [H, L, d]  v: [H, L, dv]  ->  out: [H, L, dv]   (self-attention)
//   keys normalised to unit length, k̂_t = k_t / |k_t|; queries scaled, q̃_t = q_t / √d
//   fast weights W ∈ R^{dv × d}, W_0 = 0:
//       v̄_t = W_{t−1} k̂_t                      (what the memory returns for k̂_t)
//       W_t = W_{t−1} + β_t (v_t − v̄_t) k̂_tᵀ   (write the correction, strength β_t ∈ [0, 1])
//       y_t = W_t q̃_t                           (causal: the memory after token t)
//   Non-causal: every query reads the final memory, y_t = W_L q̃_t.
//   β_t: the constant `beta`, or a gate β_t = σ(w·k̂_t + b) with w, b seeded per head (`beta_mode`).
//
// The output is linear in the values, y_t = Σ_j A_tj v_j. Writing W_t = Σ_j v_j g_{t,j}ᵀ gives
// g_{t,j} = g_{t−1,j} − β_t (g_{t−1,j}·k̂_t) k̂_t for j < t and g_{t,t} = β_t k̂_t, so the trace's
// weights A_tj = g_{t,j}·q̃_t (or with t = L for non-causal queries). Unlike softmax, the delta rule
// subtracts: A can be negative and its rows do not sum to 1 — the trace holds this implied map as
// it is (like YOSO's kernel), not a normalised distribution.
//
// Chunkwise form (Yang et al. 2024, fla-org/flash-linear-attention delta_rule/naive.py): within a
// chunk of C tokens with incoming memory S (dv × d),
//   T = (I + tril(diag(β) K̂ K̂ᵀ, −1))⁻¹ (C × C, unit lower triangular: solved by substitution)
//   U = T (β ⊙ V),  Wk = T (β ⊙ K̂)                  pseudo-values and pseudo-keys
//   out = Q̃ Sᵀ + tril(Q̃ K̂ᵀ)(U − Wk Sᵀ),   S ← S + (U − Wk Sᵀ)ᵀ K̂
// which equals the token-by-token recurrence (tested to 1e-4) while doing matrix products per
// chunk. `chunk` = 0 runs the recurrence.
#include "attention/delta.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "attention/variants.h"
#include "core/error.h"
#include "core/rng.h"

namespace attnlab {
namespace {

constexpr std::int64_t kErrorPoints = 32;  // snapshots at which the retrieval error is evaluated

struct DeltaSettings {
  bool gate = false;
  double beta = 0.5;
  std::int64_t chunk = 0;
  bool causal = true;
};

// Unit-length keys and scaled queries of one head: [L, d].
RowMatrix normalised_keys(const Tensor& k, std::int64_t h) {
  RowMatrix kh = k.matrix(h);
  for (Eigen::Index i = 0; i < kh.rows(); ++i) {
    const float n = kh.row(i).norm();
    if (n > 0.0f) kh.row(i) /= n;
  }
  return kh;
}

// β for every token of head h: [L].
Eigen::VectorXf write_strengths(const RowMatrix& keys, const DeltaSettings& s, std::uint64_t seed, std::int64_t h) {
  Eigen::VectorXf beta(keys.rows());
  if (!s.gate) {
    beta.setConstant(static_cast<float>(s.beta));
    return beta;
  }
  Rng rng(Rng::derive(seed, "beta_gate/head" + std::to_string(h)));
  Eigen::VectorXf w(keys.cols());
  for (Eigen::Index c = 0; c < w.size(); ++c) w(c) = static_cast<float>(rng.normal());
  const float bias = static_cast<float>(rng.normal());
  for (Eigen::Index t = 0; t < keys.rows(); ++t) beta(t) = 1.0f / (1.0f + std::exp(-(keys.row(t).dot(w) + bias)));
  return beta;
}

// Token by token. out: [L, dv]; final memory returned. `snapshot(t, W)` sees the memory after t.
template <typename Snapshot>
RowMatrix recurrent(const RowMatrix& q, const RowMatrix& keys, const RowMatrix& v, const Eigen::VectorXf& beta,
                    bool causal, RowMatrix& out, Snapshot&& snapshot) {
  const Eigen::Index L = keys.rows(), d = keys.cols(), dv = v.cols();
  RowMatrix W = RowMatrix::Zero(dv, d);
  Eigen::VectorXf retrieved(dv);
  for (Eigen::Index t = 0; t < L; ++t) {
    retrieved.noalias() = W * keys.row(t).transpose();
    W.noalias() += beta(t) * (v.row(t).transpose() - retrieved) * keys.row(t);
    if (causal) out.row(t).noalias() = (W * q.row(t).transpose()).transpose();
    snapshot(t, W);
  }
  if (!causal) out.noalias() = q * W.transpose();
  return W;
}

// Chunkwise (WY) form; equal to recurrent() up to rounding.
RowMatrix chunkwise(const RowMatrix& q, const RowMatrix& keys, const RowMatrix& v, const Eigen::VectorXf& beta,
                    bool causal, std::int64_t chunk, RowMatrix& out) {
  const Eigen::Index L = keys.rows(), d = keys.cols(), dv = v.cols();
  RowMatrix S = RowMatrix::Zero(dv, d);
  for (Eigen::Index c0 = 0; c0 < L; c0 += chunk) {
    const Eigen::Index C = std::min<Eigen::Index>(chunk, L - c0);
    const auto K = keys.middleRows(c0, C);
    const auto V = v.middleRows(c0, C);
    const auto b = beta.segment(c0, C);
    // Solve (I + tril(diag(β) K Kᵀ, −1)) [U Wk] = [β⊙V  β⊙K] by forward substitution.
    const RowMatrix KK = K * K.transpose();
    RowMatrix U = b.asDiagonal() * V;
    RowMatrix Wk = b.asDiagonal() * K;
    for (Eigen::Index i = 0; i < C; ++i) {
      for (Eigen::Index j = 0; j < i; ++j) {
        const float a = b(i) * KK(i, j);
        U.row(i) -= a * U.row(j);
        Wk.row(i) -= a * Wk.row(j);
      }
    }
    const RowMatrix new_values = U - Wk * S.transpose();  // [C, dv]
    if (causal) {
      const auto Q = q.middleRows(c0, C);
      RowMatrix scores = Q * K.transpose();
      scores.triangularView<Eigen::StrictlyUpper>().setZero();
      out.middleRows(c0, C).noalias() = Q * S.transpose() + scores * new_values;
    }
    S.noalias() += new_values.transpose() * K;
  }
  if (!causal) out.noalias() = q * S.transpose();
  return S;
}

// The implied map A [L, L] with y = A v, from the g-vectors of the header comment.
void implied_weights(const RowMatrix& q, const RowMatrix& keys, const Eigen::VectorXf& beta, bool causal,
                     float* weights) {
  const Eigen::Index L = keys.rows(), d = keys.cols();
  RowMatrix g = RowMatrix::Zero(L, d);  // row j: g_{t,j}
  for (Eigen::Index t = 0; t < L; ++t) {
    if (t > 0) {
      const Eigen::VectorXf proj = g.topRows(t) * keys.row(t).transpose();  // g_{t−1,j}·k̂_t
      g.topRows(t).noalias() -= beta(t) * proj * keys.row(t);
    }
    g.row(t) = beta(t) * keys.row(t);
    if (causal) {
      float* row = weights + t * L;
      const Eigen::VectorXf a = g.topRows(t + 1) * q.row(t).transpose();
      for (Eigen::Index j = 0; j < L; ++j) row[j] = j <= t ? a(j) : 0.0f;
    }
  }
  if (!causal) {
    Eigen::Map<RowMatrix>(weights, L, L).noalias() = q * g.transpose();
  }
}

class DeltaAttention final : public Attention {
 public:
  DeltaAttention() {
    spec_.name = "delta";
    spec_.title = "DeltaNet (delta-rule fast weights)";
    spec_.paper = "Schlag, Irie, Schmidhuber 2021, Linear Transformers Are Secretly Fast Weight Programmers (arXiv:2102.11174)";
    spec_.summary = "A memory matrix written with the delta rule: each token corrects what the memory returns for its key.";
    spec_.params = {
        ParamSpec::choice("beta_mode", "Write strength", "constant", {"constant", "gate"},
                          "constant: every token writes with β = beta; gate: β_t = σ(w·k̂_t + b) with w, b seeded per head."),
        ParamSpec::real("beta", "β", 0.5, 0.0, 1.0, "Write strength when beta_mode is constant; 0 never writes, 1 overwrites."),
        ParamSpec::integer("chunk", "Chunk size", 64, 0, 1024,
                           "Tokens per chunk of the chunkwise (WY) form; 0 runs the token-by-token recurrence. Same output."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    if (in.q.dim(1) != in.k.dim(1)) {
      throw ShapeError("delta attention is self-attention: q " + in.q.shape_string() + " and k " + in.k.shape_string() +
                       " must have the same length");
    }
    DeltaSettings s;
    s.gate = in.params->get_choice("beta_mode") == "gate";
    s.beta = in.params->get_float("beta");
    s.chunk = in.params->get_int("chunk");
    s.causal = in.causal;
    const std::int64_t H = in.q.dim(0), L = in.q.dim(1), d = in.q.dim(2), dv = in.v.dim(2);
    const float q_scale = 1.0f / std::sqrt(static_cast<float>(d));
    Tensor out = Tensor::uninitialized({H, L, dv});
    std::shared_ptr<DeltaExtras> extras;
    if (trace) {
      extras = std::make_shared<DeltaExtras>();
      extras->states.steps = RecurrentStates::snapshot_steps(L);
      const auto T = static_cast<std::int64_t>(extras->states.steps.size());
      extras->states.states = Tensor({H, T, dv, d});
      extras->states.retrieval_error = Tensor({H, T});
      extras->states.state_formula = "W_t = W_{t-1} + β_t (v_t − W_{t-1} k̂_t) k̂_tᵀ";
      extras->states.key_axis = "key dimension (unit keys)";
      extras->states.value_axis = "value dimension";
      extras->states.rows_are_keys = false;  // W [dv, d] maps keys to values
      extras->beta = Tensor({H, L});
      extras->causal = s.causal;
      extras->beta_mode = s.gate ? "gate" : "constant";
      extras->chunk = s.chunk;
      trace->weights = Tensor::uninitialized({H, L, L});
    }
    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t h = 0; h < H; ++h) {
      if (cancelled || (in.cancel && in.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      RowMatrix keys = normalised_keys(in.k, h);
      RowMatrix v = in.v.matrix(h);
      // Padded keys never write: a zero key leaves the memory unchanged.
      if (in.key_padding) {
        for (std::int64_t j = 0; j < L; ++j)
          if ((*in.key_padding)[static_cast<std::size_t>(j)]) keys.row(j).setZero();
      }
      const RowMatrix q = in.q.matrix(h) * q_scale;
      const Eigen::VectorXf beta = write_strengths(keys, s, in.seed, h);
      RowMatrix o(L, dv);
      if (!trace && s.chunk > 0) {
        chunkwise(q, keys, v, beta, s.causal, s.chunk, o);
      } else {
        std::size_t next = 0;
        recurrent(q, keys, v, beta, s.causal, o, [&](Eigen::Index t, const RowMatrix& W) {
          if (!extras || next >= extras->states.steps.size() || extras->states.steps[next] != t) return;
          std::copy(W.data(), W.data() + W.size(), extras->states.states.data() + (h * static_cast<std::int64_t>(extras->states.steps.size()) + static_cast<std::int64_t>(next)) * dv * d);
          // Retrieval error of the pairs written so far (padded keys excluded), at most
          // kErrorPoints snapshots (it costs t·d·dv each); NaN elsewhere.
          const auto T = static_cast<std::int64_t>(extras->states.steps.size());
          const std::int64_t stride = std::max<std::int64_t>(1, (T + kErrorPoints - 1) / kErrorPoints);
          float error = std::numeric_limits<float>::quiet_NaN();
          if (static_cast<std::int64_t>(next) % stride == 0 || static_cast<std::int64_t>(next) == T - 1) {
            const RowMatrix retrieved = keys.topRows(t + 1) * W.transpose();  // [t+1, dv]
            double sum = 0.0;
            int pairs = 0;
            for (Eigen::Index j = 0; j <= t; ++j) {
              if (keys.row(j).squaredNorm() == 0.0f) continue;
              sum += (retrieved.row(j) - v.row(j)).norm() / std::max(v.row(j).norm(), 1e-12f);
              ++pairs;
            }
            error = pairs ? static_cast<float>(sum / pairs) : 0.0f;
          }
          extras->states.retrieval_error.at(h, static_cast<std::int64_t>(next)) = error;
          ++next;
        });
      }
      out.matrix(h) = o;
      if (trace) {
        implied_weights(q, keys, beta, s.causal, trace->weights.data() + h * L * L);
        for (std::int64_t t = 0; t < L; ++t) extras->beta.at(h, t) = beta(t);
      }
    }
    if (cancelled) throw CancelledError();
    if (trace) trace->extras = extras;
    return out;
  }

  // Fast path: the output (each head's keys, values and memory are Eigen copies, not tensors).
  // Traced: the snapshot states [H, T, dv, d] with retrieval errors [H, T], the write strengths
  // [H, L] and the weights [H, L, L], T = min(L, 512).
  std::int64_t workspace_bytes(const AttentionShape& s, const Params&) const override {
    if (s.lq != s.lk) throw ShapeError("delta attention is self-attention: q and k must have the same length");
    const std::int64_t H = s.heads, L = s.lq, out = H * L * s.dv;
    if (!s.trace) return float_bytes(out);
    const std::int64_t T = std::min(L, RecurrentStates::kMaxSnapshots);
    return float_bytes(out + H * T * s.dv * s.d + H * T + H * L + H * L * L);
  }

 private:
  VariantSpec spec_;
};

}  // namespace

nlohmann::json DeltaExtras::to_json() const {
  nlohmann::json j;
  j["kind"] = "delta";
  j["causal"] = causal;
  j["beta_mode"] = beta_mode;
  j["chunk"] = chunk;
  j["state_formula"] = states.state_formula;
  j["steps"] = states.steps;
  nlohmann::json b = nlohmann::json::array(), err = nlohmann::json::array();
  for (std::int64_t h = 0; h < beta.dim(0); ++h) {
    b.push_back(std::vector<float>(beta.data() + h * beta.dim(1), beta.data() + (h + 1) * beta.dim(1)));
    const Tensor& e = states.retrieval_error;
    err.push_back(std::vector<float>(e.data() + h * e.dim(1), e.data() + (h + 1) * e.dim(1)));
  }
  j["beta"] = std::move(b);                // [H, L]
  j["retrieval_error"] = std::move(err);   // [H, T]
  j["state_shape"] = states.states.shape();  // [H, T, dv, d]; the states themselves are in the .npy export
  return j;
}

std::unique_ptr<Attention> make_delta_attention() { return std::make_unique<DeltaAttention>(); }

}  // namespace attnlab
