/* manager_remote.c - a Manager across computers: a server holds a dict of counters;
   clients on any machine that can reach the address, and hold the key, update it.
       ./manager_remote serve 127.0.0.1:5000 KEY [N]   serve; after N clients, stop
       ./manager_remote client 127.0.0.1:5000 KEY NAME count 100 into counters[NAME]
   Without arguments it runs the lot: a server on 127.0.0.1 (port 0: the system picks
   one), three clients and one with a wrong key, each in its own process. Use a real
   address ("0.0.0.0:5000" or ":5000" to listen on every interface) between machines.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/manager_remote.c -o manager_remote -pthread
       ./manager_remote */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int print_counter(const void *k, size_t kl, const void *v, size_t vl, void *arg) {
    long n = 0;
    memcpy(&n, v, vl < sizeof n ? vl : sizeof n);
    printf("  %.*s: %ld\n", (int)kl, (const char *)k, n);
    *(long *)arg += n;
    return 0;
}

/* Serve until `clients` have appended their name to the list "done" (0: forever). */
static int serve(const char *address, const char *key, long clients) {
    mp_manager_desc d = { .address = address, .authkey = key, .authkey_len = strlen(key) };
    mp_manager *m = mp_manager_start(&d);
    mp_list *done = m ? mp_manager_list(m, "done") : NULL;
    mp_dict *counters = m ? mp_manager_dict(m, "counters") : NULL;
    if (!done || !counters) {
        perror("serve");
        return 1;
    }
    printf("serving on %s\n", mp_manager_address(m));
    fflush(stdout);
    size_t n = 0;
    while ((clients == 0 || n < (size_t)clients) && mp_list_len(done, &n) == MP_OK)
        usleep(20000);
    long total = 0;
    printf("counters:\n");
    mp_dict_items(counters, print_counter, &total);
    printf("total %ld from %zu clients\n", total, n);
    mp_dict_destroy(counters);
    mp_list_destroy(done);
    return mp_manager_shutdown(m) == MP_OK ? 0 : 1;
}

/* A client: connect with the key, then counters[name] += 1, a hundred times. */
static int client(const char *address, const char *key, const char *name) {
    mp_manager_desc d = { .address = address, .authkey = key, .authkey_len = strlen(key) };
    mp_manager *m = mp_manager_connect(&d);
    if (!m) {
        printf("%s: %s\n", name, errno == EACCES ? "refused: wrong key" : strerror(errno));
        return errno == EACCES ? 0 : 1;
    }
    mp_dict *counters = mp_manager_dict(m, "counters");
    mp_list *done = mp_manager_list(m, "done");
    int rc = counters && done ? MP_OK : MP_ECLOSED;
    size_t nl = strlen(name), len;
    for (int i = 0; i < 100 && rc == MP_OK; i++) {
        long n = 0;   // one client per name, so read-modify-write needs no lock here
        rc = mp_dict_get(counters, name, nl, &n, sizeof n, &len);
        if (rc == MP_OK || rc == MP_ENOTFOUND) n++, rc = mp_dict_set(counters, name, nl, &n, sizeof n);
    }
    if (rc == MP_OK) rc = mp_list_append(done, name, nl);
    printf("%s: %s\n", name, rc == MP_OK ? "counted to 100" : mp_strerror(rc));
    mp_dict_destroy(counters);
    mp_list_destroy(done);
    mp_manager_disconnect(m);
    return rc != MP_OK;
}

static const char *g_address;
static int client_process(void *arg) {
    const char *name = (const char *)arg;
    return client(g_address, strcmp(name, "intruder") ? "change me" : "a wrong key", name);
}

static int demo(void) {
    mp_manager_desc d = { .address = "127.0.0.1:0", .authkey = "change me", .authkey_len = 9 };
    mp_manager *m = mp_manager_start(&d);
    if (!m) return perror("mp_manager_start"), 1;
    g_address = mp_manager_address(m);
    static char *names[] = { "alice", "bob", "carol", "intruder" };
    mp_process *p[4];
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        mp_process_desc pd = { .target = client_process, .arg = names[i] };
        if (!(p[i] = mp_process_create(&pd)) || mp_process_start(p[i]) != MP_OK) return 1;
    }
    for (int i = 0; i < 4; i++) {
        mp_process_join(p[i], MP_FOREVER);
        rc |= mp_process_exitcode(p[i]) != 0;
        mp_process_destroy(p[i]);
    }
    long total = 0;
    mp_dict *counters = mp_manager_dict(m, "counters");
    mp_dict_items(counters, print_counter, &total);
    printf("total %ld\n", total);
    mp_dict_destroy(counters);
    mp_manager_shutdown(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 1) return demo();
    if (argc >= 4 && strcmp(argv[1], "serve") == 0) return serve(argv[2], argv[3], argc > 4 ? atol(argv[4]) : 0);
    if (argc == 5 && strcmp(argv[1], "client") == 0) return client(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: %s [serve ADDRESS KEY [N] | client ADDRESS KEY NAME]\n", argv[0]);
    return 2;
}
