/* Pipes and connections: framing, boundaries, EOF, timeouts, poll, mp_wait, hostile
   input, SIGPIPE, and the wire format against a real Python. */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* Byte i of a message of n bytes (the Python side uses the same formula). */
static unsigned char pat(size_t i, size_t n) { return (unsigned char)((i + n) % 251); }

static void fill(unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++) b[i] = pat(i, n);
}

static bool intact(const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i] != pat(i, n)) return false;
    return true;
}

static void raw_write(int fd, const void *p, size_t n) {
    const char *c = (const char *)p;
    while (n) {
        ssize_t r = write(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        CHECK(r > 0);
        c += r;
        n -= (size_t)r;
    }
}

static void be32(unsigned char *h, uint32_t v) {
    h[0] = (unsigned char)(v >> 24);
    h[1] = (unsigned char)(v >> 16);
    h[2] = (unsigned char)(v >> 8);
    h[3] = (unsigned char)v;
}

static void be64(unsigned char *h, uint64_t v) {
    be32(h, (uint32_t)(v >> 32));
    be32(h + 4, (uint32_t)v);
}

static int exited_ok(pid_t pid) {
    int st = t_wait(pid);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ---------------------------------------------------------------------------------- */

typedef struct {
    mp_conn *mine, *theirs; /* the child's end, and the parent's (closed in the child) */
    uint32_t rounds;
} ends;

enum { ROUNDS = 2000 };

static int pingpong_child(void *arg) {
    ends *e = (ends *)arg;
    mp_conn_close(e->theirs);
    uint32_t v;
    size_t len;
    /* phase 1: answer the parent's pings with v + 1 */
    for (uint32_t i = 0; i < e->rounds; i++) {
        if (mp_conn_recv(e->mine, &v, sizeof v, &len, 10) != MP_OK || len != 4) return 1;
        v++;
        if (mp_conn_send(e->mine, &v, sizeof v) != MP_OK) return 2;
    }
    /* phase 2: ping the parent, who answers v * 3 */
    for (uint32_t i = 0; i < e->rounds; i++) {
        if (mp_conn_send(e->mine, &i, sizeof i) != MP_OK) return 3;
        if (mp_conn_recv(e->mine, &v, sizeof v, &len, 10) != MP_OK || v != i * 3) return 4;
    }
    mp_conn_close(e->mine);
    return 0;
}

TEST(conn_pingpong_duplex_both_ways) {
    mp_conn *a, *b;
    CHECK_EQ(mp_pipe(&a, &b, true), MP_OK);
    uint32_t rounds = (uint32_t)t_scale(ROUNDS);
    ends e = {b, a, rounds};
    mp_process_desc d = {pingpong_child, &e, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK(p != NULL);
    CHECK_EQ(mp_process_start(p), MP_OK);
    mp_conn_close(b);
    uint32_t v;
    size_t len;
    for (uint32_t i = 0; i < rounds; i++) {
        CHECK_EQ(mp_conn_send(a, &i, sizeof i), MP_OK);
        CHECK_EQ(mp_conn_recv(a, &v, sizeof v, &len, 10), MP_OK);
        CHECK_EQ(len, 4);
        CHECK_EQ(v, i + 1);
    }
    for (uint32_t i = 0; i < rounds; i++) {
        CHECK_EQ(mp_conn_recv(a, &v, sizeof v, &len, 10), MP_OK);
        CHECK_EQ(v, i);
        v *= 3;
        CHECK_EQ(mp_conn_send(a, &v, sizeof v), MP_OK);
    }
    CHECK_EQ(mp_conn_recv(a, &v, sizeof v, &len, 10), MP_ECLOSED); /* child closed and left */
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 0);
    mp_process_destroy(p);
    mp_conn_close(a);
}

TEST(conn_oneway_direction_enforced) {
    mp_conn *r, *w;
    char buf[8];
    size_t len;
    void *m;
    CHECK_EQ(mp_pipe(&r, &w, false), MP_OK);
    CHECK(fcntl(mp_conn_fileno(r), F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(mp_conn_fileno(w), F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(fcntl(mp_conn_fileno(r), F_GETFL) & O_ACCMODE, O_RDONLY); /* a is the reader */
    CHECK_EQ(mp_conn_send(r, "x", 1), MP_EINVAL);
    CHECK_EQ(mp_conn_recv(w, buf, sizeof buf, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_recv_alloc(w, &m, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_poll(w, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_send(w, "hello", 5), MP_OK);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 0), MP_OK);
    CHECK_EQ(len, 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    mp_conn_close(r);
    mp_conn_close(w);
    /* duplex: both ends both ways, one fd each (a socketpair) */
    CHECK_EQ(mp_pipe(&r, &w, true), MP_OK);
    CHECK(fcntl(mp_conn_fileno(r), F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(mp_conn_send(r, "ab", 2), MP_OK);
    CHECK_EQ(mp_conn_send(w, "cd", 2), MP_OK);
    CHECK_EQ(mp_conn_recv(w, buf, sizeof buf, &len, 0), MP_OK);
    CHECK(len == 2 && memcmp(buf, "ab", 2) == 0);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 0), MP_OK);
    CHECK(len == 2 && memcmp(buf, "cd", 2) == 0);
    mp_conn_close(r);
    mp_conn_close(w);
}

/* ---------------------------------------------------------------------------------- */

static const size_t sizes[] = {0, 1, 65536, 16u << 20};
enum { NSIZES = 4 };

static int echo_child(void *arg) { /* echo every message until EOF */
    ends *e = (ends *)arg;
    mp_conn_close(e->theirs);
    void *m;
    size_t len;
    int r;
    while ((r = mp_conn_recv_alloc(e->mine, &m, &len, 30)) == MP_OK) {
        int s = mp_conn_send(e->mine, m, len);
        free(m);
        if (s != MP_OK) return 2;
    }
    mp_conn_close(e->mine);
    return r == MP_ECLOSED ? 0 : 1;
}

TEST(conn_sizes_intact_through_a_process) {
    mp_conn *a, *b;
    CHECK_EQ(mp_pipe(&a, &b, true), MP_OK);
    ends e = {b, a, 0};
    pid_t pid = t_fork(echo_child, &e);
    mp_conn_close(b);
    unsigned char *out = (unsigned char *)malloc(16u << 20), *in = (unsigned char *)malloc(16u << 20);
    CHECK(out && in);
    for (int k = 0; k < NSIZES; k++) {
        size_t n = sizes[k], len = 12345;
        fill(out, n);
        memset(in, 0xee, n);
        CHECK_EQ(mp_conn_send(a, out, n), MP_OK);
        CHECK_EQ(mp_conn_recv(a, in, n, &len, 30), MP_OK); /* a buffer of exactly n */
        CHECK_EQ(len, n);
        CHECK(intact(in, n));
    }
    /* the same sizes back to back, received with recv_alloc: boundaries kept */
    for (int k = 0; k < NSIZES; k++) {
        fill(out, sizes[k]);
        CHECK_EQ(mp_conn_send(a, out, sizes[k]), MP_OK);
    }
    for (int k = 0; k < NSIZES; k++) {
        void *m = NULL;
        size_t len = 0;
        CHECK_EQ(mp_conn_recv_alloc(a, &m, &len, 30), MP_OK);
        CHECK(m != NULL);
        CHECK_EQ(len, sizes[k]);
        CHECK(intact((unsigned char *)m, len));
        free(m);
    }
    free(out);
    free(in);
    mp_conn_close(a); /* EOF: the child leaves */
    CHECK(exited_ok(pid));
}

typedef struct {
    mp_conn *c;
    int n;
    size_t size;
    int rc;
} sender_arg;

static void *sender_thread(void *arg) {
    sender_arg *s = (sender_arg *)arg;
    unsigned char *b = (unsigned char *)malloc(s->size);
    fill(b, s->size);
    for (int i = 0; i < s->n && s->rc == MP_OK; i++) s->rc = mp_conn_send(s->c, b, s->size);
    free(b);
    return NULL;
}

/* One thread sends while another receives on the same duplex end: with 256 KiB
   messages through an echo, doing both from one thread would deadlock. */
TEST(conn_send_and_recv_from_two_threads) {
    mp_conn *a, *b;
    CHECK_EQ(mp_pipe(&a, &b, true), MP_OK);
    ends e = {b, a, 0};
    pid_t pid = t_fork(echo_child, &e);
    mp_conn_close(b);
    sender_arg s = {a, (int)t_scale(200), 256u << 10, MP_OK};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sender_thread, &s), 0);
    unsigned char *m = (unsigned char *)malloc(s.size);
    for (int i = 0; i < s.n; i++) {
        size_t len;
        CHECK_EQ(mp_conn_recv(a, m, s.size, &len, 30), MP_OK);
        CHECK_EQ(len, s.size);
        CHECK(intact(m, len));
    }
    pthread_join(t, NULL);
    CHECK_EQ(s.rc, MP_OK);
    free(m);
    mp_conn_close(a);
    CHECK(exited_ok(pid));
}

TEST(conn_oneway_sizes_and_many_small) {
    mp_conn *r, *w;
    CHECK_EQ(mp_pipe(&r, &w, false), MP_OK);
    pid_t pid = fork();
    if (pid == 0) {
        mp_conn_close(r);
        unsigned char *b = (unsigned char *)malloc(16u << 20);
        for (int k = 0; k < NSIZES; k++) {
            fill(b, sizes[k]);
            if (mp_conn_send(w, b, sizes[k]) != MP_OK) _exit(1);
        }
        for (uint32_t i = 0; i < 10000; i++) /* many small ones: several per read */
            if (mp_conn_send(w, &i, (size_t)(i % 5)) != MP_OK) _exit(2);
        free(b);
        mp_conn_close(w);
        _exit(0);
    }
    mp_conn_close(w);
    for (int k = 0; k < NSIZES; k++) {
        void *m;
        size_t len;
        CHECK_EQ(mp_conn_poll(r, 30), MP_OK); /* buffers the whole message first */
        CHECK_EQ(mp_conn_recv_alloc(r, &m, &len, 30), MP_OK);
        CHECK_EQ(len, sizes[k]);
        CHECK(intact((unsigned char *)m, len));
        free(m);
    }
    for (uint32_t i = 0; i < 10000; i++) {
        uint32_t v = 0;
        size_t len;
        CHECK_EQ(mp_conn_recv(r, &v, sizeof v, &len, 30), MP_OK);
        CHECK_EQ(len, i % 5);
        CHECK(memcmp(&v, &i, len) == 0);
    }
    size_t len;
    CHECK_EQ(mp_conn_recv(r, NULL, 0, &len, 30), MP_ECLOSED);
    CHECK(exited_ok(pid));
    mp_conn_close(r);
}

TEST(conn_too_small_buffer_then_retry) {
    mp_conn *r, *w;
    unsigned char small[10], big[100];
    size_t len = 0;
    CHECK_EQ(mp_pipe(&r, &w, false), MP_OK);
    fill(big, 100);
    CHECK_EQ(mp_conn_send(w, big, 100), MP_OK);
    CHECK_EQ(mp_conn_send(w, "next", 4), MP_OK);
    CHECK_EQ(mp_conn_recv(r, small, sizeof small, &len, 1), MP_ETOOBIG);
    CHECK_EQ(len, 100);
    len = 0;
    CHECK_EQ(mp_conn_recv(r, NULL, 0, &len, 1), MP_ETOOBIG); /* peek at the size */
    CHECK_EQ(len, 100);
    CHECK_EQ(mp_conn_poll(r, 0), MP_OK);
    memset(big, 0, sizeof big);
    CHECK_EQ(mp_conn_recv(r, big, sizeof big, &len, 1), MP_OK);
    CHECK_EQ(len, 100);
    CHECK(intact(big, 100));
    CHECK_EQ(mp_conn_recv(r, small, sizeof small, &len, 1), MP_OK);
    CHECK(len == 4 && memcmp(small, "next", 4) == 0);
    /* a peek at an empty message consumes nothing either; any buffer takes it */
    CHECK_EQ(mp_conn_send(w, NULL, 0), MP_OK);
    CHECK_EQ(mp_conn_send(w, "z", 1), MP_OK);
    len = 99;
    CHECK_EQ(mp_conn_recv(r, NULL, 0, &len, 1), MP_ETOOBIG);
    CHECK_EQ(len, 0);
    CHECK_EQ(mp_conn_recv(r, NULL, 0, &len, 1), MP_ETOOBIG); /* still there */
    CHECK_EQ(len, 0);
    CHECK_EQ(mp_conn_recv(r, small, 0, &len, 1), MP_OK);
    CHECK_EQ(len, 0);
    CHECK_EQ(mp_conn_recv(r, small, sizeof small, &len, 1), MP_OK);
    CHECK(len == 1 && small[0] == 'z');

    /* a big one: refused while only its header is in, then taken whole */
    pid_t pid = fork();
    if (pid == 0) {
        mp_conn_close(r);
        unsigned char *b = (unsigned char *)malloc(3u << 20);
        fill(b, 3u << 20);
        int rc = mp_conn_send(w, b, 3u << 20);
        rc |= mp_conn_send(w, "after", 5);
        free(b);
        mp_conn_close(w);
        _exit(rc == MP_OK ? 0 : 1);
    }
    mp_conn_close(w);
    CHECK_EQ(mp_conn_recv(r, small, sizeof small, &len, 30), MP_ETOOBIG);
    CHECK_EQ(len, 3u << 20);
    unsigned char *b = (unsigned char *)malloc(len);
    CHECK_EQ(mp_conn_recv(r, b, len, &len, 30), MP_OK);
    CHECK_EQ(len, 3u << 20);
    CHECK(intact(b, len));
    free(b);
    CHECK_EQ(mp_conn_recv(r, small, sizeof small, &len, 30), MP_OK);
    CHECK(len == 5 && memcmp(small, "after", 5) == 0);
    CHECK(exited_ok(pid));
    mp_conn_close(r);
}

TEST(conn_eof) {
    mp_conn *r, *w;
    char buf[16];
    size_t len;
    CHECK_EQ(mp_pipe(&r, &w, false), MP_OK);
    CHECK_EQ(mp_conn_send(w, "one", 3), MP_OK);
    CHECK_EQ(mp_conn_send(w, "two", 3), MP_OK);
    mp_conn_close(w);
    CHECK_EQ(mp_conn_poll(r, 0), MP_OK);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 0), MP_OK); /* messages before EOF */
    CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, -1), MP_OK);
    CHECK(len == 3 && memcmp(buf, "two", 3) == 0);
    CHECK_EQ(mp_conn_poll(r, -1), MP_OK); /* EOF is ready */
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, -1), MP_ECLOSED);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 0), MP_ECLOSED);
    void *m = (void *)buf;
    CHECK_EQ(mp_conn_recv_alloc(r, &m, &len, -1), MP_ECLOSED);
    CHECK(m == NULL);
    mp_conn_close(r);

    /* EOF when the last holder of the write end dies, and a duplex peer that closes */
    CHECK_EQ(mp_pipe(&r, &w, true), MP_OK);
    pid_t pid = fork();
    if (pid == 0) {
        mp_conn_close(r);
        mp_conn_send(w, "bye", 3);
        _exit(0); /* no close: the kernel closes it */
    }
    mp_conn_close(w);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 10), MP_OK);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 10), MP_ECLOSED);
    CHECK(exited_ok(pid));
    mp_conn_close(r);
}

TEST(conn_poll_and_recv_timeouts) {
    mp_conn *r, *w;
    char buf[64];
    size_t len;
    for (int duplex = 0; duplex < 2; duplex++) {
        CHECK_EQ(mp_pipe(&r, &w, duplex), MP_OK);
        double t0 = t_now();
        CHECK_EQ(mp_conn_poll(r, 0), MP_ETIMEDOUT);
        CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 0), MP_ETIMEDOUT);
        CHECK(t_now() - t0 < 0.5);
        t0 = t_now();
        CHECK_EQ(mp_conn_poll(r, 0.2), MP_ETIMEDOUT);
        double dt = t_now() - t0;
        CHECK(dt >= 0.19 && dt < 2.0);
        t0 = t_now();
        CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 0.15), MP_ETIMEDOUT);
        dt = t_now() - t0;
        CHECK(dt >= 0.14 && dt < 2.0);
        /* a partial message is not ready, and poll consumes none of it */
        unsigned char h[4];
        be32(h, 10);
        raw_write(mp_conn_fileno(w), h, 4);
        raw_write(mp_conn_fileno(w), "01234", 5);
        CHECK_EQ(mp_conn_poll(r, 0), MP_ETIMEDOUT);
        CHECK_EQ(mp_conn_poll(r, 0.05), MP_ETIMEDOUT);
        CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 0.05), MP_ETIMEDOUT);
        CHECK_EQ(mp_conn_recv(r, buf, 4, &len, 0.05), MP_ETOOBIG); /* the header is in */
        CHECK_EQ(len, 10);
        raw_write(mp_conn_fileno(w), "56789", 5);
        CHECK_EQ(mp_conn_poll(r, 1), MP_OK);
        CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 0), MP_OK);
        CHECK(len == 10 && memcmp(buf, "0123456789", 10) == 0);
        mp_conn_close(r);
        mp_conn_close(w);
    }
}

/* A receive polls a little before it sleeps (a cross-CPU wakeup is slow); a reader
   whose peer is slow must still sleep, not spin: 25 messages 20 ms apart, received
   with and without a timeout, cost the reader far less CPU than the wall time. */
static double cpu_seconds(void) {
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

TEST(conn_slow_peer_reader_sleeps) {
    enum { MSGS = 25 };
    for (int duplex = 0; duplex < 2; duplex++) {
        mp_conn *r, *w;
        CHECK_EQ(mp_pipe(&r, &w, duplex), MP_OK);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            mp_conn_close(r);
            for (int i = 0; i < MSGS; i++) {
                usleep(20000);
                if (mp_conn_send(w, &i, sizeof i) != MP_OK) _exit(1);
            }
            _exit(0);
        }
        mp_conn_close(w);
        double t0 = 0, c0 = 0;
        for (int i = 0; i < MSGS; i++) {
            int got = -1;
            size_t len;
            if (i == 2) t0 = t_now(), c0 = cpu_seconds(); /* both paths warm (valgrind's JIT) */
            CHECK_EQ(mp_conn_recv(r, &got, sizeof got, &len, i % 2 ? 5.0 : MP_FOREVER), MP_OK);
            CHECK(len == sizeof got && got == i);
        }
        double wall = t_now() - t0, cpu = cpu_seconds() - c0;
        CHECK(wall > 0.35);
        CHECK(cpu < 0.1 * wall);
        int st = t_wait(pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        mp_conn_close(r);
    }
}

/* A big message whose receive times out half way keeps what arrived. */
TEST(conn_timeout_mid_big_message_loses_nothing) {
    mp_conn *r, *w;
    size_t n = 1u << 20, len;
    unsigned char *src = (unsigned char *)malloc(n), *dst = (unsigned char *)malloc(n), h[4];
    fill(src, n);
    CHECK_EQ(mp_pipe(&r, &w, false), MP_OK);
    int wfd = mp_conn_fileno(w);
    pid_t pid = fork();
    if (pid == 0) { /* header and 40 KiB now (the pipe holds 64 KiB), the rest later */
        mp_conn_close(r);
        be32(h, (uint32_t)n);
        raw_write(wfd, h, 4);
        raw_write(wfd, src, 40000);
        usleep(300000);
        raw_write(wfd, src + 40000, n - 40000);
        _exit(0);
    }
    CHECK_EQ(mp_conn_recv(r, dst, n, &len, 0.1), MP_ETIMEDOUT);
    CHECK_EQ(mp_conn_poll(r, 0), MP_ETIMEDOUT);
    memset(dst, 0, n);
    CHECK_EQ(mp_conn_recv(r, dst, n, &len, 10), MP_OK);
    CHECK_EQ(len, n);
    CHECK(memcmp(dst, src, n) == 0);
    CHECK(exited_ok(pid));
    mp_conn_close(w);
    CHECK_EQ(mp_conn_recv(r, dst, n, &len, 1), MP_ECLOSED);
    mp_conn_close(r);
    free(src);
    free(dst);
}

/* ---------------------------------------------------------------------------------- */

static int wait_child(void *arg) {
    mp_conn **w = (mp_conn **)arg;
    usleep(100000);
    mp_conn_send(w[1], "late", 4);
    usleep(100000);
    return 7;
}

TEST(conn_wait_pipes_and_sentinel) {
    mp_conn *r[3], *w[3];
    for (int i = 0; i < 3; i++) CHECK_EQ(mp_pipe(&r[i], &w[i], i == 2), MP_OK);
    mp_process_desc d = {wait_child, w, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK_EQ(mp_process_start(p), MP_OK);
    int fds[4] = {mp_conn_fileno(r[0]), mp_conn_fileno(r[1]), mp_conn_fileno(r[2]),
                  mp_process_sentinel(p)};
    size_t nfd = 4;
    if (fds[3] < 0) { /* no pidfd: valgrind does not know pidfd_open */
        printf("SKIP conn_wait_pipes_and_sentinel: sentinel part (no pidfd here)\n");
        nfd = 3;
    }
    bool ready[4] = {false, false, false, false};
    CHECK_EQ(mp_wait(fds, nfd, ready, 0), MP_ETIMEDOUT);
    CHECK(!ready[0] && !ready[1] && !ready[2] && !ready[3]);
    CHECK_EQ(mp_wait(fds, nfd, ready, 10), 1); /* the child's message */
    CHECK(!ready[0] && ready[1] && !ready[2] && !ready[3]);
    char buf[8];
    size_t len;
    CHECK_EQ(mp_conn_recv(r[1], buf, sizeof buf, &len, 0), MP_OK);
    CHECK(len == 4 && memcmp(buf, "late", 4) == 0);
    if (nfd == 4) {
        CHECK_EQ(mp_wait(fds, 4, ready, 10), 1); /* then its end */
        CHECK(!ready[0] && !ready[1] && !ready[2] && ready[3]);
    }
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 7);

    /* a message already buffered in the conn counts though its fd is drained */
    CHECK_EQ(mp_conn_send(w[0], "m1", 2), MP_OK);
    CHECK_EQ(mp_conn_send(w[0], "m2", 2), MP_OK);
    CHECK_EQ(mp_conn_recv(r[0], buf, sizeof buf, &len, 0), MP_OK); /* both were read */
    CHECK_EQ(mp_wait(fds, 3, ready, 0), 1);
    CHECK(ready[0] && !ready[1] && !ready[2]);
    CHECK_EQ(mp_conn_recv(r[0], buf, sizeof buf, &len, 0), MP_OK);
    CHECK(len == 2 && memcmp(buf, "m2", 2) == 0);
    /* a partial message is not ready; a whole one and an EOF are */
    unsigned char h[4];
    be32(h, 3);
    raw_write(mp_conn_fileno(w[2]), h, 4);
    raw_write(mp_conn_fileno(w[2]), "ab", 2);
    CHECK_EQ(mp_wait(fds, 3, ready, 0.1), MP_ETIMEDOUT);
    raw_write(mp_conn_fileno(w[2]), "c", 1);
    mp_conn_close(w[1]);
    CHECK_EQ(mp_wait(fds, 3, ready, 5), 2);
    CHECK(!ready[0] && ready[1] && ready[2]);
    CHECK_EQ(mp_conn_recv(r[2], buf, sizeof buf, &len, 0), MP_OK);
    CHECK(len == 3 && memcmp(buf, "abc", 3) == 0);
    CHECK_EQ(mp_conn_recv(r[1], buf, sizeof buf, &len, 0), MP_ECLOSED);
    /* many fds (past the on-stack arrays) */
    int many[40];
    bool rd[40];
    for (int i = 0; i < 40; i++) many[i] = fds[i % 3];
    CHECK_EQ(mp_wait(many, 40, rd, 1), 13); /* r[1] at EOF, 13 times */
    for (int i = 0; i < 40; i++) CHECK_EQ(rd[i], i % 3 == 1);
    mp_process_destroy(p);
    for (int i = 0; i < 3; i++) {
        mp_conn_close(r[i]);
        if (i != 1) mp_conn_close(w[i]);
    }
}

/* A conn with a message already buffered must not hide the other ready fds: a raw pipe
   with data, another conn's message, an ended process's sentinel - all in one call, as
   Python's connection.wait returns every ready object. And a conn its peer floods never
   starves another conn's waiting message. */
static mp_conn *flood_rd; /* the parent's end, closed in the flooder */

static int flood_child(void *arg) {
    mp_conn *w = (mp_conn *)arg;
    mp_conn_close(flood_rd);
    for (int i = 0; i < 20000; i++)
        if (mp_conn_send(w, "flood", 5) != MP_OK) return 0; /* the parent closed: done */
    return 0;
}

TEST(conn_wait_reports_every_ready_fd) {
    mp_conn *ra, *wa, *rb, *wb;
    int raw[2];
    CHECK_EQ(mp_pipe(&ra, &wa, false), MP_OK);
    CHECK_EQ(mp_pipe(&rb, &wb, true), MP_OK);
    CHECK_EQ(pipe(raw), 0);
    CHECK_EQ(mp_conn_send(wa, "a1", 2), MP_OK);
    CHECK_EQ(mp_conn_send(wa, "a2", 2), MP_OK);
    char buf[16];
    size_t len;
    CHECK_EQ(mp_conn_recv(ra, buf, sizeof buf, &len, 1), MP_OK); /* a2 now sits in ra's buffer */
    CHECK_EQ(mp_conn_send(wb, "b", 1), MP_OK);
    raw_write(raw[1], "x", 1);
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    CHECK(pid > 0);
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    CHECK_EQ(t_wait(pid) & 0xffff, 0); /* reaped: a pidfd still reads as ended */
    int fds[4] = {mp_conn_fileno(ra), mp_conn_fileno(rb), raw[0], pfd};
    size_t n = pfd >= 0 ? 4 : 3; /* valgrind has no pidfd_open */
    bool ready[4] = {false, false, false, false};
    CHECK_EQ(mp_wait(fds, n, ready, 1), (int)n);
    CHECK(ready[0] && ready[1] && ready[2] && (n == 3 || ready[3]));
    CHECK_EQ(mp_conn_recv(ra, buf, sizeof buf, &len, 0), MP_OK);
    CHECK(len == 2 && memcmp(buf, "a2", 2) == 0);
    if (pfd >= 0) close(pfd);

    /* a flooded conn and a quiet one with a message: both in the first call */
    mp_conn *rf, *wf;
    CHECK_EQ(mp_pipe(&rf, &wf, false), MP_OK);
    flood_rd = rf;
    pid_t fl = t_fork(flood_child, wf);
    mp_conn_close(wf);
    CHECK_EQ(mp_conn_recv(rf, buf, sizeof buf, &len, 10), MP_OK); /* the flood is on */
    int fds2[2] = {mp_conn_fileno(rf), mp_conn_fileno(rb)};
    bool rd[2] = {false, false};
    CHECK_EQ(mp_conn_recv(rb, buf, sizeof buf, &len, 0), MP_OK); /* drain b, then send again */
    CHECK_EQ(mp_conn_send(wb, "b2", 2), MP_OK);
    CHECK(mp_wait(fds2, 2, rd, 1) >= 1);
    CHECK(rd[1]); /* reported at once, however full rf's buffer is */
    mp_conn_close(rf); /* the flooder sees MP_ECLOSED and leaves */
    CHECK(exited_ok(fl));
    close(raw[0]);
    close(raw[1]);
    mp_conn_close(ra);
    mp_conn_close(wa);
    mp_conn_close(rb);
    mp_conn_close(wb);
}

/* ---------------------------------------------------------------------------------- */

TEST(conn_malformed_headers) {
    mp_conn *r, *w;
    unsigned char h[12], buf[64];
    size_t len;
    void *m = NULL;
    CHECK_EQ(mp_pipe(&r, &w, false), MP_OK);
    int fd = mp_conn_fileno(w);
    /* 1.5 GiB announced, over the 1 GiB default: refused, nothing allocated, kept */
    be32(h, 0x60000000u);
    raw_write(fd, h, 4);
    CHECK_EQ(mp_conn_poll(r, 1), MP_OK); /* a refusal is ready to be reported */
    CHECK_EQ(mp_conn_recv_alloc(r, &m, &len, 1), MP_ETOOBIG);
    CHECK(m == NULL);
    CHECK_EQ(len, 0x60000000u);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 1), MP_ETOOBIG);
    CHECK_EQ(len, 0x60000000u);
    mp_conn_close(r);
    mp_conn_close(w);

    /* a negative length other than -1: no sender writes that */
    CHECK_EQ(mp_pipe(&r, &w, false), MP_OK);
    be32(h, (uint32_t)-5);
    raw_write(mp_conn_fileno(w), h, 4);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 1), MP_ETOOBIG);
    CHECK_EQ(len, SIZE_MAX);
    CHECK_EQ(mp_conn_recv_alloc(r, &m, &len, 1), MP_ETOOBIG);
    mp_conn_close(r);
    mp_conn_close(w);

    /* the 64-bit form: -1 then an 8-byte length; small lengths are legal, absurd refused */
    CHECK_EQ(mp_pipe(&r, &w, false), MP_OK);
    fd = mp_conn_fileno(w);
    be32(h, 0xffffffffu);
    be64(h + 4, 5);
    raw_write(fd, h, 12);
    raw_write(fd, "hello", 5);
    be64(h + 4, (uint64_t)1 << 62);
    raw_write(fd, h, 12);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 1), MP_OK);
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 1), MP_ETOOBIG);
    CHECK_EQ(len, (size_t)1 << 62);
    mp_conn_close(r);
    mp_conn_close(w);

    /* the limit is per conn; a refused message is still there once it is raised */
    CHECK_EQ(mp_pipe(&r, &w, false), MP_OK);
    CHECK_EQ(mp_conn_set_max_message(r, 10), MP_OK);
    CHECK_EQ(mp_conn_send(w, "0123456789", 10), MP_OK);
    CHECK_EQ(mp_conn_send(w, "0123456789A", 11), MP_OK);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 1), MP_OK);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 1), MP_ETOOBIG);
    CHECK_EQ(len, 11);
    CHECK_EQ(mp_conn_set_max_message(r, 11), MP_OK);
    CHECK_EQ(mp_conn_recv(r, buf, sizeof buf, &len, 1), MP_OK);
    CHECK(len == 11 && memcmp(buf, "0123456789A", 11) == 0);
    mp_conn_close(r);
    mp_conn_close(w);

    /* streams cut mid-header, mid-message, and mid-big-message: MP_ECLOSED, no hang */
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(mp_pipe(&r, &w, k == 1), MP_OK);
        fd = mp_conn_fileno(w);
        unsigned char *junk = (unsigned char *)calloc(1, 100000);
        if (k == 0) {
            raw_write(fd, "\0\0", 2);
        } else {
            be32(h, k == 1 ? 100 : 1u << 20);
            raw_write(fd, h, 4);
        }
        pid_t pid = fork();
        if (pid == 0) {
            mp_conn_close(r);
            if (k) raw_write(fd, junk, k == 1 ? 10 : 100000);
            free(junk);
            _exit(0);
        }
        mp_conn_close(w);
        double t0 = t_now();
        void *big = malloc(1u << 20);
        CHECK_EQ(mp_conn_recv(r, big, 1u << 20, &len, 10), MP_ECLOSED);
        CHECK_EQ(mp_conn_poll(r, 10), MP_OK);
        CHECK_EQ(mp_conn_recv(r, big, 1u << 20, &len, 10), MP_ECLOSED);
        CHECK(t_now() - t0 < 5);
        CHECK(exited_ok(pid));
        free(big);
        free(junk);
        mp_conn_close(r);
    }
}

/* ---------------------------------------------------------------------------------- */

/* The harness ignores SIGPIPE; these children put the default back first. */
static void sigpipe_dfl(void) { signal(SIGPIPE, SIG_DFL); }

/* In a child: send to a reader that is gone; 0 if that was MP_ECLOSED and we live. */
static int send_to_dead(bool duplex) {
    mp_conn *r, *w;
    if (mp_pipe(&r, &w, duplex) != MP_OK) return 10;
    mp_conn_close(r);
    static char big[200000];
    if (mp_conn_send(w, "x", 1) != MP_ECLOSED) return 11;
    if (mp_conn_send(w, big, sizeof big) != MP_ECLOSED) return 12;
    mp_conn_close(w);
    return 0;
}

static int sigpipe_default(void *arg) {
    (void)arg;
    sigpipe_dfl();
    return send_to_dead(false) | send_to_dead(true);
}

static int sigpipe_blocked(void *arg) {
    (void)arg;
    sigpipe_dfl();
    sigset_t s, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    int rc = send_to_dead(false);
    sigpending(&pend);
    if (sigismember(&pend, SIGPIPE)) return 20; /* ours was taken back */
    return rc;
}

static int sigpipe_ignored(void *arg) {
    (void)arg;
    signal(SIGPIPE, SIG_IGN);
    int rc = send_to_dead(false);
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    return rc ? rc : sa.sa_handler == SIG_IGN ? 0 : 30; /* left alone */
}

static int sigpipe_others_still_die(void *arg) {
    (void)arg;
    sigpipe_dfl();
    if (send_to_dead(false)) return 40;
    int p[2];
    if (pipe(p) < 0) return 41;
    close(p[0]);
    (void)!write(p[1], "x", 1); /* the program's own write: SIGPIPE kills, as by default */
    return 42;
}

static void *thread_main(void *arg) {
    (void)arg;
    return (void *)(intptr_t)send_to_dead(false);
}

static int sigpipe_threads(void *arg) {
    (void)arg;
    sigpipe_dfl();
    pthread_t t[4];
    void *rv;
    int rc = 0;
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, thread_main, NULL);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], &rv);
        rc |= (int)(intptr_t)rv;
    }
    return rc;
}

TEST(conn_sigpipe_never_kills) {
    int st;
    st = t_wait(t_fork(sigpipe_default, NULL));
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    st = t_wait(t_fork(sigpipe_blocked, NULL));
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    st = t_wait(t_fork(sigpipe_ignored, NULL));
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    st = t_wait(t_fork(sigpipe_threads, NULL));
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    st = t_wait(t_fork(sigpipe_others_still_die, NULL));
    CHECK(WIFSIGNALED(st));
    CHECK_EQ(WTERMSIG(st), SIGPIPE);
}

/* ---------------------------------------------------------------------------------- */

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

/* A send larger than the pipe blocks until the reader drains it; signals (no
   SA_RESTART) hitting the blocked send and recv change nothing. */
TEST(conn_send_blocks_on_full_pipe_and_survives_eintr) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: EINTR everywhere */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 5000}, {0, 5000}};
    setitimer(ITIMER_REAL, &it, NULL);
    mp_conn *r, *w;
    size_t n = 4u << 20, len;
    for (int duplex = 0; duplex < 2; duplex++) {
        CHECK_EQ(mp_pipe(&r, &w, duplex), MP_OK);
        pid_t pid = fork();
        if (pid == 0) {
            mp_conn_close(w);
            usleep(300000); /* the parent's send must wait for this */
            void *m;
            int rc = mp_conn_recv_alloc(r, &m, &len, 10);
            bool ok = rc == MP_OK && len == n && intact((unsigned char *)m, n);
            if (rc == MP_OK) free(m);
            rc = mp_conn_send(r, "done", 4);
            usleep(200000);
            _exit(ok && (duplex ? rc == MP_OK : rc == MP_EINVAL) ? 0 : 1);
        }
        if (!duplex) mp_conn_close(r);
        unsigned char *b = (unsigned char *)malloc(n);
        fill(b, n);
        double t0 = t_now();
        CHECK_EQ(mp_conn_send(w, b, n), MP_OK);
        CHECK(t_now() - t0 > 0.2);
        if (duplex) {
            char buf[8];
            CHECK_EQ(mp_conn_recv(w, buf, sizeof buf, &len, 10), MP_OK); /* blocked, EINTRed */
            CHECK(len == 4 && memcmp(buf, "done", 4) == 0);
            mp_conn_close(r);
        }
        free(b);
        CHECK(exited_ok(pid));
        mp_conn_close(w);
    }
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    CHECK(alarms > 10);
}

TEST(conn_open_existing_fds) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    /* access modes must agree with the flags */
    CHECK(mp_conn_open(p[0], MP_CONN_WRITABLE) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_conn_open(p[1], MP_CONN_READABLE | MP_CONN_WRITABLE) == NULL);
    CHECK(mp_conn_open(p[0], 0) == NULL);
    CHECK(mp_conn_open(p[0], 4) == NULL);
    CHECK(mp_conn_open(-1, MP_CONN_READABLE) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_conn_open(1000, MP_CONN_READABLE) == NULL);
    CHECK_EQ(errno, EBADF);
    /* non-blocking fds work as well: the conn waits where the fd would not */
    CHECK_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    CHECK_EQ(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    mp_conn *r = mp_conn_open(p[0], MP_CONN_READABLE), *w = mp_conn_open(p[1], MP_CONN_WRITABLE);
    CHECK(r && w);
    size_t n = 1u << 20, len;
    pid_t pid = fork();
    if (pid == 0) {
        mp_conn_close(r);
        unsigned char *b = (unsigned char *)malloc(n);
        fill(b, n);
        usleep(100000);
        int rc = mp_conn_send(w, b, n) | mp_conn_send(w, b, 3);
        _exit(rc == MP_OK ? 0 : 1);
    }
    mp_conn_close(w);
    void *m;
    CHECK_EQ(mp_conn_recv_alloc(r, &m, &len, -1), MP_OK);
    CHECK_EQ(len, n);
    CHECK(intact((unsigned char *)m, n));
    free(m);
    unsigned char b3[3];
    CHECK_EQ(mp_conn_recv(r, b3, 3, &len, -1), MP_OK);
    CHECK(len == 3 && b3[0] == pat(0, n) && b3[2] == pat(2, n));
    CHECK_EQ(mp_conn_recv(r, b3, 3, &len, -1), MP_ECLOSED);
    CHECK(exited_ok(pid));
    mp_conn_close(r);
}

TEST(conn_bad_arguments) {
    mp_conn *a, *b;
    size_t len;
    void *m;
    bool ready[2];
    char buf[4];
    CHECK_EQ(mp_pipe(NULL, &b, true), MP_EINVAL);
    CHECK_EQ(mp_pipe(&a, NULL, false), MP_EINVAL);
    CHECK_EQ(mp_conn_send(NULL, "x", 1), MP_EINVAL);
    CHECK_EQ(mp_conn_recv(NULL, buf, 4, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_recv_alloc(NULL, &m, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_poll(NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_fileno(NULL), MP_EINVAL);
    CHECK_EQ(mp_conn_set_max_message(NULL, 10), MP_EINVAL);
    mp_conn_close(NULL);
    CHECK_EQ(mp_pipe(&a, &b, true), MP_OK);
    CHECK_EQ(mp_conn_send(a, NULL, 1), MP_EINVAL);
    CHECK_EQ(mp_conn_recv(a, NULL, 4, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_recv(a, buf, 4, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_recv_alloc(a, NULL, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_recv_alloc(a, &m, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_set_max_message(a, 0), MP_EINVAL);
    int fds[2] = {mp_conn_fileno(a), -1};
    CHECK_EQ(mp_wait(NULL, 1, ready, 0), MP_EINVAL);
    CHECK_EQ(mp_wait(fds, 1, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_wait(fds, 0, ready, 0), MP_EINVAL);
    CHECK_EQ(mp_wait(fds, 2, ready, 0), MP_EINVAL);
    fds[1] = 1000; /* not open */
    CHECK_EQ(mp_wait(fds, 2, ready, 0), MP_EINVAL);
    mp_conn_close(a);
    mp_conn_close(b);
}

/* ---------------------------------------------------------------------------------- */

/* A 2 GiB message goes out with the 64-bit header. Moving all of it takes ~10 s on a
   loaded 2-core machine, so by default the reader checks the header and leaves (the
   sender must then see MP_ECLOSED); MP_TEST_BIG=1 receives it whole as well. */
TEST_T(conn_2gib_message_uses_64bit_header, 120) {
    if (getenv("MP_TEST_SLOW")) {
        printf("SKIP conn_2gib_message_uses_64bit_header: too slow under valgrind\n");
        return;
    }
    bool whole = getenv("MP_TEST_BIG") != NULL;
    size_t n = (size_t)1 << 31, len = 0;
    mp_conn *a, *b;
    CHECK_EQ(mp_pipe(&a, &b, true), MP_OK);
    pid_t pid = fork();
    if (pid == 0) { /* untouched pages read as zeros and cost no memory */
        mp_conn_close(a);
        unsigned char *m = (unsigned char *)mmap(NULL, n, PROT_READ | PROT_WRITE,
                                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) _exit(2);
        memcpy(m, "head", 4);
        memcpy(m + n - 4, "tail", 4);
        int rc = mp_conn_send(b, m, n);
        _exit(rc == (whole ? MP_OK : MP_ECLOSED) ? 0 : 1);
    }
    mp_conn_close(b);
    unsigned char h[16];
    ssize_t got;
    do got = recv(mp_conn_fileno(a), h, 16, MSG_PEEK | MSG_WAITALL);
    while (got < 0 && errno == EINTR);
    CHECK_EQ(got, 16);
    static const unsigned char want[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0,
                                           'h', 'e', 'a', 'd'};
    CHECK(memcmp(h, want, 16) == 0);
    CHECK_EQ(mp_conn_recv(a, NULL, 0, &len, 10), MP_ETOOBIG); /* over the 1 GiB default */
    CHECK_EQ(len, n);
    if (whole) {
        CHECK_EQ(mp_conn_set_max_message(a, n), MP_OK);
        unsigned char *m = (unsigned char *)mmap(NULL, n, PROT_READ | PROT_WRITE,
                                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        CHECK(m != MAP_FAILED);
        CHECK_EQ(mp_conn_recv(a, m, n, &len, 100), MP_OK);
        CHECK_EQ(len, n);
        CHECK(memcmp(m, "head", 4) == 0 && memcmp(m + n - 4, "tail", 4) == 0);
        CHECK(m[n / 2] == 0 && m[4] == 0 && m[n - 5] == 0);
        munmap(m, n);
    }
    mp_conn_close(a);
    CHECK(exited_ok(pid));
}

/* ---------------------------------------------------------------------------------- */

static const char py_script[] =
    "import sys\n"
    "from multiprocessing.connection import Connection\n"
    "d = Connection(int(sys.argv[1]))\n"
    "w = Connection(int(sys.argv[2]), readable=False)\n"
    "sizes = [int(x) for x in sys.argv[3].split(',')]\n"
    "def pat(n):\n"
    "    k = n % 251\n"
    "    return (bytes(range(251)) * (n // 251 + 2))[k:k + n]\n"
    "for n in sizes:\n"
    "    m = d.recv_bytes()\n"
    "    if m != pat(n): sys.exit(10)\n"
    "    d.send_bytes(m[::-1])\n"
    "for n in sizes:\n"
    "    w.send_bytes(pat(n))\n"
    "w.close()\n"
    "if d.recv_bytes() != b'sixty-four': sys.exit(11)\n"
    "d.send_bytes(b'ok')\n"
    "try:\n"
    "    d.recv_bytes()\n"
    "    sys.exit(12)\n"
    "except EOFError:\n"
    "    pass\n";

static bool find_python(void) {
    const char *path = getenv("PATH");
    char buf[4096];
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        const char *e = strchr(path, ':');
        size_t n = e ? (size_t)(e - path) : strlen(path);
        snprintf(buf, sizeof buf, "%.*s/python3", (int)n, path);
        if (access(buf, X_OK) == 0) return true;
        path += n + (e ? 1 : 0);
    }
    return false;
}

TEST(conn_python_interop) {
    if (!find_python()) {
        printf("SKIP conn_python_interop: python3 not found in PATH\n");
        return;
    }
    if (getenv("MP_TEST_SLOW")) { /* valgrind would trace the interpreter */
        printf("SKIP conn_python_interop: not under valgrind\n");
        return;
    }
    static const size_t psizes[] = {0, 1, 5, 4091, 4092, 16384, 16385, 65536, 1048579, 16u << 20};
    enum { NP = sizeof psizes / sizeof psizes[0] };
    char list[256] = "", a1[16], a2[16];
    for (int i = 0; i < NP; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%zu", i ? "," : "", psizes[i]);
    mp_conn *d, *d_py, *r, *w_py;
    CHECK_EQ(mp_pipe(&d, &d_py, true), MP_OK);
    CHECK_EQ(mp_pipe(&r, &w_py, false), MP_OK);
    snprintf(a1, sizeof a1, "%d", mp_conn_fileno(d_py));
    snprintf(a2, sizeof a2, "%d", mp_conn_fileno(w_py));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) { /* the two Python ends survive exec, the rest is close-on-exec */
        fcntl(mp_conn_fileno(d_py), F_SETFD, 0);
        fcntl(mp_conn_fileno(w_py), F_SETFD, 0);
        execlp("python3", "python3", "-c", py_script, a1, a2, list, (char *)NULL);
        _exit(127);
    }
    mp_conn_close(d_py);
    mp_conn_close(w_py);
    unsigned char *out = (unsigned char *)malloc(16u << 20);
    for (int k = 0; k < NP; k++) { /* C -> Python, and Python's echo (reversed) back */
        size_t n = psizes[k], len;
        fill(out, n);
        CHECK_EQ(mp_conn_send(d, out, n), MP_OK);
        void *m;
        CHECK_EQ(mp_conn_recv_alloc(d, &m, &len, 60), MP_OK);
        CHECK_EQ(len, n);
        for (size_t i = 0; i < n; i++)
            if (((unsigned char *)m)[i] != pat(n - 1 - i, n)) CHECK(!"echo differs");
        free(m);
    }
    for (int k = 0; k < NP; k++) { /* Python -> C on a one-way pipe */
        void *m;
        size_t len;
        CHECK_EQ(mp_conn_recv_alloc(r, &m, &len, 60), MP_OK);
        CHECK_EQ(len, psizes[k]);
        CHECK(intact((unsigned char *)m, len));
        free(m);
    }
    size_t len;
    CHECK_EQ(mp_conn_recv(r, NULL, 0, &len, 60), MP_ECLOSED); /* Python closed it */
    /* the 64-bit header form, as Python writes for 2 GiB and more, read by Python */
    unsigned char h[12];
    be32(h, 0xffffffffu);
    be64(h + 4, 10);
    raw_write(mp_conn_fileno(d), h, 12);
    raw_write(mp_conn_fileno(d), "sixty-four", 10);
    char buf[8];
    CHECK_EQ(mp_conn_recv(d, buf, sizeof buf, &len, 60), MP_OK);
    CHECK(len == 2 && memcmp(buf, "ok", 2) == 0);
    mp_conn_close(d); /* Python sees EOFError and leaves */
    int st = t_wait(pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    mp_conn_close(r);
    free(out);
}
