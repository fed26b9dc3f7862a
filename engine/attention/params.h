// Hyperparameter schemas and values.
//
// Every attention variant declares its hyperparameters as ParamSpecs. The GUI's parameter panel,
// the CLI's --param key=value, the session file and `attnlab-cli variants --json` are all
// generated from these specs, so adding a variant touches no widget and no CLI code.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <variant>
#include <vector>

namespace attnlab {

enum class ParamType { Int, Float, Bool, Choice };

const char* param_type_name(ParamType type);  // "int", "float", "bool", "choice"

using ParamValue = std::variant<std::int64_t, double, bool, std::string>;

struct ParamSpec {
  std::string key;    // "n_hashes"
  std::string label;  // "Hash rounds"
  ParamType type = ParamType::Int;
  ParamValue default_value;
  double min = 0.0;  // inclusive bounds for Int and Float
  double max = 0.0;
  std::vector<std::string> choices;  // for Choice
  std::string help;

  static ParamSpec integer(std::string key, std::string label, std::int64_t def, std::int64_t min,
                           std::int64_t max, std::string help);
  static ParamSpec real(std::string key, std::string label, double def, double min, double max,
                       std::string help);
  static ParamSpec boolean(std::string key, std::string label, bool def, std::string help);
  static ParamSpec choice(std::string key, std::string label, std::string def,
                          std::vector<std::string> choices, std::string help);

  // "n_hashes: an integer in [1, 16]" — used in every error about this parameter.
  std::string describe_range() const;
  // Checks the type and range of `value`; throws ParamError naming key, value and range.
  void validate(const ParamValue& value) const;
  // Parses text as given on a command line ("4", "0.5", "true", "viridis").
  ParamValue parse(const std::string& text) const;
  ParamValue from_json(const nlohmann::json& value) const;
};

nlohmann::json param_value_to_json(const ParamValue& value);
std::string param_value_to_string(const ParamValue& value);
nlohmann::json param_spec_to_json(const ParamSpec& spec);

// A full set of values for one schema: every key of the schema has a valid value.
class Params {
 public:
  Params() = default;
  // All defaults of the schema.
  explicit Params(const std::vector<ParamSpec>& schema);

  // Sets one value after validating it against the schema; unknown keys throw ParamError that
  // lists the known keys.
  void set(const std::string& key, const ParamValue& value);
  // Parses "key=value" (CLI form).
  void set_from_assignment(const std::string& assignment);
  // Sets every key present in a JSON object; other keys keep their values.
  void set_from_json(const nlohmann::json& object);

  std::int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_choice(const std::string& key) const;
  const ParamValue& get(const std::string& key) const;

  const std::vector<ParamSpec>& schema() const { return schema_; }
  const std::map<std::string, ParamValue>& values() const { return values_; }
  nlohmann::json to_json() const;

 private:
  const ParamSpec& spec_for(const std::string& key) const;
  std::vector<ParamSpec> schema_;
  std::map<std::string, ParamValue> values_;
};

}  // namespace attnlab
