/* place.c -- POST /orders: a validated order becomes OrderPlaced, the first
 * event of order-<id>, appended with EVS_EXPECT_NO_STREAM.
 *
 * Idempotency: with an Idempotency-Key header the order id is derived from
 * the customer and the key (XXH128, 32 hex digits), so a retry lands on the
 * same stream. The append then finds the stream there (or the store
 * recognises the event id, which derives from the order id): the stored
 * OrderPlaced is read back, and the same request (customer, items,
 * currency, token, address) gets the first answer again, with
 * Idempotent-Replayed: true; another request with that key gets 409.
 * Without a key the order id is random.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "order.h"

/* The stored first event of an order stream (copied). */
typedef struct {
    bool found;
    char type[64];
    uint8_t *data;
    size_t len;
} place_first_t;

static bool place_content_type_ok(const char *ct)
{
    static const char json[] = "application/json";
    size_t n = sizeof json - 1;
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, json, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

/* The order id of (customer, key): 32 lowercase hex digits. */
static void place_derive_id(const char *customer_id, const char *key, char out[33])
{
    /* '\n' is in neither a customer id nor a key: distinct pairs, distinct texts. */
    char text[OMS_ORD_ID_BYTES_MAX + OMS_ORD_IDEMPOTENCY_KEY_BYTES_MAX + 2];
    int n = snprintf(text, sizeof text, "%s\n%s", customer_id, key);
    XXH128_hash_t h = XXH3_128bits(text, n < 0 ? 0 : (size_t)n);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof c.digest; i++) {
        out[2 * i] = hex[c.digest[i] >> 4];
        out[2 * i + 1] = hex[c.digest[i] & 15];
    }
    out[32] = '\0';
}

static void place_created(oms_ord_reply_t *out, const Oms__V1__OrderPlaced *p, bool replayed)
{
    char location[96];
    snprintf(location, sizeof location, "/orders/%s", p->order_id);
    oms_ord_reply_json(out, 201, oms_ord_placed_json(p));
    oms_ord_reply_header(out, "Location", location);
    if (replayed)
        oms_ord_reply_header(out, "Idempotent-Replayed", "true");
}

static int place_first_event(void *ctx, const evs_recorded_event_t *ev)
{
    place_first_t *f = ctx;
    snprintf(f->type, sizeof f->type, "%s", ev->type);
    f->data = malloc(ev->data_len ? ev->data_len : 1);
    if (!f->data)
        return -ENOMEM;
    memcpy(f->data, ev->data, ev->data_len);
    f->len = ev->data_len;
    f->found = true;
    return 1; /* only the first one */
}

/* The stream exists: decide between our own (retried) write, a replay
 * and a reused key. */
static void place_existing(oms_ord_t *svc, const oms_ord_new_t *o, const evs_event_t *ev,
                           const char *stream, oms_ord_reply_t *out)
{
    place_first_t first = {0};
    int rc = oms_read_stream(svc->store, stream, 0, place_first_event, &first, NULL);
    if (rc < 0 && rc != -ENOMEM) {
        oms_ord_reply_store_error(out, rc);
        goto out_free;
    }
    Oms__V1__OrderPlaced *stored =
        first.found && strcmp(first.type, "OrderPlaced") == 0
            ? oms__v1__order_placed__unpack(NULL, first.len, first.data)
            : NULL;
    if (!stored) {
        oms_ord_reply_error(out, 500, "internal", NULL, "%s holds no readable OrderPlaced",
                            stream);
    } else if (first.len == ev->data_len && memcmp(first.data, ev->data, first.len) == 0) {
        place_created(out, &o->msg, false); /* our own write, retried by the runtime */
        oms_counter_add(svc->orders_placed, 1);
    } else if (o->idempotency_key[0] && oms_ord_same_request(stored, &o->msg)) {
        place_created(out, stored, true);
        oms_counter_add(svc->idempotent_replays, 1);
    } else if (o->idempotency_key[0]) {
        oms_ord_reply_error(out, 409, "idempotency_key_reused", "Idempotency-Key",
                            "this Idempotency-Key was used for a different order (%s)",
                            stored->order_id);
    } else {
        oms_ord_reply_error(out, 500, "internal", NULL, "order id %s collided", o->order_id);
    }
    if (stored)
        oms__v1__order_placed__free_unpacked(stored, NULL);
out_free:
    free(first.data);
}

static void place_append(oms_ord_t *svc, oms_ord_new_t *o, oms_ord_reply_t *out)
{
    evs_event_t ev;
    if (oms_event_make(&ev, &o->msg, o->order_id, "placed") != 0) {
        oms_ord_reply_error(out, 500, "internal", NULL, "out of memory");
        return;
    }
    char stream[OMS_NAME_BYTES_MAX];
    snprintf(stream, sizeof stream, "order-%s", o->order_id);
    evs_append_result_t res;
    int rc = oms_append_one(svc->store, stream, EVS_EXPECT_NO_STREAM, &ev, 1, &res);
    if (rc == 0 && !res.idempotent) {
        place_created(out, &o->msg, false);
        oms_counter_add(svc->orders_placed, 1);
    } else if (rc == 0 || rc == EVS_EWRONG_VERSION || rc == EVS_EIDEMPOTENCY) {
        place_existing(svc, o, &ev, stream, out);
    } else {
        oms_ord_reply_store_error(out, rc);
    }
    oms_event_free_data(&ev);
}

void oms_ord_place(oms_ord_t *svc, const oms_ord_req_t *req, oms_ord_reply_t *out)
{
    if (!place_content_type_ok(oms_ord_req_header(req, "Content-Type"))) {
        oms_ord_reply_error(out, 415, "unsupported_media_type", NULL,
                            "POST /orders takes Content-Type: application/json");
        return;
    }
    const char *key = oms_ord_req_header(req, "Idempotency-Key");
    if (key && !oms_ord_idempotency_key_ok(key)) {
        oms_ord_reply_error(out, 400, "invalid_idempotency_key", "Idempotency-Key",
                            "an Idempotency-Key is 1..%u printable ASCII characters",
                            OMS_ORD_IDEMPOTENCY_KEY_BYTES_MAX);
        return;
    }
    oms_ord_new_t *o = malloc(sizeof *o);
    if (!o) {
        oms_ord_reply_error(out, 500, "internal", NULL, "out of memory");
        return;
    }
    size_t len;
    const char *body = oms_ord_req_body(req, &len);
    oms_ord_invalid_t why;
    if (oms_ord_validate(body, len, o, &why) != 0) {
        oms_ord_reply_error(out, why.status, why.code, why.field[0] ? why.field : NULL, "%s",
                            why.message);
        goto out_free;
    }
    if (key) {
        snprintf(o->idempotency_key, sizeof o->idempotency_key, "%s", key);
        place_derive_id(o->msg.customer_id, key, o->order_id);
    } else {
        oms_order_id_random(o->order_id);
    }
    o->msg.order_id = o->order_id;
    o->msg.idempotency_key = o->idempotency_key;
    o->msg.placed_at_ns = oms_now_ns();
    place_append(svc, o, out);
out_free:
    oms_ord_new_free(o);
    free(o);
}
