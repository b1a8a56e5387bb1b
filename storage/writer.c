/* writer.c -- group commit through io_uring.
 *
 * Accepted batches are encoded into write buffers (at most write_bytes_max
 * each). One buffer is written at a time: its extents are written, each
 * followed by a linked fdatasync where the durability mode (or the end of a
 * segment) asks for one. Batches accepted while a write is in flight wait in
 * the next buffer and share its write and fdatasync. Short writes are
 * resubmitted for the rest. An I/O error fails every batch not yet written
 * and rolls the in-memory state back to the last written batch. */
#include "log_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OP_WRITE = 1, OP_SYNC = 2, OP_LONE_SYNC = 3 };

static uint64_t op_data(int op, uint32_t extent) { return (uint64_t)op | ((uint64_t)extent << 8); }

static wbuf_t *wbuf_new(log_t *log)
{
    wbuf_t *b = log->wfree;
    if (b) {
        log->wfree = b->next;
    } else {
        b = calloc(1, sizeof *b);
        if (!b)
            return NULL;
    }
    b->len = 0;
    b->extent_count = 0;
    b->next = NULL;
    b->start_position = b->end_position = log->head_position;
    b->start_checksum = b->end_checksum = log->head_checksum;
    if (log->wq_tail)
        log->wq_tail->next = b;
    else
        log->wq_head = b;
    log->wq_tail = b;
    return b;
}

static void wbuf_recycle(log_t *log, wbuf_t *b)
{
    b->next = log->wfree;
    log->wfree = b;
}

void writer_free(log_t *log)
{
    for (int pass = 0; pass < 2; pass++) {
        wbuf_t *b = pass ? log->wfree : log->wq_head;
        while (b) {
            wbuf_t *next = b->next;
            free(b->data);
            free(b);
            b = next;
        }
    }
    log->wq_head = log->wq_tail = log->wfree = NULL;
}

/* The buffer new bytes go to: the tail, unless it is being written or full. */
static wbuf_t *wbuf_fill(log_t *log, uint64_t need)
{
    wbuf_t *b = log->wq_tail;
    bool busy = b && b == log->wq_head && log->inflight;
    if (!b || busy || (b->len > 0 && b->len + need > log->cfg.write_bytes_max) ||
        b->extent_count == EXTENTS_MAX)
        b = wbuf_new(log);
    return b;
}

uint8_t *writer_reserve(log_t *log, segment_t *s, uint64_t file_offset, uint64_t need)
{
    wbuf_t *b = wbuf_fill(log, need);
    if (!b)
        return NULL;
    if (b->len + need > b->cap) {
        uint64_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->len + need)
            cap *= 2;
        uint8_t *fresh = realloc(b->data, cap);
        if (!fresh)
            return NULL;
        b->data = fresh;
        b->cap = cap;
    }
    extent_t *x = b->extent_count ? &b->extents[b->extent_count - 1] : NULL;
    if (!x || x->segment != s || x->file_offset + x->len != file_offset) {
        if (x)
            x->seals = x->segment != s;
        x = &b->extents[b->extent_count++];
        *x = (extent_t){.segment = s, .file_offset = file_offset, .buf_offset = b->len};
    }
    return b->data + b->len;
}

void writer_seal(log_t *log, segment_t *s)
{
    wbuf_t *b = wbuf_fill(log, 0);
    extent_t *x = b && b->extent_count ? &b->extents[b->extent_count - 1] : NULL;
    if (!b)
        return; /* ENOMEM: the segment is synced at close instead */
    if (!x || x->segment != s) {
        x = &b->extents[b->extent_count++];
        *x = (extent_t){.segment = s, .file_offset = s->write_offset, .buf_offset = b->len};
    }
    x->seals = true;
}

/* The position where segment s ends (UINT64_MAX while it is the last). */
static uint64_t segment_end_position(const log_t *log, const segment_t *s)
{
    for (uint32_t i = log->segment_count; i-- > 1;)
        if (log->segments[i - 1] == s)
            return log->segments[i]->first_position;
    return 0;
}

void writer_commit(log_t *log, uint64_t need, uint64_t used, uint64_t end_position,
                   uint64_t end_checksum)
{
    wbuf_t *b = log->wq_tail;
    assert(used <= need && b->len + used <= b->cap);
    (void)need;
    b->len += used;
    b->extents[b->extent_count - 1].len += used;
    b->end_position = end_position;
    b->end_checksum = end_checksum;
    log->pending_bytes += used;
}

static bool extent_needs_sync(const log_t *log, const extent_t *x)
{
    return x->seals || x->segment->fresh || log->cfg.durability == LOG_DURABILITY_ALWAYS;
}

/* Queues the unfinished extents of b, each with its fdatasync, as one chain. */
static int submit_wbuf(log_t *log, wbuf_t *b)
{
    uint32_t sqes = 0;
    struct io_uring_sqe *last = NULL;
    for (uint32_t i = 0; i < b->extent_count; i++) {
        extent_t *x = &b->extents[i];
        bool sync = extent_needs_sync(log, x);
        if (x->done == x->len && !sync)
            continue;
        if (x->done < x->len) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&log->ring);
            assert(sqe);
            io_uring_prep_write(sqe, x->segment->fd, b->data + x->buf_offset + x->done,
                                (unsigned)(x->len - x->done), x->file_offset + x->done);
            io_uring_sqe_set_data64(sqe, op_data(OP_WRITE, i));
            sqe->flags |= IOSQE_IO_LINK;
            last = sqe;
            sqes++;
        }
        if (sync) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&log->ring);
            assert(sqe);
            io_uring_prep_fsync(sqe, x->segment->fd, IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(sqe, op_data(OP_SYNC, i));
            sqe->flags |= IOSQE_IO_LINK;
            last = sqe;
            sqes++;
            log->stats.fdatasyncs++;
        }
        if (x->segment->fresh) {
            /* the new segment's name in the directory */
            struct io_uring_sqe *sqe = io_uring_get_sqe(&log->ring);
            assert(sqe);
            io_uring_prep_fsync(sqe, log->dir_fd, 0);
            io_uring_sqe_set_data64(sqe, op_data(OP_SYNC, i));
            sqe->flags |= IOSQE_IO_LINK;
            last = sqe;
            sqes++;
        }
    }
    if (sqes == 0)
        return 0;
    /* The last operation ends the chain. */
    last->flags &= (uint8_t)~IOSQE_IO_LINK;
    int rc = io_uring_submit(&log->ring);
    if (rc < 0)
        return rc;
    log->inflight = true;
    log->inflight_sqes = sqes;
    log->inflight_error = 0;
    return 0;
}

static int submit_lone_sync(log_t *log)
{
    segment_t *s = log->segments[log->segment_count - 1];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&log->ring);
    assert(sqe);
    io_uring_prep_fsync(sqe, s->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, op_data(OP_LONE_SYNC, 0));
    int rc = io_uring_submit(&log->ring);
    if (rc < 0)
        return rc;
    log->sync_inflight = true;
    log->sync_target = log->written_position;
    log->stats.fdatasyncs++;
    return 0;
}

int writer_submit(log_t *log)
{
    if (log->inflight || log->sync_inflight)
        return 0;
    wbuf_t *b = log->wq_head;
    if (b && b->extent_count > 0) {
        log->inflight_start_ns = mono_ns();
        return submit_wbuf(log, b);
    }
    bool interval_due = log->cfg.durability == LOG_DURABILITY_INTERVAL &&
                        log->synced_position < log->written_position &&
                        mono_ns() - log->last_sync_ns >= (uint64_t)log->cfg.interval_ms * 1000000u;
    if (interval_due || (log->closing && log->synced_position < log->written_position))
        return submit_lone_sync(log);
    return 0;
}

/* Runs the callbacks of every pending append now acknowledged. */
static int complete_pending(log_t *log, uint64_t visible, int error)
{
    int done = 0;
    while (log->pending_head && (error || log->pending_head->end_position <= visible)) {
        pending_t *p = log->pending_head;
        log->pending_head = p->next;
        if (!log->pending_head)
            log->pending_tail = NULL;
        if (error && p->end_position > visible) {
            p->result.status = error;
            log->stats.append_errors++;
        } else if (!p->result.idempotent) {
            log->stats.appends++;
            log->stats.events_appended += p->result.event_count;
        }
        p->cb(p->ctx, &p->result);
        free(p);
        done++;
    }
    return done;
}

/* Forgets ids of events now written: they are read from the log instead. */
static void pending_ids_trim(log_t *log)
{
    id_queue_t *q = &log->pending_ids;
    while (q->count > 0 && q->base < log->written_position) {
        q->start = (q->start + 1) % (q->cap ? q->cap : 1);
        q->base++;
        q->count--;
    }
    if (q->count == 0) {
        q->start = 0;
        q->base = log->head_position;
    }
}

/* Hands the index of every sealed, durable segment to the worker. */
static void seal_durable_segments(log_t *log)
{
    while (log->segments_indexed + 1 < log->segment_count) {
        segment_t *s = log->segments[log->segments_indexed];
        segment_t *next = log->segments[log->segments_indexed + 1];
        if (log->synced_position < next->first_position)
            break;
        s->sealed = true;
        s->end_position = next->first_position;
        if (!s->indexed && log->worker)
            worker_queue_index(log->worker, s, next->first_position, s->write_offset,
                               next->prev_checksum);
        log->segments_indexed++;
    }
}

/* Writes zeros over the bytes a failed write may have left, so recovery never
 * mistakes them for batches. Synchronous: this is the rare error path. */
static int zero_region(segment_t *s, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[65536];
    for (uint64_t off = from; off < to;) {
        size_t n = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
        ssize_t w = pwrite(s->fd, zeros, n, (off_t)off);
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        off += (uint64_t)w;
    }
    return fdatasync(s->fd) != 0 ? -errno : 0;
}

/* Undoes every accepted batch from the in-flight buffer on: the index, the
 * segments created for them, the head. */
static int rollback(log_t *log, int error)
{
    wbuf_t *b = log->wq_head;
    assert(b && b->extent_count > 0);
    uint64_t position = b->start_position;
    segment_t *first = b->extents[0].segment;
    uint64_t offset = b->extents[0].file_offset;
    uint64_t zero_to = b->extents[0].file_offset + b->extents[0].len;
    int rc = 0;
    for (uint32_t i = log->segment_count; i-- > 0;) {
        segment_t *s = log->segments[i];
        for (uint64_t j = s->builder_count; j-- > 0 && s->builder[j].entry.position >= position;)
            stream_truncate(s->builder[j].stream, position);
        segment_truncate_memory(s, position);
        if (s == first)
            break;
        /* A segment created for the failed batches goes away. */
        char path[4096];
        segment_path(path, sizeof path, log->dir, s->first_position, "seg");
        unlink(path);
        segment_free(s);
        free(s);
        log->segment_count--;
    }
    first->write_offset = offset;
    if (zero_to > offset)
        rc = zero_region(first, offset, zero_to);
    log->head_position = position;
    log->head_checksum = b->start_checksum;
    idcache_forget_from(&log->ids, position);
    log->pending_ids.count = 0;
    log->pending_ids.start = 0;
    log->pending_ids.base = position;
    while (log->wq_head) {
        wbuf_t *next = log->wq_head->next;
        wbuf_recycle(log, log->wq_head);
        log->wq_head = next;
    }
    log->wq_tail = NULL;
    log->pending_bytes = 0;
    complete_pending(log, log_visible_position(log), error);
    return rc;
}

/* A whole write (and its fdatasyncs) finished: acknowledge or fail. */
static int finish_write(log_t *log)
{
    wbuf_t *b = log->wq_head;
    log->inflight = false;
    int error = log->inflight_error;
    if (!error) {
        for (uint32_t i = 0; i < b->extent_count; i++)
            if (b->extents[i].done < b->extents[i].len)
                return submit_wbuf(log, b); /* short write: the rest, then sync */
    }
    if (error) {
        log->stats.append_errors++;
        int rc = rollback(log, error);
        return rc ? rc : 0;
    }
    uint64_t latency = mono_ns() - log->inflight_start_ns;
    log->stats.writes++;
    log->stats.bytes_written += b->len;
    log->stats.sync_ns_total += latency;
    if (log->cfg.on_commit)
        log->cfg.on_commit(log->cfg.on_commit_ctx, b->end_position - b->start_position, b->len,
                           latency);
    log->pending_bytes -= b->len;
    log->written_position = b->end_position;
    log->written_checksum = b->end_checksum;
    for (uint32_t i = 0; i < b->extent_count; i++) {
        b->extents[i].segment->durable_offset = b->extents[i].file_offset + b->extents[i].len;
        b->extents[i].segment->fresh = false;
    }
    if (log->cfg.durability == LOG_DURABILITY_ALWAYS)
        log->synced_position = b->end_position;
    for (uint32_t i = 0; i < b->extent_count; i++) {
        uint64_t end = segment_end_position(log, b->extents[i].segment);
        if (b->extents[i].seals && end > log->synced_position)
            log->synced_position = end; /* the whole sealed segment is synced */
    }
    log->wq_head = b->next;
    if (!log->wq_head)
        log->wq_tail = NULL;
    wbuf_recycle(log, b);
    pending_ids_trim(log);
    seal_durable_segments(log);
    return 0;
}

static void handle_cqe(log_t *log, const struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    int op = (int)(data & 0xff);
    uint32_t i = (uint32_t)(data >> 8);
    if (op == OP_LONE_SYNC) {
        log->sync_inflight = false;
        log->last_sync_ns = mono_ns();
        if (cqe->res < 0)
            log->fatal = cqe->res; /* acknowledged writes may be lost: stop */
        else
            log->synced_position = log->sync_target;
        return;
    }
    assert(log->inflight && log->inflight_sqes > 0);
    log->inflight_sqes--;
    if (cqe->res < 0) {
        if (cqe->res != -ECANCELED && !log->inflight_error)
            log->inflight_error = cqe->res;
    } else if (op == OP_WRITE) {
        extent_t *x = &log->wq_head->extents[i];
        if (cqe->res == 0 && x->done < x->len && !log->inflight_error)
            log->inflight_error = -EIO; /* no progress at all */
        x->done += (uint64_t)cqe->res;
    } else if (op == OP_SYNC) {
        log->last_sync_ns = mono_ns();
    }
}

int writer_reap(log_t *log, int timeout_ms)
{
    int rc = writer_submit(log);
    if (rc < 0)
        return rc;
    if (!log->inflight && !log->sync_inflight)
        return complete_pending(log, log_visible_position(log), 0);
    struct io_uring_cqe *cqe;
    if (timeout_ms != 0) {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        rc = io_uring_wait_cqe_timeout(&log->ring, &cqe, timeout_ms < 0 ? NULL : &ts);
        if (rc < 0 && rc != -ETIME && rc != -EINTR)
            return rc;
    }
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&log->ring, head, cqe) {
        handle_cqe(log, cqe);
        seen++;
    }
    io_uring_cq_advance(&log->ring, seen);
    if (log->inflight && log->inflight_sqes == 0) {
        rc = finish_write(log);
        if (rc < 0)
            return rc;
    }
    if (log->fatal)
        return complete_pending(log, log_visible_position(log), log->fatal);
    int done = complete_pending(log, log_visible_position(log), 0);
    rc = writer_submit(log);
    return rc < 0 ? rc : done;
}
