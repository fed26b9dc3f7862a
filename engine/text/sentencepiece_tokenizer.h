// SentencePiece tokenizer (Kudo & Richardson 2018) through the SentencePiece library.
#pragma once

#include <memory>
#include <string>

#include "text/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace attnlab {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Throws IoError when `model_path` cannot be read and FormatError when it is not a model.
  explicit SentencePieceTokenizer(const std::string& model_path);
  ~SentencePieceTokenizer() override;

  std::vector<Token> encode(std::string_view text) const override;
  std::int32_t vocab_size() const override;
  std::string describe() const override;

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace attnlab
