/* Python peers for the tests: find the interpreters on this machine (python3 and, where
   present, python3.12 / python3.13, also under pyenv), start one on a script with
   pipes to its stdin and stdout, read its lines with a time limit. Static functions:
   include it in the test files that need it. */
#ifndef MP_TEST_PY_PEER_H
#define MP_TEST_PY_PEER_H
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct t_proc {
    pid_t pid;
    int in;  /* its stdin, or -1 */
    int out; /* its stdout, or -1 */
} t_proc;

/* Start argv[0] (searched on PATH) with stdin and stdout on pipes; stderr is kept.
   Returns false if fork or pipe fail. Our ends are close-on-exec. */
__attribute__((unused)) static bool t_proc_start(char *const *argv, t_proc *p) {
    int in[2], out[2];
    p->pid = -1, p->in = p->out = -1;
    if (pipe2(in, O_CLOEXEC) != 0) return false;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]), close(in[1]);
        return false;
    }
    fflush(NULL);
    p->pid = fork();
    if (p->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->in = in[1];
    p->out = out[0];
    return p->pid > 0;
}

/* Close our pipe ends and reap it; returns the raw wait status. */
__attribute__((unused)) static int t_proc_end(t_proc *p) {
    if (p->in >= 0) close(p->in);
    if (p->out >= 0) close(p->out);
    p->in = p->out = -1;
    int st = 0;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {}
    return st;
}

/* One line of its stdout (without the newline) within timeout seconds; false on EOF,
   timeout or a line longer than cap. Reads byte by byte: nothing beyond the line is
   taken from the pipe. */
__attribute__((unused)) static bool t_proc_line(t_proc *p, char *buf, size_t cap, double timeout) {
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pf = {p->out, POLLIN, 0};
        int r = poll(&pf, 1, (int)(timeout * 1000));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        char c;
        ssize_t got = read(p->out, &c, 1);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        if (c == '\n') {
            buf[n] = 0;
            return true;
        }
        buf[n++] = c;
    }
    return false;
}

__attribute__((unused)) static bool t_proc_write(t_proc *p, const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(p->in, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        s += w, n -= (size_t)w;
    }
    return true;
}

/* Whether py runs and is Python 3.minor with multiprocessing.connection. */
__attribute__((unused)) static bool t_py_is(const char *py, int minor) {
    char code[160];
    snprintf(code, sizeof code,
             "import sys, multiprocessing.connection\n"
             "sys.exit(0 if sys.version_info[:2] == (3, %d) else 1)\n", minor);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp(py, py, "-c", code, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* A Python 3.minor interpreter: python3.minor on PATH, python3 if it is that version,
   or one installed by pyenv. false (and a note to say why) if there is none. */
__attribute__((unused)) static bool t_py_find(int minor, char *out, size_t cap) {
    char name[32], pat[600];
    snprintf(name, sizeof name, "python3.%d", minor);
    if (t_py_is(name, minor)) return snprintf(out, cap, "%s", name), true;
    if (t_py_is("python3", minor)) return snprintf(out, cap, "python3"), true;
    const char *root = getenv("PYENV_ROOT"), *home = getenv("HOME");
    if (root) snprintf(pat, sizeof pat, "%s/versions/3.%d*/bin/python3.%d", root, minor, minor);
    else snprintf(pat, sizeof pat, "%s/.pyenv/versions/3.%d*/bin/python3.%d", home ? home : "", minor, minor);
    glob_t g;
    bool found = false;
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && !found; i++)
            if (t_py_is(g.gl_pathv[i], minor)) found = true, snprintf(out, cap, "%s", g.gl_pathv[i]);
        globfree(&g);
    }
    return found;
}

/* Python peers are skipped under valgrind (it would trace the interpreter). */
__attribute__((unused)) static bool t_py_slow(const char *test) {
    if (!getenv("MP_TEST_SLOW")) return false;
    printf("SKIP %s: no Python peers under valgrind\n", test);
    return true;
}
#endif
