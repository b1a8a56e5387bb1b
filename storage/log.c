/* log.c -- opening and closing a log, polling it, and statistics. */
#include "log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_RING_ENTRIES 256u /* >= LOG_WRITES_INFLIGHT_LIMIT * EXTENTS_MAX * 3 */

void log_config_default(log_config_t *cfg)
{
    *cfg = (log_config_t){
        .segment_bytes = LOG_SEGMENT_BYTES_DEFAULT,
        .durability = LOG_DURABILITY_ALWAYS,
        .interval_ms = LOG_INTERVAL_MS_DEFAULT,
        .compress_threshold_bytes = LOG_COMPRESS_THRESHOLD_BYTES_DEFAULT,
        .write_bytes_max = LOG_WRITE_BYTES_MAX_DEFAULT,
        .writes_inflight_max = LOG_WRITES_INFLIGHT_MAX_DEFAULT,
        .pending_bytes_max = LOG_PENDING_BYTES_MAX_DEFAULT,
        .event_bytes_max = LOG_EVENT_BYTES_MAX_DEFAULT,
        .batch_events_max = LOG_BATCH_EVENTS_MAX_DEFAULT,
        .batch_streams_max = LOG_BATCH_STREAMS_LIMIT,
        .idempotency_scan_max = LOG_IDEMPOTENCY_SCAN_MAX_DEFAULT,
        .idempotency_window = LOG_IDEMPOTENCY_WINDOW_DEFAULT,
        .prepare_segments = true,
    };
}

static int config_check(const log_config_t *c)
{
    if (!c->dir || !c->dir[0] || strlen(c->dir) > 3000)
        return LOG_EBAD_REQUEST;
    if (c->segment_bytes < LOG_SEGMENT_BYTES_MIN || c->segment_bytes > LOG_SEGMENT_BYTES_MAX ||
        c->segment_bytes % 4096 != 0)
        return LOG_EBAD_REQUEST;
    if (c->write_bytes_max < 4096 || c->writes_inflight_max == 0 ||
        c->writes_inflight_max > LOG_WRITES_INFLIGHT_LIMIT)
        return LOG_EBAD_REQUEST;
    if (c->batch_streams_max == 0 || c->batch_streams_max > LOG_BATCH_STREAMS_LIMIT ||
        c->batch_events_max == 0 || c->event_bytes_max == 0 || c->pending_bytes_max == 0)
        return LOG_EBAD_REQUEST;
    if (c->durability == LOG_DURABILITY_INTERVAL && c->interval_ms == 0)
        return LOG_EBAD_REQUEST;
    return 0;
}

/* ---- open and close ---- */

static int lock_dir(log_t *log)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", log->dir);
    log->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (log->lock_fd < 0)
        return -errno;
    if (flock(log->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? LOG_ELOCKED : -errno;
    return 0;
}

static int ring_init(log_t *log)
{
    int rc = io_uring_queue_init(LOG_RING_ENTRIES, &log->ring, 0);
    if (rc < 0)
        return rc; /* -EPERM/-ENOSYS: io_uring refused by seccomp or sysctl */
    log->ring_ready = true;
    log->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (log->event_fd < 0)
        return -errno;
    return io_uring_register_eventfd(&log->ring, log->event_fd);
}

static void log_free(log_t *log)
{
    worker_stop(log->worker);
    for (uint32_t i = 0; i < log->segment_count; i++) {
        segment_free(log->segments[i]);
        free(log->segments[i]);
    }
    free(log->segments);
    stream_table_free(&log->streams);
    writer_free(log);
    while (log->pending_head) {
        pending_t *p = log->pending_head;
        log->pending_head = p->next;
        free(p);
    }
    free(log->pending_ids.ids);
    idcache_free(&log->ids);
    free(log->encode);
    free(log->scratch);
    if (log->ring_ready)
        io_uring_queue_exit(&log->ring);
    if (log->event_fd >= 0)
        close(log->event_fd);
    if (log->dir_fd >= 0)
        close(log->dir_fd);
    if (log->lock_fd >= 0)
        close(log->lock_fd);
    free(log->dir);
    free(log);
}

/* Hands sealed segments that recovery had to scan to the worker for indexing. */
static void index_scanned_segments(log_t *log)
{
    for (uint32_t i = 0; i + 1 < log->segment_count; i++) {
        segment_t *s = log->segments[i];
        s->sealed = true;
        s->end_position = log->segments[i + 1]->first_position;
        if (!s->indexed)
            worker_queue_index(log->worker, s, s->end_position, s->write_offset,
                               log->segments[i + 1]->prev_checksum);
    }
    log->segments_indexed = log->segment_count ? log->segment_count - 1 : 0;
}

static int idcache_visit(void *ctx, const log_event_t *ev)
{
    log_t *log = ctx;
    idcache_put(&log->ids, ev->id, ev->position, log->head_position);
    return 0;
}

/* Fills the recent-id cache from the last idempotency_window events, so that
 * a client retrying across a restart is still recognised. */
static int idcache_reload(log_t *log)
{
    uint64_t w = log->cfg.idempotency_window;
    uint64_t from = log->head_position > w ? log->head_position - w : 0;
    log_read_t req = {.stream = "$all", .stream_len = 4, .from = from,
                      .max_count = LOG_READ_SCAN_MAX_DEFAULT};
    while (w > 0 && from < log->head_position) {
        log_read_result_t res;
        req.from = from;
        int rc = log_read(log, &req, idcache_visit, log, &res);
        if (rc == LOG_ECORRUPT)
            return 0; /* reads report it where it is; the cache is only a cache */
        if (rc)
            return rc;
        if (res.end || res.next <= from)
            break;
        from = res.next;
    }
    return 0;
}

int log_open(const log_config_t *cfg, log_t **out, log_recovery_t *rec)
{
    log_recovery_t local;
    if (!rec)
        rec = &local;
    memset(rec, 0, sizeof *rec);
    int rc = config_check(cfg);
    if (rc)
        return rc;
    log_t *log = calloc(1, sizeof *log);
    if (!log)
        return -ENOMEM;
    log->cfg = *cfg;
    /* A write never spans more than a segment can hold. */
    if (log->cfg.write_bytes_max > cfg->segment_bytes - SEGMENT_HEADER_BYTES)
        log->cfg.write_bytes_max = (uint32_t)(cfg->segment_bytes - SEGMENT_HEADER_BYTES);
    log->lock_fd = log->dir_fd = log->event_fd = -1;
    log->dir = strdup(cfg->dir);
    log->cfg.dir = log->dir;
    if (!log->dir || stream_table_init(&log->streams) != 0 ||
        idcache_init(&log->ids, cfg->read_only ? 0 : cfg->idempotency_window) != 0) {
        rc = -ENOMEM;
        goto err;
    }
    if (!cfg->read_only && mkdir(cfg->dir, 0755) != 0 && errno != EEXIST) {
        rc = -errno;
        goto err;
    }
    log->dir_fd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dir_fd < 0) {
        rc = -errno;
        goto err;
    }
    if (!cfg->read_only) {
        if ((rc = lock_dir(log)) != 0 || (rc = ring_init(log)) != 0)
            goto err;
    }
    rc = log_recover(log, rec);
    if (rc)
        goto err;
    if (!cfg->read_only) {
        rc = worker_start(&log->worker, log->dir, cfg->segment_bytes, cfg->prepare_segments);
        if (rc)
            goto err;
        index_scanned_segments(log);
        if (log->segment_count == 0) {
            worker_wait_prepared(log->worker); /* a new log starts on a written-out file */
            if ((rc = segment_roll(log)) != 0)
                goto err;
        }
    }
    if (!cfg->read_only && (rc = idcache_reload(log)) != 0)
        goto err;
    log->last_sync_ns = util_mono_ns();
    rec->events = log->head_position;
    rec->streams = log->streams.streams;
    log->stats.segments = log->segment_count;
    *out = log;
    return 0;
err:
    log_free(log);
    return rc;
}

int log_drain(log_t *log)
{
    while (log->pending_head || log->wq_head || log->writes_inflight || log->sync_inflight) {
        int rc = writer_reap(log, -1);
        if (rc < 0)
            return rc;
    }
    return log->fatal;
}

int log_close(log_t *log)
{
    if (!log)
        return 0;
    int rc = 0;
    if (!log->cfg.read_only) {
        log->closing = true;
        rc = log_drain(log);
        /* Make what "none" and "interval" acknowledged durable too. */
        while (rc == 0 && (log->synced_position < log->written_position || log->sync_inflight)) {
            int r = writer_reap(log, -1);
            if (r < 0 || log->fatal)
                rc = r < 0 ? r : log->fatal;
        }
        /* One index file is written at a time (they share the streams' scratch). */
        worker_flush(log->worker);
        segment_t *last = log->segment_count ? log->segments[log->segment_count - 1] : NULL;
        if (rc == 0 && last && !last->indexed)
            rc = segment_index_write(log->dir, last, log->written_position, last->write_offset,
                                     log->written_checksum);
    }
    log_free(log);
    return rc;
}

int log_event_fd(const log_t *log)
{
    return log->event_fd;
}

int log_poll(log_t *log, int timeout_ms)
{
    return writer_reap(log, timeout_ms);
}

struct wait_ctx {
    bool done;
    log_append_result_t *res;
};

static void wait_cb(void *ctx, const log_append_result_t *res)
{
    struct wait_ctx *w = ctx;
    *w->res = *res;
    w->done = true;
}

int log_append_wait(log_t *log, const log_append_t *req, log_append_result_t *res)
{
    struct wait_ctx w = {.res = res};
    int rc = log_append(log, req, wait_cb, &w, res);
    if (rc)
        return rc;
    while (!w.done) {
        rc = log_poll(log, -1);
        if (rc < 0 && !w.done) {
            res->status = rc;
            return rc;
        }
    }
    return res->status;
}

void log_stats(const log_t *log, log_stats_t *out)
{
    *out = log->stats;
    out->head_position = log->head_position;
    out->durable_position = log_visible_position(log);
    out->streams = log->streams.streams;
    out->segments = log->segment_count;
}

int log_stream_version(const log_t *log, const char *stream, size_t stream_len, int64_t *version)
{
    const stream_t *s = stream_table_find(&log->streams, stream, stream_len, false);
    if (!s)
        return LOG_ENOT_FOUND;
    uint64_t n = stream_lower_bound(s, log_visible_position(log));
    if (n == 0)
        return LOG_ENOT_FOUND;
    *version = (int64_t)n - 1;
    return 0;
}

void log_streams_each(const log_t *log,
                      int (*fn)(void *ctx, const char *name, size_t len, int64_t version),
                      void *ctx)
{
    const stream_table_t *t = &log->streams;
    uint64_t visible = log_visible_position(log);
    uint64_t cursor = 0;
    for (const stream_t *s; (s = names_next(&t->names, &cursor));) {
        if (s->is_category)
            continue;
        uint64_t n = stream_lower_bound(s, visible);
        if (n > 0 && fn(ctx, s->name, s->name_len, (int64_t)n - 1))
            return;
    }
}
