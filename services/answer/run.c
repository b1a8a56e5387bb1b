/* run.c -- a worker service as a table of routes: decode, check, dispatch. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "oms_answer.h"

static const uint8_t no_bytes[1];

/* The service table is the context of every worker (nothing per worker). */
static void *ans_worker_init(oms_worker_t *w, void *svc_ctx)
{
    (void)w;
    return svc_ctx;
}

static const oms_ans_route_t *route_find(const oms_ans_service_t *s, const char *type)
{
    for (size_t i = 0; i < s->route_count; i++)
        if (strcmp(s->routes[i].desc->short_name, type) == 0)
            return &s->routes[i];
    return NULL;
}

/* The message's order_id field (every command has one), or NULL. */
static const char *msg_order_id(const ProtobufCMessage *msg)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, "order_id");
    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return *(char *const *)((const char *)msg + f->offset);
}

static bool order_id_valid(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > OMS_ANS_ORDER_ID_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] == 0x7f)
            return false;
    return true;
}

static oms_result_t ans_handle(oms_worker_t *w, void *state, const evs_recorded_event_t *ev,
                               uint32_t retry_count)
{
    (void)retry_count;
    const oms_ans_service_t *s = state;
    const oms_ans_route_t *r = route_find(s, ev->type);
    if (!r)
        return OMS_OK; /* not ours (the group's filter should not let it through) */
    ProtobufCMessage *msg = protobuf_c_message_unpack(r->desc, NULL, ev->data_len,
                                                      ev->data ? ev->data : no_bytes);
    if (!msg) {
        oms_worker_reason(w, "%s %s@%lld: payload does not decode (%zu bytes)", ev->type,
                          ev->stream, (long long)ev->version, ev->data_len);
        return OMS_PARK;
    }
    oms_result_t res = OMS_PARK;
    const char *id = msg_order_id(msg);
    if (!id || !order_id_valid(id))
        oms_worker_reason(w, "%s %s@%lld: order_id missing or malformed", ev->type, ev->stream,
                          (long long)ev->version);
    else if (strcmp(id, oms_stream_key(ev->stream)) != 0)
        oms_worker_reason(w, "%s %s@%lld: order_id %s is not the stream's key", ev->type,
                          ev->stream, (long long)ev->version, id);
    else
        res = r->fn(w, s->ctx, id, msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    return res;
}

static int ans_start(oms_service_t *svc, void *svc_ctx)
{
    const oms_ans_service_t *s = svc_ctx;
    return s->start ? s->start(svc, s->ctx) : 0;
}

int oms_ans_run(const oms_config_t *cfg, const oms_ans_service_t *s)
{
    if (!s->group || !s->source || !s->routes || s->route_count == 0 ||
        s->route_count > OMS_ANS_ROUTES_MAX) {
        fprintf(stderr, "oms_ans_run: bad service table\n");
        return -EINVAL;
    }
    const char *types[OMS_ANS_ROUTES_MAX];
    for (size_t i = 0; i < s->route_count; i++)
        types[i] = s->routes[i].desc->short_name;
    oms_subscription_t sub = {
        .group = s->group, .source = s->source, .types = types, .type_count = s->route_count,
    };
    oms_handler_t h = {
        .worker_init = ans_worker_init, .handle = ans_handle, .start = ans_start,
    };
    /* The table is only read, by every worker: the cast drops const for
     * the runtime's void * context. */
    return oms_service_run(cfg, &sub, &h, (void *)s);
}
