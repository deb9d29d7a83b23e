#!/bin/sh
# systole import: an ONNX model in, its graph IR out; bad models give a clear
# error and exit 1, usage errors exit 2.
set -u
BUILD=$1
SYSTOLE="$BUILD/systole"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passes=0
fails=0
ok() { passes=$((passes + 1)); }
bad() { fails=$((fails + 1)); echo "FAIL: $1"; [ -f "$TMP/out" ] && cat "$TMP/out"; }

# expect CODE TEXT command...: exit code and a line of output (stdout+stderr) containing TEXT
expect() {
  code=$1; text=$2; shift 2
  "$@" >"$TMP/out" 2>&1
  rc=$?
  if [ "$rc" -ne "$code" ]; then bad "'$*' exited $rc, want $code"
  elif [ -n "$text" ] && ! grep -qF -- "$text" "$TMP/out"; then bad "'$*' does not say '$text'"
  else ok; fi
}

/usr/bin/python3 tests/models/make_models.py "$TMP/m" >/dev/null || { echo "FAIL: make_models.py"; exit 1; }

# The bundled PyTorch export: convolutions, pools, flatten and two Gemms, shapes inferred.
expect 0 '%logits = gemm(' "$SYSTOLE" import examples/fashion/fashion_cnn.onnx
expect 0 'output %logits : f32[1,10]' "$SYSTOLE" import examples/fashion/fashion_cnn.onnx
expect 0 ': f32[1,16,4,4]' "$SYSTOLE" import examples/fashion/fashion_cnn.onnx
# PyTorch-style shape arithmetic is folded away; -o writes the dump to a file.
expect 0 '' "$SYSTOLE" import "$TMP/m/pytorch.onnx" -o "$TMP/pytorch.ir"
if grep -qE "= (shape|gather|concat|unsqueeze)\(" "$TMP/pytorch.ir"; then bad "shape arithmetic left in pytorch.onnx's IR"
elif grep -q "dims=\[1,72\]" "$TMP/pytorch.ir"; then ok; else bad "pytorch.onnx's reshape target not resolved"; fi
# A symbolic dim other than the batch needs --input-shape; the batch then defaults to 1 with a note.
expect 1 "give the input's shape" "$SYSTOLE" import "$TMP/m/dynamic.onnx"
expect 0 'x : f32[2,3,5,8]' "$SYSTOLE" import "$TMP/m/dynamic.onnx" --input-shape x=2,3,5,8
# Errors: exit 1, message naming the file and the reason or node.
head -c 200 examples/fashion/fashion_cnn.onnx >"$TMP/trunc.onnx"
expect 1 'not a valid ONNX model' "$SYSTOLE" import "$TMP/trunc.onnx"
expect 1 'nonexistent.onnx' "$SYSTOLE" import "$TMP/nonexistent.onnx"
expect 1 'opset' "$SYSTOLE" import "$TMP/m/err_unsupported.onnx"
expect 1 'external' "$SYSTOLE" import "$TMP/m/err_external.onnx"
# Usage errors: exit 2.
expect 2 'missing MODEL.onnx' "$SYSTOLE" import
expect 2 'expected' "$SYSTOLE" import examples/fashion/fashion_cnn.onnx --input-shape image
expect 0 'usage: systole import' "$SYSTOLE" import --help

echo "cli_import: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
