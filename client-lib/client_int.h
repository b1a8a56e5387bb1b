/* client_int.h -- internals of libevstore, shared by its .c files only.
 * Every name here starts evsi_ (or is a type of this header), so that the
 * static library exports nothing that could clash with its user's names.
 *
 * A connection has a table of inflight_max request slots, one reader thread,
 * and at any time at most one TCP socket, numbered by its epoch. A request
 * takes a free slot while the socket is up (its correlation id is the
 * slot's generation << 32 | slot index; the slot records the epoch), is
 * encoded, and is written whole under send_lock, on the socket of that
 * epoch only. The reader thread decodes every response, finds its slot by
 * correlation id and either wakes the blocking caller that waits on the
 * slot (SLOT_SYNC) or runs the async callback (SLOT_ASYNC). A blocking
 * caller that times out leaves its slot SLOT_ABANDONED: the slot stays taken
 * until the late answer arrives, so the in-flight bound holds on the wire and
 * a late answer can never be matched to a newer request.
 *
 * When the socket fails, the reader takes it down: fd becomes -1 (under
 * send_lock and lock, so no sender holds it), every slot of that epoch
 * fails with the link's error, and the reader closes the socket; it is the
 * only thread that closes an installed socket. A later request reconnects
 * (evsi_link_ready_locked): one thread connects (connecting), the others wait on
 * link_cond; the new socket is installed under both locks with epoch + 1.
 *
 * Async requests wait in a FIFO in send order; since all share io_timeout_ms,
 * that is deadline order, and the reader expires the head. Slots of one
 * epoch form a prefix of the FIFO (no slot is taken while the socket is
 * down, and epochs only grow).
 *
 * Lock order: send_lock before lock.
 */
#ifndef EVSTORE_CLIENT_INT_H
#define EVSTORE_CLIENT_INT_H

#include <pthread.h>
#include <stdint.h>

#include "evstore.h"
#include "util.h"
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
    uint64_t epoch;         /* of the socket the request is sent on */
    pthread_cond_t cond;    /* SLOT_SYNC: signalled when done */
    bool done;              /* SLOT_SYNC: resp or err is set */
    envelope_t *resp;       /* SLOT_SYNC: the answer, owned by the waiter */
    int err;                /* SLOT_SYNC: the connection's error instead */
    evs_done_cb cb;         /* SLOT_ASYNC */
    void *ctx;
    uint64_t deadline_ns;   /* SLOT_ASYNC: CLOCK_MONOTONIC */
    uint32_t next, prev;    /* async FIFO links, or free-list link (next) */
} slot_t;

struct evs_conn {
    int wake_fd;                   /* eventfd: wakes the reader (new async head, new
                                      socket, close) */
    evs_options_t opts;
    char *host;                    /* copies of the option strings */
    char *client_name;

    pthread_mutex_t send_lock;     /* whole frames go out under it; fd changes under it */

    pthread_mutex_t lock;          /* guards everything below */
    int fd;                        /* the socket, -1 while down; changes under both locks */
    uint64_t epoch;                /* bumped when a socket is installed */
    evs_server_info_t info;        /* of the current (or last) socket */
    pthread_cond_t slot_free_cond; /* a slot came free, or the socket went down */
    pthread_cond_t idle_cond;      /* busy reached 0 */
    pthread_cond_t link_cond;      /* a connection attempt ended */
    slot_t *slots;
    uint32_t free_head;            /* free list of slots */
    uint32_t async_head, async_tail; /* in-flight async slots in send order */
    uint32_t busy;                 /* slots taken, plus callbacks running */
    int err;                       /* 0 while up; why the socket went down; EVS_ECLOSED
                                      once closing */
    char err_msg[EVS_MESSAGE_BYTES_MAX];
    bool closing;                  /* evs_close() asked the reader to stop */
    bool connecting;               /* a thread is opening a new socket */
    int backoff_ms;                /* wait before the next attempt after a failure */
    uint64_t retry_at_ns;          /* no attempt before this (CLOCK_MONOTONIC) */

    pthread_t reader;
    bool reader_started;
};

/* A receive buffer: bytes [start, len) are received and not yet decoded. */
typedef struct {
    uint8_t *data;
    size_t cap, start, len;
} rbuf_t;

/* ---- clock ---- */
uint64_t evsi_deadline_after_ms(int ms); /* ms < 0: UINT64_MAX (no bound) */
/* The reconnection backoff after a failure: the next attempt is due at
 * *retry_at_ns = now + *backoff_ms, and *backoff_ms doubles up to max_ms. */
void evsi_backoff_step(uint64_t *retry_at_ns, int *backoff_ms, int max_ms);
/* ms doubled, at most max_ms. */
int evsi_backoff_doubled(int ms, int max_ms);
int evsi_ms_until(uint64_t deadline_ns); /* for poll(); -1 when unbounded */

/* ---- error.c ---- */
/* Sets the calling thread's evs_errmsg() text (printf-style). */
void evsi_errmsg_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void evsi_errmsg_clear(void);
/* Maps a protocol ErrorCode to an EVS_E* code. */
int evsi_error_from_wire(int code);
/* Turns an Error envelope into its EVS_E* code, setting evs_errmsg(). */
int evsi_error_from_envelope(const envelope_t *env);

/* ---- sock.c ---- */
/* Resolves and connects with a deadline; returns a connected non-blocking
 * TCP socket (TCP_NODELAY) or a negative error, with evs_errmsg() set. */
int evsi_sock_connect(const char *host, uint16_t port, int timeout_ms);
/* Writes len bytes before the deadline. 0, or EVS_ETIMEDOUT / -errno. */
int evsi_sock_send_all(int fd, const uint8_t *buf, size_t len, uint64_t deadline_ns);
/* Reads one whole frame before the deadline (handshake only). Returns the
 * decoded envelope in *out or a negative error. */
int evsi_sock_recv_frame(int fd, uint32_t frame_bytes_max, uint64_t deadline_ns, envelope_t **out);
/* Makes room for at least want more bytes after len, compacting first.
 * 0 or -ENOMEM. */
int evsi_rbuf_reserve(rbuf_t *rb, size_t want);
void evsi_rbuf_free(rbuf_t *rb);

/* ---- conn.c ---- */
/* Checks options as evs_connect() does; -EINVAL with evs_errmsg() set. */
int evsi_options_check(const evs_options_t *o);
/* Sends Hello on a connected socket and reads HelloOk into *info. */
int evsi_handshake_run(int fd, const evs_options_t *opts, uint64_t deadline_ns,
                  evs_server_info_t *info);
/* Connects to opts->host:port and makes the handshake, within
 * connect_timeout_ms. Returns the socket, or a negative error. */
int evsi_socket_open(const evs_options_t *opts, evs_server_info_t *info);

/* ---- read.c ---- */
/* Fills filter from a type list and prefix; returns false (filter empty,
 * leave it out of the request) when both are empty. */
bool evsi_filter_fill(Evstore__V1__EventFilter *filter, const char *const *types, size_t type_count,
                 const char *type_prefix);
/* Points *out at the fields of a decoded event (no copy). */
void evsi_event_from_wire(evs_recorded_event_t *out, const Evstore__V1__RecordedEvent *e);

/* ---- link.c ---- */
/* A connection with no reader thread, for subscriptions and group consumers:
 * frames are received on the caller's thread (evsi_link_recv), so nothing is
 * read ahead of the caller; frames are sent whole under send_lock, from any
 * thread. fd changes (open, down) only on the receiving thread and only
 * under send_lock, so senders on other threads always see a valid fd or -1.
 * After a failure, evsi_link_down() schedules the next attempt with backoff. */
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
int evsi_link_init(link_t *l, const evs_options_t *opts);
/* Closes the connection if open and frees the copies. */
void evsi_link_destroy(link_t *l);
/* Connects and sends Hello, within connect_timeout_ms. The link must be
 * down. 0 or an error (the link stays down; call evsi_link_down()). */
int evsi_link_open(link_t *l);
/* Closes the connection (if open), drops unread bytes, and schedules the
 * next attempt: now + the current wait, which then doubles up to the max. */
void evsi_link_down(link_t *l);
/* The peer answered: the next failure waits the initial backoff again. */
void evsi_link_backoff_reset(link_t *l);
/* Waits until the next attempt is due, or the deadline. 0 (attempt now) or
 * EVS_ETIMEDOUT. */
int evsi_link_wait_retry(const link_t *l, uint64_t deadline_ns);
/* The first connection of a subscription or consumer: runs open_fn(arg)
 * (which opens l and sends its first request, taking l down on failure)
 * until it succeeds, fails with an error evs_error_retryable() calls final,
 * or opts.retry_ms_max has passed (the backoff paces the attempts). Returns
 * 0 or the last error. */
int evsi_link_first_open(link_t *l, int (*open_fn)(void *arg), void *arg);
/* Sends env whole with a fresh correlation id (put in env and *corr, which
 * may be NULL), by the deadline. 0, EVS_ECLOSED (the link is down),
 * EVS_ETOO_LARGE, -ENOMEM, or a send error, after which the connection is
 * shut down so that the receiving side notices. */
int evsi_link_send(link_t *l, envelope_t *env, uint64_t deadline_ns, uint64_t *corr);
/* As evsi_link_send(), with the correlation id corr_given when it is not 0
 * (Unsubscribe names its subscription). */
int evsi_link_send_as(link_t *l, envelope_t *env, uint64_t corr_given, uint64_t deadline_ns,
                 uint64_t *corr);
/* Returns the next frame, receiving until the deadline. 0 and *out (free
 * with frame_free), EVS_ETIMEDOUT, EVS_ECLOSED, EVS_EPROTOCOL, -ENOMEM,
 * -errno; evs_errmsg() says what happened. The link must be open. */
int evsi_link_recv(link_t *l, uint64_t deadline_ns, envelope_t **out);

/* ---- request.c ---- */
/* Sends req (correlation id filled in here) and waits for its answer,
 * retrying retryable failures within opts.retry_ms_max (reconnecting as
 * needed). On 0, *resp is the answer, of body case want, or an Error (its
 * code is not returned here; see evsi_request_expect). The caller frees *resp
 * with frame_free(). */
int evsi_request_sync(evs_conn_t *conn, envelope_t *req, int want, envelope_t **resp);
/* As evsi_request_sync(), but an Error answer is returned as its code (with
 * evs_errmsg() set) and *resp is then NULL; a retryable one (EVS_EBUSY,
 * EVS_ENOT_READY, EVS_EIO) is retried within the budget too. */
int evsi_request_expect(evs_conn_t *conn, envelope_t *req, int want, envelope_t **resp);
/* Sends req as an async append; cb runs on the reader thread. Reconnects
 * first if the socket is down (not on the reader thread); not retried. */
int evsi_request_async(evs_conn_t *conn, envelope_t *req, evs_done_cb cb, void *ctx);
/* True when the caller is conn's reader thread. */
bool evsi_on_reader_thread(const evs_conn_t *conn);
/* Returns slot to the free list and wakes a waiter. Caller holds conn->lock. */
void evsi_slot_release_locked(evs_conn_t *conn, uint32_t index);
void evsi_async_unlink_locked(evs_conn_t *conn, uint32_t index);
/* Waits on cond until the deadline (UINT64_MAX: none). 0, or ETIMEDOUT. */
int evsi_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t deadline_ns);
/* Wakes the reader thread (its poll). */
void evsi_reader_wake(evs_conn_t *conn);

/* ---- conn.c ---- */
/* Makes sure conn's socket is up, reconnecting when the backoff allows and
 * the budget (until_ns) has room; one thread connects while others wait.
 * Returns 0 (up), or why not: the last link error (retryable) when the
 * budget ends first or retry_ms_max is 0, a non-retryable connect error,
 * or EVS_ECLOSED once evs_close() began. Caller holds conn->lock. */
int evsi_link_ready_locked(evs_conn_t *conn, uint64_t until_ns);

/* ---- reader.c ---- */
void *evsi_reader_main(void *arg);

/* ---- append.c ---- */
/* Fills res from an AppendResponse or an Error envelope; returns the status. */
int evsi_append_result_from(const envelope_t *env, evs_append_result_t *res);

#endif
