// Complex fast Fourier transform of power-of-two sizes, our own (no FFTW dependency).
//
//   forward:  X_k = Σ_t x_t e^{−2πi k t / n}        inverse:  x_t = (1/n) Σ_k X_k e^{+2πi k t / n}
//
// Data are split complex — two arrays re[n], im[n] of doubles — so the butterflies run over
// contiguous doubles and vectorise. Radix 2, in place: the forward transform is decimation in
// frequency (natural order in, bit-reversed order out) and the inverse decimation in time
// (bit-reversed in, natural out). A convolution multiplies two spectra element by element, which
// works in any order as long as both are in the same one, so forward_scrambled() and
// inverse_scrambled() skip the bit-reversal permutation altogether; forward() and inverse() give
// natural order both ways for everyone else.
//
// Double precision on purpose: a circulant convolution spreads the rounding error of the largest
// entries over every output, and attention normalises by sums that may be far smaller than the
// largest; in double that error (≈1e-16 relative to the largest entry) stays below float
// resolution of the result.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnlab::fft {

// True for 1, 2, 4, ...
bool is_power_of_two(std::int64_t n);
// The smallest power of two >= n (n >= 1).
std::int64_t next_power_of_two(std::int64_t n);

// A buffer of doubles whose bytes the memory meter counts (core/memory_meter.h), for scratch
// that grows with the sequence length. Contents are uninitialised.
class DoubleBuffer {
 public:
  DoubleBuffer() = default;
  explicit DoubleBuffer(std::int64_t count);
  ~DoubleBuffer();
  DoubleBuffer(DoubleBuffer&& other) noexcept;
  DoubleBuffer& operator=(DoubleBuffer&& other) noexcept;
  DoubleBuffer(const DoubleBuffer&) = delete;
  DoubleBuffer& operator=(const DoubleBuffer&) = delete;

  double* data() { return data_; }
  const double* data() const { return data_; }
  std::int64_t size() const { return count_; }

 private:
  double* data_ = nullptr;
  std::int64_t count_ = 0;
};

class Plan {
 public:
  // n must be a power of two >= 1; throws ParamError otherwise.
  explicit Plan(std::int64_t n);

  std::int64_t size() const { return n_; }

  // In place on re[n], im[n]. Natural order in, bit-reversed order out.
  void forward_scrambled(double* re, double* im) const;
  // In place; bit-reversed order in (as forward_scrambled leaves it), natural order out, scaled by 1/n.
  void inverse_scrambled(double* re, double* im) const;

  // Natural order in and out.
  void forward(double* re, double* im) const;
  void inverse(double* re, double* im) const;

  // Index in the scrambled order of frequency k (the bit reversal of k over log2(n) bits).
  std::int64_t scrambled_index(std::int64_t k) const;

 private:
  void bit_reverse_permute(double* re, double* im) const;

  std::int64_t n_ = 1;
  int log2n_ = 0;
  // Stage twiddles, one contiguous run per half-length h = 1, 2, 4, ..., n/2 starting at h − 1:
  // e^{−2πi j / (2h)} for j < h.
  DoubleBuffer twiddle_re_, twiddle_im_;
};

}  // namespace attnlab::fft
