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

      mp_pipe gives two connected ends (mp_conn *) that carry whole messages, framed
      exactly as Python's Connection.send_bytes/recv_bytes: a C process and a Python
      process can talk over one (Python: Connection(fd) on the inherited fd).

         mp_conn *a, *b;
         char buf[64];
         size_t n;
         mp_pipe(&a, &b, true);                  // duplex: a socketpair
         if (fork() == 0) {                      // (or mp_process_start)
             mp_conn_close(a);
             mp_conn_recv(b, buf, sizeof buf, &n, MP_FOREVER);
             mp_conn_send(b, buf, n);            // echo
             _exit(0);
         }
         mp_conn_close(b);
         mp_conn_send(a, "ping", 4);
         mp_conn_recv(a, buf, sizeof buf, &n, 5.0);   // 5 s timeout

      Wire format: a 4-byte big-endian signed length, then the payload; for 2 GiB and
      more, length -1 then an 8-byte big-endian length. Message boundaries are kept,
      empty messages are fine. duplex = false is a pipe(2): a receives, b sends, as
      Python's Pipe(duplex=False) returns (reader, writer); the wrong direction is
      MP_EINVAL. mp_conn_open wraps any fd you have (one inherited from Python, a
      socket, a FIFO). Both ends are close-on-exec; clear FD_CLOEXEC on the one you
      hand to an exec'd program.

      A conn is a process-private handle (MP_MALLOC), like a FILE *: after a fork each
      process has its own copy of it and closes its own copy. EOF (MP_ECLOSED) comes
      once every process has closed the other end, so close the ends you do not use.
      Like a FILE *, a conn buffers what it has read: received data sits in the copy
      of the process that read it. Give each receiving end one reader process (if many
      must share a channel, use mp_queue), and one thread at a time per direction.

      Receiving. mp_conn_recv copies the next message into your buffer; a message
      larger than the buffer is MP_ETOOBIG with *len = the size needed, and nothing is
      consumed: receive again with a bigger buffer (or use mp_conn_recv_alloc, or peek
      at the size with buf NULL, cap 0). A timeout (MP_ETIMEDOUT) loses nothing either,
      even half way through a big message. mp_conn_poll returns MP_OK once a whole
      message (or EOF) is there; it never consumes anything. Several small messages are
      taken in one read(2); big payloads are read straight into your buffer.

      Hostile input. A header announcing more than the conn's limit (default
      MP_CONN_DEFAULT_MAX, 1 GiB; mp_conn_set_max_message) is refused with MP_ETOOBIG
      before anything is allocated - raise the limit to take it, or close the conn. A
      negative length other than -1 is MP_ETOOBIG with *len = SIZE_MAX. A stream cut
      mid-message is MP_ECLOSED, not a hang.

      Sending. mp_conn_send writes header and payload with one writev (a message of
      up to PIPE_BUF - 4 bytes is written atomically on a pipe). It blocks while the
      pipe is full - there is no send timeout - and restarts after signals. A send to
      an end that no process holds any more is MP_ECLOSED; SIGPIPE never kills the
      process: sockets send with MSG_NOSIGNAL; for pipes, if SIGPIPE has its default
      action, the first send installs a handler that swallows the SIGPIPE a failing
      mp send raises in its own thread and, for any other SIGPIPE, does what the
      default does (the process dies by SIGPIPE). Ignored, handled or blocked SIGPIPE
      is left as you set it (a blocked one raised by mp is taken back). If you set
      SIGPIPE to SIG_DFL later on (mp looks at it once, at the first send on a pipe), a
      send to a dead reader kills the process, as SIG_DFL asks.

      Waiting on many. mp_wait(fds, n, ready, timeout) is
      multiprocessing.connection.wait: conns (by mp_conn_fileno), process sentinels
      (mp_process_sentinel) and any other fd. A conn's fd counts as ready once a whole
      message or EOF is there - also when the message is already in the conn's buffer
      and the fd itself is drained; mp keeps a per-process table from fd to conn for
      that. Do not close a conn another thread is waiting on.

   QUEUES

      (chapter: queue)

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

typedef struct mp_conn mp_conn;
enum { MP_CONN_READABLE = 1, MP_CONN_WRITABLE = 2 };
#define MP_CONN_DEFAULT_MAX ((size_t)1 << 30) /* largest message a conn accepts: 1 GiB */

/* A pair of connected ends, both close-on-exec. duplex: a socketpair, both ends send
   and receive. !duplex: a pipe(2); a only receives, b only sends (Python's
   Pipe(duplex=False) returns (reader, writer) in that order). MP_OK; MP_EINVAL (a or b
   NULL); MP_ESYS (errno EMFILE...); MP_ENOMEM. On failure *a and *b are NULL. */
MPDEF int mp_pipe(mp_conn **a, mp_conn **b, bool duplex);
/* Wrap an fd you already have (inherited from Python, a socket, a FIFO...). flags:
   MP_CONN_READABLE and/or MP_CONN_WRITABLE. The conn owns the fd from then on and closes
   it in mp_conn_close; its flags (blocking or not, close-on-exec) are left as they are.
   NULL + errno: EINVAL (bad flags, or an access mode that contradicts them), EBADF,
   ENOMEM; on failure the fd is still yours. */
MPDEF mp_conn *mp_conn_open(int fd, int flags);
/* Send one message: a 4-byte big-endian length then the bytes (len >= 2 GiB: length -1
   then an 8-byte big-endian length), as Python's Connection.send_bytes. One writev;
   blocks while the pipe is full (no timeout), restarts on EINTR. MP_OK; MP_ECLOSED (the
   receiving end is closed everywhere; no SIGPIPE kills the process, see CONNECTIONS);
   MP_EINVAL (NULL, buf NULL with len > 0, or a receive-only end); MP_ESYS. */
MPDEF int mp_conn_send(mp_conn *c, const void *buf, size_t len);
/* Receive one whole message into buf (cap bytes); *len = its size. MP_OK;
   MP_ETIMEDOUT (nothing consumed); MP_ECLOSED (EOF: the sending end is closed
   everywhere, or the stream was cut mid-message); MP_ETOOBIG: the message is larger than
   cap, *len = the size needed, nothing consumed (receive again with a bigger buffer),
   or its header announces more than the conn's limit (mp_conn_set_max_message; *len =
   the size announced, SIZE_MAX for a malformed header), nothing consumed either;
   MP_EINVAL (NULL c or len, buf NULL with cap > 0, a send-only end); MP_ENOMEM; MP_ESYS.
   buf NULL with cap 0 peeks at the next message's size (MP_ETOOBIG with *len). */
MPDEF int mp_conn_recv(mp_conn *c, void *buf, size_t cap, size_t *len, double timeout);
/* As mp_conn_recv into a buffer of the right size from MP_MALLOC; release it with
   free() (MP_FREE). *buf is NULL on failure. Same codes but no too-small MP_ETOOBIG. */
MPDEF int mp_conn_recv_alloc(mp_conn *c, void **buf, size_t *len, double timeout);
/* Wait until a receive would not block: MP_OK once a whole message, EOF, or a header
   that will be refused is ready; MP_ETIMEDOUT. Never consumes anything (it reads what
   arrives into the conn's buffer). MP_EINVAL for NULL or a send-only end; MP_ESYS. */
MPDEF int mp_conn_poll(mp_conn *c, double timeout);
/* The conn's fd (for poll(2) or mp_wait), MP_EINVAL for NULL. */
MPDEF int mp_conn_fileno(const mp_conn *c);
/* Largest message this end accepts (default MP_CONN_DEFAULT_MAX); a longer header is
   refused with MP_ETOOBIG before anything is allocated. MP_EINVAL for NULL or max 0. */
MPDEF int mp_conn_set_max_message(mp_conn *c, size_t max);
/* Close the fd and free the handle (this process's copy only). NULL is a no-op. */
MPDEF void mp_conn_close(mp_conn *c);
/* Wait until at least one of n fds is ready to read: a conn's fd when a whole message
   (or EOF) is ready, a process sentinel once the process ended, any other fd when
   poll(2) says POLLIN/POLLHUP. ready[i] says which. Returns how many (> 0),
   MP_ETIMEDOUT, MP_EINVAL (NULL, n 0, a negative or closed fd), MP_ENOMEM, MP_ESYS. */
MPDEF int mp_wait(const int *fds, size_t n, bool *ready, double timeout);


// >>decl:queue -------------------------------------------------------------------

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
// Framed messages over an fd, byte-compatible with Python's Connection. The receive
// side keeps a private buffer: reads take what is there (several small messages in one
// read), frames are cut from it, and nothing leaves it before a whole message can be
// handed out - so a too-small buffer, a timeout or a poll never loses a message. Big
// payloads go straight into the caller's buffer. An fd -> conn table lets mp_wait see
// messages that are already buffered.

#define MP__CONN_BUF 65536      /* default receive buffer */
#define MP__CONN_DIRECT 16384   /* a missing payload this big is read into the caller's buffer */
#define MP__CONN_MORE 1         /* mp__conn_head: the header is not complete yet */

struct mp_conn {
    int fd;
    int flags;  /* MP_CONN_READABLE | MP_CONN_WRITABLE */
    bool sock;  /* send with MSG_NOSIGNAL; recv with MSG_DONTWAIT */
    bool eof;   /* a read returned 0: nothing more will come */
    size_t max; /* largest message accepted */
    char *rbuf; /* received bytes not handed out yet: [rpos, rend) */
    size_t rcap, rpos, rend;
};

static pthread_mutex_t mp__conn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t mp__conn_once = PTHREAD_ONCE_INIT;
static mp_conn **mp__conn_tab; /* by fd; guarded by mp__conn_mu */
static size_t mp__conn_ntab;

static void mp__conn_lock(void) { pthread_mutex_lock(&mp__conn_mu); }
static void mp__conn_unlock(void) { pthread_mutex_unlock(&mp__conn_mu); }
static void mp__conn_atfork(void) {
    pthread_atfork(mp__conn_lock, mp__conn_unlock, mp__conn_unlock); /* a whole table in the child */
}

static bool mp__conn_register(mp_conn *c) {
    size_t fd = (size_t)c->fd;
    pthread_once(&mp__conn_once, mp__conn_atfork);
    mp__conn_lock();
    if (fd >= mp__conn_ntab) {
        size_t n = fd * 2 + 64;
        mp_conn **t = (mp_conn **)MP_MALLOC(n * sizeof *t);
        if (!t) {
            mp__conn_unlock();
            return false;
        }
        memset(t, 0, n * sizeof *t);
        if (mp__conn_ntab) memcpy(t, mp__conn_tab, mp__conn_ntab * sizeof *t);
        MP_FREE(mp__conn_tab);
        mp__conn_tab = t;
        mp__conn_ntab = n;
    }
    mp__conn_tab[fd] = c;
    mp__conn_unlock();
    return true;
}

static void mp__conn_unregister(mp_conn *c) {
    mp__conn_lock();
    if ((size_t)c->fd < mp__conn_ntab && mp__conn_tab[c->fd] == c) mp__conn_tab[c->fd] = NULL;
    mp__conn_unlock();
}

static mp_conn *mp__conn_new(int fd, int flags, bool sock) {
    mp_conn *c = (mp_conn *)MP_MALLOC(sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->flags = flags;
    c->sock = sock;
    c->max = MP_CONN_DEFAULT_MAX;
    if (!mp__conn_register(c)) {
        MP_FREE(c);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

MPDEF int mp_pipe(mp_conn **a, mp_conn **b, bool duplex) {
    int fd[2], r;
    if (!a || !b) return MP_EINVAL;
    *a = *b = NULL;
    r = duplex ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) : pipe2(fd, O_CLOEXEC);
    if (r < 0) return MP_ESYS;
    int rw = MP_CONN_READABLE | MP_CONN_WRITABLE;
    *a = mp__conn_new(fd[0], duplex ? rw : MP_CONN_READABLE, duplex);
    *b = mp__conn_new(fd[1], duplex ? rw : MP_CONN_WRITABLE, duplex);
    if (*a && *b) return MP_OK;
    if (*a) mp_conn_close(*a);
    else close(fd[0]);
    if (*b) mp_conn_close(*b);
    else close(fd[1]);
    *a = *b = NULL;
    return MP_ENOMEM;
}

MPDEF mp_conn *mp_conn_open(int fd, int flags) {
    struct stat st;
    int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    if (fd < 0 || !flags || (flags & ~(MP_CONN_READABLE | MP_CONN_WRITABLE))) {
        errno = EINVAL;
        return NULL;
    }
    if (fl < 0 || fstat(fd, &st) < 0) return NULL; /* EBADF */
    if (((flags & MP_CONN_READABLE) && (fl & O_ACCMODE) == O_WRONLY) ||
        ((flags & MP_CONN_WRITABLE) && (fl & O_ACCMODE) == O_RDONLY)) {
        errno = EINVAL;
        return NULL;
    }
    return mp__conn_new(fd, flags, S_ISSOCK(st.st_mode));
}

MPDEF int mp_conn_fileno(const mp_conn *c) { return c ? c->fd : MP_EINVAL; }

MPDEF int mp_conn_set_max_message(mp_conn *c, size_t max) {
    if (!c || !max) return MP_EINVAL;
    c->max = max;
    return MP_OK;
}

MPDEF void mp_conn_close(mp_conn *c) {
    if (!c) return;
    mp__conn_unregister(c);
    close(c->fd); /* no retry on EINTR: Linux has released the fd already */
    MP_FREE(c->rbuf);
    MP_FREE(c);
}

/* Wait for events on one fd until deadline. MP_OK when poll reports anything (errors
   included: the read or write that follows tells them). */
static int mp__fd_wait(int fd, short events, int64_t deadline) {
    for (;;) {
        struct pollfd p;
        p.fd = fd;
        p.events = events;
        p.revents = 0;
        int r = poll(&p, 1, mp__poll_ms(deadline));
        if (r > 0) return MP_OK;
        if (r < 0 && errno != EINTR) return MP_ESYS;
        if (mp__now_ns() >= deadline) return MP_ETIMEDOUT;
    }
}

/* --- sending --- */

static size_t mp__conn_header(unsigned char *h, uint64_t n) {
    int i;
    if (n <= 0x7fffffffu) {
        for (i = 0; i < 4; i++) h[i] = (unsigned char)(n >> (24 - 8 * i));
        return 4;
    }
    memset(h, 0xff, 4); /* -1: an 8-byte length follows */
    for (i = 0; i < 8; i++) h[4 + i] = (unsigned char)(n >> (56 - 8 * i));
    return 12;
}

static int mp__conn_writev(mp_conn *c, struct iovec *iov, int cnt) {
    while (cnt > 0) {
        ssize_t r;
        if (c->sock) {
            struct msghdr m;
            memset(&m, 0, sizeof m);
            m.msg_iov = iov;
            m.msg_iovlen = (size_t)cnt;
            r = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        } else {
            r = writev(c->fd, iov, cnt);
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) { /* an fd made non-blocking */
                if (mp__fd_wait(c->fd, POLLOUT, MP__NEVER) != MP_OK) return MP_ESYS;
                continue;
            }
            return errno == EPIPE || errno == ECONNRESET ? MP_ECLOSED : MP_ESYS;
        }
        size_t done = (size_t)r;
        while (cnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return MP_OK;
}

/* A pipe has no MSG_NOSIGNAL, and blocking SIGPIPE around every write costs two system
   calls, a fifth of a pipe round trip. So where SIGPIPE has its default action (kill),
   mp installs a handler once that does exactly that default - unless the signal is the
   one a write in mp_conn_send of this very thread just raised (then the write returns
   EPIPE and we report MP_ECLOSED). Ignored or handled SIGPIPE is left alone. */
static __thread volatile sig_atomic_t mp__in_pipe_send;
static pthread_once_t mp__sigpipe_once = PTHREAD_ONCE_INIT;

static void mp__sigpipe(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    if (mp__in_pipe_send && si && si->si_code == SI_USER && si->si_pid == getpid()) return;
    struct sigaction dfl; /* anyone else's SIGPIPE: what SIG_DFL would have done */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig); /* delivered, fatally, when this handler returns */
}

static void mp__sigpipe_install(void) {
    struct sigaction cur, sa;
    if (sigaction(SIGPIPE, NULL, &cur) != 0) return;
    if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL) return;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = mp__sigpipe;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

static int mp__conn_writev_pipe(mp_conn *c, struct iovec *iov, int cnt) {
    pthread_once(&mp__sigpipe_once, mp__sigpipe_install);
    mp__in_pipe_send = 1;
    int rc = mp__conn_writev(c, iov, cnt);
    mp__in_pipe_send = 0;
    if (rc == MP_ECLOSED) { /* rare path: if this thread blocks SIGPIPE, ours is pending */
        int e = errno;
        sigset_t cur, pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        if (pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0 && sigismember(&cur, SIGPIPE) == 1) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {}
        }
        errno = e;
    }
    return rc;
}

MPDEF int mp_conn_send(mp_conn *c, const void *buf, size_t len) {
    unsigned char h[12];
    struct iovec iov[2];
    if (!c || !(c->flags & MP_CONN_WRITABLE) || (!buf && len)) return MP_EINVAL;
    iov[0].iov_base = h;
    iov[0].iov_len = mp__conn_header(h, len);
    iov[1].iov_base = (void *)(uintptr_t)buf;
    iov[1].iov_len = len;
    /* one writev: header and payload leave together, with no copy; on a pipe a message
       of up to PIPE_BUF bytes with its header is written atomically */
    return c->sock ? mp__conn_writev(c, iov, 2) : mp__conn_writev_pipe(c, iov, 2);
}

/* --- receiving --- */

/* Read some bytes (waiting until deadline): > 0 bytes, 0 at EOF, or MP_ETIMEDOUT/ESYS.
   With no deadline a blocking read is the whole wait: one system call. A pipe with a
   deadline is polled first (no per-call non-blocking read); a socket tries first. */
static ssize_t mp__conn_read(mp_conn *c, void *p, size_t n, int64_t deadline) {
    bool timed = deadline != MP__NEVER, wait = timed && !c->sock;
    for (;;) {
        if (wait) {
            int w = mp__fd_wait(c->fd, POLLIN, deadline);
            if (w != MP_OK) return w;
        }
        ssize_t r = c->sock ? recv(c->fd, p, n, timed ? MSG_DONTWAIT : 0) : read(c->fd, p, n);
        if (r >= 0) return r;
        if (errno == ECONNRESET) return 0; /* the peer closed with data unread: EOF too */
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return MP_ESYS;
        wait = errno != EINTR || (timed && !c->sock);
    }
}

/* The frame at the head of the buffer: MP_OK with *hdr and *n; MP__CONN_MORE if the
   header is incomplete; MP_ETOOBIG if it is refused (over the limit, or malformed:
   *n = UINT64_MAX). */
static int mp__conn_head(const mp_conn *c, size_t *hdr, uint64_t *n) {
    const unsigned char *p = (const unsigned char *)c->rbuf + c->rpos;
    size_t have = c->rend - c->rpos;
    int i;
    if (have < 4) return MP__CONN_MORE;
    uint32_t u = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    *hdr = 4;
    *n = u;
    if (u == 0xffffffffu) {
        if (have < 12) return MP__CONN_MORE;
        *hdr = 12;
        for (*n = 0, i = 4; i < 12; i++) *n = *n << 8 | p[i];
    } else if (u & 0x80000000u) { /* negative and not -1: no sender writes that */
        *n = UINT64_MAX;
        return MP_ETOOBIG;
    }
    return *n > c->max ? MP_ETOOBIG : MP_OK;
}

/* Whether a receive would return at once: a whole frame, a refused header, or EOF. */
static bool mp__conn_ready(const mp_conn *c) {
    size_t hdr;
    uint64_t n;
    int h = mp__conn_head(c, &hdr, &n);
    if (h == MP_ETOOBIG || c->eof) return true;
    return h == MP_OK && c->rend - c->rpos - hdr >= n;
}

/* Make room for want more bytes after rend. */
static int mp__conn_room(mp_conn *c, size_t want) {
    if (c->rpos == c->rend) c->rpos = c->rend = 0;
    if (c->rcap - c->rend >= want && c->rcap > c->rend) return MP_OK;
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
        c->rend -= c->rpos;
        c->rpos = 0;
        if (c->rcap - c->rend >= want && c->rcap > c->rend) return MP_OK;
    }
    if (want > SIZE_MAX / 2 - c->rend) return MP_ENOMEM;
    size_t cap = c->rend + want < MP__CONN_BUF ? MP__CONN_BUF : c->rend + want;
    char *b = (char *)MP_MALLOC(cap);
    if (!b) return MP_ENOMEM;
    if (c->rend) memcpy(b, c->rbuf, c->rend);
    MP_FREE(c->rbuf);
    c->rbuf = b;
    c->rcap = cap;
    return MP_OK;
}

/* After a message left: an empty buffer restarts at 0, and a grown one is given back. */
static void mp__conn_consumed(mp_conn *c) {
    if (c->rpos != c->rend) return;
    c->rpos = c->rend = 0;
    if (c->rcap > MP__CONN_BUF) {
        MP_FREE(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
}

/* One read of what is there, with room for the rest of the current frame. MP_OK after
   progress (bytes or EOF), else MP_ETIMEDOUT, MP_ENOMEM, MP_ESYS. */
static int mp__conn_pump(mp_conn *c, int64_t deadline) {
    size_t hdr, want = 1, have = c->rend - c->rpos;
    uint64_t n;
    if (mp__conn_head(c, &hdr, &n) == MP_OK && hdr + n > have) {
        if (n > SIZE_MAX / 2) return MP_ENOMEM;
        want = (size_t)(hdr + n - have);
        /* grow with what actually arrives, not with what a header promises */
        size_t step = have < MP__CONN_BUF ? MP__CONN_BUF : have;
        if (want > step) want = step;
    }
    int r = mp__conn_room(c, want);
    if (r != MP_OK) return r;
    ssize_t got = mp__conn_read(c, c->rbuf + c->rend, c->rcap - c->rend, deadline);
    if (got < 0) return (int)got;
    if (got == 0) c->eof = true;
    c->rend += (size_t)got;
    return MP_OK;
}

/* Wait for the next frame's header: MP_OK with *hdr, *n; else MP_ETOOBIG (refused),
   MP_ECLOSED, MP_ETIMEDOUT... */
static int mp__conn_wait_head(mp_conn *c, size_t *hdr, uint64_t *n, int64_t deadline) {
    for (;;) {
        int h = mp__conn_head(c, hdr, n);
        if (h != MP__CONN_MORE) return h;
        if (c->eof) return MP_ECLOSED;
        int r = mp__conn_pump(c, deadline);
        if (r != MP_OK) return r;
    }
}

/* Read the rest of a big payload straight into buf. On a timeout or error the part
   read goes back into the conn's buffer, so the message is not lost. */
static int mp__conn_direct(mp_conn *c, char *buf, size_t hdr, size_t n, size_t *len,
                           int64_t deadline) {
    unsigned char h[12];
    size_t got = c->rend - c->rpos - hdr;
    memcpy(h, c->rbuf + c->rpos, hdr);
    if (got) memcpy(buf, c->rbuf + c->rpos + hdr, got);
    c->rpos = c->rend = 0;
    while (got < n) {
        ssize_t r = mp__conn_read(c, buf + got, n - got, deadline);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0) {
            c->eof = true;
            return MP_ECLOSED; /* cut mid-message: the stream is over */
        }
        int e = errno;
        if (mp__conn_room(c, hdr + got) != MP_OK) return MP_ENOMEM;
        memcpy(c->rbuf, h, hdr);
        memcpy(c->rbuf + hdr, buf, got);
        c->rend = hdr + got;
        errno = e;
        return (int)r;
    }
    *len = n;
    mp__conn_consumed(c);
    return MP_OK;
}

static int mp__conn_take(mp_conn *c, char *buf, size_t cap, size_t *len, int64_t deadline) {
    for (;;) {
        size_t hdr;
        uint64_t n;
        int r = mp__conn_wait_head(c, &hdr, &n, deadline);
        if (r == MP_ETOOBIG) *len = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
        if (r != MP_OK) return r;
        if (n > cap) {
            *len = (size_t)n;
            return MP_ETOOBIG;
        }
        size_t have = c->rend - c->rpos - hdr;
        if (have >= n) {
            if (n) memcpy(buf, c->rbuf + c->rpos + hdr, (size_t)n);
            c->rpos += hdr + (size_t)n;
            *len = (size_t)n;
            mp__conn_consumed(c);
            return MP_OK;
        }
        if (n - have >= MP__CONN_DIRECT) return mp__conn_direct(c, buf, hdr, (size_t)n, len, deadline);
        if (c->eof) return MP_ECLOSED;
        r = mp__conn_pump(c, deadline);
        if (r != MP_OK) return r;
    }
}

MPDEF int mp_conn_recv(mp_conn *c, void *buf, size_t cap, size_t *len, double timeout) {
    if (!c || !(c->flags & MP_CONN_READABLE) || !len || (!buf && cap)) return MP_EINVAL;
    return mp__conn_take(c, (char *)buf, cap, len, mp__deadline(timeout));
}

MPDEF int mp_conn_recv_alloc(mp_conn *c, void **buf, size_t *len, double timeout) {
    size_t hdr;
    uint64_t n;
    if (buf) *buf = NULL;
    if (!c || !(c->flags & MP_CONN_READABLE) || !buf || !len) return MP_EINVAL;
    int64_t deadline = mp__deadline(timeout);
    int r = mp__conn_wait_head(c, &hdr, &n, deadline);
    if (r == MP_ETOOBIG) *len = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
    if (r != MP_OK) return r;
    char *p = (char *)MP_MALLOC(n ? (size_t)n : 1);
    if (!p) return MP_ENOMEM;
    r = mp__conn_take(c, p, (size_t)n, len, deadline);
    if (r != MP_OK) {
        MP_FREE(p);
        return r;
    }
    *buf = p;
    return MP_OK;
}

MPDEF int mp_conn_poll(mp_conn *c, double timeout) {
    if (!c || !(c->flags & MP_CONN_READABLE)) return MP_EINVAL;
    int64_t deadline = mp__deadline(timeout);
    while (!mp__conn_ready(c)) {
        int r = mp__conn_pump(c, deadline);
        if (r != MP_OK) return r;
    }
    return MP_OK;
}

/* --- waiting on many fds --- */

/* One pass: ready[i] for conns with a message buffered, then poll(2) the rest once. */
static int mp__wait_pass(const int *fds, size_t n, bool *ready, mp_conn **cs,
                         struct pollfd *p, int64_t deadline) {
    size_t i;
    int count = 0;
    for (i = 0; i < n; i++) {
        ready[i] = cs[i] && mp__conn_ready(cs[i]);
        count += ready[i];
        p[i].fd = fds[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    if (count) return count;
    int r = poll(p, (nfds_t)n, mp__poll_ms(deadline));
    if (r < 0) return errno == EINTR ? 0 : MP_ESYS;
    for (i = 0; i < n && r > 0; i++) {
        if (!p[i].revents) continue;
        if (p[i].revents & POLLNVAL) return MP_EINVAL;
        /* a conn counts once a whole message is in; a failed read is left to recv */
        int pr = cs[i] ? mp__conn_pump(cs[i], mp__now_ns()) : MP_OK;
        ready[i] = !cs[i] || (pr == MP_OK ? mp__conn_ready(cs[i]) : pr != MP_ETIMEDOUT);
        count += ready[i];
    }
    return count;
}

MPDEF int mp_wait(const int *fds, size_t n, bool *ready, double timeout) {
    size_t i;
    if (!fds || !ready || n == 0 || n > (size_t)INT_MAX) return MP_EINVAL;
    for (i = 0; i < n; i++)
        if (fds[i] < 0) return MP_EINVAL;
    int64_t deadline = mp__deadline(timeout);
    struct pollfd pstack[16];
    mp_conn *cstack[16];
    struct pollfd *p = pstack;
    mp_conn **cs = cstack;
    if (n > 16) {
        p = (struct pollfd *)MP_MALLOC(n * sizeof *p);
        cs = (mp_conn **)MP_MALLOC(n * sizeof *cs);
    }
    int rc = MP_ENOMEM;
    if (p && cs) {
        mp__conn_lock(); /* readable conns of this process, by fd */
        for (i = 0; i < n; i++) {
            mp_conn *c = (size_t)fds[i] < mp__conn_ntab ? mp__conn_tab[fds[i]] : NULL;
            cs[i] = c && (c->flags & MP_CONN_READABLE) ? c : NULL;
        }
        mp__conn_unlock();
        do rc = mp__wait_pass(fds, n, ready, cs, p, deadline);
        while (rc == 0 && mp__now_ns() < deadline);
        if (rc == 0) rc = MP_ETIMEDOUT;
    }
    if (p != pstack) MP_FREE(p);
    if (cs != cstack) MP_FREE(cs);
    return rc;
}


// >>queue ------------------------------------------------------------------------

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
