/* groups_check.c -- the invariants of a group's delivery ring, consumers and
 * pins, checked before and after each loop turn (group_turn).
 *
 * A broken one would lose an event (a checkpoint past it, a message nobody
 * has in flight any more) or deliver it twice, so the cheap ones are VERIFY
 * (on in every build); those that walk every outstanding message or pin slot
 * are assert() (on in debug builds: the sanitizer build and the tests run
 * them). */
#include "groups_int.h"

#include <assert.h>
#include <stdlib.h>

/* Cheap: bounds of the ring, the replays, the consumers and the pin table. */
static void check_bounds(const group_t *g)
{
    VERIFY(g->ring_head < GROUP_OUTSTANDING_MAX);
    VERIFY(g->ring_count <= GROUP_OUTSTANDING_MAX);
    /* Every outstanding event was read before the cursor: none is read twice. */
    VERIFY(g->ring_count == 0 || ring_at(g, g->ring_count - 1)->key < g->next);
    VERIFY(g->replay_count <= g->replay_cap && g->replay_count <= GROUP_REPLAYS_MAX);
    uint32_t consumers = 0;
    for (const consumer_t *k = g->consumers; k; k = k->next, consumers++) {
        VERIFY(k->g == g);
        /* max_inflight may be lowered by an update below what a consumer
         * already holds (msg_send never goes past it); the group's hard limit
         * holds always. */
        VERIFY(k->inflight <= GROUP_INFLIGHT_MAX && k->max_inflight <= GROUP_INFLIGHT_MAX);
    }
    VERIFY(consumers == g->consumer_count);
    VERIFY(!g->pins || g->pin_used * 2 <= g->pin_mask + 1);
}

#ifndef NDEBUG
/* One outstanding message: a state, a consumer exactly while in flight. */
static void check_msg(const group_t *g, const msg_t *m)
{
    assert(m->state > MSG_NEW && m->state < MSG_STATES); /* NEW never outlives its maker */
    assert((m->state == MSG_INFLIGHT) == (m->consumer != NULL));
    if (m->consumer) {
        assert(m->consumer->g == g);
        m->consumer->check_inflight++;
    }
}

/* Costly: the ring is in key and position order (msg_find searches it by
 * position), every message in flight is counted by its consumer, and the
 * checkpoint never goes back past one already written. */
static void check_messages(const group_t *g)
{
    for (consumer_t *k = g->consumers; k; k = k->next)
        k->check_inflight = 0;
    for (uint64_t i = 0; i < g->ring_count; i++) {
        const msg_t *m = ring_at(g, i);
        check_msg(g, m);
        assert(m->parked_version == 0);
        if (i > 0) {
            assert(ring_at(g, i - 1)->key < m->key);
            assert(ring_at(g, i - 1)->position < m->position);
        }
    }
    for (uint32_t i = 0; i < g->replay_count; i++) {
        check_msg(g, &g->replays[i]);
        assert(g->replays[i].parked_version > 0 && !g->replays[i].pinned);
    }
    for (const consumer_t *k = g->consumers; k; k = k->next)
        assert(k->check_inflight == k->inflight);
    assert(group_checkpoint(g) >= g->checkpoint_written);
}

/* Costly: each pin counts exactly the ring's pinned messages of its stream
 * (outstanding: not DONE; waiting: RETRY), and pin_used its used slots. */
static void check_pins(const group_t *g)
{
    if (!g->pins) {
        for (uint64_t i = 0; i < g->ring_count; i++)
            assert(!ring_at(g, i)->pinned);
        return;
    }
    uint64_t slots = g->pin_mask + 1, used = 0;
    uint32_t *outstanding = calloc(slots, sizeof *outstanding);
    uint32_t *waiting = calloc(slots, sizeof *waiting);
    if (outstanding && waiting) {
        for (uint64_t i = 0; i < g->ring_count; i++) {
            const msg_t *m = ring_at(g, i);
            if (!m->pinned || m->state == MSG_DONE)
                continue;
            uint64_t s = m->stream_hash & g->pin_mask;
            while (g->pins[s].hash && g->pins[s].hash != m->stream_hash)
                s = (s + 1) & g->pin_mask;
            assert(g->pins[s].hash == m->stream_hash);
            outstanding[s]++;
            waiting[s] += m->state == MSG_RETRY;
        }
        for (uint64_t s = 0; s < slots; s++) {
            used += g->pins[s].hash != 0;
            assert(g->pins[s].outstanding == outstanding[s]);
            assert(g->pins[s].waiting == waiting[s]);
            assert(g->pins[s].outstanding > 0 || g->pins[s].consumer == NULL);
        }
        assert(used == g->pin_used);
    }
    free(outstanding);
    free(waiting);
}

#endif

void group_check(const group_t *g)
{
    check_bounds(g);
#ifndef NDEBUG
    check_messages(g);
    check_pins(g);
#endif
}
