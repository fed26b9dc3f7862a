// attnlab-cli bleu: corpus BLEU of a hypothesis file against one or more reference files, one
// sentence per line, computed as sacreBLEU does by default (engine/text/bleu.h). Prints sacreBLEU's
// score line, or with --json the score, precisions, brevity penalty, lengths and n-gram counts.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_options.h"
#include "core/error.h"
#include "text/bleu.h"

namespace attnlab::cli {
namespace {

// The lines of a text file: split at "\n", one "\r" before it dropped (CRLF files), no extra
// empty line for a newline at the end of the file. Bytes are passed on as they are (invalid UTF-8
// included).
std::vector<std::string> read_lines(const std::string& option, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw IoError("--" + option + " " + path + ": is a folder, not a text file");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw IoError("--" + option + " " + path + ": cannot open: " + (errno ? std::strerror(errno) : "unknown error"));
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError("--" + option + " " + path + ": cannot read: " + (errno ? std::strerror(errno) : "unknown error"));
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    const bool has_newline = end != std::string::npos;
    if (!has_newline) end = text.size();
    std::size_t stop = end;
    if (has_newline && stop > start && text[stop - 1] == '\r') --stop;
    lines.push_back(text.substr(start, stop - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace

int cmd_bleu(int argc, char** argv) {
  const Options o = parse_options("bleu", argc, argv, {"hyp", "ref"}, {"json", "lowercase"});
  const std::string hyp_path = o.require("bleu", "hyp");
  if (o.all("hyp").size() > 1) throw UsageError("bleu: --hyp given more than once");
  const std::vector<std::string> ref_paths = o.all("ref");
  if (ref_paths.empty()) throw UsageError("bleu needs --ref");

  const std::vector<std::string> hyps = read_lines("hyp", hyp_path);
  std::vector<std::vector<std::string>> refs;
  for (const std::string& path : ref_paths) {
    refs.push_back(read_lines("ref", path));
    if (refs.back().size() != hyps.size()) {
      throw ShapeError("bleu: " + hyp_path + " has " + std::to_string(hyps.size()) + " lines but " + path + " has " +
                       std::to_string(refs.back().size()));
    }
  }
  if (hyps.empty()) throw ParamError("bleu: " + hyp_path + " has no lines to score");
  for (std::size_t s = 0; s < hyps.size(); ++s) {
    bool any = false;
    for (const auto& stream : refs) any = any || !stream[s].empty();
    if (!any) {
      throw ParamError("bleu: line " + std::to_string(s + 1) + " is empty in " +
                       (refs.size() == 1 ? ref_paths[0] : "every reference file") + " (BLEU needs a reference)");
    }
  }

  BleuOptions options;
  options.lowercase = o.has("lowercase");
  const BleuResult r = corpus_bleu(hyps, refs, options);
  if (o.has("json")) {
    const nlohmann::json j = {{"score", r.score}, {"precisions", r.precisions}, {"bp", r.bp},
                              {"ratio", r.ratio()}, {"hyp_len", r.hyp_len},   {"ref_len", r.ref_len},
                              {"correct", r.correct}, {"total", r.total}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << r.signature_line() << "\n";
  }
  return 0;
}

}  // namespace attnlab::cli
