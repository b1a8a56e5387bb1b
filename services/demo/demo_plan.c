/* demo_plan.c -- what oms-demo places: the mix of kinds, and each order's
 * JSON body, reproducible from the seed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

static const char *const kind_names[DEMO_KINDS] = {"success", "declined", "oos", "shipfail"};

static const char *const reason_names[DEMO_REASONS] = {
    "payment_declined", "out_of_stock",      "shipping_failed", "payment_timeout",
    "inventory_timeout", "shipping_timeout", "other",
};

const char *demo_kind_name(demo_kind_t k)
{
    return k < DEMO_KINDS ? kind_names[k] : "?";
}

const char *demo_reason_name(demo_reason_t r)
{
    return r < DEMO_REASONS ? reason_names[r] : "?";
}

demo_reason_t demo_reason_parse(const char *text)
{
    for (int r = 0; r < DEMO_R_OTHER; r++) {
        if (text != NULL && strcmp(text, reason_names[r]) == 0)
            return (demo_reason_t)r;
    }
    return DEMO_R_OTHER;
}

int demo_mix_parse(const char *text, uint32_t mix[DEMO_KINDS])
{
    memset(mix, 0, sizeof(uint32_t) * DEMO_KINDS);
    uint64_t sum = 0;
    const char *p = text;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        int kind = -1;
        for (int k = 0; eq != NULL && k < DEMO_KINDS; k++) {
            if ((size_t)(eq - p) == strlen(kind_names[k]) && memcmp(p, kind_names[k], eq - p) == 0)
                kind = k;
        }
        char *end = NULL;
        unsigned long w = kind >= 0 ? strtoul(eq + 1, &end, 10) : 0;
        if (kind < 0 || end == eq + 1 || end != p + len || w > 1000000) {
            fprintf(stderr, "oms-demo: --mix: bad part '%.*s' (want KIND=WEIGHT, KIND one of "
                    "success, declined, oos, shipfail)\n", (int)len, p);
            return -EINVAL;
        }
        mix[kind] = (uint32_t)w;
        sum += w;
        p += len;
        if (*p == ',')
            p++;
    }
    if (sum == 0) {
        fprintf(stderr, "oms-demo: --mix: every weight is 0\n");
        return -EINVAL;
    }
    return 0;
}

/* splitmix64: a small, good 64-bit mixer; one state per order keeps each
 * order's content independent of which thread sends it. */
static uint64_t mix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void demo_plan_kinds(demo_order_t *orders, size_t n, const uint32_t mix[DEMO_KINDS],
                     uint64_t seed)
{
    uint64_t sum = 0;
    for (int k = 0; k < DEMO_KINDS; k++)
        sum += mix[k];
    size_t count[DEMO_KINDS], given = 0;
    uint64_t frac[DEMO_KINDS];
    for (int k = 0; k < DEMO_KINDS; k++) {
        count[k] = (size_t)((uint64_t)n * mix[k] / sum);
        frac[k] = (uint64_t)n * mix[k] % sum;
        given += count[k];
    }
    while (given < n) { /* at most DEMO_KINDS rounds */
        int best = 0;
        for (int k = 1; k < DEMO_KINDS; k++) {
            if (frac[k] > frac[best])
                best = k;
        }
        count[best]++;
        frac[best] = 0;
        given++;
    }
    size_t i = 0;
    for (int k = 0; k < DEMO_KINDS; k++) {
        for (size_t c = 0; c < count[k]; c++)
            orders[i++].kind = (demo_kind_t)k;
    }
    uint64_t state = seed;
    for (size_t j = n; j > 1; j--) { /* Fisher-Yates */
        size_t r = (size_t)(mix64(&state) % j);
        demo_kind_t t = orders[j - 1].kind;
        orders[j - 1].kind = orders[r].kind;
        orders[r].kind = t;
    }
}

/* Appends printf output to buf at *len; false when it did not fit. */
__attribute__((format(printf, 4, 5))) static bool put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= cap - *len)
        return false;
    *len += (size_t)w;
    return true;
}

static int64_t sku_price_cents(unsigned sku)
{
    return 199 + (int64_t)(sku * 137u % 9800u);
}

static bool put_items(char *buf, size_t cap, size_t *len, demo_kind_t k, uint64_t *state)
{
    unsigned items = 1 + (unsigned)(mix64(state) % DEMO_ITEMS_MAX);
    if (k == DEMO_OOS)
        items = 1; /* one normal item, then the one of sku-oos */
    bool ok = put(buf, cap, len, "\"items\":[");
    unsigned first = (unsigned)(mix64(state) % DEMO_SKUS);
    for (unsigned j = 0; ok && j < items; j++) {
        unsigned sku = 1 + (first + j * 37u) % DEMO_SKUS; /* distinct within the order */
        ok = put(buf, cap, len, "%s{\"sku\":\"sku-%04u\",\"quantity\":1,\"unit_price_cents\":%lld}",
                 j > 0 ? "," : "", sku, (long long)sku_price_cents(sku));
    }
    if (ok && k == DEMO_OOS)
        ok = put(buf, cap, len, ",{\"sku\":\"sku-oos\",\"quantity\":1,\"unit_price_cents\":999}");
    return ok && put(buf, cap, len, "]");
}

int demo_plan_body(demo_kind_t k, uint64_t seed, size_t i, char *buf, size_t cap)
{
    uint64_t state = seed ^ (0x5851f42d4c957f2dull * (uint64_t)(i + 1));
    unsigned cust = 1 + (unsigned)(mix64(&state) % DEMO_CUSTOMERS);
    size_t len = 0;
    bool ok = put(buf, cap, &len,
                  "{\"customer_id\":\"cust-%04u\",\"currency\":\"EUR\",\"payment_token\":\"%s\",",
                  cust, k == DEMO_DECLINED ? "tok_decline" : "tok_visa");
    ok = ok && put_items(buf, cap, &len, k, &state);
    ok = ok && put(buf, cap, &len,
                   ",\"shipping_address\":{\"name\":\"Customer %u\",\"line1\":\"Hauptstrasse %u\","
                   "\"city\":\"Berlin\",\"postal_code\":\"10115\",\"country\":\"%s\"}}",
                   cust, cust, k == DEMO_SHIPFAIL ? "ZZ" : "DE");
    return ok ? (int)len : -ENOSPC;
}

void demo_plan_key(uint64_t run, size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "demo-%016llx-%zu", (unsigned long long)run, i);
}
