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
EXAMPLE_CXX := $(sort $(wildcard examples/*.cpp))
EXAMPLES    := $(patsubst examples/%.c,$(B)/examples/%,$(EXAMPLE_SRC)) \
               $(patsubst examples/%.cpp,$(B)/examples/%,$(EXAMPLE_CXX))
BENCH_SRC   := $(sort $(wildcard bench/*.c))

.PHONY: all examples test check check-asan check-valgrind check-matrix check-bench-probe bench bench-skipped bench-deps bench-plot install clean \
	torture torture-short fuzz fuzz-handshake fuzz-manager

all: examples

examples: $(EXAMPLES)

$(B)/examples/%: examples/%.c mp.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(OPT) -I. $< -o $@ -pthread

$(B)/examples/%: examples/%.cpp mp.h
	@mkdir -p $(dir $@)
	$(CXX) -std=c++11 $(WARN) $(OPT) -I. $< -o $@ -pthread

$(B)/runner: $(TEST_SRC) $(wildcard tests/*.h) mp.h
	@mkdir -p $(B)
	$(CC) $(STD) $(WARN) $(OPT) -I. $(TEST_SRC) -o $@ $(LIBS)

# A program the tests exec: unrelated to the runner, it attaches to a named heap.
$(B)/named_peer: tests/peer/named_peer.c mp.h
	@mkdir -p $(B)
	$(CC) $(STD) $(WARN) $(OPT) $< -o $@ $(LIBS)

# The tests run the examples and the peer too, so they are built first.
# The process and pool tests run a second time with the forkserver as the start method.
FS_AGAIN := MP_TEST_FORKSERVER_AGAIN=process_,pool_,manager_,dict_served

test: $(B)/runner examples $(B)/named_peer
	$(FS_AGAIN) MP_EXAMPLES_DIR=$(B)/examples MP_TEST_PEER=$(B)/named_peer $(B)/runner $(T)

# --- make check: sanitizers, valgrind, the compile matrix -------------------------
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

$(B)/runner-asan: $(TEST_SRC) $(wildcard tests/*.h) mp.h
	@mkdir -p $(B)
	$(CC) $(STD) $(WARN) -O1 -g $(SAN) -I. $(TEST_SRC) -o $@ $(LIBS)

$(B)/runner-vg: $(TEST_SRC) $(wildcard tests/*.h) mp.h
	@mkdir -p $(B)
	$(CC) $(STD) $(WARN) -O1 -g -I. $(TEST_SRC) -o $@ $(LIBS)

check-asan: $(B)/runner-asan examples $(B)/named_peer
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	$(FS_AGAIN) MP_TEST_TIMEOUT_SCALE=3 MP_EXAMPLES_DIR=$(B)/examples MP_TEST_PEER=$(B)/named_peer $(B)/runner-asan $(T)

# Valgrind writes one log per process into VG_LOGDIR (so the examples' own stderr stays
# theirs); a process with an error exits 99 and fails its test, and the logs that hold
# errors are printed at the end. Some tests run children as user nobody, so the
# directory sits in /tmp, world-writable: the checkout may be in a directory nobody
# cannot enter. --vgdb=no: each process would make three FIFOs /tmp/vgdb-*-<pid>-*;
# a killed process, or one that became nobody, leaves its root-owned ones behind, and a
# later process of user nobody given the same pid fails on them, and its test with it
# (process_nproc_limit_is_clean_error: with leftovers made for the pids to come, 3 of 3
# runs failed; with --vgdb=no, 4 of 4 passed).
VG_LOGDIR ?= /tmp/mp-valgrind
VALGRIND := valgrind -q --vgdb=no --trace-children=yes --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite --track-fds=yes \
	--child-silent-after-fork=no --log-file=$(VG_LOGDIR)/%p.log

# Excluded under valgrind: SIGTERM sent to a child in the instant after fork is
# sometimes lost in valgrind's fork emulation (seen in 4 of 4 valgrind runs of the process tests, never natively,
# never under ASan, never with a plain fork+kill loop outside the suite).
VG_EXCLUDE := -x process_hundred_terminated_right_after_start

check-valgrind: $(B)/runner-vg examples $(B)/named_peer
	@rm -rf $(VG_LOGDIR) && mkdir -p $(VG_LOGDIR) && chmod 1777 $(VG_LOGDIR)
	$(FS_AGAIN) MP_TEST_SLOW=1 MP_TEST_TIMEOUT_SCALE=10 MP_EXAMPLES_DIR=$(B)/examples MP_TEST_PEER=$(B)/named_peer \
	$(VALGRIND) $(B)/runner-vg $(VG_EXCLUDE) $(T) || \
	{ grep -lE 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' $(VG_LOGDIR)/*.log | xargs -r cat; exit 1; }

# gcc and clang, C99 and C11, -pedantic, the whole header compiled as C++, and a
# user's private MP_STATIC copy that uses only a few functions.
PEDANTIC := $(WARN) -pedantic
check-matrix:
	@mkdir -p $(B)/matrix
	@for cc in gcc clang; do for std in c99 c11; do \
	  echo "  $$cc -std=$$std -pedantic, and MP_STATIC"; \
	  $$cc -std=$$std $(PEDANTIC) -O2 -I. -c tests/mp_impl.c -o $(B)/matrix/impl-$$cc-$$std.o || exit 1; \
	  $$cc -std=$$std $(PEDANTIC) -O2 -I. -x c -c mp.h -o $(B)/matrix/decl-$$cc-$$std.o || exit 1; \
	  $$cc -std=$$std $(PEDANTIC) -O2 tests/matrix/mp_static.c -o $(B)/matrix/static-$$cc-$$std -pthread || exit 1; \
	  $(B)/matrix/static-$$cc-$$std >/dev/null || exit 1; \
	done; done
	@for cxx in g++ clang++; do \
	  echo "  $$cxx -x c++ -pedantic, and MP_STATIC"; \
	  $$cxx -std=c++11 $(PEDANTIC) -O2 -I. -x c++ -c tests/mp_impl.c -o $(B)/matrix/impl-$$cxx.o || exit 1; \
	  $$cxx -std=c++11 $(PEDANTIC) -O2 -x c++ tests/matrix/mp_static.c -o $(B)/matrix/static-$$cxx -pthread || exit 1; \
	  $(B)/matrix/static-$$cxx >/dev/null || exit 1; \
	  for ex in $(EXAMPLE_CXX); do \
	    $$cxx -std=c++11 $(PEDANTIC) -O2 -I. -c $$ex -o $(B)/matrix/$$(basename $$ex .cpp)-$$cxx.o || exit 1; \
	  done; \
	done
	@echo "compile matrix clean"

check: check-matrix check-bench-probe check-asan check-valgrind torture-short

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

$(B)/fuzz_conn: fuzz/fuzz_conn.c fuzz/fuzz.h mp.h
	@mkdir -p $(B)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -I. $< -o $@ -pthread

# New inputs go to build/fuzz-corpus; fuzz/corpus holds the seeds (and past findings).
fuzz: $(B)/fuzz_conn
	@mkdir -p $(B)/fuzz-corpus
	$(B)/fuzz_conn -max_total_time=$(FUZZ_SECONDS) -max_len=131072 -timeout=10 \
	  -malloc_limit_mb=64 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(B)/ \
	  $(B)/fuzz-corpus fuzz/corpus

# The handshake (mp_listener_accept / mp_client's authentication) driven by a peer
# thread with arbitrary bytes; seeds in fuzz/corpus-handshake.
$(B)/fuzz_handshake: fuzz/fuzz_handshake.c fuzz/fuzz.h mp.h
	@mkdir -p $(B)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -I. $< -o $@ -pthread

fuzz-handshake: $(B)/fuzz_handshake
	@mkdir -p $(B)/fuzz-corpus-handshake
	$(B)/fuzz_handshake -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
	  -malloc_limit_mb=64 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(B)/ \
	  $(B)/fuzz-corpus-handshake fuzz/corpus-handshake

# The Manager's request handler (an authenticated client's requests), called on the
# fuzzer's bytes; seeds in fuzz/corpus-manager.
$(B)/fuzz_manager: fuzz/fuzz_manager.c fuzz/fuzz.h mp.h
	@mkdir -p $(B)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -I. $< -o $@ -pthread

fuzz-manager: $(B)/fuzz_manager
	@mkdir -p $(B)/fuzz-corpus-manager
	$(B)/fuzz_manager -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	  -malloc_limit_mb=64 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(B)/ \
	  $(B)/fuzz-corpus-manager fuzz/corpus-manager

# --- make bench ---------------------------------------------------------------------
# build/mpbench: every bench/*.c and bench/*.cpp. The optional peers are compiled in
# when their headers are found (Boost.Interprocess: libboost-dev; ZeroMQ: libzmq3-dev);
# otherwise they report themselves skipped. make bench-deps installs them.
BENCH_CXX_SRC = $(sort $(wildcard bench/*.cpp))
# Each probe compiles (ZeroMQ: and links) a real program, once per make run. The
# headers' names are variables so that make check can hide them (check-bench-probe).
H := \#
BOOST_HEADER ?= boost/interprocess/ipc/message_queue.hpp
ZMQ_HEADER   ?= zmq.h
HAVE_CXX   = $(eval HAVE_CXX := $(shell command -v $(CXX) >/dev/null 2>&1 && echo 1 || echo 0))$(HAVE_CXX)
HAVE_BOOST = $(eval HAVE_BOOST := $(if $(filter 1,$(HAVE_CXX)),$(shell printf '$(H)include <$(BOOST_HEADER)>\nint main() { return 0; }\n' | \
	$(CXX) -std=c++11 -x c++ -fsyntax-only - >/dev/null 2>&1 && echo 1 || echo 0),0))$(HAVE_BOOST)
HAVE_ZMQ   = $(eval HAVE_ZMQ := $(shell printf '$(H)include <$(ZMQ_HEADER)>\nint main(void) { int a, b, c; zmq_version(&a, &b, &c); return 0; }\n' | \
	$(CC) -x c - -o /dev/null -lzmq >/dev/null 2>&1 && echo 1 || echo 0))$(HAVE_ZMQ)
BENCH_FLAGS = -O2 -g -Wall -Wextra -I. -DMPB_HAVE_BOOST=$(HAVE_BOOST) -DMPB_HAVE_ZMQ=$(HAVE_ZMQ)
BENCH_OBJ = $(patsubst bench/%.c,$(B)/bench/%.o,$(BENCH_SRC)) \
            $(if $(filter 1,$(HAVE_CXX)),$(patsubst bench/%.cpp,$(B)/bench/%.o,$(BENCH_CXX_SRC)))
BENCH_LD  = $(if $(filter 1,$(HAVE_CXX)),$(CXX),$(CC))
BENCH_LIBS = $(LIBS) -lm $(if $(filter 1,$(HAVE_ZMQ)),-lzmq)

# The flags in a file that changes when they do: installing a peer rebuilds the bench.
$(B)/bench/flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(BENCH_FLAGS) $(BENCH_LIBS)' | cmp -s - $@ || echo '$(BENCH_FLAGS) $(BENCH_LIBS)' > $@

$(B)/bench/%.o: bench/%.c mp.h $(wildcard bench/*.h) $(B)/bench/flags
	$(CC) -std=gnu11 $(BENCH_FLAGS) -c $< -o $@

$(B)/bench/%.o: bench/%.cpp $(wildcard bench/*.h) $(B)/bench/flags
	$(CXX) -std=c++11 $(BENCH_FLAGS) -c $< -o $@

$(B)/mpbench: $(BENCH_OBJ)
	$(BENCH_LD) $^ -o $@ $(BENCH_LIBS)

.PHONY: FORCE
FORCE:

# W=workload-or-prefix... limits the run; R=runs (default 5).
bench: $(B)/mpbench
	@$(MAKE) --no-print-directory bench-skipped
	$(B)/mpbench -r $(or $(R),5) -c $(B)/bench.csv -m $(B)/bench.md -p $(B)/bench.dat $(W)

bench-skipped:
	@[ -n "$(filter 1,$(HAVE_CXX))" ] || echo "# skipped: the C++ peers ($(CXX) not found): Boost.Interprocess"
	@[ -n "$(filter 1,$(HAVE_BOOST))" ] || echo "# skipped: Boost.Interprocess peer (<$(BOOST_HEADER)> not found): make bench-deps (libboost-dev)"
	@[ -n "$(filter 1,$(HAVE_ZMQ))" ] || echo "# skipped: ZeroMQ peer (<$(ZMQ_HEADER)> or -lzmq not found): make bench-deps (libzmq3-dev)"
	@command -v python3 >/dev/null 2>&1 || echo "# skipped: the Python peers (python3 not found)"

# make check: the bench builds and runs with the optional peers' headers hidden, and
# says which peers it skipped (a machine with only cc, make and python3).
check-bench-probe:
	@$(MAKE) --no-print-directory B=$(B)/bench-probe ZMQ_HEADER=mp-hidden/zmq.h \
	  BOOST_HEADER=mp-hidden/message_queue.hpp bench-skipped $(B)/bench-probe/mpbench >$(B)/bench-probe.log 2>&1 || \
	  { cat $(B)/bench-probe.log; exit 1; }
	@grep -q 'skipped: ZeroMQ' $(B)/bench-probe.log && grep -q 'skipped: Boost' $(B)/bench-probe.log || \
	  { cat $(B)/bench-probe.log; echo "bench probe: the hidden peers were not reported"; exit 1; }
	@grep -q -- '-DMPB_HAVE_BOOST=0 -DMPB_HAVE_ZMQ=0' $(B)/bench-probe/bench/flags || \
	  { echo "bench probe: a hidden peer was still built"; exit 1; }
	@$(B)/bench-probe/mpbench -r 1 -s ZeroMQ pingpong_64B 2>&1 | grep -q 'skipped' || \
	  { echo "bench probe: the ZeroMQ pair did not report itself skipped"; exit 1; }
	@echo "bench builds without the optional peers, and says so"

# The optional peers and the plotter, from Debian's packages (as root, else with sudo).
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
bench-deps:
	@echo "installing the optional peers: libboost-dev libzmq3-dev gnuplot-nox python3"
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y libboost-dev libzmq3-dev gnuplot-nox python3

# docs/bench.png from the last make bench (build/bench.dat).
bench-plot:
	@[ -f $(B)/bench.dat ] || { echo "no $(B)/bench.dat: run make bench first"; exit 1; }
	@command -v gnuplot >/dev/null || { echo "gnuplot not found: make bench-deps"; exit 1; }
	@mkdir -p docs
	gnuplot -e "datafile='$(B)/bench.dat'; outfile='docs/bench.png'" bench/plot.gp
	@echo "wrote docs/bench.png"

install:
	install -d $(DESTDIR)$(PREFIX)/include
	install -m 644 mp.h $(DESTDIR)$(PREFIX)/include/mp.h

clean:
	rm -rf $(B)
