/* sub_bench.c -- evstore-bench-subs: subscriptions and groups against a real
 * evstored (started here on a temporary directory), through libevstore.
 *
 *   fanout   one writer appends (closed loop) while N subscribers to $all
 *            receive live; events/s per subscriber and the latency from the
 *            writer seeing an append acknowledged to a subscriber seeing it
 *   catchup  a log of E events is written, then one subscriber reads $all
 *            from 0 until caught up: events/s
 *   group    a log of E events is written, then a group on $all with C
 *            consumers that ack every event: events/s until all are acked
 *
 * Every loop is bounded in count and time. Not a test: it prints figures. */
#define _GNU_SOURCE
#include "bench_proc.h"
#include "bench_util.h"
#include "evstore.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SB_SUBSCRIBERS_MAX 64u
#define SB_ACK_RING (1u << 24)        /* ack times kept, by position modulo */
#define SB_SECONDS_MAX 120.0
#define SB_EVENTS_MAX 50000000ull
#define SB_DRAIN_SECONDS 30.0
#define SB_BUILD_BATCH 100u
#define SB_BUILD_INFLIGHT 16u
#define SB_START_MS_MAX 60000         /* evstored's ready line comes within this */

typedef struct {
    const char *mode, *evstored, *tmp;
    uint32_t subscribers, consumers, events_per_append, inflight, event_bytes;
    uint64_t events;
    double seconds;
} sb_opts_t;

static sb_opts_t o;
static char port_text[16];
static uint16_t port;
static _Atomic uint64_t *ack_ns;      /* writer's ack time of each position (ring) */
static _Atomic bool writer_done;
static _Atomic uint64_t appended;     /* events acknowledged to the writer */

/* ---- the server ---- */

static pid_t server_start(char *dir, size_t dir_cap)
{
    if (bench_mkdtemp(o.tmp, "evstore-bench-subs", dir, dir_cap) != 0)
        return -1;
    char *argv[] = {(char *)o.evstored, "--data", dir, "--listen", "127.0.0.1:0", "--metrics",
                    "off", "--quiet", NULL};
    int out;
    pid_t pid = bench_spawn(argv, &out, NULL, NULL);
    char line[256];
    char listen[128], host[128];
    if (pid < 0 || proc_read_line(out, line, sizeof line, SB_START_MS_MAX) != 0 ||
        sscanf(line, "evstored ready listen=%127s", listen) != 1 ||
        util_hostport(listen, host, sizeof host, &port, false) != 0) {
        fprintf(stderr, "evstore-bench-subs: %s did not start\n", o.evstored);
        bench_stop(pid);
        return -1;
    }
    close(out);
    snprintf(port_text, sizeof port_text, "%u", port);
    return pid;
}

static void options(evs_options_t *eo)
{
    evs_options_default(eo);
    eo->port = port;
    eo->client_name = "evstore-bench-subs";
    eo->inflight_max = SB_BUILD_INFLIGHT * 4 + o.inflight;
}

/* ---- the writer ---- */

typedef struct {
    evs_conn_t *conn;
    evs_event_t *events;
    uint32_t n;
    uint64_t end_ns;
    _Atomic uint32_t inflight;
} writer_t;

static void write_done(void *ctx, int status, const evs_append_result_t *res);

static int write_one(writer_t *w)
{
    for (uint32_t i = 0; i < w->n; i++) {
        bench_id_fresh(w->events[i].id);
        w->events[i].data = bench_payload(o.event_bytes);
    }
    evs_stream_append_t sa = {.stream = "order-bench", .expected_version = EVS_EXPECT_ANY,
                              .events = w->events, .event_count = w->n};
    atomic_fetch_add(&w->inflight, 1);
    int rc = evs_append_async(w->conn, &sa, 1, write_done, w);
    if (rc)
        atomic_fetch_sub(&w->inflight, 1);
    return rc;
}

static void write_done(void *ctx, int status, const evs_append_result_t *res)
{
    writer_t *w = ctx;
    uint64_t now = util_mono_ns();
    if (status == 0) {
        for (uint32_t i = 0; i < res->event_count; i++)
            atomic_store_explicit(&ack_ns[(res->first_position + i) % SB_ACK_RING], now,
                                  memory_order_relaxed);
        atomic_fetch_add(&appended, res->event_count);
    }
    atomic_fetch_sub(&w->inflight, 1);
    if (status == 0 && now < w->end_ns)
        write_one(w); /* one thread refills: the writer's own callbacks */
}

/* Appends for `seconds` (or until `events` are written when seconds is 0). */
static int write_load(uint32_t n, uint32_t inflight, double seconds, uint64_t events)
{
    evs_options_t eo;
    options(&eo);
    writer_t w = {.n = n};
    int rc = evs_connect(&eo, &w.conn);
    if (rc)
        return rc;
    w.events = calloc(n, sizeof *w.events);
    for (uint32_t i = 0; i < n; i++) {
        w.events[i].type = "OrderPlaced";
        w.events[i].data_len = o.event_bytes;
    }
    uint64_t start = util_mono_ns();
    w.end_ns = seconds > 0 ? start + (uint64_t)(seconds * 1e9) : start + (uint64_t)(SB_SECONDS_MAX * 1e9);
    for (uint32_t k = 0; k < inflight && rc == 0; k++)
        rc = write_one(&w);
    while (util_mono_ns() < w.end_ns && (seconds > 0 || atomic_load(&appended) < events))
        usleep(1000);
    w.end_ns = 0; /* stop refilling */
    evs_flush(w.conn, (int)(SB_DRAIN_SECONDS * 1000));
    evs_close(w.conn);
    free(w.events);
    return rc;
}

/* ---- subscribers ---- */

typedef struct {
    pthread_t thread;
    const char *stream;
    bool from_end;
    uint64_t stop_at;        /* stop once this many events are received (0: at writer_done) */
    uint64_t events;
    hist_t lat;
    uint64_t start_ns, end_ns;
    int error;
    _Atomic bool subscribed;
} subscriber_t;

static void *subscriber_main(void *arg)
{
    subscriber_t *s = arg;
    evs_options_t eo;
    options(&eo);
    evs_subscribe_t req = {.stream = s->stream, .from_end = s->from_end};
    evs_sub_t *sub;
    s->error = evs_subscribe(&eo, &req, &sub);
    atomic_store(&s->subscribed, true);
    if (s->error)
        return NULL;
    s->start_ns = util_mono_ns();
    uint64_t deadline = s->start_ns + (uint64_t)((o.seconds + SB_DRAIN_SECONDS) * 1e9);
    while (util_mono_ns() < deadline) {
        evs_sub_item_t it;
        int rc = evs_sub_next(sub, 100, &it);
        if (rc == EVS_ETIMEDOUT) {
            if (s->stop_at == 0 && atomic_load(&writer_done) && s->events >= atomic_load(&appended))
                break;
            continue;
        }
        if (rc) {
            s->error = rc;
            break;
        }
        if (it.kind != EVS_SUB_EVENT)
            continue;
        uint64_t now = util_mono_ns();
        uint64_t acked = atomic_load_explicit(&ack_ns[it.event.position % SB_ACK_RING],
                                              memory_order_relaxed);
        if (s->from_end)
            hist_add(&s->lat, acked && acked < now ? now - acked : 0);
        s->end_ns = now;
        if (++s->events == s->stop_at)
            break;
    }
    evs_sub_close(sub);
    return NULL;
}

static void print_rate(const char *what, uint64_t events, uint64_t ns)
{
    double secs = (double)ns / 1e9;
    printf("  %-22s %10llu events in %.2f s: %.0f events/s\n", what, (unsigned long long)events,
           secs, secs > 0 ? (double)events / secs : 0);
}

static int bench_fanout(void)
{
    subscriber_t *subs = calloc(o.subscribers, sizeof *subs);
    for (uint32_t i = 0; i < o.subscribers; i++) {
        subs[i].stream = "$all";
        subs[i].from_end = true;
        pthread_create(&subs[i].thread, NULL, subscriber_main, &subs[i]);
    }
    for (uint32_t i = 0; i < o.subscribers; i++)
        while (!atomic_load(&subs[i].subscribed))
            usleep(1000);
    uint64_t t0 = util_mono_ns();
    int rc = write_load(o.events_per_append, o.inflight, o.seconds, 0);
    uint64_t write_ns = util_mono_ns() - t0;
    atomic_store(&writer_done, true);
    hist_t all = {0};
    for (uint32_t i = 0; i < o.subscribers; i++) {
        pthread_join(subs[i].thread, NULL);
        hist_merge(&all, &subs[i].lat);
    }
    printf("fanout: 1 writer (%u events x %u in flight, %u bytes), %u subscribers to $all\n",
           o.events_per_append, o.inflight, o.event_bytes, o.subscribers);
    print_rate("written", atomic_load(&appended), write_ns);
    for (uint32_t i = 0; i < o.subscribers; i++) {
        char what[64];
        snprintf(what, sizeof what, "subscriber %u%s", i, subs[i].error ? " (error)" : "");
        print_rate(what, subs[i].events, subs[i].end_ns > subs[i].start_ns
                                             ? subs[i].end_ns - subs[i].start_ns : 1);
    }
    printf("  ack-to-subscriber latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
           hist_quantile(&all, 0.5) / 1e3, hist_quantile(&all, 0.9) / 1e3,
           hist_quantile(&all, 0.99) / 1e3, hist_quantile(&all, 0.999) / 1e3, all.max / 1e3);
    free(subs);
    return rc;
}

static int bench_catchup(void)
{
    int rc = write_load(SB_BUILD_BATCH, SB_BUILD_INFLIGHT, 0, o.events);
    if (rc)
        return rc;
    subscriber_t s = {.stream = "$all", .stop_at = atomic_load(&appended)};
    subscriber_main(&s);
    printf("catchup: one subscriber to $all from 0, %llu stored events of %u bytes\n",
           (unsigned long long)s.stop_at, o.event_bytes);
    print_rate("caught up", s.events, s.end_ns - s.start_ns);
    return s.error;
}

typedef struct {
    pthread_t thread;
    uint64_t acked;
    int error;
} consumer_t;

static _Atomic uint64_t group_acked;

static void *consumer_main(void *arg)
{
    consumer_t *c = arg;
    evs_options_t eo;
    options(&eo);
    evs_consumer_t *k;
    c->error = evs_group_join(&eo, "bench", 0, &k);
    if (c->error)
        return NULL;
    uint64_t deadline = util_mono_ns() + (uint64_t)((SB_SECONDS_MAX) * 1e9);
    while (util_mono_ns() < deadline && atomic_load(&group_acked) < atomic_load(&appended)) {
        evs_group_event_t ev;
        int rc = evs_consumer_next(k, 100, &ev);
        if (rc == EVS_ETIMEDOUT)
            continue;
        if (rc) {
            c->error = rc;
            break;
        }
        if (evs_consumer_ack(k, ev.event.position) == 0) {
            c->acked++;
            atomic_fetch_add(&group_acked, 1);
        }
    }
    evs_consumer_close(k);
    return NULL;
}

static int bench_group(void)
{
    int rc = write_load(SB_BUILD_BATCH, SB_BUILD_INFLIGHT, 0, o.events);
    if (rc)
        return rc;
    evs_options_t eo;
    options(&eo);
    evs_conn_t *conn;
    if ((rc = evs_connect(&eo, &conn)) != 0)
        return rc;
    evs_group_settings_t gs = {.name = "bench", .stream = "$all", .inflight_max_per_consumer = 1000};
    rc = evs_group_create(conn, &gs);
    evs_close(conn);
    if (rc)
        return rc;
    consumer_t *cs = calloc(o.consumers, sizeof *cs);
    uint64_t t0 = util_mono_ns();
    for (uint32_t i = 0; i < o.consumers; i++)
        pthread_create(&cs[i].thread, NULL, consumer_main, &cs[i]);
    for (uint32_t i = 0; i < o.consumers; i++)
        pthread_join(cs[i].thread, NULL);
    printf("group: %u consumers on $all acking every event, %llu stored events\n", o.consumers,
           (unsigned long long)atomic_load(&appended));
    print_rate("acked (all consumers)", atomic_load(&group_acked), util_mono_ns() - t0);
    for (uint32_t i = 0; i < o.consumers; i++)
        printf("  consumer %u: %llu acked%s\n", i, (unsigned long long)cs[i].acked,
               cs[i].error ? " (error)" : "");
    free(cs);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: evstore-bench-subs fanout|catchup|group [options]\n"
               "  --subscribers N        fanout: subscribers to $all (default 10, max %u)\n"
               "  --consumers N          group: consumers (default 4)\n"
               "  --events N             catchup/group: stored events (default 1000000)\n"
               "  --events-per-append N  fanout writer (default 100)\n"
               "  --inflight N           fanout writer's appends in flight (default 8)\n"
               "  --event-bytes N        default 100\n"
               "  --seconds S            fanout: writing time (default 5)\n"
               "  --evstored PATH        default ../server/evstored next to this program\n"
               "  --tmp DIR              data directories go here (default /tmp)\n",
            SB_SUBSCRIBERS_MAX);
}

static int parse(int argc, char **argv)
{
    static const struct option opts[] = {
        {"subscribers", 1, 0, 's'}, {"consumers", 1, 0, 'c'}, {"events", 1, 0, 'e'},
        {"events-per-append", 1, 0, 'n'}, {"inflight", 1, 0, 'k'}, {"event-bytes", 1, 0, 'b'},
        {"seconds", 1, 0, 't'}, {"evstored", 1, 0, 'x'}, {"tmp", 1, 0, 'd'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's': o.subscribers = (uint32_t)atoi(optarg); break;
        case 'c': o.consumers = (uint32_t)atoi(optarg); break;
        case 'e': o.events = strtoull(optarg, NULL, 10); break;
        case 'n': o.events_per_append = (uint32_t)atoi(optarg); break;
        case 'k': o.inflight = (uint32_t)atoi(optarg); break;
        case 'b': o.event_bytes = (uint32_t)atoi(optarg); break;
        case 't': o.seconds = atof(optarg); break;
        case 'x': o.evstored = optarg; break;
        case 'd': o.tmp = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (o.subscribers < 1 || o.subscribers > SB_SUBSCRIBERS_MAX || o.consumers < 1 ||
        o.consumers > SB_SUBSCRIBERS_MAX || o.events < 1 || o.events > SB_EVENTS_MAX ||
        o.events_per_append < 1 || o.events_per_append > 1000 || o.inflight < 1 ||
        o.inflight > 256 || o.event_bytes > 65536 || !(o.seconds > 0 && o.seconds <= SB_SECONDS_MAX)) {
        fprintf(stderr, "evstore-bench-subs: an option is out of range (see --help)\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static char evstored[PATH_MAX + 32], self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(evstored, sizeof evstored, "%s/../server/evstored", self);
    o = (sb_opts_t){.evstored = evstored, .tmp = "/tmp", .subscribers = 10, .consumers = 4,
                    .events = 1000000, .events_per_append = 100, .inflight = 8,
                    .event_bytes = 100, .seconds = 5};
    if (argc < 2 || argv[1][0] == '-') {
        usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    o.mode = argv[1];
    if (parse(argc - 1, argv + 1) != 0)
        return 2;
    ack_ns = calloc(SB_ACK_RING, sizeof *ack_ns);
    if (!ack_ns || bench_payload_init(16u << 20, o.event_bytes) != 0)
        return 1;
    char dir[512];
    pid_t pid = server_start(dir, sizeof dir);
    if (pid < 0)
        return 1;
    int rc = strcmp(o.mode, "fanout") == 0    ? bench_fanout()
             : strcmp(o.mode, "catchup") == 0 ? bench_catchup()
             : strcmp(o.mode, "group") == 0   ? bench_group()
                                              : (usage(stderr), -EINVAL);
    bench_stop(pid);
    bench_rmtree(dir);
    bench_payload_free();
    free(ack_ns);
    if (rc)
        fprintf(stderr, "evstore-bench-subs: %s\n", evs_strerror(rc));
    return rc ? 1 : 0;
}
