/* inspect_stats.c -- `stats`: per segment and in total, batches, events,
 * streams, raw and stored bytes, compression, the largest streams, a
 * histogram of event types and the time span. Counts valid batches only;
 * damage is reported on stderr. */
#include "inspect.h"

#include <stdlib.h>
#include <string.h>

#define INSPECT_STATS_TOP_STREAMS 10u
#define INSPECT_STATS_TOP_TYPES 20u
#define INSPECT_STATS_BAR_WIDTH 40u

typedef struct {
    uint64_t batches, events, streams, compressed;
    uint64_t raw_bytes, stored_bytes; /* bodies, without headers */
    uint64_t data_bytes;              /* batch bytes on disk, headers and padding included */
    int64_t time_min, time_max;       /* event timestamps */
} inspect_counts_t;

typedef struct {
    inspect_counts_t *per_seg;
    inspect_counts_t total;
    inspect_names_t types;
    bool oom;
} inspect_stats_t;

static void inspect_counts_init(inspect_counts_t *c)
{
    memset(c, 0, sizeof *c);
    c->time_min = INT64_MAX;
    c->time_max = INT64_MIN;
}

/* Adds one valid batch to c; first_in_seg: how many of its streams are new
 * in the segment (counted by the caller). */
static void inspect_counts_add(inspect_counts_t *c, const walk_t *w, uint64_t new_streams)
{
    c->batches++;
    c->events += w->h.event_count;
    c->streams += new_streams;
    c->compressed += (w->h.flags & BATCH_FLAG_LZ4) != 0;
    c->raw_bytes += w->h.raw_bytes;
    c->stored_bytes += w->h.stored_bytes;
    c->data_bytes += batch_stored_size(&w->h);
    for (uint32_t k = 0; k < w->event_count; k++) {
        int64_t t = w->events[k].ev.timestamp_ns;
        c->time_min = t < c->time_min ? t : c->time_min;
        c->time_max = t > c->time_max ? t : c->time_max;
    }
}

static int inspect_stats_on_batch(void *ctx, inspect_scan_t *sc, uint32_t seg, const walk_t *w)
{
    inspect_stats_t *st = ctx;
    if (w->status != WALK_OK)
        return 0;
    uint64_t fresh = 0;
    for (uint32_t k = 0; k < w->event_count; k++) {
        inspect_name_t *n = sc->names[k];
        if (n->seen_segment != seg + 1) {
            n->seen_segment = seg + 1;
            fresh++;
        }
        const log_event_t *ev = &w->events[k].ev;
        inspect_name_t *t = inspect_names_get(&st->types, ev->type, ev->type_len,
                                              INSPECT_KIND_TYPE);
        if (!t) {
            st->oom = true;
            return 1;
        }
        t->count++;
        t->bytes += w->events[k].record_bytes;
    }
    inspect_counts_add(&st->per_seg[seg], w, fresh);
    inspect_counts_add(&st->total, w, 0);
    return 0;
}

static void inspect_stats_line(const char *name, const inspect_counts_t *c)
{
    char a[48] = "-", b[48] = "-";
    if (c->events) {
        inspect_time_format(c->time_min, a, sizeof a);
        inspect_time_format(c->time_max, b, sizeof b);
    }
    double ratio = c->stored_bytes ? (double)c->raw_bytes / (double)c->stored_bytes : 1.0;
    printf("%-24s %9llu %10llu %8llu %13llu %13llu %6.2f %8llu  %s .. %s\n", name,
           (unsigned long long)c->batches, (unsigned long long)c->events,
           (unsigned long long)c->streams, (unsigned long long)c->raw_bytes,
           (unsigned long long)c->stored_bytes, ratio, (unsigned long long)c->compressed, a, b);
}

static void inspect_stats_segments(const inspect_log_t *log, const inspect_stats_t *st,
                                   uint64_t streams)
{
    printf("%-24s %9s %10s %8s %13s %13s %6s %8s  %s\n", "segment", "batches", "events",
           "streams", "raw_bytes", "stored_bytes", "ratio", "lz4", "time span");
    for (uint32_t i = 0; i < log->count; i++)
        inspect_stats_line(log->segs[i].file, &st->per_seg[i]);
    inspect_counts_t total = st->total;
    total.streams = streams;
    inspect_stats_line("total", &total);
    uint64_t file_bytes = 0;
    for (uint32_t i = 0; i < log->count; i++)
        file_bytes += log->segs[i].file_bytes;
    printf("\nsegment files: %u, %llu bytes; batch data %llu bytes (%.1f%% of the files)\n",
           log->count, (unsigned long long)file_bytes, (unsigned long long)total.data_bytes,
           file_bytes ? 100.0 * (double)total.data_bytes / (double)file_bytes : 0.0);
    if (total.events) {
        char a[48], b[48];
        inspect_time_format(total.time_min, a, sizeof a);
        inspect_time_format(total.time_max, b, sizeof b);
        printf("time span: %s .. %s (%.3f s)\n", a, b,
               (double)(total.time_max - total.time_min) / 1e9);
    }
}

static void inspect_stats_streams(const inspect_scan_t *sc)
{
    inspect_name_t *top[INSPECT_STATS_TOP_STREAMS];
    size_t n = inspect_names_top(&sc->streams, INSPECT_KIND_STREAM, top, INSPECT_STATS_TOP_STREAMS);
    printf("\nlargest streams (of %llu; %llu categories):\n",
           (unsigned long long)sc->streams.count[INSPECT_KIND_STREAM],
           (unsigned long long)sc->streams.count[INSPECT_KIND_CATEGORY]);
    printf("  %10s %13s  %s\n", "events", "record_bytes", "stream");
    for (size_t i = 0; i < n; i++)
        printf("  %10llu %13llu  %.*s\n", (unsigned long long)top[i]->count,
               (unsigned long long)top[i]->bytes, (int)top[i]->len, top[i]->name);
}

static void inspect_stats_types(const inspect_stats_t *st, uint64_t events)
{
    inspect_name_t *top[INSPECT_STATS_TOP_TYPES];
    size_t n = inspect_names_top(&st->types, INSPECT_KIND_TYPE, top, INSPECT_STATS_TOP_TYPES);
    printf("\nevent types (%llu):\n", (unsigned long long)st->types.count[INSPECT_KIND_TYPE]);
    uint64_t shown = 0, max = n ? top[0]->count : 1;
    for (size_t i = 0; i < n; i++) {
        char bar[INSPECT_STATS_BAR_WIDTH + 1];
        size_t w = (size_t)((top[i]->count * INSPECT_STATS_BAR_WIDTH + max - 1) / max);
        memset(bar, '#', w);
        bar[w] = '\0';
        printf("  %10llu %5.1f%%  %-*s  %.*s\n", (unsigned long long)top[i]->count,
               events ? 100.0 * (double)top[i]->count / (double)events : 0.0,
               INSPECT_STATS_BAR_WIDTH, bar, (int)top[i]->len, top[i]->name);
        shown += top[i]->count;
    }
    if (shown < events)
        printf("  %10llu %5.1f%%  (other types)\n", (unsigned long long)(events - shown),
               100.0 * (double)(events - shown) / (double)events);
}

int inspect_stats(const char *path, const inspect_opts_t *o)
{
    (void)o;
    inspect_report_t r = {.out = stderr, .quiet_notes = true};
    inspect_log_t log;
    int rc = inspect_log_open(path, &log, &r);
    if (rc) {
        inspect_io_error(&r, path, rc);
        return INSPECT_EXIT_ERROR;
    }
    inspect_stats_t st = {.per_seg = calloc(log.count ? log.count : 1, sizeof *st.per_seg)};
    int code = INSPECT_EXIT_ERROR;
    if (!st.per_seg || inspect_names_init(&st.types) != 0)
        goto out_free;
    for (uint32_t i = 0; i < log.count; i++)
        inspect_counts_init(&st.per_seg[i]);
    inspect_counts_init(&st.total);
    inspect_scan_t sc = {.on_batch = inspect_stats_on_batch, .ctx = &st};
    if (inspect_scan_run(&sc, &log, &r) == 0 && !st.oom) {
        inspect_stats_segments(&log, &st, sc.streams.count[INSPECT_KIND_STREAM]);
        inspect_stats_streams(&sc);
        inspect_stats_types(&st, st.total.events);
        code = r.io_error ? INSPECT_EXIT_ERROR
               : inspect_problems(&r) ? INSPECT_EXIT_DAMAGED : INSPECT_EXIT_CLEAN;
        if (inspect_problems(&r))
            printf("\n%llu problems found (see stderr; `verify` explains them)\n",
                   (unsigned long long)inspect_problems(&r));
    }
    inspect_scan_free(&sc);
out_free:
    inspect_names_free(&st.types);
    free(st.per_seg);
    inspect_log_close(&log);
    return code;
}
