#include "text/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include "core/error.h"

namespace attnlab {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path)
    : path_(model_path), processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_path, ec)) {
    throw IoError("SentencePiece model '" + model_path + "' does not exist");
  }
  const auto status = processor_->Load(model_path);
  if (!status.ok()) {
    throw FormatError("SentencePiece model '" + model_path + "' cannot be loaded: " + status.ToString());
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<Token> SentencePieceTokenizer::encode(std::string_view text) const {
  // The immutable-proto API gives each piece's byte range without needing protobuf headers.
  const auto encoded = processor_->EncodeAsImmutableProto(text);
  std::vector<Token> tokens;
  tokens.reserve(static_cast<std::size_t>(encoded.pieces_size()));
  for (const auto& piece : encoded.pieces()) {
    tokens.push_back(Token{static_cast<std::int32_t>(piece.id()), piece.piece(), piece.begin(), piece.end()});
  }
  return tokens;
}

std::int32_t SentencePieceTokenizer::vocab_size() const { return processor_->GetPieceSize(); }

std::vector<std::int32_t> SentencePieceTokenizer::encode_ids(std::string_view text) const {
  const std::vector<int> ids = processor_->EncodeAsIds(text);
  return std::vector<std::int32_t>(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::decode(const std::vector<std::int32_t>& ids) const {
  const std::int32_t size = vocab_size();
  std::vector<int> checked;
  checked.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= size) {
      throw ParamError("token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                       " is outside the vocabulary 0.." + std::to_string(size - 1));
    }
    checked.push_back(static_cast<int>(ids[i]));
  }
  return processor_->DecodeIds(checked);
}

std::int32_t SentencePieceTokenizer::pad_id() const { return processor_->pad_id(); }
std::int32_t SentencePieceTokenizer::bos_id() const { return processor_->bos_id(); }
std::int32_t SentencePieceTokenizer::eos_id() const { return processor_->eos_id(); }
std::int32_t SentencePieceTokenizer::unk_id() const { return processor_->unk_id(); }

std::string SentencePieceTokenizer::describe() const {
  return "SentencePiece " + std::filesystem::path(path_).filename().string() + " (" +
         std::to_string(vocab_size()) + " pieces)";
}

}  // namespace attnlab
