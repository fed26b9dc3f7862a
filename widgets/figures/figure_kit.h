// Building blocks shared by the QPainter figures of the variant views (LSH buckets, routing
// clusters, BigBird blocks, YOSO kernel) and the line chart:
//   - text metrics of a FigureStyle on a paint device, and the 1200 dpi device natural sizes
//     are measured on;
//   - caption and single-line text drawing (elided, never spilling out of their box);
//   - panels flowed into one, two or three rows (the arrangement with the largest panels wins);
//   - plot axes, linear with "nice" 1-2-5 ticks or logarithmic by decades, and Unicode
//     superscripts for decade labels;
//   - the categorical palettes (Okabe–Ito, Paul Tol "bright");
//   - the layer extras a view draws, checked against the view's requirement.
// Lengths are in the painter's device units and derive from the label font's line height (see
// heatmap_figure.h), so a figure keeps its proportions at any dpi.
#pragma once

#include <QByteArray>
#include <QColor>
#include <QFont>
#include <QImage>
#include <QRectF>
#include <QSizeF>
#include <QString>
#include <QStringList>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "figures/heatmap_figure.h"
#include "trace_view.h"

class QPainter;
class QPaintDevice;

namespace attnlab {

// ---- text -----------------------------------------------------------------------------------

// How a figure derives its fonts and basic lengths from the style's label font.
struct FigureTextSpec {
  double title_scale = 1.2;   // title: the bold label font this much larger
  double small_scale = 0.85;  // footnotes and dense labels
  double margin_lines = 0.8;  // around the figure, in label line heights
  double gap_lines = 0.4;     // the figure's basic gap, in label line heights
};

// Fonts and their line heights measured on one device (device units).
struct FigureText {
  QFont label, bold, title, small, small_bold;
  double line = 0, small_line = 0, title_line = 0;
  double gap = 0, margin = 0;
};

FigureText measure_figure_text(const FigureStyle& style, const QPaintDevice* device, const FigureTextSpec& spec = {});
// The font `factor` times larger, whether it is sized in points or pixels.
QFont scaled_font(const QFont& font, double factor);

// Natural sizes are measured on a 1 x 1 image at this dpi and converted to points: fonts snap to
// whole device pixels, which at 72 dpi would make text a few per cent wider than it is.
inline constexpr double kMeasureDpi = 1200.0;
QImage measuring_device(double dpi = kMeasureDpi);
// A length measured on measuring_device() in points (1/72 in).
double measured_to_points(double length);
// A size measured there in whole points, rounded up with one point to spare.
QSizeF measured_size_in_points(const QSizeF& size);

// The frame of a figure's draw function: saves the painter's state (restored when the scope
// ends), turns on antialiasing of shapes and text and fills `target` with the background.
class FigureScope {
 public:
  FigureScope(QPainter& painter, const QRectF& target, const FigureStyle& style);
  ~FigureScope();
  FigureScope(const FigureScope&) = delete;
  FigureScope& operator=(const FigureScope&) = delete;

 private:
  QPainter& painter_;
};

// The style with `token` as the highlighted row and column of heatmaps (-1: none).
FigureStyle with_highlight(const FigureStyle& style, int token);

// `text` in `font`, elided to the width of `rect`, aligned inside it; the pen is left as it is.
void draw_text_line(QPainter& painter, const QRectF& rect, const QFont& font, const QString& text,
                    Qt::Alignment align = Qt::AlignLeft | Qt::AlignVCenter);
// A bold caption `width` wide whose line ends one gap above `area` (a matrix or a plot).
void draw_caption_above(QPainter& painter, const QRectF& area, double width, const FigureText& text,
                        const QColor& colour, const QString& caption);

// ---- panels flowed into rows ------------------------------------------------------------------

// A panel: a drawing area of unit_w x unit_h panel sides, with fixed room around it for
// captions, labels and colorbars.
struct FlowPanel {
  int kind = 0;  // the figure's own name for the panel
  double unit_w = 1.0, unit_h = 1.0;
  double left = 0, right = 0, top = 0, bottom = 0;

  double outer_w(double side) const { return unit_w * side + left + right; }
  double outer_h(double side) const { return unit_h * side + top + bottom; }
  QRectF inner(const QRectF& outer, double side) const {
    return QRectF(outer.left() + left, outer.top() + top, unit_w * side, unit_h * side);
  }
};

// How many consecutive panels stand in each row.
using PanelRows = std::vector<int>;

struct PanelFlowSpacing {
  double margin = 0;     // left and right of the rows
  double panel_gap = 0;  // between panels in a row
  double row_gap = 0;    // between rows
  double header = 0;     // above the first row (title)
  double footer = 0;     // below the last row (legend, summary)
};

struct PanelFlow {
  PanelRows rows;
  double side = 0;            // the panel side every panel is drawn at
  std::vector<QRectF> outer;  // per panel, with its room for text
  double top = 0;             // of the whole composition (the title starts here)
  double footer_top = 0;      // just below the last row
};

// Every split of `count` panels into one, two or three rows, one row first.
std::vector<PanelRows> panel_row_choices(int count);
QSizeF panel_rows_size(const std::vector<FlowPanel>& panels, const PanelRows& rows, double side,
                       const PanelFlowSpacing& spacing);
// The arrangement that gives the largest panel side in `target` (fewer rows win near-ties),
// centred horizontally and vertically.
PanelFlow flow_panels(const std::vector<FlowPanel>& panels, const QRectF& target, const PanelFlowSpacing& spacing);
// The size of two rows at panel side `side`, split where the wider row is narrowest.
QSizeF two_row_size(const std::vector<FlowPanel>& panels, double side, const PanelFlowSpacing& spacing);
// A figure's natural size in points: its panels (from `make_panels`) and spacing (from
// `spacing`) measured on measuring_device(), in two rows at a panel side of `panel_lines` label
// line heights.
QSizeF natural_flow_size(const FigureStyle& style, double panel_lines,
                         const std::function<std::vector<FlowPanel>(const FigureText&, const QPaintDevice*)>& make_panels,
                         const std::function<PanelFlowSpacing(const FigureText&)>& spacing);
// Room for a caption that starts above `area`: up to the right edge of its panel and most of
// the gap to the next one.
double caption_room(const std::vector<QRectF>& outer, const QRectF& area, double panel_gap);

// ---- plot axes --------------------------------------------------------------------------------

struct PlotAxis {
  double lo = 0.0, hi = 1.0;
  bool log = false;
  std::vector<double> ticks;

  double fraction(double v) const;  // [lo, hi] -> [0, 1], logarithmic when `log`
};

// Ticks at 1, 2, 5 x 10^k covering [lo, hi] in about `steps` steps; the range snaps to them.
PlotAxis nice_linear_axis(double lo, double hi, int steps);
// Whole decades covering [lo, hi] (both > 0), a tick at each.
PlotAxis decade_axis(double lo, double hi);
// Data (x, y) to a point of `plot` (y grows upwards).
QPointF plot_point(const QRectF& plot, const PlotAxis& x, const PlotAxis& y, double vx, double vy);

// An integer in Unicode superscript digits: 12 -> "¹²", -3 -> "⁻³".
QString superscript(int value);
// "10⁻³" for a decade; "0.1", "1" and "10" written out.
QString decade_label(int exponent);

// ---- colours ------------------------------------------------------------------------------------

// Okabe & Ito's colour-blind-safe qualitative colours by name (black stands in as grey, so that
// it stays visible on the dark theme).
enum class OkabeIto { Orange, SkyBlue, BluishGreen, Yellow, Blue, Vermillion, ReddishPurple, Grey };
QColor okabe_ito(OkabeIto colour);

// Categorical colours for series, clusters and buckets; they repeat after
// categorical_count(palette) entries.
//   OkabeIto:  orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple, grey
//   TolBright: Paul Tol's "bright" (mid luminance: readable on light and dark backgrounds)
enum class CategoricalPalette { OkabeIto, TolBright };
int categorical_count(CategoricalPalette palette);
QColor categorical_color(int index, CategoricalPalette palette = CategoricalPalette::OkabeIto);

// ---- the trace a view draws ---------------------------------------------------------------------

// The largest value the variant's hyperparameter `key` allows (its schema's max), for view
// options whose range follows it (the LSH round, the k-means step).
std::int64_t variant_param_max(const std::string& variant, const std::string& key);

// A view's JSON export as bytes: `j` (the trace's numbers) with the selection they belong to,
// "layer", "head" and "tokens" (the token texts), indented by one space.
QByteArray view_json_bytes(nlohmann::json j, int layer, int head, const QStringList& tokens);

// The extras of the context's layer as X, or nullptr (no result, no such layer, another kind).
template <typename X>
const X* layer_extras(const ViewContext& context) {
  if (!context.result || context.layer < 0 || context.layer >= static_cast<int>(context.result->layers.size())) return nullptr;
  return dynamic_cast<const X*>(context.result->layers[static_cast<std::size_t>(context.layer)].extras.get());
}

// Whether `result` is of `variant` and its layers carry X (a view's `accepts`).
template <typename X>
bool result_has_extras(const PlaygroundResult& result, const std::string& variant) {
  return result.variant == variant && !result.layers.empty() &&
         dynamic_cast<const X*>(result.layers.front().extras.get()) != nullptr;
}

// Model views (halting, experts, block-recurrent state, ...) draw a layer's own extras
// (Trace::layer_extras, found by kind). Whether any layer of `result` carries one (a view's
// `accepts`):
bool result_has_layer_extra(const PlaygroundResult& result, std::string_view kind);

// The layer a model view draws: the context's layer when it carries `kind`, else the first layer
// that does (the figure's title names it); -1 when none does.
int model_view_layer(const ViewContext& context, std::string_view kind);

// That layer's extra as X, or nullptr.
template <typename X>
const X* model_layer_extra(const ViewContext& context, std::string_view kind) {
  const int layer = model_view_layer(context, kind);
  if (layer < 0) return nullptr;
  return dynamic_cast<const X*>(context.result->layers[static_cast<std::size_t>(layer)].layer_extra(kind));
}

// The extras view `view` draws, after check_view_context; throws ParamError naming the view and
// the layer when that layer carries no `trace_name` trace.
template <typename X>
const X& checked_layer_extras(const ViewContext& context, const std::string& view, const char* trace_name) {
  check_view_context(view_spec(view), context);
  const X* extras = layer_extras<X>(context);
  if (!extras) {
    throw ParamError("view '" + view + "': layer " + std::to_string(context.layer) + " has no " + trace_name + " trace");
  }
  return *extras;
}

}  // namespace attnlab
