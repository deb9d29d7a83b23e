#!/bin/sh
# `systole sim` and `systole info` from the command line: a program runs from a
# .bin and straight from a .s with -D; --load/--dump move bytes exactly;
# --json and --trace write JSON that parses and holds what they promise;
# --timing-only counts the same cycles; exit codes are 0 ok, 1 trap or bad
# input, 2 usage; errors say what is wrong. Then the example checker.
# Usage (ctest, from the source root): sh tests/cli_sim.sh BUILD_DIR
set -eu
B="$1"
BIN="$B/systole"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "cli_sim: $*" >&2; exit 1; }
# py FILE EXPR: runs python with d = the JSON in FILE; EXPR must print "ok".
py() {
  r=$(python3 -c "import json, sys
d = json.load(open(sys.argv[1]))
$2" "$1" 2>&1) || fail "python on $1: $r"
  [ "$r" = ok ] || fail "$1: $r"
}
# expect CODE CMD...: runs CMD with stdout and stderr in $T/out, $T/err.
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

# ---------------------------------------------------------------- a program
# docs/isa.md section 9: y = relu(x + b) for ROWS x 16 fp32, HBM -> VMEM -> HBM.
cat > "$T/relu.s" <<'EOF'
        .equ    ROWS, 8
        .equ    COLS, 16
        .equ    BYTES, ROWS * COLS * 4
        .hbm    0x1000
x:      .zero   BYTES
b:      .f32    0.5, -1, 2, -3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.25
y:      .zero   BYTES
        .smem
dX:     .dmadesc BYTES, 1, 0, 0
dB:     .dmadesc COLS * 4, 1, 0, 0
vAdd:   .vdesc  ROWS, COLS, COLS * 4, COLS * 4, 0
        .text
        li      r1, 0
        li      r2, x
        li      r3, dX
        dma     local:r1, hbm:r2, r3, signal=s1
        li      r4, BYTES
        li      r2, b
        li      r6, dB
        dma     local:r4, hbm:r2, r6, q=1, signal=s1
        li      r5, vAdd
        swait   s1, 2
        v.add.f32  r1, r1, r4, r5
        v.relu.f32 r1, r1, r5, signal=s2
        li      r2, y
        dma     hbm:r2, local:r1, r3, wait=s2, signal=s3
        swait   s3
        halt
EOF
# x: 128 floats (i % 7) - 3 + (i % 3) / 4, exact in fp32, and the expected y.
python3 -c "import struct, sys
x = [(i % 7) - 3 + (i % 3) / 4 for i in range(128)]
b = [0.5, -1, 2, -3] + [0] * 11 + [0.25]
y = [max(x[i] + b[i % 16], 0.0) for i in range(128)]
open(sys.argv[1], 'wb').write(struct.pack('<128f', *x))
open(sys.argv[2], 'wb').write(struct.pack('<128f', *y))" "$T/x.bin" "$T/ywant.bin"

expect 0 "$BIN" asm "$T/relu.s" -o "$T/relu.bin"
expect 0 "$BIN" sim "$T/relu.bin" --chip tiny --load hbm:0x1000="$T/x.bin" --dump hbm:0x1240:512="$T/y.bin" \
  --json "$T/run.json" --trace "$T/trace.json"
has "$T/out" "cycles"
has "$T/out" "tiny"
cmp -s "$T/y.bin" "$T/ywant.bin" || fail "relu: y differs from relu(x + b)"

# --json: the run's figures.
py "$T/run.json" "
need = ['cycles', 'seconds', 'macs', 'mxu_utilization', 'units', 'bytes', 'energy_pj']
miss = [k for k in need if k not in d]
units = ['scalar', 'vpu', 'dma0', 'dma1', 'dma2', 'dma3', 'mxu0']
e = d['energy_pj']
if miss: print('missing', miss)
elif not isinstance(d['cycles'], int) or d['cycles'] <= 0: print('cycles', d['cycles'])
elif abs(d['seconds'] - d['cycles'] / 1e9) > 1e-15: print('seconds', d['seconds'])
elif sorted(d['units']) != sorted(units): print('units', sorted(d['units']))
elif d['units']['scalar']['instructions'] != 16 or d['units']['vpu']['instructions'] != 2: print('instructions')
elif d['units']['dma0']['instructions'] != 2 or d['units']['dma1']['instructions'] != 1: print('dma instructions')
elif any(set(u['stalls']) != {'semaphore', 'weights', 'shadow buffer', 'queue full', 'fence/halt'} for u in d['units'].values()): print('stall causes')
elif d['bytes']['hbm_read'] != 512 + 64 or d['bytes']['hbm_write'] != 512: print('hbm bytes', d['bytes'])
elif d['bytes']['vmem_write'] != 512 + 64 + 2 * 512 or d['bytes']['host_read'] != 0: print('vmem bytes', d['bytes'])
elif d['macs'] != 0 or d['mxu_utilization'] != 0: print('macs')
elif abs(e['total'] - sum(v for k, v in e.items() if k != 'total')) > 1e-6 * e['total']: print('energy total', e)
elif abs(e['HBM'] - 31 * (512 + 64 + 512)) > 1e-6: print('HBM energy', e['HBM'])
else: print('ok')"

# --trace: Chrome trace events, a named thread for every unit, spans for the work.
py "$T/trace.json" "
ev = d['traceEvents']
names = {e['args']['name'] for e in ev if e.get('ph') == 'M' and e.get('name') == 'thread_name'}
want = {'scalar', 'vpu', 'dma0', 'dma1', 'dma2', 'dma3', 'mxu0', 'mxu0 weights'}
xs = [e for e in ev if e.get('ph') == 'X']
bad = [e for e in xs if not isinstance(e.get('ts'), (int, float)) or not isinstance(e.get('dur'), (int, float)) or e['dur'] < 0]
kinds = {e['name'] for e in xs}
if not want <= names: print('thread names', sorted(names))
elif bad: print('bad X events', bad[:2])
elif not {'dma', 'v.add.f32', 'v.relu.f32'} <= kinds: print('span names', sorted(kinds))
elif len([e for e in xs if e['name'] == 'dma']) != 3: print('dma spans')
elif d['otherData']['cycles'] != json.load(open(sys.argv[1].replace('trace', 'run')))['cycles']: print('cycles')
else: print('ok')"

# Straight from the .s, with -D; --timing-only gives identical statistics.
expect 0 "$BIN" sim "$T/relu.s" --chip tiny -D ROWS=4 --json "$T/r4.json" -q
[ ! -s "$T/out" ] || fail "-q printed: $(cat "$T/out")"
expect 0 "$BIN" sim "$T/relu.s" --chip tiny -DROWS=4 --timing-only --json "$T/r4t.json" -q
cmp -s "$T/r4.json" "$T/r4t.json" || fail "--timing-only changes the statistics"
expect 0 "$BIN" sim "$T/relu.bin" --chip tiny --timing-only --json "$T/t.json" -q
py "$T/t.json" "
full = json.load(open(sys.argv[1].replace('t.json', 'run.json')))
print('ok' if d == full else 'timing-only %s, full %s' % (d['cycles'], full['cycles']))"
py "$T/r4.json" "
full = json.load(open(sys.argv[1].replace('r4.json', 'run.json')))
print('ok' if d['cycles'] < full['cycles'] and d['bytes']['hbm_write'] == 256 else 'ROWS=4: %s' % d['cycles'])"

# --load / --dump round trips through every memory.
printf 'halt\n' > "$T/halt.s"
dd if="$T/x.bin" of="$T/p.bin" bs=300 count=1 2>/dev/null
for place in host:0x7000000 hbm:0x3fffed4 local:0x100 local:0x100000010 vmem:0x3fed4 smem:0x3ed4; do
  expect 0 "$BIN" sim "$T/halt.s" --chip tiny -q --load "$place=$T/p.bin" --dump "$place:300=$T/q.bin"
  cmp -s "$T/p.bin" "$T/q.bin" || fail "--load/--dump round trip at $place"
done
expect 0 "$BIN" sim "$T/halt.s" --chip tiny -q --dump local:0x40:16="$T/z.bin"
[ "$(od -An -tx1 "$T/z.bin" | tr -d ' \n')" = "00000000000000000000000000000000" ] || fail "fresh VMEM is not zero"

# ---------------------------------------------------------------- exit codes and messages
printf 'li r1, 5\ndiv r2, r1, r0\nhalt\n' > "$T/div.s"
expect 1 "$BIN" sim "$T/div.s" --chip tiny
has "$T/err" "trap at pc 1 (byte 0x8: div r2, r1, r0), cycle 1: division by zero (r0 is 0)"
printf 'L: j L\n' > "$T/loop.s"
expect 1 "$BIN" sim "$T/loop.s" --chip tiny --max-cycles 1000
has "$T/err" "cycle budget of 1000 cycles exceeded"
printf 'swait s4\nhalt\n' > "$T/dead.s"
expect 1 "$BIN" sim "$T/dead.s" --chip tiny --trace "$T/dtrace.json"
has "$T/err" "deadlock"
py "$T/dtrace.json" "print('ok' if d['traceEvents'] else 'empty')"

expect 2 "$BIN"
expect 2 "$BIN" frobnicate
has "$T/err" "unknown command 'frobnicate'"
expect 2 "$BIN" sim
has "$T/err" "missing PROGRAM"
expect 2 "$BIN" sim "$T/relu.bin"
has "$T/err" "missing --chip NAME"
expect 2 "$BIN" sim "$T/relu.bin" --chip tiny --bogus
has "$T/err" "unexpected argument '--bogus'"
expect 2 "$BIN" sim "$T/relu.bin" --chip tiny --max-cycles 0
has "$T/err" "bad --max-cycles '0'"
expect 2 "$BIN" sim "$T/relu.bin" --chip tiny --max-cycles lots
expect 2 "$BIN" info
has "$T/err" "missing --chip NAME"

expect 1 "$BIN" sim "$T/relu.bin" --chip nochip
has "$T/err" "unknown chip 'nochip'"
has "$T/err" "available: tiny, tpu-v1"
expect 1 "$BIN" sim "$T/missing.bin" --chip tiny
has "$T/err" "missing.bin"
expect 1 "$BIN" sim "$T/relu.bin" --chip tiny --load "hbm:0x1000"
has "$T/err" "expected MEM:ADDR=FILE with MEM one of host, hbm, local, smem"
expect 1 "$BIN" sim "$T/relu.bin" --chip tiny --load "dram:0=$T/x.bin"
has "$T/err" "expected MEM:ADDR=FILE"
expect 1 "$BIN" sim "$T/relu.bin" --chip tiny --load "hbm:0=$T/nothere.bin"
has "$T/err" "nothere.bin"
expect 1 "$BIN" sim "$T/relu.bin" --chip tiny --load "smem:0x3f00=$T/x.bin"
has "$T/err" "outside SMEM"
expect 1 "$BIN" sim "$T/relu.bin" --chip tiny --dump "hbm:0x1240=$T/y.bin"
has "$T/err" "expected MEM:ADDR:LENGTH=FILE"
printf 'nop\n  frob r1\n' > "$T/bad.s"
expect 1 "$BIN" sim "$T/bad.s" --chip tiny
has "$T/err" "bad.s:2:3: unknown instruction 'frob'"

# ---------------------------------------------------------------- help and info
expect 0 "$BIN" --help
has "$T/out" "usage: systole COMMAND"
expect 0 "$BIN" sim --help
has "$T/out" "usage: systole sim PROGRAM --chip NAME"
has "$T/out" "--timing-only"
has "$T/out" "--max-cycles"
expect 0 "$BIN" info --chip tpu-v1
has "$T/out" "92 TOPS"
has "$T/out" "1349"
expect 1 "$BIN" info --chip nochip
has "$T/err" "unknown chip 'nochip'"

# ---------------------------------------------------------------- the examples, checked bit for bit
for args in "fc --chip tiny" "matmul --chip tiny --size 128,128,128" "fc --chip tpu-v4"; do
  # shellcheck disable=SC2086
  expect 0 "$B/asm_check" $args
  grep -q ': ok: ' "$T/out" || fail "asm_check $args: $(head -3 "$T/out")"
done

echo "cli_sim: ok"
