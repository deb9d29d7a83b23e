#include "testlib.h"

#include <stdlib.h>

int test_checks, test_failures;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

int test_done(const char *name) {
  printf("%s: %d checks, %d passed, %d failed\n", name, test_checks,
         test_checks - test_failures, test_failures);
  return test_failures ? 1 : 0;
}

void test_seed(uint64_t seed) { rng_state = seed ? seed : 1; }

uint64_t test_rand(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

char *test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
  fclose(f);
  if (buf) { buf[n] = 0; if (len) *len = (size_t)n; }
  return buf;
}
