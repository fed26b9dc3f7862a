#include "attention/params.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace attnlab {
namespace {

std::string format_number(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) text += (i ? sep : "") + items[i];
  return text;
}

}  // namespace

const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "bool";
    case ParamType::Choice: return "choice";
  }
  return "?";
}

ParamSpec ParamSpec::integer(std::string key, std::string label, std::int64_t def, std::int64_t min,
                             std::int64_t max, std::string help) {
  return ParamSpec{std::move(key), std::move(label), ParamType::Int, def, static_cast<double>(min),
                   static_cast<double>(max), {}, std::move(help)};
}

ParamSpec ParamSpec::real(std::string key, std::string label, double def, double min, double max,
                          std::string help) {
  return ParamSpec{std::move(key), std::move(label), ParamType::Float, def, min, max, {}, std::move(help)};
}

ParamSpec ParamSpec::boolean(std::string key, std::string label, bool def, std::string help) {
  return ParamSpec{std::move(key), std::move(label), ParamType::Bool, def, 0.0, 1.0, {}, std::move(help)};
}

ParamSpec ParamSpec::choice(std::string key, std::string label, std::string def,
                            std::vector<std::string> choices, std::string help) {
  return ParamSpec{std::move(key), std::move(label), ParamType::Choice, std::move(def), 0.0, 0.0,
                   std::move(choices), std::move(help)};
}

std::string ParamSpec::describe_range() const {
  switch (type) {
    case ParamType::Int:
      return key + ": an integer in [" + format_number(min) + ", " + format_number(max) + "]";
    case ParamType::Float:
      return key + ": a number in [" + format_number(min) + ", " + format_number(max) + "]";
    case ParamType::Bool: return key + ": true or false";
    case ParamType::Choice: return key + ": one of " + join(choices, ", ");
  }
  return key;
}

void ParamSpec::validate(const ParamValue& value) const {
  const auto fail = [&](const std::string& got) {
    throw ParamError(key + "=" + got + " is not allowed; " + describe_range());
  };
  switch (type) {
    case ParamType::Int: {
      if (!std::holds_alternative<std::int64_t>(value)) fail(param_value_to_string(value));
      const auto v = std::get<std::int64_t>(value);
      if (static_cast<double>(v) < min || static_cast<double>(v) > max) fail(std::to_string(v));
      break;
    }
    case ParamType::Float: {
      if (!std::holds_alternative<double>(value)) fail(param_value_to_string(value));
      const double v = std::get<double>(value);
      if (!std::isfinite(v) || v < min || v > max) fail(format_number(v));
      break;
    }
    case ParamType::Bool:
      if (!std::holds_alternative<bool>(value)) fail(param_value_to_string(value));
      break;
    case ParamType::Choice: {
      if (!std::holds_alternative<std::string>(value)) fail(param_value_to_string(value));
      const auto& v = std::get<std::string>(value);
      bool found = false;
      for (const auto& c : choices) found = found || c == v;
      if (!found) fail(v);
      break;
    }
  }
}

ParamValue ParamSpec::parse(const std::string& text) const {
  const auto fail = [&]() -> ParamValue {
    throw ParamError(key + "=" + text + " is not allowed; " + describe_range());
  };
  ParamValue value;
  switch (type) {
    case ParamType::Int: {
      std::size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(text, &used);
      } catch (const std::exception&) {
        return fail();
      }
      if (used != text.size()) return fail();
      value = static_cast<std::int64_t>(v);
      break;
    }
    case ParamType::Float: {
      std::size_t used = 0;
      double v = 0;
      try {
        v = std::stod(text, &used);
      } catch (const std::exception&) {
        return fail();
      }
      if (used != text.size()) return fail();
      value = v;
      break;
    }
    case ParamType::Bool:
      if (text == "true" || text == "1" || text == "on" || text == "yes") value = true;
      else if (text == "false" || text == "0" || text == "off" || text == "no") value = false;
      else return fail();
      break;
    case ParamType::Choice: value = text; break;
  }
  validate(value);
  return value;
}

ParamValue ParamSpec::from_json(const nlohmann::json& v) const {
  ParamValue value;
  const auto fail = [&]() -> ParamValue {
    throw ParamError(key + "=" + v.dump() + " is not allowed; " + describe_range());
  };
  switch (type) {
    case ParamType::Int:
      if (v.is_number_integer()) value = v.get<std::int64_t>();
      else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())
        value = static_cast<std::int64_t>(v.get<double>());
      else return fail();
      break;
    case ParamType::Float:
      if (!v.is_number()) return fail();
      value = v.get<double>();
      break;
    case ParamType::Bool:
      if (!v.is_boolean()) return fail();
      value = v.get<bool>();
      break;
    case ParamType::Choice:
      if (!v.is_string()) return fail();
      value = v.get<std::string>();
      break;
  }
  validate(value);
  return value;
}

nlohmann::json param_value_to_json(const ParamValue& value) {
  return std::visit([](const auto& v) { return nlohmann::json(v); }, value);
}

std::string param_value_to_string(const ParamValue& value) {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<std::int64_t>(&value)) return std::to_string(*i);
  return format_number(std::get<double>(value));
}

nlohmann::json param_spec_to_json(const ParamSpec& spec) {
  nlohmann::json j;
  j["key"] = spec.key;
  j["label"] = spec.label;
  j["type"] = param_type_name(spec.type);
  j["default"] = param_value_to_json(spec.default_value);
  if (spec.type == ParamType::Int) {
    j["min"] = static_cast<std::int64_t>(spec.min);
    j["max"] = static_cast<std::int64_t>(spec.max);
  } else if (spec.type == ParamType::Float) {
    j["min"] = spec.min;
    j["max"] = spec.max;
  } else {
    j["min"] = nullptr;
    j["max"] = nullptr;
  }
  if (spec.type == ParamType::Choice) j["choices"] = spec.choices;
  j["help"] = spec.help;
  return j;
}

Params::Params(const std::vector<ParamSpec>& schema) : schema_(schema) {
  for (const auto& spec : schema_) values_[spec.key] = spec.default_value;
}

const ParamSpec& Params::spec_for(const std::string& key) const {
  for (const auto& spec : schema_) {
    if (spec.key == key) return spec;
  }
  std::vector<std::string> keys;
  for (const auto& spec : schema_) keys.push_back(spec.key);
  throw ParamError("unknown parameter '" + key + "'" +
                   (keys.empty() ? std::string("; this variant has no parameters")
                                 : "; known: " + join(keys, ", ")));
}

void Params::set(const std::string& key, const ParamValue& value) {
  const ParamSpec& spec = spec_for(key);
  // Accept an integer where a float is expected (JSON "2" for 2.0).
  if (spec.type == ParamType::Float && std::holds_alternative<std::int64_t>(value)) {
    const ParamValue as_double = static_cast<double>(std::get<std::int64_t>(value));
    spec.validate(as_double);
    values_[key] = as_double;
    return;
  }
  spec.validate(value);
  values_[key] = value;
}

void Params::set_from_assignment(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ParamError("parameter '" + assignment + "' must be written key=value");
  }
  const std::string key = assignment.substr(0, eq);
  values_[spec_for(key).key] = spec_for(key).parse(assignment.substr(eq + 1));
}

void Params::set_from_json(const nlohmann::json& object) {
  if (!object.is_object()) throw ParamError("parameters must be a JSON object, got " + object.dump());
  for (const auto& [key, value] : object.items()) values_[spec_for(key).key] = spec_for(key).from_json(value);
}

const ParamValue& Params::get(const std::string& key) const {
  const auto it = values_.find(key);
  if (it == values_.end()) spec_for(key);  // throws with the list of keys
  return it->second;
}

std::int64_t Params::get_int(const std::string& key) const { return std::get<std::int64_t>(get(key)); }
double Params::get_float(const std::string& key) const { return std::get<double>(get(key)); }
bool Params::get_bool(const std::string& key) const { return std::get<bool>(get(key)); }
const std::string& Params::get_choice(const std::string& key) const { return std::get<std::string>(get(key)); }

nlohmann::json Params::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : values_) j[key] = param_value_to_json(value);
  return j;
}

}  // namespace attnlab
