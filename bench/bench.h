/* The benchmark harness. Each BENCH is one (workload, system) pair: a function that
   does the workload's work once and returns the figure in the given unit. The driver
   runs every pair several times, interleaved, and reports medians and ratios. */
#ifndef MP_BENCH_H
#define MP_BENCH_H
#include <math.h>
#include <stdbool.h>

typedef double (*b_fn)(void);
/* better: +1 if higher is better (msg/s), -1 if lower is better (ns, us). */
void b_register(const char *workload, const char *system, const char *unit, int better, b_fn fn);
/* Return this from a BENCH when the peer cannot run here; msg says why, once. */
double b_skip(const char *msg);
double b_now(void); /* seconds, CLOCK_MONOTONIC */

#define B__CAT2(a, b) a##b
#define B__CAT(a, b) B__CAT2(a, b)
#define BENCH(fn, workload, system, unit, better)                                   \
    static double fn(void);                                                         \
    __attribute__((constructor)) static void B__CAT(b_reg_, fn)(void) {             \
        b_register(workload, system, unit, better, fn);                             \
    }                                                                               \
    static double fn(void)
#endif
