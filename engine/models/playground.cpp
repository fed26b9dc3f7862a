#include "models/playground.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "attention/registry.h"
#include "core/error.h"
#include "core/timer.h"
#include "decode/translator.h"

#ifndef ATTNLAB_ASSETS_DIR
#define ATTNLAB_ASSETS_DIR "assets"
#endif

namespace attnlab {
namespace {

constexpr const char* kHowToGetModels = "create it with installer/train-models.sh (see docs/translation.md)";
constexpr const char* kBosLabel = "<s>";
constexpr const char* kEosLabel = "</s>";

bool looks_like_path(const std::string& s) {
  return s.find('/') != std::string::npos || (s.size() > 5 && s.compare(s.size() - 5, 5, ".json") == 0);
}

DeviceInfo compute_device() {
  DeviceInfo cpu = select_device(DevicePreference::Cpu);
  const DeviceInfo probe = select_device(DevicePreference::Auto);
  if (probe.kind == DeviceKind::Cuda) {
    cpu.reason = "CUDA device " + probe.name + " present; model playground runs on the CPU engine";
  } else {
    cpu.reason = probe.reason;
  }
  return cpu;
}

// Exact softmax on the very q, k, v (mask, padding) a variant ran on, and the metrics between them.
LayerComparison compare_with_exact(const AttentionInput& input, const Tensor& output, const Trace& trace, int topk) {
  const Attention& softmax = Registry::builtin().get("softmax");
  const AttentionInput exact_input{input.q, input.k, input.v, input.causal, input.key_padding, nullptr, input.seed,
                                   input.cancel};
  Trace exact;
  const Tensor exact_out = run_attention(softmax, exact_input, &exact);
  LayerComparison c;
  HeadwiseMetrics metrics = compare_attention_by_head(exact.weights, exact_out, trace.weights, output, topk);
  c.per_head = std::move(metrics.per_head);
  c.all_heads = metrics.all_heads;
  c.row_kl = std::move(metrics.row_kl);
  c.row_topk_overlap = std::move(metrics.row_topk_overlap);
  c.exact_weights = std::move(exact.weights);
  return c;
}

// Runs exact softmax on the inputs of every traced attention call and compares.
class ExactComparisonProbe final : public AttentionProbe {
 public:
  ExactComparisonProbe(int topk, std::size_t layers, int only_layer)
      : topk_(topk), only_layer_(only_layer), comparisons_(layers) {}

  void observe(std::int64_t layer, const AttentionInput& input, const Tensor& output, const Trace* trace) override {
    if (!trace || layer < 0 || static_cast<std::size_t>(layer) >= comparisons_.size()) return;
    if (only_layer_ >= 0 && layer != only_layer_) return;
    comparisons_[static_cast<std::size_t>(layer)] = compare_with_exact(input, output, *trace, topk_);
  }

  std::vector<LayerComparison> take() { return std::move(comparisons_); }

 private:
  int topk_;
  int only_layer_;
  std::vector<LayerComparison> comparisons_;
};

// A trained model's self-attention layers: keeps each layer's trace and, when asked, its
// comparison with exact softmax on the same q, k, v.
class TrainedLayerProbe final : public AttentionProbe {
 public:
  TrainedLayerProbe(std::size_t layers, bool compare, int topk, int only_layer)
      : compare_(compare), topk_(topk), only_layer_(only_layer), traces_(layers), comparisons_(compare ? layers : 0) {}

  void observe(std::int64_t layer, const AttentionInput& input, const Tensor& output, const Trace* trace) override {
    if (!trace || layer < 0 || static_cast<std::size_t>(layer) >= traces_.size()) return;
    const auto i = static_cast<std::size_t>(layer);
    traces_[i] = *trace;
    if (compare_ && (only_layer_ < 0 || layer == only_layer_)) comparisons_[i] = compare_with_exact(input, output, *trace, topk_);
  }

  std::vector<Trace> take_traces() { return std::move(traces_); }
  std::vector<LayerComparison> take_comparisons() { return std::move(comparisons_); }

 private:
  bool compare_;
  int topk_;
  int only_layer_;
  std::vector<Trace> traces_;
  std::vector<LayerComparison> comparisons_;
};

train::TransformerConfig read_trained_config(const std::string& folder) {
  const std::string path = (std::filesystem::path(folder) / "config.json").string();
  std::ifstream in(path);
  if (!in) throw IoError("model folder '" + folder + "' has no config.json");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception&) {
    throw FormatError(path + ": not valid JSON");
  }
  return train::TransformerConfig::from_json(j);
}

// What the views and exports know of a model, for a trained one: its shape as a plain stack of the
// layers the playground runs (the translator's encoder layers, the LM's decoder layers).
ModelConfig trained_model_config(const std::string& name, const std::string& folder, const train::TransformerConfig& c) {
  ModelConfig m;
  m.name = name;
  m.vocab_size = static_cast<std::int32_t>(c.vocab);
  m.d_model = c.d_model;
  m.heads = c.heads;
  m.d_ff = c.d_ff;
  m.max_length = c.max_length;
  m.tokenizer = (std::filesystem::path(folder) / "tokenizer.model").string();
  m.layers = std::vector<LayerSpec>(static_cast<std::size_t>(c.has_encoder() ? c.encoder_layers : c.decoder_layers));
  m.description = c.has_encoder() ? "The trained translator's encoder on German text (non-causal, \"</s>\" last), from " + folder
                                  : "The trained English language model on \"<s>\" + the text (causal), from " + folder;
  return m;
}

// The folder's identity for the cache: its path and its files' sizes and modification times.
std::string folder_signature(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(folder, ec);
  std::string key = ec ? folder : canonical.string();
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.model"}) {
    const fs::path p = fs::path(folder) / name;
    std::error_code size_error, time_error;
    const std::uintmax_t size = fs::file_size(p, size_error);
    const fs::file_time_type time = fs::last_write_time(p, time_error);
    key += std::string("\n") + name + " " + (size_error ? "-" : std::to_string(size)) + " " +
           (time_error ? "-" : std::to_string(time.time_since_epoch().count()));
  }
  return key;
}

}  // namespace

bool is_trained_model_name(const std::string& model) { return model.rfind(kTrainedModelPrefix, 0) == 0; }

std::string default_trained_models_dir() {
  if (const char* env = std::getenv("ATTNLAB_MODELS"); env && *env) return env;
  // An installed program (cmake --install, the .deb) finds the models beside its bin/ folder;
  // one run from its build tree finds the source tree's assets/models.
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::filesystem::path installed = exe.parent_path().parent_path() / "share" / "attnlab" / "models";
    if (std::filesystem::is_directory(installed, ec)) return installed.string();
  }
  return std::string(ATTNLAB_ASSETS_DIR) + "/models";
}

std::string trained_model_folder(const std::string& model, const std::string& models_dir) {
  const std::string dir = models_dir.empty() ? default_trained_models_dir() : models_dir;
  const std::string name = is_trained_model_name(model) ? model.substr(std::string(kTrainedModelPrefix).size()) : model;
  if (name.empty() || name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos) {
    throw ParamError("model '" + model + "': expected trained:NAME with NAME a model folder in " + dir);
  }
  const std::string folder = (std::filesystem::path(dir) / name).string();
  if (!std::filesystem::is_directory(folder)) {
    throw IoError("model '" + model + "' is not installed: no folder " + folder + "; " + kHowToGetModels);
  }
  return folder;
}

std::vector<TrainedModelEntry> shipped_trained_models(const std::string& models_dir) {
  const std::pair<const char*, const char*> shipped[] = {
      {"de-en", "German text through the trained translator's encoder (non-causal)"},
      {"en-lm", "English text through the trained language model (causal)"}};
  const std::string dir = models_dir.empty() ? default_trained_models_dir() : models_dir;
  std::vector<TrainedModelEntry> out;
  for (const auto& [folder_name, role] : shipped) {
    TrainedModelEntry e;
    e.name = std::string(kTrainedModelPrefix) + folder_name;
    e.folder = (std::filesystem::path(dir) / folder_name).string();
    try {
      trained_model_folder(e.name, dir);
      for (const char* file : {"model.safetensors", "tokenizer.model"}) {
        if (!std::filesystem::is_regular_file(std::filesystem::path(e.folder) / file)) {
          throw IoError("model folder '" + e.folder + "' has no " + file + "; " + kHowToGetModels);
        }
      }
      const train::TransformerConfig c = read_trained_config(e.folder);
      e.available = true;
      e.summary = std::string(role) + ": " + c.kind + ", d_model " + std::to_string(c.d_model) + ", " +
                  std::to_string(c.heads) + " heads, " +
                  std::to_string(c.has_encoder() ? c.encoder_layers : c.decoder_layers) + " layers, " +
                  std::to_string(c.vocab) + " pieces";
    } catch (const Error& error) {
      e.summary = std::string(role) + "; " + error.what();
    }
    out.push_back(std::move(e));
  }
  return out;
}

ModelConfig resolve_model_config(const std::string& model, const std::string& trained_models_dir) {
  if (is_trained_model_name(model)) {
    const std::string folder = trained_model_folder(model, trained_models_dir);
    return trained_model_config(model, folder, read_trained_config(folder));
  }
  if (looks_like_path(model)) return ModelConfig::load(model);
  return builtin_model(model);
}

PlaygroundResultPtr Playground::run(const PlaygroundRequest& request, const CancelToken* cancel) {
  const Attention& variant = Registry::builtin().get(request.variant);
  Params params(variant.spec().params);
  params.set_from_json(request.params);
  if (request.model_config.is_null() && is_trained_model_name(request.model)) {
    return run_trained(request, variant, std::move(params), cancel);
  }

  auto result = std::make_shared<PlaygroundResult>();
  Timer timer;
  const bool inline_config = !request.model_config.is_null();
  const std::string key = (inline_config ? request.model_config.dump() : request.model) + "\n" + request.weights + "\n" +
                          std::to_string(request.weight_seed);
  if (cached_.key != key || !cached_.encoder) {
    const ModelConfig config = inline_config ? ModelConfig::from_json(request.model_config) : resolve_model_config(request.model);
    CachedModel fresh;
    fresh.key = key;
    fresh.tokenizer = make_tokenizer(config.tokenizer, config.vocab_size);
    if (request.weights.empty()) {
      fresh.encoder = std::make_shared<const Encoder>(Encoder::seeded(config, request.weight_seed));
      fresh.weights_source = "seeded (seed " + std::to_string(request.weight_seed) + ")";
    } else {
      fresh.encoder = std::make_shared<const Encoder>(Encoder::from_weights(config, read_safetensors(request.weights)));
      fresh.weights_source = request.weights;
    }
    cached_ = std::move(fresh);
    result->model_ms = timer.elapsed_ms();
  }
  check_cancelled(cancel);

  timer.restart();
  result->tokens = cached_.tokenizer->encode(request.text);
  if (result->tokens.empty()) throw ParamError("the text has no tokens; type a sentence");
  std::vector<std::int32_t> ids;
  ids.reserve(result->tokens.size());
  for (const Token& t : result->tokens) ids.push_back(t.id);

  EncoderRunOptions options;
  options.variant = &variant;
  options.params = &params;
  options.causal = request.causal;
  options.attention_seed = request.attention_seed;
  options.trace = true;
  options.cancel = cancel;
  const bool compare = request.compare_exact && request.variant != "softmax";
  if (compare) {
    // The exact weights double what the traces hold; refuse before computing what cannot fit.
    const ModelConfig& config = cached_.encoder->config();
    const auto L = static_cast<std::int64_t>(ids.size());
    const std::int64_t compared = request.compare_layer >= 0 ? 1 : config.layer_count();
    const std::int64_t bytes = (config.layer_count() + compared) * config.heads * L * L * static_cast<std::int64_t>(sizeof(float));
    if (L <= config.max_length && bytes > memory::allocation_limit_bytes()) {
      char need[32], have[32];
      memory::format_bytes(bytes, need, sizeof need);
      memory::format_bytes(memory::allocation_limit_bytes(), have, sizeof have);
      throw ResourceError("attention maps of " + std::to_string(L) + " tokens and their exact counterparts need " + need +
                          "; this machine allows " + have);
    }
  }
  ExactComparisonProbe probe(request.compare_topk, static_cast<std::size_t>(cached_.encoder->config().layer_count()),
                             request.compare_layer);
  if (compare) options.probe = &probe;
  memory::reset_peak();
  const std::int64_t before = memory::current_bytes();
  EncoderOutput output = cached_.encoder->forward(ids, options);
  result->peak_bytes = memory::peak_bytes() - before;
  result->forward_ms = timer.elapsed_ms();

  result->model = cached_.encoder->config();
  result->weights_source = cached_.weights_source;
  result->tokenizer = cached_.tokenizer->describe();
  result->variant = request.variant;
  result->params = std::move(params);
  result->causal = request.causal;
  result->weight_seed = request.weight_seed;
  result->attention_seed = request.attention_seed;
  result->layers = std::move(output.traces);
  for (const ModelLayer& layer : cached_.encoder->layers()) {
    result->layer_types.push_back(layer.spec().type);
    result->layer_variants.push_back(layer.variant_name(request.variant));
  }
  if (compare) result->comparisons = probe.take();
  result->device = compute_device();
  return result;
}

PlaygroundResultPtr Playground::run_trained(const PlaygroundRequest& request, const Attention& variant, Params params,
                                            const CancelToken* cancel) {
  const DeviceInfo device = compute_device();  // the machine, as for composed models (before the guard below)
  const SingleThreaded one_thread;  // at most max_length (≈64) tokens: a team wake-up costs more than it saves
  const std::string folder = trained_model_folder(request.model, request.trained_models_dir);
  if (!request.weights.empty()) {
    throw ParamError("model '" + request.model + "' brings its own weights (" + folder + "); a weights file does not apply");
  }
  auto result = std::make_shared<PlaygroundResult>();
  Timer timer;
  const std::string key = folder_signature(folder);
  if (cached_trained_.key != key || !cached_trained_.model) {
    cached_trained_ = CachedTrainedModel{key, TrainedModel::load(folder)};
    result->model_ms = timer.elapsed_ms();
  }
  const TrainedModel& model = *cached_trained_.model;
  const train::TransformerConfig& config = model.config();
  const bool translator = config.has_encoder();
  check_cancelled(cancel);

  timer.restart();
  result->tokens = model.tokenizer().encode(request.text);
  if (result->tokens.empty()) throw ParamError("the text has no tokens; type a sentence");
  if (translator) {
    result->tokens.push_back(Token{config.eos_id, kEosLabel, request.text.size(), request.text.size()});
  } else {
    result->tokens.insert(result->tokens.begin(), Token{config.bos_id, kBosLabel, 0, 0});
  }
  if (result->length() > config.max_length) {
    throw ParamError("the text has " + std::to_string(result->length()) + " tokens with " + (translator ? kEosLabel : kBosLabel) +
                     "; model '" + request.model + "' takes at most " + std::to_string(config.max_length));
  }
  std::vector<std::int32_t> ids;
  ids.reserve(result->tokens.size());
  for (const Token& t : result->tokens) ids.push_back(t.id);

  AttentionChoice choice;
  choice.seed = request.attention_seed;
  if (variant.spec().name != "softmax") {  // softmax: the trained path itself
    choice.variant = &variant;
    choice.params = params;
  }
  const bool compare = request.compare_exact && choice.variant;
  const std::size_t layers = static_cast<std::size_t>(translator ? config.encoder_layers : config.decoder_layers);
  TrainedLayerProbe probe(layers, compare, request.compare_topk, request.compare_layer);
  memory::reset_peak();
  const std::int64_t before = memory::current_bytes();
  if (translator) {
    encode(model, ids, choice, nullptr, cancel, &probe);
  } else {
    decode_all(model, nullptr, ids, choice, nullptr, nullptr, cancel, &probe);
  }
  result->peak_bytes = memory::peak_bytes() - before;
  result->forward_ms = timer.elapsed_ms();

  result->model = trained_model_config(request.model, folder, config);
  result->weights_source = folder;
  result->tokenizer = model.tokenizer().describe();
  result->variant = request.variant;
  result->params = std::move(params);
  result->causal = !translator;
  result->note = translator ? "trained translator encoder: never causal (the causal option does not apply)"
                            : "trained language model: always causal (the causal option does not apply)";
  result->weight_seed = request.weight_seed;
  result->attention_seed = request.attention_seed;
  result->layers = probe.take_traces();
  result->layer_types.assign(layers, "trained transformer");
  result->layer_variants.assign(layers, request.variant);
  if (compare) result->comparisons = probe.take_comparisons();
  result->device = device;
  return result;
}

}  // namespace attnlab
