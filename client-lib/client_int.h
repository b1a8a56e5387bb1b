/* client_int.h -- internals of libevstore, shared by its .c files only.
 *
 * A connection has one TCP socket, a table of inflight_max request slots,
 * and one reader thread. A request takes a free slot (its correlation id is
 * the slot's generation << 32 | slot index), is encoded, and is written
 * whole under send_lock. The reader thread decodes every response, finds its
 * slot by correlation id and either wakes the blocking caller that waits on
 * the slot (SLOT_SYNC) or runs the async callback (SLOT_ASYNC). A blocking
 * caller that times out leaves its slot SLOT_ABANDONED: the slot stays taken
 * until the late answer arrives, so the in-flight bound holds on the wire and
 * a late answer can never be matched to a newer request.
 *
 * Async requests wait in a FIFO in send order; since all share io_timeout_ms,
 * that is deadline order, and the reader expires the head.
 */
#ifndef EVSTORE_CLIENT_INT_H
#define EVSTORE_CLIENT_INT_H

#include <pthread.h>
#include <stdint.h>

#include "evstore.h"
#include "protocol.h"

#define CLIENT_RECV_CHUNK_BYTES (64u * 1024)
#define SLOT_NONE UINT32_MAX

typedef enum {
    SLOT_FREE = 0,
    SLOT_SYNC,      /* a blocking caller waits on cond */
    SLOT_ASYNC,     /* the reader runs cb */
    SLOT_ABANDONED, /* its caller gave up; free it when the answer comes */
} slot_state_t;

typedef struct {
    slot_state_t state;
    uint32_t gen;           /* bumped on every take; never 0 */
    pthread_cond_t cond;    /* SLOT_SYNC: signalled when done */
    bool done;              /* SLOT_SYNC: resp or err is set */
    envelope_t *resp;       /* SLOT_SYNC: the answer, owned by the waiter */
    int err;                /* SLOT_SYNC: the connection's error instead */
    evs_append_cb cb;       /* SLOT_ASYNC */
    void *ctx;
    uint64_t deadline_ns;   /* SLOT_ASYNC: CLOCK_MONOTONIC */
    uint32_t next, prev;    /* async FIFO links, or free-list link (next) */
} slot_t;

struct evs_conn {
    int fd;
    int wake_fd;                   /* eventfd: wakes the reader (new async head, close) */
    evs_options_t opts;
    char *host;                    /* copies of the option strings */
    char *client_name;
    evs_server_info_t info;

    pthread_mutex_t send_lock;     /* whole frames go out under it */

    pthread_mutex_t lock;          /* guards everything below */
    pthread_cond_t slot_free_cond; /* a slot came free */
    pthread_cond_t idle_cond;      /* busy reached 0 */
    slot_t *slots;
    uint32_t free_head;            /* free list of slots */
    uint32_t async_head, async_tail; /* in-flight async slots in send order */
    uint32_t busy;                 /* slots taken, plus callbacks running */
    int err;                       /* 0, or why the connection is closed */
    char err_msg[EVS_MESSAGE_BYTES_MAX];
    bool closing;                  /* evs_close() asked the reader to stop */

    pthread_t reader;
    bool reader_started;
};

/* A receive buffer: bytes [start, len) are received and not yet decoded. */
typedef struct {
    uint8_t *data;
    size_t cap, start, len;
} rbuf_t;

/* ---- clock ---- */
uint64_t clock_now_ns(void);
uint64_t deadline_after_ms(int ms); /* ms < 0: UINT64_MAX (no bound) */
int ms_until(uint64_t deadline_ns); /* for poll(); -1 when unbounded */

/* ---- error.c ---- */
/* Sets the calling thread's evs_errmsg() text (printf-style). */
void errmsg_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void errmsg_clear(void);
/* Maps a protocol ErrorCode to an EVS_E* code. */
int error_from_wire(int code);
/* Turns an Error envelope into its EVS_E* code, setting evs_errmsg(). */
int error_from_envelope(const envelope_t *env);

/* ---- sock.c ---- */
/* Resolves and connects with a deadline; returns a connected non-blocking
 * TCP socket (TCP_NODELAY) or a negative error, with evs_errmsg() set. */
int sock_connect(const char *host, uint16_t port, int timeout_ms);
/* Writes len bytes before the deadline. 0, or EVS_ETIMEDOUT / -errno. */
int sock_send_all(int fd, const uint8_t *buf, size_t len, uint64_t deadline_ns);
/* Reads one whole frame before the deadline (handshake only). Returns the
 * decoded envelope in *out or a negative error. */
int sock_recv_frame(int fd, uint32_t frame_bytes_max, uint64_t deadline_ns, envelope_t **out);
/* Makes room for at least want more bytes after len, compacting first.
 * 0 or -ENOMEM. */
int rbuf_reserve(rbuf_t *rb, size_t want);
void rbuf_free(rbuf_t *rb);

/* ---- conn.c ---- */
/* Checks options as evs_connect() does; -EINVAL with evs_errmsg() set. */
int options_check(const evs_options_t *o);
/* Sends Hello on a connected socket and reads HelloOk into *info. */
int handshake_run(int fd, const evs_options_t *opts, uint64_t deadline_ns,
                  evs_server_info_t *info);

/* ---- read.c ---- */
/* Fills filter from a type list and prefix; returns false (filter empty,
 * leave it out of the request) when both are empty. */
bool filter_fill(Evstore__V1__EventFilter *filter, const char *const *types, size_t type_count,
                 const char *type_prefix);
/* Points *out at the fields of a decoded event (no copy). */
void event_from_wire(evs_recorded_event_t *out, const Evstore__V1__RecordedEvent *e);

/* ---- link.c ---- */
/* A connection with no reader thread, for subscriptions and group consumers:
 * frames are received on the caller's thread (link_recv), so nothing is
 * read ahead of the caller; frames are sent whole under send_lock, from any
 * thread. fd changes (open, down) only on the receiving thread and only
 * under send_lock, so senders on other threads always see a valid fd or -1.
 * After a failure, link_down() schedules the next attempt with backoff. */
typedef struct {
    int fd;                       /* -1 while down */
    evs_options_t opts;           /* host and client_name point at the copies below */
    char *host;
    char *client_name;
    evs_server_info_t info;       /* of the current connection */
    rbuf_t rb;
    pthread_mutex_t send_lock;    /* whole frames; fd changes; next_corr */
    uint64_t next_corr;           /* correlation ids of this link (1 is Hello's) */
    int backoff_ms;               /* wait before the next attempt */
    uint64_t retry_at_ns;         /* no attempt before this (CLOCK_MONOTONIC) */
} link_t;

/* Checks and copies opts (NULL: defaults). The link starts down, with no
 * wait before its first attempt. 0, -EINVAL or -ENOMEM. */
int link_init(link_t *l, const evs_options_t *opts);
/* Closes the connection if open and frees the copies. */
void link_destroy(link_t *l);
/* Connects and sends Hello, within connect_timeout_ms. The link must be
 * down. 0 or an error (the link stays down; call link_down()). */
int link_open(link_t *l);
/* Closes the connection (if open), drops unread bytes, and schedules the
 * next attempt: now + the current wait, which then doubles up to the max. */
void link_down(link_t *l);
/* The peer answered: the next failure waits the initial backoff again. */
void link_backoff_reset(link_t *l);
/* Waits until the next attempt is due, or the deadline. 0 (attempt now) or
 * EVS_ETIMEDOUT. */
int link_wait_retry(const link_t *l, uint64_t deadline_ns);
/* Sends env whole with a fresh correlation id (put in env and *corr, which
 * may be NULL), by the deadline. 0, EVS_ECLOSED (the link is down),
 * EVS_ETOO_LARGE, -ENOMEM, or a send error, after which the connection is
 * shut down so that the receiving side notices. */
int link_send(link_t *l, envelope_t *env, uint64_t deadline_ns, uint64_t *corr);
/* As link_send(), with the correlation id corr_given when it is not 0
 * (Unsubscribe names its subscription). */
int link_send_as(link_t *l, envelope_t *env, uint64_t corr_given, uint64_t deadline_ns,
                 uint64_t *corr);
/* Returns the next frame, receiving until the deadline. 0 and *out (free
 * with frame_free), EVS_ETIMEDOUT, EVS_ECLOSED, EVS_EPROTOCOL, -ENOMEM,
 * -errno; evs_errmsg() says what happened. The link must be open. */
int link_recv(link_t *l, uint64_t deadline_ns, envelope_t **out);
/* True for failures that a reconnection may cure: network and protocol
 * errors, EVS_EBUSY, EVS_ENOT_READY. Other server refusals, -EINVAL and
 * -ENOMEM are final. */
bool link_error_retryable(int err);

/* ---- request.c ---- */
/* Sends req (correlation id filled in here) and waits for its answer.
 * On 0, *resp is the answer, of body case want, or an Error turned into its
 * code (returned; *resp freed). The caller frees *resp with frame_free(). */
int request_sync(evs_conn_t *conn, envelope_t *req, int want, envelope_t **resp);
/* As request_sync(), but an Error answer is returned as its code (with
 * evs_errmsg() set) and *resp is then NULL. */
int request_expect(evs_conn_t *conn, envelope_t *req, int want, envelope_t **resp);
/* Sends req as an async append; cb runs on the reader thread. */
int request_async(evs_conn_t *conn, envelope_t *req, evs_append_cb cb, void *ctx);
/* Marks the connection closed with err (first error wins) and wakes the
 * reader, which fails every request in flight. Caller holds conn->lock. */
void conn_fail_locked(evs_conn_t *conn, int err, const char *msg);
void conn_fail(evs_conn_t *conn, int err, const char *msg);
/* True when the caller is conn's reader thread. */
bool on_reader_thread(const evs_conn_t *conn);
/* Returns slot to the free list and wakes a waiter. Caller holds conn->lock. */
void slot_release_locked(evs_conn_t *conn, uint32_t index);
void async_unlink_locked(evs_conn_t *conn, uint32_t index);

/* ---- reader.c ---- */
void *reader_main(void *arg);

/* ---- append.c ---- */
/* Fills res from an AppendResponse or an Error envelope; returns the status. */
int append_result_from(const envelope_t *env, evs_append_result_t *res);

#endif
