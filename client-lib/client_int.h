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
