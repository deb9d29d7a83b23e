// libFuzzer target: bytes as XLA HLO text, imported and, when that works,
// compiled for the tiny chip: a program or an error message, never a crash.
#include <stdint.h>
#include <stdlib.h>

#include "compiler/compiler.h"
#include "frontend/hlo.h"
#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static chip_config chip;
  static int loaded;
  char err[CC_ERR_LEN];
  if (!loaded) {
    if (chip_load(&chip, "tiny", err, sizeof err)) abort();
    loaded = 1;
  }
  err[0] = 0;
  ir_graph *g = hlo_import_buffer((const char *)data, size, "fuzz.hlo", err, sizeof err);
  if (!g) {
    if (!err[0]) abort();
    return 0;
  }
  cc_options opt = {0};
  cc_executable x = {0};
  if (cc_compile(g, &chip, &opt, &x, err, sizeof err) == 0) cc_executable_free(&x);
  else if (!err[0]) abort();
  ir_graph_free(g);
  return 0;
}
