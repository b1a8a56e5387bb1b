/* segments.c -- the log's list of segments, and rolling to a new one.
 *
 * On the append path: append.c -> segments.c -> writer.c -> worker.c ->
 * segment.c, each calling only the next ones (docs/architecture.md). */
#include "log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int segments_add(log_t *log, segment_t *s)
{
    if (log->segment_count == log->segment_cap) {
        uint32_t cap = log->segment_cap ? log->segment_cap * 2 : 16;
        segment_t **fresh = realloc(log->segments, cap * sizeof *fresh);
        if (!fresh)
            return -ENOMEM;
        log->segments = fresh;
        log->segment_cap = cap;
    }
    log->segments[log->segment_count++] = s;
    return 0;
}

/* Opens a new segment file at path: the prepared one if the worker has it
 * ready, else a fresh sparse file. */
static int segment_file_create(log_t *log, const char *path)
{
    int fd = log->worker ? worker_take_prepared(log->worker, path) : -1;
    if (fd >= 0)
        return fd;
    if (log->cfg.prepare_segments)
        log->stats.segments_prepared_missed++;
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)log->cfg.segment_bytes) != 0) {
        int rc = -errno;
        close(fd);
        unlink(path);
        return rc;
    }
    return fd;
}

int segment_roll(log_t *log)
{
    segment_t *old = log->segment_count ? log->segments[log->segment_count - 1] : NULL;
    char path[4096];
    segment_path(path, sizeof path, log->dir, log->head_position, "seg");
    int fd = segment_file_create(log, path);
    if (fd < 0)
        return fd;
    segment_header_t h = {.format_version = FORMAT_VERSION, .header_bytes = SEGMENT_HEADER_BYTES,
                          .first_position = log->head_position,
                          .segment_bytes = log->cfg.segment_bytes,
                          .prev_checksum = log->head_checksum, .created_ns = (int64_t)util_real_ns(),
                          .torn_window_bytes = log_torn_window(log)};
    memcpy(h.magic, SEGMENT_MAGIC, 8);
    segment_header_seal(&h);
    int rc = 0;
    segment_t *s = calloc(1, sizeof *s);
    if (!s) {
        rc = -ENOMEM;
        goto err_unlink;
    }
    *s = (segment_t){.first_position = h.first_position, .size = h.segment_bytes,
                     .write_offset = SEGMENT_HEADER_BYTES, .durable_offset = SEGMENT_HEADER_BYTES,
                     .prev_checksum = h.prev_checksum, .fd = fd};
    /* Into the page cache only: the first write to the segment is followed by
     * an fdatasync of it and an fsync of the directory before anything in it
     * is acknowledged, so rolling never blocks the append path on the disk. */
    s->fresh = true;
    if (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        rc = errno ? -errno : -EIO;
        goto err_free;
    }
    rc = segment_map(s);
    if (rc)
        goto err_free;
    rc = segments_add(log, s);
    if (rc)
        goto err_unmap;
    if (old)
        writer_seal(log, old);
    log->stats.segments++;
    return 0;
err_unmap:
    segment_unmap(s);
err_free:
    free(s);
err_unlink:
    close(fd);
    unlink(path);
    return rc;
}

uint64_t log_torn_window(const log_t *log)
{
    return log->cfg.durability == LOG_DURABILITY_ALWAYS
               ? (uint64_t)log->cfg.write_bytes_max * log->cfg.writes_inflight_max : 0;
}
