/* writer.c -- group commit through io_uring.
 *
 * Accepted batches are encoded into write buffers (at most write_bytes_max
 * each). A buffer is written as one chain: its extents are written, each
 * followed by a linked fdatasync where the durability mode (or the end of a
 * segment) asks for one. Up to writes_inflight_max chains run at once (the
 * device syncs more bytes per second with a few concurrent fdatasyncs);
 * batches accepted meanwhile wait in the next buffer and share its write and
 * fdatasync. Buffers complete in any order but are acknowledged in position
 * order. A buffer that starts a new segment waits until every earlier one has
 * completed, so a sealed segment is whole before the next one holds a byte.
 * Short writes are resubmitted for the rest. An I/O error fails every batch
 * not yet acknowledged and rolls the in-memory state back to the last one. */
#include "log_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* The low 2 bits of a completion's user_data; the rest points at the extent
 * (or at the log, for a lone fdatasync). */
enum { OP_WRITE = 1, OP_SYNC = 2, OP_LONE_SYNC = 3 };

static uint64_t op_data(const void *p, int op) { return (uint64_t)(uintptr_t)p | (uint64_t)op; }

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
    b->state = WBUF_FILLING;
    b->error = 0;
    b->sqes_pending = 0;
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
    bool busy = b && b->state != WBUF_FILLING;
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
        *x = (extent_t){.owner = b, .segment = s, .file_offset = file_offset,
                        .buf_offset = b->len};
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
        *x = (extent_t){.owner = b, .segment = s, .file_offset = s->write_offset,
                        .buf_offset = b->len};
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

static struct io_uring_sqe *chain_sqe(log_t *log, struct io_uring_sqe **last)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&log->ring);
    assert(sqe); /* the ring holds writes_inflight_max full chains */
    sqe->flags |= IOSQE_IO_LINK;
    *last = sqe;
    return sqe;
}

/* Queues the unfinished extents of b, each with its fdatasync, as one chain. */
static int submit_wbuf(log_t *log, wbuf_t *b)
{
    uint32_t sqes = 0;
    struct io_uring_sqe *last = NULL;
    for (uint32_t i = 0; i < b->extent_count; i++) {
        extent_t *x = &b->extents[i];
        bool sync = extent_needs_sync(log, x);
        /* A write of a segment whose header is durable is made durable by
         * itself (RWF_DSYNC: one operation instead of a write and a linked
         * fdatasync; measured 198 us against 294 us for a small write). A
         * fresh segment needs a whole-file fdatasync, for its header. */
        bool dsync = sync && !x->segment->fresh && !x->seals && x->done < x->len;
        if (x->done < x->len) {
            struct io_uring_sqe *sqe = chain_sqe(log, &last);
            io_uring_prep_write(sqe, x->segment->fd, b->data + x->buf_offset + x->done,
                                (unsigned)(x->len - x->done), x->file_offset + x->done);
            io_uring_sqe_set_data64(sqe, op_data(x, OP_WRITE));
            sqe->flags |= IOSQE_IO_LINK;
            if (dsync) {
                sqe->rw_flags = RWF_DSYNC;
                log->stats.fdatasyncs++;
            }
            sqes++;
        }
        if (sync && !dsync) {
            struct io_uring_sqe *sqe = chain_sqe(log, &last);
            io_uring_prep_fsync(sqe, x->segment->fd, IORING_FSYNC_DATASYNC);
            io_uring_sqe_set_data64(sqe, op_data(x, OP_SYNC));
            sqe->flags |= IOSQE_IO_LINK;
            sqes++;
            log->stats.fdatasyncs++;
        }
        if (x->segment->fresh) {
            /* the new segment's name in the directory */
            struct io_uring_sqe *sqe = chain_sqe(log, &last);
            io_uring_prep_fsync(sqe, log->dir_fd, 0);
            io_uring_sqe_set_data64(sqe, op_data(x, OP_SYNC));
            sqe->flags |= IOSQE_IO_LINK;
            sqes++;
        }
    }
    if (b->state == WBUF_FILLING) {
        b->state = WBUF_INFLIGHT;
        b->start_ns = util_mono_ns();
        log->writes_inflight++;
        log->last_submitted = b->extents[b->extent_count - 1].segment;
    }
    if (sqes == 0) {
        b->state = WBUF_DONE; /* nothing to write or sync (a "none" buffer of no bytes) */
        log->writes_inflight--;
        return 0;
    }
    last->flags &= (uint8_t)~IOSQE_IO_LINK; /* the last operation ends the chain */
    b->sqes_pending = sqes;
    int rc = io_uring_submit(&log->ring);
    return rc < 0 ? rc : 0;
}

static int submit_lone_sync(log_t *log)
{
    segment_t *s = log->segments[log->segment_count - 1];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&log->ring);
    assert(sqe);
    io_uring_prep_fsync(sqe, s->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, op_data(log, OP_LONE_SYNC));
    int rc = io_uring_submit(&log->ring);
    if (rc < 0)
        return rc;
    log->sync_inflight = true;
    log->sync_target = log->written_position;
    log->stats.fdatasyncs++;
    return 0;
}

/* True if b writes to a segment other than the one last submitted: it must
 * wait for every earlier buffer (a new segment follows only a whole one). */
static bool wbuf_changes_segment(const log_t *log, const wbuf_t *b)
{
    for (uint32_t i = 0; i < b->extent_count; i++)
        if (b->extents[i].segment != log->last_submitted)
            return true;
    return false;
}

int writer_submit(log_t *log)
{
    if (log->sync_inflight)
        return 0;
    wbuf_t *b = log->wq_head;
    while (b && b->state != WBUF_FILLING)
        b = b->next;
    for (; b && b->extent_count > 0 && log->writes_inflight < log->cfg.writes_inflight_max;
         b = b->next) {
        if (log->writes_inflight > 0 && wbuf_changes_segment(log, b))
            break;
        int rc = submit_wbuf(log, b);
        if (rc < 0)
            return rc;
    }
    if (log->writes_inflight > 0 || (log->wq_head && log->wq_head->extent_count > 0))
        return 0;
    bool interval_due = log->cfg.durability == LOG_DURABILITY_INTERVAL &&
                        log->synced_position < log->written_position &&
                        util_mono_ns() - log->last_sync_ns >= (uint64_t)log->cfg.interval_ms * 1000000u;
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

/* Undoes every accepted batch from the in-flight buffer on: the index, the
 * segments created for them, the head. */
static int rollback(log_t *log, int error)
{
    wbuf_t *b = log->wq_head;
    assert(b && b->extent_count > 0 && log->writes_inflight == 0);
    uint64_t position = b->start_position;
    segment_t *first = b->extents[0].segment;
    uint64_t offset = b->extents[0].file_offset;
    uint64_t zero_to = offset;
    for (wbuf_t *w = b; w && w->state == WBUF_DONE; w = w->next)
        for (uint32_t i = 0; i < w->extent_count; i++)
            if (w->extents[i].segment == first &&
                w->extents[i].file_offset + w->extents[i].len > zero_to)
                zero_to = w->extents[i].file_offset + w->extents[i].len;
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
        rc = segment_zero(first, offset, zero_to); /* what the failed writes may have left */
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

/* The oldest buffer is written and synced: acknowledge its batches. */
static void finish_write(log_t *log)
{
    wbuf_t *b = log->wq_head;
    uint64_t latency = util_mono_ns() - b->start_ns;
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
}

/* Every completion of b's chain is in: done, or resubmitted for the rest of
 * a short write. */
static int wbuf_settle(log_t *log, wbuf_t *b)
{
    if (!b->error) {
        for (uint32_t i = 0; i < b->extent_count; i++)
            if (b->extents[i].done < b->extents[i].len)
                return submit_wbuf(log, b); /* short write: the rest, then sync */
    }
    b->state = WBUF_DONE;
    log->writes_inflight--;
    return 0;
}

/* Acknowledges done buffers in position order; on an error, once nothing is
 * in flight any more, fails everything from the failed buffer on. */
static int writer_advance(log_t *log)
{
    while (log->wq_head && log->wq_head->state == WBUF_DONE) {
        wbuf_t *b = log->wq_head;
        if (b->error) {
            if (log->writes_inflight > 0)
                return 0; /* the kernel still reads later buffers */
            log->stats.append_errors++;
            return rollback(log, b->error);
        }
        finish_write(log);
    }
    return 0;
}

static int handle_cqe(log_t *log, const struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    int op = (int)(data & 3);
    if (op == OP_LONE_SYNC) {
        log->sync_inflight = false;
        log->last_sync_ns = util_mono_ns();
        if (cqe->res < 0)
            log->fatal = cqe->res; /* acknowledged writes may be lost: stop */
        else
            log->synced_position = log->sync_target;
        return 0;
    }
    extent_t *x = (extent_t *)(uintptr_t)(data & ~(uint64_t)3);
    wbuf_t *b = x->owner;
    assert(b->state == WBUF_INFLIGHT && b->sqes_pending > 0);
    b->sqes_pending--;
    if (cqe->res < 0) {
        if (cqe->res != -ECANCELED && !b->error)
            b->error = cqe->res;
    } else if (op == OP_WRITE) {
        if (cqe->res == 0 && x->done < x->len && !b->error)
            b->error = -EIO; /* no progress at all */
        x->done += (uint64_t)cqe->res;
    } else if (op == OP_SYNC) {
        log->last_sync_ns = util_mono_ns();
    }
    return b->sqes_pending == 0 ? wbuf_settle(log, b) : 0;
}

int writer_reap(log_t *log, int timeout_ms)
{
    int rc = writer_submit(log);
    if (rc < 0)
        return rc;
    if (!log->writes_inflight && !log->sync_inflight)
        return complete_pending(log, log_visible_position(log), log->fatal);
    struct io_uring_cqe *cqe;
    if (timeout_ms != 0) {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        rc = io_uring_wait_cqe_timeout(&log->ring, &cqe, timeout_ms < 0 ? NULL : &ts);
        if (rc < 0 && rc != -ETIME && rc != -EINTR)
            return rc;
    }
    unsigned head, seen = 0;
    int err = 0;
    io_uring_for_each_cqe(&log->ring, head, cqe) {
        int r = handle_cqe(log, cqe);
        if (r < 0 && !err)
            err = r;
        seen++;
    }
    io_uring_cq_advance(&log->ring, seen);
    if (err)
        return err;
    rc = writer_advance(log);
    if (rc < 0)
        return rc;
    int done = complete_pending(log, log_visible_position(log), log->fatal);
    rc = writer_submit(log);
    return rc < 0 ? rc : done;
}
