# Front door. `make` builds; `make demo` and `make test` also install what is missing.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD := build
SANBUILD := build-san
RELBUILD := build-release

.PHONY: all deps deps-test demo test test-normal test-release test-san bench clean

all: $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/Makefile: CMakeLists.txt
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

$(RELBUILD)/Makefile: CMakeLists.txt
	@cmake -S . -B $(RELBUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null

$(SANBUILD)/Makefile: CMakeLists.txt
	@cmake -S . -B $(SANBUILD) -DCMAKE_BUILD_TYPE=Debug -DSYSTOLE_SANITIZE=ON >/dev/null

deps:
	@sh scripts/install-deps.sh

deps-test:
	@sh scripts/install-deps.sh --test

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh $(BUILD)

test: deps-test
	@$(MAKE) --no-print-directory test-normal
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-san

test-normal: $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)
	@echo "== tests: normal build =="
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# A Release build (-O3) only compiles: GCC's flow analysis there finds
# maybe-uninitialized paths that -O2 does not, and -Werror makes them errors
# for anyone who builds that way.
test-release: $(RELBUILD)/Makefile
	@echo "== build: Release (-O3, -Werror) =="
	@cmake --build $(RELBUILD) -j $(JOBS)

test-san: $(SANBUILD)/Makefile
	@cmake --build $(SANBUILD) -j $(JOBS)
	@echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer build =="
	@cd $(SANBUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

# Reruns the validation (PE model, SCALE-Sim's reports, published TPU figures)
# and regenerates docs/validation.md (scripts/validate.sh).
.PHONY: validate
validate: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/validate.sh $(BUILD)

# Speed against the host's peak and ONNX Runtime; records docs/performance.md.
bench: deps-test
	@$(MAKE) --no-print-directory all
	@sh bench/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(SANBUILD) $(RELBUILD)
