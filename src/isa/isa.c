// Opcode tables and the one binary encoding (see isa.h for the bit layout).
#include "isa/isa.h"

#include <assert.h>
#include <stdio.h>

const isa_op_info isa_ops[256] = {
#define X(e, code, mn, fmt, unit) [code] = {mn, fmt, unit},
    ISA_OPS(X)
#undef X
};

const isa_vpu_info isa_vpu_ops[64] = {
#define X(e, f, n, k, c) [f] = {n, k, c},
    ISA_VPU_OPS(X)
#undef X
};

const char *const isa_csr_names[CSR_COUNT] = {
#define X(e, n, s) [n] = s,
    ISA_CSRS(X)
#undef X
};

const char *const isa_dtype_names[4] = {"f32", "bf16", "i32", "i8"};
const int isa_dtype_bytes[4] = {4, 2, 4, 1};
const char *const isa_space_names[3] = {"host", "hbm", "local"};

// Register fields each format uses (bit 0 ra .. bit 3 rd).
unsigned isa_reg_fields(const isa_inst *in) {
  switch (isa_ops[in->op].format) {
  case FMT_NONE: case FMT_SEM: return 0;
  case FMT_R: return 0x7;
  case FMT_I: case FMT_MEM: case FMT_B: case FMT_JR: return 0x3;
  case FMT_LI: case FMT_J: case FMT_DB: case FMT_CSR: return 0x1;
  case FMT_T:
    switch (in->op) {
    case OP_DMA: return 0x7;      // dst, src, desc
    case OP_MXU_LDW: return 0xf;  // src, stride, k, n
    case OP_MXU_MM: return 0xf;   // acc, src, rows, stride (win: descriptor)
    case OP_VPU: {                // dst, src1, [src2], desc
      const isa_vpu_info *v = &isa_vpu_ops[in->funct & 63];
      return v->kind == VK_BINARY ? 0xf : 0xb;
    }
    }
  }
  return 0;
}

// Which tile fields are meaningful for an opcode, so unused ones must be zero.
enum { TF_UNIT = 1, TF_FUNCT = 2, TF_DTD = 4, TF_DT1 = 8, TF_DT2 = 16, TF_FLAGS = 32 };
static unsigned tile_fields(const isa_inst *in) {
  switch (in->op) {
  case OP_DMA: return TF_UNIT | TF_FUNCT;
  case OP_MXU_LDW: return TF_UNIT | TF_DT1;
  case OP_MXU_MM: return TF_UNIT | TF_DT1 | TF_FLAGS;
  case OP_VPU: {
    const isa_vpu_info *v = &isa_vpu_ops[in->funct & 63];
    return TF_FUNCT | TF_DTD | TF_DT1 | (v->kind == VK_BINARY ? TF_DT2 : 0);
  }
  }
  return 0;
}

uint64_t isa_encode(const isa_inst *in) {
  assert(isa_ops[in->op].mnemonic);
  assert(in->ra < 32 && in->rb < 32 && in->rc < 32 && in->rd < 32);
  uint64_t w = (uint64_t)in->op << 56 | (uint64_t)in->ra << 51 | (uint64_t)in->rb << 46 |
               (uint64_t)in->rc << 41 | (uint64_t)in->rd << 36;
  if (isa_ops[in->op].format != FMT_T)
    return w | (uint32_t)in->imm;
  assert(in->wait_sem < 32 && in->signal_sem < 32 && in->unit < 8 && in->funct < 64);
  assert(in->dt_dst < 4 && in->dt_src1 < 4 && in->dt_src2 < 4);
  return w | (uint64_t)in->wait << 35 | (uint64_t)in->wait_sem << 30 |
         (uint64_t)in->signal << 29 | (uint64_t)in->signal_sem << 24 |
         (uint64_t)in->unit << 21 | (uint64_t)in->funct << 15 | (uint64_t)in->dt_dst << 13 |
         (uint64_t)in->dt_src1 << 11 | (uint64_t)in->dt_src2 << 9 | (uint64_t)in->flags << 1;
}

#define FAIL(...) do { if (why) snprintf(why, why_len, __VA_ARGS__); return false; } while (0)

bool isa_decode(uint64_t w, isa_inst *o, char *why, size_t why_len) {
  *o = (isa_inst){0};
  o->op = (uint8_t)(w >> 56);
  const isa_op_info *info = &isa_ops[o->op];
  if (!info->mnemonic)
    FAIL("illegal opcode 0x%02x", o->op);
  o->ra = (w >> 51) & 31;
  o->rb = (w >> 46) & 31;
  o->rc = (w >> 41) & 31;
  o->rd = (w >> 36) & 31;
  unsigned regs = isa_reg_fields(o);
  if (info->format != FMT_T) {
    if ((w >> 32) & 0xf)
      FAIL("%s: reserved bits 35:32 are not zero", info->mnemonic);
    o->imm = (int32_t)(uint32_t)w;
    if ((info->format == FMT_NONE || info->format == FMT_R) && o->imm)
      FAIL("%s: immediate field must be zero", info->mnemonic);
    if ((o->op == OP_SHLI || o->op == OP_SHRI || o->op == OP_SRAI) && (o->imm < 0 || o->imm > 63))
      FAIL("%s: shift amount %d is not in 0..63", info->mnemonic, o->imm);
    if (info->format == FMT_SEM && (((uint32_t)o->imm & 0xe0) || (o->imm >> 8) <= 0))
      FAIL("%s: bad semaphore or count", info->mnemonic);
    if (info->format == FMT_CSR && (o->imm < 0 || o->imm >= CSR_COUNT))
      FAIL("csrr: unknown register %d", o->imm);
  } else {
    o->wait = (w >> 35) & 1;
    o->wait_sem = (w >> 30) & 31;
    o->signal = (w >> 29) & 1;
    o->signal_sem = (w >> 24) & 31;
    o->unit = (w >> 21) & 7;
    o->funct = (w >> 15) & 63;
    o->dt_dst = (w >> 13) & 3;
    o->dt_src1 = (w >> 11) & 3;
    o->dt_src2 = (w >> 9) & 3;
    o->flags = (w >> 1) & 0xff;
    if (w & 1)
      FAIL("%s: reserved bit 0 is not zero", info->mnemonic);
    if (!o->wait && o->wait_sem)
      FAIL("%s: wait semaphore set without wait enable", info->mnemonic);
    if (!o->signal && o->signal_sem)
      FAIL("%s: signal semaphore set without signal enable", info->mnemonic);
    if (o->op == OP_VPU && !isa_vpu_ops[o->funct].name)
      FAIL("v: illegal vector function 0x%02x", o->funct);
    regs = isa_reg_fields(o);
    unsigned tf = tile_fields(o);
    if (!(tf & TF_UNIT) && o->unit) FAIL("%s: unit field must be zero", info->mnemonic);
    if (!(tf & TF_FUNCT) && o->funct) FAIL("%s: funct field must be zero", info->mnemonic);
    if (!(tf & TF_DTD) && o->dt_dst) FAIL("%s: dst dtype field must be zero", info->mnemonic);
    if (!(tf & TF_DT1) && o->dt_src1) FAIL("%s: src dtype field must be zero", info->mnemonic);
    if (!(tf & TF_DT2) && o->dt_src2) FAIL("%s: src2 dtype field must be zero", info->mnemonic);
    if (!(tf & TF_FLAGS) && o->flags) FAIL("%s: flags must be zero", info->mnemonic);
    if (o->op == OP_MXU_MM && (o->flags & ~(MXU_FLAG_ACC | MXU_FLAG_WIN)))
      FAIL("mxu.mm: unknown flags 0x%02x", o->flags);
    if (o->op == OP_DMA && ((o->funct & 3) > SPACE_LOCAL || (o->funct >> 2) > SPACE_LOCAL))
      FAIL("dma: bad address space in funct 0x%02x", o->funct);
    if ((o->op == OP_MXU_LDW || o->op == OP_MXU_MM) && o->dt_src1 != DT_BF16 &&
        o->dt_src1 != DT_I8)
      FAIL("%s: operand type must be bf16 or i8", info->mnemonic);
  }
  if (!(regs & 1) && o->ra) FAIL("%s: register field ra must be zero", info->mnemonic);
  if (!(regs & 2) && o->rb) FAIL("%s: register field rb must be zero", info->mnemonic);
  if (!(regs & 4) && o->rc) FAIL("%s: register field rc must be zero", info->mnemonic);
  if (!(regs & 8) && o->rd) FAIL("%s: register field rd must be zero", info->mnemonic);
  return true;
}

uint64_t isa_win_row(const uint64_t d[ISA_WIN_DESC_WORDS], uint64_t i) {
  uint64_t x = i % d[0], y = i / d[0] % d[2], z = i / d[0] / d[2];
  unsigned __int128 v = (unsigned __int128)z * d[4] + (unsigned __int128)y * d[3] + (unsigned __int128)x * d[1];
  return v >= UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

uint64_t isa_win_far(const uint64_t d[ISA_WIN_DESC_WORDS], uint64_t m) {
  uint64_t w = d[0], h = d[2], rows = (m + w - 1) / w;
  uint64_t x = m < w ? m - 1 : w - 1, y = rows < h ? rows - 1 : h - 1, z = (m - 1) / w / h;
  unsigned __int128 v = (unsigned __int128)z * d[4] + (unsigned __int128)y * d[3] + (unsigned __int128)x * d[1];
  return v >= UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}
