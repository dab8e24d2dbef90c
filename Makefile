# fanpull's entry points. `make demo` and `make test` each install the Debian packages that are
# missing, configure, build (with ccache when present) and run.
BUILD ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=

FUZZ_SECONDS ?= 60

# ccache shares objects between clones of the repository at different paths (CI builds a fresh
# clone): paths under the clone are hashed relative to it.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1

.PHONY: all deps kafka-deps deploy-deps configure build demo test test-unit test-integration test-slow \
	test-kafka test-asan test-tsan bench bench-kafka fuzz fuzz-ci ci clean

all: build

deps:
	@scripts/install-deps

# The real Apache Kafka broker of the `kafka` test tier and the benchmarks (a JRE, Maven and the
# broker's jars from Maven Central, cached in .cache/kafka once). `make demo` never needs it.
kafka-deps:
	@scripts/install-kafka >/dev/null

# The checkers of the deployment kit (deploy/): promtool and systemd-analyze, for the unit tier.
deploy-deps:
	@scripts/install-deps prometheus systemd >/dev/null

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DFANPULL_WERROR=ON $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	./$(BUILD)/fanpull demo

test: build kafka-deps deploy-deps
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-unit: build deploy-deps
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L unit

test-integration: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L integration

test-slow: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L slow

# Against a real Apache Kafka broker (one per test process, started by scripts/kafka-broker).
test-kafka: build kafka-deps
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L kafka

# Sanitizer builds (warnings are not errors there: gcc's instrumentation warns in system headers;
# -O1 -g1 keeps them quick to build and to run). AddressSanitizer + UndefinedBehaviorSanitizer on
# the unit and integration tiers (child processes run instrumented too); ThreadSanitizer on the
# tests listed in tests/tsan-tests.txt, where threads meet.
SAN_FLAGS = -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DFANPULL_BENCH=OFF -DFANPULL_WERROR=ON
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp

test-asan: deps deploy-deps
	@cmake -S . -B build-asan $(SAN_FLAGS) -DFANPULL_SANITIZE=address,undefined $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && $(SAN_ENV) ctest --output-on-failure -j$(JOBS) -L 'unit|integration'

test-tsan: deps
	@cmake -S . -B build-tsan $(SAN_FLAGS) -DFANPULL_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	@$(SAN_ENV) scripts/run-listed-tests build-tsan tests/tsan-tests.txt $(JOBS)

# Everything CI runs: the tests, both sanitizer builds and a bounded fuzzing run.
ci: test test-asan test-tsan fuzz-ci

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

# The worker benchmarks on both brokers, side by side (medians of 3 runs each).
bench-kafka: build kafka-deps
	cmake --build $(BUILD) -j$(JOBS) --target bench
	scripts/bench-brokers 3 $(BUILD)

# libFuzzer targets (job parser, getFans answer parser, config and tenants loaders), each run for
# FUZZ_SECONDS on its corpus in fuzz/corpus/ (new inputs found go to build-fuzz/corpus-*).
fuzz:
	@scripts/install-deps clang-14 libclang-rt-14-dev
	@CXX=clang++-14 cmake -S . -B build-fuzz -DFANPULL_FUZZ=ON -DFANPULL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@for t in job page config; do \
	  mkdir -p build-fuzz/corpus-$$t && \
	  ./build-fuzz/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    build-fuzz/corpus-$$t fuzz/corpus/$$t || exit 1; \
	done

# The fuzz targets for a bounded time each, as CI runs them.
fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(or $(FUZZ_CI_SECONDS),30)

clean:
	rm -rf $(BUILD) build-fuzz build-asan build-tsan
