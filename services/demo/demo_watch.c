/* demo_watch.c -- the verdicts: one subscription to "$ce-order" (from its
 * end, OrderCompleted and OrderFailed only), read on its own thread, and an
 * order_id -> order table under one lock. A verdict may arrive before the
 * POST that placed its order has returned (the saga can be faster than the
 * answer's trip), so the table keeps verdicts of ids it does not know yet
 * and applies them when demo_watch_placed() names the id. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"
#include "evstore.h"
#include "oms.pb-c.h"

#define DEMO_WATCH_POLL_MS 100   /* evs_sub_next() and the waiter's wake-up */
#define DEMO_WATCH_TABLE_MIN 4096u

typedef struct {
    char id[DEMO_ORDER_ID_BYTES_MAX + 1]; /* "" : free slot */
    int64_t order;                        /* index into orders, -1 until placed */
    demo_verdict_t verdict;               /* a verdict that came before the order was placed */
    demo_reason_t reason;
    int64_t verdict_ns;
    uint32_t verdicts;
} demo_match_t;

struct demo_watch {
    evs_sub_t *sub;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    demo_order_t *orders;
    size_t n;
    demo_match_t *table; /* open addressing, cap a power of 2, at least 4 * n */
    size_t cap;
    size_t used;
    size_t resolved;     /* placed orders with a verdict */
    bool all_placed;
    size_t placed_total;
    bool stop;
    uint64_t foreign_dropped; /* unknown ids not kept (the table's share for them was full) */
    demo_watch_stats_t stats; /* error and other_reasons (foreign is counted at the end) */
};

static uint64_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *id != '\0'; id++)
        h = (h ^ (uint8_t)*id) * 1099511628211ull;
    return h;
}

/* The entry of id, or a new one when insert is true and there is room for
 * it; NULL otherwise. Unknown ids (verdicts before or without an order) may
 * use only half of the table, so every order of the run always finds room. */
static demo_match_t *match_find(demo_watch_t *w, const char *id, bool insert, bool placed)
{
    size_t mask = w->cap - 1;
    for (size_t i = id_hash(id) & mask, probes = 0; probes < w->cap; i = (i + 1) & mask, probes++) {
        demo_match_t *m = &w->table[i];
        if (m->id[0] == '\0') {
            if (!insert || (!placed && w->used >= w->cap / 2))
                return NULL;
            snprintf(m->id, sizeof m->id, "%s", id);
            m->order = -1;
            w->used++;
            return m;
        }
        if (strcmp(m->id, id) == 0)
            return m;
    }
    return NULL;
}

/* Records a verdict on its order (lock held). */
static void order_verdict(demo_watch_t *w, demo_order_t *o, demo_verdict_t v, demo_reason_t r,
                          int64_t at_ns, uint32_t count)
{
    o->verdicts += count;
    if (o->verdict != DEMO_V_NONE)
        return;
    o->verdict = v;
    o->reason = r;
    o->verdict_ns = at_ns;
    w->resolved++;
    pthread_cond_broadcast(&w->cond);
}

static void apply_verdict(demo_watch_t *w, const char *id, demo_verdict_t v, demo_reason_t r,
                          int64_t at_ns)
{
    if (id == NULL || id[0] == '\0' || strlen(id) > DEMO_ORDER_ID_BYTES_MAX)
        return;
    pthread_mutex_lock(&w->lock);
    demo_match_t *m = match_find(w, id, true, false);
    if (m == NULL) {
        w->foreign_dropped++;
    } else if (m->order >= 0) {
        order_verdict(w, &w->orders[m->order], v, r, at_ns, 1);
    } else {
        m->verdicts++;
        if (m->verdict == DEMO_V_NONE) {
            m->verdict = v;
            m->reason = r;
            m->verdict_ns = at_ns;
        }
    }
    pthread_mutex_unlock(&w->lock);
}

/* Keeps a reason text the demo does not know, for the report. */
static void note_other_reason(demo_watch_t *w, const char *reason)
{
    demo_watch_stats_t *st = &w->stats;
    pthread_mutex_lock(&w->lock);
    bool known = false;
    for (size_t i = 0; i < st->other_reason_count; i++)
        known = known || strncmp(st->other_reasons[i], reason, DEMO_REASON_BYTES_MAX - 1) == 0;
    if (!known && st->other_reason_count < DEMO_OTHER_REASONS_MAX)
        snprintf(st->other_reasons[st->other_reason_count++], DEMO_REASON_BYTES_MAX, "%s", reason);
    pthread_mutex_unlock(&w->lock);
}

/* Decodes one verdict event and applies it. */
static void watch_event(demo_watch_t *w, const evs_recorded_event_t *ev)
{
    int64_t at_ns = (int64_t)util_mono_ns();
    if (strcmp(ev->type, "OrderCompleted") == 0) {
        Oms__V1__OrderCompleted *m = oms__v1__order_completed__unpack(NULL, ev->data_len, ev->data);
        if (m != NULL)
            apply_verdict(w, m->order_id, DEMO_V_COMPLETED, DEMO_R_OTHER, at_ns);
        oms__v1__order_completed__free_unpacked(m, NULL);
    } else if (strcmp(ev->type, "OrderFailed") == 0) {
        Oms__V1__OrderFailed *m = oms__v1__order_failed__unpack(NULL, ev->data_len, ev->data);
        demo_reason_t r = m != NULL ? demo_reason_parse(m->reason) : DEMO_R_OTHER;
        if (m != NULL && r == DEMO_R_OTHER)
            note_other_reason(w, m->reason);
        if (m != NULL)
            apply_verdict(w, m->order_id, DEMO_V_FAILED, r, at_ns);
        oms__v1__order_failed__free_unpacked(m, NULL);
    }
}

static bool should_stop(demo_watch_t *w)
{
    pthread_mutex_lock(&w->lock);
    bool stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

static void *watch_thread(void *arg)
{
    demo_watch_t *w = arg;
    while (!should_stop(w)) {
        evs_sub_item_t item;
        int rc = evs_sub_next(w->sub, DEMO_WATCH_POLL_MS, &item);
        if (rc == EVS_ETIMEDOUT)
            continue;
        if (rc < 0) {
            fprintf(stderr, "oms-demo: the subscription to $ce-order ended: %s\n",
                    evs_strerror(rc));
            pthread_mutex_lock(&w->lock);
            w->stats.error = rc;
            pthread_cond_broadcast(&w->cond);
            pthread_mutex_unlock(&w->lock);
            break;
        }
        if (item.kind == EVS_SUB_EVENT)
            watch_event(w, &item.event);
    }
    return NULL;
}

static int watch_init(demo_watch_t *w, demo_order_t *orders, size_t n)
{
    w->orders = orders;
    w->n = n;
    w->cap = DEMO_WATCH_TABLE_MIN;
    while (w->cap < 4 * n)
        w->cap *= 2;
    w->table = calloc(w->cap, sizeof *w->table);
    if (w->table == NULL)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->lock, NULL);
    return 0;
}

int demo_watch_start(const demo_config_t *cfg, demo_order_t *orders, size_t n,
                     demo_watch_t **out)
{
    demo_watch_t *w = calloc(1, sizeof *w);
    if (w == NULL || watch_init(w, orders, n) != 0) {
        free(w);
        return -ENOMEM;
    }
    evs_options_t opts;
    evs_options_default(&opts);
    opts.host = cfg->store_host;
    opts.port = cfg->store_port;
    opts.client_name = "oms-demo";
    static const char *const types[] = {"OrderCompleted", "OrderFailed"};
    evs_subscribe_t req = {.stream = "$ce-order", .from_end = true, .types = types,
                           .type_count = 2};
    int rc = evs_subscribe(&opts, &req, &w->sub);
    if (rc != 0) {
        fprintf(stderr, "oms-demo: cannot subscribe to $ce-order on %s:%u: %s (%s)\n",
                cfg->store_host, cfg->store_port, evs_strerror(rc), evs_errmsg());
        goto err_free;
    }
    rc = -pthread_create(&w->thread, NULL, watch_thread, w);
    if (rc != 0) {
        fprintf(stderr, "oms-demo: cannot start the watcher: %s\n", strerror(-rc));
        goto err_close_sub;
    }
    w->thread_started = true;
    *out = w;
    return 0;

err_close_sub:
    evs_sub_close(w->sub);
err_free:
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w->table);
    free(w);
    return rc;
}

void demo_watch_placed(demo_watch_t *w, size_t i)
{
    demo_order_t *o = &w->orders[i];
    pthread_mutex_lock(&w->lock);
    demo_match_t *m = match_find(w, o->order_id, true, true);
    if (m != NULL && m->order < 0) {
        m->order = (int64_t)i;
        if (m->verdicts > 0)
            order_verdict(w, o, m->verdict, m->reason, m->verdict_ns, m->verdicts);
    } else if (m != NULL) {
        /* The API gave one id to two of our orders: the second shares the first's verdict
         * count, so the report sees it as a duplicate. */
        o->verdicts = 2;
    }
    pthread_mutex_unlock(&w->lock);
}

void demo_watch_all_placed(demo_watch_t *w, size_t placed)
{
    pthread_mutex_lock(&w->lock);
    w->all_placed = true;
    w->placed_total = placed;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

bool demo_watch_wait(demo_watch_t *w, int64_t deadline_ns, volatile int *stop)
{
    pthread_mutex_lock(&w->lock);
    for (;;) {
        if (w->all_placed && w->resolved >= w->placed_total)
            break;
        int64_t now = (int64_t)util_mono_ns();
        if (now >= deadline_ns || w->stats.error != 0 || (stop != NULL && *stop))
            break;
        int64_t wake = now + (int64_t)DEMO_WATCH_POLL_MS * 1000000;
        if (wake > deadline_ns)
            wake = deadline_ns;
        struct timespec ts = {.tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000};
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
    }
    bool all = w->all_placed && w->resolved >= w->placed_total;
    pthread_mutex_unlock(&w->lock);
    return all;
}

void demo_watch_stop(demo_watch_t *w, demo_watch_stats_t *stats)
{
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_mutex_unlock(&w->lock);
    if (w->thread_started)
        pthread_join(w->thread, NULL);
    *stats = w->stats;
    stats->foreign = w->foreign_dropped;
    for (size_t i = 0; i < w->cap; i++) {
        if (w->table[i].id[0] != '\0' && w->table[i].order < 0)
            stats->foreign += w->table[i].verdicts;
    }
    evs_sub_close(w->sub);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w->table);
    free(w);
}
