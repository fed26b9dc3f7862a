#include "analysis/fft.h"

#include <cmath>
#include <cstdlib>
#include <new>
#include <numbers>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/memory_meter.h"

namespace attnlab::fft {

bool is_power_of_two(std::int64_t n) { return n >= 1 && (n & (n - 1)) == 0; }

std::int64_t next_power_of_two(std::int64_t n) {
  std::int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

DoubleBuffer::DoubleBuffer(std::int64_t count) : count_(count) {
  if (count < 0) throw ShapeError("negative buffer size " + std::to_string(count));
  if (count == 0) return;
  const std::size_t bytes = ((static_cast<std::size_t>(count) * sizeof(double) + 63) / 64) * 64;
  data_ = static_cast<double*>(std::aligned_alloc(64, bytes));
  if (!data_) throw std::bad_alloc();
  memory::on_allocate(static_cast<std::size_t>(count) * sizeof(double));
}

DoubleBuffer::~DoubleBuffer() {
  if (data_) {
    memory::on_free(static_cast<std::size_t>(count_) * sizeof(double));
    std::free(data_);
  }
}

DoubleBuffer::DoubleBuffer(DoubleBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}

DoubleBuffer& DoubleBuffer::operator=(DoubleBuffer&& other) noexcept {
  if (this != &other) {
    DoubleBuffer old(std::move(*this));
    data_ = std::exchange(other.data_, nullptr);
    count_ = std::exchange(other.count_, 0);
  }
  return *this;
}

Plan::Plan(std::int64_t n) : n_(n) {
  if (!is_power_of_two(n)) throw ParamError("FFT size " + std::to_string(n) + ": must be a power of two >= 1");
  while ((std::int64_t{1} << log2n_) < n) ++log2n_;
  twiddle_re_ = DoubleBuffer(std::max<std::int64_t>(n - 1, 1));
  twiddle_im_ = DoubleBuffer(std::max<std::int64_t>(n - 1, 1));
  for (std::int64_t h = 1; h < n; h *= 2) {
    for (std::int64_t j = 0; j < h; ++j) {
      // Angles from exact integer ratios, not by repeated multiplication, so every twiddle is
      // correctly rounded.
      const double angle = -std::numbers::pi * static_cast<double>(j) / static_cast<double>(h);
      twiddle_re_.data()[h - 1 + j] = std::cos(angle);
      twiddle_im_.data()[h - 1 + j] = std::sin(angle);
    }
  }
}

void Plan::forward_scrambled(double* re, double* im) const {
  for (std::int64_t h = n_ / 2; h >= 1; h /= 2) {
    const double* __restrict__ wr = twiddle_re_.data() + h - 1;
    const double* __restrict__ wi = twiddle_im_.data() + h - 1;
    for (std::int64_t s = 0; s < n_; s += 2 * h) {
      double* __restrict__ ar = re + s;
      double* __restrict__ ai = im + s;
      double* __restrict__ br = re + s + h;
      double* __restrict__ bi = im + s + h;
      for (std::int64_t j = 0; j < h; ++j) {
        const double xr = ar[j], xi = ai[j], yr = br[j], yi = bi[j];
        ar[j] = xr + yr;
        ai[j] = xi + yi;
        const double dr = xr - yr, di = xi - yi;
        br[j] = dr * wr[j] - di * wi[j];
        bi[j] = dr * wi[j] + di * wr[j];
      }
    }
  }
}

void Plan::inverse_scrambled(double* re, double* im) const {
  for (std::int64_t h = 1; h < n_; h *= 2) {
    const double* __restrict__ wr = twiddle_re_.data() + h - 1;
    const double* __restrict__ wi = twiddle_im_.data() + h - 1;
    for (std::int64_t s = 0; s < n_; s += 2 * h) {
      double* __restrict__ ar = re + s;
      double* __restrict__ ai = im + s;
      double* __restrict__ br = re + s + h;
      double* __restrict__ bi = im + s + h;
      for (std::int64_t j = 0; j < h; ++j) {
        // b times the conjugate twiddle e^{+2πi j / (2h)}.
        const double tr = br[j] * wr[j] + bi[j] * wi[j];
        const double ti = bi[j] * wr[j] - br[j] * wi[j];
        br[j] = ar[j] - tr;
        bi[j] = ai[j] - ti;
        ar[j] += tr;
        ai[j] += ti;
      }
    }
  }
  const double scale = 1.0 / static_cast<double>(n_);
  for (std::int64_t t = 0; t < n_; ++t) {
    re[t] *= scale;
    im[t] *= scale;
  }
}

std::int64_t Plan::scrambled_index(std::int64_t k) const {
  std::int64_t r = 0;
  for (int b = 0; b < log2n_; ++b) r |= ((k >> b) & 1) << (log2n_ - 1 - b);
  return r;
}

void Plan::bit_reverse_permute(double* re, double* im) const {
  for (std::int64_t k = 0; k < n_; ++k) {
    const std::int64_t r = scrambled_index(k);
    if (r > k) {
      std::swap(re[k], re[r]);
      std::swap(im[k], im[r]);
    }
  }
}

void Plan::forward(double* re, double* im) const {
  forward_scrambled(re, im);
  bit_reverse_permute(re, im);
}

void Plan::inverse(double* re, double* im) const {
  bit_reverse_permute(re, im);
  inverse_scrambled(re, im);
}

}  // namespace attnlab::fft
