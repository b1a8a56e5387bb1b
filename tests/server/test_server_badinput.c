/* test_server_badinput.c -- clients that break the protocol or a limit.
 * Each such client is answered with an Error or disconnected (or both),
 * and the server stays up and keeps serving everyone else: after every
 * test a fresh connection must get a Pong. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "srv_util.h"
#include "wire.h"

#define BODY(x) EVSTORE__V1__ENVELOPE__BODY_##x
#define CODE(x) EVSTORE__V1__ERROR_CODE__##x

#define CLOSE_MS_MAX 10000 /* a connection the server drops is gone by then */

static test_server_t srv;
static char log_dir[PATH_MAX]; /* of a test that keeps the server's stderr, or "" */

static void start_with(const char *const *flags)
{
    ck_assert_int_eq(srv_start(&srv, flags, NULL), 0);
}

static void setup(void) { start_with((const char *[]){"--quiet", NULL}); }

static void teardown(void)
{
    test_server_destroy(&srv);
    test_tmpdir_remove(log_dir);
    log_dir[0] = '\0';
}

/* A second connection still gets its hello and ping answered. */
static void assert_server_serves(void)
{
    wire_t w;
    ck_assert_msg(wire_open(&w, srv.port) == 0, "a fresh connection gets no HelloOk");
    envelope_t *p = wire_ping(&w, 4242);
    ck_assert_answer(p, BODY(PONG));
    ck_assert_uint_eq(p->pong->nonce, 4242);
    frame_free(p);
    wire_close(&w);
}

/* Receives one answer and asserts it is the given Error; the connection is
 * then closed by the server when closes is true. */
static void assert_error_then(wire_t *w, int code, bool closes)
{
    envelope_t *env = NULL;
    int rc = wire_recv(w, WIRE_TIMEOUT_MS, &env);
    ck_assert_msg(rc == 0, "no Error answer: %s", strerror(-rc));
    ck_assert_error(env, code);
    frame_free(env);
    if (closes)
        ck_assert_msg(wire_wait_closed(w, CLOSE_MS_MAX, NULL, NULL) == 0,
                      "the connection is still open %d ms after a fatal error", CLOSE_MS_MAX);
}

static void frame_header(uint8_t h[4], uint32_t n)
{
    h[0] = (uint8_t)n;
    h[1] = (uint8_t)(n >> 8);
    h[2] = (uint8_t)(n >> 16);
    h[3] = (uint8_t)(n >> 24);
}

/* Requests that go out together in one write: each adds one frame to buf
 * (cap bytes, *len used). */
static void frames_add(uint8_t *buf, size_t cap, size_t *len, const envelope_t *env)
{
    ck_assert_uint_le(*len + frame_size(env), cap);
    *len += frame_encode(env, buf + *len);
}

/* A read of max_count events (0: the server's limit) of stream. */
static void frames_add_read(uint8_t *buf, size_t cap, size_t *len, uint64_t corr,
                            const char *stream, uint32_t max_count)
{
    Evstore__V1__ReadRequest q = EVSTORE__V1__READ_REQUEST__INIT;
    q.stream = (char *)stream;
    q.max_count = max_count;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = corr;
    env.body_case = BODY(READ);
    env.read = &q;
    frames_add(buf, cap, len, &env);
}

/* A list of at most max_count streams named prefix... */
static void frames_add_list(uint8_t *buf, size_t cap, size_t *len, uint64_t corr,
                            const char *prefix, uint32_t max_count)
{
    Evstore__V1__ListStreamsRequest q = EVSTORE__V1__LIST_STREAMS_REQUEST__INIT;
    q.prefix = (char *)prefix;
    q.after = "";
    q.max_count = max_count;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = corr;
    env.body_case = BODY(LIST_STREAMS);
    env.list_streams = &q;
    frames_add(buf, cap, len, &env);
}

START_TEST(random_bytes_are_answered_or_dropped_and_the_server_stays_up)
{
    /* Some connections say hello first, some do not; all end by closing
     * their sending side, after which the server must close too. */
    for (unsigned seed = 1; seed <= 24; seed++) {
        srand(seed);
        wire_t w;
        ck_assert_int_eq(seed % 2 ? wire_open(&w, srv.port)
                                  : wire_connect(&w, srv.port, WIRE_TIMEOUT_MS),
                         0);
        uint8_t junk[4096];
        size_t n = 1 + (size_t)rand() % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        if (seed % 3 == 0)
            frame_header(junk, (uint32_t)(n > 4 ? n - 4 : 1)); /* a whole frame of junk */
        int rc = wire_send_raw(&w, junk, n, WIRE_TIMEOUT_MS);
        ck_assert(rc == 0 || rc == -EPIPE);
        shutdown(w.fd, SHUT_WR);
        int frames = 0, err = 0;
        ck_assert_msg(wire_wait_closed(&w, CLOSE_MS_MAX, &frames, &err) == 0,
                      "seed %u: connection not closed after random bytes and EOF", seed);
        if (frames)
            ck_assert_msg(err != 0, "seed %u: answers to random bytes hold no Error", seed);
        wire_close(&w);
    }
    assert_server_serves();
}
END_TEST

START_TEST(truncated_frames_then_close_leave_the_server_serving)
{
    wire_event_t e = {.type = "Cut", .data = "some data here", .data_len = 14};
    wire_id(e.id, 1, 2);
    wire_stream_t s = {.stream = "cut-1", .expected_version = WIRE_ANY, .events = &e,
                       .event_count = 1};
    size_t len = 0;
    uint8_t *frame = wire_encode_append(7, &s, 1, &len);
    ck_assert_ptr_nonnull(frame);
    for (size_t cut = 1; cut < len; cut += (cut < 8 ? 1 : 5)) {
        wire_t w;
        ck_assert_int_eq(wire_open(&w, srv.port), 0);
        ck_assert_int_eq(wire_send_raw(&w, frame, cut, WIRE_TIMEOUT_MS), 0);
        wire_close(&w);
    }
    /* A length that promises more than ever comes, then a half-close:
     * the server closes without answering. */
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    uint8_t h[4 + 10] = {0};
    frame_header(h, 1000);
    ck_assert_int_eq(wire_send_raw(&w, h, sizeof h, WIRE_TIMEOUT_MS), 0);
    shutdown(w.fd, SHUT_WR);
    int frames = -1;
    ck_assert_int_eq(wire_wait_closed(&w, CLOSE_MS_MAX, &frames, NULL), 0);
    ck_assert_int_eq(frames, 0);
    wire_close(&w);
    free(frame);
    assert_server_serves();
    /* Nothing of the cut appends was written. */
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    envelope_t *st = wire_stats(&w);
    ck_assert_answer(st, BODY(SERVER_STATS_OK));
    ck_assert_uint_eq(st->server_stats_ok->head_position, 0);
    frame_free(st);
    wire_close(&w);
}
END_TEST

START_TEST(length_prefix_of_4_gib_is_frame_too_large_and_allocates_nothing)
{
    long rss_before = srv_rss_kb(srv.pid);
    ck_assert_int_gt(rss_before, 0);
    for (int round = 0; round < 8; round++) {
        wire_t w;
        /* With and without a hello first. */
        ck_assert_int_eq(round % 2 ? wire_open(&w, srv.port)
                                   : wire_connect(&w, srv.port, WIRE_TIMEOUT_MS),
                         0);
        uint8_t h[4] = {0xff, 0xff, 0xff, 0xff};
        ck_assert_int_eq(wire_send_raw(&w, h, sizeof h, WIRE_TIMEOUT_MS), 0);
        assert_error_then(&w, CODE(FRAME_TOO_LARGE), true);
        wire_close(&w);
    }
    long rss_after = srv_rss_kb(srv.pid);
    fprintf(stderr, "badinput: 4 GiB prefixes: server RSS %ld -> %ld KiB\n", rss_before,
            rss_after);
    ck_assert_msg(rss_after - rss_before < 16 * 1024,
                  "server RSS grew by %ld KiB after 4 GiB length prefixes",
                  rss_after - rss_before);
    assert_server_serves();
}
END_TEST

START_TEST(length_over_the_frame_limit_or_zero_is_frame_too_large)
{
    teardown();
    start_with((const char *[]){"--quiet", "--max-frame-bytes", "64K", "--max-event-bytes", "8K",
                                NULL});
    static const uint32_t lengths[] = {64 * 1024 + 1, 0};
    for (size_t i = 0; i < 2; i++) {
        wire_t w;
        ck_assert_int_eq(wire_open(&w, srv.port), 0);
        uint8_t h[4];
        frame_header(h, lengths[i]);
        ck_assert_int_eq(wire_send_raw(&w, h, sizeof h, WIRE_TIMEOUT_MS), 0);
        assert_error_then(&w, CODE(FRAME_TOO_LARGE), true);
        wire_close(&w);
    }
    /* Exactly the limit is accepted (and, being junk, is a bad request). */
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    static uint8_t big[4 + 64 * 1024];
    memset(big, 0xff, sizeof big);
    frame_header(big, 64 * 1024);
    ck_assert_int_eq(wire_send_raw(&w, big, sizeof big, WIRE_TIMEOUT_MS), 0);
    assert_error_then(&w, CODE(BAD_REQUEST), false);
    envelope_t *p = wire_ping(&w, 1);
    ck_assert_answer(p, BODY(PONG));
    frame_free(p);
    wire_close(&w);
    assert_server_serves();
}
END_TEST

START_TEST(a_valid_frame_of_garbage_is_bad_request_and_the_connection_goes_on)
{
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    uint8_t f[4 + 12];
    frame_header(f, 12);
    memset(f + 4, 0xff, 12); /* an unterminated varint: not protobuf */
    ck_assert_int_eq(wire_send_raw(&w, f, sizeof f, WIRE_TIMEOUT_MS), 0);
    assert_error_then(&w, CODE(BAD_REQUEST), false);
    /* Valid protobuf, but an Envelope with no body: correlation_id 5 and
     * an unknown field 31. */
    static const uint8_t nobody[] = {5, 0, 0, 0, 0x08, 0x05, 0xf8, 0x01, 0x01};
    ck_assert_int_eq(wire_send_raw(&w, nobody, sizeof nobody, WIRE_TIMEOUT_MS), 0);
    assert_error_then(&w, CODE(BAD_REQUEST), false);
    /* An answer sent as if it were a request. */
    Evstore__V1__Pong pong = EVSTORE__V1__PONG__INIT;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = 9;
    env.body_case = BODY(PONG);
    env.pong = &pong;
    ck_assert_int_eq(wire_send(&w, &env), 0);
    assert_error_then(&w, CODE(BAD_REQUEST), false);
    envelope_t *p = wire_ping(&w, 77);
    ck_assert_answer(p, BODY(PONG));
    ck_assert_uint_eq(p->pong->nonce, 77);
    frame_free(p);
    wire_close(&w);
    assert_server_serves();
}
END_TEST

START_TEST(a_request_before_hello_is_not_ready_and_closes)
{
    wire_t w;
    ck_assert_int_eq(wire_connect(&w, srv.port, WIRE_TIMEOUT_MS), 0);
    ck_assert_int_eq(wire_send_ping(&w, 11, 1), 0);
    envelope_t *env = NULL;
    ck_assert_int_eq(wire_recv(&w, WIRE_TIMEOUT_MS, &env), 0);
    ck_assert_error(env, CODE(NOT_READY));
    ck_assert_uint_eq(env->correlation_id, 11);
    frame_free(env);
    ck_assert_int_eq(wire_wait_closed(&w, CLOSE_MS_MAX, NULL, NULL), 0);
    wire_close(&w);
    assert_server_serves();
}
END_TEST

START_TEST(a_wrong_protocol_version_is_refused_and_closed)
{
    static const uint32_t versions[] = {0, 2, 0xffffffffu};
    for (size_t i = 0; i < 3; i++) {
        wire_t w;
        ck_assert_int_eq(wire_connect(&w, srv.port, WIRE_TIMEOUT_MS), 0);
        ck_assert_int_eq(wire_send_hello(&w, 3, versions[i], "from-the-future"), 0);
        assert_error_then(&w, CODE(PROTOCOL_VERSION), true);
        wire_close(&w);
    }
    assert_server_serves();
}
END_TEST

START_TEST(a_second_hello_is_bad_request)
{
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    envelope_t *h = wire_hello(&w, "again");
    ck_assert_error(h, CODE(BAD_REQUEST));
    frame_free(h);
    envelope_t *p = wire_ping(&w, 5);
    ck_assert_answer(p, BODY(PONG));
    frame_free(p);
    wire_close(&w);
}
END_TEST

/* Sends one append of one event and asserts the Error code; nothing is
 * written. */
static void assert_append_refused(wire_t *w, const char *stream, int64_t ev, wire_event_t *e,
                                  int code)
{
    wire_stream_t s = {.stream = stream, .expected_version = ev, .events = e, .event_count = 1};
    envelope_t *a = wire_append(w, &s, 1);
    ck_assert_error(a, code);
    frame_free(a);
}

START_TEST(malformed_appends_are_bad_requests_and_write_nothing)
{
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    wire_event_t e = {.type = "T", .data = "x", .data_len = 1};
    wire_id(e.id, 3, 3);
    static const uint8_t ids[17] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
    static const size_t bad_lengths[] = {0, 1, 15, 17};
    for (size_t i = 0; i < 4; i++) {
        e.raw_id = ids;
        e.raw_id_len = bad_lengths[i];
        assert_append_refused(&w, "bad-1", WIRE_ANY, &e, CODE(BAD_REQUEST));
    }
    e.raw_id = NULL;
    e.type = "";
    assert_append_refused(&w, "bad-1", WIRE_ANY, &e, CODE(BAD_REQUEST));
    static char long_type[257];
    memset(long_type, 't', 256); /* one byte over the 255 a type may have */
    e.type = long_type;
    assert_append_refused(&w, "bad-1", WIRE_ANY, &e, CODE(BAD_REQUEST));
    e.type = "T";
    assert_append_refused(&w, "", WIRE_ANY, &e, CODE(BAD_REQUEST));
    assert_append_refused(&w, "$all", WIRE_ANY, &e, CODE(BAD_REQUEST));
    assert_append_refused(&w, "$ce-bad", WIRE_ANY, &e, CODE(BAD_REQUEST));
    /* '$' names are the server's own (system streams): never a client's
     * (this once failed: log_append_t.system was left uninitialised). */
    assert_append_refused(&w, "$system-1", WIRE_ANY, &e, CODE(BAD_REQUEST));
    assert_append_refused(&w, "bad-1", -4, &e, CODE(BAD_REQUEST));
    /* An append with no streams, and a stream with no events. */
    envelope_t *a = wire_append(&w, NULL, 0);
    ck_assert_error(a, CODE(BAD_REQUEST));
    frame_free(a);
    wire_stream_t empty = {.stream = "bad-1", .expected_version = WIRE_ANY};
    a = wire_append(&w, &empty, 1);
    ck_assert_error(a, CODE(BAD_REQUEST));
    frame_free(a);
    /* Reads and stream infos with an empty name. */
    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = ""});
    ck_assert_error(r, CODE(BAD_REQUEST));
    frame_free(r);
    r = wire_stream_info(&w, "");
    ck_assert_error(r, CODE(BAD_REQUEST));
    frame_free(r);
    envelope_t *st = wire_stats(&w);
    ck_assert_answer(st, BODY(SERVER_STATS_OK));
    ck_assert_uint_eq(st->server_stats_ok->head_position, 0);
    frame_free(st);
    wire_close(&w);
    assert_server_serves();
}
END_TEST

START_TEST(appends_over_the_event_limits_are_too_large)
{
    teardown();
    start_with((const char *[]){"--quiet", "--max-append-events", "10", "--max-event-bytes",
                                "1K", NULL});
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    wire_event_t e[11];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 11; i++) {
        e[i].type = "T";
        wire_id(e[i].id, 4, (uint64_t)i);
    }
    wire_stream_t s = {.stream = "lim-1", .expected_version = WIRE_ANY, .events = e,
                       .event_count = 11};
    envelope_t *a = wire_append(&w, &s, 1);
    ck_assert_error(a, CODE(TOO_LARGE));
    frame_free(a);
    s.event_count = 10;
    a = wire_append(&w, &s, 1);
    ck_assert_answer(a, BODY(APPEND_OK));
    frame_free(a);
    static char big[1025];
    memset(big, 'b', sizeof big);
    wire_event_t one = {.type = "Big", .data = big, .data_len = sizeof big};
    wire_id(one.id, 5, 5);
    assert_append_refused(&w, "lim-1", WIRE_ANY, &one, CODE(TOO_LARGE));
    one.data_len = 1024;
    s = (wire_stream_t){.stream = "lim-1", .expected_version = WIRE_ANY, .events = &one,
                        .event_count = 1};
    a = wire_append(&w, &s, 1);
    ck_assert_answer(a, BODY(APPEND_OK));
    frame_free(a);
    wire_close(&w);
    assert_server_serves();
}
END_TEST

/* ---- a client trickling one byte every 100 ms ---- */

#define TRICKLE_BYTE_US (100 * 1000) /* the hello's 30 bytes take ~3 s */
#define TRICKLE_MS_MAX 20000
/* Meanwhile another client's pings are answered in well under a
 * millisecond (a loaded sanitizer build: ~200 ms at worst); a server that
 * waited for the rest of the slow client's frame would hold one for about
 * the whole trickle. The bound sits in between, at half the trickle as it
 * was measured: a loaded machine stretches both alike. */

typedef struct {
    uint16_t port;
    int result; /* 0 once its HelloOk and a Pong came */
    int bytes;
    int64_t trickle_ms; /* from the first byte sent to the last */
    atomic_bool done;
} trickle_t;

static void *trickle_main(void *arg)
{
    trickle_t *t = arg;
    t->result = -1;
    wire_t w;
    if (wire_connect(&w, t->port, WIRE_TIMEOUT_MS) == 0) {
        Evstore__V1__Hello h = EVSTORE__V1__HELLO__INIT;
        h.protocol_version = PROTOCOL_VERSION;
        h.client_name = "a-very-slow-client"; /* 30 bytes of frame: ~3 s */
        envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
        env.correlation_id = 1;
        env.body_case = BODY(HELLO);
        env.hello = &h;
        uint8_t buf[64];
        size_t n = frame_encode(&env, buf);
        t->bytes = (int)n;
        bool sent = true;
        int64_t start_ms = (int64_t)util_mono_ms();
        for (size_t i = 0; i < n && sent; i++) {
            if (i > 0)
                usleep(TRICKLE_BYTE_US);
            sent = wire_send_raw(&w, buf + i, 1, WIRE_TIMEOUT_MS) == 0;
        }
        t->trickle_ms = (int64_t)util_mono_ms() - start_ms;
        envelope_t *ok = NULL;
        if (sent && wire_recv(&w, WIRE_TIMEOUT_MS, &ok) == 0 &&
            ok->body_case == BODY(HELLO_OK)) {
            envelope_t *p = wire_ping(&w, 9);
            t->result = p && p->body_case == BODY(PONG) ? 0 : -1;
            frame_free(p);
        }
        frame_free(ok);
        wire_close(&w);
    }
    atomic_store(&t->done, true);
    return NULL;
}

START_TEST(a_client_sending_a_byte_every_100_ms_does_not_delay_others)
{
    /* Connected first, so that every wait the trickle could cause falls on
     * a ping. */
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    trickle_t t = {.port = srv.port};
    atomic_init(&t.done, false);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, trickle_main, &t), 0);
    int64_t worst_ms = 0, deadline = (int64_t)util_mono_ms() + TRICKLE_MS_MAX;
    unsigned pings = 0;
    while (!atomic_load(&t.done) && (int64_t)util_mono_ms() < deadline) {
        int64_t t0 = (int64_t)util_mono_ms();
        envelope_t *p = wire_ping(&w, pings);
        int64_t ms = (int64_t)util_mono_ms() - t0;
        ck_assert_answer(p, BODY(PONG));
        frame_free(p);
        worst_ms = ms > worst_ms ? ms : worst_ms;
        pings++;
    }
    bool trickle_done = atomic_load(&t.done);
    pthread_join(th, NULL);
    fprintf(stderr,
            "badinput: trickle of %d bytes in %lld ms: %u pings answered meanwhile, slowest %lld ms\n",
            t.bytes, (long long)t.trickle_ms, pings, (long long)worst_ms);
    ck_assert_msg(trickle_done, "the trickling client took over %d ms", TRICKLE_MS_MAX);
    ck_assert_int_eq(t.result, 0);
    ck_assert_msg(worst_ms < t.trickle_ms / 2,
                  "a ping waited %lld ms while a client trickled for %lld ms (under half expected)",
                  (long long)worst_ms, (long long)t.trickle_ms);
    wire_close(&w);
}
END_TEST

/* ---- a connection flood ---- */

#define CONN_LIMIT 16
#define FLOOD 20
#define CONN_RETRY_MS_MAX 10000 /* the server notices a close by then */
#define CONN_RETRY_US (20 * 1000)

START_TEST(connections_past_the_limit_are_refused_until_some_close)
{
    teardown();
    start_with((const char *[]){"--quiet", "--max-connections", "16", NULL});
    static wire_t w[FLOOD];
    for (int i = 0; i < CONN_LIMIT; i++)
        ck_assert_msg(wire_open(&w[i], srv.port) == 0, "connection %d of %d refused", i + 1,
                      CONN_LIMIT);
    for (int i = CONN_LIMIT; i < FLOOD; i++) {
        ck_assert_int_eq(wire_connect(&w[i], srv.port, WIRE_TIMEOUT_MS), 0);
        int rc = wire_send_hello(&w[i], 1, PROTOCOL_VERSION, "one-too-many");
        ck_assert(rc == 0 || rc == -EPIPE);
        int frames = 0, err = 0;
        ck_assert_msg(wire_wait_closed(&w[i], CLOSE_MS_MAX, &frames, &err) == 0,
                      "connection %d over the limit is not closed", i + 1);
        ck_assert_msg(frames == 0 || err == CODE(BUSY),
                      "connection %d over the limit got %d frames, first error %d", i + 1,
                      frames, err);
        wire_close(&w[i]);
    }
    for (int i = 0; i < CONN_LIMIT; i++) {
        envelope_t *p = wire_ping(&w[i], (uint64_t)i);
        ck_assert_answer(p, BODY(PONG));
        frame_free(p);
    }
    for (int i = 0; i < 4; i++)
        wire_close(&w[i]);
    /* The server notices the closes at its own pace: retry, bounded. */
    for (int i = 0; i < 4; i++) {
        int64_t deadline = (int64_t)util_mono_ms() + CONN_RETRY_MS_MAX;
        int rc;
        while ((rc = wire_open(&w[i], srv.port)) != 0 && (int64_t)util_mono_ms() < deadline)
            usleep(CONN_RETRY_US);
        ck_assert_msg(rc == 0, "no new connection accepted after 4 closed");
    }
    for (int i = 0; i < CONN_LIMIT; i++) {
        envelope_t *p = wire_ping(&w[i], (uint64_t)i);
        ck_assert_answer(p, BODY(PONG));
        frame_free(p);
        wire_close(&w[i]);
    }
    int64_t deadline = (int64_t)util_mono_ms() + CONN_RETRY_MS_MAX;
    wire_t last;
    int rc;
    while ((rc = wire_open(&last, srv.port)) != 0 && (int64_t)util_mono_ms() < deadline)
        usleep(CONN_RETRY_US);
    ck_assert_int_eq(rc, 0);
    wire_close(&last);
}
END_TEST

/* ---- a client that never reads ---- */

/* Starts a server with a 1 MiB output limit and 512 KiB frames, opens *w
 * and stores 512 KiB of events in "bulk-1", so that every read answer is
 * large (~256 KiB). */
static void start_with_bulk(wire_t *w, int id_seed)
{
    teardown();
    start_with((const char *[]){"--quiet", "--max-output-bytes", "1M", "--max-frame-bytes",
                                "512K", "--max-event-bytes", "64K", NULL});
    ck_assert_int_eq(wire_open(w, srv.port), 0);
    static char data[8192];
    memset(data, 'd', sizeof data);
    for (int i = 0; i < 8; i++) {
        wire_event_t e[8];
        memset(e, 0, sizeof e);
        for (int k = 0; k < 8; k++) {
            e[k].type = "Bulk";
            e[k].data = data;
            e[k].data_len = sizeof data;
            wire_id(e[k].id, (uint64_t)id_seed, (uint64_t)(i * 8 + k));
        }
        wire_stream_t s = {.stream = "bulk-1", .expected_version = WIRE_ANY, .events = e,
                           .event_count = 8};
        envelope_t *a = wire_append(w, &s, 1);
        ck_assert_answer(a, BODY(APPEND_OK));
        frame_free(a);
    }
}

/* Requests are sent in bursts of this many read frames (~22 B each), with
 * SLOW_SEND_MS_MAX for each burst: a burst that does not go out in that
 * time means the server stopped reading. The socket buffers between the
 * two hold a few MiB, far below SLOW_FLOOD_BYTES_MAX. */
#define SLOW_BURST 4096
#define SLOW_SEND_MS_MAX 1000
#define SLOW_FLOOD_BYTES_MAX (256u * 1024 * 1024)
#define SLOW_FLOOD_MS_MAX 30000
/* Answers read afterwards (~256 KiB each): more than the usual socket
 * buffers (a few MiB) and the 1 MiB output limit hold, so the server must
 * take requests again once the client reads. */
#define SLOW_ANSWERS_AFTER 64

START_TEST(a_client_that_never_reads_is_paused_and_memory_stays_bounded)
{
    wire_t w;
    start_with_bulk(&w, 6);
    long rss_before = srv_rss_kb(srv.pid);

    /* Read requests, never reading their answers, until the server stops
     * taking them. Each answer is ~256 KiB, at most a quarter of the output
     * limit, and is only built while less than half of it is queued: the
     * server pauses this client, it never disconnects it. */
    wire_t slow;
    ck_assert_int_eq(wire_open(&slow, srv.port), 0);
    static uint8_t burst[SLOW_BURST * 32];
    size_t burst_len = 0;
    for (int k = 0; k < SLOW_BURST; k++)
        frames_add_read(burst, sizeof burst, &burst_len, 1, "$all", 0);
    int64_t deadline = (int64_t)util_mono_ms() + SLOW_FLOOD_MS_MAX;
    size_t sent_bytes = 0;
    long rss_max = rss_before;
    int rc = 0;
    while (rc == 0 && sent_bytes < SLOW_FLOOD_BYTES_MAX && (int64_t)util_mono_ms() < deadline) {
        rc = wire_send_raw(&slow, burst, burst_len, SLOW_SEND_MS_MAX);
        sent_bytes += rc == 0 ? burst_len : 0;
        long rss = srv_rss_kb(srv.pid);
        rss_max = rss > rss_max ? rss : rss_max;
    }
    fprintf(stderr, "badinput: never-reading client: %zu request bytes sent, then %s; server RSS "
                    "%ld KiB before, %ld KiB at most\n", sent_bytes,
            rc == -ETIMEDOUT ? "no longer read" : rc ? strerror(-rc) : "still reading",
            rss_before, rss_max);
    ck_assert_msg(rc == -ETIMEDOUT, "the server did not stop reading a client that never reads "
                                    "its answers (send: %s after %zu bytes)",
                  rc ? strerror(-rc) : "ok", sent_bytes);

    /* Others are served meanwhile, and the server's memory stays bounded:
     * the output limit is 1 MiB; answers being built add a frame or two. */
    envelope_t *p = wire_ping(&w, 1);
    ck_assert_answer(p, BODY(PONG));
    frame_free(p);
    assert_server_serves();
    long rss_after = srv_rss_kb(srv.pid);
    rss_max = rss_after > rss_max ? rss_after : rss_max;
    ck_assert_msg(rss_max - rss_before < 32 * 1024,
                  "server RSS grew by %ld KiB for a client that never reads",
                  rss_max - rss_before);

    /* Paused, not cut off: reading now, the client gets answers, far more
     * than were queued when it stopped, every one a ReadOk. */
    for (int i = 0; i < SLOW_ANSWERS_AFTER; i++) {
        envelope_t *env = NULL;
        rc = wire_recv(&slow, WIRE_TIMEOUT_MS, &env);
        ck_assert_msg(rc == 0, "answer %d after the client read again: %s", i + 1,
                      strerror(-rc));
        ck_assert_answer(env, BODY(READ_OK));
        frame_free(env);
    }
    wire_close(&slow);
    wire_close(&w);
    assert_server_serves();
}
END_TEST

/* ---- an answer that would pass --max-output-bytes ---- */

/* The server takes requests from a connection only while at most half of
 * --max-output-bytes is queued for it, and no answer to one request is
 * over --max-frame-bytes (at most half the limit), so requests alone never
 * pass the limit; answers to appends come later, when their batch is
 * durable, and can. This test builds, in one turn of the server's loop
 * (nothing is sent in between), a queue just under the limit and then
 * answers that pass it:
 *   - a 128 KiB output limit and 64 KiB frames; OUT_STREAMS streams with
 *     ~1 KB names, so that a list of n of them is answered with ~n KB;
 *   - one write holding retries of an append already durable (each is
 *     answered at the end of that same turn), then two lists whose answers,
 *     measured beforehand, are each at most half the limit (the first is
 *     taken, then the second) and together within ~2 KB of it.
 * The retries' answers pass the limit: the server must close the
 * connection at once, dropping every queued answer, without an Error. */
#define OUT_LIMIT_BYTES (128u * 1024)
#define OUT_STREAMS 80u
#define OUT_NAME_BYTES 1000u
#define OUT_PREFIX "long-" /* the names listed */
#define OUT_RETRY_CORR 1000u /* retries use ids 1000.. (2-byte varints); the lists 1 and 2 */
#define OUT_WRITE_BYTES_MAX (32u * 1024) /* the write must fit the server's 64 KiB receive */

static const char *const out_flags[] = {"--max-output-bytes", "128K", "--max-frame-bytes", "64K",
                                        "--max-event-bytes", "8K", NULL};

/* Creates OUT_STREAMS streams "long-NNN-xxx..." (OUT_NAME_BYTES each) and
 * one event in "retry-1" (*retry: its retries are answered at once). */
static void out_store_events(wire_t *w, wire_event_t *retry)
{
    static char name[OUT_NAME_BYTES + 1];
    for (uint32_t i = 0; i < OUT_STREAMS; i++) {
        memset(name, 'x', OUT_NAME_BYTES);
        int n = snprintf(name, sizeof name, OUT_PREFIX "%03u-", i);
        name[n] = 'x'; /* the rest stays 'x' up to OUT_NAME_BYTES */
        envelope_t *a = wire_append_one(w, name, WIRE_ANY, 3100 + i, "Named", "n");
        ck_assert_answer(a, BODY(APPEND_OK));
        frame_free(a);
    }
    *retry = (wire_event_t){.type = "Retry", .data = "r", .data_len = 1};
    wire_id(retry->id, 32, 0);
    wire_stream_t s = {.stream = "retry-1", .expected_version = WIRE_ANY, .events = retry,
                       .event_count = 1};
    envelope_t *a = wire_append(w, &s, 1);
    ck_assert_answer(a, BODY(APPEND_OK));
    frame_free(a);
}

/* Bytes of the answer (its frame) to a list of max_count long names, were
 * it sent with correlation id corr; SIZE_MAX when it would be over the
 * frame limit (the server then answers TOO_LARGE). */
static size_t out_list_answer_bytes(wire_t *w, uint32_t max_count, uint64_t corr)
{
    envelope_t *l = wire_list_streams(w, OUT_PREFIX, "", max_count);
    if (l && l->body_case == BODY(ERROR)) {
        ck_assert_error(l, CODE(TOO_LARGE));
        frame_free(l);
        return SIZE_MAX;
    }
    ck_assert_answer(l, BODY(LIST_STREAMS_OK));
    ck_assert_uint_eq(l->list_streams_ok->n_streams, max_count);
    l->correlation_id = corr;
    size_t n = frame_size(l);
    frame_free(l);
    return n;
}

/* The longest list whose answer is at most half the limit; its size goes to
 * *bytes. The size grows with max_count: a binary search. */
static uint32_t out_plan_list(wire_t *w, size_t *bytes)
{
    uint32_t lo = 1, hi = OUT_STREAMS; /* answers: lo's fits, hi's does not */
    ck_assert_uint_le(out_list_answer_bytes(w, lo, 1), OUT_LIMIT_BYTES / 2);
    ck_assert_uint_gt(out_list_answer_bytes(w, hi, 1), OUT_LIMIT_BYTES / 2);
    while (lo + 1 < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        *(out_list_answer_bytes(w, mid, 1) <= OUT_LIMIT_BYTES / 2 ? &lo : &hi) = mid;
    }
    *bytes = out_list_answer_bytes(w, lo, 1);
    return lo;
}

START_TEST(an_answer_past_the_output_limit_closes_the_connection_at_once)
{
    teardown();
    char log_path[PATH_MAX];
    ck_assert_int_eq(srv_tmpfile("badinput-log", log_dir, log_path), 0);
    ck_assert_int_eq(srv_start(&srv, out_flags, log_path), 0);
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    wire_event_t retry;
    out_store_events(&w, &retry);
    wire_stream_t rs = {.stream = "retry-1", .expected_version = WIRE_ANY, .events = &retry,
                        .event_count = 1};

    /* Sizes, measured with the correlation ids the write below uses. */
    size_t list_bytes;
    uint32_t list_count = out_plan_list(&w, &list_bytes);
    envelope_t *a = wire_append(&w, &rs, 1);
    ck_assert_answer(a, BODY(APPEND_OK));
    ck_assert(a->append_ok->idempotent);
    a->correlation_id = OUT_RETRY_CORR;
    size_t retry_answer_bytes = frame_size(a);
    frame_free(a);
    size_t room = OUT_LIMIT_BYTES - 2 * list_bytes; /* left after the two lists */
    uint32_t retries = (uint32_t)(2 * (room / retry_answer_bytes + 1));
    fprintf(stderr, "badinput: output limit %u: lists of %u names answered with %zu bytes, "
                    "%zu bytes left, %u retries of %zu-byte answers\n", OUT_LIMIT_BYTES,
            list_count, list_bytes, room, retries, retry_answer_bytes);

    /* One write: the retries, then the two lists. */
    static uint8_t buf[OUT_WRITE_BYTES_MAX];
    size_t len = 0;
    for (uint32_t i = 0; i < retries; i++) {
        size_t n = 0;
        uint8_t *f = wire_encode_append(OUT_RETRY_CORR + i, &rs, 1, &n);
        ck_assert_ptr_nonnull(f);
        ck_assert_msg(len + n <= sizeof buf, "%u retries do not fit in one write", retries);
        memcpy(buf + len, f, n);
        len += n;
        free(f);
    }
    frames_add_list(buf, sizeof buf, &len, 1, OUT_PREFIX, list_count);
    frames_add_list(buf, sizeof buf, &len, 2, OUT_PREFIX, list_count);
    wire_t cut;
    ck_assert_int_eq(wire_open(&cut, srv.port), 0);
    ck_assert_int_eq(wire_send_raw(&cut, buf, len, WIRE_TIMEOUT_MS), 0);

    int frames = -1, first_error = -1;
    int closed = wire_wait_closed(&cut, CLOSE_MS_MAX, &frames, &first_error);
    fprintf(stderr, "badinput: past the output limit: %s, %d answers arrived\n",
            closed == 0 ? "closed" : "still open", frames);
    ck_assert_msg(closed == 0, "the connection is open %d ms after its answers passed "
                               "--max-output-bytes", CLOSE_MS_MAX);
    ck_assert_msg(frames == 0, "%d answers arrived (first error %d): queued answers must be "
                               "dropped", frames, first_error);
    ck_assert_msg(srv_file_contains(log_path, "over the limit: disconnected"),
                  "evstored did not log the disconnect");
    wire_close(&cut);

    /* The retries wrote nothing; everyone else is served. */
    envelope_t *st = wire_stats(&w);
    ck_assert_answer(st, BODY(SERVER_STATS_OK));
    ck_assert_uint_eq(st->server_stats_ok->head_position, OUT_STREAMS + 1);
    frame_free(st);
    wire_close(&w);
    assert_server_serves();
}
END_TEST

/* A client that pipelines several large reads in one write, and reads its
 * answers, is served: the server stops taking its frames while its answers
 * are backed up, and goes on once they drain (it once dropped such a client
 * as if it never read). */
START_TEST(a_client_pipelining_large_reads_and_reading_them_is_served)
{
    wire_t w;
    start_with_bulk(&w, 7);
    /* 8 reads in one write, then every answer read as it comes. */
    uint8_t frames[8 * 64];
    size_t len = 0;
    for (uint64_t c = 1; c <= 8; c++)
        frames_add_read(frames, sizeof frames, &len, 100 + c, "$all", 0);
    ck_assert_int_eq(wire_send_raw(&w, frames, len, WIRE_TIMEOUT_MS), 0);
    for (int i = 0; i < 8; i++) {
        envelope_t *env = NULL;
        int rc = wire_recv(&w, WIRE_TIMEOUT_MS, &env);
        ck_assert_msg(rc == 0, "answer %d of 8 pipelined reads: %s (the server dropped a "
                               "client that reads its answers)", i + 1, strerror(-rc));
        ck_assert_answer(env, BODY(READ_OK));
        ck_assert_uint_gt(env->read_ok->n_events, 0);
        frame_free(env);
    }
    wire_close(&w);
}
END_TEST

static Suite *badinput_suite(void)
{
    Suite *s = suite_create("server.badinput");
    TCase *tc = tcase_create("badinput");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, random_bytes_are_answered_or_dropped_and_the_server_stays_up);
    tcase_add_test(tc, truncated_frames_then_close_leave_the_server_serving);
    tcase_add_test(tc, length_prefix_of_4_gib_is_frame_too_large_and_allocates_nothing);
    tcase_add_test(tc, length_over_the_frame_limit_or_zero_is_frame_too_large);
    tcase_add_test(tc, a_valid_frame_of_garbage_is_bad_request_and_the_connection_goes_on);
    tcase_add_test(tc, a_request_before_hello_is_not_ready_and_closes);
    tcase_add_test(tc, a_wrong_protocol_version_is_refused_and_closed);
    tcase_add_test(tc, a_second_hello_is_bad_request);
    tcase_add_test(tc, malformed_appends_are_bad_requests_and_write_nothing);
    tcase_add_test(tc, appends_over_the_event_limits_are_too_large);
    tcase_add_test(tc, a_client_sending_a_byte_every_100_ms_does_not_delay_others);
    tcase_add_test(tc, connections_past_the_limit_are_refused_until_some_close);
    tcase_add_test(tc, a_client_that_never_reads_is_paused_and_memory_stays_bounded);
    tcase_add_test(tc, an_answer_past_the_output_limit_closes_the_connection_at_once);
    tcase_add_test(tc, a_client_pipelining_large_reads_and_reading_them_is_served);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(badinput_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
