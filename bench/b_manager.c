/* dict_set_get: a set then a get of 8-byte values under 16-byte keys, cycling over
   1,000 keys; ops/s, one op = one call. "mp.h local dict": the dict in the shared heap,
   one process. "mp.h served dict": a Manager's dict over a Unix socket file, one client
   process; "mp.h served dict, 4 clients": four client processes at once on one dict
   (total ops/s). "raw Unix socket round trip": the floor of any served call - a client
   process bouncing a 64-byte message off an echo process over a Unix stream socket,
   bare read/write, one round trip = one op. "Python Manager dict": Python's
   Manager().dict() (bench/peers.py).
   Two-party (bench.h): the server is party 0 (the bench process pins itself before
   mp_manager_start forks the server, which keeps that CPU), the clients parties 1, 2,
   ...; the raw round trip's parent party 0, its echo party 1. The local dict is one
   process, pinned alone (b_one_process): its figure is the same in both placements. */
#define _GNU_SOURCE
#include "../mp.h"
#include "bench.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum { LOCAL_OPS = 4000000, SERVED_OPS = 200000, KEYS = 1000 };

BENCH_TWO_PARTY("dict_set_get")

static char d_keys[KEYS][16]; /* made before the timing */

static void d_make_keys(int who) {
    for (int i = 0; i < KEYS; i++) {
        memset(d_keys[i], 'k', sizeof d_keys[i]);
        snprintf(d_keys[i], sizeof d_keys[i], "%d-%d", who, i);
    }
}

static bool d_run(mp_dict *d, long ops) {
    for (long i = 0, k = 0; i < ops / 2; i++, k = k + 1 == KEYS ? 0 : k + 1) {
        long v = i, got = -1;
        size_t len;
        if (mp_dict_set(d, d_keys[k], 16, &v, sizeof v) != MP_OK) return false;
        if (mp_dict_get(d, d_keys[k], 16, &got, sizeof got, &len) != MP_OK || got != v) return false;
    }
    return true;
}

BENCH(dict_local, "dict_set_get", "mp.h local dict", "ops/s", +1) {
    b_one_process();
    mp_dict *d = mp_dict_create();
    if (!d) return b_fail("mp_dict_create");
    d_make_keys(0);
    d_run(d, 20000); /* the table at its size */
    double t0 = b_now();
    bool ok = d_run(d, LOCAL_OPS);
    double t = b_now() - t0;
    mp_dict_destroy(d);
    b_note("one process (no server), alone on one CPU");
    return ok ? LOCAL_OPS / t : b_fail("a local dict call failed");
}

/* clients processes, each SERVED_OPS / clients ops (all of them for one client). */
static double d_served(int clients) {
    mp_manager_desc md = {0};
    b_party(0); /* the server forked next keeps this CPU */
    mp_manager *m = mp_manager_start(&md);
    mp_dict *d = m ? mp_manager_dict(m, "bench") : NULL;
    if (!d) return b_fail("mp_manager_start/dict");
    long per = clients == 1 ? SERVED_OPS : SERVED_OPS / 2;
    int go[2];
    if (pipe(go) != 0) return b_fail("pipe");
    pid_t pid[4];
    for (int c = 0; c < clients; c++) {
        fflush(NULL);
        if ((pid[c] = b_fork_party(1 + c)) == 0) {
            char x;
            d_make_keys(c);
            d_run(d, 2000); /* its connection, and warm */
            if (read(go[0], &x, 1) != 1) _exit(2);
            _exit(d_run(d, per) ? 0 : 1);
        }
    }
    usleep(200000);
    double t0 = b_now();
    if (write(go[1], "gggg", (size_t)clients) != clients) return b_fail("write");
    bool ok = true;
    for (int c = 0; c < clients; c++) {
        int st;
        while (waitpid(pid[c], &st, 0) < 0 && errno == EINTR) {}
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    double t = b_now() - t0;
    close(go[0]), close(go[1]);
    mp_dict_destroy(d);
    mp_manager_shutdown(m);
    b_note("%d client process%s, %ld ops each, Unix socket file", clients, clients > 1 ? "es" : "", per);
    return ok ? (double)per * clients / t : b_fail("a served dict call failed");
}

BENCH(dict_served_1, "dict_set_get", "mp.h served dict", "ops/s", +1) { return d_served(1); }
BENCH(dict_served_4, "dict_set_get", "mp.h served dict, 4 clients", "ops/s", +1) { return d_served(4); }

BENCH(dict_raw_unix, "dict_set_get", "raw Unix socket round trip", "ops/s", +1) {
    int sv[2];
    char buf[64];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return b_fail("socketpair");
    b_party(0);
    pid_t pid = b_fork_party(1);
    if (pid == 0) { /* echo until EOF */
        close(sv[0]);
        while (b_full(sv[1], buf, sizeof buf, false) && b_full(sv[1], buf, sizeof buf, true)) {}
        _exit(0);
    }
    close(sv[1]);
    memset(buf, 'x', sizeof buf);
    bool ok = true;
    double t0 = b_now();
    for (long i = 0; i < SERVED_OPS && ok; i++)
        ok = b_full(sv[0], buf, sizeof buf, true) && b_full(sv[0], buf, sizeof buf, false);
    double t = b_now() - t0;
    close(sv[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    b_note("64-byte messages, a stream socketpair, bare read/write");
    return ok ? SERVED_OPS / t : b_fail("raw round trip failed");
}

BENCH_N(dict_python, "dict_set_get", "Python Manager dict", "ops/s", +1, 3) {
    return b_python("dict_set_get", "");
}
