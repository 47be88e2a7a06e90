/* daemon.c - daemon processes. The same 3-second worker is started twice as a daemon:
   1. by a parent that exits without joining it: at the parent's exit mp.h terminates
      its daemon children (as Python does), so the worker never finishes;
   2. by a parent that joins it: the worker finishes first.
   The first parent is a process of its own, so that this one program can show both.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/daemon.c -o daemon -pthread
       ./daemon */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static int worker(void *arg) {
    (void)arg;
    printf("  %s pid %d: starting, working for 3 s\n",
           mp_process_name(mp_current_process()), (int)getpid());
    fflush(stdout);   /* a terminated process does not flush its stdio buffers */
    sleep(3);
    printf("  %s: finished\n", mp_process_name(mp_current_process()));
    return 0;
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

/* Run 1: start the daemon, do something else for a moment, exit without join. */
static int parent_without_join(void *arg) {
    pid_t *worker_pid = (pid_t *)arg;   /* in the shared heap: main reads it */
    mp_process_desc d = { .target = worker, .name = "daemon-1", .daemon = true };
    mp_process *w = mp_process_create(&d);
    if (!w) { perror("mp_process_create"); return 1; }
    int rc = mp_process_start(w);
    if (rc != MP_OK) return fail("start", rc);
    *worker_pid = mp_process_pid(w);
    usleep(500 * 1000);
    printf("  parent: exiting without join\n");
    return 0;   /* leaving terminates the daemon children */
}

int main(void) {
    int rc;
    printf("1. daemon without join\n");
    pid_t *worker_pid = (pid_t *)mp_calloc(1, sizeof *worker_pid);
    if (!worker_pid) { perror("mp_calloc"); return 1; }
    mp_process_desc pd = { .target = parent_without_join, .arg = worker_pid };
    mp_process *parent = mp_process_create(&pd);
    if (!parent) { perror("mp_process_create"); return 1; }
    if ((rc = mp_process_start(parent)) != MP_OK) return fail("start", rc);
    if ((rc = mp_process_join(parent, MP_FOREVER)) != MP_OK) return fail("join", rc);
    bool gone = *worker_pid > 0 && kill(*worker_pid, 0) < 0 && errno == ESRCH;
    printf("  the parent exited (exitcode %d); its daemon pid %d is gone: %s\n",
           mp_process_exitcode(parent), (int)*worker_pid, gone ? "yes" : "no");
    mp_process_destroy(parent);
    mp_free(worker_pid);

    printf("2. daemon with join\n");
    mp_process_desc d = { .target = worker, .name = "daemon-2", .daemon = true };
    mp_process *w = mp_process_create(&d);
    if (!w) { perror("mp_process_create"); return 1; }
    if ((rc = mp_process_start(w)) != MP_OK) return fail("start", rc);
    if ((rc = mp_process_join(w, MP_FOREVER)) != MP_OK) return fail("join", rc);
    printf("  main: joined %s, exitcode %d\n", mp_process_name(w), mp_process_exitcode(w));
    mp_process_destroy(w);
    return gone ? 0 : 1;
}
