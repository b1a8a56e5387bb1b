/* log.h -- the public interface of the evstore storage engine.
 *
 * A log is a directory of segment files holding batches of events. Every
 * event has a 64-bit global position (strictly increasing, starting at 0)
 * and belongs to one stream, in which it has a version (0, 1, 2, ...).
 * Streams named "<category>-<id>" are also readable as "$ce-<category>";
 * the whole log is readable as "$all".
 *
 * Threading: a log_t is driven by one thread (the caller's event loop).
 * Every function below must be called from that thread. The engine runs one
 * internal worker thread of its own, for work kept off the append path
 * (preparing segments ahead of need, writing the index of a sealed segment).
 *
 * Errors: functions that can fail return 0 (or a count) on success and a
 * negative code on failure: either -errno (-EIO, -ENOSPC, -ENOMEM, ...) or
 * one of the LOG_E* codes below. log_strerror() names them all.
 */
#ifndef EVSTORE_STORAGE_LOG_H
#define EVSTORE_STORAGE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes of the engine, in a range that no errno reaches. */
enum {
    LOG_EWRONG_VERSION = -10001, /* expected version did not match; see actual_version */
    LOG_EIDEMPOTENCY = -10002,   /* event ids partly match events already written */
    LOG_EBAD_REQUEST = -10003,   /* malformed request: empty, bad name, duplicate stream */
    LOG_ETOO_LARGE = -10004,     /* an event or a batch is over its limit */
    LOG_EBUSY = -10005,          /* too many bytes waiting to be written; retry later */
    LOG_ECORRUPT = -10006,       /* a checksum failed; the data is not returned */
    LOG_ELOCKED = -10007,        /* another process holds the log directory */
    LOG_EFORMAT = -10008,        /* a file is not an evstore file or has another version */
    LOG_ENOT_FOUND = -10009,     /* the stream does not exist */
    LOG_ECLOSING = -10010,       /* the log is closing; nothing new is accepted */
};

/* Returns a static, human-readable description of an error code (LOG_E* or -errno). */
const char *log_strerror(int err);

/* ---- configuration -------------------------------------------------- */

typedef enum {
    LOG_DURABILITY_ALWAYS = 0, /* acknowledge after fdatasync (default) */
    LOG_DURABILITY_INTERVAL,   /* acknowledge after write; fdatasync every interval_ms */
    LOG_DURABILITY_NONE,       /* acknowledge after write; fdatasync only on roll and close */
} log_durability_t;

/* Defaults of every limit; each is a field of log_config_t. */
#define LOG_SEGMENT_BYTES_DEFAULT (256u * 1024 * 1024)
#define LOG_SEGMENT_BYTES_MIN (64u * 1024)
#define LOG_SEGMENT_BYTES_MAX (1024u * 1024 * 1024)
/* Off by default: measured, a compressed batch makes every point read of one
 * of its events decompress the whole batch (100 events of one stream spread
 * over 100 batches: 299 us instead of 6 us), while saving ~17% of the bytes
 * of small events. Worth it for logs read mostly whole ($all, subscriptions)
 * with large, repetitive events. */
#define LOG_COMPRESS_THRESHOLD_BYTES_DEFAULT 0u
#define LOG_COMPRESS_THRESHOLD_BYTES_SUGGESTED 4096u
#define LOG_WRITE_BYTES_MAX_DEFAULT (4u * 1024 * 1024)
#define LOG_WRITES_INFLIGHT_MAX_DEFAULT 4u /* measured: 4 concurrent write+fdatasync
                                               chains sync ~2x the bytes of one */
#define LOG_WRITES_INFLIGHT_LIMIT 16u
#define LOG_PENDING_BYTES_MAX_DEFAULT (64u * 1024 * 1024)
#define LOG_EVENT_BYTES_MAX_DEFAULT (1024u * 1024)
#define LOG_BATCH_EVENTS_MAX_DEFAULT 10000u
#define LOG_BATCH_STREAMS_LIMIT 100u /* hard: results carry one version per stream in
                                        a fixed array; batch_streams_max defaults to it */
#define LOG_IDEMPOTENCY_SCAN_MAX_DEFAULT 16u
#define LOG_IDEMPOTENCY_WINDOW_DEFAULT (256u * 1024)
#define LOG_INTERVAL_MS_DEFAULT 10u
#define LOG_STREAM_NAME_BYTES_MAX 1024u
#define LOG_TYPE_BYTES_MAX 255u

typedef struct {
    const char *dir;                   /* data directory; created if missing */
    uint64_t segment_bytes;            /* roll size of a segment file */
    log_durability_t durability;       /* when an append is acknowledged */
    uint32_t interval_ms;              /* fdatasync period in LOG_DURABILITY_INTERVAL */
    uint32_t compress_threshold_bytes; /* LZ4 a body at least this large (0: never, the default) */
    uint32_t write_bytes_max;          /* largest group-commit write and largest batch
                                          (capped at what a segment holds) */
    uint32_t writes_inflight_max;      /* group-commit writes (each with its fdatasync) in
                                          flight at once, 1..LOG_WRITES_INFLIGHT_LIMIT */
    uint64_t pending_bytes_max;        /* bytes accepted but not yet written; over it LOG_EBUSY */
    uint32_t event_bytes_max;          /* metadata + data of one event */
    uint32_t batch_events_max;         /* events in one append */
    uint32_t batch_streams_max;        /* streams in one append */
    uint32_t idempotency_scan_max;     /* a retry with expected "any" is recognised among
                                          the stream's last this many events... */
    uint32_t idempotency_window;       /* ...or among the log's last this many (by id) */
    bool prepare_segments;             /* write out next segment ahead of need (default true) */
    bool read_only;                    /* open without the lock, for offline reading; no appends */
    /* Called (from log_poll) after each group-commit write completes: the
     * events and bytes it carried and its write+fdatasync latency. Optional. */
    void (*on_commit)(void *ctx, uint64_t events, uint64_t bytes, uint64_t latency_ns);
    void *on_commit_ctx;
} log_config_t;

/* Fills *cfg with the defaults above; dir is left NULL. */
void log_config_default(log_config_t *cfg);

/* Parses a durability name: "always", "none", "interval" or "interval:<ms>".
 * Returns 0, or LOG_EBAD_REQUEST for any other text. */
int log_durability_parse(const char *text, log_durability_t *mode, uint32_t *interval_ms);

/* Returns the name of a durability mode ("always", "interval", "none"). */
const char *log_durability_name(log_durability_t mode);

/* ---- opening and closing -------------------------------------------- */

typedef struct log_s log_t;

/* What recovery did, for the operator's log. */
typedef struct {
    uint32_t segments;            /* segment files found */
    uint32_t index_files_loaded;  /* segments whose persisted index was used */
    uint64_t bytes_scanned;       /* log bytes read because no index covered them */
    uint64_t torn_bytes_cut;      /* bytes of an incomplete tail that were cut */
    uint64_t events;              /* events in the log after recovery */
    uint64_t streams;             /* streams in the log after recovery */
    char problem[256];            /* on LOG_ECORRUPT/LOG_EFORMAT: segment, offset, what */
} log_recovery_t;

/* Opens (creating if needed) the log in cfg->dir, recovering it: persisted
 * indices are loaded, the unindexed tail is scanned and verified, a torn tail
 * is cut back to the last whole batch. Damage anywhere else is LOG_ECORRUPT
 * with the place described in rec->problem. rec may be NULL.
 * Returns 0 and *out, or a negative error (LOG_ELOCKED if another process has
 * the directory open for writing). */
int log_open(const log_config_t *cfg, log_t **out, log_recovery_t *rec);

/* Stops accepting appends, writes and syncs every accepted append (running
 * its callback), persists the index of the active segment, stops the worker
 * and frees everything. NULL is a no-op. Returns 0 or the first I/O error. */
int log_close(log_t *log);

/* ---- appending ------------------------------------------------------- */

/* Expected-version values; any value >= 0 is an exact expected version
 * (the version of the stream's last event). */
#define LOG_EXPECT_ANY (-1)
#define LOG_EXPECT_NO_STREAM (-2)
#define LOG_EXPECT_STREAM_EXISTS (-3)

/* The version of a stream with no events. */
#define LOG_VERSION_NONE (-1)

typedef struct {
    uint8_t id[16];       /* unique event id; retries reuse it */
    const char *type;     /* 1..LOG_TYPE_BYTES_MAX bytes */
    size_t type_len;
    const void *metadata; /* may be NULL when metadata_len is 0 */
    size_t metadata_len;
    const void *data;     /* may be NULL when data_len is 0 */
    size_t data_len;
    int64_t timestamp_ns; /* 0: the time of the append */
} log_event_in_t;

typedef struct {
    const char *stream; /* 1..LOG_STREAM_NAME_BYTES_MAX bytes, not starting with '$'
                           (unless the append is a system one) */
    size_t stream_len;
    int64_t expected_version; /* LOG_EXPECT_* or an exact version */
    const log_event_in_t *events;
    uint32_t event_count; /* at least 1 */
} log_stream_append_t;

/* One append: one batch, all or nothing, of events to one or more streams.
 * Positions are given in request order: stream 0's events, then stream 1's... */
typedef struct {
    const log_stream_append_t *streams;
    uint32_t stream_count;
    bool system;  /* allows stream names starting with '$' (the server's own
                     streams: group checkpoints, dead letters); never set it
                     for a client's request */
} log_append_t;

typedef struct {
    int status;                /* 0 or a negative error */
    uint64_t first_position;   /* position of the batch's first event */
    uint32_t event_count;      /* events in the batch */
    bool idempotent;           /* a retry: nothing new was written */
    uint32_t failed_stream;    /* LOG_EWRONG_VERSION/LOG_EIDEMPOTENCY: which stream */
    int64_t actual_version;    /* LOG_EWRONG_VERSION: that stream's version */
    int64_t last_versions[LOG_BATCH_STREAMS_LIMIT]; /* per request stream, after the append */
} log_append_result_t;

typedef void (*log_append_cb)(void *ctx, const log_append_result_t *res);

/* Submits an append. On 0 the batch is accepted: its positions and versions
 * are assigned, and cb runs from a later log_poll() once the batch is durable
 * (as the durability mode defines it) or has failed with an I/O error.
 * A negative return means nothing was accepted and cb will not run; *failure
 * (if not NULL) then says why (status, failed_stream, actual_version).
 * cb must not be NULL.
 * Writing starts at the next log_poll(): the appends accepted before it (and
 * those accepted while a write and its fdatasync are in flight) share one
 * write and one fdatasync (group commit). Measured: starting each write at
 * once splits a burst of 64 single-event appends into alternating groups of
 * 32 and costs a third of the throughput. */
int log_append(log_t *log, const log_append_t *req, log_append_cb cb, void *ctx,
               log_append_result_t *failure);

/* Submits an append and polls until it completes. *res gets the outcome.
 * Returns res->status. For tools and tests; a server uses log_append(). */
int log_append_wait(log_t *log, const log_append_t *req, log_append_result_t *res);

/* Starts writing what was accepted, reaps finished I/O, and runs completion
 * callbacks. Waits at most timeout_ms (0: do not wait, -1: until something
 * completes) when work is in flight. Returns the number of appends completed,
 * or a negative error. */
int log_poll(log_t *log, int timeout_ms);

/* Polls until every accepted append has completed. Returns 0 or an error. */
int log_drain(log_t *log);

/* A file descriptor that becomes readable when log_poll() has completions to
 * reap, for an outer event loop (an eventfd registered with the ring). The
 * outer loop drains it (reads its 8-byte counter) before calling log_poll(),
 * so that a completion arriving during log_poll() signals it again. */
int log_event_fd(const log_t *log);

/* ---- reading --------------------------------------------------------- */

/* An event as read. Pointers stay valid until the visitor returns. */
typedef struct {
    uint64_t position;
    int64_t version;
    int64_t timestamp_ns;
    uint8_t id[16];
    const char *stream;
    uint16_t stream_len;
    const char *type;
    uint16_t type_len;
    const void *metadata;
    uint32_t metadata_len;
    const void *data;
    uint32_t data_len;
} log_event_t;

/* Keeps only events whose type is one of types[], or starts with type_prefix
 * (either may be absent; both absent keeps everything). */
typedef struct {
    const char *const *types;
    size_t type_count;
    const char *type_prefix;
} log_filter_t;

#define LOG_READ_END UINT64_MAX          /* "from the end" for a backwards read */
#define LOG_READ_SCAN_MAX_DEFAULT 100000u /* events examined by one read call */

typedef struct {
    const char *stream; /* a stream (system ones too), "$ce-<category>" or "$all" */
    size_t stream_len;
    uint64_t from;      /* a version for streams, a position for "$ce-" and "$all";
                           inclusive; LOG_READ_END reads backwards from the last */
    bool backwards;
    uint32_t max_count; /* events delivered at most */
    const log_filter_t *filter; /* NULL: every event */
} log_read_t;

typedef struct {
    uint32_t count;         /* events delivered */
    uint64_t next;          /* where to continue: a version or position */
    bool end;               /* no more events in that direction (now) */
    int64_t stream_version; /* stream reads: the stream's last version */
} log_read_result_t;

/* Returns nonzero to stop the read after this event. */
typedef int (*log_visit_cb)(void *ctx, const log_event_t *ev);

/* Reads durable events in order, verifying each one's checksum: an event
 * whose bytes fail it is never delivered; the read stops with LOG_ECORRUPT.
 * Reading a stream that does not exist returns LOG_ENOT_FOUND.
 * Returns 0 with *res filled, or a negative error. */
int log_read(log_t *log, const log_read_t *req, log_visit_cb visit, void *ctx,
             log_read_result_t *res);

/* Sets *version to the stream's last version (LOG_VERSION_NONE if the stream
 * has no events). Never touches the disk. Returns 0 or LOG_ENOT_FOUND. */
int log_stream_version(const log_t *log, const char *stream, size_t stream_len,
                       int64_t *version);

/* Calls fn for every stream (not categories) in no particular order, until
 * fn returns nonzero. */
void log_streams_each(const log_t *log,
                      int (*fn)(void *ctx, const char *name, size_t len, int64_t version),
                      void *ctx);

/* ---- statistics ------------------------------------------------------ */

typedef struct {
    uint64_t head_position;        /* next position to be assigned */
    uint64_t durable_position;     /* positions below it are durable and readable */
    uint64_t appends;              /* appends completed successfully */
    uint64_t events_appended;
    uint64_t bytes_written;        /* log bytes written, with headers */
    uint64_t writes;               /* group-commit writes */
    uint64_t fdatasyncs;
    uint64_t sync_ns_total;        /* summed write+fdatasync latency */
    uint64_t append_errors;
    uint64_t segments;
    uint64_t segments_prepared_missed; /* rolls that found no prepared segment */
    uint64_t streams;
    uint64_t compressed_batches;
} log_stats_t;

void log_stats(const log_t *log, log_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
