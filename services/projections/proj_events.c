/* proj_events.c -- the event types the read model applies: how each is
 * decoded and what applies it. */
#include <errno.h>
#include <string.h>

#include "oms.pb-c.h"
#include "proj.h"

typedef struct {
    const char *type;
    const ProtobufCMessageDescriptor *descriptor;
    oms_proj_apply_fn apply;
} event_kind_t;

static const event_kind_t kinds[] = {
    {"OrderPlaced", &oms__v1__order_placed__descriptor, oms_proj_order_placed},
    {"PaymentProcessed", &oms__v1__payment_processed__descriptor, oms_proj_payment_processed},
    {"PaymentFailed", &oms__v1__payment_failed__descriptor, oms_proj_payment_failed},
    {"PaymentRefunded", &oms__v1__payment_refunded__descriptor, oms_proj_payment_refunded},
    {"InventoryReserved", &oms__v1__inventory_reserved__descriptor,
     oms_proj_inventory_reserved},
    {"InventoryReservationFailed", &oms__v1__inventory_reservation_failed__descriptor,
     oms_proj_inventory_failed},
    {"InventoryReleased", &oms__v1__inventory_released__descriptor,
     oms_proj_inventory_released},
    {"OrderShipped", &oms__v1__order_shipped__descriptor, oms_proj_order_shipped},
    {"ShipmentFailed", &oms__v1__shipment_failed__descriptor, oms_proj_shipment_failed},
    {"ShipmentCancelled", &oms__v1__shipment_cancelled__descriptor,
     oms_proj_shipment_cancelled},
    {"RefundRequested", &oms__v1__refund_requested__descriptor, oms_proj_refund_requested},
    {"ReleaseRequested", &oms__v1__release_requested__descriptor, oms_proj_release_requested},
    {"OrderCompleted", &oms__v1__order_completed__descriptor, oms_proj_order_completed},
    {"OrderFailed", &oms__v1__order_failed__descriptor, oms_proj_order_failed},
    {"StockAdded", &oms__v1__stock_added__descriptor, oms_proj_stock_added},
    {"StockReserved", &oms__v1__stock_reserved__descriptor, oms_proj_stock_reserved},
    {"StockReleased", &oms__v1__stock_released__descriptor, oms_proj_stock_released},
};

#define KIND_COUNT (sizeof kinds / sizeof kinds[0])

_Static_assert(KIND_COUNT <= EVS_SUB_TYPES_MAX, "the subscription filter holds every type");

size_t oms_proj_event_count(void)
{
    return KIND_COUNT;
}

const char *oms_proj_event_type(size_t index)
{
    return index < KIND_COUNT ? kinds[index].type : NULL;
}

int oms_proj_event_index(const char *type)
{
    for (size_t i = 0; i < KIND_COUNT; i++) {
        if (strcmp(kinds[i].type, type) == 0)
            return (int)i;
    }
    return -1;
}

int oms_proj_apply(oms_proj_db_t *db, size_t index, const evs_recorded_event_t *ev)
{
    if (index >= KIND_COUNT)
        return -EINVAL;
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(kinds[index].descriptor, NULL, ev->data_len, ev->data);
    if (!msg)
        return -EBADMSG;
    int err = kinds[index].apply(db, msg, ev);
    protobuf_c_message_free_unpacked(msg, NULL);
    return err;
}
