/* Listener and Client over TCP on 127.0.0.1.
   tcp_pingpong_64B: parent and child bounce one 64-byte message, TRIPS round trips;
   us per round trip. "mp.h": a conn from mp_listener_accept / mp_client (with an
   authkey; the handshake is outside the timing), against "raw TCP socket": an accepted
   socket and a connected one, TCP_NODELAY, bare 64-byte blocks.
   connect_auth: a child connects CONNECTS times with the authkey (connect and the
   mutual handshake) and closes; the parent accepts each. us per connection, from the
   fork to the last accept. The Python peers are in bench/peers.py.
   Both are two-party (bench.h): the parent is party 0, the child party 1. The ping-pong
   does 20,000 of the 100,000 round trips: pinned cross, each is two cross-CPU wakeups
   (the rate per round trip is the same; the note says so). */
#define _GNU_SOURCE
#include "../mp.h"
#include "bench.h"
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum { TRIPS = 20000, CONNECTS = 1000, MSG = 64 };
#define TRIPS_NOTE "20,000 of 100,000 round trips (scaled down, same rate)"

BENCH_TWO_PARTY("tcp_pingpong_64B")
BENCH_TWO_PARTY("connect_auth")
static const char key[] = "bench key";

static void b_reap(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
}

static mp_listener *b_listen(void) {
    mp_listener_desc d = {.address = "127.0.0.1:0", .authkey = key, .authkey_len = sizeof key - 1};
    return mp_listener_create(&d);
}

static mp_conn *b_connect(const char *address) {
    mp_client_desc d = {.address = address, .authkey = key, .authkey_len = sizeof key - 1};
    mp_conn *c;
    return mp_client(&d, &c) == MP_OK ? c : NULL;
}

BENCH(tcp_pingpong_mp, "tcp_pingpong_64B", "mp.h", "us", -1) {
    mp_listener *l = b_listen();
    char buf[MSG];
    size_t len;
    if (!l) return b_skip("mp_listener_create failed");
    b_party(0);
    pid_t pid = b_fork_party(1);
    if (pid == 0) { /* echo until EOF */
        mp_conn *c = b_connect(mp_listener_address(l));
        while (c && mp_conn_recv(c, buf, sizeof buf, &len, MP_FOREVER) == MP_OK)
            if (mp_conn_send(c, buf, len) != MP_OK) break;
        _exit(0);
    }
    mp_conn *c;
    int rc = mp_listener_accept(l, &c, 30);
    mp_listener_close(l);
    if (rc != MP_OK) {
        b_reap(pid);
        return b_fail("mp_listener_accept failed");
    }
    memset(buf, 'x', sizeof buf);
    bool ok = true;
    double t0 = b_now();
    for (int i = 0; i < TRIPS && ok; i++)
        ok = mp_conn_send(c, buf, MSG) == MP_OK &&
             mp_conn_recv(c, buf, sizeof buf, &len, MP_FOREVER) == MP_OK && len == MSG;
    double t = b_now() - t0;
    mp_conn_close(c);
    b_reap(pid);
    b_note(TRIPS_NOTE);
    return ok ? t / TRIPS * 1e6 : b_fail("mp.h TCP ping-pong failed");
}

static int b_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

BENCH(tcp_pingpong_raw, "tcp_pingpong_64B", "raw TCP socket", "us", -1) {
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    char buf[MSG];
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 8) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
        return b_skip("TCP listen on 127.0.0.1 failed");
    b_party(0);
    pid_t pid = b_fork_party(1);
    if (pid == 0) {
        int fd = b_nodelay(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) _exit(1);
        while (b_full(fd, buf, MSG, false) && b_full(fd, buf, MSG, true)) {}
        _exit(0);
    }
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    close(lfd);
    if (fd < 0) {
        b_reap(pid);
        return b_fail("accept failed");
    }
    b_nodelay(fd);
    memset(buf, 'x', sizeof buf);
    bool ok = true;
    double t0 = b_now();
    for (int i = 0; i < TRIPS && ok; i++) ok = b_full(fd, buf, MSG, true) && b_full(fd, buf, MSG, false);
    double t = b_now() - t0;
    close(fd);
    b_reap(pid);
    b_note(TRIPS_NOTE);
    return ok ? t / TRIPS * 1e6 : b_fail("raw TCP ping-pong failed");
}

BENCH(connect_auth_mp, "connect_auth", "mp.h", "us", -1) {
    mp_listener *l = b_listen();
    if (!l) return b_skip("mp_listener_create failed");
    double t0 = b_now();
    b_party(0);
    pid_t pid = b_fork_party(1);
    if (pid == 0) {
        for (int i = 0; i < CONNECTS; i++) {
            mp_conn *c = b_connect(mp_listener_address(l));
            if (!c) _exit(1);
            mp_conn_close(c);
        }
        _exit(0);
    }
    bool ok = true;
    for (int i = 0; i < CONNECTS && ok; i++) {
        mp_conn *c;
        ok = mp_listener_accept(l, &c, 30) == MP_OK;
        if (ok) mp_conn_close(c);
    }
    double t = b_now() - t0;
    mp_listener_close(l);
    b_reap(pid);
    b_note("TCP 127.0.0.1, HMAC-SHA256 both ways");
    return ok ? t / CONNECTS * 1e6 : b_fail("mp.h connect+handshake failed");
}
