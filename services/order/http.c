/* http.c -- oms-order's HTTP server on libmicrohttpd.
 *
 * One thread per connection (bounded by the connection limit), so a
 * handler may block on the store without holding up other connections.
 * A request's body is collected up to OMS_ORD_BODY_BYTES_MAX; a larger one
 * is answered 413 (at once when Content-Length says so, else once the rest
 * has been discarded). Every answer is counted in
 * oms_http_requests_total{route,method,code} and timed in
 * oms_http_request_seconds{route}.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "order.h"

/* Statuses with a cached counter per route and method; others are looked
 * up in the registry each time. */
static const unsigned http_codes[] = {200, 201, 400, 404, 405, 409, 413, 415, 500, 503};
#define HTTP_CODE_COUNT (sizeof http_codes / sizeof http_codes[0])

static const char *const http_method_names[OMS_ORD_METHOD_COUNT] = {
    [OMS_ORD_GET] = "GET", [OMS_ORD_HEAD] = "HEAD", [OMS_ORD_POST] = "POST",
    [OMS_ORD_OTHER] = "OTHER"};

struct oms_ord_http {
    struct MHD_Daemon *daemon;
    oms_ord_t *svc;
    oms_histogram_t *seconds[OMS_ORD_ROUTE_COUNT];
    _Atomic(oms_counter_t *) requests[OMS_ORD_ROUTE_COUNT][OMS_ORD_METHOD_COUNT][HTTP_CODE_COUNT];
};

struct oms_ord_req {
    struct MHD_Connection *conn;
    char path[512];
    oms_ord_method_t method;
    char *body;
    size_t body_len;
    bool too_large;
    int64_t start_ns;
};

/* ---- the request, for handlers ---------------------------------------- */

const char *oms_ord_req_path(const oms_ord_req_t *r)
{
    return r->path;
}

oms_ord_method_t oms_ord_req_method(const oms_ord_req_t *r)
{
    return r->method;
}

const char *oms_ord_req_body(const oms_ord_req_t *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}

bool oms_ord_req_too_large(const oms_ord_req_t *r)
{
    return r->too_large;
}

const char *oms_ord_req_header(const oms_ord_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

typedef struct {
    int (*fn)(void *ctx, const char *name, const char *value);
    void *ctx;
    int rc;
} http_query_walk_t;

static enum MHD_Result http_query_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    http_query_walk_t *w = cls;
    w->rc = w->fn(w->ctx, key, value);
    return w->rc == 0 ? MHD_YES : MHD_NO;
}

int oms_ord_req_query(const oms_ord_req_t *r,
                      int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    http_query_walk_t w = {fn, ctx, 0};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, http_query_one, &w);
    return w.rc;
}

/* ---- replies ----------------------------------------------------------- */

void oms_ord_reply_json(oms_ord_reply_t *out, unsigned status, json_t *value)
{
    free(out->body);
    out->body = value ? json_dumps(value, JSON_COMPACT) : NULL;
    json_decref(value);
    out->status = status;
    out->content_type = "application/json";
    if (!out->body) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        out->body = strdup(oom);
        out->status = 500;
    }
}

void oms_ord_reply_error(oms_ord_reply_t *out, unsigned status, const char *code,
                         const char *field, const char *fmt, ...)
{
    char message[OMS_ORD_ERROR_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", json_string(message));
    if (field)
        json_object_set_new(err, "field", json_string(field));
    json_t *root = json_object();
    json_object_set_new(root, "error", err);
    oms_ord_reply_json(out, status, root);
}

void oms_ord_reply_header(oms_ord_reply_t *out, const char *name, const char *value)
{
    if (out->header_count == OMS_ORD_REPLY_HEADERS_MAX)
        return;
    out->headers[out->header_count].name = name;
    snprintf(out->headers[out->header_count].value, sizeof out->headers[0].value, "%s", value);
    out->header_count++;
}

void oms_ord_reply_store_error(oms_ord_reply_t *out, int rc)
{
    if (evs_error_retryable(rc))
        oms_ord_reply_error(out, 503, "store_unavailable", NULL,
                            "the event store cannot be reached (%s); retry later",
                            evs_strerror(rc));
    else
        oms_ord_reply_error(out, 500, "store_error", NULL, "the event store failed: %s",
                            evs_strerror(rc));
}

/* ---- metrics ----------------------------------------------------------- */

static oms_counter_t *http_counter(oms_ord_http_t *h, oms_ord_route_t route,
                                   oms_ord_method_t method, unsigned status)
{
    size_t code = 0;
    while (code < HTTP_CODE_COUNT && http_codes[code] != status)
        code++;
    oms_counter_t *c = code < HTTP_CODE_COUNT ? atomic_load(&h->requests[route][method][code])
                                              : NULL;
    if (c)
        return c;
    char labels[128];
    snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",code=\"%u\"",
             oms_ord_route_name(route), http_method_names[method], status);
    c = oms_metrics_counter(h->svc->metrics, "oms_http_requests_total",
                            "HTTP requests answered, by route, method and status", labels);
    if (code < HTTP_CODE_COUNT)
        atomic_store(&h->requests[route][method][code], c);
    return c;
}

/* ---- the request lifecycle -------------------------------------------- */

static oms_ord_method_t http_method(const char *method)
{
    if (strcmp(method, "GET") == 0)
        return OMS_ORD_GET;
    if (strcmp(method, "HEAD") == 0)
        return OMS_ORD_HEAD;
    if (strcmp(method, "POST") == 0)
        return OMS_ORD_POST;
    return OMS_ORD_OTHER;
}

static enum MHD_Result http_send(oms_ord_req_t *r, oms_ord_reply_t *rep)
{
    char *body = rep->body ? rep->body : strdup("");
    rep->body = NULL;
    if (!body)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            rep->content_type ? rep->content_type : "application/json");
    for (size_t i = 0; i < rep->header_count; i++)
        MHD_add_response_header(resp, rep->headers[i].name, rep->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(r->conn, rep->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Answers the request: routes it, sends the reply, counts it. */
static enum MHD_Result http_finish(oms_ord_http_t *h, oms_ord_req_t *r)
{
    oms_ord_reply_t rep = {.status = 500};
    oms_ord_route_t route = oms_ord_route(h->svc, r, &rep);
    if (!rep.body)
        oms_ord_reply_error(&rep, 500, "internal", NULL, "no answer");
    unsigned status = rep.status;
    enum MHD_Result ret = http_send(r, &rep);
    free(rep.body);
    oms_counter_add(http_counter(h, route, r->method, status), 1);
    oms_histogram_observe(h->seconds[route], (double)(oms_mono_ns() - r->start_ns) / 1e9);
    return ret;
}

/* Keeps a body chunk, or marks the body too large and drops the rest. */
static void http_take_body(oms_ord_req_t *r, const char *data, size_t len)
{
    if (r->too_large)
        return;
    if (len > OMS_ORD_BODY_BYTES_MAX - r->body_len) {
        r->too_large = true;
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
        return;
    }
    if (!r->body) {
        r->body = malloc(OMS_ORD_BODY_BYTES_MAX + 1);
        if (!r->body) {
            r->too_large = true; /* nowhere to keep it: refused as too large */
            return;
        }
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
}

static bool http_declared_too_large(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (!cl)
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    return errno == ERANGE || (end != cl && n > OMS_ORD_BODY_BYTES_MAX);
}

static enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **req_cls)
{
    (void)version;
    oms_ord_http_t *h = cls;
    oms_ord_req_t *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->conn = conn;
        r->start_ns = oms_mono_ns();
        r->method = http_method(method);
        snprintf(r->path, sizeof r->path, "%s", url);
        *req_cls = r;
        if (http_declared_too_large(conn)) {
            r->too_large = true;
            return http_finish(h, r); /* answered before the body is read */
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        http_take_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return http_finish(h, r);
}

static void http_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    oms_ord_req_t *r = *req_cls;
    if (!r)
        return;
    free(r->body);
    free(r);
    *req_cls = NULL;
}

/* ---- the daemon -------------------------------------------------------- */

oms_ord_http_t *oms_ord_http_start(oms_ord_t *svc, const char *host, uint16_t port,
                                   uint32_t connections, uint16_t *bound_port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "oms-order: --http: %s is not an IPv4 address\n", host);
        return NULL;
    }
    oms_ord_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->svc = svc;
    for (int i = 0; i < OMS_ORD_ROUTE_COUNT; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", oms_ord_route_name((oms_ord_route_t)i));
        h->seconds[i] = oms_metrics_histogram(svc->metrics, "oms_http_request_seconds",
                                              "HTTP request latency, by route", labels);
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    h->daemon = MHD_start_daemon(flags, port, NULL, NULL, http_on_request, h,
                                 MHD_OPTION_SOCK_ADDR, &addr,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)OMS_ORD_HTTP_IDLE_S,
                                 MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, h,
                                 MHD_OPTION_END);
    if (!h->daemon) {
        fprintf(stderr, "oms-order: cannot listen on %s:%u (in use?)\n", host, port);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : port;
    return h;
}

void oms_ord_http_stop(oms_ord_http_t *h)
{
    if (!h)
        return;
    MHD_socket s = MHD_quiesce_daemon(h->daemon);
    if (s != MHD_INVALID_SOCKET)
        close(s);
    MHD_stop_daemon(h->daemon);
    free(h);
}
