/* The examples, run as a user runs them: each binary (from $MP_EXAMPLES_DIR, default
   build/examples) in a fresh temporary working directory and a process group of its
   own, with a time limit; its output is then checked, and no process may outlive it. */
#define _GNU_SOURCE
#include "test.h"
#include "py_peer.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int status;  /* raw wait status */
    double secs; /* wall time */
    char *out;   /* stdout, NUL-terminated */
    char *err;   /* stderr */
} ex_result;

static char *ex_slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    size_t n = 0, cap = 4096;
    char *s = (char *)malloc(cap);
    CHECK(s != NULL);
    if (f) {
        size_t k;
        while ((k = fread(s + n, 1, cap - n - 1, f)) > 0) {
            n += k;
            if (cap - n < 2) CHECK((s = (char *)realloc(s, cap *= 2)) != NULL);
        }
        fclose(f);
    }
    s[n] = 0;
    return s;
}

static void ex_free(ex_result *r) {
    free(r->out);
    free(r->err);
}

/* True once no process of group pgid exists (waits up to 2 s). */
static bool ex_group_gone(pid_t pgid) {
    for (int i = 0; i < 400; i++) {
        if (kill(-pgid, 0) < 0 && errno == ESRCH) return true;
        usleep(5000);
    }
    return false;
}

/* Under valgrind (MP_TEST_SLOW=1) time limits stretch and timing checks are skipped. */
static bool ex_slow(void) {
    const char *s = getenv("MP_TEST_SLOW");
    return s && *s == '1';
}

/* Remove valgrind's own lines ("==pid== ...", "--pid-- ...") from s: under check-valgrind
   the examples and their children are traced, and --track-fds reports go to stderr. */
static void ex_drop_valgrind_lines(char *s) {
    char *w = s;
    while (*s) {
        char *end = strchr(s, '\n');
        size_t n = end ? (size_t)(end - s) + 1 : strlen(s);
        char *q = s + 2;
        bool vg = (s[0] == '=' || s[0] == '-') && s[1] == s[0] && *q >= '0' && *q <= '9';
        while (vg && *q >= '0' && *q <= '9') q++;
        vg = vg && q[0] == s[0] && q[1] == s[0];
        if (!vg) memmove(w, s, n), w += n;
        s += n;
    }
    *w = 0;
}

/* Run example name with a time limit; fail the test on timeout or on processes left. */
static ex_result ex_run(const char *name, double limit) {
    const char *scale = getenv("MP_TEST_TIMEOUT_SCALE");
    if (scale && atof(scale) > 1) limit *= atof(scale);
    const char *dir = getenv("MP_EXAMPLES_DIR");
    char rel[512], bin[PATH_MAX], tmp[] = "/tmp/mp_example.XXXXXX", o[600], e[600];
    snprintf(rel, sizeof rel, "%s/%s", dir && *dir ? dir : "build/examples", name);
    if (!realpath(rel, bin) || access(bin, X_OK) != 0) {
        fprintf(stderr, "  example binary %s missing (make examples)\n", rel);
        CHECK(!"example built");
    }
    CHECK(mkdtemp(tmp) != NULL);
    snprintf(o, sizeof o, "%s/stdout", tmp);
    snprintf(e, sizeof e, "%s/stderr", tmp);
    ex_result r = {0, 0, NULL, NULL};
    double t0 = t_now();
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) { /* from another directory, stdin empty, output to files */
        setpgid(0, 0);
        int in = open("/dev/null", O_RDONLY), fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || fo < 0 || fe < 0 || chdir(tmp) != 0) _exit(126);
        dup2(in, 0), dup2(fo, 1), dup2(fe, 2);
        close(in), close(fo), close(fe);
        execl(bin, name, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    bool timed_out = false;
    for (;;) {
        pid_t w = waitpid(pid, &r.status, WNOHANG);
        if (w == pid) break;
        if (t_now() - t0 > limit) {
            timed_out = true;
            kill(-pid, SIGKILL);
            r.status = t_wait(pid);
            break;
        }
        usleep(2000);
    }
    r.secs = t_now() - t0;
    bool gone = ex_group_gone(pid);
    if (!gone) kill(-pid, SIGKILL);
    r.out = ex_slurp(o);
    r.err = ex_slurp(e);
    if (ex_slow()) ex_drop_valgrind_lines(r.err);
    unlink(o), unlink(e);
    bool status_ok = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
    if (timed_out || !gone || !status_ok || *r.err)
        fprintf(stderr, "  %s: status 0x%x, %.2f s%s%s\n--- stdout:\n%s--- stderr:\n%s---\n",
                name, r.status, r.secs, timed_out ? ", TIMED OUT" : "",
                gone ? "" : ", LEFT PROCESSES", r.out, r.err);
    if (!gone) ex_group_gone(pid);
    CHECK(rmdir(tmp) == 0); /* the example left no file in its working directory */
    CHECK(!timed_out);
    CHECK(gone);
    CHECK(status_ok);
    return r;
}

/* The line of s that starts with prefix (pointer to the line), or NULL. */
static const char *ex_line(const char *s, const char *prefix) {
    size_t n = strlen(prefix);
    for (const char *l = s; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        if (strncmp(l, prefix, n) == 0) return l;
    return NULL;
}

static int ex_count(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, sub)) != NULL; p += strlen(sub)) n++;
    return n;
}

static int ex_lines(const char *s) { return ex_count(s, "\n"); }

TEST_T(example_process_basics, 30) {
    ex_result r = ex_run("process_basics", 20);
    int main_pid = 0, child = 0, parent = 0, pid = 0, ncpu = 0;
    const char *l;
    CHECK((l = ex_line(r.out, "main: pid ")) && sscanf(l, "main: pid %d, %d cpus", &main_pid, &ncpu) == 2);
    CHECK(ncpu >= 1);
    CHECK((l = ex_line(r.out, "worker one (Process-1): pid ")) &&
          sscanf(l, "worker one (Process-1): pid %d, parent %d", &child, &parent) == 2);
    CHECK(child > 0 && child != main_pid);
    CHECK_EQ(parent, main_pid);
    CHECK(ex_line(r.out, "Process-1: exitcode 0\n"));
    CHECK(ex_line(r.out, "three: exitcode 3\n"));
    CHECK(ex_line(r.out, "before start: sleeper pid 0, alive 0\n"));
    CHECK((l = ex_line(r.out, "after start: sleeper pid ")) &&
          sscanf(l, "after start: sleeper pid %d, alive 1", &pid) == 1 && pid > 0);
    CHECK(ex_line(r.out, "join(0.2): timed out, alive 1\n"));
    CHECK(ex_line(r.out, "after terminate and join: alive 0, exitcode -15 "));
    CHECK(ex_line(r.out, "active children: 3\n"));
    CHECK_EQ(ex_count(r.out, "\n  Process-"), 3);
    for (int i = 0; i < 3; i++) { /* arguments copied at create: each saw its own i */
        char want[32];
        snprintf(want, sizeof want, "member %d done\n", i);
        CHECK_EQ(ex_count(r.out, want), 1);
    }
    CHECK(ex_line(r.out, "active children after join: 0\n"));
    CHECK(r.secs < 10 || ex_slow());
    ex_free(&r);
}

TEST_T(example_cplusplus, 30) {
    ex_result r = ex_run("cplusplus", 20);
    CHECK(strcmp(r.out, "child says: hello from C++\nexitcode 0\nPOOL SAYS HI\n") == 0);
    ex_free(&r);
}

TEST_T(example_daemon, 30) {
    ex_result r = ex_run("daemon", 20);
    CHECK_EQ(ex_count(r.out, ": finished"), 1);
    CHECK(strstr(r.out, "  daemon-2: finished\n"));
    CHECK(strstr(r.out, "  parent: exiting without join\n"));
    CHECK(strstr(r.out, "is gone: yes\n"));
    CHECK(strstr(r.out, "  main: joined daemon-2, exitcode 0\n"));
    CHECK(strstr(r.out, "is gone") < strstr(r.out, "daemon-2: finished"));
    CHECK(r.secs > 2.9 && (r.secs < 12 || ex_slow())); /* the joined worker's 3 s, once */
    ex_free(&r);
}

TEST_T(example_lock_print, 30) {
    ex_result r = ex_run("lock_print", 20);
    int pids[5], n = 0;
    for (const char *l = r.out; *l; l = strchr(l, '\n') + 1) {
        int pid, used = 0;
        if (strncmp(l, "/tmp/", 5) == 0) break; /* the file line, last */
        CHECK(n < 5 && sscanf(l, "pid %d%n", &pid, &used) == 1 && l[used] == '\n');
        for (int i = 0; i < n; i++) CHECK(pids[i] != pid);
        pids[n++] = pid;
    }
    CHECK_EQ(n, 5);
    CHECK(strstr(r.out, ": 400 whole lines, 0 broken\n"));
    CHECK_EQ(ex_lines(r.out), 6);
    ex_free(&r);
}

TEST_T(example_semaphore, 30) {
    ex_result r = ex_run("semaphore", 20);
    int inside = 0, most = 0, acquired[6] = {0}, released[6] = {0};
    for (const char *l = r.out; *l; l = strchr(l, '\n') + 1) {
        int k, used = 0;
        if (strncmp(l, "most inside", 11) == 0) break;
        CHECK(sscanf(l, "Process-%d %n", &k, &used) == 1 && k >= 1 && k <= 5);
        if (strncmp(l + used, "acquired\n", 9) == 0) {
            CHECK(!acquired[k]++);
            if (++inside > most) most = inside;
        } else {
            CHECK(strncmp(l + used, "releasing\n", 10) == 0);
            CHECK(acquired[k] && !released[k]++);
            inside--;
        }
        CHECK(inside <= 2);
    }
    for (int k = 1; k <= 5; k++) CHECK(acquired[k] == 1 && released[k] == 1);
    CHECK_EQ(inside, 0);
    CHECK_EQ(most, 2); /* five visitors staying 200 ms each do meet */
    CHECK(strstr(r.out, "most inside at once: 2, semaphore value now 2\n"));
    ex_free(&r);
}

TEST_T(example_event, 30) {
    ex_result r = ex_run("event", 20);
    double t_timed = -1, t_set = -1, t_woke = -1;
    const char *lt = NULL, *ls = NULL, *lw = NULL;
    for (const char *l = r.out; *l; l = strchr(l, '\n') + 1) {
        double t;
        int used = 0;
        CHECK(sscanf(l, "%lf s: %n", &t, &used) == 1 && used > 0);
        if (strncmp(l + used, "timed waiter: timed out, event set: 0\n", 38) == 0) t_timed = t, lt = l;
        if (strncmp(l + used, "main: setting the event\n", 24) == 0) t_set = t, ls = l;
        if (strncmp(l + used, "waiter: success, event set: 1\n", 30) == 0) t_woke = t, lw = l;
    }
    CHECK(t_timed >= 1.9 && (t_timed < 2.9 || ex_slow())); /* at 2 s, before the set */
    CHECK(t_set >= 2.9);
    CHECK(t_woke >= t_set && (t_woke < t_set + 1.5 || ex_slow()));
    CHECK(lt && ls && lw && lt < ls && ls < lw);
    CHECK_EQ(ex_lines(r.out), 5);
    ex_free(&r);
}

TEST_T(example_shared_value_array, 30) {
    ex_result r = ex_run("shared_value_array", 20);
    long without = -1;
    const char *l;
    CHECK(ex_line(r.out, "num 3.14\n"));
    CHECK(ex_line(r.out, "arr 5 0 0 0 0 0 0 0 0 0\n"));
    CHECK((l = ex_line(r.out, "without lock: ")) && sscanf(l, "without lock: %ld", &without) == 1);
    CHECK(without > 0 && without <= 200000); /* lost updates, never extra ones */
    CHECK(ex_line(r.out, "with lock: 200000 (expected 200000)\n"));
    ex_free(&r);
}

TEST_T(example_pool_squares, 30) {
    ex_result r = ex_run("pool_squares", 20);
    CHECK(strcmp(r.out, "map: 1 4 9 16 25 36 49 64 81 100\n"
                        "apply_async: 1 4 9 16 25 36 49 64 81 100\n"
                        "pool closed and joined\n") == 0);
    ex_free(&r);
}

TEST_T(example_pool_progress, 30) {
    ex_result r = ex_run("pool_progress", 20);
    CHECK(strcmp(r.out, "300 files cleaned, 0 failed, results in input order: yes\n"
                        "kept 8000 of 12000 lines (expected 8000)\n") == 0);
    CHECK_EQ(strlen(r.err), 0); /* the bar draws only on a terminal */
    ex_free(&r);
}

TEST_T(example_pipe, 30) {
    ex_result r = ex_run("pipe", 20);
    CHECK(ex_line(r.out, "answerer got: hello\n"));
    CHECK(ex_line(r.out, "asker got: hello, too\n"));
    const char *l = ex_line(r.out, "reader got 0\n");
    CHECK(l != NULL);
    for (int i = 0; i < 10; i++) { /* in order, each once */
        char want[32];
        snprintf(want, sizeof want, "reader got %d\n", i);
        CHECK(strncmp(l, want, strlen(want)) == 0);
        l += strlen(want);
    }
    CHECK(strcmp(l, "reader: end of file after 10 numbers\n") == 0);
    CHECK_EQ(ex_lines(r.out), 13);
    ex_free(&r);
}

TEST_T(example_queue_producers, 30) {
    ex_result r = ex_run("queue_producers", 20);
    int getters[10], putters[10], n = 0, seen[10] = {0}, last[2] = {-1, -1};
    const char *l = r.out;
    for (; n < 10; n++, l = strchr(l, '\n') + 1) {
        long sec, usec;
        CHECK(sscanf(l, "%d(get): %d(put):%ld.%ld", &getters[n], &putters[n], &sec, &usec) == 4);
        for (int i = 0; i < n; i++) CHECK(getters[i] != getters[n] && putters[i] != putters[n]);
    }
    for (; strncmp(l, "receiver-", 9) == 0; l = strchr(l, '\n') + 1) {
        int who = l[9] - 'A', item;
        CHECK(who == 0 || who == 1);
        if (strncmp(l + 10, ": done\n", 7) == 0) continue;
        CHECK(sscanf(l + 10, " got item %d", &item) == 1 && item >= 0 && item < 10);
        CHECK(!seen[item]++);
        CHECK(item > last[who]); /* FIFO: each receiver sees increasing items */
        last[who] = item;
    }
    for (int i = 0; i < 10; i++) CHECK_EQ(seen[i], 1);
    CHECK_EQ(ex_count(r.out, ": done\n"), 2);
    CHECK(strcmp(l, "put with timeout 0 on a full queue (3 held): timed out\n"
                    "get with timeout 0 on an empty queue: timed out\n") == 0);
    ex_free(&r);
}

TEST_T(example_writer_process, 30) {
    ex_result r = ex_run("writer_process", 20);
    CHECK(strcmp(r.out, "writer exitcode 0\n--- forward.txt\n"
                        "Hello.\nHi! How are you?\nFine, thanks.\n"
                        "Is the report done?\nAlmost.\nSend it when it is.\n"
                        "Lunch?\nNot today.\nTomorrow then.\n"
                        "Goodbye.\nSee you.\nTake care.\n--- reversed.txt\n"
                        "Fine, thanks.\nHi! How are you?\nHello.\n"
                        "Send it when it is.\nAlmost.\nIs the report done?\n"
                        "Tomorrow then.\nNot today.\nLunch?\n"
                        "Take care.\nSee you.\nGoodbye.\n--- both files as expected\n") == 0);
    ex_free(&r);
}

TEST_T(example_pipeline, 40) {
    ex_result r = ex_run("pipeline", 30);
    static int seen[300];
    int batched = 0, answers = 0;
    for (const char *l = r.out; *l; l = strchr(l, '\n') + 1) {
        int n, pre, infer, k, used = 0;
        long feature;
        char label[8];
        if (sscanf(l, "batcher: %d items (%n", &k, &used) == 1 && used) {
            CHECK(k > 0 && k <= 128);
            batched += k;
        } else if (sscanf(l, "answer %d: feature %ld, %7[a-z] (pre-%d, infer-%d)", &n, &feature,
                          label, &pre, &infer) == 5) {
            CHECK(n >= 0 && n < 300 && !seen[n]++);
            CHECK_EQ(feature, (long)n * n);
            CHECK(strcmp(label, n % 2 ? "odd" : "even") == 0);
            CHECK_EQ(pre, n % 2);
            CHECK_EQ(infer, n % 6);
            answers++;
        } else {
            CHECK(strcmp(l, "300 requests, 300 answered exactly once, 0 extra answers\n") == 0);
        }
    }
    CHECK_EQ(answers, 300);
    CHECK_EQ(batched, 300);
    CHECK(r.secs >= 0.9); /* the last partial batch waits for its second */
    ex_free(&r);
}

TEST_T(example_listener_client, 30) {
    ex_result r = ex_run("listener_client", 20);
    const char *l = ex_line(r.out, "server listening on 127.0.0.1:");
    CHECK(l && atoi(l + 30) > 0);
    for (int c = 0; c < 3; c++)
        for (int i = 1; i <= 3; i++) { /* each request answered, in order per client */
            char want[96];
            snprintf(want, sizeof want, "client %d got: HELLO FROM CLIENT %d (%d)\n", c, c, i);
            CHECK(ex_line(r.out, want));
            if (i > 1) {
                char prev[96];
                snprintf(prev, sizeof prev, "client %d got: HELLO FROM CLIENT %d (%d)\n", c, c, i - 1);
                CHECK(ex_line(r.out, prev) < ex_line(r.out, want));
            }
        }
    CHECK(ex_line(r.out, "client 3: authentication failed\n"));
    CHECK(ex_line(r.out, "server: 3 clients served, 9 requests, 1 refused\n"));
    CHECK_EQ(ex_lines(r.out), 12);
    ex_free(&r);
}

/* README's Python snippet, run as it stands (its port replaced by the one the server
   got), against "listener_client serve 127.0.0.1:0 1". */
TEST_T(example_listener_client_python_snippet, 30) {
    if (t_py_slow("example_listener_client_python_snippet")) return;
    char *readme = ex_slurp("README.md"), *py = strstr(readme, "```python\n# talks to examples/listener_client.c");
    CHECK(py != NULL);
    py += strlen("```python\n");
    char *end = strstr(py, "```");
    CHECK(end != NULL);
    *end = 0;
    const char *dir = getenv("MP_EXAMPLES_DIR");
    char bin[512], line[128], port[128], code[2048];
    snprintf(bin, sizeof bin, "%s/listener_client", dir && *dir ? dir : "build/examples");
    char *sargv[] = {bin, (char *)"serve", (char *)"127.0.0.1:0", (char *)"1", NULL};
    t_proc server, client;
    CHECK(t_proc_start(sargv, &server));
    CHECK(t_proc_line(&server, line, sizeof line, 20));
    CHECK(strncmp(line, "listening on 127.0.0.1:", 23) == 0);
    snprintf(port, sizeof port, "%s", line + 23);
    code[0] = 0; /* every "6000" (the snippet's port) becomes the real one */
    for (char *at; (at = strstr(py, "6000")) != NULL; py = at + 4)
        snprintf(code + strlen(code), sizeof code - strlen(code), "%.*s%s", (int)(at - py), py, port);
    CHECK(strstr(code, port) != NULL);
    snprintf(code + strlen(code), sizeof code - strlen(code), "%s", py);
    char *pargv[] = {(char *)"python3", (char *)"-c", code, NULL};
    CHECK(t_proc_start(pargv, &client));
    CHECK(t_proc_line(&client, line, sizeof line, 20));
    CHECK(strcmp(line, "b'HELLO FROM PYTHON'") == 0);
    CHECK_EQ(t_proc_end(&client), 0);
    CHECK(t_proc_line(&server, line, sizeof line, 20));
    CHECK(strcmp(line, "server: 1 clients served, 1 requests, 0 refused") == 0);
    CHECK_EQ(t_proc_end(&server), 0);
    free(readme);
}

/* ---- every snippet in README.md and mp.h's doc block is cut from an example ---- */

/* Lines of a file, NULL-terminated, pointing into one buffer (both to be freed). */
static char **ex_split(char *text, int *count) {
    int n = 0, cap = 64;
    char **v = (char **)malloc(sizeof *v * (size_t)cap);
    CHECK(v != NULL);
    for (char *l = text; *l;) {
        char *nl = strchr(l, '\n');
        if (n + 1 >= cap) CHECK((v = (char **)realloc(v, sizeof *v * (size_t)(cap *= 2))) != NULL);
        v[n++] = l;
        if (!nl) break;
        *nl = 0;
        l = nl + 1;
    }
    v[n] = NULL;
    *count = n;
    return v;
}

static bool ex_same(const char *a, const char *b, bool trim) {
    if (trim) a += strspn(a, " "), b += strspn(b, " ");
    return strcmp(a, b) == 0;
}

/* The snippet's lines must appear in examples/name in order: consecutive, except
   that a "..." line allows a gap. trim: ignore indentation. True if they do. */
static bool ex_snippet_ok(const char *name, char **lines, int n, bool trim) {
    char path[256];
    snprintf(path, sizeof path, "examples/%s", name);
    char *text = ex_slurp(path);
    int fn;
    char **file = ex_split(text, &fn);
    int at = -1; /* index in file of the last matched line */
    bool gap = true, ok = fn > 0;
    for (int i = 0; i < n && ok; i++) {
        if (ex_same(lines[i], "...", true)) {
            gap = true;
            continue;
        }
        int j = at + 1;
        if (gap)
            while (j < fn && !ex_same(file[j], lines[i], trim)) j++;
        ok = j < fn && ex_same(file[j], lines[i], trim);
        if (!ok) fprintf(stderr, "  snippet line not in %s (in order): \"%s\"\n", path, lines[i]);
        at = j, gap = false;
    }
    free(file);
    free(text);
    return ok;
}

TEST(example_snippets_are_cut_from_examples) {
    int n, snippets = 0;
    char *readme = ex_slurp("README.md"), **l = ex_split(readme, &n);
    CHECK(n > 50); /* run from the repository root */
    for (int i = 0; i < n; i++) {
        if (strcmp(l[i], "```c") != 0 && strcmp(l[i], "```cpp") != 0) continue;
        char name[128];
        CHECK(l[i + 1] && sscanf(l[i + 1], "// examples/%127[^ ]", name) == 1);
        int end = i + 2;
        while (l[end] && strcmp(l[end], "```") != 0) end++;
        CHECK(ex_snippet_ok(name, l + i + 2, end - i - 2, false));
        snippets++;
        i = end;
    }
    CHECK(snippets >= 8);
    free(l);
    free(readme);

    /* mp.h's doc block: after a line saying "cut from examples/NAME.c", the first
       line indented deeper than it sets the snippet's indentation; the snippet runs
       while lines are indented that much (or blank). Indentation is not compared. */
    char *hdr = ex_slurp("mp.h"), **h = ex_split(hdr, &n);
    snippets = 0;
    for (int i = 0; i < n && strcmp(h[i], "*/") != 0; i++) {
        const char *c = strstr(h[i], "cut from examples/");
        char name[128];
        if (!c || sscanf(c, "cut from examples/%127[a-z_.]", name) != 1) continue;
        for (size_t k = strlen(name); k > 0 && name[k - 1] == '.';) name[--k] = 0;
        size_t head = strspn(h[i], " "), base = 0;
        while (h[++i] && (h[i][0] == 0 || (base = strspn(h[i], " ")) <= head)) {}
        int m = 0;
        char *body[128];
        for (; h[i] && (h[i][0] == 0 || strspn(h[i], " ") >= base) && m < 128; i++)
            body[m++] = h[i][0] ? h[i] + base : h[i];
        while (m > 0 && body[m - 1][0] == 0) m--;
        CHECK(m > 0);
        CHECK(ex_snippet_ok(name, body, m, true));
        snippets++;
        i--;
    }
    CHECK(snippets >= 4);
    free(h);
    free(hdr);
}

/* named_heap runs as two programs: a consumer, a producer killed half way, and a
   second producer; the consumer goes on to the second's "done", and removes the name. */
static pid_t ex_spawn(const char *bin, const char *role, const char *heap, const char *count,
                      const char *out) {
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) _exit(126);
        dup2(fd, 1);
        close(fd);
        execl(bin, "named_heap", role, heap, count, (char *)NULL);
        _exit(127);
    }
    return pid;
}

TEST_T(example_named_heap_two_programs, 60) {
    const char *dir = getenv("MP_EXAMPLES_DIR");
    char rel[512], bin[PATH_MAX], heap[64], tmp[] = "/tmp/mp_example.XXXXXX", co[600], po[600], shm[128];
    snprintf(rel, sizeof rel, "%s/named_heap", dir && *dir ? dir : "build/examples");
    CHECK(realpath(rel, bin) != NULL);
    CHECK(mkdtemp(tmp) != NULL);
    snprintf(heap, sizeof heap, "/mp-example-%d", (int)getpid());
    snprintf(shm, sizeof shm, "/dev/shm%s", heap);
    snprintf(co, sizeof co, "%s/consumer", tmp);
    snprintf(po, sizeof po, "%s/producer", tmp);
    pid_t c = ex_spawn(bin, "consume", heap, "0", co);
    pid_t p1 = ex_spawn(bin, "produce", heap, "100000", po);
    usleep(ex_slow() ? 3000000 : 300000);
    kill(p1, SIGKILL); /* mid-stream */
    int st = t_wait(p1);
    CHECK(WIFSIGNALED(st));
    pid_t p2 = ex_spawn(bin, "produce", heap, "150", po);
    st = t_wait(p2);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = t_wait(c);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *out = ex_slurp(co), *pout = ex_slurp(po);
    int jobs = 0;
    const char *l = strstr(out, "consumer: ");
    for (const char *n = l; n && (n = strstr(n, "consumer: ")); n++) l = n; /* the last line */
    CHECK(l && sscanf(l, "consumer: %d jobs in all, producer done", &jobs) == 1);
    CHECK(jobs >= 150); /* the second's 150, after some of the first's */
    CHECK(strstr(pout, ": 150 jobs sent\n") != NULL);
    CHECK(access(shm, F_OK) != 0); /* the consumer removed the name */
    free(out);
    free(pout);
    unlink(co), unlink(po);
    CHECK(rmdir(tmp) == 0);
}

/* ---- the Manager examples ---- */

TEST_T(example_manager, 30) {
    ex_result r = ex_run("manager", 20);
    CHECK(strcmp(r.out, "3.14\n[5, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n['Hello']\n") == 0);
    ex_free(&r);
}

TEST_T(example_manager_remote_demo, 30) {
    ex_result r = ex_run("manager_remote", 20);
    CHECK(ex_line(r.out, "intruder: refused: wrong key\n"));
    CHECK(ex_line(r.out, "  alice: 100\n") && ex_line(r.out, "  bob: 100\n") && ex_line(r.out, "  carol: 100\n"));
    CHECK(ex_line(r.out, "total 300\n"));
    ex_free(&r);
}

/* Server and clients as separate programs, as between two machines. */
TEST_T(example_manager_remote_separate_programs, 40) {
    const char *dir = getenv("MP_EXAMPLES_DIR");
    char bin[512], line[160];
    snprintf(bin, sizeof bin, "%s/manager_remote", dir && *dir ? dir : "build/examples");
    char *sargv[] = {bin, (char *)"serve", (char *)"127.0.0.1:0", (char *)"sesame", (char *)"3", NULL};
    t_proc server, client[4];
    CHECK(t_proc_start(sargv, &server));
    CHECK(t_proc_line(&server, line, sizeof line, 20));
    CHECK(strncmp(line, "serving on 127.0.0.1:", 21) == 0);
    char address[160];
    memcpy(address, line + 11, strlen(line + 11) + 1);
    const char *names[4] = {"c0", "c1", "c2", "c3"};
    for (int i = 0; i < 4; i++) {
        char *cargv[] = {bin, (char *)"client", address, (char *)(i < 3 ? "sesame" : "open up"),
                         (char *)names[i], NULL};
        CHECK(t_proc_start(cargv, &client[i]));
    }
    for (int i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, i < 3 ? "%s: counted to 100" : "%s: refused: wrong key", names[i]);
        CHECK(t_proc_line(&client[i], line, sizeof line, 20));
        CHECK(strcmp(line, want) == 0);
        int st = t_proc_end(&client[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CHECK(t_proc_line(&server, line, sizeof line, 20));
    CHECK(strcmp(line, "counters:") == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(t_proc_line(&server, line, sizeof line, 20));
        CHECK(strncmp(line, "  c", 3) == 0 && strstr(line, ": 100") != NULL);
    }
    CHECK(t_proc_line(&server, line, sizeof line, 20));
    CHECK(strcmp(line, "total 300 from 3 clients") == 0);
    int st = t_proc_end(&server);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* No merge conflict was committed into the documents a user reads first. */
TEST(example_docs_hold_no_merge_markers) {
    const char *files[] = {"README.md", "mp.h", "Makefile"};
    for (int f = 0; f < 3; f++) {
        int n;
        char *text = ex_slurp(files[f]), **l = ex_split(text, &n);
        for (int i = 0; i < n; i++) {
            bool marker = !strncmp(l[i], "<<<<<<< ", 8) || !strncmp(l[i], ">>>>>>> ", 8);
            if (marker) fprintf(stderr, "  %s:%d: %s\n", files[f], i + 1, l[i]);
            CHECK(!marker);
        }
        free(l);
        free(text);
    }
}
