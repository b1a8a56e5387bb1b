/* test_oms_runtime.c -- the service runtime: configuration, metrics, and a
 * service with a scripted handler on a real evstored (dispatch in order per
 * key, ack, retry, park, posts, ticks, graceful stop). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oms.h"
#include "oms.pb-c.h"
#include "oms_fixture.h"
#include "server_fixture.h"

/* ---- configuration ---- */

START_TEST(config_defaults_flags_and_environment)
{
    const char *outbox = "default.jsonl", *flag = "";
    const oms_opt_t opts[] = {
        {"outbox", "OMS_TEST_OUTBOX", "where", &outbox, false},
        {"rebuild", NULL, "a flag", &flag, true},
    };
    setenv("OMS_WORKERS", "3", 1);
    setenv("OMS_TEST_OUTBOX", "env.jsonl", 1);
    char *argv[] = {"oms-test", "--store", "10.0.0.1:9000", "--metrics=127.0.0.1:0",
                    "--rebuild", "--max-retries", "7", NULL};
    oms_config_t cfg;
    ck_assert_int_eq(oms_config_parse(&cfg, "test", 9999, 7, argv, opts, 2), 0);
    ck_assert_str_eq(cfg.store_host, "10.0.0.1");
    ck_assert_uint_eq(cfg.store_port, 9000);
    ck_assert_uint_eq(cfg.metrics_port, 0);
    ck_assert_uint_eq(cfg.workers, 3);
    ck_assert_uint_eq(cfg.max_retries, 7);
    ck_assert_uint_eq(cfg.ack_timeout_ms, OMS_ACK_TIMEOUT_MS_DEFAULT);
    ck_assert_str_eq(outbox, "env.jsonl");
    ck_assert_str_eq(flag, "1");
    unsetenv("OMS_WORKERS");
    unsetenv("OMS_TEST_OUTBOX");
    char *argv2[] = {"oms-test", NULL};
    ck_assert_int_eq(oms_config_parse(&cfg, "test", 9999, 1, argv2, NULL, 0), 0);
    ck_assert_str_eq(cfg.store_host, "127.0.0.1");
    ck_assert_uint_eq(cfg.store_port, EVS_PORT_DEFAULT);
    ck_assert_uint_eq(cfg.metrics_port, 9999);
    ck_assert_uint_eq(cfg.workers, OMS_WORKERS_DEFAULT);
}
END_TEST

START_TEST(config_given_sees_flags_in_both_forms_and_the_environment)
{
    char *argv[] = {"x", "--workers", "3", "--max-inflight=9", "--storex", "1", NULL};
    ck_assert(oms_config_given(6, argv, "workers", NULL));
    ck_assert(oms_config_given(6, argv, "max-inflight", NULL));
    ck_assert(!oms_config_given(6, argv, "store", NULL));
    ck_assert(!oms_config_given(6, argv, "tick-ms", "OMS_TEST_UNSET"));
    setenv("OMS_TEST_SET", "5", 1);
    ck_assert(oms_config_given(6, argv, "tick-ms", "OMS_TEST_SET"));
    unsetenv("OMS_TEST_SET");
}
END_TEST

START_TEST(config_rejects_bad_values)
{
    oms_config_t cfg;
    char *bad[][3] = {
        {"x", "--store", "nohost"},    {"x", "--store", "h:0"},      {"x", "--store", "h:70000"},
        {"x", "--workers", "0"},       {"x", "--workers", "1000"},   {"x", "--workers", "-1"},
        {"x", "--metrics", "h:x"},     {"x", "--nope", "1"},         {"x", "plain", "1"},
        {"x", "--max-retries", "1e3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(oms_config_parse(&cfg, "t", 1, 3, bad[i], NULL, 0) == -EINVAL, "%s %s",
                      bad[i][1], bad[i][2]);
    char *missing[] = {"x", "--store", NULL};
    ck_assert_int_eq(oms_config_parse(&cfg, "t", 1, 2, missing, NULL, 0), -EINVAL);
    char *off[] = {"x", "--metrics", "off", NULL};
    ck_assert_int_eq(oms_config_parse(&cfg, "t", 1, 3, off, NULL, 0), 0);
    ck_assert(cfg.metrics_off);
}
END_TEST

/* ---- metrics ---- */

START_TEST(metrics_render_in_prometheus_text_format)
{
    oms_metrics_t *m = oms_metrics_new("pay");
    oms_counter_t *c = oms_metrics_counter(m, "oms_x_total", "Xs", "kind=\"a\"");
    ck_assert_ptr_eq(c, oms_metrics_counter(m, "oms_x_total", "Xs", "kind=\"a\""));
    oms_counter_add(c, 3);
    oms_counter_add(oms_metrics_counter(m, "oms_x_total", "Xs", "kind=\"b\""), 1);
    oms_gauge_t *g = oms_metrics_gauge(m, "oms_g", "G", NULL);
    oms_gauge_add(g, 5);
    oms_gauge_add(g, -7);
    oms_histogram_t *h = oms_metrics_histogram(m, "oms_h_seconds", "H", NULL);
    oms_histogram_observe(h, 0.003);
    oms_histogram_observe(h, 100);
    oms_counter_add(NULL, 1); /* a missing series is harmless */
    char *text = oms_metrics_render(m);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE oms_x_total counter\n"));
    ck_assert_ptr_nonnull(strstr(text, "oms_x_total{service=\"pay\",kind=\"a\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "oms_x_total{service=\"pay\",kind=\"b\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "oms_g{service=\"pay\"} -2\n"));
    ck_assert_ptr_nonnull(strstr(text, "oms_h_seconds_bucket{service=\"pay\",le=\"0.0025\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(text, "oms_h_seconds_bucket{service=\"pay\",le=\"0.005\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "oms_h_seconds_bucket{service=\"pay\",le=\"60\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "oms_h_seconds_bucket{service=\"pay\",le=\"+Inf\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "oms_h_seconds_count{service=\"pay\"} 2\n"));
    /* one HELP/TYPE per family */
    char *first = strstr(text, "# TYPE oms_x_total");
    ck_assert_ptr_null(strstr(first + 1, "# TYPE oms_x_total"));
    free(text);
    oms_metrics_free(m);
}
END_TEST

START_TEST(metrics_refuse_series_that_would_not_render_and_repair_utf8)
{
    oms_metrics_t *m = oms_metrics_new("p\"ay\xff");
    ck_assert_ptr_null(oms_metrics_counter(m, "oms bad", "x", NULL));
    ck_assert_ptr_null(oms_metrics_counter(m, "oms_t_total", "x", "type=\"a\"b\""));
    ck_assert_ptr_null(oms_metrics_counter(m, "oms_t_total", "x", "service=\"other\""));
    ck_assert_ptr_null(oms_metrics_histogram(m, "oms_h_seconds", "x", "le=\"1\""));
    ck_assert_ptr_nonnull(oms_metrics_gauge(m, "oms_g", "x", NULL));
    ck_assert_ptr_null(oms_metrics_counter(m, "oms_g", "x", NULL)); /* a gauge already */
    oms_counter_add(oms_metrics_counter(m, "oms_t_total", "x", "type=\"a\\\"b\xfe\""), 1);
    char *text = oms_metrics_render(m);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "oms_t_total{service=\"p\\\"ay\xef\xbf\xbd\","
                               "type=\"a\\\"b\xef\xbf\xbd\"} 1\n") != NULL,
                  "%s", text);
    ck_assert_ptr_null(strstr(text, "oms bad"));
    free(text);
    oms_metrics_free(m);
}
END_TEST

START_TEST(ids_are_deterministic_per_order_and_step)
{
    uint8_t a[EVS_ID_BYTES], b[EVS_ID_BYTES], c[EVS_ID_BYTES];
    oms_event_id(a, "o1", "charge");
    oms_event_id(b, "o1", "charge");
    oms_event_id(c, "o1", "refund");
    ck_assert_mem_eq(a, b, EVS_ID_BYTES);
    ck_assert(memcmp(a, c, EVS_ID_BYTES) != 0);
    ck_assert_str_eq(oms_stream_key("payment-abc-1"), "abc-1");
    ck_assert_str_eq(oms_stream_key("nodash"), "");
    char id1[33], id2[33];
    oms_order_id_random(id1);
    oms_order_id_random(id2);
    ck_assert_uint_eq(strlen(id1), 32);
    ck_assert_str_ne(id1, id2);
}
END_TEST

/* ---- a service on a real evstored ---- */

/* How long the group may take to settle (polled, so a pass costs no more). */
#define GROUP_SETTLE_MS_MAX 30000
#define KEYS 4
#define EVENTS_PER_KEY 25

static test_server_t server;

typedef struct {
    pthread_mutex_t lock;
    int seen[KEYS];            /* next expected sequence per key */
    int out_of_order;
    atomic_int handled;
    atomic_int retried_seen;   /* deliveries of the retry event */
    atomic_int ticks;
    atomic_int posts;
    oms_service_t *svc;
} script_t;

static script_t script;

static oms_result_t script_handle(oms_worker_t *w, void *state, const evs_recorded_event_t *ev,
                                  uint32_t retry_count)
{
    (void)state;
    if (strcmp(ev->type, "Retry") == 0) {
        atomic_fetch_add(&script.retried_seen, 1);
        ck_assert_uint_eq(retry_count, (uint32_t)atomic_load(&script.retried_seen) - 1);
        return retry_count < 2 ? OMS_RETRY : OMS_OK;
    }
    if (strcmp(ev->type, "Poison") == 0) {
        oms_worker_reason(w, "poison %s", ev->stream);
        return OMS_PARK;
    }
    int key = ev->stream[strlen(ev->stream) - 1] - '0';
    int seq = atoi((const char *)ev->data);
    pthread_mutex_lock(&script.lock);
    if (seq != script.seen[key])
        script.out_of_order++;
    script.seen[key] = seq + 1;
    pthread_mutex_unlock(&script.lock);
    atomic_fetch_add(&script.handled, 1);
    return OMS_OK;
}

static void script_tick(oms_worker_t *w, void *state, int64_t now)
{
    (void)w;
    (void)state;
    (void)now;
    atomic_fetch_add(&script.ticks, 1);
}

static void script_post(oms_worker_t *w, void *state, void *arg)
{
    (void)w;
    (void)state;
    ck_assert_ptr_eq(arg, &script);
    atomic_fetch_add(&script.posts, 1);
}

static int script_start(oms_service_t *svc, void *ctx)
{
    script.svc = svc;
    return oms_service_post(svc, "k", script_post, ctx);
}

static void *service_thread(void *arg)
{
    oms_config_t *cfg = arg;
    static const char *const types[] = {"Seq", "Retry", "Poison"};
    static const oms_subscription_t sub = {"test-group", "$ce-job", types, 3};
    static const oms_handler_t h = {.handle = script_handle, .tick = script_tick,
                                    .start = script_start};
    return (void *)(intptr_t)oms_service_run(cfg, &sub, &h, &script);
}

static void append_raw(evs_conn_t *c, const char *stream, const char *type, const char *data)
{
    evs_event_t ev = {.type = type, .data = data, .data_len = strlen(data) + 1};
    evs_id_random(ev.id);
    evs_stream_append_t a = {.stream = stream, .expected_version = EVS_EXPECT_ANY, .events = &ev,
                             .event_count = 1};
    ck_assert_int_eq(evs_append(c, &a, 1, NULL), 0);
}

static bool all_handled(void *ctx)
{
    (void)ctx;
    return atomic_load(&script.handled) == KEYS * EVENTS_PER_KEY &&
           atomic_load(&script.retried_seen) == 3 && atomic_load(&script.posts) == 1;
}

static bool parked_one(void *ctx)
{
    evs_conn_t *c = ctx;
    evs_stream_info_t info;
    return evs_stream_info(c, "$parked-test-group", &info) == 0 && info.exists;
}

START_TEST(service_dispatches_in_order_per_key_acks_retries_and_parks)
{
    ck_assert_int_eq(test_server_start(&server, NULL), 0);
    evs_options_t opts;
    evs_options_default(&opts);
    opts.port = server.port;
    evs_conn_t *c;
    ck_assert_int_eq(evs_connect(&opts, &c), 0);
    memset(&script, 0, sizeof script);
    pthread_mutex_init(&script.lock, NULL);
    oms_config_t cfg;
    char store[32];
    snprintf(store, sizeof store, "127.0.0.1:%u", server.port);
    char *argv[] = {"x", "--store", store, "--metrics", "127.0.0.1:0", "--workers", "3",
                    "--tick-ms", "10", NULL};
    ck_assert_int_eq(oms_config_parse(&cfg, "test", 0, 9, argv, NULL, 0), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, service_thread, &cfg), 0);
    for (int i = 0; i < EVENTS_PER_KEY; i++) {
        for (int k = 0; k < KEYS; k++) {
            char stream[32], data[16];
            snprintf(stream, sizeof stream, "job-k%d", k);
            snprintf(data, sizeof data, "%d", i);
            append_raw(c, stream, "Seq", data);
        }
    }
    append_raw(c, "job-r", "Retry", "");
    append_raw(c, "job-p", "Poison", "");
    append_raw(c, "other-x", "Seq", "0"); /* not in the group's category */
    ck_assert(oms_wait_until(all_handled, NULL, 20000));
    ck_assert(oms_wait_until(parked_one, c, 20000));
    ck_assert_int_eq(script.out_of_order, 0);
    ck_assert_int_gt(atomic_load(&script.ticks), 0);
    /* The group's checkpoint passes every event: all acked, parked or done. */
    evs_group_info_t info;
    for (int i = 0; i < GROUP_SETTLE_MS_MAX / 20; i++) {
        ck_assert_int_eq(evs_group_info(c, "test-group", &info), 0);
        bool done = info.inflight == 0 && info.parked == 1;
        evs_group_info_free(&info);
        if (done)
            break;
        usleep(20000);
    }
    ck_assert_int_eq(evs_group_info(c, "test-group", &info), 0);
    ck_assert_uint_eq(info.inflight, 0);
    ck_assert_uint_eq(info.parked, 1);
    evs_group_info_free(&info);
    oms_service_stop(script.svc);
    void *status;
    pthread_join(t, &status);
    ck_assert_int_eq((int)(intptr_t)status, 0);
    evs_close(c);
    test_server_destroy(&server);
}
END_TEST

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("oms runtime");
    TCase *t = tcase_create("pure");
    tcase_add_test(t, config_defaults_flags_and_environment);
    tcase_add_test(t, config_rejects_bad_values);
    tcase_add_test(t, config_given_sees_flags_in_both_forms_and_the_environment);
    tcase_add_test(t, metrics_render_in_prometheus_text_format);
    tcase_add_test(t, metrics_refuse_series_that_would_not_render_and_repair_utf8);
    tcase_add_test(t, ids_are_deterministic_per_order_and_step);
    suite_add_tcase(s, t);
    TCase *svc = tcase_create("service");
    tcase_set_timeout(svc, 120);
    tcase_add_test(svc, service_dispatches_in_order_per_key_acks_retries_and_parks);
    suite_add_tcase(s, svc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(runtime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
