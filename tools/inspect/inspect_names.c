/* inspect_names.c -- the names the commands count (streams, categories,
 * event types) with their counters, in the storage engine's name table
 * (names_t of log_offline.h). Allocates only when a name is new, never per
 * event. */
#include "inspect.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int inspect_names_init(inspect_names_t *t)
{
    memset(t, 0, sizeof *t);
    return names_init(&t->table);
}

void inspect_names_free(inspect_names_t *t)
{
    uint64_t cursor = 0;
    for (inspect_name_t *n; (n = names_next(&t->table, &cursor));) {
        free(n->name);
        free(n);
    }
    names_free(&t->table);
    memset(t, 0, sizeof *t);
}

static bool inspect_name_matches(const void *item, const names_key_t *k)
{
    const inspect_name_t *n = item;
    return n->kind == k->kind && n->len == k->len && memcmp(n->name, k->name, k->len) == 0;
}

inspect_name_t *inspect_names_find(const inspect_names_t *t, const char *name, size_t len,
                                   uint32_t kind)
{
    names_key_t k = names_key(name, len, kind);
    return names_find(&t->table, &k, inspect_name_matches);
}

/* Adds a name that is not in t yet. NULL on ENOMEM. */
static inspect_name_t *inspect_names_add(inspect_names_t *t, const names_key_t *k)
{
    if (names_reserve(&t->table) != 0)
        return NULL;
    inspect_name_t *n = calloc(1, sizeof *n);
    if (!n || !(n->name = malloc(k->len + 1))) {
        free(n);
        return NULL;
    }
    memcpy(n->name, k->name, k->len);
    n->name[k->len] = '\0';
    n->len = (uint32_t)k->len;
    n->kind = k->kind;
    names_insert(&t->table, k, n);
    t->count[k->kind]++;
    return n;
}

inspect_name_t *inspect_names_get(inspect_names_t *t, const char *name, size_t len, uint32_t kind)
{
    inspect_name_t *last = t->last;
    if (last && last->kind == kind && last->len == len && memcmp(last->name, name, len) == 0)
        return last;
    names_key_t k = names_key(name, len, kind);
    inspect_name_t *n = names_find(&t->table, &k, inspect_name_matches);
    if (!n) {
        size_t cat_len = kind == INSPECT_KIND_STREAM ? stream_category_len(name, len) : 0;
        inspect_name_t *cat = NULL;
        if (cat_len > 0 && !(cat = inspect_names_get(t, name, cat_len, INSPECT_KIND_CATEGORY)))
            return NULL;
        if (!(n = inspect_names_add(t, &k)))
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
    uint64_t cursor = 0;
    for (inspect_name_t *c; (c = names_next(&t->table, &cursor));) {
        if (c->kind != kind)
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
