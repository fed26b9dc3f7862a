#include "bench/activation_memory.h"

#include "attention/registry.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/timer.h"
#include "layers/reversible.h"

namespace attnlab {

std::vector<DepthMemoryPoint> measure_activation_memory(const DepthMemoryOptions& o) {
  if (o.max_layers < 1 || o.max_layers > 96) throw ParamError("layers: an integer in [1, 96]");
  if (o.length < 1 || o.length > 65536) throw ParamError("length: an integer in [1, 65536]");
  if (o.d_model < 2 || o.heads < 1 || o.d_model % o.heads != 0) {
    throw ParamError("d_model must be divisible by heads (got " + std::to_string(o.d_model) + " and " +
                     std::to_string(o.heads) + ")");
  }
  const Attention& variant = Registry::builtin().get(o.variant);
  const Params defaults(variant.spec().params);
  AttentionOptions attention;
  attention.variant = &variant;
  attention.params = o.params ? o.params : &defaults;
  attention.seed = o.seed;
  attention.cancel = o.cancel;

  Tensor input({o.length, o.d_model});
  Rng(Rng::derive(o.seed, "input")).fill_normal(input, 0.0f, 1.0f);
  const RowMatrix x = input.matrix();
  const double scale = std::max(1e-30, static_cast<double>(x.cwiseAbs().maxCoeff()));

  std::vector<DepthMemoryPoint> points;
  for (int n = 1; n <= o.max_layers; ++n) {
    const ReversibleStack stack = ReversibleStack::seeded(n, o.d_model, o.heads, o.d_ff, o.seed);
    DepthMemoryPoint p;
    p.layers = n;
    {
      ActivationTape tape;
      Timer t;
      standard_forward(stack.blocks(), x, attention, &tape);
      p.standard_ms = t.elapsed_ms();
      p.standard_bytes = tape.bytes();
    }
    {
      ActivationTape tape;
      Timer t;
      const TwoStreams y = stack.forward(x, attention, &tape);
      p.reversible_ms = t.elapsed_ms();
      p.reversible_bytes = tape.bytes();
      const TwoStreams back = stack.reconstruct_inputs(y, attention);
      const double error = std::max((back.x1 - x).cwiseAbs().maxCoeff(), (back.x2 - x).cwiseAbs().maxCoeff());
      p.reconstruction_error = error / scale;
    }
    points.push_back(p);
    if (o.on_point) o.on_point(points.back());
    if (o.progress) o.progress(n, o.max_layers);
  }
  return points;
}

}  // namespace attnlab
