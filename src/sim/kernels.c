// Host kernels: which one runs, the thread pool, and the portable reference
// path. docs/performance.md describes the design; every kernel is checked bit
// for bit against numerics.c by tests/test_kernels.c.
#include "sim/kernels.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/numerics.h"

#if defined(__linux__) || defined(__APPLE__) || defined(__unix__)
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#define HAVE_PTHREADS 1
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define X86 1
#endif
#if defined(X86) && defined(__linux__)
#include <sys/syscall.h>
#endif

const char *const num_kernel_names[NUM_KERNELS] = {"ref", "avx2", "avx512", "avx512bf16", "amx"};

// ---------------------------------------------------------------- CPU features

#ifdef X86
static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t)hi << 32 | lo;
}

typedef struct {
  bool avx2, avx512, avx512bf16, amx;
} cpu_features;

static cpu_features cpu_probe(void) {
  cpu_features f = {0};
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  bool fma = (c >> 12) & 1, osxsave = (c >> 27) & 1;
  if (!osxsave || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  uint64_t xcr0 = xgetbv0();
  bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
  f.avx2 = ymm && fma && ((b >> 5) & 1);
  // F, DQ, BW, VL: what kernels_avx512.c is compiled for.
  f.avx512 = f.avx2 && zmm && ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
  // AVX512-VNNI (leaf 7 ecx bit 11) and AVX512-BF16 (leaf 7 subleaf 1 eax bit 5).
  bool vnni = (c >> 11) & 1;
  unsigned a1, b1, c1, d1;
  bool bf16 = a >= 1 && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1);
  f.avx512bf16 = f.avx512 && vnni && bf16;
  bool amx_hw = ((d >> 24) & 1) && ((d >> 22) & 1) && ((d >> 25) & 1); // TILE, BF16, INT8
#ifdef __linux__
  // Linux hands out the 8 KiB of tile state only on request, once per process
  // (ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18).
  if (f.avx512 && amx_hw && syscall(SYS_arch_prctl, 0x1023, 18) == 0)
    f.amx = (xgetbv0() & (3ull << 17)) == (3ull << 17);
#else
  (void)amx_hw;
#endif
  return f;
}

static cpu_features cpu_get(void) {
  static cpu_features f;
  static atomic_int done; // 0 no, 1 yes: probing twice is harmless
  if (!atomic_load(&done)) {
    f = cpu_probe();
    atomic_store(&done, 1);
  }
  return f;
}
bool num_cpu_avx2(void) { return cpu_get().avx2; }
bool num_cpu_avx512(void) { return cpu_get().avx512; }
bool num_cpu_avx512bf16(void) { return cpu_get().avx512bf16; }
bool num_cpu_amx(void) { return cpu_get().amx; }
#else
bool num_cpu_avx2(void) { return false; }
bool num_cpu_avx512(void) { return false; }
bool num_cpu_avx512bf16(void) { return false; }
bool num_cpu_amx(void) { return false; }
#endif

// ---------------------------------------------------------------- selection

bool num_kernel_available(num_kernel k) {
  switch (k) {
  case NUM_KERNEL_REF: return true;
  case NUM_KERNEL_AVX2: return num_cpu_avx2() && num_mxu_avx2.pass;
  case NUM_KERNEL_AVX512: return num_cpu_avx512() && num_mxu_avx512.pass;
  case NUM_KERNEL_AVX512BF16: return num_cpu_avx512bf16() && num_mxu_avx512bf16.pass;
  case NUM_KERNEL_AMX: return num_cpu_amx() && num_mxu_amx.pass;
  default: return false;
  }
}

int num_kernel_parse(const char *name) {
  for (int k = 0; k < NUM_KERNELS; k++)
    if (!strcmp(name, num_kernel_names[k])) return k;
  return -1;
}

static atomic_int kernel_sel = -1;

num_kernel num_kernel_current(void) {
  int k = atomic_load(&kernel_sel);
  if (k >= 0) return (num_kernel)k;
  k = NUM_KERNELS - 1;
  const char *env = getenv("SYSTOLE_KERNEL");
  if (env && *env) {
    int want = num_kernel_parse(env);
    if (want < 0)
      fprintf(stderr, "systole: SYSTOLE_KERNEL=%s is not one of ref, avx2, avx512, avx512bf16, amx: ignored\n", env);
    else
      k = want;
  }
  int want = k;
  while (!num_kernel_available((num_kernel)k)) k--;
  if (env && *env && k != want && want >= 0)
    fprintf(stderr, "systole: SYSTOLE_KERNEL=%s: this host has no %s, using %s\n", env, num_kernel_names[want],
            num_kernel_names[k]);
  int expected = -1;
  atomic_compare_exchange_strong(&kernel_sel, &expected, k);
  return (num_kernel)atomic_load(&kernel_sel);
}

int num_kernel_use(num_kernel k) {
  if ((unsigned)k >= NUM_KERNELS || !num_kernel_available(k)) return -1;
  atomic_store(&kernel_sel, (int)k);
  return 0;
}

// ---------------------------------------------------------------- threads
// One job at a time: the caller publishes fn, ctx and ntasks, then a claim
// word, generation << 32 | next task. Everyone (helpers and the caller) takes
// tasks by compare-and-swap on that word, so a helper that wakes late can
// never take a task of a later job: its swap names the old generation and
// fails. The caller waits only for tasks that were taken, not for helpers.
// Between jobs the low half is CLOSED, and only then are the fields rewritten.

#define CLOSED 0xffffffffu

static struct {
  atomic_int size;    // threads that take tasks, the caller included
  int started;        // helper threads created
  atomic_uint_fast64_t claim;
  uint32_t gen;
  atomic_int ntasks, finished, sleepers;
  _Atomic(void (*)(void *, int)) fn;
  _Atomic(void *) ctx;
#ifdef HAVE_PTHREADS
  pthread_mutex_t run; // held by the caller of the job in progress
  pthread_mutex_t mu;  // sleeping helpers
  pthread_cond_t cv;
#endif
} pool = {
    .size = 0,
    .claim = CLOSED,
#ifdef HAVE_PTHREADS
    .run = PTHREAD_MUTEX_INITIALIZER,
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
#endif
};

static int default_threads(void) {
  const char *env = getenv("SYSTOLE_THREADS");
  if (env && *env) {
    char *end;
    long n = strtol(env, &end, 10);
    if (*end || n < 1 || n > 1024) fprintf(stderr, "systole: SYSTOLE_THREADS=%s is not 1..1024: ignored\n", env);
    else return (int)n;
  }
#if defined(__linux__)
  cpu_set_t set;
  if (!sched_getaffinity(0, sizeof set, &set) && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
#ifdef HAVE_PTHREADS
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n > 0) return n > 1024 ? 1024 : (int)n;
#endif
  return 1;
}

int num_threads(void) {
  int n = atomic_load(&pool.size);
  if (n) return n;
  n = default_threads();
  int expected = 0;
  atomic_compare_exchange_strong(&pool.size, &expected, n);
  return atomic_load(&pool.size);
}

void num_set_threads(int n) { atomic_store(&pool.size, n < 1 ? 1 : n > 1024 ? 1024 : n); }

static void cpu_relax(void) {
#ifdef X86
  __builtin_ia32_pause();
#endif
}

// Takes and runs tasks of generation g until none is left.
static void run_tasks(uint32_t g) {
  void (*fn)(void *, int) = atomic_load(&pool.fn);
  void *ctx = atomic_load(&pool.ctx);
  uint32_t n = (uint32_t)atomic_load(&pool.ntasks);
  uint_fast64_t c = atomic_load(&pool.claim);
  for (;;) {
    if ((uint32_t)(c >> 32) != g || (uint32_t)c >= n) return; // CLOSED >= n
    if (atomic_compare_exchange_weak(&pool.claim, &c, c + 1)) {
      fn(ctx, (int)(uint32_t)c);
      atomic_fetch_add(&pool.finished, 1);
      c = atomic_load(&pool.claim);
    }
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool num_keep_waiting(num_waiter *w, double give_up) {
  cpu_relax();
  if (++w->spins % 256) return true;
  double t = now_s();
  if (!w->t0) w->t0 = t;
#ifdef HAVE_PTHREADS
  if (w->spins > 256) sched_yield(); // after the first few microseconds
#endif
  return t - w->t0 < give_up;
}

#ifdef HAVE_PTHREADS

// Helper threads wait for a job as above, then sleep until the next one.
static void *helper(void *arg) {
  int index = (int)(intptr_t)arg; // 1, 2, ...: the caller is 0
  uint32_t seen = 0;
  for (;;) {
    uint_fast64_t c = atomic_load(&pool.claim);
    if ((uint32_t)(c >> 32) == seen) {
      num_waiter w = {0, 0};
      while (num_keep_waiting(&w, 1e-3)) {
        c = atomic_load(&pool.claim);
        if ((uint32_t)(c >> 32) != seen) break;
      }
      if ((uint32_t)(c >> 32) == seen) {
        pthread_mutex_lock(&pool.mu);
        atomic_fetch_add(&pool.sleepers, 1);
        while ((uint32_t)(atomic_load(&pool.claim) >> 32) == seen) pthread_cond_wait(&pool.cv, &pool.mu);
        atomic_fetch_sub(&pool.sleepers, 1);
        pthread_mutex_unlock(&pool.mu);
        continue;
      }
    }
    seen = (uint32_t)(c >> 32);
    if ((uint32_t)c != CLOSED && index < atomic_load(&pool.size)) run_tasks(seen);
  }
  return NULL;
}

// Starts helpers up to size - 1; returns how many run.
static int start_helpers(int size) {
  while (pool.started < size - 1) {
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); // helpers take no signals
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, helper, (void *)(intptr_t)(pool.started + 1));
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) break; // fewer helpers: slower, never wrong
    pool.started++;
  }
  return pool.started;
}
#endif

// Runs the tasks on the pool and returns true, or returns false having run
// none: one task, one thread, or the pool busy (a call from inside a task).
static bool parallel_try(int ntasks, void (*fn)(void *ctx, int task), void *ctx) {
#ifdef HAVE_PTHREADS
  int size = num_threads();
  if (ntasks > 1 && size > 1 && pthread_mutex_trylock(&pool.run) == 0) {
    if (start_helpers(size) > 0) {
      atomic_store(&pool.fn, fn);
      atomic_store(&pool.ctx, ctx);
      atomic_store(&pool.ntasks, ntasks);
      atomic_store(&pool.finished, 0);
      uint32_t g = ++pool.gen;
      if (!g) g = ++pool.gen; // 0 is what helpers have seen at start
      atomic_store(&pool.claim, (uint_fast64_t)g << 32);
      if (atomic_load(&pool.sleepers)) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
      }
      run_tasks(g);
      num_waiter w = {0, 0};
      while (atomic_load(&pool.finished) < ntasks) num_keep_waiting(&w, 1e30);
      atomic_store(&pool.claim, (uint_fast64_t)g << 32 | CLOSED);
      pthread_mutex_unlock(&pool.run);
      return true;
    }
    pthread_mutex_unlock(&pool.run);
  }
#else
  (void)ntasks, (void)fn, (void)ctx;
#endif
  return false;
}

void num_parallel(int ntasks, void (*fn)(void *ctx, int task), void *ctx) {
  if (ntasks <= 0 || parallel_try(ntasks, fn, ctx)) return;
  for (int i = 0; i < ntasks; i++) fn(ctx, i);
}

// ---------------------------------------------------------------- MXU

// The reference kernel runs numerics.c on the raw weights, which every tile
// keeps (k rows of n elements) besides its kernel's layout.
static void ref_load(num_tile_hdr *t, const void *w, size_t w_stride) { (void)t, (void)w, (void)w_stride; }

// With the raw weights at w.
static void ref_pass_raw(const num_tile_hdr *t, const void *w, void *acc, size_t acc_stride, const void *lhs,
                         size_t lhs_stride, int r0, int r1, bool accumulate) {
  const char *x = (const char *)lhs + (size_t)r0 * lhs_stride;
  if (t->dtype == 1)
    num_mxu_pass_bf16((float *)acc + (size_t)r0 * acc_stride, acc_stride, (const uint16_t *)(const void *)x,
                      lhs_stride / 2, w, (size_t)t->n, r1 - r0, t->k, t->n, accumulate);
  else
    num_mxu_pass_i8((int32_t *)acc + (size_t)r0 * acc_stride, acc_stride, (const int8_t *)x, lhs_stride, w,
                    (size_t)t->n, r1 - r0, t->k, t->n, accumulate);
}

static void ref_pass(const num_tile_hdr *t, void *acc, size_t acc_stride, const void *lhs, size_t lhs_stride,
                     int r0, int r1, bool accumulate) {
  ref_pass_raw(t, NUM_TILE_RAW((num_tile_hdr *)t), acc, acc_stride, lhs, lhs_stride, r0, r1, accumulate);
}

static size_t ref_bytes(int dtype, int k, int n) { return (size_t)k * (size_t)n * (dtype == 1 ? 2 : 1); }

static void ref_unpack(const num_tile_hdr *t, void *raw) { (void)t, (void)raw; } // already raw

static const num_mxu_impl mxu_ref = {ref_load, ref_unpack, ref_pass, ref_bytes, 1};

static const num_mxu_impl *impl_of(int kernel) {
  switch (kernel) {
  case NUM_KERNEL_AVX2: return &num_mxu_avx2;
  case NUM_KERNEL_AVX512: return &num_mxu_avx512;
  case NUM_KERNEL_AVX512BF16: return &num_mxu_avx512bf16;
  case NUM_KERNEL_AMX: return &num_mxu_amx;
  default: return &mxu_ref;
  }
}

// The header, the raw weights, then the largest layout: fp32 weights in
// columns padded to 16 (AVX) or k padded to 64 (AMX int8), with room to spare.
void *num_tile_alloc(int rows, int cols) {
  size_t raw = ((size_t)rows * (size_t)cols * 2 + 63) / 64 * 64;
  size_t layout = ((size_t)(rows + 64) * (size_t)(cols + 16) * 4 + 63) / 64 * 64;
  num_tile_hdr *t = aligned_alloc(64, 64 + raw + layout);
  if (!t) return NULL;
  memset(t, 0, 64);
  t->rows = rows, t->cols = cols, t->dtype = 1, t->data = 64 + raw;
  return t;
}

size_t num_tile_exact_bytes(int dtype, int k, int n) {
  return 64 + (impl_of((int)num_kernel_current())->bytes(dtype, k, n) + 63) / 64 * 64;
}

void *num_tile_place_exact(void *mem, int dtype, int k, int n) {
  num_tile_hdr *t = mem;
  memset(t, 0, 64);
  t->rows = k, t->cols = n, t->dtype = dtype, t->data = 64; // the reference kernel's raw weights are its layout
  return t;
}

void *num_tile_alloc_exact(int dtype, int k, int n) {
  void *t = aligned_alloc(64, num_tile_exact_bytes(dtype, k, n));
  return t ? num_tile_place_exact(t, dtype, k, n) : NULL;
}

void num_tile_load(void *tile, int dtype, const void *w, size_t w_stride, int k, int n) {
  num_tile_hdr *t = tile;
  assert(k >= 1 && k <= t->rows && n >= 1 && n <= t->cols && (dtype == 1 || dtype == 3));
  t->kernel = (int)num_kernel_current(), t->dtype = dtype, t->k = k, t->n = n;
  if (t->kernel == NUM_KERNEL_REF) { // the raw weights are its layout
    size_t row = (size_t)n * (dtype == 1 ? 2 : 1);
    for (int i = 0; i < k; i++) memcpy((char *)NUM_TILE_RAW(t) + i * row, (const char *)w + i * w_stride, row);
  } else
    impl_of(t->kernel)->load(t, w, w_stride);
}

void num_tile_pass_ref(const void *tile, void *acc, size_t acc_stride, const void *lhs, size_t lhs_stride,
                       int m, bool accumulate) {
  num_tile_hdr *t = (num_tile_hdr *)tile; // unpacking changes only the raw copy's room
  if (t->kernel == NUM_KERNEL_REF) {
    ref_pass(t, acc, acc_stride, lhs, lhs_stride, 0, m, accumulate);
  } else if (t->data == 64) { // an exact tile, shared: unpack a copy
    void *raw = malloc(ref_bytes(t->dtype, t->k, t->n));
    if (!raw) abort(); // 32 KiB at most for a 128 x 128 tile
    impl_of(t->kernel)->unpack(t, raw);
    ref_pass_raw(t, raw, acc, acc_stride, lhs, lhs_stride, 0, m, accumulate);
    free(raw);
  } else {
    impl_of(t->kernel)->unpack(t, NUM_TILE_RAW(t));
    ref_pass(t, acc, acc_stride, lhs, lhs_stride, 0, m, accumulate);
  }
}

typedef struct {
  const num_tile_hdr *t;
  const num_mxu_impl *impl;
  void *acc;
  size_t acc_stride;
  const void *lhs;
  size_t lhs_stride;
  int m, chunk;
  bool accumulate;
} pass_job;

static void pass_task(void *ctx, int task) {
  const pass_job *j = ctx;
  int r0 = task * j->chunk, r1 = r0 + j->chunk < j->m ? r0 + j->chunk : j->m;
  j->impl->pass(j->t, j->acc, j->acc_stride, j->lhs, j->lhs_stride, r0, r1, j->accumulate);
}

void num_tile_pass(const void *tile, void *acc, size_t acc_stride, const void *lhs, size_t lhs_stride, int m,
                   bool accumulate) {
  const num_tile_hdr *t = tile;
  pass_job j = {t, impl_of(t->kernel), acc, acc_stride, lhs, lhs_stride, m, m, accumulate};
  // Tasks of whole row blocks, about two per thread, none below ~64k MACs
  // (a task costs a microsecond or so to hand over).
  int threads = num_threads(), rb = j.impl->row_block;
  int64_t macs_per_row = (int64_t)t->k * t->n;
  int min_rows = (int)(65536 / (macs_per_row ? macs_per_row : 1)) + 1;
  int chunk = (m + 2 * threads - 1) / (2 * threads);
  if (chunk < min_rows) chunk = min_rows;
  chunk = (chunk + rb - 1) / rb * rb;
  j.chunk = chunk;
  // Inside a simulation the pool is busy running it: the pass runs whole on
  // this thread, not chunk by chunk (each chunk ends in partial row blocks).
  if (chunk >= m || !parallel_try((m + chunk - 1) / chunk, pass_task, &j))
    j.impl->pass(t, acc, acc_stride, lhs, lhs_stride, 0, m, accumulate);
}
