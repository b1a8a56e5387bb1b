/* read.c -- evs_read(): one page of a stream, a category or $all. The
 * result's events point into the decoded answer, which the result owns. */
#include "client_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool evsi_filter_fill(Evstore__V1__EventFilter *filter, const char *const *types, size_t type_count,
                 const char *type_prefix)
{
    evstore__v1__event_filter__init(filter);
    if (!type_count && !(type_prefix && type_prefix[0]))
        return false;
    filter->n_types = type_count;
    filter->types = (char **)types;
    filter->type_prefix = (char *)(type_prefix ? type_prefix : "");
    return true;
}

static void read_request_fill(Evstore__V1__ReadRequest *rr, Evstore__V1__EventFilter *filter,
                              const evs_read_t *req)
{
    evstore__v1__read_request__init(rr);
    rr->stream = (char *)req->stream;
    rr->from = req->from;
    rr->from_end = req->from_end;
    rr->backwards = req->backwards || req->from_end;
    rr->max_count = req->max_count;
    if (evsi_filter_fill(filter, req->types, req->type_count, req->type_prefix))
        rr->filter = filter;
}

void evsi_event_from_wire(evs_recorded_event_t *out, const Evstore__V1__RecordedEvent *e)
{
    out->position = e->position;
    out->version = e->version;
    out->timestamp_ns = e->timestamp_ns;
    memset(out->id, 0, sizeof out->id);
    memcpy(out->id, e->id.data, e->id.len < EVS_ID_BYTES ? e->id.len : EVS_ID_BYTES);
    out->stream = e->stream;
    out->type = e->type;
    out->data = e->data.data;
    out->data_len = e->data.len;
    out->metadata = e->metadata.data;
    out->metadata_len = e->metadata.len;
}

/* Moves a ReadResponse into res; res then owns env. */
static int read_result_take(envelope_t *env, evs_read_result_t *res)
{
    const Evstore__V1__ReadResponse *rr = env->read_ok;
    if (rr->n_events) {
        res->events = calloc(rr->n_events, sizeof *res->events);
        if (!res->events) {
            frame_free(env);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < rr->n_events; i++)
        evsi_event_from_wire(&res->events[i], rr->events[i]);
    res->count = rr->n_events;
    res->next = rr->next;
    res->end = rr->end;
    res->stream_version = rr->stream_version;
    res->owner_ = env;
    return 0;
}

int evs_read(evs_conn_t *conn, const evs_read_t *req, evs_read_result_t *res)
{
    memset(res, 0, sizeof *res);
    evsi_errmsg_clear();
    if (!req || !req->stream || !req->stream[0] || (req->type_count && !req->types)) {
        evsi_errmsg_set("evs_read: no stream, or types missing");
        return -EINVAL;
    }
    Evstore__V1__ReadRequest rr;
    Evstore__V1__EventFilter filter;
    read_request_fill(&rr, &filter, req);
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_READ;
    env.read = &rr;
    envelope_t *resp = NULL;
    int err = evsi_request_expect(conn, &env, EVSTORE__V1__ENVELOPE__BODY_READ_OK, &resp);
    if (err)
        return err;
    return read_result_take(resp, res);
}

void evs_read_result_free(evs_read_result_t *res)
{
    if (!res)
        return;
    free(res->events);
    frame_free(res->owner_);
    memset(res, 0, sizeof *res);
}
