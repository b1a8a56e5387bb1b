/* groups.c -- persistent subscription groups (competing consumers).
 *
 * A group reads its stream, category or $all from a cursor and hands each
 * event to one of its consumers (round robin, or pinned by stream), keeping
 * every delivered event in `outstanding` (in log order) until it is acked,
 * skipped or parked. An event not acked within ack_timeout_ms, or nacked with
 * RETRY, is delivered again with its retry count raised; past max_retries it
 * is parked: a reference to it (position, stream, version, type, reason) is
 * appended to the dead-letter stream "$parked-<name>", from which
 * replay-parked delivers it again.
 *
 * The group's settings and its checkpoint (every event before it is done)
 * are events of the system stream "$group-<name>", so a group survives
 * restarts and resumes from its checkpoint: at-least-once delivery. */
#include "server_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <endian.h>
#include <time.h>

#define GROUP_ACK_TIMEOUT_MS_DEFAULT 30000u
#define GROUP_MAX_RETRIES_DEFAULT 10u
#define GROUP_INFLIGHT_DEFAULT 100u
#define GROUP_INFLIGHT_MAX 10000u
#define GROUP_OUTSTANDING_MAX 65536u    /* delivered, not yet done, per group */
#define GROUP_READ_MAX 512u             /* events read for a group in one loop turn */
#define GROUP_CHECKPOINT_EVENTS 1000u   /* write the checkpoint after this many done */
#define GROUP_CHECKPOINT_MS 1000u       /* ...or this long after the last one */
#define GROUP_NAME_BYTES_MAX 200u
#define GROUP_SCAN_NS 5000000ull         /* timeouts and retries are looked for this often */
#define GROUP_REASON_BYTES_MAX 1024u     /* a nack's reason kept in the dead letter */
#define GROUP_REPLAYS_MAX 65536u         /* parked events queued by one replay */
#define GROUP_SETTINGS_EVERY 1000u       /* checkpoints between rewrites of the settings,
                                            so a restart reads few events to find them */
#define GROUPS_MAX 1000u

#define GROUP_STREAM_PREFIX "$group-"
#define PARKED_STREAM_PREFIX "$parked-"

typedef enum { MSG_INFLIGHT, MSG_RETRY, MSG_PARKING, MSG_DONE } msg_state_t;

typedef struct consumer_s consumer_t;

typedef struct {
    uint64_t key;           /* cursor value: version (stream group) or position */
    uint64_t position;      /* global position: what consumers ack */
    uint64_t deadline_ns;
    consumer_t *consumer;   /* while in flight */
    uint32_t retries;
    msg_state_t state;
    uint64_t parked_version;  /* a replay: its version in $parked-<name> (+1; 0: not a replay) */
    uint64_t stream_hash;     /* of its stream's name: its pin */
    bool sent;                /* delivered at least once */
} msg_t;

/* A pinned group's stream: the consumer its events go to while any of them
 * is outstanding, and how many are (and how many wait to be sent). */
typedef struct {
    uint64_t hash;            /* 0: a free slot */
    consumer_t *consumer;     /* NULL: chosen again at the next delivery */
    uint32_t outstanding;
    uint32_t waiting;
} pin_t;

struct consumer_s {
    group_t *g;
    conn_t *conn;
    uint64_t corr;
    uint32_t max_inflight, inflight;
    uint32_t requested;      /* the limit it asked for (0: the group's) */
    events_t batch;          /* events to send this turn */
    uint32_t *retries;       /* retry count of each event in batch */
    consumer_t *next;
};

struct group_s {
    char *name;
    char *stream;
    bool by_version;
    Evstore__V1__GroupStrategy strategy;
    uint32_t ack_timeout_ms, max_retries, max_inflight;
    char **types;
    size_t type_count;
    char *type_prefix;
    uint64_t next;            /* next key to read from the log */
    msg_t *ring;              /* outstanding, in key order */
    uint64_t ring_head, ring_count;
    msg_t *replays;           /* parked events being delivered again (any order) */
    uint32_t replay_count, replay_cap;
    uint64_t replay_from;     /* version of $parked-<name> replayed up to */
    uint64_t scan_ns;         /* last scan for timeouts and retries */
    pin_t *pins;              /* pinned strategy: streams with outstanding events */
    uint64_t pin_mask, pin_used;
    consumer_t *consumers;
    uint32_t consumer_count, rr;
    uint64_t checkpoint_written, done_since_checkpoint, checkpoint_ns;
    uint64_t delivered, acked, redelivered, parked, checkpoints;
    uint32_t appends_pending; /* park/checkpoint appends holding the group */
    bool deleted;
    group_t *next_group;
};

static msg_t *ring_at(const group_t *g, uint64_t i)
{
    return &g->ring[(g->ring_head + i) % GROUP_OUTSTANDING_MAX];
}

/* The key before which every event of the group is done. */
static uint64_t group_checkpoint(const group_t *g)
{
    for (uint64_t i = 0; i < g->ring_count; i++)
        if (ring_at(g, i)->state != MSG_DONE)
            return ring_at(g, i)->key;
    return g->next;
}

/* ---- settings ---- */

static void group_free(group_t *g)
{
    for (size_t i = 0; i < g->type_count; i++)
        free(g->types[i]);
    free(g->types);
    free(g->type_prefix);
    free(g->name);
    free(g->stream);
    free(g->ring);
    free(g->replays);
    free(g->pins);
    free(g);
}

static int group_set_filter(group_t *g, const Evstore__V1__EventFilter *f)
{
    for (size_t i = 0; i < g->type_count; i++)
        free(g->types[i]);
    free(g->types);
    free(g->type_prefix);
    g->types = NULL;
    g->type_count = 0;
    g->type_prefix = NULL;
    if (!f)
        return 0;
    if (f->type_prefix[0] && !(g->type_prefix = strdup(f->type_prefix)))
        return -ENOMEM;
    if (f->n_types && !(g->types = calloc(f->n_types, sizeof *g->types)))
        return -ENOMEM;
    for (size_t i = 0; i < f->n_types; i++, g->type_count++)
        if (!(g->types[i] = strdup(f->types[i])))
            return -ENOMEM;
    return 0;
}

static uint32_t or_default(uint32_t v, uint32_t def) { return v ? v : def; }

/* Applies the changeable settings of m (update and create). */
static int group_apply(group_t *g, const Evstore__V1__GroupSettings *m)
{
    g->strategy = m->strategy;
    g->ack_timeout_ms = or_default(m->ack_timeout_ms, GROUP_ACK_TIMEOUT_MS_DEFAULT);
    g->max_retries = or_default(m->max_retries, GROUP_MAX_RETRIES_DEFAULT);
    g->max_inflight = or_default(m->max_inflight_per_consumer, GROUP_INFLIGHT_DEFAULT);
    if (g->max_inflight > GROUP_INFLIGHT_MAX)
        g->max_inflight = GROUP_INFLIGHT_MAX;
    return group_set_filter(g, m->filter);
}

static group_t *group_new(const Evstore__V1__GroupSettings *m, uint64_t start)
{
    group_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->name = strdup(m->name);
    g->stream = strdup(m->stream);
    g->ring = malloc(GROUP_OUTSTANDING_MAX * sizeof *g->ring);
    if (!g->name || !g->stream || !g->ring || group_apply(g, m) != 0) {
        group_free(g);
        return NULL;
    }
    g->by_version = strcmp(g->stream, "$all") != 0 && strncmp(g->stream, "$ce-", 4) != 0;
    g->next = start;
    g->checkpoint_written = start;
    g->checkpoint_ns = server_now_ns();
    return g;
}

static group_t *group_find(server_t *srv, const char *name)
{
    for (group_t *g = srv->groups; g; g = g->next_group)
        if (!g->deleted && strcmp(g->name, name) == 0)
            return g;
    return NULL;
}

static void settings_of(const group_t *g, Evstore__V1__GroupSettings *m,
                        Evstore__V1__EventFilter *f)
{
    evstore__v1__group_settings__init(m);
    evstore__v1__event_filter__init(f);
    m->name = g->name;
    m->stream = g->stream;
    /* Where a restart resumes if no newer checkpoint is written: never past an
     * event still outstanding. */
    m->from = group_checkpoint(g);
    m->strategy = g->strategy;
    m->ack_timeout_ms = g->ack_timeout_ms;
    m->max_retries = g->max_retries;
    m->max_inflight_per_consumer = g->max_inflight;
    f->types = g->types;
    f->n_types = g->type_count;
    f->type_prefix = g->type_prefix ? g->type_prefix : "";
    m->filter = f;
}

/* ---- appends to the group's system streams ---- */

typedef enum { GAPPEND_PLAIN, GAPPEND_CREATE, GAPPEND_DELETE, GAPPEND_PARK } gappend_kind_t;

typedef struct {
    server_t *srv;
    group_t *g;           /* the group it is for */
    conn_t *conn;         /* answer Done to it, or NULL */
    uint64_t corr;
    gappend_kind_t kind;
    uint64_t park_position; /* a park: the event now done */
} gappend_t;

static void group_unlink(server_t *srv, group_t *g);
static void group_drop(server_t *srv, group_t *g, const char *reason);
static void consumer_free(group_t *g, consumer_t *k, const char *reason);
static void msg_state(group_t *g, msg_t *m, msg_state_t to);
static int64_t parked_count(server_t *srv, const group_t *g);

/* A park became durable (or failed: then the event waits to be retried). */
static void park_done(gappend_t *a, int status)
{
    group_t *g = a->g;
    msg_t *m = NULL;
    for (uint64_t i = 0; i < g->ring_count && !m; i++)
        if (ring_at(g, i)->position == a->park_position && ring_at(g, i)->state == MSG_PARKING)
            m = ring_at(g, i);
    for (uint32_t i = 0; i < g->replay_count && !m; i++)
        if (g->replays[i].position == a->park_position && g->replays[i].state == MSG_PARKING)
            m = &g->replays[i];
    if (!m)
        return;
    if (status == 0) {
        msg_state(g, m, MSG_DONE);
        g->parked++;
        return;
    }
    server_log(a->srv, "group %s: parking position %llu: %s (will retry)", g->name,
               (unsigned long long)a->park_position, log_strerror(status));
    msg_state(g, m, MSG_RETRY);
}

static void gappend_done(void *ctx, const log_append_result_t *res)
{
    gappend_t *a = ctx;
    group_t *g = a->g;
    g->appends_pending--;
    if (a->kind == GAPPEND_PARK)
        park_done(a, res->status);
    else if (a->kind == GAPPEND_CREATE && res->status != 0 && !g->deleted)
        group_drop(a->srv, g, "group could not be created"); /* memory follows the disk */
    else if (a->kind == GAPPEND_DELETE && res->status == 0 && !g->deleted)
        group_drop(a->srv, g, "group deleted");
    if (a->conn) {
        if (res->status)
            conn_send_error(a->conn, a->corr, error_code_of(res->status),
                            log_strerror(res->status), 0, 0);
        else
            send_body(a->conn, a->corr, EVSTORE__V1__ENVELOPE__BODY_DONE,
                      &(Evstore__V1__Done)EVSTORE__V1__DONE__INIT);
        conn_release(a->conn);
    }
    if (g->deleted && g->appends_pending == 0)
        group_free(g);
    free(a);
}

/* Appends one event to a system stream of g; answers Done to conn when durable. */
static int group_append(server_t *srv, group_t *g, gappend_kind_t kind, const char *stream,
                        const char *type, const void *data, size_t len, const uint8_t id[16],
                        conn_t *conn, uint64_t corr, uint64_t park_position)
{
    gappend_t *a = malloc(sizeof *a);
    if (!a)
        return -ENOMEM;
    *a = (gappend_t){.srv = srv, .g = g, .conn = conn, .corr = corr, .kind = kind,
                     .park_position = park_position};
    log_event_in_t ev = {.type = type, .type_len = strlen(type), .data = data, .data_len = len};
    if (id)
        memcpy(ev.id, id, 16);
    else
        for (int i = 0; i < 16; i += 8) {
            uint64_t r = (uint64_t)rand() << 32 ^ (uint64_t)rand() ^ server_now_ns();
            memcpy(ev.id + i, &r, 8);
        }
    log_stream_append_t sa = {.stream = stream, .stream_len = strlen(stream),
                              .expected_version = LOG_EXPECT_ANY, .events = &ev, .event_count = 1};
    log_append_t req = {.streams = &sa, .stream_count = 1, .system = true};
    int rc = log_append(srv->log, &req, gappend_done, a, NULL);
    if (rc) {
        free(a);
        return rc;
    }
    g->appends_pending++;
    if (conn)
        conn->refs++;
    return 0;
}

static void stream_name(char *buf, size_t cap, const char *prefix, const char *name)
{
    snprintf(buf, cap, "%s%s", prefix, name);
}

static int group_save_settings(server_t *srv, group_t *g, gappend_kind_t kind, conn_t *c,
                               uint64_t corr)
{
    Evstore__V1__GroupSettings m;
    Evstore__V1__EventFilter f;
    settings_of(g, &m, &f);
    size_t n = evstore__v1__group_settings__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    evstore__v1__group_settings__pack(&m, buf);
    char stream[GROUP_NAME_BYTES_MAX + 16];
    stream_name(stream, sizeof stream, GROUP_STREAM_PREFIX, g->name);
    int rc = group_append(srv, g, kind, stream, "GroupSettings", buf, n, NULL, c, corr, UINT64_MAX);
    free(buf);
    return rc;
}

/* The version of $parked-<name> from which a restart must replay again: the
 * oldest replayed event not yet done, or where replaying has reached. */
static uint64_t replay_checkpoint(const group_t *g)
{
    uint64_t v = g->replay_from;
    for (uint32_t i = 0; i < g->replay_count; i++)
        if (g->replays[i].state != MSG_DONE && g->replays[i].parked_version - 1 < v)
            v = g->replays[i].parked_version - 1;
    return v;
}

/* Checkpoint data: little-endian u64 checkpoint key, replay_from, and the
 * version replaying must restart from. */
static void group_save_checkpoint(server_t *srv, group_t *g)
{
    uint64_t cp[3] = {htole64(group_checkpoint(g)), htole64(g->replay_from),
                      htole64(replay_checkpoint(g))};
    char stream[GROUP_NAME_BYTES_MAX + 16];
    stream_name(stream, sizeof stream, GROUP_STREAM_PREFIX, g->name);
    if (group_append(srv, g, GAPPEND_PLAIN, stream, "Checkpoint", cp, sizeof cp, NULL, NULL, 0,
                     UINT64_MAX) == 0) {
        g->checkpoint_written = le64toh(cp[0]);
        g->done_since_checkpoint = 0;
        g->checkpoint_ns = server_now_ns();
        if (++g->checkpoints % GROUP_SETTINGS_EVERY == 0)
            group_save_settings(srv, g, GAPPEND_PLAIN, NULL, 0);
    }
}

/* ---- delivery ---- */

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* The consumer an event goes to, or NULL when the right one is full. */
/* True if c can take one more event now: under its in-flight limit, and its
 * batch and queued answers well under the frame and output limits. */
static bool consumer_has_room(const consumer_t *c)
{
    const server_t *srv = c->conn->srv;
    return c->inflight < c->max_inflight && !events_full(&c->batch) &&
           conn_queued_bytes(c->conn) < srv->cfg.output_bytes_max / 4;
}

static consumer_t *choose(group_t *g, const char *stream, size_t len)
{
    if (g->consumer_count == 0)
        return NULL;
    if (g->strategy == EVSTORE__V1__GROUP_STRATEGY__PINNED) {
        uint64_t k = hash_name(stream, len) % g->consumer_count;
        consumer_t *c = g->consumers;
        while (k--)
            c = c->next;
        return consumer_has_room(c) ? c : NULL;
    }
    for (uint32_t i = 0; i < g->consumer_count; i++) {
        uint32_t k = (g->rr + i) % g->consumer_count;
        consumer_t *c = g->consumers;
        for (uint32_t j = 0; j < k; j++)
            c = c->next;
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

typedef struct {
    server_t *srv;
    group_t *g;
    msg_t *msg;          /* a redelivery: the message being delivered again */
    bool refused;        /* a new event found no consumer with room */
    uint64_t refused_key;
    uint32_t taken;
} take_t;

#define PIN_SLOTS_INITIAL 1024u

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

/* Rebuilds the pin table keeping only streams with outstanding events. */
static int pins_rebuild(group_t *g)
{
    uint64_t live = 0;
    for (uint64_t i = 0; g->pins && i <= g->pin_mask; i++)
        live += g->pins[i].hash && g->pins[i].outstanding;
    uint64_t cap = PIN_SLOTS_INITIAL;
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

static pin_t *pin_find(const group_t *g, uint64_t h)
{
    if (!g->pins)
        return NULL;
    pin_t *p = pin_slot(g->pins, g->pin_mask, h);
    return p->hash ? p : NULL;
}

/* Changes a message's state, keeping its stream's pin counts. */
static void msg_state(group_t *g, msg_t *m, msg_state_t to)
{
    pin_t *p = msg_in_ring(g, m) ? pin_find(g, m->stream_hash) : NULL;
    if (p && m->state != to) {
        if (m->state == MSG_RETRY)
            p->waiting--;
        if (to == MSG_RETRY)
            p->waiting++;
        if (to == MSG_DONE && --p->outstanding == 0)
            p->consumer = NULL; /* nothing outstanding: free to move */
    }
    m->state = to;
}

/* The consumer of a pinned stream: kept while it has events outstanding. */
static consumer_t *pin_consumer(group_t *g, pin_t *p)
{
    if (!p->consumer && g->consumer_count > 0) {
        uint64_t k = p->hash % g->consumer_count;
        consumer_t *c = g->consumers;
        while (k--)
            c = c->next;
        p->consumer = c;
    }
    return p->consumer;
}

static void msg_send(group_t *g, msg_t *m, consumer_t *c)
{
    msg_state(g, m, MSG_INFLIGHT);
    m->sent = true;
    m->consumer = c;
    m->deadline_ns = server_now_ns() + (uint64_t)g->ack_timeout_ms * 1000000u;
    c->inflight++;
}

/* A new event of a pinned group: sent to its stream's consumer, or queued
 * (as waiting) behind the stream's earlier events or while that consumer is
 * full, so other streams keep flowing. 0 to go on reading, 1 to stop. */
static int take_pinned(take_t *t, const log_event_t *ev)
{
    group_t *g = t->g;
    uint64_t h = hash_name(ev->stream, ev->stream_len) | 1;
    pin_t *p = g->ring_count < GROUP_OUTSTANDING_MAX ? pin_get(g, h) : NULL;
    consumer_t *c = p ? pin_consumer(g, p) : NULL;
    if (!p || !c) {
        t->refused = true;
        t->refused_key = key_of(g, ev);
        return 1;
    }
    msg_t *m = ring_at(g, g->ring_count++);
    *m = (msg_t){.key = key_of(g, ev), .position = ev->position, .stream_hash = h,
                 .state = MSG_INFLIGHT};
    p->outstanding++;
    g->delivered++;
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
    if (!m && !g->by_version && ev->stream_len > 0 && ev->stream[0] == '$')
        return 0; /* system streams are not part of $all/category groups */
    bool pinned = g->strategy == EVSTORE__V1__GROUP_STRATEGY__PINNED;
    if (!m && pinned)
        return take_pinned(t, ev);
    pin_t *p = m && pinned && msg_in_ring(g, m) ? pin_find(g, m->stream_hash) : NULL;
    consumer_t *c = p ? pin_consumer(g, p) : choose(g, ev->stream, ev->stream_len);
    if (!c || (p && !consumer_has_room(c))) {
        t->refused = true;
        t->refused_key = key_of(g, ev);
        return 1;
    }
    if (!m) {
        if (g->ring_count == GROUP_OUTSTANDING_MAX) {
            t->refused = true;
            t->refused_key = key_of(g, ev);
            return 1;
        }
        m = ring_at(g, g->ring_count++);
        *m = (msg_t){.key = key_of(g, ev), .position = ev->position,
                     .stream_hash = hash_name(ev->stream, ev->stream_len) | 1};
        g->delivered++;
    } else if (m->sent) {
        g->redelivered++;
    }
    if (consumer_add(c, ev, m->retries) != 0)
        return 1;
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

/* Delivers one waiting message again (it may find no consumer with room). */
static void redeliver(server_t *srv, group_t *g, msg_t *m)
{
    log_filter_t f;
    log_read_t req = group_read_req(g, m->key, 1, &f);
    req.filter = NULL;
    take_t t = {.srv = srv, .g = g, .msg = m};
    log_read_result_t res;
    int rc = log_read(srv->log, &req, take_visit, &t, &res);
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
    if (rc) {
        server_log(srv, "group %s: reading %s: %s", g->name, g->stream, log_strerror(rc));
        return;
    }
    g->next = t.refused ? t.refused_key : res.next;
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

static void msg_release(msg_t *m)
{
    if (m->state == MSG_INFLIGHT && m->consumer)
        m->consumer->inflight--;
    m->consumer = NULL;
}

/* The dead letter's data: where the event is, and why. A reason that is not
 * valid UTF-8 (or is too long) is cut or left out, so a park always fits. */
static char *park_text(const msg_t *m, const char *reason)
{
    size_t n = reason ? strnlen(reason, GROUP_REASON_BYTES_MAX) : 0;
    json_t *j = json_pack("{s:I,s:I,s:s%}", "position", (json_int_t)m->position, "key",
                          (json_int_t)m->key, "reason", reason ? reason : "", n);
    if (!j)
        j = json_pack("{s:I,s:I,s:s}", "position", (json_int_t)m->position, "key",
                      (json_int_t)m->key, "reason", "(not UTF-8)");
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

static void park(server_t *srv, group_t *g, msg_t *m, const char *reason)
{
    msg_release(m);
    msg_state(g, m, MSG_PARKING);
    char *text = park_text(m, reason);
    char stream[GROUP_NAME_BYTES_MAX + 16];
    stream_name(stream, sizeof stream, PARKED_STREAM_PREFIX, g->name);
    /* The id is derived from the group, the event and how often it was
     * replayed: a retried park of the same delivery is written once, a park
     * after a replay is a new dead letter. */
    uint8_t id[16];
    uint64_t h = hash_name(g->name, strlen(g->name)) ^ (m->parked_version * 0x9e3779b97f4a7c15ull);
    memcpy(id, &h, 8);
    memcpy(id + 8, &m->position, 8);
    int rc = text ? group_append(srv, g, GAPPEND_PARK, stream, "Parked", text, strlen(text), id,
                                 NULL, 0, m->position)
                  : -ENOMEM;
    if (rc)
        msg_state(g, m, MSG_RETRY); /* try again later */
    free(text);
}

static void msg_retry(server_t *srv, group_t *g, msg_t *m, const char *reason)
{
    msg_release(m);
    if (++m->retries > g->max_retries) {
        park(srv, g, m, reason);
        return;
    }
    msg_state(g, m, MSG_RETRY);
}

static void msg_done(group_t *g, msg_t *m)
{
    msg_release(m);
    msg_state(g, m, MSG_DONE);
    g->acked++;
    g->done_since_checkpoint++;
}

/* The outstanding message with this position (ring by binary search, then
 * the replays), or NULL. */
static msg_t *msg_find(group_t *g, uint64_t position)
{
    uint64_t lo = 0, hi = g->ring_count;
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

/* ---- the loop's turn ---- */

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

static void group_turn(server_t *srv, group_t *g, uint64_t now)
{
    bool scan = now - g->scan_ns >= GROUP_SCAN_NS;
    if (scan) {
        expire(srv, g, now);
        g->scan_ns = now;
    }
    compact(g);
    if (g->consumer_count == 0)
        goto checkpoint;
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
checkpoint:
    if (group_checkpoint(g) != g->checkpoint_written &&
        (g->done_since_checkpoint >= GROUP_CHECKPOINT_EVENTS ||
         now - g->checkpoint_ns >= (uint64_t)GROUP_CHECKPOINT_MS * 1000000u))
        group_save_checkpoint(srv, g);
}

void groups_turn(server_t *srv)
{
    uint64_t now = server_now_ns();
    for (group_t *g = srv->groups; g; g = g->next_group)
        if (!g->deleted)
            group_turn(srv, g, now);
}

/* ---- requests ---- */

static void answer_done(conn_t *c, uint64_t corr)
{
    Evstore__V1__Done d = EVSTORE__V1__DONE__INIT;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_DONE, &d);
}

static bool group_name_ok(conn_t *c, uint64_t corr, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > GROUP_NAME_BYTES_MAX || name[0] == '$') {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BAD_REQUEST,
                        "group names are 1..200 bytes and do not start with '$'", 0, 0);
        return false;
    }
    return true;
}

static group_t *group_or_error(conn_t *c, uint64_t corr, const char *name)
{
    group_t *g = group_find(c->srv, name);
    if (!g)
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__GROUP_NOT_FOUND, "no such group", 0, 0);
    return g;
}

static void group_link(server_t *srv, group_t *g)
{
    g->next_group = srv->groups;
    srv->groups = g;
}

static uint32_t group_count(const server_t *srv)
{
    uint32_t n = 0;
    for (const group_t *g = srv->groups; g; g = g->next_group)
        n += !g->deleted;
    return n;
}

/* Where a new group starts: its `from`, or the head for from_end. */
static uint64_t group_start(server_t *srv, const Evstore__V1__GroupSettings *m)
{
    if (!m->from_end)
        return m->from;
    bool by_version = strcmp(m->stream, "$all") != 0 && strncmp(m->stream, "$ce-", 4) != 0;
    if (by_version) {
        int64_t v;
        return log_stream_version(srv->log, m->stream, strlen(m->stream), &v) == 0
                   ? (uint64_t)v + 1 : 0;
    }
    log_stats_t st;
    log_stats(srv->log, &st);
    return st.durable_position;
}

void group_create(conn_t *c, uint64_t corr, const Evstore__V1__GroupSettings *m)
{
    server_t *srv = c->srv;
    if (!group_name_ok(c, corr, m->name))
        return;
    if (group_find(srv, m->name)) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__GROUP_EXISTS, "group exists", 0, 0);
        return;
    }
    if (group_count(srv) >= GROUPS_MAX) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "too many groups", 0, 0);
        return;
    }
    group_t *g = group_new(m, group_start(srv, m));
    if (!g) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
        return;
    }
    /* A re-created group does not inherit the dead letters of an old one. */
    g->replay_from = (uint64_t)parked_count(srv, g);
    group_link(srv, g);
    int rc = group_save_settings(srv, g, GAPPEND_CREATE, c, corr); /* answered once durable */
    if (rc == 0)
        group_save_checkpoint(srv, g); /* a restart knows replay_from from the start */
    if (rc) {
        conn_send_error(c, corr, error_code_of(rc), log_strerror(rc), 0, 0);
        group_drop(srv, g, NULL);
        if (g->appends_pending == 0)
            group_free(g);
    }
}

void group_update(conn_t *c, uint64_t corr, const Evstore__V1__GroupSettings *m)
{
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    if (group_apply(g, m) != 0) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
        return;
    }
    for (consumer_t *k = g->consumers; k; k = k->next)
        k->max_inflight = k->requested && k->requested < g->max_inflight ? k->requested
                                                                          : g->max_inflight;
    int rc = group_save_settings(c->srv, g, GAPPEND_PLAIN, c, corr);
    if (rc)
        conn_send_error(c, corr, error_code_of(rc), log_strerror(rc), 0, 0);
}

static void consumer_free(group_t *g, consumer_t *k, const char *reason)
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
            g->replays[i].state = MSG_RETRY;
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

/* Takes g out of the server: its consumers are dropped (told reason, if any)
 * and it is freed once no append of its is pending. */
static void group_drop(server_t *srv, group_t *g, const char *reason)
{
    while (g->consumers)
        consumer_free(g, g->consumers, reason);
    g->deleted = true;
    group_unlink(srv, g);
}

static void group_unlink(server_t *srv, group_t *g)
{
    group_t **p = &srv->groups;
    while (*p && *p != g)
        p = &(*p)->next_group;
    if (*p)
        *p = g->next_group;
    g->next_group = NULL;
}

void group_delete(conn_t *c, uint64_t corr, const Evstore__V1__GroupName *m)
{
    server_t *srv = c->srv;
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    char stream[GROUP_NAME_BYTES_MAX + 16];
    stream_name(stream, sizeof stream, GROUP_STREAM_PREFIX, g->name);
    /* The group goes when its deletion is durable (gappend_done). */
    int rc = group_append(srv, g, GAPPEND_DELETE, stream, "GroupDeleted", "{}", 2, NULL, c, corr,
                          UINT64_MAX);
    if (rc)
        conn_send_error(c, corr, error_code_of(rc), log_strerror(rc), 0, 0);
}

static int64_t parked_count(server_t *srv, const group_t *g)
{
    char stream[GROUP_NAME_BYTES_MAX + 16];
    stream_name(stream, sizeof stream, PARKED_STREAM_PREFIX, g->name);
    int64_t v;
    return log_stream_version(srv->log, stream, strlen(stream), &v) == 0 ? v + 1 : 0;
}

static void info_of(server_t *srv, const group_t *g, Evstore__V1__GroupInfo *info,
                    Evstore__V1__GroupSettings *set, Evstore__V1__EventFilter *f)
{
    evstore__v1__group_info__init(info);
    settings_of(g, set, f);
    info->settings = set;
    uint64_t cp = group_checkpoint(g);
    info->checkpoint = cp;
    info->next = g->next;
    uint64_t head;
    if (g->by_version) {
        int64_t v;
        head = log_stream_version(srv->log, g->stream, strlen(g->stream), &v) == 0 ? (uint64_t)v + 1 : 0;
    } else {
        log_stats_t st;
        log_stats(srv->log, &st);
        head = st.durable_position;
    }
    info->lag = head > cp ? head - cp : 0;
    info->consumers = g->consumer_count;
    uint32_t inflight = 0;
    for (const consumer_t *k = g->consumers; k; k = k->next)
        inflight += k->inflight;
    info->inflight = inflight;
    info->parked = (uint64_t)parked_count(srv, g);
    info->delivered = g->delivered;
    info->acked = g->acked;
    info->redelivered = g->redelivered;
}

void group_info(conn_t *c, uint64_t corr, const Evstore__V1__GroupName *m)
{
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    Evstore__V1__GroupInfo info;
    Evstore__V1__GroupSettings set;
    Evstore__V1__EventFilter f;
    info_of(c->srv, g, &info, &set, &f);
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_GROUP_INFO_OK, &info);
}

void group_list(conn_t *c, uint64_t corr)
{
    server_t *srv = c->srv;
    uint32_t n = group_count(srv), i = 0;
    Evstore__V1__GroupInfo *infos = calloc(n ? n : 1, sizeof *infos);
    Evstore__V1__GroupSettings *sets = calloc(n ? n : 1, sizeof *sets);
    Evstore__V1__EventFilter *fs = calloc(n ? n : 1, sizeof *fs);
    Evstore__V1__GroupInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!infos || !sets || !fs || !ptrs) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
    } else {
        for (group_t *g = srv->groups; g; g = g->next_group) {
            if (g->deleted)
                continue;
            info_of(srv, g, &infos[i], &sets[i], &fs[i]);
            ptrs[i] = &infos[i];
            i++;
        }
        Evstore__V1__GroupList list = EVSTORE__V1__GROUP_LIST__INIT;
        list.groups = ptrs;
        list.n_groups = i;
        send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_GROUP_LIST_OK, &list);
    }
    free(infos);
    free(sets);
    free(fs);
    free(ptrs);
}

void group_join(conn_t *c, uint64_t corr, const Evstore__V1__GroupJoin *m)
{
    server_t *srv = c->srv;
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    if (srv->sub_count >= srv->cfg.subscriptions_max) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "too many subscriptions", 0, 0);
        return;
    }
    consumer_t *k = calloc(1, sizeof *k);
    if (!k) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
        return;
    }
    k->g = g;
    k->conn = c;
    k->corr = corr;
    k->requested = m->max_inflight;
    k->max_inflight = m->max_inflight && m->max_inflight < g->max_inflight ? m->max_inflight
                                                                           : g->max_inflight;
    consumer_t **p = &g->consumers; /* at the end: pinned streams keep their consumer */
    while (*p)
        p = &(*p)->next;
    *p = k;
    g->consumer_count++;
    srv->sub_count++;
    Evstore__V1__GroupJoinOk ok = EVSTORE__V1__GROUP_JOIN_OK__INIT;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_GROUP_JOIN_OK, &ok);
}

void group_ack(conn_t *c, uint64_t corr, const Evstore__V1__GroupAck *m)
{
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    for (size_t i = 0; i < m->n_positions; i++) {
        msg_t *msg = msg_find(g, m->positions[i]);
        if (msg && (msg->state == MSG_INFLIGHT || msg->state == MSG_RETRY)) {
            msg_done(g, msg);
        }
    }
    answer_done(c, corr);
}

void group_nack(conn_t *c, uint64_t corr, const Evstore__V1__GroupNack *m)
{
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    for (size_t i = 0; i < m->n_positions; i++) {
        msg_t *msg = msg_find(g, m->positions[i]);
        if (!msg || msg->state != MSG_INFLIGHT)
            continue;
        if (m->action == EVSTORE__V1__NACK_ACTION__SKIP)
            msg_done(g, msg);
        else if (m->action == EVSTORE__V1__NACK_ACTION__PARK)
            park(c->srv, g, msg, m->reason);
        else
            msg_retry(c->srv, g, msg, m->reason);
    }
    answer_done(c, corr);
}

/* Queues the parked events after replay_from for delivery again. */
static int replay_visit(void *ctx, const log_event_t *ev)
{
    group_t *g = ctx;
    if (g->replay_count >= GROUP_REPLAYS_MAX)
        return 1; /* the rest on a later replay */
    json_error_t err;
    json_t *j = json_loadb(ev->data, ev->data_len, 0, &err);
    json_int_t position = -1, key = -1;
    if (j && json_unpack(j, "{s:I,s:I}", "position", &position, "key", &key) == 0 &&
        position >= 0 && key >= 0) {
        if (g->replay_count == g->replay_cap) {
            uint32_t cap = g->replay_cap ? g->replay_cap * 2 : 64;
            msg_t *fresh = realloc(g->replays, cap * sizeof *fresh);
            if (!fresh) {
                json_decref(j);
                return 1;
            }
            g->replays = fresh;
            g->replay_cap = cap;
        }
        g->replays[g->replay_count++] = (msg_t){.key = (uint64_t)key,
                                                .position = (uint64_t)position,
                                                .state = MSG_RETRY,
                                                .parked_version = (uint64_t)ev->version + 1};
    }
    json_decref(j);
    g->replay_from = (uint64_t)ev->version + 1; /* queued (or not a reference): done */
    return 0;
}

/* Queues the dead letters of g from replay_from up to (not including)
 * version `until` for delivery again. 0 or a read error. */
static int replay_range(server_t *srv, group_t *g, uint64_t until)
{
    char stream[GROUP_NAME_BYTES_MAX + 16];
    stream_name(stream, sizeof stream, PARKED_STREAM_PREFIX, g->name);
    for (;;) {
        uint64_t before = g->replay_from;
        if (before >= until || g->replay_count >= GROUP_REPLAYS_MAX)
            return 0;
        uint64_t n = until - before;
        log_read_t req = {.stream = stream, .stream_len = strlen(stream), .from = before,
                          .max_count = n < LOG_READ_SCAN_MAX_DEFAULT ? (uint32_t)n
                                                                     : LOG_READ_SCAN_MAX_DEFAULT};
        log_read_result_t res;
        int rc = log_read(srv->log, &req, replay_visit, g, &res);
        if (rc == LOG_ENOT_FOUND)
            return 0;
        if (rc)
            return rc;
        if (res.end || g->replay_from == before)
            return 0; /* the end, or the visitor could take no more */
    }
}

void group_replay_parked(conn_t *c, uint64_t corr, const Evstore__V1__GroupName *m)
{
    server_t *srv = c->srv;
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    int rc = replay_range(srv, g, UINT64_MAX);
    if (rc) {
        conn_send_error(c, corr, error_code_of(rc), log_strerror(rc), 0, 0);
        return;
    }
    group_save_checkpoint(srv, g);
    answer_done(c, corr);
}

bool group_leave(conn_t *c, uint64_t corr)
{
    for (group_t *g = c->srv->groups; g; g = g->next_group)
        for (consumer_t *k = g->consumers; k; k = k->next)
            if (k->conn == c && k->corr == corr) {
                consumer_free(g, k, "unsubscribed");
                return true;
            }
    return false;
}

void groups_conn_gone(conn_t *c)
{
    for (group_t *g = c->srv->groups; g; g = g->next_group)
        for (consumer_t *k = g->consumers, *n; k; k = n) {
            n = k->next;
            if (k->conn == c)
                consumer_free(g, k, NULL);
        }
}

/* ---- start and stop ---- */

typedef struct {
    Evstore__V1__GroupSettings *settings;
    bool deleted;
    bool have_checkpoint;
    uint64_t checkpoint[3]; /* key, replay_from, replay restart (format of group_save_checkpoint) */
} loaded_t;

static bool type_is(const log_event_t *ev, const char *type)
{
    size_t n = strlen(type);
    return ev->type_len == n && memcmp(ev->type, type, n) == 0;
}

/* Reading a group's stream backwards: the newest checkpoint (if newer than
 * the newest settings), then the newest settings, unless deleted first. */
static int load_visit(void *ctx, const log_event_t *ev)
{
    loaded_t *l = ctx;
    if (type_is(ev, "Checkpoint") && !l->have_checkpoint &&
        (ev->data_len == 16 || ev->data_len == 24)) {
        uint64_t cp[3] = {0};
        memcpy(cp, ev->data, ev->data_len);
        for (int i = 0; i < 3; i++)
            l->checkpoint[i] = le64toh(cp[i]);
        if (ev->data_len == 16)
            l->checkpoint[2] = l->checkpoint[1];
        l->have_checkpoint = true;
    } else if (type_is(ev, "GroupDeleted")) {
        l->deleted = true;
        return 1;
    } else if (type_is(ev, "GroupSettings")) {
        l->settings = evstore__v1__group_settings__unpack(NULL, ev->data_len, ev->data);
        return l->settings != NULL;
    }
    return 0;
}

/* Rebuilds one group from its stream: the newest settings and checkpoint. */
static int load_group(void *ctx, const char *name, size_t len, int64_t version)
{
    server_t *srv = ctx;
    size_t plen = strlen(GROUP_STREAM_PREFIX);
    if (len <= plen || memcmp(name, GROUP_STREAM_PREFIX, plen) != 0)
        return 0;
    loaded_t l = {0};
    log_read_t req = {.stream = name, .stream_len = len, .from = (uint64_t)version,
                      .backwards = true, .max_count = LOG_READ_SCAN_MAX_DEFAULT};
    int rc = 0;
    for (;;) { /* the settings are rewritten every GROUP_SETTINGS_EVERY checkpoints */
        log_read_result_t res;
        rc = log_read(srv->log, &req, load_visit, &l, &res);
        if (rc || l.settings || l.deleted || res.end)
            break;
        req.from = res.next;
    }
    if (rc == 0 && l.settings && !l.deleted) {
        group_t *g = group_new(l.settings, l.have_checkpoint ? l.checkpoint[0] : l.settings->from);
        if (g) {
            group_link(srv, g);
            if (l.have_checkpoint) {
                /* Replays not done at the stop are queued again. */
                g->replay_from = l.checkpoint[2];
                replay_range(srv, g, l.checkpoint[1]);
                g->replay_from = l.checkpoint[1];
            } else {
                g->replay_from = (uint64_t)parked_count(srv, g);
            }
            g->checkpoint_written = g->next;
        }
    } else if (rc) {
        server_log(srv, "group stream %.*s: %s", (int)len, name, log_strerror(rc));
    }
    if (l.settings)
        evstore__v1__group_settings__free_unpacked(l.settings, NULL);
    return 0;
}

void groups_load(server_t *srv)
{
    log_streams_each(srv->log, load_group, srv);
}

void groups_checkpoint_all(server_t *srv)
{
    for (group_t *g = srv->groups; g; g = g->next_group)
        if (!g->deleted && group_checkpoint(g) != g->checkpoint_written)
            group_save_checkpoint(srv, g);
}

void groups_free(server_t *srv)
{
    while (srv->groups) {
        group_t *g = srv->groups;
        srv->groups = g->next_group;
        while (g->consumers) {
            consumer_t *k = g->consumers;
            g->consumers = k->next;
            events_free(&k->batch);
            free(k->retries);
            free(k);
        }
        group_free(g);
    }
}

/* Escapes a group name for a Prometheus label value. */
static void label_escape(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; *src && n + 3 < cap; src++) {
        if (*src == '"' || *src == '\\')
            dst[n++] = '\\';
        dst[n++] = *src == '\n' ? ' ' : *src;
    }
    dst[n] = '\0';
}

size_t groups_metrics(server_t *srv, char *buf, size_t cap)
{
    static const char *const names[] = {"lag", "inflight", "parked", "consumers",
                                        "delivered_total", "acked_total", "redelivered_total"};
    size_t len = 0;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        int n = snprintf(buf + len, cap - len, "# TYPE evstore_group_%s %s\n", names[k],
                         k >= 4 ? "counter" : "gauge");
        len += n > 0 && (size_t)n < cap - len ? (size_t)n : 0;
        for (group_t *g = srv->groups; g; g = g->next_group) {
            if (g->deleted)
                continue;
            Evstore__V1__GroupInfo info;
            Evstore__V1__GroupSettings set;
            Evstore__V1__EventFilter f;
            info_of(srv, g, &info, &set, &f);
            uint64_t v[] = {info.lag, info.inflight, info.parked, info.consumers,
                            info.delivered, info.acked, info.redelivered};
            char label[2 * GROUP_NAME_BYTES_MAX + 4];
            label_escape(label, sizeof label, g->name);
            n = snprintf(buf + len, cap - len, "evstore_group_%s{group=\"%s\"} %llu\n", names[k],
                         label, (unsigned long long)v[k]);
            len += n > 0 && (size_t)n < cap - len ? (size_t)n : 0;
        }
    }
    return len;
}
