/* info.c -- the small requests: stream info, list streams, server stats,
 * ping. */
#include "client_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int evs_stream_info(evs_conn_t *conn, const char *stream, evs_stream_info_t *out)
{
    evsi_errmsg_clear();
    out->exists = false;
    out->version = EVS_VERSION_NONE;
    if (!stream || !stream[0]) {
        evsi_errmsg_set("evs_stream_info: no stream");
        return -EINVAL;
    }
    Evstore__V1__StreamInfoRequest si = EVSTORE__V1__STREAM_INFO_REQUEST__INIT;
    si.stream = (char *)stream;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_STREAM_INFO;
    env.stream_info = &si;
    envelope_t *resp = NULL;
    int err = evsi_request_expect(conn, &env, EVSTORE__V1__ENVELOPE__BODY_STREAM_INFO_OK, &resp);
    if (err == EVS_ESTREAM_NOT_FOUND)
        return 0; /* documented: not an error here */
    if (err)
        return err;
    out->exists = resp->stream_info_ok->exists;
    out->version = out->exists ? resp->stream_info_ok->version : EVS_VERSION_NONE;
    frame_free(resp);
    return 0;
}

/* Moves a ListStreamsResponse into out; out then owns env. */
static int stream_list_take(envelope_t *env, evs_stream_list_t *out)
{
    const Evstore__V1__ListStreamsResponse *ls = env->list_streams_ok;
    if (ls->n_streams) {
        out->streams = calloc(ls->n_streams, sizeof *out->streams);
        if (!out->streams) {
            frame_free(env);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < ls->n_streams; i++) {
        out->streams[i].name = ls->streams[i]->name;
        out->streams[i].version = ls->streams[i]->version;
    }
    out->count = ls->n_streams;
    out->end = ls->end;
    out->owner_ = env;
    return 0;
}

int evs_list_streams(evs_conn_t *conn, const char *prefix, const char *after,
                     uint32_t max_count, evs_stream_list_t *out)
{
    memset(out, 0, sizeof *out);
    evsi_errmsg_clear();
    Evstore__V1__ListStreamsRequest ls = EVSTORE__V1__LIST_STREAMS_REQUEST__INIT;
    ls.prefix = (char *)(prefix ? prefix : "");
    ls.after = (char *)(after ? after : "");
    ls.max_count = max_count;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_LIST_STREAMS;
    env.list_streams = &ls;
    envelope_t *resp = NULL;
    int err = evsi_request_expect(conn, &env, EVSTORE__V1__ENVELOPE__BODY_LIST_STREAMS_OK, &resp);
    if (err)
        return err;
    return stream_list_take(resp, out);
}

void evs_stream_list_free(evs_stream_list_t *list)
{
    if (!list)
        return;
    free(list->streams);
    frame_free(list->owner_);
    memset(list, 0, sizeof *list);
}

static void server_stats_take(const Evstore__V1__ServerStatsResponse *s, evs_server_stats_t *out)
{
    out->head_position = s->head_position;
    out->durable_position = s->durable_position;
    out->streams = s->streams;
    out->appends = s->appends;
    out->events_appended = s->events_appended;
    out->bytes_written = s->bytes_written;
    out->fdatasyncs = s->fdatasyncs;
    out->connections = s->connections;
    out->segments = s->segments;
    out->uptime_ms = s->uptime_ms;
    snprintf(out->durability, sizeof out->durability, "%s", s->durability ? s->durability : "");
}

int evs_server_stats(evs_conn_t *conn, evs_server_stats_t *out)
{
    memset(out, 0, sizeof *out);
    evsi_errmsg_clear();
    Evstore__V1__ServerStatsRequest ss = EVSTORE__V1__SERVER_STATS_REQUEST__INIT;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_SERVER_STATS;
    env.server_stats = &ss;
    envelope_t *resp = NULL;
    int err = evsi_request_expect(conn, &env, EVSTORE__V1__ENVELOPE__BODY_SERVER_STATS_OK, &resp);
    if (err)
        return err;
    server_stats_take(resp->server_stats_ok, out);
    frame_free(resp);
    return 0;
}

int evs_ping(evs_conn_t *conn, uint64_t *rtt_us)
{
    evsi_errmsg_clear();
    uint64_t start = util_mono_ns();
    Evstore__V1__Ping ping = EVSTORE__V1__PING__INIT;
    ping.nonce = start;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_PING;
    env.ping = &ping;
    envelope_t *resp = NULL;
    int err = evsi_request_expect(conn, &env, EVSTORE__V1__ENVELOPE__BODY_PONG, &resp);
    if (err)
        return err;
    if (resp->pong->nonce != start) {
        evsi_errmsg_set("pong nonce %llu, sent %llu", (unsigned long long)resp->pong->nonce,
                   (unsigned long long)start);
        err = EVS_EPROTOCOL;
    }
    frame_free(resp);
    if (rtt_us && !err)
        *rtt_us = (util_mono_ns() - start) / 1000u;
    return err;
}
