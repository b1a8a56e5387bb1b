/* reader.c -- the reader thread of a connection: receives frames, hands each
 * answer to its slot by correlation id, runs async callbacks, expires async
 * requests past their deadline; when the socket fails it takes it down,
 * fails every request sent on it and closes it; when the connection closes
 * it fails every request still in flight. */
#include "client_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Runs one async callback with conn->lock released; busy counts it so that
 * evs_flush() returns only after it. Caller holds conn->lock. */
static void callback_run_locked(evs_conn_t *conn, evs_done_cb cb, void *ctx, int status,
                                const envelope_t *env, const char *msg)
{
    conn->busy++;
    pthread_mutex_unlock(&conn->lock);
    evs_append_result_t res;
    memset(&res, 0, sizeof res);
    if (env)
        status = evsi_append_result_from(env, &res);
    else
        snprintf(res.message, sizeof res.message, "%s", msg);
    cb(ctx, status, &res);
    pthread_mutex_lock(&conn->lock);
    if (--conn->busy == 0)
        pthread_cond_broadcast(&conn->idle_cond);
}

/* Fails async requests whose deadline passed (their slots stay taken until
 * the late answer). Returns the ms until the next deadline, or -1. */
static int async_expire(evs_conn_t *conn)
{
    char msg[EVS_MESSAGE_BYTES_MAX];
    snprintf(msg, sizeof msg, "no answer within %d ms", conn->opts.io_timeout_ms);
    pthread_mutex_lock(&conn->lock);
    uint64_t now = util_mono_ns();
    while (conn->async_head != SLOT_NONE && conn->slots[conn->async_head].deadline_ns <= now) {
        uint32_t i = conn->async_head;
        slot_t *s = &conn->slots[i];
        evsi_async_unlink_locked(conn, i);
        s->state = SLOT_ABANDONED;
        callback_run_locked(conn, s->cb, s->ctx, EVS_ETIMEDOUT, NULL, msg);
        now = util_mono_ns();
    }
    int ms = conn->async_head == SLOT_NONE ? -1
                                           : evsi_ms_until(conn->slots[conn->async_head].deadline_ns);
    pthread_mutex_unlock(&conn->lock);
    return ms;
}

/* A frame whose correlation id matches no request: an Error about the
 * connection itself (the server could not tell which request), or a
 * protocol violation. Returns the error that takes the socket down, with
 * msg set. */
static int dispatch_unmatched(envelope_t *env, char msg[EVS_MESSAGE_BYTES_MAX])
{
    int err = EVS_EPROTOCOL;
    if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        err = evsi_error_from_wire(env->error->code);
        snprintf(msg, EVS_MESSAGE_BYTES_MAX, "server: %s", env->error->message);
    } else {
        snprintf(msg, EVS_MESSAGE_BYTES_MAX, "answer with unknown correlation id %llu",
                 (unsigned long long)env->correlation_id);
    }
    frame_free(env);
    return err;
}

/* Hands one decoded answer to its request. Takes ownership of env. Returns
 * 0, or the error that takes the socket down (msg set). */
static int dispatch(evs_conn_t *conn, envelope_t *env, char msg[EVS_MESSAGE_BYTES_MAX])
{
    uint32_t index = (uint32_t)env->correlation_id;
    uint32_t gen = (uint32_t)(env->correlation_id >> 32);
    pthread_mutex_lock(&conn->lock);
    slot_t *s = index < conn->opts.inflight_max ? &conn->slots[index] : NULL;
    if (!s || s->gen != gen || s->state == SLOT_FREE || s->epoch != conn->epoch) {
        pthread_mutex_unlock(&conn->lock);
        return dispatch_unmatched(env, msg);
    }
    conn->backoff_ms = conn->opts.reconnect_backoff_ms_initial; /* the server answers */
    if (s->state == SLOT_SYNC) {
        s->resp = env;
        s->done = true;
        pthread_cond_signal(&s->cond);
        env = NULL;
    } else if (s->state == SLOT_ASYNC) {
        evs_done_cb cb = s->cb;
        void *ctx = s->ctx;
        evsi_async_unlink_locked(conn, index);
        evsi_slot_release_locked(conn, index);
        callback_run_locked(conn, cb, ctx, 0, env, NULL);
    } else {
        evsi_slot_release_locked(conn, index); /* abandoned: its caller gave up */
    }
    pthread_mutex_unlock(&conn->lock);
    frame_free(env);
    return 0;
}

/* Dispatches every whole frame in the buffer. Returns 0, or the error that
 * takes the socket down (msg set). *need gets the bytes the next frame
 * still lacks. */
static int dispatch_frames(evs_conn_t *conn, rbuf_t *rb, size_t *need,
                           char msg[EVS_MESSAGE_BYTES_MAX])
{
    *need = 1;
    for (;;) {
        uint32_t body = 0;
        size_t avail = rb->len - rb->start;
        frame_status_t st =
            frame_peek(rb->data + rb->start, avail, conn->opts.recv_frame_bytes_max, &body);
        if (st == FRAME_TOO_LARGE) {
            snprintf(msg, EVS_MESSAGE_BYTES_MAX, "server sent a frame over recv_frame_bytes_max");
            return EVS_EPROTOCOL;
        }
        if (st == FRAME_NEED_MORE) {
            if (avail >= FRAME_HEADER_BYTES)
                *need = FRAME_HEADER_BYTES + body - avail;
            return 0;
        }
        envelope_t *env = frame_decode(rb->data + rb->start + FRAME_HEADER_BYTES, body);
        rb->start += FRAME_HEADER_BYTES + body;
        if (!env) {
            snprintf(msg, EVS_MESSAGE_BYTES_MAX, "server sent a frame that is not an Envelope");
            return EVS_EPROTOCOL;
        }
        int err = dispatch(conn, env, msg);
        if (err)
            return err;
    }
}

/* Reads what socket fd has and dispatches the whole frames. Returns 0, or
 * the error that takes the socket down (msg set). */
static int receive(evs_conn_t *conn, int fd, rbuf_t *rb, size_t *need,
                   char msg[EVS_MESSAGE_BYTES_MAX])
{
    size_t want = *need > CLIENT_RECV_CHUNK_BYTES ? *need : CLIENT_RECV_CHUNK_BYTES;
    if (evsi_rbuf_reserve(rb, want)) {
        snprintf(msg, EVS_MESSAGE_BYTES_MAX, "out of memory for a response");
        return -ENOMEM;
    }
    ssize_t n = recv(fd, rb->data + rb->len, rb->cap - rb->len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        snprintf(msg, EVS_MESSAGE_BYTES_MAX, "connection to %s:%u closed%s%s", conn->host,
                 (unsigned)conn->opts.port, n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
        return EVS_ECLOSED;
    }
    rb->len += (size_t)n;
    return dispatch_frames(conn, rb, need, msg);
}

/* Fails the requests of epoch (all of them when epoch is 0) with err:
 * wakes blocking callers, runs async callbacks, frees abandoned slots.
 * Caller holds conn->lock. */
static void fail_epoch_locked(evs_conn_t *conn, uint64_t epoch, int err, const char *msg)
{
    for (uint32_t i = 0; i < conn->opts.inflight_max; i++) {
        slot_t *s = &conn->slots[i];
        if (epoch && s->epoch != epoch)
            continue;
        if (s->state == SLOT_SYNC && !s->done) {
            s->err = err;
            s->done = true;
            pthread_cond_signal(&s->cond);
        } else if (s->state == SLOT_ABANDONED) {
            evsi_slot_release_locked(conn, i);
        }
    }
    while (conn->async_head != SLOT_NONE &&
           (!epoch || conn->slots[conn->async_head].epoch == epoch)) {
        uint32_t i = conn->async_head;
        evs_done_cb cb = conn->slots[i].cb;
        void *ctx = conn->slots[i].ctx;
        evsi_async_unlink_locked(conn, i);
        evsi_slot_release_locked(conn, i);
        callback_run_locked(conn, cb, ctx, err, NULL, msg);
    }
    pthread_cond_broadcast(&conn->slot_free_cond);
    pthread_cond_broadcast(&conn->idle_cond);
}

/* Takes the socket down after a failure: no sender holds it once fd is -1
 * (both locks), its requests fail with err, the next attempt to reconnect
 * is scheduled after the backoff, and the socket is closed. */
static void socket_lost(evs_conn_t *conn, int err, const char *msg)
{
    pthread_mutex_lock(&conn->lock);
    int fd = conn->fd;
    pthread_mutex_unlock(&conn->lock);
    shutdown(fd, SHUT_RDWR); /* a sender stuck on a full socket wakes */
    pthread_mutex_lock(&conn->send_lock);
    pthread_mutex_lock(&conn->lock);
    conn->fd = -1;
    conn->err = err;
    snprintf(conn->err_msg, sizeof conn->err_msg, "%s", msg);
    evsi_backoff_step(&conn->retry_at_ns, &conn->backoff_ms, conn->opts.reconnect_backoff_ms_max);
    pthread_mutex_unlock(&conn->send_lock);
    fail_epoch_locked(conn, conn->epoch, err, conn->err_msg);
    pthread_cond_broadcast(&conn->link_cond);
    pthread_mutex_unlock(&conn->lock);
    close(fd);
}

/* Waits for the socket (fd, -1 while down) or a wake-up, expiring async
 * requests meanwhile. Returns true when fd has something to read. */
static bool reader_wait(evs_conn_t *conn, int fd)
{
    int timeout_ms = async_expire(conn);
    struct pollfd p[2] = { { .fd = conn->wake_fd, .events = POLLIN },
                           { .fd = fd, .events = POLLIN } };
    if (poll(p, fd >= 0 ? 2 : 1, timeout_ms) < 0)
        return false; /* EINTR; nothing else can fail on two valid fds */
    if (p[0].revents & POLLIN) {
        uint64_t count;
        ssize_t n = read(conn->wake_fd, &count, sizeof count);
        (void)n;
    }
    return fd >= 0 && p[1].revents;
}

void *evsi_reader_main(void *arg)
{
    evs_conn_t *conn = arg;
    rbuf_t rb = { 0 };
    size_t need = 1;
    uint64_t epoch_seen = 0;
    for (;;) {
        pthread_mutex_lock(&conn->lock);
        bool closing = conn->closing;
        int fd = conn->fd;
        uint64_t epoch = conn->epoch;
        pthread_mutex_unlock(&conn->lock);
        if (closing)
            break;
        if (epoch != epoch_seen) { /* a new socket: nothing of the old one is kept */
            rb.start = rb.len = 0;
            need = 1;
            epoch_seen = epoch;
        }
        char msg[EVS_MESSAGE_BYTES_MAX];
        if (!reader_wait(conn, fd))
            continue;
        int err = receive(conn, fd, &rb, &need, msg);
        if (err)
            socket_lost(conn, err, msg);
    }
    pthread_mutex_lock(&conn->lock);
    int fd = conn->fd;
    conn->fd = -1;
    conn->err = EVS_ECLOSED;
    snprintf(conn->err_msg, sizeof conn->err_msg, "connection closed by evs_close()");
    fail_epoch_locked(conn, 0, EVS_ECLOSED, conn->err_msg);
    pthread_mutex_unlock(&conn->lock);
    if (fd >= 0)
        close(fd);
    free(rb.data);
    return NULL;
}
