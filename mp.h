/* mp.h - v0.1.0 - MIT or public domain - Python's multiprocessing for C on Linux

   Processes, pipes, bounded queues, locks/semaphores/events/conditions/barriers,
   shared memory and a worker pool, all living in one shared memory region that every
   process of the family maps at the same address. Python's names and semantics,
   futex-based waits, and robustness: a process killed at any moment (SIGKILL
   included) never wedges the others.

   Do this:
      #define MP_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Include mp.h first in that file (it defines _GNU_SOURCE for the implementation),
   or compile that file with -D_GNU_SOURCE.

      // i.e. it should look like this:
      #define MP_IMPLEMENTATION
      #include "mp.h"
      #include <stdio.h>

   Build with -pthread. Linux only. No other dependency.

   QUICK START (cut from examples/process_basics.c)

      static int worker(void *arg) {
          printf("worker %s: pid %d, parent %d\n", (const char *)arg,
                 (int)getpid(), (int)mp_parent_pid());
          return 0;                                  // the exit code
      }
      ...
      mp_process_desc d = { .target = worker, .arg = "one" };
      mp_process *p = mp_process_create(&d);
      mp_process_start(p);
      mp_process_join(p, MP_FOREVER);
      printf("exitcode %d\n", mp_process_exitcode(p));
      mp_process_destroy(p);

   CONFIGURATION MACROS (define before including mp.h with MP_IMPLEMENTATION)

      MP_STATIC               make every public function static (private to one file)
      MP_ASSERT(x)            internal invariant checks (default: assert(x))
      MP_MALLOC(n), MP_FREE(p)
                              process-private memory (handles such as mp_conn, mp_shm,
                              buffers of *_alloc functions); define both or neither
      MP_DEFAULT_HEAP_SIZE    bytes of address space reserved for the shared heap
                              when mp_init is given none (default 1 GiB; pages are
                              committed only when touched)

   CHAPTERS

      ERRORS                    every function's failure codes
      THE SHARED HEAP           mp_init, mp_alloc, mp_calloc, mp_free, mp_heap_stats
      ON FORK AND THREADS       what crosses a fork, what must precede it
      PROCESSES                 mp_process_*, mp_active_children, mp_current_process
      SYNCHRONIZATION           locks, semaphores, events, conditions, barriers
      CONNECTIONS               mp_pipe, mp_conn_*, mp_wait
      QUEUES                    mp_queue_*
      NAMED SHARED MEMORY       mp_shm_*
      THE POOL                  mp_pool_*, mp_imap_*, mp_async_*
      ROBUSTNESS                what happens when a process dies mid-operation

   ERRORS

      Functions that can fail return int: MP_OK (0) or a negative code below.
      Constructors (*_create, *_open) return NULL and set errno. mp_strerror(code)
      gives the text. A bad argument is MP_EINVAL, never a crash.

      MP_ETIMEDOUT    a wait ended unsatisfied: the timeout expired, or timeout == 0
                      and the call would have blocked
      MP_ECLOSED      queue closed, or the other end of a connection closed (EOF)
      MP_EOWNERDEAD   lock acquired, but its previous owner died holding it
      MP_EWORKERDIED  the pool worker running this task died
      MP_ETASK        the task function returned non-zero
      MP_EBROKEN      barrier broken or aborted
      MP_ECANCELLED   pool terminated before the task ran
      MP_ETOOBIG      message larger than the buffer given, or than a hard limit
      MP_EPERM        release of a lock this process/thread does not own
      MP_EOVERFLOW    bounded semaphore released too often; task_done called too often
      MP_ENOMEM       shared heap or memory exhausted
      MP_EINVAL       bad argument, or object in the wrong state
      MP_ESYS         a system call failed; errno holds the cause

      Timeouts are double seconds: MP_FOREVER (any negative value) blocks, 0 tries
      once, anything else is a deadline on CLOCK_MONOTONIC. A signal never ends a
      wait early (EINTR restarts with the time that is left).

   THE SHARED HEAP

      mp_init reserves one MAP_SHARED|MAP_ANONYMOUS|MAP_NORESERVE region (it happens
      by itself on first use). Every process forked afterwards sees it at the same
      address, so a pointer into the heap means the same thing in every process of the
      family: an object a child creates after the fork can be handed to its parent or
      siblings through a queue. All mp objects but connections and named shared memory
      live there; mp_alloc/mp_calloc/mp_free give you blocks of it for your own shared
      data (Python's Value/Array are a struct in the heap, plus an mp_lock if needed).

      Allocation takes a size class (32-byte steps up to 512 bytes, then four classes
      per power of two), pops a free block of that class or cuts a new one from the
      top; no system call. Freed blocks are reused for their class; memory is not
      given back to the system while the family lives. The heap lock is an mp lock:
      a process killed inside mp_alloc/mp_free leaks at most the block it was moving,
      and the others go on.

   ON FORK AND THREADS

      - Call mp_init (or any mp function) before the first fork: a heap created
        after a fork is private to the process that created it.
      - Processes are started with fork(); the child runs the target and leaves with
        _exit after flushing stdio, so the parent's atexit handlers never run in it
        (unless the target itself calls exit(): return from the target instead).
        Buffered stdio is flushed before the fork, so nothing prints twice.
      - Only the thread that calls mp_process_start exists in the child, as with any
        fork. mp's own process-private state is reset in the child.
      - Every mp object in the heap may be used from any thread of any process of
        the family. Connections (mp_conn) are per-process handles, like FILE *.

   PROCESSES

      Python's Process: create (not started), start, join with a timeout, is_alive,
      terminate (SIGTERM), kill (SIGKILL), exitcode (N for exit status N, -S for
      signal S, MP_EXITCODE_NONE while running), pid, name ("Process-N", or
      "Process-N:M" for grandchildren), a sentinel fd (a pidfd) readable once the
      process ended, usable with poll(2) or mp_wait.

      Daemon children are terminated (SIGTERM) and joined when their parent exits
      normally (returns from main or calls exit), and also die (SIGKILL, through
      PR_SET_PDEATHSIG) if the parent is killed - provided the parent started them
      from its main thread, since the kernel ties that signal to the starting thread.
      Non-daemon children are joined at normal exit, as Python does.

      Only the creating process may start, join, reap or destroy a process.

   NAMED SHARED MEMORY

      mp_shm_open(name, size, flags) maps a POSIX shared memory object (shm_open)
      that processes not forked from one another can share by name. Created with
      mode 0600 and sized with posix_fallocate, so a full /dev/shm is an error at
      open time (errno ENOSPC), not a SIGBUS later.

   SYNCHRONIZATION

      (chapter: sync)

   CONNECTIONS

      (chapter: conn)

   QUEUES

      mp_queue is Python's Queue, JoinableQueue and SimpleQueue in one: a bounded
      queue of byte messages for any number of producer and consumer processes and
      threads, living in the shared heap. There is no feeder thread and no pipe: put
      copies the message into a slot of a ring, get copies it out, and neither makes
      a system call unless the other side sleeps. Create it before or after the
      fork; hand it to others by pointer (through another queue, say).

          mp_queue_desc d = { .maxsize = 1024 };        // capacity 0: 1 MiB of slots
          mp_queue *q = mp_queue_create(&d);
          // producers
          mp_queue_put(q, &job, sizeof job, MP_FOREVER);
          // consumers: MP_ECLOSED once the queue is closed and drained
          size_t n;
          while (mp_queue_get(q, &job, sizeof job, &n, MP_FOREVER) == MP_OK) {
              work(&job);
              mp_queue_task_done(q);                    // for mp_queue_join
          }
          // the owner
          mp_queue_join(q, MP_FOREVER);                 // every job got and done
          mp_queue_close(q);                            // wakes the consumers
          ... join them ..., then mp_queue_destroy(q);

      Storage. maxsize slots of capacity / maxsize bytes each (rounded down to 64,
      at least 64), or with maxsize 0, capacity / 256 slots of 256 bytes. A message
      up to the slot size less 16 bytes is stored inline; a larger one is copied into
      a shared-heap block that the slot points to, so any message the heap can hold
      goes through (MP_ENOMEM when it cannot; MP_ETOOBIG above the heap's size).
      Messages may be 0 bytes long. maxsize bounds the messages held exactly.

      Zero-copy. For large messages, write and read in place:

          mp_queue_msg m;
          if (mp_queue_reserve(q, size, &m, MP_FOREVER) == MP_OK) {
              render(m.data, m.len);                    // m.len may be lowered
              mp_queue_commit(q, &m);
          }
          ...
          if (mp_queue_claim(q, &m, MP_FOREVER) == MP_OK) {
              use(m.data, m.len);
              mp_queue_release(q, &m);
          }

      Above the slot size m.data is the heap block itself, so the bytes are written
      once and read once. The thread that reserved must commit (the one that claimed
      must release). Getters wait behind a reserved message, so commit soon; a
      claimed message is out of the queue at once, its slot is reused after release.

      Semantics.
      - Order: messages from one producer thread reach each consumer in the order they
        were put. Several consumers each see a subsequence of that order.
      - Timeouts: MP_FOREVER blocks, 0 is put_nowait/get_nowait, otherwise a full (or
        empty) queue past the deadline is MP_ETIMEDOUT.
      - mp_queue_get with a buffer too small: MP_ETOOBIG with *len = the size needed;
        the message stays queued (another getter may take it meanwhile).
        mp_queue_get_alloc allocates the right size instead.
      - mp_queue_close: later puts fail with MP_ECLOSED; gets return what is left,
        then MP_ECLOSED; blocked getters and putters wake up at once.
      - mp_queue_task_done / mp_queue_join: join returns once every message got has
        been marked done and none is left in the queue; task_done beyond the messages
        got is MP_EOVERFLOW. Any process may call either.
      - qsize, empty and full are snapshots, as in Python.
      - Waiting: a short spin (adaptive: it shrinks when it does not pay, as on a
        loaded machine), a few sched_yield calls, then a futex sleep. A burst of
        puts wakes a sleeping getter with one system call; a put or get makes none
        when no one sleeps.

      Robustness. A producer or consumer killed at any instant - mid-put, mid-get,
      mid-copy, between reserve and commit - never wedges the others: each slot in
      flight names its owner's thread, and a waiter that finds the slot stuck checks
      every 20 ms whether the owner lives. A dead writer's slot is
      skipped (its message is lost), a dead reader's slot is freed (the message it
      was taking is lost). Nothing is duplicated and nothing else is lost or
      corrupted; the heap block of a lost large message leaks. Sleepers therefore
      wake every 20 ms to look. A process killed after get but before task_done
      leaves join waiting, as in Python: give join a timeout if workers may die.

      Limits. maxsize up to 2^30. A recycled thread id (pid_max is often 32768)
      makes a dead owner look alive until that new thread ends. mp_queue_destroy only
      when no one uses the queue any more.

   THE POOL

      (chapter: pool)

   ROBUSTNESS

      (chapter: robustness)

   LICENSE

      See end of file.
*/
#if defined(MP_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* pidfd, gettid, sched_getaffinity, memfd: must precede libc headers */
#endif

#ifndef MP_H_INCLUDED
#define MP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0
#define MP_VERSION_STRING "0.1.0"

#ifndef MPDEF
#ifdef MP_STATIC
#define MPDEF static
#else
#define MPDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

// >>decl:base --------------------------------------------------------------------

enum {
    MP_OK = 0,
    MP_ETIMEDOUT = -1,
    MP_ECLOSED = -2,
    MP_EOWNERDEAD = -3,
    MP_EWORKERDIED = -4,
    MP_ETASK = -5,
    MP_EBROKEN = -6,
    MP_ECANCELLED = -7,
    MP_ETOOBIG = -8,
    MP_EPERM = -9,
    MP_EOVERFLOW = -10,
    MP_ENOMEM = -11,
    MP_EINVAL = -12,
    MP_ESYS = -13
};

#define MP_FOREVER (-1.0)

typedef struct mp_config {
    size_t heap_size; /* 0: MP_DEFAULT_HEAP_SIZE (1 GiB of address space) */
} mp_config;

/* Reserve the shared heap. Optional (the first mp call does it with defaults); must
   precede the first fork. Returns MP_OK; MP_EINVAL if already initialized with another
   size or cfg->heap_size is below 1 MiB; MP_ESYS if mmap fails. */
MPDEF int mp_init(const mp_config *cfg);

/* Text of an MP_E... code (or "unknown error"). Never NULL. */
MPDEF const char *mp_strerror(int code);

/* CPUs this process may run on (sched_getaffinity), at least 1. */
MPDEF int mp_cpu_count(void);

/* Blocks of the shared heap, 16-byte aligned, valid in every process of the family.
   NULL with errno ENOMEM when the heap is exhausted or size is 0 or absurd.
   mp_calloc zeroes; mp_free(NULL) does nothing; a pointer not from mp_alloc or freed
   twice is ignored (detected by the block header). */
MPDEF void *mp_alloc(size_t size);
MPDEF void *mp_calloc(size_t n, size_t size);
MPDEF void mp_free(void *p);

typedef struct mp_heap_stats {
    size_t size;       /* bytes reserved for the heap */
    size_t used;       /* bytes ever cut from the region (high-water mark) */
    size_t in_use;     /* bytes in allocated blocks, headers included */
    size_t blocks;     /* blocks allocated and not freed */
    size_t free_bytes; /* bytes in freed blocks waiting for reuse */
} mp_heap_stats;

/* Snapshot of the heap's counters. MP_EINVAL if out is NULL. */
MPDEF int mp_heap_stats_get(mp_heap_stats *out);

// >>decl:process -----------------------------------------------------------------

typedef struct mp_process mp_process;
typedef int (*mp_target_fn)(void *arg); /* return value = exit code (0..255) */

/* Defaults: target required; arg NULL; name "Process-N"; daemon false. */
typedef struct mp_process_desc {
    mp_target_fn target;
    void *arg;        /* passed as is: a pointer into the shared heap, or data the
                         child inherits through fork */
    const char *name; /* copied, up to 63 bytes */
    bool daemon;
} mp_process_desc;

#define MP_EXITCODE_NONE (-2147483647 - 1) /* not started, or not reaped yet */
#define MP_EXITCODE_LOST (-2147483647)     /* reaped by someone else (SIGCHLD handler,
                                              SIG_IGN) before mp could see its status */

/* A process record in the shared heap, not started. NULL + errno (EINVAL: d or
   target NULL; ENOMEM). */
MPDEF mp_process *mp_process_create(const mp_process_desc *d);
/* fork and run target in the child. MP_EINVAL: NULL, already started, or not created
   by this process. MP_ESYS: fork failed (errno EAGAIN at RLIMIT_NPROC). */
MPDEF int mp_process_start(mp_process *p);
/* Wait for the process to end and reap it. Repeatable. MP_OK, MP_ETIMEDOUT, or
   MP_EINVAL (NULL, never started, not our child). */
MPDEF int mp_process_join(mp_process *p, double timeout);
MPDEF bool mp_process_is_alive(mp_process *p);
/* SIGTERM / SIGKILL. MP_OK (also when it already ended), MP_EINVAL if not started. */
MPDEF int mp_process_terminate(mp_process *p);
MPDEF int mp_process_kill(mp_process *p);
/* N for exit(N) or return N, -S for signal S, MP_EXITCODE_NONE while running. */
MPDEF int mp_process_exitcode(mp_process *p);
MPDEF pid_t mp_process_pid(const mp_process *p); /* 0 before start */
MPDEF const char *mp_process_name(const mp_process *p);
/* An fd (pidfd) readable once the process ended; owned by p. MP_EINVAL if not
   started or not our child. */
MPDEF int mp_process_sentinel(mp_process *p);
/* Free the record. MP_OK; MP_EINVAL if it is still running or not ours (nothing freed).
   mp_process_destroy(NULL) is MP_OK. */
MPDEF int mp_process_destroy(mp_process *p);
/* Reap ended children of this process, store up to cap of the live ones in out, and
   return how many are alive. */
MPDEF size_t mp_active_children(mp_process **out, size_t cap);
/* This process's record: the one it was started from, or "MainProcess". */
MPDEF mp_process *mp_current_process(void);
/* The pid of the process that started this one (getppid() in the main process). */
MPDEF pid_t mp_parent_pid(void);

// >>decl:sync --------------------------------------------------------------------

// >>decl:conn --------------------------------------------------------------------

// >>decl:queue -------------------------------------------------------------------

typedef struct mp_queue mp_queue;

/* Defaults: maxsize 0 (bounded by capacity only); capacity 0 (1 MiB).
   The ring holds maxsize slots of capacity / maxsize bytes each (rounded down to 64,
   at least 64), or, with maxsize 0, capacity / 256 slots of 256 bytes. A message up to
   a slot minus 16 bytes is stored inline; a larger one travels as a shared-heap block
   handed over by reference (capacity does not count it). */
typedef struct mp_queue_desc {
    size_t maxsize;  /* most messages held; at most 2^30 */
    size_t capacity; /* bytes of slot storage */
} mp_queue_desc;

/* A message being written or read in place (the zero-copy verbs). data and len are
   yours to use; the rest belongs to the queue. */
typedef struct mp_queue_msg {
    void *data;
    size_t len;
    uint64_t priv_[2];
} mp_queue_msg;

/* A queue in the shared heap; NULL desc means all defaults. Usable by any thread of
   any process of the family, which may receive it by pointer. NULL + errno: EINVAL
   (maxsize above 2^30, capacity below 64 or above the heap, a ring that could never
   fit in the heap), ENOMEM (the heap has no room for it now). */
MPDEF mp_queue *mp_queue_create(const mp_queue_desc *d);

/* Append a copy of buf[0..len) (len may be 0, buf NULL then). Blocks while the queue is
   full, up to timeout (0: put_nowait). MP_OK; MP_ETIMEDOUT (full); MP_ECLOSED (queue
   closed); MP_ETOOBIG (len above the heap's size); MP_ENOMEM (no heap block for a message
   larger than a slot); MP_EINVAL (q NULL, or buf NULL with len > 0). */
MPDEF int mp_queue_put(mp_queue *q, const void *buf, size_t len, double timeout);

/* Take the oldest message into buf (cap bytes) and store its size in *len. Blocks while
   the queue is empty, up to timeout (0: get_nowait). MP_OK; MP_ETIMEDOUT (empty);
   MP_ECLOSED (closed and drained); MP_ETOOBIG (cap too small: *len is the size needed,
   the message stays queued); MP_EINVAL (q or len NULL, buf NULL with cap > 0). */
MPDEF int mp_queue_get(mp_queue *q, void *buf, size_t cap, size_t *len, double timeout);

/* mp_queue_get into a buffer from MP_MALLOC (release it with MP_FREE, free() by default).
   Same codes, plus MP_ENOMEM when the private buffer cannot be allocated; never
   MP_ETOOBIG. *buf is NULL on failure. */
MPDEF int mp_queue_get_alloc(mp_queue *q, void **buf, size_t *len, double timeout);

/* Zero-copy put: claim the next slot and room for len bytes, then write m->data[0..len)
   and mp_queue_commit (m->len may be lowered before the commit). Getters wait behind a
   reserved message (FIFO), so commit soon. Codes as mp_queue_put. */
MPDEF int mp_queue_reserve(mp_queue *q, size_t len, mp_queue_msg *m, double timeout);
/* Publish a reserved message. MP_OK; MP_EINVAL (NULL, not reserved by this thread, or
   m->len raised above the reserved size). */
MPDEF int mp_queue_commit(mp_queue *q, mp_queue_msg *m);

/* Zero-copy get: take the oldest message and read it in place at m->data (m->len
   bytes), then mp_queue_release. The message is already out of the queue; its slot is
   reused only after the release. Codes as mp_queue_get (never MP_ETOOBIG). */
MPDEF int mp_queue_claim(mp_queue *q, mp_queue_msg *m, double timeout);
/* Give a claimed message's storage back. MP_OK; MP_EINVAL (NULL, or not claimed by this
   thread). */
MPDEF int mp_queue_release(mp_queue *q, mp_queue_msg *m);

/* Messages held (approximate while others put and get, as in Python); 0 for NULL. */
MPDEF size_t mp_queue_qsize(mp_queue *q);
MPDEF bool mp_queue_empty(mp_queue *q); /* true for NULL */
MPDEF bool mp_queue_full(mp_queue *q);  /* false for NULL */

/* Later puts fail with MP_ECLOSED; getters drain what is left, then get MP_ECLOSED.
   Wakes every blocked getter and putter. Repeatable. */
MPDEF void mp_queue_close(mp_queue *q);

/* JoinableQueue: mark one got message done. MP_OK; MP_EOVERFLOW when called more times
   than messages were got; MP_EINVAL (NULL). */
MPDEF int mp_queue_task_done(mp_queue *q);
/* Wait until every message put has been got and marked done. MP_OK; MP_ETIMEDOUT;
   MP_EINVAL (NULL). */
MPDEF int mp_queue_join(mp_queue *q, double timeout);

/* Free the queue and any messages left in it. No one may be using it. */
MPDEF void mp_queue_destroy(mp_queue *q);

// >>decl:shm ---------------------------------------------------------------------

typedef struct mp_shm mp_shm;
enum { MP_SHM_CREATE = 1, MP_SHM_EXCL = 2 };

/* Open (or with MP_SHM_CREATE create; with MP_SHM_EXCL fail if it exists) the named
   shared memory object and map it. name: "/x" or "x" (no other '/'), up to 200 bytes.
   size: bytes wanted; 0 opens an existing object at its current size. An existing
   object smaller than size is grown when MP_SHM_CREATE is given, else EINVAL.
   NULL + errno on failure (EINVAL, EEXIST, ENOENT, ENOSPC, EMFILE...). */
MPDEF mp_shm *mp_shm_open(const char *name, size_t size, int flags);
MPDEF void *mp_shm_data(mp_shm *m);   /* NULL for NULL */
MPDEF size_t mp_shm_size(mp_shm *m);  /* 0 for NULL */
MPDEF void mp_shm_close(mp_shm *m);   /* unmap; the object stays until unlinked */
MPDEF int mp_shm_unlink(const char *name); /* MP_OK, MP_EINVAL, MP_ESYS (ENOENT) */

// >>decl:pool --------------------------------------------------------------------

#ifdef __cplusplus
}
#endif
#endif /* MP_H_INCLUDED */

/* ================================================================================ */
#ifdef MP_IMPLEMENTATION
#ifndef MP__IMPLEMENTED
#define MP__IMPLEMENTED

#if defined(__GLIBC__) && !defined(__USE_GNU)
#error "mp.h: the implementation needs _GNU_SOURCE: include mp.h first in the MP_IMPLEMENTATION file, or compile it with -D_GNU_SOURCE"
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MP_ASSERT
#include <assert.h>
#define MP_ASSERT(x) assert(x)
#endif

#if defined(MP_MALLOC) != defined(MP_FREE)
#error "mp.h: define both MP_MALLOC and MP_FREE, or neither"
#endif
#ifndef MP_MALLOC
#define MP_MALLOC(n) malloc(n)
#define MP_FREE(p) free(p)
#endif

#ifndef MP_DEFAULT_HEAP_SIZE
#define MP_DEFAULT_HEAP_SIZE ((size_t)1 << 30)
#endif

#ifdef __cplusplus
extern "C" {
#endif

// >>base -------------------------------------------------------------------------
// Time, futex waits, the robust lock word every other section builds on, errors.

#define MP__NEVER INT64_MAX
#define mp__load(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define mp__store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define mp__cas(p, expp, v) \
    __atomic_compare_exchange_n((p), (expp), (v), false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define mp__fetch_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define mp__fetch_sub(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_ACQ_REL)
#define mp__xchg(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)

static inline void mp__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t mp__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Absolute CLOCK_MONOTONIC deadline for a timeout in seconds (negative: never). */
static int64_t mp__deadline(double timeout) {
    if (timeout < 0 || timeout != timeout) return MP__NEVER;
    if (timeout > 1e9) return MP__NEVER; /* ~31 years: forever for our purposes */
    return mp__now_ns() + (int64_t)(timeout * 1e9);
}

/* Milliseconds left until deadline for poll(2), rounded up, -1 for never. */
static int mp__poll_ms(int64_t deadline) {
    if (deadline == MP__NEVER) return -1;
    int64_t left = deadline - mp__now_ns();
    if (left <= 0) return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Sleep while *addr == val, until woken or deadline. Callers re-check their condition
   in a loop, so a wakeup, a changed value and EINTR all simply return 0. */
static int mp__futex_wait(uint32_t *addr, uint32_t val, int64_t deadline) {
    struct timespec ts, *tsp = NULL;
    if (deadline != MP__NEVER) {
        if (deadline <= mp__now_ns()) return MP_ETIMEDOUT;
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time: EINTR restarts cleanly */
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, val, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && errno == ETIMEDOUT) return MP_ETIMEDOUT;
    return MP_OK;
}

static void mp__futex_wake(uint32_t *addr, int n) {
    syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Thread ids are cached per thread; the fork handler clears the forking thread's cache,
   the only thread a child has. */
static __thread uint32_t mp__tls_tid;

static uint32_t mp__tid(void) {
    if (!mp__tls_tid) mp__tls_tid = (uint32_t)syscall(SYS_gettid);
    return mp__tls_tid;
}

/* kill(tid, 0) finds any thread by its id (ESRCH once it is gone). A recycled tid can
   make a dead owner look alive for a while: pid_max bounds that risk, see ROBUSTNESS. */
static bool mp__tid_alive(uint32_t tid) {
    return kill((pid_t)tid, 0) == 0 || errno == EPERM;
}

/* The robust lock word: 0 free, else the owner's tid | MP__LW_WAITERS when someone
   sleeps (Drepper's three-state futex mutex with the owner in the word). A sleeper that
   sees the same owner for MP__LW_POLL_NS checks that the owner still lives and, if not,
   takes the lock over and reports MP_EOWNERDEAD. */
#define MP__LW_WAITERS 0x80000000u
#define MP__LW_TID 0x3fffffffu
#define MP__LW_POLL_NS 20000000 /* 20 ms */
#define MP__SPIN 100

static int mp__lw_acquire_slow(uint32_t *w, uint32_t me, int64_t deadline) {
    for (int i = 0; i < MP__SPIN; i++) {
        uint32_t v = mp__load(w);
        if (v == 0 && mp__cas(w, &v, me)) return MP_OK;
        if (v & MP__LW_WAITERS) break;
        mp__cpu_relax();
    }
    uint32_t seen = 0;
    int64_t seen_since = 0;
    for (;;) {
        uint32_t v = mp__load(w);
        if (v == 0) {
            if (mp__cas(w, &v, me | MP__LW_WAITERS)) return MP_OK;
            continue;
        }
        if (!(v & MP__LW_WAITERS) && !mp__cas(w, &v, v | MP__LW_WAITERS)) continue;
        v |= MP__LW_WAITERS;
        int64_t now = mp__now_ns();
        if ((v & MP__LW_TID) != seen) {
            seen = v & MP__LW_TID;
            seen_since = now;
        } else if (now - seen_since >= MP__LW_POLL_NS && !mp__tid_alive(seen)) {
            if (mp__cas(w, &v, me | MP__LW_WAITERS)) return MP_EOWNERDEAD;
            continue;
        }
        if (now >= deadline) return MP_ETIMEDOUT;
        int64_t wake = now + MP__LW_POLL_NS < deadline ? now + MP__LW_POLL_NS : deadline;
        mp__futex_wait(w, v, wake);
    }
}

/* MP_OK, MP_EOWNERDEAD (acquired; the previous owner died) or MP_ETIMEDOUT. */
static inline int mp__lw_acquire(uint32_t *w, int64_t deadline) {
    uint32_t me = mp__tid(), z = 0;
    if (mp__cas(w, &z, me)) return MP_OK;
    return mp__lw_acquire_slow(w, me, deadline);
}

static inline int mp__lw_release(uint32_t *w) {
    uint32_t me = mp__tid(), v = me;
    if (mp__cas(w, &v, 0)) return MP_OK;
    if ((v & MP__LW_TID) != me) return MP_EPERM;
    mp__store(w, 0);
    mp__futex_wake(w, 1);
    return MP_OK;
}

MPDEF const char *mp_strerror(int code) {
    switch (code) {
    case MP_OK: return "success";
    case MP_ETIMEDOUT: return "timed out";
    case MP_ECLOSED: return "closed";
    case MP_EOWNERDEAD: return "previous owner died holding the lock";
    case MP_EWORKERDIED: return "pool worker died running the task";
    case MP_ETASK: return "task failed";
    case MP_EBROKEN: return "barrier broken";
    case MP_ECANCELLED: return "cancelled";
    case MP_ETOOBIG: return "message too big";
    case MP_EPERM: return "not the owner";
    case MP_EOVERFLOW: return "released or marked done too many times";
    case MP_ENOMEM: return "out of shared memory";
    case MP_EINVAL: return "invalid argument or state";
    case MP_ESYS: return "system call failed (see errno)";
    default: return "unknown error";
    }
}

MPDEF int mp_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

// >>heap -------------------------------------------------------------------------
// One shared region; a header with the lock, the bump offset and a free list per size
// class. Every change commits with a single store made while holding the robust lock,
// so a process killed inside leaves the lists consistent and leaks at most one block.

#define MP__HEAP_MAGIC 0x6d702e6865617021ull
#define MP__BLK_USED 0xA110C8EDu
#define MP__BLK_FREE 0xF7EEB10Cu
#define MP__BLK_HDR 16
#define MP__NCLASS 160

typedef struct mp__block {
    uint32_t state;
    uint32_t cls;
    uint64_t next; /* offset of the next free block of the class; 0 ends */
} mp__block;

typedef struct mp__heap {
    uint64_t magic;
    uint32_t lock;
    uint32_t pad_;
    size_t size, top, in_use, blocks, free_bytes;
    uint64_t free_head[MP__NCLASS];
} mp__heap;

/* Process-private state, reset in a forked child. */
static struct {
    pthread_mutex_t mu; /* guards this struct; re-initialized in the child */
    mp__heap *heap;
    pid_t pid;
    mp_process *self;
    mp_process *children;
    unsigned started; /* children started by this process, for their names */
    bool atexit_done;
} mp__g = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, NULL, NULL, 0, false};

static void mp__atfork_child(void);

/* Size of class c, headers included. 32-byte steps to 512, then 4 per power of two. */
static size_t mp__class_size(unsigned c) {
    if (c < 16) return (size_t)(c + 1) * 32;
    unsigned p = 9 + (c - 16) / 4, sub = (c - 16) % 4 + 1;
    return ((size_t)1 << p) + sub * ((size_t)1 << (p - 2));
}

static unsigned mp__class_of(size_t total) {
    if (total <= 512) return total <= 32 ? 0 : (unsigned)((total + 31) / 32 - 1);
    unsigned p = 63 - (unsigned)__builtin_clzll((unsigned long long)(total - 1));
    size_t step = (size_t)1 << (p - 2);
    unsigned sub = (unsigned)((total - ((size_t)1 << p) + step - 1) / step);
    return 16 + (p - 9) * 4 + sub - 1;
}

MPDEF int mp_init(const mp_config *cfg) {
    size_t size = cfg && cfg->heap_size ? cfg->heap_size : MP_DEFAULT_HEAP_SIZE;
    int rc = MP_OK;
    if (size < ((size_t)1 << 20) || size > ((size_t)1 << 46)) return MP_EINVAL;
    size = (size + 4095) & ~(size_t)4095;
    pthread_mutex_lock(&mp__g.mu);
    if (mp__g.heap) {
        rc = (cfg && cfg->heap_size && cfg->heap_size != mp__g.heap->size) ? MP_EINVAL : MP_OK;
    } else {
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            rc = MP_ESYS;
        } else {
            mp__heap *h = (mp__heap *)m;
            h->magic = MP__HEAP_MAGIC;
            h->size = size;
            h->top = (sizeof *h + 63) & ~(size_t)63;
            mp__g.heap = h;
            mp__g.pid = getpid();
            pthread_atfork(NULL, NULL, mp__atfork_child);
        }
    }
    pthread_mutex_unlock(&mp__g.mu);
    return rc;
}

static mp__heap *mp__heap_get(void) {
    mp__heap *h = mp__g.heap;
    if (h) return h;
    if (mp_init(NULL) != MP_OK) return NULL;
    return mp__g.heap;
}

static void *mp__heap_take(mp__heap *h, unsigned c) {
    char *base = (char *)h;
    mp__block *b = NULL;
    if (h->free_head[c]) {
        b = (mp__block *)(base + h->free_head[c]);
        mp__store(&h->free_head[c], b->next); /* the commit: b now belongs to us */
        h->free_bytes -= mp__class_size(c);
    } else {
        size_t sz = mp__class_size(c);
        if (sz > h->size - h->top) return NULL;
        b = (mp__block *)(base + h->top);
        mp__store(&h->top, h->top + sz); /* the commit */
    }
    b->state = MP__BLK_USED;
    b->cls = c;
    h->in_use += mp__class_size(c);
    h->blocks++;
    return (char *)b + MP__BLK_HDR;
}

MPDEF void *mp_alloc(size_t size) {
    mp__heap *h = mp__heap_get();
    if (!h) return NULL;
    if (size == 0 || size > h->size) {
        errno = size ? ENOMEM : EINVAL;
        return NULL;
    }
    unsigned c = mp__class_of(size + MP__BLK_HDR);
    if (c >= MP__NCLASS) {
        errno = ENOMEM;
        return NULL;
    }
    mp__lw_acquire(&h->lock, MP__NEVER); /* owner death is harmless here: see above */
    void *p = mp__heap_take(h, c);
    mp__lw_release(&h->lock);
    if (!p) errno = ENOMEM;
    return p;
}

MPDEF void *mp_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = mp_alloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

static mp__block *mp__block_of(mp__heap *h, void *p) {
    char *c = (char *)p, *base = (char *)h;
    if (!h || c < base + sizeof *h + MP__BLK_HDR || c >= base + h->size) return NULL;
    if (((uintptr_t)c & 15) != 0) return NULL;
    return (mp__block *)(c - MP__BLK_HDR);
}

MPDEF void mp_free(void *p) {
    mp__heap *h = mp__g.heap;
    mp__block *b = p ? mp__block_of(h, p) : NULL;
    if (!b) return;
    mp__lw_acquire(&h->lock, MP__NEVER);
    if (b->state == MP__BLK_USED && b->cls < MP__NCLASS) {
        unsigned c = b->cls;
        b->state = MP__BLK_FREE;
        b->next = h->free_head[c];
        mp__store(&h->free_head[c], (uint64_t)((char *)b - (char *)h)); /* the commit */
        h->in_use -= mp__class_size(c);
        h->blocks--;
        h->free_bytes += mp__class_size(c);
    }
    mp__lw_release(&h->lock);
}

MPDEF int mp_heap_stats_get(mp_heap_stats *out) {
    mp__heap *h = mp__heap_get();
    if (!out) return MP_EINVAL;
    if (!h) return MP_ESYS;
    mp__lw_acquire(&h->lock, MP__NEVER);
    out->size = h->size;
    out->used = h->top;
    out->in_use = h->in_use;
    out->blocks = h->blocks;
    out->free_bytes = h->free_bytes;
    mp__lw_release(&h->lock);
    return MP_OK;
}

// >>process ----------------------------------------------------------------------
// fork-based processes. The record lives in the shared heap (so children can name
// themselves and siblings can read it); the sentinel fd and reaping belong to the
// process that created it.

enum { MP__P_CREATED, MP__P_STARTED, MP__P_REAPED };

struct mp_process {
    mp_target_fn target;
    void *arg;
    bool daemon;
    int state;
    int exitcode;
    int sentinel;   /* pidfd in the creator, -1 before start */
    pid_t pid;
    pid_t creator;  /* the process that may start/join/destroy it */
    pid_t parent;   /* the pid the child reports as mp_parent_pid */
    mp_process *next_child;
    char ident[40]; /* "1", "1:2", ... as Python's _identity */
    char name[64];
};

static void mp__atfork_child(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    mp__g.mu = fresh;
    mp__g.pid = getpid();
    mp__tls_tid = 0;
    mp__g.children = NULL;
    mp__g.started = 0;
}

MPDEF mp_process *mp_process_create(const mp_process_desc *d) {
    if (!d || !d->target) {
        errno = EINVAL;
        return NULL;
    }
    mp_process *p = (mp_process *)mp_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->target = d->target;
    p->arg = d->arg;
    p->daemon = d->daemon;
    p->exitcode = MP_EXITCODE_NONE;
    p->sentinel = -1;
    p->creator = mp__g.pid;
    if (d->name) snprintf(p->name, sizeof p->name, "%s", d->name);
    return p;
}

static void mp__exit_children(void);

static void mp__atexit(void) { mp__exit_children(); }

/* Runs in the new child: become p, arrange to die with the parent if daemon. */
static void mp__child_enter(mp_process *p, pid_t parent, bool from_main_thread) {
    mp__g.self = p;
    if (p->daemon && from_main_thread) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) raise(SIGKILL); /* the parent died before prctl */
    }
}

static void mp__child_run(mp_process *p) {
    int rc = p->target(p->arg);
    mp__exit_children(); /* Python's _exit_function: join our own children */
    fflush(NULL);
    _exit(rc & 0xff);
}

static void mp__name_child(mp_process *p) {
    unsigned n;
    pthread_mutex_lock(&mp__g.mu);
    n = ++mp__g.started;
    pthread_mutex_unlock(&mp__g.mu);
    const char *parent = mp__g.self ? mp__g.self->ident : "";
    snprintf(p->ident, sizeof p->ident, "%.27s%s%u", parent, *parent ? ":" : "", n);
    if (!p->name[0]) snprintf(p->name, sizeof p->name, "Process-%s", p->ident);
}

MPDEF int mp_process_start(mp_process *p) {
    if (!p || !mp__heap_get()) return p ? MP_ESYS : MP_EINVAL;
    if (p->state != MP__P_CREATED || p->creator != mp__g.pid) return MP_EINVAL;
    pthread_mutex_lock(&mp__g.mu);
    if (!mp__g.atexit_done) mp__g.atexit_done = atexit(mp__atexit) == 0;
    pthread_mutex_unlock(&mp__g.mu);
    mp__name_child(p);
    pid_t parent = mp__g.pid;
    bool main_thread = mp__tid() == (uint32_t)parent;
    p->parent = parent;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return MP_ESYS;
    if (pid == 0) {
        mp__child_enter(p, parent, main_thread);
        mp__child_run(p);
    }
    p->pid = pid;
    p->sentinel = (int)syscall(SYS_pidfd_open, pid, 0);
    p->state = MP__P_STARTED;
    pthread_mutex_lock(&mp__g.mu);
    p->next_child = mp__g.children;
    mp__g.children = p;
    pthread_mutex_unlock(&mp__g.mu);
    return MP_OK;
}

/* Reap p if it ended. true once reaped. */
static bool mp__reap(mp_process *p) {
    int st;
    if (p->state != MP__P_STARTED) return p->state == MP__P_REAPED;
    pid_t r;
    do r = waitpid(p->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0) return false;
    if (r < 0) p->exitcode = MP_EXITCODE_LOST; /* ECHILD: reaped behind our back */
    else if (WIFEXITED(st)) p->exitcode = WEXITSTATUS(st);
    else if (WIFSIGNALED(st)) p->exitcode = -WTERMSIG(st);
    else return false;
    p->state = MP__P_REAPED;
    return true;
}

static bool mp__ours(const mp_process *p) {
    return p && p->state != MP__P_CREATED && p->creator == mp__g.pid && mp__g.pid;
}

MPDEF int mp_process_join(mp_process *p, double timeout) {
    if (!mp__ours(p)) return MP_EINVAL;
    int64_t deadline = mp__deadline(timeout);
    int64_t backoff = 1000000;
    while (!mp__reap(p)) {
        if (mp__now_ns() >= deadline) return MP_ETIMEDOUT;
        if (p->sentinel >= 0) {
            struct pollfd pfd = {p->sentinel, POLLIN, 0};
            poll(&pfd, 1, mp__poll_ms(deadline)); /* EINTR: the loop re-checks */
        } else { /* no pidfd (kernel < 5.3): poll with backoff */
            int64_t left = deadline - mp__now_ns();
            int64_t d = backoff < left ? backoff : left;
            struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
            nanosleep(&ts, NULL);
            if (backoff < 50000000) backoff *= 2;
        }
    }
    return MP_OK;
}

MPDEF bool mp_process_is_alive(mp_process *p) {
    if (!p || p->state != MP__P_STARTED) return false;
    if (p->creator != mp__g.pid) return kill(p->pid, 0) == 0;
    return !mp__reap(p);
}

static int mp__signal(mp_process *p, int sig) {
    if (!p || p->state == MP__P_CREATED) return MP_EINVAL;
    if (p->state == MP__P_REAPED) return MP_OK;
    if (p->creator == mp__g.pid && mp__reap(p)) return MP_OK;
    if (kill(p->pid, sig) < 0 && errno != ESRCH) return MP_ESYS;
    return MP_OK;
}

MPDEF int mp_process_terminate(mp_process *p) { return mp__signal(p, SIGTERM); }
MPDEF int mp_process_kill(mp_process *p) { return mp__signal(p, SIGKILL); }

MPDEF int mp_process_exitcode(mp_process *p) {
    if (!p) return MP_EXITCODE_NONE;
    if (p->state == MP__P_STARTED && p->creator == mp__g.pid) mp__reap(p);
    return p->exitcode;
}

MPDEF pid_t mp_process_pid(const mp_process *p) { return p ? p->pid : 0; }

MPDEF const char *mp_process_name(const mp_process *p) { return p ? p->name : ""; }

MPDEF int mp_process_sentinel(mp_process *p) {
    if (!mp__ours(p) || p->sentinel < 0) return MP_EINVAL;
    return p->sentinel;
}

MPDEF int mp_process_destroy(mp_process *p) {
    if (!p) return MP_OK;
    if (p == mp__g.self) return MP_EINVAL;
    if (p->state != MP__P_CREATED) {
        if (p->creator != mp__g.pid || !mp__reap(p)) return MP_EINVAL;
        pthread_mutex_lock(&mp__g.mu);
        mp_process **pp = &mp__g.children;
        while (*pp && *pp != p) pp = &(*pp)->next_child;
        if (*pp) *pp = p->next_child;
        pthread_mutex_unlock(&mp__g.mu);
        if (p->sentinel >= 0) close(p->sentinel);
    } else if (p->creator != mp__g.pid) {
        return MP_EINVAL;
    }
    mp_free(p);
    return MP_OK;
}

MPDEF size_t mp_active_children(mp_process **out, size_t cap) {
    size_t n = 0;
    pthread_mutex_lock(&mp__g.mu);
    for (mp_process *c = mp__g.children; c; c = c->next_child) {
        if (mp__reap(c)) continue;
        if (out && n < cap) out[n] = c;
        n++;
    }
    pthread_mutex_unlock(&mp__g.mu);
    return n;
}

/* At normal exit: terminate daemon children, then join every child (Python's order). */
static void mp__exit_children(void) {
    mp_process *c;
    pthread_mutex_lock(&mp__g.mu);
    mp_process *list = mp__g.children;
    pthread_mutex_unlock(&mp__g.mu);
    for (c = list; c; c = c->next_child)
        if (c->daemon && !mp__reap(c)) kill(c->pid, SIGTERM);
    for (c = list; c; c = c->next_child) mp_process_join(c, MP_FOREVER);
}

MPDEF mp_process *mp_current_process(void) {
    if (mp__g.self || !mp__heap_get()) return mp__g.self;
    mp_process *p = (mp_process *)mp_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->state = MP__P_STARTED;
    p->exitcode = MP_EXITCODE_NONE;
    p->sentinel = -1;
    p->pid = getpid();
    p->parent = getppid();
    snprintf(p->name, sizeof p->name, "MainProcess");
    pthread_mutex_lock(&mp__g.mu);
    if (!mp__g.self) mp__g.self = p, p = NULL;
    pthread_mutex_unlock(&mp__g.mu);
    mp_free(p); /* another thread won the race */
    return mp__g.self;
}

MPDEF pid_t mp_parent_pid(void) {
    return mp__g.self && mp__g.self->parent ? mp__g.self->parent : getppid();
}

// >>sync -------------------------------------------------------------------------

// >>conn -------------------------------------------------------------------------

// >>queue ------------------------------------------------------------------------
// A bounded ring of fixed-size slots (after Vyukov's MPMC queue). head and tail are the
// claims themselves: one word each, position << 24 | tid of the last claimer, moved by
// one CAS. Each slot's word is the position it serves << 24 | its state. A claimed
// position is EMPTY (being written) or FULL (being read) until its owner commits; the
// next claimer, if it is another thread, first marks the previous slot WRITING|tid or
// READING|tid. So the owner of any slot in flight is always known: from the slot, or
// from head/tail if it is the last claim. A waiter that finds a slot stuck for
// MP__LW_POLL_NS checks that owner and, if it died, recovers the slot: a dead writer's
// slot becomes DEAD (getters skip it), a dead reader's slot EMPTY (its message is lost).
// A commit first checks the slot is still its own, so a slot recovered from an owner
// wrongly thought dead is never overwritten. A commit is a plain store: the Dekker
// fence it would need for the sleeper check is paid by sleepers (see mp__q_publish).
// Positions wrap at a multiple of the slot count below 2^40.

#define MP__Q_EMPTY 0u
#define MP__Q_FULL 1u
#define MP__Q_DEAD 2u
#define MP__Q_WRITING (1u << 22)
#define MP__Q_READING (2u << 22)
#define MP__Q_TID ((1u << 22) - 1) /* PID_MAX_LIMIT is 2^22 */
#define MP__Q_ST ((1u << 24) - 1)
#define MP__Q_BIG ((uint64_t)1 << 63) /* in len: the payload is a heap block */
#define MP__Q_HDR 16
#define MP__Q_MAGIC 0x6d70517565756521ull
#define MP__Q_SPIN_MAX 160 /* polls, ~8 pauses apart at most: some 30 us */
#define MP__Q_SPIN_MIN 4
#define MP__Q_YIELDS 4
#define MP__Q_BLOCKED 1
#define MP__SC __ATOMIC_SEQ_CST

/* An eventcount. A sleeper sets waiting, re-checks, then sleeps on seq; the first
   waker to find waiting set clears it, bumps seq and wakes all. So a burst of puts
   makes one system call for a sleeping getter, however long it takes to run. */
typedef struct mp__q_ev {
    uint32_t seq;
    uint32_t waiting;
} mp__q_ev;

typedef struct mp__q_slot {
    uint64_t word;
    uint64_t len; /* | MP__Q_BIG when data holds a block pointer */
} mp__q_slot;

struct mp_queue { /* one line each for the read-mostly part, tail, head and waiters */
    char *slots;
    void *raw;
    uint64_t magic, nslots, stride, inline_max, wrap;
    uint32_t closed, pow2;
    char pad0_[64 - 7 * 8 - 2 * 4];
    uint64_t tail;
    uint32_t put_spin; /* the putters' spin budget (polls) */
    char pad1_[64 - 8 - 4];
    uint64_t head, skipped; /* skipped: DEAD positions passed; got = head - skipped */
    uint32_t get_spin;
    char pad2_[64 - 2 * 8 - 4];
    mp__q_ev not_empty;
    char pad3_[64 - sizeof(mp__q_ev)];
    mp__q_ev not_full;
    char pad4_[64 - sizeof(mp__q_ev)];
    uint64_t done, passed; /* passed: positions the head passed, not wrapped */
    mp__q_ev joiners;
    char pad5_[64 - 2 * 8 - sizeof(mp__q_ev)];
};

typedef struct mp__q_waiter {
    double timeout;
    int64_t deadline; /* set the first time the call has to wait */
    uint64_t word;    /* the stuck word seen, its owner, and since when */
    uint32_t owner;
    int64_t since;
} mp__q_waiter;

static bool mp__q_ok(const mp_queue *q) { return q && q->magic == MP__Q_MAGIC; }
static uint64_t mp__q_word(uint64_t pos, uint32_t st) { return pos << 24 | st; }
static uint64_t mp__q_pos(uint64_t w) { return w >> 24; }
static uint32_t mp__q_st(uint64_t w) { return (uint32_t)w & MP__Q_ST; }

static uint64_t mp__q_next(const mp_queue *q, uint64_t p, uint64_t k) {
    return p + k >= q->wrap ? p + k - q->wrap : p + k;
}

/* a - b for positions on the wrapping circle: > 0 ahead, < 0 behind. */
static int64_t mp__q_dist(const mp_queue *q, uint64_t a, uint64_t b) {
    int64_t d = (int64_t)a - (int64_t)b, m = (int64_t)q->wrap;
    return d < -m / 2 ? d + m : d >= m / 2 ? d - m : d;
}

static mp__q_slot *mp__q_at(const mp_queue *q, uint64_t pos) {
    uint64_t i = q->pow2 ? pos & (q->nslots - 1) : pos % q->nslots;
    return (mp__q_slot *)(q->slots + i * q->stride);
}

static void *mp__q_payload(mp__q_slot *s, uint64_t lenw) {
    void *p = (char *)s + MP__Q_HDR;
    if (lenw & MP__Q_BIG) memcpy(&p, p, sizeof p);
    return p;
}

/* Publishing a slot state and then looking for sleepers is a store followed by a load:
   the Dekker pattern, which needs a full fence between them - on every put and get.
   Instead the rare side pays: a process that registered for membarrier's global
   expedited barrier publishes with a plain store, and a sleeper, after raising its
   flag, forces a barrier on every registered process's running threads before it looks
   again. Without membarrier, publishing falls back to an exchange (a full fence). */
#define MP__MB_GLOBAL_EXPEDITED 2          /* MEMBARRIER_CMD_GLOBAL_EXPEDITED */
#define MP__MB_REGISTER_GLOBAL_EXPEDITED 4 /* MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED */
static pid_t mp__q_mb_pid; /* the process that registered: a forked child registers anew */
static int mp__q_mb_ok;

static bool mp__q_mb(void) {
    if (__atomic_load_n(&mp__q_mb_pid, __ATOMIC_ACQUIRE) == mp__g.pid)
        return __atomic_load_n(&mp__q_mb_ok, __ATOMIC_RELAXED) != 0;
    int ok = syscall(SYS_membarrier, MP__MB_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
    __atomic_store_n(&mp__q_mb_ok, ok, __ATOMIC_RELAXED);
    __atomic_store_n(&mp__q_mb_pid, mp__g.pid, __ATOMIC_RELEASE);
    return ok != 0;
}

static void mp__q_publish(uint64_t *word, uint64_t w) {
    if (mp__q_mb()) __atomic_store_n(word, w, __ATOMIC_RELEASE);
    else __atomic_exchange_n(word, w, MP__SC);
    __atomic_signal_fence(MP__SC); /* the compiler must not hoist the sleeper check */
}

static void mp__q_wake(mp__q_ev *ev) {
    if (!__atomic_load_n(&ev->waiting, MP__SC) ||
        !__atomic_exchange_n(&ev->waiting, 0, MP__SC))
        return;
    __atomic_fetch_add(&ev->seq, 1, MP__SC);
    mp__futex_wake(&ev->seq, INT_MAX); /* every sleeper re-checks: no lost wakeups */
}

/* Sleep on ev until woken or until wake, unless *word moved from w or the queue closed
   once we are registered. */
static void mp__q_sleep(mp__q_ev *ev, const uint64_t *word, uint64_t w, const uint32_t *closed,
                        int64_t wake) {
    uint32_t seq = mp__load(&ev->seq);
    __atomic_store_n(&ev->waiting, 1, MP__SC);
    if (mp__q_mb() && syscall(SYS_membarrier, MP__MB_GLOBAL_EXPEDITED, 0, 0) != 0) {
        int64_t soon = mp__now_ns() + 1000000; /* cannot fence the publishers: poll */
        if (soon < wake) wake = soon;
    }
    if ((!word || __atomic_load_n(word, MP__SC) == w) && !__atomic_load_n(closed, MP__SC))
        mp__futex_wait(&ev->seq, seq, wake);
}

/* Messages got so far: the positions the head passed, less the dead ones skipped.
   passed follows the wrapping head forward by the distance it moved, which is right as
   long as it is brought up to date within every half wrap: getters do so every
   MP__Q_REFRESH positions. skipped is read first, so a skip under way can only make
   this one too high for an instant (it counts the position before the skip). */
#define MP__Q_REFRESH ((uint64_t)1 << 36)
static uint64_t mp__q_got(mp_queue *q) {
    uint64_t sk = __atomic_load_n(&q->skipped, MP__SC);
    uint64_t h = mp__q_pos(__atomic_load_n(&q->head, MP__SC));
    uint64_t g = mp__load(&q->passed);
    int64_t d;
    while ((d = mp__q_dist(q, h, g % q->wrap)) > 0 && !mp__cas(&q->passed, &g, g + (uint64_t)d))
        continue;
    return (d > 0 ? g + (uint64_t)d : g) - sk;
}

static bool mp__q_cas(uint64_t *w, uint64_t from, uint64_t to) {
    return __atomic_compare_exchange_n(w, &from, to, false, MP__SC, __ATOMIC_RELAXED);
}

/* Before a claim passes another thread's: name that thread in the slot it holds. */
static void mp__q_mark(mp_queue *q, uint64_t claim, uint32_t me, bool reading) {
    uint32_t owner = (uint32_t)claim & MP__Q_TID;
    if (owner == me || owner == 0) return;
    uint64_t p = mp__q_pos(claim), prev = p ? p - 1 : q->wrap - 1;
    mp__q_slot *s = mp__q_at(q, prev);
    uint64_t w = mp__load(&s->word);
    uint32_t st = mp__q_st(w), tag = reading ? MP__Q_READING : MP__Q_WRITING;
    bool unmarked = reading ? (st == MP__Q_FULL || st == MP__Q_DEAD) : st == MP__Q_EMPTY;
    if (mp__q_pos(w) == prev && unmarked) mp__q_cas(&s->word, w, mp__q_word(prev, tag | owner));
}

/* Claim the tail position; MP__Q_BLOCKED with the slot and word seen if full. */
static int mp__q_try_put(mp_queue *q, uint32_t me, uint64_t *pos, mp__q_slot **sp,
                         uint64_t *seen) {
    uint64_t t = mp__load(&q->tail);
    for (;;) {
        uint64_t p = mp__q_pos(t);
        mp__q_slot *s = mp__q_at(q, p);
        uint64_t w = mp__load(&s->word);
        int64_t d = mp__q_dist(q, mp__q_pos(w), p);
        *pos = p, *sp = s, *seen = w;
        if (d > 0) { /* the slot lapped since we read the tail: read it again */
            t = mp__load(&q->tail);
            continue;
        }
        if (d < 0) return MP__Q_BLOCKED; /* still the last lap's message: full */
        mp__q_mark(q, t, me, false);
        if (__atomic_compare_exchange_n(&q->tail, &t, mp__q_word(mp__q_next(q, p, 1), me),
                                         false, MP__SC, __ATOMIC_ACQUIRE))
            return MP_OK;
    }
}

/* Claim the head position if it holds a message. With check_cap, a message above cap
   is left alone: MP_ETOOBIG with *lenw. MP__Q_BLOCKED with the word seen if empty. */
static int mp__q_try_get(mp_queue *q, uint32_t me, size_t cap, bool check_cap,
                         uint64_t *pos, mp__q_slot **sp, uint64_t *seen, uint64_t *lenw) {
    uint64_t h = mp__load(&q->head);
    for (;;) {
        uint64_t p = mp__q_pos(h);
        mp__q_slot *s = mp__q_at(q, p);
        uint64_t w = mp__load(&s->word);
        uint32_t st = mp__q_st(w);
        int64_t d = mp__q_dist(q, mp__q_pos(w), p);
        *pos = p, *sp = s, *seen = w;
        if (d > 0) { /* the slot lapped since we read the head: read it again */
            h = mp__load(&q->head);
            continue;
        }
        if (d < 0 || (st != MP__Q_FULL && st != MP__Q_DEAD)) return MP__Q_BLOCKED;
        *lenw = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
        if (st == MP__Q_FULL && check_cap && (*lenw & ~MP__Q_BIG) > cap) {
            if (mp__load(&s->word) == w && mp__load(&q->head) == h) return MP_ETOOBIG;
            h = mp__load(&q->head);
            continue;
        }
        mp__q_mark(q, h, me, true);
        uint64_t np = mp__q_next(q, p, 1);
        if (__atomic_compare_exchange_n(&q->head, &h, mp__q_word(np, me), false, MP__SC,
                                        __ATOMIC_ACQUIRE)) {
            if ((np & ((MP__Q_REFRESH)-1)) == 0) mp__q_got(q); /* see mp__q_got */
            return MP_OK;
        }
    }
}

/* Give slot s (position pos, claimed as word w) to the next lap. false if it was taken
   from us: recovered as if we had died (only possible with a recycled tid). */
static bool mp__q_free_slot(mp_queue *q, mp__q_slot *s, uint64_t pos, uint64_t w, uint32_t me) {
    uint64_t nw = mp__q_word(mp__q_next(q, pos, q->nslots), MP__Q_EMPTY);
    uint64_t cur = mp__load(&s->word);
    /* ours: as claimed (w), or marked READING|me by a later claimer, which does so only
       by CAS from w, so a plain store cannot undo anything but that mark */
    if (cur != w && cur != mp__q_word(pos, MP__Q_READING | me)) return false;
    mp__q_publish(&s->word, nw);
    mp__q_wake(&q->not_full);
    return true;
}

/* Getters pass a dead writer's slot; it counts as neither got nor pending. */
static void mp__q_skip(mp_queue *q, mp__q_slot *s, uint64_t pos, uint64_t w, uint32_t me) {
    if (!mp__q_free_slot(q, s, pos, w, me)) return;
    __atomic_fetch_add(&q->skipped, 1, MP__SC);
    mp__q_wake(&q->joiners);
}

/* Who holds the slot word w, or 0: no one, or unknown. */
static uint32_t mp__q_owner(mp_queue *q, uint64_t w) {
    uint32_t st = mp__q_st(w);
    if (st & (MP__Q_WRITING | MP__Q_READING)) return st & MP__Q_TID;
    uint64_t claim = mp__load(st == MP__Q_EMPTY ? &q->tail : &q->head);
    return mp__q_pos(claim) == mp__q_next(q, mp__q_pos(w), 1) ? (uint32_t)claim & MP__Q_TID : 0;
}

/* The owner of w died: a writer's slot becomes DEAD, a reader's EMPTY for the next lap. */
static void mp__q_recover(mp_queue *q, mp__q_slot *s, uint64_t w) {
    uint32_t st = mp__q_st(w);
    uint64_t p = mp__q_pos(w);
    if (st == MP__Q_EMPTY || (st & MP__Q_WRITING)) {
        if (mp__q_cas(&s->word, w, mp__q_word(p, MP__Q_DEAD))) mp__q_wake(&q->not_empty);
    } else if (mp__q_cas(&s->word, w, mp__q_word(mp__q_next(q, p, q->nslots), MP__Q_EMPTY))) {
        mp__q_wake(&q->not_full);
    }
}

/* Poll w for a while. The pause between polls grows: a getter at the heels of a putter
   would otherwise pull the very line being written on every check, and both crawl. The
   budget adapts: it grows while spinning pays, halves when it ends in sleep (as on a
   loaded machine, where the other side is not running and spinning only delays it). */
static bool mp__q_spin(mp__q_slot *s, uint64_t w, uint32_t *budget) {
    uint32_t n = __atomic_load_n(budget, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < (i < 3 ? 1u << i : 8u); k++) mp__cpu_relax();
        if (__atomic_load_n(&s->word, __ATOMIC_RELAXED) == w) continue;
        uint32_t more = n + 8 < MP__Q_SPIN_MAX ? n + 8 : MP__Q_SPIN_MAX;
        if (more != n) __atomic_store_n(budget, more, __ATOMIC_RELAXED);
        return true;
    }
    uint32_t less = n / 2 > MP__Q_SPIN_MIN ? n / 2 : MP__Q_SPIN_MIN;
    if (less != n) __atomic_store_n(budget, less, __ATOMIC_RELAXED);
    return false;
}

/* Wait for the word w of slot s to change: spin a little, then sleep on ev, at most
   MP__LW_POLL_NS at a time, to check on the owner of a stuck slot. MP_OK to retry, or
   MP_ETIMEDOUT. */
static int mp__q_block(mp_queue *q, mp__q_ev *ev, mp__q_slot *s, uint64_t w, mp__q_waiter *wt) {
    if (wt->timeout == 0) return MP_ETIMEDOUT;
    if (!wt->deadline && mp__q_spin(s, w, ev == &q->not_full ? &q->put_spin : &q->get_spin))
        return MP_OK;
    /* A few yields before sleeping: when the other side waits for this very CPU (more
       processes than CPUs), it runs at once, and neither side pays for a futex wake */
    for (int i = 0; !wt->deadline && i < MP__Q_YIELDS; i++) {
        sched_yield();
        if (__atomic_load_n(&s->word, __ATOMIC_RELAXED) != w) return MP_OK;
    }
    int64_t now = mp__now_ns();
    if (!wt->deadline) wt->deadline = mp__deadline(wt->timeout);
    if (now >= wt->deadline) return MP_ETIMEDOUT;
    uint32_t owner = mp__q_owner(q, w);
    if (w != wt->word || owner != wt->owner) {
        wt->word = w, wt->owner = owner, wt->since = now;
    } else if (owner && now - wt->since >= MP__LW_POLL_NS && !mp__tid_alive(owner)) {
        mp__q_recover(q, s, w);
        return MP_OK;
    }
    int64_t wake = now + MP__LW_POLL_NS < wt->deadline ? now + MP__LW_POLL_NS : wt->deadline;
    mp__q_sleep(ev, &s->word, w, &q->closed, wake);
    return MP_OK;
}

static int mp__q_put_slot(mp_queue *q, uint64_t *pos, mp__q_slot **sp, double timeout) {
    uint32_t me = mp__tid();
    mp__q_waiter wt = {timeout, 0, 0, 0, 0};
    for (;;) {
        uint64_t w;
        if (__atomic_load_n(&q->closed, MP__SC)) return MP_ECLOSED;
        if (mp__q_try_put(q, me, pos, sp, &w) == MP_OK) break;
        int r = mp__q_block(q, &q->not_full, *sp, w, &wt);
        if (r) return r;
    }
    /* A claim after close must not outlive the getters' last look: see mp__q_get_slot */
    if (!__atomic_load_n(&q->closed, MP__SC)) return MP_OK;
    mp__q_publish(&(*sp)->word, mp__q_word(*pos, MP__Q_DEAD)); /* ours: see mp__q_commit */
    mp__q_wake(&q->not_empty);
    return MP_ECLOSED;
}

static int mp__q_get_slot(mp_queue *q, size_t cap, bool check_cap, uint64_t *pos,
                          mp__q_slot **sp, uint64_t *seen, uint64_t *lenw, double timeout) {
    uint32_t me = mp__tid();
    mp__q_waiter wt = {timeout, 0, 0, 0, 0};
    for (;;) {
        uint64_t w;
        bool closed = __atomic_load_n(&q->closed, MP__SC) != 0;
        int r = mp__q_try_get(q, me, cap, check_cap, pos, sp, &w, lenw);
        if (r == MP_OK && mp__q_st(w) == MP__Q_DEAD) {
            mp__q_skip(q, *sp, *pos, w, me);
            continue;
        }
        *seen = w;
        if (r != MP__Q_BLOCKED) return r;
        /* closed was read before the slot and the tail: a put that claims after this
           look will see closed and give up */
        if (closed && (mp__q_pos(w) != *pos ||
                       mp__q_pos(__atomic_load_n(&q->tail, MP__SC)) == *pos))
            return MP_ECLOSED;
        r = mp__q_block(q, &q->not_empty, *sp, w, &wt);
        if (r) return r;
    }
}

static void mp__q_commit(mp_queue *q, mp__q_slot *s, uint64_t pos, uint64_t lenw, uint32_t me) {
    uint64_t cur = mp__load(&s->word);
    __atomic_store_n(&s->len, lenw, __ATOMIC_RELAXED);
    /* the slot is EMPTY, or WRITING|me if someone marked it (by CAS from EMPTY, so the
       plain store below can only overwrite that mark). Anything else: it was recovered
       as if we had died, and the message is dropped rather than the slot corrupted */
    if (cur != mp__q_word(pos, MP__Q_EMPTY) && cur != mp__q_word(pos, MP__Q_WRITING | me)) return;
    mp__q_publish(&s->word, mp__q_word(pos, MP__Q_FULL));
    mp__q_wake(&q->not_empty);
}

static void mp__q_finish_get(mp_queue *q, mp__q_slot *s, uint64_t pos, uint64_t w,
                             uint64_t lenw) {
    void *blk = (lenw & MP__Q_BIG) ? mp__q_payload(s, lenw) : NULL;
    if (mp__q_free_slot(q, s, pos, w, mp__tid()) && blk) mp_free(blk);
}

/* A heap block for a message too big for a slot. */
static int mp__q_block_for(mp_queue *q, size_t len, void **blk) {
    *blk = NULL;
    if (len <= q->inline_max) return MP_OK;
    if (len > mp__g.heap->size) return MP_ETOOBIG;
    *blk = mp_alloc(len);
    return *blk ? MP_OK : MP_ENOMEM;
}

MPDEF mp_queue *mp_queue_create(const mp_queue_desc *d) {
    mp__heap *h = mp__heap_get();
    size_t maxsize = d ? d->maxsize : 0;
    size_t cap = d && d->capacity ? d->capacity : ((size_t)1 << 20);
    if (!h) return NULL;
    if (maxsize > ((size_t)1 << 30) || cap < 64 || cap > h->size) {
        errno = EINVAL;
        return NULL;
    }
    size_t stride = maxsize ? (cap / maxsize) & ~(size_t)63 : (cap < 256 ? cap & ~(size_t)63 : 256);
    if (stride < 64) stride = 64;
    size_t n = maxsize ? maxsize : cap / stride;
    if (n > ((size_t)1 << 30) || stride > (h->size - sizeof(mp_queue) - 64) / n) {
        errno = EINVAL; /* the ring could never fit in the heap */
        return NULL;
    }
    void *raw = mp_alloc(sizeof(mp_queue) + 64 + n * stride);
    if (!raw) return NULL;
    mp_queue *q = (mp_queue *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    memset(q, 0, sizeof *q);
    q->slots = (char *)q + sizeof *q;
    q->raw = raw;
    q->nslots = n, q->stride = stride, q->inline_max = stride - MP__Q_HDR;
    q->pow2 = (n & (n - 1)) == 0;
    q->wrap = (((uint64_t)1 << 40) / n) * n;
    q->put_spin = q->get_spin = MP__Q_SPIN_MAX;
    for (size_t i = 0; i < n; i++) {
        mp__q_slot *s = mp__q_at(q, i);
        s->word = mp__q_word(i, MP__Q_EMPTY);
        s->len = 0;
    }
    mp__store(&q->magic, MP__Q_MAGIC);
    return q;
}

MPDEF int mp_queue_put(mp_queue *q, const void *buf, size_t len, double timeout) {
    uint64_t pos;
    mp__q_slot *s;
    void *blk;
    if (!mp__q_ok(q) || (!buf && len)) return MP_EINVAL;
    int r = mp__q_block_for(q, len, &blk);
    if (r) return r;
    if (blk) memcpy(blk, buf, len); /* before the claim: getters never wait on this copy */
    r = mp__q_put_slot(q, &pos, &s, timeout);
    if (r) {
        mp_free(blk);
        return r;
    }
    if (blk) memcpy((char *)s + MP__Q_HDR, &blk, sizeof blk);
    else if (len) memcpy((char *)s + MP__Q_HDR, buf, len);
    mp__q_commit(q, s, pos, len | (blk ? MP__Q_BIG : 0), mp__tid());
    return MP_OK;
}

MPDEF int mp_queue_get(mp_queue *q, void *buf, size_t cap, size_t *len, double timeout) {
    uint64_t pos, w, lenw = 0;
    mp__q_slot *s;
    if (!mp__q_ok(q) || !len || (!buf && cap)) return MP_EINVAL;
    int r = mp__q_get_slot(q, cap, true, &pos, &s, &w, &lenw, timeout);
    *len = r == MP_OK || r == MP_ETOOBIG ? (size_t)(lenw & ~MP__Q_BIG) : 0;
    if (r) return r;
    if (*len) memcpy(buf, mp__q_payload(s, lenw), *len);
    mp__q_finish_get(q, s, pos, w, lenw);
    return MP_OK;
}

MPDEF int mp_queue_get_alloc(mp_queue *q, void **buf, size_t *len, double timeout) {
    uint64_t pos, w, lenw = 0;
    mp__q_slot *s;
    size_t cap = 256;
    int r = MP_OK;
    if (buf) *buf = NULL;
    if (!mp__q_ok(q) || !buf || !len) return MP_EINVAL;
    *len = 0;
    void *b = MP_MALLOC(cap); /* before the claim: a claimed message cannot go back */
    while (b && (r = mp__q_get_slot(q, cap, true, &pos, &s, &w, &lenw, timeout)) == MP_ETOOBIG) {
        MP_FREE(b);
        cap = (size_t)(lenw & ~MP__Q_BIG);
        b = MP_MALLOC(cap);
    }
    if (!b) return MP_ENOMEM;
    if (r) {
        MP_FREE(b);
        return r;
    }
    *len = (size_t)(lenw & ~MP__Q_BIG);
    if (*len) memcpy(b, mp__q_payload(s, lenw), *len);
    mp__q_finish_get(q, s, pos, w, lenw);
    *buf = b;
    return MP_OK;
}

MPDEF int mp_queue_reserve(mp_queue *q, size_t len, mp_queue_msg *m, double timeout) {
    uint64_t pos;
    mp__q_slot *s;
    void *blk;
    if (!mp__q_ok(q) || !m) return MP_EINVAL;
    int r = mp__q_block_for(q, len, &blk);
    if (!r) r = mp__q_put_slot(q, &pos, &s, timeout);
    if (r) {
        mp_free(blk);
        return r;
    }
    /* name ourselves in the slot: our next claim will not, since it is ours too */
    uint64_t mine = mp__q_word(pos, MP__Q_WRITING | mp__tid());
    mp__q_cas(&s->word, mp__q_word(pos, MP__Q_EMPTY), mine);
    if (blk) memcpy((char *)s + MP__Q_HDR, &blk, sizeof blk);
    __atomic_store_n(&s->len, len | (blk ? MP__Q_BIG : 0), __ATOMIC_RELAXED);
    m->data = blk ? blk : (char *)s + MP__Q_HDR;
    m->len = len;
    m->priv_[0] = pos;
    m->priv_[1] = mine;
    return MP_OK;
}

/* The slot of a reserved or claimed message, if m really holds it in this thread. */
static mp__q_slot *mp__q_msg_slot(mp_queue *q, mp_queue_msg *m, uint32_t state) {
    if (!mp__q_ok(q) || !m || m->priv_[0] >= q->wrap) return NULL;
    mp__q_slot *s = mp__q_at(q, m->priv_[0]);
    uint64_t w = mp__load(&s->word);
    if (m->priv_[1] != mp__q_word(m->priv_[0], state | mp__tid())) return NULL;
    return w == m->priv_[1] ? s : NULL;
}

MPDEF int mp_queue_commit(mp_queue *q, mp_queue_msg *m) {
    mp__q_slot *s = mp__q_msg_slot(q, m, MP__Q_WRITING);
    if (!s) return MP_EINVAL;
    uint64_t lenw = s->len;
    if (m->len > (lenw & ~MP__Q_BIG)) return MP_EINVAL;
    mp__q_commit(q, s, m->priv_[0], m->len | (lenw & MP__Q_BIG), mp__tid());
    m->priv_[1] = 0;
    return MP_OK;
}

MPDEF int mp_queue_claim(mp_queue *q, mp_queue_msg *m, double timeout) {
    uint64_t pos, w, lenw = 0;
    mp__q_slot *s;
    if (!mp__q_ok(q) || !m) return MP_EINVAL;
    int r = mp__q_get_slot(q, 0, false, &pos, &s, &w, &lenw, timeout);
    if (r) return r;
    /* name ourselves in the slot, as reserve does */
    mp__q_cas(&s->word, w, mp__q_word(pos, MP__Q_READING | mp__tid()));
    m->data = mp__q_payload(s, lenw);
    m->len = (size_t)(lenw & ~MP__Q_BIG);
    m->priv_[0] = pos;
    m->priv_[1] = mp__q_word(pos, MP__Q_READING | mp__tid());
    return MP_OK;
}

MPDEF int mp_queue_release(mp_queue *q, mp_queue_msg *m) {
    mp__q_slot *s = mp__q_msg_slot(q, m, MP__Q_READING);
    if (!s) return MP_EINVAL;
    uint64_t pos = m->priv_[0];
    m->priv_[1] = 0;
    mp__q_finish_get(q, s, pos, mp__q_word(pos, MP__Q_READING | mp__tid()), s->len);
    return MP_OK;
}

MPDEF size_t mp_queue_qsize(mp_queue *q) {
    if (!mp__q_ok(q)) return 0;
    uint64_t h = mp__q_pos(mp__load(&q->head)), t = mp__q_pos(mp__load(&q->tail));
    int64_t d = mp__q_dist(q, t, h);
    return d <= 0 ? 0 : (uint64_t)d > q->nslots ? (size_t)q->nslots : (size_t)d;
}

MPDEF bool mp_queue_empty(mp_queue *q) { return mp_queue_qsize(q) == 0; }

MPDEF bool mp_queue_full(mp_queue *q) {
    return mp__q_ok(q) && mp_queue_qsize(q) >= q->nslots;
}

MPDEF void mp_queue_close(mp_queue *q) {
    if (!mp__q_ok(q)) return;
    __atomic_store_n(&q->closed, 1, MP__SC);
    mp__q_wake(&q->not_empty);
    mp__q_wake(&q->not_full);
}


MPDEF int mp_queue_task_done(mp_queue *q) {
    if (!mp__q_ok(q)) return MP_EINVAL;
    uint64_t d = mp__load(&q->done);
    do {
        if (d >= mp__q_got(q)) return MP_EOVERFLOW;
    } while (!mp__cas(&q->done, &d, d + 1));
    mp__q_wake(&q->joiners);
    return MP_OK;
}

/* Every message got is done, and none waits in the ring. */
static bool mp__q_joined(mp_queue *q) {
    if (__atomic_load_n(&q->done, MP__SC) != mp__q_got(q)) return false;
    uint64_t t = mp__q_pos(mp__load(&q->tail));
    for (uint64_t p = mp__q_pos(mp__load(&q->head)); p != t; p = mp__q_next(q, p, 1)) {
        uint64_t w = mp__load(&mp__q_at(q, p)->word);
        if (mp__q_pos(w) == p && mp__q_st(w) == MP__Q_FULL) return false;
    }
    return true;
}

MPDEF int mp_queue_join(mp_queue *q, double timeout) {
    if (!mp__q_ok(q)) return MP_EINVAL;
    int64_t deadline = mp__deadline(timeout);
    for (;;) {
        uint32_t seq = mp__load(&q->joiners.seq);
        __atomic_store_n(&q->joiners.waiting, 1, MP__SC);
        if (mp__q_joined(q)) return MP_OK;
        if (mp__now_ns() >= deadline) return MP_ETIMEDOUT;
        mp__futex_wait(&q->joiners.seq, seq, deadline);
    }
}

MPDEF void mp_queue_destroy(mp_queue *q) {
    if (!mp__q_ok(q)) return;
    q->magic = 0;
    for (uint64_t i = 0; i < q->nslots; i++) {
        mp__q_slot *s = mp__q_at(q, i);
        if (mp__q_st(s->word) == MP__Q_FULL && (s->len & MP__Q_BIG))
            mp_free(mp__q_payload(s, s->len));
    }
    mp_free(q->raw);
}

// >>shm --------------------------------------------------------------------------

struct mp_shm {
    void *data;
    size_t size;
};

/* "/name" for shm_open, or false if the user's name is unusable. */
static bool mp__shm_name(const char *name, char *out, size_t cap) {
    if (!name) return false;
    if (name[0] == '/') name++;
    size_t n = strlen(name);
    if (n == 0 || n > 200 || n + 2 > cap || strchr(name, '/')) return false;
    out[0] = '/';
    memcpy(out + 1, name, n + 1);
    return true;
}

static int mp__shm_size_fd(int fd, size_t size, bool create, size_t *out) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -1;
    if (size == 0) size = (size_t)st.st_size;
    if (size == 0) {
        errno = EINVAL;
        return -1;
    }
    if ((size_t)st.st_size < size) {
        if (!create) {
            errno = EINVAL;
            return -1;
        }
        int e = posix_fallocate(fd, 0, (off_t)size); /* ENOSPC now, not SIGBUS later */
        if (e) {
            errno = e;
            return -1;
        }
    }
    *out = size;
    return 0;
}

MPDEF mp_shm *mp_shm_open(const char *name, size_t size, int flags) {
    char nm[256];
    if (!mp__shm_name(name, nm, sizeof nm) || (flags & ~(MP_SHM_CREATE | MP_SHM_EXCL)) ||
        ((flags & MP_SHM_EXCL) && !(flags & MP_SHM_CREATE)) || size > ((size_t)1 << 46)) {
        errno = EINVAL;
        return NULL;
    }
    int oflags = O_RDWR | O_CLOEXEC | ((flags & MP_SHM_CREATE) ? O_CREAT : 0) |
                 ((flags & MP_SHM_EXCL) ? O_EXCL : 0);
    mp_shm *m = (mp_shm *)MP_MALLOC(sizeof *m);
    if (!m) return NULL;
    int fd = shm_open(nm, oflags, 0600), e;
    if (fd < 0) goto fail;
    if (mp__shm_size_fd(fd, size, (flags & MP_SHM_CREATE) != 0, &m->size) < 0) goto fail;
    m->data = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m->data == MAP_FAILED) goto fail;
    close(fd);
    return m;
fail:
    e = errno;
    if (fd >= 0) {
        close(fd);
        if (flags & MP_SHM_EXCL) shm_unlink(nm); /* we created it: leave nothing behind */
    }
    MP_FREE(m);
    errno = e;
    return NULL;
}

MPDEF void *mp_shm_data(mp_shm *m) { return m ? m->data : NULL; }
MPDEF size_t mp_shm_size(mp_shm *m) { return m ? m->size : 0; }

MPDEF void mp_shm_close(mp_shm *m) {
    if (!m) return;
    munmap(m->data, m->size);
    MP_FREE(m);
}

MPDEF int mp_shm_unlink(const char *name) {
    char nm[256];
    if (!mp__shm_name(name, nm, sizeof nm)) return MP_EINVAL;
    return shm_unlink(nm) == 0 ? MP_OK : MP_ESYS;
}

// >>pool -------------------------------------------------------------------------

#ifdef __cplusplus
}
#endif
#endif /* MP__IMPLEMENTED */
#endif /* MP_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the mp.h authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
In jurisdictions that recognize copyright laws, the author or authors of this
software dedicate any and all copyright interest in the software to the public
domain. We make this dedication in perpetuity for the benefit of our heirs and
successors. We intend this dedication to be an overt act of relinquishment in
relation to the software under copyright law. For more information, please
refer to <http://unlicense.org/>
------------------------------------------------------------------------------
*/
