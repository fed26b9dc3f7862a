#include "main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QComboBox>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMouseEvent>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScreen>
#include <QScrollArea>
#include <QSettings>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QStatusBar>
#include <QStyleFactory>
#include <QTabWidget>
#include <QTextBlock>
#include <QTimer>
#include <QToolBar>
#include <QVBoxLayout>

#include "attention/registry.h"
#include "colormap.h"
#include "curves_view.h"
#include "core/error.h"
#include "core/memory_meter.h"
#include "figures/figure_export.h"
#include "figure_view.h"
#include "figures/head_grid_figure.h"
#include "head_grid.h"
#include "heatmap_view.h"
#include "model_composer.h"
#include "param_panel.h"
#include "result_views.h"
#include "trace_view.h"
#include "translate_view.h"

namespace attnlab {
namespace {

constexpr int kTypingDebounceMs = 40;  // keeps typing smooth; the forward pass itself is faster
constexpr int kBusyShowDelayMs = 150;  // show "computing…" only when it is noticeable

QString bytes_text(std::int64_t bytes) {
  char buffer[32];
  return QString::fromLatin1(memory::format_bytes(bytes, buffer, sizeof buffer));
}

QPalette dark_palette() {
  QPalette p;
  const QColor window(0x2b, 0x2d, 0x31), base(0x1e, 0x1f, 0x22), text(0xe6, 0xe6, 0xe6);
  p.setColor(QPalette::Window, window);
  p.setColor(QPalette::WindowText, text);
  p.setColor(QPalette::Base, base);
  p.setColor(QPalette::AlternateBase, window);
  p.setColor(QPalette::ToolTipBase, base);
  p.setColor(QPalette::ToolTipText, text);
  p.setColor(QPalette::Text, text);
  p.setColor(QPalette::Button, window);
  p.setColor(QPalette::ButtonText, text);
  p.setColor(QPalette::BrightText, Qt::red);
  p.setColor(QPalette::Highlight, QColor(0x3d, 0x8e, 0xf0));
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::PlaceholderText, QColor(0x9a, 0x9a, 0x9a));
  p.setColor(QPalette::Disabled, QPalette::Text, QColor(0x80, 0x80, 0x80));
  p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(0x80, 0x80, 0x80));
  p.setColor(QPalette::Disabled, QPalette::WindowText, QColor(0x80, 0x80, 0x80));
  return p;
}

}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setObjectName(QStringLiteral("MainWindow"));
  buildUi();
  buildMenus();
  connect(&worker_, &EngineWorker::computing, this, &MainWindow::onComputing);
  connect(&worker_, &EngineWorker::finished, this, &MainWindow::onFinished);
  connect(&worker_, &EngineWorker::failed, this, &MainWindow::onFailed);
  restoreSettings();
  applySession(Session::with_default_example());
  setModified(false);
}

MainWindow::~MainWindow() = default;

void MainWindow::buildUi() {
  // ---- input dock ------------------------------------------------------------------------------
  auto* input = new QWidget;
  auto* input_layout = new QVBoxLayout(input);
  editor_ = new QPlainTextEdit;
  editor_->setObjectName(QStringLiteral("textEditor"));
  editor_->setPlaceholderText(tr("Type a sentence; the attention maps follow as you type."));
  editor_->setTabChangesFocus(true);
  editor_->setMinimumHeight(80);
  editor_->viewport()->setMouseTracking(true);
  editor_->viewport()->installEventFilter(this);
  input_layout->addWidget(new QLabel(tr("Text")));
  input_layout->addWidget(editor_, 2);

  auto* model_form = new QFormLayout;
  model_box_ = new QComboBox;
  for (const ModelConfig& m : builtin_models()) {
    model_box_->addItem(QString::fromStdString(m.name));
    model_box_->setItemData(model_box_->count() - 1, QString::fromStdString(m.description), Qt::ToolTipRole);
  }
  // The trained models: always listed; one that is not installed is disabled, its tooltip says why.
  for (const TrainedModelEntry& t : shipped_trained_models()) {
    model_box_->addItem(QString::fromStdString(t.name));
    const int index = model_box_->count() - 1;
    model_box_->setItemData(index, QString::fromStdString(t.summary), Qt::ToolTipRole);
    auto* items = qobject_cast<QStandardItemModel*>(model_box_->model());
    if (!t.available && items) items->item(index)->setEnabled(false);
  }
  variant_box_ = new QComboBox;
  for (const Attention* a : Registry::builtin().all()) {
    variant_box_->addItem(QString::fromStdString(a->spec().name));
    variant_box_->setItemData(variant_box_->count() - 1, QString::fromStdString(a->spec().title + " — " + a->spec().paper),
                              Qt::ToolTipRole);
  }
  causal_box_ = new QCheckBox(tr("causal (a token sees only earlier tokens)"));
  weight_seed_ = new QSpinBox;
  weight_seed_->setRange(0, 2'000'000'000);
  weight_seed_->setToolTip(tr("Seed of the model's random (untrained) weights"));
  attention_seed_ = new QSpinBox;
  attention_seed_->setRange(0, 2'000'000'000);
  attention_seed_->setToolTip(tr("Seed of the attention variant's random draws (hashes, features, blocks)"));
  compose_button_ = new QPushButton(tr("Compose…"));
  compose_button_->setObjectName(QStringLiteral("composeButton"));
  compose_button_->setToolTip(tr("Build a model from layers: attention variants, experts, halting, recurrence, state spaces"));
  model_form->addRow(tr("Model"), model_box_);
  model_form->addRow(QString(), compose_button_);
  model_form->addRow(tr("Attention"), variant_box_);
  model_form->addRow(QString(), causal_box_);
  model_form->addRow(tr("Weight seed"), weight_seed_);
  model_form->addRow(tr("Attention seed"), attention_seed_);
  input_layout->addLayout(model_form);

  auto* params_group = new QGroupBox(tr("Hyperparameters"));
  auto* params_layout = new QVBoxLayout(params_group);
  variant_info_ = new QLabel;
  variant_info_->setWordWrap(true);
  variant_info_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  param_panel_ = new ParamPanel;
  params_layout->addWidget(variant_info_);
  params_layout->addWidget(param_panel_);
  input_layout->addWidget(params_group, 1);

  auto* input_dock = new QDockWidget(tr("Input"), this);
  input_dock->setObjectName(QStringLiteral("inputDock"));
  auto* input_scroll = new QScrollArea;
  input_scroll->setWidgetResizable(true);
  input_scroll->setWidget(input);
  input_dock->setWidget(input_scroll);
  addDockWidget(Qt::LeftDockWidgetArea, input_dock);

  // ---- centre -------------------------------------------------------------------------------------
  auto* centre = new QWidget;
  auto* centre_layout = new QVBoxLayout(centre);
  centre_layout->setContentsMargins(4, 4, 4, 4);
  error_banner_ = new QLabel;
  error_banner_->setObjectName(QStringLiteral("errorBanner"));
  error_banner_->setWordWrap(true);
  error_banner_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  error_banner_->setStyleSheet(QStringLiteral(
      "QLabel { background: #fde2e1; color: #7a1010; border: 1px solid #e9a3a0; border-radius: 4px; padding: 6px; }"));
  error_banner_->hide();
  centre_layout->addWidget(error_banner_);

  auto* bar = new QHBoxLayout;
  layer_box_ = new QSpinBox;
  layer_box_->setPrefix(tr("layer "));
  layer_box_->setRange(0, 0);
  head_box_ = new QSpinBox;
  head_box_->setPrefix(tr("head "));
  head_box_->setRange(0, 0);
  colormap_box_ = new QComboBox;
  colormap_box_->addItems(Colormap::names());
  colormap_box_->setToolTip(tr("viridis, magma, cividis: perceptually uniform; coolwarm: diverging"));
  bar->addWidget(layer_box_);
  bar->addWidget(head_box_);
  bar->addStretch(1);
  bar->addWidget(new QLabel(tr("Colormap")));
  bar->addWidget(colormap_box_);
  centre_layout->addLayout(bar);

  // Qt 6.4 cannot show a QOpenGLWidget without OpenGL, so ask first and fall back to the same
  // figure drawn with QPainter.
  // The centre holds the views as tabs: the heatmap first, then one tab per variant view, shown
  // only while the result is of a variant that view can draw.
  view_tabs_ = new QTabWidget;
  view_tabs_->setObjectName(QStringLiteral("viewTabs"));
  view_tabs_->setDocumentMode(true);
  centre_layout->addWidget(view_tabs_, 1);
  const QString gl_problem = HeatmapView::openGLUnavailableReason();
  if (gl_problem.isEmpty()) {
    heatmap_ = new HeatmapView;
    heatmap_->setObjectName(QStringLiteral("heatmap"));
    heatmap_->setMinimumSize(320, 320);
    view_tabs_->addTab(heatmap_, tr("Heatmap"));
  } else {
    figure_view_ = new FigureView;
    figure_view_->setObjectName(QStringLiteral("figureView"));
    view_tabs_->addTab(figure_view_, tr("Heatmap"));
    gl_note_ = tr("OpenGL 3.3 is not available (%1); the heatmap is drawn without zoom.").arg(gl_problem);
  }
  setCentralWidget(centre);

  // ---- heads dock -------------------------------------------------------------------------------
  head_grid_ = new HeadGrid;
  head_grid_->setObjectName(QStringLiteral("headGrid"));
  auto* heads_dock = new QDockWidget(tr("Heads of this layer"), this);
  heads_dock->setObjectName(QStringLiteral("headsDock"));
  heads_dock->setWidget(head_grid_);
  addDockWidget(Qt::RightDockWidgetArea, heads_dock);

  // ---- model composer dock ------------------------------------------------------------------------
  composer_ = new ModelComposer;
  composer_->setObjectName(QStringLiteral("modelComposer"));
  composer_dock_ = new QDockWidget(tr("Model composer"), this);
  composer_dock_->setObjectName(QStringLiteral("composerDock"));
  composer_dock_->setWidget(composer_);
  addDockWidget(Qt::RightDockWidgetArea, composer_dock_);
  // Floating over the window: docked beside the heads it would widen the window past the screen.
  composer_dock_->setFloating(true);
  composer_dock_->resize(820, 620);
  composer_dock_->hide();

  // ---- curves dock ---------------------------------------------------------------------------------
  curves_ = new CurvesView;
  curves_dock_ = new QDockWidget(tr("Curves"), this);
  curves_dock_->setObjectName(QStringLiteral("curvesDock"));
  curves_dock_->setWidget(curves_);
  addDockWidget(Qt::BottomDockWidgetArea, curves_dock_);
  // Floating: two log-log charts side by side need more room than a dock beside the views.
  curves_dock_->setFloating(true);
  curves_dock_->resize(1360, 780);
  curves_dock_->hide();
  connect(curves_, &CurvesView::settingsChanged, this, [this] {
    if (!applying_) setModified(true);
  });

  // ---- translate dock ------------------------------------------------------------------------------
  translate_ = new TranslateView;
  translate_dock_ = new QDockWidget(tr("Translate"), this);
  translate_dock_->setObjectName(QStringLiteral("translateDock"));
  translate_dock_->setWidget(translate_);
  addDockWidget(Qt::BottomDockWidgetArea, translate_dock_);
  // Floating: the text, the controls and a readable alignment need more room than a dock.
  translate_dock_->setFloating(true);
  translate_dock_->resize(1480, 920);
  translate_dock_->hide();
  connect(translate_, &TranslateView::settingsChanged, this, [this] {
    if (!applying_) setModified(true);
  });

  for (const ViewSpec& spec : view_specs()) {
    if (!spec.make_widget) continue;
    TraceViewWidget* widget = spec.make_widget(nullptr);
    widget->setObjectName(QString::fromStdString(spec.name));
    view_tabs_->addTab(widget, spec.title);
    view_tabs_->setTabVisible(view_tabs_->count() - 1, false);
    variant_views_.emplace_back(spec.name, widget);
    stale_views_.push_back(false);
    connect(widget, &TraceViewWidget::tokenHovered, this, [this](int token) { setLinkedToken(token, -1); });
    connect(widget, &TraceViewWidget::viewOptionsChanged, this, [this] {
      if (!applying_) setModified(true);
    });
    connect(widget, &TraceViewWidget::layerParamsEdited, this, &MainWindow::editLayerParams);
  }
  connect(view_tabs_, &QTabWidget::currentChanged, this, [this](int index) {
    // A tab that was hidden behind another when the result came draws it now (see refreshViews).
    if (index >= 1 && result_ && stale_views_[static_cast<std::size_t>(index - 1)]) {
      stale_views_[static_cast<std::size_t>(index - 1)] = false;
      variant_views_[static_cast<std::size_t>(index - 1)].second->setContext(viewContext());
    }
    if (applying_ || index < 0) return;
    view_ = index == 0 ? "heatmap" : variant_views_[static_cast<std::size_t>(index - 1)].first;
  });

  // ---- status -------------------------------------------------------------------------------------
  status_label_ = new QLabel;
  busy_label_ = new QLabel(tr("computing…"));
  busy_label_->hide();
  cancel_button_ = new QPushButton(tr("Cancel"));
  cancel_button_->setToolTip(tr("Stop the running computation; the last result stays on screen"));
  cancel_button_->hide();
  statusBar()->addWidget(status_label_, 1);
  statusBar()->addPermanentWidget(busy_label_);
  statusBar()->addPermanentWidget(cancel_button_);

  debounce_ = new QTimer(this);
  debounce_->setSingleShot(true);
  connect(debounce_, &QTimer::timeout, this, &MainWindow::submitNow);
  busy_timer_ = new QTimer(this);
  busy_timer_->setSingleShot(true);
  connect(busy_timer_, &QTimer::timeout, this, [this] {
    if (computing_) {
      busy_label_->show();
      cancel_button_->show();
    }
  });
  connect(cancel_button_, &QPushButton::clicked, this, [this] {
    worker_.cancel();
    computing_ = false;
    busy_label_->hide();
    cancel_button_->hide();
    statusBar()->showMessage(tr("Cancelled; showing the last result."), 4000);
  });

  // ---- reactions ----------------------------------------------------------------------------------
  const auto edited = [this](int delay) {
    return [this, delay] {
      if (applying_) return;
      setModified(true);
      scheduleCompute(delay);
    };
  };
  connect(editor_, &QPlainTextEdit::textChanged, this, edited(kTypingDebounceMs));
  connect(model_box_, &QComboBox::currentIndexChanged, this, edited(0));
  connect(compose_button_, &QPushButton::clicked, this, [this] {
    try {
      composer_->setConfig(currentModelConfig());
    } catch (const std::exception& e) {
      showError(QString::fromStdString(e.what()));
    }
    if (composer_dock_->isFloating() && !composer_dock_->isVisible()) {
      const QRect frame = geometry();
      composer_dock_->move(frame.center() - QPoint(composer_dock_->width() / 2, composer_dock_->height() / 2));
    }
    composer_dock_->show();
    composer_dock_->raise();
  });
  connect(composer_, &ModelComposer::runRequested, this, [this](const nlohmann::json& config) {
    setComposedModel(config);
    setModified(true);
    scheduleCompute(0);
  });
  connect(causal_box_, &QCheckBox::toggled, this, edited(0));
  connect(weight_seed_, &QSpinBox::valueChanged, this, edited(kTypingDebounceMs));
  connect(attention_seed_, &QSpinBox::valueChanged, this, edited(kTypingDebounceMs));
  connect(param_panel_, &ParamPanel::valuesChanged, this, edited(kTypingDebounceMs));
  connect(variant_box_, &QComboBox::currentIndexChanged, this, [this] {
    if (applying_) return;
    onVariantChanged();
    setModified(true);
    scheduleCompute(0);
  });
  const auto redraw = [this] {
    if (applying_) return;
    setModified(true);
    refreshViews();
  };
  connect(layer_box_, &QSpinBox::valueChanged, this, [this, redraw] {
    redraw();
    // Only the layer on screen is compared with exact attention; another layer needs its own.
    if (!applying_ && result_ && result_->variant != "softmax") scheduleCompute(0);
  });
  connect(head_box_, &QSpinBox::valueChanged, this, [this, redraw] {
    head_grid_->setCurrentHead(head_box_->value());
    view_ = "heatmap";
    redraw();
  });
  connect(colormap_box_, &QComboBox::currentIndexChanged, this, redraw);
  connect(head_grid_, &HeadGrid::headSelected, this, [this](int head) {
    view_ = "heads";
    head_box_->setValue(head);
    view_ = "heads";
  });
  if (heatmap_) {
    connect(heatmap_, &HeatmapView::tokenHovered, this, [this](int row, int col) { setLinkedToken(row, col); });
    connect(heatmap_, &HeatmapView::cellClicked, this, [this](int, int) { view_ = "heatmap"; });
    connect(heatmap_, &HeatmapView::glProblem, this, [this](const QString& message) { showError(message); });
  } else {
    connect(figure_view_, &FigureView::tokenHovered, this, [this](int row, int col) { setLinkedToken(row, col); });
    connect(figure_view_, &FigureView::cellClicked, this, [this](int, int) { view_ = "heatmap"; });
  }
  connect(editor_, &QPlainTextEdit::cursorPositionChanged, this, [this] {
    const int token = tokenAtEditorPosition(editor_->textCursor().position());
    if (token >= 0) setLinkedToken(token, -1);
  });
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Open Session…"), QKeySequence::Open, this, &MainWindow::openSessionDialog);
  file->addAction(tr("&Save Session"), QKeySequence::Save, this, [this] { saveSessionDialog(false); });
  file->addAction(tr("Save Session &As…"), QKeySequence::SaveAs, this, [this] { saveSessionDialog(true); });
  file->addSeparator();
  file->addAction(tr("&Export View…"), QKeySequence(tr("Ctrl+E")), this, &MainWindow::exportDialog);
  QMenu* examples = file->addMenu(tr("E&xamples"));
  const std::pair<const char*, QString> example_names[] = {
      {"default", tr("Coreference: “The animal didn't cross the street…”")},
      {"coreference", tr("Two Winograd sentences")},
      {"german", tr("German sentence")},
      {"long_paragraph", tr("A paragraph about attention (~170 tokens)")}};
  for (const auto& [name, label] : example_names) {
    const QString key = QString::fromLatin1(name);
    examples->addAction(label, this, [this, key] { loadExample(key); });
  }
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  theme_group_ = new QActionGroup(this);
  QAction* light = view->addAction(tr("&Light theme"), this, [this] { setTheme(Theme::Light); });
  QAction* dark = view->addAction(tr("&Dark theme"), this, [this] { setTheme(Theme::Dark); });
  for (QAction* a : {light, dark}) {
    a->setCheckable(true);
    theme_group_->addAction(a);
  }
  light->setChecked(true);
  view->addSeparator();
  view->addAction(tr("&Reset zoom"), QKeySequence(tr("Ctrl+0")), this, [this] {
    if (heatmap_) heatmap_->resetView();
  });
  view->addSeparator();
  for (QDockWidget* dock : findChildren<QDockWidget*>()) view->addAction(dock->toggleViewAction());

  QMenu* tools = menuBar()->addMenu(tr("&Tools"));
  QAction* curves = tools->addAction(tr("Memory/time &curves…"), this, &MainWindow::showCurves);
  curves->setObjectName(QStringLiteral("curvesAction"));
  curves->setToolTip(tr("Measure time and memory of the variants against length, decoding speed and depth memory"));
  QAction* translate = tools->addAction(tr("&Translate German…"), this, &MainWindow::showTranslate);
  translate->setObjectName(QStringLiteral("translateAction"));
  translate->setToolTip(tr("Translate German to English with a trained model; read the alignment and the beam"));

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About AttnLab"), this, [this] {
    QMessageBox::about(this, tr("About AttnLab"),
                       tr("<h3>AttnLab %1</h3><p>A desktop attention lab: Transformer variants computed live, "
                          "drawn as they work.</p><p>Engine device: %2</p><p>Qt %3 · GPL-3.0-or-later</p>")
                           .arg(QStringLiteral(ATTNLAB_VERSION),
                                QString::fromStdString(select_device(DevicePreference::Auto).describe()).toHtmlEscaped(),
                                QString::fromLatin1(qVersion())));
  });
}

void MainWindow::restoreSettings() {
  QSettings settings;
  if (!restoreGeometry(settings.value("window/geometry").toByteArray())) {
    // First start: most of the screen, centred; the views need room.
    const QRect available = screen() ? screen()->availableGeometry() : QRect(0, 0, 1400, 860);
    resize(available.size() * 0.92);
    move(available.center() - rect().center());
  }
  restoreState(settings.value("window/state").toByteArray());
  setTheme(settings.value("view/theme").toString() == QLatin1String("dark") ? Theme::Dark : Theme::Light);
}

void MainWindow::saveSettings() const {
  QSettings settings;
  settings.setValue("window/geometry", saveGeometry());
  settings.setValue("window/state", saveState());
  settings.setValue("view/theme", theme_ == Theme::Dark ? "dark" : "light");
}

void MainWindow::showCurves() {
  if (curves_dock_->isFloating() && !curves_dock_->isVisible()) {
    const QRect frame = geometry();
    curves_dock_->move(frame.center() - QPoint(curves_dock_->width() / 2, curves_dock_->height() / 2));
  }
  curves_dock_->show();
  curves_dock_->raise();
  curves_dock_->activateWindow();
}

void MainWindow::showTranslate() {
  if (translate_dock_->isFloating() && !translate_dock_->isVisible()) {
    const QRect frame = geometry();
    translate_dock_->move(frame.center() - QPoint(translate_dock_->width() / 2, translate_dock_->height() / 2));
  }
  translate_dock_->show();
  translate_dock_->raise();
  translate_dock_->activateWindow();
}

void MainWindow::closeEvent(QCloseEvent* event) {
  saveSettings();
  worker_.cancel();
  curves_->cancel();  // its runner joins when the window is destroyed
  translate_->cancel();
  event->accept();
}

void MainWindow::setTheme(Theme theme) {
  theme_ = theme;
  qApp->setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
  qApp->setPalette(theme == Theme::Dark ? dark_palette() : qApp->style()->standardPalette());
  if (theme_group_) theme_group_->actions().at(theme == Theme::Dark ? 1 : 0)->setChecked(true);
  refreshViews();  // thumbnails use the palette's base colour
}

// ---- composed models ------------------------------------------------------------------------------

ModelConfig MainWindow::currentModelConfig() const {
  const QVariant composed = model_box_->currentData(kComposedRole);
  if (composed.isValid()) return ModelConfig::from_json(nlohmann::json::parse(composed.toString().toStdString()));
  return resolve_model_config(model_box_->currentText().toStdString());
}

void MainWindow::setComposedModel(const nlohmann::json& config) {
  const ModelConfig c = ModelConfig::from_json(config);  // throws before anything changes
  const bool was_applying = applying_;
  applying_ = true;
  // One composed entry at a time: the model the session holds in "model_config".
  for (int i = model_box_->count() - 1; i >= 0; --i) {
    if (model_box_->itemData(i, kComposedRole).isValid()) model_box_->removeItem(i);
  }
  model_box_->addItem(tr("%1 (composed)").arg(QString::fromStdString(c.name)));
  const int index = model_box_->count() - 1;
  model_box_->setItemData(index, QString::fromStdString(c.to_json().dump()), kComposedRole);
  model_box_->setItemData(index, tr("Built in the model composer: %1 layers").arg(c.layer_count()), Qt::ToolTipRole);
  model_box_->setCurrentIndex(index);
  applying_ = was_applying;
}

void MainWindow::editLayerParams(int layer, const nlohmann::json& params) {
  try {
    ModelConfig c = currentModelConfig();
    if (layer < 0 || layer >= static_cast<int>(c.layers.size())) {
      throw ParamError("layer " + std::to_string(layer) + " does not exist in model '" + c.name + "'");
    }
    nlohmann::json& target = c.layers[static_cast<std::size_t>(layer)].params;
    for (const auto& [key, value] : params.items()) target[key] = value;
    setComposedModel(c.to_json());  // validates; on error the old model stays
    if (composer_dock_->isVisible()) composer_->setConfig(c);
    setModified(true);
    scheduleCompute(0);
  } catch (const std::exception& e) {
    showError(QString::fromStdString(e.what()));
  }
}

// ---- session ------------------------------------------------------------------------------------

Session MainWindow::currentSession() const {
  Session s;
  s.text = editor_->toPlainText().toStdString();
  s.model = model_box_->currentText().toStdString();
  const QVariant composed = model_box_->currentData(kComposedRole);
  if (composed.isValid()) {
    s.model_config = nlohmann::json::parse(composed.toString().toStdString());
    s.model = s.model_config.value("name", s.model);
  }
  s.variant = variant_box_->currentText().toStdString();
  s.params = param_panel_->changedValues();
  s.causal = causal_box_->isChecked();
  s.weight_seed = static_cast<std::uint64_t>(weight_seed_->value());
  s.attention_seed = static_cast<std::uint64_t>(attention_seed_->value());
  s.layer = layer_box_->value();
  s.head = head_box_->value();
  s.view = view_;
  s.view_options = currentViewOptions();
  s.colormap = colormap_box_->currentText().toStdString();
  s.curves = curves_->settings();
  s.translate = translate_->settings();
  return s;
}

nlohmann::json MainWindow::currentViewOptions() const {
  const TraceViewWidget* widget = variantView(view_);
  return widget ? widget->viewOptions() : nlohmann::json::object();
}

void MainWindow::applySession(const Session& session) {
  // Validate everything first, so a bad session changes nothing.
  const Attention& variant = Registry::builtin().get(session.variant);
  Params(variant.spec().params).set_from_json(session.params);
  if (session.model_config.is_null() && model_box_->findText(QString::fromStdString(session.model)) < 0) {
    resolve_model_config(session.model);
  }
  if (!session.model_config.is_null()) ModelConfig::from_json(session.model_config);
  if (!Colormap::find(QString::fromStdString(session.colormap))) {
    throw ParamError("unknown colormap '" + session.colormap + "'");
  }
  if (session.weight_seed > 2'000'000'000ULL || session.attention_seed > 2'000'000'000ULL) {
    throw ParamError("seeds in the window are limited to 0..2000000000");
  }
  view_options(view_spec(session.view), session.view_options);
  session.curves.validate();
  session.translate.validate();

  applying_ = true;
  if (!session.model_config.is_null()) {
    setComposedModel(session.model_config);
  } else {
    if (model_box_->findText(QString::fromStdString(session.model)) < 0) model_box_->addItem(QString::fromStdString(session.model));
    model_box_->setCurrentText(QString::fromStdString(session.model));
  }
  variant_box_->setCurrentText(QString::fromStdString(session.variant));
  onVariantChanged();
  param_panel_->setValues(session.params);
  causal_box_->setChecked(session.causal);
  weight_seed_->setValue(static_cast<int>(session.weight_seed));
  attention_seed_->setValue(static_cast<int>(session.attention_seed));
  layer_box_->setMaximum(std::max(layer_box_->maximum(), session.layer));
  head_box_->setMaximum(std::max(head_box_->maximum(), session.head));
  layer_box_->setValue(session.layer);
  head_box_->setValue(session.head);
  head_grid_->setCurrentHead(session.head);
  colormap_box_->setCurrentText(QString::fromStdString(session.colormap));
  view_ = session.view;
  if (TraceViewWidget* widget = variantView(session.view)) widget->setViewOptions(session.view_options);
  curves_->setSettings(session.curves);
  translate_->setSettings(session.translate);
  editor_->setPlainText(QString::fromStdString(session.text));
  applying_ = false;
  scheduleCompute(0);
}

bool MainWindow::openSessionFile(const QString& path) {
  try {
    applySession(Session::load(path.toStdString()));
  } catch (const std::exception& e) {
    showError(QString::fromStdString(e.what()));
    return false;
  }
  session_path_ = path;
  setModified(false);
  return true;
}

bool MainWindow::saveSessionFile(const QString& path) {
  try {
    currentSession().save(path.toStdString());
  } catch (const std::exception& e) {
    showError(QString::fromStdString(e.what()));
    return false;
  }
  session_path_ = path;
  setModified(false);
  statusBar()->showMessage(tr("Saved %1").arg(QFileInfo(path).fileName()), 4000);
  return true;
}

void MainWindow::openSessionDialog() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Open Session"), QSettings().value("paths/sessions").toString(),
                                                    tr("AttnLab sessions (*.json);;All files (*)"));
  if (path.isEmpty()) return;
  QSettings().setValue("paths/sessions", QFileInfo(path).absolutePath());
  openSessionFile(path);
}

void MainWindow::saveSessionDialog(bool save_as) {
  QString path = session_path_;
  if (save_as || path.isEmpty()) {
    path = QFileDialog::getSaveFileName(this, tr("Save Session"), QSettings().value("paths/sessions").toString(),
                                        tr("AttnLab sessions (*.json)"));
    if (path.isEmpty()) return;
    if (!path.endsWith(QLatin1String(".json"), Qt::CaseInsensitive)) path += QStringLiteral(".json");
    QSettings().setValue("paths/sessions", QFileInfo(path).absolutePath());
  }
  saveSessionFile(path);
}

void MainWindow::setModified(bool modified) {
  modified_ = modified;
  updateTitle();
}

void MainWindow::updateTitle() {
  const QString name = session_path_.isEmpty() ? tr("untitled") : QFileInfo(session_path_).fileName();
  setWindowTitle(QStringLiteral("%1%2 — AttnLab").arg(name, modified_ ? QStringLiteral("*") : QString()));
}

void MainWindow::loadExample(const QString& name) {
  try {
    editor_->setPlainText(QString::fromStdString(example_text(name.toStdString())));
  } catch (const std::exception& e) {
    showError(QString::fromStdString(e.what()));
  }
}

// ---- export -------------------------------------------------------------------------------------

void MainWindow::exportCurrentView(const QString& path, double dpi) {
  if (!result_) throw ParamError("nothing to export yet: no result has been computed");
  ExportOptions options;
  options.dpi = dpi;
  ViewContext context = viewContext();
  context.options = currentViewOptions();  // the figure shows what the widget shows
  export_view(view_spec(view_), context, path, options);
}

ViewContext MainWindow::viewContext() const {
  ViewContext context;
  context.result = result_;
  context.layer = result_ ? std::clamp(layer_box_->value(), 0, static_cast<int>(result_->layers.size()) - 1) : 0;
  context.head = result_ ? std::clamp(head_box_->value(), 0, layer_head_count(*result_, context.layer) - 1) : 0;
  context.colormap = Colormap::find(colormap_box_->currentText())->id();
  context.highlighted_token = linked_query_;
  return context;
}

TraceViewWidget* MainWindow::variantView(const std::string& name) const {
  for (const auto& [view_name, widget] : variant_views_) {
    if (view_name == name) return widget;
  }
  return nullptr;
}

void MainWindow::exportDialog() {
  if (!result_) {
    showError(tr("Nothing to export yet: no result has been computed."));
    return;
  }
  QSettings settings;
  QString selected;
  const ViewSpec& spec = view_spec(view_);
  const QString what = spec.title;
  QStringList filters = {QStringLiteral("PNG image (*.png)"), QStringLiteral("SVG vector image (*.svg)"),
                         QStringLiteral("PDF document (*.pdf)")};
  for (const QString& ext : spec.data_extensions) filters << tr("%1 data (*.%2)").arg(ext.toUpper(), ext);
  QString path = QFileDialog::getSaveFileName(this, tr("Export %1").arg(what), settings.value("paths/export").toString(),
                                              filters.join(QStringLiteral(";;")), &selected);
  if (path.isEmpty()) return;
  if (QFileInfo(path).suffix().isEmpty()) {
    // Take the extension from the chosen filter, e.g. "PNG image (*.png)".
    const int star = selected.indexOf(QLatin1String("*."));
    if (star >= 0) path += selected.mid(star + 1, selected.indexOf(QLatin1Char(')'), star) - star - 1);
  }
  settings.setValue("paths/export", QFileInfo(path).absolutePath());
  double dpi = settings.value("export/dpi", 150).toDouble();
  if (path.endsWith(QLatin1String(".png"), Qt::CaseInsensitive)) {
    bool ok = false;
    dpi = QInputDialog::getInt(this, tr("PNG resolution"), tr("Dots per inch (30–1200):"), static_cast<int>(dpi), 30, 1200,
                               10, &ok);
    if (!ok) return;
    settings.setValue("export/dpi", dpi);
  }
  try {
    exportCurrentView(path, dpi);
    statusBar()->showMessage(tr("Exported %1").arg(QFileInfo(path).fileName()), 4000);
  } catch (const std::exception& e) {
    showError(QString::fromStdString(e.what()));
  }
}

// ---- computing ----------------------------------------------------------------------------------

void MainWindow::scheduleCompute(int delay_ms) { debounce_->start(delay_ms); }

void MainWindow::submitNow() {
  Session s = currentSession();
  s.params = param_panel_->values();
  submitted_generation_ = worker_.submit(s.to_request());
}

void MainWindow::onComputing(quint64 generation) {
  if (generation != submitted_generation_) return;
  computing_ = true;
  busy_timer_->start(kBusyShowDelayMs);
}

void MainWindow::onFinished(quint64 generation, PlaygroundResultPtr result) {
  if (generation < shown_generation_) return;  // an older result overtaken by a newer one
  shown_generation_ = generation;
  if (generation == submitted_generation_) {
    computing_ = false;
    busy_timer_->stop();
    busy_label_->hide();
    cancel_button_->hide();
  }
  result_ = std::move(result);
  result_text_ = editor_->toPlainText();
  token_spans_ = token_spans_utf16(*result_, result_text_);
  applying_ = true;
  layer_box_->setMaximum(static_cast<int>(result_->layers.size()) - 1);
  head_box_->setMaximum(static_cast<int>(result_->heads()) - 1);
  applying_ = false;
  clearError();
  refreshViews();
  updateStatus();
  emit resultShown();
}

void MainWindow::onFailed(quint64 generation, const QString& message) {
  if (generation != submitted_generation_) return;  // superseded; the newer request will report
  computing_ = false;
  busy_timer_->stop();
  busy_label_->hide();
  cancel_button_->hide();
  showError(message);
}

void MainWindow::showError(const QString& message) {
  const QString line = message.section(QLatin1Char('\n'), 0, 0);
  error_banner_->setText(result_ ? tr("%1 — showing the last good result.").arg(line) : line);
  error_banner_->show();
  emit errorShown(line);
}

void MainWindow::clearError() {
  error_banner_->setText(gl_note_);
  error_banner_->setVisible(!gl_note_.isEmpty());
}

QString MainWindow::errorText() const {
  return error_banner_->isVisible() && error_banner_->text() != gl_note_ ? error_banner_->text() : QString();
}

void MainWindow::onVariantChanged() {
  const Attention* variant = Registry::builtin().find(variant_box_->currentText().toStdString());
  if (!variant) return;
  const VariantSpec& spec = variant->spec();
  variant_info_->setText(QStringLiteral("<b>%1</b><br>%2<br><i>%3</i>")
                             .arg(QString::fromStdString(spec.title).toHtmlEscaped(),
                                  QString::fromStdString(spec.summary).toHtmlEscaped(),
                                  QString::fromStdString(spec.paper).toHtmlEscaped()));
  param_panel_->setSchema(spec.params, QString::fromStdString(spec.name));
}

void MainWindow::refreshViews() {
  if (!result_) return;
  const int layer = std::clamp(layer_box_->value(), 0, static_cast<int>(result_->layers.size()) - 1);
  const int head = std::clamp(head_box_->value(), 0, layer_head_count(*result_, layer) - 1);
  const ColormapId cmap = Colormap::find(colormap_box_->currentText())->id();
  const HeatmapDataPtr heatmap_data = attention_heatmap(*result_, layer, head, cmap);
  if (heatmap_) heatmap_->setData(heatmap_data);
  if (figure_view_) figure_view_->setData(heatmap_data);
  if (result_->layers[static_cast<std::size_t>(layer)].weights.empty()) {
    head_grid_->showNoHeads(layer, tr("Layer %1 (%2) has no attention heads.")
                                       .arg(layer)
                                       .arg(QString::fromStdString(result_->layer_types[static_cast<std::size_t>(layer)])));
  } else {
    head_grid_->setHeads(layer_heatmaps(*result_, layer, cmap), layer);
  }
  head_grid_->setCurrentHead(head);

  const ViewContext context = viewContext();
  if (!view_spec(view_).accepts(*result_)) view_ = "heatmap";  // the exported view must fit the result
  const bool was_applying = applying_;
  applying_ = true;  // tab changes below are ours, not the user's
  // Only the tab on screen builds its figure now (the lab's alone costs ~55 ms at 512 tokens);
  // the others are marked stale and draw when they are opened.
  for (std::size_t i = 0; i < variant_views_.size(); ++i) {
    const bool fits = view_spec(variant_views_[i].first).accepts(*result_);
    view_tabs_->setTabVisible(static_cast<int>(i) + 1, fits);
    stale_views_[i] = false;
    if (!fits) {
      variant_views_[i].second->resultWithdrawn();
    } else if (variant_views_[i].first == view_) {
      variant_views_[i].second->setContext(context);
      view_tabs_->setCurrentIndex(static_cast<int>(i) + 1);
    } else {
      stale_views_[i] = true;
      // A hidden view's work for another variant (a sweep) no longer belongs to this result.
      if (result_->variant != shown_variant_) variant_views_[i].second->resultWithdrawn();
    }
  }
  shown_variant_ = result_->variant;
  if (view_ == "heatmap") view_tabs_->setCurrentIndex(0);
  applying_ = was_applying;
}

void MainWindow::updateStatus() {
  if (!result_) return;
  const PlaygroundResult& r = *result_;
  status_label_->setText(tr("%1 tokens · %2 (%3) · %4 × %5 heads · %6 ms · peak %7 · %8")
                             .arg(r.length())
                             .arg(QString::fromStdString(r.model.name), QString::fromStdString(r.weights_source))
                             .arg(r.layers.size() == 1 ? tr("1 layer") : tr("%1 layers").arg(r.layers.size()))
                             .arg(r.heads())
                             .arg(r.forward_ms, 0, 'f', 1)
                             .arg(bytes_text(r.peak_bytes), QString::fromStdString(r.device.describe())));
  status_label_->setToolTip(QString::fromStdString(r.tokenizer));
}

// ---- linked highlighting ------------------------------------------------------------------------

void MainWindow::setLinkedToken(int query, int key) {
  if (query == linked_query_ && key < 0) return;
  linked_query_ = query;
  if (heatmap_) heatmap_->setHighlightedToken(query);
  if (figure_view_) figure_view_->setHighlightedToken(query);
  head_grid_->setHighlightedToken(query);
  for (const auto& [name, widget] : variant_views_) {
    if (widget->isVisible()) widget->setHighlightedToken(query);
  }
  highlightTokensInEditor(query, key);
}

void MainWindow::highlightTokensInEditor(int query, int key) {
  QList<QTextEdit::ExtraSelection> selections;
  // Only while the editor still shows the text the result was computed from.
  if (result_ && editor_->toPlainText() == result_text_) {
    const auto add = [&](int token, const QColor& colour) {
      if (token < 0 || token >= static_cast<int>(token_spans_.size())) return;
      QTextEdit::ExtraSelection sel;
      sel.cursor = QTextCursor(editor_->document());
      sel.cursor.setPosition(token_spans_[static_cast<std::size_t>(token)].first);
      sel.cursor.setPosition(token_spans_[static_cast<std::size_t>(token)].second, QTextCursor::KeepAnchor);
      sel.format.setBackground(colour);
      sel.format.setForeground(theme_ == Theme::Dark ? Qt::white : Qt::black);
      selections.append(sel);
    };
    const bool dark = theme_ == Theme::Dark;
    add(query, dark ? QColor(0x1f, 0x5f, 0xa8) : QColor(0xb7, 0xd7, 0xff));  // query: blue
    if (key != query) add(key, dark ? QColor(0x8a, 0x5a, 0x10) : QColor(0xff, 0xe0, 0x9e));  // key: amber
  }
  editor_->setExtraSelections(selections);
}

int MainWindow::tokenAtEditorPosition(int position) const {
  if (!result_ || editor_->toPlainText() != result_text_) return -1;
  for (int i = 0; i < static_cast<int>(token_spans_.size()); ++i) {
    const auto [begin, end] = token_spans_[static_cast<std::size_t>(i)];
    if (position >= begin && position < end) return i;
  }
  return -1;
}

bool MainWindow::eventFilter(QObject* watched, QEvent* event) {
  if (watched == editor_->viewport() && event->type() == QEvent::MouseMove) {
    const auto* mouse = static_cast<QMouseEvent*>(event);
    const int token = tokenAtEditorPosition(editor_->cursorForPosition(mouse->position().toPoint()).position());
    if (token >= 0) setLinkedToken(token, -1);
  }
  return QMainWindow::eventFilter(watched, event);
}

}  // namespace attnlab
