/* cplusplus.cpp - mp.h from C++: the descs without designated initializers (C++11 has
   none: zero the struct with {} and assign the fields), a string literal passed as
   void * (a cast: C++ has no implicit const char * -> void *), a process with its
   argument copied at create, and a blocking pool apply.

   Build and run from the repository root:
       c++ -std=c++11 -Wall -Wextra -Werror -I. examples/cplusplus.cpp -o cplusplus -pthread
       ./cplusplus */
#define MP_IMPLEMENTATION
#include "mp.h" // first: it sets up the feature macros the implementation needs
#include <cstdio>
#include <cstring>

static int fail(const char *what, int rc) {
    std::fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

static int greet(void *arg) {
    std::printf("child says: %s\n", static_cast<const char *>(arg));
    return 0;
}

static int shout(const void *arg, size_t arg_len, void *result, size_t *result_len) {
    if (arg_len > *result_len) return 1;
    char *out = static_cast<char *>(result);
    for (size_t i = 0; i < arg_len; i++) {
        char c = static_cast<const char *>(arg)[i];
        out[i] = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    }
    *result_len = arg_len;
    return 0;
}

int main() {
    std::setvbuf(stdout, NULL, _IOLBF, 0);
    mp_process_desc d = {};                    // every field zero: the defaults
    d.target = greet;
    d.arg = const_cast<char *>("hello from C++"); // copied at create: arg_size
    d.arg_size = std::strlen("hello from C++") + 1;
    mp_process *p = mp_process_create(&d);
    if (!p) { std::perror("mp_process_create"); return 1; }
    int rc = mp_process_start(p);
    if (rc != MP_OK) return fail("start", rc);
    if ((rc = mp_process_join(p, MP_FOREVER)) != MP_OK) return fail("join", rc);
    std::printf("exitcode %d\n", mp_process_exitcode(p));
    mp_process_destroy(p);

    mp_pool_desc pd = {};
    pd.processes = 2;
    mp_pool *pool = mp_pool_create(&pd);
    if (!pool) { std::perror("mp_pool_create"); return 1; }
    char out[64];
    size_t len = 0;
    rc = mp_pool_apply(pool, shout, "pool says hi", 12, out, sizeof out, &len);
    if (rc != MP_OK) return fail("mp_pool_apply", rc);
    std::printf("%.*s\n", static_cast<int>(len), out);
    mp_pool_close(pool);
    if ((rc = mp_pool_join(pool, MP_FOREVER)) != MP_OK) return fail("mp_pool_join", rc);
    mp_pool_destroy(pool);
    return 0;
}
