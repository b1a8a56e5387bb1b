/* catalogue.c -- the SKUs seeded at start: a JSON file or the built-in
 * set. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inventory.h"

bool oms_inv_sku_valid(const char *sku)
{
    size_t len = strnlen(sku, OMS_INV_SKU_BYTES_MAX);
    if (len == 0 || len >= OMS_INV_SKU_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)sku[i] <= ' ' || (unsigned char)sku[i] == 0x7f)
            return false;
    return true;
}

static int builtin_load(oms_inv_catalogue_t *out)
{
    size_t n = OMS_INV_BUILTIN_SKUS + 1;
    out->items = calloc(n, sizeof *out->items);
    if (!out->items)
        return -ENOMEM;
    for (size_t i = 0; i < OMS_INV_BUILTIN_SKUS; i++) {
        snprintf(out->items[i].sku, sizeof out->items[i].sku, "sku-%04zu", i + 1);
        out->items[i].quantity = OMS_INV_BUILTIN_UNITS;
    }
    snprintf(out->items[n - 1].sku, sizeof out->items[n - 1].sku, "%s", OMS_INV_OOS_SKU);
    out->items[n - 1].quantity = 0;
    out->count = n;
    return 0;
}

/* Fills *item from entry i of the file's array. */
static int entry_parse(const char *path, size_t i, json_t *e, oms_inv_item_t *item)
{
    json_t *sku = json_object_get(e, "sku"), *qty = json_object_get(e, "quantity");
    if (!json_is_object(e) || !json_is_string(sku) || !json_is_integer(qty)) {
        fprintf(stderr, "%s: entry %zu: want {\"sku\": \"...\", \"quantity\": N}\n", path, i);
        return -EINVAL;
    }
    json_int_t q = json_integer_value(qty);
    if (!oms_inv_sku_valid(json_string_value(sku)) || q < 0 || q > UINT32_MAX) {
        fprintf(stderr, "%s: entry %zu: bad sku (1..%u printable bytes) or quantity (0..%u)\n",
                path, i, OMS_INV_SKU_BYTES_MAX - 1, UINT32_MAX);
        return -EINVAL;
    }
    snprintf(item->sku, sizeof item->sku, "%s", json_string_value(sku));
    item->quantity = (uint32_t)q;
    return 0;
}

static int file_load(const char *path, oms_inv_catalogue_t *out)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int err = errno;
        fprintf(stderr, "%s: %s\n", path, strerror(err));
        return -err;
    }
    if (sb.st_size > (off_t)OMS_INV_CATALOGUE_BYTES_MAX) {
        fprintf(stderr, "%s: over %u bytes\n", path, OMS_INV_CATALOGUE_BYTES_MAX);
        return -EFBIG;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
        return -EINVAL;
    }
    int rc = -EINVAL;
    size_t n = json_is_array(root) ? json_array_size(root) : 0;
    if (!json_is_array(root) || n > OMS_INV_CATALOGUE_MAX) {
        fprintf(stderr, "%s: want a JSON array of at most %u entries\n", path,
                OMS_INV_CATALOGUE_MAX);
        goto out_root;
    }
    out->items = calloc(n ? n : 1, sizeof *out->items);
    if (!out->items) {
        rc = -ENOMEM;
        goto out_root;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = entry_parse(path, i, json_array_get(root, i), &out->items[i])) != 0)
            goto out_items;
    out->count = n;
    rc = 0;
    goto out_root;
out_items:
    free(out->items);
    out->items = NULL;
out_root:
    json_decref(root);
    return rc;
}

int oms_inv_catalogue_load(const char *path, oms_inv_catalogue_t *out)
{
    memset(out, 0, sizeof *out);
    return path ? file_load(path, out) : builtin_load(out);
}

void oms_inv_catalogue_free(oms_inv_catalogue_t *c)
{
    free(c->items);
    memset(c, 0, sizeof *c);
}
