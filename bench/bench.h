/* The benchmark harness. Each BENCH is one (workload, system) pair: a function that
   does the workload's work once and returns the figure in the given unit. The driver
   (bench/mpbench.c) runs every pair several times, interleaved, each run in a fresh
   forked process (so a run that hangs or crashes cannot take the others down), and
   reports medians, spreads, mp.h's ratio to every peer, and the targets of
   BENCHMARKS.md.

   System names: a name starting with "mp.h" is mp.h ("mp.h", "mp.h pipe"); a name
   ending with "(limit)" is a hardware-ish reference, not a peer; anything else is a
   peer, and every mp.h system is compared with every peer of its workload. */
#ifndef MP_BENCH_H
#define MP_BENCH_H
#include <math.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef double (*b_fn)(void);
/* better: +1 if higher is better (msg/s), -1 if lower is better (ns, us). */
void b_register(const char *workload, const char *system, const char *unit, int better, b_fn fn);
/* The same, with at most max_runs runs (0 = the driver's -r); for slow peers. */
void b_register_n(const char *workload, const char *system, const char *unit, int better,
                  b_fn fn, int max_runs);
/* Return this from a BENCH when the peer cannot run here; msg says why, once. */
double b_skip(const char *msg);
/* Return this when the run went wrong (lost a message, a call failed): reported as
   FAILED with msg, and the pair is not run again. */
double b_fail(const char *msg);
/* A remark shown beside the figure (scaled counts, versions, deviations). */
void b_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
double b_now(void); /* seconds, CLOCK_MONOTONIC (the same clock in every process) */
/* All n bytes written to (out) or read from fd, on a pipe or a socket, across EINTR and
   partial transfers; false at EOF or on an error. */
bool b_full(int fd, void *p, size_t n, bool out);
/* Runs `python3 bench/peers.py workload variant` and returns the number it prints
   (b_skip when python3 is absent, b_fail when it breaks). $MPBENCH_PYTHON names the
   interpreter, $MPBENCH_PEERS the script (default: ../bench/peers.py next to the
   executable, then bench/peers.py). */
double b_python(const char *workload, const char *variant);

/* ---- placement: where the parties of a run are pinned ------------------------------
   A workload whose processes talk to each other (a queue's producer and consumer, the
   two sides of a ping-pong, two processes contending for a lock) declares itself
   two-party, once, in any bench file:

       BENCH_TWO_PARTY("pingpong_64B")

   and every system of it then runs in two placements, pinned with sched_setaffinity:
   "cross", party i on the (i mod n)th of the n CPUs the driver may use (two parties:
   each on its own CPU), and "shared", every party on the first CPU. A machine with
   one CPU runs only "shared". Each party pins itself first thing, by calling
   b_party(i) (the process that runs the BENCH function, if it is a party) or by being
   forked with b_fork_party(i) (pb_fork of peer.h does this; a child started another
   way, mp_process_start say, calls b_party(i) first thing; the pinning survives an
   exec). The Python peers do the same in bench/peers.py (party(i, fn, args) makes a
   Process that pins itself). A run of a placed workload in which fewer than two
   parties pinned themselves FAILS, so a party that forgot cannot pass for pinned.
   Workloads not declared run where the scheduler puts them (placement "-"); one of
   many parties (queue_NpNc_64B) can declare BENCH_PLACED(workload, B_CROSS) alone. */
enum { B_CROSS = 1, B_SHARED = 2 };
void b_placements(const char *workload, int placements);
/* Pins the calling process as party i of the run (nothing when the run is not placed). */
void b_party(int i);
/* A system of a placed workload that is one process (the local dict beside the served
   ones): it pins itself as party 0 and the run counts as placed with that one party.
   Both placements then run it alone on one CPU; its note should say so. */
void b_one_process(void);
/* fork(); the child first pins itself as party i. */
pid_t b_fork_party(int i);
/* The CPUs of the run's parties for a program that pins its own ("0,1": party i takes
   the (i mod n)th), or NULL when the run is not placed. b_python passes it to peers.py
   as $MPBENCH_PARTY_CPUS; a party that pinned itself there reports it with
   b_party_pinned() (b_python does, for each "pinned" line peers.py prints). */
const char *b_party_cpus(void);
void b_party_pinned(void);

/* ---- scale workloads: one workload, a curve over n ---------------------------------
   fn(n) runs the workload with n participants (producers, workers); each n is its own
   group in the report (workload/N=n), compared only with the peers at the same n.
   ns: the values of n, count of them; count 0 means 1, 2, ... up to the CPUs the
   driver may use (mp_cpu_count() on an unrestricted machine). */
typedef double (*b_fn_n)(int n);
void b_register_scale(const char *workload, const char *system, const char *unit, int better,
                      b_fn_n fn, const int *ns, int count);
/* The CPUs the driver may use (its affinity mask), at least 1. */
int b_ncpus(void);

#define B__CAT2(a, b) a##b
#define B__CAT(a, b) B__CAT2(a, b)
#define BENCH(fn, workload, system, unit, better) BENCH_N(fn, workload, system, unit, better, 0)
#define BENCH_N(fn, workload, system, unit, better, max_runs)                       \
    static double fn(void);                                                         \
    __attribute__((constructor)) static void B__CAT(b_reg_, fn)(void) {             \
        b_register_n(workload, system, unit, better, fn, max_runs);                 \
    }                                                                               \
    static double fn(void)

#define BENCH_PLACED(workload, placements)                                           \
    __attribute__((constructor)) static void B__CAT(b_place_, __LINE__)(void) {       \
        b_placements(workload, placements);                                          \
    }
#define BENCH_TWO_PARTY(workload) BENCH_PLACED(workload, B_CROSS | B_SHARED)

/* BENCH_SCALE(fn, workload, system, unit, better, n...): static double fn(int n). */
#define BENCH_SCALE(fn, workload, system, unit, better, ...)                          \
    static double fn(int n);                                                          \
    __attribute__((constructor)) static void B__CAT(b_reg_, fn)(void) {               \
        static const int ns_[] = {__VA_ARGS__};                                       \
        b_register_scale(workload, system, unit, better, fn, ns_,                     \
                         ns_[0] ? (int)(sizeof ns_ / sizeof ns_[0]) : 0);            \
    }                                                                                 \
    static double fn(int n)

#ifdef __cplusplus
}
#endif
#endif
