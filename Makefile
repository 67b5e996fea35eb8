# The front door. Every target installs what it needs (scripts/install-deps), then delegates to
# CMake and ctest. Two build trees: build/ (optimised, with debug info) and build-asan/
# (AddressSanitizer + UndefinedBehaviorSanitizer); `make check` runs the tests in both.

JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
BUILD     ?= build
ASAN      ?= build-asan
COVER     ?= build-coverage
CTEST_ARGS ?=
PREFIX    ?= /usr/local
C_SOURCES  = $(shell find include src tools tests bench examples \( -name '*.[ch]' -o -name '*.cc' \) 2>/dev/null)

export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
# OpenSSL's process-wide caches, kept until exit (see the file).
export LSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/lsan.supp

.PHONY: all deps build asan check check-fast format format-check lint coverage demo bench soak \
        torture mutants install deb docs clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(ASAN)/CMakeCache.txt: | deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DPLATOON_SANITIZE=ON

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

asan: deps $(ASAN)/CMakeCache.txt
	cmake --build $(ASAN) -j $(JOBS)

# All default suites (unit, sim, cluster) in both configurations, after the format check.
check: format-check build asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)
	cd $(ASAN) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# Unit tests of the optimised build only: the quick loop while editing.
check-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

format: deps
	clang-format -i $(C_SOURCES)

format-check: deps
	@clang-format --dry-run --Werror $(C_SOURCES) && echo "format-check: all C files formatted"

lint: build
	clang-tidy -p $(BUILD) --quiet $(filter %.c,$(C_SOURCES))
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	    --inline-suppr --suppress=missingIncludeSystem -I include -I src \
	    $(filter-out tests/%,$(filter %.c,$(C_SOURCES)))

coverage: deps
	cmake -S . -B $(COVER) -DCMAKE_BUILD_TYPE=Debug -DPLATOON_COVERAGE=ON
	cmake --build $(COVER) -j $(JOBS)
	cd $(COVER) && ctest -j $(JOBS) -L 'unit|sim|cluster'
	gcovr -r . --object-directory $(COVER) --filter 'src/' --filter 'tools/' --print-summary \
	    --html-details $(COVER)/coverage.html | tail -n 40
	@echo "coverage report: $(COVER)/coverage.html"

demo: build
	@if [ -x scripts/demo ]; then scripts/demo $(BUILD)/bin; else \
	  echo "make demo: the demo cluster is not there yet (it needs platoond and platoonctl)."; \
	  exit 1; fi

bench: build
	@scripts/install-deps --bench
	@if [ -x bench/run ]; then bench/run $(BUILD); else \
	  echo "make bench: no benchmarks are there yet."; exit 1; fi

soak: build
	@if [ -x $(BUILD)/bin/platoon-sim ]; then $(BUILD)/bin/platoon-sim --soak --mix; else \
	  echo "make soak: the simulator is not there yet."; exit 1; fi

torture: build
	@if [ -x tests/cluster/torture ]; then tests/cluster/torture $(BUILD)/bin; else \
	  echo "make torture: the fault-injection suite is not there yet."; exit 1; fi

# Plants each bug of tests/sim/mutants/catalogue.txt in a scratch copy of the tree (build-mutants/),
# two at a time, and prints which layer catches it: the raft unit tests, the simulation (after
# how many seeds of its event mix, up to 500), safety or liveness.
MUTANT_ARGS ?=
mutants: deps
	tests/sim/mutants/run --jobs 2 --seeds 500 $(MUTANT_ARGS)

# The libraries, headers, pkg-config files, programs and manual pages under $(PREFIX); no root
# needed for a prefix of one's own (make install PREFIX=$$HOME/.local). DESTDIR stages as usual.
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Debian packages (libplatoon1, libplatoon-dev, platoon) in $(BUILD)/packages.
deb: build
	cd $(BUILD) && cpack -G DEB
	@ls -1 $(BUILD)/packages/*.deb

# The API reference of the public headers, warnings as errors: $(BUILD)/docs/html/index.html.
# Doxygen is installed on demand (scripts/install-deps --docs): `make check` does not need it.
docs:
	@scripts/install-deps --docs
	@mkdir -p $(BUILD)/docs
	PLATOON_DOCS_OUT=$(BUILD)/docs \
	PLATOON_VERSION=$$(sed -n 's/^project(platoon VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt) \
	    doxygen docs/api/Doxyfile
	@echo "docs: $(BUILD)/docs/html/index.html"

clean:
	rm -rf $(BUILD) $(ASAN) $(COVER) build-mutants
