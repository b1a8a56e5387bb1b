/* inspect.h -- internals of evstore-inspect, the offline segment inspection
 * tool. It reads the log through the storage engine's header for offline
 * tools (storage/log_offline.h: the walk, the index view, the name table,
 * recovery's scan and tail cut) and never parses a byte of the format by
 * itself. Application payloads are decoded by plugins (inspect_proto.c).
 *
 * Layout: inspect_main.c (commands, options), inspect_log.c (opening a data
 * directory or a segment read-only), inspect_scan.c (the verifying walk
 * over every segment that the commands share), inspect_index.c (index files
 * checked against the segments, or rebuilt), inspect_verify.c, inspect_dump.c,
 * inspect_stats.c, inspect_repair.c (one command each), inspect_names.c (a
 * table of streams and types), inspect_util.c (reports, text and time),
 * inspect_proto.c (protobuf payloads: built-in and plugin decoders). */
#ifndef EVSTORE_INSPECT_H
#define EVSTORE_INSPECT_H

#include "log.h"
#include "log_offline.h"

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of every command. */
#define INSPECT_EXIT_CLEAN 0   /* nothing wrong (or the change was made) */
#define INSPECT_EXIT_DAMAGED 1 /* damage found (or, repair: found, not changed) */
#define INSPECT_EXIT_ERROR 2   /* usage, I/O error, locked directory, a bad plugin */

/* Decoder plugins loaded at most (--decoder and the environment together). */
#define INSPECT_DECODERS_LIMIT 16u

/* ---- names: streams, categories, event types (inspect_names.c) ---- */

#define INSPECT_KIND_STREAM NAMES_KIND_STREAM
#define INSPECT_KIND_CATEGORY NAMES_KIND_CATEGORY
#define INSPECT_KIND_TYPE 2u

typedef struct inspect_name_s {
    char *name;                      /* NUL-terminated copy */
    uint32_t len;
    uint32_t kind;                   /* INSPECT_KIND_* */
    uint64_t count;                  /* events seen */
    uint64_t bytes;                  /* their record bytes */
    int64_t next_version;            /* streams: the version expected next */
    uint64_t epoch;                  /* scan epoch of its last event */
    uint32_t seen_segment;           /* 1 + index of the last segment it was seen in */
    struct inspect_name_s *category; /* streams: their category, or NULL */
} inspect_name_t;

typedef struct {
    names_t table;         /* of inspect_name_t (storage's name table) */
    uint64_t count[3];     /* names per kind */
    inspect_name_t *last;  /* the last one found (runs of one stream are common) */
} inspect_names_t;

int inspect_names_init(inspect_names_t *t);
void inspect_names_free(inspect_names_t *t);
/* Finds a name, or NULL. */
inspect_name_t *inspect_names_find(const inspect_names_t *t, const char *name, size_t len,
                                   uint32_t kind);
/* Finds or adds a name (a stream also gets its category). NULL on ENOMEM. */
inspect_name_t *inspect_names_get(inspect_names_t *t, const char *name, size_t len, uint32_t kind);
/* Fills out (cap entries) with the names of one kind, most events first;
 * returns how many were written. */
size_t inspect_names_top(const inspect_names_t *t, uint32_t kind, inspect_name_t **out,
                         size_t cap);

/* ---- problems (inspect_util.c) ---- */

typedef enum {
    INSPECT_DAMAGE,    /* segment data fails a check */
    INSPECT_TORN,      /* a torn tail of the last segment (repair cuts it) */
    INSPECT_INDEX,     /* an index file is missing, stale or wrong */
    INSPECT_NOTE,      /* worth knowing, not a problem */
} inspect_kind_t;

typedef struct {
    FILE *out;            /* where problems are printed; NULL: counted only */
    uint64_t count[4];    /* per inspect_kind_t */
    bool io_error;        /* a file could not be read */
    bool quiet_notes;     /* do not print notes */
} inspect_report_t;

/* Prints one problem: "<kind>: <file> offset <n>: <what>" (offset omitted
 * when UINT64_MAX) and counts it. */
void inspect_problem(inspect_report_t *r, inspect_kind_t kind, const char *file, uint64_t offset,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Reports an I/O error (exit code 2). */
void inspect_io_error(inspect_report_t *r, const char *file, int err);
/* Damage + torn + index problems. */
uint64_t inspect_problems(const inspect_report_t *r);

/* ---- text (inspect_util.c) ---- */

/* Writes "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (UTC) into buf (>= 40 bytes). */
void inspect_time_format(int64_t ns, char *buf, size_t cap);
/* Parses a time: an integer (nanoseconds since the epoch) or
 * "YYYY-MM-DD[THH:MM[:SS[.frac]]][Z]" in UTC. 0 or -EINVAL. */
int inspect_time_parse(const char *text, int64_t *ns);
/* Parses an unsigned decimal integer. 0 or -EINVAL. */
int inspect_u64_parse(const char *text, uint64_t *out);
/* Writes the 16-byte id as a UUID (8-4-4-4-12 hex) into buf (>= 37 bytes). */
void inspect_uuid_format(const uint8_t id[16], char *buf);
/* True if p[0, n) is valid UTF-8. */
bool inspect_utf8_valid(const uint8_t *p, size_t n);
/* The longest prefix of valid UTF-8 text p[0, n) that is at most cap bytes
 * and ends on a character boundary. */
size_t inspect_utf8_cut(const uint8_t *p, size_t n, size_t cap);
/* p[0, n) as a JSON string; a byte that is not part of UTF-8 text stands
 * for the code point of its value (U+0080..U+00FF), so that any bytes give
 * a valid string. NULL on ENOMEM. */
json_t *inspect_json_text(const void *p, size_t n);
/* Writes p[0, n) as a quoted, escaped string (the JSON form of
 * inspect_json_text()), for the text output. */
void inspect_quoted(FILE *f, const void *p, size_t n);
/* p[0, n) as a JSON string of lowercase hex. NULL on ENOMEM. */
json_t *inspect_json_hex(const void *p, size_t n);
/* Writes o as one compact line of JSON to f, and releases it. */
void inspect_json_line(FILE *f, json_t *o);
/* Writes p[0, n) as lowercase hex. */
void inspect_hex(FILE *f, const void *p, size_t n);

/* ---- the log on disk (inspect_log.c) ---- */

typedef struct {
    char file[32];          /* "<20 digits>.seg" (or the file's own name) */
    uint64_t first;         /* first position, from the name */
    segment_header_t hdr;   /* as read */
    int hdr_rc;             /* 0, LOG_EFORMAT/LOG_ECORRUPT, or -errno */
    uint64_t file_bytes;
    bool short_file;        /* smaller than the header's segment_bytes */
    const uint8_t *map;     /* read-only mapping of [0, size) (NULL: unreadable) */
    uint64_t size;
    /* filled in by the scan */
    uint64_t data_end;      /* offset after the last batch that continued the log */
    uint64_t end_position;  /* position and chain value after it */
    uint64_t end_checksum;
    uint64_t torn_end;      /* a torn tail: bytes [data_end, torn_end) are torn */
    bool torn;
    bool damaged;           /* damage other than a torn tail */
} inspect_seg_t;

typedef struct {
    char *dir;              /* the directory holding the segments */
    bool single;            /* PATH named one segment file */
    log_offline_t *set;     /* the storage engine's view of them: the mappings,
                               recovery's scan, the index writer, the tail cut */
    inspect_seg_t *segs;    /* segs[i] describes segment i of set */
    uint32_t count;
} inspect_log_t;

/* Opens a data directory or one segment file read-only: every segment is
 * mapped (PROT_READ) up to the smaller of its file size and its header's
 * segment_bytes. Unreadable segments are reported to r and kept (unmapped).
 * Returns 0, or -errno/-ENOENT when PATH is neither. */
int inspect_log_open(const char *path, inspect_log_t *log, inspect_report_t *r);
void inspect_log_close(inspect_log_t *log);

/* ---- the verifying scan (inspect_scan.c) ---- */

typedef struct inspect_scan_s inspect_scan_t;
typedef struct inspect_index_state_s inspect_index_state_t;

/* Called for each batch: valid (w->status == WALK_OK) or damaged (the events
 * that still decode are in w->events). Return nonzero to stop the scan. */
typedef int (*inspect_batch_fn)(void *ctx, inspect_scan_t *sc, uint32_t seg, const walk_t *w);

struct inspect_scan_s {
    inspect_log_t *log;
    inspect_report_t *rep;
    inspect_names_t streams;   /* streams and categories seen so far */
    inspect_name_t **names;    /* names[k]: stream of w->events[k] of the current batch */
    uint32_t names_cap;
    bool check_index;          /* check the .idx files too */
    bool versions_from_zero;   /* streams start at version 0 (whole directory) */
    bool keep_pages;           /* keep a segment's pages mapped once scanned */
    inspect_batch_fn on_batch;
    void *ctx;
    walk_t walk;
    uint64_t epoch;            /* bumped at every damage: versions may jump after it */
    uint64_t position, chain;  /* expected at the next segment */
    bool resync;               /* the next segment header sets them */
    bool stop;
    inspect_index_state_t *index; /* of the segment being scanned */
    /* totals */
    uint64_t batches, events, damaged_batches;
};

/* Scans the whole log in order, reporting every problem; calls on_batch
 * (if set) for every batch. Returns 0, or -ENOMEM. */
int inspect_scan_run(inspect_scan_t *sc, inspect_log_t *log, inspect_report_t *rep);
void inspect_scan_free(inspect_scan_t *sc);

/* ---- index files (inspect_index.c) ---- */

/* Before segment seg is walked: reads and checks its index file against
 * what is known so far (counts of earlier segments). */
int inspect_index_begin(inspect_scan_t *sc, uint32_t seg);
/* For each valid batch of the segment: checks the index entries that claim
 * its events. */
void inspect_index_batch(inspect_scan_t *sc, uint32_t seg, const walk_t *w);
/* After the walk: what the index claims that the segment does not hold. */
void inspect_index_end(inspect_scan_t *sc, uint32_t seg);
/* Frees the index-check state of the scan. */
void inspect_index_free(inspect_scan_t *sc);
/* Rebuilds every sealed segment's index file (and the last one's when its
 * data ends cleanly) with the engine's own writer. Exit code. */
int inspect_index_rebuild(inspect_log_t *log, inspect_report_t *rep, bool dry_run);

/* ---- commands ---- */

typedef struct {
    const char *stream, *category, *type;
    uint64_t from, to;           /* positions, inclusive */
    int64_t since, until;        /* times (ns), since inclusive, until exclusive */
    uint64_t limit;              /* events printed at most (0: no limit) */
    uint64_t payload_bytes;      /* bytes of metadata/data shown per event */
    bool json;
    bool verbose;
    bool apply;                  /* repair: make the change */
    bool dry_run;                /* index --rebuild: only say what would be written */
    bool no_index;
    const char *decoders[INSPECT_DECODERS_LIMIT]; /* --decoder PATH, in order */
    size_t decoder_count;
} inspect_opts_t;

int inspect_verify(const char *path, const inspect_opts_t *o);
int inspect_dump(const char *path, const inspect_opts_t *o);
int inspect_stats(const char *path, const inspect_opts_t *o);
int inspect_index_check_cmd(const char *path, const inspect_opts_t *o);
int inspect_index_rebuild_cmd(const char *path, const inspect_opts_t *o);
int inspect_repair(const char *path, const inspect_opts_t *o);

/* ---- inspect_proto.c: payloads that are known protobuf messages ---- */

/* The environment variable naming decoder plugins, PATH[:PATH...]. */
#define INSPECT_DECODERS_ENV "EVSTORE_INSPECT_DECODERS"

struct ProtobufCMessageDescriptor;
/* Loads the decoder plugins: each path of the environment variable, then
 * each of paths[0, n) (--decoder). 0, or -1 after printing why a plugin
 * could not be loaded (not found, not a shared object, no
 * evstore_payload_descriptor) to stderr. */
int inspect_decoders_load(const char *const *paths, size_t n);
/* Unloads them. */
void inspect_decoders_unload(void);
/* The message type of ev's data, if it is a known one: the store's own
 * records (by stream prefix and type), then what the plugins say (by type). */
const struct ProtobufCMessageDescriptor *inspect_proto_for(const log_event_t *ev);

#endif
