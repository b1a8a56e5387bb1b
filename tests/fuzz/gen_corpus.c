/* gen_corpus.c -- writes the fuzz target's seed corpus: one valid frame of
 * every request (and a few answers), two pipelined frames, and malformed
 * inputs. Run once, its output is committed in tests/fuzz/corpus:
 *   fuzz_gen_corpus tests/fuzz/corpus */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

#define BODY(x) EVSTORE__V1__ENVELOPE__BODY_##x

static const char *out_dir;

static void write_bytes(const char *name, const uint8_t *b, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: cannot write %s\n", path);
        exit(1);
    }
}

/* Encodes env into buf (4096 bytes); returns the frame's length. */
static size_t encode(const envelope_t *env, uint8_t *buf)
{
    if (frame_size(env) > 4096) {
        fprintf(stderr, "gen_corpus: frame too large\n");
        exit(1);
    }
    return frame_encode(env, buf);
}

static void write_env(const char *name, uint64_t corr, int kind, void *body)
{
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = corr;
    env.body_case = kind;
    env.hello = body; /* one slot for every member of the oneof */
    uint8_t buf[4096];
    write_bytes(name, buf, encode(&env, buf));
}

static uint8_t ids[4][16];

static Evstore__V1__EventData event(int i, char *type, char *data)
{
    Evstore__V1__EventData e = EVSTORE__V1__EVENT_DATA__INIT;
    e.id.data = ids[i];
    e.id.len = 16;
    e.type = type;
    e.data.data = (uint8_t *)data;
    e.data.len = strlen(data);
    return e;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_gen_corpus DIR\n");
        return 2;
    }
    out_dir = argv[1];
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 16; k++)
            ids[i][k] = (uint8_t)(i * 16 + k + 1);

    Evstore__V1__Hello hello = EVSTORE__V1__HELLO__INIT;
    hello.protocol_version = PROTOCOL_VERSION;
    hello.client_name = "fuzz-seed";
    write_env("hello", 1, BODY(HELLO), &hello);

    Evstore__V1__EventData e0 = event(0, "OrderPlaced", "{\"order\":1}");
    Evstore__V1__EventData *one[] = {&e0};
    Evstore__V1__StreamAppend sa = EVSTORE__V1__STREAM_APPEND__INIT;
    sa.stream = "order-1";
    sa.expected_version = -2;
    sa.events = one;
    sa.n_events = 1;
    Evstore__V1__StreamAppend *sap[] = {&sa};
    Evstore__V1__AppendRequest app = EVSTORE__V1__APPEND_REQUEST__INIT;
    app.streams = sap;
    app.n_streams = 1;
    write_env("append-one", 2, BODY(APPEND), &app);

    Evstore__V1__EventData e1 = event(1, "PaymentProcessed", "{\"amount\":\"9.99\"}");
    Evstore__V1__EventData e2 = event(2, "PaymentNoted", "");
    e1.metadata.data = (uint8_t *)"\x01\x02";
    e1.metadata.len = 2;
    e1.timestamp_ns = 1700000000000000000LL;
    Evstore__V1__EventData *two[] = {&e1, &e2};
    Evstore__V1__StreamAppend sb = EVSTORE__V1__STREAM_APPEND__INIT;
    sb.stream = "payment-1";
    sb.expected_version = 4;
    sb.events = two;
    sb.n_events = 2;
    Evstore__V1__StreamAppend *multi[] = {&sa, &sb};
    app.streams = multi;
    app.n_streams = 2;
    write_env("append-multi", 3, BODY(APPEND), &app);

    Evstore__V1__ReadRequest rd = EVSTORE__V1__READ_REQUEST__INIT;
    rd.stream = "order-1";
    rd.max_count = 100;
    write_env("read-stream", 4, BODY(READ), &rd);
    char *types[] = {"OrderPlaced", "OrderShipped"};
    Evstore__V1__EventFilter filter = EVSTORE__V1__EVENT_FILTER__INIT;
    filter.types = types;
    filter.n_types = 2;
    filter.type_prefix = "Order";
    rd.stream = "$ce-order";
    rd.from = 17;
    rd.backwards = 1;
    rd.filter = &filter;
    write_env("read-category-backwards-filter", 5, BODY(READ), &rd);
    Evstore__V1__ReadRequest all = EVSTORE__V1__READ_REQUEST__INIT;
    all.stream = "$all";
    all.from_end = 1;
    all.max_count = 10;
    write_env("read-all-from-end", 6, BODY(READ), &all);

    Evstore__V1__StreamInfoRequest info = EVSTORE__V1__STREAM_INFO_REQUEST__INIT;
    info.stream = "order-1";
    write_env("stream-info", 7, BODY(STREAM_INFO), &info);
    Evstore__V1__ListStreamsRequest list = EVSTORE__V1__LIST_STREAMS_REQUEST__INIT;
    list.prefix = "order-";
    list.after = "order-1";
    list.max_count = 50;
    write_env("list-streams", 8, BODY(LIST_STREAMS), &list);
    Evstore__V1__ServerStatsRequest stats = EVSTORE__V1__SERVER_STATS_REQUEST__INIT;
    write_env("server-stats", 9, BODY(SERVER_STATS), &stats);
    Evstore__V1__Ping ping = EVSTORE__V1__PING__INIT;
    ping.nonce = 0x0123456789abcdefULL;
    write_env("ping", 10, BODY(PING), &ping);

    /* Answers: the same decoder reads them on the client side. */
    Evstore__V1__RecordedEvent rec = EVSTORE__V1__RECORDED_EVENT__INIT;
    rec.position = 12;
    rec.stream = "order-1";
    rec.version = 3;
    rec.id.data = ids[3];
    rec.id.len = 16;
    rec.type = "OrderPlaced";
    rec.data.data = (uint8_t *)"{}";
    rec.data.len = 2;
    rec.timestamp_ns = 1;
    Evstore__V1__RecordedEvent *recs[] = {&rec, &rec};
    Evstore__V1__ReadResponse rr = EVSTORE__V1__READ_RESPONSE__INIT;
    rr.events = recs;
    rr.n_events = 2;
    rr.next = 13;
    rr.stream_version = 3;
    write_env("answer-read-ok", 4, BODY(READ_OK), &rr);
    int64_t versions[] = {0, 5};
    Evstore__V1__AppendResponse ar = EVSTORE__V1__APPEND_RESPONSE__INIT;
    ar.first_position = 40;
    ar.event_count = 3;
    ar.last_versions = versions;
    ar.n_last_versions = 2;
    write_env("answer-append-ok", 3, BODY(APPEND_OK), &ar);
    Evstore__V1__Error err = EVSTORE__V1__ERROR__INIT;
    err.code = EVSTORE__V1__ERROR_CODE__WRONG_EXPECTED_VERSION;
    err.message = "wrong expected version";
    err.stream_index = 1;
    err.actual_version = -1;
    write_env("answer-error", 3, BODY(ERROR), &err);

    /* Two frames back to back, as a pipelining client sends them. */
    uint8_t buf[8192];
    envelope_t a = EVSTORE__V1__ENVELOPE__INIT, b = EVSTORE__V1__ENVELOPE__INIT;
    a.correlation_id = 1;
    a.body_case = BODY(HELLO);
    a.hello = &hello;
    b.correlation_id = 2;
    b.body_case = BODY(PING);
    b.ping = &ping;
    size_t n = encode(&a, buf);
    n += encode(&b, buf + n);
    write_bytes("pipelined-hello-ping", buf, n);

    /* Malformed: cut short, a 4 GiB length, a zero length, garbage in a
     * whole frame, an envelope with no body, an id of 15 bytes. */
    envelope_t m = EVSTORE__V1__ENVELOPE__INIT;
    m.correlation_id = 2;
    m.body_case = BODY(APPEND);
    m.append = &app;
    n = encode(&m, buf);
    write_bytes("bad-truncated-append", buf, n - 7);
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x08, 0x01};
    write_bytes("bad-length-4gib", huge, sizeof huge);
    static const uint8_t zero[] = {0, 0, 0, 0, 0x08, 0x01};
    write_bytes("bad-length-zero", zero, sizeof zero);
    static const uint8_t junk[] = {8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_bytes("bad-garbage-body", junk, sizeof junk);
    static const uint8_t nobody[] = {5, 0, 0, 0, 0x08, 0x05, 0xf8, 0x01, 0x01};
    write_bytes("bad-no-body", nobody, sizeof nobody);
    e0.id.len = 15;
    sa.n_events = 1;
    app.streams = sap;
    app.n_streams = 1;
    write_env("bad-short-id", 11, BODY(APPEND), &app);
    return 0;
}
