/* saga.h -- the order fulfilment saga as a pure state machine.
 *
 * A saga's state is the fold of its stream saga-<orderId> (oms_saga_apply).
 * Given the state and an incoming event (OrderPlaced or a service's
 * answer), oms_saga_decide() says what to append; given the state and the
 * time, oms_saga_timeout() says what a late step leads to. Nothing here
 * does I/O: saga_main.c appends the decisions and feeds them back through
 * oms_saga_apply_msg(), and the unit tests check decisions directly.
 *
 * The flow, one command at a time (each answer triggers exactly one append,
 * so the saga stream alone records how far the saga got):
 *
 *   OrderPlaced          -> SagaStarted + PaymentRequested           PAYING
 *   PaymentProcessed     -> InventoryRequested                       RESERVING
 *   PaymentFailed        -> SagaFailed + OrderFailed(payment_declined)
 *   InventoryReserved    -> ShipmentRequested                        SHIPPING
 *   InventoryReservationFailed -> RefundRequested(out_of_stock)      REFUNDING
 *   OrderShipped         -> SagaCompleted + OrderCompleted
 *   ShipmentFailed       -> ReleaseRequested(shipping_failed)        RELEASING
 *   InventoryReleased    -> RefundRequested                          REFUNDING
 *   PaymentRefunded      -> SagaFailed + OrderFailed(<reason>)
 *
 * Timeouts: PAYING -> RefundRequested(payment_timeout) (the refund voids a
 * charge that may still come); RESERVING -> ReleaseRequested(
 * inventory_timeout); SHIPPING -> ShipmentCancelRequested(shipping_timeout),
 * answered by ShipmentCancelled (-> release, refund) or by the shipment
 * that did happen (OrderShipped -> completed; ShipmentFailed -> release).
 * Each is preceded by SagaStepTimedOut. A compensation (refund, release,
 * cancel) that is not answered in time is requested again (attempt + 1);
 * services act once per order whatever the attempt.
 */
#ifndef OMS_SAGA_H
#define OMS_SAGA_H

#include <stdbool.h>
#include <stdint.h>

#include "oms.h"
#include "oms.pb-c.h"

typedef enum {
    SAGA_NEW = 0,        /* no saga stream yet */
    SAGA_PAYING,
    SAGA_RESERVING,
    SAGA_SHIPPING,
    SAGA_CANCELLING,     /* shipment cancel requested */
    SAGA_RELEASING,
    SAGA_REFUNDING,
    SAGA_COMPLETED,      /* final */
    SAGA_FAILED,         /* final */
} oms_saga_phase_t;

#define OMS_SAGA_REASON_BYTES 32u
#define OMS_SAGA_OUT_MAX 4u /* events in one decision */

typedef struct {
    int64_t payment_ms;      /* --payment-timeout-ms */
    int64_t inventory_ms;    /* --inventory-timeout-ms */
    int64_t shipping_ms;     /* --shipping-timeout-ms */
    int64_t compensation_ms; /* --compensation-timeout-ms: re-request after this */
} oms_saga_timeouts_t;

/* A step's clock starts when its command is written, so it also counts the
 * time the command waits in the service's group: under overload a short
 * timeout fails orders that would have succeeded (measured: 95 of 20000
 * failed inventory_timeout at 5 s while the machine was saturated). */
#define OMS_SAGA_STEP_TIMEOUT_MS_DEFAULT 30000
#define OMS_SAGA_COMPENSATION_TIMEOUT_MS_DEFAULT 30000

typedef struct {
    char order_id[OMS_NAME_BYTES_MAX];
    Oms__V1__OrderPlaced *order; /* from SagaStarted (owned); NULL while NEW */
    int64_t version;             /* of saga-<id>: EVS_VERSION_NONE while NEW */
    oms_saga_phase_t phase;
    uint32_t attempt;            /* of the pending command */
    int64_t requested_at_ns;     /* when the pending command was written */
    char reason[OMS_SAGA_REASON_BYTES]; /* why it compensates / failed */
    bool released;               /* a release was requested */
    bool broken;                 /* an event of its stream did not decode, or its
                                    SagaStarted has no order: nothing is decided for it */
} oms_saga_t;

/* One event a decision appends: to saga-<id> (to_order false) or to
 * order-<id>. msg is malloc'd; its strings and items point into the saga's
 * state or the incoming event, so a decision lives no longer than both. */
typedef struct {
    bool to_order;
    char step[48];               /* event id step: oms_event_id(order_id, step) */
    ProtobufCMessage *msg;
} oms_saga_out_t;

typedef struct {
    size_t count;
    oms_saga_out_t out[OMS_SAGA_OUT_MAX];
    const char *outcome;         /* "completed" / "failed" when it ends the saga */
    const char *compensation;    /* "refund" / "release" / "cancel_shipment" when it starts one */
    const char *timed_out;       /* the step that timed out */
} oms_saga_decision_t;

void oms_saga_init(oms_saga_t *s, const char *order_id);
void oms_saga_free(oms_saga_t *s);
bool oms_saga_final(const oms_saga_t *s);
const char *oms_saga_phase_name(oms_saga_phase_t p);

/* Folds one event of saga-<id> into s (version + 1). An unknown type or a
 * payload that does not decode is -EINVAL (the version still moves, and
 * the saga is marked broken). */
int oms_saga_apply(oms_saga_t *s, const evs_recorded_event_t *ev);
/* The same for a message the saga has just appended, written at ts_ns. */
int oms_saga_apply_msg(oms_saga_t *s, const ProtobufCMessage *msg, int64_t ts_ns);

/* What to append for an incoming event (OrderPlaced or an answer). An
 * event that needs nothing (a duplicate, a late answer), or any event for
 * a broken saga, gives count 0.
 * Returns 0, -EINVAL (its payload does not decode), -ENOMEM. The decoded
 * event is kept in *unpacked (free it with protobuf_c_message_free_unpacked
 * after the decision). */
int oms_saga_decide(const oms_saga_t *s, const evs_recorded_event_t *in,
                    oms_saga_decision_t *d, ProtobufCMessage **unpacked);

/* What to append when now_ns is past the pending step's deadline (count 0
 * when it is not). Returns 0 or -ENOMEM. */
int oms_saga_timeout(const oms_saga_t *s, const oms_saga_timeouts_t *t, int64_t now_ns,
                     oms_saga_decision_t *d);

/* The category of the stream whose answer the pending step waits for
 * ("payment", "inventory", "shipment"), NULL when nothing is pending. */
const char *oms_saga_answer_category(const oms_saga_t *s);

/* The pending step's deadline (INT64_MAX when none). */
int64_t oms_saga_deadline(const oms_saga_t *s, const oms_saga_timeouts_t *t);

void oms_saga_decision_free(oms_saga_decision_t *d);

#endif
