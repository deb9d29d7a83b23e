#!/bin/sh
# make demo: the bundled Fashion-MNIST CNN (examples/fashion) compiled for a TPU v4
# core and run on the simulator: the predicted class of each bundled test image
# against its true label, the accuracy, and the performance summary. Then the
# instruction set at work: the double-buffered matmul example on the tiny
# teaching chip, checked bit for bit against plain C.
set -eu
BUILD=${1:-build}
SYSTOLE="$BUILD/systole"
EX=examples/fashion
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "== systole compile $EX/fashion_cnn.onnx --chip tpu-v4 =="
"$SYSTOLE" compile "$EX/fashion_cnn.onnx" -o "$TMP/fashion.stx" --chip tpu-v4
echo

echo "== the $(ls "$EX"/images/*.npy | wc -l | tr -d ' ') bundled test images (file NN_LABEL.npy: test-set index, true class) =="
label() { sed -n "$(($1 + 1))p" "$EX/labels.txt"; }
right=0
total=0
for f in "$EX"/images/*.npy; do
  base=$(basename "$f" .npy)
  want=${base#*_}
  # The first class of the top-5 line is the prediction.
  got=$("$SYSTOLE" run "$TMP/fashion.stx" --chip tpu-v4 --input "image=$f" |
        sed -n 's/^ *top-[0-9]*: \([0-9][0-9]*\) .*/\1/p')
  if [ -z "$got" ]; then
    echo "  $base: no prediction"
    exit 1
  fi
  total=$((total + 1))
  if [ "$got" = "$want" ]; then
    right=$((right + 1))
    mark=ok
  else
    mark=WRONG
  fi
  printf '  %-12s true %-12s predicted %-12s %s\n' "$base.npy" "$(label "$want")" "$(label "$got")" "$mark"
done
echo "  accuracy: $right of $total ($((100 * right / total))%)"
echo

echo "== systole run $EX/fashion_cnn.onnx --input image=$EX/images/00_9.npy =="
"$SYSTOLE" run "$EX/fashion_cnn.onnx" --chip tpu-v4 --input "image=$EX/images/00_9.npy" \
  --labels "$EX/labels.txt" --trace "$BUILD/fashion-tpu-v4.trace.json"
echo "  timeline: $BUILD/fashion-tpu-v4.trace.json (open in https://ui.perfetto.dev)"
echo

echo "== examples/asm/matmul.s, 128x128x128 bf16 on tiny (one 8x8 MXU) =="
"$BUILD/asm_check" matmul --chip tiny --size 128,128,128
