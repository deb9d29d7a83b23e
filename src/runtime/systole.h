// Systole's public C API, in the spirit of PJRT: a client for a chip, host
// tensors, executables compiled from models, and execution with a profile.
// The CLI (tools/systole.c) is a thin layer over it. docs/runtime.md is the
// specification. Every name starts with sy_ / SY_.
//
// Errors: functions return 0 (or a non-NULL object) on success; on failure -1
// (or NULL) and the client's last error holds a message naming the file, the
// input or the node (sy_last_error). Nothing here exits or aborts on bad input.
#ifndef SYSTOLE_H
#define SYSTOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SY_MAX_RANK 8
#define SY_MAX_NAME 255 // bytes of a tensor name (UTF-8)
#define SY_ERR_LEN 1024

typedef struct sy_client sy_client;         // a simulated chip
typedef struct sy_executable sy_executable; // a compiled model for that chip

// Element types, numbered as isa_io_dtype (src/isa/isa.h).
typedef enum { SY_F32, SY_BF16, SY_I32, SY_I8, SY_I64, SY_U8, SY_BOOL, SY_I16, SY_U16, SY_U32, SY_U64, SY_DTYPES } sy_dtype;
const char *sy_dtype_name(sy_dtype t); // "f32", "bf16", ...; "?" if out of range
size_t sy_dtype_size(sy_dtype t);

typedef enum { SY_PRECISION_DEFAULT, SY_PRECISION_HIGHEST } sy_precision;
const char *sy_precision_name(sy_precision p); // "default", "highest"

// A host tensor: row-major, dense. data is malloc'd when the library fills it
// (sy_tensor_alloc, sy_tensor_read_npy, sy_execute's outputs); sy_tensor_free
// releases it. Callers may point data at their own memory for inputs.
typedef struct {
  char name[SY_MAX_NAME + 1];
  sy_dtype dtype;
  int rank;                  // 0 (a scalar) .. SY_MAX_RANK
  int64_t dims[SY_MAX_RANK]; // each >= 0 (0: an empty tensor, no elements)
  void *data;
} sy_tensor;
int64_t sy_tensor_elements(const sy_tensor *t); // product of dims (1 for a scalar)
size_t sy_tensor_bytes(const sy_tensor *t);
// "f32[1,3,224,224]" into buf; returns buf.
char *sy_tensor_type_str(const sy_tensor *t, char *buf, size_t len);
// Zeroed data for t's dtype and shape. Returns 0, or -1 if out of memory.
int sy_tensor_alloc(sy_tensor *t);
void sy_tensor_free(sy_tensor *t); // frees data and sets it to NULL
// Deterministic pseudo-random contents (what `systole run` gives an input
// without --input; docs/runtime.md): xorshift64* seeded by seed, floats
// uniform in [-1, 1), integers and booleans 0 or 1. Allocates data if it is NULL.
int sy_tensor_fill_random(sy_tensor *t, uint64_t seed);

// chip: a name from configs/ ("tpu-v4") or a path to an .ini; NULL: tpu-v4.
// On failure returns NULL with the reason in err (may be NULL).
sy_client *sy_client_create(const char *chip, char *err, size_t errlen);
void sy_client_destroy(sy_client *c);
const char *sy_last_error(const sy_client *c);
const char *sy_client_chip_name(const sy_client *c);
double sy_client_clock_hz(const sy_client *c);

// NumPy files. sy_tensor_read_npy reads path and converts its elements to
// dtype: any numeric file for f32 and bf16 (bf16 rounds to nearest even);
// integer and bool files for integer types, each value in range. The name is
// left empty (bool: 0 or 1 only). sy_tensor_write_npy writes floats as float32
// and integers and booleans in their own type (every value exact).
int sy_tensor_read_npy(sy_client *c, const char *path, sy_dtype dtype, sy_tensor *out);
int sy_tensor_write_npy(sy_client *c, const sy_tensor *t, const char *path);

typedef struct {
  sy_precision precision;
  FILE *dump_ir;  // non-NULL: the IR after import and after every pass
  FILE *dump_asm; // non-NULL: the program as assembler text
  // Shapes for graph inputs with symbolic dims: "NAME=D0,D1,..." (may be NULL).
  const char *const *input_shapes;
  int ninput_shapes;
  // Post-training quantisation (docs/compiler.md, "Quantisation"): with
  // SY_QUANTIZE_INT8, convolutions and matmuls with constant weights run int8
  // on the MXU (weights per output channel, inputs per tensor, calibrated by
  // running the fp32 model on calibrate_dir's .npy inputs; NULL: on the
  // deterministic random inputs `systole run` uses). Required for a chip whose
  // MXU is int8 only (tpu-v1).
  int quantize; // sy_quantize
  const char *calibrate_dir;
} sy_compile_options;
typedef enum { SY_QUANTIZE_NONE, SY_QUANTIZE_INT8 } sy_quantize;

// Compiles an ONNX model, or loads a compiled executable (.stx, recognised by
// its ELF header). opt may be NULL (defaults). An .stx built for another chip
// is an error naming both chips.
sy_executable *sy_compile_file(sy_client *c, const char *path, const sy_compile_options *opt);
int sy_executable_save(sy_client *c, const sy_executable *x, const char *path);
void sy_executable_destroy(sy_executable *x);

// The I/O signature: names, dtypes and shapes of inputs and outputs.
int sy_executable_num_inputs(const sy_executable *x);
int sy_executable_num_outputs(const sy_executable *x);
// Fills name, dtype, rank and dims; data is set to NULL. An index out of
// range gives an empty tensor (no name, rank 0).
void sy_executable_input(const sy_executable *x, int i, sy_tensor *out);
void sy_executable_output(const sy_executable *x, int i, sy_tensor *out);
// Index of the input of that name, or -1.
int sy_executable_find_input(const sy_executable *x, const char *name);
// What the executable was built with: seconds the compile (or load) took, and
// the precision; -1 when unknown (an .stx does not record it).
double sy_executable_compile_seconds(const sy_executable *x);
int sy_executable_precision(const sy_executable *x);
// Instructions and layers of the program.
size_t sy_executable_num_instructions(const sy_executable *x);
int sy_executable_num_layers(const sy_executable *x);

// Per-layer figures of a run (layers of docs/isa.md section 8).
typedef struct {
  char name[128];
  char op[32];
  uint64_t cycles;        // end - start
  uint64_t start, end;    // first start and last completion of its instructions; 0 if none ran
  uint64_t macs;          // MACs its passes performed (highest precision: every bf16 pass)
  uint64_t model_macs;    // MACs of the operation as the compiler counts them
  double mxu_utilization; // macs over the MXUs' peak during [start, end)
  uint64_t hbm_bytes;     // HBM bytes its DMAs read and wrote
} sy_layer_profile;

typedef struct {
  uint64_t cycles;
  double seconds; // cycles at the chip's clock
  uint64_t macs;
  double mxu_utilization; // over the whole run
  uint64_t hbm_read, hbm_write;
  double energy_j;
  // The TPU v1 paper's Table 3 (docs/timing.md): MXU cycles (cycles x MXUs)
  // split into array active, weight stall, weight shift and non-matrix.
  uint64_t mxu_cycles, mxu_active, weight_stall, weight_shift, non_matrix;
  double useful_mac_fraction, unused_mac_fraction; // of the MXUs' peak
  double tops;                                     // 2 x MACs per second / 10^12
  // Table 3's figures above are over the cycles between the host transfers
  // of graph inputs before the first layer and outputs after the last
  // (TPU v1: Read_Host_Memory, Write_Host_Memory), these many cycles.
  uint64_t host_in_cycles, host_out_cycles;
  sy_layer_profile *layers; // in program order
  int nlayers;
  double host_seconds; // wall time of the simulation itself
} sy_profile;
void sy_profile_free(sy_profile *p);

typedef struct {
  bool timing_only;       // cycles and statistics without values (outputs are zeros)
  const char *trace_path; // non-NULL: a Chrome trace-event timeline, with a track of layers
  uint64_t max_cycles;    // 0: the simulator's default budget
} sy_execute_options;

// Runs the executable once. inputs must match the signature in order (names
// are not checked; shapes and dtypes are, with an error naming the input).
// outputs receives num_outputs tensors in signature order, allocated by the
// library (sy_tensor_free each). profile may be NULL. opt may be NULL.
int sy_execute(sy_client *c, const sy_executable *x, const sy_tensor *inputs, int ninputs,
               sy_tensor *outputs, sy_profile *profile, const sy_execute_options *opt);

#endif
