# mp.h - build, test, check, bench. Everything lands in build/.
CC      ?= cc
CXX     ?= c++
OPT     ?= -O2 -g
WARN    := -Wall -Wextra -Werror
STD     ?= -std=c11
LIBS    := -pthread -lrt
PREFIX  ?= /usr/local
B       := build

TEST_SRC    := $(sort $(wildcard tests/*.c))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLES    := $(patsubst examples/%.c,$(B)/examples/%,$(EXAMPLE_SRC))
BENCH_SRC   := $(sort $(wildcard bench/*.c))

.PHONY: all examples test check check-asan check-valgrind check-matrix bench install clean \
	torture torture-short fuzz

all: examples

examples: $(EXAMPLES)

$(B)/examples/%: examples/%.c mp.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(OPT) -I. $< -o $@ -pthread

$(B)/runner: $(TEST_SRC) tests/test.h mp.h
	@mkdir -p $(B)
	$(CC) $(STD) $(WARN) $(OPT) -I. $(TEST_SRC) -o $@ $(LIBS)

# The tests run the examples too, so they are built first.
test: $(B)/runner examples
	MP_EXAMPLES_DIR=$(B)/examples $(B)/runner $(T)

# --- make check: sanitizers, valgrind, the compile matrix -------------------------
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

$(B)/runner-asan: $(TEST_SRC) tests/test.h mp.h
	@mkdir -p $(B)
	$(CC) $(STD) $(WARN) -O1 -g $(SAN) -I. $(TEST_SRC) -o $@ $(LIBS)

$(B)/runner-vg: $(TEST_SRC) tests/test.h mp.h
	@mkdir -p $(B)
	$(CC) $(STD) $(WARN) -O1 -g -I. $(TEST_SRC) -o $@ $(LIBS)

check-asan: $(B)/runner-asan examples
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	MP_TEST_TIMEOUT_SCALE=3 MP_EXAMPLES_DIR=$(B)/examples $(B)/runner-asan $(T)

VALGRIND := valgrind -q --trace-children=yes --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite --track-fds=yes \
	--child-silent-after-fork=no

# Excluded under valgrind: SIGTERM sent to a child in the instant after fork is
# sometimes lost in valgrind's fork emulation (seen in 4 of 4 valgrind runs of the process tests, never natively,
# never under ASan, never with a plain fork+kill loop outside the suite).
VG_EXCLUDE := -x process_hundred_terminated_right_after_start

check-valgrind: $(B)/runner-vg
	MP_TEST_SLOW=1 MP_TEST_TIMEOUT_SCALE=10 MP_EXAMPLES_DIR=$(B)/examples \
	$(VALGRIND) $(B)/runner-vg $(VG_EXCLUDE) $(T)

# gcc and clang, C99 and C11, and the whole header compiled as C++.
check-matrix:
	@mkdir -p $(B)/matrix
	@for cc in gcc clang; do for std in c99 c11; do \
	  echo "  $$cc -std=$$std"; \
	  $$cc -std=$$std $(WARN) -O2 -I. -c tests/mp_impl.c -o $(B)/matrix/impl-$$cc-$$std.o || exit 1; \
	  $$cc -std=$$std $(WARN) -O2 -I. -x c -c mp.h -o $(B)/matrix/decl-$$cc-$$std.o || exit 1; \
	done; done
	@for cxx in g++ clang++; do \
	  echo "  $$cxx -x c++"; \
	  $$cxx -std=c++11 $(WARN) -O2 -I. -x c++ -c tests/mp_impl.c -o $(B)/matrix/impl-$$cxx.o || exit 1; \
	done
	@echo "compile matrix clean"

check: check-matrix check-asan check-valgrind torture-short

# --- make torture: SIGKILL at random instants (TORTURE_SECONDS, default 300) ---------
TORTURE_SECONDS ?= 300

$(B)/torture: tests/torture/torture.c mp.h
	@mkdir -p $(B)
	$(CC) $(STD) $(WARN) $(OPT) -I. $< -o $@ $(LIBS)

torture: $(B)/torture
	TORTURE_SECONDS=$(TORTURE_SECONDS) $(B)/torture

torture-short: $(B)/torture
	TORTURE_SECONDS=20 $(B)/torture

# --- make fuzz: libFuzzer on the connection framing (needs clang's libFuzzer runtime) -
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang

$(B)/fuzz_conn: fuzz/fuzz_conn.c mp.h
	@mkdir -p $(B)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -I. $< -o $@ -pthread

# New inputs go to build/fuzz-corpus; fuzz/corpus holds the seeds (and past findings).
fuzz: $(B)/fuzz_conn
	@mkdir -p $(B)/fuzz-corpus
	$(B)/fuzz_conn -max_total_time=$(FUZZ_SECONDS) -max_len=131072 -timeout=10 \
	  -malloc_limit_mb=64 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(B)/ \
	  $(B)/fuzz-corpus fuzz/corpus

# --- make bench ---------------------------------------------------------------------
$(B)/mpbench: $(BENCH_SRC) mp.h $(wildcard bench/*.h)
	@mkdir -p $(B)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -I. $(BENCH_SRC) -o $@ $(LIBS)

bench: $(B)/mpbench
	$(B)/mpbench $(W)

install:
	install -d $(DESTDIR)$(PREFIX)/include
	install -m 644 mp.h $(DESTDIR)$(PREFIX)/include/mp.h

clean:
	rm -rf $(B)
