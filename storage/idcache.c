/* idcache.c -- the ids of the most recent events, so that a retried append
 * with expected version "any" is recognised in O(1) instead of by reading
 * the stream back. A cache, not an index: it remembers about the last
 * `window` events; an entry older than that may be forgotten, and a hit is
 * always confirmed against the log by the caller. */
#include "log_int.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IDCACHE_PROBES 64u

int idcache_init(idcache_t *c, uint64_t window)
{
    memset(c, 0, sizeof *c);
    if (window == 0)
        return 0;
    uint64_t slots = 1024;
    while (slots < window * 4)
        slots *= 2;
    c->slots = calloc(slots, sizeof *c->slots);
    if (!c->slots)
        return -ENOMEM;
    c->mask = slots - 1;
    c->window = window;
    return 0;
}

void idcache_free(idcache_t *c)
{
    free(c->slots);
    memset(c, 0, sizeof *c);
}

uint64_t idcache_hash(const uint8_t id[16])
{
    uint64_t h = checksum64(id, 16, 0x5bd1e995u);
    return h ? h : 1; /* 0 marks an empty slot */
}

static bool slot_live(const idcache_t *c, const idcache_slot_t *s, uint64_t head)
{
    return s->hash != 0 && s->position + c->window >= head;
}

void idcache_put(idcache_t *c, const uint8_t id[16], uint64_t position, uint64_t head)
{
    if (!c->slots)
        return;
    uint64_t h = idcache_hash(id);
    idcache_slot_t *victim = NULL;
    for (uint64_t i = 0; i < IDCACHE_PROBES; i++) {
        idcache_slot_t *s = &c->slots[(h + i) & c->mask];
        if (!slot_live(c, s, head) || s->hash == h) {
            victim = s;
            break;
        }
        if (!victim || s->position < victim->position)
            victim = s; /* the oldest live entry gives way */
    }
    *victim = (idcache_slot_t){.hash = h, .position = position};
}

int idcache_find(const idcache_t *c, const uint8_t id[16], uint64_t head, uint64_t *positions,
                 int max)
{
    if (!c->slots)
        return 0;
    uint64_t h = idcache_hash(id);
    int n = 0;
    for (uint64_t i = 0; i < IDCACHE_PROBES && n < max; i++) {
        const idcache_slot_t *s = &c->slots[(h + i) & c->mask];
        if (s->hash == h && slot_live(c, s, head))
            positions[n++] = s->position;
    }
    return n;
}

void idcache_forget_from(idcache_t *c, uint64_t position)
{
    if (!c->slots)
        return;
    for (uint64_t i = 0; i <= c->mask; i++)
        if (c->slots[i].hash && c->slots[i].position >= position)
            c->slots[i].hash = 0;
}

/* ---- ids of accepted, unwritten events ---- */

int idq_push(id_queue_t *q, uint64_t position, const uint8_t id[16])
{
    if (q->count == 0) {
        q->start = 0;
        q->base = position;
    }
    assert(q->base + q->count == position);
    if (q->count == q->cap) {
        uint64_t cap = q->cap ? q->cap * 2 : 1024;
        uint8_t(*fresh)[16] = malloc(cap * 16);
        if (!fresh)
            return -ENOMEM;
        for (uint64_t i = 0; i < q->count; i++)
            memcpy(fresh[i], q->ids[(q->start + i) % q->cap], 16);
        free(q->ids);
        q->ids = fresh;
        q->cap = cap;
        q->start = 0;
    }
    memcpy(q->ids[(q->start + q->count) % q->cap], id, 16);
    q->count++;
    return 0;
}
