/* stream.c -- the store side of the read routes.
 *
 * GET /orders/{id} answers from the read model when the order is there,
 * else folds order-<id> (a fresh order is in the store before the
 * projection has it). GET /orders/{id}/events reads the order's streams of
 * every category and merges them in log-position order: the audit trail.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oms_domain.h"
#include "order.h"
#include "pbjson.h"

#define STREAM_FOLD_EVENTS_MAX 64u /* events of order-<id> folded (it holds 2 or 3) */

/* The categories of an order's streams, as the domain lays them out. */
static const char *const stream_categories[] = {"order",     "saga",     "payment",
                                                "inventory", "shipment", "notification"};
#define STREAM_CATEGORY_COUNT (sizeof stream_categories / sizeof stream_categories[0])

/* ---- folding order-<id> ------------------------------------------------- */

typedef struct {
    oms_ord_folded_t *f;
    unsigned seen;
} stream_fold_t;

static void fold_verdict(oms_ord_folded_t *f, const evs_recorded_event_t *ev)
{
    if (strcmp(ev->type, "OrderCompleted") == 0) {
        Oms__V1__OrderCompleted *c =
            oms__v1__order_completed__unpack(NULL, ev->data_len, ev->data);
        f->status = "COMPLETED";
        if (c) {
            snprintf(f->shipment_id, sizeof f->shipment_id, "%s", c->shipment_id);
            oms__v1__order_completed__free_unpacked(c, NULL);
        }
    } else if (strcmp(ev->type, "OrderFailed") == 0) {
        Oms__V1__OrderFailed *x = oms__v1__order_failed__unpack(NULL, ev->data_len, ev->data);
        f->status = "FAILED";
        if (x) {
            snprintf(f->failure_reason, sizeof f->failure_reason, "%s", x->reason);
            oms__v1__order_failed__free_unpacked(x, NULL);
        }
    }
}

static int fold_event(void *ctx, const evs_recorded_event_t *ev)
{
    stream_fold_t *s = ctx;
    oms_ord_folded_t *f = s->f;
    if (++s->seen > STREAM_FOLD_EVENTS_MAX)
        return 1; /* enough: nothing more is expected there */
    if (strcmp(ev->type, "OrderPlaced") == 0) {
        if (f->placed)
            return 0;
        f->placed = oms__v1__order_placed__unpack(NULL, ev->data_len, ev->data);
        if (!f->placed)
            return 0; /* undecodable: the order is not shown */
        f->placed_position = ev->position;
    } else {
        fold_verdict(f, ev);
    }
    f->last_position = ev->position;
    f->updated_at_ns = ev->timestamp_ns;
    return 0;
}

int oms_ord_fold(oms_ord_t *svc, const char *order_id, oms_ord_folded_t *f)
{
    memset(f, 0, sizeof *f);
    f->status = "PENDING";
    char stream[OMS_NAME_BYTES_MAX];
    snprintf(stream, sizeof stream, "order-%s", order_id);
    stream_fold_t s = {f, 0};
    int rc = oms_read_stream(svc->store, stream, 0, fold_event, &s, NULL);
    return rc == 1 ? 0 : rc;
}

void oms_ord_folded_free(oms_ord_folded_t *f)
{
    if (f->placed)
        oms__v1__order_placed__free_unpacked(f->placed, NULL);
    f->placed = NULL;
}

void oms_ord_get(oms_ord_t *svc, const char *order_id, oms_ord_reply_t *out)
{
    json_t *row = NULL;
    int rc = oms_ord_rm_get(svc->readmodel_path, order_id, &row);
    if (rc == 0) {
        oms_ord_reply_json(out, 200, row);
        return;
    }
    /* Not projected (or the read model failed): the store has the truth. */
    oms_ord_folded_t f;
    rc = oms_ord_fold(svc, order_id, &f);
    if (rc != 0)
        oms_ord_reply_store_error(out, rc);
    else if (!f.placed)
        oms_ord_reply_error(out, 404, "not_found", NULL, "no order %s", order_id);
    else
        oms_ord_reply_json(out, 200, oms_ord_folded_json(&f));
    oms_ord_folded_free(&f);
}

/* ---- the audit trail ---------------------------------------------------- */

typedef struct {
    uint64_t position;
    json_t *event;
} trail_entry_t;

typedef struct {
    trail_entry_t *entries;
    size_t count;
    bool truncated;
} trail_t;

static json_t *trail_event_json(const evs_recorded_event_t *ev)
{
    char when[32];
    oms_ord_time_format(ev->timestamp_ns, when);
    json_t *o = json_pack("{s:I,s:s,s:I,s:s,s:s}", "position", (json_int_t)ev->position,
                          "stream", ev->stream, "version", (json_int_t)ev->version, "type",
                          ev->type, "timestamp", when);
    if (!o)
        return NULL;
    /* util's pbjson: the mapping openapi.json documents, and the JSON
     * `evstore-inspect dump --json` shows for the same event. */
    const ProtobufCMessageDescriptor *desc = oms_domain_descriptor(ev->type);
    json_t *data = desc ? pbjson_decode(desc, ev->data, ev->data_len) : NULL;
    if (data)
        json_object_set_new(o, "data", data);
    else
        json_object_set_new(o, "data_base64", pbjson_base64(ev->data, ev->data_len));
    return o;
}

static int trail_add(void *ctx, const evs_recorded_event_t *ev)
{
    trail_t *t = ctx;
    if (t->count == OMS_ORD_TRAIL_EVENTS_MAX) {
        t->truncated = true;
        return 1;
    }
    json_t *o = trail_event_json(ev);
    if (!o)
        return -ENOMEM;
    t->entries[t->count++] = (trail_entry_t){ev->position, o};
    return 0;
}

static int trail_cmp(const void *a, const void *b)
{
    uint64_t x = ((const trail_entry_t *)a)->position, y = ((const trail_entry_t *)b)->position;
    return x < y ? -1 : x > y;
}

/* Reads every stream of the order into t. Returns 0 or an evs error. */
static int trail_read(oms_ord_t *svc, const char *order_id, trail_t *t)
{
    for (size_t i = 0; i < STREAM_CATEGORY_COUNT && !t->truncated; i++) {
        char stream[OMS_NAME_BYTES_MAX];
        snprintf(stream, sizeof stream, "%s-%s", stream_categories[i], order_id);
        int rc = oms_read_stream(svc->store, stream, 0, trail_add, t, NULL);
        if (rc < 0)
            return rc;
        if (i == 0 && t->count == 0)
            return 0; /* no order stream: no order */
    }
    return 0;
}

void oms_ord_events(oms_ord_t *svc, const char *order_id, oms_ord_reply_t *out)
{
    trail_t t = {.entries = calloc(OMS_ORD_TRAIL_EVENTS_MAX, sizeof(trail_entry_t))};
    if (!t.entries) {
        oms_ord_reply_error(out, 500, "internal", NULL, "out of memory");
        return;
    }
    int rc = trail_read(svc, order_id, &t);
    if (rc == -ENOMEM)
        oms_ord_reply_error(out, 500, "internal", NULL, "out of memory");
    else if (rc != 0)
        oms_ord_reply_store_error(out, rc);
    else if (t.count == 0)
        oms_ord_reply_error(out, 404, "not_found", NULL, "no order %s", order_id);
    if (rc != 0 || t.count == 0) {
        for (size_t i = 0; i < t.count; i++)
            json_decref(t.entries[i].event);
        free(t.entries);
        return;
    }
    qsort(t.entries, t.count, sizeof *t.entries, trail_cmp);
    json_t *events = json_array();
    for (size_t i = 0; i < t.count; i++)
        json_array_append_new(events, t.entries[i].event);
    free(t.entries);
    oms_ord_reply_json(out, 200,
                       json_pack("{s:s,s:o,s:b}", "order_id", order_id, "events", events,
                                 "truncated", t.truncated));
}
