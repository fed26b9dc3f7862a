// The parameter panel is generated from a schema: one editor per parameter, of the right kind,
// with the schema's range, default and help; values come back as JSON.
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QSignalSpy>
#include <QSpinBox>
#include <QtTest>

#include "param_panel.h"
#include "test_support.h"

using namespace attnlab;

namespace {
std::vector<ParamSpec> schema() {
  return {ParamSpec::integer("n_hashes", "Hash rounds", 2, 1, 16, "Rounds of hashing."),
          ParamSpec::real("decay", "Decay", 0.5, 0.0, 4.0, "Slope of the relative bias."),
          ParamSpec::boolean("shared_qk", "Shared QK", true, "Tie keys to queries."),
          ParamSpec::choice("kind", "Feature map", "elu", {"elu", "relu", "favor"}, "Which feature map.")};
}
}  // namespace

class TestParamPanel : public QObject {
  Q_OBJECT

 private slots:
  void builds_one_editor_per_parameter() {
    ParamPanel panel;
    panel.setSchema(schema(), "test");
    QCOMPARE(panel.editorCount(), 4);
    auto* hashes = qobject_cast<QSpinBox*>(panel.editorFor("n_hashes"));
    auto* decay = qobject_cast<QDoubleSpinBox*>(panel.editorFor("decay"));
    auto* shared = qobject_cast<QCheckBox*>(panel.editorFor("shared_qk"));
    auto* kind = qobject_cast<QComboBox*>(panel.editorFor("kind"));
    QVERIFY(hashes && decay && shared && kind);
    QCOMPARE(hashes->minimum(), 1);
    QCOMPARE(hashes->maximum(), 16);
    QCOMPARE(hashes->value(), 2);
    QCOMPARE(decay->minimum(), 0.0);
    QCOMPARE(decay->maximum(), 4.0);
    QCOMPARE(decay->value(), 0.5);
    QVERIFY(shared->isChecked());
    QCOMPARE(kind->count(), 3);
    QCOMPARE(kind->currentText(), QStringLiteral("elu"));
    QVERIFY(hashes->toolTip().contains("Rounds of hashing."));
    QVERIFY(hashes->toolTip().contains("an integer in [1, 16]"));
    const nlohmann::json expected = {{"n_hashes", 2}, {"decay", 0.5}, {"shared_qk", true}, {"kind", "elu"}};
    QCOMPARE(panel.values(), expected);
    QCOMPARE(panel.changedValues(), nlohmann::json::object());
  }

  void user_edits_emit_and_show_in_values() {
    ParamPanel panel;
    panel.setSchema(schema(), "test");
    QSignalSpy changed(&panel, &ParamPanel::valuesChanged);
    qobject_cast<QSpinBox*>(panel.editorFor("n_hashes"))->setValue(8);
    qobject_cast<QComboBox*>(panel.editorFor("kind"))->setCurrentText("favor");
    qobject_cast<QCheckBox*>(panel.editorFor("shared_qk"))->setChecked(false);
    QCOMPARE(changed.count(), 3);
    const nlohmann::json expected = {{"n_hashes", 8}, {"shared_qk", false}, {"kind", "favor"}};
    QCOMPARE(panel.changedValues(), expected);
  }

  void set_values_validates_first_and_is_silent() {
    ParamPanel panel;
    panel.setSchema(schema(), "test");
    QSignalSpy changed(&panel, &ParamPanel::valuesChanged);
    panel.setValues({{"n_hashes", 4}, {"decay", 1.25}});
    QCOMPARE(changed.count(), 0);
    QCOMPARE(panel.values()["n_hashes"].get<int>(), 4);
    QCOMPARE(panel.values()["decay"].get<double>(), 1.25);
    // One bad value: nothing changes.
    EXPECT_ERROR(ParamError, panel.setValues({{"n_hashes", 6}, {"decay", 9.0}}), "decay");
    EXPECT_ERROR(ParamError, panel.setValues({{"bogus", 1}}), "unknown parameter 'bogus'");
    QCOMPARE(panel.values()["n_hashes"].get<int>(), 4);
    QCOMPARE(panel.values()["decay"].get<double>(), 1.25);
  }

  // Every registered variant's defaults survive the editors unchanged: a spin box rounds to its
  // decimals, which once turned performer's feature_eps = 1e-4 into 0.
  void every_default_round_trips() {
    for (const std::string& name : Registry::builtin().names()) {
      const auto& params = Registry::builtin().get(name).spec().params;
      if (params.empty()) continue;
      ParamPanel panel;
      panel.setSchema(params, QString::fromStdString(name));
      QVERIFY2(panel.changedValues().empty(), (name + ": " + panel.changedValues().dump()).c_str());
      for (const ParamSpec& p : params)
        if (p.type == ParamType::Float)
          QCOMPARE(panel.values()[p.key].get<double>(), std::get<double>(p.default_value));
    }
  }

  void empty_schema_says_so() {
    ParamPanel panel;
    panel.setSchema(schema(), "test");
    panel.setSchema({}, "softmax");
    QCOMPARE(panel.editorCount(), 0);
    QCOMPARE(panel.values(), nlohmann::json::object());
    bool found = false;
    for (QLabel* label : panel.findChildren<QLabel*>()) found = found || label->text() == "softmax has no hyperparameters.";
    QVERIFY(found);
  }
};

QTEST_MAIN(TestParamPanel)
#include "test_param_panel.moc"
