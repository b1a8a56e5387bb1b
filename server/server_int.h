/* server_int.h -- internals of evstored, shared by the files of server/. */
#ifndef EVSTORE_SERVER_INT_H
#define EVSTORE_SERVER_INT_H

#include "server.h"

#include "protocol.h"
#include "util.h"

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>

#define SERVER_RING_ENTRIES 1024u
#define SERVER_IN_BYTES_INITIAL (64u * 1024)
#define SERVER_OUT_BYTES_INITIAL (64u * 1024)
#define SERVER_BUFFER_KEEP_BYTES (1u << 20) /* larger idle buffers are given back */
#define SERVER_HOUSEKEEPING_MS 100u

/* What an io_uring completion is for: the low 3 bits of its user_data; the
 * rest points at the connection (or the server). */
enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_EVENTFD, OP_SIGNAL, OP_IGNORE };

static inline uint64_t op_data(const void *p, int op)
{
    return (uint64_t)(uintptr_t)p | (uint64_t)op;
}


typedef struct server_s server_t;
typedef struct sub_s sub_t;
typedef struct group_s group_t;

/* One client connection. Freed once its socket is closed, no operation is
 * in flight on it and no append holds it. */
typedef struct conn_s {
    server_t *srv;
    int fd;
    uint64_t id;
    char peer[64];
    bool hello_done;
    bool recv_armed, send_armed;
    bool read_closed;   /* the peer closed, or we stopped reading */
    bool dead;          /* an error: drop all output, close as soon as possible */
    bool close_after_flush; /* a fatal protocol error was answered */
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;       /* answers being queued */
    size_t out_len, out_cap;
    uint8_t *sending;   /* answers being sent (owned by the kernel while send_armed) */
    size_t sending_len, sending_done, sending_cap;
    uint32_t refs;      /* appends in flight that will answer on it */
    struct conn_s *prev, *next; /* the server's list of connections */
} conn_t;

/* Counters and histograms shown on /metrics. Updated by the loop thread,
 * read by the HTTP thread. */
#define METRICS_LATENCY_BUCKETS 14u
#define METRICS_GROUP_BUCKETS 12u
#define METRICS_ERROR_CODES 16u
#define METRICS_REQUEST_TYPES 8u
typedef struct {
    pthread_mutex_t mu;      /* guards log_stats and the gauges */
    log_stats_t log_stats;
    uint64_t connections;
    _Atomic uint64_t connections_total;
    _Atomic uint64_t connections_rejected;
    _Atomic uint64_t requests[METRICS_REQUEST_TYPES];
    _Atomic uint64_t errors[METRICS_ERROR_CODES];
    _Atomic uint64_t sync_latency[METRICS_LATENCY_BUCKETS + 1]; /* +Inf last */
    _Atomic uint64_t sync_latency_sum_ns;
    _Atomic uint64_t sync_count;
    _Atomic uint64_t group_events[METRICS_GROUP_BUCKETS + 1];
    _Atomic uint64_t group_events_sum;
    bool ready;
    struct MHD_Daemon *httpd;
    char *groups_text;       /* groups' lines, rebuilt by the loop (guarded by mu) */
    size_t groups_len;
    uint64_t groups_refreshed_ns;
    uint32_t subscriptions;
} metrics_t;

enum { REQ_HELLO, REQ_APPEND, REQ_READ, REQ_STREAM_INFO, REQ_LIST_STREAMS, REQ_STATS, REQ_PING,
       REQ_OTHER };

struct server_s {
    server_config_t cfg;
    log_t *log;
    struct io_uring ring;
    int listen_fd;
    int signal_fd;
    int log_fd;          /* the log's eventfd */
    uint64_t eventfd_buf;
    uint8_t signal_buf[128];
    bool accept_armed;
    bool stopping;
    uint64_t stop_deadline_ns;
    uint64_t started_ns;
    conn_t *conns;       /* all connections */
    sub_t *subs;         /* all subscriptions */
    uint32_t sub_count;
    group_t *groups;     /* all persistent subscription groups */
    uint32_t conn_count;
    uint64_t next_conn_id;
    char listen_addr[128], metrics_addr[128];
    metrics_t metrics;
};

/* loop.c */
/* A free submission entry of the server's ring (submitting queued ones first
 * if the ring is full). Never NULL. */
struct io_uring_sqe *server_sqe(server_t *s);
/* One line to stderr, prefixed "evstored: ", unless --quiet. */
void server_log(const server_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* conn.c */
/* A connection for an accepted socket, linked into the server's list; NULL
 * on ENOMEM (the caller closes fd). conn_update() starts its receiving. */
conn_t *conn_new(server_t *s, int fd);
/* A receive completed with res bytes (or -errno, or 0 at the peer's end):
 * handles every whole frame, then conn_update(). May free c. */
void conn_on_recv(conn_t *c, int res);
/* A send completed with res bytes (or -errno): sends the rest, takes the
 * requests left waiting, then conn_update(). May free c. */
void conn_on_send(conn_t *c, int res);
/* Queues env as a frame on c's output; drops c if it is over its limit. */
void conn_send(conn_t *c, const envelope_t *env);
/* Queues an Error answer; fatal ones close the connection once sent. */
void conn_send_error(conn_t *c, uint64_t corr, int code, const char *msg, uint32_t stream_index,
                     int64_t actual_version);
/* Starts a send or a receive if one is due; closes and frees c when done. */
void conn_update(conn_t *c);
void conn_release(conn_t *c); /* an append holding c has answered */
/* Unlinks and frees c (its subscriptions and consumers too); the caller has
 * closed its socket and no operation is in flight on it. */
void conn_free(conn_t *c);
/* Starts sending what is queued on c, if no send is in flight (never frees c:
 * for answers queued outside a completion of c's own). */
void conn_flush(conn_t *c);
/* Bytes of answers queued on c and not yet sent. */
size_t conn_queued_bytes(const conn_t *c);
/* Stops reading from every connection (shutdown). */
void conn_stop_reading(conn_t *c);

/* events.c: events read from the log, as RecordedEvents ready to send */
typedef struct {
    uint8_t *arena;
    size_t arena_len, arena_cap;
    size_t encoded_bytes;                   /* at most what the events take encoded */
    size_t encoded_bytes_max;               /* stop reading past this */
    Evstore__V1__RecordedEvent *events;
    Evstore__V1__RecordedEvent **ptrs;      /* after events_finish() */
    size_t count, cap;
    const char *prefix;                     /* keep only streams starting with it */
    size_t prefix_len;
    bool skip_system;                       /* leave out '$' streams (unless prefix) */
    int error;
} events_t;

void events_init(events_t *e, size_t bytes_max, const char *stream_prefix);
/* True once the events kept would take bytes_max or more encoded. */
bool events_full(const events_t *e);
void events_free(events_t *e);
/* The engine's filter for a protocol filter (NULL when it keeps everything). */
const log_filter_t *events_filter(const Evstore__V1__EventFilter *f, log_filter_t *out);
/* Copies one event in. 0 or -ENOMEM. */
int events_add(events_t *e, const log_event_t *ev);
/* Lays the events out for packing (sets ptrs). 0 or -ENOMEM. */
int events_finish(events_t *e);
/* log_read() into e, then events_finish(). */
int events_read(events_t *e, log_t *log, const log_read_t *req, log_read_result_t *res);

/* handlers.c */
/* Queues an answer whose body is one member of the envelope's oneof. */
void send_body(conn_t *c, uint64_t corr, Evstore__V1__Envelope__BodyCase kind, void *body);
/* Decodes one frame body and answers it (at once, or for an append once it
 * is durable). Never frees c. */
void handle_frame(conn_t *c, const uint8_t *body, size_t len);
/* The protocol's ErrorCode for an engine error (LOG_E* or -errno). */
int error_code_of(int log_err);

/* subs.c */
/* Starts subscription corr of c: answers SubscribeOk (or an Error); events
 * follow from subs_pump_all(). */
void sub_start(conn_t *c, uint64_t corr, const Evstore__V1__SubscribeRequest *m);
/* Ends the subscription corr of c (answering SubscriptionDropped); false if none. */
bool sub_stop(conn_t *c, uint64_t corr);
/* Serves every subscription as far as its connection has room (each loop turn). */
void subs_pump_all(server_t *srv);
/* Forgets every subscription of c (which is going away), sending nothing. */
void subs_conn_gone(conn_t *c);
/* Queues SubscriptionDropped{reason} for subscription (or consumer) corr of c. */
void send_dropped(conn_t *c, uint64_t corr, const char *reason);

/* groups*.c: persistent subscription groups (their internals are in
 * groups_int.h). Each request handler answers corr on c (Done, the info asked
 * for, or an Error); create, update and delete answer once durable. */
void group_create(conn_t *c, uint64_t corr, const Evstore__V1__GroupSettings *m);
void group_update(conn_t *c, uint64_t corr, const Evstore__V1__GroupSettings *m);
void group_delete(conn_t *c, uint64_t corr, const Evstore__V1__GroupName *m);
void group_info(conn_t *c, uint64_t corr, const Evstore__V1__GroupName *m);
void group_list(conn_t *c, uint64_t corr);
void group_join(conn_t *c, uint64_t corr, const Evstore__V1__GroupJoin *m);
void group_ack(conn_t *c, uint64_t corr, const Evstore__V1__GroupAck *m);
void group_nack(conn_t *c, uint64_t corr, const Evstore__V1__GroupNack *m);
void group_replay_parked(conn_t *c, uint64_t corr, const Evstore__V1__GroupName *m);
/* Ends the consumer corr of c (answering SubscriptionDropped); false if none. */
bool group_leave(conn_t *c, uint64_t corr);
/* Removes every consumer on c (which is going away); their events in flight
 * go to the other consumers. */
void groups_conn_gone(conn_t *c);
/* Delivers, redelivers, expires and checkpoints: once per loop turn. */
void groups_turn(server_t *srv);
/* Rebuilds every group from its system stream (start-up). */
void groups_load(server_t *srv);
/* Writes every group's checkpoint that moved (shutdown). */
void groups_checkpoint_all(server_t *srv);
/* Frees every group (after the log is closed: no callback can reach them). */
void groups_free(server_t *srv);
/* Prometheus lines for every group (lag, in flight, parked, ...), at most
 * bytes_max bytes: malloc'd text (*len bytes), or NULL (no memory, too long). */
char *groups_metrics(server_t *srv, size_t bytes_max, size_t *len);

/* metrics.c */
/* Serves /metrics and /health on addr (HOST:PORT) from libmicrohttpd's own
 * thread; *bound gets the address really bound. 0, or -1 after printing why. */
int metrics_start(server_t *s, const char *addr, char *bound, size_t bound_cap);
/* Stops the HTTP thread (a no-op if it never started). */
void metrics_stop(server_t *s);
/* Copies the engine's statistics (and, every 250 ms, the groups' lines) for
 * the HTTP thread. Loop thread, once a turn. */
void metrics_refresh(server_t *s);
/* log_config_t.on_commit: counts a group-commit write into the histograms. */
void metrics_on_commit(void *ctx, uint64_t events, uint64_t bytes, uint64_t latency_ns);
/* Counts a request of a REQ_* type, and an Error answer of an ErrorCode. */
void metrics_count_request(server_t *s, int type);
void metrics_count_error(server_t *s, int code);

/* net.c */
/* Parses "HOST:PORT" into an IPv4/IPv6 socket address. 0 or -EINVAL. */
int net_parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len);
/* A listening TCP socket on text; *bound gets the address really bound. */
int net_listen(const char *text, char *bound, size_t bound_cap);

#endif
