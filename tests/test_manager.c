/* The Manager: the container bodies of test_dict.c run against served containers, the
   Value/Array verbs, and the faults (server killed, client killed, hostile requests,
   wrong keys, shutdown, a starter that dies). */
#define _GNU_SOURCE
#include "test.h"
#include "test_dict.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <unistd.h>

#define KEY "manager secret"
#define KEYLEN (sizeof KEY - 1)

static mp_manager *m_start(const char *address) {
    mp_manager_desc d = {.address = address, .authkey = KEY, .authkey_len = KEYLEN};
    mp_manager *m = mp_manager_start(&d);
    CHECK(m != NULL);
    return m;
}

static mp_dict *served_dict(c_env *e, const char *name) { return mp_manager_dict((mp_manager *)e->ctx, name); }
static mp_list *served_list(c_env *e, const char *name) { return mp_manager_list((mp_manager *)e->ctx, name); }

static void m_run(void (*body)(c_env *), const char *address) {
    c_env e = {"served", served_dict, served_list, NULL, false};
    e.ctx = m_start(address);
    body(&e);
    CHECK_EQ(mp_manager_shutdown((mp_manager *)e.ctx), MP_OK);
}

static void m_hammer(c_env *e) { c_hammer(e, t_scale(2000)); }

TEST(dict_served_behaviour) { m_run(c_dict_body, NULL); }
TEST(list_served_behaviour) { m_run(c_list_body, NULL); }
TEST(dict_served_behaviour_over_tcp) { m_run(c_dict_body, "127.0.0.1:0"); }
TEST(dict_list_served_exactly_once_4_procs_2_threads) { m_run(m_hammer, NULL); }

/* The server process: the starter's only child. */
static pid_t m_server_pid(void) {
    mp_process *p[4];
    CHECK_EQ(mp_active_children(p, 4), 1);
    return mp_process_pid(p[0]);
}

TEST(manager_value_and_array) {
    mp_manager *m = m_start(NULL);
    mp_value *v = mp_manager_value(m, "x", sizeof(double));
    mp_value *a = mp_manager_value(m, "arr", 10 * sizeof(int));
    CHECK(v && a);
    CHECK_EQ(mp_value_size(a), 10 * sizeof(int));
    int ten[10];
    CHECK_EQ(mp_value_read(a, 0, ten, sizeof ten), MP_OK);
    for (int i = 0; i < 10; i++) CHECK_EQ(ten[i], 0); /* created zeroed */
    for (int i = 0; i < 10; i++) ten[i] = i;
    CHECK_EQ(mp_value_write(a, 0, ten, sizeof ten), MP_OK);
    int five = 5, x = 0;
    CHECK_EQ(mp_value_write(a, 3 * sizeof(int), &five, sizeof five), MP_OK);
    CHECK_EQ(mp_value_read(a, 3 * sizeof(int), &x, sizeof x), MP_OK);
    CHECK_EQ(x, 5);
    CHECK_EQ(mp_value_read(a, 9 * sizeof(int), &x, sizeof x), MP_OK);
    CHECK_EQ(x, 9);
    CHECK_EQ(mp_value_read(a, 9 * sizeof(int) + 1, &x, sizeof x), MP_EINVAL);
    CHECK_EQ(mp_value_write(a, SIZE_MAX, &x, sizeof x), MP_EINVAL);
    CHECK_EQ(mp_value_read(NULL, 0, &x, sizeof x), MP_EINVAL);
    double pi = 3.14, got = 0;
    CHECK_EQ(mp_value_write(v, 0, &pi, sizeof pi), MP_OK);
    /* a second handle on the same name sees the same block; another size is refused */
    mp_value *v2 = mp_manager_value(m, "x", sizeof(double));
    CHECK(v2 != NULL);
    CHECK_EQ(mp_value_read(v2, 0, &got, sizeof got), MP_OK);
    CHECK(got == 3.14);
    errno = 0;
    CHECK(mp_manager_value(m, "x", 4) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_manager_value(m, "z", 0) == NULL);
    CHECK(mp_manager_dict(m, "") == NULL);
    CHECK(mp_manager_dict(NULL, "d") == NULL);
    mp_value_destroy(v2);
    mp_value_destroy(v);
    mp_value_destroy(a);
    CHECK_EQ(mp_manager_shutdown(m), MP_OK);
}

static int m_child_connect(void *arg) {
    /* a forked child: the inherited handle, and a fresh mp_manager_connect */
    mp_dict *d = (mp_dict *)arg;
    if (mp_dict_set(d, "child", 5, "yes", 3) != MP_OK) return 1;
    return 0;
}

TEST(manager_connect_by_address_and_fork) {
    mp_manager *m = m_start("127.0.0.1:0");
    const char *addr = mp_manager_address(m);
    CHECK(addr && strncmp(addr, "127.0.0.1:", 10) == 0 && strcmp(addr, "127.0.0.1:0") != 0);
    mp_manager_desc d = {.address = addr, .authkey = KEY, .authkey_len = KEYLEN};
    mp_manager *c = mp_manager_connect(&d);
    CHECK(c != NULL);
    mp_dict *d1 = mp_manager_dict(m, "shared"), *d2 = mp_manager_dict(c, "shared");
    CHECK(d1 && d2);
    CHECK_EQ(mp_dict_set(d1, "k", 1, "v", 1), MP_OK);
    char buf[8];
    size_t len;
    CHECK_EQ(mp_dict_get(d2, "k", 1, buf, sizeof buf, &len), MP_OK);
    CHECK(len == 1 && buf[0] == 'v');
    CHECK_EQ(WEXITSTATUS(t_wait(t_fork(m_child_connect, d2))), 0);
    CHECK_EQ(mp_dict_get(d1, "child", 5, buf, sizeof buf, &len), MP_OK);
    CHECK(len == 3 && memcmp(buf, "yes", 3) == 0);
    /* a dict and a list may share a name: they are different objects */
    mp_list *l = mp_manager_list(c, "shared");
    CHECK(l != NULL);
    CHECK_EQ(mp_list_len(l, &len), MP_OK);
    CHECK_EQ(len, 0);
    /* handles are not interchangeable */
    CHECK_EQ(mp_list_len((mp_list *)(void *)d1, &len), MP_EINVAL);
    mp_list_destroy(l);
    mp_dict_destroy(d2);
    mp_dict_destroy(d1);
    mp_manager_disconnect(c);
    CHECK_EQ(mp_manager_shutdown(m), MP_OK);
}

TEST(manager_refuses_a_wrong_key) {
    mp_manager *m = m_start("127.0.0.1:0");
    mp_manager_desc d = {.address = mp_manager_address(m), .authkey = "wrong", .authkey_len = 5};
    errno = 0;
    CHECK(mp_manager_connect(&d) == NULL);
    CHECK_EQ(errno, EACCES);
    d.authkey = NULL, d.authkey_len = 0; /* no key at all never reaches the objects */
    mp_client_desc cd = {.address = mp_manager_address(m), .timeout = 2};
    mp_conn *c;
    CHECK_EQ(mp_client(&cd, &c), MP_OK); /* connects: the handshake is the server's */
    unsigned char rq[14] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ(mp_conn_send(c, rq, sizeof rq), MP_OK);
    char buf[64];
    size_t len;
    /* what comes back is the handshake (our request was taken as the answer to the
       challenge, and failed), then the end: never an answer to the request */
    int rc, msgs = 0;
    while ((rc = mp_conn_recv(c, buf, sizeof buf, &len, 5)) == MP_OK) {
        CHECK(len > 0 && buf[0] == '#');
        msgs++;
    }
    CHECK_EQ(rc, MP_ECLOSED);
    CHECK(msgs >= 1);
    mp_conn_close(c);
    mp_dict *dd = mp_manager_dict(m, "still");
    CHECK(dd != NULL);
    mp_dict_destroy(dd);
    CHECK_EQ(mp_manager_shutdown(m), MP_OK);
}

TEST(manager_survives_malformed_requests) {
    mp_manager *m = m_start(NULL);
    mp_dict *d = mp_manager_dict(m, "d");
    CHECK_EQ(mp_dict_set(d, "k", 1, "v", 1), MP_OK);
    mp_client_desc cd = {.address = mp_manager_address(m), .authkey = KEY, .authkey_len = KEYLEN};
    mp_conn *c;
    CHECK_EQ(mp_client(&cd, &c), MP_OK);
    unsigned seed = 7;
    unsigned char rq[64], ans[256];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof rq);
        for (size_t j = 0; j < n; j++) rq[j] = (unsigned char)rand_r(&seed);
        if (n && i % 2) rq[0] = (unsigned char)(1 + i % 15); /* real opcodes, bad fields */
        if (n && rq[0] == 15) rq[0] = 5; /* not SHUTDOWN */
        size_t len;
        CHECK_EQ(mp_conn_send(c, rq, n), MP_OK);
        int rc = mp_conn_recv(c, ans, sizeof ans, &len, 5);
        if (rc == MP_ETOOBIG) {
            void *big;
            rc = mp_conn_recv_alloc(c, &big, &len, 5);
            free(big);
        }
        CHECK_EQ(rc, MP_OK);
        CHECK(len >= 4);
    }
    /* an id beyond the table, a wrong kind */
    unsigned char bad[5] = {5, 0, 0, 0x7f, 0};
    size_t len;
    CHECK_EQ(mp_conn_send(c, bad, 5), MP_OK);
    CHECK_EQ(mp_conn_recv(c, ans, sizeof ans, &len, 5), MP_OK);
    CHECK(len == 4 && (int)((unsigned)ans[0] << 24 | (unsigned)ans[1] << 16 | (unsigned)ans[2] << 8 | ans[3]) == MP_EINVAL);
    mp_conn_close(c);
    char v[4];
    CHECK_EQ(mp_dict_get(d, "k", 1, v, sizeof v, &len), MP_OK);
    CHECK_EQ(v[0], 'v');
    mp_dict_destroy(d);
    CHECK_EQ(mp_manager_shutdown(m), MP_OK);
}

TEST(manager_server_killed_calls_return_closed_promptly) {
    mp_manager *m = m_start(NULL);
    mp_dict *d = mp_manager_dict(m, "d");
    mp_list *l = mp_manager_list(m, "l");
    mp_value *v = mp_manager_value(m, "v", 8);
    CHECK(d && l && v);
    CHECK_EQ(mp_dict_set(d, "k", 1, "v", 1), MP_OK);
    CHECK_EQ(mp_list_append(l, "x", 1), MP_OK);
    pid_t srv = m_server_pid();
    CHECK_EQ(kill(srv, SIGKILL), 0);
    usleep(100000);
    double t0 = t_now();
    size_t n;
    char b[8];
    CHECK_EQ(mp_dict_set(d, "k", 1, "v", 1), MP_ECLOSED);
    CHECK_EQ(mp_dict_get(d, "k", 1, b, sizeof b, &n), MP_ECLOSED);
    CHECK_EQ(mp_list_len(l, &n), MP_ECLOSED);
    CHECK_EQ(mp_value_read(v, 0, b, 8), MP_ECLOSED);
    CHECK(mp_manager_dict(m, "other") == NULL);
    CHECK(t_now() - t0 < 1.0);
    mp_dict_destroy(d);
    mp_list_destroy(l);
    mp_value_destroy(v);
    char path[128];
    snprintf(path, sizeof path, "%s", mp_manager_address(m));
    CHECK(path[0] == '/' && access(path, F_OK) == 0); /* the dead server's socket file */
    CHECK_EQ(mp_manager_shutdown(m), MP_OK); /* joins the dead server, sweeps its file */
    CHECK(access(path, F_OK) != 0);
    *strrchr(path, '/') = 0;
    CHECK(access(path, F_OK) != 0); /* and its private directory */
}

static int m_busy_client(void *arg) {
    mp_dict *d = (mp_dict *)arg;
    char v[1000] = {0};
    for (long i = 0;; i++) {
        char key[32];
        int kl = snprintf(key, sizeof key, "c%d-%ld", (int)getpid(), i % 50);
        mp_dict_set(d, key, (size_t)kl, v, sizeof v);
    }
    return 0;
}

TEST(manager_client_killed_mid_request_server_carries_on) {
    mp_manager *m = m_start(NULL);
    mp_dict *d = mp_manager_dict(m, "d");
    unsigned seed = (unsigned)getpid();
    for (int i = 0; i < 30; i++) {
        pid_t c = t_fork(m_busy_client, d);
        usleep((useconds_t)(2000 + rand_r(&seed) % 20000));
        kill(c, SIGKILL);
        t_wait(c);
        size_t n;
        CHECK_EQ(mp_dict_len(d, &n), MP_OK); /* still serving */
    }
    CHECK_EQ(mp_dict_set(d, "after", 5, "ok", 2), MP_OK);
    mp_dict_destroy(d);
    CHECK_EQ(mp_manager_shutdown(m), MP_OK);
}

TEST(manager_shutdown_stops_the_server) {
    mp_manager *m = m_start("127.0.0.1:0");
    char addr[128];
    snprintf(addr, sizeof addr, "%s", mp_manager_address(m));
    mp_manager_desc d = {.address = addr, .authkey = KEY, .authkey_len = KEYLEN};
    mp_manager *c = mp_manager_connect(&d);
    mp_dict *h = mp_manager_dict(c, "d");
    CHECK(h != NULL);
    CHECK_EQ(mp_manager_shutdown(NULL), MP_EINVAL);
    CHECK_EQ(mp_manager_shutdown(c), MP_EINVAL); /* not the starter */
    CHECK_EQ(mp_manager_shutdown(m), MP_OK);
    size_t n;
    CHECK_EQ(mp_dict_len(h, &n), MP_ECLOSED);
    CHECK(mp_manager_connect(&d) == NULL);
    mp_dict_destroy(h);
    mp_manager_disconnect(c);
}

static int m_starter(void *arg) {
    int *w = (int *)arg;
    mp_manager_desc d = {.authkey = KEY, .authkey_len = KEYLEN};
    mp_manager *m = mp_manager_start(&d);
    if (!m) return 1;
    mp_process *p[2];
    if (mp_active_children(p, 2) != 1) return 2;
    pid_t srv = mp_process_pid(p[0]);
    if (write(*w, &srv, sizeof srv) != sizeof srv) return 3;
    pause();
    return 0;
}

TEST(manager_daemon_server_dies_with_its_starter) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    pid_t st = t_fork(m_starter, &pp[1]);
    pid_t srv = 0;
    CHECK_EQ(read(pp[0], &srv, sizeof srv), (long)sizeof srv);
    close(pp[0]), close(pp[1]);
    kill(st, SIGKILL);
    t_wait(st);
    double t0 = t_now();
    while (kill(srv, 0) == 0 && t_now() - t0 < 10) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {} /* the orphan comes to us (subreaper) */
        usleep(2000);
    }
    CHECK(kill(srv, 0) != 0);
}

/* Wait (up to 5 s) until /proc says the process is in state st. */
static bool m_wait_state(pid_t pid, char st) {
    for (double end = t_now() + 5; t_now() < end; usleep(2000)) {
        char now = t_proc_state(pid, NULL);
        if (!now) return false;
        if (now == st) return true;
    }
    return false;
}

TEST(manager_call_times_out_on_a_stopped_server) {
    mp_manager_desc d = {.authkey = KEY, .authkey_len = KEYLEN, .timeout = 0.3};
    mp_manager *m = mp_manager_start(&d);
    CHECK(m != NULL);
    mp_dict *h = mp_manager_dict(m, "d");
    CHECK(h != NULL);
    pid_t srv = m_server_pid();
    CHECK_EQ(kill(srv, SIGSTOP), 0);
    CHECK(m_wait_state(srv, 'T')); /* stopped for sure before the call */
    double t0 = t_now();
    size_t n;
    CHECK_EQ(mp_dict_len(h, &n), MP_ETIMEDOUT);
    double t = t_now() - t0;
    CHECK(t >= 0.25 && t < 3);
    CHECK_EQ(kill(srv, SIGCONT), 0);
    CHECK_EQ(mp_dict_set(h, "k", 1, "v", 1), MP_OK); /* a fresh connection: no stale answer */
    CHECK_EQ(mp_dict_len(h, &n), MP_OK);
    CHECK_EQ(n, 1);
    mp_dict_destroy(h);
    CHECK_EQ(mp_manager_shutdown(m), MP_OK);
}
