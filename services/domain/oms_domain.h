/* oms_domain.h -- the domain events of oms.proto by event type name.
 *
 * Every domain event is stored with its message's short name as the event
 * type; this maps a type back to the message descriptor, for whoever needs
 * to decode events it did not write (the saga, the audit trail,
 * evstore-inspect). The generated messages are in oms.pb-c.h. */
#ifndef OMS_DOMAIN_H
#define OMS_DOMAIN_H

#include <stddef.h>

#include "oms.pb-c.h"

/* The descriptor of the domain event named type ("OrderPlaced"), or NULL
 * when type is not a domain event (OrderItem and Address are parts, not
 * events). */
const ProtobufCMessageDescriptor *oms_domain_descriptor(const char *type);

/* The domain event descriptors, *count of them. */
const ProtobufCMessageDescriptor *const *oms_domain_events(size_t *count);

#endif
