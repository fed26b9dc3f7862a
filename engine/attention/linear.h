// Linear attention ("Transformers are RNNs", Katharopoulos et al. 2020): the kernel shared by
// every feature-map variant, and the typed trace extras of the "linear" variant.
//
// Given non-negative features φq_i = φ(q_i), φk_j = φ(k_j) ∈ R^F and an optional log scale g_j
// per key, the unnormalised kernel is κ_ij = e^{g_j} φq_i·φk_j and
//   out_i = Σ_{j∈V(i)} κ_ij v_j / (Σ_{j∈V(i)} κ_ij + ε)
// where V(i) holds the visible keys (not padded; j <= i when causal). Without log scales (linear,
// elu + 1) this is the paper's formula with S = Σ φk_j v_jᵀ, z = Σ φk_j:  out_i = φq_iᵀS / (φq_iᵀz + ε).
//
// Log scales (performer: FAVOR+ key features are stored divided by e^{g_j} so they never
// overflow) are applied relative to a reference R, which cancels between numerator and
// denominator: R = max over visible keys of g (non-causal) or its prefix maximum P_i over the
// visible keys j <= i (causal), so that no computation for query i depends on a later key. ε is
// added to the denominator in that stabilised scale; the variants that use log scales use ε = 0.
//
// Forms (all O(L·F·dv); no L×L matrix):
//   chunked    non-causal: S and z summed over chunks of 64 keys (each chunk relative to its own
//              largest log scale, then combined). Causal: prefix sums by chunk — per chunk the
//              local state U_c = Σ_{j∈c} φk_j v_jᵀ, an exclusive scan over chunks, then for each
//              query φq_iᵀ S_{<c} plus the masked quadratic form inside its own chunk. Memory
//              O(L·F·dv / 64 + F·dv) besides features and output; chunks run in parallel.
//   recurrent  causal only: the RNN form, S_t = S_{t−1} + φk_t v_tᵀ, z_t = z_{t−1} + φk_t, one token
//              at a time (memory O(F·dv) per head).
//   weights    the implied matrix [H, Lq, Lk]: A_ij = κ_ij / (Σ_{j'} κ_ij' + ε), exactly 0 for hidden
//              keys; out = A·V. Rows sum to 1 − ε/(Σκ + ε) (exactly 1 when ε = 0).
// A query with no visible key gets output 0 and a zero weight row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/recurrent_state.h"

namespace attnlab {

struct KernelFeatures {
  Tensor query;          // [H, Lq, F], non-negative
  Tensor key;            // [H, Lk, F], non-negative
  Tensor key_log_scale;  // [H, Lk], or empty for g = 0
};

struct LinearAttentionOptions {
  bool causal = false;  // needs Lq == Lk
  float eps = 0.0f;     // added to the (stabilised) denominator
  const std::vector<std::uint8_t>* key_padding = nullptr;
  const CancelToken* cancel = nullptr;
};

// Throws ShapeError when shapes disagree. v: [H, Lk, dv] -> [H, Lq, dv].
Tensor linear_attention_chunked(const KernelFeatures& features, const Tensor& v, const LinearAttentionOptions& options);
// Causal only (ParamError otherwise).
Tensor linear_attention_recurrent(const KernelFeatures& features, const Tensor& v, const LinearAttentionOptions& options);
// The implied normalised weights [H, Lq, Lk].
Tensor linear_attention_weights(const KernelFeatures& features, const LinearAttentionOptions& options);

// The running state after the keys steps[t] (ascending), by the recurrence over keys in order
// (in non-causal mode too: there every query reads the last one):
//   states [H, T, F, dv] = Σ_{visible j <= step} e^{g_j − P} φk_j v_jᵀ,  normalizers [H, T, F] likewise,
//   with P the largest visible log scale so far (0 without log scales), returned in log_scale [H, T]
//   when not null. formula and axis strings are left to the caller.
RecurrentStates linear_attention_states(const KernelFeatures& features, const Tensor& v, const LinearAttentionOptions& options,
                                        const std::vector<std::int64_t>& steps, Tensor* log_scale = nullptr);

// Snapshot steps for a trace: every token up to RecurrentStates::kMaxSnapshots, fewer when
// heads·T·F·dv floats would exceed kStateBudgetFloats (at least the last token); evenly spaced,
// ending at length − 1.
inline constexpr std::int64_t kStateBudgetFloats = std::int64_t{1} << 22;  // 16 MiB per forward call
std::vector<std::int64_t> budgeted_snapshot_steps(std::int64_t length, std::int64_t heads, std::int64_t floats_per_state);

// Cost models of the functions above (bytes of the tensors each allocates beyond its inputs, at
// its peak; see Attention::workspace_bytes), for H heads, F features, values of width dv.
//   chunked:    non-causal: chunk states [H, C, F, dv] + [H, C, F] + [H, C] (C = ceil(Lk / 64)),
//               the total [H, F, dv] + [H, F], the output; causal: chunk states and the output
//   recurrent:  the output
//   weights:    the weights [H, Lq, Lk], key log scales [H, Lk] and row references [H, Lq]
//   states:     [H, T, F, dv] + [H, T, F] (+ [H, T] with log scales)
std::int64_t linear_attention_chunked_bytes(std::int64_t heads, std::int64_t lq, std::int64_t lk, std::int64_t features,
                                            std::int64_t dv, bool causal);
std::int64_t linear_attention_recurrent_bytes(std::int64_t heads, std::int64_t lq, std::int64_t dv);
std::int64_t linear_attention_weights_bytes(std::int64_t heads, std::int64_t lq, std::int64_t lk);
std::int64_t linear_attention_states_bytes(std::int64_t heads, std::int64_t steps, std::int64_t features,
                                           std::int64_t dv, bool log_scale);

// Steps, formula and axes, and the last snapshot's state and normaliser per head (not every step's:
// T·F·dv per head is too much for JSON).
nlohmann::json recurrent_states_to_json(const RecurrentStates& states);

// Trace extras of "linear": φ = elu + 1 of queries and keys, and the recurrent states.
class LinearExtras final : public RecurrentTraceExtras {
 public:
  struct Data {
    bool causal = false;
    std::string form = "prefix";  // how the causal output was computed: "prefix" | "recurrent"
    double eps = 1e-6;
    Tensor query_features;  // [H, Lq, d]  φ(q) = elu(q) + 1
    Tensor key_features;    // [H, Lk, d]  φ(k); 0 rows for padded keys
    Tensor normalizer;      // [H, Lq]     Σ_{visible j} φ(q_i)·φ(k_j) (the denominator before ε)
    RecurrentStates states; // S_t [H, T, d, dv], z_t [H, T, d]
  };

  explicit LinearExtras(Data data) : data_(std::move(data)) {}
  std::string_view kind() const override { return "linear"; }
  // Everything except the per-step states (T·d·dv per head), of which the last is kept.
  nlohmann::json to_json() const override;
  const RecurrentStates& recurrent() const override { return data_.states; }
  const Data& data() const { return data_; }

 private:
  Data data_;
};

}  // namespace attnlab
