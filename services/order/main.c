/* main.c -- oms-order: the HTTP/JSON API of the order management system.
 *
 * Takes the runtime's common flags (oms_config_parse(), service "order";
 * --metrics is accepted and ignored: /metrics is served on the API port)
 * plus its own. Connects to the store (waiting until it answers), listens,
 * prints "oms-order ready http=HOST:PORT", and serves until SIGINT or
 * SIGTERM, then stops accepting, lets requests in progress finish, and
 * exits 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "order.h"
#include "util.h"

#define MAIN_STORE_RETRY_MS 200 /* start-up: between attempts to reach the store */
#define MAIN_STOP_POLL_MS 50

typedef struct {
    const char *http;
    const char *readmodel;
    const char *connections;
    const char *store_timeout_ms;
} main_opts_t;

/* Connects to the store, retrying until it answers or a stop is asked. */
static int main_open_store(oms_ord_t *svc, volatile int *stop)
{
    bool told = false;
    /* A request retries a lost store only within its budget, then 503. */
    svc->cfg.store_retry_ms = svc->store_timeout_ms;
    while (!*stop) {
        int rc = oms_store_open(&svc->cfg, "oms-order", &svc->store);
        if (rc == 0)
            return 0;
        if (!told)
            fprintf(stderr, "oms-order: waiting for the store at %s:%u (%s)\n",
                    svc->cfg.store_host, svc->cfg.store_port, evs_strerror(rc));
        told = true;
        util_sleep_ms(MAIN_STORE_RETRY_MS);
    }
    return -EINTR;
}

static int main_parse(int argc, char **argv, oms_ord_t *svc, char *host, size_t cap,
                      uint16_t *port, uint32_t *connections)
{
    static char http_default[32], conns_default[16], timeout_default[16];
    snprintf(http_default, sizeof http_default, "127.0.0.1:%d", OMS_HTTP_PORT_DEFAULT);
    snprintf(conns_default, sizeof conns_default, "%u", OMS_ORD_HTTP_CONNECTIONS_DEFAULT);
    snprintf(timeout_default, sizeof timeout_default, "%u", OMS_ORD_STORE_TIMEOUT_MS_DEFAULT);
    main_opts_t o = {http_default, "data/oms/readmodel.db", conns_default, timeout_default};
    const oms_opt_t opts[] = {
        {"http", "OMS_HTTP", "HOST:PORT of the API, /metrics and /health (port 0 = any)",
         &o.http, false},
        {"readmodel", "OMS_READMODEL", "the SQLite read model written by oms-projections",
         &o.readmodel, false},
        {"http-connections", "OMS_HTTP_CONNECTIONS",
         "HTTP connections at once (one thread each)", &o.connections, false},
        {"store-timeout-ms", "OMS_STORE_TIMEOUT_MS",
         "how long a request retries an unreachable store before 503", &o.store_timeout_ms,
         false},
    };
    if (oms_config_parse(&svc->cfg, "order", OMS_HTTP_PORT_DEFAULT, argc, argv, opts,
                         sizeof opts / sizeof opts[0]) != 0 ||
        oms_parse_hostport("http", o.http, host, cap, port, true) != 0 ||
        oms_parse_u32("http-connections", o.connections, 1, OMS_ORD_HTTP_CONNECTIONS_MAX,
                      connections) != 0 ||
        oms_parse_u32("store-timeout-ms", o.store_timeout_ms, 0, OMS_ORD_STORE_TIMEOUT_MS_MAX,
                      &svc->store_timeout_ms) != 0)
        return -EINVAL;
    svc->readmodel_path = o.readmodel;
    return 0;
}

int main(int argc, char **argv)
{
    oms_ord_t svc = {0};
    char host[OMS_NAME_BYTES_MAX];
    uint16_t port;
    uint32_t connections;
    if (main_parse(argc, argv, &svc, host, sizeof host, &port, &connections) != 0)
        return 2;
    volatile int *stop = oms_stop_flag_install();
    svc.metrics = oms_metrics_new("order");
    if (!svc.metrics)
        return 1;
    svc.orders_placed = oms_metrics_counter(svc.metrics, "oms_orders_placed_total",
                                            "orders accepted (OrderPlaced appended)", NULL);
    svc.idempotent_replays =
        oms_metrics_counter(svc.metrics, "oms_orders_idempotent_replays_total",
                            "POST /orders answered again from an Idempotency-Key", NULL);
    int status = 0;
    if (main_open_store(&svc, stop) != 0)
        goto out_free_metrics;
    uint16_t bound;
    oms_ord_http_t *http = oms_ord_http_start(&svc, host, port, connections, &bound);
    if (!http) {
        status = 1;
        goto out_close_store;
    }
    printf("oms-order ready http=%s:%u\n", host, (unsigned)bound);
    fflush(stdout);
    while (!*stop)
        util_sleep_ms(MAIN_STOP_POLL_MS);
    oms_ord_http_stop(http);
out_close_store:
    oms_store_close(svc.store);
out_free_metrics:
    oms_metrics_free(svc.metrics);
    return status;
}
