#!/bin/sh
# `make bench`: Systole's speed against this host's matrix peak and against ONNX
# Runtime, measured in one run; prints a table of ratios and records it, with a
# description of the machine, in docs/performance.md (between the bench markers).
#
#   sh bench/bench.sh [BUILD_DIR]        (default build; `make bench` builds it first)
#
# Threads: SYSTOLE_THREADS if set, else every core; ONNX Runtime gets the same number.
# Needs what `make test` needs (python3-torch for the model, onnxruntime-node).
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OUT=$BUILD/bench
mkdir -p "$OUT"
THREADS=${SYSTOLE_THREADS:-$(nproc)}
export SYSTOLE_THREADS="$THREADS"
SYSTOLE=$BUILD/systole
BENCH=$BUILD/systole_bench
MODEL=$OUT/resnet50.onnx
STX=$OUT/resnet50.stx
for f in "$SYSTOLE" "$BENCH"; do
  [ -x "$f" ] || { echo "bench: $f is missing: build first (make)" >&2; exit 1; }
done

# The value after KEY in FILE ("KEY value" lines).
kv() { sed -n "s/^$1 //p" "$2" | head -n 1; }

if [ ! -s "$MODEL" ]; then
  echo "bench: exporting torchvision resnet50 to $MODEL" >&2
  /usr/bin/python3 bench/export_resnet50.py "$MODEL"
fi

echo "bench: compiling (best of 3)" >&2
best_compile=
for i in 1 2 3; do
  "$SYSTOLE" compile "$MODEL" -o "$STX" > "$OUT/compile.txt"
  t=$(sed -n 's/.*(compiled in \([0-9.]*\) s).*/\1/p' "$OUT/compile.txt")
  best_compile=$(awk -v a="$t" -v b="${best_compile:-1e9}" 'BEGIN { print (a < b ? a : b) }')
done

echo "bench: tile peak and MXU kernel GEMMs" >&2
# The peak before and after the GEMMs, the higher of each (a burst of other
# work lowers a peak, which would raise the ratios).
"$BENCH" peak > "$OUT/peak1.txt"
"$BENCH" gemm 1024 1024 1024 > "$OUT/gemm1.txt"
"$BENCH" gemm 4096 1024 4096 > "$OUT/gemm2.txt" # M K N: a 4096 x 4096 result, k = 1024
"$BENCH" peak > "$OUT/peak2.txt"
awk 'NR == FNR { v[$1] = $2; next } /^peak[0-9a-z_]*_(flops|ops) / { if ($2 + 0 > v[$1] + 0) v[$1] = $2; print $1, v[$1]; next } { print }' \
  "$OUT/peak1.txt" "$OUT/peak2.txt" > "$OUT/peak.txt"

# The host is shared: a burst of other work during one of the two measurements
# would skew their ratio. So they alternate, ROUNDS rounds of the simulator then
# ONNX Runtime, and the table gives the median over rounds of each and of the
# rounds' ratios (each round's figure is itself a median of 10 or 21 runs).
ROUNDS=${BENCH_ROUNDS:-3}
echo "bench: ResNet-50, simulator and ONNX Runtime ($THREADS threads), $ROUNDS alternating rounds" >&2
: > "$OUT/rounds.txt"
r=1
while [ "$r" -le "$ROUNDS" ]; do
  /usr/bin/time -f "rss_kib %M" -o "$OUT/full_rss.txt" "$BENCH" run "$STX" -n 11 > "$OUT/full.txt"
  /usr/bin/time -f "rss_kib %M" -o "$OUT/ort_rss.txt" node bench/ort_bench.mjs "$MODEL" "$THREADS" 21 > "$OUT/ort.txt"
  echo "$(kv median_host_seconds "$OUT/full.txt") $(kv median_seconds "$OUT/ort.txt")" >> "$OUT/rounds.txt"
  r=$((r + 1))
done
/usr/bin/time -f "rss_kib %M" -o "$OUT/timing_rss.txt" "$BENCH" run "$STX" -n 51 --timing-only > "$OUT/timing.txt"
"$SYSTOLE" run "$STX" -q --json "$OUT/run.json" # a fresh process, as a user runs it
cold=$(sed -n 's/.*"host_seconds": *\([0-9.e+-]*\).*/\1/p' "$OUT/run.json" | head -n 1)


# ---- the table
peak=$(kv peak_bf16_flops "$OUT/peak.txt")
peak8=$(kv peak_int8_ops "$OUT/peak.txt")
pk=$(sed -n 's/^peak_bf16_kind //p' "$OUT/peak.txt")
pk8=$(sed -n 's/^peak_int8_kind //p' "$OUT/peak.txt")
kernel=$(kv kernel "$OUT/gemm1.txt")
# The median of column C of rounds.txt (C = 3: the rounds' ratios).
round_median() {
  awk -v c="$1" '{ v[NR] = c == 3 ? $1 / $2 : $c } END {
    n = NR; for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
    print n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }' "$OUT/rounds.txt"
}
full=$(round_median 1)
ratio=$(round_median 3)
rounds=$(awk '{ printf "%s%.1f/%.1f", (NR > 1 ? ", " : ""), $1 * 1e3, $2 * 1e3 }' "$OUT/rounds.txt")
first=$(kv first_host_seconds "$OUT/full.txt")
timing=$(kv median_host_seconds "$OUT/timing.txt")
ort=$(round_median 2)
cycles=$(kv cycles "$OUT/full.txt")
tcycles=$(kv cycles "$OUT/timing.txt")
same=no
[ "$cycles" = "$tcycles" ] && same=yes

awk -v peak="$peak" -v peak8="$peak8" -v pk="$pk" -v pk8="$pk8" -v k="$kernel" -v th="$THREADS" \
  -v g1b="$(kv gemm_bf16_flops "$OUT/gemm1.txt")" -v g2b="$(kv gemm_bf16_flops "$OUT/gemm2.txt")" \
  -v g1i="$(kv gemm_int8_ops "$OUT/gemm1.txt")" -v g2i="$(kv gemm_int8_ops "$OUT/gemm2.txt")" \
  -v g1bl="$(kv gemm_bf16_flops_with_loads "$OUT/gemm1.txt")" -v g2bl="$(kv gemm_bf16_flops_with_loads "$OUT/gemm2.txt")" \
  -v full="$full" -v first="$first" -v cold="$cold" -v ort="$ort" -v timing="$timing" -v comp="$best_compile" \
  -v ratio="$ratio" -v rounds="$rounds" -v nr="$ROUNDS" -v frss="$(kv rss_kib "$OUT/full_rss.txt")" -v trss="$(kv rss_kib "$OUT/timing_rss.txt")" \
  -v orss="$(kv rss_kib "$OUT/ort_rss.txt")" -v cycles="$cycles" -v same="$same" '
function t(x) { return sprintf("%.2f T", x / 1e12) }
function ms(x) { return sprintf("%.1f ms", x * 1e3) }
function mib(x) { return sprintf("%.0f MiB", x / 1024) }
function q(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "n/a" }
function row(what, val, ref, ratio, goal) { printf "| %s | %s | %s | %s | %s |\n", what, val, ref, ratio, goal }
BEGIN {
  print "| measurement | Systole | against | ratio | goal |"
  print "|---|---|---|---|---|"
  row("bf16 GEMM 1024 x 1024 x 1024, MXU kernel " k, t(g1b) "FLOP/s", "tile peak (" pk ") " t(peak) "FLOP/s", q(g1b, peak), ">= 0.50")
  row("bf16 GEMM 4096 x 4096 x 1024", t(g2b) "FLOP/s", "tile peak " t(peak) "FLOP/s", q(g2b, peak), ">= 0.50")
  row("bf16 GEMMs with the weight tile loads", t(g1bl) ", " t(g2bl) "FLOP/s", "tile peak", q(g1bl, peak) ", " q(g2bl, peak), "")
  row("int8 GEMM 1024 x 1024 x 1024", t(g1i) "OP/s", "tile peak (" pk8 ") " t(peak8) "OP/s", q(g1i, peak8), "")
  row("int8 GEMM 4096 x 4096 x 1024", t(g2i) "OP/s", "tile peak " t(peak8) "OP/s", q(g2i, peak8), "")
  row("ResNet-50 full simulation (values and " cycles " cycles), median of 10; median of " nr " rounds alternated with ONNX Runtime", ms(full), "ONNX Runtime fp32, median of 21, " ms(ort), sprintf("%.2f", ratio), "<= 1.00")
  row("ResNet-50 full simulation, first run in the process", ms(first), "ONNX Runtime fp32 " ms(ort), sprintf("%.2f", first / ort), "")
  row("ResNet-50 full simulation, `systole run` (fresh process)", ms(cold), "ONNX Runtime fp32 " ms(ort), sprintf("%.2f", cold / ort), "")
  row("ResNet-50 timing only, median of 50 (same cycles: " same ")", ms(timing), "10 ms", sprintf("%.2f", timing / 0.010), "< 1")
  row("ResNet-50 compile (`systole compile`, best of 3)", sprintf("%.3f s", comp), "1 s", sprintf("%.2f", comp), "well under 1")
  row("peak memory, full simulation process", mib(frss), "ONNX Runtime process " mib(orss), sprintf("%.2f", frss / orss), "")
  row("peak memory, timing-only process", mib(trss), "ONNX Runtime process " mib(orss), sprintf("%.2f", trss / orss), "")
  printf "\nThreads: %d for Systole and for ONNX Runtime. The full-simulation ratio is the median of the ratios of the rounds; the rounds, Systole/ONNX Runtime in ms: %s.\n", th, rounds
}' > "$OUT/table.md"

# ---- the machine
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
fam=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
model=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
amx=$(grep -o -w 'amx[a-z_0-9]*\|avx512_bf16\|avx512_vnni\|avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
{
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on: $cpu (family ${fam:-?} model ${model:-?}), $(nproc) CPUs (${amx:-no AMX}${amx:+$(echo "$amx" | grep -q amx || echo ', no AMX')}), $mem,"
  echo "$(uname -sr), $(cc --version | head -n 1), node $(node --version),"
  echo "onnxruntime-node $(kv ort_version "$OUT/ort.txt"); load average $(cut -d ' ' -f 1-3 /proc/loadavg) at the end."
  echo
  cat "$OUT/table.md"
} > "$OUT/results.md"

cat "$OUT/results.md"

# ---- docs/performance.md: replace what lies between the markers
DOC=docs/performance.md
if grep -q '^<!-- bench:begin -->' "$DOC" && grep -q '^<!-- bench:end -->' "$DOC"; then
  awk -v res="$OUT/results.md" '
    /^<!-- bench:begin -->/ { print; while ((getline line < res) > 0) print line; skip = 1; next }
    /^<!-- bench:end -->/ { skip = 0 }
    !skip' "$DOC" > "$OUT/performance.md" && cp "$OUT/performance.md" "$DOC"
  echo "bench: recorded in $DOC" >&2
else
  echo "bench: $DOC has no bench markers: not recorded" >&2
fi
