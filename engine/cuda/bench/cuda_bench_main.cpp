// attnlab-cuda-bench: times the CUDA kernels alone (CUDA events around the launches, median of
// several runs after a warm-up, inputs in device memory, several input sets rotated so the
// 50 MB L2 cache does not hold them) and prints a table, plus JSON for
// engine/cuda/bench/torch_reference.py, which times PyTorch on the same shapes and prints the
// ratios. Not a test: nothing here passes or fails.
//
//   exact attention (flash):  fp16/bf16 tensor cores and fp32, d 64/128, causal or not,
//                             L = 1k … 32k, batch·heads = max(1, 16k/L)·(2048/d) as in the
//                             FlashAttention papers' benchmarks; TFLOP/s counts 4·BH·L²·d (half causal)
//   linear attention (elu+1):  fp32, d 64, 8 heads, L = 1k … 64k, causal and not
//   bigbird (block-sparse):    bf16, d 64, 16 heads, block 64, window 3, global 1, random 3
//   reformer_lsh:             fp32, d 64, 8 heads, 2 hashes, bucket 64, one chunk back
//   long sequences:           the longest lengths tried for each, one head, d = 64
//   models:                   whole presets on the GPU (cuda/device_model.h), seeded weights, token
//                             ids cycling through the vocabulary, L = 4k … 1M until a pass runs out
//                             of GPU memory or takes longer than 10 s; time of the pass by CUDA
//                             events, peak GPU bytes of the pass beyond the weights
//
// Usage: attnlab-cuda-bench [--quick] [--only flash,linear,bigbird,lsh,long,models] [--json OUT.json]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "attention/bigbird.h"
#include "attention/reformer_lsh.h"
#include "attention/registry.h"
#include "core/error.h"
#include "cuda/device_model.h"
#include "cuda/kernels.h"
#include "models/layer_types.h"
#include "models/model_config.h"

using attnlab::cuda::AttentionDims;
using attnlab::cuda::DType;
using attnlab::cuda::check;

namespace {

struct Buffer {
  void* p = nullptr;
  explicit Buffer(std::size_t bytes) { check(cudaMalloc(&p, std::max<std::size_t>(bytes, 16)), "cudaMalloc"); }
  ~Buffer() { cudaFree(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  template <typename T = void>
  T* get() const {
    return static_cast<T*>(p);
  }
};

// Normal(0, 1) float32 data, converted on the device to the kernel's type.
void fill_random(void* dst, DType type, std::size_t n, unsigned seed) {
  std::vector<float> host(n);
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : host) x = normal(gen);
  Buffer tmp(n * 4);
  check(cudaMemcpy(tmp.get(), host.data(), n * 4, cudaMemcpyHostToDevice), "upload");
  attnlab::cuda::convert_from_f32(type, tmp.get<float>(), dst, n, nullptr);
  check(cudaDeviceSynchronize(), "conversion");
}

std::size_t elem_size(DType t) { return t == DType::F32 ? 4 : 2; }
const char* type_name(DType t) { return t == DType::F32 ? "fp32" : t == DType::F16 ? "fp16" : "bf16"; }

// Median, min, max in ms of `repeats` runs of f (after one warm-up), each timed by events.
template <typename F>
std::vector<double> time_runs(int repeats, F&& f) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  f(0);
  check(cudaDeviceSynchronize(), "warm-up");
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    check(cudaEventRecord(a), "event");
    f(r + 1);
    check(cudaEventRecord(b), "event");
    check(cudaEventSynchronize(b), "run");
    float t = 0;
    check(cudaEventElapsedTime(&t, a, b), "elapsed");
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), ms.back()};
}

nlohmann::json bench_flash(DType type, int d, bool causal, int L, int warps, int repeats, int heads_override = 0) {
  const int bh = heads_override ? heads_override : std::max(1, 16384 / L) * (2048 / d);
  AttentionDims dims;
  dims.heads = bh;
  dims.lq = dims.lk = L;
  dims.d = d;
  const std::size_t n = static_cast<std::size_t>(bh) * L * d, bytes = n * elem_size(type);
  // Enough input sets that together they exceed the L2 cache (50 MB) twice.
  const int sets = static_cast<int>(std::clamp<std::size_t>(100u * 1024 * 1024 / (3 * bytes) + 1, 1, 4));
  std::vector<std::unique_ptr<Buffer>> q, k, v;
  for (int s = 0; s < sets; ++s) {
    q.push_back(std::make_unique<Buffer>(bytes));
    k.push_back(std::make_unique<Buffer>(bytes));
    v.push_back(std::make_unique<Buffer>(bytes));
    fill_random(q.back()->get(), type, n, 100 + 3 * s);
    fill_random(k.back()->get(), type, n, 101 + 3 * s);
    fill_random(v.back()->get(), type, n, 102 + 3 * s);
  }
  Buffer out(bytes), lse(static_cast<std::size_t>(bh) * L * 4);
  const auto t = time_runs(repeats, [&](int r) {
    const int s = r % sets;
    attnlab::cuda::flash_attention_forward(type, q[s]->get(), k[s]->get(), v[s]->get(), out.get(), lse.get<float>(),
                                           dims, causal, nullptr, warps);
  });
  const double flops = 4.0 * bh * static_cast<double>(L) * L * d * (causal ? 0.5 : 1.0);
  nlohmann::json row{{"kernel", "flash"}, {"dtype", type_name(type)}, {"d", d},          {"causal", causal},
                     {"length", L},       {"batch_heads", bh},       {"warps", warps},  {"median_ms", t[0]},
                     {"min_ms", t[1]},    {"max_ms", t[2]},          {"tflops", flops / (t[0] * 1e9)}};
  std::printf("flash   %-4s d=%-3d %-6s L=%-7d BH=%-5d warps=%d  %9.3f ms  (min %.3f, max %.3f)  %7.1f TFLOP/s\n",
              type_name(type), d, causal ? "causal" : "full", L, bh, warps, t[0], t[1], t[2], flops / (t[0] * 1e9));
  std::fflush(stdout);
  return row;
}

nlohmann::json bench_linear(int d, bool causal, int L, int heads, int repeats) {
  AttentionDims dims;
  dims.heads = heads;
  dims.lq = dims.lk = L;
  dims.d = d;
  const std::size_t n = static_cast<std::size_t>(heads) * L * d;
  Buffer q(n * 4), k(n * 4), v(n * 4), out(n * 4);
  fill_random(q.get(), DType::F32, n, 7);
  fill_random(k.get(), DType::F32, n, 8);
  fill_random(v.get(), DType::F32, n, 9);
  const std::size_t ws = attnlab::cuda::linear_attention_workspace_bytes(dims);
  Buffer workspace(ws);
  const auto t = time_runs(repeats, [&](int) {
    attnlab::cuda::linear_attention_forward(q.get<float>(), k.get<float>(), v.get<float>(), out.get<float>(),
                                            workspace.get(), dims, causal, 1e-6f, nullptr);
  });
  // Bytes that must move: q, k, v read, out written (the state traffic is extra).
  const double gbps = 4.0 * n * 4 / (t[0] * 1e6);
  nlohmann::json row{{"kernel", "linear"}, {"dtype", "fp32"},  {"d", d},           {"causal", causal},
                     {"length", L},        {"heads", heads},   {"median_ms", t[0]}, {"min_ms", t[1]},
                     {"max_ms", t[2]},     {"workspace_bytes", ws}, {"io_gbps", gbps}};
  std::printf("linear  fp32 d=%-3d %-6s L=%-9d H=%-3d   %9.3f ms  (min %.3f, max %.3f)  q,k,v,out at %.0f GB/s, "
              "workspace %.1f MiB\n",
              d, causal ? "causal" : "full", L, heads, t[0], t[1], t[2], gbps, ws / 1048576.0);
  std::fflush(stdout);
  return row;
}


nlohmann::json bench_bigbird(int L, int heads, int repeats) {
  const int d = 64;
  AttentionDims dims;
  dims.heads = heads;
  dims.lq = dims.lk = L;
  dims.d = d;
  const std::size_t n = static_cast<std::size_t>(heads) * L * d;
  Buffer q(n * 2), k(n * 2), v(n * 2), out(n * 2), lse(static_cast<std::size_t>(heads) * L * 4);
  fill_random(q.get(), DType::BF16, n, 11);
  fill_random(k.get(), DType::BF16, n, 12);
  fill_random(v.get(), DType::BF16, n, 13);
  attnlab::Params params(attnlab::Registry::builtin().get("bigbird").spec().params);
  params.set("block_size", static_cast<std::int64_t>(64));
  const attnlab::BigBirdLayout layout = attnlab::bigbird_layout(params, L, false);
  const attnlab::BigBirdBlockLists lists = attnlab::bigbird_block_lists(layout, heads, 1);
  Buffer offsets(lists.offsets.size() * 4), ids(lists.blocks.size() * 4);
  check(cudaMemcpy(offsets.get(), lists.offsets.data(), lists.offsets.size() * 4, cudaMemcpyHostToDevice), "upload");
  check(cudaMemcpy(ids.get(), lists.blocks.data(), lists.blocks.size() * 4, cudaMemcpyHostToDevice), "upload");
  const attnlab::cuda::BlockList blocks{offsets.get<int>(), ids.get<int>()};
  const auto t = time_runs(repeats, [&](int) {
    attnlab::cuda::block_sparse_attention_forward(DType::BF16, q.get(), k.get(), v.get(), out.get(), lse.get<float>(),
                                                  dims, false, &blocks, nullptr);
  });
  const double flops = 4.0 * 64.0 * 64.0 * d * static_cast<double>(lists.blocks.size());
  nlohmann::json row{{"kernel", "bigbird"}, {"dtype", "bf16"},     {"d", d},           {"causal", false},
                     {"length", L},         {"heads", heads},      {"median_ms", t[0]}, {"min_ms", t[1]},
                     {"max_ms", t[2]},      {"tflops", flops / (t[0] * 1e9)},
                     {"blocks_per_row", static_cast<double>(lists.blocks.size()) / (heads * layout.n_blocks)}};
  std::printf("bigbird bf16 d=%-3d full   L=%-9d H=%-3d   %9.3f ms  (min %.3f, max %.3f)  %7.1f TFLOP/s on the visited "
              "blocks\n",
              d, L, heads, t[0], t[1], t[2], flops / (t[0] * 1e9));
  std::fflush(stdout);
  return row;
}

nlohmann::json bench_lsh(int L, int heads, int repeats) {
  const int d = 64;
  attnlab::Params params(attnlab::Registry::builtin().get("reformer_lsh").spec().params);
  const attnlab::LshGeometry g = attnlab::resolve_lsh_geometry(params, L);
  attnlab::cuda::LshDims ld;
  ld.heads = heads;
  ld.length = L;
  ld.d = d;
  ld.n_hashes = static_cast<int>(g.n_hashes);
  ld.n_buckets = static_cast<int>(g.n_buckets);
  ld.bucket_size = static_cast<int>(g.chunk_size);
  ld.chunks_before = static_cast<int>(g.chunks_before);
  const std::size_t n = static_cast<std::size_t>(heads) * L * d;
  const std::size_t nrot = static_cast<std::size_t>(heads) * ld.n_hashes * d * (ld.n_buckets / 2);
  Buffer q(n * 4), v(n * 4), out(n * 4), rot(nrot * 4);
  fill_random(q.get(), DType::F32, n, 21);
  fill_random(v.get(), DType::F32, n, 22);
  fill_random(rot.get(), DType::F32, nrot, 23);
  const std::size_t ws = attnlab::cuda::lsh_attention_workspace_bytes(ld);
  Buffer workspace(ws);
  const auto t = time_runs(repeats, [&](int) {
    attnlab::cuda::lsh_attention_forward(q.get<float>(), v.get<float>(), rot.get<float>(), out.get<float>(), nullptr,
                                         workspace.get(), ld, false, nullptr);
  });
  nlohmann::json row{{"kernel", "lsh"},  {"dtype", "fp32"}, {"d", d},           {"causal", false},
                     {"length", L},      {"heads", heads},  {"median_ms", t[0]}, {"min_ms", t[1]},
                     {"max_ms", t[2]},   {"n_hashes", ld.n_hashes}, {"n_buckets", ld.n_buckets},
                     {"bucket_size", ld.bucket_size}, {"workspace_bytes", ws}};
  std::printf("lsh     fp32 d=%-3d full   L=%-9d H=%-3d   %9.3f ms  (min %.3f, max %.3f)  %d hashes, %d buckets, "
              "workspace %.1f MiB\n",
              d, L, heads, t[0], t[1], t[2], ld.n_hashes, ld.n_buckets, ws / 1048576.0);
  std::fflush(stdout);
  return row;
}

// One preset with one variant for its "inherit" layers, over the lengths, until a pass runs out of
// GPU memory or takes longer than the budget.
void bench_model(const std::string& preset, const std::string& variant_name, const nlohmann::json& overrides,
                 bool causal, attnlab::gpu::Precision precision, const std::vector<int>& lengths, double budget_ms,
                 nlohmann::json& rows) {
  using namespace attnlab;
  ModelConfig config = builtin_model(preset);
  config.max_length = std::int64_t{1} << 20;
  const Encoder encoder = Encoder::seeded(config, 1);
  gpu::BackendOptions bo;
  bo.precision = precision;
  const gpu::DeviceModel model(encoder, gpu::make_cuda_backend(bo));
  const Attention& variant = Registry::builtin().get(variant_name);
  const Params params = schema_params(variant.spec().params, overrides);
  gpu::DeviceRunOptions o;
  o.variant = &variant;
  o.params = &params;
  o.causal = causal;
  o.attention_seed = 1;
  o.download_hidden = false;
  const char* dtype = gpu::precision_name(precision);
  for (const int L : lengths) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(L));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * 7919) % config.vocab_size);
    nlohmann::json row{{"kernel", "model"}, {"model", preset},  {"variant", variant_name}, {"params", params.to_json()},
                       {"dtype", dtype},    {"causal", causal}, {"length", L},
                       {"weight_bytes", model.weight_bytes()}};
    try {
      const gpu::DeviceForward warm = model.forward(ids, o);
      std::vector<double> ms{warm.ms};
      if (warm.ms < budget_ms / 4)
        for (int r = 0; r < 3; ++r) ms.push_back(model.forward(ids, o).ms);
      std::sort(ms.begin(), ms.end());
      const double median = ms[ms.size() / 2];
      row["status"] = "ok";
      row["median_ms"] = median;
      row["min_ms"] = ms.front();
      row["tokens_per_s"] = L / (median / 1000.0);
      row["peak_bytes"] = warm.peak_bytes;
      std::printf("model   %-22s %-8s %-4s %-6s L=%-8d %10.2f ms  %9.0f tokens/s  peak %7.2f GiB beyond %.2f GiB of weights\n",
                  preset.c_str(), variant_name.c_str(), dtype, causal ? "causal" : "full", L, median, L / (median / 1000.0),
                  warm.peak_bytes / 1073741824.0, model.weight_bytes() / 1073741824.0);
      std::fflush(stdout);
      rows.push_back(row);
      if (median > budget_ms) break;
    } catch (const ResourceError& e) {
      row["status"] = std::string("out of memory: ") + e.what();
      std::printf("model   %-22s %-8s %-4s %-6s L=%-8d out of memory: %s\n", preset.c_str(), variant_name.c_str(), dtype,
                  causal ? "causal" : "full", L, e.what());
      rows.push_back(row);
      break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string json_path, only;  // only: ",flash,lsh," — empty runs every section
  const auto wanted = [&](const char* section) { return only.empty() || only.find(std::string(",") + section + ",") != std::string::npos; };
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) {
      only = std::string(",") + argv[++i] + ",";
    } else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: attnlab-cuda-bench [--quick] [--only flash,linear,bigbird,lsh,long,models] [--json OUT.json]\n");
      return 2;
    }
  }
  try {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "reading the device");
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    std::printf("device: %s, %d SMs, %.1f GiB, L2 %.0f MB, driver %d, runtime %d\n", prop.name,
                prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, prop.l2CacheSize / 1e6, driver, runtime);
    nlohmann::json report;
    report["device"] = {{"name", prop.name}, {"sms", prop.multiProcessorCount}, {"memory_bytes", prop.totalGlobalMem},
                        {"driver", driver}, {"runtime", runtime}};
    nlohmann::json rows = nlohmann::json::array();
    const int repeats = quick ? 5 : 20;
    const std::vector<int> lengths = quick ? std::vector<int>{1024, 4096} : std::vector<int>{1024, 2048, 4096, 8192, 16384, 32768};

    for (DType type : {DType::BF16, DType::F16})
      for (int d : {64, 128})
        if (wanted("flash"))
        for (bool causal : {false, true})
          for (int L : lengths)
            for (int warps : {4, 8}) {
              if (type == DType::F16 && warps == 8) continue;  // fp16 runs the same code as bf16; default warps only
              rows.push_back(bench_flash(type, d, causal, L, warps, repeats));
            }
    if (wanted("flash"))
      for (int L : {1024, 4096, 16384}) rows.push_back(bench_flash(DType::F32, 64, false, L, 0, quick ? 3 : 5));

    if (wanted("linear"))
      for (bool causal : {true, false})
        for (int L : {1024, 4096, 16384, 65536}) rows.push_back(bench_linear(64, causal, L, 8, repeats));
    if (wanted("bigbird"))
      for (int L : {4096, 16384, 65536}) rows.push_back(bench_bigbird(L, 16, repeats));
    if (wanted("lsh"))
      for (int L : {4096, 16384, 65536}) rows.push_back(bench_lsh(L, 8, repeats));

    if (!quick && wanted("long")) {
      std::printf("-- long sequences, one head, d = 64 --\n");
      for (int L : {131072, 262144, 524288, 1048576})
        rows.push_back(bench_flash(DType::BF16, 64, true, L, 0, 2, 1));
      for (int L : {1 << 20, 1 << 22, 1 << 24}) rows.push_back(bench_linear(64, true, L, 1, 3));
      for (int L : {1 << 20, 1 << 22}) rows.push_back(bench_bigbird(L, 1, 3));
      rows.push_back(bench_lsh(1 << 20, 1, 3));  // hashing grows as L·n_b·d = L²·d/32: 4M takes seconds
    }
    if (wanted("models")) {
      std::printf("-- whole models on the GPU --\n");
      using attnlab::gpu::Precision;
      const std::vector<int> model_lengths =
          quick ? std::vector<int>{4096} : std::vector<int>{4096, 16384, 65536, 262144, 1048576};
      const double budget = quick ? 2000 : 10000;
      const nlohmann::json none = nlohmann::json::object();
      for (Precision p : {Precision::F32, Precision::BF16}) {
        bench_model("large-reformer", "softmax", none, false, p, model_lengths, budget, rows);
        bench_model("base-encoder", "softmax", none, true, p, model_lengths, budget, rows);
        bench_model("base-encoder", "bigbird", {{"block_size", 64}}, false, p, model_lengths, budget, rows);
        bench_model("base-encoder", "linear", none, true, p, model_lengths, budget, rows);
      }
    }
    report["rows"] = rows;
    if (!json_path.empty()) {
      std::ofstream(json_path) << report.dump(1) << "\n";
      std::printf("wrote %s\n", json_path.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnlab-cuda-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
