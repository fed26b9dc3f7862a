#include "attention/attention.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"

namespace attnlab {
namespace {

void require_rank3(const Tensor& t, const char* name) {
  if (t.rank() != 3) {
    throw ShapeError(std::string(name) + " must have shape [heads, length, dim], got " + t.shape_string());
  }
}

void require_finite(const Tensor& t, const char* name) {
  const float* p = t.data();
  for (std::int64_t i = 0; i < t.size(); ++i) {
    if (!std::isfinite(p[i])) {
      throw ShapeError(std::string(name) + " holds a non-finite value (NaN or infinity) at flat index " +
                       std::to_string(i));
    }
  }
}

}  // namespace

void validate_attention_input(const AttentionInput& in) {
  require_rank3(in.q, "q");
  require_rank3(in.k, "k");
  require_rank3(in.v, "v");
  const auto heads = in.q.dim(0);
  if (in.k.dim(0) != heads || in.v.dim(0) != heads) {
    throw ShapeError("q, k and v must have the same number of heads; got q " + in.q.shape_string() +
                     ", k " + in.k.shape_string() + ", v " + in.v.shape_string());
  }
  if (in.q.dim(2) != in.k.dim(2)) {
    throw ShapeError("q and k must have the same head dim; got q " + in.q.shape_string() + ", k " +
                     in.k.shape_string());
  }
  if (in.k.dim(1) != in.v.dim(1)) {
    throw ShapeError("k and v must have the same length; got k " + in.k.shape_string() + ", v " +
                     in.v.shape_string());
  }
  if (heads == 0 || in.q.dim(1) == 0 || in.k.dim(1) == 0 || in.q.dim(2) == 0) {
    throw ShapeError("empty attention input: q " + in.q.shape_string() + ", k " + in.k.shape_string());
  }
  if (in.causal && in.q.dim(1) != in.k.dim(1)) {
    throw ShapeError("causal attention needs as many queries as keys; got q " + in.q.shape_string() +
                     ", k " + in.k.shape_string());
  }
  if (in.key_padding && static_cast<std::int64_t>(in.key_padding->size()) != in.k.dim(1)) {
    throw ShapeError("key padding mask has " + std::to_string(in.key_padding->size()) +
                     " entries but there are " + std::to_string(in.k.dim(1)) + " keys");
  }
  require_finite(in.q, "q");
  require_finite(in.k, "k");
  require_finite(in.v, "v");
}

Tensor run_attention(const Attention& variant, const AttentionInput& input, Trace* trace) {
  validate_attention_input(input);
  if (input.params) return variant.forward(input, trace);
  const Params defaults(variant.spec().params);
  AttentionInput with_defaults{input.q, input.k, input.v, input.causal, input.key_padding, &defaults,
                               input.seed, input.cancel};
  return variant.forward(with_defaults, trace);
}

nlohmann::json tensor_to_json(const Tensor& t) {
  if (t.rank() <= 1) return std::vector<float>(t.data(), t.data() + t.size());
  // Peel the leading axis recursively: a view of one slice as its own tensor would copy, so walk
  // offsets instead.
  const auto nested = [&](auto&& self, int axis, std::int64_t offset) -> nlohmann::json {
    std::int64_t stride = 1;
    for (int a = axis + 1; a < t.rank(); ++a) stride *= t.dim(a);
    if (axis == t.rank() - 1) return std::vector<float>(t.data() + offset, t.data() + offset + t.dim(axis));
    nlohmann::json items = nlohmann::json::array();
    for (std::int64_t i = 0; i < t.dim(axis); ++i) items.push_back(self(self, axis + 1, offset + i * stride));
    return items;
  };
  return nested(nested, 0, 0);
}

}  // namespace attnlab
