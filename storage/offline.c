/* offline.c -- a set of segment files opened read-only for offline tools
 * (log_offline.h): a log_t that is only a shell around their mappings, so
 * that recovery's scan (log_scan_segment) and the index writer
 * (segment_index_write) run on them unchanged. No ring, no worker, no
 * writes, except where log_offline_index_write() and
 * log_offline_cut_tail() say so. */
#include "log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define OFFLINE_PATH_BYTES_MAX 4200u

struct log_offline_s {
    log_t shell; /* dir, segments, streams, head_position/head_checksum, scratch */
    segment_header_t *headers; /* headers[i]: segment i's, as read (zeros if unread) */
};

int log_offline_open(const char *dir, log_offline_t **out)
{
    log_offline_t *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    log_t *L = &o->shell;
    L->lock_fd = L->dir_fd = L->event_fd = -1;
    L->dir = strdup(dir);
    if (!L->dir || stream_table_init(&L->streams) != 0) {
        free(L->dir);
        free(o);
        return -ENOMEM;
    }
    L->cfg.dir = L->dir;
    L->cfg.read_only = true;
    *out = o;
    return 0;
}

void log_offline_close(log_offline_t *o)
{
    if (!o)
        return;
    log_t *L = &o->shell;
    for (uint32_t i = 0; i < L->segment_count; i++) {
        segment_free(L->segments[i]);
        free(L->segments[i]);
    }
    free(L->segments);
    stream_table_free(&L->streams);
    free(L->scratch);
    free(L->dir);
    free(o->headers);
    free(o);
}

/* Reads and checks the header of an open segment file into seg. */
static void offline_header(int fd, log_offline_segment_t *seg)
{
    memset(&seg->hdr, 0, sizeof seg->hdr);
    if (seg->file_bytes < sizeof seg->hdr) {
        seg->hdr_rc = LOG_EFORMAT;
        return;
    }
    ssize_t n = pread(fd, &seg->hdr, sizeof seg->hdr, 0);
    if (n != (ssize_t)sizeof seg->hdr) {
        seg->hdr_rc = n < 0 ? -errno : LOG_EFORMAT;
        return;
    }
    seg->hdr_rc = segment_header_check(&seg->hdr);
    seg->short_file = seg->hdr_rc == 0 && seg->file_bytes < seg->hdr.segment_bytes;
}

/* Opens, checks and maps one segment file into s; on failure s has an fd
 * of -1 and no mapping, and seg->hdr_rc says why. */
static void offline_segment_open(const char *path, log_offline_segment_t *seg, segment_t *s)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        seg->hdr_rc = -errno;
        if (fd >= 0)
            close(fd);
        return;
    }
    s->fd = fd;
    seg->file_bytes = (uint64_t)st.st_size;
    offline_header(fd, seg);
    uint64_t len = seg->file_bytes;
    if (seg->hdr_rc == 0 && seg->hdr.segment_bytes < len)
        len = seg->hdr.segment_bytes;
    s->size = len;
    s->prev_checksum = seg->hdr.prev_checksum;
    s->torn_window = seg->hdr.torn_window_bytes;
    if (len == 0)
        return;
    int rc = segment_map(s);
    if (rc != 0) {
        seg->hdr_rc = rc;
        s->size = 0;
    }
}

int log_offline_add(log_offline_t *o, const char *name, uint64_t first,
                    log_offline_segment_t *seg)
{
    log_t *L = &o->shell;
    char path[OFFLINE_PATH_BYTES_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", L->dir, name) >= sizeof path)
        return -ENAMETOOLONG;
    segment_header_t *headers = realloc(o->headers, (L->segment_count + 1) * sizeof *headers);
    if (!headers)
        return -ENOMEM;
    o->headers = headers;
    segment_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *s = (segment_t){.first_position = first, .fd = -1};
    memset(seg, 0, sizeof *seg);
    offline_segment_open(path, seg, s);
    int rc = segments_add(L, s);
    if (rc) {
        segment_free(s);
        free(s);
        memset(seg, 0, sizeof *seg);
        return rc;
    }
    headers[L->segment_count - 1] = seg->hdr;
    seg->map = s->map;
    seg->size = s->size;
    return 0;
}

uint32_t log_offline_count(const log_offline_t *o)
{
    return o->shell.segment_count;
}

int log_offline_scan(log_offline_t *o, uint32_t i, uint64_t *end)
{
    assert(i < o->shell.segment_count);
    return log_scan_segment(&o->shell, i, SEGMENT_HEADER_BYTES, end);
}

void log_offline_head(const log_offline_t *o, uint64_t *position, uint64_t *chain)
{
    *position = o->shell.head_position;
    *chain = o->shell.head_checksum;
}

void log_offline_index_forget(log_offline_t *o, uint32_t i)
{
    assert(i < o->shell.segment_count);
    segment_t *s = o->shell.segments[i];
    free(s->builder);
    s->builder = NULL;
    s->builder_count = s->builder_cap = 0;
}

int log_offline_index_write(log_offline_t *o, uint32_t i, uint64_t end)
{
    assert(i < o->shell.segment_count);
    log_t *L = &o->shell;
    int rc = segment_index_write(L->dir, L->segments[i], L->head_position, end, L->head_checksum);
    log_offline_index_forget(o, i);
    return rc;
}

int log_offline_cut_tail(log_offline_t *o, uint32_t i, uint64_t from, uint64_t to)
{
    assert(i < o->shell.segment_count);
    const segment_header_t *h = &o->headers[i];
    if (segment_header_check(h) != 0 || from < SEGMENT_HEADER_BYTES || from > to ||
        to > h->segment_bytes)
        return -EINVAL;
    char path[OFFLINE_PATH_BYTES_MAX];
    segment_path(path, sizeof path, o->shell.dir, o->shell.segments[i]->first_position, "seg");
    segment_t s = {.fd = open(path, O_RDWR | O_CLOEXEC)};
    if (s.fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(s.fd, &st) == 0 ? 0 : -errno;
    uint64_t file_bytes = rc == 0 ? (uint64_t)st.st_size : 0;
    if (rc == 0)
        rc = segment_zero(&s, from, to < file_bytes ? to : file_bytes);
    if (rc == 0 && file_bytes < h->segment_bytes && ftruncate(s.fd, (off_t)h->segment_bytes) != 0)
        rc = -errno;
    if (rc == 0 && fsync(s.fd) != 0) /* the length is metadata: fdatasync may not carry it */
        rc = -errno;
    close(s.fd);
    return rc;
}

int log_offline_lock(const char *dir, bool create)
{
    char path[OFFLINE_PATH_BYTES_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/LOCK", dir) >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int rc = errno == EWOULDBLOCK ? LOG_ELOCKED : -errno;
        close(fd);
        return rc;
    }
    return fd;
}
