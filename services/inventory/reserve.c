/* reserve.c -- InventoryRequested: reserve every item or none. */
#include <errno.h>
#include <string.h>

#include "inventory.h"

/* The answer when the order cannot be served. */
static oms_result_t reserve_refused(oms_worker_t *w, oms_inv_t *inv, const char *order_id,
                                    const char *stream, const oms_inv_shortage_t *sh)
{
    Oms__V1__InventoryReservationFailed f = OMS__V1__INVENTORY_RESERVATION_FAILED__INIT;
    f.order_id = (char *)order_id;
    f.reason = (char *)sh->reason;
    f.sku = (char *)sh->sku;
    f.requested = sh->requested;
    f.available = sh->available;
    int rc = oms_ans_write(oms_worker_store(w), stream, EVS_EXPECT_NO_STREAM, &f, order_id,
                           "reserve");
    if (rc < 0)
        return oms_ans_failed(w, rc, stream);
    if (rc == OMS_ANS_WRITTEN)
        oms_counter_add(inv->reservations[strcmp(sh->reason, OMS_INV_OUT_OF_STOCK) == 0
                                              ? OMS_INV_R_OUT_OF_STOCK
                                              : OMS_INV_R_UNKNOWN_SKU],
                        1);
    return OMS_OK;
}

oms_result_t oms_inv_reserve(oms_worker_t *w, void *ctx, const char *order_id,
                             const ProtobufCMessage *msg)
{
    oms_inv_t *inv = ctx;
    const Oms__V1__InventoryRequested *rq = (const Oms__V1__InventoryRequested *)msg;
    oms_store_t *store = oms_worker_store(w);
    char stream[OMS_NAME_BYTES_MAX];
    bool answered = false;
    int rc = oms_ans_stream(stream, "inventory", order_id);
    if (rc == 0)
        rc = oms_ans_answered(store, stream, &answered);
    if (rc)
        return oms_ans_failed(w, rc, stream);
    if (answered)
        return OMS_OK; /* reserved, refused or voided by a release already */
    oms_inv_lines_t lines;
    const char *bad;
    rc = oms_inv_lines_merge(rq->items, rq->n_items, &lines, &bad);
    if (rc == -ENOENT) {
        oms_inv_shortage_t sh = {OMS_INV_UNKNOWN_SKU, bad, 0, 0};
        return reserve_refused(w, inv, order_id, stream, &sh);
    }
    if (rc) {
        oms_worker_reason(w, "InventoryRequested %s: bad items (no items, quantity 0, over %u "
                          "SKUs or over UINT32_MAX units) at sku '%.64s'",
                          order_id, OMS_INV_LINES_MAX, bad);
        return OMS_PARK;
    }
    Oms__V1__InventoryReserved ok = OMS__V1__INVENTORY_RESERVED__INIT;
    ok.order_id = (char *)order_id;
    ok.n_items = rq->n_items;
    ok.items = rq->items;
    oms_inv_change_t change = {
        .kind = OMS_INV_RESERVE, .order_id = order_id, .lines = &lines, .answer_stream = stream,
        .answer_expected = EVS_EXPECT_NO_STREAM, .answer = &ok,
    };
    oms_inv_shortage_t sh;
    rc = oms_inv_commit(inv, store, &change, &sh);
    if (rc == -ERANGE)
        return reserve_refused(w, inv, order_id, stream, &sh);
    if (rc == -EBUSY) {
        oms_worker_reason(w, "%s: stock still conflicting after %u tries", stream,
                          OMS_INV_CONFLICT_TRIES_MAX);
        return OMS_RETRY;
    }
    if (rc < 0)
        return oms_ans_failed(w, rc, stream);
    if (rc == OMS_ANS_WRITTEN)
        oms_counter_add(inv->reservations[OMS_INV_R_RESERVED], 1);
    return OMS_OK;
}
