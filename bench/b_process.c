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
    mp_process_desc d = {quick, NULL, NULL, false, 0};
    double t0 = b_now();
    for (int i = 0; i < PROCS; i++) {
        mp_process *p = mp_process_create(&d);
        mp_process_start(p);
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
