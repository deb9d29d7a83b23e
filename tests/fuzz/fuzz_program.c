// libFuzzer target: bytes as a program image (.stx), parsed and, when that
// works, run on the tiny chip for at most 20,000 cycles: a result or an
// error (a trap names the place), never a crash.
#include "fuzz.h"
#include "isa/isa.h"
#include "sim/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[1024];
  isa_program p;
  err[0] = 0;
  if (isa_program_parse(&p, data, size, err, sizeof err)) {
    if (!err[0]) abort();
    return 0;
  }
  sim_options so = {.max_cycles = 20000};
  sim *s = sim_create(fuzz_chip(), &so, err, sizeof err);
  if (s) {
    if (sim_load(s, &p, err, sizeof err) == 0) (void)sim_run(s, err, sizeof err);
    sim_destroy(s);
  }
  isa_program_free(&p);
  return 0;
}
