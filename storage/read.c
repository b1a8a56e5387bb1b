/* read.c -- reading events: one stream by version, a category or the whole
 * log by position. Every event delivered has passed its checksum. */
#include "log_int.h"

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>

/* Marks an entry whose event lies in a damaged batch: reading it fails. */
#define ENTRY_DAMAGED UINT32_MAX

int log_segment_for(const log_t *log, uint64_t position)
{
    uint32_t lo = 0, hi = log->segment_count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (log->segments[mid]->first_position <= position)
            lo = mid;
        else
            hi = mid;
    }
    return (int)lo;
}

/* Returns the raw body of the batch at offset, decompressing it into the
 * scratch buffer if needed (kept for the next event of the same batch). */
static int batch_body(log_t *log, const segment_t *s, uint64_t offset, const batch_header_t *h,
                      const uint8_t **raw)
{
    const uint8_t *body = s->map + offset + sizeof *h;
    if (!batch_raw_size_valid(h))
        return LOG_ECORRUPT;
    if (!(h->flags & BATCH_FLAG_LZ4)) {
        *raw = body;
        return 0;
    }
    if (log->scratch_segment == s && log->scratch_offset == offset) {
        *raw = log->scratch;
        return 0;
    }
    if (checksum64(body, h->stored_bytes, h->first_position) != h->body_checksum)
        return LOG_ECORRUPT;
    if (h->raw_bytes > log->scratch_cap) {
        uint8_t *fresh = realloc(log->scratch, h->raw_bytes);
        if (!fresh)
            return -ENOMEM;
        log->scratch = fresh;
        log->scratch_cap = h->raw_bytes;
    }
    int n = LZ4_decompress_safe((const char *)body, (char *)log->scratch, (int)h->stored_bytes,
                                (int)h->raw_bytes);
    if (n < 0 || (uint32_t)n != h->raw_bytes) {
        log->scratch_segment = NULL;
        return LOG_ECORRUPT;
    }
    log->scratch_segment = s;
    log->scratch_offset = offset;
    *raw = log->scratch;
    return 0;
}

/* Reads and checks the batch header at offset of segment s. */
static int batch_header_at(const segment_t *s, uint64_t offset, batch_header_t *h)
{
    if (offset + sizeof *h > s->size)
        return LOG_ECORRUPT;
    memcpy(h, s->map + offset, sizeof *h);
    if (!batch_header_valid(h) || offset + batch_stored_size(h) > s->size)
        return LOG_ECORRUPT;
    return 0;
}

int log_event_at(log_t *log, const index_entry_t *e, log_event_t *ev)
{
    const segment_t *s = log->segments[log_segment_for(log, e->position)];
    batch_header_t h;
    const uint8_t *raw;
    int rc = batch_header_at(s, e->batch_offset, &h);
    if (rc)
        return rc;
    if (e->position < h.first_position || e->position - h.first_position >= h.event_count)
        return LOG_ECORRUPT;
    rc = batch_body(log, s, e->batch_offset, &h, &raw);
    if (rc)
        return rc;
    return record_decode(raw, h.raw_bytes, e->body_offset, e->position, ev, NULL);
}

static bool filter_keeps(const log_filter_t *f, const log_event_t *ev)
{
    if (!f || (!f->type_count && !f->type_prefix))
        return true;
    for (size_t i = 0; i < f->type_count; i++)
        if (strlen(f->types[i]) == ev->type_len && memcmp(f->types[i], ev->type, ev->type_len) == 0)
            return true;
    if (f->type_prefix) {
        size_t n = strlen(f->type_prefix);
        if (n <= ev->type_len && memcmp(f->type_prefix, ev->type, n) == 0)
            return true;
    }
    return false;
}

typedef struct {
    log_t *log;
    const log_read_t *req;
    log_visit_cb visit;
    void *ctx;
    log_read_result_t *res;
    uint32_t scanned;
    bool stop;
} reader_t;

/* Delivers the event behind entry e if the filter keeps it. */
static int reader_take(reader_t *r, const index_entry_t *e)
{
    log_event_t ev;
    int rc = e->batch_offset == ENTRY_DAMAGED ? LOG_ECORRUPT : log_event_at(r->log, e, &ev);
    if (rc)
        return rc;
    r->scanned++;
    if (filter_keeps(r->req->filter, &ev)) {
        r->res->count++;
        if (r->visit(r->ctx, &ev))
            r->stop = true;
    }
    if (r->res->count >= r->req->max_count || r->scanned >= LOG_READ_SCAN_MAX_DEFAULT)
        r->stop = true;
    return 0;
}

/* Reads entries [0, visible) of an indexed stream or category: by index
 * (versions) for streams, by position for categories. */
static int read_indexed(reader_t *r, const stream_t *s, uint64_t visible)
{
    const log_read_t *req = r->req;
    log_read_result_t *res = r->res;
    uint64_t i;
    if (!req->backwards) {
        i = s->is_category ? stream_lower_bound(s, req->from) : req->from;
        for (; i < visible && !r->stop; i++) {
            int rc = reader_take(r, &s->entries[i]);
            if (rc)
                return rc;
        }
        res->end = i >= visible;
        res->next = i < visible ? (s->is_category ? s->entries[i].position : i)
                                : (s->is_category ? log_visible_position(r->log) : visible);
        return 0;
    }
    if (s->is_category)
        i = req->from == LOG_READ_END ? visible : stream_lower_bound(s, req->from + 1);
    else
        i = req->from >= visible ? visible : req->from + 1;
    if (i > visible)
        i = visible;
    for (; i > 0 && !r->stop; i--) {
        int rc = reader_take(r, &s->entries[i - 1]);
        if (rc)
            return rc;
    }
    res->end = i == 0;
    res->next = i == 0 ? 0 : (s->is_category ? s->entries[i - 1].position : i - 1);
    return 0;
}

static int entries_reserve(index_entry_t **out, uint64_t *cap, uint64_t need)
{
    if (need <= *cap)
        return 0;
    uint64_t c = *cap ? *cap * 2 : 256;
    while (c < need)
        c *= 2;
    index_entry_t *fresh = realloc(*out, c * sizeof *fresh);
    if (!fresh)
        return -ENOMEM;
    *out = fresh;
    *cap = c;
    return 0;
}

/* Adds damaged markers for positions [from, to). */
static int entries_damaged(index_entry_t **out, uint64_t *count, uint64_t *cap, uint64_t from,
                           uint64_t to)
{
    int rc = entries_reserve(out, cap, *count + (to - from));
    for (uint64_t p = from; p < to && rc == 0; p++)
        (*out)[(*count)++] = (index_entry_t){.position = p, .batch_offset = ENTRY_DAMAGED};
    return rc;
}

/* After a batch whose header is damaged at offset: the next batch that looks
 * whole (found by its magic and header checksum) before stop, or stop. */
static uint64_t next_whole_batch(const segment_t *s, uint64_t offset, uint64_t stop,
                                 uint64_t after_position, batch_header_t *h)
{
    for (offset += BATCH_ALIGN; offset < stop; offset += BATCH_ALIGN)
        if (batch_header_at(s, offset, h) == 0 && h->first_position > after_position)
            return offset;
    return stop;
}

/* Collects the index entries of one sparse block of segment s: the batches
 * from sparse entry k up to the next one (or the segment's end, where the
 * next segment starts at end_position), positions below visible. The events
 * of a damaged batch get ENTRY_DAMAGED entries, so that a read fails exactly
 * where it would have to return them. */
static int block_entries(log_t *log, const segment_t *s, uint64_t k, uint64_t visible,
                         uint64_t end_position, index_entry_t **out, uint64_t *count,
                         uint64_t *cap)
{
    bool last_block = k + 1 >= s->sparse_count;
    uint64_t offset = s->sparse[k].batch_offset;
    uint64_t stop = last_block ? s->write_offset : s->sparse[k + 1].batch_offset;
    uint64_t stop_position = last_block ? end_position : s->sparse[k + 1].position;
    uint64_t expected = s->sparse[k].position;
    *count = 0;
    while (offset < stop && expected < visible) {
        batch_header_t h;
        const uint8_t *raw = NULL;
        int rc = batch_header_at(s, offset, &h);
        if (rc == 0 && h.first_position != expected)
            rc = LOG_ECORRUPT;
        if (rc) {
            offset = next_whole_batch(s, offset, stop, expected, &h);
            uint64_t to = offset < stop ? h.first_position : stop_position;
            rc = entries_damaged(out, count, cap, expected, to < visible ? to : visible);
            if (rc)
                return rc;
            expected = to;
            continue;
        }
        rc = batch_body(log, s, offset, &h, &raw);
        if (rc == 0)
            rc = entries_reserve(out, cap, *count + h.event_count);
        if (rc == LOG_ECORRUPT)
            rc = entries_damaged(out, count, cap, expected, expected + h.event_count);
        else if (rc == 0) {
            uint64_t body_off = 0;
            for (uint32_t i = 0; i < h.event_count; i++) {
                record_header_t rh = {0};
                if (body_off + sizeof rh <= h.raw_bytes)
                    memcpy(&rh, raw + body_off, sizeof rh);
                (*out)[(*count)++] = (index_entry_t){.position = h.first_position + i,
                                                     .batch_offset = (uint32_t)offset,
                                                     .body_offset = (uint32_t)body_off};
                body_off += align8(rh.record_bytes ? rh.record_bytes : sizeof rh);
            }
        }
        if (rc)
            return rc;
        expected = h.first_position + h.event_count;
        offset += batch_stored_size(&h);
    }
    return 0;
}

/* The sparse block of segment s holding position p. */
static uint64_t block_for(const segment_t *s, uint64_t p)
{
    uint64_t lo = 0, hi = s->sparse_count;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (s->sparse[mid].position <= p)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static int read_all(reader_t *r, uint64_t visible)
{
    const log_read_t *req = r->req;
    index_entry_t *block = NULL;
    uint64_t n = 0, cap = 0, p = req->from;
    int rc = 0;
    if (req->backwards && p >= visible)
        p = visible ? visible - 1 : 0;
    bool any = visible > 0 && (req->backwards || p < visible);
    r->res->end = true;
    r->res->next = req->backwards ? 0 : (p < visible ? p : visible);
    if (!any)
        return 0;
    int seg = log_segment_for(r->log, p);
    const segment_t *s = r->log->segments[seg];
    uint64_t k = block_for(s, p);
    while (!r->stop) {
        if (s->sparse_count == 0)
            break;
        uint64_t end_position = (uint32_t)seg + 1 < r->log->segment_count
                                    ? r->log->segments[seg + 1]->first_position : visible;
        rc = block_entries(r->log, s, k, visible, end_position, &block, &n, &cap);
        if (rc)
            break;
        for (uint64_t j = 0; j < n && !r->stop; j++) {
            const index_entry_t *e = req->backwards ? &block[n - 1 - j] : &block[j];
            if (req->backwards ? e->position > p : e->position < p)
                continue;
            if ((rc = reader_take(r, e)) != 0)
                break;
            p = req->backwards ? e->position - 1 : e->position + 1;
            if (req->backwards && e->position == 0)
                goto done;
        }
        if (rc || r->stop)
            break;
        if (!req->backwards) {
            if (p >= visible)
                goto done;
            if (++k >= s->sparse_count) {
                if ((uint32_t)++seg >= r->log->segment_count)
                    goto done;
                s = r->log->segments[seg];
                k = 0;
            }
        } else {
            if (k > 0) {
                k--;
            } else {
                if (seg == 0)
                    goto done;
                s = r->log->segments[--seg];
                k = s->sparse_count ? s->sparse_count - 1 : 0;
            }
        }
    }
    if (!rc) {
        r->res->end = false;
        r->res->next = p;
    }
done:
    if (rc == 0 && r->res->end)
        r->res->next = req->backwards ? 0 : visible;
    free(block);
    return rc;
}

int log_read(log_t *log, const log_read_t *req, log_visit_cb visit, void *ctx,
             log_read_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->stream_version = LOG_VERSION_NONE;
    if (!req || !req->stream || req->stream_len == 0 || !visit ||
        req->stream_len > LOG_STREAM_NAME_BYTES_MAX + 4)
        return LOG_EBAD_REQUEST;
    if (req->max_count == 0) {
        res->end = false;
        res->next = req->from;
        return 0;
    }
    reader_t r = {.log = log, .req = req, .visit = visit, .ctx = ctx, .res = res};
    uint64_t visible = log_visible_position(log);
    const char *name = req->stream;
    size_t len = req->stream_len;
    if (len == 4 && memcmp(name, "$all", 4) == 0)
        return read_all(&r, visible);
    if (len > 4 && memcmp(name, "$ce-", 4) == 0) {
        const stream_t *c = stream_table_find(&log->streams, name + 4, len - 4, true);
        if (!c) {
            res->end = true;
            res->next = req->backwards ? 0 : visible;
            return 0;
        }
        return read_indexed(&r, c, stream_lower_bound(c, visible));
    }
    const stream_t *s = stream_table_find(&log->streams, name, len, false);
    uint64_t n = s ? stream_lower_bound(s, visible) : 0;
    if (n == 0)
        return LOG_ENOT_FOUND;
    res->stream_version = (int64_t)n - 1;
    return read_indexed(&r, s, n);
}
