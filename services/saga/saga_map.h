/* saga_map.h -- a small chained hash map from order id to a saga, one per
 * worker (no locks: only its worker touches it). */
#ifndef OMS_SAGA_MAP_H
#define OMS_SAGA_MAP_H

#include <stddef.h>

#include "saga.h"

#define SAGA_MAP_BUCKETS 256u /* per worker: the tick walks every bucket, every tick_ms */

typedef struct saga_entry {
    oms_saga_t saga;
    struct saga_entry *next;
} saga_entry_t;

typedef struct {
    saga_entry_t *buckets[SAGA_MAP_BUCKETS];
    size_t count;
} saga_map_t;

/* The entry of order_id, or NULL. */
saga_entry_t *saga_map_get(saga_map_t *m, const char *order_id);
/* Adds a NEW saga for order_id (must be absent). NULL on ENOMEM. */
saga_entry_t *saga_map_add(saga_map_t *m, const char *order_id);
/* Removes and frees order_id's entry (no-op when absent). */
void saga_map_remove(saga_map_t *m, const char *order_id);
/* Calls fn on every entry; fn may not change the map. */
void saga_map_each(saga_map_t *m, void (*fn)(saga_entry_t *e, void *ctx), void *ctx);
void saga_map_clear(saga_map_t *m);

#endif
