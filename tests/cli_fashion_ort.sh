#!/bin/sh
# The bundled Fashion-MNIST example (issue 3) under the reference oracle, ONNX Runtime
# through tools/ort_run.mjs: the committed model classifies the committed images (the
# first 16 of the test set) exactly as it did when it was trained, and ort_run.mjs
# writes back through .npy what it reads (f32 and i64, through an Identity model).
#
# Usage, from the repository root: sh tests/cli_fashion_ort.sh BUILD_DIR
# Needs node, onnxruntime-node (npm ci --ignore-scripts) and /usr/bin/python3 with
# python3-numpy and python3-onnx. Without onnxruntime-node it fails, unless
# SYSTOLE_ALLOW_SKIP=1, when it says it skips and passes.
set -u
# The model is fixed, so the count is exact: it got all 16 right when it was trained
# (scripts/train_fashion_cnn.py prints the count; see examples/fashion/README.md).
EXPECTED_RIGHT=16
EXPECTED_IMAGES=16
PY=/usr/bin/python3
MODEL=examples/fashion/fashion_cnn.onnx
ORT_RUN=tools/ort_run.mjs

skip_or_fail() {
  if [ "${SYSTOLE_ALLOW_SKIP:-}" = 1 ]; then echo "cli_fashion_ort: skipped: $1"; exit 0; fi
  echo "cli_fashion_ort: FAIL: $1 (SYSTOLE_ALLOW_SKIP=1 to skip)"; exit 1
}
[ -d node_modules/onnxruntime-node ] ||
  skip_or_fail "onnxruntime-node not installed (npm ci --ignore-scripts)"
command -v node >/dev/null 2>&1 || skip_or_fail "node not installed (apt-get install nodejs)"
"$PY" -c "import numpy, onnx" 2>/dev/null ||
  skip_or_fail "$PY cannot import numpy and onnx (apt-get install python3-numpy python3-onnx)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
passes=0
pass() { passes=$((passes + 1)); }
fail() { fails=$((fails + 1)); echo "FAIL: $1"; [ -f "$TMP/log" ] && cat "$TMP/log"; }

# 1. Every committed image through ONNX Runtime; argmax of the logits against the label
#    in the file name (NN_<label>.npy).
n=0
for img in examples/fashion/images/*_*.npy; do
  [ -f "$img" ] || continue
  n=$((n + 1))
  base=$(basename "$img" .npy)
  if node "$ORT_RUN" "$MODEL" --input "image=$img" --output-dir "$TMP/out/$base" >"$TMP/log" 2>&1 &&
     [ -f "$TMP/out/$base/logits.npy" ]; then pass; else fail "ort_run on $img"; fi
done
if [ "$n" -eq "$EXPECTED_IMAGES" ]; then pass; else fail "$n images in examples/fashion/images, expected $EXPECTED_IMAGES"; fi
rm -f "$TMP/log"
if "$PY" - "$TMP/out" "$EXPECTED_RIGHT" <<'PY'
import os, sys
import numpy as np
out, expected = sys.argv[1], int(sys.argv[2])
classes = open("examples/fashion/labels.txt").read().split("\n")[:10]
right = 0
for base in sorted(os.listdir(out)):
    logits = np.load(os.path.join(out, base, "logits.npy"))
    assert logits.dtype == np.float32 and logits.shape == (1, 10), (base, logits.dtype, logits.shape)
    label, pred = int(base.split("_")[1]), int(logits.argmax())
    right += pred == label
    print(f"  {base}: {classes[label]}, predicted {classes[pred]}{'' if pred == label else '  (wrong)'}")
print(f"fashion_cnn under ONNX Runtime: {right} of {len(os.listdir(out))} right, expected {expected}")
assert right == expected
PY
then pass; else fail "fashion_cnn predictions under ONNX Runtime"; fi

# 2. .npy round trip through ort_run.mjs: an Identity model per type, values, dtype and
#    shape back unchanged, and the output name mapped to a file name by the rule.
if "$PY" - "$TMP/rt" <<'PY'
import os, sys
import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
d = sys.argv[1]
os.makedirs(d)
for tag, elem, arr in [
        ("f32", T.FLOAT, np.array([[0.0, -1.5, 3.25e-30], [np.inf, -np.inf, np.nan]], np.float32)),
        ("i64", T.INT64, np.array([[[-(2**63), 2**63 - 1, 0, -1, 2**40 + 1]]], np.int64))]:
    g = h.make_graph([h.make_node("Identity", ["in:0"], ["out/y:0"])], "id_" + tag,
                     [h.make_tensor_value_info("in:0", elem, list(arr.shape))],
                     [h.make_tensor_value_info("out/y:0", elem, list(arr.shape))])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)], producer_name="systole-tests")
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(d, f"id_{tag}.onnx"))
    np.save(os.path.join(d, f"in_{tag}.npy"), arr)
PY
then
  for tag in f32 i64; do
    if node "$ORT_RUN" "$TMP/rt/id_$tag.onnx" --input "in:0=$TMP/rt/in_$tag.npy" \
         --output-dir "$TMP/rt/out_$tag" >"$TMP/log" 2>&1 &&
       "$PY" - "$TMP/rt/in_$tag.npy" "$TMP/rt/out_$tag/out_y_0.npy" >>"$TMP/log" 2>&1 <<'PY'
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
assert a.tobytes() == b.tobytes(), (a, b)
PY
    then pass; else fail ".npy round trip of $tag through ort_run.mjs"; fi
  done
  rm -f "$TMP/log"
else fail "making the Identity models"; fi

# 3. A missing input is an error that names the model's inputs.
if node "$ORT_RUN" "$MODEL" --output-dir "$TMP/none" >"$TMP/err" 2>&1; then
  fail "ort_run accepted a missing input"
elif grep -q "missing input image.*image float32\[1,1,28,28\]" "$TMP/err"; then pass
else fail "missing input message"; cat "$TMP/err"; fi

echo "cli_fashion_ort: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
