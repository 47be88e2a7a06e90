/* writer_process.c - hand writing work to a process through a queue.
   Main writes dialogue groups to forward.txt in order, and sends each group, its lines
   reversed, through a queue to a writer process that appends it to reversed.txt. An
   empty message tells the writer to finish. Main then checks both files. The queue is
   Python's Queue(): unbounded, so main never waits for a slow writer.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/writer_process.c -o writer_process -pthread
       ./writer_process */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GROUPS 4
#define LINES 3
static const char *dialogue[GROUPS][LINES] = {
    { "Hello.", "Hi! How are you?", "Fine, thanks." },
    { "Is the report done?", "Almost.", "Send it when it is." },
    { "Lunch?", "Not today.", "Tomorrow then." },
    { "Goodbye.", "See you.", "Take care." },
};

typedef struct {
    mp_queue *q;
    char path[128];   /* reversed.txt */
} writer_job;

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

static int writer(void *arg) {
    writer_job *job = (writer_job *)arg;
    FILE *f = fopen(job->path, "w");
    if (!f) { perror(job->path); return 1; }
    for (;;) {
        void *msg;
        size_t len;
        int rc = mp_queue_get_alloc(job->q, &msg, &len, MP_FOREVER);
        if (rc != MP_OK) { fclose(f); return fail("mp_queue_get_alloc", rc); }
        if (len == 0) { free(msg); break; }   /* the empty message: finish */
        fwrite(msg, 1, len, f);
        free(msg);
    }
    return fclose(f) == 0 ? 0 : 1;
}

/* The file's first 4 KiB as a string (empty if unreadable); free() it. */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    char *s = (char *)calloc(1, 4096);
    if (f && s && fread(s, 1, 4095, f) == 0) s[0] = 0;
    if (f) fclose(f);
    return s;
}

int main(void) {
    char dir[] = "/tmp/writer_process.XXXXXX", fwd[128];
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    writer_job *job = (writer_job *)mp_calloc(1, sizeof *job);
    /* NULL: unbounded, as Queue() - puts never block, messages wait in the heap */
    if (!job || !(job->q = mp_queue_create(NULL))) { perror("create"); return 1; }
    snprintf(job->path, sizeof job->path, "%s/reversed.txt", dir);
    snprintf(fwd, sizeof fwd, "%s/forward.txt", dir);
    mp_process_desc d = { .target = writer, .arg = job };
    mp_process *w = mp_process_create(&d);
    if (!w) { perror("mp_process_create"); return 1; }
    int rc = mp_process_start(w);
    if (rc != MP_OK) return fail("start", rc);

    char want_fwd[4096] = "", want_rev[4096] = "";
    FILE *f = fopen(fwd, "w");
    if (!f) { perror(fwd); return 1; }
    for (int g = 0; g < GROUPS; g++) {
        char group[512] = "";
        for (int i = 0; i < LINES; i++) {
            fprintf(f, "%s\n", dialogue[g][i]);
            sprintf(want_fwd + strlen(want_fwd), "%s\n", dialogue[g][i]);
            sprintf(group + strlen(group), "%s\n", dialogue[g][LINES - 1 - i]);
        }
        strcat(want_rev, group);
        if ((rc = mp_queue_put(job->q, group, strlen(group), MP_FOREVER)) != MP_OK)
            return fail("mp_queue_put", rc);
    }
    fclose(f);
    if ((rc = mp_queue_put(job->q, "", 0, MP_FOREVER)) != MP_OK) return fail("mp_queue_put", rc);
    if ((rc = mp_process_join(w, MP_FOREVER)) != MP_OK) return fail("join", rc);
    printf("writer exitcode %d\n", mp_process_exitcode(w));

    char *got_fwd = slurp(fwd), *got_rev = slurp(job->path);
    bool ok = got_fwd && got_rev && !strcmp(got_fwd, want_fwd) && !strcmp(got_rev, want_rev);
    printf("--- forward.txt\n%s--- reversed.txt\n%s--- both files %s\n", got_fwd, got_rev,
           ok ? "as expected" : "WRONG");
    free(got_fwd), free(got_rev);
    remove(fwd), remove(job->path), rmdir(dir);
    mp_process_destroy(w);
    mp_queue_destroy(job->q);
    mp_free(job);
    return ok ? 0 : 1;
}
