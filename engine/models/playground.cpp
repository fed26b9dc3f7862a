#include "models/playground.h"

#include "attention/registry.h"
#include "core/error.h"
#include "core/timer.h"

namespace attnlab {
namespace {

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

// Runs exact softmax on the inputs of every traced attention call and compares.
class ExactComparisonProbe final : public AttentionProbe {
 public:
  ExactComparisonProbe(int topk, std::size_t layers, int only_layer)
      : topk_(topk), only_layer_(only_layer), comparisons_(layers) {}

  void observe(std::int64_t layer, const AttentionInput& input, const Tensor& output, const Trace* trace) override {
    if (!trace || layer < 0 || static_cast<std::size_t>(layer) >= comparisons_.size()) return;
    if (only_layer_ >= 0 && layer != only_layer_) return;
    const Attention& softmax = Registry::builtin().get("softmax");
    const AttentionInput exact_input{input.q, input.k, input.v, input.causal, input.key_padding, nullptr, input.seed,
                                     input.cancel};
    Trace exact;
    const Tensor exact_out = run_attention(softmax, exact_input, &exact);
    LayerComparison& c = comparisons_[static_cast<std::size_t>(layer)];
    HeadwiseMetrics metrics = compare_attention_by_head(exact.weights, exact_out, trace->weights, output, topk_);
    c.per_head = std::move(metrics.per_head);
    c.all_heads = metrics.all_heads;
    c.row_kl = std::move(metrics.row_kl);
    c.row_topk_overlap = std::move(metrics.row_topk_overlap);
    c.exact_weights = std::move(exact.weights);
  }

  std::vector<LayerComparison> take() { return std::move(comparisons_); }

 private:
  int topk_;
  int only_layer_;
  std::vector<LayerComparison> comparisons_;
};

}  // namespace

ModelConfig resolve_model_config(const std::string& model) {
  if (looks_like_path(model)) return ModelConfig::load(model);
  return builtin_model(model);
}

PlaygroundResultPtr Playground::run(const PlaygroundRequest& request, const CancelToken* cancel) {
  const Attention& variant = Registry::builtin().get(request.variant);
  Params params(variant.spec().params);
  params.set_from_json(request.params);

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

}  // namespace attnlab
