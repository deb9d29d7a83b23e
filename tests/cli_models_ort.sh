#!/bin/sh
# End to end against ONNX Runtime (issue 3): every model scripts/make_test_models.py
# writes (small graphs of every op built with python3-onnx; torchvision's resnet18 and
# mobilenet_v2, LSTM, GRU and TransformerEncoder classifiers exported with torch.onnx.export) runs under `systole run` with both
# precisions and under tools/ort_run.mjs, and the outputs agree by tests/compare_outputs.py:
# max |error| <= TOL * max |reference|, TOL 1e-4 with --precision highest, 2e-2 (small
# graphs) or 5e-2 (whole networks) with default; classifiers also agree on the top-1
# class wherever the reference's margin is more than twice the allowed error.
#
# Usage, from the repository root: sh tests/cli_models_ort.sh BUILD_DIR
# Models and ONNX Runtime's outputs are cached in BUILD_DIR/test-models (remade when
# scripts/make_test_models.py, tools/ort_run.mjs or package-lock.json change).
# SYSTOLE_TEST_MODELS=small|all picks the models; the default is all, except in a
# sanitizer build (SYSTOLE_SANITIZE=ON in BUILD_DIR/CMakeCache.txt): the small graphs
# only, since whole networks under ASan take too long.
# Needs node, onnxruntime-node, and /usr/bin/python3 with numpy, onnx, torch and
# torchvision: missing ones are a failure (scripts/install-deps.sh --test installs them).
set -u
BUILD=${1:?usage: sh tests/cli_models_ort.sh BUILD_DIR}
PY=/usr/bin/python3
ROOT=$(pwd)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SYSTOLE=$BUILD/systole
MODELS=$BUILD/test-models
START=$(date +%s)

die() { echo "cli_models_ort: FAIL: $1"; exit 1; }
missing() { die "$1: run 'make test' or 'sh scripts/install-deps.sh --test'"; }

scope=${SYSTOLE_TEST_MODELS:-}
if [ -z "$scope" ]; then
  scope=all
  grep -q '^SYSTOLE_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null && scope=small
fi
case $scope in
  small) gen_flags=--small-only; manifests="manifest-small.txt"
         echo "cli_models_ort: small graphs only (sanitizer build or SYSTOLE_TEST_MODELS=small)" ;;
  all) gen_flags=; manifests="manifest-small.txt manifest-torch.txt" ;;
  *) die "SYSTOLE_TEST_MODELS is '$scope'; small or all" ;;
esac

[ -x "$SYSTOLE" ] || die "$SYSTOLE is not built"
command -v node >/dev/null 2>&1 || missing "node is not installed"
[ -d node_modules/onnxruntime-node ] || missing "onnxruntime-node is not installed in node_modules"
"$PY" -c "import numpy, onnx" 2>/dev/null || missing "$PY cannot import numpy and onnx"
if [ "$scope" = all ]; then
  "$PY" -c "import torch, torchvision" 2>/dev/null || missing "$PY cannot import torch and torchvision"
fi

# shellcheck disable=SC2086 # gen_flags is empty or one word
"$PY" scripts/make_test_models.py "$MODELS" --if-stale $gen_flags || die "making the test models"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$MODELS" || die "no $MODELS"
: >"$TMP/list"
runs=0
fails=0
ms() { echo $(($(date +%s%N) / 1000000)); }
# Whether file $1 exists and was modified after $2 (POSIX test has no -nt).
newer() { [ -n "$(find "$1" -newer "$2" 2>/dev/null)" ]; }

for manifest in $manifests; do
  while read -r name kind inputs; do
    [ "$kind" = timing ] && continue # cli_resnet18_224.sh's
    args=
    for i in $inputs; do args="$args --input $i"; done
    # ONNX Runtime's outputs, remade when the model or the oracle changed.
    ref=ref/$name
    if ! { newer "$ref/.done" "$manifest" && newer "$ref/.done" "$ROOT/tools/ort_run.mjs" &&
           { [ ! -f "$ROOT/package-lock.json" ] || newer "$ref/.done" "$ROOT/package-lock.json"; }; }; then
      rm -rf "$ref"
      # shellcheck disable=SC2086
      if node "$ROOT/tools/ort_run.mjs" "$name.onnx" $args --output-dir "$ref" >"$TMP/log" 2>&1; then
        touch "$ref/.done"
      else
        echo "FAIL: $name: ONNX Runtime: $(cat "$TMP/log")"
        fails=$((fails + 1))
        continue
      fi
    fi
    for prec in highest default; do
      case $prec/$kind in
        highest/*) tol=1e-4 ;;
        default/small) tol=2e-2 ;;
        *) tol=5e-2 ;;
      esac
      top1=-
      [ "$kind" = net ] && top1=top1
      out=$TMP/$name.$prec
      runs=$((runs + 1))
      t0=$(ms)
      # shellcheck disable=SC2086
      if "$SYSTOLE" run "$name.onnx" $args --output-dir "$out" --precision "$prec" -q >"$TMP/log" 2>&1; then
        [ "$kind" = net ] && echo "  $name $prec: systole run took $(($(ms) - t0)) ms"
        echo "$name/$prec $kind/$prec $ref $out $tol $top1" >>"$TMP/list"
      else
        echo "FAIL: $name $prec: systole run exited $? after $(($(ms) - t0)) ms:"
        sed -n '1,8s/^/    /p' "$TMP/log"
        fails=$((fails + 1))
      fi
    done
  done <"$manifest"
done

if [ -s "$TMP/list" ]; then
  "$PY" "$ROOT/tests/compare_outputs.py" --list "$TMP/list" >"$TMP/cmp" 2>&1
  rc=$?
  cat "$TMP/cmp"
  [ "$rc" -eq 0 ] || fails=$((fails + $(grep -c 'FAIL$' "$TMP/cmp") + (rc == 2)))
fi
echo "cli_models_ort: $runs runs ($scope models, 2 precisions): $fails failed, $(($(date +%s) - START)) s"
[ "$fails" -eq 0 ]
