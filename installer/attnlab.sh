#!/usr/bin/env bash
# AttnLab's one entry point: set up, build, and run the app, the tests or the benchmark.
#
#   installer/attnlab.sh run      install dependencies, build, open the GUI on its example
#   installer/attnlab.sh test     install dependencies, build, run every test, print a summary
#   installer/attnlab.sh bench    install dependencies, build, print the benchmark figures
#   installer/attnlab.sh build    install dependencies and build only
#
# Environment: ATTNLAB_PRESET (default: ci for test, release otherwise), ATTNLAB_JOBS (default:
# number of cores), ATTNLAB_SKIP_DEPS=1 to skip the apt step on a machine already set up.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
COMMAND="${1:-run}"
shift || true
JOBS="${ATTNLAB_JOBS:-$(nproc)}"

case "$COMMAND" in
  test) PRESET="${ATTNLAB_PRESET:-ci}" ;;
  run|bench|build) PRESET="${ATTNLAB_PRESET:-release}" ;;
  *) echo "usage: installer/attnlab.sh run|test|bench|build" >&2; exit 2 ;;
esac
BUILD_DIR="$ROOT/build/$PRESET"

setup() {
  if [ "${ATTNLAB_SKIP_DEPS:-0}" != "1" ]; then
    "$ROOT/installer/setup-deps.sh"
  fi
}

build() {
  local start=$SECONDS
  cmake --preset "$PRESET" >/dev/null
  cmake --build --preset "$PRESET" -j "$JOBS" "$@"
  BUILD_SECONDS=$((SECONDS - start))
  echo "attnlab: build ($PRESET) took ${BUILD_SECONDS}s"
}

case "$COMMAND" in
  build)
    setup
    build
    ;;
  run)
    setup
    build --target attnlab
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
      echo "attnlab: no display found (DISPLAY is not set); start it on a desktop session, or headless with:" >&2
      echo "  xvfb-run -a -s '-screen 0 1600x1000x24' $BUILD_DIR/app/attnlab" >&2
      exit 1
    fi
    exec "$BUILD_DIR/app/attnlab" "$@"
    ;;
  bench)
    setup
    build --target attnlab-bench
    if [ -z "${DISPLAY:-}" ]; then
      exec xvfb-run -a -s "-screen 0 1600x1000x24" "$BUILD_DIR/app/attnlab-bench" "$@"
    fi
    exec "$BUILD_DIR/app/attnlab-bench" "$@"
    ;;
  test)
    setup
    build
    start=$SECONDS
    set +e
    # GL tests start their own Xvfb; they hold the "display" resource so two never race for one.
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@" 2>&1 | tee "$BUILD_DIR/ctest.log"
    status=${PIPESTATUS[0]}
    set -e
    total=$(grep -oE "tests failed out of [0-9]+" "$BUILD_DIR/ctest.log" | grep -oE "[0-9]+$" || echo 0)
    failed=$(grep -oE "[0-9]+ tests failed" "$BUILD_DIR/ctest.log" | grep -oE "^[0-9]+" || echo "?")
    echo "attnlab: tests: $((total - ${failed/\?/0})) passed, $failed failed, $total total; build ${BUILD_SECONDS}s, tests $((SECONDS - start))s"
    exit "$status"
    ;;
esac
