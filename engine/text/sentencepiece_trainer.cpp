// SentencePiece training through the library, from sentences in memory; choices in the header.
#include "text/sentencepiece_trainer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <unordered_map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/timer.h"

namespace attnlab {
namespace {

// Feeds the library our sentences without a temporary corpus file.
class VectorSentenceIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentenceIterator(const std::vector<std::string>& sentences) : sentences_(sentences) {}
  bool done() const override { return index_ >= sentences_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return sentences_[index_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& sentences_;
  std::size_t index_ = 0;
};

// Creates and removes a probe file, so that an unwritable folder fails before a long training.
void check_folder_writable(const std::filesystem::path& folder) {
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec)) {
    throw IoError("SentencePiece output folder '" + folder.string() + "' does not exist");
  }
  const std::filesystem::path probe = folder / (".spm-write-probe-" + std::to_string(::getpid()));
  {
    std::ofstream out(probe, std::ios::binary);
    if (!out) throw IoError("SentencePiece output folder '" + folder.string() + "' is not writable");
  }
  std::filesystem::remove(probe, ec);
}

}  // namespace

SentencePieceTrainResult train_sentencepiece(const std::vector<std::string>& sentences, const std::string& folder,
                                             const SentencePieceTrainOptions& options) {
  if (options.vocab_size < kMinSentencePieceVocab || options.vocab_size > kMaxSentencePieceVocab) {
    throw ParamError("SentencePiece vocabulary size " + std::to_string(options.vocab_size) + ": allowed " +
                     std::to_string(kMinSentencePieceVocab) + ".." + std::to_string(kMaxSentencePieceVocab));
  }
  if (options.threads < 1 || options.threads > 256) {
    throw ParamError("SentencePiece threads " + std::to_string(options.threads) + ": allowed 1..256");
  }
  if (sentences.empty()) throw ParamError("SentencePiece training needs at least one sentence; the corpus is empty");
  const std::filesystem::path dir(folder);
  check_folder_writable(dir);

  // The library reserves (unsigned)-1 for "seed from std::random_device".
  const auto seed = static_cast<unsigned int>(options.seed % std::numeric_limits<unsigned int>::max());
  sentencepiece::SetRandomGeneratorSeed(seed);
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"character_coverage", "1.0"},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      {"normalization_rule_name", "identity"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"num_threads", std::to_string(options.threads)},
      {"minloglevel", "2"},
  };
  VectorSentenceIterator iterator(sentences);
  std::string model_bytes;
  const Timer timer;
  const sentencepiece::util::Status status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &model_bytes);
  const double seconds = timer.elapsed_ms() / 1000.0;
  if (!status.ok()) throw ParamError(std::string("SentencePiece training failed: ") + status.message());

  sentencepiece::SentencePieceProcessor processor;
  const sentencepiece::util::Status loaded = processor.LoadFromSerializedProto(model_bytes);
  if (!loaded.ok()) throw ParamError(std::string("SentencePiece produced a model it cannot load: ") + loaded.message());

  SentencePieceTrainResult result;
  result.model_path = (dir / "spm.model").string();
  result.vocab_path = (dir / "spm.vocab").string();
  result.sentences = static_cast<std::int64_t>(sentences.size());
  result.seconds = seconds;
  write_file_atomically(result.model_path, [&](std::ostream& out) {
    out.write(model_bytes.data(), static_cast<std::streamsize>(model_bytes.size()));
  });
  write_file_atomically(result.vocab_path, [&](std::ostream& out) {
    for (int id = 0; id < processor.GetPieceSize(); ++id)
      out << processor.IdToPiece(id) << '\t' << processor.GetScore(id) << '\n';
  });
  return result;
}

}  // namespace attnlab
