/* A user's private copy of mp.h (MP_STATIC) that uses a few functions: it must build
   clean under -Wall -Wextra -Werror -pedantic (unused static functions raise nothing),
   in C and as C++. Built and run by make check-matrix. */
#define MP_IMPLEMENTATION
#define MP_STATIC
#include "../../mp.h"
#include <stdio.h>

int main(void) {
    mp_lock *l = mp_lock_create();
    if (!l) return 1;
    int rc = mp_lock_acquire(l, 0);
    if (rc == MP_OK) rc = mp_lock_release(l);
    mp_lock_destroy(l);
    printf("MP_STATIC copy: %s\n", mp_strerror(rc));
    return rc == MP_OK ? 0 : 1;
}
