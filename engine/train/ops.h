// The training engine's operations: each forward with its hand-derived backward, llm.c style.
//
// Design: no tape. A model calls the forwards in order, keeping what each backward needs (its
// inputs and small statistics such as layer-norm means or attention probabilities), then calls
// the backwards in reverse order. Every backward ACCUMULATES (+=) into the gradients it is
// given — parameters shared by several uses (tied embeddings, the encoder output read by every
// decoder layer) and residual streams then need no extra bookkeeping; callers zero gradients
// once per step. Everything is templated on the scalar: float for training, double for the
// finite-difference checks in tests/engine/test_train_ops.cpp.
//
// Activations are row-major [N, D]: N token rows of a batch of sequences packed end to end (no
// padding inside a batch; SeqLayout says where each sequence starts).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

namespace attnlab::train {

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Vec = Eigen::Matrix<T, 1, Eigen::Dynamic>;  // a row vector (biases, gains)
template <typename T>
using MatMap = Eigen::Map<Mat<T>>;
template <typename T>
using VecMap = Eigen::Map<Vec<T>>;
// Parameter, gradient and optimizer arrays: 64-byte aligned, so that every Eigen view of them has
// the same alignment on every run. (Eigen's vectorised loops peel unaligned heads, and where the
// peeling falls changes the order of float sums: with malloc's varying alignment two identical
// runs would differ in the last bits.)
template <typename T>
using ParamArray = std::vector<T, Eigen::aligned_allocator<T>>;

// Sequences packed end to end: sequence b owns rows [offsets[b], offsets[b+1]).
struct SeqLayout {
  std::vector<std::int64_t> offsets{0};

  std::int64_t count() const { return static_cast<std::int64_t>(offsets.size()) - 1; }
  std::int64_t rows() const { return offsets.back(); }
  std::int64_t begin(std::int64_t b) const { return offsets[static_cast<std::size_t>(b)]; }
  std::int64_t length(std::int64_t b) const { return offsets[static_cast<std::size_t>(b) + 1] - begin(b); }
  void add(std::int64_t length) { offsets.push_back(offsets.back() + length); }
};

// ---- affine map ---------------------------------------------------------------------------------
// x: [N, in]  w: [in, out]  b: [out]  ->  y = x·w + b: [N, out]
template <typename T>
void linear_forward(const Mat<T>& x, const MatMap<T>& w, const VecMap<T>& b, Mat<T>& y);
// dx += dy·wᵀ (skipped when dx is null), dw += xᵀ·dy, db += Σ_rows dy
template <typename T>
void linear_backward(const Mat<T>& dy, const Mat<T>& x, const MatMap<T>& w, Mat<T>* dx, MatMap<T>& dw, VecMap<T>& db);

// ---- layer norm (eps 1e-5, over the last axis) ----------------------------------------------------
// x: [N, D] -> y = (x − mean)·rstd·gain + bias: [N, D]; keeps mean, rstd: [N]
template <typename T>
void layer_norm_forward(const Mat<T>& x, const VecMap<T>& gain, const VecMap<T>& bias, Mat<T>& y,
                        std::vector<T>& mean, std::vector<T>& rstd);
// dx += ∂/∂x, dgain += Σ dy·x̂, dbias += Σ dy
template <typename T>
void layer_norm_backward(const Mat<T>& dy, const Mat<T>& x, const std::vector<T>& mean, const std::vector<T>& rstd,
                         const VecMap<T>& gain, Mat<T>& dx, VecMap<T>& dgain, VecMap<T>& dbias);

// ---- ReLU (in place on the pre-activation; backward uses the output's sign) ----------------------
template <typename T>
void relu_forward(Mat<T>& x);
// dy ⊙ [y > 0], in place on dy
template <typename T>
void relu_backward(const Mat<T>& y, Mat<T>& dy);

// ---- multi-head scaled dot-product attention over packed sequences -------------------------------
// q: [Nq, D] (rows laid out by `q_layout`), k, v: [Nk, D] (by `k_layout`, same sequence count);
// head h uses columns [h·D/H, (h+1)·D/H). Query i of sequence b attends to the keys of sequence b:
// with `causal` only keys j ≤ i (needs equal lengths), never a key whose `key_padding` row
// (length Nk, optional) is nonzero. A query that sees no key gets a zero output.
// out: [Nq, D]; probs: one [Lq_b, Lk_b] matrix per (sequence b, head h), index b·H + h.
struct AttentionShapeInfo {
  const SeqLayout* q_layout = nullptr;
  const SeqLayout* k_layout = nullptr;
  std::int64_t heads = 1;
  bool causal = false;
  const std::vector<std::uint8_t>* key_padding = nullptr;
};
template <typename T>
void attention_forward(const Mat<T>& q, const Mat<T>& k, const Mat<T>& v, const AttentionShapeInfo& info,
                       Mat<T>& out, std::vector<Mat<T>>& probs);
// dq, dk, dv += gradients (each the shape of its input)
template <typename T>
void attention_backward(const Mat<T>& dout, const Mat<T>& q, const Mat<T>& k, const Mat<T>& v,
                        const AttentionShapeInfo& info, const std::vector<Mat<T>>& probs, Mat<T>& dq, Mat<T>& dk,
                        Mat<T>& dv);

// ---- token embedding (scaled by √D) plus sinusoidal positions --------------------------------------
// table: [V, D]; tokens: [N] ids; positions restart at 0 for every sequence of `layout`.
// x[n] = √D · table[tokens[n]] + PE(pos(n))   with PE(p, 2i) = sin(p / 10000^(2i/D)), PE(p, 2i+1) = cos(...)
template <typename T>
void embedding_forward(const MatMap<T>& table, const std::vector<std::int32_t>& tokens, const SeqLayout& layout,
                       Mat<T>& x);
// dtable[tokens[n]] += √D · dx[n]
template <typename T>
void embedding_backward(const Mat<T>& dx, const std::vector<std::int32_t>& tokens, MatMap<T>& dtable);
// PE(p, ·) as a row: [D]
template <typename T>
void positional_encoding(std::int64_t position, std::int64_t d_model, T* out);

// ---- label-smoothed cross-entropy from logits ---------------------------------------------------
// logits: [N, V]; targets: [N], −1 = ignored row. Target distribution q = (1 − ε)·onehot + ε/V.
// Returns the sums over counted rows; with `grad` (not null) writes ∂(scale·loss_sum)/∂logits =
// scale·(softmax − q) (zero rows for ignored targets) into *grad, which may alias `logits`.
struct CrossEntropySums {
  double loss = 0;   // Σ −Σ_j q_j log p_j  (what is optimised)
  double nll = 0;    // Σ −log p_target     (for perplexity)
  std::int64_t tokens = 0;
  std::int64_t correct = 0;  // argmax == target
};
template <typename T>
CrossEntropySums cross_entropy(const Mat<T>& logits, const std::vector<std::int32_t>& targets, double smoothing,
                               double scale, Mat<T>* grad);

}  // namespace attnlab::train
