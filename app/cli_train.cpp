// attnlab-cli train: trains the de→en translator or the English language model on a data folder
// prepared by `attnlab-cli data`, with the engine's own backward passes (engine/train/).
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>

#include "cli_options.h"
#include "core/error.h"
#include "text/sentencepiece_tokenizer.h"
#include "train/parallel_data.h"
#include "train/trainer.h"

namespace attnlab::cli {
namespace {

std::string clock_text(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

// Tokenized examples from pairs; examples longer than the model takes are dropped (counted).
std::vector<train::Example> tokenize_pairs(const std::vector<TranslationPair>& pairs, const SentencePieceTokenizer& spm,
                                           bool seq2seq, std::int64_t max_length, std::int64_t* dropped) {
  std::vector<train::Example> out;
  for (const TranslationPair& p : pairs) {
    train::Example e;
    e.tgt = spm.encode_ids(p.en);
    if (seq2seq) e.src = spm.encode_ids(p.de);
    if (e.tgt.empty() || (seq2seq && e.src.empty()) ||
        static_cast<std::int64_t>(std::max(e.src.size(), e.tgt.size())) + 1 > max_length) {
      ++*dropped;
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  const Options o = parse_options(
      "train", argc, argv,
      {"data", "out", "kind", "d-model", "heads", "d-ff", "layers", "encoder-layers", "decoder-layers", "max-length",
       "steps", "minutes", "batch-tokens", "lr", "warmup", "schedule", "clip", "weight-decay", "label-smoothing", "seed",
       "threads", "eval-every", "checkpoint-every", "report-every", "sentence-repeat", "valid-max"},
      {"resume"});
  const std::string data = o.require("train", "data"), out = o.require("train", "out");
  train::TransformerConfig config;
  config.kind = o.get("kind", "seq2seq");
  if (config.kind != "seq2seq" && config.kind != "lm") throw ParamError("--kind=" + config.kind + ": expected seq2seq or lm");
  const bool seq2seq = config.kind == "seq2seq";
  config.d_model = parse_positive("d-model", o.get("d-model", "256"));
  config.heads = parse_positive("heads", o.get("heads", "4"));
  config.d_ff = parse_positive("d-ff", o.get("d-ff", "1024"));
  const int layers = parse_positive("layers", o.get("layers", "3"));
  config.encoder_layers = seq2seq ? parse_positive("encoder-layers", o.get("encoder-layers", std::to_string(layers))) : 0;
  config.decoder_layers = parse_positive("decoder-layers", o.get("decoder-layers", std::to_string(layers)));
  config.max_length = parse_positive("max-length", o.get("max-length", "64"));
  config.label_smoothing = parse_number("label-smoothing", o.get("label-smoothing", "0.1"));

  train::TrainOptions options;
  options.out_dir = out;
  options.max_steps = parse_positive("steps", o.get("steps", "10000"));
  options.max_minutes = parse_number("minutes", o.get("minutes", "0"));
  options.batch_tokens = parse_positive("batch-tokens", o.get("batch-tokens", "6000"));
  options.optimizer.lr = parse_number("lr", o.get("lr", "7e-4"));
  options.optimizer.warmup_steps = parse_index("warmup", o.get("warmup", "1000"));
  options.optimizer.schedule = o.get("schedule", "inverse_sqrt");
  options.optimizer.total_steps = options.max_steps;
  options.optimizer.clip_norm = parse_number("clip", o.get("clip", "1.0"));
  options.optimizer.weight_decay = parse_number("weight-decay", o.get("weight-decay", "0.01"));
  options.seed = parse_seed("seed", o.get("seed", "1"));
  options.eval_every = parse_index("eval-every", o.get("eval-every", "500"));
  options.checkpoint_every = parse_index("checkpoint-every", o.get("checkpoint-every", "500"));
  options.resume = o.has("resume");
  const int report_every = parse_positive("report-every", o.get("report-every", "50"));
  if (o.has("threads")) omp_set_num_threads(parse_positive("threads", o.get("threads")));

  namespace fs = std::filesystem;
  const std::string spm_path = (fs::path(data) / "spm.model").string();
  if (!fs::is_regular_file(spm_path)) {
    throw IoError("--data " + data + ": no spm.model (prepare the folder with `attnlab-cli data --out " + data + "`)");
  }
  const SentencePieceTokenizer spm(spm_path);
  config.vocab = spm.vocab_size();
  config.pad_id = spm.pad_id();
  config.unk_id = spm.unk_id();
  config.bos_id = spm.bos_id();
  config.eos_id = spm.eos_id();
  config.validate();
  options.validate();
  check_output_folder("out", out);  // its parent must exist; the folder itself is created
  if (options.resume && !fs::is_regular_file(fs::path(out) / "checkpoint.safetensors")) {
    throw IoError("--resume: no checkpoint to resume from in " + out);
  }

  const auto start = std::chrono::steady_clock::now();
  std::int64_t dropped = 0;
  // Full sentences are 3 % of the pairs but what the translator is tested on: --sentence-repeat N
  // lists each one N times (the shuffle spreads the copies over the epoch).
  const int sentence_repeat = parse_positive("sentence-repeat", o.get("sentence-repeat", "1"));
  // A language model sees each English string once (many German entries share a translation).
  auto english_once = [&](std::vector<TranslationPair> pairs) {
    if (seq2seq) return pairs;
    std::set<std::string> seen;
    std::vector<TranslationPair> unique;
    for (TranslationPair& p : pairs) {
      if (seen.insert(p.en).second) unique.push_back(std::move(p));
    }
    return unique;
  };
  std::vector<TranslationPair> train_pairs = english_once(read_pairs_tsv((fs::path(data) / "train.tsv").string()));
  if (sentence_repeat > 1) {
    const std::size_t n = train_pairs.size();
    for (int r = 1; r < sentence_repeat; ++r) {
      for (std::size_t i = 0; i < n; ++i) {
        if (train_pairs[i].kind == PairKind::sentence) train_pairs.push_back(train_pairs[i]);
      }
    }
  }
  const std::vector<train::Example> train_set = tokenize_pairs(train_pairs, spm, seq2seq, config.max_length, &dropped);
  std::int64_t dropped_valid = 0;
  std::vector<train::Example> valid_set =
      tokenize_pairs(english_once(read_pairs_tsv((fs::path(data) / "valid.tsv").string())), spm, seq2seq, config.max_length,
                     &dropped_valid);
  // Every k-th validation example, so that an evaluation costs seconds, not a minute.
  const std::size_t valid_max = static_cast<std::size_t>(parse_positive("valid-max", o.get("valid-max", "4000")));
  if (valid_set.size() > valid_max) {
    const std::size_t stride = (valid_set.size() + valid_max - 1) / valid_max;
    std::vector<train::Example> every;
    for (std::size_t i = 0; i < valid_set.size(); i += stride) every.push_back(std::move(valid_set[i]));
    valid_set = std::move(every);
  }
  std::int64_t train_tokens = 0;
  for (const train::Example& e : train_set) train_tokens += train::example_tokens(e, seq2seq);
  std::cerr << "train: " << train_set.size() << " examples (" << train_tokens << " tokens, " << dropped
            << " longer than " << config.max_length << " dropped), " << valid_set.size() << " validation examples; "
            << omp_get_max_threads() << " threads; tokenized in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";

  fs::create_directories(out);
  fs::copy_file(spm_path, fs::path(out) / "tokenizer.model", fs::copy_options::overwrite_existing);
  auto on_progress = [&](const train::TrainProgress& p) {
    char line[320];
    std::snprintf(line, sizeof line,
                  "step %lld/%lld  epoch %lld  loss %.3f  ppl %.2f  lr %.2e  |g| %.2f  %.0f tok/s  elapsed %s  ETA %s",
                  static_cast<long long>(p.step), static_cast<long long>(p.max_steps), static_cast<long long>(p.epoch),
                  p.loss, std::exp(p.nll), p.lr, p.grad_norm, p.tokens_per_s, clock_text(p.elapsed_s).c_str(),
                  clock_text(p.eta_s).c_str());
    std::cerr << line;
    if (p.valid_nll >= 0) {
      std::snprintf(line, sizeof line, "  valid ppl %.2f acc %.3f", std::exp(p.valid_nll), p.valid_accuracy);
      std::cerr << line;
    }
    std::cerr << (p.checkpointed ? "  [checkpoint]\n" : "\n") << std::flush;
  };
  const train::TrainResult r = train::train_model(config, options, train_set, valid_set, on_progress, report_every);
  std::printf("trained %s model: %.2fM parameters, %lld steps in %s, %.0f tokens/s; valid ppl %.2f, accuracy %.3f -> %s\n",
              config.kind.c_str(), static_cast<double>(r.parameters) / 1e6, static_cast<long long>(r.steps),
              clock_text(r.seconds).c_str(), r.tokens_per_s, std::exp(r.final_valid_nll), r.final_valid_accuracy,
              out.c_str());
  return 0;
}

}  // namespace attnlab::cli
