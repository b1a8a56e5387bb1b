/* request.c -- in-flight slots, and sending requests: blocking (wait on the
 * slot) or asynchronous (the reader thread runs the callback). */
#include "client_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

bool evsi_on_reader_thread(const evs_conn_t *conn)
{
    return conn->reader_started && pthread_equal(pthread_self(), conn->reader);
}

int evsi_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t deadline_ns)
{
    if (deadline_ns == UINT64_MAX)
        return pthread_cond_wait(cond, lock);
    struct timespec ts = { .tv_sec = (time_t)(deadline_ns / 1000000000u),
                           .tv_nsec = (long)(deadline_ns % 1000000000u) };
    return pthread_cond_timedwait(cond, lock, &ts) == ETIMEDOUT ? ETIMEDOUT : 0;
}

void evsi_reader_wake(evs_conn_t *conn)
{
    uint64_t one = 1;
    ssize_t n = write(conn->wake_fd, &one, sizeof one);
    (void)n; /* a full eventfd counter already wakes the reader */
}

void evsi_slot_release_locked(evs_conn_t *conn, uint32_t index)
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

void evsi_async_unlink_locked(evs_conn_t *conn, uint32_t index)
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

/* Takes a free slot on the current socket, waiting for one until the
 * deadline when allowed. Returns 0 and *index, EVS_EINFLIGHT, EVS_ETIMEDOUT,
 * or the link's error when the socket is down (or goes down meanwhile). */
static int slot_take_locked(evs_conn_t *conn, bool may_wait, uint64_t deadline_ns,
                            uint32_t *index)
{
    while (conn->fd >= 0 && conn->free_head == SLOT_NONE) {
        if (!may_wait) {
            evsi_errmsg_set("%u requests in flight", conn->opts.inflight_max);
            return EVS_EINFLIGHT;
        }
        if (evsi_cond_wait_until(&conn->slot_free_cond, &conn->lock, deadline_ns)) {
            evsi_errmsg_set("no in-flight slot came free within %d ms", conn->opts.io_timeout_ms);
            return EVS_ETIMEDOUT;
        }
    }
    if (conn->fd < 0) {
        evsi_errmsg_set("%s", conn->err_msg);
        return conn->err;
    }
    uint32_t i = conn->free_head;
    slot_t *s = &conn->slots[i];
    conn->free_head = s->next;
    s->gen = s->gen == UINT32_MAX ? 1 : s->gen + 1;
    s->epoch = conn->epoch;
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
static int frame_alloc(evs_conn_t *conn, envelope_t *req, uint8_t **buf)
{
    req->correlation_id = UINT64_MAX;
    size_t size = frame_size(req);
    pthread_mutex_lock(&conn->lock);
    uint32_t limit = conn->info.frame_bytes_max;
    pthread_mutex_unlock(&conn->lock);
    if (size - FRAME_HEADER_BYTES > limit) {
        evsi_errmsg_set("request of %zu bytes is over the server's frame limit of %u bytes", size,
                   limit);
        return EVS_ETOO_LARGE;
    }
    *buf = malloc(size);
    return *buf ? 0 : -ENOMEM;
}

/* Encodes req for slot index and writes it whole on the socket of the
 * slot's epoch. When that socket is gone already, nothing is sent (the
 * reader failed or fails the slot). A failed write shuts the socket down
 * (part of a frame may be out): the reader then takes it down and fails
 * every slot of its epoch, this one too. */
static void frame_send(evs_conn_t *conn, envelope_t *req, uint8_t *buf, uint32_t index,
                       uint64_t deadline_ns)
{
    req->correlation_id = slot_correlation_id(conn, index);
    size_t len = frame_encode(req, buf);
    pthread_mutex_lock(&conn->send_lock);
    pthread_mutex_lock(&conn->lock);
    int fd = conn->epoch == conn->slots[index].epoch ? conn->fd : -1;
    pthread_mutex_unlock(&conn->lock);
    if (fd >= 0 && evsi_sock_send_all(fd, buf, len, deadline_ns) != 0)
        shutdown(fd, SHUT_RDWR);
    pthread_mutex_unlock(&conn->send_lock);
}

/* Waits for slot index to be answered; releases it (or abandons it on
 * timeout). Returns 0 and *resp, or an error. Caller holds conn->lock. */
static int slot_wait_locked(evs_conn_t *conn, uint32_t index, uint64_t deadline_ns,
                            envelope_t **resp)
{
    slot_t *s = &conn->slots[index];
    while (!s->done) {
        if (evsi_cond_wait_until(&s->cond, &conn->lock, deadline_ns)) {
            s->state = SLOT_ABANDONED;
            evsi_errmsg_set("no answer within %d ms", conn->opts.io_timeout_ms);
            return EVS_ETIMEDOUT;
        }
    }
    int err = s->err;
    *resp = s->resp;
    if (err)
        evsi_errmsg_set("%s", conn->err_msg);
    evsi_slot_release_locked(conn, index);
    return err;
}

/* One attempt: waits for the socket (reconnecting within the budget), then
 * sends req and waits for its answer within io_timeout_ms. */
static int request_once(evs_conn_t *conn, envelope_t *req, uint8_t *buf, uint64_t until_ns,
                        envelope_t **resp)
{
    uint64_t deadline = 0;
    uint32_t index;
    pthread_mutex_lock(&conn->lock);
    int err = evsi_link_ready_locked(conn, until_ns);
    if (!err) {
        deadline = evsi_deadline_after_ms(conn->opts.io_timeout_ms); /* from a ready link */
        err = slot_take_locked(conn, true, deadline, &index);
    }
    if (!err)
        conn->slots[index].state = SLOT_SYNC;
    pthread_mutex_unlock(&conn->lock);
    if (err)
        return err;
    frame_send(conn, req, buf, index, deadline);
    pthread_mutex_lock(&conn->lock);
    err = slot_wait_locked(conn, index, deadline, resp);
    pthread_mutex_unlock(&conn->lock);
    return err;
}

/* The outcome of an attempt: a link failure, the code of an Error answer
 * (*resp is then freed, unless keep_error and the code is final: the
 * caller reads the Error itself), EVS_EPROTOCOL for an answer of another
 * kind than want, or 0. */
static int attempt_outcome(int err, int want, bool keep_error, envelope_t **resp)
{
    if (err)
        return err;
    if ((*resp)->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        err = evsi_error_from_envelope(*resp);
        if (keep_error && !evs_error_retryable(err))
            return 0;
    } else if ((*resp)->body_case != (unsigned)want) {
        evsi_errmsg_set("server answered with message %d, not %d", (int)(*resp)->body_case, want);
        err = EVS_EPROTOCOL;
    }
    if (err) {
        frame_free(*resp);
        *resp = NULL;
    }
    return err;
}

/* Waits before the next attempt: while the socket is down the reconnection
 * backoff paces the attempts (in evsi_link_ready_locked); while it is up (the
 * server was busy, or an answer timed out) the request's own pause, which
 * doubles up to the backoff max. Returns false when the budget is spent. */
static bool retry_pause(evs_conn_t *conn, int *pause_ms, uint64_t until_ns)
{
    uint64_t now = util_mono_ns();
    if (now >= until_ns)
        return false;
    pthread_mutex_lock(&conn->lock);
    bool up = conn->fd >= 0, closing = conn->closing;
    /* Down: worth another attempt only if the next reconnection is due
     * within the budget (else evsi_link_ready_locked would answer at once,
     * again and again: a spin). */
    bool due = conn->connecting || conn->retry_at_ns < until_ns;
    pthread_mutex_unlock(&conn->lock);
    if (closing)
        return false;
    if (!up)
        return due;
    if (now + (uint64_t)*pause_ms * 1000000u >= until_ns)
        return false;
    util_sleep_ms(*pause_ms);
    *pause_ms = evsi_backoff_doubled(*pause_ms, conn->opts.reconnect_backoff_ms_max);
    return true;
}

/* Sends req until its outcome is not a retryable failure, or the budget
 * (retry_ms_max from now) is spent. */
static int request_retrying(evs_conn_t *conn, envelope_t *req, int want, bool keep_error,
                            envelope_t **resp)
{
    *resp = NULL;
    if (evsi_on_reader_thread(conn)) {
        evsi_errmsg_set("blocking call from a completion callback");
        return EVS_EDEADLOCK;
    }
    uint64_t until = evsi_deadline_after_ms(conn->opts.retry_ms_max);
    int pause_ms = conn->opts.reconnect_backoff_ms_initial;
    uint8_t *buf = NULL;
    int err = frame_alloc(conn, req, &buf);
    while (!err) {
        err = attempt_outcome(request_once(conn, req, buf, until, resp), want, keep_error, resp);
        if (!err || !evs_error_retryable(err) || !retry_pause(conn, &pause_ms, until))
            break;
        err = 0;
    }
    free(buf);
    return err;
}

int evsi_request_sync(evs_conn_t *conn, envelope_t *req, int want, envelope_t **resp)
{
    return request_retrying(conn, req, want, true, resp);
}

int evsi_request_expect(evs_conn_t *conn, envelope_t *req, int want, envelope_t **resp)
{
    return request_retrying(conn, req, want, false, resp);
}

/* Takes an async slot: on the reader thread only on a socket that is up
 * (no waiting there), elsewhere reconnecting within the budget first. */
static int async_slot_take_locked(evs_conn_t *conn, bool on_reader, uint64_t deadline_ns,
                                  uint32_t *index)
{
    int err = 0;
    if (!on_reader)
        err = evsi_link_ready_locked(conn, evsi_deadline_after_ms(conn->opts.retry_ms_max));
    if (!err)
        err = slot_take_locked(conn, !on_reader, deadline_ns, index);
    return err;
}

int evsi_request_async(evs_conn_t *conn, envelope_t *req, evs_done_cb cb, void *ctx)
{
    bool on_reader = evsi_on_reader_thread(conn);
    uint64_t deadline = evsi_deadline_after_ms(conn->opts.io_timeout_ms);
    uint8_t *buf = NULL;
    int err = frame_alloc(conn, req, &buf);
    if (err)
        return err;
    uint32_t index;
    bool wake = false;
    pthread_mutex_lock(&conn->lock);
    err = async_slot_take_locked(conn, on_reader, deadline, &index);
    if (!err) {
        slot_t *s = &conn->slots[index];
        s->state = SLOT_ASYNC;
        s->cb = cb;
        s->ctx = ctx;
        s->deadline_ns = evsi_deadline_after_ms(conn->opts.io_timeout_ms);
        wake = async_link_locked(conn, index);
    }
    pthread_mutex_unlock(&conn->lock);
    if (err)
        goto out_free_buf;
    if (wake)
        evsi_reader_wake(conn);
    frame_send(conn, req, buf, index, deadline);
out_free_buf:
    free(buf);
    return err;
}
