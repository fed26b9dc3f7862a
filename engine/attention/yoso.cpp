// YOSO: You Only Sample (Almost) Once — Bernoulli sampling attention through LSH
// (Zeng et al. 2021), registered as "yoso".
//
//   q: [H, Lq, d]  k: [H, Lk, d]  v: [H, Lk, dv]  ->  out: [H, Lq, dv]
//   q̂ = q / ‖q‖, k̂ = k / ‖k‖ (a zero vector stays zero, as torch's normalize with its eps)
//   expected kernel   B_ij = (1 - arccos(q̂_i·k̂_j)/π)^τ   (the collision probability of a τ-bit
//                     sign-random-projection code; a zero vector counts as orthogonal)
//   sampled kernel    B̂_ij = (1/m) Σ_hash [code(q_i) = code(k_j)], for m hashes, each a Gaussian
//                     R ∈ R^{d×τ} drawn from the seed per head, code(x) = Σ_b [x·r_b > 0]·2^b
//   output            y_i = Σ_j K_ij v_j with K = B̂ (mode "sampled") or B (mode "expected"),
//                     then out_i = y_i / max(‖y_i‖, 1e-12): rows scaled to unit L2 norm, as the
//                     reference does; there is no softmax denominator (the 1/m factor cancels).
//   masks             padded keys and, when causal, keys j > i take no part (K_ij = 0).
//   weights (trace)   [H, Lq, Lk] the kernel actually applied (B̂ or B), masked, NOT row-normalised:
//                     the one variant whose weight rows do not sum to 1 (see yoso.h).
//
// Reference: mlpen/YOSO yoso_v1 (yoso.py, kernel.py, fast_lsh_cumulation). We follow its forward
// pass (normalised q and k, sign-random-projection codes, table cumulation, row L2 normalisation)
// and leave out the optional depthwise convolution of V and the fast Hadamard hashing; hash
// directions are i.i.d. Gaussian. The code of x depends only on the signs of x·r_b, so codes are
// computed from the raw q and k (normalising cannot change a sign).
//
// Angles: arccos by a vectorised polynomial (Abramowitz & Stegun 4.4.46), and for nearly parallel
// pairs (cosine > 0.99) from the chord 2·asin(‖q̂ - k̂‖/2), where arccos of a float cosine is poor:
// a key equal to its query gets B = 1 exactly.
//
// Fast path, sampled (no trace): per hash, a table T[2^τ, dv]: T[code(k_j)] += v_j over the keys,
// then y_i += T[code(q_i)]; O(m·L·(τd + dv)) time, one table per thread (O(2^τ·dv), cleared
// entry by entry), codes for 8 hashes at a time ([H, 8, L]). Causal: the table is filled
// incrementally, key i added just before query i reads it, so query i sees exactly the keys
// j <= i. Work is split by (head, column slice of V), each slice summing its hashes in order, so
// the result does not depend on the thread count.
// Fast path, expected: the exact kernel needs every pair (YOSO-E, O(L²·d)); it is computed
// blockwise without an L x L buffer.
// Traced path: both kernels dense, the codes, the error of the kernel from the first m' hashes,
// and collision frequencies binned by angle, all computed here so the view only draws.
#include "attention/yoso.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>

#include "attention/variants.h"
#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

double yoso_collision_probability(double angle, int hash_bits) {
  return std::pow(1.0 - angle / std::numbers::pi, hash_bits);
}

int YosoExtras::collisions(std::int64_t head, std::int64_t query, std::int64_t key) const {
  return static_cast<int>(std::lround(static_cast<double>(sampled(head, query, key)) * data_.n_hashes));
}

nlohmann::json YosoExtras::to_json() const {
  const Data& d = data_;
  nlohmann::json j;
  j["kind"] = "yoso";
  j["hash_bits"] = d.hash_bits;
  j["n_hashes"] = d.n_hashes;
  j["mode"] = d.mode;
  j["causal"] = d.causal;
  j["weights_convention"] = "kernel applied (not row-normalised); output rows scaled to unit L2 norm";
  const auto matrix = [&](const Tensor& t, std::int64_t h) {
    nlohmann::json rows = nlohmann::json::array();
    for (std::int64_t i = 0; i < t.dim(1); ++i) {
      nlohmann::json row = nlohmann::json::array();
      for (std::int64_t c = 0; c < t.dim(2); ++c) row.push_back(t.at(h, i, c));
      rows.push_back(std::move(row));
    }
    return rows;
  };
  nlohmann::json qcodes = nlohmann::json::array(), kcodes = nlohmann::json::array();
  nlohmann::json sampled_k = nlohmann::json::array(), expected_k = nlohmann::json::array();
  nlohmann::json errors = nlohmann::json::array(), bins = nlohmann::json::array();
  for (std::int64_t h = 0; h < d.heads; ++h) {
    nlohmann::json qh = nlohmann::json::array(), kh = nlohmann::json::array();
    for (int t = 0; t < d.n_hashes; ++t) {
      nlohmann::json qrow = nlohmann::json::array(), krow = nlohmann::json::array();
      for (std::int64_t i = 0; i < d.queries; ++i) qrow.push_back(query_code(h, t, i));
      for (std::int64_t i = 0; i < d.keys; ++i) krow.push_back(key_code(h, t, i));
      qh.push_back(std::move(qrow));
      kh.push_back(std::move(krow));
    }
    qcodes.push_back(std::move(qh));
    kcodes.push_back(std::move(kh));
    sampled_k.push_back(matrix(d.sampled, h));
    expected_k.push_back(matrix(d.expected, h));
    nlohmann::json e = nlohmann::json::array();
    for (std::size_t p = 0; p < d.error_hashes.size(); ++p) e.push_back(relative_error(h, p));
    errors.push_back(std::move(e));
    nlohmann::json hb = nlohmann::json::array();
    for (int b = 0; b < kAngleBins; ++b) {
      const std::size_t k = bin_index(h, b);
      hb.push_back({{"pairs", d.bin_pairs[k]},
                    {"mean_angle", d.bin_angle[k]},
                    {"sampled", d.bin_sampled[k]},
                    {"expected", d.bin_expected[k]}});
    }
    bins.push_back(std::move(hb));
  }
  j["query_codes"] = std::move(qcodes);  // [H][m][Lq]
  j["key_codes"] = std::move(kcodes);    // [H][m][Lk]
  j["sampled_kernel"] = std::move(sampled_k);    // [H][Lq][Lk]
  j["expected_kernel"] = std::move(expected_k);  // [H][Lq][Lk]
  j["error_hashes"] = d.error_hashes;
  j["relative_error"] = std::move(errors);  // [H][points]
  j["relative_error_all_heads"] = d.relative_error_all;
  nlohmann::json reference = nlohmann::json::array();
  for (std::int64_t h = 0; h < d.heads; ++h) {
    nlohmann::json r = nlohmann::json::array();
    for (std::size_t p = 0; p < d.error_hashes.size(); ++p) r.push_back(error_reference(h, p));
    reference.push_back(std::move(r));
  }
  j["error_reference"] = std::move(reference);  // [H][points] relative_error(m'=1) / sqrt(m')
  j["angle_bins"] = std::move(bins);  // [H][36], bins of 5 degrees
  j["curve_angle"] = d.curve_angle;
  j["curve_probability"] = d.curve_probability;
  return j;
}

namespace {

constexpr int kMaxHashBits = 16;
constexpr int kMaxHashes = 256;
constexpr std::int64_t kValueSlice = 16;          // value columns per accumulation task
constexpr std::int64_t kCodeRows = 256;           // rows projected per GEMM when hashing
constexpr int kHashGroup = 8;                     // hashes coded together
constexpr std::int64_t kQueryBlock = 64;          // expected mode, fast path
constexpr std::int64_t kKeyBlock = 256;
constexpr float kNormEps = 1e-12f;
constexpr std::int64_t kParallelMinWork = 16384;  // elements below which a loop runs on one thread

struct YosoOptions {
  int bits = 8;
  int hashes = 32;
  bool expected = false;
};

// arccos on [-1, 1] for a whole row, by Abramowitz & Stegun 4.4.46 (error below 2e-8 rad before
// rounding): a polynomial and a square root as Eigen array expressions, which run vectorised
// (std::acos is called one element at a time). On entry `x` holds cosines; on return angles.
void acos_in_place(Eigen::Map<Eigen::ArrayXf> x) {
  const Eigen::ArrayXf a = x.abs().min(1.0f);
  Eigen::ArrayXf p = a * -0.0012624911f + 0.0066700901f;
  p = p * a - 0.0170881256f;
  p = p * a + 0.0308918810f;
  p = p * a - 0.0501743046f;
  p = p * a + 0.0889789874f;
  p = p * a - 0.2145988016f;
  p = p * a + 1.5707963050f;
  p *= (1.0f - a).sqrt();
  x = (x < 0.0f).select(std::numbers::pi_v<float> - p, p);
}

// Above this cosine the angle comes from the chord instead of arccos (see kernel_row).
constexpr float kChordCosine = 0.99f;

// Per-thread buffers of kernel_row, each at least as long as the longest row.
struct RowScratch {
  std::vector<float> base, result;
  explicit RowScratch(std::int64_t n) : base(static_cast<std::size_t>(n)), result(static_cast<std::size_t>(n)) {}
};

// One query against keys k0 .. k0+n-1 of a head. On entry kernel[c] holds the dot product q·k;
// on return angles[c] is the angle θ and kernel[c] = (1 - θ/π)^τ · keep[c] (keep: 1 for a
// visible key, 0 for a masked one). Zero vectors have inverse norm 0, hence cosine 0: they count
// as orthogonal to everything. Near θ = 0 arccos loses most of float's precision (a key equal to
// its query would come out 3e-4 rad away, B = 0.999 instead of 1), so where the cosine exceeds
// kChordCosine the angle is taken from the chord instead: θ = 2·asin(‖q̂ - k̂‖ / 2).
struct KernelRow {
  const float* q_row = nullptr;   // [d]
  float q_inv_norm = 0.0f;
  const float* k_rows = nullptr;  // [Lk, d] of the head
  const float* k_inv_norms = nullptr;  // [Lk]
  std::int64_t k0 = 0, n = 0, d = 0;
  int bits = 8;
};

void kernel_row(const KernelRow& r, const float* keep, float* kernel, float* angles, RowScratch& scratch) {
  const std::int64_t n = r.n;
  const float* k_inv = r.k_inv_norms + r.k0;
  Eigen::Map<Eigen::ArrayXf> theta(angles, n);
  theta = Eigen::Map<const Eigen::ArrayXf>(kernel, n) * r.q_inv_norm * Eigen::Map<const Eigen::ArrayXf>(k_inv, n);
  const float largest = n > 0 ? theta.maxCoeff() : -1.0f;  // the largest cosine
  acos_in_place(theta);
  if (largest >= kChordCosine) {
    for (std::int64_t c = 0; c < n; ++c) {
      if (kernel[c] * r.q_inv_norm * k_inv[c] < kChordCosine) continue;
      const float* k_row = r.k_rows + (r.k0 + c) * r.d;
      float chord_squared = 0.0f;
      for (std::int64_t e = 0; e < r.d; ++e) {
        const float diff = r.q_row[e] * r.q_inv_norm - k_row[e] * k_inv[c];
        chord_squared += diff * diff;
      }
      angles[c] = 2.0f * std::asin(std::min(1.0f, 0.5f * std::sqrt(chord_squared)));
    }
  }
  // (1 - θ/π)^τ by repeated squaring, one pass over the row per bit of τ.
  float* base = scratch.base.data();
  float* result = scratch.result.data();
  for (std::int64_t c = 0; c < n; ++c) {
    base[c] = 1.0f - angles[c] * std::numbers::inv_pi_v<float>;
    result[c] = keep[c];
  }
  for (int e = r.bits; e > 0; e >>= 1) {
    if (e & 1)
      for (std::int64_t c = 0; c < n; ++c) result[c] *= base[c];
    if (e > 1)
      for (std::int64_t c = 0; c < n; ++c) base[c] *= base[c];
  }
  std::copy(result, result + n, kernel);
}

// The hash directions of one head, [d, m·τ]: column t·τ + b is direction b of hash t.
Tensor draw_projections(std::uint64_t seed, std::int64_t head, std::int64_t d, const YosoOptions& o) {
  Tensor r = Tensor::uninitialized({d, static_cast<std::int64_t>(o.hashes) * o.bits});
  Rng rng(Rng::derive(seed, "yoso/projections/head" + std::to_string(head)));
  for (std::int64_t col = 0; col < r.dim(1); ++col)
    for (std::int64_t c = 0; c < d; ++c) r.at(c, col) = static_cast<float>(rng.normal());
  return r;
}

// Codes of hashes first .. first+count-1 (count <= kHashGroup) for every row of x, written to
// codes[h, slot + t, i] for a codes tensor of shape [H, slots, L]: small integers held in floats
// (exact below 2^24) so that the buffer is a Tensor the memory meter counts. The projections are
// computed per block of kCodeRows rows into a fixed per-thread buffer. Both paths cut the work
// into the same (head, row block, hash group) pieces, so a projection that lands within rounding
// of 0 still gives the fast and the traced path the same code.
void hash_codes_into(const Tensor& x, const std::vector<Tensor>& projections, int bits, int first, int count, Tensor& codes,
                     int slot) {
  const std::int64_t H = x.dim(0), L = x.dim(1);
  const std::int64_t blocks = (L + kCodeRows - 1) / kCodeRows;
  const std::int64_t cols = static_cast<std::int64_t>(count) * bits;
  const auto hash_block = [&](std::int64_t task, RowMatrix& projected) {
    const std::int64_t h = task / blocks, r0 = (task % blocks) * kCodeRows, rows = std::min(kCodeRows, L - r0);
    auto p = projected.topLeftCorner(rows, cols);
    p.noalias() = x.matrix(h).middleRows(r0, rows) *
                  projections[static_cast<std::size_t>(h)].matrix().middleCols(static_cast<std::int64_t>(first) * bits, cols);
    for (std::int64_t r = 0; r < rows; ++r) {
      for (int t = 0; t < count; ++t) {
        int code = 0;
        for (int b = 0; b < bits; ++b) code |= (p(r, t * bits + b) > 0.0f ? 1 : 0) << b;
        codes.at(h, slot + t, r0 + r) = static_cast<float>(code);
      }
    }
  };
  if (H * L * cols < kParallelMinWork) {
    // Small: on this thread, outside any OpenMP region. (Inside a one-thread region, an
    // `omp parallel if (false)`, Eigen's product would open a nested two-thread team per block,
    // oversubscribing the cores: L = 128 … 255 took 30 ms instead of 0.5.)
    RowMatrix projected(kCodeRows, static_cast<std::int64_t>(kHashGroup) * bits);
    for (std::int64_t task = 0; task < H * blocks; ++task) hash_block(task, projected);
    return;
  }
#pragma omp parallel
  {
    RowMatrix projected(kCodeRows, static_cast<std::int64_t>(kHashGroup) * bits);
#pragma omp for schedule(static)
    for (std::int64_t task = 0; task < H * blocks; ++task) hash_block(task, projected);
  }
}

// Every hash's codes: [H, m, L].
Tensor all_hash_codes(const Tensor& x, const std::vector<Tensor>& projections, const YosoOptions& o, const CancelToken* cancel) {
  Tensor codes = Tensor::uninitialized({x.dim(0), o.hashes, x.dim(1)});
  for (int first = 0; first < o.hashes; first += kHashGroup) {
    check_cancelled(cancel);
    hash_codes_into(x, projections, o.bits, first, std::min(kHashGroup, o.hashes - first), codes, first);
  }
  return codes;
}

// Row i of head h of a [H, L, d] tensor.
const float* row_of(const Tensor& t, std::int64_t h, std::int64_t i) { return t.data() + (h * t.dim(1) + i) * t.dim(2); }

// out_i /= max(‖out_i‖, eps) for every row of every head.
void normalise_rows(Tensor& out) {
  const std::int64_t rows = out.dim(0) * out.dim(1);
  auto all = UnalignedMatrixMap(out.data(), rows, out.dim(2));
#pragma omp parallel for schedule(static) if (rows * out.dim(2) >= kParallelMinWork)
  for (std::int64_t r = 0; r < rows; ++r) all.row(r) /= std::max(all.row(r).norm(), kNormEps);
}

// 1 / ‖x_i‖ for every row of x: [H, L]; 0 for a zero row.
Tensor inverse_row_norms(const Tensor& x) {
  Tensor inv = Tensor::uninitialized({x.dim(0), x.dim(1)});
  for (std::int64_t h = 0; h < x.dim(0); ++h) {
    for (std::int64_t i = 0; i < x.dim(1); ++i) {
      const float norm = x.matrix(h).row(i).norm();
      inv.at(h, i) = norm > 0.0f ? 1.0f / norm : 0.0f;
    }
  }
  return inv;
}

// keep[j] = 0 for a padded key, 1 otherwise: [Lk].
Tensor key_keep(const AttentionInput& in) {
  Tensor keep = Tensor::uninitialized({in.k.dim(1)});
  for (std::int64_t j = 0; j < keep.size(); ++j) keep.data()[j] = is_key_padded(in.key_padding, j) ? 0.0f : 1.0f;
  return keep;
}

// 1, 2, 4, ..., m, with m itself last.
std::vector<int> error_checkpoints(int hashes) {
  std::vector<int> points;
  for (int p = 1; p < hashes; p *= 2) points.push_back(p);
  points.push_back(hashes);
  return points;
}

class YosoAttention final : public Attention {
 public:
  YosoAttention() {
    spec_.name = "yoso";
    spec_.title = "YOSO Bernoulli-sampling attention";
    spec_.paper = "Zeng et al. 2021, You Only Sample (Almost) Once: Linear Cost Self-Attention Via Bernoulli "
                  "Sampling (arXiv:2111.09714)";
    spec_.summary =
        "Weights are collision frequencies of random-hyperplane hash codes of normalised queries and keys, "
        "accumulated in hash tables: linear cost; rows of the output are scaled to unit length.";
    spec_.params = {
        ParamSpec::integer("hash_bits", "Hash bits τ", 8, 1, kMaxHashBits,
                           "Bits of each sign-random-projection code (2^τ buckets); the kernel (1 - θ/π)^τ "
                           "sharpens as τ grows."),
        ParamSpec::integer("n_hashes", "Hashes m", 32, 1, kMaxHashes,
                           "Independent hash functions averaged; the sampled kernel's error shrinks like 1/sqrt(m)."),
        ParamSpec::choice("mode", "Mode", "sampled", {"sampled", "expected"},
                          "sampled: Bernoulli sampling through hash tables, linear in L; expected: the exact kernel "
                          "(1 - arccos(q̂·k̂)/π)^τ for every pair (YOSO-E, quadratic)."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    YosoOptions o;
    o.bits = static_cast<int>(in.params->get_int("hash_bits"));
    o.hashes = static_cast<int>(in.params->get_int("n_hashes"));
    o.expected = in.params->get_choice("mode") == "expected";
    if (trace) return forward_traced(in, o, *trace);
    return o.expected ? forward_expected(in, o) : forward_sampled(in, o);
  }

  // Hash directions [d, m·τ] per head (sampled and traced). Sampled: the codes of one group of
  // hashes [H, g, Lq] and [H, g, Lk], one table [2^τ, 16] per thread, the output. Expected:
  // inverse norms [H, Lq] and [H, Lk], the key mask [Lk], the output. Traced: the codes of every
  // hash, [H, m, Lq] then [H, m, Lk], each freed once copied to integers; then the inverse norms
  // and mask, the sampled and the expected matrices [H, Lq, Lk], the output, and the applied one
  // copied into the trace.
  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override {
    const std::int64_t bits = params.get_int("hash_bits"), hashes = params.get_int("n_hashes");
    const bool expected = params.get_choice("mode") == "expected";
    const std::int64_t H = s.heads, out = s.heads * s.lq * s.dv;
    const std::int64_t projections = float_bytes(H * s.d * hashes * bits);
    const std::int64_t norms = float_bytes(H * s.lq + H * s.lk + s.lk);
    if (s.trace) {
      const std::int64_t codes = float_bytes(H * hashes * std::max(s.lq, s.lk));
      return projections + std::max(codes, norms + float_bytes(3 * H * s.lq * s.lk + out));
    }
    if (expected) return norms + float_bytes(out);
    const std::int64_t group = std::min<std::int64_t>(kHashGroup, hashes);
    const std::int64_t tables = std::max(1, omp_get_max_threads()) * (std::int64_t{1} << bits) * kValueSlice;
    return projections + float_bytes(H * group * (s.lq + s.lk) + tables + out);
  }

 private:
  static std::vector<Tensor> projections_for(const AttentionInput& in, const YosoOptions& o) {
    std::vector<Tensor> r;
    for (std::int64_t h = 0; h < in.q.dim(0); ++h) r.push_back(draw_projections(in.seed, h, in.q.dim(2), o));
    return r;
  }

  // Hashes are taken kHashGroup at a time: their codes ([H, group, L]), then the tables.
  Tensor forward_sampled(const AttentionInput& in, const YosoOptions& o) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), dv = in.v.dim(2);
    const std::vector<Tensor> projections = projections_for(in, o);
    const int group = std::min(kHashGroup, o.hashes);
    Tensor q_codes = Tensor::uninitialized({H, group, Lq});
    Tensor k_codes = Tensor::uninitialized({H, group, Lk});
    const std::int64_t buckets = std::int64_t{1} << o.bits;
    const std::int64_t slices = (dv + kValueSlice - 1) / kValueSlice;
    const int threads = omp_get_max_threads();
    Tensor tables({threads, buckets, kValueSlice});  // zero: every table starts and ends each hash empty
    Tensor out({H, Lq, dv});
    for (int first = 0; first < o.hashes; first += group) {
      check_cancelled(in.cancel);
      const int count = std::min(group, o.hashes - first);
      hash_codes_into(in.q, projections, o.bits, first, count, q_codes, 0);
      hash_codes_into(in.k, projections, o.bits, first, count, k_codes, 0);
      bool cancelled = false;
#pragma omp parallel num_threads(threads)
      {
        float* table = tables.data() + static_cast<std::int64_t>(omp_get_thread_num()) * buckets * kValueSlice;
#pragma omp for schedule(dynamic)
        for (std::int64_t task = 0; task < H * slices; ++task) {
          if (cancelled || (in.cancel && in.cancel->cancelled())) {
            cancelled = true;
            continue;
          }
          const std::int64_t h = task / slices, c0 = (task % slices) * kValueSlice;
          const std::int64_t width = std::min(kValueSlice, dv - c0);
          auto y = out.matrix(h);
          const auto add_key = [&](std::int64_t j, const float* codes) {
            float* bucket = table + static_cast<std::int64_t>(codes[j]) * kValueSlice;
            const float* value = row_of(in.v, h, j) + c0;
            for (std::int64_t c = 0; c < width; ++c) bucket[c] += value[c];
          };
          const auto read_query = [&](std::int64_t i, const float* codes) {
            const float* bucket = table + static_cast<std::int64_t>(codes[i]) * kValueSlice;
            float* dst = &y(i, c0);
            for (std::int64_t c = 0; c < width; ++c) dst[c] += bucket[c];
          };
          for (int t = 0; t < count; ++t) {
            const float* kc = k_codes.data() + (h * group + t) * Lk;
            const float* qc = q_codes.data() + (h * group + t) * Lq;
            if (in.causal) {  // Lq == Lk: the table holds keys 0..i when query i reads it
              for (std::int64_t i = 0; i < Lq; ++i) {
                if (!is_key_padded(in.key_padding, i)) add_key(i, kc);
                read_query(i, qc);
              }
            } else {
              for (std::int64_t j = 0; j < Lk; ++j)
                if (!is_key_padded(in.key_padding, j)) add_key(j, kc);
              for (std::int64_t i = 0; i < Lq; ++i) read_query(i, qc);
            }
            for (std::int64_t j = 0; j < Lk; ++j) {  // empty the touched buckets for the next hash
              float* bucket = table + static_cast<std::int64_t>(kc[j]) * kValueSlice;
              std::fill(bucket, bucket + width, 0.0f);
            }
          }
        }
      }
      if (cancelled) throw CancelledError();
    }
    normalise_rows(out);
    return out;
  }

  Tensor forward_expected(const AttentionInput& in, const YosoOptions& o) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), d = in.q.dim(2), dv = in.v.dim(2);
    const Tensor q_inv = inverse_row_norms(in.q), k_inv = inverse_row_norms(in.k);
    const Tensor keep_all = key_keep(in);
    Tensor out({H, Lq, dv});
    const std::int64_t query_blocks = (Lq + kQueryBlock - 1) / kQueryBlock;
    bool cancelled = false;
#pragma omp parallel
    {
      RowMatrix scores(kQueryBlock, kKeyBlock);
      std::vector<float> angles(kKeyBlock), keep(kKeyBlock);
      RowScratch scratch(kKeyBlock);
#pragma omp for schedule(dynamic)
      for (std::int64_t task = 0; task < H * query_blocks; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / query_blocks, q0 = (task % query_blocks) * kQueryBlock;
        const std::int64_t rows = std::min(kQueryBlock, Lq - q0);
        const std::int64_t key_end = in.causal ? std::min(Lk, q0 + rows) : Lk;
        auto dst = out.matrix(h).middleRows(q0, rows);
        for (std::int64_t k0 = 0; k0 < key_end; k0 += kKeyBlock) {
          const std::int64_t cols = std::min(kKeyBlock, key_end - k0);
          UnalignedMatrixMap s(scores.data(), rows, cols);
          s.noalias() = in.q.matrix(h).middleRows(q0, rows) * in.k.matrix(h).middleRows(k0, cols).transpose();
          for (std::int64_t r = 0; r < rows; ++r) {
            const std::int64_t i = q0 + r;
            for (std::int64_t c = 0; c < cols; ++c)
              keep[static_cast<std::size_t>(c)] = in.causal && k0 + c > i ? 0.0f : keep_all.data()[k0 + c];
            const KernelRow row{row_of(in.q, h, i), q_inv.at(h, i), row_of(in.k, h, 0), k_inv.data() + h * Lk, k0, cols, d, o.bits};
            kernel_row(row, keep.data(), &s(r, 0), angles.data(), scratch);
          }
          dst.noalias() += s * in.v.matrix(h).middleRows(k0, cols);
        }
      }
    }
    if (cancelled) throw CancelledError();
    normalise_rows(out);
    return out;
  }

  Tensor forward_traced(const AttentionInput& in, const YosoOptions& o, Trace& trace) const {
    const std::int64_t H = in.q.dim(0), Lq = in.q.dim(1), Lk = in.k.dim(1), d = in.q.dim(2);
    const std::vector<Tensor> projections = projections_for(in, o);
    const auto to_codes = [](const Tensor& codes) {
      std::vector<std::uint16_t> c(static_cast<std::size_t>(codes.size()));
      for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::uint16_t>(codes.data()[i]);
      return c;
    };
    YosoExtras::Data data;
    data.query_codes = to_codes(all_hash_codes(in.q, projections, o, in.cancel));
    data.key_codes = to_codes(all_hash_codes(in.k, projections, o, in.cancel));
    const Tensor q_inv = inverse_row_norms(in.q), k_inv = inverse_row_norms(in.k);
    const Tensor keep_all = key_keep(in);

    data.heads = H;
    data.queries = Lq;
    data.keys = Lk;
    data.hash_bits = o.bits;
    data.n_hashes = o.hashes;
    data.mode = o.expected ? "expected" : "sampled";
    data.causal = in.causal;
    data.sampled = Tensor::uninitialized({H, Lq, Lk});
    data.expected = Tensor::uninitialized({H, Lq, Lk});
    data.error_hashes = error_checkpoints(o.hashes);
    const std::size_t points = data.error_hashes.size();
    constexpr int bins = YosoExtras::kAngleBins;
    std::vector<double> error_num(static_cast<std::size_t>(H) * points, 0.0), error_den(static_cast<std::size_t>(H), 0.0);
    data.bin_pairs.assign(static_cast<std::size_t>(H * bins), 0);
    data.bin_angle.assign(static_cast<std::size_t>(H * bins), 0.0);
    data.bin_sampled.assign(static_cast<std::size_t>(H * bins), 0.0);
    data.bin_expected.assign(static_cast<std::size_t>(H * bins), 0.0);
    Tensor out = Tensor::uninitialized({H, Lq, in.v.dim(2)});
    const float inv_hashes = 1.0f / static_cast<float>(o.hashes);

    bool cancelled = false;
#pragma omp parallel
    {
      RowScratch scratch(Lk);
      std::vector<float> angles(static_cast<std::size_t>(Lk)), keep(static_cast<std::size_t>(Lk));
      std::vector<std::uint16_t> counts(static_cast<std::size_t>(Lk));
      std::vector<int> bin_of(static_cast<std::size_t>(Lk));
#pragma omp for schedule(dynamic)
      for (std::int64_t h = 0; h < H; ++h) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        auto expected = data.expected.matrix(h);
        auto sampled = data.sampled.matrix(h);
        expected.noalias() = in.q.matrix(h) * in.k.matrix(h).transpose();  // dot products, then B
        const std::uint16_t* q_codes = data.query_codes.data() + h * o.hashes * Lq;
        const std::uint16_t* k_codes = data.key_codes.data() + h * o.hashes * Lk;
        std::int64_t* pairs_h = data.bin_pairs.data() + h * bins;
        double* angle_h = data.bin_angle.data() + h * bins;
        double* sampled_h = data.bin_sampled.data() + h * bins;
        double* expected_h = data.bin_expected.data() + h * bins;
        for (std::int64_t i = 0; i < Lq; ++i) {
          for (std::int64_t j = 0; j < Lk; ++j)
            keep[static_cast<std::size_t>(j)] = in.causal && j > i ? 0.0f : keep_all.data()[j];
          float* b_row = &expected(i, 0);
          const KernelRow row{row_of(in.q, h, i), q_inv.at(h, i), row_of(in.k, h, 0), k_inv.data() + h * Lk, 0, Lk, d, o.bits};
          kernel_row(row, keep.data(), b_row, angles.data(), scratch);
          error_den[static_cast<std::size_t>(h)] += static_cast<double>(expected.row(i).squaredNorm());

          // Collision counts hash by hash; the error of the first m' hashes at each checkpoint.
          std::fill(counts.begin(), counts.end(), std::uint16_t{0});
          std::uint16_t* cnt = counts.data();
          const float* kp = keep.data();
          std::size_t next_point = 0;
          for (int t = 0; t < o.hashes; ++t) {
            const std::uint16_t code = q_codes[t * Lq + i];
            const std::uint16_t* kc = k_codes + t * Lk;
#pragma omp simd
            for (std::int64_t j = 0; j < Lk; ++j) cnt[j] = static_cast<std::uint16_t>(cnt[j] + (kc[j] == code ? 1 : 0));
            if (t + 1 == data.error_hashes[next_point]) {
              const float scale = 1.0f / static_cast<float>(t + 1);
              float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
              for (std::int64_t j = 0; j < Lk; ++j) {
                const float diff = kp[j] * static_cast<float>(cnt[j]) * scale - b_row[j];
                squares += diff * diff;
              }
              error_num[static_cast<std::size_t>(h) * points + next_point] += squares;
              ++next_point;
            }
          }
          float* s_row = &sampled(i, 0);
          for (std::int64_t j = 0; j < Lk; ++j) s_row[j] = kp[j] * static_cast<float>(cnt[j]) * inv_hashes;

          // Collision frequency against angle, over the visible pairs.
          for (std::int64_t j = 0; j < Lk; ++j)
            bin_of[static_cast<std::size_t>(j)] =
                std::min(bins - 1, static_cast<int>(angles[static_cast<std::size_t>(j)] * (std::numbers::inv_pi_v<float> * bins)));
          for (std::int64_t j = 0; j < Lk; ++j) {
            if (kp[j] == 0.0f) continue;
            const int bin = std::max(0, bin_of[static_cast<std::size_t>(j)]);
            ++pairs_h[bin];
            angle_h[bin] += angles[static_cast<std::size_t>(j)];
            sampled_h[bin] += s_row[j];
            expected_h[bin] += b_row[j];
          }
        }
        out.matrix(h).noalias() = (o.expected ? data.expected : data.sampled).matrix(h) * in.v.matrix(h);
      }
    }
    if (cancelled) throw CancelledError();
    normalise_rows(out);

    for (std::size_t k = 0; k < data.bin_pairs.size(); ++k) {
      if (data.bin_pairs[k] == 0) continue;
      const auto n = static_cast<double>(data.bin_pairs[k]);
      data.bin_angle[k] /= n;
      data.bin_sampled[k] /= n;
      data.bin_expected[k] /= n;
    }
    data.relative_error.assign(static_cast<std::size_t>(H) * points, 0.0);
    data.relative_error_all.assign(points, 0.0);
    double den_all = 0.0;
    for (std::int64_t h = 0; h < H; ++h) den_all += error_den[static_cast<std::size_t>(h)];
    for (std::size_t p = 0; p < points; ++p) {
      double num_all = 0.0;
      for (std::int64_t h = 0; h < H; ++h) {
        const double num = error_num[static_cast<std::size_t>(h) * points + p], den = error_den[static_cast<std::size_t>(h)];
        data.relative_error[static_cast<std::size_t>(h) * points + p] = den > 0.0 ? std::sqrt(num / den) : 0.0;
        num_all += num;
      }
      data.relative_error_all[p] = den_all > 0.0 ? std::sqrt(num_all / den_all) : 0.0;
    }
    // The 1/sqrt(m') law through the first point, for the view's reference line.
    data.error_reference.assign(data.relative_error.size(), 0.0);
    for (std::int64_t h = 0; h < H; ++h)
      for (std::size_t p = 0; p < points; ++p)
        data.error_reference[static_cast<std::size_t>(h) * points + p] =
            data.relative_error[static_cast<std::size_t>(h) * points] / std::sqrt(static_cast<double>(data.error_hashes[p]));
    for (int p = 0; p < YosoExtras::kCurvePoints; ++p) {
      const double angle = std::numbers::pi * p / (YosoExtras::kCurvePoints - 1);
      data.curve_angle.push_back(angle);
      data.curve_probability.push_back(yoso_collision_probability(angle, o.bits));
    }
    const Tensor& applied = o.expected ? data.expected : data.sampled;
    // from_data copies with memcpy; a Tensor copy goes element by element through the allocator.
    trace.weights = Tensor::from_data(applied.shape(), applied.data(), static_cast<std::size_t>(applied.size()));
    trace.extras = std::make_shared<YosoExtras>(std::move(data));
    return out;
  }

  VariantSpec spec_;
};

}  // namespace

std::unique_ptr<Attention> make_yoso_attention() { return std::make_unique<YosoAttention>(); }

}  // namespace attnlab
