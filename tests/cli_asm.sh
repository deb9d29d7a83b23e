#!/bin/sh
# `systole asm` and `systole disasm`: the examples assemble, their disassembly
# assembles back into the same file, readelf accepts it, -D changes a program,
# and bad input fails with a message that points at it.
# Usage (ctest, from the source root): sh tests/cli_asm.sh BUILD_DIR
set -eu
BIN="$1/systole"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "cli_asm: $*" >&2; exit 1; }

for f in examples/asm/*.s; do
  n=$(basename "$f" .s)
  "$BIN" asm "$f" -o "$T/$n.bin" || fail "$f does not assemble"
  "$BIN" disasm "$T/$n.bin" -o "$T/$n.dis.s" || fail "disasm $n"
  "$BIN" asm "$T/$n.dis.s" -o "$T/$n.2.bin" || fail "reassembly of $n"
  cmp -s "$T/$n.bin" "$T/$n.2.bin" || fail "$n: disasm then asm gives a different file"
done

"$BIN" asm examples/asm/fc_relu.s -D K=512 -o "$T/k.bin" || fail "-D K=512"
if cmp -s "$T/fc_relu.bin" "$T/k.bin"; then fail "-D K=512 did not override .equ K"; fi

if command -v readelf >/dev/null 2>&1; then
  readelf -h -S -W "$T/fc_relu.bin" > "$T/readelf.txt" 2>&1 || fail "readelf rejects the file"
  grep -q '0x5359' "$T/readelf.txt" || fail "readelf: machine is not 0x5359"
  grep -q ' \.text ' "$T/readelf.txt" || fail "readelf: no .text"
  grep -q ' \.smem ' "$T/readelf.txt" || fail "readelf: no .smem"
  if grep -qi 'warning\|error' "$T/readelf.txt"; then fail "readelf complains: $(cat "$T/readelf.txt")"; fi
fi

# The I/O signature and chip name survive disasm/asm; readelf sees their sections.
printf '.chip "tiny"\n.input "input:0", f32, [8, 16], hbm:0x1000\n.output "out/y", bf16, [], host:0\nhalt\n' > "$T/io.s"
"$BIN" asm "$T/io.s" -o "$T/io.bin" || fail "io.s does not assemble"
"$BIN" disasm "$T/io.bin" -o "$T/io.dis.s" || fail "disasm io"
grep -q '^.input "input:0", f32, \[8, 16\], hbm:0x1000$' "$T/io.dis.s" || fail "disasm io: $(cat "$T/io.dis.s")"
"$BIN" asm "$T/io.dis.s" -o "$T/io.2.bin" || fail "reassembly of io"
cmp -s "$T/io.bin" "$T/io.2.bin" || fail "io: disasm then asm gives a different file"
if command -v readelf >/dev/null 2>&1; then
  readelf -S -W "$T/io.bin" > "$T/readelf.txt" 2>&1 || fail "readelf rejects io.bin"
  grep -q ' \.systole\.io ' "$T/readelf.txt" || fail "readelf: no .systole.io"
  grep -q ' \.systole\.chip ' "$T/readelf.txt" || fail "readelf: no .systole.chip"
  if grep -qi 'warning\|error' "$T/readelf.txt"; then fail "readelf complains: $(cat "$T/readelf.txt")"; fi
fi
printf '.input "x", f32, [-1], hbm:0\n' > "$T/badio.s"
if "$BIN" asm "$T/badio.s" -o "$T/badio.bin" 2> "$T/err.txt"; then fail "badio.s assembled"; fi
grep -q "badio.s:1:19: dimension -1 is negative" "$T/err.txt" || fail "asm io message: $(cat "$T/err.txt")"

printf 'nop\n  frob r1\n' > "$T/bad.s"
if "$BIN" asm "$T/bad.s" -o "$T/bad.bin" 2> "$T/err.txt"; then fail "bad.s assembled"; fi
grep -q "bad.s:2:3: unknown instruction 'frob'" "$T/err.txt" || fail "asm message: $(cat "$T/err.txt")"
[ ! -e "$T/bad.bin" ] || fail "a failed assembly left an output file"

printf 'junk' > "$T/junk.bin"
if "$BIN" disasm "$T/junk.bin" > /dev/null 2> "$T/err.txt"; then fail "junk disassembled"; fi
grep -q "junk.bin: too short for an ELF header" "$T/err.txt" || fail "disasm message: $(cat "$T/err.txt")"

echo "cli_asm: ok"
