/* MD5, SHA-256 and HMAC against the RFC 1321 / FIPS 180-4 / RFC 2104 / RFC 4231 vectors
   and against Python's hmac; Python's connection handshake driven step by step by a
   scripted peer over a socketpair (every rule of deliver_challenge/answer_challenge).
   The private functions come from a copy of the implementation made static here
   (MP_STATIC), so this file sees mp__hmac and mp__auth_handshake. */
#define MP_STATIC
#define MP_IMPLEMENTATION
#include "../mp.h"
#include "test.h"
#include "py_peer.h"
#include <pthread.h>

static void hex(const unsigned char *p, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

static bool hash_is(const mp__hash_alg *a, const void *m, size_t n, const char *want) {
    unsigned char d[MP__HASH_MAX];
    char h[2 * MP__HASH_MAX + 1];
    mp__hash s;
    mp__hash_init(&s, a);
    mp__hash_update(&s, m, n);
    mp__hash_final(&s, d);
    hex(d, a->len, h);
    if (strcmp(h, want) != 0) fprintf(stderr, "  %s(%zu bytes) = %s, want %s\n", a->name, n, h, want);
    return strcmp(h, want) == 0;
}

static bool hmac_is(const mp__hash_alg *a, const void *k, size_t kn, const void *m, size_t n,
                    const char *want) {
    unsigned char d[MP__HASH_MAX];
    char h[2 * MP__HASH_MAX + 1];
    mp__hmac(a, k, kn, m, n, d);
    hex(d, a->len, h);
    if (strcmp(h, want) != 0) fprintf(stderr, "  hmac-%s = %s, want %s\n", a->name, h, want);
    return strcmp(h, want) == 0;
}

#define S(x) x, sizeof x - 1

TEST(auth_md5_rfc1321) {
    CHECK(hash_is(&mp__md5, S(""), "d41d8cd98f00b204e9800998ecf8427e"));
    CHECK(hash_is(&mp__md5, S("a"), "0cc175b9c0f1b6a831c399e269772661"));
    CHECK(hash_is(&mp__md5, S("abc"), "900150983cd24fb0d6963f7d28e17f72"));
    CHECK(hash_is(&mp__md5, S("message digest"), "f96b697d7cb7938d525a2f31aaf161d0"));
    CHECK(hash_is(&mp__md5, S("abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b"));
    CHECK(hash_is(&mp__md5, S("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
                  "d174ab98d277d9f5a5611c2c9f419d9f"));
    CHECK(hash_is(&mp__md5,
                  S("1234567890123456789012345678901234567890123456789012345678901234567890"
                    "1234567890"),
                  "57edf4a22be3c955ac49da2e2107b67a"));
}

TEST(auth_sha256_fips180) {
    CHECK(hash_is(&mp__sha256, S(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(hash_is(&mp__sha256, S("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK(hash_is(&mp__sha256, S("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    char *m = (char *)malloc(1000000);
    memset(m, 'a', 1000000);
    CHECK(hash_is(&mp__sha256, m, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    mp__hash s; /* the same million bytes fed in uneven pieces */
    unsigned char d[32];
    char h[65];
    mp__hash_init(&s, &mp__sha256);
    for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 1001 + 1)
        mp__hash_update(&s, m + off, off + step > 1000000 ? 1000000 - off : step);
    mp__hash_final(&s, d);
    hex(d, 32, h);
    CHECK(strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    free(m);
}

TEST(auth_hmac_rfc2104_rfc4231) {
    unsigned char k0b[20], kaa[131], ddd[50];
    memset(k0b, 0x0b, sizeof k0b);
    memset(kaa, 0xaa, sizeof kaa);
    memset(ddd, 0xdd, sizeof ddd);
    /* RFC 2104 */
    CHECK(hmac_is(&mp__md5, k0b, 16, S("Hi There"), "9294727a3638bb1c13f48ef8158bfc9d"));
    CHECK(hmac_is(&mp__md5, S("Jefe"), S("what do ya want for nothing?"), "750c783e6ab0b503eaa86e310a5db738"));
    CHECK(hmac_is(&mp__md5, kaa, 16, ddd, 50, "56be34521d144c88dbb8c733f0e8b3f6"));
    /* RFC 4231 cases 1, 2, 3 and 6 (a key longer than the block is hashed first) */
    CHECK(hmac_is(&mp__sha256, k0b, 20, S("Hi There"),
                  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
    CHECK(hmac_is(&mp__sha256, S("Jefe"), S("what do ya want for nothing?"),
                  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    CHECK(hmac_is(&mp__sha256, kaa, 20, ddd, 50,
                  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"));
    CHECK(hmac_is(&mp__sha256, kaa, 131, S("Test Using Larger Than Block-Size Key - Hash Key First"),
                  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
    /* the issue's known answers for the two handshake forms (key "secret") */
    unsigned char m[48];
    memcpy(m, "{sha256}", 8);
    for (int i = 0; i < 40; i++) m[8 + i] = (unsigned char)i;
    CHECK(hmac_is(&mp__md5, S("secret"), m + 8, 20, "7defa9cc46abc3583325d17ccda75190"));
    CHECK(hmac_is(&mp__sha256, S("secret"), m, 48,
                  "fc57fbe650d6124b98215e7b5d197d5807ad69982d275a9735ea2d56f1fa6989"));
}

static const char py_hmac[] =
    "import sys, hmac\n"
    "for line in sys.stdin:\n"
    "    alg, k, m = line.split()\n"
    "    d = hmac.new(bytes.fromhex(k[1:]), bytes.fromhex(m[1:]), alg).hexdigest()\n"
    "    print(d, flush=True)\n";

TEST(auth_hmac_matches_python) {
    char py[512];
    if (t_py_slow("auth_hmac_matches_python")) return;
    if (!t_py_find(11, py, sizeof py) && !t_py_find(12, py, sizeof py) && !t_py_find(13, py, sizeof py)) {
        printf("SKIP auth_hmac_matches_python: no python3.11+ found\n");
        return;
    }
    char *argv[] = {py, (char *)"-c", (char *)py_hmac, NULL};
    t_proc p;
    CHECK(t_proc_start(argv, &p));
    unsigned char k[200], m[300], d[MP__HASH_MAX];
    char line[2 * 500 + 64], want[2 * MP__HASH_MAX + 8], got[2 * MP__HASH_MAX + 1];
    unsigned seed = (unsigned)getpid();
    for (int i = 0; i < 300; i++) {
        const mp__hash_alg *a = i & 1 ? &mp__md5 : &mp__sha256;
        /* lengths around the block and padding edges, and random ones */
        static const size_t edge[] = {0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 129};
        size_t kn = i < 11 ? edge[i] : (size_t)rand_r(&seed) % sizeof k;
        size_t mn = i < 22 ? edge[i % 11] : (size_t)rand_r(&seed) % sizeof m;
        for (size_t j = 0; j < kn; j++) k[j] = (unsigned char)rand_r(&seed);
        for (size_t j = 0; j < mn; j++) m[j] = (unsigned char)rand_r(&seed);
        int n = sprintf(line, "%s x", a->name);
        hex(k, kn, line + n);
        n = (int)strlen(line);
        n += sprintf(line + n, " x");
        hex(m, mn, line + n);
        strcat(line, "\n");
        CHECK(t_proc_write(&p, line));
        CHECK(t_proc_line(&p, want, sizeof want, 30));
        mp__hmac(a, k, kn, m, mn, d);
        hex(d, a->len, got);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "  %s key %zu msg %zu: %s, python %s\n", a->name, kn, mn, got, want);
            CHECK(!"HMAC differs from Python's");
        }
    }
    int st = t_proc_end(&p);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- the handshake, one side run by mp in a thread, the other scripted here ---- */

typedef struct side {
    mp_conn *c;
    const char *key;
    bool accepting;
    double timeout;
    int rc;
    pthread_t th;
} side;

static void *side_run(void *arg) {
    side *s = (side *)arg;
    s->rc = mp__auth_handshake(s->c, s->key, strlen(s->key), s->accepting, mp__deadline(s->timeout));
    return NULL;
}

/* mp's side on one end of a socketpair; *peer gets the other end. */
static void side_start(side *s, mp_conn **peer, const char *key, bool accepting, double timeout) {
    CHECK_EQ(mp_pipe(&s->c, peer, true), MP_OK);
    s->key = key, s->accepting = accepting, s->timeout = timeout, s->rc = 99;
    CHECK_EQ(pthread_create(&s->th, NULL, side_run, s), 0);
}

static int side_end(side *s) {
    pthread_join(s->th, NULL);
    return s->rc;
}

static void expect_msg(mp_conn *c, const char *want, size_t n) {
    unsigned char buf[300];
    size_t len;
    CHECK_EQ(mp_conn_recv(c, buf, sizeof buf, &len, 10), MP_OK);
    CHECK_EQ(len, n);
    CHECK(memcmp(buf, want, n) == 0);
}

/* The challenge mp sends: "#CHALLENGE#{sha256}" + 40 random bytes; *msg = all after
   "#CHALLENGE#". */
static void get_challenge(mp_conn *c, unsigned char *msg) {
    unsigned char buf[300];
    size_t len;
    CHECK_EQ(mp_conn_recv(c, buf, sizeof buf, &len, 10), MP_OK);
    CHECK_EQ(len, 11 + 48);
    CHECK(memcmp(buf, "#CHALLENGE#{sha256}", 19) == 0);
    memcpy(msg, buf + 11, 48);
}

/* Our answer to mp's challenge, in the form given; returns its length. */
enum { A_SHA256, A_MD5_BARE, A_MD5_PREFIXED, A_BARE20, A_SHA384, A_WRONG_KEY };
static size_t answer(int form, const unsigned char *msg, unsigned char *out) {
    const char *key = form == A_WRONG_KEY ? "not the key" : "secret";
    switch (form) {
    case A_MD5_BARE: mp__hmac(&mp__md5, key, 6, msg, 48, out); return 16;
    case A_MD5_PREFIXED: memcpy(out, "{md5}", 5); mp__hmac(&mp__md5, key, 6, msg, 48, out + 5); return 21;
    case A_BARE20: memset(out, 0, 20); mp__hmac(&mp__md5, key, 6, msg, 48, out); return 20;
    case A_SHA384: memcpy(out, "{sha384}", 8); memset(out + 8, 7, 48); return 56;
    default: memcpy(out, "{sha256}", 8); mp__hmac(&mp__sha256, key, strlen(key), msg, 48, out + 8); return 40;
    }
}

TEST(auth_accepting_side_takes_what_python_takes) {
    static const struct { int form; bool ok; } cases[] = {
        {A_SHA256, true}, {A_MD5_BARE, true}, {A_MD5_PREFIXED, true},
        {A_BARE20, false}, {A_SHA384, false}, {A_WRONG_KEY, false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        side s;
        mp_conn *peer;
        unsigned char msg[48], out[64], d[16];
        side_start(&s, &peer, "secret", true, 10);
        get_challenge(peer, msg);
        CHECK_EQ(mp_conn_send(peer, out, answer(cases[i].form, msg, out)), MP_OK);
        if (!cases[i].ok) {
            expect_msg(peer, "#FAILURE#", 9);
            CHECK_EQ(side_end(&s), MP_EAUTH);
        } else { /* then mp answers our 3.11-style challenge with a bare HMAC-MD5 */
            expect_msg(peer, "#WELCOME#", 9);
            unsigned char ch[31] = "#CHALLENGE#";
            for (int j = 0; j < 20; j++) ch[11 + j] = (unsigned char)(j * 13);
            CHECK_EQ(mp_conn_send(peer, ch, 31), MP_OK);
            mp__hmac(&mp__md5, "secret", 6, ch + 11, 20, d);
            expect_msg(peer, (const char *)d, 16);
            /* the verdict and a first message in one write: the message stays queued */
            unsigned char two[9 + 4 + 9 + 4 + 5] = {0, 0, 0, 9, '#', 'W', 'E', 'L', 'C', 'O', 'M', 'E', '#',
                                                     0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
            CHECK_EQ(write(mp_conn_fileno(peer), two, 22), 22);
            CHECK_EQ(side_end(&s), MP_OK);
            expect_msg(s.c, "hello", 5);
        }
        mp_conn_close(peer);
        mp_conn_close(s.c);
    }
}

TEST(auth_accepting_side_refuses_hostile_messages) {
    side s;
    mp_conn *peer;
    unsigned char msg[48], big[257];
    /* a 257-byte answer: Python's "bad message length"; closed without a verdict */
    side_start(&s, &peer, "secret", true, 10);
    get_challenge(peer, msg);
    memset(big, 'x', sizeof big);
    CHECK_EQ(mp_conn_send(peer, big, sizeof big), MP_OK);
    CHECK_EQ(side_end(&s), MP_EAUTH);
    mp_conn_close(s.c);
    size_t len;
    CHECK_EQ(mp_conn_recv(peer, big, sizeof big, &len, 10), MP_ECLOSED);
    mp_conn_close(peer);
    /* a header announcing 4 GiB: refused before anything is allocated for it */
    side_start(&s, &peer, "secret", true, 10);
    get_challenge(peer, msg);
    CHECK_EQ(write(mp_conn_fileno(peer), "\xff\xff\xff\xff\0\0\0\1\0\0\0\0", 12), 12);
    CHECK_EQ(side_end(&s), MP_EAUTH);
    mp_conn_close(s.c);
    mp_conn_close(peer);
    /* silence: the deadline ends it */
    double t0 = t_now();
    side_start(&s, &peer, "secret", true, 0.2);
    CHECK_EQ(side_end(&s), MP_ETIMEDOUT);
    CHECK(t_now() - t0 >= 0.19);
    mp_conn_close(s.c);
    mp_conn_close(peer);
    /* a peer that leaves mid-handshake */
    side_start(&s, &peer, "secret", true, 10);
    get_challenge(peer, msg);
    mp_conn_close(peer);
    CHECK_EQ(side_end(&s), MP_ECLOSED);
    mp_conn_close(s.c);
}

/* After a correct first half, the peer's own challenge and verdict: what mp answers. */
TEST(auth_answering_rules) {
    static const struct { const char *ch; int rc; } cases[] = {
        {"#CHALLENGE#0123456789012345678", MP_EAUTH},               /* 19 bytes: too short */
        {"#CHALLENGX#01234567890123456789", MP_EAUTH},              /* not a challenge */
        {"#CHALLENGE#{sha3_256}01234567890123456789", MP_EAUTH},    /* a digest mp lacks */
        {"#CHALLENGE#{nosuchdigest}0123456789012345", MP_EAUTH},    /* '}' too far */
        {"#CHALLENGE#sha256}0123456789012345678901", MP_EAUTH},     /* no '{' */
        {"#CHALLENGE#{md5}01234567890123456789", MP_OK},            /* "{md5}" + HMAC-MD5 */
        {"#CHALLENGE#{sha256}0123456789012345678901234567890123456789", MP_OK},
        {"#CHALLENGE#01234567890123456789", MP_OK},                 /* 3.11: bare MD5 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        side s;
        mp_conn *peer;
        unsigned char msg[48], out[64];
        side_start(&s, &peer, "secret", true, 10);
        get_challenge(peer, msg);
        CHECK_EQ(mp_conn_send(peer, out, answer(A_SHA256, msg, out)), MP_OK);
        expect_msg(peer, "#WELCOME#", 9);
        CHECK_EQ(mp_conn_send(peer, cases[i].ch, strlen(cases[i].ch)), MP_OK);
        if (cases[i].rc == MP_OK) {
            const unsigned char *m = (const unsigned char *)cases[i].ch + 11;
            size_t n = strlen(cases[i].ch) - 11, skip = 0;
            const mp__hash_alg *a = &mp__md5;
            if (m[0] == '{') {
                skip = (size_t)((const unsigned char *)memchr(m, '}', n) - m) + 1;
                a = skip == 5 ? &mp__md5 : &mp__sha256;
            }
            memcpy(out, m, skip);
            mp__hmac(a, "secret", 6, m, n, out + skip);
            expect_msg(peer, (const char *)out, skip + a->len);
            CHECK_EQ(mp_conn_send(peer, i & 1 ? "#WELCOME#" : "#FAILURE#", 9), MP_OK);
            CHECK_EQ(side_end(&s), i & 1 ? MP_OK : MP_EAUTH);
        } else {
            CHECK_EQ(side_end(&s), MP_EAUTH);
        }
        mp_conn_close(peer);
        mp_conn_close(s.c);
    }
}

/* The connecting side: answers first, then challenges; both mp, or mp and a script. */
TEST(auth_client_side_and_both_mp) {
    side a, b;
    mp_conn *pa, *pb;
    /* both sides mp, same key: the mutual handshake succeeds both ways */
    CHECK_EQ(mp_pipe(&a.c, &b.c, true), MP_OK);
    a.key = b.key = "k3y", a.accepting = true, b.accepting = false, a.timeout = b.timeout = 10;
    CHECK_EQ(pthread_create(&a.th, NULL, side_run, &a), 0);
    CHECK_EQ(pthread_create(&b.th, NULL, side_run, &b), 0);
    CHECK_EQ(side_end(&a), MP_OK);
    CHECK_EQ(side_end(&b), MP_OK);
    mp_conn_close(a.c);
    mp_conn_close(b.c);
    /* different keys: both fail, and the client learns it from #FAILURE# */
    CHECK_EQ(mp_pipe(&a.c, &b.c, true), MP_OK);
    a.key = "k3y", b.key = "other";
    CHECK_EQ(pthread_create(&a.th, NULL, side_run, &a), 0);
    CHECK_EQ(pthread_create(&b.th, NULL, side_run, &b), 0);
    CHECK_EQ(side_end(&a), MP_EAUTH);
    CHECK_EQ(side_end(&b), MP_EAUTH);
    mp_conn_close(a.c);
    mp_conn_close(b.c);
    /* a scripted 3.11 listener: a 20-byte challenge, then it checks our challenge */
    side_start(&a, &pa, "secret", false, 10);
    unsigned char ch[31] = "#CHALLENGE#", d[16], msg[48], out[64];
    memset(ch + 11, 0x5a, 20);
    CHECK_EQ(mp_conn_send(pa, ch, 31), MP_OK);
    mp__hmac(&mp__md5, "secret", 6, ch + 11, 20, d);
    expect_msg(pa, (const char *)d, 16);
    CHECK_EQ(mp_conn_send(pa, "#WELCOME#", 9), MP_OK);
    get_challenge(pa, msg); /* a 3.11 listener answers a modern challenge with bare MD5 */
    CHECK_EQ(mp_conn_send(pa, out, answer(A_MD5_BARE, msg, out)), MP_OK);
    expect_msg(pa, "#WELCOME#", 9);
    CHECK_EQ(side_end(&a), MP_OK);
    mp_conn_close(pa);
    mp_conn_close(a.c);
    /* a listener that says #WELCOME# to a wrong answer is still checked by us */
    side_start(&b, &pb, "secret", false, 10);
    CHECK_EQ(mp_conn_send(pb, ch, 31), MP_OK);
    expect_msg(pb, (const char *)d, 16);
    CHECK_EQ(mp_conn_send(pb, "#WELCOME#", 9), MP_OK);
    get_challenge(pb, msg);
    CHECK_EQ(mp_conn_send(pb, out, answer(A_WRONG_KEY, msg, out)), MP_OK);
    expect_msg(pb, "#FAILURE#", 9);
    CHECK_EQ(side_end(&b), MP_EAUTH);
    mp_conn_close(pb);
    mp_conn_close(b.c);
}
