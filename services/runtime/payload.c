/* payload.c -- protobuf-c messages as event payloads. */
#include <errno.h>
#include <protobuf-c/protobuf-c.h>
#include <stdlib.h>
#include <string.h>

#include "oms.h"

int oms_pack(const void *msg, uint8_t **data, size_t *len)
{
    const ProtobufCMessage *m = msg;
    size_t size = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return -ENOMEM;
    *len = protobuf_c_message_pack(m, buf);
    *data = buf;
    return 0;
}

int oms_event_make(evs_event_t *ev, const void *msg, const char *order_id, const char *step)
{
    const ProtobufCMessage *m = msg;
    memset(ev, 0, sizeof *ev);
    uint8_t *data;
    size_t len;
    int rc = oms_pack(msg, &data, &len);
    if (rc != 0)
        return rc;
    oms_event_id(ev->id, order_id, step);
    ev->type = m->descriptor->short_name;
    ev->data = data;
    ev->data_len = len;
    return 0;
}

void oms_event_free_data(evs_event_t *ev)
{
    free((void *)ev->data);
    ev->data = NULL;
    ev->data_len = 0;
}
