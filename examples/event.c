/* event.c - an event set by one process wakes the processes waiting on it.
   One waiter waits with no timeout, another with a 2-second timeout; main sets the
   event after 3 seconds. The timed waiter gives up first; the other wakes at the set.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/event.c -o event -pthread
       ./event */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static mp_event *ready;      /* created before the fork: both waiters have it */
static double start;         /* seconds on the monotonic clock when main began */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int wait_forever(void *arg) {
    (void)arg;
    printf("%.1f s: waiter: waiting for the event\n", now() - start);
    int rc = mp_event_wait(ready, MP_FOREVER);
    printf("%.1f s: waiter: %s, event set: %d\n", now() - start, mp_strerror(rc),
           mp_event_is_set(ready));
    return rc == MP_OK ? 0 : 1;
}

static int wait_two_seconds(void *arg) {
    (void)arg;
    printf("%.1f s: timed waiter: waiting at most 2 s\n", now() - start);
    int rc = mp_event_wait(ready, 2.0);
    printf("%.1f s: timed waiter: %s, event set: %d\n", now() - start, mp_strerror(rc),
           mp_event_is_set(ready));
    return rc == MP_ETIMEDOUT ? 0 : 1;
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);   /* whole lines, in order, even into a pipe */
    start = now();
    if (!(ready = mp_event_create())) { perror("mp_event_create"); return 1; }
    mp_target_fn targets[2] = { wait_forever, wait_two_seconds };
    mp_process *p[2];
    int rc, bad = 0;
    for (int i = 0; i < 2; i++) {
        mp_process_desc d = { .target = targets[i] };
        if (!(p[i] = mp_process_create(&d))) { perror("mp_process_create"); return 1; }
        if ((rc = mp_process_start(p[i])) != MP_OK) return fail("start", rc);
    }
    sleep(3);
    printf("%.1f s: main: setting the event\n", now() - start);
    mp_event_set(ready);
    for (int i = 0; i < 2; i++) {
        if ((rc = mp_process_join(p[i], MP_FOREVER)) != MP_OK) return fail("join", rc);
        bad |= mp_process_exitcode(p[i]) != 0;
        mp_process_destroy(p[i]);
    }
    mp_event_destroy(ready);
    return bad;
}
