/* frame.c -- length-prefixed frames of packed Envelopes. */
#include "protocol.h"

#include <string.h>

frame_status_t frame_peek(const uint8_t *buf, size_t avail, uint32_t frame_bytes_max,
                          uint32_t *body_len)
{
    if (avail < FRAME_HEADER_BYTES)
        return FRAME_NEED_MORE;
    uint32_t n = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
                 (uint32_t)buf[3] << 24;
    *body_len = n;
    if (n == 0 || n > frame_bytes_max)
        return FRAME_TOO_LARGE;
    return avail - FRAME_HEADER_BYTES >= n ? FRAME_READY : FRAME_NEED_MORE;
}

size_t frame_size(const envelope_t *env)
{
    return FRAME_HEADER_BYTES + evstore__v1__envelope__get_packed_size(env);
}

size_t frame_encode(const envelope_t *env, uint8_t *dst)
{
    size_t n = evstore__v1__envelope__pack(env, dst + FRAME_HEADER_BYTES);
    dst[0] = (uint8_t)n;
    dst[1] = (uint8_t)(n >> 8);
    dst[2] = (uint8_t)(n >> 16);
    dst[3] = (uint8_t)(n >> 24);
    return FRAME_HEADER_BYTES + n;
}

envelope_t *frame_decode(const uint8_t *body, size_t len)
{
    return evstore__v1__envelope__unpack(NULL, len, body);
}

void frame_free(envelope_t *env)
{
    if (env)
        evstore__v1__envelope__free_unpacked(env, NULL);
}

static int name_ok(const char *s)
{
    return s && s[0] != '\0';
}

static const char *check_append(const Evstore__V1__AppendRequest *a)
{
    if (a->n_streams == 0)
        return "append has no streams";
    for (size_t i = 0; i < a->n_streams; i++) {
        const Evstore__V1__StreamAppend *sa = a->streams[i];
        if (!name_ok(sa->stream))
            return "append: empty stream name";
        if (sa->n_events == 0)
            return "append: a stream has no events";
        for (size_t k = 0; k < sa->n_events; k++) {
            const Evstore__V1__EventData *e = sa->events[k];
            if (e->id.len != 16)
                return "append: an event id is not 16 bytes";
            if (!name_ok(e->type))
                return "append: empty event type";
        }
    }
    return NULL;
}

const char *frame_check(const envelope_t *env)
{
    switch (env->body_case) {
    case EVSTORE__V1__ENVELOPE__BODY__NOT_SET:
        return "envelope has no body";
    case EVSTORE__V1__ENVELOPE__BODY_APPEND:
        return check_append(env->append);
    case EVSTORE__V1__ENVELOPE__BODY_READ:
        return name_ok(env->read->stream) ? NULL : "read: empty stream name";
    case EVSTORE__V1__ENVELOPE__BODY_STREAM_INFO:
        return name_ok(env->stream_info->stream) ? NULL : "stream info: empty stream name";
    case EVSTORE__V1__ENVELOPE__BODY_SUBSCRIBE:
        return name_ok(env->subscribe->stream) ? NULL : "subscribe: empty stream name";
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_CREATE:
        return name_ok(env->group_create->name) && name_ok(env->group_create->stream)
                   ? NULL : "group create: empty name or stream";
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_UPDATE:
        return name_ok(env->group_update->name) ? NULL : "group update: empty name";
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_DELETE:
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_INFO:
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_REPLAY_PARKED:
        return name_ok(env->group_delete->name) ? NULL : "group: empty name";
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_JOIN:
        return name_ok(env->group_join->name) ? NULL : "group join: empty name";
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_ACK:
        return name_ok(env->group_ack->name) ? NULL : "group ack: empty name";
    case EVSTORE__V1__ENVELOPE__BODY_GROUP_NACK:
        return name_ok(env->group_nack->name) ? NULL : "group nack: empty name";
    default:
        return NULL;
    }
}
