/* proj_items.c -- items_json, the order's lines as oms-order serves them. */
#include <errno.h>
#include <jansson.h>

#include "oms.pb-c.h"
#include "proj.h"

int oms_proj_items_json(struct Oms__V1__OrderItem *const *items, size_t count, char **json)
{
    *json = NULL;
    json_t *array = json_array();
    if (!array)
        return -ENOMEM;
    int err = 0;
    for (size_t i = 0; i < count && !err; i++) {
        const Oms__V1__OrderItem *it = items[i];
        if (!*it->sku || it->unit_price_cents < 0) {
            err = -EBADMSG;
            break;
        }
        /* json_pack fails on a sku that is not UTF-8: the event is bad. */
        json_t *line = json_pack("{s:s, s:I, s:I}", "sku", it->sku, "quantity",
                                 (json_int_t)it->quantity, "unit_price_cents",
                                 (json_int_t)it->unit_price_cents);
        if (!line || json_array_append_new(array, line) != 0)
            err = -EBADMSG;
    }
    if (!err) {
        *json = json_dumps(array, JSON_COMPACT);
        if (!*json)
            err = -ENOMEM;
    }
    json_decref(array);
    return err;
}
