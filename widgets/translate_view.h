// The Translate panel: type German, read the English and how the model aligned it (the main
// window's "Translate" dock; Tools ▸ Translate German…).
//
//   top      the German input and the English output; the English follows as you type
//            (debounced 250 ms, translated on the runner's worker thread: translate_runner.h;
//            the newest edit wins and older work is cancelled); beside it "translating…" and
//            then the measured milliseconds;
//   left     model folder (with a chooser; empty = the shipped model), beam width (1 = greedy),
//            length penalty, n-best, n-gram blocking (0 = off), the self-attention variant (every registered one, its
//            parameters generated from its schema by ParamPanel) and seed; below, "Measured
//            quality": corpus BLEU and mean ms on the first N sentences of the folder's
//            test.de/test.en with the current search and attention (worker thread, progress,
//            Cancel), and the table of this session's measurements (attention + parameters +
//            search → BLEU) so that the cost of swapping the attention reads off;
//   right    tabs: the cross-attention alignment (target pieces × source pieces), the encoder's
//            and the decoder's self-attention (figures/alignment_figure.h), with layer and head
//            selectors ("average of layers", "average of heads"), and the beam tree with the
//            n-best list (figures/beam_figure.h); Export… writes the focused figure (PNG, SVG,
//            PDF), the translation as `attnlab-cli translate --json` prints it (JSON), or the
//            map's matrix (CSV);
//   bottom   one status line: the model, or the problem.
//
// Hover. A target piece (in the English or on the alignment's row axis or cells) lights its
// aligned source pieces in the German and on the map's column axis, in proportion to its row of
// the alignment shown; a source piece (in the German or on the column axis) lights the target
// pieces by its column. The German is highlighted at the pieces' byte offsets. On the encoder's
// and the decoder's self-attention, a hovered piece lights the German or the English by its row
// (what it attends to) or column (what attends to it).
//
// Bad input: blank text gives an empty output and no error; a model folder that is missing or
// does not load, a sentence too long for the model, a parameter the variant refuses: one line
// in the status line, the last good result stays on screen. Without any result the figures say
// the same line instead of staying blank.
//
// The settings round-trip through TranslateSettings (sessions); the translation and the quality
// runs are not saved, a reopened session translates again to the identical picture.
#pragma once

#include <QString>
#include <QWidget>
#include <memory>
#include <utility>
#include <vector>

#include "figures/alignment_figure.h"
#include "figures/beam_figure.h"
#include "figures/figure_export.h"
#include "translate_runner.h"
#include "translate_settings.h"

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTableWidget;
class QTimer;
class QToolButton;

namespace attnlab {

class FigureCanvas;
class ParamPanel;

class TranslateView final : public QWidget {
  Q_OBJECT

 public:
  static constexpr int kDebounceMs = 250;

  explicit TranslateView(QWidget* parent = nullptr);
  ~TranslateView() override;

  // The controls as settings, and back (throws ParamError for invalid settings, changing
  // nothing; then translates).
  TranslateSettings settings() const;
  void setSettings(const TranslateSettings& settings);
  // What a translation would run now.
  TranslateRequest request() const;

  // Translates the current text now (skipping the debounce), also while the panel is hidden.
  void translateNow();
  // Measures quality with the current options; false (with the problem in the status line) for
  // bad input.
  bool measureQuality();
  void cancelMeasure();
  // Cancels whatever runs (the window closes).
  void cancel();

  // The result on screen (the last good one), or null.
  TranslateResultPtr result() const { return result_; }
  TranslateTab currentTab() const;
  void setCurrentTab(TranslateTab tab);
  // The map a tab shows now (Alignment, Encoder, Decoder) with its hover overlay; empty map
  // without a result.
  AlignmentFigureData mapData(TranslateTab tab) const;
  BeamFigureData beamData() const;

  // Hover, as the pointer over a piece does it (-1 clears).
  void hoverTarget(int piece);
  void hoverSource(int piece);
  void clearHover();
  // The weight (0..1, the strongest 1) each source piece of the German and each target piece
  // of the English is highlighted with now.
  const std::vector<float>& sourceHighlight() const { return source_light_; }
  const std::vector<float>& targetHighlight() const { return target_light_; }
  // UTF-16 ranges of the pieces in the German input and the English output ([begin, end);
  // {-1, -1} where a piece has no text there).
  const std::vector<std::pair<int, int>>& sourceSpans() const { return source_spans_; }
  const std::vector<std::pair<int, int>>& targetSpans() const { return target_spans_; }

  // The current tab's figure (.png/.svg/.pdf), the translation (.json, the CLI's format) or the
  // map's matrix (.csv; the alignment on the beam tab). Throws ParamError/IoError.
  void exportCurrent(const QString& path, const ExportOptions& options = {}) const;

  // ---- widgets (tests, the main window) ----
  QPlainTextEdit* input() const { return input_; }
  QPlainTextEdit* output() const { return output_; }
  QLabel* timingLabel() const { return timing_; }
  QLineEdit* modelEdit() const { return model_edit_; }
  QSpinBox* beamBox() const { return beam_; }
  QDoubleSpinBox* lengthPenaltyBox() const { return length_penalty_; }
  QSpinBox* nBestBox() const { return n_best_; }
  QSpinBox* noRepeatBox() const { return no_repeat_; }
  QComboBox* attentionBox() const { return attention_; }
  ParamPanel* paramPanel() const { return params_; }
  QSpinBox* seedBox() const { return seed_; }
  QComboBox* layerBox() const { return layer_box_; }
  QComboBox* headBox() const { return head_box_; }
  QTabWidget* tabs() const { return tabs_; }
  FigureCanvas* canvas(TranslateTab tab) const { return canvases_[static_cast<int>(tab)]; }
  QSpinBox* sentencesBox() const { return sentences_; }
  QPushButton* measureButton() const { return measure_button_; }
  QPushButton* cancelMeasureButton() const { return cancel_measure_; }
  QProgressBar* measureProgress() const { return progress_; }
  QLabel* qualityLabel() const { return quality_; }
  QTableWidget* runsTable() const { return runs_table_; }
  QPushButton* exportButton() const { return export_button_; }
  QLabel* statusLine() const { return status_; }
  TranslateRunner* runner() const { return runner_; }

 signals:
  void settingsChanged();
  void resultShown();  // a new result (or a blank one) is on screen

 protected:
  bool eventFilter(QObject* watched, QEvent* event) override;
  void showEvent(QShowEvent* event) override;

 private:
  QWidget* buildControls();
  QWidget* buildQuality();
  void scheduleTranslate(int delay_ms);
  void onTranslated(TranslateResultPtr result);
  void onTranslationFailed(const QString& message);
  void onAttentionChanged();
  void edited(int delay_ms);
  void setStatus(const QString& text);
  void refreshSelectors();
  void refreshFigures();
  void refreshMap(TranslateTab tab);
  void refreshBeam();
  void applyHover();
  void highlightInput();
  void highlightOutput();
  int pieceAt(const std::vector<std::pair<int, int>>& spans, int position) const;
  void setMeasuring(bool measuring);
  void addRunRow(int run);
  void exportDialog();
  const AttentionStack* stackFor(TranslateTab tab) const;

  // input and output
  QPlainTextEdit* input_ = nullptr;
  QPlainTextEdit* output_ = nullptr;
  QLabel* timing_ = nullptr;
  // options
  QLineEdit* model_edit_ = nullptr;
  QToolButton* model_browse_ = nullptr;
  QSpinBox* beam_ = nullptr;
  QDoubleSpinBox* length_penalty_ = nullptr;
  QSpinBox* n_best_ = nullptr;
  QSpinBox* no_repeat_ = nullptr;
  QComboBox* attention_ = nullptr;
  QLabel* attention_info_ = nullptr;
  ParamPanel* params_ = nullptr;
  QSpinBox* seed_ = nullptr;
  // quality
  QSpinBox* sentences_ = nullptr;
  QPushButton* measure_button_ = nullptr;
  QPushButton* cancel_measure_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* quality_ = nullptr;
  QTableWidget* runs_table_ = nullptr;
  // figures
  QTabWidget* tabs_ = nullptr;
  QComboBox* layer_box_ = nullptr;
  QComboBox* head_box_ = nullptr;
  QPushButton* export_button_ = nullptr;
  FigureCanvas* canvases_[4] = {nullptr, nullptr, nullptr, nullptr};
  QLabel* status_ = nullptr;

  TranslateRunner* runner_ = nullptr;
  QTimer* debounce_ = nullptr;
  TranslateResultPtr result_;
  QString message_;  // the last problem, shown in place of figures while there is no result
  // Figure data shown per map tab (shared with the canvases' draw functions) and the beam's.
  std::shared_ptr<AlignmentFigureData> maps_[3];
  BeamFigureDataPtr beam_figure_;
  std::vector<std::pair<int, int>> source_spans_, target_spans_;
  std::vector<float> source_light_, target_light_;
  int hover_target_ = -1, hover_source_ = -1;
  int layer_ = -1, head_ = -1;  // the selection the settings hold
  bool pending_ = false;        // an edit arrived while hidden: translate when shown
  bool applying_ = false;
};

}  // namespace attnlab
