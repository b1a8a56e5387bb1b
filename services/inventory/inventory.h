/* inventory.h -- oms-inventory: stock per SKU, event-sourced in
 * stock-<sku> (StockAdded, StockReserved, StockReleased), and one
 * reservation answer per order in inventory-<orderId>.
 *
 * The service keeps every SKU's available count and stream version in
 * memory (oms_inv_stock_t), loaded from "$ce-stock" at start and kept
 * right after each append. A reservation is one atomic batch: a
 * StockReserved in each SKU's stream at the exact version the map knows,
 * plus the answer at EVS_EXPECT_NO_STREAM; a version conflict on a stock
 * stream (another worker got there first) refreshes that SKU from its
 * stream and tries again, so stock never goes below zero and the streams
 * are the truth. */
#ifndef OMS_INVENTORY_H
#define OMS_INVENTORY_H

#include <pthread.h>
#include <stdatomic.h>

#include "oms.pb-c.h"
#include "oms_answer.h"

#define OMS_INV_SKU_BYTES_MAX 64u         /* a SKU is shorter than this */
#define OMS_INV_SKUS_MAX 100000u          /* SKUs kept in memory */
#define OMS_INV_CATALOGUE_MAX 100000u     /* entries of a catalogue file */
#define OMS_INV_CATALOGUE_BYTES_MAX (16u * 1024 * 1024)
#define OMS_INV_LINES_MAX (EVS_APPEND_STREAMS_MAX - 1u) /* distinct SKUs in one order:
                                                   one stream each plus the answer */
#define OMS_INV_CONFLICT_TRIES_MAX 32u    /* version conflicts retried in one delivery */
#define OMS_INV_CATCH_UP_MS_MAX 2000   /* waiting for a conflicting append to be readable */
#define OMS_INV_CATCH_UP_PAUSE_US 500  /* between two reads of it */
#define OMS_INV_GAUGES_MAX 256u           /* oms_stock_available series (catalogue order) */
#define OMS_INV_BUCKETS 4096u             /* hash buckets of the stock map */
#define OMS_INV_SKU_LOCKS 64u             /* stripes serialising the changes of a SKU */

/* Built-in catalogue: sku-0001..sku-<N> with this many units each, plus
 * OMS_INV_OOS_SKU with none. */
#define OMS_INV_BUILTIN_SKUS 100u
#define OMS_INV_BUILTIN_UNITS 1000000u
#define OMS_INV_OOS_SKU "sku-oos"

/* Whether sku can name a stock stream: 1..OMS_INV_SKU_BYTES_MAX-1 bytes,
 * no spaces or control characters. */
bool oms_inv_sku_valid(const char *sku);

/* A hash of sku (FNV-1a), for the map's buckets and the lock stripes. */
uint32_t oms_inv_sku_hash(const char *sku);

/* ==== catalogue (catalogue.c) ========================================= */

typedef struct {
    char sku[OMS_INV_SKU_BYTES_MAX];
    uint32_t quantity;
} oms_inv_item_t;

typedef struct {
    oms_inv_item_t *items;
    size_t count;
} oms_inv_catalogue_t;

/* Loads the catalogue from path (a JSON array of {"sku": "...",
 * "quantity": N}), or the built-in one when path is NULL. Returns 0, or
 * -EINVAL / -errno with a message on stderr naming the file and entry. */
int oms_inv_catalogue_load(const char *path, oms_inv_catalogue_t *out);
void oms_inv_catalogue_free(oms_inv_catalogue_t *c);

/* ==== the stock map (stock.c) ========================================= */

typedef struct oms_inv_sku oms_inv_sku_t;

typedef struct {
    pthread_mutex_t lock;
    oms_inv_sku_t *buckets[OMS_INV_BUCKETS];
    size_t count;
} oms_inv_stock_t;

void oms_inv_stock_init(oms_inv_stock_t *st);
void oms_inv_stock_free(oms_inv_stock_t *st);

/* Applies the event at `version` of stock-<sku> (delta: +added or
 * released, -reserved). Events at or below the known version are ignored
 * (already applied); the first event creates the SKU. Returns 0, -EAGAIN
 * when version is past the next one (a gap: refresh the SKU), -ENOSPC
 * (OMS_INV_SKUS_MAX) or -ENOMEM. */
int oms_inv_stock_apply(oms_inv_stock_t *st, const char *sku, int64_t version, int64_t delta);

/* The SKU's available units and its stream's version. Returns 0, or
 * -ENOENT for a SKU whose stream has no event known here. */
int oms_inv_stock_get(oms_inv_stock_t *st, const char *sku, int64_t *available,
                      int64_t *version);

/* Makes g show the SKU's available units from now on (NULL: none). */
void oms_inv_stock_watch(oms_inv_stock_t *st, const char *sku, oms_gauge_t *g);

/* Reads stock-<sku> after the known version and applies what is new.
 * Returns 0 or an error of oms_ans_fold() / oms_inv_stock_apply(). */
int oms_inv_stock_refresh(oms_inv_stock_t *st, oms_store_t *s, const char *sku);

/* Refreshes the SKU until the map knows version min_version: an append
 * that conflicted reports a version that readers see only once it is
 * durable, a moment later. Gives up (returning 0: the caller's next
 * append conflicts again) after OMS_INV_CATCH_UP_MS_MAX. Returns 0 or an
 * error of oms_inv_stock_refresh(). */
int oms_inv_stock_catch_up(oms_inv_stock_t *st, oms_store_t *s, const char *sku,
                           int64_t min_version);

/* Reads every stock-<sku> through "$ce-stock" from the start. */
int oms_inv_stock_load(oms_inv_stock_t *st, oms_store_t *s);

/* ==== the service ===================================================== */

/* oms_inventory_reservations_total{result} */
enum {
    OMS_INV_R_RESERVED,
    OMS_INV_R_OUT_OF_STOCK,
    OMS_INV_R_UNKNOWN_SKU,
    OMS_INV_R_COUNT,
};

typedef struct {
    oms_inv_catalogue_t catalogue;
    oms_inv_stock_t stock;
    oms_counter_t *reservations[OMS_INV_R_COUNT];
    oms_counter_t *releases;
    oms_counter_t *conflicts;
    /* A change holds the stripes of its SKUs (oms_inv_sku_hash() modulo
     * OMS_INV_SKU_LOCKS) from reading the map to updating it, so the
     * workers of one process take turns on a SKU instead of racing to a
     * version conflict. Conflicts remain possible between processes. */
    pthread_mutex_t sku_locks[OMS_INV_SKU_LOCKS];
} oms_inv_t;

/* Initialises inv's stock map and locks (its catalogue is loaded apart). */
void oms_inv_init(oms_inv_t *inv);
void oms_inv_free(oms_inv_t *inv);

/* start(): loads the stock, seeds the catalogue's missing SKUs
 * (StockAdded at EVS_EXPECT_NO_STREAM), creates the metrics. */
int oms_inv_start(oms_service_t *svc, void *inv);

/* InventoryRequested and ReleaseRequested. */
oms_result_t oms_inv_reserve(oms_worker_t *w, void *inv, const char *order_id,
                             const ProtobufCMessage *msg);
oms_result_t oms_inv_release(oms_worker_t *w, void *inv, const char *order_id,
                             const ProtobufCMessage *msg);

/* ==== committing stock changes (commit.c) ============================= */

/* One SKU of an order: merged over the order's items. */
typedef struct {
    char sku[OMS_INV_SKU_BYTES_MAX];
    uint32_t quantity;
} oms_inv_line_t;

typedef struct {
    oms_inv_line_t lines[OMS_INV_LINES_MAX];
    size_t count;
} oms_inv_lines_t;

/* Merges items by SKU into *out. Returns 0; -EINVAL with *bad naming the
 * SKU at fault for a quantity of 0, a sum over UINT32_MAX, more than
 * OMS_INV_LINES_MAX SKUs or no items at all (*bad ""); -ENOENT with *bad
 * naming a SKU that cannot name a stock stream (an unknown SKU). */
int oms_inv_lines_merge(Oms__V1__OrderItem *const *items, size_t n, oms_inv_lines_t *out,
                        const char **bad);

/* The lines as OrderItems (no prices) for an answer: fills items[] and
 * ptrs[] (OMS_INV_LINES_MAX each). */
void oms_inv_lines_items(const oms_inv_lines_t *lines, Oms__V1__OrderItem *items,
                         Oms__V1__OrderItem **ptrs);

typedef enum { OMS_INV_RESERVE, OMS_INV_RELEASE } oms_inv_kind_t;

#define OMS_INV_OUT_OF_STOCK "out_of_stock"
#define OMS_INV_UNKNOWN_SKU "unknown_sku"

/* Why a reservation cannot be made (reason OMS_INV_OUT_OF_STOCK or
 * OMS_INV_UNKNOWN_SKU): the first SKU short, what was asked and what there is. */
typedef struct {
    const char *reason;
    const char *sku;
    uint32_t requested;
    int64_t available;
} oms_inv_shortage_t;

/* A stock change and its answer, written as one batch. */
typedef struct {
    oms_inv_kind_t kind;
    const char *order_id;
    const oms_inv_lines_t *lines;
    const char *answer_stream;   /* inventory-<orderId> */
    int64_t answer_expected;     /* EVS_EXPECT_NO_STREAM or the exact version */
    const void *answer;          /* InventoryReserved or InventoryReleased */
} oms_inv_change_t;

/* Writes one StockReserved/StockReleased per line at the SKU's known
 * version, plus the answer, in one batch; on a version conflict on a stock
 * stream refreshes that SKU and tries again (at most
 * OMS_INV_CONFLICT_TRIES_MAX times, each counted in inv->conflicts). A
 * reservation first checks every line against the map (a SKU not in it is
 * looked up in the store once).
 * Returns OMS_ANS_WRITTEN or OMS_ANS_REPEATED (the map is updated),
 * OMS_ANS_STANDS (the answer stream was not as expected: an answer is
 * there), -ERANGE (a reservation is short: *short_out says why; nothing
 * written), -EBUSY (still conflicting after the tries), -ENOENT (a release
 * of a SKU whose stream is gone), or an error. */
int oms_inv_commit(oms_inv_t *inv, oms_store_t *s, const oms_inv_change_t *c,
                   oms_inv_shortage_t *short_out);

#endif
