// The Systole instruction set: opcodes, their table, the decoded form, and the
// binary encoding. docs/isa.md is the specification; this header is its code.
//
// Sections by owner: isa.c (tables, encode, decode), asm.c (assembler),
// disasm.c (disassembler), binfile.c (the ELF container), hostmem.c (large
// host buffers).
#ifndef SYSTOLE_ISA_H
#define SYSTOLE_ISA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISA_ERR_LEN 512
#define ISA_NUM_REGS 32 // r0 reads as zero
#define ISA_NUM_SEMS 32
#define ISA_MAX_UNIT 8 // MXU index or DMA queue fits in 3 bits

// ---------------------------------------------------------------- isa.c
//
// Every instruction is one 64-bit little-endian word:
//   [63:56] opcode
//   [55:51] ra   [50:46] rb   [45:41] rc   [40:36] rd   (register numbers)
//   [35:0]  by format:
//     scalar (FMT_R, FMT_I, FMT_B, FMT_S): [35:32] zero, [31:0] imm32 (signed)
//     tile (FMT_T):
//       [35] wait enable   [34:30] wait semaphore
//       [29] signal enable [28:24] signal semaphore
//       [23:21] unit (MXU index or DMA queue)
//       [20:15] funct (VPU operation, DMA spaces)
//       [14:13] dtype dst  [12:11] dtype src1  [10:9] dtype src2
//       [8:1] flags        [0] zero
// Fields an instruction does not use must be zero; a word that breaks this is
// illegal, so every legal word has exactly one spelling and disasm/asm round-trip.

typedef enum {
  FMT_NONE, // no operands (nop, halt, fence)
  FMT_R,    // ra = rb op rc
  FMT_I,    // ra = rb op imm
  FMT_LI,   // ra, imm
  FMT_MEM,  // ra, imm(rb)
  FMT_B,    // ra, rb, target (imm = word offset from this instruction)
  FMT_J,    // ra, target
  FMT_JR,   // ra, rb, imm
  FMT_DB,   // ra, target   (decrement and branch)
  FMT_SEM,  // semaphore, count (imm = count << 8 | sem)
  FMT_CSR,  // ra, csr number (imm)
  FMT_T,    // tile instruction; operands depend on the opcode
} isa_format;

typedef enum {
  UNIT_SCALAR,
  UNIT_DMA,
  UNIT_MXU,
  UNIT_VPU,
  UNIT_KINDS,
} isa_unit_kind;

#define ISA_OPS(X)                                                              \
  /*  enum        code  mnemonic    format    unit */                          \
  X(OP_NOP,      0x01, "nop",      FMT_NONE, UNIT_SCALAR)                      \
  X(OP_HALT,     0x02, "halt",     FMT_NONE, UNIT_SCALAR)                      \
  X(OP_LI,       0x03, "li",       FMT_LI,   UNIT_SCALAR) /* ra = sext(imm) */ \
  X(OP_LIH,      0x04, "lih",      FMT_LI,   UNIT_SCALAR) /* ra[63:32] = imm */\
  X(OP_ADD,      0x10, "add",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_SUB,      0x11, "sub",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_MUL,      0x12, "mul",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_AND,      0x13, "and",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_OR,       0x14, "or",       FMT_R,    UNIT_SCALAR)                      \
  X(OP_XOR,      0x15, "xor",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_SHL,      0x16, "shl",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_SHR,      0x17, "shr",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_SRA,      0x18, "sra",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_SLT,      0x19, "slt",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_SLTU,     0x1a, "sltu",     FMT_R,    UNIT_SCALAR)                      \
  X(OP_MIN,      0x1b, "min",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_MAX,      0x1c, "max",      FMT_R,    UNIT_SCALAR)                      \
  X(OP_DIV,      0x1d, "div",      FMT_R,    UNIT_SCALAR) /* traps on /0 */    \
  X(OP_REM,      0x1e, "rem",      FMT_R,    UNIT_SCALAR) /* traps on /0 */    \
  X(OP_ADDI,     0x20, "addi",     FMT_I,    UNIT_SCALAR)                      \
  X(OP_MULI,     0x21, "muli",     FMT_I,    UNIT_SCALAR)                      \
  X(OP_ANDI,     0x22, "andi",     FMT_I,    UNIT_SCALAR)                      \
  X(OP_ORI,      0x23, "ori",      FMT_I,    UNIT_SCALAR)                      \
  X(OP_XORI,     0x24, "xori",     FMT_I,    UNIT_SCALAR)                      \
  X(OP_SHLI,     0x25, "shli",     FMT_I,    UNIT_SCALAR)                      \
  X(OP_SHRI,     0x26, "shri",     FMT_I,    UNIT_SCALAR)                      \
  X(OP_SRAI,     0x27, "srai",     FMT_I,    UNIT_SCALAR)                      \
  X(OP_SLTI,     0x28, "slti",     FMT_I,    UNIT_SCALAR)                      \
  X(OP_LD,       0x30, "ld",       FMT_MEM,  UNIT_SCALAR) /* 64-bit SMEM */    \
  X(OP_ST,       0x31, "st",       FMT_MEM,  UNIT_SCALAR)                      \
  X(OP_LDW,      0x32, "ldw",      FMT_MEM,  UNIT_SCALAR) /* 32-bit, sext */   \
  X(OP_STW,      0x33, "stw",      FMT_MEM,  UNIT_SCALAR)                      \
  X(OP_BEQ,      0x40, "beq",      FMT_B,    UNIT_SCALAR)                      \
  X(OP_BNE,      0x41, "bne",      FMT_B,    UNIT_SCALAR)                      \
  X(OP_BLT,      0x42, "blt",      FMT_B,    UNIT_SCALAR)                      \
  X(OP_BGE,      0x43, "bge",      FMT_B,    UNIT_SCALAR)                      \
  X(OP_BLTU,     0x44, "bltu",     FMT_B,    UNIT_SCALAR)                      \
  X(OP_BGEU,     0x45, "bgeu",     FMT_B,    UNIT_SCALAR)                      \
  X(OP_JAL,      0x46, "jal",      FMT_J,    UNIT_SCALAR)                      \
  X(OP_JALR,     0x47, "jalr",     FMT_JR,   UNIT_SCALAR)                      \
  X(OP_DBNZ,     0x48, "dbnz",     FMT_DB,   UNIT_SCALAR) /* ra--; ra!=0 */    \
  X(OP_SWAIT,    0x50, "swait",    FMT_SEM,  UNIT_SCALAR)                      \
  X(OP_SSIGNAL,  0x51, "ssignal",  FMT_SEM,  UNIT_SCALAR)                      \
  X(OP_CSRR,     0x52, "csrr",     FMT_CSR,  UNIT_SCALAR)                      \
  X(OP_FENCE,    0x53, "fence",    FMT_NONE, UNIT_SCALAR) /* all units idle */ \
  X(OP_DMA,      0x80, "dma",      FMT_T,    UNIT_DMA)                         \
  X(OP_MXU_LDW,  0x90, "mxu.ldw",  FMT_T,    UNIT_MXU)                         \
  X(OP_MXU_MM,   0x91, "mxu.mm",   FMT_T,    UNIT_MXU)                         \
  X(OP_VPU,      0xa0, "v",        FMT_T,    UNIT_VPU) /* v.<funct> */

typedef enum {
#define X(e, code, mn, fmt, unit) e = code,
  ISA_OPS(X)
#undef X
} isa_opcode;

typedef struct {
  const char *mnemonic;
  isa_format format;
  isa_unit_kind unit;
} isa_op_info;

// Table indexed by opcode byte; mnemonic is NULL for an illegal opcode.
extern const isa_op_info isa_ops[256];

// Element types of tile operands (2-bit field).
typedef enum { DT_F32, DT_BF16, DT_I32, DT_I8 } isa_dtype;
extern const char *const isa_dtype_names[4];
extern const int isa_dtype_bytes[4];

// DMA address spaces (funct = dst << 2 | src).
typedef enum { SPACE_HOST, SPACE_HBM, SPACE_LOCAL } isa_space;
extern const char *const isa_space_names[3];

// mxu.mm flags
#define MXU_FLAG_ACC 0x01 // add into the accumulators instead of overwriting
#define MXU_FLAG_WIN 0x02 // rd is the SMEM address of a window descriptor, not a row stride

// VPU operations (funct of OP_VPU). kind says how operands are used:
//   VK_UNARY:  dst = f(src1)              VK_BINARY: dst = src1 op src2
//   VK_REDUCE: dst[r] = fold over a row   VK_REDUCE_COL: dst[c] = fold over a column
//   VK_TRANSPOSE: dst[c][r] = src1[r][c]  VK_REQUANT: int32 -> int8 (docs/numerics.md)
// cost is the VPU's cycles per full vector of lanes x sublanes elements.
typedef enum { VK_UNARY, VK_BINARY, VK_REDUCE, VK_REDUCE_COL, VK_TRANSPOSE, VK_REQUANT } isa_vpu_kind;

#define ISA_VPU_OPS(X)                                  \
  /*  enum       funct name        kind          cost */ \
  X(VOP_MOV,     0x00, "mov",      VK_UNARY,     1)      \
  X(VOP_ADD,     0x01, "add",      VK_BINARY,    1)      \
  X(VOP_SUB,     0x02, "sub",      VK_BINARY,    1)      \
  X(VOP_MUL,     0x03, "mul",      VK_BINARY,    1)      \
  X(VOP_DIV,     0x04, "div",      VK_BINARY,    4)      \
  X(VOP_MAX,     0x05, "max",      VK_BINARY,    1)      \
  X(VOP_MIN,     0x06, "min",      VK_BINARY,    1)      \
  X(VOP_RELU,    0x08, "relu",     VK_UNARY,     1)      \
  X(VOP_NEG,     0x09, "neg",      VK_UNARY,     1)      \
  X(VOP_ABS,     0x0a, "abs",      VK_UNARY,     1)      \
  X(VOP_EXP,     0x10, "exp",      VK_UNARY,     4)      \
  X(VOP_LOG,     0x11, "log",      VK_UNARY,     4)      \
  X(VOP_TANH,    0x12, "tanh",     VK_UNARY,     4)      \
  X(VOP_SIGMOID, 0x13, "sigmoid",  VK_UNARY,     4)      \
  X(VOP_ERF,     0x14, "erf",      VK_UNARY,     4)      \
  X(VOP_RSQRT,   0x15, "rsqrt",    VK_UNARY,     4)      \
  X(VOP_SQRT,    0x16, "sqrt",     VK_UNARY,     4)      \
  X(VOP_RECIP,   0x17, "recip",    VK_UNARY,     4)      \
  X(VOP_RSUM,    0x20, "rsum",     VK_REDUCE,    1)      \
  X(VOP_RMAX,    0x21, "rmax",     VK_REDUCE,    1)      \
  X(VOP_RMIN,    0x22, "rmin",     VK_REDUCE,    1)      \
  X(VOP_CSUM,    0x24, "csum",     VK_REDUCE_COL, 1)     \
  X(VOP_CMAX,    0x25, "cmax",     VK_REDUCE_COL, 1)     \
  X(VOP_CMIN,    0x26, "cmin",     VK_REDUCE_COL, 1)     \
  X(VOP_TRANS,   0x28, "trans",    VK_TRANSPOSE, 2)      \
  X(VOP_REQUANT, 0x30, "requant",  VK_REQUANT,   2)      \
  X(VOP_IADD,    0x31, "iadd",     VK_BINARY,    1)      \
  /* comparisons: 1.0 if true else 0.0 (IEEE: NaN unordered) */ \
  X(VOP_CEQ,     0x18, "ceq",      VK_BINARY,    1)      \
  X(VOP_CNE,     0x19, "cne",      VK_BINARY,    1)      \
  X(VOP_CLT,     0x1a, "clt",      VK_BINARY,    1)      \
  X(VOP_CLE,     0x1b, "cle",      VK_BINARY,    1)      \
  X(VOP_CGT,     0x1c, "cgt",      VK_BINARY,    1)      \
  X(VOP_CGE,     0x1d, "cge",      VK_BINARY,    1)      \
  /* selection: src1 where src2 != 0 (mask) / == 0 (maskn), else -0.0, */ \
  /* the identity of +, so where(c, a, b) = mask(a, c) + maskn(b, c) */ \
  X(VOP_MASK,    0x1e, "mask",     VK_BINARY,    1)      \
  X(VOP_MASKN,   0x1f, "maskn",    VK_BINARY,    1)      \
  X(VOP_TRUNC,   0x0b, "trunc",    VK_UNARY,     1) /* round toward zero */ \
  X(VOP_MOVU,    0x07, "movu",     VK_UNARY,     1) /* mov; i8 operands are u8 */

typedef enum {
#define X(e, f, n, k, c) e = f,
  ISA_VPU_OPS(X)
#undef X
} isa_vpu_op;

typedef struct {
  const char *name; // NULL: illegal funct
  isa_vpu_kind kind;
  int cost;
} isa_vpu_info;
extern const isa_vpu_info isa_vpu_ops[64];

// Read-only control/status registers (csrr).
#define ISA_CSRS(X)                                             \
  X(CSR_CYCLE,      0, "cycle")      /* scalar unit's cycle */   \
  X(CSR_CORE_ID,    1, "core_id")                                \
  X(CSR_NUM_MXU,    2, "num_mxu")                                \
  X(CSR_MXU_ROWS,   3, "mxu_rows")                               \
  X(CSR_MXU_COLS,   4, "mxu_cols")                               \
  X(CSR_VMEM_BYTES, 5, "vmem_bytes")                             \
  X(CSR_ACC_BYTES,  6, "acc_bytes")                              \
  X(CSR_SMEM_BYTES, 7, "smem_bytes")                             \
  X(CSR_HBM_BYTES,  8, "hbm_bytes")                              \
  X(CSR_ACC_BASE,   9, "acc_base")                               \
  X(CSR_DMA_QUEUES, 10, "dma_queues")                            \
  X(CSR_VPU_LANES,  11, "vpu_lanes")                             \
  X(CSR_VPU_SUBLANES, 12, "vpu_sublanes")
typedef enum {
#define X(e, n, s) e = n,
  ISA_CSRS(X)
#undef X
  CSR_COUNT
} isa_csr;
extern const char *const isa_csr_names[CSR_COUNT];

// Local address space of a TensorCore: VMEM at 0, the accumulators at
// ISA_ACC_BASE. VPU operands, MXU operands and DMA "local" ends use it.
#define ISA_ACC_BASE 0x100000000ull

// SMEM descriptors (64-bit words), referenced by an SMEM byte address.
// DMA: a block of up to 4 dimensions; dimension 0 is contiguous bytes.
//   word 0: bytes of the innermost run (dim 0)
//   words 1+3i, 2+3i, 3+3i (i = 0..2): count, source stride, destination stride
//           of dimension i+1, strides in bytes (counts of 1 for unused dims)
#define ISA_DMA_DESC_WORDS 10
// VPU: a 2D block of rows x cols elements.
//   0 rows   1 cols   2 dst row stride   3 src1 row stride   4 src2 row stride
//   5 src2 column step (1 elementwise, 0 one value per row)
//   6 requant multiplier (int32)   7 requant right shift (0..63)   8 requant zero point
// Strides are in bytes; a stride of 0 repeats the same row (broadcast).
#define ISA_VPU_DESC_WORDS 9
// mxu.mm with MXU_FLAG_WIN (the TPU v1's Convolve): input rows are a window of
// an activation slab, planes of `height` window rows of `width` rows each.
//   0 width   1 row stride (bytes between rows of a window row)
//   2 height  3 window row stride   4 plane stride
// Input row i is at src + z*plane + y*wrow + x*row, where x = i mod width,
// y = (i / width) mod height, z = i / (width * height).
#define ISA_WIN_DESC_WORDS 5
// The offset of a window pass's input row i, and of the farthest of its rows
// [0, m), m >= 1 (every index at its largest): what it reads ends there plus
// a row's bytes. UINT64_MAX past 2^64.
uint64_t isa_win_row(const uint64_t d[ISA_WIN_DESC_WORDS], uint64_t i);
uint64_t isa_win_far(const uint64_t d[ISA_WIN_DESC_WORDS], uint64_t m);

// One decoded instruction.
typedef struct {
  uint8_t op;            // isa_opcode
  uint8_t ra, rb, rc, rd; // register numbers
  int32_t imm;           // scalar formats
  // tile formats
  bool wait, signal;
  uint8_t wait_sem, signal_sem;
  uint8_t unit, funct;
  uint8_t dt_dst, dt_src1, dt_src2;
  uint8_t flags;
} isa_inst;

// Encoding. isa_encode asserts the fields fit; isa_decode returns false and
// writes a reason if the word is not a legal instruction.
uint64_t isa_encode(const isa_inst *in);
bool isa_decode(uint64_t word, isa_inst *out, char *why, size_t why_len);

// Which register fields an opcode reads or writes (mask bit 0 = ra ... 3 = rd).
unsigned isa_reg_fields(const isa_inst *in);

// ---------------------------------------------------------------- disasm.c
// One instruction as assembler text, without a trailing newline; pc is the
// instruction's index, used to print branch targets. Illegal words print as
// ".inst 0x...". Returns the length written (snprintf semantics).
int isa_disasm_inst(uint64_t word, uint64_t pc, char *buf, size_t len);

// ---------------------------------------------------------------- binfile.c
// A program image: what `systole asm` writes and `systole sim` runs. Stored as
// an ELF64 little-endian relocatable-free executable with machine ISA_ELF_MACHINE
// (docs/isa.md, "Program files"): section .text holds the code; .smem the
// initial scalar memory; .hbm.<hex addr> and .host.<hex addr> hold initial
// contents of HBM and host memory at that address; .systole.io the I/O
// signature and .systole.chip the chip name, when present.
#define ISA_ELF_MACHINE 0x5359 // "SY": not assigned by any registry; ours

// A whole input file, as every reader of one (models, programs, arrays,
// configs, topologies, assembler and HLO text) takes it. Binary files are
// mapped read-only when they are regular files (no copy: the page cache's
// pages) and read otherwise (a pipe, /dev/stdin). Text files are read into a
// NUL-terminated buffer and may not contain a NUL byte. More than `limit`
// bytes is an error naming `what` the file was meant to be. On failure
// (-1) err says "PATH: reason" and errno is the open's or read's.
typedef struct {
  const uint8_t *data; // len bytes; for text, data[len] == 0
  size_t len;
  uint8_t *owned;      // malloc'd copy (read) or NULL (mapped)
} isa_file;

typedef enum { SEG_SMEM, SEG_HBM, SEG_HOST } isa_seg_kind;
typedef struct {
  isa_seg_kind kind;
  uint64_t addr;
  uint8_t *data;
  size_t size;
  bool borrowed; // data lies in the program's file (isa_program_read): read-only, not freed
} isa_segment;

// The I/O signature: the tensors a program reads and writes, so a runtime
// knows from the file alone where to put inputs and find outputs. Each tensor
// is row-major and contiguous (strides implied by dims) at a byte address of
// host memory or HBM. Stored in section .systole.io (docs/isa.md, section 8).
typedef enum { IO_INPUT, IO_OUTPUT } isa_io_role;
// Element types of I/O tensors: the tile types with their numbers (isa_dtype),
// then types only the host side sees. isa_dtype stays a 2-bit field.
typedef enum { IO_F32 = DT_F32, IO_BF16 = DT_BF16, IO_I32 = DT_I32, IO_I8 = DT_I8, IO_I64, IO_U8,
               IO_BOOL, IO_I16, IO_U16, IO_U32, IO_U64, IO_DTYPES } isa_io_dtype;
extern const char *const isa_io_dtype_names[IO_DTYPES]; // "f32" ... "bool", "i16" ... "u64"
extern const int isa_io_dtype_bytes[IO_DTYPES];
typedef enum { IO_MEM_HOST, IO_MEM_HBM } isa_io_mem;
extern const char *const isa_io_mem_names[2]; // "host", "hbm"
#define ISA_IO_MAX_NAME 255 // bytes of UTF-8, no control characters, not empty
#define ISA_IO_MAX_RANK 8
#define ISA_CHIP_MAX_NAME 255

typedef struct {
  isa_io_role role;
  char name[ISA_IO_MAX_NAME + 1]; // NUL-terminated
  isa_io_dtype dtype;
  int rank;                        // 0 (a scalar) .. ISA_IO_MAX_RANK
  int64_t dims[ISA_IO_MAX_RANK];   // each >= 0 (0: empty); unused ones 0
  isa_io_mem mem;
  uint64_t addr;                   // byte address of element 0
} isa_io;

// A layer: the instructions a compiler emitted for one operation of a model,
// for per-layer reports (section .systole.layers). pc_begin <= pc < pc_end;
// layers are disjoint and in program order.
#define ISA_LAYER_NAME 128
// The op of layers that move graph inputs from host memory before the first
// layer and outputs to it after the last (the TPU v1's Read_Host_Memory and
// Write_Host_Memory): the simulator's Table 3 counts the cycles between them.
#define ISA_LAYER_HOST_IN "host-in"
#define ISA_LAYER_HOST_OUT "host-out"
typedef struct {
  char name[ISA_LAYER_NAME]; // NUL-terminated, as for I/O names
  char op[32];               // "conv+relu", "maxpool", ...
  uint64_t pc_begin, pc_end;
  uint64_t macs;             // useful multiply-accumulates of the layer
} isa_layer;

typedef struct {
  uint64_t *code; // instruction words
  size_t ncode;
  isa_segment *segs;
  size_t nsegs;
  isa_io *io; // I/O tensors in file order (malloc'd; NULL if none)
  size_t nio;
  char chip[ISA_CHIP_MAX_NAME + 1]; // chip compiled for; "" if none
  isa_layer *layers; // malloc'd; NULL if none
  size_t nlayers;
  isa_file file; // isa_program_read's file, kept for the segments that borrow from it
} isa_program;

void isa_program_free(isa_program *p);
int isa_program_write(const isa_program *p, const char *path, char *err, size_t errlen);
int isa_program_read(isa_program *p, const char *path, char *err, size_t errlen);
// Same, from/to memory (tests and the runtime).
int isa_program_parse(isa_program *p, const uint8_t *buf, size_t len, char *err, size_t errlen);
// Checks one I/O tensor as the reader does (name, type, rank, dims, the byte
// size and the address range); false with a reason in why.
bool isa_io_valid(const isa_io *t, char *why, size_t whylen);
// Bytes of the tensor (elements x element size); 0 if isa_io_valid fails.
uint64_t isa_io_bytes(const isa_io *t);
// Whether s (n bytes) is a valid I/O or chip name: 1..255 bytes of UTF-8
// without control characters.
bool isa_io_name_valid(const char *s, size_t n);

// ---------------------------------------------------------------- asm.c
// Assembles source text into a program. name is used in messages
// ("name:line:col: reason"). defines is a NULL-terminated list of "NAME=VALUE"
// strings (may be NULL), visible as symbols. Returns 0 or -1 with err set.
int isa_assemble(const char *src, const char *name, const char *const *defines,
                 isa_program *out, char *err, size_t errlen);
int isa_assemble_file(const char *path, const char *const *defines, isa_program *out,
                      char *err, size_t errlen);
// The whole program as assembler text that isa_assemble turns back into the
// same bytes (code and every segment). Returns a malloc'd string.
char *isa_disasm_program(const isa_program *p);

// ---------------------------------------------------------------- hostmem.c
//
// Large host buffers (model weights, HBM images) are written whole straight
// after they are allocated: these fault their pages in at once, as huge pages
// where the kernel allows, instead of one fault per 4 KiB page. Buffers from
// them are ordinary malloc memory (free() them as usual; realloc() gives
// memory faulted in page by page again).
void *isa_malloc_big(size_t n); // under 1 MiB: plain malloc
// Asks for huge pages on [p, p + n) and faults in its first `populate` bytes
// at once (one madvise, not a fault per page): memory about to be written.
void isa_prefault(void *p, size_t n, size_t populate);

int isa_file_load(isa_file *f, const char *path, bool text, size_t limit, const char *what, char *err,
                  size_t errlen);
void isa_file_release(isa_file *f);

#endif
