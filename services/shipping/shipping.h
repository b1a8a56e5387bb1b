/* shipping.h -- oms-shipping: ships an order (or refuses to) once, in
 * shipment-<orderId>, and cancels a shipment that was never answered. */
#ifndef OMS_SHIPPING_H
#define OMS_SHIPPING_H

#include <stdatomic.h>

#include "oms_answer.h"

#define OMS_SHIP_FAIL_COUNTRIES_DEFAULT "ZZ" /* the carrier refuses these */
#define OMS_SHIP_HANG_COUNTRIES_DEFAULT "TT" /* the carrier never answers these */
#define OMS_SHIP_CARRIER "evpost"
#define OMS_SHIP_REJECTED "carrier_rejected"

/* oms_shipments_total{result} */
enum { OMS_SHIP_R_SHIPPED, OMS_SHIP_R_FAILED, OMS_SHIP_R_CANCELLED, OMS_SHIP_R_COUNT };

typedef struct {
    const char *fail_countries; /* comma lists of ISO 3166 alpha-2 codes */
    const char *hang_countries;
    uint32_t fail_every;        /* 0: never; N: every Nth answered request fails */
    atomic_uint_fast64_t requests; /* requests that reached the carrier */
    oms_counter_t *results[OMS_SHIP_R_COUNT];
} oms_ship_t;

/* Whether code is one of the comma-separated list's entries (ASCII case
 * ignored, spaces around entries ignored). "" is in no list. */
bool oms_ship_list_has(const char *list, const char *code);

int oms_ship_start(oms_service_t *svc, void *ship);

/* ShipmentRequested: OrderShipped or ShipmentFailed at EVS_EXPECT_NO_STREAM
 * (nothing for a country that hangs, nor when an answer stands). */
oms_result_t oms_ship_request(oms_worker_t *w, void *ship, const char *order_id,
                              const ProtobufCMessage *msg);

/* ShipmentCancelRequested: ShipmentCancelled at EVS_EXPECT_NO_STREAM; an
 * answer that stands (shipped or failed) is left as it is. */
oms_result_t oms_ship_cancel(oms_worker_t *w, void *ship, const char *order_id,
                             const ProtobufCMessage *msg);

#endif
