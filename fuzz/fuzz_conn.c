/* libFuzzer target for the connection framing: arbitrary bytes arrive on a pipe or a
   socketpair wrapped in an mp_conn, and mp_conn_recv / mp_conn_recv_alloc /
   mp_conn_poll / mp_wait take them apart. A reference parser of Python's framing says
   what each call must return; any difference, crash, hang or oversized allocation is a
   finding.

   Input: byte 0 = mode, byte 1 = limit choice, then the stream.
     mode bit 0     socketpair (else pipe)
     mode bit 1     the writer stays open (else EOF follows the stream)
     mode bits 2-3  0: recv into a buffer of a chosen size; 1: recv_alloc;
                    2: poll (or mp_wait) before each recv; 3: peek the size, then recv
     mode bits 4-6  the recv buffer size (caps[])
   Every allocation mp makes goes through MP_MALLOC, checked here against the bound
   the conn's message limit implies: its 64 KiB buffer or one whole frame.
   Build and run: make fuzz (FUZZ_SECONDS, default 60). */
#define FUZZ_NAME "fuzz_conn"
#include "fuzz.h"

static const size_t limits[8] = {1, 12, 255, 4096, 65536, 1 << 20, 100000, 70000};
static const size_t caps[8] = {0, 1, 7, 64, 4096, 16384, 65536, 200000};

/* What the next receive must give, from the reference parser. */
enum { X_MSG, X_TOOBIG, X_CLOSED, X_WOULDBLOCK };
typedef struct {
    int kind;
    const uint8_t *msg;
    size_t len; /* X_MSG: payload size; X_TOOBIG: the size announced (SIZE_MAX: malformed) */
    size_t next;
    size_t announced; /* X_CLOSED/X_WOULDBLOCK with a whole header: its size, else 0 */
} expect;

static expect ref_next(const uint8_t *d, size_t n, size_t pos, size_t max, bool eof) {
    expect x;
    memset(&x, 0, sizeof x);
    size_t have = n - pos, hdr = 4;
    const uint8_t *p = d + pos;
    x.kind = eof ? X_CLOSED : X_WOULDBLOCK;
    if (have < 4) return x;
    uint64_t len = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
    if (len == 0xffffffffu) {
        if (have < 12) return x;
        hdr = 12;
        len = 0;
        for (int i = 4; i < 12; i++) len = len << 8 | p[i];
    } else if (len & 0x80000000u) {
        x.kind = X_TOOBIG, x.len = SIZE_MAX;
        return x;
    }
    if (len > max) {
        x.kind = X_TOOBIG, x.len = (size_t)len;
        return x;
    }
    if (have - hdr < len) {
        x.announced = (size_t)len;
        return x;
    }
    x.kind = X_MSG, x.msg = p + hdr, x.len = (size_t)len, x.next = pos + hdr + (size_t)len;
    return x;
}

static void check_msg(int rc, const expect *x, const void *buf, size_t len, const char *what) {
    if (rc != MP_OK) FAIL("%s: %d (%s), expected a %zu-byte message", what, rc, mp_strerror(rc), x->len);
    if (len != x->len) FAIL("%s: %zu bytes, expected %zu", what, len, x->len);
    if (len && memcmp(buf, x->msg, len) != 0) FAIL("%s: payload differs", what);
}

/* A receive that must not give a message: the code must match the reference. */
static void check_end(int rc, const expect *x, size_t len, const char *what) {
    int want = x->kind == X_TOOBIG ? MP_ETOOBIG : x->kind == X_CLOSED ? MP_ECLOSED : MP_ETIMEDOUT;
    if (rc != want) FAIL("%s: %d (%s), expected %d", what, rc, mp_strerror(rc), want);
    if (x->kind == X_TOOBIG && len != x->len) FAIL("%s: size %zu, expected %zu", what, len, x->len);
}

static bool feed(mp_conn *w, const uint8_t *d, size_t n) {
    int fd = mp_conn_fileno(w);
    while (n > 0) {
        ssize_t r = write(fd, d, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        d += r, n -= (size_t)r;
    }
    return true;
}

/* One receive of the chosen style; false once the stream has nothing more to give. */
static bool step(mp_conn *r, int style, size_t cap, uint8_t *buf, const uint8_t *d, size_t n,
                 size_t *pos, size_t max, bool eof, int round) {
    expect x = ref_next(d, n, *pos, max, eof);
    size_t len = 0;
    int rc;
    if (style == 2) {
        if (round % 2) {
            int fd = mp_conn_fileno(r);
            bool ready = false;
            rc = mp_wait(&fd, 1, &ready, 0);
            if (rc != (x.kind == X_WOULDBLOCK ? MP_ETIMEDOUT : 1)) FAIL("mp_wait: %d", rc);
        } else {
            rc = mp_conn_poll(r, 0);
            if (rc != (x.kind == X_WOULDBLOCK ? MP_ETIMEDOUT : MP_OK)) FAIL("mp_conn_poll: %d", rc);
        }
    }
    if (style == 3) {
        rc = mp_conn_recv(r, NULL, 0, &len, 0); /* a peek: MP_ETOOBIG even for 0 bytes */
        if (x.kind != X_MSG && x.announced) { /* a cut frame: its size is known */
            if (rc != MP_ETOOBIG || len != x.announced) FAIL("peek of a cut frame: %d, %zu", rc, len);
            return false;
        }
        if (x.kind != X_MSG) {
            check_end(rc, &x, len, "peek");
            return false;
        }
        if (rc != MP_ETOOBIG || len != x.len) FAIL("peek: %d, %zu, expected %zu", rc, len, x.len);
        uint8_t *exact = (uint8_t *)malloc(len ? len : 1); /* now with the size it said */
        rc = mp_conn_recv(r, exact, x.len, &len, 0);
        check_msg(rc, &x, exact, len, "mp_conn_recv after a peek");
        free(exact);
        *pos = x.next;
        return true;
    }
    if (style == 1) {
        void *p = NULL;
        rc = mp_conn_recv_alloc(r, &p, &len, 0);
        if (x.kind == X_MSG) check_msg(rc, &x, p, len, "mp_conn_recv_alloc");
        else check_end(rc, &x, len, "mp_conn_recv_alloc");
        if ((rc == MP_OK) != (p != NULL)) FAIL("recv_alloc: buffer %p with %d", p, rc);
        free(p);
    } else {
        rc = mp_conn_recv(r, buf, cap, &len, 0); /* a real buffer: cap 0 takes empty ones */
        if (x.kind == X_MSG && x.len > cap) {
            if (rc != MP_ETOOBIG || len != x.len) FAIL("small buffer: %d, %zu, expected %zu", rc, len, x.len);
            uint8_t *big = (uint8_t *)malloc(x.len); /* nothing consumed: again, bigger */
            rc = mp_conn_recv(r, big, x.len, &len, 0);
            check_msg(rc, &x, big, len, "mp_conn_recv after MP_ETOOBIG");
            free(big);
        } else if (x.kind != X_MSG && x.announced > cap) {
            /* a cut frame whose header asks for more than cap: too big, nothing taken;
               with room for it, the cut shows */
            if (rc != MP_ETOOBIG || len != x.announced) FAIL("cut frame, small buffer: %d, %zu", rc, len);
            uint8_t *big = (uint8_t *)malloc(x.announced);
            rc = mp_conn_recv(r, big, x.announced, &len, 0);
            free(big);
            check_end(rc, &x, len, "mp_conn_recv of a cut frame");
        } else if (x.kind == X_MSG) {
            check_msg(rc, &x, buf, len, "mp_conn_recv");
        } else {
            check_end(rc, &x, len, "mp_conn_recv");
        }
    }
    if (x.kind != X_MSG) return false;
    *pos = x.next;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t buf[200000];
    if (size < 2) return 0;
    uint8_t mode = data[0];
    size_t max = limits[data[1] & 7];
    const uint8_t *d = data + 2;
    size_t n = size - 2;
    bool duplex = mode & 1, keep_open = mode & 2;
    int style = (mode >> 2) & 3;
    size_t cap = caps[(mode >> 4) & 7];
    mp_conn *r, *w;
    if (mp_pipe(&r, &w, duplex) != MP_OK) FAIL("mp_pipe failed");
    if (duplex) {
        int sz = 1 << 20;
        setsockopt(mp_conn_fileno(w), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(mp_conn_fileno(r), SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    } else {
        fcntl(mp_conn_fileno(w), F_SETPIPE_SZ, 1 << 20);
    }
    if (mp_conn_set_max_message(r, max) != MP_OK) FAIL("set_max_message");
    fuzz_alloc_bound = (max + 12 > 65536 ? max + 12 : 65536) + 64;
    if (n > 0 && !feed(w, d, n)) FAIL("cannot write %zu bytes", n);
    if (!keep_open) {
        mp_conn_close(w);
        w = NULL;
    }
    size_t pos = 0;
    for (int round = 0; round < 100000; round++)
        if (!step(r, style, cap, buf, d, n, &pos, max, !keep_open, round)) break;
    fuzz_alloc_bound = SIZE_MAX;
    mp_conn_close(r);
    mp_conn_close(w);
    return 0;
}
