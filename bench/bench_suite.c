/* bench_suite.c -- the comparison matrix and its reports (see bench_suite.h).
 *
 * The matrix (every point on every system, each server started once and
 * stopped at the end of its scenarios):
 *   append-1    1 event of 256 B per append, 1 in flight, connections swept
 *               (the chart: throughput and p99 against connections)
 *   append-100  100 events of 1 KiB per append, 4 in flight per connection
 *   paced       1 event per append at a fixed offered rate (latency at light load)
 *   read-stream a 1000-event stream read whole, again and again
 *   read-all    the global order from its start ($all; SELECT ... ORDER BY
 *               position; a JetStream pull consumer over order.>)
 * evstored runs with --durability always (every acknowledged append synced)
 * and, on the biggest points only, none (as a reference for the cost of
 * syncing). New scenarios (subscriptions, groups, the OMS) go in suite_points
 * below and get a table in report_markdown. */
#define _GNU_SOURCE
#include "bench_suite.h"
#include "bench_limits.h"
#include "bench_proc.h"
#include "bench_sys.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define SUITE_RESULTS_MAX 256u
#define SUITE_SYSTEMS_MAX 8u
#define SUITE_REPEAT_MAX 9
#define SUITE_READ_STREAM_EVENTS 1000u
#define SUITE_GNUPLOT_SECONDS_MAX 30.0

typedef struct {
    const char *series;  /* append-1 | append-100 | paced | read-stream | read-all */
    bench_load_t load;
    bool evstored_none;  /* also run on evstored --durability none */
} suite_point_t;

typedef struct {
    char label[64];
    char durability[32];
    char note[512];
    bool syncs_each_ack;
    bool skipped;
    char skip_reason[160];
} suite_system_t;

typedef struct {
    bench_result_t r;
    char series[16];
} suite_result_t;

static suite_result_t results[SUITE_RESULTS_MAX];
static size_t results_n;
static suite_system_t systems[SUITE_SYSTEMS_MAX];
static size_t systems_n;

/* ---- the matrix ---- */

static size_t suite_points(const suite_opts_t *o, suite_point_t *p, size_t cap)
{
    static const uint32_t conns_quick[] = {1, 16, 64}, conns_full[] = {1, 4, 16, 64, 256};
    static const uint32_t batch_conns_quick[] = {4}, batch_conns_full[] = {1, 4, 16};
    static const double rates_quick[] = {1000}, rates_full[] = {1000, 10000};
    const uint32_t *conns = o->full ? conns_full : conns_quick;
    size_t nc = o->full ? 5 : 3;
    const uint32_t *bconns = o->full ? batch_conns_full : batch_conns_quick;
    size_t nb = o->full ? 3 : 1;
    const double *rates = o->full ? rates_full : rates_quick;
    size_t nr = o->full ? 2 : 1;
    double read_s = o->full ? 5 : 1.5;
    size_t n = 0;
    for (size_t i = 0; i < nc && n < cap; i++)
        p[n++] = (suite_point_t){"append-1", {conns[i], 1, 1, 256, o->seconds, 0},
                                 o->full || conns[i] == 64};
    for (size_t i = 0; i < nb && n < cap; i++)
        p[n++] = (suite_point_t){"append-100", {bconns[i], 4, 100, 1024, o->seconds, 0},
                                 o->full || i == nb - 1};
    for (size_t i = 0; i < nr && n < cap; i++)
        p[n++] = (suite_point_t){"paced", {16, 1, 1, 256, o->seconds, rates[i]}, false};
    if (n + 2 <= cap) {
        p[n++] = (suite_point_t){"read-stream", {1, 1, 1, 256, read_s, 0}, false};
        p[n++] = (suite_point_t){"read-all", {1, 1, 1, 256, read_s, 0}, false};
    }
    return n;
}

static int cmp_eps(const void *a, const void *b)
{
    double x = ((const bench_result_t *)a)->events_per_s, y = ((const bench_result_t *)b)->events_per_s;
    return x < y ? -1 : x > y;
}

/* Runs one point `repeat` times and keeps the median run (by events/s). */
static int suite_point_run(const suite_opts_t *o, bench_sys_t *sys, const suite_point_t *p,
                           bench_result_t *out)
{
    bench_result_t runs[SUITE_REPEAT_MAX];
    int n = 0, rc = 0;
    for (int i = 0; i < o->repeat; i++) {
        if (strcmp(p->series, "read-stream") == 0)
            rc = bench_read_stream_run(sys, &p->load, SUITE_READ_STREAM_EVENTS, &runs[n]);
        else if (strcmp(p->series, "read-all") == 0)
            rc = bench_read_all_run(sys, &p->load, &runs[n]);
        else
            rc = bench_append_run(sys, &p->load, &runs[n]);
        if (rc)
            break;
        n++;
    }
    if (n == 0)
        return rc ? rc : -EIO;
    qsort(runs, (size_t)n, sizeof *runs, cmp_eps);
    *out = runs[n / 2];
    out->repeat_of = n;
    return 0;
}

static void system_record(const bench_sys_t *sys, const char *skip)
{
    if (systems_n >= SUITE_SYSTEMS_MAX)
        return;
    suite_system_t *s = &systems[systems_n++];
    snprintf(s->label, sizeof s->label, "%s", sys->label);
    snprintf(s->durability, sizeof s->durability, "%s", sys->durability);
    snprintf(s->note, sizeof s->note, "%s", sys->note);
    s->syncs_each_ack = sys->syncs_each_ack;
    s->skipped = skip != NULL;
    snprintf(s->skip_reason, sizeof s->skip_reason, "%s", skip ? skip : "");
}

/* Starts one system, runs the points that apply, stops it. */
static void suite_system(const suite_opts_t *o, const bench_driver_t *drv, const char *durability,
                         const suite_point_t *pts, size_t npts)
{
    bench_sys_t sys = {.drv = drv, .tmp_root = o->tmp_root, .evstored = o->evstored};
    bool none = durability && strcmp(durability, "none") == 0;
    if (durability) {
        snprintf(sys.label, sizeof sys.label, "%s/%s", drv->name, durability);
        snprintf(sys.durability, sizeof sys.durability, "%s", durability);
    } else {
        snprintf(sys.label, sizeof sys.label, "%s", drv->name);
    }
    printf("\n== %s: starting\n", sys.label);
    fflush(stdout);
    uint64_t t0 = util_mono_ns();
    int rc = drv->start(&sys);
    if (rc) {
        char why[160];
        snprintf(why, sizeof why, "could not be started (%s); see the messages above",
                 strerror(rc < 0 ? -rc : rc));
        printf("== %s: SKIPPED: %s\n", sys.label, why);
        system_record(&sys, why);
        drv->stop(&sys);
        return;
    }
    printf("== %s: started in %.1f s: %s\n", sys.label, (double)(util_mono_ns() - t0) / 1e9,
           sys.note);
    system_record(&sys, NULL);
    for (size_t i = 0; i < npts && results_n < SUITE_RESULTS_MAX; i++) {
        if (none && !pts[i].evstored_none)
            continue;
        suite_result_t *sr = &results[results_n];
        rc = suite_point_run(o, &sys, &pts[i], &sr->r);
        if (rc == -ENOTSUP) {
            printf("-- %s %s: n/a (the system has no such read)\n", sys.label, pts[i].series);
            continue;
        }
        if (rc) {
            printf("-- %s %s: FAILED (%d)\n", sys.label, pts[i].series, rc);
            continue;
        }
        snprintf(sr->series, sizeof sr->series, "%s", pts[i].series);
        bench_result_print(&sr->r);
        results_n++;
    }
    drv->stop(&sys);
}

/* ---- reports ---- */

/* Appends printf-style text to the NUL-terminated buf of size bytes,
 * truncating when it is full. */
static void buf_add(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void buf_add(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static const bench_limits_t *limits;

static const suite_result_t *find(const char *system, const char *series, uint32_t conns)
{
    for (size_t i = 0; i < results_n; i++)
        if (strcmp(results[i].r.system, system) == 0 && strcmp(results[i].series, series) == 0 &&
            (conns == 0 || results[i].r.load.connections == conns))
            return &results[i];
    return NULL;
}

/* A JSON string of s. Jansson refuses text that is not valid UTF-8 (a
 * skip reason may quote a peer's output): then every byte of s above ASCII
 * becomes '?'. NULL only on ENOMEM. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *ascii = strdup(s);
    if (!ascii)
        return NULL;
    for (char *p = ascii; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(ascii);
    free(ascii);
    return j;
}

/* A measured figure, or null for one not measured (BENCH_NA) or not finite. */
static json_t *json_figure(double v)
{
    return v >= 0 && isfinite(v) ? json_real(v) : json_null();
}

static json_t *json_limits(void)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "dir", json_text(limits->dir),
                     "fdatasync_p50_us", json_figure(limits->fdatasync_p50_us),
                     "fdatasync_p99_us", json_figure(limits->fdatasync_p99_us),
                     "fdatasyncs_per_s", json_figure(limits->fdatasyncs_per_s),
                     "synced_write_mb_per_s", json_figure(limits->synced_write_mb_s),
                     "loopback_tcp_gb_per_s", json_figure(limits->loopback_gb_s));
}

static json_t *json_system(const suite_system_t *s)
{
    return json_pack("{s:o, s:o, s:b, s:b, s:o, s:o}", "system", json_text(s->label),
                     "durability", json_text(s->durability), "syncs_each_ack", s->syncs_each_ack,
                     "skipped", s->skipped, "skip_reason", json_text(s->skip_reason), "note",
                     json_text(s->note));
}

static json_t *json_run(const suite_result_t *res)
{
    const bench_result_t *r = &res->r;
    const struct {
        const char *key;
        double v;
    } figures[] = {{"events_per_s", r->events_per_s},
                   {"mb_per_s", r->mb_per_s},
                   {"ops_per_s", r->ops_per_s},
                   {"latency_p50_us", r->lat_us[0]},
                   {"latency_p90_us", r->lat_us[1]},
                   {"latency_p99_us", r->lat_us[2]},
                   {"latency_p999_us", r->lat_us[3]},
                   {"latency_max_us", r->lat_us[4]},
                   {"server_cpu_s", r->cpu_s},
                   {"fdatasyncs_per_s", r->fdatasyncs_per_s},
                   {"events_per_fdatasync", r->events_per_sync},
                   {"log_write_mb_per_s", r->disk_mb_per_s}};
    json_t *run = json_pack(
        "{s:o, s:o, s:o, s:o, s:b, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I}", "system",
        json_text(r->system), "series", json_text(res->series), "scenario",
        json_text(r->scenario), "durability", json_text(r->durability), "syncs_each_ack",
        r->syncs_each_ack, "connections", (json_int_t)r->load.connections, "inflight",
        (json_int_t)r->load.inflight, "events_per_append", (json_int_t)r->load.events,
        "event_bytes", (json_int_t)r->load.event_bytes, "rate",
        json_figure(r->load.rate > 0 ? r->load.rate : BENCH_NA), "seconds",
        json_figure(r->seconds), "events", (json_int_t)r->events, "ops", (json_int_t)r->ops,
        "errors", (json_int_t)r->errors);
    int rc = run ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < sizeof figures / sizeof figures[0]; i++)
        rc = json_object_set_new(run, figures[i].key, json_figure(figures[i].v));
    if (rc == 0)
        rc = json_object_set_new(run, "repeats", json_integer(r->repeat_of));
    if (rc != 0) {
        json_decref(run);
        return NULL;
    }
    return run;
}

static json_t *json_systems(void)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < systems_n; i++) {
        if (json_array_append_new(a, json_system(&systems[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

static json_t *json_runs(void)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < results_n; i++) {
        if (json_array_append_new(a, json_run(&results[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

/* The whole results document, or NULL on ENOMEM. */
static json_t *json_report(const char *date, const suite_opts_t *o)
{
    struct utsname u;
    uname(&u);
    return json_pack("{s:o, s:s, s:i, s:{s:o, s:I}, s:o, s:o, s:o}", "date", json_text(date),
                     "mode", o->full ? "full" : "quick", "repeat", o->repeat, "machine",
                     "kernel", json_text(u.release), "cores",
                     (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "limits", json_limits(),
                     "systems", json_systems(), "runs", json_runs());
}

/* Writes the results as JSON (figures to 6 significant digits, as the
 * Markdown shows them) to f. */
static void report_json(FILE *f, const char *date, const suite_opts_t *o)
{
    json_t *doc = json_report(date, o);
    if (!doc || json_dumpf(doc, f, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0 ||
        fputc('\n', f) == EOF)
        fprintf(stderr, "evstore-bench: the results JSON could not be written\n");
    json_decref(doc);
}

static void fmt_num(char *buf, size_t size, double v, const char *fmt)
{
    if (v < 0)
        snprintf(buf, size, "n/a");
    else
        snprintf(buf, size, fmt, v);
}

/* The evstored-against-the-machine column. */
static void vs_limits(char *buf, size_t size, const bench_result_t *r)
{
    buf[0] = '\0';
    if (strncmp(r->system, "evstored", 8) != 0 || strncmp(r->scenario, "append", 6) != 0 ||
        limits->synced_write_mb_s <= 0)
        return;
    snprintf(buf, size, "payload %.0f%% of synced bw", 100 * r->mb_per_s / limits->synced_write_mb_s);
    if (r->disk_mb_per_s > 0) {
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, " (log %.0f%%)", 100 * r->disk_mb_per_s / limits->synced_write_mb_s);
    }
    if (r->fdatasyncs_per_s > 0 && limits->fdatasyncs_per_s > 0) {
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, "; syncs %.0f%% of sync rate, %.1f appends/sync",
                 100 * r->fdatasyncs_per_s / limits->fdatasyncs_per_s,
                 r->ops_per_s / r->fdatasyncs_per_s);
    }
}

static void md_row(FILE *f, const bench_result_t *r)
{
    const bench_load_t *l = &r->load;
    char load[64], lat[5][16], eps[24], mbs[24], sync[24], eps_sync[24], vs[160];
    if (strcmp(r->scenario, "read-stream") == 0)
        snprintf(load, sizeof load, "stream of %u x %u B", l->events, l->event_bytes);
    else if (strcmp(r->scenario, "read-all") == 0)
        snprintf(load, sizeof load, "%" PRIu64 " events from position 0", r->events);
    else
        snprintf(load, sizeof load, "%u x %u x %u x %u B%s", l->connections, l->inflight, l->events,
                 l->event_bytes, "");
    if (l->rate > 0) {
        size_t n = strlen(load);
        snprintf(load + n, sizeof load - n, " @ %.0f/s", l->rate);
    }
    for (int i = 0; i < 5; i++)
        fmt_num(lat[i], sizeof lat[i], r->lat_us[i] / 1e3, r->lat_us[i] / 1e3 < 10 ? "%.2f" : "%.1f");
    fmt_num(eps, sizeof eps, r->events_per_s, "%.0f");
    fmt_num(mbs, sizeof mbs, r->mb_per_s, "%.1f");
    fmt_num(sync, sizeof sync, r->fdatasyncs_per_s, "%.0f");
    fmt_num(eps_sync, sizeof eps_sync, r->events_per_sync, "%.1f");
    vs_limits(vs, sizeof vs, r);
    fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %s | %s | %s |\n",
            r->system, r->durability, load, eps, mbs, lat[0], lat[1], lat[2], lat[3], lat[4],
            r->cpu_s, sync, eps_sync, vs);
}

static void md_table(FILE *f, const char *title, const char *series, const char *what)
{
    bool any = false;
    for (size_t i = 0; i < results_n; i++)
        any |= strcmp(results[i].series, series) == 0;
    if (!any)
        return;
    fprintf(f, "\n### %s\n\n%s\n\n", title, what);
    fprintf(f, "| system | durability | load | events/s | MB/s | p50 ms | p90 ms | p99 ms | "
               "p99.9 ms | max ms | server CPU s | fdatasyncs/s | events/fdatasync | vs machine |\n"
               "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (size_t i = 0; i < results_n; i++)
        if (strcmp(results[i].series, series) == 0)
            md_row(f, &results[i].r);
}

/* The three targets, each with what was measured and met/MISSED. */
static void md_targets(FILE *f)
{
    fprintf(f, "\n### Targets (issue 6)\n\n| target | measured | verdict |\n|---|---|---|\n");
    const suite_result_t *e = find("evstored/always", "append-1", 64);
    const suite_result_t *pg = find("postgresql", "append-1", 64);
    if (e && pg && pg->r.events_per_s > 0) {
        double x = e->r.events_per_s / pg->r.events_per_s;
        fprintf(f, "| 64 connections, 1-event durable appends: >= 10x PostgreSQL | %.0f vs %.0f "
                   "events/s = %.1fx | %s |\n", e->r.events_per_s, pg->r.events_per_s, x,
                x >= 10 ? "met" : "MISSED");
    } else {
        fprintf(f, "| 64 connections, 1-event durable appends: >= 10x PostgreSQL | not measured "
                   "(PostgreSQL or evstored missing) | n/a |\n");
    }
    const suite_result_t *b = find("evstored/always", "append-100", 0);
    for (size_t i = 0; i < results_n; i++) /* the best append-100 point */
        if (strcmp(results[i].r.system, "evstored/always") == 0 &&
            strcmp(results[i].series, "append-100") == 0 && b &&
            results[i].r.mb_per_s > b->r.mb_per_s)
            b = &results[i];
    if (b && limits->synced_write_mb_s > 0) {
        double x = b->r.mb_per_s / limits->synced_write_mb_s;
        fprintf(f, "| 100-event durable appends: >= 70%% of fdatasync'd sequential bandwidth | "
                   "%.1f MB/s payload (%.1f MB/s written to the log) of %.1f MB/s = %.0f%% | %s |\n",
                b->r.mb_per_s, b->r.disk_mb_per_s, limits->synced_write_mb_s, 100 * x,
                x >= 0.7 ? "met" : "MISSED");
    }
    /* Every durable evstored point against every peer that syncs each ack. */
    int compared = 0, behind = 0;
    char misses[1024] = "";
    for (size_t i = 0; i < results_n; i++) {
        const bench_result_t *r = &results[i].r;
        if (strcmp(r->system, "evstored/always") != 0 || strncmp(r->scenario, "append", 6) != 0)
            continue;
        for (size_t k = 0; k < results_n; k++) {
            const bench_result_t *p = &results[k].r;
            if (strncmp(p->system, "evstored", 8) == 0 || !p->syncs_each_ack ||
                strcmp(results[k].series, results[i].series) != 0 ||
                memcmp(&p->load, &r->load, sizeof p->load) != 0)
                continue;
            compared++;
            bool paced = r->load.rate > 0;
            /* paced: the offered rate is the same; compare p99 latency instead */
            bool ahead = paced ? r->lat_us[2] <= p->lat_us[2] : r->events_per_s > p->events_per_s;
            if (!ahead) {
                behind++;
                buf_add(misses, sizeof misses, "%s%s %s %u conns", misses[0] ? "; " : ": ",
                        p->system, results[i].series, r->load.connections);
            }
        }
    }
    fprintf(f, "| every durable configuration ahead of every peer that syncs each acknowledged "
               "write (paced: by p99 latency) | %d comparisons, %d behind%s | %s |\n", compared,
            behind, misses, compared == 0 ? "n/a" : behind == 0 ? "met" : "MISSED");
}

static void report_markdown(FILE *f, const char *date, const suite_opts_t *o)
{
    fprintf(f, "## evstore-bench %s (%s mode, %d run%s per point, median kept)\n\n", date,
            o->full ? "full" : "quick", o->repeat, o->repeat > 1 ? "s" : "");
    fprintf(f, "Machine limits, measured in the same run (in %s): fdatasync of a 4 KiB write "
               "p50 %.0f us, p99 %.0f us (%.0f fdatasyncs/s); fdatasync'd sequential writes of "
               "1 MiB: %.1f MB/s; loopback TCP: %.2f GB/s. %ld cores.\n\n",
            limits->dir, limits->fdatasync_p50_us, limits->fdatasync_p99_us,
            limits->fdatasyncs_per_s, limits->synced_write_mb_s, limits->loopback_gb_s,
            sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(f, "Systems:\n\n");
    for (size_t i = 0; i < systems_n; i++) {
        if (systems[i].skipped)
            fprintf(f, "- **%s**: SKIPPED: %s\n", systems[i].label, systems[i].skip_reason);
        else
            fprintf(f, "- **%s** (%s each acknowledged write): %s\n", systems[i].label,
                    systems[i].syncs_each_ack ? "syncs" : "does NOT sync", systems[i].note);
    }
    fprintf(f, "\nLoad = connections x appends in flight per connection x events per append x "
               "event size. Latency is per append (reads: per read of the whole stream). Server CPU "
               "is user+system seconds of the server process(es) over the run.\n");
    md_table(f, "Appends, 1 event each (closed loop)", "append-1",
             "Each connection keeps one append in flight; each append has an exact expected version.");
    md_table(f, "Appends, 100 events each (closed loop)", "append-100",
             "A batch of 100 events of 1 KiB to one stream, all or nothing (NATS: 100 messages, "
             "not atomic).");
    md_table(f, "Appends at a fixed rate (latency at light load)", "paced",
             "Open load: an append every 1/rate s spread over the connections.");
    md_table(f, "Read one stream", "read-stream",
             "A 1000-event stream read whole from version 0 in pages of 4096, repeatedly; latency "
             "per whole read.");
    md_table(f, "Read everything from the start", "read-all",
             "evstored: $all from position 0; PostgreSQL: SELECT ... ORDER BY position (keyset "
             "pages of 4096); NATS: a pull consumer on order.>; Redis: no global order (n/a).");
    md_targets(f);
}

/* Writes the chart: events/s and p99 against connections for append-1. */
static void report_chart(const char *png, const char *tmp_dir)
{
    char dat[700], gp[700];
    snprintf(dat, sizeof dat, "%s/chart.dat", tmp_dir);
    snprintf(gp, sizeof gp, "%s/chart.gp", tmp_dir);
    FILE *d = fopen(dat, "w"), *g = fopen(gp, "w");
    if (!d || !g) {
        if (d)
            fclose(d);
        if (g)
            fclose(g);
        return;
    }
    fprintf(g, "set terminal pngcairo size 1200,500 font 'sans,10'\nset output '%s'\n"
               "set multiplot layout 1,2 title 'evstore-bench: 1-event appends, 256 B, closed loop'\n"
               "set logscale x 2\nset logscale y\nset grid\nset key top left\n"
               "set xlabel 'connections (1 append in flight each)'\n", png);
    int blocks = 0;
    char plot_t[2048] = "", plot_l[2048] = "";
    for (size_t s = 0; s < systems_n; s++) {
        int rows = 0;
        for (size_t i = 0; i < results_n; i++) {
            const bench_result_t *r = &results[i].r;
            if (strcmp(r->system, systems[s].label) == 0 && strcmp(results[i].series, "append-1") == 0) {
                fprintf(d, "%u %.1f %.4f\n", r->load.connections, r->events_per_s, r->lat_us[2] / 1e3);
                rows++;
            }
        }
        if (rows == 0)
            continue;
        fprintf(d, "\n\n");
        char title[128] = "";
        buf_add(title, sizeof title, "%s%s", systems[s].label,
                systems[s].syncs_each_ack ? "" : " (no sync per ack, dashed)");
        buf_add(plot_t, sizeof plot_t, "%s'%s' index %d using 1:2 with linespoints lw 2 dt %d title '%s'",
                blocks ? ", " : "", dat, blocks, systems[s].syncs_each_ack ? 1 : 2, title);
        buf_add(plot_l, sizeof plot_l, "%s'%s' index %d using 1:3 with linespoints lw 2 dt %d title '%s'",
                blocks ? ", " : "", dat, blocks, systems[s].syncs_each_ack ? 1 : 2, title);
        blocks++;
    }
    fclose(d);
    if (blocks == 0) {
        fclose(g);
        return;
    }
    fprintf(g, "set ylabel 'events/s'\nset title 'throughput'\nplot %s\n", plot_t);
    fprintf(g, "set ylabel 'p99 latency, ms'\nset title 'p99 latency'\nplot %s\nunset multiplot\n",
            plot_l);
    fclose(g);
    char *argv[] = {"gnuplot", gp, NULL};
    char log[720];
    snprintf(log, sizeof log, "%s/gnuplot.log", tmp_dir);
    int rc = bench_run(argv, log, NULL, SUITE_GNUPLOT_SECONDS_MAX);
    if (rc != 0)
        printf("evstore-bench: no chart: gnuplot failed or is missing (%d; apt-get install "
               "gnuplot-nox)\n", rc);
}

static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    char buf[65536];
    size_t n;
    int rc = a && b ? 0 : -errno;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n)
            rc = -EIO;
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    return rc;
}

static int write_reports(const suite_opts_t *o)
{
    char date[32], path[1024], md[1024], png[1024], latest[1024], tmp[600];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%d-%H%M%S", &tm);
    mkdir(o->out_dir, 0755);
    snprintf(path, sizeof path, "%s/%s.json", o->out_dir, date);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "evstore-bench: cannot write %s: %s\n", path, strerror(errno));
        return -errno;
    }
    report_json(f, date, o);
    fclose(f);
    snprintf(md, sizeof md, "%s/%s.md", o->out_dir, date);
    if ((f = fopen(md, "w")) != NULL) {
        report_markdown(f, date, o);
        fclose(f);
    }
    printf("\n");
    report_markdown(stdout, date, o);
    snprintf(png, sizeof png, "%s/%s.png", o->out_dir, date);
    if (bench_mkdtemp(o->tmp_root, "chart", tmp, sizeof tmp) == 0) {
        report_chart(png, tmp);
        bench_rmtree(tmp);
    }
    snprintf(latest, sizeof latest, "%s/latest.md", o->out_dir);
    copy_file(md, latest);
    snprintf(latest, sizeof latest, "%s/latest.json", o->out_dir);
    copy_file(path, latest);
    snprintf(latest, sizeof latest, "%s/latest.png", o->out_dir);
    bool have_png = access(png, R_OK) == 0 && copy_file(png, latest) == 0;
    printf("\nevstore-bench: results in %s/%s.{json,md%s} (and latest.json, latest.md%s)\n", o->out_dir, date,
           have_png ? ",png" : "", have_png ? ", latest.png" : "");
    return 0;
}

int bench_suite_run(const suite_opts_t *o)
{
    static bench_limits_t lim;
    results_n = systems_n = 0;
    limits = &lim;
    suite_point_t pts[32];
    size_t npts = suite_points(o, pts, 32);
    char dir[600];
    if (bench_mkdtemp(o->tmp_root, "limits", dir, sizeof dir) == 0) {
        printf("== machine limits (%s)\n", o->tmp_root);
        fflush(stdout);
        bench_limits_measure(dir, o->full ? 2.0 : 1.0, &lim);
        snprintf(lim.dir, sizeof lim.dir, "%s", o->tmp_root);
        printf("  fdatasync 4 KiB p50 %.0f us p99 %.0f us (%.0f/s); synced 1 MiB writes %.1f MB/s;"
               " loopback TCP %.2f GB/s\n", lim.fdatasync_p50_us, lim.fdatasync_p99_us,
               lim.fdatasyncs_per_s, lim.synced_write_mb_s, lim.loopback_gb_s);
        bench_rmtree(dir);
    }
    char list[256];
    snprintf(list, sizeof list, "%s", o->systems ? o->systems : bench_driver_names());
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        const bench_driver_t *d = bench_driver_find(name);
        if (!d) {
            printf("== %s: SKIPPED: not compiled into this evstore-bench (its client library was"
                   " missing at build time; compiled in: %s)\n", name, bench_driver_names());
            bench_sys_t fake = {0};
            snprintf(fake.label, sizeof fake.label, "%s", name);
            system_record(&fake, "not compiled in: client library missing at build time");
            continue;
        }
        if (strcmp(name, "evstored") == 0) {
            suite_system(o, d, "always", pts, npts);
            suite_system(o, d, "none", pts, npts);
        } else {
            suite_system(o, d, NULL, pts, npts);
        }
    }
    write_reports(o);
    return results_n > 0 ? 0 : 1;
}
