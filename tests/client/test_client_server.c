/* test_client_server.c -- every libevstore call against a real evstored:
 * round trips, expected versions, idempotent retries, multi-stream atomic
 * appends, stream/category/$all reads with filters, listing, and a restart. */
#include <errno.h>

#include "client_test.h"

test_server_t g_server;

#define EVENTS_MAX 16

/* Events built for one append: type, data "<type>:<i>", metadata "m<i>". */
typedef struct {
    evs_event_t ev[EVENTS_MAX];
    char data[EVENTS_MAX][32];
    char meta[EVENTS_MAX][24];
    size_t count;
} batch_t;

static void batch_make(batch_t *b, size_t count, const char *type)
{
    memset(b, 0, sizeof *b);
    b->count = count;
    for (size_t i = 0; i < count; i++) {
        evs_event_t *e = &b->ev[i];
        evs_id_random(e->id);
        e->type = type;
        snprintf(b->data[i], sizeof b->data[i], "%s:%zu", type, i);
        snprintf(b->meta[i], sizeof b->meta[i], "m%zu", i);
        e->data = b->data[i];
        e->data_len = strlen(b->data[i]);
        e->metadata = b->meta[i];
        e->metadata_len = strlen(b->meta[i]);
    }
}

/* Appends a batch to one stream; returns the status. */
static int append_to(evs_conn_t *conn, const char *stream, int64_t expected, const batch_t *b,
                     evs_append_result_t *res)
{
    evs_stream_append_t sa = { .stream = stream, .expected_version = expected,
                               .events = b->ev, .event_count = b->count };
    return evs_append(conn, &sa, 1, res);
}

static void read_all(evs_conn_t *conn, const char *stream, evs_read_result_t *res)
{
    evs_read_t req = { .stream = stream };
    ck_evs(evs_read(conn, &req, res));
}

START_TEST(ping_and_stats_answer)
{
    evs_conn_t *conn = test_connect(0);
    uint64_t rtt_us = UINT64_MAX;
    uint64_t before_ms = util_mono_ms();
    ck_evs(evs_ping(conn, &rtt_us));
    uint64_t call_ms = util_mono_ms() - before_ms;
    /* The round trip is part of the call, so in microseconds it is at most
     * the call's own duration (+1 ms for the clock's rounding down),
     * however loaded the machine. */
    ck_assert_uint_le(rtt_us, (uint64_t)(call_ms + 1) * 1000);
    evs_server_stats_t st;
    ck_evs(evs_server_stats(conn, &st));
    ck_assert_str_ne(st.durability, "");
    ck_assert_uint_ge(st.connections, 1);
    ck_assert_uint_ge(st.head_position, st.durable_position);
    evs_server_info_t info;
    evs_server_info(conn, &info);
    ck_assert_uint_eq(info.protocol_version, 1);
    ck_assert_uint_gt(info.frame_bytes_max, 0);
    ck_assert_uint_gt(info.read_events_max, 0);
    evs_close(conn);
}
END_TEST

START_TEST(append_then_read_round_trips_every_field)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("rt-", stream);
    batch_t b;
    batch_make(&b, 3, "Created");
    b.ev[1].timestamp_ns = 1234567890123;
    b.ev[2].metadata = NULL;
    b.ev[2].metadata_len = 0;
    evs_append_result_t res;
    ck_evs(append_to(conn, stream, EVS_EXPECT_ANY, &b, &res));
    ck_assert_uint_eq(res.event_count, 3);
    ck_assert(!res.idempotent);
    ck_assert_uint_eq(res.stream_count, 1);
    ck_assert_int_eq(res.last_versions[0], 2);
    evs_read_result_t rr;
    read_all(conn, stream, &rr);
    ck_assert_uint_eq(rr.count, 3);
    ck_assert(rr.end);
    ck_assert_int_eq(rr.stream_version, 2);
    for (size_t i = 0; i < 3; i++) {
        const evs_recorded_event_t *e = &rr.events[i];
        ck_assert_uint_eq(e->position, res.first_position + i);
        ck_assert_int_eq(e->version, (int64_t)i);
        ck_assert_mem_eq(e->id, b.ev[i].id, 16);
        ck_assert_str_eq(e->stream, stream);
        ck_assert_str_eq(e->type, "Created");
        ck_assert_uint_eq(e->data_len, b.ev[i].data_len);
        ck_assert_mem_eq(e->data, b.data[i], e->data_len);
        ck_assert_uint_eq(e->metadata_len, b.ev[i].metadata_len);
        ck_assert_int_gt(e->timestamp_ns, 0);
    }
    ck_assert_mem_eq(rr.events[0].metadata, "m0", 2);
    ck_assert_int_eq(rr.events[1].timestamp_ns, 1234567890123);
    evs_read_result_free(&rr);
    ck_assert_ptr_null(rr.events);
    evs_close(conn);
}
END_TEST

START_TEST(read_backwards_from_the_end)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("back-", stream);
    batch_t b;
    batch_make(&b, 4, "E");
    ck_evs(append_to(conn, stream, EVS_EXPECT_NO_STREAM, &b, NULL));
    evs_read_t req = { .stream = stream, .from_end = true };
    evs_read_result_t rr;
    ck_evs(evs_read(conn, &req, &rr));
    ck_assert_uint_eq(rr.count, 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(rr.events[i].version, 3 - (int64_t)i);
    evs_read_result_free(&rr);
    req = (evs_read_t){ .stream = stream, .from = 2, .backwards = true, .max_count = 2 };
    ck_evs(evs_read(conn, &req, &rr));
    ck_assert_uint_eq(rr.count, 2);
    ck_assert_int_eq(rr.events[0].version, 2);
    ck_assert_int_eq(rr.events[1].version, 1);
    evs_read_result_free(&rr);
    evs_close(conn);
}
END_TEST

START_TEST(read_pages_with_next_until_end)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("page-", stream);
    batch_t b;
    batch_make(&b, 7, "E");
    ck_evs(append_to(conn, stream, EVS_EXPECT_ANY, &b, NULL));
    evs_read_t req = { .stream = stream, .max_count = 3 };
    int64_t expect = 0;
    for (int pages = 0; pages < 10; pages++) {
        evs_read_result_t rr;
        ck_evs(evs_read(conn, &req, &rr));
        for (size_t i = 0; i < rr.count; i++)
            ck_assert_int_eq(rr.events[i].version, expect++);
        req.from = rr.next;
        bool end = rr.end;
        evs_read_result_free(&rr);
        if (end)
            break;
    }
    ck_assert_int_eq(expect, 7);
    evs_close(conn);
}
END_TEST

START_TEST(expected_no_stream_refuses_an_existing_stream)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("ns-", stream);
    batch_t b;
    batch_make(&b, 1, "E");
    evs_append_result_t res;
    ck_evs(append_to(conn, stream, EVS_EXPECT_NO_STREAM, &b, &res));
    ck_assert_int_eq(res.last_versions[0], 0);
    batch_make(&b, 1, "E");
    ck_assert_int_eq(append_to(conn, stream, EVS_EXPECT_NO_STREAM, &b, &res), EVS_EWRONG_VERSION);
    ck_assert_uint_eq(res.failed_stream, 0);
    ck_assert_int_eq(res.actual_version, 0);
    ck_assert_str_ne(res.message, "");
    evs_close(conn);
}
END_TEST

START_TEST(expected_stream_exists_refuses_a_missing_stream)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("se-", stream);
    batch_t b;
    batch_make(&b, 1, "E");
    evs_append_result_t res;
    ck_assert_int_eq(append_to(conn, stream, EVS_EXPECT_STREAM_EXISTS, &b, &res),
                     EVS_EWRONG_VERSION);
    ck_assert_int_eq(res.actual_version, EVS_VERSION_NONE);
    ck_evs(append_to(conn, stream, EVS_EXPECT_ANY, &b, NULL));
    batch_make(&b, 2, "E");
    ck_evs(append_to(conn, stream, EVS_EXPECT_STREAM_EXISTS, &b, &res));
    ck_assert_int_eq(res.last_versions[0], 2);
    evs_close(conn);
}
END_TEST

START_TEST(expected_exact_version_must_match)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("ex-", stream);
    batch_t b;
    batch_make(&b, 1, "E");
    evs_append_result_t res;
    ck_assert_int_eq(append_to(conn, stream, 0, &b, &res), EVS_EWRONG_VERSION);
    ck_assert_int_eq(res.actual_version, EVS_VERSION_NONE);
    ck_evs(append_to(conn, stream, EVS_EXPECT_NO_STREAM, &b, NULL));
    batch_make(&b, 1, "E");
    ck_evs(append_to(conn, stream, 0, &b, &res));
    ck_assert_int_eq(res.last_versions[0], 1);
    batch_make(&b, 1, "E");
    ck_assert_int_eq(append_to(conn, stream, 5, &b, &res), EVS_EWRONG_VERSION);
    ck_assert_int_eq(res.actual_version, 1);
    ck_assert_int_eq(append_to(conn, stream, 0, &b, &res), EVS_EWRONG_VERSION);
    ck_evs(append_to(conn, stream, 1, &b, &res));
    ck_assert_int_eq(res.last_versions[0], 2);
    evs_close(conn);
}
END_TEST

START_TEST(expected_any_always_appends)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("any-", stream);
    batch_t b;
    for (int i = 0; i < 3; i++) {
        batch_make(&b, 2, "E");
        evs_append_result_t res;
        ck_evs(append_to(conn, stream, EVS_EXPECT_ANY, &b, &res));
        ck_assert_int_eq(res.last_versions[0], 2 * i + 1);
    }
    evs_close(conn);
}
END_TEST

START_TEST(idempotent_retry_returns_the_original_result)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("idem-", stream);
    batch_t b;
    batch_make(&b, 3, "E");
    evs_append_result_t first, retry;
    ck_evs(append_to(conn, stream, EVS_EXPECT_NO_STREAM, &b, &first));
    ck_evs(append_to(conn, stream, EVS_EXPECT_NO_STREAM, &b, &retry));
    ck_assert(retry.idempotent);
    ck_assert_uint_eq(retry.first_position, first.first_position);
    ck_assert_int_eq(retry.last_versions[0], 2);
    ck_evs(append_to(conn, stream, EVS_EXPECT_ANY, &b, &retry));
    ck_assert(retry.idempotent);
    evs_read_result_t rr;
    read_all(conn, stream, &rr);
    ck_assert_uint_eq(rr.count, 3);
    evs_read_result_free(&rr);
    evs_close(conn);
}
END_TEST

START_TEST(partial_id_match_is_an_idempotency_conflict)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("conf-", stream);
    batch_t b;
    batch_make(&b, 2, "E");
    ck_evs(append_to(conn, stream, EVS_EXPECT_ANY, &b, NULL));
    evs_id_random(b.ev[1].id); /* first id repeats, second is new */
    evs_append_result_t res;
    int rc = append_to(conn, stream, EVS_EXPECT_ANY, &b, &res);
    ck_assert_msg(rc == EVS_EIDEMPOTENCY, "got %s", evs_strerror(rc));
    evs_close(conn);
}
END_TEST

START_TEST(multi_stream_append_is_all_or_nothing)
{
    evs_conn_t *conn = test_connect(0);
    char a[64], bname[64];
    uniq("ma-", a);
    uniq("mb-", bname);
    batch_t ba, bb;
    batch_make(&ba, 2, "A");
    batch_make(&bb, 3, "B");
    evs_stream_append_t sa[2] = {
        { .stream = a, .expected_version = EVS_EXPECT_ANY, .events = ba.ev, .event_count = 2 },
        { .stream = bname, .expected_version = 7, .events = bb.ev, .event_count = 3 },
    };
    evs_append_result_t res;
    ck_assert_int_eq(evs_append(conn, sa, 2, &res), EVS_EWRONG_VERSION);
    ck_assert_uint_eq(res.failed_stream, 1);
    ck_assert_int_eq(res.actual_version, EVS_VERSION_NONE);
    evs_stream_info_t info;
    ck_evs(evs_stream_info(conn, a, &info));
    ck_assert(!info.exists); /* stream 0 was not written either */
    sa[1].expected_version = EVS_EXPECT_NO_STREAM;
    ck_evs(evs_append(conn, sa, 2, &res));
    ck_assert_uint_eq(res.event_count, 5);
    ck_assert_uint_eq(res.stream_count, 2);
    ck_assert_int_eq(res.last_versions[0], 1);
    ck_assert_int_eq(res.last_versions[1], 2);
    evs_read_result_t rr;
    read_all(conn, bname, &rr);
    ck_assert_uint_eq(rr.count, 3);
    ck_assert_uint_eq(rr.events[0].position, res.first_position + 2);
    evs_read_result_free(&rr);
    evs_close(conn);
}
END_TEST

START_TEST(stream_info_reports_version_or_absence)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("info-", stream);
    evs_stream_info_t info;
    ck_evs(evs_stream_info(conn, stream, &info));
    ck_assert(!info.exists);
    ck_assert_int_eq(info.version, EVS_VERSION_NONE);
    batch_t b;
    batch_make(&b, 5, "E");
    ck_evs(append_to(conn, stream, EVS_EXPECT_ANY, &b, NULL));
    ck_evs(evs_stream_info(conn, stream, &info));
    ck_assert(info.exists);
    ck_assert_int_eq(info.version, 4);
    evs_close(conn);
}
END_TEST

START_TEST(reading_a_missing_stream_is_not_found)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    evs_read_t req = { .stream = uniq("missing-", stream) };
    evs_read_result_t rr;
    ck_assert_int_eq(evs_read(conn, &req, &rr), EVS_ESTREAM_NOT_FOUND);
    ck_assert_uint_eq(rr.count, 0);
    evs_read_result_free(&rr);
    evs_close(conn);
}
END_TEST

/* Two streams of one category, events of types A and B interleaved. */
static void category_fill(evs_conn_t *conn, const char *cat, const char *ta, const char *tb,
                          uint64_t *first)
{
    char s1[96], s2[96];
    snprintf(s1, sizeof s1, "%s-1", cat);
    snprintf(s2, sizeof s2, "%s-2", cat);
    for (int round = 0; round < 2; round++) {
        batch_t b;
        evs_append_result_t res;
        batch_make(&b, 1, ta);
        ck_evs(append_to(conn, s1, EVS_EXPECT_ANY, &b, &res));
        if (round == 0)
            *first = res.first_position;
        batch_make(&b, 1, tb);
        ck_evs(append_to(conn, s2, EVS_EXPECT_ANY, &b, NULL));
    }
}

START_TEST(category_read_sees_its_streams_in_position_order)
{
    evs_conn_t *conn = test_connect(0);
    char cat[64], ce[80];
    uint64_t first;
    uniq("cat", cat);
    category_fill(conn, cat, "TypeA", "TypeB", &first);
    snprintf(ce, sizeof ce, "$ce-%s", cat);
    evs_read_t req = { .stream = ce };
    evs_read_result_t rr;
    ck_evs(evs_read(conn, &req, &rr));
    ck_assert_uint_eq(rr.count, 4);
    for (size_t i = 1; i < rr.count; i++)
        ck_assert_uint_gt(rr.events[i].position, rr.events[i - 1].position);
    ck_assert(strncmp(rr.events[0].stream, cat, strlen(cat)) == 0);
    evs_read_result_free(&rr);

    const char *types[] = { "TypeA" };
    req = (evs_read_t){ .stream = ce, .types = types, .type_count = 1 };
    ck_evs(evs_read(conn, &req, &rr));
    ck_assert_uint_eq(rr.count, 2);
    ck_assert_str_eq(rr.events[0].type, "TypeA");
    ck_assert_str_eq(rr.events[1].type, "TypeA");
    evs_read_result_free(&rr);

    req = (evs_read_t){ .stream = ce, .from_end = true, .max_count = 1 };
    ck_evs(evs_read(conn, &req, &rr));
    ck_assert_uint_eq(rr.count, 1);
    ck_assert_str_eq(rr.events[0].type, "TypeB");
    evs_read_result_free(&rr);
    evs_close(conn);
}
END_TEST

START_TEST(all_read_with_a_type_prefix_filter)
{
    evs_conn_t *conn = test_connect(0);
    char cat[64], ta[80], tb[80];
    uint64_t first;
    uniq("allc", cat);
    snprintf(ta, sizeof ta, "%s.Placed", cat);
    snprintf(tb, sizeof tb, "%s.Paid", cat);
    category_fill(conn, cat, ta, tb, &first);
    evs_read_t req = { .stream = "$all", .from = first, .type_prefix = cat };
    size_t seen = 0;
    for (int pages = 0; pages < 1000; pages++) {
        evs_read_result_t rr;
        ck_evs(evs_read(conn, &req, &rr));
        for (size_t i = 0; i < rr.count; i++) {
            ck_assert(strncmp(rr.events[i].type, cat, strlen(cat)) == 0);
            ck_assert_uint_ge(rr.events[i].position, first);
            seen++;
        }
        req.from = rr.next;
        bool end = rr.end;
        evs_read_result_free(&rr);
        if (end)
            break;
    }
    ck_assert_uint_eq(seen, 4);
    const char *types[] = { tb, "NoSuchType" };
    req = (evs_read_t){ .stream = "$all", .from = first, .types = types, .type_count = 2 };
    evs_read_result_t rr;
    ck_evs(evs_read(conn, &req, &rr));
    ck_assert_uint_eq(rr.count, 2);
    ck_assert_str_eq(rr.events[1].type, tb);
    evs_read_result_free(&rr);
    evs_close(conn);
}
END_TEST

START_TEST(list_streams_by_prefix_in_pages)
{
    evs_conn_t *conn = test_connect(0);
    char prefix[64], name[96];
    uniq("list", prefix);
    for (int i = 0; i < 5; i++) {
        batch_t b;
        batch_make(&b, (size_t)i + 1, "E");
        snprintf(name, sizeof name, "%s-%d", prefix, 4 - i);
        ck_evs(append_to(conn, name, EVS_EXPECT_ANY, &b, NULL));
    }
    char after[96] = "";
    int seen = 0;
    for (int pages = 0; pages < 10; pages++) {
        evs_stream_list_t list;
        ck_evs(evs_list_streams(conn, prefix, after, 2, &list));
        ck_assert_uint_le(list.count, 2);
        for (size_t i = 0; i < list.count; i++, seen++) {
            snprintf(name, sizeof name, "%s-%d", prefix, seen);
            ck_assert_str_eq(list.streams[i].name, name);
            ck_assert_int_eq(list.streams[i].version, 4 - seen);
        }
        if (list.count)
            snprintf(after, sizeof after, "%s", list.streams[list.count - 1].name);
        bool end = list.end;
        evs_stream_list_free(&list);
        if (end)
            break;
    }
    ck_assert_int_eq(seen, 5);
    evs_close(conn);
}
END_TEST

typedef struct {
    int calls;
    int status;
    evs_append_result_t res;
} async_one_t;

static void async_one_cb(void *ctx, int status, const evs_append_result_t *res)
{
    async_one_t *a = ctx;
    a->calls++;
    a->status = status;
    a->res = *res;
}

START_TEST(async_append_reports_like_the_blocking_one)
{
    evs_conn_t *conn = test_connect(0);
    char stream[64];
    uniq("async-", stream);
    batch_t b;
    batch_make(&b, 2, "E");
    evs_stream_append_t sa = { .stream = stream, .expected_version = EVS_EXPECT_NO_STREAM,
                               .events = b.ev, .event_count = 2 };
    async_one_t ok = { 0 }, bad = { 0 };
    ck_evs(evs_append_async(conn, &sa, 1, async_one_cb, &ok));
    ck_evs(evs_flush(conn, 10000));
    ck_assert_int_eq(ok.calls, 1);
    ck_assert_int_eq(ok.status, 0);
    ck_assert_int_eq(ok.res.last_versions[0], 1);
    batch_make(&b, 1, "E");
    sa.event_count = 1;
    ck_evs(evs_append_async(conn, &sa, 1, async_one_cb, &bad));
    ck_evs(evs_flush(conn, 10000));
    ck_assert_int_eq(bad.calls, 1);
    ck_assert_int_eq(bad.status, EVS_EWRONG_VERSION);
    ck_assert_int_eq(bad.res.actual_version, 1);
    evs_close(conn);
}
END_TEST

START_TEST(too_many_events_in_one_append_is_refused)
{
    evs_conn_t *conn = test_connect(0);
    evs_server_info_t info;
    evs_server_info(conn, &info);
    size_t n = (size_t)info.append_events_max + 1;
    evs_event_t *ev = calloc(n, sizeof *ev);
    for (size_t i = 0; i < n; i++) {
        evs_id_random(ev[i].id);
        ev[i].type = "E";
    }
    char stream[64];
    evs_stream_append_t sa = { .stream = uniq("big-", stream), .expected_version = EVS_EXPECT_ANY,
                               .events = ev, .event_count = n };
    int rc = evs_append(conn, &sa, 1, NULL);
    ck_assert_msg(rc == EVS_ETOO_LARGE, "got %s", evs_strerror(rc));
    ck_evs(evs_ping(conn, NULL)); /* the connection survives */
    free(ev);
    evs_close(conn);
}
END_TEST

START_TEST(restart_keeps_everything)
{
    test_server_t srv;
    static const char *const args[] = { "--segment-bytes", "1048576", NULL };
    ck_assert_int_eq(test_server_start(&srv, args), 0);
    evs_options_t o;
    evs_options_default(&o);
    o.port = srv.port;
    evs_conn_t *conn;
    ck_evs(evs_connect(&o, &conn));
    batch_t b;
    batch_make(&b, 5, "E");
    evs_append_result_t res;
    ck_evs(append_to(conn, "keep-1", EVS_EXPECT_NO_STREAM, &b, &res));
    evs_close(conn);
    ck_assert_int_eq(test_server_stop(&srv), 0);
    ck_assert_int_eq(test_server_restart(&srv), 0);
    o.port = srv.port;
    ck_evs(evs_connect(&o, &conn));
    evs_read_result_t rr;
    read_all(conn, "keep-1", &rr);
    ck_assert_uint_eq(rr.count, 5);
    ck_assert_mem_eq(rr.events[4].id, b.ev[4].id, 16);
    ck_assert_uint_eq(rr.events[0].position, res.first_position);
    evs_read_result_free(&rr);
    ck_evs(append_to(conn, "keep-1", EVS_EXPECT_NO_STREAM, &b, &res));
    ck_assert(res.idempotent); /* the retry is recognised after a restart too */
    evs_close(conn);
    test_server_destroy(&srv);
}
END_TEST

static Suite *server_suite(void)
{
    Suite *s = suite_create("client_server");
    TCase *tc = tcase_create("calls");
    tcase_add_unchecked_fixture(tc, server_setup, server_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ping_and_stats_answer);
    tcase_add_test(tc, append_then_read_round_trips_every_field);
    tcase_add_test(tc, read_backwards_from_the_end);
    tcase_add_test(tc, read_pages_with_next_until_end);
    tcase_add_test(tc, expected_no_stream_refuses_an_existing_stream);
    tcase_add_test(tc, expected_stream_exists_refuses_a_missing_stream);
    tcase_add_test(tc, expected_exact_version_must_match);
    tcase_add_test(tc, expected_any_always_appends);
    tcase_add_test(tc, idempotent_retry_returns_the_original_result);
    tcase_add_test(tc, partial_id_match_is_an_idempotency_conflict);
    tcase_add_test(tc, multi_stream_append_is_all_or_nothing);
    tcase_add_test(tc, stream_info_reports_version_or_absence);
    tcase_add_test(tc, reading_a_missing_stream_is_not_found);
    tcase_add_test(tc, category_read_sees_its_streams_in_position_order);
    tcase_add_test(tc, all_read_with_a_type_prefix_filter);
    tcase_add_test(tc, list_streams_by_prefix_in_pages);
    tcase_add_test(tc, async_append_reports_like_the_blocking_one);
    tcase_add_test(tc, too_many_events_in_one_append_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("restart");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, restart_keeps_everything);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(server_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
