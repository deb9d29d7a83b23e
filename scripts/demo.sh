#!/bin/sh
# make demo: the double-buffered matmul example on a TPU v4 core and on the
# tiny teaching chip, checked bit for bit against plain C.
set -eu
BUILD=${1:-build}
echo "== systole info --chip tpu-v4 =="
"$BUILD/systole" info --chip tpu-v4
echo
echo "== examples/asm/matmul.s, 1024x1024x1024 bf16 on tpu-v4 =="
"$BUILD/asm_check" matmul --chip tpu-v4 --size 1024,1024,1024 --trace "$BUILD/matmul-tpu-v4.trace.json"
echo "  timeline: $BUILD/matmul-tpu-v4.trace.json (open in https://ui.perfetto.dev)"
echo
echo "== examples/asm/matmul.s, 128x128x128 bf16 on tiny (one 8x8 MXU) =="
"$BUILD/asm_check" matmul --chip tiny --size 128,128,128
