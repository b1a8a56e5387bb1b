/* fold.c -- an answer stream, decoded event by event. */
#include <errno.h>
#include <string.h>

#include "oms_answer.h"

typedef struct {
    const oms_ans_case_t *cases;
    size_t count;
    void *ctx;
} fold_t;

static int fold_event(void *arg, const evs_recorded_event_t *ev)
{
    static const uint8_t no_bytes[1];
    const fold_t *f = arg;
    for (size_t i = 0; i < f->count; i++) {
        const oms_ans_case_t *c = &f->cases[i];
        if (strcmp(c->desc->short_name, ev->type) != 0)
            continue;
        ProtobufCMessage *msg = protobuf_c_message_unpack(c->desc, NULL, ev->data_len,
                                                          ev->data ? ev->data : no_bytes);
        if (!msg)
            return -EBADMSG;
        int rc = c->fn(f->ctx, ev, msg);
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    return 0;
}

static int stop_at_first(void *ctx, const evs_recorded_event_t *ev)
{
    (void)ctx, (void)ev;
    return 1;
}

int oms_ans_fold(oms_store_t *s, const char *stream, uint64_t from, const oms_ans_case_t *cases,
                 size_t case_count, void *ctx, int64_t *last_version)
{
    fold_t f = {.cases = cases, .count = case_count, .ctx = ctx};
    return oms_read_stream(s, stream, from, fold_event, &f, last_version);
}

int oms_ans_answered(oms_store_t *s, const char *stream, bool *answered)
{
    int64_t last = EVS_VERSION_NONE;
    int rc = oms_read_stream(s, stream, 0, stop_at_first, NULL, &last);
    *answered = last != EVS_VERSION_NONE;
    return rc > 0 ? 0 : rc;
}
