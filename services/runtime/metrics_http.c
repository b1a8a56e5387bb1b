/* metrics_http.c -- /metrics and /health over HTTP with libmicrohttpd. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oms.h"

struct oms_metrics_http {
    struct MHD_Daemon *daemon;
    oms_metrics_t *metrics;
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, char *body,
                               enum MHD_ResponseMemoryMode mode, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    oms_metrics_http_t *h = cls;
    if (strcmp(method, "GET") != 0)
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", MHD_RESPMEM_PERSISTENT,
                       "text/plain");
    if (strcmp(url, "/health") == 0)
        return respond(conn, MHD_HTTP_OK, "ok\n", MHD_RESPMEM_PERSISTENT, "text/plain");
    if (strcmp(url, "/metrics") == 0) {
        char *text = oms_metrics_render(h->metrics);
        if (!text)
            return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
                           MHD_RESPMEM_PERSISTENT, "text/plain");
        return respond(conn, MHD_HTTP_OK, text, MHD_RESPMEM_MUST_FREE,
                       "text/plain; version=0.0.4");
    }
    return respond(conn, MHD_HTTP_NOT_FOUND, "not found: /metrics or /health\n",
                   MHD_RESPMEM_PERSISTENT, "text/plain");
}

oms_metrics_http_t *oms_metrics_http_start(oms_metrics_t *m, const char *host, uint16_t port,
                                           uint16_t *bound_port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host ? host : "127.0.0.1", &addr.sin_addr) != 1) {
        fprintf(stderr, "metrics: %s is not an IPv4 address\n", host);
        return NULL;
    }
    oms_metrics_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->metrics = m;
    h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port, NULL,
                                 NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &addr,
                                 MHD_OPTION_CONNECTION_LIMIT, 64u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!h->daemon) {
        fprintf(stderr, "metrics: cannot listen on %s:%u (in use?)\n", host ? host : "127.0.0.1",
                port);
        free(h);
        return NULL;
    }
    if (bound_port) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        *bound_port = info ? info->port : port;
    }
    return h;
}

void oms_metrics_http_stop(oms_metrics_http_t *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
