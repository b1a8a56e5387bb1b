/* server_int.h -- internals of evstored, shared by the files of server/. */
#ifndef EVSTORE_SERVER_INT_H
#define EVSTORE_SERVER_INT_H

#include "server.h"

#include "protocol.h"

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>

#define SERVER_RING_ENTRIES 1024u
#define SERVER_IN_BYTES_INITIAL (64u * 1024)
#define SERVER_OUT_BYTES_INITIAL (64u * 1024)
#define SERVER_HOUSEKEEPING_MS 100u

/* What an io_uring completion is for: the low 3 bits of its user_data. */
enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_EVENTFD, OP_SIGNAL, OP_IGNORE };

typedef struct server_s server_t;

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
    uint32_t conn_count;
    uint64_t next_conn_id;
    char listen_addr[128], metrics_addr[128];
    metrics_t metrics;
};

/* loop.c */
struct io_uring_sqe *server_sqe(server_t *s);
void server_log(const server_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* conn.c */
conn_t *conn_new(server_t *s, int fd);
void conn_on_recv(conn_t *c, int res);
void conn_on_send(conn_t *c, int res);
/* Queues env as a frame on c's output; drops c if it is over its limit. */
void conn_send(conn_t *c, const envelope_t *env);
/* Queues an Error answer; fatal ones close the connection once sent. */
void conn_send_error(conn_t *c, uint64_t corr, int code, const char *msg, uint32_t stream_index,
                     int64_t actual_version);
/* Starts a send or a receive if one is due; closes and frees c when done. */
void conn_update(conn_t *c);
void conn_release(conn_t *c); /* an append holding c has answered */
/* Stops reading from every connection (shutdown). */
void conn_stop_reading(conn_t *c);

/* handlers.c */
void handle_frame(conn_t *c, const uint8_t *body, size_t len);
int error_code_of(int log_err);

/* metrics.c */
int metrics_start(server_t *s, const char *addr, char *bound, size_t bound_cap);
void metrics_stop(server_t *s);
void metrics_refresh(server_t *s);
void metrics_on_commit(void *ctx, uint64_t events, uint64_t bytes, uint64_t latency_ns);
void metrics_count_request(server_t *s, int type);
void metrics_count_error(server_t *s, int code);

/* net.c */
/* Parses "HOST:PORT" into an IPv4/IPv6 socket address. 0 or -EINVAL. */
int net_parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len);
/* A listening TCP socket on text; *bound gets the address really bound. */
int net_listen(const char *text, char *bound, size_t bound_cap);

#endif
