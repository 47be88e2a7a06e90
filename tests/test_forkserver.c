/* The forkserver start method: processes started by a server that mp_init forked
   while the program was single-threaded. Each scenario runs in a fresh child that
   calls mp_init with the forkserver (the test process keeps no server socket). */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fs_init(void) {
    mp_config c = {.start_method = MP_START_FORKSERVER};
    return mp_init(&c);
}

/* Run scenario in a fresh child with the forkserver; its exit code (0: all good). */
static int fs_run(int (*scenario)(void *), void *arg) {
    pid_t pid = t_fork(scenario, arg);
    int st = t_wait(pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

#define FS_CHECK(c, code)                                                           \
    do {                                                                            \
        if (!(c)) {                                                                 \
            fprintf(stderr, "  %s:%d: %s\n", __FILE__, __LINE__, #c);               \
            return code;                                                            \
        }                                                                           \
    } while (0)

/* --- a lock another thread holds: fork copies it locked, the forkserver does not ---- */

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER; /* a library's, not mp's */
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int holding, release_it;

static void *holder(void *arg) {
    (void)arg;
    pthread_mutex_lock(&held);
    pthread_mutex_lock(&gate);
    holding = 1;
    pthread_cond_broadcast(&gate_cv);
    while (!release_it) pthread_cond_wait(&gate_cv, &gate);
    pthread_mutex_unlock(&gate);
    pthread_mutex_unlock(&held);
    return NULL;
}

static int lock_it(void *arg) { /* 0: got the library's lock; 1: it stayed locked */
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 300000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    if (pthread_mutex_timedlock(&held, &ts) != 0) return 1;
    pthread_mutex_unlock(&held);
    return 0;
}

/* n processes by method, each trying the lock; how many got it. */
static int start_lockers(int method, int n) {
    int got = 0;
    mp_process *ps[100];
    for (int i = 0; i < n; i++) {
        mp_process_desc d = {lock_it, NULL, NULL, false, 0, method};
        ps[i] = mp_process_create(&d);
        if (!ps[i] || mp_process_start(ps[i]) != MP_OK) return -1;
    }
    for (int i = 0; i < n; i++) {
        if (mp_process_join(ps[i], 60) != MP_OK) return -2;
        got += mp_process_exitcode(ps[i]) == 0;
        mp_process_destroy(ps[i]);
    }
    return got;
}

static int threaded_program(void *arg) {
    (void)arg;
    FS_CHECK(fs_init() == MP_OK, 2); /* first thing in main, single-threaded */
    pthread_t th;
    FS_CHECK(pthread_create(&th, NULL, holder, NULL) == 0, 3);
    pthread_mutex_lock(&gate);
    while (!holding) pthread_cond_wait(&gate_cv, &gate);
    pthread_mutex_unlock(&gate);
    int n = (int)t_scale(100) < 10 ? 10 : (int)t_scale(100);
    int forked = start_lockers(MP_START_FORK, n < 20 ? n : 20); /* each waits 0.3 s */
    int served = start_lockers(MP_START_DEFAULT, n);            /* the forkserver */
    pthread_mutex_lock(&gate);
    release_it = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate);
    pthread_join(th, NULL);
    printf("     fork: %d of %d got the lock; forkserver: %d of %d\n", forked,
           n < 20 ? n : 20, served, n);
    FS_CHECK(forked == 0, 4); /* blocked: shown by the timed lock, not a hang */
    FS_CHECK(served == n, 5);
    return 0;
}

TEST_T(forkserver_children_of_a_threaded_program_are_safe, 120) {
    CHECK_EQ(fs_run(threaded_program, NULL), 0);
}

/* --- the same semantics as fork -------------------------------------------------- */

static int ret_arg(void *arg) { return (int)(intptr_t)arg; }
static int sleep_long(void *arg) {
    (void)arg;
    sleep(30);
    return 0;
}

typedef struct {
    pid_t parent_seen, pid_seen;
    char name[64];
} identity;

static int report(void *arg) {
    identity *id = (identity *)arg;
    id->parent_seen = mp_parent_pid();
    id->pid_seen = getpid();
    snprintf(id->name, sizeof id->name, "%s", mp_process_name(mp_current_process()));
    return 0;
}

static int grandchild(void *arg) { /* a forkserver child starting its own child */
    identity *id = (identity *)arg;
    mp_process_desc d = {report, id, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    if (!p || mp_process_start(p) != MP_OK || mp_process_join(p, 20) != MP_OK) return 1;
    int rc = mp_process_exitcode(p);
    mp_process_destroy(p);
    return rc == 0 ? 0 : 2;
}

static int semantics(void *arg) {
    (void)arg;
    FS_CHECK(fs_init() == MP_OK, 2);
    FS_CHECK(mp_get_start_method() == MP_START_FORKSERVER, 3);
    /* exit codes, pid, name, parent */
    identity *id = (identity *)mp_calloc(2, sizeof *id);
    mp_process_desc d = {report, id, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    FS_CHECK(mp_process_pid(p) == 0 && !mp_process_is_alive(p), 4);
    FS_CHECK(mp_process_start(p) == MP_OK && mp_process_join(p, 20) == MP_OK, 5);
    FS_CHECK(mp_process_exitcode(p) == 0 && id->pid_seen == mp_process_pid(p), 6);
    FS_CHECK(id->parent_seen == getpid(), 7); /* the requester, not the server */
    FS_CHECK(strcmp(id->name, mp_process_name(p)) == 0 && strncmp(id->name, "Process-", 8) == 0, 8);
    mp_process_destroy(p);
    mp_process_desc g = {grandchild, id + 1, NULL, false, 0, 0};
    p = mp_process_create(&g);
    FS_CHECK(mp_process_start(p) == MP_OK && mp_process_join(p, 30) == MP_OK, 9);
    FS_CHECK(mp_process_exitcode(p) == 0 && id[1].parent_seen == mp_process_pid(p), 10);
    FS_CHECK(strchr(id[1].name, ':') != NULL, 11); /* Process-N:M */
    mp_process_destroy(p);
    for (int code = 0; code < 3; code++) {
        mp_process_desc r = {ret_arg, (void *)(intptr_t)(code * 7), NULL, false, 0, 0};
        p = mp_process_create(&r);
        FS_CHECK(mp_process_start(p) == MP_OK && mp_process_join(p, MP_FOREVER) == MP_OK, 12);
        FS_CHECK(mp_process_exitcode(p) == code * 7, 13);
        mp_process_destroy(p);
    }
    /* join with a timeout, is_alive, terminate, kill, the sentinel, active children */
    mp_process_desc s = {sleep_long, NULL, NULL, false, 0, 0};
    mp_process *a = mp_process_create(&s), *b = mp_process_create(&s);
    FS_CHECK(mp_process_start(a) == MP_OK && mp_process_start(b) == MP_OK, 14);
    double t0 = t_now();
    FS_CHECK(mp_process_join(a, 0.2) == MP_ETIMEDOUT && t_now() - t0 >= 0.19, 15);
    FS_CHECK(mp_process_is_alive(a) && mp_active_children(NULL, 0) == 2, 16);
    int fds[2] = {mp_process_sentinel(a), mp_process_sentinel(b)};
    bool ready[2];
    FS_CHECK(fds[0] >= 0 && mp_wait(fds, 2, ready, 0) == MP_ETIMEDOUT, 17);
    FS_CHECK(mp_process_terminate(a) == MP_OK, 18);
    FS_CHECK(mp_wait(fds, 2, ready, 10) == 1 && ready[0] && !ready[1], 19);
    FS_CHECK(mp_process_join(a, 10) == MP_OK && mp_process_exitcode(a) == -SIGTERM, 20);
    FS_CHECK(mp_process_kill(b) == MP_OK && mp_process_join(b, 10) == MP_OK, 21);
    FS_CHECK(mp_process_exitcode(b) == -SIGKILL && !mp_process_is_alive(b), 22);
    FS_CHECK(mp_active_children(NULL, 0) == 0, 23);
    mp_process_destroy(a);
    mp_process_destroy(b);
    mp_free(id);
    return 0;
}

TEST(forkserver_semantics_match_fork) { CHECK_EQ(fs_run(semantics, NULL), 0); }

/* --- daemons: terminated at normal exit, killed with a killed parent --------------- */

static pid_t *daemon_pid; /* shared with the test: mmap'd before the fork */

static int parent_of_daemon(void *arg) {
    bool die = arg != NULL;
    if (fs_init() != MP_OK) return 2;
    mp_process_desc d = {sleep_long, NULL, NULL, true, 0, 0};
    mp_process *p = mp_process_create(&d);
    if (!p || mp_process_start(p) != MP_OK) return 3;
    *daemon_pid = mp_process_pid(p);
    if (die) raise(SIGKILL);
    return 0; /* exit: the atexit policy terminates the daemon */
}

/* pid ended: no such process, or a zombie no one reaped yet (the harness, as
   subreaper, reaps the server's orphans only after the test). */
static bool ended(pid_t pid) {
    char st = t_proc_state(pid, NULL);
    return !st || st == 'Z' || st == 'X';
}

static bool gone_within(pid_t pid, double s) {
    for (double end = t_now() + s; t_now() < end; usleep(5000))
        if (ended(pid)) return true;
    return false;
}

TEST(forkserver_daemons_end_with_their_parent) {
    daemon_pid = (pid_t *)mmap(NULL, sizeof *daemon_pid, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0); /* no mp heap here */
    CHECK(daemon_pid != MAP_FAILED);
    for (int die = 0; die < 2; die++) {
        *daemon_pid = 0;
        int rc = fs_run(parent_of_daemon, die ? (void *)1 : NULL);
        CHECK_EQ(rc, die ? 100 + SIGKILL : 0);
        CHECK(*daemon_pid > 0);
        CHECK(gone_within(*daemon_pid, 10)); /* SIGTERM at exit; SIGKILL by the server */
    }
    munmap(daemon_pid, sizeof *daemon_pid);
}

/* --- faults: the server killed; requesters killed mid-request ---------------------- */

static int server_killed(void *arg) {
    (void)arg;
    FS_CHECK(fs_init() == MP_OK, 2);
    mp_process_desc d = {sleep_long, NULL, NULL, false, 0, 0};
    mp_process *running = mp_process_create(&d);
    FS_CHECK(mp_process_start(running) == MP_OK, 3);
    /* the server is no child of ours: find it as the running child's parent */
    pid_t server = 0;
    FS_CHECK(t_proc_state(mp_process_pid(running), &server) != 0, 4);
    FS_CHECK(server > 1, 5);
    FS_CHECK(kill(server, SIGKILL) == 0, 6);
    FS_CHECK(gone_within(server, 5), 7);
    mp_process *later = mp_process_create(&d);
    errno = 0;
    FS_CHECK(mp_process_start(later) == MP_ESYS && errno == EPIPE, 8); /* clean failure */
    mp_process_destroy(later);
    /* the running child was not killed with it, and its end is still seen */
    FS_CHECK(mp_process_is_alive(running), 9);
    FS_CHECK(mp_process_join(running, 0.1) == MP_ETIMEDOUT, 10);
    kill(mp_process_pid(running), SIGKILL);
    FS_CHECK(mp_process_join(running, 10) == MP_OK, 11);
    FS_CHECK(mp_process_exitcode(running) == MP_EXITCODE_LOST, 12); /* no one reaped it for us */
    mp_process_destroy(running);
    return 0;
}

TEST(forkserver_killed_fails_later_starts_cleanly) { CHECK_EQ(fs_run(server_killed, NULL), 0); }

static int request_then_die(void *arg) {
    (void)arg;
    mp_process_desc d = {sleep_long, NULL, NULL, true, 0, 0};
    for (;;) { /* start until killed (daemons: the server kills them when we die) */
        mp_process *p = mp_process_create(&d);
        if (!p || mp_process_start(p) != MP_OK) return 1;
        mp_process_kill(p);
        mp_process_join(p, 10);
        mp_process_destroy(p);
    }
}

static int requesters_killed(void *arg) {
    (void)arg;
    FS_CHECK(fs_init() == MP_OK, 2);
    unsigned seed = (unsigned)getpid();
    int kills = 0;
    for (double end = t_now() + (getenv("MP_TEST_SLOW") ? 3.0 : 2.0); t_now() < end; kills++) {
        mp_process_desc d = {request_then_die, NULL, NULL, false, 0, 0};
        mp_process *r = mp_process_create(&d);
        FS_CHECK(mp_process_start(r) == MP_OK, 3);
        usleep((useconds_t)(rand_r(&seed) % 20000));
        mp_process_kill(r);
        FS_CHECK(mp_process_join(r, 10) == MP_OK, 4);
        mp_process_destroy(r);
    }
    /* the server still serves */
    mp_process_desc q = {ret_arg, (void *)42, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&q);
    FS_CHECK(mp_process_start(p) == MP_OK && mp_process_join(p, 10) == MP_OK, 5);
    FS_CHECK(mp_process_exitcode(p) == 42, 6);
    mp_process_destroy(p);
    printf("     %d requesters killed mid-request\n", kills);
    FS_CHECK(kills >= 20, 7);
    return 0;
}

TEST_T(forkserver_survives_requesters_killed_mid_request, 90) {
    CHECK_EQ(fs_run(requesters_killed, NULL), 0);
}

/* --- bad input --------------------------------------------------------------------- */

static int bad_input(void *arg) {
    (void)arg;
    mp_process_desc d = {ret_arg, NULL, NULL, false, 0, MP_START_FORKSERVER};
    errno = 0;
    FS_CHECK(mp_process_create(&d) == NULL && errno == EINVAL, 2); /* no server yet */
    mp_pool_desc pd = {.processes = 1, .start_method = MP_START_FORKSERVER};
    FS_CHECK(mp_pool_create(&pd) == NULL && errno == EINVAL, 3);
    d.start_method = 7;
    FS_CHECK(mp_process_create(&d) == NULL && errno == EINVAL, 4);
    mp_config bad = {.start_method = 9};
    FS_CHECK(mp_init(&bad) == MP_EINVAL, 5);
    FS_CHECK(fs_init() == MP_OK, 6);
    FS_CHECK(fs_init() == MP_OK, 7); /* the same again: fine */
    mp_config fork_cfg = {.start_method = MP_START_FORK};
    FS_CHECK(mp_init(&fork_cfg) == MP_EINVAL, 8); /* another method than the program's */
    FS_CHECK(mp_init(NULL) == MP_OK, 9);
    d.start_method = MP_START_FORKSERVER;
    mp_process *p = mp_process_create(&d);
    FS_CHECK(p && mp_process_start(p) == MP_OK && mp_process_start(p) == MP_EINVAL, 10);
    FS_CHECK(mp_process_join(p, 10) == MP_OK && mp_process_exitcode(p) == 0, 11);
    mp_process_destroy(p);
    return 0;
}

TEST(forkserver_bad_input) {
    if (mp_get_start_method() == MP_START_FORKSERVER) { /* inherited: no fresh start */
        printf("SKIP forkserver_bad_input: this process already has a forkserver\n");
        return;
    }
    CHECK_EQ(fs_run(bad_input, NULL), 0);
}

/* --- the pool's workers from the forkserver ---------------------------------------- */

static int square(const void *in, void *out) {
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    return 0;
}

static int die_task(const void *a, size_t al, void *r, size_t *rl) {
    (void)a, (void)al, (void)r, (void)rl;
    raise(SIGKILL);
    return 0;
}

static int pool_workers(void *arg) {
    (void)arg;
    FS_CHECK(fs_init() == MP_OK, 2);
    pthread_t th; /* a thread holding a library lock: the workers do not inherit it */
    FS_CHECK(pthread_create(&th, NULL, holder, NULL) == 0, 3);
    mp_pool_desc pd = {.processes = 2};
    mp_pool *p = mp_pool_create(&pd);
    FS_CHECK(p != NULL, 4);
    int64_t in[1000], out[1000];
    for (int i = 0; i < 1000; i++) in[i] = i;
    mp_map_desc m = {.fn = square, .in = in, .in_size = 8, .out = out, .out_size = 8, .n = 1000};
    FS_CHECK(mp_pool_map(p, &m) == MP_OK, 5);
    for (int i = 0; i < 1000; i++) FS_CHECK(out[i] == (int64_t)i * i, 6);
    mp_async *r = mp_pool_apply_async(p, die_task, NULL, 0);
    FS_CHECK(mp_async_get(r, NULL, 0, NULL, 20) == MP_EWORKERDIED, 7);
    mp_async_destroy(r);
    FS_CHECK(mp_pool_map(p, &m) == MP_OK, 8); /* a replacement, from the server too */
    mp_pool_stats st;
    FS_CHECK(mp_pool_stats_get(p, &st) == MP_OK && st.died == 1 && st.started == 3, 9);
    mp_pool_close(p);
    FS_CHECK(mp_pool_join(p, 20) == MP_OK, 10);
    mp_pool_destroy(p);
    pthread_mutex_lock(&gate);
    release_it = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate);
    pthread_join(th, NULL);
    return 0;
}

TEST(forkserver_pool_workers_and_replacements) { CHECK_EQ(fs_run(pool_workers, NULL), 0); }
