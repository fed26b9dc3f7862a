#include "cli_options.h"

#include <QByteArray>
#include <QString>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "figures/figure_export.h"

namespace attnlab::cli {

Options parse_options(const std::string& command, int argc, char** argv, const std::set<std::string>& valued,
                      const std::set<std::string>& flags, std::size_t max_positional) {
  Options o;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (o.positional.size() >= max_positional) throw UsageError(command + ": unexpected argument '" + arg + "'");
      o.positional.push_back(arg);
      continue;
    }
    std::string key = arg.substr(2), value;
    const auto eq = key.find('=');
    const bool inline_value = eq != std::string::npos && key.rfind("param", 0) != 0;
    if (inline_value) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    }
    if (flags.count(key)) {
      if (inline_value) throw UsageError(command + ": --" + key + " takes no value");
      o.flags.insert(key);
    } else if (valued.count(key)) {
      if (!inline_value) {
        if (i + 1 >= argc) throw UsageError(command + ": --" + key + " needs a value");
        value = argv[++i];
      }
      o.values[key].push_back(value);
    } else {
      throw UsageError(command + ": unknown option '--" + key + "'");
    }
  }
  return o;
}

std::uint64_t parse_seed(const std::string& option, const std::string& text) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    if (!text.empty() && text[0] == '-') throw std::invalid_argument("negative");
    v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw ParamError("--" + option + "=" + text + ": expected a non-negative integer");
  return v;
}

int parse_index(const std::string& option, const std::string& text) {
  std::size_t used = 0;
  int v = -1;
  try {
    v = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < 0) throw ParamError("--" + option + "=" + text + ": expected an index 0, 1, 2, ...");
  return v;
}

void check_output_folder(const std::string& option, const std::string& path) {
  const std::filesystem::path p(path);
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw IoError("--" + option + " " + path + ": folder '" + dir.string() + "' does not exist");
  }
}

int parse_positive(const std::string& option, const std::string& text) {
  const int v = parse_index(option, text);
  if (v < 1) throw ParamError("--" + option + "=" + text + ": expected a positive integer");
  return v;
}

double parse_number(const std::string& option, const std::string& text) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw ParamError("--" + option + "=" + text + ": expected a number");
}


void write_json_file(const std::string& path, const nlohmann::json& j) {
  write_bytes_atomically(QString::fromStdString(path), QByteArray::fromStdString(j.dump(2) + "\n"));
}

}  // namespace attnlab::cli
