/* queue_producers.c - Python's Queue between processes.
   1. Ten producers each put "pid(put):time" into a queue bounded at 3 messages; ten
      consumers get one message each and print it under a lock.
   2. One sender and two competing receivers; the sender ends with one sentinel (an
      empty message) per receiver, so both stop cleanly.
   3. put with timeout 0 on a full queue and get with timeout 0 on an empty one
      (Python's put_nowait/get_nowait): both return MP_ETIMEDOUT (queue.Full/Empty).

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/queue_producers.c -o queue_producers -pthread
       ./queue_producers */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>

static mp_queue *q;          /* created before the forks: every child has them */
static mp_lock *print_lock;

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

static int producer(void *arg) {
    (void)arg;
    struct timeval tv;
    char msg[64];
    gettimeofday(&tv, NULL);   /* as Python's time.time() */
    int len = snprintf(msg, sizeof msg, "%d(put):%ld.%06ld", (int)getpid(), (long)tv.tv_sec,
                       (long)tv.tv_usec);
    int rc = mp_queue_put(q, msg, (size_t)len, MP_FOREVER);   // waits while 3 are held
    return rc == MP_OK ? 0 : fail("mp_queue_put", rc);
}

static int consumer(void *arg) {
    (void)arg;
    char msg[64];
    size_t len;
    int rc = mp_queue_get(q, msg, sizeof msg, &len, MP_FOREVER);
    if (rc != MP_OK) return fail("mp_queue_get", rc);
    if ((rc = mp_lock_acquire(print_lock, MP_FOREVER)) != MP_OK && rc != MP_EOWNERDEAD)
        return fail("mp_lock_acquire", rc);
    printf("%d(get): %.*s\n", (int)getpid(), (int)len, msg);
    mp_lock_release(print_lock);
    return 0;
}

static int sender(void *arg) {
    (void)arg;
    for (int i = 0; i < 10; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "item %d", i), rc;
        if ((rc = mp_queue_put(q, msg, (size_t)len, MP_FOREVER)) != MP_OK) return fail("put", rc);
    }
    int rc = MP_OK;
    for (int i = 0; i < 2 && rc == MP_OK; i++)   /* one sentinel per receiver */
        rc = mp_queue_put(q, NULL, 0, MP_FOREVER);
    return rc == MP_OK ? 0 : fail("put", rc);
}

static int receiver(void *arg) {
    for (;;) {
        char msg[32];
        size_t len;
        int rc = mp_queue_get(q, msg, sizeof msg, &len, MP_FOREVER);
        if (rc != MP_OK) return fail("mp_queue_get", rc);
        if (len == 0) break;                    /* the sentinel: no more work */
        printf("%s got %.*s\n", (const char *)arg, (int)len, msg);
    }
    printf("%s: done\n", (const char *)arg);
    return 0;
}

/* Start n processes running target(arg), join them all; 0 if all exited with 0. */
static int run(int n, mp_target_fn *targets, void **args) {
    mp_process *p[32];
    int rc, bad = 0;
    for (int i = 0; i < n; i++) {
        mp_process_desc d = { .target = targets[i], .arg = args[i] };
        if (!(p[i] = mp_process_create(&d))) { perror("mp_process_create"); return 1; }
        if ((rc = mp_process_start(p[i])) != MP_OK) return fail("start", rc);
    }
    for (int i = 0; i < n; i++) {
        if ((rc = mp_process_join(p[i], MP_FOREVER)) != MP_OK) return fail("join", rc);
        bad |= mp_process_exitcode(p[i]) != 0;
        mp_process_destroy(p[i]);
    }
    return bad;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);   /* whole lines, even into a pipe (children too) */
    mp_queue_desc qd = { .maxsize = 3 };
    if (!(q = mp_queue_create(&qd)) || !(print_lock = mp_lock_create())) {
        perror("create");
        return 1;
    }
    mp_target_fn t[20];
    void *a[20] = { 0 };
    for (int i = 0; i < 20; i++) t[i] = i < 10 ? producer : consumer;
    if (run(20, t, a)) return 1;

    mp_target_fn t2[3] = { sender, receiver, receiver };
    void *a2[3] = { NULL, "receiver-A", "receiver-B" };
    if (run(3, t2, a2)) return 1;

    for (int i = 0; i < 3; i++) mp_queue_put(q, "x", 1, MP_FOREVER);   /* fill it */
    int rc = mp_queue_put(q, "x", 1, 0);
    printf("put with timeout 0 on a full queue (%zu held): %s\n", mp_queue_qsize(q),
           mp_strerror(rc));
    char buf[8];
    size_t len;
    for (int i = 0; i < 3; i++) mp_queue_get(q, buf, sizeof buf, &len, MP_FOREVER);  /* empty it */
    rc = mp_queue_get(q, buf, sizeof buf, &len, 0);
    printf("get with timeout 0 on an empty queue: %s\n", mp_strerror(rc));
    mp_queue_destroy(q);
    mp_lock_destroy(print_lock);
    return 0;
}
