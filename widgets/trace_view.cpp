#include "trace_view.h"

#include <QFileInfo>

#include "bigbird_view.h"
#include "compare_view.h"
#include "core/error.h"
#include "experts_view.h"
#include "figures/head_grid_figure.h"
#include "gss_view.h"
#include "halting_view.h"
#include "lsh_view.h"
#include "mega_view.h"
#include "memory_view.h"
#include "perceiver_view.h"
#include "recurrent_view.h"
#include "result_views.h"
#include "routing_view.h"
#include "state_view.h"
#include "yoso_view.h"

namespace attnlab {
namespace {

// The main heatmap of one head.
ViewSpec heatmap_spec() {
  ViewSpec v;
  v.name = "heatmap";
  v.title = QStringLiteral("Heatmap");
  v.requirement = QStringLiteral("works with every variant");
  v.data_extensions = {QStringLiteral("npy"), QStringLiteral("csv")};
  v.accepts = [](const PlaygroundResult& r) { return !r.layers.empty(); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    const HeatmapDataPtr data = attention_heatmap(*c.result, c.layer, c.head, c.colormap);
    PaintedFigure figure = heatmap_painted_figure(*data, style);
    // heatmap_painted_figure refers to the data; keep it alive as long as the figure.
    figure.draw = [data, draw = figure.draw](QPainter& painter, const QRectF& target) { draw(painter, target); };
    return figure;
  };
  v.export_data = [](const ViewContext& c, const QString& path) {
    export_heatmap(*attention_heatmap(*c.result, c.layer, c.head, c.colormap), path, ExportOptions{});
  };
  return v;
}

// Every head of the selected layer.
ViewSpec heads_spec() {
  ViewSpec v;
  v.name = "heads";
  v.title = QStringLiteral("All heads");
  v.requirement = QStringLiteral("works with every variant");
  v.data_extensions = {QStringLiteral("npy"), QStringLiteral("csv")};
  v.accepts = [](const PlaygroundResult& r) { return !r.layers.empty(); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    const std::vector<HeatmapDataPtr> heads = layer_heatmaps(*c.result, c.layer, c.colormap);
    PaintedFigure figure;
    figure.size = head_grid_figure_size(heads, style);
    figure.title = QStringLiteral("AttnLab: all heads of layer %1").arg(c.layer);
    figure.background = style.background;
    figure.draw = [heads, layer = c.layer, style](QPainter& painter, const QRectF& target) {
      draw_head_grid_figure(painter, target, heads, layer, style);
    };
    return figure;
  };
  v.export_data = [](const ViewContext& c, const QString& path) {
    export_head_grid(layer_heatmaps(*c.result, c.layer, c.colormap), c.layer, path, ExportOptions{});
  };
  return v;
}

}  // namespace

const std::vector<ViewSpec>& view_specs() {
  static const std::vector<ViewSpec> specs = {heatmap_spec(),      heads_spec(),      lsh_view_spec(),
                                              routing_view_spec(), bigbird_view_spec(), yoso_view_spec(),
                                              compare_view_spec(), state_view_spec(), halting_view_spec(), experts_view_spec(), recurrent_view_spec(), perceiver_view_spec(), memory_view_spec(), mega_view_spec(), gss_view_spec()};
  return specs;
}

QStringList view_names() {
  QStringList names;
  for (const ViewSpec& v : view_specs()) names << QString::fromStdString(v.name);
  return names;
}

const ViewSpec& view_spec(const std::string& name) {
  for (const ViewSpec& v : view_specs()) {
    if (v.name == name) return v;
  }
  throw ParamError("view '" + name + "' is not known; allowed: " + view_names().join(", ").toStdString());
}

void check_view_context(const ViewSpec& view, const ViewContext& context) {
  if (!context.result) throw ParamError("view '" + view.name + "': nothing has been computed yet");
  const PlaygroundResult& r = *context.result;
  if (!view.accepts(r)) {
    throw ParamError("view '" + view.name + "' cannot draw this result (model " + r.model.name + ", variant " + r.variant +
                     "); it " + view.requirement.toStdString());
  }
  const auto layers = static_cast<int>(r.layers.size());
  if (context.layer < 0 || context.layer >= layers) {
    throw ParamError("layer " + std::to_string(context.layer) + " does not exist; model '" + r.model.name +
                     "' has layers 0.." + std::to_string(layers - 1));
  }
  const auto heads = static_cast<int>(r.heads());
  if (context.head < 0 || context.head >= heads) {
    throw ParamError("head " + std::to_string(context.head) + " does not exist; model '" + r.model.name +
                     "' has heads 0.." + std::to_string(heads - 1));
  }
}

namespace {

std::string option_keys(const ViewSpec& view) {
  std::string keys;
  for (const ParamSpec& spec : view.options) keys += (keys.empty() ? "" : ", ") + spec.key;
  return keys;
}

const ParamSpec& option_spec(const ViewSpec& view, const std::string& key) {
  for (const ParamSpec& spec : view.options) {
    if (spec.key == key) return spec;
  }
  if (view.options.empty()) throw ParamError("view '" + view.name + "' has no options; got '" + key + "'");
  throw ParamError("view '" + view.name + "' has no option '" + key + "'; its options: " + option_keys(view));
}

// Runs `set`, naming the view in a ParamError about the option's value.
template <typename Set>
void with_view_named(const ViewSpec& view, Set&& set) {
  try {
    set();
  } catch (const ParamError& e) {
    throw ParamError("view '" + view.name + "' option " + e.what());
  }
}

}  // namespace

Params view_options(const ViewSpec& view, const nlohmann::json& options) {
  if (!options.is_object()) {
    throw ParamError("options of view '" + view.name + "' must be a JSON object, got " + options.dump());
  }
  Params params(view.options);
  for (const auto& [key, value] : options.items()) {
    const ParamSpec& spec = option_spec(view, key);
    with_view_named(view, [&] { params.set(key, spec.from_json(value)); });
  }
  return params;
}

void set_view_option(const ViewSpec& view, nlohmann::json& options, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ParamError("view option '" + assignment + "' must be written key=value");
  }
  const std::string key = assignment.substr(0, eq);
  const ParamSpec& spec = option_spec(view, key);
  with_view_named(view, [&] { options[key] = param_value_to_json(spec.parse(assignment.substr(eq + 1))); });
}

void check_view_extension(const ViewSpec& view, const QString& path) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  QStringList allowed = {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf")};
  allowed << view.data_extensions;
  if (allowed.contains(suffix)) return;
  for (QString& ext : allowed) ext.prepend(QLatin1Char('.'));
  throw ParamError(QStringLiteral("cannot export '%1' from view '%2': allowed extensions %3")
                       .arg(path, QString::fromStdString(view.name), allowed.join(QStringLiteral(", ")))
                       .toStdString());
}

void export_view(const ViewSpec& view, const ViewContext& context, const QString& path, const ExportOptions& options) {
  check_view_extension(view, path);
  check_view_context(view, context);
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (view.data_extensions.contains(suffix)) {
    view.export_data(context, path);
  } else {
    export_figure(view.figure(context, options.style), path, options);
  }
}

}  // namespace attnlab
