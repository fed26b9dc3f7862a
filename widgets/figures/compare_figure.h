// The "Approximation lab" figure: one layer and head of a variant next to exact softmax
// attention on the same q, k, v (PlaygroundResult::comparisons, computed by the engine):
//   - exact softmax weights A* and the variant's weights A, on one colour scale or each on its
//     own ("scale" option), with token labels and colorbars;
//   - their difference A − A* on the diverging map (coolwarm), symmetric about zero;
//   - a strip of the top-k overlap of every query row of this head (0..1 through the colormap);
//   - the metrics of this head and of all heads: relative output error, mean row KL, top-k
//     overlap with its k, and the rows compared.
// Panels flow into one to three rows like the other variant figures; text keeps the font's size.
// Below: the sweep chart of the lab's Sweeps panel and of `attnlab-cli sweep --out`, and its
// export.
#pragma once

#include <QRectF>
#include <QSizeF>
#include <QStringList>
#include <memory>
#include <vector>

#include "analysis/sweep.h"
#include "figures/figure_export.h"
#include "figures/line_chart.h"
#include "figures/heatmap_figure.h"
#include "models/playground.h"
#include "trace_view.h"

namespace attnlab {

enum class CompareScale { Shared, Separate };

struct CompareFigureOptions {
  CompareScale scale = CompareScale::Shared;
};

// What the figure draws for one layer and head, gathered once per context (the widget keeps it
// while options and the highlighted token change).
struct CompareFigureData {
  PlaygroundResultPtr result;  // keeps the tensors alive
  int layer = 0, head = 0;
  std::int64_t length = 0;
  QStringList tokens;
  HeatmapData exact, approx, difference;  // difference = approx − exact, [L, L]
  ApproximationMetrics head_metrics, all_heads;
  std::vector<ApproximationMetrics> per_head;
  // Per query row of this head: top-k overlap and KL(A*_i ‖ Â_i) as the engine defines them
  // (compare_attention on that row); NaN for rows without exact weight (nothing compared).
  std::vector<float> row_overlap, row_kl;
  int topk = 0;
  CompareFigureOptions options;
};
using CompareFigureDataPtr = std::shared_ptr<const CompareFigureData>;

// The comparison of the context's layer, or nullptr (softmax, no result, layer not compared).
const LayerComparison* layer_comparison(const ViewContext& context);
// Whether the view can draw `result`: a variant other than softmax with a comparison of at least
// one layer (the window compares the layer on screen).
bool result_has_comparison(const PlaygroundResult& result);

// Throws ParamError naming the view when the context's layer was not compared.
CompareFigureDataPtr compare_figure_data(const ViewContext& context, const CompareFigureOptions& options);
// The colour scale of the exact and approximate panels: shared [min(0, both mins), max of both],
// or each its own [min(0, min), max] (the difference keeps its symmetric range).
void apply_compare_scale(CompareFigureData& data, CompareScale scale);

// The view's options (ViewContext::options, validated against the "compare" view's specs).
CompareFigureOptions compare_options_from_json(const nlohmann::json& options);

// Where the parts of the figure fall, in the painter's units.
struct CompareFigureLayout {
  QRectF figure;
  QRectF title;
  std::vector<QRectF> panels;  // outer rectangles, drawing order: exact, approx, difference, strip, metrics
  QRectF exact_panel, approx_panel, difference_panel;  // targets of the heatmap figures
  HeatmapFigureLayout exact, approx, difference;
  QRectF strip;    // 1 x L cells, query i in column i
  QRectF metrics;  // the table
  QRectF summary;  // one line at the bottom
  std::int64_t length = 0;

  QPointF strip_cell_centre(std::int64_t query) const;
  // The query token under `pos` (a matrix row or a strip column), or -1.
  int token_at(const QPointF& pos) const;
};

QSizeF compare_figure_size(const CompareFigureData& data, const FigureStyle& style);
CompareFigureLayout compute_compare_layout(const CompareFigureData& data, const FigureStyle& style, const QRectF& target,
                                           const QPaintDevice* device);
// `highlight`: the linked token (-1: none).
void draw_compare_figure(QPainter& painter, const QRectF& target, const CompareFigureData& data, const FigureStyle& style,
                         int highlight = -1);
PaintedFigure compare_painted_figure(const CompareFigureDataPtr& data, const FigureStyle& style, int highlight = -1);

// The colour of one per-query overlap cell (0..1 on the sequential colormap of the exact panel;
// grey for NaN).
QColor compare_strip_color(float overlap, ColormapId colormap);

// Data export of the view (format from the extension):
//   .csv   one line per head and one "all" line: rel_output_error, mean_row_kl, topk_overlap,
//          topk, rows;
//   .json  variant, params, causal, the per-head and all-heads metrics, the selected head's
//          metrics and its per-query overlap and KL, with layer, head and token texts;
//   .npy   float32 [L, L]: the difference A − A* of the selected head.
// Atomic; throws ParamError for another extension, IoError when the file cannot be written.
void export_compare_data(const ViewContext& context, const QString& path);

// ---- sweeps ---------------------------------------------------------------------------------------

// One series of a sweep (the orthogonal vs i.i.d. comparison runs two): its name in the legend,
// the options it ran with and its rows (possibly fewer than options.values while streaming).
struct SweepSeries {
  QString name;  // "orthogonal", "i.i.d."; empty for a single series
  SweepOptions options;
  SweepResult result;
};

// The log-log chart of a sweep: rel. output error (solid) and mean row KL per series against the
// swept value, min–max over the seeds as error bars, the fitted slope in each legend entry; x
// ticks at the swept values. Non-numeric values cannot be drawn on a log axis and are skipped.
LineChart sweep_line_chart(const std::vector<SweepSeries>& series);

// .png/.svg/.pdf: the chart; .json: sweep_to_json of the series (one series: that object; two:
// {"series": [{"name", ...sweep_to_json}, ...]}); .csv: one line per series and value with mean,
// std, min, max of each metric. Atomic; ParamError for another extension.
void export_sweep(const std::vector<SweepSeries>& series, const QString& path, const ExportOptions& options);
nlohmann::json sweep_series_json(const std::vector<SweepSeries>& series);

}  // namespace attnlab
