// Train / valid / test split of translation pairs, and the prepared data folder on disk.
//
// The split is a pure function of the pair: a 64-bit FNV-1a hash of the normalised German side
// (ASCII lowercased, whitespace collapsed and trimmed), so the same German never lands in two
// splits and the split never changes between runs or machines.
//   sentences:       hash % 100 < 6 → test, < 9 → valid, else train
//   words, phrases:  hash % 100 in [6, 9) → valid, else train      (the test set is sentences only)
// Then every train or valid pair whose German or English side equals (normalised) a side of a test
// sentence is removed, so no test sentence occurs in training in either language; likewise every
// train pair sharing a side with a valid sentence, so validation measures unseen sentences too.
//
// Folder layout (UTF-8, '\n' line ends):
//   train.tsv, valid.tsv         de <TAB> en <TAB> kind        one pair per line
//   test.de / test.en            test sentences, one per line, aligned
//   valid.de / valid.en          the valid split's sentences only, aligned
//   stats.json                   what the caller passes (counts, timings)
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "train/beolingus.h"

namespace attnlab {

enum class Split { train, valid, test };

// "train", "valid", "test".
const char* split_name(Split split);

// 64-bit FNV-1a (offset basis 14695981039346656037, prime 1099511628211) of the bytes.
std::uint64_t fnv1a_64(std::string_view bytes);

// ASCII letters lowercased, runs of whitespace turned into one space, ends trimmed; other bytes
// (umlauts) unchanged.
std::string normalise_for_split(std::string_view text);

// The split the pair's German side and kind assign it to (before overlap removal).
Split assign_split(const TranslationPair& pair);

struct SplitStats {
  // pairs[split][kind] after all removals; indices are the enums' values.
  std::array<std::array<std::int64_t, 3>, 3> pairs{};
  std::int64_t dropped_tab_or_newline = 0;       // pairs whose text holds '\t', '\n' or '\r'
  std::int64_t removed_train_test_overlap = 0;   // train pairs sharing a side with a test sentence
  std::int64_t removed_valid_test_overlap = 0;   // valid pairs sharing a side with a test sentence
  std::int64_t removed_train_valid_overlap = 0;  // train pairs sharing a side with a valid sentence

  std::int64_t count(Split split, PairKind kind) const {
    return pairs[static_cast<std::size_t>(split)][static_cast<std::size_t>(kind)];
  }
  std::int64_t total(Split split) const {
    const auto& row = pairs[static_cast<std::size_t>(split)];
    return row[0] + row[1] + row[2];
  }
};

struct ParallelData {
  std::vector<TranslationPair> train, valid, test;  // each in input order
  SplitStats stats;
};

// Splits `pairs` as described above.
ParallelData split_parallel_data(const std::vector<TranslationPair>& pairs);

// The distinct German and English sides of `pairs` (German, then English, of each pair in turn;
// each text once, at its first occurrence): the corpus a joint SentencePiece model learns from.
std::vector<std::string> joint_corpus(const std::vector<TranslationPair>& pairs);

// {"beolingus": {...}, "split": {...}} of the two stats structs.
nlohmann::json data_stats_json(const BeolingusStats& beolingus, const SplitStats& split);

// Writes the folder's files (created when missing; every file atomically), `stats` as
// stats.json. Throws IoError naming the file or folder that cannot be written, ParamError naming
// a pair whose text holds a tab or a line break (split_parallel_data never yields one).
void write_prepared_data(const std::string& folder, const ParallelData& data, const nlohmann::json& stats);

// Reads a train.tsv / valid.tsv file back. Throws IoError naming the path when it cannot be read,
// FormatError naming the path and line number of a line without exactly three fields, with an
// empty text, or with an unknown kind.
std::vector<TranslationPair> read_pairs_tsv(const std::string& path);

}  // namespace attnlab
