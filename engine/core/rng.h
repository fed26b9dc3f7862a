// Seeded random numbers that are the same on every platform and compiler.
//
// std::normal_distribution is implementation-defined, so a session saved on one machine could
// draw other numbers on another; we generate our own: xoshiro256** seeded by splitmix64,
// uniform floats from the top 53 bits, normals by Marsaglia's polar method. Sub-streams are derived by
// name (Rng::derive(seed, "layer3/w_q")) so adding a new random draw elsewhere never shifts the
// numbers of existing ones.
#pragma once

#include <cstdint>
#include <string_view>

namespace attnlab {

class Tensor;

class Rng {
 public:
  explicit Rng(std::uint64_t seed);

  std::uint64_t next_u64();
  double uniform();                       // [0, 1)
  double uniform(double lo, double hi);   // [lo, hi)
  double normal();                        // mean 0, standard deviation 1
  std::uint64_t below(std::uint64_t n);   // uniform integer in [0, n), n > 0

  void fill_normal(Tensor& t, float mean, float stddev);
  void fill_uniform(Tensor& t, float lo, float hi);

  // Normal(mean, stddev) entries for large tensors (weights), in parallel: the tensor is cut into
  // fixed chunks of kChunk elements, chunk c drawing from its own stream derive(seed, c), so the
  // numbers are the same for any thread count.
  static constexpr std::int64_t kChunk = 4096;
  static void fill_normal_chunked(float* data, std::int64_t count, std::uint64_t seed, float mean, float stddev);
  static void fill_normal_chunked(Tensor& t, std::uint64_t seed, float mean, float stddev);

  // A seed for the named sub-stream of `seed`.
  static std::uint64_t derive(std::uint64_t seed, std::string_view stream);
  static std::uint64_t derive(std::uint64_t seed, std::uint64_t index);

 private:
  std::uint64_t s_[4];
  double spare_normal_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace attnlab
