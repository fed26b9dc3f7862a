// Tokenizers turn UTF-8 text into token ids plus the byte range each token came from, so views
// can label axes with the token text and highlight the token in the editor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attnlab {

struct Token {
  std::int32_t id = 0;
  std::string text;        // as shown on axes (SentencePiece's "▁" marks a word start)
  std::size_t begin = 0;   // byte offsets into the UTF-8 input: [begin, end)
  std::size_t end = 0;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<Token> encode(std::string_view text) const = 0;
  virtual std::int32_t vocab_size() const = 0;
  virtual std::string describe() const = 0;  // "word tokenizer (8192 hashed ids)"
};

// "word" gives the word tokenizer with `vocab_size` hashed ids; anything else is the path of a
// SentencePiece model file. Throws IoError / FormatError for a model that cannot be loaded and
// ParamError when its vocabulary is larger than `vocab_size`.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec, std::int32_t vocab_size);

}  // namespace attnlab
