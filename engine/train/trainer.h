// The training loop: batches by token count, AdamW, checkpoints and resume, validation, progress.
//
// Data are tokenized examples (ids from the SentencePiece model): a translation example has a
// source and a target; a language-model example only a target. Each epoch shuffles the examples
// with a generator seeded by (seed, epoch) and packs them in that order into batches of at most
// `batch_tokens` tokens (source + target + BOS/EOS), so a run is fully determined by the seed, the
// data, the options and the thread count. A checkpoint stores the weights, both AdamW moments
// and the position (step, epoch, batch), so resuming continues exactly where it stopped: the
// resumed run's weights equal those of an uninterrupted one (tests/engine/test_trainer.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "train/optimizer.h"
#include "train/transformer.h"

namespace attnlab::train {

struct Example {
  std::vector<std::int32_t> src;  // no BOS/EOS (EOS is appended when batched); empty for a language model
  std::vector<std::int32_t> tgt;  // no BOS/EOS
};

// Packs examples[indices[first..]] into one batch: source + EOS; BOS + target / target + EOS.
Batch make_batch(const std::vector<Example>& examples, const std::vector<std::int64_t>& indices,
                 const TransformerConfig& config);
// Tokens an example occupies in a batch (source + EOS + BOS + target).
std::int64_t example_tokens(const Example& e, bool seq2seq);
// The epoch's order: a permutation of [0, n) from (seed, epoch), cut into batches of at most
// `batch_tokens` tokens (an example longer than that forms a batch alone).
std::vector<std::vector<std::int64_t>> epoch_batches(const std::vector<Example>& examples, std::int64_t batch_tokens,
                                                     bool seq2seq, std::uint64_t seed, std::int64_t epoch);

// Data parallelism over the machine's threads: a batch is split into contiguous parts of about
// equal token counts, one per model replica, each run on its own thread with single-threaded
// matrix products (Eigen's own threading syncs too often for these sizes); the replicas'
// gradients are summed into the master's in replica order. The result depends on the worker
// count (summation order) but not on timing, so training stays deterministic for a thread count.
class ParallelRunner {
 public:
  ParallelRunner(Transformer<float>& master, int workers);
  int workers() const { return static_cast<int>(replicas_.size()) + 1; }
  const TransformerConfig& config() const { return master_.config(); }
  // Loss sums of examples[indices]; with `backward` the master's grads hold the gradient of
  // scale · Σ loss over all parts.
  CrossEntropySums run(const std::vector<Example>& examples, const std::vector<std::int64_t>& indices, bool backward,
                       double scale);
  // Copies the master's weights to the replicas (after every update or load).
  void sync();

 private:
  Transformer<float>& master_;
  std::vector<std::unique_ptr<Transformer<float>>> replicas_;
};

struct TrainOptions {
  OptimizerOptions optimizer;
  std::int64_t batch_tokens = 6000;
  std::int64_t max_steps = 10000;   // stop after this many updates
  double max_minutes = 0;           // and/or after this long (0 = no limit; makes the stop point timing-dependent)
  std::uint64_t seed = 1;           // weights and data order
  std::int64_t eval_every = 500;    // validation loss every N steps (0 = only at the end)
  std::int64_t checkpoint_every = 500;
  std::string out_dir;              // checkpoint.safetensors, model.safetensors, config.json, train_log.jsonl
  bool resume = false;              // continue from out_dir/checkpoint.safetensors

  void validate() const;
  nlohmann::json to_json() const;
};

struct TrainProgress {
  std::int64_t step = 0, max_steps = 0, epoch = 0;
  double loss = 0;        // mean label-smoothed loss per target token over the last report window
  double nll = 0;         // mean −log p(target) over the window (perplexity = exp(nll))
  double lr = 0, grad_norm = 0;
  double tokens_per_s = 0;  // all tokens (source + target) processed per second, over the window
  double elapsed_s = 0, eta_s = 0;
  double valid_nll = -1;  // set on evaluation steps
  double valid_accuracy = -1;
  bool checkpointed = false;
};

struct TrainResult {
  std::int64_t steps = 0;
  double seconds = 0;
  double tokens_per_s = 0;  // whole run
  double final_valid_nll = 0, final_valid_accuracy = 0;
  std::int64_t parameters = 0;
};

// Mean −log p and accuracy over the examples (forward only, batches of `batch_tokens`).
CrossEntropySums evaluate(ParallelRunner& runner, const std::vector<Example>& examples, std::int64_t batch_tokens);
CrossEntropySums evaluate(Transformer<float>& model, const std::vector<Example>& examples, std::int64_t batch_tokens);

// Trains a model from scratch (or from out_dir's checkpoint with options.resume) and writes
// out_dir/model.safetensors + config.json at the end. `on_progress` is called every `report_every`
// steps, at evaluations and at the end. Throws ParamError for bad options, IoError for files,
// CancelledError when cancelled (after writing a checkpoint, so the run can be resumed).
TrainResult train_model(const TransformerConfig& config, const TrainOptions& options,
                        const std::vector<Example>& train_set, const std::vector<Example>& valid_set,
                        const std::function<void(const TrainProgress&)>& on_progress, std::int64_t report_every,
                        const CancelToken* cancel = nullptr);

// model.safetensors (named float32 weights, metadata: the config) ↔ a model.
void save_weights(const Transformer<float>& model, const std::string& path, const nlohmann::json& metadata);
// Also reads the weights of a training checkpoint. Throws FormatError when a tensor is missing
// or has another shape than the config says.
void load_weights(Transformer<float>& model, const std::string& path);

}  // namespace attnlab::train
