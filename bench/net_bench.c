/* net_bench.c -- evstore-bench: evstored and its peers over loopback, driven
 * by the same harness with the same load (see bench_sys.h, bench/README.md).
 *
 *   evstore-bench append  one append run on one system
 *   evstore-bench read    read one stream, then $all, on one system
 *   evstore-bench limits  the machine's fdatasync, synced bandwidth, loopback
 *   evstore-bench suite   everything, every system; JSON, Markdown, chart
 *
 * Every run is bounded by --seconds and stops by itself; every server start
 * and stop has a timeout. */
#define _GNU_SOURCE
#include "bench_limits.h"
#include "bench_suite.h"
#include "bench_sys.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NB_PAYLOAD_POOL_BYTES (16u * 1024 * 1024)
#define NB_PAYLOAD_BYTES_MIN (1024u * 1024) /* the limits' 1 MiB writes */
#define NB_REPEAT_MAX 9

typedef struct {
    const char *command;
    const char *system;
    const char *server, *evstored, *durability, *tmp, *out, *systems;
    bench_load_t load;
    uint32_t stream_events;
    bool keep_data, full, quick, seconds_set;
    int repeat;
} nb_opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evstore-bench COMMAND [options]\n"
            "\n"
            "  append   appends to one system and reports events/s, MB/s, latency percentiles,\n"
            "           server CPU and (evstored) fdatasyncs\n"
            "  read     reads one stream whole, repeatedly, then everything from the start\n"
            "  limits   measures fdatasync latency, fdatasync'd bandwidth, loopback TCP\n"
            "  suite    the whole comparison: --quick (under 2 minutes) or --full; writes\n"
            "           OUT/<date>.json, .md, .png and OUT/latest.md, latest.png\n"
            "\n"
            "Systems (compiled in: %s): the harness starts each server itself on\n"
            "127.0.0.1 in a temporary directory under --tmp and stops it afterwards.\n"
            "\n"
            "  --system NAME            append/read: evstored (default), postgresql, redis, nats\n"
            "  --server HOST:PORT       evstored: use a running server (no server figures)\n"
            "  --evstored PATH          default: ../server/evstored next to this program\n"
            "  --durability MODE        evstored: always | interval[:MS] | none (default always)\n"
            "  --tmp DIR                where data directories go (default /tmp; use the disk\n"
            "                           you mean to measure, not tmpfs)\n"
            "  --keep-data              keep the started server's data directory\n"
            "  --connections N          default 1 (max %u)\n"
            "  --inflight N             appends in flight per connection, default 8 (max %u)\n"
            "  --events-per-append N    default 100 (max %u)\n"
            "  --event-bytes N          data bytes per event, default 256\n"
            "  --seconds S              per run, default 5 (suite: 3 quick, 5 full; max %.0f)\n"
            "  --rate R                 paced: R appends/s in total instead of closed loop\n"
            "  --stream-events N        read: events in the stream read (default 1000)\n"
            "  --quick | --full         suite: the matrix size\n"
            "  --repeat N               suite: runs per point, median kept (quick 1, full 3)\n"
            "  --systems LIST           suite: comma-separated (default: all compiled in)\n"
            "  --out DIR                suite: results directory (default bench/results)\n",
            bench_driver_names(), BENCH_CONNECTIONS_MAX, BENCH_INFLIGHT_MAX,
            BENCH_EVENTS_PER_APPEND_MAX, BENCH_SECONDS_MAX);
}

static int parse_u32(const char *flag, const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || end == v || n < min || n > max) {
        fprintf(stderr, "evstore-bench: %s: '%s' not in [%u, %u]\n", flag, v, min, max);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

static int parse_double(const char *flag, const char *v, double min, double max, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (*end || end == v || !(d > min && d <= max)) {
        fprintf(stderr, "evstore-bench: %s: '%s' not in (%g, %g]\n", flag, v, min, max);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_args(int argc, char **argv, nb_opts_t *o)
{
    enum { O_SYSTEM = 256, O_SERVER, O_EVSTORED, O_DUR, O_TMP, O_KEEP, O_CONNS, O_INFLIGHT,
           O_EVENTS, O_BYTES, O_SECONDS, O_RATE, O_STREAM_EVENTS, O_QUICK, O_FULL, O_REPEAT,
           O_SYSTEMS, O_OUT, O_HELP };
    static const struct option opts[] = {
        {"system", 1, 0, O_SYSTEM}, {"server", 1, 0, O_SERVER}, {"evstored", 1, 0, O_EVSTORED},
        {"durability", 1, 0, O_DUR}, {"tmp", 1, 0, O_TMP}, {"keep-data", 0, 0, O_KEEP},
        {"connections", 1, 0, O_CONNS}, {"inflight", 1, 0, O_INFLIGHT},
        {"events-per-append", 1, 0, O_EVENTS}, {"event-bytes", 1, 0, O_BYTES},
        {"seconds", 1, 0, O_SECONDS}, {"rate", 1, 0, O_RATE},
        {"stream-events", 1, 0, O_STREAM_EVENTS}, {"quick", 0, 0, O_QUICK}, {"full", 0, 0, O_FULL},
        {"repeat", 1, 0, O_REPEAT}, {"systems", 1, 0, O_SYSTEMS}, {"out", 1, 0, O_OUT},
        {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    int opt, rc = 0;
    uint32_t u;
    bench_load_t *l = &o->load;
    while (rc == 0 && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case O_SYSTEM: o->system = optarg; break;
        case O_SERVER: o->server = optarg; break;
        case O_EVSTORED: o->evstored = optarg; break;
        case O_DUR: o->durability = optarg; break;
        case O_TMP: o->tmp = optarg; break;
        case O_KEEP: o->keep_data = true; break;
        case O_CONNS: rc = parse_u32("--connections", optarg, 1, BENCH_CONNECTIONS_MAX, &l->connections); break;
        case O_INFLIGHT: rc = parse_u32("--inflight", optarg, 1, BENCH_INFLIGHT_MAX, &l->inflight); break;
        case O_EVENTS: rc = parse_u32("--events-per-append", optarg, 1, BENCH_EVENTS_PER_APPEND_MAX, &l->events); break;
        case O_BYTES: rc = parse_u32("--event-bytes", optarg, 0, BENCH_EVENT_BYTES_MAX, &l->event_bytes); break;
        case O_SECONDS: rc = parse_double("--seconds", optarg, 0, BENCH_SECONDS_MAX, &l->seconds); o->seconds_set = true; break;
        case O_RATE: rc = parse_double("--rate", optarg, 0, 1e6, &l->rate); break;
        case O_STREAM_EVENTS: rc = parse_u32("--stream-events", optarg, 1, 1000000, &o->stream_events); break;
        case O_QUICK: o->quick = true; break;
        case O_FULL: o->full = true; break;
        case O_REPEAT: rc = parse_u32("--repeat", optarg, 1, NB_REPEAT_MAX, &u); o->repeat = (int)u; break;
        case O_SYSTEMS: o->systems = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "evstore-bench: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    if (rc == 0 && o->quick && o->full) {
        fprintf(stderr, "evstore-bench: --quick or --full, not both\n");
        rc = -1;
    }
    return rc;
}

/* Starts the system named by the options, or prints why not. */
static int sys_start(const nb_opts_t *o, bench_sys_t *sys)
{
    const char *name = o->system ? o->system : "evstored";
    memset(sys, 0, sizeof *sys);
    sys->drv = bench_driver_find(name);
    if (!sys->drv) {
        fprintf(stderr, "evstore-bench: no system '%s' in this build (compiled in: %s)\n", name,
                bench_driver_names());
        return -ENOENT;
    }
    sys->tmp_root = o->tmp;
    sys->evstored = o->evstored;
    sys->server_addr = o->server;
    sys->keep_data = o->keep_data;
    if (strcmp(name, "evstored") == 0) {
        snprintf(sys->label, sizeof sys->label, "evstored/%s", o->durability);
        snprintf(sys->durability, sizeof sys->durability, "%s", o->durability);
    } else {
        snprintf(sys->label, sizeof sys->label, "%s", name);
    }
    int rc = sys->drv->start(sys);
    if (rc)
        sys->drv->stop(sys);
    return rc;
}

static int cmd_append(const nb_opts_t *o)
{
    bench_sys_t sys;
    int rc = sys_start(o, &sys);
    if (rc)
        return rc;
    bench_result_t r;
    rc = bench_append_run(&sys, &o->load, &r);
    if (rc == 0)
        bench_result_print(&r);
    sys.drv->stop(&sys);
    return rc ? rc : r.events > 0 ? 0 : -EIO;
}

static int cmd_read(const nb_opts_t *o)
{
    bench_sys_t sys;
    int rc = sys_start(o, &sys);
    if (rc)
        return rc;
    bench_result_t r;
    rc = bench_read_stream_run(&sys, &o->load, o->stream_events, &r);
    if (rc == 0)
        bench_result_print(&r);
    else
        printf("%s read-stream: %s\n", sys.label, rc == -ENOTSUP ? "n/a" : "failed");
    int rc2 = bench_read_all_run(&sys, &o->load, &r);
    if (rc2 == 0)
        bench_result_print(&r);
    else
        printf("%s read-all: %s\n", sys.label, rc2 == -ENOTSUP ? "n/a (no global order)" : "failed");
    sys.drv->stop(&sys);
    return rc && rc != -ENOTSUP ? rc : rc2 && rc2 != -ENOTSUP ? rc2 : 0;
}

static int cmd_limits(const nb_opts_t *o)
{
    bench_limits_t l;
    int rc = bench_limits_measure(o->tmp, o->seconds_set ? o->load.seconds : 1.0, &l);
    if (rc)
        return rc;
    printf("machine limits in %s:\n  fdatasync of a 4 KiB write: p50 %.1f us, p99 %.1f us, %.0f/s\n"
           "  fdatasync'd 1 MiB sequential writes: %.1f MB/s\n  loopback TCP: %.2f GB/s\n",
           l.dir, l.fdatasync_p50_us, l.fdatasync_p99_us, l.fdatasyncs_per_s, l.synced_write_mb_s,
           l.loopback_gb_s);
    return 0;
}

static int cmd_suite(const nb_opts_t *o)
{
    suite_opts_t s = {
        .full = o->full,
        .repeat = o->repeat ? o->repeat : o->full ? 3 : 1,
        .seconds = o->seconds_set ? o->load.seconds : o->full ? 5.0 : 3.0,
        .out_dir = o->out ? o->out : "bench/results",
        .tmp_root = o->tmp,
        .systems = o->systems,
        .evstored = o->evstored,
    };
    return bench_suite_run(&s);
}

int main(int argc, char **argv)
{
    static char self_dir[PATH_MAX], evstored[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self_dir, sizeof self_dir - 1);
    if (n > 0) {
        self_dir[n] = '\0';
        char *slash = strrchr(self_dir, '/');
        if (slash)
            *slash = '\0';
    }
    snprintf(evstored, sizeof evstored, "%s/../server/evstored", self_dir);
    nb_opts_t o = {.evstored = evstored, .durability = "always", .tmp = "/tmp",
                   .stream_events = 1000,
                   .load = {.connections = 1, .inflight = 8, .events = 100, .event_bytes = 256,
                            .seconds = 5}};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    o.command = argv[1];
    if (parse_args(argc - 1, argv + 1, &o) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    uint32_t max_bytes = o.load.event_bytes > NB_PAYLOAD_BYTES_MIN ? o.load.event_bytes
                                                                   : NB_PAYLOAD_BYTES_MIN;
    if (bench_payload_init(NB_PAYLOAD_POOL_BYTES, max_bytes) != 0)
        return 1;
    int rc;
    if (strcmp(o.command, "append") == 0) {
        rc = cmd_append(&o);
    } else if (strcmp(o.command, "read") == 0) {
        rc = cmd_read(&o);
    } else if (strcmp(o.command, "limits") == 0) {
        rc = cmd_limits(&o);
    } else if (strcmp(o.command, "suite") == 0) {
        rc = cmd_suite(&o);
    } else {
        fprintf(stderr, "evstore-bench: unknown command '%s'\n", o.command);
        usage(stderr);
        rc = 2;
    }
    bench_payload_free();
    return rc == 0 ? 0 : rc == 2 ? 2 : 1;
}
