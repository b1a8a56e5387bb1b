/* request.c -- in-flight slots, and sending requests: blocking (wait on the
 * slot) or asynchronous (the reader thread runs the callback). */
#include "client_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool on_reader_thread(const evs_conn_t *conn)
{
    return conn->reader_started && pthread_equal(pthread_self(), conn->reader);
}

/* Waits on cond until the deadline. Returns 0, or ETIMEDOUT. */
static int cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t deadline_ns)
{
    if (deadline_ns == UINT64_MAX)
        return pthread_cond_wait(cond, lock);
    struct timespec ts = { .tv_sec = (time_t)(deadline_ns / 1000000000u),
                           .tv_nsec = (long)(deadline_ns % 1000000000u) };
    return pthread_cond_timedwait(cond, lock, &ts) == ETIMEDOUT ? ETIMEDOUT : 0;
}

void conn_fail_locked(evs_conn_t *conn, int err, const char *msg)
{
    if (!conn->err) {
        conn->err = err;
        snprintf(conn->err_msg, sizeof conn->err_msg, "%s", msg);
    }
    uint64_t one = 1;
    ssize_t n = write(conn->wake_fd, &one, sizeof one);
    (void)n; /* a full eventfd counter already wakes the reader */
}

void conn_fail(evs_conn_t *conn, int err, const char *msg)
{
    pthread_mutex_lock(&conn->lock);
    conn_fail_locked(conn, err, msg);
    pthread_mutex_unlock(&conn->lock);
}

void slot_release_locked(evs_conn_t *conn, uint32_t index)
{
    slot_t *s = &conn->slots[index];
    assert(s->state != SLOT_FREE);
    s->state = SLOT_FREE;
    s->cb = NULL;
    s->ctx = NULL;
    s->resp = NULL;
    s->next = conn->free_head;
    conn->free_head = index;
    assert(conn->busy > 0);
    if (--conn->busy == 0)
        pthread_cond_broadcast(&conn->idle_cond);
    pthread_cond_signal(&conn->slot_free_cond);
}

void async_unlink_locked(evs_conn_t *conn, uint32_t index)
{
    slot_t *s = &conn->slots[index];
    if (s->prev != SLOT_NONE)
        conn->slots[s->prev].next = s->next;
    else
        conn->async_head = s->next;
    if (s->next != SLOT_NONE)
        conn->slots[s->next].prev = s->prev;
    else
        conn->async_tail = s->prev;
    s->next = s->prev = SLOT_NONE;
}

/* Links an async slot at the FIFO's tail. Returns true if the FIFO was
 * empty (the reader must learn of the new deadline). */
static bool async_link_locked(evs_conn_t *conn, uint32_t index)
{
    slot_t *s = &conn->slots[index];
    s->next = SLOT_NONE;
    s->prev = conn->async_tail;
    if (conn->async_tail != SLOT_NONE)
        conn->slots[conn->async_tail].next = index;
    else
        conn->async_head = index;
    conn->async_tail = index;
    return s->prev == SLOT_NONE;
}

/* Takes a free slot, waiting for one until the deadline when allowed.
 * Returns 0 and *index, EVS_EINFLIGHT, EVS_ETIMEDOUT or the connection's
 * error. */
static int slot_take_locked(evs_conn_t *conn, bool may_wait, uint64_t deadline_ns,
                            uint32_t *index)
{
    while (!conn->err && conn->free_head == SLOT_NONE) {
        if (!may_wait) {
            errmsg_set("%u requests in flight", conn->opts.inflight_max);
            return EVS_EINFLIGHT;
        }
        if (cond_wait_until(&conn->slot_free_cond, &conn->lock, deadline_ns)) {
            errmsg_set("no in-flight slot came free within %d ms", conn->opts.io_timeout_ms);
            return EVS_ETIMEDOUT;
        }
    }
    if (conn->err) {
        errmsg_set("%s", conn->err_msg);
        return conn->err;
    }
    uint32_t i = conn->free_head;
    slot_t *s = &conn->slots[i];
    conn->free_head = s->next;
    s->gen = s->gen == UINT32_MAX ? 1 : s->gen + 1;
    s->done = false;
    s->resp = NULL;
    s->err = 0;
    s->next = s->prev = SLOT_NONE;
    conn->busy++;
    *index = i;
    return 0;
}

static uint64_t slot_correlation_id(const evs_conn_t *conn, uint32_t index)
{
    return (uint64_t)conn->slots[index].gen << 32 | index;
}

/* Allocates the frame buffer for req, sized for the largest correlation id,
 * and refuses a frame the server would not accept. */
static int frame_alloc(const evs_conn_t *conn, envelope_t *req, uint8_t **buf)
{
    req->correlation_id = UINT64_MAX;
    size_t size = frame_size(req);
    if (size - FRAME_HEADER_BYTES > conn->info.frame_bytes_max) {
        errmsg_set("request of %zu bytes is over the server's frame limit of %u bytes", size,
                   conn->info.frame_bytes_max);
        return EVS_ETOO_LARGE;
    }
    *buf = malloc(size);
    return *buf ? 0 : -ENOMEM;
}

/* Encodes req for slot index and writes it whole. A failed write closes the
 * connection (part of a frame may be out); the reader then fails the slot. */
static void frame_send(evs_conn_t *conn, envelope_t *req, uint8_t *buf, uint32_t index,
                       uint64_t deadline_ns)
{
    req->correlation_id = slot_correlation_id(conn, index);
    size_t len = frame_encode(req, buf);
    pthread_mutex_lock(&conn->send_lock);
    int err = sock_send_all(conn->fd, buf, len, deadline_ns);
    pthread_mutex_unlock(&conn->send_lock);
    if (err) {
        char msg[EVS_MESSAGE_BYTES_MAX];
        snprintf(msg, sizeof msg, "sending a request: %s", evs_strerror(err));
        conn_fail(conn, err == EVS_ETIMEDOUT ? EVS_ETIMEDOUT : EVS_ECLOSED, msg);
    }
}

/* Waits for slot index to be answered; releases it (or abandons it on
 * timeout). Returns 0 and *resp, or an error. Caller holds conn->lock. */
static int slot_wait_locked(evs_conn_t *conn, uint32_t index, uint64_t deadline_ns,
                            envelope_t **resp)
{
    slot_t *s = &conn->slots[index];
    while (!s->done) {
        if (cond_wait_until(&s->cond, &conn->lock, deadline_ns)) {
            s->state = SLOT_ABANDONED;
            errmsg_set("no answer within %d ms", conn->opts.io_timeout_ms);
            return EVS_ETIMEDOUT;
        }
    }
    int err = s->err;
    *resp = s->resp;
    if (err)
        errmsg_set("%s", conn->err_msg);
    slot_release_locked(conn, index);
    return err;
}

int request_sync(evs_conn_t *conn, envelope_t *req, int want, envelope_t **resp)
{
    if (on_reader_thread(conn)) {
        errmsg_set("blocking call from a completion callback");
        return EVS_EDEADLOCK;
    }
    uint64_t deadline = deadline_after_ms(conn->opts.io_timeout_ms);
    uint8_t *buf = NULL;
    int err = frame_alloc(conn, req, &buf);
    if (err)
        return err;
    uint32_t index;
    pthread_mutex_lock(&conn->lock);
    err = slot_take_locked(conn, true, deadline, &index);
    if (!err)
        conn->slots[index].state = SLOT_SYNC;
    pthread_mutex_unlock(&conn->lock);
    if (err)
        goto out_free_buf;
    frame_send(conn, req, buf, index, deadline);
    pthread_mutex_lock(&conn->lock);
    err = slot_wait_locked(conn, index, deadline, resp);
    pthread_mutex_unlock(&conn->lock);
    if (!err && (*resp)->body_case != (unsigned)want &&
        (*resp)->body_case != EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        errmsg_set("server answered with message %d, not %d", (int)(*resp)->body_case, want);
        frame_free(*resp);
        *resp = NULL;
        err = EVS_EPROTOCOL;
    }
out_free_buf:
    free(buf);
    return err;
}

int request_async(evs_conn_t *conn, envelope_t *req, evs_append_cb cb, void *ctx)
{
    bool may_wait = !on_reader_thread(conn);
    uint64_t deadline = deadline_after_ms(conn->opts.io_timeout_ms);
    uint8_t *buf = NULL;
    int err = frame_alloc(conn, req, &buf);
    if (err)
        return err;
    uint32_t index;
    bool wake = false;
    pthread_mutex_lock(&conn->lock);
    err = slot_take_locked(conn, may_wait, deadline, &index);
    if (!err) {
        slot_t *s = &conn->slots[index];
        s->state = SLOT_ASYNC;
        s->cb = cb;
        s->ctx = ctx;
        s->deadline_ns = deadline_after_ms(conn->opts.io_timeout_ms);
        wake = async_link_locked(conn, index);
    }
    pthread_mutex_unlock(&conn->lock);
    if (err)
        goto out_free_buf;
    if (wake) {
        uint64_t one = 1;
        ssize_t n = write(conn->wake_fd, &one, sizeof one);
        (void)n;
    }
    frame_send(conn, req, buf, index, deadline);
out_free_buf:
    free(buf);
    return err;
}

int request_expect(evs_conn_t *conn, envelope_t *req, int want, envelope_t **resp)
{
    int err = request_sync(conn, req, want, resp);
    if (err)
        return err;
    if ((*resp)->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        err = error_from_envelope(*resp);
        frame_free(*resp);
        *resp = NULL;
    }
    return err;
}
