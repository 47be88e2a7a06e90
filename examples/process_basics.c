/* process_basics.c - Python's Process in C: create, start, join (with a timeout),
   is_alive, exitcode (0, a chosen status, -SIGTERM after terminate), pid and parent
   pid, name, mp_cpu_count and mp_active_children. Arguments are copied at create
   (arg_size), as Python's args=(...) are, so a loop can pass &i.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/process_basics.c -o process_basics -pthread
       ./process_basics */
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

static int exit_with(void *arg) { return (int)(intptr_t)arg; }

static int nap(void *arg) {
    sleep((unsigned)(intptr_t)arg);
    return 0;
}

static int member(void *arg) {
    int i = *(const int *)arg;                 // its own i, copied when it was created
    sleep(1);
    printf("member %d done\n", i);
    return 0;
}

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

    /* A chosen exit status: the target's return value. */
    mp_process_desc e = { .target = exit_with, .arg = (void *)(intptr_t)3, .name = "three" };
    mp_process *q = mp_process_create(&e);
    if (!q) { perror("mp_process_create"); return 1; }
    if ((rc = mp_process_start(q)) != MP_OK) return fail("start", rc);
    if ((rc = mp_process_join(q, MP_FOREVER)) != MP_OK) return fail("join", rc);
    printf("%s: exitcode %d\n", mp_process_name(q), mp_process_exitcode(q));
    mp_process_destroy(q);

    /* is_alive, join with a timeout (which does not wait forever), terminate. */
    mp_process_desc s = { .target = nap, .arg = (void *)(intptr_t)10, .name = "sleeper" };
    mp_process *r = mp_process_create(&s);
    if (!r) { perror("mp_process_create"); return 1; }
    printf("before start: %s pid %d, alive %d\n", mp_process_name(r), (int)mp_process_pid(r),
           mp_process_is_alive(r));
    if ((rc = mp_process_start(r)) != MP_OK) return fail("start", rc);
    printf("after start: %s pid %d, alive %d\n", mp_process_name(r), (int)mp_process_pid(r),
           mp_process_is_alive(r));
    rc = mp_process_join(r, 0.2);
    printf("join(0.2): %s, alive %d\n", mp_strerror(rc), mp_process_is_alive(r));
    if ((rc = mp_process_terminate(r)) != MP_OK) return fail("terminate", rc);
    if ((rc = mp_process_join(r, MP_FOREVER)) != MP_OK) return fail("join", rc);
    printf("after terminate and join: alive %d, exitcode %d (-SIGTERM is %d)\n",
           mp_process_is_alive(r), mp_process_exitcode(r), -SIGTERM);
    mp_process_destroy(r);

    /* Three running workers, as multiprocessing.active_children() lists them. */
    mp_process *team[3];
    for (int i = 0; i < 3; i++) {
        mp_process_desc t = { .target = member, .arg = &i, .arg_size = sizeof i };
        if (!(team[i] = mp_process_create(&t))) { perror("mp_process_create"); return 1; }
        if ((rc = mp_process_start(team[i])) != MP_OK) return fail("start", rc);
    }
    mp_process *active[8];
    size_t n = mp_active_children(active, 8);
    printf("active children: %zu\n", n);
    for (size_t i = 0; i < n && i < 8; i++)
        printf("  %s pid %d\n", mp_process_name(active[i]), (int)mp_process_pid(active[i]));
    for (int i = 0; i < 3; i++) {
        if ((rc = mp_process_join(team[i], MP_FOREVER)) != MP_OK) return fail("join", rc);
        mp_process_destroy(team[i]);
    }
    printf("active children after join: %zu\n", mp_active_children(NULL, 0));
    return 0;
}
