/* saga_main.c -- oms-saga: the fulfilment orchestrator on the runtime.
 *
 * Its group reads "$all" filtered to OrderPlaced and the services' answers.
 * Each worker keeps the sagas in flight of the orders it owns (the runtime
 * sends all events of one order to one worker), loads a saga from its
 * stream when it is not in memory, appends each decision with the saga
 * stream's exact version (so two deciders can never both write), and
 * scans its sagas' deadlines on every tick. At start it resumes every saga
 * in flight: it reads "$ce-saga", and hands each unfinished saga to its
 * worker, which loads it (and so tracks its timeout again). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saga.h"
#include "saga_map.h"

#define SAGA_WORKERS_DEFAULT 64u        /* measured: 1579-1683 orders/s against 1442-1455
                                           with the runtime's 32 (bench/oms_bench.sh) */
#define SAGA_INFLIGHT_MAX_DEFAULT 1024u

typedef struct {
    oms_saga_timeouts_t timeouts;
    oms_gauge_t *inflight;
    oms_counter_t *started;
} saga_svc_t;

typedef struct {
    saga_svc_t *svc;
    saga_map_t map;
} saga_worker_t;

static const char *const saga_inputs[] = {
    "OrderPlaced",       "PaymentProcessed",           "PaymentFailed",     "PaymentRefunded",
    "InventoryReserved", "InventoryReservationFailed", "InventoryReleased", "OrderShipped",
    "ShipmentFailed",    "ShipmentCancelled",
};

/* ---- metrics ---- */

/* Creates every saga series at 0, so dashboards show 0 rather than "no
 * data" before the first timeout, compensation or failure. */
static void saga_metrics_declare(oms_metrics_t *m)
{
    static const char *const steps[] = {"payment", "inventory", "shipping",
                                        "cancel_shipment", "release", "refund"};
    static const char *const kinds[] = {"refund", "release", "cancel_shipment"};
    static const char *const reasons[] = {"payment_declined", "out_of_stock", "shipping_failed",
                                          "payment_timeout", "inventory_timeout",
                                          "shipping_timeout"};
    char labels[128];
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        snprintf(labels, sizeof labels, "step=\"%s\"", steps[i]);
        oms_metrics_counter(m, "oms_saga_timeouts_total", "Saga steps that timed out", labels);
    }
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        snprintf(labels, sizeof labels, "kind=\"%s\"", kinds[i]);
        oms_metrics_counter(m, "oms_saga_compensations_total", "Compensations started", labels);
    }
    oms_metrics_counter(m, "oms_saga_outcomes_total", "Sagas ended, by outcome and reason",
                        "outcome=\"completed\",reason=\"\"");
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++) {
        snprintf(labels, sizeof labels, "outcome=\"failed\",reason=\"%s\"", reasons[i]);
        oms_metrics_counter(m, "oms_saga_outcomes_total", "Sagas ended, by outcome and reason",
                            labels);
    }
    oms_metrics_histogram(m, "oms_order_latency_seconds", "Order placed to completed or failed",
                          "outcome=\"completed\"");
    oms_metrics_histogram(m, "oms_order_latency_seconds", "Order placed to completed or failed",
                          "outcome=\"failed\"");
}

static void count(oms_worker_t *w, const char *name, const char *help, const char *label,
                  const char *value)
{
    char labels[128];
    snprintf(labels, sizeof labels, "%s=\"%s\"", label, value);
    oms_counter_add(oms_metrics_counter(oms_worker_metrics(w), name, help, labels), 1);
}

static void count_decision(oms_worker_t *w, const oms_saga_t *s, const oms_saga_decision_t *d)
{
    if (d->timed_out)
        count(w, "oms_saga_timeouts_total", "Saga steps that timed out", "step", d->timed_out);
    if (d->compensation)
        count(w, "oms_saga_compensations_total", "Compensations started", "kind", d->compensation);
    if (!d->outcome)
        return;
    char labels[128];
    snprintf(labels, sizeof labels, "outcome=\"%s\",reason=\"%s\"", d->outcome,
             strcmp(d->outcome, "failed") == 0 ? s->reason : "");
    oms_counter_add(oms_metrics_counter(oms_worker_metrics(w), "oms_saga_outcomes_total",
                                        "Sagas ended, by outcome and reason", labels),
                    1);
    snprintf(labels, sizeof labels, "outcome=\"%s\"", d->outcome);
    if (s->order && s->order->placed_at_ns > 0)
        oms_histogram_observe(
            oms_metrics_histogram(oms_worker_metrics(w), "oms_order_latency_seconds",
                                  "Order placed to completed or failed", labels),
            (double)(oms_now_ns() - s->order->placed_at_ns) / 1e9);
}

/* ---- loading ---- */

static int fold_event(void *ctx, const evs_recorded_event_t *ev)
{
    oms_saga_apply(ctx, ev); /* an event that does not decode only moves the version */
    return 0;
}

/* Rebuilds s from saga-<id>. */
static int saga_load(oms_store_t *store, oms_saga_t *s)
{
    char stream[OMS_NAME_BYTES_MAX + 8];
    snprintf(stream, sizeof stream, "saga-%s", s->order_id);
    char id[OMS_NAME_BYTES_MAX];
    snprintf(id, sizeof id, "%s", s->order_id);
    oms_saga_free(s);
    oms_saga_init(s, id);
    return oms_read_stream(store, stream, 0, fold_event, s, NULL);
}

/* The in-memory saga of order_id, loaded from its stream when missing
 * (unless assume_new: an OrderPlaced, whose saga is almost always new; if
 * it is not, the first append's version conflict reloads it). NULL with
 * *rc set on a store error. */
static saga_entry_t *saga_get(oms_worker_t *w, saga_worker_t *sw, const char *order_id,
                              bool assume_new, bool *fresh, int *rc)
{
    *rc = 0;
    *fresh = false;
    saga_entry_t *e = saga_map_get(&sw->map, order_id);
    if (e)
        return e;
    *fresh = true;
    e = saga_map_add(&sw->map, order_id);
    if (!e) {
        *rc = -ENOMEM;
        return NULL;
    }
    oms_gauge_add(sw->svc->inflight, 1);
    if (assume_new)
        return e;
    *rc = saga_load(oms_worker_store(w), &e->saga);
    if (*rc != 0) {
        saga_map_remove(&sw->map, order_id);
        oms_gauge_add(sw->svc->inflight, -1);
        return NULL;
    }
    return e;
}

static void saga_drop(saga_worker_t *sw, const char *order_id)
{
    if (saga_map_get(&sw->map, order_id)) {
        saga_map_remove(&sw->map, order_id);
        oms_gauge_add(sw->svc->inflight, -1);
    }
}

/* ---- executing a decision ---- */

/* Appends the decision: its saga events at the saga's exact version (or
 * no_stream), its order event in the same batch. */
static int decision_append(oms_worker_t *w, const oms_saga_t *s, const oms_saga_decision_t *d,
                           bool *idempotent)
{
    evs_event_t saga_evs[OMS_SAGA_OUT_MAX], order_evs[OMS_SAGA_OUT_MAX];
    size_t n_saga = 0, n_order = 0;
    int rc = 0;
    for (size_t i = 0; i < d->count && rc == 0; i++) {
        evs_event_t *ev = d->out[i].to_order ? &order_evs[n_order++] : &saga_evs[n_saga++];
        rc = oms_event_make(ev, d->out[i].msg, s->order_id, d->out[i].step);
        if (rc != 0)
            (d->out[i].to_order ? n_order-- : n_saga--);
    }
    char saga_stream[OMS_NAME_BYTES_MAX + 8], order_stream[OMS_NAME_BYTES_MAX + 8];
    snprintf(saga_stream, sizeof saga_stream, "saga-%s", s->order_id);
    snprintf(order_stream, sizeof order_stream, "order-%s", s->order_id);
    evs_stream_append_t streams[2] = {
        {.stream = saga_stream,
         .expected_version = s->version == EVS_VERSION_NONE ? EVS_EXPECT_NO_STREAM : s->version,
         .events = saga_evs, .event_count = n_saga},
        {.stream = order_stream, .expected_version = EVS_EXPECT_ANY, .events = order_evs,
         .event_count = n_order},
    };
    evs_append_result_t res;
    if (rc == 0)
        rc = oms_append(oms_worker_store(w), streams, n_order ? 2 : 1, &res);
    *idempotent = rc == 0 && res.idempotent;
    for (size_t i = 0; i < n_saga; i++)
        oms_event_free_data(&saga_evs[i]);
    for (size_t i = 0; i < n_order; i++)
        oms_event_free_data(&order_evs[i]);
    return rc;
}

/* Appends d and moves the saga on; a final saga leaves the map. */
static int decision_run(oms_worker_t *w, saga_worker_t *sw, saga_entry_t *e,
                        const oms_saga_decision_t *d)
{
    bool idempotent;
    int rc = decision_append(w, &e->saga, d, &idempotent);
    if (rc != 0)
        return rc;
    if (idempotent) {
        /* Written before: by our own attempt whose answer was lost, or this
         * is a duplicate of an old event and the saga may be further on.
         * Reload it (keeping its deadline tracked unless it is final). */
        rc = saga_load(oms_worker_store(w), &e->saga);
        if (rc != 0 || oms_saga_final(&e->saga))
            saga_drop(sw, e->saga.order_id);
        return rc;
    }
    int64_t now = oms_now_ns();
    for (size_t i = 0; i < d->count; i++)
        if (!d->out[i].to_order)
            oms_saga_apply_msg(&e->saga, d->out[i].msg, now);
    if (e->saga.version == 1 && d->count && !d->out[0].to_order &&
        d->out[0].msg->descriptor == &oms__v1__saga_started__descriptor)
        oms_counter_add(sw->svc->started, 1);
    count_decision(w, &e->saga, d);
    if (oms_saga_final(&e->saga))
        saga_drop(sw, e->saga.order_id);
    return 0;
}

/* ---- the handler ---- */

static oms_result_t saga_handle(oms_worker_t *w, void *state, const evs_recorded_event_t *ev,
                                uint32_t retry_count)
{
    (void)retry_count;
    saga_worker_t *sw = state;
    const char *order_id = oms_stream_key(ev->stream);
    if (!*order_id || strlen(order_id) >= OMS_NAME_BYTES_MAX) {
        oms_worker_reason(w, "stream %s names no order", ev->stream);
        return OMS_PARK;
    }
    bool placed = strcmp(ev->type, "OrderPlaced") == 0;
    for (int round = 0; round < 3; round++) {
        int rc;
        bool fresh;
        saga_entry_t *e = saga_get(w, sw, order_id, placed && round == 0, &fresh, &rc);
        if (!e) {
            oms_worker_reason(w, "loading saga-%s: %s", order_id, evs_strerror(rc));
            return OMS_RETRY;
        }
        if (oms_saga_final(&e->saga)) {
            saga_drop(sw, order_id); /* a late answer or a duplicate */
            return OMS_OK;
        }
        if (e->saga.broken) {
            saga_drop(sw, order_id);
            oms_worker_reason(w, "saga-%s has an event that does not decode: left alone",
                              order_id);
            return OMS_PARK;
        }
        oms_saga_decision_t d;
        ProtobufCMessage *in = NULL;
        rc = oms_saga_decide(&e->saga, ev, &d, &in);
        if (rc == -EINVAL) {
            oms_worker_reason(w, "%s payload does not decode", ev->type);
            return OMS_PARK;
        }
        if (rc == 0 && d.count == 0 && !fresh && !placed) {
            /* It does not fit the state in memory: make sure that state is
             * not stale (another instance moved the saga on) before calling
             * it late. */
            oms_saga_decision_free(&d);
            protobuf_c_message_free_unpacked(in, NULL);
            saga_drop(sw, order_id);
            continue;
        }
        if (rc == 0 && d.count == 0 && e->saga.phase == SAGA_NEW)
            saga_drop(sw, order_id); /* an answer for an order with no saga */
        if (rc == 0 && d.count)
            rc = decision_run(w, sw, e, &d);
        oms_saga_decision_free(&d);
        if (in)
            protobuf_c_message_free_unpacked(in, NULL);
        if (rc == 0)
            return OMS_OK;
        /* Stale state (EWRONG_VERSION): reload once and decide again. */
        saga_drop(sw, order_id);
        if (rc != EVS_EWRONG_VERSION) {
            oms_worker_reason(w, "saga-%s: %s", order_id, evs_strerror(rc));
            return OMS_RETRY;
        }
    }
    oms_worker_reason(w, "saga-%s: version conflicts on every try", order_id);
    return OMS_RETRY;
}

/* ---- timeouts ---- */

typedef struct {
    int64_t now;
    const oms_saga_timeouts_t *t;
    char (*due)[OMS_NAME_BYTES_MAX];
    size_t count, cap;
} due_t;

static void collect_due(saga_entry_t *e, void *ctx)
{
    due_t *due = ctx;
    if (due->count < due->cap && oms_saga_deadline(&e->saga, due->t) <= due->now)
        snprintf(due->due[due->count++], OMS_NAME_BYTES_MAX, "%s", e->saga.order_id);
}

#define SAGA_TIMEOUTS_PER_TICK 256u /* the rest wait for the next tick */

/* Reloads a saga whose append failed or conflicted (the append may have
 * been written); a saga that cannot be loaded now keeps its state and is
 * tried again on the next tick (the same decision then has the same ids,
 * so a written one is recognised). */
static void saga_reload(oms_worker_t *w, saga_worker_t *sw, saga_entry_t *e)
{
    oms_saga_t fresh;
    oms_saga_init(&fresh, e->saga.order_id);
    if (saga_load(oms_worker_store(w), &fresh) != 0) {
        oms_saga_free(&fresh);
        return;
    }
    oms_saga_free(&e->saga);
    e->saga = fresh;
    if (oms_saga_final(&e->saga) || e->saga.broken)
        saga_drop(sw, fresh.order_id);
}

typedef struct {
    oms_worker_t *w;
    saga_worker_t *sw;
    saga_entry_t *e;
    bool acted;
    int rc;
} answer_scan_t;

/* Decides on one event of the pending step's answer stream; stops at the
 * first that moves the saga on. */
static int answer_scan_event(void *ctx, const evs_recorded_event_t *ev)
{
    answer_scan_t *a = ctx;
    oms_saga_decision_t d;
    ProtobufCMessage *in = NULL;
    if (oms_saga_decide(&a->e->saga, ev, &d, &in) == 0 && d.count) {
        a->acted = true;
        a->rc = decision_run(a->w, a->sw, a->e, &d);
    }
    oms_saga_decision_free(&d);
    if (in)
        protobuf_c_message_free_unpacked(in, NULL);
    return a->acted ? 1 : 0;
}

/* A saga past its deadline: if the answer it waits for is in the store
 * (the saga missed it: parked, or handled against a stale state, or not
 * delivered yet after a restart), act on it; otherwise time the step out. */
static void saga_expire(oms_worker_t *w, saga_worker_t *sw, saga_entry_t *e, int64_t now)
{
    char order_id[OMS_NAME_BYTES_MAX], stream[OMS_NAME_BYTES_MAX + 16];
    snprintf(order_id, sizeof order_id, "%s", e->saga.order_id);
    const char *category = oms_saga_answer_category(&e->saga);
    int rc = 0;
    if (category) {
        snprintf(stream, sizeof stream, "%s-%s", category, order_id);
        answer_scan_t a = {w, sw, e, false, 0};
        rc = oms_read_stream(oms_worker_store(w), stream, 0, answer_scan_event, &a, NULL);
        if (a.acted) {
            if (a.rc != 0 && (e = saga_map_get(&sw->map, order_id)))
                saga_reload(w, sw, e);
            return;
        }
    }
    if (rc < 0) {
        fprintf(stderr, "oms-saga: saga-%s: reading %s: %s\n", order_id, stream, evs_strerror(rc));
        return; /* the next tick tries again */
    }
    oms_saga_decision_t d;
    if (oms_saga_timeout(&e->saga, &sw->svc->timeouts, now, &d) != 0 || d.count == 0)
        return;
    rc = decision_run(w, sw, e, &d);
    oms_saga_decision_free(&d);
    if (rc != 0 && (e = saga_map_get(&sw->map, order_id))) {
        fprintf(stderr, "oms-saga: timeout of saga-%s: %s\n", order_id, evs_strerror(rc));
        saga_reload(w, sw, e);
    }
}

static void saga_tick(oms_worker_t *w, void *state, int64_t now_mono_ns)
{
    (void)now_mono_ns;
    saga_worker_t *sw = state;
    static __thread char due_ids[SAGA_TIMEOUTS_PER_TICK][OMS_NAME_BYTES_MAX];
    due_t due = {.now = oms_now_ns(), .t = &sw->svc->timeouts, .due = due_ids,
                 .cap = SAGA_TIMEOUTS_PER_TICK};
    saga_map_each(&sw->map, collect_due, &due);
    for (size_t i = 0; i < due.count; i++) {
        saga_entry_t *e = saga_map_get(&sw->map, due_ids[i]);
        if (e)
            saga_expire(w, sw, e, due.now);
    }
}

/* ---- workers and resume ---- */

static void *saga_worker_init(oms_worker_t *w, void *svc_ctx)
{
    (void)w;
    saga_worker_t *sw = calloc(1, sizeof *sw);
    if (sw)
        sw->svc = svc_ctx;
    return sw;
}

static void saga_worker_free(void *state)
{
    saga_worker_t *sw = state;
    if (!sw)
        return;
    oms_gauge_add(sw->svc->inflight, -(int64_t)sw->map.count);
    saga_map_clear(&sw->map);
    free(sw);
}

/* Posted to the owner of an unfinished saga at start: load it. */
static void resume_one(oms_worker_t *w, void *state, void *arg)
{
    char *order_id = arg;
    int rc;
    bool fresh;
    saga_entry_t *e = saga_get(w, state, order_id, false, &fresh, &rc);
    if (!e)
        fprintf(stderr, "oms-saga: resuming saga-%s: %s\n", order_id, evs_strerror(rc));
    else if (e->saga.broken) {
        fprintf(stderr, "oms-saga: saga-%s has an event that does not decode: left alone\n",
                order_id);
        saga_drop(state, order_id);
    }
    free(order_id);
}

typedef struct {
    saga_map_t *open; /* the unfinished sagas seen so far (entries used as a set) */
} resume_scan_t;

static int resume_scan_event(void *ctx, const evs_recorded_event_t *ev)
{
    resume_scan_t *r = ctx;
    const char *order_id = oms_stream_key(ev->stream);
    if (strlen(order_id) >= OMS_NAME_BYTES_MAX)
        return 0;
    if (strcmp(ev->type, "SagaStarted") == 0 && !saga_map_get(r->open, order_id))
        return saga_map_add(r->open, order_id) ? 0 : -ENOMEM;
    if (strcmp(ev->type, "SagaCompleted") == 0 || strcmp(ev->type, "SagaFailed") == 0)
        saga_map_remove(r->open, order_id);
    return 0;
}

typedef struct {
    oms_service_t *svc;
    size_t posted;
} resume_post_t;

static void resume_post(saga_entry_t *e, void *ctx)
{
    resume_post_t *p = ctx;
    char *id = strdup(e->saga.order_id);
    if (id && oms_service_post(p->svc, id, resume_one, id) == 0)
        p->posted++;
    else
        free(id);
}

static int saga_start(oms_service_t *svc, void *svc_ctx)
{
    saga_svc_t *ss = svc_ctx;
    ss->inflight = oms_metrics_gauge(oms_service_metrics(svc), "oms_sagas_inflight",
                                     "Sagas started and not yet ended, held in memory", NULL);
    ss->started = oms_metrics_counter(oms_service_metrics(svc), "oms_saga_started_total",
                                      "Sagas started", NULL);
    saga_metrics_declare(oms_service_metrics(svc));
    saga_map_t *open = calloc(1, sizeof *open);
    if (!open)
        return 1;
    resume_scan_t scan = {open};
    int rc = oms_read_stream(oms_service_store(svc), "$ce-saga", 0, resume_scan_event, &scan, NULL);
    resume_post_t post = {svc, 0};
    if (rc == 0)
        saga_map_each(open, resume_post, &post);
    saga_map_clear(open);
    free(open);
    if (rc != 0) {
        fprintf(stderr, "oms-saga: reading $ce-saga to resume: %s\n", evs_strerror(rc));
        return 1;
    }
    fprintf(stderr, "oms-saga: resumed %zu sagas in flight\n", post.posted);
    return 0;
}

/* ---- main ---- */

static int timeout_opt(const char *name, const char *text, int64_t *out)
{
    uint32_t v;
    if (oms_parse_u32(name, text, 1, 3600000, &v) != 0)
        return -EINVAL;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    char step_default[16], comp_default[16];
    snprintf(step_default, sizeof step_default, "%d", OMS_SAGA_STEP_TIMEOUT_MS_DEFAULT);
    snprintf(comp_default, sizeof comp_default, "%d", OMS_SAGA_COMPENSATION_TIMEOUT_MS_DEFAULT);
    const char *pay = step_default, *inv = step_default, *ship = step_default,
               *comp = comp_default;
    const oms_opt_t opts[] = {
        {"payment-timeout-ms", "OMS_PAYMENT_TIMEOUT_MS", "payment step timeout", &pay, false},
        {"inventory-timeout-ms", "OMS_INVENTORY_TIMEOUT_MS", "inventory step timeout", &inv, false},
        {"shipping-timeout-ms", "OMS_SHIPPING_TIMEOUT_MS", "shipping step timeout", &ship, false},
        {"compensation-timeout-ms", "OMS_COMPENSATION_TIMEOUT_MS",
         "a refund, release or cancel not answered in this time is requested again", &comp, false},
    };
    oms_config_t cfg;
    if (oms_config_parse(&cfg, "saga", OMS_METRICS_PORT_SAGA, argc, argv, opts,
                         sizeof opts / sizeof *opts) != 0)
        return 2;
    /* The saga handles four events per order (the other services one), each
     * waiting on a durable append: it wants more of them in flight. */
    if (!oms_config_given(argc, argv, "workers", "OMS_WORKERS"))
        cfg.workers = SAGA_WORKERS_DEFAULT;
    if (!oms_config_given(argc, argv, "max-inflight", "OMS_MAX_INFLIGHT"))
        cfg.inflight_max = SAGA_INFLIGHT_MAX_DEFAULT;
    saga_svc_t svc = {0};
    if (timeout_opt("payment-timeout-ms", pay, &svc.timeouts.payment_ms) ||
        timeout_opt("inventory-timeout-ms", inv, &svc.timeouts.inventory_ms) ||
        timeout_opt("shipping-timeout-ms", ship, &svc.timeouts.shipping_ms) ||
        timeout_opt("compensation-timeout-ms", comp, &svc.timeouts.compensation_ms))
        return 2;
    const oms_subscription_t sub = {
        .group = "oms-saga",
        .source = "$all",
        .types = saga_inputs,
        .type_count = sizeof saga_inputs / sizeof *saga_inputs,
    };
    const oms_handler_t handler = {
        .worker_init = saga_worker_init,
        .worker_free = saga_worker_free,
        .handle = saga_handle,
        .tick = saga_tick,
        .start = saga_start,
    };
    return oms_service_run(&cfg, &sub, &handler, &svc);
}
