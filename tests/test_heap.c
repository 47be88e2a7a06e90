/* The library basics and the shared heap. */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(base_strerror_covers_every_code) {
    for (int c = MP_ESYS; c <= MP_OK; c++) {
        CHECK(mp_strerror(c) != NULL);
        CHECK(strcmp(mp_strerror(c), "unknown error") != 0);
    }
    CHECK(strcmp(mp_strerror(1234), "unknown error") == 0);
}

TEST(base_cpu_count_matches_affinity) {
    cpu_set_t set;
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    CHECK_EQ(mp_cpu_count(), CPU_COUNT(&set));
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    CHECK(sched_setaffinity(0, sizeof set, &set) == 0);
    CHECK_EQ(mp_cpu_count(), 1);
}

TEST(heap_init_rejects_bad_sizes) {
    mp_config small = {.heap_size = 1000};
    CHECK_EQ(mp_init(&small), MP_EINVAL);
    mp_config c = {.heap_size = 64 << 20};
    CHECK_EQ(mp_init(&c), MP_OK);
    CHECK_EQ(mp_init(&c), MP_OK);
    CHECK_EQ(mp_init(NULL), MP_OK);
    mp_config other = {.heap_size = 128 << 20};
    CHECK_EQ(mp_init(&other), MP_EINVAL);
    mp_heap_stats s;
    CHECK_EQ(mp_heap_stats_get(&s), MP_OK);
    CHECK_EQ(s.size, 64 << 20);
    CHECK_EQ(mp_heap_stats_get(NULL), MP_EINVAL);
}

TEST(heap_alloc_free_reuses_blocks) {
    mp_heap_stats s0, s1;
    mp_heap_stats_get(&s0);
    void *ptrs[100];
    for (int i = 0; i < 100; i++) {
        ptrs[i] = mp_alloc((size_t)i * 37 + 1);
        CHECK(ptrs[i] != NULL);
        CHECK_EQ((uintptr_t)ptrs[i] % 16, 0);
        memset(ptrs[i], i, (size_t)i * 37 + 1);
    }
    for (int i = 0; i < 100; i++) {
        unsigned char *p = (unsigned char *)ptrs[i];
        CHECK_EQ(p[0], i);
        CHECK_EQ(p[(size_t)i * 37], i);
    }
    mp_heap_stats_get(&s1);
    CHECK_EQ(s1.blocks, s0.blocks + 100);
    for (int i = 0; i < 100; i++) mp_free(ptrs[i]);
    mp_heap_stats_get(&s1);
    CHECK_EQ(s1.blocks, s0.blocks);
    CHECK_EQ(s1.in_use, s0.in_use);
    size_t top = s1.used;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 100; i++) ptrs[i] = mp_alloc((size_t)i * 37 + 1);
        for (int i = 0; i < 100; i++) mp_free(ptrs[i]);
    }
    mp_heap_stats_get(&s1);
    CHECK_EQ(s1.used, top); /* every block came from a free list */
}

TEST(heap_bad_input_is_refused) {
    errno = 0;
    CHECK(mp_alloc(0) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_alloc(SIZE_MAX) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK(mp_calloc(SIZE_MAX / 2, 4) == NULL);
    CHECK_EQ(errno, ENOMEM);
    mp_free(NULL);
    int on_stack;
    mp_free(&on_stack); /* not ours: ignored */
    char *p = (char *)mp_alloc(100);
    mp_heap_stats s0, s1;
    mp_heap_stats_get(&s0);
    mp_free(p);
    mp_free(p); /* double free: ignored */
    mp_free(p + 1);
    mp_heap_stats_get(&s1);
    CHECK_EQ(s1.blocks, s0.blocks - 1);
    void *a = mp_alloc(100), *b = mp_alloc(100);
    CHECK(a != b); /* the double free did not put the block on the list twice */
    mp_free(a);
    mp_free(b);
}

TEST(heap_exhaustion_is_enomem_then_recovers) {
    mp_config c = {.heap_size = 4 << 20};
    CHECK_EQ(mp_init(&c), MP_OK);
    void *blocks[64];
    int n = 0;
    errno = 0;
    while (n < 64 && (blocks[n] = mp_alloc(256 << 10)) != NULL) n++;
    CHECK(n > 4 && n < 64);
    CHECK_EQ(errno, ENOMEM);
    CHECK(mp_alloc(64) != NULL); /* small classes still fit in what is left */
    mp_free(blocks[0]);
    blocks[0] = mp_alloc(256 << 10);
    CHECK(blocks[0] != NULL);
    for (int i = 0; i < n; i++) mp_free(blocks[i]);
}

TEST(heap_calloc_zeroes_reused_memory) {
    unsigned char *p = (unsigned char *)mp_alloc(1000);
    memset(p, 0xff, 1000);
    mp_free(p);
    unsigned char *q = (unsigned char *)mp_calloc(10, 100);
    CHECK(q == p);
    for (int i = 0; i < 1000; i++) CHECK_EQ(q[i], 0);
    mp_free(q);
}

/* A block the child allocates after the fork is visible to the parent. */
static int child_allocates(void *arg) {
    void **slot = (void **)arg;
    char *s = (char *)mp_alloc(64);
    strcpy(s, "made by the child");
    __atomic_store_n(slot, s, __ATOMIC_RELEASE);
    return 0;
}

TEST(heap_child_allocation_seen_by_parent) {
    void **slot = (void **)mp_calloc(1, sizeof(void *));
    mp_process_desc d = {child_allocates, slot, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK_EQ(mp_process_start(p), MP_OK);
    CHECK_EQ(mp_process_join(p, 10), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 0);
    char *s = (char *)__atomic_load_n(slot, __ATOMIC_ACQUIRE);
    CHECK(s != NULL);
    CHECK(strcmp(s, "made by the child") == 0);
    mp_free(s);
    mp_free(slot);
    CHECK_EQ(mp_process_destroy(p), MP_OK);
}

/* Several processes and threads allocate at once; every block stays distinct. */
static int hammer(void *arg) {
    long n = *(long *)arg;
    void *mine[64];
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < 64; i++) {
            mine[i] = mp_alloc((size_t)(i * 13 + 8));
            if (!mine[i]) return 2;
            memset(mine[i], (int)(getpid() + i), (size_t)(i * 13 + 8));
        }
        for (int i = 0; i < 64; i++) {
            unsigned char *c = (unsigned char *)mine[i];
            if (c[i * 13 + 7] != (unsigned char)(getpid() + i)) return 3;
            mp_free(mine[i]);
        }
    }
    return 0;
}

TEST(heap_concurrent_processes_do_not_collide) {
    mp_heap_stats s0, s1;
    mp_heap_stats_get(&s0);
    long *n = (long *)mp_alloc(sizeof(long));
    *n = t_scale(2000);
    mp_process *ps[4];
    for (int i = 0; i < 4; i++) {
        mp_process_desc d = {hammer, n, NULL, false, 0, 0};
        ps[i] = mp_process_create(&d);
        CHECK_EQ(mp_process_start(ps[i]), MP_OK);
    }
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(mp_process_join(ps[i], 60), MP_OK);
        CHECK_EQ(mp_process_exitcode(ps[i]), 0);
        mp_process_destroy(ps[i]);
    }
    mp_free(n);
    mp_heap_stats_get(&s1);
    CHECK_EQ(s1.blocks, s0.blocks);
}

/* SIGKILL processes at random moments while they allocate: the heap stays usable and
   leaks at most one block per killed process. */
static int alloc_forever(void *arg) {
    (void)arg;
    void *mine[16] = {0};
    for (unsigned i = 0;; i++) {
        unsigned k = i % 16;
        mp_free(mine[k]);
        mine[k] = mp_alloc((size_t)(k * 100 + 1));
    }
    return 0;
}

TEST(heap_survives_sigkill_inside_alloc) {
    mp_heap_stats s0, s1;
    mp_heap_stats_get(&s0);
    int kills = (int)t_scale(40);
    for (int i = 0; i < kills; i++) {
        mp_process_desc d = {alloc_forever, NULL, NULL, false, 0, 0};
        mp_process *p = mp_process_create(&d);
        CHECK_EQ(mp_process_start(p), MP_OK);
        usleep(200 + (useconds_t)(rand() % 3000));
        CHECK_EQ(mp_process_kill(p), MP_OK);
        CHECK_EQ(mp_process_join(p, 10), MP_OK);
        CHECK_EQ(mp_process_exitcode(p), -SIGKILL);
        mp_process_destroy(p);
        void *q = mp_alloc(100); /* not wedged by the dead holder */
        CHECK(q != NULL);
        mp_free(q);
    }
    mp_heap_stats_get(&s1);
    /* each victim held up to 16 blocks it never freed, plus at most one in flight */
    CHECK(s1.blocks <= s0.blocks + (size_t)kills * 17);
}
