/* test_oms_ops.c -- the operations side of the OMS against a real system:
 * Debian's prometheus scrapes every program with the job names of
 * ops/prometheus/prometheus.yml, every metric the Grafana dashboard
 * (ops/grafana/oms-dashboard.json) queries has series once orders of every
 * kind (one of them timing out in shipping) went through, and oms-demo sees
 * every order reach its expected verdict.
 *
 * One system (evstored, the seven services, prometheus) is started once for
 * all the tests (an unchecked fixture); the tests only add orders to it.
 */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oms_curl.h"
#include "oms_fixture.h"
#include "proc.h"
#include "server_fixture.h"
#include "util.h"

#ifndef OMS_OPS_DIR
#error "OMS_OPS_DIR (the ops/ folder) must be defined by the build"
#endif
#ifndef PROMETHEUS_PATH
#define PROMETHEUS_PATH "/usr/bin/prometheus"
#endif

#define OPS_HTTP_TIMEOUT_MS 5000
#define OPS_PROM_READY_MS 30000     /* prometheus answers /-/ready */
#define OPS_TARGETS_UP_MS 30000     /* every target scraped and up */
#define OPS_VERDICTS_MS 60000       /* the test's orders counted by the saga, as scraped */
#define OPS_SERIES_MS 30000         /* every dashboard metric has series */
#define OPS_POLL_MS 250             /* prometheus is asked at most this often */
#define OPS_DEMO_MS 120000          /* oms-demo runs at most this long */
#define OPS_STOP_MS 20000
#define OPS_SHIPPING_TIMEOUT_MS "1000" /* oms-saga's: the TT order times out quickly */
#define OPS_METRICS_MAX 64
#define OPS_CONFIG_BYTES_MAX (64 * 1024)

/* The programs, in start order; the job name of each is "oms-<name>" (and
 * "evstored"), and default_port its address in ops/prometheus/prometheus.yml. */
typedef struct {
    const char *program;
    uint16_t default_port;
    oms_proc_t proc;
} ops_program_t;

static ops_program_t programs[] = {
    {"oms-projections", 9206, {0}}, {"oms-payment", 9202, {0}},  {"oms-inventory", 9203, {0}},
    {"oms-shipping", 9204, {0}},    {"oms-notification", 9205, {0}}, {"oms-saga", 9201, {0}},
    {"oms-order", 8080, {0}},
};
#define OPS_PROGRAMS (sizeof programs / sizeof programs[0])
#define OPS_ORDER (OPS_PROGRAMS - 1)

static test_server_t srv;
static char tmp[PATH_MAX];
static char readmodel[PATH_MAX + 32], outbox[PATH_MAX + 32];
static pid_t prom_pid;
static uint16_t prom_port;
static char setup_error[512]; /* why the system is not there ("" when it is) */

/* ==== processes ========================================================= */

/* argv with stdout and stderr to out_path (it gets SIGKILL when the test
 * process dies). */
static proc_spec_t spawn_spec(const char *const *argv, const char *out_path)
{
    return (proc_spec_t){.argv = argv,
                         .out = {PROC_IO_FILE, .path = out_path},
                         .err = {PROC_IO_STDOUT}};
}

static void print_file(const char *path)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    fprintf(stderr, "---- %s ----\n%s\n----\n", path, buf);
    if (f)
        fclose(f);
}

/* ==== prometheus ======================================================== */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Replaces the one occurrence of from in text (cap bytes) by to. Returns 0,
 * or -1 when from is not there exactly once or the result does not fit. */
static int replace_once(char *text, size_t cap, const char *from, const char *to)
{
    char *at = strstr(text, from);
    if (at == NULL || strstr(at + 1, from) != NULL)
        return -1;
    size_t tail = strlen(at + strlen(from));
    if (strlen(text) - strlen(from) + strlen(to) >= cap)
        return -1;
    memmove(at + strlen(to), at + strlen(from), tail + 1);
    memcpy(at, to, strlen(to));
    return 0;
}

/* Writes ops/prometheus/prometheus.yml to path with the test system's ports
 * and a 1 s scrape interval. Returns 0, or -1 with setup_error set. */
static int write_prom_config(const char *path)
{
    static char text[OPS_CONFIG_BYTES_MAX];
    FILE *f = fopen(OMS_OPS_DIR "/prometheus/prometheus.yml", "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    int rc = n > 0 ? replace_once(text, sizeof text, "scrape_interval: 15s", "scrape_interval: 1s")
                   : -1;
    char from[32], to[32];
    snprintf(from, sizeof from, "\"127.0.0.1:7412\"");
    snprintf(to, sizeof to, "\"127.0.0.1:%u\"", srv.metrics_port);
    rc = rc ? rc : replace_once(text, sizeof text, from, to);
    for (size_t i = 0; rc == 0 && i < OPS_PROGRAMS; i++) {
        snprintf(from, sizeof from, "\"127.0.0.1:%u\"", programs[i].default_port);
        snprintf(to, sizeof to, "\"127.0.0.1:%u\"", programs[i].proc.port);
        rc = replace_once(text, sizeof text, from, to);
    }
    f = rc == 0 ? fopen(path, "w") : NULL;
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        snprintf(setup_error, sizeof setup_error,
                 "ops/prometheus/prometheus.yml is not as this test expects: one "
                 "\"scrape_interval: 15s\" and one target \"127.0.0.1:<default port>\" per job");
        return -1;
    }
    return 0;
}

/* GET path from prometheus; the JSON answer's "data" (a new reference), or
 * NULL when the answer is not a 200 with status "success". */
static json_t *prom_get(const char *path)
{
    oms_curl_response_t res;
    if (oms_curl_once("127.0.0.1", prom_port, OPS_HTTP_TIMEOUT_MS, "GET", path, NULL, NULL, 0,
                   &res) != 0)
        return NULL;
    json_t *root = res.status == 200 ? json_loadb(res.body, res.body_len, 0, NULL) : NULL;
    oms_curl_response_free(&res);
    const char *status = json_string_value(json_object_get(root, "status"));
    json_t *data = status && strcmp(status, "success") == 0 ? json_object_get(root, "data") : NULL;
    json_incref(data);
    json_decref(root);
    return data;
}

/* The series an instant query returns (its "result" array, a new
 * reference), or NULL. */
static json_t *prom_query(const char *expr)
{
    char path[1024];
    size_t n = (size_t)snprintf(path, sizeof path, "/api/v1/query?query=");
    for (const char *c = expr; *c != '\0' && n + 4 < sizeof path; c++) {
        if (isalnum((unsigned char)*c) || strchr("_-.~", *c))
            path[n++] = *c;
        else
            n += (size_t)snprintf(path + n, sizeof path - n, "%%%02X", (unsigned char)*c);
    }
    path[n] = '\0';
    json_t *data = prom_get(path);
    json_t *result = json_object_get(data, "result");
    if (!json_is_array(result))
        result = NULL;
    json_incref(result);
    json_decref(data);
    return result;
}

/* Waits until prometheus answers /-/ready. */
static bool prom_ready(void *ctx)
{
    (void)ctx;
    oms_curl_response_t res;
    if (oms_curl_once("127.0.0.1", prom_port, 1000, "GET", "/-/ready", NULL, NULL, 0, &res) != 0)
        return false;
    bool ok = res.status == 200;
    oms_curl_response_free(&res);
    return ok;
}

static int prom_start(void)
{
    if (access(PROMETHEUS_PATH, X_OK) != 0) {
        snprintf(setup_error, sizeof setup_error,
                 "%s is missing: install Debian's prometheus (scripts/setup.sh does)",
                 PROMETHEUS_PATH);
        return -1;
    }
    char config[PATH_MAX + 32], tsdb[PATH_MAX + 32], listen[64], log[PATH_MAX + 32];
    char config_flag[PATH_MAX + 64], tsdb_flag[PATH_MAX + 64];
    snprintf(config, sizeof config, "%s/prometheus.yml", tmp);
    snprintf(tsdb, sizeof tsdb, "%s/tsdb", tmp);
    snprintf(log, sizeof log, "%s/prometheus.log", tmp);
    if (write_prom_config(config) != 0)
        return -1;
    prom_port = free_port();
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%u", prom_port);
    snprintf(config_flag, sizeof config_flag, "--config.file=%s", config);
    snprintf(tsdb_flag, sizeof tsdb_flag, "--storage.tsdb.path=%s", tsdb);
    const char *argv[] = {PROMETHEUS_PATH, config_flag, tsdb_flag, listen, NULL};
    proc_spec_t spec = spawn_spec(argv, log);
    prom_pid = proc_start(&spec, NULL);
    if (prom_pid < 0 || !oms_wait_until(prom_ready, NULL, OPS_PROM_READY_MS)) {
        snprintf(setup_error, sizeof setup_error, "prometheus did not get ready in %d ms",
                 OPS_PROM_READY_MS);
        print_file(log);
        return -1;
    }
    return 0;
}

/* ==== the system ========================================================= */

static const char *const *program_args(const char *program)
{
    static const char *projections[] = {"--db", readmodel, NULL};
    static const char *notification[] = {"--outbox", outbox, NULL};
    static const char *order[] = {"--readmodel", readmodel, NULL};
    static const char *saga[] = {"--shipping-timeout-ms", OPS_SHIPPING_TIMEOUT_MS, NULL};
    if (strcmp(program, "oms-saga") == 0)
        return saga;
    if (strcmp(program, "oms-projections") == 0)
        return projections;
    if (strcmp(program, "oms-notification") == 0)
        return notification;
    if (strcmp(program, "oms-order") == 0)
        return order;
    return NULL;
}

static void system_start(void)
{
    setup_error[0] = '\0';
    if (test_tmpdir_make("oms-ops", tmp) != 0 || test_server_start(&srv, NULL) != 0) {
        snprintf(setup_error, sizeof setup_error, "evstored did not start");
        return;
    }
    snprintf(readmodel, sizeof readmodel, "%s/readmodel.db", tmp);
    snprintf(outbox, sizeof outbox, "%s/outbox.jsonl", tmp);
    for (size_t i = 0; i < OPS_PROGRAMS; i++) {
        if (oms_proc_start(&programs[i].proc, programs[i].program, srv.port, tmp,
                           program_args(programs[i].program)) != 0) {
            snprintf(setup_error, sizeof setup_error, "%s did not start", programs[i].program);
            return;
        }
    }
    prom_start();
}

static void system_stop(void)
{
    if (prom_pid > 0) {
        proc_end(prom_pid, SIGTERM, OPS_STOP_MS, "prometheus");
        prom_pid = 0;
    }
    for (size_t i = OPS_PROGRAMS; i-- > 0;) {
        if (programs[i].proc.pid != 0)
            oms_proc_stop(&programs[i].proc);
    }
    test_server_destroy(&srv);
    if (tmp[0] != '\0')
        test_tmpdir_remove(tmp);
}

#define REQUIRE_SYSTEM() ck_assert_msg(setup_error[0] == '\0', "%s", setup_error)

/* ==== waiting on prometheus ============================================== */

/* Calls check(ctx) at most every OPS_POLL_MS until it is true or
 * timeout_ms passed. */
typedef struct {
    bool (*check)(void *ctx);
    void *ctx;
    uint64_t last_ms;
} ops_poll_t;

static bool poll_paced(void *arg)
{
    ops_poll_t *p = arg;
    if (util_mono_ms() - p->last_ms < OPS_POLL_MS)
        return false;
    p->last_ms = util_mono_ms();
    return p->check(p->ctx);
}

static bool wait_prom(bool (*check)(void *ctx), void *ctx, int timeout_ms)
{
    ops_poll_t p = {.check = check, .ctx = ctx};
    return oms_wait_until(poll_paced, &p, timeout_ms);
}

/* ==== every target up ==================================================== */

typedef struct {
    char report[2048]; /* each job and its health, for the failure message */
} ops_targets_t;

static bool all_targets_up(void *arg)
{
    ops_targets_t *t = arg;
    json_t *data = prom_get("/api/v1/targets");
    json_t *active = json_object_get(data, "activeTargets");
    size_t i, up = 0;
    json_t *target;
    t->report[0] = '\0';
    json_array_foreach(active, i, target) {
        const char *job = json_string_value(json_object_get(json_object_get(target, "labels"),
                                                            "job"));
        const char *health = json_string_value(json_object_get(target, "health"));
        const char *err = json_string_value(json_object_get(target, "lastError"));
        up += health && strcmp(health, "up") == 0;
        size_t used = strlen(t->report);
        snprintf(t->report + used, sizeof t->report - used, " %s=%s%s%s", job ? job : "?",
                 health ? health : "?", err && *err ? ":" : "", err ? err : "");
    }
    bool ok = json_array_size(active) == OPS_PROGRAMS + 1 && up == OPS_PROGRAMS + 1;
    json_decref(data);
    return ok;
}

START_TEST(prometheus_scrapes_every_program_with_its_job_name)
{
    REQUIRE_SYSTEM();
    ops_targets_t t = {{0}};
    ck_assert_msg(wait_prom(all_targets_up, &t, OPS_TARGETS_UP_MS),
                  "not every target up within %d ms:%s", OPS_TARGETS_UP_MS, t.report);
    /* The job names are the ones of ops/prometheus/prometheus.yml. */
    for (size_t i = 0; i < OPS_PROGRAMS + 1; i++) {
        char expr[128];
        snprintf(expr, sizeof expr, "up{job=\"%s\"}",
                 i < OPS_PROGRAMS ? programs[i].program : "evstored");
        json_t *r = prom_query(expr);
        ck_assert_msg(json_array_size(r) == 1, "no series for %s", expr);
        json_decref(r);
    }
}
END_TEST

/* ==== every dashboard metric has series ================================== */

typedef struct {
    char names[OPS_METRICS_MAX][96];
    size_t count;
} ops_metric_set_t;

static void metric_add(ops_metric_set_t *s, const char *name, size_t len)
{
    if (len >= sizeof s->names[0])
        return;
    for (size_t i = 0; i < s->count; i++) {
        if (strlen(s->names[i]) == len && memcmp(s->names[i], name, len) == 0)
            return;
    }
    ck_assert_msg(s->count < OPS_METRICS_MAX, "more than %d metric names", OPS_METRICS_MAX);
    memcpy(s->names[s->count], name, len);
    s->names[s->count++][len] = '\0';
}

/* The metric names in a PromQL expression: words that start with oms_ or
 * evstore_ (the functions, labels and keywords do not). */
static void metrics_of_expr(ops_metric_set_t *s, const char *expr)
{
    for (const char *p = expr; *p != '\0';) {
        size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
        if (len == 0) {
            p++;
            continue;
        }
        bool quoted = p > expr && p[-1] == '"';
        if (!quoted && (strncmp(p, "oms_", 4) == 0 || strncmp(p, "evstore_", 8) == 0))
            metric_add(s, p, len);
        p += len;
    }
}

static void metrics_of_panels(ops_metric_set_t *s, json_t *panels)
{
    size_t i, j;
    json_t *panel, *target;
    json_array_foreach(panels, i, panel) {
        json_array_foreach(json_object_get(panel, "targets"), j, target) {
            const char *expr = json_string_value(json_object_get(target, "expr"));
            if (expr != NULL)
                metrics_of_expr(s, expr);
        }
        metrics_of_panels(s, json_object_get(panel, "panels")); /* rows */
    }
}

/* Places one order over HTTP; returns the status. */
static int place_order(oms_curl_t *c, const char *token, const char *sku, const char *country)
{
    char body[512], key[96];
    static unsigned seq;
    snprintf(body, sizeof body,
             "{\"customer_id\":\"cust-ops\",\"currency\":\"EUR\",\"payment_token\":\"%s\","
             "\"items\":[{\"sku\":\"%s\",\"quantity\":1,\"unit_price_cents\":1299}],"
             "\"shipping_address\":{\"name\":\"Ops\",\"line1\":\"Main St 1\",\"city\":\"Berlin\","
             "\"postal_code\":\"10115\",\"country\":\"%s\"}}",
             token, sku, country);
    snprintf(key, sizeof key, "Idempotency-Key: ops-%d-%u", (int)getpid(), seq++);
    const char *headers[] = {"Content-Type: application/json", key, NULL};
    oms_curl_response_t res;
    int rc = oms_curl_request(c, "POST", "/orders", headers, body, strlen(body), &res);
    if (rc != 0)
        return rc;
    int status = res.status;
    oms_curl_response_free(&res);
    return status;
}

/* The value of a one-series instant query, or -1. */
static double query_value(const char *expr)
{
    json_t *r = prom_query(expr);
    const char *v = json_string_value(json_array_get(json_object_get(json_array_get(r, 0),
                                                                      "value"), 1));
    double out = v != NULL ? strtod(v, NULL) : -1;
    json_decref(r);
    return out;
}

static bool failures_by_reason_scraped(void *ctx)
{
    (void)ctx;
    static const char *const reasons[] = {"payment_declined", "out_of_stock", "shipping_failed",
                                          "shipping_timeout"};
    if (query_value("sum(oms_saga_outcomes_total{outcome=\"completed\"})") < 1)
        return false;
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char expr[160];
        snprintf(expr, sizeof expr,
                 "sum(oms_saga_outcomes_total{outcome=\"failed\",reason=\"%s\"})", reasons[i]);
        if (query_value(expr) < 1)
            return false;
    }
    return true;
}

typedef struct {
    const ops_metric_set_t *set;
    char missing[1024];
} ops_series_t;

static bool every_metric_has_series(void *arg)
{
    ops_series_t *s = arg;
    size_t n = 0;
    s->missing[0] = '\0';
    for (size_t i = 0; i < s->set->count; i++) {
        json_t *r = prom_query(s->set->names[i]);
        if (json_array_size(r) == 0 && n + strlen(s->set->names[i]) + 2 < sizeof s->missing)
            n += (size_t)sprintf(s->missing + n, " %s", s->set->names[i]);
        json_decref(r);
    }
    return n == 0;
}

START_TEST(every_metric_of_the_dashboard_has_series_once_orders_went_through)
{
    REQUIRE_SYSTEM();
    json_error_t jerr;
    json_t *dash = json_load_file(OMS_OPS_DIR "/grafana/oms-dashboard.json", 0, &jerr);
    ck_assert_msg(dash != NULL, "oms-dashboard.json: %s (line %d)", jerr.text, jerr.line);
    ops_metric_set_t set = {.count = 0};
    metrics_of_panels(&set, json_object_get(dash, "panels"));
    json_decref(dash);
    ck_assert_uint_ge(set.count, 10);

    oms_curl_t *c = NULL;
    ck_assert_int_eq(oms_curl_open("127.0.0.1", programs[OPS_ORDER].proc.port,
                                   OPS_HTTP_TIMEOUT_MS, &c), 0);
    ck_assert_int_eq(place_order(c, "tok_visa", "sku-0001", "DE"), 201);
    ck_assert_int_eq(place_order(c, "tok_decline", "sku-0002", "DE"), 201);
    ck_assert_int_eq(place_order(c, "tok_visa", "sku-oos", "DE"), 201);
    ck_assert_int_eq(place_order(c, "tok_visa", "sku-0003", "ZZ"), 201);
    /* The carrier never answers for TT: the shipping step times out and is compensated
     * (oms_saga_timeouts_total, oms_saga_compensations_total{kind="cancel_shipment"}). */
    ck_assert_int_eq(place_order(c, "tok_visa", "sku-0004", "TT"), 201);
    oms_curl_close(c);

    ck_assert_msg(wait_prom(failures_by_reason_scraped, NULL, OPS_VERDICTS_MS),
                  "prometheus did not see a completed order and one failed for each of "
                  "payment_declined, out_of_stock, shipping_failed, shipping_timeout within %d ms",
                  OPS_VERDICTS_MS);
    ops_series_t s = {.set = &set};
    ck_assert_msg(wait_prom(every_metric_has_series, &s, OPS_SERIES_MS),
                  "dashboard metrics without series after %d ms:%s", OPS_SERIES_MS, s.missing);
}
END_TEST

/* ==== oms-demo =========================================================== */

static int run_demo(const char *const *extra, const char *out_path)
{
    char path[PATH_MAX], http[64], store[64];
    snprintf(http, sizeof http, "127.0.0.1:%u", programs[OPS_ORDER].proc.port);
    snprintf(store, sizeof store, "127.0.0.1:%u", srv.port);
    const char *argv[32] = {oms_program_path("oms-demo", path, sizeof path), "--http", http,
                            "--store", store};
    size_t n = 5;
    for (size_t i = 0; extra[i] != NULL && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    proc_spec_t spec = spawn_spec(argv, out_path);
    int status = proc_run(&spec, OPS_DEMO_MS);
    ck_assert_msg(status != -ETIMEDOUT, "oms-demo ran longer than %d ms", OPS_DEMO_MS);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static json_int_t json_at(json_t *root, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(json_object_get(root, a), b);
    return json_integer_value(c != NULL ? json_object_get(v, c) : v);
}

START_TEST(demo_sees_every_order_reach_its_expected_verdict)
{
    REQUIRE_SYSTEM();
    char json_path[PATH_MAX + 32], out[PATH_MAX + 32];
    snprintf(json_path, sizeof json_path, "%s/demo.json", tmp);
    snprintf(out, sizeof out, "%s/demo.out", tmp);
    const char *args[] = {"--orders", "40", "--concurrency", "4", "--timeout-s", "60",
                          "--json", json_path, NULL};
    int rc = run_demo(args, out);
    if (rc != 0)
        print_file(out);
    ck_assert_int_eq(rc, 0);

    json_t *root = json_load_file(json_path, 0, NULL);
    ck_assert_ptr_nonnull(root);
    ck_assert(json_is_true(json_object_get(root, "ok")));
    ck_assert_int_eq(json_at(root, "all", "placed", NULL), 40);
    json_t *kinds = json_object_get(root, "kinds");
    /* success=70,declined=10,oos=10,shipfail=10 of 40 orders */
    ck_assert_int_eq(json_at(kinds, "success", "completed", NULL), 28);
    ck_assert_int_eq(json_at(json_object_get(kinds, "declined"), "failed_by_reason",
                             "payment_declined", NULL), 4);
    ck_assert_int_eq(json_at(json_object_get(kinds, "oos"), "failed_by_reason", "out_of_stock",
                             NULL), 4);
    ck_assert_int_eq(json_at(json_object_get(kinds, "shipfail"), "failed_by_reason",
                             "shipping_failed", NULL), 4);
    ck_assert_int_eq(json_at(root, "all", "latency_ms", "count"), 40);
    json_decref(root);
}
END_TEST

START_TEST(demo_refuses_a_mix_of_unknown_kinds_with_status_2)
{
    char out[PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/demo-bad.out", tmp);
    const char *args[] = {"--orders", "1", "--mix", "success=1,lost=1", NULL};
    ck_assert_int_eq(run_demo(args, out), 2);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("oms.ops");
    TCase *tc = tcase_create("system");
    tcase_add_unchecked_fixture(tc, system_start, system_stop);
    tcase_set_timeout(tc, 200);
    tcase_add_test(tc, prometheus_scrapes_every_program_with_its_job_name);
    tcase_add_test(tc, every_metric_of_the_dashboard_has_series_once_orders_went_through);
    tcase_add_test(tc, demo_sees_every_order_reach_its_expected_verdict);
    tcase_add_test(tc, demo_refuses_a_mix_of_unknown_kinds_with_status_2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
