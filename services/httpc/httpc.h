/* httpc.h -- a small blocking HTTP/1.1 client over TCP (keep-alive), for
 * the OMS tests and the demo load generator. Not for TLS, chunked request
 * bodies or redirects; responses with Content-Length or chunked bodies.
 */
#ifndef HTTPC_H
#define HTTPC_H

#include <stddef.h>
#include <stdint.h>

#define HTTPC_RESPONSE_BYTES_MAX (16u * 1024 * 1024) /* larger: -EMSGSIZE */
#define HTTPC_HEADER_BYTES_MAX (64u * 1024)

typedef struct httpc httpc_t;

typedef struct {
    int status;        /* e.g. 200 */
    char *body;        /* NUL-terminated (body_len bytes before the NUL); malloc'd */
    size_t body_len;
    char *headers;     /* the raw header block, NUL-terminated; malloc'd */
} httpc_response_t;

/* Connects to host:port (numeric IPv4 or a name) within timeout_ms, which
 * also bounds each later request. Returns 0 and *out, or -errno. */
int httpc_connect(const char *host, uint16_t port, int timeout_ms, httpc_t **out);

/* Sends one request and reads the response. headers: "Name: value" lines,
 * NULL-terminated (may be NULL); Content-Length is added when body is not
 * NULL. If the kept-alive connection was closed by the server before the
 * request was sent, reconnects once and sends it again. Returns 0 and *res
 * (free with httpc_response_free()), or -errno (-ETIMEDOUT, -ECONNRESET,
 * -EPROTO for a malformed response, -EMSGSIZE). A reused connection that
 * ends without a byte of response is also retried once, except for POST
 * and PATCH (the server may have acted on them). After an error the
 * connection is dropped and the next request connects again. timeout_ms
 * bounds the whole request (connecting again included). */
int httpc_request(httpc_t *c, const char *method, const char *path,
                  const char *const *headers, const char *body, size_t body_len,
                  httpc_response_t *res);

/* Value of a response header (case-insensitive name, the first one when
 * repeated), without surrounding blanks, copied into out (cap bytes).
 * Returns 0, -ENOENT, or -ENOSPC when it did not fit (out holds its start). */
int httpc_header(const httpc_response_t *res, const char *name, char *out, size_t cap);

void httpc_response_free(httpc_response_t *res);
void httpc_close(httpc_t *c);

/* Connects, sends one request, closes. */
int httpc_once(const char *host, uint16_t port, int timeout_ms, const char *method,
               const char *path, const char *const *headers, const char *body,
               size_t body_len, httpc_response_t *res);

#endif
