/* test_client_threads.c -- one connection shared by many threads: pipelined
 * async appends (every callback runs exactly once, every position is given
 * once), mixed with blocking calls, with a small in-flight limit too. */
#include <pthread.h>
#include <stdatomic.h>

#include "client_test.h"

test_server_t g_server;

#define THREADS 8
#define APPENDS_PER_THREAD 400
#define EVENTS_PER_APPEND_MAX 3

/* One async append's record, written by its callback. */
typedef struct {
    atomic_int calls;
    int status;
    uint64_t first_position;
    uint32_t event_count;
} record_t;

typedef struct {
    evs_conn_t *conn;
    char stream[64];
    record_t records[APPENDS_PER_THREAD];
    int send_errors;
    int blocking_errors;
} worker_t;

static void record_cb(void *ctx, int status, const evs_append_result_t *res)
{
    record_t *r = ctx;
    r->status = status;
    r->first_position = res->first_position;
    r->event_count = res->event_count;
    atomic_fetch_add(&r->calls, 1);
}

/* Sends APPENDS_PER_THREAD async appends of 1..3 events; every 50th
 * append, a blocking ping and stream info in between. */
static void *worker_main(void *arg)
{
    worker_t *w = arg;
    static const char payload[256] = { 'p' };
    for (int i = 0; i < APPENDS_PER_THREAD; i++) {
        evs_event_t ev[EVENTS_PER_APPEND_MAX] = { 0 };
        size_t n = (size_t)(i % EVENTS_PER_APPEND_MAX) + 1;
        for (size_t k = 0; k < n; k++) {
            evs_id_random(ev[k].id);
            ev[k].type = "Pipelined";
            ev[k].data = payload;
            ev[k].data_len = sizeof payload;
        }
        evs_stream_append_t sa = { .stream = w->stream, .expected_version = EVS_EXPECT_ANY,
                                   .events = ev, .event_count = n };
        if (evs_append_async(w->conn, &sa, 1, record_cb, &w->records[i]) != 0)
            w->send_errors++;
        if (i % 50 == 0) {
            evs_stream_info_t info;
            if (evs_ping(w->conn, NULL) || evs_stream_info(w->conn, w->stream, &info))
                w->blocking_errors++;
        }
    }
    return NULL;
}

static int range_cmp(const void *a, const void *b)
{
    const record_t *x = *(record_t *const *)a, *y = *(record_t *const *)b;
    return x->first_position < y->first_position ? -1 : x->first_position > y->first_position;
}

/* Every callback ran once with success; the position ranges do not overlap. */
static void check_records(worker_t *w)
{
    static record_t *all[THREADS * APPENDS_PER_THREAD];
    size_t n = 0;
    for (int t = 0; t < THREADS; t++) {
        ck_assert_int_eq(w[t].send_errors, 0);
        ck_assert_int_eq(w[t].blocking_errors, 0);
        for (int i = 0; i < APPENDS_PER_THREAD; i++) {
            record_t *r = &w[t].records[i];
            ck_assert_int_eq(atomic_load(&r->calls), 1);
            ck_assert_msg(r->status == 0, "append failed: %s", evs_strerror(r->status));
            ck_assert_uint_eq(r->event_count, (unsigned)(i % EVENTS_PER_APPEND_MAX) + 1);
            all[n++] = r;
        }
    }
    qsort(all, n, sizeof all[0], range_cmp);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_ge(all[i]->first_position,
                          all[i - 1]->first_position + all[i - 1]->event_count);
}

/* Each thread's stream holds exactly the events it appended. */
static void check_streams(evs_conn_t *conn, worker_t *w)
{
    size_t per_thread = 0;
    for (int i = 0; i < APPENDS_PER_THREAD; i++)
        per_thread += (size_t)(i % EVENTS_PER_APPEND_MAX) + 1;
    for (int t = 0; t < THREADS; t++) {
        evs_stream_info_t info;
        ck_evs(evs_stream_info(conn, w[t].stream, &info));
        ck_assert_int_eq(info.version, (int64_t)per_thread - 1);
    }
}

static void run_pipelined(uint32_t inflight_max)
{
    evs_conn_t *conn = test_connect(inflight_max);
    static worker_t w[THREADS];
    pthread_t t[THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].conn = conn;
        uniq("pipe-", w[i].stream);
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    ck_evs(evs_flush(conn, 60000));
    check_records(w);
    check_streams(conn, w);
    evs_close(conn);
}

START_TEST(pipelined_appends_from_many_threads_complete_once_each)
{
    run_pipelined(0);
}
END_TEST

START_TEST(a_small_inflight_limit_makes_senders_wait_not_fail)
{
    run_pipelined(4);
}
END_TEST

typedef struct {
    evs_conn_t *conn;
    char stream[64];
    atomic_int done;
    atomic_int failed;
    int chain_max;
} chain_t;

/* From the callback (the reader thread), sends the next append of the
 * chain: async calls are allowed there. */
static void chain_cb(void *ctx, int status, const evs_append_result_t *res)
{
    chain_t *c = ctx;
    (void)res;
    if (status) {
        atomic_fetch_add(&c->failed, 1);
        return;
    }
    int n = atomic_fetch_add(&c->done, 1) + 1;
    if (n >= c->chain_max)
        return;
    evs_event_t ev = { .type = "Chained" };
    evs_id_random(ev.id);
    evs_stream_append_t sa = { .stream = c->stream, .expected_version = n - 1,
                               .events = &ev, .event_count = 1 };
    if (evs_append_async(c->conn, &sa, 1, chain_cb, c))
        atomic_fetch_add(&c->failed, 1);
}

START_TEST(callbacks_may_send_the_next_async_append)
{
    chain_t c = { .conn = test_connect(0), .chain_max = 20 };
    uniq("chain-", c.stream);
    evs_event_t ev = { .type = "Chained" };
    evs_id_random(ev.id);
    evs_stream_append_t sa = { .stream = c.stream, .expected_version = EVS_EXPECT_NO_STREAM,
                               .events = &ev, .event_count = 1 };
    ck_evs(evs_append_async(c.conn, &sa, 1, chain_cb, &c));
    for (int i = 0; i < 1000 && atomic_load(&c.done) < c.chain_max && !atomic_load(&c.failed); i++)
        ck_evs(evs_flush(c.conn, 10000));
    ck_assert_int_eq(atomic_load(&c.failed), 0);
    ck_assert_int_eq(atomic_load(&c.done), c.chain_max);
    evs_stream_info_t info;
    ck_evs(evs_stream_info(c.conn, c.stream, &info));
    ck_assert_int_eq(info.version, c.chain_max - 1);
    evs_close(c.conn);
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("client_threads");
    TCase *tc = tcase_create("pipelining");
    tcase_add_unchecked_fixture(tc, server_setup, server_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pipelined_appends_from_many_threads_complete_once_each);
    tcase_add_test(tc, a_small_inflight_limit_makes_senders_wait_not_fail);
    tcase_add_test(tc, callbacks_may_send_the_next_async_append);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(threads_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
