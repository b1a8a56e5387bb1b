/* wire.c -- a small wire-level evstore client for the server's tests. */
#define _GNU_SOURCE
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void wire_id(uint8_t id[16], uint64_t a, uint64_t b)
{
    for (int i = 0; i < 8; i++) {
        id[i] = (uint8_t)(a >> (8 * i));
        id[8 + i] = (uint8_t)(b >> (8 * i));
    }
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - (int64_t)util_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int wire_connect(wire_t *w, uint16_t port, int timeout_ms)
{
    memset(w, 0, sizeof *w);
    w->next_corr = 1;
    w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (w->fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = 0;
    if (connect(w->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        rc = errno == EINPROGRESS ? wait_fd(w->fd, POLLOUT, (int64_t)util_mono_ms() + timeout_ms) : -errno;
        int err = 0;
        socklen_t len = sizeof err;
        if (rc == 0 && getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
            rc = -err;
    }
    if (rc) {
        close(w->fd);
        w->fd = -1;
        return rc;
    }
    int one = 1;
    setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

void wire_close(wire_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    free(w->in);
    w->in = NULL;
    w->in_len = w->in_cap = 0;
}

int wire_send_raw(wire_t *w, const void *bytes, size_t n, int timeout_ms)
{
    const uint8_t *p = bytes;
    int64_t deadline = (int64_t)util_mono_ms() + timeout_ms;
    while (n > 0) {
        ssize_t k = send(w->fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EAGAIN)
            return errno == ECONNRESET ? -EPIPE : -errno;
        int rc = wait_fd(w->fd, POLLOUT, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

int wire_send(wire_t *w, const envelope_t *env)
{
    size_t n = frame_size(env);
    uint8_t *buf = malloc(n);
    if (!buf)
        return -ENOMEM;
    frame_encode(env, buf);
    int rc = wire_send_raw(w, buf, n, WIRE_TIMEOUT_MS);
    free(buf);
    return rc;
}

/* Reads what the socket has into the input buffer; -EPIPE on end of stream. */
static int fill(wire_t *w, int64_t deadline)
{
    if (w->in_cap - w->in_len < 64 * 1024) {
        size_t cap = w->in_cap ? w->in_cap * 2 : 128 * 1024;
        uint8_t *fresh = realloc(w->in, cap);
        if (!fresh)
            return -ENOMEM;
        w->in = fresh;
        w->in_cap = cap;
    }
    for (;;) {
        ssize_t k = recv(w->fd, w->in + w->in_len, w->in_cap - w->in_len, 0);
        if (k > 0) {
            w->in_len += (size_t)k;
            return 0;
        }
        if (k == 0)
            return -EPIPE;
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET)
            return -EPIPE;
        if (errno != EAGAIN)
            return -errno;
        int rc = wait_fd(w->fd, POLLIN, deadline);
        if (rc)
            return rc;
    }
}

int wire_recv(wire_t *w, int timeout_ms, envelope_t **out)
{
    int64_t deadline = (int64_t)util_mono_ms() + timeout_ms;
    *out = NULL;
    for (;;) {
        uint32_t body = 0;
        frame_status_t st = frame_peek(w->in, w->in_len, WIRE_FRAME_BYTES_MAX, &body);
        if (st == FRAME_TOO_LARGE)
            return -EBADMSG;
        if (st == FRAME_READY) {
            envelope_t *env = frame_decode(w->in + FRAME_HEADER_BYTES, body);
            size_t used = FRAME_HEADER_BYTES + body;
            memmove(w->in, w->in + used, w->in_len - used);
            w->in_len -= used;
            if (!env)
                return -EBADMSG;
            *out = env;
            return 0;
        }
        int rc = fill(w, deadline);
        if (rc)
            return rc;
    }
}

int wire_wait_closed(wire_t *w, int timeout_ms, int *frames, int *first_error)
{
    int64_t deadline = (int64_t)util_mono_ms() + timeout_ms;
    int seen = 0, err = 0, rc;
    for (;;) {
        envelope_t *env = NULL;
        int64_t left = deadline - (int64_t)util_mono_ms();
        rc = left > 0 ? wire_recv(w, (int)left, &env) : -ETIMEDOUT;
        if (rc == -EBADMSG) {
            /* Not ours to judge here: drop the bytes and keep waiting. */
            w->in_len = 0;
            continue;
        }
        if (rc)
            break;
        seen++;
        if (!err && env->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR)
            err = env->error->code;
        frame_free(env);
    }
    if (frames)
        *frames = seen;
    if (first_error)
        *first_error = err;
    return rc == -EPIPE ? 0 : rc;
}

/* ---- requests ---- */

static int send_body(wire_t *w, uint64_t corr, Evstore__V1__Envelope__BodyCase kind, void *body)
{
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = corr;
    env.body_case = kind;
    env.hello = body; /* every member of the oneof shares one slot */
    return wire_send(w, &env);
}

int wire_send_hello(wire_t *w, uint64_t corr, uint32_t version, const char *client_name)
{
    Evstore__V1__Hello h = EVSTORE__V1__HELLO__INIT;
    h.protocol_version = version;
    h.client_name = (char *)(client_name ? client_name : "");
    return send_body(w, corr, EVSTORE__V1__ENVELOPE__BODY_HELLO, &h);
}

/* The protobuf-c structures of an append, pointing into the caller's data. */
typedef struct {
    Evstore__V1__AppendRequest req;
    Evstore__V1__StreamAppend *sa;
    Evstore__V1__StreamAppend **sap;
    Evstore__V1__EventData *ev;
    Evstore__V1__EventData **evp;
} append_msg_t;

static void append_msg_free(append_msg_t *m)
{
    free(m->sa);
    free(m->sap);
    free(m->ev);
    free(m->evp);
}

static int append_msg_build(append_msg_t *m, const wire_stream_t *streams, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += streams[i].event_count;
    memset(m, 0, sizeof *m);
    evstore__v1__append_request__init(&m->req);
    m->sa = calloc(n ? n : 1, sizeof *m->sa);
    m->sap = calloc(n ? n : 1, sizeof *m->sap);
    m->ev = calloc(total ? total : 1, sizeof *m->ev);
    m->evp = calloc(total ? total : 1, sizeof *m->evp);
    if (!m->sa || !m->sap || !m->ev || !m->evp) {
        append_msg_free(m);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        Evstore__V1__StreamAppend *sa = &m->sa[i];
        evstore__v1__stream_append__init(sa);
        sa->stream = (char *)streams[i].stream;
        sa->expected_version = streams[i].expected_version;
        sa->events = &m->evp[k];
        sa->n_events = streams[i].event_count;
        for (size_t j = 0; j < streams[i].event_count; j++, k++) {
            const wire_event_t *e = &streams[i].events[j];
            Evstore__V1__EventData *d = &m->ev[k];
            evstore__v1__event_data__init(d);
            d->id.data = (uint8_t *)(e->raw_id ? e->raw_id : e->id);
            d->id.len = e->raw_id ? e->raw_id_len : 16;
            d->type = (char *)(e->type ? e->type : "");
            d->data.data = (uint8_t *)e->data;
            d->data.len = e->data_len;
            d->metadata.data = (uint8_t *)e->metadata;
            d->metadata.len = e->metadata_len;
            d->timestamp_ns = e->timestamp_ns;
            m->evp[k] = d;
        }
        m->sap[i] = sa;
    }
    m->req.streams = m->sap;
    m->req.n_streams = n;
    return 0;
}

int wire_send_append(wire_t *w, uint64_t corr, const wire_stream_t *streams, size_t n)
{
    append_msg_t m;
    int rc = append_msg_build(&m, streams, n);
    if (rc)
        return rc;
    rc = send_body(w, corr, EVSTORE__V1__ENVELOPE__BODY_APPEND, &m.req);
    append_msg_free(&m);
    return rc;
}

uint8_t *wire_encode_append(uint64_t corr, const wire_stream_t *streams, size_t n, size_t *len)
{
    append_msg_t m;
    if (append_msg_build(&m, streams, n))
        return NULL;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = corr;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_APPEND;
    env.append = &m.req;
    uint8_t *buf = malloc(frame_size(&env));
    if (buf)
        *len = frame_encode(&env, buf);
    append_msg_free(&m);
    return buf;
}

int wire_send_read(wire_t *w, uint64_t corr, const wire_read_t *r)
{
    Evstore__V1__ReadRequest q = EVSTORE__V1__READ_REQUEST__INIT;
    Evstore__V1__EventFilter f = EVSTORE__V1__EVENT_FILTER__INIT;
    q.stream = (char *)r->stream;
    q.from = r->from;
    q.from_end = r->from_end;
    q.backwards = r->backwards;
    q.max_count = r->max_count;
    if (r->types || r->type_prefix) {
        size_t n = 0;
        while (r->types && r->types[n])
            n++;
        f.types = (char **)r->types;
        f.n_types = n;
        f.type_prefix = (char *)(r->type_prefix ? r->type_prefix : "");
        q.filter = &f;
    }
    return send_body(w, corr, EVSTORE__V1__ENVELOPE__BODY_READ, &q);
}

int wire_send_stream_info(wire_t *w, uint64_t corr, const char *stream)
{
    Evstore__V1__StreamInfoRequest q = EVSTORE__V1__STREAM_INFO_REQUEST__INIT;
    q.stream = (char *)stream;
    return send_body(w, corr, EVSTORE__V1__ENVELOPE__BODY_STREAM_INFO, &q);
}

int wire_send_list_streams(wire_t *w, uint64_t corr, const char *prefix, const char *after,
                           uint32_t max_count)
{
    Evstore__V1__ListStreamsRequest q = EVSTORE__V1__LIST_STREAMS_REQUEST__INIT;
    q.prefix = (char *)(prefix ? prefix : "");
    q.after = (char *)(after ? after : "");
    q.max_count = max_count;
    return send_body(w, corr, EVSTORE__V1__ENVELOPE__BODY_LIST_STREAMS, &q);
}

int wire_send_stats(wire_t *w, uint64_t corr)
{
    Evstore__V1__ServerStatsRequest q = EVSTORE__V1__SERVER_STATS_REQUEST__INIT;
    return send_body(w, corr, EVSTORE__V1__ENVELOPE__BODY_SERVER_STATS, &q);
}

int wire_send_ping(wire_t *w, uint64_t corr, uint64_t nonce)
{
    Evstore__V1__Ping q = EVSTORE__V1__PING__INIT;
    q.nonce = nonce;
    return send_body(w, corr, EVSTORE__V1__ENVELOPE__BODY_PING, &q);
}

/* ---- blocking calls ---- */

/* Receives the answer to corr; NULL on any failure or a foreign id. */
static envelope_t *answer(wire_t *w, int sent, uint64_t corr)
{
    envelope_t *env = NULL;
    if (sent != 0 || wire_recv(w, WIRE_TIMEOUT_MS, &env) != 0)
        return NULL;
    if (env->correlation_id != corr) {
        frame_free(env);
        return NULL;
    }
    return env;
}

envelope_t *wire_hello(wire_t *w, const char *client_name)
{
    uint64_t corr = w->next_corr++;
    return answer(w, wire_send_hello(w, corr, PROTOCOL_VERSION, client_name), corr);
}

envelope_t *wire_append(wire_t *w, const wire_stream_t *streams, size_t n)
{
    uint64_t corr = w->next_corr++;
    return answer(w, wire_send_append(w, corr, streams, n), corr);
}

envelope_t *wire_read(wire_t *w, const wire_read_t *r)
{
    uint64_t corr = w->next_corr++;
    return answer(w, wire_send_read(w, corr, r), corr);
}

envelope_t *wire_stream_info(wire_t *w, const char *stream)
{
    uint64_t corr = w->next_corr++;
    return answer(w, wire_send_stream_info(w, corr, stream), corr);
}

envelope_t *wire_list_streams(wire_t *w, const char *prefix, const char *after,
                              uint32_t max_count)
{
    uint64_t corr = w->next_corr++;
    return answer(w, wire_send_list_streams(w, corr, prefix, after, max_count), corr);
}

envelope_t *wire_stats(wire_t *w)
{
    uint64_t corr = w->next_corr++;
    return answer(w, wire_send_stats(w, corr), corr);
}

envelope_t *wire_ping(wire_t *w, uint64_t nonce)
{
    uint64_t corr = w->next_corr++;
    return answer(w, wire_send_ping(w, corr, nonce), corr);
}

int wire_open(wire_t *w, uint16_t port)
{
    int rc = wire_connect(w, port, WIRE_TIMEOUT_MS);
    if (rc)
        return rc;
    envelope_t *env = wire_hello(w, "evstore-tests");
    rc = env && env->body_case == EVSTORE__V1__ENVELOPE__BODY_HELLO_OK ? 0 : -EPROTO;
    frame_free(env);
    if (rc)
        wire_close(w);
    return rc;
}

envelope_t *wire_append_one(wire_t *w, const char *stream, int64_t ev, uint64_t id_seed,
                            const char *type, const char *data)
{
    wire_event_t e = {.type = type, .data = data, .data_len = data ? strlen(data) : 0};
    wire_id(e.id, id_seed, 0x5eed);
    wire_stream_t s = {.stream = stream, .expected_version = ev, .events = &e, .event_count = 1};
    return wire_append(w, &s, 1);
}
