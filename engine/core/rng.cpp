#include "core/rng.h"

#include <cmath>

#include "core/error.h"
#include "core/tensor.h"

namespace attnlab {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(std::uint64_t seed) {
  std::uint64_t state = seed;
  for (auto& s : s_) s = splitmix64(state);
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_normal_;
  }
  // Polar method: a point uniform in the unit disc gives two independent normals, with one
  // log and one sqrt and no trigonometry.
  double x = 0, y = 0, r2 = 0;
  do {
    x = 2.0 * uniform() - 1.0;
    y = 2.0 * uniform() - 1.0;
    r2 = x * x + y * y;
  } while (r2 >= 1.0 || r2 == 0.0);
  const double scale = std::sqrt(-2.0 * std::log(r2) / r2);
  spare_normal_ = y * scale;
  has_spare_ = true;
  return x * scale;
}

std::uint64_t Rng::below(std::uint64_t n) {
  if (n == 0) throw ParamError("Rng::below(0): empty range");
  // Rejection sampling removes the modulo bias.
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
  std::uint64_t x = next_u64();
  while (x >= limit) x = next_u64();
  return x % n;
}

void Rng::fill_normal(Tensor& t, float mean, float stddev) {
  float* p = t.data();
  for (std::int64_t i = 0; i < t.size(); ++i) p[i] = mean + stddev * static_cast<float>(normal());
}

void Rng::fill_uniform(Tensor& t, float lo, float hi) {
  float* p = t.data();
  for (std::int64_t i = 0; i < t.size(); ++i) p[i] = static_cast<float>(uniform(lo, hi));
}

void Rng::fill_normal_chunked(Tensor& t, std::uint64_t seed, float mean, float stddev) {
  fill_normal_chunked(t.data(), t.size(), seed, mean, stddev);
}

void Rng::fill_normal_chunked(float* p, std::int64_t n, std::uint64_t seed, float mean, float stddev) {
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < chunks; ++c) {
    Rng rng(derive(seed, static_cast<std::uint64_t>(c)));
    const std::int64_t end = std::min(n, (c + 1) * kChunk);
    for (std::int64_t i = c * kChunk; i < end; ++i) p[i] = mean + stddev * static_cast<float>(rng.normal());
  }
}

std::uint64_t Rng::derive(std::uint64_t seed, std::uint64_t index) {
  std::uint64_t state = seed ^ (index * 0xD1B54A32D192ED03ULL);
  splitmix64(state);
  return splitmix64(state);
}

std::uint64_t Rng::derive(std::uint64_t seed, std::string_view stream) {
  // FNV-1a over the name, mixed with the seed through splitmix64.
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : stream) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  std::uint64_t state = seed ^ h;
  splitmix64(state);
  return splitmix64(state);
}

}  // namespace attnlab
