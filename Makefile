# fanpull's entry points. `make demo` and `make test` each install the Debian packages that are
# missing, configure, build (with ccache when present) and run.
BUILD ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=

FUZZ_SECONDS ?= 60

.PHONY: all deps configure build demo test test-unit test-integration test-slow bench fuzz clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DFANPULL_WERROR=ON $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	./$(BUILD)/fanpull demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L unit

test-integration: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L integration

test-slow: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L slow

bench: build
	cmake --build $(BUILD) -j$(JOBS) --target bench
	./$(BUILD)/bench/bench_parse
	./$(BUILD)/bench/bench_sandbox
	./$(BUILD)/bench/bench_worker_overhead
	./$(BUILD)/bench/bench_latency_fleet
	./$(BUILD)/bench/bench_rate_limit
	./$(BUILD)/bench/bench_quota
	./$(BUILD)/bench/bench_memory
	./$(BUILD)/bench/bench_token_storm

# libFuzzer targets (job parser, getFans answer parser, config and tenants loaders), each run for
# FUZZ_SECONDS on its corpus in fuzz/corpus/ (new inputs found go to build-fuzz/corpus-*).
fuzz:
	@scripts/install-deps clang-14 libclang-rt-14-dev
	@CXX=clang++-14 cmake -S . -B build-fuzz -DFANPULL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@for t in job page config; do \
	  mkdir -p build-fuzz/corpus-$$t && \
	  ./build-fuzz/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    build-fuzz/corpus-$$t fuzz/corpus/$$t || exit 1; \
	done

clean:
	rm -rf $(BUILD) build-fuzz
