#!/bin/sh
# Runs tests/test_conformance (ONNX's node tests from Debian's libonnx-testdata)
# and regenerates docs/conformance.md from what it prints: the counts, the
# share of the tests of listed ops that pass, and every failure and skip of a
# listed op with its reason.
#
# usage: scripts/conformance_report.sh [BUILD_DIR]     (default: build)
# Exits non-zero if the test fails; the doc is written either way.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bin=$build/tests/test_conformance
doc=$root/docs/conformance.md
[ -x "$bin" ] || { echo "$0: $bin not found: build first (cmake --build $build)" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"$bin" >"$log" 2>&1 || status=$?

summary=$(grep '^libonnx-testdata conformance' "$log" || true)
[ -n "$summary" ] || { echo "$0: test_conformance printed no summary (exit $status)" >&2; cat "$log" >&2; exit 2; }
num() { printf '%s\n' "$summary" | sed -n "s/.* \([0-9][0-9]*\) $1.*/\1/p"; }
ran=$(num ran)
passed=$(num passed)
failed=$(num failed)
skipped=$(num skipped)
bound=$(num inputs)
outside=$(grep -c '^  skip .*is outside the list$' "$log" || true)
listed_skips=$((skipped - outside))
listed=$((ran + listed_skips))
# Tests skipped only for an element type the runtime has no tensors for.
typeskips=$(grep '^  skip ' "$log" | grep -c 'a type the runtime does not carry' || true)
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b ? 100 * a / b : 0 }'; }
known=$((listed - typeskips))
pct_listed=$(pct "$passed" "$listed")
pct_known=$(pct "$passed" "$known")
floor=$(sed -n 's/^#define MIN_PASSED \([0-9]*\).*/\1/p' "$root/tests/test_conformance.c")

{
  cat <<'TXT'
# ONNX conformance (libonnx-testdata node tests)

This file is written by `scripts/conformance_report.sh` from the output of
`build/tests/test_conformance`; do not edit it by hand.

`tests/test_conformance.c` runs every node test of Debian's libonnx-testdata
(`/usr/share/libonnx-testdata/data/node`) whose ops are all in its list (issue 3's and issue 4's
ops, Resize, Upsample and If), compiled through the public API at precision highest and run on the
simulated tpu-v4, checked against the tests' expected outputs at rtol 1e-3, atol 1e-5 (integers and
booleans exactly). Inputs that real models hold as constants (shape operands, Conv and
BatchNormalization parameters, the recurrences' W, R, B and sequence_lens, the int8 products'
weights, scales and zero points, Resize's roi/scales/sizes, Dropout's ratio and training_mode,
ConstantOfShape's shape, If's condition) are bound to the test's data as initializers before
compiling. The bfloat16 tests' .pb files hold the bf16 bit patterns as uint16 (written when numpy
had no bfloat16); where the graph declares bfloat16 they are read as bf16. A test is skipped,
with its reason, when it uses an op outside the list, an element type the runtime has no tensors
for (double, float16, string, ...), when the importer or the compiler refuses it, or when its
expected output follows a convention the runtime does not (the two Cast to bfloat16 tests expect
truncation, ONNX 1.12's reference, onnx/onnx#3876; Cast rounds to nearest even, as ONNX Runtime
does, and 5 of their 12 values differ by one bf16 ulp), or when its data has other dims than
the graph declares (the executable's inputs are the graph's). Every test that compiles must pass.

TXT
  echo "Measured (\`scripts/conformance_report.sh\`): **$ran tests ran, $passed passed, $failed failed**;"
  echo "$listed_skips further tests of listed ops were skipped; $outside tests use an op outside the list."
  echo "Of the $listed tests of listed ops, **$pct_listed% pass** ($passed of $listed)."
  echo "Leaving out the $typeskips skipped only for an element type the runtime does not carry,"
  echo "$pct_known% pass ($passed of $known). $bound inputs were bound as constants; the"
  echo "floor \`MIN_PASSED\` in the test is $floor."
  echo
  echo "## Failures"
  echo
  if [ "$failed" -eq 0 ]; then
    echo "None: every test that compiles passes."
  else
    echo '```'
    grep -E '^  fail |check failed' "$log" | sed 's/^  //'
    echo '```'
  fi
  echo
  echo "## Skipped tests of listed ops, by reason"
  echo
  echo "| count | reason |"
  echo "|---|---|"
  grep '^  skip ' "$log" | grep -v 'is outside the list$' | sed 's/^  skip [^:]*: //' |
    sed -e "s/'[^']*'/'…'/g" -e 's/\[[^]]*\]/[…]/g' -e 's/\b[0-9][0-9.]*\b/N/g' | sort | uniq -c | sort -rn |
    sed 's/^ *\([0-9]*\) \(.*\)/| \1 | \2 |/'
  echo
  echo "Every one, as the test prints it:"
  echo
  echo '```'
  grep '^  skip ' "$log" | grep -v 'is outside the list$' | sed 's/^  skip //'
  echo '```'
  echo
  echo "## Ops outside the list"
  echo
  echo "Tests skipped because a node's op is not in the list (the first such op of each test), by op:"
  echo
  grep '^  skip .*is outside the list$' "$log" | sed 's/.*: op \(.*\) is outside the list$/\1/' | sort | uniq -c |
    sort -k1,1rn -k2 | awk '{ printf "%s%s (%s)", sep, $2, $1; sep = ", " } END { print "" }'
  echo
  echo "The summary line:"
  echo
  echo '```'
  echo "$summary"
  echo '```'
} >"$doc.tmp"
mv "$doc.tmp" "$doc"
echo "$doc: $passed of $listed tests of listed ops pass ($pct_listed%), $failed fail"
exit "$status"
