// The "Approximation lab" view: a variant next to exact softmax attention on the same q, k, v
// (figures/compare_figure.h) for the window's layer and head, and a Sweeps panel that measures
// how the error changes with one of the variant's numeric parameters.
//
// Figure. Exact and approximate weights, their difference on the diverging map, the per-query
// top-k overlap strip and the metrics of this head and all heads, all computed by the engine
// (PlaygroundResult::comparisons); hovering a matrix row or a strip cell reports that query.
//
// Sweeps. Parameter (the variant's Int and Float parameters), values (prefilled from the
// parameter's range: powers of two for integers, factors of the default for reals; editable),
// seeds, length, dim, causal, and for variants with an "orthogonal" switch (performer, rpe_fft)
// "orthogonal vs i.i.d.", which runs a second series with orthogonal=false. Run starts a
// SweepRunner (worker thread); rows stream into the log-log chart with min–max bars and fitted
// slopes; Cancel stops it, Redraw runs again with the next sweep seed; Export writes the chart
// (PNG/SVG/PDF), sweep_to_json (.json) or the rows (.csv). A sweep stops when the result's
// variant changes, when the window hides the tab (the result no longer fits) and when the widget
// is destroyed.
//
// View option: scale (shared | separate): one colour scale for both weight matrices or each its
// own.
#pragma once

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QDoubleSpinBox>
#include <QSpinBox>

#include "figures/compare_figure.h"
#include "sweep_runner.h"
#include "trace_view.h"

namespace attnlab {

class FigureCanvas;

ViewSpec compare_view_spec();

// Values a sweep of `spec` starts from: powers of two (Int; 1..32 around an automatic 0, else
// from default/8 to default·4 within the range), or the default times 1/4..4 (Float; the upper
// part of the range when the default is 0). At most 7 values.
QStringList default_sweep_values(const ParamSpec& spec);

class CompareView final : public TraceViewWidget {
  Q_OBJECT

 public:
  explicit CompareView(QWidget* parent = nullptr);
  ~CompareView() override;

  void setContext(const ViewContext& context) override;
  void setHighlightedToken(int token) override;
  nlohmann::json viewOptions() const override;
  void setViewOptions(const nlohmann::json& options) override;
  void resultWithdrawn() override { cancelSweep(); }

  const ViewContext& context() const { return context_; }
  CompareScale scale() const;
  void setScale(CompareScale scale);
  QComboBox* scaleBox() const { return scale_box_; }
  FigureCanvas* canvas() const { return canvas_; }
  // What the figure draws now; null when nothing can be drawn.
  CompareFigureDataPtr figureData() const { return data_; }
  CompareFigureLayout figureLayout() const;
  FigureStyle figureStyle() const;

  // ---- sweeps ----
  QComboBox* sweepParameter() const { return sweep_param_; }
  QLineEdit* sweepValues() const { return sweep_values_; }
  QSpinBox* sweepSeeds() const { return sweep_seeds_; }
  QSpinBox* sweepLength() const { return sweep_length_; }
  QSpinBox* sweepDim() const { return sweep_dim_; }
  QDoubleSpinBox* sweepQkStd() const { return sweep_qk_std_; }
  QCheckBox* sweepCausal() const { return sweep_causal_; }
  QCheckBox* sweepIid() const { return sweep_iid_; }
  QPushButton* runButton() const { return run_button_; }
  QPushButton* cancelButton() const { return cancel_button_; }
  QPushButton* redrawButton() const { return redraw_button_; }
  QPushButton* exportButton() const { return export_button_; }
  QProgressBar* sweepProgress() const { return progress_; }
  QLabel* sweepStatus() const { return sweep_status_; }
  FigureCanvas* chartCanvas() const { return chart_canvas_; }
  SweepRunner* runner() const { return runner_; }
  std::uint64_t sweepSeed() const { return sweep_seed_; }
  // The series the panel would run now. Throws ParamError for a bad value list.
  std::vector<SweepSeries> sweepRequest() const;
  // Run (false and the problem in sweepStatus() when the request is bad), Redraw (next seed),
  // Cancel; export of the finished or streaming sweep (throws ParamError / IoError).
  bool runSweep();
  bool redrawSweep();
  void cancelSweep();
  void exportSweep(const QString& path) const;

 protected:
  void hideEvent(QHideEvent* event) override;

 private:
  void rebuildData();
  void showFigure();
  void fillSweepParameters();
  void showSweep();
  void setSweepRunning(bool running);

  ViewContext context_;
  CompareFigureDataPtr data_;
  std::string sweep_variant_;  // the variant whose parameters the panel lists
  std::uint64_t sweep_seed_ = 1;
  QComboBox* scale_box_ = nullptr;
  FigureCanvas* canvas_ = nullptr;
  QComboBox* sweep_param_ = nullptr;
  QLineEdit* sweep_values_ = nullptr;
  QSpinBox* sweep_seeds_ = nullptr;
  QSpinBox* sweep_length_ = nullptr;
  QSpinBox* sweep_dim_ = nullptr;
  QDoubleSpinBox* sweep_qk_std_ = nullptr;
  QCheckBox* sweep_causal_ = nullptr;
  QCheckBox* sweep_iid_ = nullptr;
  QPushButton* run_button_ = nullptr;
  QPushButton* cancel_button_ = nullptr;
  QPushButton* redraw_button_ = nullptr;
  QPushButton* export_button_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* sweep_status_ = nullptr;
  FigureCanvas* chart_canvas_ = nullptr;
  SweepRunner* runner_ = nullptr;
};

}  // namespace attnlab
