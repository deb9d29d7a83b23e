#!/bin/sh
# Installs what Systole needs to build and test. Idempotent: silent when
# everything is present, apt-get only for what is missing.
#   scripts/install-deps.sh          build and demo: compiler, libraries
#   scripts/install-deps.sh --test   also the test-only tools: python3-onnx,
#                                    numpy, torch and torchvision to build test
#                                    models, ONNX's conformance data, and ONNX
#                                    Runtime (npm) as the reference oracle,
#                                    python3-pil and DejaVu fonts to render
#                                    text for the OCR model
#   scripts/install-deps.sh --fuzz   also clang, for the libFuzzer targets
#                                    (tests/fuzz/README.md)
set -eu
cd "$(dirname "$0")/.."
PKGS="build-essential cmake pkg-config libinih-dev protobuf-c-compiler libprotobuf-c-dev libonnx-dev"
TEST_PKGS="python3-onnx python3-numpy python3-torch python3-torchvision libonnx-testdata python3-pil fonts-dejavu-core"
want_test=false
[ "${1:-}" = "--test" ] && want_test=true
$want_test && PKGS="$PKGS $TEST_PKGS"
[ "${1:-}" = "--fuzz" ] && PKGS="$PKGS clang"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node and npm may come from Debian or from another vendor's nodejs (which
# bundles npm and conflicts with Debian's npm): ask for them only if absent.
if $want_test && ! command -v npm >/dev/null 2>&1; then
  command -v node >/dev/null 2>&1 || missing="$missing nodejs"
  missing="$missing npm"
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ -n "$missing" ]; then
  echo "install-deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# ONNX Runtime for node, pinned in package-lock.json; --ignore-scripts skips its
# install script, which would try to download GPU binaries.
if $want_test && [ ! -d node_modules/onnxruntime-node ]; then
  echo "install-deps: npm ci (onnxruntime-node, test-only)" >&2
  npm ci --ignore-scripts --no-audit --no-fund --silent
fi
