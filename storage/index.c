/* index.c -- the in-memory index: streams and categories by name, each with
 * the location of every one of its events (entries[v] is version v). */
#include "log_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_TABLE_SLOTS_INITIAL 1024u
#define STREAM_ENTRIES_INITIAL 4u

static uint64_t name_hash(const char *name, size_t len, bool category)
{
    return checksum64(name, len, category ? 0x9e3779b97f4a7c15ull : 0);
}

int stream_table_init(stream_table_t *t)
{
    memset(t, 0, sizeof *t);
    t->slots = calloc(STREAM_TABLE_SLOTS_INITIAL, sizeof *t->slots);
    if (!t->slots)
        return -ENOMEM;
    t->mask = STREAM_TABLE_SLOTS_INITIAL - 1;
    return 0;
}

void stream_table_free(stream_table_t *t)
{
    if (!t->slots)
        return;
    for (uint64_t i = 0; i <= t->mask; i++) {
        stream_t *s = t->slots[i];
        if (s) {
            free(s->entries);
            free(s->name);
            free(s);
        }
    }
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static bool stream_matches(const stream_t *s, uint64_t hash, const char *name, size_t len,
                           bool category)
{
    return s->hash == hash && s->is_category == category && s->name_len == len &&
           memcmp(s->name, name, len) == 0;
}

stream_t *stream_table_find(const stream_table_t *t, const char *name, size_t len, bool category)
{
    uint64_t h = name_hash(name, len, category);
    for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
        stream_t *s = t->slots[i];
        if (!s)
            return NULL;
        if (stream_matches(s, h, name, len, category))
            return s;
    }
}

static int stream_table_grow(stream_table_t *t)
{
    uint64_t slots = (t->mask + 1) * 2;
    stream_t **fresh = calloc(slots, sizeof *fresh);
    if (!fresh)
        return -ENOMEM;
    for (uint64_t i = 0; i <= t->mask; i++) {
        stream_t *s = t->slots[i];
        if (!s)
            continue;
        uint64_t j = s->hash & (slots - 1);
        while (fresh[j])
            j = (j + 1) & (slots - 1);
        fresh[j] = s;
    }
    free(t->slots);
    t->slots = fresh;
    t->mask = slots - 1;
    return 0;
}

size_t stream_category_len(const char *name, size_t len)
{
    if (len > 0 && name[0] == '$')
        return 0; /* system streams belong to no category */
    const char *dash = memchr(name, '-', len);
    return dash ? (size_t)(dash - name) : 0;
}

static stream_t *stream_new(const char *name, size_t len, bool category, uint64_t hash)
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
    s->hash = hash;
    return s;
}

stream_t *stream_table_get(stream_table_t *t, const char *name, size_t len, bool category)
{
    stream_t *s = stream_table_find(t, name, len, category);
    if (s)
        return s;
    stream_t *cat = NULL;
    size_t cat_len = category ? 0 : stream_category_len(name, len);
    if (cat_len > 0) {
        cat = stream_table_get(t, name, cat_len, true);
        if (!cat)
            return NULL;
    }
    if ((t->used + 1) * 2 > t->mask + 1 && stream_table_grow(t) != 0)
        return NULL;
    uint64_t h = name_hash(name, len, category);
    s = stream_new(name, len, category, h);
    if (!s)
        return NULL;
    s->category = cat;
    uint64_t i = h & t->mask;
    while (t->slots[i])
        i = (i + 1) & t->mask;
    t->slots[i] = s;
    t->used++;
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
