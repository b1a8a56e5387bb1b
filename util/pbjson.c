/* pbjson.c -- protobuf-c messages as JSON values, by walking descriptors
 * (the mapping is described in pbjson.h). Every builder returns a new
 * reference or NULL on ENOMEM, and a NULL anywhere makes the whole result
 * NULL: a value is shown whole or not at all. */
#include "pbjson.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *pbjson_object(const ProtobufCMessage *m, int depth);

json_t *pbjson_base64(const void *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = data;
    size_t out_len = (len + 2) / 3 * 4;
    char *text = malloc(out_len + 1);
    if (!text)
        return NULL;
    char *o = text;
    for (size_t i = 0; i < len; i += 3) {
        size_t left = len - i;
        uint32_t v = (uint32_t)p[i] << 16 | (left > 1 ? (uint32_t)p[i + 1] << 8 : 0) |
                     (left > 2 ? p[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = left > 1 ? abc[v >> 6 & 63] : '=';
        *o++ = left > 2 ? abc[v & 63] : '=';
    }
    json_t *s = json_stringn(text, out_len);
    free(text);
    return s;
}

/* Size of one element of a repeated field of type t. */
static size_t pbjson_elt_size(ProtobufCType t)
{
    switch (t) {
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
    default:
        return 4; /* the 32-bit integers */
    }
}

static json_t *pbjson_real(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *pbjson_string(const char *s)
{
    if (!s)
        return json_string("");
    size_t n = strlen(s);
    json_t *j = json_stringn(s, n);
    return j ? j : pbjson_base64(s, n); /* not UTF-8: its bytes, as base64 */
}

static json_t *pbjson_enum(const ProtobufCFieldDescriptor *f, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
    return ev ? json_string(ev->name) : json_integer(v);
}

static json_t *pbjson_u64(uint64_t v)
{
    if (v <= INT64_MAX)
        return json_integer((json_int_t)v);
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return json_string(text);
}

/* One value of field f stored at p. */
static json_t *pbjson_value(const ProtobufCFieldDescriptor *f, const void *p, int depth)
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
        return pbjson_u64(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return pbjson_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return pbjson_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM:
        return pbjson_enum(f, *(const int *)p);
    case PROTOBUF_C_TYPE_STRING:
        return pbjson_string(*(char *const *)p);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return pbjson_base64(b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub && depth < PBJSON_DEPTH_LIMIT ? pbjson_object(sub, depth + 1) : json_null();
    }
    }
    return json_null();
}

/* True when field f of the message at base holds a value to show. */
static bool pbjson_present(const ProtobufCFieldDescriptor *f, const char *base)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label != PROTOBUF_C_LABEL_OPTIONAL)
        return true;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
        return *(void *const *)(base + f->offset) != NULL;
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
}

static json_t *pbjson_repeated(const ProtobufCFieldDescriptor *f, const char *base, int depth)
{
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    const char *arr = *(char *const *)(base + f->offset);
    size_t size = pbjson_elt_size(f->type);
    json_t *a = json_array();
    for (size_t i = 0; a && arr && i < n; i++) {
        if (json_array_append_new(a, pbjson_value(f, arr + i * size, depth)) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

static json_t *pbjson_object(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    json_t *o = json_object();
    for (unsigned i = 0; o && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            v = pbjson_repeated(f, base, depth);
        else if (pbjson_present(f, base))
            v = pbjson_value(f, base + f->offset, depth);
        else
            continue;
        if (json_object_set_new(o, f->name, v) != 0) { /* v NULL (ENOMEM) included */
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

json_t *pbjson_message(const ProtobufCMessage *m)
{
    return pbjson_object(m, 0);
}

json_t *pbjson_decode(const ProtobufCMessageDescriptor *desc, const void *data, size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
    if (!m)
        return NULL;
    json_t *j = pbjson_object(m, 0);
    protobuf_c_message_free_unpacked(m, NULL);
    return j;
}
