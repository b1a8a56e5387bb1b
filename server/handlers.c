/* handlers.c -- one request frame in, its answer out: the protocol mapped
 * onto the storage engine. */
#include "server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef Evstore__V1__ErrorCode error_code_t;

static void handle_hello(conn_t *c, uint64_t corr, const Evstore__V1__Hello *h)
{
    if (h->protocol_version != PROTOCOL_VERSION) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__PROTOCOL_VERSION,
                        "unsupported protocol version; this server speaks version 1", 0, 0);
        return;
    }
    c->hello_done = true;
    Evstore__V1__HelloOk ok = EVSTORE__V1__HELLO_OK__INIT;
    ok.protocol_version = PROTOCOL_VERSION;
    ok.server_version = SERVER_VERSION;
    ok.frame_bytes_max = c->srv->cfg.frame_bytes_max;
    ok.append_events_max = c->srv->cfg.log.batch_events_max;
    ok.read_events_max = c->srv->cfg.read_events_max;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_HELLO_OK, &ok);
}

/* ---- append ---- */

typedef struct {
    conn_t *conn;
    uint64_t corr;
    uint32_t streams;
} append_ctx_t;

static void append_answer(conn_t *c, uint64_t corr, uint32_t streams,
                          const log_append_result_t *res)
{
    if (res->status != 0) {
        conn_send_error(c, corr, error_code_of(res->status), log_strerror(res->status),
                        res->failed_stream, res->actual_version);
        return;
    }
    Evstore__V1__AppendResponse ok = EVSTORE__V1__APPEND_RESPONSE__INIT;
    ok.first_position = res->first_position;
    ok.event_count = res->event_count;
    ok.idempotent = res->idempotent;
    ok.n_last_versions = streams;
    ok.last_versions = (int64_t *)res->last_versions;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_APPEND_OK, &ok);
}

static void append_done(void *ctx, const log_append_result_t *res)
{
    append_ctx_t *a = ctx;
    append_answer(a->conn, a->corr, a->streams, res);
    conn_release(a->conn);
    free(a);
}

/* Builds the engine's request over the decoded message (no copies). */
static int append_build(const Evstore__V1__AppendRequest *m, log_append_t *req,
                        log_stream_append_t *sa, log_event_in_t *ev, size_t ev_cap)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_streams; i++) {
        const Evstore__V1__StreamAppend *s = m->streams[i];
        if (s->n_events > ev_cap - k || s->expected_version < LOG_EXPECT_STREAM_EXISTS)
            return LOG_EBAD_REQUEST;
        sa[i] = (log_stream_append_t){.stream = s->stream, .stream_len = strlen(s->stream),
                                      .expected_version = s->expected_version, .events = ev + k,
                                      .event_count = (uint32_t)s->n_events};
        for (size_t j = 0; j < s->n_events; j++, k++) {
            const Evstore__V1__EventData *e = s->events[j];
            ev[k] = (log_event_in_t){.type = e->type, .type_len = strlen(e->type),
                                     .metadata = e->metadata.data, .metadata_len = e->metadata.len,
                                     .data = e->data.data, .data_len = e->data.len,
                                     .timestamp_ns = e->timestamp_ns};
            memcpy(ev[k].id, e->id.data, 16);
        }
    }
    req->streams = sa;
    req->stream_count = (uint32_t)m->n_streams;
    return 0;
}

static void handle_append(conn_t *c, uint64_t corr, const Evstore__V1__AppendRequest *m)
{
    server_t *s = c->srv;
    size_t events = 0;
    for (size_t i = 0; i < m->n_streams; i++)
        events += m->streams[i]->n_events;
    if (m->n_streams > s->cfg.log.batch_streams_max || events > s->cfg.log.batch_events_max) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__TOO_LARGE,
                        "append has more streams or events than the server allows", 0, 0);
        return;
    }
    log_stream_append_t *sa = calloc(m->n_streams, sizeof *sa);
    log_event_in_t *ev = calloc(events, sizeof *ev);
    append_ctx_t *a = malloc(sizeof *a);
    log_append_t req = {0}; /* never a system append: clients cannot write '$' streams */
    log_append_result_t failure;
    int rc = !sa || !ev || !a ? -ENOMEM : append_build(m, &req, sa, ev, events);
    if (rc == 0) {
        *a = (append_ctx_t){.conn = c, .corr = corr, .streams = (uint32_t)m->n_streams};
        rc = log_append(s->log, &req, append_done, a, &failure);
        if (rc == 0) {
            c->refs++;
            a = NULL;
        } else {
            failure.status = rc;
            append_answer(c, corr, (uint32_t)m->n_streams, &failure);
        }
    } else {
        conn_send_error(c, corr, error_code_of(rc), log_strerror(rc), 0, 0);
    }
    free(a);
    free(ev);
    free(sa);
}

/* ---- read ---- */

static void handle_read(conn_t *c, uint64_t corr, const Evstore__V1__ReadRequest *m)
{
    server_t *s = c->srv;
    log_filter_t filter;
    uint32_t max = m->max_count == 0 || m->max_count > s->cfg.read_events_max
                       ? s->cfg.read_events_max : m->max_count;
    log_read_t req = {.stream = m->stream, .stream_len = strlen(m->stream),
                      .from = m->from_end ? LOG_READ_END : m->from,
                      .backwards = m->backwards || m->from_end, .max_count = max,
                      .filter = events_filter(m->filter, &filter)};
    events_t acc;
    events_init(&acc, s->cfg.frame_bytes_max / 2, NULL);
    log_read_result_t res;
    int rc = events_read(&acc, s->log, &req, &res);
    if (rc) {
        conn_send_error(c, corr, error_code_of(rc), log_strerror(rc), 0, 0);
    } else {
        Evstore__V1__ReadResponse ok = EVSTORE__V1__READ_RESPONSE__INIT;
        ok.events = acc.ptrs;
        ok.n_events = acc.count;
        ok.next = res.next;
        ok.end = res.end;
        ok.stream_version = res.stream_version;
        send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_READ_OK, &ok);
    }
    events_free(&acc);
}

/* ---- stream info, list, stats, ping ---- */

static void handle_stream_info(conn_t *c, uint64_t corr, const Evstore__V1__StreamInfoRequest *m)
{
    int64_t version = LOG_VERSION_NONE;
    int rc = log_stream_version(c->srv->log, m->stream, strlen(m->stream), &version);
    Evstore__V1__StreamInfoResponse ok = EVSTORE__V1__STREAM_INFO_RESPONSE__INIT;
    ok.stream = m->stream;
    ok.version = rc == 0 ? version : LOG_VERSION_NONE;
    ok.exists = rc == 0;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_STREAM_INFO_OK, &ok);
}

typedef struct {
    const char *prefix, *after;
    size_t prefix_len;
    Evstore__V1__StreamSummary *items;
    size_t count, cap;
    bool oom;
} list_acc_t;

static int list_visit(void *ctx, const char *name, size_t len, int64_t version)
{
    list_acc_t *l = ctx;
    if (len < l->prefix_len || memcmp(name, l->prefix, l->prefix_len) != 0)
        return 0;
    if (l->after[0] && strcmp(name, l->after) <= 0)
        return 0;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        Evstore__V1__StreamSummary *fresh = realloc(l->items, cap * sizeof *fresh);
        if (!fresh)
            return (l->oom = true), 1;
        l->items = fresh;
        l->cap = cap;
    }
    Evstore__V1__StreamSummary *it = &l->items[l->count++];
    evstore__v1__stream_summary__init(it);
    it->name = (char *)name; /* the engine keeps names NUL-terminated and alive */
    it->version = version;
    return 0;
}

static int summary_cmp(const void *a, const void *b)
{
    return strcmp(((const Evstore__V1__StreamSummary *)a)->name,
                  ((const Evstore__V1__StreamSummary *)b)->name);
}

static void handle_list(conn_t *c, uint64_t corr, const Evstore__V1__ListStreamsRequest *m)
{
    list_acc_t l = {.prefix = m->prefix, .prefix_len = strlen(m->prefix), .after = m->after};
    log_streams_each(c->srv->log, list_visit, &l);
    size_t max = m->max_count == 0 || m->max_count > SERVER_LIST_STREAMS_MAX
                     ? SERVER_LIST_STREAMS_MAX : m->max_count;
    Evstore__V1__StreamSummary **ptrs = malloc((l.count ? l.count : 1) * sizeof *ptrs);
    if (l.oom || !ptrs) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
    } else {
        if (l.count > 1)
            qsort(l.items, l.count, sizeof *l.items, summary_cmp);
        size_t n = l.count < max ? l.count : max;
        for (size_t i = 0; i < n; i++)
            ptrs[i] = &l.items[i];
        Evstore__V1__ListStreamsResponse ok = EVSTORE__V1__LIST_STREAMS_RESPONSE__INIT;
        ok.streams = ptrs;
        ok.n_streams = n;
        ok.end = n == l.count;
        send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_LIST_STREAMS_OK, &ok);
    }
    free(ptrs);
    free(l.items);
}

static void handle_stats(conn_t *c, uint64_t corr)
{
    server_t *s = c->srv;
    log_stats_t st;
    log_stats(s->log, &st);
    Evstore__V1__ServerStatsResponse ok = EVSTORE__V1__SERVER_STATS_RESPONSE__INIT;
    ok.head_position = st.head_position;
    ok.durable_position = st.durable_position;
    ok.streams = st.streams;
    ok.appends = st.appends;
    ok.events_appended = st.events_appended;
    ok.bytes_written = st.bytes_written;
    ok.fdatasyncs = st.fdatasyncs;
    ok.connections = s->conn_count;
    ok.segments = st.segments;
    ok.durability = (char *)log_durability_name(s->cfg.log.durability);
    ok.uptime_ms = (util_mono_ns() - s->started_ns) / 1000000u;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_SERVER_STATS_OK, &ok);
}

static void handle_ping(conn_t *c, uint64_t corr, const Evstore__V1__Ping *m)
{
    Evstore__V1__Pong ok = EVSTORE__V1__PONG__INIT;
    ok.nonce = m->nonce;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_PONG, &ok);
}

static int request_type(Evstore__V1__Envelope__BodyCase kind)
{
    switch (kind) {
    case EVSTORE__V1__ENVELOPE__BODY_HELLO: return REQ_HELLO;
    case EVSTORE__V1__ENVELOPE__BODY_APPEND: return REQ_APPEND;
    case EVSTORE__V1__ENVELOPE__BODY_READ: return REQ_READ;
    case EVSTORE__V1__ENVELOPE__BODY_STREAM_INFO: return REQ_STREAM_INFO;
    case EVSTORE__V1__ENVELOPE__BODY_LIST_STREAMS: return REQ_LIST_STREAMS;
    case EVSTORE__V1__ENVELOPE__BODY_SERVER_STATS: return REQ_STATS;
    case EVSTORE__V1__ENVELOPE__BODY_PING: return REQ_PING;
    default: return REQ_OTHER;
    }
}

static void dispatch(conn_t *c, const envelope_t *env)
{
    uint64_t corr = env->correlation_id;
    switch (env->body_case) {
    case EVSTORE__V1__ENVELOPE__BODY_APPEND: handle_append(c, corr, env->append); break;
    case EVSTORE__V1__ENVELOPE__BODY_READ: handle_read(c, corr, env->read); break;
    case EVSTORE__V1__ENVELOPE__BODY_STREAM_INFO: handle_stream_info(c, corr, env->stream_info); break;
    case EVSTORE__V1__ENVELOPE__BODY_LIST_STREAMS: handle_list(c, corr, env->list_streams); break;
    case EVSTORE__V1__ENVELOPE__BODY_SERVER_STATS: handle_stats(c, corr); break;
    case EVSTORE__V1__ENVELOPE__BODY_PING: handle_ping(c, corr, env->ping); break;
    case EVSTORE__V1__ENVELOPE__BODY_SUBSCRIBE: sub_start(c, corr, env->subscribe); break;
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_CREATE: group_create(c, corr, env->group_create); break;
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_UPDATE: group_update(c, corr, env->group_update); break;
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_DELETE: group_delete(c, corr, env->group_delete); break;
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_LIST: group_list(c, corr); break;
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_INFO: group_info(c, corr, env->group_info); break;
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_JOIN: group_join(c, corr, env->group_join); break;
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_ACK: group_ack(c, corr, env->group_ack); break;
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_NACK: group_nack(c, corr, env->group_nack); break;
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_REPLAY_PARKED:
        group_replay_parked(c, corr, env->group_replay_parked);
        break;
    case EVSTORE__V1__ENVELOPE__BODY_UNSUBSCRIBE:
        if (!sub_stop(c, corr) && !group_leave(c, corr))
            conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BAD_REQUEST,
                            "no subscription with this correlation id", 0, 0);
        break;
    case EVSTORE__V1__ENVELOPE__BODY_HELLO:
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BAD_REQUEST, "hello was already sent",
                        0, 0);
        break;
    default:
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BAD_REQUEST,
                        "not a request this server answers", 0, 0);
        break;
    }
}

void handle_frame(conn_t *c, const uint8_t *body, size_t len)
{
    envelope_t *env = frame_decode(body, len);
    if (!env) {
        conn_send_error(c, 0, EVSTORE__V1__ERROR_CODE__BAD_REQUEST,
                        "frame does not hold a valid Envelope", 0, 0);
        return;
    }
    metrics_count_request(c->srv, request_type(env->body_case));
    const char *bad = frame_check(env);
    if (!c->hello_done) {
        if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_HELLO)
            handle_hello(c, env->correlation_id, env->hello);
        else
            conn_send_error(c, env->correlation_id, EVSTORE__V1__ERROR_CODE__NOT_READY,
                            "the first frame must be a Hello", 0, 0);
    } else if (bad) {
        conn_send_error(c, env->correlation_id, EVSTORE__V1__ERROR_CODE__BAD_REQUEST, bad, 0, 0);
    } else if (c->srv->stopping && env->body_case == EVSTORE__V1__ENVELOPE__BODY_APPEND) {
        conn_send_error(c, env->correlation_id, EVSTORE__V1__ERROR_CODE__NOT_READY,
                        "the server is stopping", 0, 0);
    } else {
        dispatch(c, env);
    }
    frame_free(env);
}
