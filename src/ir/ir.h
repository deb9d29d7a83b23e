// The compiler's graph IR: element types, the op table, values, nodes and
// graphs, and the functions that build, infer, verify, print and fold them.
// docs/ir.md is the specification; this header is its map.
//
// Sections by owner: ir.c (tables, building and editing graphs, constants),
// infer.c (shape inference), verify.c (the verifier), print.c (the dump),
// fold.c (the constant evaluator), frontend/onnx.c (the ONNX importer).
//
// A graph is in SSA form: every value is defined once, by a node, as a graph
// input, or as a constant (data attached, no node). Shapes are static: every
// value has a dtype and concrete dims from import onwards. Nodes are kept in
// topological order.
#ifndef SYSTOLE_IR_H
#define SYSTOLE_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IR_MAX_DIMS 8
#define IR_ERR_LEN 512
#define IR_MANY 0x7fffffff // no upper bound on an arity (concat's inputs)
// Largest constant the evaluator creates; bigger results stay as nodes.
#define IR_FOLD_MAX_BYTES (64u << 20)
// Largest tensor the IR describes (elements); keeps byte counts in int64.
#define IR_MAX_ELEMS (1ll << 40)

typedef struct ir_value ir_value;
typedef struct ir_node ir_node;
typedef struct ir_graph ir_graph;

// ---------------------------------------------------------------- ir.c: types

typedef enum { IR_DK_NONE, IR_DK_FLOAT, IR_DK_SINT, IR_DK_UINT, IR_DK_BOOL } ir_dtype_kind;

#define IR_DTYPES(X)                          \
  /*  enum         name    bytes kind */       \
  X(IR_DT_UNDEF,   "?",    0,   IR_DK_NONE)   \
  X(IR_DT_F32,     "f32",  4,   IR_DK_FLOAT)  \
  X(IR_DT_BF16,    "bf16", 2,   IR_DK_FLOAT)  \
  X(IR_DT_F16,     "f16",  2,   IR_DK_FLOAT)  \
  X(IR_DT_F64,     "f64",  8,   IR_DK_FLOAT)  \
  X(IR_DT_I8,      "i8",   1,   IR_DK_SINT)   \
  X(IR_DT_I16,     "i16",  2,   IR_DK_SINT)   \
  X(IR_DT_I32,     "i32",  4,   IR_DK_SINT)   \
  X(IR_DT_I64,     "i64",  8,   IR_DK_SINT)   \
  X(IR_DT_U8,      "u8",   1,   IR_DK_UINT)   \
  X(IR_DT_U16,     "u16",  2,   IR_DK_UINT)   \
  X(IR_DT_U32,     "u32",  4,   IR_DK_UINT)   \
  X(IR_DT_U64,     "u64",  8,   IR_DK_UINT)   \
  X(IR_DT_BOOL,    "bool", 1,   IR_DK_BOOL)   // one byte, 0 or 1

typedef enum {
#define X(e, name, bytes, kind) e,
  IR_DTYPES(X)
#undef X
  IR_DT_COUNT
} ir_dtype;

typedef struct {
  const char *name;
  int bytes;
  ir_dtype_kind kind;
} ir_dtype_info;
extern const ir_dtype_info ir_dtypes[IR_DT_COUNT];

// A tensor type: element type and static shape (rank 0 is a scalar).
typedef struct {
  ir_dtype dtype;
  int rank;
  int64_t dims[IR_MAX_DIMS];
} ir_type;

bool ir_dtype_is_float(ir_dtype dt);
bool ir_dtype_is_int(ir_dtype dt); // signed or unsigned, not bool
int64_t ir_nelems(const ir_type *t); // product of dims (1 for a scalar)
size_t ir_nbytes(const ir_type *t);
bool ir_type_eq(const ir_type *a, const ir_type *b);
ir_type ir_type_make(ir_dtype dt, int rank, const int64_t *dims);
// "f32[1,3,224,224]"; returns buf.
char *ir_type_str(const ir_type *t, char *buf, size_t len);

// ---------------------------------------------------------------- ir.c: ops
//
// One row per op. in/out: arity bounds. rule: the shape rule (infer_<rule> in
// infer.c). fold: the evaluator (fold_<fold> in fold.c; none: never folded).
// attrs: which ir_attrs fields the op uses (print.c shows those).
// Optional inputs are absent, never NULL: gemm with 2 inputs has no C.

enum {
  IR_A_WINDOW = 1 << 0,  // kernel, stride, dilation, pads (spatial dims)
  IR_A_GROUP = 1 << 1,   // group
  IR_A_CEIL = 1 << 2,    // ceil_mode
  IR_A_CIP = 1 << 3,     // count_include_pad
  IR_A_GEMM = 1 << 4,    // trans_a, trans_b, alpha, beta
  IR_A_ALPHA = 1 << 5,   // alpha, beta (hardsigmoid)
  IR_A_EPS = 1 << 6,     // epsilon
  IR_A_CLIP = 1 << 7,    // lo, hi
  IR_A_AXIS = 1 << 8,    // axis
  IR_A_PERM = 1 << 9,    // perm
  IR_A_DIMS = 1 << 10,   // dims, ndims (target shape)
  IR_A_SLICE = 1 << 11,  // start, end, step per dim
  IR_A_PAD = 1 << 12,    // pads over all dims, pad_mode, pad_value
  IR_A_SIZES = 1 << 13,  // sizes (split)
  IR_A_RANGE = 1 << 14,  // start[0], end[0] (shape)
  IR_A_TO = 1 << 15,     // to
  IR_A_VALUE = 1 << 16,  // value (constant_of_shape)
  IR_A_RESIZE = 1 << 17, // resize_*, scales
  IR_A_LAYOUT = 1 << 18, // nhwc (set by the layout pass)
  IR_A_EPILOGUE = 1 << 19, // act, residual (set by the fusion pass)
  IR_A_GELU = 1 << 20,   // approx_tanh
  IR_A_SLOPE = 1 << 21,  // alpha (leaky_relu)
  IR_A_REDUCE = 1 << 22, // axes, naxes, keepdims
  IR_A_REPEATS = 1 << 23, // repeats (tile)
  IR_A_OUTPAD = 1 << 24, // out_pad (conv_transpose)
  IR_A_RNN = 1 << 25,    // rnn_dir, hidden, rnn_clip, input_forget, linear_before_reset
  IR_A_RWINDOW = 1 << 26, // kernel, stride, dilation, pads over every dim, reduce_kind
};

// Activations a matmul or conv epilogue applies (compiler/passes.c fuses them).
// softmax: over the last axis of a matmul's f32 output (attention's scores);
// sigmoid, tanh: on chips whose Activate applies them (cc_options.fuse_activate).
typedef enum { IR_ACT_NONE, IR_ACT_RELU, IR_ACT_CLIP, IR_ACT_SOFTMAX, IR_ACT_SIGMOID, IR_ACT_TANH } ir_act;
extern const char *const ir_act_names[6];

#define IR_OPS(X) \
  /*  enum                     name                 in max      out max      rule         fold       attrs */ \
  X(IR_OP_MATMUL,             "matmul",            2, 4,      1, 1,      matmul,      none,      IR_A_EPILOGUE) \
  X(IR_OP_GEMM,               "gemm",              2, 4,      1, 1,      gemm,        none,      IR_A_GEMM | IR_A_EPILOGUE) \
  X(IR_OP_CONV,               "conv",              2, 4,      1, 1,      conv,        none,      IR_A_WINDOW | IR_A_GROUP | IR_A_LAYOUT | IR_A_EPILOGUE) \
  X(IR_OP_BATCHNORM,          "batchnorm",         5, 5,      1, 1,      batchnorm,   none,      IR_A_EPS) \
  X(IR_OP_MAXPOOL,            "maxpool",           1, 1,      1, 1,      pool,        none,      IR_A_WINDOW | IR_A_CEIL | IR_A_LAYOUT) \
  X(IR_OP_AVGPOOL,            "avgpool",           1, 1,      1, 1,      pool,        none,      IR_A_WINDOW | IR_A_CEIL | IR_A_CIP | IR_A_LAYOUT) \
  X(IR_OP_GLOBAL_AVGPOOL,     "global_avgpool",    1, 1,      1, 1,      global_pool, none,      IR_A_LAYOUT) \
  X(IR_OP_ADD,                "add",               2, 2,      1, 1,      broadcast,   arith,     0) \
  X(IR_OP_SUB,                "sub",               2, 2,      1, 1,      broadcast,   arith,     0) \
  X(IR_OP_MUL,                "mul",               2, 2,      1, 1,      broadcast,   arith,     0) \
  X(IR_OP_DIV,                "div",               2, 2,      1, 1,      broadcast,   arith,     0) \
  X(IR_OP_RELU,               "relu",              1, 1,      1, 1,      numeric,     none,      0) \
  X(IR_OP_CLIP,               "clip",              1, 1,      1, 1,      numeric,     none,      IR_A_CLIP) \
  X(IR_OP_SIGMOID,            "sigmoid",           1, 1,      1, 1,      floating,    none,      0) \
  X(IR_OP_TANH,               "tanh",              1, 1,      1, 1,      floating,    none,      0) \
  X(IR_OP_HARDSIGMOID,        "hardsigmoid",       1, 1,      1, 1,      floating,    none,      IR_A_ALPHA) \
  X(IR_OP_HARDSWISH,          "hardswish",         1, 1,      1, 1,      floating,    none,      0) \
  X(IR_OP_SOFTMAX,            "softmax",           1, 1,      1, 1,      softmax,     none,      IR_A_AXIS) \
  X(IR_OP_IDENTITY,           "identity",          1, 1,      1, 1,      identity,    copy,      0) \
  X(IR_OP_RESHAPE,            "reshape",           1, 1,      1, 1,      reshape,     copy,      IR_A_DIMS) \
  X(IR_OP_TRANSPOSE,          "transpose",         1, 1,      1, 1,      transpose,   transpose, IR_A_PERM) \
  X(IR_OP_CONCAT,             "concat",            1, IR_MANY, 1, 1,     concat,      concat,    IR_A_AXIS) \
  X(IR_OP_SPLIT,              "split",             1, 1,      1, IR_MANY, split,      split,     IR_A_AXIS | IR_A_SIZES) \
  X(IR_OP_SLICE,              "slice",             1, 1,      1, 1,      slice,       slice,     IR_A_SLICE) \
  X(IR_OP_PAD,                "pad",               1, 1,      1, 1,      pad,         none,      IR_A_PAD) \
  X(IR_OP_SHAPE,              "shape",             1, 1,      1, 1,      shape,       shape,     IR_A_RANGE) \
  X(IR_OP_GATHER,             "gather",            2, 2,      1, 1,      gather,      gather,    IR_A_AXIS) \
  X(IR_OP_CAST,               "cast",              1, 1,      1, 1,      cast,        cast,      IR_A_TO) \
  X(IR_OP_CONSTANT_OF_SHAPE,  "constant_of_shape", 0, 0,      1, 1,      fill,        fill,      IR_A_DIMS | IR_A_VALUE) \
  X(IR_OP_RESIZE,             "resize",            1, 1,      1, 1,      resize,      none,      IR_A_DIMS | IR_A_RESIZE) \
  /* elementwise unary */ \
  X(IR_OP_EXP,                "exp",               1, 1,      1, 1,      floating,    none,      0) \
  X(IR_OP_LOG,                "log",               1, 1,      1, 1,      floating,    none,      0) \
  X(IR_OP_SQRT,               "sqrt",              1, 1,      1, 1,      floating,    unary,     0) \
  X(IR_OP_RSQRT,              "rsqrt",             1, 1,      1, 1,      floating,    none,      0) \
  X(IR_OP_RECIPROCAL,         "reciprocal",        1, 1,      1, 1,      floating,    unary,     0) \
  X(IR_OP_ERF,                "erf",               1, 1,      1, 1,      floating,    none,      0) \
  X(IR_OP_NEG,                "neg",               1, 1,      1, 1,      numeric,     unary,     0) \
  X(IR_OP_ABS,                "abs",               1, 1,      1, 1,      numeric,     unary,     0) \
  X(IR_OP_GELU,               "gelu",              1, 1,      1, 1,      floating,    none,      IR_A_GELU) \
  X(IR_OP_LEAKY_RELU,         "leaky_relu",        1, 1,      1, 1,      floating,    none,      IR_A_SLOPE) \
  X(IR_OP_NOT,                "not",               1, 1,      1, 1,      boolean,     unary,     0) \
  /* elementwise binary, numpy broadcasting */ \
  X(IR_OP_POW,                "pow",               2, 2,      1, 1,      broadcast,   none,      0) \
  X(IR_OP_MAX,                "max",               2, 2,      1, 1,      broadcast,   arith,     0) \
  X(IR_OP_MIN,                "min",               2, 2,      1, 1,      broadcast,   arith,     0) \
  X(IR_OP_PRELU,              "prelu",             2, 2,      1, 1,      prelu,       none,      0) \
  X(IR_OP_AND,                "and",               2, 2,      1, 1,      logical,     compare,   0) \
  X(IR_OP_OR,                 "or",                2, 2,      1, 1,      logical,     compare,   0) \
  X(IR_OP_XOR,                "xor",               2, 2,      1, 1,      logical,     compare,   0) \
  X(IR_OP_EQUAL,              "equal",             2, 2,      1, 1,      compare,     compare,   0) \
  X(IR_OP_NOT_EQUAL,          "not_equal",         2, 2,      1, 1,      compare,     compare,   0) \
  X(IR_OP_LESS,               "less",              2, 2,      1, 1,      compare,     compare,   0) \
  X(IR_OP_LESS_EQUAL,         "less_equal",        2, 2,      1, 1,      compare,     compare,   0) \
  X(IR_OP_GREATER,            "greater",           2, 2,      1, 1,      compare,     compare,   0) \
  X(IR_OP_GREATER_EQUAL,      "greater_equal",     2, 2,      1, 1,      compare,     compare,   0) \
  X(IR_OP_WHERE,              "where",             3, 3,      1, 1,      where,       where,     0) \
  /* reductions and normalisations */ \
  X(IR_OP_REDUCE_SUM,         "reduce_sum",        1, 1,      1, 1,      reduce,      reduce,    IR_A_REDUCE) \
  X(IR_OP_REDUCE_MEAN,        "reduce_mean",       1, 1,      1, 1,      reduce,      none,      IR_A_REDUCE) \
  X(IR_OP_REDUCE_MAX,         "reduce_max",        1, 1,      1, 1,      reduce,      reduce,    IR_A_REDUCE) \
  X(IR_OP_REDUCE_MIN,         "reduce_min",        1, 1,      1, 1,      reduce,      reduce,    IR_A_REDUCE) \
  X(IR_OP_REDUCE_PROD,        "reduce_prod",       1, 1,      1, 1,      reduce,      reduce,    IR_A_REDUCE) \
  X(IR_OP_LAYERNORM,          "layernorm",         2, 3,      1, 3,      layernorm,   none,      IR_A_AXIS | IR_A_EPS) \
  X(IR_OP_LOG_SOFTMAX,        "log_softmax",       1, 1,      1, 1,      softmax,     none,      IR_A_AXIS) \
  X(IR_OP_REDUCE_WINDOW,      "reduce_window",     1, 1,      1, 1,      reduce_window, none,    IR_A_RWINDOW) \
  /* data movement */ \
  X(IR_OP_EXPAND,             "expand",            1, 1,      1, 1,      expand,      expand,    IR_A_DIMS) \
  X(IR_OP_TILE,               "tile",              1, 1,      1, 1,      tile,        tile,      IR_A_REPEATS) \
  /* convolutions and recurrences */ \
  X(IR_OP_CONV_TRANSPOSE,     "conv_transpose",    2, 3,      1, 1,      conv_transpose, none,   IR_A_WINDOW | IR_A_GROUP | IR_A_OUTPAD) \
  X(IR_OP_LSTM,               "lstm",              7, 8,      3, 3,      lstm,        none,      IR_A_RNN) \
  X(IR_OP_GRU,                "gru",               5, 6,      2, 2,      gru,         none,      IR_A_RNN) \
  X(IR_OP_RNN,                "rnn",               5, 6,      2, 2,      simple_rnn,  none,      IR_A_RNN) \
  /* int8 */ \
  X(IR_OP_QUANTIZE_LINEAR,    "quantize_linear",   3, 3,      1, 1,      quantize,    none,      IR_A_AXIS) \
  X(IR_OP_DEQUANTIZE_LINEAR,  "dequantize_linear", 3, 3,      1, 1,      dequantize,  none,      IR_A_AXIS) \
  X(IR_OP_QLINEAR_CONV,       "qlinear_conv",      8, 9,      1, 1,      qlinear_conv, none,     IR_A_WINDOW | IR_A_GROUP | IR_A_LAYOUT) \
  X(IR_OP_QLINEAR_MATMUL,     "qlinear_matmul",    8, 8,      1, 1,      qlinear_matmul, none,   0) \
  X(IR_OP_MATMUL_INTEGER,     "matmul_integer",    4, 4,      1, 1,      matmul_integer, none,   0) \
  X(IR_OP_CONV_INTEGER,       "conv_integer",      4, 4,      1, 1,      conv_integer, none,     IR_A_WINDOW | IR_A_GROUP | IR_A_LAYOUT)

typedef enum {
#define X(e, name, in, inmax, out, outmax, rule, fold, attrs) e,
  IR_OPS(X)
#undef X
  IR_OP_COUNT
} ir_op;

typedef struct {
  const char *name;
  int min_in, max_in, min_out, max_out;
  unsigned attrs; // IR_A_* mask
} ir_op_info;
extern const ir_op_info ir_ops[IR_OP_COUNT];

typedef enum { IR_PAD_CONSTANT, IR_PAD_REFLECT, IR_PAD_EDGE, IR_PAD_WRAP } ir_pad_mode;
typedef enum { IR_RESIZE_NEAREST, IR_RESIZE_LINEAR, IR_RESIZE_CUBIC } ir_resize_mode;
typedef enum {
  IR_COORD_HALF_PIXEL, IR_COORD_HALF_PIXEL_SYMMETRIC, IR_COORD_PYTORCH_HALF_PIXEL,
  IR_COORD_ALIGN_CORNERS, IR_COORD_ASYMMETRIC, IR_COORD_TF_HALF_PIXEL_FOR_NN, IR_COORD_TF_CROP_AND_RESIZE,
} ir_coord_mode;
typedef enum {
  IR_NEAREST_ROUND_PREFER_FLOOR, IR_NEAREST_ROUND_PREFER_CEIL, IR_NEAREST_FLOOR, IR_NEAREST_CEIL,
} ir_nearest_mode;
typedef enum { IR_RNN_FORWARD, IR_RNN_REVERSE, IR_RNN_BIDIRECTIONAL } ir_rnn_dir;
// lstm, gru, rnn activation functions (ONNX's list). 0 is each position's
// default (ir_rnn_default_act): sigmoid for f, tanh for g and h; tanh for rnn.
typedef enum {
  IR_RNN_ACT_DEFAULT, IR_RNN_SIGMOID, IR_RNN_TANH, IR_RNN_RELU, IR_RNN_AFFINE, IR_RNN_LEAKY_RELU,
  IR_RNN_THRESHOLDED_RELU, IR_RNN_SCALED_TANH, IR_RNN_HARD_SIGMOID, IR_RNN_ELU, IR_RNN_SOFTSIGN, IR_RNN_SOFTPLUS,
  IR_RNN_ACT_COUNT
} ir_rnn_act;
typedef enum { IR_RK_SUM, IR_RK_MAX, IR_RK_MIN, IR_RK_PROD } ir_reduce_kind;
extern const char *const ir_pad_mode_names[4];
extern const char *const ir_rnn_dir_names[3];
extern const char *const ir_rnn_act_names[IR_RNN_ACT_COUNT]; // "default", "sigmoid", "tanh", ... (ONNX's, lower case)
// The activation at position pos (0 f, 1 g, 2 h) of an lstm, gru or rnn without one.
ir_rnn_act ir_rnn_default_act(ir_op op, int pos);
// How many activations one direction of an lstm (3), gru (2) or rnn (1) has.
int ir_rnn_nacts(ir_op op);
extern const char *const ir_reduce_kind_names[4];
extern const char *const ir_resize_mode_names[3];
extern const char *const ir_coord_mode_names[7];
extern const char *const ir_nearest_mode_names[4];

// Attributes, grouped by the ops that read them. Everything a frontend gives
// as an attribute or as a constant input ends up here, normalised: axes are
// non-negative, auto_pad is resolved into pads, reshape targets have no 0 or -1.
typedef struct {
  // conv, conv_transpose, maxpool, avgpool, qlinear_conv, conv_integer: one
  // entry per spatial dim (rank - 2 of them); pads holds the begin of each
  // spatial dim, then the end of each. reduce_window: one entry per dim of
  // the input (every dim, not only spatial ones), pads likewise.
  int64_t kernel[IR_MAX_DIMS], stride[IR_MAX_DIMS], dilation[IR_MAX_DIMS];
  int64_t pads[2 * IR_MAX_DIMS]; // pad: begin of each dim, then end of each (may be < 0)
  // pad: elements inserted between each two neighbours of dim d (HLO's
  // interior padding, >= 0; 0 for ONNX). Constant mode only.
  int64_t interior[IR_MAX_DIMS];
  int64_t out_pad[IR_MAX_DIMS];  // conv_transpose: output_padding, added at the end of each spatial dim
  ir_reduce_kind reduce_kind;    // reduce_window: what the window computes
  int64_t group;                 // conv
  bool ceil_mode;                // pools: windows that start in the end padding are dropped
  bool count_include_pad;        // avgpool
  // gemm: Y = alpha * op(A) @ op(B) + beta * C; hardsigmoid: max(0, min(1, alpha*x + beta));
  // leaky_relu: x < 0 ? alpha * x : x
  bool trans_a, trans_b;
  float alpha, beta;
  float epsilon; // batchnorm
  double lo, hi; // clip bounds (-inf, +inf when absent)
  // pad
  ir_pad_mode pad_mode;
  double pad_value;
  // softmax, log_softmax, concat, split, gather, layernorm (first normalised
  // dim), quantize/dequantize_linear (axis of a per-axis scale):
  // 0 <= axis < rank
  int axis;
  // reduce_*: the dims reduced, increasing, distinct (naxes 0: none, the
  // op is a copy); keepdims keeps them as dims of 1.
  int axes[IR_MAX_DIMS], naxes;
  bool keepdims;
  bool approx_tanh;                // gelu: the tanh approximation instead of erf
  int64_t repeats[IR_MAX_DIMS];    // tile: one per dim, >= 0
  // lstm, gru, rnn (ONNX semantics, layout 0: X is [seq, batch, input])
  ir_rnn_dir rnn_dir;
  int64_t hidden;                  // hidden_size
  float rnn_clip;                  // cell clip; 0: none
  bool input_forget;               // lstm: couple input and forget gates (f = 1 - i)
  bool linear_before_reset;        // gru
  // Activations f(, g, h) of the forward (or only) direction at 0..2, of the
  // reverse one of a bidirectional node at 3..5; each with its alpha, beta.
  ir_rnn_act rnn_act[6];
  float rnn_alpha[6], rnn_beta[6];
  int perm[IR_MAX_DIMS]; // transpose: output dim i is input dim perm[i]
  // reshape, constant_of_shape, resize: the output shape
  int ndims;
  int64_t dims[IR_MAX_DIMS];
  // slice: per dim, clamped as ONNX says (end may be -1 with a negative step);
  // shape: start[0], end[0] select the dims reported, 0 <= start <= end <= rank
  int64_t start[IR_MAX_DIMS], end[IR_MAX_DIMS], step[IR_MAX_DIMS];
  int64_t *sizes; // split: size along axis of each output (nsizes == nout), owned
  int nsizes;
  ir_dtype to; // cast
  // constant_of_shape: one element of the output dtype, little-endian
  ir_dtype value_dtype;
  uint8_t value[8];
  // resize: scales[d] = out / in as the coordinate transform uses it
  ir_resize_mode resize_mode;
  ir_coord_mode coord_mode;
  ir_nearest_mode nearest_mode;
  float cubic_a;
  bool exclude_outside;
  double scales[IR_MAX_DIMS];
  // tf_crop_and_resize: the crop per dim, normalised ([0, 1] is all of it),
  // and the value of outputs whose source falls outside the input
  float roi_start[IR_MAX_DIMS], roi_end[IR_MAX_DIMS], extrapolation;
  // conv, maxpool, avgpool, global_avgpool (IR_A_LAYOUT): channels last. The
  // data input and the output are [N, spatial..., C] instead of [N, C,
  // spatial...]; conv weights keep their ONNX shape [M, C/group, k...].
  bool nhwc;
  // conv, gemm, matmul (IR_A_EPILOGUE): out = act(product + bias + residual).
  // With residual set, the last input is the residual, of the output's type.
  // Clip's bounds are lo, hi. Frontends leave act NONE and residual false.
  // matmul: the product is first multiplied (pscale_div: divided) by pscale
  // when pscale_on, as a scalar Mul/Div would (attention's 1/sqrt(d)).
  ir_act act;
  bool residual;
  bool pscale_on, pscale_div;
  float pscale;
  // conv, matmul: 0, or the scale of the int8 input after post-training
  // quantisation (cc_quantize; docs/compiler.md, "Quantisation"): the MXU
  // then multiplies int8 input and weights into int32.
  float qscale;
  int qzp; // its zero point: 0, or -128 when calibration saw no negative input
} ir_attrs;

// ---------------------------------------------------------------- ir.c: graphs

typedef struct {
  ir_node *node;
  int slot; // node->in[slot] is the value
} ir_use;

struct ir_value {
  char *name;        // unique in the graph; imported values keep the model's name
  ir_type ty;
  void *data;        // constants: ir_nbytes() bytes, little-endian, owned; else NULL
  ir_node *producer; // NULL for graph inputs and constants
  int producer_slot; // producer->out[producer_slot] == this
  ir_use *uses;      // every node input that reads this value
  int nuses, cap_uses;
  int id;            // index in graph->values
  bool is_input, is_output;
};

struct ir_node {
  ir_op op;
  char *name;      // the source node's name ("" if it had none)
  int src_index;   // position of the source node in the model; -1 if made by a pass
  ir_value **in;
  int nin;
  ir_value **out;
  int nout;
  ir_attrs a;
  int id;          // index in graph->nodes
};

struct ir_graph {
  char *name;
  char *source;          // where it came from ("model.onnx"), for messages
  int opset;             // ONNX default-domain opset, 0 if not from ONNX
  ir_value **values;     // every value, inputs and constants included
  int nvalues, cap_values;
  ir_node **nodes;       // topological order
  int nnodes, cap_nodes;
  ir_value **inputs, **outputs;
  int ninputs, noutputs, cap_inputs, cap_outputs;
  char **notes;          // decisions made for the user (a dynamic dim set to 1, ...)
  int nnotes;
  ir_value **index;      // open-addressing hash of values by name
  int index_cap;
};

ir_graph *ir_graph_new(const char *name);
void ir_graph_free(ir_graph *g);
// Values. A NULL or already-taken name gets a fresh one derived from it
// ("name_1", ...). ir_add_const takes ownership of data (malloc'd; NULL
// gives zeros).
ir_value *ir_add_input(ir_graph *g, const char *name, const ir_type *ty);
ir_value *ir_add_const(ir_graph *g, const char *name, const ir_type *ty, void *data);
void ir_add_output(ir_graph *g, ir_value *v);
ir_value *ir_find(const ir_graph *g, const char *name);
// A node appended at the end; outputs are new values of type IR_DT_UNDEF
// until ir_infer_node sets them. out_names may be NULL (fresh names).
ir_node *ir_add_node(ir_graph *g, ir_op op, const char *name, ir_value *const *in, int nin,
                     int nout, const char *const *out_names);
void ir_set_input(ir_node *n, int slot, ir_value *v);
// Every node input reading old reads new instead (graph outputs are untouched).
void ir_replace_uses(ir_value *old, ir_value *new_value);
// Unlinks and frees a node; its outputs stay, without a producer, and must be
// given one (made constants) or be unused (ir_prune removes them).
void ir_remove_node(ir_graph *g, ir_node *n);
// Removes nodes none of whose outputs is used or a graph output, then values
// that nothing defines or reads. Returns how many nodes went.
int ir_prune(ir_graph *g);
// Restores topological order after edits; -1 if there is a cycle.
int ir_toposort(ir_graph *g);
void ir_note(ir_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Formats a message into err (if any) and returns -1: `return ir_fail(...)`.
int ir_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// "node 3 'Conv_0' (conv)"; returns buf.
char *ir_node_where(const ir_node *n, char *buf, size_t len);

// Constant elements as int64 or double, whatever the dtype (i: flat index).
int64_t ir_get_int(const void *data, ir_dtype dt, int64_t i);
double ir_get_float(const void *data, ir_dtype dt, int64_t i);
void ir_set_int(void *data, ir_dtype dt, int64_t i, int64_t v);
void ir_set_float(void *data, ir_dtype dt, int64_t i, double v); // ints: saturate, NaN -> 0

// Shape overrides for graph inputs (frontends take a list of these).
typedef struct {
  char name[256];
  int rank;
  int64_t dims[IR_MAX_DIMS];
} ir_input_shape;
// Parses "NAME=D0,D1,..." or "NAME=D0xD1x..." (the last '=' separates, so
// names may hold ':'; "NAME=" is a scalar). Returns 0 or -1 with err set.
int ir_parse_input_shape(const char *spec, ir_input_shape *out, char *err, size_t errlen);

// ---------------------------------------------------------------- infer.c
//
// Shape inference: output types from input types and attributes. Checks
// everything the op's semantics need (ranks, matching dims, attribute
// ranges), so a node that infers is well formed.

// Types of n's outputs into out[n->nout]. The message (on -1) does not name
// the node; callers add their own context.
int ir_infer(const ir_node *n, ir_type *out, char *err, size_t errlen);
// Same, stored into the outputs; the message names the node.
int ir_infer_node(ir_node *n, char *err, size_t errlen);
int ir_infer_graph(ir_graph *g, char *err, size_t errlen);
// Numpy broadcasting of two shapes; -1 if they do not broadcast.
int ir_broadcast(const ir_type *a, const ir_type *b, ir_type *out);
// Output length of a sliding window (conv, pools); < 1 if none fits.
int64_t ir_window_out(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                      int64_t pad_begin, int64_t pad_end, bool ceil_mode);

// ---------------------------------------------------------------- verify.c
//
// The invariants of docs/ir.md, checked in full: run it after every pass.
// stage names the pass in the message ("after fold: ..."). Returns 0 or -1.
int ir_verify(const ir_graph *g, const char *stage, char *err, size_t errlen);

// ---------------------------------------------------------------- print.c
//
// The textual dump (`systole compile --dump-ir`), format in docs/ir.md.
void ir_print(const ir_graph *g, FILE *out);

// ---------------------------------------------------------------- fold.c
//
// The constant evaluator: data movement (reshape, transpose, concat, split,
// slice, gather), shape, cast, constant_of_shape, and add/sub/mul/div on
// integer and f32/f64 constants, so shape arithmetic becomes constants.

// Can n be evaluated now (inputs constant, op foldable, result small enough)?
bool ir_can_fold(const ir_node *n);
// Evaluates n: its outputs become constants and n is removed. Returns 1 if it
// did, 0 if n cannot be folded, -1 on an error in the constant expression
// (index out of range, division by zero) with err naming the node.
int ir_fold_node(ir_graph *g, ir_node *n, char *err, size_t errlen);
// Folds every foldable node, in order; returns how many, or -1.
int ir_fold_graph(ir_graph *g, char *err, size_t errlen);

// ---------------------------------------------------------------- frontend/onnx.c
//
// The ONNX importer (opsets 7 to 21, older ones op by op; the ops of
// docs/ir.md section 7). overrides gives shapes of graph inputs with symbolic
// dims (may be NULL). The result has inferred shapes, shape arithmetic
// folded, dead values pruned and has passed ir_verify; notes say which
// defaults were taken. On error returns NULL with a message naming the file,
// and the node (index, name, op, opset) if any.
ir_graph *onnx_import(const char *path, const ir_input_shape *overrides, int noverrides,
                      char *err, size_t errlen);
// Same, from a serialized ModelProto in memory; name is used in messages.
ir_graph *onnx_import_buffer(const void *buf, size_t len, const char *name,
                             const ir_input_shape *overrides, int noverrides, char *err,
                             size_t errlen);
// Is this default-domain op type one the importer handles?
bool onnx_op_supported(const char *op_type);
// IR dtype of an ONNX TensorProto.DataType; IR_DT_UNDEF if unsupported.
ir_dtype onnx_dtype(int elem_type);

#endif
