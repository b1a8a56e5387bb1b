/* net_bench.c -- evstore-bench: appends to a real evstored over loopback
 * through libevstore, the way a client would, and reports throughput,
 * latency percentiles, the server's CPU time and its group commits.
 *
 * Every connection keeps `inflight` appends going; each in-flight slot owns
 * its stream ("order-<conn>-<slot>") and appends to it with an exact expected
 * version, so every append passes an optimistic-concurrency check. With
 * --rate, appends are instead paced at a fixed total rate (latency at a light
 * load). Every run is bounded by --seconds and stops by itself. */
#define _GNU_SOURCE
#include "bench_util.h"
#include "evstore.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define NB_CONNECTIONS_MAX 1024u
#define NB_INFLIGHT_MAX 256u
#define NB_EVENTS_PER_APPEND_MAX 10000u
#define NB_EVENT_BYTES_MAX (1024u * 1024)
#define NB_SECONDS_MAX 600.0
#define NB_DRAIN_SECONDS_MAX 30.0
#define NB_SERVER_START_SECONDS 30.0
#define NB_PAYLOAD_POOL_BYTES (16u * 1024 * 1024)
#define NB_EVENT_TYPE "OrderPlaced"

typedef struct {
    const char *server;      /* HOST:PORT of a running evstored, or NULL */
    const char *evstored;    /* binary to start when server is NULL */
    const char *data;        /* its data directory (default: a temp dir) */
    const char *durability;
    uint32_t connections, inflight, events, event_bytes;
    double seconds, rate;
    bool keep_data;
} nb_opts_t;

typedef struct nb_conn_s nb_conn_t;

typedef struct {
    nb_conn_t *conn;
    uint32_t index;
    char stream[48];
    int64_t version;          /* the stream's last version (-1 before the first) */
    uint64_t sent_ns;
    _Atomic bool busy;        /* an append of this slot is in flight */
    evs_event_t *events;
    evs_stream_append_t sa;
} nb_slot_t;

struct nb_conn_s {
    evs_conn_t *evs;
    uint32_t index;
    nb_slot_t *slots;
    hist_t hist;              /* latency in ns; touched only by this connection's reader */
    uint64_t events_ok, appends_ok, errors;
    _Atomic uint32_t inflight;
};

typedef struct {
    const nb_opts_t *o;
    nb_conn_t *conns;
    _Atomic bool stop;
    uint64_t start_ns, end_ns;
} nb_run_t;

static nb_run_t run;

/* ---- the server, started by us unless --server is given ---- */

typedef struct {
    pid_t pid;
    char listen[128], metrics[128];
    char dir[256];
    bool own_dir;
} nb_server_t;

static int server_start(const nb_opts_t *o, nb_server_t *s)
{
    if (o->data) {
        snprintf(s->dir, sizeof s->dir, "%s", o->data);
    } else {
        snprintf(s->dir, sizeof s->dir, "/tmp/evstore-bench-XXXXXX");
        if (!mkdtemp(s->dir))
            return -errno;
        s->own_dir = true;
    }
    int out[2];
    if (pipe(out) != 0)
        return -errno;
    s->pid = fork();
    if (s->pid < 0)
        return -errno;
    if (s->pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(o->evstored, o->evstored, "--data", s->dir, "--listen", "127.0.0.1:0", "--metrics",
              "127.0.0.1:0", "--durability", o->durability, "--quiet", (char *)NULL);
        fprintf(stderr, "evstore-bench: cannot run %s: %s\n", o->evstored, strerror(errno));
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[512] = "";
    bool ok = f && fgets(line, sizeof line, f) &&
              sscanf(line, "evstored ready listen=%127s metrics=%127s", s->listen, s->metrics) == 2;
    if (f)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "evstore-bench: %s did not start (is it built? --evstored PATH)\n",
                o->evstored);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        return -EIO;
    }
    return 0;
}

static void server_stop(nb_server_t *s, bool keep)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    if (s->own_dir && !keep) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "evstore-bench: could not remove %s\n", s->dir);
    }
}

/* CPU seconds (user + system) used so far by pid, from /proc. */
static double proc_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                     &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Reads one counter from the server's /metrics (0 if it cannot). */
static double metric_value(const char *addr, const char *name)
{
    char host[128];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (!colon)
        return 0;
    *colon = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    double v = 0;
    static char page[256 * 1024];
    size_t len = 0;
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
        ssize_t n;
        while (len < sizeof page - 1 && (n = read(fd, page + len, sizeof page - 1 - len)) > 0)
            len += (size_t)n;
    }
    close(fd);
    page[len] = '\0';
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    char *at = strstr(page, key);
    if (at)
        v = strtod(at + strlen(key), NULL);
    return v;
}

/* ---- appends ---- */

static void slot_fill(nb_slot_t *s, uint32_t events, uint32_t bytes)
{
    for (uint32_t i = 0; i < events; i++) {
        evs_event_t *e = &s->events[i];
        bench_id_fresh(e->id);
        e->type = NB_EVENT_TYPE;
        e->data = bench_payload(bytes);
        e->data_len = bytes;
    }
    s->sa.stream = s->stream;
    s->sa.expected_version = s->version < 0 ? EVS_EXPECT_NO_STREAM : s->version;
    s->sa.events = s->events;
    s->sa.event_count = events;
}

static void append_done(void *ctx, int status, const evs_append_result_t *res);

static int slot_send(nb_slot_t *s)
{
    const nb_opts_t *o = run.o;
    slot_fill(s, o->events, o->event_bytes);
    s->sent_ns = bench_now_ns();
    atomic_store(&s->busy, true);
    atomic_fetch_add(&s->conn->inflight, 1);
    int rc = evs_append_async(s->conn->evs, &s->sa, 1, append_done, s);
    if (rc) {
        atomic_fetch_sub(&s->conn->inflight, 1);
        atomic_store(&s->busy, false);
    }
    return rc;
}

static void append_done(void *ctx, int status, const evs_append_result_t *res)
{
    nb_slot_t *s = ctx;
    nb_conn_t *c = s->conn;
    uint64_t now = bench_now_ns();
    if (status == 0) {
        hist_add(&c->hist, now - s->sent_ns);
        c->appends_ok++;
        c->events_ok += s->sa.event_count;
        s->version = res->last_versions[0];
    } else {
        c->errors++;
        if (c->errors <= 3)
            fprintf(stderr, "evstore-bench: append failed: %s\n", evs_strerror(status));
    }
    atomic_fetch_sub(&c->inflight, 1);
    atomic_store(&s->busy, false);
    /* Closed-loop mode refills from here; paced mode from the pacer. */
    if (run.o->rate == 0 && status == 0 && !atomic_load(&run.stop) && now < run.end_ns)
        slot_send(s);
}

static int conns_open(const nb_opts_t *o, const char *server)
{
    run.conns = calloc(o->connections, sizeof *run.conns);
    if (!run.conns)
        return -ENOMEM;
    char host[128];
    snprintf(host, sizeof host, "%s", server);
    char *colon = strrchr(host, ':');
    if (!colon)
        return -EINVAL;
    *colon = '\0';
    for (uint32_t i = 0; i < o->connections; i++) {
        nb_conn_t *c = &run.conns[i];
        c->index = i;
        evs_options_t eo;
        evs_options_default(&eo);
        eo.host = host;
        eo.port = (uint16_t)atoi(colon + 1);
        eo.client_name = "evstore-bench";
        eo.inflight_max = o->inflight + 1;
        int rc = evs_connect(&eo, &c->evs);
        if (rc) {
            fprintf(stderr, "evstore-bench: connect %s: %s\n", server, evs_strerror(rc));
            return rc;
        }
        c->slots = calloc(o->inflight, sizeof *c->slots);
        if (!c->slots)
            return -ENOMEM;
        for (uint32_t k = 0; k < o->inflight; k++) {
            nb_slot_t *s = &c->slots[k];
            s->conn = c;
            s->index = k;
            s->version = -1;
            snprintf(s->stream, sizeof s->stream, "order-%u-%u-%llx", i, k,
                     (unsigned long long)(bench_rand() & 0xffffff));
            s->events = calloc(o->events, sizeof *s->events);
            if (!s->events)
                return -ENOMEM;
        }
    }
    return 0;
}

static void conns_close(const nb_opts_t *o)
{
    if (!run.conns)
        return;
    for (uint32_t i = 0; i < o->connections; i++) {
        nb_conn_t *c = &run.conns[i];
        if (c->evs)
            evs_close(c->evs);
        for (uint32_t k = 0; c->slots && k < o->inflight; k++)
            free(c->slots[k].events);
        free(c->slots);
    }
    free(run.conns);
    run.conns = NULL;
}

static uint64_t total_inflight(const nb_opts_t *o)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < o->connections; i++)
        n += atomic_load(&run.conns[i].inflight);
    return n;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Paced mode: one append every 1/rate seconds, round robin over the slots
 * that are free (a slot still in flight is skipped: the load stays open). */
static void pace(const nb_opts_t *o)
{
    uint64_t gap = (uint64_t)(1e9 / o->rate), next = run.start_ns;
    uint64_t k = 0, total = (uint64_t)o->connections * o->inflight;
    while (next < run.end_ns) {
        sleep_until(next);
        for (uint64_t tries = 0; tries < total; tries++, k++) {
            nb_conn_t *c = &run.conns[k % o->connections];
            nb_slot_t *s = &c->slots[(k / o->connections) % o->inflight];
            if (!atomic_load(&s->busy) && slot_send(s) == 0) {
                k++;
                break;
            }
        }
        next += gap;
    }
}

static void report(const nb_opts_t *o, double secs, const nb_server_t *srv, double cpu,
                   double syncs, double writes)
{
    hist_t all = {0};
    uint64_t events = 0, appends = 0, errors = 0;
    for (uint32_t i = 0; i < o->connections; i++) {
        hist_merge(&all, &run.conns[i].hist);
        events += run.conns[i].events_ok;
        appends += run.conns[i].appends_ok;
        errors += run.conns[i].errors;
    }
    printf("evstored append: %u connections x %u in flight x %u events of %u bytes, durability %s,"
           " %.1f s%s\n", o->connections, o->inflight, o->events, o->event_bytes, o->durability,
           secs, o->rate ? " (paced)" : "");
    if (o->rate)
        printf("  offered rate      %.0f appends/s\n", o->rate);
    printf("  events/s      %12.0f   (%" PRIu64 " events)\n", (double)events / secs, events);
    printf("  payload MB/s  %12.2f\n", (double)events * o->event_bytes / secs / 1e6);
    printf("  appends/s     %12.0f   (%" PRIu64 " appends, %" PRIu64 " errors)\n",
           (double)appends / secs, appends, errors);
    printf("  latency us    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
           hist_quantile(&all, 0.5) / 1e3, hist_quantile(&all, 0.9) / 1e3,
           hist_quantile(&all, 0.99) / 1e3, hist_quantile(&all, 0.999) / 1e3, all.max / 1e3);
    if (srv->pid > 0)
        printf("  server CPU    %.2f s (%.0f%% of one core)\n", cpu, 100 * cpu / secs);
    if (writes > 0)
        printf("  fdatasyncs/s  %12.0f   (%.1f events per group commit)\n", syncs / secs,
               (double)events / writes);
}

static int bench_append(const nb_opts_t *o)
{
    nb_server_t srv = {0};
    const char *addr = o->server;
    int rc = 0;
    if (!addr) {
        rc = server_start(o, &srv);
        if (rc)
            return rc;
        addr = srv.listen;
    }
    run.o = o;
    rc = conns_open(o, addr);
    double cpu0 = srv.pid > 0 ? proc_cpu_seconds(srv.pid) : 0;
    double syncs0 = srv.pid ? metric_value(srv.metrics, "evstore_fdatasyncs_total") : 0;
    double writes0 = srv.pid ? metric_value(srv.metrics, "evstore_writes_total") : 0;
    if (rc == 0) {
        run.start_ns = bench_now_ns();
        run.end_ns = run.start_ns + (uint64_t)(o->seconds * 1e9);
        if (o->rate > 0) {
            pace(o);
        } else {
            for (uint32_t i = 0; i < o->connections && rc == 0; i++)
                for (uint32_t k = 0; k < o->inflight && rc == 0; k++)
                    rc = slot_send(&run.conns[i].slots[k]);
            sleep_until(run.end_ns);
        }
        atomic_store(&run.stop, true);
        uint64_t deadline = bench_now_ns() + (uint64_t)(NB_DRAIN_SECONDS_MAX * 1e9);
        while (total_inflight(o) > 0 && bench_now_ns() < deadline)
            usleep(1000);
        double secs = (double)(bench_now_ns() - run.start_ns) / 1e9;
        double cpu = srv.pid > 0 ? proc_cpu_seconds(srv.pid) - cpu0 : 0;
        double syncs = srv.pid ? metric_value(srv.metrics, "evstore_fdatasyncs_total") - syncs0 : 0;
        double writes = srv.pid ? metric_value(srv.metrics, "evstore_writes_total") - writes0 : 0;
        report(o, secs, &srv, cpu, syncs, writes);
    }
    conns_close(o);
    server_stop(&srv, o->keep_data);
    return rc;
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evstore-bench append [options]\n"
            "\n"
            "Appends to evstored over loopback with libevstore and reports events/s,\n"
            "latency percentiles, server CPU and group commits. Starts its own evstored\n"
            "(on a temporary data directory, removed afterwards) unless --server is given.\n"
            "\n"
            "  --server HOST:PORT       use a running evstored (no CPU/fdatasync figures)\n"
            "  --evstored PATH          the server binary (default: next to this program,\n"
            "                           ../server/evstored)\n"
            "  --data DIR               the started server's data directory\n"
            "  --durability MODE        always | interval[:MS] | none (default always)\n"
            "  --connections N          default 1 (max %u)\n"
            "  --inflight N             appends in flight per connection, default 8 (max %u)\n"
            "  --events-per-append N    default 100 (max %u)\n"
            "  --event-bytes N          data bytes per event, default 256\n"
            "  --seconds S              default 5 (max %.0f)\n"
            "  --rate R                 paced: R appends/s in total instead of closed loop\n"
            "  --keep-data              keep the started server's data directory\n",
            NB_CONNECTIONS_MAX, NB_INFLIGHT_MAX, NB_EVENTS_PER_APPEND_MAX, NB_SECONDS_MAX);
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

static int parse_args(int argc, char **argv, nb_opts_t *o)
{
    enum { O_SERVER = 256, O_EVSTORED, O_DATA, O_DUR, O_CONNS, O_INFLIGHT, O_EVENTS, O_BYTES,
           O_SECONDS, O_RATE, O_KEEP, O_HELP };
    static const struct option opts[] = {
        {"server", 1, 0, O_SERVER}, {"evstored", 1, 0, O_EVSTORED}, {"data", 1, 0, O_DATA},
        {"durability", 1, 0, O_DUR}, {"connections", 1, 0, O_CONNS},
        {"inflight", 1, 0, O_INFLIGHT}, {"events-per-append", 1, 0, O_EVENTS},
        {"event-bytes", 1, 0, O_BYTES}, {"seconds", 1, 0, O_SECONDS}, {"rate", 1, 0, O_RATE},
        {"keep-data", 0, 0, O_KEEP}, {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    int opt, rc = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case O_SERVER: o->server = optarg; break;
        case O_EVSTORED: o->evstored = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_DUR: o->durability = optarg; break;
        case O_CONNS: rc = parse_u32("--connections", optarg, 1, NB_CONNECTIONS_MAX, &o->connections); break;
        case O_INFLIGHT: rc = parse_u32("--inflight", optarg, 1, NB_INFLIGHT_MAX, &o->inflight); break;
        case O_EVENTS: rc = parse_u32("--events-per-append", optarg, 1, NB_EVENTS_PER_APPEND_MAX, &o->events); break;
        case O_BYTES: rc = parse_u32("--event-bytes", optarg, 0, NB_EVENT_BYTES_MAX, &o->event_bytes); break;
        case O_SECONDS:
            o->seconds = strtod(optarg, NULL);
            if (!(o->seconds > 0 && o->seconds <= NB_SECONDS_MAX))
                rc = -1, fprintf(stderr, "evstore-bench: --seconds in (0, %.0f]\n", NB_SECONDS_MAX);
            break;
        case O_RATE:
            o->rate = strtod(optarg, NULL);
            if (!(o->rate > 0 && o->rate <= 1e6))
                rc = -1, fprintf(stderr, "evstore-bench: --rate in (0, 1000000]\n");
            break;
        case O_KEEP: o->keep_data = true; break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "append") != 0) {
        if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        usage(stderr);
        return 2;
    }
    static char self_dir[PATH_MAX], evstored[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self_dir, sizeof self_dir - 1);
    if (n > 0) {
        self_dir[n] = '\0';
        char *slash = strrchr(self_dir, '/');
        if (slash)
            *slash = '\0';
    }
    snprintf(evstored, sizeof evstored, "%s/../server/evstored", self_dir);
    nb_opts_t o = {.evstored = evstored, .durability = "always", .connections = 1, .inflight = 8,
                   .events = 100, .event_bytes = 256, .seconds = 5};
    if (parse_args(argc - 1, argv + 1, &o) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    if (bench_payload_init(NB_PAYLOAD_POOL_BYTES, o.event_bytes) != 0)
        return 1;
    int rc = bench_append(&o);
    bench_payload_free();
    return rc == 0 ? 0 : 1;
}
