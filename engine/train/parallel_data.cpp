// Deterministic train / valid / test split of translation pairs and the data folder's files.
#include "train/parallel_data.h"

#include <filesystem>
#include <fstream>
#include <unordered_set>

#include "core/atomic_file.h"
#include "core/error.h"

namespace attnlab {
namespace {

bool holds_tab_or_newline(const std::string& text) { return text.find_first_of("\t\n\r") != std::string::npos; }

bool holds_tab_or_newline(const TranslationPair& pair) {
  return holds_tab_or_newline(pair.de) || holds_tab_or_newline(pair.en);
}

// Normalised sides of the sentences in `pairs`, German and English in one set each.
struct SideSets {
  std::unordered_set<std::string> de, en;
  explicit SideSets(const std::vector<TranslationPair>& pairs) {
    for (const TranslationPair& p : pairs) {
      if (p.kind != PairKind::sentence) continue;
      de.insert(normalise_for_split(p.de));
      en.insert(normalise_for_split(p.en));
    }
  }
  bool shares_side(const TranslationPair& p) const {
    return de.count(normalise_for_split(p.de)) > 0 || en.count(normalise_for_split(p.en)) > 0;
  }
};

// Removes from `pairs` those sharing a side with `sentences`; returns how many.
std::int64_t remove_overlap(std::vector<TranslationPair>& pairs, const SideSets& sentences) {
  const std::size_t before = pairs.size();
  std::erase_if(pairs, [&](const TranslationPair& p) { return sentences.shares_side(p); });
  return static_cast<std::int64_t>(before - pairs.size());
}

void count_pairs(const std::vector<TranslationPair>& pairs, Split split, SplitStats& stats) {
  for (const TranslationPair& p : pairs) {
    ++stats.pairs[static_cast<std::size_t>(split)][static_cast<std::size_t>(p.kind)];
  }
}

void check_writable(const TranslationPair& pair) {
  if (holds_tab_or_newline(pair)) {
    throw ParamError("pair '" + pair.de.substr(0, 40) + "' holds a tab or line break and cannot be written as TSV");
  }
}

void write_text_file(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write) {
  write_file_atomically(path.string(), write);
}

}  // namespace

const char* split_name(Split split) {
  switch (split) {
    case Split::train:
      return "train";
    case Split::valid:
      return "valid";
    case Split::test:
      return "test";
  }
  return "train";
}

std::uint64_t fnv1a_64(std::string_view bytes) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

std::string normalise_for_split(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (const char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

Split assign_split(const TranslationPair& pair) {
  const std::uint64_t bucket = fnv1a_64(normalise_for_split(pair.de)) % 100;
  if (pair.kind == PairKind::sentence) {
    if (bucket < 6) return Split::test;
    if (bucket < 9) return Split::valid;
    return Split::train;
  }
  return bucket >= 6 && bucket < 9 ? Split::valid : Split::train;
}

ParallelData split_parallel_data(const std::vector<TranslationPair>& pairs) {
  ParallelData data;
  for (const TranslationPair& p : pairs) {
    if (holds_tab_or_newline(p)) {
      ++data.stats.dropped_tab_or_newline;
      continue;
    }
    switch (assign_split(p)) {
      case Split::train:
        data.train.push_back(p);
        break;
      case Split::valid:
        data.valid.push_back(p);
        break;
      case Split::test:
        data.test.push_back(p);
        break;
    }
  }
  const SideSets test_sides(data.test);
  data.stats.removed_train_test_overlap = remove_overlap(data.train, test_sides);
  data.stats.removed_valid_test_overlap = remove_overlap(data.valid, test_sides);
  const SideSets valid_sides(data.valid);
  data.stats.removed_train_valid_overlap = remove_overlap(data.train, valid_sides);
  count_pairs(data.train, Split::train, data.stats);
  count_pairs(data.valid, Split::valid, data.stats);
  count_pairs(data.test, Split::test, data.stats);
  return data;
}

std::vector<std::string> joint_corpus(const std::vector<TranslationPair>& pairs) {
  std::vector<std::string> corpus;
  std::unordered_set<std::string_view> seen;  // views into `pairs`, which outlive this call
  for (const TranslationPair& p : pairs) {
    if (seen.insert(p.de).second) corpus.push_back(p.de);
    if (seen.insert(p.en).second) corpus.push_back(p.en);
  }
  return corpus;
}

nlohmann::json data_stats_json(const BeolingusStats& b, const SplitStats& s) {
  nlohmann::json beolingus = {{"lines", b.lines},
                              {"comment_lines", b.comment_lines},
                              {"blank_lines", b.blank_lines},
                              {"entries", b.entries},
                              {"skipped_lines",
                               {{"no_separator", b.skipped_no_separator},
                                {"unbalanced_brackets", b.skipped_unbalanced_brackets},
                                {"alternative_counts_differ", b.skipped_alternative_counts},
                                {"empty_after_stripping", b.skipped_empty}}},
                              {"dropped_pairs",
                               {{"empty_side", b.dropped_empty_side},
                                {"inline_alternatives", b.dropped_inline_alternatives},
                                {"duplicates", b.duplicate_pairs}}},
                              {"pairs", {{"word", b.words}, {"phrase", b.phrases}, {"sentence", b.sentences}}}};
  nlohmann::json split = {{"dropped_tab_or_newline", s.dropped_tab_or_newline},
                          {"removed_train_test_overlap", s.removed_train_test_overlap},
                          {"removed_valid_test_overlap", s.removed_valid_test_overlap},
                          {"removed_train_valid_overlap", s.removed_train_valid_overlap}};
  for (const Split sp : {Split::train, Split::valid, Split::test}) {
    nlohmann::json counts = {{"total", s.total(sp)}};
    for (const PairKind k : {PairKind::word, PairKind::phrase, PairKind::sentence}) {
      counts[pair_kind_name(k)] = s.count(sp, k);
    }
    split[split_name(sp)] = counts;
  }
  return {{"beolingus", beolingus}, {"split", split}};
}

void write_prepared_data(const std::string& folder, const ParallelData& data, const nlohmann::json& stats) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (!fs::is_directory(folder, ec)) throw IoError("data folder '" + folder + "' does not exist and cannot be created");
  for (const auto* pairs : {&data.train, &data.valid, &data.test}) {
    for (const TranslationPair& p : *pairs) check_writable(p);
  }
  const fs::path dir(folder);
  const auto write_tsv = [&](const std::string& name, const std::vector<TranslationPair>& pairs) {
    write_text_file(dir / name, [&](std::ostream& out) {
      for (const TranslationPair& p : pairs) out << p.de << '\t' << p.en << '\t' << pair_kind_name(p.kind) << '\n';
    });
  };
  const auto write_sentences = [&](const std::string& stem, const std::vector<TranslationPair>& pairs) {
    write_text_file(dir / (stem + ".de"), [&](std::ostream& out) {
      for (const TranslationPair& p : pairs)
        if (p.kind == PairKind::sentence) out << p.de << '\n';
    });
    write_text_file(dir / (stem + ".en"), [&](std::ostream& out) {
      for (const TranslationPair& p : pairs)
        if (p.kind == PairKind::sentence) out << p.en << '\n';
    });
  };
  write_tsv("train.tsv", data.train);
  write_tsv("valid.tsv", data.valid);
  write_sentences("test", data.test);
  write_sentences("valid", data.valid);
  const std::string json_text = stats.dump(2) + "\n";
  write_text_file(dir / "stats.json", [&](std::ostream& out) { out << json_text; });
}

std::vector<TranslationPair> read_pairs_tsv(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw IoError("pairs file '" + path + "' does not exist");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("pairs file '" + path + "' cannot be opened for reading");
  std::vector<TranslationPair> pairs;
  std::string line;
  std::int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (true) {
      const std::size_t tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (fields.size() != 3) {
      throw FormatError(where + "expected 3 tab-separated fields (de, en, kind), found " +
                        std::to_string(fields.size()));
    }
    if (fields[0].empty() || fields[1].empty()) throw FormatError(where + "empty German or English text");
    TranslationPair pair{fields[0], fields[1], PairKind::word};
    if (!parse_pair_kind(fields[2], &pair.kind)) {
      throw FormatError(where + "unknown kind '" + fields[2] + "' (expected word, phrase or sentence)");
    }
    pairs.push_back(std::move(pair));
  }
  if (in.bad()) throw IoError("pairs file '" + path + "': read error");
  return pairs;
}

}  // namespace attnlab
