/* pingpong_64B over pipes: parent and child bounce one 64-byte message, TRIPS round
   trips; us per round trip.
   "mp.h pipe": two one-way mp_pipes (pipe(2) underneath, mp_conn framing in Python's
   wire format), against "raw pipe(2)": the same two pipes carrying bare 64-byte blocks.
   "mp.h duplex pipe": one mp_pipe(duplex) (a socketpair), against "raw socketpair". */
#define _GNU_SOURCE
#include "../mp.h"
#include "bench.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* 20,000 of BENCHMARKS.md's 100,000 round trips: with the parties on different CPUs
   each one is two cross-CPU wakeups, up to 150 us on a VM, and the rate per round trip
   is the same (the note says so). */
enum { TRIPS = 20000, MSG = 64 };
#define TRIPS_NOTE "20,000 of 100,000 round trips (scaled down, same rate)"

static void b_reap(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
}

/* The parent is party 0, the echo party 1 (see bench.h); pingpong_64B is declared
   two-party in b_queue.c. */

/* down: parent -> child, up: child -> parent (the same conns when duplex). */
static double b_mp_pingpong(bool duplex) {
    mp_conn *down_r, *down_w, *up_r, *up_w;
    char buf[MSG];
    size_t len;
    if (mp_pipe(&down_r, &down_w, duplex) != MP_OK) return b_skip("mp_pipe failed");
    if (duplex) {
        up_r = down_w; /* the parent's end */
        up_w = down_r; /* the child's end */
    } else if (mp_pipe(&up_r, &up_w, false) != MP_OK) {
        mp_conn_close(down_r);
        mp_conn_close(down_w);
        return b_skip("mp_pipe failed");
    }
    b_party(0);
    pid_t pid = b_fork_party(1);
    if (pid == 0) { /* echo until EOF */
        mp_conn_close(down_w);
        if (!duplex) mp_conn_close(up_r);
        while (mp_conn_recv(down_r, buf, sizeof buf, &len, MP_FOREVER) == MP_OK)
            if (mp_conn_send(up_w, buf, len) != MP_OK) break;
        _exit(0);
    }
    mp_conn_close(down_r);
    if (!duplex) mp_conn_close(up_w);
    memset(buf, 'x', sizeof buf);
    bool ok = true;
    double t0 = b_now();
    for (int i = 0; i < TRIPS && ok; i++)
        ok = mp_conn_send(down_w, buf, MSG) == MP_OK &&
             mp_conn_recv(up_r, buf, sizeof buf, &len, MP_FOREVER) == MP_OK && len == MSG;
    double t = b_now() - t0;
    mp_conn_close(down_w);
    if (!duplex) mp_conn_close(up_r);
    b_reap(pid);
    b_note(TRIPS_NOTE);
    return ok ? t / TRIPS * 1e6 : b_skip("mp.h pipe ping-pong failed");
}

/* fds: [0] parent reads, [1] parent writes, [2] child reads, [3] child writes. */
static double b_raw_pingpong(int fd[4]) {
    char buf[MSG];
    b_party(0);
    pid_t pid = b_fork_party(1);
    if (pid == 0) {
        close(fd[0]);
        if (fd[1] != fd[0]) close(fd[1]);
        while (b_full(fd[2], buf, MSG, false) && b_full(fd[3], buf, MSG, true)) {}
        _exit(0);
    }
    close(fd[2]);
    if (fd[3] != fd[2]) close(fd[3]);
    memset(buf, 'x', sizeof buf);
    bool ok = true;
    double t0 = b_now();
    for (int i = 0; i < TRIPS && ok; i++)
        ok = b_full(fd[1], buf, MSG, true) && b_full(fd[0], buf, MSG, false);
    double t = b_now() - t0;
    close(fd[0]);
    if (fd[1] != fd[0]) close(fd[1]);
    b_reap(pid);
    b_note(TRIPS_NOTE);
    return ok ? t / TRIPS * 1e6 : b_skip("raw ping-pong failed");
}

BENCH(pingpong_mp_pipe, "pingpong_64B", "mp.h pipe", "us", -1) { return b_mp_pingpong(false); }

BENCH(pingpong_raw_pipe, "pingpong_64B", "raw pipe(2)", "us", -1) {
    int down[2], up[2];
    if (pipe2(down, O_CLOEXEC) < 0) return b_skip("pipe failed");
    if (pipe2(up, O_CLOEXEC) < 0) {
        close(down[0]);
        close(down[1]);
        return b_skip("pipe failed");
    }
    int fd[4] = {up[0], down[1], down[0], up[1]};
    return b_raw_pingpong(fd);
}

BENCH(pingpong_mp_duplex, "pingpong_64B", "mp.h duplex pipe", "us", -1) { return b_mp_pingpong(true); }

BENCH(pingpong_raw_socketpair, "pingpong_64B", "raw socketpair", "us", -1) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return b_skip("socketpair failed");
    int fd[4] = {sv[0], sv[0], sv[1], sv[1]};
    return b_raw_pingpong(fd);
}
