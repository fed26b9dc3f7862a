#include "translate_view.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMouseEvent>
#include <QPainter>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QTextBlock>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>

#include "attention/registry.h"
#include "core/error.h"
#include "decode/search.h"
#include "figure_canvas.h"
#include "figures/figure_kit.h"
#include "param_panel.h"
#include "status_line.h"

namespace attnlab {
namespace {

constexpr double kTextTintAlpha = 0.6;  // of the strongest highlight in the German and English
constexpr float kMinLight = 0.02f;      // fainter highlights are left out


// A text box `lines` lines tall.
void set_lines(QPlainTextEdit* edit, int lines) {
  const int height = edit->fontMetrics().lineSpacing() * lines + 2 * static_cast<int>(edit->document()->documentMargin()) +
                     2 * edit->frameWidth() + 4;
  edit->setFixedHeight(height);
}

// The UTF-16 index of byte `byte` of `utf8`.
int utf16_index(const std::string& utf8, std::size_t byte) {
  return static_cast<int>(QString::fromUtf8(utf8.data(), static_cast<qsizetype>(std::min(byte, utf8.size()))).size());
}

// `values` scaled by their largest one (all zero when none is above 0).
std::vector<float> scaled_to_largest(std::vector<float> values) {
  float top = 0.0f;
  for (const float v : values) top = std::max(top, v);
  for (float& v : values) v = top > 0.0f ? v / top : 0.0f;
  return values;
}

std::vector<float> matrix_row(const HeatmapData& map, int row) {
  std::vector<float> out;
  if (row < 0 || row >= map.rows) return out;
  for (int c = 0; c < map.cols; ++c) out.push_back(map.at(row, c));
  return out;
}

std::vector<float> matrix_col(const HeatmapData& map, int col) {
  std::vector<float> out;
  if (col < 0 || col >= map.cols) return out;
  for (int r = 0; r < map.rows; ++r) out.push_back(map.at(r, col));
  return out;
}

QStringList labels_of(const std::vector<std::string>& pieces) {
  QStringList out;
  for (const std::string& p : pieces) out << QString::fromStdString(p);
  return out;
}

// "greedy", "beam 4, α 1", with ", no repeat 3" when n-grams are blocked.
QString search_text(const TranslateRequest& r) {
  QString text = r.beam <= 1 ? QStringLiteral("greedy") : QStringLiteral("beam %1, α %2").arg(r.beam).arg(r.length_penalty, 0, 'g', 3);
  if (r.no_repeat_ngram > 0) text += QStringLiteral(", no repeat %1").arg(r.no_repeat_ngram);
  return text;
}

// "n_features=16, kernel=relu · seed 0" (the variant's values as the run used them).
QString params_text(const nlohmann::json& params, std::uint64_t seed) {
  QStringList parts;
  if (params.is_object()) {
    for (const auto& [key, value] : params.items()) {
      parts << QString::fromStdString(key + "=" + (value.is_string() ? value.get<std::string>() : value.dump()));
    }
  }
  return (parts.isEmpty() ? QStringLiteral("no parameters") : parts.join(QStringLiteral(", "))) +
         QStringLiteral(" · seed %1").arg(seed);
}

}  // namespace

TranslateView::TranslateView(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("translateView"));
  runner_ = new TranslateRunner(this);
  for (auto& m : maps_) m = std::make_shared<AlignmentFigureData>();
  beam_figure_ = std::make_shared<const BeamFigureData>();

  // ---- input and output ----
  input_ = new QPlainTextEdit;
  input_->setObjectName(QStringLiteral("translateInput"));
  input_->setPlaceholderText(tr("Type German here; the English follows as you type."));
  input_->setTabChangesFocus(true);
  input_->viewport()->setMouseTracking(true);
  input_->viewport()->installEventFilter(this);
  set_lines(input_, 3);
  output_ = new QPlainTextEdit;
  output_->setObjectName(QStringLiteral("translateOutput"));
  output_->setReadOnly(true);
  output_->setPlaceholderText(tr("The English appears here."));
  output_->viewport()->setMouseTracking(true);
  output_->viewport()->installEventFilter(this);
  set_lines(output_, 3);
  timing_ = new QLabel;
  timing_->setObjectName(QStringLiteral("translateTiming"));
  timing_->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("translating… 0000.0 ms")));
  timing_->setAlignment(Qt::AlignLeft | Qt::AlignTop);
  auto* texts = new QFormLayout;
  texts->addRow(tr("German"), input_);
  auto* english = new QHBoxLayout;
  english->addWidget(output_, 1);
  english->addWidget(timing_);
  texts->addRow(tr("English"), english);

  // ---- figures ----
  tabs_ = new QTabWidget;
  tabs_->setObjectName(QStringLiteral("translateTabs"));
  tabs_->setDocumentMode(true);
  const QString canvas_names[] = {QStringLiteral("alignmentCanvas"), QStringLiteral("encoderCanvas"),
                                  QStringLiteral("decoderCanvas"), QStringLiteral("beamCanvas")};
  for (int i = 0; i < 4; ++i) {
    canvases_[i] = new FigureCanvas;
    canvases_[i]->setObjectName(canvas_names[i]);
  }
  tabs_->addTab(canvases_[0], tr("Alignment"));
  tabs_->addTab(canvases_[1], tr("Encoder self-attention"));
  tabs_->addTab(canvases_[2], tr("Decoder self-attention"));
  tabs_->addTab(canvases_[3], tr("Beam tree"));
  tabs_->setTabToolTip(0, tr("Cross-attention: which German pieces each English piece read"));
  tabs_->setTabToolTip(1, tr("The encoder's self-attention over the German pieces"));
  tabs_->setTabToolTip(2, tr("The decoder's causal self-attention over the English it has written"));
  tabs_->setTabToolTip(3, tr("Every candidate the search looked at, with its score; the n-best list beside it"));
  layer_box_ = new QComboBox;
  layer_box_->setObjectName(QStringLiteral("translateLayer"));
  layer_box_->setToolTip(tr("The layer whose attention is drawn, or the mean over all layers"));
  head_box_ = new QComboBox;
  head_box_->setObjectName(QStringLiteral("translateHead"));
  head_box_->setToolTip(tr("The head whose attention is drawn, or the mean over all heads"));
  export_button_ = new QPushButton(tr("Export…"));
  export_button_->setObjectName(QStringLiteral("translateExport"));
  export_button_->setToolTip(tr("Save the current tab's figure (PNG, SVG, PDF), the translation (JSON, as attnlab-cli "
                                "translate --json) or the map's matrix (CSV)"));
  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("Layer")));
  bar->addWidget(layer_box_);
  bar->addWidget(new QLabel(tr("Head")));
  bar->addWidget(head_box_);
  bar->addStretch(1);
  bar->addWidget(export_button_);

  auto* right = new QWidget;
  auto* right_layout = new QVBoxLayout(right);
  right_layout->setContentsMargins(0, 0, 0, 0);
  right_layout->addLayout(texts);
  right_layout->addLayout(bar);
  right_layout->addWidget(tabs_, 1);

  auto* controls = new QScrollArea;
  controls->setWidgetResizable(true);
  controls->setFrameShape(QFrame::NoFrame);
  controls->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  QWidget* column = buildControls();
  controls->setWidget(column);
  controls->setFixedWidth(column->sizeHint().width() + controls->verticalScrollBar()->sizeHint().width() + 4);

  status_ = new StatusLine;
  status_->setObjectName(QStringLiteral("translateStatus"));

  auto* body = new QHBoxLayout;
  body->addWidget(controls);
  body->addWidget(right, 1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(body, 1);
  layout->addWidget(status_);

  // ---- reactions ----
  debounce_ = new QTimer(this);
  debounce_->setSingleShot(true);
  connect(debounce_, &QTimer::timeout, this, &TranslateView::translateNow);
  connect(input_, &QPlainTextEdit::textChanged, this, [this] { edited(kDebounceMs); });
  connect(runner_, &TranslateRunner::translated, this, &TranslateView::onTranslated);
  connect(runner_, &TranslateRunner::translationFailed, this, &TranslateView::onTranslationFailed);
  connect(tabs_, &QTabWidget::currentChanged, this, [this] {
    refreshSelectors();
    if (!applying_) emit settingsChanged();
  });
  connect(layer_box_, &QComboBox::activated, this, [this](int index) {
    layer_ = index - 1;
    refreshFigures();
    if (!applying_) emit settingsChanged();
  });
  connect(head_box_, &QComboBox::activated, this, [this](int index) {
    head_ = index - 1;
    refreshFigures();
    if (!applying_) emit settingsChanged();
  });
  connect(export_button_, &QPushButton::clicked, this, &TranslateView::exportDialog);
  connect(canvases_[0], &FigureCanvas::tokenHovered, this, [this](int code) {
    const AlignmentHit hit = AlignmentHit::from_code(code, maps_[0]->map.cols);
    if (hit.kind == AlignmentHit::Kind::Column) {
      hoverSource(hit.col);
    } else if (hit.kind == AlignmentHit::Kind::None) {
      clearHover();
    } else {
      hoverTarget(hit.row);
    }
  });
  // The self-attention maps light their labels and the text they are over: the encoder's the
  // German (its rows and columns are the source pieces, then EOS), the decoder's the English (its
  // rows and columns are the decoder's inputs: <s>, then the pieces before the last, so input j
  // is target piece j − 1). A hovered piece lights itself and, by the hovered row or column, the
  // pieces it attends to or that attend to it.
  for (const int i : {1, 2}) {
    connect(canvases_[i], &FigureCanvas::tokenHovered, this, [this, i](int code) {
      AlignmentFigureData& fig = *maps_[i];
      const AlignmentHit hit = AlignmentHit::from_code(code, fig.map.cols);
      fig.overlay = {};
      const std::vector<float>* tint = nullptr;
      int hovered = -1;
      if (hit.kind == AlignmentHit::Kind::Column) {
        fig.overlay.col = hovered = hit.col;
        fig.overlay.row_tint = scaled_to_largest(matrix_col(fig.map, hit.col));
        tint = &fig.overlay.row_tint;
      } else if (hit.kind != AlignmentHit::Kind::None) {
        fig.overlay.row = hovered = hit.row;
        fig.overlay.col_tint = scaled_to_largest(matrix_row(fig.map, hit.row));
        tint = &fig.overlay.col_tint;
      }
      source_light_.clear();
      target_light_.clear();
      if (tint && result_) {
        const bool encoder = i == 1;
        const std::size_t pieces = encoder ? result_->translation.source_tokens.size() : result_->translation.target_tokens.size();
        const std::size_t shift = encoder ? 0 : 1;  // decoder input j is target piece j − 1
        std::vector<float>& light = encoder ? source_light_ : target_light_;
        light.assign(pieces, 0.0f);
        for (std::size_t p = 0; p < pieces && p + shift < tint->size(); ++p) light[p] = (*tint)[p + shift];
        const auto self = static_cast<std::ptrdiff_t>(hovered) - static_cast<std::ptrdiff_t>(shift);
        if (self >= 0 && static_cast<std::size_t>(self) < pieces) light[static_cast<std::size_t>(self)] = 1.0f;
      }
      canvases_[i]->refresh();
      highlightInput();
      highlightOutput();
    });
  }

  connect(runner_, &TranslateRunner::measureProgress, this, [this](int done, int total) {
    progress_->setRange(0, std::max(1, total));
    progress_->setValue(done);
  });
  connect(runner_, &TranslateRunner::measured, this, [this](int run) {
    setMeasuring(false);
    addRunRow(run);
    const QualityRun& r = runner_->qualityRuns()[static_cast<std::size_t>(run)];
    QString text = tr("%1: BLEU %2 · %3 ms per sentence · %4 sentences")
                       .arg(QString::fromStdString(r.options.attention))
                       .arg(r.evaluation.bleu.score, 0, 'f', 2)
                       .arg(r.evaluation.mean_ms, 0, 'f', 1)
                       .arg(r.sentences);
    if (r.evaluation.failed > 0) text += tr(" (%1 too long, counted empty)").arg(r.evaluation.failed);
    quality_->setText(text);
    quality_->setToolTip(QString::fromStdString(r.evaluation.bleu.signature_line()));
  });
  connect(runner_, &TranslateRunner::measureFailed, this, [this](const QString& message) {
    setMeasuring(false);
    quality_->setText(first_line(message));
    quality_->setToolTip(first_line(message));
  });
  connect(runner_, &TranslateRunner::measureCancelled, this, [this] {
    setMeasuring(false);
    quality_->setText(tr("Cancelled; nothing measured."));
  });

  onAttentionChanged();
  setMeasuring(false);
  refreshSelectors();
  refreshFigures();
  setStatus(tr("Model folder: %1").arg(QString::fromStdString(TranslateSettings{}.model_dir())));
  setSettings(TranslateSettings{});
}

TranslateView::~TranslateView() {
  // The runner (a child) joins its workers when destroyed; cancel first so that they stop at
  // the next check while the rest of the widget is torn down.
  runner_->cancelTranslation();
  runner_->cancelMeasure();
}

QWidget* TranslateView::buildControls() {
  const TranslateSettings defaults;
  model_edit_ = new QLineEdit;
  model_edit_->setObjectName(QStringLiteral("translateModel"));
  model_edit_->setPlaceholderText(tr("shipped de→en model"));
  model_edit_->setToolTip(tr("A model folder (config.json, model.safetensors, tokenizer.model; test.de/test.en for the "
                             "measured quality). Empty: %1")
                              .arg(QString::fromStdString(default_translation_model_dir())));
  model_browse_ = new QToolButton;
  model_browse_->setText(QStringLiteral("…"));
  model_browse_->setToolTip(tr("Choose a model folder"));
  auto* model_row = new QHBoxLayout;
  model_row->setContentsMargins(0, 0, 0, 0);
  model_row->addWidget(model_edit_, 1);
  model_row->addWidget(model_browse_);

  beam_ = new QSpinBox;
  beam_->setObjectName(QStringLiteral("translateBeam"));
  beam_->setRange(1, kTranslateMaxBeam);
  beam_->setSpecialValueText(tr("1 (greedy)"));
  beam_->setToolTip(tr("Beam width: 1 is greedy search, the most likely piece at every step"));
  length_penalty_ = new QDoubleSpinBox;
  length_penalty_->setObjectName(QStringLiteral("translateLengthPenalty"));
  length_penalty_->setRange(0.0, kTranslateMaxLengthPenalty);
  length_penalty_->setDecimals(2);
  length_penalty_->setSingleStep(0.1);
  length_penalty_->setToolTip(tr("GNMT length penalty α of beam search (0: raw log-probability; larger favours longer "
                                 "translations)"));
  n_best_ = new QSpinBox;
  n_best_->setObjectName(QStringLiteral("translateNBest"));
  n_best_->setRange(1, kTranslateMaxBeam);
  n_best_->setToolTip(tr("Hypotheses listed beside the beam tree (at most the beam width)"));
  no_repeat_ = new QSpinBox;
  no_repeat_->setObjectName(QStringLiteral("translateNoRepeatNgram"));
  no_repeat_->setRange(0, kMaxNoRepeatNgram);
  no_repeat_->setSpecialValueText(tr("off"));
  no_repeat_->setToolTip(tr("No repeated n-grams: forbid the search to repeat any run of this many pieces (stops "
                            "runaway repetition such as \"numbers numbers numbers\"); off = the model's own choice"));
  attention_ = new QComboBox;
  attention_->setObjectName(QStringLiteral("translateAttention"));
  for (const Attention* a : Registry::builtin().all()) {
    attention_->addItem(QString::fromStdString(a->spec().name));
    attention_->setItemData(attention_->count() - 1, QString::fromStdString(a->spec().title + " — " + a->spec().paper),
                            Qt::ToolTipRole);
  }
  attention_->setToolTip(tr("Self-attention of the encoder and decoder: the trained softmax, or any variant run on the "
                            "trained queries, keys and values (cross-attention stays exact)"));
  attention_info_ = new QLabel;
  attention_info_->setWordWrap(true);
  attention_info_->setForegroundRole(QPalette::PlaceholderText);
  params_ = new ParamPanel;
  params_->setObjectName(QStringLiteral("translateParams"));
  seed_ = new QSpinBox;
  seed_->setObjectName(QStringLiteral("translateSeed"));
  seed_->setRange(0, static_cast<int>(kTranslateMaxSeed));
  seed_->setToolTip(tr("Seed of the variant's random draws (hashes, features, random blocks)"));

  auto* form = new QFormLayout;
  form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  form->addRow(tr("Model"), model_row);
  form->addRow(tr("Beam width"), beam_);
  form->addRow(tr("Length penalty"), length_penalty_);
  form->addRow(tr("n-best"), n_best_);
  form->addRow(tr("No repeat n-gram"), no_repeat_);
  form->addRow(tr("Attention"), attention_);
  form->addRow(attention_info_);
  auto* params_group = new QGroupBox(tr("Attention parameters"));
  auto* params_layout = new QVBoxLayout(params_group);
  params_layout->addWidget(params_);
  auto* seed_form = new QFormLayout;
  seed_form->addRow(tr("Seed"), seed_);

  auto* column = new QWidget;
  auto* layout = new QVBoxLayout(column);
  layout->setContentsMargins(0, 0, 4, 0);
  layout->addLayout(form);
  layout->addWidget(params_group);
  layout->addLayout(seed_form);
  layout->addWidget(buildQuality(), 1);
  column->setMinimumWidth(fontMetrics().horizontalAdvance(QLatin1Char('M')) * 28);

  connect(model_browse_, &QToolButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Model folder"), model_edit_->text());
    if (!dir.isEmpty()) model_edit_->setText(dir);
  });
  connect(model_edit_, &QLineEdit::textChanged, this, [this] { edited(kDebounceMs); });
  connect(beam_, &QSpinBox::valueChanged, this, [this] {
    length_penalty_->setEnabled(beam_->value() > 1);
    n_best_->setEnabled(beam_->value() > 1);
    edited(0);
  });
  connect(length_penalty_, &QDoubleSpinBox::valueChanged, this, [this] { edited(kDebounceMs); });
  connect(n_best_, &QSpinBox::valueChanged, this, [this] { edited(0); });
  connect(no_repeat_, &QSpinBox::valueChanged, this, [this] { edited(0); });
  connect(seed_, &QSpinBox::valueChanged, this, [this] { edited(kDebounceMs); });
  connect(attention_, &QComboBox::currentIndexChanged, this, [this] {
    if (applying_) return;
    onAttentionChanged();
    edited(0);
  });
  connect(params_, &ParamPanel::valuesChanged, this, [this] { edited(kDebounceMs); });
  return column;
}

QWidget* TranslateView::buildQuality() {
  auto* group = new QGroupBox(tr("Measured quality"));
  group->setToolTip(tr("Corpus BLEU (sacreBLEU 13a) of the first N sentences of the model folder's test.de against "
                       "test.en, with the search and attention set above"));
  sentences_ = new QSpinBox;
  sentences_->setObjectName(QStringLiteral("translateSentences"));
  sentences_->setRange(1, kTranslateMaxQualitySentences);
  sentences_->setToolTip(tr("How many test sentences (from the top of test.de / test.en)"));
  measure_button_ = new QPushButton(tr("&Measure"));
  measure_button_->setObjectName(QStringLiteral("translateMeasure"));
  measure_button_->setToolTip(tr("Translate the test sentences on a worker thread and score them with BLEU"));
  cancel_measure_ = new QPushButton(tr("Cancel"));
  cancel_measure_->setObjectName(QStringLiteral("translateCancelMeasure"));
  progress_ = new QProgressBar;
  progress_->setObjectName(QStringLiteral("translateProgress"));
  progress_->setRange(0, 1);
  progress_->setValue(0);
  progress_->setFormat(QString());  // "%v / %m sentences" while measuring
  quality_ = new QLabel(tr("Not measured yet."));
  quality_->setObjectName(QStringLiteral("translateQuality"));
  quality_->setWordWrap(true);
  runs_table_ = new QTableWidget(0, 4);
  runs_table_->setObjectName(QStringLiteral("translateRuns"));
  runs_table_->setHorizontalHeaderLabels({tr("Attention"), tr("Search"), tr("BLEU"), tr("ms")});
  runs_table_->horizontalHeaderItem(0)->setToolTip(tr("The self-attention variant, its parameters and seed"));
  runs_table_->horizontalHeaderItem(3)->setToolTip(tr("Mean milliseconds per sentence"));
  runs_table_->verticalHeader()->setVisible(false);
  runs_table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  runs_table_->setSelectionMode(QAbstractItemView::NoSelection);
  runs_table_->setWordWrap(true);
  runs_table_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  runs_table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  runs_table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  runs_table_->setMinimumHeight(fontMetrics().lineSpacing() * 6);

  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel(tr("Sentences")));
  row->addWidget(sentences_, 1);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(measure_button_);
  buttons->addWidget(cancel_measure_);
  auto* layout = new QVBoxLayout(group);
  layout->addLayout(row);
  layout->addLayout(buttons);
  layout->addWidget(progress_);
  layout->addWidget(quality_);
  layout->addWidget(runs_table_, 1);

  connect(measure_button_, &QPushButton::clicked, this, [this] { measureQuality(); });
  connect(cancel_measure_, &QPushButton::clicked, this, &TranslateView::cancelMeasure);
  connect(sentences_, &QSpinBox::valueChanged, this, [this] {
    if (!applying_) emit settingsChanged();
  });
  return group;
}

// ---- settings ---------------------------------------------------------------------------------------------

TranslateSettings TranslateView::settings() const {
  TranslateSettings s;
  s.text = input_->toPlainText().toStdString();
  s.model = model_edit_->text().trimmed().toStdString();
  s.beam = beam_->value();
  s.length_penalty = length_penalty_->value();
  s.n_best = n_best_->value();
  s.no_repeat_ngram = no_repeat_->value();
  s.attention = attention_->currentText().toStdString();
  s.params = params_->changedValues();
  s.seed = static_cast<std::uint64_t>(seed_->value());
  s.quality_sentences = sentences_->value();
  s.tab = currentTab();
  s.layer = layer_;
  s.head = head_;
  return s;
}

void TranslateView::setSettings(const TranslateSettings& s) {
  s.validate();  // before anything changes
  const bool was_applying = applying_;
  applying_ = true;
  input_->setPlainText(QString::fromStdString(s.text));
  model_edit_->setText(QString::fromStdString(s.model));
  beam_->setValue(s.beam);
  length_penalty_->setValue(s.length_penalty);
  n_best_->setValue(s.n_best);
  no_repeat_->setValue(s.no_repeat_ngram);
  attention_->setCurrentText(QString::fromStdString(s.attention));
  onAttentionChanged();
  params_->setValues(s.params);
  seed_->setValue(static_cast<int>(s.seed));
  sentences_->setValue(s.quality_sentences);
  layer_ = s.layer;
  head_ = s.head;
  setCurrentTab(s.tab);
  refreshSelectors();
  refreshFigures();
  applying_ = was_applying;
  scheduleTranslate(0);
}

TranslateRequest TranslateView::request() const {
  TranslateRequest r;
  const TranslateSettings s = settings();
  r.model_dir = s.model_dir();
  r.text = s.text;
  r.beam = s.beam;
  r.length_penalty = static_cast<float>(s.length_penalty);
  r.n_best = s.n_best;
  r.no_repeat_ngram = s.no_repeat_ngram;
  r.attention = s.attention;
  r.params = params_->values();
  r.seed = s.seed;
  return r;
}

TranslateTab TranslateView::currentTab() const { return static_cast<TranslateTab>(std::max(0, tabs_->currentIndex())); }

void TranslateView::setCurrentTab(TranslateTab tab) { tabs_->setCurrentIndex(static_cast<int>(tab)); }

void TranslateView::onAttentionChanged() {
  const Attention& variant = Registry::builtin().get(attention_->currentText().toStdString());
  params_->setSchema(variant.spec().params, QString::fromStdString(variant.spec().name));
  attention_info_->setText(QString::fromStdString(variant.spec().title));
  attention_info_->setToolTip(QString::fromStdString(variant.spec().summary + "\n" + variant.spec().paper));
}

void TranslateView::edited(int delay_ms) {
  if (applying_) return;
  emit settingsChanged();
  scheduleTranslate(delay_ms);
}

// ---- translating ------------------------------------------------------------------------------------------

void TranslateView::scheduleTranslate(int delay_ms) {
  if (!isVisible()) {
    // Nobody looks: translate when the panel is shown (no model load at start-up for a hidden dock).
    pending_ = true;
    debounce_->stop();
    return;
  }
  debounce_->start(delay_ms);
}

void TranslateView::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  if (pending_) scheduleTranslate(0);
}

void TranslateView::translateNow() {
  pending_ = false;
  debounce_->stop();
  timing_->setText(tr("translating…"));
  runner_->translate(request());
}

void TranslateView::cancel() {
  debounce_->stop();
  runner_->cancelTranslation();
  runner_->cancelMeasure();
}

void TranslateView::onTranslated(TranslateResultPtr result) {
  result_ = std::move(result);
  message_.clear();
  hover_target_ = hover_source_ = -1;
  const Translation& t = result_->translation;
  output_->setPlainText(QString::fromStdString(t.text));
  // Where each piece is in the German (its byte offsets) and in the English (found in order).
  source_spans_.clear();
  for (const Token& tok : t.source_tokens) {
    source_spans_.emplace_back(utf16_index(result_->request.text, tok.begin), utf16_index(result_->request.text, tok.end));
  }
  target_spans_.clear();
  const QString english = output_->toPlainText();
  int at = 0;
  for (const std::string& piece : t.target_tokens) {
    const QString text = QString::fromStdString(piece).trimmed();
    const int found = text.isEmpty() ? -1 : static_cast<int>(english.indexOf(text, at));
    if (found >= 0 && english.mid(at, found - at).trimmed().isEmpty()) {
      target_spans_.emplace_back(found, found + static_cast<int>(text.size()));
      at = found + static_cast<int>(text.size());
    } else {
      target_spans_.emplace_back(-1, -1);
    }
  }
  if (result_->blank) {
    timing_->clear();
  } else {
    timing_->setText(tr("%1 ms").arg(t.ms, 0, 'f', 1));
    timing_->setToolTip(tr("Encoder, %1 search and the maps, on this machine").arg(search_text(result_->request)));
  }
  setStatus(tr("%1 · %2 · %3 self-attention")
                .arg(QString::fromStdString(result_->request.model_dir), QString::fromStdString(result_->model_description),
                     QString::fromStdString(result_->request.attention)));
  refreshSelectors();
  refreshFigures();
  emit resultShown();
}

void TranslateView::onTranslationFailed(const QString& message) {
  message_ = first_line(message);
  timing_->clear();
  setStatus(message_);
  // The last good result stays; without one the figures say what is wrong.
  if (!result_) refreshFigures();
}

void TranslateView::setStatus(const QString& text) {
  status_->setText(text);
  status_->setToolTip(text);
  status_->update();
}

// ---- figures ----------------------------------------------------------------------------------------------

const AttentionStack* TranslateView::stackFor(TranslateTab tab) const {
  if (!result_) return nullptr;
  switch (tab) {
    case TranslateTab::Alignment: return &result_->cross;
    case TranslateTab::Encoder: return &result_->encoder;
    case TranslateTab::Decoder: return &result_->decoder;
    case TranslateTab::Beam: return &result_->cross;
  }
  return nullptr;
}

void TranslateView::refreshSelectors() {
  const TranslateTab tab = currentTab();
  int layers = 0, heads = 0;
  if (result_) {
    layers = tab == TranslateTab::Encoder ? result_->encoder_layers : result_->decoder_layers;
    heads = result_->heads;
  }
  layers = std::max(layers, layer_ + 1);
  heads = std::max(heads, head_ + 1);
  const QSignalBlocker block_layer(layer_box_), block_head(head_box_);
  layer_box_->clear();
  layer_box_->addItem(tr("average of layers"));
  for (int l = 0; l < layers; ++l) layer_box_->addItem(tr("layer %1").arg(l + 1));
  layer_box_->setCurrentIndex(layer_ + 1);
  head_box_->clear();
  head_box_->addItem(tr("average of heads"));
  for (int h = 0; h < heads; ++h) head_box_->addItem(tr("head %1").arg(h + 1));
  head_box_->setCurrentIndex(head_ + 1);
  const bool maps = tab != TranslateTab::Beam;
  layer_box_->setEnabled(maps);
  head_box_->setEnabled(maps);
}

void TranslateView::refreshFigures() {
  for (const TranslateTab tab : {TranslateTab::Alignment, TranslateTab::Encoder, TranslateTab::Decoder}) refreshMap(tab);
  refreshBeam();
  applyHover();
  export_button_->setEnabled(result_ && !result_->blank);
}

void TranslateView::refreshMap(TranslateTab tab) {
  const int index = static_cast<int>(tab);
  auto fig = std::make_shared<AlignmentFigureData>();
  maps_[index] = fig;
  FigureCanvas* canvas = canvases_[index];
  if (!result_) {
    canvas->clearFigure(message_.isEmpty() ? tr("Type a German sentence above; its translation and attention appear here.")
                                           : message_);
    return;
  }
  if (result_->blank) {
    canvas->clearFigure(tr("Type a German sentence above; its translation and attention appear here."));
    return;
  }
  const AttentionStack& stack = *stackFor(tab);
  const int layer = layer_ < 0 ? -1 : std::min(layer_, stack.layer_count() - 1);
  const int head = head_ < 0 ? -1 : std::min(head_, stack.head_count() - 1);
  const RowMatrix m = stack.select(layer, head);
  if (m.size() == 0) {
    canvas->clearFigure(tr("%1 gives no attention weights to draw here (the variant has no dense matrix).")
                            .arg(QString::fromStdString(result_->request.attention)));
    return;
  }
  HeatmapData& h = fig->map;
  h.rows = static_cast<int>(m.rows());
  h.cols = static_cast<int>(m.cols());
  h.values.assign(m.data(), m.data() + m.size());
  const QString where = (layer < 0 ? tr("average of %1 layers").arg(stack.layer_count()) : tr("layer %1").arg(layer + 1)) +
                        QStringLiteral(" · ") +
                        (head < 0 ? tr("average of %1 heads").arg(stack.head_count()) : tr("head %1").arg(head + 1));
  const QString name = tab == TranslateTab::Alignment ? tr("Cross-attention (alignment)")
                       : tab == TranslateTab::Encoder ? tr("Encoder self-attention")
                                                      : tr("Decoder self-attention");
  h.title = name + QStringLiteral(" · ") + where;
  switch (tab) {
    case TranslateTab::Alignment:
      h.row_labels = labels_of(result_->target_labels);
      h.col_labels = labels_of(result_->source_labels);
      h.row_axis = tr("English (target pieces)");
      h.col_axis = tr("German (source pieces)");
      break;
    case TranslateTab::Encoder:
      h.row_labels = h.col_labels = labels_of(result_->source_labels);
      h.row_axis = tr("German (query)");
      h.col_axis = tr("German (key)");
      break;
    default:
      h.row_labels = h.col_labels = labels_of(result_->decoder_labels);
      h.row_axis = tr("English input (query)");
      h.col_axis = tr("English input (key)");
      break;
  }
  h.value_label = tr("attention weight");
  h.vmin = 0.0f;
  h.vmax = largest_finite(h.values);
  h.colormap = ColormapId::Viridis;

  FigureCanvas::Figure figure;
  figure.size = alignment_figure_size(*fig, canvas->figureStyle());
  figure.draw = [fig](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_alignment_figure(painter, target, *fig, style);
  };
  figure.token_at = [fig](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_alignment_layout(*fig, style, target, device).hit(pos, fig->map.rows, fig->map.cols).code(fig->map.cols);
  };
  figure.tooltip = [fig](int code) {
    const HeatmapData& map = fig->map;
    const AlignmentHit hit = AlignmentHit::from_code(code, map.cols);
    const auto label = [](const QStringList& labels, int i) { return i >= 0 && i < labels.size() ? labels[i] : QString::number(i); };
    switch (hit.kind) {
      case AlignmentHit::Kind::Row: return QStringLiteral("“%1” (%2)").arg(label(map.row_labels, hit.row), map.row_axis);
      case AlignmentHit::Kind::Column: return QStringLiteral("“%1” (%2)").arg(label(map.col_labels, hit.col), map.col_axis);
      case AlignmentHit::Kind::Cell:
        if (hit.row >= map.rows || hit.col >= map.cols) return QString();
        return QStringLiteral("“%1” → “%2”: %3")
            .arg(label(map.row_labels, hit.row), label(map.col_labels, hit.col))
            .arg(map.at(hit.row, hit.col), 0, 'g', 3);
      case AlignmentHit::Kind::None: break;
    }
    return QString();
  };
  canvas->setFigure(std::move(figure));
}

void TranslateView::refreshBeam() {
  FigureCanvas* canvas = canvases_[static_cast<int>(TranslateTab::Beam)];
  if (!result_ || result_->blank) {
    beam_figure_ = std::make_shared<const BeamFigureData>();
    canvas->clearFigure(!result_ && !message_.isEmpty() ? message_
                                                        : tr("Type a German sentence above; the search's candidates appear here."));
    return;
  }
  const Translation& t = result_->translation;
  BeamSearchInfo info;
  info.beam = result_->request.beam;
  info.length_penalty = result_->request.beam > 1 ? result_->request.length_penalty : 0.0;
  info.eos = result_->eos_id;
  auto fig = std::make_shared<const BeamFigureData>(beam_figure_data(t.search, result_->tree_pieces, t.nbest_text, info));
  beam_figure_ = fig;
  FigureCanvas::Figure figure;
  figure.size = beam_figure_size(*fig, canvas->figureStyle());
  figure.draw = [fig](QPainter& painter, const QRectF& target, const FigureStyle& style) { draw_beam_figure(painter, target, *fig, style); };
  figure.token_at = [fig](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return compute_beam_layout(*fig, style, target, device).node_at(pos);
  };
  figure.tooltip = [fig](int node) { return beam_node_tip(*fig, node); };
  canvas->setFigure(std::move(figure));
}

AlignmentFigureData TranslateView::mapData(TranslateTab tab) const {
  if (tab == TranslateTab::Beam) tab = TranslateTab::Alignment;
  return *maps_[static_cast<int>(tab)];
}

BeamFigureData TranslateView::beamData() const { return *beam_figure_; }

// ---- hover ------------------------------------------------------------------------------------------------

void TranslateView::hoverTarget(int piece) {
  hover_source_ = -1;
  hover_target_ = piece;
  applyHover();
}

void TranslateView::hoverSource(int piece) {
  hover_target_ = -1;
  hover_source_ = piece;
  applyHover();
}

void TranslateView::clearHover() {
  if (hover_target_ < 0 && hover_source_ < 0 && source_light_.empty() && target_light_.empty()) return;
  hover_target_ = hover_source_ = -1;
  applyHover();
}

void TranslateView::applyHover() {
  AlignmentFigureData& fig = *maps_[0];
  const std::size_t sources = result_ ? result_->translation.source_tokens.size() : 0;
  const std::size_t targets = result_ ? result_->translation.target_tokens.size() : 0;
  fig.overlay = {};
  source_light_.clear();
  target_light_.clear();
  if (hover_target_ >= 0 && hover_target_ < fig.map.rows) {
    fig.overlay.row = hover_target_;
    fig.overlay.col_tint = scaled_to_largest(matrix_row(fig.map, hover_target_));
    source_light_.assign(fig.overlay.col_tint.begin(), fig.overlay.col_tint.begin() + static_cast<std::ptrdiff_t>(std::min(sources, fig.overlay.col_tint.size())));
    target_light_.assign(targets, 0.0f);
    if (static_cast<std::size_t>(hover_target_) < targets) target_light_[static_cast<std::size_t>(hover_target_)] = 1.0f;
  } else if (hover_source_ >= 0 && hover_source_ < fig.map.cols) {
    fig.overlay.col = hover_source_;
    fig.overlay.row_tint = scaled_to_largest(matrix_col(fig.map, hover_source_));
    target_light_.assign(fig.overlay.row_tint.begin(), fig.overlay.row_tint.begin() + static_cast<std::ptrdiff_t>(std::min(targets, fig.overlay.row_tint.size())));
    source_light_.assign(sources, 0.0f);
    if (static_cast<std::size_t>(hover_source_) < sources) source_light_[static_cast<std::size_t>(hover_source_)] = 1.0f;
  }
  canvases_[0]->refresh();
  highlightInput();
  highlightOutput();
}

namespace {

QList<QTextEdit::ExtraSelection> lit_pieces(QPlainTextEdit* edit, const std::vector<std::pair<int, int>>& spans,
                                           const std::vector<float>& light) {
  QList<QTextEdit::ExtraSelection> out;
  const int length = static_cast<int>(edit->document()->characterCount()) - 1;
  for (std::size_t i = 0; i < spans.size() && i < light.size(); ++i) {
    const auto [begin, end] = spans[i];
    if (light[i] < kMinLight || begin < 0 || end <= begin || end > length) continue;
    QTextEdit::ExtraSelection s;
    s.cursor = QTextCursor(edit->document());
    s.cursor.setPosition(begin);
    s.cursor.setPosition(end, QTextCursor::KeepAnchor);
    QColor colour = alignment_tint_color();
    colour.setAlphaF(static_cast<float>(kTextTintAlpha * light[i]));
    s.format.setBackground(colour);
    out << s;
  }
  return out;
}

}  // namespace

void TranslateView::highlightInput() {
  // The offsets belong to the text that was translated: none while the German has changed since.
  const bool current = result_ && input_->toPlainText().toStdString() == result_->request.text;
  input_->setExtraSelections(current ? lit_pieces(input_, source_spans_, source_light_) : QList<QTextEdit::ExtraSelection>());
}

void TranslateView::highlightOutput() { output_->setExtraSelections(lit_pieces(output_, target_spans_, target_light_)); }

int TranslateView::pieceAt(const std::vector<std::pair<int, int>>& spans, int position) const {
  for (std::size_t i = 0; i < spans.size(); ++i)
    if (spans[i].first >= 0 && position >= spans[i].first && position < spans[i].second) return static_cast<int>(i);
  return -1;
}

bool TranslateView::eventFilter(QObject* watched, QEvent* event) {
  const bool in_input = watched == input_->viewport(), in_output = watched == output_->viewport();
  if ((in_input || in_output) && result_) {
    if (event->type() == QEvent::MouseMove) {
      QPlainTextEdit* edit = in_input ? input_ : output_;
      const auto* move = static_cast<QMouseEvent*>(event);
      const QTextCursor cursor = edit->cursorForPosition(move->position().toPoint());
      // The character under the pointer: the one after the nearest cursor position, or before it
      // when the pointer is right of that position's caret.
      int position = cursor.position();
      if (move->position().x() < edit->cursorRect(cursor).left() && position > 0) --position;
      if (in_input) {
        const bool current = input_->toPlainText().toStdString() == result_->request.text;
        const int piece = current ? pieceAt(source_spans_, position) : -1;
        if (piece >= 0) hoverSource(piece);
        else clearHover();
      } else {
        const int piece = pieceAt(target_spans_, position);
        if (piece >= 0) hoverTarget(piece);
        else clearHover();
      }
    } else if (event->type() == QEvent::Leave) {
      clearHover();
    }
  }
  return QWidget::eventFilter(watched, event);
}

// ---- measured quality -------------------------------------------------------------------------------------

bool TranslateView::measureQuality() {
  QualityRequest q;
  q.options = request();
  q.options.text.clear();
  q.sentences = sentences_->value();
  runner_->measure(q);
  setMeasuring(true);
  progress_->setRange(0, q.sentences);
  progress_->setValue(0);
  progress_->setFormat(tr("%v / %m sentences"));
  quality_->setText(tr("Measuring %1 · %2 on %3 sentences…")
                        .arg(QString::fromStdString(q.options.attention), search_text(q.options))
                        .arg(q.sentences));
  return true;
}

void TranslateView::cancelMeasure() {
  if (runner_->isMeasuring()) runner_->cancelMeasure();
}

void TranslateView::setMeasuring(bool measuring) {
  measure_button_->setEnabled(!measuring);
  cancel_measure_->setEnabled(measuring);
}

void TranslateView::addRunRow(int run) {
  const QualityRun& r = runner_->qualityRuns()[static_cast<std::size_t>(run)];
  const int row = runs_table_->rowCount();
  runs_table_->insertRow(row);
  // The attention cell: the variant, then its parameters and seed on a second line.
  const QString cells[] = {QString::fromStdString(r.options.attention) + QLatin1Char('\n') + params_text(r.options.params, r.options.seed),
                           search_text(r.options),
                           QString::number(r.evaluation.bleu.score, 'f', 2), QString::number(r.evaluation.mean_ms, 'f', 1)};
  for (int c = 0; c < 4; ++c) {
    auto* item = new QTableWidgetItem(cells[c]);
    item->setToolTip(QStringLiteral("%1 sentences · %2").arg(r.sentences).arg(QString::fromStdString(r.evaluation.bleu.signature_line())));
    if (c >= 2) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    runs_table_->setItem(row, c, item);
  }
  runs_table_->resizeRowToContents(row);
  runs_table_->scrollToBottom();
}

// ---- export -----------------------------------------------------------------------------------------------

void TranslateView::exportCurrent(const QString& path, const ExportOptions& options) const {
  const QString suffix = QFileInfo(path).suffix().toLower();
  const QStringList allowed = {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf"), QStringLiteral("json"),
                               QStringLiteral("csv")};
  if (!allowed.contains(suffix)) {
    throw ParamError("cannot export '" + path.toStdString() + "': the Translate panel writes .png, .svg, .pdf, .json or .csv");
  }
  if (!result_ || result_->blank) throw ParamError("cannot export '" + path.toStdString() + "': nothing translated yet");
  const TranslateTab tab = currentTab();
  if (suffix == QLatin1String("json")) {
    write_bytes_atomically(path, QByteArray::fromStdString(translation_to_json(*result_).dump(1) + "\n"));
    return;
  }
  if (suffix == QLatin1String("csv") || tab != TranslateTab::Beam) {
    auto fig = std::make_shared<AlignmentFigureData>(mapData(tab));
    fig->overlay = {};  // the hover is not part of the figure
    if (fig->map.rows == 0) {
      throw ParamError("cannot export '" + path.toStdString() + "': " + result_->request.attention + " gives no attention weights here");
    }
    if (suffix == QLatin1String("csv")) {
      write_bytes_atomically(path, alignment_csv(*fig));
    } else {
      export_figure(alignment_painted_figure(fig, options.style), path, options);
    }
    return;
  }
  export_figure(beam_painted_figure(beam_figure_, options.style), path, options);
}

void TranslateView::exportDialog() {
  static const char* const names[] = {"alignment.png", "encoder-attention.png", "decoder-attention.png", "beam-tree.png"};
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Export translation"), QString::fromLatin1(names[static_cast<int>(currentTab())]),
      tr("PNG image (*.png);;SVG image (*.svg);;PDF document (*.pdf);;JSON, as attnlab-cli translate --json (*.json);;CSV "
         "matrix (*.csv)"));
  if (path.isEmpty()) return;
  try {
    exportCurrent(path);
    setStatus(tr("Saved %1").arg(QFileInfo(path).fileName()));
  } catch (const std::exception& e) {
    setStatus(first_line(QString::fromUtf8(e.what())));
  }
}

}  // namespace attnlab
