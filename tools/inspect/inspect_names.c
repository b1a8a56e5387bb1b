/* inspect_names.c -- a hash table of names (streams, categories, event
 * types) with the counters the commands keep per name. Allocates only when
 * a name is new, never per event. */
#include "inspect.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INSPECT_NAMES_SLOTS_INITIAL 1024u

static uint64_t inspect_name_hash(const char *name, size_t len, uint32_t kind)
{
    return checksum64(name, len, 0x9e3779b97f4a7c15ull * (kind + 1));
}

int inspect_names_init(inspect_names_t *t)
{
    memset(t, 0, sizeof *t);
    t->slots = calloc(INSPECT_NAMES_SLOTS_INITIAL, sizeof *t->slots);
    if (!t->slots)
        return -ENOMEM;
    t->mask = INSPECT_NAMES_SLOTS_INITIAL - 1;
    return 0;
}

void inspect_names_free(inspect_names_t *t)
{
    if (!t->slots)
        return;
    for (uint64_t i = 0; i <= t->mask; i++) {
        if (t->slots[i]) {
            free(t->slots[i]->name);
            free(t->slots[i]);
        }
    }
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static bool inspect_name_is(const inspect_name_t *n, uint64_t hash, const char *name, size_t len,
                            uint32_t kind)
{
    return n->hash == hash && n->kind == kind && n->len == len && memcmp(n->name, name, len) == 0;
}

inspect_name_t *inspect_names_find(const inspect_names_t *t, const char *name, size_t len,
                                   uint32_t kind)
{
    uint64_t h = inspect_name_hash(name, len, kind);
    for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
        inspect_name_t *n = t->slots[i];
        if (!n || inspect_name_is(n, h, name, len, kind))
            return n;
    }
}

static int inspect_names_grow(inspect_names_t *t)
{
    uint64_t slots = (t->mask + 1) * 2;
    inspect_name_t **fresh = calloc(slots, sizeof *fresh);
    if (!fresh)
        return -ENOMEM;
    for (uint64_t i = 0; i <= t->mask; i++) {
        inspect_name_t *n = t->slots[i];
        if (!n)
            continue;
        uint64_t j = n->hash & (slots - 1);
        while (fresh[j])
            j = (j + 1) & (slots - 1);
        fresh[j] = n;
    }
    free(t->slots);
    t->slots = fresh;
    t->mask = slots - 1;
    return 0;
}

static inspect_name_t *inspect_names_add(inspect_names_t *t, const char *name, size_t len,
                                         uint32_t kind, uint64_t hash)
{
    if ((t->used + 1) * 2 > t->mask + 1 && inspect_names_grow(t) != 0)
        return NULL;
    inspect_name_t *n = calloc(1, sizeof *n);
    if (!n || !(n->name = malloc(len + 1))) {
        free(n);
        return NULL;
    }
    memcpy(n->name, name, len);
    n->name[len] = '\0';
    n->len = (uint32_t)len;
    n->kind = kind;
    n->hash = hash;
    uint64_t i = hash & t->mask;
    while (t->slots[i])
        i = (i + 1) & t->mask;
    t->slots[i] = n;
    t->used++;
    t->count[kind]++;
    return n;
}

inspect_name_t *inspect_names_get(inspect_names_t *t, const char *name, size_t len, uint32_t kind)
{
    inspect_name_t *last = t->last;
    if (last && last->kind == kind && last->len == len && memcmp(last->name, name, len) == 0)
        return last;
    uint64_t h = inspect_name_hash(name, len, kind);
    inspect_name_t *n = NULL;
    for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
        n = t->slots[i];
        if (!n || inspect_name_is(n, h, name, len, kind))
            break;
    }
    if (!n) {
        size_t cat_len = kind == INSPECT_KIND_STREAM ? stream_category_len(name, len) : 0;
        inspect_name_t *cat = NULL;
        if (cat_len > 0 && !(cat = inspect_names_get(t, name, cat_len, INSPECT_KIND_CATEGORY)))
            return NULL;
        if (!(n = inspect_names_add(t, name, len, kind, h)))
            return NULL;
        n->category = cat;
    }
    t->last = n;
    return n;
}

static int inspect_name_by_count(const void *a, const void *b)
{
    const inspect_name_t *x = *(inspect_name_t *const *)a, *y = *(inspect_name_t *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

size_t inspect_names_top(const inspect_names_t *t, uint32_t kind, inspect_name_t **out,
                         size_t cap)
{
    if (cap == 0)
        return 0;
    /* Keeps the best cap in out, sorted: a small insertion, O(names * cap). */
    size_t n = 0;
    for (uint64_t i = 0; t->slots && i <= t->mask; i++) {
        inspect_name_t *c = t->slots[i];
        if (!c || c->kind != kind)
            continue;
        if (n == cap && inspect_name_by_count(&c, &out[n - 1]) >= 0)
            continue;
        size_t j = n < cap ? n++ : cap - 1;
        while (j > 0 && inspect_name_by_count(&c, &out[j - 1]) < 0) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = c;
    }
    return n;
}
