/* store.c -- the services' connection to evstored: one evs_conn_t shared by
 * threads. Reconnection and retries live in libevstore (retry_ms_max in
 * evs_options_t): the helpers here only add the services' conveniences. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "oms.h"

struct oms_store {
    evs_options_t opts;
    char host[OMS_NAME_BYTES_MAX];
    char client_name[OMS_NAME_BYTES_MAX];
    evs_conn_t *conn;
};

int oms_store_open(const oms_config_t *cfg, const char *client_name, oms_store_t **out)
{
    oms_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    snprintf(s->client_name, sizeof s->client_name, "%s", client_name);
    oms_store_options(cfg, s->client_name, &s->opts);
    snprintf(s->host, sizeof s->host, "%s", cfg->store_host);
    s->opts.host = s->host;
    int rc = evs_connect(&s->opts, &s->conn);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void oms_store_close(oms_store_t *s)
{
    if (!s)
        return;
    evs_close(s->conn);
    free(s);
}

evs_conn_t *oms_store_conn(oms_store_t *s)
{
    return s->conn;
}

int oms_append(oms_store_t *s, const evs_stream_append_t *streams, size_t stream_count,
               evs_append_result_t *res)
{
    return evs_append(s->conn, streams, stream_count, res);
}

int oms_append_one(oms_store_t *s, const char *stream, int64_t expected_version,
                   const evs_event_t *events, size_t count, evs_append_result_t *res)
{
    evs_stream_append_t one = {.stream = stream, .expected_version = expected_version,
                               .events = events, .event_count = count};
    return evs_append(s->conn, &one, 1, res);
}

int oms_read_stream(oms_store_t *s, const char *stream, uint64_t from, oms_event_fn fn,
                    void *ctx, int64_t *last_version)
{
    if (last_version)
        *last_version = EVS_VERSION_NONE;
    evs_read_t req = {.stream = stream, .from = from};
    for (;;) {
        evs_read_result_t res = {0};
        int rc = evs_read(s->conn, &req, &res);
        if (rc == EVS_ESTREAM_NOT_FOUND)
            return 0;
        if (rc != 0)
            return rc;
        if (last_version)
            *last_version = res.stream_version;
        for (size_t i = 0; i < res.count && rc == 0; i++)
            rc = fn(ctx, &res.events[i]);
        bool end = res.end || (res.count == 0 && res.next == req.from);
        req.from = res.next;
        evs_read_result_free(&res);
        if (rc != 0 || end)
            return rc;
    }
}
