/* inspect_log.c -- opening a data directory (or one segment file) for
 * inspection: a read-only set of segments of the storage engine
 * (log_offline.h), and what the commands keep per segment. */
#include "inspect.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

static int inspect_log_add(inspect_log_t *log, const char *name, uint64_t first,
                           inspect_report_t *r)
{
    uint32_t i = log->count;
    inspect_seg_t *segs = realloc(log->segs, (i + 1) * sizeof *segs);
    if (!segs)
        return -ENOMEM;
    log->segs = segs;
    log_offline_segment_t found;
    int rc = log_offline_add(log->set, name, first, &found);
    if (rc)
        return rc;
    inspect_seg_t *seg = &segs[i];
    *seg = (inspect_seg_t){.first = first, .hdr = found.hdr, .hdr_rc = found.hdr_rc,
                           .file_bytes = found.file_bytes, .short_file = found.short_file,
                           .map = found.map, .size = found.size};
    snprintf(seg->file, sizeof seg->file, "%s", name);
    if (seg->map)
        (void)madvise((void *)seg->map, seg->size, MADV_SEQUENTIAL);
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
    int rc = log->dir ? log_offline_open(log->dir, &log->set) : -ENOMEM;
    if (rc == 0 && strlen(base) >= 32)
        rc = -ENAMETOOLONG;
    if (rc == 0) {
        bool named = walk_segment_name(base, &first);
        rc = inspect_log_add(log, base, first, r);
        inspect_seg_t *seg = &log->segs[0];
        if (rc == 0 && !named && seg->hdr_rc == 0) /* any name: trust the header */
            seg->first = seg->hdr.first_position;
    }
    free(copy);
    free(copy2);
    return rc;
}

int inspect_log_open(const char *path, inspect_log_t *log, inspect_report_t *r)
{
    memset(log, 0, sizeof *log);
    struct stat st;
    int rc = stat(path, &st) == 0 ? 0 : -errno;
    if (rc == 0 && S_ISDIR(st.st_mode)) {
        log->dir = strdup(path);
        rc = log->dir ? log_offline_open(log->dir, &log->set) : -ENOMEM;
        if (rc == 0)
            rc = inspect_log_dir(log, r);
    } else if (rc == 0 && S_ISREG(st.st_mode)) {
        rc = inspect_log_file(log, path, r);
    } else if (rc == 0) {
        rc = -EINVAL;
    }
    if (rc)
        inspect_log_close(log);
    return rc;
}

void inspect_log_close(inspect_log_t *log)
{
    log_offline_close(log->set);
    free(log->segs);
    free(log->dir);
    memset(log, 0, sizeof *log);
}
