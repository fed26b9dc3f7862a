// The registry of attention variants. Variants are listed explicitly in registry.cpp (one line
// each) rather than self-registered by static initialisers, which a static library's linker
// would silently drop.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "attention/attention.h"

namespace attnlab {

class Registry {
 public:
  // The registry holding every built-in variant.
  static const Registry& builtin();

  void add(std::unique_ptr<Attention> variant);  // throws ParamError on a duplicate name
  // Throws ParamError listing the known names when `name` is unknown.
  const Attention& get(std::string_view name) const;
  const Attention* find(std::string_view name) const;
  std::vector<const Attention*> all() const;  // in registration order
  std::vector<std::string> names() const;

 private:
  std::vector<std::unique_ptr<Attention>> variants_;
};

}  // namespace attnlab
