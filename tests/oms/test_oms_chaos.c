/* test_oms_chaos.c -- kill -9 and restart each service, and evstored,
 * while orders are being placed. Afterwards every order reaches a final
 * state; no customer is charged twice, or charged without a refund when
 * the order failed; per order and per SKU, stock reserved minus released
 * equals stock shipped; every order is notified; the read model catches up
 * with the streams. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oms.pb-c.h"
#include "oms_system.h"

#define ORDERS 400
#define PLACE_INTERVAL_US 20000   /* about 50 orders/s: the run spans the kills */
#define PLACE_RETRY_MS 60000      /* one order's POST retries while oms-order is down */
#define FINAL_WAIT_MS 120000
#define SKUS_MAX 64

static sys_t sys_;
static char ids[ORDERS][33];
static atomic_int placed;
static atomic_int place_errors;

static void *load_thread(void *arg)
{
    (void)arg;
    httpc_t *http = NULL;
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
    httpc_close(http);
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

static bool placed_at_least(void *ctx)
{
    return atomic_load(&placed) >= *(int *)ctx;
}

START_TEST(every_order_ends_right_through_crashes)
{
    static const char *const saga_args[] = {"--payment-timeout-ms", "3000",
                                            "--inventory-timeout-ms", "3000",
                                            "--shipping-timeout-ms", "3000", NULL};
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
    int completed_count = 0;
    for (int i = 0; i < ORDERS; i++) {
        int verdicts = 0;
        const char *v = sys_verdict(conn, ids[i], NULL, &verdicts);
        ck_assert_msg(verdicts == 1, "order %d has %d verdicts", i, verdicts);
        bool completed = strcmp(v, "OrderCompleted") == 0;
        completed_count += completed;
        check_money(i, completed);
        check_order_stock(i, completed, &shipped_total);
    }
    check_stock_streams(&shipped_total);
    fprintf(stderr, "chaos: %d of %d orders completed\n", completed_count, ORDERS);
    ck_assert_int_gt(completed_count, 0);
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
