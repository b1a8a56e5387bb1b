/* conn.c -- one client connection: receiving frames, queueing answers,
 * sending them, and closing. Every socket operation goes through the
 * server's io_uring; at most one receive and one send are in flight. */
#include "server_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


conn_t *conn_new(server_t *s, int fd)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->in = malloc(SERVER_IN_BYTES_INITIAL);
    if (!c->in) {
        free(c);
        return NULL;
    }
    c->in_cap = SERVER_IN_BYTES_INITIAL;
    c->srv = s;
    c->fd = fd;
    c->id = ++s->next_conn_id;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    atomic_fetch_add_explicit(&s->metrics.connections_total, 1, memory_order_relaxed);
    return c;
}

size_t conn_queued_bytes(const conn_t *c)
{
    return c->out_len + (c->sending_len - c->sending_done);
}

void conn_free(conn_t *c)
{
    server_t *s = c->srv;
    subs_conn_gone(c);
    groups_conn_gone(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->conn_count--;
    free(c->in);
    free(c->out);
    free(c->sending);
    free(c);
}

/* Marks c broken: its output is dropped and its socket shut down, which ends
 * any receive in flight. */
static void conn_kill(conn_t *c)
{
    if (c->dead)
        return;
    c->dead = true;
    c->read_closed = true;
    c->out_len = 0;
    shutdown(c->fd, SHUT_RDWR);
}

void conn_stop_reading(conn_t *c)
{
    if (!c->read_closed) {
        c->read_closed = true;
        shutdown(c->fd, SHUT_RD);
    }
}

static int out_reserve(conn_t *c, size_t need)
{
    if (c->out_len + need <= c->out_cap)
        return 0;
    size_t cap = c->out_cap ? c->out_cap : SERVER_OUT_BYTES_INITIAL;
    while (cap < c->out_len + need)
        cap *= 2;
    uint8_t *fresh = realloc(c->out, cap);
    if (!fresh)
        return -ENOMEM;
    c->out = fresh;
    c->out_cap = cap;
    return 0;
}

void conn_send(conn_t *c, const envelope_t *env)
{
    if (c->dead)
        return;
    size_t n = frame_size(env);
    size_t queued = conn_queued_bytes(c);
    if (n - FRAME_HEADER_BYTES > c->srv->cfg.frame_bytes_max &&
        env->body_case != EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        /* An answer over the frame limit (a huge group list, say) is refused
         * as such; the connection goes on. */
        conn_send_error(c, env->correlation_id, EVSTORE__V1__ERROR_CODE__TOO_LARGE,
                        "the answer would be larger than the server's frame_bytes_max", 0, 0);
        return;
    }
    if (queued + n > c->srv->cfg.output_bytes_max) {
        server_log(c->srv, "conn %llu (%s): %zu bytes of answers queued, over the limit: "
                   "disconnected", (unsigned long long)c->id, c->peer, queued + n);
        conn_kill(c);
        return;
    }
    if (out_reserve(c, n) != 0) {
        conn_kill(c);
        return;
    }
    c->out_len += frame_encode(env, c->out + c->out_len);
}

void conn_send_error(conn_t *c, uint64_t corr, int code, const char *msg, uint32_t stream_index,
                     int64_t actual_version)
{
    Evstore__V1__Error err = EVSTORE__V1__ERROR__INIT;
    err.code = (Evstore__V1__ErrorCode)code;
    err.message = (char *)msg;
    err.stream_index = stream_index;
    err.actual_version = actual_version;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = corr;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_ERROR;
    env.error = &err;
    metrics_count_error(c->srv, code);
    conn_send(c, &env);
    if (code == EVSTORE__V1__ERROR_CODE__FRAME_TOO_LARGE ||
        code == EVSTORE__V1__ERROR_CODE__PROTOCOL_VERSION ||
        code == EVSTORE__V1__ERROR_CODE__NOT_READY) {
        c->close_after_flush = true;
        conn_stop_reading(c);
    }
}

/* True when c's queued answers are over half its limit: no more requests
 * are taken from it until sends drain (a client pipelining large reads is
 * served, not dropped). */
static bool conn_backlogged(const conn_t *c)
{
    return conn_queued_bytes(c) > c->srv->cfg.output_bytes_max / 2;
}

/* Handles every whole frame at the start of the input buffer, as far as the
 * connection's answers have room. */
static void conn_process_input(conn_t *c)
{
    size_t off = 0;
    while (!c->dead && !c->close_after_flush && !conn_backlogged(c)) {
        uint32_t body;
        frame_status_t st = frame_peek(c->in + off, c->in_len - off, c->srv->cfg.frame_bytes_max,
                                       &body);
        if (st == FRAME_TOO_LARGE) {
            conn_send_error(c, 0, EVSTORE__V1__ERROR_CODE__FRAME_TOO_LARGE,
                            "frame length is zero or over the server's frame_bytes_max", 0, 0);
            break;
        }
        if (st == FRAME_NEED_MORE) {
            size_t need = c->in_len - off >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + body : 0;
            if (need > c->in_cap) {
                uint8_t *fresh = realloc(c->in, need);
                if (!fresh) {
                    conn_kill(c);
                    return;
                }
                c->in = fresh;
                c->in_cap = need;
            }
            break;
        }
        handle_frame(c, c->in + off + FRAME_HEADER_BYTES, body);
        off += FRAME_HEADER_BYTES + body;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

/* Gives back what a burst grew: an empty buffer over SERVER_BUFFER_KEEP_BYTES
 * is freed (it grows again when needed). */
static void conn_trim(conn_t *c)
{
    if (c->sending_done == c->sending_len && c->sending_cap > SERVER_BUFFER_KEEP_BYTES &&
        !c->send_armed) {
        free(c->sending);
        c->sending = NULL;
        c->sending_cap = c->sending_len = c->sending_done = 0;
    }
    if (c->out_len == 0 && c->out_cap > SERVER_BUFFER_KEEP_BYTES) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
}

void conn_on_recv(conn_t *c, int res)
{
    c->recv_armed = false;
    if (res <= 0) {
        if (res < 0 && res != -ECONNRESET && res != -ECANCELED && !c->dead)
            server_log(c->srv, "conn %llu (%s): receive: %s", (unsigned long long)c->id, c->peer,
                       strerror(-res));
        c->read_closed = true;
    } else if (!c->read_closed) {
        c->in_len += (size_t)res;
        conn_process_input(c);
        if (c->in_len == 0 && c->in_cap > SERVER_BUFFER_KEEP_BYTES) {
            uint8_t *small = realloc(c->in, SERVER_IN_BYTES_INITIAL); /* after a large frame */
            if (small) {
                c->in = small;
                c->in_cap = SERVER_IN_BYTES_INITIAL;
            }
        }
    }
    conn_update(c);
}

void conn_on_send(conn_t *c, int res)
{
    c->send_armed = false;
    if (res < 0) {
        if (res != -EPIPE && res != -ECONNRESET && !c->dead)
            server_log(c->srv, "conn %llu (%s): send: %s", (unsigned long long)c->id, c->peer,
                       strerror(-res));
        conn_kill(c);
    } else {
        c->sending_done += (size_t)res;
        if (c->in_len > 0 && !c->read_closed && !conn_backlogged(c))
            conn_process_input(c); /* requests left waiting while answers backed up */
        conn_trim(c);
    }
    conn_update(c);
}

/* Swaps the queued answers into the send buffer and sends them. */
static void conn_start_send(conn_t *c)
{
    if (c->sending_done == c->sending_len) {
        conn_trim(c);
        if (c->out_len == 0)
            return;
        uint8_t *b = c->sending;
        size_t cap = c->sending_cap;
        c->sending = c->out;
        c->sending_cap = c->out_cap;
        c->sending_len = c->out_len;
        c->sending_done = 0;
        c->out = b;
        c->out_cap = cap;
        c->out_len = 0;
    }
    struct io_uring_sqe *sqe = server_sqe(c->srv);
    io_uring_prep_send(sqe, c->fd, c->sending + c->sending_done, c->sending_len - c->sending_done,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, op_data(c, OP_SEND));
    c->send_armed = true;
}

static bool conn_output_pending(const conn_t *c)
{
    return !c->dead && (c->out_len > 0 || c->sending_done < c->sending_len);
}

void conn_flush(conn_t *c)
{
    if (!c->send_armed && conn_output_pending(c))
        conn_start_send(c);
}

void conn_update(conn_t *c)
{
    conn_flush(c);
    /* A client that does not read its answers stops being read from. */
    if (!c->recv_armed && !c->read_closed && !c->dead && !conn_backlogged(c)) {
        struct io_uring_sqe *sqe = server_sqe(c->srv);
        io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        io_uring_sqe_set_data64(sqe, op_data(c, OP_RECV));
        c->recv_armed = true;
    }
    bool done = c->dead || (c->read_closed && !conn_output_pending(c));
    if (c->close_after_flush && !conn_output_pending(c))
        done = true;
    if (!done || c->refs > 0)
        return;
    if (c->fd >= 0) {
        shutdown(c->fd, SHUT_RDWR); /* ends a receive still in flight */
        if (!c->recv_armed && !c->send_armed) {
            close(c->fd);
            c->fd = -1;
            server_log(c->srv, "conn %llu (%s): closed", (unsigned long long)c->id, c->peer);
        }
    }
    if (c->fd < 0 && !c->recv_armed && !c->send_armed)
        conn_free(c);
}

void conn_release(conn_t *c)
{
    c->refs--;
    conn_update(c);
}

int error_code_of(int log_err)
{
    switch (log_err) {
    case LOG_EWRONG_VERSION: return EVSTORE__V1__ERROR_CODE__WRONG_EXPECTED_VERSION;
    case LOG_EIDEMPOTENCY: return EVSTORE__V1__ERROR_CODE__IDEMPOTENCY_CONFLICT;
    case LOG_EBAD_REQUEST: return EVSTORE__V1__ERROR_CODE__BAD_REQUEST;
    case LOG_ETOO_LARGE: return EVSTORE__V1__ERROR_CODE__TOO_LARGE;
    case LOG_EBUSY: return EVSTORE__V1__ERROR_CODE__BUSY;
    case LOG_ECORRUPT: return EVSTORE__V1__ERROR_CODE__CORRUPT;
    case LOG_ENOT_FOUND: return EVSTORE__V1__ERROR_CODE__STREAM_NOT_FOUND;
    case LOG_ECLOSING: return EVSTORE__V1__ERROR_CODE__NOT_READY;
    case -ENOMEM: return EVSTORE__V1__ERROR_CODE__BUSY;
    default: return EVSTORE__V1__ERROR_CODE__IO_ERROR;
    }
}

void send_body(conn_t *c, uint64_t corr, Evstore__V1__Envelope__BodyCase kind, void *body)
{
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = corr;
    env.body_case = kind;
    /* Every body member of the oneof shares one storage slot. */
    env.hello_ok = body;
    conn_send(c, &env);
}

void send_dropped(conn_t *c, uint64_t corr, const char *reason)
{
    Evstore__V1__SubscriptionDropped d = EVSTORE__V1__SUBSCRIPTION_DROPPED__INIT;
    d.reason = (char *)reason;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_SUB_DROPPED, &d);
}
