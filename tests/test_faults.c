/* Faults and abuse: EINTR storms across every blocking call, exhaustion of the shared
   heap, of fds and of processes, signals to the whole group during pool work, and
   hostile arguments. The torture test (tests/torture) and the fuzzer (fuzz/) cover the
   random-kill and the hostile-byte-stream sides. */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- the EINTR storm: SIGALRM every 100 us, handler without SA_RESTART ------------- */

static volatile sig_atomic_t storm_hits;
static void on_storm(int sig) {
    (void)sig;
    storm_hits++;
}

static void storm_start(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_storm; /* no SA_RESTART: every signal interrupts a system call */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void storm_stop(void) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    signal(SIGALRM, SIG_IGN); /* one may still be pending */
    signal(SIGALRM, SIG_DFL);
}

/* What a helper process does, ms milliseconds after it started. */
enum { ACT_HOLD_LOCK, ACT_SEM_RELEASE, ACT_EVENT_SET, ACT_NOTIFY, ACT_BARRIER };

typedef struct fx {
    mp_lock *lock;
    mp_semaphore *sem;
    mp_event *ev;
    mp_condition *cond;
    mp_barrier *bar;
    uint32_t ready;
    int act, ms, rc;
} fx;

static int helper(void *arg) {
    fx *f = (fx *)arg;
    switch (f->act) {
    case ACT_HOLD_LOCK:
        mp_lock_acquire(f->lock, MP_FOREVER);
        __atomic_store_n(&f->ready, 1, __ATOMIC_RELEASE);
        usleep((useconds_t)f->ms * 1000);
        f->rc = mp_lock_release(f->lock);
        break;
    case ACT_SEM_RELEASE:
        usleep((useconds_t)f->ms * 1000);
        f->rc = mp_semaphore_release(f->sem);
        break;
    case ACT_EVENT_SET:
        usleep((useconds_t)f->ms * 1000);
        mp_event_set(f->ev);
        break;
    case ACT_NOTIFY:
        usleep((useconds_t)f->ms * 1000);
        mp_condition_acquire(f->cond, MP_FOREVER);
        f->rc = mp_condition_notify(f->cond, 1);
        mp_condition_release(f->cond);
        break;
    case ACT_BARRIER:
        usleep((useconds_t)f->ms * 1000);
        f->rc = mp_barrier_wait(f->bar, 10, NULL);
        break;
    }
    return 0;
}

static mp_process *helper_start(fx *f, int act, int ms) {
    f->act = act, f->ms = ms, f->rc = 1;
    __atomic_store_n(&f->ready, 0, __ATOMIC_RELEASE);
    mp_process_desc d = {helper, f, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK(p != NULL);
    CHECK_EQ(mp_process_start(p), MP_OK);
    if (act == ACT_HOLD_LOCK)
        while (!__atomic_load_n(&f->ready, __ATOMIC_ACQUIRE)) usleep(1000);
    return p;
}

static void helper_join(mp_process *p, fx *f) {
    CHECK_EQ(mp_process_join(p, 20), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 0);
    CHECK_EQ(mp_process_destroy(p), MP_OK);
    CHECK(f->rc == MP_OK || f->act == ACT_EVENT_SET);
}

/* rc and duration of a call made during the storm */
#define TIMED(call, rc_out, dt_out)     \
    do {                                \
        double t__0 = t_now();          \
        rc_out = (call);                \
        dt_out = t_now() - t__0;        \
    } while (0)

static fx *fx_new(void) {
    fx *f = (fx *)mp_calloc(1, sizeof *f);
    CHECK(f != NULL);
    f->lock = mp_lock_create();
    f->sem = mp_semaphore_create(0, 0);
    f->ev = mp_event_create();
    f->cond = mp_condition_create(NULL);
    f->bar = mp_barrier_create(2, NULL, NULL);
    CHECK(f->lock && f->sem && f->ev && f->cond && f->bar);
    return f;
}

static void fx_free(fx *f) {
    mp_lock_destroy(f->lock);
    mp_semaphore_destroy(f->sem);
    mp_event_destroy(f->ev);
    mp_condition_destroy(f->cond);
    mp_barrier_destroy(f->bar);
    mp_free(f);
}

/* Each blocking sync call, once satisfied by another process ~300 ms in and once
   timing out, with SIGALRM arriving every 100 us: the codes are exactly the ones the
   calm case gives, and the time spent matches (no early return, no lost wakeup). */
TEST(faults_eintr_storm_sync_waits) {
    fx *f = fx_new();
    int rc;
    double dt;
    storm_start();

    mp_process *p = helper_start(f, ACT_HOLD_LOCK, 300);
    TIMED(mp_lock_acquire(f->lock, 10), rc, dt);
    CHECK_EQ(rc, MP_OK);
    CHECK(dt > 0.1 && dt < 5);
    CHECK_EQ(mp_lock_release(f->lock), MP_OK);
    helper_join(p, f);
    p = helper_start(f, ACT_HOLD_LOCK, 1200);
    TIMED(mp_lock_acquire(f->lock, 0.3), rc, dt);
    CHECK_EQ(rc, MP_ETIMEDOUT);
    CHECK(dt >= 0.29 && dt < 1.1);
    helper_join(p, f);

    p = helper_start(f, ACT_SEM_RELEASE, 300);
    TIMED(mp_semaphore_acquire(f->sem, 10), rc, dt);
    CHECK_EQ(rc, MP_OK);
    CHECK(dt > 0.1 && dt < 5);
    helper_join(p, f);
    TIMED(mp_semaphore_acquire(f->sem, 0.3), rc, dt);
    CHECK_EQ(rc, MP_ETIMEDOUT);
    CHECK(dt >= 0.29 && dt < 1.1);

    p = helper_start(f, ACT_EVENT_SET, 300);
    TIMED(mp_event_wait(f->ev, 10), rc, dt);
    CHECK_EQ(rc, MP_OK);
    CHECK(dt > 0.1 && dt < 5);
    helper_join(p, f);
    mp_event_clear(f->ev);
    TIMED(mp_event_wait(f->ev, 0.3), rc, dt);
    CHECK_EQ(rc, MP_ETIMEDOUT);
    CHECK(dt >= 0.29 && dt < 1.1);

    CHECK_EQ(mp_condition_acquire(f->cond, 10), MP_OK);
    p = helper_start(f, ACT_NOTIFY, 300);
    TIMED(mp_condition_wait(f->cond, 10), rc, dt);
    CHECK_EQ(rc, MP_OK);
    CHECK(dt > 0.1 && dt < 5);
    TIMED(mp_condition_wait(f->cond, 0.3), rc, dt);
    CHECK_EQ(rc, MP_ETIMEDOUT);
    CHECK(dt >= 0.29 && dt < 1.1);
    CHECK_EQ(mp_condition_release(f->cond), MP_OK); /* the lock is held again */
    helper_join(p, f);

    p = helper_start(f, ACT_BARRIER, 300);
    TIMED(mp_barrier_wait(f->bar, 10, NULL), rc, dt);
    CHECK_EQ(rc, MP_OK);
    CHECK(dt > 0.1 && dt < 5);
    helper_join(p, f);
    TIMED(mp_barrier_wait(f->bar, 0.3, NULL), rc, dt);
    CHECK_EQ(rc, MP_EBROKEN); /* Python: a timeout breaks the barrier */
    CHECK(dt >= 0.29 && dt < 1.1);

    storm_stop();
    CHECK(storm_hits > 200);
    fx_free(f);
}

/* Many short waits in a row under the storm: a wake must never be lost to a signal. */
static int pingpong_child(void *arg) {
    fx *f = (fx *)arg;
    int n = (int)t_scale(2000);
    for (int i = 0; i < n; i++) {
        if (mp_semaphore_acquire(f->sem, 10) != MP_OK) return 1;
        mp_event_set(f->ev);
    }
    return 0;
}

TEST(faults_eintr_storm_pingpong_loses_no_wakeup) {
    fx *f = fx_new();
    storm_start();
    mp_process_desc d = {pingpong_child, f, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK_EQ(mp_process_start(p), MP_OK);
    int n = (int)t_scale(2000);
    for (int i = 0; i < n; i++) {
        mp_event_clear(f->ev);
        CHECK_EQ(mp_semaphore_release(f->sem), MP_OK);
        CHECK_EQ(mp_event_wait(f->ev, 10), MP_OK);
    }
    CHECK_EQ(mp_process_join(p, 20), MP_OK);
    storm_stop();
    CHECK_EQ(mp_process_exitcode(p), 0);
    mp_process_destroy(p);
    CHECK(storm_hits > 10);
    fx_free(f);
}

/* --- exhaustion -------------------------------------------------------------------- */

/* Fill the heap with blocks of every size until even the smallest does not fit. */
static int heap_fill(void **held, int cap) {
    int n = 0;
    for (size_t sz = (size_t)1 << 20; sz >= 16 && n < cap; sz /= 2)
        while (n < cap && (held[n] = mp_alloc(sz)) != NULL) n++;
    return n;
}

static int ret0(void *arg) {
    (void)arg;
    return 0;
}

TEST(faults_heap_full_every_create_is_enomem) {
    mp_config c = {.heap_size = 2 << 20};
    CHECK_EQ(mp_init(&c), MP_OK);
    mp_lock *l = mp_lock_create(); /* made before: must keep working */
    CHECK(l != NULL);
    static void *held[100000];
    int n = heap_fill(held, 100000);
    CHECK(n > 0 && n < 100000);
    errno = 0;
    CHECK(mp_alloc(1) == NULL);
    CHECK_EQ(errno, ENOMEM);
#define FULL(expr)            \
    do {                      \
        errno = 0;            \
        CHECK((expr) == NULL); \
        CHECK_EQ(errno, ENOMEM); \
    } while (0)
    FULL(mp_lock_create());
    FULL(mp_rlock_create());
    FULL(mp_semaphore_create(1, 0));
    FULL(mp_event_create());
    FULL(mp_condition_create(NULL));
    FULL(mp_barrier_create(2, NULL, NULL));
    mp_process_desc d = {ret0, NULL, NULL, false, 0, 0};
    FULL(mp_process_create(&d));
    /* what exists still works */
    CHECK_EQ(mp_lock_acquire(l, 0), MP_OK);
    CHECK_EQ(mp_lock_release(l), MP_OK);
    for (int i = 0; i < n; i++) mp_free(held[i]);
    mp_process *p = mp_process_create(&d);
    CHECK(p != NULL);
    CHECK_EQ(mp_process_start(p), MP_OK);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 0);
    mp_process_destroy(p);
    mp_lock_destroy(l);
}

/* --- hostile arguments ------------------------------------------------------------- */

/* Objects of one type passed as another, timeouts that are not numbers: refused or
   handled, never a crash or a hang. */
TEST(faults_wrong_type_and_odd_timeouts) {
    mp_lock *l = mp_lock_create();
    mp_event *e = mp_event_create();
    mp_semaphore *s = mp_semaphore_create(1, 0);
    void *raw = mp_calloc(1, 256);
    CHECK(l && e && s && raw);
    CHECK_EQ(mp_event_wait((mp_event *)(void *)l, 0), MP_EINVAL);
    CHECK_EQ(mp_semaphore_acquire((mp_semaphore *)(void *)e, 0), MP_EINVAL);
    CHECK_EQ(mp_lock_acquire((mp_lock *)(void *)s, 0), MP_EINVAL);
    CHECK_EQ(mp_lock_acquire((mp_lock *)raw, 0), MP_EINVAL);
    CHECK_EQ(mp_barrier_wait((mp_barrier *)raw, 0, NULL), MP_EINVAL);
    CHECK_EQ(mp_condition_wait((mp_condition *)raw, 0), MP_EINVAL);
    CHECK_EQ(mp_rlock_acquire((mp_rlock *)raw, 0), MP_EINVAL);
    errno = 0;
    CHECK(mp_condition_create((mp_lock *)raw) == NULL);
    CHECK_EQ(errno, EINVAL);
    /* NaN and infinities: forever (like any negative), never a bogus deadline */
    CHECK_EQ(mp_lock_acquire(l, NAN), MP_OK);
    CHECK_EQ(mp_lock_release(l), MP_OK);
    CHECK_EQ(mp_lock_acquire(l, INFINITY), MP_OK);
    CHECK_EQ(mp_lock_release(l), MP_OK);
    CHECK_EQ(mp_lock_acquire(l, -INFINITY), MP_OK);
    double t0 = t_now();
    CHECK_EQ(mp_lock_acquire(l, 1e-300), MP_ETIMEDOUT); /* ours already: not re-entrant */
    CHECK(t_now() - t0 < 0.5);
    CHECK_EQ(mp_lock_release(l), MP_OK);
    CHECK_EQ(mp_semaphore_acquire(s, 1e300), MP_OK);
    t0 = t_now();
    CHECK_EQ(mp_semaphore_acquire(s, 1e-300), MP_ETIMEDOUT);
    CHECK_EQ(mp_event_wait(e, -0.0), MP_ETIMEDOUT);
    CHECK(t_now() - t0 < 0.5);
    mp_free(raw);
    mp_lock_destroy(l);
    mp_event_destroy(e);
    mp_semaphore_destroy(s);
}

/* --- queue and pool under the storm, exhaustion, SIGINT ------------------------------ */

/* --- queue: storm, heap full ----------------------------------------------------- */

static int queue_echo_child(void *arg) {
    mp_queue **qs = (mp_queue **)arg; /* qs[0]: requests, qs[1]: replies */
    char buf[4096];
    size_t len;
    for (;;) {
        int rc = mp_queue_get(qs[0], buf, sizeof buf, &len, 10);
        if (rc == MP_ECLOSED) return 0;
        if (rc != MP_OK) return 1;
        usleep((useconds_t)(buf[0] & 3) * 1000); /* sometimes make the parent wait */
        if (mp_queue_put(qs[1], buf, len, 10) != MP_OK) return 2;
    }
}

/* Round trips through two queues while SIGALRM fires every 100 us in the parent: every
   put and get returns MP_OK with the right bytes; timed-out ones take their time. */
TEST(faults_eintr_storm_queue_put_get) {
    mp_queue_desc d = {4, 0};
    mp_queue **qs = (mp_queue **)mp_calloc(2, sizeof *qs);
    qs[0] = mp_queue_create(&d);
    qs[1] = mp_queue_create(&d);
    CHECK(qs[0] && qs[1]);
    storm_start();
    mp_process_desc pd = {queue_echo_child, qs, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&pd);
    CHECK_EQ(mp_process_start(p), MP_OK);
    int n = (int)t_scale(300);
    char out[4096], in[4096];
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)(i * 37 % 4000) + 1, got = 0;
        for (size_t k = 0; k < len; k++) out[k] = (char)(i + (int)k);
        CHECK_EQ(mp_queue_put(qs[0], out, len, 10), MP_OK);
        CHECK_EQ(mp_queue_get(qs[1], in, sizeof in, &got, 10), MP_OK);
        CHECK_EQ(got, len);
        CHECK(memcmp(in, out, len) == 0);
    }
    double t0 = t_now();
    size_t got;
    CHECK_EQ(mp_queue_get(qs[1], in, sizeof in, &got, 0.3), MP_ETIMEDOUT);
    CHECK(t_now() - t0 >= 0.29 && t_now() - t0 < 1.5);
    mp_queue_close(qs[0]);
    CHECK_EQ(mp_process_join(p, 20), MP_OK);
    storm_stop();
    CHECK_EQ(mp_process_exitcode(p), 0);
    mp_process_destroy(p);
    for (int i = 0; i < 4; i++) CHECK_EQ(mp_queue_put(qs[1], "x", 1, 0), MP_OK);
    t0 = t_now();
    storm_start();
    CHECK_EQ(mp_queue_put(qs[1], "x", 1, 0.3), MP_ETIMEDOUT); /* full */
    storm_stop();
    CHECK(t_now() - t0 >= 0.29 && t_now() - t0 < 1.5);
    CHECK(storm_hits > 100);
    mp_queue_destroy(qs[0]);
    mp_queue_destroy(qs[1]);
    mp_free(qs);
}

TEST(faults_heap_full_queue_create_and_big_put_enomem) {
    mp_config c = {.heap_size = 4 << 20};
    CHECK_EQ(mp_init(&c), MP_OK);
    mp_queue *q = mp_queue_create(NULL); /* made before: must keep working */
    CHECK(q != NULL);
    static void *held[100000];
    int n = heap_fill(held, 100000);
    CHECK(n > 0 && n < 100000);
    mp_queue_desc small = {8, 1024};
    FULL(mp_queue_create(&small));
    FULL(mp_queue_create(NULL));
    /* the old queue: small messages still go inline; a big one needs a heap block */
    size_t len;
    char buf[8];
    CHECK_EQ(mp_queue_put(q, "hello", 5, 0), MP_OK);
    static char big[300000];
    CHECK_EQ(mp_queue_put(q, big, sizeof big, 0), MP_ENOMEM);
    CHECK_EQ(mp_queue_get(q, buf, sizeof buf, &len, 0), MP_OK);
    CHECK_EQ(len, 5);
    CHECK_EQ(mp_queue_get(q, buf, sizeof buf, &len, 0), MP_ETIMEDOUT);
    for (int i = 0; i < n; i++) mp_free(held[i]);
    CHECK_EQ(mp_queue_put(q, big, sizeof big, 0), MP_OK); /* room again */
    void *back = NULL;
    CHECK_EQ(mp_queue_get_alloc(q, &back, &len, 0), MP_OK);
    CHECK_EQ(len, sizeof big);
    free(back);
    mp_queue_destroy(q);
}

static useconds_t square_us = 200; /* set before the pool forks its workers */

static int slow_square(const void *in, void *out) {
    long x;
    memcpy(&x, in, sizeof x);
    usleep(square_us);
    x *= x;
    memcpy(out, &x, sizeof x);
    return 0;
}

static void squares_in(long *in, long *out, size_t n) {
    for (size_t i = 0; i < n; i++) in[i] = (long)i, out[i] = -1;
}

/* The owner waits in mp_pool_map and mp_async_get while SIGALRM fires every 100 us. */
TEST(faults_eintr_storm_pool_map) {
    mp_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.processes = 2;
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    enum { N = 2000 };
    static long in[N], out[N];
    squares_in(in, out, N);
    mp_map_desc d;
    memset(&d, 0, sizeof d);
    d.fn = slow_square, d.in = in, d.in_size = sizeof(long), d.out = out;
    d.out_size = sizeof(long), d.n = (size_t)t_scale(N), d.chunksize = 4;
    storm_start();
    CHECK_EQ(mp_pool_map(p, &d), MP_OK);
    for (size_t i = 0; i < d.n; i++) CHECK_EQ(out[i], (long)(i * i));
    storm_stop();
    CHECK(storm_hits > 10);
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 20), MP_OK);
    mp_pool_destroy(p);
}

TEST(faults_heap_full_pool_create_enomem) {
    mp_config c = {.heap_size = 4 << 20};
    CHECK_EQ(mp_init(&c), MP_OK);
    static void *held[100000];
    int n = heap_fill(held, 100000);
    CHECK(n > 0 && n < 100000);
    mp_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.processes = 2;
    FULL(mp_pool_create(&pd));
    for (int i = 0; i < n; i++) mp_free(held[i]);
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 20), MP_OK);
    mp_pool_destroy(p);
}

/* SIGINT to the whole process group (Ctrl-C) while the owner waits in mp_pool_map. */
static volatile sig_atomic_t sigints;
static void on_sigint(int sig) {
    (void)sig;
    sigints++;
}

static int ctrl_c_storm(void *arg) {
    (void)arg;
    signal(SIGINT, SIG_IGN);
    usleep(20000);
    for (int i = 0; i < 10; i++) {
        kill(0, SIGINT);
        usleep(20000);
    }
    return 0;
}

static int ignore_sigint(void *arg) {
    (void)arg;
    signal(SIGINT, SIG_IGN);
    return 0;
}

static void sigint_during_map(bool handler_before_pool, bool workers_ignore) {
    signal(SIGINT, SIG_DFL); /* a background job (cmd &) starts with SIGINT ignored */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint; /* no SA_RESTART */
    if (handler_before_pool) sigaction(SIGINT, &sa, NULL);
    mp_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.processes = 2;
    if (workers_ignore) pd.initializer = ignore_sigint;
    square_us = 1000; /* the map lasts ~0.5 s: the SIGINTs land in the middle */
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    if (!handler_before_pool) sigaction(SIGINT, &sa, NULL); /* workers keep SIG_DFL */
    enum { N = 1000 };
    static long in[N], out[N];
    squares_in(in, out, N);
    mp_map_failure f;
    mp_map_desc d;
    memset(&d, 0, sizeof d);
    d.fn = slow_square, d.in = in, d.in_size = sizeof(long), d.out = out;
    d.out_size = sizeof(long), d.n = N, d.chunksize = 1, d.failure = &f;
    sigints = 0;
    pid_t k = t_fork(ctrl_c_storm, NULL);
    double t0 = t_now();
    int rc = mp_pool_map(p, &d);
    CHECK(t_now() - t0 < 30);
    CHECK_EQ(t_wait(k), 0);
    CHECK(sigints > 0);
    size_t bad = 0;
    for (size_t i = 0; i < N; i++) bad += out[i] != (long)(i * i);
    mp_pool_stats st;
    CHECK_EQ(mp_pool_stats_get(p, &st), MP_OK);
    if (handler_before_pool || workers_ignore) {
        /* workers inherited the handler (or ignore SIGINT): nothing fails */
        CHECK_EQ(rc, MP_OK);
        CHECK_EQ(bad, 0);
        CHECK_EQ(st.died, 0);
    } else {
        /* workers with the default action die; their items fail (an item may have been
           written just before its worker died), every other one is right */
        CHECK(rc == MP_OK || rc == MP_EWORKERDIED);
        CHECK(bad <= f.failed);
        if (rc == MP_EWORKERDIED) CHECK_EQ(f.code, -SIGINT);
        /* every SIGINT has been sent (t_wait), but on a loaded machine the storm may
           have come after the map: then the owner sees the deaths when it next looks */
        for (double until = t_now() + 10; st.died == 0 && t_now() < until;) {
            usleep(10000);
            CHECK_EQ(mp_pool_stats_get(p, &st), MP_OK);
        }
        CHECK(st.died > 0);
    }
    /* the pool still works afterwards */
    squares_in(in, out, N);
    d.n = 100;
    CHECK_EQ(mp_pool_map(p, &d), MP_OK);
    for (size_t i = 0; i < 100; i++) CHECK_EQ(out[i], (long)(i * i));
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 20), MP_OK);
    mp_pool_destroy(p);
    signal(SIGINT, SIG_DFL);
}

TEST(faults_sigint_group_handler_inherited_by_workers) { sigint_during_map(true, false); }
TEST(faults_sigint_group_workers_ignore_it) { sigint_during_map(false, true); }
TEST(faults_sigint_group_workers_default_die_and_fail_tasks) {
    sigint_during_map(false, false);
}

/* A user's SIGCHLD handler that reaps every child behind mp's back, while pool workers
   die and get replaced: the pool still notices each death (MP_EWORKERDIED for the
   dying items only), replaces the workers, and close + join return. */
static void reap_everything(int sig) {
    (void)sig;
    int e = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    errno = e;
}

static int square_or_die(const void *in, void *out) {
    long x;
    memcpy(&x, in, sizeof x);
    if (x % 50 == 7) raise(SIGKILL);
    x *= x;
    memcpy(out, &x, sizeof x);
    return 0;
}

TEST(faults_sigchld_reaper_during_pool_deaths) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reap_everything; /* no SA_RESTART either */
    sigaction(SIGCHLD, &sa, NULL);
    mp_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.processes = 2;
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    enum { N = 300 };
    static long in[N], out[N];
    squares_in(in, out, N);
    mp_map_failure f;
    mp_map_desc d;
    memset(&d, 0, sizeof d);
    d.fn = square_or_die, d.in = in, d.in_size = sizeof(long), d.out = out;
    d.out_size = sizeof(long), d.n = N, d.chunksize = 1, d.failure = &f;
    double t0 = t_now();
    CHECK_EQ(mp_pool_map(p, &d), MP_EWORKERDIED);
    CHECK(t_now() - t0 < 30);
    CHECK_EQ(f.index, 7);
    CHECK_EQ(f.failed, N / 50);
    for (size_t i = 0; i < N; i++)
        if (i % 50 != 7) CHECK_EQ(out[i], (long)(i * i));
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 20), MP_OK);
    mp_pool_destroy(p);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
}

/* --- connections --------------------------------------------------------------------- */

static int conn_echo_child(void *arg) {
    mp_conn **ends = (mp_conn **)arg; /* ends[0] is ours; ends[1] the parent's */
    mp_conn_close(ends[1]);
    static char buf[100000];
    size_t len;
    for (;;) {
        int rc = mp_conn_recv(ends[0], buf, sizeof buf, &len, 10);
        if (rc == MP_ECLOSED) break;
        if (rc != MP_OK) return 1;
        usleep((useconds_t)(len % 3) * 1000); /* sometimes make the parent wait */
        if (mp_conn_send(ends[0], buf, len) != MP_OK) return 2;
    }
    mp_conn_close(ends[0]);
    return 0;
}

/* Round trips over a socketpair while SIGALRM fires every 100 us in the parent: recv,
   recv_alloc, poll and mp_wait all give MP_OK and the right bytes, big messages that
   take many reads included; a timed-out recv takes its time and consumes nothing. */
TEST(faults_eintr_storm_conn_recv_poll_wait) {
    static mp_conn *ends[2];
    CHECK_EQ(mp_pipe(&ends[0], &ends[1], true), MP_OK);
    mp_process_desc pd = {conn_echo_child, ends, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&pd);
    CHECK_EQ(mp_process_start(p), MP_OK);
    storm_start();
    static char out[100000], in[100000];
    int n = (int)t_scale(200);
    for (int i = 0; i < n; i++) {
        size_t len = i % 10 == 0 ? 90000 : (size_t)(i * 131 % 5000), got = 0;
        for (size_t k = 0; k < len; k++) out[k] = (char)(i ^ (int)k);
        CHECK_EQ(mp_conn_send(ends[1], out, len), MP_OK);
        if (i % 4 == 1) {
            CHECK_EQ(mp_conn_poll(ends[1], 10), MP_OK);
        } else if (i % 4 == 2) {
            int fd = mp_conn_fileno(ends[1]);
            bool ready = false;
            CHECK_EQ(mp_wait(&fd, 1, &ready, 10), 1);
            CHECK(ready);
        }
        if (i % 4 == 3) {
            void *b = NULL;
            CHECK_EQ(mp_conn_recv_alloc(ends[1], &b, &got, 10), MP_OK);
            CHECK_EQ(got, len);
            CHECK(len == 0 || memcmp(b, out, len) == 0);
            free(b);
        } else {
            CHECK_EQ(mp_conn_recv(ends[1], in, sizeof in, &got, 10), MP_OK);
            CHECK_EQ(got, len);
            CHECK(memcmp(in, out, len) == 0);
        }
    }
    double t0 = t_now();
    size_t got;
    CHECK_EQ(mp_conn_recv(ends[1], in, sizeof in, &got, 0.3), MP_ETIMEDOUT);
    CHECK(t_now() - t0 >= 0.29 && t_now() - t0 < 1.5);
    storm_stop();
    CHECK(storm_hits > 100);
    mp_conn_close(ends[1]); /* the child sees EOF and leaves */
    CHECK_EQ(mp_process_join(p, 20), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 0);
    mp_process_destroy(p);
    mp_conn_close(ends[0]);
}

/* mp_pipe at RLIMIT_NOFILE: MP_ESYS with errno EMFILE, nothing half-made, and the
   connections that exist keep working; with one fd free it still fails cleanly. */
TEST(faults_fd_limit_mp_pipe_is_clean_error) {
    mp_conn *a, *b, *x = NULL, *y = NULL;
    CHECK_EQ(mp_pipe(&a, &b, true), MP_OK);
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = 64;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    int filler[64], n = 0, before = t_count_fds();
    while (n < 64 && (filler[n] = dup(0)) >= 0) n++; /* every fd in use */
    /* valgrind emulates the limit for some calls only (not socketpair): test what the
       system enforces */
    bool enforced[2];
    for (int duplex = 0; duplex < 2; duplex++) {
        int raw[2];
        enforced[duplex] = (duplex ? socketpair(AF_UNIX, SOCK_STREAM, 0, raw) : pipe(raw)) < 0;
        if (!enforced[duplex]) close(raw[0]), close(raw[1]);
    }
    CHECK(enforced[0] || enforced[1]);
    for (int duplex = 0; duplex < 2; duplex++) {
        if (!enforced[duplex]) continue;
        errno = 0;
        CHECK_EQ(mp_pipe(&x, &y, duplex), MP_ESYS);
        CHECK_EQ(errno, EMFILE);
        CHECK(x == NULL && y == NULL);
    }
    close(filler[--n]); /* one free fd: a pair needs two */
    for (int duplex = 0; duplex < 2; duplex++) {
        if (!enforced[duplex]) continue;
        errno = 0;
        CHECK_EQ(mp_pipe(&x, &y, duplex), MP_ESYS);
        CHECK_EQ(errno, EMFILE);
    }
    errno = 0;
    CHECK(mp_conn_open(-1, MP_CONN_READABLE) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_conn_send(b, "still", 5), MP_OK); /* the old pair works */
    char buf[8];
    size_t len;
    CHECK_EQ(mp_conn_recv(a, buf, sizeof buf, &len, 1), MP_OK);
    CHECK_EQ(len, 5);
    while (n > 0) close(filler[--n]);
    CHECK_EQ(t_count_fds(), before); /* no fd left behind by the failed calls */
    setrlimit(RLIMIT_NOFILE, &old);
    CHECK_EQ(mp_pipe(&x, &y, false), MP_OK);
    mp_conn_close(x);
    mp_conn_close(y);
    mp_conn_close(a);
    mp_conn_close(b);
}

/* --- process limit ---------------------------------------------------------------- */

static int pool_worker_pids(pid_t *out, int cap) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f) return -1;
    while (n < cap && fscanf(f, "%d", &out[n]) == 1) n++;
    fclose(f);
    return n;
}

static int nproc_limit(rlim_t soft) {
    struct rlimit lim = {soft, 4};
    return setrlimit(RLIMIT_NPROC, &lim);
}

/* As user nobody (root ignores RLIMIT_NPROC): a pool that cannot fork all its workers
   fails with EAGAIN and leaves no child behind; a pool whose dead workers cannot be
   replaced goes on with those it has, waits (not hangs: timeouts work) when it has
   none, and recovers once the limit allows. */
static int pool_nproc_scenario(void *arg) {
    int *phase = (int *)arg; /* where we are, for the parent if we get stuck */
    if (setgid(65534) < 0 || setuid(65534) < 0) return 10;
    if (nproc_limit(4) < 0) return 11;
    mp_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.processes = 2;
    *phase = 1;
    mp_pool *a = mp_pool_create(&pd); /* 3 of 4 */
    if (!a) return 12;
    *phase = 2;
    pd.processes = 4;
    errno = 0;
    if (mp_pool_create(&pd) != NULL || errno != EAGAIN) return 13;
    pid_t w[8];
    if (pool_worker_pids(w, 8) != 2) return 14; /* the failed pool left nothing */
    enum { N = 200 };
    static long in[N], out[N];
    squares_in(in, out, N);
    mp_map_desc d;
    memset(&d, 0, sizeof d);
    d.fn = slow_square, d.in = in, d.in_size = sizeof(long), d.out = out;
    d.out_size = sizeof(long), d.n = N, d.chunksize = 1;
    *phase = 3;
    /* one worker dies and cannot be replaced: the other does everything */
    if (nproc_limit(2) < 0) return 15;
    kill(w[0], SIGKILL);
    if (mp_pool_map(a, &d) != MP_OK) return 16;
    for (int i = 0; i < N; i++)
        if (out[i] != (long)i * i) return 17;
    *phase = 4;
    /* both dead, none can start: imap waits with working timeouts, then recovers */
    if (nproc_limit(1) < 0) return 18;
    int n = pool_worker_pids(w, 8);
    for (int i = 0; i < n; i++) kill(w[i], SIGKILL);
    usleep(100000);
    squares_in(in, out, N);
    mp_imap *it = mp_pool_imap(a, &d);
    if (!it) return 19;
    size_t idx;
    long v;
    int rc = mp_imap_next(it, &v, &idx, 0.5);
    if (rc != MP_ETIMEDOUT && rc != MP_EWORKERDIED) return 20;
    *phase = 5;
    if (nproc_limit(4) < 0) return 21;
    size_t got = rc == MP_EWORKERDIED;
    while ((rc = mp_imap_next(it, &v, &idx, 20)) != MP_ECLOSED) {
        if (rc != MP_OK && rc != MP_EWORKERDIED) return 22;
        if (rc == MP_OK && v != (long)idx * (long)idx) return 23;
        got++;
    }
    mp_imap_destroy(it);
    if (got != N) return 24;
    *phase = 6;
    mp_pool_close(a);
    if (mp_pool_join(a, 20) != MP_OK) return 25;
    mp_pool_destroy(a);
    return 0;
}

TEST(faults_nproc_limit_pool_create_and_replacement) {
    mp_init(NULL);
    int *phase = (int *)mp_calloc(1, sizeof *phase);
    CHECK(phase != NULL);
    pid_t pid = t_fork(pool_nproc_scenario, phase);
    const char *sc = getenv("MP_TEST_TIMEOUT_SCALE");
    double limit = 30 * (sc && atof(sc) > 1 ? atof(sc) : 1), t0 = t_now();
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (t_now() - t0 > limit) { /* say where it hangs instead of timing out silently */
            fprintf(stderr, "  nproc scenario stuck in phase %d\n", *phase);
            kill(pid, SIGKILL);
            st = t_wait(pid);
            CHECK(!"nproc scenario finished in time");
        }
        usleep(10000);
    }
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    mp_free(phase);
}

/* --- hostile sizes: products that overflow, lengths near SIZE_MAX ------------------- */

static int id_fn(const void *in, void *out) {
    memcpy(out, in, 1);
    return 0;
}
static int nop_task(const void *a, size_t n, void *r, size_t *rl) {
    (void)a, (void)n, (void)r;
    *rl = 0;
    return 0;
}

TEST(faults_hostile_sizes_conn_and_pool) {
    char buf[16];
    size_t len = 0;
    /* conn */
    mp_conn *a, *b;
    CHECK_EQ(mp_pipe(&a, &b, false), MP_OK);
    CHECK_EQ(mp_conn_send(a, "x", 1), MP_EINVAL); /* a receives only */
    CHECK_EQ(mp_conn_recv(b, buf, sizeof buf, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_send(b, NULL, 1), MP_EINVAL);
    CHECK_EQ(mp_conn_recv(a, NULL, 1, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_recv(a, buf, sizeof buf, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_set_max_message(a, 0), MP_EINVAL);
    CHECK_EQ(mp_conn_set_max_message(a, 8), MP_OK);
    CHECK_EQ(mp_conn_send(b, "123456789", 9), MP_OK);
    CHECK_EQ(mp_conn_recv(a, buf, sizeof buf, &len, 1), MP_ETOOBIG); /* over the limit */
    CHECK_EQ(len, 9);
    void *p = (void *)1;
    CHECK_EQ(mp_conn_recv_alloc(a, &p, &len, 1), MP_ETOOBIG);
    CHECK(p == NULL);
    int fds[2] = {mp_conn_fileno(a), -1};
    bool ready[2];
    CHECK_EQ(mp_wait(fds, 2, ready, 0), MP_EINVAL);
    CHECK_EQ(mp_wait(fds, 0, ready, 0), MP_EINVAL);
    CHECK_EQ(mp_wait(fds, SIZE_MAX, ready, 0), MP_EINVAL);
    errno = 0;
    CHECK(mp_conn_open(mp_conn_fileno(a), 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_conn_open(1000000, MP_CONN_READABLE) == NULL);
    mp_conn_close(a);
    mp_conn_close(b);
    /* pool */
    mp_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.processes = 1;
    mp_pool *pool = mp_pool_create(&pd);
    CHECK(pool != NULL);
    char in[4] = {1, 2, 3, 4}, out[4];
    mp_map_desc d;
    memset(&d, 0, sizeof d);
    d.fn = id_fn, d.in = in, d.in_size = 1, d.out = out, d.out_size = 1, d.n = 4;
    mp_map_desc bad = d;
    bad.in_size = SIZE_MAX / 2;
    CHECK_EQ(mp_pool_map(pool, &bad), MP_EINVAL);
    bad = d, bad.out_size = SIZE_MAX / 3;
    CHECK_EQ(mp_pool_map(pool, &bad), MP_EINVAL);
    bad = d, bad.n = SIZE_MAX;
    CHECK_EQ(mp_pool_map(pool, &bad), MP_EINVAL);
    bad = d, bad.in_size = 0;
    CHECK_EQ(mp_pool_map(pool, &bad), MP_EINVAL);
    bad = d, bad.chunksize = SIZE_MAX;
    CHECK_EQ(mp_pool_map(pool, &bad), MP_OK); /* one chunk of everything */
    CHECK(memcmp(in, out, 4) == 0);
    errno = 0;
    CHECK(mp_pool_apply_async(pool, nop_task, NULL, 5) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    mp_async *r = mp_pool_apply_async(pool, nop_task, in, SIZE_MAX / 2);
    CHECK(r == NULL);
    CHECK(errno == EINVAL || errno == ENOMEM);
    CHECK_EQ(mp_async_get(NULL, out, 4, &len, 0), MP_EINVAL);
    mp_pool_close(pool);
    CHECK_EQ(mp_pool_join(pool, 20), MP_OK);
    mp_pool_destroy(pool);
}

/* --- hostile sizes and odd timeouts on queues ------------------------------------------ */

TEST(faults_hostile_sizes_queue) {
    char buf[16];
    size_t len = 0;
    /* queue */
    mp_queue_desc qd = {SIZE_MAX / 2, SIZE_MAX / 2};
    errno = 0;
    CHECK(mp_queue_create(&qd) == NULL);
    CHECK(errno == EINVAL || errno == ENOMEM);
    mp_queue *q = mp_queue_create(NULL);
    CHECK(q != NULL);
    CHECK_EQ(mp_queue_put(q, buf, SIZE_MAX, 0), MP_ETOOBIG);
    CHECK_EQ(mp_queue_put(q, buf, SIZE_MAX / 2 + 1, 0), MP_ETOOBIG);
    CHECK_EQ(mp_queue_put(q, NULL, 1, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_get(q, NULL, 5, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_get(q, buf, sizeof buf, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_get_alloc(q, NULL, &len, 0), MP_EINVAL);
    CHECK_EQ(mp_queue_put(q, buf, 3, NAN), MP_OK); /* NaN: forever, and there is room */
    CHECK_EQ(mp_queue_get(q, buf, sizeof buf, &len, -INFINITY), MP_OK);
    CHECK_EQ(len, 3);
    CHECK(mp_queue_empty(q));
    mp_queue_destroy(q);
}
