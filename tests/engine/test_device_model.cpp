// The device path of a model (cuda/device_model.h) on the CPU backend against Encoder::forward:
// the same function of the same weights, ids and seeds, issued as backend operations. This checks
// the orchestration (layer order, residuals, reversible streams, head layout, seeds, feed-forward
// chunks, sliding windows) without a GPU; tests/gpu checks each CUDA operation against the CPU
// backend, the same cases on the CUDA backend, and the refusal without a GPU.
#include <QTest>

#include "core/error.h"
#include "device_model_cases.h"
#include "test_support.h"

using namespace attnlab;
using namespace attnlab::test;

class TestDeviceModel : public QObject {
  Q_OBJECT

 private slots:
  void cpu_backend_matches_the_encoder_data() {
    QTest::addColumn<int>("index");
    const auto cases = device_model_cases();
    for (std::size_t i = 0; i < cases.size(); ++i) QTest::newRow(cases[i].label.c_str()) << static_cast<int>(i);
  }
  void cpu_backend_matches_the_encoder() {
    QFETCH(int, index);
    const DeviceModelCase c = device_model_cases()[static_cast<std::size_t>(index)];
    const double error = device_vs_encoder(c, gpu::make_cpu_backend());
    QVERIFY2(error < 1e-5, (c.label + ": relative error " + std::to_string(error)).c_str());
  }

  // The case list must be able to fail: a different attention seed changes LSH and BigBird.
  void a_wrong_seed_is_caught() {
    const DeviceModelCase c = device_model_cases()[4];  // bigbird: random blocks from the seed
    QCOMPARE(c.variant, std::string("bigbird"));
    QVERIFY(device_vs_encoder(c, gpu::make_cpu_backend(), 12) > 1e-3);
  }

  // The window lists cover exactly the band: for every query i and key j, (j's block is listed
  // for i's block and j <= i) iff max(0, (⌊i/W⌋ − 1)·W) <= j <= i.
  void window_lists_cover_exactly_the_band() {
    for (const std::int64_t W : {64, 128, 512}) {
      const std::int64_t L = 1000, H = 2;
      const gpu::WindowBlockLists lists = gpu::sliding_window_block_lists(H, L, W);
      const std::int64_t nqb = (L + 63) / 64;
      QCOMPARE(static_cast<std::int64_t>(lists.offsets.size()), H * nqb + 1);
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t i = 0; i < L; i += 7) {
          const std::int64_t qb = i / 64;
          std::vector<bool> listed(static_cast<std::size_t>(nqb), false);
          for (auto e = lists.offsets[static_cast<std::size_t>(h * nqb + qb)];
               e < lists.offsets[static_cast<std::size_t>(h * nqb + qb + 1)]; ++e)
            listed[static_cast<std::size_t>(lists.blocks[static_cast<std::size_t>(e)])] = true;
          for (std::int64_t j = 0; j < L; ++j) {
            const bool band = j <= i && j >= std::max<std::int64_t>(0, (i / W - 1) * W);
            const bool kernel = listed[static_cast<std::size_t>(j / 64)] && j <= i;
            QVERIFY2(band == kernel,
                     ("W " + std::to_string(W) + " i " + std::to_string(i) + " j " + std::to_string(j)).c_str());
          }
        }
    }
  }

  void layers_without_a_device_path_are_named() {
    ModelConfig c = builtin_model("tiny-encoder");
    c.layers[2].type = "mega";
    c.layers[2].params = nlohmann::json::object();
    const std::string mega =
        error_message<ParamError>([&] { gpu::DeviceModel(Encoder::seeded(c, 1), gpu::make_cpu_backend()); });
    QVERIFY2(contains(mega, "layer 2 (mega)") && contains(mega, "device path runs"), mega.c_str());

    ModelConfig perceiver = builtin_model("large-perceiver-ar");
    perceiver.d_model = 64;
    perceiver.d_ff = 64;
    perceiver.vocab_size = 100;
    perceiver.layers[0].params["latents"] = 16;
    perceiver.layers[0].params["latent_layers"] = 1;
    const std::string latents =
        error_message<ParamError>([&] { gpu::DeviceModel(Encoder::seeded(perceiver, 1), gpu::make_cpu_backend()); });
    QVERIFY2(contains(latents, "layer 0 (perceiver_ar)"), latents.c_str());
  }

  void bad_ids_and_lengths_are_refused() {
    const ModelConfig c = builtin_model("tiny-encoder");
    const gpu::DeviceModel model(Encoder::seeded(c, 1), gpu::make_cpu_backend());
    gpu::DeviceRunOptions o;
    o.variant = &Registry::builtin().get("softmax");
    QVERIFY(contains(error_message<ParamError>([&] { model.forward({}, o); }), "no tokens"));
    QVERIFY(contains(error_message<ParamError>([&] {
                       model.forward({1, 2, c.vocab_size}, o);
                     }),
                     "token id 8192 at position 2 is outside the vocabulary"));
    const std::vector<std::int32_t> long_ids(static_cast<std::size_t>(c.max_length + 1), 1);
    QVERIFY(contains(error_message<ParamError>([&] { model.forward(long_ids, o); }), "takes at most 4096"));
    gpu::DeviceRunOptions none;
    QVERIFY(contains(error_message<ParamError>([&] { model.forward({1}, none); }), "no attention variant"));
  }

  void the_cpu_backend_counts_its_memory() {
    const ModelConfig c = builtin_model("tiny-encoder");
    const gpu::DeviceModel model(Encoder::seeded(c, 1), gpu::make_cpu_backend());
    QCOMPARE(model.weight_bytes(), model.backend().bytes_in_use());
    gpu::DeviceRunOptions o;
    o.variant = &Registry::builtin().get("softmax");
    o.row_chunk = 64;
    const std::int64_t L = 256, D = c.d_model;
    const gpu::DeviceForward f = model.forward(case_ids(L, c.vocab_size), o);
    // Held at the attention block's peak: x, the normed input, the projection buffer, q, k, v
    // (8 · L·D at most with the attention output and the block's output).
    const std::int64_t floor = 6 * L * D * 4, ceiling = 10 * L * D * 4;
    QVERIFY2(f.peak_bytes >= floor && f.peak_bytes <= ceiling, std::to_string(f.peak_bytes).c_str());
    QCOMPARE(model.backend().bytes_in_use(), model.weight_bytes());  // nothing left behind
    QVERIFY(f.ms > 0);
  }
};

QTEST_APPLESS_MAIN(TestDeviceModel)
#include "test_device_model.moc"
