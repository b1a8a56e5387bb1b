/* payment.h -- oms-payment: charges and refunds against a simulated
 * gateway, answered once per order in payment-<orderId>. */
#ifndef OMS_PAYMENT_H
#define OMS_PAYMENT_H

#include "oms_answer.h"

#define OMS_PAY_CUSTOMER_LIMIT_CENTS_DEFAULT 500000u
#define OMS_PAY_VIP_PREFIX "vip-"        /* these customers get... */
#define OMS_PAY_VIP_LIMIT_FACTOR 10u     /* ...this many times the limit */
#define OMS_PAY_TOKEN_DECLINE "tok_decline" /* prefix: the card is declined */
#define OMS_PAY_TOKEN_TIMEOUT "tok_timeout" /* prefix: the gateway never answers */

/* The gateway's answer to a charge. */
typedef enum {
    OMS_PAY_APPROVED,
    OMS_PAY_DECLINED,       /* PaymentFailed(card_declined) */
    OMS_PAY_LIMIT_EXCEEDED, /* PaymentFailed(limit_exceeded) */
    OMS_PAY_SILENT,         /* no answer at all */
} oms_pay_verdict_t;

/* The simulated gateway: deterministic in its inputs, so a re-issued
 * command gets the same verdict. limit_cents is the customer limit before
 * the VIP factor. */
oms_pay_verdict_t oms_pay_decide(const char *customer_id, const char *token, int64_t amount_cents,
                                 uint64_t limit_cents);

/* oms_payments_total{result} */
enum {
    OMS_PAY_R_PROCESSED,
    OMS_PAY_R_DECLINED,
    OMS_PAY_R_LIMIT_EXCEEDED,
    OMS_PAY_R_REFUNDED,
    OMS_PAY_R_VOIDED,
    OMS_PAY_R_COUNT,
};

typedef struct {
    uint64_t customer_limit_cents;
    oms_counter_t *results[OMS_PAY_R_COUNT];
    oms_counter_t *charged_cents;
    oms_counter_t *refunded_cents;
} oms_pay_t;

/* start(): creates p's metrics. */
int oms_pay_start(oms_service_t *svc, void *p);

/* PaymentRequested: the gateway's verdict as PaymentProcessed or
 * PaymentFailed at EVS_EXPECT_NO_STREAM (nothing for a silent gateway). */
oms_result_t oms_pay_charge(oms_worker_t *w, void *p, const char *order_id,
                            const ProtobufCMessage *msg);

/* RefundRequested: exactly one PaymentRefunded per order, after what the
 * stream holds (a charge: its amount; nothing or a decline: 0). */
oms_result_t oms_pay_refund(oms_worker_t *w, void *p, const char *order_id,
                            const ProtobufCMessage *msg);

#endif
