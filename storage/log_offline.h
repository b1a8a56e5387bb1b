/* log_offline.h -- the storage engine for offline tools: the on-disk
 * format, a verifying walk over the batches of a segment, a bounds-checked
 * view of an index file, a table of names, and a set of segment files
 * opened read-only that can be scanned as recovery scans them, re-indexed,
 * and have a torn tail cut. evstore-inspect is built on this header and
 * log.h alone; the engine's internals (log_int.h) stay inside storage/.
 *
 * Nothing here needs a running engine or the directory's LOCK, except
 * where a function says it writes. docs/format.md is the full text of the
 * format; the structures below are its byte layout (little-endian).
 *
 * Errors follow log.h: 0 (or a count) on success, a negative code on
 * failure: -errno or a LOG_E* code (log_strerror() names them).
 */
#ifndef EVSTORE_STORAGE_LOG_OFFLINE_H
#define EVSTORE_STORAGE_LOG_OFFLINE_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== the format ======================================================== */

#define FORMAT_VERSION 1u

/* ---- segment header: the first SEGMENT_HEADER_BYTES of a segment ---- */
#define SEGMENT_MAGIC "EVSTSEG1"
#define SEGMENT_HEADER_BYTES 4096u

typedef struct {
    char magic[8];            /* SEGMENT_MAGIC */
    uint32_t format_version;  /* FORMAT_VERSION */
    uint32_t header_bytes;    /* SEGMENT_HEADER_BYTES: batches start here */
    uint64_t first_position;  /* global position of the first event */
    uint64_t segment_bytes;   /* size of the file */
    uint64_t prev_checksum;   /* chain value before this segment's first batch */
    int64_t created_ns;       /* CLOCK_REALTIME at creation */
    uint64_t torn_window_bytes; /* most bytes an unfinished write can span: write_bytes_max
                                   under "always", 0 (unbounded) under other modes */
    uint64_t header_checksum; /* XXH3-64 of the 56 bytes above */
} segment_header_t;
_Static_assert(sizeof(segment_header_t) == 64, "segment header layout");

/* ---- batch: header, then body (events, maybe LZ4-compressed) ---- */
#define BATCH_MAGIC 0x31425645u /* "EVB1" */
#define BATCH_FLAG_LZ4 0x1u
#define BATCH_ALIGN 8u

typedef struct {
    uint32_t magic;            /* BATCH_MAGIC */
    uint16_t flags;            /* BATCH_FLAG_* */
    uint16_t reserved;         /* zero */
    uint32_t event_count;      /* >= 1 */
    uint32_t stored_bytes;     /* body bytes on disk (after compression) */
    uint32_t raw_bytes;        /* body bytes after decompression */
    uint32_t reserved2;        /* zero */
    uint64_t first_position;   /* position of the first event */
    int64_t timestamp_ns;      /* when the batch was accepted */
    uint64_t prev_checksum;    /* header_checksum of the previous batch (0 for the first) */
    uint64_t body_checksum;    /* XXH3-64 of the stored body, seeded with first_position */
    uint64_t header_checksum;  /* XXH3-64 of the 56 bytes above */
} batch_header_t;
_Static_assert(sizeof(batch_header_t) == 64, "batch header layout");

/* ---- event record inside a (raw) body, 8-byte aligned ---- */
typedef struct {
    uint64_t checksum;     /* XXH3-64 of bytes [8, record_bytes), seeded with the position */
    uint32_t record_bytes; /* unpadded length of this record, header included */
    uint16_t stream_len;
    uint16_t type_len;
    uint32_t metadata_len;
    uint32_t data_len;
    int64_t version;
    int64_t timestamp_ns;
    uint8_t id[16];
    /* then: stream, type, metadata, data; zero padding to 8 bytes */
} record_header_t;
_Static_assert(sizeof(record_header_t) == 56, "record header layout");

/* ---- index file (<pos>.idx) ---- */
#define INDEX_MAGIC "EVSTIDX1"

typedef struct {
    char magic[8];           /* INDEX_MAGIC */
    uint32_t format_version; /* FORMAT_VERSION */
    uint32_t run_count;      /* stream and category runs */
    uint64_t first_position; /* the segment's first position */
    uint64_t end_position;   /* positions below this are covered */
    uint64_t end_offset;     /* segment offset just past the last covered batch */
    uint64_t end_checksum;   /* header_checksum of the last covered batch (chain value) */
    uint64_t entry_count;
    uint64_t sparse_count;
    uint64_t names_bytes;
    uint64_t body_checksum;  /* XXH3-64 of everything after this header */
    uint64_t reserved;
    uint64_t header_checksum; /* XXH3-64 of the 88 bytes above */
} index_header_t;
_Static_assert(sizeof(index_header_t) == 96, "index header layout");

/* Where one event lives: its segment is found from the position. */
typedef struct {
    uint64_t position;
    uint32_t batch_offset; /* segment offset of the batch header */
    uint32_t body_offset;  /* offset of the record in the raw body */
} index_entry_t;
_Static_assert(sizeof(index_entry_t) == 16, "index entry layout");

/* Sparse $all index: one batch start every SPARSE_STEP_BYTES of segment. */
#define SPARSE_STEP_BYTES 4096u
typedef struct {
    uint64_t position;     /* first position of the batch */
    uint32_t batch_offset;
    uint32_t reserved;
} sparse_entry_t;

#define RUN_KIND_STREAM 0u
#define RUN_KIND_CATEGORY 1u
typedef struct {
    uint64_t first_ordinal; /* version (stream) or ordinal in the category */
    uint64_t entry_index;   /* first of its entries in the entry array */
    uint32_t count;
    uint32_t name_offset;   /* into the names blob */
    uint16_t name_len;
    uint16_t kind;          /* RUN_KIND_* */
    uint32_t reserved;
} index_run_t;
_Static_assert(sizeof(index_run_t) == 32, "index run layout");

/* Checks a segment header: magic, checksum, version, header and segment
 * sizes. Returns 0, LOG_EFORMAT (not a segment, another format version, a
 * size out of range) or LOG_ECORRUPT (the checksum fails). */
int segment_header_check(const segment_header_t *h);
/* The bytes a batch takes in its segment: header and stored body, padded
 * to BATCH_ALIGN. h must have passed its checks (walk_header_whole()). */
uint64_t batch_stored_size(const batch_header_t *h);
/* The length of the category part of a stream name ("order" of
 * "order-42"): up to its first '-', or 0 when it has none or is a system
 * stream ("$..."). */
size_t stream_category_len(const char *name, size_t len);

/* ==== the walk: one segment's batches, verified ========================== */
/* Everything is bounds-checked against the bytes it is given; nothing
 * writes. */

/* The outcome of examining one batch slot, in the order of the checks. */
typedef enum {
    WALK_OK = 0,              /* a valid batch at its expected place */
    WALK_END,                 /* magic 0: the end of the data in this segment */
    WALK_NO_ROOM,             /* fewer than 64 bytes left before the end */
    WALK_BAD_MAGIC,           /* expected: BATCH_MAGIC, found: the magic */
    WALK_BAD_HEADER_CHECKSUM, /* expected: computed, found: stored */
    WALK_BAD_COUNT,           /* event_count 0 */
    WALK_BAD_SIZE,            /* expected: bytes left, found: batch size */
    WALK_BAD_POSITION,        /* expected/found: first_position */
    WALK_BAD_CHAIN,           /* expected/found: prev_checksum */
    WALK_BAD_BODY_CHECKSUM,   /* expected: computed, found: stored */
    WALK_BAD_RAW_SIZE,        /* expected: stored (or limit), found: raw_bytes */
    WALK_BAD_LZ4,             /* expected: raw_bytes, found: decompressed bytes */
    WALK_BAD_RECORD,          /* record bad_record (bounds or checksum) */
    WALK_BAD_STREAM,          /* record bad_record: empty stream name */
    WALK_BAD_FILL,            /* expected: raw_bytes, found: bytes the records fill */
    WALK_NO_MEMORY,           /* not a verdict on the data: the walk could not allocate */
} walk_status_t;

/* One decoded event of the current batch. */
typedef struct {
    log_event_t ev;        /* points into the mapping or the walk's scratch */
    uint32_t body_offset;  /* record offset in the raw body */
    uint32_t record_bytes; /* aligned record length */
} walk_event_t;

typedef struct {
    const uint8_t *map;       /* readable bytes of the segment */
    uint64_t size;            /* how many */
    uint64_t offset;          /* the batch slot being examined */
    uint64_t position;        /* expected first_position there */
    uint64_t chain;           /* expected prev_checksum there */
    batch_header_t h;         /* its header (whatever was read) */
    const uint8_t *raw;       /* its raw body, until the next call */
    walk_event_t *events;     /* its events that decoded, in order */
    uint32_t event_count, events_cap;
    walk_status_t status;     /* of the last walk_batch() */
    uint64_t expected, found; /* the values behind a WALK_BAD_* (see above) */
    uint32_t bad_record;      /* WALK_BAD_RECORD/STREAM: which record */
    uint64_t bad_record_offset;
    uint8_t *scratch;         /* decompressed bodies */
    size_t scratch_cap;
} walk_t;

/* Starts a walk of map[0, size) at offset, expecting position and chain
 * there. Keeps the buffers of an earlier walk with the same w (a walk_t
 * starts zeroed). */
void walk_init(walk_t *w, const uint8_t *map, uint64_t size, uint64_t offset, uint64_t position,
               uint64_t chain);
/* Frees the walk's buffers. */
void walk_free(walk_t *w);
/* Examines the batch at w->offset with every check of format.md 2.2 and
 * returns w->status. On WALK_OK the events are in w->events. On a bad body
 * the records that still decode are in w->events too (forensics).
 * WALK_NO_MEMORY says nothing of the data. */
walk_status_t walk_batch(walk_t *w);
/* True when the header passed its checksum and fits (walk_advance() may
 * follow): WALK_OK, a misplaced batch, or a bad body. */
bool walk_header_whole(walk_status_t st);
/* Moves past the batch just examined (its header must be whole), taking
 * its position and checksum as the next expected ones. */
void walk_advance(walk_t *w);
/* A static name of st ("bad body checksum"). */
const char *walk_status_name(walk_status_t st);
/* The first 8-aligned offset >= from holding a batch header that passes its
 * own checks (magic, count, checksum, fits in size), or size if none. */
uint64_t walk_find_header(const uint8_t *map, uint64_t size, uint64_t from);
/* The offset of the first nonzero byte in [from, to), or to. */
uint64_t walk_first_nonzero(const uint8_t *map, uint64_t from, uint64_t to);
/* The offset just past the last nonzero byte in [from, to), or from. */
uint64_t walk_last_nonzero_end(const uint8_t *map, uint64_t from, uint64_t to);

/* True if name is "<20 digits>.seg"; *first gets the number. */
bool walk_segment_name(const char *name, uint64_t *first);
/* Lists the first positions of the segment files in dir, sorted. Returns 0
 * with *out (free it) and *count, or -errno (-ENOENT: no such dir). */
int walk_list_segments(const char *dir, uint64_t **out, uint32_t *count);

/* ==== the persisted index, as a view ===================================== */

/* Index files larger than this are not read (format: 1 GiB segments give
 * far smaller ones). */
#define WALK_INDEX_BYTES_MAX (4ull * 1024 * 1024 * 1024)

typedef enum {
    WALK_INDEX_OK = 0,
    WALK_INDEX_SHORT,           /* shorter than its header */
    WALK_INDEX_MAGIC,
    WALK_INDEX_VERSION,
    WALK_INDEX_HEADER_CHECKSUM,
    WALK_INDEX_LENGTH,          /* length differs from what the counts give */
    WALK_INDEX_BODY_CHECKSUM,
} walk_index_problem_t;

/* An index file mapped read-only; the arrays are set only when problem is
 * WALK_INDEX_OK (then every array lies inside the file). Runs, entries and
 * names are not checked further: that is the reader's business. */
typedef struct {
    uint8_t *file;            /* NULL for an empty file */
    uint64_t file_bytes;
    index_header_t h;
    walk_index_problem_t problem;
    uint64_t header_sum, body_sum; /* computed checksums */
    const sparse_entry_t *sparse;
    const index_run_t *runs;
    const index_entry_t *entries;
    const char *names;
} walk_index_t;

/* Reads path and checks it whole (format.md 3.1): 0 with v->problem set
 * (close it with walk_index_close()), or -errno when it cannot be read
 * (-ENOENT: there is none). A file over WALK_INDEX_BYTES_MAX is
 * WALK_INDEX_LENGTH, unread. */
int walk_index_open(const char *path, walk_index_t *v);
void walk_index_close(walk_index_t *v);
/* A static name of p. */
const char *walk_index_problem_name(walk_index_problem_t p);

/* ==== a table of names ================================================== */
/* Open addressing, linear probing, doubled at half full. It holds pointers
 * to the caller's items (which carry their names); a lookup names the item
 * by (name, kind) and a match function confirms a hash hit. The engine
 * keeps its streams and categories in one; offline tools count names in
 * theirs. Not thread-safe. */

#define NAMES_SLOTS_INITIAL 1024u
#define NAMES_KIND_STREAM 0u   /* the kinds the engine uses; others are free */
#define NAMES_KIND_CATEGORY 1u

typedef struct {
    const char *name;
    size_t len;
    uint32_t kind;
    uint64_t hash;   /* of name and kind */
} names_key_t;

typedef struct {
    uint64_t hash;
    void *item;      /* NULL: empty */
} names_slot_t;

typedef struct {
    names_slot_t *slots;
    uint64_t mask;   /* slots - 1 (a power of two) */
    uint64_t used;
} names_t;

/* True when item is the one named by k (its hash already matches). */
typedef bool (*names_match_fn)(const void *item, const names_key_t *k);

/* The key of name[0, len) of kind, hashed. name is not copied. */
names_key_t names_key(const char *name, size_t len, uint32_t kind);
/* An empty table. 0 or -ENOMEM. */
int names_init(names_t *t);
/* Frees the table's slots (not the items: free those first, with
 * names_next()). A zeroed t is fine. */
void names_free(names_t *t);
/* The item named by k, or NULL. */
void *names_find(const names_t *t, const names_key_t *k, names_match_fn match);
/* Makes room for one more item. 0 or -ENOMEM (the table is unchanged). */
int names_reserve(names_t *t);
/* Adds item under k, which is not in the table yet; names_reserve() must
 * have succeeded just before. Never fails. */
void names_insert(names_t *t, const names_key_t *k, void *item);
/* Iterates: the next item after *cursor (start at 0), or NULL at the end.
 * The table must not change during an iteration. */
void *names_next(const names_t *t, uint64_t *cursor);

/* ==== a set of segment files, opened read-only =========================== */

typedef struct log_offline_s log_offline_t;

/* What log_offline_add() found of one segment file. */
typedef struct {
    segment_header_t hdr;  /* as read; zeros when the file is shorter than it */
    int hdr_rc;            /* 0; LOG_EFORMAT or LOG_ECORRUPT: the header fails
                              segment_header_check() (or the file is too short);
                              -errno: the file could not be read or mapped */
    uint64_t file_bytes;
    bool short_file;       /* a valid header, and the file is smaller than its segment_bytes */
    const uint8_t *map;    /* read-only mapping of [0, size); NULL when size is 0 */
    uint64_t size;         /* file_bytes, or the header's segment_bytes when valid and smaller */
} log_offline_segment_t;

/* Opens an empty set of segments of directory dir (where index files are
 * written and tails cut). Returns 0 and *out, or -ENOMEM. */
int log_offline_open(const char *dir, log_offline_t **out);
/* Unmaps and closes every segment and frees the set. NULL is fine. */
void log_offline_close(log_offline_t *o);
/* Adds the segment file <dir>/name, whose first position is first (from
 * its name; the header's is not trusted), after those already added: opens
 * it read-only, reads and checks its header and maps it (*seg says what
 * was found, the mapping lives until log_offline_close()). A file that
 * cannot be read is still added, unmapped, with seg->hdr_rc = -errno.
 * Returns 0, or -ENOMEM / -ENAMETOOLONG (nothing added). */
int log_offline_add(log_offline_t *o, const char *name, uint64_t first,
                    log_offline_segment_t *seg);
/* Segments added so far. */
uint32_t log_offline_count(const log_offline_t *o);

/* Scans segment i from its first batch as recovery does (the same walk,
 * the same index building), expecting the position and chain value where
 * the scan of the segment before it ended (0 and 0 before the first);
 * stops at the first batch that is not whole. The segments must be scanned
 * in order, each once. Returns 0 with *end, the offset where its valid
 * data ends, or -ENOMEM. */
int log_offline_scan(log_offline_t *o, uint32_t i, uint64_t *end);
/* The position and chain value after the last batch scanned so far. */
void log_offline_head(const log_offline_t *o, uint64_t *position, uint64_t *chain);
/* Writes <dir>/<first>.idx for segment i, just scanned, covering its data
 * up to offset end (what log_offline_scan() gave), atomically (a temporary
 * file, fsync, rename), with the engine's own index writer; then frees the
 * scan's entries of that segment. 0 or -errno. */
int log_offline_index_write(log_offline_t *o, uint32_t i, uint64_t end);
/* Frees the scan's entries of segment i without writing them (a dry run). */
void log_offline_index_forget(log_offline_t *o, uint32_t i);
/* Cuts a torn tail of segment i as recovery does: writes zeros over
 * [from, to) and, when the file is shorter than its header's
 * segment_bytes, gives it that length back; then fsyncs. The caller holds
 * the LOCK (log_offline_lock()) and has made sure [from, to) holds no
 * valid batch. 0 or -errno (-EINVAL: a bad range, or no valid header). */
int log_offline_cut_tail(log_offline_t *o, uint32_t i, uint64_t from, uint64_t to);

/* Takes <dir>/LOCK as the engine does (flock(LOCK_EX | LOCK_NB); create:
 * make the file when missing). Returns the descriptor (close() it to
 * release the lock), LOG_ELOCKED when another process holds it, or -errno
 * (-ENOENT: no LOCK file and !create, or no dir). */
int log_offline_lock(const char *dir, bool create);

#ifdef __cplusplus
}
#endif

#endif
