// Measurements for `make bench` (bench/bench.sh prints and records them).
//
//   systole_bench peak                 the host's tile peak: a register-only loop of
//                                      AMX tile dot products (bf16, int8) on every thread,
//                                      or without AMX of VDPBF16PS / VPDPWSSD, or without
//                                      those of the fp32 FMA and VPMADDWD
//   systole_bench gemm M K N           MXU kernel throughput: an M x K by K x N GEMM
//                                      as the simulator runs it, 128 x 128 weight tiles
//                                      and passes through them, bf16 and int8
//   systole_bench run MODEL [-n N] [--timing-only]
//                                      compiles (or loads) MODEL, runs it N times and
//                                      prints the compile time and the simulation times
//
// Threads: SYSTOLE_THREADS (default: every core); kernel: SYSTOLE_KERNEL.
// Output lines are "key value ..." for the script to read.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "runtime/systole.h"
#include "sim/kernels.h"
#include "sim/numerics.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

// ---------------------------------------------------------------- tile peak

// The host's peak for the MXU kernels is that of the best instruction any of
// them uses: AMX tile dot products, else VDPBF16PS / VPDPWSSD, else the fp32
// FMA (bf16 products are exact in fp32, so a bf16 MAC costs one lane of one
// vfmadd) and VPMADDWD (two int8 MACs a 32-bit lane) at the widest vector the
// host has. Each is measured by a register-only loop of that instruction on
// independent accumulators, on every thread.
typedef enum { PEAK_NONE, PEAK_AVX2, PEAK_AVX512, PEAK_DP, PEAK_AMX } peak_isa;

typedef struct {
  bool int8;
  long iters;
  double seconds[64];
} peak_job;

static peak_isa peak_best(void) {
  if (num_kernel_available(NUM_KERNEL_AMX)) return PEAK_AMX;
  if (num_kernel_available(NUM_KERNEL_AVX512BF16)) return PEAK_DP;
  if (num_kernel_available(NUM_KERNEL_AVX512)) return PEAK_AVX512;
  if (num_kernel_available(NUM_KERNEL_AVX2)) return PEAK_AVX2;
  return PEAK_NONE;
}

static const char *peak_kind(bool int8) {
  switch (peak_best()) {
  case PEAK_AMX: return int8 ? "AMX TDPBSSD" : "AMX TDPBF16PS";
  case PEAK_DP: return int8 ? "AVX512-VNNI VPDPWSSD" : "AVX512-BF16 VDPBF16PS";
  case PEAK_AVX512: return int8 ? "AVX-512 VPMADDWD" : "AVX-512 FMA";
  case PEAK_AVX2: return int8 ? "AVX2 VPMADDWD" : "AVX2 FMA";
  default: return "none";
  }
}

// More independent accumulators than latency x throughput, nothing else in
// the loop.
#define PEAK_ACC 12

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

// One register-only loop per instruction set: STEPI / STEPF advance an
// accumulator by one instruction's MACs; the empty asm keeps the compiler
// from hoisting a loop-invariant VPMADDWD.
#define VEC_PEAK_TASK(NAME, TARGET, VI, VF, VFIN, SET1I, ADDI, STEPI, SET1F, ADDF, STEPF, AF, BF)         \
  __attribute__((target(TARGET))) static void NAME(void *ctx, int task) {                                 \
    peak_job *j = ctx;                                                                                   \
    volatile float sinkf = 0;                                                                            \
    volatile int sinki = 0;                                                                              \
    double t0 = now();                                                                                   \
    if (j->int8) {                                                                                       \
      VI a = SET1I(0x00010001 + task), b = SET1I(0x00020003), c[PEAK_ACC];                               \
      for (int i = 0; i < PEAK_ACC; i++) c[i] = SET1I(i);                                                \
      for (long it = 0; it < j->iters; it++) {                                                           \
        __asm__("" : "+v"(a));                                                                           \
        _Pragma("GCC unroll 16") for (int i = 0; i < PEAK_ACC; i++) c[i] = STEPI(c[i], a, b);            \
      }                                                                                                  \
      for (int i = 1; i < PEAK_ACC; i++) c[0] = ADDI(c[0], c[i]);                                        \
      int lanes[sizeof(VI) / sizeof(int)];                                                               \
      memcpy(lanes, &c[0], sizeof lanes);                                                                \
      sinki = lanes[0];                                                                                  \
    } else {                                                                                             \
      VFIN a = AF, b = BF;                                                                               \
      VF c[PEAK_ACC];                                                                                    \
      for (int i = 0; i < PEAK_ACC; i++) c[i] = SET1F((float)i);                                         \
      for (long it = 0; it < j->iters; it++)                                                             \
        _Pragma("GCC unroll 16") for (int i = 0; i < PEAK_ACC; i++) c[i] = STEPF(c[i], a, b);            \
      for (int i = 1; i < PEAK_ACC; i++) c[0] = ADDF(c[0], c[i]);                                        \
      float lanes[sizeof(VF) / sizeof(float)];                                                           \
      memcpy(lanes, &c[0], sizeof lanes);                                                                \
      sinkf = lanes[0];                                                                                  \
    }                                                                                                    \
    j->seconds[task % 64] = now() - t0;                                                                  \
    (void)sinkf, (void)sinki;                                                                            \
  }

// VFMADD231PS (8 or 16 lanes, one MAC each) and VPMADDWD + VPADDD (two MACs a lane).
#define MADD_ADD256(c, a, b) _mm256_add_epi32(c, _mm256_madd_epi16(a, b))
#define FMA256(c, a, b) _mm256_fmadd_ps(a, b, c)
VEC_PEAK_TASK(avx2_peak_task, "avx2,fma", __m256i, __m256, __m256, _mm256_set1_epi32, _mm256_add_epi32, MADD_ADD256,
              _mm256_set1_ps, _mm256_add_ps, FMA256, _mm256_set1_ps(1.0f + (float)task), _mm256_set1_ps(0x1p-20f))
#define MADD_ADD512(c, a, b) _mm512_add_epi32(c, _mm512_madd_epi16(a, b))
#define FMA512(c, a, b) _mm512_fmadd_ps(a, b, c)
VEC_PEAK_TASK(avx512_peak_task, "avx512f,avx512bw", __m512i, __m512, __m512, _mm512_set1_epi32, _mm512_add_epi32,
              MADD_ADD512, _mm512_set1_ps, _mm512_add_ps, FMA512, _mm512_set1_ps(1.0f + (float)task),
              _mm512_set1_ps(0x1p-20f))
#endif

// AMX intrinsics need gcc 11 or clang 12 or later.
#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11))
#define HAVE_DP_PEAK 1

typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tile_config;

// Four independent accumulators, operands already in tiles: nothing but
// TDPBF16PS (or TDPBSSD) in the loop. Each is 16 x 16 x 32 bf16 MACs (x 64 int8).
__attribute__((target("amx-tile,amx-bf16,amx-int8"))) static void amx_peak_task(void *ctx, int task) {
  peak_job *j = ctx;
  _Alignas(64) tile_config cfg;
  _Alignas(64) static const uint8_t zeros[1024];
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  _tile_loadconfig(&cfg);
  _tile_loadd(4, zeros, 64);
  _tile_loadd(5, zeros, 64);
  _tile_loadd(6, zeros, 64);
  _tile_loadd(7, zeros, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  double t0 = now();
  if (j->int8)
    for (long i = 0; i < j->iters; i++) {
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
  else
    for (long i = 0; i < j->iters; i++) {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  j->seconds[task % 64] = now() - t0;
  _tile_release();
}

// VDPBF16PS (16 lanes x 2 bf16 MACs) and VPDPWSSD (16 lanes x 2 int16 MACs,
// which exact int8 products use).
VEC_PEAK_TASK(dp_peak_task, "avx512f,avx512bf16,avx512vnni", __m512i, __m512, __m512bh, _mm512_set1_epi32,
              _mm512_add_epi32, _mm512_dpwssd_epi32, _mm512_set1_ps, _mm512_add_ps, _mm512_dpbf16_ps,
              (__m512bh)_mm512_set1_epi32(0x3f803f80 + task), (__m512bh)_mm512_set1_epi32(0x3c003c00))
#endif

// Ops per second of all threads together (2 per MAC), best of 25 tries of
// 10-30 ms (a shared host's bursts of other work last longer than a few: best
// of 5 once measured 0.11 instead of 0.19 TFLOP/s, and the GEMMs' ratios came
// out above 1); 0 without any of the instructions (or without the compiler
// support to measure AMX or VDPBF16PS).
static double tile_peak(bool int8, int threads) {
  void (*task)(void *, int) = NULL;
  double macs_per_iter = 0; // per thread
  long iters = 1 << 21;
  switch (peak_best()) {
#ifdef HAVE_DP_PEAK
  case PEAK_AMX: task = amx_peak_task, macs_per_iter = 4.0 * 16 * 16 * (int8 ? 64 : 32), iters = 1 << 20; break;
  case PEAK_DP: task = dp_peak_task, macs_per_iter = PEAK_ACC * 16 * 2; break;
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  case PEAK_AVX512: task = avx512_peak_task, macs_per_iter = PEAK_ACC * 16 * (int8 ? 2 : 1); break;
  case PEAK_AVX2: task = avx2_peak_task, macs_per_iter = PEAK_ACC * 8 * (int8 ? 2 : 1); break;
#endif
  default: return 0;
  }
  double best = 0;
  for (int rep = 0; rep < 25; rep++) {
    peak_job j = {.int8 = int8, .iters = iters};
    num_parallel(threads, task, &j);
    double slowest = 0;
    for (int t = 0; t < threads && t < 64; t++) slowest = j.seconds[t] > slowest ? j.seconds[t] : slowest;
    double ops = 2.0 * macs_per_iter * (double)j.iters * threads;
    if (ops / slowest > best) best = ops / slowest;
  }
  return best;
}

// ---------------------------------------------------------------- GEMM

// C (M x N) = A (M x K) x W (K x N) as an MXU of R x C = 128 x 128 runs it:
// one weight tile per 128 x 128 block of W, loaded (prepared for the kernel)
// once, and passes of `chunk` rows through it, accumulating over k. Rows go
// in chunks so that a pass's inputs and outputs stay in the core's cache, as
// a compiler tiles a matrix multiplication for the chip's memories; the
// accumulators are rows of C elements, as the chip's are.
// Returns ops per second of the passes; *with_loads counts the tile loads too.
static double gemm(int M, int K, int N, bool int8, double *with_loads) {
  enum { R = 128, C = 128, CHUNK = 256 };
  size_t es = int8 ? 1 : 2;
  int kt = (K + R - 1) / R, nt = (N + C - 1) / C;
  uint8_t *a = malloc((size_t)M * K * es), *w = malloc((size_t)K * N * es);
  float *c = malloc((size_t)CHUNK * nt * C * 4); // per column block, rows of C accumulators as on the chip
  void **tiles = calloc((size_t)kt * nt, sizeof *tiles);
  if (!a || !w || !c || !tiles) {
    fprintf(stderr, "systole_bench: out of memory\n");
    exit(1);
  }
  for (int i = 0; i < kt * nt; i++)
    if (!(tiles[i] = num_tile_alloc(R, C))) {
      fprintf(stderr, "systole_bench: out of memory\n");
      exit(1);
    }
  // Ordinary values (random bits would be mostly huge, tiny or NaN in bf16).
  uint64_t s = 88172645463325252ull;
  for (size_t i = 0; i < (size_t)M * K; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    if (int8) a[i] = (uint8_t)s;
    else ((uint16_t *)(void *)a)[i] = (uint16_t)(0x3c00 | (s & 0x81ff));
  }
  for (size_t i = 0; i < (size_t)K * N; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    if (int8) w[i] = (uint8_t)s;
    else ((uint16_t *)(void *)w)[i] = (uint16_t)(0x3c00 | (s & 0x81ff));
  }
  double best = 1e30, best_loads = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now();
    for (int ni = 0; ni < nt; ni++)
      for (int ki = 0; ki < kt; ki++) {
        int k = K - ki * R < R ? K - ki * R : R, n = N - ni * C < C ? N - ni * C : C;
        num_tile_load(tiles[ki * nt + ni], int8 ? 3 : 1, w + ((size_t)ki * R * N + (size_t)ni * C) * es, (size_t)N * es,
                      k, n);
      }
    double t1 = now();
    for (int m0 = 0; m0 < M; m0 += CHUNK) {
      int m = M - m0 < CHUNK ? M - m0 : CHUNK;
      for (int ni = 0; ni < nt; ni++)
        for (int ki = 0; ki < kt; ki++)
          num_tile_pass(tiles[ki * nt + ni], c + (size_t)ni * CHUNK * C, C, a + ((size_t)m0 * K + (size_t)ki * R) * es,
                        (size_t)K * es, m, ki > 0);
    }
    double t2 = now();
    if (t2 - t1 < best) best = t2 - t1;
    if (t2 - t0 < best_loads) best_loads = t2 - t0;
  }
  for (int i = 0; i < kt * nt; i++) free(tiles[i]);
  free(a), free(w), free(c), free(tiles);
  *with_loads = 2.0 * M * K * N / best_loads;
  return 2.0 * M * K * N / best;
}

// ---------------------------------------------------------------- models

static long peak_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static int run_model(const char *path, int n, bool timing_only) {
  char err[SY_ERR_LEN];
  sy_client *c = sy_client_create(NULL, err, sizeof err);
  if (!c) {
    fprintf(stderr, "systole_bench: %s\n", err);
    return 1;
  }
  double t0 = now();
  sy_executable *x = sy_compile_file(c, path, NULL);
  double load = now() - t0;
  if (!x) {
    fprintf(stderr, "systole_bench: %s\n", sy_last_error(c));
    return 1;
  }
  int ni = sy_executable_num_inputs(x), no = sy_executable_num_outputs(x);
  sy_tensor *in = calloc((size_t)ni, sizeof *in), *out = calloc((size_t)no, sizeof *out);
  double *host = calloc((size_t)n, sizeof *host), *wall = calloc((size_t)n, sizeof *wall);
  uint64_t cycles = 0;
  for (int i = 0; i < ni; i++) {
    sy_executable_input(x, i, &in[i]);
    in[i].data = NULL;
    sy_tensor_fill_random(&in[i], (uint64_t)i);
  }
  for (int r = 0; r < n; r++) {
    sy_profile p;
    sy_execute_options eo = {.timing_only = timing_only};
    double t1 = now();
    if (sy_execute(c, x, in, ni, out, &p, &eo)) {
      fprintf(stderr, "systole_bench: %s\n", sy_last_error(c));
      return 1;
    }
    wall[r] = now() - t1;
    host[r] = p.host_seconds;
    if (r && p.cycles != cycles) {
      fprintf(stderr, "systole_bench: run %d took %" PRIu64 " cycles, run 0 %" PRIu64 "\n", r, p.cycles, cycles);
      return 1;
    }
    cycles = p.cycles;
    sy_profile_free(&p);
    for (int i = 0; i < no; i++) sy_tensor_free(&out[i]);
  }
  printf("compile_seconds %.6f\nload_seconds %.6f\ncycles %" PRIu64 "\nthreads %d\nkernel %s\n",
         sy_executable_compile_seconds(x), load, cycles, num_threads(), num_kernel_names[num_kernel_current()]);
  printf("first_host_seconds %.6f\n", host[0]);
  qsort(host, (size_t)n, sizeof *host, cmp_double);
  qsort(wall, (size_t)n, sizeof *wall, cmp_double);
  printf("min_host_seconds %.6f\nmedian_host_seconds %.6f\nmedian_execute_seconds %.6f\npeak_rss_kib %ld\n", host[0],
         host[n / 2], wall[n / 2], peak_rss_kib());
  for (int i = 0; i < ni; i++) sy_tensor_free(&in[i]);
  free(in), free(out), free(host), free(wall);
  sy_executable_destroy(x);
  sy_client_destroy(c);
  return 0;
}

int main(int argc, char **argv) {
  const char *usage = "usage: systole_bench peak | gemm M K N | run MODEL [-n N] [--timing-only]\n";
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  if (!strcmp(argv[1], "peak")) {
    int t = num_threads();
    printf("threads %d\namx %d\n", t, num_cpu_amx());
    printf("peak_bf16_flops %.4g\npeak_int8_ops %.4g\n", tile_peak(false, t), tile_peak(true, t));
    printf("peak1_bf16_flops %.4g\n", tile_peak(false, 1));
    printf("peak_bf16_kind %s\npeak_int8_kind %s\n", peak_kind(false), peak_kind(true));
    return 0;
  }
  if (!strcmp(argv[1], "gemm") && argc == 5) {
    int M = atoi(argv[2]), K = atoi(argv[3]), N = atoi(argv[4]);
    if (M < 1 || K < 1 || N < 1) {
      fputs(usage, stderr);
      return 2;
    }
    double bl, il;
    printf("threads %d\nkernel %s\n", num_threads(), num_kernel_names[num_kernel_current()]);
    double b = gemm(M, K, N, false, &bl), i = gemm(M, K, N, true, &il);
    printf("gemm_bf16_flops %.4g\ngemm_bf16_flops_with_loads %.4g\n", b, bl);
    printf("gemm_int8_ops %.4g\ngemm_int8_ops_with_loads %.4g\n", i, il);
    return 0;
  }
  if (!strcmp(argv[1], "run") && argc >= 3) {
    int n = 5;
    bool timing_only = false;
    for (int i = 3; i < argc; i++) {
      if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoi(argv[++i]);
      else if (!strcmp(argv[i], "--timing-only")) timing_only = true;
      else {
        fputs(usage, stderr);
        return 2;
      }
    }
    return run_model(argv[2], n < 1 ? 1 : n, timing_only);
  }
  fputs(usage, stderr);
  return 2;
}
