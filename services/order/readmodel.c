/* readmodel.c -- orders from the SQLite read model of oms-projections.
 *
 * The file is opened read-only per request (cheap next to the HTTP round
 * trip, and a rebuilt file is always seen). A file or table that does not
 * exist yet means "no orders projected yet", not an error.
 *
 * GET /orders lists newest first (placed_position descending) with keyset
 * pagination: the cursor is an opaque encoding of the last placed_position
 * of the page, and the next page starts strictly below it, so pages do not
 * shift while new orders arrive.
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

#define RM_BUSY_TIMEOUT_MS 2000
#define RM_CURSOR_BYTES_MAX 64u
#define RM_CURSOR_PREFIX "v1:"

static const char rm_columns[] =
    "order_id, customer_id, status, total_cents, currency, items_json, item_count, "
    "failure_reason, payment_status, inventory_status, shipment_status, shipment_id, "
    "placed_at_ns, updated_at_ns, placed_position, last_position";

enum { C_ID, C_CUSTOMER, C_STATUS, C_TOTAL, C_CURRENCY, C_ITEMS, C_ITEM_COUNT, C_FAILURE,
       C_PAYMENT, C_INVENTORY, C_SHIPMENT, C_SHIPMENT_ID, C_PLACED_AT, C_UPDATED_AT,
       C_PLACED_POS, C_LAST_POS };

static const char *const rm_statuses[] = {"PENDING",   "PAID",         "RESERVED", "SHIPPED",
                                          "COMPLETED", "COMPENSATING", "FAILED"};

/* Opens the read model read-only: 0, -ENOENT (no file), or -EIO. */
static int rm_open(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return rc == SQLITE_CANTOPEN ? -ENOENT : -EIO;
    }
    sqlite3_busy_timeout(db, RM_BUSY_TIMEOUT_MS);
    *out = db;
    return 0;
}

/* Prepares sql: 0, -ENOENT when the schema is not there yet, or -EIO. */
static int rm_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
        return 0;
    const char *msg = sqlite3_errmsg(db);
    if (strncmp(msg, "no such table", 13) == 0)
        return -ENOENT;
    fprintf(stderr, "oms-order: read model: %s\n", msg);
    return -EIO;
}

static json_t *rm_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? json_string((const char *)t) : json_null();
}

static json_t *rm_time(sqlite3_stmt *st, int col)
{
    char text[32];
    oms_ord_time_format(sqlite3_column_int64(st, col), text);
    return json_string(text);
}

/* The row under st as the API's order (same shape as a folded one). */
static json_t *rm_row_json(sqlite3_stmt *st)
{
    const char *items_text = (const char *)sqlite3_column_text(st, C_ITEMS);
    json_t *items = items_text ? json_loads(items_text, 0, NULL) : NULL;
    if (!json_is_array(items)) {
        json_decref(items);
        items = json_array();
    }
    json_t *o = json_object();
    json_object_set_new(o, "order_id", rm_text(st, C_ID));
    json_object_set_new(o, "customer_id", rm_text(st, C_CUSTOMER));
    json_object_set_new(o, "status", rm_text(st, C_STATUS));
    json_object_set_new(o, "items", items);
    json_object_set_new(o, "total_cents", json_integer(sqlite3_column_int64(st, C_TOTAL)));
    json_object_set_new(o, "currency", rm_text(st, C_CURRENCY));
    json_object_set_new(o, "placed_at", rm_time(st, C_PLACED_AT));
    json_object_set_new(o, "item_count", json_integer(sqlite3_column_int64(st, C_ITEM_COUNT)));
    json_object_set_new(o, "failure_reason", rm_text(st, C_FAILURE));
    json_object_set_new(o, "payment_status", rm_text(st, C_PAYMENT));
    json_object_set_new(o, "inventory_status", rm_text(st, C_INVENTORY));
    json_object_set_new(o, "shipment_status", rm_text(st, C_SHIPMENT));
    json_object_set_new(o, "shipment_id", rm_text(st, C_SHIPMENT_ID));
    json_object_set_new(o, "updated_at", rm_time(st, C_UPDATED_AT));
    json_object_set_new(o, "placed_position", json_integer(sqlite3_column_int64(st, C_PLACED_POS)));
    json_object_set_new(o, "last_position", json_integer(sqlite3_column_int64(st, C_LAST_POS)));
    json_object_set_new(o, "source", json_string("readmodel"));
    return o;
}

int oms_ord_rm_get(const char *path, const char *order_id, json_t **out)
{
    sqlite3 *db;
    int rc = rm_open(path, &db);
    if (rc < 0)
        return rc;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM orders WHERE order_id = ?1", rm_columns);
    sqlite3_stmt *st = NULL;
    rc = rm_prepare(db, sql, &st);
    if (rc < 0)
        goto out_close_db;
    sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = rm_row_json(st);
    else if (step == SQLITE_DONE)
        rc = -ENOENT;
    else {
        fprintf(stderr, "oms-order: read model: %s\n", sqlite3_errmsg(db));
        rc = -EIO;
    }
    sqlite3_finalize(st);
out_close_db:
    sqlite3_close(db);
    return rc;
}

/* ---- GET /orders -------------------------------------------------------- */

typedef struct {
    const char *customer;
    const char *status;
    uint32_t limit;
    bool has_limit;
    bool has_cursor;
    int64_t before; /* placed_position below which the page starts */
    oms_ord_invalid_t why;
} rm_query_t;

static void rm_cursor_encode(int64_t position, char *out, size_t cap)
{
    char plain[32];
    int n = snprintf(plain, sizeof plain, RM_CURSOR_PREFIX "%" PRId64, position);
    oms_ord_base64(plain, (size_t)n, true, out, cap);
}

static int rm_cursor_decode(const char *text, int64_t *position)
{
    char plain[RM_CURSOR_BYTES_MAX];
    size_t len;
    if (strlen(text) >= RM_CURSOR_BYTES_MAX ||
        oms_ord_base64url_decode(text, plain, sizeof plain - 1, &len) < 0)
        return -EINVAL;
    plain[len] = '\0';
    size_t pl = sizeof RM_CURSOR_PREFIX - 1;
    if (len <= pl || memcmp(plain, RM_CURSOR_PREFIX, pl) != 0)
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(plain + pl, &end, 10);
    if (*end || errno || v < 0 || plain[pl] < '0' || plain[pl] > '9')
        return -EINVAL;
    *position = v;
    return 0;
}

static int rm_bad(rm_query_t *q, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int rm_bad(rm_query_t *q, const char *code, const char *field, const char *fmt, ...)
{
    q->why.status = 400;
    q->why.code = code;
    snprintf(q->why.field, sizeof q->why.field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->why.message, sizeof q->why.message, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool rm_status_known(const char *s)
{
    for (size_t i = 0; i < sizeof rm_statuses / sizeof rm_statuses[0]; i++)
        if (strcmp(rm_statuses[i], s) == 0)
            return true;
    return false;
}

static int rm_arg_customer(rm_query_t *q, const char *name, const char *value)
{
    if (q->customer)
        return rm_bad(q, "invalid_parameter", name, "customer given twice");
    if (!oms_ord_id_ok(value, OMS_ORD_ID_BYTES_MAX))
        return rm_bad(q, "invalid_parameter", name,
                      "customer is 1..%u characters of [A-Za-z0-9._-]", OMS_ORD_ID_BYTES_MAX);
    q->customer = value;
    return 0;
}

static int rm_arg_status(rm_query_t *q, const char *name, const char *value)
{
    if (q->status)
        return rm_bad(q, "invalid_parameter", name, "status given twice");
    if (!rm_status_known(value))
        return rm_bad(q, "invalid_parameter", name,
                      "status is one of PENDING PAID RESERVED SHIPPED COMPLETED COMPENSATING "
                      "FAILED");
    q->status = value;
    return 0;
}

static int rm_arg_limit(rm_query_t *q, const char *name, const char *value)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (q->has_limit)
        return rm_bad(q, "invalid_parameter", name, "limit given twice");
    if (*end || errno || value[0] < '0' || value[0] > '9' || v < 1 ||
        v > OMS_ORD_LIST_LIMIT_MAX)
        return rm_bad(q, "invalid_parameter", name, "limit is an integer in [1, %u]",
                      OMS_ORD_LIST_LIMIT_MAX);
    q->limit = (uint32_t)v;
    q->has_limit = true;
    return 0;
}

static int rm_arg_cursor(rm_query_t *q, const char *name, const char *value)
{
    if (q->has_cursor || rm_cursor_decode(value, &q->before) < 0)
        return rm_bad(q, "invalid_cursor", name, "cursor must be a next_cursor given by this API");
    q->has_cursor = true;
    return 0;
}

/* One query argument of GET /orders. */
static int rm_query_arg(void *ctx, const char *name, const char *value)
{
    static const struct {
        const char *name;
        int (*fn)(rm_query_t *q, const char *name, const char *value);
    } args[] = {{"customer", rm_arg_customer},
                {"status", rm_arg_status},
                {"limit", rm_arg_limit},
                {"cursor", rm_arg_cursor}};
    rm_query_t *q = ctx;
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
        if (strcmp(name, args[i].name) != 0)
            continue;
        if (!value || !*value)
            return rm_bad(q, "invalid_parameter", name, "%s needs a value", name);
        return args[i].fn(q, name, value);
    }
    return rm_bad(q, "invalid_parameter", name,
                  "unknown parameter: use customer, status, limit, cursor");
}

/* Runs the page query; rows go to orders, *more tells whether there are
 * more. Returns 0, -ENOENT (no read model yet) or -EIO. */
static int rm_page(const char *path, const rm_query_t *q, json_t *orders, bool *more,
                   int64_t *last_pos)
{
    sqlite3 *db;
    int rc = rm_open(path, &db);
    if (rc < 0)
        return rc;
    char sql[768];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM orders WHERE placed_position < ?3%s%s "
             "ORDER BY placed_position DESC LIMIT ?4",
             rm_columns, q->customer ? " AND customer_id = ?1" : "",
             q->status ? " AND status = ?2" : "");
    sqlite3_stmt *st = NULL;
    rc = rm_prepare(db, sql, &st);
    if (rc < 0)
        goto out_close_db;
    if (q->customer)
        sqlite3_bind_text(st, 1, q->customer, -1, SQLITE_STATIC);
    if (q->status)
        sqlite3_bind_text(st, 2, q->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, q->has_cursor ? q->before : INT64_MAX);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)q->limit + 1);
    int step;
    *more = false;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (json_array_size(orders) == q->limit) {
            *more = true;
            break;
        }
        json_array_append_new(orders, rm_row_json(st));
        *last_pos = sqlite3_column_int64(st, C_PLACED_POS);
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        fprintf(stderr, "oms-order: read model: %s\n", sqlite3_errmsg(db));
        rc = -EIO;
    }
    sqlite3_finalize(st);
out_close_db:
    sqlite3_close(db);
    return rc;
}

void oms_ord_list(oms_ord_t *svc, const oms_ord_req_t *req, oms_ord_reply_t *out)
{
    rm_query_t q = {.limit = OMS_ORD_LIST_LIMIT_DEFAULT};
    if (oms_ord_req_query(req, rm_query_arg, &q) != 0) {
        oms_ord_reply_error(out, q.why.status, q.why.code, q.why.field, "%s", q.why.message);
        return;
    }
    json_t *orders = json_array();
    bool more = false;
    int64_t last_pos = 0;
    int rc = rm_page(svc->readmodel_path, &q, orders, &more, &last_pos);
    if (rc == -EIO) {
        json_decref(orders);
        oms_ord_reply_error(out, 500, "readmodel_error", NULL, "the read model failed");
        return;
    }
    json_t *root = json_object();
    json_object_set_new(root, "orders", orders); /* empty when there is no read model yet */
    if (more) {
        char cursor[RM_CURSOR_BYTES_MAX];
        rm_cursor_encode(last_pos, cursor, sizeof cursor);
        json_object_set_new(root, "next_cursor", json_string(cursor));
    }
    oms_ord_reply_json(out, 200, root);
}
