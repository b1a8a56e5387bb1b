/* httpc.c -- a small blocking HTTP/1.1 client (see httpc.h).
 *
 * The socket is non-blocking inside: every send and receive waits with
 * poll() against one deadline per request (timeout_ms from its start), so
 * no call can block past the timeout whatever the peer does. The caller
 * sees a blocking API.
 *
 * Received bytes go into a fixed read buffer (a header block at most, plus
 * one read); the body is copied out of it into a growing buffer bounded by
 * HTTPC_RESPONSE_BYTES_MAX. After any error the connection is dropped (its
 * state is unknown) and the next request connects again.
 */
#include "httpc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HTTPC_HOST_BYTES_MAX 256u
#define HTTPC_READ_BYTES 16384u                 /* one recv() at most */
#define HTTPC_RBUF_BYTES (HTTPC_HEADER_BYTES_MAX + HTTPC_READ_BYTES)
#define HTTPC_REQUEST_HEAD_BYTES_MAX (64u * 1024)
#define HTTPC_CHUNK_LINE_BYTES_MAX 4096u        /* a chunk-size or trailer line */
#define HTTPC_INTERIM_MAX 8u                    /* 1xx answers skipped per request */

struct httpc {
    int fd; /* -1: not connected */
    char host[HTTPC_HOST_BYTES_MAX];
    uint16_t port;
    int timeout_ms;
    bool reused; /* a response was read on this connection already */
    char *rbuf;  /* received, not yet consumed: rbuf[rstart..rend) */
    size_t rstart, rend;
};

typedef struct {
    char *p;
    size_t len, cap;
} httpc_buf_t;

/* What the header block says about the body. */
typedef struct {
    int status;
    bool chunked;
    bool has_length;
    size_t length;
    bool close; /* the server closes after this response */
} httpc_head_t;

static int64_t httpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes. */
static int httpc_wait(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - httpc_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ETIMEDOUT;
        return 0; /* POLLERR/POLLHUP too: the next call reports it */
    }
}

static void httpc_drop(httpc_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->reused = false;
    c->rstart = c->rend = 0;
}

/* ---- connecting -------------------------------------------------------- */

static int httpc_dial_addr(const struct addrinfo *ai, int64_t deadline_ms, int *out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto out_close_fd;
        }
        rc = httpc_wait(fd, POLLOUT, deadline_ms);
        if (rc < 0)
            goto out_close_fd;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            rc = -err;
            goto out_close_fd;
        }
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *out = fd;
    return 0;
out_close_fd:
    close(fd);
    return rc;
}

/* Connects c to its host and port, trying each address in turn. */
static int httpc_dial(httpc_t *c, int64_t deadline_ms)
{
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(c->host, port, &hints, &list);
    if (gai != 0)
        return gai == EAI_SYSTEM && errno ? -errno : -EHOSTUNREACH;
    int rc = -EHOSTUNREACH;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        rc = httpc_dial_addr(ai, deadline_ms, &c->fd);
        if (rc == 0 || rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(list);
    c->reused = false;
    c->rstart = c->rend = 0;
    return rc;
}

int httpc_connect(const char *host, uint16_t port, int timeout_ms, httpc_t **out)
{
    if (!host || strlen(host) >= HTTPC_HOST_BYTES_MAX || timeout_ms <= 0 || !out)
        return -EINVAL;
    httpc_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->rbuf = malloc(HTTPC_RBUF_BYTES);
    if (!c->rbuf) {
        free(c);
        return -ENOMEM;
    }
    c->fd = -1;
    strcpy(c->host, host);
    c->port = port;
    c->timeout_ms = timeout_ms;
    int rc = httpc_dial(c, httpc_now_ms() + timeout_ms);
    if (rc < 0) {
        httpc_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void httpc_close(httpc_t *c)
{
    if (!c)
        return;
    httpc_drop(c);
    free(c->rbuf);
    free(c);
}

/* True when a kept-alive connection was closed by the server (or sent
 * bytes nobody asked for, which leaves it unusable as well). */
static bool httpc_peer_gone(httpc_t *c)
{
    if (c->rstart != c->rend)
        return true;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return false;
    return true; /* readable when idle: EOF, an error, or stray bytes */
}

/* ---- sending ----------------------------------------------------------- */

static bool httpc_token_ok(const char *s, bool allow_space)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || (!allow_space && *s == ' '))
            return false;
    return true;
}

/* Formats the request line and headers into head. Returns its length or
 * -EINVAL (bad characters) / -EMSGSIZE (too long). */
static int httpc_format_head(const httpc_t *c, const char *method, const char *path,
                             const char *const *headers, const char *body, size_t body_len,
                             char *head, size_t cap)
{
    if (!httpc_token_ok(method, false) || !httpc_token_ok(path, false))
        return -EINVAL;
    bool v6 = strchr(c->host, ':') != NULL;
    size_t n = (size_t)snprintf(head, cap, "%s %s HTTP/1.1\r\nHost: %s%s%s:%u\r\n", method, path,
                                v6 ? "[" : "", c->host, v6 ? "]" : "", (unsigned)c->port);
    for (size_t i = 0; headers && headers[i] && n < cap; i++) {
        if (!httpc_token_ok(headers[i], true) || !strchr(headers[i], ':'))
            return -EINVAL;
        n += (size_t)snprintf(head + n, cap - n, "%s\r\n", headers[i]);
    }
    if (body && n < cap)
        n += (size_t)snprintf(head + n, cap - n, "Content-Length: %zu\r\n", body_len);
    if (n < cap)
        n += (size_t)snprintf(head + n, cap - n, "\r\n");
    if (n >= cap)
        return -EMSGSIZE;
    return (int)n;
}

/* Sends iov[0..cnt) completely. */
static int httpc_send_all(httpc_t *c, struct iovec *iov, int cnt, int64_t deadline_ms)
{
    while (cnt > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            int rc = httpc_wait(c->fd, POLLOUT, deadline_ms);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* ---- receiving --------------------------------------------------------- */

/* Reads more bytes into the read buffer. Returns the count, 0 at EOF, or
 * -errno. */
static int httpc_fill(httpc_t *c, int64_t deadline_ms)
{
    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
        c->rend -= c->rstart;
        c->rstart = 0;
    }
    size_t room = HTTPC_RBUF_BYTES - c->rend;
    if (room == 0)
        return -EMSGSIZE;
    if (room > HTTPC_READ_BYTES)
        room = HTTPC_READ_BYTES;
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rend, room, 0);
        if (n >= 0) {
            c->rend += (size_t)n;
            return (int)n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = httpc_wait(c->fd, POLLIN, deadline_ms);
        if (rc < 0)
            return rc;
    }
}

/* Finds "\r\n\r\n" (or a bare "\n\n") in the buffered bytes: the end of the
 * header block. Returns the offset just past it from rstart, or 0. */
static size_t httpc_head_end(const httpc_t *c)
{
    const char *p = c->rbuf + c->rstart;
    size_t len = c->rend - c->rstart;
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Reads one header block into a NUL-terminated copy *head (malloc'd).
 * -ECONNRESET when the connection ends before its first byte (the server
 * had closed it), -EPROTO when it ends inside it. */
static int httpc_read_head(httpc_t *c, int64_t deadline_ms, char **head)
{
    size_t end;
    while ((end = httpc_head_end(c)) == 0) {
        if (c->rend - c->rstart >= HTTPC_HEADER_BYTES_MAX)
            return -EMSGSIZE;
        int n = httpc_fill(c, deadline_ms);
        if (n < 0)
            return n;
        if (n == 0)
            return c->rend == c->rstart ? -ECONNRESET : -EPROTO;
    }
    if (end > HTTPC_HEADER_BYTES_MAX)
        return -EMSGSIZE;
    *head = malloc(end + 1);
    if (!*head)
        return -ENOMEM;
    memcpy(*head, c->rbuf + c->rstart, end);
    (*head)[end] = '\0';
    c->rstart += end;
    return 0;
}

/* Parses a non-negative decimal or hex number that fills [s, e). */
static int httpc_parse_size(const char *s, const char *e, int base, size_t *out)
{
    if (s == e)
        return -EPROTO;
    size_t v = 0;
    for (; s < e; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (base == 16 && isxdigit((unsigned char)*s))
            d = (tolower((unsigned char)*s) - 'a') + 10;
        else
            return -EPROTO;
        if (v > (SIZE_MAX - (size_t)d) / (size_t)base)
            return -EMSGSIZE;
        v = v * (size_t)base + (size_t)d;
    }
    *out = v;
    return 0;
}

/* True when the comma-separated header value [v, e) holds token. */
static bool httpc_value_has(const char *v, const char *e, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = v; p + tl <= e; p++) {
        bool start = p == v || p[-1] == ',' || p[-1] == ' ' || p[-1] == '\t';
        const char *q = p + tl;
        bool end = q == e || *q == ',' || *q == ' ' || *q == '\t' || *q == ';';
        if (start && end && strncasecmp(p, token, tl) == 0)
            return true;
    }
    return false;
}

/* Applies one "Name: value" line [line, e) to h. */
static int httpc_parse_field(const char *line, const char *e, httpc_head_t *h)
{
    const char *colon = memchr(line, ':', (size_t)(e - line));
    if (!colon || colon == line)
        return -EPROTO;
    size_t nl = (size_t)(colon - line);
    const char *v = colon + 1;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    const char *ve = e;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    if (nl == 14 && strncasecmp(line, "Content-Length", nl) == 0) {
        size_t len;
        int rc = httpc_parse_size(v, ve, 10, &len);
        if (rc < 0)
            return rc;
        if (h->has_length && h->length != len)
            return -EPROTO;
        h->has_length = true;
        h->length = len;
    } else if (nl == 17 && strncasecmp(line, "Transfer-Encoding", nl) == 0) {
        h->chunked = httpc_value_has(v, ve, "chunked");
    } else if (nl == 10 && strncasecmp(line, "Connection", nl) == 0) {
        if (httpc_value_has(v, ve, "close"))
            h->close = true;
        else if (httpc_value_has(v, ve, "keep-alive"))
            h->close = false;
    }
    return 0;
}

/* Parses the status line and the fields of a header block. */
static int httpc_parse_head(const char *head, httpc_head_t *h)
{
    int minor = 0, status = 0, used = 0;
    if (sscanf(head, "HTTP/1.%1d %3d%n", &minor, &status, &used) != 2 || status < 100 ||
        status > 999 || (head[used] != ' ' && head[used] != '\r' && head[used] != '\n'))
        return -EPROTO;
    *h = (httpc_head_t){.status = status, .close = minor == 0};
    const char *line = strchr(head, '\n') + 1;
    while (*line && *line != '\r' && *line != '\n') {
        const char *nl = strchr(line, '\n');
        const char *e = nl > line && nl[-1] == '\r' ? nl - 1 : nl;
        int rc = httpc_parse_field(line, e, h);
        if (rc < 0)
            return rc;
        line = nl + 1;
    }
    return 0;
}

static int httpc_buf_append(httpc_buf_t *b, const char *p, size_t n)
{
    if (n > HTTPC_RESPONSE_BYTES_MAX - b->len)
        return -EMSGSIZE;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Moves n body bytes (or, with n SIZE_MAX, everything until EOF) into b. */
static int httpc_read_body(httpc_t *c, int64_t deadline_ms, size_t n, httpc_buf_t *b)
{
    bool to_eof = n == SIZE_MAX;
    while (n > 0) {
        if (c->rstart == c->rend) {
            int got = httpc_fill(c, deadline_ms);
            if (got < 0)
                return got;
            if (got == 0)
                return to_eof ? 0 : -EPROTO;
        }
        size_t take = c->rend - c->rstart;
        if (take > n)
            take = n;
        int rc = httpc_buf_append(b, c->rbuf + c->rstart, take);
        if (rc < 0)
            return rc;
        c->rstart += take;
        if (!to_eof)
            n -= take;
    }
    return 0;
}

/* Reads one line (a chunk size or a trailer) and returns its length
 * without the line end in *len, its start at c->rbuf + *start. */
static int httpc_read_line(httpc_t *c, int64_t deadline_ms, size_t *start, size_t *len)
{
    for (;;) {
        const char *p = c->rbuf + c->rstart;
        const char *nl = memchr(p, '\n', c->rend - c->rstart);
        if (nl) {
            size_t l = (size_t)(nl - p);
            *start = c->rstart;
            *len = l > 0 && p[l - 1] == '\r' ? l - 1 : l;
            c->rstart += l + 1;
            return 0;
        }
        if (c->rend - c->rstart >= HTTPC_CHUNK_LINE_BYTES_MAX)
            return -EPROTO;
        int n = httpc_fill(c, deadline_ms);
        if (n < 0)
            return n;
        if (n == 0)
            return -EPROTO;
    }
}

/* Reads a chunked body: size lines, data, CRLF, ..., 0, trailers, CRLF. */
static int httpc_read_chunked(httpc_t *c, int64_t deadline_ms, httpc_buf_t *b)
{
    for (;;) {
        size_t start, len, size;
        int rc = httpc_read_line(c, deadline_ms, &start, &len);
        if (rc < 0)
            return rc;
        const char *s = c->rbuf + start;
        const char *e = memchr(s, ';', len);
        if (!e)
            e = s + len;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        rc = httpc_parse_size(s, e, 16, &size);
        if (rc < 0)
            return rc;
        if (size == 0)
            break;
        if (size > HTTPC_RESPONSE_BYTES_MAX - b->len)
            return -EMSGSIZE;
        rc = httpc_read_body(c, deadline_ms, size, b);
        if (rc < 0)
            return rc;
        rc = httpc_read_line(c, deadline_ms, &start, &len);
        if (rc < 0)
            return rc;
        if (len != 0)
            return -EPROTO;
    }
    for (unsigned i = 0; i <= HTTPC_HEADER_BYTES_MAX / 2; i++) { /* trailers */
        size_t start, len;
        int rc = httpc_read_line(c, deadline_ms, &start, &len);
        if (rc < 0)
            return rc;
        if (len == 0)
            return 0;
    }
    return -EMSGSIZE;
}

static bool httpc_has_body(const char *method, int status)
{
    return strcmp(method, "HEAD") != 0 && status >= 200 && status != 204 && status != 304;
}

/* Reads the body described by h into b; sets h->close when the body ends
 * with the connection. */
static int httpc_read_payload(httpc_t *c, const char *method, int64_t deadline_ms,
                              httpc_head_t *h, httpc_buf_t *b)
{
    if (!httpc_has_body(method, h->status))
        return 0;
    if (h->chunked)
        return httpc_read_chunked(c, deadline_ms, b);
    if (h->has_length) {
        if (h->length > HTTPC_RESPONSE_BYTES_MAX)
            return -EMSGSIZE;
        return httpc_read_body(c, deadline_ms, h->length, b);
    }
    h->close = true;
    return httpc_read_body(c, deadline_ms, SIZE_MAX, b);
}

/* Reads a whole response (skipping interim 1xx answers) into *res. */
static int httpc_read_response(httpc_t *c, const char *method, int64_t deadline_ms,
                               httpc_response_t *res)
{
    char *head = NULL;
    httpc_head_t h;
    int rc = 0;
    for (unsigned i = 0;; i++) {
        free(head);
        head = NULL;
        if (i > HTTPC_INTERIM_MAX)
            return -EPROTO;
        rc = httpc_read_head(c, deadline_ms, &head);
        if (rc == -ECONNRESET && i > 0)
            rc = -EPROTO;
        if (rc == 0)
            rc = httpc_parse_head(head, &h);
        if (rc < 0)
            goto out_free_head;
        if (h.status >= 200 || h.status == 101)
            break;
    }
    httpc_buf_t body = {0};
    rc = httpc_read_payload(c, method, deadline_ms, &h, &body);
    if (rc == 0 && !body.p)
        rc = httpc_buf_append(&body, "", 0);
    if (rc < 0) {
        free(body.p);
        goto out_free_head;
    }
    if (h.close)
        httpc_drop(c);
    else
        c->reused = true;
    /* The header block without its status line. */
    char *fields = strchr(head, '\n') + 1;
    memmove(head, fields, strlen(fields) + 1);
    *res = (httpc_response_t){.status = h.status, .body = body.p, .body_len = body.len,
                              .headers = head};
    return 0;
out_free_head:
    free(head);
    return rc;
}

/* ---- requests ---------------------------------------------------------- */

/* Methods whose request may be sent again when a reused connection ends
 * without a byte of response (the server may have closed it just as the
 * request went out): every method but POST and PATCH. */
static bool httpc_idempotent(const char *method)
{
    return strcmp(method, "POST") != 0 && strcmp(method, "PATCH") != 0;
}

/* One attempt on the current connection. *sent tells whether the request
 * left completely. */
static int httpc_exchange(httpc_t *c, const char *method, const char *head, size_t head_len,
                          const char *body, size_t body_len, int64_t deadline_ms,
                          httpc_response_t *res, bool *sent)
{
    struct iovec iov[2] = {{.iov_base = (void *)head, .iov_len = head_len},
                           {.iov_base = (void *)body, .iov_len = body ? body_len : 0}};
    *sent = false;
    int rc = httpc_send_all(c, iov, body && body_len ? 2 : 1, deadline_ms);
    if (rc == -EPIPE || rc == -ECONNRESET) {
        /* The server may have answered before taking the whole body (413)
         * and closed: that answer is the one to return. */
        if (httpc_read_response(c, method, deadline_ms, res) == 0) {
            httpc_drop(c);
            *sent = true;
            return 0;
        }
    }
    if (rc < 0)
        return rc;
    *sent = true;
    return httpc_read_response(c, method, deadline_ms, res);
}

int httpc_request(httpc_t *c, const char *method, const char *path,
                  const char *const *headers, const char *body, size_t body_len,
                  httpc_response_t *res)
{
    if (!c || !method || !path || !res)
        return -EINVAL;
    int64_t deadline_ms = httpc_now_ms() + c->timeout_ms;
    char *head = malloc(HTTPC_REQUEST_HEAD_BYTES_MAX);
    if (!head)
        return -ENOMEM;
    int rc = httpc_format_head(c, method, path, headers, body, body_len, head,
                               HTTPC_REQUEST_HEAD_BYTES_MAX);
    if (rc < 0)
        goto out_free_head;
    size_t head_len = (size_t)rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd >= 0 && httpc_peer_gone(c))
            httpc_drop(c);
        bool reused = c->fd >= 0 && c->reused;
        if (c->fd < 0 && (rc = httpc_dial(c, deadline_ms)) < 0)
            break;
        bool sent;
        rc = httpc_exchange(c, method, head, head_len, body, body_len, deadline_ms, res, &sent);
        if (rc == 0)
            break;
        httpc_drop(c);
        bool lost = rc == -ECONNRESET || rc == -EPIPE;
        if (!(reused && lost && (!sent || httpc_idempotent(method))))
            break;
    }
out_free_head:
    free(head);
    return rc;
}

int httpc_header(const httpc_response_t *res, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = res->headers; line && *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = end;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t len = (size_t)(ve - v);
            if (cap == 0)
                return -ENOSPC;
            size_t copy = len < cap ? len : cap - 1;
            memcpy(out, v, copy);
            out[copy] = '\0';
            return len < cap ? 0 : -ENOSPC;
        }
        line = *end ? end + 1 : end;
    }
    return -ENOENT;
}

void httpc_response_free(httpc_response_t *res)
{
    if (!res)
        return;
    free(res->body);
    free(res->headers);
    res->body = res->headers = NULL;
    res->body_len = 0;
}

int httpc_once(const char *host, uint16_t port, int timeout_ms, const char *method,
               const char *path, const char *const *headers, const char *body,
               size_t body_len, httpc_response_t *res)
{
    httpc_t *c;
    int rc = httpc_connect(host, port, timeout_ms, &c);
    if (rc < 0)
        return rc;
    rc = httpc_request(c, method, path, headers, body, body_len, res);
    httpc_close(c);
    return rc;
}
