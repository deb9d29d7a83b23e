#!/bin/sh
# The validation harness (scripts/validate.sh, `make validate`) still runs and
# every figure stays within its bound: SCALE-Sim's reports, TPU v4 and v5e
# peaks, ridge points and MXU throughput, the TPU v1 sizing example. The unit
# tests it also reruns (test_pe, test_scalesim) are ctest's own.
# Usage (ctest, from the source root): sh tests/cli_validate.sh BUILD_DIR
set -eu
sh scripts/validate.sh "$1" --check > /dev/null || { echo "cli_validate: scripts/validate.sh --check failed" >&2; exit 1; }
echo "cli_validate: ok"
