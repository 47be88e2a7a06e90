/* libFuzzer target for Python's connection handshake as mp runs it (mp__auth_handshake,
   the code behind mp_listener_accept and mp_client), over a socketpair whose other end
   a peer thread drives with the fuzzer's bytes. Findings: a crash, a hang, an
   allocation that grows with what the peer announces, an acceptance without the key,
   or a verdict that differs from Python's rules.

   Input: byte 0 = mode, then the stream the peer writes.
     mode bit 0   accepting side only: the peer answers mp's challenge correctly (it
                  reads the challenge, computes the HMAC with the real key), then writes
                  the stream - so the second half (mp answering the peer's challenge,
                  reading the verdict) is fuzzed too
     mode bit 1   the peer keeps its end open after the stream (the handshake then ends
                  by its 20 ms deadline) instead of shutting it down (EOF)
     mode bit 2   drive the connecting side (mp answers first) instead of the accepting
   Without bit 0 nothing the peer sends can be a correct answer to mp's 40 random bytes,
   so mp must refuse. With bit 0, mp must accept exactly when the stream starts with a
   challenge Python would answer (and mp can: md5 or sha256) followed by "#WELCOME#",
   and its answer must be the right HMAC. Every allocation is bounded by the conn's
   64 KiB receive buffer, whatever the peer's headers announce.
   Build and run: make fuzz-handshake (FUZZ_SECONDS, default 60). */
#define FUZZ_NAME "fuzz_handshake"
#include "fuzz.h"
#include <pthread.h>

static const char key[] = "fuzz key";
#define KEYLEN (sizeof key - 1)

typedef struct peer {
    int fd;
    uint8_t mode;
    const uint8_t *d;
    size_t n;
    uint8_t out[1 << 16]; /* what mp wrote */
    size_t got;
} peer;

static bool write_all(int fd, const void *p, size_t n) {
    const char *s = (const char *)p;
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false; /* mp closed early: fine */
        s += w, n -= (size_t)w;
    }
    return true;
}

static bool read_n(peer *p, size_t n) {
    while (p->got < n) {
        ssize_t r = read(p->fd, p->out + p->got, n - p->got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p->got += (size_t)r;
    }
    return true;
}

static void *peer_run(void *arg) {
    peer *p = (peer *)arg;
    if (p->mode & 1) { /* read the 59-byte challenge, answer it with the key */
        if (!read_n(p, 4 + 59)) FAIL("no challenge from mp");
        if (memcmp(p->out, "\0\0\0\x3b#CHALLENGE#{sha256}", 23) != 0) FAIL("bad challenge");
        uint8_t ans[4 + 40] = {0, 0, 0, 40, '{', 's', 'h', 'a', '2', '5', '6', '}'};
        mp__hmac(&mp__sha256, key, KEYLEN, p->out + 4 + 11, 48, ans + 12);
        write_all(p->fd, ans, sizeof ans);
    }
    write_all(p->fd, p->d, p->n);
    if (!(p->mode & 2)) shutdown(p->fd, SHUT_WR);
    for (;;) { /* everything mp writes, until it closes its end */
        if (p->got == sizeof p->out) FAIL("mp wrote over 64 KiB");
        ssize_t r = read(p->fd, p->out + p->got, sizeof p->out - p->got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        p->got += (size_t)r;
    }
    return NULL;
}

/* One frame of the stream at *pos (Python's framing, 4-byte or -1 + 8-byte length):
   true with its payload if whole and at most 256 bytes. */
static bool ref_frame(const uint8_t *d, size_t n, size_t *pos, const uint8_t **m, size_t *len) {
    size_t have = n - *pos;
    if (have < 4) return false;
    const uint8_t *p = d + *pos;
    uint64_t l = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
    size_t hdr = 4;
    if (l == 0xffffffffu) {
        if (have < 12) return false;
        for (l = 0, hdr = 4; hdr < 12; hdr++) l = l << 8 | p[hdr];
    } else if (l & 0x80000000u) {
        return false;
    }
    if (l > 256 || have - hdr < l) return false;
    *m = p + hdr, *len = (size_t)l, *pos += hdr + (size_t)l;
    return true;
}

/* Python's answer_challenge rules, written out again: the digest mp must use for a
   challenge, NULL if Python (or mp, which lacks sha384/sha3) refuses it. */
static const mp__hash_alg *ref_digest(const uint8_t *m, size_t n, size_t *skip) {
    *skip = 0;
    if (n < 11 || memcmp(m, "#CHALLENGE#", 11) != 0 || n - 11 < 20) return NULL;
    m += 11, n -= 11;
    if (n == 20) return &mp__md5;
    if (m[0] != '{') return NULL;
    const uint8_t *c = (const uint8_t *)memchr(m + 1, '}', n - 1 < 9 ? n - 1 : 9);
    if (!c) return NULL;
    *skip = (size_t)(c - m) + 1;
    if (*skip == 5 && memcmp(m, "{md5}", 5) == 0) return &mp__md5;
    if (*skip == 8 && memcmp(m, "{sha256}", 8) == 0) return &mp__sha256;
    return NULL;
}

/* With bit 0: what mp must have done with the stream d. */
static void check_accepting(int rc, const uint8_t *d, size_t n, const peer *p) {
    size_t pos = 0, len, vlen, skip = 0;
    const uint8_t *m = NULL, *v;
    bool framed = ref_frame(d, n, &pos, &m, &len);
    const mp__hash_alg *a = framed ? ref_digest(m, len, &skip) : NULL;
    bool welcome = a && ref_frame(d, n, &pos, &v, &vlen) && vlen == 9 && memcmp(v, "#WELCOME#", 9) == 0;
    if (rc == MP_OK && !welcome) FAIL("accepted, but the reference refuses");
    /* with the peer's end open the 20 ms deadline may strike anywhere on a loaded
       machine, even before the peer's correct answer arrived */
    if (rc == MP_ETIMEDOUT && (p->mode & 2)) return;
    if ((rc == MP_OK) != welcome) FAIL("rc %d but the reference says %s", rc, welcome ? "accept" : "refuse");
    if (p->got < 63 + 13 || memcmp(p->out + 63, "\0\0\0\x09#WELCOME#", 13) != 0)
        FAIL("mp did not welcome a correct answer");
    if (!a) return;
    uint8_t want[64];
    memcpy(want + 4, m + 11, skip);
    mp__hmac(a, key, KEYLEN, m + 11, len - 11, want + 4 + skip);
    size_t wl = skip + a->len;
    want[0] = want[1] = want[2] = 0, want[3] = (uint8_t)wl;
    if (p->got < 76 + 4 + wl || memcmp(p->out + 76, want, 4 + wl) != 0)
        FAIL("mp's answer to the peer's challenge is wrong");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    peer *p = (peer *)calloc(1, sizeof *p);
    p->mode = data[0];
    if (p->mode & 4) p->mode &= (uint8_t)~1; /* the connecting side has no bit 0 */
    p->d = data + 1, p->n = size - 1;
    mp_conn *c, *other;
    if (mp_pipe(&c, &other, true) != MP_OK) FAIL("mp_pipe failed");
    p->fd = dup(mp_conn_fileno(other)); /* a raw fd for the peer; its conn is dropped */
    mp_conn_close(other);
    int sz = 1 << 20;
    setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(mp_conn_fileno(c), SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    pthread_t th;
    if (pthread_create(&th, NULL, peer_run, p) != 0) FAIL("pthread_create");
    fuzz_alloc_bound = 65536 + 512; /* the conn's receive buffer, never a peer's length */
    /* with EOF after the stream the deadline is never reached */
    double limit = p->mode & 2 ? 0.02 : 10;
    int rc = mp__auth_handshake(c, key, KEYLEN, !(p->mode & 4), mp__deadline(limit));
    fuzz_alloc_bound = SIZE_MAX;
    mp_conn_close(c);
    pthread_join(th, NULL);
    if (!(p->mode & 1) && rc == MP_OK) FAIL("accepted a peer that never had the key");
    if (rc != MP_OK && rc != MP_EAUTH && rc != MP_ECLOSED && rc != MP_ETIMEDOUT)
        FAIL("unexpected rc %d", rc);
    if (p->mode & 1) check_accepting(rc, p->d, p->n, p);
    close(p->fd);
    free(p);
    return 0;
}
