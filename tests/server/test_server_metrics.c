/* test_server_metrics.c -- /health and /metrics over plain HTTP on the
 * metrics port: the health document, and Prometheus text whose counters,
 * gauges and histograms move with the test's own appends and errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "srv_util.h"
#include "wire.h"

/* How long the page may take to show a change: the server's loop refreshes it
 * within a fraction of a second, but a loaded machine (or the sanitizer
 * build) can hold the loop for seconds. Polled, so a pass costs no more. */
#define METRICS_REFRESH_MS_MAX 30000

#define BODY(x) EVSTORE__V1__ENVELOPE__BODY_##x
#define CODE(x) EVSTORE__V1__ERROR_CODE__##x

#define HTTP_BYTES_MAX (1u << 20)
#define HTTP_MS_MAX 30000 /* a bound for a loaded machine; a pass takes milliseconds */

static test_server_t srv;

static void setup(void) { ck_assert_int_eq(srv_start(&srv, NULL, NULL), 0); }
static void teardown(void) { test_server_destroy(&srv); }

typedef struct {
    int status;
    char *head; /* status line and headers */
    char *body;
    char *raw;
} http_t;

static void http_free(http_t *h) { free(h->raw); }

/* GET path over HTTP/1.0 on 127.0.0.1:port; the whole answer, bounded in
 * bytes and time. Returns 0 or -1. */
static int http_get(uint16_t port, const char *path, http_t *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    char *buf = malloc(HTTP_BYTES_MAX + 1);
    size_t len = 0;
    int64_t deadline = (int64_t)util_mono_ms() + HTTP_MS_MAX;
    while (buf && len < HTTP_BYTES_MAX) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - (int64_t)util_mono_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t k = recv(fd, buf + len, HTTP_BYTES_MAX - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    if (!buf)
        return -1;
    buf[len] = '\0';
    out->raw = buf;
    char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1 || !sep) {
        http_free(out);
        return -1;
    }
    *sep = '\0';
    out->head = buf;
    out->body = sep + 4;
    return 0;
}

/* The value of the sample whose name (labels included) is exactly name;
 * -1 when there is none. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    const char *line = text;
    while (line && *line) {
        if (strncmp(line, name, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

static char *metrics_text(http_t *h)
{
    ck_assert_int_eq(http_get(srv.metrics_port, "/metrics", h), 0);
    ck_assert_int_eq(h->status, 200);
    return h->body;
}

START_TEST(health_answers_200_with_status_ok)
{
    http_t h;
    ck_assert_int_eq(http_get(srv.metrics_port, "/health", &h), 0);
    ck_assert_int_eq(h.status, 200);
    ck_assert_msg(strstr(h.body, "\"status\":\"ok\"") != NULL, "body: %s", h.body);
    ck_assert_msg(strcasestr(h.head, "application/json") != NULL, "headers: %s", h.head);
    http_free(&h);
}
END_TEST

START_TEST(unknown_paths_are_404)
{
    http_t h;
    ck_assert_int_eq(http_get(srv.metrics_port, "/nothing-here", &h), 0);
    ck_assert_int_eq(h.status, 404);
    http_free(&h);
}
END_TEST

START_TEST(metrics_are_prometheus_text_with_every_family)
{
    http_t h;
    const char *m = metrics_text(&h);
    ck_assert_msg(strcasestr(h.head, "text/plain") != NULL, "headers: %s", h.head);
    static const char *const families[] = {
        "# TYPE evstore_appends_total counter",
        "# TYPE evstore_fdatasyncs_total counter",
        "# TYPE evstore_fdatasync_seconds histogram",
        "# TYPE evstore_group_commit_events histogram",
        "# TYPE evstore_connections gauge",
        "# TYPE evstore_errors_total counter",
        "evstore_fdatasync_seconds_bucket{le=\"+Inf\"} ",
        "evstore_group_commit_events_bucket{le=\"+Inf\"} ",
        "evstore_errors_total{type=\"wrong_expected_version\"} ",
        "evstore_errors_total{type=\"bad_request\"} ",
        "evstore_head_position ",
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        ck_assert_msg(strstr(m, families[i]) != NULL, "no '%s' in /metrics", families[i]);
    /* Every sample line is "name[{labels}] value". */
    int lines = 0;
    for (const char *line = m; *line && lines < 10000; lines++) {
        const char *end = strchr(line, '\n');
        ck_assert_msg(end != NULL, "last line of /metrics has no newline");
        if (line[0] != '#') {
            const char *space = memchr(line, ' ', (size_t)(end - line));
            ck_assert_msg(space && space > line, "malformed sample line: %.*s",
                          (int)(end - line), line);
            char *num_end;
            strtod(space + 1, &num_end);
            ck_assert_msg(num_end == end, "malformed value: %.*s", (int)(end - line), line);
        }
        line = end + 1;
    }
    http_free(&h);
}
END_TEST

/* Buckets of a histogram never decrease, and +Inf equals _count. */
static void check_histogram(const char *m, const char *name)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s_bucket{le=\"", name);
    double prev = 0, inf = -1;
    int buckets = 0;
    for (const char *p = strstr(m, prefix); p && buckets < 100; p = strstr(p + 1, prefix)) {
        const char *v = strchr(p, ' ');
        double x = strtod(v + 1, NULL);
        ck_assert_msg(x >= prev, "%s buckets decrease", name);
        prev = x;
        if (strncmp(p + strlen(prefix), "+Inf", 4) == 0)
            inf = x;
        buckets++;
    }
    char count[128];
    snprintf(count, sizeof count, "%s_count", name);
    ck_assert_int_gt(buckets, 2);
    ck_assert_msg(inf == sample(m, count), "%s: +Inf bucket %g, count %g", name, inf,
                  sample(m, count));
}

typedef struct {
    double appends, fdatasyncs, sync_count, group_sum, wev, bad, connections, head;
} snapshot_t;

static snapshot_t snapshot(void)
{
    http_t h;
    const char *m = metrics_text(&h);
    snapshot_t s = {
        .appends = sample(m, "evstore_appends_total"),
        .fdatasyncs = sample(m, "evstore_fdatasyncs_total"),
        .sync_count = sample(m, "evstore_fdatasync_seconds_count"),
        .group_sum = sample(m, "evstore_group_commit_events_sum"),
        .wev = sample(m, "evstore_errors_total{type=\"wrong_expected_version\"}"),
        .bad = sample(m, "evstore_errors_total{type=\"bad_request\"}"),
        .connections = sample(m, "evstore_connections"),
        .head = sample(m, "evstore_head_position"),
    };
    check_histogram(m, "evstore_fdatasync_seconds");
    check_histogram(m, "evstore_group_commit_events");
    http_free(&h);
    return s;
}

START_TEST(metrics_move_with_appends_and_errors)
{
    snapshot_t before = snapshot();
    ck_assert(before.appends >= 0 && before.wev >= 0 && before.bad >= 0);
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    for (uint64_t i = 0; i < 10; i++) {
        envelope_t *a = wire_append_one(&w, "metric-1", WIRE_ANY, i, "Counted", "x");
        ck_assert_answer(a, BODY(APPEND_OK));
        frame_free(a);
    }
    for (uint64_t i = 0; i < 2; i++) {
        envelope_t *a = wire_append_one(&w, "metric-1", WIRE_NO_STREAM, 100 + i, "T", "x");
        ck_assert_error(a, CODE(WRONG_EXPECTED_VERSION));
        frame_free(a);
    }
    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = ""});
    ck_assert_error(r, CODE(BAD_REQUEST));
    frame_free(r);

    /* The page is refreshed by the server's loop: poll, bounded. */
    snapshot_t after = before;
    int64_t deadline = (int64_t)util_mono_ms() + METRICS_REFRESH_MS_MAX;
    while ((int64_t)util_mono_ms() < deadline) {
        after = snapshot();
        if (after.appends >= before.appends + 10 && after.wev >= before.wev + 2 &&
            after.bad >= before.bad + 1)
            break;
        usleep(50 * 1000);
    }
    ck_assert_msg(after.appends == before.appends + 10, "appends_total %g -> %g",
                  before.appends, after.appends);
    ck_assert_msg(after.head == 10, "head_position %g", after.head);
    ck_assert_msg(after.fdatasyncs >= before.fdatasyncs + 1, "fdatasyncs_total %g -> %g",
                  before.fdatasyncs, after.fdatasyncs);
    ck_assert_msg(after.sync_count >= before.sync_count + 1, "fdatasync_seconds_count %g -> %g",
                  before.sync_count, after.sync_count);
    ck_assert_msg(after.group_sum == before.group_sum + 10, "group_commit_events_sum %g -> %g",
                  before.group_sum, after.group_sum);
    ck_assert_msg(after.wev == before.wev + 2, "wrong_expected_version errors %g -> %g",
                  before.wev, after.wev);
    ck_assert_msg(after.bad == before.bad + 1, "bad_request errors %g -> %g", before.bad,
                  after.bad);
    ck_assert_msg(after.connections >= 1, "connections %g with one open", after.connections);
    wire_close(&w);

    /* The gauge falls back once the connection is gone. */
    deadline = (int64_t)util_mono_ms() + METRICS_REFRESH_MS_MAX;
    while ((int64_t)util_mono_ms() < deadline && (after = snapshot()).connections != 0)
        usleep(50 * 1000);
    ck_assert_msg(after.connections == 0, "connections %g after the close", after.connections);
}
END_TEST

/* Any bytes make a group name; one that is not UTF-8 is shown with U+FFFD
 * for each bad byte (Prometheus text has no byte escapes), so the page
 * stays valid. */
START_TEST(a_group_name_that_is_not_utf8_shows_as_u_fffd)
{
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    Evstore__V1__GroupSettings g = EVSTORE__V1__GROUP_SETTINGS__INIT;
    g.name = "\xff\xfe\r";
    g.stream = "metric-g";
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = 1;
    env.body_case = BODY(GROUP_CREATE);
    env.group_create = &g;
    ck_assert_int_eq(wire_send(&w, &env), 0);
    envelope_t *a = NULL;
    ck_assert_int_eq(wire_recv(&w, HTTP_MS_MAX, &a), 0);
    ck_assert_answer(a, BODY(DONE));
    frame_free(a);
    wire_close(&w);

    const char *want = "evstore_group_lag{group=\"\xef\xbf\xbd\xef\xbf\xbd\r\"} ";
    bool seen = false;
    int64_t deadline = (int64_t)util_mono_ms() + METRICS_REFRESH_MS_MAX;
    while (!seen && (int64_t)util_mono_ms() < deadline) {
        http_t h;
        const char *m = metrics_text(&h);
        seen = strstr(m, want) != NULL;
        ck_assert_msg(strchr(m, '\xff') == NULL && strchr(m, '\xfe') == NULL,
                      "bytes of the name on the page");
        http_free(&h);
        if (!seen)
            usleep(50 * 1000);
    }
    ck_assert_msg(seen, "no %s on /metrics", want);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("server.metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, health_answers_200_with_status_ok);
    tcase_add_test(tc, unknown_paths_are_404);
    tcase_add_test(tc, metrics_are_prometheus_text_with_every_family);
    tcase_add_test(tc, metrics_move_with_appends_and_errors);
    tcase_add_test(tc, a_group_name_that_is_not_utf8_shows_as_u_fffd);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
