// The training loop: schedule and AdamW against their formulas, batching, learning a toy task,
// determinism, checkpoint/resume equal to an uninterrupted run, cancel, bad input.
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/safetensors.h"
#include "test_support.h"
#include "train/optimizer.h"
#include "train/trainer.h"

using namespace attnlab;
using namespace attnlab::train;

namespace {

// Reverse the source: a task a tiny model learns in a few hundred steps.
std::vector<Example> reverse_task(int count, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<Example> out;
  for (int i = 0; i < count; ++i) {
    Example e;
    const int n = 2 + static_cast<int>(rng.below(4));
    for (int j = 0; j < n; ++j) e.src.push_back(4 + static_cast<std::int32_t>(rng.below(8)));
    e.tgt.assign(e.src.rbegin(), e.src.rend());
    out.push_back(e);
  }
  return out;
}

TransformerConfig tiny_config() {
  TransformerConfig c;
  c.vocab = 12;
  c.d_model = 32;
  c.heads = 4;
  c.d_ff = 64;
  c.encoder_layers = 1;
  c.decoder_layers = 1;
  c.max_length = 16;
  c.label_smoothing = 0.0;
  return c;
}

TrainOptions tiny_options(const QString& dir, std::int64_t steps) {
  TrainOptions o;
  o.out_dir = dir.toStdString();
  o.max_steps = steps;
  o.batch_tokens = 200;
  o.optimizer.lr = 3e-3;
  o.optimizer.warmup_steps = 20;
  o.eval_every = 0;
  o.checkpoint_every = 0;
  o.seed = 5;
  return o;
}

std::vector<float> weights_of(const QString& dir) {
  const SafetensorsFile f = read_safetensors((dir + "/model.safetensors").toStdString());
  std::vector<float> all;
  for (const auto& [name, t] : f.tensors) all.insert(all.end(), t.data(), t.data() + t.size());
  return all;
}

}  // namespace

class TestTrainer : public QObject {
  Q_OBJECT

 private slots:
  void schedules_follow_their_formulas() {
    OptimizerOptions o;
    o.lr = 1e-3;
    o.warmup_steps = 100;
    QVERIFY(std::abs(learning_rate(o, 50) - 1e-3 * 0.5) < 1e-15);      // warm-up: lr·t/w
    QVERIFY(std::abs(learning_rate(o, 100) - 1e-3) < 1e-15);           // peak at t = w
    QVERIFY(std::abs(learning_rate(o, 400) - 1e-3 * 0.5) < 1e-15);     // lr·√(w/t) = lr·√(1/4)
    o.schedule = "cosine";
    o.total_steps = 1100;
    o.min_lr_ratio = 0.1;
    QVERIFY(std::abs(learning_rate(o, 600) - 1e-3 * (0.1 + 0.9 * 0.5)) < 1e-12);  // halfway: cos(π/2) = 0
    QVERIFY(std::abs(learning_rate(o, 1100) - 1e-4) < 1e-12);
    o.total_steps = 50;
    QVERIFY(test::error_message<ParamError>([&] { o.validate(); }).find("cosine") != std::string::npos);
  }

  void adamw_step_matches_the_update_rule() {
    // Two entries: a decayed matrix [1, 2] and an undecayed bias [1, 1]; clipping at 1 scales
    // g = (3, 0, 4) (norm 5) to (0.6, 0, 0.8).
    std::vector<ParamEntry> entries(2);
    entries[0] = {"w", 1, 2, 0, true};
    entries[1] = {"b", 1, 1, 2, false};
    OptimizerOptions o;
    o.lr = 0.1;
    o.warmup_steps = 0;
    o.weight_decay = 0.5;
    o.clip_norm = 1.0;
    o.beta1 = 0.9;
    o.beta2 = 0.99;
    o.eps = 1e-8;
    AdamW adam(o, 3);
    ParamArray<float> theta = {1.0f, -2.0f, 0.5f}, g = {3.0f, 0.0f, 4.0f};
    const double norm = adam.step(theta, g, entries, 1);
    QVERIFY(std::abs(norm - 5.0) < 1e-6);
    // t = 1: m̂ = g, v̂ = g², so the Adam part is lr·g/(|g| + eps) = ±lr (0 where g = 0).
    const double expected[3] = {1.0 - 0.1 * 1.0 - 0.1 * 0.5 * 1.0, -2.0 - 0.0 - 0.1 * 0.5 * -2.0, 0.5 - 0.1 * 1.0};
    for (int i = 0; i < 3; ++i) QVERIFY2(std::abs(theta[i] - expected[i]) < 1e-6, qPrintable(QString::number(theta[i])));
    QVERIFY(std::abs(g[0] - 0.6f) < 1e-6 && std::abs(g[2] - 0.8f) < 1e-6);
    ParamArray<float> bad = {1.0f, std::nanf(""), 0.0f};
    QVERIFY(!test::error_message<Error>([&] { adam.step(theta, bad, entries, 2); }).empty());
  }

  void epoch_batches_cover_every_example_once_within_the_budget() {
    const std::vector<Example> data = reverse_task(300, 1);
    const auto batches = epoch_batches(data, 64, true, 9, 0);
    std::multiset<std::int64_t> seen;
    for (const auto& b : batches) {
      std::int64_t tokens = 0;
      for (const std::int64_t i : b) {
        seen.insert(i);
        tokens += example_tokens(data[static_cast<std::size_t>(i)], true);
      }
      QVERIFY(tokens <= 64);
    }
    QCOMPARE(seen.size(), data.size());
    QCOMPARE(std::set<std::int64_t>(seen.begin(), seen.end()).size(), data.size());
    QVERIFY(epoch_batches(data, 64, true, 9, 0) == batches);   // same seed and epoch: same order
    QVERIFY(epoch_batches(data, 64, true, 9, 1) != batches);   // next epoch: reshuffled
    // make_batch: source + EOS; BOS + target; target + EOS.
    const Batch b = make_batch(data, {0}, tiny_config());
    QCOMPARE(b.src.back(), 3);
    QCOMPARE(b.tgt_in.front(), 2);
    QCOMPARE(b.tgt_out.back(), 3);
    QCOMPARE(b.tgt_in.size(), data[0].tgt.size() + 1);
  }

  // Two replicas on halves of a batch give the single model's gradient (up to summation order).
  void parallel_runner_gradient_equals_the_single_model_gradient() {
    const std::vector<Example> data = reverse_task(40, 6);
    std::vector<std::int64_t> all(data.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::int64_t>(i);
    Transformer<float> single(tiny_config(), 4), master(tiny_config(), 4);
    const CrossEntropySums a = single.forward_backward(make_batch(data, all, tiny_config()), true, 0.01);
    ParallelRunner runner(master, 3);
    const CrossEntropySums b = runner.run(data, all, true, 0.01);
    QCOMPARE(a.tokens, b.tokens);
    QVERIFY(std::abs(a.loss - b.loss) < 1e-4 * a.loss);
    float worst = 0, scale = 0;
    for (std::size_t i = 0; i < single.grads().size(); ++i) {
      worst = std::max(worst, std::abs(single.grads()[i] - master.grads()[i]));
      scale = std::max(scale, std::abs(single.grads()[i]));
    }
    QVERIFY2(worst < 1e-5f * std::max(1.0f, scale), qPrintable(QString("difference %1 of %2").arg(worst).arg(scale)));
    // A replica left without examples (one example, three workers) contributes nothing.
    const CrossEntropySums one = runner.run(data, {0}, true, 1.0);
    QCOMPARE(one.tokens, static_cast<std::int64_t>(data[0].tgt.size()) + 1);
  }

  void learns_the_toy_task_deterministically() {
    QTemporaryDir dir1, dir2;
    const std::vector<Example> train_set = reverse_task(2000, 2), valid = reverse_task(100, 3);
    const TransformerConfig config = tiny_config();
    Transformer<float> untrained(config, 1);
    const CrossEntropySums before = evaluate(untrained, valid, 400);
    std::vector<TrainProgress> progress;
    const TrainResult r = train_model(config, tiny_options(dir1.path(), 400), train_set, valid,
                                      [&](const TrainProgress& p) { progress.push_back(p); }, 100);
    QCOMPARE(r.steps, std::int64_t(400));
    QVERIFY(progress.size() >= 4);
    QVERIFY(progress.back().tokens_per_s > 0);
    const double nll_before = before.nll / static_cast<double>(before.tokens);
    // From ln(12) ≈ 2.5 at chance to well below it: reversal is learnt.
    QVERIFY2(r.final_valid_nll < 0.25 * nll_before,
             qPrintable(QString("valid nll %1 -> %2").arg(nll_before).arg(r.final_valid_nll)));
    QVERIFY(r.final_valid_accuracy > 0.8);
    QVERIFY(std::filesystem::exists((dir1.path() + "/config.json").toStdString()));
    QVERIFY(std::filesystem::file_size((dir1.path() + "/train_log.jsonl").toStdString()) > 0);

    train_model(config, tiny_options(dir2.path(), 400), train_set, valid, nullptr, 0);
    QVERIFY(weights_of(dir1.path()) == weights_of(dir2.path()));  // same seed, same threads: same bits

    // The checkpoint holds the same weights (what a folder still in training loads).
    Transformer<float> from_checkpoint(config, 99), from_model(config, 98);
    load_weights(from_checkpoint, (dir1.path() + "/checkpoint.safetensors").toStdString());
    load_weights(from_model, (dir1.path() + "/model.safetensors").toStdString());
    QVERIFY(from_checkpoint.values() == from_model.values());
  }

  void resume_continues_exactly_where_it_stopped() {
    QTemporaryDir straight, split;
    const std::vector<Example> train_set = reverse_task(500, 4);
    const TransformerConfig config = tiny_config();
    train_model(config, tiny_options(straight.path(), 60), train_set, {}, nullptr, 0);
    // Stop after 25 steps (mid-epoch), then resume to 60.
    train_model(config, tiny_options(split.path(), 25), train_set, {}, nullptr, 0);
    TrainOptions resume = tiny_options(split.path(), 60);
    resume.resume = true;
    train_model(config, resume, train_set, {}, nullptr, 0);
    QVERIFY(weights_of(straight.path()) == weights_of(split.path()));

    // A cancelled run leaves a checkpoint that resumes to the same result too.
    QTemporaryDir cancelled;
    CancelToken token;
    const std::string message = test::error_message<CancelledError>([&] {
      train_model(config, tiny_options(cancelled.path(), 60), train_set, {},
                  [&](const TrainProgress& p) {
                    if (p.step >= 30) token.cancel();
                  },
                  10, &token);
    });
    QVERIFY(message.find("wrong type") == std::string::npos);
    TrainOptions again = tiny_options(cancelled.path(), 60);
    again.resume = true;
    train_model(config, again, train_set, {}, nullptr, 0);
    QVERIFY(weights_of(straight.path()) == weights_of(cancelled.path()));
  }

  void bad_input_is_refused_with_one_line() {
    QTemporaryDir dir;
    const TransformerConfig config = tiny_config();
    QVERIFY(test::error_message<ParamError>([&] { train_model(config, tiny_options(dir.path(), 5), {}, {}, nullptr, 0); })
                .find("empty") != std::string::npos);
    std::vector<Example> long_one = reverse_task(3, 1);
    long_one[1].src.assign(40, 5);
    QVERIFY(test::error_message<ParamError>([&] { train_model(config, tiny_options(dir.path(), 5), long_one, {}, nullptr, 0); })
                .find("example 1") != std::string::npos);
    TrainOptions resume = tiny_options(dir.path(), 5);
    resume.resume = true;
    QVERIFY(test::error_message<IoError>([&] { train_model(config, resume, reverse_task(10, 1), {}, nullptr, 0); })
                .find("checkpoint") != std::string::npos);
    train_model(config, tiny_options(dir.path(), 3), reverse_task(10, 1), {}, nullptr, 0);
    TransformerConfig other = config;
    other.d_ff = 32;
    QVERIFY(test::error_message<ParamError>([&] { train_model(other, resume, reverse_task(10, 1), {}, nullptr, 0); })
                .find("another model config") != std::string::npos);
    TrainOptions bad = tiny_options(dir.path(), 5);
    bad.optimizer.lr = -1;
    QVERIFY(test::error_message<ParamError>([&] { train_model(config, bad, reverse_task(10, 1), {}, nullptr, 0); })
                .find("lr=") != std::string::npos);
  }
};

QTEST_APPLESS_MAIN(TestTrainer)
#include "test_trainer.moc"
