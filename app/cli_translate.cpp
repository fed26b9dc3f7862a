// attnlab-cli translate / perplexity: the trained models (assets/models/) from the command line.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "attention/attention.h"
#include "cli_options.h"
#include "core/error.h"
#include "decode/evaluation.h"
#include "decode/translator.h"
#include "models/playground.h"


namespace attnlab::cli {
namespace {

std::string default_model(const char* name) { return default_trained_models_dir() + "/" + name; }

}  // namespace

int cmd_translate(int argc, char** argv) {
  const Options o = parse_options("translate", argc, argv,
                                  {"model", "file", "beam", "length-penalty", "n-best", "no-repeat-ngram", "attention", "param", "seed",
                                   "max-length"},
                                  {"json"}, 1);
  if (o.positional.empty() == !o.has("file")) {
    throw UsageError("translate takes either a sentence or --file IN.txt (one sentence per line)");
  }
  TranslateOptions options;
  options.beam = parse_positive("beam", o.get("beam", "1"));
  options.length_penalty = static_cast<float>(parse_number("length-penalty", o.get("length-penalty", "1.0")));
  options.n_best = parse_positive("n-best", o.get("n-best", "1"));
  options.no_repeat_ngram = parse_index("no-repeat-ngram", o.get("no-repeat-ngram", "0"));
  options.max_length = parse_index("max-length", o.get("max-length", "0"));
  options.attention = make_attention_choice(o.get("attention", "softmax"), o.all("param"), parse_seed("seed", o.get("seed", "0")));
  const auto model = TrainedModel::load(o.get("model", default_model("de-en")));
  const bool json = o.has("json");

  if (!o.has("file")) {
    const Translation t = translate(*model, o.positional.front(), options);
    if (json) {
      std::cout << translation_json(t, options.attention.name(), options.beam).dump() << "\n";
    } else {
      std::cout << t.text << "\n";
      for (std::size_t i = 1; i < t.nbest_text.size(); ++i) std::cout << "  " << i + 1 << ". " << t.nbest_text[i] << "\n";
    }
    return 0;
  }
  // A file: one output line per input line; a line that cannot be translated prints an empty
  // line (so outputs stay aligned for `bleu`), is named on stderr, and makes the exit status 1.
  const std::vector<std::string> lines = read_sentence_file(o.get("file"));
  int failures = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t") == std::string::npos) {
      std::cout << (json ? "{}" : "") << "\n";
      continue;
    }
    try {
      const Translation t = translate(*model, lines[i], options);
      std::cout << (json ? translation_json(t, options.attention.name(), options.beam).dump() : t.text) << "\n";
    } catch (const ParamError& e) {
      ++failures;
      std::cerr << "attnlab-cli: " << o.get("file") << " line " << i + 1 << ": " << e.what() << "\n";
      std::cout << (json ? "{}" : "") << "\n";
    }
  }
  std::cout << std::flush;
  return failures ? kExitError : 0;
}

int cmd_perplexity(int argc, char** argv) {
  const Options o = parse_options("perplexity", argc, argv, {"model", "file", "attention", "param", "seed"}, {"json"});
  const auto model = TrainedModel::load(o.get("model", default_model("en-lm")));
  const AttentionChoice attention =
      make_attention_choice(o.get("attention", "softmax"), o.all("param"), parse_seed("seed", o.get("seed", "0")));
  const ScoreSums s = score_language_model(*model, read_sentence_file(o.require("perplexity", "file")), attention);
  if (s.tokens == 0) throw ParamError(o.get("file") + ": no text to score");
  const double ppl = std::exp(s.nll / static_cast<double>(s.tokens));
  if (o.has("json")) {
    std::cout << nlohmann::json{{"perplexity", ppl}, {"nll", s.nll}, {"tokens", s.tokens}, {"attention", attention.name()}}.dump()
              << "\n";
  } else {
    std::printf("perplexity %.3f over %lld tokens (%s attention)\n", ppl, static_cast<long long>(s.tokens),
                attention.name().c_str());
  }
  return 0;
}

}  // namespace attnlab::cli
