/* main.c -- oms-payment: flags, then the group-driven service. */
#include <stdint.h>
#include <stdio.h>

#include "oms.pb-c.h"
#include "payment.h"

int main(int argc, char **argv)
{
    const char *limit_text = NULL;
    const oms_opt_t opts[] = {
        {"customer-limit-cents", "OMS_CUSTOMER_LIMIT_CENTS",
         "largest charge per order in cents (customers vip-*: 10x; default 500000)", &limit_text,
         false},
    };
    oms_config_t cfg;
    if (oms_config_parse(&cfg, "payment", OMS_METRICS_PORT_PAYMENT, argc, argv, opts,
                         sizeof opts / sizeof opts[0]) != 0)
        return 2;
    static oms_pay_t pay = {.customer_limit_cents = OMS_PAY_CUSTOMER_LIMIT_CENTS_DEFAULT};
    uint32_t limit;
    if (limit_text) {
        if (oms_parse_u32("customer-limit-cents", limit_text, 0, UINT32_MAX, &limit) != 0)
            return 2;
        pay.customer_limit_cents = limit;
    }
    static const oms_ans_route_t routes[] = {
        {&oms__v1__payment_requested__descriptor, oms_pay_charge},
        {&oms__v1__refund_requested__descriptor, oms_pay_refund},
    };
    const oms_ans_service_t svc = {
        .group = "oms-payment",
        .source = "$ce-saga",
        .routes = routes,
        .route_count = sizeof routes / sizeof routes[0],
        .start = oms_pay_start,
        .ctx = &pay,
    };
    return oms_ans_run(&cfg, &svc) == 0 ? 0 : 1;
}
