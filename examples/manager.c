/* manager.c - Python's Manager: a server process holds a Value (a double), an Array
   of 10 ints and a list; a child changes all three by name; the parent prints them.
       with Manager() as server:
           num = server.Value('d', 0.0); arr = server.Array('i', range(10))
           l = server.list()
           p = Process(target=f, args=(num, arr, l)); p.start(); p.join()
   The handles are ordinary values a child inherits through fork: in the child each
   one opens its own connection to the server without being told.

   Build and run from the repository root:
       cc -std=c11 -Wall -Wextra -Werror -I. examples/manager.c -o manager -pthread
       ./manager */
#define MP_IMPLEMENTATION
#include "mp.h"
#include <stdio.h>

typedef struct {
    mp_value *num; // Value('d', 0.0): a block of sizeof(double) bytes
    mp_value *arr; // Array('i', range(10)): 10 ints
    mp_list *l;    // list(): the same mp_list_* verbs as a local list
} shared;

static int f(void *arg) {   // the child: changes all three by name
    shared *s = (shared *)arg;
    double pi = 3.14;
    int five = 5;
    int rc = mp_value_write(s->num, 0, &pi, sizeof pi);            // num.value = 3.14
    if (rc == MP_OK) rc = mp_value_write(s->arr, 0, &five, sizeof five); // arr[0] = 5
    if (rc == MP_OK) rc = mp_list_append(s->l, "Hello", 5);         // l.append("Hello")
    if (rc != MP_OK) fprintf(stderr, "child: %s\n", mp_strerror(rc));
    return rc != MP_OK;
}

static int print_item(const void *v, size_t len, void *arg) {
    printf("%s'%.*s'", *(int *)arg ? ", " : "", (int)len, (const char *)v);
    ++*(int *)arg;
    return 0;   // go on
}

int main(void) {
    mp_manager_desc md = { 0 };                 // a private socket file, no key
    mp_manager *server = mp_manager_start(&md); // forks the server process
    if (!server) {
        perror("mp_manager_start");
        return 1;
    }
    shared s = { mp_manager_value(server, "num", sizeof(double)),
                 mp_manager_value(server, "arr", 10 * sizeof(int)),
                 mp_manager_list(server, "l") };
    if (!s.num || !s.arr || !s.l) {
        perror("mp_manager_value/list");
        return 1;
    }
    int arr[10];
    for (int i = 0; i < 10; i++) arr[i] = i;
    mp_value_write(s.arr, 0, arr, sizeof arr);  // range(10)

    mp_process_desc pd = { .target = f, .arg = &s };
    mp_process *p = mp_process_create(&pd);
    if (!p || mp_process_start(p) != MP_OK) {
        perror("mp_process");
        return 1;
    }
    mp_process_join(p, MP_FOREVER);
    int rc = mp_process_exitcode(p);
    mp_process_destroy(p);

    double num;
    mp_value_read(s.num, 0, &num, sizeof num);
    mp_value_read(s.arr, 0, arr, sizeof arr);   // the whole array in one round trip
    printf("%g\n[", num);
    for (int i = 0; i < 10; i++) printf("%s%d", i ? ", " : "", arr[i]);
    printf("]\n[");
    int n = 0;
    mp_list_items(s.l, print_item, &n);
    printf("]\n");

    mp_value_destroy(s.num);                    // the handles; the server keeps the objects
    mp_value_destroy(s.arr);
    mp_list_destroy(s.l);
    mp_manager_shutdown(server);                // stops and joins the server
    return rc;
}
