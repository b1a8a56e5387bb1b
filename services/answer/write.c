/* write.c -- answers: the first one wins, repeats are recognised. */
#include <errno.h>
#include <stdio.h>

#include "oms_answer.h"

int oms_ans_stream(char out[OMS_NAME_BYTES_MAX], const char *category, const char *id)
{
    int n = snprintf(out, OMS_NAME_BYTES_MAX, "%s-%s", category, id);
    return n < 0 || (size_t)n >= OMS_NAME_BYTES_MAX ? -ENAMETOOLONG : 0;
}

int oms_ans_write_batch(oms_store_t *s, const evs_stream_append_t *streams, size_t count,
                        evs_append_result_t *res)
{
    int rc = oms_append(s, streams, count, res);
    if (rc)
        return rc;
    return res->idempotent ? OMS_ANS_REPEATED : OMS_ANS_WRITTEN;
}

int oms_ans_write(oms_store_t *s, const char *stream, int64_t expected_version,
                  const void *msg, const char *subject, const char *step)
{
    evs_event_t ev;
    int rc = oms_event_make(&ev, msg, subject, step);
    if (rc)
        return rc;
    evs_stream_append_t sa = {
        .stream = stream, .expected_version = expected_version, .events = &ev, .event_count = 1,
    };
    evs_append_result_t res;
    rc = oms_ans_write_batch(s, &sa, 1, &res);
    oms_event_free_data(&ev);
    return rc == EVS_EWRONG_VERSION ? OMS_ANS_STANDS : rc;
}

int64_t oms_ans_after(int64_t last_version)
{
    return last_version == EVS_VERSION_NONE ? EVS_EXPECT_NO_STREAM : last_version;
}
