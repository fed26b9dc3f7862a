#include "lsh_view.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QTimer>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"
#include "figure_canvas.h"
#include "figures/figure_kit.h"
#include "result_views.h"

namespace attnlab {

namespace {

constexpr int kPlayIntervalMs = 1800;  // one step of the step-through every 1.8 s while playing

std::vector<ParamSpec> lsh_option_specs() {
  return {ParamSpec::integer("round", "Hash round", 0, 0, variant_param_max("reformer_lsh", "n_hashes") - 1,
                             "Hash round shown in panels ①–④, counting from 0; a round not below the result's n_hashes "
                             "is refused, naming the range"),
          ParamSpec::integer("k", "Recall k", kLshDefaultRecallK, 1, ReformerLshExtras::kMaxRecallK,
                             "k of the recall@k marked in panel ⑦; clamped to K = min(tokens, 64), the largest k the "
                             "trace holds"),
          ParamSpec::choice("stage", "Stage", lsh_stage_name(LshStage::Overview), lsh_stage_names(),
                            "Step of the algorithm the figure stresses: overview shows every panel, the others dim "
                            "the panels that step does not touch")};
}

// The figure options `options` ask for; throws ParamError for a round the result lacks.
LshFigureOptions figure_options(const LshFigureModel& model, const nlohmann::json& options) {
  const Params o = view_options(view_spec("buckets"), options);
  LshFigureOptions out;
  out.round = static_cast<int>(o.get_int("round"));
  if (out.round >= model.rounds()) {
    throw ParamError("view 'buckets' option round=" + std::to_string(out.round) + " is out of range: this result has hash rounds 0.." +
                     std::to_string(model.rounds() - 1) + " (n_hashes = " + std::to_string(model.rounds()) + ")");
  }
  out.k = static_cast<int>(o.get_int("k"));  // the figure clamps it to [1, K]
  out.stage = lsh_stage_from_name(o.get_choice("stage"));
  return out;
}

}  // namespace

LshViewWidget::LshViewWidget(QWidget* parent) : TraceViewWidget(parent) {
  canvas_ = new FigureCanvas(this);
  canvas_->setObjectName(QStringLiteral("lshCanvas"));
  options_.compact_header = true;  // the step and the causal note are in the labels above
  connect(canvas_, &FigureCanvas::tokenHovered, this, [this](int token) {
    setHighlightedToken(token);
    emit tokenHovered(token);
  });

  round_box_ = new QSpinBox;
  round_box_->setObjectName(QStringLiteral("lshRound"));
  round_box_->setToolTip(tr("Hash round shown in panels ①–④ (rounds count from 0)"));
  k_slider_ = new QSlider(Qt::Horizontal);
  k_slider_->setObjectName(QStringLiteral("lshRecallK"));
  k_slider_->setToolTip(tr("k of recall@k: the share of each query's k highest-scoring keys that LSH lets it see"));
  k_slider_->setMinimumWidth(120);
  k_label_ = new QLabel;
  k_label_->setObjectName(QStringLiteral("lshRecallLabel"));
  k_label_->setMinimumWidth(k_label_->fontMetrics().horizontalAdvance(QStringLiteral("recall@64: mean 0.000")));
  step_button_ = new QPushButton(tr("Step through"));
  step_button_->setObjectName(QStringLiteral("lshStep"));
  step_button_->setCheckable(true);
  step_button_->setToolTip(tr("Walk the algorithm: rotate → hash → sort → chunk → attend → un-sort"));
  back_button_ = new QPushButton(tr("◀ Back"));
  back_button_->setObjectName(QStringLiteral("lshBack"));
  next_button_ = new QPushButton(tr("Next ▶"));
  next_button_->setObjectName(QStringLiteral("lshNext"));
  play_button_ = new QPushButton(tr("Play"));
  play_button_->setObjectName(QStringLiteral("lshPlay"));
  play_button_->setCheckable(true);
  play_button_->setToolTip(tr("Advance one step every %1 s").arg(kPlayIntervalMs / 1000.0));
  stage_label_ = new QLabel;
  stage_label_->setObjectName(QStringLiteral("lshStage"));
  stage_label_->setWordWrap(true);
  stage_label_->setTextFormat(Qt::RichText);
  play_timer_ = new QTimer(this);
  play_timer_->setInterval(kPlayIntervalMs);

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Round")));
  controls->addWidget(round_box_);
  controls->addSpacing(12);
  controls->addWidget(new QLabel(tr("k")));
  controls->addWidget(k_slider_);
  controls->addWidget(k_label_);
  controls->addSpacing(12);
  controls->addWidget(step_button_);
  controls->addWidget(back_button_);
  controls->addWidget(next_button_);
  controls->addWidget(play_button_);
  controls->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(stage_label_);
  layout->addWidget(canvas_, 1);

  connect(round_box_, &QSpinBox::valueChanged, this, [this](int round) {
    if (!updating_) setRound(round);
  });
  connect(k_slider_, &QSlider::valueChanged, this, [this](int k) {
    if (!updating_) setRecallK(k);
  });
  connect(step_button_, &QPushButton::toggled, this, [this](bool on) {
    if (!updating_) setStepping(on);
  });
  connect(back_button_, &QPushButton::clicked, this, &LshViewWidget::previousStage);
  connect(next_button_, &QPushButton::clicked, this, &LshViewWidget::nextStage);
  connect(play_button_, &QPushButton::toggled, this, [this](bool on) {
    if (updating_) return;
    if (on) {
      if (options_.stage == LshStage::Overview || options_.stage == LshStage::Unsort) setStage(LshStage::Rotate);
      play_timer_->start();
    } else {
      play_timer_->stop();
    }
    refreshControls();
  });
  connect(play_timer_, &QTimer::timeout, this, [this] {
    nextStage();
    if (options_.stage == LshStage::Unsort) {  // the last step: stop, so nothing repaints while idle
      play_timer_->stop();
      refreshControls();
    }
  });
  refreshControls();
  showFigure();
}

LshViewWidget::~LshViewWidget() = default;

bool LshViewWidget::playing() const { return play_timer_->isActive(); }
QString LshViewWidget::message() const { return message_; }

void LshViewWidget::setContext(const ViewContext& context) {
  context_ = context;
  options_.highlight = context.highlighted_token;
  try {
    model_ = std::make_shared<const LshFigureModel>(context.result, context.layer, context.head, context.colormap);
    message_.clear();
  } catch (const Error& e) {
    model_.reset();
    message_ = QString::fromStdString(e.what());
  }
  refreshControls();
  showFigure();
}

void LshViewWidget::showFigure() {
  if (!model_) {
    canvas_->clearFigure(message_.isEmpty() ? tr("No result") : message_);
    return;
  }
  FigureCanvas::Figure figure;
  figure.size = lsh_figure_size(*model_, canvas_->figureStyle());
  figure.draw = [this](QPainter& painter, const QRectF& target, const FigureStyle& style) {
    draw_lsh_figure(painter, target, *model_, options(), style);
  };
  figure.token_at = [this](const QRectF& target, const FigureStyle& style, const QPaintDevice* device, QPointF pos) {
    return lsh_token_at(*model_, options(), style, target, device, pos);
  };
  figure.tooltip = [this](int token) { return model_->labels().value(token) + QStringLiteral(" (token %1)").arg(token); };
  canvas_->setFigure(std::move(figure));
}

LshFigureOptions LshViewWidget::options() const {
  LshFigureOptions shown = options_;
  if (model_) {
    shown.round = std::clamp(shown.round, 0, model_->rounds() - 1);
    shown.k = std::clamp(shown.k, 1, model_->recall_k());
  }
  return shown;
}

nlohmann::json LshViewWidget::viewOptions() const {
  const LshFigureOptions shown = options();
  return {{"round", shown.round}, {"k", shown.k}, {"stage", lsh_stage_name(shown.stage)}};
}

void LshViewWidget::setViewOptions(const nlohmann::json& options) {
  const Params o = view_options(view_spec("buckets"), options);  // throws before anything changes
  options_.round = static_cast<int>(o.get_int("round"));
  options_.k = static_cast<int>(o.get_int("k"));
  options_.stage = lsh_stage_from_name(o.get_choice("stage"));
  optionsChanged();
}

void LshViewWidget::optionsChanged() {
  refreshControls();
  canvas_->refresh();
  emit viewOptionsChanged();
}

void LshViewWidget::setHighlightedToken(int token) {
  if (options_.highlight == token) return;
  options_.highlight = token;
  canvas_->refresh();
}

void LshViewWidget::setRound(int round) {
  if (model_) round = std::clamp(round, 0, model_->rounds() - 1);
  options_.round = std::max(0, round);
  optionsChanged();
}

void LshViewWidget::setRecallK(int k) {
  if (model_) k = std::clamp(k, 1, model_->recall_k());
  options_.k = std::max(1, k);
  optionsChanged();
}

void LshViewWidget::setStage(LshStage stage) {
  options_.stage = stage;
  optionsChanged();
}

void LshViewWidget::setStepping(bool on) {
  if (!on) play_timer_->stop();
  setStage(on ? LshStage::Rotate : LshStage::Overview);
}

void LshViewWidget::nextStage() {
  const int index = static_cast<int>(options_.stage);
  if (options_.stage == LshStage::Overview) setStage(LshStage::Rotate);
  else if (options_.stage != LshStage::Unsort) setStage(static_cast<LshStage>(index + 1));
}

void LshViewWidget::previousStage() {
  const int index = static_cast<int>(options_.stage);
  if (index > static_cast<int>(LshStage::Rotate)) setStage(static_cast<LshStage>(index - 1));
}

QString LshViewWidget::stageText() const {
  if (!model_) return QString();
  QString text = QStringLiteral("<b>%1</b> — %2").arg(lsh_stage_title(options_.stage).toHtmlEscaped(),
                                                       lsh_stage_explanation(options_.stage).toHtmlEscaped());
  if (model_->extras().causal) {
    text += QStringLiteral("<br><i>Causal: a later token can change the sort order and move chunk boundaries, so "
                           "earlier outputs may change although no query attends to a later key.</i>");
  }
  return text;
}

QString LshViewWidget::recallText() const {
  if (!model_) return QString();
  const int k = options().k;
  return QStringLiteral("recall@%1: mean %2").arg(k).arg(model_->mean_recall(k), 0, 'f', 3);
}

void LshViewWidget::refreshControls() {
  updating_ = true;
  const bool ready = model_ != nullptr;
  const bool stepping = options_.stage != LshStage::Overview;
  const LshFigureOptions shown = options();
  round_box_->setEnabled(ready);
  k_slider_->setEnabled(ready);
  step_button_->setEnabled(ready);
  if (ready) {
    round_box_->setRange(0, model_->rounds() - 1);
    round_box_->setValue(shown.round);
    k_slider_->setRange(1, model_->recall_k());
    k_slider_->setValue(shown.k);
  }
  step_button_->setChecked(stepping);
  back_button_->setEnabled(ready && stepping && options_.stage != LshStage::Rotate);
  next_button_->setEnabled(ready && options_.stage != LshStage::Unsort);
  play_button_->setEnabled(ready);
  play_button_->setChecked(play_timer_->isActive());
  k_label_->setText(recallText());
  stage_label_->setText(stageText());
  stage_label_->setVisible(ready);
  updating_ = false;
}

// ---- data export -----------------------------------------------------------------------------

namespace {

LshFigureModel model_for(const ViewContext& c) { return LshFigureModel(c.result, c.layer, c.head, c.colormap); }

}  // namespace

QByteArray lsh_view_csv(const ViewContext& context) {
  const LshFigureModel model = model_for(context);
  const ReformerLshExtras& x = model.extras();
  const int L = model.length(), R = model.rounds(), K = model.recall_k();
  const bool keys = !x.shared_qk;
  QByteArray out = "token,position";
  const auto per_round = [&](const char* name) {
    for (int r = 0; r < R; ++r) out += QByteArray(",") + name + "_r" + QByteArray::number(r);
  };
  per_round("bucket");
  per_round("sorted_position");
  per_round("chunk");
  if (keys) {
    per_round("key_bucket");
    per_round("key_sorted_position");
  }
  for (int k = 1; k <= K; ++k) out += ",recall@" + QByteArray::number(k);
  out += "\r\n";
  for (int i = 0; i < L; ++i) {
    out += csv_field(model.labels().value(i)) + ',' + QByteArray::number(i);
    for (int r = 0; r < R; ++r) out += ',' + QByteArray::number(model.query_bucket(r, i));
    for (int r = 0; r < R; ++r) out += ',' + QByteArray::number(model.sorted_position(r, i));
    for (int r = 0; r < R; ++r) out += ',' + QByteArray::number(model.query_chunk(r, i));
    if (keys) {
      for (int r = 0; r < R; ++r) out += ',' + QByteArray::number(model.key_bucket(r, i));
      for (int r = 0; r < R; ++r) out += ',' + QByteArray::number(x.key_rank[x.index(model.head(), r, i)]);
    }
    for (int k = 1; k <= K; ++k) {
      out += ',';
      const float value = model.recall(i, k);
      if (std::isfinite(value)) append_csv_value(out, value);  // empty: the query sees no allowed key
    }
    out += "\r\n";
  }
  return out;
}

nlohmann::json lsh_view_json(const ViewContext& context) {
  const LshFigureModel model = model_for(context);
  const PlaygroundResult& r = model.result();
  nlohmann::json j;
  j["format"] = "attnlab-lsh-buckets";
  j["version"] = 1;
  j["variant"] = r.variant;
  j["layer"] = context.layer;
  j["head"] = context.head;
  nlohmann::json tokens = nlohmann::json::array();
  for (const Token& t : r.tokens) tokens.push_back(t.text);
  j["tokens"] = std::move(tokens);
  j["params"] = r.params.to_json();
  j["causal"] = r.causal;
  j["attention_seed"] = r.attention_seed;
  j["settings"] = model.extras().settings_json();
  j["trace"] = model.extras().head_to_json(context.head);
  return j;
}

ViewSpec lsh_view_spec() {
  ViewSpec v;
  v.name = "buckets";
  v.title = QStringLiteral("LSH buckets");
  v.requirement = QStringLiteral("needs the reformer_lsh variant");
  v.data_extensions = {QStringLiteral("csv"), QStringLiteral("json")};
  v.accepts = [](const PlaygroundResult& r) { return result_has_extras<ReformerLshExtras>(r, "reformer_lsh"); };
  v.figure = [](const ViewContext& c, const FigureStyle& style) {
    auto model = std::make_shared<const LshFigureModel>(c.result, c.layer, c.head, c.colormap);
    LshFigureOptions options = figure_options(*model, c.options);
    options.highlight = c.highlighted_token;
    return lsh_painted_figure(std::move(model), options, style);
  };
  v.export_data = [](const ViewContext& c, const QString& path) {
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix == QLatin1String("csv")) {
      write_bytes_atomically(path, lsh_view_csv(c));
    } else if (suffix == QLatin1String("json")) {
      write_bytes_atomically(path, QByteArray::fromStdString(lsh_view_json(c).dump()));
    } else {
      throw ParamError(("cannot export '" + path + "' from view 'buckets': data goes to .csv or .json").toStdString());
    }
  };
  v.make_widget = [](QWidget* parent) -> TraceViewWidget* { return new LshViewWidget(parent); };
  v.options = lsh_option_specs();
  return v;
}

}  // namespace attnlab
