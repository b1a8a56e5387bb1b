/* walk.c -- a verifying walk over the batches of one mapped segment, and a
 * bounds-checked view of an index file, for offline tools (evstore-inspect).
 *
 * The walk applies the checks of docs/format.md 2.2 in order, with the same
 * functions the engine uses (batch_header_valid, checksum64, record_decode),
 * and says which check failed and with what values, instead of only where
 * the valid data ends. Nothing here writes, and nothing reads outside the
 * mapped bytes it is given. */
#include "log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


void walk_init(walk_t *w, const uint8_t *map, uint64_t size, uint64_t offset, uint64_t position,
               uint64_t chain)
{
    uint8_t *scratch = w->scratch;
    size_t scratch_cap = w->scratch_cap;
    walk_event_t *events = w->events;
    uint32_t events_cap = w->events_cap;
    memset(w, 0, sizeof *w);
    w->map = map;
    w->size = size;
    w->offset = offset;
    w->position = position;
    w->chain = chain;
    w->scratch = scratch;
    w->scratch_cap = scratch_cap;
    w->events = events;
    w->events_cap = events_cap;
}

void walk_free(walk_t *w)
{
    free(w->scratch);
    free(w->events);
    w->scratch = NULL;
    w->events = NULL;
    w->scratch_cap = 0;
    w->events_cap = 0;
}

const char *walk_status_name(walk_status_t st)
{
    switch (st) {
    case WALK_OK: return "valid batch";
    case WALK_END: return "end of data";
    case WALK_NO_ROOM: return "end of segment";
    case WALK_BAD_MAGIC: return "bad batch magic";
    case WALK_BAD_COUNT: return "batch with no events";
    case WALK_BAD_HEADER_CHECKSUM: return "batch header checksum mismatch";
    case WALK_BAD_POSITION: return "batch at the wrong position";
    case WALK_BAD_CHAIN: return "batch breaks the checksum chain";
    case WALK_BAD_SIZE: return "batch runs past the end of the segment";
    case WALK_BAD_BODY_CHECKSUM: return "batch body checksum mismatch";
    case WALK_BAD_RAW_SIZE: return "batch raw size inconsistent";
    case WALK_BAD_LZ4: return "batch body does not decompress";
    case WALK_BAD_RECORD: return "event record damaged";
    case WALK_BAD_STREAM: return "event record has an invalid stream name";
    case WALK_BAD_FILL: return "event records do not fill the batch body";
    case WALK_NO_MEMORY: return "out of memory";
    }
    return "unknown";
}

bool walk_header_whole(walk_status_t st)
{
    return st == WALK_OK || st == WALK_BAD_POSITION || st == WALK_BAD_CHAIN ||
           st >= WALK_BAD_BODY_CHECKSUM;
}

static walk_status_t walk_fail(walk_t *w, walk_status_t st, uint64_t expected, uint64_t found)
{
    w->status = st;
    w->expected = expected;
    w->found = found;
    return st;
}

/* Checks the header at w->offset: magic, count, checksum, place, size. */
static walk_status_t walk_header(walk_t *w)
{
    batch_header_t *h = &w->h;
    if (w->offset > w->size || w->size - w->offset < sizeof *h)
        return walk_fail(w, WALK_NO_ROOM, 0, 0);
    memcpy(h, w->map + w->offset, sizeof *h);
    if (h->magic == 0)
        return walk_fail(w, WALK_END, 0, 0);
    if (h->magic != BATCH_MAGIC)
        return walk_fail(w, WALK_BAD_MAGIC, BATCH_MAGIC, h->magic);
    uint64_t sum = checksum64(h, offsetof(batch_header_t, header_checksum), 0);
    if (sum != h->header_checksum)
        return walk_fail(w, WALK_BAD_HEADER_CHECKSUM, sum, h->header_checksum);
    if (h->event_count == 0)
        return walk_fail(w, WALK_BAD_COUNT, 1, 0);
    if (batch_stored_size(h) > w->size - w->offset)
        return walk_fail(w, WALK_BAD_SIZE, w->size - w->offset, batch_stored_size(h));
    if (h->first_position != w->position)
        return walk_fail(w, WALK_BAD_POSITION, w->position, h->first_position);
    if (h->prev_checksum != w->chain)
        return walk_fail(w, WALK_BAD_CHAIN, w->chain, h->prev_checksum);
    return WALK_OK;
}

/* Makes w->raw the raw body: the stored one, or decompressed into scratch. */
static walk_status_t walk_raw_body(walk_t *w, const uint8_t *body)
{
    const batch_header_t *h = &w->h;
    if (!batch_raw_size_valid(h))
        return walk_fail(w, WALK_BAD_RAW_SIZE, h->stored_bytes, h->raw_bytes);
    if (!(h->flags & BATCH_FLAG_LZ4)) {
        w->raw = body;
        return WALK_OK;
    }
    if (h->raw_bytes > w->scratch_cap) {
        uint8_t *fresh = realloc(w->scratch, h->raw_bytes);
        if (!fresh)
            return walk_fail(w, WALK_NO_MEMORY, h->raw_bytes, 0);
        w->scratch = fresh;
        w->scratch_cap = h->raw_bytes;
    }
    int n = LZ4_decompress_safe((const char *)body, (char *)w->scratch, (int)h->stored_bytes,
                                (int)h->raw_bytes);
    if (n < 0 || (uint32_t)n != h->raw_bytes)
        return walk_fail(w, WALK_BAD_LZ4, h->raw_bytes, n < 0 ? 0 : (uint64_t)n);
    w->raw = w->scratch;
    return WALK_OK;
}

static int walk_events_reserve(walk_t *w, uint32_t n)
{
    if (n <= w->events_cap)
        return 0;
    uint32_t cap = w->events_cap ? w->events_cap : 64;
    while (cap < n)
        cap *= 2;
    walk_event_t *fresh = realloc(w->events, (size_t)cap * sizeof *fresh);
    if (!fresh)
        return -ENOMEM;
    w->events = fresh;
    w->events_cap = cap;
    return 0;
}

/* Decodes the records of the raw body into w->events (w->event_count of them
 * pass), checking bounds, checksums, stream names and that they fill it. */
static walk_status_t walk_records(walk_t *w)
{
    const batch_header_t *h = &w->h;
    uint64_t off = 0;
    for (uint32_t k = 0; k < h->event_count; k++) {
        if (walk_events_reserve(w, k + 1) != 0)
            return walk_fail(w, WALK_NO_MEMORY, k + 1, 0);
        walk_event_t *e = &w->events[k];
        size_t len;
        if (record_decode(w->raw, h->raw_bytes, off, h->first_position + k, &e->ev, &len) != 0) {
            w->bad_record = k;
            w->bad_record_offset = off;
            return walk_fail(w, WALK_BAD_RECORD, h->first_position + k, h->first_position + k);
        }
        if (e->ev.stream_len == 0) {
            w->bad_record = k;
            w->bad_record_offset = off;
            return walk_fail(w, WALK_BAD_STREAM, h->first_position + k, h->first_position + k);
        }
        e->body_offset = (uint32_t)off;
        e->record_bytes = (uint32_t)len;
        w->event_count = k + 1;
        off += len;
    }
    if (off != h->raw_bytes)
        return walk_fail(w, WALK_BAD_FILL, h->raw_bytes, off);
    return WALK_OK;
}

walk_status_t walk_batch(walk_t *w)
{
    w->event_count = 0;
    w->raw = NULL;
    w->status = WALK_OK;
    walk_status_t st = walk_header(w);
    if (st != WALK_OK && st != WALK_BAD_POSITION && st != WALK_BAD_CHAIN)
        return st;
    walk_status_t place = st;
    const uint8_t *body = w->map + w->offset + sizeof(batch_header_t);
    uint64_t sum = checksum64(body, w->h.stored_bytes, w->h.first_position);
    if (sum != w->h.body_checksum) {
        st = walk_fail(w, WALK_BAD_BODY_CHECKSUM, sum, w->h.body_checksum);
        /* What can still be read is decoded, for forensic dumps. */
        if (walk_raw_body(w, body) == WALK_OK)
            (void)walk_records(w);
        return walk_fail(w, st, sum, w->h.body_checksum);
    }
    if ((st = walk_raw_body(w, body)) != WALK_OK)
        return st;
    if ((st = walk_records(w)) != WALK_OK)
        return st;
    if (place != WALK_OK) /* body fine, but the batch is not where it belongs */
        return walk_header(w);
    return WALK_OK;
}

void walk_advance(walk_t *w)
{
    assert(walk_header_whole(w->status));
    w->offset += batch_stored_size(&w->h);
    w->position = w->h.first_position + w->h.event_count;
    w->chain = w->h.header_checksum;
}

uint64_t walk_find_header(const uint8_t *map, uint64_t size, uint64_t from)
{
    from = align8(from);
    for (uint64_t off = from; off <= size && size - off >= sizeof(batch_header_t);
         off += BATCH_ALIGN) {
        uint32_t magic;
        memcpy(&magic, map + off, sizeof magic);
        if (magic != BATCH_MAGIC)
            continue;
        batch_header_t h;
        memcpy(&h, map + off, sizeof h);
        if (batch_header_valid(&h) && batch_stored_size(&h) <= size - off)
            return off;
    }
    return size;
}

uint64_t walk_first_nonzero(const uint8_t *map, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[4096];
    uint64_t off = from;
    while (off < to) {
        uint64_t n = to - off < sizeof zeros ? to - off : sizeof zeros;
        if (memcmp(map + off, zeros, n) != 0)
            break;
        off += n;
    }
    for (; off < to; off++)
        if (map[off])
            return off;
    return to;
}

uint64_t walk_last_nonzero_end(const uint8_t *map, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[4096];
    uint64_t end = to;
    while (end > from) {
        uint64_t n = end - from < sizeof zeros ? end - from : sizeof zeros;
        if (memcmp(map + end - n, zeros, n) != 0)
            break;
        end -= n;
    }
    while (end > from && map[end - 1] == 0)
        end--;
    return end;
}

/* ---- segment files of a directory ---- */

static int walk_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool walk_segment_name(const char *name, uint64_t *first)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".seg") != 0 || strspn(name, "0123456789") != 20)
        return false;
    *first = strtoull(name, NULL, 10);
    return true;
}

int walk_list_segments(const char *dir, uint64_t **out, uint32_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    uint64_t *pos = NULL;
    uint32_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (!walk_segment_name(de->d_name, &first))
            continue;
        if (n == cap) {
            uint32_t fresh_cap = cap ? cap * 2 : 64;
            uint64_t *fresh = realloc(pos, fresh_cap * sizeof *pos);
            if (!fresh) {
                rc = -ENOMEM;
                break;
            }
            pos = fresh;
            cap = fresh_cap;
        }
        pos[n++] = first;
    }
    closedir(d);
    if (rc) {
        free(pos);
        return rc;
    }
    if (n > 1)
        qsort(pos, n, sizeof *pos, walk_u64_cmp);
    *out = pos;
    *count = n;
    return 0;
}

/* ---- index files ---- */

/* Fills the array pointers of v once its counts are known to fit. */
static void walk_index_layout(walk_index_t *v)
{
    const uint8_t *p = v->file + sizeof(index_header_t);
    v->sparse = (const sparse_entry_t *)p;
    v->runs = (const index_run_t *)(v->sparse + v->h.sparse_count);
    v->entries = (const index_entry_t *)(v->runs + v->h.run_count);
    v->names = (const char *)(v->entries + v->h.entry_count);
}

/* Checks the header and length of the file read into v (format.md 3.1). */
static walk_index_problem_t walk_index_check(walk_index_t *v)
{
    index_header_t *h = &v->h;
    if (v->file_bytes < sizeof *h)
        return WALK_INDEX_SHORT;
    memcpy(h, v->file, sizeof *h);
    if (memcmp(h->magic, INDEX_MAGIC, 8) != 0)
        return WALK_INDEX_MAGIC;
    if (h->format_version != FORMAT_VERSION)
        return WALK_INDEX_VERSION;
    v->header_sum = checksum64(h, offsetof(index_header_t, header_checksum), 0);
    if (v->header_sum != h->header_checksum)
        return WALK_INDEX_HEADER_CHECKSUM;
    uint64_t body = v->file_bytes - sizeof *h;
    if (h->sparse_count > body / sizeof(sparse_entry_t) ||
        h->run_count > body / sizeof(index_run_t) ||
        h->entry_count > body / sizeof(index_entry_t) || h->names_bytes > body ||
        h->sparse_count * sizeof(sparse_entry_t) + h->run_count * sizeof(index_run_t) +
                h->entry_count * sizeof(index_entry_t) + h->names_bytes != body)
        return WALK_INDEX_LENGTH;
    v->body_sum = checksum64(v->file + sizeof *h, body, 0);
    if (v->body_sum != h->body_checksum)
        return WALK_INDEX_BODY_CHECKSUM;
    walk_index_layout(v);
    return WALK_INDEX_OK;
}

int walk_index_open(const char *path, walk_index_t *v)
{
    memset(v, 0, sizeof *v);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out_close;
    }
    v->file_bytes = (uint64_t)st.st_size;
    if (v->file_bytes > WALK_INDEX_BYTES_MAX) {
        v->problem = WALK_INDEX_LENGTH;
        goto out_close;
    }
    if (v->file_bytes > 0) {
        void *map = mmap(NULL, v->file_bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (map == MAP_FAILED) {
            rc = -errno;
            goto out_close;
        }
        v->file = map;
    }
    v->problem = walk_index_check(v);
out_close:
    close(fd);
    if (rc)
        walk_index_close(v);
    return rc;
}

void walk_index_close(walk_index_t *v)
{
    if (v->file)
        munmap(v->file, v->file_bytes);
    memset(v, 0, sizeof *v);
}

const char *walk_index_problem_name(walk_index_problem_t p)
{
    switch (p) {
    case WALK_INDEX_OK: return "whole";
    case WALK_INDEX_SHORT: return "shorter than its header";
    case WALK_INDEX_MAGIC: return "bad magic (not an evstore index file)";
    case WALK_INDEX_VERSION: return "unknown format version";
    case WALK_INDEX_HEADER_CHECKSUM: return "header checksum mismatch";
    case WALK_INDEX_LENGTH: return "file length does not match the counts in its header";
    case WALK_INDEX_BODY_CHECKSUM: return "body checksum mismatch";
    }
    return "unknown";
}
