/* lock_print.c - one lock shared by processes keeps their output whole.
   Five workers print "pid N" under the lock, in two writes each, so lines never
   interleave. Then two workers append lines to one file, one with explicit
   acquire/release, one through a scoped helper (Python's `with lock:`), and main
   checks that the file holds whole lines only.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/lock_print.c -o lock_print -pthread
       ./lock_print */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINES 200
static mp_lock *lock;        /* created before the first fork: every child has it */
static char path[64];        /* the shared file, in a fresh temporary directory */

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

static int print_pid(void *arg) {
    (void)arg;
    int rc = mp_lock_acquire(lock, MP_FOREVER);
    if (rc != MP_OK && rc != MP_EOWNERDEAD) return fail("acquire", rc);
    printf("pid ");          /* two writes: without the lock another */
    fflush(stdout);          /* process could print between them    */
    printf("%d\n", (int)getpid());
    fflush(stdout);
    mp_lock_release(lock);
    return 0;
}

static int append_line(void *arg) {   /* one line, in two writes */
    FILE *f = fopen(path, "a");
    if (!f) return 1;
    fprintf(f, "%s: the quick brown fox ", (const char *)arg);
    fflush(f);
    fprintf(f, "jumps over the lazy dog\n");
    return fclose(f) == 0 ? 0 : 1;
}

/* Python's `with lock:` - run fn(arg) holding the lock, always release it. */
static int with_lock(mp_lock *l, int (*fn)(void *), void *arg) {
    int rc = mp_lock_acquire(l, MP_FOREVER);
    if (rc != MP_OK && rc != MP_EOWNERDEAD) return fail("acquire", rc);
    int result = fn(arg);
    mp_lock_release(l);
    return result;
}

static int writer_explicit(void *arg) {
    for (int i = 0; i < LINES; i++) {
        int rc = mp_lock_acquire(lock, MP_FOREVER);
        if (rc != MP_OK && rc != MP_EOWNERDEAD) return fail("acquire", rc);
        int bad = append_line(arg);
        if ((rc = mp_lock_release(lock)) != MP_OK) return fail("release", rc);
        if (bad) return 1;
    }
    return 0;
}

static int writer_scoped(void *arg) {
    for (int i = 0; i < LINES; i++)
        if (with_lock(lock, append_line, arg) != 0) return 1;
    return 0;
}

/* Start one process per target, join them all; 0 if every one exited with 0. */
static int run_all(int n, mp_target_fn *targets, void **args) {
    mp_process *p[8];
    int bad = 0, rc;
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
    if (!(lock = mp_lock_create())) { perror("mp_lock_create"); return 1; }
    mp_target_fn printers[5] = { print_pid, print_pid, print_pid, print_pid, print_pid };
    void *none[5] = { 0 };
    if (run_all(5, printers, none)) return 1;

    char dir[] = "/tmp/lock_print.XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    snprintf(path, sizeof path, "%s/log.txt", dir);
    mp_target_fn writers[2] = { writer_explicit, writer_scoped };
    void *names[2] = { "explicit", "scoped" };
    int bad = run_all(2, writers, names);

    char line[256];
    int whole = 0, broken = 0;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        const char *rest = strchr(line, ':');
        if (rest && strcmp(rest, ": the quick brown fox jumps over the lazy dog\n") == 0) whole++;
        else broken++;
    }
    if (f) fclose(f);
    printf("%s: %d whole lines, %d broken\n", path, whole, broken);
    remove(path);
    rmdir(dir);
    mp_lock_destroy(lock);
    return bad || broken || whole != 2 * LINES;
}
