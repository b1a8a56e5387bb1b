/* shipping.c -- ShipmentRequested and ShipmentCancelRequested, answered in
 * shipment-<orderId>. Both answers are written at EVS_EXPECT_NO_STREAM: the
 * first one wins, so an order is shipped, refused or cancelled, once. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "oms.pb-c.h"
#include "shipping.h"

bool oms_ship_list_has(const char *list, const char *code)
{
    size_t len = strlen(code);
    if (len == 0)
        return false;
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && last[-1] == ' ')
            last--;
        if ((size_t)(last - p) == len && strncasecmp(p, code, len) == 0)
            return true;
        p = end;
    }
    return false;
}

int oms_ship_start(oms_service_t *svc, void *ctx)
{
    static const char *const results[OMS_SHIP_R_COUNT] = {
        [OMS_SHIP_R_SHIPPED] = "shipped", [OMS_SHIP_R_FAILED] = "failed",
        [OMS_SHIP_R_CANCELLED] = "cancelled",
    };
    oms_ship_t *sh = ctx;
    oms_ans_counters(oms_service_metrics(svc), "oms_shipments_total",
                     "Shipment answers written, by result.", "result", results, OMS_SHIP_R_COUNT,
                     sh->results);
    return 0;
}

/* Writes answer and counts it as result when this call wrote it. */
static oms_result_t ship_answer(oms_worker_t *w, oms_ship_t *sh, const char *order_id,
                                const void *answer, const char *step, int result)
{
    char stream[OMS_NAME_BYTES_MAX];
    int rc = oms_ans_stream(stream, "shipment", order_id);
    if (rc == 0)
        rc = oms_ans_write(oms_worker_store(w), stream, EVS_EXPECT_NO_STREAM, answer, order_id,
                           step);
    if (rc < 0)
        return oms_ans_failed(w, rc, "shipment answer");
    if (rc == OMS_ANS_WRITTEN)
        oms_counter_add(sh->results[result], 1);
    return OMS_OK;
}

oms_result_t oms_ship_request(oms_worker_t *w, void *ctx, const char *order_id,
                              const ProtobufCMessage *msg)
{
    oms_ship_t *sh = ctx;
    const Oms__V1__ShipmentRequested *rq = (const Oms__V1__ShipmentRequested *)msg;
    if (!rq->shipping_address) {
        oms_worker_reason(w, "ShipmentRequested %s: no shipping address", order_id);
        return OMS_PARK;
    }
    const char *country = rq->shipping_address->country;
    if (oms_ship_list_has(sh->hang_countries, country))
        return OMS_OK;
    char stream[OMS_NAME_BYTES_MAX];
    bool answered = false;
    int rc = oms_ans_stream(stream, "shipment", order_id);
    if (rc == 0)
        rc = oms_ans_answered(oms_worker_store(w), stream, &answered);
    if (rc)
        return oms_ans_failed(w, rc, stream);
    if (answered)
        return OMS_OK; /* a re-issued request: the first answer stands */
    uint64_t n = atomic_fetch_add(&sh->requests, 1) + 1;
    if (oms_ship_list_has(sh->fail_countries, country) ||
        (sh->fail_every && n % sh->fail_every == 0)) {
        Oms__V1__ShipmentFailed f = OMS__V1__SHIPMENT_FAILED__INIT;
        f.order_id = (char *)order_id;
        f.reason = OMS_SHIP_REJECTED;
        return ship_answer(w, sh, order_id, &f, "ship", OMS_SHIP_R_FAILED);
    }
    char shipment_id[OMS_NAME_BYTES_MAX];
    snprintf(shipment_id, sizeof shipment_id, "sh_%s", order_id);
    Oms__V1__OrderShipped ok = OMS__V1__ORDER_SHIPPED__INIT;
    ok.order_id = (char *)order_id;
    ok.shipment_id = shipment_id;
    ok.carrier = OMS_SHIP_CARRIER;
    ok.n_items = rq->n_items;
    ok.items = rq->items;
    return ship_answer(w, sh, order_id, &ok, "ship", OMS_SHIP_R_SHIPPED);
}

oms_result_t oms_ship_cancel(oms_worker_t *w, void *ctx, const char *order_id,
                             const ProtobufCMessage *msg)
{
    const Oms__V1__ShipmentCancelRequested *rq = (const Oms__V1__ShipmentCancelRequested *)msg;
    Oms__V1__ShipmentCancelled c = OMS__V1__SHIPMENT_CANCELLED__INIT;
    c.order_id = (char *)order_id;
    c.reason = rq->reason;
    return ship_answer(w, ctx, order_id, &c, "cancel-shipment", OMS_SHIP_R_CANCELLED);
}
