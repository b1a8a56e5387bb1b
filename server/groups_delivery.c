/* groups_delivery.c -- the delivery policy of a group: which consumer gets an
 * event (round robin, or pinned by stream), delivering new events, sending
 * waiting ones again, timeouts, retries and parking, and one loop turn of
 * it all. The states of a delivered event and the policy are tabled in
 * groups_int.h; every state change goes through msg_state(). */
#include "groups_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- states ---- */

/* The allowed changes of a message's state (groups_int.h has them with their
 * causes). Anything else would lose an event or deliver it twice. */
static const bool msg_transition_ok[MSG_STATES][MSG_STATES] = {
    [MSG_NEW] = {[MSG_INFLIGHT] = true, [MSG_RETRY] = true},
    [MSG_INFLIGHT] = {[MSG_RETRY] = true, [MSG_PARKING] = true, [MSG_DONE] = true},
    [MSG_RETRY] = {[MSG_INFLIGHT] = true, [MSG_DONE] = true},
    [MSG_PARKING] = {[MSG_RETRY] = true, [MSG_DONE] = true},
    [MSG_DONE] = {0},
};

static bool msg_in_ring(const group_t *g, const msg_t *m)
{
    return m >= g->ring && m < g->ring + GROUP_OUTSTANDING_MAX;
}

static pin_t *pin_slot(pin_t *pins, uint64_t mask, uint64_t h)
{
    uint64_t i = h & mask;
    while (pins[i].hash && pins[i].hash != h)
        i = (i + 1) & mask;
    return &pins[i];
}

static pin_t *pin_find(const group_t *g, uint64_t h)
{
    if (!g->pins)
        return NULL;
    pin_t *p = pin_slot(g->pins, g->pin_mask, h);
    return p->hash ? p : NULL;
}

void msg_state(group_t *g, msg_t *m, msg_state_t to)
{
    VERIFY(m->state < MSG_STATES && to < MSG_STATES);
    VERIFY(msg_transition_ok[m->state][to]);
    pin_t *p = m->pinned ? pin_find(g, m->stream_hash) : NULL;
    VERIFY(!m->pinned || (msg_in_ring(g, m) && p && p->outstanding > 0));
    if (p) {
        if (m->state == MSG_RETRY) {
            VERIFY(p->waiting > 0);
            p->waiting--;
        }
        if (to == MSG_RETRY)
            p->waiting++;
        if (to == MSG_DONE && --p->outstanding == 0)
            p->consumer = NULL; /* nothing outstanding: free to move */
    }
    m->state = to;
}

/* ---- choosing a consumer ---- */

/* True if c can take one more event now: under its in-flight limit, and its
 * batch and queued answers well under the frame and output limits. */
static bool consumer_has_room(const consumer_t *c)
{
    const server_t *srv = c->conn->srv;
    return c->inflight < c->max_inflight && !events_full(&c->batch) &&
           conn_queued_bytes(c->conn) < srv->cfg.output_bytes_max / 4;
}

/* The k-th consumer of g (k < consumer_count). */
static consumer_t *consumer_at(const group_t *g, uint64_t k)
{
    consumer_t *c = g->consumers;
    while (k--)
        c = c->next;
    return c;
}

/* The consumer an event of stream goes to, or NULL when the right one is
 * full (pinned) or none has room (round robin). */
static consumer_t *choose(group_t *g, const char *stream, size_t len)
{
    if (g->consumer_count == 0)
        return NULL;
    if (g->strategy == EVSTORE__V1__GROUP_STRATEGY__PINNED) {
        consumer_t *c = consumer_at(g, group_hash(stream, len) % g->consumer_count);
        return consumer_has_room(c) ? c : NULL;
    }
    for (uint32_t i = 0; i < g->consumer_count; i++) {
        uint32_t k = (g->rr + i) % g->consumer_count;
        consumer_t *c = consumer_at(g, k);
        if (consumer_has_room(c)) {
            g->rr = k + 1;
            return c;
        }
    }
    return NULL;
}

/* Adds an event to c's batch with its retry count. */
static int consumer_add(consumer_t *c, const log_event_t *ev, uint32_t retries)
{
    if (c->batch.count % 64 == 0) {
        uint32_t *fresh = realloc(c->retries, (c->batch.count + 64) * sizeof *fresh);
        if (!fresh)
            return -ENOMEM;
        c->retries = fresh;
    }
    c->retries[c->batch.count] = retries;
    return events_add(&c->batch, ev);
}

static uint64_t key_of(const group_t *g, const log_event_t *ev)
{
    return g->by_version ? (uint64_t)ev->version : ev->position;
}

/* ---- pins ---- */

/* Rebuilds the pin table keeping only streams with outstanding events. */
static int pins_rebuild(group_t *g)
{
    uint64_t live = 0;
    for (uint64_t i = 0; g->pins && i <= g->pin_mask; i++)
        live += g->pins[i].hash && g->pins[i].outstanding;
    uint64_t cap = GROUP_PIN_SLOTS_INITIAL;
    while (cap < live * 4)
        cap *= 2;
    pin_t *fresh = calloc(cap, sizeof *fresh);
    if (!fresh)
        return -ENOMEM;
    for (uint64_t i = 0; g->pins && i <= g->pin_mask; i++)
        if (g->pins[i].hash && g->pins[i].outstanding)
            *pin_slot(fresh, cap - 1, g->pins[i].hash) = g->pins[i];
    free(g->pins);
    g->pins = fresh;
    g->pin_mask = cap - 1;
    g->pin_used = live;
    return 0;
}

/* The pin of a stream (made when absent); NULL on ENOMEM. */
static pin_t *pin_get(group_t *g, uint64_t h)
{
    if ((!g->pins || (g->pin_used + 1) * 2 > g->pin_mask + 1) && pins_rebuild(g) != 0)
        return NULL;
    pin_t *p = pin_slot(g->pins, g->pin_mask, h);
    if (!p->hash) {
        p->hash = h;
        g->pin_used++;
    }
    return p;
}

/* The consumer of a pinned stream: kept while it has events outstanding. */
static consumer_t *pin_consumer(group_t *g, pin_t *p)
{
    if (!p->consumer && g->consumer_count > 0)
        p->consumer = consumer_at(g, p->hash % g->consumer_count);
    return p->consumer;
}

/* ---- taking events ---- */

typedef struct {
    server_t *srv;
    group_t *g;
    msg_t *msg;          /* a redelivery: the message being delivered again */
    bool refused;        /* a new event found no consumer with room */
    uint64_t refused_key;
    uint64_t visited_next; /* new events: the key after the last one visited (0: none) */
    uint32_t taken;
} take_t;

/* m (NEW or RETRY) goes to c, whose batch holds its event: INFLIGHT until
 * its deadline. c has room (a consumer never gets past its limit). */
static void msg_send(group_t *g, msg_t *m, consumer_t *c)
{
    VERIFY(c->inflight < c->max_inflight);
    msg_state(g, m, MSG_INFLIGHT);
    m->sent = true;
    m->consumer = c;
    m->deadline_ns = util_mono_ns() + (uint64_t)g->ack_timeout_ms * 1000000u;
    c->inflight++;
}

/* Stops a read at ev: no consumer (or ring slot) for it now; the cursor
 * stays on it. */
static int take_refuse(take_t *t, const log_event_t *ev)
{
    t->refused = true;
    t->refused_key = key_of(t->g, ev);
    return 1;
}

/* A new outstanding message for ev at the ring's end (the caller has
 * checked there is a free slot). */
static msg_t *ring_push(group_t *g, const log_event_t *ev, uint64_t stream_hash)
{
    VERIFY(g->ring_count < GROUP_OUTSTANDING_MAX);
    msg_t *m = ring_at(g, g->ring_count++);
    *m = (msg_t){.key = key_of(g, ev), .position = ev->position, .stream_hash = stream_hash,
                 .state = MSG_NEW};
    g->delivered++;
    return m;
}

/* A new event of a pinned group: sent to its stream's consumer, or queued
 * (as waiting) behind the stream's earlier events or while that consumer is
 * full, so other streams keep flowing. 0 to go on reading, 1 to stop. */
static int take_pinned(take_t *t, const log_event_t *ev)
{
    group_t *g = t->g;
    uint64_t h = group_hash(ev->stream, ev->stream_len) | 1;
    pin_t *p = g->ring_count < GROUP_OUTSTANDING_MAX ? pin_get(g, h) : NULL;
    consumer_t *c = p ? pin_consumer(g, p) : NULL;
    if (!p || !c)
        return take_refuse(t, ev);
    msg_t *m = ring_push(g, ev, h);
    m->pinned = true;
    p->outstanding++;
    if (p->waiting > 0 || !consumer_has_room(c) || consumer_add(c, ev, 0) != 0) {
        msg_state(g, m, MSG_RETRY);
        return 0;
    }
    msg_send(g, m, c);
    t->taken++;
    return 0;
}

/* Visitor of a group's reads: hands each event to a consumer. */
static int take_visit(void *ctx, const log_event_t *ev)
{
    take_t *t = ctx;
    group_t *g = t->g;
    msg_t *m = t->msg;
    if (!m)
        t->visited_next = key_of(g, ev) + 1;
    if (!m && !g->by_version && ev->stream_len > 0 && ev->stream[0] == '$')
        return 0; /* system streams are not part of $all/category groups */
    bool pinned = g->strategy == EVSTORE__V1__GROUP_STRATEGY__PINNED;
    if (!m && pinned)
        return take_pinned(t, ev);
    pin_t *p = m && pinned && msg_in_ring(g, m) ? pin_find(g, m->stream_hash) : NULL;
    consumer_t *c = p ? pin_consumer(g, p) : choose(g, ev->stream, ev->stream_len);
    if (!c || (p && !consumer_has_room(c)))
        return take_refuse(t, ev);
    if (!m) {
        if (g->ring_count == GROUP_OUTSTANDING_MAX)
            return take_refuse(t, ev);
        m = ring_push(g, ev, group_hash(ev->stream, ev->stream_len) | 1);
    } else if (m->sent) {
        g->redelivered++;
    }
    if (consumer_add(c, ev, m->retries) != 0) {
        if (m->state == MSG_NEW)
            msg_state(g, m, MSG_RETRY); /* sent at the next scan */
        return 1;
    }
    msg_send(g, m, c);
    t->taken++;
    return t->msg ? 1 : 0;
}

static log_read_t group_read_req(const group_t *g, uint64_t from, uint32_t max, log_filter_t *f)
{
    *f = (log_filter_t){.types = (const char *const *)g->types, .type_count = g->type_count,
                        .type_prefix = g->type_prefix};
    return (log_read_t){.stream = g->stream, .stream_len = strlen(g->stream), .from = from,
                        .max_count = max, .filter = g->type_count || g->type_prefix ? f : NULL};
}

int group_read_msg(server_t *srv, const group_t *g, const msg_t *m, log_visit_cb visit,
                   void *ctx)
{
    log_filter_t f;
    log_read_t req = group_read_req(g, m->key, 1, &f);
    req.filter = NULL;
    log_read_result_t res;
    return log_read(srv->log, &req, visit, ctx, &res);
}

/* Delivers one waiting message again (it may find no consumer with room). */
static void redeliver(server_t *srv, group_t *g, msg_t *m)
{
    take_t t = {.srv = srv, .g = g, .msg = m};
    int rc = group_read_msg(srv, g, m, take_visit, &t);
    if (rc != 0 && m->state == MSG_RETRY) {
        server_log(srv, "group %s: event %llu cannot be read (%s): skipped", g->name,
                   (unsigned long long)m->position, log_strerror(rc));
        msg_state(g, m, MSG_DONE);
    }
}

static uint32_t free_capacity(const group_t *g)
{
    uint32_t n = 0;
    for (consumer_t *c = g->consumers; c; c = c->next)
        n += consumer_has_room(c) ? c->max_inflight - c->inflight : 0;
    return n;
}

/* Reads new events from `next` for the consumers' free room. */
static void deliver_new(server_t *srv, group_t *g)
{
    uint32_t room = free_capacity(g);
    uint64_t ring_room = GROUP_OUTSTANDING_MAX - g->ring_count;
    uint32_t max = room < GROUP_READ_MAX ? room : GROUP_READ_MAX;
    if (max > ring_room)
        max = (uint32_t)ring_room;
    if (max == 0)
        return;
    log_filter_t f;
    log_read_t req = group_read_req(g, g->next, max, &f);
    take_t t = {.srv = srv, .g = g};
    log_read_result_t res;
    int rc = log_read(srv->log, &req, take_visit, &t, &res);
    if (rc == LOG_ENOT_FOUND)
        return; /* the stream has no events yet */
    if (rc)
        server_log(srv, "group %s: reading %s: %s", g->name, g->stream, log_strerror(rc));
    if (t.refused)
        g->next = t.refused_key;
    else if (rc == 0)
        g->next = res.next;
    else if (t.visited_next)
        g->next = t.visited_next; /* the events taken before the error stay taken once */
}

static void send_batches(group_t *g)
{
    for (consumer_t *c = g->consumers; c; c = c->next) {
        if (c->batch.count == 0 || events_finish(&c->batch) != 0)
            continue;
        Evstore__V1__GroupEvent *ge = calloc(c->batch.count, sizeof *ge);
        Evstore__V1__GroupEvent **gp = calloc(c->batch.count, sizeof *gp);
        if (ge && gp) {
            for (size_t i = 0; i < c->batch.count; i++) {
                evstore__v1__group_event__init(&ge[i]);
                ge[i].event = c->batch.ptrs[i];
                ge[i].retry_count = c->retries[i];
                gp[i] = &ge[i];
            }
            Evstore__V1__GroupEvents m = EVSTORE__V1__GROUP_EVENTS__INIT;
            m.events = gp;
            m.n_events = c->batch.count;
            send_body(c->conn, c->corr, EVSTORE__V1__ENVELOPE__BODY_GROUP_EVENTS, &m);
            conn_flush(c->conn);
        }
        free(ge);
        free(gp);
    }
}

/* ---- outcomes: done, retry, park ---- */

/* Frees m's slot at its consumer (if in flight). */
static void msg_release(msg_t *m)
{
    if (m->state == MSG_INFLIGHT && m->consumer) {
        VERIFY(m->consumer->inflight > 0);
        m->consumer->inflight--;
    }
    m->consumer = NULL;
}

void msg_park(server_t *srv, group_t *g, msg_t *m, const char *reason)
{
    msg_release(m);
    msg_state(g, m, MSG_PARKING);
    if (group_save_parked(srv, g, m, reason) != 0)
        msg_state(g, m, MSG_RETRY); /* try again later */
}

void msg_park_done(server_t *srv, group_t *g, uint64_t position, int status)
{
    msg_t *m = NULL;
    for (uint64_t i = 0; i < g->ring_count && !m; i++)
        if (ring_at(g, i)->position == position && ring_at(g, i)->state == MSG_PARKING)
            m = ring_at(g, i);
    for (uint32_t i = 0; i < g->replay_count && !m; i++)
        if (g->replays[i].position == position && g->replays[i].state == MSG_PARKING)
            m = &g->replays[i];
    if (!m)
        return;
    if (status == 0) {
        msg_state(g, m, MSG_DONE);
        g->parked++;
        return;
    }
    server_log(srv, "group %s: parking position %llu: %s (will retry)", g->name,
               (unsigned long long)position, log_strerror(status));
    msg_state(g, m, MSG_RETRY);
}

void msg_retry(server_t *srv, group_t *g, msg_t *m, const char *reason)
{
    msg_release(m);
    if (++m->retries > g->max_retries) {
        msg_park(srv, g, m, reason);
        return;
    }
    msg_state(g, m, MSG_RETRY);
}

void msg_done(group_t *g, msg_t *m)
{
    msg_release(m);
    msg_state(g, m, MSG_DONE);
    g->acked++;
    g->done_since_checkpoint++;
}

msg_t *msg_find(group_t *g, uint64_t position)
{
    uint64_t lo = 0, hi = g->ring_count; /* the ring is in position order */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ring_at(g, mid)->position < position)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < g->ring_count && ring_at(g, lo)->position == position &&
        ring_at(g, lo)->state != MSG_DONE)
        return ring_at(g, lo);
    for (uint32_t i = 0; i < g->replay_count; i++)
        if (g->replays[i].position == position && g->replays[i].state != MSG_DONE)
            return &g->replays[i];
    return NULL;
}

bool group_replay_queue(group_t *g, uint64_t key, uint64_t position, uint64_t parked_version)
{
    if (g->replay_count >= GROUP_REPLAYS_MAX)
        return false;
    if (g->replay_count == g->replay_cap) {
        uint32_t cap = g->replay_cap ? g->replay_cap * 2 : 64;
        msg_t *fresh = realloc(g->replays, cap * sizeof *fresh);
        if (!fresh)
            return false;
        g->replays = fresh;
        g->replay_cap = cap;
    }
    msg_t *m = &g->replays[g->replay_count++];
    *m = (msg_t){.key = key, .position = position, .state = MSG_NEW,
                 .parked_version = parked_version};
    msg_state(g, m, MSG_RETRY);
    return true;
}

void consumer_free(group_t *g, consumer_t *k, const char *reason)
{
    /* Its events in flight go back to the others. */
    for (uint64_t i = 0; i < g->ring_count; i++) {
        msg_t *m = ring_at(g, i);
        if (m->state == MSG_INFLIGHT && m->consumer == k) {
            m->consumer = NULL;
            msg_state(g, m, MSG_RETRY);
        }
    }
    for (uint32_t i = 0; i < g->replay_count; i++)
        if (g->replays[i].state == MSG_INFLIGHT && g->replays[i].consumer == k) {
            g->replays[i].consumer = NULL;
            msg_state(g, &g->replays[i], MSG_RETRY);
        }
    for (uint64_t i = 0; g->pins && i <= g->pin_mask; i++)
        if (g->pins[i].consumer == k)
            g->pins[i].consumer = NULL; /* its streams go to whoever is next */
    consumer_t **p = &g->consumers;
    while (*p != k)
        p = &(*p)->next;
    *p = k->next;
    g->consumer_count--;
    k->conn->srv->sub_count--;
    if (reason) {
        send_dropped(k->conn, k->corr, reason);
        conn_flush(k->conn);
    }
    events_free(&k->batch);
    free(k->retries);
    free(k);
}

/* ---- the loop's turn ---- */

/* Events in flight past their deadline are retried (or parked). */
static void expire(server_t *srv, group_t *g, uint64_t now)
{
    for (uint64_t i = 0; i < g->ring_count; i++) {
        msg_t *m = ring_at(g, i);
        if (m->state == MSG_INFLIGHT && m->deadline_ns <= now)
            msg_retry(srv, g, m, "ack timeout");
    }
    for (uint32_t i = 0; i < g->replay_count; i++) {
        msg_t *m = &g->replays[i];
        if (m->state == MSG_INFLIGHT && m->deadline_ns <= now)
            msg_retry(srv, g, m, "ack timeout");
    }
}

/* Drops the ring's done prefix and the done replays. */
static void compact(group_t *g)
{
    while (g->ring_count > 0 && ring_at(g, 0)->state == MSG_DONE) {
        g->ring_head = (g->ring_head + 1) % GROUP_OUTSTANDING_MAX;
        g->ring_count--;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->replay_count; i++)
        if (g->replays[i].state != MSG_DONE)
            g->replays[k++] = g->replays[i];
    g->replay_count = k;
}

/* False when m's stream is pinned to a consumer without room (no read is
 * spent on it then). */
static bool can_take(group_t *g, const msg_t *m)
{
    if (g->strategy != EVSTORE__V1__GROUP_STRATEGY__PINNED)
        return true;
    pin_t *p = pin_find(g, m->stream_hash);
    consumer_t *c = p ? pin_consumer(g, p) : NULL;
    return !p || (c && consumer_has_room(c));
}

/* Sends waiting events again (replays first) and new ones, as far as the
 * consumers have room. */
static void deliver(server_t *srv, group_t *g, bool scan)
{
    for (consumer_t *c = g->consumers; c; c = c->next)
        events_init(&c->batch, srv->cfg.frame_bytes_max / 2, NULL);
    for (uint32_t i = 0; scan && i < g->replay_count && free_capacity(g) > 0; i++)
        if (g->replays[i].state == MSG_RETRY)
            redeliver(srv, g, &g->replays[i]);
    for (uint64_t i = 0; scan && i < g->ring_count && free_capacity(g) > 0; i++)
        if (ring_at(g, i)->state == MSG_RETRY && can_take(g, ring_at(g, i)))
            redeliver(srv, g, ring_at(g, i));
    deliver_new(srv, g);
    send_batches(g);
    for (consumer_t *c = g->consumers; c; c = c->next)
        events_free(&c->batch);
}

static void group_turn(server_t *srv, group_t *g, uint64_t now)
{
    group_check(g);
    bool scan = now - g->scan_ns >= GROUP_SCAN_NS;
    if (scan) {
        expire(srv, g, now);
        g->scan_ns = now;
    }
    compact(g);
    if (g->consumer_count > 0)
        deliver(srv, g, scan);
    if (group_checkpoint(g) != g->checkpoint_written &&
        (g->done_since_checkpoint >= GROUP_CHECKPOINT_EVENTS ||
         now - g->checkpoint_ns >= (uint64_t)GROUP_CHECKPOINT_MS * 1000000u))
        group_save_checkpoint(srv, g);
    group_check(g);
}

void groups_turn(server_t *srv)
{
    uint64_t now = util_mono_ns();
    for (group_t *g = srv->groups; g; g = g->next_group)
        if (!g->deleted)
            group_turn(srv, g, now);
}
