/* saga_map.c -- order id -> saga, chained hashing. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "saga_map.h"

static saga_entry_t **bucket_of(saga_map_t *m, const char *order_id)
{
    return &m->buckets[XXH3_64bits(order_id, strlen(order_id)) % SAGA_MAP_BUCKETS];
}

saga_entry_t *saga_map_get(saga_map_t *m, const char *order_id)
{
    for (saga_entry_t *e = *bucket_of(m, order_id); e; e = e->next)
        if (strcmp(e->saga.order_id, order_id) == 0)
            return e;
    return NULL;
}

saga_entry_t *saga_map_add(saga_map_t *m, const char *order_id)
{
    saga_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    oms_saga_init(&e->saga, order_id);
    saga_entry_t **b = bucket_of(m, order_id);
    e->next = *b;
    *b = e;
    m->count++;
    return e;
}

void saga_map_remove(saga_map_t *m, const char *order_id)
{
    for (saga_entry_t **p = bucket_of(m, order_id); *p; p = &(*p)->next) {
        if (strcmp((*p)->saga.order_id, order_id) == 0) {
            saga_entry_t *e = *p;
            *p = e->next;
            oms_saga_free(&e->saga);
            free(e);
            m->count--;
            return;
        }
    }
}

void saga_map_each(saga_map_t *m, void (*fn)(saga_entry_t *e, void *ctx), void *ctx)
{
    for (size_t b = 0; b < SAGA_MAP_BUCKETS && m->count; b++)
        for (saga_entry_t *e = m->buckets[b]; e; e = e->next)
            fn(e, ctx);
}

void saga_map_clear(saga_map_t *m)
{
    for (size_t b = 0; b < SAGA_MAP_BUCKETS; b++) {
        while (m->buckets[b]) {
            saga_entry_t *e = m->buckets[b];
            m->buckets[b] = e->next;
            oms_saga_free(&e->saga);
            free(e);
        }
    }
    m->count = 0;
}
