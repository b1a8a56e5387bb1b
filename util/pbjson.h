/* pbjson.h -- protobuf-c messages as JSON values (Jansson), walked through
 * their descriptors: one mapping for every program that shows a payload,
 * so that an event reads the same in oms-order's audit trail
 * (GET /orders/{id}/events) and in `evstore-inspect dump --json`.
 *
 * The mapping (the OMS HTTP API documents it in services/order/openapi.json,
 * a public contract):
 *   - keys are the field names of the .proto (not lowerCamel);
 *   - every field is shown, defaults included (an audit trail shows what
 *     was there), except optional fields that are unset and the inactive
 *     members of a oneof; repeated fields are arrays, empty ones included;
 *   - 32- and 64-bit integers are JSON integers; a uint64/fixed64 above
 *     INT64_MAX (which Jansson cannot hold) is a decimal string;
 *   - float and double are numbers, null when not finite;
 *   - enums are their value's name, or the number when it has none;
 *   - bytes are base64 (standard alphabet, padded); a string that is not
 *     UTF-8 too;
 *   - a sub-message is an object, null when unset or nested deeper than
 *     PBJSON_DEPTH_LIMIT.
 * Object keys keep the order of the fields in the descriptor.
 */
#ifndef EVSTORE_UTIL_PBJSON_H
#define EVSTORE_UTIL_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Sub-messages nested deeper than this below the top message are shown as
 * null: a bound on the walk's recursion whatever the data. */
#define PBJSON_DEPTH_LIMIT 32

/* m as a JSON object (a new reference). NULL on ENOMEM. */
json_t *pbjson_message(const ProtobufCMessage *m);

/* data[0, len) unpacked as a desc message, as a JSON object (a new
 * reference). NULL when the bytes are not such a message, or on ENOMEM. */
json_t *pbjson_decode(const ProtobufCMessageDescriptor *desc, const void *data, size_t len);

/* data[0, len) as a JSON string of base64 (standard alphabet, padded): how
 * bytes are shown. NULL on ENOMEM. */
json_t *pbjson_base64(const void *data, size_t len);

#endif
