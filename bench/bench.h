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
/* Runs `python3 bench/peers.py workload variant` and returns the number it prints
   (b_skip when python3 is absent, b_fail when it breaks). $MPBENCH_PYTHON names the
   interpreter, $MPBENCH_PEERS the script (default: ../bench/peers.py next to the
   executable, then bench/peers.py). */
double b_python(const char *workload, const char *variant);

#define B__CAT2(a, b) a##b
#define B__CAT(a, b) B__CAT2(a, b)
#define BENCH(fn, workload, system, unit, better) BENCH_N(fn, workload, system, unit, better, 0)
#define BENCH_N(fn, workload, system, unit, better, max_runs)                       \
    static double fn(void);                                                         \
    __attribute__((constructor)) static void B__CAT(b_reg_, fn)(void) {             \
        b_register_n(workload, system, unit, better, fn, max_runs);                 \
    }                                                                               \
    static double fn(void)

#ifdef __cplusplus
}
#endif
#endif
