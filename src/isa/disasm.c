// The disassembler: one canonical spelling per legal word, which the assembler
// (asm.c) reads back into the same word. Branch targets print as absolute
// instruction indices ("@N") so a line means the same wherever it is shown.
#include "isa/isa.h"

#include <stdarg.h>
#include <stdio.h>

// A bounded string builder; overflow is impossible for one instruction
// (about 70 characters at most), but stay safe anyway.
typedef struct {
  char s[160];
  size_t n;
} Buf;

static void put(Buf *b, const char *fmt, ...) {
  if (b->n >= sizeof b->s)
    return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
  va_end(ap);
  if (k > 0)
    b->n += (size_t)k;
}

// pc + imm, wrapping like the assembler's target - pc.
static long long target(uint64_t pc, int32_t imm) {
  return (long long)(pc + (uint64_t)(int64_t)imm);
}

static void scalar(Buf *b, const isa_inst *in, uint64_t pc) {
  const char *mn = isa_ops[in->op].mnemonic;
  switch (isa_ops[in->op].format) {
  case FMT_NONE: put(b, "%s", mn); break;
  case FMT_R: put(b, "%s r%d, r%d, r%d", mn, in->ra, in->rb, in->rc); break;
  case FMT_I: put(b, "%s r%d, r%d, %d", mn, in->ra, in->rb, in->imm); break;
  case FMT_LI:
    // li's value is sign-extended, so signed decimal reads back as one word;
    // lih's is the high half of a 64-bit pattern, clearest in hex.
    if (in->op == OP_LIH)
      put(b, "%s r%d, 0x%x", mn, in->ra, (uint32_t)in->imm);
    else
      put(b, "%s r%d, %d", mn, in->ra, in->imm);
    break;
  case FMT_MEM: put(b, "%s r%d, %d(r%d)", mn, in->ra, in->imm, in->rb); break;
  case FMT_B: put(b, "%s r%d, r%d, @%lld", mn, in->ra, in->rb, target(pc, in->imm)); break;
  case FMT_J:
  case FMT_DB: put(b, "%s r%d, @%lld", mn, in->ra, target(pc, in->imm)); break;
  case FMT_JR: put(b, "%s r%d, r%d, %d", mn, in->ra, in->rb, in->imm); break;
  case FMT_SEM: {
    int count = in->imm >> 8;
    put(b, "%s s%d", mn, in->imm & 31);
    if (count != 1)
      put(b, ", %d", count);
    break;
  }
  case FMT_CSR: put(b, "%s r%d, %s", mn, in->ra, isa_csr_names[in->imm]); break;
  case FMT_T: break;
  }
}

// The type suffix of a vector instruction: one name when every operand has
// the same type, else one per operand.
static void vpu_types(Buf *b, const isa_inst *in, bool binary) {
  const char *const *dn = isa_dtype_names;
  bool same = in->dt_dst == in->dt_src1 && (!binary || in->dt_src2 == in->dt_dst);
  if (same)
    put(b, ".%s", dn[in->dt_dst]);
  else if (binary)
    put(b, ".%s.%s.%s", dn[in->dt_dst], dn[in->dt_src1], dn[in->dt_src2]);
  else
    put(b, ".%s.%s", dn[in->dt_dst], dn[in->dt_src1]);
}

static void tile(Buf *b, const isa_inst *in) {
  switch (in->op) {
  case OP_DMA:
    put(b, "dma %s:r%d, %s:r%d, r%d", isa_space_names[in->funct >> 2], in->ra,
        isa_space_names[in->funct & 3], in->rb, in->rc);
    if (in->unit)
      put(b, ", q=%d", in->unit);
    break;
  case OP_MXU_LDW:
  case OP_MXU_MM:
    put(b, "%s.%s r%d, r%d, r%d, r%d", isa_ops[in->op].mnemonic, isa_dtype_names[in->dt_src1],
        in->ra, in->rb, in->rc, in->rd);
    if (in->unit)
      put(b, ", mxu=%d", in->unit);
    if (in->flags & MXU_FLAG_ACC)
      put(b, ", acc");
    if (in->flags & MXU_FLAG_WIN)
      put(b, ", win");
    break;
  case OP_VPU: {
    bool binary = isa_vpu_ops[in->funct].kind == VK_BINARY;
    put(b, "v.%s", isa_vpu_ops[in->funct].name);
    vpu_types(b, in, binary);
    if (binary)
      put(b, " r%d, r%d, r%d, r%d", in->ra, in->rb, in->rc, in->rd);
    else
      put(b, " r%d, r%d, r%d", in->ra, in->rb, in->rd);
    break;
  }
  }
  if (in->wait)
    put(b, ", wait=s%d", in->wait_sem);
  if (in->signal)
    put(b, ", signal=s%d", in->signal_sem);
}

int isa_disasm_inst(uint64_t word, uint64_t pc, char *buf, size_t len) {
  isa_inst in;
  Buf b = {.n = 0};
  b.s[0] = 0;
  if (!isa_decode(word, &in, NULL, 0))
    put(&b, ".inst 0x%016llx", (unsigned long long)word);
  else if (isa_ops[in.op].format == FMT_T)
    tile(&b, &in);
  else
    scalar(&b, &in, pc);
  return snprintf(buf, len, "%s", b.s);
}
