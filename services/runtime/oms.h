/* oms.h -- the service runtime shared by every OMS service.
 *
 * A service is a set of handlers fed by one persistent subscription group
 * on evstored. oms_service_run() creates the group if it is missing, joins
 * it, and pulls events; each event goes to one of `workers` worker threads,
 * chosen by the event's key (the part of its stream name after the first
 * '-', so "payment-42" and "saga-42" share key "42"): the events of one
 * order are handled in order, by one thread, while different orders run in
 * parallel. A handler returns OMS_OK (the event is acked), OMS_RETRY (a
 * transient error: nacked for redelivery; the group parks it after its
 * max_retries) or OMS_PARK (it can never succeed: parked at once, with the
 * handler's reason).
 *
 * Handlers must be idempotent: delivery is at least once. The tools for it
 * are deterministic event ids (oms_event_id(): a retried append of the same
 * step is recognised by the store and writes nothing) and expected versions
 * (a step that must happen once per order appends with
 * EVS_EXPECT_NO_STREAM or an exact version, and a EVS_EWRONG_VERSION answer
 * means it happened already).
 *
 * Every service serves /metrics (Prometheus text) and /health on its
 * metrics port; the runtime counts handled events by type and result,
 * handler latency, retries and parks, and the service adds its own series
 * through oms_metrics_*(). SIGINT and SIGTERM stop the service gracefully:
 * no new events are taken, the events being handled finish and are acked,
 * then everything is closed.
 *
 * Configuration: every service takes the common flags below (each also
 * from an environment variable), plus its own (oms_opt_t).
 */
#ifndef OMS_H
#define OMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== limits and defaults ============================================== */

#define OMS_WORKERS_DEFAULT 32u  /* handlers mostly wait for durable appends: many
                                   in parallel is what fills a group commit */
#define OMS_WORKERS_MAX 64u
#define OMS_INFLIGHT_MAX_DEFAULT 512u     /* unacked events held by the service */
#define OMS_ACK_TIMEOUT_MS_DEFAULT 10000u /* the group's redelivery timeout */
#define OMS_MAX_RETRIES_DEFAULT 5u        /* deliveries after the first, then parked */
#define OMS_TICK_MS_DEFAULT 100u          /* how often each worker's tick runs */
#define OMS_STORE_RETRY_MS_MAX 30000      /* the store's requests retry a lost store for
                                             at most this long (evs retry_ms_max) */
#define OMS_NAME_BYTES_MAX 128u           /* service, group, stream and key names */
#define OMS_REASON_BYTES_MAX 256u         /* a handler's park reason */
#define OMS_OPTS_MAX 32u                  /* service-specific options */

/* Default ports (the metrics port of a service; oms-order serves its API
 * and /metrics on OMS_HTTP_PORT_DEFAULT). */
#define OMS_HTTP_PORT_DEFAULT 8080
#define OMS_METRICS_PORT_SAGA 9201
#define OMS_METRICS_PORT_PAYMENT 9202
#define OMS_METRICS_PORT_INVENTORY 9203
#define OMS_METRICS_PORT_SHIPPING 9204
#define OMS_METRICS_PORT_NOTIFICATION 9205
#define OMS_METRICS_PORT_PROJECTIONS 9206

/* ==== metrics =========================================================== */

/* A registry of counters, gauges and histograms rendered in the Prometheus
 * text format. Series are created once (at start-up) and updated from any
 * thread without locks (atomics). A series is a name plus a fixed label set
 * given as text, e.g. "type=\"OrderPlaced\"" (NULL or "": no labels).
 * Creating the same name and labels twice returns the same series. Every
 * series of the registry also gets the label service="<service>". */
typedef struct oms_metrics oms_metrics_t;
typedef struct oms_counter oms_counter_t;
typedef struct oms_gauge oms_gauge_t;
typedef struct oms_histogram oms_histogram_t;

#define OMS_METRICS_SERIES_MAX 1024u
#define OMS_METRICS_LABELS_MAX 8u /* labels of one series, service="..." not counted */

/* Creates an empty registry for service. Returns NULL on ENOMEM. */
oms_metrics_t *oms_metrics_new(const char *service);
void oms_metrics_free(oms_metrics_t *m);

/* Finds or creates a series. help is the # HELP text of the family (the
 * first one given wins). Returns NULL when the registry is full
 * (OMS_METRICS_SERIES_MAX), on ENOMEM, or when the series could not be
 * rendered as valid Prometheus text: name is not a metric name or is taken
 * by another kind; labels is not a label set in the format's own syntax
 * (quotes, backslashes and newlines in values escaped: see prom.h), has
 * more than OMS_METRICS_LABELS_MAX labels, or names service (or le, for a
 * histogram). Label values that are not valid UTF-8 are shown with U+FFFD.
 * The update functions accept NULL and do nothing, so a service never fails
 * for want of a metric. */
oms_counter_t *oms_metrics_counter(oms_metrics_t *m, const char *name, const char *help,
                                   const char *labels);
oms_gauge_t *oms_metrics_gauge(oms_metrics_t *m, const char *name, const char *help,
                               const char *labels);
/* Buckets (seconds): 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5
 * 1 2.5 5 10 30 60, +Inf. */
oms_histogram_t *oms_metrics_histogram(oms_metrics_t *m, const char *name, const char *help,
                                       const char *labels);

void oms_counter_add(oms_counter_t *c, uint64_t n);
void oms_gauge_set(oms_gauge_t *g, int64_t v);
void oms_gauge_add(oms_gauge_t *g, int64_t delta);
void oms_histogram_observe(oms_histogram_t *h, double seconds);

/* Renders the whole registry. Returns a malloc'd NUL-terminated text (the
 * caller frees it), or NULL on ENOMEM. */
char *oms_metrics_render(oms_metrics_t *m);

/* Serves GET /metrics (the registry) and GET /health ("ok") on
 * 127.0.0.1:port (or host when not NULL) with libmicrohttpd in its own
 * thread. port 0 picks a free port; *bound_port (may be NULL) gets it.
 * Returns a handle for oms_metrics_http_stop(), or NULL with a message on
 * stderr (e.g. the port is in use). */
typedef struct oms_metrics_http oms_metrics_http_t;
oms_metrics_http_t *oms_metrics_http_start(oms_metrics_t *m, const char *host, uint16_t port,
                                           uint16_t *bound_port);
void oms_metrics_http_stop(oms_metrics_http_t *h);

/* ==== configuration ==================================================== */

/* A service-specific option: --name VALUE (or the environment variable env
 * when the flag is absent). *value keeps the default until set; it points
 * into argv or the environment. flag true: --name takes no value and sets
 * *value to "1". */
typedef struct {
    const char *name;  /* without the leading "--" */
    const char *env;   /* may be NULL */
    const char *help;
    const char **value;
    bool flag;
} oms_opt_t;

typedef struct {
    char service[OMS_NAME_BYTES_MAX];   /* "payment" */
    char store_host[OMS_NAME_BYTES_MAX];/* --store HOST:PORT, OMS_STORE; 127.0.0.1:7411 */
    uint16_t store_port;
    uint32_t store_retry_ms;             /* how long a request retries a lost store
                                            (OMS_STORE_RETRY_MS_MAX; 0: not at all);
                                            an HTTP service wants a shorter time */
    char metrics_host[OMS_NAME_BYTES_MAX]; /* --metrics HOST:PORT, OMS_METRICS_<SERVICE> */
    uint16_t metrics_port;               /* 0: any free port; the ready line names it */
    bool metrics_off;                    /* --metrics off */
    uint32_t workers;                    /* --workers, OMS_WORKERS */
    uint32_t inflight_max;               /* --max-inflight, OMS_MAX_INFLIGHT */
    uint32_t ack_timeout_ms;             /* --ack-timeout-ms */
    uint32_t max_retries;                /* --max-retries */
    uint32_t tick_ms;                    /* --tick-ms */
} oms_config_t;

/* Fills *cfg with the defaults for service (metrics on 127.0.0.1:
 * default_metrics_port), then applies the environment and argv: the common
 * flags above and opts[0..opt_count). --help prints every flag and exits 0.
 * Returns 0, or -EINVAL with a message on stderr (unknown flag, bad value):
 * the caller exits with status 2. */
int oms_config_parse(oms_config_t *cfg, const char *service, uint16_t default_metrics_port,
                     int argc, char **argv, const oms_opt_t *opts, size_t opt_count);

/* Whether the user set a common option: --name in argv (either form) or
 * its environment variable env (may be NULL). A service whose best default
 * differs from the runtime's applies its own when this is false. */
bool oms_config_given(int argc, char **argv, const char *name, const char *env);

/* Parses "HOST:PORT" (port 0 allowed when allow_zero) into host (cap
 * bytes) and *port. Returns 0 or -EINVAL with a message naming the option
 * on stderr. */
int oms_parse_hostport(const char *name, const char *text, char *host, size_t host_cap,
                       uint16_t *port, bool allow_zero);

/* Parses a decimal uint32 option value in [min, max]. Returns 0 or -EINVAL
 * with a message naming the option on stderr. */
int oms_parse_u32(const char *name, const char *text, uint32_t min, uint32_t max, uint32_t *out);

/* Fills evs options for connecting to cfg's store, with client_name. */
void oms_store_options(const oms_config_t *cfg, const char *client_name, evs_options_t *opts);

/* ==== ids and keys ===================================================== */

/* The deterministic event id of a step: XXH128 of "<order_id>/<step>". The
 * same step of the same order always gets the same id, so a retried append
 * is recognised by the store. */
void oms_event_id(uint8_t id[EVS_ID_BYTES], const char *order_id, const char *step);

/* The key of a stream: the part after the first '-' ("" when there is
 * none). Returns a pointer into stream. */
const char *oms_stream_key(const char *stream);

/* A new random order id: 32 lowercase hex digits. out has 33 bytes. */
void oms_order_id_random(char out[33]);

/* Wall clock in nanoseconds (CLOCK_REALTIME) and a monotonic clock. */
int64_t oms_now_ns(void);
int64_t oms_mono_ns(void);

/* ==== the store, from a handler ======================================== */

/* The connection to evstored, shared by threads (evs_conn_t pipelines
 * requests from many threads, reconnects and retries by itself within
 * retry_ms_max: OMS_STORE_RETRY_MS_MAX here). */
typedef struct oms_store oms_store_t;

/* Connects to cfg's store. Returns 0 and *out, or an evs error. */
int oms_store_open(const oms_config_t *cfg, const char *client_name, oms_store_t **out);
void oms_store_close(oms_store_t *s);

/* evs_append() on the store's connection (which retries a lost store for
 * up to OMS_STORE_RETRY_MS_MAX; same event ids, so written once). Returns
 * as evs_append(): 0, EVS_EWRONG_VERSION (res->actual_version), ... */
int oms_append(oms_store_t *s, const evs_stream_append_t *streams, size_t stream_count,
               evs_append_result_t *res);

/* One-stream convenience for oms_append(): appends events[0..count) to
 * stream with expected_version. */
int oms_append_one(oms_store_t *s, const char *stream, int64_t expected_version,
                   const evs_event_t *events, size_t count, evs_append_result_t *res);

/* Calls fn(ctx, event) for every event of stream (a stream, "$ce-x" or
 * "$all") from `from`, forwards, page by page, until the end; stops early
 * when fn returns non-zero (and returns that). Reconnects like
 * oms_append(). A stream that does not exist has no events (returns 0).
 * *last_version (may be NULL) gets the stream's last version
 * (EVS_VERSION_NONE when empty). Returns 0, fn's value, or an evs error. */
typedef int (*oms_event_fn)(void *ctx, const evs_recorded_event_t *ev);
int oms_read_stream(oms_store_t *s, const char *stream, uint64_t from, oms_event_fn fn,
                    void *ctx, int64_t *last_version);

/* The underlying connection (it reconnects by itself): for calls the
 * helpers above do not cover. Never NULL. */
evs_conn_t *oms_store_conn(oms_store_t *s);

/* ==== protobuf payloads ================================================ */

/* Packs a protobuf-c message into a malloc'd buffer. Returns 0 and fills
 * data and len (free the data), or -ENOMEM. msg is a ProtobufCMessage pointer. */
int oms_pack(const void *msg, uint8_t **data, size_t *len);

/* Fills an evs_event_t with type (the message's short name, e.g.
 * "OrderPlaced", taken from its descriptor), id, and the packed message
 * (ev->data is malloc'd: free it with oms_event_free_data()). */
int oms_event_make(evs_event_t *ev, const void *msg, const char *order_id, const char *step);
void oms_event_free_data(evs_event_t *ev);

/* ==== the service ====================================================== */

typedef struct oms_service oms_service_t;
typedef struct oms_worker oms_worker_t;

typedef enum {
    OMS_OK = 0,    /* done: ack */
    OMS_RETRY = 1, /* transient failure: nack (retry) */
    OMS_PARK = 2,  /* permanent failure: park now (set a reason with oms_worker_reason()) */
} oms_result_t;

typedef struct {
    /* Optional: per-worker state, made once on the worker's thread before
     * any event; NULL from it is fine when there is nothing to keep. */
    void *(*worker_init)(oms_worker_t *w, void *svc_ctx);
    void (*worker_free)(void *state);
    /* Required: handles one event (its pointers are valid during the call).
     * retry_count is 0 on the first delivery. */
    oms_result_t (*handle)(oms_worker_t *w, void *state, const evs_recorded_event_t *ev,
                           uint32_t retry_count);
    /* Optional: runs on each worker every tick_ms (timeouts, flushes). */
    void (*tick)(oms_worker_t *w, void *state, int64_t now_mono_ns);
    /* Optional: runs once after the store is connected and the workers are
     * started, before the first event is pulled (seeding, resuming work
     * in flight). Non-zero stops the service with that status. */
    int (*start)(oms_service_t *svc, void *svc_ctx);
} oms_handler_t;

/* What the service reads: its group is created from these when missing. */
typedef struct {
    const char *group;          /* "oms-payment" */
    const char *source;         /* "$ce-saga", "$all", ... */
    const char *const *types;   /* the group's type filter (NULL: every event) */
    size_t type_count;
} oms_subscription_t;

/* Runs the service until SIGINT/SIGTERM (or oms_service_stop()): connects
 * (retrying until the store answers, so services can start before it),
 * starts /metrics, creates the group if missing, runs start(), then
 * dispatches events to handle() on the workers. Prints one line
 * "oms-<service> ready metrics=<host:port>" on stdout once consuming.
 * Returns 0 after a clean stop, or non-zero on a fatal error (message on
 * stderr). */
int oms_service_run(const oms_config_t *cfg, const oms_subscription_t *sub,
                    const oms_handler_t *h, void *svc_ctx);

/* Asks a running service to stop (async-signal-safe). */
void oms_service_stop(oms_service_t *svc);

/* Runs fn(w, state, arg) on the worker that owns key, in order with that
 * worker's events (start() uses it to hand work in flight to its owner).
 * Blocks while that worker's queue is full. Returns 0 or -ENOMEM. */
typedef void (*oms_post_fn)(oms_worker_t *w, void *state, void *arg);
int oms_service_post(oms_service_t *svc, const char *key, oms_post_fn fn, void *arg);

oms_store_t *oms_service_store(oms_service_t *svc);
oms_metrics_t *oms_service_metrics(oms_service_t *svc);
const oms_config_t *oms_service_config(oms_service_t *svc);

/* From a handler: its service, the store, metrics, its index (0..workers). */
oms_service_t *oms_worker_service(oms_worker_t *w);
oms_store_t *oms_worker_store(oms_worker_t *w);
oms_metrics_t *oms_worker_metrics(oms_worker_t *w);
unsigned oms_worker_index(const oms_worker_t *w);

/* Sets the reason given with OMS_PARK or OMS_RETRY (printf-style; cut at
 * OMS_REASON_BYTES_MAX). */
void oms_worker_reason(oms_worker_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Installs SIGINT/SIGTERM handlers that set a flag and returns a pointer
 * to it (for services with their own main loop, such as oms-order). */
volatile int *oms_stop_flag_install(void);

#ifdef __cplusplus
}
#endif
#endif
