// The compiler: graph passes, lowering onto the chip's instruction set, and
// the emitter that turns tile operations into a synchronised program.
// docs/compiler.md is the specification; this header is its map.
//
// Sections by owner: passes.c (optimisation passes), layout.c (layout
// assignment), emit.c (instructions, registers, descriptors, semaphores),
// compile.c (the driver: memory plan, layer loop, executable), lower_mxu.c
// (matmul, gemm, conv), lower_vpu.c (elementwise, pools, softmax),
// lower_move.c (data movement), rnn.c (recurrences unrolled), gather.c,
// resize.c and widen.c (node rewrites, built with rewrite.c).
#ifndef SYSTOLE_COMPILER_H
#define SYSTOLE_COMPILER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"
#include "isa/isa.h"
#include "sim/chip.h"

#define CC_ERR_LEN 1024

typedef enum { CC_PRECISION_DEFAULT, CC_PRECISION_HIGHEST } cc_precision;
extern const char *const cc_precision_names[2]; // "default", "highest"

typedef struct {
  cc_precision precision;
  FILE *dump_ir;  // non-NULL: the IR after import and after every pass
  FILE *dump_asm; // non-NULL: the program as assembler text, with layer comments
  bool quantize;  // cc_quantize ran (--quantize int8): only for error messages
  // The chip's Activate applies sigmoid and tanh as it moves a product's
  // results out (TPU v1, [vmem] activations): cc_optimize fuses them too.
  bool fuse_activate;
} cc_options;

typedef struct {
  isa_program prog; // code, SMEM, HBM constants, I/O signature, chip name, layers
  uint64_t hbm_bytes; // HBM the program uses (constants and activations)
} cc_executable;

void cc_executable_free(cc_executable *x);

// ---------------------------------------------------------------- passes.c
//
// Each pass edits the graph in place and leaves it verified (ir_verify) and
// in topological order; returns how many rewrites it made, or -1 with err.

int cc_fold_constants(ir_graph *g, char *err, size_t errlen); // ir_fold_graph + ir_prune
int cc_eliminate_dead(ir_graph *g, char *err, size_t errlen); // ir_prune; identity/dropout bypass
// conv followed by batchnorm with constant parameters: scale the weights and
// bias; a batchnorm left on its own becomes mul and add by constants.
int cc_fold_batchnorm(ir_graph *g, char *err, size_t errlen);
// Gemm with constant B into canonical form (trans_a = trans_b = false,
// alpha = beta = 1, C a bias of shape [N] or absent); transposes of
// non-constant operands become explicit transpose nodes.
int cc_canonicalize(ir_graph *g, char *err, size_t errlen);
// rnn.c: lstm and gru unrolled over the sequence into matmuls (the input
// projections of all steps at once, then h @ R^T per step), slices,
// activations and elementwise ops (docs/compiler.md, "Recurrences").
int cc_unroll_rnn(ir_graph *g, char *err, size_t errlen);
// gather.c: gather with indices known only at run time rewritten as a
// one-hot matrix (compare against an iota) times the data on the MXU.
int cc_lower_gather(ir_graph *g, char *err, size_t errlen);
// rewrite.c: the builder gather.c and resize.c replace a node n with. Nodes
// are named "n/what" and inferred; after a failure (err set) they are NULL.
typedef struct {
  ir_graph *g;
  ir_node *n;
  char *err;
  size_t errlen;
  bool failed;
} cc_rewrite;
ir_value *cc_rw_node(cc_rewrite *b, ir_op op, ir_value *const *in, int nin, const ir_attrs *a, const char *what);
ir_value *cc_rw_reshape(cc_rewrite *b, ir_value *v, int rank, const int64_t *dims, const char *what);
ir_value *cc_rw_cast(cc_rewrite *b, ir_value *v, ir_dtype to, const char *what);
// res's producer computes n's output instead, and n goes; -1 after a failure.
int cc_rw_replace(cc_rewrite *b, ir_value *res);
// An f32 constant of rank/dims: the values v, or fill everywhere when v is NULL.
ir_value *cc_rw_f32const(cc_rewrite *b, int rank, const int64_t *dims, const float *v, float fill, const char *what);
// Every node wants accepts rewritten by rewrite (which calls cc_rw_replace),
// the graph re-sorted after each; the count.
int cc_rewrite_all(ir_graph *g, bool (*wants)(const ir_node *), const char *pass,
                   int (*rewrite)(ir_graph *, ir_node *, char *, size_t), char *err, size_t errlen);
// resize.c: resize (nearest, linear, cubic) as one matmul per resized axis
// against a constant interpolation matrix.
int cc_lower_resize(ir_graph *g, char *err, size_t errlen);
// widen.c: pow and maxpool of integers computed in f32 (pow rounded) and
// converted back.
int cc_widen_integers(ir_graph *g, char *err, size_t errlen);
// pool3d.c: 3-D max and average pools as two 2-D pools (h and w, then depth).
int cc_split_pool3d(ir_graph *g, char *err, size_t errlen);
// Bias, residual add and relu/clip folded into the epilogue of conv, gemm and
// matmul, and a softmax over the last axis into a matmul's (ir_attrs.act,
// ir_attrs.residual).
int cc_fuse_epilogues(ir_graph *g, char *err, size_t errlen);
// The same, and sigmoid and tanh too (cc_options.fuse_activate).
int cc_fuse_activate_epilogues(ir_graph *g, char *err, size_t errlen);
// layout.c: conv and pools channels last (ir_attrs.nhwc), with the
// transposes that implies sunk through elementwise ops and cancelled in pairs.
int cc_assign_layout(ir_graph *g, char *err, size_t errlen);

// The pipeline above, in order, with ir_verify after each and dumps to
// opt->dump_ir. Returns 0 or -1.
int cc_optimize(ir_graph *g, const cc_options *opt, char *err, size_t errlen);

// ---------------------------------------------------------------- quantize.c
//
// Post-training quantisation (docs/compiler.md, "Quantisation"): runs the
// optimised fp32 graph on the simulator over the calibration inputs and sets
// ir_attrs.qscale of every conv and matmul with constant weights (depthwise
// convolutions excepted) to max |input| / 127; those layers then run int8 on
// the MXU. inputs[s * g->ninputs + i] is graph input i of set s, in its IR
// dtype and shape.
typedef struct {
  int nsets;
  const void *const *inputs;
} cc_calibration;
int cc_quantize(ir_graph *g, const chip_config *chip, const cc_calibration *cal, char *err, size_t errlen);
// The values a chip with the activations in VMEM stores int8 (compile.c):
// classes of values joined by the nodes that pass int8 through with one scale
// (max pools, concatenations, views), each made only by int8 products
// (product[node id]), max pools and concatenations, read only by int8
// products (as their input 0), max pools, concatenations and views, and
// neither a graph input, output nor constant. cls[value id]: its class (a
// value id), or -1. Returns 0, or -1 out of host memory.
int cc_q8_classes(const ir_graph *g, const bool *product, int *cls);

// ---------------------------------------------------------------- compile.c
//
// Compiles an optimised graph for a chip. Graph inputs and outputs live in
// HBM, row-major, in their IR dtype (the I/O signature says where); constants
// are HBM segments of the program. Errors name the node and the reason (an
// op or dtype the lowering does not support, a layer that does not fit VMEM,
// a program larger than IMEM or SMEM, a model larger than HBM).
int cc_compile(ir_graph *g, const chip_config *chip, const cc_options *opt, cc_executable *out,
               char *err, size_t errlen);

// ---------------------------------------------------------------- emit.c
//
// The emitter. Lowering code describes tile work (DMA, weight load, pass,
// vector op) with the memory regions it touches; the emitter loads operand
// registers (caching their values), writes descriptors to SMEM (shared when
// equal), picks DMA queues, and inserts the semaphore waits that the data
// dependencies between units require, so lowering code never handles
// registers or semaphores.
//
// Synchronisation: every tile instruction (but mxu.ldw) signals its unit's
// semaphore. Before dispatching an instruction that reads or writes memory
// that an unfinished instruction of another unit writes (or writes what it
// reads), the scalar unit waits (swait) for that instruction's completion.
// Units run their own queue in order, so dependencies within a unit need no
// wait. Emission order is therefore the schedule: issue the loads for the
// next tile before the work that waits for the current one.

typedef struct cc_emit cc_emit;

// A DMA block: inner contiguous bytes, then up to 3 outer dimensions (count,
// source stride, destination stride, bytes); unused dims have n = 1.
typedef struct {
  uint64_t inner;
  uint64_t n[3];
  int64_t src_stride[3], dst_stride[3];
} cc_dma_shape;

// A vector op's block (docs/isa.md 5.2): rows x cols elements; strides in
// bytes; src2_stride 0 repeats one row; src2_colstep 0 one value per row.
typedef struct {
  uint64_t rows, cols;
  int64_t dst_stride, src1_stride, src2_stride;
  int src2_colstep;
  int32_t mult, shift, zp; // requant; iadd's flags in zp (descriptor word 8)
} cc_vblock;

cc_emit *cc_emit_new(const chip_config *chip, char *err, size_t errlen);
void cc_emit_free(cc_emit *e);
const chip_config *cc_emit_chip(const cc_emit *e);

// The first error wins: emit calls after a failure do nothing, and
// cc_emit_failed returns -1 with the message (lowering code may check once
// per layer).
int cc_emit_fail(cc_emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cc_emit_failed(const cc_emit *e, char *err, size_t errlen);

// Layers: instructions emitted between begin and end belong to the layer.
void cc_layer_begin(cc_emit *e, const char *name, const char *op);
void cc_layer_add_macs(cc_emit *e, uint64_t macs);
void cc_layer_end(cc_emit *e);

// Local memory for one layer: VMEM and accumulator scratch, handed out by
// bump allocation and all released by cc_scratch_reset (called between
// layers, after the emitter has made sure nothing in flight still uses it).
// Addresses are local (accumulators at ISA_ACC_BASE). Returns UINT64_MAX and
// fails the emitter with a message naming what did not fit.
uint64_t cc_vmem_alloc(cc_emit *e, uint64_t bytes, const char *what);
uint64_t cc_acc_alloc(cc_emit *e, uint64_t bytes, const char *what);
uint64_t cc_vmem_free_bytes(const cc_emit *e); // what cc_vmem_alloc can still give
uint64_t cc_vmem_scratch_bytes(const cc_emit *e); // what this layer's scratch holds now
uint64_t cc_acc_free_bytes(const cc_emit *e);
void cc_scratch_reset(cc_emit *e);
// A region at the top of VMEM for the whole program (before any scratch is
// handed out); scratch then ends below it. UINT64_MAX if it does not fit.
uint64_t cc_vmem_reserve(cc_emit *e, uint64_t bytes);
// The VMEM address an HBM address of the activation arena's window names, or
// UINT64_MAX for an address outside it.
uint64_t cc_ub_local(const cc_emit *e, uint64_t addr);
// A contiguous HBM-to-VMEM copy on the last DMA queue, so that it runs beside
// the current layer's transfers on queue 0 (weights prefetch).
void cc_prefetch_copy(cc_emit *e, uint64_t dst, uint64_t src_hbm, uint64_t bytes);

// The activation arena (chip vmem_activations): HBM addresses from
// CC_UB_WINDOW on name bytes of a VMEM region instead, so that lowering code
// places a value there without knowing: every DMA translates them
// (cc_ub_window sets the region, reserved with cc_vmem_reserve).
#define CC_UB_WINDOW (1ull << 60)
void cc_ub_window(cc_emit *e, uint64_t vmem_base, uint64_t bytes);

// HBM: constants become program segments; activations get addresses.
// Allocations are 64-byte aligned. cc_hbm_const copies data; cc_hbm_const_room
// returns the room for bytes of constant data at HBM address *addr, for the
// caller to fill before it adds the next constant (NULL if the emitter failed).
uint64_t cc_hbm_alloc(cc_emit *e, uint64_t bytes);
uint64_t cc_hbm_const(cc_emit *e, const void *data, uint64_t bytes);
void *cc_hbm_const_room(cc_emit *e, uint64_t bytes, uint64_t *addr);

// Tile work. Addresses are in the named space (local addresses for VMEM and
// the accumulators). Bad operands (out of memory, misaligned, beyond the
// chip) fail the emitter, never the simulator.
void cc_dma(cc_emit *e, isa_space dst_space, uint64_t dst, isa_space src_space, uint64_t src,
            const cc_dma_shape *shape);
// A strided block of up to 8 dims of elem-byte elements (dim 0 outermost,
// counts and byte strides per dim): contiguous dims are merged, and blocks
// with more than 3 outer dims after merging, or over 1 GiB, become several DMAs.
void cc_dma_nd(cc_emit *e, isa_space dst_space, uint64_t dst, isa_space src_space, uint64_t src,
               uint64_t elem, int ndims, const uint64_t *count, const int64_t *src_stride,
               const int64_t *dst_stride);
// Every DMA from now on goes to queue q (modulo the chip's queues); -1: each
// to the queue its memories choose (the default).
void cc_dma_queue(cc_emit *e, int q);
// Contiguous copy of bytes.
void cc_copy(cc_emit *e, isa_space dst_space, uint64_t dst, isa_space src_space, uint64_t src,
             uint64_t bytes);
void cc_ldw(cc_emit *e, int mxu, isa_dtype dt, uint64_t src, uint64_t stride, int k, int n);
void cc_mm(cc_emit *e, int mxu, isa_dtype dt, uint64_t acc, uint64_t src, uint64_t rows,
           uint64_t stride, bool accumulate);
// A pass whose input rows are a window of a slab (mxu.mm ..., win; docs/isa.md
// 5.5): planes of `height` window rows of `width` rows, strides in bytes.
typedef struct {
  uint64_t width, row, height, wrow, plane;
} cc_window;
void cc_mm_win(cc_emit *e, int mxu, isa_dtype dt, uint64_t acc, uint64_t src, uint64_t rows, const cc_window *w,
               bool accumulate);
// Binary ops use src2; others ignore src2 and dt_src2.
void cc_vpu(cc_emit *e, isa_vpu_op op, isa_dtype dt_dst, uint64_t dst, isa_dtype dt_src1,
            uint64_t src1, isa_dtype dt_src2, uint64_t src2, const cc_vblock *b);
// A counted loop of weight loads and passes whose source addresses step by a
// fixed amount per iteration (docs/compiler.md, "The emitter"): emitted once
// with dbnz instead of count times. Everything the iterations read must be
// written before cc_loop_begin.
void cc_loop_begin(cc_emit *e, uint64_t count);
void cc_loop_ldw(cc_emit *e, int mxu, isa_dtype dt, uint64_t src, int64_t step, uint64_t stride, int k, int n);
void cc_loop_mm(cc_emit *e, int mxu, isa_dtype dt, uint64_t acc, uint64_t src, int64_t step, uint64_t rows,
                uint64_t stride, bool accumulate);
void cc_loop_end(cc_emit *e);
// Waits for every unit to finish (a layer boundary that must not overlap).
void cc_barrier(cc_emit *e);
// Holds a 2-D DMA (as cc_dma_nd takes it) back until an instruction touches
// its memory (that instruction then comes after it), a barrier, another
// deferred DMA or the end of the program, whichever is first: so that the
// scalar unit need not wait for its source's producer before dispatching
// work that does not depend on it.
void cc_defer_dma(cc_emit *e, isa_space dst_space, uint64_t dst, isa_space src_space, uint64_t src, uint64_t inner,
                  const uint64_t n[2], const int64_t ss[2], const int64_t ds[2]);
void cc_flush_deferred(cc_emit *e); // emits the deferred DMA now, if any

// The finished program: halt appended, SMEM image, HBM segments, layers.
// The emitter is left empty. Returns 0 or -1 (IMEM or SMEM overflow, ...).
int cc_emit_finish(cc_emit *e, cc_executable *out, char *err, size_t errlen);

// ---------------------------------------------------------------- lowering
//
// Where a value lives: HBM, row-major, dense, in its IR dtype. Values that
// are views of another (reshape, flatten, identity) share its address.
// A value in the activation arena whose every reader is an int8 product
// with the same input scale is stored int8, quantised as those readers would
// quantise it (q = sat8(rne(x * q8_inv + q8_zp)), docs/compiler.md): its
// producer's epilogue quantises, its readers take the int8 as it is.
typedef struct {
  uint64_t addr;
  bool placed;
  bool hbm_rel;  // while compile.c places values: addr is an offset in the HBM arena, moved at the end
  bool q8;       // stored int8 (the IR type says f32)
  float q8_inv;  // 1 / the readers' qscale
  int q8_zp;     // the readers' qzp (0 or -128)
  // A piece of a concatenation along the last axis, written in place by its
  // producer (an MXU product, compile.c): elements from one row of its last
  // axis to the next (the concatenation's width); 0 for a dense value.
  int64_t pitch;
} cc_place;

// Weights of the MXU layers, arranged before lowering starts (compile.c,
// cc_mxu_prepare), and their prefetch: while one layer runs, the next MXU
// layer's weights are copied into one of two VMEM regions reserved at the
// top of VMEM, alternately, so its passes need not wait for them.
enum { CC_FIFO_MAX = 65 }; // weight FIFO slots: up to 64 tiles deep plus the one shifting in

// A weight tile as the weight FIFO reads it from HBM: k rows of n elements
// of es bytes, rows nb elements apart.
typedef struct {
  uint64_t hbm;
  int k, n, es;
  int64_t nb;
} cc_fifo_tile;

// A chip's weight FIFO (TPU v1) for the whole program: tiles stream from HBM
// into a ring of slots reserved in VMEM, tile g (counted over every layer,
// in fetch order) into slot g mod slots. A layer's lowering fetches its own
// tiles and, at its end, the next FIFO layer's first ones (lower_mxu.c).
typedef struct {
  int slots;
  uint64_t slot[CC_FIFO_MAX];
  int64_t fetched; // tiles fetched so far
} cc_fifo;

typedef struct {
  uint64_t w_hbm, w_bytes; // arranged weights in HBM (w_bytes 0: none, e.g. runtime B)
  uint64_t b_hbm;          // bias (f32 [M]) in HBM, 0 if none
  bool has_bias;
  uint64_t vmem;           // where they were prefetched; UINT64_MAX: not prefetched
  uint64_t s_hbm;          // int8 layers: f32 [M] dequantisation scales in HBM
  // With a weight FIFO: the first tiles the layer takes (up to the FIFO's
  // depth), and how many of them the previous layer has fetched already
  int nlead, lead_fetched;
  cc_fifo_tile lead[CC_FIFO_MAX];
} cc_weights;

// The lowering context for one node.
typedef struct {
  cc_emit *e;
  const chip_config *chip;
  const cc_options *opt;
  const ir_graph *g;
  const ir_node *n;
  const cc_place *place; // indexed by ir_value.id
  cc_weights *weights;   // indexed by ir_node.id
  cc_fifo *fifo;         // the weight FIFO, NULL on chips without one
  cc_weights *next;      // the next layer that takes tiles from the FIFO, or NULL
} cc_lower_ctx;

static inline uint64_t cc_addr(const cc_lower_ctx *c, const ir_value *v) {
  return c->place[v->id].addr;
}

// Each lowers one node into the emitter (inside a layer the driver opened)
// and returns 0, or -1 with err naming the node. The driver checks
// cc_lower_supported first, so unsupported ops and dtypes fail at compile
// time with the op, the node and the reason.
int cc_lower_mxu(cc_lower_ctx *c, char *err, size_t errlen);  // lower_mxu.c
// Arranges a matmul's or convolution's constant weights (and bias) in HBM
// into c->weights[node id], before any code is emitted. Returns 0 or -1.
int cc_mxu_prepare(cc_lower_ctx *c, char *err, size_t errlen);
int cc_lower_vpu(cc_lower_ctx *c, char *err, size_t errlen);  // lower_vpu.c
// The softmax epilogue of a matmul whose rows span several n-tiles: over the
// last axis of v (f32, in HBM) in place, after a barrier (lower_vpu.c).
int cc_lower_softmax_inplace(cc_lower_ctx *c, const ir_value *v, char *err, size_t errlen);
// quantize_linear, dequantize_linear on the vector unit (lower_q8.c)
int cc_lower_q8(cc_lower_ctx *c, char *err, size_t errlen);
int cc_lower_move(cc_lower_ctx *c, char *err, size_t errlen); // lower_move.c
// Can this node be lowered? false with the reason otherwise.
bool cc_lower_supported(const ir_node *n, char *why, size_t whylen);
// Is this node a view (no code: its output shares its input's address)?
bool cc_is_view(const ir_node *n);

#endif
