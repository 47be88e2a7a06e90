/* The container test bodies, shared by the local and the served runs. */
#ifndef MP_TEST_DICT_H
#define MP_TEST_DICT_H
#include "../mp.h"

typedef struct c_env c_env;
struct c_env {
    const char *what;
    mp_dict *(*dict)(c_env *e, const char *name);
    mp_list *(*list)(c_env *e, const char *name);
    void *ctx;
    bool local;
};

void c_dict_body(c_env *e);
void c_list_body(c_env *e);
void c_hammer(c_env *e, long n);
#endif
