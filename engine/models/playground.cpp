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
  const std::string key = request.model + "\n" + request.weights + "\n" + std::to_string(request.weight_seed);
  if (cached_.key != key || !cached_.encoder) {
    const ModelConfig config = resolve_model_config(request.model);
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
  result->device = compute_device();
  return result;
}

}  // namespace attnlab
