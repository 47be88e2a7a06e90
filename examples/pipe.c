/* pipe.c - Python's Pipe between processes.
   1. A duplex pipe: one process sends "hello" and waits for the reply; the other
      receives it and answers "hello, too".
   2. A one-way pipe: a writer streams numbers and closes its end; the reader takes
      them until end of file (MP_ECLOSED).
   A connection is a per-process handle, like a FILE *: each process closes the ends it
   does not use, or the reader would never see end of file.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/pipe.c -o pipe -pthread
       ./pipe */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>

typedef struct { mp_conn *mine, *other; } ends;   /* the ends a process is given */

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

static int asker(void *arg) {
    ends *e = (ends *)arg;
    mp_conn_close(e->other);
    char reply[64];
    size_t len;
    int rc = mp_conn_send(e->mine, "hello", 5);
    if (rc == MP_OK) rc = mp_conn_recv(e->mine, reply, sizeof reply, &len, 10.0);
    if (rc != MP_OK) return fail("asker", rc);
    printf("asker got: %.*s\n", (int)len, reply);
    mp_conn_close(e->mine);
    return 0;
}

static int answerer(void *arg) {
    ends *e = (ends *)arg;
    mp_conn_close(e->other);
    char msg[64];
    size_t len;
    int rc = mp_conn_recv(e->mine, msg, sizeof msg, &len, 10.0);
    if (rc != MP_OK) return fail("answerer", rc);
    printf("answerer got: %.*s\n", (int)len, msg);
    if ((rc = mp_conn_send(e->mine, "hello, too", 10)) != MP_OK) return fail("answerer", rc);
    mp_conn_close(e->mine);
    return 0;
}

static int writer(void *arg) {
    ends *e = (ends *)arg;
    mp_conn_close(e->other);
    for (int i = 0; i < 10; i++) {
        int rc = mp_conn_send(e->mine, &i, sizeof i);
        if (rc != MP_OK) return fail("writer", rc);
    }
    mp_conn_close(e->mine);   /* the reader sees end of file */
    return 0;
}

static int reader(void *arg) {
    ends *e = (ends *)arg;
    mp_conn_close(e->other);
    int n, count = 0, rc;
    size_t len;
    while ((rc = mp_conn_recv(e->mine, &n, sizeof n, &len, 10.0)) == MP_OK) {
        printf("reader got %d\n", n);
        count++;
    }
    printf("reader: %s after %d numbers\n", rc == MP_ECLOSED ? "end of file" : mp_strerror(rc),
           count);
    mp_conn_close(e->mine);
    return rc == MP_ECLOSED ? 0 : 1;
}

/* Start two processes with their ends, close ours, join both; 0 if both exited 0. */
static int run_pair(mp_target_fn f1, ends e1, mp_target_fn f2, ends e2) {
    mp_process_desc d1 = { .target = f1, .arg = &e1 }, d2 = { .target = f2, .arg = &e2 };
    mp_process *p1 = mp_process_create(&d1), *p2 = mp_process_create(&d2);
    if (!p1 || !p2) { perror("mp_process_create"); return 1; }
    int rc = mp_process_start(p1);
    if (rc == MP_OK) rc = mp_process_start(p2);
    if (rc != MP_OK) return fail("start", rc);
    mp_conn_close(e1.mine), mp_conn_close(e1.other);   /* main uses neither end */
    mp_process_join(p1, MP_FOREVER), mp_process_join(p2, MP_FOREVER);
    int bad = mp_process_exitcode(p1) != 0 || mp_process_exitcode(p2) != 0;
    mp_process_destroy(p1), mp_process_destroy(p2);
    return bad;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);   /* whole lines, even into a pipe (children too) */
    mp_conn *a, *b;
    int rc = mp_pipe(&a, &b, true);                 /* duplex: both ends talk */
    if (rc != MP_OK) return fail("mp_pipe", rc);
    if (run_pair(asker, (ends){ a, b }, answerer, (ends){ b, a })) return 1;

    mp_conn *r, *w;
    if ((rc = mp_pipe(&r, &w, false)) != MP_OK) return fail("mp_pipe", rc);   /* r <- w */
    return run_pair(writer, (ends){ w, r }, reader, (ends){ r, w });
}
