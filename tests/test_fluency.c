/* Python fluency (issue 15): arguments copied at create, variable-size imap results,
   map_async / apply / wait_any, mp_realloc - all across real processes. */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- arg_size: Python's args=(i,) captured at create ---- */

static int exit_with_int(void *arg) { return *(const int *)arg; }

TEST(fluency_arg_copied_at_create_in_a_loop) {
    mp_process *ps[3];
    int i;
    for (i = 0; i < 3; i++) { /* the tutorial's loop: &i changes before each start */
        mp_process_desc d = {exit_with_int, &i, NULL, false, sizeof i, 0};
        CHECK((ps[i] = mp_process_create(&d)) != NULL);
    }
    i = 99;
    for (int k = 0; k < 3; k++) CHECK_EQ(mp_process_start(ps[k]), MP_OK);
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(mp_process_join(ps[k], 20), MP_OK);
        CHECK_EQ(mp_process_exitcode(ps[k]), k); /* each saw its own i */
        CHECK_EQ(mp_process_destroy(ps[k]), MP_OK);
    }
    /* without arg_size the child reads the bytes as they are at start */
    int j = 5;
    mp_process_desc d = {exit_with_int, &j, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK(p != NULL);
    j = 6;
    CHECK_EQ(mp_process_start(p), MP_OK);
    j = 7;
    CHECK_EQ(mp_process_join(p, 20), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 6);
    CHECK_EQ(mp_process_destroy(p), MP_OK);
}

typedef struct {
    char text[300];
    int n;
} big_arg;

static int check_big(void *arg) {
    const big_arg *a = (const big_arg *)arg;
    if (((uintptr_t)arg & 15) != 0) return 3;
    for (int k = 0; k < a->n; k++)
        if (a->text[k] != (char)('a' + k % 26)) return 2;
    return a->text[a->n] == 0 ? 0 : 4;
}

TEST(fluency_arg_size_bad_sizes_and_heap_use) {
    big_arg a;
    memset(&a, 0, sizeof a);
    a.n = 299;
    for (int k = 0; k < a.n; k++) a.text[k] = (char)('a' + k % 26);
    mp_heap_stats before, after;
    CHECK_EQ(mp_heap_stats_get(&before), MP_OK);
    mp_process_desc d = {check_big, &a, NULL, false, sizeof a, 0};
    mp_process *p = mp_process_create(&d);
    CHECK(p != NULL);
    memset(&a, 'z', sizeof a); /* the copy is taken: the original may change */
    CHECK_EQ(mp_process_start(p), MP_OK);
    CHECK_EQ(mp_process_join(p, 20), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 0);
    CHECK_EQ(mp_process_destroy(p), MP_OK);
    CHECK_EQ(mp_heap_stats_get(&after), MP_OK);
    CHECK_EQ(after.blocks, before.blocks); /* the copy went with the record */

    mp_process_desc bad = {check_big, NULL, NULL, false, 8, 0};
    errno = 0;
    CHECK(mp_process_create(&bad) == NULL);
    CHECK_EQ(errno, EINVAL);
    bad.arg = &a, bad.arg_size = SIZE_MAX;
    errno = 0;
    CHECK(mp_process_create(&bad) == NULL);
    CHECK_EQ(errno, ENOMEM);
    bad.arg_size = before.size + 1; /* above the heap: never read */
    errno = 0;
    CHECK(mp_process_create(&bad) == NULL);
    CHECK_EQ(errno, ENOMEM);
}

static int g_init_seen; /* per worker process: what its initializer got */

static int init_copy(void *arg) {
    g_init_seen = *(const int *)arg;
    return 0;
}

static int report_seen(const void *arg, size_t arg_len, void *res, size_t *len) {
    (void)arg, (void)arg_len;
    int v[2] = {g_init_seen, (int)getpid()};
    memcpy(res, v, sizeof v);
    *len = sizeof v;
    return 0;
}

TEST(fluency_pool_initarg_copied_at_create) {
    int seed = 31337;
    mp_pool_desc pd = {2, init_copy, &seed, 1, 0, sizeof seed, 0}; /* 1 task per worker */
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    seed = -1; /* replacements are forked later: they must still see the copy */
    for (int k = 0; k < 8; k++) {
        int v[2];
        size_t len = 0;
        CHECK_EQ(mp_pool_apply(p, report_seen, NULL, 0, v, sizeof v, &len), MP_OK);
        CHECK_EQ(len, sizeof v);
        CHECK_EQ(v[0], 31337);
    }
    mp_pool_stats st;
    CHECK_EQ(mp_pool_stats_get(p, &st), MP_OK);
    CHECK(st.started >= 8); /* the replacements ran the initializer on the copy */
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 30), MP_OK);
    mp_pool_destroy(p);

    mp_pool_desc bad = {2, init_copy, NULL, 0, 0, 4, 0};
    errno = 0;
    CHECK(mp_pool_create(&bad) == NULL);
    CHECK_EQ(errno, EINVAL);
    bad.initarg = &seed, bad.initarg_size = SIZE_MAX;
    errno = 0;
    CHECK(mp_pool_create(&bad) == NULL);
    CHECK_EQ(errno, ENOMEM);
}

/* ---- variable-size results through imap ---- */

/* Item x: the text "x" repeated x % 50 times (x % 50 == 0: empty); x == 13 fails with
   code 7, x == 17 asks for more than max_result. */
static int repeat_str(const void *arg, size_t arg_len, void *res, size_t *len) {
    int64_t x;
    if (arg_len != sizeof x) return 99;
    memcpy(&x, arg, sizeof x);
    if (x == 13) return 7;
    if (x == 17) {
        *len = *len + 1;
        return 0;
    }
    char one[24];
    int n = snprintf(one, sizeof one, "%lld,", (long long)x);
    size_t want = (size_t)n * (size_t)(x % 50);
    if (want > *len) return 98;
    for (size_t k = 0; k < want; k += (size_t)n) memcpy((char *)res + k, one, (size_t)n);
    *len = want;
    return 0;
}

static void check_repeat(int64_t x, const char *buf, size_t len) {
    char one[24];
    int n = snprintf(one, sizeof one, "%lld,", (long long)x);
    CHECK_EQ(len, (size_t)n * (size_t)(x % 50));
    for (size_t k = 0; k < len; k += (size_t)n) CHECK(memcmp(buf + k, one, (size_t)n) == 0);
}

static size_t blocks_now(void) {
    mp_heap_stats s;
    CHECK_EQ(mp_heap_stats_get(&s), MP_OK);
    return s.blocks;
}

TEST(fluency_imap_task_results_of_any_size) {
    mp_pool_desc pd = {2, NULL, NULL, 0, 0, 0, 0};
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    size_t base = blocks_now();
    enum { N = 400 };
    int64_t in[N];
    for (int k = 0; k < N; k++) in[k] = k;
    for (int unordered = 0; unordered < 2; unordered++) {
        mp_map_desc d = {NULL, in, sizeof in[0], NULL, 0, N, 3, unordered != 0,
                         NULL, NULL, NULL, repeat_str, 1200};
        mp_imap *it = mp_pool_imap(p, &d);
        CHECK(it != NULL);
        bool seen[N] = {false};
        void *buf;
        size_t len, idx, got = 0;
        int rc;
        while ((rc = mp_imap_next_alloc(it, &buf, &len, &idx, 20)) != MP_ECLOSED) {
            CHECK(idx < N && !seen[idx]);
            seen[idx] = true;
            if (!unordered) CHECK_EQ(idx, got);
            got++;
            if (idx == 13) {
                CHECK_EQ(rc, MP_ETASK);
                CHECK_EQ(mp_imap_code(it), 7);
                CHECK(buf == NULL);
            } else if (idx == 17) {
                CHECK_EQ(rc, MP_ETOOBIG);
                CHECK_EQ(len, 1201); /* what the task asked for */
                CHECK(buf == NULL);
            } else {
                CHECK_EQ(rc, MP_OK);
                CHECK(buf != NULL);
                check_repeat((int64_t)idx, (const char *)buf, len);
                free(buf);
            }
        }
        CHECK_EQ(got, N);
        /* a task map is read with the _alloc variant only */
        int64_t one;
        CHECK_EQ(mp_imap_next(it, &one, NULL, 0), MP_EINVAL);
        mp_imap_destroy(it);
        CHECK_EQ(blocks_now(), base); /* every result block was given back */
    }
    /* destroyed before reading: the results not read are freed */
    mp_map_desc d = {NULL, in, sizeof in[0], NULL, 0, N, 0, false, NULL, NULL, NULL,
                     repeat_str, 0};
    mp_imap *it = mp_pool_imap(p, &d);
    CHECK(it != NULL);
    void *buf;
    size_t len;
    CHECK_EQ(mp_imap_next_alloc(it, &buf, &len, NULL, 20), MP_OK); /* index 0: empty */
    CHECK_EQ(len, 0);
    CHECK(buf != NULL);
    free(buf);
    mp_imap_destroy(it);
    CHECK_EQ(blocks_now(), base);

    /* a fixed-size map read through _alloc */
    mp_map_desc bad = d;
    bad.fn = NULL, bad.task = NULL;
    CHECK(mp_pool_imap(p, &bad) == NULL);
    CHECK_EQ(errno, EINVAL);
    bad.task = repeat_str, bad.max_result = ((size_t)1 << 30) + 1;
    CHECK(mp_pool_imap(p, &bad) == NULL);
    CHECK_EQ(errno, EINVAL);
    bad.max_result = 0;
    CHECK_EQ(mp_pool_map(p, &bad), MP_EINVAL); /* task: imap only */
    CHECK(mp_pool_map_async(p, &bad) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_imap_next_alloc(NULL, &buf, &len, NULL, 0), MP_EINVAL);
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 30), MP_OK);
    mp_pool_destroy(p);
}

static int square64(const void *in, void *out) {
    int64_t x = *(const int64_t *)in;
    *(int64_t *)out = x * x;
    return x == 77 ? 5 : 0;
}

TEST(fluency_imap_next_alloc_on_a_fixed_size_map) {
    mp_pool_desc pd = {2, NULL, NULL, 0, 0, 0, 0};
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    int64_t in[100];
    for (int k = 0; k < 100; k++) in[k] = k;
    mp_map_desc d = {square64, in, 8, NULL, 8, 100, 0, false, NULL, NULL, NULL, NULL, 0};
    mp_imap *it = mp_pool_imap(p, &d);
    CHECK(it != NULL);
    void *buf;
    size_t len, idx;
    for (int k = 0; k < 100; k++) {
        int rc = mp_imap_next_alloc(it, &buf, &len, &idx, 20);
        CHECK_EQ(idx, (size_t)k);
        if (k == 77) {
            CHECK_EQ(rc, MP_ETASK);
            CHECK_EQ(mp_imap_code(it), 5);
            continue;
        }
        CHECK_EQ(rc, MP_OK);
        CHECK_EQ(len, 8);
        CHECK_EQ(*(int64_t *)buf, (int64_t)k * k);
        free(buf);
    }
    CHECK_EQ(mp_imap_next_alloc(it, &buf, &len, &idx, 0), MP_ECLOSED);
    mp_imap_destroy(it);
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 30), MP_OK);
    mp_pool_destroy(p);
}

/* A worker SIGKILLed while it holds result blocks: its chunk fails, nothing wedges and,
   once the iterator is gone, no more than the block in flight is lost. */
static int die_at_50(const void *arg, size_t arg_len, void *res, size_t *len) {
    int64_t x;
    memcpy(&x, arg, sizeof x);
    if (x == 50) raise(SIGKILL);
    return repeat_str(arg, arg_len, res, len);
}

TEST(fluency_imap_task_worker_killed) {
    mp_pool_desc pd = {2, NULL, NULL, 0, 0, 0, 0};
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    size_t base = blocks_now();
    int64_t in[120];
    for (int k = 0; k < 120; k++) in[k] = k;
    mp_map_desc d = {NULL, in, 8, NULL, 0, 120, 10, false, NULL, NULL, NULL, die_at_50, 0};
    mp_imap *it = mp_pool_imap(p, &d);
    CHECK(it != NULL);
    void *buf;
    size_t len, idx;
    int rc, died = 0;
    while ((rc = mp_imap_next_alloc(it, &buf, &len, &idx, 20)) != MP_ECLOSED) {
        if (idx >= 50 && idx < 60) {
            CHECK_EQ(rc, MP_EWORKERDIED);
            CHECK_EQ(mp_imap_code(it), -SIGKILL);
            died++;
        } else if (idx != 13 && idx != 17) {
            CHECK_EQ(rc, MP_OK);
            check_repeat((int64_t)idx, (const char *)buf, len);
            free(buf);
        }
    }
    CHECK_EQ(died, 10);
    mp_imap_destroy(it);
    CHECK_EQ(blocks_now(), base); /* the dead worker's stored results were freed too */
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 30), MP_OK);
    mp_pool_destroy(p);
}

/* ---- map_async, apply, wait_any ---- */

static int slow_square(const void *in, void *out) {
    int64_t x = *(const int64_t *)in;
    if (x == 0) usleep(500000);
    *(int64_t *)out = x * x;
    return x == 333 ? 9 : 0;
}

typedef struct {
    size_t calls, last;
} prog_seen;

static void count_progress(size_t done, size_t total, void *arg) {
    prog_seen *s = (prog_seen *)arg;
    CHECK(done >= s->last && done <= total);
    s->calls++, s->last = done;
}

TEST(fluency_map_async_results_land_in_out) {
    mp_pool_desc pd = {2, NULL, NULL, 0, 0, 0, 0};
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    enum { N = 1000 };
    int64_t *in = (int64_t *)malloc(N * sizeof *in), *out = (int64_t *)calloc(N, sizeof *out);
    for (int k = 0; k < N; k++) in[k] = k;
    mp_map_failure f;
    prog_seen ps = {0, 0};
    mp_async *r;
    {
        mp_map_desc d = {slow_square, in, 8, out, 8, N, 50, false, count_progress, &ps, &f,
                         NULL, 0};
        r = mp_pool_map_async(p, &d);
        CHECK(r != NULL);
    } /* d is gone: the handle kept a copy */
    memset(in, 0xff, N * sizeof *in); /* the input was copied at the call */
    CHECK(!mp_async_ready(r)); /* item 0 sleeps 500 ms */
    CHECK_EQ(mp_async_wait(r, 0.01), MP_ETIMEDOUT);
    CHECK_EQ(out[1], 0); /* not delivered before the handle finished */
    size_t len = 0;
    CHECK_EQ(mp_async_get(r, NULL, 0, &len, 30), MP_ETASK);
    CHECK_EQ(len, N * sizeof(int64_t));
    CHECK_EQ(mp_async_code(r), 9);
    CHECK_EQ(f.index, 333);
    CHECK_EQ(f.failed, 1);
    CHECK(!mp_async_successful(r));
    for (int k = 0; k < N; k++) CHECK_EQ(out[k], (int64_t)k * k);
    CHECK_EQ(ps.last, N);
    CHECK_EQ(mp_async_get(r, NULL, 0, NULL, 0), MP_ETASK); /* repeatable */
    mp_async_destroy(r);

    /* n == 0: done at once */
    mp_map_desc z = {slow_square, in, 8, out, 8, 0, 0, false, NULL, NULL, NULL, NULL, 0};
    r = mp_pool_map_async(p, &z);
    CHECK(r != NULL && mp_async_ready(r) && mp_async_successful(r));
    mp_async_destroy(r);

    /* destroyed unfinished: out untouched, pool still fine */
    for (int k = 0; k < N; k++) in[k] = k, out[k] = -1;
    mp_map_desc d2 = {slow_square, in, 8, out, 8, N, 1, false, NULL, NULL, NULL, NULL, 0};
    r = mp_pool_map_async(p, &d2);
    CHECK(r != NULL);
    mp_async_destroy(r);
    for (int k = 0; k < N; k++) CHECK_EQ(out[k], -1);
    mp_map_desc d3 = {square64, in, 8, out, 8, 10, 0, false, NULL, NULL, NULL, NULL, 0};
    CHECK_EQ(mp_pool_map(p, &d3), MP_OK);
    CHECK_EQ(out[9], 81);
    mp_pool_close(p);
    CHECK(mp_pool_map_async(p, &d3) == NULL); /* closed */
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_pool_join(p, 30), MP_OK);
    mp_pool_destroy(p);
    free(in);
    free(out);
}

static int sleep_ms_task(const void *arg, size_t arg_len, void *res, size_t *len) {
    int ms;
    if (arg_len != sizeof ms) return 1;
    memcpy(&ms, arg, sizeof ms);
    if (ms == 666) raise(SIGKILL);
    usleep((useconds_t)ms * 1000);
    memcpy(res, &ms, sizeof ms);
    *len = sizeof ms;
    return ms == 13 ? 4 : 0;
}

TEST(fluency_wait_any_as_completed) {
    mp_pool_desc pd = {3, NULL, NULL, 0, 0, 0, 0};
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    int ms[3] = {1500, 50, 700};
    mp_async *rs[3];
    for (int k = 0; k < 3; k++) CHECK((rs[k] = mp_pool_apply_async(p, sleep_ms_task, &ms[k], sizeof(int))) != NULL);
    CHECK_EQ(mp_async_wait_any(rs, 3, 0), MP_ETIMEDOUT);
    /* as_completed: fastest first */
    mp_async *left[3] = {rs[0], rs[1], rs[2]};
    size_t n = 3;
    int order[3], got = 0;
    while (n) {
        int i = mp_async_wait_any(left, n, 30);
        CHECK(i >= 0 && (size_t)i < n);
        int v = 0;
        CHECK_EQ(mp_async_get(left[i], &v, sizeof v, NULL, 0), MP_OK);
        order[got++] = v;
        left[i] = left[--n];
    }
    CHECK_EQ(order[0], 50);
    CHECK_EQ(order[1], 700);
    CHECK_EQ(order[2], 1500);
    CHECK_EQ(mp_async_wait_any(rs, 3, 0), 0); /* all finished: the lowest index */
    for (int k = 0; k < 3; k++) mp_async_destroy(rs[k]);

    /* a map handle and an apply handle in one set */
    int64_t in[4] = {1, 2, 3, 4}, out[4] = {0};
    mp_map_desc d = {square64, in, 8, out, 8, 4, 0, false, NULL, NULL, NULL, NULL, 0};
    int slow = 400;
    mp_async *mix[2] = {mp_pool_apply_async(p, sleep_ms_task, &slow, sizeof slow),
                        mp_pool_map_async(p, &d)};
    CHECK(mix[0] && mix[1]);
    CHECK_EQ(mp_async_wait_any(mix, 2, 30), 1);
    CHECK_EQ(out[3], 16); /* settled by wait_any */
    for (int k = 0; k < 2; k++) mp_async_destroy(mix[k]);

    /* bad input */
    CHECK_EQ(mp_async_wait_any(NULL, 1, 0), MP_EINVAL);
    CHECK_EQ(mp_async_wait_any(rs, 0, 0), MP_EINVAL);
    mp_async *holes[2] = {NULL, NULL};
    CHECK_EQ(mp_async_wait_any(holes, 2, 0), MP_EINVAL);

    /* apply: blocking, codes passed through */
    int v = 0, thirteen = 13, twenty = 20;
    size_t len = 0;
    CHECK_EQ(mp_pool_apply(p, sleep_ms_task, &twenty, sizeof twenty, &v, sizeof v, &len), MP_OK);
    CHECK_EQ(v, 20);
    CHECK_EQ(len, sizeof v);
    CHECK_EQ(mp_pool_apply(p, sleep_ms_task, &thirteen, sizeof thirteen, &v, sizeof v, NULL),
             MP_ETASK);
    CHECK_EQ(mp_pool_apply(p, sleep_ms_task, &twenty, sizeof twenty, &v, 2, &len), MP_ETOOBIG);
    CHECK_EQ(len, sizeof v);
    CHECK_EQ(mp_pool_apply(p, NULL, NULL, 0, NULL, 0, NULL), MP_EINVAL);
    CHECK_EQ(mp_pool_apply(p, sleep_ms_task, &twenty, sizeof twenty, NULL, 4, NULL), MP_EINVAL);
    mp_pool_close(p);
    CHECK_EQ(mp_pool_apply(p, sleep_ms_task, &twenty, sizeof twenty, &v, sizeof v, NULL),
             MP_EINVAL);
    CHECK_EQ(mp_pool_join(p, 30), MP_OK);
    mp_pool_destroy(p);
}

TEST(fluency_wait_any_across_pools_and_dead_workers) {
    mp_pool_desc pd = {1, NULL, NULL, 0, 0, 0, 0};
    mp_pool *a = mp_pool_create(&pd), *b = mp_pool_create(&pd);
    CHECK(a && b);
    int slow = 30000, fast = 100, die = 666; /* slow: never finishes before terminate */
    mp_async *rs[2] = {mp_pool_apply_async(a, sleep_ms_task, &slow, sizeof slow),
                       mp_pool_apply_async(b, sleep_ms_task, &fast, sizeof fast)};
    CHECK_EQ(mp_async_wait_any(rs, 2, 25), 1);
    CHECK(!mp_async_ready(rs[0]));
    mp_async_destroy(rs[1]);
    /* the caller sleeps on pool a; pool b's worker dies: seen all the same */
    rs[1] = mp_pool_apply_async(b, sleep_ms_task, &die, sizeof die);
    CHECK_EQ(mp_async_wait_any(rs, 2, 25), 1);
    CHECK_EQ(mp_async_get(rs[1], NULL, 0, NULL, 0), MP_EWORKERDIED);
    CHECK_EQ(mp_async_code(rs[1]), -SIGKILL);
    CHECK_EQ(mp_async_wait_any(rs, 1, 0), MP_ETIMEDOUT);
    mp_pool_terminate(a); /* the slow one ends cancelled: finished all the same */
    CHECK_EQ(mp_async_wait_any(rs, 1, 10), 0);
    CHECK_EQ(mp_async_get(rs[0], NULL, 0, NULL, 0), MP_ECANCELLED);
    for (int k = 0; k < 2; k++) mp_async_destroy(rs[k]);
    mp_pool_destroy(a);
    mp_pool_close(b);
    CHECK_EQ(mp_pool_join(b, 30), MP_OK);
    mp_pool_destroy(b);
}

static int not_owner_async(void *arg) {
    mp_async *r = (mp_async *)arg;
    mp_async *one[1] = {r};
    if (mp_async_wait(r, 0) != MP_EPERM) return 1;
    if (mp_async_get(r, NULL, 0, NULL, 0) != MP_EPERM) return 2;
    if (mp_async_wait_any(one, 1, 0) != MP_EPERM) return 3;
    return 0;
}

TEST(fluency_async_from_a_non_owner_is_eperm) {
    mp_pool_desc pd = {1, NULL, NULL, 0, 0, 0, 0};
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    int slow = 500;
    mp_async *r = mp_pool_apply_async(p, sleep_ms_task, &slow, sizeof slow);
    CHECK(r != NULL);
    int st = t_wait(t_fork(not_owner_async, r));
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    CHECK_EQ(mp_async_wait(r, 30), MP_OK);
    mp_async_destroy(r);
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 30), MP_OK);
    mp_pool_destroy(p);
}

/* ---- mp_realloc ---- */

static int grow_in_child(void *arg) {
    char **slot = (char **)arg;
    char *b = (char *)mp_realloc(*slot, 100000);
    if (!b) return 1;
    for (int k = 0; k < 100; k++)
        if (b[k] != (char)k) return 2;
    memset(b + 100, 'x', 100000 - 100);
    *slot = b; /* the parent reads the moved block */
    return 0;
}

TEST(fluency_realloc_shared_heap) {
    size_t base = blocks_now();
    char *b = (char *)mp_realloc(NULL, 100); /* NULL: alloc */
    CHECK(b != NULL);
    CHECK_EQ(blocks_now(), base + 1);
    for (int k = 0; k < 100; k++) b[k] = (char)k;
    CHECK(mp_realloc(b, 50) == b);  /* shrink: in place */
    CHECK(mp_realloc(b, 100) == b); /* back within the class: in place */
    CHECK(mp_realloc(b, 100 + 8) == b); /* class 128 holds 112 bytes */
    errno = 0;
    CHECK(mp_realloc(b, 0) == NULL); /* size 0: fails, b untouched */
    CHECK(errno != 0);
    CHECK_EQ(b[99], 99);
    mp_heap_stats hs;
    CHECK_EQ(mp_heap_stats_get(&hs), MP_OK);
    errno = 0;
    CHECK(mp_realloc(b, hs.size) == NULL); /* too big: b untouched */
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(b[50], 50);
    char x[16];
    errno = 0;
    CHECK(mp_realloc(x, 10) == NULL); /* not from the heap */
    CHECK_EQ(errno, EINVAL);
    /* grow in another process: the pointer and bytes carry over */
    char **slot = (char **)mp_alloc(sizeof(char *));
    *slot = b;
    mp_process_desc d = {grow_in_child, slot, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK_EQ(mp_process_start(p), MP_OK);
    CHECK_EQ(mp_process_join(p, 20), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), 0);
    mp_process_destroy(p);
    char *g = *slot;
    CHECK(g != b);
    for (int k = 0; k < 100; k++) CHECK_EQ(g[k], (char)k);
    CHECK_EQ(g[99999], 'x');
    CHECK(mp_realloc(b, 10) == NULL); /* the old block was freed by the move */
    CHECK_EQ(errno, EINVAL);
    mp_free(g);
    mp_free(slot);
    CHECK_EQ(blocks_now(), base);
}

/* ---- the unbounded queue ---- */

typedef struct {
    uint32_t producer, seq, len, pad_;
} uq_hdr;

static size_t uq_len(uint32_t seq) { return sizeof(uq_hdr) + (seq % 7 == 0 ? 1000 : seq % 50); }

static void uq_make(unsigned char *buf, uint32_t producer, uint32_t seq) {
    uq_hdr h = {producer, seq, (uint32_t)uq_len(seq), 0};
    memcpy(buf, &h, sizeof h);
    for (size_t i = sizeof h; i < h.len; i++) buf[i] = (unsigned char)(seq * 31 + i);
}

static bool uq_check(const unsigned char *buf, size_t len, uq_hdr *h) {
    if (len < sizeof *h) return false;
    memcpy(h, buf, sizeof *h);
    if (h->len != len || uq_len(h->seq) != len) return false;
    for (size_t i = sizeof *h; i < len; i++)
        if (buf[i] != (unsigned char)(h->seq * 31 + i)) return false;
    return true;
}

TEST(fluency_queue_unbounded_by_default) {
    size_t base = blocks_now();
    mp_queue *q = mp_queue_create(NULL);
    CHECK(q != NULL);
    enum { N = 60000 }; /* far above the 4096 slots of the ring */
    unsigned char buf[2048];
    for (uint32_t i = 0; i < N; i++) {
        uq_make(buf, 0, i);
        CHECK_EQ(mp_queue_put(q, buf, uq_len(i), 0), MP_OK); /* never full */
    }
    CHECK_EQ(mp_queue_qsize(q), N);
    CHECK(!mp_queue_full(q));
    /* reserve waits while messages are in the overflow: its slot must not pass them */
    mp_queue_msg m;
    CHECK_EQ(mp_queue_reserve(q, 8, &m, 0), MP_ETIMEDOUT);
    CHECK_EQ(mp_queue_reserve(q, 8, &m, 0.05), MP_ETIMEDOUT);
    for (uint32_t i = 0; i < N; i++) {
        size_t len;
        uq_hdr h;
        CHECK_EQ(mp_queue_get(q, buf, sizeof buf, &len, 0), MP_OK);
        CHECK(uq_check(buf, len, &h));
        CHECK_EQ(h.seq, i); /* FIFO across ring and overflow */
        if (i == N / 2) { /* a put in the middle goes behind everything held */
            uq_make(buf, 1, 0);
            CHECK_EQ(mp_queue_put(q, buf, uq_len(0), 0), MP_OK);
        }
    }
    size_t len;
    uq_hdr h;
    CHECK_EQ(mp_queue_get(q, buf, sizeof buf, &len, 0), MP_OK);
    CHECK(uq_check(buf, len, &h) && h.producer == 1);
    CHECK_EQ(mp_queue_get(q, buf, sizeof buf, &len, 0), MP_ETIMEDOUT);
    CHECK_EQ(mp_queue_reserve(q, 8, &m, 0), MP_OK); /* drained: reserve works again */
    memcpy(m.data, "reserved", 8);
    CHECK_EQ(mp_queue_commit(q, &m), MP_OK);
    CHECK_EQ(mp_queue_get(q, buf, sizeof buf, &len, 0), MP_OK);
    CHECK(len == 8 && memcmp(buf, "reserved", 8) == 0);
    /* zeroed desc: unbounded too; any non-zero field: bounded as before */
    mp_queue_desc zero = {0, 0}, bounded = {4, 0}, capped = {0, 4096};
    mp_queue *z = mp_queue_create(&zero), *b = mp_queue_create(&bounded),
             *c = mp_queue_create(&capped);
    CHECK(z && b && c);
    for (int i = 0; i < 5000; i++) CHECK_EQ(mp_queue_put(z, "x", 1, 0), MP_OK);
    for (int i = 0; i < 4; i++) CHECK_EQ(mp_queue_put(b, "x", 1, 0), MP_OK);
    CHECK_EQ(mp_queue_put(b, "x", 1, 0), MP_ETIMEDOUT);
    CHECK(mp_queue_full(b));
    for (int i = 0; i < 16; i++) CHECK_EQ(mp_queue_put(c, "x", 1, 0), MP_OK);
    CHECK_EQ(mp_queue_put(c, "x", 1, 0), MP_ETIMEDOUT);
    mp_queue_destroy(z); /* with 5000 - 4096 messages in the overflow: all freed */
    mp_queue_destroy(b);
    mp_queue_destroy(c);
    mp_queue_destroy(q);
    CHECK_EQ(blocks_now(), base);
}

TEST(fluency_queue_unbounded_close_and_join_see_the_overflow) {
    mp_queue *q = mp_queue_create(NULL);
    CHECK(q != NULL);
    for (uint32_t i = 0; i < 10000; i++) CHECK_EQ(mp_queue_put(q, &i, sizeof i, 0), MP_OK);
    CHECK_EQ(mp_queue_join(q, 0.01), MP_ETIMEDOUT);
    mp_queue_close(q);
    CHECK_EQ(mp_queue_put(q, "x", 1, 0), MP_ECLOSED);
    uint32_t v, n = 0;
    size_t len;
    int rc;
    while ((rc = mp_queue_get(q, &v, sizeof v, &len, 1)) == MP_OK) {
        CHECK_EQ(v, n);
        n++;
        CHECK_EQ(mp_queue_task_done(q), MP_OK);
        if (n < 10000) CHECK_EQ(mp_queue_join(q, 0), MP_ETIMEDOUT);
    }
    CHECK_EQ(rc, MP_ECLOSED);
    CHECK_EQ(n, 10000);
    CHECK_EQ(mp_queue_join(q, 0), MP_OK);
    mp_queue_destroy(q);
}

/* Producers in other processes overflow the ring; consumers in others drain it: every
   message exactly once, in order per producer for each consumer. */
enum { UQ_NP = 2, UQ_NC = 2, UQ_N = 40000 };

typedef struct {
    mp_queue *q;
    uint8_t seen[UQ_NP][UQ_N];
    uint32_t bad;
    uint64_t max_held;
} uq_state;

typedef struct {
    uq_state *s;
    uint32_t id;
} uq_arg;

static int uq_producer(void *arg) {
    uq_state *s = ((uq_arg *)arg)->s;
    uint32_t id = ((uq_arg *)arg)->id;
    unsigned char buf[2048];
    for (uint32_t i = 0; i < UQ_N; i++) {
        uq_make(buf, id, i);
        if (mp_queue_put(s->q, buf, uq_len(i), MP_FOREVER) != MP_OK) return 1;
        size_t held = mp_queue_qsize(s->q);
        if (held > s->max_held) s->max_held = held; /* racy: a hint for the report */
    }
    return 0;
}

static int uq_consumer(void *arg) {
    uq_state *s = ((uq_arg *)arg)->s;
    unsigned char buf[2048];
    int64_t last[UQ_NP] = {-1, -1};
    size_t len;
    usleep(100000); /* let the producers run ahead, into the overflow */
    int rc;
    while ((rc = mp_queue_get(s->q, buf, sizeof buf, &len, MP_FOREVER)) == MP_OK) {
        uq_hdr h;
        if (!uq_check(buf, len, &h) || h.producer >= UQ_NP || h.seq >= UQ_N ||
            (int64_t)h.seq <= last[h.producer]) {
            s->bad = 1;
            return 2;
        }
        last[h.producer] = h.seq;
        __atomic_fetch_add(&s->seen[h.producer][h.seq], 1, __ATOMIC_SEQ_CST);
    }
    return rc == MP_ECLOSED ? 0 : 3;
}

TEST(fluency_queue_unbounded_across_processes_exactly_once) {
    uq_state *s = (uq_state *)mp_calloc(1, sizeof *s);
    CHECK(s && (s->q = mp_queue_create(NULL)) != NULL);
    mp_process *ps[UQ_NP + UQ_NC];
    for (int i = 0; i < UQ_NP + UQ_NC; i++) {
        uq_arg a = {s, (uint32_t)i};
        mp_process_desc d = {i < UQ_NP ? uq_producer : uq_consumer, &a, NULL, false, sizeof a, 0};
        CHECK((ps[i] = mp_process_create(&d)) != NULL);
        CHECK_EQ(mp_process_start(ps[i]), MP_OK);
    }
    for (int i = 0; i < UQ_NP; i++) {
        CHECK_EQ(mp_process_join(ps[i], 60), MP_OK);
        CHECK_EQ(mp_process_exitcode(ps[i]), 0);
    }
    mp_queue_close(s->q);
    for (int i = UQ_NP; i < UQ_NP + UQ_NC; i++) {
        CHECK_EQ(mp_process_join(ps[i], 60), MP_OK);
        CHECK_EQ(mp_process_exitcode(ps[i]), 0);
    }
    for (int i = 0; i < UQ_NP + UQ_NC; i++) mp_process_destroy(ps[i]);
    CHECK_EQ(s->bad, 0);
    for (int p = 0; p < UQ_NP; p++)
        for (int i = 0; i < UQ_N; i++) CHECK_EQ(s->seen[p][i], 1);
    CHECK(s->max_held > 4096); /* it did overflow */
    mp_queue_destroy(s->q);
    mp_free(s);
}

TEST(fluency_queue_unbounded_fails_only_when_the_heap_is_full) {
    mp_config c;
    memset(&c, 0, sizeof c);
    c.heap_size = 8 << 20;
    CHECK_EQ(mp_init(&c), MP_OK);
    mp_queue *q = mp_queue_create(NULL);
    CHECK(q != NULL);
    static char msg[1000];
    size_t n = 0;
    int rc;
    while ((rc = mp_queue_put(q, msg, sizeof msg, 0)) == MP_OK) n++;
    CHECK_EQ(rc, MP_ENOMEM); /* never MP_ETIMEDOUT */
    CHECK(n > 4096);
    CHECK_EQ(mp_queue_qsize(q), n);
    size_t len;
    for (size_t i = 0; i < n; i++) CHECK_EQ(mp_queue_get(q, msg, sizeof msg, &len, 0), MP_OK);
    CHECK_EQ(mp_queue_get(q, msg, sizeof msg, &len, 0), MP_ETIMEDOUT);
    CHECK_EQ(mp_queue_put(q, msg, sizeof msg, 0), MP_OK); /* room again */
    mp_queue_destroy(q);
}

/* close while producers are overflowing: every put that returned MP_OK is got once, a
   put that failed with MP_ECLOSED never arrives. */
enum { UC_NP = 2, UC_MAX = 1000000 };

typedef struct {
    mp_queue *q;
    uint32_t ok_puts[UC_NP];
    uint8_t seen[UC_NP][UC_MAX];
    uint32_t bad;
} uc_state;

static uc_state *uc_g;

static int uc_producer(void *arg) {
    uint32_t id = *(const uint32_t *)arg;
    for (uint32_t seq = 0; seq < UC_MAX; seq++) {
        uint32_t m[2] = {id, seq};
        int r = mp_queue_put(uc_g->q, m, sizeof m, MP_FOREVER);
        if (r == MP_ECLOSED) return 0;
        if (r != MP_OK) return 1;
        __atomic_store_n(&uc_g->ok_puts[id], seq + 1, __ATOMIC_RELEASE);
    }
    return 3;
}

static int uc_consumer(void *arg) {
    (void)arg;
    uint32_t m[2];
    size_t len;
    int r;
    while ((r = mp_queue_get(uc_g->q, m, sizeof m, &len, MP_FOREVER)) == MP_OK) {
        if (m[0] >= UC_NP || m[1] >= UC_MAX) uc_g->bad = 1;
        else __atomic_fetch_add(&uc_g->seen[m[0]][m[1]], 1, __ATOMIC_RELAXED);
        for (volatile int k = 0; k < 200; k++) {} /* slower than the producers */
    }
    return r == MP_ECLOSED ? 0 : 1;
}

TEST(fluency_queue_unbounded_close_racing_with_overflowing_puts) {
    for (int round = 0; round < 6; round++) {
        uc_g = (uc_state *)mp_calloc(1, sizeof *uc_g);
        CHECK(uc_g && (uc_g->q = mp_queue_create(NULL)) != NULL);
        mp_process *p[UC_NP + 2];
        for (uint32_t i = 0; i < UC_NP + 2; i++) {
            mp_process_desc d = {i < UC_NP ? uc_producer : uc_consumer, &i, NULL, false,
                                 sizeof i, 0};
            CHECK((p[i] = mp_process_create(&d)) != NULL);
            CHECK_EQ(mp_process_start(p[i]), MP_OK);
        }
        usleep(20000 + (useconds_t)round * 15000);
        size_t held = mp_queue_qsize(uc_g->q);
        mp_queue_close(uc_g->q);
        for (int i = 0; i < UC_NP + 2; i++) {
            CHECK_EQ(mp_process_join(p[i], 60), MP_OK);
            CHECK_EQ(mp_process_exitcode(p[i]), 0);
            mp_process_destroy(p[i]);
        }
        CHECK_EQ(uc_g->bad, 0);
        for (uint32_t id = 0; id < UC_NP; id++) {
            uint32_t n = uc_g->ok_puts[id];
            for (uint32_t s = 0; s <= n && s < UC_MAX; s++)
                if (uc_g->seen[id][s] != (s < n)) CHECK_EQ(uc_g->seen[id][s], s < n);
        }
        if (round == 5) printf("     %zu held when closed (the ring has 4096 slots)\n", held);
        mp_queue_destroy(uc_g->q);
        mp_free(uc_g);
    }
}

/* A reader dies holding a ring slot while messages wait in the overflow; the queue is
   then closed: the survivors recover the slot and still get every message, in order,
   before MP_ECLOSED. */
static int claim_and_die(void *arg) {
    mp_queue_msg m;
    if (mp_queue_claim((mp_queue *)arg, &m, 10) != MP_OK) return 1;
    raise(SIGKILL); /* never released */
    return 2;
}

TEST(fluency_queue_unbounded_close_with_overflow_behind_a_dead_readers_slot) {
    mp_queue *q = mp_queue_create(NULL);
    CHECK(q != NULL);
    enum { N = 4096 + 100 };
    for (uint32_t i = 0; i < N; i++) CHECK_EQ(mp_queue_put(q, &i, sizeof i, 0), MP_OK);
    mp_process_desc d = {claim_and_die, q, NULL, false, 0, 0};
    mp_process *p = mp_process_create(&d);
    CHECK_EQ(mp_process_start(p), MP_OK);
    CHECK_EQ(mp_process_join(p, 20), MP_OK);
    CHECK_EQ(mp_process_exitcode(p), -SIGKILL);
    mp_process_destroy(p);
    uint32_t v, next = 1; /* message 0 died with its reader */
    size_t len;
    for (int i = 0; i < 4095; i++) { /* the ring's part; the overflow refills behind */
        CHECK_EQ(mp_queue_get(q, &v, sizeof v, &len, 10), MP_OK);
        CHECK_EQ(v, next++);
    }
    mp_queue_close(q);
    int rc;
    while ((rc = mp_queue_get(q, &v, sizeof v, &len, 10)) == MP_OK) CHECK_EQ(v, next++);
    CHECK_EQ(rc, MP_ECLOSED);
    CHECK_EQ(next, N); /* none lost but the dead reader's own */
    mp_queue_destroy(q);
}

static int nap_item(const void *in, void *out) {
    usleep(20000);
    *(int64_t *)out = *(const int64_t *)in;
    return 0;
}

TEST(fluency_map_async_outlives_a_terminated_pool) {
    size_t base = blocks_now();
    mp_pool_desc pd = {2, NULL, NULL, 0, 0, 0, 0};
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    int64_t in[200], out[200];
    for (int k = 0; k < 200; k++) in[k] = k;
    mp_map_failure f;
    mp_map_desc d = {nap_item, in, 8, out, 8, 200, 1, false, NULL, NULL, &f, NULL, 0};
    mp_async *r = mp_pool_map_async(p, &d);
    CHECK(r != NULL);
    usleep(50000);
    mp_pool_destroy(p); /* terminates: the chunks not done are cancelled */
    CHECK(mp_async_ready(r));
    CHECK_EQ(mp_async_get(r, NULL, 0, NULL, 0), MP_ECANCELLED);
    CHECK(f.failed > 0 && f.failed < 200);
    CHECK_EQ(f.rc, MP_ECANCELLED);
    for (size_t k = 0; k < f.index; k++) CHECK_EQ(out[k], (int64_t)k); /* done before */
    mp_async_destroy(r);
    CHECK_EQ(blocks_now(), base);
}

static void *wait_map(void *arg) {
    return (void *)(intptr_t)mp_async_get((mp_async *)arg, NULL, 0, NULL, 30);
}

/* Progress from several waiting threads: one call at a time, counts never go back,
   and the last says done == total. The nap widens the window two calls could share. */
typedef struct {
    int inside, overlapped, backwards;
    size_t last, total;
} shared_prog;

static void shared_progress(size_t done, size_t total, void *arg) {
    shared_prog *s = (shared_prog *)arg;
    if (__atomic_add_fetch(&s->inside, 1, __ATOMIC_SEQ_CST) > 1)
        __atomic_store_n(&s->overlapped, 1, __ATOMIC_SEQ_CST);
    if (done < s->last) s->backwards = 1;
    s->last = done, s->total = total;
    usleep(200);
    __atomic_sub_fetch(&s->inside, 1, __ATOMIC_SEQ_CST);
}

static int napping_square64(const void *in, void *out) {
    usleep(200); /* the waiting threads meet in the progress count */
    return square64(in, out);
}

TEST(fluency_map_async_waited_on_by_several_threads) {
    mp_pool_desc pd = {2, NULL, NULL, 0, 0, 0, 0};
    mp_pool *p = mp_pool_create(&pd);
    CHECK(p != NULL);
    size_t base = blocks_now();
    int64_t in[300], out[300];
    for (int k = 0; k < 300; k++) in[k] = k;
    for (int round = 0; round < 10; round++) {
        memset(out, 0, sizeof out);
        shared_prog sp = {0, 0, 0, 0, 0};
        mp_map_desc d = {napping_square64, in, 8, out, 8, 300, 7, false, shared_progress, &sp, NULL,
                         NULL, 0};
        mp_async *r = mp_pool_map_async(p, &d);
        CHECK(r != NULL);
        pthread_t th[3];
        for (int k = 0; k < 3; k++) CHECK(pthread_create(&th[k], NULL, wait_map, r) == 0);
        int rc = mp_async_get(r, NULL, 0, NULL, 30);
        for (int k = 0; k < 3; k++) {
            void *res;
            pthread_join(th[k], &res);
            CHECK_EQ((int)(intptr_t)res, MP_ETASK); /* item 77 fails, code 5 */
        }
        CHECK_EQ(rc, MP_ETASK);
        CHECK_EQ(mp_async_code(r), 5);
        for (int k = 0; k < 300; k++) CHECK_EQ(out[k], (int64_t)k * k);
        CHECK_EQ(sp.overlapped, 0);
        CHECK_EQ(sp.backwards, 0);
        CHECK_EQ(sp.last, 300);
        CHECK_EQ(sp.total, 300);
        mp_async_destroy(r);
    }
    CHECK_EQ(blocks_now(), base);
    mp_pool_close(p);
    CHECK_EQ(mp_pool_join(p, 30), MP_OK);
    mp_pool_destroy(p);
}
