/* listener_client.c - Python's Listener and Client: a server that unrelated programs
   find by address, with a shared authkey, answering several clients at once.
   The server waits with mp_wait on its listener and on every client connection
   together, and answers each request with the text in upper case. The clients only
   know the address string and the key.

   Run without arguments, it shows the lot: a server on 127.0.0.1 (port 0: the system
   picks one), three clients with the key and one without it, all in their own
   processes. Or run the parts yourself:
       ./listener_client serve 127.0.0.1:6000 [N]   serve (N clients, then stop)
       ./listener_client ask 127.0.0.1:6000 hello   one request
   A Python program can be either side (see README.md: Listener and Client).
   Addresses: "host:port", "[::1]:port", "/path/to.sock", "@abstract-name".

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/listener_client.c -o listener_client -pthread
       ./listener_client */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS 64
static const char authkey[] = "change me"; /* both sides must hold the same bytes */

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s\n", what, mp_strerror(rc));
    return 1;
}

/* A listener on address that lets only clients holding authkey through. */
static mp_listener *listen_on(const char *address) {
    mp_listener_desc d = { .address = address, .authkey = authkey,
                           .authkey_len = sizeof authkey - 1 };
    mp_listener *l = mp_listener_create(&d);       // NULL + errno (EADDRINUSE...)
    if (!l) perror("mp_listener_create");
    return l;
}

/* One request from a client: answer it, or drop the client when it has gone. */
static bool answer(mp_conn *c, int *requests) {
    char *msg;
    size_t len;
    if (mp_conn_recv_alloc(c, (void **)&msg, &len, 10.0) != MP_OK) return false; // gone
    for (size_t i = 0; i < len; i++) msg[i] = (char)toupper((unsigned char)msg[i]);
    bool ok = mp_conn_send(c, msg, len) == MP_OK;
    free(msg);
    *requests += ok;
    return ok;
}

/* Serve until `clients` have come and gone, refused ones included (0: forever). */
static int serve(mp_listener *l, int clients) {
    mp_conn *conn[MAX_CLIENTS];
    int n = 0, served = 0, refused = 0, requests = 0;
    while (clients == 0 || served + refused < clients || n > 0) {
        int fds[1 + MAX_CLIENTS];
        bool ready[1 + MAX_CLIENTS];
        fds[0] = mp_listener_fileno(l);            // readable: a client is waiting
        for (int i = 0; i < n; i++) fds[1 + i] = mp_conn_fileno(conn[i]);
        int rc = mp_wait(fds, (size_t)(1 + n), ready, MP_FOREVER);
        if (rc < 0) return fail("mp_wait", rc);
        for (int i = n - 1; i >= 0; i--) {         // a whole request, or end of file
            if (!ready[1 + i] || answer(conn[i], &requests)) continue;
            mp_conn_close(conn[i]);
            conn[i] = conn[--n];
            served++;
        }
        if (ready[0] && n < MAX_CLIENTS) {
            mp_conn *c;
            rc = mp_listener_accept(l, &c, 0);     // the handshake runs here
            if (rc == MP_OK) conn[n++] = c;
            else if (rc == MP_EAUTH) refused++;    // wrong key: the server goes on
            else if (rc != MP_ETIMEDOUT) return fail("mp_listener_accept", rc);
        }
    }
    printf("server: %d clients served, %d requests, %d refused\n", served, requests, refused);
    return 0;
}

/* A client: connect by address with the key, send each text, print each answer. */
static int ask(const char *address, const char *key, const char *who, int n, char **texts) {
    mp_client_desc d = { .address = address, .authkey = key, .authkey_len = strlen(key) };
    mp_conn *c;
    int rc = mp_client(&d, &c);
    if (rc != MP_OK) {
        printf("%s: %s\n", who, mp_strerror(rc));
        return rc == MP_EAUTH ? 0 : 1;
    }
    for (int i = 0; i < n && rc == MP_OK; i++) {
        char reply[256];
        size_t len;
        rc = mp_conn_send(c, texts[i], strlen(texts[i]));
        if (rc == MP_OK) rc = mp_conn_recv(c, reply, sizeof reply, &len, 10.0);
        if (rc == MP_OK) printf("%s got: %.*s\n", who, (int)len, reply);
    }
    mp_conn_close(c);
    return rc == MP_OK ? 0 : fail(who, rc);
}

typedef struct { const char *address, *key; int id; } client_arg;

static int client_process(void *arg) {
    const client_arg *a = (const client_arg *)arg;
    char who[32], t[3][64];
    char *texts[3] = { t[0], t[1], t[2] };
    snprintf(who, sizeof who, "client %d", a->id);
    for (int i = 0; i < 3; i++) snprintf(t[i], sizeof t[i], "hello from client %d (%d)", a->id, i + 1);
    return ask(a->address, a->key, who, 3, texts);
}

/* The server in this process, four clients in theirs. */
static int demo(void) {
    mp_listener *l = listen_on("127.0.0.1:0");     // port 0: the system picks one
    if (!l) return 1;
    printf("server listening on %s\n", mp_listener_address(l));
    client_arg args[4];
    mp_process *p[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (client_arg){ mp_listener_address(l), i < 3 ? authkey : "a wrong key", i };
        mp_process_desc pd = { .target = client_process, .arg = &args[i] };
        if (!(p[i] = mp_process_create(&pd)) || mp_process_start(p[i]) != MP_OK) {
            perror("client process");
            return 1;
        }
    }
    int rc = serve(l, 4);
    for (int i = 0; i < 4; i++) {
        mp_process_join(p[i], MP_FOREVER);
        if (mp_process_exitcode(p[i]) != 0) rc = 1;
        mp_process_destroy(p[i]);
    }
    mp_listener_close(l);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 1) return demo();
    if (argc >= 3 && strcmp(argv[1], "serve") == 0) {
        mp_listener *l = listen_on(argv[2]);
        if (!l) return 1;
        printf("listening on %s\n", mp_listener_address(l));
        fflush(stdout);
        int rc = serve(l, argc > 3 ? atoi(argv[3]) : 0);
        mp_listener_close(l);
        return rc;
    }
    if (argc >= 4 && strcmp(argv[1], "ask") == 0) return ask(argv[2], authkey, "reply", argc - 3, argv + 3);
    fprintf(stderr, "usage: %s [serve ADDRESS [N] | ask ADDRESS TEXT...]\n", argv[0]);
    return 2;
}
