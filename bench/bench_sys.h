/* bench_sys.h -- one workload, many systems. A system (evstored or a peer:
 * PostgreSQL, Redis Streams, NATS JetStream) is a driver: it starts its
 * server on loopback in a temporary directory, opens client connections,
 * sends appends with an expected-version check and reports their completion,
 * reads, and stops. The engine (bench_engine.c) drives any of them with the
 * same load: connections x appends in flight x events per append x event
 * size, closed loop or paced, bounded in time, and measures the same way.
 *
 * Adding a system: write a bench_driver_t (see sys_*.c) and list it in
 * bench_systems.c. Adding a scenario (subscriptions, groups, the OMS saga):
 * a function beside bench_append_run() that fills a bench_result_t, and a
 * line in the suite (bench_suite.c). */
#ifndef EVSTORE_BENCH_SYS_H
#define EVSTORE_BENCH_SYS_H

#include "bench_util.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_CONNECTIONS_MAX 1024u
#define BENCH_INFLIGHT_MAX 256u
#define BENCH_EVENTS_PER_APPEND_MAX 1000u
#define BENCH_EVENT_BYTES_MAX (1024u * 1024)
#define BENCH_SECONDS_MAX 600.0
#define BENCH_DRAIN_SECONDS_MAX 30.0   /* wait for the appends in flight at the end */
#define BENCH_START_SECONDS_MAX 60.0   /* a server's start, initdb included */
#define BENCH_POLL_MS_MAX 100          /* one wait for completions */
#define BENCH_READ_PAGE_EVENTS 4096u   /* events per read request, every system */
#define BENCH_EVENT_TYPE "OrderPlaced"
#define BENCH_NA (-1.0)                /* a figure a system cannot give */

/* The load of one run. */
typedef struct {
    uint32_t connections;
    uint32_t inflight;    /* appends in flight per connection */
    uint32_t events;      /* events per append (one batch) */
    uint32_t event_bytes; /* data bytes per event */
    double seconds;
    double rate;          /* > 0: paced, appends/s in total; 0: closed loop */
} bench_load_t;

typedef struct bench_conn_s bench_conn_t;
typedef struct bench_run_s bench_run_t;
typedef struct bench_sys_s bench_sys_t;

/* One append slot: it owns a stream and has at most one append in flight. */
typedef struct {
    bench_conn_t *conn;
    uint32_t index;
    char stream[64];        /* "order-<k>" with a per-run tag */
    int64_t version;        /* the stream's last version, -1 before the first event;
                               for NATS: the stream sequence of the subject's last message */
    uint64_t sent_ns;
    _Atomic bool busy;
    uint8_t (*ids)[16];     /* ids of the events of the append being sent */
    const void **data;      /* their payloads (event_bytes each) */
    void *drv;              /* driver state of the slot */
    uint32_t acks_pending;  /* driver use (one ack per event) */
    int status_pending;     /* driver use */
    int64_t version_pending;/* driver use */
} bench_slot_t;

struct bench_conn_s {
    bench_run_t *run;
    uint32_t index;
    bench_slot_t *slots;
    void *drv;              /* driver connection */
    hist_t hist;            /* append latency, ns */
    uint64_t events_ok, appends_ok, errors;
    _Atomic uint32_t inflight;
    pthread_t thread;
    bool thread_started;
};

struct bench_run_s {
    bench_sys_t *sys;
    bench_load_t load;
    bench_conn_t *conns;
    bool manual;            /* no refill from completions (stream preparation) */
    _Atomic bool stop;
    uint64_t start_ns, end_ns;
};

/* Server-side figures sampled before and after a run. */
typedef struct {
    double cpu_s;        /* server process(es) user + system CPU */
    double fdatasyncs;   /* BENCH_NA when the system does not say */
    double writes;
    double bytes_written;
} bench_srv_sample_t;

typedef struct {
    const char *name;        /* "evstored", "postgresql", "redis", "nats" */
    /* Starts the server for sys (sys->tmp_root, sys->durability...). 0, or a
     * negative errno after printing why; the suite then skips the system. */
    int (*start)(bench_sys_t *sys);
    void (*stop)(bench_sys_t *sys);
    int (*conn_open)(bench_sys_t *sys, bench_conn_t *c);
    void (*conn_close)(bench_sys_t *sys, bench_conn_t *c);
    /* Per-slot driver state (may be NULL). */
    int (*slot_init)(bench_conn_t *c, bench_slot_t *s);
    void (*slot_free)(bench_conn_t *c, bench_slot_t *s);
    /* Sends the append of s (s->ids, s->data, s->stream, s->version are set).
     * Its completion is reported with bench_append_done(), from any thread.
     * Returns 0, or an error (then no completion comes). */
    int (*append_send)(bench_conn_t *c, bench_slot_t *s);
    /* Waits at most timeout_ms for completions on c and reports them; called
     * only from c's thread. NULL when completions come on the driver's own
     * threads (evstored's reader threads). 0 or a negative error. */
    int (*poll)(bench_conn_t *c, int timeout_ms);
    /* Reads a whole stream from its first event. NULL: not supported. */
    int (*read_stream)(bench_conn_t *c, const char *stream, uint64_t *events, uint64_t *bytes);
    /* Reads the global order from its start, pages of BENCH_READ_PAGE_EVENTS,
     * until its end or deadline_ns. NULL: the system has no global order. */
    int (*read_all)(bench_conn_t *c, uint64_t deadline_ns, uint64_t *events, uint64_t *bytes);
    void (*sample)(bench_sys_t *sys, bench_srv_sample_t *out);
} bench_driver_t;

struct bench_sys_s {
    const bench_driver_t *drv;
    char label[64];          /* "evstored/always", "postgresql", ... */
    char durability[32];     /* evstored: always | interval | none; peers: their label */
    bool syncs_each_ack;     /* every acknowledged write is fdatasync'd first */
    char note[512];          /* what durability was in force, how the check is done */
    const char *tmp_root;    /* where temporary data directories go */
    const char *evstored;    /* path of the evstored binary */
    const char *server_addr; /* evstored: use this running server (HOST:PORT) */
    bool keep_data;
    char dir[PATH_MAX];
    pid_t pid;
    uint16_t port;
    char addr[128], metrics[128];
    void *priv;
};

/* The result of one run of one scenario on one system. */
typedef struct {
    char system[64];
    char scenario[32];       /* append | append-paced | read-stream | read-all */
    char durability[32];
    bool syncs_each_ack;
    bench_load_t load;
    double seconds;          /* measured */
    uint64_t events, ops, errors;
    double events_per_s, mb_per_s, ops_per_s;
    double lat_us[5];        /* p50 p90 p99 p99.9 max of an op (append or read) */
    double cpu_s;            /* server CPU in the run */
    double fdatasyncs_per_s; /* BENCH_NA for peers */
    double events_per_sync;  /* BENCH_NA for peers */
    double disk_mb_per_s;    /* evstored: bytes written by the server; else BENCH_NA */
    int repeat_of;           /* runs the median was taken from */
} bench_result_t;

/* ---- engine (bench_engine.c) ---- */

/* Reports the completion of s's append: status 0 (then last_version is the
 * stream's new version) or an error code. In a closed-loop run it sends the
 * slot's next append at once. Thread-safe across connections; the calls for
 * one connection must not run concurrently. */
void bench_append_done(bench_slot_t *s, int status, int64_t last_version);

/* Fills the slot's ids and payload pointers and sends its append. */
int bench_slot_send(bench_slot_t *s);

/* One append run of load on sys (already started). Fills *res. 0 or error. */
int bench_append_run(bench_sys_t *sys, const bench_load_t *load, bench_result_t *res);

/* Read runs: one stream of stream_events events read whole, again and again
 * for load->seconds; and the global order from its start. res->events_per_s
 * is what was read. -ENOTSUP when the system cannot. */
int bench_read_stream_run(bench_sys_t *sys, const bench_load_t *load, uint32_t stream_events,
                          bench_result_t *res);
int bench_read_all_run(bench_sys_t *sys, const bench_load_t *load, bench_result_t *res);

/* Prints one result as a few human lines. */
void bench_result_print(const bench_result_t *r);

/* ---- systems (bench_systems.c) ---- */

/* The driver named name ("evstored", "postgresql", "redis", "nats"), or NULL
 * when it is unknown or was not compiled in. */
const bench_driver_t *bench_driver_find(const char *name);
/* Names of the compiled-in drivers, comma-separated. */
const char *bench_driver_names(void);

/* Shared by drivers: reads one counter from an HTTP /metrics at addr
 * (HOST:PORT); BENCH_NA when it cannot. Bounded by a 2 s timeout. */
double bench_metric(const char *addr, const char *name);

#endif
