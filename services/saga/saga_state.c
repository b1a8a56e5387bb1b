/* saga_state.c -- the saga's state machine: fold, decide, time out. Pure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oms_domain.h"
#include "saga.h"

static const char *const phase_names[] = {
    [SAGA_NEW] = "new",           [SAGA_PAYING] = "paying",       [SAGA_RESERVING] = "reserving",
    [SAGA_SHIPPING] = "shipping", [SAGA_CANCELLING] = "cancelling", [SAGA_RELEASING] = "releasing",
    [SAGA_REFUNDING] = "refunding", [SAGA_COMPLETED] = "completed", [SAGA_FAILED] = "failed",
};

const char *oms_saga_phase_name(oms_saga_phase_t p)
{
    return p <= SAGA_FAILED ? phase_names[p] : "?";
}

void oms_saga_init(oms_saga_t *s, const char *order_id)
{
    memset(s, 0, sizeof *s);
    snprintf(s->order_id, sizeof s->order_id, "%s", order_id);
    s->version = EVS_VERSION_NONE;
}

void oms_saga_free(oms_saga_t *s)
{
    if (s->order)
        oms__v1__order_placed__free_unpacked(s->order, NULL);
    s->order = NULL;
}

bool oms_saga_final(const oms_saga_t *s)
{
    return s->phase == SAGA_COMPLETED || s->phase == SAGA_FAILED;
}

/* ---- fold ---- */

static void set_reason(oms_saga_t *s, const char *reason)
{
    if (reason != s->reason) /* a decision may carry the saga's own reason */
        snprintf(s->reason, sizeof s->reason, "%s", reason ? reason : "");
}

static void pending(oms_saga_t *s, oms_saga_phase_t phase, uint32_t attempt, int64_t ts_ns)
{
    s->phase = phase;
    s->attempt = attempt ? attempt : 1;
    s->requested_at_ns = ts_ns;
}

/* Keeps an owned copy of the order (the message may be borrowed). */
static int keep_order(oms_saga_t *s, const Oms__V1__OrderPlaced *order)
{
    if (!order)
        return -EINVAL;
    uint8_t *buf;
    size_t len;
    if (oms_pack(order, &buf, &len) != 0)
        return -ENOMEM;
    Oms__V1__OrderPlaced *copy = oms__v1__order_placed__unpack(NULL, len, buf);
    free(buf);
    if (!copy)
        return -ENOMEM;
    if (s->order)
        oms__v1__order_placed__free_unpacked(s->order, NULL);
    s->order = copy;
    return 0;
}

int oms_saga_apply_msg(oms_saga_t *s, const ProtobufCMessage *msg, int64_t ts_ns)
{
    s->version++;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    if (d == &oms__v1__saga_started__descriptor) {
        int rc = keep_order(s, ((const Oms__V1__SagaStarted *)msg)->order);
        s->broken |= rc != 0;
        return rc;
    }
    if (d == &oms__v1__payment_requested__descriptor)
        pending(s, SAGA_PAYING, ((const Oms__V1__PaymentRequested *)msg)->attempt, ts_ns);
    else if (d == &oms__v1__inventory_requested__descriptor)
        pending(s, SAGA_RESERVING, ((const Oms__V1__InventoryRequested *)msg)->attempt, ts_ns);
    else if (d == &oms__v1__shipment_requested__descriptor)
        pending(s, SAGA_SHIPPING, ((const Oms__V1__ShipmentRequested *)msg)->attempt, ts_ns);
    else if (d == &oms__v1__shipment_cancel_requested__descriptor) {
        const Oms__V1__ShipmentCancelRequested *m = (const void *)msg;
        pending(s, SAGA_CANCELLING, m->attempt, ts_ns);
        set_reason(s, m->reason);
    } else if (d == &oms__v1__release_requested__descriptor) {
        const Oms__V1__ReleaseRequested *m = (const void *)msg;
        pending(s, SAGA_RELEASING, m->attempt, ts_ns);
        set_reason(s, m->reason);
        s->released = true;
    } else if (d == &oms__v1__refund_requested__descriptor) {
        const Oms__V1__RefundRequested *m = (const void *)msg;
        pending(s, SAGA_REFUNDING, m->attempt, ts_ns);
        set_reason(s, m->reason);
    } else if (d == &oms__v1__saga_completed__descriptor)
        s->phase = SAGA_COMPLETED;
    else if (d == &oms__v1__saga_failed__descriptor) {
        s->phase = SAGA_FAILED;
        set_reason(s, ((const Oms__V1__SagaFailed *)msg)->reason);
    } else if (d != &oms__v1__saga_step_timed_out__descriptor) {
        s->broken = true;
        return -EINVAL;
    }
    return 0;
}

static ProtobufCMessage *unpack(const evs_recorded_event_t *ev)
{
    const ProtobufCMessageDescriptor *d = oms_domain_descriptor(ev->type);
    return d ? protobuf_c_message_unpack(d, NULL, ev->data_len, ev->data) : NULL;
}

int oms_saga_apply(oms_saga_t *s, const evs_recorded_event_t *ev)
{
    ProtobufCMessage *msg = unpack(ev);
    if (!msg) {
        s->version++;
        s->broken = true;
        return -EINVAL;
    }
    int rc = oms_saga_apply_msg(s, msg, ev->timestamp_ns);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

/* ---- decisions ---- */

/* Adds a zeroed message of descriptor d (initialised) to the decision. */
static void *out_add(oms_saga_decision_t *dec, bool to_order, const char *step,
                     const ProtobufCMessageDescriptor *d)
{
    if (dec->count == OMS_SAGA_OUT_MAX)
        return NULL;
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (!m)
        return NULL;
    protobuf_c_message_init(d, m);
    oms_saga_out_t *o = &dec->out[dec->count++];
    o->to_order = to_order;
    snprintf(o->step, sizeof o->step, "%s", step);
    o->msg = m;
    return m;
}

void oms_saga_decision_free(oms_saga_decision_t *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->out[i].msg);
    memset(d, 0, sizeof *d);
}

static char *order_id(const oms_saga_t *s)
{
    return (char *)s->order_id;
}

static int ask_payment(const oms_saga_t *s, const Oms__V1__OrderPlaced *o, oms_saga_decision_t *d)
{
    Oms__V1__PaymentRequested *m =
        out_add(d, false, "payment-1", &oms__v1__payment_requested__descriptor);
    if (!m)
        return -ENOMEM;
    m->order_id = order_id(s);
    m->customer_id = o->customer_id;
    m->amount_cents = o->total_cents;
    m->currency = o->currency;
    m->payment_token = o->payment_token;
    m->attempt = 1;
    return 0;
}

static int ask_inventory(const oms_saga_t *s, oms_saga_decision_t *d)
{
    Oms__V1__InventoryRequested *m =
        out_add(d, false, "inventory-1", &oms__v1__inventory_requested__descriptor);
    if (!m)
        return -ENOMEM;
    m->order_id = order_id(s);
    m->n_items = s->order->n_items;
    m->items = s->order->items;
    m->attempt = 1;
    return 0;
}

static int ask_shipment(const oms_saga_t *s, oms_saga_decision_t *d)
{
    Oms__V1__ShipmentRequested *m =
        out_add(d, false, "shipment-1", &oms__v1__shipment_requested__descriptor);
    if (!m)
        return -ENOMEM;
    m->order_id = order_id(s);
    m->customer_id = s->order->customer_id;
    m->n_items = s->order->n_items;
    m->items = s->order->items;
    m->shipping_address = s->order->shipping_address;
    m->attempt = 1;
    return 0;
}

static int ask_refund(const oms_saga_t *s, const char *reason, uint32_t attempt,
                      oms_saga_decision_t *d)
{
    char step[32];
    snprintf(step, sizeof step, "refund-%u", attempt);
    Oms__V1__RefundRequested *m = out_add(d, false, step, &oms__v1__refund_requested__descriptor);
    if (!m)
        return -ENOMEM;
    m->order_id = order_id(s);
    m->customer_id = s->order->customer_id;
    m->amount_cents = s->order->total_cents;
    m->reason = (char *)reason;
    m->attempt = attempt;
    d->compensation = attempt == 1 ? "refund" : NULL;
    return 0;
}

static int ask_release(const oms_saga_t *s, const char *reason, uint32_t attempt,
                       oms_saga_decision_t *d)
{
    char step[32];
    snprintf(step, sizeof step, "release-%u", attempt);
    Oms__V1__ReleaseRequested *m =
        out_add(d, false, step, &oms__v1__release_requested__descriptor);
    if (!m)
        return -ENOMEM;
    m->order_id = order_id(s);
    m->n_items = s->order->n_items;
    m->items = s->order->items;
    m->reason = (char *)reason;
    m->attempt = attempt;
    d->compensation = attempt == 1 ? "release" : NULL;
    return 0;
}

static int ask_cancel(const oms_saga_t *s, const char *reason, uint32_t attempt,
                      oms_saga_decision_t *d)
{
    char step[32];
    snprintf(step, sizeof step, "cancel-%u", attempt);
    Oms__V1__ShipmentCancelRequested *m =
        out_add(d, false, step, &oms__v1__shipment_cancel_requested__descriptor);
    if (!m)
        return -ENOMEM;
    m->order_id = order_id(s);
    m->reason = (char *)reason;
    m->attempt = attempt;
    d->compensation = attempt == 1 ? "cancel_shipment" : NULL;
    return 0;
}

static int complete(const oms_saga_t *s, const char *shipment_id, oms_saga_decision_t *d)
{
    Oms__V1__SagaCompleted *sc = out_add(d, false, "saga-verdict", &oms__v1__saga_completed__descriptor);
    Oms__V1__OrderCompleted *oc =
        out_add(d, true, "order-verdict", &oms__v1__order_completed__descriptor);
    if (!sc || !oc)
        return -ENOMEM;
    sc->order_id = order_id(s);
    oc->order_id = order_id(s);
    oc->customer_id = s->order->customer_id;
    oc->shipment_id = (char *)shipment_id;
    oc->completed_at_ns = oms_now_ns();
    d->outcome = "completed";
    return 0;
}

static int fail(const oms_saga_t *s, const char *reason, const char *detail, bool refunded,
                oms_saga_decision_t *d)
{
    Oms__V1__SagaFailed *sf = out_add(d, false, "saga-verdict", &oms__v1__saga_failed__descriptor);
    Oms__V1__OrderFailed *of = out_add(d, true, "order-verdict", &oms__v1__order_failed__descriptor);
    if (!sf || !of)
        return -ENOMEM;
    sf->order_id = order_id(s);
    sf->reason = (char *)reason;
    of->order_id = order_id(s);
    of->customer_id = s->order->customer_id;
    of->reason = (char *)reason;
    of->detail = (char *)(detail ? detail : "");
    of->refunded = refunded;
    of->released = s->released;
    of->failed_at_ns = oms_now_ns();
    d->outcome = "failed";
    return 0;
}

static int start(const oms_saga_t *s, const Oms__V1__OrderPlaced *o, oms_saga_decision_t *d)
{
    Oms__V1__SagaStarted *m = out_add(d, false, "started", &oms__v1__saga_started__descriptor);
    if (!m)
        return -ENOMEM;
    m->order = (Oms__V1__OrderPlaced *)o;
    return ask_payment(s, o, d);
}

/* The answer `msg` (of descriptor t) in the saga's current phase. */
static int answer(const oms_saga_t *s, const ProtobufCMessageDescriptor *t,
                  const ProtobufCMessage *msg, oms_saga_decision_t *d)
{
    oms_saga_phase_t p = s->phase;
    if (t == &oms__v1__payment_processed__descriptor && p == SAGA_PAYING)
        return ask_inventory(s, d);
    if (t == &oms__v1__payment_failed__descriptor && p == SAGA_PAYING)
        return fail(s, "payment_declined", ((const Oms__V1__PaymentFailed *)msg)->reason, false, d);
    if (t == &oms__v1__inventory_reserved__descriptor && p == SAGA_RESERVING)
        return ask_shipment(s, d);
    if (t == &oms__v1__inventory_reservation_failed__descriptor && p == SAGA_RESERVING)
        return ask_refund(s, "out_of_stock", 1, d);
    if (t == &oms__v1__order_shipped__descriptor && (p == SAGA_SHIPPING || p == SAGA_CANCELLING))
        return complete(s, ((const Oms__V1__OrderShipped *)msg)->shipment_id, d);
    if (t == &oms__v1__shipment_failed__descriptor && p == SAGA_SHIPPING)
        return ask_release(s, "shipping_failed", 1, d);
    if ((t == &oms__v1__shipment_failed__descriptor ||
         t == &oms__v1__shipment_cancelled__descriptor) && p == SAGA_CANCELLING)
        return ask_release(s, s->reason, 1, d);
    if (t == &oms__v1__inventory_released__descriptor && p == SAGA_RELEASING)
        return ask_refund(s, s->reason, 1, d);
    if (t == &oms__v1__payment_refunded__descriptor && p == SAGA_REFUNDING)
        return fail(s, s->reason, "", ((const Oms__V1__PaymentRefunded *)msg)->amount_cents > 0, d);
    return 0; /* a duplicate or a late answer: nothing to do */
}

int oms_saga_decide(const oms_saga_t *s, const evs_recorded_event_t *in,
                    oms_saga_decision_t *d, ProtobufCMessage **unpacked)
{
    memset(d, 0, sizeof *d);
    *unpacked = unpack(in);
    if (!*unpacked)
        return -EINVAL;
    const ProtobufCMessageDescriptor *t = (*unpacked)->descriptor;
    int rc = 0;
    if (t == &oms__v1__order_placed__descriptor) {
        if (s->phase == SAGA_NEW && !s->broken)
            rc = start(s, (const Oms__V1__OrderPlaced *)*unpacked, d);
    } else if (s->phase != SAGA_NEW && !oms_saga_final(s) && !s->broken && s->order) {
        rc = answer(s, t, *unpacked, d);
    }
    if (rc != 0)
        oms_saga_decision_free(d);
    return rc;
}

/* ---- timeouts ---- */

static int64_t phase_timeout_ms(const oms_saga_t *s, const oms_saga_timeouts_t *t)
{
    switch (s->phase) {
    case SAGA_PAYING: return t->payment_ms;
    case SAGA_RESERVING: return t->inventory_ms;
    case SAGA_SHIPPING: return t->shipping_ms;
    case SAGA_CANCELLING:
    case SAGA_RELEASING:
    case SAGA_REFUNDING: return t->compensation_ms;
    default: return -1;
    }
}

const char *oms_saga_answer_category(const oms_saga_t *s)
{
    switch (s->phase) {
    case SAGA_PAYING:
    case SAGA_REFUNDING: return "payment";
    case SAGA_RESERVING:
    case SAGA_RELEASING: return "inventory";
    case SAGA_SHIPPING:
    case SAGA_CANCELLING: return "shipment";
    default: return NULL;
    }
}

int64_t oms_saga_deadline(const oms_saga_t *s, const oms_saga_timeouts_t *t)
{
    int64_t ms = phase_timeout_ms(s, t);
    return ms < 0 || s->broken || !s->order ? INT64_MAX : s->requested_at_ns + ms * 1000000;
}

static const Oms__V1__Step phase_steps[] = {
    [SAGA_PAYING] = OMS__V1__STEP__STEP_PAYMENT,     [SAGA_RESERVING] = OMS__V1__STEP__STEP_INVENTORY,
    [SAGA_SHIPPING] = OMS__V1__STEP__STEP_SHIPPING,  [SAGA_CANCELLING] = OMS__V1__STEP__STEP_CANCEL_SHIPMENT,
    [SAGA_RELEASING] = OMS__V1__STEP__STEP_RELEASE,  [SAGA_REFUNDING] = OMS__V1__STEP__STEP_REFUND,
};

static const char *const phase_step_names[] = {
    [SAGA_PAYING] = "payment",          [SAGA_RESERVING] = "inventory",
    [SAGA_SHIPPING] = "shipping",       [SAGA_CANCELLING] = "cancel_shipment",
    [SAGA_RELEASING] = "release",       [SAGA_REFUNDING] = "refund",
};

int oms_saga_timeout(const oms_saga_t *s, const oms_saga_timeouts_t *t, int64_t now_ns,
                     oms_saga_decision_t *d)
{
    memset(d, 0, sizeof *d);
    if (oms_saga_final(s) || s->phase == SAGA_NEW || s->broken || !s->order ||
        now_ns < oms_saga_deadline(s, t))
        return 0;
    char step[48];
    snprintf(step, sizeof step, "timeout-%s-%u", phase_step_names[s->phase], s->attempt);
    Oms__V1__SagaStepTimedOut *m = out_add(d, false, step, &oms__v1__saga_step_timed_out__descriptor);
    if (!m)
        return -ENOMEM;
    m->order_id = order_id(s);
    m->step = phase_steps[s->phase];
    m->attempt = s->attempt;
    m->waited_ms = (now_ns - s->requested_at_ns) / 1000000;
    d->timed_out = phase_step_names[s->phase];
    int rc;
    switch (s->phase) {
    case SAGA_PAYING: rc = ask_refund(s, "payment_timeout", 1, d); break;
    case SAGA_RESERVING: rc = ask_release(s, "inventory_timeout", 1, d); break;
    case SAGA_SHIPPING: rc = ask_cancel(s, "shipping_timeout", 1, d); break;
    case SAGA_CANCELLING: rc = ask_cancel(s, s->reason, s->attempt + 1, d); break;
    case SAGA_RELEASING: rc = ask_release(s, s->reason, s->attempt + 1, d); break;
    default: rc = ask_refund(s, s->reason, s->attempt + 1, d); break;
    }
    if (rc != 0)
        oms_saga_decision_free(d);
    return rc;
}
