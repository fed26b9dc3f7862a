// An optional field of a JSON object, read as T: `fallback` when the key is absent; a value of
// another type throws ParamError("<context> '<key>' has the wrong type: <value>"). The session and
// the panels' settings read their files through it, so every reader names a bad field alike.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace attnlab {

template <typename T>
T json_field(const nlohmann::json& j, const std::string& key, const T& fallback, const std::string& context) {
  if (!j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw ParamError(context + " '" + key + "' has the wrong type: " + j.at(key).dump());
  }
}

}  // namespace attnlab
