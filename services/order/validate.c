/* validate.c -- the body of POST /orders, checked field by field.
 *
 * The body must be a JSON object with exactly the documented fields (an
 * unknown field is refused: a typo must not pass silently), each of its
 * type, within its limit (order.h). The first fault found is reported
 * with its code and field path ("items[2].quantity"). The total is not
 * taken from the client: it is computed here, with an overflow check.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "order.h"

typedef bool (*charset_fn)(const char *s, size_t len);

/* A string field's rule: length in bytes and characters. */
typedef struct {
    const char *name;
    size_t min, max;
    charset_fn ok;
    const char *what; /* for the message: "[A-Za-z0-9._-]" */
} str_rule_t;

static int v_fail(oms_ord_invalid_t *why, const char *code, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int v_fail(oms_ord_invalid_t *why, const char *code, const char *field,
                  const char *fmt, ...)
{
    why->status = 400;
    why->code = code;
    snprintf(why->field, sizeof why->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof why->message, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* ---- character sets ---------------------------------------------------- */

static bool cs_id(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool cs_upper(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
    return true;
}

static bool cs_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

static bool cs_postal(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ' ' || c == '-'))
            return false;
    }
    return true;
}

/* Text: any UTF-8 (the JSON parser checked it) without control characters. */
static bool cs_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

bool oms_ord_id_ok(const char *text, size_t max)
{
    size_t len = text ? strlen(text) : 0;
    return len >= 1 && len <= max && cs_id(text, len);
}

bool oms_ord_idempotency_key_ok(const char *key)
{
    size_t len = key ? strlen(key) : 0;
    if (len < 1 || len > OMS_ORD_IDEMPOTENCY_KEY_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (key[i] < 0x20 || key[i] > 0x7e)
            return false;
    return true;
}

/* ---- fields ------------------------------------------------------------ */

static void v_path(char *out, size_t cap, const char *prefix, const char *name)
{
    snprintf(out, cap, "%s%s%s", prefix, *prefix ? "." : "", name);
}

/* Refuses any key of obj not in allowed[0..n). */
static int v_known_keys(json_t *obj, const char *const *allowed, size_t n, const char *prefix,
                        oms_ord_invalid_t *why)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        size_t i = 0;
        while (i < n && strcmp(allowed[i], key) != 0)
            i++;
        if (i == n) {
            char field[96];
            v_path(field, sizeof field, prefix, key);
            return v_fail(why, "unknown_field", field, "unknown field \"%.60s\"", key);
        }
    }
    return 0;
}

/* Gets obj[key] of the JSON type want, or fails with missing_field or
 * invalid_type (and *out is NULL). */
static int v_get(json_t *obj, const char *key, json_type want, const char *prefix,
                 json_t **out, oms_ord_invalid_t *why)
{
    static const char *const type_names[] = {"an object", "an array", "a string", "an integer",
                                             "a number", "a boolean", "a boolean", "null"};
    *out = NULL;
    char field[96];
    v_path(field, sizeof field, prefix, key);
    json_t *v = json_object_get(obj, key);
    if (!v)
        return v_fail(why, "missing_field", field, "%s is required", field);
    if (json_typeof(v) != want)
        return v_fail(why, "invalid_type", field, "%s must be %s", field, type_names[want]);
    *out = v;
    return 0;
}

static int v_string(json_t *obj, const str_rule_t *rule, const char *prefix, char **out,
                    oms_ord_invalid_t *why)
{
    json_t *v;
    int rc = v_get(obj, rule->name, JSON_STRING, prefix, &v, why);
    if (rc < 0)
        return rc;
    char field[96];
    v_path(field, sizeof field, prefix, rule->name);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len || len < rule->min || len > rule->max || !rule->ok(s, len)) {
        if (rule->min == rule->max)
            return v_fail(why, "invalid_value", field, "%s must be %zu characters of %s",
                          field, rule->min, rule->what);
        return v_fail(why, "invalid_value", field, "%s must be %zu..%zu bytes of %s", field,
                      rule->min, rule->max, rule->what);
    }
    *out = (char *)s; /* lives as long as the parsed body */
    return 0;
}

static int v_integer(json_t *obj, const char *key, const char *prefix, long long min,
                     long long max, long long *out, oms_ord_invalid_t *why)
{
    json_t *v;
    int rc = v_get(obj, key, JSON_INTEGER, prefix, &v, why);
    if (rc < 0)
        return rc;
    long long n = json_integer_value(v);
    if (n < min || n > max) {
        char field[96];
        v_path(field, sizeof field, prefix, key);
        return v_fail(why, "out_of_range", field, "%s must be in [%lld, %lld]", field, min, max);
    }
    *out = n;
    return 0;
}

/* ---- the parts of an order -------------------------------------------- */

static const str_rule_t rule_customer = {"customer_id", 1, OMS_ORD_ID_BYTES_MAX, cs_id,
                                         "[A-Za-z0-9._-]"};
static const str_rule_t rule_sku = {"sku", 1, OMS_ORD_ID_BYTES_MAX, cs_id, "[A-Za-z0-9._-]"};
static const str_rule_t rule_currency = {"currency", 3, 3, cs_upper, "[A-Z] (ISO 4217)"};
static const str_rule_t rule_token = {"payment_token", 1, OMS_ORD_TOKEN_BYTES_MAX, cs_token,
                                      "printable ASCII without blanks"};
static const str_rule_t rule_name = {"name", 1, OMS_ORD_NAME_BYTES_MAX, cs_text,
                                     "text without control characters"};
static const str_rule_t rule_line1 = {"line1", 1, OMS_ORD_LINE_BYTES_MAX, cs_text,
                                      "text without control characters"};
static const str_rule_t rule_city = {"city", 1, OMS_ORD_NAME_BYTES_MAX, cs_text,
                                     "text without control characters"};
static const str_rule_t rule_postal = {"postal_code", 1, OMS_ORD_POSTAL_BYTES_MAX, cs_postal,
                                       "[A-Za-z0-9 -]"};
static const str_rule_t rule_country = {"country", 2, 2, cs_upper, "[A-Z] (ISO 3166 alpha-2)"};

static int v_item(json_t *item, size_t index, Oms__V1__OrderItem *out, oms_ord_invalid_t *why)
{
    static const char *const keys[] = {"sku", "quantity", "unit_price_cents"};
    char prefix[32];
    snprintf(prefix, sizeof prefix, "items[%zu]", index);
    if (!json_is_object(item))
        return v_fail(why, "invalid_type", prefix, "%s must be an object", prefix);
    long long quantity, price;
    int rc = v_known_keys(item, keys, 3, prefix, why);
    if (rc == 0)
        rc = v_string(item, &rule_sku, prefix, &out->sku, why);
    if (rc == 0)
        rc = v_integer(item, "quantity", prefix, OMS_ORD_QUANTITY_MIN, OMS_ORD_QUANTITY_MAX,
                       &quantity, why);
    if (rc == 0)
        rc = v_integer(item, "unit_price_cents", prefix, OMS_ORD_UNIT_PRICE_CENTS_MIN,
                       OMS_ORD_UNIT_PRICE_CENTS_MAX, &price, why);
    if (rc < 0)
        return rc;
    out->quantity = (uint32_t)quantity;
    out->unit_price_cents = price;
    return 0;
}

/* The items, each checked, no SKU twice, and the total they make. */
static int v_items(json_t *root, oms_ord_new_t *o, oms_ord_invalid_t *why)
{
    json_t *items;
    int rc = v_get(root, "items", JSON_ARRAY, "", &items, why);
    if (rc < 0)
        return rc;
    size_t n = json_array_size(items);
    if (n == 0)
        return v_fail(why, "invalid_value", "items", "an order needs at least one item");
    if (n > OMS_ORD_ITEMS_MAX)
        return v_fail(why, "too_many_items", "items", "at most %u items per order",
                      OMS_ORD_ITEMS_MAX);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        Oms__V1__OrderItem *it = &o->items[i];
        oms__v1__order_item__init(it);
        rc = v_item(json_array_get(items, i), i, it, why);
        if (rc < 0)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(o->items[k].sku, it->sku) == 0) {
                char field[32];
                snprintf(field, sizeof field, "items[%zu].sku", i);
                return v_fail(why, "duplicate_sku", field,
                              "SKU %s appears twice: give one item with the total quantity",
                              it->sku);
            }
        int64_t line;
        if (__builtin_mul_overflow((int64_t)it->quantity, it->unit_price_cents, &line) ||
            __builtin_add_overflow(total, line, &total) || total > OMS_ORD_TOTAL_CENTS_MAX)
            return v_fail(why, "total_too_large", "items",
                          "the order's total is over %lld cents", OMS_ORD_TOTAL_CENTS_MAX);
        o->item_ptrs[i] = it;
    }
    o->msg.n_items = n;
    o->msg.items = o->item_ptrs;
    o->msg.total_cents = total;
    return 0;
}

static int v_address(json_t *root, oms_ord_new_t *o, oms_ord_invalid_t *why)
{
    static const char *const keys[] = {"name", "line1", "city", "postal_code", "country"};
    static const char prefix[] = "shipping_address";
    json_t *a;
    int rc = v_get(root, prefix, JSON_OBJECT, "", &a, why);
    if (rc == 0)
        rc = v_known_keys(a, keys, 5, prefix, why);
    Oms__V1__Address *ad = &o->address;
    if (rc == 0)
        rc = v_string(a, &rule_name, prefix, &ad->name, why);
    if (rc == 0)
        rc = v_string(a, &rule_line1, prefix, &ad->line1, why);
    if (rc == 0)
        rc = v_string(a, &rule_city, prefix, &ad->city, why);
    if (rc == 0)
        rc = v_string(a, &rule_postal, prefix, &ad->postal_code, why);
    if (rc == 0)
        rc = v_string(a, &rule_country, prefix, &ad->country, why);
    if (rc == 0)
        o->msg.shipping_address = ad;
    return rc;
}

int oms_ord_validate(const char *body, size_t len, oms_ord_new_t *o, oms_ord_invalid_t *why)
{
    static const char *const keys[] = {"customer_id", "items", "currency", "payment_token",
                                       "shipping_address"};
    memset(o, 0, sizeof *o);
    oms__v1__order_placed__init(&o->msg);
    oms__v1__address__init(&o->address);
    json_error_t err;
    o->json = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!o->json)
        return v_fail(why, "invalid_json", NULL, "the body is not valid JSON: %s (line %d, "
                      "column %d)", err.text, err.line, err.column);
    if (!json_is_object(o->json))
        return v_fail(why, "invalid_type", NULL, "the body must be a JSON object");
    int rc = v_known_keys(o->json, keys, 5, "", why);
    if (rc == 0)
        rc = v_string(o->json, &rule_customer, "", &o->msg.customer_id, why);
    if (rc == 0)
        rc = v_items(o->json, o, why);
    if (rc == 0)
        rc = v_string(o->json, &rule_currency, "", &o->msg.currency, why);
    if (rc == 0)
        rc = v_string(o->json, &rule_token, "", &o->msg.payment_token, why);
    if (rc == 0)
        rc = v_address(o->json, o, why);
    return rc;
}

void oms_ord_new_free(oms_ord_new_t *o)
{
    json_decref(o->json);
    o->json = NULL;
}

/* ---- comparing requests ------------------------------------------------ */

static bool same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool same_address(const Oms__V1__Address *a, const Oms__V1__Address *b)
{
    if (!a || !b)
        return a == b;
    return same_str(a->name, b->name) && same_str(a->line1, b->line1) &&
           same_str(a->city, b->city) && same_str(a->postal_code, b->postal_code) &&
           same_str(a->country, b->country);
}

bool oms_ord_same_request(const Oms__V1__OrderPlaced *a, const Oms__V1__OrderPlaced *b)
{
    if (!same_str(a->customer_id, b->customer_id) || !same_str(a->currency, b->currency) ||
        !same_str(a->payment_token, b->payment_token) || a->n_items != b->n_items ||
        !same_address(a->shipping_address, b->shipping_address))
        return false;
    for (size_t i = 0; i < a->n_items; i++) {
        const Oms__V1__OrderItem *x = a->items[i], *y = b->items[i];
        if (!same_str(x->sku, y->sku) || x->quantity != y->quantity ||
            x->unit_price_cents != y->unit_price_cents)
            return false;
    }
    return true;
}
