/* recovery.c -- opening a log directory: segments are found and checked,
 * persisted indices loaded, and only what no index covers is scanned and
 * verified. A torn tail (an unacknowledged write cut short by a crash) is cut
 * back to the last whole batch; damage to data that was durable is reported
 * with its segment and offset and the log is not opened. */
#include "log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int problem(log_recovery_t *rec, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rec->problem, sizeof rec->problem, fmt, ap);
    va_end(ap);
    return err;
}

/* Opens one segment file and checks its header. */
static int segment_load(log_t *log, uint64_t first, bool last, segment_t **out,
                        log_recovery_t *rec)
{
    char path[4096];
    segment_path(path, sizeof path, log->dir, first, "seg");
    int fd = open(path, (log->cfg.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return problem(rec, -errno, "%s: cannot open: %s", path, strerror(errno));
    segment_header_t h;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        rc = problem(rec, LOG_EFORMAT, "%s: header cannot be read", path);
    } else if ((rc = segment_header_check(&h)) != 0) {
        problem(rec, rc, "%s offset 0: segment header: %s", path, log_strerror(rc));
    } else if (h.first_position != first) {
        rc = problem(rec, LOG_ECORRUPT, "%s offset 0: header says position %llu", path,
                     (unsigned long long)h.first_position);
    } else if ((uint64_t)st.st_size < h.segment_bytes) {
        /* Cut short (a copy, a full disk): only the last segment may be, and
         * only in its unacknowledged tail, which recovery then judges. */
        if (!last || log->cfg.read_only)
            rc = problem(rec, LOG_ECORRUPT, "%s: %llu bytes, its header says %llu", path,
                         (unsigned long long)st.st_size, (unsigned long long)h.segment_bytes);
        else if (ftruncate(fd, (off_t)h.segment_bytes) != 0)
            rc = problem(rec, -errno, "%s: cannot restore its size: %s", path, strerror(errno));
    }
    if (rc) {
        close(fd);
        return rc;
    }
    segment_t *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    *s = (segment_t){.first_position = first, .size = h.segment_bytes,
                     .write_offset = SEGMENT_HEADER_BYTES, .durable_offset = SEGMENT_HEADER_BYTES,
                     .prev_checksum = h.prev_checksum, .torn_window = h.torn_window_bytes,
                     .fd = fd};
    rc = segment_map(s);
    if (rc) {
        close(fd);
        free(s);
        return problem(rec, rc, "%s: mmap: %s", path, strerror(-rc));
    }
    *out = s;
    return 0;
}

/* True if the segment file's header is all zeros: created, never written. */
static bool header_never_written(const log_t *log, uint64_t first)
{
    char path[4096];
    segment_path(path, sizeof path, log->dir, first, "seg");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    uint8_t buf[sizeof(segment_header_t)];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    close(fd);
    if (n < 0)
        return false;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i])
            return false;
    return true;
}

/* ---- the persisted index of one segment ---- */

/* A segment's index file, checked whole, and each run's stream once found. */
typedef struct {
    walk_index_t v;
    stream_t **found;
} index_file_t;

/* Reads and checks <pos>.idx; 0 if it is whole and belongs to s. */
static int index_file_read(const log_t *log, const segment_t *s, index_file_t *f)
{
    char path[4096];
    segment_path(path, sizeof path, log->dir, s->first_position, "idx");
    int rc = walk_index_open(path, &f->v);
    if (rc)
        return rc;
    const index_header_t *h = &f->v.h;
    if (f->v.problem != WALK_INDEX_OK || h->first_position != s->first_position ||
        h->end_position < s->first_position || h->end_offset < SEGMENT_HEADER_BYTES ||
        h->end_offset > s->size)
        return LOG_ECORRUPT;
    return 0;
}

/* Checks every run against the current index before anything is applied,
 * noting each run's stream. */
static int index_file_fits(const log_t *log, const segment_t *s, index_file_t *f)
{
    f->found = malloc((f->v.h.run_count ? f->v.h.run_count : 1) * sizeof *f->found);
    if (!f->found)
        return -ENOMEM;
    for (uint32_t i = 0; i < f->v.h.run_count; i++) {
        const index_run_t *r = &f->v.runs[i];
        if ((uint64_t)r->name_offset + r->name_len > f->v.h.names_bytes || r->name_len == 0 ||
            r->entry_index + r->count > f->v.h.entry_count || r->kind > RUN_KIND_CATEGORY)
            return LOG_ECORRUPT;
        stream_t *st = stream_table_find(&log->streams, f->v.names + r->name_offset, r->name_len,
                                         r->kind == RUN_KIND_CATEGORY);
        f->found[i] = st;
        if ((st ? st->count : 0) != r->first_ordinal)
            return LOG_ECORRUPT;
        for (uint32_t k = 0; k < r->count; k++) {
            const index_entry_t *e = &f->v.entries[r->entry_index + k];
            if (e->position < s->first_position || e->position >= f->v.h.end_position ||
                e->batch_offset >= f->v.h.end_offset)
                return LOG_ECORRUPT;
        }
    }
    return 0;
}

static int index_file_apply(log_t *log, segment_t *s, const index_file_t *f, bool last)
{
    for (uint64_t i = 0; i < f->v.h.sparse_count; i++) {
        int rc = segment_sparse_note(s, f->v.sparse[i].position, f->v.sparse[i].batch_offset);
        if (rc)
            return rc;
    }
    for (uint32_t i = 0; i < f->v.h.run_count; i++) {
        const index_run_t *r = &f->v.runs[i];
        stream_t *st = f->found[i];
        if (!st && !(st = stream_table_get(&log->streams, f->v.names + r->name_offset, r->name_len,
                                           r->kind == RUN_KIND_CATEGORY)))
            return -ENOMEM;
        int rc = stream_push_run(st, &f->v.entries[r->entry_index], r->count);
        for (uint32_t k = 0; k < r->count && last && rc == 0; k++)
            rc = segment_builder_push(s, st, r->first_ordinal + k, &f->v.entries[r->entry_index + k]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Loads s's index file if it is whole and current; 0 when it was used. */
static int index_file_load(log_t *log, segment_t *s, bool last, uint64_t next_first)
{
    index_file_t f = {0};
    int rc = index_file_read(log, s, &f);
    if (rc == 0 && !last && f.v.h.end_position != next_first)
        rc = LOG_ECORRUPT; /* stale: written before the segment was full */
    if (rc == 0)
        rc = index_file_fits(log, s, &f);
    if (rc == 0) {
        rc = index_file_apply(log, s, &f, last);
        if (rc == 0) {
            log->head_position = f.v.h.end_position;
            log->head_checksum = f.v.h.end_checksum;
            s->write_offset = f.v.h.end_offset;
            s->indexed = !last;
        }
    }
    walk_index_close(&f.v);
    free(f.found);
    return rc;
}

/* ---- scanning ---- */

/* Adds the events of the batch the walk just verified to the index. A
 * version out of sequence is LOG_ECORRUPT: checksums held, content did not. */
static int index_walked_batch(log_t *log, uint32_t seg, const walk_t *w)
{
    segment_t *s = log->segments[seg];
    int rc = segment_sparse_note(s, w->h.first_position, w->offset);
    for (uint32_t k = 0; k < w->event_count && rc == 0; k++) {
        const log_event_t *ev = &w->events[k].ev;
        stream_t *st = stream_table_get(&log->streams, ev->stream, ev->stream_len, false);
        if (!st)
            return -ENOMEM;
        if (ev->version != (int64_t)st->count)
            return LOG_ECORRUPT;
        index_entry_t e = {.position = ev->position, .batch_offset = (uint32_t)w->offset,
                           .body_offset = w->events[k].body_offset};
        rc = stream_push(st, &e);
        if (!rc)
            rc = segment_builder_push(s, st, st->count - 1, &e);
        if (!rc && st->category && !(rc = stream_push(st->category, &e)))
            rc = segment_builder_push(s, st->category, st->category->count - 1, &e);
    }
    return rc;
}

/* Takes back the index entries of a batch that failed half-way. */
static void unindex_from(segment_t *s, uint64_t position)
{
    for (uint64_t j = s->builder_count; j-- > 0 && s->builder[j].entry.position >= position;)
        stream_truncate(s->builder[j].stream, position);
    segment_truncate_memory(s, position);
}

int log_scan_segment(log_t *log, uint32_t seg, uint64_t offset, uint64_t *end)
{
    segment_t *s = log->segments[seg];
    walk_t w = {0};
    walk_init(&w, s->map, s->size, offset, log->head_position, log->head_checksum);
    int rc = 0;
    for (;;) {
        walk_status_t st = walk_batch(&w);
        if (st == WALK_NO_MEMORY) {
            rc = -ENOMEM;
            break;
        }
        if (st != WALK_OK)
            break; /* the valid data ends here; the caller judges what follows */
        rc = index_walked_batch(log, seg, &w);
        if (rc) {
            unindex_from(s, w.h.first_position);
            if (rc == LOG_ECORRUPT)
                rc = 0;
            break;
        }
        walk_advance(&w);
        log->head_position = w.position;
        log->head_checksum = w.chain;
    }
    *end = w.offset;
    s->write_offset = w.offset;
    walk_free(&w);
    return rc;
}

/* ---- what lies past the end of the valid data ---- */

/* The bytes that an unfinished write may have touched past offset end: the
 * larger of what the segment was created with and what the log is opened
 * with, unbounded if either is not "always" (the log may have been written
 * under other settings since the segment was created). */
static uint64_t torn_window(const log_t *log, const segment_t *s, uint64_t end)
{
    uint64_t now = log_torn_window(log);
    uint64_t w = now == 0 || s->torn_window == 0 ? s->size
                 : now > s->torn_window            ? now : s->torn_window;
    return end + w < s->size ? w : s->size - end;
}

/* Follows the chain from a batch header that looks valid at offset: returns
 * the offset where the chain of well-formed batches ends. */
static uint64_t chain_end(const segment_t *s, uint64_t offset)
{
    batch_header_t h;
    memcpy(&h, s->map + offset, sizeof h);
    for (;;) {
        uint64_t next = offset + batch_stored_size(&h);
        if (next + sizeof h > s->size)
            return next;
        batch_header_t n;
        memcpy(&n, s->map + next, sizeof n);
        if (!batch_header_valid(&n) || n.first_position != h.first_position + h.event_count ||
            n.prev_checksum != h.header_checksum)
            return next;
        h = n;
        offset = next;
    }
}

/* True if well-formed batches after the bad one at end reach farther than an
 * unfinished write could have: then the bad batch was durable once. */
static bool damage_is_old(const log_t *log, const segment_t *s, uint64_t end, uint64_t window)
{
    if (end + window >= s->size)
        return false; /* unbounded: nothing lies beyond the window */
    for (uint64_t off = walk_find_header(s->map, s->size, end); off <= end + window && off < s->size;
         off = walk_find_header(s->map, s->size, off + BATCH_ALIGN)) {
        batch_header_t h;
        memcpy(&h, s->map + off, sizeof h);
        if (h.first_position >= log->head_position && chain_end(s, off) > end + window)
            return true;
    }
    return false;
}

/* Judges the bytes after the valid data of segment s, which ends at end. */
static int tail_judge(log_t *log, segment_t *s, uint64_t end, bool last, log_recovery_t *rec)
{
    uint64_t window = torn_window(log, s, end);
    uint64_t dirty_end = walk_last_nonzero_end(s->map, end, end + window);
    if (dirty_end == end)
        return 0;
    if (!last || damage_is_old(log, s, end, window))
        return problem(rec, LOG_ECORRUPT,
                       "segment %020llu offset %llu: batch fails its checks (expected position "
                       "%llu) and valid data follows it",
                       (unsigned long long)s->first_position, (unsigned long long)end,
                       (unsigned long long)log->head_position);
    rec->torn_bytes_cut += dirty_end - end;
    return log->cfg.read_only ? 0 : segment_zero(s, end, dirty_end);
}

/* Recovers one segment: its index file, else a scan; then its tail. */
static int segment_recover(log_t *log, uint32_t seg, bool last, uint64_t next_first,
                           log_recovery_t *rec)
{
    segment_t *s = log->segments[seg];
    if (s->first_position != log->head_position || s->prev_checksum != log->head_checksum)
        return problem(rec, LOG_ECORRUPT,
                       "segment %020llu offset 0: expected to start at position %llu after the "
                       "previous segment (missing or damaged segment)",
                       (unsigned long long)s->first_position,
                       (unsigned long long)log->head_position);
    uint64_t from = SEGMENT_HEADER_BYTES;
    if (index_file_load(log, s, last, next_first) == 0) {
        rec->index_files_loaded++;
        if (!last)
            return 0;
        from = s->write_offset;
    }
    uint64_t end;
    int rc = log_scan_segment(log, seg, from, &end);
    if (rc)
        return problem(rec, rc, "segment %020llu offset %llu: %s",
                       (unsigned long long)s->first_position, (unsigned long long)end,
                       log_strerror(rc));
    rec->bytes_scanned += end - from;
    s->durable_offset = end;
    return tail_judge(log, s, end, last, rec);
}

/* Drops a last segment that holds no batch: a roll that a crash cut short. */
static int drop_empty_last(log_t *log, segment_t *s, log_recovery_t *rec, bool *dropped)
{
    *dropped = false;
    batch_header_t h;
    memcpy(&h, s->map + SEGMENT_HEADER_BYTES, sizeof h);
    if (batch_header_valid(&h))
        return 0;
    char path[4096];
    segment_path(path, sizeof path, log->dir, s->first_position, "idx");
    if (access(path, F_OK) == 0)
        return 0;
    uint64_t window = torn_window(log, s, SEGMENT_HEADER_BYTES);
    if (damage_is_old(log, s, SEGMENT_HEADER_BYTES, window))
        return 0; /* segment_recover reports it */
    if (!log->cfg.read_only) {
        segment_path(path, sizeof path, log->dir, s->first_position, "seg");
        if (unlink(path) != 0)
            return problem(rec, -errno, "%s: cannot remove empty segment", path);
    }
    *dropped = true;
    return 0;
}

int log_recover(log_t *log, log_recovery_t *rec)
{
    uint64_t *firsts = NULL;
    uint32_t n = 0;
    int rc = walk_list_segments(log->dir, &firsts, &n);
    if (rc)
        return problem(rec, rc, "%s: cannot list: %s", log->dir, strerror(-rc));
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        segment_t *s = NULL;
        rc = segment_load(log, firsts[i], i + 1 == n, &s, rec);
        if (rc && i + 1 == n && !log->cfg.read_only && header_never_written(log, firsts[i])) {
            /* a roll cut short before its header was durable */
            char path[4096];
            segment_path(path, sizeof path, log->dir, firsts[i], "seg");
            rc = unlink(path) == 0 ? 0 : -errno;
            rec->problem[0] = '\0';
            break;
        }
        if (!rc && (rc = segments_add(log, s)) != 0) {
            segment_free(s);
            free(s);
        }
    }
    free(firsts);
    if (rc)
        return rc;
    while (log->segment_count > 1) {
        bool dropped;
        segment_t *s = log->segments[log->segment_count - 1];
        rc = drop_empty_last(log, s, rec, &dropped);
        if (rc || !dropped)
            break;
        segment_free(s);
        free(s);
        log->segment_count--;
    }
    for (uint32_t i = 0; i < log->segment_count && rc == 0; i++) {
        bool last = i + 1 == log->segment_count;
        uint64_t next = last ? 0 : log->segments[i + 1]->first_position;
        rc = segment_recover(log, i, last, next, rec);
    }
    rec->segments = log->segment_count;
    log->written_position = log->synced_position = log->head_position;
    log->written_checksum = log->head_checksum;
    log->pending_ids.base = log->head_position;
    return rc;
}
