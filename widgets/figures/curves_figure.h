// The figures of the Curves panel (and of anything else that has the rows: the functions take
// rows and options, no widget): measured cost against size on log-log axes.
//
//   length scaling   two charts side by side, median time per call and peak engine memory
//                    against the sequence length L, one colour per variant (or model preset),
//                    min–max whiskers on the time, each variant's fitted slope in the legend
//                    (fit_complexity: the largest half of its lengths), dashed reference lines
//                    O(L), O(L log L), O(L^1.5), O(L²) through the first measured point of the
//                    first variant, and a ✕ at the top edge of the plot at every length a variant
//                    did not run (out of memory, refused by the cost model, past the time
//                    budget) in the variant's colour: the frontier;
//   decoding         tokens/s and the state or cache bytes against the tokens generated N, the
//                    ratio of each method to the KV cache at the largest N both reached in the
//                    legend;
//   depth memory     activation bytes kept for backward against the number of layers (linear
//                    axes), standard against reversible, the reconstruction error in the note.
//
// Every number drawn comes from the engine's rows; the figure maps them to pixels, draws the
// reference lines' shapes and divides two measured rates for a legend, nothing more. Natural
// sizes, layouts and text derive from the label font (figure_kit.h), so exports at any dpi
// keep the proportions.
#pragma once

#include <QColor>
#include <QPointF>
#include <QRectF>
#include <QSizeF>
#include <QString>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "bench/activation_memory.h"
#include "bench/complexity.h"
#include "bench/decoding.h"
#include "figures/figure_export.h"
#include "figures/figure_kit.h"

namespace attnlab {

// ---- the charts ----------------------------------------------------------------------------------

// How an axis writes its tick labels.
enum class CurveTicks {
  Plain,  // numbers; decades as 10ⁿ
  Count,  // 128, 1k, 64k, 1M (powers of two by 1024)
  Bytes,  // 1 kB, 10 MB (decimal decades)
};

struct CurveMark {
  double x = 0, y = 0;
  double low = 0, high = 0;  // min–max whisker when high > low > 0
  QString tip;               // what hovering the point says
};

// A size a series did not run at: drawn as ✕ at the top edge of the plot.
struct CurveFrontierMark {
  double x = 0;
  bool first = true;  // the first size the series stopped at (a larger ✕); later ones are smaller
  QString tip;
};

struct CurveSeries {
  QString name;  // the legend entry
  QColor color;
  std::vector<CurveMark> points;  // in x order; non-positive values are skipped on a log axis
  std::vector<CurveFrontierMark> frontier;
};

// A dashed line y = y0 · f(x) / f(x0) from x0 to the right edge, f(x) = x^exponent (· ln x).
struct CurveReference {
  QString label;  // "O(L²)"
  double x0 = 1, y0 = 1;
  double exponent = 1;
  bool log_factor = false;
};

struct CurveChart {
  QString caption;  // above the plot
  QString x_title, y_title;
  bool log_x = true, log_y = true;
  CurveTicks x_ticks_as = CurveTicks::Plain, y_ticks_as = CurveTicks::Plain;
  std::vector<double> x_ticks;  // ticks at these x (the measured sizes); empty: the axis's own
  std::vector<CurveSeries> series;
  std::vector<CurveReference> references;
  QString empty_note;  // drawn in the plot while no point can be drawn
};

struct CurvesFigureData {
  QString title;
  QString summary;                 // one line under the charts
  std::vector<CurveChart> charts;  // side by side
};
using CurvesFigureDataPtr = std::shared_ptr<const CurvesFigureData>;

// Where the parts fall, in the painter's units (hit testing, tests).
struct CurveChartLayout {
  QRectF outer;    // the chart's share of the figure
  QRectF caption;  // its caption line
  QRectF plot;     // inside the axes
  QRectF legend;   // the legend rows under the axis title
  PlotAxis x, y;
  double marker = 0;  // size of a ✕ (its centres stack this far apart)

  QPointF map(double vx, double vy) const { return plot_point(plot, x, y, vx, vy); }
  // Centre of the ✕ that is `stack`-th (0-based) at x (several series can stop at one size).
  QPointF frontier_centre(double vx, int stack) const;
};

struct CurvesMarker {
  int chart = 0, series = 0, index = 0;  // index into the series' points or frontier
  bool frontier = false;
  QPointF centre;
  QString tip;
};

struct CurvesFigureLayout {
  QRectF figure;
  QRectF title;
  QRectF summary;
  std::vector<CurveChartLayout> charts;
  std::vector<CurvesMarker> markers;  // every drawn point and ✕, in drawing order
  double hit_radius = 0;

  // The marker nearest `pos` within hit_radius, or -1.
  int marker_at(const QPointF& pos) const;
  // The ✕ of series `series` at x in chart `chart`, or nullptr.
  const CurvesMarker* frontier_marker(int chart, int series, double x) const;
};

QSizeF curves_figure_size(const CurvesFigureData& data, const FigureStyle& style);
CurvesFigureLayout compute_curves_layout(const CurvesFigureData& data, const FigureStyle& style, const QRectF& target,
                                         const QPaintDevice* device);
void draw_curves_figure(QPainter& painter, const QRectF& target, const CurvesFigureData& data, const FigureStyle& style);
PaintedFigure curves_painted_figure(CurvesFigureDataPtr data, const FigureStyle& style);

// Series colours by position (Okabe–Ito without its yellow first: it vanishes on white).
QColor curves_series_color(int index);
// The colour of reference lines and their labels.
QColor curves_reference_color(const FigureStyle& style);

// ---- length scaling ----------------------------------------------------------------------------------

// Legend entry of a variant: "softmax  slope 1.97" (time: fit.time_slope; memory:
// fit.memory_slope), the name alone while the fit has fewer than two points.
QString complexity_legend_name(const std::string& variant, const ComplexityFit& fit, bool memory);
// Charts [time, memory]; series in the order of options.variants (all of them, so colours stay
// put while rows stream in), rows of other variants ignored.
CurvesFigureData length_curves_data(const ComplexityOptions& options, const std::vector<ComplexityRow>& rows);
PaintedFigure length_curves_figure(const ComplexityOptions& options, const std::vector<ComplexityRow>& rows,
                                   const FigureStyle& style);
// The rows with a fit per variant of options.variants, as complexity_to_json wants them.
ComplexityResult complexity_result(const ComplexityOptions& options, const std::vector<ComplexityRow>& rows);
// variant,length,device,status,median_ms,min_ms,max_ms,peak_bytes,estimated_bytes,high_water_bytes
QByteArray length_curves_csv(const std::vector<ComplexityRow>& rows);
// .png/.svg/.pdf: the figure; .json: complexity_to_json; .csv: length_curves_csv. Atomic;
// ParamError for another extension or no rows.
void export_length_curves(const ComplexityOptions& options, const std::vector<ComplexityRow>& rows, const QString& path,
                          const ExportOptions& export_options);

// ---- decoding ----------------------------------------------------------------------------------------

// The method the others are compared with: softmax_kv_cache when it ran, else the first.
std::string decoding_reference_method(const DecodingOptions& options);
// Charts [tokens/s, state bytes]; series in the order of options.methods.
CurvesFigureData decoding_curves_data(const DecodingOptions& options, const std::vector<DecodingRow>& rows);
PaintedFigure decoding_curves_figure(const DecodingOptions& options, const std::vector<DecodingRow>& rows,
                                     const FigureStyle& style);
// method,tokens,status,median_ms,min_ms,max_ms,tokens_per_second,last_step_us,state_bytes
QByteArray decoding_curves_csv(const std::vector<DecodingRow>& rows);
// .json: decoding_to_json; otherwise as export_length_curves.
void export_decoding_curves(const DecodingOptions& options, const std::vector<DecodingRow>& rows, const QString& path,
                            const ExportOptions& export_options);

// ---- depth memory ------------------------------------------------------------------------------------

// One chart, layers against MiB, standard and reversible; the worst reconstruction error in the
// summary.
CurvesFigureData depth_curves_data(const DepthMemoryOptions& options, const std::vector<DepthMemoryPoint>& points);
PaintedFigure depth_curves_figure(const DepthMemoryOptions& options, const std::vector<DepthMemoryPoint>& points,
                                  const FigureStyle& style);
// {"kind": "depth_memory", "variant", "length", "d_model", "heads", "d_ff", "max_layers", "seed",
//  "rows": [{"layers", "standard_bytes", "reversible_bytes", "reconstruction_error",
//            "standard_ms", "reversible_ms"}, ...]}  (the rows as `attnlab-cli memory-depth` writes them)
nlohmann::json depth_curves_json(const DepthMemoryOptions& options, const std::vector<DepthMemoryPoint>& points);
// layers,standard_bytes,reversible_bytes,reconstruction_error,standard_ms,reversible_ms
QByteArray depth_curves_csv(const std::vector<DepthMemoryPoint>& points);
void export_depth_curves(const DepthMemoryOptions& options, const std::vector<DepthMemoryPoint>& points, const QString& path,
                         const ExportOptions& export_options);

// "1.5 MiB" (memory::format_bytes).
QString curves_bytes_text(std::int64_t bytes);

}  // namespace attnlab
