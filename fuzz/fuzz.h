/* What every fuzz target shares: FAIL (report and abort, so libFuzzer keeps the input)
   and an MP_MALLOC that fails the run when mp asks for more than fuzz_alloc_bound
   bytes - the target sets the bound its input implies. Define FUZZ_NAME, then include
   this instead of mp.h; it includes the implementation. */
#ifndef MP_FUZZ_H
#define MP_FUZZ_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...)                                            \
    do {                                                     \
        fprintf(stderr, FUZZ_NAME ": " __VA_ARGS__);         \
        fprintf(stderr, "\n");                               \
        abort();                                             \
    } while (0)

static size_t fuzz_alloc_bound = SIZE_MAX;
static void *fuzz_malloc(size_t n) {
    if (n > fuzz_alloc_bound) FAIL("mp allocated %zu bytes, bound %zu", n, fuzz_alloc_bound);
    return malloc(n);
}
#define MP_MALLOC(n) fuzz_malloc(n)
#define MP_FREE(p) free(p)
#define MP_IMPLEMENTATION
#include "../mp.h"
#endif
