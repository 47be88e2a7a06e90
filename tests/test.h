/* The test harness: TEST(name) registers a case; each case runs in its own forked
   process group with a time limit, so a crash, a hang or a leak fails that case only.
   CHECK* fail the current process with file:line and the values seen. */
#ifndef MP_TEST_H
#define MP_TEST_H
#include "../mp.h"
#include <stdio.h>
#include <stdlib.h>

typedef void (*t_fn)(void);
void t_register(const char *name, t_fn fn, double timeout);
void t_fail(const char *file, int line, const char *what);
void t_fail_int(const char *file, int line, const char *a, const char *b, long long x,
                long long y);
/* Iteration counts scaled down under valgrind (MP_TEST_SLOW=1). */
long t_scale(long n);
/* Number of open fds of this process. */
int t_count_fds(void);
/* Seconds since an arbitrary start, monotonic. */
double t_now(void);
/* The state letter of pid in /proc/<pid>/stat ('R', 'S', 'Z'...), 0 if there is no
   such process; *ppid (if not NULL) its parent. */
char t_proc_state(pid_t pid, pid_t *ppid);
/* Fork a plain child running fn(arg) and _exit with its return value. */
pid_t t_fork(int (*fn)(void *), void *arg);
/* waitpid with EINTR handling; returns the raw status. */
int t_wait(pid_t pid);

#define T__CAT2(a, b) a##b
#define T__CAT(a, b) T__CAT2(a, b)
#define TEST_T(name, timeout)                                                       \
    static void name(void);                                                         \
    __attribute__((constructor)) static void T__CAT(t_reg_, name)(void) {           \
        t_register(#name, name, timeout);                                           \
    }                                                                               \
    static void name(void)
#define TEST(name) TEST_T(name, 60)

#define CHECK(c)                                                                    \
    do {                                                                            \
        if (!(c)) t_fail(__FILE__, __LINE__, #c);                                  \
    } while (0)
#define CHECK_EQ(a, b)                                                              \
    do {                                                                            \
        long long t__x = (long long)(a), t__y = (long long)(b);                     \
        if (t__x != t__y) t_fail_int(__FILE__, __LINE__, #a, #b, t__x, t__y);      \
    } while (0)
#endif
