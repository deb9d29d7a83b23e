// A small test harness: CHECK records a failure with its place and goes on;
// test_done() prints a summary and gives main's exit code.
#ifndef SYSTOLE_TESTLIB_H
#define SYSTOLE_TESTLIB_H

#include <stdint.h>
#include <stdio.h>

extern int test_checks, test_failures;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    test_checks++;                                                         \
    if (!(cond)) {                                                         \
      test_failures++;                                                     \
      if (test_failures <= 50) {                                           \
        fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__);                                      \
        fputc('\n', stderr);                                               \
      }                                                                    \
    }                                                                      \
  } while (0)

// CHECK that two 32-bit patterns are equal, printing both in hex.
#define CHECK_BITS(got, want, ...)                                     \
  do {                                                                     \
    uint32_t g_ = (got), w_ = (want);                                      \
    CHECK(g_ == w_, "got 0x%08x want 0x%08x: %s", g_, w_, #got " " #__VA_ARGS__); \
    (void)g_; (void)w_;                                                    \
  } while (0)

int test_done(const char *name);

// Deterministic random numbers for tests (xorshift64*).
uint64_t test_rand(void);
void test_seed(uint64_t seed);
// Reads a whole file into a malloc'd NUL-terminated buffer; NULL on failure.
char *test_read_file(const char *path, size_t *len);

#endif
