/* oms_decoder.c -- liboms-decoder.so, the decoder plugin of the OMS for
 * evstore-inspect: the store's offline tool loads it (dlopen) to show the
 * OMS's domain events decoded, without linking the OMS. The contract, from
 * docs/inspect.md: export one C function,
 *
 *     const ProtobufCMessageDescriptor *
 *     evstore_payload_descriptor(const char *event_type);
 *
 * that returns the descriptor of the message held by the data of events of
 * that type (a NUL-terminated string), or NULL for a type it does not know.
 * The descriptors must stay valid while the plugin is loaded; the function
 * must not allocate or keep state. */
#include "oms_domain.h"

__attribute__((visibility("default"))) const ProtobufCMessageDescriptor *
evstore_payload_descriptor(const char *event_type);

const ProtobufCMessageDescriptor *evstore_payload_descriptor(const char *event_type)
{
    return event_type ? oms_domain_descriptor(event_type) : NULL;
}
