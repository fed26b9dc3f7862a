#include "curves_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDateTime>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPainter>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QScrollArea>
#include <QSpinBox>
#include <QStyle>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTimer>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <set>

#include "attention/registry.h"
#include "core/error.h"
#include "cuda/gpu_attention.h"
#include "figure_canvas.h"
#include "models/model_config.h"
#include "status_line.h"

namespace attnlab {
namespace {

constexpr std::int64_t kMaxLength = std::int64_t{1} << 24;
constexpr std::int64_t kMaxTokens = std::int64_t{1} << 20;
constexpr int kNameRole = Qt::UserRole + 1;
constexpr int kRedrawMs = 250;

// A spin box that steps through powers of two (typing any value is allowed).
class PowerOfTwoSpinBox final : public QSpinBox {
 public:
  using QSpinBox::QSpinBox;
  void stepBy(int steps) override {
    double v = value();
    for (int i = 0; i < std::abs(steps); ++i) v = steps > 0 ? std::pow(2.0, std::floor(std::log2(v)) + 1) : std::pow(2.0, std::ceil(std::log2(v)) - 1);
    setValue(static_cast<int>(std::clamp(v, static_cast<double>(minimum()), static_cast<double>(maximum()))));
  }
};


QListWidgetItem* checkable_item(QListWidget* list, const QString& name, const QString& tip, bool checked) {
  auto* item = new QListWidgetItem(name, list);
  item->setData(kNameRole, name);
  item->setToolTip(tip);
  item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable);
  item->setCheckState(checked ? Qt::Checked : Qt::Unchecked);
  return item;
}

void add_header(QListWidget* list, const QString& text) {
  auto* item = new QListWidgetItem(text, list);
  QFont bold = item->font();
  bold.setBold(true);
  item->setFont(bold);
  item->setFlags(Qt::ItemIsEnabled);  // not checkable, not selectable
}

std::vector<std::string> checked_names(const QListWidget* list) {
  std::vector<std::string> out;
  for (int i = 0; i < list->count(); ++i) {
    const QListWidgetItem* item = list->item(i);
    if ((item->flags() & Qt::ItemIsUserCheckable) && item->checkState() == Qt::Checked)
      out.push_back(item->data(kNameRole).toString().toStdString());
  }
  return out;
}

void check_names(QListWidget* list, const std::vector<std::string>& names) {
  for (int i = 0; i < list->count(); ++i) {
    QListWidgetItem* item = list->item(i);
    if (!(item->flags() & Qt::ItemIsUserCheckable)) continue;
    const std::string name = item->data(kNameRole).toString().toStdString();
    item->setCheckState(std::find(names.begin(), names.end(), name) != names.end() ? Qt::Checked : Qt::Unchecked);
  }
}

QSpinBox* spin(const char* name, int lo, int hi, int value, const QString& tip) {
  auto* box = new QSpinBox;
  box->setObjectName(QString::fromLatin1(name));
  box->setRange(lo, hi);
  box->setValue(value);
  box->setToolTip(tip);
  return box;
}

QDoubleSpinBox* seconds_box(const char* name, double value, const QString& tip) {
  auto* box = new QDoubleSpinBox;
  box->setObjectName(QString::fromLatin1(name));
  box->setRange(0.01, 3600);
  box->setDecimals(2);
  box->setSuffix(QStringLiteral(" s"));
  box->setValue(value);
  box->setToolTip(tip);
  return box;
}

QSpinBox* up_to_box(const char* name, std::int64_t hi, std::int64_t value, const QString& tip) {
  auto* box = new PowerOfTwoSpinBox;
  box->setObjectName(QString::fromLatin1(name));
  box->setRange(2, static_cast<int>(hi));
  box->setValue(static_cast<int>(value));
  box->setKeyboardTracking(false);
  box->setToolTip(tip);
  return box;
}

// A panel of controls: a checkable list (stretching) above a form.
QWidget* controls_column(QWidget* list, QFormLayout* form) {
  auto* column = new QWidget;
  auto* layout = new QVBoxLayout(column);
  layout->setContentsMargins(0, 0, 0, 0);
  if (list) layout->addWidget(list, 1);
  layout->addLayout(form);
  if (!list) layout->addStretch(1);
  column->setSizePolicy(QSizePolicy::Fixed, QSizePolicy::Expanding);
  column->setObjectName(QStringLiteral("curvesControls"));
  return column;
}

QWidget* tab_page(QWidget* controls, FigureCanvas* canvas) {
  auto* page = new QWidget;
  auto* layout = new QHBoxLayout(page);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(controls);
  layout->addWidget(canvas, 1);
  return page;
}

// The up-to box's powers of two from the smallest listed size (or `first`).
QString regenerated(const QString& current, std::int64_t first, std::int64_t up_to, std::int64_t lo, std::int64_t hi) {
  try {
    const std::vector<std::int64_t> sizes = parse_size_list(current, lo, hi, "sizes");
    first = *std::min_element(sizes.begin(), sizes.end());
  } catch (const Error&) {
    // keep `first`
  }
  std::vector<std::int64_t> powers = powers_of_two(std::min(first, up_to), up_to);
  if (powers.empty()) powers = {up_to};
  return size_list_text(powers);
}

}  // namespace

std::vector<std::int64_t> parse_size_list(const QString& text, std::int64_t lo, std::int64_t hi, const std::string& what) {
  std::vector<std::int64_t> out;
  std::set<std::int64_t> seen;
  static const QRegularExpression separators(QStringLiteral("[,;\\s]+"));
  static const QRegularExpression entry(QStringLiteral("^(\\d+)([kKmM]?)$"));
  for (const QString& part : text.split(separators, Qt::SkipEmptyParts)) {
    const QRegularExpressionMatch m = entry.match(part);
    bool ok = m.hasMatch();
    double v = ok ? m.captured(1).toDouble(&ok) : 0;
    if (ok) {
      const QString unit = m.captured(2).toLower();
      if (unit == QLatin1String("k")) v *= 1024;
      if (unit == QLatin1String("m")) v *= 1048576;
    }
    if (!ok) throw ParamError(what + ": '" + part.toStdString() + "' is not a whole number (e.g. 128, 4k)");
    if (v < static_cast<double>(lo) || v > static_cast<double>(hi)) {
      throw ParamError(what + ": " + part.toStdString() + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    const auto n = static_cast<std::int64_t>(v);
    if (!seen.insert(n).second) throw ParamError(what + ": " + std::to_string(n) + " is listed twice");
    out.push_back(n);
  }
  if (out.empty()) throw ParamError(what + ": give at least one value (e.g. 128, 256, 512)");
  return out;
}

QString size_list_text(const std::vector<std::int64_t>& sizes) {
  QStringList parts;
  for (const std::int64_t n : sizes) parts << QString::number(n);
  return parts.join(QStringLiteral(", "));
}

CurvesView::CurvesView(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("curvesView"));
  runner_ = new CurvesRunner(this);
  tabs_ = new QTabWidget;
  tabs_->setObjectName(QStringLiteral("curvesModes"));
  tabs_->setDocumentMode(true);
  for (FigureCanvas*& canvas : canvases_) canvas = new FigureCanvas;
  canvases_[0]->setObjectName(QStringLiteral("lengthCanvas"));
  canvases_[1]->setObjectName(QStringLiteral("decodingCanvas"));
  canvases_[2]->setObjectName(QStringLiteral("depthCanvas"));
  tabs_->addTab(buildLengthTab(), tr("Length scaling"));
  tabs_->addTab(buildDecodingTab(), tr("Decoding"));
  tabs_->addTab(buildDepthTab(), tr("Depth memory"));
  // One column width for the three tabs: switching tabs keeps the figure where it was.
  int column_width = fontMetrics().horizontalAdvance(QLatin1Char('M')) * 20;
  const QList<QWidget*> columns = tabs_->findChildren<QWidget*>(QStringLiteral("curvesControls"));
  for (const QWidget* column : columns) column_width = std::max(column_width, column->sizeHint().width());
  for (QWidget* column : columns) column->setFixedWidth(column_width);
  tabs_->setTabToolTip(0, tr("Time and peak memory of each variant against the sequence length"));
  tabs_->setTabToolTip(1, tr("Tokens per second generating N tokens: KV cache against the recurrent form"));
  tabs_->setTabToolTip(2, tr("Activation memory kept for backward against depth: standard and reversible stacks"));

  run_button_ = new QPushButton(tr("&Run"));
  run_button_->setObjectName(QStringLiteral("curvesRun"));
  run_button_->setToolTip(tr("Measure the current tab's curves (on a worker thread; the playground stays usable)"));
  cancel_button_ = new QPushButton(tr("Cancel"));
  cancel_button_->setObjectName(QStringLiteral("curvesCancel"));
  cancel_button_->setToolTip(tr("Stop after the point being measured; the points so far stay"));
  export_button_ = new QPushButton(tr("Export…"));
  export_button_->setObjectName(QStringLiteral("curvesExport"));
  export_button_->setToolTip(tr("Save the current tab's figure (PNG, SVG, PDF) or its numbers (JSON, CSV)"));
  progress_ = new QProgressBar;
  progress_->setObjectName(QStringLiteral("curvesProgress"));
  progress_->setRange(0, 1);
  progress_->setValue(0);
  progress_->setFormat(tr("%v / %m"));
  status_ = new StatusLine;
  status_->setObjectName(QStringLiteral("curvesStatus"));

  auto* buttons = new QHBoxLayout;
  buttons->addWidget(run_button_);
  buttons->addWidget(cancel_button_);
  buttons->addWidget(progress_, 1);
  buttons->addWidget(export_button_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(tabs_, 1);
  layout->addLayout(buttons);
  layout->addWidget(status_);

  connect(run_button_, &QPushButton::clicked, this, [this] { run(); });
  connect(cancel_button_, &QPushButton::clicked, this, &CurvesView::cancel);
  connect(export_button_, &QPushButton::clicked, this, &CurvesView::exportDialog);
  connect(tabs_, &QTabWidget::currentChanged, this, [this] {
    setRunning(runner_->isRunning());
    if (!applying_) emit settingsChanged();
  });
  redraw_timer_ = new QTimer(this);
  redraw_timer_->setSingleShot(true);
  connect(redraw_timer_, &QTimer::timeout, this, &CurvesView::redrawPending);
  connect(runner_, &CurvesRunner::rowsAdded, this, &CurvesView::onRows);
  connect(runner_, &CurvesRunner::progress, this, [this](int done, int total) {
    progress_->setRange(0, std::max(1, total));
    progress_->setValue(done);
  });
  connect(runner_, &CurvesRunner::finished, this, [this](CurvesMode mode) {
    setRunning(false);
    redrawPending();
    showFigure(mode);
    int not_run = 0, rows = 0;
    if (mode == CurvesMode::Length) {
      rows = static_cast<int>(runner_->lengthRows().size());
      for (const ComplexityRow& r : runner_->lengthRows()) not_run += r.status != "ok";
    } else if (mode == CurvesMode::Decoding) {
      rows = static_cast<int>(runner_->decodingRows().size());
      for (const DecodingRow& r : runner_->decodingRows()) not_run += r.status != "ok";
    } else {
      rows = static_cast<int>(runner_->depthPoints().size());
      progress_->setRange(0, std::max(1, rows));
      progress_->setValue(rows);
    }
    const double seconds = static_cast<double>(QDateTime::currentMSecsSinceEpoch() - run_started_ms_) / 1000.0;
    QString text = tr("Finished: %1 point%2 in %3 s").arg(rows).arg(rows == 1 ? "" : "s").arg(seconds, 0, 'f', 1);
    if (not_run > 0) text += tr("; %1 not run (✕: hover for the reason)").arg(not_run);
    setStatus(aboutMode(mode, text + QLatin1Char('.')));
  });
  connect(runner_, &CurvesRunner::cancelled, this, [this](CurvesMode mode) {
    setRunning(false);
    redrawPending();
    const int done = mode == CurvesMode::Length     ? static_cast<int>(runner_->lengthRows().size())
                     : mode == CurvesMode::Decoding ? static_cast<int>(runner_->decodingRows().size())
                                                    : static_cast<int>(runner_->depthPoints().size());
    setStatus(aboutMode(mode, tr("Cancelled after %1 of %2 points; the points so far stay.").arg(done).arg(runner_->expectedRows(mode))));
  });
  connect(runner_, &CurvesRunner::failed, this, [this](CurvesMode mode, const QString& message) {
    setRunning(false);
    setStatus(aboutMode(mode, first_line(message)));
    showFigure(mode);
  });

  setRunning(false);
  for (const CurvesMode m : {CurvesMode::Length, CurvesMode::Decoding, CurvesMode::Depth}) showFigure(m);
  setStatus(tr("Pick what to measure, then Run."));
}

CurvesView::~CurvesView() {
  // The runner (a child) joins its worker when destroyed; cancel first so that it stops at the
  // next check while the rest of the widget is torn down.
  runner_->cancel();
}

QWidget* CurvesView::buildLengthTab() {
  const LengthCurveSettings defaults;
  variants_ = new QListWidget;
  variants_->setObjectName(QStringLiteral("curvesVariants"));
  variants_->setToolTip(tr("Attention variants (their default parameters, the fast path without traces) and model "
                           "presets (the whole forward pass)"));
  add_header(variants_, tr("Attention variants"));
  for (const Attention* a : Registry::builtin().all()) {
    const QString name = QString::fromStdString(a->spec().name);
    checkable_item(variants_, name, QString::fromStdString(a->spec().title + " — " + a->spec().paper),
                   std::find(defaults.variants.begin(), defaults.variants.end(), a->spec().name) != defaults.variants.end());
  }
  add_header(variants_, tr("Model presets (whole forward pass)"));
  for (const ModelConfig& m : builtin_models()) {
    checkable_item(variants_, QStringLiteral("model:") + QString::fromStdString(m.name),
                   QString::fromStdString(m.description) + tr(" · heads and dim come from the model"), false);
  }
  // As wide as its longest entry with the scroll bar beside it: no horizontal scrolling.
  variants_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  variants_->setMinimumWidth(variants_->sizeHintForColumn(0) + 2 * variants_->frameWidth() +
                             variants_->style()->pixelMetric(QStyle::PM_ScrollBarExtent) + 8);
  lengths_ = new QLineEdit(size_list_text(defaults.lengths));
  lengths_->setObjectName(QStringLiteral("curvesLengths"));
  lengths_->setToolTip(tr("Sequence lengths L, separated by commas (k = ×1024)"));
  length_sizes_ = defaults.lengths;
  lengths_up_to_ = up_to_box("curvesLengthsUpTo", kMaxLength, defaults.lengths.back(),
                             tr("Regenerate the lengths as powers of two up to this one"));
  dim_ = spin("curvesDim", 1, 512, defaults.dim, tr("Head dimension d of the random q, k, v"));
  heads_ = spin("curvesHeads", 1, 64, defaults.heads, tr("Heads H of the random q, k, v"));
  causal_ = new QCheckBox(tr("causal"));
  causal_->setObjectName(QStringLiteral("curvesCausal"));
  device_ = new QComboBox;
  device_->setObjectName(QStringLiteral("curvesDevice"));
  device_->addItem(tr("CPU"), QStringLiteral("cpu"));
  device_->addItem(tr("CUDA"), QStringLiteral("cuda"));
  std::string why;
  if (gpu::gpu_available(&why)) {
    device_->setToolTip(tr("CPU, or the GPU: the kernels of softmax, bigbird, linear, reformer_lsh, and model presets whose layers all have a GPU path (time by CUDA events, GPU memory at the pass's peak)"));
  } else {
    const QString reason = tr("CUDA is not available: %1").arg(QString::fromStdString(why));
    if (auto* model = qobject_cast<QStandardItemModel*>(device_->model())) model->item(1)->setEnabled(false);
    device_->setItemData(1, reason, Qt::ToolTipRole);
    device_->setToolTip(reason);
  }
  repeats_ = spin("curvesRepeats", 1, 1000, defaults.repeats, tr("Timed calls per point after one warm-up; the median is drawn"));
  budget_ = seconds_box("curvesBudget", defaults.time_budget_ms / 1000,
                        tr("Once a call of a variant takes longer, its longer lengths are skipped (✕)"));
  seed_ = spin("curvesSeed", 0, static_cast<int>(kCurvesMaxSeed), static_cast<int>(defaults.seed), tr("Seed of q, k, v and of the variants' random draws"));

  auto* form = new QFormLayout;
  form->addRow(new QLabel(tr("Lengths L (k = ×1024)")));
  form->addRow(lengths_);
  form->addRow(tr("up to"), lengths_up_to_);
  form->addRow(tr("Head dim"), dim_);
  form->addRow(tr("Heads"), heads_);
  form->addRow(QString(), causal_);
  form->addRow(tr("Device"), device_);
  form->addRow(tr("Repeats"), repeats_);
  form->addRow(tr("Time budget"), budget_);
  form->addRow(tr("Seed"), seed_);

  const auto changed = [this] {
    if (!applying_) emit settingsChanged();
  };
  connect(variants_, &QListWidget::itemChanged, this, changed);
  connect(lengths_, &QLineEdit::textChanged, this, [this, changed] {
    try {
      length_sizes_ = parse_size_list(lengths_->text(), 2, kMaxLength, "lengths");
    } catch (const Error&) {
      // keep the last list that parsed
    }
    changed();
  });
  connect(lengths_up_to_, &QSpinBox::valueChanged, this, [this](int up_to) {
    if (applying_) return;
    lengths_->setText(regenerated(lengths_->text(), 128, up_to, 2, kMaxLength));
  });
  for (QSpinBox* box : {dim_, heads_, repeats_, seed_}) connect(box, &QSpinBox::valueChanged, this, changed);
  connect(budget_, &QDoubleSpinBox::valueChanged, this, changed);
  connect(causal_, &QCheckBox::toggled, this, changed);
  connect(device_, &QComboBox::currentIndexChanged, this, changed);
  return tab_page(controls_column(variants_, form), canvases_[0]);
}

QWidget* CurvesView::buildDecodingTab() {
  const DecodingCurveSettings defaults;
  methods_ = new QListWidget;
  methods_->setObjectName(QStringLiteral("curvesMethods"));
  const std::pair<const char*, QString> tips[] = {
      {"softmax_kv_cache", tr("Exact softmax attention over a KV cache: step t costs O(t·d)")},
      {"softmax_no_cache", tr("Exact softmax recomputing the causal prefix at every step: O(t²·d) per step")},
      {"linear_recurrent", tr("Linear attention as an RNN (φ = elu + 1): a fixed-size state, O(1) in t")},
      {"performer_recurrent", tr("Performer's positive random features as an RNN: a fixed-size state")}};
  for (const std::string& m : decoding_methods()) {
    QString tip;
    for (const auto& [name, text] : tips)
      if (m == name) tip = text;
    checkable_item(methods_, QString::fromStdString(m), tip,
                   std::find(defaults.methods.begin(), defaults.methods.end(), m) != defaults.methods.end());
  }
  methods_->setFixedHeight(methods_->sizeHintForRow(0) * methods_->count() + 2 * methods_->frameWidth() + 4);
  tokens_ = new QLineEdit(size_list_text(defaults.tokens));
  tokens_->setObjectName(QStringLiteral("curvesTokens"));
  tokens_->setToolTip(tr("Numbers N of tokens to generate, separated by commas (k = ×1024)"));
  token_sizes_ = defaults.tokens;
  tokens_up_to_ = up_to_box("curvesTokensUpTo", kMaxTokens, defaults.tokens.back(),
                            tr("Regenerate N as powers of two up to this one"));
  decoding_dim_ = spin("curvesDecodingDim", 1, 512, defaults.dim, tr("Head dimension d"));
  decoding_heads_ = spin("curvesDecodingHeads", 1, 64, defaults.heads, tr("Heads H"));
  decoding_repeats_ = spin("curvesDecodingRepeats", 1, 100, defaults.repeats, tr("Timed runs of all N steps after one warm-up"));
  decoding_budget_ = seconds_box("curvesDecodingBudget", defaults.time_budget_ms / 1000,
                                 tr("Once a run of N steps of a method takes longer, its larger N are skipped (✕)"));
  decoding_seed_ = spin("curvesDecodingSeed", 0, static_cast<int>(kCurvesMaxSeed), static_cast<int>(defaults.seed),
                        tr("Seed of the generated tokens' q, k, v"));
  auto* form = new QFormLayout;
  form->addRow(new QLabel(tr("Tokens generated N (k = ×1024)")));
  form->addRow(tokens_);
  form->addRow(tr("up to"), tokens_up_to_);
  form->addRow(tr("Head dim"), decoding_dim_);
  form->addRow(tr("Heads"), decoding_heads_);
  form->addRow(tr("Repeats"), decoding_repeats_);
  form->addRow(tr("Time budget"), decoding_budget_);
  form->addRow(tr("Seed"), decoding_seed_);

  const auto changed = [this] {
    if (!applying_) emit settingsChanged();
  };
  connect(methods_, &QListWidget::itemChanged, this, changed);
  connect(tokens_, &QLineEdit::textChanged, this, [this, changed] {
    try {
      token_sizes_ = parse_size_list(tokens_->text(), 1, kMaxTokens, "tokens");
    } catch (const Error&) {
      // keep the last list that parsed
    }
    changed();
  });
  connect(tokens_up_to_, &QSpinBox::valueChanged, this, [this](int up_to) {
    if (applying_) return;
    tokens_->setText(regenerated(tokens_->text(), 256, up_to, 1, kMaxTokens));
  });
  for (QSpinBox* box : {decoding_dim_, decoding_heads_, decoding_repeats_, decoding_seed_})
    connect(box, &QSpinBox::valueChanged, this, changed);
  connect(decoding_budget_, &QDoubleSpinBox::valueChanged, this, changed);
  auto* column = new QWidget;
  auto* layout = new QVBoxLayout(column);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(new QLabel(tr("Methods")));
  layout->addWidget(methods_);
  layout->addLayout(form);
  layout->addStretch(1);
  column->setSizePolicy(QSizePolicy::Fixed, QSizePolicy::Expanding);
  column->setObjectName(QStringLiteral("curvesControls"));
  return tab_page(column, canvases_[1]);
}

QWidget* CurvesView::buildDepthTab() {
  const DepthCurveSettings defaults;
  depth_variant_ = new QComboBox;
  depth_variant_->setObjectName(QStringLiteral("curvesDepthVariant"));
  for (const Attention* a : Registry::builtin().all()) {
    depth_variant_->addItem(QString::fromStdString(a->spec().name));
    depth_variant_->setItemData(depth_variant_->count() - 1, QString::fromStdString(a->spec().title), Qt::ToolTipRole);
  }
  depth_variant_->setCurrentText(QString::fromStdString(defaults.variant));
  depth_length_ = spin("curvesDepthLength", 1, 65536, defaults.length, tr("Tokens L through the stack"));
  depth_d_model_ = spin("curvesDepthModel", 2, 4096, defaults.d_model, tr("Model width d_model (divisible by heads)"));
  depth_heads_ = spin("curvesDepthHeads", 1, 64, defaults.heads, tr("Attention heads per layer"));
  depth_d_ff_ = spin("curvesDepthFf", 1, 16384, defaults.d_ff, tr("Feed-forward width d_ff"));
  depth_layers_ = spin("curvesDepthLayers", 1, 96, defaults.max_layers, tr("Stacks of 1 … this many layers are measured"));
  depth_seed_ = spin("curvesDepthSeed", 0, static_cast<int>(kCurvesMaxSeed), static_cast<int>(defaults.seed),
                     tr("Seed of the input and the layers' weights"));
  auto* form = new QFormLayout;
  form->addRow(tr("Attention"), depth_variant_);
  form->addRow(tr("Length"), depth_length_);
  form->addRow(tr("d_model"), depth_d_model_);
  form->addRow(tr("Heads"), depth_heads_);
  form->addRow(tr("d_ff"), depth_d_ff_);
  form->addRow(tr("Max layers"), depth_layers_);
  form->addRow(tr("Seed"), depth_seed_);
  auto* note = new QLabel(tr("Reversible layers (RevNet, used by Reformer) recompute activations from the outputs "
                             "during backward: memory stays flat in depth."));
  note->setWordWrap(true);
  form->addRow(note);
  const auto changed = [this] {
    if (!applying_) emit settingsChanged();
  };
  connect(depth_variant_, &QComboBox::currentIndexChanged, this, changed);
  for (QSpinBox* box : {depth_length_, depth_d_model_, depth_heads_, depth_d_ff_, depth_layers_, depth_seed_})
    connect(box, &QSpinBox::valueChanged, this, changed);
  return tab_page(controls_column(nullptr, form), canvases_[2]);
}

// ---- settings --------------------------------------------------------------------------------------------

CurvesMode CurvesView::mode() const { return static_cast<CurvesMode>(std::clamp(tabs_->currentIndex(), 0, 2)); }

void CurvesView::setMode(CurvesMode mode) { tabs_->setCurrentIndex(static_cast<int>(mode)); }

FigureCanvas* CurvesView::canvas(CurvesMode mode) const { return canvases_[static_cast<int>(mode)]; }

std::vector<std::string> CurvesView::checkedVariants() const { return checked_names(variants_); }
std::vector<std::string> CurvesView::checkedMethods() const { return checked_names(methods_); }
void CurvesView::setCheckedVariants(const std::vector<std::string>& names) { check_names(variants_, names); }
void CurvesView::setCheckedMethods(const std::vector<std::string>& names) { check_names(methods_, names); }

CurvesSettings CurvesView::settings() const {
  CurvesSettings s;
  s.mode = mode();
  s.length.variants = checkedVariants();
  s.length.lengths = length_sizes_;
  s.length.dim = dim_->value();
  s.length.heads = heads_->value();
  s.length.causal = causal_->isChecked();
  s.length.device = device_->currentData().toString().toStdString();
  s.length.repeats = repeats_->value();
  s.length.time_budget_ms = std::round(budget_->value() * 1000.0);
  s.length.seed = static_cast<std::uint64_t>(seed_->value());
  s.decoding.methods = checkedMethods();
  s.decoding.tokens = token_sizes_;
  s.decoding.dim = decoding_dim_->value();
  s.decoding.heads = decoding_heads_->value();
  s.decoding.repeats = decoding_repeats_->value();
  s.decoding.time_budget_ms = std::round(decoding_budget_->value() * 1000.0);
  s.decoding.seed = static_cast<std::uint64_t>(decoding_seed_->value());
  s.depth.variant = depth_variant_->currentText().toStdString();
  s.depth.length = depth_length_->value();
  s.depth.d_model = depth_d_model_->value();
  s.depth.heads = depth_heads_->value();
  s.depth.d_ff = depth_d_ff_->value();
  s.depth.max_layers = depth_layers_->value();
  s.depth.seed = static_cast<std::uint64_t>(depth_seed_->value());
  return s;
}

void CurvesView::setSettings(const CurvesSettings& s) {
  s.validate();  // before anything changes
  const bool was_applying = applying_;
  applying_ = true;
  setCheckedVariants(s.length.variants);
  lengths_->setText(size_list_text(s.length.lengths));
  length_sizes_ = s.length.lengths;
  lengths_up_to_->setValue(static_cast<int>(std::min<std::int64_t>(*std::max_element(s.length.lengths.begin(), s.length.lengths.end()),
                                                                   lengths_up_to_->maximum())));
  dim_->setValue(s.length.dim);
  heads_->setValue(s.length.heads);
  causal_->setChecked(s.length.causal);
  const bool cuda = s.length.device == "cuda" && gpu::gpu_available();
  device_->setCurrentIndex(cuda ? 1 : 0);
  repeats_->setValue(s.length.repeats);
  budget_->setValue(s.length.time_budget_ms / 1000.0);
  seed_->setValue(static_cast<int>(s.length.seed));
  setCheckedMethods(s.decoding.methods);
  tokens_->setText(size_list_text(s.decoding.tokens));
  token_sizes_ = s.decoding.tokens;
  tokens_up_to_->setValue(static_cast<int>(std::min<std::int64_t>(*std::max_element(s.decoding.tokens.begin(), s.decoding.tokens.end()),
                                                                  tokens_up_to_->maximum())));
  decoding_dim_->setValue(s.decoding.dim);
  decoding_heads_->setValue(s.decoding.heads);
  decoding_repeats_->setValue(s.decoding.repeats);
  decoding_budget_->setValue(s.decoding.time_budget_ms / 1000.0);
  decoding_seed_->setValue(static_cast<int>(s.decoding.seed));
  depth_variant_->setCurrentText(QString::fromStdString(s.depth.variant));
  depth_length_->setValue(s.depth.length);
  depth_d_model_->setValue(s.depth.d_model);
  depth_heads_->setValue(s.depth.heads);
  depth_d_ff_->setValue(s.depth.d_ff);
  depth_layers_->setValue(s.depth.max_layers);
  depth_seed_->setValue(static_cast<int>(s.depth.seed));
  setMode(s.mode);
  applying_ = was_applying;
  if (s.length.device == "cuda" && !cuda) setStatus(tr("CUDA is not available here; the length scaling runs on the CPU."));
}

// ---- requests ----------------------------------------------------------------------------------------------

ComplexityOptions CurvesView::lengthRequest() const {
  ComplexityOptions o;
  o.variants = checkedVariants();
  if (o.variants.empty()) throw ParamError("length scaling: check at least one variant or model preset");
  o.lengths = parse_size_list(lengths_->text(), 2, kMaxLength, "lengths");
  o.dim = dim_->value();
  o.heads = heads_->value();
  o.causal = causal_->isChecked();
  o.repeats = repeats_->value();
  o.time_budget_ms = budget_->value() * 1000.0;
  o.seed = static_cast<std::uint64_t>(seed_->value());
  o.device = DevicePreference::Cpu;
  if (device_->currentData().toString() == QLatin1String("cuda")) {
    std::string why;
    if (!gpu::gpu_available(&why)) throw ParamError("CUDA is not available: " + why);
    o.device = DevicePreference::Cuda;
  }
  return o;
}

DecodingOptions CurvesView::decodingRequest() const {
  DecodingOptions o;
  o.methods = checkedMethods();
  if (o.methods.empty()) throw ParamError("decoding: check at least one method");
  o.tokens = parse_size_list(tokens_->text(), 1, kMaxTokens, "tokens N");
  o.dim = decoding_dim_->value();
  o.heads = decoding_heads_->value();
  o.repeats = decoding_repeats_->value();
  o.time_budget_ms = decoding_budget_->value() * 1000.0;
  o.seed = static_cast<std::uint64_t>(decoding_seed_->value());
  return o;
}

DepthMemoryOptions CurvesView::depthRequest() const {
  DepthMemoryOptions o;
  o.variant = depth_variant_->currentText().toStdString();
  Registry::builtin().get(o.variant);
  o.length = depth_length_->value();
  o.d_model = depth_d_model_->value();
  o.heads = depth_heads_->value();
  if (o.d_model % o.heads != 0) {
    throw ParamError("depth memory: d_model " + std::to_string(o.d_model) + " must be divisible by heads " +
                     std::to_string(o.heads));
  }
  o.d_ff = depth_d_ff_->value();
  o.max_layers = depth_layers_->value();
  o.seed = static_cast<std::uint64_t>(depth_seed_->value());
  return o;
}

// ---- running -------------------------------------------------------------------------------------------------

bool CurvesView::run() {
  const CurvesMode m = mode();
  QString what;
  try {
    switch (m) {
      case CurvesMode::Length: {
        const ComplexityOptions o = lengthRequest();
        what = tr("%1 variant%2 × %3 length%4 on %5")
                   .arg(o.variants.size())
                   .arg(o.variants.size() == 1 ? "" : "s")
                   .arg(o.lengths.size())
                   .arg(o.lengths.size() == 1 ? "" : "s")
                   .arg(o.device == DevicePreference::Cuda ? QStringLiteral("CUDA") : QStringLiteral("the CPU"));
        runner_->startLength(o);
        break;
      }
      case CurvesMode::Decoding: {
        const DecodingOptions o = decodingRequest();
        what = tr("%1 method%2 × %3 N").arg(o.methods.size()).arg(o.methods.size() == 1 ? "" : "s").arg(o.tokens.size());
        runner_->startDecoding(o);
        break;
      }
      case CurvesMode::Depth: {
        const DepthMemoryOptions o = depthRequest();
        what = tr("%1 stacks of %2 attention").arg(o.max_layers).arg(QString::fromStdString(o.variant));
        runner_->startDepth(o);
        break;
      }
    }
  } catch (const Error& e) {
    setStatus(first_line(QString::fromUtf8(e.what())));
    return false;
  }
  run_started_ms_ = QDateTime::currentMSecsSinceEpoch();
  setRunning(true);
  progress_->setRange(0, std::max(1, runner_->expectedRows(m)));
  progress_->setValue(0);
  setStatus(tr("Running: %1…").arg(what));
  showFigure(m);
  return true;
}

void CurvesView::cancel() {
  if (runner_->isRunning()) runner_->cancel();
}

void CurvesView::setRunning(bool running) {
  run_button_->setEnabled(!running);
  run_button_->setToolTip(running ? tr("%1 is running: Cancel it first (one measurement at a time, so that runs do "
                                       "not time each other)")
                                        .arg(tabs_->tabText(static_cast<int>(runner_->runningMode())))
                                  : tr("Measure the current tab's curves (on a worker thread; the playground stays usable)"));
  cancel_button_->setEnabled(running);
  const CurvesMode m = mode();
  const bool has_rows = m == CurvesMode::Length     ? !runner_->lengthRows().empty()
                        : m == CurvesMode::Decoding ? !runner_->decodingRows().empty()
                                                    : !runner_->depthPoints().empty();
  export_button_->setEnabled(has_rows);
}

void CurvesView::redrawPending() {
  redraw_timer_->stop();
  for (const CurvesMode m : {CurvesMode::Length, CurvesMode::Decoding, CurvesMode::Depth}) {
    if (!pending_redraw_[static_cast<int>(m)]) continue;
    pending_redraw_[static_cast<int>(m)] = false;
    showFigure(m);
  }
}

QString CurvesView::aboutMode(CurvesMode m, const QString& text) const {
  if (m == mode()) return text;
  return tabs_->tabText(static_cast<int>(m)) + QStringLiteral(" · ") + text;
}

void CurvesView::setStatus(const QString& text) {
  status_->setText(text);
  status_->setToolTip(text);
  status_->update();
}

void CurvesView::onRows(CurvesMode m) {
  // Redraw at most every kRedrawMs while rows stream in: on a two-core machine a repaint per
  // row would take CPU from the measurement it shows.
  pending_redraw_[static_cast<int>(m)] = true;
  if (!redraw_timer_->isActive()) redraw_timer_->start(kRedrawMs);
  setRunning(runner_->isRunning());
  const int total = runner_->expectedRows(m);
  if (m == CurvesMode::Length && !runner_->lengthRows().empty()) {
    const ComplexityRow& r = runner_->lengthRows().back();
    const int done = static_cast<int>(runner_->lengthRows().size());
    setStatus(aboutMode(m, r.status == "ok" ? tr("Running… %1 of %2: %3 at L = %4 took %5 ms")
                                     .arg(done)
                                     .arg(total)
                                     .arg(QString::fromStdString(r.variant))
                                     .arg(r.length)
                                     .arg(r.median_ms, 0, 'g', 3)
                               : tr("Running… %1 of %2: %3 at L = %4 not run: %5")
                                     .arg(done)
                                     .arg(total)
                                     .arg(QString::fromStdString(r.variant))
                                     .arg(r.length)
                                     .arg(first_line(QString::fromStdString(r.status)))));
  } else if (m == CurvesMode::Decoding && !runner_->decodingRows().empty()) {
    const DecodingRow& r = runner_->decodingRows().back();
    const int done = static_cast<int>(runner_->decodingRows().size());
    setStatus(aboutMode(m, r.status == "ok" ? tr("Running… %1 of %2: %3 at N = %4: %5 tokens/s")
                                     .arg(done)
                                     .arg(total)
                                     .arg(QString::fromStdString(r.method))
                                     .arg(r.tokens)
                                     .arg(r.tokens_per_second, 0, 'g', 3)
                               : tr("Running… %1 of %2: %3 at N = %4 not run: %5")
                                     .arg(done)
                                     .arg(total)
                                     .arg(QString::fromStdString(r.method))
                                     .arg(r.tokens)
                                     .arg(first_line(QString::fromStdString(r.status)))));
  }
}

CurvesFigureData CurvesView::lengthFigure() const { return length_curves_data(runner_->lengthOptions(), runner_->lengthRows()); }
CurvesFigureData CurvesView::decodingFigure() const {
  return decoding_curves_data(runner_->decodingOptions(), runner_->decodingRows());
}
CurvesFigureData CurvesView::depthFigure() const { return depth_curves_data(runner_->depthOptions(), runner_->depthPoints()); }

void CurvesView::showFigure(CurvesMode m) {
  FigureCanvas* canvas = canvases_[static_cast<int>(m)];
  if (!runner_->hasRun(m)) {
    switch (m) {
      case CurvesMode::Length:
        canvas->clearFigure(tr("Check variants or model presets and set the lengths, then Run: median time and peak "
                               "memory against L on log-log axes, with fitted slopes and where each variant stops."));
        break;
      case CurvesMode::Decoding:
        canvas->clearFigure(tr("Pick methods and token counts N, then Run: tokens per second and the bytes of the "
                               "KV cache or recurrent state against N."));
        break;
      case CurvesMode::Depth:
        canvas->clearFigure(tr("Set the stack, then Run: the activations a standard and a reversible stack keep for "
                               "backward, from one layer to the maximum."));
        break;
    }
    return;
  }
  auto shown = std::make_shared<const CurvesFigureData>(m == CurvesMode::Length     ? lengthFigure()
                                                       : m == CurvesMode::Decoding ? decodingFigure()
                                                                                   : depthFigure());
  auto tips = std::make_shared<QStringList>();
  FigureCanvas::Figure figure;
  figure.size = curves_figure_size(*shown, canvas->figureStyle());
  figure.draw = [shown](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_curves_figure(painter, target, *shown, style);
  };
  figure.token_at = [shown, tips](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    const CurvesFigureLayout layout = compute_curves_layout(*shown, style, target, device);
    tips->clear();
    for (const CurvesMarker& marker : layout.markers) *tips << marker.tip;
    return layout.marker_at(pos);
  };
  figure.tooltip = [tips](int marker) { return tips->value(marker); };
  canvas->setFigure(std::move(figure));
}

// ---- export --------------------------------------------------------------------------------------------------

void CurvesView::exportCurrent(const QString& path, const ExportOptions& options) const {
  switch (mode()) {
    case CurvesMode::Length: export_length_curves(runner_->lengthOptions(), runner_->lengthRows(), path, options); return;
    case CurvesMode::Decoding:
      export_decoding_curves(runner_->decodingOptions(), runner_->decodingRows(), path, options);
      return;
    case CurvesMode::Depth: export_depth_curves(runner_->depthOptions(), runner_->depthPoints(), path, options); return;
  }
}

void CurvesView::exportDialog() {
  static const char* const names[] = {"length-curves.png", "decoding-curves.png", "depth-memory.png"};
  const QString path = QFileDialog::getSaveFileName(
      this, tr("Export curves"), QString::fromLatin1(names[static_cast<int>(mode())]),
      tr("PNG image (*.png);;SVG image (*.svg);;PDF document (*.pdf);;JSON (*.json);;CSV (*.csv)"));
  if (path.isEmpty()) return;
  try {
    exportCurrent(path);
    setStatus(tr("Saved %1").arg(QFileInfo(path).fileName()));
  } catch (const std::exception& e) {
    setStatus(first_line(QString::fromUtf8(e.what())));
  }
}

}  // namespace attnlab
