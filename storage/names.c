/* names.c -- an open-addressing hash table of named items: the engine's
 * streams and categories (index.c), and the names offline tools count
 * (evstore-inspect's streams, categories and event types). The table holds
 * pointers; the items, and the names they carry, belong to the caller. */
#include "log_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Seeds the hash per kind, so that a stream and a category of the same
 * name (kinds 0 and 1) land in different places. */
#define NAMES_KIND_SEED 0x9e3779b97f4a7c15ull

names_key_t names_key(const char *name, size_t len, uint32_t kind)
{
    return (names_key_t){.name = name, .len = len, .kind = kind,
                         .hash = checksum64(name, len, NAMES_KIND_SEED * kind)};
}

int names_init(names_t *t)
{
    memset(t, 0, sizeof *t);
    t->slots = calloc(NAMES_SLOTS_INITIAL, sizeof *t->slots);
    if (!t->slots)
        return -ENOMEM;
    t->mask = NAMES_SLOTS_INITIAL - 1;
    return 0;
}

void names_free(names_t *t)
{
    free(t->slots);
    memset(t, 0, sizeof *t);
}

void *names_find(const names_t *t, const names_key_t *k, names_match_fn match)
{
    for (uint64_t i = k->hash & t->mask;; i = (i + 1) & t->mask) {
        const names_slot_t *s = &t->slots[i];
        if (!s->item)
            return NULL;
        if (s->hash == k->hash && match(s->item, k))
            return s->item;
    }
}

/* Places item in the first free slot of its probe sequence. */
static void names_place(names_slot_t *slots, uint64_t mask, uint64_t hash, void *item)
{
    uint64_t i = hash & mask;
    while (slots[i].item)
        i = (i + 1) & mask;
    slots[i] = (names_slot_t){.hash = hash, .item = item};
}

static int names_grow(names_t *t)
{
    uint64_t slots = (t->mask + 1) * 2;
    names_slot_t *fresh = calloc(slots, sizeof *fresh);
    if (!fresh)
        return -ENOMEM;
    for (uint64_t i = 0; i <= t->mask; i++)
        if (t->slots[i].item)
            names_place(fresh, slots - 1, t->slots[i].hash, t->slots[i].item);
    free(t->slots);
    t->slots = fresh;
    t->mask = slots - 1;
    return 0;
}

int names_reserve(names_t *t)
{
    assert(t->slots);
    if ((t->used + 1) * 2 > t->mask + 1)
        return names_grow(t);
    return 0;
}

void names_insert(names_t *t, const names_key_t *k, void *item)
{
    assert(item && (t->used + 1) * 2 <= t->mask + 1); /* names_reserve() came first */
    names_place(t->slots, t->mask, k->hash, item);
    t->used++;
}

void *names_next(const names_t *t, uint64_t *cursor)
{
    while (t->slots && *cursor <= t->mask) {
        void *item = t->slots[(*cursor)++].item;
        if (item)
            return item;
    }
    return NULL;
}
