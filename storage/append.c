/* append.c -- accepting an append: validation, expected versions,
 * idempotent retries, encoding of the batch and indexing of its events. */
#include "log_int.h"

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>

typedef enum { MATCH_NONE, MATCH_PARTIAL, MATCH_ALL } match_t;

static bool name_valid(const char *name, size_t len, bool system)
{
    return name && len > 0 && len <= LOG_STREAM_NAME_BYTES_MAX && (name[0] != '$' || system) &&
           !memchr(name, '\0', len) && !(len >= 4 && memcmp(name, "$ce-", 4) == 0) &&
           !(len == 4 && memcmp(name, "$all", 4) == 0);
}

/* Checks limits and shape; sets the batch's raw body size and event count. */
static int request_check(const log_t *log, const log_append_t *req, uint64_t *raw,
                         uint32_t *events)
{
    const log_config_t *c = &log->cfg;
    if (!req || !req->streams || req->stream_count == 0)
        return LOG_EBAD_REQUEST;
    if (req->stream_count > c->batch_streams_max)
        return LOG_ETOO_LARGE;
    uint64_t bytes = 0, n = 0;
    for (uint32_t i = 0; i < req->stream_count; i++) {
        const log_stream_append_t *sa = &req->streams[i];
        if (!name_valid(sa->stream, sa->stream_len, req->system) || !sa->events || sa->event_count == 0 ||
            sa->expected_version < LOG_EXPECT_STREAM_EXISTS)
            return LOG_EBAD_REQUEST;
        for (uint32_t j = 0; j < i; j++)
            if (req->streams[j].stream_len == sa->stream_len &&
                memcmp(req->streams[j].stream, sa->stream, sa->stream_len) == 0)
                return LOG_EBAD_REQUEST;
        for (uint32_t k = 0; k < sa->event_count; k++) {
            const log_event_in_t *e = &sa->events[k];
            if (!e->type || e->type_len == 0 || e->type_len > LOG_TYPE_BYTES_MAX ||
                (e->metadata_len && !e->metadata) || (e->data_len && !e->data))
                return LOG_EBAD_REQUEST;
            if (e->metadata_len + e->data_len > c->event_bytes_max)
                return LOG_ETOO_LARGE;
            bytes += record_size(sa->stream_len, e->type_len, e->metadata_len, e->data_len);
        }
        n += sa->event_count;
    }
    if (n > c->batch_events_max ||
        align8(sizeof(batch_header_t) + bytes) > c->write_bytes_max)
        return LOG_ETOO_LARGE;
    *raw = bytes;
    *events = (uint32_t)n;
    return 0;
}

/* The id of the event at index v of stream s. */
static int id_at(log_t *log, const stream_t *s, uint64_t v, uint8_t id[16])
{
    const index_entry_t *e = &s->entries[v];
    if (e->position >= log->written_position) {
        const id_queue_t *q = &log->pending_ids;
        uint64_t k = e->position - q->base;
        assert(e->position >= q->base && k < q->count);
        memcpy(id, q->ids[(q->start + k) % q->cap], 16);
        return 0;
    }
    log_event_t ev;
    int rc = log_event_at(log, e, &ev);
    if (rc == 0)
        memcpy(id, ev.id, 16);
    return rc;
}

/* Compares the request's events with those of s from version v on. */
static int match_from(log_t *log, const stream_t *s, uint64_t v, const log_stream_append_t *sa,
                      match_t *m)
{
    *m = MATCH_NONE;
    for (uint32_t k = 0; k < sa->event_count; k++) {
        uint8_t id[16];
        if (v + k >= s->count) {
            *m = k ? MATCH_PARTIAL : MATCH_NONE;
            return 0;
        }
        int rc = id_at(log, s, v + k, id);
        if (rc)
            return rc;
        if (memcmp(id, sa->events[k].id, 16) != 0) {
            *m = k ? MATCH_PARTIAL : MATCH_NONE;
            return 0;
        }
    }
    *m = MATCH_ALL;
    return 0;
}

/* Index in s of the event at position, or UINT64_MAX if s has none there. */
static uint64_t version_of(const stream_t *s, uint64_t position)
{
    uint64_t v = stream_lower_bound(s, position);
    return v < s->count && s->entries[v].position == position ? v : UINT64_MAX;
}

/* If version v of s has the id of the request's first event, compares the
 * rest from there (*found, *at, *m). */
static int match_if_first(log_t *log, const stream_t *s, uint64_t v,
                          const log_stream_append_t *sa, match_t *m, uint64_t *at, bool *found)
{
    uint8_t id[16];
    int rc = id_at(log, s, v, id);
    if (rc || memcmp(id, sa->events[0].id, 16) != 0)
        return rc;
    *found = true;
    *at = v;
    return match_from(log, s, v, sa, m);
}

/* For expected "any"/"stream_exists": looks for the first event id among the
 * stream's last idempotency_scan_max events, then in the recent-id cache. */
static int match_recent(log_t *log, const stream_t *s, const log_stream_append_t *sa, match_t *m,
                        uint64_t *at)
{
    *m = MATCH_NONE;
    uint64_t floor = s->count > log->cfg.idempotency_scan_max
                         ? s->count - log->cfg.idempotency_scan_max : 0;
    bool found = false;
    int rc = 0;
    for (uint64_t v = s->count; v-- > floor && !found && rc == 0;)
        rc = match_if_first(log, s, v, sa, m, at, &found);
    uint64_t cand[4];
    int n = idcache_find(&log->ids, sa->events[0].id, log->head_position, cand, 4);
    for (int i = 0; i < n && !found && rc == 0; i++) {
        uint64_t v = version_of(s, cand[i]);
        if (v != UINT64_MAX && v < floor) /* not another stream's event, nor compared */
            rc = match_if_first(log, s, v, sa, m, at, &found);
    }
    return rc;
}

typedef struct {
    stream_t *stream;
    int64_t current;      /* version before the append */
    bool idempotent;
    uint64_t match_from;  /* idempotent: version of the first matched event */
} resolved_t;

/* Checks one stream's expected version; finds an earlier identical append. */
static int expect_check(log_t *log, const log_stream_append_t *sa, resolved_t *r)
{
    stream_t *s = stream_table_find(&log->streams, sa->stream, sa->stream_len, false);
    r->stream = s;
    r->current = s ? (int64_t)s->count - 1 : LOG_VERSION_NONE;
    int64_t ev = sa->expected_version;
    match_t m = MATCH_NONE;
    int rc = 0;
    uint64_t at = 0;
    if (ev >= 0 && r->current > ev) {
        at = (uint64_t)ev + 1;
        rc = match_from(log, s, at, sa, &m);
    } else if (ev == LOG_EXPECT_NO_STREAM && r->current >= 0) {
        rc = match_from(log, s, 0, sa, &m);
    } else if ((ev == LOG_EXPECT_ANY || ev == LOG_EXPECT_STREAM_EXISTS) && r->current >= 0) {
        rc = match_recent(log, s, sa, &m, &at);
    }
    if (rc)
        return rc;
    if (m == MATCH_PARTIAL)
        return LOG_EIDEMPOTENCY;
    if (m == MATCH_ALL) {
        r->idempotent = true;
        r->match_from = at;
        return 0;
    }
    bool ok = ev == LOG_EXPECT_ANY || (ev == LOG_EXPECT_NO_STREAM && r->current < 0) ||
              (ev == LOG_EXPECT_STREAM_EXISTS && r->current >= 0) || ev == r->current;
    return ok ? 0 : LOG_EWRONG_VERSION;
}

static pending_t *pending_new(log_append_cb cb, void *ctx, uint64_t end_position)
{
    pending_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cb = cb;
    p->ctx = ctx;
    p->end_position = end_position;
    return p;
}

static void pending_link(log_t *log, pending_t *p)
{
    if (log->pending_tail)
        log->pending_tail->next = p;
    else
        log->pending_head = p;
    log->pending_tail = p;
}

/* A retry of an append already accepted: completes, with the original
 * positions, once those are durable. */
static int accept_retry(log_t *log, const log_append_t *req, const resolved_t *r, log_append_cb cb,
                        void *ctx)
{
    uint64_t first = UINT64_MAX, end = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < req->stream_count; i++) {
        const stream_t *s = r[i].stream;
        uint64_t last = r[i].match_from + req->streams[i].event_count - 1;
        if (s->entries[r[i].match_from].position < first)
            first = s->entries[r[i].match_from].position;
        if (s->entries[last].position + 1 > end)
            end = s->entries[last].position + 1;
        n += req->streams[i].event_count;
    }
    pending_t *p = pending_new(cb, ctx, end);
    if (!p)
        return -ENOMEM;
    pending_link(log, p);
    p->result.first_position = first;
    p->result.event_count = n;
    p->result.idempotent = true;
    for (uint32_t i = 0; i < req->stream_count; i++)
        p->result.last_versions[i] = (int64_t)(r[i].match_from + req->streams[i].event_count - 1);
    return 0;
}

/* Records where every event of the batch lives, in all indices. */
static int index_new_batch(log_t *log, segment_t *seg, uint64_t batch_offset,
                           const log_append_t *req, resolved_t *r)
{
    uint64_t position = log->head_position;
    uint32_t body_offset = 0;
    int rc = segment_sparse_note(seg, position, batch_offset);
    for (uint32_t i = 0; i < req->stream_count && rc == 0; i++) {
        const log_stream_append_t *sa = &req->streams[i];
        stream_t *s = r[i].stream;
        if (!s && !(s = r[i].stream = stream_table_get(&log->streams, sa->stream, sa->stream_len,
                                                        false)))
            return -ENOMEM;
        for (uint32_t k = 0; k < sa->event_count && rc == 0; k++, position++) {
            const log_event_in_t *e = &sa->events[k];
            index_entry_t entry = {.position = position, .batch_offset = (uint32_t)batch_offset,
                                   .body_offset = body_offset};
            body_offset += (uint32_t)record_size(sa->stream_len, e->type_len, e->metadata_len,
                                                 e->data_len);
            rc = stream_push(s, &entry);
            if (!rc)
                rc = segment_builder_push(seg, s, s->count - 1, &entry);
            if (!rc && s->category && !(rc = stream_push(s->category, &entry)))
                rc = segment_builder_push(seg, s->category, s->category->count - 1, &entry);
            if (!rc)
                rc = idq_push(&log->pending_ids, position, e->id);
            if (k == 0) /* a retry is looked up by its first event's id */
                idcache_put(&log->ids, e->id, position, log->head_position);
        }
    }
    return rc;
}

/* Encodes the batch into the write queue and returns its segment offset. */
static int encode_batch(log_t *log, const log_append_t *req, const resolved_t *r, uint64_t raw,
                        uint32_t events, segment_t **seg_out, uint64_t *offset_out,
                        uint64_t *checksum_out)
{
    uint64_t need = align8(sizeof(batch_header_t) + raw);
    segment_t *seg = log->segments[log->segment_count - 1];
    if (seg->write_offset + need > seg->size) {
        int rc = segment_roll(log);
        if (rc)
            return rc;
        seg = log->segments[log->segment_count - 1];
    }
    uint8_t *dst = writer_reserve(log, seg, seg->write_offset, need);
    if (!dst)
        return -ENOMEM;
    uint8_t *body = dst + sizeof(batch_header_t);
    int64_t now = (int64_t)util_real_ns();
    uint64_t position = log->head_position, off = 0;
    for (uint32_t i = 0; i < req->stream_count; i++) {
        const log_stream_append_t *sa = &req->streams[i];
        for (uint32_t k = 0; k < sa->event_count; k++, position++) {
            const log_event_in_t *e = &sa->events[k];
            record_encode(body + off, position, sa->stream, sa->stream_len,
                          r[i].current + 1 + (int64_t)k, e, e->timestamp_ns ? e->timestamp_ns : now);
            off += record_size(sa->stream_len, e->type_len, e->metadata_len, e->data_len);
        }
    }
    assert(off == raw);
    batch_header_t h = {.magic = BATCH_MAGIC, .event_count = events, .stored_bytes = (uint32_t)raw,
                        .raw_bytes = (uint32_t)raw, .first_position = log->head_position,
                        .timestamp_ns = now, .prev_checksum = log->head_checksum};
    if (log->cfg.compress_threshold_bytes && raw >= log->cfg.compress_threshold_bytes) {
        size_t bound = (size_t)LZ4_compressBound((int)raw);
        if (bound > log->encode_cap) {
            uint8_t *fresh = realloc(log->encode, bound);
            if (!fresh)
                return -ENOMEM;
            log->encode = fresh;
            log->encode_cap = bound;
        }
        int c = LZ4_compress_default((const char *)body, (char *)log->encode, (int)raw, (int)bound);
        if (c > 0 && (uint64_t)c < raw) {
            memcpy(body, log->encode, (size_t)c);
            h.stored_bytes = (uint32_t)c;
            h.flags |= BATCH_FLAG_LZ4;
            log->stats.compressed_batches++;
        }
    }
    h.body_checksum = checksum64(body, h.stored_bytes, h.first_position);
    batch_header_seal(&h);
    memcpy(dst, &h, sizeof h);
    uint64_t used = batch_stored_size(&h);
    memset(body + h.stored_bytes, 0, used - sizeof h - h.stored_bytes);
    writer_commit(log, need, used, log->head_position + events, h.header_checksum);
    *seg_out = seg;
    *offset_out = seg->write_offset;
    *checksum_out = h.header_checksum;
    seg->write_offset += used;
    /* The next segment is written out while this one fills its second half:
     * early enough to be ready, late enough not to compete with a fresh start. */
    if (log->worker && !seg->next_asked && seg->write_offset > seg->size / 2) {
        seg->next_asked = true;
        worker_want_prepared(log->worker);
    }
    return 0;
}

static void fail(log_append_result_t *failure, int status, uint32_t stream, int64_t actual)
{
    if (!failure)
        return;
    memset(failure, 0, sizeof *failure);
    failure->status = status;
    failure->failed_stream = stream;
    failure->actual_version = actual;
}

int log_append(log_t *log, const log_append_t *req, log_append_cb cb, void *ctx,
               log_append_result_t *failure)
{
    uint64_t raw = 0;
    uint32_t events = 0;
    int rc = log->cfg.read_only || !cb ? LOG_EBAD_REQUEST
             : log->closing     ? LOG_ECLOSING
             : log->fatal       ? log->fatal
                                : request_check(log, req, &raw, &events);
    if (!rc && log->pending_bytes + raw > log->cfg.pending_bytes_max)
        rc = LOG_EBUSY;
    if (rc) {
        fail(failure, rc, 0, 0);
        return rc;
    }
    resolved_t r[LOG_BATCH_STREAMS_LIMIT];
    uint32_t idempotent = 0;
    for (uint32_t i = 0; i < req->stream_count; i++) {
        memset(&r[i], 0, sizeof r[i]);
        rc = expect_check(log, &req->streams[i], &r[i]);
        if (rc) {
            fail(failure, rc, i, r[i].current);
            return rc;
        }
        idempotent += r[i].idempotent;
    }
    if (idempotent == req->stream_count)
        return accept_retry(log, req, r, cb, ctx);
    if (idempotent > 0) {
        for (uint32_t i = 0; i < req->stream_count; i++)
            if (r[i].idempotent) {
                fail(failure, LOG_EIDEMPOTENCY, i, r[i].current);
                break;
            }
        return LOG_EIDEMPOTENCY;
    }
    pending_t *p = pending_new(cb, ctx, log->head_position + events);
    if (!p)
        return -ENOMEM;
    segment_t *seg;
    uint64_t offset, checksum;
    rc = encode_batch(log, req, r, raw, events, &seg, &offset, &checksum);
    if (rc) {
        free(p); /* nothing was queued: the log is unchanged */
        fail(failure, rc, 0, 0);
        return rc;
    }
    pending_link(log, p);
    rc = index_new_batch(log, seg, offset, req, r);
    if (rc) {
        /* The batch is queued but its index is incomplete: stop appending. */
        log->fatal = rc;
        return 0;
    }
    p->result.first_position = log->head_position;
    p->result.event_count = events;
    for (uint32_t i = 0; i < req->stream_count; i++)
        p->result.last_versions[i] = r[i].current + req->streams[i].event_count;
    log->head_position += events;
    log->head_checksum = checksum;
    return 0;
}
