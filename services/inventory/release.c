/* release.c -- ReleaseRequested: give back what the order reserved, once. */
#include <errno.h>

#include "inventory.h"

/* What inventory-<orderId> holds. */
typedef struct {
    bool reserved, failed, released;
    int merge_rc;          /* of the reserved items */
    oms_inv_lines_t lines; /* reserved */
} inv_state_t;

static int fold_reserved(void *ctx, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    (void)ev;
    inv_state_t *st = ctx;
    const Oms__V1__InventoryReserved *e = (const Oms__V1__InventoryReserved *)m;
    const char *bad;
    st->reserved = true;
    st->merge_rc = oms_inv_lines_merge(e->items, e->n_items, &st->lines, &bad);
    return 0;
}

static int fold_failed(void *ctx, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    (void)ev, (void)m;
    ((inv_state_t *)ctx)->failed = true;
    return 0;
}

static int fold_released(void *ctx, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    (void)ev, (void)m;
    ((inv_state_t *)ctx)->released = true;
    return 0;
}

static const oms_ans_case_t inv_cases[] = {
    {&oms__v1__inventory_reserved__descriptor, fold_reserved},
    {&oms__v1__inventory_reservation_failed__descriptor, fold_failed},
    {&oms__v1__inventory_released__descriptor, fold_released},
};

/* Writes the release: the stock back plus the answer when something was
 * reserved, else the answer alone (which also blocks a late reservation). */
static int release_write(oms_inv_t *inv, oms_store_t *s, const char *order_id,
                         const char *stream, int64_t version, const inv_state_t *st,
                         const char *reason)
{
    Oms__V1__OrderItem items[OMS_INV_LINES_MAX], *ptrs[OMS_INV_LINES_MAX];
    Oms__V1__InventoryReleased r = OMS__V1__INVENTORY_RELEASED__INIT;
    r.order_id = (char *)order_id;
    r.reason = (char *)reason;
    int64_t expected = oms_ans_after(version);
    if (!st->reserved)
        return oms_ans_write(s, stream, expected, &r, order_id, "release");
    oms_inv_lines_items(&st->lines, items, ptrs);
    r.n_items = st->lines.count;
    r.items = ptrs;
    oms_inv_change_t change = {
        .kind = OMS_INV_RELEASE, .order_id = order_id, .lines = &st->lines,
        .answer_stream = stream, .answer_expected = expected, .answer = &r,
    };
    return oms_inv_commit(inv, s, &change, NULL);
}

oms_result_t oms_inv_release(oms_worker_t *w, void *ctx, const char *order_id,
                             const ProtobufCMessage *msg)
{
    oms_inv_t *inv = ctx;
    const Oms__V1__ReleaseRequested *rq = (const Oms__V1__ReleaseRequested *)msg;
    oms_store_t *store = oms_worker_store(w);
    char stream[OMS_NAME_BYTES_MAX];
    inv_state_t st = {0};
    int64_t version = EVS_VERSION_NONE;
    int rc = oms_ans_stream(stream, "inventory", order_id);
    if (rc == 0)
        rc = oms_ans_fold(store, stream, 0, inv_cases, sizeof inv_cases / sizeof inv_cases[0],
                          &st, &version);
    if (rc)
        return oms_ans_failed(w, rc, stream);
    if (st.released)
        return OMS_OK;
    if (st.reserved && st.merge_rc) {
        oms_worker_reason(w, "%s: InventoryReserved has unreadable items", stream);
        return OMS_PARK;
    }
    rc = release_write(inv, store, order_id, stream, version, &st, rq->reason);
    if (rc == OMS_ANS_STANDS || rc == -EBUSY) {
        /* The answer stream moved since it was read (another instance), or
         * the stock kept conflicting: read it all again on redelivery. */
        oms_worker_reason(w, "%s: %s", stream,
                          rc == -EBUSY ? "stock still conflicting" : "moved while releasing");
        return OMS_RETRY;
    }
    if (rc == -ENOENT) {
        oms_worker_reason(w, "%s: a reserved SKU has no stock stream", stream);
        return OMS_PARK;
    }
    if (rc < 0)
        return oms_ans_failed(w, rc, stream);
    if (rc == OMS_ANS_WRITTEN)
        oms_counter_add(inv->releases, 1);
    return OMS_OK;
}
