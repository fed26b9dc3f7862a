// Luna: linear unified nested attention, pack and unpack (Ma et al. 2021), registered as "luna".
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   P [l, d] per head, l = pack_len: the packed sequence, seeded (entries N(0, p_scale²))
//   non-causal  pack    A_pack = softmax_j(P kᵀ / sqrt(d))        [l, Lk]  (over visible keys)
//                       Y_K = A_pack K  [l, d],   Y_V = A_pack V  [l, dv]   (Y_V is the paper's Y_P)
//               unpack  A_unpack = softmax_p(q Y_Kᵀ / sqrt(d))    [Lq, l]
//                       out = A_unpack Y_V,  i.e. W = A_unpack A_pack [Lq, Lk] (rows sum to 1), out = W V
//   causal      scores  g_j[p] = P_p·k_j / sqrt(d)
//     "normalized" (default): the non-causal Luna of every prefix. s_j[p] = exp(g_j[p]),
//                       N_t[p] = Σ_{j<=t} s_j[p],  Y_K(t)[p] = Σ_{j<=t} s_j[p] k_j / N_t[p],  Y_V(t) likewise;
//                       a_t = softmax_p(q_t·Y_K(t)[p] / sqrt(d)),  out_t = Σ_p a_t[p] Y_V(t)[p];
//                       W_tj = Σ_p a_t[p] s_j[p] / N_t[p] for j <= t: rows sum to 1, and at t = L-1
//                       (no padding) the row is the non-causal one.
//     "reference" (fairseq-apollo LunarCausalAttention): s_j[p] = softplus_β(g_j[p]), β = ln 2
//                       (unnormalised, = 1 at 0), N_t[p] = n_t the number of visible keys <= t
//                       (the reference's 1/t), same a_t and out_t formulas. W_tj = Σ_p a_t[p] s_j[p] / n_t:
//                       rows do NOT sum to 1 (the one exception to the weights convention here).
//   masks       padded keys take no part (s = 0, not counted); a query that sees no key gets output 0
//               and a zero row.
//
// Reference: XuezheMax/fairseq-apollo, fairseq/modules/luna_attention.py (LunarMultiheadAttention
// and LunarCausalAttention with its efficient_causal_attention_{seq,parallel} and incremental
// forms). Adaptation to one attention call with q, k, v per head: the reference projects X and P
// with separate matrices (W_pq, W_pc, W_c, ...) and ties key and value (c_proj). We have no X, only
// this head's q, k and v, so the pack reads keys k and values v with one pack map, the packed
// sequence becomes a packed key Y_K and a packed value Y_V, and the unpack compares q with Y_K; P
// plays the role of P W_pq (the reference's pq_proj(P), scaled by 1/sqrt(d)). The reference's
// causal form (softplus / elu+1 scores and 1/t averages; ALGORITHMS §7 names softplus with β = ln 2,
// the file read has elu + 1) is kept as causal_form = "reference"; the default "normalized" form
// replaces its unnormalised averages by the normalised prefix pack, so it is the non-causal Luna
// restricted to the prefix and its implied matrix is row-stochastic. P' = LN(P + Y_P) and the
// layer around it belong to a Luna layer, not to this attention call.
//
// Fast path (no trace). Non-causal: the pack by an online softmax over blocks of keys (running
// maximum per slot, no [l, L] buffer), then query blocks in parallel: O(L·l·(d + dv)). Causal: the
// sequential (recurrent) form, one token at a time per head, carrying N [l], Σ s k [l, d] and
// Σ s v [l, dv]; "normalized" keeps a running maximum of g per slot and rescales its sums when it
// grows, so no number depends on a later token. Traced path, causal: the parallel form with every
// prefix at once, W = ((a ⊘ N) sᵀ) ⊙ tril and logits from ((q kᵀ) ⊙ tril) s ⊘ N, with one shift
// per slot (max over visible keys) — equal to the sequential form up to rounding unless a slot's
// scores span more than float's exponent range (then its early prefixes underflow and the slot is
// left out of those rows' softmax).
#include "attention/luna.h"

#include <omp.h>

#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>

#include "attention/variants.h"
#include "core/error.h"
#include "core/rng.h"

namespace attnlab {
namespace {

constexpr std::int64_t kBlock = 256;
constexpr std::int64_t kMaxPack = 256;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// softplus with β = ln 2: log2(1 + 2^x), which is 1 at x = 0 and x for large x.
float softplus_ln2(float x) {
  constexpr float beta = std::numbers::ln2_v<float>;
  const float bx = beta * x;
  return bx > 20.0f ? x : std::log1p(std::exp(bx)) / beta;
}

struct LunaOptions {
  std::int64_t pack_len = 16;
  double p_scale = 1.0;
  bool reference = false;  // causal_form "reference"
};

Tensor draw_packed_sequence(std::uint64_t seed, std::int64_t heads, std::int64_t d, const LunaOptions& o) {
  Tensor p = Tensor::uninitialized({heads, o.pack_len, d});
  for (std::int64_t h = 0; h < heads; ++h) {
    Rng rng(Rng::derive(seed, "luna/packed/head" + std::to_string(h)));
    float* data = p.data() + h * o.pack_len * d;
    for (std::int64_t i = 0; i < o.pack_len * d; ++i) data[i] = static_cast<float>(o.p_scale * rng.normal());
  }
  return p;
}

// Softmax of every row of `m` in place.
template <typename M>
void softmax_rows(M&& m) {
  for (std::int64_t r = 0; r < m.rows(); ++r) {
    auto row = m.row(r);
    row = (row.array() - row.maxCoeff()).exp().matrix();
    row /= row.sum();
  }
}

class LunaAttention final : public Attention {
 public:
  LunaAttention() {
    spec_.name = "luna";
    spec_.title = "Luna pack and unpack attention";
    spec_.paper = "Ma et al. 2021, Luna: Linear Unified Nested Attention (arXiv:2106.01540)";
    spec_.summary =
        "A short seeded sequence P packs the keys and values into l slots; every query then attends to the l "
        "slots: linear in length.";
    spec_.params = {
        ParamSpec::integer("pack_len", "Packed length l", 16, 1, kMaxPack,
                           "Slots of the packed sequence P (the paper's projected length; 16 in its LRA runs)."),
        ParamSpec::real("p_scale", "P scale", 1.0, 0.0, 4.0,
                        "Standard deviation of the seeded entries of P; larger values make the pack sharper."),
        ParamSpec::choice("causal_form", "Causal form", "normalized", {"normalized", "reference"},
                          "normalized: every prefix packed by a softmax (rows of the implied matrix sum to 1); "
                          "reference: softplus scores averaged by 1/t as in fairseq-apollo (rows do not sum to 1)."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    LunaOptions o;
    o.pack_len = in.params->get_int("pack_len");
    o.p_scale = in.params->get_float("p_scale");
    o.reference = in.params->get_choice("causal_form") == "reference";
    const Tensor p = draw_packed_sequence(in.seed, in.q.dim(0), in.q.dim(2), o);
    if (trace) return in.causal ? traced_causal(in, o, p, *trace) : traced_noncausal(in, o, p, *trace);
    return in.causal ? fast_causal(in, o, p) : fast_noncausal(in, o, p);
  }

  // The packed sequence P [H, l, d], held throughout. Fast non-causal: the packed keys and values
  // [H, l, d], [H, l, dv], the output; causal: the output (per-head sums are Eigen scratch).
  // Traced: the extras (a copy of P, the pack map [H, l, Lk], the unpack map [H, Lq, l], packed keys
  // and values), the weights [H, Lq, Lk], the output.
  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override {
    const std::int64_t H = s.heads, l = params.get_int("pack_len");
    const std::int64_t packed = H * l * s.d, out = H * s.lq * s.dv;
    if (!s.trace) return float_bytes(packed + out + (s.causal ? 0 : H * l * s.d + H * l * s.dv));
    const std::int64_t extras = packed + H * l * s.lk + H * s.lq * l + H * l * s.d + H * l * s.dv;
    return float_bytes(packed + extras + H * s.lq * s.lk + out);
  }

 private:
  static float inv_sqrt_d(const AttentionInput& in) { return 1.0f / std::sqrt(static_cast<float>(in.q.dim(2))); }

  Tensor fast_noncausal(const AttentionInput& in, const LunaOptions& o, const Tensor& p) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), d = in.q.dim(2), dv = in.v.dim(2);
    const std::int64_t l = o.pack_len;
    const float scale = inv_sqrt_d(in);
    Tensor yk = Tensor::uninitialized({H, l, d});
    Tensor yv = Tensor::uninitialized({H, l, dv});
    std::vector<std::uint8_t> empty(static_cast<std::size_t>(H), 0);
    bool cancelled = false;
    // Pack: an online softmax over blocks of keys, per slot.
#pragma omp parallel for schedule(dynamic) if (H > 1)
    for (std::int64_t h = 0; h < H; ++h) {
      RowMatrix g(l, kBlock), sum_k = RowMatrix::Zero(l, d), sum_v = RowMatrix::Zero(l, dv);
      RowVector m = RowVector::Constant(l, kNegInf), s = RowVector::Zero(l);
      for (std::int64_t j0 = 0; j0 < Lk; j0 += kBlock) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          break;
        }
        const std::int64_t cols = std::min(kBlock, Lk - j0);
        auto gb = g.leftCols(cols);
        gb.noalias() = p.matrix(h) * in.k.matrix(h).middleRows(j0, cols).transpose();
        gb *= scale;
        for (std::int64_t r = 0; r < l; ++r) {
          float top = kNegInf;
          for (std::int64_t c = 0; c < cols; ++c)
            if (!is_key_padded(in.key_padding, j0 + c)) top = std::max(top, gb(r, c));
          const float m_new = std::max(m(r), top);
          if (m_new == kNegInf) {
            gb.row(r).setZero();
            continue;
          }
          const float rescale = m(r) == kNegInf ? 0.0f : std::exp(m(r) - m_new);
          s(r) *= rescale;
          sum_k.row(r) *= rescale;
          sum_v.row(r) *= rescale;
          m(r) = m_new;
          gb.row(r) = (gb.row(r).array() - m_new).exp().matrix();
          for (std::int64_t c = 0; c < cols; ++c)
            if (is_key_padded(in.key_padding, j0 + c)) gb(r, c) = 0.0f;
          s(r) += gb.row(r).sum();
        }
        sum_k.noalias() += gb * in.k.matrix(h).middleRows(j0, cols);
        sum_v.noalias() += gb * in.v.matrix(h).middleRows(j0, cols);
      }
      if (m(0) == kNegInf) {  // every key padded
        empty[static_cast<std::size_t>(h)] = 1;
        continue;
      }
      for (std::int64_t r = 0; r < l; ++r) {
        yk.matrix(h).row(r) = sum_k.row(r) / s(r);
        yv.matrix(h).row(r) = sum_v.row(r) / s(r);
      }
    }
    if (cancelled) throw CancelledError();

    // Unpack: every block of queries attends to the l packed slots.
    Tensor out = Tensor::uninitialized({H, Lq, dv});
    const std::int64_t nqb = (Lq + kBlock - 1) / kBlock;
#pragma omp parallel
    {
      RowMatrix u(kBlock, l);
#pragma omp for schedule(static)
      for (std::int64_t task = 0; task < H * nqb; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / nqb, i0 = (task % nqb) * kBlock, rows = std::min(kBlock, Lq - i0);
        auto dst = out.matrix(h).middleRows(i0, rows);
        if (empty[static_cast<std::size_t>(h)]) {
          dst.setZero();
          continue;
        }
        auto ub = u.topRows(rows);
        ub.noalias() = in.q.matrix(h).middleRows(i0, rows) * yk.matrix(h).transpose();
        ub *= scale;
        softmax_rows(ub);
        dst.noalias() = ub * yv.matrix(h);
      }
    }
    if (cancelled) throw CancelledError();
    return out;
  }

  // The sequential (recurrent) causal form.
  Tensor fast_causal(const AttentionInput& in, const LunaOptions& o, const Tensor& p) const {
    const std::int64_t H = in.q.dim(0), L = in.q.dim(1), d = in.q.dim(2), dv = in.v.dim(2);
    const std::int64_t l = o.pack_len;
    const float scale = inv_sqrt_d(in);
    Tensor out = Tensor::uninitialized({H, L, dv});
    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t h = 0; h < H; ++h) {
      RowMatrix g(kBlock, l), sum_k = RowMatrix::Zero(l, d), sum_v = RowMatrix::Zero(l, dv);
      RowVector m = RowVector::Constant(l, kNegInf), norm = RowVector::Zero(l), s(l), a(l), norms(l);
      std::int64_t seen = 0;
      auto y = out.matrix(h);
      for (std::int64_t t0 = 0; t0 < L; t0 += kBlock) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          break;
        }
        const std::int64_t rows = std::min(kBlock, L - t0);
        auto gb = g.topRows(rows);
        gb.noalias() = in.k.matrix(h).middleRows(t0, rows) * p.matrix(h).transpose();
        gb *= scale;
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t t = t0 + r;
          if (!is_key_padded(in.key_padding, t)) {
            if (o.reference) {
              for (std::int64_t c = 0; c < l; ++c) s(c) = softplus_ln2(gb(r, c));
            } else {
              for (std::int64_t c = 0; c < l; ++c) {
                if (gb(r, c) <= m(c)) continue;
                const float rescale = m(c) == kNegInf ? 0.0f : std::exp(m(c) - gb(r, c));
                norm(c) *= rescale;
                sum_k.row(c) *= rescale;
                sum_v.row(c) *= rescale;
                m(c) = gb(r, c);
              }
              s = (gb.row(r) - m).array().exp().matrix();
              norm += s;
            }
            sum_k.noalias() += s.transpose() * in.k.matrix(h).row(t);
            sum_v.noalias() += s.transpose() * in.v.matrix(h).row(t);
            ++seen;
          }
          if (seen == 0) {
            y.row(t).setZero();
            continue;
          }
          if (o.reference) norms.setConstant(static_cast<float>(seen));
          else norms = norm;
          a.noalias() = in.q.matrix(h).row(t) * sum_k.transpose();
          a = (a.array() / norms.array() * scale).matrix();
          a = (a.array() - a.maxCoeff()).exp().matrix();
          a /= a.sum();
          a = (a.array() / norms.array()).matrix();
          y.row(t).noalias() = a * sum_v;
        }
      }
    }
    if (cancelled) throw CancelledError();
    return out;
  }

  static LunaExtras::Data extras_shell(const AttentionInput& in, const LunaOptions& o, const Tensor& p) {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), d = in.q.dim(2), dv = in.v.dim(2);
    LunaExtras::Data x;
    x.heads = H;
    x.queries = Lq;
    x.keys = Lk;
    x.head_dim = d;
    x.pack_len = o.pack_len;
    x.causal = in.causal;
    x.causal_form = o.reference ? "reference" : "normalized";
    x.p_scale = o.p_scale;
    x.packed_sequence = p;
    x.pack_map = Tensor({H, o.pack_len, Lk});
    x.unpack_map = Tensor({H, Lq, o.pack_len});
    x.packed_keys = Tensor({H, o.pack_len, d});
    x.packed_values = Tensor({H, o.pack_len, dv});
    return x;
  }

  Tensor traced_noncausal(const AttentionInput& in, const LunaOptions& o, const Tensor& p, Trace& trace) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), dv = in.v.dim(2);
    const float scale = inv_sqrt_d(in);
    LunaExtras::Data x = extras_shell(in, o, p);
    Tensor weights({H, Lq, Lk});
    Tensor out({H, Lq, dv});
    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t h = 0; h < H; ++h) {
      if (cancelled || (in.cancel && in.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      auto pack = x.pack_map.matrix(h);
      pack.noalias() = p.matrix(h) * in.k.matrix(h).transpose();
      pack *= scale;
      bool any = false;
      for (std::int64_t j = 0; j < Lk; ++j) any = any || !is_key_padded(in.key_padding, j);
      if (!any) {  // nothing to pack: every output and map stays 0
        pack.setZero();
        continue;
      }
      for (std::int64_t r = 0; r < o.pack_len; ++r) {
        auto row = pack.row(r);
        float top = kNegInf;
        for (std::int64_t j = 0; j < Lk; ++j)
          if (!is_key_padded(in.key_padding, j)) top = std::max(top, row(j));
        row = (row.array() - top).exp().matrix();
        for (std::int64_t j = 0; j < Lk; ++j)
          if (is_key_padded(in.key_padding, j)) row(j) = 0.0f;
        row /= row.sum();
      }
      x.packed_keys.matrix(h).noalias() = pack * in.k.matrix(h);
      x.packed_values.matrix(h).noalias() = pack * in.v.matrix(h);
      auto unpack = x.unpack_map.matrix(h);
      unpack.noalias() = in.q.matrix(h) * x.packed_keys.matrix(h).transpose();
      unpack *= scale;
      softmax_rows(unpack);
      weights.matrix(h).noalias() = unpack * pack;
      out.matrix(h).noalias() = unpack * x.packed_values.matrix(h);
    }
    if (cancelled) throw CancelledError();
    trace.weights = std::move(weights);
    trace.extras = std::make_shared<LunaExtras>(std::move(x));
    return out;
  }

  // The parallel causal form: every prefix at once through masked products.
  Tensor traced_causal(const AttentionInput& in, const LunaOptions& o, const Tensor& p, Trace& trace) const {
    const std::int64_t H = in.q.dim(0), L = in.q.dim(1), dv = in.v.dim(2);
    const std::int64_t l = o.pack_len;
    const float scale = inv_sqrt_d(in);
    LunaExtras::Data x = extras_shell(in, o, p);
    Tensor weights = Tensor::uninitialized({H, L, L});
    Tensor out = Tensor::uninitialized({H, L, dv});
    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t h = 0; h < H; ++h) {
      if (cancelled || (in.cancel && in.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      // Scores s [L, l] (0 for padded keys) and per-prefix normalisers N [L, l].
      RowMatrix s(L, l), norm(L, l);
      s.noalias() = in.k.matrix(h) * p.matrix(h).transpose();
      s *= scale;
      if (o.reference) {
        s = s.unaryExpr([](float g) { return softplus_ln2(g); });
      } else {
        RowVector top = RowVector::Constant(l, kNegInf);
        for (std::int64_t j = 0; j < L; ++j)
          if (!is_key_padded(in.key_padding, j)) top = top.cwiseMax(s.row(j));
        for (std::int64_t j = 0; j < L; ++j) s.row(j) = (s.row(j) - top).array().exp().matrix();
      }
      std::int64_t seen = 0;
      RowVector running = RowVector::Zero(l);
      for (std::int64_t j = 0; j < L; ++j) {
        if (is_key_padded(in.key_padding, j)) s.row(j).setZero();
        else ++seen;
        running += s.row(j);
        if (o.reference) norm.row(j).setConstant(static_cast<float>(seen));
        else norm.row(j) = running;
      }
      // Logits: ((q kᵀ) ⊙ tril) s ⊘ N / sqrt(d), softmax over the slots with mass.
      auto w = weights.matrix(h);
      w.noalias() = in.q.matrix(h) * in.k.matrix(h).transpose();
      for (std::int64_t t = 0; t + 1 < L; ++t) w.row(t).tail(L - t - 1).setZero();
      auto a = x.unpack_map.matrix(h);
      a.noalias() = w * s;
      seen = 0;
      for (std::int64_t t = 0; t < L; ++t) {
        seen += is_key_padded(in.key_padding, t) ? 0 : 1;
        auto row = a.row(t);
        float top = kNegInf;
        for (std::int64_t c = 0; c < l; ++c) {
          if (seen > 0 && norm(t, c) > 0.0f) {
            row(c) = row(c) / norm(t, c) * scale;
            top = std::max(top, row(c));
          } else {
            row(c) = kNegInf;
          }
        }
        if (top == kNegInf) {
          row.setZero();
          continue;
        }
        row = (row.array() - top).exp().matrix();
        row /= row.sum();
      }
      // W = ((a ⊘ N) sᵀ) ⊙ tril,  out = W V.
      RowMatrix b(L, l);
      for (std::int64_t t = 0; t < L; ++t)
        for (std::int64_t c = 0; c < l; ++c) b(t, c) = a(t, c) > 0.0f ? a(t, c) / norm(t, c) : 0.0f;
      w.noalias() = b * s.transpose();
      for (std::int64_t t = 0; t + 1 < L; ++t) w.row(t).tail(L - t - 1).setZero();
      out.matrix(h).noalias() = w * in.v.matrix(h);
      // The pack of the last step.
      if (seen > 0) {
        auto pack = x.pack_map.matrix(h);
        for (std::int64_t c = 0; c < l; ++c)
          if (norm(L - 1, c) > 0.0f) pack.row(c) = s.col(c).transpose() / norm(L - 1, c);
        x.packed_keys.matrix(h).noalias() = pack * in.k.matrix(h);
        x.packed_values.matrix(h).noalias() = pack * in.v.matrix(h);
      }
    }
    if (cancelled) throw CancelledError();
    trace.weights = std::move(weights);
    trace.extras = std::make_shared<LunaExtras>(std::move(x));
    return out;
  }

  VariantSpec spec_;
};

}  // namespace

nlohmann::json LunaExtras::to_json() const {
  const Data& d = data_;
  nlohmann::json j;
  j["kind"] = "luna";
  j["heads"] = d.heads;
  j["queries"] = d.queries;
  j["keys"] = d.keys;
  j["head_dim"] = d.head_dim;
  j["pack_len"] = d.pack_len;
  j["causal"] = d.causal;
  j["causal_form"] = d.causal_form;
  j["p_scale"] = d.p_scale;
  j["weights_convention"] = d.causal && d.causal_form == "reference"
                                ? "unpack ∘ pack with 1/t averages: rows do not sum to 1"
                                : "unpack ∘ pack: rows sum to 1";
  j["packed_sequence"] = tensor_to_json(d.packed_sequence);  // [H][l][d]
  j["pack_map"] = tensor_to_json(d.pack_map);                // [H][l][Lk]
  j["unpack_map"] = tensor_to_json(d.unpack_map);            // [H][Lq][l]
  j["packed_keys"] = tensor_to_json(d.packed_keys);          // [H][l][d]
  j["packed_values"] = tensor_to_json(d.packed_values);      // [H][l][dv]
  return j;
}

std::unique_ptr<Attention> make_luna_attention() { return std::make_unique<LunaAttention>(); }

}  // namespace attnlab
