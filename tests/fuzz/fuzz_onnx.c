// libFuzzer target: bytes as an ONNX model, imported and, when that works,
// compiled for the tiny chip. Either a graph and a program or an error
// message; never a crash, a leak or undefined behaviour (the build adds ASan
// and UBSan). See tests/fuzz/README.md.
#include <stdint.h>
#include <stdlib.h>

#include "compiler/compiler.h"
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
  ir_graph *g = onnx_import_buffer(data, size, "fuzz.onnx", NULL, 0, err, sizeof err);
  if (!g) {
    if (!err[0]) abort(); // a failure must say why
    return 0;
  }
  cc_options opt = {0};
  cc_executable x = {0};
  if (cc_compile(g, &chip, &opt, &x, err, sizeof err) == 0) cc_executable_free(&x);
  else if (!err[0]) abort();
  ir_graph_free(g);
  return 0;
}
