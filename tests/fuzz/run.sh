#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz/README.md) and runs one for a while.
#   sh tests/fuzz/run.sh onnx|hlo|program [SECONDS]
set -eu
cd "$(dirname "$0")/../.."
what=${1:?usage: sh tests/fuzz/run.sh onnx|hlo|program [SECONDS]}
secs=${2:-300}
B=build-fuzz
case "$what" in onnx|hlo|program) ;; *) echo "run.sh: no target '$what' (onnx, hlo, program)" >&2; exit 2 ;; esac
sh scripts/install-deps.sh --fuzz # the build's packages and clang
[ -d build/test-models ] || { echo "run.sh: build/test-models is missing: run make test first" >&2; exit 1; }
cmake -S . -B "$B" -DCMAKE_C_COMPILER=clang -DSYSTOLE_FUZZ=ON -DSYSTOLE_SANITIZE=ON >/dev/null
cmake --build "$B" -j"$(nproc)" --target "fuzz_$what" systole >/dev/null
corpus=$B/corpus/$what
if [ ! -d "$corpus" ]; then
  mkdir -p "$corpus"
  case "$what" in
  onnx) find build/test-models -name '*.onnx' -size -200k -exec cp {} "$corpus" \; ;;
  hlo) cp tests/hlo/*.hlo "$corpus" ;;
  program)
    for m in $(find build/test-models -name '*.onnx' -size -50k | head -n 40); do
      "$B/systole" compile "$m" --chip tiny -o "$corpus/$(basename "$m" .onnx).stx" >/dev/null 2>&1 || true
    done ;;
  esac
fi
max=$( [ "$what" = onnx ] && echo 200000 || echo 20000 )
exec "$B/fuzz_$what" -max_total_time="$secs" -max_len="$max" -rss_limit_mb=4096 -timeout=20 \
  -artifact_prefix="$B/" "$corpus"
