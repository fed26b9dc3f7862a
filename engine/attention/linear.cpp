// Linear attention with φ(x) = elu(x) + 1 (Katharopoulos et al. 2020), registered as "linear",
// and the linear-attention kernel it shares with performer (see linear.h for the equations).
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   φ(x) = elu(x) + 1 elementwise (F = d; no 1/√d scaling, as the reference)
//   non-causal: S = Σ_j φ(k_j) v_jᵀ, z = Σ_j φ(k_j);   out_i = φ(q_i)ᵀS / (φ(q_i)ᵀz + ε),  ε = 1e-6
//   causal: the same with S_i, z_i summed over j <= i, by chunked prefix sums ("prefix") or the
//   RNN form S_t = S_{t−1} + φ(k_t) v_tᵀ carried token by token ("recurrent")
//   weights (trace): A_ij = φ(q_i)·φ(k_j) / (Σ_{j'} φ(q_i)·φ(k_j') + ε) over visible keys, exactly 0
//   elsewhere; out = A·V, rows sum to 1 − ε/(denominator + ε) — exactly 1 when ε = 0.
//
// Reference: idiap/fast-transformers (linear_attention.py, causal_linear_attention.py,
// recurrent/attention/self_attention/linear_attention.py, feature_maps/base.py). Choices:
//   - ε is added to the denominator, as in the reference (its causal CUDA kernel computes the
//     same sums); padded keys are left out of S and z altogether (the reference multiplies
//     φ(K) by its length mask, which is the same).
//   - The causal prefix form is chunked (64 keys a chunk): the reference's cumulative form keeps
//     L·d·dv numbers, which at L = 64k and d = dv = 64 is 1 GiB; the chunks keep L·d·dv / 64.
//
// Every query's output is computed from keys j <= i only, in an order that does not depend on
// later tokens, so in causal mode changing token j leaves earlier outputs bit-identical.
#include "attention/linear.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "attention/feature_maps.h"
#include "attention/variants.h"
#include "core/error.h"

namespace attnlab {
namespace {

constexpr std::int64_t kChunk = 64;
constexpr std::int64_t kQueryBlock = 64;  // rows per task of the dense weights
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Dims {
  std::int64_t H = 0, Lq = 0, Lk = 0, F = 0, dv = 0;
  bool scaled = false;  // key log scales present
};

Dims check_dims(const KernelFeatures& f, const Tensor* v, const LinearAttentionOptions& o) {
  if (f.query.rank() != 3 || f.key.rank() != 3)
    throw ShapeError("linear attention: features must have shape [heads, length, features]; got query " +
                     f.query.shape_string() + ", key " + f.key.shape_string());
  Dims d{f.query.dim(0), f.query.dim(1), f.key.dim(1), f.query.dim(2), 0, !f.key_log_scale.empty()};
  if (f.key.dim(0) != d.H || f.key.dim(2) != d.F)
    throw ShapeError("linear attention: query features " + f.query.shape_string() + " and key features " +
                     f.key.shape_string() + " disagree in heads or features");
  if (d.scaled && (f.key_log_scale.rank() != 2 || f.key_log_scale.dim(0) != d.H || f.key_log_scale.dim(1) != d.Lk))
    throw ShapeError("linear attention: key log scales have shape " + f.key_log_scale.shape_string() + ", need [" +
                     std::to_string(d.H) + ", " + std::to_string(d.Lk) + "]");
  if (v) {
    if (v->rank() != 3 || v->dim(0) != d.H || v->dim(1) != d.Lk)
      throw ShapeError("linear attention: v has shape " + v->shape_string() + " but key features have " +
                       f.key.shape_string());
    d.dv = v->dim(2);
  }
  if (o.causal && d.Lq != d.Lk)
    throw ShapeError("causal linear attention needs as many queries as keys; got " + std::to_string(d.Lq) + " and " +
                     std::to_string(d.Lk));
  if (o.key_padding && static_cast<std::int64_t>(o.key_padding->size()) != d.Lk)
    throw ShapeError("key padding mask has " + std::to_string(o.key_padding->size()) + " entries but there are " +
                     std::to_string(d.Lk) + " keys");
  return d;
}

bool is_padded(const LinearAttentionOptions& o, std::int64_t j) {
  return o.key_padding && (*o.key_padding)[static_cast<std::size_t>(j)];
}

// The log scale of key j as the kernel sees it: −inf for a padded key, 0 without log scales.
float key_log_scale(const KernelFeatures& f, const LinearAttentionOptions& o, bool scaled, std::int64_t h, std::int64_t j) {
  if (is_padded(o, j)) return kNegInf;
  return scaled ? f.key_log_scale.at(h, j) : 0.0f;
}

// e^{from − to} for from <= to; 0 when `from` is −inf (an empty sum has no scale).
float rescale(float from, float to) { return from == kNegInf ? 0.0f : std::exp(from - to); }

// out_i = num_i / (den_i + eps), or 0 when the denominator is not positive (no visible key).
template <typename Num, typename Out>
void divide_rows(const Num& num, const Eigen::VectorXf& den, float eps, Out&& out) {
  for (std::int64_t r = 0; r < out.rows(); ++r) {
    const float denominator = den(r) + eps;
    if (denominator > 0.0f) out.row(r) = num.row(r) / denominator;
    else out.row(r).setZero();
  }
}

// Chunk states relative to each chunk's own largest log scale m_c:
//   states [H, chunks, F, dv] = Σ_{j∈c} e^{g_j − m_c} φk_j v_jᵀ,  sums [H, chunks, F],  maxima [H, chunks] = m_c.
struct ChunkStates {
  Tensor states, sums, maxima;
  std::int64_t chunks = 0;
};

ChunkStates chunk_states(const KernelFeatures& f, const Tensor& v, const LinearAttentionOptions& o, const Dims& d) {
  ChunkStates cs;
  cs.chunks = (d.Lk + kChunk - 1) / kChunk;
  cs.states = Tensor::uninitialized({d.H, cs.chunks, d.F, d.dv});
  cs.sums = Tensor::uninitialized({d.H, cs.chunks, d.F});
  cs.maxima = Tensor::uninitialized({d.H, cs.chunks});
  const bool plain = !d.scaled && !o.key_padding;
  bool cancelled = false;
#pragma omp parallel
  {
    RowMatrix weighted(kChunk, d.F);
    std::vector<float> g(kChunk);
#pragma omp for schedule(dynamic)
    for (std::int64_t task = 0; task < d.H * cs.chunks; ++task) {
      if (cancelled || (o.cancel && o.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      const std::int64_t h = task / cs.chunks, c = task % cs.chunks;
      const std::int64_t k0 = c * kChunk, cols = std::min(kChunk, d.Lk - k0);
      const auto keys = f.key.matrix(h).middleRows(k0, cols);
      const auto values = v.matrix(h).middleRows(k0, cols);
      UnalignedMatrixMap state(cs.states.data() + task * d.F * d.dv, d.F, d.dv);
      Eigen::Map<RowVector> sum(cs.sums.data() + task * d.F, d.F);
      float local_max = kNegInf;
      for (std::int64_t t = 0; t < cols; ++t) {
        g[static_cast<std::size_t>(t)] = key_log_scale(f, o, d.scaled, h, k0 + t);
        local_max = std::max(local_max, g[static_cast<std::size_t>(t)]);
      }
      cs.maxima.at(h, c) = local_max;
      if (local_max == kNegInf) {
        state.setZero();
        sum.setZero();
      } else if (plain) {
        state.noalias() = keys.transpose() * values;
        sum = keys.colwise().sum();
      } else {
        auto w = weighted.topRows(cols);
        for (std::int64_t t = 0; t < cols; ++t) w.row(t) = keys.row(t) * rescale(g[static_cast<std::size_t>(t)], local_max);
        state.noalias() = w.transpose() * values;
        sum = w.colwise().sum();
      }
    }
  }
  if (cancelled) throw CancelledError();
  return cs;
}

Tensor chunked_noncausal(const KernelFeatures& f, const Tensor& v, const LinearAttentionOptions& o, const Dims& d) {
  ChunkStates cs = chunk_states(f, v, o, d);
  // Per head: S = Σ_c e^{m_c − M} U_c with M the largest m_c, in chunk order.
  Tensor total({d.H, d.F, d.dv}), total_sum({d.H, d.F});
  std::vector<float> reference(static_cast<std::size_t>(d.H), kNegInf);
#pragma omp parallel for schedule(static) if (d.H > 1)
  for (std::int64_t h = 0; h < d.H; ++h) {
    float m = kNegInf;
    for (std::int64_t c = 0; c < cs.chunks; ++c) m = std::max(m, cs.maxima.at(h, c));
    reference[static_cast<std::size_t>(h)] = m;
    if (m == kNegInf) continue;
    auto s = total.matrix(h);
    auto z = total_sum.matrix().row(h);
    for (std::int64_t c = 0; c < cs.chunks; ++c) {
      const float factor = rescale(cs.maxima.at(h, c), m);
      if (factor == 0.0f) continue;
      s += factor * ConstUnalignedMatrixMap(cs.states.data() + (h * cs.chunks + c) * d.F * d.dv, d.F, d.dv);
      z += factor * Eigen::Map<const RowVector>(cs.sums.data() + (h * cs.chunks + c) * d.F, d.F);
    }
  }
  Tensor out = Tensor::uninitialized({d.H, d.Lq, d.dv});
  const std::int64_t blocks = (d.Lq + kChunk - 1) / kChunk;
  bool cancelled = false;
#pragma omp parallel
  {
    RowMatrix num(kChunk, d.dv);
    Eigen::VectorXf den(kChunk);
#pragma omp for schedule(dynamic)
    for (std::int64_t task = 0; task < d.H * blocks; ++task) {
      if (cancelled || (o.cancel && o.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      const std::int64_t h = task / blocks, q0 = (task % blocks) * kChunk, rows = std::min(kChunk, d.Lq - q0);
      auto dst = out.matrix(h).middleRows(q0, rows);
      if (reference[static_cast<std::size_t>(h)] == kNegInf) {
        dst.setZero();
        continue;
      }
      const auto queries = f.query.matrix(h).middleRows(q0, rows);
      auto n = num.topRows(rows);
      n.noalias() = queries * total.matrix(h);
      den.head(rows).noalias() = queries * total_sum.matrix().row(h).transpose();
      divide_rows(n, den, o.eps, dst);
    }
  }
  if (cancelled) throw CancelledError();
  return out;
}

Tensor chunked_causal(const KernelFeatures& f, const Tensor& v, const LinearAttentionOptions& o, const Dims& d) {
  ChunkStates cs = chunk_states(f, v, o, d);
  // Exclusive scan over chunks, in place: slot c ends up holding the state of all keys before
  // chunk c, relative to their largest log scale, which replaces maxima[h, c].
#pragma omp parallel if (d.H > 1)
  {
    RowMatrix running(d.F, d.dv), local(d.F, d.dv);
    RowVector running_sum(d.F), local_sum(d.F);
#pragma omp for schedule(static)
    for (std::int64_t h = 0; h < d.H; ++h) {
      running.setZero();
      running_sum.setZero();
      float running_max = kNegInf;
      for (std::int64_t c = 0; c < cs.chunks; ++c) {
        UnalignedMatrixMap slot(cs.states.data() + (h * cs.chunks + c) * d.F * d.dv, d.F, d.dv);
        Eigen::Map<RowVector> slot_sum(cs.sums.data() + (h * cs.chunks + c) * d.F, d.F);
        local = slot;
        local_sum = slot_sum;
        const float local_max = cs.maxima.at(h, c);
        slot = running;
        slot_sum = running_sum;
        cs.maxima.at(h, c) = running_max;
        const float new_max = std::max(running_max, local_max);
        if (new_max == kNegInf) continue;
        const float keep = rescale(running_max, new_max), add = rescale(local_max, new_max);
        running = running * keep + local * add;
        running_sum = running_sum * keep + local_sum * add;
        running_max = new_max;
      }
    }
  }
  Tensor out = Tensor::uninitialized({d.H, d.Lq, d.dv});
  bool cancelled = false;
#pragma omp parallel
  {
    RowMatrix gram(kChunk, kChunk), num(kChunk, d.dv);
    Eigen::VectorXf den(kChunk), from_before(kChunk);
    Eigen::ArrayXf g(kChunk);
#pragma omp for schedule(dynamic)
    for (std::int64_t task = 0; task < d.H * cs.chunks; ++task) {
      if (cancelled || (o.cancel && o.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      const std::int64_t h = task / cs.chunks, c = task % cs.chunks;
      const std::int64_t c0 = c * kChunk, rows = std::min(kChunk, d.Lq - c0);
      const auto queries = f.query.matrix(h).middleRows(c0, rows);
      const auto keys = f.key.matrix(h).middleRows(c0, rows);
      const auto values = v.matrix(h).middleRows(c0, rows);
      const ConstUnalignedMatrixMap before(cs.states.data() + task * d.F * d.dv, d.F, d.dv);
      const Eigen::Map<const RowVector> before_sum(cs.sums.data() + task * d.F, d.F);
      const float before_max = cs.maxima.at(h, c);
      auto w = gram.topLeftCorner(rows, rows);
      w.noalias() = queries * keys.transpose();
      const bool masked_keys = d.scaled || o.key_padding;
      for (std::int64_t t = 0; t < rows; ++t) g(t) = key_log_scale(f, o, d.scaled, h, c0 + t);
      // Row r sees keys t <= r of this chunk, each scaled by e^{g_t − P_r}, P_r the prefix maximum.
      float prefix_max = before_max;
      for (std::int64_t r = 0; r < rows; ++r) {
        prefix_max = std::max(prefix_max, g(r));
        auto row = w.row(r);
        if (r + 1 < rows) row.tail(rows - r - 1).setZero();
        if (prefix_max == kNegInf) {
          row.setZero();
          from_before(r) = 0.0f;
          continue;
        }
        if (masked_keys) row.head(r + 1).array() *= (g.head(r + 1) - prefix_max).exp().transpose();
        from_before(r) = rescale(before_max, prefix_max);
      }
      auto n = num.topRows(rows);
      n.noalias() = queries * before;
      den.head(rows).noalias() = queries * before_sum.transpose();
      for (std::int64_t r = 0; r < rows; ++r) {
        n.row(r) *= from_before(r);
        den(r) *= from_before(r);
      }
      n.noalias() += w * values;
      den.head(rows) += w.rowwise().sum();
      divide_rows(n, den, o.eps, out.matrix(h).middleRows(c0, rows));
    }
  }
  if (cancelled) throw CancelledError();
  return out;
}

// The running state of one head, kept relative to the largest visible log scale so far.
struct Recurrence {
  RowMatrix state;
  RowVector sum;
  float max = kNegInf;

  Recurrence(std::int64_t F, std::int64_t dv) : state(RowMatrix::Zero(F, dv)), sum(RowVector::Zero(F)) {}

  void add(const float* phi_k, const float* value, float g) {
    if (g == kNegInf) return;  // padded
    if (g > max) {
      const float factor = rescale(max, g);
      if (max != kNegInf) {
        state *= factor;
        sum *= factor;
      }
      max = g;
    }
    const float w = std::exp(g - max);
    const Eigen::Map<const RowVector> phi(phi_k, state.rows());
    const Eigen::Map<const RowVector> val(value, state.cols());
    state.noalias() += (w * phi).transpose() * val;
    sum += w * phi;
  }
};

}  // namespace

Tensor linear_attention_chunked(const KernelFeatures& f, const Tensor& v, const LinearAttentionOptions& o) {
  const Dims d = check_dims(f, &v, o);
  return o.causal ? chunked_causal(f, v, o, d) : chunked_noncausal(f, v, o, d);
}

Tensor linear_attention_recurrent(const KernelFeatures& f, const Tensor& v, const LinearAttentionOptions& o) {
  const Dims d = check_dims(f, &v, o);
  if (!o.causal) throw ParamError("form=recurrent: the recurrent form needs causal attention");
  Tensor out = Tensor::uninitialized({d.H, d.Lq, d.dv});
  bool cancelled = false;
#pragma omp parallel for schedule(dynamic) if (d.H > 1)
  for (std::int64_t h = 0; h < d.H; ++h) {
    if (cancelled || (o.cancel && o.cancel->cancelled())) {
      cancelled = true;
      continue;
    }
    Recurrence r(d.F, d.dv);
    auto dst = out.matrix(h);
    for (std::int64_t t = 0; t < d.Lq; ++t) {
      r.add(f.key.data() + (h * d.Lk + t) * d.F, v.data() + (h * d.Lk + t) * d.dv, key_log_scale(f, o, d.scaled, h, t));
      const auto phi_q = f.query.matrix(h).row(t);
      const float denominator = phi_q.dot(r.sum) + o.eps;
      if (r.max == kNegInf || !(denominator > 0.0f)) dst.row(t).setZero();
      else dst.row(t).noalias() = (phi_q * r.state) / denominator;
    }
  }
  if (cancelled) throw CancelledError();
  return out;
}

Tensor linear_attention_weights(const KernelFeatures& f, const LinearAttentionOptions& o) {
  const Dims d = check_dims(f, nullptr, o);
  Tensor weights = Tensor::uninitialized({d.H, d.Lq, d.Lk});
  // Per head: the key log scales as the kernel sees them and, per query, the reference R_i.
  Tensor g = Tensor::uninitialized({d.H, d.Lk});
  Tensor reference = Tensor::uninitialized({d.H, d.Lq});
  for (std::int64_t h = 0; h < d.H; ++h) {
    float running = kNegInf;
    for (std::int64_t j = 0; j < d.Lk; ++j) {
      g.at(h, j) = key_log_scale(f, o, d.scaled, h, j);
      running = std::max(running, g.at(h, j));
      if (o.causal) reference.at(h, j) = running;
    }
    if (!o.causal)
      for (std::int64_t i = 0; i < d.Lq; ++i) reference.at(h, i) = running;
  }
  const std::int64_t blocks = (d.Lq + kQueryBlock - 1) / kQueryBlock;
  bool cancelled = false;
#pragma omp parallel
  {
    Eigen::ArrayXf column_factor(d.Lk);
#pragma omp for schedule(dynamic)
    for (std::int64_t task = 0; task < d.H * blocks; ++task) {
      if (cancelled || (o.cancel && o.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      const std::int64_t h = task / blocks, q0 = (task % blocks) * kQueryBlock, rows = std::min(kQueryBlock, d.Lq - q0);
      auto w = weights.matrix(h).middleRows(q0, rows);
      w.noalias() = f.query.matrix(h).middleRows(q0, rows) * f.key.matrix(h).transpose();
      const Eigen::Map<const Eigen::ArrayXf> gh(g.data() + h * d.Lk, d.Lk);
      if (!o.causal) column_factor = (gh - reference.at(h, 0)).exp();
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t i = q0 + r;
        const float ref = reference.at(h, i);
        auto row = w.row(r);
        if (ref == kNegInf) {
          row.setZero();
          continue;
        }
        if (o.causal) {
          if (i + 1 < d.Lk) row.tail(d.Lk - i - 1).setZero();
          row.head(i + 1).array() *= (gh.head(i + 1) - ref).exp().transpose();
        } else {
          row.array() *= column_factor.transpose();
        }
        const float denominator = row.sum() + o.eps;
        if (denominator > 0.0f) row /= denominator;
        else row.setZero();
      }
    }
  }
  if (cancelled) throw CancelledError();
  return weights;
}

RecurrentStates linear_attention_states(const KernelFeatures& f, const Tensor& v, const LinearAttentionOptions& o,
                                        const std::vector<std::int64_t>& steps, Tensor* log_scale) {
  const Dims d = check_dims(f, &v, o);
  const auto T = static_cast<std::int64_t>(steps.size());
  for (std::int64_t t = 0; t < T; ++t) {
    const std::int64_t s = steps[static_cast<std::size_t>(t)];
    if (s < 0 || s >= d.Lk || (t > 0 && s <= steps[static_cast<std::size_t>(t - 1)]))
      throw ShapeError("recurrent state snapshots: steps must ascend within [0, " + std::to_string(d.Lk) + ")");
  }
  RecurrentStates rs;
  rs.steps = steps;
  rs.states = Tensor::uninitialized({d.H, T, d.F, d.dv});
  rs.normalizers = Tensor::uninitialized({d.H, T, d.F});
  if (log_scale) *log_scale = Tensor::uninitialized({d.H, T});
  bool cancelled = false;
#pragma omp parallel for schedule(dynamic) if (d.H > 1)
  for (std::int64_t h = 0; h < d.H; ++h) {
    if (cancelled || (o.cancel && o.cancel->cancelled())) {
      cancelled = true;
      continue;
    }
    Recurrence r(d.F, d.dv);
    std::int64_t next = 0;
    for (std::int64_t j = 0; j < d.Lk && next < T; ++j) {
      r.add(f.key.data() + (h * d.Lk + j) * d.F, v.data() + (h * d.Lk + j) * d.dv, key_log_scale(f, o, d.scaled, h, j));
      if (steps[static_cast<std::size_t>(next)] != j) continue;
      UnalignedMatrixMap(rs.states.data() + (h * T + next) * d.F * d.dv, d.F, d.dv) = r.state;
      Eigen::Map<RowVector>(rs.normalizers.data() + (h * T + next) * d.F, d.F) = r.sum;
      if (log_scale) log_scale->at(h, next) = r.max == kNegInf ? 0.0f : r.max;
      ++next;
    }
  }
  if (cancelled) throw CancelledError();
  return rs;
}

std::vector<std::int64_t> budgeted_snapshot_steps(std::int64_t length, std::int64_t heads, std::int64_t floats_per_state) {
  const std::int64_t per_snapshot = std::max<std::int64_t>(1, heads * floats_per_state);
  const std::int64_t count = std::clamp<std::int64_t>(kStateBudgetFloats / per_snapshot, 1,
                                                      std::min(length, RecurrentStates::kMaxSnapshots));
  std::vector<std::int64_t> steps;
  steps.reserve(static_cast<std::size_t>(count));
  for (std::int64_t t = 0; t < count; ++t) steps.push_back(count == length ? t : (t + 1) * length / count - 1);
  return steps;
}

std::int64_t linear_attention_chunked_bytes(std::int64_t heads, std::int64_t lq, std::int64_t lk, std::int64_t features,
                                            std::int64_t dv, bool causal) {
  const std::int64_t chunks = (lk + kChunk - 1) / kChunk;
  const std::int64_t chunk_states = heads * chunks * (features * dv + features + 1);  // states, sums, maxima
  const std::int64_t total = causal ? 0 : heads * (features * dv + features);         // S and z per head
  return float_bytes(chunk_states + total + heads * lq * dv);
}

std::int64_t linear_attention_recurrent_bytes(std::int64_t heads, std::int64_t lq, std::int64_t dv) {
  return float_bytes(heads * lq * dv);  // the output; the state is Eigen scratch per head
}

std::int64_t linear_attention_weights_bytes(std::int64_t heads, std::int64_t lq, std::int64_t lk) {
  return float_bytes(heads * lq * lk + heads * lk + heads * lq);  // weights, g, reference
}

std::int64_t linear_attention_states_bytes(std::int64_t heads, std::int64_t steps, std::int64_t features,
                                           std::int64_t dv, bool log_scale) {
  return float_bytes(heads * steps * (features * dv + features) + (log_scale ? heads * steps : 0));
}

nlohmann::json recurrent_states_to_json(const RecurrentStates& s) {
  nlohmann::json j;
  j["steps"] = s.steps;
  j["state_formula"] = s.state_formula;
  j["key_axis"] = s.key_axis;
  j["value_axis"] = s.value_axis;
  j["rows_are_keys"] = s.rows_are_keys;
  if (s.steps.empty() || s.states.rank() != 4) return j;
  const std::int64_t H = s.states.dim(0), T = s.states.dim(1), F = s.states.dim(2), dv = s.states.dim(3);
  nlohmann::json last = nlohmann::json::array(), last_z = nlohmann::json::array();
  for (std::int64_t h = 0; h < H; ++h) {
    nlohmann::json rows = nlohmann::json::array();
    const float* p = s.states.data() + (h * T + T - 1) * F * dv;
    for (std::int64_t r = 0; r < F; ++r) rows.push_back(std::vector<float>(p + r * dv, p + (r + 1) * dv));
    last.push_back(std::move(rows));
    const float* z = s.normalizers.data() + (h * T + T - 1) * F;
    last_z.push_back(std::vector<float>(z, z + F));
  }
  j["last_state"] = std::move(last);         // [H][F][dv]  the state after the last snapshot step
  j["last_normalizer"] = std::move(last_z);  // [H][F]
  return j;
}

nlohmann::json LinearExtras::to_json() const {
  const Data& d = data_;
  nlohmann::json j;
  j["kind"] = "linear";
  j["feature_map"] = "elu(x) + 1";
  j["causal"] = d.causal;
  j["form"] = d.form;
  j["eps"] = d.eps;
  j["query_features"] = tensor_to_json(d.query_features);  // [H][Lq][d]
  j["key_features"] = tensor_to_json(d.key_features);      // [H][Lk][d]
  j["normalizer"] = tensor_to_json(d.normalizer);          // [H][Lq]
  j["states"] = recurrent_states_to_json(d.states);
  return j;
}

namespace {

class LinearAttention final : public Attention {
 public:
  LinearAttention() {
    spec_.name = "linear";
    spec_.title = "Linear attention (elu + 1)";
    spec_.paper = "Katharopoulos et al. 2020, Transformers are RNNs: Fast Autoregressive Transformers with Linear "
                  "Attention (arXiv:2006.16236)";
    spec_.summary = "softmax(q·k) replaced by φ(q)·φ(k) with φ = elu + 1, so attention is a running sum: linear in "
                    "length, and an RNN when causal.";
    spec_.params = {
        ParamSpec::real("eps", "Epsilon", 1e-6, 0.0, 1.0,
                        "Added to the denominator φ(q)·Σφ(k); weight rows sum to 1 exactly only when 0."),
        ParamSpec::choice("form", "Causal form", "prefix", {"prefix", "recurrent"},
                          "How causal outputs are computed: chunked prefix sums (parallel) or the RNN form, one "
                          "token at a time; both give the same output. Non-causal attention ignores it."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    LinearAttentionOptions o;
    o.causal = in.causal;
    o.eps = static_cast<float>(in.params->get_float("eps"));
    o.key_padding = in.key_padding;
    o.cancel = in.cancel;
    const std::string& form = in.params->get_choice("form");
    KernelFeatures f{elu_plus_one(in.q), elu_plus_one(in.k), Tensor()};
    check_cancelled(in.cancel);
    Tensor out = in.causal && form == "recurrent" ? linear_attention_recurrent(f, in.v, o)
                                                  : linear_attention_chunked(f, in.v, o);
    if (!trace) return out;

    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), d = in.q.dim(2);
    if (in.key_padding) {  // the kernel never reads them; zero rows make that visible in the extras
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t j = 0; j < Lk; ++j)
          if ((*in.key_padding)[static_cast<std::size_t>(j)]) f.key.matrix(h).row(j).setZero();
    }
    LinearExtras::Data data;
    data.causal = in.causal;
    data.form = form;
    data.eps = o.eps;
    trace->weights = linear_attention_weights(f, o);
    // The denominators before ε: φ(q_i)·z_i with z_i the sum of the visible key features.
    data.normalizer = Tensor::uninitialized({H, Lq});
    for (std::int64_t h = 0; h < H; ++h) {
      const auto keys = f.key.matrix(h);
      RowVector z = in.causal ? RowVector(RowVector::Zero(d)) : RowVector(keys.colwise().sum());
      for (std::int64_t i = 0; i < Lq; ++i) {
        if (in.causal) z += keys.row(i);
        data.normalizer.at(h, i) = f.query.matrix(h).row(i).dot(z);
      }
    }
    data.states = linear_attention_states(f, in.v, o, budgeted_snapshot_steps(Lk, H, d * in.v.dim(2)));
    data.states.state_formula = "S_t = S_{t-1} + φ(k_t) v_tᵀ,  z_t = z_{t-1} + φ(k_t),  φ = elu + 1";
    data.states.key_axis = "feature of φ(k) (= key dimension)";
    data.states.value_axis = "value dimension";
    data.query_features = std::move(f.query);
    data.key_features = std::move(f.key);
    trace->extras = std::make_shared<LinearExtras>(std::move(data));
    return out;
  }

  // φ(q) [H, Lq, d] and φ(k) [H, Lk, d], held throughout, plus the kernel's own (linear.h). The
  // trace adds, after the kernel's scratch is gone: the weights (with their temporaries), the
  // normalisers [H, Lq] and the snapshot states.
  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override {
    const std::int64_t features = float_bytes(s.heads * (s.lq + s.lk) * s.d);
    const bool recurrent = s.causal && params.get_choice("form") == "recurrent";
    const std::int64_t kernel = recurrent ? linear_attention_recurrent_bytes(s.heads, s.lq, s.dv)
                                          : linear_attention_chunked_bytes(s.heads, s.lq, s.lk, s.d, s.dv, s.causal);
    if (!s.trace) return features + kernel;
    const std::int64_t out = float_bytes(s.heads * s.lq * s.dv);
    const auto steps = static_cast<std::int64_t>(budgeted_snapshot_steps(s.lk, s.heads, s.d * s.dv).size());
    const std::int64_t weights = float_bytes(s.heads * s.lq * s.lk);
    const std::int64_t after = std::max({kernel - out, linear_attention_weights_bytes(s.heads, s.lq, s.lk),
                                         weights + float_bytes(s.heads * s.lq) +
                                             linear_attention_states_bytes(s.heads, steps, s.d, s.dv, false)});
    return features + out + after;
  }

 private:
  VariantSpec spec_;
};

}  // namespace

std::unique_ptr<Attention> make_linear_attention() { return std::make_unique<LinearAttention>(); }

}  // namespace attnlab
