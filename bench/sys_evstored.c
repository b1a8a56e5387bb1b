/* sys_evstored.c -- the evstored driver: starts evstored on 127.0.0.1:0 with
 * a temporary data directory and the requested durability (or uses a running
 * server), appends through libevstore with evs_append_async (completions on
 * the connection's reader thread, which sends the slot's next append), and
 * reads with evs_read. Server figures come from /proc and /metrics. */
#define _GNU_SOURCE
#include "bench_proc.h"
#include "bench_sys.h"
#include "evstore.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define EVSD_METRICS_TIMEOUT_MS 2000
#define EVSD_METRICS_PAGE_BYTES (256u * 1024)

double bench_metric(const char *addr, const char *name)
{
    char host[128];
    uint16_t port;
    if (!addr || util_hostport(addr, host, sizeof host, &port, false) != 0)
        return BENCH_NA;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return BENCH_NA;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return BENCH_NA;
    struct timeval tv = {.tv_sec = EVSD_METRICS_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static char page[EVSD_METRICS_PAGE_BYTES];
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
    return at ? strtod(at + strlen(key), NULL) : BENCH_NA;
}

static int evsd_start(bench_sys_t *sys)
{
    if (sys->server_addr) {
        snprintf(sys->addr, sizeof sys->addr, "%s", sys->server_addr);
        return 0;
    }
    int rc = bench_mkdtemp(sys->tmp_root, "evstored", sys->dir, sizeof sys->dir);
    if (rc) {
        fprintf(stderr, "evstore-bench: evstored: cannot make a directory in %s: %s\n",
                sys->tmp_root, strerror(-rc));
        return rc;
    }
    char log[PATH_MAX + 16];
    snprintf(log, sizeof log, "%s.log", sys->dir);
    char *argv[] = {(char *)sys->evstored, "--data", sys->dir, "--listen", "127.0.0.1:0",
                    "--metrics", "127.0.0.1:0", "--durability", sys->durability, "--quiet", NULL};
    int out = -1;
    sys->pid = bench_spawn(argv, &out, log, NULL);
    if (sys->pid < 0) {
        rc = sys->pid;
        sys->pid = 0;
        return rc;
    }
    char line[512];
    rc = proc_read_line(out, line, sizeof line, (int)(BENCH_START_SECONDS_MAX * 1000));
    close(out);
    if (rc == 0 && sscanf(line, "evstored ready listen=%127s metrics=%127s", sys->addr,
                          sys->metrics) != 2)
        rc = -EPROTO;
    if (rc) {
        fprintf(stderr, "evstore-bench: %s did not start (%s; see %s)\n", sys->evstored,
                strerror(-rc), log);
        bench_stop(sys->pid);
        sys->pid = 0;
        return rc;
    }
    unlink(log);
    sys->syncs_each_ack = strcmp(sys->durability, "always") == 0;
    snprintf(sys->note, sizeof sys->note,
             "evstored --durability %s: %s; expected version exact on every append",
             sys->durability,
             sys->syncs_each_ack ? "acknowledged after fdatasync (group commit)"
                                 : "acknowledged before fdatasync");
    return 0;
}

static void evsd_stop(bench_sys_t *sys)
{
    bench_stop(sys->pid);
    sys->pid = 0;
    if (sys->dir[0] && !sys->keep_data)
        bench_rmtree(sys->dir);
    else if (sys->dir[0])
        printf("evstore-bench: evstored data kept in %s\n", sys->dir);
    sys->dir[0] = '\0';
}

static int evsd_conn_open(bench_sys_t *sys, bench_conn_t *c)
{
    char host[128];
    uint16_t port;
    if (util_hostport(sys->addr, host, sizeof host, &port, false) != 0)
        return -EINVAL;
    evs_options_t eo;
    evs_options_default(&eo);
    eo.host = host;
    eo.port = port;
    eo.client_name = "evstore-bench";
    eo.inflight_max = c->run->load.inflight + 1;
    evs_conn_t *evs;
    int rc = evs_connect(&eo, &evs);
    if (rc) {
        fprintf(stderr, "evstore-bench: connect %s: %s\n", sys->addr, evs_strerror(rc));
        return rc;
    }
    c->drv = evs;
    return 0;
}

static void evsd_conn_close(bench_sys_t *sys, bench_conn_t *c)
{
    (void)sys;
    evs_flush(c->drv, (int)(BENCH_DRAIN_SECONDS_MAX * 1000));
    evs_close(c->drv);
    c->drv = NULL;
}

typedef struct {
    evs_event_t *events;
    evs_stream_append_t sa;
} evsd_slot_t;

static int evsd_slot_init(bench_conn_t *c, bench_slot_t *s)
{
    evsd_slot_t *d = calloc(1, sizeof *d);
    if (!d || !(d->events = calloc(c->run->load.events, sizeof *d->events))) {
        free(d);
        return -ENOMEM;
    }
    s->drv = d;
    return 0;
}

static void evsd_slot_free(bench_conn_t *c, bench_slot_t *s)
{
    (void)c;
    evsd_slot_t *d = s->drv;
    if (d)
        free(d->events);
    free(d);
    s->drv = NULL;
}

static void evsd_append_cb(void *ctx, int status, const evs_append_result_t *res)
{
    bench_slot_t *s = ctx;
    bench_append_done(s, status, status == 0 ? res->last_versions[0] : s->version);
}

static int evsd_append_send(bench_conn_t *c, bench_slot_t *s)
{
    evsd_slot_t *d = s->drv;
    const bench_load_t *l = &c->run->load;
    for (uint32_t i = 0; i < l->events; i++) {
        evs_event_t *e = &d->events[i];
        memcpy(e->id, s->ids[i], 16);
        e->type = BENCH_EVENT_TYPE;
        e->data = s->data[i];
        e->data_len = l->event_bytes;
    }
    d->sa.stream = s->stream;
    d->sa.expected_version = s->version < 0 ? EVS_EXPECT_NO_STREAM : s->version;
    d->sa.events = d->events;
    d->sa.event_count = l->events;
    return evs_append_async(c->drv, &d->sa, 1, evsd_append_cb, s);
}

/* Reads `stream` from `from` page by page until its end or deadline_ns. */
static int evsd_read(bench_conn_t *c, const char *stream, uint64_t deadline_ns, uint64_t *events,
                     uint64_t *bytes)
{
    evs_read_t req = {.stream = stream, .max_count = BENCH_READ_PAGE_EVENTS};
    for (;;) {
        evs_read_result_t res;
        int rc = evs_read(c->drv, &req, &res);
        if (rc) {
            fprintf(stderr, "evstore-bench: read %s: %s\n", stream, evs_strerror(rc));
            return rc;
        }
        *events += res.count;
        for (size_t i = 0; i < res.count; i++)
            *bytes += res.events[i].data_len;
        bool end = res.end || res.count == 0;
        req.from = res.next;
        evs_read_result_free(&res);
        if (end || util_mono_ns() >= deadline_ns)
            return 0;
    }
}

static int evsd_read_stream(bench_conn_t *c, const char *stream, uint64_t *events, uint64_t *bytes)
{
    return evsd_read(c, stream, UINT64_MAX, events, bytes);
}

static int evsd_read_all(bench_conn_t *c, uint64_t deadline_ns, uint64_t *events, uint64_t *bytes)
{
    return evsd_read(c, "$all", deadline_ns, events, bytes);
}

static void evsd_sample(bench_sys_t *sys, bench_srv_sample_t *out)
{
    if (sys->pid <= 0)
        return; /* a server we did not start: no figures */
    out->cpu_s = bench_tree_cpu_seconds(sys->pid);
    out->fdatasyncs = bench_metric(sys->metrics, "evstore_fdatasyncs_total");
    out->writes = bench_metric(sys->metrics, "evstore_writes_total");
    out->bytes_written = bench_metric(sys->metrics, "evstore_bytes_written_total");
}

const bench_driver_t bench_driver_evstored = {
    .name = "evstored",
    .start = evsd_start,
    .stop = evsd_stop,
    .conn_open = evsd_conn_open,
    .conn_close = evsd_conn_close,
    .slot_init = evsd_slot_init,
    .slot_free = evsd_slot_free,
    .append_send = evsd_append_send,
    .poll = NULL,
    .read_stream = evsd_read_stream,
    .read_all = evsd_read_all,
    .sample = evsd_sample,
};
