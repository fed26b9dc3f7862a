// Command-line parsing shared by attnlab-cli's commands: options, numbers, output folders.
// Every mistake is one line: UsageError for the command line (exit 2), ParamError/IoError for
// values and files (exit 1).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace attnlab::cli {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

class UsageError : public Error {
 public:
  using Error::Error;
};

// Options of one command: flags, (repeatable) valued options and up to `max_positional` plain
// arguments.
struct Options {
  std::map<std::string, std::vector<std::string>> values;
  std::set<std::string> flags;
  std::vector<std::string> positional;

  bool has(const std::string& key) const { return values.count(key) || flags.count(key); }
  std::string get(const std::string& key, const std::string& fallback = "") const {
    const auto it = values.find(key);
    return it == values.end() ? fallback : it->second.back();
  }
  std::string require(const std::string& command, const std::string& key) const {
    if (!values.count(key)) throw UsageError(command + " needs --" + key);
    return get(key);
  }
  std::vector<std::string> all(const std::string& key) const {
    const auto it = values.find(key);
    return it == values.end() ? std::vector<std::string>{} : it->second;
  }
};

// argv[2...] of `attnlab-cli COMMAND ...`.
Options parse_options(const std::string& command, int argc, char** argv, const std::set<std::string>& valued,
                      const std::set<std::string>& flags, std::size_t max_positional = 0);

std::uint64_t parse_seed(const std::string& option, const std::string& text);
int parse_index(const std::string& option, const std::string& text);      // 0, 1, 2, ...
int parse_positive(const std::string& option, const std::string& text);   // 1, 2, ...
double parse_number(const std::string& option, const std::string& text);  // finite
// Output files are written only after all work succeeded; check their folders up front so a
// typo fails before a long computation.
void check_output_folder(const std::string& option, const std::string& path);
// Pretty-printed, written atomically.
void write_json_file(const std::string& path, const nlohmann::json& j);

}  // namespace attnlab::cli
