#!/bin/sh
# `systole scalesim` from the command line: SCALE-Sim's shipped reports
# (tests/data/scalesim: ResNet-50 in ws, os and is; the GPT-2 and NCF GEMMs in
# ws and os) reproduced byte for byte from its configuration and topology
# files; the side-by-side report has a row per layer with Systole's figures;
# bad input gives exit code 1 and a message naming the file and line, bad
# usage exit code 2.
# Usage (ctest, from the source root): sh tests/cli_scalesim.sh BUILD_DIR
set -eu
B="$1"
BIN="$B/systole"
D=tests/data/scalesim
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "cli_scalesim: $*" >&2; exit 1; }
expect() {
  want=$1
  shift
  set +e
  "$@" > "$T/out" 2> "$T/err"
  got=$?
  set -e
  [ "$got" -eq "$want" ] || fail "exit code $got, want $want: $* (stderr: $(cat "$T/err"))"
}
has() { grep -q -- "$2" "$1" || fail "$1 lacks '$2': $(cat "$1")"; }

# ---------------------------------------------------------------- the reports
for run in "google.cfg Resnet50.csv conv resnet50_ws 54" "google_os.cfg Resnet50.csv conv resnet50_os 54" \
           "google_is.cfg Resnet50.csv conv resnet50_is 54" "google.cfg gpt2_gemm.csv gemm gpt2_ws 6" \
           "google_os.cfg gpt2_gemm.csv gemm gpt2_os 6" "google.cfg NCF_gemm.csv gemm ncf_ws 12" \
           "google_os.cfg NCF_gemm.csv gemm ncf_os 12"; do
  set -- $run
  expect 0 "$BIN" scalesim -c "$D/$1" -t "$D/$2" -i "$3" -o "$T/$4"
  cmp -s "$T/$4/COMPUTE_REPORT.csv" "$D/$4__COMPUTE_REPORT.csv" ||
    fail "$4: COMPUTE_REPORT.csv differs from SCALE-Sim's: $(diff "$T/$4/COMPUTE_REPORT.csv" "$D/$4__COMPUTE_REPORT.csv" | head -5)"
  n=$(($5 + 1))
  [ "$(wc -l < "$T/$4/SYSTOLE_REPORT.csv")" -eq "$n" ] || fail "$4: SYSTOLE_REPORT.csv should have $n lines"
  has "$T/out" "wrote $T/$4/COMPUTE_REPORT.csv"
done
has "$T/out" "ncf_os\|GoogleTPU_v1_os"
has "$T/resnet50_ws/SYSTOLE_REPORT.csv" "^0, Conv1, 12100, 64, 147, 1, 12865, 12866, "
# Systole's figures: preloading never slower than SCALE-Sim's count; the chip
# figure includes memory, so it is not below the MXU figure.
python3 - "$T/resnet50_ws/SYSTOLE_REPORT.csv" "$T/gpt2_os/SYSTOLE_REPORT.csv" <<'EOF' || fail "Systole figures out of order"
import sys
for path in sys.argv[1:]:
    rows = [l.rstrip(",\n").split(", ") for l in open(path)][1:]
    for r in rows:
        ss, mxu, chip = int(r[6]), int(r[7]), int(r[8])
        assert mxu <= ss + 1, (path, r)
        assert chip >= mxu - 2, (path, r)
EOF

# --mxu-only: no compile, the same COMPUTE_REPORT.csv
expect 0 "$BIN" scalesim -c "$D/google.cfg" -t "$D/NCF_gemm.csv" -i gemm -o "$T/m" --mxu-only
cmp -s "$T/m/COMPUTE_REPORT.csv" "$D/ncf_ws__COMPUTE_REPORT.csv" || fail "--mxu-only report differs"
has "$T/m/SYSTOLE_REPORT.csv" "^0, 1, 256, 128, 2048, 8, 8175, "

# The chip keys behind SCALE-Sim's assumptions: [mxu] dataflow and preload.
sed -e 's/^dataflow = ws/dataflow = is/' -e 's/^preload = true/preload = false/' configs/tiny.ini > "$T/is.ini"
expect 0 "$BIN" info --chip "$T/is.ini"
has "$T/out" "1 x 8x8 systolic array, input-stationary, no preloading (folds do not overlap)"
sed -e 's/^preload = true/preload = maybe/' configs/tiny.ini > "$T/bad.ini"
expect 1 "$BIN" info --chip "$T/bad.ini"
has "$T/err" "\[mxu\] preload: expected true or false, not 'maybe'"

# ---------------------------------------------------------------- errors
expect 2 "$BIN" scalesim -t "$D/Resnet50.csv" -o "$T/x"
has "$T/err" "missing -c CONFIG.cfg"
expect 2 "$BIN" scalesim -c "$D/google.cfg" -t "$D/Resnet50.csv" -o "$T/x" -i fc
has "$T/err" "-i 'fc': expected conv or gemm"
expect 1 "$BIN" scalesim -c "$T/none.cfg" -t "$D/Resnet50.csv" -o "$T/x"
has "$T/err" "none.cfg: cannot open"
printf 'Layer,M,N,K,\nL0,12,x,4,\n' > "$T/bad.csv"
expect 1 "$BIN" scalesim -c "$D/google.cfg" -t "$T/bad.csv" -i gemm -o "$T/x"
has "$T/err" "bad.csv:2: L0: N: bad number 'x'"
# a GEMM topology read as conv: too few columns, with the line
expect 1 "$BIN" scalesim -c "$D/google.cfg" -t "$D/NCF_gemm.csv" -o "$T/x"
has "$T/err" "NCF_gemm.csv:2: expected 8 columns"
expect 1 "$BIN" scalesim -c "$D/google.cfg" -t "$D/Resnet50.csv" -o "$T/x" --chip nosuchchip
has "$T/err" "unknown chip 'nosuchchip'"
expect 0 "$BIN" scalesim --help
has "$T/out" "usage: systole scalesim"
echo "cli_scalesim: ok"
