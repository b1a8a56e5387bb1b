/* main.c -- oms-inventory: flags, start-up (load the stock, seed the
 * catalogue), then the group-driven service. */
#include <stdio.h>
#include <stdlib.h>

#include "inventory.h"

/* Seeds a catalogue SKU whose stream does not exist: StockAdded at
 * EVS_EXPECT_NO_STREAM (another instance seeding it too is fine), then
 * the map reads what the stream holds. */
static int seed_one(oms_inv_t *inv, oms_store_t *s, const oms_inv_item_t *item)
{
    int64_t available, version;
    if (oms_inv_stock_get(&inv->stock, item->sku, &available, &version) == 0)
        return 0;
    char stream[OMS_NAME_BYTES_MAX];
    int rc = oms_ans_stream(stream, "stock", item->sku);
    if (rc)
        return rc;
    Oms__V1__StockAdded added = OMS__V1__STOCK_ADDED__INIT;
    added.sku = (char *)item->sku;
    added.quantity = item->quantity;
    added.reason = "seed";
    rc = oms_ans_write(s, stream, EVS_EXPECT_NO_STREAM, &added, item->sku, "seed");
    return rc < 0 ? rc : oms_inv_stock_refresh(&inv->stock, s, item->sku);
}

int oms_inv_start(oms_service_t *svc, void *ctx)
{
    static const char *const results[OMS_INV_R_COUNT] = {
        [OMS_INV_R_RESERVED] = "reserved", [OMS_INV_R_OUT_OF_STOCK] = OMS_INV_OUT_OF_STOCK,
        [OMS_INV_R_UNKNOWN_SKU] = OMS_INV_UNKNOWN_SKU,
    };
    oms_inv_t *inv = ctx;
    oms_store_t *s = oms_service_store(svc);
    oms_metrics_t *m = oms_service_metrics(svc);
    int rc = oms_inv_stock_load(&inv->stock, s);
    if (rc) {
        fprintf(stderr, "oms-inventory: loading $ce-stock: %s\n", evs_strerror(rc));
        return 1;
    }
    size_t loaded = inv->stock.count;
    for (size_t i = 0; i < inv->catalogue.count; i++)
        if ((rc = seed_one(inv, s, &inv->catalogue.items[i])) != 0) {
            fprintf(stderr, "oms-inventory: seeding %s: %s\n", inv->catalogue.items[i].sku,
                    evs_strerror(rc));
            return 1;
        }
    oms_ans_counters(m, "oms_inventory_reservations_total", "Reservation answers written.",
                     "result", results, OMS_INV_R_COUNT, inv->reservations);
    inv->releases = oms_metrics_counter(m, "oms_inventory_releases_total",
                                        "Release answers written.", NULL);
    inv->conflicts = oms_metrics_counter(m, "oms_inventory_conflicts_total",
                                         "Stock version conflicts retried.", NULL);
    for (size_t i = 0; i < inv->catalogue.count && i < OMS_INV_GAUGES_MAX; i++) {
        char labels[OMS_NAME_BYTES_MAX];
        snprintf(labels, sizeof labels, "sku=\"%s\"", inv->catalogue.items[i].sku);
        oms_inv_stock_watch(&inv->stock, inv->catalogue.items[i].sku,
                            oms_metrics_gauge(m, "oms_stock_available",
                                              "Units available, per catalogue SKU.", labels));
    }
    fprintf(stderr, "oms-inventory: %zu SKUs loaded, %zu seeded\n", loaded,
            inv->stock.count - loaded);
    return 0;
}

int main(int argc, char **argv)
{
    const char *catalogue = NULL;
    const oms_opt_t opts[] = {
        {"catalogue", "OMS_CATALOGUE",
         "JSON file [{\"sku\": \"...\", \"quantity\": N}] of SKUs to seed when their stream is "
         "missing (default: sku-0001..sku-0100 with 1000000 units, sku-oos with 0)",
         &catalogue, false},
    };
    oms_config_t cfg;
    if (oms_config_parse(&cfg, "inventory", OMS_METRICS_PORT_INVENTORY, argc, argv, opts,
                         sizeof opts / sizeof opts[0]) != 0)
        return 2;
    static oms_inv_t inv;
    if (oms_inv_catalogue_load(catalogue, &inv.catalogue) != 0)
        return 2;
    oms_inv_init(&inv);
    static const oms_ans_route_t routes[] = {
        {&oms__v1__inventory_requested__descriptor, oms_inv_reserve},
        {&oms__v1__release_requested__descriptor, oms_inv_release},
    };
    const oms_ans_service_t svc = {
        .group = "oms-inventory",
        .source = "$ce-saga",
        .routes = routes,
        .route_count = sizeof routes / sizeof routes[0],
        .start = oms_inv_start,
        .ctx = &inv,
    };
    int rc = oms_ans_run(&cfg, &svc);
    oms_inv_free(&inv);
    oms_inv_catalogue_free(&inv.catalogue);
    return rc == 0 ? 0 : 1;
}
