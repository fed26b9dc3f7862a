#include "param_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QSpinBox>
#include <QVBoxLayout>
#include <climits>
#include <cmath>

#include "core/error.h"

namespace attnlab {
namespace {

// Decimals that show the smallest step of a float range (at least 2, at most 6).
// Enough decimals for a thousandth of the range and for the default's two leading digits: a
// QDoubleSpinBox rounds its value to its decimals, so 3 decimals would turn a default of 1e-4
// into 0 and send that to the engine.
int decimals_for(const ParamSpec& spec) {
  const double span = spec.max - spec.min;
  int decimals = span > 0 ? static_cast<int>(std::ceil(-std::log10(span / 1000.0))) : 3;
  const double d = std::abs(std::get<double>(spec.default_value));
  if (d > 0) decimals = std::max(decimals, static_cast<int>(std::ceil(-std::log10(d))) + 1);
  return std::clamp(decimals, 2, 8);
}

}  // namespace

ParamPanel::ParamPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  form_ = new QFormLayout;
  form_->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  layout->addLayout(form_);
  empty_ = new QLabel(this);
  empty_->setWordWrap(true);
  empty_->setForegroundRole(QPalette::PlaceholderText);
  layout->addWidget(empty_);
  layout->addStretch(1);
}

void ParamPanel::setSchema(const std::vector<ParamSpec>& schema, const QString& owner) {
  while (form_->rowCount() > 0) form_->removeRow(0);
  editors_.clear();
  for (const ParamSpec& spec : schema) {
    QWidget* widget = nullptr;
    switch (spec.type) {
      case ParamType::Int: {
        auto* box = new QSpinBox(this);
        box->setRange(static_cast<int>(std::max<double>(spec.min, INT_MIN)), static_cast<int>(std::min<double>(spec.max, INT_MAX)));
        connect(box, &QSpinBox::valueChanged, this, [this] { if (!updating_) emit valuesChanged(); });
        widget = box;
        break;
      }
      case ParamType::Float: {
        auto* box = new QDoubleSpinBox(this);
        box->setDecimals(decimals_for(spec));
        box->setRange(spec.min, spec.max);
        box->setSingleStep((spec.max - spec.min) / 100.0);
        connect(box, &QDoubleSpinBox::valueChanged, this, [this] { if (!updating_) emit valuesChanged(); });
        widget = box;
        break;
      }
      case ParamType::Bool: {
        auto* box = new QCheckBox(this);
        connect(box, &QCheckBox::toggled, this, [this] { if (!updating_) emit valuesChanged(); });
        widget = box;
        break;
      }
      case ParamType::Choice: {
        auto* box = new QComboBox(this);
        for (const auto& c : spec.choices) box->addItem(QString::fromStdString(c));
        connect(box, &QComboBox::currentIndexChanged, this, [this] { if (!updating_) emit valuesChanged(); });
        widget = box;
        break;
      }
    }
    const QString help = QString::fromStdString(spec.help + "\n(" + spec.describe_range() + ")");
    widget->setToolTip(help);
    widget->setObjectName(QString::fromStdString(spec.key));
    auto* label = new QLabel(QString::fromStdString(spec.label), this);
    label->setToolTip(help);
    form_->addRow(label, widget);
    editors_.push_back(Editor{spec, widget});
    updating_ = true;
    write(editors_.back(), spec.default_value);
    updating_ = false;
  }
  empty_->setText(schema.empty() ? tr("%1 has no hyperparameters.").arg(owner) : QString());
  empty_->setVisible(schema.empty());
}

void ParamPanel::setValues(const nlohmann::json& values) {
  if (!values.is_object()) throw ParamError("parameters must be a JSON object, got " + values.dump());
  std::vector<std::pair<const Editor*, ParamValue>> parsed;
  for (const auto& [key, value] : values.items()) {
    const Editor* found = nullptr;
    for (const Editor& e : editors_) found = e.spec.key == key ? &e : found;
    if (!found) throw ParamError("unknown parameter '" + key + "'");
    parsed.emplace_back(found, found->spec.from_json(value));  // validates before anything changes
  }
  updating_ = true;
  for (const auto& [editor, value] : parsed) write(*editor, value);
  updating_ = false;
}

nlohmann::json ParamPanel::values() const {
  nlohmann::json j = nlohmann::json::object();
  for (const Editor& e : editors_) j[e.spec.key] = param_value_to_json(read(e));
  return j;
}

nlohmann::json ParamPanel::changedValues() const {
  nlohmann::json j = nlohmann::json::object();
  for (const Editor& e : editors_) {
    const ParamValue v = read(e);
    if (param_value_to_json(v) != param_value_to_json(e.spec.default_value)) j[e.spec.key] = param_value_to_json(v);
  }
  return j;
}

QWidget* ParamPanel::editorFor(const QString& key) const {
  for (const Editor& e : editors_) {
    if (QString::fromStdString(e.spec.key) == key) return e.widget;
  }
  return nullptr;
}

ParamValue ParamPanel::read(const Editor& e) const {
  switch (e.spec.type) {
    case ParamType::Int: return static_cast<std::int64_t>(static_cast<QSpinBox*>(e.widget)->value());
    case ParamType::Float: return static_cast<QDoubleSpinBox*>(e.widget)->value();
    case ParamType::Bool: return static_cast<QCheckBox*>(e.widget)->isChecked();
    case ParamType::Choice: return static_cast<QComboBox*>(e.widget)->currentText().toStdString();
  }
  return {};
}

void ParamPanel::write(const Editor& e, const ParamValue& value) {
  switch (e.spec.type) {
    case ParamType::Int: static_cast<QSpinBox*>(e.widget)->setValue(static_cast<int>(std::get<std::int64_t>(value))); break;
    case ParamType::Float: static_cast<QDoubleSpinBox*>(e.widget)->setValue(std::get<double>(value)); break;
    case ParamType::Bool: static_cast<QCheckBox*>(e.widget)->setChecked(std::get<bool>(value)); break;
    case ParamType::Choice:
      static_cast<QComboBox*>(e.widget)->setCurrentText(QString::fromStdString(std::get<std::string>(value)));
      break;
  }
}

}  // namespace attnlab
