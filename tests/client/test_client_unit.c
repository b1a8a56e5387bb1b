/* test_client_unit.c -- libevstore on its own: ids, error names, option
 * checks, and its behaviour against a scripted fake server (answers out of
 * order, timeouts, a server that closes or sends garbage, the in-flight
 * limit, callbacks). No evstored needed. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evstore.h"
#include "fake_server.h"
#include "util.h"

static evs_conn_t *connect_fake(const fake_server_t *f, int io_timeout_ms, uint32_t inflight_max)
{
    evs_options_t o;
    evs_options_default(&o);
    o.port = f->port;
    o.client_name = "unit";
    o.connect_timeout_ms = 2000;
    o.io_timeout_ms = io_timeout_ms;
    o.inflight_max = inflight_max;
    o.retry_ms_max = 0; /* a fake server's failures are what these tests judge */
    evs_conn_t *conn = NULL;
    int err = evs_connect(&o, &conn);
    ck_assert_msg(err == 0, "connect: %s (%s)", evs_strerror(err), evs_errmsg());
    return conn;
}

/* One single-event append to "s-1". */
typedef struct {
    evs_event_t ev;
    evs_stream_append_t sa;
} one_append_t;

static void one_append_init(one_append_t *a, size_t data_len)
{
    static char data[2u << 20];
    memset(a, 0, sizeof *a);
    evs_id_random(a->ev.id);
    a->ev.type = "t";
    a->ev.data = data;
    a->ev.data_len = data_len;
    a->sa.stream = "s-1";
    a->sa.expected_version = EVS_EXPECT_ANY;
    a->sa.events = &a->ev;
    a->sa.event_count = 1;
}

typedef struct {
    atomic_int calls;
    atomic_int last_status;
    atomic_int deadlock_seen;
    evs_conn_t *conn;
} cb_state_t;

static void count_cb(void *ctx, int status, const evs_append_result_t *res)
{
    cb_state_t *st = ctx;
    ck_assert_ptr_nonnull(res);
    atomic_store(&st->last_status, status);
    atomic_fetch_add(&st->calls, 1);
}

/* ---- ids and errors ---- */

START_TEST(id_random_is_uuid_v4_and_unique)
{
    uint8_t a[16], b[16];
    ck_assert_int_eq(evs_id_random(a), 0);
    ck_assert_int_eq(evs_id_random(b), 0);
    ck_assert(memcmp(a, b, 16) != 0);
    ck_assert_int_eq(a[6] >> 4, 4);
    ck_assert_int_eq(a[8] >> 6, 2);
}
END_TEST

START_TEST(id_text_round_trips)
{
    uint8_t id[16], back[16];
    char text[EVS_ID_TEXT_BYTES];
    evs_id_random(id);
    evs_id_format(id, text);
    ck_assert_int_eq(strlen(text), 36);
    ck_assert_int_eq(evs_id_parse(text, back), 0);
    ck_assert_mem_eq(id, back, 16);
    ck_assert_int_eq(evs_id_parse("00112233445566778899AABBCCDDEEFF", back), 0);
    ck_assert_int_eq(back[15], 0xff);
}
END_TEST

START_TEST(id_parse_rejects_bad_text)
{
    uint8_t id[16];
    ck_assert_int_eq(evs_id_parse("", id), -EINVAL);
    ck_assert_int_eq(evs_id_parse("0011", id), -EINVAL);
    ck_assert_int_eq(evs_id_parse("00112233445566778899aabbccddeeff00", id), -EINVAL);
    ck_assert_int_eq(evs_id_parse("0011223344556677889-9aabbccddeeff", id), -EINVAL);
    ck_assert_int_eq(evs_id_parse("zz112233445566778899aabbccddeeff", id), -EINVAL);
    ck_assert_int_eq(evs_id_parse(NULL, id), -EINVAL);
}
END_TEST

START_TEST(strerror_names_every_code)
{
    static const int codes[] = {
        EVS_EWRONG_VERSION, EVS_ESTREAM_NOT_FOUND, EVS_EBAD_REQUEST, EVS_EFRAME_TOO_LARGE,
        EVS_EBUSY,          EVS_ENOT_READY,        EVS_EPROTOCOL_VERSION, EVS_EIDEMPOTENCY,
        EVS_ETOO_LARGE,     EVS_ECORRUPT,          EVS_EIO,         EVS_EACCESS,
        EVS_EINTERNAL,      EVS_ESERVER,           EVS_ECLOSED,     EVS_ETIMEDOUT,
        EVS_EPROTOCOL,      EVS_ERESOLVE,          EVS_EDEADLOCK,   EVS_EINFLIGHT,
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = evs_strerror(codes[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_ne(s, "unknown error");
        for (size_t k = 0; k < i; k++)
            ck_assert_str_ne(s, evs_strerror(codes[k]));
        ck_assert_int_eq(evs_is_server_error(codes[i]), i < 14);
    }
    ck_assert_str_eq(evs_strerror(0), "success");
    ck_assert_str_eq(evs_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
    ck_assert_str_eq(evs_strerror(-39999), "unknown error");
}
END_TEST

START_TEST(connect_rejects_bad_options)
{
    evs_options_t o;
    evs_conn_t *conn = NULL;
    evs_options_default(&o);
    o.inflight_max = 0;
    ck_assert_int_eq(evs_connect(&o, &conn), -EINVAL);
    ck_assert(strstr(evs_errmsg(), "inflight_max") != NULL);
    evs_options_default(&o);
    o.io_timeout_ms = 0;
    ck_assert_int_eq(evs_connect(&o, &conn), -EINVAL);
    ck_assert_ptr_null(conn);
}
END_TEST

START_TEST(connect_refused_names_the_address)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd); /* nobody listens there now */
    evs_options_t o;
    evs_options_default(&o);
    o.port = ntohs(a.sin_port);
    evs_conn_t *conn = NULL;
    ck_assert_int_eq(evs_connect(&o, &conn), -ECONNREFUSED);
    ck_assert(strstr(evs_errmsg(), "127.0.0.1") != NULL);
}
END_TEST

/* ---- handshake ---- */

START_TEST(old_server_version_is_refused)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_OLD_VERSION, 0), 0);
    evs_options_t o;
    evs_options_default(&o);
    o.port = f.port;
    evs_conn_t *conn = NULL;
    ck_assert_int_eq(evs_connect(&o, &conn), EVS_EPROTOCOL_VERSION);
    ck_assert_str_eq(evs_errmsg(), "fake speaks protocol 99");
    fake_server_stop(&f);
}
END_TEST

START_TEST(mute_server_times_out_the_handshake)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_MUTE_HELLO, 0), 0);
    evs_options_t o;
    evs_options_default(&o);
    o.port = f.port;
    o.connect_timeout_ms = 300;
    evs_conn_t *conn = NULL;
    uint64_t start_ms = util_mono_ms();
    ck_assert_int_eq(evs_connect(&o, &conn), EVS_ETIMEDOUT);
    ck_assert_int_lt((int64_t)(util_mono_ms() - start_ms), 2000);
    fake_server_stop(&f);
}
END_TEST

START_TEST(server_info_comes_from_hello_ok)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_ANSWER, 0), 0);
    evs_conn_t *conn = connect_fake(&f, 2000, 16);
    evs_server_info_t info;
    evs_server_info(conn, &info);
    ck_assert_str_eq(info.server_version, "fake");
    ck_assert_uint_eq(info.frame_bytes_max, 1u << 20);
    ck_assert_uint_eq(info.read_events_max, 1000);
    ck_assert_int_eq(evs_conn_error(conn), 0);
    evs_close(conn);
    fake_server_stop(&f);
}
END_TEST

/* ---- requests ---- */

/* The longest a test waits for a callback that a timer must fire. */
#define CALLBACK_MS_MAX 30000
#define REVERSE_THREADS 8

static void *ping_thread(void *arg)
{
    evs_conn_t *conn = arg;
    uint64_t rtt = 0;
    return (void *)(intptr_t)evs_ping(conn, &rtt);
}

START_TEST(answers_out_of_order_reach_their_callers)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_REVERSE, REVERSE_THREADS), 0);
    evs_conn_t *conn = connect_fake(&f, 5000, 64);
    pthread_t t[REVERSE_THREADS];
    for (int i = 0; i < REVERSE_THREADS; i++)
        pthread_create(&t[i], NULL, ping_thread, conn);
    for (int i = 0; i < REVERSE_THREADS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        ck_assert_int_eq((int)(intptr_t)rc, 0); /* the Pong's nonce matched */
    }
    evs_close(conn);
    fake_server_stop(&f);
}
END_TEST

START_TEST(async_appends_complete_out_of_order_once_each)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_REVERSE, 50), 0);
    evs_conn_t *conn = connect_fake(&f, 5000, 64);
    cb_state_t st = { 0 };
    for (int i = 0; i < 50; i++) {
        one_append_t a;
        one_append_init(&a, 10);
        ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, count_cb, &st), 0);
    }
    ck_assert_int_eq(evs_flush(conn, 5000), 0);
    ck_assert_int_eq(atomic_load(&st.calls), 50);
    ck_assert_int_eq(atomic_load(&st.last_status), 0);
    evs_close(conn);
    fake_server_stop(&f);
}
END_TEST

START_TEST(blocking_call_times_out_and_connection_stays_usable)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_REVERSE, 2), 0);
    evs_conn_t *conn = connect_fake(&f, 200, 16);
    ck_assert_int_eq(evs_ping(conn, NULL), EVS_ETIMEDOUT);
    /* The second ping releases both answers: the late one is dropped. */
    ck_assert_int_eq(evs_ping(conn, NULL), 0);
    ck_assert_int_eq(evs_conn_error(conn), 0);
    evs_close(conn);
    fake_server_stop(&f);
}
END_TEST

START_TEST(async_append_times_out_exactly_once)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_SILENT, 0), 0);
    evs_conn_t *conn = connect_fake(&f, 200, 16);
    cb_state_t st = { 0 };
    one_append_t a;
    one_append_init(&a, 10);
    ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, count_cb, &st), 0);
    /* The 200 ms timeout fires on the library's thread: wait for it, bounded,
     * as a loaded machine can delay it by seconds. */
    for (int waited_ms = 0; atomic_load(&st.calls) == 0 && waited_ms < CALLBACK_MS_MAX;
         waited_ms += 10)
        usleep(10 * 1000);
    ck_assert_int_eq(atomic_load(&st.calls), 1);
    ck_assert_int_eq(atomic_load(&st.last_status), EVS_ETIMEDOUT);
    evs_close(conn);
    ck_assert_int_eq(atomic_load(&st.calls), 1);
    fake_server_stop(&f);
}
END_TEST

START_TEST(inflight_limit_blocks_then_times_out)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_SILENT, 0), 0);
    evs_conn_t *conn = connect_fake(&f, 300, 2);
    cb_state_t st = { 0 };
    one_append_t a;
    one_append_init(&a, 10);
    ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, count_cb, &st), 0);
    ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, count_cb, &st), 0);
    uint64_t start_ms = util_mono_ms();
    ck_assert_int_eq(evs_ping(conn, NULL), EVS_ETIMEDOUT);
    ck_assert_int_ge((int64_t)(util_mono_ms() - start_ms), 250);
    evs_close(conn);
    ck_assert_int_eq(atomic_load(&st.calls), 2);
    fake_server_stop(&f);
}
END_TEST

START_TEST(server_closing_fails_requests_in_flight)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_CLOSE, 3), 0);
    evs_conn_t *conn = connect_fake(&f, 5000, 16);
    cb_state_t st = { 0 };
    one_append_t a;
    one_append_init(&a, 10);
    ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, count_cb, &st), 0);
    ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, count_cb, &st), 0);
    ck_assert_int_eq(evs_ping(conn, NULL), EVS_ECLOSED);
    ck_assert(strstr(evs_errmsg(), "closed") != NULL);
    ck_assert_int_eq(evs_flush(conn, 2000), EVS_ECLOSED);
    ck_assert_int_eq(atomic_load(&st.calls), 2);
    ck_assert_int_eq(atomic_load(&st.last_status), EVS_ECLOSED);
    ck_assert_int_eq(evs_conn_error(conn), EVS_ECLOSED);
    ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, count_cb, &st), EVS_ECLOSED);
    evs_close(conn);
    ck_assert_int_eq(atomic_load(&st.calls), 2);
    fake_server_stop(&f);
}
END_TEST

START_TEST(garbage_from_server_is_a_protocol_error)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_GARBAGE, 0), 0);
    evs_conn_t *conn = connect_fake(&f, 2000, 16);
    ck_assert_int_eq(evs_ping(conn, NULL), EVS_EPROTOCOL);
    ck_assert_int_eq(evs_conn_error(conn), EVS_EPROTOCOL);
    evs_close(conn);
    fake_server_stop(&f);
}
END_TEST

START_TEST(close_runs_pending_callbacks_before_returning)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_SILENT, 0), 0);
    evs_conn_t *conn = connect_fake(&f, 10000, 16);
    cb_state_t st = { 0 };
    one_append_t a;
    one_append_init(&a, 10);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, count_cb, &st), 0);
    ck_assert_int_eq(evs_flush(conn, 100), EVS_ETIMEDOUT);
    evs_close(conn);
    ck_assert_int_eq(atomic_load(&st.calls), 5);
    ck_assert_int_eq(atomic_load(&st.last_status), EVS_ECLOSED);
    fake_server_stop(&f);
}
END_TEST

static void deadlock_cb(void *ctx, int status, const evs_append_result_t *res)
{
    cb_state_t *st = ctx;
    (void)res;
    if (evs_ping(st->conn, NULL) == EVS_EDEADLOCK && evs_flush(st->conn, 0) == EVS_EDEADLOCK)
        atomic_store(&st->deadlock_seen, 1);
    atomic_store(&st->last_status, status);
    atomic_fetch_add(&st->calls, 1);
}

START_TEST(blocking_call_from_callback_is_refused)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_ANSWER, 0), 0);
    evs_conn_t *conn = connect_fake(&f, 2000, 16);
    cb_state_t st = { .conn = conn };
    one_append_t a;
    one_append_init(&a, 10);
    ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, deadlock_cb, &st), 0);
    ck_assert_int_eq(evs_flush(conn, 2000), 0);
    ck_assert_int_eq(atomic_load(&st.calls), 1);
    ck_assert_int_eq(atomic_load(&st.deadlock_seen), 1);
    evs_close(conn);
    fake_server_stop(&f);
}
END_TEST

START_TEST(frame_over_server_limit_is_refused_before_sending)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_ANSWER, 0), 0);
    evs_conn_t *conn = connect_fake(&f, 2000, 16);
    one_append_t a;
    one_append_init(&a, (1u << 20) + 1);
    evs_append_result_t res;
    ck_assert_int_eq(evs_append(conn, &a.sa, 1, &res), EVS_ETOO_LARGE);
    ck_assert(strstr(res.message, "frame limit") != NULL);
    ck_assert_int_eq(evs_ping(conn, NULL), 0);
    ck_assert_int_eq(f.requests, 1);
    evs_close(conn);
    fake_server_stop(&f);
}
END_TEST

START_TEST(bad_append_arguments_are_einval)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_ANSWER, 0), 0);
    evs_conn_t *conn = connect_fake(&f, 2000, 16);
    one_append_t a;
    one_append_init(&a, 10);
    cb_state_t st = { 0 };
    ck_assert_int_eq(evs_append(conn, &a.sa, 0, NULL), -EINVAL);
    ck_assert_int_eq(evs_append(conn, NULL, 1, NULL), -EINVAL);
    ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, NULL, NULL), -EINVAL);
    a.ev.type = "";
    ck_assert_int_eq(evs_append_async(conn, &a.sa, 1, count_cb, &st), -EINVAL);
    a.ev.type = "t";
    a.ev.data = NULL;
    ck_assert_int_eq(evs_append(conn, &a.sa, 1, NULL), -EINVAL);
    a.sa.stream = "";
    ck_assert_int_eq(evs_append(conn, &a.sa, 1, NULL), -EINVAL);
    evs_read_result_t rr;
    evs_read_t req = { 0 };
    ck_assert_int_eq(evs_read(conn, &req, &rr), -EINVAL);
    evs_read_result_free(&rr);
    evs_stream_info_t si;
    ck_assert_int_eq(evs_stream_info(conn, "", &si), -EINVAL);
    ck_assert_int_eq(f.requests, 0);
    ck_assert_int_eq(atomic_load(&st.calls), 0);
    evs_close(conn);
    fake_server_stop(&f);
}
END_TEST

START_TEST(server_error_answer_has_its_code_and_message)
{
    fake_server_t f;
    ck_assert_int_eq(fake_server_start(&f, FAKE_ANSWER, 0), 0);
    evs_conn_t *conn = connect_fake(&f, 2000, 16);
    evs_server_stats_t stats;
    ck_assert_int_eq(evs_server_stats(conn, &stats), EVS_EBAD_REQUEST);
    ck_assert_str_eq(evs_errmsg(), "fake: not supported");
    evs_close(conn);
    fake_server_stop(&f);
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("client_unit");
    TCase *tc = tcase_create("offline");
    tcase_add_test(tc, id_random_is_uuid_v4_and_unique);
    tcase_add_test(tc, id_text_round_trips);
    tcase_add_test(tc, id_parse_rejects_bad_text);
    tcase_add_test(tc, strerror_names_every_code);
    tcase_add_test(tc, connect_rejects_bad_options);
    tcase_add_test(tc, connect_refused_names_the_address);
    suite_add_tcase(s, tc);
    tc = tcase_create("fake_server");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, old_server_version_is_refused);
    tcase_add_test(tc, mute_server_times_out_the_handshake);
    tcase_add_test(tc, server_info_comes_from_hello_ok);
    tcase_add_test(tc, answers_out_of_order_reach_their_callers);
    tcase_add_test(tc, async_appends_complete_out_of_order_once_each);
    tcase_add_test(tc, blocking_call_times_out_and_connection_stays_usable);
    tcase_add_test(tc, async_append_times_out_exactly_once);
    tcase_add_test(tc, inflight_limit_blocks_then_times_out);
    tcase_add_test(tc, server_closing_fails_requests_in_flight);
    tcase_add_test(tc, garbage_from_server_is_a_protocol_error);
    tcase_add_test(tc, close_runs_pending_callbacks_before_returning);
    tcase_add_test(tc, blocking_call_from_callback_is_refused);
    tcase_add_test(tc, frame_over_server_limit_is_refused_before_sending);
    tcase_add_test(tc, bad_append_arguments_are_einval);
    tcase_add_test(tc, server_error_answer_has_its_code_and_message);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(unit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
