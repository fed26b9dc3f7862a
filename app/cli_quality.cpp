// attnlab-cli approx-quality: what swapping a trained model's softmax self-attention for an
// approximation costs — test-set BLEU of the translator and perplexity of the language model per
// variant setting, as a table, JSON and a figure.
#include <QPainter>
#include <QString>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_options.h"
#include "core/error.h"
#include "decode/evaluation.h"
#include "figures/figure_export.h"
#include "figures/figure_kit.h"
#include "figures/line_chart.h"

namespace attnlab::cli {
namespace {

struct VariantSetting {
  std::string name;
  std::vector<std::string> params;  // "key=value"
  std::string label() const {
    std::string s = name;
    for (const std::string& p : params) s += " " + p;
    return s;
  }
};

// "performer:n_features=16,orthogonal=true" → {performer, [n_features=16, orthogonal=true]}
VariantSetting parse_setting(const std::string& text) {
  VariantSetting v;
  const auto colon = text.find(':');
  v.name = text.substr(0, colon);
  if (v.name.empty()) throw UsageError("--variant '" + text + "': expected NAME or NAME:key=value,key=value");
  if (colon != std::string::npos) {
    std::string rest = text.substr(colon + 1);
    std::size_t start = 0;
    while (start <= rest.size()) {
      const auto comma = rest.find(',', start);
      const std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (item.find('=') == std::string::npos) throw UsageError("--variant '" + text + "': '" + item + "' is not key=value");
      v.params.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return v;
}

// The default sweep: the trained softmax, Performer by feature count, Reformer LSH by hash rounds
// (separate keys as trained, chunks of 4 so that hashing matters at sentence lengths), BigBird
// and linear attention with their defaults.
std::vector<VariantSetting> default_settings() {
  std::vector<VariantSetting> s = {{"softmax", {}}};
  for (const char* m : {"16", "64", "256"}) s.push_back({"performer", {std::string("n_features=") + m}});
  for (const char* h : {"1", "2", "4", "8"}) {
    s.push_back({"reformer_lsh", {"shared_qk=false", "bucket_size=4", std::string("n_hashes=") + h}});
  }
  s.push_back({"bigbird", {}});
  s.push_back({"linear", {}});
  return s;
}

// The number a sweep varies (for the figure's x axis), or NaN for a single setting.
double sweep_value(const VariantSetting& v) {
  const char* key = v.name == "performer" ? "n_features=" : v.name == "reformer_lsh" ? "n_hashes=" : nullptr;
  if (!key) return std::nan("");
  for (const std::string& p : v.params) {
    if (p.rfind(key, 0) == 0) return std::stod(p.substr(std::string(key).size()));
  }
  return std::nan("");
}

LineChart metric_chart(const std::vector<VariantSetting>& settings, const std::vector<double>& values, const QString& title,
                       const QString& y_label) {
  LineChart chart;
  chart.title = title;
  chart.x_label = QStringLiteral("n_features (performer) · n_hashes (reformer_lsh)");
  chart.y_label = y_label;
  chart.log_x = true;
  chart.legend = LegendCorner::Auto;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    const double x = sweep_value(settings[i]);
    if (std::isfinite(x)) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  }
  std::vector<std::string> families;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    if (!std::isfinite(values[i])) continue;
    const double x = sweep_value(settings[i]);
    const bool swept = std::isfinite(x);
    const std::string family = swept ? settings[i].name : settings[i].label();
    auto it = std::find(families.begin(), families.end(), family);
    if (it == families.end()) {
      families.push_back(family);
      ChartSeries s;
      s.name = QString::fromStdString(family);
      // Okabe–Ito without yellow (too faint on white); softmax, the reference, in black.
      const OkabeIto order[] = {OkabeIto::Blue, OkabeIto::Vermillion, OkabeIto::BluishGreen, OkabeIto::ReddishPurple,
                                OkabeIto::Orange, OkabeIto::SkyBlue, OkabeIto::Grey};
      s.color = settings[i].name == "softmax" ? QColor(0, 0, 0) : okabe_ito(order[(families.size() - 1) % 7]);
      s.dashed = !swept;  // a single setting is a horizontal reference line across the sweeps
      chart.series.push_back(s);
      it = families.end() - 1;
    }
    ChartSeries& s = chart.series[static_cast<std::size_t>(it - families.begin())];
    if (swept) {
      s.points.emplace_back(x, values[i]);
    } else {
      s.points = {QPointF(lo, values[i]), QPointF(hi, values[i])};
    }
  }
  if (!(lo <= hi)) lo = hi = 1;  // no sweep: the references span 1 .. 2
  if (hi <= lo) hi = 2 * lo;
  for (ChartSeries& s : chart.series) {
    if (s.dashed) s.points = {QPointF(lo, s.points.front().y()), QPointF(hi, s.points.front().y())};
  }
  for (double t = 1; t <= hi * 1.001; t *= 2) {
    if (t >= lo * 0.999) chart.x_ticks.push_back(t);
  }
  for (ChartSeries& s : chart.series) std::sort(s.points.begin(), s.points.end(), [](auto a, auto b) { return a.x() < b.x(); });
  return chart;
}

}  // namespace

int cmd_approx_quality(int argc, char** argv) {
  const Options o = parse_options("approx-quality", argc, argv,
                                  {"model", "lm", "src", "ref", "lm-file", "sentences", "beam", "variant", "seed", "json", "out", "dpi"},
                                  {});
  const std::string model_dir = o.require("approx-quality", "model");
  const std::string src_path = o.require("approx-quality", "src"), ref_path = o.require("approx-quality", "ref");
  if (o.has("json")) check_output_folder("json", o.get("json"));
  if (o.has("out")) check_output_folder("out", o.get("out"));
  std::vector<VariantSetting> settings;
  for (const std::string& v : o.all("variant")) settings.push_back(parse_setting(v));
  if (settings.empty()) settings = default_settings();
  const std::uint64_t seed = parse_seed("seed", o.get("seed", "0"));
  std::vector<AttentionChoice> choices;
  for (const VariantSetting& s : settings) choices.push_back(make_attention_choice(s.name, s.params, seed));  // bad params fail here

  const auto model = TrainedModel::load(model_dir);
  std::shared_ptr<const TrainedModel> lm;
  if (o.has("lm")) lm = TrainedModel::load(o.get("lm"));
  std::vector<std::string> sources = read_sentence_file(src_path), refs = read_sentence_file(ref_path);
  if (sources.size() != refs.size()) {
    throw ParamError(src_path + " has " + std::to_string(sources.size()) + " lines but " + ref_path + " has " +
                     std::to_string(refs.size()));
  }
  if (o.has("sentences")) {
    const std::size_t n = static_cast<std::size_t>(parse_positive("sentences", o.get("sentences")));
    if (n < sources.size()) {
      sources.resize(n);
      refs.resize(n);
    }
  }
  const std::vector<std::string> lm_text = lm ? read_sentence_file(o.get("lm-file", ref_path)) : std::vector<std::string>{};
  TranslateOptions topt;
  topt.beam = parse_positive("beam", o.get("beam", "1"));

  nlohmann::json rows = nlohmann::json::array();
  std::vector<double> bleu(settings.size(), std::nan("")), ppl(settings.size(), std::nan(""));
  std::printf("%-46s %8s %8s %10s %10s %9s\n", "self-attention", "BLEU", "dBLEU", "LM ppl", "dppl", "ms/sent");
  for (std::size_t i = 0; i < settings.size(); ++i) {
    topt.attention = choices[i];
    std::cerr << "approx-quality: " << settings[i].label() << " (" << i + 1 << "/" << settings.size() << ")\n";
    nlohmann::json row = {{"variant", settings[i].name}, {"params", settings[i].params}, {"label", settings[i].label()}};
    try {
      const TranslationEvaluation e = evaluate_translation(*model, sources, refs, topt);
      bleu[i] = e.bleu.score;
      row["bleu"] = e.bleu.score;
      row["bleu_line"] = e.bleu.signature_line();
      row["mean_ms"] = e.mean_ms;
      row["failed"] = e.failed;
      if (lm) {
        const ScoreSums s = score_language_model(*lm, lm_text, choices[i]);
        ppl[i] = std::exp(s.nll / static_cast<double>(std::max<std::int64_t>(s.tokens, 1)));
        row["perplexity"] = ppl[i];
        row["lm_tokens"] = s.tokens;
      }
    } catch (const ParamError& e) {  // a setting the variant refuses at these shapes: reported, not fatal
      row["error"] = e.what();
      std::cerr << "approx-quality: " << settings[i].label() << ": " << e.what() << "\n";
    }
    rows.push_back(row);
    const double b0 = bleu[0], p0 = ppl[0];
    std::printf("%-46s %8.2f %+8.2f %10.2f %+10.2f %9.1f\n", settings[i].label().c_str(), bleu[i], bleu[i] - b0, ppl[i],
                ppl[i] - p0, row.value("mean_ms", std::nan("")));
    std::fflush(stdout);
  }
  const nlohmann::json result = {{"model", model_dir},
                                 {"lm", o.get("lm", "")},
                                 {"sentences", sources.size()},
                                 {"beam", topt.beam},
                                 {"seed", seed},
                                 {"rows", rows}};
  if (o.has("json")) write_json_file(o.get("json"), result);
  if (o.has("out")) {
    ExportOptions eo;
    const FigureStyle style = eo.style;
    const LineChart bleu_chart = metric_chart(settings, bleu, QStringLiteral("Test BLEU with the self-attention swapped"),
                                              QStringLiteral("BLEU"));
    const bool with_lm = static_cast<bool>(lm);
    const LineChart ppl_chart = metric_chart(settings, ppl, QStringLiteral("Language-model perplexity with the self-attention swapped"),
                                             QStringLiteral("perplexity"));
    PaintedFigure figure;
    const QSizeF one = line_chart_size(bleu_chart, style);
    figure.size = with_lm ? QSizeF(one.width(), 2 * one.height()) : one;
    figure.title = bleu_chart.title;
    figure.background = style.background;
    figure.draw = [=](QPainter& painter, const QRectF& target) {
      if (!with_lm) {
        draw_line_chart(painter, target, bleu_chart, style);
        return;
      }
      const double h = target.height() / 2;
      draw_line_chart(painter, QRectF(target.left(), target.top(), target.width(), h), bleu_chart, style);
      draw_line_chart(painter, QRectF(target.left(), target.top() + h, target.width(), h), ppl_chart, style);
    };
    if (o.has("dpi")) eo.dpi = parse_number("dpi", o.get("dpi"));
    export_figure(figure, QString::fromStdString(o.get("out")), eo);
  }
  return 0;
}

}  // namespace attnlab::cli
