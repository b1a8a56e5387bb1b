/* test_oms_e2e.c -- the whole OMS on a real evstored: 200 orders of a known
 * mix placed over HTTP; each ends in its expected state with exactly the
 * expected steps and compensations; the read model agrees with the event
 * streams; the audit trail of each order is complete and in order; a
 * rebuilt read model has the same digest. */
#include <check.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oms.h"
#include "oms.pb-c.h"
#include "oms_system.h"
#include "util.h"

#define ORDERS 200
#define VERDICT_WAIT_MS 60000
#define TYPES_MAX 16

static sys_t sys_;
static char ids[ORDERS][33];

/* The streams and event types each kind ends with, in order. */
typedef struct {
    const char *suffix;              /* stream category */
    const char *types[KIND_COUNT][6];
} expectation_t;

static const expectation_t expected[] = {
    {"saga",
     {[KIND_SUCCESS] = {"SagaStarted", "PaymentRequested", "InventoryRequested",
                        "ShipmentRequested", "SagaCompleted"},
      [KIND_DECLINED] = {"SagaStarted", "PaymentRequested", "SagaFailed"},
      [KIND_OOS] = {"SagaStarted", "PaymentRequested", "InventoryRequested", "RefundRequested",
                    "SagaFailed"},
      [KIND_SHIPFAIL] = {"SagaStarted", "PaymentRequested", "InventoryRequested",
                         "ShipmentRequested", "ReleaseRequested", "RefundRequested"}}},
    {"order",
     {[KIND_SUCCESS] = {"OrderPlaced", "OrderCompleted"},
      [KIND_DECLINED] = {"OrderPlaced", "OrderFailed"},
      [KIND_OOS] = {"OrderPlaced", "OrderFailed"},
      [KIND_SHIPFAIL] = {"OrderPlaced", "OrderFailed"}}},
    {"payment",
     {[KIND_SUCCESS] = {"PaymentProcessed"},
      [KIND_DECLINED] = {"PaymentFailed"},
      [KIND_OOS] = {"PaymentProcessed", "PaymentRefunded"},
      [KIND_SHIPFAIL] = {"PaymentProcessed", "PaymentRefunded"}}},
    {"inventory",
     {[KIND_SUCCESS] = {"InventoryReserved"},
      [KIND_DECLINED] = {NULL},
      [KIND_OOS] = {"InventoryReservationFailed"},
      [KIND_SHIPFAIL] = {"InventoryReserved", "InventoryReleased"}}},
    {"shipment",
     {[KIND_SUCCESS] = {"OrderShipped"},
      [KIND_DECLINED] = {NULL},
      [KIND_OOS] = {NULL},
      [KIND_SHIPFAIL] = {"ShipmentFailed"}}},
    {"notification",
     {[KIND_SUCCESS] = {"NotificationSent"},
      [KIND_DECLINED] = {"NotificationSent"},
      [KIND_OOS] = {"NotificationSent"},
      [KIND_SHIPFAIL] = {"NotificationSent"}}},
};

static evs_conn_t *conn;

/* The shipping-failure saga ends with SagaFailed after its refund: six
 * listed types plus SagaFailed (the table holds six). */
static void check_streams(int i, order_kind_t kind)
{
    for (size_t e = 0; e < sizeof expected / sizeof *expected; e++) {
        char stream[64], types[TYPES_MAX][40];
        snprintf(stream, sizeof stream, "%s-%.32s", expected[e].suffix, ids[i]);
        int n = sys_stream_types(conn, stream, types, TYPES_MAX);
        int want = 0;
        while (want < 6 && expected[e].types[kind][want])
            want++;
        bool shipfail_saga = kind == KIND_SHIPFAIL && strcmp(expected[e].suffix, "saga") == 0;
        ck_assert_msg(n == want + (shipfail_saga ? 1 : 0), "order %d (%s): %s has %d events",
                      i, kind_names[kind], stream, n);
        for (int k = 0; k < want; k++)
            ck_assert_msg(strcmp(types[k], expected[e].types[kind][k]) == 0,
                          "order %d (%s): %s[%d] is %s, expected %s", i, kind_names[kind], stream,
                          k, types[k], expected[e].types[kind][k]);
        if (shipfail_saga)
            ck_assert_str_eq(types[want], "SagaFailed");
    }
}

/* Refund amounts equal the charge; the verdict carries the right reason. */
static void check_money_and_reason(int i, order_kind_t kind)
{
    char reason[32] = "";
    int verdicts = 0;
    const char *v = sys_verdict(conn, ids[i], reason, &verdicts);
    ck_assert_int_eq(verdicts, 1);
    ck_assert_str_eq(v, kind == KIND_SUCCESS ? "OrderCompleted" : "OrderFailed");
    if (kind != KIND_SUCCESS)
        ck_assert_str_eq(reason, kind_reasons[kind]);
    char stream[64];
    snprintf(stream, sizeof stream, "payment-%.32s", ids[i]);
    evs_read_t req = {.stream = stream};
    evs_read_result_t res;
    ck_assert_int_eq(evs_read(conn, &req, &res), 0);
    int64_t charged = 0, refunded = 0;
    for (size_t k = 0; k < res.count; k++) {
        const evs_recorded_event_t *ev = &res.events[k];
        if (strcmp(ev->type, "PaymentProcessed") == 0) {
            Oms__V1__PaymentProcessed *p =
                oms__v1__payment_processed__unpack(NULL, ev->data_len, ev->data);
            ck_assert_ptr_nonnull(p);
            charged += p->amount_cents;
            oms__v1__payment_processed__free_unpacked(p, NULL);
        } else if (strcmp(ev->type, "PaymentRefunded") == 0) {
            Oms__V1__PaymentRefunded *p =
                oms__v1__payment_refunded__unpack(NULL, ev->data_len, ev->data);
            ck_assert_ptr_nonnull(p);
            refunded += p->amount_cents;
            oms__v1__payment_refunded__free_unpacked(p, NULL);
        }
    }
    evs_read_result_free(&res);
    if (kind == KIND_SUCCESS)
        ck_assert(charged > 0 && refunded == 0);
    else
        ck_assert_int_eq(charged, refunded);
}

/* GET /orders/{id}/events: every event of the order's streams, in position
 * order, starting with OrderPlaced. */
static void check_audit_trail(int i)
{
    char path[128];
    snprintf(path, sizeof path, "/orders/%.32s/events", ids[i]);
    oms_curl_response_t res;
    ck_assert_int_eq(oms_curl_once("127.0.0.1", sys_.procs[SYS_ORDER].port, 5000, "GET", path, NULL,
                                NULL, 0, &res),
                     0);
    ck_assert_int_eq(res.status, 200);
    json_error_t err;
    json_t *root = json_loads(res.body, 0, &err);
    oms_curl_response_free(&res);
    ck_assert_msg(root != NULL, "audit trail is not JSON: %s", err.text);
    json_t *events = json_is_array(root) ? root : json_object_get(root, "events");
    ck_assert(json_is_array(events));
    int total = 0;
    for (size_t e = 0; e < sizeof expected / sizeof *expected; e++) {
        char stream[64], types[TYPES_MAX][40];
        snprintf(stream, sizeof stream, "%s-%.32s", expected[e].suffix, ids[i]);
        total += sys_stream_types(conn, stream, types, TYPES_MAX);
    }
    ck_assert_int_eq((int)json_array_size(events), total);
    json_int_t last = -1;
    for (size_t k = 0; k < json_array_size(events); k++) {
        json_t *ev = json_array_get(events, k);
        json_int_t pos = json_integer_value(json_object_get(ev, "position"));
        ck_assert_msg(pos > last, "audit trail of order %d out of order at %zu", i, k);
        last = pos;
        ck_assert(json_is_string(json_object_get(ev, "type")));
        ck_assert(json_is_object(json_object_get(ev, "data")));
    }
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(events, 0), "type")),
                     "OrderPlaced");
    json_decref(root);
}

static int64_t checkpoint_of(const char *db_path)
{
    sqlite3 *db;
    int64_t pos = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "SELECT position FROM projection_checkpoint WHERE name='main'",
                               -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                pos = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return pos;
}

static int64_t rebuilt_target;

static bool rebuilt(void *ctx)
{
    (void)ctx;
    return checkpoint_of(sys_.db) >= rebuilt_target;
}

START_TEST(two_hundred_orders_reach_their_expected_end)
{
    ck_assert_int_eq(sys_start(&sys_, NULL), 0);
    conn = sys_connect(&sys_);
    ck_assert_ptr_nonnull(conn);
    oms_curl_t *http = NULL;
    for (unsigned i = 0; i < ORDERS; i++)
        ck_assert_int_eq(sys_place(&http, sys_.procs[SYS_ORDER].port, i, sys_kind_of(i), 10000,
                                   ids[i]),
                         0);
    oms_curl_close(http);
    sys_orders_t orders = {conn, ids, ORDERS};
    ck_assert_msg(oms_wait_until(sys_all_verdicts, &orders, VERDICT_WAIT_MS),
                  "not every order reached a verdict");
    ck_assert(oms_wait_until(sys_all_notified, &orders, VERDICT_WAIT_MS));
    int per_kind[KIND_COUNT] = {0};
    for (int i = 0; i < ORDERS; i++) {
        order_kind_t kind = sys_kind_of((unsigned)i);
        per_kind[kind]++;
        check_streams(i, kind);
        check_money_and_reason(i, kind);
    }
    ck_assert_int_eq(per_kind[KIND_SUCCESS], 140);
    for (int i = 0; i < ORDERS; i += 10)
        check_audit_trail(i);

    /* The read model agrees with the streams. */
    static sys_outcome_t want[ORDERS];
    for (int i = 0; i < ORDERS; i++)
        want[i] = sys_kind_outcome(sys_kind_of((unsigned)i));
    sys_readmodel_t rm = {sys_.procs[SYS_ORDER].port, ids, want, ORDERS, 0, ""};
    ck_assert_msg(oms_wait_until(sys_readmodel_agrees, &rm, VERDICT_WAIT_MS),
                  "read model: %d of %d orders agree; %s", rm.agreeing, ORDERS, rm.why);

    /* Rebuild: the same rows. */
    ck_assert_int_eq(oms_proc_stop(&sys_.procs[SYS_PROJECTIONS]), 0);
    char before[33], after[33];
    ck_assert_int_eq(sys_digest(&sys_, before), 0);
    rebuilt_target = checkpoint_of(sys_.db);
    ck_assert_int_gt(rebuilt_target, 0);
    sys_.args[SYS_PROJECTIONS][2] = "--rebuild";
    memcpy(sys_.procs[SYS_PROJECTIONS].args, sys_.args[SYS_PROJECTIONS],
           sizeof sys_.args[SYS_PROJECTIONS]);
    ck_assert_int_eq(oms_proc_restart(&sys_.procs[SYS_PROJECTIONS]), 0);
    ck_assert(oms_wait_until(rebuilt, NULL, VERDICT_WAIT_MS));
    ck_assert_int_eq(oms_proc_stop(&sys_.procs[SYS_PROJECTIONS]), 0);
    ck_assert_int_eq(sys_digest(&sys_, after), 0);
    ck_assert_str_eq(before, after);

    evs_close(conn);
    ck_assert_int_eq(sys_destroy(&sys_), 0);
}
END_TEST

/* ---- the saga alone: an answer that came while it was down ---- */

#define DOWN_WAIT_MS 30000            /* bound of each wait in the test below */
#define DOWN_INVENTORY_TIMEOUT_MS 1000 /* the step after the answer; no service answers it */

typedef struct {
    evs_conn_t *c;
    const char *stream;
    const char *type;
} has_t;

static bool has_cond(void *ctx)
{
    has_t *h = ctx;
    char types[TYPES_MAX][40];
    int n = sys_stream_types(h->c, h->stream, types, TYPES_MAX);
    for (int i = 0; i < n; i++)
        if (strcmp(types[i], h->type) == 0)
            return true;
    return false;
}

static void append_msg(evs_conn_t *c, const char *stream, const void *msg, const char *order_id,
                       const char *step)
{
    evs_event_t ev;
    ck_assert_int_eq(oms_event_make(&ev, msg, order_id, step), 0);
    evs_stream_append_t a = {.stream = stream, .expected_version = EVS_EXPECT_ANY, .events = &ev,
                             .event_count = 1};
    ck_assert_int_eq(evs_append(c, &a, 1, NULL), 0);
    oms_event_free_data(&ev);
}

static void place_down1(evs_conn_t *c)
{
    Oms__V1__OrderItem item = OMS__V1__ORDER_ITEM__INIT;
    item.sku = "sku-0001";
    item.quantity = 1;
    item.unit_price_cents = 100;
    Oms__V1__OrderItem *items[] = {&item};
    Oms__V1__OrderPlaced o = OMS__V1__ORDER_PLACED__INIT;
    o.order_id = "down1";
    o.customer_id = "c1";
    o.n_items = 1;
    o.items = items;
    o.total_cents = 100;
    o.currency = "EUR";
    o.payment_token = "tok_visa";
    append_msg(c, "order-down1", &o, "down1", "placed");
}

/* Parks the saga's delivery of the PaymentProcessed (as after repeated
 * failures), so the group will not deliver it again. */
static void park_payment_answer(const evs_options_t *opts)
{
    evs_consumer_t *thief;
    ck_assert_int_eq(evs_group_join(opts, "oms-saga", 0, &thief), 0);
    bool parked = false;
    uint64_t deadline = util_mono_ms() + DOWN_WAIT_MS;
    while (!parked && util_mono_ms() < deadline) {
        evs_group_event_t gev;
        if (evs_consumer_next(thief, 200, &gev) != 0)
            continue;
        parked = strcmp(gev.event.type, "PaymentProcessed") == 0;
        ck_assert_int_eq(evs_consumer_nack(thief, gev.event.position,
                                           parked ? EVS_NACK_PARK : EVS_NACK_RETRY, "test"),
                         0);
    }
    ck_assert_msg(parked, "the PaymentProcessed never reached the saga's group");
    evs_consumer_close(thief);
}

START_TEST(saga_acts_on_an_answer_that_came_while_it_was_down)
{
    test_server_t store;
    ck_assert_int_eq(test_server_start(&store, NULL), 0);
    char dir[PATH_MAX];
    ck_assert_int_eq(test_tmpdir_make("oms-saga-down", dir), 0);
    /* Until the kill no step can time out. After the restart the payment
     * step is late at once (its clock runs from the PaymentRequested in
     * the stream), so the saga looks for the answer at once; no service
     * answers the inventory step, so it times out, rightly, after
     * DOWN_INVENTORY_TIMEOUT_MS. */
    static const char *const patient[] = {"--payment-timeout-ms", "3600000", NULL};
    static const char *const late[] = {"--payment-timeout-ms", "1", "--inventory-timeout-ms",
                                       SYS_DECIMAL(DOWN_INVENTORY_TIMEOUT_MS), NULL};
    oms_proc_t saga;
    ck_assert_int_eq(oms_proc_start(&saga, "oms-saga", store.port, dir, patient), 0);
    evs_options_t opts;
    evs_options_default(&opts);
    opts.port = store.port;
    evs_conn_t *c;
    ck_assert_int_eq(evs_connect(&opts, &c), 0);
    place_down1(c);
    has_t asked = {c, "saga-down1", "PaymentRequested"};
    ck_assert(oms_wait_until(has_cond, &asked, DOWN_WAIT_MS));

    /* The saga goes down; the payment is answered, and the answer parked;
     * the saga comes back past the step's deadline: it must find the
     * answer in the payment stream and go on, not refund. */
    oms_proc_kill(&saga);
    Oms__V1__PaymentProcessed p = OMS__V1__PAYMENT_PROCESSED__INIT;
    p.order_id = "down1";
    p.amount_cents = 100;
    p.charge_id = "ch_down1";
    append_msg(c, "payment-down1", &p, "down1", "charge");
    park_payment_answer(&opts);
    memcpy(saga.args, late, sizeof late);
    ck_assert_int_eq(oms_proc_restart(&saga), 0);

    /* The inventory step's timeout is the positive end of the window: the
     * saga decided it after every tick in which a wrong timeout (the
     * payment's, or an early one of the inventory) could have fired, and
     * each decision of the saga is in its stream. */
    has_t timed_out = {c, "saga-down1", "SagaStepTimedOut"};
    ck_assert(oms_wait_until(has_cond, &timed_out, DOWN_WAIT_MS));
    evs_read_t rq = {.stream = "saga-down1"};
    evs_read_result_t res;
    ck_assert_int_eq(evs_read(c, &rq, &res), 0);
    static const char *const want[] = {"SagaStarted", "PaymentRequested", "InventoryRequested",
                                       "SagaStepTimedOut", "ReleaseRequested"};
    const size_t want_count = sizeof want / sizeof want[0];
    for (size_t k = 0; k < res.count || k < want_count; k++)
        ck_assert_msg(k < res.count && k < want_count && strcmp(res.events[k].type, want[k]) == 0,
                      "saga-down1[%zu] is %s, expected %s", k,
                      k < res.count ? res.events[k].type : "missing",
                      k < want_count ? want[k] : "nothing");
    int64_t waited_ms = (res.events[3].timestamp_ns - res.events[2].timestamp_ns) / 1000000;
    ck_assert_msg(waited_ms >= DOWN_INVENTORY_TIMEOUT_MS,
                  "the inventory step timed out %lld ms after it was asked, before its %d ms",
                  (long long)waited_ms, DOWN_INVENTORY_TIMEOUT_MS);
    evs_read_result_free(&res);

    ck_assert_int_eq(oms_proc_stop(&saga), 0);
    evs_close(c);
    test_server_destroy(&store);
    test_tmpdir_remove(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oms e2e");
    TCase *t = tcase_create("e2e");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, two_hundred_orders_reach_their_expected_end);
    tcase_add_test(t, saga_acts_on_an_answer_that_came_while_it_was_down);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
