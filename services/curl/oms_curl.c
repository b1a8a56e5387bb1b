/* oms_curl.c -- HTTP requests over libcurl (see oms_curl.h).
 *
 * A handle is one libcurl easy handle, whose connection cache keeps the
 * connection alive between requests. Each request starts from
 * curl_easy_reset() (which keeps the connection) and sets every option it
 * needs, so nothing of one request leaks into the next. The body and the
 * header block are collected into bounded buffers by the write and header
 * callbacks. */
#include "oms_curl.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OMS_CURL_BASE_BYTES_MAX 300u /* "http://[host]:port" */

struct oms_curl {
    CURL *easy;
    char base[OMS_CURL_BASE_BYTES_MAX];
    long timeout_ms;
    bool fresh; /* the last request failed: do not reuse its connection */
};

typedef struct {
    char *p;
    size_t len, cap;
    size_t bytes_max;
    bool too_big;
} buf_t;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- collecting the answer --------------------------------------------- */

static int buf_append(buf_t *b, const char *p, size_t n)
{
    if (n > b->bytes_max - b->len) {
        b->too_big = true;
        return -EMSGSIZE;
    }
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

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    return buf_append(ctx, data, size * n) == 0 ? size * n : 0;
}

/* Keeps the header lines of the last answer: a status line (of an interim
 * 1xx answer, then of the final one) starts the block again. */
static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    buf_t *b = ctx;
    if (size * n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        b->len = 0;
        if (b->p)
            b->p[0] = '\0';
        return size * n;
    }
    return buf_append(b, data, size * n) == 0 ? size * n : 0;
}

/* ---- the handle -------------------------------------------------------- */

int oms_curl_open(const char *host, uint16_t port, int timeout_ms, oms_curl_t **out)
{
    if (!host || !*host || timeout_ms <= 0 || !out)
        return -EINVAL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return -ENOMEM;
    oms_curl_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(c->base, sizeof c->base, "http://%s%s%s:%u", v6 ? "[" : "", host,
                     v6 ? "]" : "", (unsigned)port);
    if (n < 0 || (size_t)n >= sizeof c->base) {
        free(c);
        return -EINVAL;
    }
    c->easy = curl_easy_init();
    if (!c->easy) {
        free(c);
        return -ENOMEM;
    }
    c->timeout_ms = timeout_ms;
    *out = c;
    return 0;
}

void oms_curl_close(oms_curl_t *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->easy);
    free(c);
}

/* ---- one request ------------------------------------------------------- */

static int list_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return -ENOMEM;
    *list = l;
    return 0;
}

/* The request's header list, or -EINVAL for a line that is not "Name:
 * value" on one line. A body without a Content-Type goes without one
 * (libcurl would add a form type). */
static int header_list(const char *const *headers, bool has_body, struct curl_slist **out)
{
    struct curl_slist *list = NULL;
    bool has_type = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && headers && headers[i]; i++) {
        const char *h = headers[i];
        if (strpbrk(h, "\r\n") || !strchr(h, ':') || h[0] == ':')
            rc = -EINVAL;
        else
            rc = list_add(&list, h);
        has_type |= strncasecmp(h, "Content-Type:", 13) == 0;
    }
    if (rc == 0 && has_body && !has_type)
        rc = list_add(&list, "Content-Type:");
    if (rc < 0) {
        curl_slist_free_all(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* Sets the method, and the body when there is one. */
static void set_method(CURL *e, const char *method, const char *body, size_t body_len)
{
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        if (strcmp(method, "GET") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
}

/* The -errno for a failed transfer. */
static int error_of(CURL *e, CURLcode rc, const buf_t *body, const buf_t *head)
{
    long os_errno = 0;
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return os_errno ? -(int)os_errno : -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
        return -EHOSTUNREACH;
    case CURLE_GOT_NOTHING:
        return -ECONNRESET;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        return os_errno ? -(int)os_errno : -ECONNRESET;
    case CURLE_WRITE_ERROR:
        return body->too_big || head->too_big ? -EMSGSIZE : -ENOMEM;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_URL_MALFORMAT:
        return -EINVAL;
    default:
        return -EPROTO;
    }
}

/* Sets the options of one request on c's handle, after a reset. */
static void set_request(oms_curl_t *c, const char *url, struct curl_slist *list, buf_t *body,
                        buf_t *head)
{
    CURL *e = c->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, c->fresh ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, head);
}

int oms_curl_request(oms_curl_t *c, const char *method, const char *path,
                     const char *const *headers, const char *body, size_t body_len,
                     oms_curl_response_t *res)
{
    if (res)
        *res = (oms_curl_response_t){0};
    if (!c || !method || !*method || strpbrk(method, " \r\n") || !path || path[0] != '/' ||
        !res)
        return -EINVAL;
    struct curl_slist *list = NULL;
    int rc = header_list(headers, body != NULL, &list);
    if (rc < 0)
        return rc;
    size_t url_bytes = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(url_bytes);
    if (!url) {
        rc = -ENOMEM;
        goto out_free_list;
    }
    snprintf(url, url_bytes, "%s%s", c->base, path);
    buf_t b = {.bytes_max = OMS_CURL_BODY_BYTES_MAX};
    buf_t h = {.bytes_max = OMS_CURL_HEADER_BYTES_MAX};
    set_request(c, url, list, &b, &h);
    set_method(c->easy, method, body, body_len);
    CURLcode cc = curl_easy_perform(c->easy);
    long status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    rc = cc != CURLE_OK ? error_of(c->easy, cc, &b, &h) : 0;
    if (rc == 0 && (buf_append(&b, "", 0) < 0 || buf_append(&h, "", 0) < 0))
        rc = -ENOMEM;
    c->fresh = rc != 0;
    if (rc == 0) {
        *res = (oms_curl_response_t){.status = (int)status, .body = b.p, .body_len = b.len,
                                     .headers = h.p};
    } else {
        free(b.p);
        free(h.p);
    }
    free(url);
out_free_list:
    curl_slist_free_all(list);
    return rc;
}

/* ---- reading the answer ------------------------------------------------ */

/* Copies the value [v, ve) into out (cap bytes), blanks around it cut. */
static int header_value(const char *v, const char *ve, char *out, size_t cap)
{
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    if (cap == 0)
        return -ENOSPC;
    size_t len = (size_t)(ve - v);
    size_t copy = len < cap ? len : cap - 1;
    memcpy(out, v, copy);
    out[copy] = '\0';
    return len < cap ? 0 : -ENOSPC;
}

int oms_curl_header(const oms_curl_response_t *res, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = res->headers; line && *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':')
            return header_value(line + nl + 1, end, out, cap);
        line = *end ? end + 1 : end;
    }
    return -ENOENT;
}

void oms_curl_response_free(oms_curl_response_t *res)
{
    if (!res)
        return;
    free(res->body);
    free(res->headers);
    *res = (oms_curl_response_t){0};
}

int oms_curl_once(const char *host, uint16_t port, int timeout_ms, const char *method,
                  const char *path, const char *const *headers, const char *body,
                  size_t body_len, oms_curl_response_t *res)
{
    oms_curl_t *c;
    int rc = oms_curl_open(host, port, timeout_ms, &c);
    if (rc < 0)
        return rc;
    rc = oms_curl_request(c, method, path, headers, body, body_len, res);
    oms_curl_close(c);
    return rc;
}
