/* evstore.h -- libevstore, the C client library of the evstore event store.
 *
 * @mainpage libevstore
 *
 * libevstore talks to an evstored server over TCP: it appends events to
 * streams (blocking, or asynchronously with a completion callback so that
 * one connection keeps many appends in flight), reads streams, categories
 * ("$ce-<category>") and the whole log ("$all"), and asks for stream
 * information, the list of streams, server statistics and a ping. It
 * subscribes to a stream, a category or "$all" (catch-up, then live), and
 * manages and consumes persistent subscription groups.
 *
 * ## Model
 *
 * Every event has a 64-bit global position, strictly increasing over the
 * whole log, and belongs to one stream, in which it has a version (0, 1,
 * 2, ...). Streams named "<category>-<id>" are also readable as the category
 * "$ce-<category>"; every event is readable through "$all". Every event
 * carries a 16-byte id chosen by the writer: retrying an append whose events
 * have the same ids returns the original result and writes nothing
 * (idempotency). An append of one or more events to one or more streams is
 * one batch: all of it is written or none of it. An append is acknowledged
 * only once it is durable (as the server's durability mode defines it).
 *
 * ## Errors
 *
 * Every function that can fail returns 0 (or a count) on success and a
 * negative code on failure: either one of the EVS_E* codes below (a reserved
 * range, -30999..-30000, that no errno reaches) or a negated errno value
 * (-ENOMEM, -EINVAL, -ECONNREFUSED, ...). evs_strerror() names both. After a
 * failed call, evs_errmsg() gives the details (the server's own message, or
 * what the client saw) for the calling thread.
 *
 * ## Threads
 *
 * - An evs_conn_t may be shared by any number of threads: every function that
 *   takes a connection may be called concurrently with any other, except
 *   evs_close(), which must be called exactly once, after every other thread
 *   has stopped using the connection, and never from a callback.
 * - Requests from many threads are pipelined on the one TCP connection: a
 *   mutex serialises the writing of whole frames; responses are read by one
 *   reader thread per connection (started by evs_connect()) that hands each
 *   response to the caller waiting for it, by correlation id.
 * - Completion callbacks of evs_append_async() run on that connection's
 *   reader thread, one at a time, in the order the responses arrive (the
 *   server may answer in any order). While a callback runs, no other
 *   response of that connection is processed, so callbacks must be short.
 *   From a callback, a blocking call on the same connection fails with
 *   EVS_EDEADLOCK; evs_append_async() works, but fails with EVS_EINFLIGHT
 *   instead of waiting when the in-flight limit is reached.
 * - Result structures (evs_append_result_t, evs_read_result_t, ...) belong
 *   to the caller and are not shared by the library.
 * - evs_strerror(), evs_errmsg(), the evs_id_* functions and
 *   evs_options_default() are thread-safe.
 *
 * Subscriptions (evs_sub_t) and group consumers (evs_consumer_t) each own a
 * connection of their own and have no thread: see "Subscriptions" below.
 *
 * ## Limits
 *
 * At most opts.inflight_max requests (EVS_INFLIGHT_MAX_DEFAULT) are in flight
 * on one connection, blocking and asynchronous together. A caller that
 * finds the limit reached waits (at most io_timeout_ms, then EVS_ETIMEDOUT)
 * for a request to complete; a caller on the reader thread gets EVS_EINFLIGHT
 * at once. A request whose frame would exceed the server's frame_bytes_max is
 * refused with EVS_ETOO_LARGE before anything is sent (the server would close
 * the connection).
 */
#ifndef EVSTORE_H
#define EVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library version; evs_version() gives the one actually linked. */
#define EVS_VERSION_MAJOR 0
#define EVS_VERSION_MINOR 1
#define EVS_VERSION_PATCH 0
#define EVS_VERSION_STRING "0.1.0"

/* ==== error codes ===================================================== */

/* Errors reported by the server: one for each ErrorCode of the protocol. */
#define EVS_EWRONG_VERSION (-30001)     /* the expected version did not match; the
                                           result names the stream and its actual version */
#define EVS_ESTREAM_NOT_FOUND (-30002)  /* the stream does not exist */
#define EVS_EBAD_REQUEST (-30003)       /* the server found the request malformed */
#define EVS_EFRAME_TOO_LARGE (-30004)   /* the server got a frame over its limit and closed */
#define EVS_EBUSY (-30005)              /* the server is overloaded: retry later */
#define EVS_ENOT_READY (-30006)         /* the server is starting or stopping */
#define EVS_EPROTOCOL_VERSION (-30007)  /* the server does not speak protocol version 1 */
#define EVS_EIDEMPOTENCY (-30008)       /* event ids match an earlier append only in part */
#define EVS_ETOO_LARGE (-30009)         /* an event, append or frame is over its limit */
#define EVS_ECORRUPT (-30010)           /* stored data failed its checksum */
#define EVS_EIO (-30011)                /* the server could not write: the append failed */
#define EVS_EACCESS (-30012)            /* access denied */
#define EVS_EINTERNAL (-30013)          /* the server failed internally */
#define EVS_EGROUP_NOT_FOUND (-30014)   /* no subscription group has that name */
#define EVS_EGROUP_EXISTS (-30015)      /* a subscription group of that name exists */
#define EVS_ESERVER (-30099)            /* a server error code this library does not know */

/* The range of server-reported codes, for evs_is_server_error(). */
#define EVS_ESERVER_FIRST (-30099)
#define EVS_ESERVER_LAST (-30001)

/* Errors found by the client. */
#define EVS_ECLOSED (-30101)            /* the connection is closed (by the server, a network
                                           failure or evs_close()); requests in flight have an
                                           unknown outcome: retry appends with the same ids */
#define EVS_ETIMEDOUT (-30102)          /* no answer within the timeout; an append's outcome is
                                           unknown: retry it with the same ids */
#define EVS_EPROTOCOL (-30103)          /* the server sent bytes that break the protocol; the
                                           connection is closed */
#define EVS_ERESOLVE (-30104)           /* the host name could not be resolved */
#define EVS_EDEADLOCK (-30105)          /* a blocking call from a completion callback */
#define EVS_EINFLIGHT (-30106)          /* the in-flight limit is reached (callback thread only) */

/* Returns a static, human-readable description of err: an EVS_E* code,
 * a negated errno value, or 0 ("success"). Never returns NULL. */
const char *evs_strerror(int err);

/* Returns the details of the last failure of an evs_ call in the calling
 * thread: the server's message for server errors, or what the client saw
 * ("connect 10.0.0.1:7411: Connection refused"). "" if there is none. The
 * text stays valid until the thread's next evs_ call. */
const char *evs_errmsg(void);

/* Returns true when err is an error the server reported (EVS_ESERVER_FIRST
 * ..EVS_ESERVER_LAST): the request reached the server and was refused. */
bool evs_is_server_error(int err);

/* Returns true when err is a failure that trying again may cure, after a
 * pause or on a new connection: the store could not be reached or the link
 * failed (EVS_ECLOSED, EVS_ETIMEDOUT, EVS_EPROTOCOL, EVS_ERESOLVE, and the
 * network errnos -ECONNREFUSED, -ECONNRESET, -ECONNABORTED, -EPIPE,
 * -ETIMEDOUT, -EHOSTUNREACH, -EHOSTDOWN, -ENETUNREACH, -ENETDOWN,
 * -ENETRESET, -ENOTCONN, -EADDRNOTAVAIL, -EAGAIN, -EINTR), or the server
 * asked for a later try (EVS_EBUSY, EVS_ENOT_READY) or could not write
 * (EVS_EIO: nothing was written). Everything else is an answer about the
 * request, which the same request meets again: every other server error
 * (EVS_EWRONG_VERSION, EVS_EBAD_REQUEST, EVS_EACCESS, ...), EVS_ETOO_LARGE,
 * EVS_EDEADLOCK, EVS_EINFLIGHT, -EINVAL, -ENOMEM, any other errno, and 0.
 * This is the one policy the library itself follows: connections retry
 * requests (retry_ms_max), subscriptions and consumers reconnect, on these
 * errors and only on these; a subscription ends on any other error. */
bool evs_error_retryable(int err);

/* Returns the library's version as text, e.g. "0.1.0". */
const char *evs_version(void);

/* ==== event ids ======================================================= */

#define EVS_ID_BYTES 16
#define EVS_ID_TEXT_BYTES 37 /* 36 characters (8-4-4-4-12 hex) and a NUL */

/* Fills id with 16 random bytes from getrandom(2), shaped as a version 4
 * UUID. Returns 0, or -errno if the kernel's generator fails. Thread-safe. */
int evs_id_random(uint8_t id[EVS_ID_BYTES]);

/* Writes id as text "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (lowercase hex)
 * into out, NUL-terminated. Returns out. */
char *evs_id_format(const uint8_t id[EVS_ID_BYTES], char out[EVS_ID_TEXT_BYTES]);

/* Parses 32 hex digits, with or without dashes anywhere between digit
 * pairs, into id. Returns 0, or -EINVAL (id untouched) for any other text. */
int evs_id_parse(const char *text, uint8_t id[EVS_ID_BYTES]);

/* ==== connections ===================================================== */

typedef struct evs_conn evs_conn_t;

#define EVS_PORT_DEFAULT 7411
#define EVS_CONNECT_TIMEOUT_MS_DEFAULT 5000
#define EVS_IO_TIMEOUT_MS_DEFAULT 30000
#define EVS_INFLIGHT_MAX_DEFAULT 1024u           /* requests in flight per connection */
#define EVS_INFLIGHT_MAX_LIMIT 65536u            /* largest allowed inflight_max */
#define EVS_RECV_FRAME_BYTES_MAX_DEFAULT (64u * 1024 * 1024) /* largest response frame */
#define EVS_CLIENT_NAME_BYTES_MAX 255u
#define EVS_RECONNECT_BACKOFF_MS_INITIAL_DEFAULT 100  /* first wait before reconnecting, */
#define EVS_RECONNECT_BACKOFF_MS_MAX_DEFAULT 5000     /* then doubled up to this */
#define EVS_RETRY_MS_MAX_DEFAULT 10000 /* a request retries for this long: rides out a store
                                          restart (seconds), yet fails while a caller still
                                          waits (an HTTP client, a handler's ack timeout) */

typedef struct {
    const char *host;              /* name or address; default "127.0.0.1" */
    uint16_t port;                 /* default EVS_PORT_DEFAULT */
    const char *client_name;       /* for the server's log; default "libevstore" */
    int connect_timeout_ms;        /* TCP connect and handshake, > 0 (name resolution
                                      is not bounded by it) */
    int io_timeout_ms;             /* > 0: bounds a blocking call as a whole (waiting for
                                      a free in-flight slot, sending, waiting for the
                                      answer), and an async append's wait for a slot and
                                      send, and then its wait for the answer */
    uint32_t inflight_max;         /* 1..EVS_INFLIGHT_MAX_LIMIT */
    uint32_t recv_frame_bytes_max; /* a larger response frame closes the connection with
                                      EVS_EPROTOCOL */
    int reconnect_backoff_ms_initial; /* the wait before the first reconnection attempt
                                         after a failure, > 0; also a request's first
                                         pause before retrying EVS_EBUSY/EVS_ENOT_READY */
    int reconnect_backoff_ms_max;     /* each failed attempt doubles the wait up to this
                                         (>= the initial wait) */
    int retry_ms_max;              /* >= 0 (default EVS_RETRY_MS_MAX_DEFAULT): how long a
                                      request keeps retrying failures that
                                      evs_error_retryable() calls curable, reconnecting as
                                      needed; and how long evs_subscribe() and
                                      evs_group_join() wait for a store that is not up
                                      yet. 0: fail at once, and a connection that failed
                                      stays failed (no reconnection) */
} evs_options_t;

/* Fills *opts with the defaults above. */
void evs_options_default(evs_options_t *opts);

/* ## Reconnection and retries
 *
 * A connection outlives its TCP socket. When the socket fails (the server
 * closed it or died, a send or a frame failed), every request in flight on
 * it fails with a retryable error (EVS_ECLOSED, usually) and the connection
 * is down. The next request, from any thread, reconnects: the first attempt
 * waits reconnect_backoff_ms_initial after the failure, each failed attempt
 * doubles the wait up to reconnect_backoff_ms_max, and one thread connects
 * while the others wait for it. The handshake is made again and
 * evs_server_info() then describes the new server.
 *
 * A blocking request retries each failure that evs_error_retryable() calls
 * curable (a lost socket, a timeout, EVS_EBUSY, ...) until retry_ms_max has
 * passed since the call began, reconnecting as needed; then it returns the
 * last failure. Other errors (EVS_EWRONG_VERSION, EVS_EBAD_REQUEST, ...) are
 * returned at once: the request was sent once. So a blocking call lasts at
 * most about retry_ms_max + io_timeout_ms + connect_timeout_ms. Every
 * request is safe to send twice: reads, information and group requests
 * change nothing or end in the same state, and an append is idempotent by
 * its event ids (the library fixes an all-zero id before the first attempt,
 * see evs_event_t), so a retried append is written once. Asynchronous
 * appends are not retried: their callback gets the retryable error, and
 * the caller resends with the same ids (so it gives every event an id of
 * its own: an all-zero id is replaced by a random one the caller never
 * sees, and a resend of it would be written again). With retry_ms_max 0 nothing is
 * retried and a failed connection stays failed, as a connection without
 * this feature would.
 *
 * Requests are matched to the socket they were sent on: a late answer on
 * an old socket is never taken for a new request, and no thread ever uses
 * a socket after it was closed (the connection object stays; its socket
 * changes under a lock, and only its reader thread closes one). */

/* Connects to opts->host:opts->port (every address the name resolves to is
 * tried in turn), sends Hello (protocol version 1) and waits for HelloOk,
 * then starts the connection's reader thread. opts NULL means all defaults.
 * This first connection is not retried: a store that cannot be reached now
 * is reported now (callers that start before the store loop on it).
 * Returns 0 and *out, or: EVS_ERESOLVE, -ECONNREFUSED (or another -errno of
 * connect(2)), EVS_ETIMEDOUT, EVS_EPROTOCOL_VERSION (the server refused
 * the version), EVS_EPROTOCOL, EVS_ECLOSED, -EINVAL (bad options), -ENOMEM. */
int evs_connect(const evs_options_t *opts, evs_conn_t **out);

/* Closes the connection and frees it. Requests still in flight complete
 * with EVS_ECLOSED (their callbacks run, on the reader thread, before
 * evs_close() returns); call evs_flush() first to let them finish. Must be
 * called exactly once, when no other thread uses conn, and never from a
 * completion callback. NULL is a no-op. */
void evs_close(evs_conn_t *conn);

/* Waits until no request is in flight on conn and every completion callback
 * has returned, at most timeout_ms (-1: no bound). Returns 0, EVS_ETIMEDOUT,
 * EVS_EDEADLOCK (called from a callback), or the connection's error once it
 * is closed with requests failed. */
int evs_flush(evs_conn_t *conn, int timeout_ms);

/* What the server said in its HelloOk. */
typedef struct {
    uint32_t protocol_version;
    char server_version[64];    /* truncated if longer */
    uint32_t frame_bytes_max;   /* largest frame the server accepts */
    uint32_t append_events_max; /* events in one append */
    uint32_t read_events_max;   /* events in one read response */
} evs_server_info_t;

/* Copies the server's HelloOk limits into *out. Never fails. */
void evs_server_info(const evs_conn_t *conn, evs_server_info_t *out);

/* Returns 0 while conn's socket is up, or the error that took it down:
 * a retryable one (the next request reconnects unless retry_ms_max is 0),
 * or EVS_ECLOSED after evs_close() began. */
int evs_conn_error(evs_conn_t *conn);

/* ==== appending ======================================================= */

/* Expected versions: any value >= 0 is exact (the version of the stream's
 * last event, so 0 after one event); the negative values are modes. */
#define EVS_EXPECT_ANY (-1)           /* no check */
#define EVS_EXPECT_NO_STREAM (-2)     /* the stream must not exist */
#define EVS_EXPECT_STREAM_EXISTS (-3) /* the stream must have an event */

/* The version of a stream that has no events. */
#define EVS_VERSION_NONE (-1)

#define EVS_APPEND_STREAMS_MAX 100u /* streams in one append (the server's own limit) */
#define EVS_MESSAGE_BYTES_MAX 256u  /* error text kept in a result */

/* An event to append. The pointers are only read during the call. */
typedef struct {
    uint8_t id[EVS_ID_BYTES]; /* unique; a retry reuses it (see evs_id_random()). All
                                 zero: the library picks a random id for this call,
                                 the same for all of its own retries */
    const char *type;         /* not empty, NUL-terminated */
    const void *data;         /* may be NULL when data_len is 0 */
    size_t data_len;
    const void *metadata;     /* may be NULL when metadata_len is 0 */
    size_t metadata_len;
    int64_t timestamp_ns;     /* 0: the server's time */
} evs_event_t;

/* The events of one stream in an append. */
typedef struct {
    const char *stream;       /* not empty, not starting with '$' */
    int64_t expected_version; /* EVS_EXPECT_* or an exact version */
    const evs_event_t *events;
    size_t event_count;       /* at least 1 */
} evs_stream_append_t;

/* The outcome of an append. Positions are given in request order: stream
 * 0's events first, then stream 1's, ... */
typedef struct {
    uint64_t first_position; /* position of the batch's first event */
    uint32_t event_count;    /* events in the batch */
    bool idempotent;         /* a retry of an append that had succeeded: nothing new
                                was written, the original positions are returned */
    size_t stream_count;
    int64_t last_versions[EVS_APPEND_STREAMS_MAX]; /* per stream, after the append */
    /* On EVS_EWRONG_VERSION and EVS_EIDEMPOTENCY: */
    uint32_t failed_stream;  /* index of the stream at fault */
    int64_t actual_version;  /* EVS_EWRONG_VERSION: that stream's version */
    char message[EVS_MESSAGE_BYTES_MAX]; /* on any error: the details */
} evs_append_result_t;

/* Appends the events of streams[0..stream_count) as one batch and waits
 * until it is durable. res (may be NULL) gets the outcome on success and,
 * on EVS_EWRONG_VERSION / EVS_EIDEMPOTENCY, the failed stream.
 * Returns 0, or: -EINVAL (no streams, more than EVS_APPEND_STREAMS_MAX, an
 * empty stream, name or type, a NULL pointer with a length), EVS_ETOO_LARGE,
 * any server error (EVS_EWRONG_VERSION, EVS_EIDEMPOTENCY, EVS_EBUSY, ...),
 * EVS_ETIMEDOUT, EVS_ECLOSED, EVS_EPROTOCOL, EVS_EDEADLOCK, -ENOMEM. After
 * EVS_ETIMEDOUT or EVS_ECLOSED the append may or may not have been written:
 * retry it with the same event ids. */
int evs_append(evs_conn_t *conn, const evs_stream_append_t *streams, size_t stream_count,
               evs_append_result_t *res);

/* Completion callback of an asynchronous request (today: evs_append_async()).
 * status is 0 or an error code as the blocking call returns them
 * (EVS_ETIMEDOUT when no answer came within io_timeout_ms; EVS_ECLOSED when
 * the socket failed first: both retryable, resend with the same ids). res
 * is the request's result, never NULL and valid only during the call. Runs
 * on the connection's reader thread (see Threads above). */
typedef void (*evs_done_cb)(void *ctx, int status, const evs_append_result_t *res);

/* Sends an append as evs_append() does, without waiting for the answer:
 * cb(ctx, ...) runs exactly once when it comes (or fails). Many appends may
 * be in flight; they are not ordered with respect to each other (each is
 * its own batch; use expected versions to order appends to one stream).
 * Waits for a free in-flight slot when inflight_max requests are in flight
 * (at most io_timeout_ms), except on the reader thread.
 * Returns 0 (cb will run), or an error as evs_append() returns them (cb will
 * not run): -EINVAL, EVS_ETOO_LARGE, EVS_ETIMEDOUT (no slot came free),
 * EVS_EINFLIGHT, EVS_ECLOSED, -ENOMEM. */
int evs_append_async(evs_conn_t *conn, const evs_stream_append_t *streams,
                     size_t stream_count, evs_done_cb cb, void *ctx);

/* ==== reading ========================================================= */

/* A read request. Zero-initialise, then set what you need. */
typedef struct {
    const char *stream;  /* a stream, "$ce-<category>" or "$all" */
    uint64_t from;       /* first version (stream) or position ($ce-, $all); inclusive */
    bool from_end;       /* start at the last event (ignores from); implies backwards */
    bool backwards;
    uint32_t max_count;  /* events at most; 0 or above the server's read_events_max:
                            read_events_max */
    const char *const *types; /* filter: keep events of these types... */
    size_t type_count;
    const char *type_prefix;  /* ...or whose type starts with this (NULL: none).
                                 No types and no prefix: every event */
} evs_read_t;

/* An event as read. Pointers stay valid until evs_read_result_free(). */
typedef struct {
    uint64_t position;
    int64_t version;          /* in its stream */
    int64_t timestamp_ns;
    uint8_t id[EVS_ID_BYTES];
    const char *stream;       /* NUL-terminated */
    const char *type;         /* NUL-terminated */
    const uint8_t *data;
    size_t data_len;
    const uint8_t *metadata;
    size_t metadata_len;
} evs_recorded_event_t;

typedef struct {
    evs_recorded_event_t *events; /* count events, in read order */
    size_t count;
    uint64_t next;           /* where to continue: pass it as the next read's from */
    bool end;                /* nothing more in that direction, for now */
    int64_t stream_version;  /* stream reads: the stream's last version */
    void *owner_;            /* private: the memory the events point into */
} evs_read_result_t;

/* Reads one page of events. A page may be short (or empty) without being
 * the end: continue from res->next until res->end. On success the caller
 * owns *res and frees it with evs_read_result_free(); on failure *res is
 * zeroed (freeing it is harmless).
 * Returns 0, or: -EINVAL (no stream), EVS_ESTREAM_NOT_FOUND, EVS_ECORRUPT,
 * EVS_EBAD_REQUEST, EVS_ETIMEDOUT, EVS_ECLOSED, EVS_EPROTOCOL,
 * EVS_EDEADLOCK, -ENOMEM. */
int evs_read(evs_conn_t *conn, const evs_read_t *req, evs_read_result_t *res);

/* Frees everything evs_read() put in *res and zeroes it. NULL is a no-op. */
void evs_read_result_free(evs_read_result_t *res);

/* ==== stream information, listing, statistics, ping =================== */

typedef struct {
    bool exists;
    int64_t version; /* last version; EVS_VERSION_NONE if there are no events */
} evs_stream_info_t;

/* Asks for a stream's current version. A stream that does not exist is not
 * an error: *out gets exists false and EVS_VERSION_NONE.
 * Returns 0, or -EINVAL, EVS_ETIMEDOUT, EVS_ECLOSED, EVS_EPROTOCOL,
 * EVS_EDEADLOCK, a server error. */
int evs_stream_info(evs_conn_t *conn, const char *stream, evs_stream_info_t *out);

typedef struct {
    const char *name;
    int64_t version;
} evs_stream_entry_t;

typedef struct {
    evs_stream_entry_t *streams; /* count entries, sorted by name */
    size_t count;
    bool end;                    /* no streams after the last one listed */
    void *owner_;                /* private */
} evs_stream_list_t;

/* Lists streams whose name starts with prefix (NULL or "": all), sorted by
 * name, starting after the name after (NULL or "": from the first), at most
 * max_count (0: the server's default). Continue with after set to the last
 * name until out->end. The caller frees *out with evs_stream_list_free().
 * Returns 0, or EVS_ETIMEDOUT, EVS_ECLOSED, EVS_EPROTOCOL, EVS_EDEADLOCK,
 * a server error, -ENOMEM. */
int evs_list_streams(evs_conn_t *conn, const char *prefix, const char *after,
                     uint32_t max_count, evs_stream_list_t *out);

/* Frees what evs_list_streams() put in *list and zeroes it. NULL is a no-op. */
void evs_stream_list_free(evs_stream_list_t *list);

typedef struct {
    uint64_t head_position;    /* next position to be assigned */
    uint64_t durable_position; /* positions below it are durable */
    uint64_t streams;
    uint64_t appends;
    uint64_t events_appended;
    uint64_t bytes_written;
    uint64_t fdatasyncs;
    uint64_t connections;
    uint64_t segments;
    uint64_t uptime_ms;
    char durability[32];       /* "always", "interval", "none" ... */
} evs_server_stats_t;

/* Asks for the server's counters. Returns 0, or EVS_ETIMEDOUT, EVS_ECLOSED,
 * EVS_EPROTOCOL, EVS_EDEADLOCK, a server error. */
int evs_server_stats(evs_conn_t *conn, evs_server_stats_t *out);

/* Sends a Ping and waits for the Pong. *rtt_us (may be NULL) gets the round
 * trip in microseconds. Returns 0, or EVS_ETIMEDOUT, EVS_ECLOSED,
 * EVS_EPROTOCOL, EVS_EDEADLOCK, a server error. */
int evs_ping(evs_conn_t *conn, uint64_t *rtt_us);

/* ==== subscriptions (catch-up, then live) ============================= */

/* A catch-up subscription delivers the stored events of a stream, a category
 * ("$ce-<category>") or "$all" from a start point, then a caught-up marker,
 * then every new event as it becomes durable: in log order, with no gap and
 * no duplicate.
 *
 * ## Why a pull iterator
 *
 * The caller pulls with evs_sub_next(); nothing runs behind its back. A
 * subscription owns its own TCP connection and has no thread: evs_sub_next()
 * reads the socket itself, on the caller's thread. So the library holds at
 * most one frame of events (at most batch_max, below) plus the bytes of one
 * partly received frame, whatever the server sends; and a caller that stops
 * pulling stops reading the socket, so TCP flow control holds the server
 * back, which then serves the subscriber from disk when it resumes (the
 * server's memory stays bounded too). There are no callbacks to keep short,
 * no locks, and an event's fields point into the received frame (no copy).
 *
 * ## Reconnection
 *
 * When the connection fails or the server drops the subscription,
 * evs_sub_next() reconnects, waiting opts.reconnect_backoff_ms_initial
 * before the first attempt and doubling the wait after each failure up to
 * reconnect_backoff_ms_max, and subscribes again from just after the last
 * event it returned to the caller (for a stream, its version + 1; for
 * "$ce-" and "$all", its position + 1; or the server's resume point when the
 * last frame was delivered whole). So across reconnections the caller sees
 * every event exactly once, in order: no loss and no duplicate. (As a
 * safeguard, an event at or before the last position returned is dropped
 * and counted in evs_sub_stats_t.duplicates_dropped; it stays 0 against a
 * correct server.) While the server is unreachable evs_sub_next() returns
 * EVS_ETIMEDOUT at each timeout and keeps trying; one attempt may overrun
 * the timeout by up to connect_timeout_ms + io_timeout_ms. A failure that
 * evs_error_retryable() calls incurable (a server refusal such as
 * EVS_EBAD_REQUEST or EVS_EACCESS, EVS_EPROTOCOL_VERSION, -ENOMEM) ends the
 * subscription: evs_sub_next() then returns that error, now and after.
 * A subscription from_end that loses its connection before it got any
 * frame resumes from the head the server reported when it started ("$ce-",
 * "$all") or from the end again (a stream).
 *
 * ## Threads
 *
 * An evs_sub_t is used by one thread at a time (evs_sub_next() and
 * evs_sub_close() must not run concurrently); different subscriptions are
 * independent. */

typedef struct evs_sub evs_sub_t;

#define EVS_SUB_BATCH_MAX_DEFAULT 4096u /* events per frame, the library's buffer bound */
#define EVS_SUB_BATCH_MAX_LIMIT 65536u
#define EVS_SUB_TYPES_MAX 64u           /* event types in one filter */

/* What to subscribe to. Zero-initialise, then set what you need. The
 * strings are copied by evs_subscribe(). */
typedef struct {
    const char *stream;        /* a stream, "$ce-<category>" or "$all" */
    uint64_t from;             /* first version (stream) or position ($ce-, $all); inclusive */
    bool from_end;             /* only events appended after the subscription (ignores from) */
    const char *const *types;  /* filter: keep events of these types... */
    size_t type_count;         /* at most EVS_SUB_TYPES_MAX */
    const char *type_prefix;   /* ...or whose type starts with this (NULL: none) */
    const char *stream_prefix; /* only events of streams starting with this (NULL: all) */
    uint32_t batch_max;        /* events per frame, 1..EVS_SUB_BATCH_MAX_LIMIT
                                  (0: EVS_SUB_BATCH_MAX_DEFAULT): also the most events the
                                  library holds for this subscription */
} evs_subscribe_t;

typedef enum {
    EVS_SUB_EVENT = 1,     /* item.event is the next event */
    EVS_SUB_CAUGHT_UP = 2, /* every stored event has been delivered; live events follow.
                              Comes once, and again after the subscriber fell behind (or
                              reconnected) and caught up */
} evs_sub_item_kind_t;

/* One item from evs_sub_next(). event's pointers stay valid until the next
 * evs_sub_next() or evs_sub_close() on the subscription. */
typedef struct {
    evs_sub_item_kind_t kind;
    evs_recorded_event_t event; /* EVS_SUB_EVENT */
    uint64_t next;              /* where a new subscription would resume: after this event,
                                   or the caught-up point (version for a stream, else position) */
} evs_sub_item_t;

typedef struct {
    uint64_t events_delivered;   /* events returned by evs_sub_next() */
    uint64_t reconnects;         /* successful re-subscriptions after a failure */
    uint64_t duplicates_dropped; /* events the server sent twice (0 against a correct server) */
    int last_error;              /* why the connection last failed (0: never) */
    char last_error_msg[EVS_MESSAGE_BYTES_MAX];
} evs_sub_stats_t;

/* Connects (opts NULL: all defaults), sends the subscription and waits for
 * the server to accept it (at most connect_timeout_ms + io_timeout_ms per
 * attempt). While the store cannot be reached (a retryable error), the
 * first connection is retried with the reconnection backoff for up to
 * opts.retry_ms_max, so a subscriber may start before the store; then, or
 * on another error, it fails. Returns 0 and *out (free it with evs_sub_close()), or:
 * -EINVAL (no stream, bad options, too many types, batch_max over the limit),
 * the errors of evs_connect(), a server error (EVS_EBAD_REQUEST, ...),
 * EVS_ETIMEDOUT, EVS_ECLOSED, EVS_EPROTOCOL, -ENOMEM. */
int evs_subscribe(const evs_options_t *opts, const evs_subscribe_t *req, evs_sub_t **out);

/* Waits up to timeout_ms (0: do not wait; -1: no bound) for the next item
 * and fills *item. Returns 0, EVS_ETIMEDOUT (nothing yet: call again; also
 * while reconnecting), or the error that ended the subscription (a server
 * refusal on re-subscribing, EVS_EPROTOCOL_VERSION, -ENOMEM), which every
 * later call returns too. */
int evs_sub_next(evs_sub_t *sub, int timeout_ms, evs_sub_item_t *item);

/* Copies the subscription's counters into *out. */
void evs_sub_stats(const evs_sub_t *sub, evs_sub_stats_t *out);

/* Sends Unsubscribe (best effort, not waiting for the server's answer),
 * closes the connection and frees sub. NULL is a no-op. */
void evs_sub_close(evs_sub_t *sub);

/* ==== persistent subscription groups ================================== */

/* A group reads a stream, a category or "$all" on the server and shares its
 * events among the consumers that join it (competing consumers): each
 * event goes to one consumer at a time, which acks it (done), or nacks it
 * (retry now, park, skip). An event not acked within ack_timeout_ms is
 * delivered again (retry_count + 1); after max_retries it is parked: appended
 * to the stream "$parked-<name>" (read it with evs_read()), from where
 * evs_group_replay_parked() delivers it again. The group's checkpoint is
 * kept on the server, so groups survive restarts. Delivery is at least once:
 * handlers must be idempotent. */

typedef enum {
    EVS_GROUP_ROUND_ROBIN = 0, /* each event to the next consumer with room */
    EVS_GROUP_PINNED = 1,      /* the events of one stream always to the same consumer, in
                                  order */
} evs_group_strategy_t;

#define EVS_GROUP_TYPES_MAX 64u /* event types in a group's filter */

/* A group's settings. Zero-initialise, then set what you need; 0 means the
 * server's default for the numbers. stream, from and from_end apply to
 * evs_group_create() only; evs_group_update() replaces the others. */
typedef struct {
    const char *name;
    const char *stream;         /* a stream, "$ce-<category>" or "$all" */
    uint64_t from;              /* first version (stream) or position ($ce-, $all) */
    bool from_end;              /* start with the events appended after creation */
    evs_group_strategy_t strategy;
    uint32_t ack_timeout_ms;    /* redeliver when not acked in time */
    uint32_t max_retries;       /* deliveries after the first, then park */
    uint32_t inflight_max_per_consumer; /* unacked events per consumer */
    const char *const *types;   /* filter: keep events of these types... */
    size_t type_count;
    const char *type_prefix;    /* ...or whose type starts with this (NULL: none) */
} evs_group_settings_t;

/* A group's description. Pointers (settings' strings and types) stay valid
 * until evs_group_info_free() (or evs_group_list_free() for a list entry). */
typedef struct {
    evs_group_settings_t settings;
    uint64_t checkpoint;  /* every event before it is acked, parked or skipped */
    uint64_t next;        /* the next event the group reads from the log */
    uint64_t lag;         /* head position minus checkpoint */
    uint32_t consumers;
    uint32_t inflight;    /* delivered, not yet acked */
    uint64_t parked;      /* events in "$parked-<name>" */
    uint64_t delivered;
    uint64_t acked;
    uint64_t redelivered;
    void *owner_;         /* private */
} evs_group_info_t;

typedef struct {
    evs_group_info_t *groups; /* count groups */
    size_t count;
    void *owner_;             /* private */
} evs_group_list_t;

/* Creates a group. Returns 0, or -EINVAL (no name or stream, too many
 * types), EVS_EGROUP_EXISTS, EVS_EBAD_REQUEST, and the errors of any
 * blocking call (EVS_ETIMEDOUT, EVS_ECLOSED, EVS_EPROTOCOL, EVS_EDEADLOCK). */
int evs_group_create(evs_conn_t *conn, const evs_group_settings_t *settings);

/* Changes a group's strategy, timeouts, limits and filter (settings->name
 * names it; stream, from and from_end are ignored). Returns 0, or -EINVAL,
 * EVS_EGROUP_NOT_FOUND, EVS_EBAD_REQUEST, and the errors of any blocking
 * call. */
int evs_group_update(evs_conn_t *conn, const evs_group_settings_t *settings);

/* Deletes a group (its consumers are dropped). Returns 0, or -EINVAL,
 * EVS_EGROUP_NOT_FOUND, and the errors of any blocking call. */
int evs_group_delete(evs_conn_t *conn, const char *name);

/* Describes a group. The caller frees *out with evs_group_info_free(); on
 * failure *out is zeroed. Returns 0, or -EINVAL, EVS_EGROUP_NOT_FOUND,
 * -ENOMEM, and the errors of any blocking call. */
int evs_group_info(evs_conn_t *conn, const char *name, evs_group_info_t *out);

/* Frees what evs_group_info() put in *info and zeroes it. NULL is a no-op. */
void evs_group_info_free(evs_group_info_t *info);

/* Describes every group. The caller frees *out with evs_group_list_free().
 * Returns 0, or -ENOMEM and the errors of any blocking call. */
int evs_group_list(evs_conn_t *conn, evs_group_list_t *out);

/* Frees what evs_group_list() put in *list and zeroes it. NULL is a no-op. */
void evs_group_list_free(evs_group_list_t *list);

/* Delivers the group's parked events to its consumers again. Returns 0, or
 * -EINVAL, EVS_EGROUP_NOT_FOUND, and the errors of any blocking call. */
int evs_group_replay_parked(evs_conn_t *conn, const char *name);

/* ---- group consumers ---- */

/* A consumer joins a group over a connection of its own and pulls events
 * with evs_consumer_next(), as a subscription does (same reasons, same
 * bounded memory: at most inflight_max events are outstanding). When the
 * connection fails or the server drops the consumer, evs_consumer_next()
 * rejoins the group with the same backoff as a subscription. The events
 * that were in flight then go to other consumers (or to this one again):
 * delivery is at least once, an event may come more than once, and an ack
 * for an event delivered before the reconnection may be refused or ignored
 * (it is counted, not returned: see evs_consumer_stats_t).
 *
 * Acks and nacks are sent at once and not waited for (the server answers
 * each; evs_consumer_next() reads the answers). A refused one is counted in
 * ack_errors with its error kept in last_ack_error; the event is then
 * delivered again after its timeout.
 *
 * Threads: evs_consumer_next() is called by one thread at a time;
 * evs_consumer_ack() and evs_consumer_nack() may be called from any thread,
 * also while evs_consumer_next() waits (so workers can ack); evs_consumer_close()
 * only when no other call runs. */

typedef struct evs_consumer evs_consumer_t;

typedef enum {
    EVS_NACK_RETRY = 0, /* deliver it again (retry_count + 1; parked after max_retries) */
    EVS_NACK_PARK = 1,  /* park it in "$parked-<name>" now */
    EVS_NACK_SKIP = 2,  /* drop it: treat as done */
} evs_nack_action_t;

/* One event from evs_consumer_next(). event's pointers stay valid until the
 * next evs_consumer_next() or evs_consumer_close(). */
typedef struct {
    evs_recorded_event_t event;
    uint32_t retry_count; /* 0 on the first delivery */
} evs_group_event_t;

typedef struct {
    uint64_t events_delivered; /* events returned by evs_consumer_next() */
    uint64_t acks_sent;        /* ack and nack requests sent */
    uint64_t acks_done;        /* ...and answered with success */
    uint64_t ack_errors;       /* ...and refused */
    int last_ack_error;
    uint64_t rejoins;          /* successful rejoins after a failure */
    int last_error;            /* why the connection last failed (0: never) */
    char last_error_msg[EVS_MESSAGE_BYTES_MAX];
} evs_consumer_stats_t;

#define EVS_NACK_REASON_BYTES_MAX 1024u

/* Connects (opts NULL: all defaults) and joins the group name with at most
 * inflight_max unacked events (0: the group's setting). While the store
 * cannot be reached (a retryable error), the first connection is retried
 * with the reconnection backoff for up to opts.retry_ms_max; then, or on
 * another error, it fails. Returns 0 and *out (free it with
 * evs_consumer_close()), or: -EINVAL, the errors of evs_connect(),
 * EVS_EGROUP_NOT_FOUND, another server error, EVS_ETIMEDOUT, EVS_ECLOSED,
 * EVS_EPROTOCOL, -ENOMEM. */
int evs_group_join(const evs_options_t *opts, const char *name, uint32_t inflight_max,
                   evs_consumer_t **out);

/* Waits up to timeout_ms (0: do not wait; -1: no bound) for the next event.
 * Returns 0, EVS_ETIMEDOUT (nothing yet; also while rejoining), or the error
 * that ended the consumer (EVS_EGROUP_NOT_FOUND when the group was deleted,
 * another server refusal on rejoining, -ENOMEM), which every later call
 * returns too. */
int evs_consumer_next(evs_consumer_t *c, int timeout_ms, evs_group_event_t *ev);

/* Acks the event at position: it is done. Returns 0 (sent), or EVS_ECLOSED
 * (the connection is down: the event will be delivered again), EVS_ETIMEDOUT
 * (the send did not finish within io_timeout_ms; the connection is then
 * reset), -ENOMEM. */
int evs_consumer_ack(evs_consumer_t *c, uint64_t position);

#define EVS_ACK_MANY_MAX 4096u /* positions in one evs_consumer_ack_many() */

/* Acks the events at positions[0..count) in one request (a consumer that
 * handles events on many threads saves a round of frames per event).
 * Returns as evs_consumer_ack(), or -EINVAL (count 0 or over
 * EVS_ACK_MANY_MAX, positions NULL). */
int evs_consumer_ack_many(evs_consumer_t *c, const uint64_t *positions, size_t count);

/* Nacks the event at position with action; reason (may be NULL; at most
 * EVS_NACK_REASON_BYTES_MAX bytes) is kept with a parked event. Returns as
 * evs_consumer_ack(), or -EINVAL (bad action or reason). */
int evs_consumer_nack(evs_consumer_t *c, uint64_t position, evs_nack_action_t action,
                      const char *reason);

/* Copies the consumer's counters into *out. Thread-safe. */
void evs_consumer_stats(evs_consumer_t *c, evs_consumer_stats_t *out);

/* Leaves the group (Unsubscribe, best effort, not waiting for the answer),
 * closes the connection and frees c. Unacked events go to other consumers.
 * NULL is a no-op. */
void evs_consumer_close(evs_consumer_t *c);

#ifdef __cplusplus
}
#endif
#endif
