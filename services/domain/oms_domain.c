/* oms_domain.c -- the domain events by type name. */
#include <string.h>

#include "oms_domain.h"

static const ProtobufCMessageDescriptor *const events[] = {
    &oms__v1__order_placed__descriptor,
    &oms__v1__order_completed__descriptor,
    &oms__v1__order_failed__descriptor,
    &oms__v1__saga_started__descriptor,
    &oms__v1__payment_requested__descriptor,
    &oms__v1__refund_requested__descriptor,
    &oms__v1__inventory_requested__descriptor,
    &oms__v1__release_requested__descriptor,
    &oms__v1__shipment_requested__descriptor,
    &oms__v1__shipment_cancel_requested__descriptor,
    &oms__v1__saga_step_timed_out__descriptor,
    &oms__v1__saga_completed__descriptor,
    &oms__v1__saga_failed__descriptor,
    &oms__v1__payment_processed__descriptor,
    &oms__v1__payment_failed__descriptor,
    &oms__v1__payment_refunded__descriptor,
    &oms__v1__inventory_reserved__descriptor,
    &oms__v1__inventory_reservation_failed__descriptor,
    &oms__v1__inventory_released__descriptor,
    &oms__v1__stock_added__descriptor,
    &oms__v1__stock_reserved__descriptor,
    &oms__v1__stock_released__descriptor,
    &oms__v1__order_shipped__descriptor,
    &oms__v1__shipment_failed__descriptor,
    &oms__v1__shipment_cancelled__descriptor,
    &oms__v1__notification_sent__descriptor,
};

const ProtobufCMessageDescriptor *oms_domain_descriptor(const char *type)
{
    for (size_t i = 0; i < sizeof events / sizeof *events; i++)
        if (strcmp(events[i]->short_name, type) == 0)
            return events[i];
    return NULL;
}

const ProtobufCMessageDescriptor *const *oms_domain_events(size_t *count)
{
    *count = sizeof events / sizeof *events;
    return events;
}
