// Kernelized attention with relative positional encoding, the Toeplitz products done by FFT
// (Luo et al. 2021, "Stable, Fast and Accurate: Kernelized Attention with Relative Positional
// Encoding"), registered as "rpe_fft".
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   features: FAVOR+ exactly as performer (same seed, n_features, orthogonal, feature_norms,
//             redraw, feature_eps ⇒ the same φ(Q), φ(K) and key log scales μ(k); see performer.cpp)
//   relative bias: b(δ) = −decay·|δ| for δ = j − i; c_δ = exp(b(δ)) > 0; causal: c_δ = 0 for δ > 0
//   out_i = Σ_j c_{j−i} κ_ij v_j / Σ_j c_{j−i} κ_ij,  κ_ij = e^{μ(k_j)} φ(q_i)·φ(k_j) (performer's
//           unnormalised kernel), over visible keys. With decay = 0 (non-causal, or causal with its
//           mask) this is performer exactly; in general the weights are performer's unnormalised
//           weights times exp(−decay·|i − j|), renormalised per row.
//   weights (trace): A_ij = c_{j−i} κ_ij / Σ_j' c_{j'−i} κ_ij'; out = A·V.
//
// Fast path (no trace), as in the paper: with C_ij = c_{j−i} (Toeplitz, [Lq, Lk]),
//   D1 = C·(φ(K) ⊗ V)  [Lq, m·dv],   D2 = C·φ(K)  [Lq, m],   out_i = φ(q_i)ᵀ D1_i / φ(q_i)ᵀ D2_i,
// each Toeplitz product by circulant embedding: size N = next power of two >= Lq + Lk − 1, one
// FFT of the kernel column, then per signal FFT → multiply → inverse FFT (analysis/fft.h), two
// real signals per complex transform. O(m·dv·N log N) time. D1 is never stored whole: for each
// feature f the dv + 1 columns e^{μ(k_j) − M} φ(k_j)_f·[v_j, 1] are transformed and folded at once into
// per-thread accumulators Σ_f φ(q_i)_f·(C·x)_i, so memory is O(threads·L·dv) besides the features.
// The transforms run in double precision (see fft.h), and still a circulant product carries an
// absolute rounding error of about u·log2 N·‖h‖·‖x‖ into every output, however small that output
// is: a query whose visible keys all sit far away under a steep decay (cross attention with
// Lq > Lk, long padded stretches) has a denominator below that noise. Such rows — where the
// denominator is less than 1e7 times the estimated noise — are recomputed directly in O(Lk·m),
// in the log domain like the traced path; in self-attention with c_0 = 1 they are rare.
// Key log scales are brought to one scale per head by M = the largest visible μ(k) (it cancels).
//
// Traced path: the dense O(L²·m) form above — it fills the L×L weights anyway, and at the
// playground's lengths it is far cheaper than m·dv transforms; tests check the two paths agree.
//
// Choices (the paper has no public code, ALGORITHMS.md §13):
//   - b comes from `decay` (an exponential decay with distance, symmetric in δ); a learned table
//     per head would replace decay_toeplitz_kernel and nothing else.
//   - Causality. c_δ = 0 for δ > 0 makes every output depend only on earlier keys in exact
//     arithmetic, but a circulant FFT mixes all positions' rounding: a later token can move an
//     earlier output of the fast path by about 1e-16 relative (double), i.e. almost never by one
//     float ulp. The traced (dense) path is exactly causal, bit for bit.
//   - Features are FAVOR+ as performer; the paper's other feature maps are not offered.
#include "attention/rpe_fft.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "analysis/fft.h"
#include "attention/variants.h"
#include "core/error.h"

namespace attnlab {

double ToeplitzKernel::coefficient(std::int64_t delta) const { return std::exp(log_coefficient(delta)); }

ToeplitzKernel decay_toeplitz_kernel(std::int64_t queries, std::int64_t keys, double decay, bool causal) {
  if (!(decay >= 0.0) || !std::isfinite(decay))
    throw ParamError("decay=" + std::to_string(decay) + ": must be a finite number >= 0");
  if (queries < 1 || keys < 1)
    throw ShapeError("Toeplitz kernel for " + std::to_string(queries) + " queries and " + std::to_string(keys) + " keys");
  ToeplitzKernel k;
  k.queries = queries;
  k.keys = keys;
  k.bias.resize(static_cast<std::size_t>(k.offsets()));
  for (std::int64_t delta = -(queries - 1); delta <= keys - 1; ++delta) {
    const double b = causal && delta > 0 ? -std::numeric_limits<double>::infinity()
                                         : -decay * static_cast<double>(std::abs(delta));
    k.bias[static_cast<std::size_t>(delta + queries - 1)] = b;
  }
  return k;
}

std::int64_t circulant_size(std::int64_t queries, std::int64_t keys) { return fft::next_power_of_two(queries + keys - 1); }

namespace {

// The Toeplitz matrix embedded in a circulant one of size N: y = C x is the first Lq entries of
// the circular convolution of x (zero-padded to N) with h, h[t mod N] = c_{−t} for t = i − j.
class Circulant {
 public:
  explicit Circulant(const ToeplitzKernel& k)
      : plan_(circulant_size(k.queries, k.keys)), spectrum_re_(plan_.size()), spectrum_im_(plan_.size()) {
    const std::int64_t n = plan_.size();
    double* re = spectrum_re_.data();
    double* im = spectrum_im_.data();
    std::fill(re, re + n, 0.0);
    std::fill(im, im + n, 0.0);
    for (std::int64_t t = 0; t < k.queries; ++t) re[t] = k.coefficient(-t);       // keys at or before the query
    for (std::int64_t delta = 1; delta < k.keys; ++delta) re[n - delta] = k.coefficient(delta);  // keys after it
    plan_.forward_scrambled(re, im);
  }

  std::int64_t size() const { return plan_.size(); }

  // re[0, N), im[0, N): two real signals, zero beyond Lk; on return their products with C, in
  // entries [0, Lq).
  void apply(double* re, double* im) const {
    plan_.forward_scrambled(re, im);
    const double* __restrict__ hr = spectrum_re_.data();
    const double* __restrict__ hi = spectrum_im_.data();
    for (std::int64_t f = 0; f < plan_.size(); ++f) {
      const double xr = re[f], xi = im[f];
      re[f] = xr * hr[f] - xi * hi[f];
      im[f] = xr * hi[f] + xi * hr[f];
    }
    plan_.inverse_scrambled(re, im);
  }

 private:
  fft::Plan plan_;
  fft::DoubleBuffer spectrum_re_, spectrum_im_;
};

void check_rows(const ToeplitzKernel& kernel, const Eigen::MatrixXd& x) {
  if (x.rows() != kernel.keys)
    throw ShapeError("Toeplitz product: x has " + std::to_string(x.rows()) + " rows but the kernel has " +
                     std::to_string(kernel.keys) + " keys");
}

}  // namespace

Eigen::MatrixXd toeplitz_multiply_direct(const ToeplitzKernel& kernel, const Eigen::MatrixXd& x) {
  check_rows(kernel, x);
  Eigen::MatrixXd y = Eigen::MatrixXd::Zero(kernel.queries, x.cols());
  for (std::int64_t i = 0; i < kernel.queries; ++i)
    for (std::int64_t j = 0; j < kernel.keys; ++j) {
      const double c = kernel.coefficient(j - i);
      if (c != 0.0) y.row(i) += c * x.row(j);
    }
  return y;
}

Eigen::MatrixXd toeplitz_multiply_fft(const ToeplitzKernel& kernel, const Eigen::MatrixXd& x) {
  check_rows(kernel, x);
  const Circulant circulant(kernel);
  const std::int64_t n = circulant.size();
  Eigen::MatrixXd y(kernel.queries, x.cols());
  std::vector<double> re(static_cast<std::size_t>(n)), im(static_cast<std::size_t>(n));
  for (std::int64_t c = 0; c < x.cols(); c += 2) {
    std::fill(re.begin(), re.end(), 0.0);
    std::fill(im.begin(), im.end(), 0.0);
    for (std::int64_t j = 0; j < kernel.keys; ++j) {
      re[static_cast<std::size_t>(j)] = x(j, c);
      if (c + 1 < x.cols()) im[static_cast<std::size_t>(j)] = x(j, c + 1);
    }
    circulant.apply(re.data(), im.data());
    for (std::int64_t i = 0; i < kernel.queries; ++i) {
      y(i, c) = re[static_cast<std::size_t>(i)];
      if (c + 1 < x.cols()) y(i, c + 1) = im[static_cast<std::size_t>(i)];
    }
  }
  return y;
}

nlohmann::json RpeFftExtras::to_json() const {
  nlohmann::json j;
  j["kind"] = "rpe_fft";
  j["causal"] = data_.causal;
  j["decay"] = data_.decay;
  j["fft_size"] = data_.fft_size;
  j["favor"] = data_.favor.to_json();
  j["offsets"] = tensor_to_json(data_.offsets);            // [Lq + Lk − 1]
  nlohmann::json bias = nlohmann::json::array();
  for (std::int64_t t = 0; t < data_.bias.size(); ++t) {
    const float b = data_.bias.data()[t];
    bias.push_back(std::isfinite(b) ? nlohmann::json(b) : nlohmann::json(nullptr));
  }
  j["bias"] = std::move(bias);                             // [Lq + Lk − 1]; null = −inf (hidden)
  j["coefficients"] = tensor_to_json(data_.coefficients);  // [Lq + Lk − 1]
  j["toeplitz"] = tensor_to_json(data_.toeplitz);          // [Lq][Lk]
  return j;
}

namespace {

constexpr double kMaxDecay = 10.0;
// Unit roundoff of double, and how far above the estimated rounding noise of the transforms a
// denominator must lie for the FFT result of its row to be used (else the row is computed
// directly): 1e7 keeps the row's error near float resolution.
constexpr double kRoundoff = 1.1102230246251565e-16;
constexpr double kTrustedAboveNoise = 1e7;
constexpr std::int64_t kQueryBlock = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool is_padded(const AttentionInput& in, std::int64_t j) {
  return in.key_padding && (*in.key_padding)[static_cast<std::size_t>(j)];
}

class RpeFftAttention final : public Attention {
 public:
  RpeFftAttention() {
    spec_.name = "rpe_fft";
    spec_.title = "Kernelized attention with RPE (FFT)";
    spec_.paper = "Luo et al. 2021, Stable, Fast and Accurate: Kernelized Attention with Relative Positional "
                  "Encoding (arXiv:2106.12566)";
    spec_.summary = "Performer's FAVOR+ kernel times a relative-position factor exp(−decay·|i − j|); the Toeplitz "
                    "products are done by FFT in O(L log L).";
    spec_.params = favor_param_specs();
    spec_.params.push_back(ParamSpec::real("decay", "Decay", 0.1, 0.0, kMaxDecay,
                                           "Relative bias b(j − i) = −decay·|j − i|: how fast attention fades with "
                                           "distance; 0 gives performer."));
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    const FavorSettings settings = favor_settings(*in.params);
    const double decay = in.params->get_float("decay");
    FavorFeatures favor = compute_favor_features(in.q, in.k, in.seed, settings, in.cancel);
    const ToeplitzKernel kernel = decay_toeplitz_kernel(in.q.dim(1), in.k.dim(1), decay, in.causal);
    if (!trace) return forward_fft(in, favor, kernel);

    Tensor weights = dense_weights(in, favor, kernel);
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1);
    Tensor out = Tensor::uninitialized({H, Lq, in.v.dim(2)});
#pragma omp parallel for schedule(static) if (H > 1)
    for (std::int64_t h = 0; h < H; ++h) out.matrix(h).noalias() = weights.matrix(h) * in.v.matrix(h);
    trace->weights = std::move(weights);

    RpeFftExtras::Data data;
    data.causal = in.causal;
    data.decay = decay;
    data.fft_size = circulant_size(Lq, Lk);
    const std::int64_t n = kernel.offsets();
    data.offsets = Tensor::uninitialized({n});
    data.bias = Tensor::uninitialized({n});
    data.coefficients = Tensor::uninitialized({n});
    for (std::int64_t t = 0; t < n; ++t) {
      const std::int64_t delta = t - (Lq - 1);
      data.offsets.data()[t] = static_cast<float>(delta);
      data.bias.data()[t] = static_cast<float>(kernel.log_coefficient(delta));
      data.coefficients.data()[t] = static_cast<float>(kernel.coefficient(delta));
    }
    data.toeplitz = Tensor::uninitialized({Lq, Lk});
    for (std::int64_t i = 0; i < Lq; ++i)
      for (std::int64_t j = 0; j < Lk; ++j) data.toeplitz.at(i, j) = data.coefficients.data()[j - i + Lq - 1];
    data.favor = make_favor_trace(std::move(favor), settings, in.key_padding);
    trace->extras = std::make_shared<RpeFftExtras>(std::move(data));
    return out;
  }

  // FAVOR+ features as performer, held throughout. Fast path: the FFT plan's twiddles [2, N − 1]
  // and the kernel's spectrum [2, N] (doubles, N = circulant_size), per thread the accumulators
  // [dv + 1, Lq] and one signal pair [2, N] (doubles), the key scales [Lk] (doubles), the output.
  // Traced: the dense weights [H, Lq, Lk] (with key log scales [H, Lk] while they are built), the
  // output, the offsets, bias and coefficients [Lq + Lk − 1], the Toeplitz matrix [Lq, Lk] and the
  // FAVOR+ trace record.
  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override {
    const std::int64_t m = favor_settings(params).random.features;
    const std::int64_t features = favor_features_bytes(s.heads, s.lq, s.lk, s.d, m);
    const std::int64_t out = float_bytes(s.heads * s.lq * s.dv);
    if (!s.trace) {
      const std::int64_t n = circulant_size(s.lq, s.lk), threads = std::max(1, omp_get_max_threads());
      const std::int64_t doubles = 2 * std::max<std::int64_t>(n - 1, 1) + 2 * n + threads * ((s.dv + 1) * s.lq + 2 * n) + s.lk;
      return features + doubles * static_cast<std::int64_t>(sizeof(double)) + out;
    }
    const std::int64_t weights = float_bytes(s.heads * s.lq * s.lk);
    const std::int64_t record = out + float_bytes(3 * (s.lq + s.lk - 1) + s.lq * s.lk) + favor_trace_bytes(s.heads, s.d, m);
    return features + weights + std::max(float_bytes(s.heads * s.lk), record);
  }

 private:
  // A_ij ∝ c_{j−i} e^{μ(k_j)} φ(q_i)·φ(k_j), each row taken relative to its largest log factor
  // max_j (μ(k_j) + b(j − i)) so that neither the features nor the bias can overflow.
  static Tensor dense_weights(const AttentionInput& in, const FavorFeatures& f, const ToeplitzKernel& kernel) {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1);
    Tensor weights = Tensor::uninitialized({H, Lq, Lk});
    Eigen::ArrayXf bias(kernel.offsets());
    for (std::int64_t t = 0; t < kernel.offsets(); ++t) bias(t) = static_cast<float>(kernel.bias[static_cast<std::size_t>(t)]);
    Tensor g = Tensor::uninitialized({H, Lk});
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t j = 0; j < Lk; ++j) g.at(h, j) = is_padded(in, j) ? kNegInf : f.key_log_scale.at(h, j);
    const std::int64_t blocks = (Lq + kQueryBlock - 1) / kQueryBlock;
    bool cancelled = false;
#pragma omp parallel
    {
      Eigen::ArrayXf logits(Lk);
#pragma omp for schedule(dynamic)
      for (std::int64_t task = 0; task < H * blocks; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / blocks, q0 = (task % blocks) * kQueryBlock, rows = std::min(kQueryBlock, Lq - q0);
        auto w = weights.matrix(h).middleRows(q0, rows);
        w.noalias() = f.query.matrix(h).middleRows(q0, rows) * f.key.matrix(h).transpose();
        const Eigen::Map<const Eigen::ArrayXf> gh(g.data() + h * Lk, Lk);
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t i = q0 + r;
          logits = gh + bias.segment(Lq - 1 - i, Lk);  // μ(k_j) + b(j − i)
          const float largest = logits.maxCoeff();
          auto row = w.row(r);
          if (largest == kNegInf) {
            row.setZero();
            continue;
          }
          row.array() *= (logits - largest).exp().transpose();
          const float sum = row.sum();
          if (sum > 0.0f) row /= sum;
          else row.setZero();
        }
      }
    }
    if (cancelled) throw CancelledError();
    return weights;
  }

  // Row i of head h the direct way, in double: O(Lk·(m + dv)).
  template <typename Row>
  static void exact_row(const AttentionInput& in, const FavorFeatures& f, const ToeplitzKernel& kernel, std::int64_t h,
                        std::int64_t i, Row&& dst) {
    const std::int64_t Lk = in.k.dim(1), dv = in.v.dim(2);
    double largest = -std::numeric_limits<double>::infinity();
    for (std::int64_t j = 0; j < Lk; ++j)
      if (!is_padded(in, j)) largest = std::max(largest, f.key_log_scale.at(h, j) + kernel.log_coefficient(j - i));
    dst.setZero();
    if (largest == -std::numeric_limits<double>::infinity()) return;
    const auto phi_q = f.query.matrix(h).row(i).cast<double>();
    Eigen::RowVectorXd num = Eigen::RowVectorXd::Zero(dv);
    double den = 0.0;
    for (std::int64_t j = 0; j < Lk; ++j) {
      if (is_padded(in, j)) continue;
      const double log_factor = f.key_log_scale.at(h, j) + kernel.log_coefficient(j - i) - largest;
      if (log_factor == -std::numeric_limits<double>::infinity()) continue;
      const double w = std::exp(log_factor) * phi_q.dot(f.key.matrix(h).row(j).cast<double>());
      num += w * in.v.matrix(h).row(j).cast<double>();
      den += w;
    }
    if (den > 0.0) dst = (num / den).cast<float>();
  }

  static Tensor forward_fft(const AttentionInput& in, const FavorFeatures& f, const ToeplitzKernel& kernel) {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), m = f.query.dim(2), dv = in.v.dim(2);
    const Circulant circulant(kernel);
    const std::int64_t n = circulant.size();
    double kernel_norm = 0.0;
    for (std::int64_t t = 0; t < kernel.offsets(); ++t) kernel_norm += std::exp(2.0 * kernel.bias[static_cast<std::size_t>(t)]);
    const double noise_per_unit = kRoundoff * std::log2(static_cast<double>(n) + 1.0) * std::sqrt(kernel_norm);
    const std::int64_t columns = dv + 1;  // the value columns, then the denominator's column of ones
    const std::int64_t pairs = (columns + 1) / 2;
    const int threads = omp_get_max_threads();
    fft::DoubleBuffer sums(static_cast<std::int64_t>(threads) * columns * Lq);  // per thread [columns][Lq]
    fft::DoubleBuffer scratch(static_cast<std::int64_t>(threads) * 2 * n);
    fft::DoubleBuffer key_scale(Lk);
    Tensor out = Tensor::uninitialized({H, Lq, dv});
    for (std::int64_t h = 0; h < H; ++h) {
      check_cancelled(in.cancel);
      double reference = -std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j < Lk; ++j)
        if (!is_padded(in, j)) reference = std::max(reference, static_cast<double>(f.key_log_scale.at(h, j)));
      if (reference == -std::numeric_limits<double>::infinity()) {
        out.matrix(h).setZero();
        continue;
      }
      for (std::int64_t j = 0; j < Lk; ++j)
        key_scale.data()[j] =
            is_padded(in, j) ? 0.0 : std::exp(static_cast<double>(f.key_log_scale.at(h, j)) - reference);
      std::fill(sums.data(), sums.data() + sums.size(), 0.0);
      const float* phi_q = f.query.data() + h * Lq * m;
      const float* phi_k = f.key.data() + h * Lk * m;
      const float* values = in.v.data() + h * Lk * dv;
      bool cancelled = false;
#pragma omp parallel num_threads(threads)
      {
        const int tid = omp_get_thread_num();
        double* acc = sums.data() + static_cast<std::int64_t>(tid) * columns * Lq;
        double* re = scratch.data() + static_cast<std::int64_t>(tid) * 2 * n;
        double* im = re + n;
        const auto column = [&](std::int64_t c, std::int64_t j) {
          return c < dv ? static_cast<double>(values[j * dv + c]) : 1.0;
        };
#pragma omp for schedule(static)
        for (std::int64_t task = 0; task < m * pairs; ++task) {
          if (cancelled || (in.cancel && in.cancel->cancelled())) {
            cancelled = true;
            continue;
          }
          const std::int64_t feature = task / pairs, c1 = 2 * (task % pairs), c2 = c1 + 1;
          const bool second = c2 < columns;
          for (std::int64_t j = 0; j < Lk; ++j) {
            const double base = key_scale.data()[j] * static_cast<double>(phi_k[j * m + feature]);
            re[j] = base * column(c1, j);
            im[j] = second ? base * column(c2, j) : 0.0;
          }
          std::fill(re + Lk, re + n, 0.0);
          std::fill(im + Lk, im + n, 0.0);
          circulant.apply(re, im);
          double* a1 = acc + c1 * Lq;
          for (std::int64_t i = 0; i < Lq; ++i) a1[i] += static_cast<double>(phi_q[i * m + feature]) * re[i];
          if (second) {
            double* a2 = acc + c2 * Lq;
            for (std::int64_t i = 0; i < Lq; ++i) a2[i] += static_cast<double>(phi_q[i * m + feature]) * im[i];
          }
        }
      }
      if (cancelled) throw CancelledError();
      // Threads' partial sums in thread order, so the result depends only on the thread count.
      for (int t = 1; t < threads; ++t) {
        const double* part = sums.data() + static_cast<std::int64_t>(t) * columns * Lq;
        for (std::int64_t e = 0; e < columns * Lq; ++e) sums.data()[e] += part[e];
      }
      // Rows whose denominator is not far above the transforms' rounding noise are recomputed
      // directly (see the header comment): noise_i = u·log2 N·‖h‖·Σ_f φ(q_i)_f ‖x_f‖.
      std::vector<double> column_norm(static_cast<std::size_t>(m), 0.0);
      for (std::int64_t j = 0; j < Lk; ++j)
        for (std::int64_t feature = 0; feature < m; ++feature) {
          const double x = key_scale.data()[j] * static_cast<double>(phi_k[j * m + feature]);
          column_norm[static_cast<std::size_t>(feature)] += x * x;
        }
      for (double& x : column_norm) x = std::sqrt(x);
      const double* den = sums.data() + dv * Lq;
      auto dst = out.matrix(h);
      for (std::int64_t i = 0; i < Lq; ++i) {
        double spread = 0.0;
        for (std::int64_t feature = 0; feature < m; ++feature)
          spread += static_cast<double>(phi_q[i * m + feature]) * column_norm[static_cast<std::size_t>(feature)];
        if (!(den[i] > kTrustedAboveNoise * noise_per_unit * spread)) {
          exact_row(in, f, kernel, h, i, dst.row(i));
          continue;
        }
        for (std::int64_t c = 0; c < dv; ++c) dst(i, c) = static_cast<float>(sums.data()[c * Lq + i] / den[i]);
      }
    }
    return out;
  }

  VariantSpec spec_;
};

}  // namespace

std::unique_ptr<Attention> make_rpe_fft_attention() { return std::make_unique<RpeFftAttention>(); }

}  // namespace attnlab
