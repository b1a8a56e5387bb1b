/* link.c -- a connection without a reader thread, for subscriptions and
 * group consumers: connect and handshake, whole-frame sends from any thread,
 * frames received on the caller's thread, and the reconnection backoff. */
#include "client_int.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int evsi_link_init(link_t *l, const evs_options_t *opts)
{
    evs_options_t defaults;
    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (!opts) {
        evs_options_default(&defaults);
        opts = &defaults;
    }
    int err = evsi_options_check(opts);
    if (err)
        return err;
    l->opts = *opts;
    l->host = strdup(opts->host);
    l->client_name = strdup(opts->client_name);
    if (!l->host || !l->client_name) {
        free(l->host);
        free(l->client_name);
        return -ENOMEM;
    }
    l->opts.host = l->host;
    l->opts.client_name = l->client_name;
    l->next_corr = 2;
    l->backoff_ms = opts->reconnect_backoff_ms_initial;
    pthread_mutex_init(&l->send_lock, NULL);
    return 0;
}

/* Closes the socket, under send_lock so that no sender holds it. */
static void link_close_fd(link_t *l)
{
    pthread_mutex_lock(&l->send_lock);
    int fd = l->fd;
    l->fd = -1;
    pthread_mutex_unlock(&l->send_lock);
    if (fd >= 0)
        close(fd);
}

void evsi_link_destroy(link_t *l)
{
    link_close_fd(l);
    evsi_rbuf_free(&l->rb);
    pthread_mutex_destroy(&l->send_lock);
    free(l->host);
    free(l->client_name);
}

int evsi_link_open(link_t *l)
{
    assert(l->fd < 0);
    evs_server_info_t info;
    int fd = evsi_socket_open(&l->opts, &info);
    if (fd < 0)
        return fd;
    l->rb.start = l->rb.len = 0;
    pthread_mutex_lock(&l->send_lock);
    l->fd = fd;
    l->info = info;
    pthread_mutex_unlock(&l->send_lock);
    return 0;
}

void evsi_link_down(link_t *l)
{
    link_close_fd(l);
    l->rb.start = l->rb.len = 0;
    evsi_backoff_step(&l->retry_at_ns, &l->backoff_ms, l->opts.reconnect_backoff_ms_max);
}

void evsi_link_backoff_reset(link_t *l)
{
    l->backoff_ms = l->opts.reconnect_backoff_ms_initial;
}

int evsi_link_wait_retry(const link_t *l, uint64_t deadline_ns)
{
    uint64_t until = l->retry_at_ns < deadline_ns ? l->retry_at_ns : deadline_ns;
    for (uint64_t now = util_mono_ns(); now < until; now = util_mono_ns())
        util_sleep_ms((long)((until - now + 999999u) / 1000000u));
    if (util_mono_ns() < l->retry_at_ns) {
        evsi_errmsg_set("reconnecting to %s:%u", l->host, (unsigned)l->opts.port);
        return EVS_ETIMEDOUT;
    }
    return 0;
}

int evsi_link_send(link_t *l, envelope_t *env, uint64_t deadline_ns, uint64_t *corr)
{
    return evsi_link_send_as(l, env, 0, deadline_ns, corr);
}

int evsi_link_send_as(link_t *l, envelope_t *env, uint64_t corr_given, uint64_t deadline_ns,
                 uint64_t *corr)
{
    env->correlation_id = UINT64_MAX; /* the largest encoding, for the size */
    size_t size = frame_size(env);
    uint8_t *buf = malloc(size);
    if (!buf)
        return -ENOMEM;
    int err = 0;
    pthread_mutex_lock(&l->send_lock);
    if (l->fd < 0) {
        evsi_errmsg_set("not connected (reconnecting)");
        err = EVS_ECLOSED;
    } else if (size - FRAME_HEADER_BYTES > l->info.frame_bytes_max) {
        evsi_errmsg_set("request of %zu bytes is over the server's frame limit of %u bytes", size,
                   l->info.frame_bytes_max);
        err = EVS_ETOO_LARGE;
    } else {
        env->correlation_id = corr_given ? corr_given : l->next_corr++;
        if (corr)
            *corr = env->correlation_id;
        size_t len = frame_encode(env, buf);
        err = evsi_sock_send_all(l->fd, buf, len, deadline_ns);
        if (err) {
            evsi_errmsg_set("sending to %s:%u: %s", l->host, (unsigned)l->opts.port,
                       evs_strerror(err));
            shutdown(l->fd, SHUT_RDWR); /* part of a frame may be out: the receiver resets */
        }
    }
    pthread_mutex_unlock(&l->send_lock);
    free(buf);
    return err;
}

/* Decodes the whole frame at the start of the buffer, if there is one.
 * Returns 1 with *out, 0 when more bytes are needed (*need: how many at
 * least), or EVS_EPROTOCOL. */
static int frame_take(link_t *l, envelope_t **out, size_t *need)
{
    rbuf_t *rb = &l->rb;
    size_t avail = rb->len - rb->start;
    uint32_t body = 0;
    frame_status_t st =
        frame_peek(rb->data + rb->start, avail, l->opts.recv_frame_bytes_max, &body);
    if (st == FRAME_TOO_LARGE) {
        evsi_errmsg_set("server sent a frame over recv_frame_bytes_max");
        return EVS_EPROTOCOL;
    }
    if (st == FRAME_NEED_MORE) {
        *need = avail >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + body - avail : 1;
        return 0;
    }
    *out = frame_decode(rb->data + rb->start + FRAME_HEADER_BYTES, body);
    rb->start += FRAME_HEADER_BYTES + body;
    if (!*out) {
        evsi_errmsg_set("server sent a frame that is not an Envelope");
        return EVS_EPROTOCOL;
    }
    return 1;
}

/* Receives what the socket has, waiting until the deadline for something. */
static int receive_some(link_t *l, size_t need, uint64_t deadline_ns)
{
    size_t want = need > CLIENT_RECV_CHUNK_BYTES ? need : CLIENT_RECV_CHUNK_BYTES;
    if (evsi_rbuf_reserve(&l->rb, want))
        return -ENOMEM;
    for (;;) {
        ssize_t n = recv(l->fd, l->rb.data + l->rb.len, l->rb.cap - l->rb.len, MSG_DONTWAIT);
        if (n > 0) {
            l->rb.len += (size_t)n;
            return 0;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            evsi_errmsg_set("connection to %s:%u closed%s%s", l->host, (unsigned)l->opts.port,
                       n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            return EVS_ECLOSED;
        }
        if (errno == EINTR)
            continue;
        struct pollfd p = { .fd = l->fd, .events = POLLIN };
        int r = poll(&p, 1, evsi_ms_until(deadline_ns));
        if (r == 0) {
            evsi_errmsg_set("nothing received in time");
            return EVS_ETIMEDOUT;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

int evsi_link_recv(link_t *l, uint64_t deadline_ns, envelope_t **out)
{
    assert(l->fd >= 0);
    for (;;) {
        size_t need = 1;
        int rc = frame_take(l, out, &need);
        if (rc != 0)
            return rc > 0 ? 0 : rc;
        rc = receive_some(l, need, deadline_ns);
        if (rc)
            return rc;
    }
}

int evsi_link_first_open(link_t *l, int (*open_fn)(void *arg), void *arg)
{
    uint64_t until = evsi_deadline_after_ms(l->opts.retry_ms_max);
    for (;;) {
        int err = open_fn(arg);
        if (!err || !evs_error_retryable(err) || l->retry_at_ns > until)
            return err;
        char msg[EVS_MESSAGE_BYTES_MAX];
        snprintf(msg, sizeof msg, "%s", evs_errmsg());
        (void)evsi_link_wait_retry(l, until); /* retry_at <= until: it returns 0 */
        evsi_errmsg_set("%s", msg);
    }
}
