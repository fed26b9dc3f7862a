#include "compare_view.h"

#include <QFileDialog>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHideEvent>
#include <QRegularExpression>
#include <QSplitter>
#include <QTabWidget>
#include <QVBoxLayout>
#include <cmath>

#include "attention/registry.h"
#include "core/error.h"
#include "figure_canvas.h"
#include "figures/figure_kit.h"

namespace attnlab {
namespace {

constexpr int kMaxSweepValues = 7;

// The Int and Float parameters of `variant` (what a sweep can put on a log axis).
std::vector<ParamSpec> numeric_params(const std::string& variant) {
  std::vector<ParamSpec> out;
  const Attention* a = Registry::builtin().find(variant);
  if (!a) return out;
  for (const ParamSpec& p : a->spec().params)
    if (p.type == ParamType::Int || p.type == ParamType::Float) out.push_back(p);
  return out;
}

bool has_orthogonal_switch(const std::string& variant) {
  const Attention* a = Registry::builtin().find(variant);
  if (!a) return false;
  for (const ParamSpec& p : a->spec().params)
    if (p.key == "orthogonal" && p.type == ParamType::Bool) return true;
  return false;
}

QStringList split_values(const QString& text) {
  QStringList out;
  for (QString part : text.split(QRegularExpression(QStringLiteral("[,;\\s]+")), Qt::SkipEmptyParts)) out << part.trimmed();
  return out;
}

}  // namespace

QStringList default_sweep_values(const ParamSpec& spec) {
  QStringList out;
  if (spec.type == ParamType::Int) {
    const auto def = std::get<std::int64_t>(spec.default_value);
    const auto lo = static_cast<std::int64_t>(std::max(1.0, spec.min)), hi = static_cast<std::int64_t>(spec.max);
    std::int64_t first = 1, last = 32;
    if (def > 0) {
      first = std::max<std::int64_t>(1, def / 8);
      last = def * 4;
    }
    std::int64_t v = 1;
    while (v < first) v *= 2;
    for (; v <= last && out.size() < kMaxSweepValues; v *= 2)
      if (v >= lo && v <= hi) out << QString::number(v);
    if (out.isEmpty()) {
      // A narrow range: its integers, evenly thinned.
      const std::int64_t span = std::max<std::int64_t>(0, hi - lo);
      const std::int64_t step = std::max<std::int64_t>(1, (span + kMaxSweepValues - 1) / kMaxSweepValues);
      for (std::int64_t x = lo; x <= hi && out.size() < kMaxSweepValues; x += step) out << QString::number(x);
    }
  } else if (spec.type == ParamType::Float) {
    const double def = std::get<double>(spec.default_value);
    const double centre = def > 0 ? def : spec.max / 4;
    for (const double f : {0.25, 0.5, 1.0, 2.0, 4.0}) {
      const double v = centre * f;
      if (v > 0 && v >= spec.min && v <= spec.max) out << QString::number(v, 'g', 6);
    }
  }
  return out;
}

CompareView::CompareView(QWidget* parent) : TraceViewWidget(parent) {
  scale_box_ = new QComboBox;
  scale_box_->setObjectName(QStringLiteral("compareScale"));
  scale_box_->addItem(tr("shared"), QStringLiteral("shared"));
  scale_box_->addItem(tr("separate"), QStringLiteral("separate"));
  scale_box_->setToolTip(tr("One colour scale for the exact and the approximate weights, or each its own"));
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("compareCanvas"));

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Colour scale")));
  controls->addWidget(scale_box_);
  controls->addStretch(1);

  // ---- sweeps panel ----
  sweep_param_ = new QComboBox;
  sweep_param_->setObjectName(QStringLiteral("sweepParameter"));
  sweep_param_->setToolTip(tr("The parameter to sweep (the variant's numeric hyperparameters)"));
  sweep_values_ = new QLineEdit;
  sweep_values_->setObjectName(QStringLiteral("sweepValues"));
  sweep_values_->setToolTip(tr("Values of the parameter, separated by commas"));
  sweep_values_->setMinimumWidth(sweep_values_->fontMetrics().horizontalAdvance(QStringLiteral("M")) * 14);
  const auto spin = [](const char* name, int lo, int hi, int value, const QString& tip) {
    auto* box = new QSpinBox;
    box->setObjectName(QString::fromLatin1(name));
    box->setRange(lo, hi);
    box->setValue(value);
    box->setToolTip(tip);
    return box;
  };
  sweep_seeds_ = spin("sweepSeeds", 1, 64, 3, tr("Random inputs (and variant draws) averaged per value"));
  sweep_length_ = spin("sweepLength", 2, 8192, 256, tr("Sequence length L of the random q, k, v"));
  sweep_dim_ = spin("sweepDim", 1, 512, 64, tr("Head dimension d of the random q, k, v"));
  sweep_qk_std_ = new QDoubleSpinBox;
  sweep_qk_std_->setObjectName(QStringLiteral("sweepQkStd"));
  sweep_qk_std_->setRange(0.05, 10.0);
  sweep_qk_std_->setDecimals(2);
  sweep_qk_std_->setSingleStep(0.05);
  // 0.35: logits with standard deviation 0.12, where random-feature estimators show their
  // m^(-1/2) law; at 1 (d = 64) their error barely moves with m (see SweepOptions::qk_std).
  sweep_qk_std_->setValue(0.35);
  sweep_qk_std_->setToolTip(tr("Standard deviation of the random q and k entries; the logits q·k/√d have "
                               "standard deviation σ². Random-feature errors grow like exp(√d·σ²)"));
  sweep_causal_ = new QCheckBox(tr("causal"));
  sweep_causal_->setObjectName(QStringLiteral("sweepCausal"));
  sweep_iid_ = new QCheckBox(tr("orthogonal vs i.i.d."));
  sweep_iid_->setObjectName(QStringLiteral("sweepIid"));
  sweep_iid_->setToolTip(tr("Also run every value with orthogonal=false (i.i.d. features) as a second series"));
  run_button_ = new QPushButton(tr("Run"));
  run_button_->setObjectName(QStringLiteral("sweepRun"));
  cancel_button_ = new QPushButton(tr("Cancel"));
  cancel_button_->setObjectName(QStringLiteral("sweepCancel"));
  redraw_button_ = new QPushButton(tr("Redraw"));
  redraw_button_->setObjectName(QStringLiteral("sweepRedraw"));
  redraw_button_->setToolTip(tr("Run again with fresh random inputs and draws (the next sweep seed)"));
  export_button_ = new QPushButton(tr("Export…"));
  export_button_->setObjectName(QStringLiteral("sweepExport"));
  export_button_->setToolTip(tr("Save the sweep chart (PNG, SVG, PDF) or its numbers (JSON, CSV)"));
  progress_ = new QProgressBar;
  progress_->setObjectName(QStringLiteral("sweepProgress"));
  progress_->setRange(0, 1);
  progress_->setValue(0);
  sweep_status_ = new QLabel;
  sweep_status_->setObjectName(QStringLiteral("sweepStatus"));
  sweep_status_->setWordWrap(true);
  chart_canvas_ = new FigureCanvas(this);
  chart_canvas_->setObjectName(QStringLiteral("sweepChart"));
  runner_ = new SweepRunner(this);

  auto* row1 = new QHBoxLayout;
  row1->addWidget(new QLabel(tr("Parameter")));
  row1->addWidget(sweep_param_);
  row1->addWidget(new QLabel(tr("values")));
  row1->addWidget(sweep_values_, 1);
  row1->addWidget(new QLabel(tr("seeds")));
  row1->addWidget(sweep_seeds_);
  row1->addWidget(new QLabel(tr("L")));
  row1->addWidget(sweep_length_);
  row1->addWidget(new QLabel(tr("d")));
  row1->addWidget(sweep_dim_);
  row1->addWidget(new QLabel(tr("q,k σ")));
  row1->addWidget(sweep_qk_std_);
  row1->addWidget(sweep_causal_);
  row1->addWidget(sweep_iid_);
  auto* row2 = new QHBoxLayout;
  row2->addWidget(run_button_);
  row2->addWidget(cancel_button_);
  row2->addWidget(redraw_button_);
  row2->addWidget(progress_, 1);
  row2->addWidget(export_button_);
  auto* sweeps = new QGroupBox(tr("Sweeps: error against exact softmax on random inputs"));
  sweeps->setObjectName(QStringLiteral("sweeps"));
  auto* sweep_layout = new QVBoxLayout(sweeps);
  sweep_layout->addLayout(row1);
  sweep_layout->addLayout(row2);
  sweep_layout->addWidget(sweep_status_);
  sweep_layout->addWidget(chart_canvas_, 1);

  auto* splitter = new QSplitter(Qt::Vertical);
  splitter->addWidget(canvas_);
  splitter->addWidget(sweeps);
  splitter->setStretchFactor(0, 2);
  splitter->setStretchFactor(1, 1);
  // 2 : 1 from the start (the canvases' size hints are their whole figures); the user can drag
  // the handle or collapse the sweeps.
  splitter->setSizes({2000, 1000});
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(splitter, 1);

  connect(scale_box_, &QComboBox::currentIndexChanged, this, [this] {
    if (data_) {
      auto copy = std::make_shared<CompareFigureData>(*data_);
      apply_compare_scale(*copy, scale());
      data_ = std::move(copy);
    }
    showFigure();
    emit viewOptionsChanged();
  });
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });
  connect(sweep_param_, &QComboBox::currentIndexChanged, this, [this] {
    for (const ParamSpec& p : numeric_params(sweep_variant_))
      if (QString::fromStdString(p.key) == sweep_param_->currentData().toString()) {
        sweep_values_->setText(default_sweep_values(p).join(QStringLiteral(", ")));
        sweep_values_->setToolTip(tr("Values of %1 (%2), separated by commas")
                                      .arg(QString::fromStdString(p.label), QString::fromStdString(p.describe_range())));
      }
  });
  connect(run_button_, &QPushButton::clicked, this, [this] { runSweep(); });
  connect(cancel_button_, &QPushButton::clicked, this, &CompareView::cancelSweep);
  connect(redraw_button_, &QPushButton::clicked, this, [this] { redrawSweep(); });
  connect(export_button_, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getSaveFileName(
        this, tr("Export sweep"), QStringLiteral("sweep.png"),
        tr("PNG image (*.png);;SVG image (*.svg);;PDF document (*.pdf);;JSON (*.json);;CSV (*.csv)"));
    if (path.isEmpty()) return;
    try {
      exportSweep(path);
      sweep_status_->setText(tr("Saved %1").arg(path));
    } catch (const std::exception& e) {
      sweep_status_->setText(QString::fromUtf8(e.what()));
    }
  });
  connect(runner_, &SweepRunner::rowAdded, this, [this] { showSweep(); });
  connect(runner_, &SweepRunner::progress, this, [this](int done, int total) {
    progress_->setRange(0, total);
    progress_->setValue(done);
  });
  connect(runner_, &SweepRunner::finished, this, [this] {
    setSweepRunning(false);
    sweep_status_->setText(tr("Sweep done (sweep seed %1).").arg(sweep_seed_));
    showSweep();
  });
  connect(runner_, &SweepRunner::cancelled, this, [this] {
    setSweepRunning(false);
    sweep_status_->setText(tr("Sweep cancelled."));
  });
  connect(runner_, &SweepRunner::failed, this, [this](const QString& message) {
    setSweepRunning(false);
    sweep_status_->setText(message);
  });
  setSweepRunning(false);
  chart_canvas_->clearFigure(tr("Pick a parameter and its values, then Run: the error against exact softmax on random "
                                "inputs, averaged over seeds, on log-log axes."));
  showFigure();
}

CompareView::~CompareView() {
  // The runner (a child) cancels and joins its worker when it is destroyed; cancel first so the
  // worker stops at its next seed while the rest of the widget is torn down.
  runner_->cancel();
}

void CompareView::setContext(const ViewContext& context) {
  const bool same_data = data_ && context_.result == context.result && context_.layer == context.layer &&
                         context_.head == context.head && context_.colormap == context.colormap;
  context_ = context;
  if (!same_data) rebuildData();
  const std::string variant = context_.result ? context_.result->variant : std::string();
  if (variant != sweep_variant_) {
    // Another variant: its sweep no longer belongs on screen.
    cancelSweep();
    sweep_variant_ = variant;
    fillSweepParameters();
  }
  showFigure();
}

void CompareView::rebuildData() {
  data_.reset();
  if (!context_.result || !result_has_comparison(*context_.result)) return;
  try {
    data_ = compare_figure_data(context_, CompareFigureOptions{scale()});
  } catch (const Error&) {
    data_.reset();  // showFigure says why
  }
}

void CompareView::showFigure() {
  if (!data_) {
    QString why = tr("Run a variant other than softmax to compare it with exact attention.");
    if (context_.result && result_has_comparison(*context_.result)) {
      why = tr("Layer %1 was not compared with exact softmax.").arg(context_.layer);
    } else if (context_.result) {
      why = tr("This view needs a variant other than softmax.");
    }
    canvas_->clearFigure(why);
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = compare_figure_size(*data_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    if (data_) draw_compare_figure(painter, target, *data_, style, context_.highlighted_token);
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return data_ ? compute_compare_layout(*data_, style, target, device).token_at(pos) : -1;
  };
  figure.tooltip = [this](int token) {
    if (!data_ || token < 0 || token >= data_->length) return QString();
    const auto i = static_cast<std::size_t>(token);
    return tr("query #%1 “%2”: top-%3 overlap %4, KL(A*‖A) %5")
        .arg(token)
        .arg(data_->tokens.value(token))
        .arg(data_->topk)
        .arg(data_->row_overlap[i], 0, 'g', 3)
        .arg(data_->row_kl[i], 0, 'g', 3);
  };
  canvas_->setFigure(std::move(figure));
}

void CompareView::setHighlightedToken(int token) {
  if (context_.highlighted_token == token) return;
  context_.highlighted_token = token;
  canvas_->refresh();
}

CompareScale CompareView::scale() const {
  return scale_box_->currentData().toString() == QLatin1String("separate") ? CompareScale::Separate : CompareScale::Shared;
}

void CompareView::setScale(CompareScale scale) { scale_box_->setCurrentIndex(scale == CompareScale::Separate ? 1 : 0); }

nlohmann::json CompareView::viewOptions() const {
  return {{"scale", scale() == CompareScale::Separate ? "separate" : "shared"}};
}

void CompareView::setViewOptions(const nlohmann::json& options) { setScale(compare_options_from_json(options).scale); }

FigureStyle CompareView::figureStyle() const { return canvas_->figureStyle(); }

CompareFigureLayout CompareView::figureLayout() const {
  if (!data_) return {};
  return compute_compare_layout(*data_, figureStyle(), canvas_->figureRect(), canvas_->surface());
}

// ---- sweeps -------------------------------------------------------------------------------------

void CompareView::fillSweepParameters() {
  const QSignalBlocker block(sweep_param_);
  sweep_param_->clear();
  const std::vector<ParamSpec> params = numeric_params(sweep_variant_);
  int preferred = -1;
  for (const ParamSpec& p : params) {
    sweep_param_->addItem(QString::fromStdString(p.key), QString::fromStdString(p.key));
    sweep_param_->setItemData(sweep_param_->count() - 1,
                              QString::fromStdString(p.label + " — " + p.describe_range() + ". " + p.help), Qt::ToolTipRole);
    // Feature counts are what the lab is about: preselect them.
    if (preferred < 0 && p.key.find("features") != std::string::npos) preferred = sweep_param_->count() - 1;
  }
  preferred = std::max(preferred, 0);
  sweep_param_->setCurrentIndex(params.empty() ? -1 : preferred);
  sweep_values_->setText(params.empty() ? QString()
                                        : default_sweep_values(params[static_cast<std::size_t>(preferred)]).join(QStringLiteral(", ")));
  sweep_iid_->setVisible(has_orthogonal_switch(sweep_variant_));
  if (context_.result) sweep_causal_->setChecked(context_.result->causal);
  const bool usable = !params.empty();
  sweep_param_->setEnabled(usable);
  sweep_values_->setEnabled(usable);
  run_button_->setEnabled(usable && !runner_->isRunning());
  redraw_button_->setEnabled(usable && !runner_->isRunning());
  sweep_status_->setText(usable || sweep_variant_.empty()
                             ? QString()
                             : tr("%1 has no numeric parameter to sweep.").arg(QString::fromStdString(sweep_variant_)));
  chart_canvas_->clearFigure(tr("Pick a parameter and its values, then Run: the error against exact softmax on random "
                                "inputs, averaged over seeds, on log-log axes."));
}

std::vector<SweepSeries> CompareView::sweepRequest() const {
  if (sweep_variant_.empty() || !context_.result) throw ParamError("sweep: run a variant other than softmax first");
  const QString key = sweep_param_->currentData().toString();
  if (key.isEmpty()) throw ParamError("sweep: " + sweep_variant_ + " has no numeric parameter to sweep");
  SweepOptions o;
  o.variant = sweep_variant_;
  nlohmann::json base = context_.result->params.to_json();
  base.erase(key.toStdString());
  o.base_params = base;
  o.key = key.toStdString();
  const QStringList values = split_values(sweep_values_->text());
  if (values.isEmpty()) throw ParamError("sweep of '" + o.key + "' needs at least one value");
  // Every value parsed before any work, so a typo is reported at once (on this thread: cheap).
  Params probe(Registry::builtin().get(o.variant).spec().params);
  probe.set_from_json(base);
  for (const QString& v : values) {
    probe.set_from_assignment(o.key + "=" + v.toStdString());
    o.values.push_back(v.toStdString());
  }
  o.seeds = sweep_seeds_->value();
  o.length = sweep_length_->value();
  o.dim = sweep_dim_->value();
  o.qk_std = sweep_qk_std_->value();
  o.heads = 1;
  o.causal = sweep_causal_->isChecked();
  const LayerComparison* cmp = layer_comparison(context_);
  o.topk = cmp ? cmp->all_heads.topk : 8;
  o.seed = sweep_seed_;
  std::vector<SweepSeries> series;
  if (!sweep_iid_->isHidden() && sweep_iid_->isChecked() && o.key != "orthogonal") {
    SweepOptions orthogonal = o, iid = o;
    orthogonal.base_params["orthogonal"] = true;
    iid.base_params["orthogonal"] = false;
    series.push_back(SweepSeries{QStringLiteral("orthogonal"), orthogonal, {}});
    series.push_back(SweepSeries{QStringLiteral("i.i.d."), iid, {}});
  } else {
    series.push_back(SweepSeries{QString(), o, {}});
  }
  return series;
}

bool CompareView::runSweep() {
  try {
    runner_->start(sweepRequest());
  } catch (const Error& e) {
    sweep_status_->setText(QString::fromUtf8(e.what()));
    return false;
  }
  setSweepRunning(true);
  progress_->setRange(0, 1);
  progress_->setValue(0);
  sweep_status_->setText(tr("Sweeping %1 of %2 (sweep seed %3)…")
                             .arg(sweep_param_->currentText(), QString::fromStdString(sweep_variant_))
                             .arg(sweep_seed_));
  showSweep();
  return true;
}

bool CompareView::redrawSweep() {
  ++sweep_seed_;
  return runSweep();
}

void CompareView::cancelSweep() {
  if (runner_->isRunning()) runner_->cancel();
}

void CompareView::setSweepRunning(bool running) {
  const bool usable = sweep_param_->count() > 0;
  run_button_->setEnabled(usable && !running);
  redraw_button_->setEnabled(usable && !running);
  cancel_button_->setEnabled(running);
  export_button_->setEnabled(!runner_->series().empty());
}

void CompareView::showSweep() {
  const std::vector<SweepSeries>& series = runner_->series();
  export_button_->setEnabled(!series.empty());
  if (series.empty()) return;
  FigureCanvas::Figure figure;
  const LineChart chart = sweep_line_chart(series);
  figure.size = line_chart_size(chart, chart_canvas_->figureStyle());
  figure.draw = [chart](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_line_chart(painter, target, chart, style);
  };
  chart_canvas_->setFigure(std::move(figure));
}

void CompareView::exportSweep(const QString& path) const {
  if (runner_->series().empty()) throw ParamError("nothing to export: run a sweep first");
  ExportOptions options;
  export_sweep(runner_->series(), path, options);
}

void CompareView::hideEvent(QHideEvent* event) {
  TraceViewWidget::hideEvent(event);
  // The window hides this tab when its result no longer fits (softmax) and everything when it
  // closes: a sweep for a result no longer shown stops. Switching to another tab keeps it.
  QWidget* w = parentWidget();
  while (w && !qobject_cast<QTabWidget*>(w)) w = w->parentWidget();
  const auto* tabs = qobject_cast<QTabWidget*>(w);
  const bool still_offered = tabs && tabs->isTabVisible(tabs->indexOf(this)) && !window()->isHidden();
  if (!still_offered && !event->spontaneous()) cancelSweep();
}

ViewSpec compare_view_spec() {
  ViewSpec v;
  v.name = "compare";
  v.title = QStringLiteral("Approximation lab");
  v.requirement = QStringLiteral("needs a variant other than softmax");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json"), QStringLiteral("npy")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_comparison(r); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    return compare_painted_figure(compare_figure_data(c, compare_options_from_json(c.options)), style, c.highlighted_token);
  };
  v.export_data = [](const ViewContext& c, const QString& path) { export_compare_data(c, path); };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new CompareView(parent); };
  v.options = {ParamSpec::choice("scale", "Colour scale", "shared", {"shared", "separate"},
                                 "shared: the exact and the approximate weights on one colour scale (differences in "
                                 "magnitude show); separate: each matrix on its own range (patterns show)")};
  return v;
}

}  // namespace attnlab
