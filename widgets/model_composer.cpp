#include "model_composer.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include "attention/registry.h"
#include "core/error.h"
#include "figures/figure_export.h"
#include "models/layer_types.h"
#include "param_panel.h"

namespace attnlab {
namespace {

QSpinBox* spin(int min, int max, int step, const QString& tip) {
  auto* box = new QSpinBox;
  box->setRange(min, max);
  box->setSingleStep(step);
  box->setToolTip(tip);
  return box;
}

QString layer_line(std::size_t index, const LayerSpec& l) {
  QString line = QStringLiteral("%1 · %2").arg(index).arg(QString::fromStdString(l.type));
  if (layer_type(l.type).attention == LayerAttention::Variant) line += QStringLiteral(" · ") + QString::fromStdString(l.attention);
  if (l.ffn != "none") line += QStringLiteral(" · ") + QString::fromStdString(l.ffn);
  if (l.reversible) line += QStringLiteral(" · reversible");
  return line;
}

// The overrides of `panel` (values differing from the schema's defaults).
nlohmann::json overrides(const ParamPanel* panel) { return panel->changedValues(); }

}  // namespace

ModelComposer::ModelComposer(QWidget* parent) : QWidget(parent) {
  name_edit_ = new QLineEdit;
  name_edit_->setObjectName(QStringLiteral("modelName"));
  d_model_box_ = spin(4, 8192, 32, tr("Model width D (divisible by the heads)"));
  heads_box_ = spin(1, 64, 1, tr("Attention heads per layer"));
  d_ff_box_ = spin(4, 65536, 64, tr("Feed-forward width (per expert for mixture-of-experts layers)"));
  vocab_box_ = spin(2, 1 << 22, 1024, tr("Vocabulary size of the seeded embedding"));
  max_length_box_ = spin(1, 1 << 20, 1024, tr("Longest token sequence the model accepts"));
  preset_box_ = new QComboBox;
  preset_box_->addItem(tr("Start from a preset…"));
  for (const ModelConfig& m : builtin_models()) {
    preset_box_->addItem(QString::fromStdString(m.name));
    preset_box_->setItemData(preset_box_->count() - 1, QString::fromStdString(m.description), Qt::ToolTipRole);
  }
  auto* model_form = new QFormLayout;
  model_form->addRow(tr("Name"), name_edit_);
  auto* sizes = new QHBoxLayout;
  for (auto [label, box] : {std::pair{tr("D"), d_model_box_}, {tr("heads"), heads_box_}, {tr("d_ff"), d_ff_box_}}) {
    sizes->addWidget(new QLabel(label));
    sizes->addWidget(box);
  }
  model_form->addRow(tr("Width"), sizes);
  auto* limits = new QHBoxLayout;
  limits->addWidget(new QLabel(tr("vocabulary")));
  limits->addWidget(vocab_box_);
  limits->addWidget(new QLabel(tr("max length")));
  limits->addWidget(max_length_box_);
  model_form->addRow(tr("Limits"), limits);
  model_form->addRow(QString(), preset_box_);

  layer_list_ = new QListWidget;
  layer_list_->setObjectName(QStringLiteral("layerList"));
  auto* add = new QPushButton(tr("Add"));
  auto* duplicate = new QPushButton(tr("Duplicate"));
  auto* remove = new QPushButton(tr("Remove"));
  auto* up = new QPushButton(tr("Up"));
  auto* down = new QPushButton(tr("Down"));
  auto* list_buttons = new QHBoxLayout;
  for (QPushButton* b : {add, duplicate, remove, up, down}) list_buttons->addWidget(b);
  auto* list_box = new QGroupBox(tr("Layers (input first)"));
  auto* list_layout = new QVBoxLayout(list_box);
  list_layout->addWidget(layer_list_, 1);
  list_layout->addLayout(list_buttons);

  type_box_ = new QComboBox;
  type_box_->setObjectName(QStringLiteral("layerType"));
  for (const LayerTypeSpec& t : layer_types()) {
    type_box_->addItem(QString::fromStdString(t.name));
    type_box_->setItemData(type_box_->count() - 1, QString::fromStdString(t.title + " — " + t.paper), Qt::ToolTipRole);
  }
  type_info_ = new QLabel;
  type_info_->setWordWrap(true);
  attention_box_ = new QComboBox;
  attention_box_->setObjectName(QStringLiteral("layerAttention"));
  attention_box_->addItem(QStringLiteral("inherit"));
  attention_box_->setItemData(0, tr("Run the variant chosen in the window"), Qt::ToolTipRole);
  for (const Attention* a : Registry::builtin().all()) attention_box_->addItem(QString::fromStdString(a->spec().name));
  ffn_box_ = new QComboBox;
  ffn_box_->setObjectName(QStringLiteral("layerFfn"));
  for (const FeedForwardKindSpec& f : feed_forward_kinds()) {
    ffn_box_->addItem(QString::fromStdString(f.name));
    ffn_box_->setItemData(ffn_box_->count() - 1, QString::fromStdString(f.summary), Qt::ToolTipRole);
  }
  reversible_box_ = new QCheckBox(tr("Reversible (RevNet: activation memory flat in depth)"));
  type_params_ = new ParamPanel;
  attention_params_ = new ParamPanel;
  ffn_params_ = new ParamPanel;
  auto* layer_form = new QFormLayout;
  layer_form->addRow(tr("Type"), type_box_);
  layer_form->addRow(QString(), type_info_);
  layer_form->addRow(tr("Attention"), attention_box_);
  layer_form->addRow(tr("Feed-forward"), ffn_box_);
  layer_form->addRow(QString(), reversible_box_);
  auto* editor_box = new QGroupBox(tr("Selected layer"));
  auto* editor_layout = new QVBoxLayout(editor_box);
  editor_layout->addLayout(layer_form);
  for (auto [title, panel] : {std::pair{tr("Layer parameters"), type_params_},
                              {tr("Attention parameters"), attention_params_},
                              {tr("Feed-forward parameters"), ffn_params_}}) {
    auto* group = new QGroupBox(title);
    auto* l = new QVBoxLayout(group);
    l->setContentsMargins(4, 4, 4, 4);
    l->addWidget(panel);
    editor_layout->addWidget(group);
  }
  editor_layout->addStretch(1);

  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(list_box);
  split->addWidget(editor_box);
  split->setStretchFactor(1, 1);

  problem_label_ = new QLabel;
  problem_label_->setObjectName(QStringLiteral("composerProblem"));
  problem_label_->setWordWrap(true);
  auto* open = new QPushButton(tr("Open…"));
  auto* save = new QPushButton(tr("Save…"));
  run_button_ = new QPushButton(tr("Run"));
  run_button_->setObjectName(QStringLiteral("composerRun"));
  run_button_->setToolTip(tr("Run this model in the playground (it is saved in the session)"));
  auto* bottom = new QHBoxLayout;
  bottom->addWidget(problem_label_, 1);
  bottom->addWidget(open);
  bottom->addWidget(save);
  bottom->addWidget(run_button_);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(model_form);
  layout->addWidget(split, 1);
  layout->addLayout(bottom);

  connect(add, &QPushButton::clicked, this, &ModelComposer::addLayer);
  connect(duplicate, &QPushButton::clicked, this, [this] {
    if (current_ < 0) return;
    storeLayer();
    layers_.insert(layers_.begin() + current_ + 1, layers_[static_cast<std::size_t>(current_)]);
    refreshList();
    layer_list_->setCurrentRow(current_ + 1);
  });
  connect(remove, &QPushButton::clicked, this, &ModelComposer::removeLayer);
  connect(up, &QPushButton::clicked, this, [this] { moveLayer(-1); });
  connect(down, &QPushButton::clicked, this, [this] { moveLayer(+1); });
  connect(layer_list_, &QListWidget::currentRowChanged, this, [this](int row) {
    if (updating_) return;
    storeLayer();
    showLayer(row);
  });
  const auto edited = [this] {
    if (updating_) return;
    storeLayer();
    refreshList();
    updateProblem();
  };
  connect(type_box_, &QComboBox::currentIndexChanged, this, [this, edited] {
    if (updating_) return;
    // A new type starts from its own defaults: its parameters and its feed-forward kind.
    const LayerTypeSpec& t = layer_type(type_box_->currentText().toStdString());
    updating_ = true;
    type_params_->setSchema(t.params, QString::fromStdString(t.name));
    ffn_box_->setCurrentText(QString::fromStdString(t.default_ffn));
    if (t.attention != LayerAttention::Variant) attention_box_->setCurrentIndex(0);
    if (t.name != "transformer") reversible_box_->setChecked(false);
    updating_ = false;
    updateEditorStates();
    edited();
  });
  connect(attention_box_, &QComboBox::currentIndexChanged, this, [this, edited] {
    if (updating_) return;
    updating_ = true;
    const std::string name = attention_box_->currentText().toStdString();
    if (name == "inherit") attention_params_->setSchema({}, tr("an inherited variant (set in the window)"));
    else attention_params_->setSchema(Registry::builtin().get(name).spec().params, QString::fromStdString(name));
    updating_ = false;
    edited();
  });
  connect(ffn_box_, &QComboBox::currentIndexChanged, this, [this, edited] {
    if (updating_) return;
    updating_ = true;
    const FeedForwardKindSpec& f = feed_forward_kind(ffn_box_->currentText().toStdString());
    ffn_params_->setSchema(f.params, QString::fromStdString(f.name));
    updating_ = false;
    updateEditorStates();
    edited();
  });
  connect(reversible_box_, &QCheckBox::toggled, this, edited);
  for (ParamPanel* p : {type_params_, attention_params_, ffn_params_}) connect(p, &ParamPanel::valuesChanged, this, edited);
  for (QSpinBox* b : {d_model_box_, heads_box_, d_ff_box_, vocab_box_, max_length_box_}) {
    connect(b, &QSpinBox::valueChanged, this, [this] { updateProblem(); });
  }
  connect(name_edit_, &QLineEdit::textChanged, this, [this] { updateProblem(); });
  connect(preset_box_, &QComboBox::activated, this, [this](int index) {
    if (index <= 0) return;
    setConfig(builtin_model(preset_box_->itemText(index).toStdString()));
    preset_box_->setCurrentIndex(0);
  });
  connect(open, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open Model Config"), QSettings().value("paths/models").toString(),
                                                      tr("Model configs (*.json)"));
    if (path.isEmpty()) return;
    QSettings().setValue("paths/models", path);
    try {
      loadFrom(path);
    } catch (const std::exception& e) {
      problem_label_->setText(QString::fromStdString(e.what()));
    }
  });
  connect(save, &QPushButton::clicked, this, [this] {
    QString path = QFileDialog::getSaveFileName(this, tr("Save Model Config"), QSettings().value("paths/models").toString(),
                                                tr("Model configs (*.json)"));
    if (path.isEmpty()) return;
    if (!path.endsWith(QStringLiteral(".json"))) path += QStringLiteral(".json");
    QSettings().setValue("paths/models", path);
    try {
      saveTo(path);
    } catch (const std::exception& e) {
      problem_label_->setText(QString::fromStdString(e.what()));
    }
  });
  connect(run_button_, &QPushButton::clicked, this, [this] {
    try {
      emit runRequested(config().to_json());
    } catch (const std::exception& e) {
      problem_label_->setText(QString::fromStdString(e.what()));
    }
  });
  setConfig(builtin_model("tiny-encoder"));
}

void ModelComposer::setConfig(const ModelConfig& c) {
  updating_ = true;
  name_edit_->setText(QString::fromStdString(c.name));
  d_model_box_->setValue(static_cast<int>(c.d_model));
  heads_box_->setValue(static_cast<int>(c.heads));
  d_ff_box_->setValue(static_cast<int>(c.d_ff));
  vocab_box_->setValue(c.vocab_size);
  max_length_box_->setValue(static_cast<int>(c.max_length));
  tokenizer_ = c.tokenizer;
  qk_gain_ = c.qk_gain;
  description_ = c.description;
  layers_ = c.layers;
  current_ = -1;
  updating_ = false;
  refreshList();
  layer_list_->setCurrentRow(layers_.empty() ? -1 : 0);
  showLayer(layers_.empty() ? -1 : 0);
  updateProblem();
}

ModelConfig ModelComposer::config() const {
  ModelConfig c;
  c.name = name_edit_->text().trimmed().toStdString();
  c.d_model = d_model_box_->value();
  c.heads = heads_box_->value();
  c.d_ff = d_ff_box_->value();
  c.vocab_size = vocab_box_->value();
  c.max_length = max_length_box_->value();
  c.tokenizer = tokenizer_;
  c.qk_gain = qk_gain_;
  c.description = description_;
  c.layers = layers_;
  c.validate();
  return c;
}

QString ModelComposer::problem() const {
  try {
    config();
    return {};
  } catch (const std::exception& e) {
    return QString::fromStdString(e.what());
  }
}

void ModelComposer::addLayer() {
  storeLayer();
  const LayerSpec fresh;
  const auto at = current_ < 0 ? layers_.size() : static_cast<std::size_t>(current_) + 1;
  layers_.insert(layers_.begin() + static_cast<std::ptrdiff_t>(at), fresh);
  refreshList();
  layer_list_->setCurrentRow(static_cast<int>(at));
  updateProblem();
}

void ModelComposer::removeLayer() {
  if (current_ < 0 || layers_.size() <= 1) return;  // a model keeps at least one layer
  layers_.erase(layers_.begin() + current_);
  const int next = std::min(current_, static_cast<int>(layers_.size()) - 1);
  current_ = -1;
  refreshList();
  layer_list_->setCurrentRow(next);
  showLayer(next);
  updateProblem();
}

void ModelComposer::moveLayer(int delta) {
  const int to = current_ + delta;
  if (current_ < 0 || to < 0 || to >= static_cast<int>(layers_.size())) return;
  storeLayer();
  std::swap(layers_[static_cast<std::size_t>(current_)], layers_[static_cast<std::size_t>(to)]);
  current_ = to;
  refreshList();
  updating_ = true;
  layer_list_->setCurrentRow(to);
  updating_ = false;
  updateProblem();
}

void ModelComposer::saveTo(const QString& path) const {
  write_bytes_atomically(path, QByteArray::fromStdString(config().to_json().dump(2) + "\n"));
}

void ModelComposer::loadFrom(const QString& path) { setConfig(ModelConfig::load(path.toStdString())); }

void ModelComposer::showLayer(int index) {
  current_ = index;
  const bool valid = index >= 0 && index < static_cast<int>(layers_.size());
  for (QWidget* w : std::initializer_list<QWidget*>{type_box_, attention_box_, ffn_box_, reversible_box_, type_params_,
                                                   attention_params_, ffn_params_}) {
    w->setEnabled(valid);
  }
  if (!valid) return;
  const LayerSpec& l = layers_[static_cast<std::size_t>(index)];
  const LayerTypeSpec& t = layer_type(l.type);
  updating_ = true;
  type_box_->setCurrentText(QString::fromStdString(l.type));
  type_info_->setText(QString::fromStdString(t.summary));
  attention_box_->setCurrentText(QString::fromStdString(l.attention));
  ffn_box_->setCurrentText(QString::fromStdString(l.ffn));
  reversible_box_->setChecked(l.reversible);
  type_params_->setSchema(t.params, QString::fromStdString(t.name));
  if (l.attention == "inherit") attention_params_->setSchema({}, tr("an inherited variant (set in the window)"));
  else attention_params_->setSchema(Registry::builtin().get(l.attention).spec().params, QString::fromStdString(l.attention));
  ffn_params_->setSchema(feed_forward_kind(l.ffn).params, QString::fromStdString(l.ffn));
  // The spec was validated when it entered the composer, so these values fit their schemas.
  type_params_->setValues(l.params);
  attention_params_->setValues(l.attention_params);
  ffn_params_->setValues(l.ffn_params);
  updating_ = false;
  updateEditorStates();
}

void ModelComposer::storeLayer() {
  if (current_ < 0 || current_ >= static_cast<int>(layers_.size())) return;
  LayerSpec& l = layers_[static_cast<std::size_t>(current_)];
  l.type = type_box_->currentText().toStdString();
  l.attention = attention_box_->currentText().toStdString();
  l.ffn = ffn_box_->currentText().toStdString();
  l.reversible = reversible_box_->isChecked() && reversible_box_->isEnabled();
  l.params = overrides(type_params_);
  l.attention_params = l.attention == "inherit" ? nlohmann::json::object() : overrides(attention_params_);
  l.ffn_params = overrides(ffn_params_);
  type_info_->setText(QString::fromStdString(layer_type(l.type).summary));
  emit configEdited();
}

void ModelComposer::refreshList() {
  const bool was = updating_;
  updating_ = true;
  const int row = current_;
  while (layer_list_->count() > static_cast<int>(layers_.size())) delete layer_list_->takeItem(layer_list_->count() - 1);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const QString text = layer_line(i, layers_[i]);
    if (static_cast<int>(i) < layer_list_->count()) layer_list_->item(static_cast<int>(i))->setText(text);
    else layer_list_->addItem(text);
  }
  if (row >= 0 && row < layer_list_->count()) layer_list_->setCurrentRow(row);
  updating_ = was;
}

void ModelComposer::updateEditorStates() {
  const LayerTypeSpec& t = layer_type(type_box_->currentText().toStdString());
  const bool has_layer = current_ >= 0;
  attention_box_->setEnabled(has_layer && t.attention == LayerAttention::Variant);
  attention_box_->setToolTip(t.attention == LayerAttention::Variant ? tr("The attention variant this layer runs")
                             : t.attention == LayerAttention::Own   ? tr("This layer type has its own attention")
                                                                    : tr("This layer type has no attention"));
  ffn_box_->setEnabled(has_layer && !t.own_feed_forward);
  reversible_box_->setEnabled(has_layer && t.name == "transformer" && ffn_box_->currentText() != QStringLiteral("none"));
}

void ModelComposer::updateProblem() {
  const QString p = problem();
  if (p.isEmpty()) {
    const ModelConfig c = config();
    problem_label_->setText(tr("%1 layers, D %2, %3 heads — valid").arg(c.layer_count()).arg(c.d_model).arg(c.heads));
    problem_label_->setStyleSheet(QString());
  } else {
    problem_label_->setText(p);
    problem_label_->setStyleSheet(QStringLiteral("color: #b00020"));
  }
  run_button_->setEnabled(p.isEmpty());
  emit configEdited();
}

}  // namespace attnlab
