// Inference with a trained model folder: German→English translation (greedy or beam search with a
// KV cache) and language-model scoring, with the self-attention optionally swapped for any
// registered variant.
//
// A model folder holds config.json (train::TransformerConfig), model.safetensors (the named
// weights attnlab-cli train writes) and tokenizer.model (the joint SentencePiece model).
//
// Shapes, one sentence: source ids [S] (EOS last), memory [S, D]; target inputs [T] (BOS first),
// logits [T, V]; attention maps per layer [H, Lq, Lk].
//
// Attention swap: with `AttentionChoice::variant` set, every self-attention (encoder: full;
// decoder: causal) runs that variant on the trained q, k, v through the registry; cross-attention
// stays exact softmax (the alignment is what the user reads). The trained softmax decodes
// incrementally with a KV cache; a swapped variant has no cache in general, so each step reruns the
// decoder over the hypothesis' prefix (O(T²) per sentence, still milliseconds at T ≤ 64).
//
// Observing: encode and decode_all take an optional AttentionProbe (layers/multi_head_attention.h)
// that sees every self-attention layer (encoder: full; decoder: causal; never cross-attention):
// the layer index, the input it ran on — q, k [H, L, d], v [H, L, dv], the causal flag and the
// seed Rng::derive(choice.seed, layer) — its output [H, L, dv] and its full Trace: the variant's
// weights [H, L, L] and extras (LSH buckets, clusters, ...), or on the trained softmax path the
// softmax probabilities without extras. A probe makes every self-attention layer traced.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "decode/search.h"
#include "text/sentencepiece_tokenizer.h"
#include "train/transformer.h"

namespace attnlab {

class AttentionProbe;

class TrainedModel {
 public:
  // Throws IoError naming the missing file, FormatError for a malformed one, ParamError when the
  // tokenizer's vocabulary does not match the config.
  static std::shared_ptr<const TrainedModel> load(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const train::TransformerConfig& config() const { return weights_->config(); }
  const train::Transformer<float>& weights() const { return *weights_; }
  const SentencePieceTokenizer& tokenizer() const { return *tokenizer_; }
  // "seq2seq, 6.1M parameters, d_model 256, 3+3 layers, 8000 pieces" (+ ", checkpoint of a run in training")
  std::string describe() const;

 private:
  std::string dir_;
  bool in_training_ = false;  // loaded from the checkpoint of a run still going
  std::unique_ptr<train::Transformer<float>> weights_;
  std::unique_ptr<SentencePieceTokenizer> tokenizer_;
};

struct AttentionChoice {
  const Attention* variant = nullptr;  // null: the trained softmax
  Params params;                       // validated values for the variant's schema
  std::uint64_t seed = 0;
  std::string name() const { return variant ? variant->spec().name : "softmax"; }
};

// The choice for a registered name ("softmax" gives the trained path) with "key=value" parameter
// strings; throws ParamError for an unknown variant or a bad value.
AttentionChoice make_attention_choice(const std::string& name, const std::vector<std::string>& params,
                                      std::uint64_t seed);

// Per layer [H, Lq, Lk].
using AttentionMaps = std::vector<Tensor>;

// Encoder over source ids → memory [S, D]; `maps` (optional) gets the self-attention weights,
// `probe` (optional) each self-attention layer's q, k, v, output and trace.
RowMatrix encode(const TrainedModel& model, const std::vector<std::int32_t>& src, const AttentionChoice& attention,
                 AttentionMaps* maps, const CancelToken* cancel = nullptr, AttentionProbe* probe = nullptr);
// Decoder over target inputs [T] (BOS first) → logits [T, V]; memory is null for a language model.
// `probe` sees the (causal) self-attention layers only.
RowMatrix decode_all(const TrainedModel& model, const RowMatrix* memory, const std::vector<std::int32_t>& tgt_in,
                     const AttentionChoice& attention, AttentionMaps* self_maps, AttentionMaps* cross_maps,
                     const CancelToken* cancel = nullptr, AttentionProbe* probe = nullptr);

// The decoder side as an IncrementalDecoder for greedy/beam search over one source sentence.
class TranslationDecoder final : public IncrementalDecoder {
 public:
  TranslationDecoder(const TrainedModel& model, const RowMatrix& memory, const AttentionChoice& attention);
  std::int32_t vocab_size() const override;
  void start(std::int64_t count) override;
  RowMatrix step(const std::vector<std::int32_t>& tokens) override;
  void reorder(const std::vector<std::int64_t>& parents) override;

 private:
  struct Slot {
    std::vector<std::int32_t> prefix;            // tokens fed so far (BOS first)
    std::vector<RowMatrix> keys, values;          // per decoder layer [t, D] (softmax path)
  };
  const TrainedModel& model_;
  const RowMatrix& memory_;
  AttentionChoice attention_;
  std::vector<RowMatrix> cross_keys_, cross_values_;  // per layer [S, D], shared by every slot
  std::vector<Slot> slots_;
};

// Sentence-sized work runs on the calling thread alone: its products are far too small to pay
// for waking an OpenMP team (on a busy machine each team wake-up cost milliseconds, making a
// swapped-in variant 10-40x slower). While one lives, the calling thread's OpenMP regions use one
// thread; the setting is that thread's own and is restored. translate, score_language_model and
// the playground's trained models use it.
class SingleThreaded {
 public:
  SingleThreaded();
  ~SingleThreaded();
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;

 private:
  int previous_;
};

struct TranslateOptions {
  int beam = 1;                 // 1 = greedy
  float length_penalty = 1.0f;  // GNMT alpha for beam search
  int max_length = 0;           // generated tokens; 0 = min(2·S + 10, max_length − 1)
  int n_best = 1;
  int no_repeat_ngram = 0;      // 0 = off; n: no n-gram of pieces repeats (SearchOptions)
  AttentionChoice attention;
  const CancelToken* cancel = nullptr;
};

struct Translation {
  std::vector<Token> source_tokens;         // pieces with byte offsets into the input (EOS not included)
  std::vector<std::string> target_tokens;   // pieces of the best hypothesis (EOS not included)
  std::string text;                         // detokenized English
  double log_prob = 0, score = 0;
  bool finished = true;                     // false: cut at the length limit
  // Maps of the best hypothesis, teacher-forced (rows/cols include EOS; target rows: one per
  // generated token incl. the final EOS when finished). cross: [H, T, S]; encoder [H, S, S];
  // decoder [H, T, T].
  AttentionMaps cross_attention, encoder_attention, decoder_attention;
  SearchResult search;                      // n-best list and the beam tree
  std::vector<std::string> nbest_text;      // detokenized n-best (best first)
  double ms = 0;                            // wall time of encode + search + maps
};

// Throws ParamError for an empty sentence, a sentence longer than the model takes, or options out
// of range; CancelledError.
Translation translate(const TrainedModel& model, const std::string& text, const TranslateOptions& options);

// Σ −log p over each sentence's tokens and EOS under a language model (or the translator's decoder
// with `sources`), for perplexity = exp(nll / tokens).
// `attnlab-cli translate --json`'s object (the panel exports the same): {source_tokens,
// target_tokens (with </s>), translation, cross_attention [layer][head][target][source], ms,
// attention, beam, log_prob, score, finished, nbest (beam > 1)}.
nlohmann::json translation_json(const Translation& t, const std::string& attention, int beam);

struct ScoreSums {
  double nll = 0;
  std::int64_t tokens = 0;
};
ScoreSums score_language_model(const TrainedModel& model, const std::vector<std::string>& sentences,
                               const AttentionChoice& attention, const CancelToken* cancel = nullptr);

}  // namespace attnlab
