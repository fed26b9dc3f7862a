// attnlab-cli, run as a user would: every command, good and bad inputs. Errors must be one line
// on stderr, a non-zero exit (2 for command-line mistakes, 1 otherwise), never a crash, and
// never a partial or replaced output file.
#include <QDir>
#include <QFile>
#include <QImage>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <fstream>
#include <numeric>
#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "cuda/gpu_attention.h"
#include "text/sentencepiece_trainer.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::random_tensor;

namespace {

struct CliRun {
  int exit_code = -1;
  bool crashed = false;
  QString out;
  QString err;
};

CliRun cli(const QStringList& args) {
  QProcess p;
  p.start(QStringLiteral(ATTNLAB_CLI_PATH), args);
  const bool finished = p.waitForFinished(120000);
  CliRun r;
  r.crashed = !finished || p.exitStatus() != QProcess::NormalExit;
  r.exit_code = p.exitCode();
  r.out = QString::fromUtf8(p.readAllStandardOutput());
  r.err = QString::fromUtf8(p.readAllStandardError());
  return r;
}

// A failed command: the expected exit code, one line on stderr containing `part`.
void expect_failure(const CliRun& r, int code, const QString& part) {
  QVERIFY2(!r.crashed, "attnlab-cli crashed");
  QVERIFY2(r.exit_code == code, qPrintable(QString("exit %1, expected %2; stderr: %3").arg(r.exit_code).arg(code).arg(r.err)));
  QVERIFY2(r.err.count(QLatin1Char('\n')) == 1, qPrintable("stderr is not one line: " + r.err));
  QVERIFY2(r.err.contains(part), qPrintable("stderr '" + r.err.trimmed() + "' lacks '" + part + "'"));
}

QByteArray read_bytes(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

}  // namespace

class TestCli : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;
  QString path(const QString& name) const { return dir_.filePath(name); }

 private slots:
  void variants_lists_the_registry() {
    const CliRun r = cli({"variants", "--json"});
    QCOMPARE(r.exit_code, 0);
    const auto list = nlohmann::json::parse(r.out.toStdString());
    QVERIFY(list.is_array());
    bool found = false;
    for (const auto& v : list) {
      QVERIFY(v.contains("name") && v.contains("paper") && v.contains("params"));
      for (const auto& p : v["params"]) {
        for (const char* key : {"key", "type", "default", "min", "max", "help"}) QVERIFY2(p.contains(key), key);
      }
      found = found || v["name"] == "softmax";
    }
    QVERIFY(found);
    const CliRun text = cli({"variants"});
    QCOMPARE(text.exit_code, 0);
    QVERIFY(text.out.contains("softmax"));
  }

  // attend on [L, d] inputs against a naive computation written here.
  void attend_matches_naive_attention() {
    const int L = 9, d = 4, dv = 3;
    const Tensor q = random_tensor({L, d}, 1), k = random_tensor({L, d}, 2), v = random_tensor({L, dv}, 3);
    write_npy(path("q.npy").toStdString(), q);
    write_npy(path("k.npy").toStdString(), k);
    write_npy(path("v.npy").toStdString(), v);
    const CliRun r = cli({"attend", "--variant", "softmax", "--q", path("q.npy"), "--k", path("k.npy"), "--v", path("v.npy"),
                          "--out", path("o.npy"), "--weights", path("w.npy"), "--trace", path("t.json")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const Tensor o = read_npy(path("o.npy").toStdString());
    const Tensor w = read_npy(path("w.npy").toStdString());
    QCOMPARE(o.shape(), (Shape{L, dv}));
    QCOMPARE(w.shape(), (Shape{L, L}));
    for (int i = 0; i < L; ++i) {
      double logits[L], m = -1e300, total = 0;
      for (int j = 0; j < L; ++j) {
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += q.at(i, c) * k.at(j, c);
        logits[j] = dot / std::sqrt(static_cast<double>(d));
        m = std::max(m, logits[j]);
      }
      for (int j = 0; j < L; ++j) total += std::exp(logits[j] - m);
      for (int c = 0; c < dv; ++c) {
        double expected = 0;
        for (int j = 0; j < L; ++j) expected += std::exp(logits[j] - m) / total * v.at(j, c);
        QVERIFY(std::abs(o.at(i, c) - expected) < 1e-5);
      }
      for (int j = 0; j < L; ++j) QVERIFY(std::abs(w.at(i, j) - std::exp(logits[j] - m) / total) < 1e-6);
    }
    std::ifstream trace_file(path("t.json").toStdString());
    const auto trace = nlohmann::json::parse(trace_file);
    QCOMPARE(trace["variant"].get<std::string>(), std::string("softmax"));
    QCOMPARE(trace["extras"]["kind"].get<std::string>(), std::string("softmax"));
    QCOMPARE(trace["extras"]["logsumexp"].size(), std::size_t{1});
  }

  void attend_multi_head_causal() {
    const Tensor q = random_tensor({3, 6, 4}, 4), k = random_tensor({3, 6, 4}, 5), v = random_tensor({3, 6, 2}, 6);
    write_npy(path("q3.npy").toStdString(), q);
    write_npy(path("k3.npy").toStdString(), k);
    write_npy(path("v3.npy").toStdString(), v);
    const CliRun r = cli({"attend", "--variant=softmax", "--q", path("q3.npy"), "--k", path("k3.npy"), "--v", path("v3.npy"),
                          "--causal", "--out", path("o3.npy"), "--weights", path("w3.npy")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    QCOMPARE(read_npy(path("o3.npy").toStdString()).shape(), (Shape{3, 6, 2}));
    const Tensor w = read_npy(path("w3.npy").toStdString());
    QCOMPARE(w.shape(), (Shape{3, 6, 6}));
    for (int h = 0; h < 3; ++h)
      for (int i = 0; i < 6; ++i)
        for (int j = i + 1; j < 6; ++j) QCOMPARE(w.at(h, i, j), 0.0f);
    // Causal position 0 attends only to itself: its output is v_0.
    const Tensor o = read_npy(path("o3.npy").toStdString());
    for (int h = 0; h < 3; ++h) QVERIFY(std::abs(o.at(h, 0, 1) - v.at(h, 0, 1)) < 1e-6f);
  }

  void attend_fails_cleanly() {
    const Tensor q = random_tensor({5, 4}, 7), k_bad = random_tensor({5, 3}, 8);
    write_npy(path("qa.npy").toStdString(), q);
    write_npy(path("kbad.npy").toStdString(), k_bad);
    // A float64 .npy written by hand.
    {
      std::ofstream f(path("f64.npy").toStdString(), std::ios::binary);
      std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (5, 4), }";
      header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
      header += '\n';
      const std::uint16_t len = static_cast<std::uint16_t>(header.size());
      f << "\x93NUMPY" << '\x01' << '\x00';
      f.write(reinterpret_cast<const char*>(&len), 2);
      f << header << std::string(5 * 4 * 8, '\0');
    }
    const QString qa = path("qa.npy");
    // An existing output must survive every failure below.
    QFile existing(path("keep.npy"));
    QVERIFY(existing.open(QIODevice::WriteOnly));
    existing.write("precious");
    existing.close();
    const QStringList base = {"attend", "--variant", "softmax", "--q", qa, "--k", qa, "--v", qa, "--out", path("keep.npy")};

    expect_failure(cli({"attend", "--variant", "softmax", "--k", qa, "--v", qa, "--out", path("x.npy")}), 2, "needs --q");
    expect_failure(cli(QStringList(base) << "--bogus"), 2, "unknown option '--bogus'");
    expect_failure(cli({"attend", "--variant", "softmax", "--q", path("missing.npy"), "--k", qa, "--v", qa, "--out", path("keep.npy")}),
                   1, "missing.npy");
    expect_failure(cli({"attend", "--variant", "softmax", "--q", path("f64.npy"), "--k", qa, "--v", qa, "--out", path("keep.npy")}),
                   1, "'<f8'");
    expect_failure(cli({"attend", "--variant", "softmax", "--q", qa, "--k", path("kbad.npy"), "--v", qa, "--out", path("keep.npy")}),
                   1, "head dim");
    expect_failure(cli({"attend", "--variant", "nope", "--q", qa, "--k", qa, "--v", qa, "--out", path("keep.npy")}), 1,
                   "unknown attention variant 'nope'");
    expect_failure(cli(QStringList(base) << "--param" << "blocks=3"), 1, "unknown parameter 'blocks'");
    expect_failure(cli(QStringList(base) << "--seed" << "-4"), 1, "--seed=-4");
    expect_failure(cli({"attend", "--variant", "softmax", "--q", qa, "--k", qa, "--v", qa, "--out", path("no/such/dir/o.npy")}), 1,
                   "does not exist");
    QCOMPARE(read_bytes(path("keep.npy")), QByteArray("precious"));
    QVERIFY(!QFile::exists(path("x.npy")));
  }

  void figure_renders_every_format() {
    for (const QString ext : {"png", "svg", "pdf", "npy", "csv"}) {
      const QString out = path("fig." + ext);
      const CliRun r = cli({"figure", "--text", "The animal didn't cross the street because it was too tired.", "--layer", "1",
                            "--head", "2", "--out", out});
      QVERIFY2(r.exit_code == 0, qPrintable(ext + ": " + r.err));
      const QByteArray bytes = read_bytes(out);
      QVERIFY2(bytes.size() > 100, qPrintable(ext));
      if (ext == "png") QVERIFY(!QImage(out).isNull());
      if (ext == "svg") QVERIFY(bytes.contains("<svg"));
      if (ext == "pdf") QVERIFY(bytes.startsWith("%PDF-"));
      if (ext == "npy") QCOMPARE(read_npy(out.toStdString()).shape(), (Shape{12, 12}));  // 11 words and the full stop
      if (ext == "csv") QVERIFY(bytes.contains("animal"));
    }
    const CliRun heads = cli({"figure", "--text", "one two three four", "--view", "heads", "--out", path("heads.png")});
    QVERIFY2(heads.exit_code == 0, qPrintable(heads.err));
    QVERIFY(!QImage(path("heads.png")).isNull());
  }

  // A session renders to exactly the figure its settings give on the command line.
  void figure_from_session_matches_explicit_arguments() {
    const nlohmann::json session = {{"format", "attnlab-session"}, {"version", 1}, {"text", "Das Mädchen liest ein Buch."},
                                    {"model", "tiny-encoder"}, {"variant", "softmax"}, {"params", nlohmann::json::object()},
                                    {"causal", true}, {"seeds", {{"weights", 7}, {"attention", 3}}}, {"layer", 2}, {"head", 5},
                                    {"view", "heatmap"}, {"colormap", "magma"}};
    std::ofstream(path("s.json").toStdString()) << session.dump(2);
    QCOMPARE(cli({"figure", "--session", path("s.json"), "--out", path("a.png")}).exit_code, 0);
    QCOMPARE(cli({"figure", "--text", "Das Mädchen liest ein Buch.", "--causal", "--weight-seed", "7", "--seed", "3", "--layer",
                  "2", "--head", "5", "--colormap", "magma", "--out", path("b.png")})
                 .exit_code,
             0);
    const QImage a(path("a.png")), b(path("b.png"));
    QVERIFY(!a.isNull());
    QCOMPARE(a, b);
    // Another weight seed changes the picture.
    QCOMPARE(cli({"figure", "--session", path("s.json"), "--weight-seed", "8", "--out", path("c.png")}).exit_code, 0);
    QVERIFY(QImage(path("c.png")) != a);
  }

  void figure_fails_cleanly() {
    const QStringList text = {"figure", "--text", "a short text"};
    expect_failure(cli(QStringList(text) << "--layer" << "9" << "--out" << path("f.png")), 1, "layer 9 does not exist");
    expect_failure(cli(QStringList(text) << "--head" << "8" << "--out" << path("f.png")), 1, "head 8 does not exist");
    expect_failure(cli(QStringList(text) << "--colormap" << "jet" << "--out" << path("f.png")), 1, "colormap 'jet'");
    expect_failure(cli(QStringList(text) << "--out" << path("f.bmp")), 1, ".png");
    expect_failure(cli(QStringList(text) << "--dpi" << "5" << "--out" << path("f.png")), 1, "dpi");
    expect_failure(cli(QStringList(text) << "--view" << "nope" << "--out" << path("f.png")), 1, "view 'nope'");
    expect_failure(cli(QStringList(text) << "--model" << "gigantic" << "--out" << path("f.png")), 1, "unknown model 'gigantic'");
    expect_failure(cli({"figure", "--text", "  ", "--out", path("f.png")}), 1, "no tokens");
    expect_failure(cli({"figure", "--text", "x", "--session", path("s.json"), "--out", path("f.png")}), 2, "exactly one of");
    expect_failure(cli({"figure", "--session", path("nonexistent.json"), "--out", path("f.png")}), 1, "nonexistent.json");
    std::ofstream(path("broken.json").toStdString()) << "{ not json";
    expect_failure(cli({"figure", "--session", path("broken.json"), "--out", path("f.png")}), 1, "not valid JSON");
    QVERIFY(!QFile::exists(path("f.png")));
    QVERIFY(!QFile::exists(path("f.bmp")));
  }

  // --view-option: the view's own options over the session's "view_options", checked against the
  // view's specs and, where the range depends on the result, against the result.
  void figure_view_options() {
    const QStringList lsh = {"figure", "--text", "The animal didn't cross the street because it was too tired.",
                             "--variant", "reformer_lsh", "--param", "bucket_size=4", "--view", "buckets"};
    QCOMPARE(cli(QStringList(lsh) << "--out" << path("round0.png")).exit_code, 0);
    const CliRun r1 = cli(QStringList(lsh) << "--view-option" << "round=1" << "--view-option" << "stage=sort"
                                           << "--out" << path("round1.png"));
    QVERIFY2(r1.exit_code == 0, qPrintable(r1.err));
    QCOMPARE(cli(QStringList(lsh) << "--view-option=round=1" << "--view-option=stage=sort" << "--out" << path("inline.png")).exit_code, 0);
    const QImage round0(path("round0.png")), round1(path("round1.png"));
    QVERIFY(!round0.isNull() && !round1.isNull());
    QVERIFY(round0 != round1);
    QCOMPARE(QImage(path("inline.png")), round1);
    // A session's view_options draw the same; --view-option overrides them.
    const nlohmann::json session = {{"format", "attnlab-session"}, {"version", 1},
                                    {"text", "The animal didn't cross the street because it was too tired."},
                                    {"variant", "reformer_lsh"}, {"params", {{"bucket_size", 4}}}, {"view", "buckets"},
                                    {"view_options", {{"round", 1}, {"stage", "sort"}}}};
    std::ofstream(path("lsh.json").toStdString()) << session.dump(2);
    QCOMPARE(cli({"figure", "--session", path("lsh.json"), "--out", path("session.png")}).exit_code, 0);
    QCOMPARE(QImage(path("session.png")), round1);
    QCOMPARE(cli({"figure", "--session", path("lsh.json"), "--view-option", "round=0", "--view-option", "stage=overview",
                  "--out", path("override.png")})
                 .exit_code,
             0);
    QCOMPARE(QImage(path("override.png")), round0);

    expect_failure(cli(QStringList(lsh) << "--view-option" << "rounds=1" << "--out" << path("bad.png")), 1,
                   "view 'buckets' has no option 'rounds'; its options: round, k, stage");
    expect_failure(cli(QStringList(lsh) << "--view-option" << "round=5" << "--out" << path("bad.png")), 1,
                   "round=5 is out of range: this result has hash rounds 0..1 (n_hashes = 2)");
    expect_failure(cli(QStringList(lsh) << "--view-option" << "k=0" << "--out" << path("bad.png")), 1,
                   "k=0 is not allowed; k: an integer in [1, 64]");
    expect_failure(cli(QStringList(lsh) << "--view-option" << "round" << "--out" << path("bad.png")), 1,
                   "view option 'round' must be written key=value");
    expect_failure(cli({"figure", "--text", "a short text", "--view-option", "round=1", "--out", path("bad.png")}), 1,
                   "view 'heatmap' has no options");
    // Another --view drops the session's options of the old view.
    const CliRun heatmap = cli({"figure", "--session", path("lsh.json"), "--view", "heatmap", "--out", path("heatmap.png")});
    QVERIFY2(heatmap.exit_code == 0, qPrintable(heatmap.err));
    QVERIFY(!QFile::exists(path("bad.png")));
    // The usage lists every view's options.
    const CliRun help = cli({"--help"});
    QVERIFY(help.out.contains("--view-option key=value"));
    QVERIFY(help.out.contains("buckets: --view-option round=0"));
    QVERIFY(help.out.contains("clusters: --view-option step=-1"));
  }

  void memory_depth_measures_both_stacks() {
    const QStringList small = {"memory-depth", "--layers", "3", "--length", "16", "--d-model", "32", "--heads", "4",
                               "--d-ff", "64"};
    const CliRun r = cli(QStringList(small) << "--out" << path("mem.csv"));
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const QList<QByteArray> lines = read_bytes(path("mem.csv")).trimmed().split('\n');
    QCOMPARE(lines.size(), 4);
    // Closed forms: reversible keeps 2·L·D floats at any depth; standard n·(2·L·D + L·d_ff).
    for (int n = 1; n <= 3; ++n) {
      const QList<QByteArray> f = lines[n].trimmed().split(',');
      QCOMPARE(f[0].toInt(), n);
      QCOMPARE(f[1].toLongLong(), qint64(n) * (2 * 16 * 32 + 16 * 64) * 4);
      QCOMPARE(f[2].toLongLong(), qint64(2) * 16 * 32 * 4);
      QVERIFY(f[3].toDouble() < 1e-4);
    }
    QCOMPARE(cli(QStringList(small) << "--out" << path("mem.png")).exit_code, 0);
    QVERIFY(!QImage(path("mem.png")).isNull());
    expect_failure(cli({"memory-depth", "--layers", "0", "--out", path("m.csv")}), 1, "--layers=0");
    expect_failure(cli({"memory-depth", "--out", path("m.txt")}), 1, "allowed extensions .png, .svg, .pdf, .csv, .json");
    expect_failure(cli({"memory-depth", "--d-model", "30", "--heads", "4", "--out", path("m.csv")}), 1, "divisible by heads");
    QVERIFY(!QFile::exists(path("m.csv")));
  }

  // compare: the metrics recomputed here from attend's own weights and output of the same
  // variant and seed, against a naive softmax (KL with the documented floor, top-k by an
  // independent sort).
  void compare_matches_metrics_recomputed_here() {
    const int H = 2, L = 12, d = 8, dv = 5, k = 4;
    const Tensor q = random_tensor({H, L, d}, 11), kk = random_tensor({H, L, d}, 12), v = random_tensor({H, L, dv}, 13);
    write_npy(path("cq.npy").toStdString(), q);
    write_npy(path("ck.npy").toStdString(), kk);
    write_npy(path("cv.npy").toStdString(), v);
    const QStringList inputs = {"--q", path("cq.npy"), "--k", path("ck.npy"), "--v", path("cv.npy")};
    const CliRun a = cli(QStringList{"attend", "--variant", "performer", "--param", "n_features=16", "--seed", "3", "--out",
                                     path("co.npy"), "--weights", path("cw.npy")} + inputs);
    QVERIFY2(a.exit_code == 0, qPrintable(a.err));
    const CliRun r = cli(QStringList{"compare", "--variant", "performer", "--param", "n_features=16", "--seed", "3", "--topk",
                                     QString::number(k), "--json", path("c.json")} + inputs);
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    QVERIFY(r.err.isEmpty());
    const Tensor o = read_npy(path("co.npy").toStdString()), w = read_npy(path("cw.npy").toStdString());
    double diff = 0, norm = 0, kl = 0, overlap = 0;
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < L; ++i) {
        std::vector<double> exact(L);
        double m = -1e300, total = 0;
        for (int j = 0; j < L; ++j) {
          double dot = 0;
          for (int c = 0; c < d; ++c) dot += q.at(h, i, c) * kk.at(h, j, c);
          exact[j] = dot / std::sqrt(static_cast<double>(d));
          m = std::max(m, exact[j]);
        }
        for (int j = 0; j < L; ++j) total += (exact[j] = std::exp(exact[j] - m));
        for (double& e : exact) e /= total;
        for (int c = 0; c < dv; ++c) {
          double oe = 0;
          for (int j = 0; j < L; ++j) oe += exact[j] * v.at(h, j, c);
          diff += (o.at(h, i, c) - oe) * (o.at(h, i, c) - oe);
          norm += oe * oe;
        }
        double mass = 0;
        for (int j = 0; j < L; ++j) mass += std::max(0.0f, w.at(h, i, j));
        for (int j = 0; j < L; ++j) kl += exact[j] * std::log(exact[j] / std::max(std::max(0.0f, w.at(h, i, j)) / mass, 1e-9));
        std::vector<int> te(L), ta(L);
        std::iota(te.begin(), te.end(), 0);
        std::iota(ta.begin(), ta.end(), 0);
        std::stable_sort(te.begin(), te.end(), [&](int x, int y) { return exact[x] > exact[y]; });
        std::stable_sort(ta.begin(), ta.end(), [&](int x, int y) { return w.at(h, i, x) > w.at(h, i, y); });
        int common = 0;
        for (int x = 0; x < k; ++x)
          for (int y = 0; y < k; ++y) common += te[x] == ta[y];
        overlap += static_cast<double>(common) / k;
      }
    const auto j = nlohmann::json::parse(read_bytes(path("c.json")).toStdString());
    QVERIFY(std::abs(j["rel_output_error"].get<double>() - std::sqrt(diff / norm)) < 1e-4);
    QVERIFY(std::abs(j["mean_row_kl"].get<double>() - kl / (H * L)) < 1e-4);
    QVERIFY(std::abs(j["topk_overlap"].get<double>() - overlap / (H * L)) < 1e-9);
    QVERIFY(j["rel_output_error"].get<double>() > 0.01);  // a real approximation
    QCOMPARE(j["topk"].get<int>(), k);
    QCOMPARE(j["rows"].get<int>(), H * L);
    QCOMPARE(j["variant"].get<std::string>(), std::string("performer"));
    QCOMPARE(j["params"]["n_features"].get<int>(), 16);
  }

  // BigBird whose window covers every block is exact attention: no error, full overlap.
  void compare_full_window_bigbird_is_exact() {
    const Tensor q = random_tensor({16, 8}, 21), k = random_tensor({16, 8}, 22), v = random_tensor({16, 4}, 23);
    write_npy(path("bq.npy").toStdString(), q);
    write_npy(path("bk.npy").toStdString(), k);
    write_npy(path("bv.npy").toStdString(), v);
    const CliRun r = cli({"compare", "--variant", "bigbird", "--param", "block_size=2", "--param", "window_blocks=15",
                          "--param", "global_blocks=0", "--param", "random_blocks=0", "--causal", "--q", path("bq.npy"),
                          "--k", path("bk.npy"), "--v", path("bv.npy"), "--json", path("b.json")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const auto j = nlohmann::json::parse(read_bytes(path("b.json")).toStdString());
    QVERIFY(j["rel_output_error"].get<double>() < 1e-5);
    QVERIFY(j["mean_row_kl"].get<double>() < 1e-5);
    QCOMPARE(j["topk_overlap"].get<double>(), 1.0);
    QCOMPARE(j["topk"].get<int>(), 8);
    QCOMPARE(j["causal"].get<bool>(), true);
  }

  void compare_fails_cleanly() {
    const Tensor q = random_tensor({6, 4}, 1), wrong = random_tensor({5, 4}, 2);
    write_npy(path("fq.npy").toStdString(), q);
    write_npy(path("fw.npy").toStdString(), wrong);
    const QString out = path("f.json");
    expect_failure(cli({"compare", "--variant", "performer", "--q", path("fq.npy"), "--k", path("fq.npy"), "--json", out}), 2,
                   "compare needs --v");
    expect_failure(cli({"compare", "--variant", "nope", "--q", path("fq.npy"), "--k", path("fq.npy"), "--v", path("fq.npy"),
                        "--json", out}),
                   1, "nope");
    expect_failure(cli({"compare", "--variant", "performer", "--q", path("fq.npy"), "--k", path("fw.npy"), "--v",
                        path("fq.npy"), "--causal", "--json", out}),
                   1, "k and v must have the same length");
    expect_failure(cli({"compare", "--variant", "performer", "--q", path("missing.npy"), "--k", path("fq.npy"), "--v",
                        path("fq.npy"), "--json", out}),
                   1, "missing.npy");
    expect_failure(cli({"compare", "--variant", "performer", "--param", "n_features=0", "--q", path("fq.npy"), "--k",
                        path("fq.npy"), "--v", path("fq.npy"), "--json", out}),
                   1, "n_features");
    expect_failure(cli({"compare", "--variant", "performer", "--topk", "0", "--q", path("fq.npy"), "--k", path("fq.npy"),
                        "--v", path("fq.npy"), "--json", out}),
                   1, "--topk=0");
    expect_failure(cli({"compare", "--variant", "performer", "--q", path("fq.npy"), "--k", path("fq.npy"), "--v",
                        path("fq.npy"), "--json", path("nowhere/f.json")}),
                   1, "does not exist");
    QVERIFY(!QFile::exists(out));
  }

  // A sweep over BigBird's window: more blocks in view, less error, none once it covers all.
  void sweep_bigbird_window_decreases_error() {
    const CliRun r = cli({"sweep", "--variant", "bigbird", "--sweep", "window_blocks=1,3,7,15", "--param", "block_size=8",
                          "--param", "global_blocks=0", "--param", "random_blocks=0", "--seeds", "2", "--length", "64",
                          "--dim", "16", "--json", path("s.json"), "--out", path("s.png")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    QVERIFY(r.err.isEmpty());  // no progress when stderr is not a terminal
    const auto j = nlohmann::json::parse(read_bytes(path("s.json")).toStdString());
    QCOMPARE(j["variant"].get<std::string>(), std::string("bigbird"));
    QCOMPARE(j["sweep"].get<std::string>(), std::string("window_blocks"));
    QCOMPARE(j["seeds"].get<int>(), 2);
    QCOMPARE(j["length"].get<int>(), 64);
    const auto& rows = j["rows"];
    QCOMPARE(rows.size(), std::size_t{4});
    for (std::size_t i = 0; i + 1 < rows.size(); ++i)
      QVERIFY(rows[i]["rel_output_error"]["mean"].get<double>() > rows[i + 1]["rel_output_error"]["mean"].get<double>());
    QVERIFY(rows[3]["rel_output_error"]["max"].get<double>() < 1e-5);
    QCOMPARE(rows[3]["topk_overlap"]["min"].get<double>(), 1.0);
    for (const auto& row : rows) {
      QVERIFY(row["rel_output_error"]["min"].get<double>() <= row["rel_output_error"]["mean"].get<double>());
      QVERIFY(row.contains("mean_row_kl") && row["mean_row_kl"].contains("std"));
    }
    QCOMPARE(j["fits"][0]["metric"].get<std::string>(), std::string("rel_output_error"));
    QVERIFY(j["fits"][0]["slope"].get<double>() < 0);
    QVERIFY(!QImage(path("s.png")).isNull());

    const CliRun csv = cli({"sweep", "--variant", "performer", "--sweep", "n_features=8,32", "--seeds", "1", "--length", "32",
                            "--dim", "8", "--json", path("p.json"), "--out", path("p.csv")});
    QVERIFY2(csv.exit_code == 0, qPrintable(csv.err));
    const QByteArray text = read_bytes(path("p.csv"));
    QVERIFY(text.startsWith("series,value,numeric,rel_output_error_mean"));
    QCOMPARE(text.count("\r\n"), 3);
  }

  // bench: one row per (variant, length) with the fields issue 6 names, and slopes that are the
  // least-squares fit over the largest half of the lengths, recomputed here from the rows. No
  // figure is checked against a time (benchmarks are not timed tests).
  void bench_writes_rows_and_fits() {
    const CliRun r = cli({"bench", "--variants", "softmax,linear", "--lengths", "256,64,128,512", "--repeats", "2",
                          "--dim", "16", "--json", path("bench.json")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const auto j = nlohmann::json::parse(read_bytes(path("bench.json")).toStdString());
    QVERIFY(j.at("machine").contains("device"));
    QCOMPARE(j.at("rows").size(), std::size_t{8});
    for (const auto& row : j.at("rows")) {
      QCOMPARE(row.at("status").get<std::string>(), std::string("ok"));
      QCOMPARE(row.at("device").get<std::string>(), std::string("cpu"));
      QVERIFY(row.at("min_ms").get<double>() <= row.at("median_ms").get<double>());
      QVERIFY(row.at("median_ms").get<double>() <= row.at("max_ms").get<double>());
      QVERIFY(row.at("peak_bytes").get<std::int64_t>() >= 0);
      // The cost model's estimate, made before the call, bounds what the call held.
      QVERIFY(row.at("estimated_bytes").get<std::int64_t>() >= row.at("peak_bytes").get<std::int64_t>());
      QVERIFY(row.contains("high_water_bytes"));
      QVERIFY(row.at("high_water_bytes").is_null() || row.at("high_water_bytes").get<std::int64_t>() > 0);
    }
    QCOMPARE(j["rows"][0]["length"].get<int>(), 64);  // lengths sorted
    for (const auto& fit : j.at("fits")) {
      const std::string variant = fit.at("variant").get<std::string>();
      std::vector<double> x, t, m;
      for (const auto& row : j.at("rows"))
        if (row.at("variant") == variant && row.at("length").get<int>() >= 256) {  // largest half: 256, 512
          x.push_back(row.at("length").get<double>());
          t.push_back(row.at("median_ms").get<double>());
          m.push_back(row.at("peak_bytes").get<double>());
        }
      QCOMPARE(fit.at("points").get<int>(), 2);
      const double time_slope = std::log(t[1] / t[0]) / std::log(x[1] / x[0]);
      QVERIFY(std::abs(fit.at("time_slope").get<double>() - time_slope) < 1e-9);
      if (m[0] > 0 && m[1] > 0)
        QVERIFY(std::abs(fit.at("memory_slope").get<double>() - std::log(m[1] / m[0]) / std::log(x[1] / x[0])) < 1e-9);
    }
  }

  // A preset's whole forward pass as an entry, and a length the cost model refuses before running
  // (q, k, v alone would take terabytes): a row with a status, not a crash or the OS's killer.
  void bench_runs_models_and_refuses_what_cannot_fit() {
    const CliRun r = cli({"bench", "--variants", "model:tiny-encoder,softmax", "--lengths", "64,128,16777216", "--repeats",
                          "1", "--dim", "512", "--heads", "64", "--causal", "--json", path("bench-model.json")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const auto j = nlohmann::json::parse(read_bytes(path("bench-model.json")).toStdString());
    QCOMPARE(j.at("rows").size(), std::size_t{6});
    for (const auto& row : j.at("rows")) {
      const std::string status = row.at("status").get<std::string>();
      if (row.at("length").get<int>() < 1000) {
        QVERIFY2(status == "ok", status.c_str());
        QVERIFY(row.at("estimated_bytes").get<std::int64_t>() >= row.at("peak_bytes").get<std::int64_t>());
        QVERIFY(row.at("median_ms").get<double>() > 0);
      } else {
        QVERIFY(row.at("median_ms").is_null() && row.at("peak_bytes").is_null());
      }
    }
    QCOMPARE(j["rows"][0]["variant"].get<std::string>(), std::string("model:tiny-encoder"));
    // The model takes at most 2^20 tokens; softmax at 2^24 × 512 × 64 heads needs terabytes.
    QVERIFY2(j["rows"][2]["status"].get<std::string>().find("takes at most") != std::string::npos,
             j["rows"][2]["status"].dump().c_str());
    const std::string refused = j["rows"][5]["status"].get<std::string>();
    QVERIFY2(refused.rfind("skipped: needs about ", 0) == 0 && refused.find("(cost model)") != std::string::npos &&
                 refused.find("available") != std::string::npos,
             refused.c_str());
    QVERIFY(j["rows"][5]["estimated_bytes"].get<std::int64_t>() > 0);
  }

  // --out draws the curves (or writes the rows as CSV) beside the JSON; a length predicted from the
  // measured slope to take longer than the time budget is not started (softmax at 2^20 tokens
  // would run for minutes): at least slope 1 from 128 tokens is 8192 × the 128-token time.
  void bench_draws_curves_and_predicts_the_time_budget() {
    const CliRun r = cli({"bench", "--variants", "softmax,linear", "--lengths", "64,128,1048576", "--repeats", "1", "--dim",
                          "16", "--time-budget-ms", "10", "--json", path("bench-out.json"), "--out", path("bench.png")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const QImage image(path("bench.png"));
    QVERIFY(!image.isNull() && image.width() > 400);
    const auto j = nlohmann::json::parse(read_bytes(path("bench-out.json")).toStdString());
    // Normally "skipped: predicted …"; on a loaded machine a shorter length may already have run
    // past the 10 ms budget ("skipped: a shorter length …"). Either way 2^20 is never started.
    const std::string predicted = j["rows"][2]["status"].get<std::string>();
    QVERIFY2(predicted.rfind("skipped: ", 0) == 0 && predicted.find("time budget") != std::string::npos,
             predicted.c_str());
    const CliRun csv = cli({"bench", "--variants", "linear", "--lengths", "64,128", "--repeats", "1", "--dim", "8", "--json",
                            path("bench-csv.json"), "--out", path("bench.csv")});
    QVERIFY2(csv.exit_code == 0, qPrintable(csv.err));
    QVERIFY(read_bytes(path("bench.csv")).count('\n') >= 3);  // a header and the two rows
    const CliRun dec = cli({"decoding", "--methods", "softmax_kv_cache,linear_recurrent", "--tokens", "16,32", "--dim", "8",
                            "--repeats", "1", "--json", path("dec-out.json"), "--out", path("dec.svg")});
    QVERIFY2(dec.exit_code == 0, qPrintable(dec.err));
    QVERIFY(read_bytes(path("dec.svg")).contains("<svg"));
    expect_failure(cli({"bench", "--variants", "linear", "--lengths", "64", "--json", path("x.json"), "--out", path("x.gif")}),
                   1, "allowed extensions");
    QVERIFY(!QFile::exists(path("x.json")) && !QFile::exists(path("x.gif")));
  }

  void bench_fails_cleanly() {
    const QString out = path("bad_bench.json");
    expect_failure(cli({"bench", "--variants", "softmax", "--json", out}), 2, "bench needs --lengths");
    expect_failure(cli({"bench", "--variants", "softmax,,linear", "--lengths", "64", "--json", out}), 2, "empty value");
    expect_failure(cli({"bench", "--variants", "nope", "--lengths", "64", "--json", out}), 1, "nope");
    expect_failure(cli({"bench", "--variants", "model:nope", "--lengths", "64", "--json", out}), 1, "unknown model 'nope'");
    expect_failure(cli({"bench", "--variants", "softmax", "--lengths", "64,64", "--json", out}), 1, "listed twice");
    expect_failure(cli({"bench", "--variants", "softmax", "--lengths", "1", "--json", out}), 1, "length=1 is not allowed");
    expect_failure(cli({"bench", "--variants", "softmax", "--lengths", "64", "--device", "tpu", "--json", out}), 2,
                   "expected cpu or cuda");
    std::string why;
    if (!gpu::gpu_available(&why))
    {
      expect_failure(cli({"bench", "--variants", "softmax", "--lengths", "64", "--device", "cuda", "--json", out}), 1,
                     "no GPU to run on");
      // A model preset on CUDA runs whole on the GPU (cuda/device_model.h): here, the same refusal.
      expect_failure(cli({"bench", "--variants", "model:tiny-encoder", "--lengths", "64", "--device", "cuda", "--json",
                          out}),
                     1, "no GPU to run on");
    }
    QVERIFY(!QFile::exists(out));
  }

  // decoding: one row per (method, N) with the fields of bench/decoding.h; the cache and the
  // recurrent states report their closed-form sizes.
  void decoding_writes_rows() {
    const CliRun r = cli({"decoding", "--methods", "softmax_kv_cache,linear_recurrent,performer_recurrent,softmax_no_cache",
                          "--tokens", "64,16", "--dim", "16", "--heads", "2", "--repeats", "2", "--json", path("dec.json")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const auto j = nlohmann::json::parse(read_bytes(path("dec.json")).toStdString());
    QVERIFY(j.at("machine").contains("device"));
    QCOMPARE(j.at("options").at("heads").get<int>(), 2);
    QCOMPARE(j.at("rows").size(), std::size_t{8});
    QCOMPARE(j["rows"][0]["tokens"].get<int>(), 16);  // token counts sorted
    for (const auto& row : j.at("rows")) {
      QCOMPARE(row.at("status").get<std::string>(), std::string("ok"));
      QVERIFY(row.at("min_ms").get<double>() <= row.at("median_ms").get<double>());
      QVERIFY(row.at("median_ms").get<double>() <= row.at("max_ms").get<double>());
      QVERIFY(row.at("tokens_per_second").get<double>() > 0);
      QVERIFY(row.at("last_step_us").get<double>() > 0);
      const std::string method = row.at("method").get<std::string>();
      const std::int64_t N = row.at("tokens").get<std::int64_t>(), state = row.at("state_bytes").get<std::int64_t>();
      if (method == "softmax_kv_cache") QCOMPARE(state, 2 * 2 * N * 16 * 4);
      if (method == "linear_recurrent") QCOMPARE(state, std::int64_t{2 * (16 * 16 + 16) * 4});
    }
  }

  void decoding_fails_cleanly() {
    const QString out = path("bad_decoding.json");
    expect_failure(cli({"decoding", "--methods", "softmax_kv_cache", "--json", out}), 2, "decoding needs --tokens");
    expect_failure(cli({"decoding", "--tokens", "8", "--json", out}), 2, "decoding needs --methods");
    expect_failure(cli({"decoding", "--methods", "rnn", "--tokens", "8", "--json", out}), 1, "unknown decoding method 'rnn'");
    expect_failure(cli({"decoding", "--methods", "linear_recurrent,,softmax_kv_cache", "--tokens", "8", "--json", out}), 2,
                   "empty value");
    expect_failure(cli({"decoding", "--methods", "linear_recurrent", "--tokens", "0", "--json", out}), 1,
                   "expected a positive integer");
    expect_failure(cli({"decoding", "--methods", "linear_recurrent", "--tokens", "8,x", "--json", out}), 1,
                   "expected an index");
    expect_failure(cli({"decoding", "--methods", "linear_recurrent", "--tokens", "2000000", "--json", out}), 1,
                   "tokens=2e+06 is not allowed");
    expect_failure(cli({"decoding", "--methods", "linear_recurrent", "--tokens", "8,8", "--json", out}), 1, "listed twice");
    expect_failure(cli({"decoding", "--methods", "linear_recurrent", "--tokens", "8", "--heads", "100", "--json", out}), 1,
                   "heads=100 is not allowed");
    expect_failure(cli({"decoding", "--methods", "linear_recurrent", "--tokens", "8", "--causal", "--json", out}), 2,
                   "unknown option '--causal'");
    expect_failure(cli({"decoding", "--methods", "linear_recurrent", "--tokens", "8", "--json", path("no/such/dir/x.json")}),
                   1, "does not exist");
    QVERIFY(!QFile::exists(out));
  }

  void sweep_fails_cleanly() {
    const QString out = path("bad.json");
    const QStringList tail = {"--seeds", "2", "--length", "16", "--dim", "4", "--json", out};
    expect_failure(cli(QStringList{"sweep", "--variant", "performer"} + tail), 2, "sweep needs --sweep");
    expect_failure(cli(QStringList{"sweep", "--variant", "performer", "--sweep", "n_features"} + tail), 2,
                   "expected KEY=V1,V2,...");
    expect_failure(cli(QStringList{"sweep", "--variant", "performer", "--sweep", "n_features=8,,16"} + tail), 2, "empty value");
    expect_failure(cli({"sweep", "--variant", "performer", "--sweep", "n_features=8", "--json", out}), 2, "sweep needs --seeds");
    expect_failure(cli(QStringList{"sweep", "--variant", "performer", "--sweep", "n_features=8", "--qk-std", "0"} + tail), 1,
                   "qk_std=0 is not allowed");
    expect_failure(cli(QStringList{"sweep", "--variant", "performer", "--sweep", "features=8,16"} + tail), 1, "n_features");
    expect_failure(cli(QStringList{"sweep", "--variant", "performer", "--sweep", "n_features=8,5000"} + tail), 1,
                   "n_features: an integer in [1, 4096]");
    expect_failure(cli({"sweep", "--variant", "performer", "--sweep", "n_features=8", "--seeds", "65", "--json", out}), 1,
                   "seeds: an integer in [1, 64]");
    expect_failure(cli(QStringList{"sweep", "--variant", "performer", "--sweep", "n_features=8", "--out", path("c.txt")} + tail),
                   1, "allowed extensions .png, .svg, .pdf, .csv");
    expect_failure(cli(QStringList{"sweep", "--variant", "performer", "--sweep", "n_features=8", "--dpi", "5", "--out",
                                   path("sweep-dpi.png")} + tail),
                   1, "--dpi=5");
    QVERIFY(!QFile::exists(out));
    QVERIFY(!QFile::exists(path("sweep-dpi.png")));
  }

  void usage_errors() {
    expect_failure(cli({}), 2, "");
    expect_failure(cli({"frobnicate"}), 2, "unknown command 'frobnicate'");
    const CliRun help = cli({"--help"});
    QCOMPARE(help.exit_code, 0);
    QVERIFY(help.out.contains("attend"));
    QVERIFY(help.out.contains("compare --variant NAME"));
    QVERIFY(help.out.contains("sweep --variant NAME --sweep KEY=V1,V2,..."));
    QVERIFY(help.out.contains("decoding --methods A,B,... --tokens N1,N2,..."));
    QVERIFY(help.out.contains("model:NAME"));
    const CliRun none = cli({});
    QVERIFY(none.err.contains("decoding"));
    const CliRun info = cli({"info"});
    QCOMPARE(info.exit_code, 0);
    QVERIFY(info.out.contains("CPU") || info.out.contains("CUDA"));
  }

  // bleu: hyp "the cat sat on the" / "the dog ran." against "the cat sat on the mat" / "the dog
  // ran." (13a: "ran ." is two tokens). Sentence 1: 5 tokens, all n-grams in the reference: 5/5,
  // 4/4, 3/3, 2/2; sentence 2 identical, 4 tokens: 4/4, 3/3, 2/2, 1/1. Sums 9/9, 7/7, 5/5, 3/3:
  // precisions 100; c = 9, r = 10: BP = exp(1 - 10/9) = 0.894839, BLEU = 89.4839. The hypothesis
  // file ends with a newline (no third line), the reference file has CRLF line ends and none at
  // the end.
  void bleu_prints_the_signature_line() {
    const auto write = [&](const QString& name, const QByteArray& bytes) {
      QFile f(path(name));
      QVERIFY(f.open(QIODevice::WriteOnly) && f.write(bytes) == bytes.size());
    };
    write("bleu_hyp.txt", "the cat sat on the\nthe dog ran.\n");
    write("bleu_ref.txt", "the cat sat on the mat\r\nthe dog ran.");
    const CliRun r = cli({"bleu", "--hyp", path("bleu_hyp.txt"), "--ref", path("bleu_ref.txt")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    QCOMPARE(r.out, QString("BLEU = 89.48 100.0/100.0/100.0/100.0 (BP = 0.895 ratio = 0.900 hyp_len = 9 ref_len = 10)\n"));
    QVERIFY(r.err.isEmpty());
    // Two reference files: sacreBLEU's README example and the line it publishes for it.
    write("readme_hyp.txt", "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n");
    write("readme_ref1.txt", "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n");
    write("readme_ref2.txt", "The dog had bit the man.\nNo one was surprised.\nThe man had bitten the dog.\n");
    const CliRun readme = cli({"bleu", "--hyp", path("readme_hyp.txt"), "--ref", path("readme_ref1.txt"), "--ref",
                               path("readme_ref2.txt")});
    QVERIFY2(readme.exit_code == 0, qPrintable(readme.err));
    QCOMPARE(readme.out, QString("BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)\n"));
  }

  // The same corpus as above with --json; then with capitals in the hypothesis, which only
  // --lowercase forgives.
  void bleu_json_fields() {
    const auto write = [&](const QString& name, const QByteArray& bytes) {
      QFile f(path(name));
      QVERIFY(f.open(QIODevice::WriteOnly) && f.write(bytes) == bytes.size());
    };
    write("bleu_json_hyp.txt", "the cat sat on the\nthe dog ran.\n");
    write("bleu_json_ref.txt", "the cat sat on the mat\nthe dog ran.\n");
    const CliRun r = cli({"bleu", "--json", "--hyp", path("bleu_json_hyp.txt"), "--ref", path("bleu_json_ref.txt")});
    QVERIFY2(r.exit_code == 0, qPrintable(r.err));
    const auto j = nlohmann::json::parse(r.out.toStdString());
    const double bp = std::exp(1.0 - 10.0 / 9.0);
    QVERIFY(std::abs(j.at("score").get<double>() - 100.0 * bp) < 1e-9);
    QVERIFY(std::abs(j.at("bp").get<double>() - bp) < 1e-12);
    QVERIFY(std::abs(j.at("ratio").get<double>() - 0.9) < 1e-12);
    QCOMPARE(j.at("hyp_len").get<int>(), 9);
    QCOMPARE(j.at("ref_len").get<int>(), 10);
    QCOMPARE(j.at("precisions").get<std::vector<double>>(), (std::vector<double>{100, 100, 100, 100}));
    QCOMPARE(j.at("correct").get<std::vector<int>>(), (std::vector<int>{9, 7, 5, 3}));
    QCOMPARE(j.at("total").get<std::vector<int>>(), (std::vector<int>{9, 7, 5, 3}));
    // "The Cat" against "the cat": case-sensitive, 2 of the 9 unigrams miss; lowercased, the
    // score is the one above.
    write("bleu_caps_hyp.txt", "The Cat sat on the\nthe dog ran.\n");
    const CliRun mixed = cli({"bleu", "--json", "--hyp", path("bleu_caps_hyp.txt"), "--ref", path("bleu_json_ref.txt")});
    QVERIFY2(mixed.exit_code == 0, qPrintable(mixed.err));
    QCOMPARE(nlohmann::json::parse(mixed.out.toStdString()).at("correct")[0].get<int>(), 7);
    const CliRun lower = cli({"bleu", "--lowercase", "--json", "--hyp", path("bleu_caps_hyp.txt"), "--ref",
                              path("bleu_json_ref.txt")});
    QVERIFY2(lower.exit_code == 0, qPrintable(lower.err));
    QVERIFY(std::abs(nlohmann::json::parse(lower.out.toStdString()).at("score").get<double>() - 100.0 * bp) < 1e-9);
  }

  void bleu_fails_cleanly() {
    const auto write = [&](const QString& name, const QByteArray& bytes) {
      QFile f(path(name));
      QVERIFY(f.open(QIODevice::WriteOnly) && f.write(bytes) == bytes.size());
    };
    write("bleu2.txt", "a b c d\ne f g h\n");
    write("bleu3.txt", "a b c d\ne f g h\ni j\n");
    write("bleu_gap.txt", "a b c d\n\n");
    const QString two = path("bleu2.txt"), three = path("bleu3.txt");
    expect_failure(cli({"bleu", "--hyp", path("no_such.txt"), "--ref", two}), 1, path("no_such.txt") + ": cannot open");
    expect_failure(cli({"bleu", "--hyp", two, "--ref", path("no_such.txt")}), 1, path("no_such.txt"));
    expect_failure(cli({"bleu", "--hyp", two, "--ref", dir_.path()}), 1, "is a folder");
    expect_failure(cli({"bleu", "--hyp", two, "--ref", three}), 1, two + " has 2 lines but " + three + " has 3");
    expect_failure(cli({"bleu", "--hyp", two, "--ref", two, "--ref", three}), 1, "has 3");
    expect_failure(cli({"bleu", "--hyp", two, "--ref", path("bleu_gap.txt")}), 1, "line 2 is empty");
    expect_failure(cli({"bleu", "--hyp", two, "--ref", two, "--bogus"}), 2, "unknown option '--bogus'");
    expect_failure(cli({"bleu", "--hyp", two}), 2, "bleu needs --ref");
    expect_failure(cli({"bleu", "--ref", two}), 2, "bleu needs --hyp");
    expect_failure(cli({"bleu", "--hyp", two, "--hyp", three, "--ref", two}), 2, "--hyp given more than once");
    expect_failure(cli({"bleu", "--hyp", two, "--ref"}), 2, "--ref needs a value");
    expect_failure(cli({"bleu", "--hyp", two, "--ref", two, "extra"}), 2, "unexpected argument 'extra'");
  }
  // A tiny data folder (syllable "German" → reversed syllables "English"), then train, translate
  // and perplexity as a user runs them. The models are untrained (a few steps): this checks the
  // commands, their files and their output formats, not translation quality.
  void train_translate_and_perplexity_end_to_end() {
    const QString data = path("tiny_data");
    QVERIFY(QDir().mkpath(data));
    const char* syllables[] = {"ka", "lo", "mi", "tu", "ber", "sch", "än", "ge", "st", "ri", "fo", "nu", "wel", "za",
                               "qu", "ix", "öl", "dr", "ap", "em", "ho", "ung", "ei", "tz", "pl", "ma", "ve", "sk"};
    Rng rng(3);
    std::vector<std::string> sides;
    std::string train_tsv, valid_tsv;
    for (int i = 0; i < 1500; ++i) {
      std::string de, en;
      const int words = 1 + static_cast<int>(rng.below(6));
      for (int w = 0; w < words; ++w) {
        std::vector<std::string> parts;
        for (std::uint64_t p = 0, n = 1 + rng.below(3); p < n; ++p) parts.push_back(syllables[rng.below(28)]);
        de += (w ? " " : "");
        en += (w ? " " : "");
        for (std::size_t p = 0; p < parts.size(); ++p) {
          de += parts[p];
          en += parts[parts.size() - 1 - p];
        }
      }
      sides.push_back(de);
      sides.push_back(en);
      (i % 10 ? train_tsv : valid_tsv) += de + "\t" + en + "\t" + (words == 1 ? "word" : "phrase") + "\n";
    }
    train_sentencepiece(sides, data.toStdString(), {256, 1, 2});
    QFile train_file(data + "/train.tsv"), valid_file(data + "/valid.tsv");
    QVERIFY(train_file.open(QIODevice::WriteOnly) && valid_file.open(QIODevice::WriteOnly));
    train_file.write(QByteArray::fromStdString(train_tsv));
    valid_file.write(QByteArray::fromStdString(valid_tsv));
    train_file.close();
    valid_file.close();

    const QString model = path("tiny_model");
    const QStringList sizes = {"--d-model", "16", "--heads", "2", "--d-ff", "24", "--layers", "1", "--max-length", "24",
                               "--batch-tokens", "400", "--warmup", "2", "--report-every", "1"};
    const CliRun train = cli(QStringList{"train", "--data", data, "--out", model, "--steps", "6", "--eval-every", "3"} + sizes);
    QVERIFY2(train.exit_code == 0, qPrintable(train.err));
    QVERIFY(train.out.startsWith("trained seq2seq model"));
    QVERIFY2(train.err.contains("step 3/6") && train.err.contains("valid ppl") && train.err.contains("tok/s"), qPrintable(train.err));
    for (const char* file : {"model.safetensors", "config.json", "tokenizer.model", "train_log.jsonl", "checkpoint.safetensors"}) {
      QVERIFY2(QFile::exists(model + "/" + file), file);
    }

    const CliRun one = cli({"translate", "kalo mitu.", "--model", model, "--json"});
    QVERIFY2(one.exit_code == 0, qPrintable(one.err));
    const nlohmann::json j = nlohmann::json::parse(one.out.toStdString());
    for (const char* key : {"source_tokens", "target_tokens", "translation", "cross_attention", "ms"}) QVERIFY2(j.contains(key), key);
    const std::size_t S = j["source_tokens"].size(), T = j["target_tokens"].size();
    QCOMPARE(j["cross_attention"].size(), std::size_t(1));      // layers
    QCOMPARE(j["cross_attention"][0].size(), std::size_t(2));   // heads
    QCOMPARE(j["cross_attention"][0][1].size(), T);             // target rows
    QCOMPARE(j["cross_attention"][0][1][0].size(), S);          // source columns
    double row = 0;
    for (const auto& v : j["cross_attention"][0][0][0]) row += v.get<double>();
    QVERIFY(std::abs(row - 1.0) < 1e-5);
    QVERIFY(j["ms"].get<double>() > 0);

    const CliRun beam = cli({"translate", "kalo mitu.", "--model", model, "--beam", "4", "--attention", "performer",
                             "--param", "n_features=8"});
    QVERIFY2(beam.exit_code == 0, qPrintable(beam.err));
    QCOMPARE(beam.out.count('\n'), 1);

    // A file: one output line per input line; a line too long for the model is named, left empty
    // in the output, and makes the exit status 1.
    QFile in(path("tiny_in.txt"));
    QVERIFY(in.open(QIODevice::WriteOnly));
    in.write("kalo mitu.\n" + QByteArray("kaberschän ").repeated(30) + "\n\nfonu za.\n");
    in.close();
    const CliRun file = cli({"translate", "--file", path("tiny_in.txt"), "--model", model});
    expect_failure(file, 1, "line 2");
    QCOMPARE(file.out.count('\n'), 4);
    QVERIFY(file.out.split('\n')[1].isEmpty());

    const CliRun lm = cli(QStringList{"train", "--data", data, "--out", path("tiny_lm"), "--kind", "lm", "--steps", "3"} + sizes);
    QVERIFY2(lm.exit_code == 0, qPrintable(lm.err));
    QFile text(path("tiny_en.txt"));
    QVERIFY(text.open(QIODevice::WriteOnly));
    text.write("lo ka tumi.\nza wel\n");
    text.close();
    const CliRun ppl = cli({"perplexity", "--model", path("tiny_lm"), "--file", path("tiny_en.txt"), "--json"});
    QVERIFY2(ppl.exit_code == 0, qPrintable(ppl.err));
    const nlohmann::json p = nlohmann::json::parse(ppl.out.toStdString());
    QVERIFY(p["perplexity"].get<double>() > 1.0 && p["tokens"].get<int>() > 4);

    // approx-quality: BLEU per swapped self-attention on a two-sentence test set, table + JSON + figure.
    QFile src(path("tiny_test.de")), ref(path("tiny_test.en"));
    QVERIFY(src.open(QIODevice::WriteOnly) && ref.open(QIODevice::WriteOnly));
    src.write("kalo mitu.\nfonu za ber.\n");
    ref.write("loka tumi.\nnufo za ber.\n");
    src.close();
    ref.close();
    const CliRun aq = cli({"approx-quality", "--model", model, "--lm", path("tiny_lm"), "--src", path("tiny_test.de"), "--ref",
                           path("tiny_test.en"), "--variant", "softmax", "--variant", "performer:n_features=8",
                           "--variant", "performer:n_features=16", "--variant", "linear", "--json", path("aq.json"),
                           "--out", path("aq.png")});
    QVERIFY2(aq.exit_code == 0, qPrintable(aq.err));
    QCOMPARE(aq.out.count('\n'), 5);  // header + 4 settings
    const nlohmann::json q = nlohmann::json::parse(read_bytes(path("aq.json")).toStdString());
    QCOMPARE(q["rows"].size(), std::size_t(4));
    QCOMPARE(q["rows"][1]["label"].get<std::string>(), std::string("performer n_features=8"));
    for (const auto& r : q["rows"]) QVERIFY(r.contains("bleu") && r.contains("perplexity") && r["perplexity"].get<double>() > 1);
    QVERIFY(!QImage(path("aq.png")).isNull());
    expect_failure(cli({"approx-quality", "--model", model, "--src", path("tiny_test.de"), "--ref", path("tiny_test.en"),
                        "--variant", "performer:n_features=0"}), 1, "n_features");
    expect_failure(cli({"approx-quality", "--model", model, "--src", path("tiny_test.de"), "--ref", path("tiny_in.txt")}), 1,
                   "lines");

    expect_failure(cli({"train", "--out", model}), 2, "--data");
    expect_failure(cli({"train", "--data", path("nowhere"), "--out", model}), 1, "spm.model");
    expect_failure(cli(QStringList{"train", "--data", data, "--out", path("fresh"), "--resume"} + sizes), 1, "checkpoint");
    expect_failure(cli(QStringList{"train", "--data", data, "--out", model, "--lr", "-1"} + sizes), 1, "lr=");
    expect_failure(cli({"translate", "kalo", "--file", path("tiny_in.txt"), "--model", model}), 2, "either");
    expect_failure(cli({"translate", "kalo", "--model", path("nowhere")}), 1, "no model folder");
    expect_failure(cli({"translate", "kalo", "--model", model, "--attention", "nope"}), 1, "nope");
    expect_failure(cli({"translate", "kalo", "--model", path("tiny_lm")}), 1, "language model");
    expect_failure(cli({"perplexity", "--model", model, "--file", path("tiny_en.txt")}), 1, "translator");
  }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
