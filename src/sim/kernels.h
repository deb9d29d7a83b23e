// Host kernels: the simulator's functional work at host speed, bit for bit the
// reference of numerics.c (docs/numerics.md, docs/performance.md).
// Owner: kernels.c (selection, threads, portable code), kernels_avx2.c,
// kernels_avx512.c, kernels_avx512bf16.c, kernels_amx.c (one instruction set each, compiled with
// their own flags and used only when the CPU has them).
#ifndef SYSTOLE_KERNELS_H
#define SYSTOLE_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// ---- Kernel selection ----
// The MXU kernel in use is the best the host has, or SYSTOLE_KERNEL's choice
// (ref, avx2, avx512, avx512bf16, amx: a lower one for tests; one the host lacks falls back
// to the best below it, with a note on stderr). Every kernel gives the same bits.
typedef enum { NUM_KERNEL_REF, NUM_KERNEL_AVX2, NUM_KERNEL_AVX512, NUM_KERNEL_AVX512BF16, NUM_KERNEL_AMX, NUM_KERNELS } num_kernel;
extern const char *const num_kernel_names[NUM_KERNELS];

bool num_kernel_available(num_kernel k); // the CPU has it (and Linux grants AMX tile data)
num_kernel num_kernel_current(void);
int num_kernel_use(num_kernel k);        // -1 if not available; for tests and benchmarks
int num_kernel_parse(const char *name);  // -1 if unknown

// ---- Threads ----
// A process-wide pool: SYSTOLE_THREADS, or every core this process may use.
// Results never depend on the number: work is split into tasks whose outputs
// are disjoint and whose arithmetic does not depend on the split.
int num_threads(void);
void num_set_threads(int n); // tests and benchmarks; 1 = no helper threads
// Runs fn(ctx, 0 .. ntasks-1), each exactly once, on the pool and the caller,
// and returns when all are done. Calls from several threads at once are safe
// (a call that finds the pool busy runs its tasks itself).
void num_parallel(int ntasks, void (*fn)(void *ctx, int task), void *ctx);
// Busy-waiting, for the pool and the simulator's effect engine: call it in
// the loop that tests the condition. It spins (what is waited for comes
// microseconds later while a model runs), yields the core after the first
// few microseconds (on a busy host the thread that would end the wait may be
// waiting for this one's core: ResNet-50 on 2 threads with one core busy
// elsewhere took 411 ms a run spinning without yielding, 54 ms on one
// thread), and returns false once `give_up` seconds have passed.
typedef struct {
  unsigned spins;
  double t0;
} num_waiter;
bool num_keep_waiting(num_waiter *w, double give_up);

// ---- MXU ----
// A weight tile prepared for the current kernel (each has its own layout).
// dtype is an isa_dtype: 1 bf16, 3 i8. w holds k rows of n elements, row
// stride w_stride bytes.
void *num_tile_alloc(int rows, int cols); // room for any kernel's layout; free() it. NULL: out of memory
// Room for one k x n tile of dtype in the current kernel's layout and no more
// (no room for the raw weights: num_tile_pass_ref unpacks a copy), for tiles
// kept long and shared read-only once loaded (the simulator's cache of packed
// weight tiles). free() it. NULL: out of memory.
void *num_tile_alloc_exact(int dtype, int k, int n);
// The same in memory the caller provides: num_tile_exact_bytes of it, 64-byte aligned.
size_t num_tile_exact_bytes(int dtype, int k, int n);
void *num_tile_place_exact(void *mem, int dtype, int k, int n);
void num_tile_load(void *tile, int dtype, const void *w, size_t w_stride, int k, int n);
// A pass with a prepared tile (the kernel that prepared it): m rows of lhs
// (k elements each, row stride lhs_stride bytes) into acc (fp32 or int32, row
// stride acc_stride elements), overwriting or accumulating as
// num_mxu_pass_bf16 / num_mxu_pass_i8 define. Split across the threads.
// lhs must not overlap the rows of acc written.
void num_tile_pass(const void *tile, void *acc, size_t acc_stride, const void *lhs, size_t lhs_stride,
                   int m, bool accumulate);
// The same by numerics.c itself, one output after the other in row order: for
// a pass whose input overlaps its output (each output then sees the ones
// written before it, as the reference defines).
void num_tile_pass_ref(const void *tile, void *acc, size_t acc_stride, const void *lhs, size_t lhs_stride,
                       int m, bool accumulate);

// ---- Vector unit ----
// Rows of elements as the vector unit loads and stores them (docs/numerics.md
// section 6), n at a time: bit for bit num_load / num_store, without the calls.
// Loads leave NaN payloads alone: every operation keeps a NaN a NaN and every
// store canonicalises, so only the stored bits matter.
void num_vload(int dtype, float *out, const void *src, size_t n);
void num_vstore(int dtype, void *dst, const float *in, size_t n);
// out[i] = op(a[i], b[i]) (b NULL for unary operations), the vector unit's
// elementwise operations by isa_vpu_op number; out may be a or b.
void num_vop(int op, float *out, const float *a, const float *b, size_t n);
// The same straight from fp32 memory to fp32 memory, NaN results canonical,
// on `rows` rows of n elements (row strides ds, as, bs in elements; bs 0:
// the same b for every row): each row of d may be that row of a or b (in
// place) or apart from both. false if op is not one of the simple ones (mov,
// add, sub, mul, div, max, min, relu, neg, abs, rsqrt, sqrt, recip): then
// nothing was done; rows or n 0 only asks that.
bool num_vop_f32(int op, float *d, size_t ds, const float *a, size_t as, const float *b, size_t bs, size_t rows,
                 size_t n);
// acc[i] = op(acc[i], x[i]) for a reduction op (rsum, rmax, ..., csum, ...).
void num_vfold(int op, float *acc, const float *x, size_t n);
// acc op x[0] op x[1] ... op x[n-1], in that order, for a reduction op.
float num_vreduce(int op, float acc, const float *x, size_t n);
// Requantisation of n int32 values (num_requant).
void num_vrequant(int8_t *dst, const int32_t *src, size_t n, int32_t mult, int shift, int32_t zp);

// bf16 bits as the fp32 they are exactly, inline for the kernels' hot loops
// (num_bf16_to_f32 is the same as a call).
static inline float num_bf16_bits_f32(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

// Per-kernel entry points (kernels_*.c); called through kernels.c only.
typedef struct num_tile_hdr num_tile_hdr;
typedef struct {
  void (*load)(num_tile_hdr *t, const void *w, size_t w_stride);
  // The raw weights back from the layout (k rows of n elements, row stride n).
  void (*unpack)(const num_tile_hdr *t, void *raw);
  // Rows [r0, r1) of a pass.
  void (*pass)(const num_tile_hdr *t, void *acc, size_t acc_stride, const void *lhs, size_t lhs_stride,
               int r0, int r1, bool accumulate);
  size_t (*bytes)(int dtype, int k, int n); // the layout's size for a k x n tile
  int row_block; // split passes at multiples of this many rows
} num_mxu_impl;

struct num_tile_hdr {
  int kernel, dtype, k, n;
  int rows, cols;  // the tile's capacity (num_tile_alloc)
  size_t data;     // offset of the kernel's layout, after room for the raw weights
  // at 64: the raw weights, k rows of n elements (the reference kernel's
  // layout; other kernels unpack into it when the reference must run), unless
  // data is 64 (num_tile_alloc_exact: no room, never written after loading);
  // at data: the kernel's layout
};
#define NUM_TILE_RAW(t) ((void *)((char *)(t) + 64))
#define NUM_TILE_DATA(t) ((void *)((char *)(t) + (t)->data))

bool num_cpu_avx2(void);
bool num_cpu_avx512(void);
bool num_cpu_avx512bf16(void); // AVX512-BF16 and AVX512-VNNI as well
bool num_cpu_amx(void);
extern const num_mxu_impl num_mxu_avx2, num_mxu_avx512, num_mxu_avx512bf16, num_mxu_amx;

#endif
