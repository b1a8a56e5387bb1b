/* order_json.c -- an order as the API shows it, whatever it was read from:
 * the OrderPlaced of a POST (its 201 answer, replayed identically), an
 * order folded from its stream, or a read-model row (readmodel.c). */
#include <stdio.h>
#include <time.h>

#include "order.h"

void oms_ord_time_format(int64_t ns, char out[32])
{
    time_t s = (time_t)(ns / 1000000000);
    long us = (long)(ns % 1000000000) / 1000;
    if (us < 0) {
        s--;
        us += 1000000;
    }
    struct tm tm;
    gmtime_r(&s, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%06ldZ", date, us);
}

static json_t *time_json(int64_t ns)
{
    char text[32];
    oms_ord_time_format(ns, text);
    return json_string(text);
}

json_t *oms_ord_items_json(Oms__V1__OrderItem *const *items, size_t count)
{
    json_t *a = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(a, json_pack("{s:s,s:I,s:I}", "sku", items[i]->sku, "quantity",
                                           (json_int_t)items[i]->quantity, "unit_price_cents",
                                           (json_int_t)items[i]->unit_price_cents));
    return a;
}

json_t *oms_ord_placed_json(const Oms__V1__OrderPlaced *p)
{
    return json_pack("{s:s,s:s,s:s,s:o,s:I,s:s,s:o}", "order_id", p->order_id, "customer_id",
                     p->customer_id, "status", "PENDING", "items",
                     oms_ord_items_json(p->items, p->n_items), "total_cents",
                     (json_int_t)p->total_cents, "currency", p->currency, "placed_at",
                     time_json(p->placed_at_ns));
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *oms_ord_folded_json(const oms_ord_folded_t *f)
{
    const Oms__V1__OrderPlaced *p = f->placed;
    json_t *o = oms_ord_placed_json(p);
    json_object_set_new(o, "status", json_string(f->status));
    json_object_set_new(o, "item_count", json_integer((json_int_t)p->n_items));
    json_object_set_new(o, "failure_reason", str_or_null(f->failure_reason));
    /* The order stream alone does not say how far payment, inventory and
     * shipping got: the read model does, once it has the order. */
    json_object_set_new(o, "payment_status", json_null());
    json_object_set_new(o, "inventory_status", json_null());
    json_object_set_new(o, "shipment_status", json_null());
    json_object_set_new(o, "shipment_id", str_or_null(f->shipment_id));
    json_object_set_new(o, "updated_at", time_json(f->updated_at_ns));
    json_object_set_new(o, "placed_position", json_integer((json_int_t)f->placed_position));
    json_object_set_new(o, "last_position", json_integer((json_int_t)f->last_position));
    json_object_set_new(o, "source", json_string("store"));
    return o;
}
