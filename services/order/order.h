/* order.h -- the internals of oms-order, the HTTP/JSON API of the OMS.
 *
 * Layout (one concept per file, prefix oms_ord_):
 *   main.c         flags, start-up, the stop loop
 *   http.c         libmicrohttpd: request lifecycle, bodies, replies, metrics
 *   routes.c       the route table: matching, 404, 405 with Allow
 *   validate.c     the POST /orders body: JSON -> OrderPlaced, every limit
 *   place.c        POST /orders: order ids, the append, idempotent replays
 *   order_json.c   an order as JSON (from OrderPlaced, the stream, a row)
 *   readmodel.c    GET /orders and GET /orders/{id} on the SQLite read model
 *   stream.c       the store side: GET /orders/{id} (read model, else the
 *                  stream), GET /orders/{id}/events (the audit trail)
 *   base64.c       list cursors (payloads are shown by util's pbjson, the
 *                  mapping evstore-inspect shares)
 *   openapi.c      GET /openapi.json: openapi.json, embedded at build time
 *                  by embed.cmake
 *
 * Docs for users: docs/oms-api.md.
 */
#ifndef OMS_ORDER_H
#define OMS_ORDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oms.h"
#include "oms.pb-c.h"

/* ==== limits (requests) ================================================= */

#define OMS_ORD_BODY_BYTES_MAX (64u * 1024)      /* POST body; larger: 413 */
#define OMS_ORD_ITEMS_MAX 99u /* items per order: oms-inventory reserves them in one
                                 append of at most 100 streams (99 SKUs + its answer) */
#define OMS_ORD_QUANTITY_MIN 1u
#define OMS_ORD_QUANTITY_MAX 10000u
#define OMS_ORD_UNIT_PRICE_CENTS_MIN 1
#define OMS_ORD_UNIT_PRICE_CENTS_MAX 100000000LL   /* 1 000 000.00 per unit */
#define OMS_ORD_TOTAL_CENTS_MAX 1000000000LL       /* 10 000 000.00 per order */
#define OMS_ORD_ID_BYTES_MAX 64u                 /* customer_id, sku: [A-Za-z0-9._-] */
#define OMS_ORD_ORDER_ID_BYTES_MAX 64u           /* an order id in a path */
#define OMS_ORD_TOKEN_BYTES_MAX 128u             /* payment_token: printable, no blank */
#define OMS_ORD_IDEMPOTENCY_KEY_BYTES_MAX 128u   /* Idempotency-Key: printable */
#define OMS_ORD_NAME_BYTES_MAX 128u              /* address name and city */
#define OMS_ORD_LINE_BYTES_MAX 256u              /* address line1 */
#define OMS_ORD_POSTAL_BYTES_MAX 16u             /* [A-Za-z0-9 -] */
#define OMS_ORD_LIST_LIMIT_DEFAULT 50u
#define OMS_ORD_LIST_LIMIT_MAX 500u
#define OMS_ORD_TRAIL_EVENTS_MAX 2000u           /* events in one audit trail */
#define OMS_ORD_ERROR_MESSAGE_BYTES 256u

/* ==== limits (server) =================================================== */

#define OMS_ORD_HTTP_CONNECTIONS_DEFAULT 128u    /* one thread each */
#define OMS_ORD_HTTP_CONNECTIONS_MAX 4096u
#define OMS_ORD_HTTP_IDLE_S 60u                  /* idle keep-alive connections close */
#define OMS_ORD_STORE_TIMEOUT_MS_DEFAULT 2000u   /* a request retries the store this
                                                    long, then answers 503 */
#define OMS_ORD_STORE_TIMEOUT_MS_MAX 60000u

/* ==== the service ======================================================= */

typedef struct {
    oms_config_t cfg;
    oms_store_t *store;
    oms_metrics_t *metrics;
    const char *readmodel_path;
    uint32_t store_timeout_ms;   /* the store's retry time (cfg.store_retry_ms) */
    oms_counter_t *orders_placed;
    oms_counter_t *idempotent_replays;
} oms_ord_t;

/* ==== requests and replies (http.c) ===================================== */

typedef enum {
    OMS_ORD_GET,
    OMS_ORD_HEAD,
    OMS_ORD_POST,
    OMS_ORD_OTHER,
    OMS_ORD_METHOD_COUNT
} oms_ord_method_t;

/* One request as a handler sees it. */
typedef struct oms_ord_req oms_ord_req_t;

/* What a handler answers: a status, a body (malloc'd text; NULL for none)
 * and up to a few extra headers. Filled by the oms_ord_reply_*() helpers. */
#define OMS_ORD_REPLY_HEADERS_MAX 4u
typedef struct {
    unsigned status;
    char *body;
    const char *content_type;
    struct {
        const char *name;
        char value[160];
    } headers[OMS_ORD_REPLY_HEADERS_MAX];
    size_t header_count;
} oms_ord_reply_t;

/* The request's path (without the query), method, body (NUL-terminated;
 * "" when none) and its headers and query arguments. */
const char *oms_ord_req_path(const oms_ord_req_t *r);
oms_ord_method_t oms_ord_req_method(const oms_ord_req_t *r);
const char *oms_ord_req_body(const oms_ord_req_t *r, size_t *len);
const char *oms_ord_req_header(const oms_ord_req_t *r, const char *name);

/* True when the body was over OMS_ORD_BODY_BYTES_MAX (and was dropped). */
bool oms_ord_req_too_large(const oms_ord_req_t *r);

/* Calls fn(ctx, name, value) for every query argument (value may be NULL
 * for "?x"); stops and returns fn's non-zero value. */
int oms_ord_req_query(const oms_ord_req_t *r, int (*fn)(void *ctx, const char *name,
                                                        const char *value), void *ctx);

/* Sets the reply to status with the JSON value (which it takes over, even
 * on failure). */
void oms_ord_reply_json(oms_ord_reply_t *out, unsigned status, json_t *value);

/* Sets the reply to {"error":{"code","message","field"?}} (field NULL: none). */
void oms_ord_reply_error(oms_ord_reply_t *out, unsigned status, const char *code,
                         const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Adds a header to the reply (value cut to fit). */
void oms_ord_reply_header(oms_ord_reply_t *out, const char *name, const char *value);

/* The 503 of a store that cannot be reached, or a 500 for another store
 * error rc. */
void oms_ord_reply_store_error(oms_ord_reply_t *out, int rc);

/* Starts serving on host:port (0: any) with up to connections connections.
 * Returns a handle and *bound_port, or NULL with a message on stderr. */
typedef struct oms_ord_http oms_ord_http_t;
oms_ord_http_t *oms_ord_http_start(oms_ord_t *svc, const char *host, uint16_t port,
                                   uint32_t connections, uint16_t *bound_port);

/* Stops accepting, lets requests in progress finish, and frees h. */
void oms_ord_http_stop(oms_ord_http_t *h);

/* ==== routing (routes.c) ================================================ */

/* The route names used as the metrics label "route". */
typedef enum {
    OMS_ORD_ROUTE_ORDERS,      /* /orders */
    OMS_ORD_ROUTE_ORDER,       /* /orders/{id} */
    OMS_ORD_ROUTE_EVENTS,      /* /orders/{id}/events */
    OMS_ORD_ROUTE_OPENAPI,     /* /openapi.json */
    OMS_ORD_ROUTE_HEALTH,      /* /health */
    OMS_ORD_ROUTE_METRICS,     /* /metrics */
    OMS_ORD_ROUTE_UNMATCHED,   /* anything else */
    OMS_ORD_ROUTE_COUNT
} oms_ord_route_t;

const char *oms_ord_route_name(oms_ord_route_t route);

/* Finds the route of a path and answers the request into out. */
oms_ord_route_t oms_ord_route(oms_ord_t *svc, const oms_ord_req_t *req, oms_ord_reply_t *out);

/* ==== handlers ========================================================== */

void oms_ord_place(oms_ord_t *svc, const oms_ord_req_t *req, oms_ord_reply_t *out);
void oms_ord_get(oms_ord_t *svc, const char *order_id, oms_ord_reply_t *out);
void oms_ord_list(oms_ord_t *svc, const oms_ord_req_t *req, oms_ord_reply_t *out);
void oms_ord_events(oms_ord_t *svc, const char *order_id, oms_ord_reply_t *out);
void oms_ord_openapi(oms_ord_reply_t *out);

/* ==== validation (validate.c) =========================================== */

/* A validated POST /orders body as an OrderPlaced message. Its strings
 * point into json (kept alive here) and its arrays into this struct. */
typedef struct {
    json_t *json;
    Oms__V1__OrderPlaced msg;
    Oms__V1__Address address;
    Oms__V1__OrderItem items[OMS_ORD_ITEMS_MAX];
    Oms__V1__OrderItem *item_ptrs[OMS_ORD_ITEMS_MAX];
    char order_id[33];
    char idempotency_key[OMS_ORD_IDEMPOTENCY_KEY_BYTES_MAX + 1];
} oms_ord_new_t;

/* A validation failure: the HTTP status, the error code and the field. */
typedef struct {
    unsigned status;
    const char *code;
    char field[96];
    char message[OMS_ORD_ERROR_MESSAGE_BYTES];
} oms_ord_invalid_t;

/* Parses and checks body into *o (order_id, idempotency_key and
 * placed_at_ns are left for the caller). Returns 0, or -EINVAL with *why
 * filled; o->json is released either way by oms_ord_new_free(). */
int oms_ord_validate(const char *body, size_t len, oms_ord_new_t *o, oms_ord_invalid_t *why);
void oms_ord_new_free(oms_ord_new_t *o);

/* True when text is 1..max bytes of [A-Za-z0-9._-]. */
bool oms_ord_id_ok(const char *text, size_t max);

/* Checks an Idempotency-Key header value (NULL: none). */
bool oms_ord_idempotency_key_ok(const char *key);

/* True when two OrderPlaced are the same request: customer, items,
 * currency, payment token and address (not ids, keys or times). */
bool oms_ord_same_request(const Oms__V1__OrderPlaced *a, const Oms__V1__OrderPlaced *b);

/* ==== JSON of orders (order_json.c) ===================================== */

/* "2025-11-26T03:37:00.123456Z" into out (32 bytes). */
void oms_ord_time_format(int64_t ns, char out[32]);

/* The items array of an order. */
json_t *oms_ord_items_json(Oms__V1__OrderItem *const *items, size_t count);

/* The 201 answer of POST /orders (also the replayed one). */
json_t *oms_ord_placed_json(const Oms__V1__OrderPlaced *p);

/* An order folded from its order-<id> stream. */
typedef struct {
    Oms__V1__OrderPlaced *placed;  /* unpacked; NULL when the stream has none */
    const char *status;            /* PENDING, COMPLETED, FAILED */
    char failure_reason[64];
    char shipment_id[OMS_NAME_BYTES_MAX];
    int64_t updated_at_ns;
    uint64_t placed_position;
    uint64_t last_position;
} oms_ord_folded_t;

json_t *oms_ord_folded_json(const oms_ord_folded_t *f);

/* ==== the read model (readmodel.c) ====================================== */

/* Looks order_id up: 0 and *out (the order's JSON), -ENOENT (no such row,
 * or no read model yet), or -EIO with a message on stderr. */
int oms_ord_rm_get(const char *path, const char *order_id, json_t **out);

/* ==== the store (stream.c) ============================================== */


/* Reads order-<id> and folds it. Returns 0 (f->placed NULL when the
 * stream has no OrderPlaced), or an evs error. Free with
 * oms_ord_folded_free(). */
int oms_ord_fold(oms_ord_t *svc, const char *order_id, oms_ord_folded_t *f);
void oms_ord_folded_free(oms_ord_folded_t *f);

/* ==== base64 (base64.c) ================================================ */

/* Writes base64 of data (url: the URL alphabet, unpadded) into out (cap
 * bytes, NUL-terminated, cut to fit). Returns the full length. */
size_t oms_ord_base64(const void *data, size_t len, bool url, char *out, size_t cap);

/* Decodes unpadded base64url text into out. Returns 0 and *len, -EINVAL
 * (not base64url) or -EMSGSIZE (over cap). */
int oms_ord_base64url_decode(const char *text, void *out, size_t cap, size_t *len);

/* The embedded OpenAPI document (oms_ord_openapi.c). */
extern const char oms_ord_openapi_json[];
extern const size_t oms_ord_openapi_json_len;

#endif
