// BigBird block-sparse attention (Zaheer et al. 2020, ITC variant), registered as "bigbird".
//
//   q: [H, L, d]  k: [H, L, d]  v: [H, L, dv]  ->  out: [H, L, dv]     (self-attention: Lq = Lk = L)
//   weights (trace only): [H, L, L],  A = softmax(q kᵀ / sqrt(d) + M)
//   M_ij = 0 where the block pair (block(i), block(j)) is in the pattern, key j is not padded and
//          (causal) j <= i; M_ij = -inf elsewhere.
//
// The pattern, on blocks of b tokens (nb = ceil(L / b), the last block partial when b does not
// divide L), for each head:
//   global:  the first and the last g blocks; a global block row attends every block and every
//            row attends the global blocks;
//   window:  block i attends blocks i - w/2 .. i + w/2 (w odd; clipped at the ends, no wrap);
//   random:  each non-global block row attends r further blocks, drawn per head and per row from
//            the seed, distinct, and avoiding its window and the global blocks; a row with fewer
//            than r candidates takes all of them.
// An interior row (window clear of the global blocks, enough candidates) thus sees exactly
// (w + 2g + r)·b keys. There is no fallback to dense attention for short inputs (the HF model
// switches to full attention when L <= (5 + 2r)·b): with few blocks the pattern simply becomes
// denser, and a window covering every block gives exact softmax attention.
//
// Causal: key blocks after the query block are dropped from the pattern (random blocks are then
// drawn among earlier blocks only: a later one would be masked out entirely), and inside the
// diagonal block keys j > i are masked per token. The pattern depends only on positions and the
// seed, never on token values, so changing token j leaves the outputs before j bit-identical.
//
// Reference: google-research/bigbird core/attention.py (bigbird_block_rand_mask,
// full_bigbird_mask) and HF modeling_big_bird. Where they differ we follow the paper's ITC
// pattern with g global blocks at each end (the code fixes g = 1 and w = 3), and random blocks
// are drawn for every non-global row (the reference also gives the second and second-to-last
// rows random blocks, drawn from a smaller range).
//
// Fast path (no trace): for each head and query block, the logits of its rows against its
// visible key blocks only, O(L·(w + 2g + r)·b·d) time, plus O(g·b·L·d) for the global rows, in
// chunks of at most 512 keys joined by an online softmax; the scratch is one [b, 512] logits
// matrix per thread, independent of L. The traced path builds the dense [L, L] matrix with exact
// zeros outside the mask, plus the block-type grid, per-query key counts and the receptive field
// of the pattern after 1..4 layers.
#include "attention/bigbird.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "attention/variants.h"
#include "core/error.h"
#include "core/rng.h"

namespace attnlab {

std::string_view bigbird_block_name(BigBirdBlock type) {
  switch (type) {
    case BigBirdBlock::None: return "none";
    case BigBirdBlock::Window: return "window";
    case BigBirdBlock::Global: return "global";
    case BigBirdBlock::Random: return "random";
  }
  return "none";
}

std::int64_t bigbird_auto_block_size(std::int64_t length) {
  constexpr std::int64_t kMaxAutoBlock = 64;
  constexpr std::int64_t kTargetBlocks = 16;
  const std::int64_t limit = std::max<std::int64_t>(1, length / kTargetBlocks);
  std::int64_t block = 1;
  while (block * 2 <= limit && block * 2 <= kMaxAutoBlock) block *= 2;
  return block;
}

std::int64_t BigBirdExtras::reachable_count(int layers, std::int64_t query_block) const {
  std::int64_t count = 0;
  for (std::int64_t kb = 0; kb < n_blocks(); ++kb) count += reachable(layers, query_block, kb) ? 1 : 0;
  return count;
}

bool BigBirdExtras::visible(std::int64_t head, std::int64_t query, std::int64_t key) const {
  const BigBirdLayout& layout = data_.layout;
  if (!data_.key_padding.empty() && data_.key_padding[static_cast<std::size_t>(key)]) return false;
  if (layout.causal && key > query) return false;
  return block_type(head, layout.block_of(query), layout.block_of(key)) != BigBirdBlock::None;
}

nlohmann::json BigBirdExtras::to_json() const {
  const BigBirdLayout& layout = data_.layout;
  const std::int64_t nb = layout.n_blocks, L = layout.length;
  nlohmann::json j;
  j["kind"] = "bigbird";
  j["length"] = L;
  j["block_size"] = layout.block_size;
  j["block_size_auto"] = data_.auto_block_size;
  j["n_blocks"] = nb;
  j["window_blocks"] = layout.window_blocks;
  j["global_blocks"] = layout.global_blocks;
  j["random_blocks"] = layout.random_blocks;
  j["causal"] = layout.causal;
  j["block_type_names"] = {"none", "window", "global", "random"};
  nlohmann::json types = nlohmann::json::array();
  nlohmann::json random = nlohmann::json::array();
  nlohmann::json counts = nlohmann::json::array();
  for (std::int64_t h = 0; h < data_.heads; ++h) {
    nlohmann::json grid = nlohmann::json::array();
    nlohmann::json random_rows = nlohmann::json::array();
    for (std::int64_t qb = 0; qb < nb; ++qb) {
      nlohmann::json row = nlohmann::json::array();
      nlohmann::json picks = nlohmann::json::array();
      for (std::int64_t kb = 0; kb < nb; ++kb) {
        const BigBirdBlock type = block_type(h, qb, kb);
        row.push_back(static_cast<int>(type));
        if (type == BigBirdBlock::Random) picks.push_back(kb);
      }
      grid.push_back(std::move(row));
      random_rows.push_back(std::move(picks));
    }
    types.push_back(std::move(grid));
    random.push_back(std::move(random_rows));
    nlohmann::json head_counts = nlohmann::json::array();
    for (std::int64_t i = 0; i < L; ++i) head_counts.push_back(key_count(h, i));
    counts.push_back(std::move(head_counts));
  }
  j["block_types"] = std::move(types);     // [H][nb][nb], indices into block_type_names
  j["random_blocks_per_row"] = std::move(random);  // [H][nb][...] key blocks drawn at random
  j["key_counts"] = std::move(counts);     // [H][L]
  nlohmann::json field = nlohmann::json::array();
  for (int n = 1; n <= kMaxReceptiveLayers; ++n) {
    nlohmann::json grid = nlohmann::json::array();
    for (std::int64_t qb = 0; qb < nb; ++qb) {
      nlohmann::json row = nlohmann::json::array();
      for (std::int64_t kb = 0; kb < nb; ++kb) row.push_back(reachable(n, qb, kb) ? 1 : 0);
      grid.push_back(std::move(row));
    }
    field.push_back(std::move(grid));
  }
  j["receptive_field"] = std::move(field);  // [layers 1..4][nb][nb], 1 = reachable (any head)
  return j;
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr std::int64_t kMaxWindowBlocks = 1023;

struct KeyBlock {
  std::int64_t block;
  BigBirdBlock type;
};

// The visible key blocks of query block `qb` in `head`, in increasing block order. `scratch`
// holds the random candidates (kept by the caller to avoid allocating per row).
void row_pattern(const BigBirdLayout& layout, std::uint64_t seed, std::int64_t head, std::int64_t qb,
                 std::vector<KeyBlock>& out, std::vector<std::int64_t>& scratch) {
  out.clear();
  const std::int64_t nb = layout.n_blocks;
  const std::int64_t last = layout.causal ? qb : nb - 1;  // causal: no block after the query block
  if (layout.is_global(qb)) {
    for (std::int64_t kb = 0; kb <= last; ++kb) out.push_back({kb, BigBirdBlock::Global});
    return;
  }
  const std::int64_t half = layout.window_blocks / 2;
  scratch.clear();
  for (std::int64_t kb = 0; kb <= last; ++kb) {
    if (!layout.is_global(kb) && std::abs(kb - qb) > half) scratch.push_back(kb);
  }
  // Partial Fisher-Yates: the first `take` candidates become a uniform random subset. Each
  // (head, row) has its own stream, so rows never shift each other's draws.
  const auto candidates = static_cast<std::int64_t>(scratch.size());
  const std::int64_t take = std::min(layout.random_blocks, candidates);
  if (take > 0) {
    Rng rng(Rng::derive(Rng::derive(seed, "bigbird/random_blocks/head" + std::to_string(head)),
                        static_cast<std::uint64_t>(qb)));
    for (std::int64_t t = 0; t < take; ++t) {
      const auto pick = t + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(candidates - t)));
      std::swap(scratch[static_cast<std::size_t>(t)], scratch[static_cast<std::size_t>(pick)]);
    }
    std::sort(scratch.begin(), scratch.begin() + take);
  }
  std::int64_t next_random = 0;
  for (std::int64_t kb = 0; kb <= last; ++kb) {
    if (layout.is_global(kb)) {
      out.push_back({kb, BigBirdBlock::Global});
    } else if (std::abs(kb - qb) <= half) {
      out.push_back({kb, BigBirdBlock::Window});
    } else if (next_random < take && scratch[static_cast<std::size_t>(next_random)] == kb) {
      out.push_back({kb, BigBirdBlock::Random});
      ++next_random;
    }
  }
}

// The keys of block `kb` hidden from query `query` regardless of the pattern: causal (j > i)
// and padding. Calls hide(column) for each, with columns counted from the block's first key.
template <typename Hide>
void for_hidden_keys(const BigBirdLayout& layout, const std::vector<std::uint8_t>* padding, std::int64_t query,
                     std::int64_t kb, Hide&& hide) {
  const std::int64_t k0 = layout.block_begin(kb), len = layout.block_length(kb);
  if (layout.causal) {
    for (std::int64_t c = std::max<std::int64_t>(0, query + 1 - k0); c < len; ++c) hide(c);
  }
  if (padding) {
    for (std::int64_t c = 0; c < len; ++c)
      if ((*padding)[static_cast<std::size_t>(k0 + c)]) hide(c);
  }
}

// How many keys of block `kb` query `query` sees when the block is in its pattern.
std::int64_t visible_keys_in_block(const BigBirdLayout& layout, const std::vector<std::uint8_t>* padding,
                                   std::int64_t query, std::int64_t kb) {
  const std::int64_t k0 = layout.block_begin(kb);
  const std::int64_t end = layout.causal ? std::min(layout.block_end(kb), query + 1) : layout.block_end(kb);
  if (!padding) return std::max<std::int64_t>(0, end - k0);
  std::int64_t count = 0;
  for (std::int64_t j = k0; j < end; ++j) count += (*padding)[static_cast<std::size_t>(j)] ? 0 : 1;
  return count;
}

// Boolean reachability of the pattern composed with itself: field[n-1] = A^n, where A[i][j] is
// "query block i attends key block j in some head". Rows are bitsets so that nb = L (block size
// 1) stays cheap: nb² words per layer instead of nb³ operations.
std::vector<std::uint8_t> receptive_field(const std::vector<std::uint8_t>& types, std::int64_t heads, std::int64_t nb) {
  const std::int64_t words = (nb + 63) / 64;
  using Bits = std::vector<std::uint64_t>;
  Bits adjacency(static_cast<std::size_t>(nb * words), 0);
  for (std::int64_t h = 0; h < heads; ++h) {
    for (std::int64_t qb = 0; qb < nb; ++qb) {
      for (std::int64_t kb = 0; kb < nb; ++kb) {
        if (types[static_cast<std::size_t>((h * nb + qb) * nb + kb)] != 0)
          adjacency[static_cast<std::size_t>(qb * words + kb / 64)] |= std::uint64_t{1} << (kb % 64);
      }
    }
  }
  std::vector<std::uint8_t> field(static_cast<std::size_t>(BigBirdExtras::kMaxReceptiveLayers * nb * nb), 0);
  Bits current = adjacency, next(current.size());
  for (int n = 0; n < BigBirdExtras::kMaxReceptiveLayers; ++n) {
    if (n > 0) {
      std::fill(next.begin(), next.end(), 0);
      for (std::int64_t qb = 0; qb < nb; ++qb) {
        std::uint64_t* dst = next.data() + qb * words;
        for (std::int64_t mid = 0; mid < nb; ++mid) {
          if (!((current[static_cast<std::size_t>(qb * words + mid / 64)] >> (mid % 64)) & 1u)) continue;
          const std::uint64_t* src = adjacency.data() + mid * words;
          for (std::int64_t w = 0; w < words; ++w) dst[w] |= src[w];
        }
      }
      std::swap(current, next);
    }
    for (std::int64_t qb = 0; qb < nb; ++qb) {
      for (std::int64_t kb = 0; kb < nb; ++kb) {
        field[static_cast<std::size_t>((n * nb + qb) * nb + kb)] =
            static_cast<std::uint8_t>((current[static_cast<std::size_t>(qb * words + kb / 64)] >> (kb % 64)) & 1u);
      }
    }
  }
  return field;
}

class BigBirdAttention final : public Attention {
 public:
  BigBirdAttention() {
    spec_.name = "bigbird";
    spec_.title = "BigBird block-sparse attention";
    spec_.paper = "Zaheer et al. 2020, Big Bird: Transformers for Longer Sequences (arXiv:2007.14062)";
    spec_.summary =
        "Blocks of tokens attend a sliding window of blocks, global blocks at both ends and a few random "
        "blocks: linear cost in the length.";
    spec_.params = {
        ParamSpec::integer("block_size", "Block size", 0, 0, kMaxBlockSize,
                           "Tokens per block; 0 = auto: the largest power of two <= max(1, L/16), at most 64. "
                           "The last block is partial when the size does not divide L."),
        ParamSpec::integer("window_blocks", "Window blocks", 3, 1, kMaxWindowBlocks,
                           "Odd number of neighbouring blocks each block row attends: i - w/2 .. i + w/2, no wrap."),
        ParamSpec::integer("global_blocks", "Global blocks", 1, 0, kMaxGlobalBlocks,
                           "The first and the last g blocks attend to all blocks and are attended by all."),
        ParamSpec::integer("random_blocks", "Random blocks", 3, 0, kMaxRandomBlocks,
                           "Random key blocks per non-global block row, drawn per head and row from the seed, "
                           "avoiding the window and global blocks."),
    };
  }

  const VariantSpec& spec() const override { return spec_; }

  Tensor forward(const AttentionInput& in, Trace* trace) const override {
    const BigBirdLayout layout = make_layout(in);
    if (trace) return forward_dense(in, layout, *trace);
    return forward_block_sparse(in, layout);
  }

  // Fast path: the output only (per-thread logits are Eigen scratch). Traced: the output and the
  // dense weights [H, L, L]; the pattern and counts in the extras are small std::vectors.
  std::int64_t workspace_bytes(const AttentionShape& s, const Params& params) const override {
    if (s.lq != s.lk) throw ShapeError("bigbird is self-attention and needs as many queries as keys");
    (void)bigbird_layout(params, s.lq, s.causal);  // the same parameter checks as forward
    const std::int64_t out = s.heads * s.lq * s.dv;
    return float_bytes(s.trace ? out + s.heads * s.lq * s.lk : out);
  }

 private:
  static constexpr std::int64_t kMaxBlockSize = 512;
  static constexpr std::int64_t kMaxGlobalBlocks = 64;
  static constexpr std::int64_t kMaxRandomBlocks = 64;
  // Keys per chunk of the fast path: the default pattern at block 64, (3 + 2 + 3)·64, in one.
  static constexpr std::int64_t kChunkColumns = 512;

  BigBirdLayout make_layout(const AttentionInput& in) const {
    if (in.q.dim(1) != in.k.dim(1)) {
      throw ShapeError("bigbird is block-sparse self-attention and needs as many queries as keys; got q " +
                       in.q.shape_string() + ", k " + in.k.shape_string());
    }
    return bigbird_layout(*in.params, in.q.dim(1), in.causal);
  }

  // For each head and query block: its visible key blocks, taken in chunks of at most
  // kChunkColumns keys (whole blocks), with an online softmax across chunks (running maximum m,
  // denominator l, output rescaled by exp(m_old - m_new)) as in softmax.cpp. A non-global row's
  // (w + 2g + r)·b keys usually fit one chunk; a global row visits all L keys in several. The
  // scratch per thread is one [block, chunk] logits matrix, independent of L.
  Tensor forward_block_sparse(const AttentionInput& in, const BigBirdLayout& layout) const {
    const std::int64_t H = in.q.dim(0), L = layout.length, nb = layout.n_blocks;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in.q.dim(2)));
    const std::int64_t max_rows = std::min(layout.block_size, L);
    const std::int64_t chunk_columns = std::max(kChunkColumns, max_rows);
    Tensor out = Tensor::uninitialized({H, L, in.v.dim(2)});  // every row is written below
    bool cancelled = false;
#pragma omp parallel
    {
      // Eigen's kernels round differently for differently aligned operands; the per-thread
      // logits start aligned (Eigen's allocator), so a block row rounds the same on whichever
      // thread runs it: results do not depend on scheduling, and causal outputs before a changed
      // token stay bit-identical.
      RowMatrix logits(max_rows, chunk_columns);
      Eigen::VectorXf row_max(max_rows), row_sum(max_rows);
      std::vector<KeyBlock> blocks;
      std::vector<std::int64_t> candidates;
#pragma omp for schedule(dynamic)
      for (std::int64_t task = 0; task < H * nb; ++task) {
        if (cancelled || (in.cancel && in.cancel->cancelled())) {
          cancelled = true;
          continue;
        }
        const std::int64_t h = task / nb, qb = task % nb;
        row_pattern(layout, in.seed, h, qb, blocks, candidates);
        const std::int64_t q0 = layout.block_begin(qb), rows = layout.block_length(qb);
        const auto q = in.q.matrix(h).middleRows(q0, rows);
        const auto k_all = in.k.matrix(h);
        const auto v_all = in.v.matrix(h);
        auto dst = out.matrix(h).middleRows(q0, rows);
        auto m = row_max.head(rows);
        auto l = row_sum.head(rows);
        dst.setZero();
        m.setConstant(kNegInf);
        l.setZero();
        std::size_t first = 0;
        while (first < blocks.size()) {
          // The chunk: blocks [first, end) with at most chunk_columns keys in all.
          std::size_t end = first;
          std::int64_t cols = 0;
          while (end < blocks.size() && cols + layout.block_length(blocks[end].block) <= chunk_columns)
            cols += layout.block_length(blocks[end++].block);
          UnalignedMatrixMap s(logits.data(), rows, cols);
          std::int64_t offset = 0;
          for (std::size_t b = first; b < end; ++b) {
            const std::int64_t k0 = layout.block_begin(blocks[b].block), len = layout.block_length(blocks[b].block);
            s.middleCols(offset, len).noalias() = (q * k_all.middleRows(k0, len).transpose()) * scale;
            offset += len;
          }
          for (std::int64_t r = 0; r < rows; ++r) {
            auto row = s.row(r);
            const auto hide = [&](float value) {
              std::int64_t at = 0;
              for (std::size_t b = first; b < end; ++b) {
                for_hidden_keys(layout, in.key_padding, q0 + r, blocks[b].block,
                                [&](std::int64_t c) { row(at + c) = value; });
                at += layout.block_length(blocks[b].block);
              }
            };
            hide(kNegInf);
            const float m_new = std::max(m(r), row.maxCoeff());
            if (m_new == kNegInf) {  // nothing visible to this query yet
              row.setZero();
              continue;
            }
            const float rescale = m(r) == kNegInf ? 0.0f : std::exp(m(r) - m_new);
            row = (row.array() - m_new).exp().matrix();
            hide(0.0f);
            l(r) = l(r) * rescale + row.sum();
            if (rescale != 1.0f) dst.row(r) *= rescale;
            m(r) = m_new;
          }
          offset = 0;
          for (std::size_t b = first; b < end; ++b) {
            const std::int64_t k0 = layout.block_begin(blocks[b].block), len = layout.block_length(blocks[b].block);
            dst.noalias() += s.middleCols(offset, len) * v_all.middleRows(k0, len);
            offset += len;
          }
          first = end;
        }
        for (std::int64_t r = 0; r < rows; ++r) {
          if (l(r) > 0.0f) dst.row(r) /= l(r);
          else dst.row(r).setZero();
        }
      }
    }
    if (cancelled) throw CancelledError();
    return out;
  }

  Tensor forward_dense(const AttentionInput& in, const BigBirdLayout& layout, Trace& trace) const {
    const std::int64_t H = in.q.dim(0), L = layout.length, dv = in.v.dim(2), nb = layout.n_blocks;
    const float scale = 1.0f / std::sqrt(static_cast<float>(in.q.dim(2)));
    BigBirdExtras::Data data;
    data.layout = layout;
    data.auto_block_size = in.params->get_int("block_size") == 0;
    data.heads = H;
    data.block_types.assign(static_cast<std::size_t>(H * nb * nb), static_cast<std::uint8_t>(BigBirdBlock::None));
    data.key_counts.assign(static_cast<std::size_t>(H * L), 0);
    if (in.key_padding) data.key_padding = *in.key_padding;
    {
      std::vector<KeyBlock> blocks;
      std::vector<std::int64_t> candidates;
      for (std::int64_t h = 0; h < H; ++h) {
        for (std::int64_t qb = 0; qb < nb; ++qb) {
          row_pattern(layout, in.seed, h, qb, blocks, candidates);
          for (const KeyBlock& kb : blocks)
            data.block_types[static_cast<std::size_t>((h * nb + qb) * nb + kb.block)] = static_cast<std::uint8_t>(kb.type);
        }
      }
    }
    check_cancelled(in.cancel);

    Tensor out = Tensor::uninitialized({H, L, dv});
    Tensor weights = Tensor::uninitialized({H, L, L});  // every row is written below
    bool cancelled = false;
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t h = 0; h < H; ++h) {
      if (cancelled || (in.cancel && in.cancel->cancelled())) {
        cancelled = true;
        continue;
      }
      auto w = weights.matrix(h);
      w.noalias() = (in.q.matrix(h) * in.k.matrix(h).transpose()) * scale;
      for (std::int64_t i = 0; i < L; ++i) {
        auto row = w.row(i);
        const std::uint8_t* types = data.block_types.data() + (h * nb + layout.block_of(i)) * nb;
        const auto hide_all = [&](float value) {
          for (std::int64_t kb = 0; kb < nb; ++kb) {
            if (types[kb] == static_cast<std::uint8_t>(BigBirdBlock::None)) {
              row.segment(layout.block_begin(kb), layout.block_length(kb)).setConstant(value);
            } else {
              for_hidden_keys(layout, in.key_padding, i, kb,
                              [&](std::int64_t c) { row(layout.block_begin(kb) + c) = value; });
            }
          }
        };
        hide_all(kNegInf);
        const float m = row.maxCoeff();
        if (m == kNegInf) {
          row.setZero();
          continue;
        }
        row = (row.array() - m).exp().matrix();
        hide_all(0.0f);
        row /= row.sum();
        std::int32_t visible = 0;
        for (std::int64_t kb = 0; kb < nb; ++kb) {
          if (types[kb] != static_cast<std::uint8_t>(BigBirdBlock::None))
            visible += static_cast<std::int32_t>(visible_keys_in_block(layout, in.key_padding, i, kb));
        }
        data.key_counts[static_cast<std::size_t>(h * L + i)] = visible;
      }
      out.matrix(h).noalias() = w * in.v.matrix(h);
    }
    if (cancelled) throw CancelledError();
    data.receptive_field = receptive_field(data.block_types, H, nb);
    trace.weights = std::move(weights);
    trace.extras = std::make_shared<BigBirdExtras>(std::move(data));
    return out;
  }

  VariantSpec spec_;
};

}  // namespace

BigBirdLayout bigbird_layout(const Params& p, std::int64_t length, bool causal) {
  BigBirdLayout layout;
  layout.length = length;
  layout.window_blocks = p.get_int("window_blocks");
  if (layout.window_blocks % 2 == 0) {
    throw ParamError("window_blocks=" + std::to_string(layout.window_blocks) +
                     " is not allowed; window_blocks: an odd integer in [1, " + std::to_string(kMaxWindowBlocks) +
                     "] (the window is centred on the query block)");
  }
  const std::int64_t requested = p.get_int("block_size");
  layout.block_size = requested == 0 ? bigbird_auto_block_size(layout.length) : requested;
  layout.n_blocks = (layout.length + layout.block_size - 1) / layout.block_size;
  layout.global_blocks = p.get_int("global_blocks");
  layout.random_blocks = p.get_int("random_blocks");
  layout.causal = causal;
  return layout;
}

BigBirdBlockLists bigbird_block_lists(const BigBirdLayout& layout, std::int64_t heads, std::uint64_t seed) {
  BigBirdBlockLists lists;
  lists.offsets.reserve(static_cast<std::size_t>(heads * layout.n_blocks + 1));
  lists.offsets.push_back(0);
  std::vector<KeyBlock> row;
  std::vector<std::int64_t> scratch;
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t qb = 0; qb < layout.n_blocks; ++qb) {
      row_pattern(layout, seed, h, qb, row, scratch);
      for (const KeyBlock& b : row) lists.blocks.push_back(static_cast<std::int32_t>(b.block));
      lists.offsets.push_back(static_cast<std::int32_t>(lists.blocks.size()));
    }
  return lists;
}

std::unique_ptr<Attention> make_bigbird_attention() { return std::make_unique<BigBirdAttention>(); }

}  // namespace attnlab
