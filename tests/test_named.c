/* Names and the named heap: the registry within a family, and objects shared between
   separately exec'd programs (tests/peer/named_peer.c, from $MP_TEST_PEER) attached to
   one named heap - queues, locks and conditions, kills, a creator killed during
   initialisation, version and size mismatch, permissions. */
#define _GNU_SOURCE
#include "test.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PEER_MAXSEQ 2000000u

typedef struct { /* as in named_peer.c */
    uint32_t nprod;
    uint32_t stop;
    uint64_t received;
    uint32_t bad;
    uint32_t next_seq[16];
    uint8_t seen[];
} peer_shared;

static void heap_name(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/mp-test-%d-%s", (int)getpid(), tag);
}

static void attach(const char *name) {
    mp_config c = {.name = name};
    CHECK_EQ(mp_init(&c), MP_OK);
}

/* fork + exec the peer program on heap with role and arguments. */
static pid_t peer(const char *heap, const char *role, unsigned long a, unsigned long b) {
    const char *bin = getenv("MP_TEST_PEER");
    char sa[32], sb[32];
    if (!bin || !*bin) bin = "build/named_peer";
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "  peer binary %s missing (make %s)\n", bin, bin);
        CHECK(!"peer built");
    }
    snprintf(sa, sizeof sa, "%lu", a);
    snprintf(sb, sizeof sb, "%lu", b);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execl(bin, bin, heap, role, sa, sb, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int exit_code(pid_t pid) {
    int st = t_wait(pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static peer_shared *shared_new(uint32_t nid) {
    peer_shared *s = (peer_shared *)mp_calloc(1, sizeof *s + (size_t)nid * PEER_MAXSEQ);
    CHECK(s != NULL);
    CHECK_EQ(mp_name_set("shared", s), MP_OK);
    return s;
}

/* --- the registry in a family ----------------------------------------------------- */

TEST(names_set_get_del_and_bad_input) {
    mp_lock *l = mp_lock_create();
    mp_queue *q = mp_queue_create(NULL);
    CHECK_EQ(mp_name_set("lock", l), MP_OK);
    CHECK_EQ(mp_name_set("queue", q), MP_OK);
    CHECK(mp_name_get("lock") == (void *)l);
    CHECK(mp_name_get("queue") == (void *)q);
    errno = 0;
    CHECK(mp_name_get("nothing") == NULL);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(mp_name_set("lock", q), MP_OK); /* replaces */
    CHECK(mp_name_get("lock") == (void *)q);
    CHECK(mp_name_setdefault("lock", l) == (void *)q); /* taken: the first one wins */
    CHECK(mp_name_setdefault("new", l) == (void *)l);
    CHECK_EQ(mp_name_del("lock"), MP_OK);
    CHECK_EQ(mp_name_del("lock"), MP_ENOTFOUND);
    CHECK(mp_name_get("lock") == NULL);
    CHECK(mp_name_get("queue") == (void *)q); /* past the deleted entry */
    /* bad input */
    int on_stack;
    char long_name[300];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    CHECK_EQ(mp_name_set("x", &on_stack), MP_EINVAL);
    CHECK_EQ(mp_name_set("x", NULL), MP_EINVAL);
    CHECK_EQ(mp_name_set(NULL, q), MP_EINVAL);
    CHECK_EQ(mp_name_set("", q), MP_EINVAL);
    CHECK_EQ(mp_name_set(long_name, q), MP_EINVAL);
    long_name[255] = 0; /* 255 bytes: the longest name */
    CHECK_EQ(mp_name_set(long_name, q), MP_OK);
    CHECK(mp_name_get(long_name) == (void *)q);
    errno = 0;
    CHECK(mp_name_setdefault(NULL, q) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_name_get("") == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_name_del(NULL), MP_EINVAL);
    mp_queue_destroy(q);
    mp_lock_destroy(l);
}

TEST(names_thousands_grow_and_survive_deletes) {
    enum { N = 5000 };
    long *objs = (long *)mp_calloc(N, sizeof *objs);
    char nm[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(nm, sizeof nm, "obj-%d", i);
            CHECK_EQ(mp_name_set(nm, &objs[i]), MP_OK);
        }
        for (int i = 0; i < N; i += 2) {
            snprintf(nm, sizeof nm, "obj-%d", i);
            CHECK_EQ(mp_name_del(nm), MP_OK);
        }
        for (int i = 0; i < N; i++) {
            snprintf(nm, sizeof nm, "obj-%d", i);
            void *o = mp_name_get(nm);
            CHECK(i % 2 ? o == (void *)&objs[i] : o == NULL);
        }
    }
    mp_heap_stats s0, s1; /* delete and re-add many times: the table does not grow forever */
    mp_heap_stats_get(&s0);
    for (int k = 0; k < 20000; k++) {
        snprintf(nm, sizeof nm, "churn-%d", k % 100);
        CHECK_EQ(mp_name_set(nm, &objs[0]), MP_OK);
        CHECK_EQ(mp_name_del(nm), MP_OK);
    }
    mp_heap_stats_get(&s1);
    CHECK(s1.in_use <= s0.in_use + (1u << 20));
    mp_free(objs);
}

/* Four processes race to create the same 50 objects by name: all end up using the same
   ones (setdefault), and every loser's object is its own to free. */
typedef struct {
    void *got[4][50];
    mp_barrier *start;
} race;

static race *rc_g;

static int racer(void *arg) {
    int me = (int)(intptr_t)arg;
    char nm[32];
    mp_barrier_wait(rc_g->start, 10, NULL);
    for (int i = 0; i < 50; i++) {
        snprintf(nm, sizeof nm, "race-%d", i);
        long *mine = (long *)mp_alloc(sizeof *mine);
        if (!mine) return 1;
        void *o = mp_name_setdefault(nm, mine);
        if (!o) return 2;
        if (o != mine) mp_free(mine);
        rc_g->got[me][i] = o;
    }
    return 0;
}

TEST(names_race_from_4_processes_agree) {
    rc_g = (race *)mp_calloc(1, sizeof *rc_g);
    rc_g->start = mp_barrier_create(4, NULL, NULL);
    pid_t k[4];
    for (int i = 0; i < 4; i++) k[i] = t_fork(racer, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++) CHECK_EQ(exit_code(k[i]), 0);
    char nm[32];
    for (int i = 0; i < 50; i++) {
        snprintf(nm, sizeof nm, "race-%d", i);
        void *o = mp_name_get(nm);
        CHECK(o != NULL);
        for (int p = 0; p < 4; p++) CHECK(rc_g->got[p][i] == o);
    }
    mp_barrier_destroy(rc_g->start);
    mp_free(rc_g);
}

/* Processes doing set/del/get on a few names are SIGKILLed at random instants: the
   registry stays consistent and usable (no hang, every name found is a live entry). */
static long *churn_objs;

static int churner(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    char nm[32];
    for (;;) {
        int i = (int)(rand_r(&seed) % 64);
        snprintf(nm, sizeof nm, "k-%d", i);
        if (rand_r(&seed) % 2) mp_name_set(nm, &churn_objs[i]);
        else mp_name_del(nm);
        void *o = mp_name_get(nm);
        if (o && o != (void *)&churn_objs[i]) return 3; /* a name never points elsewhere */
    }
}

TEST(names_survive_sigkill_mid_update) {
    churn_objs = (long *)mp_calloc(64, sizeof *churn_objs);
    unsigned seed = (unsigned)getpid();
    pid_t k[3];
    for (int i = 0; i < 3; i++) k[i] = t_fork(churner, (void *)(uintptr_t)(seed + (unsigned)i));
    int kills = 0;
    for (double end = t_now() + (getenv("MP_TEST_SLOW") ? 2.0 : 4.0); t_now() < end; kills++) {
        usleep((useconds_t)(rand_r(&seed) % 3000));
        int w = (int)(rand_r(&seed) % 3);
        kill(k[w], SIGKILL);
        CHECK_EQ(exit_code(k[w]), 100 + SIGKILL); /* killed, not a failed check */
        k[w] = t_fork(churner, (void *)(uintptr_t)rand_r(&seed));
    }
    for (int i = 0; i < 3; i++) {
        kill(k[i], SIGKILL);
        CHECK_EQ(exit_code(k[i]), 100 + SIGKILL);
    }
    char nm[32];
    for (int i = 0; i < 64; i++) {
        snprintf(nm, sizeof nm, "k-%d", i);
        void *o = mp_name_get(nm);
        CHECK(o == NULL || o == (void *)&churn_objs[i]);
        CHECK_EQ(mp_name_set(nm, &churn_objs[i]), MP_OK);
        CHECK(mp_name_get(nm) == (void *)&churn_objs[i]);
    }
    printf("     %d kills\n", kills);
    CHECK(kills >= 50);
}

/* --- the named heap: unrelated programs -------------------------------------------- */

/* nprod exec'd producers and one exec'd consumer move n messages each, exactly once and
   in order per producer, through a queue the test found them by name. */
static void run_exchange(const char *tag, int nprod, uint32_t n) {
    char name[64];
    heap_name(name, sizeof name, tag);
    attach(name);
    peer_shared *sh = shared_new((uint32_t)nprod);
    mp_queue_desc qd = {.maxsize = 1024};
    mp_queue *q = mp_queue_create(&qd);
    CHECK_EQ(mp_name_set("q", q), MP_OK);
    pid_t c = peer(name, "consume", (unsigned long)nprod, 0), p[4];
    for (int i = 0; i < nprod; i++) p[i] = peer(name, "produce", (unsigned long)i, n);
    for (int i = 0; i < nprod; i++) CHECK_EQ(exit_code(p[i]), 0);
    CHECK_EQ(exit_code(c), 0);
    CHECK_EQ(sh->bad, 0);
    CHECK_EQ(sh->received, (uint64_t)nprod * n);
    for (size_t i = 0; i < (size_t)nprod * n; i++)
        if (sh->seen[(i / n) * PEER_MAXSEQ + i % n] != 1) CHECK_EQ(sh->seen[(i / n) * PEER_MAXSEQ + i % n], 1);
    CHECK_EQ(mp_heap_unlink(name), MP_OK);
}

TEST_T(named_two_programs_exchange_1M_messages, 120) {
    run_exchange("two", 1, (uint32_t)t_scale(1000000));
}

TEST_T(named_three_programs_exchange_exactly_once, 120) {
    run_exchange("three", 2, (uint32_t)t_scale(500000));
}

static void no_op(void *arg) { (void)arg; }

TEST(named_lock_and_condition_between_programs) {
    char name[64];
    heap_name(name, sizeof name, "lock");
    attach(name);
    uint64_t *counter = (uint64_t *)mp_calloc(1, sizeof *counter);
    mp_lock *l = mp_lock_create();
    mp_condition *c = mp_condition_create(l);
    CHECK_EQ(mp_name_set("counter", counter), MP_OK);
    CHECK_EQ(mp_name_set("lock", l), MP_OK);
    CHECK_EQ(mp_name_set("cond", c), MP_OK);
    long n = t_scale(200000);
    pid_t a = peer(name, "lockinc", (unsigned long)n, 0), b = peer(name, "lockinc", (unsigned long)n, 0);
    CHECK_EQ(exit_code(a), 0);
    CHECK_EQ(exit_code(b), 0);
    CHECK_EQ(*counter, (uint64_t)(2 * n)); /* every increment under the lock */
    pid_t w = peer(name, "condwait", (unsigned long)(2 * n + 7), 0);
    usleep(100000); /* let it sleep in the wait */
    pid_t s = peer(name, "condset", (unsigned long)(2 * n + 7), 0);
    CHECK_EQ(exit_code(s), 0);
    CHECK_EQ(exit_code(w), 0); /* woken by another program's notify */
    CHECK_EQ(*counter, (uint64_t)(2 * n + 7));
    /* a barrier: between programs; one with an action (a function of this program
       only) is refused to the others with MP_EPERM */
    mp_barrier *bar = mp_barrier_create(2, NULL, NULL), *bact = mp_barrier_create(2, no_op, NULL);
    CHECK_EQ(mp_name_set("bar", bar), MP_OK);
    CHECK_EQ(mp_name_set("bar_action", bact), MP_OK);
    pid_t x = peer(name, "barrier", 0, 0), y = peer(name, "barrier", 0, 0);
    CHECK_EQ(exit_code(x), 0);
    CHECK_EQ(exit_code(y), 0);
    CHECK_EQ(exit_code(peer(name, "barrier", 1, 0)), 0);
    CHECK_EQ(mp_barrier_n_waiting(bact), 0); /* the refused one never arrived */
    CHECK_EQ(mp_heap_unlink(name), MP_OK);
}

/* Producer programs SIGKILLed mid-put while another program consumes: the others go on,
   nothing is duplicated or reordered, at most one message lost per kill. */
TEST_T(named_program_killed_mid_put_others_go_on, 90) {
    char name[64];
    heap_name(name, sizeof name, "kill");
    attach(name);
    peer_shared *sh = shared_new(2);
    mp_queue_desc qd = {.maxsize = 64};
    mp_queue *q = mp_queue_create(&qd);
    CHECK_EQ(mp_name_set("q", q), MP_OK);
    pid_t c = peer(name, "consume", 99, 0), p[2];
    for (int i = 0; i < 2; i++) p[i] = peer(name, "forever", (unsigned long)i, 0);
    unsigned seed = (unsigned)getpid();
    int kills = 0;
    uint64_t before = 0;
    bool slow = getenv("MP_TEST_SLOW") != NULL; /* under valgrind a peer starts in ~1 s */
    for (double end = t_now() + (slow ? 12.0 : 6.0); t_now() < end;) {
        /* an exec'd peer needs a moment to attach and start putting */
        usleep((slow ? 1500000 : 20000) + (useconds_t)(rand_r(&seed) % 30000));
        int w = (int)(rand_r(&seed) % 2);
        kill(p[w], SIGKILL);
        if (exit_code(p[w]) == 100 + SIGKILL) kills++;
        p[w] = peer(name, "forever", (unsigned long)w, 0);
        if (kills == (slow ? 1 : 5)) before = __atomic_load_n(&sh->received, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) CHECK_EQ(exit_code(p[i]), 0);
    mp_queue_close(q);
    CHECK_EQ(exit_code(c), 0);
    CHECK_EQ(sh->bad, 0);
    uint64_t lost = 0, got = 0;
    for (int id = 0; id < 2; id++)
        for (uint32_t s = 0; s < sh->next_seq[id] && s < PEER_MAXSEQ; s++) {
            uint8_t v = sh->seen[(size_t)id * PEER_MAXSEQ + s];
            if (v > 1) CHECK_EQ(v, 1);
            lost += v == 0;
            got += v;
        }
    printf("     %d kills, %llu messages, %llu lost\n", kills, (unsigned long long)got,
           (unsigned long long)lost);
    CHECK(kills >= (slow ? 3 : 10));
    CHECK(got > before + (slow ? 10 : 1000)); /* kept moving after the kills began */
    CHECK(lost <= (uint64_t)kills);
    CHECK_EQ(mp_heap_unlink(name), MP_OK);
}

/* A creator killed at a random instant inside mp_init (holding the creation lock, or
   with the heap half formatted): the next program initialises it anew, never hangs. */
static const char *init_name;

static int init_then_wait(void *arg) {
    (void)arg;
    mp_config c = {.name = init_name};
    if (mp_init(&c) != MP_OK) return 1;
    for (;;) pause();
}

static int attach_and_use(void *arg) {
    (void)arg;
    mp_config c = {.name = init_name};
    int rc = mp_init(&c);
    if (rc != MP_OK) return 10 - rc;
    long *x = (long *)mp_alloc(sizeof *x);
    if (!x || mp_name_set("x", x) != MP_OK || mp_name_get("x") != (void *)x) return 3;
    mp_lock *l = mp_lock_create();
    if (!l || mp_lock_acquire(l, 1) != MP_OK) return 4;
    return 0;
}

TEST(named_creator_killed_during_init_is_replaced) {
    char name[64];
    heap_name(name, sizeof name, "init");
    init_name = name;
    unsigned seed = (unsigned)getpid();
    for (int i = 0; i < (getenv("MP_TEST_SLOW") ? 5 : 30); i++) {
        mp_heap_unlink(name);
        pid_t c = t_fork(init_then_wait, NULL);
        usleep((useconds_t)(rand_r(&seed) % 1500));
        kill(c, SIGKILL);
        t_wait(c);
        double t0 = t_now();
        CHECK_EQ(exit_code(t_fork(attach_and_use, NULL)), 0);
        CHECK(t_now() - t0 < 5);
    }
    /* a dead creator's leftovers by hand: the object exists, sized, never formatted */
    mp_heap_unlink(name);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, 1 << 20), 0);
    CHECK_EQ(write(fd, "garbage", 7), 7);
    close(fd);
    CHECK_EQ(exit_code(t_fork(attach_and_use, NULL)), 0);
    CHECK_EQ(mp_heap_unlink(name), MP_OK);
}

static int init_code(const mp_config *c) { return mp_init(c); }

/* In a fresh process (no heap yet): attach as c says; the errno of an MP_EINVAL. */
static int attach_expect(void *arg) {
    const mp_config *c = (const mp_config *)arg;
    int rc = init_code(c), e = errno;
    if (rc != MP_EINVAL) printf("     attach: %s (errno %d)\n", mp_strerror(rc), e);
    return rc == MP_EINVAL ? e : 200;
}

static int attach_expect_ok(void *arg) { return init_code((const mp_config *)arg) == MP_OK ? 0 : 1; }

/* Attached: asking for another heap than this one is MP_EINVAL, the same one MP_OK. */
static int attach_then_ask_again(void *arg) {
    const mp_config *c = (const mp_config *)arg;
    if (init_code(c) != MP_OK) return 1;
    mp_config anon = {.heap_size = 0};
    if (mp_init(&anon) != MP_EINVAL) return 2;
    if (mp_init(NULL) != MP_OK) return 3;
    mp_config same = {.name = c->name + 1}; /* without the leading slash: the same */
    return mp_init(&same) == MP_OK ? 0 : 4;
}

/* The test process stays without a heap here: each check runs in a fresh child, as a
   separate program would (a forked child of an attached process is in its family). */
TEST(named_version_and_size_mismatch_are_einval) {
    char name[64];
    heap_name(name, sizeof name, "ver");
    static mp_config cfg; /* static: the forked children read it */
    cfg.name = name;
    cfg.heap_size = 64 << 20;
    CHECK_EQ(exit_code(t_fork(attach_expect_ok, &cfg)), 0); /* creates it */
    cfg.heap_size = 32 << 20;
    CHECK_EQ(exit_code(t_fork(attach_expect, &cfg)), ERANGE);
    cfg.heap_size = 0; /* its own size, or 0, attaches */
    CHECK_EQ(exit_code(t_fork(attach_expect_ok, &cfg)), 0);
    cfg.heap_size = 64 << 20;
    CHECK_EQ(exit_code(t_fork(attach_expect_ok, &cfg)), 0);
    CHECK_EQ(exit_code(t_fork(attach_then_ask_again, &cfg)), 0);
    /* another layout version in the header (a word at offset 12: magic 8, lock 4) */
    int fd = shm_open(name, O_RDWR, 0);
    CHECK(fd >= 0);
    uint32_t v = 99;
    CHECK_EQ(pwrite(fd, &v, sizeof v, 12), (ssize_t)sizeof v);
    close(fd);
    cfg.heap_size = 0;
    CHECK_EQ(exit_code(t_fork(attach_expect, &cfg)), EPROTO);
    CHECK_EQ(mp_heap_unlink(name), MP_OK);
    CHECK_EQ(mp_heap_unlink(name), MP_ESYS);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(mp_heap_unlink("a/b"), MP_EINVAL);
    mp_config bad = {.name = "a/b"};
    CHECK_EQ(mp_init(&bad), MP_EINVAL); /* refused before anything is made */
}

static int attach_as_nobody(void *arg) {
    (void)arg;
    if (setgid(65534) < 0 || setuid(65534) < 0) return 10;
    mp_config c = {.name = init_name};
    int rc = mp_init(&c);
    return rc == MP_ESYS && errno == EACCES ? 0 : rc == MP_OK ? 1 : 2;
}

static int attach_as_nobody_ok(void *arg) {
    (void)arg;
    if (setgid(65534) < 0 || setuid(65534) < 0) return 10;
    return attach_and_use(NULL);
}

TEST(named_heap_permissions) {
    char name[64], path[128];
    heap_name(name, sizeof name, "perm");
    init_name = name;
    snprintf(path, sizeof path, "/dev/shm%s", name);
    static mp_config cfg;
    cfg.name = name;
    CHECK_EQ(exit_code(t_fork(attach_expect_ok, &cfg)), 0); /* created by a fresh process */
    struct stat s;
    CHECK_EQ(stat(path, &s), 0);
    CHECK_EQ(s.st_mode & 0777, 0600); /* the default */
    CHECK_EQ(exit_code(t_fork(attach_as_nobody, NULL)), 0); /* refused: EACCES */
    CHECK_EQ(mp_heap_unlink(name), MP_OK);
    /* a mode given at create is applied exactly (not cut by the umask) */
    heap_name(name, sizeof name, "perm2");
    snprintf(path, sizeof path, "/dev/shm%s", name);
    static mp_config open_cfg;
    open_cfg.name = name;
    open_cfg.mode = 0666;
    mode_t old = umask(022);
    CHECK_EQ(exit_code(t_fork(attach_expect_ok, &open_cfg)), 0);
    umask(old);
    CHECK_EQ(stat(path, &s), 0);
    CHECK_EQ(s.st_mode & 0777, 0666);
    init_name = name;
    CHECK_EQ(exit_code(t_fork(attach_as_nobody_ok, NULL)), 0);
    CHECK_EQ(mp_heap_unlink(name), MP_OK);
}

/* A full /dev/shm: MP_ENOMEM at mp_init, and NULL/ENOMEM from mp_alloc as the heap
   grows - never a SIGBUS. /dev/shm is replaced by an 8 MiB tmpfs in a mount namespace
   of the child's own (root only; skipped otherwise). */
#include <sched.h>
#include <sys/mount.h>

static int small_dev_shm(void) {
    if (unshare(CLONE_NEWNS) != 0) return -1;
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) return -1; /* type unused */
    return mount("mp-test", "/dev/shm", "tmpfs", 0, "size=8m") == 0 ? 0 : -1;
}

static int full_shm_child(void *arg) {
    (void)arg;
    if (small_dev_shm() != 0) return 77;
    mp_config c = {.name = "/mp-test-full", .heap_size = 64 << 20};
    if (mp_init(&c) != MP_OK) return 1;
    size_t got = 0;
    void *p;
    while ((p = mp_alloc(256 << 10)) != NULL) { /* touch all of it: it must be backed */
        memset(p, 1, 256 << 10);
        got += 256 << 10;
    }
    if (errno != ENOMEM || got < (2 << 20) || got > (8 << 20)) {
        printf("     got %zu bytes, then errno %d\n", got, errno);
        return 2;
    }
    return 0;
}

static int full_at_create_child(void *arg) {
    (void)arg;
    if (small_dev_shm() != 0) return 77;
    int fd = open("/dev/shm/filler", O_RDWR | O_CREAT, 0600);
    if (fd < 0 || posix_fallocate(fd, 0, 7 << 20) != 0) return 3; /* 1 MiB left */
    close(fd);
    mp_config c = {.name = "/mp-test-full2", .heap_size = 64 << 20};
    int rc = mp_init(&c);
    if (rc != MP_ENOMEM) return 4;
    return access("/dev/shm/mp-test-full2", F_OK) == 0 ? 5 : 0; /* nothing left behind */
}

TEST(named_full_dev_shm_is_enomem_not_sigbus) {
    int a = exit_code(t_fork(full_shm_child, NULL));
    if (a == 77) {
        printf("SKIP named_full_dev_shm_is_enomem_not_sigbus: no mount namespace here\n");
        return;
    }
    CHECK_EQ(a, 0); /* 100 + 7 would be a SIGBUS */
    CHECK_EQ(exit_code(t_fork(full_at_create_child, NULL)), 0);
}
