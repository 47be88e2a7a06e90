/* A program unrelated to the test runner (exec'd, not forked from it) that attaches to
   a named heap and uses the objects the test registered there by name. Usage:
     named_peer HEAP produce ID N     put N messages {ID, seq, check} on "q", then a stop
     named_peer HEAP forever ID       put until "stop" is set (the test kills some of us)
     named_peer HEAP consume NPROD    get until NPROD stops; count into "seen"
     named_peer HEAP lockinc N        N increments of "counter" under "lock"
     named_peer HEAP condwait V       wait on "cond" until "counter" >= V
     named_peer HEAP condset V        set "counter" to V under the lock, notify_all
     named_peer HEAP barrier K        K 0: wait on "bar" (MP_OK); 1: on "bar_action",
                                      whose action is the test's function (MP_EPERM)
   Exit 0 on success; 2-9 say what went wrong. */
#define MP_IMPLEMENTATION
#include "../../mp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER_MAXSEQ 2000000u /* per producer id, as the test's "seen" array */
#define PEER_STOP 0xffffffffu

typedef struct { uint32_t id, seq, check, pad; } peer_msg;

typedef struct { /* "shared": what the test and the peers count together */
    uint32_t nprod;
    uint32_t stop;          /* forever: producers leave when set */
    uint64_t received;
    uint32_t bad;           /* a consumer saw a duplicate, reordering or corruption */
    uint32_t next_seq[16];  /* forever: the seq a (replacement) producer ID puts next */
    uint8_t seen[];         /* [id][seq] */
} peer_shared;

static uint32_t check_of(uint32_t id, uint32_t seq) { return (id * 2654435761u) ^ (seq * 40503u) ^ 0x5a5a5a5au; }

static void *find(const char *name) {
    for (int i = 0; i < 5000; i++) { /* the test registers before it starts us */
        void *o = mp_name_get(name);
        if (o) return o;
        usleep(1000);
    }
    fprintf(stderr, "named_peer: %s not registered\n", name);
    exit(3);
}

static int put(mp_queue *q, uint32_t id, uint32_t seq) {
    peer_msg m = {id, seq, check_of(id, seq), 0};
    return mp_queue_put(q, &m, sizeof m, 30);
}

static int produce(uint32_t id, uint32_t n) {
    mp_queue *q = (mp_queue *)find("q");
    for (uint32_t s = 0; s < n; s++)
        if (put(q, id, s) != MP_OK) return 4;
    return put(q, id, PEER_STOP) == MP_OK ? 0 : 4;
}

static int forever(uint32_t id) {
    mp_queue *q = (mp_queue *)find("q");
    peer_shared *sh = (peer_shared *)find("shared");
    while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
        /* the number first: a death anywhere below loses at most this one */
        uint32_t s = __atomic_fetch_add(&sh->next_seq[id], 1, __ATOMIC_SEQ_CST);
        if (s >= PEER_MAXSEQ) return 0;
        if (put(q, id, s) != MP_OK) return 4;
        if (s % 64 == 63) usleep(500); /* paced: a life lasts long enough to be killed */
    }
    return 0;
}

static int consume(uint32_t nprod) {
    mp_queue *q = (mp_queue *)find("q");
    peer_shared *sh = (peer_shared *)find("shared");
    int64_t last[16];
    for (int i = 0; i < 16; i++) last[i] = -1;
    peer_msg m;
    size_t len;
    for (uint32_t stops = 0; stops < nprod;) {
        int rc = mp_queue_get(q, &m, sizeof m, &len, 30);
        if (rc == MP_ECLOSED) return 0;
        if (rc != MP_OK) return 5;
        if (m.seq == PEER_STOP) {
            stops++;
            continue;
        }
        if (len != sizeof m || m.id >= 16 || m.seq >= PEER_MAXSEQ || (int64_t)m.seq <= last[m.id] ||
            m.check != check_of(m.id, m.seq)) {
            __atomic_store_n(&sh->bad, 1, __ATOMIC_SEQ_CST);
            return 6;
        }
        last[m.id] = m.seq;
        __atomic_fetch_add(&sh->seen[(size_t)m.id * PEER_MAXSEQ + m.seq], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&sh->received, 1, __ATOMIC_RELAXED);
    }
    return 0;
}

static int lockinc(long n) {
    mp_lock *l = (mp_lock *)find("lock");
    volatile uint64_t *c = (volatile uint64_t *)find("counter");
    for (long i = 0; i < n; i++) {
        int rc = mp_lock_acquire(l, 30);
        if (rc != MP_OK && rc != MP_EOWNERDEAD) return 7;
        uint64_t v = *c; /* read, then write: only the lock keeps counts exact */
        *c = v + 1;
        mp_lock_release(l);
    }
    return 0;
}

static volatile uint64_t *cond_counter;
static uint64_t cond_target;
static bool reached(void *arg) { (void)arg; return *cond_counter >= cond_target; }

static int condition(bool set, uint64_t v) {
    mp_condition *c = (mp_condition *)find("cond");
    cond_counter = (volatile uint64_t *)find("counter");
    cond_target = v;
    int rc = mp_condition_acquire(c, 30);
    if (rc != MP_OK && rc != MP_EOWNERDEAD) return 8;
    if (set) {
        *cond_counter = v;
        rc = mp_condition_notify_all(c);
    } else {
        rc = mp_condition_wait_for(c, reached, NULL, 30);
    }
    mp_condition_release(c);
    return rc == MP_OK ? 0 : 9;
}

static int barrier(unsigned long k) {
    mp_barrier *b = (mp_barrier *)find(k ? "bar_action" : "bar");
    int rc = mp_barrier_wait(b, 30, NULL);
    return rc == (k ? MP_EPERM : MP_OK) ? 0 : 9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: named_peer HEAP ROLE ARG [ARG]\n");
        return 2;
    }
    mp_config cfg = {.name = argv[1]};
    int rc = mp_init(&cfg);
    if (rc != MP_OK) {
        fprintf(stderr, "named_peer: mp_init(%s): %s\n", argv[1], mp_strerror(rc));
        return 2;
    }
    const char *role = argv[2];
    unsigned long a = strtoul(argv[3], NULL, 10), b = argc > 4 ? strtoul(argv[4], NULL, 10) : 0;
    if (!strcmp(role, "produce")) return produce((uint32_t)a, (uint32_t)b);
    if (!strcmp(role, "forever")) return forever((uint32_t)a);
    if (!strcmp(role, "consume")) return consume((uint32_t)a);
    if (!strcmp(role, "lockinc")) return lockinc((long)a);
    if (!strcmp(role, "condwait")) return condition(false, a);
    if (!strcmp(role, "condset")) return condition(true, a);
    if (!strcmp(role, "barrier")) return barrier(a);
    return 2;
}
