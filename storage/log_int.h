/* log_int.h -- internals of the storage engine, shared by the files of
 * storage/ only (and its unit tests). Offline tools use log_offline.h, which
 * holds the on-disk format, the walk, the index view and the name table.
 *
 * On-disk format (little-endian throughout; docs/format.md is the full text):
 *
 *   <dir>/LOCK                  flock()ed by the one writer
 *   <dir>/<20-digit pos>.seg    segment: 4 KiB header, then batches
 *   <dir>/<20-digit pos>.idx    persisted index of that segment
 *   <dir>/prepared.next         the next segment, written out ahead of need
 *   <dir>/prepared.tmp          the same while it is being written
 */
#ifndef EVSTORE_STORAGE_LOG_INT_H
#define EVSTORE_STORAGE_LOG_INT_H

#include "log.h"
#include "log_offline.h"
#include "util.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <liburing.h>

static inline uint64_t align8(uint64_t n) { return (n + 7u) & ~(uint64_t)7u; }

/* ---- checksums and records (record.c) ---- */
uint64_t checksum64(const void *p, size_t n, uint64_t seed);
void segment_header_seal(segment_header_t *h);
void batch_header_seal(batch_header_t *h);
bool batch_header_valid(const batch_header_t *h);
/* True if raw_bytes is possible for the body: equal to stored_bytes, or for
 * LZ4 within what LZ4 can expand stored_bytes to and below a segment. */
bool batch_raw_size_valid(const batch_header_t *h);
size_t record_size(size_t stream_len, size_t type_len, size_t meta_len, size_t data_len);
/* Encodes one record at dst (record_size() bytes, zero-padded). */
void record_encode(uint8_t *dst, uint64_t position, const char *stream, size_t stream_len,
                   int64_t version, const log_event_in_t *ev, int64_t timestamp_ns);
/* Decodes the record at body+offset (of a raw body of body_len bytes) into
 * *ev, verifying its bounds and checksum. 0, or LOG_ECORRUPT. */
int record_decode(const uint8_t *body, size_t body_len, size_t offset, uint64_t position,
                  log_event_t *ev, size_t *record_len);

/* ---- in-memory index (index.c) ---- */
typedef struct stream_s {
    char *name;
    uint16_t name_len;
    bool is_category;
    index_entry_t *entries; /* entries[v] is version v (or ordinal v) */
    uint64_t count;
    uint64_t cap;
    struct stream_s *category; /* NULL when the name has no '-' */
    uint64_t run_epoch;        /* scratch of the one index-file writer at a time */
    uint64_t run_index;
} stream_t;

/* Streams and categories by name (kinds NAMES_KIND_STREAM/_CATEGORY). */
typedef struct {
    names_t names;       /* of stream_t */
    uint64_t streams;    /* non-category entries */
} stream_table_t;

int stream_table_init(stream_table_t *t);
void stream_table_free(stream_table_t *t);
stream_t *stream_table_find(const stream_table_t *t, const char *name, size_t len, bool category);
/* Finds or creates a stream (and its category); NULL on ENOMEM. */
stream_t *stream_table_get(stream_table_t *t, const char *name, size_t len, bool category);
int stream_push(stream_t *s, const index_entry_t *e);
/* Appends n entries at once (loading a persisted index). */
int stream_push_run(stream_t *s, const index_entry_t *e, uint64_t n);
/* Drops every entry at or after position (after a failed write). */
void stream_truncate(stream_t *s, uint64_t position);
/* Index of the first entry with position >= pos (s->count if none). */
uint64_t stream_lower_bound(const stream_t *s, uint64_t pos);

/* ---- recent event ids (idcache.c) ---- */
typedef struct {
    uint64_t hash;     /* idcache_hash() of the id; 0: empty */
    uint64_t position;
} idcache_slot_t;

typedef struct {
    idcache_slot_t *slots;
    uint64_t mask;
    uint64_t window;   /* events remembered */
} idcache_t;

int idcache_init(idcache_t *c, uint64_t window);
void idcache_free(idcache_t *c);
uint64_t idcache_hash(const uint8_t id[16]);
/* Remembers that the event at position has this id; head: the log head. */
void idcache_put(idcache_t *c, const uint8_t id[16], uint64_t position, uint64_t head);
/* Candidate positions of events with this id (to be confirmed by reading). */
int idcache_find(const idcache_t *c, const uint8_t id[16], uint64_t head, uint64_t *positions,
                 int max);
/* Forgets every entry at or after position (after a failed write). O(slots). */
void idcache_forget_from(idcache_t *c, uint64_t position);

/* ---- segments (segment.c) ---- */
typedef struct {
    stream_t *stream;
    uint64_t ordinal; /* version or category ordinal */
    index_entry_t entry;
} builder_entry_t;

typedef struct {
    uint64_t first_position;
    uint64_t end_position;   /* durable positions end here */
    uint64_t size;           /* file size */
    uint64_t write_offset;   /* next byte to fill (accepted, maybe unwritten) */
    uint64_t durable_offset; /* bytes below it are durable */
    uint64_t prev_checksum;  /* chain value at the segment start */
    uint64_t torn_window;    /* from the header: 0 unbounded */
    int fd;
    const uint8_t *map;      /* read-only mapping of the whole file */
    sparse_entry_t *sparse;
    uint64_t sparse_count, sparse_cap;
    uint64_t sparse_next_offset; /* record a sparse entry at or past this offset */
    builder_entry_t *builder; /* events of the segment, for its index file */
    uint64_t builder_count, builder_cap;
    bool sealed;
    bool fresh;              /* header and directory entry not yet known durable */
    bool next_asked;         /* the next segment's preparation was asked for */
    bool indexed;            /* its .idx file is written and current */
} segment_t;

void segment_path(char *buf, size_t cap, const char *dir, uint64_t first_position, const char *ext);
int segment_map(segment_t *s);
void segment_unmap(segment_t *s);
int segment_sparse_note(segment_t *s, uint64_t position, uint64_t batch_offset);
int segment_builder_push(segment_t *s, stream_t *stream, uint64_t ordinal, const index_entry_t *e);
void segment_truncate_memory(segment_t *s, uint64_t position);
/* Writes <dir>/<pos>.idx from the builder entries (sorted copy) atomically. */
int segment_index_write(const char *dir, const segment_t *s, uint64_t end_position,
                        uint64_t end_offset, uint64_t end_checksum);
/* Writes zeros over [from, to) of s and syncs them: a tail that recovery or a
 * failed write left must never be mistaken for batches. Synchronous (rare
 * paths only). 0 or -errno. */
int segment_zero(const segment_t *s, uint64_t from, uint64_t to);
void segment_free(segment_t *s);

/* ---- the worker thread (worker.c) ---- */
typedef struct log_worker_s log_worker_t;
int worker_start(log_worker_t **out, const char *dir, uint64_t segment_bytes, bool prepare);
void worker_stop(log_worker_t *w);
/* Takes the prepared segment file if one is ready: returns its fd (renamed
 * to path) or -1 when none is ready. */
int worker_take_prepared(log_worker_t *w, const char *path);
/* Asks for the next segment to be prepared (a no-op if one is ready or
 * being prepared, or preparing is off). */
void worker_want_prepared(log_worker_t *w);
/* Asks for a prepared segment and waits until it is ready (or preparing has
 * failed). */
void worker_wait_prepared(log_worker_t *w);
/* Queues writing of a sealed segment's index; the worker owns nothing of s,
 * which must stay alive and unchanged until worker_index_done(). */
void worker_queue_index(log_worker_t *w, segment_t *s, uint64_t end_position, uint64_t end_offset,
                        uint64_t end_checksum);
/* Waits for every queued index write. */
void worker_flush(log_worker_t *w);

/* ---- the log ---- */
typedef struct pending_s {
    log_append_cb cb;
    void *ctx;
    uint64_t end_position;    /* completes once the acknowledged position reaches it */
    log_append_result_t result;
    struct pending_s *next;
} pending_t;

/* A run of bytes of one write buffer bound for one segment. */
typedef struct {
    struct wbuf_s *owner;
    segment_t *segment;
    uint64_t file_offset;
    uint64_t buf_offset;   /* into the buffer */
    uint64_t len;
    uint64_t done;         /* bytes already written */
    bool seals;            /* the segment's last bytes: fdatasync even in "none" */
} extent_t;

#define EXTENTS_MAX 4u

typedef enum { WBUF_FILLING, WBUF_INFLIGHT, WBUF_DONE } wbuf_state_t;

/* Bytes of whole batches waiting for (or in) one group-commit write. */
typedef struct wbuf_s {
    uint8_t *data;
    uint64_t len, cap;
    extent_t extents[EXTENTS_MAX];
    uint32_t extent_count;
    wbuf_state_t state;
    uint32_t sqes_pending;   /* completions still to come for its submission */
    int error;               /* first error of its writes or fdatasyncs */
    uint64_t start_ns;       /* first submission */
    uint64_t start_position, end_position; /* the positions it holds */
    uint64_t start_checksum;               /* chain value before its first batch */
    uint64_t end_checksum;                 /* chain value after its last batch */
    struct wbuf_s *next;
} wbuf_t;

/* Ids of events accepted but not yet written, by position, so that a retry
 * arriving before the write completes is still recognised. */
typedef struct {
    uint8_t (*ids)[16];
    uint64_t base;         /* position of ids[start] */
    uint64_t start, count, cap;
} id_queue_t;

struct log_s {
    log_config_t cfg;
    char *dir;
    int lock_fd;
    int dir_fd;
    int event_fd;
    struct io_uring ring;
    bool ring_ready;
    log_worker_t *worker;

    segment_t **segments;   /* sorted by first_position; each stays put while open */
    uint32_t segment_count, segment_cap;
    uint32_t segments_indexed; /* segments [0, n) are sealed and handed to the worker */

    stream_table_t streams;
    id_queue_t pending_ids;
    idcache_t ids;

    uint64_t head_position;    /* next position to assign */
    uint64_t head_checksum;    /* chain value after the last accepted batch */
    uint64_t written_position; /* positions below: written (maybe unsynced) */
    uint64_t written_checksum;
    uint64_t synced_position;  /* positions below: written and fdatasync'd */
    int fatal;                 /* a failed fdatasync after acknowledging: no more appends */

    wbuf_t *wq_head, *wq_tail; /* write queue, in position order: done, in flight, filling */
    wbuf_t *wfree;             /* recycled buffers */
    uint32_t writes_inflight;  /* buffers being written and synced, concurrently */
    const segment_t *last_submitted; /* segment of the last extent submitted */
    bool sync_inflight;        /* a lone fdatasync (interval mode) is in flight */
    uint64_t sync_target;      /* position that lone fdatasync makes durable */
    pending_t *pending_head, *pending_tail;
    uint64_t pending_bytes;
    bool closing;
    uint64_t last_sync_ns;

    uint8_t *encode;           /* scratch for compression */
    size_t encode_cap;
    uint8_t *scratch;          /* decompressed body for reads */
    size_t scratch_cap;
    const segment_t *scratch_segment;
    uint64_t scratch_offset;   /* batch offset held in scratch */

    log_stats_t stats;
};

/* Remembers the id of the accepted event at position (the next one) (idcache.c). */
int idq_push(id_queue_t *q, uint64_t position, const uint8_t id[16]);

/* The position below which events are acknowledged and readable. */
static inline uint64_t log_visible_position(const log_t *log)
{
    return log->cfg.durability == LOG_DURABILITY_ALWAYS ? log->synced_position
                                                        : log->written_position;
}


/* segments.c */
/* Appends s to log->segments. */
int segments_add(log_t *log, segment_t *s);
/* Creates the next segment, starting at log->head_position. */
int segment_roll(log_t *log);
/* The torn_window_bytes this configuration writes into segment headers. */
uint64_t log_torn_window(const log_t *log);

/* recovery.c */
int log_recover(log_t *log, log_recovery_t *rec);
/* Scans batches of segment s from offset, verifying them and feeding the
 * index; stops at the first batch that is not whole. Returns 0 and the offset
 * where the valid data ends in *end, or a negative error. */
int log_scan_segment(log_t *log, uint32_t seg, uint64_t offset, uint64_t *end);

/* writer.c */
/* Queues an encoded batch region: returns where to encode need bytes for
 * segment s at file_offset, or NULL on ENOMEM. */
uint8_t *writer_reserve(log_t *log, segment_t *s, uint64_t file_offset, uint64_t need);
/* Trims the last reservation to used bytes (after compression). */
void writer_commit(log_t *log, uint64_t need, uint64_t used, uint64_t end_position,
                   uint64_t end_checksum);
/* Makes the fill buffer end segment s with an fdatasync, before a roll. */
void writer_seal(log_t *log, segment_t *s);
int writer_submit(log_t *log);
int writer_reap(log_t *log, int timeout_ms);
void writer_free(log_t *log);

/* segment lookup by position (read.c) */
int log_segment_for(const log_t *log, uint64_t position);
/* Reads the event an index entry points at (verified). 0 or LOG_ECORRUPT. */
int log_event_at(log_t *log, const index_entry_t *e, log_event_t *ev);

#endif
