/* shared_value_array.c - Python's Value and Array: data in the shared heap.
   A child sets a shared double to 3.14 and element 0 of a shared int array of 10 to 5;
   main prints both after join. Then two processes add 1 to one shared counter 100,000
   times each, first without a lock (updates get lost), then with one (none do).

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/shared_value_array.c -o shared_value_array -pthread
       ./shared_value_array */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>

typedef struct {          /* Value('d') and Array('i', 10), in one shared block */
    double num;
    int arr[10];
} shared_data;

typedef struct {          // a counter and the lock that guards it
    volatile long value;  // volatile: every read and write really happens
    mp_lock *lock;
    bool use_lock;
    mp_barrier *start;    /* both adders begin at the same moment */
} counter;

#define ADDS 100000

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

static int fill(void *arg) {
    shared_data *d = (shared_data *)arg;
    d->num = 3.14;
    d->arr[0] = 5;
    return 0;
}

static int add(void *arg) {
    counter *c = (counter *)arg;
    int rc = mp_barrier_wait(c->start, 10.0, NULL);
    if (rc != MP_OK) return fail("mp_barrier_wait", rc);
    for (int i = 0; i < ADDS; i++) {
        if (c->use_lock) {
            rc = mp_lock_acquire(c->lock, MP_FOREVER);
            if (rc != MP_OK && rc != MP_EOWNERDEAD) return 1;
        }
        long v = c->value;   // read, think a little (as Python would), write back
        for (volatile int k = 0; k < 10; k++) {}
        c->value = v + 1;
        if (c->use_lock) mp_lock_release(c->lock);
    }
    return 0;
}

/* Run target(arg) in n processes at once and join them. */
static int run(mp_target_fn target, void *arg, int n) {
    mp_process *p[2];
    int rc, bad = 0;
    for (int i = 0; i < n; i++) {
        mp_process_desc d = { .target = target, .arg = arg };
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
    shared_data *d = (shared_data *)mp_calloc(1, sizeof *d);
    if (!d) { perror("mp_calloc"); return 1; }
    if (run(fill, d, 1)) return 1;
    printf("num %.2f\narr", d->num);
    for (int i = 0; i < 10; i++) printf(" %d", d->arr[i]);
    printf("\n");
    mp_free(d);

    counter *c = (counter *)mp_calloc(1, sizeof *c);
    if (!c || !(c->lock = mp_lock_create()) || !(c->start = mp_barrier_create(2, NULL, NULL))) {
        perror("create");
        return 1;
    }
    if (run(add, c, 2)) return 1;
    printf("without lock: %ld (expected %d)\n", c->value, 2 * ADDS);
    c->value = 0;
    c->use_lock = true;
    if (run(add, c, 2)) return 1;
    printf("with lock: %ld (expected %d)\n", c->value, 2 * ADDS);
    mp_lock_destroy(c->lock);
    mp_barrier_destroy(c->start);
    mp_free(c);
    return 0;
}
