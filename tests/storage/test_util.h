/* test_util.h -- helpers shared by the storage tests: temporary directories,
 * deterministic event contents, appending in one call, and reading a whole
 * stream, category or $all into an array of owned copies.
 *
 * Every helper that can fail returns 0 or a negative code (as the engine
 * does); tests assert on it. Nothing here calls Check, so the helpers are
 * also safe in forked children that report through their exit status.
 */
#ifndef EVSTORE_TESTS_STORAGE_TEST_UTIL_H
#define EVSTORE_TESTS_STORAGE_TEST_UTIL_H

#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A Check assertion for hot loops: ck_assert*() records the location of
 * every passing assertion with a write() to Check's message file, which
 * costs more than the checks themselves when there are millions. This one
 * only calls Check on failure. Needs <check.h> where it is used. */
#define tu_require(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

/* ---- temporary directories ------------------------------------------ */

/* Creates the root temporary directory of one test program, under
 * $EVSTORE_TEST_TMPDIR, $TMPDIR or /tmp (the first that is set). Returns its
 * path (static storage) or NULL. */
const char *tu_root_make(const char *program);

/* Removes the root directory made by tu_root_make() and all it holds. */
void tu_root_remove(void);

/* Creates a fresh, empty directory under the root and writes its path into
 * buf (cap bytes). Returns 0 or -errno. */
int tu_dir_make(char *buf, size_t cap);

/* Removes a directory tree. Returns 0 or -errno. */
int tu_dir_remove(const char *path);

/* ---- configuration --------------------------------------------------- */

/* The defaults, with dir, a small segment size and prepare_segments set. */
void tu_config(log_config_t *cfg, const char *dir, uint64_t segment_bytes, bool prepare);

/* ---- deterministic contents ------------------------------------------ */

/* splitmix64: a small, good, seedable generator. */
uint64_t tu_rand_next(uint64_t *state);
/* Uniform in [0, n). n > 0. */
uint64_t tu_rand_below(uint64_t *state, uint64_t n);

/* Writes a 16-byte id made of two numbers (little-endian a, then b). */
void tu_id(uint8_t id[16], uint64_t a, uint64_t b);

/* Fills n bytes that depend only on seed: random (incompressible) bytes,
 * or, when compressible, text that LZ4 shrinks well. */
void tu_fill(void *buf, size_t n, uint64_t seed, bool compressible);

/* ---- events built by tests ------------------------------------------- */

/* One event to append, owning its bytes. */
typedef struct {
    uint8_t id[16];
    char type[64];
    uint8_t *metadata;
    size_t metadata_len;
    uint8_t *data;
    size_t data_len;
    int64_t timestamp_ns;
} tu_event_t;

/* Builds an event: id (a, b), the given type, metadata and data of the given
 * sizes filled from seed. Returns 0 or -ENOMEM. */
int tu_event_make(tu_event_t *ev, uint64_t a, uint64_t b, const char *type, size_t metadata_len,
                  size_t data_len, uint64_t seed, bool compressible);
void tu_event_free(tu_event_t *ev);
/* The engine's view of ev (pointers into ev). */
log_event_in_t tu_event_in(const tu_event_t *ev);

/* Appends events[0..n) to one stream and waits. Returns res->status. */
int tu_append(log_t *log, const char *stream, int64_t expected, const log_event_in_t *events,
              uint32_t n, log_append_result_t *res);

/* Appends n simple events (type "t", data "<stream>:<i>" style) to a stream,
 * ids (tag, i). Returns the status. */
int tu_append_simple(log_t *log, const char *stream, int64_t expected, uint64_t tag, uint32_t n,
                     log_append_result_t *res);

/* ---- reading --------------------------------------------------------- */

/* A copy of a read event that outlives the visitor. */
typedef struct {
    uint64_t position;
    int64_t version;
    int64_t timestamp_ns;
    uint8_t id[16];
    char *stream;
    size_t stream_len;
    char *type;
    size_t type_len;
    uint8_t *metadata;
    size_t metadata_len;
    uint8_t *data;
    size_t data_len;
} tu_read_event_t;

typedef struct {
    tu_read_event_t *v;
    size_t n, cap;
    int error; /* first allocation error in the visitor */
} tu_events_t;

void tu_events_clear(tu_events_t *evs); /* frees the copies, keeps nothing */

/* A visitor (log_visit_cb) that appends a copy of every event to the
 * tu_events_t passed as ctx. */
int tu_collect(void *ctx, const log_event_t *ev);

/* Reads everything of stream (a stream, "$ce-..." or "$all") from `from` in
 * the given direction, calling log_read with pages of page events until the
 * read reports its end. Appends the events to *out. Returns 0 or the first
 * error of log_read (events read before it stay in *out). On success
 * *last_version (if not NULL) gets the stream_version of the last call. */
int tu_read_all(log_t *log, const char *stream, uint64_t from, bool backwards, uint32_t page,
                const log_filter_t *filter, tu_events_t *out, int64_t *last_version);

/* One read call; a thin wrapper for tests about one page. */
int tu_read(log_t *log, const char *stream, uint64_t from, bool backwards, uint32_t max_count,
            const log_filter_t *filter, tu_events_t *out, log_read_result_t *res);

/* Length of a C string, for the (pointer, length) pairs of the API. */
static inline size_t tu_len(const char *s) {
    size_t n = 0;
    while (s[n] != '\0') n++;
    return n;
}

/* ---- files ------------------------------------------------------------ */

/* Lists the segment files (*.seg) of dir, sorted, as full paths into
 * paths[0..cap). Returns the count or -errno. */
int tu_segments(const char *dir, char paths[][512], int cap);

/* Reads / writes len bytes at offset of path. Returns 0 or -errno. */
int tu_file_read(const char *path, uint64_t offset, void *buf, size_t len);
int tu_file_write(const char *path, uint64_t offset, const void *buf, size_t len);
/* Flips one bit (bit 0..7) of the byte at offset. Returns 0 or -errno. */
int tu_file_flip(const char *path, uint64_t offset, unsigned bit);
/* Returns 1 if path exists, 0 if not. */
int tu_file_exists(const char *path);

/* ---- the page cache ----------------------------------------------------- */

/* Pages of path in the page cache that are not yet on the device (dirty, or
 * being written back), by cachestat(2) (Linux 6.5). Returns the count, or
 * -errno (-ENOSYS on an older kernel). A process crash loses none of them;
 * a power loss may lose all: durability claims are claims about this count. */
int64_t tu_file_unsynced_pages(const char *path);

/* The sum of tu_file_unsynced_pages() over the segment files of dir, or the
 * first -errno. */
int64_t tu_segments_unsynced_pages(const char *dir);

/* True if files in dir show a write as unsynced pages until fdatasync makes
 * them clean, probed with a file of its own. False where that cannot be
 * seen (no cachestat, or a file system such as tmpfs that never writes its
 * pages anywhere): tests of durability then say so and check less. */
bool tu_sync_observable(const char *dir);

#endif
