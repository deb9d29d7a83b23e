#!/bin/sh
# Issue 4's int8 criterion: torchvision's resnet18 (random weights that carry signal,
# 1x3x112x112), quantised with `--quantize int8 --calibrate DIR` and run on tpu-v1, agrees
# with the fp32 model (PyTorch's logits) on the top-1 class for at least 9 of 10 inputs
# whose reference margin is clear (scripts/make_quant_models.py); calibration uses four
# other inputs; an MLP and an LSTM classifier stay within 5% of their fp32 logits on tpu-v1.
# Also: the fp32 model on tpu-v1 without --quantize is refused by name, and
# --quantize's usage errors. Prints the agreement and the largest logit error.
#
# Usage, from the repository root: sh tests/cli_quant_resnet18.sh BUILD_DIR
# The model is cached in BUILD_DIR/quant-models. Needs /usr/bin/python3 with numpy, onnx,
# torch and torchvision.
set -u
BUILD=${1:?usage: sh tests/cli_quant_resnet18.sh BUILD_DIR}
PY=/usr/bin/python3
ROOT=$(pwd)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SYSTOLE=$BUILD/systole
MODELS=$BUILD/quant-models

die() { echo "cli_quant_resnet18: FAIL: $1"; exit 1; }
[ -x "$SYSTOLE" ] || die "$SYSTOLE is not built"
"$PY" -c "import numpy, onnx, torch, torchvision" 2>/dev/null ||
  die "$PY cannot import numpy, onnx, torch and torchvision: run 'sh scripts/install-deps.sh --test'"
"$PY" scripts/make_quant_models.py "$MODELS" --if-stale || die "making the models"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
M=$MODELS/resnet18_112.onnx

# tpu-v1's MXU is int8 only: the fp32 model is refused with the fix named
if "$SYSTOLE" compile "$M" --chip tpu-v1 -o "$TMP/x.stx" 2>"$TMP/err"; then die "fp32 compiled for tpu-v1"; fi
grep -q "chip 'tpu-v1' has no bf16 matrix unit.*--quantize int8" "$TMP/err" || die "wrong message: $(cat "$TMP/err")"
"$SYSTOLE" compile "$M" --quantize int4 -o "$TMP/x.stx" 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "expected int8" "$TMP/err" || die "--quantize int4: $(cat "$TMP/err")"
if "$SYSTOLE" compile "$M" --chip tpu-v1 --quantize int8 --calibrate "$TMP/none" -o "$TMP/x.stx" 2>"$TMP/err"; then
  die "a missing --calibrate DIR was accepted"
fi
grep -q -- "--calibrate $TMP/none" "$TMP/err" || die "missing DIR: $(cat "$TMP/err")"

"$SYSTOLE" compile "$M" --chip tpu-v1 --quantize int8 --calibrate "$MODELS/cal" -o "$TMP/r8.stx" ||
  die "compiling with --quantize int8"
for f in "$MODELS"/test/[0-9][0-9].npy; do
  i=$(basename "$f" .npy)
  "$SYSTOLE" run "$TMP/r8.stx" --chip tpu-v1 --input "input=$f" --output-dir "$TMP/out$i" -q ||
    die "running input $i"
done
"$PY" - "$MODELS/test" "$TMP" <<'PYEOF' || die "top-1 agreement below 9 of 10"
import sys, glob, os
import numpy as np
test, tmp = sys.argv[1:]
agree, n, err = 0, 0, 0.0
for f in sorted(glob.glob(os.path.join(test, "[0-9][0-9].logits.npy"))):
    i = os.path.basename(f)[:2]
    ref = np.load(f)
    got = np.load(os.path.join(tmp, "out" + i, "logits.npy"))
    n += 1
    agree += int(ref.argmax() == got.argmax())
    err = max(err, float(np.abs(ref - got).max() / np.abs(ref).max()))
print(f"cli_quant_resnet18: int8 on tpu-v1 agrees with fp32 on top-1 for {agree} of {n} inputs; "
      f"largest logit error {err:.3f} of the largest |logit|")
sys.exit(0 if n == 10 and agree >= 9 else 1)
PYEOF
# The paper's other app kinds: an MLP and an LSTM (unrolled into matmuls), int8 on tpu-v1,
# within 5% of the largest fp32 logit and the same top-1 class.
for net in mlp lstm; do
  D=$MODELS/small/$net
  "$SYSTOLE" compile "$MODELS/small/$net.onnx" --chip tpu-v1 --quantize int8 --calibrate "$D/cal" -o "$TMP/$net.stx" ||
    die "$net: compiling with --quantize int8"
  for f in "$D"/test/[0-9][0-9].npy; do
    i=$(basename "$f" .npy)
    "$SYSTOLE" run "$TMP/$net.stx" --chip tpu-v1 --input "input=$f" --output-dir "$TMP/$net$i" -q || die "$net: input $i"
  done
  "$PY" - "$D/test" "$TMP" "$net" <<'PYEOF' || die "$net: int8 differs from fp32 by more than 5%"
import sys, glob, os
import numpy as np
test, tmp, net = sys.argv[1:]
worst, agree, n = 0.0, 0, 0
for f in sorted(glob.glob(os.path.join(test, "[0-9][0-9].logits.npy"))):
    i = os.path.basename(f)[:2]
    ref, got = np.load(f), np.load(os.path.join(tmp, net + i, "logits.npy"))
    worst = max(worst, float(np.abs(ref - got).max() / np.abs(ref).max()))
    agree += int((ref.argmax(-1) == got.argmax(-1)).all())
    n += 1
print(f"cli_quant_resnet18: {net} int8 on tpu-v1: largest logit error {worst:.4f} of the largest |logit|, "
      f"top-1 equal on {agree} of {n} inputs")
sys.exit(0 if worst <= 0.05 and agree == n else 1)
PYEOF
done
echo "cli_quant_resnet18: ok"
