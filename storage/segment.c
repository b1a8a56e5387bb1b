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

/* Orders builder entries into runs: by kind, then name, then ordinal. */
static int builder_cmp(const void *a, const void *b)
{
    const builder_entry_t *x = a, *y = b;
    if (x->stream != y->stream) {
        const stream_t *p = x->stream, *q = y->stream;
        if (p->is_category != q->is_category)
            return p->is_category ? 1 : -1;
        size_t n = p->name_len < q->name_len ? p->name_len : q->name_len;
        int c = memcmp(p->name, q->name, n);
        if (c)
            return c;
        return p->name_len < q->name_len ? -1 : 1;
    }
    return x->ordinal < y->ordinal ? -1 : x->ordinal > y->ordinal;
}

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

/* Lays out the index body (sparse, runs, entries, names) in one buffer. */
static int index_body_build(const segment_t *s, uint64_t end_position, uint8_t **out,
                            size_t *out_len, index_header_t *h)
{
    uint64_t n = 0;
    while (n < s->builder_count && s->builder[n].entry.position < end_position)
        n++;
    builder_entry_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted)
        return -ENOMEM;
    if (n > 0) {
        memcpy(sorted, s->builder, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, builder_cmp);
    }
    uint64_t runs = 0, names = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (i == 0 || sorted[i].stream != sorted[i - 1].stream) {
            runs++;
            names += sorted[i].stream->name_len;
        }
    }
    uint64_t sparse = 0;
    while (sparse < s->sparse_count && s->sparse[sparse].position < end_position)
        sparse++;
    size_t len = sparse * sizeof(sparse_entry_t) + runs * sizeof(index_run_t) +
                 n * sizeof(index_entry_t) + names;
    uint8_t *body = calloc(1, len ? len : 1);
    if (!body) {
        free(sorted);
        return -ENOMEM;
    }
    if (sparse > 0)
        memcpy(body, s->sparse, sparse * sizeof(sparse_entry_t));
    index_run_t *run = (index_run_t *)(body + sparse * sizeof(sparse_entry_t));
    index_entry_t *entry = (index_entry_t *)(run + runs);
    char *name = (char *)(entry + n);
    uint64_t r = 0, name_off = 0;
    for (uint64_t i = 0; i < n; i++) {
        const stream_t *st = sorted[i].stream;
        if (i == 0 || st != sorted[i - 1].stream) {
            run[r] = (index_run_t){.first_ordinal = sorted[i].ordinal, .entry_index = i,
                                   .name_offset = (uint32_t)name_off, .name_len = st->name_len,
                                   .kind = st->is_category ? RUN_KIND_CATEGORY : RUN_KIND_STREAM};
            memcpy(name + name_off, st->name, st->name_len);
            name_off += st->name_len;
            r++;
        }
        run[r - 1].count++;
        entry[i] = sorted[i].entry;
    }
    free(sorted);
    h->run_count = (uint32_t)runs;
    h->entry_count = n;
    h->sparse_count = sparse;
    h->names_bytes = names;
    h->body_checksum = checksum64(body, len, 0);
    *out = body;
    *out_len = len;
    return 0;
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
