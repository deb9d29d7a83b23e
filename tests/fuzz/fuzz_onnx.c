// libFuzzer target: bytes as an ONNX model, imported and, when that works,
// compiled for the tiny chip. Either a graph and a program or an error
// message; never a crash, a leak or undefined behaviour (the build adds ASan
// and UBSan). See tests/fuzz/README.md.
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[CC_ERR_LEN] = "";
  fuzz_compile(onnx_import_buffer(data, size, "fuzz.onnx", NULL, 0, err, sizeof err), err);
  return 0;
}
