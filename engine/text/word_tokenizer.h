// A simple tokenizer for models without a SentencePiece vocabulary: words (runs of letters,
// digits, apostrophes inside words, and any non-ASCII UTF-8 bytes, so "Mädchen" stays whole) and
// single punctuation marks; whitespace separates. Ids are hashed from the lower-cased word into
// [kFirstWordId, vocab): the same word always gets the same id, with no vocabulary file.
#pragma once

#include "text/tokenizer.h"

namespace attnlab {

class WordTokenizer final : public Tokenizer {
 public:
  static constexpr std::int32_t kPadId = 0;
  static constexpr std::int32_t kFirstWordId = 1;

  explicit WordTokenizer(std::int32_t vocab_size);
  std::vector<Token> encode(std::string_view text) const override;
  std::int32_t vocab_size() const override { return vocab_size_; }
  std::string describe() const override;
  std::int32_t id_of(std::string_view word) const;

 private:
  std::int32_t vocab_size_;
};

}  // namespace attnlab
