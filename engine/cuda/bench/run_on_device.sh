#!/bin/bash
# Runs the GPU tests and benchmarks on a machine with an NVIDIA GPU from binaries built elsewhere
# (see docs/gpu.md): BIN holds test_cuda_kernels, test_device_model_gpu and attnlab-cuda-bench, LIB the shared libraries
# the build machine linked them with that the GPU machine may lack (Qt Core/Test, ICU).
#   run_on_device.sh check   tests (+ compute-sanitizer memcheck/racecheck) and the quick bench
#   run_on_device.sh bench [--only flash,linear,bigbird,lsh,long,models]
#                            the bench (all sections by default) and PyTorch on the same shapes
# Results go to $OUT (or ./gpu-results).
set -u -o pipefail
mode=${1:-check}
root=$(cd "$(dirname "$0")/../../.." && pwd)
BIN=${BIN:-$root/.gpu/bin}
LIB=${LIB:-$root/.gpu/lib}
OUT=${OUT:-$root/gpu-results}
mkdir -p "$OUT"
cublas=$(ls /usr/local/cuda/lib64/libcublas.so.13 2>/dev/null || find / -name 'libcublas.so.13' -not -path '/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$LIB:$(dirname "${cublas:-/usr/local/cuda/lib64/x}"):${LD_LIBRARY_PATH:-}"
export QT_QPA_PLATFORM=offscreen
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
status=0
if [ "$mode" = check ]; then
  "$BIN/test_cuda_kernels" -o "$OUT/test.txt,txt" -o -,txt 2>&1 | grep -E "FAIL|Totals|QWARN|QDEBUG" ; [ "${PIPESTATUS[0]}" = 0 ] || status=1
  "$BIN/test_device_model_gpu" -o "$OUT/test-model.txt,txt" -o -,txt 2>&1 | grep -E "FAIL|Totals|QWARN|QDEBUG" ; [ "${PIPESTATUS[0]}" = 0 ] || status=1
  if command -v compute-sanitizer >/dev/null; then
    timeout 240 compute-sanitizer --tool memcheck --print-limit 5 "$BIN/test_cuda_kernels" \
      flash_tensor_cores flash_f32_matches_cpu_softmax linear_matches_cpu 2>&1 | grep -E "ERROR SUMMARY|Invalid|FAIL|Totals" | head -20
    timeout 240 compute-sanitizer --tool racecheck --print-limit 5 "$BIN/test_cuda_kernels" \
      "flash_tensor_cores:bf16 65 d128" "flash_tensor_cores:fp16 200 causal d128" "flash_f32_matches_cpu_softmax:65 causal d128" \
      "linear_matches_cpu:65 d128 causal" 2>&1 | grep -E "RACECHECK SUMMARY|hazard|FAIL|Totals" | head -20
    timeout 240 compute-sanitizer --tool memcheck --print-limit 5 "$BIN/test_device_model_gpu" 2>&1 | grep -E "ERROR SUMMARY|Invalid|FAIL|Totals" | head -20
  fi
  "$BIN/attnlab-cuda-bench" --quick --json "$OUT/quick.json" || status=1
else
  shift
  "$BIN/attnlab-cuda-bench" "$@" --json "$OUT/ours.json" | tee "$OUT/ours.txt" || status=1
  PYTHONUNBUFFERED=1 python3 "$root/engine/cuda/bench/torch_reference.py" "$OUT/ours.json" "$OUT/compare" | tee "$OUT/compare.txt" || status=1
fi
exit $status
