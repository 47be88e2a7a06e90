/* The shared dict and list: one behaviour body run against a local container (in the
   shared heap) and a served one (a Manager's), the exactly-once hammer across processes
   and threads, and a SIGKILL loop during updates. */
#define _GNU_SOURCE
#include "test.h"
#include "test_dict.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the environments: where a container comes from ---- */

static mp_dict *local_dict(c_env *e, const char *name) { (void)e, (void)name; return mp_dict_create(); }
static mp_list *local_list(c_env *e, const char *name) { (void)e, (void)name; return mp_list_create(); }

c_env c_local = {"local", local_dict, local_list, NULL, true};

/* ---- the behaviour body ---- */

static int sum_fn(const void *k, size_t kl, const void *v, size_t vl, void *arg) {
    long *s = (long *)arg;
    long x = 0;
    CHECK_EQ(vl, sizeof x);
    memcpy(&x, v, sizeof x);
    s[0] += x;
    s[1] += (long)kl;
    (void)k;
    return 0;
}

static int stop_fn(const void *k, size_t kl, const void *v, size_t vl, void *arg) {
    (void)k, (void)kl, (void)v, (void)vl;
    return ++*(int *)arg == 3;
}

void c_dict_body(c_env *e) {
    mp_dict *d = e->dict(e, "body-dict");
    CHECK(d != NULL);
    char buf[64];
    size_t len = 99, n = 99;
    CHECK_EQ(mp_dict_get(d, "a", 1, buf, sizeof buf, &len), MP_ENOTFOUND);
    CHECK_EQ(mp_dict_del(d, "a", 1), MP_ENOTFOUND);
    CHECK_EQ(mp_dict_len(d, &n), MP_OK);
    CHECK_EQ(n, 0);
    CHECK_EQ(mp_dict_set(d, "a", 1, "one", 3), MP_OK);
    CHECK_EQ(mp_dict_get(d, "a", 1, buf, sizeof buf, &len), MP_OK);
    CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
    CHECK_EQ(mp_dict_set(d, "a", 1, "uno!", 4), MP_OK); /* overwrite */
    CHECK_EQ(mp_dict_get(d, "a", 1, buf, 2, &len), MP_ETOOBIG);
    CHECK_EQ(len, 4);
    CHECK_EQ(mp_dict_get(d, "a", 1, NULL, 0, &len), MP_ETOOBIG); /* asks the size */
    CHECK_EQ(len, 4);
    CHECK_EQ(mp_dict_get(d, "a", 1, buf, sizeof buf, &len), MP_OK);
    CHECK(len == 4 && memcmp(buf, "uno!", 4) == 0);
    CHECK_EQ(mp_dict_set(d, "", 0, "", 0), MP_OK); /* empty key and value */
    CHECK_EQ(mp_dict_get(d, "", 0, buf, sizeof buf, &len), MP_OK);
    CHECK_EQ(len, 0);
    CHECK_EQ(mp_dict_len(d, &n), MP_OK);
    CHECK_EQ(n, 2);
    CHECK_EQ(mp_dict_del(d, "", 0), MP_OK);
    CHECK_EQ(mp_dict_get(d, "", 0, buf, sizeof buf, &len), MP_ENOTFOUND);
    /* a large value (a heap block of its own) and get_alloc */
    size_t big = (size_t)1 << 20;
    char *v = (char *)malloc(big);
    for (size_t i = 0; i < big; i++) v[i] = (char)(i * 7);
    CHECK_EQ(mp_dict_set(d, "big", 3, v, big), MP_OK);
    void *out = NULL;
    CHECK_EQ(mp_dict_get_alloc(d, "big", 3, &out, &len), MP_OK);
    CHECK(len == big && memcmp(out, v, big) == 0);
    free(out);
    CHECK_EQ(mp_dict_get_alloc(d, "nope", 4, &out, &len), MP_ENOTFOUND);
    CHECK(out == NULL);
    free(v);
    CHECK_EQ(mp_dict_del(d, "big", 3), MP_OK);
    CHECK_EQ(mp_dict_del(d, "a", 1), MP_OK);
    /* growth: 3000 keys, then items as a snapshot */
    for (long i = 0; i < 3000; i++) {
        int kl = snprintf(buf, sizeof buf, "key-%ld", i);
        CHECK_EQ(mp_dict_set(d, buf, (size_t)kl, &i, sizeof i), MP_OK);
    }
    CHECK_EQ(mp_dict_len(d, &n), MP_OK);
    CHECK_EQ(n, 3000);
    long s[2] = {0, 0};
    CHECK_EQ(mp_dict_items(d, sum_fn, s), MP_OK);
    CHECK_EQ(s[0], 2999L * 3000 / 2);
    int calls = 0;
    CHECK_EQ(mp_dict_items(d, stop_fn, &calls), MP_OK);
    CHECK_EQ(calls, 3);
    for (long i = 0; i < 3000; i += 2) {
        int kl = snprintf(buf, sizeof buf, "key-%ld", i);
        CHECK_EQ(mp_dict_del(d, buf, (size_t)kl), MP_OK);
    }
    for (long i = 0; i < 3000; i++) {
        int kl = snprintf(buf, sizeof buf, "key-%ld", i);
        long x = -1;
        int rc = mp_dict_get(d, buf, (size_t)kl, &x, sizeof x, &len);
        CHECK_EQ(rc, i % 2 ? MP_OK : MP_ENOTFOUND);
        if (i % 2) CHECK_EQ(x, i);
    }
    CHECK_EQ(mp_dict_len(d, &n), MP_OK);
    CHECK_EQ(n, 1500);
    /* bad arguments */
    CHECK_EQ(mp_dict_set(d, NULL, 1, "x", 1), MP_EINVAL);
    CHECK_EQ(mp_dict_set(d, "x", 1, NULL, 1), MP_EINVAL);
    CHECK_EQ(mp_dict_get(d, "x", 1, buf, sizeof buf, NULL), MP_EINVAL);
    CHECK_EQ(mp_dict_items(d, NULL, NULL), MP_EINVAL);
    CHECK_EQ(mp_dict_set(NULL, "x", 1, "x", 1), MP_EINVAL);
    CHECK_EQ(mp_dict_len(NULL, &n), MP_EINVAL);
    mp_dict_destroy(d);
}

static int list_fn(const void *v, size_t vl, void *arg) {
    long *s = (long *)arg, x;
    CHECK_EQ(vl, sizeof x);
    memcpy(&x, v, sizeof x);
    CHECK_EQ(x, s[1]); /* in order */
    s[0] += x, s[1]++;
    return 0;
}

void c_list_body(c_env *e) {
    mp_list *l = e->list(e, "body-list");
    CHECK(l != NULL);
    char buf[64];
    size_t len = 0, n = 99;
    CHECK_EQ(mp_list_len(l, &n), MP_OK);
    CHECK_EQ(n, 0);
    CHECK_EQ(mp_list_get(l, 0, buf, sizeof buf, &len), MP_ENOTFOUND);
    CHECK_EQ(mp_list_get(l, -1, buf, sizeof buf, &len), MP_ENOTFOUND);
    CHECK_EQ(mp_list_pop(l, -1, buf, sizeof buf, &len), MP_ENOTFOUND);
    CHECK_EQ(mp_list_set(l, 0, "x", 1), MP_ENOTFOUND);
    CHECK_EQ(mp_list_append(l, "zero", 4), MP_OK);
    CHECK_EQ(mp_list_append(l, "one", 3), MP_OK);
    CHECK_EQ(mp_list_append(l, "", 0), MP_OK);
    CHECK_EQ(mp_list_get(l, 1, buf, sizeof buf, &len), MP_OK);
    CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
    CHECK_EQ(mp_list_get(l, -3, buf, sizeof buf, &len), MP_OK);
    CHECK(len == 4 && memcmp(buf, "zero", 4) == 0);
    CHECK_EQ(mp_list_get(l, -1, buf, sizeof buf, &len), MP_OK);
    CHECK_EQ(len, 0);
    CHECK_EQ(mp_list_get(l, 3, buf, sizeof buf, &len), MP_ENOTFOUND);
    CHECK_EQ(mp_list_get(l, -4, buf, sizeof buf, &len), MP_ENOTFOUND);
    CHECK_EQ(mp_list_get(l, 0, buf, 2, &len), MP_ETOOBIG);
    CHECK_EQ(len, 4);
    CHECK_EQ(mp_list_set(l, -2, "ONE!", 4), MP_OK);
    CHECK_EQ(mp_list_get(l, 1, buf, sizeof buf, &len), MP_OK);
    CHECK(len == 4 && memcmp(buf, "ONE!", 4) == 0);
    CHECK_EQ(mp_list_pop(l, 0, buf, 2, &len), MP_ETOOBIG); /* nothing removed */
    CHECK_EQ(mp_list_len(l, &n), MP_OK);
    CHECK_EQ(n, 3);
    CHECK_EQ(mp_list_pop(l, 0, buf, sizeof buf, &len), MP_OK); /* from the front */
    CHECK(len == 4 && memcmp(buf, "zero", 4) == 0);
    CHECK_EQ(mp_list_pop(l, -1, NULL, 0, NULL), MP_OK); /* the last, discarded */
    CHECK_EQ(mp_list_len(l, &n), MP_OK);
    CHECK_EQ(n, 1);
    void *out;
    CHECK_EQ(mp_list_get_alloc(l, 0, &out, &len), MP_OK);
    CHECK(len == 4 && memcmp(out, "ONE!", 4) == 0);
    free(out);
    CHECK_EQ(mp_list_pop(l, -1, buf, sizeof buf, &len), MP_OK);
    CHECK_EQ(mp_list_get_alloc(l, 0, &out, &len), MP_ENOTFOUND);
    /* growth, order, pops from the middle */
    for (long i = 0; i < 2000; i++) CHECK_EQ(mp_list_append(l, &i, sizeof i), MP_OK);
    long s[2] = {0, 0};
    CHECK_EQ(mp_list_items(l, list_fn, s), MP_OK);
    CHECK(s[0] == 1999L * 2000 / 2 && s[1] == 2000);
    long x;
    CHECK_EQ(mp_list_pop(l, 1000, &x, sizeof x, &len), MP_OK);
    CHECK_EQ(x, 1000);
    CHECK_EQ(mp_list_get(l, 1000, &x, sizeof x, &len), MP_OK);
    CHECK_EQ(x, 1001);
    CHECK_EQ(mp_list_get(l, -1, &x, sizeof x, &len), MP_OK);
    CHECK_EQ(x, 1999);
    CHECK_EQ(mp_list_len(l, &n), MP_OK);
    CHECK_EQ(n, 1999);
    size_t big = 300000;
    char *v = (char *)calloc(1, big);
    v[big - 1] = 42;
    CHECK_EQ(mp_list_set(l, 0, v, big), MP_OK);
    CHECK_EQ(mp_list_get_alloc(l, 0, &out, &len), MP_OK);
    CHECK(len == big && ((char *)out)[big - 1] == 42);
    free(out);
    free(v);
    CHECK_EQ(mp_list_append(NULL, "x", 1), MP_EINVAL);
    CHECK_EQ(mp_list_append(l, NULL, 1), MP_EINVAL);
    CHECK_EQ(mp_list_len(l, NULL), MP_EINVAL);
    CHECK_EQ(mp_list_items(l, NULL, NULL), MP_EINVAL);
    mp_list_destroy(l);
}

/* ---- exactly once: 4 processes x 2 threads on one dict and one list ---- */

#define H_PROCS 4
#define H_THREADS 2

typedef struct h_arg {
    mp_dict *d;
    mp_list *l;
    int proc, thread;
    long n;
} h_arg;

static void *h_thread(void *p) {
    h_arg *a = (h_arg *)p;
    char key[48];
    for (long i = 0; i < a->n; i++) {
        long v = ((long)a->proc << 40) | ((long)a->thread << 32) | i;
        int kl = snprintf(key, sizeof key, "p%d-t%d-%ld", a->proc, a->thread, i);
        if (mp_dict_set(a->d, key, (size_t)kl, &v, sizeof v) != MP_OK) return (void *)1;
        if (mp_list_append(a->l, &v, sizeof v) != MP_OK) return (void *)2;
        long got = 0;
        size_t len;
        if (mp_dict_get(a->d, key, (size_t)kl, &got, sizeof got, &len) != MP_OK || got != v)
            return (void *)3;
        if (i % 3 == 0 && mp_dict_del(a->d, key, (size_t)kl) != MP_OK) return (void *)4;
    }
    return NULL;
}

static int h_proc(void *p) {
    h_arg *base = (h_arg *)p;
    pthread_t th[H_THREADS];
    h_arg a[H_THREADS];
    for (int t = 0; t < H_THREADS; t++) {
        a[t] = *base;
        a[t].thread = t;
        if (pthread_create(&th[t], NULL, h_thread, &a[t]) != 0) return 10;
    }
    int rc = 0;
    for (int t = 0; t < H_THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        if (r && !rc) rc = (int)(intptr_t)r;
    }
    return rc;
}

static int h_list_sum(const void *v, size_t vl, void *arg) {
    long *s = (long *)arg, x;
    if (vl != sizeof x) return s[2]++, 0;
    memcpy(&x, v, sizeof x);
    s[0] += x, s[1]++;
    return 0;
}

void c_hammer(c_env *e, long n) {
    mp_dict *d = e->dict(e, "hammer-dict");
    mp_list *l = e->list(e, "hammer-list");
    CHECK(d && l);
    pid_t pid[H_PROCS];
    h_arg a[H_PROCS];
    for (int p = 0; p < H_PROCS; p++) {
        a[p].d = d, a[p].l = l, a[p].proc = p, a[p].thread = 0, a[p].n = n;
        pid[p] = t_fork(h_proc, &a[p]);
    }
    for (int p = 0; p < H_PROCS; p++) {
        int st = t_wait(pid[p]);
        CHECK(WIFEXITED(st));
        CHECK_EQ(WEXITSTATUS(st), 0);
    }
    long kept = n - (n + 2) / 3, expect_dict = 0, expect_list = 0;
    for (long p = 0; p < H_PROCS; p++)
        for (long t = 0; t < H_THREADS; t++)
            for (long i = 0; i < n; i++) {
                long v = (p << 40) | (t << 32) | i;
                expect_list += v;
                if (i % 3) expect_dict += v;
            }
    size_t len;
    CHECK_EQ(mp_dict_len(d, &len), MP_OK);
    CHECK_EQ(len, H_PROCS * H_THREADS * kept);
    long s[2] = {0, 0};
    CHECK_EQ(mp_dict_items(d, sum_fn, s), MP_OK);
    CHECK_EQ(s[0], expect_dict);
    CHECK_EQ(mp_list_len(l, &len), MP_OK);
    CHECK_EQ(len, H_PROCS * H_THREADS * n);
    long ls[3] = {0, 0, 0};
    CHECK_EQ(mp_list_items(l, h_list_sum, ls), MP_OK);
    CHECK_EQ(ls[0], expect_list);
    CHECK_EQ(ls[1], H_PROCS * H_THREADS * n);
    CHECK_EQ(ls[2], 0);
    mp_dict_destroy(d);
    mp_list_destroy(l);
}

TEST(dict_local_behaviour) { c_dict_body(&c_local); }
TEST(list_local_behaviour) { c_list_body(&c_local); }
TEST(dict_list_local_exactly_once_4_procs_2_threads) { c_hammer(&c_local, t_scale(20000)); }

TEST(dict_list_local_memory_reused_after_deletes) {
    mp_dict *d = mp_dict_create();
    mp_list *l = mp_list_create();
    char v[200] = {0};
    mp_heap_stats st0, st1;
    for (int round = 0; round < 20; round++) {
        for (long i = 0; i < 500; i++) {
            char key[32];
            int kl = snprintf(key, sizeof key, "r%d-%ld", round, i);
            CHECK_EQ(mp_dict_set(d, key, (size_t)kl, v, sizeof v), MP_OK);
            CHECK_EQ(mp_list_append(l, v, sizeof v), MP_OK);
        }
        for (long i = 0; i < 500; i++) {
            char key[32];
            int kl = snprintf(key, sizeof key, "r%d-%ld", round, i);
            CHECK_EQ(mp_dict_del(d, key, (size_t)kl), MP_OK);
            CHECK_EQ(mp_list_pop(l, -1, NULL, 0, NULL), MP_OK);
        }
        CHECK_EQ(mp_heap_stats_get(round == 5 ? &st0 : &st1), MP_OK);
    }
    CHECK(st1.used == st0.used); /* the region stopped growing: freed blocks are reused */
    CHECK(st1.in_use < 64 * 1024);
    mp_dict_destroy(d);
    mp_list_destroy(l);
}

/* ---- SIGKILL during updates ---- */

/* Every value a killer's victim writes is its key, repeated to a length that depends
   on the key, so a torn or misplaced value is seen. */
static size_t k_value(const char *key, size_t kl, char *out) {
    size_t n = 8 + (size_t)(key[kl - 1] % 7) * 100;
    for (size_t i = 0; i < n; i++) out[i] = key[i % kl];
    return n;
}

typedef struct k_shared {
    mp_dict *d;
    mp_list *l;
} k_shared;

static int k_victim(void *p) {
    k_shared *s = (k_shared *)p;
    unsigned seed = (unsigned)getpid();
    char key[16], val[800];
    for (;;) {
        int kl = snprintf(key, sizeof key, "k%u", rand_r(&seed) % 300);
        size_t vl = k_value(key, (size_t)kl, val);
        switch (rand_r(&seed) % 5) {
        case 0: case 1: mp_dict_set(s->d, key, (size_t)kl, val, vl); break;
        case 2: mp_dict_del(s->d, key, (size_t)kl); break;
        case 3: mp_list_append(s->l, val, vl); break;
        default: mp_list_pop(s->l, (long)(rand_r(&seed) % 8) - 4, NULL, 0, NULL); break;
        }
    }
    return 0;
}

static int k_check_item(const void *k, size_t kl, const void *v, size_t vl, void *arg) {
    char want[800];
    size_t n = k_value((const char *)k, kl, want);
    if (n != vl || memcmp(want, v, n) != 0) ++*(int *)arg;
    return 0;
}

static int k_check_list(const void *v, size_t vl, void *arg) {
    const char *c = (const char *)v;
    /* "kNNN" repeated: find the key's length at the second 'k' */
    size_t kl = 1;
    while (kl < vl && c[kl] != 'k') kl++;
    char want[800];
    if (vl < 2 || kl > 4 || k_value(c, kl, want) != vl || memcmp(want, v, vl) != 0) ++*(int *)arg;
    return 0;
}

static void k_consistent(k_shared *s) {
    int bad = 0;
    size_t n = 0;
    long counted[3] = {0, 0, 0};
    CHECK_EQ(mp_dict_items(s->d, k_check_item, &bad), MP_OK);
    CHECK_EQ(mp_dict_items(s->d, stop_fn, &counted[0]), MP_OK);
    CHECK_EQ(mp_list_items(s->l, k_check_list, &bad), MP_OK);
    CHECK_EQ(bad, 0);
    CHECK_EQ(mp_dict_len(s->d, &n), MP_OK);
    CHECK(n <= 300);
}

TEST_T(dict_list_sigkill_loop_leaves_them_consistent, 90) {
    k_shared *s = (k_shared *)mp_calloc(1, sizeof *s);
    s->d = mp_dict_create();
    s->l = mp_list_create();
    enum { NV = 3 };
    pid_t v[NV];
    for (int i = 0; i < NV; i++) v[i] = t_fork(k_victim, s);
    unsigned seed = (unsigned)getpid();
    double end = t_now() + (getenv("MP_TEST_SLOW") ? 3.0 : 6.0);
    int kills = 0;
    while (t_now() < end) {
        usleep((useconds_t)(rand_r(&seed) % 5000));
        int who = (int)(rand_r(&seed) % NV);
        kill(v[who], SIGKILL);
        int st = t_wait(v[who]);
        kills += WIFSIGNALED(st);
        if (kills % 10 == 0) k_consistent(s);
        v[who] = t_fork(k_victim, s);
    }
    for (int i = 0; i < NV; i++) {
        kill(v[i], SIGKILL);
        t_wait(v[i]);
    }
    k_consistent(s);
    /* still fully usable: the counts agree with the contents */
    size_t n, m = 0;
    CHECK_EQ(mp_dict_len(s->d, &n), MP_OK);
    for (int i = 0; i < 300; i++) {
        char key[16], buf[800];
        size_t len;
        int kl = snprintf(key, sizeof key, "k%d", i);
        int rc = mp_dict_get(s->d, key, (size_t)kl, buf, sizeof buf, &len);
        CHECK(rc == MP_OK || rc == MP_ENOTFOUND);
        m += rc == MP_OK;
    }
    CHECK_EQ(m, n);
    CHECK_EQ(mp_dict_set(s->d, "after", 5, "x", 1), MP_OK);
    CHECK_EQ(mp_list_append(s->l, "kk", 2), MP_OK);
    printf("     %d kills, %zu keys, consistent\n", kills, n);
    CHECK(kills >= 50);
    mp_dict_destroy(s->d);
    mp_list_destroy(s->l);
    mp_free(s);
}
