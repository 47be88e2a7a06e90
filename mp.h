/* mp.h - v0.1.0 - MIT or public domain - Python's multiprocessing for C on Linux

   Processes, pipes, queues (unbounded or bounded), locks, semaphores, events,
   conditions, barriers, shared memory and a worker pool, all living in one shared
   memory region that every process of the family maps at the same address. Python's
   names and semantics, futex-based waits, and robustness: a process killed at any
   moment (SIGKILL included) never wedges the others.

   Do this:
      #define MP_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Include mp.h first in that file (it defines _GNU_SOURCE for the implementation),
   or compile that file with -D_GNU_SOURCE. That file then also sees the libc headers
   the implementation includes (<unistd.h>, <signal.h>, <sys/socket.h>, <pthread.h>,
   <stdio.h>...): a function of yours named send, kill, pipe, wait or close in it
   clashes with libc's, so rename it or keep your code out of that file.

      // i.e. it should look like this:
      #define MP_IMPLEMENTATION
      #include "mp.h"
      #include <stdio.h>

   Build with -pthread. Linux only. No other dependency.

   QUICK START (cut from examples/process_basics.c; build it with
   cc -std=c11 -Wall -Wextra -Werror -I. examples/process_basics.c -pthread)

      #define MP_IMPLEMENTATION
      #include "mp.h" // first: it sets up the feature macros the implementation needs
      #include <signal.h>
      #include <stdint.h>
      #include <stdio.h>
      #include <unistd.h>

      static int fail(const char *what, int rc) {
          fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
          return 1;
      }

      static int worker(void *arg) {                 // arg: the child's copy (arg_size)
          printf("worker %s (%s): pid %d, parent %d\n", (const char *)arg,
                 mp_process_name(mp_current_process()), (int)getpid(), (int)mp_parent_pid());
          return 0;                                  // the exit code
      }
      ...
      int main(void) {
          setvbuf(stdout, NULL, _IOLBF, 0);          // whole lines in order, even into a pipe
          int rc;
          printf("main: pid %d, %d cpus\n", (int)getpid(), mp_cpu_count());

          char name[] = "one";
          mp_process_desc d = { .target = worker, .arg = name, .arg_size = sizeof name };
          mp_process *p = mp_process_create(&d);
          if (!p) { perror("mp_process_create"); return 1; }
          if ((rc = mp_process_start(p)) != MP_OK) return fail("start", rc);
          if ((rc = mp_process_join(p, MP_FOREVER)) != MP_OK) return fail("join", rc);
          printf("%s: exitcode %d\n", mp_process_name(p), mp_process_exitcode(p));
          mp_process_destroy(p);
      ...
          return 0;
      }

   From C++ (cut from examples/cplusplus.cpp; C++11 has no designated initializers:
   zero a desc with {} and assign its fields; a string literal needs a cast to void *):

          mp_process_desc d = {};                    // every field zero: the defaults
          d.target = greet;
          d.arg = const_cast<char *>("hello from C++"); // copied at create: arg_size
          d.arg_size = std::strlen("hello from C++") + 1;
          mp_process *p = mp_process_create(&d);

   A SHORT TOUR (seventeen complete programs are in examples/; README.md maps every
   Python name to its mp.h counterpart)

      Python's verbs become mp_<type>_<verb>; keyword arguments a *_desc struct whose
      zero fields mean "default"; timeouts are double seconds (MP_FOREVER blocks, 0
      tries once); failures are negative MP_E... codes (mp_strerror gives the text).
      Objects live in the shared heap, so a pointer works in every process forked
      after mp_init (or the first mp call). Messages are bytes: copy a struct in,
      copy it out.

      Shared data and a lock (cut from examples/shared_value_array.c):

          typedef struct {          // a counter and the lock that guards it
              volatile long value;  // volatile: every read and write really happens
              mp_lock *lock;
          ...
                      rc = mp_lock_acquire(c->lock, MP_FOREVER);
                      if (rc != MP_OK && rc != MP_EOWNERDEAD) return 1;
                  }
                  long v = c->value;   // read, think a little (as Python would), write back
                  for (volatile int k = 0; k < 10; k++) {}
                  c->value = v + 1;
                  if (c->use_lock) mp_lock_release(c->lock);

      A bounded queue between processes (cut from examples/queue_producers.c):

          int rc = mp_queue_put(q, msg, (size_t)len, MP_FOREVER);   // waits while 3 are held
          ...
          int rc = mp_queue_get(q, msg, sizeof msg, &len, MP_FOREVER);
          ...
          mp_queue_desc qd = { .maxsize = 3 };
          if (!(q = mp_queue_create(&qd)) || !(print_lock = mp_lock_create())) {

      A pool (cut from examples/pool_squares.c):

          static int square(const void *in, void *out) {
              int x = *(const int *)in;
              *(int *)out = x * x;
              return 0;
          }
          ...
          mp_pool_desc pd = { .processes = 5 };
          mp_pool *pool = mp_pool_create(&pd);
          ...
          mp_map_desc md = { .fn = square, .in = numbers, .in_size = sizeof(int),
                             .out = squares, .out_size = sizeof(int), .n = 10 };
          int rc = mp_pool_map(pool, &md);
          ...
          mp_pool_close(pool);                 // no more tasks
          if ((rc = mp_pool_join(pool, MP_FOREVER)) != MP_OK) return fail("mp_pool_join", rc);
          mp_pool_destroy(pool);

   CONFIGURATION MACROS (define before including mp.h with MP_IMPLEMENTATION)

      MP_STATIC               make every public function static (private to one file;
                              with gcc and clang the ones you do not call raise no
                              unused-function warning, -Wall -Werror builds stay clean)
      MP_ASSERT(x)            internal invariant checks (default: assert(x))
      MP_MALLOC(n), MP_FREE(p)
                              process-private memory (handles such as mp_conn, mp_shm,
                              buffers of *_alloc functions); define both or neither
      MP_DEFAULT_HEAP_SIZE    bytes of address space reserved for the shared heap
                              when mp_init is given none (default 1 GiB; pages are
                              committed only when touched)

   CHAPTERS

      ERRORS                    every function's failure codes
      THE SHARED HEAP           mp_init, mp_alloc, mp_calloc, mp_realloc, mp_free,
                                mp_heap_stats_get
      ON FORK AND THREADS       what crosses a fork, what must precede it
      PROCESSES                 mp_process_*, mp_active_children, mp_current_process
      SYNCHRONIZATION           locks, semaphores, events, conditions, barriers
      CONNECTIONS               mp_pipe, mp_conn_*, mp_wait
      LISTENERS AND CLIENTS     mp_listener_*, mp_client: by address, with an authkey
      QUEUES                    mp_queue_*
      NAMED SHARED MEMORY       mp_shm_*
      UNRELATED PROGRAMS        mp_name_*, the named heap (mp_config.name), mp_heap_unlink
      THE POOL                  mp_pool_*, mp_imap_*, mp_async_*
      SHARED CONTAINERS AND THE MANAGER
                                mp_dict_*, mp_list_*, mp_manager_*, mp_value_*
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
      MP_EPERM        release of a lock this process/thread does not own; a call
                      reserved to an object's owner process (a pool's creator, a
                      process record's creator) made from another process
      MP_EOVERFLOW    bounded semaphore released too often; task_done called too often
      MP_ENOMEM       shared heap or memory exhausted
      MP_EINVAL       bad argument, or object in the wrong state (each function's
                      comment below names the states it refuses)
      MP_ESYS         a system call failed; errno holds the cause
      MP_EAUTH        authentication failed (Listener/Client): wrong key, or a peer
                      that broke the handshake
      MP_ENOTFOUND    no such key, index or name (mp_name_*, the containers)

      Timeouts are double seconds: MP_FOREVER (any negative value) blocks, 0 tries
      once, anything else is a deadline on CLOCK_MONOTONIC. A signal never ends a
      wait early (EINTR restarts with the time that is left).

   THE SHARED HEAP

      mp_init reserves one MAP_SHARED|MAP_ANONYMOUS|MAP_NORESERVE region (it happens
      by itself on first use; a named heap, shared by unrelated programs, is a shared
      memory object instead: see UNRELATED PROGRAMS). Every process forked afterwards sees it at the same
      address, so a pointer into the heap means the same thing in every process of the
      family: an object a child creates after the fork can be handed to its parent or
      siblings through a queue. All mp objects but connections and named shared memory
      live there; mp_alloc/mp_calloc/mp_free give you blocks of it for your own shared
      data (Python's Value/Array are a struct in the heap, plus an mp_lock if needed).

      Allocation takes a size class (32-byte steps up to 512 bytes, then four classes
      per power of two), pops a free block of that class or cuts a new one from the
      top; no system call. Freed blocks are reused for their class, and once the top
      is used up a free block of a larger class serves a smaller request whole (blocks
      are never split or merged: memory freed in small classes cannot serve a larger
      request). mp_realloc keeps the block when its class holds the new size (so a
      shrink never moves) and moves it otherwise. Memory is not given back to the
      system while the family lives. The heap lock is an mp lock:
      a process killed inside mp_alloc/mp_free leaks at most the block it was moving,
      and the others go on.

   ON FORK AND THREADS

      - Call mp_init (or any mp function) before the first fork: a heap created
        after a fork is private to the process that created it.
      - Processes are started with fork() (or by the forkserver: see below); the
        child runs the target and leaves with
        _exit after flushing stdio, so the parent's atexit handlers never run in it
        (unless the target itself calls exit(): return from the target instead).
        Buffered stdio is flushed before the fork, so nothing prints twice.
      - Output order: stdout into a pipe or a file is fully buffered by stdio, so a
        process's lines come out when its buffer fills or it exits (a parent's may
        come after its children's). mp.h does not change the buffering; the examples
        call setvbuf(stdout, NULL, _IOLBF, 0) at the top of main (children inherit
        it), which writes each line when it ends, or fflush(stdout) where order
        matters.
      - Only the thread that calls mp_process_start exists in the child, as with any
        fork. mp's own process-private state is reset in the child.
      - Every mp object in the heap may be used from any thread of any process of
        the family. Connections (mp_conn) are per-process handles, like FILE *.

      Start methods. fork (MP_START_FORK, the default) copies the calling process as
      it is at mp_process_start: its memory, its fds, and every lock its other threads
      hold at that instant - which stay locked forever in the child, since those
      threads do not exist there. mp's own locks survive that (they are robust), but a
      library's plain pthread mutex (a logging library, malloc in some libcs, OpenMP,
      a gRPC or CUDA runtime) does not: a child that touches it hangs. Python 3.12
      warns about forking a threaded process, and 3.14 made forkserver its default on
      Linux for this reason.

      MP_START_FORKSERVER makes mp_init fork a small server while the program is
      still single-threaded; every process is then forked by that server, so no
      other thread's lock is held in the child. Ask for it first thing in main:

         mp_config cfg = { .start_method = MP_START_FORKSERVER };
         if (mp_init(&cfg) != MP_OK) ...   // then start threads, libraries...

      A process desc or pool desc may still say MP_START_FORK (or, with the server
      running, MP_START_FORKSERVER) for itself; 0 means the program's method
      (mp_get_start_method). Semantics are fork's: pid, join with a timeout,
      is_alive, exit codes, terminate/kill, the sentinel for mp_wait, names, daemons
      (terminated at normal exit; killed when their parent dies - the server watches
      the parents), mp_active_children, mp_parent_pid (the process that asked, not
      the server), pool workers and their replacements. What differs, as in Python:
      - The child is a fork of the server, made at mp_init: the requester's globals,
        private heap (malloc), fds and environment as they are at start are not
        there. What it gets: the target (a function of the same binary), its
        argument - copied into the record with arg_size, or a pointer into the
        shared heap - the shared heap itself, and the requester's stdin, stdout and
        stderr as they are at start. Find anything else through the heap (a block
        you pass, or mp_name_get).
      - The child is the server's child: a SIGCHLD handler of yours does not see it,
        and waitpid on its pid fails; use mp_process_join. The server runs as the
        user who called mp_init: a process that changed its uid since is refused
        (MP_ESYS, errno EPERM), as are limits like RLIMIT_NPROC of the requester
        (the server's apply). Each start costs two messages on a socketpair.
      - The server is private: its socket is a socketpair that only the family
        inherits (no address anyone else could connect to), close-on-exec, and it
        checks the kernel's credentials of every request against its own uid.
      - If the server dies (it is killed, say), later starts fail cleanly with
        MP_ESYS and errno EPIPE - it is not restarted, since a new fork of a threaded
        program is what it exists to avoid - and running children go on: a join
        ends when they do, with exit code MP_EXITCODE_LOST. It leaves by itself once
        the process that called mp_init is gone and all its children ended.

   PROCESSES

      Python's Process: create (not started), start, join with a timeout, is_alive,
      terminate (SIGTERM), kill (SIGKILL), exitcode (N for exit status N, -S for
      signal S, MP_EXITCODE_NONE while running), pid, name ("Process-N", or
      "Process-N:M" for grandchildren), a sentinel fd (a pidfd) readable once the
      process ended, usable with poll(2) or mp_wait.

      The argument. With arg_size 0, target gets arg as is, and the child reads what
      it points to as it is at mp_process_start (the fork copies the parent's memory
      then), not at create: right for a pointer into the shared heap (the child sees
      later changes) and for data that no longer changes. With arg_size > 0, the
      arg_size bytes at arg are copied into the process record at create and target
      gets that copy (Python's args): use it whenever the bytes change before start -
      a loop variable, a buffer reused for the next process. The pool's
      initarg/initarg_size work the same way for every worker, replacements included.

      Daemon children are terminated (SIGTERM) and joined when their parent exits
      normally (returns from main or calls exit), and also die (SIGKILL, through
      PR_SET_PDEATHSIG) if the parent is killed - provided the parent started them
      from its main thread, since the kernel ties that signal to the starting thread.
      Non-daemon children are joined at normal exit, as Python does.

      Only the creating process may start, join, reap or destroy a process (elsewhere
      these return MP_EPERM).

   NAMED SHARED MEMORY

      mp_shm_open(name, size, flags) maps a POSIX shared memory object (shm_open)
      that processes not forked from one another can share by name. Created with
      mode 0600 and sized with posix_fallocate, so a full /dev/shm is an error at
      open time (errno ENOSPC), not a SIGBUS later. These are raw bytes; to share mp
      objects (queues, locks...) between such programs, use a named heap.

   UNRELATED PROGRAMS

      Names. mp_name_set(name, obj) registers any object of the heap (a queue, a lock,
      a block of your own) under a name of 1 to 255 bytes; mp_name_get(name) finds it
      from any process; mp_name_del removes the name. mp_name_setdefault registers
      unless the name is taken and returns the object the name stands for, so two
      processes that race to create one object agree on it. The registry is robust: a
      process killed inside a call leaves it consistent.

      The named heap. mp_init with cfg.name creates the heap as a POSIX shared memory
      object of that name, or attaches to it if it exists, so programs not forked from
      one another - a daemon and its tools, two services - share every kind of mp
      object at memory speed, and find them through the registry (cut from
      examples/named_heap.c):

          mp_config cfg = { .name = argv[2] };   // create or attach the named heap
          int rc = mp_init(&cfg);
          ...
          mp_queue *q = (mp_queue *)mp_name_get("jobs");
          if (q) return q;
          mp_queue *mine = mp_queue_create(NULL);
          if (!mine) return NULL;
          q = (mp_queue *)mp_name_setdefault("jobs", mine);   // another may have won the race
          if (q != mine) mp_queue_destroy(mine);

      - Same address everywhere. The creator maps the heap at an address it records in
        the heap's header; every program that attaches maps it at that address
        (MAP_FIXED_NOREPLACE, checked), so a pointer into the heap means the same in
        every program - also programs built from different sources. The address is one
        of 1024 slots, 16 GiB apart from 32 TiB up, picked by a hash of the name: far
        from where Linux puts programs, libraries, stacks and mmap (near 0x55... and
        0x7f...) and above ASan's shadow. If it is taken in the creator, the next slot
        serves; if it is taken in a program that attaches, mp_init fails with MP_ESYS
        and errno EEXIST (nothing else is changed: that program can go on without it).
      - Safe attach. Creation and attach are serialized by an flock on the object,
        which the kernel drops when its holder dies: a creator killed half way through
        is found by the next program (the header's magic is written last), which
        formats the heap anew instead of hanging. A heap of another layout version is
        MP_EINVAL with errno EPROTO; asking for a heap_size other than the heap's is
        MP_EINVAL with errno ERANGE (heap_size 0 takes the heap's own).
      - Permissions. The object is created with mode 0600 (cfg.mode for another, e.g.
        0660 for a group; applied exactly, whatever the umask). A program the mode
        forbids gets MP_ESYS with errno EACCES.
      - Memory. The object is backed as the heap's top grows, 4 MiB at a time
        (MADV_POPULATE_WRITE), so a full /dev/shm is MP_ENOMEM from mp_init or NULL
        with errno ENOMEM from mp_alloc - never a SIGBUS on first touch. (Kernels
        before 5.14 lack that advice; there the pages come on first touch.)
      - Lifetime. The heap lives while its name exists or a program maps it:
        mp_heap_unlink(name) removes the name (programs attached keep their heap); the
        next mp_init of that name then creates a fresh one.
      - Robustness across programs. A lock owner, a queue slot's owner or a barrier
        waiter is a thread id, checked as any other: a program SIGKILLed while
        attached never wedges the others, exactly as in a family.
      - What cannot cross. Function pointers and fds belong to one program: process
        targets, pool tasks and initializers, and a barrier's action (only its
        creator's program may wait on a barrier that has one: others get MP_EPERM).
        A process can be started, joined or destroyed only by the process that created
        it, and a pool used only by its owner (elsewhere an error); mp_conn handles
        are per process. A condition's predicate (mp_condition_wait_for) is the
        caller's own, so conditions cross freely. Each program may fork a family of its
        own on the named heap: its children share it too.

   SYNCHRONIZATION

      Python's Lock, RLock, Semaphore/BoundedSemaphore, Event, Condition and Barrier,
      living in the shared heap: create one before or after the fork, hand the pointer
      to any process of the family, use it from any thread. Each waits on a 32-bit
      futex word; the uncontended paths make no system call, wakes happen only when
      someone sleeps, deadlines are CLOCK_MONOTONIC, EINTR never shows.

         mp_lock *l = mp_lock_create();
         long *total = (long *)mp_calloc(1, sizeof *total);   // shared data
         ...                                                    // in any process:
         int rc = mp_lock_acquire(l, MP_FOREVER);
         if (rc == MP_EOWNERDEAD) repair(total);  // previous owner died inside
         *total += 1;
         mp_lock_release(l);

         mp_condition *c = mp_condition_create(NULL);           // with its own lock
         mp_condition_acquire(c, MP_FOREVER);
         while (!ready) mp_condition_wait(c, MP_FOREVER);       // or mp_condition_wait_for
         mp_condition_release(c);

      Locks. mp_lock is not re-entrant; mp_rlock is, per thread of a process (its
      owner is a thread id). Releasing a lock you do not hold is MP_EPERM (Python's
      multiprocessing.Lock lets another process release it; mp.h does not).
      Uncontended, acquire and release are one compare-and-swap each; contended, a
      short spin, then a futex sleep.

      Owner death. The lock word holds the owner's thread id. A waiter that has seen
      the same owner for 20 ms, and any acquire about to time out (timeout 0 included;
      a thread looks at a given owner at most once per 20 ms, so a failed try stays
      cheap), asks the kernel whether that thread still exists (kill(tid, 0), and
      /proc for zombies a blocked parent has not reaped yet); if not, it takes the
      lock over and gets MP_EOWNERDEAD: the lock is held by the caller, as with a
      robust pthread mutex, but there is no "consistent" step - repair the data, then
      use and release the lock as usual. A process killed holding a lock (SIGKILL
      included) is therefore noticed within about 20-40 ms by a waiter. The same holds
      for a thread that exits holding it. For an mp_rlock the depth becomes 1.

      Semaphore. mp_semaphore_create(value, 0) is Semaphore(value);
      mp_semaphore_create(n, n) is BoundedSemaphore(n): a release above max is
      MP_EOVERFLOW and changes nothing. A semaphore has no owner, so a process that
      dies after acquiring cannot be detected and its unit is lost (as in Python).

      Event. mp_event_wait returns MP_OK if the flag is set, or was set at any time
      since the wait began: a waiter sleeping when mp_event_set ran returns MP_OK even
      if mp_event_clear follows at once (a generation count in the word).

      Condition. Bound to an mp_lock (its own when created with NULL). wait, wait_for,
      notify and notify_all need that lock held by the caller (else MP_EPERM). Each
      waiter takes a slot with its own futex word and an arrival ticket; notify(n)
      flags the n oldest waiters and wakes them, so it wakes at most n, a notify with
      no waiter is lost, there are no spurious wakeups, and a waiter that times out
      leaves nothing behind. A waiter notified just as its time ran out returns MP_OK
      (the notify is not wasted). On timeout wait returns MP_ETIMEDOUT (Python's False)
      with the lock re-acquired. The lock is always re-acquired without time limit; if
      its owner died meanwhile, wait returns MP_EOWNERDEAD (notified or not: re-check
      the predicate). A waiter that dies while waiting is found when a notify reaches
      it (its wake finds no sleeper and the thread is gone): its slot is freed and the
      notify goes on to the next waiter, so the dead absorb nothing. One killed after
      being notified has consumed that notify, like any waiter that got it.

      Barrier. mp_barrier_wait returns MP_OK and the arrival index 0..parties-1; the
      last to arrive (index parties-1) runs the action, with the barrier's internal
      lock held, before the others are released. MP_EBROKEN for every waiter when the
      barrier is aborted, reset while they wait, when one waiter's timeout expires
      (the timeout breaks it for everyone, as in Python; timeout 0 breaks it at once
      unless the caller is the last party), or when a waiter died: sleepers check each
      other's thread ids every 100 ms, so a party killed inside mp_barrier_wait breaks
      the barrier for the others within about 100-200 ms, and the arrival that would
      complete the round checks the parties it is about to release (a dead one has not
      arrived: that arrival gets MP_EBROKEN too, and the action does not run). A broken barrier stays broken
      (new callers get MP_EBROKEN at once) until mp_barrier_reset. A party that never
      arrives cannot be told from a slow one: use a timeout. Rounds follow one another
      without a drain phase; a waiter must run again within 64 rounds of its release to
      read its round's outcome correctly, which always holds when no more than parties
      processes use the barrier.

      Robustness and limits. Every sleeper re-checks its word at least every 100 ms
      (the lock's waiters every 20 ms), so a process killed between changing a word
      and waking the sleepers delays them by that much at most. Owner checks rely on
      thread ids: if the kernel hands a dead owner's id to a new thread before anyone
      noticed (pid_max ids must be used up first), the lock looks held until that
      thread exits. A semaphore waiter killed while asleep leaves its sleeper count
      behind: later releases then make one needless FUTEX_WAKE each. Destroying an
      object marks it, so later calls return MP_EINVAL as long as its memory has not
      been reused; destroying an object others still use is an error the library
      cannot always catch.

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

      Waiting to receive. A receive that finds nothing polls the fd for a few tens of
      microseconds (yielding the CPU between tries, so a peer on the same CPU runs)
      before it sleeps in the kernel: on a VM, waking a sleeping reader from another
      CPU costs 50-100 us, so a peer that answers at once (a served call, a ping-pong)
      is answered without that wakeup - round trips across CPUs 8-27x faster than
      plain read(2) on the 2-vCPU VM of the README. The time polled adapts per conn:
      a peer that is slow to answer (over about 0.25 ms) shrinks it to a microsecond
      or so per sleep, so a reader that waits long burns next to nothing. mp_conn_poll
      waits the same way; a timeout of 0 never polls, and mp_wait sleeps at once.

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
      that. Every fd ready at the call is reported, as Python's wait returns every
      ready object, so a conn its peer floods never starves the others. Do not close a
      conn another thread is waiting on.

   LISTENERS AND CLIENTS

      Python's multiprocessing.connection.Listener and Client: connections between
      processes that are not one family - unrelated programs on one machine over a
      Unix socket, or two machines over TCP - authenticated with a shared authkey by
      Python's own handshake, byte for byte, so either side may be a Python program
      (3.11 or 3.12+). The connection you get is an ordinary mp_conn: send, recv,
      poll and mp_wait work on it as on a pipe, and the listener's fd goes into mp_wait
      too (readable when a client waits). A server and a client
      (cut from examples/listener_client.c):

          mp_listener_desc d = { .address = address, .authkey = authkey,
                                 .authkey_len = sizeof authkey - 1 };
          mp_listener *l = mp_listener_create(&d);       // NULL + errno (EADDRINUSE...)
          ...
              fds[0] = mp_listener_fileno(l);            // readable: a client is waiting
              for (int i = 0; i < n; i++) fds[1 + i] = mp_conn_fileno(conn[i]);
              int rc = mp_wait(fds, (size_t)(1 + n), ready, MP_FOREVER);
              ...
                  rc = mp_listener_accept(l, &c, 0);     // the handshake runs here
          ...
          mp_client_desc d = { .address = address, .authkey = key, .authkey_len = strlen(key) };
          mp_conn *c;
          int rc = mp_client(&d, &c);

      Addresses are strings. "/path.sock", "./rel.sock", "../rel.sock": a Unix socket
      file, created mode 0600 and removed by mp_listener_close in the process that
      created the listener (not by a forked copy, and not if someone replaced it);
      NULL: a fresh file in a private 0700 directory, both removed on close (Python's
      arbitrary_address). "@name": Linux's abstract namespace (Python's "\0name").
      "host:port", "[v6addr]:port": TCP, the host a name or a numeric address, empty
      for any address when listening; port 0 picks a free port, and
      mp_listener_address tells which ("127.0.0.1:40123"). TCP connections get
      TCP_NODELAY. Abstract names and TCP ports have no file permissions, so a
      listener there needs an authkey unless desc.allow_unauthenticated says
      otherwise (abstract sockets: CVE-2022-42919).

      The handshake. With an authkey, accept challenges first and then answers the
      client's challenge; the client does the reverse; each message is one frame. mp
      challenges as Python 3.12+ does: "#CHALLENGE#" + "{sha256}" + 40 bytes from
      getrandom, and takes "{sha256}" + HMAC-SHA256 of all that follows "#CHALLENGE#",
      "{md5}" + HMAC-MD5 of it, or a bare 16-byte HMAC-MD5 of it (a 3.11 client's
      answer), exactly what Python 3.12+ takes but sha384/sha3. It answers Python 3.11's
      20-byte challenge with a bare HMAC-MD5 and a "{digest}" one with that digest (md5
      or sha256). Digests are compared in constant time. The verdict is "#WELCOME#"
      or "#FAILURE#". Without an authkey there is no handshake, as in Python. The
      bytes and their order are Python's, but mp merges writes where no peer can
      wait on it: a client sends its own challenge with its answer (a listener reads
      one frame at a time), and a listener that already has that challenge sends
      "#WELCOME#" with its answer - two trips fewer between mp sides.

      Hostile peers. Each handshake message is read with Python's limit of 256 bytes
      (a header announcing more is refused before anything is allocated), under a
      deadline: handshake_timeout for accept (10 s; whatever the accept timeout), the
      client's timeout for mp_client (connect and handshake together). A client that
      fails - wrong key, protocol error, closed, silent past the deadline - is closed
      and accept returns MP_EAUTH for it; the listener goes on. Nothing a client sends
      before the handshake ends is ever delivered as a message; what it sends after
      its "#WELCOME#" is kept for the first recv. Out of fds, accept is MP_ESYS with
      errno EMFILE and the client stays queued. mp_client: refused or reset is
      MP_ECLOSED, a missing socket file MP_ESYS (ENOENT), out of time MP_ETIMEDOUT.

      Limits. accept runs one handshake at a time, in the caller's thread: a slow
      client delays the next one by up to handshake_timeout. Messages are bytes (no
      pickled objects). A listener is a process-private handle like a conn; a forked
      child may accept on its copy.

   QUEUES

      mp_queue is Python's Queue, JoinableQueue and SimpleQueue in one: a queue of
      byte messages for any number of producer and consumer processes and threads,
      living in the shared heap. There is no feeder thread and no pipe: put copies the
      message into a slot of a ring, get copies it out, and neither makes a system
      call unless the other side sleeps. Create it before or after the fork; hand it
      to others by pointer (through another queue, say). mp_queue_create(NULL) is
      Python's Queue(): unbounded. Give maxsize (or capacity) for Queue(maxsize).

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

      Unbounded (maxsize 0 and capacity 0, or a NULL desc). The ring has the default
      4096 slots; a put that finds it full - or finds messages already waiting - links
      its message, copied into a heap node, to the end of an overflow list (a robust
      lock word guards it; no put waits for a getter). Getters move the oldest nodes
      into the ring as they free slots, so the ring keeps the oldest messages and the
      order is kept. What it costs: a heap node (32 bytes plus the message, or plus a
      block for one above a slot) per message held beyond the ring, and a lock per
      such put and per move. A put fails only when the heap is full (MP_ENOMEM); give
      a maxsize if producers may outrun consumers for long. qsize counts both parts;
      full is always false; reserve waits for a ring slot and for the overflow to
      drain (it must not pass messages already waiting).

      The cost of a big ring: capacity bytes of heap (rounded up to the heap's size
      class, at most 25% more) taken at create, whose pages are touched then (every
      slot is stamped with its position): about 0.7 ms per MiB, nearly all of it page
      faults, on a 2-vCPU VM (a 64 MiB ring: 80 MiB of heap and 45 ms; more on a
      loaded machine); given back to the heap with the queue. An unbounded queue
      needs no big ring: its default one is 1 MiB.

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
        empty) queue past the deadline is MP_ETIMEDOUT. A put on an unbounded queue
        never waits.
      - mp_queue_get with a buffer too small: MP_ETOOBIG with *len = the size needed;
        the message stays queued (another getter may take it meanwhile).
        mp_queue_get_alloc allocates the right size instead.
      - mp_queue_close: later puts fail with MP_ECLOSED; gets return what is left,
        then MP_ECLOSED; blocked getters and putters wake up at once. It closes the
        queue for every process, as Python 3.13's Queue.shutdown() does - not as
        Queue.close(), which only says "this process will put no more" and which
        mp.h does not need (there is no feeder thread to stop): call it once, when
        every producer is done, never at the end of each producer.
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
      every 20 ms whether the owner lives - and so does a call about to give up
      (timeout 0 or a short timeout: a consumer that polls recovers the slot too; each
      thread looks at a given live owner at most once per 20 ms, so polling stays
      cheap). A dead writer's slot is
      skipped (its message is lost), a dead reader's slot is freed (the message it
      was taking is lost). Nothing is duplicated and nothing else is lost or
      corrupted; the heap block of a lost large message leaks. Sleepers therefore
      wake every 20 ms to look. A process killed after get but before task_done
      leaves join waiting, as in Python: give join a timeout if workers may die.

      Limits. maxsize up to 2^30. A recycled thread id (pid_max is often 32768)
      makes a dead owner look alive until that new thread ends. mp_queue_destroy only
      when no one uses the queue any more.

   THE POOL

      Python's multiprocessing.Pool: worker processes forked by mp_pool_create that
      run map, imap (ordered or unordered) and apply_async tasks. Unlike Python's, a
      worker that dies (killed, crashed) fails only the task it was running, with
      MP_EWORKERDIED and its exit code, and is replaced; nothing ever hangs.

         static int square(const void *in, void *out) {
             int64_t x = *(const int64_t *)in;
             *(int64_t *)out = x * x;
             return 0;                               // non-zero fails this item
         }
         ...
         mp_pool *pool = mp_pool_create(NULL);       // mp_cpu_count() workers
         mp_map_desc m = { .fn = square, .in = xs, .in_size = sizeof(int64_t),
                           .out = ys, .out_size = sizeof(int64_t), .n = n,
                           .progress = mp_progress_bar, .progress_arg = "squares" };
         int rc = mp_pool_map(pool, &m);             // ys[i] = xs[i]^2, in order
         mp_async *r = mp_pool_apply_async(pool, task, &arg, sizeof arg);
         rc = mp_async_get(r, buf, sizeof buf, &len, 5.0);
         mp_async_destroy(r);
         mp_pool_close(pool);
         mp_pool_join(pool, MP_FOREVER);
         mp_pool_destroy(pool);

      Data: functions are pointers into the one binary (no pickling). map/imap copy
      the input array into the shared heap (map uses it in place when it already is
      there); workers write results straight into a shared out array by index and map
      copies it to d->out at the end. apply_async copies arg_len bytes of argument;
      the task writes up to max_result bytes (default 64 KiB) of result. So the
      caller's buffers need not exist in the workers.

      Variable-size results: an imap whose mp_map_desc has .task (an mp_task_fn, as
      apply_async takes) instead of .fn gives each item a result of its own size, up
      to .max_result bytes (default the pool's), kept in a heap block until
      mp_imap_next_alloc hands it over in a private buffer - Python's imap of a
      function that returns a str or a list.

      Blocking and waiting: mp_pool_apply is apply_async + get. mp_pool_map_async is
      a map whose handle is an mp_async: the results reach d->out when a call on the
      handle (wait, get, ready, wait_any) sees the map finished, so d->out and
      d->failure must live until then (the desc itself is copied). mp_async_wait_any
      returns the index of a finished handle: concurrent.futures.wait(...,
      FIRST_COMPLETED), and as_completed when called in a loop.

      Tasks: map work is cut into chunks (chunksize, default ceil(n / (4 *
      processes)) for map and 1 for imap, as Python); a chunk is one task. A failing
      item (fn returned non-zero) never stops the others: map returns the lowest
      index's failure and fills d->failure if given (index, code, count); imap
      returns each item's own code (mp_imap_code). If a worker dies, every item of
      its chunk fails with MP_EWORKERDIED (chunksize 1 isolates items).

      Owner: the process that created the pool is its owner; only it may map, imap,
      apply, get/wait results, close, join, terminate and destroy (MP_EPERM, or no
      effect for the void functions, elsewhere), from any of its threads. The owner
      reaps and replaces workers while it waits (a dead worker is noticed within 20 ms
      of waiting) and when it submits (retired workers), so a pool nobody waits on
      just keeps its queue. maxtasksperchild retires a worker after that many tasks; a fresh one
      takes its place. An initializer runs once in every worker, replacements
      included; if it fails at creation mp_pool_create fails (ECHILD); a replacement
      whose initializer fails is not restarted, and a pool left without workers
      cancels its tasks.

      Ending: close stops new tasks and lets the queue drain; join waits for the
      workers (after close or terminate; MP_EINVAL before). terminate stops now:
      workers get SIGTERM, SIGKILL after 200 ms, and every unfinished task - queued
      or running - reports MP_ECANCELLED. destroy terminates a pool that still has
      workers (Python's `with Pool() as p:`), so close + join first to finish the
      queue. Results (mp_async, mp_imap) outlive the pool; destroy them yourself.

      Speed: no system call per task while workers are busy - the queue is a list
      under a robust lock word, idle workers spin briefly before a futex sleep and
      are woken only when asleep; the owner likewise sleeps on an eventcount only
      after a short spin.

      Progress: d->progress(done, total, arg) is called by the owner with done 0 as
      the job starts, then as chunks finish (done == total last), one call at a time
      even when several of its threads wait on one map_async handle, so the callback
      needs no lock of its own. mp_progress_bar is a ready-made one that draws
      "label: 45%|#########           | 450/1000 [00:02<00:03, 210.5/s]" on stderr
      when stderr is a terminal (the C answer to tqdm(pool.imap(...))).

      Limits: at most 1024 workers; map item sizes and counts must fit size_t
      products; a result above max_result fails with MP_ETOOBIG. Workers are forked
      by the owner at creation and when replacing, so they see the owner's memory as
      it was then: pass data through the inputs, the initializer or the shared heap.

      Signals: workers are forked, so they inherit the owner's signal dispositions
      as they were at creation. Ctrl-C sends SIGINT to the whole process group:
      workers that still have the default action die, their tasks fail with
      MP_EWORKERDIED and they are replaced (the owner's own handler, if any, runs;
      its waits never return EINTR). To ride through SIGINT, install the handler
      before mp_pool_create, or ignore SIGINT in an initializer. A user's SIGCHLD
      handler that reaps children is harmless: worker deaths are still seen.

   SHARED CONTAINERS AND THE MANAGER

      mp_dict and mp_list are Python's dict and list of byte strings. mp_dict_create
      and mp_list_create put one in the shared heap: every thread of every process of
      the family (and every program attached to a named heap) uses it at memory speed,
      under one robust lock per container, held for a probe and a copy only. Keys and
      values are bytes of any size, 0 included; a missing key or index is
      MP_ENOTFOUND, a negative index counts from the end, get copies out (MP_ETOOBIG
      with the size when the buffer is short, as queues do), items runs a callback on
      a snapshot. A process killed inside a verb leaves the container consistent: each
      change is built aside and committed by one store (see ROBUSTNESS).

      Python's Manager is a server process that owns objects and serves them to any
      process that can reach its address and holds its authkey - a forked child, an
      unrelated program, another machine. mp_manager_start forks one (a daemon: it dies
      with its starter) and mp_manager_connect reaches one from anywhere; both give an
      mp_manager, and mp_manager_dict / mp_manager_list give handles on its named
      objects (created if absent) that the very same mp_dict_* and mp_list_* verbs take:
      a program written against a local dict works against a served one by changing
      its constructor. Python's Manager().Value and Array are one thing here: a named
      block of fixed size, read and written whole or by byte range, each call atomic
      under the server's lock (mp_manager_value, mp_value_read, mp_value_write). The
      tutorial's program (cut from examples/manager.c):

          static int f(void *arg) {   // the child: changes all three by name
              shared *s = (shared *)arg;
              double pi = 3.14;
              int five = 5;
              int rc = mp_value_write(s->num, 0, &pi, sizeof pi);            // num.value = 3.14
              if (rc == MP_OK) rc = mp_value_write(s->arr, 0, &five, sizeof five); // arr[0] = 5
              if (rc == MP_OK) rc = mp_list_append(s->l, "Hello", 5);         // l.append("Hello")
          ...
          mp_manager_desc md = { 0 };                 // a private socket file, no key
          mp_manager *server = mp_manager_start(&md); // forks the server process
          ...
          shared s = { mp_manager_value(server, "num", sizeof(double)),
                       mp_manager_value(server, "arr", 10 * sizeof(int)),
                       mp_manager_list(server, "l") };
          ...
          mp_value_read(s.arr, 0, arr, sizeof arr);   // the whole array in one round trip
          ...
          mp_manager_shutdown(server);                // stops and joins the server

      Addresses, authkeys, the handshake and the hostile-peer rules are the Listener's
      and Client's (LISTENERS AND CLIENTS): a Unix socket file by default, "host:port"
      between machines (with an authkey). Every served verb is one round trip; the
      server runs a thread per client connection, so clients never wait behind each
      other's round trips. A handle is process-private memory, like a conn: it may be
      used from several threads at once (a manager keeps a pool of connections, one
      per thread in a call), and a forked child that uses a handle it inherited gets
      its own connection without being told (Python's proxies do not survive a fork).
      Served verbs can also return MP_ECLOSED (the server is gone: a call returns it at
      once, never hangs), MP_ETIMEDOUT (no answer within desc.timeout, 10 s) and
      MP_ESYS. A client killed mid-request costs the server that connection only, and
      holds no lock there: every request runs whole inside the server. A malformed
      request gets an error answer; a client without the key never reaches an object.

      PROTOCOL. Python's Manager speaks pickle; wire compatibility with it is not a
      goal. mp's is this, inside Python's framing (each request and each answer is one
      Connection message, after the Listener/Client handshake). Integers are unsigned
      big-endian unless said otherwise. A request is: u8 opcode, u32 object id (0 for
      OPEN and SHUTDOWN), then the opcode's fields. An answer is: i32 status (MP_OK or
      an MP_E... code), then, for MP_OK, the opcode's payload; MP_ETOOBIG carries a u64,
      the size needed; other errors carry nothing.

          op  name         request fields                  answer payload
           1  OPEN         u8 kind (1 dict, 2 list,        u32 id, u64 size
                           3 value), u64 size (a value's;
                           else 0), name (1-255 bytes)
           2  DICT_SET     u64 klen, key, value
           3  DICT_GET     u64 cap, key                    the value
           4  DICT_DEL     key
           5  DICT_LEN     -                               u64 count
           6  DICT_ITEMS   -                               per item: u64 klen, key,
                                                           u64 vlen, value
           7  LIST_APPEND  value
           8  LIST_GET     i64 index, u64 cap              the item
           9  LIST_SET     i64 index, value
          10  LIST_POP     i64 index, u64 cap              the item
          11  LIST_LEN     -                               u64 count
          12  LIST_ITEMS   -                               per item: u64 len, item
          13  VALUE_READ   u64 offset, u64 len             the bytes
          14  VALUE_WRITE  u64 offset, the bytes
          15  SHUTDOWN     -                               (the server then exits)

      "key", "value", "the bytes" run to the end of the message. cap is the largest
      answer the client takes (a get or pop of something longer is MP_ETOOBIG and
      changes nothing); all ones means any size. An id is only good for the kind of
      object it was opened as; a dict and a list may share a name.

      Limits. Served objects live as long as the server (there is no verb to delete
      one). The server's objects are in the starter's shared heap, so they count
      against its size. A started manager's server is a child of the thread that
      called mp_manager_start (it dies if that thread ends: PR_SET_PDEATHSIG). One
      thread per client: a server with thousands of clients has thousands of threads.
      Handles must not be used after their manager is disconnected.

   ROBUSTNESS

      What happens when a process of the family dies at any instant, SIGKILL
      included. The common mechanism: every operation in flight names its owner's
      thread id in the shared word it holds (a lock word, a queue slot, a pool task).
      A waiter that finds such a word unchanged for 20 ms asks the kernel whether that
      thread still exists (kill(tid, 0), and /proc/<tid>/stat so that an unreaped
      zombie counts as dead) and, if not, repairs the word and goes on. Sleepers wake
      every 20-100 ms to look, so no death is missed for lack of a wakeup.

      object          a process dies inside it              what the others see
      ------          ----------------------                -------------------
      mp_lock/rlock   holding it                            next acquirer: MP_EOWNERDEAD,
                                                            lock held, within ~20-40 ms
      shared heap     inside mp_alloc/mp_free               at most that block leaks
      mp_condition    waiting, or holding its lock          the dead absorb no notify;
                                                            wait returns MP_EOWNERDEAD
      mp_barrier      waiting or running the action         MP_EBROKEN within ~100-200 ms
      mp_semaphore    after acquiring                       its unit is lost (no owner:
                                                            as in Python)
      mp_queue        mid-put, mid-get, mid-copy,           at most the message it was
                      between reserve and commit            moving is lost; none
                                                            duplicated or corrupted
      mp_dict/list    inside any verb                       the verb happened or not;
                                                            at most the value it was
                                                            moving leaks
      manager server  killed                                every call: MP_ECLOSED
      manager client  killed mid-request                    the server carries on
      mp_conn         peer process gone                     MP_ECLOSED (EOF); no SIGPIPE
      mp_pool         worker killed or crashing mid-task    that task: MP_EWORKERDIED
                                                            with the exit code; the
                                                            worker is replaced
      mp_process      parent killed                         daemon children die too
                                                            (PR_SET_PDEATHSIG)

      Limits. Thread ids are recycled: if the kernel hands a dead owner's id to a new
      thread before anyone noticed the death (all pid_max ids must be used first;
      pid_max is often 32768), the owner looks alive until that new thread ends. A
      lock's data may be half-updated when MP_EOWNERDEAD is returned: repairing it is
      the caller's job. A party that never arrives at a barrier, a process that never
      calls task_done, a semaphore unit never released: these look the same as slow
      progress, so give such waits a timeout. The tests kill processes at random
      instants in loops (tests/test_*.c, make torture) to show all of the above.

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
#if defined(MP_STATIC) && (defined(__GNUC__) || defined(__clang__))
#define MPDEF static __attribute__((unused)) /* a private copy uses only a few */
#elif defined(MP_STATIC)
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
    MP_ESYS = -13,
    MP_EAUTH = -14,
    MP_ENOTFOUND = -15
};

#define MP_FOREVER (-1.0)

/* How processes are started (Python's start methods). MP_START_DEFAULT (0) in a
   process or pool desc means the program's method (mp_config.start_method), which is
   MP_START_FORK unless mp_init was given another. See ON FORK AND THREADS. */
enum { MP_START_DEFAULT = 0, MP_START_FORK = 1, MP_START_FORKSERVER = 2 };

typedef struct mp_config {
    size_t heap_size; /* 0: MP_DEFAULT_HEAP_SIZE (1 GiB of address space); for a named
                         heap that exists, 0 takes its size */
    const char *name; /* NULL: an anonymous heap for this family. "/jobs": a named heap
                         that unrelated programs share (see UNRELATED PROGRAMS) */
    unsigned mode;    /* a named heap's permissions when this call creates it; 0: 0600 */
    int start_method; /* MP_START_FORKSERVER: mp_init forks the forkserver, and it starts
                         every process unless its desc says MP_START_FORK. 0: fork */
} mp_config;

/* Reserve the shared heap. Optional (the first mp call does it with defaults); must
   precede the first fork. With cfg->name: create the named heap, or attach to it if it
   exists (see UNRELATED PROGRAMS). Returns MP_OK (also when the heap asked for is the
   one already there); MP_EINVAL: already initialized otherwise, cfg->heap_size below
   1 MiB or above 2^46, a bad name (as for mp_shm_open), or - errno EPROTO - a named
   heap of another layout version or that does not match its header, or - errno ERANGE
   - a named heap of another size than cfg->heap_size; MP_ENOMEM: /dev/shm is full;
   MP_ETIMEDOUT: another program held the heap's creation lock for 10 s; MP_ESYS: a
   system call failed, errno says which (EACCES: the mode forbids us; EEXIST: the named
   heap's address is taken in this process). */
MPDEF int mp_init(const mp_config *cfg);

/* Remove a named heap's name (programs attached keep it until they exit). MP_OK,
   MP_EINVAL (bad name), MP_ESYS (errno ENOENT...). */
MPDEF int mp_heap_unlink(const char *name);

/* The program's start method (Python's get_start_method): MP_START_FORKSERVER if
   mp_init started the forkserver, else MP_START_FORK. */
MPDEF int mp_get_start_method(void);

/* Text of an MP_E... code (or "unknown error"). Never NULL. */
MPDEF const char *mp_strerror(int code);

/* CPUs this process may run on (sched_getaffinity), at least 1. */
MPDEF int mp_cpu_count(void);

/* Blocks of the shared heap, 16-byte aligned, valid in every process of the family.
   NULL with errno EINVAL for size 0, ENOMEM when the heap is exhausted or the size is
   above what it can ever hold (mp_calloc: also when n * size overflows).
   mp_calloc zeroes; mp_free(NULL) does nothing; a pointer not from mp_alloc or freed
   twice is ignored (detected by the block header). */
MPDEF void *mp_alloc(size_t size);
MPDEF void *mp_calloc(size_t n, size_t size);
MPDEF void mp_free(void *p);
/* Resize a block of the shared heap, keeping its first min(old, size) bytes. p NULL:
   mp_alloc(size). size 0: fails as mp_alloc(0) does, and p is left untouched (free it
   with mp_free). A size the block's class already holds keeps the block (shrinking never
   moves it: blocks are not split); a larger one moves it to a new block. NULL + errno
   ENOMEM (no room; p untouched and still valid) or EINVAL (p not a live block of the
   heap). */
MPDEF void *mp_realloc(void *p, size_t size);

typedef struct mp_heap_stats {
    size_t size;       /* bytes reserved for the heap */
    size_t used;       /* bytes ever cut from the region (high-water mark) */
    size_t in_use;     /* bytes in allocated blocks, headers included */
    size_t blocks;     /* blocks allocated and not freed */
    size_t free_bytes; /* bytes in freed blocks waiting for reuse */
} mp_heap_stats;

/* Snapshot of the heap's counters. MP_EINVAL if out is NULL. */
MPDEF int mp_heap_stats_get(mp_heap_stats *out);

// >>decl:names -------------------------------------------------------------------

/* A registry of names for objects of the shared heap (queues, locks, dicts, your own
   blocks): processes of a family, and the programs attached to one named heap, find
   each other's objects by name. Names are 1 to 255 bytes. Robust: a process killed
   inside a call leaves the registry consistent. */

/* Register obj under name, replacing what it named. MP_OK; MP_EINVAL (bad name, obj
   not in the shared heap); MP_ENOMEM. */
MPDEF int mp_name_set(const char *name, void *obj);
/* Register obj under name unless the name is taken, and return what the name stands
   for: obj, or the object registered first (Python's dict.setdefault). Two processes
   that race to create one object by name use this: the loser destroys its own. NULL
   + errno EINVAL, ENOMEM. */
MPDEF void *mp_name_setdefault(const char *name, void *obj);
/* The object registered under name; NULL + errno ENOENT (none) or EINVAL (bad name). */
MPDEF void *mp_name_get(const char *name);
/* Remove the name (the object itself stays). MP_OK, MP_ENOTFOUND, MP_EINVAL. */
MPDEF int mp_name_del(const char *name);

// >>decl:process -----------------------------------------------------------------

typedef struct mp_process mp_process;
typedef int (*mp_target_fn)(void *arg); /* return value = exit code (0..255) */

/* Defaults: target required; arg NULL; name "Process-N"; daemon false; arg_size 0.
   arg_size 0: target gets arg as is, and the child sees the bytes behind it as they
   were at mp_process_start (the fork), not at create. arg_size > 0: arg_size bytes at
   arg are copied into the process record at create (Python's args=(...)) and target
   gets a pointer to that copy, 16-byte aligned, valid while the record lives. */
typedef struct mp_process_desc {
    mp_target_fn target;
    void *arg;        /* a pointer into the shared heap, data the child inherits
                         through fork, or (arg_size > 0) the bytes to copy */
    const char *name; /* copied, up to 63 bytes */
    bool daemon;
    size_t arg_size;  /* > 0: copy arg_size bytes at create */
    int start_method; /* MP_START_FORK, MP_START_FORKSERVER; 0: the program's */
} mp_process_desc;

#define MP_EXITCODE_NONE (-2147483647 - 1) /* not started, or not reaped yet */
#define MP_EXITCODE_LOST (-2147483647)     /* reaped by someone else (SIGCHLD handler,
                                              SIG_IGN) before mp could see its status */

/* A process record in the shared heap, not started; with arg_size, a copy of the
   argument in it. NULL + errno: EINVAL (d or target NULL, arg NULL with arg_size > 0),
   ENOMEM (no heap room for the record and the copy, or arg_size above the heap). */
MPDEF mp_process *mp_process_create(const mp_process_desc *d);
/* fork and run target in the child. MP_EINVAL: NULL, or already started (state).
   MP_EPERM: not created by this process. MP_ESYS: fork failed (errno EAGAIN at
   RLIMIT_NPROC). */
MPDEF int mp_process_start(mp_process *p);
/* Wait for the process to end and reap it. Repeatable. MP_OK, MP_ETIMEDOUT,
   MP_EINVAL (NULL, never started (state), or destroyed - detected as long as the
   record's memory was not reused), MP_EPERM (not created by this process). */
MPDEF int mp_process_join(mp_process *p, double timeout);
MPDEF bool mp_process_is_alive(mp_process *p);
/* SIGTERM / SIGKILL. MP_OK (also when it already ended), MP_EINVAL if not started. */
MPDEF int mp_process_terminate(mp_process *p);
MPDEF int mp_process_kill(mp_process *p);
/* N for exit(N) or return N, -S for signal S, MP_EXITCODE_NONE while running. */
MPDEF int mp_process_exitcode(mp_process *p);
MPDEF pid_t mp_process_pid(const mp_process *p); /* 0 before start */
MPDEF const char *mp_process_name(const mp_process *p);
/* An fd (pidfd) readable once the process ended; owned by p. MP_EINVAL if NULL or not
   started (state), MP_EPERM if not created by this process. */
MPDEF int mp_process_sentinel(mp_process *p);
/* Free the record. MP_OK; MP_EINVAL if it is still running (state), already destroyed
   (where detectable) or the current process's own record, MP_EPERM if not created by
   this process (nothing freed then). mp_process_destroy(NULL) is MP_OK. Every other
   call on a destroyed record is MP_EINVAL (false, MP_EXITCODE_NONE) where detectable,
   as for the sync objects. */
MPDEF int mp_process_destroy(mp_process *p);
/* Reap ended children of this process, store up to cap of the live ones in out, and
   return how many are alive. */
MPDEF size_t mp_active_children(mp_process **out, size_t cap);
/* This process's record: the one it was started from, or "MainProcess" (made in the
   shared heap on first call: NULL with errno ENOMEM if the heap is full then). */
MPDEF mp_process *mp_current_process(void);
/* The pid of the process that started this one (getppid() in the main process). */
MPDEF pid_t mp_parent_pid(void);

// >>decl:sync --------------------------------------------------------------------

/* Python's Lock, RLock, Semaphore/BoundedSemaphore, Event, Condition and Barrier, in the
   shared heap: usable from every thread of every process of the family. Timeouts are
   seconds (MP_FOREVER blocks, 0 tries once). Every function given NULL or a destroyed
   object (where still detectable) returns MP_EINVAL (false / 0 for the queries). */
typedef struct mp_lock mp_lock;
typedef struct mp_rlock mp_rlock;
typedef struct mp_semaphore mp_semaphore;
typedef struct mp_event mp_event;
typedef struct mp_condition mp_condition;
typedef struct mp_barrier mp_barrier;

/* A lock, unlocked. NULL + errno ENOMEM. */
MPDEF mp_lock *mp_lock_create(void);
/* Acquire. MP_OK; MP_EOWNERDEAD: acquired, but the previous owner died holding it (the
   data it guards may be half-updated; the lock is simply yours now); MP_ETIMEDOUT.
   Not re-entrant: the owner acquiring again waits like anyone else (use mp_rlock). */
MPDEF int mp_lock_acquire(mp_lock *l, double timeout);
/* Release. MP_OK; MP_EPERM if the calling thread does not hold it. */
MPDEF int mp_lock_release(mp_lock *l);
MPDEF void mp_lock_destroy(mp_lock *l);

/* A re-entrant lock: the owning thread (of the owning process) may acquire it again;
   it is released when released as many times. Same codes as mp_lock; after
   MP_EOWNERDEAD the depth is 1. MP_EOVERFLOW past 2^32-1 levels. */
MPDEF mp_rlock *mp_rlock_create(void);
MPDEF int mp_rlock_acquire(mp_rlock *r, double timeout);
MPDEF int mp_rlock_release(mp_rlock *r); /* MP_EPERM if not the owner */
MPDEF void mp_rlock_destroy(mp_rlock *r);

/* A counting semaphore with initial value; max 0: unbounded (Semaphore), else releases
   beyond max fail (BoundedSemaphore(max), usually with value == max). NULL + errno
   EINVAL if value > INT_MAX or max && value > max, ENOMEM. */
MPDEF mp_semaphore *mp_semaphore_create(unsigned value, unsigned max);
/* Decrement, waiting while the value is 0. MP_OK, MP_ETIMEDOUT, MP_EINVAL. */
MPDEF int mp_semaphore_acquire(mp_semaphore *s, double timeout);
/* Increment and wake one waiter. MP_OK; MP_EOVERFLOW if bounded and already at max
   (or at INT_MAX); nothing changes then. */
MPDEF int mp_semaphore_release(mp_semaphore *s);
/* The current value (>= 0), or MP_EINVAL. */
MPDEF int mp_semaphore_value(mp_semaphore *s);
MPDEF void mp_semaphore_destroy(mp_semaphore *s);

/* An event, initially clear. NULL + errno ENOMEM. */
MPDEF mp_event *mp_event_create(void);
/* Set the flag and wake every waiter. */
MPDEF void mp_event_set(mp_event *e);
MPDEF void mp_event_clear(mp_event *e);
MPDEF bool mp_event_is_set(mp_event *e);
/* Wait until the flag is set. MP_OK if it is set, or was set at any moment since the
   call began (even if cleared again at once); MP_ETIMEDOUT; MP_EINVAL. */
MPDEF int mp_event_wait(mp_event *e, double timeout);
MPDEF void mp_event_destroy(mp_event *e);

/* A condition variable bound to lock (NULL: a lock of its own, destroyed with it; a
   given lock must outlive the condition). NULL + errno EINVAL (destroyed lock),
   ENOMEM. */
MPDEF mp_condition *mp_condition_create(mp_lock *lock);
/* Acquire/release the condition's lock: as mp_lock_acquire/mp_lock_release. */
MPDEF int mp_condition_acquire(mp_condition *c, double timeout);
MPDEF int mp_condition_release(mp_condition *c);
/* With the lock held: release it, wait for a notify, re-acquire it (without time
   limit), then return. MP_OK: notified. MP_ETIMEDOUT: not notified in time (Python's
   False), the lock is held again all the same. MP_EOWNERDEAD: the lock was taken over
   from a dead owner on the way back (notified or not: re-check your predicate).
   MP_EPERM: the caller does not hold the lock. MP_ENOMEM: no memory for the waiter's
   slot (lock still held). No spurious wakeups. */
MPDEF int mp_condition_wait(mp_condition *c, double timeout);
/* With the lock held: wait until pred(arg) is true (checked first, and after every
   wakeup, with the lock held). MP_OK: pred is true; MP_ETIMEDOUT: still false at the
   deadline; MP_EOWNERDEAD, MP_EPERM, MP_ENOMEM as mp_condition_wait (returned at once). */
MPDEF int mp_condition_wait_for(mp_condition *c, bool (*pred)(void *), void *arg,
                                double timeout);
/* With the lock held: wake up to n of the waiters (oldest first). Waiters that are not
   there are not remembered; waiters found dead are skipped. MP_OK, MP_EPERM. */
MPDEF int mp_condition_notify(mp_condition *c, unsigned n);
MPDEF int mp_condition_notify_all(mp_condition *c);
MPDEF void mp_condition_destroy(mp_condition *c);

/* A barrier for parties participants; action(arg), if given, is run by the last one to
   arrive, before the others are released. NULL + errno EINVAL (parties 0 or above
   2^24), ENOMEM. */
MPDEF mp_barrier *mp_barrier_create(unsigned parties, void (*action)(void *), void *arg);
/* Wait until parties callers have arrived. MP_OK and *index (if not NULL) = arrival
   order 0..parties-1 (the last, parties-1, ran the action). MP_EBROKEN: the barrier is or
   got broken while waiting: abort, reset, a waiter's timeout (which breaks it for
   everyone, as in Python), or a waiter that died; it stays broken until reset.
   MP_EPERM: a barrier with an action, waited on from another program than its
   creator's (a named heap): the action is a function of that program only. */
MPDEF int mp_barrier_wait(mp_barrier *b, double timeout, unsigned *index);
/* Break the barrier: waiters and later callers get MP_EBROKEN until reset. */
MPDEF void mp_barrier_abort(mp_barrier *b);
/* Back to empty and unbroken; current waiters get MP_EBROKEN. */
MPDEF void mp_barrier_reset(mp_barrier *b);
MPDEF unsigned mp_barrier_parties(mp_barrier *b);   /* 0 for NULL */
MPDEF unsigned mp_barrier_n_waiting(mp_barrier *b); /* 0 when broken */
MPDEF bool mp_barrier_broken(mp_barrier *b);
MPDEF void mp_barrier_destroy(mp_barrier *b);

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
   MP_ETIMEDOUT (nothing consumed; also when the fd is a blocking socket whose
   SO_RCVTIMEO ran out, whatever timeout says); MP_ECLOSED (EOF: the sending end is closed
   everywhere, or the stream was cut mid-message); MP_ETOOBIG: the message is larger than
   cap, *len = the size needed, nothing consumed (receive again with a bigger buffer),
   or its header announces more than the conn's limit (mp_conn_set_max_message; *len =
   the size announced, SIZE_MAX for a malformed header), nothing consumed either;
   MP_EINVAL (NULL c or len, buf NULL with cap > 0, a send-only end); MP_ENOMEM; MP_ESYS.
   buf NULL with cap 0 peeks at the next message's size: MP_ETOOBIG with *len, for an
   empty message too (*len 0), and nothing is consumed; to take an empty message, give
   any non-NULL buf with cap 0. */
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
   poll(2) says POLLIN/POLLHUP. ready[i] says which: every fd ready at the call is
   reported (a conn with messages buffered never hides the others). Returns how many (> 0),
   MP_ETIMEDOUT, MP_EINVAL (NULL, n 0, a negative or closed fd), MP_ENOMEM, MP_ESYS. */
MPDEF int mp_wait(const int *fds, size_t n, bool *ready, double timeout);


// >>decl:queue -------------------------------------------------------------------

typedef struct mp_queue mp_queue;

/* Defaults: maxsize 0 and capacity 0 (or a NULL desc): unbounded, as Python's Queue():
   a ring of 4096 slots of 256 bytes, and when it is full the messages wait in the
   shared heap, in order, so a put never blocks and fails only when the heap is full.
   Any non-zero field makes the queue bounded by its ring: maxsize slots of capacity /
   maxsize bytes each (rounded down to 64, at least 64; capacity 0: 1 MiB), or, with
   maxsize 0, capacity / 256 slots of 256 bytes. A message up to a slot minus 16 bytes
   is stored inline; a larger one travels as a shared-heap block handed over by
   reference (capacity does not count it). The ring costs its capacity in heap bytes
   (rounded up to the heap's size class: at most +25%), and its pages are touched at
   create: about 0.7 ms per MiB on the 2-vCPU test machine (a 64 MiB ring: 80 MiB of
   heap and 45 ms, nearly all of it page faults). */
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

/* Append a copy of buf[0..len) (len may be 0, buf NULL then). Bounded: blocks while the
   queue is full, up to timeout (0: put_nowait). Unbounded: never waits (timeout unused).
   MP_OK; MP_ETIMEDOUT (bounded and full); MP_ECLOSED (queue closed); MP_ETOOBIG (len
   above the heap's size); MP_ENOMEM (no heap block for a message larger than a slot, or,
   unbounded, for a message the full ring sends to the overflow); MP_EINVAL (q NULL, or
   buf NULL with len > 0). */
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
   reserved message (FIFO), so commit soon. It always needs a ring slot: on an unbounded
   queue it waits (up to timeout) while the ring is full or messages wait in the
   overflow. Codes as mp_queue_put, MP_ETIMEDOUT included. */
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
MPDEF bool mp_queue_full(mp_queue *q);  /* false for NULL and for an unbounded queue */

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
   NULL + errno on failure (EINVAL, EEXIST, ENOENT, ENOSPC, EMFILE...); a failed call
   removes the object if it created it, never one that existed before. */
MPDEF mp_shm *mp_shm_open(const char *name, size_t size, int flags);
MPDEF void *mp_shm_data(mp_shm *m);   /* NULL for NULL */
MPDEF size_t mp_shm_size(mp_shm *m);  /* 0 for NULL */
MPDEF void mp_shm_close(mp_shm *m);   /* unmap; the object stays until unlinked */
MPDEF int mp_shm_unlink(const char *name); /* MP_OK, MP_EINVAL, MP_ESYS (ENOENT) */

// >>decl:pool --------------------------------------------------------------------

typedef struct mp_pool mp_pool;
typedef struct mp_imap mp_imap;
typedef struct mp_async mp_async;

/* Defaults: processes mp_cpu_count(); no initializer; maxtasksperchild 0 (unlimited);
   max_result 64 KiB. */
typedef struct mp_pool_desc {
    unsigned processes;          /* worker processes, at most 1024 */
    int (*initializer)(void *);  /* run once in each worker after its fork; non-zero
                                    return = the worker failed to start */
    void *initarg;               /* as mp_process_desc.arg: read at each worker's fork */
    unsigned maxtasksperchild;   /* a worker retires after this many tasks (a map chunk
                                    is one task) and the pool starts a fresh one */
    size_t max_result;           /* room for one apply_async result, at most 1 GiB */
    size_t initarg_size;         /* > 0: initarg_size bytes at initarg are copied into
                                    the pool at create; the initializer gets the copy */
    int start_method;            /* how workers start (as mp_process_desc); 0: the
                                    program's */
} mp_pool_desc;

/* Start the workers (daemon processes forked from this process, which becomes the
   pool's owner). With an initializer, waits until every worker ran it. NULL + errno:
   EINVAL (processes > 1024, max_result > 1 GiB, initarg NULL with initarg_size > 0),
   ENOMEM (no heap room, initarg_size above the heap), EAGAIN (fork failed), ECHILD
   (an initializer returned non-zero, or a worker died in it). */
MPDEF mp_pool *mp_pool_create(const mp_pool_desc *d);

/* A map function: read one element at in, write one at out (NULL when out_size is
   0). Return 0, or non-zero to fail this item (the value is kept as its code). */
typedef int (*mp_map_fn)(const void *in, void *out);

/* A task with a result of its own size (apply_async, apply, and imap with
   mp_map_desc.task): arg/arg_len are a copy of the caller's bytes (for imap: one input
   element, in_size bytes); write up to *result_len bytes (the capacity, max_result, on
   entry) to result and set *result_len to the size written. Return 0, or non-zero to
   fail the task (the value is kept as its code and the result discarded). */
typedef int (*mp_task_fn)(const void *arg, size_t arg_len, void *result, size_t *result_len);

/* A map's first failure (lowest index), filled by mp_pool_map when asked for. */
typedef struct mp_map_failure {
    size_t index;  /* the lowest failing index (n when nothing failed) */
    int rc;        /* MP_OK, MP_ETASK, MP_EWORKERDIED or MP_ECANCELLED */
    int code;      /* MP_ETASK: fn's return value; MP_EWORKERDIED: the worker's exit
                      code (N for exit(N), -S for signal S); else 0 */
    size_t failed; /* how many items failed */
} mp_map_failure;

/* Defaults: chunksize ceil(n / (4 * processes)) for map, 1 for imap (as Python);
   ordered; no progress callback; no failure report; max_result the pool's.
   Exactly one of fn and task: fn writes out_size bytes per item into out (map, imap,
   map_async); task (imap only) returns a result of any size up to max_result per item,
   read with mp_imap_next_alloc - Python's imap of a function returning a str or list. */
typedef struct mp_map_desc {
    mp_map_fn fn;
    const void *in;   /* n elements of in_size bytes (copied to shared memory) */
    size_t in_size;
    void *out;        /* map: n elements of out_size bytes, in input order; imap: unused */
    size_t out_size;  /* 0: fn produces nothing */
    size_t n;
    size_t chunksize; /* items per task */
    bool unordered;   /* imap: yield in completion order (imap_unordered) */
    void (*progress)(size_t done, size_t total, void *arg); /* called by the owner with
                         done 0 when the job starts, then as items finish; the last
                         call has done == total */
    void *progress_arg;
    mp_map_failure *failure; /* map: where to report the first failure (optional) */
    mp_task_fn task;  /* imap only, instead of fn: variable-size results */
    size_t max_result; /* task: the largest result; 0: the pool's max_result; <= 1 GiB */
} mp_map_desc;

/* Python's Pool.map: run fn over every element, results in d->out in input order.
   Returns MP_OK, or the first failure's code (lowest index): MP_ETASK (fn returned
   non-zero), MP_EWORKERDIED (the worker running that item's chunk died: every item
   of the chunk fails), MP_ECANCELLED (terminated). One failure never stops the
   others. MP_EINVAL: bad argument (NULL p/d/fn/in/out, zero in_size, sizes that
   overflow, d->task set), or the pool is closed or terminated (state). MP_EPERM: not
   called from the owner process. MP_ENOMEM: no shared memory for the copies. n == 0
   returns MP_OK at once. */
MPDEF int mp_pool_map(mp_pool *p, const mp_map_desc *d);

/* Python's Pool.map_async: mp_pool_map without waiting. The handle completes when the
   whole map has; mp_async_wait/get/ready/wait_any then copy the results to d->out (in
   the owner, at the call that sees the map finished) and fill d->failure, so read
   d->out only after one of them reported the handle finished. *d itself is copied at
   the call; d->out and d->failure (and d->in if it is in the shared heap, which is then
   used in place) must stay valid until then, or until mp_async_destroy. mp_async_get
   returns the map's code as mp_pool_map does (out/cap unused: pass NULL, 0; *len =
   n * out_size); mp_async_code is the first failure's code. progress is called from
   those same calls as chunks finish, one call at a time. Any thread of the owner may
   wait on the handle, several at once (one of them delivers). The job's shared
   copies are freed by mp_async_destroy; destroying an unfinished handle cancels its
   chunks not yet started, waits for the running ones and writes nothing to d->out.
   NULL + errno: EINVAL, EPERM, ENOMEM as mp_pool_map's codes. */
MPDEF mp_async *mp_pool_map_async(mp_pool *p, const mp_map_desc *d);

/* Python's Pool.imap / imap_unordered: an iterator over the results, which stream
   while later chunks still run. Inputs are copied at once. With d->task, each item's
   result (up to max_result bytes) is kept in a block of the shared heap until read
   with mp_imap_next_alloc. NULL + errno: EINVAL (as mp_pool_map, but task allowed;
   fn and task both or neither set, max_result above 1 GiB), EPERM (not the owner),
   ENOMEM. */
MPDEF mp_imap *mp_pool_imap(mp_pool *p, const mp_map_desc *d);
/* The next result: copies out_size bytes to out (when MP_OK and out is not NULL) and
   its index to *index (if not NULL). Ordered: index 0, 1, 2...; unordered: chunks in
   completion order, every index exactly once. Returns MP_OK, the item's failure
   (MP_ETASK, MP_EWORKERDIED, MP_ECANCELLED; see mp_imap_code), MP_ETIMEDOUT (nothing
   consumed; ask again later), MP_ECLOSED once every item was returned, MP_EINVAL
   (NULL it, or an iterator of a task map: use mp_imap_next_alloc), MP_EPERM (not the
   pool's owner process). */
MPDEF int mp_imap_next(mp_imap *it, void *out, size_t *index, double timeout);
/* The next result in a buffer from MP_MALLOC (free() by default; at least 1 byte even
   for an empty result), its size in *len: a task map's result as the task wrote it, or
   a fn map's out_size bytes. *buf is NULL and *len 0 unless MP_OK (for an item failed
   with MP_ETOOBIG, *len is the size its task asked for). Codes as mp_imap_next, plus
   MP_ETOOBIG (that item's task set *result_len above max_result), MP_ENOMEM (no private
   memory for the buffer: nothing consumed, or no shared block for the worker to store
   that item's result), MP_EINVAL (NULL it, buf or len). */
MPDEF int mp_imap_next_alloc(mp_imap *it, void **buf, size_t *len, size_t *index,
                             double timeout);
/* The code of the item mp_imap_next returned last: fn's return value for MP_ETASK,
   the worker's exit code for MP_EWORKERDIED, else 0. */
MPDEF int mp_imap_code(const mp_imap *it);
/* Free the iterator; chunks not yet started are cancelled, running ones are awaited. */
MPDEF void mp_imap_destroy(mp_imap *it);

/* Python's Pool.apply_async: queue fn(copy of arg). Never blocks. NULL + errno:
   EINVAL (NULL p/fn, arg NULL with arg_len > 0, pool closed or terminated), EPERM (not
   the owner process), ENOMEM. Free the handle with mp_async_destroy. */
MPDEF mp_async *mp_pool_apply_async(mp_pool *p, mp_task_fn fn, const void *arg, size_t arg_len);
/* Python's Pool.apply: apply_async, then get without time limit. Codes as
   mp_pool_apply_async (as MP_E... codes) and mp_async_get; the task's own code for
   MP_ETASK is not kept (use apply_async and mp_async_code when it matters). */
MPDEF int mp_pool_apply(mp_pool *p, mp_task_fn fn, const void *arg, size_t arg_len,
                        void *out, size_t cap, size_t *len);
/* Wait for the result and copy it to out (cap bytes of room), its size to *len (if
   not NULL). The result stays available: get may be repeated. Returns MP_OK;
   MP_ETIMEDOUT (not finished yet); MP_ETOOBIG (cap too small: *len says the size
   needed; or the task set *result_len above max_result: *len says what it asked for);
   MP_ETASK, MP_EWORKERDIED, MP_ECANCELLED (see mp_async_code); MP_EINVAL (NULL r, out
   NULL with cap > 0); MP_EPERM (a process other than the pool's owner, before the
   task finished). A map_async handle: see mp_pool_map_async. */
MPDEF int mp_async_get(mp_async *r, void *out, size_t cap, size_t *len, double timeout);
/* Wait until the task finished (in any way): MP_OK, MP_ETIMEDOUT, MP_EINVAL (NULL),
   MP_EPERM (not the owner, task not finished). */
MPDEF int mp_async_wait(mp_async *r, double timeout);
/* Wait until at least one of n handles finished (concurrent.futures.wait with
   FIRST_COMPLETED; call it in a loop, dropping what it returned, for as_completed).
   Returns the lowest index of a finished handle (>= 0), MP_ETIMEDOUT, MP_EINVAL (rs
   NULL, a NULL entry, n 0 or above INT_MAX), MP_EPERM (a handle of a pool this process
   does not own). Handles may come from several pools of this owner. */
MPDEF int mp_async_wait_any(mp_async *const *rs, size_t n, double timeout);
MPDEF bool mp_async_ready(mp_async *r);      /* finished, in any way */
MPDEF bool mp_async_successful(mp_async *r); /* finished with MP_OK (false if not ready) */
/* fn's return value for MP_ETASK, the worker's exit code (N, or -S for signal S) for
   MP_EWORKERDIED, else 0. */
MPDEF int mp_async_code(mp_async *r);
/* Free the handle. An unfinished task is dropped from the queue, or its result is
   thrown away when it ends. Valid after the pool was destroyed. */
MPDEF void mp_async_destroy(mp_async *r);

/* No more tasks (they then fail with MP_EINVAL); workers leave once the queue is
   drained. Owner only (elsewhere: no effect). */
MPDEF void mp_pool_close(mp_pool *p);
/* Stop now: workers are sent SIGTERM (SIGKILL after 200 ms) and reaped; every task
   not finished reports MP_ECANCELLED. Returns promptly whatever is queued. Owner only. */
MPDEF void mp_pool_terminate(mp_pool *p);
/* Wait for the workers to exit after close or terminate, replacing workers that die
   while tasks remain. MP_OK, MP_ETIMEDOUT, MP_EINVAL (NULL, or still running: call
   close or terminate first), MP_EPERM (not the owner). */
MPDEF int mp_pool_join(mp_pool *p, double timeout);
/* Free the pool. A pool that still has workers is terminated first (Python's `with
   Pool()`): close + join beforehand to let queued tasks finish. mp_async handles and
   imap iterators stay valid (their tasks report MP_ECANCELLED) and must still be
   destroyed. Owner only. */
MPDEF void mp_pool_destroy(mp_pool *p);

typedef struct mp_pool_stats {
    unsigned processes; /* workers the pool keeps */
    unsigned alive;     /* worker processes running now */
    size_t started;     /* workers started, replacements included */
    size_t died;        /* workers that died (killed, crashed), retirements excluded */
} mp_pool_stats;

/* Snapshot of the pool's counters; runs the owner's check for dead workers first.
   MP_EINVAL: NULL; MP_EPERM: not the owner process. */
MPDEF int mp_pool_stats_get(mp_pool *p, mp_pool_stats *out);

/* A ready-made progress callback (mp_map_desc.progress): draws a bar on stderr -
   label (progress_arg, a const char * or NULL), percent, done/total, rate, time
   left - at most 10 times a second, and only when stderr is a terminal. Rate and time
   left are averages over the whole run, timed from the call with done 0 that starts
   it (or from the first call, if there was none); the final line (done == total)
   shows the run's true average. One bar at a time per process. */
MPDEF void mp_progress_bar(size_t done, size_t total, void *arg);

// >>decl:listener ----------------------------------------------------------------

typedef struct mp_listener mp_listener;

/* Addresses are strings: "/path.sock", "./rel.sock" or "../rel.sock" (a Unix socket
   file), "@name" (Linux's abstract Unix namespace), "host:port" or "[v6addr]:port" (TCP;
   host a name or a numeric address; port 0 picks a free one). Defaults: address NULL
   is a fresh socket file in a private 0700 directory (Python's arbitrary_address);
   authkey NULL: no authentication; backlog 128; handshake_timeout 10 s (negative: no
   limit). A TCP or
   abstract listener without an authkey is refused (EINVAL) unless
   allow_unauthenticated: those addresses have no file permissions to guard them. */
typedef struct mp_listener_desc {
    const char *address;
    const void *authkey;        /* copied */
    size_t authkey_len;
    int backlog;
    double handshake_timeout;   /* seconds one client's handshake may take */
    bool allow_unauthenticated;
} mp_listener_desc;

/* Bind and listen (Python's Listener). A socket file is created mode 0600 and removed
   by mp_listener_close in the creating process. NULL + errno: EINVAL (bad address or
   desc, unauthenticated TCP/abstract), ENAMETOOLONG (path over 107 bytes), EADDRINUSE,
   ENOENT (a host that does not resolve), EACCES, EMFILE, ENOMEM... */
MPDEF mp_listener *mp_listener_create(const mp_listener_desc *d);
/* The address as bound, in the same syntax ("127.0.0.1:40123" for port 0, "[::1]:..."),
   owned by the listener. NULL for NULL. */
MPDEF const char *mp_listener_address(const mp_listener *l);
/* The listening fd: readable when a client waits, for poll(2) or mp_wait. MP_EINVAL for
   NULL. */
MPDEF int mp_listener_fileno(const mp_listener *l);
/* Wait up to timeout for a client, then run the handshake (with an authkey: Python's,
   mutual, bounded by handshake_timeout whatever timeout is) and give its connection,
   an ordinary mp_conn (TCP_NODELAY on TCP). MP_OK; MP_ETIMEDOUT (no client came);
   MP_EAUTH (a client came but failed: wrong key, protocol error, a message over 256
   bytes, closed, or silent past handshake_timeout; it was closed and the listener goes
   on); MP_EINVAL (NULL); MP_ENOMEM; MP_ESYS (errno: EMFILE when out of fds - the
   client stays queued and the listener is fine). *out is NULL on failure. */
MPDEF int mp_listener_accept(mp_listener *l, mp_conn **out, double timeout);
/* Close the listening socket and, in the process that created it, remove its socket
   file (and the private directory of a NULL address). NULL is a no-op. Connections
   already accepted are not affected. Do not close a listener another thread is
   accepting on. */
MPDEF void mp_listener_close(mp_listener *l);

/* Defaults: timeout 10 s for connect and handshake together; authkey NULL: none. */
typedef struct mp_client_desc {
    const char *address; /* as for mp_listener_desc */
    const void *authkey;
    size_t authkey_len;
    double timeout;
} mp_client_desc;

/* Connect to a listener (Python's Client) and, with an authkey, run the handshake.
   MP_OK with *out an ordinary mp_conn; MP_EAUTH (the listener rejected our key, or
   failed to prove it has it); MP_ETIMEDOUT; MP_ECLOSED (connection refused or reset,
   or closed mid-handshake); MP_EINVAL (NULL, a bad address); MP_ENOMEM; MP_ESYS (errno:
   ENOENT for a missing socket file or a host that does not resolve, EMFILE...). *out
   is NULL on failure. */
MPDEF int mp_client(const mp_client_desc *d, mp_conn **out);


// >>decl:dict --------------------------------------------------------------------

/* Python's dict and list of bytes, in the shared heap: every thread of every process
   of the family (and the programs attached to a named heap) uses one at memory speed.
   Keys and values are byte strings of any size (0 included) up to what the heap holds;
   the containers grow as the heap allows and reuse the memory of what is deleted.
   Robust: a process killed inside any verb leaves the container consistent (the verb
   happened or it did not; at most the value it was moving leaks). The same verbs work
   on a handle from mp_manager_dict / mp_manager_list (see SHARED CONTAINERS AND THE
   MANAGER): there every verb is one round trip to the server and may also return
   MP_ECLOSED (server gone), MP_ETIMEDOUT (no answer within the manager's timeout),
   MP_ESYS. */
typedef struct mp_dict mp_dict;
typedef struct mp_list mp_list;

/* An empty dict in the shared heap. NULL + errno ENOMEM. */
MPDEF mp_dict *mp_dict_create(void);
/* d[key] = val (copies both). MP_OK; MP_EINVAL (NULL or destroyed d, NULL key or val
   with a length > 0); MP_ENOMEM. */
MPDEF int mp_dict_set(mp_dict *d, const void *key, size_t klen, const void *val, size_t vlen);
/* Copy d[key] into buf, *len = its size. MP_OK; MP_ENOTFOUND; MP_ETOOBIG (cap too
   small: *len = the size needed, nothing copied; buf NULL with cap 0 asks the size);
   MP_EINVAL. */
MPDEF int mp_dict_get(mp_dict *d, const void *key, size_t klen, void *buf, size_t cap, size_t *len);
/* As mp_dict_get into a new MP_MALLOC buffer (*buf; free() it), NULL on failure.
   MP_OK, MP_ENOTFOUND, MP_ENOMEM, MP_EINVAL. */
MPDEF int mp_dict_get_alloc(mp_dict *d, const void *key, size_t klen, void **buf, size_t *len);
/* del d[key]. MP_OK, MP_ENOTFOUND, MP_EINVAL. */
MPDEF int mp_dict_del(mp_dict *d, const void *key, size_t klen);
/* *n = number of keys. MP_OK, MP_EINVAL. */
MPDEF int mp_dict_len(mp_dict *d, size_t *n);
/* Call fn on every (key, value) of a snapshot taken at once (in no set order); fn
   returning non-zero stops. The pointers are valid during the call only. MP_OK,
   MP_ENOMEM (no room for the snapshot), MP_EINVAL. */
MPDEF int mp_dict_items(mp_dict *d, int (*fn)(const void *k, size_t kl, const void *v,
                                              size_t vl, void *arg), void *arg);
/* Free a local dict and everything in it (no one may use it any more); for a served
   handle, free the handle only (the server's dict stays). NULL is a no-op. */
MPDEF void mp_dict_destroy(mp_dict *d);

/* An empty list in the shared heap. NULL + errno ENOMEM. */
MPDEF mp_list *mp_list_create(void);
/* l.append(val). MP_OK, MP_ENOMEM, MP_EINVAL. */
MPDEF int mp_list_append(mp_list *l, const void *val, size_t len);
/* Copy l[index] into buf (index < 0 counts from the end, as Python's). MP_OK;
   MP_ENOTFOUND (out of range); MP_ETOOBIG as mp_dict_get; MP_EINVAL. */
MPDEF int mp_list_get(mp_list *l, long index, void *buf, size_t cap, size_t *len);
/* As mp_list_get into a new MP_MALLOC buffer. MP_OK, MP_ENOTFOUND, MP_ENOMEM, MP_EINVAL. */
MPDEF int mp_list_get_alloc(mp_list *l, long index, void **buf, size_t *len);
/* l[index] = val. MP_OK, MP_ENOTFOUND, MP_ENOMEM, MP_EINVAL. */
MPDEF int mp_list_set(mp_list *l, long index, const void *val, size_t len);
/* l.pop(index) (-1: the last) into buf, *len = its size (len may be NULL). buf NULL
   with cap 0: discard the item. MP_OK; MP_ENOTFOUND; MP_ETOOBIG (nothing removed, *len
   = the size needed); MP_ENOMEM (a pop before the last item copies the list's array of
   offsets, 8 bytes an item: no room for it, nothing removed); MP_EINVAL. */
MPDEF int mp_list_pop(mp_list *l, long index, void *buf, size_t cap, size_t *len);
/* *n = number of items. MP_OK, MP_EINVAL. */
MPDEF int mp_list_len(mp_list *l, size_t *n);
/* Call fn on every item of a snapshot, in order; fn returning non-zero stops. MP_OK,
   MP_ENOMEM, MP_EINVAL. */
MPDEF int mp_list_items(mp_list *l, int (*fn)(const void *v, size_t len, void *arg), void *arg);
/* As mp_dict_destroy. */
MPDEF void mp_list_destroy(mp_list *l);


// >>decl:manager -----------------------------------------------------------------

typedef struct mp_manager mp_manager;
typedef struct mp_value mp_value;

/* Defaults: address NULL (mp_manager_start only) is a fresh socket file in a private
   0700 directory; authkey NULL: none (refused for TCP and abstract addresses, as for
   listeners); timeout 10 s, for the start, a connect, and each call's answer. */
typedef struct mp_manager_desc {
    const char *address;  /* as for mp_listener_desc */
    const void *authkey;  /* copied */
    size_t authkey_len;
    double timeout;
} mp_manager_desc;

/* Fork a server process (a daemon child: it dies with this process) that listens on
   d->address and serves named dicts, lists and values, and connect to it. NULL + errno:
   EINVAL (bad desc or address), EADDRINUSE, ETIMEDOUT (the server did not come up),
   ENOMEM, and the listener's other errnos. */
MPDEF mp_manager *mp_manager_start(const mp_manager_desc *d);
/* Reach a running server from any process on any machine (the Listener/Client
   handshake with d->authkey). NULL + errno: EINVAL, EACCES (the server refused the key,
   or failed to prove it has it), ECONNREFUSED (no server), ETIMEDOUT, ENOENT (no such
   socket file or host), ENOMEM... */
MPDEF mp_manager *mp_manager_connect(const mp_manager_desc *d);
/* The server's address ("127.0.0.1:40123" for port 0), owned by m. NULL for NULL. */
MPDEF const char *mp_manager_address(const mp_manager *m);
/* A handle on the server's dict or list named name (1 to 255 bytes), created empty if
   absent; every mp_dict_* / mp_list_* verb takes it. Process-private memory (like a
   conn), usable from any thread, and by a forked child (which gets its own connection).
   Free it with mp_dict_destroy / mp_list_destroy (the server's object stays). Dicts,
   lists and values have a name space each. NULL + errno: EINVAL (bad name, NULL m),
   ECONNREFUSED (the server is gone), EACCES (the key was refused), ETIMEDOUT, ENOMEM
   (also: the server's heap is full), EPROTO (a malformed answer). */
MPDEF mp_dict *mp_manager_dict(mp_manager *m, const char *name);
MPDEF mp_list *mp_manager_list(mp_manager *m, const char *name);
/* A handle on the server's block of size bytes named name, created zeroed if absent:
   Python's Manager().Value and Array, read and written whole or by byte range under
   the server's lock. NULL + errno as mp_manager_dict, and EINVAL for size 0 or a block
   of that name with another size. */
MPDEF mp_value *mp_manager_value(mp_manager *m, const char *name, size_t size);
/* The block's size in bytes (0 for NULL). */
MPDEF size_t mp_value_size(const mp_value *v);
/* Copy len bytes at offset out of the block (or into it), atomically with respect to
   every other read and write of the block. MP_OK; MP_EINVAL (NULL, a range beyond the
   size); MP_ECLOSED; MP_ETIMEDOUT; MP_ENOMEM; MP_ESYS. */
MPDEF int mp_value_read(mp_value *v, size_t offset, void *buf, size_t len);
MPDEF int mp_value_write(mp_value *v, size_t offset, const void *buf, size_t len);
/* Free the handle (the server's block stays). NULL is a no-op. */
MPDEF void mp_value_destroy(mp_value *v);
/* The starter only: stop the server, join it, and free m (as mp_manager_disconnect).
   Handles on its objects fail with MP_ECLOSED from then on. MP_OK; MP_EINVAL (NULL,
   or m not from mp_manager_start in this process: nothing is freed). */
MPDEF int mp_manager_shutdown(mp_manager *m);
/* Close this process's connections and free m; the server goes on. Handles made from
   m must not be used afterwards. NULL is a no-op. */
MPDEF void mp_manager_disconnect(mp_manager *m);


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
#include <sys/auxv.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

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

/* kill(tid, 0) finds any thread by its id (ESRCH once it is gone). A killed process
   stays a zombie until its parent reaps it, and kill() still finds a zombie - while the
   parent may be the very process waiting for the dead one's lock - so a thread kill()
   finds is checked for state Z/X in /proc/<tid>/stat (slow path only). A recycled tid
   can make a dead owner look alive for a while: pid_max bounds that risk, see
   ROBUSTNESS. */
static bool mp__tid_alive(uint32_t tid) {
    if (kill((pid_t)tid, 0) != 0 && errno != EPERM) return false;
    char path[40], buf[256];
    snprintf(path, sizeof path, "/proc/%u/stat", (unsigned)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) /* vanished just now, or no /proc: ask kill() again */
        return errno != ENOENT || kill((pid_t)tid, 0) == 0 || errno == EPERM;
    ssize_t n;
    do n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0) return true;
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* "tid (comm) S ...": comm may hold anything */
    return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* This program image: the kernel's AT_RANDOM bytes, new at every exec and kept across
   fork. Function pointers are valid only within one image (programs attached to one
   named heap are different images, even of one binary, since ASLR moves them). */
static uint64_t mp__image(void) {
    static uint64_t id;
    if (!id) {
        const void *r = (const void *)getauxval(AT_RANDOM);
        uint64_t v = 0;
        if (r) memcpy(&v, r, sizeof v);
        __atomic_store_n(&id, v | 1, __ATOMIC_RELAXED);
    }
    return id;
}

/* The robust lock word: 0 free, else the owner's tid | MP__LW_WAITERS when someone
   sleeps (Drepper's three-state futex mutex with the owner in the word). A sleeper that
   sees the same owner for MP__LW_POLL_NS checks that the owner still lives and, if not,
   takes the lock over and reports MP_EOWNERDEAD. */
#define MP__LW_WAITERS 0x80000000u
#define MP__LW_TID 0x3fffffffu
#define MP__LW_POLL_NS 20000000 /* 20 ms */
#define MP__SPIN 100

/* The last owners this thread found alive, and when: a thread that keeps trying
   (timeout 0) looks at a given owner once per poll interval, not on every try. A few
   of them, since a poller of a busy queue meets several writers in turn. */
#define MP__LIVE_SEEN 4
static __thread uint32_t mp__tls_live_tid[MP__LIVE_SEEN];
static __thread int64_t mp__tls_live_at[MP__LIVE_SEEN];
static __thread unsigned mp__tls_live_next;

static bool mp__owner_alive(uint32_t tid, int64_t now) {
    for (int i = 0; i < MP__LIVE_SEEN; i++)
        if (mp__tls_live_tid[i] == tid && now - mp__tls_live_at[i] < MP__LW_POLL_NS) return true;
    if (!mp__tid_alive(tid)) return false;
    unsigned i = mp__tls_live_next++ % MP__LIVE_SEEN;
    mp__tls_live_tid[i] = tid;
    mp__tls_live_at[i] = now;
    return true;
}

static int mp__lw_acquire_slow(uint32_t *w, uint32_t me, int64_t deadline) {
    int spin = deadline > mp__now_ns() ? MP__SPIN : 0; /* a try (timeout 0) does not spin */
    for (int i = 0; i < spin; i++) {
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
        int64_t now = mp__now_ns();
        if ((v & MP__LW_TID) != seen) {
            seen = v & MP__LW_TID;
            seen_since = now;
        }
        /* look at the owner after a poll interval, and before giving up: a try (timeout
           0) must also find a dead owner */
        bool look = now >= deadline || now - seen_since >= MP__LW_POLL_NS;
        if (look && !mp__owner_alive(seen, now)) {
            if (mp__cas(w, &v, me | MP__LW_WAITERS)) return MP_EOWNERDEAD;
            continue;
        }
        if (now >= deadline) return MP_ETIMEDOUT; /* without setting WAITERS for nothing */
        if (!(v & MP__LW_WAITERS) && !mp__cas(w, &v, v | MP__LW_WAITERS)) continue;
        int64_t wake = now + MP__LW_POLL_NS < deadline ? now + MP__LW_POLL_NS : deadline;
        mp__futex_wait(w, v | MP__LW_WAITERS, wake);
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
    case MP_EAUTH: return "authentication failed";
    case MP_ENOTFOUND: return "no such key, index or name";
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

#define MP__HEAP_LAYOUT 1 /* the header's layout version: a named heap records it */
#define MP__HEAP_STEP ((size_t)4 << 20) /* a named heap's object grows this much at a time */

typedef struct mp__heap {
    uint64_t magic;      /* written last: the heap is ready */
    uint32_t lock;
    uint32_t version;    /* MP__HEAP_LAYOUT */
    size_t size, top, in_use, blocks, free_bytes;
    uint64_t addr;       /* where every process maps it */
    uint64_t committed;  /* bytes backed by the object (a named heap grows it) */
    uint32_t names_lock; /* the registry (>>names) */
    uint32_t pad_;
    uint64_t names;      /* offset of its table, 0 until the first name */
    uint64_t free_head[MP__NCLASS];
} mp__heap;

/* Process-private state, reset in a forked child. */
static struct {
    pthread_mutex_t mu; /* guards this struct; re-initialized in the child */
    mp__heap *heap;
    pid_t pid;
    mp_process *self;
    mp_process *children;
    unsigned created; /* processes created by this process, for their names */
    bool atexit_done;
    bool have_pidfd;  /* else sentinels are pipes whose write end the child holds */
    int sentinel_w;   /* that write end, in a child started without pidfd support */
    char heap_name[256]; /* "/name" of a named heap, else "" */
    int start_method;    /* the program's: MP_START_FORK or MP_START_FORKSERVER */
    int fs_sock;         /* the forkserver's request socket (the family's end), or -1 */
    pid_t fs_pid;        /* the forkserver */
} mp__g = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, NULL, NULL, 0, false, false, -1, "",
           MP_START_FORK, -1, 0};

static void mp__atfork_child(void);
static int mp__fs_launch(void); /* >>process: the forkserver, forked by mp_init */

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

/* shm_open that tells whether this call created the object: with MP_SHM_CREATE alone,
   an exclusive create first, then a plain open of the one someone else made (again if
   it is unlinked in between). */
static int mp__shm_open_fd(const char *nm, int flags, bool *created) {
    for (;;) {
        int excl = (flags & MP_SHM_CREATE) ? O_CREAT | O_EXCL : 0;
        int fd = shm_open(nm, O_RDWR | O_CLOEXEC | excl, 0600);
        if (fd >= 0 || !excl || errno != EEXIST || (flags & MP_SHM_EXCL)) {
            *created = fd >= 0 && excl;
            return fd;
        }
        if ((fd = shm_open(nm, O_RDWR | O_CLOEXEC, 0600)) >= 0 || errno != ENOENT) return fd;
    }
}

static void mp__heap_format(mp__heap *h, size_t size, size_t committed) {
    h->version = MP__HEAP_LAYOUT;
    h->size = size;
    h->top = (sizeof *h + 63) & ~(size_t)63;
    h->addr = (uint64_t)(uintptr_t)h;
    h->committed = committed;
    __atomic_store_n(&h->magic, MP__HEAP_MAGIC, __ATOMIC_RELEASE);
}

static int mp__heap_map_anon(size_t size, mp__heap **out) {
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return MP_ESYS;
    mp__heap_format((mp__heap *)m, size, size);
    *out = (mp__heap *)m;
    return MP_OK;
}

/* Map fd at addr exactly (MAP_FIXED_NOREPLACE; on a kernel that ignores the flag the
   address is only a hint, so the result is checked). NULL + errno EEXIST if taken. */
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
static void *mp__map_at(uintptr_t addr, size_t size, int fd) {
    void *m = mmap((void *)addr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE | (addr ? MAP_FIXED_NOREPLACE : 0), fd, 0);
    if (m == MAP_FAILED) return NULL;
    if (addr && (uintptr_t)m != addr) {
        munmap(m, size);
        errno = EEXIST;
        return NULL;
    }
    return m;
}

/* Where a named heap goes: one of 1024 slots 16 GiB apart from 32 TiB up, picked by the
   name's hash - far above the places Linux gives programs, libraries, thread stacks
   and mmap (near 0x55.. and 0x7f..), and above ASan's shadow. The next slots serve if
   one is taken in the creator; the kernel's choice is the last resort. */
#define MP__NAMED_BASE ((uintptr_t)1 << 45)
#define MP__NAMED_SLOT ((uintptr_t)1 << 34)
static void *mp__heap_place(const char *name, size_t size, int fd) {
    uint32_t h = 2166136261u;
    for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    for (uint32_t i = 0; i < 64 && sizeof(void *) == 8; i++) {
        void *m = mp__map_at(MP__NAMED_BASE + (uintptr_t)((h + i) % 1024) * MP__NAMED_SLOT, size, fd);
        if (m) return m;
    }
    return mp__map_at(0, size, fd);
}

/* A named heap's object is backed as the heap's top grows, MP__HEAP_STEP at a time
   (MADV_POPULATE_WRITE, Linux 5.14: it fails where a touch would SIGBUS), so a full
   /dev/shm is ENOMEM from mp_alloc (or mp_init), never a SIGBUS later. An older kernel
   refuses the advice (EINVAL): the pages then come on first touch, as anonymous ones. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static bool mp__heap_commit(mp__heap *h, size_t end) {
    if (end <= h->committed) return true;
    size_t to = (end + MP__HEAP_STEP - 1) / MP__HEAP_STEP * MP__HEAP_STEP;
    if (to > h->size) to = h->size;
    if (madvise((char *)h + h->committed, to - h->committed, MADV_POPULATE_WRITE) != 0 &&
        errno != EINVAL)
        return false;
    mp__store(&h->committed, to);
    return true;
}

/* Format the named object fd as a new heap: it is new, or its creator died before it
   was ready (the flock held during this let no one attach). */
static int mp__heap_create_named(int fd, const char *name, size_t size, mp__heap **out) {
    int e;
    if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0) return MP_ESYS;
    size_t first = size < MP__HEAP_STEP ? size : MP__HEAP_STEP;
    if ((e = posix_fallocate(fd, 0, (off_t)first)) != 0) {
        errno = e;
        return e == ENOSPC ? MP_ENOMEM : MP_ESYS;
    }
    mp__heap *h = (mp__heap *)mp__heap_place(name, size, fd);
    if (!h) return MP_ESYS;
    mp__heap_format(h, size, first);
    *out = h;
    return MP_OK;
}

/* Attach to a ready named heap whose header is hdr. MP_EINVAL with errno EPROTO
   (another layout version, or an object that does not match its header) or ERANGE
   (want, if not 0, differs from its size). */
static int mp__heap_attach(int fd, const mp__heap *hdr, size_t want, mp__heap **out) {
    struct stat st;
    if (fstat(fd, &st) < 0) return MP_ESYS;
    if (hdr->version != MP__HEAP_LAYOUT || (uint64_t)st.st_size < hdr->size ||
        hdr->size < ((size_t)1 << 20) || !hdr->addr) {
        errno = EPROTO;
        return MP_EINVAL;
    }
    if (want && want != hdr->size) {
        errno = ERANGE;
        return MP_EINVAL;
    }
    void *m = mp__map_at((uintptr_t)hdr->addr, hdr->size, fd);
    if (!m) return MP_ESYS;
    *out = (mp__heap *)m;
    return MP_OK;
}

/* The object's flock serializes creation and attach between programs; the kernel drops
   it when its holder dies, so a creator killed mid-way never blocks the next one. */
static int mp__flock(int fd, int64_t deadline) {
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) return MP_ESYS;
        if (mp__now_ns() >= deadline) return MP_ETIMEDOUT;
        usleep(1000);
    }
    return MP_OK;
}

/* Under the object's flock: attach to the heap in it, or format it if it is not ready. */
static int mp__heap_open_locked(int fd, const char *nm, const mp_config *cfg, size_t size,
                                mp__heap **out) {
    mp__heap hdr;
    ssize_t n;
    int rc = mp__flock(fd, mp__now_ns() + (int64_t)10 * 1000000000);
    if (rc != MP_OK) return rc;
    do n = pread(fd, &hdr, sizeof hdr, 0);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof hdr && hdr.magic == MP__HEAP_MAGIC)
        rc = mp__heap_attach(fd, &hdr, cfg->heap_size ? size : 0, out);
    else
        rc = mp__heap_create_named(fd, nm, size, out);
    int e = errno;
    flock(fd, LOCK_UN);
    errno = e;
    return rc;
}

static int mp__heap_open_named(const mp_config *cfg, size_t size, mp__heap **out) {
    char nm[256];
    bool created = false;
    if (!mp__shm_name(cfg->name, nm, sizeof nm)) return MP_EINVAL;
    int fd = mp__shm_open_fd(nm, MP_SHM_CREATE, &created), rc = MP_ESYS;
    if (fd < 0) return MP_ESYS;
    if (!created || fchmod(fd, cfg->mode ? (mode_t)cfg->mode : 0600) == 0)
        rc = mp__heap_open_locked(fd, nm, cfg, size, out);
    if (rc == MP_OK) { /* the mapping keeps the object: the fd is not needed any more */
        snprintf(mp__g.heap_name, sizeof mp__g.heap_name, "%s", nm);
        close(fd);
        return MP_OK;
    }
    int e = errno;
    if (created) shm_unlink(nm); /* a create that fails leaves nothing behind */
    close(fd);
    errno = e;
    return rc;
}

/* The named heap asked for is the one we have (same name, and size if given). */
static bool mp__heap_same(const mp_config *cfg) {
    char nm[256];
    if (!cfg) return true;
    if (cfg->start_method && cfg->start_method != mp__g.start_method) return false;
    if (cfg->heap_size && cfg->heap_size != mp__g.heap->size) return false;
    if (!cfg->name) return mp__g.heap_name[0] == 0;
    return mp__shm_name(cfg->name, nm, sizeof nm) && strcmp(nm, mp__g.heap_name) == 0;
}

MPDEF int mp_init(const mp_config *cfg) {
    size_t size = cfg && cfg->heap_size ? cfg->heap_size : MP_DEFAULT_HEAP_SIZE;
    int rc = MP_OK;
    if (size < ((size_t)1 << 20) || size > ((size_t)1 << 46)) return MP_EINVAL;
    if (cfg && (cfg->start_method < 0 || cfg->start_method > MP_START_FORKSERVER))
        return MP_EINVAL;
    size = (size + 4095) & ~(size_t)4095;
    pthread_mutex_lock(&mp__g.mu);
    if (mp__g.heap) {
        rc = mp__heap_same(cfg) ? MP_OK : MP_EINVAL;
    } else {
        mp__heap *h = NULL;
        rc = cfg && cfg->name ? mp__heap_open_named(cfg, size, &h) : mp__heap_map_anon(size, &h);
        if (rc == MP_OK) {
            mp__g.heap = h;
            mp__g.pid = getpid();
            int fd = (int)syscall(SYS_pidfd_open, mp__g.pid, 0);
            mp__g.have_pidfd = fd >= 0;
            if (fd >= 0) close(fd);
            pthread_atfork(NULL, NULL, mp__atfork_child);
            if (cfg && cfg->start_method == MP_START_FORKSERVER) rc = mp__fs_launch();
        }
    }
    pthread_mutex_unlock(&mp__g.mu);
    return rc;
}

MPDEF int mp_get_start_method(void) { return mp__g.start_method; }

MPDEF int mp_heap_unlink(const char *name) {
    char nm[256];
    if (!mp__shm_name(name, nm, sizeof nm)) return MP_EINVAL;
    return shm_unlink(nm) == 0 ? MP_OK : MP_ESYS;
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
    unsigned k = c;
    /* region used up: a free block of a larger class serves, whole, rather than failing
       while freed memory sits on other lists */
    if (!h->free_head[c] && mp__class_size(c) > h->size - h->top)
        while (k + 1 < MP__NCLASS && !h->free_head[k]) k++;
    if (h->free_head[k]) {
        b = (mp__block *)(base + h->free_head[k]);
        mp__store(&h->free_head[k], b->next); /* the commit: b now belongs to us */
        h->free_bytes -= mp__class_size(k);
    } else {
        size_t sz = mp__class_size(c);
        if (sz > h->size - h->top || !mp__heap_commit(h, h->top + sz)) return NULL;
        b = (mp__block *)(base + h->top);
        mp__store(&h->top, h->top + sz); /* the commit */
        k = c;
    }
    b->state = MP__BLK_USED;
    b->cls = k;
    h->in_use += mp__class_size(k);
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

/* A zeroed record of hdr bytes with a copy of src[0..n) after it (16-byte aligned),
   in one block: *copy points at the copy (left alone when n is 0). NULL + ENOMEM. */
static void *mp__alloc_tail(size_t hdr, const void *src, size_t n, void **copy) {
    size_t rec = (hdr + 15) & ~(size_t)15;
    char *p = n > SIZE_MAX - rec ? NULL : (char *)mp_alloc(rec + n);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    memset(p, 0, hdr);
    if (n) *copy = memcpy(p + rec, src, n);
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

MPDEF void *mp_realloc(void *p, size_t size) {
    if (!p || !size) return mp_alloc(size);
    mp__block *b = mp__block_of(mp__g.heap, p);
    unsigned c = b ? mp__load(&b->cls) : MP__NCLASS;
    if (!b || mp__load(&b->state) != MP__BLK_USED || c >= MP__NCLASS) {
        errno = EINVAL;
        return NULL;
    }
    size_t have = mp__class_size(c) - MP__BLK_HDR;
    if (size <= have) return p;
    void *n = mp_alloc(size);
    if (!n) return NULL;
    memcpy(n, p, have);
    mp_free(p);
    return n;
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

// >>names ------------------------------------------------------------------------
// The registry: an open-addressing table of fixed-size entries in a heap block, under a
// robust lock word of the heap's header. Every change commits with one store of an
// entry's obj (0 empty, 1 deleted, else the object's offset in the heap) or of the
// table's offset, so a process killed inside leaves it consistent: a name written into
// a slot whose obj was never stored is not there; a table being grown is either not
// yet installed (it leaks) or complete.

#define MP__NAME_MAX 255
#define MP__NAME_DELETED 1u

typedef struct mp__name_ent {
    uint64_t obj;
    char name[MP__NAME_MAX + 1];
} mp__name_ent;

typedef struct mp__names {
    uint64_t cap;  /* a power of two */
    uint64_t used; /* slots not empty (live or deleted): grows the table at 3/4 */
    mp__name_ent e[1];
} mp__names;

static mp__names *mp__names_of(mp__heap *h) {
    return h->names ? (mp__names *)(void *)((char *)h + h->names) : NULL;
}

/* FNV-1a: the registry's and the dict's hash. */
static uint64_t mp__fnv(const void *p, size_t n) {
    const unsigned char *c = (const unsigned char *)p;
    uint64_t x = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) x = (x ^ c[i]) * 1099511628211ull;
    return x;
}

static uint64_t mp__name_hash(const char *name) { return mp__fnv(name, strlen(name)); }

/* The slot holding name, or if absent the slot an insert would take (the first deleted
   one on the way, else the empty one that ends the probe). */
static mp__name_ent *mp__names_find(mp__names *t, const char *name, bool *found) {
    mp__name_ent *free_slot = NULL;
    for (uint64_t i = mp__name_hash(name) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        mp__name_ent *e = &t->e[i];
        uint64_t o = mp__load(&e->obj);
        if (o == 0) {
            *found = false;
            return free_slot ? free_slot : e;
        }
        if (o == MP__NAME_DELETED) {
            if (!free_slot) free_slot = e;
        } else if (strcmp(e->name, name) == 0) {
            *found = true;
            return e;
        }
    }
}

static mp__names *mp__names_new(uint64_t cap) {
    mp__names *t = (mp__names *)mp_calloc(1, sizeof *t + (cap - 1) * sizeof(mp__name_ent));
    if (t) t->cap = cap;
    return t;
}

/* A table with room for one more name: the current one, or a bigger copy installed in
   its place (with no deleted entries). NULL + errno ENOMEM. */
static mp__names *mp__names_room(mp__heap *h) {
    mp__names *t = mp__names_of(h), *n;
    if (t && (t->used + 1) * 4 <= t->cap * 3) return t;
    uint64_t live = 0;
    for (uint64_t i = 0; t && i < t->cap; i++) live += t->e[i].obj > MP__NAME_DELETED;
    if (!(n = mp__names_new(t && (live + 1) * 2 > t->cap ? t->cap * 2 : t ? t->cap : 64)))
        return NULL;
    for (uint64_t i = 0; t && i < t->cap; i++) {
        bool found;
        if (t->e[i].obj <= MP__NAME_DELETED) continue;
        *mp__names_find(n, t->e[i].name, &found) = t->e[i];
        n->used++;
    }
    mp__store(&h->names, (uint64_t)((char *)n - (char *)h)); /* the commit */
    mp_free(t);
    return n;
}

/* Lock the registry. A dead holder's half-done change is harmless (see above) but may
   have left the used count one short: count again. */
static mp__heap *mp__names_lock(void) {
    mp__heap *h = mp__heap_get();
    if (!h || mp__lw_acquire(&h->names_lock, MP__NEVER) != MP_EOWNERDEAD) return h;
    mp__names *t = mp__names_of(h);
    for (uint64_t i = 0, n = 0; t && i < t->cap; i++)
        if ((n += t->e[i].obj != 0, i + 1 == t->cap)) t->used = n;
    return h;
}

static bool mp__name_ok(const char *name) {
    return name && name[0] && strlen(name) <= MP__NAME_MAX;
}

/* Register obj under name (replace: overwrite an existing entry). The registered
   object, or NULL + errno. */
static void *mp__name_put(const char *name, void *obj, bool replace) {
    mp__heap *h = mp__heap_get();
    char *o = (char *)obj, *base = (char *)h;
    if (!h || !mp__name_ok(name) || o < base + sizeof *h || o >= base + mp__load(&h->top)) {
        if (h) errno = EINVAL;
        return NULL;
    }
    mp__names_lock();
    mp__names *t = mp__names_room(h);
    void *r = NULL;
    if (t) {
        bool found;
        mp__name_ent *e = mp__names_find(t, name, &found);
        if (found && !replace) {
            r = base + e->obj;
        } else {
            if (!found) memcpy(e->name, name, strlen(name) + 1);
            t->used += !found && e->obj == 0;
            mp__store(&e->obj, (uint64_t)(o - base)); /* the commit */
            r = obj;
        }
    }
    mp__lw_release(&h->names_lock);
    return r;
}

MPDEF int mp_name_set(const char *name, void *obj) {
    if (mp__name_put(name, obj, true)) return MP_OK;
    return errno == ENOMEM ? MP_ENOMEM : MP_EINVAL;
}

MPDEF void *mp_name_setdefault(const char *name, void *obj) { return mp__name_put(name, obj, false); }

/* Look name up; with del, remove it. The object, or NULL + errno ENOENT / EINVAL. */
static void *mp__name_take(const char *name, bool del) {
    if (!mp__name_ok(name)) {
        errno = EINVAL;
        return NULL;
    }
    mp__heap *h = mp__names_lock();
    if (!h) return NULL;
    mp__names *t = mp__names_of(h);
    void *r = NULL;
    bool found = false;
    mp__name_ent *e = t ? mp__names_find(t, name, &found) : NULL;
    if (found) {
        r = (char *)h + e->obj;
        if (del) mp__store(&e->obj, (uint64_t)MP__NAME_DELETED); /* the commit */
    }
    mp__lw_release(&h->names_lock);
    if (!found) errno = ENOENT;
    return r;
}

MPDEF void *mp_name_get(const char *name) { return mp__name_take(name, false); }

MPDEF int mp_name_del(const char *name) {
    if (mp__name_take(name, true)) return MP_OK;
    return errno == ENOENT ? MP_ENOTFOUND : MP_EINVAL;
}

// >>process ----------------------------------------------------------------------
// fork-based processes. The record lives in the shared heap (so children can name
// themselves and siblings can read it); the sentinel fd and reaping belong to the
// process that created it.

enum { MP__P_CREATED, MP__P_STARTED, MP__P_REAPED };

#define MP__PROCESS_MAGIC 0x6d705072u

struct mp_process {
    uint32_t magic; /* MP__PROCESS_MAGIC; 0 once destroyed */
    mp_target_fn target;
    void *arg;
    bool daemon;
    int state;
    int exitcode;
    int sentinel;   /* pidfd (or pipe read end) in the creator, -1 before start */
    pid_t pid;
    pid_t creator;  /* the process that may start/join/destroy it */
    pid_t parent;   /* the pid the child reports as mp_parent_pid */
    int method;     /* MP_START_FORK or MP_START_FORKSERVER */
    uint32_t fs_done; /* forkserver: 1 once the server reaped it and set exitcode */
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
    mp__g.created = 0;
}

/* A live record: not NULL, and not destroyed (as long as its memory was not reused). */
static bool mp__p_ok(const mp_process *p) { return p && p->magic == MP__PROCESS_MAGIC; }

/* Python names a process when it is created: Process-N, N counting this process's
   creations; a grandchild is Process-N:M. */
static void mp__name_process(mp_process *p) {
    unsigned n;
    pthread_mutex_lock(&mp__g.mu);
    n = ++mp__g.created;
    pthread_mutex_unlock(&mp__g.mu);
    const char *parent = mp__g.self ? mp__g.self->ident : "";
    snprintf(p->ident, sizeof p->ident, "%.27s%s%u", parent, *parent ? ":" : "", n);
    if (!p->name[0]) snprintf(p->name, sizeof p->name, "Process-%s", p->ident);
}

MPDEF mp_process *mp_process_create(const mp_process_desc *d) {
    if (!d || !d->target) {
        errno = EINVAL;
        return NULL;
    }
    if ((d->arg_size && !d->arg) || d->start_method < 0 || d->start_method > MP_START_FORKSERVER ||
        (d->start_method == MP_START_FORKSERVER && mp__g.fs_sock < 0)) {
        errno = EINVAL; /* the forkserver exists only if mp_init started it */
        return NULL;
    }
    void *copy = d->arg;
    mp_process *p = (mp_process *)mp__alloc_tail(sizeof *p, d->arg, d->arg_size, &copy);
    if (!p) return NULL;
    p->magic = MP__PROCESS_MAGIC;
    p->target = d->target;
    p->arg = copy;
    p->daemon = d->daemon;
    p->exitcode = MP_EXITCODE_NONE;
    p->sentinel = -1;
    p->creator = mp__g.pid;
    p->method = d->start_method ? d->start_method : mp__g.start_method;
    if (d->name) snprintf(p->name, sizeof p->name, "%s", d->name);
    mp__name_process(p);
    return p;
}

static void mp__exit_children(void);

static void mp__atexit(void) { mp__exit_children(); }

/* Runs in the new child: become p, hold our sentinel pipe (if any) and not our
   parent's, arrange to die with the parent if daemon. */
static void mp__child_enter(mp_process *p, pid_t parent, bool from_main_thread, int pipe[2]) {
    mp__g.self = p;
    p->pid = getpid();
    if (mp__g.sentinel_w >= 0) close(mp__g.sentinel_w);
    mp__g.sentinel_w = pipe[1];
    if (pipe[0] >= 0) close(pipe[0]);
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


/* ---- the forkserver ----
   A process forked by mp_init (so while the program is still single-threaded) that
   forks every process the family asks for: no lock another thread held at the time of
   the request is held in its children. It is double-forked (no process's child, so no
   user's waitpid(-1) or SIGCHLD handler sees it) and holds a copy of the heap.

   A request is one SOCK_SEQPACKET message on a socketpair the family inherits (never
   an address: no one outside the family can reach it; the kernel's credentials on each
   message are checked against the server's uid): the record's address, and a fresh
   socket for the reply. The server forks the child, answers with its pid and a
   sentinel fd (a pidfd, or the read end of a pipe whose write end only the child
   holds), and, when the child ends, reaps it and stores its exit code in the record
   (fs_done, a futex word). It kills the daemon children of a requester found dead, and
   leaves once the process that launched it is gone and its children all ended. If the
   server dies, later starts fail (MP_ESYS, errno EPIPE) and running children go on: a
   join still ends when they do, with exit code MP_EXITCODE_LOST. */

typedef struct mp__fs_req {
    uint64_t magic;
    mp_process *rec;
    uint32_t stdio; /* bit i: the requester's fd i (0, 1, 2) comes along */
    uint32_t pad_;
} mp__fs_req;

typedef struct mp__fs_reply {
    int32_t pid; /* > 0, or -errno */
    int32_t pad_;
} mp__fs_reply;

#define MP__FS_MAGIC 0x6d70466f726b5371ull

typedef struct mp__fs_child {
    pid_t pid, requester;
    mp_process *rec;
    bool daemon;
} mp__fs_child;

static struct { /* the server's own state (its process only) */
    mp__fs_child *c;
    size_t n, cap;
    sigset_t user_mask; /* the mask the program had: its children get it back */
    int fds[3];         /* the server's own: its socket end, signalfd, root's pidfd */
} mp__fs;

#define MP__FS_FDS 4 /* a request carries its reply socket and the requester's 0, 1, 2 */

/* sendmsg of one message with nfd fds (at most MP__FS_FDS), EINTR retried. */
static ssize_t mp__fs_send(int sock, const void *buf, size_t len, const int *fds, int nfd) {
    union { char b[CMSG_SPACE(MP__FS_FDS * sizeof(int))]; struct cmsghdr a; } ctl;
    struct iovec io = {(void *)buf, len};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    memset(&ctl, 0, sizeof ctl);
    m.msg_iov = &io, m.msg_iovlen = 1;
    if (nfd > 0) {
        m.msg_control = ctl.b, m.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfd * sizeof(int));
    }
    ssize_t r;
    do r = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r;
}

/* One message into buf; fds[0..MP__FS_FDS) the fds it carried (-1 past them), *uid and
   *pid the sender's credentials when the socket passes them (else left as they are). */
static ssize_t mp__fs_recv(int sock, void *buf, size_t len, int *fds, uid_t *uid, pid_t *pid) {
    union {
        char b[CMSG_SPACE(MP__FS_FDS * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr a;
    } ctl;
    struct iovec io = {buf, len};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &io, m.msg_iovlen = 1, m.msg_control = ctl.b, m.msg_controllen = sizeof ctl.b;
    ssize_t r;
    do r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    for (int i = 0; i < MP__FS_FDS; i++) fds[i] = -1;
    for (struct cmsghdr *c = r >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_RIGHTS) {
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(c), (n < MP__FS_FDS ? n : MP__FS_FDS) * sizeof(int));
        }
        if (c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cr;
            memcpy(&cr, CMSG_DATA(c), sizeof cr);
            *uid = cr.uid, *pid = cr.pid;
        }
    }
    return r;
}

/* In the server: a record we may start, sent by its creator. */
static bool mp__fs_valid(const mp_process *rec, pid_t sender) {
    char *p = (char *)rec, *base = (char *)mp__g.heap;
    if (p < base || p + sizeof *rec > base + mp__g.heap->size) return false;
    return rec->magic == MP__PROCESS_MAGIC && rec->creator == sender &&
           rec->state == MP__P_CREATED && rec->method == MP_START_FORKSERVER;
}

/* In the server: fork the child for rec, with the requester's stdio (fds[1..3], each
   -1 if absent) as its own. Its pid (> 0), or -errno; *sentinel: its fd. The child
   keeps none of the server's fds but the family's socket end. */
static pid_t mp__fs_fork(mp_process *rec, const int *fds, int *sentinel) {
    int sp[2] = {-1, -1};
    *sentinel = -1;
    if (!mp__g.have_pidfd && pipe2(sp, O_CLOEXEC) < 0) return -errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        if (sp[0] >= 0) close(sp[0]), close(sp[1]);
        return -e;
    }
    if (pid == 0) {
        for (int i = 0; i < 3; i++)
            if (mp__fs.fds[i] >= 0) close(mp__fs.fds[i]);
        for (int i = 1; i < MP__FS_FDS; i++) /* as if forked by the requester */
            if (fds[i] >= 0 && dup2(fds[i], i - 1) < 0) _exit(127);
        for (int i = 0; i < MP__FS_FDS; i++)
            if (fds[i] > 2) close(fds[i]);
        free(mp__fs.c);
        sigprocmask(SIG_SETMASK, &mp__fs.user_mask, NULL);
        mp__child_enter(rec, rec->parent, false, sp); /* daemons: the server kills them */
        mp__child_run(rec);
    }
    if (sp[1] >= 0) close(sp[1]);
    *sentinel = mp__g.have_pidfd ? (int)syscall(SYS_pidfd_open, pid, 0) : sp[0];
    return pid;
}

static void mp__fs_track(pid_t pid, pid_t requester, mp_process *rec) {
    if (mp__fs.n == mp__fs.cap) {
        size_t cap = mp__fs.cap ? mp__fs.cap * 2 : 64;
        mp__fs_child *c = (mp__fs_child *)realloc(mp__fs.c, cap * sizeof *c);
        if (!c) return; /* untracked: reaped all the same, its status is lost */
        mp__fs.c = c, mp__fs.cap = cap;
    }
    mp__fs_child *c = &mp__fs.c[mp__fs.n++];
    c->pid = pid, c->requester = requester, c->rec = rec, c->daemon = rec->daemon;
}

/* In the server: answer one request (a requester that died meanwhile is no matter). */
static void mp__fs_serve(int ctl) {
    mp__fs_req req;
    int got[MP__FS_FDS], fds[MP__FS_FDS] = {-1, -1, -1, -1}, sentinel = -1, k = 0;
    uid_t uid = (uid_t)-1;
    pid_t sender = 0;
    ssize_t n = mp__fs_recv(ctl, &req, sizeof req, got, &uid, &sender);
    if (n < 0 || got[0] < 0) return;
    for (int i = 0; i < MP__FS_FDS; i++) /* the reply socket, then stdio where sent */
        if (i == 0 || (n == (ssize_t)sizeof req && (req.stdio >> (i - 1)) & 1)) fds[i] = got[k++];
    for (; k < MP__FS_FDS; k++)
        if (got[k] >= 0) close(got[k]);
    mp__fs_reply rep = {-EPERM, 0};
    if (n == (ssize_t)sizeof req && req.magic == MP__FS_MAGIC && uid == getuid() &&
        mp__fs_valid(req.rec, sender)) {
        rep.pid = mp__fs_fork(req.rec, fds, &sentinel);
        if (rep.pid > 0) mp__fs_track(rep.pid, sender, req.rec);
    }
    mp__fs_send(fds[0], &rep, sizeof rep, &sentinel, sentinel >= 0);
    if (sentinel >= 0) close(sentinel);
    for (int i = 0; i < MP__FS_FDS; i++)
        if (fds[i] >= 0) close(fds[i]);
}

/* In the server: reap every ended child and publish its exit code in its record. */
static void mp__fs_reap(void) {
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (size_t i = 0; i < mp__fs.n; i++) {
            if (mp__fs.c[i].pid != pid) continue;
            mp_process *rec = mp__fs.c[i].rec;
            rec->exitcode = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
            __atomic_store_n(&rec->fs_done, 1u, __ATOMIC_RELEASE);
            mp__futex_wake(&rec->fs_done, INT_MAX);
            mp__fs.c[i] = mp__fs.c[--mp__fs.n];
            break;
        }
    }
}

/* In the server: daemon children whose requester died die too (fork's PDEATHSIG). */
static bool mp__fs_watch_daemons(void) {
    bool any = false;
    for (size_t i = 0; i < mp__fs.n; i++) {
        if (!mp__fs.c[i].daemon) continue;
        any = true;
        if (!mp__tid_alive((uint32_t)mp__fs.c[i].requester)) kill(mp__fs.c[i].pid, SIGKILL);
    }
    return any;
}

static void mp__fs_main(int ctl, pid_t root) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int rootfd = (int)syscall(SYS_pidfd_open, root, 0);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    prctl(PR_SET_NAME, "mp-forkserver");
    for (;;) {
        mp__fs.fds[0] = ctl, mp__fs.fds[1] = sfd, mp__fs.fds[2] = rootfd;
        struct pollfd p[3] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}, {rootfd, POLLIN, 0}};
        bool daemons = mp__fs_watch_daemons(), root_gone = !mp__tid_alive((uint32_t)root);
        if (root_gone && mp__fs.n == 0) _exit(0);
        /* without pidfds (valgrind) or with daemons to watch, look every 50 ms */
        int ms = daemons || rootfd < 0 || sfd < 0 || root_gone ? 50 : -1;
        if (poll(p, rootfd >= 0 && !root_gone ? 3 : 2, ms) < 0 && errno != EINTR) _exit(1);
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0) {}
        }
        mp__fs_reap();
        if (p[0].revents & POLLIN) mp__fs_serve(ctl);
        if (p[2].revents) close(rootfd), rootfd = -1;
    }
}

/* In mp_init: the control socketpair, then fork twice (the middle one leaves at once,
   so the server is no one's child) and wait for the server to say it is up. */
static int mp__fs_launch(void) {
    int sv[2], up[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return MP_ESYS;
    if (pipe2(up, O_CLOEXEC) < 0) {
        close(sv[0]), close(sv[1]);
        return MP_ESYS;
    }
    pid_t root = getpid(), mid = fork();
    if (mid == 0) {
        pid_t fs = fork();
        if (fs == 0) {
            sigset_t chld;
            int one = 1;
            sigemptyset(&chld);
            sigaddset(&chld, SIGCHLD);
            sigprocmask(SIG_BLOCK, &chld, &mp__fs.user_mask);
            close(up[0]);
            pid_t me = getpid();
            mp__g.fs_sock = sv[0], mp__g.fs_pid = me, mp__g.start_method = MP_START_FORKSERVER;
            if (setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) _exit(1);
            if (write(up[1], &me, sizeof me) != (ssize_t)sizeof me) _exit(1);
            close(up[1]);
            mp__fs_main(sv[1], root); /* keeps sv[0]: its children make requests too */
        }
        _exit(fs < 0);
    }
    int st = 0, e = errno;
    pid_t fs = 0;
    close(up[1]);
    close(sv[1]);
    if (mid > 0) while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {}
    ssize_t n = -1;
    if (mid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        do n = read(up[0], &fs, sizeof fs);
        while (n < 0 && errno == EINTR);
    close(up[0]);
    if (n != (ssize_t)sizeof fs) {
        close(sv[0]);
        errno = mid < 0 ? e : ECHILD;
        return MP_ESYS;
    }
    mp__g.fs_sock = sv[0];
    mp__g.fs_pid = fs;
    mp__g.start_method = MP_START_FORKSERVER;
    return MP_OK;
}

/* In the requester: have the server start p. MP_OK with p->pid and p->sentinel set;
   MP_ESYS with errno (EPIPE: the server is gone; EAGAIN: its fork failed...). */
static int mp__fs_start(mp_process *p) {
    int sv[2], fd[MP__FS_FDS], send[MP__FS_FDS], nsend = 1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return MP_ESYS;
    mp__fs_req req = {MP__FS_MAGIC, p, 0, 0};
    mp__fs_reply rep = {-EPIPE, 0};
    uid_t uid;
    pid_t pid;
    ssize_t n = -1;
    send[0] = sv[1];
    for (int i = 0; i < 3; i++) /* our stdio as it is now, as a fork would give it */
        if (fcntl(i, F_GETFD) >= 0) req.stdio |= 1u << i, send[nsend++] = i;
    fflush(NULL); /* as before a fork: the order of output is the same */
    fd[0] = -1;
    if (mp__fs_send(mp__g.fs_sock, &req, sizeof req, send, nsend) == (ssize_t)sizeof req) {
        close(sv[1]), sv[1] = -1;
        n = mp__fs_recv(sv[0], &rep, sizeof rep, fd, &uid, &pid); /* 0: server gone */
    }
    if (sv[1] >= 0) close(sv[1]);
    close(sv[0]);
    if (n != (ssize_t)sizeof rep || rep.pid <= 0) {
        if (fd[0] >= 0) close(fd[0]);
        errno = n == (ssize_t)sizeof rep ? -rep.pid : EPIPE;
        return MP_ESYS;
    }
    p->pid = rep.pid;
    p->sentinel = fd[0];
    return MP_OK;
}

/* In the creator: has the server reported p's end? With block, wait for it. A server
   that died cannot: then p's own end (its sentinel) decides, with MP_EXITCODE_LOST. */
static bool mp__fs_ended(mp_process *p, bool block) {
    for (;;) {
        if (__atomic_load_n(&p->fs_done, __ATOMIC_ACQUIRE)) return true;
        if (!mp__owner_alive((uint32_t)mp__g.fs_pid, mp__now_ns())) {
            struct pollfd pfd = {p->sentinel, POLLIN, 0};
            bool gone = p->sentinel >= 0 ? poll(&pfd, 1, block ? -1 : 0) > 0 : kill(p->pid, 0) != 0;
            if (!gone && !block) return false;
            if (!gone) continue;
            p->exitcode = MP_EXITCODE_LOST;
            return true;
        }
        if (!block) return false;
        mp__futex_wait(&p->fs_done, 0, mp__now_ns() + MP__LW_POLL_NS);
    }
}

/* A start went through (rc MP_OK): p is one of our children now. */
static int mp__process_started(mp_process *p, int rc) {
    if (rc != MP_OK) return rc;
    p->state = MP__P_STARTED;
    pthread_mutex_lock(&mp__g.mu);
    p->next_child = mp__g.children;
    mp__g.children = p;
    pthread_mutex_unlock(&mp__g.mu);
    return MP_OK;
}

MPDEF int mp_process_start(mp_process *p) {
    if (!mp__p_ok(p) || !mp__heap_get()) return mp__p_ok(p) ? MP_ESYS : MP_EINVAL;
    if (p->creator != mp__g.pid) return MP_EPERM;
    if (p->state != MP__P_CREATED) return MP_EINVAL;
    pthread_mutex_lock(&mp__g.mu);
    if (!mp__g.atexit_done) mp__g.atexit_done = atexit(mp__atexit) == 0;
    pthread_mutex_unlock(&mp__g.mu);
    pid_t parent = mp__g.pid;
    bool main_thread = mp__tid() == (uint32_t)parent;
    p->parent = parent;
    if (p->method == MP_START_FORKSERVER) return mp__process_started(p, mp__fs_start(p));
    int sp[2] = {-1, -1};
    if (!mp__g.have_pidfd && pipe2(sp, O_CLOEXEC) < 0) return MP_ESYS;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        if (sp[0] >= 0) close(sp[0]), close(sp[1]);
        errno = e;
        return MP_ESYS;
    }
    if (pid == 0) {
        mp__child_enter(p, parent, main_thread, sp);
        mp__child_run(p);
    }
    p->pid = pid;
    if (sp[1] >= 0) close(sp[1]);
    p->sentinel = mp__g.have_pidfd ? (int)syscall(SYS_pidfd_open, pid, 0) : sp[0];
    return mp__process_started(p, MP_OK);
}

/* Reap p if it ended. true once reaped. */
/* ECHILD: another thread of ours may have just reaped p (its state follows at once);
   otherwise a SIGCHLD handler or SIG_IGN took the status behind our back. */
static bool mp__reaped_elsewhere(mp_process *p) {
    for (int i = 0; i < 100; i++) {
        if (mp__load(&p->state) == MP__P_REAPED) return true;
        usleep(100);
    }
    p->exitcode = MP_EXITCODE_LOST;
    mp__store(&p->state, MP__P_REAPED);
    return true;
}

/* Reap p if it ended (block: wait until it does). true once reaped. */
static bool mp__reap(mp_process *p, bool block) {
    int st = 0, state = mp__load(&p->state);
    if (state != MP__P_STARTED) return state == MP__P_REAPED;
    if (p->method == MP_START_FORKSERVER) {
        if (!mp__fs_ended(p, block)) return false;
        mp__store(&p->state, MP__P_REAPED);
        return true;
    }
    pid_t r;
    do r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0) return false;
    if (r < 0) return mp__reaped_elsewhere(p);
    p->exitcode = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
    mp__store(&p->state, MP__P_REAPED);
    return true;
}

/* Wait for the server to report p's end (it wakes fs_done), looking at the server
   every poll interval. */
static int mp__fs_join(mp_process *p, int64_t deadline) {
    while (!mp__reap(p, false)) {
        int64_t now = mp__now_ns(), slice = now + MP__LW_POLL_NS;
        if (now >= deadline) return MP_ETIMEDOUT;
        mp__futex_wait(&p->fs_done, 0, slice < deadline ? slice : deadline);
    }
    return MP_OK;
}

/* A started process of ours: MP_OK; MP_EINVAL (NULL, destroyed, never started);
   MP_EPERM (created by another process: only the creator may wait for it). */
static int mp__ours(const mp_process *p) {
    if (!mp__p_ok(p) || !mp__g.pid) return MP_EINVAL;
    if (p->creator != mp__g.pid) return MP_EPERM;
    return p->state == MP__P_CREATED ? MP_EINVAL : MP_OK;
}

MPDEF int mp_process_join(mp_process *p, double timeout) {
    int rc = mp__ours(p);
    if (rc != MP_OK) return rc;
    int64_t deadline = mp__deadline(timeout);
    if (deadline == MP__NEVER) { /* a plain blocking waitpid: one wakeup, no poll */
        mp__reap(p, true);
        return MP_OK;
    }
    if (p->method == MP_START_FORKSERVER) return mp__fs_join(p, deadline);
    bool pipe_eof = false;
    while (!mp__reap(p, false)) {
        if (mp__now_ns() >= deadline) return MP_ETIMEDOUT;
        int ms = mp__poll_ms(deadline);
        /* A sentinel pipe can outlive the child in a plain fork() of it, and reads EOF
           a moment before the child is reapable: re-check often. */
        bool pipe_mode = !mp__g.have_pidfd || p->sentinel < 0;
        if (pipe_mode && (ms < 0 || ms > (pipe_eof ? 1 : 50))) ms = pipe_eof ? 1 : 50;
        struct pollfd pfd = {pipe_eof ? -1 : p->sentinel, POLLIN, 0};
        if (poll(&pfd, 1, ms) > 0 && pipe_mode) pipe_eof = true; /* EINTR: loop re-checks */
    }
    return MP_OK;
}

MPDEF bool mp_process_is_alive(mp_process *p) {
    if (!mp__p_ok(p) || p->state != MP__P_STARTED) return false;
    if (p->creator != mp__g.pid) return kill(p->pid, 0) == 0;
    return !mp__reap(p, false);
}

static int mp__signal(mp_process *p, int sig) {
    if (!mp__p_ok(p) || p->state == MP__P_CREATED) return MP_EINVAL;
    if (p->state == MP__P_REAPED) return MP_OK;
    if (p->creator == mp__g.pid && mp__reap(p, false)) return MP_OK;
    if (kill(p->pid, sig) < 0 && errno != ESRCH) return MP_ESYS;
    return MP_OK;
}

MPDEF int mp_process_terminate(mp_process *p) { return mp__signal(p, SIGTERM); }
MPDEF int mp_process_kill(mp_process *p) { return mp__signal(p, SIGKILL); }

MPDEF int mp_process_exitcode(mp_process *p) {
    if (!mp__p_ok(p)) return MP_EXITCODE_NONE;
    if (p->state == MP__P_STARTED && p->creator == mp__g.pid) mp__reap(p, false);
    return p->exitcode;
}

MPDEF pid_t mp_process_pid(const mp_process *p) { return p ? p->pid : 0; }

MPDEF const char *mp_process_name(const mp_process *p) { return p ? p->name : ""; }

MPDEF int mp_process_sentinel(mp_process *p) {
    int rc = mp__ours(p);
    if (rc != MP_OK) return rc;
    return p->sentinel < 0 ? MP_EINVAL : p->sentinel;
}

MPDEF int mp_process_destroy(mp_process *p) {
    if (!p) return MP_OK;
    if (!mp__p_ok(p) || p == mp__g.self) return MP_EINVAL;
    if (p->creator != mp__g.pid) return MP_EPERM;
    if (p->state != MP__P_CREATED) {
        if (!mp__reap(p, false)) return MP_EINVAL;
        pthread_mutex_lock(&mp__g.mu);
        mp_process **pp = &mp__g.children;
        while (*pp && *pp != p) pp = &(*pp)->next_child;
        if (*pp) *pp = p->next_child;
        pthread_mutex_unlock(&mp__g.mu);
        if (p->sentinel >= 0) close(p->sentinel);
    }
    p->magic = 0;
    mp_free(p);
    return MP_OK;
}

MPDEF size_t mp_active_children(mp_process **out, size_t cap) {
    size_t n = 0;
    pthread_mutex_lock(&mp__g.mu);
    for (mp_process *c = mp__g.children; c; c = c->next_child) {
        if (mp__reap(c, false)) continue;
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
        if (c->daemon && !mp__reap(c, false)) kill(c->pid, SIGTERM);
    for (c = list; c; c = c->next_child) mp_process_join(c, MP_FOREVER);
}

MPDEF mp_process *mp_current_process(void) {
    if (mp__g.self || !mp__heap_get()) return mp__g.self;
    mp_process *p = (mp_process *)mp_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->magic = MP__PROCESS_MAGIC;
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
// Lock, rlock, semaphore, event, condition, barrier: futex words in the shared heap.
// Every sleeper wakes at least every MP__SYNC_POLL_NS to look again, so a process killed
// between changing a word and waking the sleepers delays them by that much, no more.

#define MP__SYNC_POLL_NS 100000000 /* 100 ms */
#define MP__DEAD_MAGIC 0xdead0b1eu
#define MP__LOCK_MAGIC 0x6d704c6bu
#define MP__RLOCK_MAGIC 0x6d70526bu
#define MP__SEM_MAGIC 0x6d705365u
#define MP__EVENT_MAGIC 0x6d704576u
#define MP__COND_MAGIC 0x6d70436eu
#define MP__BARRIER_MAGIC 0x6d704272u
/* Where a store must be ordered before a later load of another word (Dekker-style
   "publish, then look for sleepers"); on x86 these are the same instructions. */
#define mp__cas_sc(p, expp, v) \
    __atomic_compare_exchange_n((p), (expp), (v), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define mp__load_sc(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define mp__magic_ok(o, m) ((o) && __atomic_load_n(&(o)->magic, __ATOMIC_RELAXED) == (m))

/* How many sleepers FUTEX_WAKE woke (0 on error). */
static int mp__futex_wake_n(uint32_t *addr, int n) {
    long r = syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
    return r > 0 ? (int)r : 0;
}

/* Sleep while *addr == val, until deadline or one poll interval, whichever is first. */
static void mp__sync_sleep(uint32_t *addr, uint32_t val, int64_t deadline) {
    int64_t cap = mp__now_ns() + MP__SYNC_POLL_NS;
    mp__futex_wait(addr, val, deadline < cap ? deadline : cap);
}

/* A zeroed object whose first field is its magic. */
static void *mp__sync_new(size_t size, uint32_t magic) {
    uint32_t *o = (uint32_t *)mp_calloc(1, size);
    if (o) mp__store(o, magic);
    return o;
}

/* Mark dead (so later calls see MP_EINVAL while the block is not reused) and free. */
static void mp__sync_free(uint32_t *magic) {
    mp__store(magic, MP__DEAD_MAGIC);
    mp_free(magic);
}

/* --- lock: the robust lock word of >>base ---------------------------------------- */

struct mp_lock {
    uint32_t magic;
    uint32_t word; /* mp__lw: 0 free, owner tid | MP__LW_WAITERS */
};

MPDEF mp_lock *mp_lock_create(void) {
    return (mp_lock *)mp__sync_new(sizeof(mp_lock), MP__LOCK_MAGIC);
}

MPDEF int mp_lock_acquire(mp_lock *l, double timeout) {
    if (!mp__magic_ok(l, MP__LOCK_MAGIC)) return MP_EINVAL;
    uint32_t me = mp__tid(), z = 0;
    if (mp__cas(&l->word, &z, me)) return MP_OK; /* no clock read on the fast path */
    return mp__lw_acquire_slow(&l->word, me, mp__deadline(timeout));
}

MPDEF int mp_lock_release(mp_lock *l) {
    if (!mp__magic_ok(l, MP__LOCK_MAGIC)) return MP_EINVAL;
    return mp__lw_release(&l->word);
}

MPDEF void mp_lock_destroy(mp_lock *l) {
    if (mp__magic_ok(l, MP__LOCK_MAGIC)) mp__sync_free(&l->magic);
}

/* --- rlock: the lock word plus a depth only its owner touches --------------------- */

struct mp_rlock {
    uint32_t magic;
    uint32_t word;
    uint32_t depth;
};

MPDEF mp_rlock *mp_rlock_create(void) {
    return (mp_rlock *)mp__sync_new(sizeof(mp_rlock), MP__RLOCK_MAGIC);
}

MPDEF int mp_rlock_acquire(mp_rlock *r, double timeout) {
    if (!mp__magic_ok(r, MP__RLOCK_MAGIC)) return MP_EINVAL;
    uint32_t me = mp__tid(), z = 0;
    if ((__atomic_load_n(&r->word, __ATOMIC_RELAXED) & MP__LW_TID) == me) {
        if (r->depth == UINT32_MAX) return MP_EOVERFLOW;
        r->depth++;
        return MP_OK;
    }
    int rc = MP_OK;
    if (!mp__cas(&r->word, &z, me)) rc = mp__lw_acquire_slow(&r->word, me, mp__deadline(timeout));
    if (rc != MP_ETIMEDOUT) r->depth = 1;
    return rc;
}

MPDEF int mp_rlock_release(mp_rlock *r) {
    if (!mp__magic_ok(r, MP__RLOCK_MAGIC)) return MP_EINVAL;
    uint32_t owner = __atomic_load_n(&r->word, __ATOMIC_RELAXED) & MP__LW_TID;
    if (owner != mp__tid()) return MP_EPERM;
    if (--r->depth) return MP_OK;
    return mp__lw_release(&r->word);
}

MPDEF void mp_rlock_destroy(mp_rlock *r) {
    if (mp__magic_ok(r, MP__RLOCK_MAGIC)) mp__sync_free(&r->magic);
}

/* --- semaphore: a count word and a sleeper count --------------------------------- */

struct mp_semaphore {
    uint32_t magic;
    uint32_t value;    /* futex word */
    uint32_t max;      /* 0: unbounded */
    uint32_t sleepers; /* processes in (or about to enter) futex_wait on value */
};

MPDEF mp_semaphore *mp_semaphore_create(unsigned value, unsigned max) {
    if (value > INT_MAX || max > INT_MAX || (max && value > max)) {
        errno = EINVAL;
        return NULL;
    }
    mp_semaphore *s = (mp_semaphore *)mp__sync_new(sizeof(mp_semaphore), MP__SEM_MAGIC);
    if (s) {
        s->value = value;
        s->max = max;
    }
    return s;
}

static bool mp__sem_take(mp_semaphore *s) {
    uint32_t v = mp__load_sc(&s->value);
    while (v > 0)
        if (mp__cas_sc(&s->value, &v, v - 1)) return true;
    return false;
}

MPDEF int mp_semaphore_acquire(mp_semaphore *s, double timeout) {
    if (!mp__magic_ok(s, MP__SEM_MAGIC)) return MP_EINVAL;
    if (mp__sem_take(s)) return MP_OK;
    if (timeout == 0) return MP_ETIMEDOUT;
    int64_t deadline = mp__deadline(timeout);
    for (int i = 0; i < MP__SPIN; i++) {
        mp__cpu_relax();
        if (mp__sem_take(s)) return MP_OK;
    }
    int rc = MP_ETIMEDOUT;
    __atomic_fetch_add(&s->sleepers, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        if (mp__sem_take(s)) { /* before the deadline check: a woken sleeper takes */
            rc = MP_OK;
            break;
        }
        if (mp__now_ns() >= deadline) break;
        mp__sync_sleep(&s->value, 0, deadline);
    }
    __atomic_fetch_sub(&s->sleepers, 1, __ATOMIC_SEQ_CST);
    return rc;
}

MPDEF int mp_semaphore_release(mp_semaphore *s) {
    if (!mp__magic_ok(s, MP__SEM_MAGIC)) return MP_EINVAL;
    uint32_t v = mp__load(&s->value);
    do {
        if ((s->max && v >= s->max) || v >= INT_MAX) return MP_EOVERFLOW;
    } while (!mp__cas_sc(&s->value, &v, v + 1));
    if (mp__load_sc(&s->sleepers)) mp__futex_wake(&s->value, 1);
    return MP_OK;
}

MPDEF int mp_semaphore_value(mp_semaphore *s) {
    if (!mp__magic_ok(s, MP__SEM_MAGIC)) return MP_EINVAL;
    return (int)mp__load(&s->value);
}

MPDEF void mp_semaphore_destroy(mp_semaphore *s) {
    if (mp__magic_ok(s, MP__SEM_MAGIC)) mp__sync_free(&s->magic);
}

/* --- event: one word, generation << 2 | sleepers << 1 | flag ----------------------- */
// set bumps the generation, so a waiter that saw the flag clear returns MP_OK once the
// generation moved, whatever the flag says by the time it runs.

#define MP__EV_SET 1u
#define MP__EV_SLEEPERS 2u

struct mp_event {
    uint32_t magic;
    uint32_t word;
};

MPDEF mp_event *mp_event_create(void) {
    return (mp_event *)mp__sync_new(sizeof(mp_event), MP__EVENT_MAGIC);
}

MPDEF void mp_event_set(mp_event *e) {
    if (!mp__magic_ok(e, MP__EVENT_MAGIC)) return;
    uint32_t v = mp__load(&e->word);
    do {
        if (v & MP__EV_SET) return;
    } while (!mp__cas(&e->word, &v, (((v >> 2) + 1) << 2) | MP__EV_SET));
    if (v & MP__EV_SLEEPERS) mp__futex_wake(&e->word, INT_MAX);
}

MPDEF void mp_event_clear(mp_event *e) {
    if (!mp__magic_ok(e, MP__EVENT_MAGIC)) return;
    uint32_t v = mp__load(&e->word);
    while ((v & MP__EV_SET) && !mp__cas(&e->word, &v, v & ~MP__EV_SET)) {}
}

MPDEF bool mp_event_is_set(mp_event *e) {
    return mp__magic_ok(e, MP__EVENT_MAGIC) && (mp__load(&e->word) & MP__EV_SET);
}

MPDEF int mp_event_wait(mp_event *e, double timeout) {
    if (!mp__magic_ok(e, MP__EVENT_MAGIC)) return MP_EINVAL;
    uint32_t v = mp__load(&e->word), gen = v >> 2;
    int64_t deadline = (v & MP__EV_SET) ? 0 : mp__deadline(timeout);
    for (;;) {
        if ((v & MP__EV_SET) || (v >> 2) != gen) return MP_OK;
        if (mp__now_ns() >= deadline) return MP_ETIMEDOUT;
        if (!(v & MP__EV_SLEEPERS) && !mp__cas(&e->word, &v, v | MP__EV_SLEEPERS)) continue;
        mp__sync_sleep(&e->word, v | MP__EV_SLEEPERS, deadline);
        v = mp__load(&e->word);
    }
}

MPDEF void mp_event_destroy(mp_event *e) {
    if (mp__magic_ok(e, MP__EVENT_MAGIC)) mp__sync_free(&e->magic);
}

/* --- condition: one slot per waiter, each with its own futex word ------------------ */
// Slots live in chunks that never move (the first inside the condition); every field
// changes under the condition's lock, one word at a time, so a process killed anywhere
// leaves them usable. notify sets the oldest waiters' flags and wakes each: exact
// counts, no stale or stolen wakeups, and a waiter found dead is skipped and freed.

#define MP__CSLOTS 15

typedef struct mp__cslot {
    uint32_t flag; /* futex word: 1 once notified */
    uint32_t tid;  /* the waiter; 0: slot free */
    uint64_t ticket;
} mp__cslot;

typedef struct mp__cchunk {
    struct mp__cchunk *next;
    uint64_t pad_;
    mp__cslot slot[MP__CSLOTS];
} mp__cchunk;

struct mp_condition {
    uint32_t magic;
    uint32_t pad_;
    mp_lock *lock;
    mp_lock own;
    uint64_t tickets; /* arrival order of waiters */
    mp__cchunk first;
};

MPDEF mp_condition *mp_condition_create(mp_lock *lock) {
    if (lock && !mp__magic_ok(lock, MP__LOCK_MAGIC)) {
        errno = EINVAL;
        return NULL;
    }
    mp_condition *c = (mp_condition *)mp__sync_new(sizeof(mp_condition), MP__COND_MAGIC);
    if (!c) return NULL;
    c->own.magic = MP__LOCK_MAGIC;
    c->lock = lock ? lock : &c->own;
    return c;
}

static bool mp__cond_held(mp_condition *c) {
    return mp__magic_ok(c->lock, MP__LOCK_MAGIC) &&
           (mp__load(&c->lock->word) & MP__LW_TID) == mp__tid();
}

MPDEF int mp_condition_acquire(mp_condition *c, double timeout) {
    return mp__magic_ok(c, MP__COND_MAGIC) ? mp_lock_acquire(c->lock, timeout) : MP_EINVAL;
}

MPDEF int mp_condition_release(mp_condition *c) {
    return mp__magic_ok(c, MP__COND_MAGIC) ? mp_lock_release(c->lock) : MP_EINVAL;
}

/* A free slot for the calling waiter (lock held), or NULL when out of memory. */
static mp__cslot *mp__cond_claim(mp_condition *c) {
    mp__cchunk *k = &c->first, *last = k;
    mp__cslot *s = NULL;
    for (; k && !s; last = k, k = k->next)
        for (int i = 0; i < MP__CSLOTS && !s; i++)
            if (!k->slot[i].tid) s = &k->slot[i];
    if (!s) {
        mp__cchunk *n = (mp__cchunk *)mp_calloc(1, sizeof *n);
        if (!n) return NULL;
        __atomic_store_n(&last->next, n, __ATOMIC_RELEASE); /* the commit */
        s = &n->slot[0];
    }
    mp__store(&s->flag, 0);
    s->ticket = c->tickets++;
    mp__store(&s->tid, mp__tid()); /* the commit: the slot is taken */
    return s;
}

MPDEF int mp_condition_wait(mp_condition *c, double timeout) {
    if (!mp__magic_ok(c, MP__COND_MAGIC)) return MP_EINVAL;
    if (!mp__cond_held(c)) return MP_EPERM;
    int64_t deadline = mp__deadline(timeout);
    mp__cslot *s = mp__cond_claim(c);
    if (!s) return MP_ENOMEM;
    mp__lw_release(&c->lock->word);
    while (!mp__load(&s->flag) && mp__now_ns() < deadline) mp__sync_sleep(&s->flag, 0, deadline);
    int rc = mp__lw_acquire(&c->lock->word, MP__NEVER);
    bool notified = mp__load(&s->flag) != 0; /* a notify before we got the lock counts */
    mp__store(&s->tid, 0);
    if (rc == MP_EOWNERDEAD) return rc;
    return notified ? MP_OK : MP_ETIMEDOUT;
}

MPDEF int mp_condition_wait_for(mp_condition *c, bool (*pred)(void *), void *arg,
                                double timeout) {
    if (!mp__magic_ok(c, MP__COND_MAGIC) || !pred) return MP_EINVAL;
    if (!mp__cond_held(c)) return MP_EPERM;
    int64_t deadline = mp__deadline(timeout);
    while (!pred(arg)) {
        int64_t now = mp__now_ns();
        if (now >= deadline) return MP_ETIMEDOUT;
        double left = deadline == MP__NEVER ? MP_FOREVER : (double)(deadline - now) / 1e9;
        int rc = mp_condition_wait(c, left);
        if (rc != MP_OK && rc != MP_ETIMEDOUT) return rc;
    }
    return MP_OK;
}

/* Flag s and wake its waiter. false if the waiter turned out dead (slot freed). */
static bool mp__cond_signal(mp__cslot *s) {
    mp__store(&s->flag, 1);
    if (mp__futex_wake_n(&s->flag, 1) > 0 || mp__tid_alive(s->tid)) return true;
    mp__store(&s->tid, 0);
    return false;
}

/* The oldest waiter not yet notified, and how many there are. */
static mp__cslot *mp__cond_oldest(mp_condition *c, unsigned *n) {
    mp__cslot *best = NULL;
    *n = 0;
    for (mp__cchunk *k = &c->first; k; k = k->next)
        for (int i = 0; i < MP__CSLOTS; i++) {
            mp__cslot *s = &k->slot[i];
            if (!s->tid || s->flag) continue;
            ++*n;
            if (!best || s->ticket < best->ticket) best = s;
        }
    return best;
}

static void mp__cond_signal_all(mp_condition *c) {
    for (mp__cchunk *k = &c->first; k; k = k->next)
        for (int i = 0; i < MP__CSLOTS; i++)
            if (k->slot[i].tid && !k->slot[i].flag) mp__cond_signal(&k->slot[i]);
}

MPDEF int mp_condition_notify(mp_condition *c, unsigned n) {
    if (!mp__magic_ok(c, MP__COND_MAGIC)) return MP_EINVAL;
    if (!mp__cond_held(c)) return MP_EPERM;
    unsigned woken = 0, waiting;
    while (woken < n) {
        mp__cslot *s = mp__cond_oldest(c, &waiting);
        if (!s) break;
        if (waiting <= n - woken) { /* everyone: one pass, order does not matter */
            mp__cond_signal_all(c);
            break;
        }
        woken += mp__cond_signal(s);
    }
    return MP_OK;
}

MPDEF int mp_condition_notify_all(mp_condition *c) { return mp_condition_notify(c, UINT_MAX); }

MPDEF void mp_condition_destroy(mp_condition *c) {
    if (!mp__magic_ok(c, MP__COND_MAGIC)) return;
    mp__cchunk *k = c->first.next;
    c->own.magic = MP__DEAD_MAGIC;
    mp__sync_free(&c->magic);
    while (k) {
        mp__cchunk *next = k->next;
        mp_free(k);
        k = next;
    }
}

/* --- barrier: a generation word and arrival slots under a robust lock word --------- */
// word = generation << 1 | broken. The last arrival bumps the generation; abort and
// timeouts set broken; reset starts a new generation. ok_bits remembers for the last
// 64 generations whether each ended by completion, so a waiter that wakes late still
// tells completion from reset. Waiters record their tids; sleepers check each other's
// liveness every poll interval and break the barrier when one died.

struct mp_barrier {
    uint32_t magic;
    uint32_t lock;  /* mp__lw guarding everything below */
    uint32_t word;  /* futex word */
    uint32_t parties;
    uint32_t count; /* arrived in this generation */
    uint32_t pad_;
    uint64_t ok_bits;
    void (*action)(void *);
    void *arg;
    uint64_t image; /* the creator's program (mp__image): only it may run action */
    /* then uint32_t tids[parties]: who arrived, by index */
};

static uint32_t *mp__barrier_tids(mp_barrier *b) { return (uint32_t *)(void *)(b + 1); }

MPDEF mp_barrier *mp_barrier_create(unsigned parties, void (*action)(void *), void *arg) {
    if (parties == 0 || parties > (1u << 24)) {
        errno = EINVAL;
        return NULL;
    }
    size_t size = sizeof(mp_barrier) + (size_t)parties * sizeof(uint32_t);
    mp_barrier *b = (mp_barrier *)mp__sync_new(size, MP__BARRIER_MAGIC);
    if (!b) return NULL;
    b->parties = parties;
    b->action = action;
    b->arg = arg;
    b->image = mp__image();
    return b;
}

/* Lock held: break the current generation, wake everyone. */
static void mp__barrier_break(mp_barrier *b) {
    uint32_t w = b->word;
    if (w & 1) return;
    b->ok_bits &= ~((uint64_t)1 << ((w >> 1) & 63));
    mp__store(&b->word, w | 1);
    mp__futex_wake(&b->word, INT_MAX);
}

/* A process that died holding the lock may have left the bookkeeping half-done. */
static void mp__barrier_lock(mp_barrier *b) {
    if (mp__lw_acquire(&b->lock, MP__NEVER) == MP_EOWNERDEAD) mp__barrier_break(b);
}

/* Lock held: break generation w if it is current and one of its waiters is dead. */
static void mp__barrier_reap(mp_barrier *b, uint32_t w) {
    uint32_t *tids = mp__barrier_tids(b), me = mp__tid();
    if (mp__load(&b->word) != w) return;
    for (uint32_t i = 0; i < b->count && i < b->parties; i++)
        if (tids[i] != me && !mp__tid_alive(tids[i])) {
            mp__barrier_break(b);
            return;
        }
}

/* Cheap unlocked look for a dead waiter of generation w; confirmed under the lock. */
static void mp__barrier_check(mp_barrier *b, uint32_t w) {
    uint32_t *tids = mp__barrier_tids(b), me = mp__tid(), n = mp__load(&b->count);
    for (uint32_t i = 0; i < n && i < b->parties; i++) {
        uint32_t t = mp__load(&tids[i]);
        if (t && t != me && !mp__tid_alive(t)) {
            mp__barrier_lock(b);
            mp__barrier_reap(b, w);
            mp__lw_release(&b->lock);
            return;
        }
    }
}

/* How generation w ended, seen from word v != w. */
static int mp__barrier_outcome(mp_barrier *b, uint32_t w, uint32_t v) {
    if (v == (w | 1)) return MP_EBROKEN;
    uint64_t bits = __atomic_load_n(&b->ok_bits, __ATOMIC_ACQUIRE);
    return (bits >> ((w >> 1) & 63)) & 1 ? MP_OK : MP_EBROKEN;
}

static int mp__barrier_sleep(mp_barrier *b, uint32_t w, int64_t deadline) {
    int64_t check = mp__now_ns() + MP__SYNC_POLL_NS;
    for (int i = 0; i < MP__SPIN && mp__load(&b->word) == w; i++) mp__cpu_relax();
    for (;;) {
        uint32_t v = mp__load(&b->word);
        if (v != w) return mp__barrier_outcome(b, w, v);
        int64_t now = mp__now_ns();
        if (now >= deadline) { /* Python: a timeout breaks the barrier for everyone */
            mp__barrier_lock(b);
            if (b->word == w) mp__barrier_break(b);
            mp__lw_release(&b->lock);
            continue;
        }
        if (now >= check) {
            check = now + MP__SYNC_POLL_NS;
            mp__barrier_check(b, w);
        }
        mp__futex_wait(&b->word, w, deadline < check ? deadline : check);
    }
}

MPDEF int mp_barrier_wait(mp_barrier *b, double timeout, unsigned *index) {
    if (!mp__magic_ok(b, MP__BARRIER_MAGIC)) return MP_EINVAL;
    if (b->action && b->image != mp__image()) return MP_EPERM; /* its action is not ours */
    int64_t deadline = mp__deadline(timeout);
    mp__barrier_lock(b);
    uint32_t w = b->word, i = b->count;
    if ((w & 1) || i >= b->parties) { /* broken (a full count means a dead action runner) */
        mp__lw_release(&b->lock);
        return MP_EBROKEN;
    }
    mp__store(&mp__barrier_tids(b)[i], mp__tid());
    mp__store(&b->count, i + 1);
    if (index) *index = i;
    if (i + 1 < b->parties) {
        mp__lw_release(&b->lock);
        return mp__barrier_sleep(b, w, deadline);
    }
    mp__barrier_reap(b, w); /* a party that died waiting has not arrived: no release */
    if (b->word != w) {
        mp__lw_release(&b->lock);
        return MP_EBROKEN;
    }
    if (b->action) b->action(b->arg); /* with the lock held, as Python does */
    b->count = 0;
    b->ok_bits |= (uint64_t)1 << ((w >> 1) & 63);
    mp__store(&b->word, w + 2);
    mp__lw_release(&b->lock);
    if (i > 0) mp__futex_wake(&b->word, INT_MAX);
    return MP_OK;
}

MPDEF void mp_barrier_abort(mp_barrier *b) {
    if (!mp__magic_ok(b, MP__BARRIER_MAGIC)) return;
    mp__barrier_lock(b);
    mp__barrier_break(b);
    mp__lw_release(&b->lock);
}

MPDEF void mp_barrier_reset(mp_barrier *b) {
    if (!mp__magic_ok(b, MP__BARRIER_MAGIC)) return;
    mp__barrier_lock(b);
    uint32_t w = b->word;
    if ((w & 1) || b->count) {
        b->ok_bits &= ~((uint64_t)1 << ((w >> 1) & 63));
        b->count = 0;
        mp__store(&b->word, (w | 1) + 1); /* next generation, not broken */
        mp__futex_wake(&b->word, INT_MAX);
    }
    mp__lw_release(&b->lock);
}

MPDEF unsigned mp_barrier_parties(mp_barrier *b) {
    return mp__magic_ok(b, MP__BARRIER_MAGIC) ? b->parties : 0;
}

MPDEF unsigned mp_barrier_n_waiting(mp_barrier *b) {
    if (!mp__magic_ok(b, MP__BARRIER_MAGIC) || (mp__load(&b->word) & 1)) return 0;
    uint32_t n = mp__load(&b->count);
    return n < b->parties ? n : b->parties - 1;
}

MPDEF bool mp_barrier_broken(mp_barrier *b) {
    return mp__magic_ok(b, MP__BARRIER_MAGIC) && (mp__load(&b->word) & 1);
}

MPDEF void mp_barrier_destroy(mp_barrier *b) {
    if (mp__magic_ok(b, MP__BARRIER_MAGIC)) mp__sync_free(&b->magic);
}

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
#define MP__CONN_SPIN_MAX_NS 30000 /* polling before a read sleeps, at most... */
#define MP__CONN_SPIN_MIN_NS 1000  /* ...and at least */
#define MP__CONN_SPIN_PAYS_NS 240000 /* a wait this short keeps the budget growing */

struct mp_conn {
    int fd;
    int flags;  /* MP_CONN_READABLE | MP_CONN_WRITABLE */
    bool sock;  /* send with MSG_NOSIGNAL; recv with MSG_DONTWAIT */
    bool eof;   /* a read returned 0: nothing more will come */
    size_t max; /* largest message accepted */
    char *rbuf; /* received bytes not handed out yet: [rpos, rend) */
    size_t rcap, rpos, rend;
    uint32_t spin_ns; /* how long a read polls before it sleeps (mp__conn_spin_read) */
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
    c->spin_ns = MP__CONN_SPIN_MAX_NS;
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

/* Read some bytes, sleeping until deadline, once a try found none: > 0 bytes, 0 at EOF,
   or MP_ETIMEDOUT/ESYS. With no deadline a blocking read is the whole wait: one system
   call. With one, poll first, then a read that does not block. */
static ssize_t mp__conn_sleep_read(mp_conn *c, void *p, size_t n, int64_t deadline) {
    bool timed = deadline != MP__NEVER, wait = timed;
    for (;;) {
        if (wait) {
            int w = mp__fd_wait(c->fd, POLLIN, deadline);
            if (w != MP_OK) return w;
        }
        ssize_t r = c->sock ? recv(c->fd, p, n, timed ? MSG_DONTWAIT : 0) : read(c->fd, p, n);
        if (r >= 0) return r;
        if (errno == ECONNRESET) return 0; /* the peer closed with data unread: EOF too */
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return MP_ESYS;
        /* a blocking socket says EAGAIN only when its SO_RCVTIMEO ran out (the Manager's
           client waits so: one system call per answer) */
        if (!timed && c->sock && errno != EINTR && !(fcntl(c->fd, F_GETFL) & O_NONBLOCK))
            return MP_ETIMEDOUT;
        wait = errno != EINTR || timed;
    }
}

/* One read that does not sleep: > 0 bytes, 0 at EOF, MP_ESYS, or MP_ETIMEDOUT when
   nothing is there yet. A pipe is polled first (it has no per-call non-blocking read). */
static ssize_t mp__conn_try_read(mp_conn *c, void *p, size_t n) {
    if (!c->sock) {
        struct pollfd pf = {c->fd, POLLIN, 0};
        int r = poll(&pf, 1, 0);
        if (r <= 0) return r == 0 || errno == EINTR ? MP_ETIMEDOUT : MP_ESYS;
    }
    ssize_t r = c->sock ? recv(c->fd, p, n, MSG_DONTWAIT) : read(c->fd, p, n);
    if (r >= 0) return r;
    if (errno == ECONNRESET) return 0; /* the peer closed with data unread: EOF too */
    return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? MP_ETIMEDOUT : MP_ESYS;
}

/* Before a read sleeps, it polls for up to c->spin_ns, yielding the CPU between tries
   (so a peer on this same CPU runs at once). Waking a sleeping reader from another CPU
   costs tens of microseconds on a VM (a pipe round trip measured 55-110 us, against 4 us
   with both sides polling for 20 us), so an answer that comes within the budget costs
   none of that. The budget adapts, as the queue's does. It doubles after a wait of up
   to MP__CONN_SPIN_PAYS_NS: polling paid, or the peer was asleep and would have answered
   in time had it polled too (so the rule is the same on both sides, and two sides that
   both slept come back to polling together); there polling costs at most an eighth of
   the wait. It halves after a longer wait (a peer that thinks between messages): a
   reader then burns a microsecond or so per sleep. A try with no time left (timeout
   0) does not poll. */
static ssize_t mp__conn_spin_read(mp_conn *c, void *p, size_t n, int64_t deadline, int64_t start) {
    int64_t end = start + mp__load(&c->spin_ns);
    ssize_t r = MP_ETIMEDOUT;
    if (end > deadline) end = deadline;
    while (r == MP_ETIMEDOUT && mp__now_ns() < end) {
        sched_yield();
        r = mp__conn_try_read(c, p, n);
    }
    return r;
}

/* After a read that had to wait since start: adapt the spin budget (above). */
static void mp__conn_spin_adapt(mp_conn *c, int64_t start) {
    uint32_t budget = mp__load(&c->spin_ns);
    if (mp__now_ns() - start <= MP__CONN_SPIN_PAYS_NS)
        budget = budget * 2 < MP__CONN_SPIN_MAX_NS ? budget * 2 : MP__CONN_SPIN_MAX_NS;
    else
        budget = budget / 2 > MP__CONN_SPIN_MIN_NS ? budget / 2 : MP__CONN_SPIN_MIN_NS;
    mp__store(&c->spin_ns, budget);
}

/* Read some bytes (waiting until deadline): > 0 bytes, 0 at EOF, or MP_ETIMEDOUT/ESYS.
   Bytes already there are one non-blocking read; otherwise the read polls a little
   (above), then sleeps: with no deadline in one blocking read (one system call), with
   one in poll. */
static ssize_t mp__conn_read(mp_conn *c, void *p, size_t n, int64_t deadline) {
    ssize_t got = mp__conn_try_read(c, p, n);
    if (got != MP_ETIMEDOUT) return got;
    int64_t start = mp__now_ns();
    got = mp__conn_spin_read(c, p, n, deadline, start);
    if (got == MP_ETIMEDOUT && start < deadline) got = mp__conn_sleep_read(c, p, n, deadline);
    if (got != MP_ETIMEDOUT) mp__conn_spin_adapt(c, start);
    return got;
}

/* The frame at the head of the buffer: MP_OK with *hdr and *n; MP__CONN_MORE if the
   header is incomplete; MP_ETOOBIG if it is refused (over the limit, or malformed:
   *n = UINT64_MAX). */
static int mp__conn_head(const mp_conn *c, size_t *hdr, uint64_t *n) {
    size_t have = c->rend - c->rpos;
    int i;
    if (have < 4) return MP__CONN_MORE; /* before touching rbuf: it may still be NULL */
    const unsigned char *p = (const unsigned char *)c->rbuf + c->rpos;
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
        if (n > cap || !buf) { /* no buffer: a peek, which consumes nothing, even 0 bytes */
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

/* One pass: ready[i] for conns with a message buffered, then poll(2) the rest once -
   without waiting if some are ready already, so that every ready fd is reported and a
   conn whose peer floods it never hides the others. */
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
    int r = poll(p, (nfds_t)n, count ? 0 : mp__poll_ms(deadline));
    if (r < 0) return errno == EINTR ? count : MP_ESYS;
    for (i = 0; i < n && r > 0; i++) {
        if (!p[i].revents) continue;
        if (p[i].revents & POLLNVAL) return MP_EINVAL;
        if (ready[i]) continue;
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
    uint32_t closed;
    uint16_t pow2, unbounded; /* the read-mostly line is exactly full: no padding here */
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
    struct mp__q_node *ovf_head, *ovf_tail; /* unbounded: the overflow, under ovf_lock */
    uint64_t ovf_count;
    uint32_t ovf_lock;
    char pad6_[64 - 2 * sizeof(void *) - 8 - 4]; /* the slots start on a line */
};

/* Each part on its own cache line (checked, as a zero-size pad would not be ISO C). */
typedef char mp__q_layout_[offsetof(struct mp_queue, tail) == 64 &&
                           offsetof(struct mp_queue, head) == 128 &&
                           sizeof(struct mp_queue) % 64 == 0 ? 1 : -1];

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
    bool first = !wt->deadline && wt->timeout != 0;
    if (first && mp__q_spin(s, w, ev == &q->not_full ? &q->put_spin : &q->get_spin))
        return MP_OK;
    /* A few yields before sleeping: when the other side waits for this very CPU (more
       processes than CPUs), it runs at once, and neither side pays for a futex wake */
    for (int i = 0; first && i < MP__Q_YIELDS; i++) {
        sched_yield();
        if (__atomic_load_n(&s->word, __ATOMIC_RELAXED) != w) return MP_OK;
    }
    int64_t now = mp__now_ns();
    if (!wt->deadline) wt->deadline = wt->timeout == 0 ? now : mp__deadline(wt->timeout);
    uint32_t owner = mp__q_owner(q, w);
    if (w != wt->word || owner != wt->owner) wt->word = w, wt->owner = owner, wt->since = now;
    /* look at the owner after a poll interval, and before giving up: a caller that polls
       with short timeouts (timeout 0 included) must also find a dead owner. Each thread
       looks at a given live owner at most once per interval (mp__owner_alive) */
    bool look = now >= wt->deadline || now - wt->since >= MP__LW_POLL_NS;
    if (owner && look && !mp__owner_alive(owner, now)) {
        mp__q_recover(q, s, w);
        return MP_OK;
    }
    if (now >= wt->deadline) return MP_ETIMEDOUT;
    int64_t wake = now + MP__LW_POLL_NS < wt->deadline ? now + MP__LW_POLL_NS : wt->deadline;
    mp__q_sleep(ev, &s->word, w, &q->closed, wake);
    return MP_OK;
}

static unsigned mp__q_ovf_refill_slow(mp_queue *q, bool block, unsigned max);
static inline unsigned mp__q_ovf_refill(mp_queue *q, bool block, unsigned max) {
    return q->unbounded ? mp__q_ovf_refill_slow(q, block, max) : 0;
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
    /* keep the ring full while the overflow holds any: here rather than after a get, so
       a getter killed while moving was not also holding a message it had got */
    mp__q_ovf_refill(q, false, 8);
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
        if (mp__q_ovf_refill(q, true, 64)) continue;
        /* closed was read before the slot, the overflow and the tail: a put that claims
           or appends after this look will see closed and give up. Messages still in the
           overflow (kept out of the ring by a slot a dead reader holds) are not drained */
        bool drained = !q->unbounded || !__atomic_load_n(&q->ovf_head, MP__SC);
        if (closed && drained &&
            (mp__q_pos(w) != *pos || mp__q_pos(__atomic_load_n(&q->tail, MP__SC)) == *pos))
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

/* ---- the overflow of an unbounded queue ----
   When the ring is full, a put appends its message to a FIFO list of heap nodes under a
   robust lock word, and from then on every put does so until the list is empty again:
   the ring holds older messages than the list, so nothing overtakes. Getters move the
   oldest nodes into free slots as each get begins (and when they find the ring empty),
   each move claiming a ring slot first, then unlinking the node (the commit), then
   committing the slot. So a mover killed before the unlink leaves the message listed
   (its claimed slot is skipped as a dead writer's), one killed after it loses that
   message only. Each list change commits with one store; tail and count are hints that
   the next locker rebuilds from the list when the previous holder died. */

typedef struct mp__q_node {
    struct mp__q_node *next;
    uint64_t lenw; /* as a slot's len: | MP__Q_BIG when blk holds the payload */
    void *blk;     /* else the payload follows the node */
} mp__q_node;
#define MP__Q_NODE_HDR ((sizeof(mp__q_node) + 15) & ~(size_t)15)

static void mp__q_ovf_repair(mp_queue *q) {
    mp__q_node *last = NULL;
    uint64_t k = 0;
    for (mp__q_node *n = q->ovf_head; n; n = n->next) last = n, k++;
    q->ovf_tail = last, q->ovf_count = k;
}

/* Take the overflow lock (deadline: MP__NEVER or now for a try); false if busy. */
static bool mp__q_ovf_lock(mp_queue *q, int64_t deadline) {
    int r = mp__lw_acquire(&q->ovf_lock, deadline);
    if (r == MP_EOWNERDEAD) mp__q_ovf_repair(q);
    return r != MP_ETIMEDOUT;
}

static mp__q_node *mp__q_ovf_first(mp_queue *q) {
    return __atomic_load_n(&q->ovf_head, MP__SC);
}

/* Append a copy of buf (in blk already when it is above a slot). Never blocks but for
   the lock. MP_OK, MP_ECLOSED, MP_ENOMEM. */
static int mp__q_ovf_put(mp_queue *q, const void *buf, size_t len, void *blk) {
    mp__q_node *n = (mp__q_node *)mp_alloc(MP__Q_NODE_HDR + (blk ? 0 : len));
    if (!n) {
        mp_free(blk);
        return MP_ENOMEM;
    }
    n->next = NULL, n->blk = blk, n->lenw = len | (blk ? MP__Q_BIG : 0);
    if (!blk && len) memcpy((char *)n + MP__Q_NODE_HDR, buf, len);
    mp__q_ovf_lock(q, MP__NEVER);
    mp__q_node *prev = q->ovf_tail, **link = prev ? &prev->next : &q->ovf_head;
    __atomic_store_n(link, n, MP__SC); /* the commit */
    q->ovf_tail = n, q->ovf_count++;
    /* getters that saw the queue closed may have made their last look: take it back */
    bool closed = __atomic_load_n(&q->closed, MP__SC) != 0;
    if (closed) {
        __atomic_store_n(link, (mp__q_node *)NULL, MP__SC);
        q->ovf_tail = prev, q->ovf_count--;
    }
    mp__lw_release(&q->ovf_lock);
    if (closed) {
        mp_free(blk);
        mp_free(n);
        return MP_ECLOSED;
    }
    mp__q_wake(&q->not_empty);
    return MP_OK;
}

/* With the overflow lock: move up to max of the oldest nodes into free ring slots.
   Returns how many moved. */
static unsigned mp__q_ovf_move(mp_queue *q, unsigned max) {
    uint32_t me = mp__tid();
    unsigned moved = 0;
    mp__q_node *n;
    while (moved < max && (n = mp__q_ovf_first(q)) != NULL) {
        uint64_t pos, w;
        mp__q_slot *s;
        if (mp__q_try_put(q, me, &pos, &s, &w) != MP_OK) break; /* the ring is full */
        __atomic_store_n(&q->ovf_head, n->next, MP__SC); /* the commit: n is ours */
        if (!n->next) q->ovf_tail = NULL;
        q->ovf_count--;
        if (n->blk) memcpy((char *)s + MP__Q_HDR, &n->blk, sizeof n->blk);
        else if (n->lenw) memcpy((char *)s + MP__Q_HDR, (char *)n + MP__Q_NODE_HDR, n->lenw);
        mp__q_commit(q, s, pos, n->lenw, me);
        mp_free(n);
        moved++;
    }
    return moved;
}

/* Refill the ring from the overflow: wait for the lock (block) or only try. */
static unsigned mp__q_ovf_refill_slow(mp_queue *q, bool block, unsigned max) {
    if (!mp__q_ovf_first(q)) return 0;
    if (!mp__q_ovf_lock(q, block ? MP__NEVER : mp__now_ns())) return 0;
    unsigned moved = mp__q_ovf_move(q, max);
    mp__lw_release(&q->ovf_lock);
    return moved;
}

/* A reserve on an unbounded queue waits until the overflow is empty: its slot must not
   pass this thread's own earlier messages still listed there. */
static int mp__q_ovf_drained(mp_queue *q, double timeout) {
    int64_t deadline = 0;
    while (q->unbounded && mp__q_ovf_first(q)) {
        if (__atomic_load_n(&q->closed, MP__SC)) return MP_ECLOSED;
        int64_t now = mp__now_ns();
        if (!deadline) deadline = timeout == 0 ? now : mp__deadline(timeout);
        if (now >= deadline) return MP_ETIMEDOUT;
        int64_t wake = now + MP__LW_POLL_NS < deadline ? now + MP__LW_POLL_NS : deadline;
        mp__q_sleep(&q->not_full, NULL, 0, &q->closed, wake);
    }
    return MP_OK;
}

static void mp__q_ovf_free(mp_queue *q) {
    for (mp__q_node *n = q->ovf_head, *next; n; n = next) {
        next = n->next;
        mp_free(n->blk);
        mp_free(n);
    }
    q->ovf_head = q->ovf_tail = NULL;
}

MPDEF mp_queue *mp_queue_create(const mp_queue_desc *d) {
    mp__heap *h = mp__heap_get();
    size_t maxsize = d ? d->maxsize : 0;
    bool unbounded = !d || (!d->maxsize && !d->capacity);
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
    q->pow2 = (n & (n - 1)) == 0 ? 1 : 0;
    q->wrap = (((uint64_t)1 << 40) / n) * n;
    q->put_spin = q->get_spin = MP__Q_SPIN_MAX;
    q->unbounded = unbounded ? 1 : 0;
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
    if (q->unbounded) { /* the ring if it has room and nothing overflowed, else the list */
        r = mp__q_ovf_first(q) ? MP_ETIMEDOUT : mp__q_put_slot(q, &pos, &s, 0);
        if (r == MP_ETIMEDOUT) return mp__q_ovf_put(q, buf, len, blk);
    } else {
        r = mp__q_put_slot(q, &pos, &s, timeout);
    }
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
    void *blk = NULL;
    if (!mp__q_ok(q) || !m) return MP_EINVAL;
    int r = mp__q_ovf_drained(q, timeout);
    if (!r) r = mp__q_block_for(q, len, &blk);
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
    size_t ring = d <= 0 ? 0 : (uint64_t)d > q->nslots ? (size_t)q->nslots : (size_t)d;
    bool listed = q->unbounded && mp__q_ovf_first(q);
    return ring + (listed ? (size_t)mp__load(&q->ovf_count) : 0);
}

MPDEF bool mp_queue_empty(mp_queue *q) { return mp_queue_qsize(q) == 0; }

MPDEF bool mp_queue_full(mp_queue *q) {
    return mp__q_ok(q) && !q->unbounded && mp_queue_qsize(q) >= q->nslots;
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
    if (q->unbounded && mp__q_ovf_first(q)) return false;
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
    mp__q_ovf_free(q);
    mp_free(q->raw);
}

// >>shm --------------------------------------------------------------------------

struct mp_shm {
    void *data;
    size_t size;
};

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
    mp_shm *m = (mp_shm *)MP_MALLOC(sizeof *m);
    if (!m) return NULL;
    bool created = false;
    int fd = mp__shm_open_fd(nm, flags, &created), e;
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
        if (created) shm_unlink(nm); /* a create that fails leaves nothing behind */
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
// The worker pool. Units of work - apply_async records and map jobs - wait in one FIFO
// list under a robust lock word. A worker claims a unit (an apply record, or the next
// chunk of the job at the head) by writing its worker id into the unit's state word
// while holding the lock, after noting the unit in its shared worker record; every
// change to the list commits with one store. So when a worker dies, at any instant,
// the owner (the only process that reaps workers) finds in that record what the worker
// held: a state word with the dead id is failed with MP_EWORKERDIED, anything else was
// never really taken or was finished. Results go straight into shared memory (records,
// the job's out block); completions bump an eventcount the owner sleeps on, in bounded
// slices so that it reaps and replaces dead workers while it waits.

#define MP__U_APPLY 1u
#define MP__U_JOB 2u
#define MP__U_MAP_ASYNC 3u /* an mp_async standing for a whole job; never queued */
#define MP__ST_QUEUED 0u
#define MP__ST_DONE 0x80000000u
#define MP__ST_ABANDON 0x40000000u /* the owner dropped a running task's handle */
#define MP__ID_MASK 0x3fffffffu
#define MP__POOL_SLICE_NS 20000000 /* the owner looks for dead workers this often */
#define MP__POOL_SPIN_NS 50000     /* bounded spin before a futex sleep */
#define MP__ASYNC_INLINE 64        /* results up to this size live in the record */

enum { MP__POOL_RUN, MP__POOL_CLOSED, MP__POOL_TERMINATED };

typedef struct mp__unit {
    struct mp__unit *next;
    uint64_t tid;    /* unique per unit: tells a stale worker record from a live one */
    uint32_t kind;
    uint32_t queued; /* 1 while (possibly) in the list */
} mp__unit;

struct mp__job;

struct mp_async {
    mp__unit u;
    mp_pool *pool;
    mp_task_fn fn;
    uint32_t state; /* QUEUED, worker id (| ABANDON), DONE */
    int rc, code;
    size_t arg_len, res_len, cap;
    void *big; /* heap block for a result above cap */
    /* map_async: the job (kept until destroy) and where its results go */
    struct mp__job *job;
    void *map_out;
    mp_map_failure *failure;
    void (*progress)(size_t done, size_t total, void *arg);
    void *progress_arg;
    size_t prog_done;
    uint32_t prog_k, settled;
    uint32_t prog_busy; /* one owner thread counts and calls progress at a time */
    pid_t owner;
};
#define MP__ASYNC_HDR ((sizeof(mp_async) + 15) & ~(size_t)15)

typedef struct mp__chunk {
    uint32_t state; /* QUEUED, worker id, DONE */
    int rc, code;
    uint32_t pad_;
    size_t fail_at; /* rc == MP_ETASK: first failing item; codes[] from there on */
} mp__chunk;

/* A task map's result for one item, written by the worker that ran it. */
typedef struct mp__res {
    void *data; /* heap block of len bytes (NULL for 0 bytes or a failure) */
    size_t len;
    int rc, code;
} mp__res;

typedef struct mp__job {
    mp__unit u;
    mp_pool *pool; /* NULL once the pool was destroyed */
    mp_map_fn fn;
    mp_task_fn task; /* instead of fn: results of their own size in res[] */
    mp__res *res;
    size_t max_result;
    char *in, *out;
    int *codes; /* per item, written only from a chunk's first failure on */
    void *own_in, *own_out;
    size_t in_size, out_size, n, chunksize;
    uint32_t nchunks, next_chunk, norder, pad_;
    mp__chunk *chunks;
    uint32_t *order; /* chunk+1 in completion order, filled without holes */
    struct mp__job *live_next, *live_prev;
} mp__job;

typedef struct mp__worker {
    mp_process *proc;
    mp_pool *pool;
    mp__unit *cur; /* what the worker claimed last (valid if cur->tid == cur_tid) */
    uint64_t cur_tid;
    uint32_t cur_chunk;
    uint32_t id;
    uint32_t init; /* 0 pending, 1 ran, 2 failed */
    uint32_t exiting;
    uint32_t disabled; /* its initializer failed: not restarted */
    uint32_t sleep;    /* 1 while asleep; whoever clears it owes the futex wake */
} mp__worker;

struct mp_pool {
    uint32_t qlock, state;
    mp__unit *head, *tail;
    mp__job *jobs; /* live map/imap jobs, under qlock */
    char pad1_[40];
    uint32_t task_sleepers; /* workers asleep (or about to be) waiting for units */
    uint32_t pad0_;
    char pad2_[56];
    uint32_t done_seq, done_waiters; /* eventcount: the owner waits for completions */
    uint32_t exited;                 /* bumped by each worker that leaves on its own */
    char pad3_[52];
    uint64_t next_tid;
    uint32_t maint_lock, next_id, exited_seen;
    pid_t owner;
    unsigned nproc, maxtasks;
    size_t max_result;
    int (*initializer)(void *);
    void *initarg;
    int64_t last_maint;
    size_t started, died;
    mp__worker *w;
    int start_method; /* the workers' (mp_process_desc.start_method) */
};

/* After making a condition true: wake the sleepers of an eventcount. A sleeper
   registers, fences, reads seq, re-checks the condition, then sleeps on seq; so
   either we see it registered, or it sees the condition (store-buffering with
   fences on both sides), and seq only needs to move when someone sleeps. */
static void mp__ec_signal(uint32_t *seq, uint32_t *sleepers, int n) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!mp__load(sleepers)) return;
    mp__fetch_add(seq, 1u);
    mp__futex_wake(seq, n);
}

/* After queueing work: wake up to n sleeping workers. Each sleeper has its own flag
   and the waker clears it, so a burst of pushes wakes a sleeper once, not once per
   push while it is still on its way up. */
static void mp__pool_wake_workers(mp_pool *p, unsigned n) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!mp__load(&p->task_sleepers)) return;
    for (unsigned i = 0; i < p->nproc && n; i++) {
        uint32_t one = 1;
        if (mp__load(&p->w[i].sleep) == 1 && mp__cas(&p->w[i].sleep, &one, 0u)) {
            mp__futex_wake(&p->w[i].sleep, 1);
            n--;
        }
    }
}

static bool mp__pool_mine(const mp_pool *p) { return p && p->owner == mp__g.pid; }

/* ---- the unit list (callers hold qlock) ---- */

static void mp__q_pop(mp_pool *p, mp__unit *u) { /* u is the head */
    mp__unit *n = u->next;
    /* tail before head: a worker killed between the two leaves head on a claimed
       unit (skipped later) rather than tail on a unit no longer listed */
    if (!n) mp__store(&p->tail, (mp__unit *)NULL);
    mp__store(&p->head, n);
    mp__store(&u->queued, 0u);
}

static void mp__q_unlink(mp_pool *p, mp__unit *u) {
    mp__unit *prev = NULL, *c = p->head;
    while (c && c != u) prev = c, c = c->next;
    if (c) {
        if (prev) prev->next = u->next;
        else mp__store(&p->head, u->next);
        if (p->tail == u) p->tail = prev;
    }
    u->queued = 0;
}

/* Owner: unlink u if it may still be listed. */
static void mp__q_remove(mp_pool *p, mp__unit *u) {
    if (!mp__load(&u->queued)) return;
    mp__lw_acquire(&p->qlock, MP__NEVER);
    mp__q_unlink(p, u);
    mp__lw_release(&p->qlock);
}

/* Owner: append u; MP_EINVAL once the pool no longer takes work. */
static int mp__q_push(mp_pool *p, mp__unit *u, unsigned wake) {
    u->next = NULL;
    u->queued = 1;
    mp__lw_acquire(&p->qlock, MP__NEVER);
    if (mp__load(&p->state) != MP__POOL_RUN) {
        mp__lw_release(&p->qlock);
        return MP_EINVAL;
    }
    if (p->tail) p->tail->next = u;
    else mp__store(&p->head, u);
    mp__store(&p->tail, u);
    mp__lw_release(&p->qlock);
    mp__pool_wake_workers(p, wake);
    return MP_OK;
}

/* ---- jobs ---- */

static void mp__job_append(mp__job *j, uint32_t c) {
    for (;;) {
        uint32_t k = mp__load(&j->norder), z = 0;
        if (k >= j->nchunks) return;
        bool mine = mp__cas(&j->order[k], &z, c + 1);
        mp__cas(&j->norder, &k, k + 1); /* slot k is taken either way: help advance */
        if (mine) return;
    }
}

/* Owner, for a dead worker's finished chunk: append it unless it got that far. */
static void mp__job_ensure(mp__job *j, uint32_t c) {
    for (uint32_t k = 0; k < j->nchunks && mp__load(&j->order[k]); k++)
        if (j->order[k] == c + 1) return;
    mp__job_append(j, c);
}

static size_t mp__job_count(const mp__job *j, uint32_t c) {
    size_t start = (size_t)c * j->chunksize;
    return j->n - start < j->chunksize ? j->n - start : j->chunksize;
}

static void mp__job_finish_chunk(mp__job *j, uint32_t c, int rc, int code) {
    j->chunks[c].rc = rc;
    j->chunks[c].code = code;
    mp__store(&j->chunks[c].state, MP__ST_DONE);
    mp__job_append(j, c);
}

/* Item i of chunk c: its rc, and its code in *code. */
static int mp__job_item(const mp__job *j, uint32_t c, size_t i, int *code) {
    const mp__chunk *ch = &j->chunks[c];
    *code = 0;
    if (ch->rc == MP_OK && j->task) {
        *code = j->res[i].code;
        return j->res[i].rc;
    }
    if (ch->rc == MP_OK) return MP_OK;
    if (ch->rc != MP_ETASK) {
        *code = ch->code;
        return ch->rc;
    }
    if (i - (size_t)c * j->chunksize < ch->fail_at || j->codes[i] == 0) return MP_OK;
    *code = j->codes[i];
    return MP_ETASK;
}

/* Owner, under qlock: cancel a job's chunks nobody claimed. */
static void mp__job_cancel_locked(mp__job *j, int rc, int code) {
    for (uint32_t c = j->next_chunk; c < j->nchunks; c++)
        if (mp__load(&j->chunks[c].state) == MP__ST_QUEUED) mp__job_finish_chunk(j, c, rc, code);
    mp__store(&j->next_chunk, j->nchunks);
}

/* ---- workers ---- */

static void *mp__pool_scratch; /* a worker's result buffer (process-private) */
static size_t mp__pool_scratch_size;

static void *mp__pool_scratch_get(size_t size) {
    if (mp__pool_scratch_size < size) { /* a nested pool may want more than the parent's */
        MP_FREE(mp__pool_scratch);
        mp__pool_scratch = MP_MALLOC(size);
        mp__pool_scratch_size = mp__pool_scratch ? size : 0;
    }
    return mp__pool_scratch;
}

static void mp__pool_run_apply(mp_pool *p, mp__worker *w, mp_async *r) {
    char *data = (char *)r + MP__ASYNC_HDR;
    size_t len = p->max_result;
    int rc = MP_OK, code = 0;
    char *scratch = (char *)mp__pool_scratch_get(p->max_result);
    if (!scratch) {
        rc = MP_ENOMEM, len = 0;
    } else if ((code = r->fn(data, r->arg_len, scratch, &len)) != 0) {
        rc = MP_ETASK, len = 0;
    } else if (len > p->max_result) {
        rc = MP_ETOOBIG;
    } else if (len <= r->cap) {
        memcpy(data, scratch, len);
    } else if ((r->big = mp_alloc(len)) != NULL) {
        memcpy(r->big, scratch, len);
    } else {
        rc = MP_ENOMEM, len = 0;
    }
    r->rc = rc, r->code = code, r->res_len = len;
    uint32_t s = w->id;
    if (mp__cas(&r->state, &s, MP__ST_DONE)) {
        mp__store(&w->cur, (mp__unit *)NULL);
    } else { /* abandoned by its owner: ours to free */
        mp__store(&w->cur, (mp__unit *)NULL);
        r->u.tid = 0;
        mp_free(r->big);
        mp_free(r);
    }
}

/* One item of a task map: the result goes to a heap block of its own size. */
static void mp__pool_run_task_item(mp__job *j, const char *in, mp__res *res) {
    char *scratch = (char *)mp__pool_scratch_get(j->max_result);
    size_t len = j->max_result;
    int rc = MP_OK, code = 0;
    void *data = NULL;
    if (!scratch) rc = MP_ENOMEM, len = 0;
    else if ((code = j->task(in, j->in_size, scratch, &len)) != 0) rc = MP_ETASK, len = 0;
    else if (len > j->max_result) rc = MP_ETOOBIG;
    else if (len && (data = mp_alloc(len)) == NULL) rc = MP_ENOMEM, len = 0;
    else if (len) memcpy(data, scratch, len);
    res->len = len, res->rc = rc, res->code = code;
    mp__store(&res->data, data); /* a worker killed before this leaks the block */
}

static void mp__pool_run_chunk(mp__worker *w, mp__job *j, uint32_t c) {
    size_t start = (size_t)c * j->chunksize, cnt = mp__job_count(j, c), k = 0;
    if (j->task) {
        for (; k < cnt; k++)
            mp__pool_run_task_item(j, j->in + (start + k) * j->in_size, &j->res[start + k]);
        mp__job_finish_chunk(j, c, MP_OK, 0);
        mp__store(&w->cur, (mp__unit *)NULL);
        return;
    }
    const char *in = j->in + start * j->in_size;
    char *out = j->out_size ? j->out + start * j->out_size : NULL;
    int r = 0;
    for (; k < cnt; k++, in += j->in_size) {
        r = j->fn(in, out);
        if (r) break;
        if (out) out += j->out_size;
    }
    bool failed = k < cnt;
    if (failed) { /* the slow path, from the first failure on */
        j->chunks[c].fail_at = k;
        j->codes[start + k] = r;
        for (k++, in += j->in_size; k < cnt; k++, in += j->in_size)
            j->codes[start + k] = j->fn(in, out ? (out += j->out_size) : NULL);
    }
    mp__job_finish_chunk(j, c, failed ? MP_ETASK : MP_OK, 0);
    mp__store(&w->cur, (mp__unit *)NULL);
}

/* Under qlock: claim the next unit for w, popping what is used up. */
static mp__unit *mp__pool_claim(mp_pool *p, mp__worker *w) {
    mp__unit *u, *got = NULL;
    mp__lw_acquire(&p->qlock, MP__NEVER); /* a dead holder left the list consistent */
    while (!got && (u = p->head) != NULL) {
        if (u->kind == MP__U_APPLY) {
            mp_async *r = (mp_async *)u;
            if (r->state == MP__ST_QUEUED) {
                w->cur_tid = u->tid;
                mp__store(&w->cur, u);
                mp__store(&r->state, w->id);
                got = u;
            }
            mp__q_pop(p, u);
            continue;
        }
        mp__job *j = (mp__job *)u;
        uint32_t c = j->next_chunk;
        if (c < j->nchunks) {
            if (j->chunks[c].state == MP__ST_QUEUED) {
                w->cur_tid = u->tid;
                w->cur_chunk = c;
                mp__store(&w->cur, u);
                mp__store(&j->chunks[c].state, w->id);
                got = u;
            }
            mp__store(&j->next_chunk, ++c);
        }
        if (c >= j->nchunks) mp__q_pop(p, u);
    }
    mp__lw_release(&p->qlock);
    return got;
}

static bool mp__pool_has_work(mp_pool *p) {
    return mp__load(&p->head) != NULL || mp__load(&p->state) != MP__POOL_RUN;
}

/* Spin a little, then sleep until a unit is queued or the pool closes. A waker
   reads the flag after its fence: either it sees ours or we see its unit. */
static void mp__pool_idle(mp_pool *p, mp__worker *w) {
    int64_t end = mp__now_ns() + MP__POOL_SPIN_NS;
    for (unsigned i = 1; !mp__pool_has_work(p); i++) {
        if ((i & 63) == 0 && mp__now_ns() > end) {
            mp__fetch_add(&p->task_sleepers, 1u); /* count first: see check_worker */
            mp__store(&w->sleep, 1u);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (!mp__pool_has_work(p))
                mp__futex_wait(&w->sleep, 1, mp__now_ns() + 1000000000);
            mp__store(&w->sleep, 0u);
            mp__fetch_sub(&p->task_sleepers, 1u);
            /* the owner is gone (it need not be our parent: see the forkserver) */
            if (!mp__tid_alive((uint32_t)p->owner)) _exit(1);
            return;
        }
        mp__cpu_relax();
    }
}

static void mp__pool_worker_leave(mp_pool *p, mp__worker *w) {
    mp__store(&w->exiting, 1u);
    mp__fetch_add(&p->exited, 1u);
    mp__ec_signal(&p->done_seq, &p->done_waiters, INT_MAX);
}

static int mp__pool_worker(void *arg) {
    mp__worker *w = (mp__worker *)arg;
    mp_pool *p = w->pool;
    unsigned done = 0;
    if (p->initializer) {
        int r = p->initializer(p->initarg);
        mp__store(&w->init, r ? 2u : 1u);
        mp__futex_wake(&w->init, 1);
        if (r) {
            mp__pool_worker_leave(p, w);
            return 1;
        }
    }
    while (mp__load(&p->state) != MP__POOL_TERMINATED) {
        mp__unit *u = mp__load(&p->head) ? mp__pool_claim(p, w) : NULL;
        if (!u) {
            if (mp__load(&p->state) != MP__POOL_RUN && !mp__load(&p->head)) break;
            if (!mp__load(&p->head)) mp__pool_idle(p, w);
            continue;
        }
        if (mp__load(&p->head)) mp__pool_wake_workers(p, 1); /* more work: a helper */
        if (u->kind == MP__U_APPLY) mp__pool_run_apply(p, w, (mp_async *)u);
        else mp__pool_run_chunk(w, (mp__job *)u, w->cur_chunk);
        mp__ec_signal(&p->done_seq, &p->done_waiters, INT_MAX);
        if (p->maxtasks && ++done >= p->maxtasks) break;
    }
    mp__pool_worker_leave(p, w);
    return 0;
}

static int mp__pool_start_worker(mp_pool *p, mp__worker *w) {
    char name[32];
    w->cur = NULL;
    w->cur_tid = 0;
    w->init = w->exiting = 0;
    if (++p->next_id > MP__ID_MASK) p->next_id = 1;
    w->id = p->next_id;
    snprintf(name, sizeof name, "PoolWorker-%u", w->id);
    mp_process_desc d;
    memset(&d, 0, sizeof d); /* fields added later stay at their defaults */
    d.target = mp__pool_worker, d.arg = w, d.name = name, d.daemon = true;
    d.start_method = p->start_method;
    mp_process *proc = mp_process_create(&d);
    if (!proc) return MP_ENOMEM;
    if (mp_process_start(proc) != MP_OK) {
        int e = errno;
        mp_process_destroy(proc);
        errno = e;
        return MP_ESYS;
    }
    w->proc = proc;
    p->started++;
    return MP_OK;
}

/* ---- the owner: failing what dead workers held, replacing them ---- */

/* w's process is gone: fail (rc, code) what it was running. */
static void mp__pool_fail_unit(mp_pool *p, mp__worker *w, int rc, int code) {
    mp__unit *u = w->cur;
    w->cur = NULL;
    if (!u || u->tid != w->cur_tid) return;
    if (u->kind == MP__U_APPLY) {
        mp_async *r = (mp_async *)u;
        uint32_t s = mp__load(&r->state);
        if ((s & MP__ST_DONE) || (s & MP__ID_MASK) != w->id) return;
        mp__q_remove(p, u); /* it died between claiming and popping */
        r->rc = rc, r->code = code, r->res_len = 0;
        if (s & MP__ST_ABANDON) {
            r->u.tid = 0;
            mp_free(r->big);
            mp_free(r);
        } else {
            mp__store(&r->state, MP__ST_DONE);
        }
    } else {
        mp__job *j = (mp__job *)u;
        uint32_t c = w->cur_chunk, s = mp__load(&j->chunks[c].state);
        if (s == w->id) mp__job_finish_chunk(j, c, rc, code);
        else if (s == MP__ST_DONE) mp__job_ensure(j, c);
    }
}

/* Fail every queued unit with (rc, code) and empty the list. */
static void mp__pool_cancel_queue(mp_pool *p, int rc, int code) {
    mp__lw_acquire(&p->qlock, MP__NEVER);
    for (mp__unit *u = p->head, *next; u; u = next) {
        next = u->next;
        if (u->kind == MP__U_JOB) {
            mp__job_cancel_locked((mp__job *)u, rc, code);
        } else if (mp__load(&((mp_async *)u)->state) == MP__ST_QUEUED) {
            mp_async *r = (mp_async *)u;
            r->rc = rc, r->code = code;
            mp__store(&r->state, MP__ST_DONE);
        }
        mp__store(&u->queued, 0u);
    }
    p->head = p->tail = NULL;
    mp__lw_release(&p->qlock);
    mp__ec_signal(&p->done_seq, &p->done_waiters, INT_MAX);
}

static bool mp__pool_needs_workers(mp_pool *p) {
    uint32_t s = mp__load(&p->state);
    return s == MP__POOL_RUN || (s == MP__POOL_CLOSED && mp__load(&p->head) != NULL);
}

/* Reap w if it ended, fail what it held, start a replacement if work remains. */
static void mp__pool_check_worker(mp_pool *p, mp__worker *w) {
    if (w->proc) {
        if (mp_process_join(w->proc, mp__load(&w->exiting) ? 1.0 : 0) != MP_OK) return;
        int code = mp_process_exitcode(w->proc);
        bool term = mp__load(&p->state) == MP__POOL_TERMINATED;
        if (!term && !w->exiting) p->died++;
        mp__pool_fail_unit(p, w, term ? MP_ECANCELLED : MP_EWORKERDIED, code);
        if (w->init == 2) w->disabled = 1;
        uint32_t one = 1; /* died asleep: it counted itself and never will uncount */
        if (mp__cas(&w->sleep, &one, 0u)) mp__fetch_sub(&p->task_sleepers, 1u);
        mp_process_destroy(w->proc);
        w->proc = NULL;
        mp__ec_signal(&p->done_seq, &p->done_waiters, INT_MAX);
    }
    if (!w->disabled && mp__pool_needs_workers(p)) mp__pool_start_worker(p, w);
}

static void mp__pool_maintain(mp_pool *p) {
    if (mp__lw_acquire(&p->maint_lock, mp__now_ns()) != MP_OK) return; /* another thread */
    p->exited_seen = mp__load(&p->exited);
    p->last_maint = mp__now_ns();
    unsigned disabled = 0;
    for (unsigned i = 0; i < p->nproc; i++) {
        mp__pool_check_worker(p, &p->w[i]);
        disabled += p->w[i].disabled;
    }
    if (disabled == p->nproc && mp__pool_needs_workers(p)) { /* initializers keep failing */
        mp__store(&p->state, (uint32_t)MP__POOL_TERMINATED);
        mp__pool_cancel_queue(p, MP_ECANCELLED, 0);
    }
    mp__lw_release(&p->maint_lock);
}

typedef bool (*mp__pool_pred)(void *arg);

/* Owner: wait until ready(arg), looking after the workers meanwhile. A short spin
   (yielding the CPU: the workers may need it), then futex sleeps in bounded slices. */
static int mp__pool_wait(mp_pool *p, mp__pool_pred ready, void *arg, int64_t deadline) {
    int64_t now = mp__now_ns();
    int64_t spin_end = now + MP__POOL_SPIN_NS < deadline ? now + MP__POOL_SPIN_NS : deadline;
    for (unsigned i = 0;; i++) {
        if (ready(arg)) return MP_OK;
        if (mp__load(&p->exited) != p->exited_seen || now - p->last_maint >= MP__POOL_SLICE_NS) {
            mp__pool_maintain(p);
            if (ready(arg)) return MP_OK;
        }
        if (now >= deadline) return MP_ETIMEDOUT;
        if (now < spin_end) {
            if (i & 1) sched_yield();
            else mp__cpu_relax();
            now = mp__now_ns();
            continue;
        }
        mp__fetch_add(&p->done_waiters, 1u);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint32_t v = mp__load(&p->done_seq);
        if (!ready(arg)) {
            int64_t slice = now + MP__POOL_SLICE_NS;
            mp__futex_wait(&p->done_seq, v, slice < deadline ? slice : deadline);
        }
        mp__fetch_sub(&p->done_waiters, 1u);
        now = mp__now_ns();
    }
}

/* ---- the pool ---- */

static void mp__pool_free(mp_pool *p) {
    mp_free(p->w);
    mp_free(p);
}

/* Creation: did every worker's initializer succeed? */
static bool mp__pool_inits_ok(mp_pool *p) {
    for (unsigned i = 0; i < p->nproc; i++) {
        mp__worker *w = &p->w[i];
        while (mp__load(&w->init) == 0) {
            if (mp_process_join(w->proc, 0) == MP_OK) return false; /* died in it */
            mp__futex_wait(&w->init, 0, mp__now_ns() + 5000000);
        }
        if (w->init != 1) return false;
    }
    return true;
}

MPDEF mp_pool *mp_pool_create(const mp_pool_desc *d) {
    unsigned n = d && d->processes ? d->processes : (unsigned)mp_cpu_count();
    size_t mr = d && d->max_result ? d->max_result : (size_t)64 << 10;
    size_t ia = d ? d->initarg_size : 0;
    void *initarg = d ? d->initarg : NULL;
    int sm = d ? d->start_method : MP_START_DEFAULT;
    if (n > 1024 || mr > ((size_t)1 << 30) || (ia && !initarg) || sm < 0 ||
        sm > MP_START_FORKSERVER || (sm == MP_START_FORKSERVER && mp__g.fs_sock < 0)) {
        errno = EINVAL;
        return NULL;
    }
    mp_pool *p = (mp_pool *)mp__alloc_tail(sizeof *p, initarg, ia, &initarg);
    if (!p) return NULL;
    p->w = (mp__worker *)mp_calloc(n, sizeof *p->w);
    if (!p->w) {
        mp_free(p);
        errno = ENOMEM;
        return NULL;
    }
    p->owner = mp__g.pid;
    p->nproc = n;
    p->maxtasks = d ? d->maxtasksperchild : 0;
    p->max_result = mr;
    p->initializer = d ? d->initializer : NULL;
    p->initarg = initarg;
    p->start_method = sm;
    p->last_maint = mp__now_ns();
    int rc = MP_OK;
    for (unsigned i = 0; i < n && rc == MP_OK; i++) {
        p->w[i].pool = p;
        rc = mp__pool_start_worker(p, &p->w[i]);
    }
    bool ok = rc == MP_OK;
    if (ok && p->initializer) ok = mp__pool_inits_ok(p);
    if (!ok) {
        int e = rc == MP_OK ? ECHILD : rc == MP_ENOMEM ? ENOMEM : EAGAIN;
        mp_pool_destroy(p);
        errno = e;
        return NULL;
    }
    return p;
}

MPDEF void mp_pool_close(mp_pool *p) {
    if (!mp__pool_mine(p)) return;
    uint32_t s = MP__POOL_RUN;
    mp__lw_acquire(&p->qlock, MP__NEVER); /* no push after this */
    mp__cas(&p->state, &s, (uint32_t)MP__POOL_CLOSED);
    mp__lw_release(&p->qlock);
    mp__pool_wake_workers(p, p->nproc);
}

MPDEF void mp_pool_terminate(mp_pool *p) {
    if (!mp__pool_mine(p)) return;
    mp__lw_acquire(&p->qlock, MP__NEVER);
    mp__store(&p->state, (uint32_t)MP__POOL_TERMINATED);
    mp__lw_release(&p->qlock);
    mp__pool_wake_workers(p, p->nproc);
    mp__lw_acquire(&p->maint_lock, MP__NEVER);
    for (unsigned i = 0; i < p->nproc; i++)
        if (p->w[i].proc) mp_process_terminate(p->w[i].proc);
    int64_t grace = mp__now_ns() + 200000000;
    for (unsigned i = 0; i < p->nproc; i++) {
        mp_process *w = p->w[i].proc;
        if (!w) continue;
        double left = (double)(grace - mp__now_ns()) / 1e9;
        if (mp_process_join(w, left > 0 ? left : 0) != MP_OK) mp_process_kill(w);
    }
    for (unsigned i = 0; i < p->nproc; i++) {
        mp__worker *w = &p->w[i];
        if (!w->proc) continue;
        mp_process_join(w->proc, MP_FOREVER);
        mp__pool_fail_unit(p, w, MP_ECANCELLED, 0);
        mp_process_destroy(w->proc);
        w->proc = NULL;
    }
    mp__lw_release(&p->maint_lock);
    mp__pool_cancel_queue(p, MP_ECANCELLED, 0);
}

static bool mp__pool_no_workers(void *arg) {
    mp_pool *p = (mp_pool *)arg;
    for (unsigned i = 0; i < p->nproc; i++)
        if (mp__load(&p->w[i].proc)) return false;
    return true;
}

MPDEF int mp_pool_join(mp_pool *p, double timeout) {
    if (p && !mp__pool_mine(p)) return MP_EPERM;
    if (!p || mp__load(&p->state) == MP__POOL_RUN) return MP_EINVAL;
    return mp__pool_wait(p, mp__pool_no_workers, p, mp__deadline(timeout));
}

MPDEF void mp_pool_destroy(mp_pool *p) {
    if (!mp__pool_mine(p)) return;
    if (!mp__pool_no_workers(p) || mp__load(&p->state) == MP__POOL_RUN) mp_pool_terminate(p);
    mp__lw_acquire(&p->qlock, MP__NEVER);
    for (mp__job *j = p->jobs; j; j = j->live_next) j->pool = NULL; /* all done by now */
    mp__lw_release(&p->qlock);
    mp__pool_free(p);
}

MPDEF int mp_pool_stats_get(mp_pool *p, mp_pool_stats *out) {
    if (p && !mp__pool_mine(p)) return MP_EPERM;
    if (!p || !out) return MP_EINVAL;
    mp__pool_maintain(p);
    out->processes = p->nproc;
    out->alive = 0;
    for (unsigned i = 0; i < p->nproc; i++) out->alive += p->w[i].proc != NULL;
    out->started = p->started;
    out->died = p->died;
    return MP_OK;
}

/* ---- map and imap ---- */

static bool mp__in_heap(const void *ptr, size_t len) {
    uintptr_t h = (uintptr_t)mp__g.heap, c = (uintptr_t)ptr;
    return h && c >= h && c - h <= mp__g.heap->size && len <= mp__g.heap->size - (c - h);
}

static int mp__map_check(mp_pool *p, const mp_map_desc *d, bool imap) {
    if (p && !mp__pool_mine(p)) return MP_EPERM;
    if (!p || !d || !d->fn == !d->task || !d->in_size || !d->in) return MP_EINVAL;
    if (d->task && (!imap || d->max_result > ((size_t)1 << 30))) return MP_EINVAL;
    if (!imap && d->out_size && !d->out) return MP_EINVAL;
    if (d->n > SIZE_MAX / d->in_size || (d->out_size && d->n > SIZE_MAX / d->out_size))
        return MP_EINVAL;
    if (d->n > SIZE_MAX / sizeof(int)) return MP_EINVAL;
    return mp__load(&p->state) == MP__POOL_RUN ? MP_OK : MP_EINVAL;
}

static void mp__job_free(mp__job *j) {
    for (size_t i = 0; j->res && i < j->n; i++) mp_free(j->res[i].data);
    mp_free(j->res);
    mp_free(j->own_in);
    mp_free(j->own_out);
    mp_free(j->codes);
    j->u.tid = 0;
    mp_free(j);
}

static mp__job *mp__job_create(mp_pool *p, const mp_map_desc *d, bool imap) {
    size_t cs = d->chunksize;
    if (!cs) cs = imap ? 1 : (d->n + 4 * (size_t)p->nproc - 1) / (4 * (size_t)p->nproc);
    if (d->n / cs >= 0xfffffff0u) cs = d->n / 0xfffffff0u + 1; /* chunk numbers are 32-bit */
    size_t nc = d->n / cs + (d->n % cs != 0); /* (n + cs - 1) / cs overflows for a huge cs */
    size_t meta = sizeof(mp__job) + nc * sizeof(mp__chunk) + nc * sizeof(uint32_t);
    mp__job *j = (mp__job *)mp_calloc(1, meta);
    if (!j) return NULL;
    j->chunks = (mp__chunk *)(j + 1);
    j->order = (uint32_t *)(j->chunks + nc);
    j->u.kind = MP__U_JOB;
    j->u.tid = mp__fetch_add(&p->next_tid, (uint64_t)1) + 1;
    j->pool = p, j->fn = d->fn, j->task = d->task;
    j->max_result = d->max_result ? d->max_result : p->max_result;
    j->in_size = d->in_size, j->out_size = d->task ? 0 : d->out_size, j->n = d->n;
    j->chunksize = cs, j->nchunks = (uint32_t)nc;
    if (d->task) j->res = (mp__res *)mp_calloc(d->n, sizeof(mp__res));
    j->codes = d->task ? NULL : (int *)mp_alloc(d->n * sizeof(int));
    if (!imap && mp__in_heap(d->in, d->n * d->in_size)) { /* already shared: no copy */
        j->in = (char *)d->in;
    } else if ((j->in = (char *)(j->own_in = mp_alloc(d->n * d->in_size))) != NULL) {
        memcpy(j->in, d->in, d->n * d->in_size);
    }
    if (!j->out_size) j->out = NULL;
    else if (!imap && mp__in_heap(d->out, d->n * d->out_size)) j->out = (char *)d->out;
    else j->out = (char *)(j->own_out = mp_alloc(d->n * d->out_size));
    if ((!j->codes && !j->res) || !j->in || (j->out_size && !j->out)) {
        mp__job_free(j);
        return NULL;
    }
    return j;
}

/* Owner: make j live and queue it. */
static int mp__job_submit(mp_pool *p, mp__job *j) {
    mp__lw_acquire(&p->qlock, MP__NEVER);
    j->live_next = p->jobs;
    if (p->jobs) p->jobs->live_prev = j;
    p->jobs = j;
    mp__lw_release(&p->qlock);
    return mp__q_push(p, &j->u, p->nproc);
}

typedef struct {
    mp__job *j;
    uint32_t k;
} mp__job_at;

static bool mp__job_order_ready(void *arg) {
    mp__job_at *a = (mp__job_at *)arg;
    return mp__load(&a->j->order[a->k]) != 0;
}

static bool mp__job_chunk_ready(void *arg) {
    mp__job_at *a = (mp__job_at *)arg;
    return mp__load(&a->j->chunks[a->k].state) == MP__ST_DONE;
}

static bool mp__job_unreferenced(void *arg) {
    mp__job *j = (mp__job *)arg;
    for (unsigned i = 0; i < j->pool->nproc; i++)
        if (j->pool->w[i].proc && mp__load(&j->pool->w[i].cur) == &j->u) return false;
    return true;
}

/* Owner: cancel what is left of j, wait until no worker touches it, free it. */
static void mp__job_retire(mp__job *j) {
    mp_pool *p = j->pool;
    if (p) {
        mp__lw_acquire(&p->qlock, MP__NEVER);
        mp__job_cancel_locked(j, MP_ECANCELLED, 0);
        if (j->u.queued) mp__q_unlink(p, &j->u);
        if (j->live_prev) j->live_prev->live_next = j->live_next;
        else p->jobs = j->live_next;
        if (j->live_next) j->live_next->live_prev = j->live_prev;
        mp__lw_release(&p->qlock);
        mp__job_at a = {j, 0};
        for (a.k = 0; a.k < j->nchunks; a.k++) mp__pool_wait(p, mp__job_chunk_ready, &a, MP__NEVER);
        mp__pool_wait(p, mp__job_unreferenced, j, MP__NEVER);
    }
    mp__job_free(j);
}

/* The first failure and the count of failures, for map. */
static int mp__job_failures(const mp__job *j, mp_map_failure *f) {
    int first = MP_OK, code = 0, c2;
    size_t index = j->n, failed = 0;
    for (uint32_t c = 0; c < j->nchunks; c++) {
        if (j->chunks[c].rc == MP_OK) continue;
        size_t start = (size_t)c * j->chunksize, cnt = mp__job_count(j, c);
        for (size_t i = start; i < start + cnt; i++) {
            int rc = mp__job_item(j, c, i, &c2);
            if (rc == MP_OK) continue;
            if (!failed++) first = rc, code = c2, index = i;
        }
    }
    if (f) f->index = index, f->rc = first, f->code = code, f->failed = failed;
    return first;
}

/* Chunks finished since order slot *k: count their items into *done. */
static bool mp__job_progress(const mp__job *j, uint32_t *k, size_t *done) {
    uint32_t k0 = *k;
    for (uint32_t c; *k < j->nchunks && (c = mp__load(&j->order[*k])) != 0; ++*k)
        *done += mp__job_count(j, c - 1);
    return *k != k0;
}

/* A finished map job: results to out (when j used a copy) and its failures. */
static int mp__job_deliver(mp__job *j, void *out, mp_map_failure *f) {
    int rc = mp__job_failures(j, f);
    if (j->own_out) memcpy(out, j->out, j->n * j->out_size);
    return rc;
}

static int mp__job_conclude(mp__job *j, void *out, mp_map_failure *f) {
    int rc = mp__job_deliver(j, out, f);
    mp__job_retire(j);
    return rc;
}

MPDEF int mp_pool_map(mp_pool *p, const mp_map_desc *d) {
    int rc = mp__map_check(p, d, false);
    if (rc != MP_OK) return rc;
    if (d->n == 0) {
        if (d->failure) memset(d->failure, 0, sizeof *d->failure);
        return MP_OK;
    }
    mp__job *j = mp__job_create(p, d, false);
    if (!j) return MP_ENOMEM;
    if ((rc = mp__job_submit(p, j)) != MP_OK) {
        mp__job_retire(j);
        return rc;
    }
    mp__job_at a = {j, 0};
    size_t done = 0;
    if (d->progress) d->progress(0, d->n, d->progress_arg); /* the start: rates need it */
    while (a.k < j->nchunks) {
        mp__pool_wait(p, mp__job_order_ready, &a, MP__NEVER);
        mp__job_progress(j, &a.k, &done);
        if (d->progress) d->progress(done, d->n, d->progress_arg);
    }
    return mp__job_conclude(j, d->out, d->failure);
}

struct mp_imap {
    mp__job *j;
    bool unordered;
    uint32_t next_c; /* ordered: the next chunk; unordered: the next order slot */
    uint32_t prog_k; /* order slots counted for progress */
    uint32_t c;      /* the chunk being returned */
    size_t pos, cnt, yielded, done, reported; /* done: counted from order slots */
    int code;
    void (*progress)(size_t done, size_t total, void *arg);
    void *progress_arg;
};

MPDEF mp_imap *mp_pool_imap(mp_pool *p, const mp_map_desc *d) {
    int rc = mp__map_check(p, d, true);
    if (rc != MP_OK) {
        errno = rc == MP_EPERM ? EPERM : EINVAL;
        return NULL;
    }
    mp_imap *it = (mp_imap *)mp_calloc(1, sizeof *it);
    if (!it) return NULL;
    it->unordered = d->unordered;
    it->progress = d->progress, it->progress_arg = d->progress_arg;
    if (d->n && !(it->j = mp__job_create(p, d, true))) {
        mp_free(it);
        errno = ENOMEM;
        return NULL;
    }
    if (it->j && mp__job_submit(p, it->j) != MP_OK) {
        mp__job_retire(it->j);
        mp_free(it);
        errno = EINVAL;
        return NULL;
    }
    if (it->progress && d->n) it->progress(0, d->n, it->progress_arg);
    return it;
}

/* Ordered, chunk it->c returned means chunks 0..c are done, though a worker marks a
   chunk done before it takes an order slot: the count is at least that many, so the
   call for the last chunk says done == total. */
static void mp__imap_progress(mp_imap *it) {
    mp__job *j = it->j;
    size_t before = it->reported;
    mp__job_progress(j, &it->prog_k, &it->done);
    size_t upto = it->unordered ? 0 : (size_t)it->c * j->chunksize + it->cnt;
    size_t now = it->done > upto ? it->done : upto;
    if (now > before) it->progress(it->reported = now, j->n, it->progress_arg);
}

/* Wait for the next chunk to return; MP_OK and it->c set, or MP_ETIMEDOUT. */
static int mp__imap_advance(mp_imap *it, int64_t deadline) {
    mp__job *j = it->j;
    mp__job_at a = {j, it->next_c};
    mp__pool_pred ready = it->unordered ? mp__job_order_ready : mp__job_chunk_ready;
    if (!ready(&a)) {
        if (!j->pool) return MP_ECANCELLED; /* cannot happen: a destroyed pool finished all */
        if (j->pool->owner != mp__g.pid) return MP_EPERM;
        int rc = mp__pool_wait(j->pool, ready, &a, deadline);
        if (rc != MP_OK) return rc;
    }
    it->c = it->unordered ? mp__load(&j->order[it->next_c]) - 1 : it->next_c;
    it->next_c++;
    it->pos = 0;
    it->cnt = mp__job_count(j, it->c);
    if (it->progress) mp__imap_progress(it);
    return MP_OK;
}

/* Make the next item ready without consuming it: MP_OK and its index in *i. */
static int mp__imap_peek(mp_imap *it, double timeout, size_t *i) {
    mp__job *j = it->j;
    if (!j || it->yielded == j->n) return MP_ECLOSED;
    if (it->pos == it->cnt) {
        int rc = mp__imap_advance(it, mp__deadline(timeout));
        if (rc != MP_OK) return rc;
    }
    *i = (size_t)it->c * j->chunksize + it->pos;
    return MP_OK;
}

/* Consume item i (from mp__imap_peek): its rc, with its code kept for mp_imap_code. */
static int mp__imap_take(mp_imap *it, size_t i, size_t *index) {
    if (index) *index = i;
    it->pos++, it->yielded++;
    return mp__job_item(it->j, it->c, i, &it->code);
}

MPDEF int mp_imap_next(mp_imap *it, void *out, size_t *index, double timeout) {
    size_t i;
    if (!it || (it->j && it->j->task)) return MP_EINVAL;
    int rc = mp__imap_peek(it, timeout, &i);
    if (rc != MP_OK) return rc;
    mp__job *j = it->j;
    rc = mp__imap_take(it, i, index);
    if (rc == MP_OK && out && j->out_size) memcpy(out, j->out + i * j->out_size, j->out_size);
    return rc;
}

MPDEF int mp_imap_next_alloc(mp_imap *it, void **buf, size_t *len, size_t *index,
                             double timeout) {
    size_t i;
    if (buf) *buf = NULL;
    if (len) *len = 0;
    if (!it || !buf || !len) return MP_EINVAL;
    int rc = mp__imap_peek(it, timeout, &i);
    if (rc != MP_OK) return rc;
    mp__job *j = it->j;
    mp__res *r = j->task ? &j->res[i] : NULL;
    size_t n = r ? r->len : j->out_size;
    const void *src = r ? r->data : j->out + i * j->out_size;
    void *copy = MP_MALLOC(n ? n : 1);
    if (!copy) return MP_ENOMEM; /* nothing consumed */
    if ((rc = mp__imap_take(it, i, index)) == MP_OK) {
        if (n) memcpy(copy, src, n);
        *buf = copy, *len = n;
    } else {
        MP_FREE(copy);
        if (rc == MP_ETOOBIG) *len = n;
    }
    if (r) mp_free(r->data), r->data = NULL; /* read once: give the block back now */
    return rc;
}

MPDEF int mp_imap_code(const mp_imap *it) { return it ? it->code : 0; }

MPDEF void mp_imap_destroy(mp_imap *it) {
    if (!it) return;
    if (it->j && (!it->j->pool || mp__pool_mine(it->j->pool))) mp__job_retire(it->j);
    mp_free(it);
}

/* ---- apply_async ---- */

MPDEF mp_async *mp_pool_apply_async(mp_pool *p, mp_task_fn fn, const void *arg, size_t arg_len) {
    if (!mp__pool_mine(p) || !fn || (!arg && arg_len)) {
        errno = p && !mp__pool_mine(p) ? EPERM : EINVAL;
        return NULL;
    }
    size_t cap = arg_len > MP__ASYNC_INLINE ? arg_len : MP__ASYNC_INLINE;
    if (cap > SIZE_MAX - MP__ASYNC_HDR) {
        errno = ENOMEM;
        return NULL;
    }
    mp_async *r = (mp_async *)mp_alloc(MP__ASYNC_HDR + cap);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->u.kind = MP__U_APPLY;
    r->u.tid = mp__fetch_add(&p->next_tid, (uint64_t)1) + 1;
    r->pool = p, r->fn = fn, r->arg_len = arg_len, r->cap = cap, r->owner = p->owner;
    if (arg_len) memcpy((char *)r + MP__ASYNC_HDR, arg, arg_len);
    if (mp__load(&p->exited) != p->exited_seen) mp__pool_maintain(p); /* replace retirees */
    if (mp__q_push(p, &r->u, 1) != MP_OK) {
        mp_free(r);
        errno = EINVAL;
        return NULL;
    }
    return r;
}

/* ---- map_async: an mp_async standing for a whole job ---- */

MPDEF mp_async *mp_pool_map_async(mp_pool *p, const mp_map_desc *d) {
    int rc = mp__map_check(p, d, false);
    mp_async *r = rc == MP_OK ? (mp_async *)mp_calloc(1, sizeof *r) : NULL;
    if (!r) {
        if (rc != MP_OK) errno = rc == MP_EPERM ? EPERM : EINVAL;
        return NULL;
    }
    r->u.kind = MP__U_MAP_ASYNC;
    r->pool = p, r->owner = p->owner;
    r->map_out = d->out, r->failure = d->failure, r->res_len = d->n * d->out_size;
    r->progress = d->progress, r->progress_arg = d->progress_arg;
    if (d->n && !(r->job = mp__job_create(p, d, false))) {
        mp_free(r);
        errno = ENOMEM;
        return NULL;
    }
    if (r->job && (rc = mp__job_submit(p, r->job)) != MP_OK) {
        mp__job_retire(r->job);
        mp_free(r);
        errno = EINVAL;
        return NULL;
    }
    if (!r->job) {
        if (d->failure) memset(d->failure, 0, sizeof *d->failure);
        r->state = MP__ST_DONE;
    } else if (d->progress) {
        d->progress(0, d->n, d->progress_arg); /* the start, as for map */
    }
    return r;
}

/* Count a map handle's newly finished chunks and call progress, in the owner. Several
   of its threads may wait on one handle: one counts at a time (the others go on
   waiting), and settling waits its turn so that the last call says done == total. */
static void mp__async_progress(mp_async *r, bool wait_turn) {
    uint32_t no = 0;
    if (!r->progress || r->owner != mp__g.pid) return;
    while (!mp__cas(&r->prog_busy, &no, 1u)) {
        if (!wait_turn) return;
        no = 0;
        sched_yield();
    }
    if (mp__job_progress(r->job, &r->prog_k, &r->prog_done))
        r->progress(r->prog_done, r->job->n, r->progress_arg);
    mp__store(&r->prog_busy, 0u);
}

/* Finished (settled or not). norder is read before counting: once it is whole, every
   order slot is written, so the count that follows reaches the total. */
static bool mp__async_done(void *arg) {
    mp_async *r = (mp_async *)arg;
    mp__job *j = r->job;
    bool settled = (mp__load(&r->state) & MP__ST_DONE) != 0;
    if (!j || settled) return settled;
    bool finished = mp__load(&j->norder) == j->nchunks;
    mp__async_progress(r, false);
    return finished;
}

/* A finished map handle: deliver its results, once, in the owner (any of its threads
   may get here: one delivers, the others wait for it). The job lives on until destroy. */
static int mp__async_settle(mp_async *r) {
    if (!r->job || (mp__load(&r->state) & MP__ST_DONE)) return MP_OK;
    if (r->owner != mp__g.pid) return MP_EPERM;
    uint32_t no = 0;
    if (!mp__cas(&r->settled, &no, 1u)) {
        while (!(mp__load(&r->state) & MP__ST_DONE)) sched_yield();
        return MP_OK;
    }
    mp__async_progress(r, true);
    mp_map_failure f;
    r->rc = mp__job_deliver(r->job, r->map_out, &f);
    r->code = f.code;
    if (r->failure) *r->failure = f;
    mp__store(&r->state, MP__ST_DONE);
    return MP_OK;
}

static mp_pool *mp__async_pool(mp_async *r) { return r->job ? r->job->pool : r->pool; }

MPDEF int mp_async_wait(mp_async *r, double timeout) {
    if (!r) return MP_EINVAL;
    if (!mp__async_done(r)) {
        mp_pool *p = mp__async_pool(r);
        if (!mp__pool_mine(p)) return MP_EPERM;
        int rc = mp__pool_wait(p, mp__async_done, r, mp__deadline(timeout));
        if (rc != MP_OK) return rc;
    }
    return mp__async_settle(r);
}

MPDEF int mp_async_get(mp_async *r, void *out, size_t cap, size_t *len, double timeout) {
    if (!r || (!out && cap)) return MP_EINVAL;
    int rc = mp_async_wait(r, timeout);
    if (rc != MP_OK) return rc;
    if (len) *len = r->res_len;
    if (r->rc != MP_OK || r->u.kind == MP__U_MAP_ASYNC) return r->rc;
    if (r->res_len > cap) return MP_ETOOBIG;
    if (r->res_len) memcpy(out, r->big ? (char *)r->big : (char *)r + MP__ASYNC_HDR, r->res_len);
    return MP_OK;
}

MPDEF bool mp_async_ready(mp_async *r) {
    if (!r) return false;
    if (!mp__async_done(r)) {
        /* a caller that only polls must still see its worker die */
        mp_pool *p = mp__async_pool(r);
        if (mp__pool_mine(p) && mp__now_ns() - p->last_maint >= MP__POOL_SLICE_NS)
            mp__pool_maintain(p);
        if (!mp__async_done(r)) return false;
    }
    return mp__async_settle(r) == MP_OK;
}

MPDEF bool mp_async_successful(mp_async *r) { return mp_async_ready(r) && r->rc == MP_OK; }

MPDEF int mp_async_code(mp_async *r) {
    return r && (mp__load(&r->state) & MP__ST_DONE) ? r->code : 0;
}

typedef struct {
    mp_async *const *rs;
    size_t n, found;
} mp__async_set;

static bool mp__async_any(void *arg) {
    mp__async_set *a = (mp__async_set *)arg;
    for (size_t i = 0; i < a->n; i++)
        if (mp__async_done(a->rs[i])) return a->found = i, true;
    return false;
}

MPDEF int mp_async_wait_any(mp_async *const *rs, size_t n, double timeout) {
    if (!rs || !n || n > INT_MAX) return MP_EINVAL;
    mp_pool *p = NULL;
    bool several = false;
    for (size_t i = 0; i < n; i++) {
        if (!rs[i]) return MP_EINVAL;
        if (rs[i]->owner != mp__g.pid) return MP_EPERM;
        mp_pool *q = mp__async_done(rs[i]) ? NULL : mp__async_pool(rs[i]);
        if (q && p && q != p) several = true;
        if (q && !p) p = q;
    }
    mp__async_set a = {rs, n, 0};
    int64_t deadline = mp__deadline(timeout);
    while (!mp__async_any(&a)) {
        /* several pools: sleep on one in short slices, looking after the others */
        int64_t until = several ? mp__now_ns() + 1000000 : deadline;
        if (until > deadline) until = deadline;
        int rc = mp__pool_wait(p, mp__async_any, &a, until);
        if (rc == MP_OK) break;
        if (mp__now_ns() >= deadline) return MP_ETIMEDOUT;
        for (size_t i = 0; i < n; i++) mp_async_ready(rs[i]); /* maintenance of each pool */
    }
    int rc = mp__async_settle(rs[a.found]);
    return rc == MP_OK ? (int)a.found : rc;
}

MPDEF int mp_pool_apply(mp_pool *p, mp_task_fn fn, const void *arg, size_t arg_len,
                        void *out, size_t cap, size_t *len) {
    if (!out && cap) return MP_EINVAL;
    mp_async *r = mp_pool_apply_async(p, fn, arg, arg_len);
    if (!r) return errno == ENOMEM ? MP_ENOMEM : errno == EPERM ? MP_EPERM : MP_EINVAL;
    int rc = mp_async_get(r, out, cap, len, MP_FOREVER);
    mp_async_destroy(r);
    return rc;
}

static void mp__async_map_destroy(mp_async *r) {
    mp__job *j = r->job;
    if (j && (!j->pool || r->owner == mp__g.pid)) mp__job_retire(j);
    mp_free(r);
}

MPDEF void mp_async_destroy(mp_async *r) {
    if (!r) return;
    if (r->u.kind == MP__U_MAP_ASYNC) {
        mp__async_map_destroy(r);
        return;
    }
    uint32_t s = mp__load(&r->state);
    while (!(s & MP__ST_DONE)) {
        mp_pool *p = r->pool;
        if (s == MP__ST_QUEUED) { /* claims happen under qlock: decide there */
            mp__lw_acquire(&p->qlock, MP__NEVER);
            bool queued = mp__load(&r->state) == MP__ST_QUEUED;
            if (queued) mp__q_unlink(p, &r->u);
            mp__lw_release(&p->qlock);
            if (queued) break;
        } else if (mp__cas(&r->state, &s, s | MP__ST_ABANDON)) {
            return; /* running: whoever finishes it frees it */
        }
        s = mp__load(&r->state);
    }
    r->u.tid = 0;
    mp_free(r->big);
    mp_free(r);
}

/* ---- the progress bar ---- */

static void mp__fmt_time(char *buf, size_t cap, double s) {
    if (s < 0 || s > 359999) s = 0;
    unsigned t = (unsigned)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%02u:%02u", t / 60, t % 60);
}

/* The rate and time left come from the whole run so far: from the call with done 0 that
   starts a run (the pool makes one), so the final line shows the true average. */
MPDEF void mp_progress_bar(size_t done, size_t total, void *arg) {
    static int64_t t0, last;
    static size_t prev;
    int64_t now = mp__now_ns();
    if (!t0 || done == 0 || done < prev) t0 = now, last = 0;
    prev = done;
    bool end = done >= total;
    if (!end && now - last < 100000000) return;
    last = now;
    double el = (double)(now - t0) / 1e9, rate = el > 0 ? (double)done / el : 0;
    if (end) t0 = 0;
    if (!isatty(2)) return;
    char bar[21], e[16], l[16], line[256];
    unsigned fill = total ? (unsigned)((double)done / (double)total * 20) : 20;
    for (unsigned i = 0; i < 20; i++) bar[i] = i < fill ? '#' : ' ';
    bar[20] = 0;
    mp__fmt_time(e, sizeof e, el);
    mp__fmt_time(l, sizeof l, rate > 0 ? (double)(total - done) / rate : 0);
    int n = snprintf(line, sizeof line, "\r%s%s%3u%%|%s| %zu/%zu [%s<%s, %.1f/s]%s",
                     arg ? (const char *)arg : "", arg ? ": " : "",
                     total ? (unsigned)((double)done * 100 / (double)total) : 100, bar, done,
                     total, e, l, rate, end ? "\n" : "");
    if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
    for (const char *s = line; n > 0;) {
        ssize_t w = write(2, s, (size_t)n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        s += w, n -= (int)w;
    }
}


// >>auth -------------------------------------------------------------------------
// MD5 (RFC 1321), SHA-256 (FIPS 180-4) and HMAC (RFC 2104), just enough for Python's
// connection handshake: one Merkle-Damgard driver with 64-byte blocks serves both
// hashes, which differ only in their compression function, state and byte order.

typedef struct mp__hash_alg {
    const char *name; /* Python's digest name, as in "{sha256}" */
    size_t len;       /* digest bytes */
    int words;        /* 32-bit state words */
    bool be;          /* big-endian words and length (SHA-2) or little (MD5) */
    const uint32_t *iv;
    void (*block)(uint32_t *h, const unsigned char *p);
} mp__hash_alg;

typedef struct mp__hash {
    const mp__hash_alg *alg;
    uint32_t h[8];
    uint64_t bytes;
    unsigned char buf[64];
    size_t used;
} mp__hash;

#define MP__ROL(x, n) ((uint32_t)((x) << (n) | (x) >> (32 - (n))))
#define MP__ROR(x, n) ((uint32_t)((x) >> (n) | (x) << (32 - (n))))
#define MP__HASH_MAX 32 /* the largest digest: SHA-256 */

static uint32_t mp__le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint32_t mp__be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void mp__md5_block(uint32_t *h, const unsigned char *p) {
    static const uint32_t k[64] = {
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
        0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
        0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
        0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
        0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
        0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
        0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
    static const unsigned char r[16] = {7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21};
    uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3];
    int i;
    for (i = 0; i < 16; i++) w[i] = mp__le32(p + 4 * i);
    for (i = 0; i < 64; i++) {
        uint32_t f;
        int g, round = i >> 4;
        if (round == 0) f = (b & c) | (~b & d), g = i;
        else if (round == 1) f = (d & b) | (~d & c), g = (5 * i + 1) & 15;
        else if (round == 2) f = b ^ c ^ d, g = (3 * i + 5) & 15;
        else f = c ^ (b | ~d), g = (7 * i) & 15;
        f += a + k[i] + w[g];
        a = d, d = c, c = b;
        b += MP__ROL(f, r[round * 4 + (i & 3)]);
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d;
}

static const uint32_t mp__sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static void mp__sha256_block(uint32_t *h, const unsigned char *p) {
    uint32_t w[64], s[8];
    int i;
    for (i = 0; i < 16; i++) w[i] = mp__be32(p + 4 * i);
    for (i = 16; i < 64; i++) {
        uint32_t s0 = MP__ROR(w[i - 15], 7) ^ MP__ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = MP__ROR(w[i - 2], 17) ^ MP__ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(s, h, sizeof s);
    for (i = 0; i < 64; i++) {
        uint32_t e = s[4], a = s[0];
        uint32_t t1 = s[7] + (MP__ROR(e, 6) ^ MP__ROR(e, 11) ^ MP__ROR(e, 25)) +
                      ((e & s[5]) ^ (~e & s[6])) + mp__sha256_k[i] + w[i];
        uint32_t t2 = (MP__ROR(a, 2) ^ MP__ROR(a, 13) ^ MP__ROR(a, 22)) +
                      ((a & s[1]) ^ (a & s[2]) ^ (s[1] & s[2]));
        memmove(s + 1, s, 7 * sizeof *s);
        s[4] += t1;
        s[0] = t1 + t2;
    }
    for (i = 0; i < 8; i++) h[i] += s[i];
}

static const uint32_t mp__md5_iv[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
static const uint32_t mp__sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
static const mp__hash_alg mp__md5 = {"md5", 16, 4, false, mp__md5_iv, mp__md5_block};
static const mp__hash_alg mp__sha256 = {"sha256", 32, 8, true, mp__sha256_iv, mp__sha256_block};

static void mp__hash_init(mp__hash *s, const mp__hash_alg *a) {
    memset(s, 0, sizeof *s);
    s->alg = a;
    memcpy(s->h, a->iv, (size_t)a->words * sizeof *s->h);
}

static void mp__hash_update(mp__hash *s, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    s->bytes += n;
    while (n > 0) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->buf + s->used, p, take);
        s->used += take, p += take, n -= take;
        if (s->used == 64) {
            s->alg->block(s->h, s->buf);
            s->used = 0;
        }
    }
}

/* Padding: 0x80, zeros to 56 mod 64, the length in bits (the algorithm's byte order). */
static void mp__hash_final(mp__hash *s, unsigned char *out) {
    uint64_t bits = s->bytes * 8;
    unsigned char pad[72] = {0x80};
    size_t padlen = (s->used < 56 ? 56 : 120) - s->used;
    int i;
    for (i = 0; i < 8; i++) pad[padlen + i] = (unsigned char)(bits >> (s->alg->be ? 56 - 8 * i : 8 * i));
    mp__hash_update(s, pad, padlen + 8);
    for (i = 0; i < 4 * s->alg->words; i++) {
        int sh = s->alg->be ? 24 - 8 * (i & 3) : 8 * (i & 3);
        out[i] = (unsigned char)(s->h[i >> 2] >> sh);
    }
}

/* HMAC (RFC 2104) of msg under key; out gets alg->len bytes. */
static void mp__hmac(const mp__hash_alg *a, const void *key, size_t klen, const void *msg,
                     size_t mlen, unsigned char *out) {
    unsigned char k[64], pad[64], inner[MP__HASH_MAX];
    mp__hash s;
    int i;
    memset(k, 0, sizeof k);
    if (klen > 64) { /* a long key is hashed first */
        mp__hash_init(&s, a);
        mp__hash_update(&s, key, klen);
        mp__hash_final(&s, k);
    } else if (klen) {
        memcpy(k, key, klen);
    }
    for (i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    mp__hash_init(&s, a);
    mp__hash_update(&s, pad, 64);
    mp__hash_update(&s, msg, mlen);
    mp__hash_final(&s, inner);
    for (i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    mp__hash_init(&s, a);
    mp__hash_update(&s, pad, 64);
    mp__hash_update(&s, inner, a->len);
    mp__hash_final(&s, out);
}

/* Equal-length digests compared in time independent of where they differ. */
static bool mp__digest_equal(const unsigned char *a, const unsigned char *b, size_t n) {
    unsigned char d = 0;
    size_t i;
    for (i = 0; i < n; i++) d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* n bytes from the kernel's CSPRNG. MP_OK or MP_ESYS. */
static int mp__random(void *buf, size_t n) {
    unsigned char *p = (unsigned char *)buf;
    while (n > 0) {
        long r = syscall(SYS_getrandom, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return MP_ESYS;
        p += r, n -= (size_t)r;
    }
    return MP_OK;
}

/* --- Python's handshake (Lib/multiprocessing/connection.py) ---
   The side that challenges sends "#CHALLENGE#" + message and expects a MAC of message.
   Python 3.11 sends 20 random bytes and wants a bare 16-byte HMAC-MD5; 3.12+ sends
   "{sha256}" + 40 bytes and wants "{sha256}" + HMAC-SHA256 of the whole message, but
   still takes a bare HMAC-MD5 (a 3.11 client's answer). We challenge as 3.12+ does and
   answer both. Each message is one frame of at most 256 bytes. */

#define MP__AUTH_MAX 256      /* Python's recv_bytes(256) */
#define MP__AUTH_NONCE 40     /* Python's MESSAGE_LENGTH */
#define MP__AUTH_LEGACY 20    /* a 3.11 challenge */
#define MP__AUTH_CHALLENGE "#CHALLENGE#"
#define MP__AUTH_WELCOME "#WELCOME#"
#define MP__AUTH_FAILURE "#FAILURE#"

/* Python's _get_digest_name_and_payload: a 16- or 20-byte message is the legacy form
   (MD5, no prefix); else "{name}" with '}' within the first 10 bytes and name one
   Python allows. Of those we compute md5 and sha256 (Python also allows sha384,
   sha3_256 and sha3_384, which no Python side picks unless told to). NULL when the
   digest is unknown or unsupported; *skip = prefix bytes. */
static const mp__hash_alg *mp__auth_digest(const unsigned char *m, size_t n, size_t *skip) {
    size_t i;
    *skip = 0;
    if (n == 16 || n == MP__AUTH_LEGACY) return &mp__md5;
    if (n < 2 || m[0] != '{') return NULL;
    for (i = 1; i < n && i < 10 && m[i] != '}'; i++) {}
    if (i >= n || i >= 10) return NULL;
    *skip = i + 1;
    if (i - 1 == 3 && memcmp(m + 1, "md5", 3) == 0) return &mp__md5;
    if (i - 1 == 6 && memcmp(m + 1, "sha256", 6) == 0) return &mp__sha256;
    return NULL;
}

/* Receive one handshake message (at most MP__AUTH_MAX bytes). A longer one is a
   protocol error (MP_EAUTH), as Python's "bad message length". */
static int mp__auth_recv(mp_conn *c, unsigned char *buf, size_t *len, int64_t deadline) {
    /* the peer is rarely faster than us: poll first rather than try a read in vain */
    int rc = mp__conn_ready(c) ? MP_OK : mp__fd_wait(c->fd, POLLIN, deadline);
    if (rc == MP_OK) rc = mp__conn_take(c, (char *)buf, MP__AUTH_MAX, len, deadline);
    return rc == MP_ETOOBIG ? MP_EAUTH : rc;
}

/* Whether resp is a correct answer to our challenge message msg. */
static bool mp__auth_check(const void *key, size_t klen, const unsigned char *msg, size_t mlen,
                           const unsigned char *resp, size_t rlen) {
    unsigned char want[MP__HASH_MAX];
    size_t skip;
    const mp__hash_alg *a = mp__auth_digest(resp, rlen, &skip);
    if (!a || rlen - skip != a->len) return false;
    mp__hmac(a, key, klen, msg, mlen, want);
    return mp__digest_equal(want, resp + skip, a->len);
}

#define MP__AUTH_CHALLENGE_LEN (11 + 8 + MP__AUTH_NONCE)

/* Our challenge: "#CHALLENGE#{sha256}" + 40 bytes from getrandom. */
static int mp__auth_challenge(unsigned char *out) {
    memcpy(out, MP__AUTH_CHALLENGE "{sha256}", 19);
    return mp__random(out + 19, MP__AUTH_NONCE);
}

/* The second half of deliver_challenge: read the answer to our challenge ch. MP_OK
   (the caller sends "#WELCOME#"); MP_EAUTH (wrong answer: #FAILURE# was sent; or a
   protocol error); the conn's receive codes. */
static int mp__auth_judge(mp_conn *c, const void *key, size_t klen, const unsigned char *ch,
                          int64_t deadline) {
    unsigned char resp[MP__AUTH_MAX];
    size_t rlen;
    int rc = mp__auth_recv(c, resp, &rlen, deadline);
    if (rc != MP_OK) return rc;
    if (!mp__auth_check(key, klen, ch + 11, MP__AUTH_CHALLENGE_LEN - 11, resp, rlen)) {
        mp_conn_send(c, MP__AUTH_FAILURE, 9); /* best effort: we close next anyway */
        return MP_EAUTH;
    }
    return MP_OK;
}

/* Python's _create_response: the MAC of a challenge message (after "#CHALLENGE#").
   MP_OK with out/outlen, or MP_EAUTH for a message Python would refuse too (shorter
   than 20 bytes, no known digest prefix) or a digest we do not compute. */
static int mp__auth_response(const void *key, size_t klen, const unsigned char *m, size_t n,
                             unsigned char *out, size_t *outlen) {
    size_t skip;
    const mp__hash_alg *a = n < MP__AUTH_LEGACY ? NULL : mp__auth_digest(m, n, &skip);
    if (!a) return MP_EAUTH;
    *outlen = skip + a->len;
    memcpy(out, m, skip); /* "{name}", or nothing for the legacy form */
    mp__hmac(a, key, klen, m, n, out + skip); /* the MAC covers the prefix too */
    return MP_OK;
}

/* Frames a (if any), b and c (if any) in one write. */
static int mp__auth_send3(mp_conn *c, const void *a, size_t an, const void *b, size_t bn,
                          const void *z, size_t zn) {
    unsigned char h[3][12];
    struct iovec iov[6];
    const void *p[3] = {a, b, z};
    size_t n[3] = {an, bn, zn};
    int i, cnt = 0;
    for (i = 0; i < 3; i++) {
        if (!p[i]) continue;
        iov[cnt].iov_base = h[i];
        iov[cnt++].iov_len = mp__conn_header(h[i], n[i]);
        iov[cnt].iov_base = (void *)(uintptr_t)p[i];
        iov[cnt++].iov_len = n[i];
    }
    return mp__conn_writev(c, iov, cnt);
}

/* The first half of answer_challenge: read the peer's challenge and send our answer,
   in one write with the frames before and after (if any; see mp__auth_handshake).
   MP_OK; MP_EAUTH (not a challenge Python would answer); the conn's codes. */
static int mp__auth_respond(mp_conn *c, const void *key, size_t klen, int64_t deadline,
                            const char *before, const unsigned char *after, size_t after_len) {
    unsigned char m[MP__AUTH_MAX], out[16 + MP__HASH_MAX];
    size_t n, outlen;
    int rc = mp__auth_recv(c, m, &n, deadline);
    if (rc == MP_OK && (n < 11 || memcmp(m, MP__AUTH_CHALLENGE, 11) != 0)) rc = MP_EAUTH;
    if (rc == MP_OK) rc = mp__auth_response(key, klen, m + 11, n - 11, out, &outlen);
    if (rc == MP_OK) return mp__auth_send3(c, before, before ? strlen(before) : 0, out, outlen, after, after_len);
    if (before) mp_conn_send(c, before, strlen(before)); /* what was due anyway */
    return rc;
}

/* The end of answer_challenge: MP_OK if the peer says "#WELCOME#", else MP_EAUTH. */
static int mp__auth_verdict(mp_conn *c, int64_t deadline) {
    unsigned char m[MP__AUTH_MAX];
    size_t n;
    int rc = mp__auth_recv(c, m, &n, deadline);
    if (rc != MP_OK) return rc;
    return n == 9 && memcmp(m, MP__AUTH_WELCOME, 9) == 0 ? MP_OK : MP_EAUTH;
}

/* Python's handshake, mutual. Accepting: deliver_challenge then answer_challenge;
   connecting: the reverse. The bytes are Python's, in Python's order, but the writes
   are merged where the peer cannot be kept waiting by it: the connecting side sends
   its challenge with its answer (a listener reads one frame at a time), and when that
   challenge is already here the accepting side sends "#WELCOME#" with its answer. Two
   trips fewer than Python between two mp sides; none lost with a Python side. */
static int mp__auth_handshake(mp_conn *c, const void *key, size_t klen, bool accepting,
                              int64_t deadline) {
    unsigned char ch[MP__AUTH_CHALLENGE_LEN];
    int rc = mp__auth_challenge(ch) == MP_OK ? MP_OK : MP_ESYS;
    if (rc == MP_OK && accepting) {
        if ((rc = mp_conn_send(c, ch, sizeof ch)) == MP_OK) rc = mp__auth_judge(c, key, klen, ch, deadline);
        size_t hdr;
        uint64_t n; /* merge only with a whole challenge that is here already */
        bool merge = rc == MP_OK && mp__conn_head(c, &hdr, &n) == MP_OK && n <= MP__AUTH_MAX &&
                     c->rend - c->rpos - hdr >= n;
        if (rc == MP_OK && !merge) rc = mp_conn_send(c, MP__AUTH_WELCOME, 9);
        if (rc == MP_OK) rc = mp__auth_respond(c, key, klen, deadline, merge ? MP__AUTH_WELCOME : NULL, NULL, 0);
        if (rc == MP_OK) rc = mp__auth_verdict(c, deadline);
    } else if (rc == MP_OK) {
        rc = mp__auth_respond(c, key, klen, deadline, NULL, ch, sizeof ch);
        if (rc == MP_OK) rc = mp__auth_verdict(c, deadline);
        if (rc == MP_OK) rc = mp__auth_judge(c, key, klen, ch, deadline);
        if (rc == MP_OK) rc = mp_conn_send(c, MP__AUTH_WELCOME, 9);
    }
    return rc;
}

// >>listener ---------------------------------------------------------------------
// Python's Listener and Client on Unix and TCP sockets. An accepted or connected
// socket becomes an ordinary mp_conn, so the handshake above and everything after it
// is the conn's framing; the handshake reads at most 256 bytes per message, under a
// deadline, so a hostile or silent peer costs the listener that long at most.

#define MP__LISTEN_BACKLOG 128
#define MP__HANDSHAKE_TIMEOUT 10.0
#define MP__ADDR_MAX 8 /* resolved TCP addresses tried in turn */

typedef struct mp__sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
} mp__sockaddr;

typedef struct mp__addrs {
    int n;
    bool tcp;
    bool path; /* a socket file (not abstract) */
    mp__sockaddr a[MP__ADDR_MAX];
} mp__addrs;

struct mp_listener {
    int fd;
    bool tcp;
    bool auth;
    pid_t creator;           /* only it removes the socket file */
    dev_t dev;               /* the socket file we bound, to remove no other */
    ino_t ino;
    double handshake_timeout;
    unsigned char *key;
    size_t klen;
    char address[128];       /* as bound */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* socket file to remove */
    char dir[80];            /* private dir to remove (TMPDIR up to 64 bytes) */
};

/* "/p", "./p", "../p" or "@name" into a sockaddr_un. -1 with errno EINVAL or
   ENAMETOOLONG. */
static int mp__addr_unix(const char *s, mp__addrs *out) {
    struct sockaddr_un *un = (struct sockaddr_un *)&out->a[0].ss;
    bool abstract = s[0] == '@';
    size_t n = strlen(s + abstract);
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    if (n == 0 || n >= sizeof un->sun_path) {
        errno = n ? ENAMETOOLONG : EINVAL;
        return -1;
    }
    memcpy(un->sun_path + abstract, s + abstract, n); /* abstract: a leading NUL byte */
    out->n = 1;
    out->path = !abstract;
    out->a[0].len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + abstract + n + !abstract);
    return 0;
}

/* A numeric IPv4 or IPv6 host needs no resolver (getaddrinfo reads files even then). */
static bool mp__addr_numeric(const char *host, unsigned short port, mp__sockaddr *a) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
    memset(&a->ss, 0, sizeof a->ss);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a->len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a->len = sizeof *v6;
        return true;
    }
    return false;
}

/* "host:port" or "[v6]:port" (host may be empty: any address when listening,
   loopback when connecting) through getaddrinfo. -1 with errno EINVAL, ENOENT (does
   not resolve), ENOMEM. */
/* host (NULL: any, or loopback) and a numeric port through getaddrinfo, up to
   MP__ADDR_MAX addresses. -1 with errno ENOENT (does not resolve), ENOMEM. */
static int mp__addr_resolve(const char *host, const char *port, bool passive, mp__addrs *out) {
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    int r = getaddrinfo(host, port, &hints, &res);
    if (r != 0) {
        errno = r == EAI_MEMORY ? ENOMEM : r == EAI_SYSTEM ? errno : ENOENT;
        return -1;
    }
    for (out->n = 0, ai = res; ai && out->n < MP__ADDR_MAX; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof out->a[0].ss) continue;
        memcpy(&out->a[out->n].ss, ai->ai_addr, ai->ai_addrlen);
        out->a[out->n++].len = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    if (out->n == 0) errno = ENOENT;
    return out->n ? 0 : -1;
}

static int mp__addr_tcp(const char *s, bool passive, mp__addrs *out) {
    char host[256], *end;
    const char *colon = strrchr(s, ':'), *h = s, *port = colon ? colon + 1 : NULL;
    size_t hn = colon ? (size_t)(colon - s) : 0;
    if (hn >= 2 && s[0] == '[' && s[hn - 1] == ']') h++, hn -= 2;
    else if (memchr(s, ':', hn) || memchr(s, '[', hn)) port = NULL; /* v6 needs [] */
    errno = 0;
    unsigned long pn = port && *port >= '0' && *port <= '9' ? strtoul(port, &end, 10) : 70000;
    if (!port || hn >= sizeof host || pn > 65535 || *end || errno) {
        errno = EINVAL;
        return -1;
    }
    memcpy(host, h, hn);
    host[hn] = 0;
    out->tcp = true;
    if (mp__addr_numeric(host, (unsigned short)pn, &out->a[0])) return out->n = 1, 0;
    return mp__addr_resolve(hn ? host : NULL, port, passive, out);
}

static int mp__addr_parse(const char *s, bool passive, mp__addrs *out) {
    memset(out, 0, sizeof *out);
    bool path = s[0] == '/' || (s[0] == '.' && (s[1] == '/' || (s[1] == '.' && s[2] == '/')));
    if (path || s[0] == '@') return mp__addr_unix(s, out);
    return mp__addr_tcp(s, passive, out);
}

static void mp__tcp_nodelay(int fd) {
    int one = 1; /* small messages leave at once: a request/reply must not wait 40 ms */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Wrap a connected socket (taken in all cases) in a conn and, with a key, run the
   handshake. MP_OK with *out, or the handshake's code. */
static int mp__sock_conn(int fd, bool tcp, const void *key, size_t klen, bool accepting,
                         int64_t deadline, mp_conn **out) {
    if (tcp) mp__tcp_nodelay(fd);
    mp_conn *c = mp__conn_new(fd, MP_CONN_READABLE | MP_CONN_WRITABLE, true);
    if (!c) {
        close(fd);
        return MP_ENOMEM;
    }
    int rc = key ? mp__auth_handshake(c, key, klen, accepting, deadline) : MP_OK;
    if (rc != MP_OK) {
        int e = errno;
        mp_conn_close(c);
        errno = e;
        return rc;
    }
    *out = c;
    return MP_OK;
}

/* NULL address: a socket file in a fresh 0700 directory (mkdtemp), as Python's
   arbitrary_address. */
static int mp__listener_tmp(mp_listener *l, char *addr, size_t cap) {
    const char *t = getenv("TMPDIR");
    if (!t || !*t || strlen(t) > 64) t = "/tmp";
    snprintf(l->dir, sizeof l->dir, "%s/mp-XXXXXX", t);
    if (!mkdtemp(l->dir)) {
        l->dir[0] = 0;
        return -1;
    }
    snprintf(addr, cap, "%s/listener.sock", l->dir);
    return 0;
}

/* A listening socket on the first address that binds. A socket file gets mode 0600
   from the start: fchmod of the unbound socket sets the mode bind gives the file. */
static int mp__listen_on(mp_listener *l, const mp__addrs *as, int backlog) {
    int i, one = 1;
    for (i = 0; i < as->n; i++) {
        const mp__sockaddr *a = &as->a[i];
        int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) continue; /* EAFNOSUPPORT: no IPv6 here, say; errno stays */
        if (as->tcp) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if ((!as->path || fchmod(fd, 0600) == 0) &&
            bind(fd, (const struct sockaddr *)&a->ss, a->len) == 0 && listen(fd, backlog) == 0) {
            l->fd = fd;
            return 0;
        }
        int e = errno;
        close(fd);
        errno = e;
    }
    return -1;
}

/* The bound address, as a string of the same syntax. */
static void mp__listener_name(mp_listener *l, const char *given) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char h[NI_MAXHOST], p[NI_MAXSERV];
    if (!l->tcp || getsockname(l->fd, (struct sockaddr *)&ss, &len) != 0 ||
        getnameinfo((struct sockaddr *)&ss, len, h, sizeof h, p, sizeof p,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(l->address, sizeof l->address, "%s", given);
        return;
    }
    snprintf(l->address, sizeof l->address, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
}

static int mp__listener_setup(mp_listener *l, const mp_listener_desc *d) {
    char tmp[sizeof l->path];
    const char *addr = d->address;
    mp__addrs as;
    struct stat st;
    if (!addr && mp__listener_tmp(l, tmp, sizeof tmp) != 0) return -1;
    if (!addr) addr = tmp;
    if (mp__addr_parse(addr, true, &as) != 0) return -1;
    if (!as.path && !d->authkey && !d->allow_unauthenticated) {
        errno = EINVAL; /* no file permissions guard TCP or abstract names */
        return -1;
    }
    if (mp__listen_on(l, &as, d->backlog ? d->backlog : MP__LISTEN_BACKLOG) != 0) return -1;
    l->tcp = as.tcp;
    mp__listener_name(l, addr);
    if (as.path && stat(addr, &st) == 0) {
        snprintf(l->path, sizeof l->path, "%s", addr);
        l->dev = st.st_dev, l->ino = st.st_ino;
    }
    return 0;
}

MPDEF mp_listener *mp_listener_create(const mp_listener_desc *d) {
    mp_listener_desc z;
    if (!d) d = (const mp_listener_desc *)memset(&z, 0, sizeof z);
    if ((!d->authkey && d->authkey_len) || d->backlog < 0 ||
        d->handshake_timeout != d->handshake_timeout) {
        errno = EINVAL;
        return NULL;
    }
    mp_listener *l = (mp_listener *)MP_MALLOC(sizeof *l);
    if (l) memset(l, 0, sizeof *l);
    if (l && d->authkey && !(l->key = (unsigned char *)MP_MALLOC(d->authkey_len + 1))) {
        MP_FREE(l);
        l = NULL;
    }
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    l->fd = -1;
    l->creator = getpid();
    l->auth = d->authkey != NULL;
    l->klen = d->authkey_len;
    if (d->authkey_len) memcpy(l->key, d->authkey, d->authkey_len);
    l->handshake_timeout = d->handshake_timeout ? d->handshake_timeout : MP__HANDSHAKE_TIMEOUT;
    if (mp__listener_setup(l, d) == 0) return l;
    int e = errno;
    mp_listener_close(l);
    errno = e;
    return NULL;
}

MPDEF const char *mp_listener_address(const mp_listener *l) { return l ? l->address : NULL; }

MPDEF int mp_listener_fileno(const mp_listener *l) { return l ? l->fd : MP_EINVAL; }

/* accept4 on the non-blocking listening socket, waiting with poll until deadline:
   another process sharing the listener may take the client we were woken for. */
static int mp__accept_fd(int lfd, int64_t deadline) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) return fd;
        switch (errno) {
        case EINTR: case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT:
        case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case ENETUNREACH:
            continue; /* that client is gone already; the next one may be fine */
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            break;
        default:
            return MP_ESYS; /* EMFILE, ENFILE, ENOBUFS...: the client stays queued */
        }
        int w = mp__fd_wait(lfd, POLLIN, deadline);
        if (w != MP_OK) return w;
    }
}

MPDEF int mp_listener_accept(mp_listener *l, mp_conn **out, double timeout) {
    if (out) *out = NULL;
    if (!l || !out || l->fd < 0) return MP_EINVAL;
    int fd = mp__accept_fd(l->fd, mp__deadline(timeout));
    if (fd < 0) return fd;
    int64_t deadline = mp__deadline(l->handshake_timeout);
    int rc = mp__sock_conn(fd, l->tcp, l->auth ? l->key : NULL, l->klen, true, deadline, out);
    if (rc == MP_ECLOSED || rc == MP_ETIMEDOUT) rc = MP_EAUTH; /* that client failed */
    return rc;
}

MPDEF void mp_listener_close(mp_listener *l) {
    struct stat st;
    if (!l) return;
    if (l->fd >= 0) close(l->fd);
    if (l->creator == getpid()) { /* not a forked copy: the file is its creator's */
        if (l->path[0] && lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
            unlink(l->path);
        if (l->dir[0]) rmdir(l->dir);
    }
    if (l->key) {
        volatile unsigned char *k = l->key; /* the key does not linger in freed memory */
        size_t i;
        for (i = 0; i < l->klen; i++) k[i] = 0;
        MP_FREE(l->key);
    }
    MP_FREE(l);
}

/* MP code of a failed connect (errno kept). */
static int mp__connect_code(void) {
    if (errno == ECONNREFUSED || errno == ECONNRESET || errno == EPIPE) return MP_ECLOSED;
    return errno == ETIMEDOUT ? MP_ETIMEDOUT : MP_ESYS;
}

/* connect on a non-blocking socket until deadline. A Unix listener whose backlog is
   full answers EAGAIN at once: retry after a short sleep, as a blocking connect would
   wait. */
static int mp__connect_fd(int fd, const mp__sockaddr *a, int64_t deadline) {
    int64_t nap = 1000000;
    while (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        if (errno == EINPROGRESS || errno == EINTR) { /* TCP: finishes in the background */
            int err = 0, w = mp__fd_wait(fd, POLLOUT, deadline);
            socklen_t len = sizeof err;
            if (w != MP_OK) return w;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return MP_ESYS;
            if (!err) return MP_OK;
            errno = err;
            return mp__connect_code();
        }
        if (errno != EAGAIN) return mp__connect_code();
        int64_t left = deadline - mp__now_ns();
        if (left <= 0) return MP_ETIMEDOUT;
        struct timespec ts = {0, (long)(nap < left ? nap : left)};
        nanosleep(&ts, NULL);
        if (nap < 50000000) nap *= 2;
    }
    return MP_OK;
}

/* A connected, blocking socket to the first address that takes us. */
static int mp__connect(const mp__addrs *as, int64_t deadline, int *out) {
    int i, rc = MP_ESYS;
    for (i = 0; i < as->n; i++) {
        int fd = socket(as->a[i].ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) continue; /* EAFNOSUPPORT...: the next address may do; rc stays */
        rc = mp__connect_fd(fd, &as->a[i], deadline);
        /* blocking again: a fresh socket has no other status flag to keep */
        if (rc == MP_OK && fcntl(fd, F_SETFL, 0) == 0) {
            *out = fd;
            return MP_OK;
        }
        if (rc == MP_OK) rc = MP_ESYS;
        int e = errno;
        close(fd);
        errno = e;
        if (rc == MP_ETIMEDOUT) break;
    }
    return rc;
}

MPDEF int mp_client(const mp_client_desc *d, mp_conn **out) {
    mp__addrs as;
    int fd = -1;
    if (out) *out = NULL;
    if (!d || !out || !d->address || (!d->authkey && d->authkey_len) || d->timeout != d->timeout)
        return MP_EINVAL;
    int64_t deadline = mp__deadline(d->timeout ? d->timeout : MP__HANDSHAKE_TIMEOUT);
    if (mp__addr_parse(d->address, false, &as) != 0) return errno == EINVAL ? MP_EINVAL : MP_ESYS;
    int rc = mp__connect(&as, deadline, &fd);
    if (rc != MP_OK) return rc;
    return mp__sock_conn(fd, as.tcp, d->authkey, d->authkey_len, false, deadline, out);
}

// >>dict -------------------------------------------------------------------------
// A hash table in the shared heap under one robust lock word. Keys and values live
// together in immutable heap blocks; a table slot holds a block's offset (0 empty, 1
// deleted), so every change commits with one store: a set builds its block before it
// takes the lock and swaps it in, a delete stores 1. A process killed inside leaves the
// table consistent; the next holder recounts (the counts are not part of the commit)
// and frees a half-built table (recorded in pending before it is filled). The lock is
// held for a probe and a copy, never for an allocation of a value.

#define MP__DICT_MAGIC 0x64494354u
#define MP__LIST_MAGIC 0x6c495354u
#define MP__SERVED_MAGIC 0x73525644u
#define MP__KV_DELETED 1u

/* What a verb asks, in one struct, so that a served handle forwards any verb through
   one function and the server runs it on a local container with the same verbs. */
typedef struct mp__op {
    int code; /* MP__OP_*, the protocol's opcode (see >>manager) */
    const void *key, *val;
    size_t klen, vlen;
    long index;
    void *buf;
    size_t cap, *len; /* get/pop into buf */
    void **alloc;     /* get_alloc */
    size_t *n;        /* len */
    int (*dict_fn)(const void *k, size_t kl, const void *v, size_t vl, void *arg);
    int (*list_fn)(const void *v, size_t vl, void *arg);
    void *arg;
} mp__op;

enum {
    MP__OP_OPEN = 1, MP__OP_DICT_SET, MP__OP_DICT_GET, MP__OP_DICT_DEL, MP__OP_DICT_LEN,
    MP__OP_DICT_ITEMS, MP__OP_LIST_APPEND, MP__OP_LIST_GET, MP__OP_LIST_SET,
    MP__OP_LIST_POP, MP__OP_LIST_LEN, MP__OP_LIST_ITEMS, MP__OP_VALUE_READ,
    MP__OP_VALUE_WRITE, MP__OP_SHUTDOWN, MP__OP_COUNT
};

/* A served handle begins so (see >>manager): the verbs hand it the op. */
typedef struct mp__served {
    uint32_t magic; /* MP__SERVED_MAGIC */
    uint32_t kind;  /* MP__DICT_MAGIC, MP__LIST_MAGIC, MP__VALUE_MAGIC */
    int (*call)(struct mp__served *s, mp__op *op);
} mp__served;

struct mp_dict {
    uint32_t magic;
    uint32_t lock;
    uint64_t table;   /* offset of the mp__dtab, 0 until the first set */
    uint64_t pending; /* a table being built under the lock, 0 otherwise */
    uint64_t count;   /* live entries */
};

typedef struct mp__dent {
    uint64_t hash;
    uint64_t kv; /* offset of the mp__kv block; 0 empty, 1 deleted */
} mp__dent;

typedef struct mp__dtab {
    uint64_t cap;  /* a power of two */
    uint64_t used; /* slots not empty: grows (or cleans) the table at 3/4 */
    mp__dent e[1];
} mp__dtab;

typedef struct mp__kv {
    uint64_t klen, vlen; /* then the key's bytes, then the value's */
} mp__kv;

static void *mp__at(uint64_t off) { return (char *)mp__g.heap + off; }
static uint64_t mp__off(const void *p) { return (uint64_t)((const char *)p - (char *)mp__g.heap); }
static const char *mp__kv_key(const mp__kv *kv) { return (const char *)(kv + 1); }
static const char *mp__kv_val(const mp__kv *kv) { return mp__kv_key(kv) + kv->klen; }

/* A heap block holding a (key, value) pair; key may be NULL with klen 0 (a list item).
   NULL + errno ENOMEM. */
static mp__kv *mp__kv_new(const void *key, size_t klen, const void *val, size_t vlen) {
    if (klen > SIZE_MAX / 2 - sizeof(mp__kv) || vlen > SIZE_MAX / 2) {
        errno = ENOMEM;
        return NULL;
    }
    mp__kv *kv = (mp__kv *)mp_alloc(sizeof *kv + klen + vlen);
    if (!kv) return NULL;
    kv->klen = klen, kv->vlen = vlen;
    if (klen) memcpy(kv + 1, key, klen);
    if (vlen) memcpy((char *)(kv + 1) + klen, val, vlen);
    return kv;
}

/* The copy-out rule of get and pop: into buf when it fits (buf NULL: nothing copied,
   as pop's discard), MP_ETOOBIG with *len otherwise, or into a fresh MP_MALLOC block. */
static int mp__copy_out(const void *src, size_t n, mp__op *op) {
    if (op->len) *op->len = n;
    if (op->alloc) {
        if (!(*op->alloc = MP_MALLOC(n ? n : 1))) return MP_ENOMEM;
        if (n) memcpy(*op->alloc, src, n);
        return MP_OK;
    }
    if (!op->buf) return MP_OK;
    if (n > op->cap) return MP_ETOOBIG;
    if (n) memcpy(op->buf, src, n);
    return MP_OK;
}

/* A block recorded in *pending by a holder that died before installing it is freed;
   one it installed is left (installed is what the container now points to). */
static void mp__pending_repair(uint64_t *pending, uint64_t installed) {
    if (*pending && *pending != installed) mp_free(mp__at(*pending));
    *pending = 0;
}

static mp__dtab *mp__dtab_of(mp_dict *d) { return d->table ? (mp__dtab *)mp__at(d->table) : NULL; }

static void mp__dict_lock(mp_dict *d) {
    if (mp__lw_acquire(&d->lock, MP__NEVER) != MP_EOWNERDEAD) return;
    mp__pending_repair(&d->pending, d->table);
    mp__dtab *t = mp__dtab_of(d);
    uint64_t used = 0, live = 0;
    for (uint64_t i = 0; t && i < t->cap; i++) {
        used += t->e[i].kv != 0;
        live += t->e[i].kv > MP__KV_DELETED;
    }
    if (t) t->used = used;
    d->count = live;
}

/* As mp__names_find: the slot holding the key, else the slot an insert takes. */
static mp__dent *mp__dict_find(mp__dtab *t, uint64_t hash, const void *key, size_t klen,
                               bool *found) {
    mp__dent *free_slot = NULL;
    for (uint64_t i = hash & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        mp__dent *e = &t->e[i];
        uint64_t o = mp__load(&e->kv);
        if (o == 0) {
            *found = false;
            return free_slot ? free_slot : e;
        }
        if (o == MP__KV_DELETED) {
            if (!free_slot) free_slot = e;
            continue;
        }
        const mp__kv *kv = (const mp__kv *)mp__at(o);
        if (e->hash == hash && kv->klen == klen && memcmp(mp__kv_key(kv), key, klen) == 0) {
            *found = true;
            return e;
        }
    }
}

/* A table with room for one more entry: the current one, or a rebuilt one (twice the
   size when half full of live entries, else the same size without deleted slots)
   installed by one store. NULL (ENOMEM). Holding the lock. */
static mp__dtab *mp__dict_room(mp_dict *d) {
    mp__dtab *t = mp__dtab_of(d), *n;
    if (t && (t->used + 1) * 4 <= t->cap * 3) return t;
    uint64_t cap = !t ? 8 : (d->count + 1) * 2 > t->cap ? t->cap * 2 : t->cap;
    if (cap > (SIZE_MAX - sizeof *n) / sizeof(mp__dent) / 2) return NULL;
    if (!(n = (mp__dtab *)mp_calloc(1, sizeof *n + (cap - 1) * sizeof(mp__dent)))) return NULL;
    mp__store(&d->pending, mp__off(n));
    n->cap = cap;
    for (uint64_t i = 0; t && i < t->cap; i++) {
        if (t->e[i].kv <= MP__KV_DELETED) continue;
        bool found;
        const mp__kv *kv = (const mp__kv *)mp__at(t->e[i].kv);
        *mp__dict_find(n, t->e[i].hash, mp__kv_key(kv), kv->klen, &found) = t->e[i];
        n->used++;
    }
    mp__store(&d->table, mp__off(n)); /* the commit */
    mp__store(&d->pending, (uint64_t)0);
    mp_free(t);
    return n;
}

static bool mp__dict_ok(const mp_dict *d) { return d && d->magic == MP__DICT_MAGIC; }
static bool mp__served_is(const void *h, uint32_t kind) {
    const mp__served *s = (const mp__served *)h;
    return s && s->magic == MP__SERVED_MAGIC && s->kind == kind;
}

MPDEF mp_dict *mp_dict_create(void) {
    mp_dict *d = (mp_dict *)mp_calloc(1, sizeof *d);
    if (d) d->magic = MP__DICT_MAGIC;
    return d;
}

static int mp__dict_set(mp_dict *d, mp__op *op) {
    uint64_t hash = mp__fnv(op->key, op->klen), old = 0;
    mp__kv *kv = mp__kv_new(op->key, op->klen, op->val, op->vlen);
    if (!kv) return MP_ENOMEM;
    mp__dict_lock(d);
    mp__dtab *t = mp__dict_room(d);
    if (t) {
        bool found;
        mp__dent *e = mp__dict_find(t, hash, op->key, op->klen, &found);
        if (found) {
            old = e->kv;
        } else {
            e->hash = hash;
            t->used += e->kv == 0;
        }
        mp__store(&e->kv, mp__off(kv)); /* the commit */
        d->count += !found;
    }
    mp__lw_release(&d->lock);
    if (!t) mp_free(kv);
    if (old) mp_free(mp__at(old));
    return t ? MP_OK : MP_ENOMEM;
}

/* get, get_alloc and del: one probe under the lock. */
static int mp__dict_take(mp_dict *d, mp__op *op) {
    uint64_t hash = mp__fnv(op->key, op->klen), old = 0;
    mp__dict_lock(d);
    mp__dtab *t = mp__dtab_of(d);
    bool found = false;
    mp__dent *e = t ? mp__dict_find(t, hash, op->key, op->klen, &found) : NULL;
    int rc = found ? MP_OK : MP_ENOTFOUND;
    if (found && op->code == MP__OP_DICT_DEL) {
        old = e->kv;
        mp__store(&e->kv, (uint64_t)MP__KV_DELETED); /* the commit */
        d->count--;
    } else if (found) {
        const mp__kv *kv = (const mp__kv *)mp__at(e->kv);
        rc = mp__copy_out(mp__kv_val(kv), kv->vlen, op);
    }
    mp__lw_release(&d->lock);
    if (old) mp_free(mp__at(old));
    return rc;
}

/* A snapshot of the live blocks, copied under the lock into one MP_MALLOC buffer that
   holds them back to back (each an mp__kv then its bytes, 16-byte aligned); the
   callback runs after the lock is released. */
static int mp__dict_items(mp_dict *d, mp__op *op) {
    mp__dict_lock(d);
    mp__dtab *t = mp__dtab_of(d);
    size_t total = 0;
    for (uint64_t i = 0; t && i < t->cap; i++) {
        const mp__kv *kv = (const mp__kv *)mp__at(t->e[i].kv);
        if (t->e[i].kv > MP__KV_DELETED) total += (sizeof *kv + kv->klen + kv->vlen + 15) & ~(size_t)15;
    }
    char *snap = (char *)MP_MALLOC(total ? total : 1), *p = snap;
    for (uint64_t i = 0; snap && t && i < t->cap; i++) {
        const mp__kv *kv = (const mp__kv *)mp__at(t->e[i].kv);
        if (t->e[i].kv <= MP__KV_DELETED) continue;
        memcpy(p, kv, sizeof *kv + kv->klen + kv->vlen);
        p += (sizeof *kv + kv->klen + kv->vlen + 15) & ~(size_t)15;
    }
    mp__lw_release(&d->lock);
    if (!snap) return MP_ENOMEM;
    for (char *q = snap; q < p;) {
        const mp__kv *kv = (const mp__kv *)(void *)q;
        if (op->dict_fn(mp__kv_key(kv), kv->klen, mp__kv_val(kv), kv->vlen, op->arg)) break;
        q += (sizeof *kv + kv->klen + kv->vlen + 15) & ~(size_t)15;
    }
    MP_FREE(snap);
    return MP_OK;
}

/* Every dict verb: check, then run locally or hand the op to the server. */
static int mp__dict_run(mp_dict *d, mp__op *op) {
    if (mp__served_is(d, MP__DICT_MAGIC)) return ((mp__served *)(void *)d)->call((mp__served *)(void *)d, op);
    if (!mp__dict_ok(d)) return MP_EINVAL;
    switch (op->code) {
    case MP__OP_DICT_SET: return mp__dict_set(d, op);
    case MP__OP_DICT_ITEMS: return mp__dict_items(d, op);
    case MP__OP_DICT_LEN:
        mp__dict_lock(d);
        *op->n = d->count;
        mp__lw_release(&d->lock);
        return MP_OK;
    default: return mp__dict_take(d, op);
    }
}

static void mp__op_init(mp__op *op, int code) {
    memset(op, 0, sizeof *op);
    op->code = code;
}

/* The key of every verb: klen 0 is a valid (empty) key, but a NULL key with klen > 0 is
   not. */
static bool mp__bytes_ok(const void *p, size_t n) { return p || n == 0; }

MPDEF int mp_dict_set(mp_dict *d, const void *key, size_t klen, const void *val, size_t vlen) {
    mp__op op;
    mp__op_init(&op, MP__OP_DICT_SET);
    if (!mp__bytes_ok(key, klen) || !mp__bytes_ok(val, vlen)) return MP_EINVAL;
    op.key = key, op.klen = klen, op.val = val, op.vlen = vlen;
    return mp__dict_run(d, &op);
}

MPDEF int mp_dict_get(mp_dict *d, const void *key, size_t klen, void *buf, size_t cap, size_t *len) {
    mp__op op;
    mp__op_init(&op, MP__OP_DICT_GET);
    if (!mp__bytes_ok(key, klen) || !mp__bytes_ok(buf, cap) || !len) return MP_EINVAL;
    op.key = key, op.klen = klen, op.buf = buf ? buf : (void *)&op, op.cap = cap, op.len = len;
    return mp__dict_run(d, &op);
}

MPDEF int mp_dict_get_alloc(mp_dict *d, const void *key, size_t klen, void **buf, size_t *len) {
    mp__op op;
    mp__op_init(&op, MP__OP_DICT_GET);
    if (!mp__bytes_ok(key, klen) || !buf || !len) return MP_EINVAL;
    *buf = NULL;
    op.key = key, op.klen = klen, op.alloc = buf, op.len = len;
    return mp__dict_run(d, &op);
}

MPDEF int mp_dict_del(mp_dict *d, const void *key, size_t klen) {
    mp__op op;
    mp__op_init(&op, MP__OP_DICT_DEL);
    if (!mp__bytes_ok(key, klen)) return MP_EINVAL;
    op.key = key, op.klen = klen;
    return mp__dict_run(d, &op);
}

MPDEF int mp_dict_len(mp_dict *d, size_t *n) {
    mp__op op;
    mp__op_init(&op, MP__OP_DICT_LEN);
    if (!n) return MP_EINVAL;
    op.n = n;
    return mp__dict_run(d, &op);
}

MPDEF int mp_dict_items(mp_dict *d, int (*fn)(const void *k, size_t kl, const void *v,
                                              size_t vl, void *arg), void *arg) {
    mp__op op;
    mp__op_init(&op, MP__OP_DICT_ITEMS);
    if (!fn) return MP_EINVAL;
    op.dict_fn = fn, op.arg = arg;
    return mp__dict_run(d, &op);
}

/* A served handle's destroy drops the handle only (see >>manager). */
static void mp__served_drop(void *h) {
    ((mp__served *)h)->magic = 0;
    MP_FREE(h);
}

MPDEF void mp_dict_destroy(mp_dict *d) {
    if (mp__served_is(d, MP__DICT_MAGIC)) {
        mp__served_drop(d);
        return;
    }
    if (!mp__dict_ok(d)) return;
    mp__dict_lock(d);
    mp__dtab *t = mp__dtab_of(d);
    for (uint64_t i = 0; t && i < t->cap; i++)
        if (t->e[i].kv > MP__KV_DELETED) mp_free(mp__at(t->e[i].kv));
    mp_free(t);
    d->magic = 0;
    mp__lw_release(&d->lock);
    mp_free(d);
}

// >>list -------------------------------------------------------------------------
// An array of item offsets in one heap block that also holds the length, so that an
// append (store the slot, then the length), a set (store the slot) and a pop of the
// last item (store the length) each commit with one store. Growing and a pop from the
// middle build a new array (recorded in pending) and install it with one store of its
// offset: a process killed inside leaves the old array or the new, never a mix.

struct mp_list {
    uint32_t magic;
    uint32_t lock;
    uint64_t arr;     /* offset of the mp__larr, 0 until the first append */
    uint64_t pending; /* an array being built under the lock, 0 otherwise */
};

typedef struct mp__larr {
    uint64_t cap, len;
    uint64_t item[1]; /* offsets of mp__kv blocks with klen 0 */
} mp__larr;

static mp__larr *mp__larr_of(mp_list *l) { return l->arr ? (mp__larr *)mp__at(l->arr) : NULL; }

static void mp__list_lock(mp_list *l) {
    if (mp__lw_acquire(&l->lock, MP__NEVER) == MP_EOWNERDEAD) mp__pending_repair(&l->pending, l->arr);
}

/* A copy of a with capacity cap, without item skip (-1: none), installed by one
   store. NULL (ENOMEM). Holding the lock. */
static mp__larr *mp__larr_rebuild(mp_list *l, mp__larr *a, uint64_t cap, int64_t skip) {
    if (cap > (SIZE_MAX - sizeof *a) / sizeof(uint64_t) / 2) return NULL;
    mp__larr *n = (mp__larr *)mp_alloc(sizeof *n + (cap - 1) * sizeof(uint64_t));
    if (!n) return NULL;
    mp__store(&l->pending, mp__off(n));
    n->cap = cap, n->len = 0;
    for (uint64_t i = 0; a && i < a->len; i++)
        if ((int64_t)i != skip) n->item[n->len++] = a->item[i];
    mp__store(&l->arr, mp__off(n)); /* the commit */
    mp__store(&l->pending, (uint64_t)0);
    mp_free(a);
    return n;
}

/* index as Python takes it (negative: from the end), or -1 when out of range. */
static int64_t mp__list_index(mp__larr *a, long index) {
    int64_t n = a ? (int64_t)a->len : 0, i = index < 0 ? (int64_t)index + n : (int64_t)index;
    return i >= 0 && i < n ? i : -1;
}

static int mp__list_append(mp_list *l, mp__op *op) {
    mp__kv *kv = mp__kv_new(NULL, 0, op->val, op->vlen);
    if (!kv) return MP_ENOMEM;
    mp__list_lock(l);
    mp__larr *a = mp__larr_of(l);
    if (!a || a->len == a->cap) a = mp__larr_rebuild(l, a, a ? a->cap * 2 : 8, -1);
    if (a) {
        a->item[a->len] = mp__off(kv);
        mp__store(&a->len, a->len + 1); /* the commit */
    }
    mp__lw_release(&l->lock);
    if (!a) mp_free(kv);
    return a ? MP_OK : MP_ENOMEM;
}

static int mp__list_set(mp_list *l, mp__op *op) {
    mp__kv *kv = mp__kv_new(NULL, 0, op->val, op->vlen);
    if (!kv) return MP_ENOMEM;
    mp__list_lock(l);
    mp__larr *a = mp__larr_of(l);
    int64_t i = mp__list_index(a, op->index);
    uint64_t old = i < 0 ? mp__off(kv) : a->item[i];
    if (i >= 0) mp__store(&a->item[i], mp__off(kv)); /* the commit */
    mp__lw_release(&l->lock);
    mp_free(mp__at(old));
    return i < 0 ? MP_ENOTFOUND : MP_OK;
}

/* get and pop: copy the item out, and for pop remove it (by the length for the last
   item, else by a rebuilt array). A pop whose copy fails (MP_ETOOBIG) removes nothing. */
static int mp__list_take(mp_list *l, mp__op *op) {
    mp__list_lock(l);
    mp__larr *a = mp__larr_of(l);
    int64_t i = mp__list_index(a, op->index);
    uint64_t old = 0;
    int rc = MP_ENOTFOUND;
    if (i >= 0) {
        const mp__kv *kv = (const mp__kv *)mp__at(a->item[i]);
        rc = mp__copy_out(mp__kv_val(kv), kv->vlen, op);
    }
    if (rc == MP_OK && op->code == MP__OP_LIST_POP) {
        old = a->item[i];
        if ((uint64_t)i + 1 == a->len) mp__store(&a->len, a->len - 1); /* the commit */
        else if (!mp__larr_rebuild(l, a, a->cap, i)) old = 0, rc = MP_ENOMEM;
    }
    mp__lw_release(&l->lock);
    if (rc == MP_ENOMEM && op->alloc) MP_FREE(*op->alloc), *op->alloc = NULL;
    if (old) mp_free(mp__at(old));
    return rc;
}

static int mp__list_items(mp_list *l, mp__op *op) {
    mp__list_lock(l);
    mp__larr *a = mp__larr_of(l);
    size_t total = 0, n = a ? a->len : 0;
    for (size_t i = 0; i < n; i++) {
        const mp__kv *kv = (const mp__kv *)mp__at(a->item[i]);
        total += (sizeof *kv + kv->vlen + 15) & ~(size_t)15;
    }
    char *snap = (char *)MP_MALLOC(total ? total : 1), *p = snap;
    for (size_t i = 0; snap && i < n; i++) {
        const mp__kv *kv = (const mp__kv *)mp__at(a->item[i]);
        memcpy(p, kv, sizeof *kv + kv->vlen);
        p += (sizeof *kv + kv->vlen + 15) & ~(size_t)15;
    }
    mp__lw_release(&l->lock);
    if (!snap) return MP_ENOMEM;
    for (char *q = snap; q < p;) {
        const mp__kv *kv = (const mp__kv *)(void *)q;
        if (op->list_fn(mp__kv_val(kv), kv->vlen, op->arg)) break;
        q += (sizeof *kv + kv->vlen + 15) & ~(size_t)15;
    }
    MP_FREE(snap);
    return MP_OK;
}

static bool mp__list_ok(const mp_list *l) { return l && l->magic == MP__LIST_MAGIC; }

static int mp__list_run(mp_list *l, mp__op *op) {
    if (mp__served_is(l, MP__LIST_MAGIC)) return ((mp__served *)(void *)l)->call((mp__served *)(void *)l, op);
    if (!mp__list_ok(l)) return MP_EINVAL;
    switch (op->code) {
    case MP__OP_LIST_APPEND: return mp__list_append(l, op);
    case MP__OP_LIST_SET: return mp__list_set(l, op);
    case MP__OP_LIST_ITEMS: return mp__list_items(l, op);
    case MP__OP_LIST_LEN: {
        mp__list_lock(l);
        mp__larr *a = mp__larr_of(l);
        *op->n = a ? a->len : 0;
        mp__lw_release(&l->lock);
        return MP_OK;
    }
    default: return mp__list_take(l, op);
    }
}

MPDEF mp_list *mp_list_create(void) {
    mp_list *l = (mp_list *)mp_calloc(1, sizeof *l);
    if (l) l->magic = MP__LIST_MAGIC;
    return l;
}

MPDEF int mp_list_append(mp_list *l, const void *val, size_t len) {
    mp__op op;
    mp__op_init(&op, MP__OP_LIST_APPEND);
    if (!mp__bytes_ok(val, len)) return MP_EINVAL;
    op.val = val, op.vlen = len;
    return mp__list_run(l, &op);
}

MPDEF int mp_list_get(mp_list *l, long index, void *buf, size_t cap, size_t *len) {
    mp__op op;
    mp__op_init(&op, MP__OP_LIST_GET);
    if (!mp__bytes_ok(buf, cap) || !len) return MP_EINVAL;
    op.index = index, op.buf = buf ? buf : (void *)&op, op.cap = cap, op.len = len;
    return mp__list_run(l, &op);
}

MPDEF int mp_list_get_alloc(mp_list *l, long index, void **buf, size_t *len) {
    mp__op op;
    mp__op_init(&op, MP__OP_LIST_GET);
    if (!buf || !len) return MP_EINVAL;
    *buf = NULL;
    op.index = index, op.alloc = buf, op.len = len;
    return mp__list_run(l, &op);
}

MPDEF int mp_list_set(mp_list *l, long index, const void *val, size_t len) {
    mp__op op;
    mp__op_init(&op, MP__OP_LIST_SET);
    if (!mp__bytes_ok(val, len)) return MP_EINVAL;
    op.index = index, op.val = val, op.vlen = len;
    return mp__list_run(l, &op);
}

MPDEF int mp_list_pop(mp_list *l, long index, void *buf, size_t cap, size_t *len) {
    mp__op op;
    mp__op_init(&op, MP__OP_LIST_POP);
    if (!mp__bytes_ok(buf, cap)) return MP_EINVAL;
    op.index = index, op.buf = buf, op.cap = cap, op.len = len;
    return mp__list_run(l, &op);
}

MPDEF int mp_list_len(mp_list *l, size_t *n) {
    mp__op op;
    mp__op_init(&op, MP__OP_LIST_LEN);
    if (!n) return MP_EINVAL;
    op.n = n;
    return mp__list_run(l, &op);
}

MPDEF int mp_list_items(mp_list *l, int (*fn)(const void *v, size_t len, void *arg), void *arg) {
    mp__op op;
    mp__op_init(&op, MP__OP_LIST_ITEMS);
    if (!fn) return MP_EINVAL;
    op.list_fn = fn, op.arg = arg;
    return mp__list_run(l, &op);
}

MPDEF void mp_list_destroy(mp_list *l) {
    if (mp__served_is(l, MP__LIST_MAGIC)) {
        mp__served_drop(l);
        return;
    }
    if (!mp__list_ok(l)) return;
    mp__list_lock(l);
    mp__larr *a = mp__larr_of(l);
    for (uint64_t i = 0; a && i < a->len; i++) mp_free(mp__at(a->item[i]));
    mp_free(a);
    l->magic = 0;
    mp__lw_release(&l->lock);
    mp_free(l);
}

// >>manager ----------------------------------------------------------------------
// The server is a forked daemon process: a listener (>>listener) and one thread per
// client connection, so no client waits behind another's round trip. It keeps its
// objects in local containers (>>dict, >>list) and a table of names; each request is
// one conn message, decoded into the same mp__op a local verb runs. The client side is
// a pool of connections per manager handle: a call takes an idle one (or connects
// anew), so threads do not queue behind each other; a forked child sees another pid and
// starts its own pool. The handler works on a buffer (mp__msrv_handle), so the fuzz
// target calls it directly.

#define MP__VALUE_MAGIC 0x76414c55u
#define MP__MGR_MAGIC 0x6d4d4752u
#define MP__MGR_INLINE 4096 /* answers up to this size need no allocation on either side */
#define MP__MGR_TIMEOUT 10.0

enum { MP__KIND_DICT = 1, MP__KIND_LIST = 2, MP__KIND_VALUE = 3 };

static void mp__wr32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (24 - 8 * i));
}
static void mp__wr64(unsigned char *p, uint64_t v) {
    mp__wr32(p, (uint32_t)(v >> 32));
    mp__wr32(p + 4, (uint32_t)v);
}
static uint64_t mp__be64(const unsigned char *p) { return (uint64_t)mp__be32(p) << 32 | mp__be32(p + 4); }

/* A growable byte buffer in process memory: requests and answers are built in one. */
typedef struct mp__buf {
    unsigned char *p;
    size_t n, cap;
    unsigned char inl[MP__MGR_INLINE];
} mp__buf;

static void mp__buf_init(mp__buf *b) {
    b->p = b->inl, b->n = 0, b->cap = sizeof b->inl;
}

static void mp__buf_free(mp__buf *b) {
    if (b->p != b->inl) MP_FREE(b->p);
    mp__buf_init(b);
}

/* Room for more bytes after n; false (ENOMEM) if there is none. */
static bool mp__buf_room(mp__buf *b, size_t more) {
    if (more <= b->cap - b->n) return true;
    if (more > SIZE_MAX / 2 - b->n) return false;
    size_t cap = b->cap * 2 > b->n + more ? b->cap * 2 : b->n + more;
    unsigned char *p = (unsigned char *)MP_MALLOC(cap);
    if (!p) return false;
    memcpy(p, b->p, b->n);
    if (b->p != b->inl) MP_FREE(b->p);
    b->p = p, b->cap = cap;
    return true;
}

static bool mp__buf_put(mp__buf *b, const void *src, size_t n) {
    if (!mp__buf_room(b, n)) return false;
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
    return true;
}

static bool mp__buf_put64(mp__buf *b, uint64_t v) {
    unsigned char x[8];
    mp__wr64(x, v);
    return mp__buf_put(b, x, 8);
}

/* ---- the server ---- */

typedef struct mp__mval { /* a Value/Array block, in the server's heap */
    uint32_t lock;
    uint32_t pad_;
    uint64_t size; /* then the bytes */
} mp__mval;

static unsigned char *mp__mval_data(mp__mval *v) { return (unsigned char *)(v + 1); }

typedef struct mp__mobj {
    uint32_t kind;
    uint64_t size; /* a value's */
    void *obj;     /* mp_dict, mp_list, mp__mval */
} mp__mobj;

typedef struct mp__msrv {
    pthread_mutex_t mu; /* the table and the names */
    mp__mobj *obj;
    uint32_t nobj, cap;
    mp_dict *names; /* kind byte + name -> the object's index */
    int stop_w;     /* a SHUTDOWN request writes here; -1 in a fuzz run */
} mp__msrv;

static int mp__msrv_lookup(mp__msrv *s, uint32_t id, uint32_t kind, mp__mobj *out) {
    pthread_mutex_lock(&s->mu);
    bool ok = id < s->nobj && s->obj[id].kind == kind;
    if (ok) *out = s->obj[id];
    pthread_mutex_unlock(&s->mu);
    return ok ? MP_OK : MP_EINVAL;
}

static void *mp__mobj_new(uint32_t kind, uint64_t size) {
    if (kind == MP__KIND_DICT) return mp_dict_create();
    if (kind == MP__KIND_LIST) return mp_list_create();
    if (size == 0 || size > SIZE_MAX - sizeof(mp__mval)) return NULL;
    mp__mval *v = (mp__mval *)mp_calloc(1, sizeof *v + size);
    if (v) v->size = size;
    return v;
}

static void mp__mobj_free(mp__mobj *o) {
    if (o->kind == MP__KIND_DICT) mp_dict_destroy((mp_dict *)o->obj);
    else if (o->kind == MP__KIND_LIST) mp_list_destroy((mp_list *)o->obj);
    else mp_free(o->obj);
}

/* The index of the object kind/name, made if absent. Holding s->mu. */
static int mp__msrv_open_locked(mp__msrv *s, const unsigned char *key, size_t klen,
                                uint64_t size, uint32_t *id) {
    size_t len;
    int rc = mp_dict_get(s->names, key, klen, id, sizeof *id, &len);
    if (rc == MP_OK) return s->obj[*id].size == size ? MP_OK : MP_EINVAL;
    if (rc != MP_ENOTFOUND) return rc;
    if (s->nobj == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        mp__mobj *t = (mp__mobj *)MP_MALLOC(cap * sizeof *t);
        if (!t || cap < s->cap) return MP_FREE(t), MP_ENOMEM;
        if (s->nobj) memcpy(t, s->obj, s->nobj * sizeof *t);
        MP_FREE(s->obj);
        s->obj = t, s->cap = cap;
    }
    mp__mobj *o = &s->obj[s->nobj];
    if (!(o->obj = mp__mobj_new(key[0], size))) return MP_ENOMEM;
    o->kind = key[0], o->size = size;
    *id = s->nobj;
    if ((rc = mp_dict_set(s->names, key, klen, id, sizeof *id)) != MP_OK) {
        mp__mobj_free(o);
        return rc;
    }
    s->nobj++;
    return MP_OK;
}

/* OPEN: u8 kind, u64 size (a value's; 0 otherwise), the name. Answer: u32 id, u64 size. */
static int mp__msrv_open(mp__msrv *s, const unsigned char *b, size_t n, mp__buf *out) {
    if (n < 10 || n > 9 + MP__NAME_MAX || b[0] < MP__KIND_DICT || b[0] > MP__KIND_VALUE)
        return MP_EINVAL;
    uint64_t size = mp__be64(b + 1);
    if ((b[0] == MP__KIND_VALUE) != (size != 0)) return MP_EINVAL;
    unsigned char key[1 + MP__NAME_MAX];
    key[0] = b[0];
    memcpy(key + 1, b + 9, n - 9);
    uint32_t id = 0;
    pthread_mutex_lock(&s->mu);
    int rc = mp__msrv_open_locked(s, key, n - 8, size, &id);
    pthread_mutex_unlock(&s->mu);
    if (rc != MP_OK) return rc;
    unsigned char a[4];
    mp__wr32(a, id);
    return mp__buf_put(out, a, 4) && mp__buf_put64(out, size) ? MP_OK : MP_ENOMEM;
}

static int mp__mobj_run(mp__mobj *o, mp__op *op) {
    return o->kind == MP__KIND_DICT ? mp__dict_run((mp_dict *)o->obj, op)
                                    : mp__list_run((mp_list *)o->obj, op);
}

/* A verb whose answer is bytes (get, pop) into the answer, within the client's cap:
   run into the room there is, and again with room for the size found. */
static int mp__msrv_copy(mp__mobj *o, mp__op *op, uint64_t cap, mp__buf *out) {
    size_t len = 0;
    op->len = &len;
    for (;;) {
        op->buf = out->p + out->n;
        op->cap = out->cap - out->n < cap ? out->cap - out->n : (size_t)cap;
        int rc = mp__mobj_run(o, op);
        if (rc == MP_OK) return out->n += len, MP_OK;
        if (rc != MP_ETOOBIG) return rc;
        if (len > cap) return mp__buf_put64(out, len) ? MP_ETOOBIG : MP_ENOMEM;
        if (!mp__buf_room(out, len)) return MP_ENOMEM;
    }
}

static int mp__msrv_dict_item(const void *k, size_t kl, const void *v, size_t vl, void *arg) {
    mp__buf *b = (mp__buf *)arg;
    return !(mp__buf_put64(b, kl) && mp__buf_put(b, k, kl) && mp__buf_put64(b, vl) &&
             mp__buf_put(b, v, vl));
}

static int mp__msrv_list_item(const void *v, size_t vl, void *arg) {
    mp__buf *b = (mp__buf *)arg;
    return !(mp__buf_put64(b, vl) && mp__buf_put(b, v, vl));
}

/* The kind of object each opcode works on. */
static uint32_t mp__op_kind(int code) {
    if (code >= MP__OP_DICT_SET && code <= MP__OP_DICT_ITEMS) return MP__KIND_DICT;
    if (code >= MP__OP_LIST_APPEND && code <= MP__OP_LIST_ITEMS) return MP__KIND_LIST;
    return code == MP__OP_VALUE_READ || code == MP__OP_VALUE_WRITE ? MP__KIND_VALUE : 0;
}

/* VALUE_READ: u64 offset, u64 len. VALUE_WRITE: u64 offset, the bytes. */
static int mp__msrv_value(mp__mobj *o, int code, const unsigned char *b, size_t n, mp__buf *out) {
    mp__mval *v = (mp__mval *)o->obj;
    if (n < (code == MP__OP_VALUE_READ ? 16u : 8u)) return MP_EINVAL;
    uint64_t off = mp__be64(b), len = code == MP__OP_VALUE_READ ? mp__be64(b + 8) : n - 8;
    if (off > v->size || len > v->size - off) return MP_EINVAL;
    if (code == MP__OP_VALUE_READ && !mp__buf_room(out, (size_t)len)) return MP_ENOMEM;
    mp__lw_acquire(&v->lock, MP__NEVER); /* only the server's threads take it */
    if (code == MP__OP_VALUE_READ) memcpy(out->p + out->n, mp__mval_data(v) + off, (size_t)len);
    else memcpy(mp__mval_data(v) + off, b + 8, (size_t)len);
    mp__lw_release(&v->lock);
    if (code == MP__OP_VALUE_READ) out->n += (size_t)len;
    return MP_OK;
}

/* A container verb's fields into op (index, cap, key and value); *cap the client's
   limit for an answer of bytes. MP_EINVAL when they do not fit the request. */
static int mp__msrv_decode(const mp__mobj *o, mp__op *op, const unsigned char *b, size_t n,
                           uint64_t *cap) {
    int c = op->code;
    bool indexed = c == MP__OP_LIST_GET || c == MP__OP_LIST_SET || c == MP__OP_LIST_POP;
    bool capped = c == MP__OP_DICT_GET || c == MP__OP_LIST_GET || c == MP__OP_LIST_POP;
    if (n < (indexed ? 8u : 0u) + (capped ? 8u : 0u) + (c == MP__OP_DICT_SET ? 8u : 0u))
        return MP_EINVAL;
    if (indexed) op->index = (long)(int64_t)mp__be64(b), b += 8, n -= 8;
    if (capped) *cap = mp__be64(b), b += 8, n -= 8;
    if (c == MP__OP_DICT_SET) {
        uint64_t kl = mp__be64(b);
        if (kl > n - 8) return MP_EINVAL;
        op->key = b + 8, op->klen = (size_t)kl, op->val = b + 8 + kl, op->vlen = n - 8 - (size_t)kl;
    } else if (o->kind == MP__KIND_DICT) {
        op->key = b, op->klen = n;
    } else {
        op->val = b, op->vlen = n;
    }
    return MP_OK;
}

/* Decode a container verb and run it, its answer's payload into out. */
static int mp__msrv_verb(mp__mobj *o, mp__op *op, const unsigned char *b, size_t n,
                         mp__buf *out) {
    uint64_t cap = 0;
    size_t count = 0, at = out->n;
    int rc = mp__msrv_decode(o, op, b, n, &cap);
    if (rc != MP_OK) return rc;
    switch (op->code) {
    case MP__OP_DICT_GET: case MP__OP_LIST_GET: case MP__OP_LIST_POP:
        return mp__msrv_copy(o, op, cap, out);
    case MP__OP_DICT_LEN: case MP__OP_LIST_LEN:
        op->n = &count;
        rc = mp__mobj_run(o, op);
        return rc == MP_OK && !mp__buf_put64(out, count) ? MP_ENOMEM : rc;
    case MP__OP_DICT_ITEMS: op->dict_fn = mp__msrv_dict_item, op->arg = out; break;
    case MP__OP_LIST_ITEMS: op->list_fn = mp__msrv_list_item, op->arg = out; break;
    default: break;
    }
    if ((rc = mp__mobj_run(o, op)) != MP_OK) out->n = at;
    return rc;
}

/* Answer one request (see PROTOCOL in the doc block): out gets a 4-byte status, then
   the verb's payload. MP_ENOMEM when not even the status fits (the caller closes). */
static int mp__msrv_handle(mp__msrv *s, const unsigned char *rq, size_t n, mp__buf *out) {
    out->n = 0;
    if (!mp__buf_room(out, 4)) return MP_ENOMEM;
    out->n = 4;
    int rc = MP_EINVAL;
    int code = n >= 5 ? rq[0] : 0;
    mp__mobj o;
    if (code == MP__OP_OPEN) {
        rc = mp__msrv_open(s, rq + 5, n - 5, out);
    } else if (code == MP__OP_SHUTDOWN) {
        char c = 1;
        rc = s->stop_w >= 0 && write(s->stop_w, &c, 1) != 1 ? MP_ESYS : MP_OK;
    } else if (code > 0 && code < MP__OP_COUNT &&
               mp__msrv_lookup(s, mp__be32(rq + 1), mp__op_kind(code), &o) == MP_OK) {
        mp__op op;
        mp__op_init(&op, code);
        rc = o.kind == MP__KIND_VALUE ? mp__msrv_value(&o, code, rq + 5, n - 5, out)
                                      : mp__msrv_verb(&o, &op, rq + 5, n - 5, out);
    }
    if (rc != MP_OK && rc != MP_ETOOBIG) out->n = 4; /* ETOOBIG carries the size */
    mp__wr32(out->p, (uint32_t)rc);
    return MP_OK;
}

static int mp__msrv_init(mp__msrv *s, int stop_w) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->stop_w = stop_w;
    return (s->names = mp_dict_create()) ? MP_OK : MP_ENOMEM;
}

typedef struct mp__mclient {
    mp__msrv *s;
    mp_conn *c;
} mp__mclient;

/* One client's thread: requests in, answers out, until it goes. */
static void *mp__msrv_client(void *arg) {
    mp__mclient *cl = (mp__mclient *)arg;
    mp__buf out;
    mp__buf_init(&out);
    unsigned char small[512];
    for (;;) {
        void *rq = small;
        size_t n;
        int rc = mp_conn_recv(cl->c, small, sizeof small, &n, MP_FOREVER);
        if (rc == MP_ETOOBIG) rc = mp_conn_recv_alloc(cl->c, &rq, &n, MP_FOREVER);
        if (rc != MP_OK) break;
        rc = mp__msrv_handle(cl->s, (const unsigned char *)rq, n, &out);
        if (rq != small) MP_FREE(rq);
        if (rc != MP_OK || mp_conn_send(cl->c, out.p, out.n) != MP_OK) break;
        if (out.cap > 4 * MP__MGR_INLINE) mp__buf_free(&out); /* a big answer's buffer */
    }
    mp__buf_free(&out);
    mp_conn_close(cl->c);
    MP_FREE(cl);
    return NULL;
}

static void mp__msrv_spawn(mp__msrv *s, mp_conn *c) {
    mp__mclient *cl = (mp__mclient *)MP_MALLOC(sizeof *cl);
    pthread_attr_t at;
    pthread_t t;
    bool ok = cl && pthread_attr_init(&at) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, (size_t)256 << 10);
        cl->s = s, cl->c = c;
        ok = pthread_create(&t, &at, mp__msrv_client, cl) == 0;
        pthread_attr_destroy(&at);
    }
    if (!ok) MP_FREE(cl), mp_conn_close(c); /* out of threads: this client is dropped */
}

typedef struct mp__mstart {
    mp_listener_desc ld;
    mp_conn *report; /* the server sends its address (or "!" and an errno) here */
} mp__mstart;

static int mp__msrv_main(void *arg) {
    mp__mstart *st = (mp__mstart *)arg;
    mp__msrv s;
    int stop[2];
    mp_listener *l = NULL;
    if (pipe2(stop, O_CLOEXEC) != 0 || mp__msrv_init(&s, stop[1]) != MP_OK ||
        !(l = mp_listener_create(&st->ld))) {
        char e[16];
        int n = snprintf(e, sizeof e, "!%d", errno);
        mp_conn_send(st->report, e, (size_t)n);
        return 1;
    }
    const char *a = mp_listener_address(l);
    mp_conn_send(st->report, a, strlen(a));
    mp_conn_close(st->report);
    int fds[2] = {mp_listener_fileno(l), stop[0]};
    for (;;) {
        bool ready[2];
        if (mp_wait(fds, 2, ready, MP_FOREVER) < 0 || ready[1]) break;
        mp_conn *c;
        int rc = mp_listener_accept(l, &c, 0);
        if (rc == MP_OK) mp__msrv_spawn(&s, c);
        else if (rc == MP_ESYS) usleep(10000); /* out of fds: give the others time */
    }
    mp_listener_close(l);
    return 0; /* the process ends here, its client threads with it */
}

/* ---- the client ---- */

typedef struct mp__mconn {
    mp_conn *c;
    struct mp__mconn *next;
} mp__mconn;

struct mp_manager {
    uint32_t magic;
    pid_t pid;          /* the process the pool belongs to */
    pthread_mutex_t mu; /* the pool */
    mp__mconn *idle;
    mp_process *server; /* the starter's */
    pid_t starter;
    bool private_path;  /* started with address NULL: a socket file in a private dir */
    double timeout;
    unsigned char *key;
    size_t klen;
    char address[128];
};

typedef struct mp__mhandle {
    mp__served s;
    mp_manager *m;
    uint32_t id;
    uint64_t size;
} mp__mhandle;

/* A forked child drops its copy of the pool (its fds are copies: closing them leaves
   the parent's connections alone) and starts its own. */
static void mp__mgr_mine(mp_manager *m) {
    pid_t me = mp__g.pid ? mp__g.pid : getpid(); /* kept by the heap's atfork handler */
    if (mp__load(&m->pid) == me) return;
    pthread_mutex_lock(&mp__g.mu); /* re-initialized in a child, unlike m->mu */
    if (m->pid != me) {
        pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        m->mu = fresh;
        while (m->idle) {
            mp__mconn *x = m->idle;
            m->idle = x->next;
            mp_conn_close(x->c);
            MP_FREE(x);
        }
        mp__store(&m->pid, me);
    }
    pthread_mutex_unlock(&mp__g.mu);
}

/* mp_client's code for a call: a server gone (refused, its socket file removed) is
   MP_ECLOSED. */
static int mp__mgr_dial(mp_manager *m, mp_conn **c) {
    mp_client_desc d;
    memset(&d, 0, sizeof d);
    d.address = m->address, d.authkey = m->key, d.authkey_len = m->klen, d.timeout = m->timeout;
    int rc = mp_client(&d, c);
    if (rc == MP_ESYS && (errno == ENOENT || errno == ECONNREFUSED)) rc = MP_ECLOSED;
    if (rc != MP_OK) return rc;
    /* the per-call timeout, kept by the kernel: a call waits in one blocking recv */
    struct timeval tv;
    tv.tv_sec = (time_t)m->timeout;
    tv.tv_usec = (suseconds_t)((m->timeout - (double)tv.tv_sec) * 1e6);
    if (setsockopt(mp_conn_fileno(*c), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0) return MP_OK;
    mp_conn_close(*c);
    *c = NULL;
    return MP_ESYS;
}

static mp__mconn *mp__mgr_take(mp_manager *m, int *rc) {
    mp__mgr_mine(m);
    pthread_mutex_lock(&m->mu);
    mp__mconn *x = m->idle;
    if (x) m->idle = x->next;
    pthread_mutex_unlock(&m->mu);
    if (x) return x;
    if (!(x = (mp__mconn *)MP_MALLOC(sizeof *x))) {
        *rc = MP_ENOMEM;
        return NULL;
    }
    if ((*rc = mp__mgr_dial(m, &x->c)) != MP_OK) MP_FREE(x), x = NULL;
    return x;
}

static void mp__mgr_give(mp_manager *m, mp__mconn *x) {
    pthread_mutex_lock(&m->mu);
    x->next = m->idle;
    m->idle = x;
    pthread_mutex_unlock(&m->mu);
}

/* One round trip: the request in rq, the answer into ans (status checked: its code is
   returned, the payload left after the 4 bytes). A connection that failed is closed,
   so a late answer never meets the next request. */
static int mp__mgr_call(mp_manager *m, const mp__buf *rq, mp__buf *ans) {
    int rc;
    mp__mconn *x = mp__mgr_take(m, &rc);
    if (!x) return rc;
    size_t n = 0;
    rc = mp_conn_send(x->c, rq->p, rq->n);
    if (rc == MP_OK) rc = mp_conn_recv(x->c, ans->p, ans->cap, &n, MP_FOREVER); /* SO_RCVTIMEO */
    if (rc == MP_ETOOBIG && n != SIZE_MAX && mp__buf_room(ans, n))
        rc = mp_conn_recv(x->c, ans->p, ans->cap, &n, MP_FOREVER); /* the rest may be on its way */
    if (rc == MP_OK && n < 4) rc = MP_ESYS, errno = EPROTO;
    if (rc != MP_OK) {
        mp_conn_close(x->c);
        MP_FREE(x);
        return rc == MP_ETOOBIG ? MP_ENOMEM : rc;
    }
    mp__mgr_give(m, x);
    ans->n = n;
    return (int)(int32_t)mp__be32(ans->p);
}

static void mp__mreq(mp__buf *b, int code, uint32_t id) {
    mp__buf_init(b);
    b->p[0] = (unsigned char)code;
    mp__wr32(b->p + 1, id);
    b->n = 5;
}

/* Every verb on a served handle: encode op, one round trip, decode the answer. */
static int mp__mgr_items(mp__op *op, const unsigned char *p, size_t n) {
    bool dict = op->code == MP__OP_DICT_ITEMS;
    while (n) {
        const unsigned char *k = NULL;
        uint64_t kl = 0, vl;
        if (dict) {
            if (n < 8 || (kl = mp__be64(p)) > n - 8) return MP_ESYS;
            k = p + 8, p += 8 + kl, n -= 8 + (size_t)kl;
        }
        if (n < 8 || (vl = mp__be64(p)) > n - 8) return MP_ESYS;
        int stop = dict ? op->dict_fn(k, (size_t)kl, p + 8, (size_t)vl, op->arg)
                        : op->list_fn(p + 8, (size_t)vl, op->arg);
        if (stop) break;
        p += 8 + vl, n -= 8 + (size_t)vl;
    }
    return MP_OK;
}

static bool mp__mgr_encode(mp__mhandle *h, mp__op *op, mp__buf *rq) {
    mp__mreq(rq, op->code, h->id);
    bool ok = true, capped = op->code == MP__OP_DICT_GET || op->code == MP__OP_LIST_GET ||
                            op->code == MP__OP_LIST_POP;
    if (op->code == MP__OP_LIST_GET || op->code == MP__OP_LIST_SET || op->code == MP__OP_LIST_POP)
        ok = mp__buf_put64(rq, (uint64_t)(int64_t)op->index);
    if (capped) ok = ok && mp__buf_put64(rq, op->alloc || !op->buf ? UINT64_MAX : op->cap);
    if (op->code == MP__OP_DICT_SET) ok = ok && mp__buf_put64(rq, op->klen);
    ok = ok && mp__buf_put(rq, op->key, op->klen);
    return ok && mp__buf_put(rq, op->val, op->vlen);
}

static int mp__mgr_run(mp__served *s, mp__op *op) {
    mp__mhandle *h = (mp__mhandle *)(void *)s;
    mp__buf rq, ans;
    mp__buf_init(&ans);
    int rc = mp__mgr_encode(h, op, &rq) ? mp__mgr_call(h->m, &rq, &ans) : MP_ENOMEM;
    const unsigned char *p = ans.p + 4;
    size_t n = ans.n >= 4 ? ans.n - 4 : 0;
    if (rc == MP_ETOOBIG && op->len) *op->len = n >= 8 ? (size_t)mp__be64(p) : 0;
    if (rc == MP_OK) {
        switch (op->code) {
        case MP__OP_DICT_GET: case MP__OP_LIST_GET: case MP__OP_LIST_POP:
            rc = mp__copy_out(p, n, op);
            break;
        case MP__OP_DICT_LEN: case MP__OP_LIST_LEN:
            if (n != 8) rc = MP_ESYS, errno = EPROTO;
            else *op->n = (size_t)mp__be64(p);
            break;
        case MP__OP_DICT_ITEMS: case MP__OP_LIST_ITEMS:
            if ((rc = mp__mgr_items(op, p, n)) != MP_OK) errno = EPROTO;
            break;
        default: break;
        }
    }
    mp__buf_free(&rq);
    mp__buf_free(&ans);
    return rc;
}

static mp_manager *mp__mgr_new(const mp_manager_desc *d) {
    if (!d || (!d->authkey && d->authkey_len) || (d->address && strlen(d->address) >= 128)) {
        errno = EINVAL;
        return NULL;
    }
    mp_manager *m = (mp_manager *)MP_MALLOC(sizeof *m);
    unsigned char *key = (unsigned char *)MP_MALLOC(d->authkey_len ? d->authkey_len : 1);
    if (!m || !key) {
        MP_FREE(m), MP_FREE(key);
        errno = ENOMEM;
        return NULL;
    }
    memset(m, 0, sizeof *m);
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    m->mu = fresh;
    m->magic = MP__MGR_MAGIC;
    m->pid = getpid();
    m->timeout = d->timeout > 0 ? d->timeout : MP__MGR_TIMEOUT;
    m->key = d->authkey ? key : NULL;
    m->klen = d->authkey_len;
    if (d->authkey_len) memcpy(key, d->authkey, d->authkey_len);
    if (!m->key) MP_FREE(key);
    if (d->address) memcpy(m->address, d->address, strlen(d->address) + 1);
    return m;
}

static void mp__mgr_free(mp_manager *m) {
    mp__mgr_mine(m);
    while (m->idle) {
        mp__mconn *x = m->idle;
        m->idle = x->next;
        mp_conn_close(x->c);
        MP_FREE(x);
    }
    pthread_mutex_destroy(&m->mu);
    m->magic = 0;
    MP_FREE(m->key);
    MP_FREE(m);
}

/* errno for a call's code, for the constructors that return NULL. */
static void *mp__mgr_errno(int rc) {
    errno = rc == MP_EAUTH ? EACCES : rc == MP_ECLOSED ? ECONNREFUSED : rc == MP_ETIMEDOUT ? ETIMEDOUT
          : rc == MP_ENOMEM ? ENOMEM : rc == MP_ESYS ? errno : EINVAL;
    return NULL;
}

MPDEF mp_manager *mp_manager_connect(const mp_manager_desc *d) {
    if (d && !d->address) return (mp_manager *)mp__mgr_errno(MP_EINVAL);
    mp_manager *m = mp__mgr_new(d);
    if (!m) return NULL;
    int rc;
    mp__mconn *x = mp__mgr_take(m, &rc); /* the first connection proves the key */
    if (!x) {
        int e = errno;
        mp__mgr_free(m);
        if (rc == MP_ESYS) errno = e;
        return (mp_manager *)mp__mgr_errno(rc);
    }
    mp__mgr_give(m, x);
    return m;
}

/* Wait for the server's report: its address, or "!errno". */
static int mp__mgr_report(mp_manager *m, mp_conn *r) {
    size_t n;
    int rc = mp_conn_recv(r, m->address, sizeof m->address - 1, &n, m->timeout);
    if (rc != MP_OK) {
        errno = rc == MP_ETIMEDOUT ? ETIMEDOUT : ECHILD;
        return -1;
    }
    m->address[n] = 0;
    if (m->address[0] != '!') return 0;
    errno = atoi(m->address + 1);
    return -1;
}

MPDEF mp_manager *mp_manager_start(const mp_manager_desc *d) {
    mp_manager *m = mp__mgr_new(d);
    if (!m) return NULL;
    mp__mstart st;
    mp_conn *r = NULL;
    memset(&st, 0, sizeof st);
    st.ld.address = d->address, st.ld.authkey = d->authkey, st.ld.authkey_len = d->authkey_len;
    mp_process_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.target = mp__msrv_main, pd.arg = &st, pd.name = "SyncManager", pd.daemon = true;
    pd.start_method = MP_START_FORK; /* always: it takes the report pipe with it */
    int e = ENOMEM;
    if (mp_pipe(&r, &st.report, false) == MP_OK && (m->server = mp_process_create(&pd)) &&
        mp_process_start(m->server) == MP_OK) {
        mp_conn_close(st.report);
        st.report = NULL;
        if (mp__mgr_report(m, r) == 0) {
            mp_conn_close(r);
            m->starter = getpid();
            m->private_path = !d->address;
            return m;
        }
    }
    e = errno ? errno : e;
    mp_conn_close(r), mp_conn_close(st.report);
    if (m->server && mp_process_pid(m->server)) mp_process_kill(m->server), mp_process_join(m->server, MP_FOREVER);
    mp_process_destroy(m->server);
    mp__mgr_free(m);
    errno = e;
    return NULL;
}

MPDEF const char *mp_manager_address(const mp_manager *m) { return m ? m->address : NULL; }

static bool mp__mgr_ok(const mp_manager *m) { return m && m->magic == MP__MGR_MAGIC; }

static void *mp__mgr_open(mp_manager *m, const char *name, uint32_t kind, uint64_t size) {
    size_t nl = name ? strlen(name) : 0;
    if (!mp__mgr_ok(m) || nl == 0 || nl > MP__NAME_MAX) return mp__mgr_errno(MP_EINVAL);
    mp__mhandle *h = (mp__mhandle *)MP_MALLOC(sizeof *h);
    if (!h) return mp__mgr_errno(MP_ENOMEM);
    mp__buf rq, ans;
    mp__mreq(&rq, MP__OP_OPEN, 0);
    mp__buf_init(&ans);
    unsigned char k = (unsigned char)kind;
    mp__buf_put(&rq, &k, 1), mp__buf_put64(&rq, size), mp__buf_put(&rq, name, nl);
    int rc = mp__mgr_call(m, &rq, &ans);
    if (rc == MP_OK && ans.n != 16) rc = MP_ESYS, errno = EPROTO;
    if (rc != MP_OK) {
        int e = errno;
        MP_FREE(h);
        if (rc == MP_ESYS) errno = e;
        return mp__mgr_errno(rc);
    }
    h->s.magic = MP__SERVED_MAGIC;
    h->s.kind = kind == MP__KIND_DICT ? MP__DICT_MAGIC : kind == MP__KIND_LIST ? MP__LIST_MAGIC : MP__VALUE_MAGIC;
    h->s.call = mp__mgr_run;
    h->m = m, h->id = mp__be32(ans.p + 4), h->size = mp__be64(ans.p + 8);
    return h;
}

MPDEF mp_dict *mp_manager_dict(mp_manager *m, const char *name) {
    return (mp_dict *)mp__mgr_open(m, name, MP__KIND_DICT, 0);
}

MPDEF mp_list *mp_manager_list(mp_manager *m, const char *name) {
    return (mp_list *)mp__mgr_open(m, name, MP__KIND_LIST, 0);
}

MPDEF mp_value *mp_manager_value(mp_manager *m, const char *name, size_t size) {
    if (size == 0) return (mp_value *)mp__mgr_errno(MP_EINVAL);
    return (mp_value *)mp__mgr_open(m, name, MP__KIND_VALUE, size);
}

MPDEF size_t mp_value_size(const mp_value *v) {
    return mp__served_is(v, MP__VALUE_MAGIC) ? (size_t)((const mp__mhandle *)(const void *)v)->size : 0;
}

static int mp__value_io(mp_value *v, int code, size_t off, void *buf, size_t len) {
    mp__mhandle *h = (mp__mhandle *)(void *)v;
    if (!mp__served_is(v, MP__VALUE_MAGIC) || (!buf && len) || off > h->size || len > h->size - off)
        return MP_EINVAL;
    mp__buf rq, ans;
    mp__mreq(&rq, code, h->id);
    mp__buf_init(&ans);
    bool ok = mp__buf_put64(&rq, off) &&
              (code == MP__OP_VALUE_READ ? mp__buf_put64(&rq, len) : mp__buf_put(&rq, buf, len));
    int rc = ok ? mp__mgr_call(h->m, &rq, &ans) : MP_ENOMEM;
    if (rc == MP_OK && code == MP__OP_VALUE_READ) {
        if (ans.n - 4 != len) rc = MP_ESYS, errno = EPROTO;
        else if (len) memcpy(buf, ans.p + 4, len);
    }
    mp__buf_free(&rq);
    mp__buf_free(&ans);
    return rc;
}

MPDEF int mp_value_read(mp_value *v, size_t offset, void *buf, size_t len) {
    return mp__value_io(v, MP__OP_VALUE_READ, offset, buf, len);
}

MPDEF int mp_value_write(mp_value *v, size_t offset, const void *buf, size_t len) {
    return mp__value_io(v, MP__OP_VALUE_WRITE, offset, (void *)(uintptr_t)buf, len);
}

MPDEF void mp_value_destroy(mp_value *v) {
    if (mp__served_is(v, MP__VALUE_MAGIC)) mp__served_drop(v);
}

/* A server that was killed left its private socket file and directory: the starter
   removes them once it has joined it (after a clean exit they are gone already). */
static void mp__mgr_sweep(mp_manager *m) {
    char *slash = strrchr(m->address, '/');
    if (!m->private_path || !slash || slash == m->address) return;
    unlink(m->address);
    *slash = 0;
    rmdir(m->address);
}

MPDEF int mp_manager_shutdown(mp_manager *m) {
    if (!mp__mgr_ok(m) || !m->server || m->starter != getpid()) return MP_EINVAL;
    mp__buf rq, ans;
    mp__mreq(&rq, MP__OP_SHUTDOWN, 0);
    mp__buf_init(&ans);
    mp__mgr_call(m, &rq, &ans); /* a server already gone is fine */
    if (mp_process_join(m->server, m->timeout) != MP_OK) {
        mp_process_kill(m->server);
        mp_process_join(m->server, MP_FOREVER);
    }
    mp_process_destroy(m->server);
    mp__mgr_sweep(m);
    mp__mgr_free(m);
    return MP_OK;
}

MPDEF void mp_manager_disconnect(mp_manager *m) {
    if (mp__mgr_ok(m)) mp__mgr_free(m);
}

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
