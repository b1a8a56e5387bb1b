/* append.c -- evs_append() and evs_append_async(): building the
 * AppendRequest and reading its AppendResponse or Error. */
#include "client_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The protobuf-c structures of one append, in one allocation. The byte
 * fields point into the caller's events (they are only read while packing),
 * except the ids: copied, with an all-zero id replaced by a random one, so
 * that every attempt of this append sends the same ids (the store then
 * writes it once however often the library retries it). */
typedef struct {
    Evstore__V1__AppendRequest req;
    Evstore__V1__StreamAppend *stream_ptrs[EVS_APPEND_STREAMS_MAX];
    Evstore__V1__StreamAppend streams[EVS_APPEND_STREAMS_MAX];
    Evstore__V1__EventData **event_ptrs; /* all streams' events, back to back */
    Evstore__V1__EventData *events;
    uint8_t (*ids)[EVS_ID_BYTES];
} append_msg_t;

static int append_check(const evs_stream_append_t *streams, size_t stream_count)
{
    if (!streams || stream_count == 0 || stream_count > EVS_APPEND_STREAMS_MAX) {
        evsi_errmsg_set("an append needs 1 to %u streams", EVS_APPEND_STREAMS_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < stream_count; i++) {
        const evs_stream_append_t *s = &streams[i];
        if (!s->stream || !s->stream[0] || s->event_count == 0 || !s->events) {
            evsi_errmsg_set("stream %zu: empty name or no events", i);
            return -EINVAL;
        }
        for (size_t k = 0; k < s->event_count; k++) {
            const evs_event_t *e = &s->events[k];
            if (!e->type || !e->type[0] || (!e->data && e->data_len) ||
                (!e->metadata && e->metadata_len)) {
                evsi_errmsg_set("stream %zu event %zu: empty type or NULL bytes", i, k);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* Copies e's id into id, or a random one when e's is all zero. */
static int id_fix(uint8_t id[EVS_ID_BYTES], const evs_event_t *e)
{
    static const uint8_t zero[EVS_ID_BYTES];
    if (memcmp(e->id, zero, EVS_ID_BYTES) != 0) {
        memcpy(id, e->id, EVS_ID_BYTES);
        return 0;
    }
    return evs_id_random(id);
}

static void event_fill(Evstore__V1__EventData *out, const evs_event_t *e,
                       const uint8_t id[EVS_ID_BYTES])
{
    evstore__v1__event_data__init(out);
    out->id.data = (uint8_t *)id;
    out->id.len = EVS_ID_BYTES;
    out->type = (char *)e->type;
    out->data.data = (uint8_t *)e->data;
    out->data.len = e->data_len;
    out->metadata.data = (uint8_t *)e->metadata;
    out->metadata.len = e->metadata_len;
    out->timestamp_ns = e->timestamp_ns;
}

static void append_msg_free(append_msg_t *m)
{
    if (!m)
        return;
    free(m->event_ptrs);
    free(m->events);
    free(m);
}

/* Builds the AppendRequest of a checked append. */
static int append_msg_build(const evs_stream_append_t *streams, size_t stream_count,
                            append_msg_t **out)
{
    size_t total = 0;
    for (size_t i = 0; i < stream_count; i++)
        total += streams[i].event_count;
    append_msg_t *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->event_ptrs = malloc(total * sizeof *m->event_ptrs);
    /* The ids live after the events, in one allocation. */
    m->events = malloc(total * (sizeof *m->events + sizeof *m->ids));
    if (!m->event_ptrs || !m->events) {
        append_msg_free(m);
        return -ENOMEM;
    }
    m->ids = (uint8_t(*)[EVS_ID_BYTES])(m->events + total);
    evstore__v1__append_request__init(&m->req);
    m->req.n_streams = stream_count;
    m->req.streams = m->stream_ptrs;
    size_t next = 0;
    for (size_t i = 0; i < stream_count; i++) {
        Evstore__V1__StreamAppend *sa = &m->streams[i];
        evstore__v1__stream_append__init(sa);
        sa->stream = (char *)streams[i].stream;
        sa->expected_version = streams[i].expected_version;
        sa->n_events = streams[i].event_count;
        sa->events = &m->event_ptrs[next];
        for (size_t k = 0; k < streams[i].event_count; k++, next++) {
            int err = id_fix(m->ids[next], &streams[i].events[k]);
            if (err) {
                append_msg_free(m);
                return err;
            }
            event_fill(&m->events[next], &streams[i].events[k], m->ids[next]);
            m->event_ptrs[next] = &m->events[next];
        }
        m->stream_ptrs[i] = sa;
    }
    *out = m;
    return 0;
}

static void append_envelope(envelope_t *env, append_msg_t *m)
{
    evstore__v1__envelope__init(env);
    env->body_case = EVSTORE__V1__ENVELOPE__BODY_APPEND;
    env->append = &m->req;
}

/* Fills res from an Error answer; returns its code. */
static int append_error_from(const envelope_t *env, evs_append_result_t *res)
{
    int err = evsi_error_from_envelope(env);
    res->failed_stream = env->error->stream_index;
    res->actual_version = env->error->actual_version;
    snprintf(res->message, sizeof res->message, "%s", evs_errmsg());
    return err;
}

int evsi_append_result_from(const envelope_t *env, evs_append_result_t *res)
{
    if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR)
        return append_error_from(env, res);
    if (env->body_case != EVSTORE__V1__ENVELOPE__BODY_APPEND_OK ||
        env->append_ok->n_last_versions > EVS_APPEND_STREAMS_MAX) {
        snprintf(res->message, sizeof res->message, "server answered an append with message %d",
                 (int)env->body_case);
        evsi_errmsg_set("%s", res->message);
        return EVS_EPROTOCOL;
    }
    const Evstore__V1__AppendResponse *ok = env->append_ok;
    res->first_position = ok->first_position;
    res->event_count = ok->event_count;
    res->idempotent = ok->idempotent;
    res->stream_count = ok->n_last_versions;
    memcpy(res->last_versions, ok->last_versions, ok->n_last_versions * sizeof(int64_t));
    return 0;
}

int evs_append(evs_conn_t *conn, const evs_stream_append_t *streams, size_t stream_count,
               evs_append_result_t *res)
{
    evs_append_result_t local;
    res = res ? res : &local;
    memset(res, 0, sizeof *res);
    evsi_errmsg_clear();
    int err = append_check(streams, stream_count);
    append_msg_t *m = NULL;
    if (!err)
        err = append_msg_build(streams, stream_count, &m);
    if (err)
        goto out_message;
    envelope_t env;
    append_envelope(&env, m);
    envelope_t *resp = NULL;
    err = evsi_request_sync(conn, &env, EVSTORE__V1__ENVELOPE__BODY_APPEND_OK, &resp);
    append_msg_free(m);
    if (!err) {
        err = evsi_append_result_from(resp, res);
        frame_free(resp);
    }
out_message:
    if (err && !res->message[0])
        snprintf(res->message, sizeof res->message, "%s", evs_errmsg());
    return err;
}

int evs_append_async(evs_conn_t *conn, const evs_stream_append_t *streams,
                     size_t stream_count, evs_done_cb cb, void *ctx)
{
    evsi_errmsg_clear();
    if (!cb) {
        evsi_errmsg_set("evs_append_async needs a callback");
        return -EINVAL;
    }
    int err = append_check(streams, stream_count);
    append_msg_t *m = NULL;
    if (!err)
        err = append_msg_build(streams, stream_count, &m);
    if (err)
        return err;
    envelope_t env;
    append_envelope(&env, m);
    err = evsi_request_async(conn, &env, cb, ctx);
    append_msg_free(m);
    return err;
}
