/* events.c -- events read from the log, copied into one arena and laid out
 * as protobuf RecordedEvents, ready to be packed into an answer (a read, a
 * subscription's batch, a group's delivery). The engine's pointers last one
 * visit only, hence the copy. */
#include "server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The most a RecordedEvent's encoding adds to its variable bytes: the field
 * tag and length of the event in its answer (1 + 5), position, version and
 * timestamp (1 + 10 each), and the tag and length of stream, type, id,
 * metadata and data (1 + 5 each), counted beside the event's arena bytes.
 * Tiny events are mostly this, so a budget of raw bytes alone lets an answer
 * of many of them outgrow the frame. */
#define EVENT_ENCODING_BYTES_MAX 66u

void events_init(events_t *e, size_t bytes_max, const char *stream_prefix)
{
    memset(e, 0, sizeof *e);
    e->encoded_bytes_max = bytes_max;
    e->prefix = stream_prefix && stream_prefix[0] ? stream_prefix : NULL;
    e->prefix_len = e->prefix ? strlen(e->prefix) : 0;
}

void events_free(events_t *e)
{
    free(e->arena);
    free(e->events);
    free(e->ptrs);
    memset(e, 0, sizeof *e);
}

const log_filter_t *events_filter(const Evstore__V1__EventFilter *f, log_filter_t *out)
{
    if (!f || (f->n_types == 0 && !f->type_prefix[0]))
        return NULL;
    out->types = (const char *const *)f->types;
    out->type_count = f->n_types;
    out->type_prefix = f->type_prefix[0] ? f->type_prefix : NULL;
    return out;
}

static size_t arena_put(events_t *e, const void *p, size_t n)
{
    size_t off = e->arena_len;
    if (n)
        memcpy(e->arena + off, p, n);
    e->arena_len += n;
    return off;
}

static int events_reserve(events_t *e, size_t bytes)
{
    if (e->count == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        Evstore__V1__RecordedEvent *fresh = realloc(e->events, cap * sizeof *fresh);
        if (!fresh)
            return -ENOMEM;
        e->events = fresh;
        e->cap = cap;
    }
    if (e->arena_len + bytes > e->arena_cap) {
        size_t cap = e->arena_cap ? e->arena_cap * 2 : 64 * 1024;
        while (cap < e->arena_len + bytes)
            cap *= 2;
        uint8_t *fresh = realloc(e->arena, cap);
        if (!fresh)
            return -ENOMEM;
        e->arena = fresh;
        e->arena_cap = cap;
    }
    return 0;
}

int events_add(events_t *e, const log_event_t *ev)
{
    size_t need = (size_t)ev->stream_len + 1 + ev->type_len + 1 + ev->metadata_len + ev->data_len + 16;
    if (events_reserve(e, need) != 0)
        return -ENOMEM;
    e->encoded_bytes += need + EVENT_ENCODING_BYTES_MAX;
    Evstore__V1__RecordedEvent *r = &e->events[e->count++];
    evstore__v1__recorded_event__init(r);
    /* Offsets for now; turned into pointers once the arena stops moving. */
    r->position = ev->position;
    r->version = ev->version;
    r->timestamp_ns = ev->timestamp_ns;
    r->stream = (char *)(uintptr_t)arena_put(e, ev->stream, ev->stream_len);
    arena_put(e, "", 1);
    r->type = (char *)(uintptr_t)arena_put(e, ev->type, ev->type_len);
    arena_put(e, "", 1);
    r->id.len = 16;
    r->id.data = (uint8_t *)(uintptr_t)arena_put(e, ev->id, 16);
    r->metadata.len = ev->metadata_len;
    r->metadata.data = (uint8_t *)(uintptr_t)arena_put(e, ev->metadata, ev->metadata_len);
    r->data.len = ev->data_len;
    r->data.data = (uint8_t *)(uintptr_t)arena_put(e, ev->data, ev->data_len);
    return 0;
}

/* Keeps an event (if its stream matches the prefix); stops the read when
 * the answer is as large as a frame allows. */
static int events_visit(void *ctx, const log_event_t *ev)
{
    events_t *e = ctx;
    if (e->prefix && (ev->stream_len < e->prefix_len ||
                      memcmp(ev->stream, e->prefix, e->prefix_len) != 0))
        return 0;
    /* System streams stay out of category and $all views unless asked for. */
    if (!e->prefix && e->skip_system && ev->stream_len > 0 && ev->stream[0] == '$')
        return 0;
    if (events_add(e, ev) != 0)
        return (e->error = -ENOMEM), 1;
    return events_full(e);
}

bool events_full(const events_t *e)
{
    return e->encoded_bytes >= e->encoded_bytes_max;
}

int events_finish(events_t *e)
{
    e->ptrs = malloc((e->count ? e->count : 1) * sizeof *e->ptrs);
    if (!e->ptrs)
        return -ENOMEM;
    for (size_t i = 0; i < e->count; i++) {
        Evstore__V1__RecordedEvent *r = &e->events[i];
        r->stream = (char *)e->arena + (uintptr_t)r->stream;
        r->type = (char *)e->arena + (uintptr_t)r->type;
        r->id.data = e->arena + (uintptr_t)r->id.data;
        r->metadata.data = e->arena + (uintptr_t)r->metadata.data;
        r->data.data = e->arena + (uintptr_t)r->data.data;
        e->ptrs[i] = r;
    }
    return 0;
}

int events_read(events_t *e, log_t *log, const log_read_t *req, log_read_result_t *res)
{
    int rc = log_read(log, req, events_visit, e, res);
    if (rc == 0 && e->error)
        rc = e->error;
    if (rc == 0)
        rc = events_finish(e);
    return rc;
}
