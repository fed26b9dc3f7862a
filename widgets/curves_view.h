// The Curves panel: measured cost against size, on this machine, while the playground stays
// usable (the main window's "Curves" dock; Tools ▸ Memory/time curves…).
//
// Three modes, one tab each, with their controls on the left and the figure
// (figures/curves_figure.h) on the right:
//   Length scaling  variants and model presets (checkable), lengths (editable; "up to"
//                   regenerates powers of two), head dim, heads, causal, device (CUDA only where
//                   a GPU is available, else disabled with the reason), repeats, time budget,
//                   seed → time and peak memory against L, log-log, fitted slopes, reference
//                   lines and the ✕ frontier;
//   Decoding        methods, N list, dim, heads, repeats, time budget, seed → tokens/s and
//                   state bytes against N;
//   Depth memory    variant, length, d_model, heads, d_ff, max layers, seed → activation bytes
//                   against layers, standard and reversible.
// Below the tabs: Run (the tab's mode), Cancel (returns at once), the progress bar (rows done of
// rows expected), Export… (the tab's figure as PNG/SVG/PDF or its data as JSON/CSV) and one
// status line (running, finished, cancelled, or the problem). Bad input — no variant, a length
// list that does not parse — puts a one-line error there and starts nothing, so the last good
// chart stays. Rows stream into the chart as the runner (curves_runner.h) posts them (redrawn at
// most four times a second, so that drawing takes little from the measurement); hovering
// a point or ✕ shows its numbers or why it did not run.
//
// The settings round-trip through CurvesSettings (sessions); measurements are not saved.
#pragma once

#include <QWidget>

#include "curves_runner.h"
#include "curves_settings.h"
#include "figures/curves_figure.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTimer;

namespace attnlab {

class FigureCanvas;

// Sizes from a list such as "128, 256, 1k, 4096" (k = ×1024, M = ×1048576; separated by commas,
// semicolons or spaces). Throws ParamError naming the bad entry, an entry outside [lo, hi] or a
// size given twice; an empty list is an error too.
std::vector<std::int64_t> parse_size_list(const QString& text, std::int64_t lo, std::int64_t hi, const std::string& what);
// "128, 256, 512" — the way the panel writes a list back.
QString size_list_text(const std::vector<std::int64_t>& sizes);

class CurvesView final : public QWidget {
  Q_OBJECT

 public:
  explicit CurvesView(QWidget* parent = nullptr);
  ~CurvesView() override;

  CurvesMode mode() const;
  void setMode(CurvesMode mode);

  // The controls as settings, and back (throws ParamError for invalid settings, changing
  // nothing; CUDA where none is available falls back to the CPU).
  CurvesSettings settings() const;
  void setSettings(const CurvesSettings& settings);

  // What Run would start for each mode. Throws ParamError for bad input.
  ComplexityOptions lengthRequest() const;
  DecodingOptions decodingRequest() const;
  DepthMemoryOptions depthRequest() const;
  // Run the current tab's mode (false, with the problem in the status line, for bad input).
  bool run();
  void cancel();
  // The current tab's figure (.png/.svg/.pdf) or data (.json/.csv). Throws ParamError/IoError.
  void exportCurrent(const QString& path, const ExportOptions& options = {}) const;

  // The figure data each mode shows now.
  CurvesFigureData lengthFigure() const;
  CurvesFigureData decodingFigure() const;
  CurvesFigureData depthFigure() const;

  // ---- widgets (tests, the main window) ----
  QTabWidget* modeTabs() const { return tabs_; }
  QListWidget* variantList() const { return variants_; }
  QLineEdit* lengthsEdit() const { return lengths_; }
  QSpinBox* lengthsUpTo() const { return lengths_up_to_; }
  QSpinBox* dimBox() const { return dim_; }
  QSpinBox* headsBox() const { return heads_; }
  QCheckBox* causalBox() const { return causal_; }
  QComboBox* deviceBox() const { return device_; }
  QSpinBox* repeatsBox() const { return repeats_; }
  QDoubleSpinBox* budgetBox() const { return budget_; }
  QSpinBox* seedBox() const { return seed_; }
  QListWidget* methodList() const { return methods_; }
  QLineEdit* tokensEdit() const { return tokens_; }
  QSpinBox* tokensUpTo() const { return tokens_up_to_; }
  QSpinBox* decodingDimBox() const { return decoding_dim_; }
  QSpinBox* decodingHeadsBox() const { return decoding_heads_; }
  QSpinBox* decodingRepeatsBox() const { return decoding_repeats_; }
  QDoubleSpinBox* decodingBudgetBox() const { return decoding_budget_; }
  QSpinBox* decodingSeedBox() const { return decoding_seed_; }
  QComboBox* depthVariantBox() const { return depth_variant_; }
  QSpinBox* depthLengthBox() const { return depth_length_; }
  QSpinBox* depthModelBox() const { return depth_d_model_; }
  QSpinBox* depthHeadsBox() const { return depth_heads_; }
  QSpinBox* depthFfBox() const { return depth_d_ff_; }
  QSpinBox* depthLayersBox() const { return depth_layers_; }
  QSpinBox* depthSeedBox() const { return depth_seed_; }
  QPushButton* runButton() const { return run_button_; }
  QPushButton* cancelButton() const { return cancel_button_; }
  QPushButton* exportButton() const { return export_button_; }
  QProgressBar* progressBar() const { return progress_; }
  QLabel* statusLine() const { return status_; }
  FigureCanvas* canvas(CurvesMode mode) const;
  CurvesRunner* runner() const { return runner_; }

  // Checks exactly these names in the variant (length) or method (decoding) list.
  void setCheckedVariants(const std::vector<std::string>& names);
  void setCheckedMethods(const std::vector<std::string>& names);
  std::vector<std::string> checkedVariants() const;
  std::vector<std::string> checkedMethods() const;

 signals:
  void settingsChanged();

 private:
  QWidget* buildLengthTab();
  QWidget* buildDecodingTab();
  QWidget* buildDepthTab();
  void showFigure(CurvesMode mode);
  void setRunning(bool running);
  void setStatus(const QString& text);
  // `text` about a run of mode `m`, named when another tab is shown.
  QString aboutMode(CurvesMode m, const QString& text) const;
  void exportDialog();
  void onRows(CurvesMode mode);
  void redrawPending();  // the figures of modes with rows not drawn yet

  QTabWidget* tabs_ = nullptr;
  // length
  QListWidget* variants_ = nullptr;
  QLineEdit* lengths_ = nullptr;
  QSpinBox* lengths_up_to_ = nullptr;
  QSpinBox* dim_ = nullptr;
  QSpinBox* heads_ = nullptr;
  QCheckBox* causal_ = nullptr;
  QComboBox* device_ = nullptr;
  QSpinBox* repeats_ = nullptr;
  QDoubleSpinBox* budget_ = nullptr;
  QSpinBox* seed_ = nullptr;
  // decoding
  QListWidget* methods_ = nullptr;
  QLineEdit* tokens_ = nullptr;
  QSpinBox* tokens_up_to_ = nullptr;
  QSpinBox* decoding_dim_ = nullptr;
  QSpinBox* decoding_heads_ = nullptr;
  QSpinBox* decoding_repeats_ = nullptr;
  QDoubleSpinBox* decoding_budget_ = nullptr;
  QSpinBox* decoding_seed_ = nullptr;
  // depth
  QComboBox* depth_variant_ = nullptr;
  QSpinBox* depth_length_ = nullptr;
  QSpinBox* depth_d_model_ = nullptr;
  QSpinBox* depth_heads_ = nullptr;
  QSpinBox* depth_d_ff_ = nullptr;
  QSpinBox* depth_layers_ = nullptr;
  QSpinBox* depth_seed_ = nullptr;
  // common
  QPushButton* run_button_ = nullptr;
  QPushButton* cancel_button_ = nullptr;
  QPushButton* export_button_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* status_ = nullptr;
  FigureCanvas* canvases_[3] = {nullptr, nullptr, nullptr};
  CurvesRunner* runner_ = nullptr;
  QTimer* redraw_timer_ = nullptr;
  bool pending_redraw_[3] = {false, false, false};
  // The last lists that parsed (what settings() saves while the text does not parse).
  std::vector<std::int64_t> length_sizes_, token_sizes_;
  qint64 run_started_ms_ = 0;
  bool applying_ = false;
};

}  // namespace attnlab
