/* test_server_roundtrip.c -- every request of the protocol against a real
 * evstored, and the answers it must give: hello and its limits, append and
 * read back, the expected-version modes, idempotent retries, atomic
 * multi-stream appends, category and $all reads with filters, backwards
 * reads, stream info, stream lists, server stats, ping, and many requests
 * pipelined on one connection. Each test has its own server. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv_util.h"
#include "wire.h"

#define BODY(x) EVSTORE__V1__ENVELOPE__BODY_##x
#define CODE(x) EVSTORE__V1__ERROR_CODE__##x

static test_server_t srv;
static wire_t w;

static void setup(void)
{
    ck_assert_int_eq(srv_start(&srv, NULL, NULL), 0);
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
}

static void teardown(void)
{
    wire_close(&w);
    test_server_destroy(&srv);
}

/* Appends one event and asserts it was accepted; returns its position. */
static uint64_t append_ok(const char *stream, int64_t ev, uint64_t seed, const char *type)
{
    char data[64];
    snprintf(data, sizeof data, "{\"seed\":%llu}", (unsigned long long)seed);
    envelope_t *a = wire_append_one(&w, stream, ev, seed, type, data);
    ck_assert_answer(a, BODY(APPEND_OK));
    uint64_t pos = a->append_ok->first_position;
    frame_free(a);
    return pos;
}

/* Asserts that an append answers WRONG_EXPECTED_VERSION for stream index
 * idx with the given actual version. */
static void append_wrong(const char *stream, int64_t ev, uint64_t seed, int64_t actual)
{
    envelope_t *a = wire_append_one(&w, stream, ev, seed, "T", "x");
    ck_assert_error(a, CODE(WRONG_EXPECTED_VERSION));
    ck_assert_uint_eq(a->error->stream_index, 0);
    ck_assert_int_eq(a->error->actual_version, actual);
    frame_free(a);
}

static int64_t stream_version(const char *stream, bool *exists)
{
    envelope_t *i = wire_stream_info(&w, stream);
    ck_assert_answer(i, BODY(STREAM_INFO_OK));
    ck_assert_str_eq(i->stream_info_ok->stream, stream);
    int64_t v = i->stream_info_ok->version;
    *exists = i->stream_info_ok->exists;
    frame_free(i);
    return v;
}

START_TEST(hello_answers_hello_ok_with_the_servers_limits)
{
    teardown();
    const char *flags[] = {"--max-append-events", "500", "--max-read-events", "300",
                           "--max-frame-bytes", "16M", NULL};
    ck_assert_int_eq(srv_start(&srv, flags, NULL), 0);
    ck_assert_int_eq(wire_connect(&w, srv.port, WIRE_TIMEOUT_MS), 0);
    envelope_t *h = wire_hello(&w, "roundtrip-test");
    ck_assert_answer(h, BODY(HELLO_OK));
    ck_assert_uint_eq(h->hello_ok->protocol_version, 1);
    ck_assert_str_ne(h->hello_ok->server_version, "");
    ck_assert_uint_eq(h->hello_ok->frame_bytes_max, 16u * 1024 * 1024);
    ck_assert_uint_eq(h->hello_ok->append_events_max, 500);
    ck_assert_uint_eq(h->hello_ok->read_events_max, 300);
    frame_free(h);
}
END_TEST

START_TEST(appended_event_reads_back_with_every_field)
{
    static const uint8_t meta[] = {0, 1, 2, 0xff};
    static const char data[] = "{\"order\":42,\"total\":\"9.99\"}";
    wire_event_t e = {.type = "OrderPlaced", .data = data, .data_len = sizeof data - 1,
                      .metadata = meta, .metadata_len = sizeof meta,
                      .timestamp_ns = 1700000000123456789LL};
    wire_id(e.id, 0xabcdef, 0x123456);
    wire_stream_t s = {.stream = "order-42", .expected_version = WIRE_NO_STREAM, .events = &e,
                       .event_count = 1};
    envelope_t *a = wire_append(&w, &s, 1);
    ck_assert_answer(a, BODY(APPEND_OK));
    ck_assert_uint_eq(a->append_ok->first_position, 0);
    ck_assert_uint_eq(a->append_ok->event_count, 1);
    ck_assert(!a->append_ok->idempotent);
    ck_assert_uint_eq(a->append_ok->n_last_versions, 1);
    ck_assert_int_eq(a->append_ok->last_versions[0], 0);
    frame_free(a);

    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = "order-42"});
    ck_assert_answer(r, BODY(READ_OK));
    Evstore__V1__ReadResponse *rr = r->read_ok;
    ck_assert_uint_eq(rr->n_events, 1);
    const Evstore__V1__RecordedEvent *ev = rr->events[0];
    ck_assert_uint_eq(ev->position, 0);
    ck_assert_str_eq(ev->stream, "order-42");
    ck_assert_int_eq(ev->version, 0);
    ck_assert_uint_eq(ev->id.len, 16);
    ck_assert_mem_eq(ev->id.data, e.id, 16);
    ck_assert_str_eq(ev->type, "OrderPlaced");
    ck_assert_uint_eq(ev->metadata.len, sizeof meta);
    ck_assert_mem_eq(ev->metadata.data, meta, sizeof meta);
    ck_assert_uint_eq(ev->data.len, sizeof data - 1);
    ck_assert_mem_eq(ev->data.data, data, sizeof data - 1);
    ck_assert_int_eq(ev->timestamp_ns, 1700000000123456789LL);
    ck_assert(rr->end);
    ck_assert_uint_eq(rr->next, 1);
    ck_assert_int_eq(rr->stream_version, 0);
    frame_free(r);
}
END_TEST

START_TEST(timestamp_zero_is_replaced_by_the_servers_time)
{
    int64_t before = (int64_t)util_real_ns();
    append_ok("clock-1", WIRE_ANY, 1, "Tick");
    int64_t after = (int64_t)util_real_ns();
    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = "clock-1"});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 1);
    int64_t t = r->read_ok->events[0]->timestamp_ns;
    /* A second of slack either side for clock granularity. */
    ck_assert_msg(t >= before - 1000000000LL && t <= after + 1000000000LL,
                  "timestamp %lld not within [%lld, %lld]", (long long)t, (long long)before,
                  (long long)after);
    frame_free(r);
}
END_TEST

START_TEST(expected_version_any_appends_at_any_version)
{
    append_ok("any-1", WIRE_ANY, 1, "T");
    append_ok("any-1", WIRE_ANY, 2, "T");
    append_ok("any-1", WIRE_ANY, 3, "T");
    bool exists;
    ck_assert_int_eq(stream_version("any-1", &exists), 2);
    ck_assert(exists);
}
END_TEST

START_TEST(expected_version_no_stream_fails_once_the_stream_exists)
{
    append_ok("ns-1", WIRE_NO_STREAM, 1, "T");
    append_wrong("ns-1", WIRE_NO_STREAM, 2, 0);
    bool exists;
    ck_assert_int_eq(stream_version("ns-1", &exists), 0);
}
END_TEST

START_TEST(expected_version_stream_exists_fails_on_a_missing_stream)
{
    append_wrong("se-1", WIRE_STREAM_EXISTS, 1, -1);
    bool exists;
    stream_version("se-1", &exists);
    ck_assert(!exists);
    append_ok("se-1", WIRE_ANY, 2, "T");
    append_ok("se-1", WIRE_STREAM_EXISTS, 3, "T");
    ck_assert_int_eq(stream_version("se-1", &exists), 1);
}
END_TEST

START_TEST(exact_expected_version_must_equal_the_last_version)
{
    append_ok("ex-1", WIRE_NO_STREAM, 1, "T"); /* version 0 */
    append_ok("ex-1", 0, 2, "T");              /* version 1 */
    append_wrong("ex-1", 0, 3, 1);
    append_wrong("ex-1", 5, 4, 1);
    append_wrong("ex-2", 0, 5, -1); /* exact 0 on a missing stream */
    append_ok("ex-1", 1, 6, "T");
    bool exists;
    ck_assert_int_eq(stream_version("ex-1", &exists), 2);
}
END_TEST

START_TEST(retry_with_the_same_ids_is_idempotent)
{
    wire_event_t e[3] = {{.type = "A", .data = "1", .data_len = 1},
                         {.type = "B", .data = "2", .data_len = 1},
                         {.type = "C", .data = "3", .data_len = 1}};
    for (int i = 0; i < 3; i++)
        wire_id(e[i].id, 77, (uint64_t)i);
    append_ok("other-1", WIRE_ANY, 100, "T");
    wire_stream_t s = {.stream = "idem-1", .expected_version = WIRE_NO_STREAM, .events = e,
                       .event_count = 3};
    envelope_t *a1 = wire_append(&w, &s, 1);
    ck_assert_answer(a1, BODY(APPEND_OK));
    ck_assert(!a1->append_ok->idempotent);
    append_ok("other-1", WIRE_ANY, 101, "T");
    for (int round = 0; round < 2; round++) {
        envelope_t *a2 = wire_append(&w, &s, 1);
        ck_assert_answer(a2, BODY(APPEND_OK));
        ck_assert(a2->append_ok->idempotent);
        ck_assert_uint_eq(a2->append_ok->first_position, a1->append_ok->first_position);
        ck_assert_uint_eq(a2->append_ok->event_count, 3);
        ck_assert_int_eq(a2->append_ok->last_versions[0], 2);
        frame_free(a2);
    }
    /* The same ids with expected version "any" are a retry too. */
    s.expected_version = WIRE_ANY;
    envelope_t *a3 = wire_append(&w, &s, 1);
    ck_assert_answer(a3, BODY(APPEND_OK));
    ck_assert(a3->append_ok->idempotent);
    ck_assert_uint_eq(a3->append_ok->first_position, a1->append_ok->first_position);
    frame_free(a3);
    frame_free(a1);
    bool exists;
    ck_assert_int_eq(stream_version("idem-1", &exists), 2);
    envelope_t *st = wire_stats(&w);
    ck_assert_answer(st, BODY(SERVER_STATS_OK));
    ck_assert_uint_eq(st->server_stats_ok->head_position, 5);
    frame_free(st);
}
END_TEST

START_TEST(ids_matching_an_earlier_append_in_part_are_an_idempotency_conflict)
{
    wire_event_t e[2] = {{.type = "A"}, {.type = "B"}};
    wire_id(e[0].id, 5, 0);
    wire_id(e[1].id, 5, 1);
    wire_stream_t s = {.stream = "conf-1", .expected_version = WIRE_NO_STREAM, .events = e,
                       .event_count = 2};
    envelope_t *a = wire_append(&w, &s, 1);
    ck_assert_answer(a, BODY(APPEND_OK));
    frame_free(a);
    wire_id(e[1].id, 5, 99); /* first id the same, second one new */
    a = wire_append(&w, &s, 1);
    ck_assert_error(a, CODE(IDEMPOTENCY_CONFLICT));
    ck_assert_uint_eq(a->error->stream_index, 0);
    frame_free(a);
}
END_TEST

START_TEST(multi_stream_append_is_all_or_nothing)
{
    append_ok("acct-2", WIRE_ANY, 1, "Opened"); /* acct-2 at version 0 */
    wire_event_t e[3] = {{.type = "Debited"}, {.type = "Credited"}, {.type = "Noted"}};
    for (int i = 0; i < 3; i++)
        wire_id(e[i].id, 200, (uint64_t)i);
    wire_stream_t s[2] = {
        {.stream = "acct-1", .expected_version = WIRE_NO_STREAM, .events = &e[0], .event_count = 1},
        {.stream = "acct-2", .expected_version = 7, .events = &e[1], .event_count = 2},
    };
    envelope_t *a = wire_append(&w, s, 2);
    ck_assert_error(a, CODE(WRONG_EXPECTED_VERSION));
    ck_assert_uint_eq(a->error->stream_index, 1);
    ck_assert_int_eq(a->error->actual_version, 0);
    frame_free(a);
    bool exists;
    stream_version("acct-1", &exists);
    ck_assert_msg(!exists, "acct-1 was written although the batch failed");
    ck_assert_int_eq(stream_version("acct-2", &exists), 0);

    s[1].expected_version = 0;
    a = wire_append(&w, s, 2);
    ck_assert_answer(a, BODY(APPEND_OK));
    ck_assert_uint_eq(a->append_ok->first_position, 1);
    ck_assert_uint_eq(a->append_ok->event_count, 3);
    ck_assert_uint_eq(a->append_ok->n_last_versions, 2);
    ck_assert_int_eq(a->append_ok->last_versions[0], 0);
    ck_assert_int_eq(a->append_ok->last_versions[1], 2);
    frame_free(a);
    /* Positions follow request order: acct-1's event, then acct-2's two. */
    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = "$all", .from = 1});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 3);
    ck_assert_str_eq(r->read_ok->events[0]->stream, "acct-1");
    ck_assert_str_eq(r->read_ok->events[1]->stream, "acct-2");
    ck_assert_str_eq(r->read_ok->events[2]->type, "Noted");
    frame_free(r);
}
END_TEST

/* Appends order-1, order-2, payment-1, order-1 events with types that the
 * filter tests pick from. Positions 0..5. */
static void append_mixed(void)
{
    append_ok("order-1", WIRE_ANY, 1, "OrderPlaced");
    append_ok("order-2", WIRE_ANY, 2, "OrderPlaced");
    append_ok("payment-1", WIRE_ANY, 3, "PaymentProcessed");
    append_ok("order-1", WIRE_ANY, 4, "OrderShipped");
    append_ok("orders-9", WIRE_ANY, 5, "OrderPlaced"); /* another category: "orders" */
    append_ok("order-2", WIRE_ANY, 6, "OrderCancelled");
}

START_TEST(category_read_returns_the_categorys_events_in_position_order)
{
    append_mixed();
    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = "$ce-order"});
    ck_assert_answer(r, BODY(READ_OK));
    Evstore__V1__ReadResponse *rr = r->read_ok;
    ck_assert_uint_eq(rr->n_events, 4);
    static const char *const streams[] = {"order-1", "order-2", "order-1", "order-2"};
    static const uint64_t positions[] = {0, 1, 3, 5};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_str_eq(rr->events[i]->stream, streams[i]);
        ck_assert_uint_eq(rr->events[i]->position, positions[i]);
    }
    ck_assert_int_eq(rr->events[2]->version, 1);
    ck_assert(rr->end);
    frame_free(r);

    const char *types[] = {"OrderPlaced", NULL};
    r = wire_read(&w, &(wire_read_t){.stream = "$ce-order", .types = types});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 2);
    ck_assert_uint_eq(r->read_ok->events[0]->position, 0);
    ck_assert_uint_eq(r->read_ok->events[1]->position, 1);
    frame_free(r);
}
END_TEST

START_TEST(all_read_returns_every_event_and_filters_by_type)
{
    append_mixed();
    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = "$all"});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 6);
    for (size_t i = 0; i < 6; i++)
        ck_assert_uint_eq(r->read_ok->events[i]->position, i);
    ck_assert(r->read_ok->end);
    frame_free(r);

    r = wire_read(&w, &(wire_read_t){.stream = "$all", .type_prefix = "Payment"});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 1);
    ck_assert_str_eq(r->read_ok->events[0]->stream, "payment-1");
    frame_free(r);

    const char *types[] = {"OrderShipped", "OrderCancelled", NULL};
    r = wire_read(&w, &(wire_read_t){.stream = "$all", .types = types});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 2);
    ck_assert_uint_eq(r->read_ok->events[0]->position, 3);
    ck_assert_uint_eq(r->read_ok->events[1]->position, 5);
    frame_free(r);

    /* Paging: max_count, then from = next. */
    r = wire_read(&w, &(wire_read_t){.stream = "$all", .from = 2, .max_count = 3});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 3);
    ck_assert_uint_eq(r->read_ok->events[0]->position, 2);
    ck_assert_uint_eq(r->read_ok->next, 5);
    frame_free(r);
}
END_TEST

START_TEST(backwards_reads_return_newest_first)
{
    for (uint64_t i = 0; i < 5; i++)
        append_ok("back-1", WIRE_ANY, 10 + i, "T");
    append_ok("back-2", WIRE_ANY, 20, "T");
    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = "back-1", .from_end = true});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(r->read_ok->events[i]->version, 4 - (int64_t)i);
    ck_assert(r->read_ok->end);
    frame_free(r);

    r = wire_read(&w, &(wire_read_t){.stream = "back-1", .from = 2, .backwards = true,
                                     .max_count = 2});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 2);
    ck_assert_int_eq(r->read_ok->events[0]->version, 2);
    ck_assert_int_eq(r->read_ok->events[1]->version, 1);
    ck_assert_uint_eq(r->read_ok->next, 0);
    ck_assert(!r->read_ok->end);
    frame_free(r);

    r = wire_read(&w, &(wire_read_t){.stream = "$all", .from_end = true, .max_count = 2});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_eq(r->read_ok->n_events, 2);
    ck_assert_uint_eq(r->read_ok->events[0]->position, 5);
    ck_assert_str_eq(r->read_ok->events[0]->stream, "back-2");
    ck_assert_uint_eq(r->read_ok->events[1]->position, 4);
    frame_free(r);
}
END_TEST

#define TINY_EVENTS 4000u
#define TINY_APPEND_EVENTS 500u
#define TINY_FRAME_BYTES (64u * 1024)

/* Events of a few bytes are mostly encoding (position, version, timestamp,
 * id, field tags): a read must budget that too, or its answer outgrows the
 * frame and is refused as TOO_LARGE. Each page is a ReadOk within the
 * frame, and the pages together hold every event once, in order. */
START_TEST(reads_of_many_tiny_events_fit_in_a_frame)
{
    teardown();
    const char *flags[] = {"--max-frame-bytes", "64K", "--max-output-bytes", "128K",
                           "--max-event-bytes", "8K", NULL};
    ck_assert_int_eq(srv_start(&srv, flags, NULL), 0);
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    static wire_event_t e[TINY_APPEND_EVENTS];
    for (uint32_t done = 0; done < TINY_EVENTS; done += TINY_APPEND_EVENTS) {
        for (uint32_t k = 0; k < TINY_APPEND_EVENTS; k++) {
            e[k] = (wire_event_t){.type = "t", .timestamp_ns = 1700000000000000000ll};
            wire_id(e[k].id, 0x7171, done + k);
        }
        wire_stream_t s = {.stream = "a", .expected_version = WIRE_ANY, .events = e,
                           .event_count = TINY_APPEND_EVENTS};
        envelope_t *a = wire_append(&w, &s, 1);
        ck_assert_answer(a, BODY(APPEND_OK));
        frame_free(a);
    }
    const char *streams[] = {"a", "$all"};
    for (int i = 0; i < 2; i++) {
        uint64_t next = 0;
        uint32_t pages = 0;
        for (bool end = false; !end; pages++) {
            ck_assert_uint_lt(pages, TINY_EVENTS);
            envelope_t *r = wire_read(&w, &(wire_read_t){.stream = streams[i], .from = next});
            ck_assert_msg(r && r->body_case == BODY(READ_OK), "read %s from %llu: %s", streams[i],
                          (unsigned long long)next,
                          r && r->body_case == BODY(ERROR) ? r->error->message : "no ReadOk");
            ck_assert_uint_le(frame_size(r), TINY_FRAME_BYTES);
            for (size_t k = 0; k < r->read_ok->n_events; k++)
                ck_assert_uint_eq(r->read_ok->events[k]->position, next + k);
            ck_assert_msg(r->read_ok->n_events > 0 || r->read_ok->end, "an empty page not at the end");
            next += r->read_ok->n_events;
            end = r->read_ok->end;
            frame_free(r);
        }
        ck_assert_uint_eq(next, TINY_EVENTS);
        ck_assert_uint_gt(pages, 2); /* the frame, not the read limit, cut the pages */
    }
}
END_TEST

START_TEST(read_of_a_missing_stream_answers_stream_not_found)
{
    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = "nobody-1"});
    ck_assert_error(r, CODE(STREAM_NOT_FOUND));
    frame_free(r);
}
END_TEST

START_TEST(stream_info_reports_the_last_version_and_existence)
{
    bool exists = true;
    ck_assert_int_eq(stream_version("info-1", &exists), -1);
    ck_assert(!exists);
    append_ok("info-1", WIRE_ANY, 1, "T");
    append_ok("info-1", WIRE_ANY, 2, "T");
    ck_assert_int_eq(stream_version("info-1", &exists), 1);
    ck_assert(exists);
}
END_TEST

START_TEST(list_streams_filters_by_prefix_and_pages_in_name_order)
{
    /* Appended out of order; listed sorted. */
    static const int order[] = {7, 2, 9, 0, 4, 1, 8, 3, 6, 5};
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "ls-a-%d", order[i]);
        append_ok(name, WIRE_ANY, 100 + (uint64_t)i, "T");
    }
    append_ok("ls-b-0", WIRE_ANY, 200, "T");
    append_ok("ls-a-3", WIRE_ANY, 201, "T");
    char after[64] = "";
    int seen = 0, pages = 0;
    for (; pages < 10; pages++) {
        envelope_t *l = wire_list_streams(&w, "ls-a-", after, 4);
        ck_assert_answer(l, BODY(LIST_STREAMS_OK));
        Evstore__V1__ListStreamsResponse *lr = l->list_streams_ok;
        ck_assert_uint_le(lr->n_streams, 4);
        for (size_t i = 0; i < lr->n_streams; i++, seen++) {
            char want[32];
            snprintf(want, sizeof want, "ls-a-%d", seen);
            ck_assert_str_eq(lr->streams[i]->name, want);
            ck_assert_int_eq(lr->streams[i]->version, seen == 3 ? 1 : 0);
        }
        bool end = lr->end;
        if (lr->n_streams)
            snprintf(after, sizeof after, "%s", lr->streams[lr->n_streams - 1]->name);
        frame_free(l);
        if (end)
            break;
    }
    ck_assert_int_eq(seen, 10);
    ck_assert_int_eq(pages, 2); /* 4 + 4 + 2 */

    envelope_t *l = wire_list_streams(&w, "", "", 0);
    ck_assert_answer(l, BODY(LIST_STREAMS_OK));
    ck_assert_uint_eq(l->list_streams_ok->n_streams, 11);
    ck_assert(l->list_streams_ok->end);
    frame_free(l);
}
END_TEST

START_TEST(server_stats_count_appends_events_and_streams)
{
    append_ok("stats-1", WIRE_ANY, 1, "T");
    append_ok("stats-2", WIRE_ANY, 2, "T");
    append_ok("stats-2", WIRE_ANY, 3, "T");
    envelope_t *st = wire_stats(&w);
    ck_assert_answer(st, BODY(SERVER_STATS_OK));
    Evstore__V1__ServerStatsResponse *s = st->server_stats_ok;
    ck_assert_uint_eq(s->head_position, 3);
    ck_assert_uint_eq(s->durable_position, 3);
    ck_assert_uint_eq(s->streams, 2);
    ck_assert_uint_eq(s->appends, 3);
    ck_assert_uint_eq(s->events_appended, 3);
    ck_assert_uint_gt(s->bytes_written, 0);
    ck_assert_uint_ge(s->fdatasyncs, 1);
    ck_assert_uint_ge(s->connections, 1);
    ck_assert_uint_ge(s->segments, 1);
    ck_assert_str_eq(s->durability, "always");
    frame_free(st);
}
END_TEST

START_TEST(ping_answers_pong_with_the_same_nonce)
{
    envelope_t *p = wire_ping(&w, 0xdeadbeefcafeULL);
    ck_assert_answer(p, BODY(PONG));
    ck_assert_uint_eq(p->pong->nonce, 0xdeadbeefcafeULL);
    frame_free(p);
}
END_TEST

#define PIPELINED 300u

START_TEST(pipelined_requests_are_each_answered_once_by_correlation_id)
{
    /* Sent without reading: appends (each its own stream), pings, stream
     * infos and reads, interleaved; the answers are matched by id. */
    static int kind[PIPELINED + 1];
    static int answered[PIPELINED + 1];
    for (uint64_t corr = 1; corr <= PIPELINED; corr++) {
        char name[32];
        snprintf(name, sizeof name, "pipe-%llu", (unsigned long long)corr);
        kind[corr] = (int)(corr % 4);
        int rc;
        switch (kind[corr]) {
        case 0: {
            wire_event_t e = {.type = "Piped", .data = name, .data_len = strlen(name)};
            wire_id(e.id, 300, corr);
            wire_stream_t s = {.stream = name, .expected_version = WIRE_NO_STREAM, .events = &e,
                               .event_count = 1};
            rc = wire_send_append(&w, corr, &s, 1);
            break;
        }
        case 1: rc = wire_send_ping(&w, corr, corr * 1000); break;
        case 2: rc = wire_send_stream_info(&w, corr, "pipe-4"); break;
        default: rc = wire_send_read(&w, corr, &(wire_read_t){.stream = "$all"}); break;
        }
        ck_assert_int_eq(rc, 0);
    }
    static int position_taken[PIPELINED / 4];
    for (unsigned i = 0; i < PIPELINED; i++) {
        envelope_t *env = NULL;
        ck_assert_int_eq(wire_recv(&w, WIRE_TIMEOUT_MS, &env), 0);
        uint64_t corr = env->correlation_id;
        ck_assert_msg(corr >= 1 && corr <= PIPELINED, "unknown correlation id %llu",
                      (unsigned long long)corr);
        ck_assert_msg(!answered[corr], "correlation id %llu answered twice",
                      (unsigned long long)corr);
        answered[corr] = 1;
        static const int expect[] = {BODY(APPEND_OK), BODY(PONG), BODY(STREAM_INFO_OK),
                                     BODY(READ_OK)};
        ck_assert_answer(env, expect[kind[corr]]);
        if (kind[corr] == 0) {
            uint64_t pos = env->append_ok->first_position;
            ck_assert_uint_lt(pos, PIPELINED / 4);
            ck_assert_msg(!position_taken[pos], "position %llu given twice",
                          (unsigned long long)pos);
            position_taken[pos] = 1;
        }
        if (kind[corr] == 1)
            ck_assert_uint_eq(env->pong->nonce, corr * 1000);
        frame_free(env);
    }
    for (uint64_t corr = 1; corr <= PIPELINED; corr++)
        ck_assert_msg(answered[corr], "correlation id %llu never answered",
                      (unsigned long long)corr);
    envelope_t *st = wire_stats(&w);
    ck_assert_answer(st, BODY(SERVER_STATS_OK));
    ck_assert_uint_eq(st->server_stats_ok->head_position, PIPELINED / 4);
    frame_free(st);
}
END_TEST

static Suite *roundtrip_suite(void)
{
    Suite *s = suite_create("server.roundtrip");
    TCase *tc = tcase_create("roundtrip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hello_answers_hello_ok_with_the_servers_limits);
    tcase_add_test(tc, appended_event_reads_back_with_every_field);
    tcase_add_test(tc, timestamp_zero_is_replaced_by_the_servers_time);
    tcase_add_test(tc, expected_version_any_appends_at_any_version);
    tcase_add_test(tc, expected_version_no_stream_fails_once_the_stream_exists);
    tcase_add_test(tc, expected_version_stream_exists_fails_on_a_missing_stream);
    tcase_add_test(tc, exact_expected_version_must_equal_the_last_version);
    tcase_add_test(tc, retry_with_the_same_ids_is_idempotent);
    tcase_add_test(tc, ids_matching_an_earlier_append_in_part_are_an_idempotency_conflict);
    tcase_add_test(tc, multi_stream_append_is_all_or_nothing);
    tcase_add_test(tc, category_read_returns_the_categorys_events_in_position_order);
    tcase_add_test(tc, all_read_returns_every_event_and_filters_by_type);
    tcase_add_test(tc, backwards_reads_return_newest_first);
    tcase_add_test(tc, read_of_a_missing_stream_answers_stream_not_found);
    tcase_add_test(tc, reads_of_many_tiny_events_fit_in_a_frame);
    tcase_add_test(tc, stream_info_reports_the_last_version_and_existence);
    tcase_add_test(tc, list_streams_filters_by_prefix_and_pages_in_name_order);
    tcase_add_test(tc, server_stats_count_appends_events_and_streams);
    tcase_add_test(tc, ping_answers_pong_with_the_same_nonce);
    tcase_add_test(tc, pipelined_requests_are_each_answered_once_by_correlation_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(roundtrip_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
