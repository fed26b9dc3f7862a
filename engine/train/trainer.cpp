#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <omp.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/safetensors.h"

namespace attnlab::train {

// ---- batches --------------------------------------------------------------------------------------

std::int64_t example_tokens(const Example& e, bool seq2seq) {
  return static_cast<std::int64_t>(e.tgt.size()) + 1 + (seq2seq ? static_cast<std::int64_t>(e.src.size()) + 1 : 0);
}

Batch make_batch(const std::vector<Example>& examples, const std::vector<std::int64_t>& indices,
                 const TransformerConfig& config) {
  Batch batch;
  const bool seq2seq = config.has_encoder();
  for (const std::int64_t i : indices) {
    const Example& e = examples[static_cast<std::size_t>(i)];
    if (seq2seq) {
      batch.src.insert(batch.src.end(), e.src.begin(), e.src.end());
      batch.src.push_back(config.eos_id);
      batch.src_layout.add(static_cast<std::int64_t>(e.src.size()) + 1);
    }
    batch.tgt_in.push_back(config.bos_id);
    batch.tgt_in.insert(batch.tgt_in.end(), e.tgt.begin(), e.tgt.end());
    batch.tgt_out.insert(batch.tgt_out.end(), e.tgt.begin(), e.tgt.end());
    batch.tgt_out.push_back(config.eos_id);
    batch.tgt_layout.add(static_cast<std::int64_t>(e.tgt.size()) + 1);
  }
  return batch;
}

std::vector<std::vector<std::int64_t>> epoch_batches(const std::vector<Example>& examples, std::int64_t batch_tokens,
                                                     bool seq2seq, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::int64_t> order(examples.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  Rng rng(Rng::derive(Rng::derive(seed, "data order"), static_cast<std::uint64_t>(epoch)));
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  std::vector<std::vector<std::int64_t>> batches;
  std::vector<std::int64_t> current;
  std::int64_t tokens = 0;
  for (const std::int64_t i : order) {
    const std::int64_t n = example_tokens(examples[static_cast<std::size_t>(i)], seq2seq);
    if (!current.empty() && tokens + n > batch_tokens) {
      batches.push_back(std::move(current));
      current.clear();
      tokens = 0;
    }
    current.push_back(i);
    tokens += n;
  }
  if (!current.empty()) batches.push_back(std::move(current));
  return batches;
}

// ---- options --------------------------------------------------------------------------------------

void TrainOptions::validate() const {
  optimizer.validate();
  if (batch_tokens < 16 || batch_tokens > 1000000) {
    throw ParamError("batch_tokens=" + std::to_string(batch_tokens) + ": allowed 16..1000000");
  }
  if (max_steps < 1) throw ParamError("steps=" + std::to_string(max_steps) + ": must be at least 1");
  if (max_minutes < 0) throw ParamError("max_minutes must be >= 0");
  if (eval_every < 0 || checkpoint_every < 0) throw ParamError("eval_every and checkpoint_every must be >= 0");
  if (out_dir.empty()) throw ParamError("training needs an output folder");
}

nlohmann::json TrainOptions::to_json() const {
  return {{"optimizer", optimizer.to_json()}, {"batch_tokens", batch_tokens}, {"max_steps", max_steps},
          {"max_minutes", max_minutes},      {"seed", seed},                 {"eval_every", eval_every},
          {"checkpoint_every", checkpoint_every}};
}

// ---- weights and checkpoints ----------------------------------------------------------------------

namespace {

Tensor entry_tensor(const ParamEntry& e, const float* base) {
  return Tensor::from_data({e.rows, e.cols}, base + e.offset, static_cast<std::size_t>(e.size()));
}

void read_entry(const SafetensorsFile& file, const std::string& key, const ParamEntry& e, float* base,
                const std::string& path) {
  const auto it = file.tensors.find(key);
  if (it == file.tensors.end()) throw FormatError(path + ": tensor '" + key + "' is missing");
  const Tensor& t = it->second;
  if (t.size() != e.size() || (t.rank() == 2 && (t.dim(0) != e.rows || t.dim(1) != e.cols))) {
    throw FormatError(path + ": tensor '" + key + "' has shape " + t.shape_string() + " but the config needs [" +
                      std::to_string(e.rows) + ", " + std::to_string(e.cols) + "]");
  }
  std::copy(t.data(), t.data() + t.size(), base + e.offset);
}

struct Position {
  std::int64_t step = 0, epoch = 0, batch = 0;
  double seconds = 0;  // training time before this run (for throughput over a resumed run)
  std::int64_t tokens = 0;
};

void save_checkpoint(const std::string& path, Transformer<float>& model, AdamW& adam, const Position& pos,
                     const TrainOptions& options) {
  SafetensorsFile file;
  for (const ParamEntry& e : model.entries()) {
    file.tensors.emplace("param/" + e.name, entry_tensor(e, model.values().data()));
    file.tensors.emplace("adam_m/" + e.name, entry_tensor(e, adam.first_moment().data()));
    file.tensors.emplace("adam_v/" + e.name, entry_tensor(e, adam.second_moment().data()));
  }
  file.metadata["config"] = model.config().to_json().dump();
  file.metadata["options"] = options.to_json().dump();
  file.metadata["position"] = nlohmann::json{{"step", pos.step},
                                             {"epoch", pos.epoch},
                                             {"batch", pos.batch},
                                             {"seconds", pos.seconds},
                                             {"tokens", pos.tokens}}
                                  .dump();
  write_safetensors(path, file);
}

Position load_checkpoint(const std::string& path, Transformer<float>& model, AdamW& adam, const TrainOptions& options) {
  const SafetensorsFile file = read_safetensors(path);
  const auto meta = [&](const char* key) {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end()) throw FormatError(path + ": not a training checkpoint (no '" + key + "' metadata)");
    try {
      return nlohmann::json::parse(it->second);
    } catch (const nlohmann::json::exception&) {
      throw FormatError(path + ": metadata '" + key + "' is not JSON");
    }
  };
  if (meta("config") != model.config().to_json()) {
    throw ParamError(path + ": the checkpoint was trained with another model config; resume with the same one");
  }
  const nlohmann::json saved_options = meta("options");
  if (saved_options.value("seed", options.seed) != options.seed ||
      saved_options.value("batch_tokens", options.batch_tokens) != options.batch_tokens) {
    throw ParamError(path + ": the checkpoint used another seed or batch size; resume with the same ones");
  }
  for (const ParamEntry& e : model.entries()) {
    read_entry(file, "param/" + e.name, e, model.values().data(), path);
    read_entry(file, "adam_m/" + e.name, e, adam.first_moment().data(), path);
    read_entry(file, "adam_v/" + e.name, e, adam.second_moment().data(), path);
  }
  const nlohmann::json p = meta("position");
  Position pos;
  try {
    pos.step = p.at("step").get<std::int64_t>();
    pos.epoch = p.at("epoch").get<std::int64_t>();
    pos.batch = p.at("batch").get<std::int64_t>();
    pos.seconds = p.value("seconds", 0.0);
    pos.tokens = p.value("tokens", std::int64_t{0});
  } catch (const nlohmann::json::exception&) {
    throw FormatError(path + ": checkpoint position is malformed");
  }
  return pos;
}

}  // namespace

void save_weights(const Transformer<float>& model, const std::string& path, const nlohmann::json& metadata) {
  SafetensorsFile file;
  for (const ParamEntry& e : model.entries()) file.tensors.emplace(e.name, entry_tensor(e, model.values().data()));
  file.metadata["config"] = model.config().to_json().dump();
  for (const auto& [key, value] : metadata.items()) file.metadata[key] = value.is_string() ? value.get<std::string>() : value.dump();
  write_safetensors(path, file);
}

void load_weights(Transformer<float>& model, const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  // A training checkpoint names the weights "param/NAME" (beside the optimizer's moments).
  const bool checkpoint = !file.tensors.count(model.entries().front().name) &&
                          file.tensors.count("param/" + model.entries().front().name);
  for (const ParamEntry& e : model.entries()) {
    read_entry(file, (checkpoint ? "param/" : "") + e.name, e, model.values().data(), path);
  }
}

// ---- data parallelism -----------------------------------------------------------------------------

ParallelRunner::ParallelRunner(Transformer<float>& master, int workers) : master_(master) {
  for (int r = 1; r < std::max(1, workers); ++r) {
    replicas_.push_back(std::make_unique<Transformer<float>>(master.config(), 0));
  }
  sync();
}

void ParallelRunner::sync() {
  for (auto& r : replicas_) r->values() = master_.values();
}

namespace {

void add_sums(CrossEntropySums& total, const CrossEntropySums& s) {
  total.loss += s.loss;
  total.nll += s.nll;
  total.tokens += s.tokens;
  total.correct += s.correct;
}

}  // namespace

CrossEntropySums ParallelRunner::run(const std::vector<Example>& examples, const std::vector<std::int64_t>& indices,
                                     bool backward, double scale) {
  const int workers = this->workers();
  const bool seq2seq = master_.config().has_encoder();
  // Contiguous parts of about total/workers tokens; part 0 always gets the first example.
  std::vector<std::vector<std::int64_t>> parts(static_cast<std::size_t>(workers));
  std::int64_t total = 0;
  for (const std::int64_t i : indices) total += example_tokens(examples[static_cast<std::size_t>(i)], seq2seq);
  std::int64_t seen = 0;
  for (const std::int64_t i : indices) {
    const std::int64_t part = std::min<std::int64_t>(workers - 1, seen * workers / std::max<std::int64_t>(total, 1));
    parts[static_cast<std::size_t>(part)].push_back(i);
    seen += example_tokens(examples[static_cast<std::size_t>(i)], seq2seq);
  }
  std::vector<CrossEntropySums> sums(static_cast<std::size_t>(workers));
  std::vector<std::string> errors(static_cast<std::size_t>(workers));
#pragma omp parallel for num_threads(workers) schedule(static, 1)
  for (int r = 0; r < workers; ++r) {
    if (parts[static_cast<std::size_t>(r)].empty()) continue;
    Transformer<float>& model = r == 0 ? master_ : *replicas_[static_cast<std::size_t>(r) - 1];
    try {
      sums[static_cast<std::size_t>(r)] =
          model.forward_backward(make_batch(examples, parts[static_cast<std::size_t>(r)], master_.config()), backward, scale);
    } catch (const std::exception& e) {  // exceptions must not leave an OpenMP region
      errors[static_cast<std::size_t>(r)] = e.what();
    }
  }
  for (const std::string& e : errors) {
    if (!e.empty()) throw Error(e);
  }
  CrossEntropySums out;
  for (const CrossEntropySums& s : sums) add_sums(out, s);
  if (backward) {
    if (parts[0].empty()) std::fill(master_.grads().begin(), master_.grads().end(), 0.0f);
    ParamArray<float>& g = master_.grads();
    const auto n = static_cast<std::int64_t>(g.size());
    for (std::size_t r = 1; r < parts.size(); ++r) {
      if (parts[r].empty()) continue;
      const ParamArray<float>& gr = replicas_[r - 1]->grads();
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) g[static_cast<std::size_t>(i)] += gr[static_cast<std::size_t>(i)];
    }
  }
  return out;
}

// ---- evaluation -----------------------------------------------------------------------------------

CrossEntropySums evaluate(Transformer<float>& model, const std::vector<Example>& examples, std::int64_t batch_tokens) {
  ParallelRunner runner(model, 1);
  return evaluate(runner, examples, batch_tokens);
}

CrossEntropySums evaluate(ParallelRunner& runner, const std::vector<Example>& examples, std::int64_t batch_tokens) {
  CrossEntropySums total;
  std::vector<std::int64_t> current;
  std::int64_t tokens = 0;
  const bool seq2seq = runner.config().has_encoder();
  auto flush = [&] {
    if (current.empty()) return;
    const CrossEntropySums s = runner.run(examples, current, false, 1.0);
    add_sums(total, s);
    current.clear();
    tokens = 0;
  };
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const std::int64_t n = example_tokens(examples[i], seq2seq);
    if (tokens + n > batch_tokens) flush();
    current.push_back(static_cast<std::int64_t>(i));
    tokens += n;
  }
  flush();
  return total;
}

// ---- the loop -------------------------------------------------------------------------------------

TrainResult train_model(const TransformerConfig& config, const TrainOptions& options,
                        const std::vector<Example>& train_set, const std::vector<Example>& valid_set,
                        const std::function<void(const TrainProgress&)>& on_progress, std::int64_t report_every,
                        const CancelToken* cancel) {
  options.validate();
  config.validate();
  if (train_set.empty()) throw ParamError("the training set is empty");
  const bool seq2seq = config.has_encoder();
  for (std::size_t i = 0; i < train_set.size(); ++i) {
    const Example& e = train_set[i];
    if (static_cast<std::int64_t>(std::max(e.src.size(), e.tgt.size())) + 1 > config.max_length) {
      throw ParamError("training example " + std::to_string(i) + " is longer than max_length=" +
                       std::to_string(config.max_length) + " tokens; filter long examples first");
    }
    if (seq2seq && e.src.empty()) throw ParamError("training example " + std::to_string(i) + " has an empty source");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (!std::filesystem::is_directory(options.out_dir)) {
    throw IoError("cannot create the output folder '" + options.out_dir + "'");
  }
  const std::string checkpoint_path = (std::filesystem::path(options.out_dir) / "checkpoint.safetensors").string();
  const std::string log_path = (std::filesystem::path(options.out_dir) / "train_log.jsonl").string();

  Transformer<float> model(config, Rng::derive(options.seed, "weights"));
  AdamW adam(options.optimizer, model.values().size());
  Position pos;
  if (options.resume) {
    if (!std::filesystem::exists(checkpoint_path)) throw IoError("no checkpoint to resume from: " + checkpoint_path);
    pos = load_checkpoint(checkpoint_path, model, adam, options);
  }
  ParallelRunner runner(model, omp_get_max_threads());
  // The config first, so that the folder loads (from its checkpoint) while training runs.
  write_file_atomically((std::filesystem::path(options.out_dir) / "config.json").string(),
                        [&](std::ostream& os) { os << model.config().to_json().dump(2) << "\n"; });
  std::ofstream log(log_path, options.resume ? std::ios::app : std::ios::trunc);
  if (!log) throw IoError("cannot write " + log_path);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  std::vector<std::vector<std::int64_t>> batches = epoch_batches(train_set, options.batch_tokens, seq2seq, options.seed, pos.epoch);
  const std::int64_t first_step = pos.step;

  CrossEntropySums window;
  std::int64_t window_tokens = 0;
  auto window_start = Clock::now();
  double last_norm = 0;

  TrainProgress last_report;
  last_report.step = -1;
  auto report = [&](bool evaluate_now, bool checkpointed) {
    TrainProgress p;
    p.step = pos.step;
    p.max_steps = options.max_steps;
    p.epoch = pos.epoch;
    p.loss = window.tokens ? window.loss / static_cast<double>(window.tokens) : 0;
    p.nll = window.tokens ? window.nll / static_cast<double>(window.tokens) : 0;
    p.lr = learning_rate(options.optimizer, std::max<std::int64_t>(pos.step, 1));
    p.grad_norm = last_norm;
    const double window_s = seconds_since(window_start);
    p.elapsed_s = pos.seconds + seconds_since(start);
    // An empty window (the final report right after a periodic one): the whole run's rate.
    p.tokens_per_s = window_tokens > 0 && window_s > 0 ? static_cast<double>(window_tokens) / window_s
                                                       : static_cast<double>(pos.tokens) / std::max(1e-9, p.elapsed_s);
    const double per_step = seconds_since(start) / static_cast<double>(std::max<std::int64_t>(1, pos.step - first_step));
    p.eta_s = per_step * static_cast<double>(options.max_steps - pos.step);
    if (options.max_minutes > 0) p.eta_s = std::min(p.eta_s, std::max(0.0, options.max_minutes * 60 - seconds_since(start)));
    if (evaluate_now && !valid_set.empty()) {
      const CrossEntropySums v = evaluate(runner, valid_set, options.batch_tokens);
      p.valid_nll = v.nll / static_cast<double>(std::max<std::int64_t>(v.tokens, 1));
      p.valid_accuracy = static_cast<double>(v.correct) / static_cast<double>(std::max<std::int64_t>(v.tokens, 1));
    }
    p.checkpointed = checkpointed;
    nlohmann::json line = {{"step", p.step}, {"epoch", p.epoch}, {"loss", p.loss}, {"nll", p.nll},
                           {"lr", p.lr},     {"grad_norm", p.grad_norm}, {"tokens_per_s", p.tokens_per_s},
                           {"elapsed_s", p.elapsed_s}};
    if (p.valid_nll >= 0) {
      line["valid_nll"] = p.valid_nll;
      line["valid_accuracy"] = p.valid_accuracy;
    }
    log << line.dump() << "\n" << std::flush;
    if (on_progress) on_progress(p);
    last_report = p;
    window = CrossEntropySums{};
    window_tokens = 0;
    window_start = Clock::now();
    return p;
  };

  auto checkpoint = [&] {
    const double now = seconds_since(start);  // stored as the total; undone so the live clock continues
    pos.seconds += now;
    save_checkpoint(checkpoint_path, model, adam, pos, options);
    pos.seconds -= now;
  };

  while (pos.step < options.max_steps) {
    if (cancel && cancel->cancelled()) {
      checkpoint();
      throw CancelledError();
    }
    if (options.max_minutes > 0 && seconds_since(start) > options.max_minutes * 60) break;
    if (pos.batch >= static_cast<std::int64_t>(batches.size())) {
      ++pos.epoch;
      pos.batch = 0;
      batches = epoch_batches(train_set, options.batch_tokens, seq2seq, options.seed, pos.epoch);
    }
    const std::vector<std::int64_t>& indices = batches[static_cast<std::size_t>(pos.batch)];
    std::int64_t target_tokens = 0, batch_tokens = 0;
    for (const std::int64_t i : indices) {
      target_tokens += static_cast<std::int64_t>(train_set[static_cast<std::size_t>(i)].tgt.size()) + 1;
      batch_tokens += example_tokens(train_set[static_cast<std::size_t>(i)], seq2seq);
    }
    const CrossEntropySums s = runner.run(train_set, indices, true, 1.0 / static_cast<double>(target_tokens));
    last_norm = adam.step(model.values(), model.grads(), model.entries(), pos.step + 1);
    runner.sync();
    ++pos.step;
    ++pos.batch;
    window.loss += s.loss;
    window.nll += s.nll;
    window.tokens += s.tokens;
    window_tokens += batch_tokens;
    pos.tokens += batch_tokens;
    const bool eval_now = options.eval_every > 0 && pos.step % options.eval_every == 0;
    const bool ckpt_now = options.checkpoint_every > 0 && pos.step % options.checkpoint_every == 0;
    if (ckpt_now) checkpoint();
    if (eval_now || ckpt_now || (report_every > 0 && pos.step % report_every == 0)) report(eval_now, ckpt_now);
  }

  checkpoint();
  // The last step's own report may already hold the final evaluation.
  const TrainProgress last = last_report.step == pos.step && last_report.valid_nll >= 0 ? last_report : report(true, true);
  TrainResult result;
  result.steps = pos.step;
  result.seconds = pos.seconds + seconds_since(start);
  result.tokens_per_s = static_cast<double>(pos.tokens) / std::max(1e-9, result.seconds);
  result.final_valid_nll = last.valid_nll;
  result.final_valid_accuracy = last.valid_accuracy;
  result.parameters = model.parameter_count();
  nlohmann::json meta = {{"steps", result.steps},
                         {"training_seconds", result.seconds},
                         {"tokens_per_s", result.tokens_per_s},
                         {"valid_nll", result.final_valid_nll},
                         {"options", options.to_json()}};
  save_weights(model, (std::filesystem::path(options.out_dir) / "model.safetensors").string(), meta);

  return result;
}

}  // namespace attnlab::train
