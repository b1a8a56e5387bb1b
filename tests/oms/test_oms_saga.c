/* test_oms_saga.c -- the saga's state machine as pure functions: given
 * these events, expect these commands and this state, for every path and
 * every timeout. Decisions are fed back through oms_saga_apply() as packed
 * events, as the saga stream would replay them. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "saga.h"

#define MS 1000000LL

static const oms_saga_timeouts_t timeouts = {
    .payment_ms = 1000, .inventory_ms = 2000, .shipping_ms = 3000, .compensation_ms = 4000};

static Oms__V1__OrderItem item_a = OMS__V1__ORDER_ITEM__INIT;
static Oms__V1__OrderItem *items[1] = {&item_a};
static Oms__V1__Address address = OMS__V1__ADDRESS__INIT;

/* An event as the store would deliver it: msg packed, at time ts. */
typedef struct {
    evs_recorded_event_t ev;
    uint8_t *data;
} event_t;

static event_t event_of(const void *msg, const char *stream, int64_t ts)
{
    event_t e = {0};
    size_t len;
    ck_assert_int_eq(oms_pack(msg, &e.data, &len), 0);
    e.ev.type = ((const ProtobufCMessage *)msg)->descriptor->short_name;
    e.ev.stream = stream;
    e.ev.data = e.data;
    e.ev.data_len = len;
    e.ev.timestamp_ns = ts;
    return e;
}

/* Decides on msg; returns the decision (caller frees). */
static oms_saga_decision_t decide(oms_saga_t *s, const void *msg)
{
    event_t e = event_of(msg, "x-o1", 0);
    oms_saga_decision_t d;
    ProtobufCMessage *in = NULL;
    ck_assert_int_eq(oms_saga_decide(s, &e.ev, &d, &in), 0);
    /* The decision may point into `in`: pack what we keep before freeing. */
    free(e.data);
    static ProtobufCMessage *keep[64];
    static size_t kept;
    if (kept == 64) {
        for (size_t i = 0; i < kept; i++)
            protobuf_c_message_free_unpacked(keep[i], NULL);
        kept = 0;
    }
    keep[kept++] = in;
    return d;
}

/* Applies the decision's saga events to s as replayed from the stream or,
 * with in_memory set, as oms-saga applies what it has just appended (the
 * messages themselves, which may point into s). */
static bool in_memory;

static void commit(oms_saga_t *s, oms_saga_decision_t *d, int64_t ts)
{
    for (size_t i = 0; i < d->count; i++) {
        if (d->out[i].to_order)
            continue;
        if (in_memory) {
            ck_assert_int_eq(oms_saga_apply_msg(s, d->out[i].msg, ts), 0);
            continue;
        }
        event_t e = event_of(d->out[i].msg, "saga-o1", ts);
        ck_assert_int_eq(oms_saga_apply(s, &e.ev), 0);
        free(e.data);
    }
    oms_saga_decision_free(d);
}

static const char *type_at(const oms_saga_decision_t *d, size_t i)
{
    return d->out[i].msg->descriptor->short_name;
}

static void placed(oms_saga_t *s)
{
    item_a.sku = "sku-1";
    item_a.quantity = 2;
    item_a.unit_price_cents = 1250;
    address.country = "DE";
    Oms__V1__OrderPlaced o = OMS__V1__ORDER_PLACED__INIT;
    o.order_id = "o1";
    o.customer_id = "c1";
    o.n_items = 1;
    o.items = items;
    o.total_cents = 2500;
    o.currency = "EUR";
    o.payment_token = "tok_visa";
    o.shipping_address = &address;
    oms_saga_init(s, "o1");
    oms_saga_decision_t d = decide(s, &o);
    ck_assert_uint_eq(d.count, 2);
    ck_assert_str_eq(type_at(&d, 0), "SagaStarted");
    ck_assert_str_eq(type_at(&d, 1), "PaymentRequested");
    const Oms__V1__PaymentRequested *p = (const void *)d.out[1].msg;
    ck_assert_int_eq(p->amount_cents, 2500);
    ck_assert_str_eq(p->payment_token, "tok_visa");
    ck_assert_str_eq(d.out[1].step, "payment-1");
    commit(s, &d, 100 * MS);
    ck_assert_int_eq(s->phase, SAGA_PAYING);
    ck_assert_int_eq(s->version, 1);
    ck_assert_ptr_nonnull(s->order);
    ck_assert_str_eq(s->order->customer_id, "c1");
}

/* Feeds msg and expects exactly the types given (NULL-terminated). */
static void expect(oms_saga_t *s, const void *msg, const char *const *types, int64_t ts)
{
    oms_saga_decision_t d = decide(s, msg);
    size_t n = 0;
    while (types[n])
        n++;
    ck_assert_uint_eq(d.count, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(type_at(&d, i), types[i]);
    commit(s, &d, ts);
}

#define TYPES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

static Oms__V1__PaymentProcessed paid(void)
{
    Oms__V1__PaymentProcessed m = OMS__V1__PAYMENT_PROCESSED__INIT;
    m.order_id = "o1";
    m.amount_cents = 2500;
    m.charge_id = "ch_o1";
    return m;
}

static Oms__V1__InventoryReserved reserved(void)
{
    Oms__V1__InventoryReserved m = OMS__V1__INVENTORY_RESERVED__INIT;
    m.order_id = "o1";
    return m;
}

static Oms__V1__PaymentRefunded refunded(int64_t cents)
{
    Oms__V1__PaymentRefunded m = OMS__V1__PAYMENT_REFUNDED__INIT;
    m.order_id = "o1";
    m.amount_cents = cents;
    return m;
}

static Oms__V1__InventoryReleased released(void)
{
    Oms__V1__InventoryReleased m = OMS__V1__INVENTORY_RELEASED__INIT;
    m.order_id = "o1";
    return m;
}

static Oms__V1__OrderShipped shipped(void)
{
    Oms__V1__OrderShipped m = OMS__V1__ORDER_SHIPPED__INIT;
    m.order_id = "o1";
    m.shipment_id = "sh_o1";
    return m;
}

/* Feeds msg and expects SagaFailed + OrderFailed(reason, refunded, released). */
static void expect_failed(oms_saga_t *s, const void *msg, const char *reason, bool was_refunded,
                          bool was_released)
{
    oms_saga_decision_t d = decide(s, msg);
    ck_assert_uint_eq(d.count, 2);
    ck_assert_str_eq(type_at(&d, 0), "SagaFailed");
    ck_assert_str_eq(type_at(&d, 1), "OrderFailed");
    ck_assert(!d.out[0].to_order);
    ck_assert(d.out[1].to_order);
    ck_assert_str_eq(d.outcome, "failed");
    const Oms__V1__OrderFailed *f = (const void *)d.out[1].msg;
    ck_assert_str_eq(f->reason, reason);
    ck_assert_str_eq(f->customer_id, "c1");
    ck_assert_int_eq(f->refunded, was_refunded);
    ck_assert_int_eq(f->released, was_released);
    commit(s, &d, 0);
    ck_assert_int_eq(s->phase, SAGA_FAILED);
    ck_assert(oms_saga_final(s));
}

static void reach_shipping(oms_saga_t *s)
{
    placed(s);
    Oms__V1__PaymentProcessed p = paid();
    expect(s, &p, TYPES("InventoryRequested"), 200 * MS);
    ck_assert_int_eq(s->phase, SAGA_RESERVING);
    Oms__V1__InventoryReserved r = reserved();
    expect(s, &r, TYPES("ShipmentRequested"), 300 * MS);
    ck_assert_int_eq(s->phase, SAGA_SHIPPING);
}

START_TEST(happy_path_pays_reserves_ships_and_completes)
{
    oms_saga_t s;
    reach_shipping(&s);
    Oms__V1__OrderShipped sh = shipped();
    oms_saga_decision_t d = decide(&s, &sh);
    ck_assert_uint_eq(d.count, 2);
    ck_assert_str_eq(type_at(&d, 0), "SagaCompleted");
    ck_assert_str_eq(type_at(&d, 1), "OrderCompleted");
    ck_assert(d.out[1].to_order);
    ck_assert_str_eq(((const Oms__V1__OrderCompleted *)d.out[1].msg)->shipment_id, "sh_o1");
    ck_assert_str_eq(((const Oms__V1__OrderCompleted *)d.out[1].msg)->customer_id, "c1");
    ck_assert_str_eq(d.outcome, "completed");
    ck_assert_ptr_null(d.compensation);
    commit(&s, &d, 0);
    ck_assert_int_eq(s.phase, SAGA_COMPLETED);
    ck_assert_int_eq(s.version, 4);
    oms_saga_free(&s);
}
END_TEST

START_TEST(declined_payment_fails_without_compensation)
{
    oms_saga_t s;
    placed(&s);
    Oms__V1__PaymentFailed f = OMS__V1__PAYMENT_FAILED__INIT;
    f.order_id = "o1";
    f.reason = "card_declined";
    oms_saga_decision_t d = decide(&s, &f);
    ck_assert_ptr_null(d.compensation);
    ck_assert_str_eq(((const Oms__V1__OrderFailed *)d.out[1].msg)->detail, "card_declined");
    oms_saga_decision_free(&d);
    expect_failed(&s, &f, "payment_declined", false, false);
    oms_saga_free(&s);
}
END_TEST

START_TEST(out_of_stock_refunds_then_fails)
{
    oms_saga_t s;
    placed(&s);
    Oms__V1__PaymentProcessed p = paid();
    expect(&s, &p, TYPES("InventoryRequested"), 0);
    Oms__V1__InventoryReservationFailed f = OMS__V1__INVENTORY_RESERVATION_FAILED__INIT;
    f.order_id = "o1";
    f.reason = "out_of_stock";
    oms_saga_decision_t d = decide(&s, &f);
    ck_assert_uint_eq(d.count, 1);
    ck_assert_str_eq(type_at(&d, 0), "RefundRequested");
    ck_assert_str_eq(d.compensation, "refund");
    const Oms__V1__RefundRequested *r = (const void *)d.out[0].msg;
    ck_assert_int_eq(r->amount_cents, 2500);
    ck_assert_str_eq(r->reason, "out_of_stock");
    commit(&s, &d, 0);
    ck_assert_int_eq(s.phase, SAGA_REFUNDING);
    Oms__V1__PaymentRefunded rf = refunded(2500);
    expect_failed(&s, &rf, "out_of_stock", true, false);
    oms_saga_free(&s);
}
END_TEST

START_TEST(shipping_failure_releases_then_refunds_then_fails)
{
    oms_saga_t s;
    reach_shipping(&s);
    Oms__V1__ShipmentFailed f = OMS__V1__SHIPMENT_FAILED__INIT;
    f.order_id = "o1";
    oms_saga_decision_t d = decide(&s, &f);
    ck_assert_uint_eq(d.count, 1);
    ck_assert_str_eq(type_at(&d, 0), "ReleaseRequested");
    ck_assert_str_eq(d.compensation, "release");
    ck_assert_uint_eq(((const Oms__V1__ReleaseRequested *)d.out[0].msg)->n_items, 1);
    commit(&s, &d, 0);
    Oms__V1__InventoryReleased rl = released();
    expect(&s, &rl, TYPES("RefundRequested"), 0);
    ck_assert_int_eq(s.phase, SAGA_REFUNDING);
    Oms__V1__PaymentRefunded rf = refunded(2500);
    expect_failed(&s, &rf, "shipping_failed", true, true);
    oms_saga_free(&s);
}
END_TEST

START_TEST(decisions_applied_in_memory_keep_the_reason)
{
    in_memory = true;
    oms_saga_t s;
    reach_shipping(&s);
    Oms__V1__ShipmentFailed f = OMS__V1__SHIPMENT_FAILED__INIT;
    f.order_id = "o1";
    expect(&s, &f, TYPES("ReleaseRequested"), 0);
    Oms__V1__InventoryReleased rl = released();
    expect(&s, &rl, TYPES("RefundRequested"), 0);
    ck_assert_str_eq(s.reason, "shipping_failed");
    Oms__V1__PaymentRefunded rf = refunded(2500);
    expect_failed(&s, &rf, "shipping_failed", true, true);
    ck_assert_str_eq(s.reason, "shipping_failed");
    oms_saga_free(&s);
    in_memory = false;
}
END_TEST

START_TEST(no_timeout_before_the_deadline)
{
    oms_saga_t s;
    placed(&s); /* PaymentRequested at 100 ms, payment timeout 1000 ms */
    ck_assert_int_eq(oms_saga_deadline(&s, &timeouts), 1100 * MS);
    oms_saga_decision_t d;
    ck_assert_int_eq(oms_saga_timeout(&s, &timeouts, 1099 * MS, &d), 0);
    ck_assert_uint_eq(d.count, 0);
    oms_saga_free(&s);
}
END_TEST

static void time_out(oms_saga_t *s, int64_t now, const char *step, const char *command,
                     const char *command_step)
{
    oms_saga_decision_t d;
    ck_assert_int_eq(oms_saga_timeout(s, &timeouts, now, &d), 0);
    ck_assert_uint_eq(d.count, 2);
    ck_assert_str_eq(type_at(&d, 0), "SagaStepTimedOut");
    ck_assert_str_eq(type_at(&d, 1), command);
    ck_assert_str_eq(d.timed_out, step);
    ck_assert_str_eq(d.out[1].step, command_step);
    commit(s, &d, now);
}

START_TEST(payment_timeout_voids_the_payment_and_fails)
{
    oms_saga_t s;
    placed(&s);
    time_out(&s, 1100 * MS, "payment", "RefundRequested", "refund-1");
    ck_assert_int_eq(s.phase, SAGA_REFUNDING);
    ck_assert_str_eq(s.reason, "payment_timeout");
    /* The charge comes late: nothing, the refund will undo it. */
    Oms__V1__PaymentProcessed p = paid();
    expect(&s, &p, NONE, 0);
    Oms__V1__PaymentRefunded rf = refunded(0);
    expect_failed(&s, &rf, "payment_timeout", false, false);
    oms_saga_free(&s);
}
END_TEST

START_TEST(inventory_timeout_releases_and_refunds)
{
    oms_saga_t s;
    placed(&s);
    Oms__V1__PaymentProcessed p = paid();
    expect(&s, &p, TYPES("InventoryRequested"), 200 * MS);
    oms_saga_decision_t d;
    ck_assert_int_eq(oms_saga_timeout(&s, &timeouts, 2199 * MS, &d), 0);
    ck_assert_uint_eq(d.count, 0);
    time_out(&s, 2200 * MS, "inventory", "ReleaseRequested", "release-1");
    /* A reservation that comes late changes nothing: the release undoes it. */
    Oms__V1__InventoryReserved r = reserved();
    expect(&s, &r, NONE, 0);
    Oms__V1__InventoryReleased rl = released();
    expect(&s, &rl, TYPES("RefundRequested"), 0);
    Oms__V1__PaymentRefunded rf = refunded(2500);
    expect_failed(&s, &rf, "inventory_timeout", true, true);
    oms_saga_free(&s);
}
END_TEST

START_TEST(shipping_timeout_cancels_releases_and_refunds)
{
    oms_saga_t s;
    reach_shipping(&s);
    time_out(&s, 3300 * MS, "shipping", "ShipmentCancelRequested", "cancel-1");
    ck_assert_int_eq(s.phase, SAGA_CANCELLING);
    Oms__V1__ShipmentCancelled c = OMS__V1__SHIPMENT_CANCELLED__INIT;
    c.order_id = "o1";
    expect(&s, &c, TYPES("ReleaseRequested"), 0);
    Oms__V1__InventoryReleased rl = released();
    expect(&s, &rl, TYPES("RefundRequested"), 0);
    Oms__V1__PaymentRefunded rf = refunded(2500);
    expect_failed(&s, &rf, "shipping_timeout", true, true);
    oms_saga_free(&s);
}
END_TEST

START_TEST(shipment_that_happened_after_the_timeout_completes_the_order)
{
    oms_saga_t s;
    reach_shipping(&s);
    time_out(&s, 3300 * MS, "shipping", "ShipmentCancelRequested", "cancel-1");
    Oms__V1__OrderShipped sh = shipped();
    expect(&s, &sh, TYPES("SagaCompleted", "OrderCompleted"), 0);
    ck_assert_int_eq(s.phase, SAGA_COMPLETED);
    oms_saga_free(&s);
}
END_TEST

START_TEST(shipment_failure_after_the_timeout_compensates_as_the_timeout)
{
    oms_saga_t s;
    reach_shipping(&s);
    time_out(&s, 3300 * MS, "shipping", "ShipmentCancelRequested", "cancel-1");
    Oms__V1__ShipmentFailed f = OMS__V1__SHIPMENT_FAILED__INIT;
    f.order_id = "o1";
    expect(&s, &f, TYPES("ReleaseRequested"), 0);
    ck_assert_str_eq(s.reason, "shipping_timeout");
    oms_saga_free(&s);
}
END_TEST

START_TEST(unanswered_compensation_is_requested_again)
{
    oms_saga_t s;
    placed(&s);
    time_out(&s, 1100 * MS, "payment", "RefundRequested", "refund-1");
    /* compensation timeout 4000 ms from 1100 ms */
    oms_saga_decision_t d;
    ck_assert_int_eq(oms_saga_timeout(&s, &timeouts, 5099 * MS, &d), 0);
    ck_assert_uint_eq(d.count, 0);
    time_out(&s, 5100 * MS, "refund", "RefundRequested", "refund-2");
    ck_assert_uint_eq(s.attempt, 2);
    time_out(&s, 9100 * MS, "refund", "RefundRequested", "refund-3");
    Oms__V1__PaymentRefunded rf = refunded(0);
    expect_failed(&s, &rf, "payment_timeout", false, false);
    oms_saga_free(&s);
}
END_TEST

START_TEST(duplicates_and_late_answers_change_nothing)
{
    oms_saga_t s;
    placed(&s);
    Oms__V1__OrderPlaced again = *s.order;
    expect(&s, &again, NONE, 0); /* a second OrderPlaced delivery */
    Oms__V1__PaymentProcessed p = paid();
    expect(&s, &p, TYPES("InventoryRequested"), 0);
    int64_t v = s.version;
    expect(&s, &p, NONE, 0); /* the same answer delivered twice */
    Oms__V1__InventoryReleased rl = released();
    expect(&s, &rl, NONE, 0); /* an answer to a command never sent */
    ck_assert_int_eq(s.version, v);
    ck_assert_int_eq(s.phase, SAGA_RESERVING);
    oms_saga_free(&s);
}
END_TEST

START_TEST(a_final_saga_ignores_everything)
{
    oms_saga_t s;
    reach_shipping(&s);
    Oms__V1__OrderShipped sh = shipped();
    expect(&s, &sh, TYPES("SagaCompleted", "OrderCompleted"), 0);
    expect(&s, &sh, NONE, 0);
    Oms__V1__PaymentRefunded rf = refunded(2500);
    expect(&s, &rf, NONE, 0);
    oms_saga_decision_t d;
    ck_assert_int_eq(oms_saga_timeout(&s, &timeouts, INT64_MAX / 2, &d), 0);
    ck_assert_uint_eq(d.count, 0);
    oms_saga_free(&s);
}
END_TEST

START_TEST(an_answer_without_a_saga_is_ignored)
{
    oms_saga_t s;
    oms_saga_init(&s, "o1");
    Oms__V1__PaymentProcessed p = paid();
    expect(&s, &p, NONE, 0);
    ck_assert_int_eq(s.phase, SAGA_NEW);
    oms_saga_free(&s);
}
END_TEST

START_TEST(a_payload_that_does_not_decode_is_an_error)
{
    oms_saga_t s;
    oms_saga_init(&s, "o1");
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    evs_recorded_event_t ev = {.type = "PaymentProcessed", .stream = "payment-o1", .data = junk,
                               .data_len = sizeof junk};
    oms_saga_decision_t d;
    ProtobufCMessage *in = NULL;
    ck_assert_int_eq(oms_saga_decide(&s, &ev, &d, &in), -EINVAL);
    ev.type = "NoSuchEvent";
    ck_assert_int_eq(oms_saga_decide(&s, &ev, &d, &in), -EINVAL);
    ck_assert_int_eq(oms_saga_apply(&s, &ev), -EINVAL);
    ck_assert_int_eq(s.version, 0); /* the version still counts the event */
    oms_saga_free(&s);
}
END_TEST

START_TEST(a_broken_saga_decides_nothing)
{
    oms_saga_t s;
    oms_saga_init(&s, "o1");
    Oms__V1__SagaStarted no_order = OMS__V1__SAGA_STARTED__INIT;
    ck_assert_int_eq(oms_saga_apply_msg(&s, &no_order.base, 0), -EINVAL);
    Oms__V1__PaymentRequested pr = OMS__V1__PAYMENT_REQUESTED__INIT;
    pr.attempt = 1;
    ck_assert_int_eq(oms_saga_apply_msg(&s, &pr.base, 0), 0);
    ck_assert(s.broken);
    ck_assert_int_eq(s.phase, SAGA_PAYING);
    Oms__V1__PaymentProcessed p = paid();
    expect(&s, &p, NONE, 0);
    ck_assert_int_eq(oms_saga_deadline(&s, &timeouts), INT64_MAX);
    oms_saga_decision_t d;
    ck_assert_int_eq(oms_saga_timeout(&s, &timeouts, INT64_MAX / 2, &d), 0);
    ck_assert_uint_eq(d.count, 0);
    oms_saga_free(&s);
}
END_TEST

START_TEST(each_pending_step_names_the_stream_of_its_answer)
{
    oms_saga_t s;
    oms_saga_init(&s, "o1");
    ck_assert_ptr_null(oms_saga_answer_category(&s));
    static const struct {
        oms_saga_phase_t phase;
        const char *category;
    } cases[] = {{SAGA_PAYING, "payment"},      {SAGA_REFUNDING, "payment"},
                 {SAGA_RESERVING, "inventory"}, {SAGA_RELEASING, "inventory"},
                 {SAGA_SHIPPING, "shipment"},   {SAGA_CANCELLING, "shipment"},
                 {SAGA_COMPLETED, NULL},        {SAGA_FAILED, NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        s.phase = cases[i].phase;
        const char *c = oms_saga_answer_category(&s);
        if (cases[i].category)
            ck_assert_str_eq(c, cases[i].category);
        else
            ck_assert_ptr_null(c);
    }
}
END_TEST

START_TEST(replaying_the_stream_rebuilds_the_same_state)
{
    /* Drive a saga through the shipping-failure path while keeping every
     * saga event, then fold them into a fresh saga. */
    oms_saga_t s;
    reach_shipping(&s);
    Oms__V1__ShipmentFailed f = OMS__V1__SHIPMENT_FAILED__INIT;
    f.order_id = "o1";
    expect(&s, &f, TYPES("ReleaseRequested"), 400 * MS);
    /* Rebuild from scratch with the same decisions replayed. */
    oms_saga_t r;
    reach_shipping(&r);
    expect(&r, &f, TYPES("ReleaseRequested"), 400 * MS);
    ck_assert_int_eq(r.phase, s.phase);
    ck_assert_int_eq(r.version, s.version);
    ck_assert_int_eq(r.requested_at_ns, s.requested_at_ns);
    ck_assert_str_eq(r.reason, s.reason);
    ck_assert_int_eq(r.released, s.released);
    ck_assert_int_eq(oms_saga_deadline(&r, &timeouts), 400 * MS + 4000 * MS);
    oms_saga_free(&s);
    oms_saga_free(&r);
}
END_TEST

static Suite *saga_suite(void)
{
    Suite *s = suite_create("saga");
    TCase *t = tcase_create("state machine");
    tcase_add_test(t, happy_path_pays_reserves_ships_and_completes);
    tcase_add_test(t, declined_payment_fails_without_compensation);
    tcase_add_test(t, out_of_stock_refunds_then_fails);
    tcase_add_test(t, shipping_failure_releases_then_refunds_then_fails);
    tcase_add_test(t, decisions_applied_in_memory_keep_the_reason);
    tcase_add_test(t, no_timeout_before_the_deadline);
    tcase_add_test(t, payment_timeout_voids_the_payment_and_fails);
    tcase_add_test(t, inventory_timeout_releases_and_refunds);
    tcase_add_test(t, shipping_timeout_cancels_releases_and_refunds);
    tcase_add_test(t, shipment_that_happened_after_the_timeout_completes_the_order);
    tcase_add_test(t, shipment_failure_after_the_timeout_compensates_as_the_timeout);
    tcase_add_test(t, unanswered_compensation_is_requested_again);
    tcase_add_test(t, duplicates_and_late_answers_change_nothing);
    tcase_add_test(t, a_final_saga_ignores_everything);
    tcase_add_test(t, an_answer_without_a_saga_is_ignored);
    tcase_add_test(t, a_payload_that_does_not_decode_is_an_error);
    tcase_add_test(t, a_broken_saga_decides_nothing);
    tcase_add_test(t, each_pending_step_names_the_stream_of_its_answer);
    tcase_add_test(t, replaying_the_stream_rebuilds_the_same_state);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(saga_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
