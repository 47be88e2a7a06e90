/* Named shared memory. */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void shm_name(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/mp-test-%d-%s", (int)getpid(), tag);
}

static mp_shm *m; /* global: the forked child inherits it (valgrind sees it reachable) */

TEST(shm_create_share_unlink) {
    char name[64];
    shm_name(name, sizeof name, "a");
    m = mp_shm_open(name, 4096, MP_SHM_CREATE | MP_SHM_EXCL);
    CHECK(m != NULL);
    CHECK_EQ(mp_shm_size(m), 4096);
    strcpy((char *)mp_shm_data(m), "hello");
    CHECK(mp_shm_open(name, 4096, MP_SHM_CREATE | MP_SHM_EXCL) == NULL);
    CHECK_EQ(errno, EEXIST);
    pid_t pid = fork();
    if (pid == 0) { /* an unrelated-style open by name */
        mp_shm *o = mp_shm_open(name + 1, 0, 0);
        int ok = o && mp_shm_size(o) == 4096 && strcmp((char *)mp_shm_data(o), "hello") == 0;
        if (o) strcpy((char *)mp_shm_data(o), "world");
        mp_shm_close(o);
        _exit(ok ? 0 : 1);
    }
    int st = t_wait(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(strcmp((char *)mp_shm_data(m), "world") == 0);
    mp_shm_close(m);
    CHECK_EQ(mp_shm_unlink(name), MP_OK);
    CHECK_EQ(mp_shm_unlink(name), MP_ESYS);
    CHECK_EQ(errno, ENOENT);
    CHECK(mp_shm_open(name, 0, 0) == NULL);
    CHECK_EQ(errno, ENOENT);
}

TEST(shm_bad_input) {
    CHECK(mp_shm_open(NULL, 10, MP_SHM_CREATE) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_shm_open("", 10, MP_SHM_CREATE) == NULL);
    CHECK(mp_shm_open("/a/b", 10, MP_SHM_CREATE) == NULL);
    CHECK(mp_shm_open("x", 10, 99) == NULL);
    CHECK(mp_shm_open("x", 10, MP_SHM_EXCL) == NULL);
    CHECK(mp_shm_open("x", SIZE_MAX, MP_SHM_CREATE) == NULL);
    CHECK_EQ(errno, EINVAL);
    char name[64];
    shm_name(name, sizeof name, "b");
    CHECK(mp_shm_open(name, 0, MP_SHM_CREATE | MP_SHM_EXCL) == NULL); /* size 0 new */
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_shm_unlink(name), MP_ESYS); /* the failed create left nothing */
    CHECK_EQ(mp_shm_unlink(NULL), MP_EINVAL);
    CHECK(mp_shm_data(NULL) == NULL);
    CHECK_EQ(mp_shm_size(NULL), 0);
    mp_shm_close(NULL);
}

TEST(shm_grow_only_with_create) {
    char name[64];
    shm_name(name, sizeof name, "c");
    mp_shm *m = mp_shm_open(name, 100, MP_SHM_CREATE);
    CHECK(m != NULL);
    CHECK(mp_shm_open(name, 200, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    mp_shm *g = mp_shm_open(name, 8192, MP_SHM_CREATE);
    CHECK(g != NULL && mp_shm_size(g) == 8192);
    mp_shm_close(g);
    mp_shm_close(m);
    mp_shm_unlink(name);
}

TEST(shm_full_dev_shm_is_enospc_not_sigbus) {
    char name[64];
    shm_name(name, sizeof name, "d");
    /* RLIMIT_FSIZE does not apply to tmpfs fallocate; ask for more than /dev/shm has */
    mp_shm *m = mp_shm_open(name, (size_t)1 << 45, MP_SHM_CREATE | MP_SHM_EXCL);
    CHECK(m == NULL);
    CHECK(errno == ENOSPC || errno == EFBIG || errno == ENOMEM);
    CHECK_EQ(mp_shm_unlink(name), MP_ESYS); /* nothing left behind */
}

TEST(shm_fd_limit_is_clean_error) {
    char name[64];
    shm_name(name, sizeof name, "e");
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = 64;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    int filler[64], n = 0;
    while (n < 64 && (filler[n] = dup(0)) >= 0) n++; /* every fd in use */
    mp_shm *m = mp_shm_open(name, 4096, MP_SHM_CREATE);
    int e = errno;
    while (n > 0) close(filler[--n]);
    setrlimit(RLIMIT_NOFILE, &old);
    CHECK(m == NULL);
    CHECK_EQ(e, EMFILE);
    m = mp_shm_open(name, 4096, MP_SHM_CREATE);
    CHECK(m != NULL);
    mp_shm_close(m);
    mp_shm_unlink(name);
}

/* A create without MP_SHM_EXCL that fails removes what it created (a size-0 create of
   a new name is EINVAL), but never an object that was there before it. */
TEST(shm_failed_create_leaves_nothing_behind) {
    char name[64];
    shm_name(name, sizeof name, "c");
    CHECK(mp_shm_open(name, 0, MP_SHM_CREATE) == NULL);
    CHECK_EQ(errno, EINVAL);
    m = mp_shm_open(name, 4096, MP_SHM_CREATE | MP_SHM_EXCL); /* the name is free */
    CHECK(m != NULL);
    mp_shm_close(m);
    m = mp_shm_open(name, 0, MP_SHM_CREATE); /* an existing one at its size: fine */
    CHECK(m != NULL);
    CHECK_EQ(mp_shm_size(m), 4096);
    mp_shm_close(m);
    CHECK_EQ(mp_shm_unlink(name), MP_OK);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600); /* someone else's, empty */
    CHECK(fd >= 0);
    close(fd);
    CHECK(mp_shm_open(name, 0, MP_SHM_CREATE) == NULL); /* size 0 of an empty one */
    CHECK_EQ(errno, EINVAL);
    fd = shm_open(name, O_RDWR, 0); /* the failure did not remove what was there */
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ(mp_shm_unlink(name), MP_OK);
}
