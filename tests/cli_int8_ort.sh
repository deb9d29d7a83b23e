#!/bin/sh
# The ONNX int8 operators against ONNX Runtime, exactly (issue 4: "int8 ONNX operators give
# exactly ONNX Runtime's integers"): every model scripts/make_int8_models.py writes runs
# under tools/ort_run.mjs and under `systole run` on tpu-v1 (int8-only MXU), tpu-v4 and tiny
# (8x8 array, 256 KiB VMEM: many tiles, streamed weight panels and tiles), and
# every output must be bit-identical (integers equal, floats equal as bits).
#
# Usage, from the repository root: sh tests/cli_int8_ort.sh BUILD_DIR
# Needs node, onnxruntime-node, and /usr/bin/python3 with numpy and onnx.
set -u
BUILD=${1:?usage: sh tests/cli_int8_ort.sh BUILD_DIR}
PY=/usr/bin/python3
ROOT=$(pwd)
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SYSTOLE=$BUILD/systole

die() { echo "cli_int8_ort: FAIL: $1"; exit 1; }
[ -x "$SYSTOLE" ] || die "$SYSTOLE is not built"
command -v node >/dev/null 2>&1 || die "node is not installed"
[ -d node_modules/onnxruntime-node ] || die "onnxruntime-node is not installed in node_modules"
"$PY" -c "import numpy, onnx" 2>/dev/null || die "$PY cannot import numpy and onnx"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
M=$TMP/models
"$PY" scripts/make_int8_models.py "$M" >/dev/null || die "making the models"
# x86 without VNNI: ONNX Runtime's uint8 x int8 kernels saturate (tests/ort_u8u8.py), so
# the oracle runs the same arithmetic with unsigned weights.
u8u8=no
if [ "$(uname -m)" = x86_64 ] && ! grep -qw 'avx512_vnni\|avx_vnni' /proc/cpuinfo; then
  u8u8=yes
  echo "cli_int8_ort: this host has no VNNI: ONNX Runtime runs uint8 x int8 models with weights made unsigned"
fi
fails=0
runs=0
while read -r name rest; do
  [ -n "$name" ] || continue
  ins=""
  for spec in $rest; do ins="$ins --input ${spec%%=*}=$M/${spec#*=}"; done
  # shellcheck disable=SC2086 # ins is a list of options
  oracle=$M/$name.onnx
  if [ "$u8u8" = yes ]; then
    oracle=$TMP/$name.u8u8.onnx
    "$PY" tests/ort_u8u8.py "$M/$name.onnx" "$oracle" >/dev/null ||
      { echo "cli_int8_ort: $name: tests/ort_u8u8.py failed"; fails=$((fails + 1)); continue; }
  fi
  node tools/ort_run.mjs "$oracle" $ins --output-dir "$TMP/ort/$name" >/dev/null 2>"$TMP/err" ||
    { echo "cli_int8_ort: $name: ONNX Runtime failed: $(cat "$TMP/err")"; fails=$((fails + 1)); continue; }
  for chip in tpu-v1 tpu-v4 tiny; do
    runs=$((runs + 1))
    mkdir -p "$TMP/sy/$chip/$name"
    # shellcheck disable=SC2086
    if ! "$SYSTOLE" run "$M/$name.onnx" --chip $chip $ins --output-dir "$TMP/sy/$chip/$name" -q 2>"$TMP/err"; then
      echo "cli_int8_ort: $name on $chip: systole failed: $(cat "$TMP/err")"
      fails=$((fails + 1))
      continue
    fi
    if ! "$PY" - "$TMP/ort/$name" "$TMP/sy/$chip/$name" >"$TMP/cmp" 2>&1 <<'PYEOF'
import sys, os, glob
import numpy as np
ref, got = sys.argv[1:]
ok = True
for f in sorted(glob.glob(os.path.join(ref, "*.npy"))):
    a = np.load(f)
    b = np.load(os.path.join(got, os.path.basename(f)))
    if a.dtype.kind == "f":  # Systole writes floats as float32
        same = a.shape == b.shape and np.array_equal(a.astype(np.float32).view(np.uint32), b.astype(np.float32).view(np.uint32))
    else:
        same = a.shape == b.shape and np.array_equal(a.astype(np.int64), b.astype(np.int64))
    if not same:
        ok = False
        d = np.argwhere(a.astype(np.float64) != b.astype(np.float64)) if a.shape == b.shape else []
        print(f"{os.path.basename(f)}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}; "
              f"{len(d)} differ, first at {d[0].tolist() if len(d) else '-'}: "
              f"{a[tuple(d[0])] if len(d) else ''} vs {b[tuple(d[0])] if len(d) else ''}")
sys.exit(0 if ok else 1)
PYEOF
    then
      echo "cli_int8_ort: $name on $chip: differs from ONNX Runtime: $(cat "$TMP/cmp")"
      fails=$((fails + 1))
    fi
  done
done <"$M/manifest.txt"
[ "$fails" -eq 0 ] || die "$fails of $runs runs failed"
echo "cli_int8_ort: ok: $runs runs ($(wc -l <"$M/manifest.txt") models x 3 chips: tpu-v1, tpu-v4, tiny), every output exactly ONNX Runtime's"
