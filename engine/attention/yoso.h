// YOSO Bernoulli-sampling attention: its typed trace extras.
//
// The "yoso" view dynamic_casts a layer's extras to YosoExtras and draws only what is stored
// here: the hash codes of queries and keys, the sampled kernel (collision frequencies) and the
// expected kernel, the relative error of the sampled kernel after the first m' hashes, and the
// collision probability against the query-key angle, measured on the actual pairs beside the
// closed form.
//
// Trace convention. YOSO is the one variant whose trace->weights are not row-stochastic: they
// hold the kernel actually applied (B̂ in sampled mode, B in expected mode; zero for masked
// pairs), whose rows do not sum to 1, and the output is that kernel times V with every row then
// scaled to unit L2 norm — there is no softmax denominator.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention.h"

namespace attnlab {

// Closed form of the collision probability of a τ-bit sign-random-projection code for two
// vectors at angle θ: (1 - θ/π)^τ.
double yoso_collision_probability(double angle, int hash_bits);

class YosoExtras final : public TraceExtras {
 public:
  static constexpr int kAngleBins = 36;     // 5 degrees each over [0, π]
  static constexpr int kCurvePoints = 181;  // closed-form curve, one point per degree

  struct Data {
    std::int64_t heads = 0, queries = 0, keys = 0;
    int hash_bits = 8;  // τ
    int n_hashes = 32;  // m
    std::string mode = "sampled";
    bool causal = false;
    std::vector<std::uint16_t> query_codes;  // [H, m, Lq] in [0, 2^τ)
    std::vector<std::uint16_t> key_codes;    // [H, m, Lk]
    Tensor sampled;                          // [H, Lq, Lk] B̂ = collisions / m; 0 where masked
    Tensor expected;                         // [H, Lq, Lk] B = (1 - θ/π)^τ;     0 where masked
    // Relative Frobenius error ‖B̂_m' - B‖ / ‖B‖ of the kernel from the first m' hashes, for
    // m' = error_hashes[k] = 1, 2, 4, ..., m (m itself last even when not a power of two).
    std::vector<int> error_hashes;
    std::vector<double> relative_error;        // [H, n_points]
    std::vector<double> relative_error_all;    // [n_points], over every head together
    std::vector<double> error_reference;       // [H, n_points] relative_error at m' = 1 times 1/sqrt(m')
    // Collision probability against angle over the visible (query, key) pairs of each head,
    // binned by θ in kAngleBins equal bins of [0, π]:
    std::vector<std::int64_t> bin_pairs;       // [H, bins] pairs in the bin
    std::vector<double> bin_angle;             // [H, bins] mean θ of those pairs (radians)
    std::vector<double> bin_sampled;           // [H, bins] mean B̂ (empirical collision frequency)
    std::vector<double> bin_expected;          // [H, bins] mean closed form over the same pairs
    std::vector<double> curve_angle;           // [kCurvePoints] θ in [0, π]
    std::vector<double> curve_probability;     // [kCurvePoints] (1 - θ/π)^τ
  };

  explicit YosoExtras(Data data) : data_(std::move(data)) {}

  std::string_view kind() const override { return "yoso"; }
  nlohmann::json to_json() const override;

  const Data& data() const { return data_; }
  std::int64_t heads() const { return data_.heads; }
  std::int64_t queries() const { return data_.queries; }
  std::int64_t keys() const { return data_.keys; }
  int hash_bits() const { return data_.hash_bits; }
  int n_hashes() const { return data_.n_hashes; }
  const std::string& mode() const { return data_.mode; }

  int query_code(std::int64_t head, int hash, std::int64_t query) const {
    return data_.query_codes[static_cast<std::size_t>((head * data_.n_hashes + hash) * data_.queries + query)];
  }
  int key_code(std::int64_t head, int hash, std::int64_t key) const {
    return data_.key_codes[static_cast<std::size_t>((head * data_.n_hashes + hash) * data_.keys + key)];
  }
  float sampled(std::int64_t head, std::int64_t query, std::int64_t key) const { return data_.sampled.at(head, query, key); }
  float expected(std::int64_t head, std::int64_t query, std::int64_t key) const { return data_.expected.at(head, query, key); }
  // In how many of the m hashes the codes of query and key agree (0 for a masked pair).
  int collisions(std::int64_t head, std::int64_t query, std::int64_t key) const;
  double relative_error(std::int64_t head, std::size_t point) const {
    return data_.relative_error[static_cast<std::size_t>(head) * data_.error_hashes.size() + point];
  }
  double error_reference(std::int64_t head, std::size_t point) const {
    return data_.error_reference[static_cast<std::size_t>(head) * data_.error_hashes.size() + point];
  }
  std::size_t bin_index(std::int64_t head, int bin) const {
    return static_cast<std::size_t>(head * kAngleBins + bin);
  }

 private:
  Data data_;
};

}  // namespace attnlab
