// The hyperparameter panel, generated from a variant's schema: an int becomes a spin box, a
// float a double spin box, a bool a check box, a choice a combo box; ranges and help text come
// from the schema. No widget code changes when a variant is added.
#pragma once

#include <QWidget>
#include <nlohmann/json.hpp>
#include <vector>

#include "attention/params.h"

class QFormLayout;
class QLabel;

namespace attnlab {

class ParamPanel : public QWidget {
  Q_OBJECT

 public:
  explicit ParamPanel(QWidget* parent = nullptr);

  // Rebuilds the editors for `schema` (values reset to the defaults); `owner` names the variant
  // for the empty-schema message.
  void setSchema(const std::vector<ParamSpec>& schema, const QString& owner);
  // Sets editors from a JSON object (keys missing from it keep their values). Emits nothing.
  // Throws ParamError for values outside the schema, leaving the editors unchanged.
  void setValues(const nlohmann::json& values);
  // The current values as a JSON object, e.g. {"n_hashes": 4, "shared_qk": true}.
  nlohmann::json values() const;
  // Only the values that differ from the defaults (what a session stores).
  nlohmann::json changedValues() const;
  int editorCount() const { return static_cast<int>(editors_.size()); }
  QWidget* editorFor(const QString& key) const;

 signals:
  void valuesChanged();

 private:
  struct Editor {
    ParamSpec spec;
    QWidget* widget = nullptr;
  };
  ParamValue read(const Editor& editor) const;
  void write(const Editor& editor, const ParamValue& value);

  QFormLayout* form_ = nullptr;
  QLabel* empty_ = nullptr;
  std::vector<Editor> editors_;
  bool updating_ = false;
};

}  // namespace attnlab
