// attnlab-cli data / baseline: German–English training data from the BEOLINGUS dictionary.
//   data      dictionary → clean pairs → train/valid/test split → joint SentencePiece model and
//             word-by-word baseline, all written into one folder (layout in
//             engine/train/parallel_data.h; plus spm.model, spm.vocab, baseline.tsv).
//   baseline  translates German text word by word with a folder's baseline.tsv.
#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_options.h"
#include "core/error.h"
#include "core/timer.h"
#include "text/sentencepiece_tokenizer.h"
#include "text/sentencepiece_trainer.h"
#include "train/beolingus.h"
#include "train/parallel_data.h"
#include "train/word_baseline.h"

namespace attnlab::cli {
namespace {

constexpr const char* kDefaultDictionary = "/usr/share/trans/de-en";

std::string counts_line(const SplitStats& s, Split split) {
  return std::string(split_name(split)) + ": " + std::to_string(s.total(split)) + " pairs (" +
         std::to_string(s.count(split, PairKind::word)) + " words, " +
         std::to_string(s.count(split, PairKind::phrase)) + " phrases, " +
         std::to_string(s.count(split, PairKind::sentence)) + " sentences)";
}

std::string seconds_text(double ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f s", ms / 1000.0);
  return buffer;
}

void create_output_folder(const std::string& folder) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (!std::filesystem::is_directory(folder, ec)) {
    throw IoError("--out " + folder + ": folder does not exist and cannot be created");
  }
}

// SentencePiece tokens of a set of pairs' sides (without bos/eos), in all and per kind.
struct TokenCounts {
  struct Side {
    std::int64_t tokens = 0, longest = 0, unknown = 0;
  };
  struct Group {
    Side de, en;
    std::int64_t pairs = 0;
    double average(const Side& side) const {
      return pairs ? static_cast<double>(side.tokens) / static_cast<double>(pairs) : 0.0;
    }
    nlohmann::json to_json() const {
      const auto side_json = [&](const Side& side) {
        return nlohmann::json{
            {"tokens", side.tokens}, {"per_pair", average(side)}, {"longest", side.longest}, {"unknown", side.unknown}};
      };
      return {{"pairs", pairs}, {"de", side_json(de)}, {"en", side_json(en)}, {"total", de.tokens + en.tokens}};
    }
  };
  Group all;
  std::array<Group, 3> by_kind;  // indexed by PairKind

  nlohmann::json to_json() const {
    nlohmann::json j = all.to_json();
    for (const PairKind k : {PairKind::word, PairKind::phrase, PairKind::sentence}) {
      j["by_kind"][pair_kind_name(k)] = by_kind[static_cast<std::size_t>(k)].to_json();
    }
    return j;
  }
};

TokenCounts count_tokens(const SentencePieceTokenizer& tokenizer, const std::vector<TranslationPair>& pairs) {
  TokenCounts counts;
  const auto add = [&](TokenCounts::Side& side, const std::vector<std::int32_t>& ids) {
    side.tokens += static_cast<std::int64_t>(ids.size());
    side.longest = std::max(side.longest, static_cast<std::int64_t>(ids.size()));
    side.unknown += std::count(ids.begin(), ids.end(), tokenizer.unk_id());
  };
  for (const TranslationPair& p : pairs) {
    const std::vector<std::int32_t> de = tokenizer.encode_ids(p.de), en = tokenizer.encode_ids(p.en);
    for (TokenCounts::Group* group : {&counts.all, &counts.by_kind[static_cast<std::size_t>(p.kind)]}) {
      add(group->de, de);
      add(group->en, en);
      ++group->pairs;
    }
  }
  return counts;
}

std::string tokens_line(const std::string& what, const TokenCounts::Group& g) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer,
                "%s: %lld pairs, tokens per side %.2f German / %.2f English (longest %lld / %lld), %lld tokens in all",
                what.c_str(), static_cast<long long>(g.pairs), g.average(g.de), g.average(g.en),
                static_cast<long long>(g.de.longest), static_cast<long long>(g.en.longest),
                static_cast<long long>(g.de.tokens + g.en.tokens));
  return buffer;
}

}  // namespace

int cmd_data(int argc, char** argv) {
  const Options o = parse_options("data", argc, argv, {"dict", "out", "vocab", "seed"}, {});
  const std::string dict = o.get("dict", kDefaultDictionary);
  const std::string out = o.require("data", "out");
  SentencePieceTrainOptions spm_options;
  if (o.has("vocab")) spm_options.vocab_size = parse_positive("vocab", o.get("vocab"));
  if (spm_options.vocab_size < kMinSentencePieceVocab || spm_options.vocab_size > kMaxSentencePieceVocab) {
    throw ParamError("--vocab=" + o.get("vocab") + ": allowed " + std::to_string(kMinSentencePieceVocab) + ".." +
                     std::to_string(kMaxSentencePieceVocab));
  }
  if (o.has("seed")) spm_options.seed = parse_seed("seed", o.get("seed"));
  const Timer total;

  Timer stage;
  BeolingusStats beolingus;
  const std::vector<TranslationPair> pairs = read_beolingus(dict, &beolingus);
  const double parse_ms = stage.elapsed_ms();
  create_output_folder(out);

  stage.restart();
  const ParallelData data = split_parallel_data(pairs);
  const double split_ms = stage.elapsed_ms();

  stage.restart();
  const std::vector<std::string> corpus = joint_corpus(data.train);
  const SentencePieceTrainResult spm = train_sentencepiece(corpus, out, spm_options);
  const double spm_ms = stage.elapsed_ms();

  stage.restart();
  const SentencePieceTokenizer tokenizer(spm.model_path);
  const TokenCounts train_tokens = count_tokens(tokenizer, data.train);
  const TokenCounts test_tokens = count_tokens(tokenizer, data.test);
  const double tokens_ms = stage.elapsed_ms();

  stage.restart();
  const WordBaseline baseline = WordBaseline::build(data.train);
  baseline.save_tsv((std::filesystem::path(out) / "baseline.tsv").string());
  const double baseline_ms = stage.elapsed_ms();

  stage.restart();
  nlohmann::json stats = data_stats_json(beolingus, data.stats);
  stats["dictionary"] = dict;
  stats["sentencepiece"] = {{"vocab_size", tokenizer.vocab_size()},   {"seed", spm_options.seed},
                            {"threads", spm_options.threads},         {"corpus_lines", spm.sentences},
                            {"train_tokens", train_tokens.to_json()}, {"test_tokens", test_tokens.to_json()}};
  stats["baseline_entries"] = baseline.size();
  stats["seconds"] = {{"parse", parse_ms / 1000.0},
                      {"split", split_ms / 1000.0},
                      {"sentencepiece", spm_ms / 1000.0},
                      {"token_count", tokens_ms / 1000.0},
                      {"baseline", baseline_ms / 1000.0}};
  write_prepared_data(out, data, stats);
  const double write_ms = stage.elapsed_ms();

  std::cout << "dictionary " << dict << ": " << beolingus.lines << " lines, " << beolingus.entries << " entries, "
            << beolingus.skipped_lines() << " skipped, " << beolingus.pairs() << " pairs (" << beolingus.words
            << " words, " << beolingus.phrases << " phrases, " << beolingus.sentences << " sentences) in "
            << seconds_text(parse_ms) << "\n";
  for (const Split split : {Split::train, Split::valid, Split::test})
    std::cout << counts_line(data.stats, split) << "\n";
  std::cout << "split in " << seconds_text(split_ms)
            << "; removed for sharing a side with a test sentence: " << data.stats.removed_train_test_overlap
            << " train, " << data.stats.removed_valid_test_overlap
            << " valid; with a valid sentence: " << data.stats.removed_train_valid_overlap << " train\n";
  std::cout << "sentencepiece: " << tokenizer.vocab_size() << " pieces from " << spm.sentences << " distinct sides in "
            << seconds_text(spm_ms) << "; tokens counted in " << seconds_text(tokens_ms) << "\n";
  std::cout << tokens_line("  train", train_tokens.all) << "\n";
  for (const PairKind k : {PairKind::word, PairKind::phrase, PairKind::sentence}) {
    std::cout << tokens_line(std::string("  train ") + pair_kind_name(k) + "s",
                             train_tokens.by_kind[static_cast<std::size_t>(k)])
              << "\n";
  }
  std::cout << tokens_line("  test", test_tokens.all) << ", " << test_tokens.all.de.unknown + test_tokens.all.en.unknown
            << " unknown\n";
  std::cout << "baseline: " << baseline.size() << " German words in " << seconds_text(baseline_ms) << "\n";
  std::cout << "wrote " << out << " in " << seconds_text(write_ms) << "; total " << seconds_text(total.elapsed_ms())
            << "\n";
  return 0;
}

int cmd_baseline(int argc, char** argv) {
  const Options o = parse_options("baseline", argc, argv, {"data", "file"}, {}, 1);
  const std::string folder = o.require("baseline", "data");
  const bool from_file = o.has("file");
  if (from_file == !o.positional.empty())
    throw UsageError("baseline needs either --file IN.txt or one German sentence");
  const WordBaseline baseline = WordBaseline::load_tsv((std::filesystem::path(folder) / "baseline.tsv").string());
  if (!from_file) {
    std::cout << baseline.translate(o.positional.front()) << "\n";
    return 0;
  }
  const std::string path = o.get("file");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw IoError("--file " + path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("--file " + path + ": cannot be opened for reading");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::cout << baseline.translate(line) << "\n";
  }
  if (in.bad()) throw IoError("--file " + path + ": read error");
  return 0;
}

}  // namespace attnlab::cli
