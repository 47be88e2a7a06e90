/* pool_progress.c - a data-cleaning job on a pool, with a progress bar.
   The example makes a few hundred small text files in a temporary directory. A pool
   cleans them, one file per task: a worker keeps the lines that are neither blank nor
   comments, writes them to a clean file and returns how many it kept. imap hands the
   results back in input order while mp_progress_bar shows files done / total, rate and
   time left on stderr (when stderr is a terminal).

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/pool_progress.c -o pool_progress -pthread
       ./pool_progress */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FILES 300
#define LINES 40

typedef struct {          /* one map input (copied to the workers) */
    char path[120];       /* the file to clean */
    char clean_path[120]; /* where its kept lines go */
} job;

/* The map function: clean one file; the count of kept lines goes to *out. */
static int clean_file(const void *in, void *out) {
    const job *j = (const job *)in;
    char line[256];
    FILE *f = fopen(j->path, "r"), *g = fopen(j->clean_path, "w");
    int kept = 0;
    while (f && g && fgets(line, sizeof line, f)) {
        if (line[0] == '\n' || line[0] == '#') continue;
        fputs(line, g);
        kept++;
    }
    int bad = !f || !g;
    if (f) fclose(f);
    if (g && fclose(g) != 0) bad = 1;
    usleep(5000);   /* stands for real work, so the bar has time to show */
    *(int *)out = kept;
    return bad;     /* non-zero: this item fails with MP_ETASK */
}

/* FILES files of LINES lines; every third line blank or a comment. Returns lines to keep. */
static int make_files(const char *dir, job *names) {
    int keep = 0;
    for (int i = 0; i < FILES; i++) {
        snprintf(names[i].path, sizeof names[i].path, "%s/data%03d.txt", dir, i);
        snprintf(names[i].clean_path, sizeof names[i].clean_path, "%s/clean%03d.txt", dir, i);
        FILE *f = fopen(names[i].path, "w");
        if (!f) return -1;
        for (int j = 0; j < LINES; j++) {
            if ((i + j) % 3 == 0) fputs(j % 2 ? "\n" : "# comment\n", f);
            else fprintf(f, "%d,%d,%d\n", i, j, i * j), keep++;
        }
        fclose(f);
    }
    return keep;
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

int main(void) {
    static job names[FILES];
    char dir[] = "/tmp/pool_progress.XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    int expected = make_files(dir, names);
    mp_pool *pool = mp_pool_create(NULL);   /* one worker per CPU */
    if (expected < 0 || !pool) { perror("setup"); return 1; }

    mp_map_desc md = { .fn = clean_file, .in = names, .in_size = sizeof(job),
                       .out_size = sizeof(int), .n = FILES,
                       .progress = mp_progress_bar, .progress_arg = "cleaning" };
    mp_imap *it = mp_pool_imap(pool, &md);
    if (!it) { perror("mp_pool_imap"); return 1; }
    int kept, total = 0, failed = 0, rc;
    size_t index, next = 0;
    bool in_order = true;
    while ((rc = mp_imap_next(it, &kept, &index, MP_FOREVER)) != MP_ECLOSED) {
        in_order &= index == next++;
        if (rc == MP_OK) total += kept;
        else fprintf(stderr, "%s: %s\n", names[index].path, mp_strerror(rc)), failed++;
    }
    mp_imap_destroy(it);
    mp_pool_close(pool);
    if ((rc = mp_pool_join(pool, MP_FOREVER)) != MP_OK) return fail("mp_pool_join", rc);
    mp_pool_destroy(pool);

    printf("%zu files cleaned, %d failed, results in input order: %s\n", next, failed,
           in_order ? "yes" : "no");
    printf("kept %d of %d lines (expected %d)\n", total, FILES * LINES, expected);
    for (int i = 0; i < FILES; i++) remove(names[i].path), remove(names[i].clean_path);
    rmdir(dir);
    return failed || !in_order || total != expected;
}
