#include "cli_commands.h"

#include "cli_options.h"

#include <QFileInfo>
#include <QString>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "analysis/sweep.h"
#include "bench/complexity.h"
#include "bench/decoding.h"
#include "attention/registry.h"
#include "bench/activation_memory.h"
#include "colormap.h"
#include "core/atomic_file.h"
#include "core/device.h"
#include "core/error.h"
#include "core/npy.h"
#include "models/layer_types.h"
#include "models/model_config.h"
#include "models/playground.h"
#include "figures/compare_figure.h"
#include "figures/curves_figure.h"
#include "figures/figure_export.h"
#include "figures/line_chart.h"
#include "session.h"
#include "trace_view.h"

namespace attnlab::cli {

int cmd_bleu(int argc, char** argv);  // cli_bleu.cpp
int cmd_data(int argc, char** argv);  // cli_data.cpp
int cmd_baseline(int argc, char** argv);  // cli_data.cpp
int cmd_train(int argc, char** argv);     // cli_train.cpp
int cmd_translate(int argc, char** argv);  // cli_translate.cpp
int cmd_perplexity(int argc, char** argv);  // cli_translate.cpp
int cmd_approx_quality(int argc, char** argv);  // cli_quality.cpp

namespace {

const char* kUsage =
    "usage: attnlab-cli COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  variants [--json]\n"
    "      List the registered attention variants and their hyperparameters.\n"
    "  attend --variant NAME --q Q.npy --k K.npy --v V.npy --out O.npy\n"
    "         [--causal] [--param key=value]... [--seed N] [--weights W.npy] [--trace T.json]\n"
    "      Run one variant on your tensors: Q, K [L, d] or [H, L, d]; V [L, dv] or [H, L, dv].\n"
    "      O has V's shape; W the dense weights [H, L, L] (or [L, L]); T the variant's extras.\n"
    "  figure (--text TEXT | --session FILE.json) --out FILE.png|.svg|.pdf (or the view's data: .npy, .csv, .json)\n"
    "         [--model NAME|CONFIG.json|trained:NAME] [--weights W.safetensors] [--variant NAME]\n"
    "         [--param key=value]... [--causal] [--seed N] [--weight-seed N] [--layer I] [--head J]\n"
    "         [--view heatmap|heads|buckets|clusters|blocks|yoso|compare|state|halting|experts|recurrent|\n"
    "                 perceiver|memory|mega|gss] [--view-option key=value]...\n"
    "         [--colormap viridis|magma|cividis|coolwarm] [--dpi N]\n"
    "      Render a view headless (layers and heads count from 0). Options after --session\n"
    "      override the session's values; --view-option sets one of the view's own options (see\n"
    "      below) over the session's \"view_options\"; another --view starts from its defaults.\n"
    "  compare --variant NAME [--param key=value]... --q Q.npy --k K.npy --v V.npy\n"
    "         [--causal] [--seed N] [--topk K] --json OUT.json\n"
    "      One variant against exact softmax on your tensors (shapes as for attend): writes\n"
    "      {rel_output_error, mean_row_kl, topk_overlap, topk, rows, variant, params, ...}.\n"
    "  sweep --variant NAME --sweep KEY=V1,V2,... [--param key=value]... --seeds N [--length L]\n"
    "         [--dim d] [--qk-std S] [--heads H] [--causal] [--topk K] [--seed N] --json OUT.json\n"
    "         [--out CHART.png|.svg|.pdf|.csv] [--dpi N]\n"
    "      Sweep one parameter on random q, k, v ~ N(0, 1) (defaults L=256, d=64, H=1, k=8, seed 1),\n"
    "      averaged over N seeds: one row per value with mean, std, min and max of each metric and\n"
    "      the fitted log-log slopes; --out also draws the log-log chart or writes the rows as CSV.\n"
    "  memory-depth [--layers N] [--length L] [--d-model D] [--heads H] [--d-ff F] [--variant NAME]\n"
    "         [--param key=value]... [--seed N] [--dpi N] --out FILE.png|.svg|.pdf|.csv|.json\n"
    "      Activation memory a training forward pass keeps, standard vs reversible residual stack,\n"
    "      for depths 1..N, with the reversible stack's reconstruction error.\n"
    "  bench --variants A,B,... --lengths L1,L2,... [--dim d] [--heads H] [--causal]\n"
    "         [--device cpu|cuda] [--repeats N] [--time-budget-ms T] [--seed N] --json OUT.json\n"
    "         [--out CHART.png|svg|pdf|csv [--dpi N]]\n"
    "      Time and peak memory of each variant's fast path on random q, k, v (defaults d=64, H=1,\n"
    "      5 repeats after a warm-up, 60 s budget per call), or of a preset's whole forward pass\n"
    "      given as model:NAME: rows {variant, length, device, status, median_ms, min_ms, max_ms,\n"
    "      peak_bytes, estimated_bytes, high_water_bytes} and log-log slopes fitted on the largest\n"
    "      half of the lengths. A length whose cost-model estimate does not fit in memory is not\n"
    "      run, nor one predicted from the measured slope to take longer than the time budget; such\n"
    "      lengths, and those out of memory or past the budget, are rows with a status. --out draws\n"
    "      the time and memory curves (log-log, slopes, complexity classes, refused lengths marked).\n"
    "  decoding --methods A,B,... --tokens N1,N2,... [--dim d] [--heads H] [--repeats N]\n"
    "         [--seed N] [--time-budget-ms T] --json OUT.json [--out CHART.png|svg|pdf|csv [--dpi N]]\n"
    "      Autoregressive decoding, one token at a time, of N tokens with exact attention\n"
    "      (softmax_kv_cache, softmax_no_cache) or a recurrent form (linear_recurrent,\n"
    "      performer_recurrent); defaults d=64, H=1, 3 repeats after a warm-up, 60 s budget per run:\n"
    "      rows {method, tokens, status, median_ms, min_ms, max_ms, tokens_per_second, last_step_us,\n"
    "      state_bytes}; --out draws tokens/s and the state's bytes against N.\n"
    "  models [--json]\n"
    "      List the built-in model presets and the trained models (trained:de-en, trained:en-lm in\n"
    "      $ATTNLAB_MODELS or assets/models, whether each is installed); --json prints each preset's\n"
    "      full config and each trained model's {name, trained, available, folder, summary, config}.\n"
    "  layer-types [--json]\n"
    "      List the layer types and feed-forward kinds a model config can use, with their parameters.\n"
    "  inspect --model NAME|CONFIG.json|trained:NAME --text TEXT [--seed N] [--weight-seed N] [--weights W.safetensors]\n"
    "         [--variant NAME] [--param key=value]... [--causal] --json OUT.json\n"
    "      Run a model on a text and write its tokens and, per layer, the type, the attention it ran,\n"
    "      the attention's extras and the layer's own trace under fixed keys: halting, experts,\n"
    "      block_recurrent, perceiver, memory, mega, gss, sparse_ff. --variant (default softmax) is\n"
    "      what layers set to \"inherit\" run; --seed seeds attention draws, --weight-seed the weights.\n"
    "  info\n"
    "      Version, device and threads.\n"
    "  bleu --hyp HYP.txt --ref REF.txt [--ref REF2.txt]... [--lowercase] [--json]\n"
    "      Corpus BLEU of HYP against one or more references (one sentence per line), as sacreBLEU\n"
    "      computes it by default (13a tokens, case-sensitive, exp smoothing): prints the score line\n"
    "      \"BLEU = S p1/p2/p3/p4 (BP = ... ratio = ... hyp_len = ... ref_len = ...)\", or with --json\n"
    "      {score, precisions, bp, ratio, hyp_len, ref_len, correct, total}.\n"
    "  data --out DIR [--dict PATH] [--vocab N] [--seed N]\n"
    "      German-English pairs from the BEOLINGUS dictionary (default /usr/share/trans/de-en, Debian's\n"
    "      trans-de-en), split by a hash of the German side into train / valid / test (test: sentences\n"
    "      only): writes train.tsv, valid.tsv, test.de/.en, valid.de/.en, stats.json, a joint\n"
    "      SentencePiece model spm.model/.vocab (unigram, N pieces, default 8000) and baseline.tsv.\n"
    "  baseline --data DIR (--file IN.txt | \"Satz.\")\n"
    "      Word-by-word dictionary translation with DIR/baseline.tsv, one English line per line.\n"
    "  train --data DIR --out MODEL_DIR [--kind seq2seq|lm] [--d-model 256] [--heads 4] [--d-ff 1024]\n"
    "        [--layers 3 | --encoder-layers N --decoder-layers N] [--max-length 64] [--steps 10000]\n"
    "        [--minutes M] [--batch-tokens 6000] [--lr 7e-4] [--warmup 1000] [--schedule inverse_sqrt|cosine]\n"
    "        [--clip 1.0] [--weight-decay 0.01] [--label-smoothing 0.1] [--seed 1] [--threads N]\n"
    "        [--eval-every 500] [--checkpoint-every 500] [--report-every 50] [--resume]\n"
    "        [--sentence-repeat N] [--valid-max 4000]\n"
    "      Train the de->en translator (seq2seq) or the English language model (lm) on a folder from\n"
    "      `data`, with the engine's own backward passes and AdamW; prints a progress line (step, loss,\n"
    "      perplexity, tokens/s, ETA), checkpoints to MODEL_DIR (--resume continues exactly), and writes\n"
    "      model.safetensors, config.json, tokenizer.model and train_log.jsonl. Deterministic for a\n"
    "      seed and thread count.\n"
    "  translate (\"Satz.\" | --file IN.txt) [--model DIR] [--beam N] [--length-penalty A] [--n-best K]\n"
    "        [--max-length N] [--no-repeat-ngram N] [--attention NAME [--param key=value]... [--seed N]]\n"
    "        [--json]\n"
    "      German to English with a trained model (default assets/models/de-en): greedy, or beam search\n"
    "      with the GNMT length penalty; --no-repeat-ngram N forbids repeating any N pieces (stops\n"
    "      runaway repetition). --attention swaps every self-attention for a registered\n"
    "      variant. --json prints {source_tokens, target_tokens, translation, cross_attention\n"
    "      [layer][head][target][source], ms, ...}; --file translates one sentence per line.\n"
    "  perplexity --file EN.txt [--model DIR] [--attention NAME [--param key=value]...] [--json]\n"
    "      Perplexity of a language model (default assets/models/en-lm) on one sentence per line.\n"
    "  approx-quality --model DE-EN --src TEST.de --ref TEST.en [--lm EN-LM [--lm-file EN.txt]]\n"
    "         [--variant NAME[:key=value,...]]... [--sentences N] [--beam N] [--seed N]\n"
    "         [--json OUT.json] [--out FIG.png|.svg|.pdf] [--dpi N]\n"
    "      Test BLEU (and LM perplexity) with the trained self-attention swapped for each setting\n"
    "      (default: softmax; performer n_features 16/64/256; reformer_lsh n_hashes 1/2/4/8 with\n"
    "      bucket_size 4 and separate keys; bigbird; linear): a table, JSON and a figure.\n";

// The views' own options (figure --view-option key=value), from the view registry.
std::string view_options_usage() {
  std::string text = "\nview options (figure --view NAME --view-option key=value):\n";
  for (const ViewSpec& view : view_specs()) {
    for (const ParamSpec& option : view.options) {
      text += "  " + view.name + ": --view-option " + option.key + "=" + param_value_to_string(option.default_value) +
              "   (" + option.describe_range() + ")\n      " + option.help + "\n";
    }
  }
  return text;
}

double parse_dpi(const Options& o) {
  if (!o.has("dpi")) return 150.0;
  try {
    std::size_t used = 0;
    const double dpi = std::stod(o.get("dpi"), &used);
    if (used == o.get("dpi").size() && dpi >= kMinExportDpi && dpi <= kMaxExportDpi) return dpi;
  } catch (const std::exception&) {
  }
  throw ParamError("--dpi=" + o.get("dpi") + ": expected a number in [30, 1200]");
}

// ---- variants -----------------------------------------------------------------------------------

int cmd_variants(int argc, char** argv) {
  const Options o = parse_options("variants", argc, argv, {}, {"json"});
  const Registry& registry = Registry::builtin();
  if (o.has("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const Attention* a : registry.all()) {
      const VariantSpec& s = a->spec();
      nlohmann::json params = nlohmann::json::array();
      for (const ParamSpec& p : s.params) params.push_back(param_spec_to_json(p));
      list.push_back({{"name", s.name}, {"title", s.title}, {"paper", s.paper}, {"summary", s.summary}, {"params", params}});
    }
    std::cout << list.dump(2) << "\n";
    return 0;
  }
  for (const Attention* a : registry.all()) {
    const VariantSpec& s = a->spec();
    std::cout << s.name << " — " << s.title << "\n    " << s.paper << "\n";
    if (s.params.empty()) std::cout << "    (no hyperparameters)\n";
    for (const ParamSpec& p : s.params) {
      std::cout << "    --param " << p.key << "=" << param_value_to_string(p.default_value) << "   (" << p.describe_range()
                << ") " << p.help << "\n";
    }
  }
  return 0;
}

// ---- attend -------------------------------------------------------------------------------------

Tensor as_heads(const Tensor& t, const std::string& name, int rank) {
  if (t.rank() != rank) {
    throw ShapeError(name + " has shape " + t.shape_string() + " but q has rank " + std::to_string(rank) +
                     "; use [L, d] or [H, L, d] for all of q, k, v");
  }
  if (rank == 2) return t.reshaped({1, t.dim(0), t.dim(1)});
  return t;
}

int cmd_attend(int argc, char** argv) {
  const Options o = parse_options("attend", argc, argv, {"variant", "q", "k", "v", "param", "seed", "out", "weights", "trace"},
                                  {"causal"});
  const std::string variant_name = o.require("attend", "variant");
  const std::string q_path = o.require("attend", "q"), k_path = o.require("attend", "k"), v_path = o.require("attend", "v");
  const std::string out_path = o.require("attend", "out");
  const std::string weights_path = o.get("weights"), trace_path = o.get("trace");
  check_output_folder("out", out_path);
  if (!weights_path.empty()) check_output_folder("weights", weights_path);
  if (!trace_path.empty()) check_output_folder("trace", trace_path);

  const Attention& variant = Registry::builtin().get(variant_name);
  Params params(variant.spec().params);
  for (const std::string& assignment : o.all("param")) params.set_from_assignment(assignment);
  const std::uint64_t seed = o.has("seed") ? parse_seed("seed", o.get("seed")) : 0;

  const Tensor q_raw = read_npy(q_path), k_raw = read_npy(k_path), v_raw = read_npy(v_path);
  const int rank = q_raw.rank();
  if (rank != 2 && rank != 3) {
    throw ShapeError(q_path + ": q has shape " + q_raw.shape_string() + "; expected [L, d] or [H, L, d]");
  }
  const Tensor q = as_heads(q_raw, "q", rank), k = as_heads(k_raw, "k", rank), v = as_heads(v_raw, "v", rank);

  const bool causal = o.has("causal");
  const bool want_trace = !weights_path.empty() || !trace_path.empty();
  AttentionInput input{q, k, v, causal, nullptr, &params, seed};
  Trace trace;
  const Tensor out = run_attention(variant, input, want_trace ? &trace : nullptr);

  write_npy(out_path, rank == 2 ? out.reshaped({out.dim(1), out.dim(2)}) : out);
  if (!weights_path.empty()) {
    const Tensor& w = trace.weights;
    write_npy(weights_path, rank == 2 ? w.reshaped({w.dim(1), w.dim(2)}) : w);
  }
  if (!trace_path.empty()) {
    const nlohmann::json j{{"variant", variant_name},
                           {"params", params.to_json()},
                           {"causal", causal},
                           {"seed", seed},
                           {"q_shape", q_raw.shape()},
                           {"k_shape", k_raw.shape()},
                           {"v_shape", v_raw.shape()},
                           {"extras", trace.extras ? trace.extras->to_json() : nlohmann::json(nullptr)}};
    const std::string text = j.dump(2) + "\n";
    write_file_atomically(trace_path, [&](std::ostream& s) { s << text; });
  }
  return 0;
}

// ---- compare ------------------------------------------------------------------------------------

int cmd_compare(int argc, char** argv) {
  const Options o =
      parse_options("compare", argc, argv, {"variant", "q", "k", "v", "param", "seed", "topk", "json"}, {"causal"});
  const std::string variant_name = o.require("compare", "variant");
  const std::string q_path = o.require("compare", "q"), k_path = o.require("compare", "k"), v_path = o.require("compare", "v");
  const std::string json_path = o.require("compare", "json");
  check_output_folder("json", json_path);
  const Attention& variant = Registry::builtin().get(variant_name);
  Params params(variant.spec().params);
  for (const std::string& assignment : o.all("param")) params.set_from_assignment(assignment);
  const std::uint64_t seed = o.has("seed") ? parse_seed("seed", o.get("seed")) : 0;
  const int topk = o.has("topk") ? parse_positive("topk", o.get("topk")) : 8;

  const Tensor q_raw = read_npy(q_path), k_raw = read_npy(k_path), v_raw = read_npy(v_path);
  const int rank = q_raw.rank();
  if (rank != 2 && rank != 3) {
    throw ShapeError(q_path + ": q has shape " + q_raw.shape_string() + "; expected [L, d] or [H, L, d]");
  }
  const Tensor q = as_heads(q_raw, "q", rank), k = as_heads(k_raw, "k", rank), v = as_heads(v_raw, "v", rank);
  const bool causal = o.has("causal");
  const ApproximationMetrics m = compare_variant(variant, params, q, k, v, causal, seed, topk);
  nlohmann::json j = m.to_json();
  j["variant"] = variant_name;
  j["params"] = params.to_json();
  j["causal"] = causal;
  j["seed"] = seed;
  j["q_shape"] = q_raw.shape();
  j["k_shape"] = k_raw.shape();
  j["v_shape"] = v_raw.shape();
  write_json_file(json_path, j);
  return 0;
}

// --out of the commands that measure curves (sweep, bench, decoding): a chart (.png, .svg, .pdf)
// or the rows as CSV; "" when not given. Checked before anything runs.
std::string chart_out_path(const Options& o) {
  const std::string out_path = o.get("out");
  if (out_path.empty()) return out_path;
  const QString suffix = QFileInfo(QString::fromStdString(out_path)).suffix().toLower();
  if (!QStringList{"png", "svg", "pdf", "csv"}.contains(suffix)) {
    throw ParamError("--out " + out_path + ": allowed extensions .png, .svg, .pdf, .csv (the JSON goes to --json)");
  }
  check_output_folder("out", out_path);
  return out_path;
}

// ---- sweep --------------------------------------------------------------------------------------

// "A,B,C" -> {"A", "B", "C"}; an empty item is a usage error naming `what` (the option as typed).
std::vector<std::string> split_list(const std::string& what, const std::string& text) {
  std::vector<std::string> items;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    if (item.empty()) throw UsageError(what + ": empty value in the list");
    items.push_back(item);
    start = comma + 1;
  }
  return items;
}

// Progress on stderr only for a person watching: tests and scripts read stderr as one error line.
std::function<void(int, int)> terminal_progress(const char* command, const char* unit) {
  if (isatty(fileno(stderr)) == 0) return {};
  return [command, unit](int done, int total) {
    std::fprintf(stderr, "\r%s: %d/%d %s", command, done, total, unit);
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

int cmd_sweep(int argc, char** argv) {
  const Options o = parse_options("sweep", argc, argv,
                                  {"variant", "sweep", "param", "seeds", "length", "dim", "qk-std", "heads", "topk", "seed",
                                   "json", "out", "dpi"},
                                  {"causal"});
  SweepOptions s;
  s.variant = o.require("sweep", "variant");
  const std::string sweep = o.require("sweep", "sweep");
  const std::string seeds = o.require("sweep", "seeds");
  const std::string json_path = o.require("sweep", "json");
  const auto eq = sweep.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == sweep.size()) {
    throw UsageError("sweep: --sweep " + sweep + ": expected KEY=V1,V2,...");
  }
  s.key = sweep.substr(0, eq);
  s.values = split_list("sweep: --sweep " + sweep + " (expected KEY=V1,V2,...)", sweep.substr(eq + 1));
  check_output_folder("json", json_path);
  const std::string out_path = chart_out_path(o);
  ExportOptions export_options;
  export_options.dpi = parse_dpi(o);

  const Attention& variant = Registry::builtin().get(s.variant);
  Params base(variant.spec().params);
  for (const std::string& assignment : o.all("param")) base.set_from_assignment(assignment);
  bool known = false;
  for (const ParamSpec& p : variant.spec().params) known = known || p.key == s.key;
  if (!known) base.set_from_assignment(sweep.substr(0, eq + 1) + s.values.front());  // names the known keys
  s.base_params = base.to_json();
  s.base_params.erase(s.key);
  s.seeds = parse_positive("seeds", seeds);
  if (o.has("length")) s.length = parse_positive("length", o.get("length"));
  if (o.has("dim")) s.dim = parse_positive("dim", o.get("dim"));
  if (o.has("qk-std")) s.qk_std = parse_number("qk-std", o.get("qk-std"));
  if (o.has("heads")) s.heads = parse_positive("heads", o.get("heads"));
  if (o.has("topk")) s.topk = parse_positive("topk", o.get("topk"));
  if (o.has("seed")) s.seed = parse_seed("seed", o.get("seed"));
  s.causal = o.has("causal");
  s.progress = terminal_progress("sweep", "values");
  const SweepResult result = run_sweep(s);
  if (!out_path.empty()) export_sweep({SweepSeries{QString(), s, result}}, QString::fromStdString(out_path), export_options);
  write_json_file(json_path, sweep_to_json(s, result));
  return 0;
}

// ---- bench --------------------------------------------------------------------------------------

int cmd_bench(int argc, char** argv) {
  const Options o = parse_options("bench", argc, argv,
                                  {"variants", "lengths", "dim", "heads", "device", "repeats", "time-budget-ms", "seed",
                                   "json", "out", "dpi"},
                                  {"causal"});
  ComplexityOptions c;
  c.variants = split_list("bench: --variants", o.require("bench", "variants"));
  for (const std::string& item : split_list("bench: --lengths", o.require("bench", "lengths")))
    c.lengths.push_back(parse_positive("lengths", item));
  const std::string json_path = o.require("bench", "json");
  check_output_folder("json", json_path);
  const std::string out_path = chart_out_path(o);
  ExportOptions export_options;
  export_options.dpi = parse_dpi(o);
  if (o.has("dim")) c.dim = parse_positive("dim", o.get("dim"));
  if (o.has("heads")) c.heads = parse_positive("heads", o.get("heads"));
  if (o.has("repeats")) c.repeats = parse_positive("repeats", o.get("repeats"));
  if (o.has("time-budget-ms")) c.time_budget_ms = parse_number("time-budget-ms", o.get("time-budget-ms"));
  if (o.has("seed")) c.seed = parse_seed("seed", o.get("seed"));
  if (o.has("device")) {
    const std::string device = o.get("device");
    if (device != "cpu" && device != "cuda") throw UsageError("bench: --device " + device + ": expected cpu or cuda");
    c.device = parse_device_preference(device);
  }
  c.causal = o.has("causal");
  c.progress = terminal_progress("bench", "points");
  const ComplexityResult result = run_complexity(c);
  if (!out_path.empty()) export_length_curves(c, result.rows, QString::fromStdString(out_path), export_options);
  write_json_file(json_path, complexity_to_json(c, result));
  return 0;
}

// ---- decoding -----------------------------------------------------------------------------------

int cmd_decoding(int argc, char** argv) {
  const Options o = parse_options("decoding", argc, argv,
                                  {"methods", "tokens", "dim", "heads", "repeats", "time-budget-ms", "seed", "json", "out",
                                   "dpi"},
                                  {});
  DecodingOptions d;
  d.methods = split_list("decoding: --methods", o.require("decoding", "methods"));
  for (const std::string& item : split_list("decoding: --tokens", o.require("decoding", "tokens")))
    d.tokens.push_back(parse_positive("tokens", item));
  const std::string json_path = o.require("decoding", "json");
  check_output_folder("json", json_path);
  const std::string out_path = chart_out_path(o);
  ExportOptions export_options;
  export_options.dpi = parse_dpi(o);
  if (o.has("dim")) d.dim = parse_positive("dim", o.get("dim"));
  if (o.has("heads")) d.heads = parse_positive("heads", o.get("heads"));
  if (o.has("repeats")) d.repeats = parse_positive("repeats", o.get("repeats"));
  if (o.has("time-budget-ms")) d.time_budget_ms = parse_number("time-budget-ms", o.get("time-budget-ms"));
  if (o.has("seed")) d.seed = parse_seed("seed", o.get("seed"));
  d.progress = terminal_progress("decoding", "points");
  const std::vector<DecodingRow> rows = run_decoding(d);
  if (!out_path.empty()) export_decoding_curves(d, rows, QString::fromStdString(out_path), export_options);
  write_json_file(json_path, decoding_to_json(d, rows));
  return 0;
}

// ---- figure -------------------------------------------------------------------------------------

int cmd_figure(int argc, char** argv) {
  const Options o = parse_options("figure", argc, argv,
                                  {"text", "session", "model", "weights", "variant", "param", "seed", "weight-seed", "layer",
                                   "head", "view", "view-option", "colormap", "dpi", "out"},
                                  {"causal"});
  const std::string out_path = o.require("figure", "out");
  if (o.has("text") == o.has("session")) throw UsageError("figure needs exactly one of --text and --session");
  check_output_folder("out", out_path);

  Session s = o.has("session") ? Session::load(o.get("session")) : Session();
  if (o.has("text")) s.text = o.get("text");
  if (o.has("model")) s.model = o.get("model");
  if (o.has("weights")) s.weights = o.get("weights");
  if (o.has("variant") && o.get("variant") != s.variant) {
    s.variant = o.get("variant");
    s.params = nlohmann::json::object();  // parameters belong to the variant they were set for
  }
  if (o.has("causal")) s.causal = true;
  if (o.has("seed")) s.attention_seed = parse_seed("seed", o.get("seed"));
  if (o.has("weight-seed")) s.weight_seed = parse_seed("weight-seed", o.get("weight-seed"));
  if (o.has("layer")) s.layer = parse_index("layer", o.get("layer"));
  if (o.has("head")) s.head = parse_index("head", o.get("head"));
  if (o.has("view") && o.get("view") != s.view) {
    s.view = o.get("view");
    s.view_options = nlohmann::json::object();  // options belong to the view they were set for
  }
  if (o.has("colormap")) s.colormap = o.get("colormap");
  const Attention& variant = Registry::builtin().get(s.variant);
  Params params(variant.spec().params);
  params.set_from_json(s.params);
  for (const std::string& assignment : o.all("param")) params.set_from_assignment(assignment);
  s.params = params.to_json();
  s = Session::from_json(s.to_json());  // validates view and colormap names
  const ViewSpec& view = view_spec(s.view);
  for (const std::string& assignment : o.all("view-option")) set_view_option(view, s.view_options, assignment);
  check_view_extension(view, QString::fromStdString(out_path));  // before computing
  double dpi = 150.0;
  if (o.has("dpi")) {
    try {
      dpi = std::stod(o.get("dpi"));
    } catch (const std::exception&) {
      throw ParamError("--dpi=" + o.get("dpi") + ": expected a number in [30, 1200]");
    }
  }

  Playground playground;
  ViewContext context;
  context.result = playground.run(s.to_request());
  context.layer = s.layer;
  context.head = s.head;
  context.colormap = Colormap::find(QString::fromStdString(s.colormap))->id();
  context.options = s.view_options;
  ExportOptions options;
  options.dpi = dpi;
  export_view(view, context, QString::fromStdString(out_path), options);
  return 0;
}

// ---- memory-depth -------------------------------------------------------------------------------

int cmd_memory_depth(int argc, char** argv) {
  const Options o = parse_options("memory-depth", argc, argv,
                                  {"layers", "length", "d-model", "heads", "d-ff", "variant", "param", "seed", "dpi", "out"}, {});
  const std::string out_path = o.require("memory-depth", "out");
  const QString out = QString::fromStdString(out_path);
  const QString suffix = QFileInfo(out).suffix().toLower();
  const QStringList allowed = {"png", "svg", "pdf", "csv", "json"};
  if (!allowed.contains(suffix)) {
    throw ParamError("--out " + out_path + ": allowed extensions .png, .svg, .pdf, .csv, .json");
  }
  check_output_folder("out", out_path);
  DepthMemoryOptions m;
  if (o.has("layers")) m.max_layers = parse_positive("layers", o.get("layers"));
  if (o.has("length")) m.length = parse_positive("length", o.get("length"));
  if (o.has("d-model")) m.d_model = parse_positive("d-model", o.get("d-model"));
  if (o.has("heads")) m.heads = parse_positive("heads", o.get("heads"));
  if (o.has("d-ff")) m.d_ff = parse_positive("d-ff", o.get("d-ff"));
  if (o.has("seed")) m.seed = parse_seed("seed", o.get("seed"));
  m.variant = o.get("variant", "softmax");
  Params params(Registry::builtin().get(m.variant).spec().params);
  for (const std::string& assignment : o.all("param")) params.set_from_assignment(assignment);
  m.params = &params;
  const std::vector<DepthMemoryPoint> points = measure_activation_memory(m);

  const auto mib = [](std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); };
  if (suffix == "csv") {
    QByteArray csv = "layers,standard_bytes,reversible_bytes,reconstruction_error,standard_ms,reversible_ms\r\n";
    for (const auto& p : points) {
      csv += QByteArray::number(p.layers) + ',' + QByteArray::number(static_cast<qlonglong>(p.standard_bytes)) + ',' +
             QByteArray::number(static_cast<qlonglong>(p.reversible_bytes)) + ',' +
             QByteArray::number(p.reconstruction_error, 'g', 6) + ',' + QByteArray::number(p.standard_ms, 'f', 3) + ',' +
             QByteArray::number(p.reversible_ms, 'f', 3) + "\r\n";
    }
    write_bytes_atomically(out, csv);
    return 0;
  }
  if (suffix == "json") {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& p : points) {
      rows.push_back({{"layers", p.layers}, {"standard_bytes", p.standard_bytes}, {"reversible_bytes", p.reversible_bytes},
                      {"reconstruction_error", p.reconstruction_error}, {"standard_ms", p.standard_ms},
                      {"reversible_ms", p.reversible_ms}});
    }
    const nlohmann::json j{{"length", m.length}, {"d_model", m.d_model}, {"heads", m.heads}, {"d_ff", m.d_ff},
                           {"variant", m.variant}, {"params", params.to_json()}, {"rows", rows}};
    write_bytes_atomically(out, QByteArray::fromStdString(j.dump(2) + "\n"));
    return 0;
  }
  LineChart chart;
  chart.title = QStringLiteral("Activation memory kept for backward vs depth");
  double worst = 0;
  for (const auto& p : points) worst = std::max(worst, p.reconstruction_error);
  chart.note = QStringLiteral("L=%1, d_model=%2, %3 heads, d_ff=%4, %5 attention · reversible reconstruction error ≤ %6")
                   .arg(m.length)
                   .arg(m.d_model)
                   .arg(m.heads)
                   .arg(m.d_ff)
                   .arg(QString::fromStdString(m.variant))
                   .arg(worst, 0, 'g', 2);
  chart.x_label = QStringLiteral("layers");
  chart.y_label = QStringLiteral("activations kept (MiB)");
  ChartSeries standard{QStringLiteral("standard residual stack"), okabe_ito(OkabeIto::Vermillion), {}, false, {}};
  ChartSeries reversible{QStringLiteral("reversible stack"), okabe_ito(OkabeIto::Blue), {}, false, {}};
  for (const auto& p : points) {
    standard.points.emplace_back(p.layers, mib(p.standard_bytes));
    reversible.points.emplace_back(p.layers, mib(p.reversible_bytes));
  }
  chart.series = {standard, reversible};
  ExportOptions options;
  if (o.has("dpi")) {
    try {
      options.dpi = std::stod(o.get("dpi"));
    } catch (const std::exception&) {
      throw ParamError("--dpi=" + o.get("dpi") + ": expected a number in [30, 1200]");
    }
  }
  export_figure(line_chart_figure(chart, options.style), out, options);
  return 0;
}

// ---- models, layer-types, inspect ----------------------------------------------------------------

int cmd_models(int argc, char** argv) {
  const Options o = parse_options("models", argc, argv, {}, {"json"});
  const std::vector<TrainedModelEntry> trained = shipped_trained_models();
  if (o.has("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const ModelConfig& m : builtin_models()) list.push_back(m.to_json());
    for (const TrainedModelEntry& t : trained) {
      list.push_back({{"name", t.name}, {"trained", true}, {"available", t.available}, {"folder", t.folder}, {"summary", t.summary},
                      {"config", t.available ? resolve_model_config(t.name).to_json() : nlohmann::json()}});
    }
    std::cout << list.dump(2) << "\n";
    return 0;
  }
  for (const ModelConfig& m : builtin_models()) {
    std::cout << m.name << " — " << m.layer_count() << (m.layer_count() == 1 ? " layer" : " layers") << ", d_model " << m.d_model << ", " << m.heads
              << " heads, up to " << m.max_length << " tokens\n    " << m.description << "\n";
  }
  for (const TrainedModelEntry& t : trained) {
    std::cout << t.name << " — " << (t.available ? "installed in " + t.folder : std::string("not installed")) << "\n    " << t.summary << "\n";
  }
  return 0;
}

nlohmann::json schema_json(const std::vector<ParamSpec>& schema) {
  nlohmann::json params = nlohmann::json::array();
  for (const ParamSpec& p : schema) params.push_back(param_spec_to_json(p));
  return params;
}

int cmd_layer_types(int argc, char** argv) {
  const Options o = parse_options("layer-types", argc, argv, {}, {"json"});
  if (o.has("json")) {
    nlohmann::json types = nlohmann::json::array(), ffn = nlohmann::json::array();
    for (const LayerTypeSpec& t : layer_types()) {
      const char* attention = t.attention == LayerAttention::Variant ? "variant"
                              : t.attention == LayerAttention::Own   ? "own"
                                                                     : "none";
      types.push_back({{"name", t.name}, {"title", t.title}, {"paper", t.paper}, {"summary", t.summary},
                       {"attention", attention}, {"own_feed_forward", t.own_feed_forward},
                       {"default_ffn", t.default_ffn}, {"params", schema_json(t.params)}});
    }
    for (const FeedForwardKindSpec& f : feed_forward_kinds()) {
      ffn.push_back({{"name", f.name}, {"title", f.title}, {"paper", f.paper}, {"summary", f.summary},
                     {"params", schema_json(f.params)}});
    }
    std::cout << nlohmann::json{{"layer_types", types}, {"ffn_kinds", ffn}}.dump(2) << "\n";
    return 0;
  }
  const auto print_params = [](const std::vector<ParamSpec>& schema) {
    for (const ParamSpec& p : schema) {
      std::cout << "    " << p.key << "=" << param_value_to_string(p.default_value) << "   (" << p.describe_range() << ") "
                << p.help << "\n";
    }
  };
  std::cout << "layer types (\"type\"):\n";
  for (const LayerTypeSpec& t : layer_types()) {
    std::cout << "  " << t.name << " — " << t.title << "\n    " << t.summary << "\n";
    print_params(t.params);
  }
  std::cout << "feed-forward kinds (\"ffn\"):\n";
  for (const FeedForwardKindSpec& f : feed_forward_kinds()) {
    std::cout << "  " << f.name << " — " << f.title << "\n    " << f.summary << "\n";
    print_params(f.params);
  }
  return 0;
}

int cmd_inspect(int argc, char** argv) {
  const Options o = parse_options("inspect", argc, argv,
                                  {"model", "text", "seed", "weight-seed", "weights", "variant", "param", "json"},
                                  {"causal"});
  PlaygroundRequest request;
  request.model = o.require("inspect", "model");
  request.text = o.require("inspect", "text");
  const std::string out_path = o.require("inspect", "json");
  check_output_folder("json", out_path);
  request.weights = o.get("weights");
  request.variant = o.get("variant", "softmax");
  request.causal = o.has("causal");
  if (o.has("seed")) request.attention_seed = parse_seed("seed", o.get("seed"));
  if (o.has("weight-seed")) request.weight_seed = parse_seed("weight-seed", o.get("weight-seed"));
  Params params(Registry::builtin().get(request.variant).spec().params);
  for (const std::string& assignment : o.all("param")) params.set_from_assignment(assignment);
  request.params = params.to_json();
  request.compare_exact = false;

  Playground playground;
  const PlaygroundResultPtr r = playground.run(request);
  nlohmann::json tokens = nlohmann::json::array();
  for (const Token& t : r->tokens) tokens.push_back({{"text", t.text}, {"id", t.id}, {"begin", t.begin}, {"end", t.end}});
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t i = 0; i < r->layers.size(); ++i) {
    const Trace& trace = r->layers[i];
    nlohmann::json layer{{"index", i},
                         {"type", r->layer_types[i]},
                         {"attention", r->layer_variants[i]},
                         {"attention_shape", trace.weights.empty() ? nlohmann::json::array()
                                                                   : nlohmann::json(trace.weights.shape())}};
    if (trace.extras) layer["attention_extras"] = {{"kind", std::string(trace.extras->kind())}, {"data", trace.extras->to_json()}};
    for (const auto& extra : trace.layer_extras) layer[std::string(extra->kind())] = extra->to_json();
    layers.push_back(std::move(layer));
  }
  const nlohmann::json out{{"model", r->model.to_json()}, {"weights", r->weights_source}, {"tokenizer", r->tokenizer},
                           {"variant", r->variant},       {"params", r->params.to_json()}, {"causal", r->causal},
                           {"weight_seed", r->weight_seed}, {"attention_seed", r->attention_seed},
                           {"tokens", tokens},            {"layers", layers},
                           {"forward_ms", r->forward_ms}, {"peak_bytes", r->peak_bytes}};
  write_json_file(out_path, out);
  return 0;
}

// ---- info ---------------------------------------------------------------------------------------

int cmd_info(int argc, char** argv) {
  parse_options("info", argc, argv, {}, {});
  std::cout << "AttnLab " << ATTNLAB_VERSION << "\n"
            << "device: " << select_device(DevicePreference::Auto).describe() << "\n"
            << "CUDA compiled in: " << (cuda_compiled_in() ? "yes" : "no") << "\n"
            << "CPU threads: " << cpu_threads() << "\n";
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "attnlab-cli: no command given; commands: variants, models, layer-types, attend, compare, sweep, figure, inspect, memory-depth, bench, decoding, info (see --help)\n";
    return kExitUsage;
  }
  const std::string command = argv[1];
  try {
    if (command == "--help" || command == "-h" || command == "help") {
      std::fputs(kUsage, stdout);
      std::fputs(view_options_usage().c_str(), stdout);
      return 0;
    }
    if (command == "--version") {
      std::cout << "attnlab-cli " << ATTNLAB_VERSION << "\n";
      return 0;
    }
    if (command == "variants") return cmd_variants(argc, argv);
    if (command == "attend") return cmd_attend(argc, argv);
    if (command == "figure") return cmd_figure(argc, argv);
    if (command == "compare") return cmd_compare(argc, argv);
    if (command == "sweep") return cmd_sweep(argc, argv);
    if (command == "memory-depth") return cmd_memory_depth(argc, argv);
    if (command == "bench") return cmd_bench(argc, argv);
    if (command == "decoding") return cmd_decoding(argc, argv);
    if (command == "models") return cmd_models(argc, argv);
    if (command == "layer-types") return cmd_layer_types(argc, argv);
    if (command == "inspect") return cmd_inspect(argc, argv);
    if (command == "info") return cmd_info(argc, argv);
    if (command == "bleu") return cmd_bleu(argc, argv);
    if (command == "data") return cmd_data(argc, argv);
    if (command == "baseline") return cmd_baseline(argc, argv);
    if (command == "train") return cmd_train(argc, argv);
    if (command == "translate") return cmd_translate(argc, argv);
    if (command == "perplexity") return cmd_perplexity(argc, argv);
    if (command == "approx-quality") return cmd_approx_quality(argc, argv);
    throw UsageError("unknown command '" + command + "'; commands: variants, models, layer-types, attend, compare, sweep, figure, inspect, memory-depth, bench, decoding, info (see --help)");
  } catch (const UsageError& e) {
    std::cerr << "attnlab-cli: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::bad_alloc&) {
    std::cerr << "attnlab-cli: out of memory: the input is too large for this machine\n";
    return kExitError;
  } catch (const std::exception& e) {
    std::cerr << "attnlab-cli: " << e.what() << "\n";
    return kExitError;
  }
}

}  // namespace attnlab::cli
