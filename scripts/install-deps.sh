#!/bin/sh
# Installs the Debian packages Systole needs to build and test. Idempotent:
# silent when everything is present, apt-get only for what is missing.
set -eu
PKGS="build-essential cmake pkg-config libinih-dev protobuf-c-compiler libprotobuf-c-dev libonnx-dev python3-onnx python3-numpy libonnx-testdata"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
