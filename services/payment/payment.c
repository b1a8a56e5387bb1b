/* payment.c -- PaymentRequested and RefundRequested, answered in
 * payment-<orderId>.
 *
 * Once per order: the charge's answer (PaymentProcessed or PaymentFailed)
 * is appended at EVS_EXPECT_NO_STREAM, so only the first is ever written;
 * the refund's answer (PaymentRefunded) is appended at the version the
 * handler read, so it follows exactly what it saw. A refund that finds the
 * stream empty voids the payment (amount 0, at EVS_EXPECT_NO_STREAM), which
 * also makes any later charge find the stream taken: a customer is charged
 * at most once per order, and never after the refund. */
#include <stdio.h>
#include <string.h>

#include "oms.pb-c.h"
#include "payment.h"

#define PAY_STEP_CHARGE "charge"
#define PAY_STEP_REFUND "refund"
#define PAY_REASON_VOIDED "voided"           /* refund before any charge */
#define PAY_REASON_NOT_CHARGED "not_charged" /* refund after a decline */

int oms_pay_start(oms_service_t *svc, void *ctx)
{
    static const char *const results[OMS_PAY_R_COUNT] = {
        [OMS_PAY_R_PROCESSED] = "processed",   [OMS_PAY_R_DECLINED] = "declined",
        [OMS_PAY_R_LIMIT_EXCEEDED] = "limit_exceeded", [OMS_PAY_R_REFUNDED] = "refunded",
        [OMS_PAY_R_VOIDED] = "voided",
    };
    oms_pay_t *p = ctx;
    oms_metrics_t *m = oms_service_metrics(svc);
    oms_ans_counters(m, "oms_payments_total", "Payment answers written, by result.", "result",
                     results, OMS_PAY_R_COUNT, p->results);
    const char *help = "Cents charged and refunded.";
    p->charged_cents = oms_metrics_counter(m, "oms_payment_cents_total", help, "kind=\"charged\"");
    p->refunded_cents =
        oms_metrics_counter(m, "oms_payment_cents_total", help, "kind=\"refunded\"");
    return 0;
}

/* Writes the gateway's verdict v on rq as the order's first payment
 * answer. Returns as oms_ans_write(). */
static int charge_answer(oms_store_t *s, const char *stream, const char *order_id,
                         const Oms__V1__PaymentRequested *rq, oms_pay_verdict_t v)
{
    if (v != OMS_PAY_APPROVED) {
        Oms__V1__PaymentFailed f = OMS__V1__PAYMENT_FAILED__INIT;
        f.order_id = (char *)order_id;
        f.customer_id = rq->customer_id;
        f.amount_cents = rq->amount_cents;
        f.reason = v == OMS_PAY_DECLINED ? "card_declined" : "limit_exceeded";
        return oms_ans_write(s, stream, EVS_EXPECT_NO_STREAM, &f, order_id, PAY_STEP_CHARGE);
    }
    char charge_id[OMS_NAME_BYTES_MAX];
    snprintf(charge_id, sizeof charge_id, "ch_%s", order_id);
    Oms__V1__PaymentProcessed ok = OMS__V1__PAYMENT_PROCESSED__INIT;
    ok.order_id = (char *)order_id;
    ok.customer_id = rq->customer_id;
    ok.amount_cents = rq->amount_cents;
    ok.currency = rq->currency;
    ok.charge_id = charge_id;
    return oms_ans_write(s, stream, EVS_EXPECT_NO_STREAM, &ok, order_id, PAY_STEP_CHARGE);
}

oms_result_t oms_pay_charge(oms_worker_t *w, void *ctx, const char *order_id,
                            const ProtobufCMessage *msg)
{
    static const int result_of[] = {
        [OMS_PAY_APPROVED] = OMS_PAY_R_PROCESSED,
        [OMS_PAY_DECLINED] = OMS_PAY_R_DECLINED,
        [OMS_PAY_LIMIT_EXCEEDED] = OMS_PAY_R_LIMIT_EXCEEDED,
    };
    oms_pay_t *p = ctx;
    const Oms__V1__PaymentRequested *rq = (const Oms__V1__PaymentRequested *)msg;
    if (rq->amount_cents < 0) {
        oms_worker_reason(w, "PaymentRequested %s: negative amount %lld", order_id,
                          (long long)rq->amount_cents);
        return OMS_PARK;
    }
    oms_pay_verdict_t v = oms_pay_decide(rq->customer_id, rq->payment_token, rq->amount_cents,
                                         p->customer_limit_cents);
    if (v == OMS_PAY_SILENT)
        return OMS_OK;
    char stream[OMS_NAME_BYTES_MAX];
    int rc = oms_ans_stream(stream, "payment", order_id);
    if (rc == 0)
        rc = charge_answer(oms_worker_store(w), stream, order_id, rq, v);
    if (rc < 0)
        return oms_ans_failed(w, rc, "payment answer");
    if (rc == OMS_ANS_WRITTEN) {
        oms_counter_add(p->results[result_of[v]], 1);
        if (v == OMS_PAY_APPROVED)
            oms_counter_add(p->charged_cents, (uint64_t)rq->amount_cents);
    }
    return OMS_OK;
}

/* What payment-<orderId> holds. */
typedef struct {
    bool charged, failed, refunded;
    int64_t charged_cents;
    char charge_id[OMS_NAME_BYTES_MAX];
} pay_state_t;

static int fold_processed(void *ctx, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    (void)ev;
    pay_state_t *st = ctx;
    const Oms__V1__PaymentProcessed *e = (const Oms__V1__PaymentProcessed *)m;
    st->charged = true;
    st->charged_cents = e->amount_cents;
    snprintf(st->charge_id, sizeof st->charge_id, "%s", e->charge_id);
    return 0;
}

static int fold_failed(void *ctx, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    (void)ev, (void)m;
    ((pay_state_t *)ctx)->failed = true;
    return 0;
}

static int fold_refunded(void *ctx, const evs_recorded_event_t *ev, const ProtobufCMessage *m)
{
    (void)ev, (void)m;
    ((pay_state_t *)ctx)->refunded = true;
    return 0;
}

static const oms_ans_case_t pay_cases[] = {
    {&oms__v1__payment_processed__descriptor, fold_processed},
    {&oms__v1__payment_failed__descriptor, fold_failed},
    {&oms__v1__payment_refunded__descriptor, fold_refunded},
};

oms_result_t oms_pay_refund(oms_worker_t *w, void *ctx, const char *order_id,
                            const ProtobufCMessage *msg)
{
    oms_pay_t *p = ctx;
    const Oms__V1__RefundRequested *rq = (const Oms__V1__RefundRequested *)msg;
    oms_store_t *store = oms_worker_store(w);
    char stream[OMS_NAME_BYTES_MAX];
    int rc = oms_ans_stream(stream, "payment", order_id);
    if (rc)
        return oms_ans_failed(w, rc, "payment stream name");
    pay_state_t st = {0};
    int64_t version = EVS_VERSION_NONE;
    rc = oms_ans_fold(store, stream, 0, pay_cases, sizeof pay_cases / sizeof pay_cases[0], &st,
                      &version);
    if (rc)
        return oms_ans_failed(w, rc, stream);
    if (st.refunded)
        return OMS_OK;
    Oms__V1__PaymentRefunded r = OMS__V1__PAYMENT_REFUNDED__INIT;
    r.order_id = (char *)order_id;
    r.customer_id = rq->customer_id;
    r.amount_cents = st.charged ? st.charged_cents : 0;
    r.charge_id = st.charged ? st.charge_id : "";
    r.reason = st.charged ? rq->reason : st.failed ? PAY_REASON_NOT_CHARGED : PAY_REASON_VOIDED;
    rc = oms_ans_write(store, stream, oms_ans_after(version), &r, order_id, PAY_STEP_REFUND);
    if (rc < 0)
        return oms_ans_failed(w, rc, stream);
    if (rc == OMS_ANS_STANDS) {
        /* The stream moved between the read and the write (another
         * instance answered): read it again on the next delivery. */
        oms_worker_reason(w, "%s moved while refunding", stream);
        return OMS_RETRY;
    }
    if (rc == OMS_ANS_WRITTEN) {
        oms_counter_add(p->results[r.amount_cents > 0 ? OMS_PAY_R_REFUNDED : OMS_PAY_R_VOIDED], 1);
        oms_counter_add(p->refunded_cents, (uint64_t)r.amount_cents);
    }
    return OMS_OK;
}
