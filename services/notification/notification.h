/* notification.h -- oms-notification: tells the customer about an order's
 * verdict (OrderCompleted, OrderFailed) once, by a line in an outbox file
 * (the hand-off to a mail relay) and NotificationSent in
 * notification-<orderId>. */
#ifndef OMS_NOTIFICATION_H
#define OMS_NOTIFICATION_H

#include <pthread.h>

#include "oms_answer.h"

#define OMS_OUTBOX_PATH_DEFAULT "data/oms/outbox.jsonl"
#define OMS_NOTE_MESSAGE_BYTES_MAX 512u  /* the text of one notification */
#define OMS_NOTE_CUSTOMER_BYTES_MAX 256u /* longer customer ids are cut */

/* ==== the outbox (outbox.c) =========================================== */

/* An append-only JSON-lines file shared by the workers. Lines are written
 * under the lock; one fdatasync covers every line written before it (group
 * commit), so workers waiting for durability share syncs. */
typedef struct {
    int fd;
    pthread_mutex_t lock;
    pthread_cond_t synced;
    uint64_t written;    /* lines written */
    uint64_t durable;    /* lines covered by a completed fdatasync */
    uint64_t failed;     /* lines covered by a failed fdatasync: never reported
                            durable (Linux reports a writeback error once, so a
                            later sync of the same lines may wrongly succeed) */
    bool syncing;        /* a worker is in fdatasync (without the lock) */
} oms_outbox_t;

/* Opens (creating it and its parent directories) path for appending.
 * Returns 0, or -errno with a message on stderr. */
int oms_outbox_open(oms_outbox_t *o, const char *path);
void oms_outbox_close(oms_outbox_t *o);

/* Appends line and a newline, and waits until it is durable (fdatasync,
 * shared with the lines of other workers). A failed write is cut off
 * again, so the file holds whole lines only.
 * Returns 0 or -errno. */
int oms_outbox_append(oms_outbox_t *o, const char *line, size_t len);

/* ==== the service (notification.c) ==================================== */

enum { OMS_NOTE_T_COMPLETED, OMS_NOTE_T_FAILED, OMS_NOTE_T_COUNT };

typedef struct {
    oms_outbox_t outbox;
    oms_counter_t *sent[OMS_NOTE_T_COUNT]; /* oms_notifications_total{template} */
} oms_note_t;

int oms_note_start(oms_service_t *svc, void *note);

/* OrderCompleted, OrderFailed: the outbox line, then NotificationSent at
 * EVS_EXPECT_NO_STREAM; nothing when notification-<orderId> exists. */
oms_result_t oms_note_completed(oms_worker_t *w, void *note, const char *order_id,
                                const ProtobufCMessage *msg);
oms_result_t oms_note_failed(oms_worker_t *w, void *note, const char *order_id,
                             const ProtobufCMessage *msg);

#endif
