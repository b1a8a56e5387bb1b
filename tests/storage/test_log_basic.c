/* test_log_basic.c -- the storage engine's public contract (log.h), one
 * behaviour per test: opening, appending, optimistic concurrency,
 * idempotency, request validation, reads (stream, category, $all, filters),
 * segment rolls, reopening, compression, durability modes, locking and
 * asynchronous group commit.
 */
#define _GNU_SOURCE
#include "log.h"
#include "test_util.h"
#include "util.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEG_SMALL (64u * 1024)
#define SEG_MEDIUM (256u * 1024)

/* ---- fixtures ---------------------------------------------------------- */

static char g_dir[512];

static void dir_setup(void) { ck_assert_int_eq(tu_dir_make(g_dir, sizeof g_dir), 0); }

static void dir_teardown(void) { (void)tu_dir_remove(g_dir); }

static log_t *open_cfg(const log_config_t *cfg) {
    log_t *log = NULL;
    log_recovery_t rec;
    int rc = log_open(cfg, &log, &rec);
    ck_assert_msg(rc == 0, "log_open(%s): %d %s (%s)", cfg->dir, rc, log_strerror(rc), rec.problem);
    ck_assert_ptr_nonnull(log);
    return log;
}

static log_t *open_dir(uint64_t segment_bytes, bool prepare) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, segment_bytes, prepare);
    return open_cfg(&cfg);
}

static void close_log(log_t *log) { ck_assert_int_eq(log_close(log), 0); }

static uint64_t head_of(log_t *log) {
    log_stats_t st;
    log_stats(log, &st);
    return st.head_position;
}

static int64_t version_of(log_t *log, const char *stream) {
    int64_t v = -99;
    int rc = log_stream_version(log, stream, strlen(stream), &v);
    ck_assert_msg(rc == 0, "log_stream_version(%s): %d %s", stream, rc, log_strerror(rc));
    return v;
}

static void assert_stream_missing(log_t *log, const char *stream) {
    int64_t v;
    ck_assert_int_eq(log_stream_version(log, stream, strlen(stream), &v), LOG_ENOT_FOUND);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, stream, 0, false, 100, NULL, &evs, NULL), LOG_ENOT_FOUND);
    ck_assert_uint_eq(evs.n, 0);
    tu_events_clear(&evs);
}

/* Events whose data is "<tag>/<i>" and id (tag, i), for short tests. */
typedef struct {
    log_event_in_t in[16];
    char data[16][48];
} simple_events_t;

static const log_event_in_t *simple_events(simple_events_t *se, uint64_t tag, uint32_t n,
                                           const char *type) {
    ck_assert_uint_le(n, 16);
    memset(se, 0, sizeof *se);
    for (uint32_t i = 0; i < n; i++) {
        tu_id(se->in[i].id, tag, i);
        se->in[i].type = type;
        se->in[i].type_len = strlen(type);
        int len = snprintf(se->data[i], sizeof se->data[i], "%llu/%u", (unsigned long long)tag, i);
        se->in[i].data = se->data[i];
        se->in[i].data_len = (size_t)len;
    }
    return se->in;
}

/* ---- opening ------------------------------------------------------------ */

START_TEST(an_empty_log_opens_reads_nothing_and_closes) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_SMALL, true);
    log_t *log = NULL;
    log_recovery_t rec;
    memset(&rec, 0xa5, sizeof rec);
    ck_assert_int_eq(log_open(&cfg, &log, &rec), 0);
    ck_assert_uint_eq(rec.events, 0);
    ck_assert_uint_eq(rec.streams, 0);
    ck_assert_uint_eq(rec.torn_bytes_cut, 0);
    ck_assert_uint_eq(head_of(log), 0);

    tu_events_t evs = {0};
    log_read_result_t res;
    ck_assert_int_eq(tu_read(log, "$all", 0, false, 10, NULL, &evs, &res), 0);
    ck_assert_uint_eq(res.count, 0);
    ck_assert(res.end);
    ck_assert_uint_eq(evs.n, 0);
    close_log(log);

    /* and reopens, still empty */
    log = open_dir(SEG_SMALL, true);
    ck_assert_uint_eq(head_of(log), 0);
    close_log(log);
    tu_events_clear(&evs);
}
END_TEST

START_TEST(log_close_of_null_is_a_no_op) { ck_assert_int_eq(log_close(NULL), 0); }
END_TEST

START_TEST(log_open_creates_a_missing_directory) {
    char sub[600];
    snprintf(sub, sizeof sub, "%s/new", g_dir);
    log_config_t cfg;
    tu_config(&cfg, sub, SEG_SMALL, false);
    log_t *log = NULL;
    ck_assert_int_eq(log_open(&cfg, &log, NULL), 0);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 1, &res), 0);
    close_log(log);
    ck_assert(tu_file_exists(sub));
}
END_TEST

/* ---- appending and reading one event -------------------------------- */

START_TEST(an_appended_event_reads_back_with_every_field) {
    log_t *log = open_dir(SEG_SMALL, true);
    static const char meta[] = "{\"correlation\":\"abc\"}";
    static const char data[] = "{\"order\":1,\"total\":\"12.50\"}";
    log_event_in_t ev = {
        .type = "OrderPlaced",
        .type_len = 11,
        .metadata = meta,
        .metadata_len = sizeof meta - 1,
        .data = data,
        .data_len = sizeof data - 1,
        .timestamp_ns = 1700000000123456789LL,
    };
    tu_id(ev.id, 0x1122334455667788ull, 0x99aabbccddeeff00ull);
    log_append_result_t res;
    memset(&res, 0xcc, sizeof res);
    ck_assert_int_eq(tu_append(log, "order-1", LOG_EXPECT_NO_STREAM, &ev, 1, &res), 0);
    ck_assert_int_eq(res.status, 0);
    ck_assert_uint_eq(res.first_position, 0);
    ck_assert_uint_eq(res.event_count, 1);
    ck_assert(!res.idempotent);
    ck_assert_int_eq(res.last_versions[0], 0);
    ck_assert_int_eq(version_of(log, "order-1"), 0);

    tu_events_t evs = {0};
    int64_t sv = -99;
    ck_assert_int_eq(tu_read_all(log, "order-1", 0, false, 10, NULL, &evs, &sv), 0);
    ck_assert_uint_eq(evs.n, 1);
    ck_assert_int_eq(sv, 0);
    tu_read_event_t *e = &evs.v[0];
    ck_assert_uint_eq(e->position, 0);
    ck_assert_int_eq(e->version, 0);
    ck_assert_int_eq(e->timestamp_ns, 1700000000123456789LL);
    ck_assert_mem_eq(e->id, ev.id, 16);
    ck_assert_uint_eq(e->stream_len, 7);
    ck_assert_mem_eq(e->stream, "order-1", 7);
    ck_assert_uint_eq(e->type_len, 11);
    ck_assert_mem_eq(e->type, "OrderPlaced", 11);
    ck_assert_uint_eq(e->metadata_len, sizeof meta - 1);
    ck_assert_mem_eq(e->metadata, meta, sizeof meta - 1);
    ck_assert_uint_eq(e->data_len, sizeof data - 1);
    ck_assert_mem_eq(e->data, data, sizeof data - 1);

    /* the same event through $all and its category */
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 10, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 1);
    ck_assert_mem_eq(evs.v[0].id, ev.id, 16);
    ck_assert_mem_eq(evs.v[0].data, data, sizeof data - 1);
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "$ce-order", 0, false, 10, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 1);
    ck_assert_mem_eq(evs.v[0].id, ev.id, 16);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(a_zero_timestamp_becomes_the_time_of_the_append) {
    log_t *log = open_dir(SEG_SMALL, true);
    simple_events_t se;
    int64_t before = (int64_t)util_real_ns();
    log_append_result_t res;
    ck_assert_int_eq(tu_append(log, "s-1", LOG_EXPECT_ANY, simple_events(&se, 1, 1, "t"), 1, &res),
                     0);
    int64_t after = (int64_t)util_real_ns();
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "s-1", 0, false, 10, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 1);
    ck_assert_int_ge(evs.v[0].timestamp_ns, before);
    ck_assert_int_le(evs.v[0].timestamp_ns, after);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(empty_metadata_and_data_read_back_empty) {
    log_t *log = open_dir(SEG_SMALL, false);
    log_event_in_t ev = {.type = "Empty", .type_len = 5};
    tu_id(ev.id, 5, 5);
    log_append_result_t res;
    ck_assert_int_eq(tu_append(log, "e-1", LOG_EXPECT_ANY, &ev, 1, &res), 0);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "e-1", 0, false, 10, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 1);
    ck_assert_uint_eq(evs.v[0].metadata_len, 0);
    ck_assert_uint_eq(evs.v[0].data_len, 0);
    ck_assert_mem_eq(evs.v[0].type, "Empty", 5);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(versions_count_from_zero_within_each_stream) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    int64_t expect_a = 0, expect_b = 0;
    uint64_t pos = 0;
    for (uint32_t round = 0; round < 6; round++) {
        uint32_t n = 1 + round % 3;
        const char *s = (round % 2) ? "b-1" : "a-1";
        int64_t *next = (round % 2) ? &expect_b : &expect_a;
        ck_assert_int_eq(tu_append_simple(log, s, LOG_EXPECT_ANY, 100 + round, n, &res), 0);
        ck_assert_uint_eq(res.first_position, pos);
        ck_assert_uint_eq(res.event_count, n);
        ck_assert_int_eq(res.last_versions[0], *next + (int64_t)n - 1);
        *next += n;
        pos += n;
    }
    ck_assert_int_eq(version_of(log, "a-1"), expect_a - 1);
    ck_assert_int_eq(version_of(log, "b-1"), expect_b - 1);
    ck_assert_uint_eq(head_of(log), pos);

    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "a-1", 0, false, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, (size_t)expect_a);
    for (size_t i = 0; i < evs.n; i++) {
        ck_assert_int_eq(evs.v[i].version, (int64_t)i);
        if (i > 0) ck_assert_uint_gt(evs.v[i].position, evs.v[i - 1].position);
    }
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

/* ---- expected versions ------------------------------------------------- */

START_TEST(expect_any_appends_at_whatever_version) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 2, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 2, 2, &res), 0);
    ck_assert_int_eq(res.last_versions[0], 3);
    ck_assert_int_eq(version_of(log, "s-1"), 3);
    close_log(log);
}
END_TEST

START_TEST(expect_no_stream_succeeds_on_a_new_stream) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_NO_STREAM, 1, 3, &res), 0);
    ck_assert_int_eq(res.last_versions[0], 2);
    close_log(log);
}
END_TEST

START_TEST(expect_no_stream_on_an_existing_stream_is_wrong_version) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 3, &res), 0);
    uint64_t head = head_of(log);
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_NO_STREAM, 2, 1, &res),
                     LOG_EWRONG_VERSION);
    ck_assert_int_eq(res.status, LOG_EWRONG_VERSION);
    ck_assert_int_eq(res.actual_version, 2);
    ck_assert_uint_eq(res.failed_stream, 0);
    ck_assert_uint_eq(head_of(log), head);
    ck_assert_int_eq(version_of(log, "s-1"), 2);
    close_log(log);
}
END_TEST

START_TEST(expect_stream_exists_on_a_missing_stream_is_wrong_version) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_STREAM_EXISTS, 1, 1, &res),
                     LOG_EWRONG_VERSION);
    ck_assert_int_eq(res.actual_version, LOG_VERSION_NONE);
    ck_assert_uint_eq(head_of(log), 0);
    assert_stream_missing(log, "s-1");
    close_log(log);
}
END_TEST

START_TEST(expect_stream_exists_on_an_existing_stream_appends) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 1, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_STREAM_EXISTS, 2, 2, &res), 0);
    ck_assert_int_eq(res.last_versions[0], 2);
    close_log(log);
}
END_TEST

START_TEST(exact_expected_version_that_matches_appends) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_NO_STREAM, 1, 3, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "s-1", 2, 2, 2, &res), 0);
    ck_assert_uint_eq(res.first_position, 3);
    ck_assert_int_eq(res.last_versions[0], 4);
    ck_assert_int_eq(tu_append_simple(log, "s-1", 4, 3, 1, &res), 0);
    ck_assert_int_eq(version_of(log, "s-1"), 5);
    close_log(log);
}
END_TEST

START_TEST(exact_expected_version_that_differs_is_wrong_version_with_actual) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_NO_STREAM, 1, 3, &res), 0);
    uint64_t head = head_of(log);
    /* too high */
    ck_assert_int_eq(tu_append_simple(log, "s-1", 7, 2, 1, &res), LOG_EWRONG_VERSION);
    ck_assert_int_eq(res.actual_version, 2);
    /* too low */
    ck_assert_int_eq(tu_append_simple(log, "s-1", 0, 3, 1, &res), LOG_EWRONG_VERSION);
    ck_assert_int_eq(res.actual_version, 2);
    /* exact on a missing stream */
    ck_assert_int_eq(tu_append_simple(log, "s-2", 0, 4, 1, &res), LOG_EWRONG_VERSION);
    ck_assert_int_eq(res.actual_version, LOG_VERSION_NONE);
    ck_assert_uint_eq(head_of(log), head);
    ck_assert_int_eq(version_of(log, "s-1"), 2);
    assert_stream_missing(log, "s-2");
    close_log(log);
}
END_TEST

static int g_cb_calls;
static void count_cb(void *ctx, const log_append_result_t *res) {
    (void)ctx;
    (void)res;
    g_cb_calls++;
}

START_TEST(a_wrong_version_in_one_stream_fails_the_whole_batch) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "a-1", LOG_EXPECT_ANY, 1, 2, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "b-1", LOG_EXPECT_ANY, 2, 3, &res), 0);
    uint64_t head = head_of(log);

    simple_events_t ea, eb, ec;
    log_stream_append_t sa[3] = {
        {.stream = "a-1",
         .stream_len = 3,
         .expected_version = 1,
         .events = simple_events(&ea, 10, 2, "t"),
         .event_count = 2},
        {.stream = "b-1",
         .stream_len = 3,
         .expected_version = 0, /* actual: 2 */
         .events = simple_events(&eb, 11, 1, "t"),
         .event_count = 1},
        {.stream = "c-1",
         .stream_len = 3,
         .expected_version = LOG_EXPECT_NO_STREAM,
         .events = simple_events(&ec, 12, 1, "t"),
         .event_count = 1},
    };
    log_append_t req = {.streams = sa, .stream_count = 3};

    /* refused at submission: nothing accepted, the callback never runs */
    log_append_result_t failure;
    memset(&failure, 0, sizeof failure);
    g_cb_calls = 0;
    int rc = log_append(log, &req, count_cb, NULL, &failure);
    ck_assert_int_eq(rc, LOG_EWRONG_VERSION);
    ck_assert_int_eq(failure.status, LOG_EWRONG_VERSION);
    ck_assert_uint_eq(failure.failed_stream, 1);
    ck_assert_int_eq(failure.actual_version, 2);
    ck_assert_int_eq(log_drain(log), 0);
    ck_assert_int_eq(g_cb_calls, 0);

    /* and the same through log_append_wait */
    ck_assert_int_eq(log_append_wait(log, &req, &res), LOG_EWRONG_VERSION);
    ck_assert_uint_eq(res.failed_stream, 1);
    ck_assert_int_eq(res.actual_version, 2);

    ck_assert_uint_eq(head_of(log), head);
    ck_assert_int_eq(version_of(log, "a-1"), 1);
    ck_assert_int_eq(version_of(log, "b-1"), 2);
    assert_stream_missing(log, "c-1");
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 5);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(a_multi_stream_batch_takes_positions_in_request_order) {
    log_t *log = open_dir(SEG_SMALL, true);
    simple_events_t ea, eb;
    log_stream_append_t sa[2] = {
        {.stream = "b-1",
         .stream_len = 3,
         .expected_version = LOG_EXPECT_NO_STREAM,
         .events = simple_events(&ea, 1, 2, "t"),
         .event_count = 2},
        {.stream = "a-1",
         .stream_len = 3,
         .expected_version = LOG_EXPECT_NO_STREAM,
         .events = simple_events(&eb, 2, 3, "t"),
         .event_count = 3},
    };
    log_append_t req = {.streams = sa, .stream_count = 2};
    log_append_result_t res;
    ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
    ck_assert_uint_eq(res.first_position, 0);
    ck_assert_uint_eq(res.event_count, 5);
    ck_assert_int_eq(res.last_versions[0], 1);
    ck_assert_int_eq(res.last_versions[1], 2);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 5);
    const char *streams[5] = {"b-1", "b-1", "a-1", "a-1", "a-1"};
    const int64_t versions[5] = {0, 1, 0, 1, 2};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_uint_eq(evs.v[i].position, i);
        ck_assert_str_eq(evs.v[i].stream, streams[i]);
        ck_assert_int_eq(evs.v[i].version, versions[i]);
    }
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

/* ---- idempotency ------------------------------------------------------ */

START_TEST(a_retry_at_the_same_expected_version_returns_the_original_result) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res, retry;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_NO_STREAM, 1, 1, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "s-1", 0, 2, 3, &res), 0);
    uint64_t original = res.first_position;
    ck_assert_int_eq(tu_append_simple(log, "other-1", LOG_EXPECT_ANY, 3, 2, &res), 0);
    uint64_t head = head_of(log);

    memset(&retry, 0, sizeof retry);
    ck_assert_int_eq(tu_append_simple(log, "s-1", 0, 2, 3, &retry), 0);
    ck_assert(retry.idempotent);
    ck_assert_uint_eq(retry.first_position, original);
    ck_assert_uint_eq(retry.event_count, 3);
    ck_assert_uint_eq(head_of(log), head);
    ck_assert_int_eq(version_of(log, "s-1"), 3);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "s-1", 0, false, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 4);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(an_immediate_retry_of_a_new_stream_is_idempotent) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res, retry;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_NO_STREAM, 1, 2, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_NO_STREAM, 1, 2, &retry), 0);
    ck_assert(retry.idempotent);
    ck_assert_uint_eq(retry.first_position, res.first_position);
    ck_assert_uint_eq(head_of(log), 2);
    close_log(log);
}
END_TEST

START_TEST(a_retry_with_expect_any_of_the_last_events_is_idempotent) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res, retry;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 2, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 2, 3, &res), 0);
    uint64_t head = head_of(log);
    memset(&retry, 0, sizeof retry);
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 2, 3, &retry), 0);
    ck_assert(retry.idempotent);
    ck_assert_uint_eq(retry.first_position, res.first_position);
    ck_assert_uint_eq(head_of(log), head);
    ck_assert_int_eq(version_of(log, "s-1"), 4);
    /* an older batch of the stream, still within the scan window */
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 2, &retry), 0);
    ck_assert(retry.idempotent);
    ck_assert_uint_eq(retry.first_position, 0);
    ck_assert_uint_eq(head_of(log), head);
    close_log(log);
}
END_TEST

START_TEST(a_retry_with_expect_any_is_recognised_beyond_the_stream_scan_by_the_window) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, true);
    cfg.idempotency_scan_max = 4;
    log_t *log = open_cfg(&cfg);
    log_append_result_t res, retry;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 2, &res), 0);
    uint64_t original = res.first_position;
    for (uint32_t i = 0; i < 40; i++)
        ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 100 + i, 1, &res), 0);
    uint64_t head = head_of(log);
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 2, &retry), 0);
    ck_assert(retry.idempotent);
    ck_assert_uint_eq(retry.first_position, original);
    ck_assert_uint_eq(head_of(log), head);
    close_log(log);
}
END_TEST

START_TEST(the_idempotency_window_survives_reopening_the_log) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, true);
    cfg.idempotency_scan_max = 4;
    log_t *log = open_cfg(&cfg);
    log_append_result_t res, retry;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 2, &res), 0);
    uint64_t original = res.first_position;
    for (uint32_t i = 0; i < 10; i++)
        ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 100 + i, 1, &res), 0);
    close_log(log);
    log = open_cfg(&cfg);
    uint64_t head = head_of(log);
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 2, &retry), 0);
    ck_assert(retry.idempotent);
    ck_assert_uint_eq(retry.first_position, original);
    ck_assert_uint_eq(head_of(log), head);
    close_log(log);
}
END_TEST

START_TEST(a_retry_survives_reopening_the_log) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res, retry;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_NO_STREAM, 1, 2, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "s-1", 1, 2, 2, &res), 0);
    close_log(log);
    log = open_dir(SEG_SMALL, true);
    ck_assert_int_eq(tu_append_simple(log, "s-1", 1, 2, 2, &retry), 0);
    ck_assert(retry.idempotent);
    ck_assert_uint_eq(retry.first_position, res.first_position);
    ck_assert_uint_eq(head_of(log), 4);
    close_log(log);
}
END_TEST

START_TEST(a_retry_whose_later_ids_differ_is_an_idempotency_error) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_NO_STREAM, 1, 3, &res), 0);
    uint64_t head = head_of(log);
    simple_events_t se;
    log_event_in_t ev[3];
    memcpy(ev, simple_events(&se, 1, 3, "t"), sizeof ev);
    tu_id(ev[2].id, 999, 999); /* first ids match, the last does not */
    ck_assert_int_eq(tu_append(log, "s-1", LOG_EXPECT_NO_STREAM, ev, 3, &res), LOG_EIDEMPOTENCY);
    ck_assert_uint_eq(res.failed_stream, 0);
    ck_assert_int_eq(tu_append(log, "s-1", LOG_EXPECT_ANY, ev, 3, &res), LOG_EIDEMPOTENCY);
    ck_assert_uint_eq(head_of(log), head);
    ck_assert_int_eq(version_of(log, "s-1"), 2);
    close_log(log);
}
END_TEST

/* ---- bad requests ------------------------------------------------------ */

/* Submits req and checks that it fails with want and leaves no trace. */
static void assert_refused(log_t *log, const log_append_t *req, int want) {
    uint64_t head = head_of(log);
    log_append_result_t res;
    memset(&res, 0, sizeof res);
    int rc = log_append_wait(log, req, &res);
    ck_assert_msg(rc == want, "append returned %d (%s), want %d (%s)", rc, log_strerror(rc), want,
                  log_strerror(want));
    ck_assert_int_eq(res.status, want);
    log_append_result_t failure;
    g_cb_calls = 0;
    rc = log_append(log, req, count_cb, NULL, &failure);
    ck_assert_int_eq(rc, want);
    ck_assert_int_eq(failure.status, want);
    ck_assert_int_eq(log_drain(log), 0);
    ck_assert_int_eq(g_cb_calls, 0);
    ck_assert_uint_eq(head_of(log), head);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, head);
    tu_events_clear(&evs);
}

static log_t *log_with_one_event(void) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 1, &res), 0);
    return log;
}

START_TEST(an_empty_stream_name_is_a_bad_request) {
    log_t *log = log_with_one_event();
    simple_events_t se;
    log_stream_append_t sa = {.stream = "",
                              .stream_len = 0,
                              .expected_version = LOG_EXPECT_ANY,
                              .events = simple_events(&se, 2, 1, "t"),
                              .event_count = 1};
    log_append_t req = {.streams = &sa, .stream_count = 1};
    assert_refused(log, &req, LOG_EBAD_REQUEST);
    close_log(log);
}
END_TEST

START_TEST(a_stream_name_starting_with_dollar_is_a_bad_request) {
    log_t *log = log_with_one_event();
    simple_events_t se;
    const char *names[] = {"$all", "$ce-s", "$s-1"};
    for (size_t i = 0; i < 3; i++) {
        log_stream_append_t sa = {.stream = names[i],
                                  .stream_len = strlen(names[i]),
                                  .expected_version = LOG_EXPECT_ANY,
                                  .events = simple_events(&se, 2 + i, 1, "t"),
                                  .event_count = 1};
        log_append_t req = {.streams = &sa, .stream_count = 1};
        assert_refused(log, &req, LOG_EBAD_REQUEST);
    }
    close_log(log);
}
END_TEST

START_TEST(a_stream_with_zero_events_is_a_bad_request) {
    log_t *log = log_with_one_event();
    simple_events_t se;
    log_stream_append_t sa[2] = {
        {.stream = "s-1",
         .stream_len = 3,
         .expected_version = LOG_EXPECT_ANY,
         .events = simple_events(&se, 2, 1, "t"),
         .event_count = 1},
        {.stream = "s-2",
         .stream_len = 3,
         .expected_version = LOG_EXPECT_ANY,
         .events = se.in,
         .event_count = 0},
    };
    log_append_t req = {.streams = sa, .stream_count = 2};
    assert_refused(log, &req, LOG_EBAD_REQUEST);
    log_append_t one = {.streams = &sa[1], .stream_count = 1};
    assert_refused(log, &one, LOG_EBAD_REQUEST);
    close_log(log);
}
END_TEST

START_TEST(an_append_of_zero_streams_is_a_bad_request) {
    log_t *log = log_with_one_event();
    simple_events_t se;
    log_stream_append_t sa = {.stream = "s-1",
                              .stream_len = 3,
                              .expected_version = LOG_EXPECT_ANY,
                              .events = simple_events(&se, 2, 1, "t"),
                              .event_count = 1};
    log_append_t req = {.streams = &sa, .stream_count = 0};
    assert_refused(log, &req, LOG_EBAD_REQUEST);
    close_log(log);
}
END_TEST

START_TEST(the_same_stream_twice_in_one_append_is_a_bad_request) {
    log_t *log = log_with_one_event();
    simple_events_t ea, eb;
    log_stream_append_t sa[2] = {
        {.stream = "s-2",
         .stream_len = 3,
         .expected_version = LOG_EXPECT_ANY,
         .events = simple_events(&ea, 2, 1, "t"),
         .event_count = 1},
        {.stream = "s-2",
         .stream_len = 3,
         .expected_version = LOG_EXPECT_ANY,
         .events = simple_events(&eb, 3, 1, "t"),
         .event_count = 1},
    };
    log_append_t req = {.streams = sa, .stream_count = 2};
    assert_refused(log, &req, LOG_EBAD_REQUEST);
    assert_stream_missing(log, "s-2");
    close_log(log);
}
END_TEST

START_TEST(an_empty_event_type_is_a_bad_request) {
    log_t *log = log_with_one_event();
    simple_events_t se;
    simple_events(&se, 2, 2, "t");
    se.in[1].type = "";
    se.in[1].type_len = 0;
    log_stream_append_t sa = {.stream = "s-2",
                              .stream_len = 3,
                              .expected_version = LOG_EXPECT_ANY,
                              .events = se.in,
                              .event_count = 2};
    log_append_t req = {.streams = &sa, .stream_count = 1};
    assert_refused(log, &req, LOG_EBAD_REQUEST);
    assert_stream_missing(log, "s-2");
    close_log(log);
}
END_TEST

START_TEST(an_event_over_event_bytes_max_is_too_large) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_SMALL, true);
    cfg.event_bytes_max = 1000;
    log_t *log = open_cfg(&cfg);
    static uint8_t meta[400], data[601];
    memset(meta, 'm', sizeof meta);
    memset(data, 'd', sizeof data);
    log_event_in_t ev[2] = {
        {.type = "t", .type_len = 1, .data = "x", .data_len = 1},
        {.type = "t",
         .type_len = 1,
         .metadata = meta,
         .metadata_len = 400,
         .data = data,
         .data_len = 601}, /* 1001 bytes */
    };
    tu_id(ev[0].id, 1, 0);
    tu_id(ev[1].id, 1, 1);
    log_stream_append_t sa = {.stream = "s-1",
                              .stream_len = 3,
                              .expected_version = LOG_EXPECT_ANY,
                              .events = ev,
                              .event_count = 2};
    log_append_t req = {.streams = &sa, .stream_count = 1};
    assert_refused(log, &req, LOG_ETOO_LARGE);
    assert_stream_missing(log, "s-1");

    /* exactly at the limit is fine */
    ev[1].data_len = 600;
    log_append_result_t res;
    ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "s-1", 0, false, 10, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 2);
    ck_assert_uint_eq(evs.v[1].metadata_len, 400);
    ck_assert_uint_eq(evs.v[1].data_len, 600);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(a_batch_over_batch_events_max_is_too_large) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_SMALL, true);
    cfg.batch_events_max = 4;
    log_t *log = open_cfg(&cfg);
    simple_events_t se;
    log_stream_append_t sa = {.stream = "s-1",
                              .stream_len = 3,
                              .expected_version = LOG_EXPECT_ANY,
                              .events = simple_events(&se, 1, 5, "t"),
                              .event_count = 5};
    log_append_t req = {.streams = &sa, .stream_count = 1};
    assert_refused(log, &req, LOG_ETOO_LARGE);
    sa.event_count = 4;
    log_append_result_t res;
    ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
    ck_assert_uint_eq(res.event_count, 4);
    close_log(log);
}
END_TEST

#define BIG_EVENT_BYTES 8000

/* n incompressible events of BIG_EVENT_BYTES, type "Big", ids from seed. */
static void big_events(log_event_in_t *ev, uint8_t (*data)[BIG_EVENT_BYTES], int n, uint64_t seed) {
    memset(ev, 0, (size_t)n * sizeof *ev);
    for (int i = 0; i < n; i++) {
        tu_fill(data[i], BIG_EVENT_BYTES, seed + (uint64_t)i, false);
        tu_id(ev[i].id, seed, (uint64_t)i);
        ev[i].type = "Big";
        ev[i].type_len = 3;
        ev[i].data = data[i];
        ev[i].data_len = BIG_EVENT_BYTES;
    }
}

START_TEST(a_batch_over_write_bytes_max_is_too_large) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, true);
    cfg.write_bytes_max = 16 * 1024;
    cfg.compress_threshold_bytes = 0;
    log_t *log = open_cfg(&cfg);
    static uint8_t data[3][BIG_EVENT_BYTES];
    log_event_in_t ev[3];
    big_events(ev, data, 3, 30);
    log_stream_append_t sa = {.stream = "big-1",
                              .stream_len = 5,
                              .expected_version = LOG_EXPECT_ANY,
                              .events = ev,
                              .event_count = 3};
    log_append_t req = {.streams = &sa, .stream_count = 1};
    assert_refused(log, &req, LOG_ETOO_LARGE);
    /* one of them fits */
    sa.event_count = 1;
    log_append_result_t res;
    ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
    close_log(log);
}
END_TEST

START_TEST(a_batch_larger_than_a_segment_is_too_large) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_SMALL, false);
    cfg.compress_threshold_bytes = 0;
    log_t *log = open_cfg(&cfg);
    static uint8_t data[9][BIG_EVENT_BYTES];
    log_event_in_t ev[9];
    big_events(ev, data, 9, 40);
    log_stream_append_t sa = {.stream = "big-1",
                              .stream_len = 5,
                              .expected_version = LOG_EXPECT_ANY,
                              .events = ev,
                              .event_count = 9}; /* 72 000 bytes > 64 KiB segment */
    log_append_t req = {.streams = &sa, .stream_count = 1};
    assert_refused(log, &req, LOG_ETOO_LARGE);
    /* a batch that fills most of a segment still goes in, in a segment of its own */
    sa.event_count = 7;
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "small-1", LOG_EXPECT_ANY, 1, 1, &res), 0);
    ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "small-1", LOG_EXPECT_ANY, 2, 1, &res), 0);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 9);
    for (int i = 0; i < 7; i++) ck_assert(memcmp(evs.v[1 + i].data, data[i], sizeof data[i]) == 0);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(names_and_types_at_their_length_limits_are_accepted_and_over_them_refused) {
    log_t *log = log_with_one_event();
    static char name[LOG_STREAM_NAME_BYTES_MAX + 2];
    static char type[LOG_TYPE_BYTES_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    memset(type, 'T', sizeof type - 1);
    log_event_in_t ev = {.type = type, .type_len = LOG_TYPE_BYTES_MAX, .data = "x", .data_len = 1};
    tu_id(ev.id, 50, 0);
    log_stream_append_t sa = {.stream = name,
                              .stream_len = LOG_STREAM_NAME_BYTES_MAX,
                              .expected_version = LOG_EXPECT_ANY,
                              .events = &ev,
                              .event_count = 1};
    log_append_t req = {.streams = &sa, .stream_count = 1};
    log_append_result_t res;
    ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
    tu_events_t evs = {0};
    log_read_t rd = {.stream = name, .stream_len = LOG_STREAM_NAME_BYTES_MAX, .max_count = 10};
    log_read_result_t rr;
    ck_assert_int_eq(log_read(log, &rd, tu_collect, &evs, &rr), 0);
    ck_assert_uint_eq(evs.n, 1);
    ck_assert_uint_eq(evs.v[0].stream_len, LOG_STREAM_NAME_BYTES_MAX);
    ck_assert_uint_eq(evs.v[0].type_len, LOG_TYPE_BYTES_MAX);
    tu_events_clear(&evs);

    uint64_t head = head_of(log);
    tu_id(ev.id, 51, 0);
    sa.stream_len = LOG_STREAM_NAME_BYTES_MAX + 1;
    int rc = log_append_wait(log, &req, &res);
    ck_assert_msg(rc == LOG_EBAD_REQUEST || rc == LOG_ETOO_LARGE, "a %u-byte name: %d",
                  LOG_STREAM_NAME_BYTES_MAX + 1, rc);
    sa.stream_len = 3;
    ev.type_len = LOG_TYPE_BYTES_MAX + 1;
    rc = log_append_wait(log, &req, &res);
    ck_assert_msg(rc == LOG_EBAD_REQUEST || rc == LOG_ETOO_LARGE, "a %u-byte type: %d",
                  LOG_TYPE_BYTES_MAX + 1, rc);
    ck_assert_uint_eq(head_of(log), head);
    close_log(log);
}
END_TEST

/* ---- stream reads ------------------------------------------------------ */

static log_t *log_with_ten_in_s1(void) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    for (uint32_t i = 0; i < 5; i++) {
        ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 10 + i, 2, &res), 0);
        ck_assert_int_eq(tu_append_simple(log, "noise-1", LOG_EXPECT_ANY, 20 + i, 1, &res), 0);
    }
    ck_assert_int_eq(version_of(log, "s-1"), 9);
    return log;
}

START_TEST(a_forward_stream_read_starts_at_a_version_and_stops_at_max_count) {
    log_t *log = log_with_ten_in_s1();
    tu_events_t evs = {0};
    log_read_result_t res;
    ck_assert_int_eq(tu_read(log, "s-1", 3, false, 4, NULL, &evs, &res), 0);
    ck_assert_uint_eq(res.count, 4);
    ck_assert_uint_eq(evs.n, 4);
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(evs.v[i].version, (int64_t)(3 + i));
        ck_assert_str_eq(evs.v[i].stream, "s-1");
        if (i > 0) ck_assert_uint_gt(evs.v[i].position, evs.v[i - 1].position);
    }
    ck_assert_uint_eq(res.next, 7);
    ck_assert(!res.end);
    ck_assert_int_eq(res.stream_version, 9);

    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read(log, "s-1", 7, false, 10, NULL, &evs, &res), 0);
    ck_assert_uint_eq(res.count, 3);
    ck_assert_int_eq(evs.v[0].version, 7);
    ck_assert_int_eq(evs.v[2].version, 9);
    ck_assert(res.end);

    /* past the end: nothing, at the end */
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read(log, "s-1", 10, false, 10, NULL, &evs, &res), 0);
    ck_assert_uint_eq(res.count, 0);
    ck_assert(res.end);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(a_backward_stream_read_from_the_end_returns_the_newest_first) {
    log_t *log = log_with_ten_in_s1();
    tu_events_t evs = {0};
    log_read_result_t res;
    ck_assert_int_eq(tu_read(log, "s-1", LOG_READ_END, true, 3, NULL, &evs, &res), 0);
    ck_assert_uint_eq(res.count, 3);
    ck_assert_int_eq(evs.v[0].version, 9);
    ck_assert_int_eq(evs.v[1].version, 8);
    ck_assert_int_eq(evs.v[2].version, 7);
    ck_assert_uint_eq(res.next, 6);
    ck_assert(!res.end);

    /* from a version, backwards, to the start */
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read(log, "s-1", 6, true, 100, NULL, &evs, &res), 0);
    ck_assert_uint_eq(evs.n, 7);
    for (size_t i = 0; i < 7; i++) ck_assert_int_eq(evs.v[i].version, (int64_t)(6 - i));
    ck_assert(res.end);

    /* the paged helper sees the whole stream in reverse */
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "s-1", LOG_READ_END, true, 4, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 10);
    for (size_t i = 0; i < 10; i++) ck_assert_int_eq(evs.v[i].version, (int64_t)(9 - i));
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(reading_a_missing_stream_is_not_found) {
    log_t *log = log_with_ten_in_s1();
    tu_events_t evs = {0};
    log_read_result_t res;
    ck_assert_int_eq(tu_read(log, "s-2", 0, false, 10, NULL, &evs, &res), LOG_ENOT_FOUND);
    ck_assert_int_eq(tu_read(log, "s-2", LOG_READ_END, true, 10, NULL, &evs, &res), LOG_ENOT_FOUND);
    ck_assert_uint_eq(evs.n, 0);
    int64_t v;
    ck_assert_int_eq(log_stream_version(log, "s-2", 3, &v), LOG_ENOT_FOUND);
    close_log(log);
}
END_TEST

/* ---- categories and $all --------------------------------------------- */

/* order-1, other-1, order-2, orderx, orderx-1, order-1 ... in that order. */
static log_t *log_with_categories(bool prepare) {
    log_t *log = open_dir(SEG_SMALL, prepare);
    const char *streams[] = {"order-1", "other-1", "order-2", "orderx",  "orderx-1",
                             "order-1", "order-2", "other-1", "order-3", "order-1"};
    const char *types[] = {"OrderPlaced", "Other", "OrderPlaced", "X",           "X", "OrderPaid",
                           "OrderPaid",   "Other", "OrderPlaced", "OrderShipped"};
    for (uint32_t i = 0; i < 10; i++) {
        simple_events_t se;
        log_append_result_t res;
        ck_assert_int_eq(tu_append(log, streams[i], LOG_EXPECT_ANY,
                                   simple_events(&se, 100 + i, 1, types[i]), 1, &res),
                         0);
        ck_assert_uint_eq(res.first_position, i);
    }
    return log;
}

START_TEST(a_category_read_returns_its_streams_in_position_order) {
    log_t *log = log_with_categories(true);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$ce-order", 0, false, 100, NULL, &evs, NULL), 0);
    const uint64_t want[] = {0, 2, 5, 6, 8, 9};
    ck_assert_uint_eq(evs.n, 6);
    for (size_t i = 0; i < 6; i++) {
        ck_assert_uint_eq(evs.v[i].position, want[i]);
        ck_assert(strncmp(evs.v[i].stream, "order-", 6) == 0);
    }
    ck_assert_int_eq(evs.v[2].version, 1); /* order-1's second event */

    /* backwards */
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "$ce-order", LOG_READ_END, true, 4, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 6);
    for (size_t i = 0; i < 6; i++) ck_assert_uint_eq(evs.v[i].position, want[5 - i]);

    /* another category */
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "$ce-other", 0, false, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 2);
    ck_assert_uint_eq(evs.v[0].position, 1);
    ck_assert_uint_eq(evs.v[1].position, 7);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(a_category_read_from_a_position_starts_there) {
    log_t *log = log_with_categories(false);
    tu_events_t evs = {0};
    log_read_result_t res;
    /* position 3 is orderx: the first order-* event at or after it is 5 */
    ck_assert_int_eq(tu_read(log, "$ce-order", 3, false, 2, NULL, &evs, &res), 0);
    ck_assert_uint_eq(evs.n, 2);
    ck_assert_uint_eq(evs.v[0].position, 5);
    ck_assert_uint_eq(evs.v[1].position, 6);
    ck_assert(!res.end);
    uint64_t next = res.next;
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "$ce-order", next, false, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 2);
    ck_assert_uint_eq(evs.v[0].position, 8);
    ck_assert_uint_eq(evs.v[1].position, 9);
    /* backwards from a position: inclusive, older first after it */
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "$ce-order", 5, true, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 3);
    ck_assert_uint_eq(evs.v[0].position, 5);
    ck_assert_uint_eq(evs.v[1].position, 2);
    ck_assert_uint_eq(evs.v[2].position, 0);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(all_reads_every_event_from_a_position) {
    log_t *log = log_with_categories(true);
    tu_events_t evs = {0};
    log_read_result_t res;
    ck_assert_int_eq(tu_read(log, "$all", 4, false, 3, NULL, &evs, &res), 0);
    ck_assert_uint_eq(evs.n, 3);
    ck_assert_uint_eq(evs.v[0].position, 4);
    ck_assert_str_eq(evs.v[0].stream, "orderx-1");
    ck_assert_uint_eq(evs.v[2].position, 6);
    ck_assert_uint_eq(res.next, 7);
    ck_assert(!res.end);

    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 3, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 10);
    for (size_t i = 0; i < 10; i++) ck_assert_uint_eq(evs.v[i].position, i);

    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "$all", LOG_READ_END, true, 3, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 10);
    for (size_t i = 0; i < 10; i++) ck_assert_uint_eq(evs.v[i].position, 9 - i);

    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read(log, "$all", 10, false, 3, NULL, &evs, &res), 0);
    ck_assert_uint_eq(res.count, 0);
    ck_assert(res.end);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

/* ---- filters ------------------------------------------------------------ */

START_TEST(a_type_list_filters_a_stream_read) {
    log_t *log = log_with_categories(true);
    const char *const types[] = {"OrderPaid", "OrderShipped"};
    log_filter_t f = {.types = types, .type_count = 2};
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "order-1", 0, false, 100, &f, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 2);
    ck_assert_int_eq(evs.v[0].version, 1);
    ck_assert_str_eq(evs.v[0].type, "OrderPaid");
    ck_assert_int_eq(evs.v[1].version, 2);
    ck_assert_str_eq(evs.v[1].type, "OrderShipped");
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(a_type_prefix_filters_a_category_read) {
    log_t *log = log_with_categories(true);
    log_filter_t f = {.type_prefix = "OrderP"};
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$ce-order", 0, false, 100, &f, &evs, NULL), 0);
    const uint64_t want[] = {0, 2, 5, 6, 8}; /* OrderPlaced, OrderPaid; not OrderShipped */
    ck_assert_uint_eq(evs.n, 5);
    for (size_t i = 0; i < 5; i++) ck_assert_uint_eq(evs.v[i].position, want[i]);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(a_filter_keeps_types_in_the_list_or_with_the_prefix_on_all) {
    log_t *log = log_with_categories(true);
    const char *const types[] = {"X"};
    log_filter_t f = {.types = types, .type_count = 1, .type_prefix = "OrderS"};
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 100, &f, &evs, NULL), 0);
    const uint64_t want[] = {3, 4, 9};
    ck_assert_uint_eq(evs.n, 3);
    for (size_t i = 0; i < 3; i++) ck_assert_uint_eq(evs.v[i].position, want[i]);
    /* a type list alone matches whole names only */
    tu_events_clear(&evs);
    const char *const partial[] = {"Order"};
    log_filter_t g = {.types = partial, .type_count = 1};
    ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 100, &g, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 0);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(a_filtered_read_counts_only_delivered_events_against_max_count) {
    log_t *log = log_with_categories(true);
    log_filter_t f = {.type_prefix = "Order"};
    tu_events_t evs = {0};
    log_read_result_t res;
    ck_assert_int_eq(tu_read(log, "$all", 0, false, 2, &f, &evs, &res), 0);
    ck_assert_uint_eq(res.count, 2);
    ck_assert_uint_eq(evs.v[0].position, 0);
    ck_assert_uint_eq(evs.v[1].position, 2);
    ck_assert(!res.end);
    ck_assert_uint_gt(res.next, 2);
    ck_assert_uint_le(res.next, 5);
    tu_events_clear(&evs);
    ck_assert_int_eq(tu_read_all(log, "$all", res.next, false, 2, &f, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 4);
    ck_assert_uint_eq(evs.v[0].position, 5);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

/* ---- segments and reopening ------------------------------------------ */

#define ROLL_EVENTS 600u

/* Appends ROLL_EVENTS events of 200..2200 bytes to 4 streams, in batches. */
static void append_rolling(log_t *log, uint64_t tag) {
    uint32_t done = 0;
    uint64_t rng = tag;
    while (done < ROLL_EVENTS) {
        uint32_t n = 1 + (uint32_t)tu_rand_below(&rng, 4);
        if (n > ROLL_EVENTS - done) n = ROLL_EVENTS - done;
        tu_event_t evs[4];
        log_event_in_t in[4];
        for (uint32_t i = 0; i < n; i++) {
            uint64_t k = done + i;
            size_t len = 200 + (size_t)tu_rand_below(&rng, 2000);
            ck_assert_int_eq(
                tu_event_make(&evs[i], tag, k, "Rolled", 16, len, tag * 1000003 + k, false), 0);
            in[i] = tu_event_in(&evs[i]);
        }
        char stream[32];
        snprintf(stream, sizeof stream, "roll-%u", (unsigned)(done % 4));
        log_append_result_t res;
        ck_assert_int_eq(tu_append(log, stream, LOG_EXPECT_ANY, in, n, &res), 0);
        for (uint32_t i = 0; i < n; i++) tu_event_free(&evs[i]);
        done += n;
    }
}

/* Every event appended by append_rolling(tag) reads back through $all. */
static void assert_rolled(log_t *log, uint64_t tag, uint64_t first_position) {
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$all", first_position, false, 97, NULL, &evs, NULL), 0);
    ck_assert_uint_ge(evs.n, ROLL_EVENTS);
    for (uint32_t k = 0; k < ROLL_EVENTS; k++) {
        tu_read_event_t *e = &evs.v[k];
        uint8_t id[16];
        tu_id(id, tag, k);
        ck_assert_uint_eq(e->position, first_position + k);
        ck_assert_mem_eq(e->id, id, 16);
        uint8_t *want = malloc(e->data_len + 1);
        ck_assert_ptr_nonnull(want);
        tu_fill(want, e->data_len, tag * 1000003 + k, false);
        ck_assert_msg(memcmp(want, e->data, e->data_len) == 0, "event %u data differs", k);
        free(want);
    }
    /* and every stream reads back its share, versions in order */
    for (int s = 0; s < 4; s++) {
        char stream[32];
        snprintf(stream, sizeof stream, "roll-%d", s);
        tu_events_t se = {0};
        ck_assert_int_eq(tu_read_all(log, stream, 0, false, 50, NULL, &se, NULL), 0);
        ck_assert_uint_gt(se.n, 0);
        for (size_t i = 0; i < se.n; i++) ck_assert_int_eq(se.v[i].version, (int64_t)i);
        ck_assert_int_eq(version_of(log, stream), (int64_t)se.n - 1);
        tu_events_clear(&se);
    }
    tu_events_clear(&evs);
}

static void segments_roll_and_read_back(bool prepare) {
    log_t *log = open_dir(SEG_SMALL, prepare);
    append_rolling(log, 7);
    log_stats_t st;
    log_stats(log, &st);
    ck_assert_uint_ge(st.segments, 4);
    ck_assert_uint_eq(st.head_position, ROLL_EVENTS);
    assert_rolled(log, 7, 0);
    close_log(log);

    char segs[64][512];
    int n = tu_segments(g_dir, segs, 64);
    ck_assert_int_ge(n, 4);

    log_recovery_t rec;
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_SMALL, prepare);
    ck_assert_int_eq(log_open(&cfg, &log, &rec), 0);
    ck_assert_uint_eq(rec.events, ROLL_EVENTS);
    ck_assert_uint_eq(rec.streams, 4);
    ck_assert_uint_ge(rec.segments, 4);
    assert_rolled(log, 7, 0);
    /* and appending after the reopen continues the log */
    append_rolling(log, 8);
    assert_rolled(log, 8, ROLL_EVENTS);
    close_log(log);
}

START_TEST(segments_roll_and_read_back_with_prepared_segments) {
    segments_roll_and_read_back(true);
}
END_TEST

START_TEST(segments_roll_and_read_back_without_prepared_segments) {
    segments_roll_and_read_back(false);
}
END_TEST

START_TEST(segment_files_are_named_after_their_first_position) {
    log_t *log = open_dir(SEG_SMALL, false);
    append_rolling(log, 3);
    close_log(log);
    char segs[64][512];
    int n = tu_segments(g_dir, segs, 64);
    ck_assert_int_ge(n, 2);
    char first[600];
    snprintf(first, sizeof first, "%s/%020llu.seg", g_dir, 0ull);
    ck_assert_str_eq(segs[0], first);
    /* each later name is a position within the log, increasing */
    unsigned long long prev = 0;
    for (int i = 1; i < n; i++) {
        const char *base = strrchr(segs[i], '/') + 1;
        unsigned long long pos = strtoull(base, NULL, 10);
        ck_assert_uint_gt(pos, prev);
        ck_assert_uint_lt(pos, ROLL_EVENTS);
        prev = pos;
    }
}
END_TEST

START_TEST(reopening_keeps_stream_versions_and_the_head_position) {
    log_t *log = open_dir(SEG_MEDIUM, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "a-1", LOG_EXPECT_ANY, 1, 5, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "b-1", LOG_EXPECT_ANY, 2, 2, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "a-1", LOG_EXPECT_ANY, 3, 1, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "c", LOG_EXPECT_ANY, 4, 3, &res), 0);
    close_log(log);

    log_recovery_t rec;
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, true);
    ck_assert_int_eq(log_open(&cfg, &log, &rec), 0);
    ck_assert_uint_eq(rec.events, 11);
    ck_assert_uint_eq(rec.streams, 3);
    ck_assert_uint_eq(head_of(log), 11);
    ck_assert_int_eq(version_of(log, "a-1"), 5);
    ck_assert_int_eq(version_of(log, "b-1"), 1);
    ck_assert_int_eq(version_of(log, "c"), 2);
    log_stats_t st;
    log_stats(log, &st);
    ck_assert_uint_eq(st.streams, 3);
    ck_assert_uint_eq(st.durable_position, 11);
    /* optimistic concurrency continues from the recovered versions */
    ck_assert_int_eq(tu_append_simple(log, "a-1", 5, 5, 1, &res), 0);
    ck_assert_uint_eq(res.first_position, 11);
    ck_assert_int_eq(tu_append_simple(log, "b-1", LOG_EXPECT_NO_STREAM, 6, 1, &res),
                     LOG_EWRONG_VERSION);
    ck_assert_int_eq(res.actual_version, 1);
    close_log(log);
}
END_TEST

static int count_streams(void *ctx, const char *name, size_t len, int64_t version) {
    int *n = ctx;
    (void)name;
    (void)len;
    (void)version;
    (*n)++;
    return 0;
}

static int check_stream(void *ctx, const char *name, size_t len, int64_t version) {
    int *bad = ctx;
    if (len == 3 && memcmp(name, "a-1", 3) == 0) {
        if (version != 1) (*bad)++;
    } else if (len == 3 && memcmp(name, "b-1", 3) == 0) {
        if (version != 0) (*bad)++;
    } else {
        (*bad)++; /* categories are not streams */
    }
    return 0;
}

START_TEST(streams_each_visits_every_stream_but_no_category) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "a-1", LOG_EXPECT_ANY, 1, 2, &res), 0);
    ck_assert_int_eq(tu_append_simple(log, "b-1", LOG_EXPECT_ANY, 2, 1, &res), 0);
    int n = 0, bad = 0;
    log_streams_each(log, count_streams, &n);
    log_streams_each(log, check_stream, &bad);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(bad, 0);
    close_log(log);
}
END_TEST

/* ---- compression -------------------------------------------------------- */

START_TEST(compressed_batches_read_back_identical) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, true);
    cfg.compress_threshold_bytes = 256;
    log_t *log = open_cfg(&cfg);
    tu_event_t evs[8];
    log_event_in_t in[8];
    for (uint32_t i = 0; i < 8; i++) {
        ck_assert_int_eq(tu_event_make(&evs[i], 77, i, "Text", 100, 3000 + 500 * i, 1000 + i, true),
                         0);
        in[i] = tu_event_in(&evs[i]);
    }
    log_append_result_t res;
    for (uint32_t b = 0; b < 4; b++)
        ck_assert_int_eq(tu_append(log, "text-1", LOG_EXPECT_ANY, &in[2 * b], 2, &res), 0);
    log_stats_t st;
    log_stats(log, &st);
    ck_assert_uint_gt(st.compressed_batches, 0);
    /* compressed bodies take less room than the data */
    ck_assert_uint_lt(st.bytes_written, (3000 + 6500) * 8 / 2 / 2);

    for (int pass = 0; pass < 2; pass++) {
        tu_events_t out = {0};
        ck_assert_int_eq(tu_read_all(log, "text-1", 0, false, 3, NULL, &out, NULL), 0);
        ck_assert_uint_eq(out.n, 8);
        for (uint32_t i = 0; i < 8; i++) {
            ck_assert_mem_eq(out.v[i].id, evs[i].id, 16);
            ck_assert_uint_eq(out.v[i].data_len, evs[i].data_len);
            ck_assert(memcmp(out.v[i].data, evs[i].data, evs[i].data_len) == 0);
            ck_assert_uint_eq(out.v[i].metadata_len, evs[i].metadata_len);
            ck_assert(memcmp(out.v[i].metadata, evs[i].metadata, evs[i].metadata_len) == 0);
        }
        tu_events_clear(&out);
        /* backwards across compressed batches too */
        ck_assert_int_eq(tu_read_all(log, "text-1", LOG_READ_END, true, 3, NULL, &out, NULL), 0);
        ck_assert_uint_eq(out.n, 8);
        for (uint32_t i = 0; i < 8; i++) ck_assert_mem_eq(out.v[i].id, evs[7 - i].id, 16);
        tu_events_clear(&out);
        if (pass == 0) {
            close_log(log);
            log = open_cfg(&cfg);
        }
    }
    for (uint32_t i = 0; i < 8; i++) tu_event_free(&evs[i]);
    close_log(log);
}
END_TEST

START_TEST(incompressible_data_reads_back_identical_with_compression_on) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, false);
    cfg.compress_threshold_bytes = 64;
    log_t *log = open_cfg(&cfg);
    tu_event_t ev;
    ck_assert_int_eq(tu_event_make(&ev, 1, 1, "Rand", 0, 5000, 4242, false), 0);
    log_event_in_t in = tu_event_in(&ev);
    log_append_result_t res;
    ck_assert_int_eq(tu_append(log, "r-1", LOG_EXPECT_ANY, &in, 1, &res), 0);
    tu_events_t out = {0};
    ck_assert_int_eq(tu_read_all(log, "r-1", 0, false, 3, NULL, &out, NULL), 0);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_uint_eq(out.v[0].data_len, 5000);
    ck_assert(memcmp(out.v[0].data, ev.data, 5000) == 0);
    tu_events_clear(&out);
    tu_event_free(&ev);
    close_log(log);
}
END_TEST

/* ---- durability --------------------------------------------------------- */

START_TEST(durability_parse_accepts_the_documented_names) {
    log_durability_t mode = LOG_DURABILITY_NONE;
    uint32_t ms = 777;
    ck_assert_int_eq(log_durability_parse("always", &mode, &ms), 0);
    ck_assert_int_eq(mode, LOG_DURABILITY_ALWAYS);
    ck_assert_int_eq(log_durability_parse("none", &mode, &ms), 0);
    ck_assert_int_eq(mode, LOG_DURABILITY_NONE);
    ms = 777;
    ck_assert_int_eq(log_durability_parse("interval", &mode, &ms), 0);
    ck_assert_int_eq(mode, LOG_DURABILITY_INTERVAL);
    ck_assert_uint_eq(ms, LOG_INTERVAL_MS_DEFAULT);
    ck_assert_int_eq(log_durability_parse("interval:25", &mode, &ms), 0);
    ck_assert_int_eq(mode, LOG_DURABILITY_INTERVAL);
    ck_assert_uint_eq(ms, 25);
}
END_TEST

START_TEST(durability_parse_rejects_other_text) {
    const char *bad[] = {"bogus",         "",     "always ", "interval:", "interval:x",
                         "interval:25ms", "nonee"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        log_durability_t mode = LOG_DURABILITY_NONE;
        uint32_t ms = 5;
        ck_assert_msg(log_durability_parse(bad[i], &mode, &ms) == LOG_EBAD_REQUEST,
                      "accepted \"%s\"", bad[i]);
    }
}
END_TEST

START_TEST(durability_names_round_trip) {
    log_durability_t modes[] = {LOG_DURABILITY_ALWAYS, LOG_DURABILITY_INTERVAL,
                                LOG_DURABILITY_NONE};
    for (size_t i = 0; i < 3; i++) {
        log_durability_t back;
        uint32_t ms = 0;
        ck_assert_int_eq(log_durability_parse(log_durability_name(modes[i]), &back, &ms), 0);
        ck_assert_int_eq(back, modes[i]);
    }
    ck_assert_str_eq(log_durability_name(LOG_DURABILITY_ALWAYS), "always");
    ck_assert_str_eq(log_durability_name(LOG_DURABILITY_NONE), "none");
    ck_assert_str_eq(log_durability_name(LOG_DURABILITY_INTERVAL), "interval");
}
END_TEST

static uint64_t fdatasyncs_of(log_t *log) {
    log_stats_t st;
    log_stats(log, &st);
    return st.fdatasyncs;
}

static double mono_ms(void) { return (double)util_mono_ns() / 1e6; }

/* The engine's fdatasync counter is bumped beside the operations it counts,
 * so it would go on counting if they stopped syncing. What a sync does is
 * seen in the page cache instead: pages of the segments still dirty or under
 * writeback are what a power loss would take. Where that cannot be seen
 * (tu_sync_observable) the test says so and checks the counter only. */
static bool sync_observable(const char *test) {
    bool seen = tu_sync_observable(g_dir);
    if (!seen)
        printf("%s: unsynced pages cannot be observed in %s; only the fdatasync counter is "
               "checked\n",
               test, g_dir);
    return seen;
}

static int64_t unsynced_pages(void) {
    int64_t pages = tu_segments_unsynced_pages(g_dir);
    ck_assert_msg(pages >= 0, "cachestat of the segments in %s: %s", g_dir, strerror((int)-pages));
    return pages;
}

START_TEST(durability_always_syncs_before_each_acknowledgement) {
    log_t *log = open_dir(SEG_MEDIUM, true);
    bool observable = sync_observable(__func__);
    log_append_result_t res;
    uint64_t before = fdatasyncs_of(log);
    for (uint32_t i = 0; i < 30; i++) {
        ck_assert_int_eq(tu_append_simple(log, "d-1", LOG_EXPECT_ANY, i, 1, &res), 0);
        ck_assert_uint_ge(fdatasyncs_of(log), before + i + 1);
        int64_t pages = observable ? unsynced_pages() : 0;
        ck_assert_msg(pages == 0, "append %u acknowledged with %" PRId64 " page(s) not synced", i,
                      pages);
    }
    close_log(log);
}
END_TEST

START_TEST(durability_none_acknowledges_without_fdatasync) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, true);
    cfg.durability = LOG_DURABILITY_NONE;
    log_t *log = open_cfg(&cfg);
    log_append_result_t res;
    /* the first write into a new segment may be synced with it (a roll) */
    ck_assert_int_eq(tu_append_simple(log, "d-1", LOG_EXPECT_ANY, 1000, 1, &res), 0);
    uint64_t before = fdatasyncs_of(log);
    for (uint32_t i = 0; i < 30; i++)
        ck_assert_int_eq(tu_append_simple(log, "d-1", LOG_EXPECT_ANY, i, 1, &res), 0);
    ck_assert_uint_eq(fdatasyncs_of(log), before); /* no roll happened */
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "d-1", 0, false, 100, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 31);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(durability_interval_syncs_at_most_once_per_interval) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, true);
    cfg.durability = LOG_DURABILITY_INTERVAL;
    cfg.interval_ms = 50;
    log_t *log = open_cfg(&cfg);
    log_append_result_t res;
    uint64_t before = fdatasyncs_of(log);
    double start_ms = mono_ms();
    for (uint32_t i = 0; i < 200; i++)
        ck_assert_int_eq(tu_append_simple(log, "d-1", LOG_EXPECT_ANY, i, 1, &res), 0);
    double ms = mono_ms() - start_ms;
    uint64_t syncs = fdatasyncs_of(log) - before;
    ck_assert_msg((double)syncs <= ms / 50.0 + 2.0,
                  "%" PRIu64 " fdatasyncs in %.1f ms at a 50 ms interval", syncs, ms);
    close_log(log);
}
END_TEST

/* How long a caller that keeps polling may wait for the interval's sync:
 * 200 intervals, far beyond any scheduling delay, yet a bound. */
#define INTERVAL_SYNC_WAIT_MS 10000.0
#define INTERVAL_POLL_MS 10

START_TEST(durability_interval_syncs_what_was_written_within_a_bounded_time) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, true);
    cfg.durability = LOG_DURABILITY_INTERVAL;
    cfg.interval_ms = 50;
    log_t *log = open_cfg(&cfg);
    bool observable = sync_observable(__func__);
    log_append_result_t res;
    /* the first write into a new segment is synced with it (a roll) */
    ck_assert_int_eq(tu_append_simple(log, "d-1", LOG_EXPECT_ANY, 1000, 1, &res), 0);
    uint64_t before = fdatasyncs_of(log);
    for (uint32_t i = 0; i < 10; i++)
        ck_assert_int_eq(tu_append_simple(log, "d-1", LOG_EXPECT_ANY, i, 1, &res), 0);
    /* The sync runs from log_poll() once an interval has passed since the
     * last: poll as an event loop does until it has left nothing unsynced. */
    double start_ms = mono_ms(), waited_ms = 0;
    uint64_t syncs = 0;
    int64_t pages = -1;
    while (waited_ms < INTERVAL_SYNC_WAIT_MS) {
        ck_assert_int_ge(log_poll(log, INTERVAL_POLL_MS), 0);
        syncs = fdatasyncs_of(log) - before;
        pages = observable ? unsynced_pages() : 0;
        if (syncs > 0 && pages == 0) break;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL); /* log_poll() waits only on I/O */
        waited_ms = mono_ms() - start_ms;
    }
    ck_assert_msg(syncs > 0 && pages == 0,
                  "interval 50 ms: after %.0f ms of polling, %" PRIu64 " fdatasyncs and %" PRId64
                  " page(s) not synced",
                  waited_ms, syncs, pages);
    close_log(log);
}
END_TEST

START_TEST(every_durability_mode_appends_and_reopens) {
    log_durability_t modes[] = {LOG_DURABILITY_ALWAYS, LOG_DURABILITY_INTERVAL,
                                LOG_DURABILITY_NONE};
    for (size_t m = 0; m < 3; m++) {
        char dir[512];
        ck_assert_int_eq(tu_dir_make(dir, sizeof dir), 0);
        log_config_t cfg;
        tu_config(&cfg, dir, SEG_SMALL, m != 1);
        cfg.durability = modes[m];
        cfg.interval_ms = 5;
        log_t *log = open_cfg(&cfg);
        log_append_result_t res;
        for (uint32_t i = 0; i < 50; i++)
            ck_assert_int_eq(tu_append_simple(log, "d-1", LOG_EXPECT_ANY, i, 3, &res), 0);
        tu_events_t evs = {0};
        ck_assert_int_eq(tu_read_all(log, "d-1", 0, false, 64, NULL, &evs, NULL), 0);
        ck_assert_uint_eq(evs.n, 150);
        tu_events_clear(&evs);
        close_log(log);
        log = open_cfg(&cfg);
        ck_assert_int_eq(version_of(log, "d-1"), 149);
        ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 64, NULL, &evs, NULL), 0);
        ck_assert_uint_eq(evs.n, 150);
        for (size_t i = 0; i < 150; i++) {
            char want[64];
            int len = snprintf(want, sizeof want, "d-1:%zu:%zu", i / 3, i % 3);
            ck_assert_uint_eq(evs.v[i].data_len, (size_t)len);
            ck_assert_mem_eq(evs.v[i].data, want, (size_t)len);
        }
        tu_events_clear(&evs);
        close_log(log);
        ck_assert_int_eq(tu_dir_remove(dir), 0);
    }
}
END_TEST

/* ---- locking ------------------------------------------------------------ */

START_TEST(a_second_open_of_an_open_log_is_locked_out) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 1, &res), 0);
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_SMALL, true);
    log_t *second = NULL;
    ck_assert_int_eq(log_open(&cfg, &second, NULL), LOG_ELOCKED);
    /* the first is unharmed */
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 2, 1, &res), 0);
    close_log(log);
    /* and once closed the directory opens again */
    ck_assert_int_eq(log_open(&cfg, &second, NULL), 0);
    ck_assert_int_eq(version_of(second, "s-1"), 1);
    close_log(second);
}
END_TEST

START_TEST(a_read_only_open_reads_while_the_writer_holds_the_lock) {
    log_t *log = open_dir(SEG_SMALL, true);
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "s-1", LOG_EXPECT_ANY, 1, 3, &res), 0);
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_SMALL, true);
    cfg.read_only = true;
    log_t *reader = NULL;
    ck_assert_int_eq(log_open(&cfg, &reader, NULL), 0);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(reader, "s-1", 0, false, 10, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, 3);
    tu_events_clear(&evs);
    log_append_result_t rr;
    ck_assert_int_lt(tu_append_simple(reader, "s-1", LOG_EXPECT_ANY, 2, 1, &rr), 0);
    close_log(reader);
    close_log(log);
}
END_TEST

/* ---- asynchronous appends and group commit -------------------------- */

#define ASYNC_APPENDS 200u

typedef struct {
    uint32_t calls;
    int status;
    uint64_t first_position;
    uint32_t event_count;
} async_slot_t;

static void async_cb(void *ctx, const log_append_result_t *res) {
    async_slot_t *slot = ctx;
    slot->calls++;
    slot->status = res->status;
    slot->first_position = res->first_position;
    slot->event_count = res->event_count;
}

/* Submits ASYNC_APPENDS one-event appends without polling. */
static void submit_async(log_t *log, async_slot_t *slots, uint64_t tag) {
    for (uint32_t i = 0; i < ASYNC_APPENDS; i++) {
        static char data[ASYNC_APPENDS][32];
        log_event_in_t ev = {.type = "A", .type_len = 1};
        tu_id(ev.id, tag, i);
        int len = snprintf(data[i], sizeof data[i], "async %u", i);
        ev.data = data[i];
        ev.data_len = (size_t)len;
        char stream[16];
        snprintf(stream, sizeof stream, "async-%u", i % 7);
        log_stream_append_t sa = {.stream = stream,
                                  .stream_len = strlen(stream),
                                  .expected_version = LOG_EXPECT_ANY,
                                  .events = &ev,
                                  .event_count = 1};
        log_append_t req = {.streams = &sa, .stream_count = 1};
        log_append_result_t failure;
        ck_assert_int_eq(log_append(log, &req, async_cb, &slots[i], &failure), 0);
    }
}

START_TEST(async_appends_complete_once_each_in_order_sharing_fdatasyncs) {
    log_t *log = open_dir(SEG_MEDIUM, true);
    static async_slot_t slots[ASYNC_APPENDS];
    memset(slots, 0, sizeof slots);
    submit_async(log, slots, 1);
    for (uint32_t i = 0; i < ASYNC_APPENDS; i++) ck_assert_uint_eq(slots[i].calls, 0);
    ck_assert_int_eq(log_drain(log), 0);
    for (uint32_t i = 0; i < ASYNC_APPENDS; i++) {
        ck_assert_uint_eq(slots[i].calls, 1);
        ck_assert_int_eq(slots[i].status, 0);
        ck_assert_uint_eq(slots[i].first_position, i);
        ck_assert_uint_eq(slots[i].event_count, 1);
    }
    log_stats_t st;
    log_stats(log, &st);
    ck_assert_uint_eq(st.appends, ASYNC_APPENDS);
    ck_assert_uint_eq(st.events_appended, ASYNC_APPENDS);
    ck_assert_uint_ge(st.fdatasyncs, 1);
    ck_assert_uint_lt(st.fdatasyncs, ASYNC_APPENDS / 2);
    ck_assert_uint_lt(st.writes, ASYNC_APPENDS / 2);
    ck_assert_uint_eq(st.durable_position, ASYNC_APPENDS);

    /* a later drain runs nothing twice */
    ck_assert_int_eq(log_drain(log), 0);
    for (uint32_t i = 0; i < ASYNC_APPENDS; i++) ck_assert_uint_eq(slots[i].calls, 1);
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$all", 0, false, 64, NULL, &evs, NULL), 0);
    ck_assert_uint_eq(evs.n, ASYNC_APPENDS);
    tu_events_clear(&evs);
    close_log(log);
}
END_TEST

START_TEST(log_poll_reports_the_completions_it_ran) {
    log_t *log = open_dir(SEG_MEDIUM, false);
    static async_slot_t slots[ASYNC_APPENDS];
    memset(slots, 0, sizeof slots);
    submit_async(log, slots, 2);
    ck_assert_int_ge(log_event_fd(log), 0);
    int total = 0;
    for (int rounds = 0; rounds < 100000 && total < (int)ASYNC_APPENDS; rounds++) {
        int n = log_poll(log, -1);
        ck_assert_int_ge(n, 0);
        total += n;
    }
    ck_assert_int_eq(total, ASYNC_APPENDS);
    for (uint32_t i = 0; i < ASYNC_APPENDS; i++) ck_assert_uint_eq(slots[i].calls, 1);
    ck_assert_int_eq(log_poll(log, 0), 0);
    close_log(log);
}
END_TEST

START_TEST(close_completes_every_accepted_append) {
    log_t *log = open_dir(SEG_MEDIUM, true);
    static async_slot_t slots[ASYNC_APPENDS];
    memset(slots, 0, sizeof slots);
    submit_async(log, slots, 3);
    close_log(log);
    for (uint32_t i = 0; i < ASYNC_APPENDS; i++) {
        ck_assert_uint_eq(slots[i].calls, 1);
        ck_assert_int_eq(slots[i].status, 0);
    }
    log = open_dir(SEG_MEDIUM, true);
    ck_assert_uint_eq(head_of(log), ASYNC_APPENDS);
    close_log(log);
}
END_TEST

START_TEST(appends_over_pending_bytes_max_are_busy_until_written) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEG_MEDIUM, true);
    cfg.pending_bytes_max = 64 * 1024;
    log_t *log = open_cfg(&cfg);
    static uint8_t data[8192];
    tu_fill(data, sizeof data, 8192, false); /* incompressible: 8 KiB each on disk */
    static async_slot_t slots[64];
    memset(slots, 0, sizeof slots);
    uint32_t accepted = 0;
    int rc = 0;
    for (uint32_t i = 0; i < 64; i++) {
        log_event_in_t ev = {.type = "B", .type_len = 1, .data = data, .data_len = sizeof data};
        tu_id(ev.id, 9, i);
        log_stream_append_t sa = {.stream = "busy-1",
                                  .stream_len = 6,
                                  .expected_version = LOG_EXPECT_ANY,
                                  .events = &ev,
                                  .event_count = 1};
        log_append_t req = {.streams = &sa, .stream_count = 1};
        log_append_result_t failure;
        rc = log_append(log, &req, async_cb, &slots[i], &failure);
        if (rc != 0) {
            ck_assert_int_eq(failure.status, LOG_EBUSY);
            break;
        }
        accepted++;
    }
    ck_assert_int_eq(rc, LOG_EBUSY);
    ck_assert_uint_ge(accepted, 1);
    ck_assert_uint_le(accepted, 8);
    ck_assert_int_eq(log_drain(log), 0);
    for (uint32_t i = 0; i < accepted; i++) ck_assert_uint_eq(slots[i].calls, 1);
    ck_assert_uint_eq(slots[accepted].calls, 0);
    ck_assert_uint_eq(head_of(log), accepted);
    /* once written, appends are accepted again */
    log_append_result_t res;
    ck_assert_int_eq(tu_append_simple(log, "busy-1", LOG_EXPECT_ANY, 10, 1, &res), 0);
    close_log(log);
}
END_TEST

START_TEST(strerror_names_every_engine_error) {
    int codes[] = {LOG_EWRONG_VERSION,
                   LOG_EIDEMPOTENCY,
                   LOG_EBAD_REQUEST,
                   LOG_ETOO_LARGE,
                   LOG_EBUSY,
                   LOG_ECORRUPT,
                   LOG_ELOCKED,
                   LOG_EFORMAT,
                   LOG_ENOT_FOUND,
                   LOG_ECLOSING,
                   -EIO,
                   -ENOSPC};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = log_strerror(codes[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 0);
        for (size_t j = 0; j < i; j++) ck_assert_str_ne(s, log_strerror(codes[j]));
    }
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *basic_suite(void) {
    Suite *s = suite_create("log_basic");
    struct {
        const char *name;
        const TTest *tests[16];
    } groups[] = {
        {"open",
         {an_empty_log_opens_reads_nothing_and_closes, log_close_of_null_is_a_no_op,
          log_open_creates_a_missing_directory, strerror_names_every_engine_error}},
        {"append",
         {an_appended_event_reads_back_with_every_field,
          a_zero_timestamp_becomes_the_time_of_the_append, empty_metadata_and_data_read_back_empty,
          versions_count_from_zero_within_each_stream,
          a_multi_stream_batch_takes_positions_in_request_order}},
        {"expected_version",
         {expect_any_appends_at_whatever_version, expect_no_stream_succeeds_on_a_new_stream,
          expect_no_stream_on_an_existing_stream_is_wrong_version,
          expect_stream_exists_on_a_missing_stream_is_wrong_version,
          expect_stream_exists_on_an_existing_stream_appends,
          exact_expected_version_that_matches_appends,
          exact_expected_version_that_differs_is_wrong_version_with_actual,
          a_wrong_version_in_one_stream_fails_the_whole_batch}},
        {"idempotency",
         {a_retry_at_the_same_expected_version_returns_the_original_result,
          an_immediate_retry_of_a_new_stream_is_idempotent,
          a_retry_with_expect_any_of_the_last_events_is_idempotent,
          a_retry_with_expect_any_is_recognised_beyond_the_stream_scan_by_the_window,
          the_idempotency_window_survives_reopening_the_log, a_retry_survives_reopening_the_log,
          a_retry_whose_later_ids_differ_is_an_idempotency_error}},
        {"bad_request",
         {an_empty_stream_name_is_a_bad_request,
          a_stream_name_starting_with_dollar_is_a_bad_request,
          a_stream_with_zero_events_is_a_bad_request, an_append_of_zero_streams_is_a_bad_request,
          the_same_stream_twice_in_one_append_is_a_bad_request,
          an_empty_event_type_is_a_bad_request, an_event_over_event_bytes_max_is_too_large,
          a_batch_over_batch_events_max_is_too_large, a_batch_over_write_bytes_max_is_too_large,
          a_batch_larger_than_a_segment_is_too_large,
          names_and_types_at_their_length_limits_are_accepted_and_over_them_refused}},
        {"read",
         {a_forward_stream_read_starts_at_a_version_and_stops_at_max_count,
          a_backward_stream_read_from_the_end_returns_the_newest_first,
          reading_a_missing_stream_is_not_found,
          a_category_read_returns_its_streams_in_position_order,
          a_category_read_from_a_position_starts_there, all_reads_every_event_from_a_position}},
        {"filter",
         {a_type_list_filters_a_stream_read, a_type_prefix_filters_a_category_read,
          a_filter_keeps_types_in_the_list_or_with_the_prefix_on_all,
          a_filtered_read_counts_only_delivered_events_against_max_count}},
        {"segments",
         {segments_roll_and_read_back_with_prepared_segments,
          segments_roll_and_read_back_without_prepared_segments,
          segment_files_are_named_after_their_first_position,
          reopening_keeps_stream_versions_and_the_head_position,
          streams_each_visits_every_stream_but_no_category}},
        {"compression",
         {compressed_batches_read_back_identical,
          incompressible_data_reads_back_identical_with_compression_on}},
        {"durability",
         {durability_parse_accepts_the_documented_names, durability_parse_rejects_other_text,
          durability_names_round_trip, durability_always_syncs_before_each_acknowledgement,
          durability_none_acknowledges_without_fdatasync,
          durability_interval_syncs_at_most_once_per_interval,
          durability_interval_syncs_what_was_written_within_a_bounded_time,
          every_durability_mode_appends_and_reopens}},
        {"locking",
         {a_second_open_of_an_open_log_is_locked_out,
          a_read_only_open_reads_while_the_writer_holds_the_lock}},
        {"async",
         {async_appends_complete_once_each_in_order_sharing_fdatasyncs,
          log_poll_reports_the_completions_it_ran, close_completes_every_accepted_append,
          appends_over_pending_bytes_max_are_busy_until_written}},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
        tcase_set_timeout(tc, 60);
        for (size_t t = 0; t < 16 && groups[g].tests[t] != NULL; t++)
            tcase_add_test(tc, groups[g].tests[t]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void) {
    if (tu_root_make("basic") == NULL) {
        perror("tu_root_make");
        return 2;
    }
    SRunner *sr = srunner_create(basic_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_root_remove();
    return failed == 0 ? 0 : 1;
}
