/* commit.c -- a stock change and its answer as one batch, with version
 * conflicts on the stock streams refreshed and retried. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

int oms_inv_lines_merge(Oms__V1__OrderItem *const *items, size_t n, oms_inv_lines_t *out,
                        const char **bad)
{
    out->count = 0;
    *bad = "";
    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const Oms__V1__OrderItem *it = items[i];
        *bad = it->sku;
        if (!oms_inv_sku_valid(it->sku))
            return -ENOENT;
        if (it->quantity == 0)
            return -EINVAL;
        size_t j = 0;
        while (j < out->count && strcmp(out->lines[j].sku, it->sku) != 0)
            j++;
        if (j == out->count) {
            if (out->count == OMS_INV_LINES_MAX)
                return -EINVAL;
            snprintf(out->lines[j].sku, sizeof out->lines[j].sku, "%s", it->sku);
            out->lines[j].quantity = 0;
            out->count++;
        }
        if (out->lines[j].quantity > UINT32_MAX - it->quantity)
            return -EINVAL;
        out->lines[j].quantity += it->quantity;
    }
    return 0;
}

void oms_inv_lines_items(const oms_inv_lines_t *lines, Oms__V1__OrderItem *items,
                         Oms__V1__OrderItem **ptrs)
{
    for (size_t i = 0; i < lines->count; i++) {
        oms__v1__order_item__init(&items[i]);
        items[i].sku = (char *)lines->lines[i].sku;
        items[i].quantity = lines->lines[i].quantity;
        ptrs[i] = &items[i];
    }
}

/* The events of a change: one per line, then the answer. */
typedef struct {
    evs_event_t events[OMS_INV_LINES_MAX + 1];
    evs_stream_append_t streams[OMS_INV_LINES_MAX + 1];
    char names[OMS_INV_LINES_MAX][OMS_NAME_BYTES_MAX];
    size_t made; /* events whose data is allocated */
} batch_t;

static void batch_free(batch_t *b)
{
    for (size_t i = 0; i < b->made; i++)
        oms_event_free_data(&b->events[i]);
    free(b);
}

static const char *kind_step(oms_inv_kind_t kind)
{
    return kind == OMS_INV_RESERVE ? "reserve" : "release";
}

/* StockReserved or StockReleased of line l, with id "<order>/<step>/<sku>". */
static int line_event_make(evs_event_t *ev, const oms_inv_change_t *c, const oms_inv_line_t *l)
{
    char step[OMS_NAME_BYTES_MAX];
    snprintf(step, sizeof step, "%s/%s", kind_step(c->kind), l->sku);
    Oms__V1__StockReserved reserved = OMS__V1__STOCK_RESERVED__INIT;
    Oms__V1__StockReleased released = OMS__V1__STOCK_RELEASED__INIT;
    reserved.sku = released.sku = (char *)l->sku;
    reserved.order_id = released.order_id = (char *)c->order_id;
    reserved.quantity = released.quantity = l->quantity;
    const void *msg = c->kind == OMS_INV_RESERVE ? (const void *)&reserved : (const void *)&released;
    return oms_event_make(ev, msg, c->order_id, step);
}

/* Builds every event and stream of the change (versions come later). */
static int batch_make(const oms_inv_change_t *c, batch_t **out)
{
    batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    size_t n = c->lines->count;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const oms_inv_line_t *l = &c->lines->lines[i];
        if ((rc = oms_ans_stream(b->names[i], "stock", l->sku)) == 0 &&
            (rc = line_event_make(&b->events[i], c, l)) == 0)
            b->made++;
        b->streams[i] = (evs_stream_append_t){
            .stream = b->names[i], .events = &b->events[i], .event_count = 1,
        };
    }
    if (rc == 0 && (rc = oms_event_make(&b->events[n], c->answer, c->order_id,
                                        kind_step(c->kind))) == 0)
        b->made++;
    b->streams[n] = (evs_stream_append_t){
        .stream = c->answer_stream, .expected_version = c->answer_expected,
        .events = &b->events[n], .event_count = 1,
    };
    if (rc) {
        batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

/* Sets each stock stream's expected version from the map (a SKU missing
 * from it is looked up in the store once) and, for a reservation, checks
 * the units. Returns 0, -ERANGE (short: *sh), -ENOENT (a release of a SKU
 * with no stream) or a store error. */
static int batch_versions(oms_inv_t *inv, oms_store_t *s, const oms_inv_change_t *c, batch_t *b,
                          oms_inv_shortage_t *sh)
{
    for (size_t i = 0; i < c->lines->count; i++) {
        const oms_inv_line_t *l = &c->lines->lines[i];
        int64_t available, version;
        int rc = oms_inv_stock_get(&inv->stock, l->sku, &available, &version);
        if (rc == -ENOENT) {
            if ((rc = oms_inv_stock_refresh(&inv->stock, s, l->sku)) != 0)
                return rc;
            rc = oms_inv_stock_get(&inv->stock, l->sku, &available, &version);
        }
        if (rc == -ENOENT && c->kind == OMS_INV_RESERVE) {
            *sh = (oms_inv_shortage_t){OMS_INV_UNKNOWN_SKU, l->sku, l->quantity, 0};
            return -ERANGE;
        }
        if (rc)
            return rc;
        if (c->kind == OMS_INV_RESERVE && available < l->quantity) {
            *sh = (oms_inv_shortage_t){OMS_INV_OUT_OF_STOCK, l->sku, l->quantity, available};
            return -ERANGE;
        }
        b->streams[i].expected_version = version;
    }
    return 0;
}

/* After a successful append: the map takes the change at the versions the
 * store gave. Returns 0 or the error of a refresh. */
static int map_update(oms_inv_t *inv, oms_store_t *s, const oms_inv_change_t *c,
                      const evs_append_result_t *res)
{
    int64_t sign = c->kind == OMS_INV_RESERVE ? -1 : 1;
    for (size_t i = 0; i < c->lines->count; i++) {
        const oms_inv_line_t *l = &c->lines->lines[i];
        int rc = oms_inv_stock_apply(&inv->stock, l->sku, res->last_versions[i],
                                     sign * (int64_t)l->quantity);
        if (rc == -EAGAIN)
            rc = oms_inv_stock_refresh(&inv->stock, s, l->sku);
        if (rc)
            return rc;
    }
    return 0;
}

void oms_inv_init(oms_inv_t *inv)
{
    oms_inv_stock_init(&inv->stock);
    for (unsigned i = 0; i < OMS_INV_SKU_LOCKS; i++)
        pthread_mutex_init(&inv->sku_locks[i], NULL);
}

void oms_inv_free(oms_inv_t *inv)
{
    for (unsigned i = 0; i < OMS_INV_SKU_LOCKS; i++)
        pthread_mutex_destroy(&inv->sku_locks[i]);
    oms_inv_stock_free(&inv->stock);
}

/* The lock stripes of the change's SKUs, as a bit mask. */
static uint64_t change_stripes(const oms_inv_change_t *c)
{
    _Static_assert(OMS_INV_SKU_LOCKS <= 64, "stripes fit a uint64_t mask");
    uint64_t mask = 0;
    for (size_t i = 0; i < c->lines->count; i++)
        mask |= 1ull << (oms_inv_sku_hash(c->lines->lines[i].sku) % OMS_INV_SKU_LOCKS);
    return mask;
}

/* Locks in ascending order, so two changes never wait for each other. */
static void stripes_lock(oms_inv_t *inv, uint64_t mask)
{
    for (unsigned i = 0; i < OMS_INV_SKU_LOCKS; i++)
        if (mask & (1ull << i))
            pthread_mutex_lock(&inv->sku_locks[i]);
}

static void stripes_unlock(oms_inv_t *inv, uint64_t mask)
{
    for (unsigned i = 0; i < OMS_INV_SKU_LOCKS; i++)
        if (mask & (1ull << i))
            pthread_mutex_unlock(&inv->sku_locks[i]);
}

int oms_inv_commit(oms_inv_t *inv, oms_store_t *s, const oms_inv_change_t *c,
                   oms_inv_shortage_t *short_out)
{
    batch_t *b;
    int rc = batch_make(c, &b);
    if (rc)
        return rc;
    uint64_t stripes = change_stripes(c);
    stripes_lock(inv, stripes);
    size_t n = c->lines->count;
    evs_append_result_t res;
    rc = -EBUSY;
    for (unsigned tries = 0; tries < OMS_INV_CONFLICT_TRIES_MAX; tries++) {
        int v = batch_versions(inv, s, c, b, short_out);
        if (v) {
            rc = v;
            break;
        }
        int w = oms_ans_write_batch(s, b->streams, n + 1, &res);
        if (w >= 0) {
            /* Written. A map that could not follow (a failed refresh)
             * keeps an old version: the next change of that SKU conflicts
             * and refreshes it, so the error is not the caller's. */
            map_update(inv, s, c, &res);
            rc = w;
            break;
        }
        if (w != EVS_EWRONG_VERSION && w != EVS_EIDEMPOTENCY) {
            rc = w;
            break;
        }
        if (res.failed_stream >= n) {
            rc = OMS_ANS_STANDS;
            break;
        }
        /* Another worker (or instance) changed that SKU first: the map
         * catches up with the version the store reported. */
        oms_counter_add(inv->conflicts, 1);
        if ((v = oms_inv_stock_catch_up(&inv->stock, s, c->lines->lines[res.failed_stream].sku,
                                        res.actual_version))) {
            rc = v;
            break;
        }
    }
    stripes_unlock(inv, stripes);
    batch_free(b);
    return rc;
}
