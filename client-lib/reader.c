/* reader.c -- the reader thread of a connection: receives frames, hands each
 * answer to its slot by correlation id, runs async callbacks, expires async
 * requests past their deadline, and when the connection ends fails every
 * request still in flight. */
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
static void callback_run_locked(evs_conn_t *conn, evs_append_cb cb, void *ctx, int status,
                                const envelope_t *env, const char *msg)
{
    conn->busy++;
    pthread_mutex_unlock(&conn->lock);
    evs_append_result_t res;
    memset(&res, 0, sizeof res);
    if (env)
        status = append_result_from(env, &res);
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
    uint64_t now = clock_now_ns();
    while (conn->async_head != SLOT_NONE && conn->slots[conn->async_head].deadline_ns <= now) {
        uint32_t i = conn->async_head;
        slot_t *s = &conn->slots[i];
        async_unlink_locked(conn, i);
        s->state = SLOT_ABANDONED;
        callback_run_locked(conn, s->cb, s->ctx, EVS_ETIMEDOUT, NULL, msg);
        now = clock_now_ns();
    }
    int ms = conn->async_head == SLOT_NONE ? -1
                                           : ms_until(conn->slots[conn->async_head].deadline_ns);
    pthread_mutex_unlock(&conn->lock);
    return ms;
}

/* A frame whose correlation id matches no request: an Error about the
 * connection itself (the server could not tell which request), or a
 * protocol violation. Returns the error that closes the connection. */
static int dispatch_unmatched(evs_conn_t *conn, envelope_t *env)
{
    char msg[EVS_MESSAGE_BYTES_MAX];
    int err = EVS_EPROTOCOL;
    if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        err = error_from_wire(env->error->code);
        snprintf(msg, sizeof msg, "server: %s", env->error->message);
    } else {
        snprintf(msg, sizeof msg, "answer with unknown correlation id %llu",
                 (unsigned long long)env->correlation_id);
    }
    frame_free(env);
    conn_fail(conn, err, msg);
    return err;
}

/* Hands one decoded answer to its request. Takes ownership of env. */
static int dispatch(evs_conn_t *conn, envelope_t *env)
{
    uint32_t index = (uint32_t)env->correlation_id;
    uint32_t gen = (uint32_t)(env->correlation_id >> 32);
    pthread_mutex_lock(&conn->lock);
    slot_t *s = index < conn->opts.inflight_max ? &conn->slots[index] : NULL;
    if (!s || s->gen != gen || s->state == SLOT_FREE) {
        pthread_mutex_unlock(&conn->lock);
        return dispatch_unmatched(conn, env);
    }
    if (s->state == SLOT_SYNC) {
        s->resp = env;
        s->done = true;
        pthread_cond_signal(&s->cond);
        env = NULL;
    } else if (s->state == SLOT_ASYNC) {
        evs_append_cb cb = s->cb;
        void *ctx = s->ctx;
        async_unlink_locked(conn, index);
        slot_release_locked(conn, index);
        callback_run_locked(conn, cb, ctx, 0, env, NULL);
    } else {
        slot_release_locked(conn, index); /* abandoned: its caller gave up */
    }
    pthread_mutex_unlock(&conn->lock);
    frame_free(env);
    return 0;
}

/* Dispatches every whole frame in the buffer. Returns 0, or the error that
 * closes the connection. *need gets the bytes the next frame still lacks. */
static int dispatch_frames(evs_conn_t *conn, rbuf_t *rb, size_t *need)
{
    *need = 1;
    for (;;) {
        uint32_t body = 0;
        size_t avail = rb->len - rb->start;
        frame_status_t st =
            frame_peek(rb->data + rb->start, avail, conn->opts.recv_frame_bytes_max, &body);
        if (st == FRAME_TOO_LARGE) {
            conn_fail(conn, EVS_EPROTOCOL, "server sent a frame over recv_frame_bytes_max");
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
            conn_fail(conn, EVS_EPROTOCOL, "server sent a frame that is not an Envelope");
            return EVS_EPROTOCOL;
        }
        int err = dispatch(conn, env);
        if (err)
            return err;
    }
}

/* Reads what the socket has and dispatches the whole frames. */
static int receive(evs_conn_t *conn, rbuf_t *rb, size_t *need)
{
    size_t want = *need > CLIENT_RECV_CHUNK_BYTES ? *need : CLIENT_RECV_CHUNK_BYTES;
    if (rbuf_reserve(rb, want)) {
        conn_fail(conn, -ENOMEM, "out of memory for a response");
        return -ENOMEM;
    }
    ssize_t n = recv(conn->fd, rb->data + rb->len, rb->cap - rb->len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        char msg[EVS_MESSAGE_BYTES_MAX];
        snprintf(msg, sizeof msg, "connection closed by the server%s%s", n < 0 ? ": " : "",
                 n < 0 ? strerror(errno) : "");
        conn_fail(conn, EVS_ECLOSED, msg);
        return EVS_ECLOSED;
    }
    rb->len += (size_t)n;
    return dispatch_frames(conn, rb, need);
}

/* True once the connection has failed or is closing. */
static bool conn_ended(evs_conn_t *conn)
{
    pthread_mutex_lock(&conn->lock);
    bool ended = conn->err != 0;
    pthread_mutex_unlock(&conn->lock);
    return ended;
}

/* Fails every request in flight with the connection's error: wakes blocking
 * callers, runs async callbacks, frees abandoned slots. */
static void fail_all(evs_conn_t *conn)
{
    pthread_mutex_lock(&conn->lock);
    for (uint32_t i = 0; i < conn->opts.inflight_max; i++) {
        slot_t *s = &conn->slots[i];
        if (s->state == SLOT_SYNC && !s->done) {
            s->err = conn->err;
            s->done = true;
            pthread_cond_signal(&s->cond);
        } else if (s->state == SLOT_ABANDONED) {
            slot_release_locked(conn, i);
        }
    }
    while (conn->async_head != SLOT_NONE) {
        uint32_t i = conn->async_head;
        evs_append_cb cb = conn->slots[i].cb;
        void *ctx = conn->slots[i].ctx;
        async_unlink_locked(conn, i);
        slot_release_locked(conn, i);
        callback_run_locked(conn, cb, ctx, conn->err, NULL, conn->err_msg);
    }
    pthread_cond_broadcast(&conn->slot_free_cond);
    pthread_cond_broadcast(&conn->idle_cond);
    pthread_mutex_unlock(&conn->lock);
}

void *reader_main(void *arg)
{
    evs_conn_t *conn = arg;
    rbuf_t rb = { 0 };
    size_t need = 1;
    while (!conn_ended(conn)) {
        int timeout_ms = async_expire(conn);
        struct pollfd p[2] = { { .fd = conn->fd, .events = POLLIN },
                               { .fd = conn->wake_fd, .events = POLLIN } };
        if (poll(p, 2, timeout_ms) < 0) {
            if (errno == EINTR)
                continue;
            conn_fail(conn, -errno, "poll failed");
            break;
        }
        if (p[1].revents & POLLIN) {
            uint64_t count;
            ssize_t n = read(conn->wake_fd, &count, sizeof count);
            (void)n;
        }
        if (p[0].revents && receive(conn, &rb, &need))
            break;
    }
    shutdown(conn->fd, SHUT_RDWR); /* a sender stuck on a full socket wakes */
    fail_all(conn);
    free(rb.data);
    return NULL;
}
