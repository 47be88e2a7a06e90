/* Synchronization: locks, rlocks, semaphores, events, conditions, barriers, across real
   processes (and threads), with fault tests that SIGKILL a participant. */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void join_ok(pid_t pid) {
    int st = t_wait(pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
}

static void kill_reap(pid_t pid) {
    kill(pid, SIGKILL);
    int st = t_wait(pid);
    CHECK(WIFSIGNALED(st));
}

/* The state the processes of one test share, in the heap. */
typedef struct {
    mp_lock *lock;
    mp_rlock *rlock;
    mp_semaphore *sem, *ready;
    mp_event *ev;
    mp_condition *cond;
    mp_barrier *bar;
    long counter, inside, max_inside, iters;
    int results[16];
    int woken, flag;
    double t0;
} shared;

static shared *shared_new(void) {
    shared *s = (shared *)mp_calloc(1, sizeof *s);
    CHECK(s != NULL);
    s->ready = mp_semaphore_create(0, 0);
    CHECK(s->ready != NULL);
    return s;
}

static void shared_free(shared *s) {
    mp_lock_destroy(s->lock);
    mp_rlock_destroy(s->rlock);
    mp_semaphore_destroy(s->sem);
    mp_semaphore_destroy(s->ready);
    mp_event_destroy(s->ev);
    mp_condition_destroy(s->cond);
    mp_barrier_destroy(s->bar);
    mp_free(s);
}

/* --- bad input ------------------------------------------------------------------- */

TEST(sync_bad_input_is_einval) {
    CHECK_EQ(mp_lock_acquire(NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_lock_release(NULL), MP_EINVAL);
    mp_lock_destroy(NULL);
    CHECK_EQ(mp_rlock_acquire(NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_rlock_release(NULL), MP_EINVAL);
    mp_rlock_destroy(NULL);
    CHECK_EQ(mp_semaphore_acquire(NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_semaphore_release(NULL), MP_EINVAL);
    CHECK_EQ(mp_semaphore_value(NULL), MP_EINVAL);
    mp_semaphore_destroy(NULL);
    mp_event_set(NULL);
    mp_event_clear(NULL);
    CHECK(!mp_event_is_set(NULL));
    CHECK_EQ(mp_event_wait(NULL, 0), MP_EINVAL);
    mp_event_destroy(NULL);
    CHECK_EQ(mp_condition_acquire(NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_condition_release(NULL), MP_EINVAL);
    CHECK_EQ(mp_condition_wait(NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_condition_wait_for(NULL, NULL, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_condition_notify(NULL, 1), MP_EINVAL);
    CHECK_EQ(mp_condition_notify_all(NULL), MP_EINVAL);
    mp_condition_destroy(NULL);
    CHECK_EQ(mp_barrier_wait(NULL, 0, NULL), MP_EINVAL);
    mp_barrier_abort(NULL);
    mp_barrier_reset(NULL);
    CHECK_EQ(mp_barrier_parties(NULL), 0);
    CHECK_EQ(mp_barrier_n_waiting(NULL), 0);
    CHECK(!mp_barrier_broken(NULL));
    mp_barrier_destroy(NULL);

    errno = 0;
    CHECK(mp_barrier_create(0, NULL, NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mp_semaphore_create(3, 2) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_semaphore_create(0u - 1, 0) == NULL);

    /* destroyed objects are refused while their memory is not reused */
    mp_lock *l = mp_lock_create();
    mp_rlock *r = mp_rlock_create();
    mp_semaphore *s = mp_semaphore_create(1, 0);
    mp_event *e = mp_event_create();
    mp_condition *c = mp_condition_create(NULL);
    mp_barrier *b = mp_barrier_create(2, NULL, NULL);
    CHECK(l && r && s && e && c && b);
    mp_condition *c2 = mp_condition_create(l);
    CHECK(c2 != NULL);
    mp_condition_destroy(c2);
    mp_lock_destroy(l);
    mp_rlock_destroy(r);
    mp_semaphore_destroy(s);
    mp_event_destroy(e);
    mp_condition_destroy(c);
    mp_barrier_destroy(b);
    CHECK_EQ(mp_lock_acquire(l, 0), MP_EINVAL);
    CHECK_EQ(mp_lock_release(l), MP_EINVAL);
    CHECK_EQ(mp_rlock_acquire(r, 0), MP_EINVAL);
    CHECK_EQ(mp_semaphore_acquire(s, 0), MP_EINVAL);
    CHECK_EQ(mp_semaphore_value(s), MP_EINVAL);
    CHECK_EQ(mp_event_wait(e, 0), MP_EINVAL);
    CHECK(!mp_event_is_set(e));
    CHECK_EQ(mp_condition_acquire(c, 0), MP_EINVAL);
    CHECK_EQ(mp_condition_notify(c, 1), MP_EINVAL);
    CHECK_EQ(mp_barrier_wait(b, 0, NULL), MP_EINVAL);
    CHECK_EQ(mp_barrier_parties(b), 0);
    mp_lock_destroy(l); /* twice: ignored */
    mp_barrier_destroy(b);
    errno = 0;
    CHECK(mp_condition_create(l) == NULL); /* on a destroyed lock */
    CHECK_EQ(errno, EINVAL);
    /* a lock is not an rlock */
    mp_lock *l2 = mp_lock_create();
    CHECK_EQ(mp_rlock_acquire((mp_rlock *)(void *)l2, 0), MP_EINVAL);
    mp_lock_destroy(l2);
}

/* --- lock ------------------------------------------------------------------------ */

static int try_lock_child(void *arg) {
    shared *s = (shared *)arg;
    s->results[0] = mp_lock_acquire(s->lock, 0);
    s->results[1] = mp_lock_release(s->lock); /* not ours */
    double t = t_now();
    s->results[2] = mp_lock_acquire(s->lock, 0.2);
    s->results[3] = (int)((t_now() - t) * 1000);
    return 0;
}

TEST(sync_lock_try_timeout_and_eperm) {
    shared *s = shared_new();
    s->lock = mp_lock_create();
    CHECK_EQ(mp_lock_release(s->lock), MP_EPERM); /* not held */
    CHECK_EQ(mp_lock_acquire(s->lock, 0), MP_OK);
    CHECK_EQ(mp_lock_acquire(s->lock, 0), MP_ETIMEDOUT); /* not re-entrant */
    join_ok(t_fork(try_lock_child, s));
    CHECK_EQ(s->results[0], MP_ETIMEDOUT);
    CHECK_EQ(s->results[1], MP_EPERM);
    CHECK_EQ(s->results[2], MP_ETIMEDOUT);
    CHECK(s->results[3] >= 195 && s->results[3] < 2000);
    CHECK_EQ(mp_lock_release(s->lock), MP_OK);
    CHECK_EQ(mp_lock_release(s->lock), MP_EPERM);
    CHECK_EQ(mp_lock_acquire(s->lock, MP_FOREVER), MP_OK);
    CHECK_EQ(mp_lock_release(s->lock), MP_OK);
    shared_free(s);
}

static void count_under_lock(shared *s, long n) {
    for (long i = 0; i < n; i++) {
        CHECK_EQ(mp_lock_acquire(s->lock, MP_FOREVER), MP_OK);
        long in = ++s->inside;
        if (in > s->max_inside) s->max_inside = in;
        s->counter++;
        s->inside--;
        CHECK_EQ(mp_lock_release(s->lock), MP_OK);
    }
}

static void *count_thread(void *arg) {
    shared *s = (shared *)arg;
    count_under_lock(s, s->iters);
    return NULL;
}

/* two threads of its own, each counting */
static int count_child(void *arg) {
    shared *s = (shared *)arg;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, count_thread, s), 0);
    count_under_lock(s, s->iters);
    CHECK_EQ(pthread_join(t, NULL), 0);
    return 0;
}

TEST(sync_lock_excludes_threads_and_processes) {
    shared *s = shared_new();
    s->lock = mp_lock_create();
    s->iters = t_scale(100000);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) kids[i] = t_fork(count_child, s);
    count_child(s);
    for (int i = 0; i < 3; i++) join_ok(kids[i]);
    CHECK_EQ(s->counter, 8 * s->iters);
    CHECK_EQ(s->max_inside, 1);
    shared_free(s);
}

static int hold_forever(void *arg) {
    shared *s = (shared *)arg;
    CHECK_EQ(mp_lock_acquire(s->lock, MP_FOREVER), MP_OK);
    s->counter = -1; /* mid-update when it dies */
    mp_semaphore_release(s->ready);
    for (;;) pause();
    return 0;
}

static int acquire_report(void *arg) {
    shared *s = (shared *)arg;
    mp_semaphore_release(s->ready);
    int rc = mp_lock_acquire(s->lock, 10);
    __atomic_fetch_add(&s->woken, 1, __ATOMIC_SEQ_CST);
    if (rc == MP_EOWNERDEAD) s->results[0]++;
    if (rc == MP_EOWNERDEAD) s->counter = 0; /* the repair */
    s->counter++;
    CHECK(rc == MP_OK || rc == MP_EOWNERDEAD);
    usleep(1000);
    CHECK_EQ(mp_lock_release(s->lock), MP_OK);
    return 0;
}

TEST(sync_lock_owner_sigkilled_waiters_proceed) {
    shared *s = shared_new();
    s->lock = mp_lock_create();
    pid_t owner = t_fork(hold_forever, s);
    CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
    pid_t w[3];
    for (int i = 0; i < 3; i++) w[i] = t_fork(acquire_report, s);
    for (int i = 0; i < 3; i++) CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
    usleep(50000); /* the waiters are asleep on the lock */
    CHECK_EQ(s->woken, 0);
    double t = t_now();
    kill_reap(owner);
    for (int i = 0; i < 3; i++) join_ok(w[i]);
    CHECK(t_now() - t < 3.0); /* typically 20-40 ms for the first */
    CHECK_EQ(s->results[0], 1); /* exactly one saw the death */
    CHECK_EQ(s->counter, 3);
    CHECK_EQ(mp_lock_acquire(s->lock, 0), MP_OK);
    CHECK_EQ(mp_lock_release(s->lock), MP_OK);
    shared_free(s);
}

static int try_once(void *arg) {
    shared *s = (shared *)arg;
    return mp_lock_acquire(s->lock, 0) == MP_EOWNERDEAD ? 0 : 1;
}

TEST(sync_lock_try_finds_dead_owner) {
    shared *s = shared_new();
    s->lock = mp_lock_create();
    pid_t owner = t_fork(hold_forever, s);
    CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
    /* a thread that keeps trying looks at the owner once per 20 ms */
    CHECK_EQ(mp_lock_acquire(s->lock, 0), MP_ETIMEDOUT);
    kill_reap(owner);
    usleep(25000);
    join_ok(t_fork(try_once, s)); /* a single try sees the death */
    /* (that child died holding it in turn) */
    double t = t_now();
    int rc;
    while ((rc = mp_lock_acquire(s->lock, 0)) == MP_ETIMEDOUT && t_now() - t < 2) {}
    CHECK_EQ(rc, MP_EOWNERDEAD);
    CHECK(t_now() - t < 0.5);
    CHECK_EQ(mp_lock_release(s->lock), MP_OK);
    CHECK_EQ(mp_lock_acquire(s->lock, 0), MP_OK);
    CHECK_EQ(mp_lock_release(s->lock), MP_OK);
    shared_free(s);
}

TEST(sync_lock_owner_dead_but_not_yet_reaped) {
    /* the waiter is the dead owner's parent, blocked, so nobody reaps the zombie */
    shared *s = shared_new();
    s->lock = mp_lock_create();
    pid_t owner = t_fork(hold_forever, s);
    CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
    kill(owner, SIGKILL);
    double t = t_now();
    CHECK_EQ(mp_lock_acquire(s->lock, 5), MP_EOWNERDEAD);
    CHECK(t_now() - t < 2);
    CHECK_EQ(mp_lock_release(s->lock), MP_OK);
    CHECK(WIFSIGNALED(t_wait(owner)));
    shared_free(s);
}

static void *hold_and_exit(void *arg) {
    mp_lock_acquire((mp_lock *)arg, MP_FOREVER);
    return NULL;
}

TEST(sync_lock_thread_exit_holding_it_is_owner_death) {
    mp_lock *l = mp_lock_create();
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, hold_and_exit, l), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(mp_lock_acquire(l, 5), MP_EOWNERDEAD);
    CHECK_EQ(mp_lock_release(l), MP_OK);
    mp_lock_destroy(l);
}

/* Workers add under the lock, keeping the total in two halves that must agree; one
   worker is killed again and again mid-section. Survivors repair and finish. */
typedef struct {
    mp_lock *lock;
    long a, b; /* invariant a == b outside the critical section */
    long done[2];
    int deaths_seen;
} stress;

static int g_stress_me; /* process-private: set by the parent just before each fork */

static int stress_worker(void *arg) {
    stress *st = (stress *)arg;
    int me = g_stress_me;
    for (long i = 0; i < 20000 || me == 2; i++) { /* the victim runs until killed */
        int rc = mp_lock_acquire(st->lock, 30);
        CHECK(rc == MP_OK || rc == MP_EOWNERDEAD);
        if (rc == MP_EOWNERDEAD) {
            st->deaths_seen++;
            st->b = st->a; /* repair */
        }
        CHECK_EQ(st->a, st->b);
        st->a++;
        for (volatile int k = 0; k < (me == 2 ? 20000 : 50); k++) {} /* the victim dawdles */
        st->b++;
        if (me < 2) st->done[me]++;
        CHECK_EQ(mp_lock_release(st->lock), MP_OK);
    }
    return 0;
}

TEST(sync_lock_fault_kill_loop_mid_critical_section) {
    stress *st = (stress *)mp_calloc(1, sizeof *st);
    st->lock = mp_lock_create();
    pid_t survivors[2];
    for (int i = 0; i < 2; i++) {
        g_stress_me = i;
        survivors[i] = t_fork(stress_worker, st);
    }
    int kills = 0;
    for (int round = 0; round < 10; round++) {
        g_stress_me = 2;
        pid_t victim = t_fork(stress_worker, st);
        usleep(20000 + (useconds_t)(rand() % 20000));
        kill_reap(victim);
        kills++;
    }
    for (int i = 0; i < 2; i++) join_ok(survivors[i]);
    CHECK_EQ(st->done[0], 20000);
    CHECK_EQ(st->done[1], 20000);
    CHECK(st->deaths_seen <= kills);
    CHECK(st->deaths_seen >= 1); /* the victim spends most of its time inside */
    /* the lock is usable, and free unless the last victim died holding it */
    int rc = mp_lock_acquire(st->lock, 1);
    CHECK(rc == MP_OK || rc == MP_EOWNERDEAD);
    CHECK_EQ(mp_lock_release(st->lock), MP_OK);
    mp_lock_destroy(st->lock);
    mp_free(st);
}

/* --- rlock ----------------------------------------------------------------------- */

static int rlock_other(void *arg) {
    shared *s = (shared *)arg;
    s->results[0] = mp_rlock_acquire(s->rlock, 0);
    s->results[1] = mp_rlock_release(s->rlock);
    return 0;
}

static void *rlock_thread(void *arg) {
    shared *s = (shared *)arg;
    s->results[2] = mp_rlock_acquire(s->rlock, 0);
    s->results[3] = mp_rlock_release(s->rlock);
    return NULL;
}

static int rlock_hold_deep(void *arg) {
    shared *s = (shared *)arg;
    for (int i = 0; i < 3; i++) CHECK_EQ(mp_rlock_acquire(s->rlock, MP_FOREVER), MP_OK);
    mp_semaphore_release(s->ready);
    for (;;) pause();
    return 0;
}

TEST(sync_rlock_reentrant_per_thread_and_process) {
    shared *s = shared_new();
    s->rlock = mp_rlock_create();
    CHECK_EQ(mp_rlock_release(s->rlock), MP_EPERM);
    for (int i = 0; i < 3; i++) CHECK_EQ(mp_rlock_acquire(s->rlock, 0), MP_OK);
    join_ok(t_fork(rlock_other, s));
    CHECK_EQ(s->results[0], MP_ETIMEDOUT);
    CHECK_EQ(s->results[1], MP_EPERM);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, rlock_thread, s), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(s->results[2], MP_ETIMEDOUT); /* another thread of the owner: not the owner */
    CHECK_EQ(s->results[3], MP_EPERM);
    CHECK_EQ(mp_rlock_release(s->rlock), MP_OK);
    CHECK_EQ(mp_rlock_release(s->rlock), MP_OK);
    join_ok(t_fork(rlock_other, s)); /* still held once */
    CHECK_EQ(s->results[0], MP_ETIMEDOUT);
    CHECK_EQ(mp_rlock_release(s->rlock), MP_OK);
    CHECK_EQ(mp_rlock_release(s->rlock), MP_EPERM);
    join_ok(t_fork(rlock_other, s)); /* free now */
    CHECK_EQ(s->results[0], MP_OK);
    CHECK_EQ(s->results[1], MP_OK);

    /* a dead owner three levels deep: taken over with depth 1 */
    pid_t owner = t_fork(rlock_hold_deep, s);
    CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
    kill_reap(owner);
    CHECK_EQ(mp_rlock_acquire(s->rlock, 5), MP_EOWNERDEAD);
    CHECK_EQ(mp_rlock_acquire(s->rlock, 0), MP_OK);
    CHECK_EQ(mp_rlock_release(s->rlock), MP_OK);
    CHECK_EQ(mp_rlock_release(s->rlock), MP_OK);
    CHECK_EQ(mp_rlock_release(s->rlock), MP_EPERM);
    shared_free(s);
}

/* --- semaphore ------------------------------------------------------------------- */

TEST(sync_semaphore_counts_bounds_and_timeouts) {
    mp_semaphore *s = mp_semaphore_create(2, 0);
    CHECK_EQ(mp_semaphore_value(s), 2);
    CHECK_EQ(mp_semaphore_acquire(s, 0), MP_OK);
    CHECK_EQ(mp_semaphore_acquire(s, MP_FOREVER), MP_OK);
    CHECK_EQ(mp_semaphore_value(s), 0);
    CHECK_EQ(mp_semaphore_acquire(s, 0), MP_ETIMEDOUT);
    double t = t_now();
    CHECK_EQ(mp_semaphore_acquire(s, 0.15), MP_ETIMEDOUT);
    CHECK(t_now() - t >= 0.149 && t_now() - t < 2);
    for (int i = 0; i < 5; i++) CHECK_EQ(mp_semaphore_release(s), MP_OK); /* unbounded */
    CHECK_EQ(mp_semaphore_value(s), 5);
    mp_semaphore_destroy(s);

    mp_semaphore *b = mp_semaphore_create(2, 2); /* BoundedSemaphore(2) */
    CHECK_EQ(mp_semaphore_release(b), MP_EOVERFLOW);
    CHECK_EQ(mp_semaphore_value(b), 2);
    CHECK_EQ(mp_semaphore_acquire(b, 0), MP_OK);
    CHECK_EQ(mp_semaphore_release(b), MP_OK);
    CHECK_EQ(mp_semaphore_release(b), MP_EOVERFLOW);
    CHECK_EQ(mp_semaphore_value(b), 2);
    mp_semaphore_destroy(b);
    mp_semaphore *z = mp_semaphore_create(0, 1);
    CHECK_EQ(mp_semaphore_release(z), MP_OK);
    CHECK_EQ(mp_semaphore_release(z), MP_EOVERFLOW);
    mp_semaphore_destroy(z);
}

static int sem_user(void *arg) {
    shared *s = (shared *)arg;
    for (long i = 0; i < s->iters; i++) {
        CHECK_EQ(mp_semaphore_acquire(s->sem, MP_FOREVER), MP_OK);
        long in = __atomic_add_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);
        long m = __atomic_load_n(&s->max_inside, __ATOMIC_SEQ_CST);
        while (in > m && !__atomic_compare_exchange_n(&s->max_inside, &m, in, false,
                                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
        if (i % 64 == 0) usleep(100);
        __atomic_fetch_sub(&s->inside, 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&s->counter, 1, __ATOMIC_SEQ_CST);
        CHECK_EQ(mp_semaphore_release(s->sem), MP_OK);
    }
    return 0;
}

TEST(sync_semaphore_limits_concurrency_across_processes) {
    shared *s = shared_new();
    s->sem = mp_semaphore_create(2, 2);
    s->iters = t_scale(20000);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) kids[i] = t_fork(sem_user, s);
    for (int i = 0; i < 4; i++) join_ok(kids[i]);
    CHECK_EQ(s->counter, 4 * s->iters);
    CHECK(s->max_inside >= 1 && s->max_inside <= 2);
    CHECK_EQ(mp_semaphore_value(s->sem), 2);
    shared_free(s);
}

static int sem_sleeper(void *arg) {
    shared *s = (shared *)arg;
    mp_semaphore_release(s->ready);
    CHECK_EQ(mp_semaphore_acquire(s->sem, 10), MP_OK);
    __atomic_fetch_add(&s->woken, 1, __ATOMIC_SEQ_CST);
    return 0;
}

TEST(sync_semaphore_release_wakes_one_sleeper_each) {
    shared *s = shared_new();
    s->sem = mp_semaphore_create(0, 0);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) kids[i] = t_fork(sem_sleeper, s);
    for (int i = 0; i < 3; i++) CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
    usleep(50000);
    CHECK_EQ(s->woken, 0);
    CHECK_EQ(mp_semaphore_release(s->sem), MP_OK);
    double t = t_now();
    while (__atomic_load_n(&s->woken, __ATOMIC_SEQ_CST) < 1 && t_now() - t < 5) usleep(1000);
    usleep(50000);
    CHECK_EQ(s->woken, 1);
    CHECK_EQ(mp_semaphore_release(s->sem), MP_OK);
    CHECK_EQ(mp_semaphore_release(s->sem), MP_OK);
    for (int i = 0; i < 3; i++) join_ok(kids[i]);
    CHECK_EQ(s->woken, 3);
    CHECK_EQ(mp_semaphore_value(s->sem), 0);
    shared_free(s);
}

/* --- event ----------------------------------------------------------------------- */

static int event_waiter(void *arg) {
    shared *s = (shared *)arg;
    mp_semaphore_release(s->ready);
    int rc = mp_event_wait(s->ev, 10);
    __atomic_fetch_add(&s->woken, rc == MP_OK ? 1 : 100, __ATOMIC_SEQ_CST);
    return rc == MP_OK ? 0 : 1;
}

TEST(sync_event_set_wakes_all_even_if_cleared_at_once) {
    shared *s = shared_new();
    s->ev = mp_event_create();
    CHECK(!mp_event_is_set(s->ev));
    CHECK_EQ(mp_event_wait(s->ev, 0), MP_ETIMEDOUT);
    double t = t_now();
    CHECK_EQ(mp_event_wait(s->ev, 0.1), MP_ETIMEDOUT);
    CHECK(t_now() - t >= 0.099);
    mp_event_set(s->ev);
    mp_event_set(s->ev);
    CHECK(mp_event_is_set(s->ev));
    CHECK_EQ(mp_event_wait(s->ev, 0), MP_OK);
    CHECK_EQ(mp_event_wait(s->ev, MP_FOREVER), MP_OK);
    mp_event_clear(s->ev);
    CHECK(!mp_event_is_set(s->ev));
    for (int round = 0; round < 5; round++) {
        s->woken = 0;
        pid_t kids[4];
        for (int i = 0; i < 4; i++) kids[i] = t_fork(event_waiter, s);
        for (int i = 0; i < 4; i++) CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
        usleep(round == 0 ? 50000 : 5000); /* most (round 0: all) are asleep */
        mp_event_set(s->ev);
        mp_event_clear(s->ev);
        for (int i = 0; i < 4; i++) join_ok(kids[i]);
        CHECK_EQ(s->woken, 4);
        CHECK(!mp_event_is_set(s->ev));
    }
    shared_free(s);
}

/* --- condition ------------------------------------------------------------------- */

/* Wait once; signal "waiting" with the lock held so that the parent, once it has the
   lock, knows this waiter is registered. */
static int cond_waiter(void *arg) {
    shared *s = (shared *)arg;
    CHECK_EQ(mp_condition_acquire(s->cond, MP_FOREVER), MP_OK);
    mp_semaphore_release(s->ready);
    int rc = mp_condition_wait(s->cond, 10);
    CHECK_EQ(rc, MP_OK);
    s->woken++;
    CHECK_EQ(mp_condition_release(s->cond), MP_OK);
    return 0;
}

static int woken_now(shared *s) {
    mp_condition_acquire(s->cond, MP_FOREVER);
    int n = s->woken;
    mp_condition_release(s->cond);
    return n;
}

static void wait_woken(shared *s, int n) {
    double t = t_now();
    while (woken_now(s) < n && t_now() - t < 5) usleep(2000);
    usleep(50000); /* and no more than n */
    CHECK_EQ(woken_now(s), n);
}

/* Start a waiter and return once it is registered (the lock passed through wait). */
static pid_t start_waiter(shared *s, int (*fn)(void *)) {
    pid_t p = t_fork(fn, s);
    CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
    CHECK_EQ(mp_condition_acquire(s->cond, 10), MP_OK);
    CHECK_EQ(mp_condition_release(s->cond), MP_OK);
    return p;
}

TEST(sync_condition_notify_n_wakes_at_most_n) {
    shared *s = shared_new();
    s->cond = mp_condition_create(NULL);
    pid_t kids[6];
    /* notify with nobody waiting is lost */
    CHECK_EQ(mp_condition_acquire(s->cond, 0), MP_OK);
    CHECK_EQ(mp_condition_notify(s->cond, 3), MP_OK);
    CHECK_EQ(mp_condition_notify_all(s->cond), MP_OK);
    CHECK_EQ(mp_condition_wait(s->cond, 0.05), MP_ETIMEDOUT);
    CHECK_EQ(mp_condition_release(s->cond), MP_OK);
    for (int i = 0; i < 6; i++) kids[i] = start_waiter(s, cond_waiter);
    usleep(20000);
    CHECK_EQ(woken_now(s), 0);
    mp_condition_acquire(s->cond, MP_FOREVER);
    CHECK_EQ(mp_condition_notify(s->cond, 2), MP_OK);
    mp_condition_release(s->cond);
    wait_woken(s, 2);
    mp_condition_acquire(s->cond, MP_FOREVER);
    CHECK_EQ(mp_condition_notify(s->cond, 1), MP_OK);
    mp_condition_release(s->cond);
    wait_woken(s, 3);
    mp_condition_acquire(s->cond, MP_FOREVER);
    CHECK_EQ(mp_condition_notify(s->cond, 4), MP_OK); /* only 3 left */
    mp_condition_release(s->cond);
    wait_woken(s, 6);
    for (int i = 0; i < 6; i++) join_ok(kids[i]);
    /* the extra notify left nothing behind */
    mp_condition_acquire(s->cond, MP_FOREVER);
    CHECK_EQ(mp_condition_wait(s->cond, 0.1), MP_ETIMEDOUT);
    mp_condition_release(s->cond);
    shared_free(s);
}

static int cond_timeout_waiter(void *arg) {
    shared *s = (shared *)arg;
    CHECK_EQ(mp_condition_acquire(s->cond, MP_FOREVER), MP_OK);
    mp_semaphore_release(s->ready);
    double t = t_now();
    CHECK_EQ(mp_condition_wait(s->cond, 0.1), MP_ETIMEDOUT);
    CHECK(t_now() - t >= 0.099);
    CHECK_EQ(mp_lock_release(s->lock), MP_OK); /* the lock was re-acquired */
    return 0;
}

TEST(sync_condition_timed_out_waiters_leave_no_stale_wakeups) {
    shared *s = shared_new();
    s->lock = mp_lock_create();
    s->cond = mp_condition_create(s->lock);
    pid_t shorts[3];
    pid_t longw = start_waiter(s, cond_waiter); /* oldest */
    for (int i = 0; i < 3; i++) shorts[i] = start_waiter(s, cond_timeout_waiter);
    for (int i = 0; i < 3; i++) join_ok(shorts[i]);
    /* the timed-out ones are gone: one notify must reach the long waiter */
    mp_lock_acquire(s->lock, MP_FOREVER);
    CHECK_EQ(mp_condition_notify(s->cond, 1), MP_OK);
    mp_lock_release(s->lock);
    join_ok(longw);
    CHECK_EQ(s->woken, 1);

    /* newer timed-out waiters than the live one do not eat the notify either */
    longw = start_waiter(s, cond_waiter);
    for (int i = 0; i < 3; i++) shorts[i] = start_waiter(s, cond_timeout_waiter);
    for (int i = 0; i < 3; i++) join_ok(shorts[i]);
    mp_lock_acquire(s->lock, MP_FOREVER);
    CHECK_EQ(mp_condition_notify(s->cond, 1), MP_OK);
    mp_lock_release(s->lock);
    join_ok(longw);
    CHECK_EQ(s->woken, 2);
    /* and nothing is pending for a new waiter */
    mp_lock_acquire(s->lock, MP_FOREVER);
    CHECK_EQ(mp_condition_wait(s->cond, 0.1), MP_ETIMEDOUT);
    CHECK_EQ(mp_condition_wait(s->cond, 0), MP_ETIMEDOUT);
    mp_lock_release(s->lock);
    shared_free(s);
}

TEST(sync_condition_needs_the_lock) {
    mp_lock *l = mp_lock_create();
    mp_condition *c = mp_condition_create(l);
    CHECK_EQ(mp_condition_wait(c, 0), MP_EPERM);
    CHECK_EQ(mp_condition_notify(c, 1), MP_EPERM);
    CHECK_EQ(mp_condition_notify_all(c), MP_EPERM);
    CHECK_EQ(mp_condition_release(c), MP_EPERM);
    CHECK_EQ(mp_condition_acquire(c, 0), MP_OK);
    CHECK_EQ(mp_lock_acquire(l, 0), MP_ETIMEDOUT); /* it is the same lock */
    CHECK_EQ(mp_condition_wait_for(c, NULL, NULL, 0), MP_EINVAL);
    CHECK_EQ(mp_condition_notify(c, 0), MP_OK);
    CHECK_EQ(mp_lock_release(l), MP_OK);
    mp_condition_destroy(c);
    CHECK_EQ(mp_lock_acquire(l, 0), MP_OK); /* a given lock outlives its condition */
    CHECK_EQ(mp_lock_release(l), MP_OK);
    mp_lock_destroy(l);
}

static bool flag_reached(void *arg) {
    shared *s = (shared *)arg;
    return s->flag >= 5;
}

static int cond_wait_for_child(void *arg) {
    shared *s = (shared *)arg;
    CHECK_EQ(mp_condition_acquire(s->cond, MP_FOREVER), MP_OK);
    CHECK_EQ(mp_condition_wait_for(s->cond, flag_reached, s, 10), MP_OK);
    CHECK(s->flag >= 5);
    s->woken++;
    CHECK_EQ(mp_condition_release(s->cond), MP_OK);
    return 0;
}

TEST(sync_condition_wait_for_predicate_across_processes) {
    shared *s = shared_new();
    s->cond = mp_condition_create(NULL);
    mp_condition_acquire(s->cond, MP_FOREVER);
    double t = t_now();
    CHECK_EQ(mp_condition_wait_for(s->cond, flag_reached, s, 0.1), MP_ETIMEDOUT);
    CHECK(t_now() - t >= 0.099);
    CHECK_EQ(mp_condition_wait_for(s->cond, flag_reached, s, 0), MP_ETIMEDOUT);
    mp_condition_release(s->cond);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) kids[i] = t_fork(cond_wait_for_child, s);
    for (int i = 0; i < 5; i++) {
        usleep(10000);
        mp_condition_acquire(s->cond, MP_FOREVER);
        s->flag++;
        mp_condition_notify_all(s->cond);
        mp_condition_release(s->cond);
    }
    for (int i = 0; i < 3; i++) join_ok(kids[i]);
    CHECK_EQ(s->woken, 3);
    mp_condition_acquire(s->cond, MP_FOREVER);
    CHECK_EQ(mp_condition_wait_for(s->cond, flag_reached, s, 0), MP_OK);
    mp_condition_release(s->cond);
    shared_free(s);
}

static int cond_waiter_forever(void *arg) {
    shared *s = (shared *)arg;
    mp_condition_acquire(s->cond, MP_FOREVER);
    mp_semaphore_release(s->ready);
    mp_condition_wait(s->cond, MP_FOREVER);
    for (;;) pause();
    return 0;
}

TEST(sync_condition_dead_waiter_absorbs_no_notify) {
    shared *s = shared_new();
    s->cond = mp_condition_create(NULL);
    pid_t dead[2], live[2];
    dead[0] = start_waiter(s, cond_waiter_forever); /* the two oldest will die */
    dead[1] = start_waiter(s, cond_waiter_forever);
    live[0] = start_waiter(s, cond_waiter);
    live[1] = start_waiter(s, cond_waiter);
    kill_reap(dead[0]);
    kill_reap(dead[1]);
    mp_condition_acquire(s->cond, MP_FOREVER);
    CHECK_EQ(mp_condition_notify(s->cond, 1), MP_OK); /* skips both dead ones */
    mp_condition_release(s->cond);
    wait_woken(s, 1);
    mp_condition_acquire(s->cond, MP_FOREVER);
    CHECK_EQ(mp_condition_notify(s->cond, 1), MP_OK);
    mp_condition_release(s->cond);
    wait_woken(s, 2);
    for (int i = 0; i < 2; i++) join_ok(live[i]);
    shared_free(s);
}

static int cond_notifier_dies(void *arg) {
    shared *s = (shared *)arg;
    mp_condition_acquire(s->cond, MP_FOREVER);
    mp_semaphore_release(s->ready);
    for (;;) pause(); /* killed holding the condition's lock */
    return 0;
}

static int cond_waiter_sees_owner_death(void *arg) {
    shared *s = (shared *)arg;
    CHECK_EQ(mp_condition_acquire(s->cond, MP_FOREVER), MP_OK);
    mp_semaphore_release(s->ready);
    int rc = mp_condition_wait(s->cond, 0.05); /* times out, then finds the lock held */
    CHECK_EQ(rc, MP_EOWNERDEAD);
    CHECK_EQ(mp_condition_release(s->cond), MP_OK);
    return 0;
}

TEST(sync_condition_lock_owner_death_reported_by_wait) {
    shared *s = shared_new();
    s->cond = mp_condition_create(NULL);
    pid_t w = start_waiter(s, cond_waiter_sees_owner_death);
    pid_t n = t_fork(cond_notifier_dies, s);
    CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
    usleep(100000); /* the waiter timed out and sleeps on the lock */
    kill_reap(n);
    join_ok(w);
    shared_free(s);
}

static void *cond_thread_waiter(void *arg) {
    shared *s = (shared *)arg;
    mp_condition_acquire(s->cond, MP_FOREVER);
    mp_semaphore_release(s->ready);
    while (s->flag == 0) CHECK_EQ(mp_condition_wait(s->cond, 10), MP_OK);
    s->woken++;
    mp_condition_release(s->cond);
    return NULL;
}

TEST(sync_condition_many_waiters_threads_and_slots) {
    /* more waiters than one slot chunk holds, from threads of one process */
    shared *s = shared_new();
    s->cond = mp_condition_create(NULL);
    enum { N = 40 };
    pthread_t t[N];
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_create(&t[i], NULL, cond_thread_waiter, s), 0);
    for (int i = 0; i < N; i++) CHECK_EQ(mp_semaphore_acquire(s->ready, 10), MP_OK);
    mp_condition_acquire(s->cond, MP_FOREVER);
    s->flag = 1;
    CHECK_EQ(mp_condition_notify_all(s->cond), MP_OK);
    mp_condition_release(s->cond);
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(s->woken, N);
    shared_free(s);
}

/* --- barrier --------------------------------------------------------------------- */

enum { LS_PARTIES = 5, LS_ROUNDS = 1000 };

typedef struct {
    mp_barrier *bar;
    long round[LS_PARTIES];
    int index_sum[LS_ROUNDS];
    int actions;
    int action_seen_all; /* the action saw every party at its round */
    long rounds;
} lockstep;

static void lockstep_action(void *arg) {
    lockstep *ls = (lockstep *)arg;
    long r = ls->round[0];
    for (int j = 1; j < LS_PARTIES; j++)
        if (ls->round[j] != r) return;
    ls->actions++;
    ls->action_seen_all++;
}

static int lockstep_run(lockstep *ls, int me) {
    for (long r = 1; r <= ls->rounds; r++) {
        __atomic_store_n(&ls->round[me], r, __ATOMIC_SEQ_CST);
        unsigned idx = 99;
        CHECK_EQ(mp_barrier_wait(ls->bar, 20, &idx), MP_OK);
        CHECK(idx < LS_PARTIES);
        __atomic_fetch_add(&ls->index_sum[r - 1], (int)idx + 1, __ATOMIC_SEQ_CST);
        for (int j = 0; j < LS_PARTIES; j++) {
            long o = __atomic_load_n(&ls->round[j], __ATOMIC_SEQ_CST);
            CHECK(o == r || o == r + 1); /* nobody behind, nobody two ahead */
        }
        CHECK_EQ(ls->actions, r); /* the action of round r ran before anyone left */
    }
    return 0;
}

static lockstep *g_ls;
static int lockstep_child(void *arg) { return lockstep_run(g_ls, (int)(intptr_t)arg); }

TEST(sync_barrier_5_processes_lockstep_1000_rounds) {
    lockstep *ls = (lockstep *)mp_calloc(1, sizeof *ls);
    ls->rounds = t_scale(LS_ROUNDS);
    ls->bar = mp_barrier_create(LS_PARTIES, lockstep_action, ls);
    CHECK_EQ(mp_barrier_parties(ls->bar), LS_PARTIES);
    g_ls = ls;
    pid_t kids[LS_PARTIES - 1];
    for (int i = 1; i < LS_PARTIES; i++)
        kids[i - 1] = t_fork(lockstep_child, (void *)(intptr_t)i);
    lockstep_run(ls, 0);
    for (int i = 0; i < LS_PARTIES - 1; i++) join_ok(kids[i]);
    CHECK_EQ(ls->actions, ls->rounds);
    CHECK_EQ(ls->action_seen_all, ls->rounds);
    for (long r = 0; r < ls->rounds; r++) CHECK_EQ(ls->index_sum[r], 15); /* 1+2+3+4+5 */
    CHECK(!mp_barrier_broken(ls->bar));
    CHECK_EQ(mp_barrier_n_waiting(ls->bar), 0);
    mp_barrier_destroy(ls->bar);
    mp_free(ls);
}

static int barrier_expect(void *arg) {
    shared *s = (shared *)arg;
    mp_semaphore_release(s->ready);
    int rc = mp_barrier_wait(s->bar, 10, NULL);
    return rc == MP_EBROKEN ? 0 : 10 - rc;
}

static void wait_n_waiting(mp_barrier *b, unsigned n) {
    double t = t_now();
    while (mp_barrier_n_waiting(b) < n && t_now() - t < 5) usleep(1000);
    CHECK_EQ(mp_barrier_n_waiting(b), n);
}

TEST(sync_barrier_abort_reset_timeout_break_everyone) {
    shared *s = shared_new();
    s->bar = mp_barrier_create(3, NULL, NULL);
    pid_t k[2];
    /* abort */
    for (int i = 0; i < 2; i++) k[i] = t_fork(barrier_expect, s);
    wait_n_waiting(s->bar, 2);
    mp_barrier_abort(s->bar);
    for (int i = 0; i < 2; i++) join_ok(k[i]);
    CHECK(mp_barrier_broken(s->bar));
    CHECK_EQ(mp_barrier_n_waiting(s->bar), 0);
    CHECK_EQ(mp_barrier_wait(s->bar, 1, NULL), MP_EBROKEN); /* stays broken */
    mp_barrier_reset(s->bar);
    CHECK(!mp_barrier_broken(s->bar));
    /* reset while two wait */
    for (int i = 0; i < 2; i++) k[i] = t_fork(barrier_expect, s);
    wait_n_waiting(s->bar, 2);
    mp_barrier_reset(s->bar);
    for (int i = 0; i < 2; i++) join_ok(k[i]);
    CHECK(!mp_barrier_broken(s->bar)); /* reset leaves it usable */
    /* a timeout breaks it for everyone, the one that timed out included */
    k[0] = t_fork(barrier_expect, s);
    wait_n_waiting(s->bar, 1);
    double t = t_now();
    CHECK_EQ(mp_barrier_wait(s->bar, 0.1, NULL), MP_EBROKEN);
    CHECK(t_now() - t >= 0.099 && t_now() - t < 5);
    join_ok(k[0]);
    CHECK(mp_barrier_broken(s->bar));
    mp_barrier_reset(s->bar);
    CHECK_EQ(mp_barrier_wait(s->bar, 0, NULL), MP_EBROKEN); /* 0 tries once: breaks */
    mp_barrier_reset(s->bar);
    mp_barrier_reset(s->bar); /* empty: nothing to do */
    shared_free(s);
}

static void count_action(void *arg) {
    shared *s = (shared *)arg;
    s->counter++;
    s->results[0] = (int)getpid();
}

static int barrier_party(void *arg) {
    shared *s = (shared *)arg;
    unsigned idx;
    int rc = mp_barrier_wait(s->bar, 10, &idx);
    CHECK_EQ(rc, MP_OK);
    __atomic_fetch_add(&s->woken, 1 << (idx * 4), __ATOMIC_SEQ_CST);
    if (idx == 2 && s->flag) CHECK_EQ(s->results[0], (int)getpid()); /* the last ran it */
    return 0;
}

TEST(sync_barrier_index_and_action_by_the_last) {
    shared *s = shared_new();
    s->bar = mp_barrier_create(3, count_action, s);
    s->flag = 1;
    for (int round = 0; round < 20; round++) {
        s->woken = 0;
        pid_t k[3];
        for (int i = 0; i < 3; i++) k[i] = t_fork(barrier_party, s);
        for (int i = 0; i < 3; i++) join_ok(k[i]);
        CHECK_EQ(s->woken, 0x111); /* indexes 0, 1, 2 once each */
        CHECK_EQ(s->counter, round + 1);
    }
    mp_barrier *one = mp_barrier_create(1, count_action, s);
    unsigned idx = 7;
    CHECK_EQ(mp_barrier_wait(one, 0, &idx), MP_OK);
    CHECK_EQ(idx, 0);
    CHECK_EQ(s->counter, 21);
    mp_barrier_destroy(one);
    shared_free(s);
}

static int barrier_waits_forever(void *arg) {
    shared *s = (shared *)arg;
    mp_barrier_wait(s->bar, MP_FOREVER, NULL);
    for (;;) pause();
    return 0;
}

TEST(sync_barrier_dead_waiter_breaks_it_for_the_others) {
    shared *s = shared_new();
    s->bar = mp_barrier_create(3, NULL, NULL);
    pid_t victim = t_fork(barrier_waits_forever, s);
    wait_n_waiting(s->bar, 1);
    pid_t other = t_fork(barrier_expect, s);
    wait_n_waiting(s->bar, 2);
    double t = t_now();
    kill_reap(victim);
    join_ok(other); /* got MP_EBROKEN */
    CHECK(t_now() - t < 3.0); /* about one poll interval */
    CHECK(mp_barrier_broken(s->bar));
    mp_barrier_reset(s->bar);
    pid_t k[3];
    for (int i = 0; i < 3; i++) k[i] = t_fork(barrier_party, s);
    for (int i = 0; i < 3; i++) join_ok(k[i]);
    shared_free(s);
}

static void action_dies(void *arg) {
    (void)arg;
    raise(SIGKILL);
}

static int barrier_party_dies_in_action(void *arg) {
    shared *s = (shared *)arg;
    mp_barrier_wait(s->bar, 10, NULL);
    return 0;
}

TEST(sync_barrier_action_runner_killed_breaks_it) {
    shared *s = shared_new();
    s->bar = mp_barrier_create(3, action_dies, NULL);
    pid_t k[2];
    for (int i = 0; i < 2; i++) k[i] = t_fork(barrier_expect, s);
    wait_n_waiting(s->bar, 2);
    pid_t last = t_fork(barrier_party_dies_in_action, s);
    int st = t_wait(last);
    CHECK(WIFSIGNALED(st));
    for (int i = 0; i < 2; i++) join_ok(k[i]); /* EBROKEN, not a hang */
    CHECK(mp_barrier_broken(s->bar));
    CHECK_EQ(mp_barrier_wait(s->bar, 0, NULL), MP_EBROKEN);
    shared_free(s);
}

/* The arrival that completes a round must not count a party that died waiting: with
   parties = 2, one waits and is killed (reaped, or still a zombie), and the other's
   arrival gets MP_EBROKEN, not MP_OK with index 1. */
TEST(sync_barrier_last_arrival_does_not_release_a_dead_party) {
    for (int reap = 0; reap < 2; reap++) {
        shared *s = shared_new();
        s->bar = mp_barrier_create(2, NULL, NULL);
        pid_t victim = t_fork(barrier_waits_forever, s);
        wait_n_waiting(s->bar, 1);
        kill(victim, SIGKILL);
        if (reap) {
            t_wait(victim);
        } else { /* until it is a zombie, unreaped */
            siginfo_t si;
            CHECK_EQ(waitid(P_PID, (id_t)victim, &si, WEXITED | WNOWAIT), 0);
        }
        unsigned idx = 99;
        CHECK_EQ(mp_barrier_wait(s->bar, 5, &idx), MP_EBROKEN);
        CHECK(mp_barrier_broken(s->bar));
        if (!reap) t_wait(victim);
        mp_barrier_reset(s->bar);
        pid_t k = t_fork(barrier_party, s); /* and it works again after a reset */
        CHECK_EQ(mp_barrier_wait(s->bar, 10, NULL), MP_OK);
        join_ok(k);
        shared_free(s);
    }
}

TEST(sync_barrier_parties_limit_is_einval) {
    errno = 0;
    CHECK(mp_barrier_create((1u << 24) + 1, NULL, NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    mp_barrier *b = mp_barrier_create(1u << 10, NULL, NULL);
    CHECK(b != NULL);
    CHECK_EQ(mp_barrier_parties(b), 1u << 10);
    mp_barrier_destroy(b);
}
