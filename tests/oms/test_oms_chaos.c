/* test_oms_chaos.c -- kill -9 and restart each service, and evstored,
 * while orders are being placed. Afterwards every order has one verdict,
 * the one its kind leads to (or, when a crash held a step past its
 * timeout, the one that step's compensation leads to); no customer is
 * charged twice, or charged without a refund when the order failed; per
 * order and per SKU, stock reserved minus released equals stock shipped;
 * the read model catches up with every verdict; every order is notified
 * once in the store and at least once, whole and right, in the outbox. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oms.h"
#include "oms.pb-c.h"
#include "oms_system.h"
#include "util.h"

#define ORDERS 400
#define PLACE_INTERVAL_US 20000   /* about 50 orders/s: the run spans the kills */
#define PLACE_RETRY_MS 60000      /* one order's POST retries while oms-order is down */
#define FINAL_WAIT_MS 120000
#define SKUS_MAX 64
/* The saga's step timeouts. A command in a killed service's hands waits
 * for the group's ack timeout (10 s) before it is delivered again, so
 * the steps of a few orders time out and are compensated. */
#define STEP_TIMEOUT_MS 3000

static sys_t sys_;
static char ids[ORDERS][33];
static atomic_int placed;
static atomic_int place_errors;

static void *load_thread(void *arg)
{
    (void)arg;
    oms_curl_t *http = NULL;
    for (unsigned i = 0; i < ORDERS; i++) {
        int rc = sys_place(&http, sys_.procs[SYS_ORDER].port, i, sys_kind_of(i), PLACE_RETRY_MS,
                           ids[i]);
        if (rc != 0) {
            fprintf(stderr, "chaos: order %u could not be placed: %d\n", i, rc);
            atomic_fetch_add(&place_errors, 1);
        }
        atomic_fetch_add(&placed, 1);
        usleep(PLACE_INTERVAL_US);
    }
    oms_curl_close(http);
    return NULL;
}

static evs_conn_t *conn;

/* Per-SKU unit counts. */
typedef struct {
    char sku[32];
    int64_t units;
} sku_count_t;

typedef struct {
    sku_count_t e[SKUS_MAX];
    int n;
} skus_t;

static void sku_add(skus_t *s, const char *sku, int64_t units)
{
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->e[i].sku, sku) == 0) {
            s->e[i].units += units;
            return;
        }
    }
    ck_assert_int_lt(s->n, SKUS_MAX);
    snprintf(s->e[s->n].sku, sizeof s->e[s->n].sku, "%s", sku);
    s->e[s->n++].units = units;
}

static int64_t sku_get(const skus_t *s, const char *sku)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->e[i].sku, sku) == 0)
            return s->e[i].units;
    return 0;
}

static void add_items(skus_t *s, Oms__V1__OrderItem **items, size_t n, int sign)
{
    for (size_t k = 0; k < n; k++)
        sku_add(s, items[k]->sku, sign * (int64_t)items[k]->quantity);
}

static evs_read_result_t read_stream(const char *category, const char *id)
{
    char stream[80];
    snprintf(stream, sizeof stream, "%s-%.32s", category, id);
    evs_read_t req = {.stream = stream};
    evs_read_result_t res = {0};
    int rc = evs_read(conn, &req, &res);
    ck_assert_msg(rc == 0 || rc == EVS_ESTREAM_NOT_FOUND, "reading %s: %d", stream, rc);
    return res;
}

/* Money: at most one charge; a failed order's charge is refunded in full;
 * a completed order is charged and not refunded. */
static void check_money(int i, bool completed)
{
    evs_read_result_t res = read_stream("payment", ids[i]);
    int charges = 0, refunds = 0;
    int64_t charged = 0, refunded = 0;
    for (size_t k = 0; k < res.count; k++) {
        const evs_recorded_event_t *ev = &res.events[k];
        if (strcmp(ev->type, "PaymentProcessed") == 0) {
            Oms__V1__PaymentProcessed *p =
                oms__v1__payment_processed__unpack(NULL, ev->data_len, ev->data);
            charges++;
            charged += p->amount_cents;
            oms__v1__payment_processed__free_unpacked(p, NULL);
        } else if (strcmp(ev->type, "PaymentRefunded") == 0) {
            Oms__V1__PaymentRefunded *p =
                oms__v1__payment_refunded__unpack(NULL, ev->data_len, ev->data);
            refunds++;
            refunded += p->amount_cents;
            oms__v1__payment_refunded__free_unpacked(p, NULL);
        }
    }
    evs_read_result_free(&res);
    ck_assert_msg(charges <= 1, "order %d charged %d times", i, charges);
    ck_assert_msg(refunds <= 1, "order %d refunded %d times", i, refunds);
    if (completed)
        ck_assert_msg(charges == 1 && refunded == 0, "completed order %d: %d charges, %lld refunded",
                      i, charges, (long long)refunded);
    else
        ck_assert_msg(charged == refunded, "failed order %d: charged %lld, refunded %lld", i,
                      (long long)charged, (long long)refunded);
}

/* Stock of one order: reserved - released == shipped, per SKU. */
static void check_order_stock(int i, bool completed, skus_t *shipped_total)
{
    skus_t held = {0}, shipped = {0};
    evs_read_result_t inv = read_stream("inventory", ids[i]);
    for (size_t k = 0; k < inv.count; k++) {
        const evs_recorded_event_t *ev = &inv.events[k];
        if (strcmp(ev->type, "InventoryReserved") == 0) {
            Oms__V1__InventoryReserved *r =
                oms__v1__inventory_reserved__unpack(NULL, ev->data_len, ev->data);
            add_items(&held, r->items, r->n_items, 1);
            oms__v1__inventory_reserved__free_unpacked(r, NULL);
        } else if (strcmp(ev->type, "InventoryReleased") == 0) {
            Oms__V1__InventoryReleased *r =
                oms__v1__inventory_released__unpack(NULL, ev->data_len, ev->data);
            add_items(&held, r->items, r->n_items, -1);
            oms__v1__inventory_released__free_unpacked(r, NULL);
        }
    }
    evs_read_result_free(&inv);
    evs_read_result_t sh = read_stream("shipment", ids[i]);
    for (size_t k = 0; k < sh.count; k++) {
        const evs_recorded_event_t *ev = &sh.events[k];
        if (strcmp(ev->type, "OrderShipped") == 0) {
            Oms__V1__OrderShipped *s = oms__v1__order_shipped__unpack(NULL, ev->data_len, ev->data);
            add_items(&shipped, s->items, s->n_items, 1);
            add_items(shipped_total, s->items, s->n_items, 1);
            oms__v1__order_shipped__free_unpacked(s, NULL);
        }
    }
    evs_read_result_free(&sh);
    ck_assert_msg(completed || shipped.n == 0, "failed order %d was shipped", i);
    for (int k = 0; k < held.n; k++)
        ck_assert_msg(held.e[k].units == sku_get(&shipped, held.e[k].sku),
                      "order %d: %s held %lld, shipped %lld", i, held.e[k].sku,
                      (long long)held.e[k].units, (long long)sku_get(&shipped, held.e[k].sku));
    for (int k = 0; k < shipped.n; k++)
        ck_assert_int_eq(shipped.e[k].units, sku_get(&held, shipped.e[k].sku));
}

/* Per SKU over the stock streams: reserved - released == shipped. */
static void check_stock_streams(const skus_t *shipped_total)
{
    evs_read_t req = {.stream = "$ce-stock"};
    skus_t held = {0};
    for (;;) {
        evs_read_result_t res;
        ck_assert_int_eq(evs_read(conn, &req, &res), 0);
        for (size_t k = 0; k < res.count; k++) {
            const evs_recorded_event_t *ev = &res.events[k];
            if (strcmp(ev->type, "StockReserved") == 0) {
                Oms__V1__StockReserved *r =
                    oms__v1__stock_reserved__unpack(NULL, ev->data_len, ev->data);
                sku_add(&held, r->sku, r->quantity);
                oms__v1__stock_reserved__free_unpacked(r, NULL);
            } else if (strcmp(ev->type, "StockReleased") == 0) {
                Oms__V1__StockReleased *r =
                    oms__v1__stock_released__unpack(NULL, ev->data_len, ev->data);
                sku_add(&held, r->sku, -(int64_t)r->quantity);
                oms__v1__stock_released__free_unpacked(r, NULL);
            }
        }
        bool end = res.end || res.count == 0;
        req.from = res.next;
        evs_read_result_free(&res);
        if (end)
            break;
    }
    for (int k = 0; k < held.n; k++)
        ck_assert_msg(held.e[k].units == sku_get(shipped_total, held.e[k].sku),
                      "%s: reserved - released %lld, shipped %lld", held.e[k].sku,
                      (long long)held.e[k].units,
                      (long long)sku_get(shipped_total, held.e[k].sku));
    for (int k = 0; k < shipped_total->n; k++)
        ck_assert_int_eq(shipped_total->e[k].units, sku_get(&held, shipped_total->e[k].sku));
}

/* ---- the verdict of each order ---- */

/* The first of the saga's forward steps (payment, inventory, shipping)
 * that it timed out, with how long it had waited; STEP_NONE when none.
 * A compensation step that times out is asked again and changes no
 * outcome. */
static Oms__V1__Step first_step_timeout(int i, int64_t *waited_ms)
{
    evs_read_result_t res = read_stream("saga", ids[i]);
    Oms__V1__Step step = OMS__V1__STEP__STEP_NONE;
    for (size_t k = 0; k < res.count && step == OMS__V1__STEP__STEP_NONE; k++) {
        const evs_recorded_event_t *ev = &res.events[k];
        if (strcmp(ev->type, "SagaStepTimedOut") != 0)
            continue;
        Oms__V1__SagaStepTimedOut *t =
            oms__v1__saga_step_timed_out__unpack(NULL, ev->data_len, ev->data);
        ck_assert_ptr_nonnull(t);
        if (t->step >= OMS__V1__STEP__STEP_PAYMENT && t->step <= OMS__V1__STEP__STEP_SHIPPING) {
            step = t->step;
            *waited_ms = t->waited_ms;
        }
        oms__v1__saga_step_timed_out__free_unpacked(t, NULL);
    }
    evs_read_result_free(&res);
    return step;
}

/* The last forward step an order of each kind reaches. */
static const Oms__V1__Step kind_last_step[KIND_COUNT] = {
    [KIND_SUCCESS] = OMS__V1__STEP__STEP_SHIPPING,
    [KIND_DECLINED] = OMS__V1__STEP__STEP_PAYMENT,
    [KIND_OOS] = OMS__V1__STEP__STEP_INVENTORY,
    [KIND_SHIPFAIL] = OMS__V1__STEP__STEP_SHIPPING,
};

static const char *const step_timeout_reasons[] = {
    [OMS__V1__STEP__STEP_PAYMENT] = "payment_timeout",
    [OMS__V1__STEP__STEP_INVENTORY] = "inventory_timeout",
    [OMS__V1__STEP__STEP_SHIPPING] = "shipping_timeout",
};

/* Order i ended as its kind leads to (docs/oms.md, the saga), unless a
 * crash held one of its forward steps past STEP_TIMEOUT_MS: then the saga
 * compensated and the order failed with that step's timeout reason (or
 * completed, when the shipment happened before the cancel). Returns
 * whether a step timed out. */
static bool check_verdict(int i, const sys_outcome_t *got)
{
    order_kind_t kind = sys_kind_of((unsigned)i);
    sys_outcome_t want = sys_kind_outcome(kind);
    int64_t waited_ms = 0;
    Oms__V1__Step step = first_step_timeout(i, &waited_ms);
    if (step != OMS__V1__STEP__STEP_NONE) {
        ck_assert_msg(step <= kind_last_step[kind], "order %d (%s) timed out at step %d", i,
                      kind_names[kind], (int)step);
        ck_assert_msg(waited_ms >= STEP_TIMEOUT_MS, "order %d: step %d timed out after %lld ms",
                      i, (int)step, (long long)waited_ms);
        bool shipped_anyway = step == OMS__V1__STEP__STEP_SHIPPING && kind == KIND_SUCCESS &&
                              got->completed;
        if (!shipped_anyway) {
            want.completed = false;
            snprintf(want.reason, sizeof want.reason, "%s", step_timeout_reasons[step]);
        }
    }
    ck_assert_msg(got->completed == want.completed && strcmp(got->reason, want.reason) == 0,
                  "order %d (%s, timed-out step %d): %s \"%s\", expected %s \"%s\"", i,
                  kind_names[kind], (int)step, got->completed ? "completed" : "failed",
                  got->reason, want.completed ? "completed" : "failed", want.reason);
    return step != OMS__V1__STEP__STEP_NONE;
}

/* ---- the outbox ---- */

static int order_index(const char *order_id)
{
    for (int i = 0; i < ORDERS; i++)
        if (strcmp(ids[i], order_id) == 0)
            return i;
    return -1;
}

/* line's value of key is want. */
static void assert_field(int line_no, const char *line, const char *key, const char *want)
{
    char got[512];
    ck_assert_msg(sys_json_string(line, key, got, sizeof got) == 0 && strcmp(got, want) == 0,
                  "outbox line %d: %s is not \"%s\": %s", line_no, key, want, line);
}

/* A line of order i: the notification id is the hex of
 * oms_event_id(order, "notify") (docs/oms-services.md), the customer the
 * order's, the template and the reason in the message its verdict's. */
static void check_outbox_line(int line_no, const char *line, int i, const sys_outcome_t *o)
{
    uint8_t id[EVS_ID_BYTES];
    char id_hex[2 * EVS_ID_BYTES + 1], customer_id[16], message[512], cause[40];
    oms_event_id(id, ids[i], "notify");
    util_hex(id, EVS_ID_BYTES, id_hex);
    sys_customer_of((unsigned)i, customer_id);
    assert_field(line_no, line, "notification_id", id_hex);
    assert_field(line_no, line, "customer_id", customer_id);
    assert_field(line_no, line, "template", o->completed ? "order_completed" : "order_failed");
    ck_assert_int_eq(sys_json_string(line, "message", message, sizeof message), 0);
    snprintf(cause, sizeof cause, "(%s)", o->reason);
    ck_assert_msg(strstr(message, ids[i]) && (o->completed || strstr(message, cause)),
                  "outbox line %d: the message does not name order %d or %s: %s", line_no, i,
                  cause, line);
}

/* The outbox holds whole JSON lines only, each of an order placed here;
 * every order has at least one (delivery is at least once: a crash
 * between the line and its NotificationSent writes the line again).
 * Returns how many lines repeat an order's. */
static int check_outbox(const sys_outcome_t *outcomes)
{
    FILE *f = fopen(sys_.outbox, "r");
    ck_assert_ptr_nonnull(f);
    int lines_of[ORDERS] = {0}, line_no = 0, repeats = 0;
    char line[4096], order_id[64];
    while (fgets(line, sizeof line, f)) {
        line_no++;
        size_t len = strlen(line);
        ck_assert_msg(len > 2 && line[0] == '{' && line[len - 2] == '}' && line[len - 1] == '\n',
                      "outbox line %d is not a whole JSON object: %s", line_no, line);
        ck_assert_int_eq(sys_json_string(line, "order_id", order_id, sizeof order_id), 0);
        int i = order_index(order_id);
        ck_assert_msg(i >= 0, "outbox line %d is of an order never placed: %s", line_no, line);
        check_outbox_line(line_no, line, i, &outcomes[i]);
        repeats += lines_of[i]++ > 0;
    }
    fclose(f);
    for (int i = 0; i < ORDERS; i++)
        ck_assert_msg(lines_of[i] > 0, "order %d has no outbox line", i);
    return repeats;
}

/* ---- the run ---- */

static bool placed_at_least(void *ctx)
{
    return atomic_load(&placed) >= *(int *)ctx;
}

START_TEST(every_order_ends_right_through_crashes)
{
    static const char *const saga_args[] = {
        "--payment-timeout-ms", SYS_DECIMAL(STEP_TIMEOUT_MS),
        "--inventory-timeout-ms", SYS_DECIMAL(STEP_TIMEOUT_MS),
        "--shipping-timeout-ms", SYS_DECIMAL(STEP_TIMEOUT_MS),
        NULL,
    };
    ck_assert_int_eq(sys_start(&sys_, saga_args), 0);
    conn = sys_connect(&sys_);
    ck_assert_ptr_nonnull(conn);
    pthread_t load;
    ck_assert_int_eq(pthread_create(&load, NULL, load_thread, NULL), 0);
    /* Crash each program in turn while the load runs; evstored last. */
    for (int p = 0; p <= SYS_PROCS; p++) {
        int target = (p + 1) * ORDERS / (SYS_PROCS + 3);
        ck_assert(oms_wait_until(placed_at_least, &target, PLACE_RETRY_MS));
        if (p == SYS_PROCS) {
            fprintf(stderr, "chaos: kill -9 evstored after %d orders\n", atomic_load(&placed));
            ck_assert_int_eq(sys_store_crash(&sys_), 0);
            continue;
        }
        fprintf(stderr, "chaos: kill -9 %s after %d orders\n", sys_proc_names[p],
                atomic_load(&placed));
        oms_proc_kill(&sys_.procs[p]);
        usleep(300000);
        ck_assert_int_eq(oms_proc_restart(&sys_.procs[p]), 0);
    }
    pthread_join(load, NULL);
    ck_assert_int_eq(atomic_load(&place_errors), 0);
    evs_close(conn);
    conn = sys_connect(&sys_);
    ck_assert_ptr_nonnull(conn);
    sys_orders_t orders = {conn, ids, ORDERS};
    ck_assert_msg(oms_wait_until(sys_all_verdicts, &orders, FINAL_WAIT_MS),
                  "orders left without a verdict");
    ck_assert(oms_wait_until(sys_all_notified, &orders, FINAL_WAIT_MS));
    skus_t shipped_total = {0};
    static sys_outcome_t outcomes[ORDERS];
    int completed_count = 0, timed_out = 0, as_kind[KIND_COUNT] = {0};
    for (int i = 0; i < ORDERS; i++) {
        int verdicts = 0;
        const char *v = sys_verdict(conn, ids[i], outcomes[i].reason, &verdicts);
        ck_assert_msg(verdicts == 1, "order %d has %d verdicts", i, verdicts);
        outcomes[i].completed = strcmp(v, "OrderCompleted") == 0;
        if (outcomes[i].completed)
            outcomes[i].reason[0] = '\0';
        completed_count += outcomes[i].completed;
        if (check_verdict(i, &outcomes[i]))
            timed_out++;
        else
            as_kind[sys_kind_of((unsigned)i)]++;
        check_money(i, outcomes[i].completed);
        check_order_stock(i, outcomes[i].completed, &shipped_total);
    }
    check_stock_streams(&shipped_total);
    fprintf(stderr, "chaos: %d of %d orders completed; %d had a step timed out; as their kind "
            "leads to: %d success, %d declined, %d out of stock, %d shipping failure\n",
            completed_count, ORDERS, timed_out, as_kind[KIND_SUCCESS], as_kind[KIND_DECLINED],
            as_kind[KIND_OOS], as_kind[KIND_SHIPFAIL]);
    for (int k = 0; k < KIND_COUNT; k++)
        ck_assert_msg(as_kind[k] > 0, "no %s order ended as its kind leads to", kind_names[k]);

    sys_readmodel_t rm = {sys_.procs[SYS_ORDER].port, ids, outcomes, ORDERS, 0, ""};
    ck_assert_msg(oms_wait_until(sys_readmodel_agrees, &rm, FINAL_WAIT_MS),
                  "read model: %d of %d orders agree; %s", rm.agreeing, ORDERS, rm.why);
    int repeats = check_outbox(outcomes);
    fprintf(stderr, "chaos: outbox: every order notified, %d lines repeated\n", repeats);
    evs_close(conn);
    ck_assert_int_eq(sys_destroy(&sys_), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oms chaos");
    TCase *t = tcase_create("chaos");
    tcase_set_timeout(t, 500);
    tcase_add_test(t, every_order_ends_right_through_crashes);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
