/* The torture test: for TORTURE_SECONDS (default 300) producers and consumers on two
   queues (a bounded one, and an unbounded one whose getters this process holds off now
   and then so that its ring fills and messages wait in its overflow), lock holders,
   condition and barrier waiters, pipe peers and a pool client run while this process
   SIGKILLs random participants (and pool workers) at random instants and starts
   replacements. Every message is numbered and checksummed. At the end it
   prints one `name: value` figure per line and exits 1 if a must-be-zero figure is not
   zero or more messages were lost than the kills allow.

   Usage: TORTURE_SECONDS=N [TORTURE_KILL_MS=M] build/torture
   (M: mean time between kills, default 30 ms).

   What counts:
   - lost: a queue message put (or possibly put) and never got, a pipe message without
     its echo, a pool task failed with MP_EWORKERDIED. Allowed: one per killed process
     that was moving one (a producer inside put, a consumer inside get - which may be
     moving an overflowed message into the ring - or not done recording what it got, a
     pipe pair with a message in flight, a pool worker).
   - duplicated: a queue message got twice; a pipe message seen twice by the server.
   - corrupted: wrong bytes or checksum; the lock's guarded pair seen inconsistent after
     MP_OK (a missed MP_EOWNERDEAD); a condition wait woken without a notify; a barrier
     passed before its action ran; a pool result with wrong bytes; any return code the
     contract does not allow for that call.
   - hangs: a call still inside after its timeout plus 10 s; a pipe peer that has not
     left 10 s after its peer died; a SIGKILLed process not reapable within 10 s; a
     survivor that does not exit within 20 s of being told to stop.
   - slowest kill-to-reap (information): a SIGKILLed process can wait in the kernel
     (exit_mmap, for the shared heap mapping's i_mmap lock) for seconds when many
     processes fork and exit at once.
   - stalls: a kind of participant that made no progress for a whole stall window
     while the run went on (a wedge that timeouts alone would hide).
   - leftover children: processes still alive at the end (this is a subreaper, so
     orphaned grandchildren count).
   - heap blocks leaked beyond allowed: blocks not freed at the end, beyond one per
     killed process that allocates (queue peers, pool workers), two for a producer
     killed inside a put on the unbounded queue (a large message's block and its
     overflow node).
   - overflowed puts (must not be zero, or the overflow went untested): puts that found
     the unbounded queue holding more than its ring. */
#define _GNU_SOURCE
#define MP_IMPLEMENTATION
#include "../../mp.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>


#define NPROD 2
#define NCONS 2
#define NLOCK 2
#define NCWAIT 2
#define NBAR 3
#define NPAIR 2
#define MAXSEQ ((uint64_t)1 << 23) /* per producer; bitmap of 1 MiB each */
#define MAXMSG 65536
#define HDR 24
#define HANG_SLACK_NS 10000000000LL
#define UQ_RING 4096 /* the unbounded queue's default ring */
#define UQ_HOLD_NS 300000000LL /* long enough for the producers to fill that ring */
#define UQ_FREE_NS 700000000LL
#define STOP_GRACE_S 20.0

enum { R_PROD, R_CONS, R_LOCK, R_NOTIFY, R_CWAIT, R_BARRIER, R_PCLIENT, R_PSERVER, R_POOL,
       R_N };
static const char *role_name[R_N] = {"producer", "consumer", "lock holder", "notifier",
                                     "condition waiter", "barrier waiter", "pipe client",
                                     "pipe server", "pool client"};
static const int role_count[R_N] = {NPROD, NCONS, NLOCK, 1, NCWAIT, NBAR, NPAIR, NPAIR, 1};

typedef struct slot {
    int role, index;
    mp_process *proc;     /* orchestrator's */
    uint32_t incarnation;
    int64_t call_start;   /* ns, 0 outside a blocking call */
    int64_t call_limit;
    uint32_t moving;      /* consumer: between get and recording */
    uint32_t hang_seen;
    bool killed;          /* orchestrator: SIGKILLed, waiting to be replaced */
    int64_t peer_gone_at; /* orchestrator: pipe pair, when the peer died */
    void *conn_mine, *conn_other; /* pipe peers: private pointers, valid after fork */
} slot;

typedef struct shared {
    uint32_t stop;
    uint64_t ops[R_N];
    uint64_t corrupted, duplicated, timeouts, owner_dead, broken, unexpected;
    uint64_t pipe_errors, pool_died, pool_tasks;
    /* lock holders: a == b except inside the critical section */
    mp_lock *lock;
    uint64_t la, lb;
    /* condition: a counter the notifier bumps */
    mp_condition *cond;
    uint64_t ccount;
    /* barrier */
    mp_barrier *bar;
    uint64_t bactions;
    mp_queue *q, *uq;  /* bounded; unbounded (Python's Queue()) */
    uint32_t uq_held;  /* the orchestrator holds uq's getters off, so its ring fills */
    uint64_t overflowed;
    struct {
        uint64_t next, moving, moving_seq, moving_uq;
        uint64_t *bits; /* seen */
    } prod[NPROD];
    struct {
        uint32_t moving;
        uint64_t next;
    } pair[NPAIR];
    slot slots[64];
    int nslots;
} shared;

static shared *S;

/* --- small helpers -------------------------------------------------------------- */

static int64_t now_ns(void) { return mp__now_ns(); }
static void bump(uint64_t *c) { __atomic_fetch_add(c, 1, __ATOMIC_RELAXED); }
static bool stopping(void) { return __atomic_load_n(&S->stop, __ATOMIC_ACQUIRE) != 0; }

static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}
static void rng_seed(uint64_t s) { rng_state = s * 0x9E3779B97F4A7C15ull | 1; }

static void call_begin(slot *s, double timeout) {
    s->call_limit = (int64_t)(timeout * 1e9);
    __atomic_store_n(&s->call_start, now_ns(), __ATOMIC_RELEASE);
}
static void call_end(slot *s) { __atomic_store_n(&s->call_start, 0, __ATOMIC_RELEASE); }

/* Diagnostics on stderr, at most 20 lines per process. */
static int said;
#define SAY(...) (said < 20 ? (said++, fprintf(stderr, "torture: " __VA_ARGS__)) : 0)

static void unexpected(const char *what, int rc) {
    bump(&S->unexpected);
    SAY("%s returned %d (%s)\n", what, rc, mp_strerror(rc));
}

/* Message: magic, producer, seq, len, checksum, then len - HDR bytes from a generator
   seeded by (producer, seq). */
static uint32_t fnv(const unsigned char *p, size_t n, uint32_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static size_t msg_len(uint32_t who, uint64_t seq) {
    uint64_t save = rng_state;
    rng_seed(((uint64_t)who << 40) ^ seq ^ 0x5eed);
    uint64_t r = rnd(), k = r % 100;
    size_t n = k < 70 ? 16 + r / 100 % 240 : k < 95 ? 256 + r / 100 % 3840 : 4096 + r / 100 % (MAXMSG - 4096);
    rng_state = save;
    return HDR + n;
}

static void msg_fill(unsigned char *m, uint32_t who, uint64_t seq, size_t len) {
    uint64_t save = rng_state;
    rng_seed(((uint64_t)who << 40) ^ seq);
    for (size_t i = HDR; i < len; i++) m[i] = (unsigned char)(rnd() >> 56);
    rng_state = save;
    uint32_t magic = 0x70727475, l = (uint32_t)len, c;
    memcpy(m, &magic, 4);
    memcpy(m + 4, &who, 4);
    memcpy(m + 8, &seq, 8);
    memcpy(m + 16, &l, 4);
    c = fnv(m + HDR, len - HDR, fnv(m, 20, 2166136261u));
    memcpy(m + 20, &c, 4);
}

/* Checks a message fully; false if anything is off. */
static bool msg_check(const unsigned char *m, size_t len, uint32_t *who, uint64_t *seq) {
    static unsigned char ref[HDR + MAXMSG];
    uint32_t magic, l;
    if (len < HDR || len > HDR + MAXMSG) return false;
    memcpy(&magic, m, 4);
    memcpy(who, m + 4, 4);
    memcpy(seq, m + 8, 8);
    memcpy(&l, m + 16, 4);
    if (magic != 0x70727475 || l != len || msg_len(*who, *seq) != len) return false;
    msg_fill(ref, *who, *seq, len);
    return memcmp(ref, m, len) == 0;
}

/* --- lock holders ------------------------------------------------------------------ */

static void run_lock(slot *s) {
    while (!stopping()) {
        call_begin(s, 10);
        int rc = mp_lock_acquire(S->lock, 10);
        call_end(s);
        if (rc == MP_ETIMEDOUT) {
            bump(&S->timeouts);
            continue;
        }
        if (rc == MP_EOWNERDEAD) {
            bump(&S->owner_dead);
            S->lb = S->la; /* repair what the dead owner left half-done */
        } else if (rc != MP_OK) {
            unexpected("mp_lock_acquire", rc);
            continue;
        } else if (S->la != S->lb) {
            bump(&S->corrupted); /* the previous owner died and no one was told */
            SAY("lock pair inconsistent after MP_OK\n");
            S->lb = S->la;
        }
        S->la++;
        for (int i = (int)(rnd() % 2000); i > 0; i--) mp__cpu_relax();
        S->lb++;
        rc = mp_lock_release(S->lock);
        if (rc != MP_OK) unexpected("mp_lock_release", rc);
        bump(&S->ops[R_LOCK]);
        if (rnd() % 4 == 0) usleep((useconds_t)(rnd() % 200));
    }
}

/* --- condition: one notifier, waiters that must never wake without a notify -------- */

/* Take the condition's lock, counting timeouts and dead owners; false: try again. */
static bool cond_acquire(slot *s) {
    call_begin(s, 10);
    int rc = mp_condition_acquire(S->cond, 10);
    call_end(s);
    if (rc == MP_ETIMEDOUT) {
        bump(&S->timeouts);
        return false;
    }
    if (rc == MP_EOWNERDEAD) bump(&S->owner_dead);
    else if (rc != MP_OK) {
        unexpected("mp_condition_acquire", rc);
        return false;
    }
    return true;
}

static void run_notifier(slot *s) {
    while (!stopping()) {
        if (!cond_acquire(s)) continue;
        S->ccount++;
        int rc = rnd() % 2 ? mp_condition_notify_all(S->cond) : mp_condition_notify(S->cond, 1);
        if (rc != MP_OK) unexpected("mp_condition_notify", rc);
        rc = mp_condition_release(S->cond);
        if (rc != MP_OK) unexpected("mp_condition_release", rc);
        bump(&S->ops[R_NOTIFY]);
        usleep((useconds_t)(200 + rnd() % 800));
    }
}

static void run_cwait(slot *s) {
    while (!stopping()) {
        if (!cond_acquire(s)) continue;
        uint64_t seen = S->ccount;
        call_begin(s, 1);
        int rc = mp_condition_wait(S->cond, 1.0);
        call_end(s);
        if (rc == MP_OK) {
            if (S->ccount == seen) {
                bump(&S->corrupted);
                SAY("condition wait woke without a notify\n");
            }
            bump(&S->ops[R_CWAIT]);
        } else if (rc == MP_ETIMEDOUT) {
            bump(&S->timeouts);
        } else if (rc == MP_EOWNERDEAD) {
            bump(&S->owner_dead);
        } else {
            unexpected("mp_condition_wait", rc);
            continue; /* the lock is not ours then */
        }
        rc = mp_condition_release(S->cond);
        if (rc != MP_OK) unexpected("mp_condition_release", rc);
    }
}

/* --- barrier: parties waiters; the action counts completed generations ---------------- */

static void bar_action(void *arg) {
    (void)arg;
    S->bactions++;
}

static void run_barrier(slot *s) {
    while (!stopping()) {
        uint64_t before = __atomic_load_n(&S->bactions, __ATOMIC_ACQUIRE);
        unsigned index = 0;
        call_begin(s, 2);
        int rc = mp_barrier_wait(S->bar, 2.0, &index);
        call_end(s);
        if (rc == MP_OK) {
            if (__atomic_load_n(&S->bactions, __ATOMIC_ACQUIRE) <= before || index >= NBAR) {
                bump(&S->corrupted);
                SAY("barrier passed before its action ran\n");
            }
            bump(&S->ops[R_BARRIER]);
        } else if (rc == MP_EBROKEN) {
            bump(&S->broken);
            if (mp_barrier_broken(S->bar)) mp_barrier_reset(S->bar);
        } else {
            unexpected("mp_barrier_wait", rc);
        }
    }
}

/* --- queue producers and consumers -------------------------------------------------- */

static void run_producer(slot *s) {
    static unsigned char m[HDR + MAXMSG];
    uint32_t k = (uint32_t)s->index;
    while (!stopping()) {
        uint64_t seq = S->prod[k].next;
        if (seq >= MAXSEQ) {
            usleep(10000);
            continue;
        }
        size_t len = msg_len(k, seq);
        msg_fill(m, k, seq, len);
        /* the unbounded queue never pushes back: keep its backlog to a few rings */
        bool unbounded = rnd() % 2 == 0 && mp_queue_qsize(S->uq) < 3 * UQ_RING;
        S->prod[k].moving_seq = seq;
        S->prod[k].moving_uq = unbounded;
        __atomic_store_n(&S->prod[k].moving, 1, __ATOMIC_RELEASE);
        call_begin(s, 2);
        int rc = mp_queue_put(unbounded ? S->uq : S->q, m, len, 2.0);
        call_end(s);
        if (rc == MP_OK) {
            if (unbounded && mp_queue_qsize(S->uq) > UQ_RING) bump(&S->overflowed);
            S->prod[k].next = seq + 1;
            bump(&S->ops[R_PROD]);
        } else if (rc == MP_ETIMEDOUT) {
            bump(&S->timeouts);
        } else {
            unexpected("mp_queue_put", rc);
            usleep(1000);
        }
        __atomic_store_n(&S->prod[k].moving, 0, __ATOMIC_RELEASE);
    }
}

/* Record one got message: checked, then its bit set (a single atomic step). */
static void record(const unsigned char *m, size_t len) {
    uint32_t who;
    uint64_t seq;
    if (!msg_check(m, len, &who, &seq) || who >= NPROD || seq >= MAXSEQ) {
        bump(&S->corrupted);
        SAY("corrupted queue message (%zu bytes)\n", len);
        return;
    }
    uint64_t bit = (uint64_t)1 << (seq % 64);
    uint64_t old = __atomic_fetch_or(&S->prod[who].bits[seq / 64], bit, __ATOMIC_ACQ_REL);
    if (old & bit) {
        bump(&S->duplicated);
        SAY("message %u/%llu got twice\n", who, (unsigned long long)seq);
    }
}

static void run_consumer(slot *s) {
    static unsigned char m[HDR + MAXMSG];
    while (!stopping()) {
        size_t len = 0;
        void *heap_buf = NULL;
        /* the unbounded queue is polled with timeout 0 half the time */
        bool unbounded = !__atomic_load_n(&S->uq_held, __ATOMIC_ACQUIRE) && rnd() % 2 == 0;
        double timeout = unbounded && rnd() % 2 ? 0 : 1.0;
        mp_queue *q = unbounded ? S->uq : S->q;
        __atomic_store_n(&s->moving, 1, __ATOMIC_RELEASE);
        call_begin(s, timeout);
        bool alloc = rnd() % 4 == 0;
        int rc = alloc ? mp_queue_get_alloc(q, &heap_buf, &len, timeout)
                       : mp_queue_get(q, m, sizeof m, &len, timeout);
        call_end(s);
        if (rc == MP_OK) {
            record(alloc ? (unsigned char *)heap_buf : m, len);
            bump(&S->ops[R_CONS]);
        } else if (rc == MP_ETIMEDOUT) {
            if (timeout > 0) bump(&S->timeouts);
        } else {
            unexpected(alloc ? "mp_queue_get_alloc" : "mp_queue_get", rc);
        }
        __atomic_store_n(&s->moving, 0, __ATOMIC_RELEASE);
        free(heap_buf);
    }
}

/* --- pipe peers: the client sends numbered messages, the server checks and echoes ---- */

static void run_pclient(slot *s) {
    static unsigned char m[HDR + MAXMSG], e[HDR + MAXMSG];
    mp_conn *c = (mp_conn *)s->conn_mine;
    mp_conn_close((mp_conn *)s->conn_other);
    int j = s->index;
    while (!stopping()) {
        uint64_t seq = S->pair[j].next;
        size_t len = msg_len(100 + (uint32_t)j, seq), got = 0;
        msg_fill(m, 100 + (uint32_t)j, seq, len);
        __atomic_store_n(&S->pair[j].moving, 1, __ATOMIC_RELEASE);
        call_begin(s, 5);
        int rc = mp_conn_send(c, m, len);
        if (rc == MP_OK) rc = mp_conn_recv(c, e, sizeof e, &got, 5.0);
        call_end(s);
        if (rc != MP_OK) { /* the server died: this pair is over */
            if (rc != MP_ECLOSED && rc != MP_ESYS) unexpected("pipe client", rc);
            break;
        }
        if (got != len || memcmp(m, e, len) != 0) {
            bump(&S->corrupted);
            SAY("pipe echo differs\n");
        }
        S->pair[j].next = seq + 1;
        __atomic_store_n(&S->pair[j].moving, 0, __ATOMIC_RELEASE);
        bump(&S->ops[R_PCLIENT]);
    }
    mp_conn_close(c);
}

static void run_pserver(slot *s) {
    static unsigned char m[HDR + MAXMSG];
    mp_conn *c = (mp_conn *)s->conn_mine;
    mp_conn_close((mp_conn *)s->conn_other);
    int j = s->index;
    uint64_t expect = S->pair[j].next;
    for (;;) {
        size_t len = 0;
        void *buf = NULL;
        bool alloc = rnd() % 2;
        call_begin(s, 30);
        int rc = alloc ? mp_conn_recv_alloc(c, &buf, &len, 30.0)
                       : mp_conn_recv(c, m, sizeof m, &len, 30.0);
        call_end(s);
        if (rc != MP_OK) {
            if (rc != MP_ECLOSED) {
                bump(&S->pipe_errors); /* a peer killed mid-frame: a clear error */
                if (rc != MP_ESYS && rc != MP_ETIMEDOUT) unexpected("pipe server recv", rc);
            }
            break;
        }
        const unsigned char *p = alloc ? (const unsigned char *)buf : m;
        uint32_t who;
        uint64_t seq;
        if (!msg_check(p, len, &who, &seq) || who != 100 + (uint32_t)j) {
            bump(&S->corrupted);
            SAY("corrupted pipe message\n");
        } else if (seq < expect) {
            bump(&S->duplicated);
        } else if (seq > expect) {
            bump(&S->corrupted); /* a gap inside one live connection */
            SAY("pipe message skipped\n");
        }
        expect = seq + 1;
        call_begin(s, 5);
        rc = mp_conn_send(c, p, len);
        call_end(s);
        free(buf);
        if (rc != MP_OK) break;
        bump(&S->ops[R_PSERVER]);
    }
    mp_conn_close(c);
}

/* --- pool client: apply_async tasks and maps; workers get killed under it ----------- */

static int task_fn(const void *arg, size_t arg_len, void *result, size_t *result_len) {
    uint64_t seq;
    if (arg_len != 8) return 1;
    memcpy(&seq, arg, 8);
    size_t len = msg_len(200, seq);
    if (*result_len < len) return 2;
    msg_fill((unsigned char *)result, 200, seq, len);
    *result_len = len;
    usleep((useconds_t)(seq % 500));
    return 0;
}

static int map_fn(const void *in, void *out) {
    uint64_t x;
    memcpy(&x, in, 8);
    x = x * 0x9E3779B97F4A7C15ull + 7;
    memcpy(out, &x, 8);
    for (volatile int i = 0; i < 20000; i++) {}
    return 0;
}

static void pool_batch(slot *s, mp_pool *p, uint64_t *seq) {
    mp_async *r[16];
    static unsigned char out[HDR + MAXMSG];
    uint64_t first = *seq;
    for (int i = 0; i < 16; i++, (*seq)++) {
        r[i] = mp_pool_apply_async(p, task_fn, seq, 8);
        if (!r[i]) unexpected("mp_pool_apply_async", MP_ENOMEM);
    }
    for (int i = 0; i < 16; i++) {
        if (!r[i]) continue;
        size_t len = 0;
        call_begin(s, 30);
        int rc = mp_async_get(r[i], out, sizeof out, &len, 30.0);
        call_end(s);
        uint32_t who;
        uint64_t got;
        if (rc == MP_OK) {
            if (!msg_check(out, len, &who, &got) || who != 200 || got != first + (uint64_t)i) {
                bump(&S->corrupted);
                SAY("wrong pool result\n");
            }
            bump(&S->ops[R_POOL]);
        } else if (rc == MP_EWORKERDIED) {
            bump(&S->pool_died);
        } else {
            unexpected("mp_async_get", rc); /* MP_ETIMEDOUT here is a hang */
        }
        bump(&S->pool_tasks);
        mp_async_destroy(r[i]);
    }
}

static void pool_map(slot *s, mp_pool *p, uint64_t salt) {
    enum { N = 64 };
    uint64_t in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = salt + (uint64_t)i, out[i] = 0;
    mp_map_failure f;
    mp_map_desc d;
    memset(&d, 0, sizeof d);
    d.fn = map_fn, d.in = in, d.in_size = 8, d.out = out, d.out_size = 8, d.n = N;
    d.chunksize = 1, d.failure = &f;
    call_begin(s, 60);
    int rc = mp_pool_map(p, &d);
    call_end(s);
    if (rc != MP_OK && rc != MP_EWORKERDIED) unexpected("mp_pool_map", rc);
    size_t bad = 0;
    for (int i = 0; i < N; i++)
        if (out[i] != in[i] * 0x9E3779B97F4A7C15ull + 7) bad++;
    if (bad > f.failed) { /* failed items leave their out untouched; others must be right */
        bump(&S->corrupted);
        SAY("pool map result wrong\n");
    }
    __atomic_fetch_add(&S->pool_died, f.failed, __ATOMIC_RELAXED);
    __atomic_fetch_add(&S->pool_tasks, N, __ATOMIC_RELAXED);
    __atomic_fetch_add(&S->ops[R_POOL], N - f.failed, __ATOMIC_RELAXED);
}

static void run_pool(slot *s) {
    mp_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.processes = 2;
    pd.max_result = HDR + MAXMSG;
    mp_pool *p = mp_pool_create(&pd);
    if (!p) {
        unexpected("mp_pool_create", MP_ENOMEM);
        return;
    }
    uint64_t seq = 0;
    for (int round = 0; !stopping(); round++) {
        if (round % 4 == 3) pool_map(s, p, seq);
        else pool_batch(s, p, &seq);
    }
    mp_pool_close(p);
    call_begin(s, 10);
    int rc = mp_pool_join(p, 10);
    call_end(s);
    if (rc != MP_OK) unexpected("mp_pool_join", rc);
    mp_pool_destroy(p);
}

static int participant(void *arg) {
    slot *s = (slot *)arg;
    rng_seed((uint64_t)getpid() * 7919 + (uint64_t)now_ns());
    switch (s->role) {
    case R_LOCK: run_lock(s); break;
    case R_NOTIFY: run_notifier(s); break;
    case R_CWAIT: run_cwait(s); break;
    case R_BARRIER: run_barrier(s); break;
    case R_PROD: run_producer(s); break;
    case R_CONS: run_consumer(s); break;
    case R_PCLIENT: run_pclient(s); break;
    case R_PSERVER: run_pserver(s); break;
    case R_POOL: run_pool(s); break;
    default: break;
    }
    return 0;
}

/* --- the orchestrator ---------------------------------------------------------------- */

static struct {
    uint64_t killed, killed_moving, killed_allocating, pool_worker_kills;
    uint64_t lost_allowance, pipe_lost, hangs, stalls, exit_errors;
    int64_t slowest_reap;
} O;

static void start_slot(slot *s) {
    mp_process_desc d;
    memset(&d, 0, sizeof d);
    d.target = participant;
    d.arg = s;
    s->incarnation++;
    s->moving = 0;
    s->call_start = 0;
    s->hang_seen = 0;
    s->killed = false;
    s->peer_gone_at = 0;
    s->proc = mp_process_create(&d);
    if (!s->proc || mp_process_start(s->proc) != MP_OK) {
        SAY("cannot start a %s: %s\n", role_name[s->role], strerror(errno));
        exit(2);
    }
}

static slot *pair_slot(int role, int j) {
    for (int i = 0; i < S->nslots; i++)
        if (S->slots[i].role == role && S->slots[i].index == j) return &S->slots[i];
    return NULL;
}

static void start_pair(int j) {
    slot *c = pair_slot(R_PCLIENT, j), *sv = pair_slot(R_PSERVER, j);
    mp_conn *a, *b;
    int rc = mp_pipe(&a, &b, true);
    if (rc != MP_OK) {
        SAY("mp_pipe: %s\n", mp_strerror(rc));
        exit(2);
    }
    S->pair[j].moving = 0;
    c->conn_mine = a, c->conn_other = b;
    sv->conn_mine = b, sv->conn_other = a;
    start_slot(c);
    start_slot(sv);
    mp_conn_close(a); /* now only the two peers hold the ends */
    mp_conn_close(b);
}

/* Reap s (it ended or was killed) and free its record. false if it would not end. */
static bool reap_slot(slot *s, double timeout) {
    if (mp_process_join(s->proc, timeout) != MP_OK) return false;
    int code = mp_process_exitcode(s->proc);
    if (!s->killed && code != 0) {
        O.exit_errors++;
        SAY("a %s exited with %d\n", role_name[s->role], code);
    }
    mp_process_destroy(s->proc);
    s->proc = NULL;
    return true;
}

/* After a participant was killed and reaped: what it was doing decides the allowance. */
static void account_kill(slot *s) {
    O.killed++;
    if (s->role == R_PROD) {
        int k = s->index;
        O.killed_allocating++;
        if (S->prod[k].moving && S->prod[k].moving_uq) O.killed_allocating++;
        if (S->prod[k].moving) {
            O.killed_moving++;
            O.lost_allowance++;
            S->prod[k].next = S->prod[k].moving_seq + 1; /* it may be in the queue */
            S->prod[k].moving = 0;
        }
    }
    if (s->role == R_CONS) {
        O.killed_allocating++;
        if (s->moving) O.killed_moving++, O.lost_allowance++;
    }
}

static int pool_worker_pids(pid_t owner, pid_t *out, int cap) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)owner, (int)owner);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f) return 0;
    while (n < cap && fscanf(f, "%d", &out[n]) == 1) n++;
    fclose(f);
    return n;
}

static bool kill_random(void) {
    int n = S->nslots + 3;
    int i = (int)(rnd() % (uint64_t)n);
    if (i >= S->nslots) { /* a pool worker */
        for (int k = 0; k < S->nslots; k++) {
            slot *s = &S->slots[k];
            if (s->role != R_POOL || !s->proc) continue;
            pid_t w[64];
            int nw = pool_worker_pids(mp_process_pid(s->proc), w, 64);
            if (nw == 0) return false;
            if (kill(w[rnd() % (uint64_t)nw], SIGKILL) == 0) {
                O.killed++;
                O.pool_worker_kills++;
                O.lost_allowance++;
                O.killed_allocating++;
            }
            return true;
        }
        return false;
    }
    slot *s = &S->slots[i];
    if (s->role == R_POOL || !s->proc || s->killed || !mp_process_is_alive(s->proc)) return false;
    int64_t t = now_ns();
    mp_process_kill(s->proc);
    s->killed = true;
    bool reaped = reap_slot(s, 10);
    t = now_ns() - t;
    if (t > O.slowest_reap) O.slowest_reap = t;
    if (t > 1000000000) SAY("a SIGKILLed %s took %.1f s to reap\n", role_name[s->role], (double)t / 1e9);
    if (!reaped) {
        O.hangs++;
        SAY("a SIGKILLed %s was not reapable in 10 s\n", role_name[s->role]);
        return true;
    }
    account_kill(s);
    return true;
}

/* Restart what needs restarting; pipe pairs once both peers ended. */
static void tend(void) {
    int64_t now = now_ns();
    for (int i = 0; i < S->nslots; i++) {
        slot *s = &S->slots[i];
        if (s->role == R_PCLIENT || s->role == R_PSERVER) continue;
        if (!s->proc) start_slot(s);
        else if (!mp_process_is_alive(s->proc)) {
            reap_slot(s, 1);
            start_slot(s);
        }
    }
    for (int j = 0; j < NPAIR; j++) {
        slot *c = pair_slot(R_PCLIENT, j), *sv = pair_slot(R_PSERVER, j);
        bool c_up = c->proc && mp_process_is_alive(c->proc);
        bool s_up = sv->proc && mp_process_is_alive(sv->proc);
        if (c_up && s_up) continue;
        if (c_up || s_up) { /* one peer died: the other must notice and leave */
            slot *alive = c_up ? c : sv;
            if (!alive->peer_gone_at) alive->peer_gone_at = now;
            if (now - alive->peer_gone_at < HANG_SLACK_NS) continue;
            O.hangs++;
            SAY("a %s did not notice its peer's death\n", role_name[alive->role]);
            mp_process_kill(alive->proc);
            alive->killed = true;
            continue;
        }
        bool by_kill = c->killed || sv->killed;
        if (c->proc) reap_slot(c, 1);
        if (sv->proc) reap_slot(sv, 1);
        if (S->pair[j].moving) {
            O.pipe_lost++;
            if (by_kill) O.lost_allowance++, O.killed_moving++;
        }
        start_pair(j);
    }
}

/* Calls stuck past their timeout, and roles that stopped making progress. */
static void watch(int64_t stall_ns) {
    static uint64_t last_ops[R_N];
    static int64_t last_change[R_N];
    int64_t now = now_ns();
    for (int i = 0; i < S->nslots; i++) {
        slot *s = &S->slots[i];
        int64_t t = __atomic_load_n(&s->call_start, __ATOMIC_ACQUIRE);
        if (t && !s->hang_seen && now - t > s->call_limit + HANG_SLACK_NS) {
            s->hang_seen = 1;
            O.hangs++;
            SAY("a %s is stuck in a call for %.1f s\n", role_name[s->role],
                    (double)(now - t) / 1e9);
        }
    }
    for (int r = 0; r < R_N; r++) {
        uint64_t o = __atomic_load_n(&S->ops[r], __ATOMIC_RELAXED);
        if (!last_change[r] || o != last_ops[r]) {
            last_ops[r] = o;
            last_change[r] = now;
        } else if (role_count[r] && now - last_change[r] > stall_ns) {
            O.stalls++;
            SAY("no %s progress for %.0f s\n", role_name[r],
                    (double)stall_ns / 1e9);
            last_change[r] = now;
        }
    }
}

static int count_children(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "r");
    int n = 0, pid;
    if (!f) return 0;
    while (fscanf(f, "%d", &pid) == 1) n++, kill(pid, SIGKILL);
    fclose(f);
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    return n;
}

static void setup(void) {
    S = (shared *)mp_calloc(1, sizeof *S);
    S->lock = mp_lock_create();
    S->cond = mp_condition_create(NULL);
    S->bar = mp_barrier_create(NBAR, bar_action, NULL);
    if (!S || !S->lock || !S->cond || !S->bar) exit(2);
    mp_queue_desc qd;
    memset(&qd, 0, sizeof qd);
    qd.maxsize = 64;
    qd.capacity = 64 * 1024; /* 1 KiB slots: larger messages travel as heap blocks */
    S->q = mp_queue_create(&qd);
    S->uq = mp_queue_create(NULL);
    if (!S->q || !S->uq) exit(2);
    for (int k = 0; k < NPROD; k++) {
        S->prod[k].bits = (uint64_t *)mp_calloc(MAXSEQ / 64, 8);
        if (!S->prod[k].bits) exit(2);
    }
    for (int r = 0; r < R_N; r++)
        for (int j = 0; j < role_count[r]; j++) {
            slot *s = &S->slots[S->nslots++];
            s->role = r;
            s->index = j;
        }
}

/* Tell everyone to stop, wake the waiters, and give each survivor STOP_GRACE_S. */
static void finish(void) {
    __atomic_store_n(&S->stop, 1, __ATOMIC_RELEASE);
    mp_barrier_abort(S->bar);
    double end = (double)now_ns() / 1e9 + STOP_GRACE_S;
    for (int i = 0; i < S->nslots; i++) {
        slot *s = &S->slots[i];
        if (!s->proc) continue;
        double left = end - (double)now_ns() / 1e9;
        if (reap_slot(s, left > 0 ? left : 0)) continue;
        O.hangs++;
        SAY("a %s did not stop within %.0f s\n", role_name[s->role],
                STOP_GRACE_S);
        mp_process_kill(s->proc);
        s->killed = true;
        reap_slot(s, 10);
    }
    for (int j = 0; j < NPAIR; j++)
        if (S->pair[j].moving) O.pipe_lost++; /* stopping never leaves one in flight */
}

/* After everyone left: take what is still queued, then count what never arrived. */
static uint64_t queue_lost(uint64_t *sent) {
    *sent = 0;
    static unsigned char m[HDR + MAXMSG];
    size_t len;
    while (mp_queue_get(S->q, m, sizeof m, &len, 0) == MP_OK) record(m, len);
    while (mp_queue_get(S->uq, m, sizeof m, &len, 0) == MP_OK) record(m, len);
    uint64_t lost = 0;
    for (int k = 0; k < NPROD; k++) {
        uint64_t n = S->prod[k].next;
        *sent += n;
        for (uint64_t q = 0; q < n; q++)
            if (!(S->prod[k].bits[q / 64] >> (q % 64) & 1)) lost++;
    }
    return lost;
}

static void teardown(void) {
    mp_queue_destroy(S->q);
    mp_queue_destroy(S->uq);
    for (int k = 0; k < NPROD; k++) mp_free(S->prod[k].bits);
    mp_barrier_destroy(S->bar);
    mp_condition_destroy(S->cond);
    mp_lock_destroy(S->lock);
    mp_free(S);
}

int main(void) {
    const char *e = getenv("TORTURE_SECONDS");
    double seconds = e ? atof(e) : 300;
    e = getenv("TORTURE_KILL_MS");
    double kill_ms = e ? atof(e) : 30;
    if (seconds <= 0 || kill_ms <= 0) {
        fprintf(stderr, "usage: TORTURE_SECONDS=N [TORTURE_KILL_MS=M] torture\n");
        return 2;
    }
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    rng_seed((uint64_t)getpid() ^ (uint64_t)now_ns());
    mp_heap_stats h0, h1;
    mp_heap_stats_get(&h0);
    setup();
    int64_t stall_ns = (int64_t)((seconds / 2 < 30 ? seconds / 2 : 30) * 1e9);
    int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    int64_t next_kill = t0 + (int64_t)(rnd() % (uint64_t)(2 * kill_ms * 1e6));
    int64_t next_hold = t0 + UQ_FREE_NS;
    tend();
    while (now_ns() < end) {
        tend();
        watch(stall_ns);
        if (now_ns() >= next_hold) { /* hold the unbounded queue's getters off, or let go */
            uint32_t held = !S->uq_held;
            __atomic_store_n(&S->uq_held, held, __ATOMIC_RELEASE);
            next_hold = now_ns() + (held ? UQ_HOLD_NS : UQ_FREE_NS);
        }
        if (now_ns() >= next_kill) {
            kill_random();
            next_kill = now_ns() + (int64_t)(rnd() % (uint64_t)(2 * kill_ms * 1e6 + 1));
        }
        int64_t nap = next_kill - now_ns();
        usleep(nap > 5000000 ? 5000 : nap > 0 ? (useconds_t)(nap / 1000) : 0);
    }
    __atomic_store_n(&S->uq_held, 0, __ATOMIC_RELEASE);
    finish();
    uint64_t sent, lost = queue_lost(&sent);
    lost += O.pipe_lost + S->pool_died;
    uint64_t ops = 0;
    for (int r = 0; r < R_N; r++) ops += S->ops[r];
    uint64_t corrupted = S->corrupted + S->unexpected, dup = S->duplicated;
    int leftover = count_children();
    shared end_S = *S; /* the figures outlive the heap block */
    teardown();
    mp_heap_stats_get(&h1);
    uint64_t leaked = h1.blocks > h0.blocks ? h1.blocks - h0.blocks : 0;
    uint64_t leak_excess = leaked > O.killed_allocating ? leaked - O.killed_allocating : 0;

    printf("seconds: %.0f\n", (double)(now_ns() - t0) / 1e9);
    printf("operations: %llu\n", (unsigned long long)ops);
    for (int r = 0; r < R_N; r++)
        if (role_count[r]) printf("  %s ops: %llu\n", role_name[r], (unsigned long long)end_S.ops[r]);
    printf("processes killed: %llu\n", (unsigned long long)O.killed);
    printf("  pool workers killed: %llu\n", (unsigned long long)O.pool_worker_kills);
    printf("  killed while moving a message: %llu\n", (unsigned long long)O.killed_moving);
    printf("queue messages sent: %llu\n", (unsigned long long)sent);
    printf("messages lost: %llu\n", (unsigned long long)lost);
    printf("  lost allowed: %llu\n", (unsigned long long)O.lost_allowance);
    printf("  pipe messages lost: %llu\n", (unsigned long long)O.pipe_lost);
    printf("  pool tasks failed with MP_EWORKERDIED: %llu\n", (unsigned long long)end_S.pool_died);
    printf("overflowed puts: %llu\n", (unsigned long long)end_S.overflowed);
    printf("duplicated: %llu\n", (unsigned long long)dup);
    printf("corrupted: %llu\n", (unsigned long long)corrupted);
    printf("  unexpected return codes: %llu\n", (unsigned long long)end_S.unexpected);
    printf("hangs: %llu\n", (unsigned long long)O.hangs);
    printf("stalls: %llu\n", (unsigned long long)O.stalls);
    printf("leftover children: %d\n", leftover);
    printf("bad exits: %llu\n", (unsigned long long)O.exit_errors);
    printf("heap blocks leaked: %llu\n", (unsigned long long)leaked);
    printf("heap blocks leaked beyond allowed: %llu\n", (unsigned long long)leak_excess);
    printf("lock owner-dead recoveries: %llu\n", (unsigned long long)end_S.owner_dead);
    printf("barrier breaks: %llu\n", (unsigned long long)end_S.broken);
    printf("timeouts: %llu\n", (unsigned long long)end_S.timeouts);
    printf("pipe recv errors: %llu\n", (unsigned long long)end_S.pipe_errors);
    printf("slowest kill-to-reap ms: %.1f\n", (double)O.slowest_reap / 1e6);
    bool ok = lost <= O.lost_allowance && end_S.overflowed > 0 && dup == 0 && corrupted == 0 &&
              O.hangs == 0 && O.stalls == 0 && leftover == 0 && leak_excess == 0 &&
              O.exit_errors == 0;
    printf("result: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
