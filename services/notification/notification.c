/* notification.c -- OrderCompleted and OrderFailed: one notification per
 * order.
 *
 * The outbox line is written (and synced) before NotificationSent is
 * appended, so a crash between the two repeats the line on redelivery:
 * delivery to the outbox is at least once, and each line carries the
 * notification's deterministic id (the NotificationSent event id) for the
 * relay to drop repeats. NotificationSent is appended at
 * EVS_EXPECT_NO_STREAM: once it stands, the order is never notified
 * again. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notification.h"
#include "oms.pb-c.h"

#define NOTE_STEP "notify"
#define NOTE_CHANNEL "email"

static const char *const note_templates[OMS_NOTE_T_COUNT] = {
    [OMS_NOTE_T_COMPLETED] = "order_completed",
    [OMS_NOTE_T_FAILED] = "order_failed",
};

int oms_note_start(oms_service_t *svc, void *ctx)
{
    oms_note_t *note = ctx;
    oms_ans_counters(oms_service_metrics(svc), "oms_notifications_total",
                     "Notifications sent, by template.", "template", note_templates,
                     OMS_NOTE_T_COUNT, note->sent);
    return 0;
}

typedef struct {
    bool found;
    char customer_id[OMS_NOTE_CUSTOMER_BYTES_MAX];
} placed_t;

static int fold_placed(void *ctx, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    (void)ev;
    placed_t *p = ctx;
    p->found = true;
    snprintf(p->customer_id, sizeof p->customer_id, "%s",
             ((const Oms__V1__OrderPlaced *)m)->customer_id);
    return 1; /* the first one is the order */
}

static const oms_ans_case_t placed_cases[] = {
    {&oms__v1__order_placed__descriptor, fold_placed},
};

/* "2024-05-01T12:00:00.123Z" */
static void time_format(char out[32], int64_t ns)
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ns % 1000000000 / 1000000));
}

/* The outbox line of a notification, malloc'd (NULL: ENOMEM or a field
 * that is not UTF-8). */
static char *line_make(const char *order_id, const char *customer_id, int tmpl,
                       const char *message)
{
    uint8_t id[EVS_ID_BYTES];
    char id_hex[2 * EVS_ID_BYTES + 1], when[32];
    oms_event_id(id, order_id, NOTE_STEP);
    for (size_t i = 0; i < EVS_ID_BYTES; i++)
        snprintf(id_hex + 2 * i, 3, "%02x", id[i]);
    time_format(when, oms_now_ns());
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "notification_id", id_hex,
                          "order_id", order_id, "customer_id", customer_id, "template",
                          note_templates[tmpl], "message", message, "time", when);
    if (!j)
        return NULL;
    char *line = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return line;
}

static oms_result_t notify(oms_worker_t *w, oms_note_t *note, const char *order_id,
                           const char *customer_id, int tmpl, const char *message)
{
    oms_store_t *store = oms_worker_store(w);
    char stream[OMS_NAME_BYTES_MAX], order_stream[OMS_NAME_BYTES_MAX];
    bool sent = false;
    int rc = oms_ans_stream(stream, "notification", order_id);
    if (rc == 0)
        rc = oms_ans_answered(store, stream, &sent);
    if (rc)
        return oms_ans_failed(w, rc, stream);
    if (sent)
        return OMS_OK;
    placed_t placed = {0};
    if (customer_id && *customer_id) {
        /* The verdict names the customer (verdicts written before it did
         * not: those read the order's OrderPlaced). */
        snprintf(placed.customer_id, sizeof placed.customer_id, "%s", customer_id);
    } else {
        rc = oms_ans_stream(order_stream, "order", order_id);
        if (rc == 0)
            rc = oms_ans_fold(store, order_stream, 0, placed_cases, 1, &placed, NULL);
        if (rc < 0)
            return oms_ans_failed(w, rc, order_stream);
        if (!placed.found) {
            oms_worker_reason(w, "%s has no OrderPlaced", order_stream);
            return OMS_PARK;
        }
    }
    char *line = line_make(order_id, placed.customer_id, tmpl, message);
    if (!line) {
        oms_worker_reason(w, "%s: the notification does not encode (not UTF-8?)", order_id);
        return OMS_PARK;
    }
    rc = oms_outbox_append(&note->outbox, line, strlen(line));
    free(line);
    if (rc)
        return oms_ans_failed(w, rc, "outbox");
    Oms__V1__NotificationSent ev = OMS__V1__NOTIFICATION_SENT__INIT;
    ev.order_id = (char *)order_id;
    ev.customer_id = placed.customer_id;
    ev.channel = NOTE_CHANNEL;
    ev.template_ = (char *)note_templates[tmpl];
    ev.message = (char *)message;
    rc = oms_ans_write(store, stream, EVS_EXPECT_NO_STREAM, &ev, order_id, NOTE_STEP);
    if (rc < 0)
        return oms_ans_failed(w, rc, stream);
    if (rc == OMS_ANS_WRITTEN)
        oms_counter_add(note->sent[tmpl], 1);
    return OMS_OK;
}

oms_result_t oms_note_completed(oms_worker_t *w, void *note, const char *order_id,
                                const ProtobufCMessage *msg)
{
    const Oms__V1__OrderCompleted *e = (const Oms__V1__OrderCompleted *)msg;
    char text[OMS_NOTE_MESSAGE_BYTES_MAX];
    snprintf(text, sizeof text, "Your order %s is on its way (shipment %s).", order_id,
             e->shipment_id);
    return notify(w, note, order_id, e->customer_id, OMS_NOTE_T_COMPLETED, text);
}

oms_result_t oms_note_failed(oms_worker_t *w, void *note, const char *order_id,
                             const ProtobufCMessage *msg)
{
    const Oms__V1__OrderFailed *e = (const Oms__V1__OrderFailed *)msg;
    char text[OMS_NOTE_MESSAGE_BYTES_MAX];
    snprintf(text, sizeof text, "Your order %s could not be completed (%s)%s.", order_id,
             e->reason, e->refunded ? "; your payment was refunded" : "");
    return notify(w, note, order_id, e->customer_id, OMS_NOTE_T_FAILED, text);
}
