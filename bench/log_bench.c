/* log_bench.c -- evstore-bench-log: figures for the storage engine alone,
 * through its public API (log.h), with no network in the way.
 *
 *   append  keeps K appends in flight for S seconds: throughput, latency of
 *           each append (submit to callback), fdatasyncs and group commit
 *   reopen  builds a log of E events, then times log_open + log_close of it
 *   read    builds a log with M streams, times reading one stream of P events
 *           (warm cache) and reading $all from position 0
 *
 * It is not a test: it prints figures. Every loop is bounded by a count and
 * by a time; the bounds are the BENCH_*_MAX constants below.
 */
#define _GNU_SOURCE
#include "bench_util.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- limits ------------------------------------------------------------ */

#define BENCH_SECONDS_MAX 3600.0          /* --seconds */
#define BENCH_INFLIGHT_MAX 4096u          /* --inflight */
#define BENCH_STREAMS_MAX 100000000ull    /* --streams */
#define BENCH_EVENTS_MAX 1000000000ull    /* --events, and a log built by read */
#define BENCH_REPEAT_MAX 100000u          /* --repeat */
#define BENCH_POLL_MS 100                 /* longest single log_poll() wait */
#define BENCH_DRAIN_SECONDS_MAX 60.0      /* waiting for the last appends */
#define BENCH_BUILD_SECONDS_MAX 1800.0    /* building a log for reopen/read */
#define BENCH_READ_SECONDS_MAX 60.0       /* one series of timed reads */
#define BENCH_LOOP_MAX 1000000000ull      /* iterations of any event loop */
#define BENCH_BUILD_BATCH_EVENTS 100u     /* events per append when building */
#define BENCH_BUILD_INFLIGHT 32u          /* appends in flight when building */
#define BENCH_ALL_CHUNK 10000u            /* max_count of one $all read call */
#define BENCH_NAME_BYTES 40u              /* "order-<20 digits>" and NUL */
/* Event data are consecutive slices of a pool of random bytes. The pool is
 * larger than any batch can be (write_bytes_max), so no slice repeats within a
 * batch and LZ4 finds nothing to gain in the data itself. */
#define BENCH_PAYLOAD_POOL_BYTES (2u * LOG_WRITE_BYTES_MAX_DEFAULT)
#define BENCH_EVENT_TYPE "OrderPlaced"
#define BENCH_TARGET_STREAM "order-target"
#define BENCH_TARGET_ID UINT64_MAX

/* ---- options ----------------------------------------------------------- */

typedef enum { MODE_NONE, MODE_APPEND, MODE_REOPEN, MODE_READ } bench_mode_t;

typedef struct {
    bench_mode_t mode;
    const char *dir;
    uint64_t events_per_append; /* N */
    uint64_t inflight;          /* K */
    uint64_t event_bytes;       /* B */
    double seconds;             /* S */
    log_durability_t durability;
    uint32_t interval_ms;
    uint64_t streams;           /* M */
    uint64_t events;            /* E (reopen) */
    uint64_t events_per_stream; /* P (read) */
    uint64_t repeat;
    uint64_t segment_bytes;     /* 0: the engine's default */
    uint64_t compress_threshold_bytes;
    bool compress_threshold_set;
    bool unclean;
    bool cleanup;
} bench_opts_t;

/* ---- events ------------------------------------------------------------ */

/* Fills one event of event_bytes bytes of data, with a fresh id. */
static void bench_event_fill(log_event_in_t *ev, uint64_t event_bytes)
{
    bench_id_fresh(ev->id);
    ev->type = BENCH_EVENT_TYPE;
    ev->type_len = sizeof(BENCH_EVENT_TYPE) - 1;
    ev->metadata = NULL;
    ev->metadata_len = 0;
    ev->data = bench_payload(event_bytes);
    ev->data_len = event_bytes;
    ev->timestamp_ns = 0;
}

/* ---- slots: appends in flight -------------------------------------------
 * A slot owns the request arrays of one append until its callback runs, so
 * nothing it points to changes while the engine may still look at it. */

typedef struct bench_pool_s bench_pool_t;

typedef struct {
    bench_pool_t *pool;
    uint32_t index;
    uint64_t submit_ns;
    uint32_t stream_count;
    log_stream_append_t *streams;         /* streams_cap */
    char (*names)[BENCH_NAME_BYTES];      /* streams_cap */
    uint64_t *stream_ids;                 /* streams_cap */
    uint32_t *stream_fill;                /* streams_cap: events placed so far */
    log_event_in_t *events;               /* events_cap */
} bench_slot_t;

struct bench_pool_s {
    log_t *log;
    bench_slot_t *slots;
    uint32_t slot_count;
    uint32_t *free_stack;
    uint32_t free_count;
    uint32_t streams_cap, events_cap;
    hist_t *hist;          /* latency of each append; NULL: not kept */
    uint64_t appends_ok;
    uint64_t events_ok;
    uint64_t errors;
    int first_error;
};

static void pool_free(bench_pool_t *p)
{
    for (uint32_t i = 0; p->slots != NULL && i < p->slot_count; i++) {
        bench_slot_t *s = &p->slots[i];
        free(s->streams);
        free(s->names);
        free(s->stream_ids);
        free(s->stream_fill);
        free(s->events);
    }
    free(p->slots);
    free(p->free_stack);
    memset(p, 0, sizeof *p);
}

static int pool_init(bench_pool_t *p, log_t *log, uint32_t slot_count, uint32_t streams_cap,
                     uint32_t events_cap, hist_t *hist)
{
    memset(p, 0, sizeof *p);
    p->log = log;
    p->hist = hist;
    p->streams_cap = streams_cap;
    p->events_cap = events_cap;
    p->slots = calloc(slot_count, sizeof *p->slots);
    p->free_stack = calloc(slot_count, sizeof *p->free_stack);
    if (p->slots == NULL || p->free_stack == NULL)
        goto err_free;
    p->slot_count = slot_count;
    for (uint32_t i = 0; i < slot_count; i++) {
        bench_slot_t *s = &p->slots[i];
        s->pool = p;
        s->index = i;
        s->streams = calloc(streams_cap, sizeof *s->streams);
        s->names = calloc(streams_cap, sizeof *s->names);
        s->stream_ids = calloc(streams_cap, sizeof *s->stream_ids);
        s->stream_fill = calloc(streams_cap, sizeof *s->stream_fill);
        s->events = calloc(events_cap, sizeof *s->events);
        if (!s->streams || !s->names || !s->stream_ids || !s->stream_fill || !s->events)
            goto err_free;
        p->free_stack[p->free_count++] = i;
    }
    return 0;
err_free:
    pool_free(p);
    return -ENOMEM;
}

static uint32_t pool_inflight(const bench_pool_t *p) { return p->slot_count - p->free_count; }

static bench_slot_t *pool_take(bench_pool_t *p)
{
    if (p->free_count == 0)
        return NULL;
    return &p->slots[p->free_stack[--p->free_count]];
}

static void pool_give_back(bench_pool_t *p, bench_slot_t *s) { p->free_stack[p->free_count++] = s->index; }

static void pool_append_done(void *ctx, const log_append_result_t *res)
{
    bench_slot_t *s = ctx;
    bench_pool_t *p = s->pool;
    if (res->status == 0) {
        p->appends_ok++;
        p->events_ok += res->event_count;
        if (p->hist != NULL)
            hist_add(p->hist, util_mono_ns() - s->submit_ns);
    } else {
        p->errors++;
        if (p->first_error == 0)
            p->first_error = res->status;
    }
    pool_give_back(p, s);
}

/* Submits the append held in s (s->stream_count streams). On failure the
 * slot is back in the pool and the error (LOG_EBUSY among them) returned. */
static int pool_submit(bench_pool_t *p, bench_slot_t *s)
{
    log_append_t req = {.streams = s->streams, .stream_count = s->stream_count};
    log_append_result_t failure;
    s->submit_ns = util_mono_ns();
    int rc = log_append(p->log, &req, pool_append_done, s, &failure);
    if (rc < 0)
        pool_give_back(p, s);
    return rc;
}

/* Polls until no append is in flight, for at most seconds_max. */
static int pool_drain(bench_pool_t *p, double seconds_max)
{
    uint64_t deadline = util_mono_ns() + (uint64_t)(seconds_max * 1e9);
    for (uint64_t i = 0; i < BENCH_LOOP_MAX && pool_inflight(p) > 0; i++) {
        if (util_mono_ns() >= deadline)
            return -ETIMEDOUT;
        int rc = log_poll(p->log, BENCH_POLL_MS);
        if (rc < 0)
            return rc;
    }
    return pool_inflight(p) == 0 ? 0 : -ETIMEDOUT;
}

/* ---- directories --------------------------------------------------------- */

/* mkdir -p */
static int dir_create(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* 1 if the directory has no entries, 0 if it has, or a negative errno. */
static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -errno;
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

static bool name_ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n >= s && strcmp(name + n - s, suffix) == 0;
}

/* Removes the files of a log (LOCK, *.seg, *.idx, *.tmp, prepared.*) and
 * then the directory itself; anything else is left alone, and so is the
 * directory. */
static int dir_cleanup(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -errno;
    int rc = 0;
    struct dirent *e;
    char file[4096 + 256];
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strcmp(n, "LOCK") != 0 && !name_ends_with(n, ".seg") && !name_ends_with(n, ".idx") &&
            !name_ends_with(n, ".tmp") && strncmp(n, "prepared.", 9) != 0)
            continue;
        snprintf(file, sizeof file, "%s/%s", path, n);
        if (unlink(file) != 0 && rc == 0)
            rc = -errno;
    }
    closedir(d);
    if (rmdir(path) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* ---- opening ------------------------------------------------------------ */

static void bench_config(const bench_opts_t *o, log_config_t *cfg, log_durability_t durability,
                         uint32_t interval_ms)
{
    log_config_default(cfg);
    cfg->dir = o->dir;
    cfg->durability = durability;
    if (interval_ms != 0)
        cfg->interval_ms = interval_ms;
    if (o->segment_bytes != 0)
        cfg->segment_bytes = o->segment_bytes;
    if (o->compress_threshold_set)
        cfg->compress_threshold_bytes = (uint32_t)o->compress_threshold_bytes;
}

static void print_recovery(const char *indent, const log_recovery_t *rec)
{
    printf("%ssegments %" PRIu32 ", index files loaded %" PRIu32 ", bytes scanned %" PRIu64
           ", torn bytes cut %" PRIu64 "\n",
           indent, rec->segments, rec->index_files_loaded, rec->bytes_scanned, rec->torn_bytes_cut);
    printf("%sevents %" PRIu64 ", streams %" PRIu64 "%s%s\n", indent, rec->events, rec->streams,
           rec->problem[0] ? ", problem: " : "", rec->problem);
}

static int bench_open(const log_config_t *cfg, log_t **log, log_recovery_t *rec)
{
    memset(rec, 0, sizeof *rec);
    int rc = log_open(cfg, log, rec);
    if (rc < 0) {
        fprintf(stderr, "log_open(%s): %s\n", cfg->dir, log_strerror(rc));
        if (rec->problem[0])
            fprintf(stderr, "  %s\n", rec->problem);
    }
    return rc;
}

/* ---- building a log for reopen and read ----------------------------------- */

/* The shape of a log being built: which stream event i belongs to, and how
 * many events stream id has among events [0, i). The builder appends with
 * exact expected versions: with "any" the engine scans up to
 * idempotency_scan_max earlier ids of every stream in the batch, which is
 * what the append mode measures, not what building a log should cost. */
typedef struct {
    uint64_t (*stream_of)(const void *ctx, uint64_t i);
    uint64_t (*count_before)(const void *ctx, uint64_t id, uint64_t i);
    const void *ctx;
} log_shape_t;

static void stream_name(char *buf, uint64_t id)
{
    if (id == BENCH_TARGET_ID)
        snprintf(buf, BENCH_NAME_BYTES, "%s", BENCH_TARGET_STREAM);
    else
        snprintf(buf, BENCH_NAME_BYTES, "order-%" PRIu64, id);
}

/* Fills slot s with events [first, first + n) of the log, grouped by stream
 * (an append names each stream once). */
static void build_fill(bench_slot_t *s, uint64_t first, uint32_t n, const log_shape_t *shape,
                       uint64_t event_bytes)
{
    uint32_t count[BENCH_BUILD_BATCH_EVENTS];
    uint32_t which[BENCH_BUILD_BATCH_EVENTS];
    s->stream_count = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t id = shape->stream_of(shape->ctx, first + i);
        uint32_t k = 0;
        while (k < s->stream_count && s->stream_ids[k] != id)
            k++;
        if (k == s->stream_count) {
            s->stream_ids[k] = id;
            count[k] = 0;
            s->stream_count++;
        }
        count[k]++;
        which[i] = k;
    }
    uint32_t start = 0;
    for (uint32_t k = 0; k < s->stream_count; k++) {
        log_stream_append_t *sa = &s->streams[k];
        stream_name(s->names[k], s->stream_ids[k]);
        sa->stream = s->names[k];
        sa->stream_len = strlen(s->names[k]);
        uint64_t before = shape->count_before(shape->ctx, s->stream_ids[k], first);
        sa->expected_version = before == 0 ? LOG_EXPECT_NO_STREAM : (int64_t)before - 1;
        sa->events = &s->events[start];
        sa->event_count = count[k];
        s->stream_fill[k] = start;
        start += count[k];
    }
    for (uint32_t i = 0; i < n; i++)
        bench_event_fill(&s->events[s->stream_fill[which[i]]++], event_bytes);
}

/* Appends `total` events (durability none, BENCH_BUILD_BATCH_EVENTS per
 * append), then closes the log unless close_log is false (a crash stand-in:
 * the caller then exits without closing). */
static int build_log(const bench_opts_t *o, uint64_t total, const log_shape_t *shape,
                     bool close_log)
{
    log_config_t cfg;
    log_recovery_t rec;
    log_t *log = NULL;
    bench_pool_t pool;
    bench_config(o, &cfg, LOG_DURABILITY_NONE, 0);
    int rc = bench_open(&cfg, &log, &rec);
    if (rc < 0)
        return rc;
    rc = pool_init(&pool, log, BENCH_BUILD_INFLIGHT, BENCH_BUILD_BATCH_EVENTS,
                   BENCH_BUILD_BATCH_EVENTS, NULL);
    if (rc < 0)
        goto out_close;
    uint64_t t0 = util_mono_ns();
    uint64_t deadline = t0 + (uint64_t)(BENCH_BUILD_SECONDS_MAX * 1e9);
    uint64_t next = 0, busy = 0;
    for (uint64_t iter = 0; iter < BENCH_LOOP_MAX && next < total && pool.errors == 0; iter++) {
        if (util_mono_ns() >= deadline) {
            fprintf(stderr, "build: over %.0f s, stopped at %" PRIu64 " events\n",
                    BENCH_BUILD_SECONDS_MAX, next);
            rc = -ETIMEDOUT;
            goto out_pool;
        }
        bench_slot_t *s;
        while (next < total && (s = pool_take(&pool)) != NULL) {
            uint64_t left = total - next;
            uint32_t n = left < BENCH_BUILD_BATCH_EVENTS ? (uint32_t)left : BENCH_BUILD_BATCH_EVENTS;
            build_fill(s, next, n, shape, o->event_bytes);
            rc = pool_submit(&pool, s);
            if (rc == LOG_EBUSY) {
                busy++;
                break;
            }
            if (rc < 0) {
                fprintf(stderr, "build: log_append: %s\n", log_strerror(rc));
                goto out_pool;
            }
            next += n;
        }
        rc = log_poll(log, BENCH_POLL_MS);
        if (rc < 0) {
            fprintf(stderr, "build: log_poll: %s\n", log_strerror(rc));
            goto out_pool;
        }
    }
    rc = pool_drain(&pool, BENCH_DRAIN_SECONDS_MAX);
    if (rc == 0 && pool.errors != 0)
        rc = pool.first_error;
    if (rc < 0) {
        fprintf(stderr, "build: %s\n", log_strerror(rc));
        goto out_pool;
    }
    double secs = (double)(util_mono_ns() - t0) / 1e9;
    log_stats_t st;
    log_stats(log, &st);
    printf("built: %" PRIu64 " events, %" PRIu64 " streams, %" PRIu64 " segments, %.1f MB of log"
           " in %.2f s (%.0f events/s, %" PRIu64 " busy retries)\n",
           pool.events_ok, st.streams, st.segments, (double)st.bytes_written / 1e6, secs,
           (double)pool.events_ok / secs, busy);
out_pool:
    /* log_close() runs the callbacks of appends still in flight, which use
     * the slots: close first, free the slots after. */
    if (close_log) {
        int crc = log_close(log);
        if (rc == 0 && crc < 0) {
            fprintf(stderr, "build: log_close: %s\n", log_strerror(crc));
            rc = crc;
        }
    }
    pool_free(&pool);
    return rc;
out_close:
    if (close_log)
        log_close(log);
    return rc;
}

/* Builds the log in a child process that exits without log_close(), as a
 * crash would leave it (written, not synced: the page cache keeps it). */
static int build_log_unclean(const bench_opts_t *o, uint64_t total, const log_shape_t *shape)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int rc = build_log(o, total, shape, false);
        fflush(stdout);
        _exit(rc < 0 ? 1 : 0);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* ---- append -------------------------------------------------------------- */

static void append_fill(bench_slot_t *s, const bench_opts_t *o, uint64_t seq)
{
    stream_name(s->names[0], seq % o->streams);
    s->streams[0].stream = s->names[0];
    s->streams[0].stream_len = strlen(s->names[0]);
    s->streams[0].expected_version = LOG_EXPECT_ANY;
    s->streams[0].events = s->events;
    s->streams[0].event_count = (uint32_t)o->events_per_append;
    s->stream_count = 1;
    for (uint64_t i = 0; i < o->events_per_append; i++)
        bench_event_fill(&s->events[i], o->event_bytes);
}

static void print_append_figures(const bench_opts_t *o, const bench_pool_t *p, const hist_t *h,
                                 double secs, const log_stats_t *a, const log_stats_t *b,
                                 uint64_t busy)
{
    uint64_t syncs = b->fdatasyncs - a->fdatasyncs;
    uint64_t writes = b->writes - a->writes;
    uint64_t bytes = b->bytes_written - a->bytes_written;
    uint64_t sync_ns = b->sync_ns_total - a->sync_ns_total;
    double payload_mb = (double)p->events_ok * (double)o->event_bytes / 1e6;
    printf("append: %" PRIu64 " events/append, %" PRIu64 " in flight, %" PRIu64
           " bytes/event, %" PRIu64 " streams, durability %s, %.2f s\n",
           o->events_per_append, o->inflight, o->event_bytes, o->streams,
           log_durability_name(o->durability), secs);
    printf("  events/s       %12.0f   (%" PRIu64 " events)\n", (double)p->events_ok / secs,
           p->events_ok);
    printf("  payload MB/s   %12.2f   (%.1f MB)\n", payload_mb / secs, payload_mb);
    printf("  appends/s      %12.0f   (%" PRIu64 " appends)\n", (double)p->appends_ok / secs,
           p->appends_ok);
    printf("  latency us     p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
           (double)hist_quantile(h, 0.50) / 1e3, (double)hist_quantile(h, 0.90) / 1e3,
           (double)hist_quantile(h, 0.99) / 1e3, (double)hist_quantile(h, 0.999) / 1e3,
           (double)h->max / 1e3);
    printf("  fdatasyncs/s   %12.1f   (%" PRIu64 ")\n", (double)syncs / secs, syncs);
    if (syncs > 0)
        printf("  per fdatasync  %12.1f events, %.1f appends\n",
               (double)(b->events_appended - a->events_appended) / (double)syncs,
               (double)(b->appends - a->appends) / (double)syncs);
    printf("  writes/s       %12.1f   (%" PRIu64 ", %.1f KB each)\n", (double)writes / secs, writes,
           writes ? (double)bytes / (double)writes / 1e3 : 0.0);
    if (writes > 0)
        printf("  write+sync us  %12.1f   mean per write, submit to completion (sync_ns_total)\n",
               (double)sync_ns / (double)writes / 1e3);
    printf("  log MB/s       %12.2f   (with headers)\n", (double)bytes / 1e6 / secs);
    printf("  compressed batches %" PRIu64 ", segments rolled %" PRIu64
           " (prepared missed %" PRIu64 "), busy rejections %" PRIu64 ", errors %" PRIu64 "\n",
           b->compressed_batches - a->compressed_batches, b->segments - a->segments,
           b->segments_prepared_missed - a->segments_prepared_missed, busy, p->errors);
}

static int run_append(const bench_opts_t *o)
{
    log_config_t cfg;
    log_recovery_t rec;
    log_t *log = NULL;
    bench_pool_t pool;
    hist_t *hist = calloc(1, sizeof *hist);
    if (hist == NULL)
        return -ENOMEM;
    bench_config(o, &cfg, o->durability, o->interval_ms);
    int rc = bench_open(&cfg, &log, &rec);
    if (rc < 0)
        goto out_hist;
    if (rec.events > 0)
        printf("note: %s already held %" PRIu64 " events; appending after them\n", o->dir,
               rec.events);
    rc = pool_init(&pool, log, (uint32_t)o->inflight, 1, (uint32_t)o->events_per_append, hist);
    if (rc < 0)
        goto out_close;

    log_stats_t before, after;
    log_stats(log, &before);
    uint64_t t0 = util_mono_ns();
    uint64_t deadline = t0 + (uint64_t)(o->seconds * 1e9);
    uint64_t seq = 0, busy = 0;
    for (uint64_t iter = 0; iter < BENCH_LOOP_MAX && pool.errors == 0; iter++) {
        if (util_mono_ns() >= deadline)
            break;
        bench_slot_t *s;
        while ((s = pool_take(&pool)) != NULL) {
            append_fill(s, o, seq);
            rc = pool_submit(&pool, s);
            if (rc == LOG_EBUSY) {
                busy++;
                break;
            }
            if (rc < 0) {
                fprintf(stderr, "append: log_append: %s\n", log_strerror(rc));
                goto out_pool;
            }
            seq++;
        }
        rc = log_poll(log, BENCH_POLL_MS);
        if (rc < 0) {
            fprintf(stderr, "append: log_poll: %s\n", log_strerror(rc));
            goto out_pool;
        }
    }
    rc = pool_drain(&pool, BENCH_DRAIN_SECONDS_MAX);
    if (rc < 0) {
        fprintf(stderr, "append: waiting for the last appends: %s\n", log_strerror(rc));
        goto out_pool;
    }
    double secs = (double)(util_mono_ns() - t0) / 1e9;
    log_stats(log, &after);
    if (pool.errors != 0)
        fprintf(stderr, "append: %" PRIu64 " appends failed, first: %s\n", pool.errors,
                log_strerror(pool.first_error));
    print_append_figures(o, &pool, hist, secs, &before, &after, busy);
    rc = pool.errors != 0 ? pool.first_error : 0;
out_pool: {
    /* Close before freeing the slots: log_close() runs pending callbacks. */
    uint64_t c0 = util_mono_ns();
    int crc = log_close(log);
    if (crc < 0)
        fprintf(stderr, "append: log_close: %s\n", log_strerror(crc));
    else if (rc == 0)
        printf("  log_close      %12.1f ms\n", (double)(util_mono_ns() - c0) / 1e6);
    if (rc == 0)
        rc = crc;
    pool_free(&pool);
    goto out_hist;
}
out_close:
    log_close(log);
out_hist:
    free(hist);
    return rc;
}

/* ---- reopen -------------------------------------------------------------- */

static uint64_t reopen_stream_of(const void *ctx, uint64_t i)
{
    const bench_opts_t *o = ctx;
    return i % o->streams;
}

/* Events j < i with j % M == id. */
static uint64_t reopen_count_before(const void *ctx, uint64_t id, uint64_t i)
{
    const bench_opts_t *o = ctx;
    return i > id ? (i - id - 1) / o->streams + 1 : 0;
}

static int run_reopen(const bench_opts_t *o)
{
    log_shape_t shape = {reopen_stream_of, reopen_count_before, o};
    int rc = o->unclean ? build_log_unclean(o, o->events, &shape)
                        : build_log(o, o->events, &shape, true);
    if (rc < 0)
        return rc;
    uint64_t *open_ns = calloc(o->repeat, sizeof *open_ns);
    uint64_t *total_ns = calloc(o->repeat, sizeof *total_ns);
    if (open_ns == NULL || total_ns == NULL) {
        rc = -ENOMEM;
        goto out_free;
    }
    log_config_t cfg;
    bench_config(o, &cfg, LOG_DURABILITY_ALWAYS, 0);
    printf("reopen: %" PRIu64 " events, %" PRIu64 " streams, %s build, %" PRIu64 " runs\n",
           o->events, o->streams, o->unclean ? "unclean (no log_close)" : "clean", o->repeat);
    uint64_t deadline = util_mono_ns() + (uint64_t)(BENCH_READ_SECONDS_MAX * 1e9);
    uint64_t runs = 0;
    for (; runs < o->repeat && util_mono_ns() < deadline; runs++) {
        log_recovery_t rec;
        log_t *log = NULL;
        uint64_t t0 = util_mono_ns();
        rc = bench_open(&cfg, &log, &rec);
        if (rc < 0)
            goto out_free;
        uint64_t t1 = util_mono_ns();
        rc = log_close(log);
        uint64_t t2 = util_mono_ns();
        if (rc < 0) {
            fprintf(stderr, "reopen: log_close: %s\n", log_strerror(rc));
            goto out_free;
        }
        open_ns[runs] = t1 - t0;
        total_ns[runs] = t2 - t0;
        printf("  run %2" PRIu64 ": open %8.2f ms, open+close %8.2f ms, bytes scanned %" PRIu64
               "\n",
               runs + 1, (double)open_ns[runs] / 1e6, (double)total_ns[runs] / 1e6,
               rec.bytes_scanned);
        if (runs == 0 || runs + 1 == o->repeat) {
            printf("  recovery of run %" PRIu64 ":\n", runs + 1);
            print_recovery("    ", &rec);
        }
    }
    printf("  median: open %.2f ms, open+close %.2f ms (%" PRIu64 " runs)\n",
           (double)sample_quantile(open_ns, runs, 0.5) / 1e6,
           (double)sample_quantile(total_ns, runs, 0.5) / 1e6, runs);
    rc = 0;
out_free:
    free(open_ns);
    free(total_ns);
    return rc;
}

/* ---- read ---------------------------------------------------------------- */

typedef struct {
    uint64_t others; /* M - 1 streams of one event each */
    uint64_t target; /* P events of BENCH_TARGET_STREAM */
    uint64_t stride; /* every stride-th event is the target's */
} read_layout_t;

static uint64_t read_stream_of(const void *ctx, uint64_t i)
{
    const read_layout_t *l = ctx;
    uint64_t before = i / l->stride; /* target events in [0, i) */
    if (before > l->target)
        before = l->target;
    if (i % l->stride == l->stride - 1 && i / l->stride < l->target)
        return BENCH_TARGET_ID;
    return i - before;
}

/* The target has min(P, i / stride) events before i; every other stream has
 * one event, which is at or after i whenever it is in the batch at i. */
static uint64_t read_count_before(const void *ctx, uint64_t id, uint64_t i)
{
    const read_layout_t *l = ctx;
    if (id != BENCH_TARGET_ID)
        return 0;
    uint64_t before = i / l->stride;
    return before < l->target ? before : l->target;
}

typedef struct {
    uint64_t count;
    uint64_t bytes;
    uint64_t next_position;
    bool out_of_order;
} read_tally_t;

static int read_visit(void *ctx, const log_event_t *ev)
{
    read_tally_t *t = ctx;
    if (ev->position < t->next_position)
        t->out_of_order = true;
    t->next_position = ev->position + 1;
    t->count++;
    t->bytes += ev->data_len;
    return 0;
}

/* Reads the target stream o->repeat times; prints median and p99. */
static int read_stream_timed(log_t *log, const bench_opts_t *o)
{
    uint64_t *ns = calloc(o->repeat, sizeof *ns);
    if (ns == NULL)
        return -ENOMEM;
    log_read_t req = {.stream = BENCH_TARGET_STREAM,
                      .stream_len = strlen(BENCH_TARGET_STREAM),
                      .from = 0,
                      .max_count = (uint32_t)o->events_per_stream};
    int rc = 0;
    uint64_t warmup = o->repeat < 10 ? o->repeat : 10;
    uint64_t deadline = util_mono_ns() + (uint64_t)(BENCH_READ_SECONDS_MAX * 1e9);
    uint64_t runs = 0;
    for (uint64_t i = 0; i < warmup + o->repeat && util_mono_ns() < deadline; i++) {
        read_tally_t tally = {0};
        log_read_result_t res;
        uint64_t t0 = util_mono_ns();
        rc = log_read(log, &req, read_visit, &tally, &res);
        uint64_t t1 = util_mono_ns();
        if (rc < 0) {
            fprintf(stderr, "read %s: %s\n", BENCH_TARGET_STREAM, log_strerror(rc));
            goto out;
        }
        if (tally.count != o->events_per_stream || tally.out_of_order) {
            fprintf(stderr, "read %s: %" PRIu64 " events%s, expected %" PRIu64 "\n",
                    BENCH_TARGET_STREAM, tally.count, tally.out_of_order ? " out of order" : "",
                    o->events_per_stream);
            rc = -EIO;
            goto out;
        }
        if (i >= warmup)
            ns[runs++] = t1 - t0;
    }
    double med = (double)sample_quantile(ns, runs, 0.5) / 1e3;
    double p99 = (double)sample_quantile(ns, runs, 0.99) / 1e3;
    printf("  stream read    %" PRIu64 " events of %s: median %.1f us, p99 %.1f us, max %.1f us"
           " (%" PRIu64 " reads, %.2f us/event at the median)\n",
           o->events_per_stream, BENCH_TARGET_STREAM, med, p99, (double)ns[runs ? runs - 1 : 0] / 1e3,
           runs, med / (double)o->events_per_stream);
out:
    free(ns);
    return rc;
}

/* Reads $all from position 0 to its end in chunks; prints events/s. */
static int read_all_timed(log_t *log, uint64_t expect)
{
    read_tally_t tally = {0};
    log_read_t req = {.stream = "$all", .stream_len = 4, .from = 0, .max_count = BENCH_ALL_CHUNK};
    uint64_t t0 = util_mono_ns();
    uint64_t deadline = t0 + (uint64_t)(BENCH_READ_SECONDS_MAX * 1e9);
    uint64_t calls = 0;
    bool end = false;
    for (; calls < BENCH_LOOP_MAX && !end && util_mono_ns() < deadline; calls++) {
        log_read_result_t res;
        uint64_t before = tally.count;
        int rc = log_read(log, &req, read_visit, &tally, &res);
        if (rc < 0) {
            fprintf(stderr, "read $all at %" PRIu64 ": %s\n", req.from, log_strerror(rc));
            return rc;
        }
        end = res.end;
        if (!end && tally.count == before && res.next == req.from) {
            fprintf(stderr, "read $all: no progress at %" PRIu64 "\n", req.from);
            return -EIO;
        }
        req.from = res.next;
    }
    double secs = (double)(util_mono_ns() - t0) / 1e9;
    printf("  $all read      %" PRIu64 " events in %.3f s: %.0f events/s, %.1f MB/s of payload"
           " (%" PRIu64 " calls)%s\n",
           tally.count, secs, (double)tally.count / secs, (double)tally.bytes / 1e6 / secs, calls,
           tally.count == expect && !tally.out_of_order ? "" : "  MISMATCH");
    return tally.count == expect && !tally.out_of_order ? 0 : -EIO;
}

static int run_read(const bench_opts_t *o)
{
    read_layout_t layout = {.others = o->streams - 1, .target = o->events_per_stream};
    uint64_t total = layout.others + layout.target;
    layout.stride = total / layout.target;
    log_shape_t shape = {read_stream_of, read_count_before, &layout};
    int rc = build_log(o, total, &shape, true);
    if (rc < 0)
        return rc;
    log_config_t cfg;
    log_recovery_t rec;
    log_t *log = NULL;
    bench_config(o, &cfg, LOG_DURABILITY_ALWAYS, 0);
    uint64_t t0 = util_mono_ns();
    rc = bench_open(&cfg, &log, &rec);
    if (rc < 0)
        return rc;
    printf("read: %" PRIu64 " streams, %s has %" PRIu64 " events (one in %" PRIu64
           "), %" PRIu64 " events in all; reopened in %.1f ms\n",
           o->streams, BENCH_TARGET_STREAM, o->events_per_stream, layout.stride, total,
           (double)(util_mono_ns() - t0) / 1e6);
    print_recovery("  ", &rec);
    rc = read_stream_timed(log, o);
    for (int pass = 0; rc == 0 && pass < 2; pass++)
        rc = read_all_timed(log, total);
    int crc = log_close(log);
    return rc < 0 ? rc : crc;
}

/* ---- command line -------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: evstore-bench-log MODE --dir DIR [options]\n"
        "\n"
        "modes:\n"
        "  append  --dir D [--events-per-append N] [--inflight K] [--event-bytes B]\n"
        "          [--seconds S] [--durability always|interval|interval:MS|none] [--streams M]\n"
        "      keeps K appends of N events of B bytes in flight for S seconds, to streams\n"
        "      order-<k> round-robin over M; prints events/s, MB/s, appends/s, latency\n"
        "      percentiles (submit to callback) and fdatasyncs.\n"
        "      defaults: N 10, K 64, B 256, S 5, M 1000, durability always\n"
        "  reopen  --dir D [--events E] [--streams M] [--repeat R] [--unclean]\n"
        "      builds a log of E events over M streams, then times log_open+log_close\n"
        "      R times. --unclean builds it in a child that exits without log_close.\n"
        "      defaults: E 1000000, M 1000, R 5\n"
        "  read    --dir D [--streams M] [--events-per-stream P] [--repeat R]\n"
        "      builds a log of M streams, one of them (%s) with P events spread\n"
        "      through the log; times reading it R times, and reading $all.\n"
        "      defaults: M 1000000, P 100, R 1000\n"
        "\n"
        "common options:\n"
        "  --dir D            data directory, created if missing (reopen and read need\n"
        "                     it empty or missing)\n"
        "  --event-bytes B    data bytes per event (default: 256 append, 100 others)\n"
        "  --segment-bytes X  segment size (default: the engine's, 256Mi)\n"
        "  --compress-threshold-bytes X\n"
        "                     LZ4-compress batch bodies of at least X bytes\n"
        "                     (default: the engine's, 4096; 0: never)\n"
        "  --cleanup          remove the log's files and DIR at the end\n"
        "  --help\n"
        "numbers take k/m/g (10^3..) or Ki/Mi/Gi (2^10..) suffixes.\n",
        BENCH_TARGET_STREAM);
}

/* Parses a count with an optional k/m/g or Ki/Mi/Gi suffix into [min, max]. */
static int parse_count(const char *name, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    uint64_t mult = 1;
    if (end == text || errno != 0 || text[0] == '-')
        goto bad;
    if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
        mult = 1000ull;
    else if (strcmp(end, "m") == 0 || strcmp(end, "M") == 0)
        mult = 1000000ull;
    else if (strcmp(end, "g") == 0 || strcmp(end, "G") == 0)
        mult = 1000000000ull;
    else if (strcmp(end, "Ki") == 0)
        mult = 1ull << 10;
    else if (strcmp(end, "Mi") == 0)
        mult = 1ull << 20;
    else if (strcmp(end, "Gi") == 0)
        mult = 1ull << 30;
    else if (*end != '\0')
        goto bad;
    if (v > UINT64_MAX / mult || v * mult < min || v * mult > max)
        goto bad;
    *out = v * mult;
    return 0;
bad:
    fprintf(stderr, "--%s: expected a number in [%" PRIu64 ", %" PRIu64 "], got \"%s\"\n", name,
            min, max, text);
    return -EINVAL;
}

enum {
    OPT_DIR = 256, OPT_EPA, OPT_INFLIGHT, OPT_EVENT_BYTES, OPT_SECONDS, OPT_DURABILITY,
    OPT_STREAMS, OPT_EVENTS, OPT_EPS, OPT_REPEAT, OPT_SEGMENT_BYTES, OPT_COMPRESS, OPT_UNCLEAN,
    OPT_CLEANUP,
};

static const struct option bench_long_options[] = {
    {"dir", required_argument, NULL, OPT_DIR},
    {"events-per-append", required_argument, NULL, OPT_EPA},
    {"inflight", required_argument, NULL, OPT_INFLIGHT},
    {"event-bytes", required_argument, NULL, OPT_EVENT_BYTES},
    {"seconds", required_argument, NULL, OPT_SECONDS},
    {"durability", required_argument, NULL, OPT_DURABILITY},
    {"streams", required_argument, NULL, OPT_STREAMS},
    {"events", required_argument, NULL, OPT_EVENTS},
    {"events-per-stream", required_argument, NULL, OPT_EPS},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"segment-bytes", required_argument, NULL, OPT_SEGMENT_BYTES},
    {"compress-threshold-bytes", required_argument, NULL, OPT_COMPRESS},
    {"unclean", no_argument, NULL, OPT_UNCLEAN},
    {"cleanup", no_argument, NULL, OPT_CLEANUP},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Parses one option into o; returns 0, 1 for --help, or -EINVAL. */
static int parse_option(int c, const char *arg, bench_opts_t *o, bool *streams_set, bool *bytes_set,
                        bool *repeat_set)
{
    char *end;
    switch (c) {
    case OPT_DIR: o->dir = arg; return 0;
    case OPT_EPA:
        return parse_count("events-per-append", arg, 1, LOG_BATCH_EVENTS_MAX_DEFAULT,
                           &o->events_per_append);
    case OPT_INFLIGHT: return parse_count("inflight", arg, 1, BENCH_INFLIGHT_MAX, &o->inflight);
    case OPT_EVENT_BYTES:
        *bytes_set = true;
        return parse_count("event-bytes", arg, 0, LOG_EVENT_BYTES_MAX_DEFAULT, &o->event_bytes);
    case OPT_SECONDS:
        o->seconds = strtod(arg, &end);
        if (end == arg || *end != '\0' || !(o->seconds >= 0.1 && o->seconds <= BENCH_SECONDS_MAX)) {
            fprintf(stderr, "--seconds: expected 0.1 to %.0f, got \"%s\"\n", BENCH_SECONDS_MAX, arg);
            return -EINVAL;
        }
        return 0;
    case OPT_DURABILITY:
        if (log_durability_parse(arg, &o->durability, &o->interval_ms) != 0) {
            fprintf(stderr, "--durability: expected always, interval[:MS] or none, got \"%s\"\n", arg);
            return -EINVAL;
        }
        return 0;
    case OPT_STREAMS:
        *streams_set = true;
        return parse_count("streams", arg, 1, BENCH_STREAMS_MAX, &o->streams);
    case OPT_EVENTS: return parse_count("events", arg, 1, BENCH_EVENTS_MAX, &o->events);
    case OPT_EPS:
        return parse_count("events-per-stream", arg, 1, BENCH_EVENTS_MAX, &o->events_per_stream);
    case OPT_REPEAT:
        *repeat_set = true;
        return parse_count("repeat", arg, 1, BENCH_REPEAT_MAX, &o->repeat);
    case OPT_SEGMENT_BYTES:
        return parse_count("segment-bytes", arg, LOG_SEGMENT_BYTES_MIN, LOG_SEGMENT_BYTES_MAX,
                           &o->segment_bytes);
    case OPT_COMPRESS:
        o->compress_threshold_set = true;
        return parse_count("compress-threshold-bytes", arg, 0, UINT32_MAX,
                           &o->compress_threshold_bytes);
    case OPT_UNCLEAN: o->unclean = true; return 0;
    case OPT_CLEANUP: o->cleanup = true; return 0;
    case 'h': return 1;
    default: return -EINVAL;
    }
}

/* Fills o from argv; returns 0, 1 when --help was asked, or -EINVAL. */
static int parse_args(int argc, char **argv, bench_opts_t *o)
{
    bool streams_set = false, bytes_set = false, repeat_set = false;
    *o = (bench_opts_t){.events_per_append = 10, .inflight = 64, .seconds = 5.0,
                        .durability = LOG_DURABILITY_ALWAYS, .events = 1000000,
                        .events_per_stream = 100};
    int c;
    while ((c = getopt_long(argc, argv, "h", bench_long_options, NULL)) != -1) {
        int rc = parse_option(c, optarg, o, &streams_set, &bytes_set, &repeat_set);
        if (rc != 0)
            return rc;
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "expected one mode: append, reopen or read\n");
        return -EINVAL;
    }
    const char *m = argv[optind];
    o->mode = strcmp(m, "append") == 0   ? MODE_APPEND
              : strcmp(m, "reopen") == 0 ? MODE_REOPEN
              : strcmp(m, "read") == 0   ? MODE_READ
                                         : MODE_NONE;
    if (o->mode == MODE_NONE) {
        fprintf(stderr, "unknown mode \"%s\"\n", m);
        return -EINVAL;
    }
    if (o->dir == NULL) {
        fprintf(stderr, "--dir is required\n");
        return -EINVAL;
    }
    if (!streams_set)
        o->streams = o->mode == MODE_APPEND ? 1000 : o->mode == MODE_REOPEN ? 1000 : 1000000;
    if (!bytes_set)
        o->event_bytes = o->mode == MODE_APPEND ? 256 : 100;
    if (!repeat_set)
        o->repeat = o->mode == MODE_READ ? 1000 : 5;
    if (o->mode == MODE_READ && o->streams - 1 + o->events_per_stream > BENCH_EVENTS_MAX) {
        fprintf(stderr, "read: streams + events-per-stream is over %llu\n", BENCH_EVENTS_MAX);
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_opts_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc > 0) {
        usage(stdout);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "run evstore-bench-log --help for usage\n");
        return 2;
    }
    rc = dir_create(o.dir);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", o.dir, strerror(-rc));
        return 1;
    }
    if (o.mode != MODE_APPEND && dir_is_empty(o.dir) != 1) {
        fprintf(stderr, "%s: not empty; reopen and read build their own log in a fresh directory\n",
                o.dir);
        return 1;
    }
    rc = bench_payload_init(BENCH_PAYLOAD_POOL_BYTES, o.event_bytes);
    if (rc < 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    switch (o.mode) {
    case MODE_APPEND: rc = run_append(&o); break;
    case MODE_REOPEN: rc = run_reopen(&o); break;
    case MODE_READ: rc = run_read(&o); break;
    case MODE_NONE: rc = -EINVAL; break;
    }
    if (o.cleanup) {
        int crc = dir_cleanup(o.dir);
        if (crc < 0)
            fprintf(stderr, "cleanup of %s: %s (left in place)\n", o.dir, strerror(-crc));
    }
    bench_payload_free();
    if (rc < 0) {
        fprintf(stderr, "failed: %s\n", log_strerror(rc));
        return 1;
    }
    return 0;
}
