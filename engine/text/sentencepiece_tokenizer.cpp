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

std::string SentencePieceTokenizer::describe() const {
  return "SentencePiece " + std::filesystem::path(path_).filename().string() + " (" +
         std::to_string(vocab_size()) + " pieces)";
}

}  // namespace attnlab
