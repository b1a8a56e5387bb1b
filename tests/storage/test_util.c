/* test_util.c -- helpers shared by the storage tests (see test_util.h). */
#define _GNU_SOURCE
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- temporary directories ------------------------------------------ */

static char g_root[512];

const char *tu_root_make(const char *program) {
    const char *base = getenv("EVSTORE_TEST_TMPDIR");
    if (base == NULL || base[0] == '\0') base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') base = "/tmp";
    (void)mkdir(base, 0700); /* the build's temp dir may not exist yet */
    int n = snprintf(g_root, sizeof g_root, "%s/evstore-%s-XXXXXX", base, program);
    if (n < 0 || (size_t)n >= sizeof g_root) return NULL;
    if (mkdtemp(g_root) == NULL) return NULL;
    return g_root;
}

void tu_root_remove(void) {
    if (g_root[0] != '\0') (void)tu_dir_remove(g_root);
    g_root[0] = '\0';
}

int tu_dir_make(char *buf, size_t cap) {
    if (g_root[0] == '\0') return -EINVAL;
    int n = snprintf(buf, cap, "%s/t-XXXXXX", g_root);
    if (n < 0 || (size_t)n >= cap) return -ENAMETOOLONG;
    if (mkdtemp(buf) == NULL) return -errno;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -errno;
}

int tu_dir_remove(const char *path) {
    int rc = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc == 0 ? 0 : (rc < 0 ? -errno : rc);
}

/* ---- configuration --------------------------------------------------- */

void tu_config(log_config_t *cfg, const char *dir, uint64_t segment_bytes, bool prepare) {
    log_config_default(cfg);
    cfg->dir = dir;
    cfg->segment_bytes = segment_bytes;
    cfg->prepare_segments = prepare;
}

/* ---- deterministic contents ------------------------------------------ */

uint64_t tu_rand_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t tu_rand_below(uint64_t *state, uint64_t n) { return tu_rand_next(state) % n; }

void tu_id(uint8_t id[16], uint64_t a, uint64_t b) {
    for (int i = 0; i < 8; i++) {
        id[i] = (uint8_t)(a >> (8 * i));
        id[8 + i] = (uint8_t)(b >> (8 * i));
    }
}

void tu_fill(void *buf, size_t n, uint64_t seed, bool compressible) {
    static const char *const words[] = {"order ", "placed ", "payment ", "shipped ", "sku-17 ",
                                        "qty=3 ", "EUR ",    "ok ",      "\n"};
    uint8_t *p = buf;
    uint64_t state = seed;
    if (!compressible) {
        size_t i = 0;
        while (i < n) {
            uint64_t r = tu_rand_next(&state);
            for (int k = 0; k < 8 && i < n; k++, i++) p[i] = (uint8_t)(r >> (8 * k));
        }
        return;
    }
    /* a phrase of a few words chosen by seed, repeated, with one byte in
     * every 512 varied so that the content still depends on the offset */
    char phrase[64];
    size_t plen = 0;
    while (plen < 40) {
        const char *w = words[tu_rand_below(&state, sizeof words / sizeof words[0])];
        for (size_t k = 0; w[k] != '\0' && plen < sizeof phrase; k++) phrase[plen++] = w[k];
    }
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)phrase[i % plen];
    for (size_t i = 0; i < n; i += 512) p[i] = (uint8_t)('A' + (i / 512 + seed) % 26);
}

/* ---- events built by tests ------------------------------------------- */

int tu_event_make(tu_event_t *ev, uint64_t a, uint64_t b, const char *type, size_t metadata_len,
                  size_t data_len, uint64_t seed, bool compressible) {
    memset(ev, 0, sizeof *ev);
    tu_id(ev->id, a, b);
    snprintf(ev->type, sizeof ev->type, "%s", type);
    if (metadata_len > 0) {
        ev->metadata = malloc(metadata_len);
        if (ev->metadata == NULL) return -ENOMEM;
        tu_fill(ev->metadata, metadata_len, seed ^ 0x5555, compressible);
        ev->metadata_len = metadata_len;
    }
    if (data_len > 0) {
        ev->data = malloc(data_len);
        if (ev->data == NULL) {
            tu_event_free(ev);
            return -ENOMEM;
        }
        tu_fill(ev->data, data_len, seed, compressible);
        ev->data_len = data_len;
    }
    return 0;
}

void tu_event_free(tu_event_t *ev) {
    free(ev->metadata);
    free(ev->data);
    ev->metadata = ev->data = NULL;
    ev->metadata_len = ev->data_len = 0;
}

log_event_in_t tu_event_in(const tu_event_t *ev) {
    log_event_in_t in;
    memset(&in, 0, sizeof in);
    memcpy(in.id, ev->id, 16);
    in.type = ev->type;
    in.type_len = strlen(ev->type);
    in.metadata = ev->metadata;
    in.metadata_len = ev->metadata_len;
    in.data = ev->data;
    in.data_len = ev->data_len;
    in.timestamp_ns = ev->timestamp_ns;
    return in;
}

int tu_append(log_t *log, const char *stream, int64_t expected, const log_event_in_t *events,
              uint32_t n, log_append_result_t *res) {
    log_stream_append_t sa = {
        .stream = stream,
        .stream_len = strlen(stream),
        .expected_version = expected,
        .events = events,
        .event_count = n,
    };
    log_append_t req = {.streams = &sa, .stream_count = 1};
    return log_append_wait(log, &req, res);
}

#define SIMPLE_MAX 64u

int tu_append_simple(log_t *log, const char *stream, int64_t expected, uint64_t tag, uint32_t n,
                     log_append_result_t *res) {
    if (n > SIMPLE_MAX) return -EINVAL;
    static char data[SIMPLE_MAX][96];
    log_event_in_t in[SIMPLE_MAX];
    memset(in, 0, sizeof in);
    for (uint32_t i = 0; i < n; i++) {
        tu_id(in[i].id, tag, i);
        in[i].type = "t";
        in[i].type_len = 1;
        int len =
            snprintf(data[i], sizeof data[i], "%s:%llu:%u", stream, (unsigned long long)tag, i);
        in[i].data = data[i];
        in[i].data_len = (size_t)len;
    }
    return tu_append(log, stream, expected, in, n, res);
}

/* ---- reading --------------------------------------------------------- */

static void read_event_free(tu_read_event_t *e) {
    free(e->stream);
    free(e->type);
    free(e->metadata);
    free(e->data);
}

void tu_events_clear(tu_events_t *evs) {
    for (size_t i = 0; i < evs->n; i++) read_event_free(&evs->v[i]);
    free(evs->v);
    memset(evs, 0, sizeof *evs);
}

static void *dup_bytes(const void *p, size_t n) {
    void *c = malloc(n + 1); /* +1: never malloc(0), and strings get a NUL */
    if (c == NULL) return NULL;
    if (n > 0) memcpy(c, p, n);
    ((char *)c)[n] = '\0';
    return c;
}

int tu_collect(void *ctx, const log_event_t *ev) {
    tu_events_t *evs = ctx;
    if (evs->n == evs->cap) {
        size_t cap = evs->cap ? evs->cap * 2 : 64;
        tu_read_event_t *v = realloc(evs->v, cap * sizeof *v);
        if (v == NULL) {
            evs->error = -ENOMEM;
            return 1;
        }
        evs->v = v;
        evs->cap = cap;
    }
    tu_read_event_t *e = &evs->v[evs->n];
    memset(e, 0, sizeof *e);
    e->position = ev->position;
    e->version = ev->version;
    e->timestamp_ns = ev->timestamp_ns;
    memcpy(e->id, ev->id, 16);
    e->stream = dup_bytes(ev->stream, ev->stream_len);
    e->stream_len = ev->stream_len;
    e->type = dup_bytes(ev->type, ev->type_len);
    e->type_len = ev->type_len;
    e->metadata = dup_bytes(ev->metadata, ev->metadata_len);
    e->metadata_len = ev->metadata_len;
    e->data = dup_bytes(ev->data, ev->data_len);
    e->data_len = ev->data_len;
    if (!e->stream || !e->type || !e->metadata || !e->data) {
        read_event_free(e);
        evs->error = -ENOMEM;
        return 1;
    }
    evs->n++;
    return 0;
}

int tu_read(log_t *log, const char *stream, uint64_t from, bool backwards, uint32_t max_count,
            const log_filter_t *filter, tu_events_t *out, log_read_result_t *res) {
    log_read_t req = {
        .stream = stream,
        .stream_len = strlen(stream),
        .from = from,
        .backwards = backwards,
        .max_count = max_count,
        .filter = filter,
    };
    memset(res, 0, sizeof *res);
    int rc = log_read(log, &req, tu_collect, out, res);
    if (rc == 0 && out->error != 0) rc = out->error;
    return rc;
}

/* Reads are bounded by LOG_READ_SCAN_MAX_DEFAULT per call, so a read may
 * end a page early without being at the end; this bounds the page count
 * instead, generously, so that a read that never ends fails the test. */
#define READ_CALLS_MAX 1000000u

int tu_read_all(log_t *log, const char *stream, uint64_t from, bool backwards, uint32_t page,
                const log_filter_t *filter, tu_events_t *out, int64_t *last_version) {
    for (uint32_t calls = 0; calls < READ_CALLS_MAX; calls++) {
        log_read_result_t res;
        size_t before = out->n;
        int rc = tu_read(log, stream, from, backwards, page, filter, out, &res);
        if (rc != 0) return rc;
        if (res.count != out->n - before) return -EPROTO; /* count must match deliveries */
        if (last_version != NULL) *last_version = res.stream_version;
        if (res.end) return 0;
        if (res.count == 0 && res.next == from) return -ELOOP; /* no progress */
        from = res.next;
    }
    return -ELOOP;
}

/* ---- files ------------------------------------------------------------ */

static int cmp_path(const void *a, const void *b) { return strcmp(a, b); }

int tu_segments(const char *dir, char paths[][512], int cap) {
    DIR *d = opendir(dir);
    if (d == NULL) return -errno;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".seg") != 0) continue;
        if (n == cap) {
            closedir(d);
            return -ENOSPC;
        }
        snprintf(paths[n], 512, "%s/%s", dir, de->d_name);
        n++;
    }
    closedir(d);
    qsort(paths, (size_t)n, 512, cmp_path);
    return n;
}

int tu_file_read(const char *path, uint64_t offset, void *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t got = pread(fd, buf, len, (off_t)offset);
    int err = got < 0 ? -errno : ((size_t)got != len ? -EIO : 0);
    close(fd);
    return err;
}

int tu_file_write(const char *path, uint64_t offset, const void *buf, size_t len) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t put = pwrite(fd, buf, len, (off_t)offset);
    int err = put < 0 ? -errno : ((size_t)put != len ? -EIO : 0);
    if (err == 0 && fsync(fd) != 0) err = -errno;
    close(fd);
    return err;
}

int tu_file_flip(const char *path, uint64_t offset, unsigned bit) {
    uint8_t b;
    int rc = tu_file_read(path, offset, &b, 1);
    if (rc != 0) return rc;
    b ^= (uint8_t)(1u << (bit & 7u));
    return tu_file_write(path, offset, &b, 1);
}

int tu_file_exists(const char *path) { return access(path, F_OK) == 0; }

/* ---- the page cache ----------------------------------------------------- */

/* cachestat(2) is newer than the C library's headers: its number (451 in
 * the table every architecture but alpha shares) and structures, from
 * <linux/mman.h> of Linux 6.5. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

typedef struct {
    uint64_t off;
    uint64_t len; /* 0: to the end of the file */
} tu_cachestat_range_t;

typedef struct {
    uint64_t nr_cache;
    uint64_t nr_dirty;
    uint64_t nr_writeback;
    uint64_t nr_evicted;
    uint64_t nr_recently_evicted;
} tu_cachestat_t;

static int64_t fd_unsynced_pages(int fd) {
    tu_cachestat_range_t range = {.off = 0, .len = 0};
    tu_cachestat_t cs;
    memset(&cs, 0, sizeof cs);
    if (syscall(__NR_cachestat, (unsigned)fd, &range, &cs, 0u) != 0) return -errno;
    return (int64_t)(cs.nr_dirty + cs.nr_writeback);
}

int64_t tu_file_unsynced_pages(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int64_t pages = fd_unsynced_pages(fd);
    close(fd);
    return pages;
}

#define SEGMENTS_OBSERVED_MAX 64

int64_t tu_segments_unsynced_pages(const char *dir) {
    static char paths[SEGMENTS_OBSERVED_MAX][512];
    int n = tu_segments(dir, paths, SEGMENTS_OBSERVED_MAX);
    if (n < 0) return n;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t pages = tu_file_unsynced_pages(paths[i]);
        if (pages < 0) return pages;
        total += pages;
    }
    return total;
}

bool tu_sync_observable(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/sync-probe", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    static const uint8_t page[4096] = {1};
    bool seen = pwrite(fd, page, sizeof page, 0) == (ssize_t)sizeof page &&
                fd_unsynced_pages(fd) > 0 && fdatasync(fd) == 0 && fd_unsynced_pages(fd) == 0;
    close(fd);
    unlink(path);
    return seen;
}
