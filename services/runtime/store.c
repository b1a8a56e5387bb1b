/* store.c -- a reconnecting connection to evstored shared by threads.
 *
 * evs_conn_t pipelines requests from many threads. When it fails, the first
 * thread to notice connects a new one; the failed connection is kept (not
 * closed) until oms_store_close(), because other threads may still hold
 * it: reconnections are rare, so the list stays short. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oms.h"

#define STORE_RETIRED_MAX 256u /* failed connections kept until close; beyond it the
                                  oldest is closed (no thread can still be in it after
                                  that many reconnections' worth of time) */
#define STORE_BACKOFF_MS_INITIAL 20
#define STORE_BACKOFF_MS_MAX 500

struct oms_store {
    pthread_mutex_t lock;
    evs_options_t opts;
    char host[OMS_NAME_BYTES_MAX];
    char client_name[OMS_NAME_BYTES_MAX];
    int retry_ms;               /* how long a call retries a lost store */
    evs_conn_t *conn;           /* NULL while disconnected */
    evs_conn_t *retired[STORE_RETIRED_MAX];
    size_t retired_count;
};

int oms_store_open(const oms_config_t *cfg, const char *client_name, oms_store_t **out)
{
    oms_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    snprintf(s->client_name, sizeof s->client_name, "%s", client_name);
    oms_store_options(cfg, s->client_name, &s->opts);
    snprintf(s->host, sizeof s->host, "%s", cfg->store_host);
    s->opts.host = s->host;
    s->retry_ms = OMS_STORE_RETRY_MS_MAX;
    int rc = evs_connect(&s->opts, &s->conn);
    if (rc != 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void oms_store_close(oms_store_t *s)
{
    if (!s)
        return;
    evs_close(s->conn);
    for (size_t i = 0; i < s->retired_count; i++)
        evs_close(s->retired[i]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Retires conn if it is still the current one (the caller saw it fail). */
static void store_retire(oms_store_t *s, evs_conn_t *conn)
{
    pthread_mutex_lock(&s->lock);
    if (conn && s->conn == conn) {
        if (s->retired_count == STORE_RETIRED_MAX) {
            evs_close(s->retired[0]);
            memmove(s->retired, s->retired + 1, (STORE_RETIRED_MAX - 1) * sizeof *s->retired);
            s->retired_count--;
        }
        s->retired[s->retired_count++] = conn;
        s->conn = NULL;
    }
    pthread_mutex_unlock(&s->lock);
}

evs_conn_t *oms_store_conn(oms_store_t *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->conn && evs_conn_error(s->conn) != 0) {
        evs_conn_t *dead = s->conn;
        pthread_mutex_unlock(&s->lock);
        store_retire(s, dead);
        pthread_mutex_lock(&s->lock);
    }
    if (!s->conn) {
        evs_conn_t *c = NULL;
        if (evs_connect(&s->opts, &c) == 0)
            s->conn = c;
    }
    evs_conn_t *conn = s->conn;
    pthread_mutex_unlock(&s->lock);
    return conn;
}

void oms_store_set_retry_ms(oms_store_t *s, int retry_ms)
{
    s->retry_ms = retry_ms;
}

bool oms_store_unavailable(int rc)
{
    return rc == EVS_ECLOSED || rc == EVS_ETIMEDOUT || rc == EVS_EBUSY || rc == EVS_ENOT_READY ||
           rc == EVS_EPROTOCOL || rc == EVS_EIO || rc == -ECONNREFUSED || rc == -ECONNRESET;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Runs op(conn, ctx) until it gives a non-transient answer or the store's
 * retry time has passed, reconnecting in between. */
static int store_call(oms_store_t *s, int (*op)(evs_conn_t *, void *), void *ctx)
{
    int64_t deadline = oms_mono_ns() + (int64_t)s->retry_ms * 1000000;
    int backoff_ms = STORE_BACKOFF_MS_INITIAL;
    for (;;) {
        evs_conn_t *conn = oms_store_conn(s);
        int rc = conn ? op(conn, ctx) : EVS_ECLOSED;
        if (!oms_store_unavailable(rc) || oms_mono_ns() >= deadline)
            return rc;
        if (conn && evs_conn_error(conn) != 0)
            store_retire(s, conn); /* a timed-out answer leaves a healthy connection */
        sleep_ms(backoff_ms);
        backoff_ms = backoff_ms * 2 > STORE_BACKOFF_MS_MAX ? STORE_BACKOFF_MS_MAX : backoff_ms * 2;
    }
}

typedef struct {
    const evs_stream_append_t *streams;
    size_t stream_count;
    evs_append_result_t *res;
} append_op_t;

static int append_op(evs_conn_t *conn, void *ctx)
{
    append_op_t *a = ctx;
    return evs_append(conn, a->streams, a->stream_count, a->res);
}

int oms_append(oms_store_t *s, const evs_stream_append_t *streams, size_t stream_count,
               evs_append_result_t *res)
{
    evs_append_result_t local;
    append_op_t a = {streams, stream_count, res ? res : &local};
    return store_call(s, append_op, &a);
}

int oms_append_one(oms_store_t *s, const char *stream, int64_t expected_version,
                   const evs_event_t *events, size_t count, evs_append_result_t *res)
{
    evs_stream_append_t one = {.stream = stream, .expected_version = expected_version,
                               .events = events, .event_count = count};
    return oms_append(s, &one, 1, res);
}

typedef struct {
    const evs_read_t *req;
    evs_read_result_t *res;
} read_op_t;

static int read_op(evs_conn_t *conn, void *ctx)
{
    read_op_t *r = ctx;
    return evs_read(conn, r->req, r->res);
}

int oms_read_stream(oms_store_t *s, const char *stream, uint64_t from, oms_event_fn fn,
                    void *ctx, int64_t *last_version)
{
    if (last_version)
        *last_version = EVS_VERSION_NONE;
    evs_read_t req = {.stream = stream, .from = from};
    for (;;) {
        evs_read_result_t res = {0};
        read_op_t r = {&req, &res};
        int rc = store_call(s, read_op, &r);
        if (rc == EVS_ESTREAM_NOT_FOUND)
            return 0;
        if (rc != 0)
            return rc;
        if (last_version)
            *last_version = res.stream_version;
        for (size_t i = 0; i < res.count && rc == 0; i++)
            rc = fn(ctx, &res.events[i]);
        bool end = res.end || (res.count == 0 && res.next == req.from);
        req.from = res.next;
        evs_read_result_free(&res);
        if (rc != 0 || end)
            return rc;
    }
}
