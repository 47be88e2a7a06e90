/* Processes: lifecycle, exit codes, names, sentinels, children, exit policy. */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int ret_arg(void *arg) { return (int)(intptr_t)arg; }
static int sleep_long(void *arg) {
    (void)arg;
    for (;;) pause();
    return 0;
}
static int sleep_ms(void *arg) {
    usleep((useconds_t)(intptr_t)arg * 1000);
    return 0;
}

static mp_process *start(mp_target_fn fn, intptr_t arg, bool daemon) {
    mp_process_desc d = {fn, (void *)arg, NULL, daemon, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK(p != NULL);
    CHECK_EQ(mp_process_start(p), MP_OK);
    return p;
}

TEST(process_exitcodes_like_python) {
    mp_process_desc d = {ret_arg, (void *)7, "seven", false, 0, 0};
    mp_process *p = mp_process_create(&d);
    mp_process_desc anon = {ret_arg, NULL, NULL, false, 0, 0};
    mp_process *named_at_create = mp_process_create(&anon);
    CHECK(strncmp(mp_process_name(named_at_create), "Process-", 8) == 0); /* before start */
    mp_process_destroy(named_at_create);
    CHECK_EQ(mp_process_exitcode(p), MP_EXITCODE_NONE);
    CHECK(!mp_process_is_alive(p));
    CHECK_EQ(mp_process_pid(p), 0);
    CHECK(strcmp(mp_process_name(p), "seven") == 0);
    CHECK_EQ(mp_process_start(p), MP_OK);
    CHECK(mp_process_pid(p) > 0);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 7);
    CHECK(!mp_process_is_alive(p));
    CHECK_EQ(mp_process_join(p, 10), MP_OK); /* repeatable */
    CHECK_EQ(mp_process_exitcode(p), 7);
    CHECK_EQ(mp_process_destroy(p), MP_OK);

    p = start(ret_arg, 0, false);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 0);
    mp_process_destroy(p);

    p = start(sleep_long, 0, false);
    CHECK(mp_process_is_alive(p));
    CHECK_EQ(mp_process_exitcode(p), MP_EXITCODE_NONE);
    CHECK_EQ(mp_process_terminate(p), MP_OK);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), -SIGTERM);
    CHECK_EQ(mp_process_terminate(p), MP_OK); /* already ended: no-op */
    mp_process_destroy(p);

    p = start(sleep_long, 0, false);
    CHECK_EQ(mp_process_kill(p), MP_OK);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), -SIGKILL);
    mp_process_destroy(p);
}

TEST(process_bad_state_and_input) {
    CHECK(mp_process_create(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    mp_process_desc none = {0};
    CHECK(mp_process_create(&none) == NULL);
    CHECK_EQ(mp_process_start(NULL), MP_EINVAL);
    CHECK_EQ(mp_process_join(NULL, 1), MP_EINVAL);
    CHECK_EQ(mp_process_terminate(NULL), MP_EINVAL);
    CHECK_EQ(mp_process_kill(NULL), MP_EINVAL);
    CHECK_EQ(mp_process_sentinel(NULL), MP_EINVAL);
    CHECK(!mp_process_is_alive(NULL));
    CHECK_EQ(mp_process_exitcode(NULL), MP_EXITCODE_NONE);
    CHECK_EQ(mp_process_destroy(NULL), MP_OK);

    mp_process_desc d = {sleep_long, NULL, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK_EQ(mp_process_join(p, 1), MP_EINVAL);      /* never started */
    CHECK_EQ(mp_process_terminate(p), MP_EINVAL);
    CHECK_EQ(mp_process_sentinel(p), MP_EINVAL);
    CHECK_EQ(mp_process_start(p), MP_OK);
    CHECK_EQ(mp_process_start(p), MP_EINVAL);        /* twice */
    CHECK_EQ(mp_process_destroy(p), MP_EINVAL);      /* running */
    CHECK(mp_process_is_alive(p));
    mp_process_kill(p);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_start(p), MP_EINVAL);        /* ended */
    CHECK_EQ(mp_process_destroy(p), MP_OK);
}

TEST(process_join_timeout_is_accurate) {
    mp_process *p = start(sleep_long, 0, false);
    double t0 = t_now();
    CHECK_EQ(mp_process_join(p, 0), MP_ETIMEDOUT);
    CHECK(t_now() - t0 < 0.1);
    t0 = t_now();
    CHECK_EQ(mp_process_join(p, 0.3), MP_ETIMEDOUT);
    double dt = t_now() - t0;
    CHECK(dt >= 0.29 && dt < 2.0);
    mp_process_kill(p);
    CHECK_EQ(mp_process_join(p, MP_FOREVER), MP_OK);
    mp_process_destroy(p);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

TEST(process_join_survives_eintr) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: every signal interrupts poll */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 5000}, {0, 5000}};
    setitimer(ITIMER_REAL, &it, NULL);
    mp_process *p = start(sleep_ms, 300, false);
    CHECK_EQ(mp_process_join(p, 0.1), MP_ETIMEDOUT);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 0);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    CHECK(alarms > 10);
    mp_process_destroy(p);
}

TEST(process_sentinel_becomes_readable) {
    mp_process *p = start(sleep_ms, 200, false);
    int fd = mp_process_sentinel(p);
    CHECK(fd >= 0);
    struct pollfd pfd = {fd, POLLIN, 0};
    CHECK_EQ(poll(&pfd, 1, 0), 0);
    CHECK_EQ(poll(&pfd, 1, 10000), 1);
    /* with a pidfd the process is reapable once readable; a fallback pipe (no pidfd,
       e.g. under valgrind) reads EOF a moment before */
    CHECK_EQ(mp_process_join(p, 5), MP_OK);
    CHECK_EQ(mp_process_sentinel(p), fd); /* still valid after the join */
    mp_process_destroy(p);
}

static int report_identity(void *arg) {
    char *out = (char *)arg;
    mp_process *me = mp_current_process();
    snprintf(out, 128, "%s %d %d", mp_process_name(me), (int)mp_process_pid(me) == (int)getpid(),
             (int)mp_parent_pid());
    return 0;
}

static int spawn_grandchild(void *arg) {
    char *out = (char *)arg;
    mp_process_desc d = {report_identity, out, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    if (mp_process_start(p) != MP_OK) return 1;
    if (mp_process_join(p, 10) != MP_OK) return 2;
    mp_process_destroy(p);
    return 0;
}

TEST(process_names_and_identity) {
    CHECK(strcmp(mp_process_name(mp_current_process()), "MainProcess") == 0);
    CHECK_EQ(mp_parent_pid(), getppid());
    char *out = (char *)mp_calloc(1, 256);
    mp_process_desc d = {report_identity, out, NULL, false, 0, 0};
    mp_process *a = mp_process_create(&d);
    mp_process *b = mp_process_create(&d);
    mp_process_start(a);
    mp_process_join(a, 10);
    char want[128];
    snprintf(want, sizeof want, "%s 1 %d", mp_process_name(a), (int)getpid());
    CHECK(strcmp(out, want) == 0);
    CHECK(strncmp(mp_process_name(a), "Process-", 8) == 0);
    mp_process_start(b);
    mp_process_join(b, 10);
    CHECK(strcmp(mp_process_name(a), mp_process_name(b)) != 0);
    mp_process_desc g = {spawn_grandchild, out + 128, NULL, false, 0, 0};
    mp_process *c = mp_process_create(&g);
    mp_process_start(c);
    CHECK_EQ(mp_process_join(c, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(c), 0);
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s:1 1 %d", mp_process_name(c), (int)mp_process_pid(c));
    CHECK(strcmp(out + 128, prefix) == 0);
    mp_process_destroy(a);
    mp_process_destroy(b);
    mp_process_destroy(c);
    mp_free(out);
}

TEST(process_active_children_lists_running_ones) {
    mp_process *ps[3];
    for (int i = 0; i < 3; i++) ps[i] = start(sleep_long, 0, false);
    mp_process *quick = start(ret_arg, 0, false);
    while (mp_process_join(quick, 0) == MP_ETIMEDOUT) usleep(1000);
    mp_process *out[8];
    CHECK_EQ(mp_active_children(out, 8), 3);
    CHECK_EQ(mp_active_children(NULL, 0), 3);
    for (int i = 0; i < 3; i++) {
        bool found = false;
        for (int j = 0; j < 3; j++) found |= out[j] == ps[i];
        CHECK(found);
    }
    mp_process_kill(ps[0]);
    mp_process_join(ps[0], 10);
    CHECK_EQ(mp_active_children(out, 1), 2);
    for (int i = 0; i < 3; i++) {
        mp_process_kill(ps[i]);
        mp_process_join(ps[i], 10);
        mp_process_destroy(ps[i]);
    }
    CHECK_EQ(mp_active_children(out, 8), 0);
    mp_process_destroy(quick);
}

TEST(process_hundred_terminated_right_after_start) {
    enum { N = 100 };
    mp_process *ps[N];
    for (int i = 0; i < N; i++) {
        ps[i] = start(sleep_long, 0, false);
        CHECK_EQ(mp_process_terminate(ps[i]), MP_OK);
    }
    for (int i = 0; i < N; i++) {
        CHECK_EQ(mp_process_join(ps[i], 30), MP_OK);
        CHECK_EQ(mp_process_exitcode(ps[i]), -SIGTERM);
        mp_process_destroy(ps[i]);
    }
}

/* stdio: the parent's buffer is flushed before fork (printed once), the child's own
   output is flushed before _exit, and the parent's atexit handler never runs in it. */
static int child_prints(void *arg) {
    (void)arg;
    printf("child-line");
    return 0; /* no newline, no fflush: mp must flush */
}
static void parent_atexit(void) { printf("parent-atexit\n"); }

static int stdio_scenario(void *arg) {
    (void)arg;
    atexit(parent_atexit);
    printf("parent-before-fork ");
    mp_process_desc d = {child_prints, NULL, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    mp_process_start(p);
    mp_process_join(p, 10);
    printf("\n");
    exit(0);
}

TEST(process_stdio_flushed_and_atexit_not_inherited) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        stdio_scenario(NULL);
    }
    close(fds[1]);
    char buf[512] = {0};
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    close(fds[0]);
    CHECK(WIFEXITED(t_wait(pid)));
    CHECK(strcmp(buf, "parent-before-fork child-line\nparent-atexit\n") == 0);
}

/* At normal exit a parent terminates its daemon children and joins the others. */
static int exit_with_children(void *arg) {
    pid_t *pids = (pid_t *)arg;
    mp_process *d = start(sleep_long, 0, true);
    mp_process *n = start(sleep_ms, 300, false);
    pids[0] = mp_process_pid(d);
    pids[1] = mp_process_pid(n);
    exit(0); /* atexit: terminate the daemon, join the other */
}

TEST(process_exit_policy_daemons_terminated_others_joined) {
    pid_t *pids = (pid_t *)mp_calloc(2, sizeof(pid_t));
    double t0 = t_now();
    pid_t pid = t_fork(exit_with_children, pids);
    int st = t_wait(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(t_now() - t0 >= 0.28); /* it waited for the non-daemon child */
    /* both children are gone (the subreaper harness reaps them) */
    for (int i = 0; i < 200 && (kill(pids[0], 0) == 0 || kill(pids[1], 0) == 0); i++) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
        usleep(5000);
    }
    CHECK(kill(pids[0], 0) < 0);
    CHECK(kill(pids[1], 0) < 0);
    mp_free(pids);
}

/* A daemon dies with its parent even when the parent is SIGKILLed. */
static int start_daemon_then_hang(void *arg) {
    pid_t *pid = (pid_t *)arg;
    mp_process *d = start(sleep_long, 0, true);
    __atomic_store_n(pid, mp_process_pid(d), __ATOMIC_RELEASE);
    for (;;) pause();
    return 0;
}

TEST(process_daemon_dies_with_killed_parent) {
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* the orphaned daemon comes to us to be reaped */
    pid_t *pid = (pid_t *)mp_calloc(1, sizeof(pid_t));
    pid_t parent = t_fork(start_daemon_then_hang, pid);
    while (!__atomic_load_n(pid, __ATOMIC_ACQUIRE)) usleep(1000);
    CHECK(kill(*pid, 0) == 0);
    kill(parent, SIGKILL);
    t_wait(parent);
    bool gone = false;
    for (int i = 0; i < 5000 && !gone; i++) { /* up to 10 s: generous under valgrind */
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
        gone = kill(*pid, 0) < 0;
        if (!gone) usleep(2000);
    }
    CHECK(gone);
    mp_free(pid);
}

TEST(process_destroy_by_non_creator_refused) {
    mp_process_desc d = {ret_arg, NULL, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    pid_t pid = fork();
    if (pid == 0)
        _exit(mp_process_destroy(p) == MP_EPERM && mp_process_start(p) == MP_EPERM &&
                      mp_process_join(p, 0) == MP_EPERM && mp_process_sentinel(p) == MP_EPERM
                  ? 0
                  : 1);
    int st = t_wait(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(mp_process_destroy(p), MP_OK);
}

/* RLIMIT_NPROC reached: start fails with MP_ESYS/EAGAIN, and everything else works.
   Root ignores the limit, so the scenario runs as nobody. The limit is the forking
   process's: the scenario forks itself (MP_START_FORK). Under the forkserver (run as
   root), a process that became nobody is refused by it: MP_ESYS with EPERM, since the
   server would start its children as root. */
static int nproc_scenario(void *arg) {
    (void)arg;
    if (setgid(65534) < 0 || setuid(65534) < 0) return 10;
    struct rlimit lim = {4, 4};
    if (setrlimit(RLIMIT_NPROC, &lim) < 0) return 11;
    if (mp_get_start_method() == MP_START_FORKSERVER) {
        mp_process_desc d = {ret_arg, NULL, NULL, false, 0, 0};
        mp_process *p = mp_process_create(&d);
        if (mp_process_start(p) != MP_ESYS || errno != EPERM) return 16;
        mp_process_destroy(p);
    }
    mp_process *ps[16];
    int started = 0, rc = MP_OK;
    while (started < 16) {
        mp_process_desc d = {sleep_long, NULL, NULL, false, 0, MP_START_FORK};
        ps[started] = mp_process_create(&d);
        rc = mp_process_start(ps[started]);
        if (rc != MP_OK) break;
        started++;
    }
    int e = errno;
    if (started == 16 || rc != MP_ESYS || e != EAGAIN) return 12;
    if (mp_process_destroy(ps[started]) != MP_OK) return 13; /* never started: freeable */
    mp_process_kill(ps[0]);
    mp_process_join(ps[0], 10);
    mp_process_destroy(ps[0]);
    mp_process_desc d = {ret_arg, (void *)3, NULL, false, 0, MP_START_FORK};
    mp_process *again = mp_process_create(&d);
    if (mp_process_start(again) != MP_OK) return 14; /* a slot freed up: works again */
    if (mp_process_join(again, 10) != MP_OK) return 17;
    if (mp_process_exitcode(again) != 3) return 15;
    mp_process_destroy(again);
    for (int i = 1; i < started; i++) {
        mp_process_kill(ps[i]);
        mp_process_join(ps[i], 10);
        mp_process_destroy(ps[i]);
    }
    return 0;
}

TEST(process_nproc_limit_is_clean_error) {
    mp_init(NULL);
    pid_t pid = t_fork(nproc_scenario, NULL);
    int st = t_wait(pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
}

/* A user's SIGCHLD handler that only counts leaves exit codes intact; one that reaps
   everything behind mp's back yields MP_EXITCODE_LOST, never a hang. Forkserver
   children are the server's: the handler sees none of them, and the codes are exact. */
static volatile sig_atomic_t chld_seen;
static void count_chld(int sig) { (void)sig; chld_seen++; }
static void reap_all(int sig) {
    (void)sig;
    int e = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    errno = e;
}

TEST(process_user_sigchld_handlers) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_chld;
    sigaction(SIGCHLD, &sa, NULL);
    for (int i = 0; i < 10; i++) {
        mp_process *p = start(ret_arg, i, false);
        CHECK_EQ(mp_process_join(p, 10), MP_OK);
        CHECK_EQ(mp_process_exitcode(p), i);
        mp_process_destroy(p);
    }
    bool fs = mp_get_start_method() == MP_START_FORKSERVER;
    CHECK(fs ? chld_seen == 0 : chld_seen > 0);
    sa.sa_handler = reap_all;
    sigaction(SIGCHLD, &sa, NULL);
    mp_process *p = start(ret_arg, 5, false);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    int code = mp_process_exitcode(p);
    CHECK(code == 5 || (!fs && code == MP_EXITCODE_LOST)); /* depends on who reaped first */
    mp_process_destroy(p);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
}

/* Two threads joining one process: both see the real exit code (the one whose waitpid
   finds the child already reaped must not call it lost). */
static void *join_forever(void *arg) {
    mp_process *p = (mp_process *)arg;
    return (void *)(intptr_t)(mp_process_join(p, MP_FOREVER) == MP_OK ? mp_process_exitcode(p) : -1000);
}
static void *join_polling(void *arg) {
    mp_process *p = (mp_process *)arg;
    while (mp_process_join(p, 0.001) == MP_ETIMEDOUT) {}
    return (void *)(intptr_t)mp_process_exitcode(p);
}

TEST(process_join_from_two_threads) {
    for (int round = 0; round < 20; round++) {
        mp_process *p = start(sleep_ms, 5, false);
        pthread_t a, b;
        void *ra, *rb;
        pthread_create(&a, NULL, join_forever, p);
        pthread_create(&b, NULL, join_polling, p);
        pthread_join(a, &ra);
        pthread_join(b, &rb);
        CHECK_EQ((intptr_t)ra, 0);
        CHECK_EQ((intptr_t)rb, 0);
        mp_process_destroy(p);
    }
}

/* Calls on a destroyed record are MP_EINVAL (detectable while its memory is not reused),
   not MP_OK with a stale exit code. */
TEST(process_destroyed_record_is_einval) {
    mp_process *p = start(sleep_long, 0, false);
    mp_process_kill(p);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_destroy(p), MP_OK);
    CHECK_EQ(mp_process_join(p, 1), MP_EINVAL);
    CHECK_EQ(mp_process_join(p, MP_FOREVER), MP_EINVAL);
    CHECK_EQ(mp_process_terminate(p), MP_EINVAL);
    CHECK_EQ(mp_process_sentinel(p), MP_EINVAL);
    CHECK_EQ(mp_process_start(p), MP_EINVAL);
    CHECK(!mp_process_is_alive(p));
    CHECK_EQ(mp_process_exitcode(p), MP_EXITCODE_NONE);
    CHECK_EQ(mp_process_destroy(p), MP_EINVAL); /* twice */
    mp_process_desc d = {sleep_long, NULL, NULL, false, 0, 0};
    p = mp_process_create(&d); /* never started */
    CHECK_EQ(mp_process_destroy(p), MP_OK);
    CHECK_EQ(mp_process_start(p), MP_EINVAL);
    CHECK(mp_current_process() != NULL);
    CHECK_EQ(mp_process_destroy(mp_current_process()), MP_EINVAL);
}

/* mp_current_process makes the main process's record in the heap on first use: a full
   heap then gives NULL with ENOMEM, as documented, and the next call after room is
   made succeeds. */
TEST(process_current_process_on_a_full_heap_is_enomem) {
    if (mp_get_start_method() == MP_START_FORKSERVER) { /* the heap is made already */
        printf("SKIP process_current_process_on_a_full_heap_is_enomem: needs a fresh heap\n");
        return;
    }
    mp_config c = {.heap_size = 1 << 20};
    CHECK_EQ(mp_init(&c), MP_OK);
    void *blocks[4096];
    int n = 0;
    for (size_t sz = 65536; sz >= 16; sz /= 4) /* big blocks first, then what is left */
        while (n < 4096 && (blocks[n] = mp_alloc(sz)) != NULL) n++;
    CHECK(n < 4096);
    errno = 0;
    CHECK(mp_current_process() == NULL);
    CHECK_EQ(errno, ENOMEM);
    for (int i = 0; i < n; i++) mp_free(blocks[i]);
    CHECK(mp_current_process() != NULL);
    CHECK(strcmp(mp_process_name(mp_current_process()), "MainProcess") == 0);
}
