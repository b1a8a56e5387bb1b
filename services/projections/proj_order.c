/* proj_order.c -- what the events of an order's life do to the rows of
 * orders and customers (docs/oms-projections.md has the table).
 *
 * Every event names its order by order_id; one without is bad (-EBADMSG).
 * An event for an order the model does not have (its OrderPlaced never
 * came) changes nothing. The customer's counters move once per order
 * whatever comes twice: a charge while the order has no payment status
 * yet, a refund until the order is refunded, a verdict while the order is
 * not final; the statements check that in the row before it changes. */
#include <errno.h>
#include <stdlib.h>

#include "oms.pb-c.h"
#include "proj.h"

/* What an event changes in its order's row; NULL leaves a column alone. */
typedef struct {
    const char *status;         /* ranked: only forwards, finals stay */
    const char *failure_reason; /* only with a final status */
    const char *payment;        /* charged | declined | refunded */
    const char *inventory;      /* reserved | failed | released */
    const char *shipment;       /* shipped | failed | cancelled */
} order_change_t;

/* Binds text, or NULL for NULL and "" (proto3 cannot tell them apart). */
static void bind_text(sqlite3_stmt *st, int index, const char *text)
{
    if (text && *text)
        sqlite3_bind_text(st, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, index);
}

static int order_update(oms_proj_db_t *db, const char *order_id, const order_change_t *c,
                        const char *shipment_id, const evs_recorded_event_t *ev)
{
    if (!*order_id)
        return -EBADMSG;
    sqlite3_stmt *st = oms_proj_db_stmt(db, OMS_PROJ_SQL_ORDER_UPDATE);
    bind_text(st, 1, order_id);
    bind_text(st, 2, c->status);
    bind_text(st, 3, c->failure_reason);
    bind_text(st, 4, c->payment);
    bind_text(st, 5, c->inventory);
    bind_text(st, 6, c->shipment);
    bind_text(st, 7, shipment_id);
    sqlite3_bind_int64(st, 8, ev->timestamp_ns);
    sqlite3_bind_int64(st, 9, (int64_t)ev->position);
    return oms_proj_db_step(db, OMS_PROJ_SQL_ORDER_UPDATE, NULL);
}

/* Adds amount to the spent or refunded cents of the order's customer
 * (which: CUSTOMER_CHARGED or CUSTOMER_REFUNDED), before the order's row
 * records it. */
static int customer_money(oms_proj_db_t *db, oms_proj_sql_t which, const char *order_id,
                          int64_t amount_cents, const evs_recorded_event_t *ev)
{
    if (!*order_id || amount_cents < 0)
        return -EBADMSG;
    sqlite3_stmt *st = oms_proj_db_stmt(db, which);
    bind_text(st, 1, order_id);
    sqlite3_bind_int64(st, 2, amount_cents);
    sqlite3_bind_int64(st, 3, (int64_t)ev->position);
    return oms_proj_db_step(db, which, NULL);
}

/* Counts the order's verdict for its customer, before the row goes final. */
static int customer_verdict(oms_proj_db_t *db, const char *order_id, bool completed,
                            const evs_recorded_event_t *ev)
{
    if (!*order_id)
        return -EBADMSG;
    sqlite3_stmt *st = oms_proj_db_stmt(db, OMS_PROJ_SQL_CUSTOMER_FINAL);
    bind_text(st, 1, order_id);
    sqlite3_bind_int(st, 2, completed ? 1 : 0);
    sqlite3_bind_int(st, 3, completed ? 0 : 1);
    sqlite3_bind_int64(st, 4, (int64_t)ev->position);
    return oms_proj_db_step(db, OMS_PROJ_SQL_CUSTOMER_FINAL, NULL);
}

/* item_count is the number of lines, as oms-order counts them when it
 * shows an order from its stream. */
static int order_insert(oms_proj_db_t *db, const Oms__V1__OrderPlaced *m, const char *items,
                        const evs_recorded_event_t *ev, int *inserted)
{
    sqlite3_stmt *st = oms_proj_db_stmt(db, OMS_PROJ_SQL_ORDER_INSERT);
    sqlite3_bind_text(st, 1, m->order_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, m->total_cents);
    sqlite3_bind_text(st, 4, m->currency, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, items, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (int64_t)m->n_items);
    sqlite3_bind_int64(st, 7, m->placed_at_ns ? m->placed_at_ns : ev->timestamp_ns);
    sqlite3_bind_int64(st, 8, ev->timestamp_ns);
    sqlite3_bind_int64(st, 9, (int64_t)ev->position);
    return oms_proj_db_step(db, OMS_PROJ_SQL_ORDER_INSERT, inserted);
}

static int customer_placed(oms_proj_db_t *db, const Oms__V1__OrderPlaced *m,
                           const evs_recorded_event_t *ev)
{
    sqlite3_stmt *st = oms_proj_db_stmt(db, OMS_PROJ_SQL_CUSTOMER_PLACED);
    sqlite3_bind_text(st, 1, m->customer_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->order_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)ev->position);
    return oms_proj_db_step(db, OMS_PROJ_SQL_CUSTOMER_PLACED, NULL);
}

int oms_proj_order_placed(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev)
{
    const Oms__V1__OrderPlaced *m = msg;
    if (!*m->order_id || !*m->customer_id || m->total_cents < 0)
        return -EBADMSG;
    char *items = NULL;
    int err = oms_proj_items_json(m->items, m->n_items, &items);
    if (err)
        return err;
    int inserted = 0;
    err = order_insert(db, m, items, ev, &inserted);
    if (!err && inserted) /* a second OrderPlaced for the order is not a second order */
        err = customer_placed(db, m, ev);
    free(items);
    return err;
}

int oms_proj_payment_processed(oms_proj_db_t *db, const void *msg,
                               const evs_recorded_event_t *ev)
{
    const Oms__V1__PaymentProcessed *m = msg;
    static const order_change_t c = {.status = "PAID", .payment = "charged"};
    int err = customer_money(db, OMS_PROJ_SQL_CUSTOMER_CHARGED, m->order_id, m->amount_cents, ev);
    return err ? err : order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_payment_failed(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev)
{
    const Oms__V1__PaymentFailed *m = msg;
    static const order_change_t c = {.payment = "declined"};
    return order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_payment_refunded(oms_proj_db_t *db, const void *msg,
                              const evs_recorded_event_t *ev)
{
    const Oms__V1__PaymentRefunded *m = msg;
    static const order_change_t c = {.status = "COMPENSATING", .payment = "refunded"};
    int err =
        customer_money(db, OMS_PROJ_SQL_CUSTOMER_REFUNDED, m->order_id, m->amount_cents, ev);
    return err ? err : order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_inventory_reserved(oms_proj_db_t *db, const void *msg,
                                const evs_recorded_event_t *ev)
{
    const Oms__V1__InventoryReserved *m = msg;
    static const order_change_t c = {.status = "RESERVED", .inventory = "reserved"};
    return order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_inventory_failed(oms_proj_db_t *db, const void *msg,
                              const evs_recorded_event_t *ev)
{
    const Oms__V1__InventoryReservationFailed *m = msg;
    static const order_change_t c = {.status = "COMPENSATING", .inventory = "failed"};
    return order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_inventory_released(oms_proj_db_t *db, const void *msg,
                                const evs_recorded_event_t *ev)
{
    const Oms__V1__InventoryReleased *m = msg;
    static const order_change_t c = {.inventory = "released"};
    return order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_order_shipped(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev)
{
    const Oms__V1__OrderShipped *m = msg;
    static const order_change_t c = {.status = "SHIPPED", .shipment = "shipped"};
    return order_update(db, m->order_id, &c, m->shipment_id, ev);
}

int oms_proj_shipment_failed(oms_proj_db_t *db, const void *msg,
                             const evs_recorded_event_t *ev)
{
    const Oms__V1__ShipmentFailed *m = msg;
    static const order_change_t c = {.shipment = "failed"};
    return order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_shipment_cancelled(oms_proj_db_t *db, const void *msg,
                                const evs_recorded_event_t *ev)
{
    const Oms__V1__ShipmentCancelled *m = msg;
    static const order_change_t c = {.shipment = "cancelled"};
    return order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_refund_requested(oms_proj_db_t *db, const void *msg,
                              const evs_recorded_event_t *ev)
{
    const Oms__V1__RefundRequested *m = msg;
    static const order_change_t c = {.status = "COMPENSATING"};
    return order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_release_requested(oms_proj_db_t *db, const void *msg,
                               const evs_recorded_event_t *ev)
{
    const Oms__V1__ReleaseRequested *m = msg;
    static const order_change_t c = {.status = "COMPENSATING"};
    return order_update(db, m->order_id, &c, NULL, ev);
}

int oms_proj_order_completed(oms_proj_db_t *db, const void *msg,
                             const evs_recorded_event_t *ev)
{
    const Oms__V1__OrderCompleted *m = msg;
    static const order_change_t c = {.status = "COMPLETED"};
    int err = customer_verdict(db, m->order_id, true, ev);
    return err ? err : order_update(db, m->order_id, &c, m->shipment_id, ev);
}

int oms_proj_order_failed(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev)
{
    const Oms__V1__OrderFailed *m = msg;
    order_change_t c = {.status = "FAILED", .failure_reason = m->reason};
    int err = customer_verdict(db, m->order_id, false, ev);
    return err ? err : order_update(db, m->order_id, &c, NULL, ev);
}
