/* mpbench [-r repeats] [workload...]: every workload of BENCHMARKS.md for mp.h and
   its peers, run side by side; one line per measurement, then ratios. */
#define _GNU_SOURCE
#include "bench.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *workload, *system, *unit;
    int better;
    b_fn fn;
    double samples[32];
    int n;
    bool skipped;
} b_case;

static b_case b_cases[256];
static int b_ncases;
static const char *b_skip_msg;

void b_register(const char *workload, const char *system, const char *unit, int better, b_fn fn) {
    if (b_ncases < 256) b_cases[b_ncases++] = (b_case){workload, system, unit, better, fn, {0}, 0, false};
}

double b_skip(const char *msg) {
    b_skip_msg = msg;
    return NAN;
}

double b_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int b_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double b_median(b_case *c) {
    double s[32];
    memcpy(s, c->samples, sizeof(double) * (size_t)c->n);
    qsort(s, (size_t)c->n, sizeof(double), b_cmp);
    return c->n % 2 ? s[c->n / 2] : (s[c->n / 2 - 1] + s[c->n / 2]) / 2;
}

static bool b_selected(const char *w, int argc, char **argv, int first) {
    if (first >= argc) return true;
    for (int i = first; i < argc; i++)
        if (strcmp(argv[i], w) == 0) return true;
    return false;
}

int main(int argc, char **argv) {
    int repeats = 5, first = 1;
    if (argc > 2 && strcmp(argv[1], "-r") == 0) {
        repeats = atoi(argv[2]);
        first = 3;
    }
    if (repeats < 1 || repeats > 32) repeats = 5;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int r = 0; r < repeats; r++) {
        for (int i = 0; i < b_ncases; i++) {
            b_case *c = &b_cases[i];
            if (c->skipped || !b_selected(c->workload, argc, argv, first)) continue;
            b_skip_msg = NULL;
            double v = c->fn();
            if (v != v) {
                c->skipped = true;
                printf("# %s %s skipped: %s\n", c->workload, c->system, b_skip_msg ? b_skip_msg : "");
                continue;
            }
            c->samples[c->n++] = v;
        }
    }
    printf("\n# name system median unit (min..max of %d runs)\n", repeats);
    for (int i = 0; i < b_ncases; i++) {
        b_case *c = &b_cases[i];
        if (!c->n) continue;
        double lo = c->samples[0], hi = c->samples[0];
        for (int k = 1; k < c->n; k++) {
            if (c->samples[k] < lo) lo = c->samples[k];
            if (c->samples[k] > hi) hi = c->samples[k];
        }
        printf("%s %s %.4g %s (%.4g..%.4g)\n", c->workload, c->system, b_median(c), c->unit, lo, hi);
    }
    printf("\n# ratio = how many times better mp.h is than the peer (higher is better)\n");
    for (int i = 0; i < b_ncases; i++) {
        b_case *m = &b_cases[i];
        if (!m->n || strcmp(m->system, "mp.h") != 0) continue;
        for (int j = 0; j < b_ncases; j++) {
            b_case *p = &b_cases[j];
            if (!p->n || p == m || strcmp(p->workload, m->workload) != 0) continue;
            double a = b_median(m), b = b_median(p);
            double ratio = m->better > 0 ? a / b : b / a;
            printf("%-20s mp.h %10.4g %-8s vs %-22s %10.4g  ratio %.2fx\n", m->workload, a,
                   m->unit, p->system, b, ratio);
        }
    }
    return 0;
}
