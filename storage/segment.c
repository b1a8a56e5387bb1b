/* segment.c -- one segment file in memory: its mapping, its sparse position
 * index, and the list of its events from which its index file is written. */
#include "log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void segment_path(char *buf, size_t cap, const char *dir, uint64_t first_position, const char *ext)
{
    snprintf(buf, cap, "%s/%020llu.%s", dir, (unsigned long long)first_position, ext);
}

int segment_map(segment_t *s)
{
    void *p = mmap(NULL, s->size, PROT_READ, MAP_SHARED, s->fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    s->map = p;
    return 0;
}

void segment_unmap(segment_t *s)
{
    if (s->map)
        munmap((void *)s->map, s->size);
    s->map = NULL;
}

static int grow(void **arr, uint64_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    uint64_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *fresh = realloc(*arr, n * elem);
    if (!fresh)
        return -ENOMEM;
    *arr = fresh;
    *cap = n;
    return 0;
}

int segment_sparse_note(segment_t *s, uint64_t position, uint64_t batch_offset)
{
    if (batch_offset < s->sparse_next_offset)
        return 0;
    int rc = grow((void **)&s->sparse, &s->sparse_cap, s->sparse_count + 1, sizeof *s->sparse);
    if (rc)
        return rc;
    s->sparse[s->sparse_count++] =
        (sparse_entry_t){.position = position, .batch_offset = (uint32_t)batch_offset};
    s->sparse_next_offset = (batch_offset / SPARSE_STEP_BYTES + 1) * SPARSE_STEP_BYTES;
    return 0;
}

int segment_builder_push(segment_t *s, stream_t *stream, uint64_t ordinal, const index_entry_t *e)
{
    int rc = grow((void **)&s->builder, &s->builder_cap, s->builder_count + 1, sizeof *s->builder);
    if (rc)
        return rc;
    s->builder[s->builder_count++] = (builder_entry_t){.stream = stream, .ordinal = ordinal, .entry = *e};
    return 0;
}

void segment_truncate_memory(segment_t *s, uint64_t position)
{
    while (s->builder_count > 0 && s->builder[s->builder_count - 1].entry.position >= position)
        s->builder_count--;
    while (s->sparse_count > 0 && s->sparse[s->sparse_count - 1].position >= position)
        s->sparse_count--;
    s->sparse_next_offset =
        s->sparse_count ? (s->sparse[s->sparse_count - 1].batch_offset / SPARSE_STEP_BYTES + 1) *
                              SPARSE_STEP_BYTES
                        : 0;
}

int segment_zero(const segment_t *s, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[65536];
    for (uint64_t off = from; off < to;) {
        size_t n = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
        ssize_t w = pwrite(s->fd, zeros, n, (off_t)off);
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        off += (uint64_t)w;
    }
    return fdatasync(s->fd) != 0 ? -errno : 0;
}

void segment_free(segment_t *s)
{
    segment_unmap(s);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->sparse);
    free(s->builder);
    s->sparse = NULL;
    s->builder = NULL;
}

/* Orders streams by kind, then name: the order of runs in an index file. */
static int run_cmp(const void *a, const void *b)
{
    const stream_t *p = *(stream_t *const *)a, *q = *(stream_t *const *)b;
    if (p->is_category != q->is_category)
        return p->is_category ? 1 : -1;
    size_t n = p->name_len < q->name_len ? p->name_len : q->name_len;
    int c = memcmp(p->name, q->name, n);
    if (c)
        return c;
    return p->name_len < q->name_len ? -1 : p->name_len > q->name_len;
}

/* Every index file written gets its own epoch for the streams' scratch. */
static _Atomic uint64_t run_epoch_next = 1;

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

typedef struct {
    stream_t **streams; /* one per run, in run order once sorted */
    uint64_t *start;    /* by the stream's run_index: its next entry's slot */
    uint64_t *first;    /* by the stream's run_index: its first ordinal */
    uint64_t count;
} runs_t;

/* Numbers the streams of the first n builder entries (each stream's entries
 * are already in version order, so only the streams need sorting). */
static int runs_grow(runs_t *r, uint64_t cap)
{
    stream_t **fs = realloc(r->streams, cap * sizeof *fs);
    if (fs)
        r->streams = fs;
    uint64_t *fc = realloc(r->start, cap * sizeof *fc);
    if (fc)
        r->start = fc;
    uint64_t *ff = realloc(r->first, cap * sizeof *ff);
    if (ff)
        r->first = ff;
    return fs && fc && ff ? 0 : -ENOMEM;
}

static int runs_collect(const segment_t *s, uint64_t n, runs_t *r, uint64_t *names)
{
    uint64_t epoch = atomic_fetch_add(&run_epoch_next, 1);
    uint64_t cap = 64;
    *names = 0;
    if (runs_grow(r, cap))
        return -ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        stream_t *st = s->builder[i].stream;
        if (st->run_epoch != epoch) {
            if (r->count == cap && runs_grow(r, cap *= 2))
                return -ENOMEM;
            st->run_epoch = epoch;
            st->run_index = r->count;
            r->start[r->count] = 0;
            r->first[r->count] = s->builder[i].ordinal;
            r->streams[r->count++] = st;
            *names += st->name_len;
        }
        r->start[st->run_index]++; /* a count for now */
    }
    return 0;
}

/* Lays out the index body (sparse, runs, entries, names) in one buffer. */
static int index_body_build(const segment_t *s, uint64_t end_position, uint8_t **out,
                            size_t *out_len, index_header_t *h)
{
    uint64_t n = 0, names = 0;
    while (n < s->builder_count && s->builder[n].entry.position < end_position)
        n++;
    runs_t r = {0};
    int rc = runs_collect(s, n, &r, &names);
    if (rc)
        goto out_free_runs;
    uint64_t sparse = 0;
    while (sparse < s->sparse_count && s->sparse[sparse].position < end_position)
        sparse++;
    size_t len = sparse * sizeof(sparse_entry_t) + r.count * sizeof(index_run_t) +
                 n * sizeof(index_entry_t) + names;
    uint8_t *body = calloc(1, len ? len : 1);
    if (!body) {
        rc = -ENOMEM;
        goto out_free_runs;
    }
    if (sparse > 0)
        memcpy(body, s->sparse, sparse * sizeof(sparse_entry_t));
    index_run_t *run = (index_run_t *)(body + sparse * sizeof(sparse_entry_t));
    index_entry_t *entry = (index_entry_t *)(run + r.count);
    char *name = (char *)(entry + n);
    if (r.count > 1)
        qsort(r.streams, r.count, sizeof *r.streams, run_cmp);
    uint64_t at = 0, name_off = 0;
    for (uint64_t k = 0; k < r.count; k++) {
        stream_t *st = r.streams[k];
        uint64_t count = r.start[st->run_index];
        run[k] = (index_run_t){.entry_index = at, .count = (uint32_t)count,
                               .name_offset = (uint32_t)name_off, .name_len = st->name_len,
                               .kind = st->is_category ? RUN_KIND_CATEGORY : RUN_KIND_STREAM};
        memcpy(name + name_off, st->name, st->name_len);
        name_off += st->name_len;
        r.start[st->run_index] = at;
        at += count;
    }
    for (uint64_t i = 0; i < n; i++) {
        const builder_entry_t *b = &s->builder[i];
        uint64_t slot = r.start[b->stream->run_index]++;
        entry[slot] = b->entry;
    }
    for (uint64_t k = 0; k < r.count; k++)
        run[k].first_ordinal = r.first[r.streams[k]->run_index];
    h->run_count = (uint32_t)r.count;
    h->entry_count = n;
    h->sparse_count = sparse;
    h->names_bytes = names;
    h->body_checksum = checksum64(body, len, 0);
    *out = body;
    *out_len = len;
out_free_runs:
    free(r.streams);
    free(r.start);
    free(r.first);
    return rc;
}

int segment_index_write(const char *dir, const segment_t *s, uint64_t end_position,
                        uint64_t end_offset, uint64_t end_checksum)
{
    index_header_t h = {.format_version = FORMAT_VERSION, .first_position = s->first_position,
                        .end_position = end_position, .end_offset = end_offset,
                        .end_checksum = end_checksum};
    memcpy(h.magic, INDEX_MAGIC, 8);
    uint8_t *body;
    size_t len;
    int rc = index_body_build(s, end_position, &body, &len, &h);
    if (rc)
        return rc;
    h.header_checksum = checksum64(&h, offsetof(index_header_t, header_checksum), 0);
    char path[4096], tmp[4200];
    segment_path(path, sizeof path, dir, s->first_position, "idx");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out_free_body;
    }
    rc = write_all(fd, &h, sizeof h);
    if (!rc)
        rc = write_all(fd, body, len);
    if (!rc && fdatasync(fd) != 0)
        rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
out_free_body:
    free(body);
    return rc;
}
