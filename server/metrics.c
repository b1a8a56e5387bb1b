/* metrics.c -- /metrics (Prometheus text format) and /health over HTTP, on
 * their own port, served by libmicrohttpd's thread. The loop thread counts
 * into atomics and refreshes a snapshot of the engine's statistics; the HTTP
 * thread only reads. */
#include "server_int.h"
#include "prom.h"

#include <assert.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* The groups' part of the page: room for GROUPS_MAX groups x 7 series with
 * 200-byte names (each byte escaped at worst to 3 as U+FFFD), and the rest. */
#define METRICS_GROUPS_BYTES_MAX (8u * 1024 * 1024)
#define METRICS_PAGE_BYTES_MAX (METRICS_GROUPS_BYTES_MAX + 512u * 1024)
#define METRICS_BUCKETS_MAX 16u /* the most buckets of any histogram below */
_Static_assert(METRICS_LATENCY_BUCKETS <= METRICS_BUCKETS_MAX &&
                   METRICS_GROUP_BUCKETS <= METRICS_BUCKETS_MAX,
               "a histogram has more buckets than METRICS_BUCKETS_MAX");

/* Upper bounds of the fdatasync latency buckets, in microseconds. */
static const uint64_t latency_us[METRICS_LATENCY_BUCKETS] = {
    50, 100, 200, 300, 500, 750, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 1000000};
/* Upper bounds of the events-per-group-commit buckets. */
static const uint64_t group_events[METRICS_GROUP_BUCKETS] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384};

static const char *const request_names[METRICS_REQUEST_TYPES] = {
    "hello", "append", "read", "stream_info", "list_streams", "server_stats", "ping", "other"};

static const char *const error_names[METRICS_ERROR_CODES] = {
    "unspecified", "wrong_expected_version", "stream_not_found", "bad_request",
    "frame_too_large", "busy", "not_ready", "protocol_version", "idempotency_conflict",
    "too_large", "corrupt", "io_error", "access_denied", "internal", "group_not_found",
    "group_exists"};

void metrics_count_request(server_t *s, int type)
{
    if (type >= 0 && type < (int)METRICS_REQUEST_TYPES)
        atomic_fetch_add_explicit(&s->metrics.requests[type], 1, memory_order_relaxed);
}

void metrics_count_error(server_t *s, int code)
{
    if (code >= 0 && code < (int)METRICS_ERROR_CODES)
        atomic_fetch_add_explicit(&s->metrics.errors[code], 1, memory_order_relaxed);
}

void metrics_on_commit(void *ctx, uint64_t events, uint64_t bytes, uint64_t latency_ns)
{
    server_t *s = ctx;
    metrics_t *m = &s->metrics;
    (void)bytes;
    uint32_t i = 0;
    while (i < METRICS_LATENCY_BUCKETS && latency_ns > latency_us[i] * 1000u)
        i++;
    atomic_fetch_add_explicit(&m->sync_latency[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sync_latency_sum_ns, latency_ns, memory_order_relaxed);
    i = 0;
    while (i < METRICS_GROUP_BUCKETS && events > group_events[i])
        i++;
    atomic_fetch_add_explicit(&m->group_events[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->group_events_sum, events, memory_order_relaxed);
}

#define METRICS_GROUPS_REFRESH_NS 250000000ull

void metrics_refresh(server_t *s)
{
    metrics_t *m = &s->metrics;
    uint64_t now = util_mono_ns();
    char *text = NULL;
    size_t len = 0;
    if (now - m->groups_refreshed_ns >= METRICS_GROUPS_REFRESH_NS) {
        text = groups_metrics(s, METRICS_GROUPS_BYTES_MAX, &len);
        m->groups_refreshed_ns = now;
    }
    pthread_mutex_lock(&m->mu);
    log_stats(s->log, &m->log_stats);
    m->connections = s->conn_count;
    m->subscriptions = s->sub_count;
    if (text) {
        free(m->groups_text);
        m->groups_text = text;
        m->groups_len = len;
    }
    pthread_mutex_unlock(&m->mu);
}

static void counter(prom_page_t *p, const char *name, const char *help, uint64_t v)
{
    prom_family(p, name, PROM_COUNTER, help);
    prom_sample_u64(p, name, NULL, 0, v);
}

static void gauge(prom_page_t *p, const char *name, const char *help, uint64_t v)
{
    prom_family(p, name, PROM_GAUGE, help);
    prom_sample_u64(p, name, NULL, 0, v);
}

static uint64_t load(_Atomic uint64_t *a) { return atomic_load_explicit(a, memory_order_relaxed); }

/* n buckets whose upper bounds are bounds[i] * scale, and the one above. */
static void histogram(prom_page_t *p, const char *name, const char *help,
                      _Atomic uint64_t *buckets, const uint64_t *bounds, uint32_t n, double scale,
                      double sum)
{
    double le[METRICS_BUCKETS_MAX];
    uint64_t counts[METRICS_BUCKETS_MAX + 1];
    assert(n <= METRICS_BUCKETS_MAX);
    for (uint32_t i = 0; i < n; i++) {
        le[i] = (double)bounds[i] * scale;
        counts[i] = load(&buckets[i]);
    }
    counts[n] = load(&buckets[n]);
    prom_family(p, name, PROM_HISTOGRAM, help);
    prom_histogram(p, name, NULL, 0, le, counts, n, sum);
}

/* A counter family with one series per name, labelled type="<name>". */
static void counter_by_type(prom_page_t *p, const char *name, const char *help,
                            const char *const *types, _Atomic uint64_t *values, uint32_t first,
                            uint32_t n)
{
    prom_family(p, name, PROM_COUNTER, help);
    for (uint32_t i = first; i < n; i++) {
        prom_label_t type = {.name = "type", .value = types[i]};
        prom_sample_u64(p, name, &type, 1, load(&values[i]));
    }
}

static void render(server_t *s, prom_page_t *p)
{
    metrics_t *m = &s->metrics;
    pthread_mutex_lock(&m->mu);
    log_stats_t st = m->log_stats;
    uint64_t conns = m->connections, subs = m->subscriptions;
    if (m->groups_text)
        prom_lines(p, m->groups_text, m->groups_len);
    pthread_mutex_unlock(&m->mu);
    gauge(p, "evstore_subscriptions", "Subscriptions and group consumers.", subs);
    counter(p, "evstore_appends_total", "Appends acknowledged.", st.appends);
    counter(p, "evstore_events_appended_total", "Events appended.", st.events_appended);
    counter(p, "evstore_bytes_written_total", "Log bytes written, headers included.",
            st.bytes_written);
    counter(p, "evstore_writes_total", "Group-commit writes.", st.writes);
    counter(p, "evstore_fdatasyncs_total", "fdatasync calls.", st.fdatasyncs);
    counter(p, "evstore_append_errors_total", "Appends failed by an I/O error.", st.append_errors);
    gauge(p, "evstore_head_position", "Next global position to be assigned.", st.head_position);
    gauge(p, "evstore_durable_position", "Positions below this are durable.", st.durable_position);
    gauge(p, "evstore_streams", "Streams in the log.", st.streams);
    gauge(p, "evstore_segments", "Segment files.", st.segments);
    gauge(p, "evstore_connections", "Open client connections.", conns);
    counter(p, "evstore_connections_total", "Client connections accepted.",
            load(&m->connections_total));
    counter(p, "evstore_connections_rejected_total", "Connections refused over the limit.",
            load(&m->connections_rejected));
    counter_by_type(p, "evstore_requests_total", "Requests by type.", request_names, m->requests,
                    0, METRICS_REQUEST_TYPES);
    counter_by_type(p, "evstore_errors_total", "Error answers by type.", error_names, m->errors, 1,
                    METRICS_ERROR_CODES);
    histogram(p, "evstore_fdatasync_seconds", "Latency of a group-commit write and its fdatasync.",
              m->sync_latency, latency_us, METRICS_LATENCY_BUCKETS, 1e-6,
              (double)load(&m->sync_latency_sum_ns) / 1e9);
    histogram(p, "evstore_group_commit_events", "Events per group-commit write.", m->group_events,
              group_events, METRICS_GROUP_BUCKETS, 1, (double)load(&m->group_events_sum));
}

/* Queues text (len bytes, malloc'd: freed by the response) as the answer. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *text, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_const(struct MHD_Connection *conn, unsigned status,
                                   const char *type, const char *text)
{
    char *copy = strdup(text);
    return copy ? reply(conn, status, type, copy, strlen(copy)) : MHD_NO;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **state)
{
    server_t *s = cls;
    (void)version, (void)upload, (void)upload_len, (void)state;
    const char *text_type = "text/plain; version=0.0.4";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_const(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text_type, "method not allowed\n");
    if (strcmp(url, "/health") == 0) {
        bool ok = s->metrics.ready && !s->stopping;
        return reply_const(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                           "application/json",
                           ok ? "{\"status\":\"ok\"}\n" : "{\"status\":\"stopping\"}\n");
    }
    if (strcmp(url, "/metrics") != 0)
        return reply_const(conn, MHD_HTTP_NOT_FOUND, text_type,
                           "not found: try /metrics or /health\n");
    prom_page_t page;
    prom_page_init(&page, METRICS_PAGE_BYTES_MAX);
    render(s, &page);
    int err = prom_page_error(&page);
    size_t len;
    char *text = prom_page_take(&page, &len);
    if (!text) {
        fprintf(stderr, "evstored: /metrics not rendered: %s\n", strerror(-err));
        return reply_const(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text_type,
                           "metrics page failed\n");
    }
    return reply(conn, MHD_HTTP_OK, text_type, text, len);
}

int metrics_start(server_t *s, const char *addr, char *bound, size_t bound_cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (net_parse_addr(addr, &ss, &len) != 0) {
        fprintf(stderr, "evstored: --metrics %s: not a HOST:PORT address\n", addr);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->metrics.httpd = MHD_start_daemon(flags, 0, NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR,
                                        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                                        (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT,
                                        (unsigned)10, MHD_OPTION_END);
    if (!s->metrics.httpd) {
        fprintf(stderr, "evstored: cannot serve metrics on %s (port in use?)\n", addr);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->metrics.httpd,
                                                           MHD_DAEMON_INFO_BIND_PORT);
    char host[128];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    snprintf(bound, bound_cap, "%s:%u", host, info ? (unsigned)info->port : 0u);
    return 0;
}

void metrics_stop(server_t *s)
{
    if (s->metrics.httpd)
        MHD_stop_daemon(s->metrics.httpd);
    s->metrics.httpd = NULL;
    free(s->metrics.groups_text);
    s->metrics.groups_text = NULL;
}
