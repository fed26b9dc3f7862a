// The AttnLab main window.
//
//   left dock "Input":   text editor (re-runs as you type, debounced), model, variant, causal,
//                        seeds, and the hyperparameter panel generated from the variant's schema
//   centre:              error banner (last good result stays), layer/head/colormap bar, and the
//                        views as tabs: the heatmap, then the variant's own views (LSH buckets, ...)
//   right dock "Heads":  every head of the current layer; click to focus one
//   dock "Curves":       measured time/memory curves (hidden until Tools ▸ Memory/time curves…;
//                        floating over the window)
//   dock "Translate":    German→English with a trained model, its alignment and beam (hidden
//                        until Tools ▸ Translate German…; floating over the window)
//   status bar:          tokens, model, timings, memory, device; Cancel while computing
//
// Every computation runs on the EngineWorker thread; this class only reacts and draws.
#pragma once

#include <QMainWindow>
#include <QPointer>
#include <QString>
#include <optional>

#include "engine_worker.h"
#include "session.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTimer;
class QActionGroup;
class QTabWidget;
class QDockWidget;

namespace attnlab {

class CurvesView;
class FigureView;
class HeadGrid;
class HeatmapView;
class ModelComposer;
class ParamPanel;
class TraceViewWidget;
class TranslateView;
struct ViewContext;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  // The state as a session, and the reverse (recomputes). applySession throws ParamError for a
  // session that names an unknown model, variant or parameter, leaving the window unchanged.
  Session currentSession() const;
  void applySession(const Session& session);
  // Show problems in the window and return false instead of throwing.
  bool openSessionFile(const QString& path);
  bool saveSessionFile(const QString& path);
  // Exports the current view (the heatmap, the heads or a variant view, with the options its
  // widget shows) to path (format from the extension). Throws.
  void exportCurrentView(const QString& path, double dpi);

  QPlainTextEdit* editor() const { return editor_; }
  // The GL heatmap, or nullptr where no OpenGL 3.3 context can be made (then figureView() shows
  // the same figure through QPainter).
  HeatmapView* heatmap() const { return heatmap_; }
  FigureView* figureView() const { return figure_view_; }
  HeadGrid* headGrid() const { return head_grid_; }
  ParamPanel* paramPanel() const { return param_panel_; }
  // The Curves panel (Tools ▸ Memory/time curves…) and its dock.
  CurvesView* curvesView() const { return curves_; }
  QDockWidget* curvesDock() const { return curves_dock_; }
  void showCurves();
  // The Translate panel (Tools ▸ Translate German…) and its dock.
  TranslateView* translateView() const { return translate_; }
  QDockWidget* translateDock() const { return translate_dock_; }
  void showTranslate();
  QComboBox* variantBox() const { return variant_box_; }
  // The widget of a variant view ("buckets", ...), or nullptr.
  TraceViewWidget* variantView(const std::string& name) const;
  // The view Ctrl+E exports: "heatmap", "heads" or a variant view's name.
  const std::string& currentViewName() const { return view_; }
  // That view's options as its widget shows them ({} for the heatmap and the heads).
  nlohmann::json currentViewOptions() const;
  PlaygroundResultPtr lastResult() const { return result_; }
  QString errorText() const;
  bool isComputing() const { return computing_; }

  enum class Theme { Light, Dark };
  void setTheme(Theme theme);

 signals:
  void resultShown();          // a new result is on screen
  void errorShown(QString);    // a problem is shown in the banner

 protected:
  void closeEvent(QCloseEvent* event) override;
  bool eventFilter(QObject* watched, QEvent* event) override;

 private:
  void buildUi();
  void buildMenus();
  void restoreSettings();
  void saveSettings() const;

  void scheduleCompute(int delay_ms);
  void submitNow();
  void onComputing(quint64 generation);
  void onFinished(quint64 generation, PlaygroundResultPtr result);
  void onFailed(quint64 generation, const QString& message);
  void showError(const QString& message);
  void clearError();

  void onVariantChanged();
  // The model the window runs: the composed one (model box entry with kComposedRole data) or the
  // preset / file named in the model box. Throws like resolve_model_config.
  ModelConfig currentModelConfig() const;
  // Adds (replacing any earlier one) and selects the model box entry of a composed config.
  // Throws ParamError for an invalid config, changing nothing.
  void setComposedModel(const nlohmann::json& config);
  // A model view's request (TraceViewWidget::layerParamsEdited): rerun with layer `layer`'s params changed.
  void editLayerParams(int layer, const nlohmann::json& params);
  static constexpr int kComposedRole = Qt::UserRole + 1;
  void refreshViews();  // from the last result, for the current layer/head/colormap
  ViewContext viewContext() const;
  void updateStatus();
  void setLinkedToken(int query, int key);
  void highlightTokensInEditor(int query, int key);
  int tokenAtEditorPosition(int position) const;

  void openSessionDialog();
  void saveSessionDialog(bool save_as);
  void exportDialog();
  void loadExample(const QString& name);
  void setModified(bool modified);
  void updateTitle();

  QPlainTextEdit* editor_ = nullptr;
  QComboBox* model_box_ = nullptr;
  QPushButton* compose_button_ = nullptr;
  ModelComposer* composer_ = nullptr;
  QDockWidget* composer_dock_ = nullptr;
  CurvesView* curves_ = nullptr;
  QDockWidget* curves_dock_ = nullptr;
  TranslateView* translate_ = nullptr;
  QDockWidget* translate_dock_ = nullptr;
  QComboBox* variant_box_ = nullptr;
  QCheckBox* causal_box_ = nullptr;
  QSpinBox* weight_seed_ = nullptr;
  QSpinBox* attention_seed_ = nullptr;
  ParamPanel* param_panel_ = nullptr;
  QLabel* variant_info_ = nullptr;
  QSpinBox* layer_box_ = nullptr;
  QSpinBox* head_box_ = nullptr;
  QComboBox* colormap_box_ = nullptr;
  QLabel* error_banner_ = nullptr;
  HeatmapView* heatmap_ = nullptr;
  FigureView* figure_view_ = nullptr;
  HeadGrid* head_grid_ = nullptr;
  QTabWidget* view_tabs_ = nullptr;  // the heatmap, then the variant views
  std::vector<std::pair<std::string, TraceViewWidget*>> variant_views_;  // tabs 1.. in order
  std::vector<bool> stale_views_;
  std::string shown_variant_;  // the variant of the result the views were last given  // per variant view: a result came while its tab was not shown
  QLabel* status_label_ = nullptr;
  QLabel* busy_label_ = nullptr;
  QPushButton* cancel_button_ = nullptr;
  QTimer* debounce_ = nullptr;
  QTimer* busy_timer_ = nullptr;
  QActionGroup* theme_group_ = nullptr;

  EngineWorker worker_;
  PlaygroundResultPtr result_;
  std::vector<std::pair<int, int>> token_spans_;  // UTF-16 ranges in the editor text of result_'s tokens
  QString result_text_;                           // the editor text result_ was computed from
  quint64 submitted_generation_ = 0;
  quint64 shown_generation_ = 0;
  bool computing_ = false;
  bool applying_ = false;  // suppresses recomputation while widgets are set programmatically
  std::string view_ = "heatmap";
  int linked_query_ = -1;
  QString gl_note_;  // why the GL heatmap is replaced by the QPainter fallback, if it is
  QString session_path_;
  bool modified_ = false;
  Theme theme_ = Theme::Light;
};

}  // namespace attnlab
