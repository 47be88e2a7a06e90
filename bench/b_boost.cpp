/* Boost.Interprocess as a peer: message_queue for the queue workloads and the ping-pong,
   interprocess_mutex for the locks. Compiled with MPB_HAVE_BOOST=1 when the Makefile
   finds libboost-dev's headers; otherwise every pair reports itself skipped.

   message_queue is a named, bounded queue of fixed-size slots in POSIX shared memory,
   guarded by one process-shared mutex and two condition variables; interprocess_mutex
   is a process-shared pthread mutex (not robust: a holder that dies wedges it). */
#include "bench.h"
#include "peer.h"
#include <stdio.h>

#ifndef MPB_HAVE_BOOST
#define MPB_HAVE_BOOST 0
#endif

#if MPB_HAVE_BOOST
#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/version.hpp>
#include <new>
namespace bi = boost::interprocess;

#define BOOST_NOTE(text) b_note("Boost %d.%d, " text, BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000)

/* P producers send n messages of size bytes in all (a sequence number first), C
   consumers take them until an end marker (a 1-byte message) that the last producer
   sends, one per consumer. The counts and sums are checked. */
struct mq_shared {
    pb_gate gate;
    int producers_done;
    long got[PB_MAXW];
    unsigned long long sum[PB_MAXW];
};

struct mq_job {
    bi::message_queue *q;
    mq_shared *sh;
    int P, C;
    size_t size;
    long n;
};

static int mq_producer(void *arg, int who) {
    mq_job *j = (mq_job *)arg;
    char *msg = (char *)calloc(1, j->size);
    long per = j->n / j->P;
    try {
        pb_gate_wait(&j->sh->gate);
        for (long i = 0; i < per; i++) {
            unsigned long long seq = (unsigned long long)(who * per + i);
            memcpy(msg, &seq, sizeof seq);
            j->q->send(msg, j->size, 0);
        }
        if (__atomic_add_fetch(&j->sh->producers_done, 1, __ATOMIC_ACQ_REL) == j->P)
            for (int c = 0; c < j->C; c++) j->q->send(msg, 1, 0);
    } catch (...) {
        return 1;
    }
    pb_gate_done(&j->sh->gate, who);
    free(msg);
    return 0;
}

static int mq_consumer(void *arg, int who) {
    mq_job *j = (mq_job *)arg;
    char *msg = (char *)malloc(j->size);
    int c = who - j->P;
    try {
        pb_gate_wait(&j->sh->gate);
        for (;;) {
            bi::message_queue::size_type got;
            unsigned prio;
            j->q->receive(msg, j->size, got, prio);
            if (got != j->size) break;
            unsigned long long seq;
            memcpy(&seq, msg, sizeof seq);
            j->sh->got[c]++;
            j->sh->sum[c] += seq;
        }
    } catch (...) {
        return 1;
    }
    pb_gate_done(&j->sh->gate, who);
    free(msg);
    return 0;
}

/* Seconds for the run, or a negative number after b_fail. */
static double mq_stream(int P, int C, size_t size, unsigned cap, long n) {
    char name[64];
    snprintf(name, sizeof name, "mpbench-boost-%d", (int)getpid());
    bi::message_queue::remove(name);
    mq_shared *sh = (mq_shared *)pb_shared(sizeof(mq_shared));
    if (!sh) return b_fail("mmap"), -1;
    double dt = -1;
    try {
        bi::message_queue q(bi::create_only, name, cap, size);
        mq_job j = {&q, sh, P, C, size, n};
        pid_t pids[PB_MAXW];
        for (int i = 0; i < P; i++) pids[i] = pb_fork(mq_producer, &j, i);
        for (int i = 0; i < C; i++) pids[P + i] = pb_fork(mq_consumer, &j, P + i);
        pb_gate_open(&sh->gate, P + C);
        bool ok = pb_join(pids, P + C);
        long got = 0, per = n / P;
        unsigned long long sum = 0, total = (unsigned long long)(per * P);
        for (int c = 0; c < C; c++) got += sh->got[c], sum += sh->sum[c];
        if (!ok) b_fail("a worker failed");
        else if (got != per * P || sum != total * (total - 1) / 2) b_fail("lost or duplicated messages");
        else dt = pb_gate_elapsed(&sh->gate, P + C);
    } catch (std::exception &e) {
        b_fail(e.what());
    }
    bi::message_queue::remove(name);
    munmap(sh, sizeof(mq_shared));
    return dt;
}

BENCH(boost_q1p1c, "queue_1p1c_64B", "Boost message_queue", "msg/s", +1) {
    const long N = 1000000;
    BOOST_NOTE("message_queue(1024 x 64 B)");
    double dt = mq_stream(1, 1, 64, 1024, N);
    return dt < 0 ? NAN : N / dt;
}

/* message_queue is itself a queue between unrelated processes: the peer of a named heap */
BENCH(boost_named, "named_queue_1p1c_64B", "Boost message_queue", "msg/s", +1) {
    const long N = 1000000;
    BOOST_NOTE("message_queue(1024 x 64 B), forked processes (it is a named object)");
    double dt = mq_stream(1, 1, 64, 1024, N);
    return dt < 0 ? NAN : N / dt;
}

BENCH(boost_q2p2c, "queue_2p2c_64B", "Boost message_queue", "msg/s", +1) {
    const long N = 1000000;
    BOOST_NOTE("message_queue(1024 x 64 B), count and sum checked");
    double dt = mq_stream(2, 2, 64, 1024, N);
    return dt < 0 ? NAN : N / dt;
}

BENCH(boost_q1mib, "queue_1MiB", "Boost message_queue", "GB/s", +1) {
    const long N = 2000;
    BOOST_NOTE("message_queue(8 x 1 MiB); GB = 1e9 bytes");
    double dt = mq_stream(1, 1, 1 << 20, 8, N);
    return dt < 0 ? NAN : N * (double)(1 << 20) / dt / 1e9;
}

/* Ping-pong: the child echoes what comes on q1 back on q2. */
struct pp_job {
    bi::message_queue *q1, *q2;
    long n;
};

static int pp_echo(void *arg, int who) {
    pp_job *j = (pp_job *)arg;
    char msg[64];
    (void)who;
    try {
        for (long i = 0; i < j->n; i++) {
            bi::message_queue::size_type got;
            unsigned prio;
            j->q1->receive(msg, sizeof msg, got, prio);
            j->q2->send(msg, got, 0);
        }
    } catch (...) {
        return 1;
    }
    return 0;
}

BENCH(boost_pingpong, "pingpong_64B", "Boost message_queue", "us", -1) {
    const long N = 20000; /* of 100,000: see b_pipe.c */
    char n1[64], n2[64], msg[64] = "ping";
    snprintf(n1, sizeof n1, "mpbench-boost-%d-a", (int)getpid());
    snprintf(n2, sizeof n2, "mpbench-boost-%d-b", (int)getpid());
    bi::message_queue::remove(n1);
    bi::message_queue::remove(n2);
    BOOST_NOTE("two message_queues of 64 B; 20,000 of 100,000 round trips (scaled down, same rate)");
    double res = NAN;
    try {
        bi::message_queue q1(bi::create_only, n1, 1, 64), q2(bi::create_only, n2, 1, 64);
        pp_job j = {&q1, &q2, N + 1};
        b_party(0);
        pid_t pid = pb_fork(pp_echo, &j, 1);
        bi::message_queue::size_type got;
        unsigned prio;
        q1.send(msg, sizeof msg, 0); /* the first round trip waits for the child */
        q2.receive(msg, sizeof msg, got, prio);
        double t0 = b_now();
        for (long i = 0; i < N; i++) {
            q1.send(msg, sizeof msg, 0);
            q2.receive(msg, sizeof msg, got, prio);
        }
        double dt = b_now() - t0;
        res = pb_join(&pid, 1) ? dt / N * 1e6 : b_fail("child failed");
    } catch (std::exception &e) {
        res = b_fail(e.what());
    }
    bi::message_queue::remove(n1);
    bi::message_queue::remove(n2);
    return res;
}

/* ---- interprocess_mutex ------------------------------------------------------------------ */

BENCH(boost_lock_unc, "lock_uncontended", "Boost interprocess_mutex", "ns", -1) {
    const long N = 10000000;
    bi::interprocess_mutex *m = new (pb_shared(4096)) bi::interprocess_mutex;
    double t0 = b_now();
    for (long i = 0; i < N; i++) {
        m->lock();
        m->unlock();
    }
    double dt = b_now() - t0;
    BOOST_NOTE("interprocess_mutex in shared memory (not robust)");
    m->~interprocess_mutex();
    munmap(m, 4096);
    return dt / N * 1e9;
}

struct lock_shared {
    pb_gate gate;
    bi::interprocess_mutex mu;
    long counter, n;
};

static int lock_worker(void *arg, int who) {
    lock_shared *s = (lock_shared *)arg;
    pb_gate_wait(&s->gate);
    for (long i = 0; i < s->n; i++) {
        s->mu.lock();
        s->counter++;
        s->mu.unlock();
    }
    pb_gate_done(&s->gate, who);
    return 0;
}

BENCH(boost_lock_2p, "lock_contended_2p", "Boost interprocess_mutex", "ns", -1) {
    const long N = 1000000;
    lock_shared *s = new (pb_shared(sizeof(lock_shared))) lock_shared();
    s->n = N;
    pid_t pids[2] = {pb_fork(lock_worker, s, 0), pb_fork(lock_worker, s, 1)};
    pb_gate_open(&s->gate, 2);
    bool ok = pb_join(pids, 2);
    double dt = pb_gate_elapsed(&s->gate, 2);
    long counter = s->counter;
    s->~lock_shared();
    munmap(s, sizeof(lock_shared));
    BOOST_NOTE("interprocess_mutex around a shared counter, 2 processes");
    if (!ok || counter != 2 * N) return b_fail("lost increments");
    return dt / (2 * N) * 1e9;
}

#else /* no Boost headers */

#define BOOST_SKIP(fn, workload, system, unit, better)                                      \
    BENCH(fn, workload, system, unit, better) {                                             \
        return b_skip("Boost headers not found: install libboost-dev (make bench-deps)");   \
    }
BOOST_SKIP(boost_q1p1c, "queue_1p1c_64B", "Boost message_queue", "msg/s", +1)
BOOST_SKIP(boost_q2p2c, "queue_2p2c_64B", "Boost message_queue", "msg/s", +1)
BOOST_SKIP(boost_named, "named_queue_1p1c_64B", "Boost message_queue", "msg/s", +1)
BOOST_SKIP(boost_q1mib, "queue_1MiB", "Boost message_queue", "GB/s", +1)
BOOST_SKIP(boost_pingpong, "pingpong_64B", "Boost message_queue", "us", -1)
BOOST_SKIP(boost_lock_unc, "lock_uncontended", "Boost interprocess_mutex", "ns", -1)
BOOST_SKIP(boost_lock_2p, "lock_contended_2p", "Boost interprocess_mutex", "ns", -1)
#endif
