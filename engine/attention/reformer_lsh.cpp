// Reformer LSH attention (Kitaev, Kaiser, Levskaya 2020), registered as "reformer_lsh".
//
//   q: [H, L, d]  k: [H, L, d]  v: [H, L, dv]  ->  out: [H, L, dv]   (self-attention: Lq = Lk = L)
//   weights (trace only): [H, L, L], the combined matrix of every round, back in token order
//
// For every head h and hash round r = 0..R-1 (R = n_hashes):
//   1. rotate: R_hr ~ N(0, 1)^{d × n_b/2}, its own draw per head and round (from the seed);
//   2. hash:   bucket(x) = argmax [x·R_hr ; −x·R_hr] ∈ [0, n_b) (angular LSH; first index on ties);
//   3. sort:   tokens by (bucket, position), stably (a counting sort);
//   4. chunk:  the sorted order is cut into chunks of c = bucket_size tokens (the last may be
//              shorter); chunk i attends to itself and the `chunks_before` chunks before it;
//   5. attend: within that window, logits s_ij = q_i·k_j/√d, softmax → o_r(i), lse_r(i) (the log of
//              the softmax denominator);
//   6. un-sort: o_r and lse_r are written back at the tokens' original positions.
// Rounds combine by their normalisers: out_i = Σ_r o_r(i)·exp(lse_r(i) − log Σ_r' exp(lse_r'(i))),
// i.e. one softmax over the union of all rounds' windows in which a key seen in n rounds counts n
// times. With dedup, logits −= log n_ij (n_ij = rounds in which j lies in i's window), which makes
// the combination exactly a softmax over the union of the windows.
//
// Shared QK (default): keys are the queries scaled to unit length, k̂_j = q_j/|q_j|, and the score of
// a token with itself is replaced by −5·10⁴, so it attends to itself only when nothing else is
// visible (then with weight 1: causal position 0 returns v_0). Without shared QK the given k is
// used, hashed with the same rotation as q (queries and keys are sorted separately; query chunk i
// meets key chunks i−chunks_before..i), and there is no self penalty.
// Causal masking uses ORIGINAL positions: key j is hidden from query i when j > i, wherever sorting
// put them; hidden keys and padded keys get exactly 0 weight.
//
// Where the references differ (ALGORITHMS.md §2), and what we chose:
//   - Scores: q·k̂/√d with k̂ = q/|q| (lucidrains/reformer-pytorch); trax uses q·k̂ without 1/√d.
//   - Self score: −5·10⁴ (reformer-pytorch; trax −1·10⁵), replacing the score, not added to it.
//   - Windows wrap around WITHIN a round: chunk 0 also sees the last chunk(s) of the same round, as
//     in trax and reformer-pytorch. Those two sort all rounds as one sequence, so there the first
//     chunk of round r looks back into the last chunk of round r−1; we keep rounds independent, so
//     each round is one hash table, R identical rotations give exactly one round, and the
//     combination above is exact.
//   - A window is the SET of distinct chunks {i, i−1, ..., i−chunks_before} mod n_chunks: with
//     fewer chunks than chunks_before + 1 no key is counted twice in one round (trax repeats keys
//     then; with one chunk both give the dense softmax).
//   - The length need not be a multiple of bucket_size (trax requires it): the last chunk is shorter.
//   - n_b: 0 = auto, 2·max(1, L / bucket_size) (as trax/reformer-pytorch); one rotation of n_b/2
//     columns at any n_b (trax can factorise large n_b into several smaller hashes; we do not).
//   - Causal: a later token can change the buckets' sort order and so move chunk boundaries; the
//     outputs of earlier queries may then change even though they never attend to later keys.
//
// Fast path (no trace): per head, the R rounds are hashed and sorted (O(R·L·d·n_b/2) + O(R·L));
// then each chunk gathers its queries and window keys into per-thread scratch and attends
// (O(R·L·W·d), W = (chunks_before+1)·c). Round outputs are folded into the output at once with a
// running log-sum-exp per token, so memory is O(L·dv) for the output, O(R·L) integers for the sort
// orders, and O(c·W) scratch per thread; no L × L matrix. Chunks run in parallel (OpenMP).
// Traced path: the same kernel per head (heads in parallel) that also keeps every round's weights,
// and then builds the dense combined matrix, the co-occurrence counts, the angle view and the
// recall of the exact top-k (analysis/lsh_analysis.h).
#include "attention/reformer_lsh.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>

#include "attention/variants.h"
#include "core/error.h"
#include "core/memory_meter.h"
#include "core/rng.h"

namespace attnlab {

// ---- IndexArray -------------------------------------------------------------------------------

IndexArray::IndexArray(std::size_t count) : values_(count), counted_bytes_(count * sizeof(std::int32_t)) {
  memory::on_allocate(counted_bytes_);
}

IndexArray::IndexArray(const IndexArray& other)
    : values_(other.values_), counted_bytes_(values_.size() * sizeof(std::int32_t)) {
  memory::on_allocate(counted_bytes_);
}

IndexArray::IndexArray(IndexArray&& other) noexcept
    : values_(std::move(other.values_)), counted_bytes_(other.counted_bytes_) {
  other.values_.clear();
  other.counted_bytes_ = 0;
}

IndexArray& IndexArray::operator=(IndexArray other) noexcept {
  std::swap(values_, other.values_);
  std::swap(counted_bytes_, other.counted_bytes_);
  return *this;
}

IndexArray::~IndexArray() { memory::on_free(counted_bytes_); }

// ---- geometry ---------------------------------------------------------------------------------

std::int64_t LshGeometry::window_first_chunk(std::int64_t chunk) const {
  const std::int64_t back = window_chunk_count() - 1;
  return ((chunk - back) % n_chunks + n_chunks) % n_chunks;
}

std::vector<std::int64_t> LshGeometry::window_chunks(std::int64_t chunk) const {
  std::vector<std::int64_t> out;
  const std::int64_t count = window_chunk_count();
  for (std::int64_t t = count - 1; t >= 0; --t) out.push_back(((chunk - t) % n_chunks + n_chunks) % n_chunks);
  return out;
}

std::int64_t LshGeometry::window_length(std::int64_t chunk) const {
  std::int64_t total = 0;
  for (std::int64_t c : window_chunks(chunk)) total += chunk_end(c) - chunk_begin(c);
  return total;
}

std::int64_t LshGeometry::max_window_length() const {
  // A window of every chunk holds the whole sequence; otherwise some window holds
  // window_chunk_count() full chunks (one without the shorter last chunk).
  const std::int64_t count = window_chunk_count();
  return count == n_chunks ? length : count * chunk_size;
}

bool LshGeometry::sees(std::int64_t query_chunk, std::int64_t key_chunk) const {
  std::int64_t back = query_chunk - key_chunk;
  if (back < 0) back += n_chunks;
  return back < window_chunk_count();
}

LshGeometry resolve_lsh_geometry(const Params& params, std::int64_t length) {
  LshGeometry g;
  g.length = length;
  g.n_hashes = params.get_int("n_hashes");
  g.chunk_size = params.get_int("bucket_size");
  g.chunks_before = params.get_int("chunks_before");
  const std::int64_t buckets = params.get_int("n_buckets");
  if (buckets == 0) {
    g.n_buckets = 2 * std::max<std::int64_t>(1, length / g.chunk_size);
  } else if (buckets < 2 || buckets % 2 != 0) {
    throw ParamError("n_buckets=" + std::to_string(buckets) +
                     " is not allowed; n_buckets: 0 (auto: 2·max(1, L/bucket_size)) or an even integer in [2, 4096] "
                     "(each rotation column makes two buckets, x·r and −x·r)");
  } else {
    g.n_buckets = buckets;
  }
  g.n_chunks = (length + g.chunk_size - 1) / g.chunk_size;
  return g;
}

// ---- hashing primitives -----------------------------------------------------------------------

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kTinyNorm = 1e-12f;        // as F.normalize: a zero query gives a zero key
constexpr std::int64_t kHashRowBlock = 256;  // rows rotated at once: scratch stays small at any L

// argmax of [y, −y] for one rotated row, the first index on ties.
std::int32_t bucket_of(const float* y, std::int64_t m) {
  float best = y[0];
  std::int64_t index = 0;
  for (std::int64_t j = 1; j < m; ++j) {
    if (y[j] > best) {
      best = y[j];
      index = j;
    }
  }
  for (std::int64_t j = 0; j < m; ++j) {
    if (-y[j] > best) {
      best = -y[j];
      index = m + j;
    }
  }
  return static_cast<std::int32_t>(index);
}

void hash_rows(const Eigen::Ref<const RowMatrix>& x, const Eigen::Ref<const RowMatrix>& rotation, std::int32_t* buckets) {
  const std::int64_t n = x.rows(), m = rotation.cols();
  RowMatrix rotated(std::min(kHashRowBlock, n), m);
  for (std::int64_t r0 = 0; r0 < n; r0 += kHashRowBlock) {
    const std::int64_t rows = std::min(kHashRowBlock, n - r0);
    auto block = rotated.topRows(rows);
    block.noalias() = x.middleRows(r0, rows) * rotation;
    for (std::int64_t i = 0; i < rows; ++i) buckets[r0 + i] = bucket_of(&block(i, 0), m);
  }
}

void counting_sort(const std::int32_t* buckets, std::int64_t n, std::int64_t n_buckets, std::int32_t* order,
                   std::int32_t* rank) {
  std::vector<std::int64_t> start(static_cast<std::size_t>(n_buckets + 1), 0);
  for (std::int64_t i = 0; i < n; ++i) ++start[static_cast<std::size_t>(buckets[i]) + 1];
  for (std::int64_t b = 0; b < n_buckets; ++b) start[static_cast<std::size_t>(b + 1)] += start[static_cast<std::size_t>(b)];
  for (std::int64_t i = 0; i < n; ++i) {  // increasing position within a bucket: stable
    const auto s = start[static_cast<std::size_t>(buckets[i])]++;
    order[s] = static_cast<std::int32_t>(i);
    if (rank) rank[i] = static_cast<std::int32_t>(s);
  }
}

}  // namespace

std::vector<std::int32_t> lsh_buckets(const RowMatrix& x, const RowMatrix& rotation) {
  if (x.cols() != rotation.rows() || rotation.cols() < 1) {
    throw ShapeError("LSH hash: vectors of dimension " + std::to_string(x.cols()) + " do not fit a rotation [" +
                     std::to_string(rotation.rows()) + ", " + std::to_string(rotation.cols()) + "]");
  }
  std::vector<std::int32_t> buckets(static_cast<std::size_t>(x.rows()));
  hash_rows(x, rotation, buckets.data());
  return buckets;
}

std::vector<std::int32_t> lsh_sort_order(const std::vector<std::int32_t>& buckets, std::int64_t n_buckets) {
  for (std::int32_t b : buckets) {
    if (b < 0 || b >= n_buckets) {
      throw ParamError("LSH sort: bucket " + std::to_string(b) + " outside [0, " + std::to_string(n_buckets) + ")");
    }
  }
  std::vector<std::int32_t> order(buckets.size());
  counting_sort(buckets.data(), static_cast<std::int64_t>(buckets.size()), n_buckets, order.data(), nullptr);
  return order;
}

std::vector<std::int32_t> inverse_permutation(const std::vector<std::int32_t>& order) {
  std::vector<std::int32_t> inverse(order.size());
  for (std::size_t s = 0; s < order.size(); ++s) inverse[static_cast<std::size_t>(order[s])] = static_cast<std::int32_t>(s);
  return inverse;
}

Tensor lsh_rotations(std::uint64_t seed, std::int64_t heads, std::int64_t n_hashes, std::int64_t dim,
                     std::int64_t n_buckets) {
  Tensor rotations = Tensor::uninitialized({heads, n_hashes, dim, n_buckets / 2});
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t r = 0; r < n_hashes; ++r) {
      Rng rng(Rng::derive(seed, "reformer_lsh/h" + std::to_string(h) + "/r" + std::to_string(r)));
      auto rotation = rotations.matrix(h * n_hashes + r);
      for (std::int64_t i = 0; i < rotation.rows(); ++i)
        for (std::int64_t j = 0; j < rotation.cols(); ++j) rotation(i, j) = static_cast<float>(rng.normal());
    }
  }
  return rotations;
}

// ---- the kernel -------------------------------------------------------------------------------

namespace {

// One head's hashes for every round: [R, L] each. With shared QK the key arrays alias the query ones.
struct HeadHashes {
  IndexArray query_buckets, key_buckets, query_order, key_order, query_rank, key_rank;
  IndexArray query_chunk, key_chunk;  // token -> chunk, only with dedup (every pair looks them up)
};

struct AttendSettings {
  const LshGeometry* geometry = nullptr;
  bool shared_qk = true;
  bool causal = false;
  bool dedup = false;
  float scale = 1.0f;
  const std::vector<std::uint8_t>* padding = nullptr;
  std::vector<float> log_count;  // log(n) for n = 1..R (dedup)
};

// What one head's rounds read: q and v of the head, the keys (k, or q with unit-length rows).
struct HeadInputs {
  ConstUnalignedMatrixMap q;
  ConstUnalignedMatrixMap k;      // hashed and scored as keys when !shared_qk
  ConstUnalignedMatrixMap v;
  const float* key_inv_norm;      // [L] 1/|q_j| for shared QK: k̂_j = q_j · key_inv_norm[j]
};

// Where one round's results go. acc/run_max/run_sum fold the rounds together per token:
// run_max = the largest lse so far, run_sum = Σ exp(lse_r − run_max), acc = Σ o_r·exp(lse_r − run_max).
struct RoundSinks {
  float* acc = nullptr;        // [L, dv], token rows
  float* run_max = nullptr;    // [L]
  float* run_sum = nullptr;    // [L]
  float* round_lse = nullptr;  // [L] this round's lse per token; trace only
  float* weights = nullptr;    // [L, W] this round's weights per sorted query; trace only
  std::int64_t weights_stride = 0;
};

struct ChunkScratch {
  RowMatrix queries, keys, values, logits, out;
  std::vector<std::int32_t> key_tokens;
  std::vector<std::uint8_t> hidden;
  std::vector<float> lse;
  ChunkScratch(std::int64_t chunk, std::int64_t window, std::int64_t d, std::int64_t dv)
      : queries(chunk, d), keys(window, d), values(window, dv), logits(chunk, window), out(chunk, dv),
        key_tokens(static_cast<std::size_t>(window)), hidden(static_cast<std::size_t>(window)),
        lse(static_cast<std::size_t>(chunk)) {}
};

void hash_round(const AttendSettings& s, const HeadInputs& in, const Eigen::Ref<const RowMatrix>& rotation,
                std::int64_t round, HeadHashes& hh) {
  const LshGeometry& g = *s.geometry;
  const std::int64_t L = g.length, off = round * L;
  hash_rows(in.q, rotation, hh.query_buckets.data() + off);
  counting_sort(hh.query_buckets.data() + off, L, g.n_buckets, hh.query_order.data() + off, hh.query_rank.data() + off);
  if (!s.shared_qk) {
    hash_rows(in.k, rotation, hh.key_buckets.data() + off);
    counting_sort(hh.key_buckets.data() + off, L, g.n_buckets, hh.key_order.data() + off, hh.key_rank.data() + off);
  }
  if (s.dedup) {
    for (std::int64_t i = 0; i < L; ++i) {
      hh.query_chunk[static_cast<std::size_t>(off + i)] = static_cast<std::int32_t>(hh.query_rank[static_cast<std::size_t>(off + i)] / g.chunk_size);
      if (!s.shared_qk)
        hh.key_chunk[static_cast<std::size_t>(off + i)] = static_cast<std::int32_t>(hh.key_rank[static_cast<std::size_t>(off + i)] / g.chunk_size);
    }
  }
}

// Rounds in which key j lies in query i's window.
std::int64_t cooccurrences(const LshGeometry& g, const std::int32_t* query_chunk, const std::int32_t* key_chunk,
                           std::int64_t i, std::int64_t j) {
  std::int64_t count = 0;
  for (std::int64_t r = 0; r < g.n_hashes; ++r) count += g.sees(query_chunk[r * g.length + i], key_chunk[r * g.length + j]);
  return count;
}

// Attends chunk `chunk` of round `round`: gathers its queries and window keys, masks, softmax,
// writes the round's output into the sinks.
void attend_chunk(const AttendSettings& s, const HeadInputs& in, const HeadHashes& hh, std::int64_t round,
                  std::int64_t chunk, ChunkScratch& scratch, const RoundSinks& sink) {
  const LshGeometry& g = *s.geometry;
  const std::int64_t L = g.length, dv = in.v.cols();
  const std::int32_t* q_order = hh.query_order.data() + round * L;
  const IndexArray& key_order_all = s.shared_qk ? hh.query_order : hh.key_order;
  const std::int32_t* k_order = key_order_all.data() + round * L;
  const std::int32_t* q_chunk_all = hh.query_chunk.data();
  const std::int32_t* k_chunk_all = s.shared_qk ? hh.query_chunk.data() : hh.key_chunk.data();

  const std::int64_t q0 = g.chunk_begin(chunk), rows = g.chunk_end(chunk) - q0;
  for (std::int64_t a = 0; a < rows; ++a) scratch.queries.row(a) = in.q.row(q_order[q0 + a]);

  // The window's keys in sorted order: chunks window_first_chunk .. chunk, wrapping past the end.
  std::int64_t cols = 0;
  for (std::int64_t c : g.window_chunks(chunk)) {
    for (std::int64_t p = g.chunk_begin(c); p < g.chunk_end(c); ++p, ++cols) {
      const std::int32_t j = k_order[p];
      scratch.key_tokens[static_cast<std::size_t>(cols)] = j;
      if (s.shared_qk) scratch.keys.row(cols) = in.q.row(j) * in.key_inv_norm[j];
      else scratch.keys.row(cols) = in.k.row(j);
      scratch.values.row(cols) = in.v.row(j);
    }
  }
  auto logits = scratch.logits.topLeftCorner(rows, cols);
  logits.noalias() = (scratch.queries.topRows(rows) * scratch.keys.topRows(cols).transpose()) * s.scale;

  std::vector<float>& lse = scratch.lse;
  for (std::int64_t a = 0; a < rows; ++a) {
    const std::int32_t i = q_order[q0 + a];
    auto row = logits.row(a);
    float row_max = kNegInf;
    for (std::int64_t t = 0; t < cols; ++t) {
      const std::int32_t j = scratch.key_tokens[static_cast<std::size_t>(t)];
      const bool hidden = (s.causal && j > i) || (s.padding && (*s.padding)[static_cast<std::size_t>(j)]);
      scratch.hidden[static_cast<std::size_t>(t)] = hidden;
      if (hidden) {
        row(t) = kNegInf;
        continue;
      }
      if (s.shared_qk && j == i) row(t) = ReformerLshExtras::kSelfScore;
      if (s.dedup) row(t) -= s.log_count[static_cast<std::size_t>(cooccurrences(g, q_chunk_all, k_chunk_all, i, j) - 1)];
      row_max = std::max(row_max, row(t));
    }
    if (row_max == kNegInf) {  // this round shows the query no key at all
      row.setZero();
      lse[static_cast<std::size_t>(a)] = kNegInf;
      continue;
    }
    row = (row.array() - row_max).exp().matrix();
    // Exact zeros for hidden keys, by structure (a vectorised exp may not give 0 for -inf).
    for (std::int64_t t = 0; t < cols; ++t)
      if (scratch.hidden[static_cast<std::size_t>(t)]) row(t) = 0.0f;
    const float sum = row.sum();
    row /= sum;
    lse[static_cast<std::size_t>(a)] = row_max + std::log(sum);
  }
  auto out = scratch.out.topRows(rows);
  out.noalias() = logits * scratch.values.topRows(cols);

  for (std::int64_t a = 0; a < rows; ++a) {
    const std::int32_t i = q_order[q0 + a];
    const float l = lse[static_cast<std::size_t>(a)];
    if (sink.round_lse) sink.round_lse[i] = l;
    if (sink.weights) {
      float* dst = sink.weights + (q0 + a) * sink.weights_stride;
      for (std::int64_t t = 0; t < cols; ++t) dst[t] = logits(a, t);
      for (std::int64_t t = cols; t < sink.weights_stride; ++t) dst[t] = 0.0f;
    }
    if (l == kNegInf) continue;
    Eigen::Map<RowVector> acc(sink.acc + static_cast<std::int64_t>(i) * dv, dv);
    float& m = sink.run_max[i];
    float& z = sink.run_sum[i];
    if (m == kNegInf) {
      m = l;
      z = 1.0f;
      acc = out.row(a);
    } else {
      const float m_new = std::max(m, l);
      const float keep = std::exp(m - m_new), add = std::exp(l - m_new);
      acc = acc * keep + out.row(a) * add;
      z = z * keep + add;
      m = m_new;
    }
  }
}

// out_i = acc_i / run_sum_i (0 for a query that saw no key in any round).
void finish_rows(std::int64_t begin, std::int64_t end, std::int64_t dv, float* acc, const float* run_sum) {
  for (std::int64_t i = begin; i < end; ++i) {
    Eigen::Map<RowVector> row(acc + i * dv, dv);
    if (run_sum[i] > 0.0f) row /= run_sum[i];
    else row.setZero();
  }
}

HeadHashes make_head_hashes(const AttendSettings& s, std::int64_t L) {
  const auto n = static_cast<std::size_t>(s.geometry->n_hashes * L);
  HeadHashes hh;
  hh.query_buckets = IndexArray(n);
  hh.query_order = IndexArray(n);
  hh.query_rank = IndexArray(n);
  if (!s.shared_qk) {
    hh.key_buckets = IndexArray(n);
    hh.key_order = IndexArray(n);
    hh.key_rank = IndexArray(n);
  }
  if (s.dedup) {
    hh.query_chunk = IndexArray(n);
    if (!s.shared_qk) hh.key_chunk = IndexArray(n);
  }
  return hh;
}

// 1/|q_j| per token (0 for a zero query), for the unit-length keys of shared QK.
void inverse_norms(const ConstUnalignedMatrixMap& q, float* out) {
  for (std::int64_t j = 0; j < q.rows(); ++j) {
    const float norm = q.row(j).norm();
    out[j] = norm < kTinyNorm ? 0.0f : 1.0f / norm;
  }
}

class ReformerLshAttention final : public Attention {
 public:
  ReformerLshAttention() {
    spec_.name = "reformer_lsh";
    spec_.title = "Reformer LSH attention";
    spec_.paper = "Kitaev, Kaiser, Levskaya 2020, Reformer: The Efficient Transformer (arXiv:2001.04451)";
    spec_.summary =
        "Hashes queries by random rotations, sorts them by bucket and attends only within chunks of the sorted "
        "order; several hash rounds are combined.";
    spec_.params = {
        ParamSpec::integer("n_hashes", "Hash rounds", 2, 1, 16,
                           "Independent hash rounds, each with its own random rotation; more rounds miss fewer "
                           "similar keys and cost proportionally more."),
        ParamSpec::integer("bucket_size", "Chunk size", 64, 1, 1024,
                           "Tokens per chunk of the bucket-sorted sequence; a chunk attends to itself and the "
                           "chunks before it. A chunk size of at least the length gives exact attention."),
        ParamSpec::integer("n_buckets", "Buckets per round", 0, 0, 4096,
                           "Hash buckets per round: 0 = auto, 2·max(1, L / bucket_size); otherwise even."),
        ParamSpec::integer("chunks_before", "Chunks looked back", 1, 0, 8,
                           "Previous chunks of the sorted order each chunk also attends to (wrapping around "
                           "from the first chunk to the last, as in trax)."),
        ParamSpec::boolean("shared_qk", "Shared queries and keys", true,
                           "Keys are the queries scaled to unit length (Reformer); a token then attends to "
                           "itself only when it sees nothing else. Off: the given keys, hashed like the queries."),
        ParamSpec::boolean("dedup", "De-duplicate rounds", false,
                           "Subtract the log of the number of rounds in which a pair meets, so a key found by "
                           "several rounds is not counted several times."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    if (in.q.dim(1) != in.k.dim(1)) {
      throw ShapeError("reformer_lsh is self-attention and needs as many queries as keys; got q " +
                       in.q.shape_string() + ", k " + in.k.shape_string());
    }
    const LshGeometry g = resolve_lsh_geometry(*in.params, in.q.dim(1));
    const Tensor rotations = lsh_rotations(in.seed, in.q.dim(0), g.n_hashes, in.q.dim(2), g.n_buckets);
    return reformer_lsh_forward(in, rotations, trace);
  }

  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override;

 private:
  VariantSpec spec_;
};

AttendSettings make_settings(const AttentionInput& in, const LshGeometry& g) {
  AttendSettings s;
  s.geometry = &g;
  s.shared_qk = in.params->get_bool("shared_qk");
  s.dedup = in.params->get_bool("dedup");
  s.causal = in.causal;
  s.scale = 1.0f / std::sqrt(static_cast<float>(in.q.dim(2)));
  s.padding = in.key_padding;
  for (std::int64_t n = 1; n <= g.n_hashes; ++n) s.log_count.push_back(std::log(static_cast<float>(n)));
  return s;
}

HeadInputs head_inputs(const AttentionInput& in, std::int64_t h, const float* inv_norm) {
  return HeadInputs{in.q.matrix(h), in.k.matrix(h), in.v.matrix(h), inv_norm};
}

// ---- fast path: chunks in parallel, no L × L ------------------------------------------------

Tensor forward_fast(const AttentionInput& in, const Tensor& rotations, const LshGeometry& g) {
  const AttendSettings s = make_settings(in, g);
  const std::int64_t H = in.q.dim(0), L = g.length, d = in.q.dim(2), dv = in.v.dim(2);
  Tensor out = Tensor::uninitialized({H, L, dv});  // every row is written by finish_rows
  Tensor inv_norm = Tensor::uninitialized({L});
  Tensor running = Tensor::uninitialized({2, L});  // run_max, run_sum
  HeadHashes hh = make_head_hashes(s, L);
  const std::int64_t window = g.max_window_length();
  bool cancelled = false;
#pragma omp parallel
  {
    ChunkScratch scratch(std::min(g.chunk_size, L), window, d, dv);
    for (std::int64_t h = 0; h < H; ++h) {
      const HeadInputs head = head_inputs(in, h, inv_norm.data());
      float* acc = out.data() + h * L * dv;
      float* run_max = running.data();
      float* run_sum = running.data() + L;
#pragma omp for schedule(static)
      for (std::int64_t i = 0; i < L; ++i) {
        run_max[i] = kNegInf;
        run_sum[i] = 0.0f;
        Eigen::Map<RowVector>(acc + i * dv, dv).setZero();
      }
#pragma omp single
      if (s.shared_qk) inverse_norms(head.q, inv_norm.data());
#pragma omp for schedule(dynamic)
      for (std::int64_t r = 0; r < g.n_hashes; ++r) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        hash_round(s, head, rotations.matrix(h * g.n_hashes + r), r, hh);
      }
      // Rounds one after the other (each token's running sum is updated once per round); the
      // chunks of a round hold disjoint queries, so they run in parallel without races.
      for (std::int64_t r = 0; r < g.n_hashes; ++r) {
        const RoundSinks sink{acc, run_max, run_sum, nullptr, nullptr, 0};
#pragma omp for schedule(dynamic)
        for (std::int64_t c = 0; c < g.n_chunks; ++c) {
          if (cancelled || (in.cancel && in.cancel->cancelled())) {
            cancelled = true;
            continue;
          }
          attend_chunk(s, head, hh, r, c, scratch, sink);
        }
      }
#pragma omp for schedule(static)
      for (std::int64_t i = 0; i < L; ++i) finish_rows(i, i + 1, dv, acc, run_sum);
    }
  }
  if (cancelled) throw CancelledError();
  return out;
}

// ---- traced path: heads in parallel, everything the view shows -----------------------------

std::shared_ptr<ReformerLshExtras> make_extras(const AttentionInput& in, const Tensor& rotations, const LshGeometry& g,
                                               const AttendSettings& s) {
  auto x = std::make_shared<ReformerLshExtras>();
  const std::int64_t H = in.q.dim(0), L = g.length, R = g.n_hashes;
  const auto n = static_cast<std::size_t>(H * R * L);
  x->geometry = g;
  x->heads = H;
  x->head_dim = in.q.dim(2);
  x->shared_qk = s.shared_qk;
  x->dedup = s.dedup;
  x->causal = s.causal;
  x->scale = s.scale;
  x->rotations = rotations;
  x->query_buckets = IndexArray(n);
  x->query_order = IndexArray(n);
  x->query_rank = IndexArray(n);
  x->key_buckets = IndexArray(n);
  x->key_order = IndexArray(n);
  x->key_rank = IndexArray(n);
  x->round_logsumexp = Tensor::uninitialized({H, R, L});
  x->round_share = Tensor::uninitialized({H, R, L});
  x->round_weights = Tensor::uninitialized({H, R, L, g.max_window_length()});
  x->cooccurrence = Tensor({H, L, L});
  x->angle_points_per_round = s.shared_qk ? L : 2 * L;
  x->angle_points = Tensor::uninitialized({H, R, x->angle_points_per_round, 2});
  x->angle_anchors = Tensor::uninitialized({H, R, g.n_buckets, 2});
  x->angle_explained = Tensor::uninitialized({H, R, 2});
  x->recall_k = std::min<std::int64_t>(L, ReformerLshExtras::kMaxRecallK);
  x->recall = Tensor::uninitialized({H, L, x->recall_k});
  x->mean_recall = Tensor::uninitialized({H, x->recall_k});
  return x;
}

void copy_head_slice(const IndexArray& from, IndexArray& to, std::int64_t h, std::size_t per_head) {
  std::copy(from.data(), from.data() + per_head, to.data() + static_cast<std::size_t>(h) * per_head);
}

// Everything of one head in trace mode; `weights` is the head's [L, L] slice (zero on entry).
void trace_head(const AttentionInput& in, const AttendSettings& s, std::int64_t h, ReformerLshExtras& x,
                float* out_head, float* weights, Tensor& inv_norm_scratch, Tensor& running_scratch,
                Tensor& scores_scratch) {
  const LshGeometry& g = *s.geometry;
  const std::int64_t L = g.length, R = g.n_hashes, d = in.q.dim(2), dv = in.v.dim(2);
  const HeadInputs head = head_inputs(in, h, inv_norm_scratch.data());
  if (s.shared_qk) inverse_norms(head.q, inv_norm_scratch.data());
  HeadHashes hh = make_head_hashes(s, L);
  for (std::int64_t r = 0; r < R; ++r) hash_round(s, head, x.rotations.matrix(h * R + r), r, hh);

  float* run_max = running_scratch.data();
  float* run_sum = running_scratch.data() + L;
  std::fill(run_max, run_max + L, kNegInf);
  std::fill(run_sum, run_sum + L, 0.0f);
  std::fill(out_head, out_head + L * dv, 0.0f);
  const std::int64_t W = x.round_weights.dim(3);
  ChunkScratch scratch(std::min(g.chunk_size, L), W, d, dv);
  for (std::int64_t r = 0; r < R; ++r) {
    check_cancelled(in.cancel);  // called outside OpenMP regions only (see trace driver)
    const RoundSinks sink{out_head, run_max, run_sum, x.round_logsumexp.data() + (h * R + r) * L,
                          x.round_weights.data() + (h * R + r) * L * W, W};
    for (std::int64_t c = 0; c < g.n_chunks; ++c) attend_chunk(s, head, hh, r, c, scratch, sink);
  }
  finish_rows(0, L, dv, out_head, run_sum);

  // Each round's share of a query's output, and the combined matrix in token order.
  const std::size_t per_head = static_cast<std::size_t>(R * L);
  copy_head_slice(hh.query_buckets, x.query_buckets, h, per_head);
  copy_head_slice(hh.query_order, x.query_order, h, per_head);
  copy_head_slice(hh.query_rank, x.query_rank, h, per_head);
  // With shared QK the keys are the queries: the key arrays repeat the query ones.
  copy_head_slice(s.shared_qk ? hh.query_buckets : hh.key_buckets, x.key_buckets, h, per_head);
  copy_head_slice(s.shared_qk ? hh.query_order : hh.key_order, x.key_order, h, per_head);
  copy_head_slice(s.shared_qk ? hh.query_rank : hh.key_rank, x.key_rank, h, per_head);
  float* cooc = x.cooccurrence.data() + h * L * L;
  for (std::int64_t r = 0; r < R; ++r) {
    const float* lse = x.round_logsumexp.data() + (h * R + r) * L;
    float* share = x.round_share.data() + (h * R + r) * L;
    // exp(lse_r − run_max) / run_sum rather than exp(lse_r − log-sum-exp): a query that sees only
    // itself has lse ≈ −5·10⁴, where a float's spacing (0.004) would blur the sum of the two.
    for (std::int64_t i = 0; i < L; ++i)
      share[i] = (lse[i] == kNegInf || run_sum[i] <= 0.0f) ? 0.0f : std::exp(lse[i] - run_max[i]) / run_sum[i];
    const float* round_weights = x.round_weights.data() + (h * R + r) * L * W;
    const std::int32_t* q_order = x.query_order.data() + (h * R + r) * L;
    for (std::int64_t c = 0; c < g.n_chunks; ++c) {
      const std::vector<std::int32_t> keys = x.window_keys(h, r, c);
      for (std::int64_t sp = g.chunk_begin(c); sp < g.chunk_end(c); ++sp) {
        const std::int32_t i = q_order[sp];
        const float* p = round_weights + sp * W;
        for (std::size_t t = 0; t < keys.size(); ++t) {
          weights[i * L + keys[t]] += share[i] * p[t];
          cooc[i * L + keys[t]] += 1.0f;
        }
      }
    }
  }

  // Recall of the exact top-k: the same scores over every allowed key.
  auto scores = scores_scratch.matrix();
  const RowMatrix scaled_queries = head.q * s.scale;
  if (s.shared_qk) {
    const RowMatrix unit_keys = Eigen::Map<const Eigen::VectorXf>(inv_norm_scratch.data(), L).asDiagonal() * head.q;
    scores.noalias() = scaled_queries * unit_keys.transpose();
  } else {
    scores.noalias() = scaled_queries * head.k.transpose();
  }
  for (std::int64_t i = 0; i < L; ++i) {
    if (s.shared_qk) scores(i, i) = ReformerLshExtras::kSelfScore;
    if (s.causal && i + 1 < L) scores.row(i).tail(L - i - 1).setConstant(kNegInf);
  }
  if (s.padding) {
    for (std::int64_t j = 0; j < L; ++j)
      if ((*s.padding)[static_cast<std::size_t>(j)]) scores.col(j).setConstant(kNegInf);
  }
  lsh_recall(scores, x.cooccurrence.matrix(h), x.recall_k, x.recall.matrix(h), x.mean_recall.data() + h * x.recall_k);

  // Angle view per round: the hashed vectors (queries, then keys without shared QK).
  RowMatrix hashed(x.angle_points_per_round, d);
  hashed.topRows(L) = head.q;
  if (!s.shared_qk) hashed.bottomRows(L) = head.k;
  for (std::int64_t r = 0; r < R; ++r) {
    const LshAngleView view = lsh_angle_view(hashed, x.rotations.matrix(h * R + r));
    x.angle_points.matrix(h * R + r) = view.points;
    x.angle_anchors.matrix(h * R + r) = view.anchors;
    float* explained = x.angle_explained.data() + (h * R + r) * 2;
    explained[0] = view.explained[0];
    explained[1] = view.explained[1];
    if (h == 0 && r == 0) {
      x.angle_method = view.method;
      x.sector_boundaries = view.sector_boundaries;
    }
  }
}

Tensor forward_traced(const AttentionInput& in, const Tensor& rotations, const LshGeometry& g, Trace& trace) {
  const AttendSettings s = make_settings(in, g);
  const std::int64_t H = in.q.dim(0), L = g.length, dv = in.v.dim(2);
  auto extras = make_extras(in, rotations, g, s);
  Tensor out = Tensor::uninitialized({H, L, dv});
  Tensor weights({H, L, L});
  // No exception may leave an OpenMP region: the first one is kept and thrown after it.
  std::exception_ptr failure;
  bool failed = false;
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t h = 0; h < H; ++h) {
    if (failed) continue;
    try {
      Tensor inv_norm = Tensor::uninitialized({L});
      Tensor running = Tensor::uninitialized({2, L});
      Tensor scores = Tensor::uninitialized({L, L});
      trace_head(in, s, h, *extras, out.data() + h * L * dv, weights.data() + h * L * L, inv_norm, running, scores);
    } catch (...) {
#pragma omp critical(reformer_lsh_failure)
      {
        if (!failure) failure = std::current_exception();
        failed = true;
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
  trace.weights = std::move(weights);
  trace.extras = std::move(extras);
  return out;
}

}  // namespace

Tensor reformer_lsh_forward(const AttentionInput& in, const Tensor& rotations, Trace* trace) {
  if (!in.params) throw ParamError("reformer_lsh_forward needs parameters (use run_attention for defaults)");
  if (in.q.dim(1) != in.k.dim(1)) {
    throw ShapeError("reformer_lsh is self-attention and needs as many queries as keys; got q " + in.q.shape_string() +
                     ", k " + in.k.shape_string());
  }
  const LshGeometry g = resolve_lsh_geometry(*in.params, in.q.dim(1));
  const Shape expected = {in.q.dim(0), g.n_hashes, in.q.dim(2), g.n_buckets / 2};
  if (rotations.shape() != expected) {
    throw ShapeError("reformer_lsh rotations must have shape " + shape_to_string(expected) + " [heads, n_hashes, d, "
                     "n_buckets/2], got " + rotations.shape_string());
  }
  if (trace) return forward_traced(in, rotations, g, *trace);
  return forward_fast(in, rotations, g);
}

// ---- cost model -------------------------------------------------------------------------------

// Both paths: the rotations [H, R, d, n_b/2]. Fast path: the output, 1/|q| [L], the running
// maximum and sum [2, L], and one head's hashes (int32 [R, L] each: buckets, orders, ranks — for
// queries, and keys too without shared QK — plus chunk numbers with dedup). Traced: the extras
// (a copy of the rotations; six hash arrays [H, R, L]; per round lse and share [H, R, L], weights
// [H, R, L, W]; co-occurrence [H, L, L]; angle points, anchors and explained variance; recall
// [H, L, K] and its mean [H, K]), the output, the weights [H, L, L], and per head running at once
// (heads in parallel) 1/|q|, the running sums, the exact scores [L, L] and the head's hashes.
std::int64_t ReformerLshAttention::workspace_bytes(const AttentionShape& s, const Params& params) const {
  if (s.lq != s.lk) throw ShapeError("reformer_lsh is self-attention and needs as many queries as keys");
  const LshGeometry g = resolve_lsh_geometry(params, s.lq);
  const bool shared = params.get_bool("shared_qk"), dedup = params.get_bool("dedup");
  const std::int64_t H = s.heads, L = g.length, R = g.n_hashes;
  const std::int64_t rotations = float_bytes(H * R * s.d * (g.n_buckets / 2));
  const std::int64_t hash_arrays = (shared ? 3 : 6) + (dedup ? (shared ? 1 : 2) : 0);
  const std::int64_t head_hashes = hash_arrays * R * L * static_cast<std::int64_t>(sizeof(std::int32_t));
  const std::int64_t out = float_bytes(H * L * s.dv);
  if (!s.trace) return rotations + out + float_bytes(3 * L) + head_hashes;
  const std::int64_t K = std::min<std::int64_t>(L, ReformerLshExtras::kMaxRecallK);
  const std::int64_t points = shared ? L : 2 * L;
  const std::int64_t extras = rotations + 6 * H * R * L * static_cast<std::int64_t>(sizeof(std::int32_t)) +
                              float_bytes(2 * H * R * L + H * R * L * g.max_window_length() + H * L * L +
                                          H * R * (points + g.n_buckets + 1) * 2 + H * L * K + H * K);
  const std::int64_t parallel_heads = std::min<std::int64_t>(H, std::max(1, omp_get_max_threads()));
  const std::int64_t per_head = float_bytes(3 * L + L * L) + head_hashes;
  return rotations + extras + out + float_bytes(H * L * L) + parallel_heads * per_head;
}

// ---- extras -----------------------------------------------------------------------------------

std::vector<std::int32_t> ReformerLshExtras::window_keys(std::int64_t head, std::int64_t round, std::int64_t chunk) const {
  std::vector<std::int32_t> keys;
  const std::int32_t* order = key_order.data() + index(head, round, 0);
  for (std::int64_t c : geometry.window_chunks(chunk))
    for (std::int64_t p = geometry.chunk_begin(c); p < geometry.chunk_end(c); ++p) keys.push_back(order[p]);
  return keys;
}

RowMatrix ReformerLshExtras::round_matrix(std::int64_t head, std::int64_t round) const {
  const std::int64_t L = geometry.length, W = round_weights.dim(3);
  RowMatrix m = RowMatrix::Zero(L, L);
  const float* weights = round_weights.data() + (head * geometry.n_hashes + round) * L * W;
  const std::int32_t* order = query_order.data() + index(head, round, 0);
  for (std::int64_t c = 0; c < geometry.n_chunks; ++c) {
    const std::vector<std::int32_t> keys = window_keys(head, round, c);
    for (std::int64_t s = geometry.chunk_begin(c); s < geometry.chunk_end(c); ++s)
      for (std::size_t t = 0; t < keys.size(); ++t) m(order[s], keys[t]) = weights[s * W + static_cast<std::int64_t>(t)];
  }
  return m;
}

namespace {

nlohmann::json number(float x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

// rows x cols floats at `p` as nested arrays.
nlohmann::json float_rows(const float* p, std::int64_t rows, std::int64_t cols) {
  nlohmann::json out = nlohmann::json::array();
  for (std::int64_t i = 0; i < rows; ++i) {
    nlohmann::json row = nlohmann::json::array();
    for (std::int64_t j = 0; j < cols; ++j) row.push_back(number(p[i * cols + j]));
    out.push_back(std::move(row));
  }
  return out;
}

nlohmann::json int_rows(const std::int32_t* p, std::int64_t rows, std::int64_t cols) {
  nlohmann::json out = nlohmann::json::array();
  for (std::int64_t i = 0; i < rows; ++i) out.push_back(std::vector<std::int32_t>(p + i * cols, p + (i + 1) * cols));
  return out;
}

}  // namespace

nlohmann::json ReformerLshExtras::head_to_json(std::int64_t head) const {
  const std::int64_t L = geometry.length, R = geometry.n_hashes, m = geometry.n_buckets / 2;
  nlohmann::json j;
  j["head"] = head;
  nlohmann::json rots = nlohmann::json::array();
  for (std::int64_t r = 0; r < R; ++r) rots.push_back(float_rows(rotations.data() + (head * R + r) * head_dim * m, head_dim, m));
  j["rotations"] = std::move(rots);  // [R][d][n_b/2]
  const std::size_t at = index(head, 0, 0);
  j["query_buckets"] = int_rows(query_buckets.data() + at, R, L);
  j["query_order"] = int_rows(query_order.data() + at, R, L);
  j["query_sorted_position"] = int_rows(query_rank.data() + at, R, L);
  nlohmann::json chunks = nlohmann::json::array();
  for (std::int64_t r = 0; r < R; ++r) {
    std::vector<std::int64_t> row;
    for (std::int64_t i = 0; i < L; ++i) row.push_back(query_chunk(head, r, i));
    chunks.push_back(row);
  }
  j["query_chunk"] = std::move(chunks);
  if (!shared_qk) {
    j["key_buckets"] = int_rows(key_buckets.data() + at, R, L);
    j["key_order"] = int_rows(key_order.data() + at, R, L);
    j["key_sorted_position"] = int_rows(key_rank.data() + at, R, L);
  }
  j["round_logsumexp"] = float_rows(round_logsumexp.data() + head * R * L, R, L);
  j["round_share"] = float_rows(round_share.data() + head * R * L, R, L);
  j["cooccurrence"] = float_rows(cooccurrence.data() + head * L * L, L, L);
  const std::int64_t P = angle_points_per_round;
  nlohmann::json points = nlohmann::json::array(), anchors = nlohmann::json::array(), explained = nlohmann::json::array();
  for (std::int64_t r = 0; r < R; ++r) {
    points.push_back(float_rows(angle_points.data() + (head * R + r) * P * 2, P, 2));
    anchors.push_back(float_rows(angle_anchors.data() + (head * R + r) * geometry.n_buckets * 2, geometry.n_buckets, 2));
    explained.push_back(float_rows(angle_explained.data() + (head * R + r) * 2, 1, 2)[0]);
  }
  j["angle_points"] = std::move(points);
  j["angle_anchors"] = std::move(anchors);
  j["angle_explained"] = std::move(explained);
  j["recall"] = float_rows(recall.data() + head * L * recall_k, L, recall_k);
  j["mean_recall"] = float_rows(mean_recall.data() + head * recall_k, 1, recall_k)[0];
  return j;
}

nlohmann::json ReformerLshExtras::to_json() const {
  nlohmann::json j = settings_json();
  nlohmann::json all = nlohmann::json::array();
  for (std::int64_t h = 0; h < heads; ++h) all.push_back(head_to_json(h));
  j["heads"] = std::move(all);
  return j;
}

nlohmann::json ReformerLshExtras::settings_json() const {
  nlohmann::json j;
  j["kind"] = "reformer_lsh";
  j["length"] = geometry.length;
  j["n_hashes"] = geometry.n_hashes;
  j["n_buckets"] = geometry.n_buckets;
  j["chunk_size"] = geometry.chunk_size;
  j["n_chunks"] = geometry.n_chunks;
  j["chunks_before"] = geometry.chunks_before;
  std::vector<std::int64_t> starts;
  for (std::int64_t c = 0; c <= geometry.n_chunks; ++c) starts.push_back(std::min(geometry.length, c * geometry.chunk_size));
  j["chunk_starts"] = starts;
  j["window_wraps"] = true;
  j["shared_qk"] = shared_qk;
  j["dedup"] = dedup;
  j["causal"] = causal;
  j["scale"] = scale;
  j["self_score"] = shared_qk ? nlohmann::json(kSelfScore) : nlohmann::json(nullptr);
  j["angle_method"] = lsh_angle_method_name(angle_method);
  j["angle_points_per_round"] = angle_points_per_round;
  j["sector_boundaries"] = sector_boundaries;
  j["recall_k"] = recall_k;
  return j;
}

std::unique_ptr<Attention> make_reformer_lsh_attention() { return std::make_unique<ReformerLshAttention>(); }

}  // namespace attnlab
