/* proj_stock.c -- what the stock-<sku> events do to the stock table:
 * on_hand counts the units added, reserved the units reserved minus those
 * released, available is on_hand - reserved. A SKU gets its row from its
 * first event, whichever it is. */
#include <errno.h>

#include "oms.pb-c.h"
#include "proj.h"

static int stock_delta(oms_proj_db_t *db, const char *sku, int64_t on_hand, int64_t reserved,
                       const evs_recorded_event_t *ev)
{
    if (!*sku)
        return -EBADMSG;
    sqlite3_stmt *st = oms_proj_db_stmt(db, OMS_PROJ_SQL_STOCK_DELTA);
    sqlite3_bind_text(st, 1, sku, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, on_hand);
    sqlite3_bind_int64(st, 3, reserved);
    sqlite3_bind_int64(st, 4, (int64_t)ev->position);
    return oms_proj_db_step(db, OMS_PROJ_SQL_STOCK_DELTA, NULL);
}

int oms_proj_stock_added(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev)
{
    const Oms__V1__StockAdded *m = msg;
    return stock_delta(db, m->sku, m->quantity, 0, ev);
}

int oms_proj_stock_reserved(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev)
{
    const Oms__V1__StockReserved *m = msg;
    return stock_delta(db, m->sku, 0, m->quantity, ev);
}

int oms_proj_stock_released(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev)
{
    const Oms__V1__StockReleased *m = msg;
    return stock_delta(db, m->sku, 0, -(int64_t)m->quantity, ev);
}
