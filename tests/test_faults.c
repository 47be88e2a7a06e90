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
    mp_process_desc d = {helper, f, NULL, false};
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
    mp_process_desc d = {pingpong_child, f, NULL, false};
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
    mp_config c = {2 << 20};
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
    mp_process_desc d = {ret0, NULL, NULL, false};
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
