/* index.c -- the in-memory index: streams and categories by name, each with
 * the location of every one of its events (entries[v] is version v). */
#include "log_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_ENTRIES_INITIAL 4u

int stream_table_init(stream_table_t *t)
{
    t->streams = 0;
    return names_init(&t->names);
}

void stream_table_free(stream_table_t *t)
{
    uint64_t cursor = 0;
    for (stream_t *s; (s = names_next(&t->names, &cursor));) {
        free(s->entries);
        free(s->name);
        free(s);
    }
    names_free(&t->names);
    t->streams = 0;
}

static bool stream_matches(const void *item, const names_key_t *k)
{
    const stream_t *s = item;
    return s->is_category == (k->kind == NAMES_KIND_CATEGORY) && s->name_len == k->len &&
           memcmp(s->name, k->name, k->len) == 0;
}

static names_key_t stream_key(const char *name, size_t len, bool category)
{
    return names_key(name, len, category ? NAMES_KIND_CATEGORY : NAMES_KIND_STREAM);
}

stream_t *stream_table_find(const stream_table_t *t, const char *name, size_t len, bool category)
{
    names_key_t k = stream_key(name, len, category);
    return names_find(&t->names, &k, stream_matches);
}

size_t stream_category_len(const char *name, size_t len)
{
    if (len > 0 && name[0] == '$')
        return 0; /* system streams belong to no category */
    const char *dash = memchr(name, '-', len);
    return dash ? (size_t)(dash - name) : 0;
}

static stream_t *stream_new(const char *name, size_t len, bool category)
{
    stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->name = malloc(len + 1);
    if (!s->name) {
        free(s);
        return NULL;
    }
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    s->name_len = (uint16_t)len;
    s->is_category = category;
    return s;
}

stream_t *stream_table_get(stream_table_t *t, const char *name, size_t len, bool category)
{
    names_key_t k = stream_key(name, len, category);
    stream_t *s = names_find(&t->names, &k, stream_matches);
    if (s)
        return s;
    stream_t *cat = NULL;
    size_t cat_len = category ? 0 : stream_category_len(name, len);
    if (cat_len > 0) {
        cat = stream_table_get(t, name, cat_len, true);
        if (!cat)
            return NULL;
    }
    if (names_reserve(&t->names) != 0 || !(s = stream_new(name, len, category)))
        return NULL;
    s->category = cat;
    names_insert(&t->names, &k, s);
    if (!category)
        t->streams++;
    return s;
}

/* Makes room for n more entries. */
static int stream_reserve(stream_t *s, uint64_t n)
{
    if (s->count + n <= s->cap)
        return 0;
    uint64_t cap = s->cap ? s->cap * 2 : STREAM_ENTRIES_INITIAL;
    while (cap < s->count + n)
        cap *= 2;
    index_entry_t *fresh = realloc(s->entries, cap * sizeof *fresh);
    if (!fresh)
        return -ENOMEM;
    s->entries = fresh;
    s->cap = cap;
    return 0;
}

int stream_push_run(stream_t *s, const index_entry_t *e, uint64_t n)
{
    int rc = stream_reserve(s, n);
    if (rc)
        return rc;
    assert(n == 0 || s->count == 0 || s->entries[s->count - 1].position < e[0].position);
    memcpy(s->entries + s->count, e, n * sizeof *e);
    s->count += n;
    return 0;
}

int stream_push(stream_t *s, const index_entry_t *e)
{
    if (s->count == s->cap && stream_reserve(s, 1) != 0)
        return -ENOMEM;
    assert(s->count == 0 || s->entries[s->count - 1].position < e->position);
    s->entries[s->count++] = *e;
    return 0;
}

uint64_t stream_lower_bound(const stream_t *s, uint64_t pos)
{
    uint64_t lo = 0, hi = s->count;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (s->entries[mid].position < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void stream_truncate(stream_t *s, uint64_t position)
{
    s->count = stream_lower_bound(s, position);
}
