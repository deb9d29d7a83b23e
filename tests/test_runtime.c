// The public API (src/runtime/systole.h, docs/runtime.md) on hand-assembled
// executables: loading, the signature, execution with input checks, the
// per-layer profile against the simulator's own figures, the random input
// generator as documented, .npy conversions, and errors as messages.
// Compiling ONNX models is tested by tests/cli_run.sh.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isa/isa.h"
#include "runtime/npy.h"
#include "runtime/systole.h"
#include "sim/numerics.h"
#include "sim/sim.h"
#include "testlib.h"

typedef unsigned long long ull;
static char dir[512];

static const char *tmp(const char *name) {
  static char bufs[4][600];
  static int next;
  char *b = bufs[next++ & 3];
  snprintf(b, 600, "%s/%s", dir, name);
  return b;
}

// y = relu(x), x and y f32[2,8] in HBM, on tiny; three layers.
static const char relu_src[] =
    ".chip \"tiny\"\n"
    ".input \"x\", f32, [2, 8], hbm:0x1000\n"
    ".output \"out/y\", f32, [2, 8], hbm:0x2000\n"
    ".smem\ndX: .dmadesc 64, 1, 0, 0\nv: .vdesc 2, 8, 32, 32\n.text\n"
    "li r1, 0\nli r2, 0x1000\nli r3, dX\n"
    "dma local:r1, hbm:r2, r3, signal=s1\n"                  // 0..3: load
    "li r5, v\nv.relu.f32 r1, r1, r5, wait=s1, signal=s2\n" // 4..5: relu
    "li r2, 0x2000\ndma hbm:r2, local:r1, r3, wait=s2, signal=s3\nswait s3\n" // 6..8: store
    "halt\n";
static const isa_layer relu_layers[3] = {
    {"load x", "dma", 0, 4, 0}, {"relu", "relu", 4, 6, 0}, {"store y", "dma", 6, 9, 0}};

// A matmul layer: x bf16[4,8] @ w bf16[8,8] on tiny's 8x8 MXU, f32 result.
static const char mm_src[] =
    ".chip \"tiny\"\n"
    ".input \"x\", bf16, [4, 8], hbm:0x1000\n"
    ".input \"w\", bf16, [8, 8], hbm:0x1100\n"
    ".output \"y\", f32, [4, 8], hbm:0x2000\n"
    ".smem\ndx: .dmadesc 64, 1, 0, 0\ndw: .dmadesc 128, 1, 0, 0\ndy: .dmadesc 32, 4, 32, 32\n.text\n"
    "li r1, 0\nli r2, 0x1000\nli r3, dx\ndma local:r1, hbm:r2, r3, signal=s1\n"           // 0..3
    "li r4, 0x100\nli r5, 0x1100\nli r6, dw\ndma local:r4, hbm:r5, r6, q=1, signal=s1\n" // 4..7
    "swait s1, 2\n"                                                                      // 8
    "li r7, 16\nli r8, 8\nmxu.ldw.bf16 r4, r7, r8, r8\n"                                 // 9..11
    "li r10, 0x100000000\nli r11, 4\nmxu.mm.bf16 r10, r1, r11, r7, signal=s2\n"          // 12..15
    "li r12, 0x2000\nli r13, dy\ndma hbm:r12, local:r10, r13, wait=s2, signal=s3\nswait s3\n" // 16..19
    "halt\n";
static const isa_layer mm_layers[2] = {{"load", "dma", 0, 9, 0}, {"matmul", "matmul", 9, 20, 256}};

static bool write_stx(const char *src, const isa_layer *layers, size_t n, const char *path) {
  isa_program p;
  char err[ISA_ERR_LEN];
  if (isa_assemble(src, "t.s", NULL, &p, err, sizeof err)) {
    CHECK(0, "assemble: %s", err);
    return false;
  }
  p.layers = malloc(n * sizeof *layers);
  memcpy(p.layers, layers, n * sizeof *layers);
  p.nlayers = n;
  int rc = isa_program_write(&p, path, err, sizeof err);
  CHECK(rc == 0, "write: %s", err);
  isa_program_free(&p);
  return rc == 0;
}

static void test_clients(void) {
  char err[SY_ERR_LEN];
  sy_client *c = sy_client_create("nochip", err, sizeof err);
  CHECK(!c && strstr(err, "nochip"), "bad chip: %s", err);
  c = sy_client_create(NULL, err, sizeof err);
  CHECK(c && !strcmp(sy_client_chip_name(c), "tpu-v4"), "default chip: %s", c ? sy_client_chip_name(c) : err);
  sy_client_destroy(c);
  c = sy_client_create("tiny", NULL, 0);
  CHECK(c && sy_client_clock_hz(c) == 1e9, "tiny");
  sy_client_destroy(c);
}

static void test_relu(void) {
  if (!write_stx(relu_src, relu_layers, 3, tmp("relu.stx"))) return;
  sy_client *c = sy_client_create("tiny", NULL, 0), *v4 = sy_client_create("tpu-v4", NULL, 0);
  sy_executable *x = sy_compile_file(c, tmp("relu.stx"), NULL);
  CHECK(x, "load: %s", sy_last_error(c));
  if (!x) goto out;
  // An .stx for another chip names both.
  CHECK(!sy_compile_file(v4, tmp("relu.stx"), NULL) && strstr(sy_last_error(v4), "was compiled for tiny, not tpu-v4"),
        "chip: %s", sy_last_error(v4));
  // The signature.
  CHECK(sy_executable_num_inputs(x) == 1 && sy_executable_num_outputs(x) == 1, "signature");
  CHECK(sy_executable_num_layers(x) == 3 && sy_executable_num_instructions(x) == 10, "layers, instructions");
  CHECK(sy_executable_precision(x) == -1 && sy_executable_compile_seconds(x) >= 0, "precision unknown");
  sy_tensor in, out[1];
  sy_executable_output(x, 0, &out[0]);
  CHECK(!strcmp(out[0].name, "out/y") && out[0].dtype == SY_F32 && out[0].rank == 2 && out[0].dims[1] == 8 &&
            !out[0].data, "output spec");
  CHECK(sy_executable_find_input(x, "x") == 0 && sy_executable_find_input(x, "y") == -1, "find_input");
  sy_executable_input(x, 0, &in);
  char type[64];
  CHECK(!strcmp(sy_tensor_type_str(&in, type, sizeof type), "f32[2,8]") && sy_tensor_bytes(&in) == 64, "%s", type);
  CHECK(sy_tensor_alloc(&in) == 0, "alloc");
  for (int i = 0; i < 16; i++) ((float *)in.data)[i] = (float)(i - 8) * 0.5f;
  // A run: relu of the input, and the profile.
  sy_profile p;
  sy_execute_options eo = {.trace_path = tmp("relu.trace.json")};
  int rc = sy_execute(c, x, &in, 1, out, &p, &eo);
  CHECK(rc == 0, "execute: %s", sy_last_error(c));
  if (rc == 0) {
    CHECK(!strcmp(out[0].name, "out/y") && out[0].data, "output");
    for (int i = 0; i < 16; i++) {
      float want = i < 8 ? 0.0f : (float)(i - 8) * 0.5f;
      CHECK(((float *)out[0].data)[i] == want, "y[%d] = %g, want %g", i, ((float *)out[0].data)[i], want);
    }
    CHECK(p.cycles > 0 && p.seconds == (double)p.cycles / 1e9 && p.macs == 0, "totals: %llu cycles", (ull)p.cycles);
    CHECK(p.hbm_read == 64 && p.hbm_write == 64 && p.energy_j > 0 && p.host_seconds >= 0, "bytes, energy");
    CHECK(p.nlayers == 3 && !strcmp(p.layers[2].name, "store y") && !strcmp(p.layers[1].op, "relu"), "layers");
    if (p.nlayers == 3) {
      CHECK(p.layers[0].hbm_bytes == 64 && p.layers[1].hbm_bytes == 0 && p.layers[2].hbm_bytes == 64, "layer bytes");
      CHECK(p.layers[2].end + 1 == p.cycles, "the store ends the run, then halt: %llu of %llu", (ull)p.layers[2].end, (ull)p.cycles);
      // The vector op waits for the load: relu starts after it ends, store after relu.
      CHECK(p.layers[1].start >= p.layers[0].end && p.layers[2].start >= p.layers[1].end, "layers in order");
      for (int i = 0; i < 3; i++)
        CHECK(p.layers[i].cycles == p.layers[i].end - p.layers[i].start && p.layers[i].cycles > 0, "layer %d", i);
    }
    sy_profile_free(&p);
    CHECK(p.layers == NULL && p.nlayers == 0, "profile freed");
    char *trace = test_read_file(tmp("relu.trace.json"), NULL);
    CHECK(trace && strstr(trace, "\"name\": \"layers\"") && strstr(trace, "\"name\": \"store y\""), "trace with layers");
    free(trace);
  }
  sy_tensor_free(&out[0]);
  // Timing only: the same cycles, zeros out; no profile asked.
  sy_profile p2;
  eo = (sy_execute_options){.timing_only = true};
  rc = sy_execute(c, x, &in, 1, out, &p2, &eo);
  CHECK(rc == 0 && ((float *)out[0].data)[15] == 0, "timing only: %s", sy_last_error(c));
  sy_tensor_free(&out[0]);
  CHECK(sy_execute(c, x, &in, 1, out, NULL, NULL) == 0, "no profile: %s", sy_last_error(c));
  sy_tensor_free(&out[0]);
  sy_profile_free(&p2);
  // Run after run: each sees its own input and nothing of the runs before
  // (they share the executable's memory image, which no run changes).
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 16; i++) ((float *)in.data)[i] = -((float *)in.data)[i];
    rc = sy_execute(c, x, &in, 1, out, NULL, NULL);
    CHECK(rc == 0, "run %d: %s", round, sy_last_error(c));
    for (int i = 0; i < 16 && !rc; i++) {
      float v = ((float *)in.data)[i], want = v > 0 ? v : 0.0f;
      CHECK(((float *)out[0].data)[i] == want, "run %d: y[%d] = %g, want %g", round, i, ((float *)out[0].data)[i], want);
    }
    sy_tensor_free(&out[0]);
  }
  // Input checks: the message names the input and both types.
  in.dims[0] = 1, in.dims[1] = 16;
  CHECK(sy_execute(c, x, &in, 1, out, &p, NULL) == -1 &&
            !strcmp(sy_last_error(c), "input 'x': expected f32[2,8], got f32[1,16]"), "%s", sy_last_error(c));
  CHECK(out[0].data == NULL && p.layers == NULL, "nothing allocated on failure");
  in.dims[0] = 2, in.dims[1] = 8, in.dtype = SY_I32;
  CHECK(sy_execute(c, x, &in, 1, out, NULL, NULL) == -1 &&
            !strcmp(sy_last_error(c), "input 'x': expected f32[2,8], got i32[2,8]"), "%s", sy_last_error(c));
  in.dtype = SY_F32;
  CHECK(sy_execute(c, x, &in, 0, out, NULL, NULL) == -1 && !strcmp(sy_last_error(c), "the model has 1 input, 0 given"),
        "%s", sy_last_error(c));
  in.rank = 9;
  CHECK(sy_execute(c, x, &in, 1, out, NULL, NULL) == -1 && strstr(sy_last_error(c), "a tensor of a bad shape"), "%s",
        sy_last_error(c));
  in.rank = 2;
  // A trap is an error, and the trace is still written.
  eo = (sy_execute_options){.max_cycles = 5, .trace_path = tmp("trap.trace.json")};
  remove(tmp("trap.trace.json"));
  CHECK(sy_execute(c, x, &in, 1, out, &p, &eo) == -1 && strstr(sy_last_error(c), "the run stopped: trap at pc") &&
            strstr(sy_last_error(c), "cycle budget"), "%s", sy_last_error(c));
  CHECK(access(tmp("trap.trace.json"), R_OK) == 0, "trace of a trapped run");
  eo.trace_path = "/nonexistent/dir/t.json", eo.max_cycles = 0;
  CHECK(sy_execute(c, x, &in, 1, out, NULL, &eo) == -1 && strstr(sy_last_error(c), "/nonexistent/dir/t.json"), "%s",
        sy_last_error(c));
  CHECK(out[0].data == NULL, "outputs freed when the trace fails");
  sy_tensor_free(&in);
  // Saving gives the same file back.
  CHECK(sy_executable_save(c, x, tmp("copy.stx")) == 0, "save: %s", sy_last_error(c));
  size_t n1, n2;
  char *a = test_read_file(tmp("relu.stx"), &n1), *b = test_read_file(tmp("copy.stx"), &n2);
  CHECK(a && b && n1 == n2 && !memcmp(a, b, n1), "saved file identical");
  free(a), free(b);
  CHECK(sy_executable_save(c, x, "/nonexistent/dir/x.stx") == -1 && strstr(sy_last_error(c), "/nonexistent/dir/x.stx"),
        "%s", sy_last_error(c));
out:
  sy_executable_destroy(x);
  sy_client_destroy(c);
  sy_client_destroy(v4);
}

// MACs and utilisation per layer against the simulator run directly.
static void test_matmul_profile(void) {
  if (!write_stx(mm_src, mm_layers, 2, tmp("mm.stx"))) return;
  sy_client *c = sy_client_create("tiny", NULL, 0);
  sy_executable *x = sy_compile_file(c, tmp("mm.stx"), NULL);
  CHECK(x, "load: %s", sy_last_error(c));
  if (!x) {
    sy_client_destroy(c);
    return;
  }
  sy_tensor in[2], out[1];
  for (int i = 0; i < 2; i++) {
    sy_executable_input(x, i, &in[i]);
    CHECK(sy_tensor_fill_random(&in[i], (uint64_t)i) == 0, "random");
  }
  sy_profile p;
  CHECK(sy_execute(c, x, in, 2, out, &p, NULL) == 0, "execute: %s", sy_last_error(c));
  if (p.nlayers == 2) {
    const sy_layer_profile *l = &p.layers[1];
    CHECK(p.macs == 4 * 8 * 8 && l->macs == 256 && l->model_macs == 256 && p.layers[0].macs == 0, "MACs %llu",
          (ull)l->macs);
    CHECK(l->mxu_utilization == 256.0 / ((double)l->cycles * 64), "utilisation %g", l->mxu_utilization);
    CHECK(p.mxu_utilization == 256.0 / ((double)p.cycles * 64), "run utilisation");
    CHECK(l->hbm_bytes == 128 && p.layers[0].hbm_bytes == 64 + 128, "bytes");
  }
  // The values: y = x @ w in fp32 from bf16 products.
  if (out[0].data) {
    const uint16_t *xv = in[0].data, *wv = in[1].data;
    for (int r = 0; r < 4; r++)
      for (int j = 0; j < 8; j++) {
        float acc = 0;
        for (int k = 0; k < 8; k++) acc = num_mxu_fma(num_bf16_to_f32(xv[r * 8 + k]), num_bf16_to_f32(wv[k * 8 + j]), acc);
        float got = ((float *)out[0].data)[r * 8 + j];
        CHECK(fabsf(got - acc) <= 1e-6f, "y[%d][%d] = %g, want %g", r, j, got, acc);
      }
  }
  sy_profile_free(&p);
  sy_tensor_free(&out[0]);
  sy_tensor_free(&in[0]), sy_tensor_free(&in[1]);
  sy_executable_destroy(x);
  sy_client_destroy(c);
}

// The generator of docs/runtime.md section 5, written out again.
static void test_random(void) {
  sy_tensor t = {.dtype = SY_F32, .rank = 1, .dims = {1000}};
  CHECK(sy_tensor_fill_random(&t, 3) == 0, "fill");
  uint64_t s = 4 * 0x9e3779b97f4a7c15ull;
  double sum = 0;
  bool same = true, range = true;
  for (int i = 0; i < 1000; i++) {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    uint64_t r = s * 0x2545f4914f6cdd1dull;
    double want = (double)(r >> 40) / 8388608.0 - 1.0;
    float got = ((float *)t.data)[i];
    same &= (double)got == want;
    range &= got >= -1.0f && got < 1.0f;
    sum += got;
  }
  CHECK(same && range, "values as documented");
  CHECK(fabs(sum / 1000) < 0.1, "mean %g", sum / 1000);
  sy_tensor u = t;
  u.data = NULL;
  sy_tensor_fill_random(&u, 3);
  CHECK(!memcmp(t.data, u.data, 4000), "deterministic");
  sy_tensor_fill_random(&u, 4);
  CHECK(memcmp(t.data, u.data, 4000), "seeds differ");
  sy_tensor_free(&u);
  sy_tensor b = {.dtype = SY_BF16, .rank = 1, .dims = {1000}}, k = {.dtype = SY_I64, .rank = 2, .dims = {10, 100}};
  sy_tensor_fill_random(&b, 3);
  sy_tensor_fill_random(&k, 0);
  int ones = 0;
  for (int i = 0; i < 1000; i++) {
    CHECK(((uint16_t *)b.data)[i] == num_f32_to_bf16(((float *)t.data)[i]), "bf16 %d", i);
    int64_t v = ((int64_t *)k.data)[i];
    CHECK(v == 0 || v == 1, "integer %lld", (long long)v);
    ones += (int)v;
  }
  CHECK(ones > 400 && ones < 600, "%d ones", ones);
  sy_tensor_free(&t), sy_tensor_free(&b), sy_tensor_free(&k);
  sy_tensor bad = {.dtype = SY_F32, .rank = 1, .dims = {-1}};
  CHECK(sy_tensor_fill_random(&bad, 0) == -1 && !bad.data, "bad shape");
}

static void save_npy(const char *path, npy_dtype t, int rank, const int64_t *shape, const void *data) {
  npy_array a;
  char err[NPY_ERR_LEN];
  npy_alloc(&a, t, rank, shape);
  if (data) memcpy(a.data, data, (size_t)npy_count(&a) * npy_dtype_size(t));
  CHECK(npy_write(path, &a, err, sizeof err) == 0, "%s", err);
  npy_free(&a);
}

static void test_npy(void) {
  sy_client *c = sy_client_create("tiny", NULL, 0);
  int64_t shape[2] = {2, 3};
  double d[6] = {0.5, -1.25, 3, 1e10, -0.0, 1.0 / 3};
  save_npy(tmp("d.npy"), NPY_F64, 2, shape, d);
  sy_tensor t;
  CHECK(sy_tensor_read_npy(c, tmp("d.npy"), SY_F32, &t) == 0 && t.rank == 2 && t.dims[1] == 3, "%s", sy_last_error(c));
  for (int i = 0; i < 6 && t.data; i++) CHECK(((float *)t.data)[i] == (float)d[i], "f64 -> f32 %d", i);
  sy_tensor_free(&t);
  CHECK(sy_tensor_read_npy(c, tmp("d.npy"), SY_BF16, &t) == 0, "%s", sy_last_error(c));
  for (int i = 0; i < 6 && t.data; i++) CHECK(((uint16_t *)t.data)[i] == num_f32_to_bf16((float)d[i]), "bf16 %d", i);
  // bf16 out as float32, exactly.
  CHECK(sy_tensor_write_npy(c, &t, tmp("b.npy")) == 0, "%s", sy_last_error(c));
  sy_tensor_free(&t);
  npy_array a;
  char err[NPY_ERR_LEN];
  CHECK(npy_read(tmp("b.npy"), &a, err, sizeof err) == 0 && a.dtype == NPY_F32 && a.rank == 2, "%s", err);
  for (int i = 0; i < 6 && a.data; i++)
    CHECK(((float *)a.data)[i] == num_bf16_to_f32(num_f32_to_bf16((float)d[i])), "written %d", i);
  npy_free(&a);
  CHECK(sy_tensor_read_npy(c, tmp("d.npy"), SY_I64, &t) == -1 && strstr(sy_last_error(c), "holds float64") &&
            strstr(sy_last_error(c), "d.npy") && !t.data, "%s", sy_last_error(c));
  int64_t iv[6] = {0, 1, -128, 127, 255, -1};
  save_npy(tmp("i.npy"), NPY_I64, 2, shape, iv);
  CHECK(sy_tensor_read_npy(c, tmp("i.npy"), SY_I32, &t) == 0 && ((int32_t *)t.data)[2] == -128, "i64 -> i32");
  sy_tensor_free(&t);
  CHECK(sy_tensor_read_npy(c, tmp("i.npy"), SY_I8, &t) == -1 && strstr(sy_last_error(c), "element 4 does not fit i8"),
        "%s", sy_last_error(c));
  CHECK(sy_tensor_read_npy(c, tmp("i.npy"), SY_U8, &t) == -1 && strstr(sy_last_error(c), "element 2 does not fit u8"),
        "%s", sy_last_error(c));
  uint64_t big[1] = {1ull << 63};
  int64_t one = 1;
  save_npy(tmp("u.npy"), NPY_U64, 1, &one, big);
  CHECK(sy_tensor_read_npy(c, tmp("u.npy"), SY_I64, &t) == -1 && strstr(sy_last_error(c), "does not fit i64"), "%s",
        sy_last_error(c));
  // Integers where floats are wanted are refused (as ONNX Runtime does), naming both types.
  CHECK(sy_tensor_read_npy(c, tmp("u.npy"), SY_F32, &t) == -1 && strstr(sy_last_error(c), "holds uint64") &&
            strstr(sy_last_error(c), "wants f32") && !t.data,
        "%s", sy_last_error(c));
  // Integer and bool tensors are written in their own type, exactly (an
  // int32 beyond 2^24 would not survive float32).
  int32_t i32v[2] = {16777217, -2147483647 - 1};
  int64_t two = 2;
  sy_tensor it = {.dtype = SY_I32, .rank = 1, .dims = {2}, .data = i32v};
  CHECK(sy_tensor_write_npy(c, &it, tmp("w32.npy")) == 0, "%s", sy_last_error(c));
  CHECK(npy_read(tmp("w32.npy"), &a, err, sizeof err) == 0 && a.dtype == NPY_I32 && a.rank == 1 &&
            !memcmp(a.data, i32v, sizeof i32v),
        "int32 written as int32: %s", err);
  npy_free(&a);
  uint8_t bv[2] = {1, 0};
  sy_tensor bt = {.dtype = SY_BOOL, .rank = 1, .dims = {2}, .data = bv};
  CHECK(sy_tensor_write_npy(c, &bt, tmp("wb.npy")) == 0, "%s", sy_last_error(c));
  CHECK(npy_read(tmp("wb.npy"), &a, err, sizeof err) == 0 && a.dtype == NPY_BOOL && !memcmp(a.data, bv, 2),
        "bool written as bool: %s", err);
  npy_free(&a);
  // Bool inputs take bool files, and integer files holding only 0 and 1.
  CHECK(sy_tensor_read_npy(c, tmp("wb.npy"), SY_BOOL, &t) == 0 && ((uint8_t *)t.data)[0] == 1, "%s",
        sy_last_error(c));
  sy_tensor_free(&t);
  CHECK(sy_tensor_read_npy(c, tmp("w32.npy"), SY_BOOL, &t) == -1 && strstr(sy_last_error(c), "does not fit bool"),
        "%s", sy_last_error(c));
  save_npy(tmp("two.npy"), NPY_I64, 1, &two, (int64_t[]){0, 1});
  CHECK(sy_tensor_read_npy(c, tmp("two.npy"), SY_BOOL, &t) == 0 && ((uint8_t *)t.data)[1] == 1, "%s",
        sy_last_error(c));
  sy_tensor_free(&t);
  // i16, u16, u32, u64: range-checked in, written in their own type; a
  // uint64 file fills u64 whole, beyond int64 too.
  CHECK(sy_tensor_read_npy(c, tmp("i.npy"), SY_I16, &t) == 0 && ((int16_t *)t.data)[5] == -1, "%s", sy_last_error(c));
  sy_tensor_free(&t);
  CHECK(sy_tensor_read_npy(c, tmp("i.npy"), SY_U16, &t) == -1 && strstr(sy_last_error(c), "element 2 does not fit u16"),
        "%s", sy_last_error(c));
  CHECK(sy_tensor_read_npy(c, tmp("i.npy"), SY_U64, &t) == -1 && strstr(sy_last_error(c), "element 2 does not fit u64"),
        "%s", sy_last_error(c));
  save_npy(tmp("big32.npy"), NPY_I64, 1, &one, (int64_t[]){1ll << 32});
  CHECK(sy_tensor_read_npy(c, tmp("big32.npy"), SY_U32, &t) == -1 && strstr(sy_last_error(c), "does not fit u32"),
        "%s", sy_last_error(c));
  CHECK(sy_tensor_read_npy(c, tmp("u.npy"), SY_U64, &t) == 0 && ((uint64_t *)t.data)[0] == 1ull << 63, "%s",
        sy_last_error(c));
  CHECK(sy_tensor_write_npy(c, &t, tmp("wu64.npy")) == 0, "%s", sy_last_error(c));
  sy_tensor_free(&t);
  CHECK(npy_read(tmp("wu64.npy"), &a, err, sizeof err) == 0 && a.dtype == NPY_U64 && !memcmp(a.data, big, 8),
        "u64 written as uint64: %s", err);
  npy_free(&a);
  static const struct {
    sy_dtype t;
    npy_dtype as;
  } own[] = {{SY_I16, NPY_I16}, {SY_U16, NPY_U16}, {SY_U32, NPY_U32}};
  uint8_t raw[8] = {0xff, 0xff, 0x00, 0x80, 0x01, 0x02, 0x03, 0x04};
  for (size_t k = 0; k < sizeof own / sizeof *own; k++) {
    sy_tensor ot = {.dtype = own[k].t, .rank = 1, .dims = {8 / (int64_t)sy_dtype_size(own[k].t)}, .data = raw};
    CHECK(sy_tensor_write_npy(c, &ot, tmp("wo.npy")) == 0, "%s", sy_last_error(c));
    CHECK(npy_read(tmp("wo.npy"), &a, err, sizeof err) == 0 && a.dtype == own[k].as && !memcmp(a.data, raw, 8),
          "%s written in its own type: %s", sy_dtype_name(own[k].t), err);
    npy_free(&a);
    CHECK(sy_tensor_read_npy(c, tmp("wo.npy"), own[k].t, &t) == 0 && !memcmp(t.data, raw, 8), "%s read back: %s",
          sy_dtype_name(own[k].t), sy_last_error(c));
    sy_tensor_free(&t);
  }
  int64_t zero = 0;
  save_npy(tmp("e.npy"), NPY_F32, 1, &zero, NULL);
  // An empty array is an empty tensor (a model may take one), and is written back as one.
  CHECK(sy_tensor_read_npy(c, tmp("e.npy"), SY_F32, &t) == 0 && t.rank == 1 && t.dims[0] == 0 && t.data, "%s",
        sy_last_error(c));
  CHECK(sy_tensor_write_npy(c, &t, tmp("we.npy")) == 0, "%s", sy_last_error(c));
  sy_tensor_free(&t);
  CHECK(npy_read(tmp("we.npy"), &a, err, sizeof err) == 0 && a.rank == 1 && a.shape[0] == 0, "empty written: %s", err);
  npy_free(&a);
  CHECK(sy_tensor_read_npy(c, tmp("none.npy"), SY_F32, &t) == -1 && strstr(sy_last_error(c), "none.npy"), "%s",
        sy_last_error(c));
  sy_client_destroy(c);
}

// Files that are neither: errors naming them.
static void test_bad_files(void) {
  sy_client *c = sy_client_create("tiny", NULL, 0);
  CHECK(!sy_compile_file(c, tmp("nothing.onnx"), NULL) && strstr(sy_last_error(c), "nothing.onnx: No such file"),
        "%s", sy_last_error(c));
  FILE *f = fopen(tmp("half.stx"), "wb");
  fwrite("\177ELF\2\1\1", 1, 7, f);
  fclose(f);
  CHECK(!sy_compile_file(c, tmp("half.stx"), NULL) && strstr(sy_last_error(c), "half.stx: too short"), "%s",
        sy_last_error(c));
  f = fopen(tmp("junk.onnx"), "wb");
  fwrite("\x0a\xff\xff", 1, 3, f);
  fclose(f);
  CHECK(!sy_compile_file(c, tmp("junk.onnx"), NULL) && strstr(sy_last_error(c), "junk.onnx"), "%s", sy_last_error(c));
  sy_compile_options o = {.precision = 7};
  CHECK(!sy_compile_file(c, tmp("junk.onnx"), &o) && strstr(sy_last_error(c), "unknown precision 7"), "%s",
        sy_last_error(c));
  sy_client_destroy(c);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/test_runtime.%d", SYSTOLE_BUILD_DIR, (int)getpid());
  char cmd[700];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd)) return 1;
  test_clients();
  test_relu();
  test_matmul_profile();
  test_random();
  test_npy();
  test_bad_files();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) return 1;
  return test_done("test_runtime");
}
