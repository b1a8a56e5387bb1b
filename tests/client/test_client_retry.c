/* test_client_retry.c -- the connection policy of libevstore: which errors
 * are retryable (evs_error_retryable's table), connections that reconnect
 * by themselves after the server is killed and restarted on the same port
 * (appends from several threads each written exactly once, thanks to their
 * ids), a retry budget of 0 that fails at once, a refusal that is never
 * retried, and a subscription started before its server.
 *
 * Every wait is for a condition, with a named bound. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "client_test.h"

test_server_t g_server; /* client_test.h's; each test here runs a server of its own */

#define RETRY_BUDGET_MS 30000     /* a request rides out a restart within this */
#define APPEND_THREADS 4
#define APPENDS_PER_THREAD 40
#define PROGRESS_WAIT_MS 20000    /* for the first appends, before the kill */
#define SUB_WAIT_MS 10000         /* for one subscription item */
#define REFUSAL_BACKOFF_MS 10000  /* a retry would pause this long first */

static void own_server_start(test_server_t *srv)
{
    static const char *const args[] = { "--segment-bytes", "1048576", NULL };
    ck_assert_int_eq(test_server_start(srv, args), 0);
}

static void opts_for(evs_options_t *o, uint16_t port, int retry_ms_max)
{
    evs_options_default(o);
    o->port = port;
    o->client_name = "retry-test";
    o->connect_timeout_ms = 2000;
    o->io_timeout_ms = 10000;
    o->reconnect_backoff_ms_initial = 20;
    o->reconnect_backoff_ms_max = 500;
    o->retry_ms_max = retry_ms_max;
}

static evs_conn_t *connect_with(uint16_t port, int retry_ms_max)
{
    evs_options_t o;
    opts_for(&o, port, retry_ms_max);
    evs_conn_t *conn = NULL;
    ck_evs(evs_connect(&o, &conn));
    return conn;
}

START_TEST(retryable_errors_are_the_transient_ones)
{
    static const int yes[] = { EVS_ECLOSED, EVS_ETIMEDOUT, EVS_EPROTOCOL, EVS_ERESOLVE,
                               EVS_EBUSY, EVS_ENOT_READY, EVS_EIO, -ECONNREFUSED,
                               -ECONNRESET, -ECONNABORTED, -EPIPE, -ETIMEDOUT, -EHOSTUNREACH,
                               -ENETUNREACH, -ENOTCONN, -EAGAIN, -EINTR };
    static const int no[] = { 0, EVS_EWRONG_VERSION, EVS_ESTREAM_NOT_FOUND, EVS_EBAD_REQUEST,
                              EVS_EFRAME_TOO_LARGE, EVS_EPROTOCOL_VERSION, EVS_EIDEMPOTENCY,
                              EVS_ETOO_LARGE, EVS_ECORRUPT, EVS_EACCESS, EVS_EINTERNAL,
                              EVS_EGROUP_NOT_FOUND, EVS_EGROUP_EXISTS, EVS_ESERVER,
                              EVS_EDEADLOCK, EVS_EINFLIGHT, -EINVAL, -ENOMEM, -EBADMSG,
                              -ENAMETOOLONG };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert_msg(evs_error_retryable(yes[i]), "%d (%s)", yes[i], evs_strerror(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        ck_assert_msg(!evs_error_retryable(no[i]), "%d (%s)", no[i], evs_strerror(no[i]));
}
END_TEST

typedef struct {
    evs_conn_t *conn;
    const char *stream;
    uint8_t ids[APPENDS_PER_THREAD][EVS_ID_BYTES];
    int rc[APPENDS_PER_THREAD];
    atomic_int *done;
    atomic_int *gate;       /* after its first append a thread waits until this is 1 */
    pthread_t thread;
} appender_t;

static void *appender_main(void *arg)
{
    appender_t *a = arg;
    for (int i = 0; i < APPENDS_PER_THREAD; i++) {
        evs_event_t ev = { .type = "Retried", .data = "x", .data_len = 1 };
        evs_id_random(a->ids[i]);
        memcpy(ev.id, a->ids[i], EVS_ID_BYTES);
        evs_stream_append_t sa = { .stream = a->stream, .expected_version = EVS_EXPECT_ANY,
                                   .events = &ev, .event_count = 1 };
        a->rc[i] = evs_append(a->conn, &sa, 1, NULL);
        atomic_fetch_add(a->done, 1);
        while (i == 0 && !atomic_load(a->gate))
            util_sleep_ms(1);
    }
    return NULL;
}

/* Reads the whole stream into ids (count at most cap); returns the count. */
static size_t stream_ids(evs_conn_t *conn, const char *stream, uint8_t (*ids)[EVS_ID_BYTES],
                         size_t cap)
{
    size_t n = 0;
    evs_read_t req = { .stream = stream };
    for (;;) {
        evs_read_result_t res;
        ck_evs(evs_read(conn, &req, &res));
        for (size_t i = 0; i < res.count; i++, n++) {
            ck_assert_uint_lt(n, cap);
            memcpy(ids[n], res.events[i].id, EVS_ID_BYTES);
        }
        bool end = res.end;
        req.from = res.next;
        evs_read_result_free(&res);
        if (end)
            return n;
    }
}

START_TEST(appends_from_many_threads_survive_a_kill_and_are_written_once)
{
    test_server_t srv;
    own_server_start(&srv);
    evs_conn_t *conn = connect_with(srv.port, RETRY_BUDGET_MS);
    char name[64];
    uniq("retry-", name);
    atomic_int done = 0, gate = 0;
    static appender_t a[APPEND_THREADS];
    for (int t = 0; t < APPEND_THREADS; t++) {
        a[t] = (appender_t){ .conn = conn, .stream = name, .done = &done, .gate = &gate };
        ck_assert_int_eq(pthread_create(&a[t].thread, NULL, appender_main, &a[t]), 0);
    }
    uint64_t until = util_mono_ms() + PROGRESS_WAIT_MS;
    while (atomic_load(&done) < APPEND_THREADS && util_mono_ms() < until)
        util_sleep_ms(1);
    /* Each thread has made its first append and waits: the other appends
     * are all made while the server is down, or once it is back. */
    ck_assert_int_eq(atomic_load(&done), APPEND_THREADS);
    test_server_kill(&srv);
    atomic_store(&gate, 1);
    ck_assert_int_eq(test_server_restart_same_port(&srv), 0);
    for (int t = 0; t < APPEND_THREADS; t++)
        pthread_join(a[t].thread, NULL);
    for (int t = 0; t < APPEND_THREADS; t++)
        for (int i = 0; i < APPENDS_PER_THREAD; i++)
            ck_assert_msg(a[t].rc[i] == 0, "thread %d append %d: %s", t, i,
                          evs_strerror(a[t].rc[i]));
    enum { TOTAL = APPEND_THREADS * APPENDS_PER_THREAD };
    static uint8_t got[TOTAL + 1][EVS_ID_BYTES];
    ck_assert_uint_eq(stream_ids(conn, name, got, TOTAL + 1), TOTAL);
    for (int t = 0; t < APPEND_THREADS; t++)
        for (int i = 0; i < APPENDS_PER_THREAD; i++) {
            int seen = 0;
            for (size_t k = 0; k < TOTAL; k++)
                seen += memcmp(got[k], a[t].ids[i], EVS_ID_BYTES) == 0;
            ck_assert_int_eq(seen, 1);
        }
    evs_close(conn);
    test_server_destroy(&srv);
}
END_TEST

START_TEST(a_budget_of_zero_fails_at_once_with_a_retryable_error)
{
    test_server_t srv;
    own_server_start(&srv);
    evs_conn_t *conn = connect_with(srv.port, 0);
    ck_evs(evs_ping(conn, NULL));
    test_server_kill(&srv);
    int rc = evs_ping(conn, NULL);
    ck_assert_msg(rc != 0 && evs_error_retryable(rc), "%s", evs_strerror(rc));
    ck_assert_int_eq(test_server_restart_same_port(&srv), 0);
    rc = evs_ping(conn, NULL); /* no budget: the failed connection stays failed */
    ck_assert_msg(rc != 0 && evs_error_retryable(rc), "%s", evs_strerror(rc));
    ck_assert_int_ne(evs_conn_error(conn), 0);
    evs_close(conn);
    test_server_destroy(&srv);
}
END_TEST

START_TEST(a_refusal_is_returned_without_a_retry)
{
    test_server_t srv;
    own_server_start(&srv);
    evs_options_t o;
    opts_for(&o, srv.port, RETRY_BUDGET_MS);
    o.reconnect_backoff_ms_initial = o.reconnect_backoff_ms_max = REFUSAL_BACKOFF_MS;
    evs_conn_t *conn = NULL;
    ck_evs(evs_connect(&o, &conn));
    char name[64];
    uniq("refused-", name);
    evs_event_t ev = { .type = "T" };
    evs_id_random(ev.id);
    evs_stream_append_t sa = { .stream = name, .expected_version = 5, .events = &ev,
                               .event_count = 1 };
    evs_append_result_t res;
    uint64_t start = util_mono_ms();
    ck_assert_int_eq(evs_append(conn, &sa, 1, &res), EVS_EWRONG_VERSION);
    ck_assert_uint_lt(util_mono_ms() - start, REFUSAL_BACKOFF_MS); /* no pause, no retry */
    ck_assert_int_eq(res.actual_version, EVS_VERSION_NONE);
    evs_server_stats_t st;
    ck_evs(evs_server_stats(conn, &st));
    ck_assert_uint_eq(st.appends, 0); /* nothing was written by it either */
    evs_close(conn);
    test_server_destroy(&srv);
}
END_TEST

typedef struct {
    evs_options_t o;
    evs_subscribe_t req;
    evs_sub_t *sub;
    int rc;
} early_sub_t;

static void *early_sub_main(void *arg)
{
    early_sub_t *e = arg;
    e->rc = evs_subscribe(&e->o, &e->req, &e->sub);
    return NULL;
}

START_TEST(a_subscription_started_before_its_server_gets_its_events)
{
    test_server_t srv;
    own_server_start(&srv);
    test_server_kill(&srv); /* its port is known; nothing listens there now */
    char name[64];
    uniq("early-", name);
    early_sub_t e = { .req = { .stream = name } };
    opts_for(&e.o, srv.port, RETRY_BUDGET_MS);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, early_sub_main, &e), 0);
    ck_assert_int_eq(test_server_restart_same_port(&srv), 0);
    pthread_join(th, NULL);
    ck_assert_msg(e.rc == 0, "subscribe: %s", evs_strerror(e.rc));
    evs_conn_t *conn = connect_with(srv.port, RETRY_BUDGET_MS);
    evs_event_t ev[3] = { { .type = "A" }, { .type = "B" }, { .type = "C" } };
    for (int i = 0; i < 3; i++)
        evs_id_random(ev[i].id);
    evs_stream_append_t sa = { .stream = name, .expected_version = EVS_EXPECT_ANY,
                               .events = ev, .event_count = 3 };
    ck_evs(evs_append(conn, &sa, 1, NULL));
    for (int got = 0; got < 3;) {
        evs_sub_item_t item;
        ck_evs(evs_sub_next(e.sub, SUB_WAIT_MS, &item));
        if (item.kind != EVS_SUB_EVENT)
            continue;
        ck_assert_str_eq(item.event.type, ev[got].type);
        got++;
    }
    evs_sub_close(e.sub);
    evs_close(conn);
    test_server_destroy(&srv);
}
END_TEST

static Suite *retry_suite(void)
{
    Suite *s = suite_create("client_retry");
    TCase *unit = tcase_create("policy");
    tcase_add_test(unit, retryable_errors_are_the_transient_ones);
    suite_add_tcase(s, unit);
    TCase *tc = tcase_create("reconnection");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, appends_from_many_threads_survive_a_kill_and_are_written_once);
    tcase_add_test(tc, a_budget_of_zero_fails_at_once_with_a_retryable_error);
    tcase_add_test(tc, a_refusal_is_returned_without_a_retry);
    tcase_add_test(tc, a_subscription_started_before_its_server_gets_its_events);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(retry_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
