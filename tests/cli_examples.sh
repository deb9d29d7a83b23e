#!/bin/sh
# The assembler examples, checked bit for bit against plain C by asm_check,
# and the cycle figures issue 2 asks of the double-buffered matmul:
# 1024x1024x1024 bf16 on a tpu-v4 core at >= 90% MXU utilisation and within
# 2% of the ideal (MACs / MACs per cycle + one fill and drain).
set -u
BUILD=$1
CHECK="$BUILD/asm_check"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
passes=0

run() { # name, command...
  name=$1; shift
  if "$@" >"$TMP/out" 2>&1 && grep -q ": ok:" "$TMP/out"; then
    passes=$((passes + 1))
  else
    fails=$((fails + 1)); echo "FAIL: $name"; cat "$TMP/out"
  fi
}

run "fc on tiny" "$CHECK" fc --chip tiny
run "fc on tpu-v4" "$CHECK" fc --chip tpu-v4
run "fc, other sizes, on tiny" "$CHECK" fc --chip tiny --size 8,32,24
run "matmul 128^3 on tiny" "$CHECK" matmul --chip tiny --size 128,128,128
run "matmul uneven sizes on tiny" "$CHECK" matmul --chip tiny --size 40,24,32
run "matmul 1024^3 on tpu-v4" "$CHECK" matmul --chip tpu-v4 --size 1024,1024,1024 --json "$TMP/v4.json"

if [ -f "$TMP/v4.json" ]; then
  if python3 - "$TMP/v4.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ideal = 1024**3 / (4 * 128 * 128) + 128 + 128 - 2
over = s["cycles"] / ideal - 1
print(f"tpu-v4 1024^3: {s['cycles']} cycles, ideal {ideal:.0f}, {100*over:.2f}% above, "
      f"MXU utilisation {100*s['mxu_utilization']:.1f}%")
assert s["macs"] == 1024**3, s["macs"]
assert s["mxu_utilization"] >= 0.90, "utilisation below 90%"
assert over <= 0.02, "more than 2% above the ideal"
PY
  then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: tpu-v4 matmul figures"; fi
fi

# A sizing error is reported, not crashed on.
if "$CHECK" matmul --chip tiny --size 100,100,100 >"$TMP/out" 2>&1; then
  fails=$((fails + 1)); echo "FAIL: bad sizes accepted"
elif grep -q "multiples of the MXU size" "$TMP/out"; then passes=$((passes + 1))
else fails=$((fails + 1)); echo "FAIL: bad sizes message"; cat "$TMP/out"; fi

echo "cli_examples: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
