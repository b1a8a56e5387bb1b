/* bench_engine.c -- drives any system with the same load and measures it the
 * same way (see bench_sys.h).
 *
 * Every connection has a thread. In a closed-loop run it sends one append per
 * slot, and each completion sends the slot's next append at once (from the
 * thread that reports it: the connection's thread for polled drivers, the
 * client library's reader for evstored). In a paced run each connection's
 * thread sends rate/connections appends per second, offset from the others,
 * on a free slot; when every slot is busy that tick is skipped (an open load:
 * a slow system is not given fewer requests by waiting). Latency is from just
 * before the send to the completion. */
#define _GNU_SOURCE
#include "bench_sys.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ENGINE_ERRORS_PRINTED_MAX 3u

static _Atomic uint64_t engine_errors_printed;

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

int bench_slot_send(bench_slot_t *s)
{
    bench_run_t *r = s->conn->run;
    for (uint32_t i = 0; i < r->load.events; i++) {
        bench_id_fresh(s->ids[i]);
        s->data[i] = bench_payload(r->load.event_bytes);
    }
    atomic_store(&s->busy, true);
    atomic_fetch_add(&s->conn->inflight, 1);
    s->sent_ns = util_mono_ns();
    int rc = r->sys->drv->append_send(s->conn, s);
    if (rc) {
        atomic_fetch_sub(&s->conn->inflight, 1);
        atomic_store(&s->busy, false);
        s->conn->errors++;
        if (atomic_fetch_add(&engine_errors_printed, 1) < ENGINE_ERRORS_PRINTED_MAX)
            fprintf(stderr, "evstore-bench: %s: send failed: %d\n", r->sys->label, rc);
    }
    return rc;
}

void bench_append_done(bench_slot_t *s, int status, int64_t last_version)
{
    bench_conn_t *c = s->conn;
    bench_run_t *r = c->run;
    uint64_t now = util_mono_ns();
    if (status == 0) {
        hist_add(&c->hist, now - s->sent_ns);
        c->appends_ok++;
        c->events_ok += r->load.events;
        s->version = last_version;
    } else {
        c->errors++;
        if (atomic_fetch_add(&engine_errors_printed, 1) < ENGINE_ERRORS_PRINTED_MAX)
            fprintf(stderr, "evstore-bench: %s: append to %s failed: %d\n", r->sys->label,
                    s->stream, status);
    }
    atomic_fetch_sub(&c->inflight, 1);
    atomic_store(&s->busy, false);
    if (!r->manual && r->load.rate == 0 && status == 0 && !atomic_load(&r->stop) && now < r->end_ns)
        bench_slot_send(s);
}

/* Waits for completions on c until at most until_ns (and BENCH_POLL_MS_MAX). */
static void conn_wait(bench_conn_t *c, uint64_t until_ns)
{
    uint64_t now = util_mono_ns();
    uint64_t ns = until_ns > now ? until_ns - now : 0;
    if (ns > (uint64_t)BENCH_POLL_MS_MAX * 1000000u)
        ns = (uint64_t)BENCH_POLL_MS_MAX * 1000000u;
    const bench_driver_t *d = c->run->sys->drv;
    if (d->poll)
        d->poll(c, (int)(ns / 1000000u));
    else if (ns > 0)
        sleep_ns(ns < 1000000u ? ns : 1000000u);
}

static bench_slot_t *conn_free_slot(bench_conn_t *c, uint32_t *next)
{
    uint32_t n = c->run->load.inflight;
    for (uint32_t tries = 0; tries < n; tries++) {
        bench_slot_t *s = &c->slots[(*next)++ % n];
        if (!atomic_load(&s->busy))
            return s;
    }
    return NULL;
}

static void *conn_main(void *arg)
{
    bench_conn_t *c = arg;
    bench_run_t *r = c->run;
    const bench_load_t *l = &r->load;
    uint64_t gap = 0, next = r->start_ns;
    uint32_t next_slot = 0;
    if (l->rate > 0) {
        gap = (uint64_t)(1e9 * l->connections / l->rate);
        next = r->start_ns + gap * c->index / l->connections;
    } else {
        for (uint32_t k = 0; k < l->inflight; k++)
            if (bench_slot_send(&c->slots[k]) != 0)
                break;
    }
    for (uint64_t now = util_mono_ns(); now < r->end_ns && !atomic_load(&r->stop);
         now = util_mono_ns()) {
        if (gap && now >= next) {
            bench_slot_t *s = conn_free_slot(c, &next_slot);
            if (s)
                bench_slot_send(s);
            next += gap;
            if (next + 10 * gap < now) /* far behind: do not burst to catch up */
                next = now + gap;
            continue;
        }
        conn_wait(c, gap ? (next < r->end_ns ? next : r->end_ns) : r->end_ns);
    }
    uint64_t deadline = util_mono_ns() + (uint64_t)(BENCH_DRAIN_SECONDS_MAX * 1e9);
    while (atomic_load(&c->inflight) > 0 && util_mono_ns() < deadline)
        conn_wait(c, deadline);
    return NULL;
}

/* ---- connections ---- */

static void run_close(bench_run_t *r)
{
    const bench_driver_t *d = r->sys->drv;
    for (uint32_t i = 0; r->conns && i < r->load.connections; i++) {
        bench_conn_t *c = &r->conns[i];
        for (uint32_t k = 0; c->slots && k < r->load.inflight; k++) {
            if (d->slot_free && c->drv)
                d->slot_free(c, &c->slots[k]);
            free(c->slots[k].ids);
            free(c->slots[k].data);
        }
        if (c->drv)
            d->conn_close(r->sys, c);
        free(c->slots);
    }
    free(r->conns);
    r->conns = NULL;
}

static int run_open(bench_run_t *r, bench_sys_t *sys, const bench_load_t *load)
{
    static _Atomic uint32_t run_counter;
    uint32_t tag = (uint32_t)(bench_rand() & 0xfffff), run_no = atomic_fetch_add(&run_counter, 1);
    memset(r, 0, sizeof *r);
    r->sys = sys;
    r->load = *load;
    r->conns = calloc(load->connections, sizeof *r->conns);
    if (!r->conns)
        return -ENOMEM;
    for (uint32_t i = 0; i < load->connections; i++) {
        bench_conn_t *c = &r->conns[i];
        c->run = r;
        c->index = i;
        c->slots = calloc(load->inflight, sizeof *c->slots);
        if (!c->slots)
            return -ENOMEM;
        int rc = sys->drv->conn_open(sys, c);
        if (rc) {
            fprintf(stderr, "evstore-bench: %s: connection %u: %d\n", sys->label, i, rc);
            return rc;
        }
        for (uint32_t k = 0; k < load->inflight; k++) {
            bench_slot_t *s = &c->slots[k];
            s->conn = c;
            s->index = k;
            s->version = -1;
            /* order-<k>: one stream per slot, unique within the server's life */
            snprintf(s->stream, sizeof s->stream, "order-%x%05x-%u", run_no, tag,
                     i * load->inflight + k);
            s->ids = calloc(load->events, sizeof *s->ids);
            s->data = calloc(load->events, sizeof *s->data);
            if (!s->ids || !s->data)
                return -ENOMEM;
            if (sys->drv->slot_init && (rc = sys->drv->slot_init(c, s)) != 0)
                return rc;
        }
    }
    return 0;
}

static void sample(bench_sys_t *sys, bench_srv_sample_t *out)
{
    memset(out, 0, sizeof *out);
    out->fdatasyncs = out->writes = out->bytes_written = BENCH_NA;
    if (sys->drv->sample)
        sys->drv->sample(sys, out);
}

static void result_init(bench_result_t *res, const bench_sys_t *sys, const char *scenario,
                        const bench_load_t *load)
{
    memset(res, 0, sizeof *res);
    snprintf(res->system, sizeof res->system, "%s", sys->label);
    snprintf(res->scenario, sizeof res->scenario, "%s", scenario);
    snprintf(res->durability, sizeof res->durability, "%s", sys->durability);
    res->syncs_each_ack = sys->syncs_each_ack;
    res->load = *load;
    res->fdatasyncs_per_s = res->events_per_sync = res->disk_mb_per_s = BENCH_NA;
    res->repeat_of = 1;
}

static void result_server(bench_result_t *res, const bench_srv_sample_t *a,
                          const bench_srv_sample_t *b)
{
    res->cpu_s = b->cpu_s - a->cpu_s;
    if (a->fdatasyncs >= 0 && b->fdatasyncs >= 0) {
        double syncs = b->fdatasyncs - a->fdatasyncs;
        res->fdatasyncs_per_s = syncs / res->seconds;
        res->events_per_sync = syncs > 0 ? (double)res->events / syncs : BENCH_NA;
    }
    if (a->bytes_written >= 0 && b->bytes_written >= 0)
        res->disk_mb_per_s = (b->bytes_written - a->bytes_written) / res->seconds / 1e6;
}

static void result_latency(bench_result_t *res, const hist_t *h)
{
    static const double q[4] = {0.5, 0.9, 0.99, 0.999};
    for (int i = 0; i < 4; i++)
        res->lat_us[i] = (double)hist_quantile(h, q[i]) / 1e3;
    res->lat_us[4] = (double)h->max / 1e3;
}

int bench_append_run(bench_sys_t *sys, const bench_load_t *load, bench_result_t *res)
{
    static bench_run_t run;
    bench_run_t *r = &run;
    result_init(res, sys, load->rate > 0 ? "append-paced" : "append", load);
    int rc = run_open(r, sys, load);
    bench_srv_sample_t s0, s1;
    if (rc == 0) {
        sample(sys, &s0);
        r->start_ns = util_mono_ns();
        r->end_ns = r->start_ns + (uint64_t)(load->seconds * 1e9);
        for (uint32_t i = 0; i < load->connections && rc == 0; i++) {
            rc = -pthread_create(&r->conns[i].thread, NULL, conn_main, &r->conns[i]);
            r->conns[i].thread_started = rc == 0;
        }
        if (rc)
            atomic_store(&r->stop, true);
        for (uint32_t i = 0; i < load->connections; i++)
            if (r->conns[i].thread_started)
                pthread_join(r->conns[i].thread, NULL);
        res->seconds = (double)(util_mono_ns() - r->start_ns) / 1e9;
        sample(sys, &s1);
        hist_t all = {0};
        for (uint32_t i = 0; i < load->connections; i++) {
            hist_merge(&all, &r->conns[i].hist);
            res->events += r->conns[i].events_ok;
            res->ops += r->conns[i].appends_ok;
            res->errors += r->conns[i].errors;
            if (atomic_load(&r->conns[i].inflight) > 0)
                fprintf(stderr, "evstore-bench: %s: connection %u still had %u appends in flight"
                        " after %.0f s\n", sys->label, i, atomic_load(&r->conns[i].inflight),
                        BENCH_DRAIN_SECONDS_MAX);
        }
        res->events_per_s = (double)res->events / res->seconds;
        res->ops_per_s = (double)res->ops / res->seconds;
        res->mb_per_s = res->events_per_s * load->event_bytes / 1e6;
        result_latency(res, &all);
        result_server(res, &s0, &s1);
    }
    run_close(r);
    return rc;
}

/* ---- reads ---- */

/* Appends `appends` batches of the run's events to slot s and waits for each. */
static int prepare_stream(bench_slot_t *s, uint32_t appends)
{
    uint64_t deadline = util_mono_ns() + (uint64_t)(BENCH_DRAIN_SECONDS_MAX * 1e9);
    for (uint32_t i = 0; i < appends; i++) {
        uint64_t errors = s->conn->errors;
        int rc = bench_slot_send(s);
        if (rc)
            return rc;
        while (atomic_load(&s->busy) && util_mono_ns() < deadline)
            conn_wait(s->conn, deadline);
        if (atomic_load(&s->busy))
            return -ETIMEDOUT;
        if (s->conn->errors != errors)
            return -EIO;
    }
    return 0;
}

int bench_read_stream_run(bench_sys_t *sys, const bench_load_t *load, uint32_t stream_events,
                          bench_result_t *res)
{
    static bench_run_t run;
    bench_run_t *r = &run;
    result_init(res, sys, "read-stream", load);
    if (!sys->drv->read_stream)
        return -ENOTSUP;
    bench_load_t one = *load;
    one.connections = one.inflight = 1;
    one.events = stream_events < 100 ? stream_events : 100;
    one.rate = 0;
    int rc = run_open(r, sys, &one);
    if (rc == 0) {
        r->manual = true;
        bench_conn_t *c = &r->conns[0];
        rc = prepare_stream(&c->slots[0], (stream_events + one.events - 1) / one.events);
        res->load = one;
        res->load.events = stream_events; /* the stream's length, for the report */
        hist_t h = {0};
        bench_srv_sample_t s0, s1;
        sample(sys, &s0);
        uint64_t start = util_mono_ns(), end = start + (uint64_t)(load->seconds * 1e9), bytes = 0;
        while (rc == 0 && util_mono_ns() < end) {
            uint64_t n = 0, b = 0, t0 = util_mono_ns();
            rc = sys->drv->read_stream(c, c->slots[0].stream, &n, &b);
            hist_add(&h, util_mono_ns() - t0);
            if (rc == 0 && n < stream_events) {
                fprintf(stderr, "evstore-bench: %s: read %" PRIu64 " of %u events\n", sys->label, n,
                        stream_events);
                rc = -EIO;
            }
            res->events += n;
            res->ops++;
            bytes += b;
        }
        res->seconds = (double)(util_mono_ns() - start) / 1e9;
        sample(sys, &s1);
        res->events_per_s = (double)res->events / res->seconds;
        res->ops_per_s = (double)res->ops / res->seconds;
        res->mb_per_s = (double)bytes / res->seconds / 1e6;
        result_latency(res, &h);
        result_server(res, &s0, &s1);
        res->fdatasyncs_per_s = res->events_per_sync = res->disk_mb_per_s = BENCH_NA;
    }
    run_close(r);
    return rc;
}

int bench_read_all_run(bench_sys_t *sys, const bench_load_t *load, bench_result_t *res)
{
    static bench_run_t run;
    bench_run_t *r = &run;
    result_init(res, sys, "read-all", load);
    if (!sys->drv->read_all)
        return -ENOTSUP;
    bench_load_t one = *load;
    one.connections = one.inflight = 1;
    int rc = run_open(r, sys, &one);
    res->load = one;
    if (rc == 0) {
        bench_srv_sample_t s0, s1;
        sample(sys, &s0);
        uint64_t start = util_mono_ns(), bytes = 0;
        rc = sys->drv->read_all(&r->conns[0], start + (uint64_t)(load->seconds * 1e9), &res->events,
                                &bytes);
        res->seconds = (double)(util_mono_ns() - start) / 1e9;
        sample(sys, &s1);
        res->ops = 1;
        res->events_per_s = (double)res->events / res->seconds;
        res->ops_per_s = BENCH_NA;
        res->mb_per_s = (double)bytes / res->seconds / 1e6;
        for (int i = 0; i < 5; i++)
            res->lat_us[i] = BENCH_NA;
        result_server(res, &s0, &s1);
        res->fdatasyncs_per_s = res->events_per_sync = res->disk_mb_per_s = BENCH_NA;
    }
    run_close(r);
    return rc;
}

void bench_result_print(const bench_result_t *r)
{
    const bench_load_t *l = &r->load;
    printf("%s %s: %u connections x %u in flight x %u events of %u bytes, %s, %.1f s%s\n",
           r->system, r->scenario, l->connections, l->inflight, l->events, l->event_bytes,
           r->durability, r->seconds, l->rate > 0 ? " (paced)" : "");
    if (l->rate > 0)
        printf("  offered rate      %.0f appends/s\n", l->rate);
    printf("  events/s      %12.0f   (%" PRIu64 " events)\n", r->events_per_s, r->events);
    printf("  payload MB/s  %12.2f\n", r->mb_per_s);
    if (r->ops_per_s >= 0)
        printf("  ops/s         %12.0f   (%" PRIu64 " ops, %" PRIu64 " errors)\n", r->ops_per_s,
               r->ops, r->errors);
    if (r->lat_us[0] >= 0)
        printf("  latency us    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", r->lat_us[0],
               r->lat_us[1], r->lat_us[2], r->lat_us[3], r->lat_us[4]);
    printf("  server CPU    %.2f s (%.0f%% of one core)\n", r->cpu_s, 100 * r->cpu_s / r->seconds);
    if (r->fdatasyncs_per_s >= 0)
        printf("  fdatasyncs/s  %12.0f   (%.1f events per fdatasync)\n", r->fdatasyncs_per_s,
               r->events_per_sync);
    if (r->disk_mb_per_s >= 0)
        printf("  written MB/s  %12.2f   (log bytes, headers included)\n", r->disk_mb_per_s);
    fflush(stdout);
}
