/* sock.c -- TCP with deadlines: connect, send a whole buffer, receive one
 * frame (for the handshake, before the reader thread exists); receive
 * buffers. */
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

uint64_t evsi_deadline_after_ms(int ms)
{
    if (ms < 0)
        return UINT64_MAX;
    return util_mono_ns() + (uint64_t)ms * 1000000u;
}

int evsi_backoff_doubled(int ms, int max_ms)
{
    return ms > max_ms / 2 ? max_ms : ms * 2;
}

void evsi_backoff_step(uint64_t *retry_at_ns, int *backoff_ms, int max_ms)
{
    *retry_at_ns = evsi_deadline_after_ms(*backoff_ms);
    *backoff_ms = evsi_backoff_doubled(*backoff_ms, max_ms);
}

int evsi_ms_until(uint64_t deadline_ns)
{
    if (deadline_ns == UINT64_MAX)
        return -1;
    uint64_t now = util_mono_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* Waits for events on fd until the deadline. 1 ready, 0 timeout, -errno. */
static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
    struct pollfd p = { .fd = fd, .events = events };
    for (;;) {
        int n = poll(&p, 1, evsi_ms_until(deadline_ns));
        if (n >= 0)
            return n > 0 ? 1 : 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Connects one resolved address. Returns the socket or a negative error. */
static int connect_one(const struct addrinfo *ai, uint64_t deadline_ns)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            err = -errno;
            goto err_close_fd;
        }
        int n = wait_fd(fd, POLLOUT, deadline_ns);
        if (n <= 0) {
            err = n == 0 ? EVS_ETIMEDOUT : n;
            goto err_close_fd;
        }
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            err = -err;
            goto err_close_fd;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    return fd;

err_close_fd:
    close(fd);
    return err;
}

int evsi_sock_connect(const char *host, uint16_t port, int timeout_ms)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *list = NULL;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    int rc = getaddrinfo(host, service, &hints, &list);
    if (rc != 0) {
        evsi_errmsg_set("resolve %s: %s", host, gai_strerror(rc));
        return rc == EAI_MEMORY ? -ENOMEM : EVS_ERESOLVE;
    }
    uint64_t deadline = evsi_deadline_after_ms(timeout_ms);
    int fd = EVS_ERESOLVE;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        fd = connect_one(ai, deadline);
        if (fd >= 0 || fd == EVS_ETIMEDOUT)
            break;
    }
    freeaddrinfo(list);
    if (fd < 0)
        evsi_errmsg_set("connect %s:%u: %s", host, (unsigned)port, evs_strerror(fd));
    return fd;
}

int evsi_sock_send_all(int fd, const uint8_t *buf, size_t len, uint64_t deadline_ns)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return errno == EPIPE || errno == ECONNRESET ? EVS_ECLOSED : -errno;
        int w = wait_fd(fd, POLLOUT, deadline_ns);
        if (w <= 0)
            return w == 0 ? EVS_ETIMEDOUT : w;
    }
    return 0;
}

/* Reads exactly len bytes before the deadline. */
static int recv_exact(int fd, uint8_t *buf, size_t len, uint64_t deadline_ns)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = recv(fd, buf + done, len - done, MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0)
            return EVS_ECLOSED;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return errno == ECONNRESET ? EVS_ECLOSED : -errno;
        int w = wait_fd(fd, POLLIN, deadline_ns);
        if (w <= 0)
            return w == 0 ? EVS_ETIMEDOUT : w;
    }
    return 0;
}

int evsi_sock_recv_frame(int fd, uint32_t frame_bytes_max, uint64_t deadline_ns, envelope_t **out)
{
    uint8_t head[FRAME_HEADER_BYTES];
    int err = recv_exact(fd, head, sizeof head, deadline_ns);
    if (err)
        return err;
    uint32_t len = 0;
    if (frame_peek(head, sizeof head, frame_bytes_max, &len) == FRAME_TOO_LARGE) {
        evsi_errmsg_set("server sent a frame of %u bytes", len);
        return EVS_EPROTOCOL;
    }
    uint8_t *body = malloc(len);
    if (!body)
        return -ENOMEM;
    err = recv_exact(fd, body, len, deadline_ns);
    if (err)
        goto out_free_body;
    *out = frame_decode(body, len);
    if (!*out) {
        evsi_errmsg_set("server sent a frame that is not an Envelope");
        err = EVS_EPROTOCOL;
    }
out_free_body:
    free(body);
    return err;
}

int evsi_rbuf_reserve(rbuf_t *rb, size_t want)
{
    if (rb->start > 0) {
        memmove(rb->data, rb->data + rb->start, rb->len - rb->start);
        rb->len -= rb->start;
        rb->start = 0;
    }
    if (rb->cap - rb->len >= want)
        return 0;
    size_t cap = rb->cap ? rb->cap : CLIENT_RECV_CHUNK_BYTES;
    while (cap - rb->len < want)
        cap *= 2;
    uint8_t *p = realloc(rb->data, cap);
    if (!p)
        return -ENOMEM;
    rb->data = p;
    rb->cap = cap;
    return 0;
}

void evsi_rbuf_free(rbuf_t *rb)
{
    free(rb->data);
    memset(rb, 0, sizeof *rb);
}
