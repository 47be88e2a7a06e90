/* process_start_join: start+join of a process whose target returns at once. */
#define _GNU_SOURCE
#define MP_IMPLEMENTATION
#include "../mp.h"
#include "bench.h"
#include <sys/wait.h>

enum { PROCS = 2000 };

static int quick(void *arg) {
    (void)arg;
    return 0;
}

BENCH(process_mp, "process_start_join", "mp.h", "us", -1) {
    mp_init(NULL);
    mp_process_desc d = {quick, NULL, NULL, false, 0, 0};
    double t0 = b_now();
    for (int i = 0; i < PROCS; i++) {
        mp_process *p = mp_process_create(&d);
        mp_process_start(p);
        mp_process_join(p, MP_FOREVER);
        mp_process_destroy(p);
    }
    return (b_now() - t0) / PROCS * 1e6;
}

/* The same through the forkserver (mp_init starts it; its own start is not counted). */
BENCH(process_mp_fs, "process_start_join", "mp.h forkserver", "us", -1) {
    mp_config c = {.start_method = MP_START_FORKSERVER};
    if (mp_init(&c) != MP_OK) return b_fail("mp_init with the forkserver");
    mp_process_desc d = {quick, NULL, NULL, false, 0, 0};
    double t0 = b_now();
    for (int i = 0; i < PROCS; i++) {
        mp_process *p = mp_process_create(&d);
        if (!p || mp_process_start(p) != MP_OK) return b_fail("start through the forkserver");
        mp_process_join(p, MP_FOREVER);
        mp_process_destroy(p);
    }
    return (b_now() - t0) / PROCS * 1e6;
}

BENCH(process_fork, "process_start_join", "fork+_exit+waitpid", "us", -1) {
    double t0 = b_now();
    for (int i = 0; i < PROCS; i++) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        int st;
        waitpid(pid, &st, 0);
    }
    return (b_now() - t0) / PROCS * 1e6;
}
