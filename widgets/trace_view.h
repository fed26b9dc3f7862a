// Views and their registry. Every view of a result — the main heatmap, the heads grid, and one
// view per family of attention variants (LSH buckets, routing clusters, BigBird blocks, YOSO
// kernels) — is a ViewSpec: which results it can draw, its figure (for PNG/SVG/PDF export and
// `attnlab-cli figure --view NAME`), its data export, and, for variant views, the interactive
// widget the window shows in its "Variant views" panel. The window and the CLI iterate this
// registry; adding a view touches neither.
//
// View options. A view may have settings of its own (the LSH hash round, the k-means step, the
// receptive-field depth, ...), declared as ParamSpecs like a variant's hyperparameters. The
// widget shows and edits them (viewOptions / setViewOptions), the window passes its widget's
// options in ViewContext::options when it exports, a session saves them ("view_options") and
// the CLI takes them as --view-option key=value, so an exported figure shows what the widget
// shows. Ranges that depend on the result are documented per option in its help text.
//
// Views only draw. Every number a view shows (buckets, recall, projections, centroids,
// kernels) is computed by the engine on the worker thread and arrives in the variant's typed
// trace extras (see engine/attention/*.h).
#pragma once

#include <QString>
#include <QWidget>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attention/params.h"
#include "colormap.h"
#include "figures/figure_export.h"
#include "models/playground.h"

namespace attnlab {

// What a view shows: one result, the selected layer and head, the colormap, the token that is
// linked-highlighted (-1 for none) and the view's own options (keys of its ViewSpec::options;
// missing keys take their defaults).
struct ViewContext {
  PlaygroundResultPtr result;
  int layer = 0;
  int head = 0;
  ColormapId colormap = ColormapId::Viridis;
  int highlighted_token = -1;
  nlohmann::json options = nlohmann::json::object();
};

// The interactive widget of a variant view.
class TraceViewWidget : public QWidget {
  Q_OBJECT

 public:
  using QWidget::QWidget;
  // A new result, layer, head or colormap; the view redraws from it (never computes).
  virtual void setContext(const ViewContext& context) = 0;
  // Linked highlighting: mark `token` wherever the view shows tokens; -1 clears.
  virtual void setHighlightedToken(int token) = 0;
  // The options the widget shows, every key of its ViewSpec::options (what an export of this
  // widget must draw). setContext does not read ViewContext::options: the widget keeps its own.
  virtual nlohmann::json viewOptions() const = 0;
  // Shows `options` (validated by view_options(); missing keys take their defaults). Throws
  // ParamError for an unknown key or a value out of its range, leaving the widget unchanged.
  virtual void setViewOptions(const nlohmann::json& options) = 0;
  // The window's new result is one this view cannot show (its tab is hidden): stop any work
  // started for the old one (the lab's sweeps).
  virtual void resultWithdrawn() {}

 signals:
  // The user points at a token in this view (-1 when leaving), for linked highlighting.
  void tokenHovered(int token);
  // An option changed (by the user or setViewOptions).
  void viewOptionsChanged();
  // A model view asks to run again with new hyperparameters of layer `layer` (its spec's
  // "params", e.g. the halting threshold): `params` holds the keys to change. The window applies
  // them to the model config (the session then holds the edited config) and reruns.
  void layerParamsEdited(int layer, const nlohmann::json& params);
};

struct ViewSpec {
  std::string name;     // "buckets": the session's "view" and the CLI's --view
  QString title;        // "LSH buckets": tab and menu title
  QString requirement;  // when a result cannot be drawn: "needs the reformer_lsh variant"
  QStringList data_extensions;  // what export_data writes, e.g. {"csv", "json"}
  std::function<bool(const PlaygroundResult&)> accepts;
  std::function<PaintedFigure(const ViewContext&, const FigureStyle&)> figure;
  // Writes the view's numbers to `path` (format from the extension, one of data_extensions).
  std::function<void(const ViewContext&, const QString& path)> export_data;
  // The widget for the "Variant views" panel; empty for views the window hosts itself.
  std::function<TraceViewWidget*(QWidget* parent)> make_widget;
  // The view's own settings (see "View options" above); empty for views without any.
  std::vector<ParamSpec> options;
};

// heatmap, heads, then the variant views.
const std::vector<ViewSpec>& view_specs();
// Throws ParamError listing the known names.
const ViewSpec& view_spec(const std::string& name);
QStringList view_names();

// Throws ParamError naming the view, the result's variant and the requirement when the view
// cannot draw this result, or when layer/head are out of range.
void check_view_context(const ViewSpec& view, const ViewContext& context);

// The view's options: the defaults of view.options with `options` (a JSON object) set over them.
// Throws ParamError naming the view: "view 'buckets' has no option 'x'; its options: round, k,
// stage", or the option's range for a bad value.
Params view_options(const ViewSpec& view, const nlohmann::json& options);
// Sets "key=value" (text as on a command line) in `options` after checking it against the
// view's option specs. Throws ParamError as view_options does.
void set_view_option(const ViewSpec& view, nlohmann::json& options, const std::string& assignment);

// Throws ParamError unless `path` ends in .png, .svg, .pdf or one of the view's data extensions.
void check_view_extension(const ViewSpec& view, const QString& path);

// PNG/SVG/PDF through the view's figure; data extensions through its export_data; anything
// else is a ParamError listing both. Atomic like every export.
void export_view(const ViewSpec& view, const ViewContext& context, const QString& path, const ExportOptions& options);

}  // namespace attnlab
