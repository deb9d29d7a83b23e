// What the libFuzzer targets share: the tiny chip, loaded once, and the end
// of an import: a graph is compiled, a failure must come with a message.
#ifndef SYSTOLE_FUZZ_H
#define SYSTOLE_FUZZ_H
#include <stdint.h>
#include <stdlib.h>

#include "compiler/compiler.h"
#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline const chip_config *fuzz_chip(void) {
  static chip_config chip;
  static int loaded;
  char err[CC_ERR_LEN];
  if (!loaded) {
    if (chip_load(&chip, "tiny", err, sizeof err)) abort();
    loaded = 1;
  }
  return &chip;
}

// g: the importer's result; err its message when NULL.
static inline void fuzz_compile(ir_graph *g, const char *err) {
  if (!g) {
    if (!err[0]) abort(); // a failure must say why
    return;
  }
  char cerr[CC_ERR_LEN] = "";
  cc_options opt = {0};
  cc_executable x = {0};
  if (cc_compile(g, fuzz_chip(), &opt, &x, cerr, sizeof cerr) == 0) cc_executable_free(&x);
  else if (!cerr[0]) abort();
  ir_graph_free(g);
}
#endif
