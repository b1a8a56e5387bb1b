/* oms_answer.h -- what the four worker services (payment, inventory,
 * shipping, notification) share, on top of the runtime (oms.h).
 *
 * A worker service answers commands: it reads command events through its
 * group, decodes each with the protobuf-c descriptor of its type, and
 * writes at most one answer per order and command kind into a stream of
 * its own ("payment-<orderId>", ...). The pieces here:
 *
 *  - oms_ans_run(): runs a service from a table of routes (event type ->
 *    function). The route decodes the payload, checks its order_id, and
 *    parks what cannot be decoded, so every handler starts from a valid
 *    message.
 *  - oms_ans_write(): "the first answer wins": appends an answer at
 *    EVS_EXPECT_NO_STREAM (or an exact version) with a deterministic event
 *    id; EVS_EWRONG_VERSION means another answer stands already, and an
 *    id the store recognises means this very answer was written by an
 *    earlier delivery. Both are success for the caller.
 *  - oms_ans_fold(): reads an answer stream and hands each event of a
 *    listed type, decoded, to a function (the state of an order's answers).
 *  - oms_ans_failed(): maps a store error to OMS_RETRY or OMS_PARK.
 *
 * Thread-safety: every function may be called from any worker thread.
 */
#ifndef OMS_ANSWER_H
#define OMS_ANSWER_H

#include <protobuf-c/protobuf-c.h>

#include "oms.h"

/* An order id is at most this long, so "notification-<id>" fits a
 * stream name (OMS_NAME_BYTES_MAX). */
#define OMS_ANS_ORDER_ID_BYTES_MAX 96u
#define OMS_ANS_ROUTES_MAX 8u /* command types of one service */

/* ==== routing ========================================================== */

/* Handles one decoded command of order_id (a valid id: not empty, at most
 * OMS_ANS_ORDER_ID_BYTES_MAX bytes, no spaces or control characters, equal
 * to the key of the event's stream). msg is the payload, decoded with the
 * route's descriptor (cast it to the message type); it is freed after the
 * call. ctx is the service's context (oms_ans_service_t.ctx). */
typedef oms_result_t (*oms_ans_fn)(oms_worker_t *w, void *ctx, const char *order_id,
                                   const ProtobufCMessage *msg);

typedef struct {
    const ProtobufCMessageDescriptor *desc; /* the command; its short name is the event type */
    oms_ans_fn fn;
} oms_ans_route_t;

typedef struct {
    const char *group;              /* "oms-payment" */
    const char *source;             /* "$ce-saga" */
    const oms_ans_route_t *routes;  /* the group's types are the routes' types */
    size_t route_count;             /* 1..OMS_ANS_ROUTES_MAX */
    int (*start)(oms_service_t *svc, void *ctx); /* optional: as oms_handler_t.start */
    void *ctx;                      /* handed to start() and to every route */
} oms_ans_service_t;

/* Runs the service with oms_service_run() until it is stopped. Every event
 * goes to the route of its type: a payload that does not decode, or whose
 * order_id is missing, malformed or not its stream's key, is parked with
 * a reason naming the fault; an event of a type no route names is acked
 * and ignored. Returns as oms_service_run() (0 after a clean stop), or
 * -EINVAL for a bad table. */
int oms_ans_run(const oms_config_t *cfg, const oms_ans_service_t *s);

/* ==== answers ========================================================== */

typedef enum {
    OMS_ANS_WRITTEN = 0,  /* this call wrote the answer */
    OMS_ANS_REPEATED = 1, /* an earlier delivery wrote this very answer (same event id):
                             nothing new was written */
    OMS_ANS_STANDS = 2,   /* EVS_EWRONG_VERSION: another answer is in the stream already */
} oms_ans_outcome_t;

/* Fills out with "<category>-<id>". Returns 0, or -ENAMETOOLONG when it
 * does not fit OMS_NAME_BYTES_MAX. */
int oms_ans_stream(char out[OMS_NAME_BYTES_MAX], const char *category, const char *id);

/* Appends msg (a protobuf-c message; its short name is the event type) to
 * stream at expected_version (EVS_EXPECT_NO_STREAM for a first answer, or
 * the exact version the caller folded), with the deterministic id
 * oms_event_id(subject, step). Returns an oms_ans_outcome_t (>= 0) or a
 * negative error (a store error, -ENOMEM). */
int oms_ans_write(oms_store_t *s, const char *stream, int64_t expected_version,
                  const void *msg, const char *subject, const char *step);

/* The same for a multi-stream batch (all or nothing): the events are
 * built by the caller (oms_event_make()). *res gets the store's result
 * (failed_stream tells which stream was at fault on EVS_EWRONG_VERSION and
 * EVS_EIDEMPOTENCY). Returns OMS_ANS_WRITTEN, OMS_ANS_REPEATED, or a
 * negative error, including EVS_EWRONG_VERSION and EVS_EIDEMPOTENCY (which
 * stream it was matters to the caller). */
int oms_ans_write_batch(oms_store_t *s, const evs_stream_append_t *streams, size_t count,
                        evs_append_result_t *res);

/* The expected version of an answer that follows what a read found:
 * EVS_EXPECT_NO_STREAM after EVS_VERSION_NONE, else that version. */
int64_t oms_ans_after(int64_t last_version);

/* ==== folding an answer stream ========================================= */

/* Called for each event of a listed type, in stream order, with its
 * decoded payload (freed after the call). Non-zero stops the fold. */
typedef int (*oms_ans_fold_fn)(void *ctx, const evs_recorded_event_t *ev,
                               const ProtobufCMessage *msg);

typedef struct {
    const ProtobufCMessageDescriptor *desc;
    oms_ans_fold_fn fn;
} oms_ans_case_t;

/* Reads stream ("x-1" or "$ce-x") forwards from `from` to its end and calls
 * the case of each event whose type is a listed one; other events are
 * skipped. *last_version (may be NULL) gets the stream's last version
 * (EVS_VERSION_NONE when it does not exist; for "$ce-" reads, as
 * oms_read_stream() gives it). Returns 0, a case's non-zero value,
 * -EBADMSG when a payload of a listed type does not decode, or a store
 * error. */
int oms_ans_fold(oms_store_t *s, const char *stream, uint64_t from, const oms_ans_case_t *cases,
                 size_t case_count, void *ctx, int64_t *last_version);

/* Whether stream has an event: *answered true when an answer to the order
 * is there already. Returns 0 or a store error. */
int oms_ans_answered(oms_store_t *s, const char *stream, bool *answered);

/* ==== results and metrics ============================================== */

/* The handler result for a failed step: OMS_PARK for errors a retry cannot
 * cure (-EINVAL, -ENAMETOOLONG, -EBADMSG, EVS_ETOO_LARGE, EVS_EBAD_REQUEST,
 * EVS_EACCESS, EVS_ECORRUPT), else OMS_RETRY. The worker's reason is set
 * to "<what>: <error>" either way. */
oms_result_t oms_ans_failed(oms_worker_t *w, int err, const char *what);

/* Creates the counters name{label="values[i]"} for i in [0, n) into out
 * (an entry is NULL when the registry is full; updates accept NULL). */
void oms_ans_counters(oms_metrics_t *m, const char *name, const char *help, const char *label,
                      const char *const *values, size_t n, oms_counter_t **out);

#endif
