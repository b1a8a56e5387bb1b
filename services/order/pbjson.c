/* pbjson.c -- protobuf payloads as JSON, by walking protobuf-c descriptors.
 *
 * Nothing here knows a message of oms.proto: the event type names the
 * message (its short name), oms_domain_descriptor() gives its descriptor,
 * and the fields are read through the descriptor's offsets. So an event
 * added to the domain shows up in the audit trail without a change here.
 *
 * Mapping: field names as in the .proto; every field of a message is shown,
 * defaults included (an audit trail shows what was there), except unset
 * optional fields and the inactive members of a oneof. Integers (int64
 * too) are JSON integers, a uint64 over INT64_MAX a decimal string; enums
 * their value name; bytes base64; an unset sub-message null.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "oms_domain.h"
#include "order.h"

#define PB_DEPTH_MAX 32 /* nesting of sub-messages shown */

static json_t *pb_message(const ProtobufCMessage *m, int depth);

/* Size of one element of a repeated field of type t. */
static size_t pb_elt_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static json_t *pb_real(double v)
{
    json_t *j = isfinite(v) ? json_real(v) : NULL;
    return j ? j : json_null();
}

static json_t *pb_string(const char *s)
{
    if (!s)
        return json_string("");
    json_t *j = json_string(s);
    return j ? j : oms_ord_base64_json((const uint8_t *)s, strlen(s)); /* not UTF-8 */
}

static json_t *pb_enum(const ProtobufCFieldDescriptor *f, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
    return ev ? json_string(ev->name) : json_integer(v);
}

static json_t *pb_u64(uint64_t v)
{
    if (v <= INT64_MAX)
        return json_integer((json_int_t)v);
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return json_string(text);
}

/* One value of field f stored at p. */
static json_t *pb_value(const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return pb_u64(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return pb_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return pb_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM:
        return pb_enum(f, *(const int *)p);
    case PROTOBUF_C_TYPE_STRING:
        return pb_string(*(char *const *)p);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return oms_ord_base64_json(b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub && depth < PB_DEPTH_MAX ? pb_message(sub, depth + 1) : json_null();
    }
    }
    return json_null();
}

/* True when field f of message base holds a value to show. */
static bool pb_present(const ProtobufCFieldDescriptor *f, const char *base)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label != PROTOBUF_C_LABEL_OPTIONAL)
        return true;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
        return *(void *const *)(base + f->offset) != NULL;
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
}

static json_t *pb_repeated(const ProtobufCFieldDescriptor *f, const char *base, int depth)
{
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    const char *arr = *(char *const *)(base + f->offset);
    size_t size = pb_elt_size(f->type);
    json_t *a = json_array();
    for (size_t i = 0; i < n && arr; i++)
        json_array_append_new(a, pb_value(f, arr + i * size, depth));
    return a;
}

static json_t *pb_message(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    json_t *o = json_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            json_object_set_new(o, f->name, pb_repeated(f, base, depth));
        else if (pb_present(f, base))
            json_object_set_new(o, f->name, pb_value(f, base + f->offset, depth));
    }
    return o;
}

json_t *oms_ord_pb_to_json(const char *type, const uint8_t *data, size_t len)
{
    const ProtobufCMessageDescriptor *d = oms_domain_descriptor(type);
    if (!d)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, data);
    if (!m)
        return NULL;
    json_t *j = pb_message(m, 0);
    protobuf_c_message_free_unpacked(m, NULL);
    return j;
}
