// Transformer-MGK: mixture of Gaussian keys (Nguyen et al. 2022), registered as "mgk".
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   two keys per head   k1_j = k_j;  k2_j = k_j - μ (second_key = shift) or k2_j = R k_j (projection)
//   σ² = sqrt(d)
//   fixed / soft_em     A_ij ∝ π1(j)·exp(-‖q_i - k1_j‖²/2σ²) + π2(j)·exp(-‖q_i - k2_j‖²/2σ²),  π2 = 1 - π1
//   hard_em             A_ij ∝ exp(-min(‖q_i - k1_j‖², ‖q_i - k2_j‖²)/2σ²)
//   rows normalised over the visible keys; padded keys and, when causal, j > i get exactly 0.
//   weights (trace)     [H, Lq, Lk] the matrix A above.
//
// Reference: minhtannguyen/transformer-mgk, lra/attention.py. Its MultiGaussKernel shifts the key
// by per-head learned means (the first one fixed at 0, the second drawn N(0, 0.5²)); its "key2"
// variant uses a second projection W_k2. We have one k per head, so `second_key` chooses between
// a seeded shift μ_h ~ N(0, key2_scale²·I) (the reference's initialisation with key2_scale = 0.5)
// and a seeded near-identity map R_h = I + key2_scale·G_h/sqrt(d), G_h ~ N(0, 1) — standing in for a
// second projection of the same input. key2_scale = 0 makes k2 = k1 in both.
// Mixing weights: `pi_mode` fixed uses π1 = `pi1` (the reference's learnable pair, clamped to
// [0, 1]). soft_em follows the reference's buffer update: starting from π1 = pi1 for every key,
// each of `em_steps` steps sets π1(j) to the posterior responsibility of component 1 for key j,
// r_ij = π1 e1 / (π1 e1 + π2 e2), averaged over the EM query set of key j, then attends with the
// final π (the reference updates its buffer during training, from batches, and attends with the
// previous one; outside training we run the steps on the input itself). The EM query set is every
// query when non-causal. Causal: only the queries i <= j, so π(j) is a function of tokens up to j
// and no query ever reads a later token through it (averaging over every query, as the reference
// does in training, would leak the future into π). Padded positions are left out of the average
// when queries and keys are one sequence. hard_em uses the nearer key, no π.
//
// Numerics: -‖q - k‖²/2σ² = (q·k - ‖k‖²/2)/σ² - ‖q‖²/2σ², and the last term is the same for
// every key of a row (and both components), so it cancels in the normalisation and in r_ij; we
// use l_c(i, j) = (q_i·k_c,j - ‖k_c,j‖²/2)/σ². Rows are computed with their maximum over both
// components subtracted before exponentiation.
//
// Fast path (no trace): blockwise with an online maximum, as in softmax.cpp: per (head, block of
// queries), blocks of keys update the running maximum, denominator and unnormalised output; no
// L x L buffer (O(L²·d) time, as the method is quadratic). soft_em first runs its EM steps
// blockwise per (head, block of keys), each key block summing over its query set in order
// (O(L²) per step, result independent of the thread count).
// Traced path: dense per head, both component maps in the extras, π per EM step, responsibilities.
// GCC 12 emits Eigen's vectorised exp (pexp) out of line in this file and then reports a false
// -Wuninitialized inside its own AVX-512 headers (the same family of GCC 12 false positives
// CompilerOptions.cmake silences for -Wmaybe-uninitialized); fixed in GCC 13. Silenced for this
// file only, before Eigen is included.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "attention/mgk.h"

#include <omp.h>

#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "attention/variants.h"
#include "core/error.h"
#include "core/rng.h"

namespace attnlab {
namespace {

constexpr std::int64_t kQueryBlock = 64;
constexpr std::int64_t kKeyBlock = 256;
constexpr int kMaxEmSteps = 20;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

enum class PiMode { Fixed, SoftEm, HardEm };

struct MgkOptions {
  PiMode mode = PiMode::Fixed;
  std::string mode_name = "fixed";
  double pi1 = 0.5;
  int em_steps = 1;
  bool projection = false;
  double key2_scale = 0.5;
};

// Everything derived from the input that both paths share.
struct Keys {
  Tensor k2;           // [H, Lk, d] the second key of every token
  Tensor half_norm1;   // [H, Lk] ‖k1_j‖²/2
  Tensor half_norm2;   // [H, Lk] ‖k2_j‖²/2
  Tensor shift;        // [H, d] (shift) or empty
  Tensor projection;   // [H, d, d] (projection) or empty
  float inv_sigma2 = 1.0f;
};

Keys make_keys(const AttentionInput& in, const MgkOptions& o) {
  const std::int64_t H = in.k.dim(0), Lk = in.k.dim(1), d = in.k.dim(2);
  Keys keys;
  keys.inv_sigma2 = 1.0f / std::sqrt(static_cast<float>(d));
  keys.k2 = Tensor::uninitialized({H, Lk, d});
  if (o.projection) {
    keys.projection = Tensor::uninitialized({H, d, d});
    const double g_std = o.key2_scale / std::sqrt(static_cast<double>(d));
    for (std::int64_t h = 0; h < H; ++h) {
      Rng rng(Rng::derive(in.seed, "mgk/projection/head" + std::to_string(h)));
      for (std::int64_t a = 0; a < d; ++a)
        for (std::int64_t b = 0; b < d; ++b)
          keys.projection.at(h, a, b) = static_cast<float>((a == b ? 1.0 : 0.0) + g_std * rng.normal());
      keys.k2.matrix(h).noalias() = in.k.matrix(h) * keys.projection.matrix(h).transpose();
    }
  } else {
    keys.shift = Tensor::uninitialized({H, d});
    for (std::int64_t h = 0; h < H; ++h) {
      Rng rng(Rng::derive(in.seed, "mgk/shift/head" + std::to_string(h)));
      for (std::int64_t a = 0; a < d; ++a) keys.shift.at(h, a) = static_cast<float>(o.key2_scale * rng.normal());
      keys.k2.matrix(h) = in.k.matrix(h).rowwise() - keys.shift.matrix().row(h);
    }
  }
  keys.half_norm1 = Tensor::uninitialized({H, Lk});
  keys.half_norm2 = Tensor::uninitialized({H, Lk});
  for (std::int64_t h = 0; h < H; ++h) {
    keys.half_norm1.matrix().row(h) = 0.5f * in.k.matrix(h).rowwise().squaredNorm().transpose();
    keys.half_norm2.matrix().row(h) = 0.5f * keys.k2.matrix(h).rowwise().squaredNorm().transpose();
  }
  return keys;
}

// l = (q kᵀ - ‖k‖²/2) / σ² for queries [i0, i0 + rows) and keys [j0, j0 + cols) of head h.
template <typename Out>
void logits(const Tensor& q, const Tensor& k, const Tensor& half_norm, float inv_sigma2, std::int64_t h, std::int64_t i0,
            std::int64_t rows, std::int64_t j0, std::int64_t cols, Out&& out) {
  out.noalias() = q.matrix(h).middleRows(i0, rows) * k.matrix(h).middleRows(j0, cols).transpose();
  out.rowwise() -= half_norm.matrix().row(h).segment(j0, cols);
  out *= inv_sigma2;
}

// log(π2/π1) per key: r_ij = 1 / (1 + exp(log(π2/π1) + l2 - l1)); ±inf at π1 = 0 or 1 gives r = 0 or 1.
RowVector log_odds(const Eigen::Ref<const RowVector>& pi) {
  RowVector lo(pi.size());
  for (Eigen::Index j = 0; j < pi.size(); ++j) {
    const float p = pi(j);
    lo(j) = p <= 0.0f ? std::numeric_limits<float>::infinity()
            : p >= 1.0f ? kNegInf
                        : std::log1p(-p) - std::log(p);
  }
  return lo;
}

class MgkAttention final : public Attention {
 public:
  MgkAttention() {
    spec_.name = "mgk";
    spec_.title = "Mixture of Gaussian keys (Transformer-MGK)";
    spec_.paper = "Nguyen et al. 2022, Improving Transformers with Probabilistic Attention Keys (arXiv:2110.08678)";
    spec_.summary =
        "Each key is a mixture of two Gaussians: weights ∝ π1·exp(-‖q-k1‖²/2σ²) + π2·exp(-‖q-k2‖²/2σ²), σ² = √d.";
    spec_.params = {
        ParamSpec::choice("pi_mode", "Mixing weights", "fixed", {"fixed", "soft_em", "hard_em"},
                          "fixed: π1 = pi1 for every key; soft_em: EM steps set π1 per key to the posterior "
                          "responsibility averaged over queries; hard_em: use the nearer key, no π."),
        ParamSpec::real("pi1", "π1", 0.5, 0.0, 1.0,
                        "Mixing weight of the first key (π2 = 1 - π1); the starting value in soft_em."),
        ParamSpec::integer("em_steps", "EM steps", 1, 1, kMaxEmSteps, "Soft-EM updates of π before attending (soft_em only)."),
        ParamSpec::choice("second_key", "Second key", "shift", {"shift", "projection"},
                          "shift: k2 = k - μ with a seeded μ per head; projection: k2 = (I + s·G/√d) k with a seeded "
                          "Gaussian G per head."),
        ParamSpec::real("key2_scale", "Second key scale", 0.5, 0.0, 4.0,
                        "Standard deviation s of the shift μ, or of the perturbation G/√d; 0 makes k2 = k1."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    MgkOptions o;
    o.mode_name = in.params->get_choice("pi_mode");
    o.mode = o.mode_name == "soft_em" ? PiMode::SoftEm : o.mode_name == "hard_em" ? PiMode::HardEm : PiMode::Fixed;
    o.pi1 = in.params->get_float("pi1");
    o.em_steps = static_cast<int>(in.params->get_int("em_steps"));
    o.projection = in.params->get_choice("second_key") == "projection";
    o.key2_scale = in.params->get_float("key2_scale");
    const Keys keys = make_keys(in, o);
    if (trace) return forward_dense(in, o, keys, *trace);
    return forward_blockwise(in, o, keys);
  }

  // The second keys [H, Lk, d], half squared norms [2, H, Lk] and the shift [H, d] or projection
  // [H, d, d], held throughout. Fast path: π [H, Lk] (and the next π with soft EM), the output.
  // Traced: a copy of the shift or projection, the two components [H, Lq, Lk] each, π, its steps
  // [H, steps + 1, Lk], the responsibilities [H, Lk], the weights [H, Lq, Lk], the output.
  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override {
    const std::int64_t H = s.heads, d = s.d;
    const bool soft_em = params.get_choice("pi_mode") == "soft_em";
    const std::int64_t second = params.get_choice("second_key") == "projection" ? H * d * d : H * d;
    const std::int64_t keys = H * s.lk * d + 2 * H * s.lk + second;
    const std::int64_t out = H * s.lq * s.dv;
    if (!s.trace) return float_bytes(keys + (soft_em ? 2 : 1) * H * s.lk + out);
    const std::int64_t steps = soft_em ? params.get_int("em_steps") : 0;
    return float_bytes(keys + second + 3 * H * s.lq * s.lk + H * s.lk * (steps + 3) + out);
  }

 private:
  // Is query i in the EM query set of key j?
  static bool em_counts(const AttentionInput& in, std::int64_t i, std::int64_t j) {
    if (in.causal && i > j) return false;
    return !(in.q.dim(1) == in.k.dim(1) && is_key_padded(in.key_padding, i));
  }

  // One soft-EM step, blockwise over keys: pi_next(j) = mean of r_ij over the EM query set of j.
  static void em_step_blockwise(const AttentionInput& in, const Keys& keys, const Tensor& pi, Tensor& pi_next) {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1);
    const std::int64_t nkb = (Lk + kKeyBlock - 1) / kKeyBlock;
    bool cancelled = false;
#pragma omp parallel
    {
      RowMatrix l1(kQueryBlock, kKeyBlock), l2(kQueryBlock, kKeyBlock);
      RowVector sums(kKeyBlock), counts(kKeyBlock);
#pragma omp for schedule(dynamic)
      for (std::int64_t task = 0; task < H * nkb; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / nkb, j0 = (task % nkb) * kKeyBlock, cols = std::min(kKeyBlock, Lk - j0);
        const RowVector lo = log_odds(pi.matrix().row(h).segment(j0, cols));
        auto s = sums.head(cols);
        auto n = counts.head(cols);
        s.setZero();
        n.setZero();
        const std::int64_t query_end = in.causal ? std::min(Lq, j0 + cols) : Lq;  // causal: i <= j
        for (std::int64_t i0 = 0; i0 < query_end; i0 += kQueryBlock) {
          const std::int64_t rows = std::min(kQueryBlock, query_end - i0);
          auto a = l1.topLeftCorner(rows, cols);
          auto b = l2.topLeftCorner(rows, cols);
          logits(in.q, in.k, keys.half_norm1, keys.inv_sigma2, h, i0, rows, j0, cols, a);
          logits(in.q, keys.k2, keys.half_norm2, keys.inv_sigma2, h, i0, rows, j0, cols, b);
          // b <- r_ij = 1 / (1 + exp(log-odds + l2 - l1))
          b.array() = ((b - a).array().rowwise() + lo.array()).exp();
          b.array() = (b.array() + 1.0f).inverse();
          for (std::int64_t r = 0; r < rows; ++r) {
            const std::int64_t i = i0 + r;
            if (!in.causal && !em_counts(in, i, j0)) continue;
            for (std::int64_t c = 0; c < cols; ++c) {
              if (in.causal && !em_counts(in, i, j0 + c)) continue;
              s(c) += b(r, c);
              n(c) += 1.0f;
            }
          }
        }
        for (std::int64_t c = 0; c < cols; ++c) pi_next.at(h, j0 + c) = n(c) > 0.0f ? s(c) / n(c) : pi.at(h, j0 + c);
      }
    }
    if (cancelled) throw CancelledError();
  }

  Tensor forward_blockwise(const AttentionInput& in, const MgkOptions& o, const Keys& keys) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), dv = in.v.dim(2);
    Tensor pi({H, Lk});
    pi.fill(static_cast<float>(o.pi1));
    if (o.mode == PiMode::SoftEm) {
      Tensor next = Tensor::uninitialized({H, Lk});
      for (int step = 0; step < o.em_steps; ++step) {
        check_cancelled(in.cancel);
        em_step_blockwise(in, keys, pi, next);
        std::swap(pi, next);
      }
    }
    const bool hard = o.mode == PiMode::HardEm;
    Tensor out = Tensor::uninitialized({H, Lq, dv});
    const std::int64_t nqb = (Lq + kQueryBlock - 1) / kQueryBlock;
    bool cancelled = false;
#pragma omp parallel
    {
      RowMatrix l1(kQueryBlock, kKeyBlock), l2(kQueryBlock, kKeyBlock), probs(kQueryBlock, kKeyBlock), acc(kQueryBlock, dv);
      Eigen::VectorXf row_max(kQueryBlock), row_sum(kQueryBlock);
#pragma omp for schedule(dynamic)
      for (std::int64_t task = 0; task < H * nqb; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / nqb, q0 = (task % nqb) * kQueryBlock, rows = std::min(kQueryBlock, Lq - q0);
        auto m = row_max.head(rows);
        auto l = row_sum.head(rows);
        auto acc_rows = acc.topRows(rows);
        m.setConstant(kNegInf);
        l.setZero();
        acc_rows.setZero();
        const std::int64_t key_end = in.causal ? std::min(Lk, q0 + rows) : Lk;
        for (std::int64_t k0 = 0; k0 < key_end; k0 += kKeyBlock) {
          const std::int64_t cols = std::min(kKeyBlock, key_end - k0);
          auto a = l1.topLeftCorner(rows, cols);
          auto b = l2.topLeftCorner(rows, cols);
          auto p = probs.topLeftCorner(rows, cols);
          logits(in.q, in.k, keys.half_norm1, keys.inv_sigma2, h, q0, rows, k0, cols, a);
          logits(in.q, keys.k2, keys.half_norm2, keys.inv_sigma2, h, q0, rows, k0, cols, b);
          const auto pi_seg = pi.matrix().row(h).segment(k0, cols);
          for (std::int64_t r = 0; r < rows; ++r) {
            const std::int64_t i = q0 + r;
            // Visible keys of this row within the block: [k0, visible_end), minus padded ones.
            const std::int64_t visible_end = in.causal ? std::min(cols, i + 1 - k0) : cols;
            if (visible_end <= 0) {
              p.row(r).setZero();
              continue;
            }
            float block_max = kNegInf;
            for (std::int64_t c = 0; c < visible_end; ++c)
              if (!is_key_padded(in.key_padding, k0 + c)) block_max = std::max({block_max, a(r, c), b(r, c)});
            const float m_new = std::max(m(r), block_max);
            if (m_new == kNegInf) {
              p.row(r).setZero();
              continue;
            }
            const float rescale = m(r) == kNegInf ? 0.0f : std::exp(m(r) - m_new);
            if (hard) {
              p.row(r) = (a.row(r).cwiseMax(b.row(r)).array() - m_new).exp().matrix();
            } else {
              p.row(r) = ((a.row(r).array() - m_new).exp() * pi_seg.array() +
                          (b.row(r).array() - m_new).exp() * (1.0f - pi_seg.array())).matrix();
            }
            // Exact zeros for every key this query does not see.
            if (visible_end < cols) p.row(r).tail(cols - visible_end).setZero();
            if (in.key_padding)
              for (std::int64_t c = 0; c < visible_end; ++c)
                if (is_key_padded(in.key_padding, k0 + c)) p(r, c) = 0.0f;
            l(r) = l(r) * rescale + p.row(r).sum();
            acc_rows.row(r) *= rescale;
            m(r) = m_new;
          }
          acc_rows.noalias() += p * in.v.matrix(h).middleRows(k0, cols);
        }
        auto dst = out.matrix(h).middleRows(q0, rows);
        for (std::int64_t r = 0; r < rows; ++r) {
          if (l(r) > 0.0f) dst.row(r) = acc_rows.row(r) / l(r);
          else dst.row(r).setZero();
        }
      }
    }
    if (cancelled) throw CancelledError();
    return out;
  }

  Tensor forward_dense(const AttentionInput& in, const MgkOptions& o, const Keys& keys, Trace& trace) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), dv = in.v.dim(2);
    const bool hard = o.mode == PiMode::HardEm;
    const int steps = o.mode == PiMode::SoftEm ? o.em_steps : 0;
    MgkExtras::Data x;
    x.heads = H;
    x.queries = Lq;
    x.keys = Lk;
    x.head_dim = in.q.dim(2);
    x.causal = in.causal;
    x.pi_mode = o.mode_name;
    x.second_key = o.projection ? "projection" : "shift";
    x.pi1 = o.pi1;
    x.em_steps = steps;
    x.key2_scale = o.key2_scale;
    x.sigma2 = 1.0 / keys.inv_sigma2;
    x.key_shift = keys.shift;
    x.key_projection = keys.projection;
    x.component1 = Tensor::uninitialized({H, Lq, Lk});
    x.component2 = Tensor::uninitialized({H, Lq, Lk});
    x.pi = Tensor({H, Lk});
    x.pi.fill(hard ? 0.5f : static_cast<float>(o.pi1));
    x.pi_steps = Tensor::uninitialized({H, steps + 1, Lk});
    x.responsibility = Tensor::uninitialized({H, Lk});
    Tensor weights = Tensor::uninitialized({H, Lq, Lk});
    Tensor out = Tensor::uninitialized({H, Lq, dv});

    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t h = 0; h < H; ++h) {
      if (cancelled || (in.cancel && in.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      auto c1 = x.component1.matrix(h);  // holds l1, then component 1's share
      auto c2 = x.component2.matrix(h);  // holds l2, then component 2's share
      logits(in.q, in.k, keys.half_norm1, keys.inv_sigma2, h, 0, Lq, 0, Lk, c1);
      logits(in.q, keys.k2, keys.half_norm2, keys.inv_sigma2, h, 0, Lq, 0, Lk, c2);
      auto pi = x.pi.matrix().row(h);

      // Mean over the EM query set of each key of a per-pair quantity (one row at a time).
      RowVector sums(Lk), counts(Lk), pair(Lk);
      const auto em_mean = [&](const std::function<void(std::int64_t, RowVector&)>& per_pair, RowVector& result,
                               const RowVector& fallback) {
        sums.setZero();
        counts.setZero();
        for (std::int64_t i = 0; i < Lq; ++i) {
          if (in.q.dim(1) == in.k.dim(1) && is_key_padded(in.key_padding, i)) continue;
          per_pair(i, pair);
          const std::int64_t first = in.causal ? i : 0;  // causal: keys j >= i count query i
          if (first >= Lk) continue;
          sums.tail(Lk - first) += pair.tail(Lk - first);
          counts.tail(Lk - first).array() += 1.0f;
        }
        for (std::int64_t j = 0; j < Lk; ++j) result(j) = counts(j) > 0.0f ? sums(j) / counts(j) : fallback(j);
      };
      const auto posterior = [&](const RowVector& lo) {
        return [&, lo](std::int64_t i, RowVector& r) {
          r.array() = (((c2.row(i) - c1.row(i)).array() + lo.array()).exp() + 1.0f).inverse();
        };
      };
      x.pi_steps.matrix(h).row(0) = pi;
      for (int step = 0; step < steps; ++step) {
        RowVector next(Lk);
        const RowVector current = pi;
        em_mean(posterior(log_odds(current)), next, current);
        pi = next;
        x.pi_steps.matrix(h).row(step + 1) = pi;
      }
      {
        RowVector resp(Lk);
        const RowVector zeros = RowVector::Zero(Lk);
        if (hard) {
          em_mean([&](std::int64_t i, RowVector& r) { r = (c1.row(i).array() >= c2.row(i).array()).cast<float>().matrix(); },
                  resp, zeros);
        } else {
          em_mean(posterior(log_odds(pi)), resp, zeros);
        }
        x.responsibility.matrix().row(h) = resp;
      }

      // Component shares, row by row, with the row's maximum over both components subtracted.
      auto w = weights.matrix(h);
      for (std::int64_t i = 0; i < Lq; ++i) {
        const std::int64_t visible_end = in.causal ? std::min(Lk, i + 1) : Lk;
        float top = kNegInf;
        for (std::int64_t j = 0; j < visible_end; ++j)
          if (!is_key_padded(in.key_padding, j)) top = std::max({top, c1(i, j), c2(i, j)});
        if (top == kNegInf) {
          c1.row(i).setZero();
          c2.row(i).setZero();
          w.row(i).setZero();
          continue;
        }
        if (hard) {
          const RowVector nearer1 = (c1.row(i).array() >= c2.row(i).array()).cast<float>().matrix();
          const RowVector e = (c1.row(i).cwiseMax(c2.row(i)).array() - top).exp().matrix();
          c1.row(i) = e.cwiseProduct(nearer1);
          c2.row(i) = e - c1.row(i);
        } else {
          c1.row(i) = ((c1.row(i).array() - top).exp() * pi.array()).matrix();
          c2.row(i) = ((c2.row(i).array() - top).exp() * (1.0f - pi.array())).matrix();
        }
        if (visible_end < Lk) {
          c1.row(i).tail(Lk - visible_end).setZero();
          c2.row(i).tail(Lk - visible_end).setZero();
        }
        if (in.key_padding)
          for (std::int64_t j = 0; j < visible_end; ++j)
            if (is_key_padded(in.key_padding, j)) c1(i, j) = c2(i, j) = 0.0f;
        const float z = c1.row(i).sum() + c2.row(i).sum();
        c1.row(i) /= z;
        c2.row(i) /= z;
        w.row(i) = c1.row(i) + c2.row(i);
      }
      out.matrix(h).noalias() = w * in.v.matrix(h);
    }
    if (cancelled) throw CancelledError();
    trace.weights = std::move(weights);
    trace.extras = std::make_shared<MgkExtras>(std::move(x));
    return out;
  }

  VariantSpec spec_;
};

}  // namespace

nlohmann::json MgkExtras::to_json() const {
  const Data& d = data_;
  nlohmann::json j;
  j["kind"] = "mgk";
  j["heads"] = d.heads;
  j["queries"] = d.queries;
  j["keys"] = d.keys;
  j["head_dim"] = d.head_dim;
  j["causal"] = d.causal;
  j["pi_mode"] = d.pi_mode;
  j["second_key"] = d.second_key;
  j["pi1"] = d.pi1;
  j["em_steps"] = d.em_steps;
  j["key2_scale"] = d.key2_scale;
  j["sigma2"] = d.sigma2;
  j["key_shift"] = tensor_to_json(d.key_shift);            // [H][d] or []
  j["key_projection"] = tensor_to_json(d.key_projection);  // [H][d][d] or []
  j["component1"] = tensor_to_json(d.component1);          // [H][Lq][Lk]
  j["component2"] = tensor_to_json(d.component2);          // [H][Lq][Lk]
  j["pi"] = tensor_to_json(d.pi);                          // [H][Lk]
  j["pi_steps"] = tensor_to_json(d.pi_steps);              // [H][S+1][Lk]
  j["responsibility"] = tensor_to_json(d.responsibility);  // [H][Lk]
  return j;
}

std::unique_ptr<Attention> make_mgk_attention() { return std::make_unique<MgkAttention>(); }

}  // namespace attnlab
