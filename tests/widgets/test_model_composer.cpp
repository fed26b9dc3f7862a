// The model composer on the offscreen platform: it shows a preset layer by layer, edits each
// layer through the schema-generated editors, keeps the editors consistent with the layer type
// (own attention, own feed-forward, reversible), refuses invalid configs with the validator's own
// message, and emits, saves and reopens exactly the config it shows.
#include <QCheckBox>
#include <QComboBox>
#include <QListWidget>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest>

#include "model_composer.h"
#include "models/layer_types.h"
#include "param_panel.h"
#include "test_support.h"

using namespace attnlab;

class TestModelComposer : public QObject {
  Q_OBJECT

 private slots:
  void shows_every_preset_and_gives_it_back_unchanged() {
    ModelComposer composer;
    for (const ModelConfig& preset : builtin_models()) {
      composer.setConfig(preset);
      QCOMPARE(composer.layerList()->count(), static_cast<int>(preset.layers.size()));
      QVERIFY2(composer.problem().isEmpty(), qPrintable(composer.problem()));
      QCOMPARE(composer.config().to_json(), preset.to_json());
    }
  }

  void editors_follow_the_selected_layer() {
    ModelComposer composer;
    composer.setConfig(builtin_model("switch-moe"));
    composer.layerList()->setCurrentRow(1);
    QCOMPARE(composer.ffnBox()->currentText(), QStringLiteral("moe"));
    QVERIFY(composer.ffnParams()->editorFor(QStringLiteral("experts")));
    auto* experts = qobject_cast<QSpinBox*>(composer.ffnParams()->editorFor(QStringLiteral("experts")));
    QVERIFY(experts);
    QCOMPARE(experts->value(), 8);
    experts->setValue(16);
    QCOMPARE(composer.config().layers[1].ffn_params["experts"], nlohmann::json(16));
    // Another layer shows its own values; coming back shows the edit.
    composer.layerList()->setCurrentRow(0);
    QCOMPARE(composer.ffnBox()->currentText(), QStringLiteral("dense"));
    composer.layerList()->setCurrentRow(1);
    QCOMPARE(qobject_cast<QSpinBox*>(composer.ffnParams()->editorFor(QStringLiteral("experts")))->value(), 16);
  }

  void the_layer_type_decides_which_editors_apply() {
    ModelComposer composer;
    composer.setConfig(builtin_model("tiny-encoder"));
    composer.layerList()->setCurrentRow(2);
    composer.attentionBox()->setCurrentText(QStringLiteral("linear"));
    QVERIFY(composer.attentionParams()->editorCount() > 0);
    QVERIFY(composer.reversibleBox()->isEnabled());
    composer.typeBox()->setCurrentText(QStringLiteral("block_recurrent"));
    // Its own attention and its own feed-forward: both boxes off, ffn "none", the type's params shown.
    QVERIFY(!composer.attentionBox()->isEnabled());
    QVERIFY(!composer.ffnBox()->isEnabled());
    QCOMPARE(composer.ffnBox()->currentText(), QStringLiteral("none"));
    QVERIFY(!composer.reversibleBox()->isEnabled());
    QVERIFY(composer.typeParams()->editorFor(QStringLiteral("window")));
    const ModelConfig c = composer.config();
    QCOMPARE(c.layers[2].type, std::string("block_recurrent"));
    QCOMPARE(c.layers[2].attention, std::string("inherit"));
    QCOMPARE(c.layers[2].ffn, std::string("none"));
    QCOMPARE(c.layers[1].type, std::string("transformer"));  // the others untouched
  }

  void adds_removes_and_moves_layers() {
    ModelComposer composer;
    composer.setConfig(builtin_model("tiny-encoder"));
    composer.layerList()->setCurrentRow(0);
    composer.typeBox()->setCurrentText(QStringLiteral("gss"));
    composer.addLayer();  // after the selected one
    QCOMPARE(composer.config().layer_count(), std::int64_t{5});
    QCOMPARE(composer.config().layers[1].type, std::string("transformer"));
    composer.layerList()->setCurrentRow(0);
    composer.moveLayer(+1);
    QCOMPARE(composer.config().layers[0].type, std::string("transformer"));
    QCOMPARE(composer.config().layers[1].type, std::string("gss"));
    QCOMPARE(composer.layerList()->currentRow(), 1);
    composer.removeLayer();
    QCOMPARE(composer.config().layer_count(), std::int64_t{4});
    for (const LayerSpec& l : composer.config().layers) QCOMPARE(l.type, std::string("transformer"));
    // A model keeps at least one layer.
    for (int i = 0; i < 10; ++i) composer.removeLayer();
    QCOMPARE(composer.config().layer_count(), std::int64_t{1});
  }

  void an_invalid_config_names_its_problem_and_cannot_run() {
    ModelComposer composer;
    composer.setConfig(builtin_model("tiny-encoder"));
    auto* heads = composer.findChildren<QSpinBox*>().at(1);  // d_model, heads, d_ff, ...
    QCOMPARE(heads->value(), 8);
    heads->setValue(7);
    QVERIFY(composer.problem().contains(QStringLiteral("not divisible by heads=7")));
    QVERIFY(!composer.runButton()->isEnabled());
    EXPECT_ERROR(ParamError, composer.config(), "not divisible by heads=7");
    heads->setValue(8);
    QVERIFY(composer.problem().isEmpty());
    QVERIFY(composer.runButton()->isEnabled());
  }

  void run_emits_and_save_reopens_the_shown_config() {
    ModelComposer composer;
    composer.setConfig(builtin_model("block-recurrent"));
    QSignalSpy run(&composer, &ModelComposer::runRequested);
    composer.runButton()->click();
    QCOMPARE(run.count(), 1);
    const nlohmann::json emitted = run.at(0).at(0).value<nlohmann::json>();
    QCOMPARE(emitted, builtin_model("block-recurrent").to_json());

    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("model.json"));
    composer.saveTo(path);
    QCOMPARE(ModelConfig::load(path.toStdString()).to_json(), emitted);
    ModelComposer other;
    other.loadFrom(path);
    QCOMPARE(other.config().to_json(), emitted);
    // A bad file leaves the composer as it was.
    EXPECT_ERROR(IoError, other.loadFrom(dir.filePath(QStringLiteral("missing.json"))), "missing.json");
    QCOMPARE(other.config().to_json(), emitted);
  }
};

QTEST_MAIN(TestModelComposer)
#include "test_model_composer.moc"
