/* pool_squares.c - Python's Pool: map and apply_async.
   A pool of 5 worker processes maps x*x over 1..10 and prints the list in input order;
   then the same function through apply_async, one task per number, each result got
   in turn; then close and join.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/pool_squares.c -o pool_squares -pthread
       ./pool_squares */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>
#include <string.h>

/* The map function: one element in, one element out; 0 means success. */
static int square(const void *in, void *out) {
    int x = *(const int *)in;
    *(int *)out = x * x;
    return 0;
}

/* The same function as an apply_async task: bytes in, bytes out. */
static int square_task(const void *arg, size_t arg_len, void *result, size_t *result_len) {
    if (arg_len != sizeof(int) || *result_len < sizeof(int)) return 1;
    *result_len = sizeof(int);
    return square(arg, result);
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

int main(void) {
    mp_pool_desc pd = { .processes = 5 };
    mp_pool *pool = mp_pool_create(&pd);
    if (!pool) { perror("mp_pool_create"); return 1; }

    int numbers[10], squares[10];
    for (int i = 0; i < 10; i++) numbers[i] = i + 1;
    mp_map_desc md = { .fn = square, .in = numbers, .in_size = sizeof(int),
                       .out = squares, .out_size = sizeof(int), .n = 10 };
    int rc = mp_pool_map(pool, &md);
    if (rc != MP_OK) return fail("mp_pool_map", rc);
    printf("map:");
    for (int i = 0; i < 10; i++) printf(" %d", squares[i]);
    printf("\n");

    mp_async *results[10];
    for (int i = 0; i < 10; i++) {
        results[i] = mp_pool_apply_async(pool, square_task, &numbers[i], sizeof(int));
        if (!results[i]) { perror("mp_pool_apply_async"); return 1; }
    }
    printf("apply_async:");
    for (int i = 0; i < 10; i++) {
        int y;
        if ((rc = mp_async_get(results[i], &y, sizeof y, NULL, MP_FOREVER)) != MP_OK)
            return fail("mp_async_get", rc);
        printf(" %d", y);
        mp_async_destroy(results[i]);
    }
    printf("\n");

    mp_pool_close(pool);                 // no more tasks
    if ((rc = mp_pool_join(pool, MP_FOREVER)) != MP_OK) return fail("mp_pool_join", rc);
    mp_pool_destroy(pool);
    printf("pool closed and joined\n");
    return 0;
}
