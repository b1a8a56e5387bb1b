/* storeio.c -- the store, within an HTTP request's time budget.
 *
 * oms_append() and oms_read_stream() of the runtime retry a lost store for
 * up to OMS_STORE_RETRY_MS_MAX (30 s): right for a worker, too long for an
 * HTTP client, whose request would hang (and whose retries would pile up
 * threads). Here the same calls retry transient failures only until the
 * request's budget (--store-timeout-ms) is spent; the caller then answers
 * 503. A retried append carries the same event ids, so it is written once.
 * (When the runtime takes a deadline, this file reduces to calls of it.)
 */
#include <errno.h>
#include <time.h>

#include "order.h"

#define SIO_BACKOFF_MS 50

typedef int (*sio_op_fn)(evs_conn_t *conn, void *ctx);

static bool sio_transient(int rc)
{
    return rc == EVS_ECLOSED || rc == EVS_ETIMEDOUT || rc == EVS_EBUSY || rc == EVS_ENOT_READY ||
           rc == EVS_EPROTOCOL || rc == EVS_EIO;
}

bool oms_ord_store_down(int rc)
{
    return sio_transient(rc) || rc == -ECONNREFUSED || rc == -ECONNRESET;
}

/* Runs op until it gives a non-transient answer or the budget is spent. */
static int sio_call(oms_ord_t *svc, sio_op_fn op, void *ctx)
{
    int64_t deadline = oms_mono_ns() + (int64_t)svc->store_timeout_ms * 1000000;
    for (;;) {
        evs_conn_t *conn = oms_store_conn(svc->store); /* reconnects a failed one */
        int rc = conn ? op(conn, ctx) : EVS_ECLOSED;
        if (!sio_transient(rc) || oms_mono_ns() >= deadline)
            return rc;
        struct timespec ts = {.tv_nsec = SIO_BACKOFF_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

typedef struct {
    const evs_stream_append_t *one;
    evs_append_result_t *res;
} sio_append_t;

static int sio_append_op(evs_conn_t *conn, void *ctx)
{
    sio_append_t *a = ctx;
    return evs_append(conn, a->one, 1, a->res);
}

int oms_ord_append(oms_ord_t *svc, const char *stream, int64_t expected_version,
                   const evs_event_t *ev, evs_append_result_t *res)
{
    evs_stream_append_t one = {.stream = stream, .expected_version = expected_version,
                               .events = ev, .event_count = 1};
    sio_append_t a = {&one, res};
    return sio_call(svc, sio_append_op, &a);
}

typedef struct {
    const evs_read_t *req;
    evs_read_result_t *res;
} sio_read_t;

static int sio_read_op(evs_conn_t *conn, void *ctx)
{
    sio_read_t *r = ctx;
    return evs_read(conn, r->req, r->res);
}

int oms_ord_read(oms_ord_t *svc, const char *stream, oms_event_fn fn, void *ctx)
{
    evs_read_t req = {.stream = stream};
    for (;;) {
        evs_read_result_t res = {0};
        sio_read_t r = {&req, &res};
        int rc = sio_call(svc, sio_read_op, &r);
        if (rc == EVS_ESTREAM_NOT_FOUND)
            return 0;
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < res.count && rc == 0; i++)
            rc = fn(ctx, &res.events[i]);
        bool end = res.end || (res.count == 0 && res.next == req.from);
        req.from = res.next;
        evs_read_result_free(&res);
        if (rc != 0 || end)
            return rc;
    }
}
