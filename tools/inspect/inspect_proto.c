/* inspect_proto.c -- payloads that are known protobuf messages, decoded
 * field by field from their protobuf-c descriptors. The known messages are
 * listed in one table: the store's own (group settings in "$group-" streams);
 * when the OMS is built, its domain events too (any stream, by type name). */
#include "inspect.h"

#include "protocol.h"
#ifdef EVSTORE_INSPECT_OMS
#include "oms_domain.h"
#endif

#include <string.h>

typedef struct {
    const char *stream_prefix; /* "" for any stream */
    const char *type;
    const ProtobufCMessageDescriptor *desc;
} inspect_proto_known_t;

static const inspect_proto_known_t known[] = {
    {"$group-", "GroupSettings", &evstore__v1__group_settings__descriptor},
};

const ProtobufCMessageDescriptor *inspect_proto_for(const log_event_t *ev)
{
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        size_t p = strlen(known[i].stream_prefix), t = strlen(known[i].type);
        if (ev->stream_len >= p && memcmp(ev->stream, known[i].stream_prefix, p) == 0 &&
            ev->type_len == t && memcmp(ev->type, known[i].type, t) == 0)
            return known[i].desc;
    }
#ifdef EVSTORE_INSPECT_OMS
    char type[64];
    if (ev->type_len < sizeof type) {
        memcpy(type, ev->type, ev->type_len);
        type[ev->type_len] = '\0';
        return oms_domain_descriptor(type);
    }
#endif
    return NULL;
}

static void proto_message(FILE *out, const ProtobufCMessage *m);

/* One value of field f at p. */
static void proto_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: fprintf(out, "%d", *(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: fprintf(out, "%lld", (long long)*(const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: fprintf(out, "%u", *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT: fprintf(out, "%g", (double)*(const float *)p); break;
    case PROTOBUF_C_TYPE_DOUBLE: fprintf(out, "%g", *(const double *)p); break;
    case PROTOBUF_C_TYPE_BOOL: fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out); break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev)
            inspect_json_string(out, ev->name, strlen(ev->name));
        else
            fprintf(out, "%d", v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        inspect_json_string(out, s ? s : "", s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        fputc('"', out);
        inspect_hex(out, b->data, b->len);
        fputc('"', out);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub)
            proto_message(out, sub);
        else
            fputs("null", out);
        break;
    }
    }
}

static size_t proto_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    default: return 4;
    }
}

/* A message as a JSON object of its set fields. */
static void proto_message(FILE *out, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    bool first = true;
    fputc('{', out);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = base + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        }
        fprintf(out, "%s\"%s\":", first ? "" : ",", f->name);
        first = false;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)p;
            fputc('[', out);
            for (size_t k = 0; k < n; k++) {
                if (k)
                    fputc(',', out);
                proto_value(out, f, arr + k * proto_size(f));
            }
            fputc(']', out);
        } else {
            proto_value(out, f, p);
        }
    }
    fputc('}', out);
}

bool inspect_proto_json(FILE *out, const ProtobufCMessageDescriptor *desc, const void *data,
                        size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
    if (!m)
        return false;
    proto_message(out, m);
    protobuf_c_message_free_unpacked(m, NULL);
    return true;
}
