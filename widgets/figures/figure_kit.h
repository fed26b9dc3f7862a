// Building blocks shared by the QPainter figures of the variant views (LSH buckets, routing
// clusters, BigBird blocks, YOSO kernel) and the line chart:
//   - text metrics of a FigureStyle on a paint device, and the 1200 dpi device natural sizes
//     are measured on;
//   - caption and single-line text drawing (elided, never spilling out of their box);
//   - panels flowed into one, two or three rows (the arrangement with the largest panels wins);
//   - plot axes, linear with "nice" 1-2-5 ticks or logarithmic by decades, and Unicode
//     superscripts for decade labels;
//   - the categorical palettes (Okabe–Ito, Paul Tol "bright");
//   - the frame of a titled figure (title line on top, legend and summary lines at the bottom),
//     legend entries and the note box that stands in for a panel with nothing to show;
//   - heatmap panels flowed with the others, on sequential colour scales [0, largest];
//   - the layer extras a view draws, checked against the view's requirement, its painted figure
//     and its data export (format from the extension, JSON with the selection).
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
#include "figures/figure_export.h"
#include "figures/heatmap_figure.h"
#include "trace_view.h"

class QFontMetricsF;
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
// The largest horizontal advance of `texts` in `fm` (room for tick or legend labels).
double widest_text(const QFontMetricsF& fm, const QStringList& texts);
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
// A figure's natural size in points: `width_lines` x `height_lines` label line heights measured
// on measuring_device().
QSizeF natural_size_in_lines(const FigureStyle& style, double width_lines, double height_lines);

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

// ---- the frame of a titled figure ------------------------------------------------------------

// Inside the margins: the title line, then the body, then a legend line and a summary line, a
// gap apart each.
struct TitledFrame {
  QRectF title;
  QRectF body;
  QRectF legend;
  QRectF summary;
};

// The room above the body (margin, title line, gap) and below it (gap, legend, gap, summary,
// margin).
double titled_frame_header(const FigureText& text);
double titled_frame_footer(const FigureText& text);
// The frame filling `target`.
TitledFrame titled_frame(const FigureText& text, const QRectF& target);
// The frame around panels flowed with titled_flow_spacing: the title from placement.top, the
// legend a gap below placement.footer_top; the body between them.
TitledFrame titled_frame(const FigureText& text, const QRectF& target, const PanelFlow& placement);
// Panels `panel_gap_lines` and rows `row_gap_lines` label line heights apart, in a titled frame.
PanelFlowSpacing titled_flow_spacing(const FigureText& text, double panel_gap_lines, double row_gap_lines);

// The title centred in `rect` in the title font and the foreground colour.
void draw_centred_title(QPainter& painter, const QRectF& rect, const FigureText& text, const FigureStyle& style,
                        const QString& title);
// A line (legend, summary) in the label font and the foreground colour, elided to `rect`.
void draw_summary_line(QPainter& painter, const QRectF& rect, const FigureText& text, const FigureStyle& style,
                       const QString& line);
// A legend entry at `x` of `row`: a sample (drawn by `sample` into its box) and `label`; returns
// the x after it, unchanged when it does not fit.
double draw_legend_entry(QPainter& painter, double x, const QRectF& row, const QString& label, const FigureText& text,
                         const FigureStyle& style, const std::function<void(const QRectF&)>& sample);
// The box that stands in for panels with nothing to show: a faint frame `frame_lines` label line
// heights wide and `note` wrapped inside it.
void draw_note_box(QPainter& painter, const QRectF& box, const FigureText& text, const FigureStyle& style, double frame_lines,
                   const QString& note);

// ---- heatmap panels -------------------------------------------------------------------------

// `id` for values on [0, max]: the diverging coolwarm gives way to viridis.
ColormapId sequential_colormap(ColormapId id);
// The largest finite value, or 1 when none is above 0 (the top of a [0, max] colour scale).
float largest_finite(const std::vector<float>& values);
// A heatmap figure (heatmap_figure.h) as a panel of kind `kind`: its matrix cols/m x rows/m panel
// sides (m: the longer of the two) times `scale`; left the room of the row labels, right that of
// the colorbar, top a caption line, bottom the column labels, measured on `device`.
FlowPanel heatmap_flow_panel(int kind, const HeatmapData& data, const FigureStyle& style, const FigureText& text,
                             const QPaintDevice* device, double scale = 1.0);
// The colour that outlines a heatmap's cells: contrasting with the low end of its colormap.
QColor heatmap_outline_color(const HeatmapData& data);
// `rect` outlined, `width` wide, with square corners.
void draw_outline(QPainter& painter, const QRectF& rect, const QColor& colour, double width);
// A vertical line at `x` across `matrix`, a little beyond its top and bottom (a boundary between
// columns), `width` wide.
void draw_column_boundary(QPainter& painter, const QRectF& matrix, double x, const QColor& colour, double width,
                          const FigureText& text);

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

// view_json_bytes written to `path` atomically; throws IoError when it cannot be written.
void write_view_json(const QString& path, nlohmann::json j, int layer, int head, const QStringList& tokens);

// The data format `path` names: its extension in lower case, when it is one of `formats`.
// Throws ParamError "cannot export '<path>' from view '<view>': data formats are .csv, .json"
// otherwise.
QString view_data_format(const std::string& view, const QString& path, const QStringList& formats);

// A view's figure: `size` (points), `title`, `description`, drawn by `draw` for a copy of
// `context` in `style`.
using ViewFigureDraw = std::function<void(QPainter&, const QRectF&, const ViewContext&, const FigureStyle&)>;
PaintedFigure view_painted_figure(const QSizeF& size, const QString& title, const QString& description,
                                  const ViewContext& context, const FigureStyle& style, ViewFigureDraw draw);

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

// The extra of model view `view` (model_layer_extra for `kind`), after check_view_context; throws
// ParamError "view '<view>': <missing>" when no layer carries one.
template <typename X>
const X& checked_model_layer_extra(const ViewContext& context, const std::string& view, std::string_view kind,
                                   const char* missing) {
  check_view_context(view_spec(view), context);
  const X* extra = model_layer_extra<X>(context, kind);
  if (!extra) throw ParamError("view '" + view + "': " + missing);
  return *extra;
}

// The context's highlighted token when it is one of the `tokens` drawn, else -1.
int highlighted_token(const ViewContext& context, std::int64_t tokens);
// The type of `layer` of `result`, `fallback` when the result names none.
QString layer_type_name(const PlaygroundResult& result, int layer, const QString& fallback);

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
