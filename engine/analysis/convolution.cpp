#include "analysis/convolution.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <optional>
#include <vector>

#include "analysis/fft.h"
#include "core/error.h"

namespace attnlab {
namespace {

// Channels go through the transforms two at a time, as the real and imaginary parts of one complex
// signal: for real a, b and z = a + i·b, the transforms separate by conjugate symmetry,
//   A_k = (Z_k + conj Z_{n−k}) / 2,   B_k = (Z_k − conj Z_{n−k}) / (2i),
// so the transform of (a ⊛ g) + i·(b ⊛ h) is  Z_k·P_k + conj(Z_{n−k})·M_k  with
// P = (G + H)/2, M = (G − H)/2. Both channels cover the same positions, so causality is kept.

// Rows per block summed directly in the causal convolution. Below about this size one FFT level
// (two transforms of 2B points per B outputs) costs more than B/2 multiply-adds per output.
constexpr std::int64_t kDirectBlock = 128;

using DoubleRows = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// x: [L, C] -> [C, L] in doubles, so each channel is one contiguous run.
DoubleRows channels_as_rows(const RowMatrix& x) { return x.transpose().cast<double>(); }

// A plan and, for each position s of its scrambled order, the position of the mirrored
// frequency n − k (k the frequency at s).
struct PairedPlan {
  fft::Plan plan;
  std::vector<std::int64_t> mirror;

  explicit PairedPlan(std::int64_t n) : plan(n), mirror(static_cast<std::size_t>(n)) {
    for (std::int64_t s = 0; s < n; ++s) {
      const std::int64_t k = plan.scrambled_index(s);  // bit reversal is its own inverse
      mirror[static_cast<std::size_t>(s)] = plan.scrambled_index((n - k) & (n - 1));
    }
  }
  std::int64_t size() const { return plan.size(); }
};

// Scratch of one thread, sized for the largest transform n and the length L.
struct ConvolutionScratch {
  fft::DoubleBuffer kernel_a, kernel_b, backward_a, backward_b, y_a, y_b;  // [L] each
  fft::DoubleBuffer re, im, out_re, out_im, p_re, p_im, m_re, m_im;      // [n] each

  ConvolutionScratch(std::int64_t L, std::int64_t n)
      : kernel_a(L), kernel_b(L), backward_a(L), backward_b(L), y_a(L), y_b(L), re(n), im(n), out_re(n), out_im(n),
        p_re(n), p_im(n), m_re(n), m_im(n) {}
};

// From the transform W (scrambled) of two real kernels g + i·h, the filters P and M above.
void pair_filter(const PairedPlan& pp, const double* wr, const double* wi, ConvolutionScratch& s) {
  for (std::int64_t k = 0; k < pp.size(); ++k) {
    const std::int64_t m = pp.mirror[static_cast<std::size_t>(k)];
    const double gr = 0.5 * (wr[k] + wr[m]), gi = 0.5 * (wi[k] - wi[m]);  // G = (W + conj W')/2
    const double hr = 0.5 * (wi[k] + wi[m]), hi = -0.5 * (wr[k] - wr[m]);  // H = (W − conj W')/(2i)
    s.p_re.data()[k] = 0.5 * (gr + hr);
    s.p_im.data()[k] = 0.5 * (gi + hi);
    s.m_re.data()[k] = 0.5 * (gr - hr);
    s.m_im.data()[k] = 0.5 * (gi - hi);
  }
}

// s.re/s.im hold two real signals a + i·b; on return s.out_re/s.out_im hold (a ⊛ g) + i·(b ⊛ h),
// circular, for the filters last set by pair_filter.
void pair_convolve(const PairedPlan& pp, ConvolutionScratch& s) {
  double* zr = s.re.data();
  double* zi = s.im.data();
  pp.plan.forward_scrambled(zr, zi);
  const double* pr = s.p_re.data();
  const double* pi = s.p_im.data();
  const double* mr = s.m_re.data();
  const double* mi = s.m_im.data();
  double* yr = s.out_re.data();
  double* yi = s.out_im.data();
  for (std::int64_t k = 0; k < pp.size(); ++k) {
    const std::int64_t m = pp.mirror[static_cast<std::size_t>(k)];
    // Z_k·P_k + conj(Z_m)·M_k
    yr[k] = zr[k] * pr[k] - zi[k] * pi[k] + zr[m] * mr[k] + zi[m] * mi[k];
    yi[k] = zr[k] * pi[k] + zi[k] * pr[k] + zr[m] * mi[k] - zi[m] * mr[k];
  }
  pp.plan.inverse_scrambled(yr, yi);
}

// Direct causal sums inside blocks of kDirectBlock rows: y[i] = Σ_{block start ≤ s ≤ i} k[i − s]·x[s].
void direct_blocks(const double* k, const double* x, double* y, std::int64_t L) {
  for (std::int64_t c0 = 0; c0 < L; c0 += kDirectBlock) {
    const std::int64_t c1 = std::min(c0 + kDirectBlock, L);
    for (std::int64_t i = c0; i < c1; ++i) {
      double acc = 0.0;
      for (std::int64_t s = c0; s <= i; ++s) acc += k[i - s] * x[s];
      y[i] = acc;
    }
  }
}

// Causal convolutions of two channels (a, b) of length L, kernels and outputs in s.kernel_*,
// s.y_*. `levels` holds one plan of size 2B per dyadic level B = kDirectBlock, 2·kDirectBlock, ... < L.
void causal_convolve_pair(const double* xa, const double* xb, std::int64_t L, const std::vector<PairedPlan>& levels,
                          ConvolutionScratch& s) {
  double* ya = s.y_a.data();
  double* yb = s.y_b.data();
  direct_blocks(s.kernel_a.data(), xa, ya, L);
  direct_blocks(s.kernel_b.data(), xb, yb, L);
  // Pairs in sibling blocks [left, left + B) -> [left + B, left + 2B): lags i − s in [1, 2B), so a
  // circular convolution of size 2B with the kernels' first 2B lags never wraps onto the outputs
  // it keeps (positions B .. 2B − 1).
  std::size_t level = 0;
  for (std::int64_t B = kDirectBlock; B < L; B *= 2, ++level) {
    const PairedPlan& pp = levels[level];
    const std::int64_t n = 2 * B;
    const std::int64_t lags = std::min(n, L);
    double* re = s.re.data();
    double* im = s.im.data();
    std::copy(s.kernel_a.data(), s.kernel_a.data() + lags, re);
    std::copy(s.kernel_b.data(), s.kernel_b.data() + lags, im);
    std::fill(re + lags, re + n, 0.0);
    std::fill(im + lags, im + n, 0.0);
    pp.plan.forward_scrambled(re, im);
    pair_filter(pp, re, im, s);
    for (std::int64_t left = 0; left + B < L; left += n) {
      std::copy(xa + left, xa + left + B, re);
      std::copy(xb + left, xb + left + B, im);
      std::fill(re + B, re + n, 0.0);
      std::fill(im + B, im + n, 0.0);
      pair_convolve(pp, s);
      const std::int64_t right = left + B;
      const std::int64_t count = std::min(B, L - right);
      for (std::int64_t u = 0; u < count; ++u) {
        ya[right + u] += s.out_re.data()[B + u];
        yb[right + u] += s.out_im.data()[B + u];
      }
    }
  }
}

// Runs `per_pair(first_channel, thread_scratch)` for the channel pairs (0, 1), (2, 3), ... in
// parallel. Stops with CancelledError when the token is set; an exception thrown by `per_pair`
// (a kernel refusing its parameters) is carried out of the parallel region and rethrown.
template <typename PerPair>
void for_each_channel_pair(std::int64_t channels, std::int64_t L, std::int64_t n, const CancelToken* cancel,
                           PerPair per_pair) {
  std::atomic<bool> stop{false};
  std::exception_ptr failure;
  const std::int64_t pairs = (channels + 1) / 2;
  const auto fail = [&] {
#pragma omp critical(attnlab_convolution_failure)
    if (!failure) failure = std::current_exception();
    stop.store(true, std::memory_order_relaxed);
  };
#pragma omp parallel
  {
    std::optional<ConvolutionScratch> scratch;
    try {
      scratch.emplace(L, n);
    } catch (...) {
      fail();
    }
#pragma omp for schedule(dynamic)
    for (std::int64_t p = 0; p < pairs; ++p) {
      if (stop.load(std::memory_order_relaxed)) continue;
      if (cancel && cancel->cancelled()) {
        stop.store(true, std::memory_order_relaxed);
        continue;
      }
      try {
        per_pair(2 * p, *scratch);
      } catch (...) {
        fail();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
  if (stop.load()) throw CancelledError();
}

// Kernel of channel c into `lags`, or zeros when c is past the last channel (the odd one out).
void fill_or_zero(const KernelFill& fill, std::int64_t c, std::int64_t channels, std::int64_t L, double* lags) {
  if (c < channels) fill(c, L, lags);
  else std::fill(lags, lags + L, 0.0);
}

}  // namespace

RowMatrix causal_fft_convolution(const RowMatrix& x, const KernelFill& kernel, const CancelToken* cancel) {
  const std::int64_t L = x.rows(), C = x.cols();
  if (L == 0 || C == 0) return RowMatrix(L, C);
  std::vector<PairedPlan> levels;
  for (std::int64_t B = kDirectBlock; B < L; B *= 2) levels.emplace_back(2 * B);
  const std::int64_t n = levels.empty() ? 1 : levels.back().size();
  const DoubleRows xt = channels_as_rows(x);     // [C, L]
  const std::vector<double> zeros(static_cast<std::size_t>(L), 0.0);  // the partner of an odd last channel
  RowMatrix yt(C, L);                             // [C, L]: no two threads write one cache line
  for_each_channel_pair(C, L, n, cancel, [&](std::int64_t c, ConvolutionScratch& s) {
    fill_or_zero(kernel, c, C, L, s.kernel_a.data());
    fill_or_zero(kernel, c + 1, C, L, s.kernel_b.data());
    causal_convolve_pair(xt.row(c).data(), c + 1 < C ? xt.row(c + 1).data() : zeros.data(), L, levels, s);
    for (std::int64_t i = 0; i < L; ++i) yt(c, i) = static_cast<float>(s.y_a.data()[i]);
    if (c + 1 < C)
      for (std::int64_t i = 0; i < L; ++i) yt(c + 1, i) = static_cast<float>(s.y_b.data()[i]);
  });
  return yt.transpose();
}

RowMatrix two_sided_fft_convolution(const RowMatrix& x, const KernelFill& forward, const KernelFill& backward,
                                    const CancelToken* cancel) {
  const std::int64_t L = x.rows(), C = x.cols();
  if (L == 0 || C == 0) return RowMatrix(L, C);
  // Lags run from −(L − 1) to L − 1: a circle of 2L − 1 points or more never wraps.
  const PairedPlan pp(fft::next_power_of_two(2 * L - 1));
  const std::int64_t n = pp.size();
  const DoubleRows xt = channels_as_rows(x);
  RowMatrix yt(C, L);
  for_each_channel_pair(C, L, n, cancel, [&](std::int64_t c, ConvolutionScratch& s) {
    fill_or_zero(forward, c, C, L, s.kernel_a.data());
    fill_or_zero(forward, c + 1, C, L, s.kernel_b.data());
    fill_or_zero(backward, c, C, L, s.backward_a.data());
    fill_or_zero(backward, c + 1, C, L, s.backward_b.data());
    double* re = s.re.data();
    double* im = s.im.data();
    // The circulant of each channel: h[t] = f(t) for t ≥ 0; h[−d] = h[n − d] = b(d − 1) for d ≥ 1.
    std::fill(re, re + n, 0.0);
    std::fill(im, im + n, 0.0);
    std::copy(s.kernel_a.data(), s.kernel_a.data() + L, re);
    std::copy(s.kernel_b.data(), s.kernel_b.data() + L, im);
    for (std::int64_t d = 1; d < L; ++d) {
      re[n - d] = s.backward_a.data()[d - 1];
      im[n - d] = s.backward_b.data()[d - 1];
    }
    pp.plan.forward_scrambled(re, im);
    pair_filter(pp, re, im, s);
    std::copy(xt.row(c).data(), xt.row(c).data() + L, re);
    if (c + 1 < C) std::copy(xt.row(c + 1).data(), xt.row(c + 1).data() + L, im);
    else std::fill(im, im + L, 0.0);
    std::fill(re + L, re + n, 0.0);
    std::fill(im + L, im + n, 0.0);
    pair_convolve(pp, s);
    for (std::int64_t i = 0; i < L; ++i) yt(c, i) = static_cast<float>(s.out_re.data()[i]);
    if (c + 1 < C)
      for (std::int64_t i = 0; i < L; ++i) yt(c + 1, i) = static_cast<float>(s.out_im.data()[i]);
  });
  return yt.transpose();
}

}  // namespace attnlab
