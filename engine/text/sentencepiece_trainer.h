// Trains a SentencePiece model (Kudo & Richardson 2018; unigram language model, Kudo 2018) from
// our own code through the SentencePiece library, on sentences held in memory.
//
// Fixed choices: unigram model, character_coverage 1.0 (every character of the corpus gets a
// piece), special ids pad=0 unk=1 bos=2 eos=3 (<pad> <unk> <s> </s>), the "identity"
// normalisation (no NFKC folding, so decode(encode(s)) gives back every corpus line byte for
// byte; whitespace runs are still collapsed), the whole corpus used (no sampling), the library's
// random generator seeded from ours and a fixed thread count, so the same corpus and options give
// the same model file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

constexpr std::int32_t kMinSentencePieceVocab = 256;
constexpr std::int32_t kMaxSentencePieceVocab = 32000;

struct SentencePieceTrainOptions {
  std::int32_t vocab_size = 8000;  // exactly this many pieces, specials included
  std::uint64_t seed = 1;
  // The unigram trainer's EM sums per-thread partial counts, so the model depends on this number
  // (through floating-point order) and it is fixed rather than taken from the machine.
  int threads = 2;
};

struct SentencePieceTrainResult {
  std::string model_path;  // FOLDER/spm.model
  std::string vocab_path;  // FOLDER/spm.vocab: piece <TAB> log-probability score, one per id
  std::int64_t sentences = 0;
  double seconds = 0.0;  // wall-clock time of the library's training
};

// Trains on `sentences` (UTF-8, one sentence each; lines longer than the library's 4192-byte
// limit are skipped by it) and writes spm.model and spm.vocab into `folder`, which must exist.
// Throws ParamError for a vocabulary size outside [256, 32000] or an empty corpus, IoError when
// the folder is missing or not writable (checked before training), and ParamError with the
// library's own message when training fails (e.g. a corpus too small for the vocabulary size).
SentencePieceTrainResult train_sentencepiece(const std::vector<std::string>& sentences, const std::string& folder,
                                             const SentencePieceTrainOptions& options);

}  // namespace attnlab
