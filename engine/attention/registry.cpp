#include "attention/registry.h"

#include "attention/variants.h"
#include "core/error.h"

namespace attnlab {

const Registry& Registry::builtin() {
  static const Registry registry = [] {
    Registry r;
    r.add(make_softmax_attention());
    r.add(make_reformer_lsh_attention());
    r.add(make_routing_attention());
    r.add(make_bigbird_attention());
    r.add(make_yoso_attention());
    r.add(make_linear_attention());
    r.add(make_performer_attention());
    r.add(make_rpe_fft_attention());
    r.add(make_spectral_attention());
    r.add(make_luna_attention());
    r.add(make_mgk_attention());
    r.add(make_delta_attention());
    r.add(make_t2r_attention());
    return r;
  }();
  return registry;
}

void Registry::add(std::unique_ptr<Attention> variant) {
  if (find(variant->spec().name)) {
    throw ParamError("attention variant '" + variant->spec().name + "' is registered twice");
  }
  variants_.push_back(std::move(variant));
}

const Attention* Registry::find(std::string_view name) const {
  for (const auto& v : variants_) {
    if (v->spec().name == name) return v.get();
  }
  return nullptr;
}

const Attention& Registry::get(std::string_view name) const {
  if (const Attention* v = find(name)) return *v;
  std::string known;
  for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
  throw ParamError("unknown attention variant '" + std::string(name) + "'; known: " + known);
}

std::vector<const Attention*> Registry::all() const {
  std::vector<const Attention*> out;
  for (const auto& v : variants_) out.push_back(v.get());
  return out;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& v : variants_) out.push_back(v->spec().name);
  return out;
}

}  // namespace attnlab
