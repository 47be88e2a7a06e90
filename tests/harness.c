/* Runs every registered test in a fork of its own, in its own process group, with a
   time limit. The harness is a child subreaper, so descendants a test leaves behind are
   seen, killed and counted as a failure. Usage: runner [-l] [substring...] [-x substring...] */
#define _GNU_SOURCE
#include "test.h"
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#define T_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_LSAN 1
#endif
#endif
#ifdef T_LSAN
#include <sanitizer/lsan_interface.h>
#endif

typedef struct { const char *name; t_fn fn; double timeout; } t_case;
static t_case t_cases[1024];
static int t_ncases;

void t_register(const char *name, t_fn fn, double timeout) {
    if (t_ncases < 1024) t_cases[t_ncases++] = (t_case){name, fn, timeout};
}

void t_fail(const char *file, int line, const char *what) {
    fprintf(stderr, "  %s:%d: CHECK failed: %s (pid %d)\n", file, line, what, (int)getpid());
    fflush(NULL);
    _exit(1);
}

void t_fail_int(const char *file, int line, const char *a, const char *b, long long x,
                long long y) {
    fprintf(stderr, "  %s:%d: CHECK_EQ failed: %s == %s: %lld != %lld (pid %d)\n", file,
            line, a, b, x, y, (int)getpid());
    fflush(NULL);
    _exit(1);
}

long t_scale(long n) {
    const char *s = getenv("MP_TEST_SLOW");
    if (s && *s == '1') return n / 20 > 0 ? n / 20 : 1;
    return n;
}

int t_count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n - 3; /* ".", "..", and the DIR's own fd */
}

char t_proc_state(pid_t pid, pid_t *ppid) {
    char path[64], buf[512], st = 0;
    int parent = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *c = strrchr(buf, ')'); /* "pid (comm) S ppid ...": comm may hold anything */
    if (!c || sscanf(c + 1, " %c %d", &st, &parent) != 2) return 0;
    if (ppid) *ppid = (pid_t)parent;
    return st;
}

double t_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

pid_t t_fork(int (*fn)(void *), void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(fn(arg));
    return pid;
}

int t_wait(pid_t pid) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return st;
}

static double t_timeout_scale(void) {
    const char *s = getenv("MP_TEST_TIMEOUT_SCALE");
    double f = s ? atof(s) : 1.0;
    return f > 0 ? f : 1.0;
}

/* MP_TEST_START_METHOD=forkserver: every test process starts with mp_init asking for
   the forkserver (before its fds are counted: the request socket is the heap's, kept
   for the process's life), so the process and pool tests run with it as the default. */
static void t_start_method(void) {
    const char *m = getenv("MP_TEST_START_METHOD");
    if (!m || strcmp(m, "forkserver") != 0) return;
    mp_config cfg = {.start_method = MP_START_FORKSERVER};
    int rc = mp_init(&cfg);
    if (rc != MP_OK) {
        fprintf(stderr, "  mp_init with the forkserver: %s\n", mp_strerror(rc));
        _exit(6);
    }
}

/* In the test's own process: run it, then insist it cleaned up after itself. */
static void t_run_child(const t_case *c) {
    setpgid(0, 0);
    t_start_method();
    int fds = t_count_fds();
    c->fn();
    int st;
    pid_t left = waitpid(-1, &st, WNOHANG);
    if (left != -1) {
        fprintf(stderr, "  test left %s children\n", left > 0 ? "unreaped" : "running");
        fflush(NULL);
        _exit(3);
    }
    int after = t_count_fds();
    if (after != fds) {
        fprintf(stderr, "  fd leak: %d open before, %d after\n", fds, after);
        fflush(NULL);
        _exit(4);
    }
#ifdef T_LSAN
    /* the test leaves through _exit, which skips LeakSanitizer's own exit check */
    if (__lsan_do_recoverable_leak_check()) _exit(5);
#endif
    fflush(NULL);
    _exit(0);
}

/* Reap orphans handed to us as subreaper; true once the group is empty. */
static bool t_group_gone(pid_t pgid, double wait_s) {
    double end = t_now() + wait_s;
    for (;;) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
        if (kill(-pgid, 0) < 0 && errno == ESRCH) return true;
        if (t_now() > end) return false;
        usleep(2000);
    }
}

static bool t_run(const t_case *c) {
    double t0 = t_now(), limit = c->timeout * t_timeout_scale();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return false;
    }
    if (pid == 0) t_run_child(c);
    setpgid(pid, pid);
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0), st = 0;
    bool timed_out = false;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        double left = limit - (t_now() - t0);
        if (left <= 0) {
            timed_out = true;
            kill(-pid, SIGKILL);
            st = t_wait(pid);
            break;
        }
        if (pfd >= 0) {
            struct pollfd p = {pfd, POLLIN, 0};
            poll(&p, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
        } else {
            usleep(1000);
        }
    }
    if (pfd >= 0) close(pfd);
    bool strays = !t_group_gone(pid, 2.0 * t_timeout_scale()); /* a forkserver leaves late under valgrind */
    if (strays) {
        kill(-pid, SIGKILL);
        t_group_gone(pid, 5.0);
    }
    bool ok = !timed_out && !strays && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    double dt = t_now() - t0;
    if (ok) printf("ok   %-44s %7.2fs\n", c->name, dt);
    else if (timed_out) printf("FAIL %-44s timed out after %.0fs\n", c->name, limit);
    else if (strays) printf("FAIL %-44s left processes running\n", c->name);
    else if (WIFSIGNALED(st)) printf("FAIL %-44s killed by signal %d\n", c->name, WTERMSIG(st));
    else printf("FAIL %-44s exit status %d\n", c->name, WEXITSTATUS(st));
    fflush(stdout);
    return ok;
}

/* Arguments: substrings to run (all if none); "-x SUBSTR" excludes. */
static bool t_selected(const char *name, int argc, char **argv) {
    bool any = false;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-x") == 0 && i + 1 < argc && strstr(name, argv[++i])) return false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-x") == 0) {
            i++;
            continue;
        }
        if (argv[i][0] == '-') continue;
        any = true;
        if (strstr(name, argv[i])) return true;
    }
    return !any;
}

/* name starts with one of the comma-separated prefixes of list. */
static bool t_in_list(const char *name, const char *list) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save))
        if (strncmp(name, s, strlen(s)) == 0) return true;
    return false;
}

int main(int argc, char **argv) {
    bool list = argc > 1 && strcmp(argv[1], "-l") == 0;
    int passed = 0, failed = 0;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < t_ncases; i++) {
        if (!t_selected(t_cases[i].name, argc, argv)) continue;
        if (list) {
            printf("%s\n", t_cases[i].name);
            continue;
        }
        if (t_run(&t_cases[i])) passed++;
        else failed++;
    }
    /* MP_TEST_FORKSERVER_AGAIN="process_,pool_": the tests whose names start so once
       more, each process
       starting with the forkserver as the program's start method */
    const char *again = getenv("MP_TEST_FORKSERVER_AGAIN");
    if (again && *again && !list) {
        setenv("MP_TEST_START_METHOD", "forkserver", 1);
        for (int i = 0; i < t_ncases; i++) {
            if (!t_selected(t_cases[i].name, argc, argv) || !t_in_list(t_cases[i].name, again)) continue;
            t_case c = t_cases[i];
            char name[160];
            snprintf(name, sizeof name, "forkserver/%s", c.name);
            c.name = name;
            if (t_run(&c)) passed++;
            else failed++;
        }
    }
    if (!list) printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
