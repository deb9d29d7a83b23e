// The assembler, the disassembler and the program file: encodings of every
// form, round trips of random legal and illegal words, error messages, a fuzz
// loop over mutated source, and an ELF reader fed broken files.
#include "isa/isa.h"
#include "testlib.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[ISA_ERR_LEN];

// ---------------------------------------------------------------- helpers

static isa_program assemble(const char *src, const char *const *defs) {
  isa_program p;
  int rc = isa_assemble(src, "t.s", defs, &p, err, sizeof err);
  CHECK(rc == 0, "assembly failed: %s\n--- source:\n%s", err, src);
  return p;
}

// Assembly must fail with exactly this message.
static void fails(const char *src, const char *want) {
  isa_program p;
  err[0] = 0;
  int rc = isa_assemble(src, "t.s", NULL, &p, err, sizeof err);
  CHECK(rc == -1, "assembled, expected \"%s\"\n--- source:\n%s", want, src);
  CHECK(rc == 0 || !strcmp(err, want), "got \"%s\"\n    want \"%s\"", err, want);
  CHECK(p.code == NULL && p.ncode == 0 && p.nsegs == 0, "program not empty after an error");
  isa_program_free(&p);
}

static uint64_t enc(isa_inst in) { return isa_encode(&in); }

// The single word of a one-instruction source.
static uint64_t word_of(const char *line) {
  isa_program p = assemble(line, NULL);
  uint64_t w = p.ncode == 1 ? p.code[0] : 0xbad;
  CHECK(p.ncode == 1, "%s: %zu words", line, p.ncode);
  isa_program_free(&p);
  return w;
}

static const isa_segment *find_seg(const isa_program *p, isa_seg_kind k, uint64_t addr) {
  for (size_t i = 0; i < p->nsegs; i++)
    if (p->segs[i].kind == k && p->segs[i].addr == addr)
      return &p->segs[i];
  return NULL;
}

static uint32_t le32(const uint8_t *b) { return (uint32_t)(b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24); }

static uint64_t le64(const uint8_t *b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)b[i] << 8 * i;
  return v;
}

// Value of `expr` as the assembler computes it: stored as .i64 in SMEM.
static int64_t value(const char *expr, const char *const *defs) {
  char src[1024];
  snprintf(src, sizeof src, ".smem\n.i64 %s\n", expr);
  isa_program p = assemble(src, defs);
  int64_t v = p.nsegs == 1 && p.segs[0].size == 8 ? (int64_t)le64(p.segs[0].data) : 0x5eadbeef;
  isa_program_free(&p);
  return v;
}

static bool same_io(const isa_io *s, const isa_io *t) {
  if (s->role != t->role || strcmp(s->name, t->name) || s->dtype != t->dtype || s->rank != t->rank ||
      s->mem != t->mem || s->addr != t->addr)
    return false;
  for (int d = 0; d < s->rank; d++)
    if (s->dims[d] != t->dims[d])
      return false;
  return true;
}

static bool same_program(const isa_program *a, const isa_program *b) {
  if (a->ncode != b->ncode || a->nsegs != b->nsegs || a->nio != b->nio || strcmp(a->chip, b->chip) ||
      a->nlayers != b->nlayers)
    return false;
  for (size_t i = 0; i < a->nlayers; i++) {
    const isa_layer *l = &a->layers[i], *m = &b->layers[i];
    if (strcmp(l->name, m->name) || strcmp(l->op, m->op) || l->pc_begin != m->pc_begin || l->pc_end != m->pc_end ||
        l->macs != m->macs)
      return false;
  }
  for (size_t i = 0; i < a->nio; i++)
    if (!same_io(&a->io[i], &b->io[i]))
      return false;
  if (a->ncode && memcmp(a->code, b->code, a->ncode * 8))
    return false;
  for (size_t i = 0; i < a->nsegs; i++) {
    const isa_segment *s = &a->segs[i], *t = &b->segs[i];
    if (s->kind != t->kind || s->addr != t->addr || s->size != t->size ||
        (s->size && memcmp(s->data, t->data, s->size)))
      return false;
  }
  return true;
}

// disasm_program, then assemble: must give the same program. Reports the
// first differing word with its text.
static void round_trip(const isa_program *p, const char *what) {
  char *text = isa_disasm_program(p);
  CHECK(text != NULL, "%s: disasm_program failed", what);
  if (!text)
    return;
  isa_program q;
  int rc = isa_assemble(text, "rt.s", NULL, &q, err, sizeof err);
  CHECK(rc == 0, "%s: reassembly failed: %s", what, err);
  if (rc == 0 && !same_program(p, &q)) {
    CHECK(false, "%s: round trip differs (%zu/%zu words, %zu/%zu segs)", what, p->ncode, q.ncode,
          p->nsegs, q.nsegs);
    for (size_t i = 0; i < p->ncode && i < q.ncode; i++) {
      if (p->code[i] != q.code[i]) {
        char line[160];
        isa_disasm_inst(p->code[i], i, line, sizeof line);
        fprintf(stderr, "  word %zu: 0x%016llx -> \"%s\" -> 0x%016llx\n", i,
                (unsigned long long)p->code[i], line, (unsigned long long)q.code[i]);
        break;
      }
    }
  }
  isa_program_free(&q);
  free(text);
}

static void check_disasm(uint64_t w, uint64_t pc, const char *want) {
  char buf[160];
  int n = isa_disasm_inst(w, pc, buf, sizeof buf);
  CHECK(!strcmp(buf, want), "0x%016llx: got \"%s\" want \"%s\"", (unsigned long long)w, buf, want);
  CHECK(n == (int)strlen(want), "length %d", n);
}

// ---------------------------------------------------------------- encodings

static void test_scalar_encodings(void) {
  CHECK(word_of("nop") == enc((isa_inst){.op = OP_NOP}), "nop");
  CHECK(word_of("  halt ; done") == enc((isa_inst){.op = OP_HALT}), "halt");
  CHECK(word_of("fence # all") == enc((isa_inst){.op = OP_FENCE}), "fence");
  CHECK(word_of("add r1, r2, r3") == enc((isa_inst){.op = OP_ADD, .ra = 1, .rb = 2, .rc = 3}), "add");
  CHECK(word_of("rem r31,r30,r29") == enc((isa_inst){.op = OP_REM, .ra = 31, .rb = 30, .rc = 29}), "rem");
  CHECK(word_of("addi r1, r2, -7") == enc((isa_inst){.op = OP_ADDI, .ra = 1, .rb = 2, .imm = -7}), "addi");
  CHECK(word_of("shli r1, r2, 63") == enc((isa_inst){.op = OP_SHLI, .ra = 1, .rb = 2, .imm = 63}), "shli");
  CHECK(word_of("li r5, -2147483648") == enc((isa_inst){.op = OP_LI, .ra = 5, .imm = INT32_MIN}), "li");
  CHECK(word_of("lih r5, 0xffffffff") == enc((isa_inst){.op = OP_LIH, .ra = 5, .imm = -1}), "lih");
  CHECK(word_of("lih r5, -1") == enc((isa_inst){.op = OP_LIH, .ra = 5, .imm = -1}), "lih -1");
  CHECK(word_of("ld r1, 16(r2)") == enc((isa_inst){.op = OP_LD, .ra = 1, .rb = 2, .imm = 16}), "ld");
  CHECK(word_of("st r1, (r2)") == enc((isa_inst){.op = OP_ST, .ra = 1, .rb = 2}), "st ()");
  CHECK(word_of("ldw r1, (4+4)(r2)") == enc((isa_inst){.op = OP_LDW, .ra = 1, .rb = 2, .imm = 8}), "ldw");
  CHECK(word_of("stw r1, -4 (r2)") == enc((isa_inst){.op = OP_STW, .ra = 1, .rb = 2, .imm = -4}), "stw");
  CHECK(word_of("beq r1, r2, 0") == enc((isa_inst){.op = OP_BEQ, .ra = 1, .rb = 2, .imm = 0}), "beq");
  CHECK(word_of("bne r1, r2, @-3") == enc((isa_inst){.op = OP_BNE, .ra = 1, .rb = 2, .imm = -3}), "bne @");
  CHECK(word_of("jal r1, @100") == enc((isa_inst){.op = OP_JAL, .ra = 1, .imm = 100}), "jal");
  CHECK(word_of("jalr r0, r1, 2") == enc((isa_inst){.op = OP_JALR, .rb = 1, .imm = 2}), "jalr");
  CHECK(word_of("dbnz r3, @0") == enc((isa_inst){.op = OP_DBNZ, .ra = 3}), "dbnz");
  CHECK(word_of("swait s3") == enc((isa_inst){.op = OP_SWAIT, .imm = 1 << 8 | 3}), "swait");
  CHECK(word_of("ssignal s31, 8388607") ==
            enc((isa_inst){.op = OP_SSIGNAL, .imm = (int32_t)(8388607u << 8 | 31)}), "ssignal");
  CHECK(word_of("csrr r1, vpu_sublanes") ==
            enc((isa_inst){.op = OP_CSRR, .ra = 1, .imm = CSR_VPU_SUBLANES}), "csrr");
  CHECK(word_of("csrr r1, 3") == enc((isa_inst){.op = OP_CSRR, .ra = 1, .imm = 3}), "csrr n");
  CHECK(word_of("mv r4, r5") == enc((isa_inst){.op = OP_ADDI, .ra = 4, .rb = 5}), "mv");
  CHECK(word_of("j @7") == enc((isa_inst){.op = OP_JAL, .imm = 7}), "j");
  CHECK(word_of(".inst 0xffffffffffffffff") == UINT64_MAX, ".inst");
}

static void test_tile_encodings(void) {
  CHECK(word_of("dma local:r3, hbm:r4, r5, q=1, signal=s2") ==
            enc((isa_inst){.op = OP_DMA, .ra = 3, .rb = 4, .rc = 5, .unit = 1,
                           .funct = SPACE_LOCAL << 2 | SPACE_HBM, .signal = true, .signal_sem = 2}),
        "dma");
  CHECK(word_of("dma hbm:r1, host:r2, r3, wait=s9, q=7") ==
            enc((isa_inst){.op = OP_DMA, .ra = 1, .rb = 2, .rc = 3, .unit = 7,
                           .funct = SPACE_HBM << 2 | SPACE_HOST, .wait = true, .wait_sem = 9}),
        "dma options in another order");
  CHECK(word_of("mxu.ldw.i8 r1, r2, r3, r4, mxu=2") ==
            enc((isa_inst){.op = OP_MXU_LDW, .ra = 1, .rb = 2, .rc = 3, .rd = 4, .unit = 2,
                           .dt_src1 = DT_I8}),
        "mxu.ldw");
  CHECK(word_of("mxu.mm.bf16 r1, r2, r3, r4, acc, signal=s1, mxu=1") ==
            enc((isa_inst){.op = OP_MXU_MM, .ra = 1, .rb = 2, .rc = 3, .rd = 4, .unit = 1,
                           .dt_src1 = DT_BF16, .flags = MXU_FLAG_ACC, .signal = true,
                           .signal_sem = 1}),
        "mxu.mm");
  uint64_t add = enc((isa_inst){.op = OP_VPU, .funct = VOP_ADD, .ra = 1, .rb = 2, .rc = 3, .rd = 4,
                                .dt_dst = DT_BF16, .dt_src1 = DT_BF16, .dt_src2 = DT_BF16});
  CHECK(word_of("v.add.bf16 r1, r2, r3, r4") == add, "v.add");
  CHECK(word_of("v.add.bf16.bf16.bf16 r1, r2, r3, r4") == add, "v.add full types");
  CHECK(word_of("v.requant.i8.i32 r1, r2, r4") ==
            enc((isa_inst){.op = OP_VPU, .funct = VOP_REQUANT, .ra = 1, .rb = 2, .rd = 4,
                           .dt_dst = DT_I8, .dt_src1 = DT_I32}),
        "v.requant");
  CHECK(word_of("v.exp.f32 r1, r2, r4, wait=s0") ==
            enc((isa_inst){.op = OP_VPU, .funct = VOP_EXP, .ra = 1, .rb = 2, .rd = 4, .wait = true}),
        "v.exp");
}

static void test_disasm_text(void) {
  check_disasm(enc((isa_inst){.op = OP_DMA, .ra = 3, .rb = 4, .rc = 5, .unit = 1,
                              .funct = SPACE_LOCAL << 2 | SPACE_HBM, .signal = true, .signal_sem = 2}),
               0, "dma local:r3, hbm:r4, r5, q=1, signal=s2");
  check_disasm(enc((isa_inst){.op = OP_BEQ, .ra = 1, .rb = 2, .imm = -3}), 10, "beq r1, r2, @7");
  check_disasm(enc((isa_inst){.op = OP_JAL, .imm = -3}), 1, "jal r0, @-2");
  check_disasm(enc((isa_inst){.op = OP_LIH, .ra = 2, .imm = -1}), 0, "lih r2, 0xffffffff");
  check_disasm(enc((isa_inst){.op = OP_LI, .ra = 2, .imm = -1}), 0, "li r2, -1");
  check_disasm(enc((isa_inst){.op = OP_LD, .ra = 2, .rb = 3}), 0, "ld r2, 0(r3)");
  check_disasm(enc((isa_inst){.op = OP_SWAIT, .imm = 1 << 8 | 4}), 0, "swait s4");
  check_disasm(enc((isa_inst){.op = OP_SSIGNAL, .imm = 5 << 8 | 4}), 0, "ssignal s4, 5");
  check_disasm(enc((isa_inst){.op = OP_CSRR, .ra = 9, .imm = CSR_ACC_BASE}), 0, "csrr r9, acc_base");
  check_disasm(enc((isa_inst){.op = OP_MXU_MM, .ra = 1, .rb = 2, .rc = 3, .rd = 4, .dt_src1 = DT_I8,
                              .flags = MXU_FLAG_ACC, .wait = true, .wait_sem = 5}),
               0, "mxu.mm.i8 r1, r2, r3, r4, acc, wait=s5");
  check_disasm(enc((isa_inst){.op = OP_VPU, .funct = VOP_MAX, .ra = 1, .rb = 2, .rc = 3, .rd = 4,
                              .dt_dst = DT_F32, .dt_src1 = DT_F32, .dt_src2 = DT_BF16}),
               0, "v.max.f32.f32.bf16 r1, r2, r3, r4");
  check_disasm(enc((isa_inst){.op = OP_VPU, .funct = VOP_TRANS, .ra = 1, .rb = 2, .rd = 4,
                              .dt_dst = DT_BF16, .dt_src1 = DT_BF16}),
               0, "v.trans.bf16 r1, r2, r4");
  check_disasm(0, 0, ".inst 0x0000000000000000");
  check_disasm(0x10000000ffffffffull, 0, ".inst 0x10000000ffffffff"); // add with an imm
  check_disasm(enc((isa_inst){.op = OP_SHLI, .imm = 5}) + 59, 0, ".inst 0x2500000000000040");
  char small[8];
  int n = isa_disasm_inst(enc((isa_inst){.op = OP_NOP}) + 0, 0, small, sizeof small);
  CHECK(n == 3 && !strcmp(small, "nop"), "nop");
  n = isa_disasm_inst(enc((isa_inst){.op = OP_ADD, .ra = 1, .rb = 2, .rc = 3}), 0, small, sizeof small);
  CHECK(n == 14 && !strcmp(small, "add r1,"), "truncation keeps snprintf semantics: %d '%s'", n, small);
  CHECK(isa_disasm_inst(0, 0, NULL, 0) == 24, "length only");
}

// ---------------------------------------------------------------- expressions and symbols

static void test_expressions(void) {
  CHECK(value("1 + 2 * 3", NULL) == 7, "precedence");
  CHECK(value("(1 + 2) * 3", NULL) == 9, "parens");
  CHECK(value("0x10 | 0b11 ^ 1 & 3", NULL) == (0x10 | (3 ^ (1 & 3))), "bit ops");
  CHECK(value("1 << 4 + 1", NULL) == 32, "shift below add");
  CHECK(value("-16 >> 2", NULL) == -4, "arithmetic shift");
  CHECK(value("~0", NULL) == -1, "not");
  CHECK(value("-7 / 2", NULL) == -3 && value("-7 % 2", NULL) == -1, "C division");
  CHECK(value("(-9223372036854775807 - 1) / -1", NULL) == INT64_MIN, "INT64_MIN / -1");
  CHECK(value("(-9223372036854775807 - 1) % -1", NULL) == 0, "INT64_MIN %% -1");
  CHECK(value("0xffffffffffffffff", NULL) == -1, "unsigned 64-bit literal");
  CHECK(value("18446744073709551615 + 2", NULL) == 1, "wraps");
  CHECK(value("- - 5", NULL) == 5 && value("+5", NULL) == 5, "unary chains");
  CHECK(value("A * 2\n.equ A, B + 1\n.set B, 20", NULL) == 42, "forward .equ chain");
  const char *d[] = {"A=100", "B=A*2", NULL};
  CHECK(value("A + B\n.equ A, 1", d) == 300, "defines override .equ");
  const char *d2[] = {"X=1", "X=5", NULL};
  CHECK(value("X", d2) == 5, "later define wins");
  fails(".smem\n.i64 1/0", "t.s:2:7: division by zero");
  fails(".smem\n.i64 1 << 64", "t.s:2:8: shift count 64 is not in 0..63");
  fails(".smem\n.i64 99999999999999999999", "t.s:2:6: number '99999999999999999999' does not fit 64 bits");
  fails(".smem\n.i64 0x1g", "t.s:2:6: bad number '0x1g'");
  fails(".smem\n.i64 1.5", "t.s:2:6: bad number '1.5'");
  fails(".smem\n.i64 (1", "t.s:2:8: expected ')', found end of line");
  fails(".smem\n.i64 r1", "t.s:2:6: 'r1' is a register, not a value");
  fails(".smem\n.i64 nothere + 1", "t.s:2:6: undefined symbol 'nothere'");
  char deep[1200] = ".smem\n.i64 ";
  for (int i = 0; i < 500; i++)
    strcat(deep, "(");
  fails(deep, "t.s:2:206: expression nested too deeply");
  isa_program p;
  const char *bad[] = {"N=1+", NULL};
  CHECK(isa_assemble("nop", "t.s", bad, &p, err, sizeof err) == -1 &&
            !strcmp(err, "-D N=1+: column 5: expected a value, found end of line"), "%s", err);
  const char *bad2[] = {"N=M", NULL};
  CHECK(isa_assemble("nop", "t.s", bad2, &p, err, sizeof err) == -1 &&
            !strcmp(err, "-D N=M: column 3: undefined symbol 'M'"), "%s", err);
  const char *bad3[] = {"r1=3", NULL};
  CHECK(isa_assemble("nop", "t.s", bad3, &p, err, sizeof err) == -1 &&
            !strcmp(err, "-D r1=3: column 1: expected NAME=VALUE"), "%s", err);
  const char *lbl[] = {"start=3", NULL};
  CHECK(isa_assemble("start: nop", "t.s", lbl, &p, err, sizeof err) == -1 &&
            !strcmp(err, "t.s:1:1: label 'start' is also defined with -D"), "%s", err);
}

static void test_labels(void) {
  // Text labels count instructions; li grows to two words when its value
  // (here a later label, scaled) does not fit 32 bits, moving later labels.
  isa_program p = assemble("start: li r1, BIG\n"
                           "       li r2, end\n"
                           "       j end\n"
                           "       .equ BIG, end << 32\n"
                           "end:   halt\n",
                           NULL);
  CHECK(p.ncode == 5, "li + lih, li, j, halt: %zu", p.ncode);
  if (p.ncode == 5) {
    CHECK(p.code[0] == enc((isa_inst){.op = OP_LI, .ra = 1, .imm = 0}), "li low");
    CHECK(p.code[1] == enc((isa_inst){.op = OP_LIH, .ra = 1, .imm = 4}), "lih high");
    CHECK(p.code[2] == enc((isa_inst){.op = OP_LI, .ra = 2, .imm = 4}), "li end");
    CHECK(p.code[3] == enc((isa_inst){.op = OP_JAL, .imm = 1}), "j end");
  }
  isa_program_free(&p);
  // li of 64-bit values.
  struct { const char *v; int words; int32_t lo, hi; } lis[] = {
      {"0x7fffffff", 1, INT32_MAX, 0},       {"-0x80000000", 1, INT32_MIN, 0},
      {"0x80000000", 2, INT32_MIN, 0},       {"0xffffffff", 2, -1, 0},
      {"-0x80000001", 2, INT32_MAX, -1},     {"0x8000000000000000", 2, 0, INT32_MIN},
      {"0x123456789abcdef0", 2, (int32_t)0x9abcdef0, 0x12345678},
  };
  for (size_t i = 0; i < sizeof lis / sizeof lis[0]; i++) {
    char src[64];
    snprintf(src, sizeof src, "li r7, %s", lis[i].v);
    p = assemble(src, NULL);
    CHECK((int)p.ncode == lis[i].words, "%s: %zu words", src, p.ncode);
    if ((int)p.ncode == lis[i].words) {
      CHECK(p.code[0] == enc((isa_inst){.op = OP_LI, .ra = 7, .imm = lis[i].lo}), "%s low", src);
      if (lis[i].words == 2)
        CHECK(p.code[1] == enc((isa_inst){.op = OP_LIH, .ra = 7, .imm = lis[i].hi}), "%s high", src);
    }
    isa_program_free(&p);
  }
  // Data labels: section addresses, alignment of descriptors, .smem continuing.
  p = assemble(".smem 4\n"
               "a: .i8 1\n"
               "d: .dmadesc 64, 2, 128, 64\n"
               ".text\n"
               "   li r1, d\n"
               "   li r2, v\n"
               "   li r3, h\n"
               "   li r4, a\n"
               "   li r5, h2\n"
               ".smem\n"
               "v: .vdesc 2, 3, 4, 5\n"
               "h: .hbm 0x4000\n"
               "   .i16 0xffff, -32768\n"
               "h2: .host 0x10\n"
               "   .zero 3\n"
               "al: .align 4\n"
               "   .i32 0xdeadbeef\n"
               ".text\n"
               ".L1: li r6, al\n"
               "   j .L1\n",
               NULL);
  int64_t want[] = {8, 88, 0x4000, 4, 0x10, 0x14};
  CHECK(p.ncode == 7, "six li and a j");
  CHECK(p.ncode == 7 && p.code[6] == enc((isa_inst){.op = OP_JAL, .imm = -1}), "j .L1");
  for (int i = 0; i < 6 && p.ncode == 7; i++)
    CHECK(p.code[i] == enc((isa_inst){.op = OP_LI, .ra = (uint8_t)(i + 1), .imm = (int32_t)want[i]}),
          "label %d", i);
  const isa_segment *smem = find_seg(&p, SEG_SMEM, 0);
  CHECK(smem && smem->size == 8 + 80 + 72, "SMEM image 0..160: %zu", smem ? smem->size : 0);
  if (smem && smem->size == 160) {
    CHECK(smem->data[4] == 1 && smem->data[0] == 0 && smem->data[5] == 0, "a");
    uint64_t dd[10] = {64, 2, 128, 64, 1, 0, 0, 1, 0, 0};
    for (int i = 0; i < 10; i++)
      CHECK(le64(smem->data + 8 + 8 * i) == dd[i], "dmadesc word %d", i);
    uint64_t vd[9] = {2, 3, 4, 5, 5, 1, 1, 0, 0};
    for (int i = 0; i < 9; i++)
      CHECK(le64(smem->data + 88 + 8 * i) == vd[i], "vdesc word %d", i);
  }
  const isa_segment *h = find_seg(&p, SEG_HBM, 0x4000), *h2 = find_seg(&p, SEG_HOST, 0x10);
  CHECK(h && h->size == 4 && !memcmp(h->data, "\xff\xff\x00\x80", 4), "hbm data");
  CHECK(h2 && h2->size == 8 && !memcmp(h2->data, "\0\0\0\0\xef\xbe\xad\xde", 8), "host data");
  CHECK(p.nsegs == 3 && p.segs[0].kind == SEG_SMEM, "segments: SMEM first");
  isa_program_free(&p);
  // Touching runs merge; descriptor defaults; vdesc with every field.
  p = assemble(".hbm 0x100\n.i8 1\n.hbm 0x101\n.i8 2\n.hbm 0x200\n.i8 3\n"
               ".host 0\n.vdesc 1, 2, 3, 4, 5, 0, -7, 63, -128\n"
               ".dmadesc 1, 2, 3, 4, 5, 6, 7, 8, 9, 10\n",
               NULL);
  CHECK(p.nsegs == 3, "merged: %zu", p.nsegs);
  h = find_seg(&p, SEG_HBM, 0x100);
  CHECK(h && h->size == 2 && h->data[1] == 2, "merged run");
  h2 = find_seg(&p, SEG_HOST, 0);
  if (h2 && h2->size == 152) {
    int64_t vd[9] = {1, 2, 3, 4, 5, 0, -7, 63, -128};
    for (int i = 0; i < 9; i++)
      CHECK((int64_t)le64(h2->data + 8 * i) == vd[i], "vdesc word %d", i);
    for (int i = 0; i < 10; i++)
      CHECK(le64(h2->data + 72 + 8 * i) == (uint64_t)i + 1, "dmadesc word %d", i);
  } else {
    CHECK(false, "host segment");
  }
  isa_program_free(&p);
}

static void test_rept(void) {
  isa_program p = assemble(".equ N, 2\n"
                           "x:  .rept I, N\n"
                           "      .rept J, 3\n"
                           "        addi r(I * 10 + J), r0, I * 3 + J ; r0, r1, r2, r10, r11, r12\n"
                           "      .endr\n"
                           "      ssignal s(I + 30)\n"
                           "    .endr\n"
                           "    .rept I, 0\n"
                           "      nop\n"
                           "    .endr\n"
                           "    .rept 2\n"
                           "      halt\n"
                           "    .endr\n"
                           "    j x\n",
                           NULL);
  CHECK(p.ncode == 11, "2 x (3 + 1) + 2 + 1 words: %zu", p.ncode);
  if (p.ncode == 11) {
    CHECK(p.code[5] == enc((isa_inst){.op = OP_ADDI, .ra = 11, .imm = 4}), "I=1 J=1");
    CHECK(p.code[7] == enc((isa_inst){.op = OP_SSIGNAL, .imm = 1 << 8 | 31}), "s(I + 30)");
    CHECK(p.code[8] == enc((isa_inst){.op = OP_HALT}) && p.code[9] == p.code[8], "plain .rept");
    CHECK(p.code[10] == enc((isa_inst){.op = OP_JAL, .imm = -10}), "label before the loop");
  }
  isa_program_free(&p);
  p = assemble(".rept K, 2\n.hbm 0x100 * (K + 1)\n.i8 K\n.endr\n.text\nli r(1), 5\n"
               "ld r2, 8(r(3))\nst r2, (r(1 + 3))\n", NULL);
  CHECK(p.nsegs == 2 && p.segs[1].addr == 0x200 && p.segs[1].data[0] == 1, "data in .rept");
  CHECK(p.ncode == 3 && p.code[1] == enc((isa_inst){.op = OP_LD, .ra = 2, .rb = 3, .imm = 8}), "r(3)");
  CHECK(p.ncode == 3 && p.code[2] == enc((isa_inst){.op = OP_ST, .ra = 2, .rb = 4}), "(r(4))");
  isa_program_free(&p);
  fails(".rept 2\nx: nop\n.endr", "t.s:2:1: 'x' is already defined on line 2");
  fails(".rept 2\nnop\n", "t.s:1:1: .rept without a matching .endr");
  fails("nop\n.endr", "t.s:2:1: .endr without .rept");
  fails(".rept 1\ny: .endr", "t.s:2:1: a label cannot name an .endr");
  fails(".rept I, 2\n.rept I, 2\n.endr\n.endr", "t.s:2:7: 'I' is already defined");
  fails("I: nop\n.rept I, 2\n.endr", "t.s:2:7: 'I' is already defined");
  fails(".rept I, 2\n.endr\nI: nop", "t.s:3:1: 'I' is a .rept counter");
  fails(".rept I, 2\n.endr\nli r1, I", "t.s:3:8: undefined symbol 'I'");
  fails(".rept -1\n.endr", "t.s:1:7: repeat count -1 is out of range (0..16777216)");
  fails(".rept 1\n.rept 1 x\n.endr\n.endr", "t.s:2:9: unexpected 'x' at end of statement");
  fails(".rept J, 33\nssignal s(J)\n.endr", "t.s:2:11: semaphore 32 is out of range (0..31)");
  fails(".rept 10000\n.rept 10000\n.endr\n.endr",
        "t.s:2:1: more than 33554432 statements in one pass (a runaway .rept?)");
}

// Floats: the literal is rounded once to the target format, to nearest even.
static uint16_t bf16_ref(uint32_t f) { // from fp32 bits, exact value known
  if ((f & 0x7fffffff) > 0x7f800000)
    return (uint16_t)(f >> 16 | 0x40);
  return (uint16_t)((f + 0x7fff + (f >> 16 & 1)) >> 16);
}

static void test_floats(void) {
  isa_program p = assemble(".hbm 0\n"
                           ".f32 1.5, -inf, nan, 0x3f800000, 1e-40, 3.4028235e38, 1e39, -0.0, .5\n"
                           ".bf16 1.0, 3.14159, 1.00390625, 1.01171875, 3.4e38, 1e-40, -2.5e-3, infinity\n",
                           NULL);
  uint32_t f[] = {0x3fc00000, 0xff800000, 0x7fc00000, 0x3f800000, 0x000116c2, 0x7f7fffff,
                  0x7f800000, 0x80000000, 0x3f000000};
  uint16_t b[] = {0x3f80, 0x4049, 0x3f80, 0x3f82, 0x7f80, 0x0001, 0xbb24, 0x7f80};
  if (p.nsegs == 1 && p.segs[0].size == 9 * 4 + 8 * 2) {
    for (int i = 0; i < 9; i++)
      CHECK(le32(p.segs[0].data + 4 * i) == f[i], "f32 %d: 0x%08x", i, le32(p.segs[0].data + 4 * i));
    for (int i = 0; i < 8; i++) {
      const uint8_t *q = p.segs[0].data + 36 + 2 * i;
      CHECK_BITS((uint32_t)(q[0] | q[1] << 8), b[i], "bf16 %d", i);
    }
  } else {
    CHECK(false, "float segment");
  }
  isa_program_free(&p);
  // Random fp32 values written out exactly: .f32 must give the same bits and
  // .bf16 the fp32 value rounded to nearest even.
  for (int i = 0; i < 2000; i++) {
    uint32_t bits = (uint32_t)test_rand();
    if ((bits & 0x7f800000) == 0x7f800000)
      continue;
    float x;
    memcpy(&x, &bits, 4);
    char src[400];
    snprintf(src, sizeof src, ".hbm 0\n.f32 %.160e\n.bf16 %.160e\n", (double)x, (double)x);
    p = assemble(src, NULL);
    if (p.nsegs == 1 && p.segs[0].size == 6) {
      const uint8_t *q = p.segs[0].data;
      CHECK_BITS(le32(q), bits, "f32 %s", src);
      CHECK_BITS((uint32_t)(q[4] | q[5] << 8), bf16_ref(bits), "bf16 of 0x%08x", bits);
    }
    isa_program_free(&p);
  }
  fails(".hbm 0\n.f32 1.5x", "t.s:2:6: expected a float literal (1.5, -2e3, inf, nan or 0x bits)");
  fails(".hbm 0\n.f32 foo", "t.s:2:6: expected a float literal (1.5, -2e3, inf, nan or 0x bits)");
  fails(".hbm 0\n.bf16 0x10000", "t.s:2:7: raw bits 65536 is out of range (-32768..65535)");
  fails(".hbm 0\n.f32 1e", "t.s:2:6: expected a float literal (1.5, -2e3, inf, nan or 0x bits)");
}

// ---------------------------------------------------------------- errors

static void test_errors(void) {
  fails("frob r1", "t.s:1:1: unknown instruction 'frob'");
  fails("  add r1, r2", "t.s:1:13: missing operand");
  fails("add r1, r2, r3, r4", "t.s:1:15: unexpected ',' at end of statement");
  fails("add r1, r2, r32", "t.s:1:13: bad register 'r32' (r0..r31)");
  fails("add r1, r2, r07", "t.s:1:13: bad register 'r07' (r0..r31)");
  fails("add r1, r2, x", "t.s:1:13: expected a register, found 'x'");
  fails("addi r1, r2, 0x80000000", "t.s:1:14: immediate 2147483648 is out of range (-2147483648..2147483647)");
  fails("shli r1, r2, 64", "t.s:1:14: shift amount 64 is out of range (0..63)");
  fails("lih r1, 0x100000000", "t.s:1:9: immediate 4294967296 is out of range (-2147483648..4294967295)");
  fails("beq r1, r2, nowhere", "t.s:1:13: undefined symbol 'nowhere'");
  fails("jal r1, 0x80000000", "t.s:1:9: branch target is too far away (2147483648 instructions)");
  fails("swait s32", "t.s:1:7: bad semaphore 's32' (s0..s31)");
  fails("swait r1", "t.s:1:7: expected a semaphore, found 'r1'");
  fails("swait s1, 0", "t.s:1:11: count 0 is out of range (1..8388607)");
  fails("csrr r1, bogus", "t.s:1:10: unknown control register 'bogus'");
  fails("csrr r1, 13", "t.s:1:10: control register 13 is out of range (0..12)");
  fails("ld r1, 4[r2]", "t.s:1:9: unexpected character '['");
  fails("ld r1, 4", "t.s:1:9: expected '(', found end of line");
  fails("nop\n\n  halt x", "t.s:3:8: unexpected 'x' at end of statement");
  fails("dma vmem:r1, hbm:r2, r3", "t.s:1:5: expected an address space (host, hbm, local), found 'vmem'");
  fails("dma local:r1, hbm:r2, r3, q=8", "t.s:1:29: queue 8 is out of range (0..7)");
  fails("dma local:r1, hbm:r2, r3, mxu=1", "t.s:1:27: unknown option 'mxu' for dma");
  fails("dma local:r1, hbm:r2, r3, wait=s1, wait=s2", "t.s:1:36: option 'wait' given twice");
  fails("mxu.mm r1, r2, r3, r4", "t.s:1:1: mxu.mm needs a type suffix, e.g. mxu.mm.bf16");
  fails("mxu.ldw.f32 r1, r2, r3, r4", "t.s:1:1: mxu.ldw needs an operand type: mxu.ldw.bf16 or mxu.ldw.i8");
  fails("mxu.ldw.bf16 r1, r2, r3, r4, acc", "t.s:1:30: unknown option 'acc' for mxu.ldw");
  fails("v.add.f32 r1, r2, r3", "t.s:1:21: missing operand");
  fails("v.frob.f32 r1, r2, r3", "t.s:1:1: unknown vector instruction 'v.frob.f32' (v.OP.TYPE)");
  fails("v.add.f33 r1, r2, r3, r4", "t.s:1:7: unknown type 'f33' (f32, bf16, i32, i8)");
  fails("v.exp.f32.f32.f32 r1, r2, r3", "t.s:1:1: v.exp takes one type or two (dst.src1)");
  fails("v.add.f32.f32 r1, r2, r3, r4", "t.s:1:1: v.add takes one type or three (dst.src1.src2)");
  fails("v r1", "t.s:1:1: v needs a type suffix, e.g. v.add.f32");
  fails(".i32 5", "t.s:1:1: '.i32' outside a data section (.smem, .hbm, .host)");
  fails(".hbm 0\nnop", "t.s:2:1: instruction 'nop' outside .text");
  fails(".hbm 0\n.inst 0", "t.s:2:1: .inst outside .text");
  fails(".hbm\n", "t.s:1:5: missing operand: '.hbm' needs an address");
  fails(".hbm 0\n.i8 256", "t.s:2:5: value 256 does not fit 8 bits");
  fails(".hbm 0\n.i16 -32769", "t.s:2:6: value -32769 does not fit 16 bits");
  fails(".hbm 0\n.i32 0x100000000", "t.s:2:6: value 4294967296 does not fit 32 bits");
  fails(".hbm 0\n.align 3", "t.s:2:8: alignment 3 is not a power of two up to 2^30");
  fails(".hbm 0\n.zero -1", "t.s:2:7: size -1 is out of range (0..9223372036854775807)");
  fails(".hbm 0\n.zero 0x40000001", "t.s:2:1: HBM data run larger than 1073741824 bytes or past the end of memory");
  fails(".smem 0x4000001", "t.s:1:7: SMEM address 67108865 is out of range (0..67108864)");
  fails(".hbm 0xffffffffffffffff\n.i8 1", "t.s:2:5: HBM data run larger than 1073741824 bytes or past the end of memory");
  fails(".hbm 0\n.dmadesc 1", "t.s:2:11: missing operand: .dmadesc inner, n1, ss1, ds1, ...");
  fails(".hbm 0\n.dmadesc 1, 2, 3", "t.s:2:17: missing operand");
  fails(".hbm 0\n.dmadesc 1,1,1,1, 1,1,1, 1,1,1, 1,1,1", "t.s:2:33: a DMA descriptor has at most 3 outer dimensions");
  fails(".hbm 0\n.vdesc 1, 2, 3, 4, 5, 2", "t.s:2:23: src2 column step 2 is out of range (0..1)");
  fails(".hbm 0\n.vdesc 1, 2, 3, 4, 5, 1, 7", "t.s:2:27: missing operand");
  fails(".hbm 0\n.vdesc 1, 2, 3, 4, 5, 1, 7, 64, 0", "t.s:2:29: requant shift 64 is out of range (0..63)");
  fails(".bogus 1", "t.s:1:1: unknown directive '.bogus'");
  fails("x: nop\nx: nop", "t.s:2:1: 'x' is already defined on line 1");
  fails(".equ x, 1\n.equ x, 2", "t.s:2:6: 'x' is already defined on line 1");
  fails("r5: nop", "t.s:1:1: 'r5' is a register or semaphore name");
  fails(".equ s1, 2", "t.s:1:6: 's1' is a register or semaphore name");
  fails("123", "t.s:1:1: expected an instruction or directive, found '123'");
  fails("nop $", "t.s:1:5: unexpected character '$'");
  fails("nop \x01", "t.s:1:5: unexpected byte 0x01");
  fails(".hbm 0x10\n.i64 1\n.hbm 0x14\n.i8 2", "t.s:3:1: HBM data at 0x14 overlaps data placed on line 1");
  fails(".smem 0\n.i64 1\n.smem 4\n.i8 2", "t.s:3:1: SMEM data at 0x4 overlaps data placed on line 1");
  fails(".equ A, B + 1\n.equ B, A + 1", "t.s:2:1: values do not settle after 64 passes (circular definitions?)");
  // Value errors wait for the final pass, so an earlier line's problem can
  // only be a syntax error; the first error in the file is reported.
  fails("addi r1, r2, 1/0\nadd r1", "t.s:2:7: missing operand");
  fails("addi r1, r2, 1/0\nadd r1, r1, r1", "t.s:1:15: division by zero");
}

// ---------------------------------------------------------------- round trips

static const int legal_ops[] = {
#define X(e, code, mn, fmt, unit) code,
    ISA_OPS(X)
#undef X
};
#define NOPS (int)(sizeof legal_ops / sizeof legal_ops[0])

static int legal_vpu[64], nvpu;

static int32_t rand_imm(void) {
  switch (test_rand() % 4) {
  case 0: return (int32_t)(test_rand() % 33) - 16;
  case 1: return (int32_t)(uint32_t)test_rand();
  case 2: return test_rand() & 1 ? INT32_MAX : INT32_MIN;
  default: return (int32_t)(test_rand() % 2000) - 1000;
  }
}

static isa_inst random_inst(void) {
  isa_inst in = {.op = (uint8_t)legal_ops[test_rand() % NOPS]};
  const isa_op_info *info = &isa_ops[in.op];
  if (info->format == FMT_T) {
    in.wait = test_rand() & 1;
    in.wait_sem = in.wait ? (uint8_t)(test_rand() % 32) : 0;
    in.signal = test_rand() & 1;
    in.signal_sem = in.signal ? (uint8_t)(test_rand() % 32) : 0;
    switch (in.op) {
    case OP_DMA:
      in.unit = (uint8_t)(test_rand() % 8);
      in.funct = (uint8_t)(test_rand() % 3 << 2 | test_rand() % 3);
      break;
    case OP_MXU_MM:
      in.flags = test_rand() & 1 ? MXU_FLAG_ACC : 0;
      // fall through
    case OP_MXU_LDW:
      in.unit = (uint8_t)(test_rand() % 8);
      in.dt_src1 = test_rand() & 1 ? DT_BF16 : DT_I8;
      break;
    case OP_VPU:
      in.funct = (uint8_t)legal_vpu[test_rand() % (uint64_t)nvpu];
      in.dt_dst = (uint8_t)(test_rand() % 4);
      in.dt_src1 = test_rand() & 1 ? in.dt_dst : (uint8_t)(test_rand() % 4);
      if (isa_vpu_ops[in.funct].kind == VK_BINARY)
        in.dt_src2 = test_rand() & 1 ? in.dt_dst : (uint8_t)(test_rand() % 4);
      break;
    }
  } else {
    switch (info->format) {
    case FMT_NONE: case FMT_R: break;
    case FMT_SEM: in.imm = (int32_t)((uint32_t)(test_rand() % 8388607 + 1) << 8 | test_rand() % 32); break;
    case FMT_CSR: in.imm = (int32_t)(test_rand() % CSR_COUNT); break;
    default: in.imm = rand_imm();
    }
    if (in.op == OP_SHLI || in.op == OP_SHRI || in.op == OP_SRAI)
      in.imm = (int32_t)(test_rand() % 64);
    if (in.op == OP_SWAIT && test_rand() % 4 == 0)
      in.imm = 1 << 8 | (in.imm & 31);
  }
  unsigned regs = isa_reg_fields(&in);
  in.ra = regs & 1 ? (uint8_t)(test_rand() % 32) : 0;
  in.rb = regs & 2 ? (uint8_t)(test_rand() % 32) : 0;
  in.rc = regs & 4 ? (uint8_t)(test_rand() % 32) : 0;
  in.rd = regs & 8 ? (uint8_t)(test_rand() % 32) : 0;
  return in;
}

static bool same_inst(const isa_inst *a, const isa_inst *b) {
  return a->op == b->op && a->ra == b->ra && a->rb == b->rb && a->rc == b->rc && a->rd == b->rd &&
         a->imm == b->imm && a->wait == b->wait && a->signal == b->signal &&
         a->wait_sem == b->wait_sem && a->signal_sem == b->signal_sem && a->unit == b->unit &&
         a->funct == b->funct && a->dt_dst == b->dt_dst && a->dt_src1 == b->dt_src1 &&
         a->dt_src2 == b->dt_src2 && a->flags == b->flags;
}

static void test_random_round_trip(void) {
  enum { N = 12000 };
  isa_program p = {.code = malloc(N * 8), .ncode = N};
  bool seen[256] = {0};
  for (int i = 0; i < N; i++) {
    isa_inst in = random_inst(), back;
    p.code[i] = isa_encode(&in);
    seen[in.op] = true;
    char why[128];
    bool ok = isa_decode(p.code[i], &back, why, sizeof why);
    CHECK(ok && same_inst(&in, &back), "op 0x%02x: decode(encode) differs: %s", in.op, ok ? "" : why);
  }
  for (int i = 0; i < NOPS; i++)
    CHECK(seen[legal_ops[i]], "opcode 0x%02x never generated", legal_ops[i]);
  round_trip(&p, "random legal words");
  // Illegal words: random ones, and legal ones with one bit flipped.
  for (int i = 0; i < N; i++) {
    isa_inst in;
    uint64_t w;
    do {
      w = i % 2 ? test_rand() : p.code[i] ^ 1ull << (test_rand() % 64);
    } while (isa_decode(w, &in, NULL, 0) && i % 2);
    p.code[i] = w;
  }
  round_trip(&p, "illegal and flipped words");
  free(p.code);
}

// Every opcode, VPU function, type combination and option.
static void test_exhaustive_round_trip(void) {
  isa_program p = {.code = malloc(65536 * 8)};
  for (int i = 0; i < NOPS; i++) {
    isa_inst in = {.op = (uint8_t)legal_ops[i]};
    if (isa_ops[in.op].format == FMT_SEM)
      in.imm = 1 << 8;
    if (isa_ops[in.op].format != FMT_T)
      p.code[p.ncode++] = isa_encode(&in);
  }
  for (int f = 0; f < nvpu; f++) {
    bool bin = isa_vpu_ops[legal_vpu[f]].kind == VK_BINARY;
    for (int t = 0; t < (bin ? 64 : 16); t++)
      for (int o = 0; o < 4; o++) {
        isa_inst in = {.op = OP_VPU, .funct = (uint8_t)legal_vpu[f], .ra = 1, .rb = 2, .rc = bin ? 3 : 0,
                       .rd = 4, .dt_dst = (uint8_t)(t & 3), .dt_src1 = (uint8_t)(t >> 2 & 3),
                       .dt_src2 = (uint8_t)(t >> 4), .wait = o & 1, .wait_sem = o & 1 ? 7 : 0,
                       .signal = o >> 1, .signal_sem = o >> 1 ? 31 : 0};
        p.code[p.ncode++] = isa_encode(&in);
      }
  }
  for (int sp = 0; sp < 9; sp++)
    for (int u = 0; u < 8; u++)
      for (int o = 0; o < 4; o++)
        p.code[p.ncode++] = enc((isa_inst){.op = OP_DMA, .funct = (uint8_t)(sp / 3 << 2 | sp % 3),
                                           .unit = (uint8_t)u, .ra = 1, .rb = 2, .rc = 3,
                                           .wait = o & 1, .signal = o >> 1, .signal_sem = o >> 1 ? 3 : 0});
  for (int op = OP_MXU_LDW; op <= OP_MXU_MM; op++)
    for (int u = 0; u < 8; u++)
      for (int o = 0; o < 16; o++)
        p.code[p.ncode++] = enc((isa_inst){.op = (uint8_t)op, .unit = (uint8_t)u,
                                           .dt_src1 = o & 1 ? DT_I8 : DT_BF16,
                                           .flags = op == OP_MXU_MM && o & 2 ? MXU_FLAG_ACC : 0,
                                           .wait = o >> 2 & 1, .signal = o >> 3, .rd = 9});
  for (int c = 0; c < CSR_COUNT; c++)
    p.code[p.ncode++] = enc((isa_inst){.op = OP_CSRR, .ra = 2, .imm = c});
  for (int s = 0; s < 32; s++)
    p.code[p.ncode++] = enc((isa_inst){.op = OP_SSIGNAL, .imm = (s + 1) << 8 | s});
  for (size_t i = 0; i < p.ncode; i++) {
    isa_inst in;
    char why[128];
    CHECK(isa_decode(p.code[i], &in, why, sizeof why), "word %zu illegal: %s", i, why);
  }
  round_trip(&p, "every opcode, function, type and option");
  free(p.code);
}

static isa_program sample_program(void) {
  return assemble(".equ N, 16\n"
                  "start: li r1, N\n"
                  "       li r2, 0x123456789abc\n"
                  "loop:  dma local:r3, hbm:r4, r5, q=1, signal=s2\n"
                  "       swait s2\n"
                  "       mxu.ldw.bf16 r1, r2, r3, r4\n"
                  "       mxu.mm.bf16 r1, r2, r3, r4, acc\n"
                  "       v.add.f32 r1, r2, r3, r4\n"
                  "       dbnz r1, loop\n"
                  "       .inst 0xdead\n"
                  "       halt\n"
                  ".smem 8\n"
                  "desc:  .dmadesc 256, 4, 1024, 256\n"
                  "       .i8 1, 2, 3\n"
                  ".hbm 0x10000\n"
                  "       .bf16 1, 2, 3\n"
                  ".hbm 0x20000\n"
                  "       .i64 -1, 2\n"
                  "       .i8 9\n"
                  ".host 0x1000\n"
                  "       .i32 7\n",
                  NULL);
}

static void test_segment_round_trip(void) {
  isa_program p = sample_program();
  CHECK(p.nsegs == 4, "four segments: %zu", p.nsegs);
  round_trip(&p, "sample program");
  isa_program_free(&p);
  // Odd sizes, and a program with data only.
  for (size_t n = 0; n < 20; n++) {
    uint8_t *d = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
      d[i] = (uint8_t)test_rand();
    isa_segment s = {.kind = (isa_seg_kind)(n % 3), .addr = n % 3 ? 0x1000 * n : 0, .data = d, .size = n};
    isa_program q = {.segs = &s, .nsegs = n ? 1 : 0};
    round_trip(&q, "data only");
    free(d);
  }
}

// ---------------------------------------------------------------- program files

static char path[256];

static uint8_t *file_bytes(const isa_program *p, size_t *len) {
  CHECK(isa_program_write(p, path, err, sizeof err) == 0, "write: %s", err);
  return (uint8_t *)test_read_file(path, len);
}

static void test_elf_round_trip(void) {
  isa_program p = sample_program(), q;
  size_t len;
  uint8_t *buf = file_bytes(&p, &len);
  CHECK(buf != NULL, "read back");
  CHECK(isa_program_read(&q, path, err, sizeof err) == 0, "read: %s", err);
  CHECK(same_program(&p, &q), "file round trip");
  isa_program_free(&q);
  CHECK(buf && isa_program_parse(&q, buf, len, err, sizeof err) == 0, "parse: %s", err);
  CHECK(same_program(&p, &q), "memory round trip");
  isa_program_free(&q);
  free(buf);
  // readelf, when the host has it, must accept the file and see our sections.
  if (system("command -v readelf >/dev/null 2>&1") == 0) {
    char cmd[300], out[4096] = "";
    snprintf(cmd, sizeof cmd, "readelf -S -W %s 2>&1", path);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    int rc = f ? pclose(f) : -1;
    CHECK(rc == 0 && strstr(out, ".text") && strstr(out, ".smem") && strstr(out, ".hbm.10000") &&
              strstr(out, ".hbm.20000") && strstr(out, ".host.1000") && !strstr(out, "arning") &&
              !strstr(out, "rror"),
          "readelf:\n%s", out);
  }
  isa_program_free(&p);
  // An empty program, and SMEM placed at an offset (the file holds 0..end).
  isa_program e = {0};
  CHECK(isa_program_write(&e, path, err, sizeof err) == 0, "empty: %s", err);
  CHECK(isa_program_read(&q, path, err, sizeof err) == 0 && q.ncode == 0 && q.nsegs == 0, "empty: %s", err);
  isa_program_free(&q);
  uint8_t d[3] = {1, 2, 3};
  isa_segment s = {.kind = SEG_SMEM, .addr = 5, .data = d, .size = 3};
  isa_program o = {.segs = &s, .nsegs = 1};
  CHECK(isa_program_write(&o, path, err, sizeof err) == 0, "smem at 5: %s", err);
  CHECK(isa_program_read(&q, path, err, sizeof err) == 0 && q.nsegs == 1 && q.segs[0].addr == 0 &&
            q.segs[0].size == 8 && !memcmp(q.segs[0].data, "\0\0\0\0\0\1\2\3", 8), "smem image");
  isa_program_free(&q);
  // The writer refuses what the reader would refuse.
  isa_segment two[2] = {{.kind = SEG_HBM, .addr = 0x100, .data = d, .size = 3},
                        {.kind = SEG_HBM, .addr = 0x102, .data = d, .size = 3}};
  isa_program ov = {.segs = two, .nsegs = 2};
  CHECK(isa_program_write(&ov, path, err, sizeof err) == -1 && strstr(err, "overlap"), "%s", err);
  two[1].kind = SEG_HOST;
  two[0].addr = UINT64_MAX - 1;
  CHECK(isa_program_write(&ov, path, err, sizeof err) == -1 && strstr(err, "past the end"), "%s", err);
  two[0].addr = 0x100;
  CHECK(isa_program_write(&ov, path, err, sizeof err) == 0, "HBM and host may share addresses: %s", err);
  CHECK(isa_program_write(&e, "/nonexistent/dir/x.elf", err, sizeof err) == -1 &&
            !strcmp(err, "/nonexistent/dir/x.elf: No such file or directory"), "%s", err);
  CHECK(isa_program_read(&q, "/nonexistent/x.elf", err, sizeof err) == -1 &&
            !strcmp(err, "/nonexistent/x.elf: cannot open: No such file or directory"), "%s", err);
}

// A valid file with two HBM segments to break in various ways.
static uint8_t *good_image(size_t *len) {
  isa_program p = assemble("nop\nhalt\n.smem\n.i64 5\n.hbm 0x1000\n.i64 1, 2\n.hbm 0x2000\n.i64 3\n"
                           ".host 0x20\n.i8 4\n", NULL);
  uint8_t *buf = file_bytes(&p, len);
  isa_program_free(&p);
  return buf;
}

static Elf64_Ehdr *ehdr(uint8_t *b) { return (Elf64_Ehdr *)b; }
static Elf64_Shdr *shdr(uint8_t *b, int i) {
  return (Elf64_Shdr *)(b + ehdr(b)->e_shoff) + i;
}
static int section_named(uint8_t *b, const char *name) {
  Elf64_Shdr *st = shdr(b, ehdr(b)->e_shstrndx);
  for (int i = 1; i < ehdr(b)->e_shnum; i++)
    if (!strcmp((char *)b + st->sh_offset + shdr(b, i)->sh_name, name))
      return i;
  return -1;
}

// Parses a mutated copy; must fail with the reason.
static void rejects(const uint8_t *good, size_t len, void (*mutate)(uint8_t *, size_t *),
                    const char *want) {
  uint8_t *b = malloc(len);
  memcpy(b, good, len);
  size_t n = len;
  mutate(b, &n);
  isa_program p;
  int rc = isa_program_parse(&p, b, n, err, sizeof err);
  CHECK(rc == -1 && strstr(err, want) && !strncmp(err, "program image: ", 15),
        "got \"%s\" want \"%s\"", rc ? err : "success", want);
  CHECK(p.code == NULL && p.nsegs == 0, "program empty after failure");
  free(b);
}

static void m_magic(uint8_t *b, size_t *n) { (void)n; b[1] = 'F'; }
static void m_class(uint8_t *b, size_t *n) { (void)n; b[EI_CLASS] = ELFCLASS32; }
static void m_endian(uint8_t *b, size_t *n) { (void)n; b[EI_DATA] = ELFDATA2MSB; }
static void m_machine(uint8_t *b, size_t *n) { (void)n; ehdr(b)->e_machine = EM_X86_64; }
static void m_type(uint8_t *b, size_t *n) { (void)n; ehdr(b)->e_type = ET_REL; }
static void m_shoff(uint8_t *b, size_t *n) { ehdr(b)->e_shoff = *n - 10; }
static void m_shoff_huge(uint8_t *b, size_t *n) { (void)n; ehdr(b)->e_shoff = UINT64_MAX - 8; }
static void m_shnum(uint8_t *b, size_t *n) { (void)n; ehdr(b)->e_shnum = 0xffff; }
static void m_shnum0(uint8_t *b, size_t *n) { (void)n; ehdr(b)->e_shnum = 0; }
static void m_strndx(uint8_t *b, size_t *n) { (void)n; ehdr(b)->e_shstrndx = ehdr(b)->e_shnum; }
static void m_strtab_type(uint8_t *b, size_t *n) { (void)n; shdr(b, ehdr(b)->e_shstrndx)->sh_type = SHT_PROGBITS; }
static void m_strtab_nul(uint8_t *b, size_t *n) {
  (void)n;
  Elf64_Shdr *st = shdr(b, ehdr(b)->e_shstrndx);
  b[st->sh_offset + st->sh_size - 1] = 'x';
}
static void m_sec_off(uint8_t *b, size_t *n) { shdr(b, section_named(b, ".smem"))->sh_offset = *n; }
static void m_sec_size(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".hbm.1000"))->sh_size = UINT64_MAX; }
static void m_name(uint8_t *b, size_t *n) { (void)n; shdr(b, 2)->sh_name = 0x7fffffff; }
static void m_text_size(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".text"))->sh_size = 12; }
static void m_addr(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".hbm.2000"))->sh_addr = 0x2008; }
static void m_overlap(uint8_t *b, size_t *n) {
  (void)n;
  int i = section_named(b, ".hbm.2000");
  memcpy(b + shdr(b, ehdr(b)->e_shstrndx)->sh_offset + shdr(b, i)->sh_name, ".hbm.1008", 9);
  shdr(b, i)->sh_addr = 0x1008;
}
static void m_hexname(uint8_t *b, size_t *n) {
  (void)n;
  int i = section_named(b, ".hbm.2000");
  memcpy(b + shdr(b, ehdr(b)->e_shstrndx)->sh_offset + shdr(b, i)->sh_name, ".hbm.02g0", 9);
}
static void m_unknown(uint8_t *b, size_t *n) {
  (void)n;
  int i = section_named(b, ".host.20");
  memcpy(b + shdr(b, ehdr(b)->e_shstrndx)->sh_offset + shdr(b, i)->sh_name, ".hostx20", 8);
}
static void m_two_text(uint8_t *b, size_t *n) {
  (void)n;
  int t = section_named(b, ".text");
  shdr(b, section_named(b, ".smem"))->sh_name = shdr(b, t)->sh_name;
}
static void m_no_text(uint8_t *b, size_t *n) { // renamed, not loadable: ignored
  (void)n;
  Elf64_Shdr *t = shdr(b, section_named(b, ".text"));
  t->sh_flags = 0;
  b[shdr(b, ehdr(b)->e_shstrndx)->sh_offset + t->sh_name + 1] = 'T';
}
static void m_nobits(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".smem"))->sh_type = SHT_NOBITS; }
static void m_smem_addr(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".smem"))->sh_addr = 8; }
static void m_null(uint8_t *b, size_t *n) { (void)n; shdr(b, 0)->sh_type = SHT_PROGBITS; }
static void m_comment(uint8_t *b, size_t *n) { // a non-loadable unknown section is ignored
  (void)n;
  int i = section_named(b, ".host.20");
  memcpy(b + shdr(b, ehdr(b)->e_shstrndx)->sh_offset + shdr(b, i)->sh_name, ".comment", 8);
  shdr(b, i)->sh_flags = 0;
}

static void test_elf_malformed(void) {
  size_t len;
  uint8_t *good = good_image(&len);
  CHECK(good != NULL, "image");
  if (!good)
    return;
  isa_program p;
  CHECK(isa_program_parse(&p, good, len, err, sizeof err) == 0 && p.ncode == 2 && p.nsegs == 4, "good");
  isa_program_free(&p);
  for (size_t n = 0; n < len; n++) { // every truncation
    uint8_t *b = malloc(n + 1);
    memcpy(b, good, n);
    CHECK(isa_program_parse(&p, b, n, err, sizeof err) == -1, "truncated to %zu parsed", n);
    free(b);
  }
  CHECK(isa_program_parse(&p, good, 10, err, sizeof err) == -1 &&
            !strcmp(err, "program image: too short for an ELF header (10 bytes)"), "%s", err);
  rejects(good, len, m_magic, "not an ELF file (bad magic)");
  rejects(good, len, m_class, "not a 64-bit ELF file");
  rejects(good, len, m_endian, "not a little-endian ELF file");
  rejects(good, len, m_machine, "machine 0x3e is not Systole (0x5359)");
  rejects(good, len, m_type, "ELF type 1 is not an executable");
  rejects(good, len, m_shoff, "lie outside the file");
  rejects(good, len, m_shoff_huge, "lie outside the file");
  rejects(good, len, m_shnum, "lie outside the file");
  rejects(good, len, m_shnum0, "no section headers");
  rejects(good, len, m_strndx, "bad section name table index");
  rejects(good, len, m_strtab_type, "bad section name table");
  rejects(good, len, m_strtab_nul, "bad section name table");
  rejects(good, len, m_sec_off, "(.smem): data (8 bytes at offset");
  rejects(good, len, m_sec_size, "(.hbm.1000): data (18446744073709551615 bytes");
  rejects(good, len, m_name, "section 2: name offset 2147483647 is outside .shstrtab");
  rejects(good, len, m_text_size, ".text size 12 is not a multiple of 8");
  rejects(good, len, m_addr, "section .hbm.2000: sh_addr 0x2008 does not match the name");
  rejects(good, len, m_overlap, "HBM segments at 0x1000 and 0x1008 overlap");
  rejects(good, len, m_hexname, "section .hbm.02g0: the name does not end in a hex address");
  rejects(good, len, m_unknown, "unknown loadable section '.hostx20'");
  rejects(good, len, m_two_text, "more than one .text section");
  rejects(good, len, m_no_text, "no .text section");
  rejects(good, len, m_nobits, "section .smem: type 8 is not PROGBITS");
  rejects(good, len, m_smem_addr, ".smem address must be 0, not 0x8");
  rejects(good, len, m_null, "section 0 is not the null section");
  uint8_t *b = malloc(len);
  memcpy(b, good, len);
  size_t n = len;
  m_comment(b, &n);
  CHECK(isa_program_parse(&p, b, n, err, sizeof err) == 0 && p.nsegs == 3, "non-loadable section ignored: %s", err);
  isa_program_free(&p);
  // Random corruption: must never crash or read out of bounds (ASan), and
  // whatever parses must be self-consistent.
  int parsed = 0;
  for (int it = 0; it < 30000; it++) {
    memcpy(b, good, len);
    int flips = 1 + (int)(test_rand() % 6);
    for (int k = 0; k < flips; k++) {
      size_t at = test_rand() % 3 ? len - 1 - test_rand() % (len < 600 ? len : 600) : test_rand() % 64;
      b[at] = test_rand() % 4 ? (uint8_t)test_rand() : b[at] ^ (uint8_t)(1u << test_rand() % 8);
    }
    size_t cut = test_rand() % 8 == 0 ? test_rand() % len : len;
    err[0] = 0;
    if (isa_program_parse(&p, b, cut, err, sizeof err) == 0) {
      parsed++;
      for (size_t i = 0; i < p.nsegs; i++)
        CHECK(p.segs[i].size > 0 && p.segs[i].size <= cut, "sane segment");
      CHECK(p.ncode * 8 <= cut, "sane code");
      isa_program_free(&p);
    } else {
      CHECK(!strncmp(err, "program image: ", 15) && strlen(err) > 16, "message: %s", err);
    }
  }
  CHECK(parsed > 0 && parsed < 30000, "corruption mix: %d parsed", parsed);
  free(b);
  free(good);
}

// ---------------------------------------------------------------- fuzzing


// ---------------------------------------------------------------- the I/O signature

static const char io_src[] = ".chip \"tiny\"\n"
                             ".input \"x\", f32, [2, 3], hbm:0x1000\n"
                             ".output \"y\", i8, [4], host:0x20\n"
                             "nop\nhalt\n";

static void test_io_assembly(void) {
  // Every field, forward references, escapes, a label on the line, rank 0.
  isa_program p = assemble(".chip \"v5e-like \\\"x\\\"\"\n"
                           "here: .input \"input:0\", bf16, [B, 128], hbm:BASE + 0x40  ; \"comment\n"
                           ".output \"out/y\", f32, [], host:0\n"
                           ".output \"input:0\", i64, [1, 2, 3, 4, 5, 6, 7, 8], hbm:-8*40320\n"
                           ".input \"a\\\\b;#[]\", u8, [ 3 ], host:0xffffffffffffffff - 2\n"
                           ".equ B, 4\n.equ BASE, 0x10000\nhalt\n", NULL);
  CHECK(p.nio == 4 && p.io, "%zu tensors", p.nio);
  CHECK(!strcmp(p.chip, "v5e-like \"x\""), "chip '%s'", p.chip);
  if (p.nio == 4) {
    const isa_io *t = p.io;
    CHECK(t[0].role == IO_INPUT && !strcmp(t[0].name, "input:0") && t[0].dtype == IO_BF16 &&
              t[0].rank == 2 && t[0].dims[0] == 4 && t[0].dims[1] == 128 && t[0].mem == IO_MEM_HBM &&
              t[0].addr == 0x10040, "tensor 0");
    CHECK(isa_io_bytes(&t[0]) == 4 * 128 * 2, "bytes %llu", (unsigned long long)isa_io_bytes(&t[0]));
    CHECK(t[1].role == IO_OUTPUT && !strcmp(t[1].name, "out/y") && t[1].rank == 0 &&
              t[1].mem == IO_MEM_HOST && t[1].addr == 0 && isa_io_bytes(&t[1]) == 4, "scalar");
    CHECK(t[2].rank == 8 && t[2].dims[7] == 8 && t[2].dtype == IO_I64 && t[2].addr == (uint64_t)-322560 &&
              isa_io_bytes(&t[2]) == 40320 * 8, "rank 8");
    CHECK(!strcmp(t[3].name, "a\\b;#[]") && t[3].dtype == IO_U8 && t[3].addr == UINT64_MAX - 2,
          "escapes: '%s'", t[3].name);
  }
  char *text = isa_disasm_program(&p);
  static const char want[] = ".chip \"v5e-like \\\"x\\\"\"\n"
                             ".input \"input:0\", bf16, [4, 128], hbm:0x10040\n"
                             ".output \"out/y\", f32, [], host:0x0\n"
                             ".output \"input:0\", i64, [1, 2, 3, 4, 5, 6, 7, 8], hbm:0xfffffffffffb1400\n"
                             ".input \"a\\\\b;#[]\", u8, [3], host:0xfffffffffffffffd\n"
                             ".text\n    halt ";
  CHECK(text && !strncmp(text, want, strlen(want)), "disasm:\n%s", text);
  free(text);
  round_trip(&p, "I/O signature");
  isa_program_free(&p);
  CHECK(p.io == NULL && p.nio == 0 && !p.chip[0], "freed");

  // The sample program with a signature, through disassembly and the file.
  isa_program q = assemble(io_src, NULL), r;
  round_trip(&q, "io_src");
  size_t len;
  uint8_t *buf = file_bytes(&q, &len);
  CHECK(buf && isa_program_parse(&r, buf, len, err, sizeof err) == 0 && same_program(&q, &r),
        "file round trip: %s", err);
  isa_program_free(&r);
  free(buf);
  isa_program_free(&q);

  // A program without a signature writes no new sections (files stay as they were).
  q = assemble("halt\n", NULL);
  buf = file_bytes(&q, &len);
  CHECK(buf && section_named(buf, ".systole.io") < 0 && section_named(buf, ".systole.chip") < 0,
        "no empty sections");
  free(buf);
  isa_program_free(&q);

  // The longest names: 255 bytes with multi-byte UTF-8, quotes and backslashes.
  char name[256], src[1200];
  size_t n = 0;
  while (n < 255) {
    static const char *const parts[] = {"\xc3\xa9", "\"", "\\", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "a"};
    const char *part = parts[test_rand() % 6];
    if (n + strlen(part) > 255)
      part = "z";
    memcpy(name + n, part, strlen(part));
    n += strlen(part);
  }
  name[n] = 0;
  isa_io big = {.role = IO_OUTPUT, .dtype = IO_BF16, .rank = 1, .dims = {7}, .mem = IO_MEM_HOST, .addr = 64};
  memcpy(big.name, name, 256);
  isa_program b = {.io = &big, .nio = 1};
  memcpy(b.chip, name, 256);
  round_trip(&b, "255-byte names");
  buf = file_bytes(&b, &len);
  CHECK(buf && isa_program_parse(&r, buf, len, err, sizeof err) == 0 && same_program(&b, &r),
        "255-byte names in a file: %s", err);
  isa_program_free(&r);
  free(buf);
  (void)src;
}

// Random signatures: disassembly and the file both give them back.
static void test_io_random(void) {
  static const char chars[] = "abcXYZ019_:/.-\"\\ ;#[],";
  for (int iter = 0; iter < 300; iter++) {
    isa_io io[6];
    size_t nio = test_rand() % 6;
    for (size_t i = 0; i < nio; i++) {
      isa_io *t = &io[i];
      *t = (isa_io){.role = (isa_io_role)(test_rand() % 2), .dtype = (isa_io_dtype)(test_rand() % IO_DTYPES),
                    .rank = (int)(test_rand() % 9), .mem = (isa_io_mem)(test_rand() % 2)};
      size_t len = 1 + test_rand() % 20;
      for (size_t k = 0; k < len; k++)
        t->name[k] = chars[test_rand() % (sizeof chars - 1)];
      snprintf(t->name + len, 8, "%zu", i); // unique
      for (int d = 0; d < t->rank; d++)
        t->dims[d] = test_rand() % 4 ? (int64_t)(1 + test_rand() % 300) : (int64_t)(1 + test_rand() % 3);
      uint64_t bytes = isa_io_bytes(&(isa_io){.name = "n", .dtype = t->dtype, .rank = t->rank,
                                              .dims = {t->dims[0], t->dims[1], t->dims[2], t->dims[3],
                                                       t->dims[4], t->dims[5], t->dims[6], t->dims[7]}});
      t->addr = test_rand() % 8 ? test_rand() % (1ull << 40) : UINT64_MAX - (bytes - 1);
    }
    isa_program p = {.io = io, .nio = nio};
    if (test_rand() % 2)
      snprintf(p.chip, sizeof p.chip, "chip \"%d\" \\", iter);
    round_trip(&p, "random signature");
    size_t len;
    uint8_t *buf = file_bytes(&p, &len);
    isa_program q;
    CHECK(buf && isa_program_parse(&q, buf, len, err, sizeof err) == 0 && same_program(&p, &q),
          "random signature in a file: %s", err);
    isa_program_free(&q);
    free(buf);
  }
}

static void test_io_errors(void) {
  fails(".input x, f32, [1], hbm:0", "t.s:1:8: expected the name in double quotes, found 'x'");
  fails(".input \"x\", f64, [1], hbm:0",
        "t.s:1:13: expected an element type (f32, bf16, i32, i8, i64, u8), found 'f64'");
  fails(".input \"x\", f32, 1, hbm:0", "t.s:1:18: expected a shape in [ ], found '1'");
  fails(".input \"x\", f32, [1, -1], hbm:0", "t.s:1:22: dimension -1 is negative");
  fails(".input \"x\", f32, [-N], hbm:0\n.equ N, 3", "t.s:1:19: dimension -3 is negative");
  { // an empty tensor is allowed
    isa_program e = assemble(".input \"x\", f32, [2, 0], hbm:0\n", NULL);
    CHECK(e.nio == 1 && e.io && e.io[0].dims[1] == 0, "empty tensor");
    isa_program_free(&e);
  }
  fails(".output \"x\", f32, [1,1,1,1,1,1,1,1,1], hbm:0", "t.s:1:36: more than 8 dimensions");
  fails(".input \"x\", f32, [1, 2", "t.s:1:23: expected ']', found end of line");
  fails(".input \"x\", f32, [0x4000000000000000], hbm:0",
        "t.s:1:18: the input's size in bytes overflows 64 bits");
  fails(".output \"x\", i8, [1 << 32, 1 << 32], hbm:0",
        "t.s:1:18: the output's size in bytes overflows 64 bits");
  fails(".input \"x\", f32, [4], hbm:-2",
        "t.s:1:27: 16 bytes at 0xfffffffffffffffe run past the end of memory");
  fails(".input \"x\", f32, [4], vmem:0", "t.s:1:23: expected host or hbm, found 'vmem'");
  fails(".input \"x\", f32, [4], hbm 0", "t.s:1:27: expected ':', found '0'");
  fails(".input \"x\", f32, [4]", "t.s:1:21: missing operand");
  fails(".input \"x\", f32, [4], hbm:0, 5", "t.s:1:28: unexpected ',' at end of statement");
  fails(".input \"x\", f32, [4], hbm:N", "t.s:1:27: undefined symbol 'N'");
  fails(".input \"x, f32, [4], hbm:0", "t.s:1:8: unterminated string");
  fails(".input \"a\\tb\", f32, [4], hbm:0", "t.s:1:10: unknown escape in a string (only \\\" and \\\\)");
  fails(".input \"x\\", "t.s:1:10: unknown escape in a string (only \\\" and \\\\)");
  fails(".input \"\", f32, [4], hbm:0", "t.s:1:8: empty name");
  fails(".input \"a\tb\", f32, [4], hbm:0", "t.s:1:8: name is not UTF-8 without control characters");
  fails(".input \"a\xff\", f32, [4], hbm:0", "t.s:1:8: name is not UTF-8 without control characters");
  fails(".input \"\xc0\x80\", f32, [4], hbm:0", "t.s:1:8: name is not UTF-8 without control characters");
  char src[400];
  snprintf(src, sizeof src, ".input \"%0256d\", f32, [4], hbm:0", 0);
  fails(src, "t.s:1:8: name longer than 255 bytes");
  snprintf(src, sizeof src, ".chip \"%0256d\"", 0);
  fails(src, "t.s:1:7: chip name longer than 255 bytes");
  fails("nop\n.input \"x\", f32, [4], hbm:0\n.input \"x\", i8, [1], host:0",
        "t.s:3:8: a second input named 'x'");
  fails(".chip \"a\"\nnop\n  .chip \"b\"", "t.s:3:3: a second .chip (the first is on line 1)");
  fails(".chip tiny", "t.s:1:7: expected the chip name in double quotes, found 'tiny'");
  fails(".chip \"\"", "t.s:1:7: empty chip name");
  fails(".chip \"a\" \"b\"", "t.s:1:11: unexpected '\"b\"' at end of statement");
  fails(".chip", "t.s:1:6: expected the chip name in double quotes, found end of line");
  // Strings and brackets are tokens only on these lines.
  fails("nop \"x\"", "t.s:1:5: unexpected character '\"'");
  fails(".smem\n.i8 [1]", "t.s:2:5: unexpected character '['");
  // An input and an output may share a name (a value passed through).
  isa_program p = assemble(".input \"x\", f32, [4], hbm:0\n.output \"x\", f32, [4], hbm:0\n", NULL);
  CHECK(p.nio == 2, "in and out named x");
  isa_program_free(&p);
  // The writer refuses what the reader would refuse.
  isa_io t = {.name = "x", .dtype = IO_F32, .rank = 1, .dims = {4}, .mem = IO_MEM_HBM};
  isa_program w = {.io = &t, .nio = 1};
  CHECK(isa_program_write(&w, path, err, sizeof err) == 0, "good: %s", err);
  t.rank = 9;
  CHECK(isa_program_write(&w, path, err, sizeof err) == -1 && strstr(err, "rank 9 is outside 0..8"), "%s", err);
  t.rank = 1, t.dims[0] = 0; // an empty tensor, even at the last address
  t.addr = UINT64_MAX;
  CHECK(isa_program_write(&w, path, err, sizeof err) == 0, "empty: %s", err);
  t.addr = 0, t.dims[0] = -2;
  CHECK(isa_program_write(&w, path, err, sizeof err) == -1 && strstr(err, "dimension 0 is -2, negative"), "%s", err);
  t.dims[0] = 4, t.addr = UINT64_MAX - 14;
  CHECK(isa_program_write(&w, path, err, sizeof err) == -1 && strstr(err, "past the end of memory"), "%s", err);
  t.addr = UINT64_MAX - 15;
  CHECK(isa_program_write(&w, path, err, sizeof err) == 0, "last 16 bytes of memory: %s", err);
  t.dtype = IO_DTYPES;
  CHECK(isa_program_write(&w, path, err, sizeof err) == -1 && strstr(err, "unknown element type"), "%s", err);
  t.dtype = IO_I64, t.rank = 2, t.dims[0] = INT64_MAX, t.dims[1] = 2;
  CHECK(isa_program_write(&w, path, err, sizeof err) == -1 && strstr(err, "overflows 64 bits"), "%s", err);
  t.rank = 0, t.name[0] = 0;
  CHECK(isa_program_write(&w, path, err, sizeof err) == -1 && strstr(err, "the name is not"), "%s", err);
  memset(t.name, 'a', sizeof t.name); // no NUL within bounds
  CHECK(isa_program_write(&w, path, err, sizeof err) == -1 && strstr(err, "the name is not"), "%s", err);
  isa_io two[2] = {{.name = "q", .role = IO_OUTPUT}, {.name = "q", .role = IO_OUTPUT}};
  w = (isa_program){.io = two, .nio = 2};
  CHECK(isa_program_write(&w, path, err, sizeof err) == -1 &&
            strstr(err, "I/O tensors 0 and 1 are both outputs named 'q'"), "%s", err);
  w = (isa_program){.nio = 0};
  strcpy(w.chip, "bad\nchip");
  CHECK(isa_program_write(&w, path, err, sizeof err) == -1 && strstr(err, "chip name"), "%s", err);
}

// Malformed tables: the good image has the table of io_src (80 bytes):
//   0 version, 4 count; entry 0 at 8: role 8, dtype 9, mem 10, rank 11, name length 12,
//   reserved 14, addr 16, dims 24 and 32, name 40 ("x"), padding 41..47;
//   entry 1 at 48: role 48, rank 51, addr 56, dim 64, name 72.
static uint8_t *io_good;
static size_t io_len;

static uint8_t *io_data(uint8_t *b) { return b + shdr(b, section_named(b, ".systole.io"))->sh_offset; }

static void io_rejects(size_t off, int width, uint64_t v, const char *want) {
  uint8_t *b = malloc(io_len);
  memcpy(b, io_good, io_len);
  for (int i = 0; i < width; i++)
    io_data(b)[off + (size_t)i] = (uint8_t)(v >> 8 * i);
  isa_program p;
  int rc = isa_program_parse(&p, b, io_len, err, sizeof err);
  CHECK(rc == -1 && strstr(err, want) && !strncmp(err, "program image: ", 15),
        "offset %zu = 0x%llx: got \"%s\" want \"%s\"", off, (unsigned long long)v, rc ? err : "success", want);
  CHECK(p.code == NULL && p.io == NULL && p.nio == 0 && !p.chip[0], "program empty after failure");
  free(b);
}

static void m_io_size4(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".systole.io"))->sh_size = 4; }
static void m_io_trail(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".systole.io"))->sh_size += 8; }
static void m_io_alloc(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".systole.io"))->sh_flags |= SHF_ALLOC; }
static void m_io_nobits(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".systole.io"))->sh_type = SHT_NOBITS; }
static void m_io_outside(uint8_t *b, size_t *n) { shdr(b, section_named(b, ".systole.io"))->sh_offset = *n - 8; }
static void m_io_two(uint8_t *b, size_t *n) {
  (void)n;
  int io = section_named(b, ".systole.io");
  shdr(b, section_named(b, ".systole.chip"))->sh_name = shdr(b, io)->sh_name;
}
static void m_chip_two(uint8_t *b, size_t *n) {
  (void)n;
  Elf64_Shdr *chip = shdr(b, section_named(b, ".systole.chip")), *io = shdr(b, section_named(b, ".systole.io"));
  io->sh_name = chip->sh_name, io->sh_offset = chip->sh_offset, io->sh_size = chip->sh_size;
}
static void m_io_dup(uint8_t *b, size_t *n) {
  (void)n;
  io_data(b)[48] = IO_INPUT;
  io_data(b)[72] = 'x';
}
static void m_chip_short(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".systole.chip"))->sh_size = 1; }
static void m_chip_nonul(uint8_t *b, size_t *n) { (void)n; shdr(b, section_named(b, ".systole.chip"))->sh_size = 4; }
static void m_chip_ctrl(uint8_t *b, size_t *n) {
  (void)n;
  b[shdr(b, section_named(b, ".systole.chip"))->sh_offset + 1] = '\n';
}

static void test_io_malformed(void) {
  isa_program p = assemble(io_src, NULL);
  io_good = file_bytes(&p, &io_len);
  isa_program_free(&p);
  if (!io_good)
    return;
  int sec = section_named(io_good, ".systole.io");
  CHECK(sec > 0 && shdr(io_good, sec)->sh_size == 80 && le32(io_data(io_good)) == 1 &&
            le32(io_data(io_good) + 4) == 2, "the table's layout");
  CHECK(isa_program_parse(&p, io_good, io_len, err, sizeof err) == 0 && p.nio == 2 &&
            !strcmp(p.chip, "tiny"), "good: %s", err);
  isa_program_free(&p);

  io_rejects(0, 4, 2, ".systole.io: unknown version 2 (this reader knows 1)");
  io_rejects(0, 4, 0, "unknown version 0");
  io_rejects(4, 4, 1000, "1000 entries cannot fit in 80 bytes");
  io_rejects(4, 4, UINT32_MAX, "4294967295 entries cannot fit in 80 bytes");
  io_rejects(4, 4, 3, "entry 2 is truncated");
  io_rejects(4, 4, 1, "32 bytes after the last entry");
  io_rejects(8, 1, 2, "entry 0: unknown role 2");
  io_rejects(9, 1, IO_DTYPES, "entry 0: unknown element type 11");
  io_rejects(10, 1, 2, "entry 0: unknown memory 2");
  io_rejects(11, 1, 9, "entry 0: rank 9 is more than 8");
  io_rejects(11, 1, 255, "entry 0: rank 255 is more than 8");
  io_rejects(51, 1, 7, "entry 1 is truncated (32 bytes of 80)");
  io_rejects(12, 2, 0, "entry 0: name length 0 is outside 1..255");
  io_rejects(12, 2, 256, "entry 0: name length 256 is outside 1..255");
  io_rejects(12, 2, 0xffff, "entry 0: name length 65535 is outside 1..255");
  io_rejects(52, 2, 255, "entry 1 is truncated");
  io_rejects(14, 2, 1, "entry 0: reserved bytes are not zero");
  io_rejects(40, 1, 0, "entry 0: the name is not UTF-8 without control characters");
  io_rejects(40, 1, 0xff, "entry 0: the name is not UTF-8");
  io_rejects(40, 1, '\n', "entry 0: the name is not UTF-8");
  io_rejects(12, 2, 2, "entry 0: the name is not UTF-8"); // "x" then a NUL
  io_rejects(72, 2, 0xa0ed, "entry 1: the name is not UTF-8"); // a surrogate, but length 1
  io_rejects(41, 1, 1, "entry 0: the padding after the name is not zero");
  io_rejects(47, 1, 0x80, "entry 0: the padding after the name is not zero");
  io_rejects(24, 8, (uint64_t)-1, "entry 0: 'x': dimension 0 is -1, negative");
  io_rejects(32, 8, (uint64_t)-5, "entry 0: 'x': dimension 1 is -5, negative");
  io_rejects(24, 8, 1ull << 62, "entry 0: 'x': the byte size overflows 64 bits");
  io_rejects(64, 8, UINT64_MAX, "entry 1: 'y': dimension 0 is -1");
  io_rejects(16, 8, UINT64_MAX - 22, "entry 0: 'x': 24 bytes at 0xffffffffffffffe9 run past the end");
  io_rejects(56, 8, UINT64_MAX - 2, "entry 1: 'y': 4 bytes at 0xfffffffffffffffd run past the end");
  rejects(io_good, io_len, m_io_dup, ".systole.io: entries 0 and 1 are both inputs named 'x'");
  rejects(io_good, io_len, m_io_size4, ".systole.io: 4 bytes is too short for the header");
  rejects(io_good, io_len, m_io_trail, ".systole.io: 8 bytes after the last entry");
  rejects(io_good, io_len, m_io_alloc, "section .systole.io must not be loadable");
  rejects(io_good, io_len, m_io_nobits, "section .systole.io: type 8 is not PROGBITS");
  rejects(io_good, io_len, m_io_outside, "(.systole.io): data (80 bytes at offset");
  rejects(io_good, io_len, m_io_two, "more than one .systole.io section");
  rejects(io_good, io_len, m_chip_two, "more than one .systole.chip section");
  rejects(io_good, io_len, m_chip_short, ".systole.chip: not a name of 1..255 bytes");
  rejects(io_good, io_len, m_chip_nonul, ".systole.chip: not a name");
  rejects(io_good, io_len, m_chip_ctrl, ".systole.chip: not a name");

  uint8_t *x2 = malloc(io_len); // output 'y' renamed 'x': an input and an output may share a name
  memcpy(x2, io_good, io_len);
  io_data(x2)[72] = 'x';
  CHECK(isa_program_parse(&p, x2, io_len, err, sizeof err) == 0 && !strcmp(p.io[1].name, "x"), "%s", err);
  isa_program_free(&p);
  free(x2);
  // Every truncation of the table, and random damage: an error or a valid table, never a crash.
  uint8_t *b = malloc(io_len);
  for (uint64_t k = 0; k < 80; k++) {
    memcpy(b, io_good, io_len);
    shdr(b, sec)->sh_size = k;
    CHECK(isa_program_parse(&p, b, io_len, err, sizeof err) == -1 && strstr(err, ".systole.io: "),
          "truncated to %llu: %s", (unsigned long long)k, err);
  }
  int ok = 0;
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(b, io_good, io_len);
    for (int k = 1 + (int)(test_rand() % 3); k > 0; k--)
      io_data(b)[test_rand() % 80] ^= (uint8_t)(1u << test_rand() % 8);
    if (isa_program_parse(&p, b, io_len, err, sizeof err) == 0) {
      ok++;
      char why[200];
      for (size_t i = 0; i < p.nio; i++)
        CHECK(isa_io_valid(&p.io[i], why, sizeof why), "accepted a bad tensor: %s", why);
      isa_program_free(&p);
    } else {
      CHECK(p.io == NULL && p.nio == 0, "io left after an error");
    }
  }
  CHECK(ok > 0 && ok < 3000, "random damage: %d of 3000 parsed", ok);
  free(b);

  // readelf accepts the new sections.
  if (system("command -v readelf >/dev/null 2>&1") == 0) {
    char cmd[300], out[4096] = "";
    snprintf(cmd, sizeof cmd, "readelf -S -W %s 2>&1", path);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    int rc = f ? pclose(f) : -1;
    CHECK(rc == 0 && strstr(out, ".systole.io") && strstr(out, ".systole.chip") &&
              !strstr(out, "arning") && !strstr(out, "rror"), "readelf:\n%s", out);
  }
  free(io_good);
}

static const char *const corpus[] = {
    "start: li r1, 0x123456789", "  addi r2, r1, -1", "loop: dbnz r2, loop", "beq r1, r2, @3",
    "ld r3, 8(r2)", "st r3, (r2)", "swait s1, 2", "ssignal s2", "csrr r4, cycle",
    "dma local:r1, hbm:r2, r3, q=1, wait=s1, signal=s2", "mxu.ldw.bf16 r1, r2, r3, r4, mxu=1",
    "mxu.mm.i8 r1, r2, r3, r4, acc", "v.add.f32.bf16.i8 r1, r2, r3, r4", "v.requant.i8.i32 r1, r2, r3",
    ".equ N, (1 << 4) * 3 % 7", ".smem 8", ".hbm 0x1000", ".host 0", ".text", ".i8 1, -2, 255",
    ".i16 0x7fff", ".i32 N", ".i64 -1", ".f32 1.5e3, -inf, nan", ".bf16 0x3f80, 2.5", ".zero 5",
    ".align 8", ".dmadesc 64, 2, 128, 64, 3, 4, 5", ".vdesc 2, 3, 4, 5, 6, 0, 7, 8, 9",
    ".inst 0x1234", "j start", "mv r1, r2", "halt", "lih r1, 0xffffffff", "jalr r1, r2, 3",
    "x: y: nop", "shli r1, r2, 63", "# comment", "li r1, end", "end:", ".rept J, 3", ".endr", ".rept 2",
    "ssignal s(J + 1)", "addi r(J), r0, J",
};
#define NCORPUS (sizeof corpus / sizeof corpus[0])

static void mutate(char *s, size_t cap) {
  static const char alphabet[] = "r s0123456789x,:()+-*/%<>&|^~=@.;#abcdefghijklmnopqrstuvwxyz_\t\"'$[]\\\x01\xff";
  size_t n = strlen(s);
  switch (test_rand() % 5) {
  case 0: if (n) s[test_rand() % n] = alphabet[test_rand() % (sizeof alphabet - 1)]; break;
  case 1: if (n + 1 < cap) { size_t at = test_rand() % (n + 1); memmove(s + at + 1, s + at, n - at + 1); s[at] = alphabet[test_rand() % (sizeof alphabet - 1)]; } break;
  case 2: if (n) { size_t at = test_rand() % n; memmove(s + at, s + at + 1, n - at); } break;
  case 3: if (n) s[test_rand() % n] = 0; break;
  default: { const char *w = corpus[test_rand() % NCORPUS]; size_t at = test_rand() % (n + 1);
             size_t k = strlen(w) < 8 ? strlen(w) : 8;
             if (n + k < cap) { memmove(s + at + k, s + at, n - at + 1); memcpy(s + at, w, k); } }
  }
}

static void test_fuzz(void) {
  int ok = 0, total = 20000;
  char src[4096];
  for (int it = 0; it < total; it++) {
    src[0] = 0;
    int lines = 1 + (int)(test_rand() % 6);
    for (int l = 0; l < lines; l++) {
      char line[256];
      snprintf(line, sizeof line, "%s", corpus[test_rand() % NCORPUS]);
      int m = (int)(test_rand() % 4);
      for (int k = 0; k < m; k++)
        mutate(line, sizeof line);
      strcat(src, line);
      strcat(src, "\n");
    }
    isa_program p;
    err[0] = 0;
    if (isa_assemble(src, "f.s", NULL, &p, err, sizeof err) == 0) {
      ok++;
      round_trip(&p, src); // whatever assembles must disassemble back to itself
      isa_program_free(&p);
    } else {
      int line, col;
      char colon;
      CHECK(sscanf(err, "f.s:%d:%d%c", &line, &col, &colon) == 3 && colon == ':' && line >= 1 &&
                line <= lines && col >= 1,
            "message without a place: %s\n--- source:\n%s", err, src);
    }
  }
  CHECK(ok > total / 40 && ok < total, "fuzz mix: %d of %d assembled", ok, total);
}

static void test_files(void) {
  const char *src = "  .equ N, 4\n  li r1, N\n  halt\n";
  FILE *f = fopen(path, "w");
  fputs(src, f);
  fclose(f);
  isa_program p;
  const char *d[] = {"N=9", NULL};
  CHECK(isa_assemble_file(path, d, &p, err, sizeof err) == 0 && p.ncode == 2 &&
            p.code[0] == enc((isa_inst){.op = OP_LI, .ra = 1, .imm = 9}), "file: %s", err);
  isa_program_free(&p);
  f = fopen(path, "w");
  fputs("nop\n  bad\n", f);
  fclose(f);
  char want[300];
  snprintf(want, sizeof want, "%s:2:3: unknown instruction 'bad'", path);
  CHECK(isa_assemble_file(path, NULL, &p, err, sizeof err) == -1 && !strcmp(err, want), "%s", err);
  CHECK(isa_assemble_file("/tmp", NULL, &p, err, sizeof err) == -1 &&
            !strcmp(err, "/tmp: cannot read: Is a directory"), "%s", err);
  CHECK(isa_program_read(&p, "/tmp", err, sizeof err) == -1 && !strcmp(err, "/tmp: cannot read: Is a directory"),
        "%s", err);
  CHECK(isa_assemble_file("/nonexistent.s", NULL, &p, err, sizeof err) == -1 &&
            !strcmp(err, "/nonexistent.s: cannot open: No such file or directory"), "%s", err);
}

// The layer table: .layer starts one, the next .layer or .endlayer (or the
// end of the code) ends it; the disassembler writes them back.
static void test_layers(void) {
  isa_program p = assemble("  nop\n"
                           "  .layer \"conv 1\", \"conv+relu\", 1234\n"
                           "  nop\n  nop\n"
                           "  .layer \"pool\", \"maxpool\"\n"
                           "  nop\n"
                           "  .endlayer\n"
                           "  nop\n"
                           "  .layer \"fc\", \"matmul\", 7\n"
                           "  halt\n",
                           NULL);
  CHECK(p.nlayers == 3, "%zu layers", p.nlayers);
  if (p.nlayers == 3) {
    CHECK(!strcmp(p.layers[0].name, "conv 1") && !strcmp(p.layers[0].op, "conv+relu") && p.layers[0].macs == 1234 &&
              p.layers[0].pc_begin == 1 && p.layers[0].pc_end == 3,
          "layer 0: %s %s %llu [%llu, %llu)", p.layers[0].name, p.layers[0].op, (unsigned long long)p.layers[0].macs,
          (unsigned long long)p.layers[0].pc_begin, (unsigned long long)p.layers[0].pc_end);
    CHECK(p.layers[1].pc_begin == 3 && p.layers[1].pc_end == 4 && p.layers[1].macs == 0, "layer 1");
    CHECK(p.layers[2].pc_begin == 5 && p.layers[2].pc_end == 6, "layer 2 runs to the end of the code");
  }
  round_trip(&p, "layers");
  isa_program_free(&p);
  fails("  .endlayer\n  nop\n", "t.s:1:3: .endlayer without .layer");
  fails("  .layer \"a\", \"op\"\n  .layer \"b\", \"op\"\n  nop\n", "t.s:2:3: layer 'a' has no instructions");
  fails("  nop\n  .layer \"a\", \"op\"\n", "t.s:2:1: layer 'a' has no instructions");
  fails(".smem 0\n  .layer \"a\", \"op\"\n", "t.s:2:3: .layer outside .text");
  fails("  .layer \"a\"\n  nop\n", "t.s:1:13: missing operand");
  fails("  .layer \"a\", \"an op name longer than thirty-one bytes\"\n  nop\n", "t.s:1:15: layer op longer than 31 bytes");
}

int main(void) {
  for (int f = 0; f < 64; f++)
    if (isa_vpu_ops[f].name)
      legal_vpu[nvpu++] = f;
  snprintf(path, sizeof path, "/tmp/systole_test_asm_%d.tmp", (int)getpid());
  test_scalar_encodings();
  test_tile_encodings();
  test_disasm_text();
  test_expressions();
  test_labels();
  test_rept();
  test_floats();
  test_errors();
  test_random_round_trip();
  test_exhaustive_round_trip();
  test_segment_round_trip();
  test_elf_round_trip();
  test_elf_malformed();
  test_io_assembly();
  test_io_random();
  test_io_errors();
  test_io_malformed();
  test_fuzz();
  test_files();
  test_layers();
  remove(path);
  return test_done("test_asm");
}
