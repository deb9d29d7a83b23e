// libFuzzer target: bytes as XLA HLO text, imported and, when that works,
// compiled for the tiny chip: a program or an error message, never a crash.
#include "frontend/hlo.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[CC_ERR_LEN] = "";
  fuzz_compile(hlo_import_buffer((const char *)data, size, "fuzz.hlo", err, sizeof err), err);
  return 0;
}
