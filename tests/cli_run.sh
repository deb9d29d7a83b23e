#!/bin/sh
# systole compile and systole run on the bundled Fashion-MNIST CNN: outputs,
# the performance summary, JSON, .stx files, and the errors (exit 1 with a
# message, never a crash; usage errors exit 2).
set -u
BUILD=$1
SYSTOLE="$BUILD/systole"
PY=/usr/bin/python3
EX=examples/fashion
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passes=0
fails=0
ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL: $1"; [ -f "$TMP/out" ] && head -40 "$TMP/out"; }

# expect CODE TEXT command...: exit code and a line of output (stdout+stderr) containing TEXT
expect() {
  code=$1; text=$2; shift 2
  "$@" >"$TMP/out" 2>&1
  rc=$?
  if [ "$rc" -ne "$code" ]; then bad "'$*' exited $rc, want $code"
  elif [ -n "$text" ] && ! grep -qF -- "$text" "$TMP/out"; then bad "'$*' does not say '$text'"
  else ok; fi
}
# same FILE FILE WHAT: identical bytes
same() { if cmp -s "$1" "$2"; then ok; else bad "$3: $1 and $2 differ"; fi; }

MODEL=$EX/fashion_cnn.onnx
IMG=$EX/images/00_9.npy

# A run: the outputs summary names the class, and the performance summary is there.
expect 0 'top-5: 9 (Ankle boot)' "$SYSTOLE" run "$MODEL" --input image=$IMG --labels $EX/labels.txt
for text in 'logits           f32[1,10]' 'cycles' 'at the clock' 'MXU utilisation' 'HBM traffic' 'energy' \
            'costliest of' '% total' 'from examples/fashion/images/00_9.npy'; do
  if grep -qF -- "$text" "$TMP/out"; then ok; else bad "run output lacks '$text'"; fi
done
expect 0 'top-5: 9 ' "$SYSTOLE" run "$MODEL" --input image=$IMG --chip tpu-v4 --precision highest
expect 0 '' "$SYSTOLE" run "$MODEL" --input image=$IMG -q
if [ -s "$TMP/out" ]; then bad "-q printed something"; else ok; fi

# --json: the documented keys, every layer, the output file.
expect 0 '' "$SYSTOLE" run "$MODEL" --input image=$IMG --json "$TMP/run.json" --output-dir "$TMP/o1" -q
if $PY - "$TMP/run.json" "$TMP/o1" <<'EOF' >"$TMP/out" 2>&1; then ok; else bad "--json contents"; fi
import json, sys
d = json.load(open(sys.argv[1]))
for k in ["cycles", "seconds", "macs", "mxu_utilization", "hbm_read_bytes", "hbm_write_bytes", "energy_j",
          "host_seconds", "compile_seconds", "chip", "precision", "outputs", "layers", "inputs"]:
    assert k in d, k
assert d["chip"] == "tpu-v4" and d["precision"] == "default", d["chip"]
assert d["cycles"] > 0 and d["macs"] > 0 and 0 < d["mxu_utilization"] <= 1
assert abs(d["seconds"] - d["cycles"] / d["clock_hz"]) < 1e-12
assert d["outputs"] == [{"name": "logits", "dtype": "f32", "shape": [1, 10], "file": sys.argv[2] + "/logits.npy"}]
assert d["inputs"][0]["name"] == "image" and d["inputs"][0]["file"].endswith("00_9.npy")
assert len(d["layers"]) >= 4, len(d["layers"])
for l in d["layers"]:
    for k in ["name", "op", "cycles", "start", "end", "macs", "model_macs", "mxu_utilization", "hbm_bytes"]:
        assert k in l, k
    assert l["end"] - l["start"] == l["cycles"] and l["end"] <= d["cycles"]
assert sum(l["macs"] for l in d["layers"]) == d["macs"]
# the TPU v1 paper's Table 3 rows: every MXU cycle in one of four
t3 = ["mxu_active", "weight_stall", "weight_shift", "non_matrix"]
assert sum(d[k] for k in t3) == d["mxu_cycles"] == d["cycles"] * 4 and d["mxu_active"] > 0, [d[k] for k in t3]
assert abs(d["useful_mac_fraction"] - d["mxu_utilization"]) < 1e-6 and 0 <= d["unused_mac_fraction"] < 1
assert abs(d["tops"] - 2 * d["macs"] / d["seconds"] / 1e12) < 1e-3 * d["tops"]
EOF
if $PY -c "import numpy as np, sys; a = np.load(sys.argv[1]); assert a.dtype == np.float32 and a.shape == (1, 10) and a.argmax() == 9" \
    "$TMP/o1/logits.npy" 2>"$TMP/out"; then ok; else bad "logits.npy"; fi

# compile to .stx, then run it: identical outputs; --timing-only: the same cycles.
expect 0 'fashion.stx:' "$SYSTOLE" compile "$MODEL" -o "$TMP/fashion.stx"
if [ "$(head -c 4 "$TMP/fashion.stx" | od -An -c | tr -d ' ')" = '177ELF' ]; then ok; else bad "the .stx is not ELF"; fi
expect 0 'top-5: 9' "$SYSTOLE" run "$TMP/fashion.stx" --input image=$IMG --output-dir "$TMP/o2" --json "$TMP/stx.json"
same "$TMP/o1/logits.npy" "$TMP/o2/logits.npy" ".stx and .onnx outputs"
expect 0 '' "$SYSTOLE" run "$TMP/fashion.stx" --input image=$IMG --timing-only --json "$TMP/t.json" -q
if $PY -c "import json, sys; a, b, c = (json.load(open(f)) for f in sys.argv[1:]); assert a['cycles'] == b['cycles'] == c['cycles'] and b['precision'] is None" \
    "$TMP/run.json" "$TMP/stx.json" "$TMP/t.json" 2>"$TMP/out"; then ok; else bad "cycles of .onnx, .stx and --timing-only runs"; fi
# Every bundled image classified as its label (as under ONNX Runtime: tests/cli_fashion_ort.sh).
right=0
for f in $EX/images/*.npy; do
  want=$(basename "$f" .npy); want=${want#*_}
  got=$("$SYSTOLE" run "$TMP/fashion.stx" --input image="$f" | sed -n 's/^ *top-[0-9]*: \([0-9][0-9]*\) .*/\1/p')
  [ "$got" = "$want" ] && right=$((right + 1))
done
if [ "$right" -eq 16 ]; then ok; else bad "$right of 16 bundled images classified right"; fi
# Random inputs are deterministic; a --trace is JSON with a layers track.
expect 0 'random (seed 0)' "$SYSTOLE" run "$TMP/fashion.stx" --output-dir "$TMP/r1" --trace "$TMP/trace.json"
expect 0 '' "$SYSTOLE" run "$TMP/fashion.stx" --output-dir "$TMP/r2" -q
same "$TMP/r1/logits.npy" "$TMP/r2/logits.npy" "random inputs"
if $PY -c "import json, sys; d = json.load(open(sys.argv[1])); assert any(e.get('args', {}).get('name') == 'layers' for e in d['traceEvents'])" \
    "$TMP/trace.json" 2>"$TMP/out"; then ok; else bad "--trace"; fi
# Other input dtypes convert to the model's f32; names with '/' become '_'.
$PY -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1]).astype(np.float64))" $IMG "$TMP/img64.npy"
expect 0 'top-5: 9' "$SYSTOLE" run "$TMP/fashion.stx" --input image="$TMP/img64.npy"
# Dumps go to stdout.
expect 0 'mxu.mm' "$SYSTOLE" compile "$MODEL" -o "$TMP/d.stx" --dump-asm
expect 0 'output %logits' "$SYSTOLE" compile "$MODEL" -o "$TMP/d.stx" --dump-ir

# Errors: exit 1 and a message naming the file, the input or the chip.
expect 1 'was compiled for tpu-v4, not tpu-v3' "$SYSTOLE" run "$TMP/fashion.stx" --chip tpu-v3
$PY -c "import numpy as np, sys; np.save(sys.argv[1], np.zeros((1, 28, 28), np.float32))" "$TMP/flat.npy"
expect 1 "input 'image': expected f32[1,1,28,28], got f32[1,28,28]" "$SYSTOLE" run "$MODEL" --input image="$TMP/flat.npy"
expect 1 'nonexistent.npy' "$SYSTOLE" run "$MODEL" --input image="$TMP/nonexistent.npy"
expect 1 "the model has no input 'img'" "$SYSTOLE" run "$TMP/fashion.stx" --input img=$IMG
if grep -qF "'image' f32[1,1,28,28]" "$TMP/out"; then ok; else bad "unknown input: the model's inputs not listed"; fi
expect 1 'already given' "$SYSTOLE" run "$TMP/fashion.stx" --input image=$IMG --input image=$IMG
head -c 1000 "$MODEL" >"$TMP/trunc.onnx"
expect 1 'trunc.onnx' "$SYSTOLE" run "$TMP/trunc.onnx"
expect 1 'trunc.onnx' "$SYSTOLE" compile "$TMP/trunc.onnx" -o "$TMP/x.stx"
head -c 1000 "$TMP/fashion.stx" >"$TMP/trunc.stx"
expect 1 'trunc.stx' "$SYSTOLE" run "$TMP/trunc.stx"
printf 'not a model' >"$TMP/junk.onnx"
expect 1 'junk.onnx' "$SYSTOLE" run "$TMP/junk.onnx"
expect 1 'nonexistent.onnx' "$SYSTOLE" run "$TMP/nonexistent.onnx"
expect 1 'nochip' "$SYSTOLE" run "$MODEL" --chip nochip
expect 1 'cycle budget' "$SYSTOLE" run "$TMP/fashion.stx" --max-cycles 100
# A model that does not fit the chip: HBM, instruction memory (tiny with a memory cut down).
sed -e 's/^name = tiny/name = tiny-32k-hbm/' -e '/^\[hbm\]/,/^\[/ s/^size = .*/size = 32 KiB/' configs/tiny.ini >"$TMP/hbm.ini"
expect 1 "HBM of chip 'tiny-32k-hbm'" "$SYSTOLE" run "$MODEL" --chip "$TMP/hbm.ini"
sed -e 's/^name = tiny/name = tiny-1k-imem/' -e '/^\[imem\]/,/^\[/ s/^size = .*/size = 1 KiB/' configs/tiny.ini >"$TMP/imem.ini"
expect 1 "IMEM of chip 'tiny-1k-imem'" "$SYSTOLE" compile "$MODEL" --chip "$TMP/imem.ini" -o "$TMP/x.stx"
$PY -c "import numpy as np, sys; np.save(sys.argv[1], np.zeros((1, 1, 28, 28), np.int64))" "$TMP/int.npy"
expect 1 "holds int64; the input wants f32" "$SYSTOLE" run "$MODEL" --input image="$TMP/int.npy"
# An op the compiler does not know: named with its node and opset.
$PY - "$TMP/unknown.onnx" <<'PYEOF'
import sys, onnx
from onnx import helper, TensorProto
g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="first"),
                       helper.make_node("Hardmax", ["r"], ["y"], name="the_hardmax")], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PYEOF
expect 1 "Hardmax" "$SYSTOLE" run "$TMP/unknown.onnx"
if grep -qF "the_hardmax" "$TMP/out" && grep -qF "13" "$TMP/out"; then ok; else bad "unknown op: node or opset not named"; fi
# An input type an executable's signature cannot carry: named with the types it can.
$PY - "$TMP/f16.onnx" <<'PYEOF'
import sys, onnx
from onnx import helper, TensorProto
g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2, 3])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2, 3])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PYEOF
expect 1 "input 'x' is f16[2,3]: inputs and outputs may be f32, bf16, an integer type or bool (not f16 or f64)" \
  "$SYSTOLE" run "$TMP/f16.onnx"
printf 'garbage' >"$TMP/bad.npy"
expect 1 'bad.npy' "$SYSTOLE" run "$MODEL" --input image="$TMP/bad.npy"
expect 1 "$TMP/nodir/x.stx" "$SYSTOLE" compile "$MODEL" -o "$TMP/nodir/x.stx"
# Usage errors: exit 2.
expect 2 'missing MODEL.onnx' "$SYSTOLE" run
expect 2 'missing -o' "$SYSTOLE" compile "$MODEL"
expect 2 "expected default or highest" "$SYSTOLE" run "$MODEL" --precision fast
expect 2 'expected NAME=FILE.npy' "$SYSTOLE" run "$MODEL" --input image
expect 2 'timing-only' "$SYSTOLE" run "$MODEL" --timing-only --output-dir "$TMP/o3"
expect 0 'usage: systole run' "$SYSTOLE" run --help
expect 0 'usage: systole compile' "$SYSTOLE" compile --help

echo "cli_run: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
