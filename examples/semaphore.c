/* semaphore.c - a semaphore of 2 lets at most two of five processes in at once.
   Each process acquires, says so with its name, stays inside for a moment,
   says it leaves and releases. A shared counter (under a lock) records how many
   are inside and the most ever seen, which main prints at the end.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/semaphore.c -o semaphore -pthread
       ./semaphore */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>
#include <unistd.h>

typedef struct {          /* lives in the shared heap */
    mp_semaphore *slots;  /* Semaphore(2) */
    mp_lock *lock;        /* guards the two counters */
    int inside, most_inside;
} room;

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

static void count(room *r, int delta) {
    int rc = mp_lock_acquire(r->lock, MP_FOREVER);
    if (rc != MP_OK && rc != MP_EOWNERDEAD) return;
    r->inside += delta;
    if (r->inside > r->most_inside) r->most_inside = r->inside;
    mp_lock_release(r->lock);
}

static int visitor(void *arg) {
    room *r = (room *)arg;
    const char *me = mp_process_name(mp_current_process());
    int rc = mp_semaphore_acquire(r->slots, MP_FOREVER);
    if (rc != MP_OK) return fail("mp_semaphore_acquire", rc);
    count(r, +1);
    printf("%s acquired\n", me);
    usleep(200 * 1000);
    printf("%s releasing\n", me);
    count(r, -1);
    if ((rc = mp_semaphore_release(r->slots)) != MP_OK) return fail("mp_semaphore_release", rc);
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);   /* whole lines, in order, even into a pipe */
    room *r = (room *)mp_calloc(1, sizeof *r);
    if (!r || !(r->slots = mp_semaphore_create(2, 0)) || !(r->lock = mp_lock_create())) {
        perror("create");
        return 1;
    }
    mp_process *p[5];
    int rc, bad = 0;
    for (int i = 0; i < 5; i++) {
        mp_process_desc d = { .target = visitor, .arg = r };
        if (!(p[i] = mp_process_create(&d))) { perror("mp_process_create"); return 1; }
        if ((rc = mp_process_start(p[i])) != MP_OK) return fail("start", rc);
    }
    for (int i = 0; i < 5; i++) {
        if ((rc = mp_process_join(p[i], MP_FOREVER)) != MP_OK) return fail("join", rc);
        bad |= mp_process_exitcode(p[i]) != 0;
        mp_process_destroy(p[i]);
    }
    printf("most inside at once: %d, semaphore value now %d\n", r->most_inside,
           mp_semaphore_value(r->slots));
    mp_semaphore_destroy(r->slots);
    mp_lock_destroy(r->lock);
    mp_free(r);
    return bad;
}
