/* gateway.c -- the simulated card gateway's rules. */
#include <string.h>

#include "payment.h"

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

oms_pay_verdict_t oms_pay_decide(const char *customer_id, const char *token, int64_t amount_cents,
                                 uint64_t limit_cents)
{
    if (starts_with(token, OMS_PAY_TOKEN_TIMEOUT))
        return OMS_PAY_SILENT;
    if (starts_with(token, OMS_PAY_TOKEN_DECLINE))
        return OMS_PAY_DECLINED;
    uint64_t limit = starts_with(customer_id, OMS_PAY_VIP_PREFIX)
                         ? limit_cents * OMS_PAY_VIP_LIMIT_FACTOR : limit_cents;
    if (amount_cents > 0 && (uint64_t)amount_cents > limit)
        return OMS_PAY_LIMIT_EXCEEDED;
    return OMS_PAY_APPROVED;
}
