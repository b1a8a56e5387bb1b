/* stock.c -- every SKU's available units and stream version, in memory,
 * folded from the stock-<sku> streams. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inventory.h"
#include "oms.pb-c.h"

struct oms_inv_sku {
    oms_inv_sku_t *next;
    char sku[OMS_INV_SKU_BYTES_MAX];
    int64_t available;
    int64_t version;    /* of the last event applied */
    oms_gauge_t *gauge; /* NULL: not watched */
};

void oms_inv_stock_init(oms_inv_stock_t *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_init(&st->lock, NULL);
}

void oms_inv_stock_free(oms_inv_stock_t *st)
{
    for (size_t b = 0; b < OMS_INV_BUCKETS; b++)
        for (oms_inv_sku_t *e = st->buckets[b], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    pthread_mutex_destroy(&st->lock);
    memset(st, 0, sizeof *st);
}

uint32_t oms_inv_sku_hash(const char *sku)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)sku; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static size_t sku_bucket(const char *sku)
{
    return oms_inv_sku_hash(sku) % OMS_INV_BUCKETS;
}

/* Caller holds st->lock. */
static oms_inv_sku_t *sku_find(oms_inv_stock_t *st, const char *sku)
{
    for (oms_inv_sku_t *e = st->buckets[sku_bucket(sku)]; e; e = e->next)
        if (strcmp(e->sku, sku) == 0)
            return e;
    return NULL;
}

/* Caller holds st->lock. A new SKU has no event yet. */
static int sku_add(oms_inv_stock_t *st, const char *sku, oms_inv_sku_t **out)
{
    if (st->count >= OMS_INV_SKUS_MAX)
        return -ENOSPC;
    oms_inv_sku_t *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    strcpy(e->sku, sku); /* valid: shorter than e->sku */
    e->version = EVS_VERSION_NONE;
    size_t b = sku_bucket(sku);
    e->next = st->buckets[b];
    st->buckets[b] = e;
    st->count++;
    *out = e;
    return 0;
}

int oms_inv_stock_apply(oms_inv_stock_t *st, const char *sku, int64_t version, int64_t delta)
{
    if (!oms_inv_sku_valid(sku) || version < 0)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    oms_inv_sku_t *e = sku_find(st, sku);
    int64_t known = e ? e->version : EVS_VERSION_NONE;
    if (version <= known)
        goto out_unlock; /* applied already */
    if (version != known + 1) {
        rc = -EAGAIN;
        goto out_unlock;
    }
    if (!e && (rc = sku_add(st, sku, &e)) != 0)
        goto out_unlock;
    e->available += delta;
    e->version = version;
    oms_gauge_set(e->gauge, e->available);
out_unlock:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int oms_inv_stock_get(oms_inv_stock_t *st, const char *sku, int64_t *available,
                      int64_t *version)
{
    pthread_mutex_lock(&st->lock);
    const oms_inv_sku_t *e = sku_find(st, sku);
    if (e) {
        *available = e->available;
        *version = e->version;
    }
    pthread_mutex_unlock(&st->lock);
    return e ? 0 : -ENOENT;
}

void oms_inv_stock_watch(oms_inv_stock_t *st, const char *sku, oms_gauge_t *g)
{
    pthread_mutex_lock(&st->lock);
    oms_inv_sku_t *e = sku_find(st, sku);
    if (e) {
        e->gauge = g;
        oms_gauge_set(g, e->available);
    }
    pthread_mutex_unlock(&st->lock);
}

/* ---- folding stock-<sku> events ---- */

static int stock_event(void *st, const evs_recorded_event_t *ev, int64_t delta)
{
    const char *sku = oms_stream_key(ev->stream);
    if (!oms_inv_sku_valid(sku))
        return 0; /* not a stream this service could have written */
    return oms_inv_stock_apply(st, sku, ev->version, delta);
}

static int fold_added(void *st, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    return stock_event(st, ev, ((const Oms__V1__StockAdded *)m)->quantity);
}

static int fold_reserved(void *st, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    return stock_event(st, ev, -(int64_t)((const Oms__V1__StockReserved *)m)->quantity);
}

static int fold_released(void *st, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    return stock_event(st, ev, ((const Oms__V1__StockReleased *)m)->quantity);
}

static const oms_ans_case_t stock_cases[] = {
    {&oms__v1__stock_added__descriptor, fold_added},
    {&oms__v1__stock_reserved__descriptor, fold_reserved},
    {&oms__v1__stock_released__descriptor, fold_released},
};
#define STOCK_CASES (sizeof stock_cases / sizeof stock_cases[0])

int oms_inv_stock_refresh(oms_inv_stock_t *st, oms_store_t *s, const char *sku)
{
    char stream[OMS_NAME_BYTES_MAX];
    int rc = oms_ans_stream(stream, "stock", sku);
    if (rc)
        return rc;
    int64_t available, version = EVS_VERSION_NONE;
    oms_inv_stock_get(st, sku, &available, &version);
    return oms_ans_fold(s, stream, (uint64_t)(version + 1), stock_cases, STOCK_CASES, st, NULL);
}

int oms_inv_stock_catch_up(oms_inv_stock_t *st, oms_store_t *s, const char *sku,
                           int64_t min_version)
{
    int64_t deadline = oms_mono_ns() + (int64_t)OMS_INV_CATCH_UP_MS_MAX * 1000000;
    for (;;) {
        int rc = oms_inv_stock_refresh(st, s, sku);
        int64_t available, version = EVS_VERSION_NONE;
        oms_inv_stock_get(st, sku, &available, &version);
        if (rc || version >= min_version || oms_mono_ns() >= deadline)
            return rc;
        usleep(OMS_INV_CATCH_UP_PAUSE_US);
    }
}

int oms_inv_stock_load(oms_inv_stock_t *st, oms_store_t *s)
{
    return oms_ans_fold(s, "$ce-stock", 0, stock_cases, STOCK_CASES, st, NULL);
}
