// The model composer: build a model from layers — each a layer type (models/layer_types.h), an
// attention variant (or "inherit": the one the window's variant box runs), a feed-forward kind
// and flags — with every hyperparameter editor generated from the schemas. It edits a
// ModelConfig only; running it, saving it into the session and drawing it belong to the window.
//
//   ┌ name, d_model, heads, d_ff, vocabulary, max length, start from a preset ┐
//   │ layer list (add, duplicate, remove, up, down) │ the selected layer's editors │
//   └ one line: the config's problem, or its summary; Open…, Save…, Run            ┘
#pragma once

#include <QWidget>
#include <nlohmann/json.hpp>
#include <optional>

#include "models/model_config.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QSpinBox;

namespace attnlab {

class ParamPanel;

class ModelComposer : public QWidget {
  Q_OBJECT

 public:
  explicit ModelComposer(QWidget* parent = nullptr);

  // Shows `config` (any valid config: a preset, a file, the session's).
  void setConfig(const ModelConfig& config);
  // The config as edited; throws ParamError naming the field or layer that is wrong.
  ModelConfig config() const;
  // The current problem ("" when the config is valid), as shown under the editors.
  QString problem() const;

  // For tests and the window.
  QListWidget* layerList() const { return layer_list_; }
  QComboBox* typeBox() const { return type_box_; }
  QComboBox* attentionBox() const { return attention_box_; }
  QComboBox* ffnBox() const { return ffn_box_; }
  QCheckBox* reversibleBox() const { return reversible_box_; }
  ParamPanel* typeParams() const { return type_params_; }
  ParamPanel* attentionParams() const { return attention_params_; }
  ParamPanel* ffnParams() const { return ffn_params_; }
  QPushButton* runButton() const { return run_button_; }
  void addLayer();
  void removeLayer();
  void moveLayer(int delta);
  // Writes the config as JSON (atomic); throws ParamError / IoError.
  void saveTo(const QString& path) const;
  // Reads a config file; throws like ModelConfig::load. The composer keeps its state on error.
  void loadFrom(const QString& path);

 signals:
  // "Run" was pressed on a valid config.
  void runRequested(const nlohmann::json& config);
  // Any edit.
  void configEdited();

 private:
  void showLayer(int index);     // the editors follow the selected layer
  void storeLayer();             // editors -> layers_[current_]
  void refreshList();
  void updateProblem();
  void updateEditorStates();

  std::vector<LayerSpec> layers_;
  int current_ = -1;
  bool updating_ = false;

  QLineEdit* name_edit_ = nullptr;
  QSpinBox* d_model_box_ = nullptr;
  QSpinBox* heads_box_ = nullptr;
  QSpinBox* d_ff_box_ = nullptr;
  QSpinBox* vocab_box_ = nullptr;
  QSpinBox* max_length_box_ = nullptr;
  QComboBox* preset_box_ = nullptr;
  QListWidget* layer_list_ = nullptr;
  QComboBox* type_box_ = nullptr;
  QLabel* type_info_ = nullptr;
  QComboBox* attention_box_ = nullptr;
  QComboBox* ffn_box_ = nullptr;
  QCheckBox* reversible_box_ = nullptr;
  ParamPanel* type_params_ = nullptr;
  ParamPanel* attention_params_ = nullptr;
  ParamPanel* ffn_params_ = nullptr;
  QLabel* problem_label_ = nullptr;
  QPushButton* run_button_ = nullptr;
  std::string tokenizer_ = "word";
  float qk_gain_ = 2.0f;
  std::string description_;
};

}  // namespace attnlab
