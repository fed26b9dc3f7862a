// Small trained-model folders for tests: a 256-piece SentencePiece model trained on generated
// syllable words, and seeded (untrained) Transformer weights saved the way `attnlab-cli train`
// writes a folder (config.json, model.safetensors, tokenizer.model). What the tests check is that
// every path computes the same function of the same weights, so the weights need no training.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/rng.h"
#include "text/sentencepiece_trainer.h"
#include "train/trainer.h"

namespace attnlab::test {

// Lines of syllable words, varied enough for a 256-piece model (with non-ASCII letters so that
// byte offsets differ from character offsets).
inline std::vector<std::string> syllable_corpus(std::uint64_t seed) {
  const char* syllables[] = {"ka", "lo", "mi", "tu", "ber", "sch", "än", "ge", "st", "ri", "fo", "nu", "wel", "za",
                             "qu", "ix", "öl", "dr", "ap", "em", "ho", "ung", "ei", "tz", "pl", "ma", "ve", "sk"};
  std::vector<std::string> lines;
  Rng rng(seed);
  for (int i = 0; i < 3000; ++i) {
    std::string line;
    const int words = 2 + static_cast<int>(rng.below(7));
    for (int w = 0; w < words; ++w) {
      if (w) line += ' ';
      const int parts = 1 + static_cast<int>(rng.below(3));
      for (int p = 0; p < parts; ++p) line += syllables[rng.below(28)];
    }
    lines.push_back(line + (rng.below(2) ? "." : "?"));
  }
  return lines;
}

// Trains the tokenizer into `folder` (which must exist); returns the model's path.
inline std::string train_syllable_tokenizer(const std::string& folder, std::uint64_t corpus_seed) {
  return train_sentencepiece(syllable_corpus(corpus_seed), folder, {256, 1, 2}).model_path;
}

struct TinyModel {
  std::string kind = "seq2seq";
  std::int64_t encoder_layers = 2;  // ignored for "lm"
  std::int64_t decoder_layers = 2;
  std::uint64_t seed = 3;
  float sharpen = 2.0f;  // weights × this: maps far from uniform, searches with real choices
};

// config.json + model.safetensors + a copy of `tokenizer` as tokenizer.model.
inline void write_model_folder(const std::string& folder, const TinyModel& m, const std::string& tokenizer) {
  std::filesystem::create_directories(folder);
  if (std::filesystem::path(tokenizer) != std::filesystem::path(folder) / "tokenizer.model") {
    std::filesystem::copy_file(tokenizer, folder + "/tokenizer.model", std::filesystem::copy_options::overwrite_existing);
  }
  train::TransformerConfig c;
  c.kind = m.kind;
  c.vocab = 256;
  c.d_model = 16;
  c.heads = 2;
  c.d_ff = 24;
  c.encoder_layers = m.kind == "seq2seq" ? m.encoder_layers : 0;
  c.decoder_layers = m.decoder_layers;
  c.max_length = 40;
  train::Transformer<float> model(c, m.seed);
  for (float& v : model.values()) v *= m.sharpen;
  train::save_weights(model, folder + "/model.safetensors", nlohmann::json::object());
  std::ofstream(folder + "/config.json") << c.to_json().dump(2);
}

}  // namespace attnlab::test
