// Hyperparameter schemas, values and the variant registry.
#include <QtTest>
#include <nlohmann/json.hpp>

#include "attention/params.h"
#include "attention/registry.h"
#include "attention/variants.h"
#include "test_support.h"

using namespace attnlab;

namespace {
std::vector<ParamSpec> schema() {
  return {ParamSpec::integer("n_hashes", "Hash rounds", 2, 1, 16, "rounds of hashing"),
          ParamSpec::real("decay", "Decay", 0.5, 0.0, 4.0, "bias slope"),
          ParamSpec::boolean("shared_qk", "Shared QK", true, "tie keys to queries"),
          ParamSpec::choice("kind", "Kind", "elu", {"elu", "relu"}, "feature map")};
}
}  // namespace

class TestParamsRegistry : public QObject {
  Q_OBJECT

 private slots:
  void defaults_and_setters() {
    Params p(schema());
    QCOMPARE(p.get_int("n_hashes"), 2);
    QCOMPARE(p.get_float("decay"), 0.5);
    QCOMPARE(p.get_bool("shared_qk"), true);
    QCOMPARE(p.get_choice("kind"), std::string("elu"));
    p.set_from_assignment("n_hashes=8");
    p.set_from_assignment("decay=1.25");
    p.set_from_assignment("shared_qk=false");
    p.set_from_assignment("kind=relu");
    QCOMPARE(p.get_int("n_hashes"), 8);
    QCOMPARE(p.get_float("decay"), 1.25);
    QCOMPARE(p.get_bool("shared_qk"), false);
    QCOMPARE(p.get_choice("kind"), std::string("relu"));
    p.set("decay", std::int64_t{2});  // an integer where a float is expected
    QCOMPARE(p.get_float("decay"), 2.0);
  }

  void errors_name_the_parameter_and_its_range() {
    Params p(schema());
    EXPECT_ERROR(ParamError, p.set_from_assignment("n_hashes=40"), "n_hashes=40 is not allowed; n_hashes: an integer in [1, 16]");
    EXPECT_ERROR(ParamError, p.set_from_assignment("n_hashes=2.5"), "an integer in [1, 16]");
    EXPECT_ERROR(ParamError, p.set_from_assignment("n_hashes=two"), "n_hashes=two");
    EXPECT_ERROR(ParamError, p.set_from_assignment("decay=-1"), "a number in [0, 4]");
    EXPECT_ERROR(ParamError, p.set_from_assignment("decay=nan"), "decay");
    EXPECT_ERROR(ParamError, p.set_from_assignment("shared_qk=maybe"), "true or false");
    EXPECT_ERROR(ParamError, p.set_from_assignment("kind=gelu"), "one of elu, relu");
    EXPECT_ERROR(ParamError, p.set_from_assignment("bucket=3"), "unknown parameter 'bucket'; known: n_hashes, decay, shared_qk, kind");
    EXPECT_ERROR(ParamError, p.set_from_assignment("n_hashes"), "key=value");
    EXPECT_ERROR(ParamError, p.set_from_json(nlohmann::json{{"kind", 3}}), "kind");
    QCOMPARE(p.get_int("n_hashes"), 2);  // failed sets leave the last good values
  }

  void json_round_trip() {
    Params p(schema());
    p.set_from_assignment("n_hashes=4");
    p.set_from_assignment("kind=relu");
    const nlohmann::json j = p.to_json();
    Params q(schema());
    q.set_from_json(j);
    QCOMPARE(q.to_json(), j);
    const nlohmann::json spec = param_spec_to_json(schema()[0]);
    QCOMPARE(spec["key"].get<std::string>(), std::string("n_hashes"));
    QCOMPARE(spec["type"].get<std::string>(), std::string("int"));
    QCOMPARE(spec["default"].get<int>(), 2);
    QCOMPARE(spec["min"].get<int>(), 1);
    QCOMPARE(spec["max"].get<int>(), 16);
  }

  void registry_holds_softmax() {
    const Registry& r = Registry::builtin();
    QVERIFY(r.find("softmax") != nullptr);
    QCOMPARE(r.get("softmax").spec().name, std::string("softmax"));
    QVERIFY(!r.get("softmax").spec().paper.empty());
    EXPECT_ERROR(ParamError, r.get("nope"), "unknown attention variant 'nope'; known: softmax");
    for (const Attention* a : r.all()) {
      for (const ParamSpec& spec : a->spec().params) spec.validate(spec.default_value);  // defaults are valid
    }
  }

  void duplicate_names_are_refused() {
    Registry r;
    r.add(make_softmax_attention());
    EXPECT_ERROR(ParamError, r.add(make_softmax_attention()), "registered twice");
  }
};

QTEST_GUILESS_MAIN(TestParamsRegistry)
#include "test_params_registry.moc"
