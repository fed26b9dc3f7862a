// Views and their registry. Every view of a result — the main heatmap, the heads grid, and one
// view per family of attention variants (LSH buckets, routing clusters, BigBird blocks, YOSO
// kernels) — is a ViewSpec: which results it can draw, its figure (for PNG/SVG/PDF export and
// `attnlab-cli figure --view NAME`), its data export, and, for variant views, the interactive
// widget the window shows in its "Variant views" panel. The window and the CLI iterate this
// registry; adding a view touches neither.
//
// Views only draw. Every number a view shows (buckets, recall, projections, centroids,
// kernels) is computed by the engine on the worker thread and arrives in the variant's typed
// trace extras (see engine/attention/*.h).
#pragma once

#include <QString>
#include <QWidget>
#include <functional>
#include <string>
#include <vector>

#include "colormap.h"
#include "figures/figure_export.h"
#include "models/playground.h"

namespace attnlab {

// What a view shows: one result, the selected layer and head, the colormap and the token that
// is linked-highlighted (-1 for none).
struct ViewContext {
  PlaygroundResultPtr result;
  int layer = 0;
  int head = 0;
  ColormapId colormap = ColormapId::Viridis;
  int highlighted_token = -1;
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

 signals:
  // The user points at a token in this view (-1 when leaving), for linked highlighting.
  void tokenHovered(int token);
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
};

// heatmap, heads, then the variant views.
const std::vector<ViewSpec>& view_specs();
// Throws ParamError listing the known names.
const ViewSpec& view_spec(const std::string& name);
QStringList view_names();

// Throws ParamError naming the view, the result's variant and the requirement when the view
// cannot draw this result, or when layer/head are out of range.
void check_view_context(const ViewSpec& view, const ViewContext& context);

// Throws ParamError unless `path` ends in .png, .svg, .pdf or one of the view's data extensions.
void check_view_extension(const ViewSpec& view, const QString& path);

// PNG/SVG/PDF through the view's figure; data extensions through its export_data; anything
// else is a ParamError listing both. Atomic like every export.
void export_view(const ViewSpec& view, const ViewContext& context, const QString& path, const ExportOptions& options);

}  // namespace attnlab
