/* mpbench: every workload of BENCHMARKS.md for mp.h and its peers, side by side.

   mpbench [-r runs] [-t timeout] [-b budget] [-s system] [-c out.csv] [-m out.md]
           [-p out.dat] [-l] [-v] [workload-or-prefix...]

   Every (workload, system) pair registered with BENCH is run `runs` times, the pairs
   interleaved (round 1 runs each pair once, then round 2, ...) so that a noisy moment
   of a shared machine hits every system alike. Each run happens in a fresh forked
   process with a time limit. The report: the median and spread of every pair, then a
   table of mp.h beside each peer with mp.h's ratio (oriented so that > 1 means mp.h
   is better, whatever the unit), then the targets of BENCHMARKS.md, met or not.

   Placement (bench.h): a two-party workload runs twice, its parties pinned "cross"
   (on different CPUs: the headline figure) and "shared" (on one CPU); each is its own
   group, named workload/cross and workload/shared, and an mp.h figure is only ever
   compared with a peer's of the same group. Scale workloads (BENCH_SCALE) make one
   group per participant count n, workload/N=n. */
#define _GNU_SOURCE
#include "bench.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { B_MAXRUNS = 31, B_MAXCASES = 512, B_MSG = 240 };
enum { B_ACTIVE, B_SKIPPED, B_FAILED };
enum { B_MP, B_PEER, B_LIMIT };

typedef struct {
    const char *workload, *system, *unit;
    int better, max_runs;
    b_fn fn;
    b_fn_n fn_n; /* a scale workload: fn_n(x) */
    int x;       /* its participant count (0: not a scale workload; -1: 1..b_ncpu) */
    int place;   /* B_CROSS, B_SHARED, or 0: not pinned */
    double samples[B_MAXRUNS];
    double secs; /* wall time spent in its runs, for the budget */
    int n, state, kind, order;
    bool selected;
    char msg[B_MSG], note[B_MSG];
} b_case;

/* What a run sends back to the driver through a pipe. */
typedef struct {
    double value;
    int state;
    char msg[B_MSG], note[B_MSG];
} b_result;

static b_case b_cases[B_MAXCASES];
static int b_ncases;
static b_result b_cur; /* in the child: the run in progress */

/* The workloads declared placed (BENCH_PLACED, BENCH_TWO_PARTY) and their placements. */
enum { B_MAXPLACED = 64 };
static struct {
    const char *workload;
    int places;
} b_placed[B_MAXPLACED];
static int b_nplaced;

/* The CPUs the driver may use (its affinity at start), in order. */
enum { B_MAXCPUS = 256 };
static int b_cpus[B_MAXCPUS], b_ncpu;

/* In the run's child, shared with the processes it forks: the parties that pinned
   themselves, whether the system is one process (b_one_process), and the first failure. */
typedef struct {
    int pinned, failed, one_process;
    char msg[B_MSG];
} b_pinlog;
static b_pinlog *b_pins;
static int b_run_place;

/* The workloads of BENCHMARKS.md, in its order; others sort after them. */
static const char *const b_workloads[] = {
    "queue_1p1c_64B",   "queue_2p2c_64B",   "pingpong_64B",     "queue_1MiB",
    "pool_map_1M",      "pool_apply_async", "pool_imap_chunk1", "lock_uncontended",
    "lock_contended_2p", "process_start_join", "tcp_pingpong_64B", "connect_auth",
    "queue_sizes_8B",    "queue_sizes_256B",   "queue_sizes_4KiB", "queue_sizes_64KiB",
    "queue_sizes_1MiB",  "queue_sizes_16MiB",  "queue_NpNc_64B",   "pool_map_cpu"};
enum { B_NWORKLOADS = sizeof b_workloads / sizeof b_workloads[0] };

/* The targets of BENCHMARKS.md, then the floors the issues set. sys: the mp.h system
   the target is for (NULL: every mp.h system of the workload). peer NULL: an absolute
   goal (>= goal when higher is better, <= goal otherwise), or with unit "efficiency" a
   floor on a scale workload's parallel efficiency at as many workers as CPUs; else a
   floor on mp.h's ratio to that peer (ratio > 1: mp.h better). Evaluated at the
   workload's headline placement, and at every count of a scale workload. */
typedef struct {
    const char *workload, *sys, *peer, *unit;
    double goal;
    const char *text;
} b_target;

static const b_target b_targets[] = {
    {"queue_1p1c_64B", NULL, NULL, "msg/s", 30e6, ">= 30 M msg/s"},
    {"queue_1p1c_64B", NULL, "Boost message_queue", NULL, 10, ">= 10x Boost.Interprocess"},
    {"queue_1p1c_64B", NULL, "ZeroMQ PUSH/PULL", NULL, 10, ">= 10x ZeroMQ"},
    {"queue_1p1c_64B", NULL, "raw pipe(2)", NULL, 20, ">= 20x raw pipe"},
    {"queue_1p1c_64B", NULL, "Python Queue", NULL, 300, ">= 300x Python Queue"},
    {"queue_1p1c_64B", NULL, "spinning ring (limit)", NULL, 0.5, ">= 50% of the spinning ring"},
    {"queue_1p1c_64B", NULL, "raw pipe(2)", NULL, 5, "floor: >= 5x raw pipe"},
    {"queue_1p1c_64B", NULL, "mutex+condvar ring", NULL, 2, "floor: >= 2x mutex+condvar ring"},
    {"queue_2p2c_64B", NULL, NULL, "msg/s", 10e6, ">= 10 M msg/s, none lost or duplicated"},
    {"queue_2p2c_64B", NULL, "mutex+condvar ring", NULL, 2, "floor: >= 2x mutex+condvar ring"},
    {"pingpong_64B", "mp.h", NULL, "us", 1.0, "<= 1 us per round trip"},
    {"pingpong_64B", "mp.h", "raw pipe(2)", NULL, 10, ">= 10x faster than raw pipe"},
    {"pingpong_64B", "mp.h", "raw pipe(2)", NULL, 5, "floor: >= 5x faster than raw pipe"},
    {"pingpong_64B", "mp.h pipe", "raw pipe(2)", NULL, 1 / 1.2, "floor: <= 1.2x raw pipe"},
    {"pingpong_64B", "mp.h duplex pipe", "raw socketpair", NULL, 1 / 1.2,
     "<= 1.2x raw socketpair"},
    {"queue_1MiB", NULL, NULL, "GB/s", 8, ">= 8 GB/s by copy"},
    {"queue_1MiB", NULL, "raw pipe(2)", NULL, 3, ">= 3x raw pipe"},
    {"queue_sizes_4KiB", NULL, NULL, "GB/s", 10, ">= 10 GB/s"},
    {"queue_sizes_64KiB", NULL, NULL, "GB/s", 10, ">= 10 GB/s"},
    {"queue_sizes_1MiB", NULL, NULL, "GB/s", 10, ">= 10 GB/s"},
    {"queue_sizes_16MiB", NULL, NULL, "GB/s", 10, ">= 10 GB/s"},
    {"pool_map_1M", NULL, NULL, "items/s", 100e6, ">= 100 M items/s"},
    {"pool_map_1M", NULL, "Python Pool", NULL, 25, ">= 25x Python"},
    {"pool_map_1M", NULL, "Python Pool", NULL, 10, "floor: >= 10x Python"},
    {"pool_apply_async", NULL, NULL, "tasks/s", 1e6, ">= 1 M tasks/s"},
    {"pool_apply_async", NULL, "Python Pool", NULL, 50, ">= 50x Python"},
    {"pool_apply_async", NULL, "Python Pool", NULL, 20, "floor: >= 20x Python"},
    {"pool_imap_chunk1", NULL, NULL, "items/s", 1e6, ">= 1 M items/s"},
    {"pool_imap_chunk1", NULL, "Python Pool", NULL, 20, "floor: >= 20x Python"},
    {"lock_uncontended", NULL, NULL, "ns", 25, "<= 25 ns, recovering from a dead owner"},
    {"lock_uncontended", NULL, "robust pthread mutex", NULL, 1.0,
     "floor: <= 1.0x robust pthread mutex"},
    {"lock_contended_2p", NULL, NULL, "ns", 100, "<= 100 ns per increment"},
    {"lock_contended_2p", NULL, "robust pthread mutex", NULL, 1 / 1.5,
     "floor: <= 1.5x robust pthread mutex"},
    {"process_start_join", "mp.h", "fork+_exit+waitpid", NULL, 1 / 1.1,
     "<= 1.1x bare fork+_exit+waitpid"},
    {"process_start_join", "mp.h", "fork+_exit+waitpid", NULL, 1 / 1.3,
     "floor: <= 1.3x bare fork+_exit+waitpid"},
    {"process_start_join", "mp.h forkserver", "mp.h", NULL, 1 / 2.0, "<= 2x mp.h's fork path"},
    {"process_start_join", "mp.h forkserver", "Python forkserver Process", NULL, 3,
     ">= 3x faster than Python's forkserver"},
    {"named_queue_1p1c_64B", NULL, "family (forked), mp.h queue", NULL, 1 / 1.1,
     "within 1.1x of the family figure"},
    {"named_queue_1p1c_64B", NULL, "Boost message_queue", NULL, 2, ">= 2x Boost message_queue"},
    {"tcp_pingpong_64B", "mp.h", "raw TCP socket", NULL, 1 / 1.1, "<= 1.1x raw TCP socket"},
    {"connect_auth", "mp.h", "Python Listener/Client", NULL, 1, "faster than Python"},
    {"dict_set_get", "mp.h local dict", NULL, "ops/s", 10e6, ">= 10 M ops/s"},
    {"dict_set_get", "mp.h local dict", "Python Manager dict", NULL, 500, ">= 500x Python's Manager"},
    {"dict_set_get", "mp.h served dict", "raw Unix socket round trip", NULL, 1 / 1.2,
     "each call <= 1.2x the raw round trip"},
    {"dict_set_get", "mp.h served dict", "Python Manager dict", NULL, 1, "faster than Python's Manager"},
    {"dict_set_get", "mp.h served dict, 4 clients", "mp.h served dict", NULL, 2,
     ">= 2x one client's throughput"},
    {"queue_NpNc_64B", NULL, "robust mutex+condvar ring", NULL, 2,
     "no collapse: >= 2x the robust ring at every N"},
    {"pool_map_cpu", NULL, NULL, "efficiency", 0.9, "efficiency T1/(N*TN) >= 0.9, N = CPUs"},
};
enum { B_NTARGETS = sizeof b_targets / sizeof b_targets[0] };

/* ---- the API of bench.h ---------------------------------------------------------- */

void b_register_n(const char *workload, const char *system, const char *unit, int better,
                  b_fn fn, int max_runs) {
    if (b_ncases == B_MAXCASES) return;
    b_case *c = &b_cases[b_ncases++];
    memset(c, 0, sizeof *c);
    c->workload = workload;
    c->system = system;
    c->unit = unit;
    c->better = better >= 0 ? 1 : -1;
    c->fn = fn;
    c->max_runs = max_runs;
}

void b_register(const char *workload, const char *system, const char *unit, int better, b_fn fn) {
    b_register_n(workload, system, unit, better, fn, 0);
}

void b_register_scale(const char *workload, const char *system, const char *unit, int better,
                      b_fn_n fn, const int *ns, int count) {
    for (int i = 0; i < (count ? count : 1); i++) {
        b_register_n(workload, system, unit, better, NULL, 0);
        b_cases[b_ncases - 1].fn_n = fn;
        b_cases[b_ncases - 1].x = count ? ns[i] : -1;
    }
}

void b_placements(const char *workload, int placements) {
    for (int i = 0; i < b_nplaced; i++)
        if (!strcmp(b_placed[i].workload, workload)) {
            b_placed[i].places |= placements;
            return;
        }
    if (b_nplaced == B_MAXPLACED) return;
    b_placed[b_nplaced].workload = workload;
    b_placed[b_nplaced++].places = placements;
}

int b_ncpus(void) {
    if (b_ncpu) return b_ncpu;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && b_ncpu < B_MAXCPUS; c++)
            if (CPU_ISSET(c, &set)) b_cpus[b_ncpu++] = c;
    if (!b_ncpu) b_cpus[b_ncpu++] = 0;
    return b_ncpu;
}

/* The CPU of party i in placement place. */
static int b_cpu_of(int place, int i) {
    return place == B_CROSS ? b_cpus[(unsigned)i % (unsigned)b_ncpus()] : b_cpus[0];
}

static void b_pin_failed(const char *fmt, int i, int cpu) {
    if (__atomic_exchange_n(&b_pins->failed, 1, __ATOMIC_SEQ_CST)) return;
    snprintf(b_pins->msg, sizeof b_pins->msg, fmt, i, cpu, strerror(errno));
}

bool b_full(int fd, void *p, size_t n, bool out) {
    char *c = (char *)p;
    while (n) {
        ssize_t r = out ? write(fd, c, n) : read(fd, c, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return false;
        }
        c += r;
        n -= (size_t)r;
    }
    return true;
}

void b_party(int i) {
    if (!b_run_place || !b_pins) return;
    int cpu = b_cpu_of(b_run_place, i);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) b_pin_failed("party %d: sched_setaffinity(CPU %d): %s", i, cpu);
    else b_party_pinned();
}

void b_party_pinned(void) {
    if (b_pins) __atomic_fetch_add(&b_pins->pinned, 1, __ATOMIC_SEQ_CST);
}

void b_one_process(void) {
    if (b_pins) b_pins->one_process = 1;
    b_party(0);
}

pid_t b_fork_party(int i) {
    pid_t pid = fork();
    if (pid == 0) b_party(i);
    return pid;
}

/* "0,1": every CPU the driver may use, for the report. */
static const char *b_party_cpus_all(void) {
    int save = b_run_place;
    b_run_place = B_CROSS;
    const char *s = b_party_cpus();
    b_run_place = save;
    return s;
}

const char *b_party_cpus(void) {
    static char buf[B_MAXCPUS * 5];
    size_t n = 0;
    if (!b_run_place) return NULL;
    int k = b_run_place == B_CROSS ? b_ncpus() : 1;
    buf[0] = 0;
    for (int i = 0; i < k && n < sizeof buf - 8; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d", i ? "," : "", b_cpus[i]);
    return buf;
}

/* The placements a workload runs in here: cross needs two CPUs; a workload declared
   cross only runs shared on a machine with one. 0: not placed. */
static int b_places_of(const char *workload) {
    for (int i = 0; i < b_nplaced; i++) {
        if (strcmp(b_placed[i].workload, workload)) continue;
        int p = b_placed[i].places;
        if (b_ncpus() < 2) p = p ? B_SHARED : 0;
        return p;
    }
    return 0;
}

/* The placement of a workload's headline figures (and targets): cross when it runs. */
static int b_headline(const char *workload) {
    int p = b_places_of(workload);
    return p & B_CROSS ? B_CROSS : p;
}

static const char *b_place_name(int place) {
    return place == B_CROSS ? "cross" : place == B_SHARED ? "shared" : "-";
}

/* Makes one case of every placed case per placement, and of every scale case with
   x -1 one per count 1..b_ncpu. Before sorting. */
static void b_expand_cases(void) {
    int n = b_ncases;
    for (int i = 0; i < n; i++) {
        b_case *c = &b_cases[i];
        for (int x = 2; c->x == -1 && x <= b_ncpus() && b_ncases < B_MAXCASES; x++) {
            b_cases[b_ncases] = *c;
            b_cases[b_ncases++].x = x;
        }
        if (c->x == -1) c->x = 1;
    }
    n = b_ncases;
    for (int i = 0; i < n; i++) {
        int p = b_places_of(b_cases[i].workload);
        b_cases[i].place = p & B_CROSS ? B_CROSS : p;
        if (p == (B_CROSS | B_SHARED) && b_ncases < B_MAXCASES) {
            b_cases[b_ncases] = b_cases[i];
            b_cases[b_ncases++].place = B_SHARED;
        }
    }
}

/* Whether a and b are in the same group: workload, placement and count. */
static bool b_same_group(const b_case *a, const b_case *b) {
    return !strcmp(a->workload, b->workload) && a->place == b->place && a->x == b->x;
}

/* "queue_1p1c_64B/cross", "queue_NpNc_64B/N=4/cross", "lock_uncontended". */
static const char *b_label(const b_case *c, char *buf, size_t cap) {
    char x[24] = "";
    if (c->x) snprintf(x, sizeof x, "/N=%d", c->x);
    snprintf(buf, cap, "%s%s%s%s", c->workload, x, c->place ? "/" : "", c->place ? b_place_name(c->place) : "");
    return buf;
}

/* snprintf "%s" that may cut, without the compiler's truncation warning. */
static void b_copy(char *dst, size_t cap, const char *src) {
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, src, n);
    dst[n] = 0;
}

double b_skip(const char *msg) {
    b_cur.state = B_SKIPPED;
    b_copy(b_cur.msg, sizeof b_cur.msg, msg);
    return NAN;
}

double b_fail(const char *msg) {
    b_cur.state = B_FAILED;
    b_copy(b_cur.msg, sizeof b_cur.msg, msg);
    return NAN;
}

void b_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b_cur.note, sizeof b_cur.note, fmt, ap);
    va_end(ap);
}

double b_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Python peers ---------------------------------------------------------------- */

static void b_peers_path(char *out, size_t cap) {
    const char *env = getenv("MPBENCH_PEERS");
    char exe[4096];
    ssize_t n;
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(out, cap, "%s/../bench/peers.py", exe);
            if (access(out, R_OK) == 0) return;
        }
    }
    snprintf(out, cap, "bench/peers.py");
}

double b_python(const char *workload, const char *variant) {
    const char *py = getenv("MPBENCH_PYTHON");
    char script[4300], cmd[8800], line[512], last[512] = "";
    double value = NAN;
    if (!py || !*py) py = "python3";
    b_peers_path(script, sizeof script);
    if (access(script, R_OK) != 0) return b_fail("bench/peers.py not found (set MPBENCH_PEERS)");
    snprintf(cmd, sizeof cmd, "exec '%s' '%s' '%s' '%s' 2>&1", py, script, workload,
             variant ? variant : "");
    /* peers.py pins its parties there and prints "pinned PARTY CPU" for each */
    const char *cpus = b_party_cpus();
    if (cpus) setenv("MPBENCH_PARTY_CPUS", cpus, 1);
    else unsetenv("MPBENCH_PARTY_CPUS");
    FILE *f = popen(cmd, "r");
    if (!f) return b_fail("popen failed");
    /* peers.py prints "result N", maybe "note ..." or "skip ..."; anything else is an
       error message (a traceback), of which the last line is kept. */
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "result ", 7) == 0) value = strtod(line + 7, NULL);
        else if (strncmp(line, "note ", 5) == 0) b_note("%s", line + 5);
        else if (strncmp(line, "skip ", 5) == 0) b_skip(line + 5);
        else if (strncmp(line, "pinned ", 7) == 0) b_party_pinned();
        else if (*line) snprintf(last, sizeof last, "%s", line);
    }
    int st = pclose(f);
    if (b_cur.state == B_SKIPPED) return NAN;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) return b_skip("python3 not found");
    if (st != 0 || value != value) {
        snprintf(line, sizeof line, "python: %s", *last ? last : "no result");
        return b_fail(line);
    }
    return value;
}

/* ---- running ---------------------------------------------------------------------- */

static int b_workload_rank(const char *w) {
    for (int i = 0; i < B_NWORKLOADS; i++)
        if (strcmp(b_workloads[i], w) == 0) return i;
    return B_NWORKLOADS;
}

static int b_kind_of(const char *system) {
    size_t n = strlen(system);
    if (strncmp(system, "mp.h", 4) == 0) return B_MP;
    if (n >= 7 && strcmp(system + n - 7, "(limit)") == 0) return B_LIMIT;
    return B_PEER;
}

static int b_case_cmp(const void *a, const void *b) {
    const b_case *x = (const b_case *)a, *y = (const b_case *)b;
    int rx = b_workload_rank(x->workload), ry = b_workload_rank(y->workload);
    if (rx != ry) return rx - ry;
    if (rx == B_NWORKLOADS && strcmp(x->workload, y->workload))
        return strcmp(x->workload, y->workload);
    if (x->x != y->x) return x->x - y->x;
    if (x->place != y->place) return x->place - y->place; /* cross first */
    if (x->kind != y->kind) return x->kind - y->kind;
    return x->order - y->order;
}

/* A name selects the workloads it is a prefix of, or the groups ("pingpong_64B/shared"). */
static bool b_selected(const b_case *c, char **names, int nnames, const char *sys) {
    char label[160];
    if (sys && !strstr(c->system, sys)) return false;
    if (nnames == 0) return true;
    b_label(c, label, sizeof label);
    for (int i = 0; i < nnames; i++)
        if (strncmp(label, names[i], strlen(names[i])) == 0) return true;
    return false;
}

/* 1: read all; 0: end of file or error first; -1: the deadline passed. */
static int b_read_all(int fd, void *buf, size_t n, double deadline) {
    char *p = (char *)buf;
    while (n) {
        int ms = (int)((deadline - b_now()) * 1000);
        if (ms <= 0) return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return -1;
        if (r < 0) return 0;
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

/* Runs c in this process (a run's child), pinning its parties as c->place says. */
static double b_call(const b_case *c) {
    void *pins = mmap(NULL, sizeof *b_pins, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pins == MAP_FAILED) return b_fail("mmap failed");
    b_pins = (b_pinlog *)pins;
    b_run_place = c->place;
    double v = c->fn_n ? c->fn_n(c->x) : c->fn();
    int pinned = __atomic_load_n(&b_pins->pinned, __ATOMIC_SEQ_CST);
    if (b_cur.state != B_ACTIVE || !c->place) return v;
    if (b_pins->failed) return b_fail(b_pins->msg);
    if (pinned < (b_pins->one_process ? 1 : 2)) {
        char msg[B_MSG];
        snprintf(msg, sizeof msg, "placed %s, but %d parties pinned themselves (b_party, b_fork_party)",
                 b_place_name(c->place), pinned);
        return b_fail(msg);
    }
    return v;
}

/* One run of c in a fresh child (its own process group, so that a timeout kills
   whatever it started too). */
static b_result b_run(b_case *c, double timeout) {
    b_result res;
    int fds[2], st;
    memset(&res, 0, sizeof res);
    res.state = B_FAILED;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(res.msg, sizeof res.msg, "pipe: %s", strerror(errno));
        return res;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(res.msg, sizeof res.msg, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return res;
    }
    if (pid == 0) {
        setpgid(0, 0);
        close(fds[0]);
        memset(&b_cur, 0, sizeof b_cur);
        b_cur.value = b_call(c);
        if (b_cur.state == B_ACTIVE && b_cur.value != b_cur.value) b_fail("returned NaN");
        if (write(fds[1], &b_cur, sizeof b_cur) != (ssize_t)sizeof b_cur) _exit(3);
        exit(0); /* atexit handlers of the run (mp.h joins its children) do run */
    }
    setpgid(pid, pid);
    close(fds[1]);
    int got = b_read_all(fds[0], &res, sizeof res, b_now() + timeout);
    close(fds[0]);
    if (got < 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    kill(-pid, SIGKILL); /* grandchildren left behind by the run */
    if (got == 1) return res;
    memset(&res, 0, sizeof res);
    res.state = B_FAILED;
    if (got < 0)
        snprintf(res.msg, sizeof res.msg, "timed out after %.0f s", timeout);
    else if (WIFSIGNALED(st))
        snprintf(res.msg, sizeof res.msg, "killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(res.msg, sizeof res.msg, "exited with %d before reporting", WEXITSTATUS(st));
    return res;
}

static int b_runs_of(const b_case *c, int runs) {
    return c->max_runs > 0 && c->max_runs < runs ? c->max_runs : runs;
}

static void b_progress(bool tty, int round, int rounds, const b_case *c, double t0) {
    if (!tty) return;
    char label[160];
    fprintf(stderr, "\r\033[K[run %d/%d, %3.0f s] %s / %s", round + 1, rounds, b_now() - t0,
            b_label(c, label, sizeof label), c->system);
}

/* Expected time of round r from the runs so far (a pair not yet run counts 1 s). */
static double b_round_cost(int r, int runs, char **names, int nnames, const char *sys) {
    double sum = 0;
    for (int i = 0; i < b_ncases; i++) {
        b_case *c = &b_cases[i];
        if (c->state != B_ACTIVE || r >= b_runs_of(c, runs) || !b_selected(c, names, nnames, sys))
            continue;
        sum += c->n ? c->secs / c->n : 1.0;
    }
    return sum;
}

static void b_run_all(int runs, double timeout, double budget, char **names, int nnames,
                      const char *sys, bool verbose) {
    bool tty = isatty(2);
    double t0 = b_now();
    int r;
    for (r = 0; r < runs; r++) {
        /* Three runs give a median; past them the time budget may stop the rounds. */
        if (r >= 3 && b_now() - t0 + b_round_cost(r, runs, names, nnames, sys) > budget) {
            printf("# time budget (%.0f s): stopped after %d runs of each pair\n", budget, r);
            break;
        }
        for (int i = 0; i < b_ncases; i++) {
            b_case *c = &b_cases[i];
            if (c->state != B_ACTIVE || r >= b_runs_of(c, runs) || !b_selected(c, names, nnames, sys))
                continue;
            b_progress(tty, r, runs, c, t0);
            double s = b_now();
            b_result res = b_run(c, timeout);
            c->secs += b_now() - s;
            if (res.note[0]) snprintf(c->note, sizeof c->note, "%s", res.note);
            if (res.state != B_ACTIVE) {
                c->state = res.state;
                snprintf(c->msg, sizeof c->msg, "%s", res.msg);
                if (tty) fprintf(stderr, "\r\033[K");
                char label[160];
                printf("# %s / %s %s: %s\n", b_label(c, label, sizeof label), c->system,
                       res.state == B_SKIPPED ? "skipped" : "FAILED", res.msg);
                continue;
            }
            c->samples[c->n++] = res.value;
            if (verbose) {
                if (tty) fprintf(stderr, "\r\033[K");
                char label[160];
                printf("#   %s %s %.4g %s (run %d, %.2f s)%s%s\n", b_label(c, label, sizeof label),
                       c->system, res.value, c->unit, c->n, b_now() - s, res.note[0] ? "  # " : "",
                       res.note);
            }
        }
        if (!tty) fprintf(stderr, "# run %d of %d done, %.0f s\n", r + 1, runs, b_now() - t0);
    }
    if (tty) fprintf(stderr, "\r\033[K");
    printf("# measured in %.0f s\n", b_now() - t0);
}

/* ---- statistics and formatting ------------------------------------------------------- */

static int b_dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double b_median(const b_case *c) {
    double s[B_MAXRUNS];
    if (!c->n) return NAN;
    memcpy(s, c->samples, sizeof(double) * (size_t)c->n);
    qsort(s, (size_t)c->n, sizeof(double), b_dbl_cmp);
    return c->n % 2 ? s[c->n / 2] : (s[c->n / 2 - 1] + s[c->n / 2]) / 2;
}

static void b_minmax(const b_case *c, double *lo, double *hi) {
    *lo = *hi = c->samples[0];
    for (int k = 1; k < c->n; k++) {
        if (c->samples[k] < *lo) *lo = c->samples[k];
        if (c->samples[k] > *hi) *hi = c->samples[k];
    }
}

/* "31.2 M msg/s", "1.05 us": three digits, SI prefixes for rates. */
static const char *b_fmt(char *buf, size_t cap, double v, const char *unit) {
    size_t n = strlen(unit);
    bool rate = n > 2 && strcmp(unit + n - 2, "/s") == 0 && unit[0] != 'G' && unit[0] != 'M';
    const char *pre = "";
    if (v != v) return snprintf(buf, cap, "-"), buf;
    if (rate && v >= 1e9) v /= 1e9, pre = "G";
    else if (rate && v >= 1e6) v /= 1e6, pre = "M";
    else if (rate && v >= 1e4) v /= 1e3, pre = "k";
    if (v >= 1000) snprintf(buf, cap, "%.0f %s%s%s", v, pre, *pre ? " " : "", unit);
    else snprintf(buf, cap, "%.3g %s%s%s", v, pre, *pre ? " " : "", unit);
    return buf;
}

static const char *b_fmt_ratio(char *buf, size_t cap, double r) {
    if (r != r) snprintf(buf, cap, "-");
    else if (r >= 100) snprintf(buf, cap, "%.0fx", r);
    else if (r >= 99.95) snprintf(buf, cap, "%.0fx", r);
    else if (r >= 10) snprintf(buf, cap, "%.1fx", r);
    else if (r >= 0.1) snprintf(buf, cap, "%.2fx", r);
    else snprintf(buf, cap, "%.2gx", r);
    return buf;
}

/* How many times better mp system m is than p (> 1: m wins), by their medians. */
static double b_ratio(const b_case *m, const b_case *p) {
    double a = b_median(m), b = b_median(p);
    if (!m->n || !p->n || a <= 0 || b <= 0) return NAN;
    return m->better > 0 ? a / b : b / a;
}

/* The case of system in the group of g. */
static b_case *b_find(const b_case *g, const char *system) {
    for (int i = 0; i < b_ncases; i++)
        if (b_same_group(&b_cases[i], g) && !strcmp(b_cases[i].system, system))
            return &b_cases[i];
    return NULL;
}

/* The mp.h system of g's group that did best (NULL when none was measured). */
static b_case *b_best_mp(const b_case *g) {
    b_case *best = NULL;
    for (int i = 0; i < b_ncases; i++) {
        b_case *c = &b_cases[i];
        if (c->kind != B_MP || !c->n || !b_same_group(c, g)) continue;
        if (!best || (c->better > 0 ? b_median(c) > b_median(best) : b_median(c) < b_median(best)))
            best = c;
    }
    return best;
}

static bool b_first_of_group(int i) {
    return i == 0 || !b_same_group(&b_cases[i - 1], &b_cases[i]);
}

/* Whether the group of case i has at least one figure. */
static bool b_group_measured(int i) {
    for (int j = 0; j < b_ncases; j++)
        if (b_cases[j].n && b_same_group(&b_cases[j], &b_cases[i])) return true;
    return false;
}

/* Parallel efficiency of scale case c: its rate / (x * the rate of the same system at
   x = 1), by medians; NAN when there is no such figure. */
static double b_efficiency(const b_case *c) {
    for (int i = 0; c->x > 0 && c->better > 0 && i < b_ncases; i++) {
        const b_case *o = &b_cases[i];
        if (o->x == 1 && o->n && o->place == c->place && !strcmp(o->workload, c->workload) &&
            !strcmp(o->system, c->system))
            return b_median(c) / (c->x * b_median(o));
    }
    return NAN;
}

static const char *b_state_text(const b_case *c, char *buf, size_t cap) {
    if (c->state == B_SKIPPED) snprintf(buf, cap, "skipped: %s", c->msg);
    else if (c->state == B_FAILED) snprintf(buf, cap, "FAILED: %s", c->msg);
    else snprintf(buf, cap, "not run");
    return buf;
}

/* ---- the machine --------------------------------------------------------------------- */

static char b_machine[256], b_date[32];

static void b_describe_machine(void) {
    char line[512], cpu[200] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p += 1 + strspn(p + 1, " \t");
                p[strcspn(p, "\n")] = 0;
                snprintf(cpu, sizeof cpu, "%s", p);
            }
            break;
        }
    }
    if (f) fclose(f);
    struct utsname u;
    if (uname(&u) != 0) snprintf(u.release, sizeof u.release, "?");
    snprintf(b_machine, sizeof b_machine, "%s, %ld cores, Linux %s", cpu,
             sysconf(_SC_NPROCESSORS_ONLN), u.release);
    time_t now = time(NULL);
    strftime(b_date, sizeof b_date, "%Y-%m-%d", gmtime(&now));
}

/* ---- reports -------------------------------------------------------------------------- */

static void b_print_results(int runs) {
    char st[300];
    printf("\n== Results: name system median unit (min..max over the runs)  [up to %d runs]\n",
           runs);
    for (int i = 0; i < b_ncases; i++) {
        b_case *c = &b_cases[i];
        if (!c->n) continue;
        double lo, hi;
        b_minmax(c, &lo, &hi);
        char label[160];
        printf("%s %s %.4g %s (%.4g..%.4g, %d runs)%s%s\n", b_label(c, label, sizeof label),
               c->system, b_median(c), c->unit, lo, hi, c->n, c->note[0] ? "  # " : "", c->note);
    }
    int shown = 0;
    for (int i = 0; i < b_ncases; i++) {
        b_case *c = &b_cases[i];
        if (c->n || c->state == B_ACTIVE) continue;
        char label[160];
        if (!shown++) printf("\n== Not measured\n");
        printf("%s %s: %s\n", b_label(c, label, sizeof label), c->system,
               b_state_text(c, st, sizeof st));
    }
}

/* Calls fn(m, p) for every measured mp.h system m and peer (or limit) p of the same
   group (workload, placement, count), by group then by m; m is NULL for the peers of
   a group without an mp.h figure. */
static void b_each_pair(void (*fn)(const b_case *m, const b_case *p, void *ctx), void *ctx) {
    for (int i = 0; i < b_ncases; i++) {
        if (!b_first_of_group(i)) continue;
        int end = i, mps = 0;
        while (end < b_ncases && b_same_group(&b_cases[end], &b_cases[i])) end++;
        for (int j = i; j < end; j++) {
            const b_case *m = &b_cases[j];
            if (m->kind != B_MP || !m->n) continue;
            mps++;
            for (int k = i; k < end; k++)
                if (b_cases[k].kind != B_MP && b_cases[k].n) fn(m, &b_cases[k], ctx);
        }
        for (int k = i; k < end && !mps; k++)
            if (b_cases[k].kind != B_MP && b_cases[k].n) fn(NULL, &b_cases[k], ctx);
    }
}

static void b_ratio_text(const b_case *m, const b_case *p, void *ctx) {
    char a[64], b[64], r[32], better[48], label[160];
    (void)ctx;
    snprintf(better, sizeof better, "%s, %s", p->unit, p->better > 0 ? "higher" : "lower");
    printf("%-28s %-16s %-16s %-14s %-28s %-16s %s\n", b_label(p, label, sizeof label), better,
           m ? m->system : "mp.h", m ? b_fmt(a, sizeof a, b_median(m), m->unit) : "(not measured)",
           p->system, b_fmt(b, sizeof b, b_median(p), p->unit),
           m ? b_fmt_ratio(r, sizeof r, b_ratio(m, p)) : "-");
}

static void b_print_ratios(void) {
    printf("\n== mp.h beside each peer: ratio = how many times better mp.h did "
           "(> 1: mp.h wins; per row, the unit and which way is better)\n");
    printf("%-28s %-16s %-16s %-14s %-28s %-16s %s\n", "workload/placement", "unit, better",
           "mp.h", "mp.h median", "peer", "peer median", "ratio");
    b_each_pair(b_ratio_text, NULL);
}

typedef struct {
    char label[160], mp[64], measured[64], status[400];
} b_target_row;

/* Evaluates target t for mp system m (NULL when the workload has none measured). */
static void b_eval_target(const b_target *t, const b_case *m, b_target_row *row) {
    char v[64];
    snprintf(row->mp, sizeof row->mp, "%s", m ? m->system : "mp.h");
    snprintf(row->measured, sizeof row->measured, "-");
    if (m) b_label(m, row->label, sizeof row->label);
    else snprintf(row->label, sizeof row->label, "%s", t->workload);
    if (!m) {
        b_case *any = NULL;
        for (int i = 0; i < b_ncases && !any; i++)
            if (b_cases[i].kind == B_MP && !strcmp(b_cases[i].workload, t->workload))
                any = &b_cases[i];
        if (any && any->state != B_ACTIVE) b_state_text(any, row->status, sizeof row->status);
        else snprintf(row->status, sizeof row->status, "not measured (no mp.h run)");
        return;
    }
    if (!t->peer && t->unit && !strcmp(t->unit, "efficiency")) {
        double e = b_efficiency(m);
        snprintf(row->measured, sizeof row->measured, "%.2f", e);
        snprintf(row->status, sizeof row->status, "%s",
                 e != e ? "not measured (no N=1 figure)" : e >= t->goal ? "met" : "NOT MET");
        return;
    }
    if (!t->peer) {
        double med = b_median(m);
        snprintf(row->measured, sizeof row->measured, "%s", b_fmt(v, sizeof v, med, m->unit));
        if (strcmp(t->unit, m->unit) != 0)
            snprintf(row->status, sizeof row->status, "? unit is %s, target in %s", m->unit,
                     t->unit);
        else
            snprintf(row->status, sizeof row->status, "%s",
                     (m->better > 0 ? med >= t->goal : med <= t->goal) ? "met" : "NOT MET");
        return;
    }
    b_case *p = b_find(m, t->peer);
    if (!p || !p->n) {
        if (p && p->state != B_ACTIVE) {
            char st[300];
            snprintf(row->status, sizeof row->status, "not measured (%s %s)", t->peer,
                     b_state_text(p, st, sizeof st));
        } else {
            snprintf(row->status, sizeof row->status, "not measured (%s not built)", t->peer);
        }
        return;
    }
    double r = b_ratio(m, p);
    b_fmt_ratio(row->measured, sizeof row->measured, r);
    snprintf(row->status, sizeof row->status, "%s", r >= t->goal ? "met" : "NOT MET");
}

/* Calls fn for every (target, mp.h system) pair, at the workload's headline placement
   and every count of a scale workload (an efficiency target: the largest count only);
   one row with m NULL when a workload has no mp.h figure. */
static void b_each_target(void (*fn)(const b_target *, const b_target_row *, void *), void *ctx) {
    for (int k = 0; k < B_NTARGETS; k++) {
        const b_target *t = &b_targets[k];
        b_target_row row;
        int rows = 0;
        bool wanted = false;
        for (int i = 0; i < b_ncases; i++)
            wanted |= b_cases[i].selected && !strcmp(b_cases[i].workload, t->workload);
        if (!wanted) continue;
        for (int i = 0; i < b_ncases; i++) {
            b_case *m = &b_cases[i];
            if (m->kind != B_MP || !m->n || strcmp(m->workload, t->workload)) continue;
            if (t->sys && strcmp(m->system, t->sys)) continue;
            if (m->place != b_headline(m->workload)) continue;
            if (t->unit && !strcmp(t->unit, "efficiency") && m->x != b_ncpus()) continue;
            b_eval_target(t, m, &row);
            fn(t, &row, ctx);
            rows++;
        }
        if (!rows) {
            b_eval_target(t, NULL, &row);
            fn(t, &row, ctx);
        }
    }
}

static void b_target_text(const b_target *t, const b_target_row *row, void *ctx) {
    (void)ctx;
    printf("%-28s %-16s %-40s %-14s %s\n", row->label, row->mp, t->text, row->measured,
           row->status);
}

static void b_print_targets(void) {
    printf("\n== Targets of BENCHMARKS.md (and, marked floor:, the issues' floors), at the "
           "headline placement (cross where the machine has 2 CPUs)\n");
    printf("%-28s %-16s %-40s %-14s %s\n", "workload/placement", "mp.h", "target", "measured",
           "status");
    b_each_target(b_target_text, NULL);
}

/* Whether the workload has an efficiency target (pool_map_cpu): its curve shows it. */
static bool b_has_efficiency(const char *workload) {
    for (int k = 0; k < B_NTARGETS; k++)
        if (!strcmp(b_targets[k].workload, workload) && b_targets[k].unit &&
            !strcmp(b_targets[k].unit, "efficiency"))
            return true;
    return false;
}

enum { B_MAXCOLS = 12 };

/* The systems measured in scale workload w, mp.h first (as the cases are sorted). */
static int b_scale_systems(const char *w, const b_case **cols) {
    int k = 0;
    for (int i = 0; i < b_ncases && k < B_MAXCOLS; i++) {
        const b_case *c = &b_cases[i];
        bool seen = false;
        if (!c->x || !c->n || strcmp(c->workload, w)) continue;
        for (int j = 0; j < k; j++) seen |= !strcmp(cols[j]->system, c->system);
        if (!seen) cols[k++] = c;
    }
    return k;
}

/* One cell of a scale row: system col's figure in group g, with its efficiency (a
   workload with an efficiency target) or else the best mp.h's ratio to it (a peer). */
static void b_scale_cell(FILE *f, const b_case *g, const b_case *col, bool md) {
    char v[64], r[32], cell[128] = "-";
    const b_case *c = b_find(g, col->system), *m = b_best_mp(g);
    if (c && c->n) {
        b_fmt(v, sizeof v, b_median(c), c->unit);
        if (b_has_efficiency(c->workload))
            snprintf(cell, sizeof cell, "%s (efficiency %.2f)", v, b_efficiency(c));
        else if (c->kind != B_MP && m)
            snprintf(cell, sizeof cell, "%s (%s)", v, b_fmt_ratio(r, sizeof r, b_ratio(m, c)));
        else
            snprintf(cell, sizeof cell, "%s", v);
    }
    fprintf(f, md ? " %s |" : " %-30s", cell);
}

/* The curves of the scale workloads: one row per count (and placement), one column per
   system; a peer's cell carries mp.h's ratio to it, as in the other tables. */
static void b_print_scale(FILE *f, bool md) {
    for (int i = 0; i < b_ncases; i++) {
        const b_case *c = &b_cases[i], *cols[B_MAXCOLS];
        if (!c->x || (i && !strcmp(b_cases[i - 1].workload, c->workload))) continue;
        int k = b_scale_systems(c->workload, cols);
        if (!k) continue;
        if (md) fprintf(f, "\n`%s` (%s, %s is better; a peer's cell: mp.h's ratio to it):\n\n| N | placement |",
                        c->workload, c->unit, c->better > 0 ? "higher" : "lower");
        else fprintf(f, "\n== Scale: %s (%s, %s is better; beside a peer: mp.h's ratio to it)\n%-4s %-9s",
                    c->workload, c->unit, c->better > 0 ? "higher" : "lower", "N", "placement");
        for (int j = 0; j < k; j++) fprintf(f, md ? " %s |" : " %-30s", cols[j]->system);
        if (md) {
            fprintf(f, "\n|---|---|");
            for (int j = 0; j < k; j++) fprintf(f, "---|");
        }
        fputc('\n', f);
        for (int j = i; j < b_ncases && !strcmp(b_cases[j].workload, c->workload); j++) {
            const b_case *g = &b_cases[j];
            if (!b_first_of_group(j) || !b_group_measured(j)) continue;
            if (md) fprintf(f, "| %d | %s |", g->x, b_place_name(g->place));
            else fprintf(f, "%-4d %-9s", g->x, b_place_name(g->place));
            for (int col = 0; col < k; col++) b_scale_cell(f, g, cols[col], md);
            fputc('\n', f);
        }
    }
}

static void b_csv_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static const char *const b_kind_names[] = {"mp.h", "peer", "limit"};

/* One row per (workload, system): the figures, and for peers and limits the ratio of
   the best mp.h system of the workload to them (> 1: mp.h better). */
static void b_write_csv(const char *path) {
    FILE *f = fopen(path, "w");
    char st[300];
    if (!f) {
        fprintf(stderr, "mpbench: %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "workload,placement,n,system,kind,unit,better,median,min,max,runs,status,"
               "mp_system,mp_ratio,efficiency,note,machine,date\n");
    for (int i = 0; i < b_ncases; i++) {
        b_case *c = &b_cases[i];
        b_case *m = c->kind == B_MP ? NULL : b_best_mp(c);
        double lo = NAN, hi = NAN, e = b_efficiency(c);
        if (c->n) b_minmax(c, &lo, &hi);
        fprintf(f, "%s,%s,", c->workload, b_place_name(c->place));
        if (c->x) fprintf(f, "%d", c->x);
        fputc(',', f);
        b_csv_str(f, c->system);
        fprintf(f, ",%s,%s,%s,", b_kind_names[c->kind], c->unit, c->better > 0 ? "higher" : "lower");
        if (c->n) fprintf(f, "%.6g,%.6g,%.6g,%d,ok,", b_median(c), lo, hi, c->n);
        else {
            fprintf(f, ",,,0,");
            b_csv_str(f, b_state_text(c, st, sizeof st));
            fputc(',', f);
        }
        if (m && c->n) {
            b_csv_str(f, m->system);
            fprintf(f, ",%.4g,", b_ratio(m, c));
        } else {
            fprintf(f, ",,");
        }
        if (e == e) fprintf(f, "%.4g", e);
        fputc(',', f);
        b_csv_str(f, c->note);
        fputc(',', f);
        b_csv_str(f, b_machine);
        fprintf(f, ",%s\n", b_date);
    }
    fclose(f);
}

static void b_target_md(const b_target *t, const b_target_row *row, void *ctx) {
    fprintf((FILE *)ctx, "| `%s` | %s | %s | %s | %s |\n", row->label, row->mp, t->text,
            row->measured, row->status);
}

static void b_ratio_md(const b_case *m, const b_case *p, void *ctx) {
    char a[64], b[64], r[32], label[160];
    fprintf((FILE *)ctx, "| `%s` | %s (%s) | %s%s%s | %s | %s | **%s** |\n",
            b_label(p, label, sizeof label), p->unit,
            p->better > 0 ? "higher" : "lower", m ? m->system : "-", m ? ": " : "",
            m ? b_fmt(a, sizeof a, b_median(m), m->unit) : "", p->system,
            b_fmt(b, sizeof b, b_median(p), p->unit), m ? b_fmt_ratio(r, sizeof r, b_ratio(m, p)) : "-");
}

/* The summary: one row per mp.h system, its peers in one cell (the scale workloads
   have their own tables). */
static void b_summary_md(const b_case *m, const b_case *p, void *ctx) {
    static const b_case *last_m, *last_p;
    FILE *f = (FILE *)ctx;
    char a[64], r[32], label[160];
    if (p && p->x) return;
    if (!p) { /* the end */
        if (last_p) fprintf(f, " |\n");
        last_m = last_p = NULL;
        return;
    }
    bool new_row = !last_p || m != last_m || !b_same_group(p, last_p);
    if (new_row) {
        if (last_p) fprintf(f, " |\n");
        fprintf(f, "| `%s` (%s, %s is better) | %s%s%s | ", b_label(p, label, sizeof label), p->unit,
                p->better > 0 ? "higher" : "lower", m ? m->system : "-", m ? " " : "",
                m ? b_fmt(a, sizeof a, b_median(m), m->unit) : "");
    } else {
        fprintf(f, " · ");
    }
    fprintf(f, "%s %s", p->system, b_fmt(a, sizeof a, b_median(p), p->unit));
    if (m) fprintf(f, " (**%s**)", b_fmt_ratio(r, sizeof r, b_ratio(m, p)));
    last_m = m, last_p = p;
}

/* The most runs any pair got (the time budget may have cut rounds short). */
static int b_most_runs(void) {
    int most = 0;
    for (int i = 0; i < b_ncases; i++)
        if (b_cases[i].n > most) most = b_cases[i].n;
    return most;
}

static void b_write_md(const char *path, const char *cmdline) {
    FILE *f = fopen(path, "w");
    char a[64], lo_s[64], hi_s[64];
    if (!f) {
        fprintf(stderr, "mpbench: %s: %s\n", path, strerror(errno));
        return;
    }
    int most = b_most_runs();
    fprintf(f, "Measured on %s, %s, with `%s`: medians of up to %d runs, spread min..max.\n\n",
            b_machine, b_date, cmdline, most);
    fprintf(f, "| workload | mp.h | peers: median (mp.h's ratio; > 1: mp.h better) |\n|---|---|---|\n");
    b_each_pair(b_summary_md, f);
    b_summary_md(NULL, NULL, f);
    fprintf(f, "\nEach pair:\n\n");
    fprintf(f, "| workload | unit (better) | mp.h | peer | peer median | mp.h's ratio |\n");
    fprintf(f, "|---|---|---|---|---|---|\n");
    b_each_pair(b_ratio_md, f);
    fprintf(f, "\nEvery figure (median, min..max, runs):\n\n");
    fprintf(f, "| workload | system | median | min..max | runs | note |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < b_ncases; i++) {
        b_case *c = &b_cases[i];
        char st[300], label[160];
        b_label(c, label, sizeof label);
        if (!c->n) {
            if (c->state != B_ACTIVE)
                fprintf(f, "| `%s` | %s | - | - | 0 | %s |\n", label, c->system,
                        b_state_text(c, st, sizeof st));
            continue;
        }
        double lo, hi;
        b_minmax(c, &lo, &hi);
        fprintf(f, "| `%s` | %s | %s | %s..%s | %d | %s |\n", label, c->system,
                b_fmt(a, sizeof a, b_median(c), c->unit), b_fmt(lo_s, sizeof lo_s, lo, c->unit),
                b_fmt(hi_s, sizeof hi_s, hi, c->unit), c->n, c->note);
    }
    b_print_scale(f, true);
    fprintf(f, "\nTargets of BENCHMARKS.md (and, marked floor:, the issues' floors):\n\n| workload | mp.h | target | measured | status |\n"
               "|---|---|---|---|---|\n");
    b_each_target(b_target_md, f);
    fclose(f);
}

/* Data for bench/plot.gp. Block 0: one bar per measured pair: row, speed relative to
   the fastest of its group (1 = fastest), colour, system, value label. Block 1: one
   heading per measured group: row, label. Then one block per scale workload: a header
   line of quoted names ("N", then each system), then one row per count with each
   system's median (NaN when missing), or for a workload with an efficiency target its
   parallel efficiency. The scale groups get no bars. The first line carries the
   title. */
static void b_write_bars(FILE *f) {
    char v[64], r[32], label[200], heading[160];
    for (int pass = 0; pass < 2; pass++) {
        int row = 0;
        for (int i = 0; i < b_ncases; i++) {
            b_case *c = &b_cases[i];
            if (c->x || !b_group_measured(i)) continue;
            if (b_first_of_group(i)) {
                row += row ? 2 : 1; /* the gap before, the heading */
                if (pass == 1)
                    fprintf(f, "%d \"%s   (%s, %s is better)\"\n", row - 1,
                            b_label(c, heading, sizeof heading), c->unit,
                            c->better > 0 ? "higher" : "lower");
            }
            if (!c->n) continue;
            if (pass == 0) {
                double best = 0;
                for (int j = 0; j < b_ncases; j++) {
                    b_case *o = &b_cases[j];
                    if (!o->n || !b_same_group(o, c)) continue;
                    double s = o->better > 0 ? b_median(o) : 1 / b_median(o);
                    if (s > best) best = s;
                }
                double speed = (c->better > 0 ? b_median(c) : 1 / b_median(c)) / best;
                b_case *m = c->kind == B_MP ? NULL : b_best_mp(c);
                b_fmt(v, sizeof v, b_median(c), c->unit);
                if (m)
                    snprintf(label, sizeof label, "%s   (%s: %s)", v, m->system,
                             b_fmt_ratio(r, sizeof r, b_ratio(m, c)));
                else
                    snprintf(label, sizeof label, "%s", v);
                const char *colour = c->kind == B_MP     ? "2062260"
                                     : c->kind == B_LIMIT ? "12303291"
                                                          : "16744206";
                fprintf(f, "%d %.6g %s \"%s\" \"%s\"\n", row, speed, colour, c->system, label);
            }
            row++;
        }
        fprintf(f, "\n\n");
    }
}

static void b_write_curves(FILE *f) {
    for (int i = 0; i < b_ncases; i++) {
        const b_case *c = &b_cases[i], *cols[B_MAXCOLS];
        if (!c->x || (i && !strcmp(b_cases[i - 1].workload, c->workload))) continue;
        int k = b_scale_systems(c->workload, cols);
        bool eff = b_has_efficiency(c->workload);
        if (!k) continue;
        fprintf(f, "# %s (%s)\n\"N\"", c->workload, eff ? "efficiency" : c->unit);
        for (int j = 0; j < k; j++) fprintf(f, " \"%s\"", cols[j]->system);
        fputc('\n', f);
        for (int j = i; j < b_ncases && !strcmp(b_cases[j].workload, c->workload); j++) {
            const b_case *g = &b_cases[j];
            if (!b_first_of_group(j) || !b_group_measured(j) || g->place != b_headline(g->workload))
                continue;
            fprintf(f, "%d", g->x);
            for (int col = 0; col < k; col++) {
                const b_case *o = b_find(g, cols[col]->system);
                double v = !o || !o->n ? NAN : eff ? b_efficiency(o) : b_median(o);
                if (v == v) fprintf(f, " %.6g", v);
                else fprintf(f, " NaN");
            }
            fputc('\n', f);
        }
        fprintf(f, "\n\n");
    }
}

static void b_write_plot(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "mpbench: %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "# title: %s, %s; medians of up to %d runs\n", b_machine, b_date, b_most_runs());
    b_write_bars(f);
    b_write_curves(f);
    fclose(f);
}

/* ---- main ------------------------------------------------------------------------------ */

static void b_usage(void) {
    fprintf(stderr,
            "usage: mpbench [-r runs] [-t timeout_s] [-b budget_s] [-s system] [-c out.csv]\n"
            "               [-m out.md] [-p out.dat] [-l] [-v] [workload-or-prefix...]\n"
            "  -r  runs of each pair, interleaved (default 5, at most %d)\n"
            "  -t  time limit of one run (default 60 s)\n"
            "  -b  after 3 runs, stop starting rounds that would end past this (default 360 s)\n"
            "  -s  only systems whose name contains this\n"
            "  workload-or-prefix: a prefix of workload/N=n/placement (\"pingpong\", \"queue_1p1c_64B/shared\")\n"
            "  -l  list the pairs and exit;  -v  print every run\n",
            B_MAXRUNS);
}

int main(int argc, char **argv) {
    int runs = 5, opt;
    double timeout = 60, budget = 360;
    const char *csv = NULL, *md = NULL, *plot = NULL, *sys = NULL;
    bool list = false, verbose = false;
    char cmdline[1024] = "mpbench";
    for (int i = 1; i < argc; i++) {
        size_t n = strlen(cmdline);
        snprintf(cmdline + n, sizeof cmdline - n, " %s", argv[i]);
    }
    while ((opt = getopt(argc, argv, "r:t:b:s:c:m:p:lvh")) != -1) {
        switch (opt) {
        case 'r': runs = atoi(optarg); break;
        case 't': timeout = atof(optarg); break;
        case 'b': budget = atof(optarg); break;
        case 's': sys = optarg; break;
        case 'c': csv = optarg; break;
        case 'm': md = optarg; break;
        case 'p': plot = optarg; break;
        case 'l': list = true; break;
        case 'v': verbose = true; break;
        default: b_usage(); return opt == 'h' ? 0 : 2;
        }
    }
    if (runs < 1 || runs > B_MAXRUNS || timeout <= 0) {
        b_usage();
        return 2;
    }
    char **names = argv + optind;
    int nnames = argc - optind;
    b_ncpus();
    b_expand_cases();
    for (int i = 0; i < b_ncases; i++) {
        b_cases[i].kind = b_kind_of(b_cases[i].system);
        b_cases[i].order = i;
    }
    qsort(b_cases, (size_t)b_ncases, sizeof b_cases[0], b_case_cmp);
    int selected = 0;
    for (int i = 0; i < b_ncases; i++) {
        b_case *c = &b_cases[i];
        if (!b_selected(c, names, nnames, sys)) continue;
        c->selected = true;
        selected++;
        char label[160];
        if (list)
            printf("%-28s %-28s %-8s %s%s\n", b_label(c, label, sizeof label), c->system, c->unit,
                   c->better > 0 ? "higher is better" : "lower is better",
                   c->max_runs ? " (fewer runs)" : "");
    }
    if (list) return 0;
    if (!selected) {
        fprintf(stderr, "mpbench: no workload matches (try -l)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    b_describe_machine();
    printf("# mpbench on %s, %s: %d interleaved runs of each pair, each in a fresh process\n",
           b_machine, b_date, runs);
    printf("# placement: two-party workloads run /cross (party i pinned to CPU i mod %d of %s) "
           "%s; the others where the scheduler puts them\n",
           b_ncpus(), b_party_cpus_all(), b_ncpus() > 1 ? "and /shared (every party on one CPU)"
                                                       : "only as /shared (one CPU)");
    b_run_all(runs, timeout, budget, names, nnames, sys, verbose);
    b_print_results(runs);
    b_print_ratios();
    b_print_scale(stdout, false);
    b_print_targets();
    if (csv) b_write_csv(csv);
    if (md) b_write_md(md, cmdline);
    if (plot) b_write_plot(plot);
    if (csv || md || plot)
        printf("\n# written:%s%s%s%s%s%s\n", csv ? " " : "", csv ? csv : "", md ? " " : "",
               md ? md : "", plot ? " " : "", plot ? plot : "");
    return 0;
}
