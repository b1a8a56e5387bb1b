/* inspect_log.c -- opening a data directory (or one segment file) for
 * inspection: read-only descriptors, read-only mappings bounded by the file
 * size, and the engine's log_t as a shell around them. */
#include "inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads and checks the header of an open segment file into seg. */
static void inspect_seg_header(int fd, inspect_seg_t *seg)
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
    if (seg->hdr_rc == 0 && seg->file_bytes < seg->hdr.segment_bytes)
        seg->short_file = true;
}

/* Opens and maps one segment file; s gets an fd of -1 and no mapping when
 * it cannot be read (the reason is in seg->hdr_rc). */
static void inspect_seg_open(const char *path, inspect_seg_t *seg, segment_t *s)
{
    *s = (segment_t){.first_position = seg->first, .fd = -1};
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
    inspect_seg_header(fd, seg);
    uint64_t len = seg->file_bytes;
    if (seg->hdr_rc == 0 && seg->hdr.segment_bytes < len)
        len = seg->hdr.segment_bytes;
    s->size = len;
    s->prev_checksum = seg->hdr.prev_checksum;
    if (len == 0)
        return;
    int rc = segment_map(s);
    if (rc != 0) {
        seg->hdr_rc = rc;
        s->size = 0;
        return;
    }
    (void)madvise((void *)s->map, s->size, MADV_SEQUENTIAL);
}

static int inspect_log_add(inspect_log_t *log, const char *name, uint64_t first,
                           inspect_report_t *r)
{
    uint32_t i = log->count;
    inspect_seg_t *segs = realloc(log->segs, (i + 1) * sizeof *segs);
    if (!segs)
        return -ENOMEM;
    log->segs = segs;
    segment_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    inspect_seg_t *seg = &segs[i];
    memset(seg, 0, sizeof *seg);
    snprintf(seg->file, sizeof seg->file, "%s", name);
    seg->first = first;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", log->dir, name);
    inspect_seg_open(path, seg, s);
    int rc = segments_add(&log->shell, s);
    if (rc) {
        segment_free(s);
        free(s);
        return rc;
    }
    log->count++;
    if (seg->hdr_rc < 0 && seg->hdr_rc > -10000)
        inspect_io_error(r, seg->file, seg->hdr_rc);
    return 0;
}

static int inspect_log_dir(inspect_log_t *log, inspect_report_t *r)
{
    uint64_t *firsts = NULL;
    uint32_t n = 0;
    int rc = walk_list_segments(log->dir, &firsts, &n);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "%020llu.seg", (unsigned long long)firsts[i]);
        rc = inspect_log_add(log, name, firsts[i], r);
    }
    free(firsts);
    return rc;
}

static int inspect_log_file(inspect_log_t *log, const char *path, inspect_report_t *r)
{
    char *copy = strdup(path), *copy2 = strdup(path);
    if (!copy || !copy2) {
        free(copy);
        free(copy2);
        return -ENOMEM;
    }
    const char *base = basename(copy2);
    log->dir = strdup(dirname(copy));
    log->single = true;
    uint64_t first = 0;
    int rc = log->dir ? 0 : -ENOMEM;
    if (rc == 0 && strlen(base) >= 32)
        rc = -ENAMETOOLONG;
    if (rc == 0) {
        bool named = walk_segment_name(base, &first);
        rc = inspect_log_add(log, base, first, r);
        inspect_seg_t *seg = &log->segs[0];
        if (rc == 0 && !named && seg->hdr_rc == 0) /* any name: trust the header */
            seg->first = inspect_segment(log, 0)->first_position = seg->hdr.first_position;
    }
    free(copy);
    free(copy2);
    return rc;
}

int inspect_log_open(const char *path, inspect_log_t *log, inspect_report_t *r)
{
    memset(log, 0, sizeof *log);
    log->shell.lock_fd = log->shell.dir_fd = log->shell.event_fd = -1;
    int rc = stream_table_init(&log->shell.streams);
    struct stat st;
    if (rc == 0 && stat(path, &st) != 0)
        rc = -errno;
    if (rc == 0 && S_ISDIR(st.st_mode)) {
        log->dir = strdup(path);
        rc = log->dir ? inspect_log_dir(log, r) : -ENOMEM;
    } else if (rc == 0 && S_ISREG(st.st_mode)) {
        rc = inspect_log_file(log, path, r);
    } else if (rc == 0) {
        rc = -EINVAL;
    }
    log->shell.dir = log->dir;
    log->shell.cfg.dir = log->dir;
    if (rc)
        inspect_log_close(log);
    return rc;
}

void inspect_log_close(inspect_log_t *log)
{
    for (uint32_t i = 0; i < log->shell.segment_count; i++) {
        segment_free(log->shell.segments[i]);
        free(log->shell.segments[i]);
    }
    free(log->shell.segments);
    stream_table_free(&log->shell.streams);
    free(log->shell.scratch);
    free(log->segs);
    free(log->dir);
    memset(log, 0, sizeof *log);
}

int inspect_lock(const char *dir, bool create)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/LOCK", dir);
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
