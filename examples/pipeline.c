/* pipeline.c - an asynchronous service built from processes and queues.
   front (main) -> pre-0, pre-1 (round robin; 2 preprocessing workers) -> infer-0..5
   (by n % 6; six receivers) -> batcher (flushes at 128 items or 1 s after a batch
   began) -> predictor (loads its model after the fork, labels batches) -> results ->
   front, which prints every answer. Stages find their queues by name in mp's registry
   (mp_name_set / mp_name_get). After a bounded number of requests, all answered, the front shuts
   the stages down in order: close a stage's input queues, join its processes.
   Build: cc -std=c11 -Wall -Wextra -Werror -I. examples/pipeline.c -o pipeline -pthread */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REQUESTS 300
#define BATCH 128
typedef struct { int n, pre, receiver; long feature; char label[8]; } item;

static mp_queue *queue_named(const char *fmt, int i) {   /* "pre-%d", 1: queue "pre-1" */
    char name[16];
    snprintf(name, sizeof name, fmt, i);
    return (mp_queue *)mp_name_get(name);
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int preprocess(void *arg) {   /* pre-k: compute the feature, route by n % 6 */
    int k = (int)(intptr_t)arg, rc;
    mp_queue *in = queue_named("pre-%d", k);
    item it;
    size_t len;
    while ((rc = mp_queue_get(in, &it, sizeof it, &len, MP_FOREVER)) == MP_OK) {
        it.pre = k;
        it.feature = (long)it.n * it.n;
        mp_queue *out = queue_named("infer-%d", it.n % 6);
        if ((rc = mp_queue_put(out, &it, sizeof it, MP_FOREVER)) != MP_OK) break;
    }
    return rc == MP_ECLOSED ? 0 : fail("preprocess", rc);   /* closed: the normal end */
}

static int receive(void *arg) {      /* infer-k: hand items to the batcher */
    int k = (int)(intptr_t)arg, rc;
    mp_queue *in = queue_named("infer-%d", k), *out = queue_named("batcher", 0);
    item it;
    size_t len;
    while ((rc = mp_queue_get(in, &it, sizeof it, &len, MP_FOREVER)) == MP_OK) {
        it.receiver = k;
        if ((rc = mp_queue_put(out, &it, sizeof it, MP_FOREVER)) != MP_OK) break;
    }
    return rc == MP_ECLOSED ? 0 : fail("receive", rc);
}

static int batcher(void *arg) {
    mp_queue *in = queue_named("batcher", 0), *out = queue_named("predictor", 0);
    item batch[BATCH];
    int count = 0, rc, put = MP_OK;
    double deadline = 0;
    do {
        double wait = MP_FOREVER;          /* empty batch: wait for its first item */
        if (count) wait = deadline > now() ? deadline - now() : 0;
        size_t len;
        rc = mp_queue_get(in, &batch[count], sizeof(item), &len, wait);
        if (rc == MP_OK && count++ == 0) deadline = now() + 1.0;
        if (count && (count == BATCH || rc != MP_OK)) {
            printf("batcher: %d items (%s)\n", count, count == BATCH ? "full" :
                   rc == MP_ETIMEDOUT ? "1 s passed" : "closing");
            put = mp_queue_put(out, batch, count * sizeof(item), MP_FOREVER);
            count = 0;
        }
    } while ((rc == MP_OK || rc == MP_ETIMEDOUT) && put == MP_OK);
    (void)arg;
    return rc == MP_ECLOSED && put == MP_OK ? 0 : fail("batcher", put ? put : rc);
}

static int predictor(void *arg) {
    (void)arg;   /* the model is loaded here, after the fork, in this process only */
    const char *model[2] = { "even", "odd" };
    mp_queue *in = queue_named("predictor", 0), *out = queue_named("results", 0);
    void *batch;
    size_t len;
    int rc;
    while ((rc = mp_queue_get_alloc(in, &batch, &len, MP_FOREVER)) == MP_OK) {
        item *items = (item *)batch;
        for (size_t i = 0; i < len / sizeof(item); i++)
            strcpy(items[i].label, model[items[i].feature % 2]);
        rc = mp_queue_put(out, batch, len, MP_FOREVER);
        free(batch);
        if (rc) break;
    }
    return rc == MP_ECLOSED ? 0 : fail("predictor", rc);
}

/* Each stage: its input queues (one per process) and its processes' function. */
static const struct { const char *queue; int count; mp_target_fn fn; } stages[5] = {
    { "pre-%d", 2, preprocess }, { "infer-%d", 6, receive },
    { "batcher", 1, batcher }, { "predictor", 1, predictor }, { "results", 1, NULL },
};

int main(void) {
    static int answered[REQUESTS];
    mp_process *procs[10];
    int np = 0, rc, bad = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* whole lines, even into a pipe (children too) */
    for (int s = 0; s < 5; s++)          /* register every queue by name */
        for (int i = 0; i < stages[s].count; i++) {
            char name[16];
            mp_queue *q = mp_queue_create(NULL);
            snprintf(name, sizeof name, stages[s].queue, i);
            if (!q || (rc = mp_name_set(name, q)) != MP_OK) return fail("queue", q ? rc : MP_ENOMEM);
        }
    for (int s = 0; s < 4; s++)          /* daemons: they go if the front goes */
        for (int i = 0; i < stages[s].count; i++, np++) {
            mp_process_desc d = { .target = stages[s].fn, .arg = (void *)(intptr_t)i,
                                  .daemon = true };
            if (!(procs[np] = mp_process_create(&d))) { perror("mp_process_create"); return 1; }
            if ((rc = mp_process_start(procs[np])) != MP_OK) return fail("start", rc);
        }

    for (int n = 0; n < REQUESTS; n++) {   /* the front: send every request... */
        item it = { .n = n };
        if ((rc = mp_queue_put(queue_named("pre-%d", n % 2), &it, sizeof it, MP_FOREVER)))
            return fail("put", rc);
    }
    for (int got = 0; got < REQUESTS;) {   /* ...and print every answer */
        void *batch;
        size_t len;
        if ((rc = mp_queue_get_alloc(queue_named("results", 0), &batch, &len, 30.0)))
            return fail("results", rc);
        for (item *it = (item *)batch; (char *)it < (char *)batch + len; it++, got++) {
            answered[it->n]++;
            printf("answer %d: feature %ld, %s (pre-%d, infer-%d)\n", it->n, it->feature,
                   it->label, it->pre, it->receiver);
        }
        free(batch);
    }

    np = 0;   /* shut down stage by stage: close its input queues, join its processes */
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < stages[s].count; i++) mp_queue_close(queue_named(stages[s].queue, i));
        for (int i = 0; i < stages[s].count; i++, np++) {
            if ((rc = mp_process_join(procs[np], 10.0)) != MP_OK) return fail("join", rc);
            bad |= mp_process_exitcode(procs[np]) != 0;
            mp_process_destroy(procs[np]);
        }
    }
    int once = 0;
    for (int n = 0; n < REQUESTS; n++) once += answered[n] == 1;
    size_t extra = mp_queue_qsize(queue_named("results", 0));
    printf("%d requests, %d answered exactly once, %zu extra answers\n", REQUESTS, once, extra);
    for (int s = 0; s < 5; s++)
        for (int i = 0; i < stages[s].count; i++) mp_queue_destroy(queue_named(stages[s].queue, i));
    return bad || once != REQUESTS || extra;
}
