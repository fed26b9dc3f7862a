#include "session.h"

#include <QFile>
#include <fstream>

#include "attention/registry.h"
#include "colormap.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_field.h"
#include "trace_view.h"

namespace attnlab {
namespace {

constexpr const char* kFormat = "attnlab-session";
constexpr int kVersion = 1;

template <typename T>
T field(const nlohmann::json& j, const char* key, const T& fallback) {
  return json_field(j, key, fallback, "session field");
}

}  // namespace

std::string example_text(const std::string& name) {
  QFile file(QStringLiteral(":/examples/%1.txt").arg(QString::fromStdString(name)));
  if (!file.open(QIODevice::ReadOnly)) throw ParamError("no built-in example named '" + name + "'");
  return QString::fromUtf8(file.readAll()).trimmed().toStdString();
}

Session Session::with_default_example() {
  Session s;
  s.text = example_text("default");
  return s;
}

nlohmann::json Session::to_json() const {
  return nlohmann::json{{"format", kFormat},
                        {"version", kVersion},
                        {"text", text},
                        {"model", model},
                        {"weights", weights},
                        {"variant", variant},
                        {"params", params},
                        {"causal", causal},
                        {"seeds", {{"weights", weight_seed}, {"attention", attention_seed}}},
                        {"layer", layer},
                        {"head", head},
                        {"view", view},
                        {"view_options", view_options},
                        {"colormap", colormap},
                        {"model_config", model_config},
                        {"curves", curves.to_json()},
                        {"translate", translate.to_json()}};
}

Session Session::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ParamError("a session must be a JSON object");
  if (field<std::string>(j, "format", "") != kFormat) {
    throw ParamError("not an AttnLab session (field 'format' must be \"attnlab-session\")");
  }
  const int version = field<int>(j, "version", 0);
  if (version != kVersion) {
    throw ParamError("session version " + std::to_string(version) + " is not supported; this AttnLab reads version " +
                     std::to_string(kVersion));
  }
  Session s;
  s.text = field<std::string>(j, "text", "");
  s.model = field<std::string>(j, "model", s.model);
  s.weights = field<std::string>(j, "weights", "");
  s.variant = field<std::string>(j, "variant", s.variant);
  s.params = j.contains("params") ? j.at("params") : nlohmann::json::object();
  s.causal = field<bool>(j, "causal", false);
  if (j.contains("seeds")) {
    const auto& seeds = j.at("seeds");
    if (!seeds.is_object()) throw ParamError("session field 'seeds' must be an object");
    s.weight_seed = field<std::uint64_t>(seeds, "weights", s.weight_seed);
    s.attention_seed = field<std::uint64_t>(seeds, "attention", s.attention_seed);
  }
  s.layer = field<int>(j, "layer", 0);
  s.head = field<int>(j, "head", 0);
  s.view = field<std::string>(j, "view", s.view);
  if (j.contains("view_options")) s.view_options = j.at("view_options");
  s.colormap = field<std::string>(j, "colormap", s.colormap);
  if (j.contains("model_config") && !j.at("model_config").is_null()) {
    try {
      const ModelConfig config = ModelConfig::from_json(j.at("model_config"));
      s.model_config = config.to_json();
      s.model = config.name;
    } catch (const ParamError& e) {
      throw ParamError(std::string("session model_config: ") + e.what());
    }
  }

  if (j.contains("curves") && !j.at("curves").is_null()) {
    try {
      s.curves = CurvesSettings::from_json(j.at("curves"));
    } catch (const ParamError& e) {
      throw ParamError(std::string("session ") + e.what());
    }
  }
  if (j.contains("translate") && !j.at("translate").is_null()) {
    try {
      s.translate = TranslateSettings::from_json(j.at("translate"));
    } catch (const ParamError& e) {
      throw ParamError(std::string("session ") + e.what());
    }
  }

  // Validate what can be checked without running the model.
  const Attention& variant = Registry::builtin().get(s.variant);
  Params params(variant.spec().params);
  params.set_from_json(s.params);
  try {
    attnlab::view_options(view_spec(s.view), s.view_options);
  } catch (const ParamError& e) {
    throw ParamError(std::string("session ") + e.what());
  }
  if (!Colormap::find(QString::fromStdString(s.colormap))) {
    throw ParamError("session colormap '" + s.colormap + "' is not known; allowed: " +
                     Colormap::names().join(", ").toStdString());
  }
  if (s.layer < 0) throw ParamError("session layer must be 0 or more, got " + std::to_string(s.layer));
  if (s.head < 0) throw ParamError("session head must be 0 or more, got " + std::to_string(s.head));
  return s;
}

Session Session::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open session '" + path + "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError("session '" + path + "' is not valid JSON (" + e.what() + ")");
  }
  try {
    return from_json(j);
  } catch (const ParamError& e) {
    throw ParamError("session '" + path + "': " + e.what());
  }
}

void Session::save(const std::string& path) const {
  const std::string text_json = to_json().dump(2) + "\n";
  write_file_atomically(path, [&](std::ostream& out) { out << text_json; });
}

PlaygroundRequest Session::to_request() const {
  PlaygroundRequest r;
  r.text = text;
  r.model = model;
  r.model_config = model_config;
  r.weights = weights;
  r.variant = variant;
  r.params = params;
  r.causal = causal;
  r.weight_seed = weight_seed;
  r.attention_seed = attention_seed;
  r.compare_layer = layer;  // the comparison with exact attention is drawn for the layer on screen
  return r;
}

}  // namespace attnlab
