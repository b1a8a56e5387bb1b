/* result.c -- store errors to handler results; labelled counters. */
#include <errno.h>
#include <stdio.h>

#include "oms_answer.h"

oms_result_t oms_ans_failed(oms_worker_t *w, int err, const char *what)
{
    /* The client's details belong to the evs call that failed; other
     * errors (-ENAMETOOLONG, -EBADMSG...) come from here and have none. */
    bool from_evs = err <= -30000 && err >= -30999;
    const char *detail = from_evs ? evs_errmsg() : "";
    oms_worker_reason(w, "%s: %s%s%s%s", what, evs_strerror(err), *detail ? " (" : "", detail,
                      *detail ? ")" : "");
    /* The library already retried what a retry may cure, for up to
     * OMS_STORE_RETRY_MS_MAX: that is worth a redelivery; the rest is not. */
    return evs_error_retryable(err) ? OMS_RETRY : OMS_PARK;
}

void oms_ans_counters(oms_metrics_t *m, const char *name, const char *help, const char *label,
                      const char *const *values, size_t n, oms_counter_t **out)
{
    char labels[OMS_NAME_BYTES_MAX];
    for (size_t i = 0; i < n; i++) {
        snprintf(labels, sizeof labels, "%s=\"%s\"", label, values[i]);
        out[i] = oms_metrics_counter(m, name, help, labels);
    }
}
