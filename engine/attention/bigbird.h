// BigBird block-sparse attention: the layout of its blocks and its typed trace extras.
//
// The "blocks" view dynamic_casts a layer's extras to BigBirdExtras and draws only what is
// stored here: the block type of every (query block, key block) pair per head, the block size
// actually used, the number of keys each query sees, and the receptive field of every query
// block after 1..kMaxReceptiveLayers layers of the same pattern. The token-level mask is the
// block grid expanded by `visible()`, which also applies the causal and padding masks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "attention/attention.h"

namespace attnlab {

// Why a key block is visible to a query block. Global wins over window where both apply (the
// first and last blocks lie in the window of their neighbours); random blocks are drawn only
// among blocks that are neither, so the three kinds never overlap.
enum class BigBirdBlock : std::uint8_t { None = 0, Window = 1, Global = 2, Random = 3 };

// "none", "window", "global", "random".
std::string_view bigbird_block_name(BigBirdBlock type);

// The block size chosen when block_size = 0 (auto): the largest power of two not above
// max(1, length / 16), capped at 64. Short texts so get about 16 blocks (enough to show window,
// global and random blocks apart), and from 1024 tokens on the block is the paper's 64.
std::int64_t bigbird_auto_block_size(std::int64_t length);

// How a sequence of `length` tokens is cut into blocks: blocks of `block_size` tokens, the last
// one partial when block_size does not divide the length.
struct BigBirdLayout {
  std::int64_t length = 0;
  std::int64_t block_size = 1;
  std::int64_t n_blocks = 0;  // ceil(length / block_size)
  std::int64_t window_blocks = 3;
  std::int64_t global_blocks = 1;
  std::int64_t random_blocks = 3;
  bool causal = false;

  std::int64_t block_begin(std::int64_t block) const { return block * block_size; }
  std::int64_t block_end(std::int64_t block) const { return std::min(length, (block + 1) * block_size); }
  std::int64_t block_length(std::int64_t block) const { return block_end(block) - block_begin(block); }
  std::int64_t block_of(std::int64_t token) const { return token / block_size; }
  // A global block row: the first and the last global_blocks blocks.
  bool is_global(std::int64_t block) const { return block < global_blocks || block >= n_blocks - global_blocks; }
};

// The layout of `length` tokens under the variant's params (block_size 0 = auto); throws
// ParamError for an even window as the variant does.
BigBirdLayout bigbird_layout(const Params& params, std::int64_t length, bool causal);

// The visible key blocks of every (head, query block) in increasing block order, as compressed
// lists: the blocks of query block qb in head h are blocks[offsets[h·nb + qb] ..
// offsets[h·nb + qb + 1]). The same draw as the variant's (for the GPU's block-sparse kernel).
struct BigBirdBlockLists {
  std::vector<std::int32_t> offsets;  // [H·nb + 1]
  std::vector<std::int32_t> blocks;
};
BigBirdBlockLists bigbird_block_lists(const BigBirdLayout& layout, std::int64_t heads, std::uint64_t seed);

class BigBirdExtras final : public TraceExtras {
 public:
  static constexpr int kMaxReceptiveLayers = 4;

  struct Data {
    BigBirdLayout layout;
    bool auto_block_size = false;  // block_size was 0 and the rule above chose it
    std::int64_t heads = 0;
    std::vector<std::uint8_t> block_types;      // [H, nb, nb] BigBirdBlock of (query block, key block)
    std::vector<std::int32_t> key_counts;       // [H, L] visible keys of each query (mask, causal, padding)
    std::vector<std::uint8_t> receptive_field;  // [kMaxReceptiveLayers, nb, nb]: 1 if key block reachable
                                                // from query block after n = index + 1 layers, any head
    std::vector<std::uint8_t> key_padding;      // [L] copy of the input's padding (empty: none)
  };

  explicit BigBirdExtras(Data data) : data_(std::move(data)) {}

  std::string_view kind() const override { return "bigbird"; }
  nlohmann::json to_json() const override;

  const BigBirdLayout& layout() const { return data_.layout; }
  const Data& data() const { return data_; }
  std::int64_t heads() const { return data_.heads; }
  std::int64_t n_blocks() const { return data_.layout.n_blocks; }
  std::int64_t length() const { return data_.layout.length; }

  BigBirdBlock block_type(std::int64_t head, std::int64_t query_block, std::int64_t key_block) const {
    const auto nb = data_.layout.n_blocks;
    return static_cast<BigBirdBlock>(data_.block_types[static_cast<std::size_t>((head * nb + query_block) * nb + key_block)]);
  }
  std::int32_t key_count(std::int64_t head, std::int64_t query) const {
    return data_.key_counts[static_cast<std::size_t>(head * data_.layout.length + query)];
  }
  // Whether query block `query_block` depends on key block `key_block` after `layers` layers
  // (1..kMaxReceptiveLayers) of this pattern, through any head.
  bool reachable(int layers, std::int64_t query_block, std::int64_t key_block) const {
    const auto nb = data_.layout.n_blocks;
    return data_.receptive_field[static_cast<std::size_t>(((layers - 1) * nb + query_block) * nb + key_block)] != 0;
  }
  // Number of key blocks reachable from `query_block` after `layers` layers.
  std::int64_t reachable_count(int layers, std::int64_t query_block) const;
  // The token-level mask: query i may attend key j in this head (block pattern, causal, padding).
  bool visible(std::int64_t head, std::int64_t query, std::int64_t key) const;

 private:
  Data data_;
};

}  // namespace attnlab
