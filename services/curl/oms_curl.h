/* oms_curl.h -- HTTP requests for the OMS tests and the demo load
 * generator: a thin layer over libcurl that gives them a status, a body
 * and the headers in one call.
 *
 * libcurl does the HTTP: keep-alive (a handle keeps its connection between
 * requests and reconnects when the server closed it), chunked and
 * Content-Length bodies, one deadline per request, and answers that come
 * before the request body was sent (a 413 is returned as the answer, the
 * upload stopped). Proxies from the environment are not used: the OMS talks
 * to its own services.
 *
 * A handle is for one thread at a time; give each thread its own. */
#ifndef OMS_CURL_H
#define OMS_CURL_H

#include <stddef.h>
#include <stdint.h>

#define OMS_CURL_BODY_BYTES_MAX (16u * 1024 * 1024)  /* a larger answer: -EMSGSIZE */
#define OMS_CURL_HEADER_BYTES_MAX (64u * 1024)       /* of one answer's header block */

typedef struct oms_curl oms_curl_t;

typedef struct {
    int status;    /* e.g. 200 */
    char *body;    /* NUL-terminated (body_len bytes before the NUL); malloc'd */
    size_t body_len;
    char *headers; /* the final answer's header lines, NUL-terminated; malloc'd */
} oms_curl_response_t;

/* A handle for requests to host:port (a numeric address or a name), each
 * bounded by timeout_ms, connecting included. Connects on the first
 * request. Returns 0 and *out, or -EINVAL / -ENOMEM. */
int oms_curl_open(const char *host, uint16_t port, int timeout_ms, oms_curl_t **out);

/* Sends one request (path with its query, e.g. "/orders?limit=3") and reads
 * the whole answer into *res (free with oms_curl_response_free()).
 * headers: "Name: value" lines, NULL-terminated (may be NULL). With a body
 * (may be empty, not NULL) Content-Length is sent. Returns 0 whatever the
 * status, or -errno: -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET (the connection
 * ended without an answer), -EPROTO (a malformed answer), -EMSGSIZE, -EINVAL,
 * -ENOMEM. After an error the next request connects again. Like libcurl, a
 * request whose kept-alive connection turns out closed before any answer is
 * sent once more on a new connection, POST included: give a POST an
 * Idempotency-Key when that matters. */
int oms_curl_request(oms_curl_t *c, const char *method, const char *path,
                     const char *const *headers, const char *body, size_t body_len,
                     oms_curl_response_t *res);

/* Value of a header of the answer (case-insensitive name, the first one
 * when repeated), without surrounding blanks, copied into out (cap bytes).
 * Returns 0, -ENOENT, or -ENOSPC when it did not fit (out holds its start). */
int oms_curl_header(const oms_curl_response_t *res, const char *name, char *out, size_t cap);

void oms_curl_response_free(oms_curl_response_t *res);

/* Closes the handle and its connection. NULL is allowed. */
void oms_curl_close(oms_curl_t *c);

/* One request on a handle of its own: open, request, close. */
int oms_curl_once(const char *host, uint16_t port, int timeout_ms, const char *method,
                  const char *path, const char *const *headers, const char *body,
                  size_t body_len, oms_curl_response_t *res);

#endif
