/* libFuzzer target for the Manager's request handler (mp__msrv_handle, what a server
   thread runs on every request of an authenticated client), called directly on the
   fuzzer's bytes. Findings: a crash, an answer that is not a status and a payload, a
   status that is no MP_E... code, or an allocation beyond the bound (the heap is 16 MiB;
   nothing a request announces may make the server allocate more than it holds).

   Input: a sequence of requests, each a 2-byte big-endian length then that many bytes,
   all run on one fresh server (so that an OPEN can be followed by verbs on the id it
   got: ids count from 0). Build and run: make fuzz-manager (FUZZ_SECONDS, default 60). */
#define FUZZ_NAME "fuzz_manager"
#include "fuzz.h"
#define HEAP ((size_t)16 << 20)

static void server_free(mp__msrv *s) {
    for (uint32_t i = 0; i < s->nobj; i++) mp__mobj_free(&s->obj[i]);
    MP_FREE(s->obj);
    mp_dict_destroy(s->names);
    pthread_mutex_destroy(&s->mu);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int inited;
    if (!inited) {
        mp_config cfg = {HEAP, NULL, 0};
        if (mp_init(&cfg) != MP_OK) FAIL("mp_init");
        fuzz_alloc_bound = 2 * HEAP; /* nothing a request announces may cost more */
        inited = 1;
    }
    mp__msrv s;
    if (mp__msrv_init(&s, -1) != MP_OK) FAIL("init");
    mp__buf out;
    mp__buf_init(&out);
    while (size >= 2) {
        size_t n = (size_t)data[0] << 8 | data[1];
        data += 2, size -= 2;
        if (n > size) n = size;
        if (mp__msrv_handle(&s, data, n, &out) != MP_OK) FAIL("no answer");
        if (out.n < 4) FAIL("answer of %zu bytes", out.n);
        int32_t st = (int32_t)mp__be32(out.p);
        if (st > 0 || st < MP_ENOTFOUND) FAIL("status %d", (int)st);
        if (st != MP_OK && st != MP_ETOOBIG && out.n != 4) FAIL("error %d with a payload", (int)st);
        data += n, size -= n;
    }
    mp__buf_free(&out);
    server_free(&s);
    mp_heap_stats hs;
    mp_heap_stats_get(&hs);
    if (hs.blocks != 0) FAIL("%zu heap blocks left after the server's objects were freed", hs.blocks);
    return 0;
}
