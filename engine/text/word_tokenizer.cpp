#include "text/word_tokenizer.h"

#include <cctype>

#include "core/error.h"
#include "text/sentencepiece_tokenizer.h"
#include "text/utf8.h"

namespace attnlab {
namespace {


bool is_space(char32_t c) {
  return (c < 0x80 && std::isspace(static_cast<int>(c))) || c == 0xA0 || (c >= 0x2000 && c <= 0x200B) ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Letters and digits of any script count as word characters; ASCII and the common Unicode
// punctuation blocks (Latin-1 symbols, General Punctuation, CJK punctuation) do not.
bool is_word_char(char32_t c) {
  if (c < 0x80) return std::isalnum(static_cast<int>(c)) || c == '_';
  if (c >= 0xA0 && c <= 0xBF) return false;
  if (c == 0xD7 || c == 0xF7) return false;
  if (c >= 0x2000 && c <= 0x206F) return false;
  if (c >= 0x3000 && c <= 0x303F) return false;
  return true;
}

}  // namespace

WordTokenizer::WordTokenizer(std::int32_t vocab_size) : vocab_size_(vocab_size) {
  if (vocab_size < 2) throw ParamError("word tokenizer needs a vocabulary of at least 2 ids");
}

std::string WordTokenizer::describe() const {
  return "word tokenizer (" + std::to_string(vocab_size_) + " hashed ids)";
}

std::int32_t WordTokenizer::id_of(std::string_view word) const {
  std::uint64_t h = 0xCBF29CE484222325ULL;  // FNV-1a over the lower-cased bytes
  for (unsigned char c : word) {
    h ^= static_cast<unsigned char>(std::tolower(c));
    h *= 0x100000001B3ULL;
  }
  const auto span = static_cast<std::uint64_t>(vocab_size_ - kFirstWordId);
  return kFirstWordId + static_cast<std::int32_t>(h % span);
}

std::vector<Token> WordTokenizer::encode(std::string_view text) const {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t length = 1;
    const char32_t c = decode_utf8(text, i, length);
    if (is_space(c)) {
      i += length;
      continue;
    }
    std::size_t end = i + length;
    if (is_word_char(c)) {
      // A word; an apostrophe between word characters stays inside ("don't").
      while (end < text.size()) {
        std::size_t next = 1;
        const char32_t d = decode_utf8(text, end, next);
        if (is_word_char(d)) {
          end += next;
          continue;
        }
        std::size_t after = 1;
        if (d == U'\'' && end + 1 < text.size() && is_word_char(decode_utf8(text, end + 1, after))) {
          end += 1 + after;
          continue;
        }
        break;
      }
    }
    const std::string_view word = text.substr(i, end - i);
    tokens.push_back(Token{id_of(word), std::string(word), i, end});
    i = end;
  }
  return tokens;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec, std::int32_t vocab_size) {
  if (spec.empty() || spec == "word") return std::make_unique<WordTokenizer>(vocab_size);
  auto tokenizer = std::make_unique<SentencePieceTokenizer>(spec);
  if (tokenizer->vocab_size() > vocab_size) {
    throw ParamError("SentencePiece model '" + spec + "' has " + std::to_string(tokenizer->vocab_size()) +
                     " pieces but the model's vocabulary holds " + std::to_string(vocab_size));
  }
  return tokenizer;
}

}  // namespace attnlab
