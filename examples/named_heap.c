/* named_heap.c - two unrelated programs share a queue at memory speed.
   Run the consumer in one terminal and the producer in another:
       ./named_heap consume /demo
       ./named_heap produce /demo [count]
   Both attach the named heap /demo (the first to come creates it) and find the queue
   in it by name. Kill a producer (Ctrl-C, kill -9) and start another: the consumer
   goes on. The consumer stops at the producer's "done", or after 10 s of silence, and
   removes the name /demo (programs still attached keep their heap until they exit).
   Build: cc -std=c11 -Wall -Wextra -Werror -I. examples/named_heap.c -o named_heap -pthread */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

/* The queue named "jobs" in the heap: whoever comes first creates it. */
static mp_queue *jobs_queue(void) {
    mp_queue *q = (mp_queue *)mp_name_get("jobs");
    if (q) return q;
    mp_queue *mine = mp_queue_create(NULL);
    if (!mine) return NULL;
    q = (mp_queue *)mp_name_setdefault("jobs", mine);   // another may have won the race
    if (q != mine) mp_queue_destroy(mine);
    return q;
}

static int produce(mp_queue *q, int count) {
    char msg[64];
    for (int i = 0; i < count; i++) {
        int len = snprintf(msg, sizeof msg, "job %d from pid %d", i, (int)getpid());
        int rc = mp_queue_put(q, msg, (size_t)len, 10.0);
        if (rc != MP_OK) return fail("put", rc);
        usleep(2000);   /* a job every 2 ms: time to watch, or to kill us */
    }
    int rc = mp_queue_put(q, "done", 4, 10.0);
    if (rc != MP_OK) return fail("put", rc);
    printf("producer %d: %d jobs sent\n", (int)getpid(), count);
    return 0;
}

static int consume(mp_queue *q) {
    char msg[64];
    size_t len;
    int got = 0, rc;
    while ((rc = mp_queue_get(q, msg, sizeof msg - 1, &len, 10.0)) == MP_OK) {
        msg[len] = 0;
        if (strcmp(msg, "done") == 0) break;
        if (++got % 100 == 0) printf("consumer: %d jobs, last \"%s\"\n", got, msg);
    }
    if (rc != MP_OK && rc != MP_ETIMEDOUT) return fail("get", rc);
    printf("consumer: %d jobs in all, %s\n", got, rc == MP_OK ? "producer done" : "10 s of silence");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[1], "produce") && strcmp(argv[1], "consume"))) {
        fprintf(stderr, "usage: %s produce|consume NAME [count]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);   /* whole lines, even into a pipe */
    mp_config cfg = { .name = argv[2] };   // create or attach the named heap
    int rc = mp_init(&cfg);
    if (rc != MP_OK) return fail("mp_init", rc);
    mp_queue *q = jobs_queue();
    if (!q) { perror("jobs queue"); return 1; }
    if (argv[1][0] == 'p') return produce(q, argc > 3 ? atoi(argv[3]) : 500);
    rc = consume(q);
    mp_heap_unlink(argv[2]);
    return rc;
}
