// Learned spectral kernels (Chowdhury et al. 2021, "On Learning the Transformer Kernel"),
// registered as "spectral".
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   inputs scaled  x' = x · d^(-1/4)   (the reference's sqrt(softmax_temp), temp = 1/sqrt(d))
//   frequencies    ω_m = μ_{c(m)} + spread · ε_m,  ε_m ~ N(0, I_d),  m = 0..M-1,  c(m) = m mod C
//                  a mixture of C isotropic Gaussians N(μ_c, spread²·I); component c holds n_c of
//                  the M samples, so its mixture weight is w_c = n_c / M (uniform when C divides M)
//   kind "prf"     φ_m(x) = exp(ω_mᵀx' - ‖x'‖² - ½ log M)                       (M features, > 0)
//                  E φ(x)·φ(y) = Σ_c w_c exp(μ_cᵀ(x'+y') + spread²‖x'+y'‖²/2 - ‖x'‖² - ‖y'‖²),
//                  which for μ = 0, spread = 1 is the Gaussian kernel exp(-‖x'-y'‖²/2)
//   kind "rks"     φ(x) = M^(-1/2) [cos(ω_mᵀx')]_m ⊕ [sin(ω_mᵀx')]_m             (2M features)
//                  E φ(x)·φ(y) = E cos(ωᵀΔ') = Σ_c w_c cos(μ_cᵀΔ') exp(-spread²‖Δ'‖²/2), Δ' = x'-y'
//   attention      linear attention with these features (#6): S = Σ_j φ(k_j) v_jᵀ, z = Σ_j φ(k_j),
//                  out_i = φ(q_i)ᵀS / D_i,  D_i = φ(q_i)ᵀz; causal: prefix sums over j <= i
//   weights (trace) [H, Lq, Lk]  A_ij = φ(q_i)·φ(k_j) / D_i on visible pairs, exact 0 elsewhere
//
// Reference: cs1160701/OnLearningTheKernel, fast_transformers/feature_maps/fourier_features.py
// (GaussianMixturePositive for "prf": ω = ε·exp(σ/2) + μ per head with a diagonal σ, offset
// ‖x‖² + ½ log M; GaussianMixtureFourierFeatures for "rks": ω± = Sᵀε ± μ, features
// [cos ω⁺x, sin ω⁺x, cos ω⁻x, sin ω⁻x]). Outside a trained model the learned parameters become
// seeded draws and three knobs: `components` C, `mean_scale` = ‖μ_c‖ (directions uniform on the
// sphere, per head and component) and `spread` (the common standard deviation, exp(σ/2) of the
// reference with σ shared by every dimension). For "rks" we pair one ω with [cos, sin] instead
// of the reference's ± pairing of a shared ε: the expectation is the same kernel; the antithetic
// ± pairing only lowers variance. The reference also offers FastFood and generator-network
// feature maps; this variant is the Gaussian-mixture family the issue names, not those.
//
// Normalisation. "prf" features are positive, so D_i > 0 and rows sum to 1. Random Fourier
// features are not positive: φ(q)·φ(k) estimates a kernel in (0, 1] with an error of order
// M^(-1/2) of either sign, and D_i can come out near zero or negative. Kind "rks" therefore
// clamps the normaliser: D_i <- max(D_i, kRksFloor · n_i), n_i the number of keys query i sees
// (φ(x)·φ(x) = 1 exactly, so a kernel value of 1e-3 per key is the floor). Rows whose normaliser
// was clamped do not sum to 1 and are flagged in the extras; others sum to 1 but may hold
// negative weights. "prf" is the default for that reason.
//
// Stability of "prf". exp(ω·x' - ‖x'‖²) may overflow or underflow float for large inputs. Every
// exponent is shifted per feature by c_m and per query by r_i, which cancels exactly:
// φ(q_i)·φ(k_j) ∝_i Σ_m exp(b_im + c_m - r_i) · exp(a_jm - c_m), a_jm = ω_m·k'_j - ‖k'_j‖²,
// b_im = ω_m·q'_i (the query's own constants cancel in its row). Non-causal: c_m = max_j a_jm
// over visible keys, r_i = max_m (b_im + c_m), so the largest term is 1. Causal (token scan):
// c_m is the running maximum over the keys seen so far; when it grows, row m of S and z are
// rescaled by exp(c_old - c_new), so no number depends on a later token.
//
// Fast path (no trace). Non-causal: blocks of kBlock keys in parallel (a maximum pass for "prf",
// then per-block ΔS, Δz summed in block order), then query blocks in parallel: O(L·M·(d + dv)),
// memory O(L/256 · F · dv), independent of the thread count. Causal: the recurrent form, one
// token at a time per head (state F × dv), projections computed a block at a time.
// Traced path: the same output (the fast code), plus the dense matrix from the features, the
// features themselves, ω and its 2-D projection, and the implied kernel curve.
#include "attention/spectral.h"

#include <omp.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "attention/variants.h"
#include "core/error.h"
#include "core/rng.h"

namespace attnlab {
namespace {

constexpr std::int64_t kBlock = 256;
constexpr std::int64_t kMaxSamples = 1024;
constexpr int kMaxComponents = 8;
constexpr float kRksFloor = 1e-3f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kMaxLogFeature = 88.0f;  // exp(88) is just below float's largest value
constexpr double kCurveReach = 1.5;      // curve ends at 1.5 × the RMS query-key distance

struct SpectralOptions {
  bool positive = true;  // kind "prf"
  std::int64_t samples = 64;
  std::int64_t components = 2;
  double mean_scale = 0.5;
  double spread = 1.0;
  std::int64_t feature_dim() const { return positive ? samples : 2 * samples; }
};

struct Frequencies {
  Tensor omega;  // [H, M, d]
  Tensor means;  // [H, C, d]
  float input_scale = 1.0f;
};

Frequencies draw_frequencies(std::uint64_t seed, std::int64_t heads, std::int64_t d, const SpectralOptions& o) {
  Frequencies f{Tensor::uninitialized({heads, o.samples, d}), Tensor({heads, o.components, d}),
                static_cast<float>(std::pow(static_cast<double>(d), -0.25))};
  std::vector<double> g(static_cast<std::size_t>(d));
  for (std::int64_t h = 0; h < heads; ++h) {
    Rng mean_rng(Rng::derive(seed, "spectral/means/head" + std::to_string(h)));
    for (std::int64_t c = 0; c < o.components; ++c) {
      double norm = 0.0;
      for (auto& x : g) {
        x = mean_rng.normal();
        norm += x * x;
      }
      norm = std::sqrt(norm);
      if (norm == 0.0) continue;
      for (std::int64_t e = 0; e < d; ++e)
        f.means.at(h, c, e) = static_cast<float>(o.mean_scale * g[static_cast<std::size_t>(e)] / norm);
    }
    Rng noise_rng(Rng::derive(seed, "spectral/noise/head" + std::to_string(h)));
    for (std::int64_t m = 0; m < o.samples; ++m) {
      const std::int64_t c = m % o.components;
      for (std::int64_t e = 0; e < d; ++e)
        f.omega.at(h, m, e) = static_cast<float>(f.means.at(h, c, e) + o.spread * noise_rng.normal());
    }
  }
  return f;
}

// u = d^(-1/4) · x Ωᵀ: the projections ω_m·x' of the rows of x, [rows, M].
template <typename In, typename Out>
void project(const In& x, const Frequencies& f, std::int64_t head, Out&& u) {
  u.noalias() = x * f.omega.matrix(head).transpose();
  u *= f.input_scale;
}

// Subtracts ‖x'‖² from every row: turns projections into the "prf" key exponents a.
template <typename In, typename Out>
void subtract_norms(const In& x, float input_scale, Out&& a) {
  const float s2 = input_scale * input_scale;
  for (std::int64_t r = 0; r < a.rows(); ++r) a.row(r).array() -= s2 * x.row(r).squaredNorm();
}

// "rks" features from projections u [rows, M]: M^(-1/2) [cos u, sin u], [rows, 2M]. Scalar
// std::cos/std::sin (the compiler pairs them into one sincos): Eigen's vectorised sin/cos trips a
// false -Wuninitialized inside GCC 12's AVX-512 headers.
template <typename In, typename Out>
void fourier_features(const In& u, Out&& f) {
  const std::int64_t m = u.cols();
  const float scale = 1.0f / std::sqrt(static_cast<float>(m));
  for (std::int64_t r = 0; r < u.rows(); ++r)
    for (std::int64_t c = 0; c < m; ++c) {
      const float x = u(r, c);
      f(r, c) = std::cos(x) * scale;
      f(r, m + c) = std::sin(x) * scale;
    }
}

class SpectralAttention final : public Attention {
 public:
  SpectralAttention() {
    spec_.name = "spectral";
    spec_.title = "Learned spectral kernel attention";
    spec_.paper = "Chowdhury et al. 2021, On Learning the Transformer Kernel (arXiv:2110.08323)";
    spec_.summary =
        "Linear attention with random features whose frequencies come from a Gaussian mixture (the learned "
        "spectral distribution, seeded here): positive (PRF) or random Fourier (RKS) features.";
    spec_.params = {
        ParamSpec::choice("kind", "Feature kind", "prf", {"prf", "rks"},
                          "prf: positive features exp(ωᵀx - ‖x‖²), rows sum to 1; rks: random Fourier features "
                          "[cos ωᵀx, sin ωᵀx], not positive, normaliser clamped at 1e-3 per visible key."),
        ParamSpec::integer("n_features", "Frequency samples M", 64, 1, kMaxSamples,
                           "Number of ω drawn from the mixture (feature length M for prf, 2M for rks); the kernel "
                           "estimate's error falls like M^(-1/2)."),
        ParamSpec::integer("components", "Mixture components", 2, 1, kMaxComponents,
                           "Gaussian components of the spectral distribution; feature m comes from component m mod C."),
        ParamSpec::real("mean_scale", "Component mean norm", 0.5, 0.0, 4.0,
                        "‖μ_c‖ of each component mean (seeded direction per head); 0 centres every component."),
        ParamSpec::real("spread", "Component spread", 1.0, 0.0, 2.0,
                        "Standard deviation of each component; 1 with mean_scale 0 gives the Gaussian kernel "
                        "exp(-‖x'-y'‖²/2)."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    SpectralOptions o;
    o.positive = in.params->get_choice("kind") == "prf";
    o.samples = in.params->get_int("n_features");
    o.components = in.params->get_int("components");
    o.mean_scale = in.params->get_float("mean_scale");
    o.spread = in.params->get_float("spread");
    const Frequencies f = draw_frequencies(in.seed, in.q.dim(0), in.q.dim(2), o);
    Tensor out = in.causal ? forward_scan(in, o, f) : forward_blocks(in, o, f);
    if (trace) fill_trace(in, o, f, *trace);
    return out;
  }

  // Frequencies ω [H, M, d] and component means [H, C, d], held throughout. Non-causal: the
  // shifts [H, M], for "prf" the block maxima [H·nb, M] (freed before the sums), the block sums
  // ΔS [H·nb, F, dv] and Δz [H·nb, F], the output (nb = ceil(Lk / 256)). Causal: the output (the
  // scan's state is Eigen scratch). A trace then adds copies of ω and the means, the features
  // [H, Lq, F] and [H, Lk, F], the weights [H, Lq, Lk], the plane axes [H, 2, d], ω and means in
  // the plane [H, M, 2], [H, C, 2], and the curve directions [8, d].
  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override {
    const bool positive = params.get_choice("kind") == "prf";
    const std::int64_t H = s.heads, M = params.get_int("n_features"), C = params.get_int("components");
    const std::int64_t F = positive ? M : 2 * M;
    const std::int64_t frequencies = float_bytes(H * M * s.d + H * C * s.d);
    const std::int64_t out = float_bytes(H * s.lq * s.dv);
    std::int64_t fast = out;
    if (!s.causal) {
      const std::int64_t nb = (s.lk + kBlock - 1) / kBlock;
      const std::int64_t maxima = positive ? float_bytes(H * nb * M) : 0;
      fast = float_bytes(H * M) + std::max(maxima, float_bytes(H * nb * (F * s.dv + F)) + out);
    }
    if (!s.trace) return frequencies + fast;
    const std::int64_t record = frequencies + float_bytes(H * (s.lq + s.lk) * F + H * s.lq * s.lk + H * 2 * s.d + H * M * 2 +
                                                          H * C * 2 + SpectralExtras::kCurveDirections * s.d);
    return frequencies + std::max(fast, out + record);
  }

 private:
  // Non-causal linear attention over blocks of keys and queries.
  Tensor forward_blocks(const AttentionInput& in, const SpectralOptions& o, const Frequencies& f) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), dv = in.v.dim(2);
    const std::int64_t M = o.samples, F = o.feature_dim();
    const std::int64_t nb = (Lk + kBlock - 1) / kBlock;
    std::int64_t visible = 0;
    for (std::int64_t j = 0; j < Lk; ++j) visible += is_key_padded(in.key_padding, j) ? 0 : 1;

    // "prf": c_m = max over visible keys of a_jm, per head ([H, M]; -inf when no key is visible).
    Tensor shift({H, M});
    bool cancelled = false;
    if (o.positive) {
      Tensor block_max = Tensor::uninitialized({H * nb, M});
#pragma omp parallel
      {
        RowMatrix a(kBlock, M);
#pragma omp for schedule(static)
        for (std::int64_t task = 0; task < H * nb; ++task) {
          if (cancelled || (in.cancel && in.cancel->cancelled())) {
            cancelled = true;
            continue;
          }
          const std::int64_t h = task / nb, j0 = (task % nb) * kBlock, rows = std::min(kBlock, Lk - j0);
          const auto x = in.k.matrix(h).middleRows(j0, rows);
          auto ab = a.topRows(rows);
          project(x, f, h, ab);
          subtract_norms(x, f.input_scale, ab);
          auto mx = block_max.matrix().row(task);
          mx.setConstant(kNegInf);
          for (std::int64_t r = 0; r < rows; ++r)
            if (!is_key_padded(in.key_padding, j0 + r)) mx = mx.cwiseMax(ab.row(r));
        }
      }
      if (cancelled) throw CancelledError();
      for (std::int64_t h = 0; h < H; ++h) {
        auto c = shift.matrix().row(h);
        c.setConstant(kNegInf);
        for (std::int64_t b = 0; b < nb; ++b) c = c.cwiseMax(block_max.matrix().row(h * nb + b));
      }
    }

    // Per-block ΔS [F, dv] and Δz [F], then their sum in block order (into block 0 of the head).
    Tensor ds = Tensor::uninitialized({H * nb, F, dv});
    Tensor dz = Tensor::uninitialized({H * nb, F});
#pragma omp parallel
    {
      RowMatrix u(kBlock, M), phi(kBlock, F);
#pragma omp for schedule(static)
      for (std::int64_t task = 0; task < H * nb; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / nb, j0 = (task % nb) * kBlock, rows = std::min(kBlock, Lk - j0);
        const auto x = in.k.matrix(h).middleRows(j0, rows);
        auto ub = u.topRows(rows);
        auto fb = phi.topRows(rows);
        project(x, f, h, ub);
        if (o.positive) {
          subtract_norms(x, f.input_scale, ub);
          const auto c = shift.matrix().row(h);
          for (std::int64_t r = 0; r < rows; ++r) fb.row(r) = (ub.row(r) - c).array().exp().matrix();
        } else {
          fourier_features(ub, fb);
        }
        for (std::int64_t r = 0; r < rows; ++r)
          if (is_key_padded(in.key_padding, j0 + r)) fb.row(r).setZero();
        ds.matrix(task).noalias() = fb.transpose() * in.v.matrix(h).middleRows(j0, rows);
        dz.matrix().row(task) = fb.colwise().sum();
      }
    }
    if (cancelled) throw CancelledError();
#pragma omp parallel for schedule(static) if (H > 1)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t b = 1; b < nb; ++b) {
        ds.matrix(h * nb) += ds.matrix(h * nb + b);
        dz.matrix().row(h * nb) += dz.matrix().row(h * nb + b);
      }

    Tensor out = Tensor::uninitialized({H, Lq, dv});
    const std::int64_t nqb = (Lq + kBlock - 1) / kBlock;
#pragma omp parallel
    {
      RowMatrix u(kBlock, M), g(kBlock, F), num(kBlock, dv);
      Eigen::VectorXf den(kBlock);
#pragma omp for schedule(static)
      for (std::int64_t task = 0; task < H * nqb; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / nqb, i0 = (task % nqb) * kBlock, rows = std::min(kBlock, Lq - i0);
        auto dst = out.matrix(h).middleRows(i0, rows);
        if (visible == 0) {
          dst.setZero();
          continue;
        }
        auto ub = u.topRows(rows);
        auto gb = g.topRows(rows);
        project(in.q.matrix(h).middleRows(i0, rows), f, h, ub);
        if (o.positive) {
          const auto c = shift.matrix().row(h);
          for (std::int64_t r = 0; r < rows; ++r) {
            auto row = ub.row(r);
            row += c;
            gb.row(r) = (row.array() - row.maxCoeff()).exp().matrix();
          }
        } else {
          fourier_features(ub, gb);
        }
        auto n = num.topRows(rows);
        auto dn = den.head(rows);
        n.noalias() = gb * ds.matrix(h * nb);
        dn.noalias() = gb * dz.matrix().row(h * nb).transpose();
        const float floor = kRksFloor * static_cast<float>(visible);
        for (std::int64_t r = 0; r < rows; ++r) {
          const float d_i = o.positive ? dn(r) : std::max(dn(r), floor);
          dst.row(r) = n.row(r) / d_i;
        }
      }
    }
    if (cancelled) throw CancelledError();
    return out;
  }

  // Causal: the recurrent form, one token at a time per head, carrying (S, z) and, for "prf",
  // the running per-feature maximum c.
  Tensor forward_scan(const AttentionInput& in, const SpectralOptions& o, const Frequencies& f) const {
    const std::int64_t H = in.q.dim(0), L = in.q.dim(1), dv = in.v.dim(2);
    const std::int64_t M = o.samples, F = o.feature_dim();
    Tensor out = Tensor::uninitialized({H, L, dv});
    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t h = 0; h < H; ++h) {
      RowMatrix s = RowMatrix::Zero(F, dv);
      RowVector z = RowVector::Zero(F);
      RowVector c = RowVector::Constant(M, kNegInf);
      RowVector feature(F), query(F);
      RowMatrix uk(kBlock, M), uq(kBlock, M), fk(kBlock, F), fq(kBlock, F);
      std::int64_t seen = 0;
      auto y = out.matrix(h);
      for (std::int64_t t0 = 0; t0 < L; t0 += kBlock) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          break;
        }
        const std::int64_t rows = std::min(kBlock, L - t0);
        const auto xk = in.k.matrix(h).middleRows(t0, rows);
        auto ukb = uk.topRows(rows);
        auto uqb = uq.topRows(rows);
        project(xk, f, h, ukb);
        project(in.q.matrix(h).middleRows(t0, rows), f, h, uqb);
        if (o.positive) {
          subtract_norms(xk, f.input_scale, ukb);
        } else {
          fourier_features(ukb, fk.topRows(rows));
          fourier_features(uqb, fq.topRows(rows));
        }
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t t = t0 + r;
          if (!is_key_padded(in.key_padding, t)) {
            if (o.positive) {
              const auto a = ukb.row(r);
              for (std::int64_t m = 0; m < M; ++m) {
                if (a(m) <= c(m)) continue;
                const float rescale = c(m) == kNegInf ? 0.0f : std::exp(c(m) - a(m));
                s.row(m) *= rescale;
                z(m) *= rescale;
                c(m) = a(m);
              }
              feature = (a - c).array().exp().matrix();
            } else {
              feature = fk.row(r);
            }
            s.noalias() += feature.transpose() * in.v.matrix(h).row(t);
            z += feature;
            ++seen;
          }
          if (seen == 0) {
            y.row(t).setZero();
            continue;
          }
          float den = 0.0f;
          if (o.positive) {
            query = uqb.row(r) + c;
            query = (query.array() - query.maxCoeff()).exp().matrix();
            den = query.dot(z);
          } else {
            query = fq.row(r);
            den = std::max(query.dot(z), kRksFloor * static_cast<float>(seen));
          }
          y.row(t).noalias() = query * s;
          y.row(t) /= den;
        }
      }
    }
    if (cancelled) throw CancelledError();
    return out;
  }

  // The dense implied matrix, the features, ω and its projection, and the kernel curves.
  void fill_trace(const AttentionInput& in, const SpectralOptions& o, const Frequencies& f, Trace& trace) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), d = in.q.dim(2);
    const std::int64_t M = o.samples, F = o.feature_dim();
    SpectralExtras::Data x;
    x.heads = H;
    x.queries = Lq;
    x.keys = Lk;
    x.head_dim = d;
    x.samples = M;
    x.feature_dim = F;
    x.components = o.components;
    x.kind = o.positive ? "prf" : "rks";
    x.mean_scale = o.mean_scale;
    x.spread = o.spread;
    x.input_scale = f.input_scale;
    x.rks_floor = o.positive ? 0.0 : kRksFloor;
    x.causal = in.causal;
    x.omega = f.omega;
    x.means = f.means;
    for (std::int64_t m = 0; m < M; ++m) x.component.push_back(static_cast<int>(m % o.components));
    for (std::int64_t c = 0; c < o.components; ++c)
      x.component_weight.push_back(static_cast<double>((M - c + o.components - 1) / o.components) / static_cast<double>(M));
    x.query_features = Tensor::uninitialized({H, Lq, F});
    x.key_features = Tensor::uninitialized({H, Lk, F});
    x.clamped.assign(static_cast<std::size_t>(H * Lq), 0);
    Tensor weights = Tensor::uninitialized({H, Lq, Lk});
    const float log_half_m = 0.5f * std::log(static_cast<float>(M));

    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t h = 0; h < H; ++h) {
      if (cancelled || (in.cancel && in.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      RowMatrix uq(Lq, M), uk(Lk, M);
      project(in.q.matrix(h), f, h, uq);
      project(in.k.matrix(h), f, h, uk);
      auto fq = x.query_features.matrix(h);
      auto fk = x.key_features.matrix(h);
      auto w = weights.matrix(h);
      const auto is_visible = [&](std::int64_t i, std::int64_t j) {
        return !(in.causal && j > i) && !is_key_padded(in.key_padding, j);
      };
      if (o.positive) {
        RowMatrix aq = uq;
        subtract_norms(in.q.matrix(h), f.input_scale, aq);
        subtract_norms(in.k.matrix(h), f.input_scale, uk);  // uk now holds the key exponents a
        fq = (aq.array() - log_half_m).min(kMaxLogFeature).exp().matrix();
        fk = (uk.array() - log_half_m).min(kMaxLogFeature).exp().matrix();
        // Shifted features: c_m = max over visible keys, r_i = max over the query's terms.
        RowVector c = RowVector::Constant(M, kNegInf);
        for (std::int64_t j = 0; j < Lk; ++j)
          if (!is_key_padded(in.key_padding, j)) c = c.cwiseMax(uk.row(j));
        if (c(0) == kNegInf) {  // no visible key at all
          w.setZero();
          continue;
        }
        RowMatrix key_shifted(Lk, M), query_shifted(Lq, M);
        for (std::int64_t j = 0; j < Lk; ++j) key_shifted.row(j) = (uk.row(j) - c).array().exp().matrix();
        for (std::int64_t i = 0; i < Lq; ++i) {
          RowVector b = uq.row(i) + c;
          query_shifted.row(i) = (b.array() - b.maxCoeff()).exp().matrix();
        }
        w.noalias() = query_shifted * key_shifted.transpose();
        for (std::int64_t i = 0; i < Lq; ++i) {
          auto row = w.row(i);
          bool any = false;
          for (std::int64_t j = 0; j < Lk; ++j) {
            if (is_visible(i, j)) any = true;
            else row(j) = 0.0f;
          }
          const float sum = row.sum();
          if (any && sum > 0.0f && std::isfinite(sum)) {
            row /= sum;
          } else if (any) {
            // Every visible term underflowed under the shared shift: redo the row in log space.
            std::vector<double> logk(static_cast<std::size_t>(Lk), -std::numeric_limits<double>::infinity());
            double top = -std::numeric_limits<double>::infinity();
            for (std::int64_t j = 0; j < Lk; ++j) {
              if (!is_visible(i, j)) continue;
              double mx = -std::numeric_limits<double>::infinity();
              for (std::int64_t m = 0; m < M; ++m) mx = std::max(mx, static_cast<double>(uq(i, m)) + uk(j, m));
              double acc = 0.0;
              for (std::int64_t m = 0; m < M; ++m) acc += std::exp(static_cast<double>(uq(i, m)) + uk(j, m) - mx);
              logk[static_cast<std::size_t>(j)] = mx + std::log(acc);
              top = std::max(top, logk[static_cast<std::size_t>(j)]);
            }
            double total = 0.0;
            for (std::int64_t j = 0; j < Lk; ++j)
              if (is_visible(i, j)) total += std::exp(logk[static_cast<std::size_t>(j)] - top);
            for (std::int64_t j = 0; j < Lk; ++j)
              row(j) = is_visible(i, j) ? static_cast<float>(std::exp(logk[static_cast<std::size_t>(j)] - top) / total) : 0.0f;
          }
        }
      } else {
        fourier_features(uq, fq);
        fourier_features(uk, fk);
        w.noalias() = fq * fk.transpose();
        for (std::int64_t i = 0; i < Lq; ++i) {
          auto row = w.row(i);
          std::int64_t seen = 0;
          for (std::int64_t j = 0; j < Lk; ++j) {
            if (is_visible(i, j)) ++seen;
            else row(j) = 0.0f;
          }
          if (seen == 0) continue;
          const float sum = row.sum();
          const float floor = kRksFloor * static_cast<float>(seen);
          if (sum < floor) x.clamped[static_cast<std::size_t>(h * Lq + i)] = 1;
          row /= std::max(sum, floor);
        }
      }
    }
    if (cancelled) throw CancelledError();
    project_frequencies(f, o, x);
    kernel_curves(in, f, o, x);
    trace.weights = std::move(weights);
    trace.extras = std::make_shared<SpectralExtras>(std::move(x));
  }

  // The two principal axes of each head's ω samples, and ω and μ projected on them.
  static void project_frequencies(const Frequencies& f, const SpectralOptions& o, SpectralExtras::Data& x) {
    const std::int64_t H = f.omega.dim(0), M = o.samples, d = f.omega.dim(2), C = o.components;
    x.projection_axes = Tensor({H, 2, d});
    x.omega_2d = Tensor({H, M, 2});
    x.means_2d = Tensor({H, C, 2});
    for (std::int64_t h = 0; h < H; ++h) {
      const Eigen::MatrixXd omega = f.omega.matrix(h).cast<double>();
      const Eigen::RowVectorXd mean = omega.colwise().mean();
      const Eigen::MatrixXd centred = omega.rowwise() - mean;
      Eigen::MatrixXd axes = Eigen::MatrixXd::Zero(2, d);
      if (d >= 2 && M >= 2) {
        const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(centred.transpose() * centred);
        axes.row(0) = eig.eigenvectors().col(d - 1).transpose();
        axes.row(1) = eig.eigenvectors().col(d - 2).transpose();
      } else {
        axes(0, 0) = 1.0;
        if (d >= 2) axes(1, 1) = 1.0;
      }
      for (int a = 0; a < 2; ++a) {  // a sign convention: the largest coordinate is positive
        Eigen::Index at = 0;
        axes.row(a).cwiseAbs().maxCoeff(&at);
        if (axes(a, at) < 0.0) axes.row(a) *= -1.0;
      }
      x.projection_axes.matrix(h) = axes.cast<float>();
      x.omega_2d.matrix(h) = (centred * axes.transpose()).cast<float>();
      x.means_2d.matrix(h) = ((f.means.matrix(h).cast<double>().rowwise() - mean) * axes.transpose()).cast<float>();
    }
  }

  // The implied kernel against distance (see spectral.h), averaged over seeded unit directions,
  // closed form and estimate from the drawn ω, over [0, 1.5 × RMS distance of q' and k'].
  static void kernel_curves(const AttentionInput& in, const Frequencies& f, const SpectralOptions& o,
                            SpectralExtras::Data& x) {
    const std::int64_t H = f.omega.dim(0), M = o.samples, d = f.omega.dim(2), C = o.components;
    constexpr int K = SpectralExtras::kCurvePoints, n_dirs = SpectralExtras::kCurveDirections;
    // RMS distance between scaled queries and keys over every head: E‖q'‖² + E‖k'‖² - 2 E q'·E k'.
    double q2 = 0.0, k2 = 0.0, cross = 0.0;
    for (std::int64_t h = 0; h < H; ++h) {
      const Eigen::RowVectorXd qm = in.q.matrix(h).cast<double>().colwise().mean();
      const Eigen::RowVectorXd km = in.k.matrix(h).cast<double>().colwise().mean();
      q2 += in.q.matrix(h).cast<double>().rowwise().squaredNorm().mean();
      k2 += in.k.matrix(h).cast<double>().rowwise().squaredNorm().mean();
      cross += qm.dot(km);
    }
    const double s2 = static_cast<double>(f.input_scale) * f.input_scale;
    const double rms = std::sqrt(std::max(0.0, (q2 + k2 - 2.0 * cross) / static_cast<double>(H) * s2));
    const double reach = rms > 0.0 ? kCurveReach * rms : 1.0;
    for (int p = 0; p < K; ++p) x.curve_delta.push_back(reach * p / (K - 1));

    Rng rng(Rng::derive(in.seed, "spectral/curve_directions"));
    Eigen::MatrixXd dirs(n_dirs, d);
    for (int r = 0; r < n_dirs; ++r) {
      for (std::int64_t e = 0; e < d; ++e) dirs(r, e) = rng.normal();
      dirs.row(r).normalize();
    }
    x.curve_directions = Tensor({n_dirs, d});
    x.curve_directions.matrix() = dirs.cast<float>();
    x.kernel_closed.assign(static_cast<std::size_t>(H * K), 0.0);
    x.kernel_estimate.assign(static_cast<std::size_t>(H * K), 0.0);
    const double spread2 = o.spread * o.spread;
    for (std::int64_t h = 0; h < H; ++h) {
      const Eigen::MatrixXd omega_dirs = f.omega.matrix(h).cast<double>() * dirs.transpose();  // [M, dirs]
      const Eigen::MatrixXd mean_dirs = f.means.matrix(h).cast<double>() * dirs.transpose();   // [C, dirs]
      for (int p = 0; p < K; ++p) {
        const double r = x.curve_delta[static_cast<std::size_t>(p)];
        double closed = 0.0, estimate = 0.0;
        for (int u = 0; u < n_dirs; ++u) {
          for (std::int64_t c = 0; c < C; ++c) {
            const double wc = x.component_weight[static_cast<std::size_t>(c)];
            closed += o.positive ? wc * std::exp(r * mean_dirs(c, u) + (spread2 / 2.0 - 1.0) * r * r)
                                 : wc * std::cos(r * mean_dirs(c, u)) * std::exp(-spread2 * r * r / 2.0);
          }
          for (std::int64_t m = 0; m < M; ++m)
            estimate += o.positive ? std::exp(r * omega_dirs(m, u) - r * r) : std::cos(r * omega_dirs(m, u));
        }
        x.kernel_closed[static_cast<std::size_t>(h * K + p)] = closed / n_dirs;
        x.kernel_estimate[static_cast<std::size_t>(h * K + p)] = estimate / (static_cast<double>(M) * n_dirs);
      }
    }
  }

  VariantSpec spec_;
};

}  // namespace

nlohmann::json SpectralExtras::to_json() const {
  const Data& d = data_;
  nlohmann::json j;
  j["kind"] = "spectral";
  j["feature_kind"] = d.kind;
  j["heads"] = d.heads;
  j["queries"] = d.queries;
  j["keys"] = d.keys;
  j["head_dim"] = d.head_dim;
  j["n_features"] = d.samples;
  j["feature_dim"] = d.feature_dim;
  j["components"] = d.components;
  j["mean_scale"] = d.mean_scale;
  j["spread"] = d.spread;
  j["input_scale"] = d.input_scale;
  j["rks_floor"] = d.rks_floor;
  j["causal"] = d.causal;
  j["omega"] = tensor_to_json(d.omega);                      // [H][M][d]
  j["component"] = d.component;                           // [M]
  j["component_weight"] = d.component_weight;             // [C]
  j["means"] = tensor_to_json(d.means);                      // [H][C][d]
  j["projection_axes"] = tensor_to_json(d.projection_axes);  // [H][2][d]
  j["omega_2d"] = tensor_to_json(d.omega_2d);                // [H][M][2]
  j["means_2d"] = tensor_to_json(d.means_2d);                // [H][C][2]
  j["query_features"] = tensor_to_json(d.query_features);    // [H][Lq][F]
  j["key_features"] = tensor_to_json(d.key_features);        // [H][Lk][F]
  j["curve_delta"] = d.curve_delta;                       // [K]
  j["curve_directions"] = tensor_to_json(d.curve_directions);  // [8][d]
  nlohmann::json closed = nlohmann::json::array(), estimate = nlohmann::json::array(), clamped = nlohmann::json::array();
  for (std::int64_t h = 0; h < d.heads; ++h) {
    nlohmann::json c = nlohmann::json::array(), e = nlohmann::json::array(), cl = nlohmann::json::array();
    for (int p = 0; p < kCurvePoints; ++p) {
      c.push_back(kernel_closed(h, p));
      e.push_back(kernel_estimate(h, p));
    }
    for (std::int64_t i = 0; i < d.queries; ++i) cl.push_back(d.clamped[static_cast<std::size_t>(h * d.queries + i)]);
    closed.push_back(std::move(c));
    estimate.push_back(std::move(e));
    clamped.push_back(std::move(cl));
  }
  j["kernel_closed"] = std::move(closed);      // [H][K]
  j["kernel_estimate"] = std::move(estimate);  // [H][K]
  j["clamped"] = std::move(clamped);           // [H][Lq]
  return j;
}

std::unique_ptr<Attention> make_spectral_attention() { return std::make_unique<SpectralAttention>(); }

}  // namespace attnlab
