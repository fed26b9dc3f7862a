// SentencePiece tokenizer (Kudo & Richardson 2018) through the SentencePiece library: tokens
// with byte ranges for the views, and plain id sequences plus the special ids for training and
// decoding a translator.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

  // The ids of `text`'s pieces, without bos/eos.
  std::vector<std::int32_t> encode_ids(std::string_view text) const;
  // The text of `ids` (control ids such as pad, bos, eos give no text). Throws ParamError naming
  // the first id outside [0, vocab_size).
  std::string decode(const std::vector<std::int32_t>& ids) const;
  // The model's special ids; -1 where the model has none.
  std::int32_t pad_id() const;
  std::int32_t bos_id() const;
  std::int32_t eos_id() const;
  std::int32_t unk_id() const;

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace attnlab
