/* test_oms_services.c -- the four worker services (oms-payment,
 * oms-inventory, oms-shipping, oms-notification), each as a real program on
 * a real evstored. The test writes commands into saga-<id> streams as the
 * saga would (and verdicts into order-<id> as the saga would), waits for the
 * answers, and checks the streams, the outbox and /metrics. */
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oms.h"
#include "oms.pb-c.h"
#include "oms_curl.h"
#include "oms_fixture.h"
#include "server_fixture.h"
#include "util.h"

#define WAIT_MS 20000       /* bound of every wait for an answer */
#define ARGS_MAX 8
#define RACE_ORDERS 40      /* orders competing for the units of one SKU */
#define RACE_UNITS 25       /* of "few" in the test catalogue */
#define RACE_RESTOCK_UNITS 5 /* added to "few" behind the services' backs */

/* ==== the fixture: evstored, a connection, a temp dir, one service ===== */

static struct {
    test_server_t srv;
    evs_conn_t *conn;
    char dir[PATH_MAX];
    char file[PATH_MAX + 32]; /* the outbox or the catalogue */
    const char *args[ARGS_MAX];
    oms_proc_t svc;
} fx;

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    ck_assert_int_eq(test_server_start(&fx.srv, NULL), 0);
    evs_options_t opts;
    evs_options_default(&opts);
    opts.port = fx.srv.port;
    opts.client_name = "test_oms_services";
    ck_assert_int_eq(evs_connect(&opts, &fx.conn), 0);
    ck_assert_int_eq(test_tmpdir_make("oms-svc", fx.dir), 0);
}

static void teardown(void)
{
    oms_proc_kill(&fx.svc);
    evs_close(fx.conn);
    test_server_destroy(&fx.srv);
    test_tmpdir_remove(fx.dir);
}

/* Starts program with the given flags (NULL-terminated; kept in fx). */
static void start(const char *program, const char *const *flags)
{
    int n = 0;
    for (; flags && flags[n] && n < ARGS_MAX - 1; n++)
        fx.args[n] = flags[n];
    fx.args[n] = NULL;
    ck_assert_int_eq(oms_proc_start(&fx.svc, program, fx.srv.port, fx.dir, fx.args), 0);
}

/* SIGTERM: the service must finish and exit 0 (under the sanitizer
 * build, also without leaks). */
static void stop_cleanly(void)
{
    ck_assert_int_eq(oms_proc_stop(&fx.svc), 0);
}

/* ==== writing events ==================================================== */

/* Appends msg to stream at expected_version with the id of (key, step);
 * returns its position. */
static uint64_t append_at(const char *stream, int64_t expected_version, const char *key,
                          const void *msg, const char *step)
{
    evs_event_t ev;
    ck_assert_int_eq(oms_event_make(&ev, msg, key, step), 0);
    evs_stream_append_t sa = {stream, expected_version, &ev, 1};
    evs_append_result_t res;
    int rc = evs_append(fx.conn, &sa, 1, &res);
    ck_assert_msg(rc == 0, "append to %s: %s", stream, evs_strerror(rc));
    oms_event_free_data(&ev);
    return res.first_position;
}

static uint64_t append_msg(const char *stream, const char *order, const void *msg,
                           const char *step)
{
    return append_at(stream, EVS_EXPECT_ANY, order, msg, step);
}

/* A command into saga-<order>, as the saga writes it. */
static uint64_t command(const char *order, const void *msg, const char *step)
{
    char stream[OMS_NAME_BYTES_MAX];
    snprintf(stream, sizeof stream, "saga-%s", order);
    return append_msg(stream, order, msg, step);
}

static uint64_t pay(const char *order, const char *customer, int64_t cents, const char *token,
                    unsigned attempt)
{
    Oms__V1__PaymentRequested m = OMS__V1__PAYMENT_REQUESTED__INIT;
    m.order_id = (char *)order;
    m.customer_id = (char *)customer;
    m.amount_cents = cents;
    m.currency = "EUR";
    m.payment_token = (char *)token;
    m.attempt = attempt;
    char step[32];
    snprintf(step, sizeof step, "pay-%u", attempt);
    return command(order, &m, step);
}

static uint64_t refund(const char *order, int64_t cents, unsigned attempt)
{
    Oms__V1__RefundRequested m = OMS__V1__REFUND_REQUESTED__INIT;
    m.order_id = (char *)order;
    m.customer_id = "c-1";
    m.amount_cents = cents;
    m.reason = "out_of_stock";
    m.attempt = attempt;
    char step[32];
    snprintf(step, sizeof step, "refund-%u", attempt);
    return command(order, &m, step);
}

/* items: "sku", quantity pairs as parallel arrays. */
typedef struct {
    const char *skus[4];
    uint32_t qty[4];
    size_t n;
} items_t;

static void items_fill(const items_t *in, Oms__V1__OrderItem *items, Oms__V1__OrderItem **ptrs)
{
    for (size_t i = 0; i < in->n; i++) {
        oms__v1__order_item__init(&items[i]);
        items[i].sku = (char *)in->skus[i];
        items[i].quantity = in->qty[i];
        items[i].unit_price_cents = 100;
        ptrs[i] = &items[i];
    }
}

static uint64_t reserve(const char *order, items_t in, unsigned attempt)
{
    Oms__V1__OrderItem items[4], *ptrs[4];
    items_fill(&in, items, ptrs);
    Oms__V1__InventoryRequested m = OMS__V1__INVENTORY_REQUESTED__INIT;
    m.order_id = (char *)order;
    m.n_items = in.n;
    m.items = ptrs;
    m.attempt = attempt;
    char step[32];
    snprintf(step, sizeof step, "reserve-%u", attempt);
    return command(order, &m, step);
}

static uint64_t release(const char *order, unsigned attempt)
{
    Oms__V1__ReleaseRequested m = OMS__V1__RELEASE_REQUESTED__INIT;
    m.order_id = (char *)order;
    m.reason = "shipping_failed";
    m.attempt = attempt;
    char step[32];
    snprintf(step, sizeof step, "release-%u", attempt);
    return command(order, &m, step);
}

static uint64_t ship(const char *order, const char *country, unsigned attempt)
{
    Oms__V1__OrderItem items[1], *ptrs[1];
    items_t in = {{"sku-0001"}, {2}, 1};
    items_fill(&in, items, ptrs);
    Oms__V1__Address addr = OMS__V1__ADDRESS__INIT;
    addr.name = "Ada";
    addr.line1 = "1 Loop Road";
    addr.city = "Localhost";
    addr.country = (char *)country;
    Oms__V1__ShipmentRequested m = OMS__V1__SHIPMENT_REQUESTED__INIT;
    m.order_id = (char *)order;
    m.customer_id = "c-1";
    m.n_items = 1;
    m.items = ptrs;
    m.shipping_address = &addr;
    m.attempt = attempt;
    char step[32];
    snprintf(step, sizeof step, "ship-%u", attempt);
    return command(order, &m, step);
}

static uint64_t cancel(const char *order, unsigned attempt)
{
    Oms__V1__ShipmentCancelRequested m = OMS__V1__SHIPMENT_CANCEL_REQUESTED__INIT;
    m.order_id = (char *)order;
    m.reason = "shipping_timeout";
    m.attempt = attempt;
    char step[32];
    snprintf(step, sizeof step, "cancel-%u", attempt);
    return command(order, &m, step);
}

/* OrderPlaced into order-<order>, as oms-order writes it. */
static void placed(const char *order, const char *customer)
{
    char stream[OMS_NAME_BYTES_MAX];
    snprintf(stream, sizeof stream, "order-%s", order);
    Oms__V1__OrderPlaced m = OMS__V1__ORDER_PLACED__INIT;
    m.order_id = (char *)order;
    m.customer_id = (char *)customer;
    m.total_cents = 500;
    m.currency = "EUR";
    append_msg(stream, order, &m, "placed");
}

/* OrderCompleted into order-<order>; step makes each delivery a new event. */
static uint64_t completed(const char *order, const char *step)
{
    char stream[OMS_NAME_BYTES_MAX];
    snprintf(stream, sizeof stream, "order-%s", order);
    Oms__V1__OrderCompleted m = OMS__V1__ORDER_COMPLETED__INIT;
    m.order_id = (char *)order;
    m.shipment_id = "sh_x";
    return append_msg(stream, order, &m, step);
}

static uint64_t failed(const char *order)
{
    char stream[OMS_NAME_BYTES_MAX];
    snprintf(stream, sizeof stream, "order-%s", order);
    Oms__V1__OrderFailed m = OMS__V1__ORDER_FAILED__INIT;
    m.order_id = (char *)order;
    m.reason = "payment_declined";
    return append_msg(stream, order, &m, "failed");
}

/* ==== reading and waiting =============================================== */

/* Every event of stream (these streams are short: one page). A missing
 * stream reads as empty. */
static void read_all(const char *stream, evs_read_result_t *res)
{
    evs_read_t rq = {.stream = stream};
    int rc = evs_read(fx.conn, &rq, res);
    if (rc == EVS_ESTREAM_NOT_FOUND) {
        memset(res, 0, sizeof *res);
        return;
    }
    ck_assert_msg(rc == 0, "read %s: %s", stream, evs_strerror(rc));
    ck_assert_msg(res->end, "%s is longer than a page", stream);
}

static size_t count_of(const char *stream)
{
    evs_read_result_t res;
    read_all(stream, &res);
    size_t n = res.count;
    evs_read_result_free(&res);
    return n;
}

typedef struct {
    const char *stream;
    size_t n;
} count_wait_t;

static bool count_reached(void *arg)
{
    const count_wait_t *c = arg;
    return count_of(c->stream) >= c->n;
}

/* Waits until stream has at least n events. */
static void wait_count(const char *stream, size_t n)
{
    count_wait_t c = {stream, n};
    ck_assert_msg(oms_wait_until(count_reached, &c, WAIT_MS), "%s never had %zu events", stream,
                  n);
}

typedef struct {
    const char *group;
    uint64_t position;
} acked_wait_t;

static bool acked(void *arg)
{
    const acked_wait_t *a = arg;
    evs_group_info_t info;
    if (evs_group_info(fx.conn, a->group, &info) != 0)
        return false;
    bool done = info.checkpoint > a->position;
    evs_group_info_free(&info);
    return done;
}

/* Waits until group has finished with the event at position: the way to
 * know a service decided to write nothing, and that its metrics count the
 * event (a counter moves after the answer is in the store, so seeing the
 * answer is not enough). */
static void wait_handled(const char *group, uint64_t position)
{
    acked_wait_t a = {group, position};
    ck_assert_msg(oms_wait_until(acked, &a, WAIT_MS), "%s never got past %llu", group,
                  (unsigned long long)position);
}

/* Event i of stream, decoded as desc (its type is asserted). Free it with
 * protobuf_c_message_free_unpacked(). *id (may be NULL) gets its id. */
static void *event_at(const char *stream, size_t i, const ProtobufCMessageDescriptor *desc,
                      uint8_t id[EVS_ID_BYTES])
{
    evs_read_result_t res;
    read_all(stream, &res);
    ck_assert_msg(res.count > i, "%s has %zu events, want event %zu", stream, res.count, i);
    const evs_recorded_event_t *ev = &res.events[i];
    ck_assert_str_eq(ev->type, desc->short_name);
    ck_assert_int_eq(ev->version, (int64_t)i);
    if (id)
        memcpy(id, ev->id, EVS_ID_BYTES);
    void *m = protobuf_c_message_unpack(desc, NULL, ev->data_len, ev->data);
    ck_assert_ptr_nonnull(m);
    evs_read_result_free(&res);
    return m;
}

static void msg_free(void *m)
{
    protobuf_c_message_free_unpacked(m, NULL);
}

static void assert_id(const uint8_t id[EVS_ID_BYTES], const char *order, const char *step)
{
    uint8_t want[EVS_ID_BYTES];
    oms_event_id(want, order, step);
    ck_assert_mem_eq(id, want, EVS_ID_BYTES);
}

/* The value of one series ("name{labels}") on the /metrics of the
 * program serving metrics on port, or -1 when it is not there. */
static double metric_at(uint16_t port, const char *series)
{
    oms_curl_response_t res;
    ck_assert_int_eq(oms_curl_once("127.0.0.1", port, 5000, "GET", "/metrics", NULL, NULL, 0, &res),
                     0);
    ck_assert_int_eq(res.status, 200);
    double v = -1;
    size_t len = strlen(series);
    for (const char *p = res.body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, len) == 0 && p[len] == ' ') {
            v = strtod(p + len + 1, NULL);
            break;
        }
    oms_curl_response_free(&res);
    return v;
}

/* The same on the service under test. */
static double metric(const char *series)
{
    return metric_at(fx.svc.port, series);
}

/* ==== oms-payment ======================================================= */

START_TEST(payment_charges_an_approved_card_once_with_its_charge_id)
{
    start("oms-payment", NULL);
    uint64_t pos = pay("p1", "c-1", 1234, "tok_visa", 1);
    wait_handled("oms-payment", pos);
    uint8_t id[EVS_ID_BYTES];
    Oms__V1__PaymentProcessed *e =
        event_at("payment-p1", 0, &oms__v1__payment_processed__descriptor, id);
    ck_assert_str_eq(e->order_id, "p1");
    ck_assert_str_eq(e->customer_id, "c-1");
    ck_assert_int_eq(e->amount_cents, 1234);
    ck_assert_str_eq(e->currency, "EUR");
    ck_assert_str_eq(e->charge_id, "ch_p1");
    assert_id(id, "p1", "charge");
    msg_free(e);
    ck_assert_double_eq(metric("oms_payments_total{service=\"payment\",result=\"processed\"}"), 1);
    ck_assert_double_eq(metric("oms_payment_cents_total{service=\"payment\",kind=\"charged\"}"),
                        1234);
}
END_TEST

START_TEST(payment_declines_a_decline_token)
{
    start("oms-payment", NULL);
    uint64_t pos = pay("p2", "c-1", 500, "tok_decline_insufficient", 1);
    wait_handled("oms-payment", pos);
    Oms__V1__PaymentFailed *e = event_at("payment-p2", 0, &oms__v1__payment_failed__descriptor,
                                         NULL);
    ck_assert_str_eq(e->reason, "card_declined");
    ck_assert_int_eq(e->amount_cents, 500);
    msg_free(e);
    ck_assert_double_eq(metric("oms_payments_total{service=\"payment\",result=\"declined\"}"), 1);
}
END_TEST

START_TEST(payment_refuses_amounts_over_the_customer_limit_and_vips_get_ten_times)
{
    start("oms-payment", (const char *[]){"--customer-limit-cents", "1000", NULL});
    pay("l1", "c-1", 1001, "tok_visa", 1);
    pay("l2", "c-1", 1000, "tok_visa", 1);
    pay("l3", "vip-7", 10000, "tok_visa", 1);
    uint64_t pos = pay("l4", "vip-7", 10001, "tok_visa", 1);
    wait_handled("oms-payment", pos);
    const char *streams[] = {"payment-l1", "payment-l2", "payment-l3", "payment-l4"};
    const bool limited[] = {true, false, false, true};
    for (int i = 0; i < 4; i++) {
        evs_read_result_t res;
        read_all(streams[i], &res);
        ck_assert_str_eq(res.events[0].type, limited[i] ? "PaymentFailed" : "PaymentProcessed");
        evs_read_result_free(&res);
    }
    Oms__V1__PaymentFailed *e = event_at("payment-l1", 0, &oms__v1__payment_failed__descriptor,
                                         NULL);
    ck_assert_str_eq(e->reason, "limit_exceeded");
    msg_free(e);
    ck_assert_double_eq(
        metric("oms_payments_total{service=\"payment\",result=\"limit_exceeded\"}"), 2);
}
END_TEST

START_TEST(payment_with_a_timeout_token_writes_nothing)
{
    start("oms-payment", NULL);
    uint64_t pos = pay("t1", "c-1", 700, "tok_timeout", 1);
    wait_handled("oms-payment", pos);
    ck_assert_uint_eq(count_of("payment-t1"), 0);
}
END_TEST

START_TEST(refund_after_a_charge_refunds_the_charged_amount_once)
{
    start("oms-payment", NULL);
    pay("r1", "c-1", 2500, "tok_visa", 1);
    wait_count("payment-r1", 1);
    refund("r1", 2500, 1);
    wait_count("payment-r1", 2);
    uint8_t id[EVS_ID_BYTES];
    Oms__V1__PaymentRefunded *e =
        event_at("payment-r1", 1, &oms__v1__payment_refunded__descriptor, id);
    ck_assert_int_eq(e->amount_cents, 2500);
    ck_assert_str_eq(e->charge_id, "ch_r1");
    ck_assert_str_eq(e->reason, "out_of_stock");
    assert_id(id, "r1", "refund");
    msg_free(e);
    uint64_t pos = refund("r1", 2500, 2); /* re-issued after a timeout */
    wait_handled("oms-payment", pos);
    ck_assert_uint_eq(count_of("payment-r1"), 2);
    ck_assert_double_eq(metric("oms_payment_cents_total{service=\"payment\",kind=\"refunded\"}"),
                        2500);
}
END_TEST

START_TEST(refund_before_any_charge_voids_and_blocks_a_late_charge)
{
    start("oms-payment", NULL);
    refund("v1", 900, 1);
    wait_count("payment-v1", 1);
    Oms__V1__PaymentRefunded *e =
        event_at("payment-v1", 0, &oms__v1__payment_refunded__descriptor, NULL);
    ck_assert_int_eq(e->amount_cents, 0);
    ck_assert_str_eq(e->reason, "voided");
    msg_free(e);
    uint64_t pos = pay("v1", "c-1", 900, "tok_visa", 1); /* the late charge */
    wait_handled("oms-payment", pos);
    ck_assert_uint_eq(count_of("payment-v1"), 1);
    ck_assert_double_eq(metric("oms_payments_total{service=\"payment\",result=\"voided\"}"), 1);
    ck_assert_double_eq(metric("oms_payments_total{service=\"payment\",result=\"processed\"}"), 0);
}
END_TEST

START_TEST(refund_after_a_decline_answers_with_nothing_refunded)
{
    start("oms-payment", NULL);
    pay("d1", "c-1", 900, "tok_decline", 1);
    wait_count("payment-d1", 1);
    refund("d1", 900, 1);
    wait_count("payment-d1", 2);
    Oms__V1__PaymentRefunded *e =
        event_at("payment-d1", 1, &oms__v1__payment_refunded__descriptor, NULL);
    ck_assert_int_eq(e->amount_cents, 0);
    msg_free(e);
}
END_TEST

START_TEST(a_payment_command_delivered_twice_charges_once)
{
    start("oms-payment", NULL);
    pay("twice", "c-1", 4200, "tok_visa", 1);
    uint64_t pos = pay("twice", "c-1", 4200, "tok_visa", 2);
    wait_handled("oms-payment", pos);
    ck_assert_uint_eq(count_of("payment-twice"), 1);
    ck_assert_double_eq(metric("oms_payment_cents_total{service=\"payment\",kind=\"charged\"}"),
                        4200);
    stop_cleanly();
}
END_TEST

/* ==== oms-inventory ===================================================== */

static const char catalogue_json[] =
    "[{\"sku\":\"a\",\"quantity\":10},{\"sku\":\"b\",\"quantity\":5},"
    "{\"sku\":\"few\",\"quantity\":25},{\"sku\":\"none\",\"quantity\":0}]";

static void inventory_start(void)
{
    snprintf(fx.file, sizeof fx.file, "%s/catalogue.json", fx.dir);
    FILE *f = fopen(fx.file, "w");
    ck_assert_ptr_nonnull(f);
    fputs(catalogue_json, f);
    fclose(f);
    start("oms-inventory", (const char *[]){"--catalogue", fx.file, NULL});
}

/* Folds stock-<sku>: units added - reserved + released, and checks that
 * the versions run 0, 1, 2... */
static int64_t stock_available(const char *sku, size_t *events)
{
    char stream[OMS_NAME_BYTES_MAX];
    snprintf(stream, sizeof stream, "stock-%s", sku);
    evs_read_result_t res;
    read_all(stream, &res);
    int64_t available = 0;
    for (size_t i = 0; i < res.count; i++) {
        const evs_recorded_event_t *ev = &res.events[i];
        ck_assert_int_eq(ev->version, (int64_t)i);
        if (strcmp(ev->type, "StockAdded") == 0) {
            Oms__V1__StockAdded *m = oms__v1__stock_added__unpack(NULL, ev->data_len, ev->data);
            available += m->quantity;
            msg_free(m);
        } else if (strcmp(ev->type, "StockReserved") == 0) {
            Oms__V1__StockReserved *m =
                oms__v1__stock_reserved__unpack(NULL, ev->data_len, ev->data);
            available -= m->quantity;
            msg_free(m);
        } else {
            Oms__V1__StockReleased *m =
                oms__v1__stock_released__unpack(NULL, ev->data_len, ev->data);
            available += m->quantity;
            msg_free(m);
        }
        ck_assert_int_ge(available, 0);
    }
    if (events)
        *events = res.count;
    evs_read_result_free(&res);
    return available;
}

static double gauge_of(const char *sku)
{
    char series[128];
    snprintf(series, sizeof series, "oms_stock_available{service=\"inventory\",sku=\"%s\"}", sku);
    return metric(series);
}

START_TEST(inventory_seeds_the_builtin_catalogue_once)
{
    start("oms-inventory", NULL);
    size_t events;
    ck_assert_int_eq(stock_available("sku-0001", &events), 1000000);
    ck_assert_uint_eq(events, 1);
    ck_assert_int_eq(stock_available("sku-0100", &events), 1000000);
    ck_assert_int_eq(stock_available("sku-oos", &events), 0);
    ck_assert_uint_eq(events, 1);
    ck_assert_uint_eq(count_of("stock-sku-0101"), 0);
    uint8_t id[EVS_ID_BYTES];
    Oms__V1__StockAdded *e = event_at("stock-sku-0042", 0, &oms__v1__stock_added__descriptor, id);
    ck_assert_str_eq(e->reason, "seed");
    assert_id(id, "sku-0042", "seed");
    msg_free(e);
    ck_assert_double_eq(gauge_of("sku-0042"), 1000000);
    reserve("oos", (items_t){{"sku-oos"}, {1}, 1}, 1);
    wait_count("inventory-oos", 1);
    Oms__V1__InventoryReservationFailed *f =
        event_at("inventory-oos", 0, &oms__v1__inventory_reservation_failed__descriptor, NULL);
    ck_assert_str_eq(f->reason, "out_of_stock");
    msg_free(f);
    stop_cleanly(); /* a second start seeds nothing */
    ck_assert_int_eq(oms_proc_restart(&fx.svc), 0);
    stock_available("sku-0001", &events);
    ck_assert_uint_eq(events, 1);
}
END_TEST

START_TEST(reserve_then_release_moves_exact_units_in_the_stock_streams)
{
    inventory_start();
    uint64_t pos = reserve("o1", (items_t){{"a", "b", "a"}, {3, 2, 1}, 3}, 1);
    wait_handled("oms-inventory", pos);
    uint8_t id[EVS_ID_BYTES];
    Oms__V1__InventoryReserved *r =
        event_at("inventory-o1", 0, &oms__v1__inventory_reserved__descriptor, id);
    ck_assert_uint_eq(r->n_items, 3);
    assert_id(id, "o1", "reserve");
    msg_free(r);
    Oms__V1__StockReserved *sr = event_at("stock-a", 1, &oms__v1__stock_reserved__descriptor, id);
    ck_assert_uint_eq(sr->quantity, 4); /* the two lines of a, merged */
    ck_assert_str_eq(sr->order_id, "o1");
    assert_id(id, "o1", "reserve/a");
    msg_free(sr);
    ck_assert_int_eq(stock_available("a", NULL), 6);
    ck_assert_int_eq(stock_available("b", NULL), 3);
    ck_assert_double_eq(gauge_of("a"), 6);

    pos = release("o1", 1);
    wait_handled("oms-inventory", pos);
    Oms__V1__InventoryReleased *rel =
        event_at("inventory-o1", 1, &oms__v1__inventory_released__descriptor, NULL);
    ck_assert_uint_eq(rel->n_items, 2);
    ck_assert_str_eq(rel->items[0]->sku, "a");
    ck_assert_uint_eq(rel->items[0]->quantity, 4);
    msg_free(rel);
    size_t events;
    ck_assert_int_eq(stock_available("a", &events), 10);
    ck_assert_uint_eq(events, 3);
    ck_assert_int_eq(stock_available("b", NULL), 5);
    ck_assert_double_eq(gauge_of("a"), 10);

    pos = release("o1", 2); /* re-issued: nothing more */
    wait_handled("oms-inventory", pos);
    ck_assert_uint_eq(count_of("inventory-o1"), 2);
    ck_assert_uint_eq(count_of("stock-a"), 3);
    ck_assert_double_eq(metric("oms_inventory_releases_total{service=\"inventory\"}"), 1);
}
END_TEST

START_TEST(reserve_beyond_the_stock_fails_out_of_stock_and_changes_nothing)
{
    inventory_start();
    uint64_t pos = reserve("o2", (items_t){{"a", "b"}, {1, 6}, 2}, 1);
    wait_handled("oms-inventory", pos);
    Oms__V1__InventoryReservationFailed *f =
        event_at("inventory-o2", 0, &oms__v1__inventory_reservation_failed__descriptor, NULL);
    ck_assert_str_eq(f->reason, "out_of_stock");
    ck_assert_str_eq(f->sku, "b");
    ck_assert_uint_eq(f->requested, 6);
    ck_assert_int_eq(f->available, 5);
    msg_free(f);
    ck_assert_uint_eq(count_of("stock-a"), 1);
    ck_assert_uint_eq(count_of("stock-b"), 1);
    ck_assert_double_eq(
        metric("oms_inventory_reservations_total{service=\"inventory\",result=\"out_of_stock\"}"),
        1);
}
END_TEST

START_TEST(reserve_of_an_unknown_sku_fails_unknown_sku)
{
    inventory_start();
    reserve("o3", (items_t){{"a", "nosuch"}, {1, 1}, 2}, 1);
    wait_count("inventory-o3", 1);
    Oms__V1__InventoryReservationFailed *f =
        event_at("inventory-o3", 0, &oms__v1__inventory_reservation_failed__descriptor, NULL);
    ck_assert_str_eq(f->reason, "unknown_sku");
    ck_assert_str_eq(f->sku, "nosuch");
    msg_free(f);
    ck_assert_uint_eq(count_of("stock-a"), 1);
    ck_assert_uint_eq(count_of("stock-nosuch"), 0);
}
END_TEST

START_TEST(release_before_reserve_blocks_a_late_reservation)
{
    inventory_start();
    release("o4", 1);
    wait_count("inventory-o4", 1);
    Oms__V1__InventoryReleased *rel =
        event_at("inventory-o4", 0, &oms__v1__inventory_released__descriptor, NULL);
    ck_assert_uint_eq(rel->n_items, 0);
    msg_free(rel);
    uint64_t pos = reserve("o4", (items_t){{"a"}, {2}, 1}, 1);
    wait_handled("oms-inventory", pos);
    ck_assert_uint_eq(count_of("inventory-o4"), 1);
    ck_assert_int_eq(stock_available("a", NULL), 10);
}
END_TEST

/* StockAdded(reason "restock") of units to stock-<sku> at expected_version:
 * a change of the SKU that no inventory instance made. */
static void restock(const char *sku, uint32_t units, int64_t expected_version)
{
    char stream[OMS_NAME_BYTES_MAX];
    snprintf(stream, sizeof stream, "stock-%s", sku);
    Oms__V1__StockAdded m = OMS__V1__STOCK_ADDED__INIT;
    m.sku = (char *)sku;
    m.quantity = units;
    m.reason = "restock";
    append_at(stream, expected_version, sku, &m, "restock");
}

/* What one inventory instance reports of its reservations. */
typedef struct {
    double answered;  /* reservation answers it wrote */
    double reserved;  /* of which InventoryReserved */
    double conflicts; /* stock version conflicts it retried */
} inv_counts_t;

static inv_counts_t inventory_counts(uint16_t port)
{
    const char *reserved = "oms_inventory_reservations_total{service=\"inventory\","
                           "result=\"reserved\"}";
    const char *refused = "oms_inventory_reservations_total{service=\"inventory\","
                          "result=\"out_of_stock\"}";
    inv_counts_t n = {.reserved = metric_at(port, reserved),
                      .conflicts = metric_at(port, "oms_inventory_conflicts_total{service="
                                                   "\"inventory\"}")};
    n.answered = n.reserved + metric_at(port, refused);
    return n;
}

/* RACE_ORDERS reservations of one unit of "few", appended in one batch so
 * the workers of both instances get them at once. Returns the position
 * of the last. */
static uint64_t race_reservations_append(void)
{
    static char orders[RACE_ORDERS][16], streams[RACE_ORDERS][32];
    evs_event_t events[RACE_ORDERS];
    evs_stream_append_t sa[RACE_ORDERS];
    Oms__V1__OrderItem item = OMS__V1__ORDER_ITEM__INIT, *ptrs[1] = {&item};
    item.sku = "few";
    item.quantity = 1;
    for (int i = 0; i < RACE_ORDERS; i++) {
        snprintf(orders[i], sizeof orders[i], "race%d", i);
        snprintf(streams[i], sizeof streams[i], "saga-%s", orders[i]);
        Oms__V1__InventoryRequested m = OMS__V1__INVENTORY_REQUESTED__INIT;
        m.order_id = orders[i];
        m.n_items = 1;
        m.items = ptrs;
        m.attempt = 1;
        ck_assert_int_eq(oms_event_make(&events[i], &m, orders[i], "reserve-1"), 0);
        sa[i] = (evs_stream_append_t){streams[i], EVS_EXPECT_ANY, &events[i], 1};
    }
    evs_append_result_t res;
    ck_assert_int_eq(evs_append(fx.conn, sa, RACE_ORDERS, &res), 0);
    for (int i = 0; i < RACE_ORDERS; i++)
        oms_event_free_data(&events[i]);
    ck_assert_uint_eq(res.event_count, RACE_ORDERS);
    return res.first_position + RACE_ORDERS - 1;
}

START_TEST(concurrent_reservations_never_oversell)
{
    /* Two instances in the group race each other to version conflicts,
     * which may or may not happen. One is certain: a restock written
     * behind both instances' backs leaves each one's map at the seed's
     * version, so the first reservation each instance tries is written at
     * a stale version and conflicts; it must catch up (finding the
     * restocked units) and try again. */
    inventory_start();
    oms_proc_t second;
    ck_assert_int_eq(oms_proc_start(&second, "oms-inventory", fx.srv.port, fx.dir, fx.args), 0);
    restock("few", RACE_RESTOCK_UNITS, 0); /* version 0 is the seed */
    int64_t t0 = oms_mono_ns();
    uint64_t last = race_reservations_append();
    /* Every command handled: each order has its one answer, and no later
     * one can come; the counters include every decision. */
    wait_handled("oms-inventory", last);
    double answered_ms = (double)(oms_mono_ns() - t0) / 1e6;
    int reserved = 0, refused = 0;
    for (int i = 0; i < RACE_ORDERS; i++) {
        char stream[OMS_NAME_BYTES_MAX];
        snprintf(stream, sizeof stream, "inventory-race%d", i);
        evs_read_result_t r;
        read_all(stream, &r);
        ck_assert_msg(r.count == 1, "%s has %zu answers", stream, r.count);
        reserved += strcmp(r.events[0].type, "InventoryReserved") == 0;
        refused += strcmp(r.events[0].type, "InventoryReservationFailed") == 0;
        evs_read_result_free(&r);
    }
    const inv_counts_t n[2] = {inventory_counts(fx.svc.port), inventory_counts(second.port)};
    fprintf(stderr, "%d reservations of one SKU by 2 instances handled in %.1f ms; "
            "answers %.0f + %.0f, version conflicts %.0f + %.0f\n",
            RACE_ORDERS, answered_ms, n[0].answered, n[1].answered, n[0].conflicts,
            n[1].conflicts);
    const int units = RACE_UNITS + RACE_RESTOCK_UNITS;
    ck_assert_int_eq(reserved, units);
    ck_assert_int_eq(refused, RACE_ORDERS - units);
    ck_assert_double_eq(n[0].answered + n[1].answered, RACE_ORDERS);
    ck_assert_double_eq(n[0].reserved + n[1].reserved, units);
    for (int k = 0; k < 2; k++)
        ck_assert_msg(n[k].answered == 0 || n[k].conflicts >= 1,
                      "instance %d answered %.0f reservations on a stale map without a version "
                      "conflict", k, n[k].answered);
    size_t events_in_stock;
    ck_assert_int_eq(stock_available("few", &events_in_stock), 0);
    ck_assert_uint_eq(events_in_stock, 2 + (size_t)units); /* seed, restock, reservations */
    oms_proc_kill(&second);
}
END_TEST

START_TEST(inventory_killed_and_restarted_reloads_its_stock_without_reseeding)
{
    inventory_start();
    reserve("k1", (items_t){{"a"}, {3}, 1}, 1);
    wait_count("inventory-k1", 1);
    oms_proc_kill(&fx.svc);
    ck_assert_int_eq(oms_proc_restart(&fx.svc), 0);
    size_t events;
    ck_assert_int_eq(stock_available("a", &events), 7);
    ck_assert_uint_eq(events, 2); /* StockAdded once, StockReserved */
    ck_assert_double_eq(gauge_of("a"), 7);
    reserve("k2", (items_t){{"a"}, {8}, 1}, 1);
    wait_count("inventory-k2", 1);
    Oms__V1__InventoryReservationFailed *f =
        event_at("inventory-k2", 0, &oms__v1__inventory_reservation_failed__descriptor, NULL);
    ck_assert_int_eq(f->available, 7);
    msg_free(f);
    reserve("k3", (items_t){{"a"}, {7}, 1}, 1);
    wait_count("inventory-k3", 1);
    ck_assert_uint_eq(count_of("stock-a"), 3);
    ck_assert_int_eq(stock_available("a", NULL), 0);
}
END_TEST

/* ==== oms-shipping ====================================================== */

START_TEST(shipping_ships_with_a_shipment_id)
{
    start("oms-shipping", NULL);
    uint64_t pos = ship("s1", "DE", 1);
    wait_handled("oms-shipping", pos);
    uint8_t id[EVS_ID_BYTES];
    Oms__V1__OrderShipped *e = event_at("shipment-s1", 0, &oms__v1__order_shipped__descriptor, id);
    ck_assert_str_eq(e->shipment_id, "sh_s1");
    ck_assert_str_eq(e->carrier, "evpost");
    ck_assert_uint_eq(e->n_items, 1);
    ck_assert_str_eq(e->items[0]->sku, "sku-0001");
    assert_id(id, "s1", "ship");
    msg_free(e);
    ck_assert_double_eq(metric("oms_shipments_total{service=\"shipping\",result=\"shipped\"}"), 1);
}
END_TEST

START_TEST(shipping_rejects_a_failing_country)
{
    start("oms-shipping", NULL);
    ship("s2", "ZZ", 1);
    wait_count("shipment-s2", 1);
    Oms__V1__ShipmentFailed *e =
        event_at("shipment-s2", 0, &oms__v1__shipment_failed__descriptor, NULL);
    ck_assert_str_eq(e->reason, "carrier_rejected");
    msg_free(e);
}
END_TEST

START_TEST(shipping_fails_every_nth_request)
{
    start("oms-shipping", (const char *[]){"--fail-every", "3", "--fail-countries", "", NULL});
    const char *orders[] = {"n1", "n2", "n3", "n4", "n5", "n6"};
    for (int i = 0; i < 6; i++)
        ship(orders[i], "ZZ", 1); /* ZZ fails no more: the list is empty */
    int failures = 0;
    for (int i = 0; i < 6; i++) {
        char stream[OMS_NAME_BYTES_MAX];
        snprintf(stream, sizeof stream, "shipment-%s", orders[i]);
        wait_count(stream, 1);
        evs_read_result_t r;
        read_all(stream, &r);
        failures += strcmp(r.events[0].type, "ShipmentFailed") == 0;
        evs_read_result_free(&r);
    }
    ck_assert_int_eq(failures, 2);
}
END_TEST

START_TEST(shipping_to_a_hanging_country_answers_nothing_until_cancelled)
{
    start("oms-shipping", NULL);
    uint64_t pos = ship("h1", "TT", 1);
    wait_handled("oms-shipping", pos);
    ck_assert_uint_eq(count_of("shipment-h1"), 0);
    cancel("h1", 1);
    wait_count("shipment-h1", 1);
    uint8_t id[EVS_ID_BYTES];
    Oms__V1__ShipmentCancelled *e =
        event_at("shipment-h1", 0, &oms__v1__shipment_cancelled__descriptor, id);
    ck_assert_str_eq(e->reason, "shipping_timeout");
    assert_id(id, "h1", "cancel-shipment");
    msg_free(e);
    pos = ship("h1", "DE", 2); /* a late re-issue does not ship a cancelled order */
    wait_handled("oms-shipping", pos);
    ck_assert_uint_eq(count_of("shipment-h1"), 1);
    ck_assert_double_eq(metric("oms_shipments_total{service=\"shipping\",result=\"cancelled\"}"),
                        1);
}
END_TEST

START_TEST(cancel_after_shipping_leaves_the_shipment_standing)
{
    start("oms-shipping", NULL);
    ship("c1", "FR", 1);
    wait_count("shipment-c1", 1);
    uint64_t pos = cancel("c1", 1);
    wait_handled("oms-shipping", pos);
    ck_assert_uint_eq(count_of("shipment-c1"), 1);
    ck_assert_double_eq(metric("oms_shipments_total{service=\"shipping\",result=\"cancelled\"}"),
                        0);
    stop_cleanly();
}
END_TEST

/* ==== oms-notification ================================================== */

static void notification_start(void)
{
    snprintf(fx.file, sizeof fx.file, "%s/out/box/outbox.jsonl", fx.dir);
    start("oms-notification", (const char *[]){"--outbox", fx.file, NULL});
}

/* The outbox lines of order (parsed); returns how many, the last in *last
 * (json_decref it; may be NULL). */
static int outbox_lines(const char *order, json_t **last)
{
    FILE *f = fopen(fx.file, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    int n = 0;
    if (last)
        *last = NULL;
    while (fgets(line, sizeof line, f)) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        ck_assert_msg(j != NULL, "outbox line is not JSON: %s", line);
        if (strcmp(json_string_value(json_object_get(j, "order_id")), order) != 0) {
            json_decref(j);
            continue;
        }
        n++;
        if (last) {
            json_decref(*last);
            *last = j;
        } else {
            json_decref(j);
        }
    }
    fclose(f);
    return n;
}

START_TEST(notification_writes_one_outbox_line_and_one_event_per_order)
{
    notification_start();
    placed("n1", "cust-9");
    uint64_t pos = completed("n1", "completed");
    wait_handled("oms-notification", pos);
    uint8_t id[EVS_ID_BYTES];
    Oms__V1__NotificationSent *e =
        event_at("notification-n1", 0, &oms__v1__notification_sent__descriptor, id);
    ck_assert_str_eq(e->customer_id, "cust-9");
    ck_assert_str_eq(e->template_, "order_completed");
    assert_id(id, "n1", "notify");
    json_t *j;
    ck_assert_int_eq(outbox_lines("n1", &j), 1);
    char hex[2 * EVS_ID_BYTES + 1];
    util_hex(id, EVS_ID_BYTES, hex);
    ck_assert_str_eq(json_string_value(json_object_get(j, "notification_id")), hex);
    ck_assert_str_eq(json_string_value(json_object_get(j, "customer_id")), "cust-9");
    ck_assert_str_eq(json_string_value(json_object_get(j, "template")), "order_completed");
    ck_assert_str_eq(json_string_value(json_object_get(j, "message")), e->message);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "time")));
    json_decref(j);
    msg_free(e);
    ck_assert_double_eq(
        metric("oms_notifications_total{service=\"notification\",template=\"order_completed\"}"),
        1);
}
END_TEST

START_TEST(notification_of_a_failed_order_uses_the_failed_template)
{
    notification_start();
    placed("n2", "cust-2");
    failed("n2");
    wait_count("notification-n2", 1);
    Oms__V1__NotificationSent *e =
        event_at("notification-n2", 0, &oms__v1__notification_sent__descriptor, NULL);
    ck_assert_str_eq(e->template_, "order_failed");
    ck_assert_ptr_nonnull(strstr(e->message, "payment_declined"));
    msg_free(e);
    ck_assert_int_eq(outbox_lines("n2", NULL), 1);
}
END_TEST

START_TEST(notification_delivered_again_or_after_a_restart_is_not_repeated)
{
    notification_start();
    placed("n3", "cust-3");
    completed("n3", "completed");
    wait_count("notification-n3", 1);
    uint64_t pos = completed("n3", "completed-again"); /* a second delivery of the verdict */
    wait_handled("oms-notification", pos);
    ck_assert_int_eq(outbox_lines("n3", NULL), 1);
    ck_assert_uint_eq(count_of("notification-n3"), 1);
    /* A restart resumes from the group's checkpoint; the order is not
     * notified again, and new orders still are. */
    stop_cleanly();
    ck_assert_int_eq(oms_proc_restart(&fx.svc), 0);
    placed("n4", "cust-4");
    completed("n4", "completed");
    wait_count("notification-n4", 1);
    ck_assert_int_eq(outbox_lines("n3", NULL), 1);
    ck_assert_uint_eq(count_of("notification-n3"), 1);
    ck_assert_int_eq(outbox_lines("n4", NULL), 1);
}
END_TEST

/* ==== bad payloads, every service ======================================= */

typedef struct {
    const char *program;
    const char *group;
    const char *category; /* where its commands go */
    const char *type;     /* a command type of its own */
} service_case_t;

static const service_case_t services[] = {
    {"oms-payment", "oms-payment", "saga", "PaymentRequested"},
    {"oms-inventory", "oms-inventory", "saga", "InventoryRequested"},
    {"oms-shipping", "oms-shipping", "saga", "ShipmentRequested"},
    {"oms-notification", "oms-notification", "order", "OrderCompleted"},
};

/* A good command for service i of order, and the stream its answer goes to. */
static void good_command(int i, const char *order, char answer[OMS_NAME_BYTES_MAX])
{
    switch (i) {
    case 0:
        pay(order, "c-1", 100, "tok_visa", 1);
        snprintf(answer, OMS_NAME_BYTES_MAX, "payment-%s", order);
        break;
    case 1:
        reserve(order, (items_t){{"sku-0001"}, {1}, 1}, 1);
        snprintf(answer, OMS_NAME_BYTES_MAX, "inventory-%s", order);
        break;
    case 2:
        ship(order, "DE", 1);
        snprintf(answer, OMS_NAME_BYTES_MAX, "shipment-%s", order);
        break;
    default:
        placed(order, "c-1");
        completed(order, "completed");
        snprintf(answer, OMS_NAME_BYTES_MAX, "notification-%s", order);
        break;
    }
}

START_TEST(bad_payloads_are_parked_and_the_service_keeps_running)
{
    const service_case_t *sc = &services[_i];
    if (_i == 3)
        notification_start();
    else
        start(sc->program, NULL);
    char stream[64], parked[64];
    snprintf(stream, sizeof stream, "%s-bad1", sc->category);
    snprintf(parked, sizeof parked, "$parked-%s", sc->group);
    /* Garbage bytes, an empty payload (no order_id) and an order_id that is
     * not the stream's key. */
    static const uint8_t garbage[] = {0x0a, 0x10, 'x'}; /* field 1: 16 bytes, has 1 */
    Oms__V1__OrderCompleted other = OMS__V1__ORDER_COMPLETED__INIT; /* order_id is field 1 */
    other.order_id = "someone-else";
    uint8_t other_bytes[64];
    size_t other_len = protobuf_c_message_pack(&other.base, other_bytes);
    evs_event_t evs[3] = {
        {.type = sc->type, .data = garbage, .data_len = sizeof garbage},
        {.type = sc->type},
        {.type = sc->type, .data = other_bytes, .data_len = other_len},
    };
    for (int k = 0; k < 3; k++)
        evs_id_random(evs[k].id);
    evs_stream_append_t sa = {stream, EVS_EXPECT_ANY, evs, 3};
    ck_assert_int_eq(evs_append(fx.conn, &sa, 1, NULL), 0);
    wait_count(parked, 3);
    char answer[OMS_NAME_BYTES_MAX];
    good_command(_i, "good1", answer);
    wait_count(answer, 1);
    ck_assert_int_gt(fx.svc.pid, 0);
    ck_assert_uint_eq(count_of("payment-bad1") + count_of("inventory-bad1") +
                          count_of("shipment-bad1") + count_of("notification-bad1"),
                      0);
}
END_TEST

/* ==== the suite ========================================================= */

static TCase *tcase_with_fixture(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *services_suite(void)
{
    Suite *s = suite_create("oms.services");
    TCase *pay_tc = tcase_with_fixture(s, "payment");
    tcase_add_test(pay_tc, payment_charges_an_approved_card_once_with_its_charge_id);
    tcase_add_test(pay_tc, payment_declines_a_decline_token);
    tcase_add_test(pay_tc, payment_refuses_amounts_over_the_customer_limit_and_vips_get_ten_times);
    tcase_add_test(pay_tc, payment_with_a_timeout_token_writes_nothing);
    tcase_add_test(pay_tc, refund_after_a_charge_refunds_the_charged_amount_once);
    tcase_add_test(pay_tc, refund_before_any_charge_voids_and_blocks_a_late_charge);
    tcase_add_test(pay_tc, refund_after_a_decline_answers_with_nothing_refunded);
    tcase_add_test(pay_tc, a_payment_command_delivered_twice_charges_once);
    TCase *inv_tc = tcase_with_fixture(s, "inventory");
    tcase_add_test(inv_tc, inventory_seeds_the_builtin_catalogue_once);
    tcase_add_test(inv_tc, reserve_then_release_moves_exact_units_in_the_stock_streams);
    tcase_add_test(inv_tc, reserve_beyond_the_stock_fails_out_of_stock_and_changes_nothing);
    tcase_add_test(inv_tc, reserve_of_an_unknown_sku_fails_unknown_sku);
    tcase_add_test(inv_tc, release_before_reserve_blocks_a_late_reservation);
    tcase_add_test(inv_tc, concurrent_reservations_never_oversell);
    tcase_add_test(inv_tc, inventory_killed_and_restarted_reloads_its_stock_without_reseeding);
    TCase *ship_tc = tcase_with_fixture(s, "shipping");
    tcase_add_test(ship_tc, shipping_ships_with_a_shipment_id);
    tcase_add_test(ship_tc, shipping_rejects_a_failing_country);
    tcase_add_test(ship_tc, shipping_fails_every_nth_request);
    tcase_add_test(ship_tc, shipping_to_a_hanging_country_answers_nothing_until_cancelled);
    tcase_add_test(ship_tc, cancel_after_shipping_leaves_the_shipment_standing);
    TCase *note_tc = tcase_with_fixture(s, "notification");
    tcase_add_test(note_tc, notification_writes_one_outbox_line_and_one_event_per_order);
    tcase_add_test(note_tc, notification_of_a_failed_order_uses_the_failed_template);
    tcase_add_test(note_tc, notification_delivered_again_or_after_a_restart_is_not_repeated);
    TCase *bad_tc = tcase_with_fixture(s, "bad payloads");
    tcase_add_loop_test(bad_tc, bad_payloads_are_parked_and_the_service_keeps_running, 0,
                        (int)(sizeof services / sizeof services[0]));
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(services_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed_count = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed_count == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
