/* Listener and Client: addresses (Unix path, abstract, TCP v4/v6), file modes and
   clean-up, the handshake between mp processes and with real Python peers (3.11's
   HMAC-MD5 and 3.12+'s {sha256}, in both roles), wrong keys, a stalled client, refused
   and reset connections, timeouts and fd exhaustion. */
#define _GNU_SOURCE
#include "test.h"
#include "py_peer.h"
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char KEY[] = "the shared secret";
#define KEYLEN (sizeof KEY - 1)

static unsigned char pat(size_t i, size_t n) { return (unsigned char)((i + n) % 251); }
static void fill(unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++) b[i] = pat(i, n);
}
static bool intact(const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i] != pat(i, n)) return false;
    return true;
}

static const size_t sizes[] = {0, 1, 255, 256, 257, 65536, 1048579, 16u << 20};
enum { NSIZES = sizeof sizes / sizeof sizes[0] };

static bool have_ipv6(void) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* A unique name for this process: other worktrees run the suite at the same time. */
static void uniq(char *buf, size_t cap, const char *fmt) {
    static int n;
    snprintf(buf, cap, fmt, (int)getpid(), n++);
}

TEST(listener_addresses_modes_and_cleanup) {
    struct stat st;
    /* NULL: a fresh socket file in a private 0700 directory; both removed on close */
    mp_listener *l = mp_listener_create(NULL);
    CHECK(l != NULL);
    char path[256], dir[256];
    snprintf(path, sizeof path, "%s", mp_listener_address(l));
    CHECK(path[0] == '/');
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    CHECK(mp_listener_fileno(l) >= 0);
    mp_listener_close(l);
    CHECK(stat(path, &st) != 0 && errno == ENOENT);
    CHECK(stat(dir, &st) != 0 && errno == ENOENT);
    /* a given path: 0600 whatever the umask, removed on close, but not by a forked copy */
    uniq(path, sizeof path, "/tmp/mp-test-%d-%d.sock");
    mode_t old = umask(0);
    mp_listener_desc d = {.address = path};
    CHECK((l = mp_listener_create(&d)) != NULL);
    umask(old);
    CHECK(strcmp(mp_listener_address(l), path) == 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        mp_listener_close(l);
        _exit(0);
    }
    CHECK_EQ(t_wait(pid), 0);
    CHECK(stat(path, &st) == 0);
    CHECK(mp_listener_create(&d) == NULL && errno == EADDRINUSE); /* taken */
    mp_listener_close(l);
    CHECK(stat(path, &st) != 0);
    /* TCP and abstract names have no permissions: they need a key, or an explicit yes */
    mp_listener_desc t = {.address = "127.0.0.1:0"};
    CHECK(mp_listener_create(&t) == NULL && errno == EINVAL);
    char abs[96];
    uniq(abs, sizeof abs, "@mp-test-nokey-%d-%d");
    t.address = abs;
    CHECK(mp_listener_create(&t) == NULL && errno == EINVAL);
    t.allow_unauthenticated = true;
    CHECK((l = mp_listener_create(&t)) != NULL);
    CHECK(strcmp(mp_listener_address(l), abs) == 0);
    mp_listener_close(l);
    t.address = "127.0.0.1:0";
    t.allow_unauthenticated = false;
    t.authkey = KEY, t.authkey_len = KEYLEN;
    CHECK((l = mp_listener_create(&t)) != NULL);
    const char *a = mp_listener_address(l);
    CHECK(strncmp(a, "127.0.0.1:", 10) == 0 && atoi(a + 10) > 0);
    mp_listener_close(l);
    if (have_ipv6()) {
        t.address = "[::1]:0";
        CHECK((l = mp_listener_create(&t)) != NULL);
        a = mp_listener_address(l);
        CHECK(strncmp(a, "[::1]:", 6) == 0 && atoi(a + 6) > 0);
        mp_listener_close(l);
    } else {
        printf("SKIP part of listener_addresses_modes_and_cleanup: no IPv6 loopback\n");
    }
    /* bad addresses and arguments */
    static const char *bad[] = {"", "nocolon", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:8x",
                                "::1:80", "[::1:80", "@", "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t.address = bad[i];
        errno = 0;
        CHECK(mp_listener_create(&t) == NULL);
        CHECK_EQ(errno, EINVAL);
        mp_client_desc c = {.address = bad[i]};
        mp_conn *conn = (mp_conn *)1;
        CHECK_EQ(mp_client(&c, &conn), MP_EINVAL);
        CHECK(conn == NULL);
    }
    char longp[200];
    memset(longp, 'x', sizeof longp - 1);
    longp[0] = '/', longp[sizeof longp - 1] = 0;
    t.address = longp;
    CHECK(mp_listener_create(&t) == NULL && errno == ENAMETOOLONG);
    t.address = "nosuchhost.invalid:80";
    CHECK(mp_listener_create(&t) == NULL && errno == ENOENT);
    mp_listener_desc k = {.authkey_len = 3}; /* a length without a key */
    CHECK(mp_listener_create(&k) == NULL && errno == EINVAL);
    mp_conn *conn;
    CHECK_EQ(mp_listener_accept(NULL, &conn, 0), MP_EINVAL);
    CHECK_EQ(mp_client(NULL, &conn), MP_EINVAL);
    CHECK(mp_listener_address(NULL) == NULL);
    CHECK_EQ(mp_listener_fileno(NULL), MP_EINVAL);
    mp_listener_close(NULL);
    CHECK(strcmp(mp_strerror(MP_EAUTH), "authentication failed") == 0);
    CHECK(strcmp(mp_strerror(MP_ENOTFOUND), "no such key, index or name") == 0);
}

/* ---- mp <-> mp ---- */

/* The echo protocol both peers run: the client sends each size, the server echoes it
   reversed; then the server sends each size; "bye" and "done" end it. */
static bool echo_client(mp_conn *c) {
    unsigned char *out = (unsigned char *)malloc(16u << 20);
    bool ok = out != NULL;
    for (int k = 0; ok && k < NSIZES; k++) {
        size_t n = sizes[k], len;
        void *m;
        fill(out, n);
        ok = mp_conn_send(c, out, n) == MP_OK && mp_conn_recv_alloc(c, &m, &len, 60) == MP_OK;
        if (!ok) break;
        for (size_t i = 0; ok && i < n; i++) ok = ((unsigned char *)m)[i] == pat(n - 1 - i, n);
        ok = ok && len == n;
        free(m);
    }
    for (int k = 0; ok && k < NSIZES; k++) {
        void *m;
        size_t len;
        ok = mp_conn_recv_alloc(c, &m, &len, 60) == MP_OK;
        if (ok) ok = len == sizes[k] && intact((unsigned char *)m, len), free(m);
    }
    char buf[8];
    size_t len;
    ok = ok && mp_conn_send(c, "bye", 3) == MP_OK &&
         mp_conn_recv(c, buf, sizeof buf, &len, 60) == MP_OK && len == 4 && memcmp(buf, "done", 4) == 0;
    free(out);
    return ok;
}

static bool echo_server(mp_conn *c) {
    unsigned char *out = (unsigned char *)malloc(16u << 20);
    bool ok = out != NULL;
    for (int k = 0; ok && k < NSIZES; k++) {
        void *m;
        size_t len;
        ok = mp_conn_recv_alloc(c, &m, &len, 60) == MP_OK && len == sizes[k];
        if (!ok) break;
        for (size_t i = 0; i < len; i++) out[i] = ((unsigned char *)m)[len - 1 - i];
        free(m);
        ok = mp_conn_send(c, out, len) == MP_OK;
    }
    for (int k = 0; ok && k < NSIZES; k++) {
        fill(out, sizes[k]);
        ok = mp_conn_send(c, out, sizes[k]) == MP_OK;
    }
    char buf[8];
    size_t len;
    ok = ok && mp_conn_recv(c, buf, sizeof buf, &len, 60) == MP_OK && len == 3 &&
         mp_conn_send(c, "done", 4) == MP_OK;
    free(out);
    return ok;
}

typedef struct {
    const char *address;
    const char *key;
    double timeout;
} client_arg;

/* A forked client: 0 when the echo protocol ran, else the mp code (negated). */
static int client_proc(void *arg) {
    client_arg *a = (client_arg *)arg;
    mp_client_desc d = {.address = a->address, .authkey = a->key,
                        .authkey_len = a->key ? strlen(a->key) : 0, .timeout = a->timeout};
    mp_conn *c;
    int rc = mp_client(&d, &c);
    if (rc != MP_OK) return -rc;
    bool ok = echo_client(c);
    mp_conn_close(c);
    return ok ? 0 : 100;
}

static void c_to_c(const char *address) {
    mp_listener_desc d = {.address = address, .authkey = KEY, .authkey_len = KEYLEN};
    mp_listener *l = mp_listener_create(&d);
    CHECK(l != NULL);
    client_arg a = {mp_listener_address(l), KEY, 0};
    pid_t pid = t_fork(client_proc, &a);
    int fd = mp_listener_fileno(l); /* readable once the client waits */
    bool ready;
    CHECK_EQ(mp_wait(&fd, 1, &ready, 30), 1);
    CHECK(ready);
    mp_conn *c;
    CHECK_EQ(mp_listener_accept(l, &c, 30), MP_OK);
    int nodelay = 0;
    socklen_t sl = sizeof nodelay;
    if (address[0] != '/' && address[0] != '.' && address[0] != '@') { /* TCP */
        CHECK_EQ(getsockopt(mp_conn_fileno(c), IPPROTO_TCP, TCP_NODELAY, &nodelay, &sl), 0);
        CHECK(nodelay);
    }
    CHECK(echo_server(c));
    mp_conn_close(c);
    int st = t_wait(pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    mp_listener_close(l);
}

TEST(listener_mp_to_mp_every_transport) {
    char path[96], abs[96];
    CHECK_EQ(chdir("/tmp"), 0); /* this test's own process: the relative path is there */
    uniq(path, sizeof path, "./mp-test-%d-%d.sock");
    uniq(abs, sizeof abs, "@mp-test-%d-%d");
    c_to_c(path);
    c_to_c(abs);
    c_to_c("127.0.0.1:0");
    c_to_c("localhost:0");
    if (have_ipv6()) c_to_c("[::1]:0");
    else printf("SKIP listener_mp_to_mp_every_transport [::1]: no IPv6 loopback\n");
    /* no key on either side, on a socket file */
    mp_listener *l = mp_listener_create(NULL);
    client_arg a = {mp_listener_address(l), NULL, 0};
    pid_t pid = t_fork(client_proc, &a);
    mp_conn *c;
    CHECK_EQ(mp_listener_accept(l, &c, 30), MP_OK);
    CHECK(echo_server(c));
    mp_conn_close(c);
    CHECK_EQ(t_wait(pid), 0);
    mp_listener_close(l);
}

TEST(listener_wrong_key_fails_both_sides) {
    mp_listener_desc d = {.address = "127.0.0.1:0", .authkey = KEY, .authkey_len = KEYLEN};
    mp_listener *l = mp_listener_create(&d);
    CHECK(l != NULL);
    client_arg bad = {mp_listener_address(l), "wrong key", 0};
    client_arg good = {mp_listener_address(l), KEY, 0};
    pid_t pid = t_fork(client_proc, &bad);
    mp_conn *c = (mp_conn *)1;
    CHECK_EQ(mp_listener_accept(l, &c, 30), MP_EAUTH);
    CHECK(c == NULL);
    CHECK_EQ(t_wait(pid), (-MP_EAUTH) << 8);
    pid = t_fork(client_proc, &good); /* the listener goes on */
    CHECK_EQ(mp_listener_accept(l, &c, 30), MP_OK);
    CHECK(echo_server(c));
    mp_conn_close(c);
    CHECK_EQ(t_wait(pid), 0);
    /* a raw client that sends data before (instead of) the handshake: nothing of it is
       ever a message; the listener still accepts the next one */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(strchr(mp_listener_address(l), ':') + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(write(fd, "\0\0\0\5hello\0\0\0\5world", 18), 18);
    CHECK_EQ(mp_listener_accept(l, &c, 30), MP_EAUTH);
    close(fd);
    mp_listener_close(l);
}

TEST(listener_stalled_client_dropped_at_timeout) {
    char path[96];
    uniq(path, sizeof path, "/tmp/mp-test-%d-%d.sock");
    mp_listener_desc d = {.address = path, .authkey = KEY, .authkey_len = KEYLEN,
                          .handshake_timeout = 0.5};
    mp_listener *l = mp_listener_create(&d);
    CHECK(l != NULL);
    /* a client that connects and says nothing */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    memcpy(un.sun_path, path, strlen(path) + 1);
    CHECK_EQ(connect(fd, (struct sockaddr *)&un, sizeof un), 0);
    client_arg good = {path, KEY, 0};
    pid_t pid = t_fork(client_proc, &good); /* queued behind the silent one */
    double t0 = t_now();
    mp_conn *c;
    CHECK_EQ(mp_listener_accept(l, &c, 30), MP_EAUTH);
    double dt = t_now() - t0;
    CHECK(dt >= 0.45 && dt < 5);
    CHECK_EQ(mp_listener_accept(l, &c, 30), MP_OK); /* the good one, at once */
    CHECK(echo_server(c));
    mp_conn_close(c);
    CHECK_EQ(t_wait(pid), 0);
    close(fd);
    mp_listener_close(l);
}

TEST(listener_faults_refused_reset_timeouts_fds) {
    char path[96];
    mp_conn *c;
    /* a socket file nobody listens on, a port nobody listens on: MP_ECLOSED */
    uniq(path, sizeof path, "/tmp/mp-test-%d-%d.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    memcpy(un.sun_path, path, strlen(path) + 1);
    CHECK_EQ(bind(fd, (struct sockaddr *)&un, sizeof un), 0);
    mp_client_desc cd = {.address = path};
    CHECK_EQ(mp_client(&cd, &c), MP_ECLOSED);
    close(fd);
    unlink(path);
    errno = 0;
    CHECK_EQ(mp_client(&cd, &c), MP_ESYS); /* no such file */
    CHECK_EQ(errno, ENOENT);
    int tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(tfd, (struct sockaddr *)&sa, sizeof sa), 0); /* bound, not listening */
    CHECK_EQ(getsockname(tfd, (struct sockaddr *)&sa, &sl), 0);
    char tcp[64];
    snprintf(tcp, sizeof tcp, "127.0.0.1:%d", ntohs(sa.sin_port));
    cd.address = tcp;
    CHECK_EQ(mp_client(&cd, &c), MP_ECLOSED);
    close(tfd);
    /* a listener that never accepts: the client's timeout covers the handshake */
    mp_listener_desc d = {.address = "127.0.0.1:0", .authkey = KEY, .authkey_len = KEYLEN};
    mp_listener *l = mp_listener_create(&d);
    CHECK(l != NULL);
    mp_client_desc kd = {.address = mp_listener_address(l), .authkey = KEY, .authkey_len = KEYLEN,
                         .timeout = 0.3};
    double t0 = t_now();
    CHECK_EQ(mp_client(&kd, &c), MP_ETIMEDOUT);
    CHECK(t_now() - t0 >= 0.29);
    /* that client left: the listener sees it closed mid-handshake and goes on */
    CHECK_EQ(mp_listener_accept(l, &c, 5), MP_EAUTH);
    CHECK_EQ(mp_listener_accept(l, &c, 0), MP_ETIMEDOUT);
    CHECK_EQ(mp_listener_accept(l, &c, 0.05), MP_ETIMEDOUT);
    /* out of fds: accept is MP_ESYS/EMFILE, the client stays queued, the listener lives */
    client_arg good = {mp_listener_address(l), KEY, 0};
    pid_t pid = t_fork(client_proc, &good);
    int w = mp_listener_fileno(l);
    bool ready;
    CHECK_EQ(mp_wait(&w, 1, &ready, 30), 1);
    struct rlimit old, lim;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    lim = old;
    int probe = dup(0); /* the lowest free fd: the limit leaves no room for another */
    close(probe);
    lim.rlim_cur = (rlim_t)probe;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
    errno = 0;
    int rc = mp_listener_accept(l, &c, 5);
    int e = errno;
    errno = 0;
    int crc = mp_client(&kd, &c); /* no fd for the client's socket either */
    int ce = errno;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    CHECK_EQ(rc, MP_ESYS);
    CHECK_EQ(e, EMFILE);
    CHECK_EQ(crc, MP_ESYS);
    CHECK_EQ(ce, EMFILE);
    /* valgrind emulates the fd limit after the real accept4 succeeded, and closes
       that client: only natively does it stay queued */
    if (!getenv("MP_TEST_SLOW")) {
        CHECK_EQ(mp_listener_accept(l, &c, 30), MP_OK);
        CHECK(echo_server(c));
        mp_conn_close(c);
        CHECK_EQ(t_wait(pid), 0);
    } else {
        t_wait(pid);
    }
    mp_listener_close(l);
    /* a server that closes at once: reset or closed mid-handshake, MP_ECLOSED */
    uniq(path, sizeof path, "/tmp/mp-test-%d-%d.sock");
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memcpy(un.sun_path, path, strlen(path) + 1);
    CHECK_EQ(bind(fd, (struct sockaddr *)&un, sizeof un), 0);
    CHECK_EQ(listen(fd, 4), 0);
    pid = fork();
    if (pid == 0) {
        int s = accept(fd, NULL, NULL);
        close(s);
        _exit(0);
    }
    mp_client_desc pd = {.address = path, .authkey = KEY, .authkey_len = KEYLEN, .timeout = 10};
    CHECK_EQ(mp_client(&pd, &c), MP_ECLOSED);
    CHECK_EQ(t_wait(pid), 0);
    close(fd);
    unlink(path);
}

/* ---- Python peers ---- */

static const char py_peer[] =
    "import sys, socket\n"
    "from multiprocessing import AuthenticationError\n"
    "from multiprocessing.connection import Listener, Client, Connection\n"
    "from multiprocessing.connection import answer_challenge, deliver_challenge\n"
    "role, fam, addr, key, sizes = sys.argv[1:6]\n"
    "key = None if key == '-' else key.encode()\n"
    "sizes = [int(x) for x in sizes.split(',')] if sizes != '-' else []\n"
    "def pyaddr(a):\n"
    "    if fam == 'unix': return a\n"
    "    if fam == 'abstract': return '\\0' + a[1:]\n"
    "    host, port = a.rsplit(':', 1)\n"
    "    return (host.strip('[]'), int(port))\n"
    "def pat(n):\n"
    "    k = n % 251\n"
    "    return (bytes(range(251)) * (n // 251 + 2))[k:k + n]\n"
    "try:\n"
    "    if role == 'listen':\n"
    "        l = Listener(pyaddr(addr), family='AF_INET6' if fam == 'tcp6' else None, authkey=key)\n"
    "        a = l.address\n"
    "        print(a[1] if isinstance(a, tuple) else 'ready', flush=True)\n"
    "        c = l.accept()\n"
    "    elif fam == 'tcp6':  # Client() only knows AF_INET for tuples: Python's own handshake by hand\n"
    "        c = Connection(socket.create_connection(pyaddr(addr)).detach())\n"
    "        if key is not None:\n"
    "            answer_challenge(c, key)\n"
    "            deliver_challenge(c, key)\n"
    "    else:\n"
    "        c = Client(pyaddr(addr), authkey=key)\n"
    "except AuthenticationError:\n"
    "    print('authfail', flush=True)\n"
    "    sys.exit(3)\n"
    "print('connected', flush=True)\n"
    "for n in sizes:\n"
    "    m = c.recv_bytes()\n"
    "    if m != pat(n): sys.exit(10)\n"
    "    c.send_bytes(m[::-1])\n"
    "for n in sizes:\n"
    "    c.send_bytes(pat(n))\n"
    "if c.recv_bytes() != b'bye': sys.exit(11)\n"
    "c.send_bytes(b'done')\n"
    "try:\n"
    "    c.recv_bytes()\n"
    "    sys.exit(12)\n"
    "except EOFError:\n"
    "    pass\n";

static char size_list[256];

static void start_py(t_proc *p, const char *py, const char *role, const char *fam,
                     const char *addr, const char *key, bool with_sizes) {
    if (!size_list[0])
        for (int i = 0; i < NSIZES; i++)
            snprintf(size_list + strlen(size_list), sizeof size_list - strlen(size_list), "%s%zu",
                     i ? "," : "", sizes[i]);
    char *argv[] = {(char *)py, (char *)"-c", (char *)py_peer, (char *)role, (char *)fam,
                    (char *)addr, (char *)(key ? key : "-"), with_sizes ? size_list : (char *)"-", NULL};
    CHECK(t_proc_start(argv, p));
}

static void py_done(t_proc *p, int code) {
    int st = t_proc_end(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != code)
        fprintf(stderr, "  python exited with status 0x%x, want exit %d\n", st, code);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == code);
}

/* Python's Listener, mp's Client. */
static void py_listens(const char *py, const char *fam, const char *addr, const char *ckey) {
    t_proc p;
    char line[64], where[160];
    bool good = !ckey || strcmp(ckey, KEY) == 0;
    start_py(&p, py, "listen", fam, addr, KEY, good);
    CHECK(t_proc_line(&p, line, sizeof line, 30)); /* bound (a TCP port: the one it got) */
    if (strcmp(line, "ready") == 0) snprintf(where, sizeof where, "%s", addr);
    else snprintf(where, sizeof where, "%.*s:%s", (int)(strrchr(addr, ':') - addr), addr, line);
    mp_client_desc d = {.address = where, .authkey = ckey ? ckey : KEY,
                        .authkey_len = strlen(ckey ? ckey : KEY), .timeout = 30};
    mp_conn *c;
    int rc = mp_client(&d, &c);
    if (!good) { /* refused on both sides, nothing delivered */
        CHECK_EQ(rc, MP_EAUTH);
        CHECK(t_proc_line(&p, line, sizeof line, 30) && strcmp(line, "authfail") == 0);
        py_done(&p, 3);
        return;
    }
    CHECK_EQ(rc, MP_OK);
    CHECK(echo_client(c));
    mp_conn_close(c);
    CHECK(t_proc_line(&p, line, sizeof line, 30) && strcmp(line, "connected") == 0);
    py_done(&p, 0);
}

/* mp's Listener, Python's Client. */
static void mp_listens(const char *py, const char *fam, const char *addr, const char *pkey) {
    mp_listener_desc d = {.address = addr, .authkey = KEY, .authkey_len = KEYLEN};
    mp_listener *l = mp_listener_create(&d);
    CHECK(l != NULL);
    bool good = !pkey || strcmp(pkey, KEY) == 0;
    t_proc p;
    char line[64];
    start_py(&p, py, "connect", fam, mp_listener_address(l), pkey ? pkey : KEY, good);
    mp_conn *c;
    int rc = mp_listener_accept(l, &c, 30);
    if (!good) {
        CHECK_EQ(rc, MP_EAUTH);
        CHECK(t_proc_line(&p, line, sizeof line, 30) && strcmp(line, "authfail") == 0);
        py_done(&p, 3);
    } else {
        CHECK_EQ(rc, MP_OK);
        CHECK(t_proc_line(&p, line, sizeof line, 30) && strcmp(line, "connected") == 0);
        CHECK(echo_client(c)); /* Python runs the echo server's part in either role */
        mp_conn_close(c);      /* Python sees EOFError and leaves */
        py_done(&p, 0);
    }
    mp_listener_close(l);
}

static void python_interop(int minor) {
    char py[512], name[64], path[96], abs[96];
    snprintf(name, sizeof name, "listener_python3%d", minor);
    if (t_py_slow(name)) return;
    if (!t_py_find(minor, py, sizeof py)) {
        printf("SKIP %s: no python3.%d found\n", name, minor);
        return;
    }
    bool v6 = have_ipv6();
    if (!v6) printf("SKIP %s over [::1]: no IPv6 loopback\n", name);
    for (int dir = 0; dir < 2; dir++) {
        void (*run)(const char *, const char *, const char *, const char *) = dir ? mp_listens : py_listens;
        uniq(path, sizeof path, "/tmp/mp-test-%d-%d.sock");
        uniq(abs, sizeof abs, "@mp-test-%d-%d");
        run(py, "unix", path, NULL);
        run(py, "abstract", abs, NULL);
        run(py, "tcp4", "127.0.0.1:0", NULL);
        if (v6) run(py, "tcp6", "[::1]:0", NULL);
        uniq(path, sizeof path, "/tmp/mp-test-%d-%d.sock");
        run(py, "unix", path, "a wrong key");
        run(py, "tcp4", "127.0.0.1:0", "a wrong key");
    }
}

TEST_T(listener_python311, 120) { python_interop(11); } /* 3.11: HMAC-MD5 */
TEST_T(listener_python312, 120) { python_interop(12); } /* 3.12+: {sha256} */
TEST_T(listener_python313, 120) { python_interop(13); }
