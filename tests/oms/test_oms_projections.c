/* test_oms_projections.c -- oms-projections against a real evstored: the
 * rows every path of an order leaves, exact counters across kill -9 and
 * restarts, --rebuild and --digest, bad payloads, store restarts.
 *
 * The tests append the domain events themselves (no other service runs),
 * so the expected rows are known exactly, and wait on the read model's
 * checkpoint (polling the database) rather than sleeping. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oms.h"
#include "oms.pb-c.h"
#include "oms_curl.h"
#include "oms_fixture.h"
#include "proc.h"
#include "server_fixture.h"

#define CATCH_UP_MS_MAX 60000     /* the read model reaches the log's end within this */
#define PROGRAM_MS_MAX 20000      /* a --digest run ends within this */
#define BATCH_STREAMS_MAX 100u    /* stream entries in one append */
#define BATCH_EVENTS_MAX 256u     /* events in one append */
#define ROW_TEXT_BYTES_MAX 1024u  /* a row rendered as "a|b|c" */

#define BIG_ORDERS 3400u          /* x 6 events: ~20k events */
#define BIG_SKUS 8u
#define BIG_GROUP BIG_SKUS        /* orders per pair of appends: a stream at most once each */
#define BIG_CUSTOMERS 40u
#define BIG_STOCK 100000u

/* ==== the fixture: evstored, a connection, a temp dir, the program ===== */

static struct {
    test_server_t srv;
    evs_conn_t *conn;
    char dir[PATH_MAX];
    char db[PATH_MAX + 32];
    const char *args[8];
    oms_proc_t proj;
    uint64_t last_position; /* of the last event appended */
    unsigned seq;           /* makes every event id unique */
} fx;

static void store_connect(void)
{
    evs_options_t opts;
    evs_options_default(&opts);
    opts.port = fx.srv.port;
    opts.client_name = "test_oms_projections";
    ck_assert_int_eq(evs_connect(&opts, &fx.conn), 0);
}

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    ck_assert_int_eq(test_server_start(&fx.srv, NULL), 0);
    store_connect();
    ck_assert_int_eq(test_tmpdir_make("oms-proj", fx.dir), 0);
    snprintf(fx.db, sizeof fx.db, "%s/model/readmodel.db", fx.dir);
}

static void teardown(void)
{
    oms_proc_kill(&fx.proj);
    evs_close(fx.conn);
    test_server_destroy(&fx.srv);
    test_tmpdir_remove(fx.dir);
}

/* Starts oms-projections on the temp db with extra flags (NULL-terminated). */
static void proj_start(const char *const *extra)
{
    int n = 0;
    fx.args[n++] = "--db";
    fx.args[n++] = fx.db;
    for (int i = 0; extra && extra[i] && n < 7; i++)
        fx.args[n++] = extra[i];
    fx.args[n] = NULL;
    ck_assert_int_eq(oms_proc_start(&fx.proj, "oms-projections", fx.srv.port, fx.dir, fx.args),
                     0);
}

/* ==== appending domain events ========================================== */

typedef struct {
    evs_stream_append_t streams[BATCH_STREAMS_MAX];
    char names[BATCH_STREAMS_MAX][64];
    evs_event_t events[BATCH_EVENTS_MAX];
    size_t stream_count, event_count;
} batch_t;

/* Adds msg to the batch, in stream (after the events added before it). A
 * stream gets one entry per run of consecutive events. */
static void batch_add(batch_t *b, const char *stream, const void *msg)
{
    ck_assert_uint_lt(b->event_count, BATCH_EVENTS_MAX);
    evs_event_t *ev = &b->events[b->event_count];
    char step[32];
    snprintf(step, sizeof step, "%u", fx.seq++);
    ck_assert_int_eq(oms_event_make(ev, msg, stream, step), 0);
    evs_stream_append_t *last = b->stream_count ? &b->streams[b->stream_count - 1] : NULL;
    if (last && strcmp(last->stream, stream) == 0) {
        last->event_count++;
    } else {
        ck_assert_uint_lt(b->stream_count, BATCH_STREAMS_MAX);
        size_t i = b->stream_count++;
        snprintf(b->names[i], sizeof b->names[i], "%s", stream);
        b->streams[i] = (evs_stream_append_t){
            .stream = b->names[i],
            .expected_version = EVS_EXPECT_ANY,
            .events = ev,
            .event_count = 1,
        };
    }
    b->event_count++;
}

/* Appends the batch as one append; returns the position of its last event. */
static uint64_t batch_send(batch_t *b)
{
    evs_append_result_t res;
    int rc = evs_append(fx.conn, b->streams, b->stream_count, &res);
    ck_assert_msg(rc == 0, "append: %s: %s", evs_strerror(rc), evs_errmsg());
    for (size_t i = 0; i < b->event_count; i++)
        oms_event_free_data(&b->events[i]);
    b->stream_count = b->event_count = 0;
    fx.last_position = res.first_position + res.event_count - 1;
    return fx.last_position;
}

/* Appends one event to stream; returns its position. */
static uint64_t put(const char *stream, const void *msg)
{
    static batch_t b;
    batch_add(&b, stream, msg);
    return batch_send(&b);
}

/* Appends raw bytes as an event of type; returns its position. */
static uint64_t put_raw(const char *stream, const char *type, const void *data, size_t len)
{
    evs_event_t ev = {.type = type, .data = data, .data_len = len};
    ck_assert_int_eq(evs_id_random(ev.id), 0);
    evs_stream_append_t s = {.stream = stream, .expected_version = EVS_EXPECT_ANY,
                             .events = &ev, .event_count = 1};
    evs_append_result_t res;
    ck_assert_int_eq(evs_append(fx.conn, &s, 1, &res), 0);
    fx.last_position = res.first_position;
    return res.first_position;
}

static void stream_name(char *out, size_t cap, const char *category, const char *id)
{
    int n = snprintf(out, cap, "%s-%s", category, id);
    ck_assert(n > 0 && (size_t)n < cap);
}

/* ---- one message of each kind ---- */

static uint64_t order_placed(const char *order_id, const char *customer_id,
                             Oms__V1__OrderItem **items, size_t n_items)
{
    Oms__V1__OrderPlaced m = OMS__V1__ORDER_PLACED__INIT;
    m.order_id = (char *)order_id;
    m.customer_id = (char *)customer_id;
    m.items = items;
    m.n_items = n_items;
    for (size_t i = 0; i < n_items; i++)
        m.total_cents += items[i]->quantity * items[i]->unit_price_cents;
    m.currency = "EUR";
    m.placed_at_ns = 1700000000000000000LL;
    char s[64];
    stream_name(s, sizeof s, "order", order_id);
    return put(s, &m);
}

static uint64_t payment_processed(const char *order_id, int64_t cents)
{
    Oms__V1__PaymentProcessed m = OMS__V1__PAYMENT_PROCESSED__INIT;
    m.order_id = (char *)order_id;
    m.amount_cents = cents;
    m.charge_id = "ch-1";
    char s[64];
    stream_name(s, sizeof s, "payment", order_id);
    return put(s, &m);
}

static uint64_t payment_failed(const char *order_id, int64_t cents)
{
    Oms__V1__PaymentFailed m = OMS__V1__PAYMENT_FAILED__INIT;
    m.order_id = (char *)order_id;
    m.amount_cents = cents;
    m.reason = "card_declined";
    char s[64];
    stream_name(s, sizeof s, "payment", order_id);
    return put(s, &m);
}

static uint64_t payment_refunded(const char *order_id, int64_t cents)
{
    Oms__V1__PaymentRefunded m = OMS__V1__PAYMENT_REFUNDED__INIT;
    m.order_id = (char *)order_id;
    m.amount_cents = cents;
    char s[64];
    stream_name(s, sizeof s, "payment", order_id);
    return put(s, &m);
}

static uint64_t stock_event(const char *kind, const char *sku, const char *order_id,
                            uint32_t quantity)
{
    char s[64];
    stream_name(s, sizeof s, "stock", sku);
    if (strcmp(kind, "added") == 0) {
        Oms__V1__StockAdded m = OMS__V1__STOCK_ADDED__INIT;
        m.sku = (char *)sku;
        m.quantity = quantity;
        m.reason = "seed";
        return put(s, &m);
    }
    if (strcmp(kind, "reserved") == 0) {
        Oms__V1__StockReserved m = OMS__V1__STOCK_RESERVED__INIT;
        m.sku = (char *)sku;
        m.order_id = (char *)order_id;
        m.quantity = quantity;
        return put(s, &m);
    }
    Oms__V1__StockReleased m = OMS__V1__STOCK_RELEASED__INIT;
    m.sku = (char *)sku;
    m.order_id = (char *)order_id;
    m.quantity = quantity;
    return put(s, &m);
}

/* The events that carry only an order id (and a reason), by type. */
static uint64_t order_event(const char *type, const char *order_id, const char *text)
{
    char s[64];
    char *id = (char *)order_id, *t = (char *)text;
    if (strcmp(type, "InventoryReserved") == 0) {
        Oms__V1__InventoryReserved m = OMS__V1__INVENTORY_RESERVED__INIT;
        m.order_id = id;
        stream_name(s, sizeof s, "inventory", order_id);
        return put(s, &m);
    }
    if (strcmp(type, "InventoryReservationFailed") == 0) {
        Oms__V1__InventoryReservationFailed m = OMS__V1__INVENTORY_RESERVATION_FAILED__INIT;
        m.order_id = id;
        m.reason = t;
        stream_name(s, sizeof s, "inventory", order_id);
        return put(s, &m);
    }
    if (strcmp(type, "InventoryReleased") == 0) {
        Oms__V1__InventoryReleased m = OMS__V1__INVENTORY_RELEASED__INIT;
        m.order_id = id;
        stream_name(s, sizeof s, "inventory", order_id);
        return put(s, &m);
    }
    if (strcmp(type, "OrderShipped") == 0) {
        Oms__V1__OrderShipped m = OMS__V1__ORDER_SHIPPED__INIT;
        m.order_id = id;
        m.shipment_id = t;
        m.carrier = "post";
        stream_name(s, sizeof s, "shipment", order_id);
        return put(s, &m);
    }
    if (strcmp(type, "ShipmentFailed") == 0) {
        Oms__V1__ShipmentFailed m = OMS__V1__SHIPMENT_FAILED__INIT;
        m.order_id = id;
        m.reason = t;
        stream_name(s, sizeof s, "shipment", order_id);
        return put(s, &m);
    }
    if (strcmp(type, "RefundRequested") == 0) {
        Oms__V1__RefundRequested m = OMS__V1__REFUND_REQUESTED__INIT;
        m.order_id = id;
        m.reason = t;
        stream_name(s, sizeof s, "saga", order_id);
        return put(s, &m);
    }
    if (strcmp(type, "ReleaseRequested") == 0) {
        Oms__V1__ReleaseRequested m = OMS__V1__RELEASE_REQUESTED__INIT;
        m.order_id = id;
        m.reason = t;
        stream_name(s, sizeof s, "saga", order_id);
        return put(s, &m);
    }
    if (strcmp(type, "PaymentRequested") == 0) { /* not applied: filtered out */
        Oms__V1__PaymentRequested m = OMS__V1__PAYMENT_REQUESTED__INIT;
        m.order_id = id;
        stream_name(s, sizeof s, "saga", order_id);
        return put(s, &m);
    }
    if (strcmp(type, "OrderCompleted") == 0) {
        Oms__V1__OrderCompleted m = OMS__V1__ORDER_COMPLETED__INIT;
        m.order_id = id;
        m.shipment_id = t;
        stream_name(s, sizeof s, "order", order_id);
        return put(s, &m);
    }
    ck_assert_str_eq(type, "OrderFailed");
    Oms__V1__OrderFailed m = OMS__V1__ORDER_FAILED__INIT;
    m.order_id = id;
    m.reason = t;
    stream_name(s, sizeof s, "order", order_id);
    return put(s, &m);
}

/* ==== reading the read model =========================================== */

/* The read model opened read-only (NULL while it does not exist). */
static sqlite3 *model_open(void)
{
    sqlite3 *db = NULL;
    if (access(fx.db, F_OK) != 0 ||
        sqlite3_open_v2(fx.db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* The first row of query as "a|b|c" (NULL as "NULL"); "" when no row;
 * "?" when the query fails. */
static const char *row_text(const char *query)
{
    static char out[ROW_TEXT_BYTES_MAX];
    snprintf(out, sizeof out, "?");
    sqlite3 *db = model_open();
    sqlite3_stmt *st = NULL;
    if (db && sqlite3_prepare_v2(db, query, -1, &st, NULL) == SQLITE_OK) {
        int rc = sqlite3_step(st);
        out[0] = '\0';
        for (int c = 0; rc == SQLITE_ROW && c < sqlite3_column_count(st); c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);
            size_t len = strlen(out);
            snprintf(out + len, sizeof out - len, "%s%s", c ? "|" : "", v ? v : "NULL");
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            snprintf(out, sizeof out, "?");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* The checkpoint, or -1 when there is none (yet). */
static int64_t checkpoint(void)
{
    const char *t = row_text("SELECT position FROM projection_checkpoint WHERE name = 'main'");
    return *t && *t != '?' ? strtoll(t, NULL, 10) : -1;
}

static bool reached_last(void *ctx)
{
    (void)ctx;
    return checkpoint() >= (int64_t)fx.last_position;
}

static bool passed_some(void *ctx)
{
    int64_t cp = checkpoint();
    return cp > *(const int64_t *)ctx;
}

/* Waits until the read model has applied everything appended. */
static void wait_caught_up(void)
{
    ck_assert_msg(oms_wait_until(reached_last, NULL, CATCH_UP_MS_MAX),
                  "checkpoint %" PRId64 " never reached %" PRIu64, checkpoint(),
                  fx.last_position);
}

/* The value of a series of oms-projections' /metrics (-1: not found). */
static double metric(const char *series)
{
    oms_curl_response_t res;
    ck_assert_int_eq(oms_curl_once("127.0.0.1", fx.proj.port, 5000, "GET", "/metrics", NULL, NULL,
                                0, &res),
                     0);
    ck_assert_int_eq(res.status, 200);
    double v = -1;
    size_t n = strlen(series);
    for (const char *line = res.body; line && *line; line = strchr(line, '\n')) {
        line += *line == '\n';
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
    }
    oms_curl_response_free(&res);
    return v;
}

/* Runs oms-projections with args (after the program name), stdout and
 * stderr to files in the temp dir. Returns its exit status, or -1. */
static int program_run(const char *const *args, char *out, size_t out_cap, char *err,
                       size_t err_cap)
{
    char path_buf[PATH_MAX], out_path[PATH_MAX + 16], err_path[PATH_MAX + 16];
    const char *path = oms_program_path("oms-projections", path_buf, sizeof path_buf);
    snprintf(out_path, sizeof out_path, "%s/run.out", fx.dir);
    snprintf(err_path, sizeof err_path, "%s/run.err", fx.dir);
    const char *argv[16] = {path};
    for (int i = 0; args[i] && i < 14; i++)
        argv[i + 1] = args[i];
    proc_spec_t spec = {.argv = argv,
                        .out = {PROC_IO_FILE, .path = out_path},
                        .err = {PROC_IO_FILE, .path = err_path}};
    int status = proc_run(&spec, PROGRAM_MS_MAX);
    if (status < 0)
        return -1;
    FILE *f = fopen(out_path, "r");
    size_t n = f ? fread(out, 1, out_cap - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    f = fopen(err_path, "r");
    n = f ? fread(err, 1, err_cap - 1, f) : 0;
    err[n] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* --digest of the temp db: "digest <16 hex>" (the line, without newline). */
static const char *digest(char *out, size_t cap)
{
    char err[1024];
    const char *args[] = {"--digest", "--db", fx.db, NULL};
    ck_assert_int_eq(program_run(args, out, cap, err, sizeof err), 0);
    out[strcspn(out, "\n")] = '\0';
    ck_assert_int_eq((int)strlen(out), 7 + 16);
    ck_assert(strncmp(out, "digest ", 7) == 0);
    return out;
}

/* ==== the scenario: every path of an order ============================= */

static Oms__V1__OrderItem item_a2 = {PROTOBUF_C_MESSAGE_INIT(&oms__v1__order_item__descriptor),
                                     "sku-a", 2, 500};
static Oms__V1__OrderItem item_b1 = {PROTOBUF_C_MESSAGE_INIT(&oms__v1__order_item__descriptor),
                                     "sku-b", 1, 1000};
static Oms__V1__OrderItem item_b1_700 = {
    PROTOBUF_C_MESSAGE_INIT(&oms__v1__order_item__descriptor), "sku-b", 1, 700};
static Oms__V1__OrderItem item_c5 = {PROTOBUF_C_MESSAGE_INIT(&oms__v1__order_item__descriptor),
                                     "sku-c", 5, 100};
static Oms__V1__OrderItem item_a1 = {PROTOBUF_C_MESSAGE_INIT(&oms__v1__order_item__descriptor),
                                     "sku-a", 1, 300};
static Oms__V1__OrderItem item_b2 = {PROTOBUF_C_MESSAGE_INIT(&oms__v1__order_item__descriptor),
                                     "sku-b", 2, 100};
static Oms__V1__OrderItem item_c1 = {PROTOBUF_C_MESSAGE_INIT(&oms__v1__order_item__descriptor),
                                     "sku-c", 1, 150};

/* Positions of the OrderPlaced events (placed_position). */
static struct {
    uint64_t completed, declined, nostock, noship, open, pending;
    uint64_t completed_last; /* the late RefundRequested of the completed order */
} placed;

/* Stock, then six orders: completed; payment declined; out of stock (with
 * a refund); shipping failed (release and refund); paid and still open;
 * only placed. Saga commands the model does not apply are mixed in. */
static void scenario_append(void)
{
    stock_event("added", "sku-a", NULL, 10);
    stock_event("added", "sku-b", NULL, 5);
    stock_event("added", "sku-c", NULL, 1);

    Oms__V1__OrderItem *completed_items[] = {&item_a2, &item_b1};
    placed.completed = order_placed("o-completed", "cust-1", completed_items, 2);
    order_event("PaymentRequested", "o-completed", NULL);
    payment_processed("o-completed", 2000);
    stock_event("reserved", "sku-a", "o-completed", 2);
    stock_event("reserved", "sku-b", "o-completed", 1);
    order_event("InventoryReserved", "o-completed", NULL);
    order_event("OrderShipped", "o-completed", "ship-1");
    order_event("OrderCompleted", "o-completed", "ship-1");

    Oms__V1__OrderItem *declined_items[] = {&item_b1_700};
    placed.declined = order_placed("o-declined", "cust-1", declined_items, 1);
    payment_failed("o-declined", 700);
    order_event("OrderFailed", "o-declined", "payment_declined");

    Oms__V1__OrderItem *nostock_items[] = {&item_c5};
    placed.nostock = order_placed("o-nostock", "cust-2", nostock_items, 1);
    payment_processed("o-nostock", 500);
    order_event("InventoryReservationFailed", "o-nostock", "out_of_stock");
    order_event("RefundRequested", "o-nostock", "out_of_stock");
    payment_refunded("o-nostock", 500);
    order_event("OrderFailed", "o-nostock", "out_of_stock");

    Oms__V1__OrderItem *noship_items[] = {&item_a1};
    placed.noship = order_placed("o-noship", "cust-2", noship_items, 1);
    payment_processed("o-noship", 300);
    stock_event("reserved", "sku-a", "o-noship", 1);
    order_event("InventoryReserved", "o-noship", NULL);
    order_event("ShipmentFailed", "o-noship", "carrier_down");
    order_event("ReleaseRequested", "o-noship", "shipping_failed");
    order_event("RefundRequested", "o-noship", "shipping_failed");
    stock_event("released", "sku-a", "o-noship", 1);
    order_event("InventoryReleased", "o-noship", NULL);
    payment_refunded("o-noship", 300);
    order_event("OrderFailed", "o-noship", "shipping_failed");

    Oms__V1__OrderItem *open_items[] = {&item_b2};
    placed.open = order_placed("o-open", "cust-3", open_items, 1);
    payment_processed("o-open", 200);

    Oms__V1__OrderItem *pending_items[] = {&item_c1};
    placed.pending = order_placed("o-pending", "cust-3", pending_items, 1);

    /* Late: a re-issued refund request after the verdict changes no status. */
    placed.completed_last = order_event("RefundRequested", "o-completed", "late");
}

static const char *order_row(const char *order_id)
{
    char q[512];
    snprintf(q, sizeof q,
             "SELECT status, customer_id, total_cents, currency, item_count, failure_reason,"
             " payment_status, inventory_status, shipment_status, shipment_id"
             " FROM orders WHERE order_id = '%s'",
             order_id);
    return row_text(q);
}

static const char *customer_row(const char *customer_id)
{
    char q[256];
    snprintf(q, sizeof q,
             "SELECT orders_placed, orders_completed, orders_failed, spent_cents,"
             " refunded_cents, last_order_id FROM customers WHERE customer_id = '%s'",
             customer_id);
    return row_text(q);
}

static const char *stock_row(const char *sku)
{
    char q[256];
    snprintf(q, sizeof q, "SELECT on_hand, reserved, available FROM stock WHERE sku = '%s'",
             sku);
    return row_text(q);
}

static void scenario_check_rows(void)
{
    ck_assert_str_eq(order_row("o-completed"),
                     "COMPLETED|cust-1|2000|EUR|2|NULL|charged|reserved|shipped|ship-1");
    ck_assert_str_eq(order_row("o-declined"),
                     "FAILED|cust-1|700|EUR|1|payment_declined|declined|NULL|NULL|NULL");
    ck_assert_str_eq(order_row("o-nostock"),
                     "FAILED|cust-2|500|EUR|1|out_of_stock|refunded|failed|NULL|NULL");
    ck_assert_str_eq(order_row("o-noship"),
                     "FAILED|cust-2|300|EUR|1|shipping_failed|refunded|released|failed|NULL");
    ck_assert_str_eq(order_row("o-open"), "PAID|cust-3|200|EUR|1|NULL|charged|NULL|NULL|NULL");
    ck_assert_str_eq(order_row("o-pending"), "PENDING|cust-3|150|EUR|1|NULL|NULL|NULL|NULL|NULL");
    ck_assert_str_eq(row_text("SELECT COUNT(*) FROM orders"), "6");

    ck_assert_str_eq(customer_row("cust-1"), "2|1|1|2000|0|o-declined");
    ck_assert_str_eq(customer_row("cust-2"), "2|0|2|800|800|o-noship");
    ck_assert_str_eq(customer_row("cust-3"), "2|0|0|200|0|o-pending");
    ck_assert_str_eq(row_text("SELECT COUNT(*) FROM customers"), "3");

    ck_assert_str_eq(stock_row("sku-a"), "10|2|8");
    ck_assert_str_eq(stock_row("sku-b"), "5|1|4");
    ck_assert_str_eq(stock_row("sku-c"), "1|0|1");
    ck_assert_str_eq(row_text("SELECT COUNT(*) FROM stock WHERE sku LIKE 'sku-_'"), "3");
}

/* ==== tests ============================================================ */

START_TEST(every_path_of_an_order_leaves_the_exact_rows)
{
    proj_start(NULL);
    scenario_append();
    wait_caught_up();
    scenario_check_rows();
    char q[256];
    snprintf(q, sizeof q,
             "SELECT items_json, placed_position, last_position, placed_at_ns FROM orders"
             " WHERE order_id = 'o-completed'");
    char expect[512];
    snprintf(expect, sizeof expect,
             "[{\"sku\":\"sku-a\",\"quantity\":2,\"unit_price_cents\":500},"
             "{\"sku\":\"sku-b\",\"quantity\":1,\"unit_price_cents\":1000}]|%" PRIu64
             "|%" PRIu64 "|1700000000000000000",
             placed.completed, placed.completed_last);
    ck_assert_str_eq(row_text(q), expect);
    ck_assert_int_eq((int)metric("oms_projection_events_total{service=\"projections\","
                                 "type=\"OrderPlaced\"}"),
                     6);
    ck_assert_int_eq((int)metric("oms_projection_position{service=\"projections\"}"),
                     (int)fx.last_position);
}
END_TEST

START_TEST(a_model_started_after_the_events_catches_up_to_the_same_rows)
{
    scenario_append();
    proj_start(NULL);
    wait_caught_up();
    scenario_check_rows();
}
END_TEST

/* ---- the big run: kill -9 in the middle, twice ---- */

typedef struct {
    int64_t placed[BIG_CUSTOMERS], spent[BIG_CUSTOMERS];
    int64_t reserved[BIG_SKUS];
} big_expect_t;

/* Appends orders [from, to): each placed, paid, reserved (stock and
 * inventory), shipped and completed, BIG_GROUP orders per two appends. */
static void big_append(unsigned from, unsigned to, big_expect_t *want)
{
    static batch_t b;
    for (unsigned g = from; g < to; g += BIG_GROUP) {
        unsigned end = g + BIG_GROUP < to ? g + BIG_GROUP : to;
        char ids[BIG_GROUP][32], cust[BIG_GROUP][32], s[64];
        Oms__V1__OrderItem it[BIG_GROUP];
        for (unsigned i = g; i < end; i++) {
            unsigned k = i - g;
            snprintf(ids[k], sizeof ids[k], "big-%u", i);
            snprintf(cust[k], sizeof cust[k], "bigcust-%u", i % BIG_CUSTOMERS);
            oms__v1__order_item__init(&it[k]);
            char sku[16];
            snprintf(sku, sizeof sku, "bigsku-%u", i % BIG_SKUS);
            it[k].sku = strdup(sku);
            it[k].quantity = 1 + i % 3;
            it[k].unit_price_cents = 250;
            Oms__V1__OrderItem *items[] = {&it[k]};
            Oms__V1__OrderPlaced m = OMS__V1__ORDER_PLACED__INIT;
            m.order_id = ids[k];
            m.customer_id = cust[k];
            m.items = items;
            m.n_items = 1;
            m.total_cents = it[k].quantity * 250;
            m.currency = "EUR";
            stream_name(s, sizeof s, "order", ids[k]);
            batch_add(&b, s, &m);
            want->placed[i % BIG_CUSTOMERS]++;
            want->spent[i % BIG_CUSTOMERS] += m.total_cents;
            want->reserved[i % BIG_SKUS] += it[k].quantity;
        }
        for (unsigned i = g; i < end; i++) {
            unsigned k = i - g;
            Oms__V1__PaymentProcessed m = OMS__V1__PAYMENT_PROCESSED__INIT;
            m.order_id = ids[k];
            m.amount_cents = it[k].quantity * 250;
            stream_name(s, sizeof s, "payment", ids[k]);
            batch_add(&b, s, &m);
        }
        for (unsigned i = g; i < end; i++) {
            unsigned k = i - g;
            Oms__V1__StockReserved sr = OMS__V1__STOCK_RESERVED__INIT;
            sr.sku = it[k].sku;
            sr.order_id = ids[k];
            sr.quantity = it[k].quantity;
            stream_name(s, sizeof s, "stock", it[k].sku);
            batch_add(&b, s, &sr);
            Oms__V1__InventoryReserved ir = OMS__V1__INVENTORY_RESERVED__INIT;
            ir.order_id = ids[k];
            stream_name(s, sizeof s, "inventory", ids[k]);
            batch_add(&b, s, &ir);
            Oms__V1__OrderShipped os = OMS__V1__ORDER_SHIPPED__INIT;
            os.order_id = ids[k];
            os.shipment_id = ids[k];
            stream_name(s, sizeof s, "shipment", ids[k]);
            batch_add(&b, s, &os);
        }
        batch_send(&b);
        for (unsigned i = g; i < end; i++) {
            unsigned k = i - g;
            Oms__V1__OrderCompleted m = OMS__V1__ORDER_COMPLETED__INIT;
            m.order_id = ids[k];
            stream_name(s, sizeof s, "order", ids[k]);
            batch_add(&b, s, &m);
            free(it[k].sku);
        }
        batch_send(&b);
    }
}

static void big_check(const big_expect_t *want)
{
    char q[256], expect[128];
    snprintf(expect, sizeof expect, "%u|%u", BIG_ORDERS, BIG_ORDERS);
    ck_assert_str_eq(row_text("SELECT COUNT(*), SUM(status = 'COMPLETED') FROM orders"
                              " WHERE order_id LIKE 'big-%'"),
                     expect);
    for (unsigned c = 0; c < BIG_CUSTOMERS; c++) {
        snprintf(q, sizeof q,
                 "SELECT orders_placed, orders_completed, orders_failed, spent_cents,"
                 " refunded_cents FROM customers WHERE customer_id = 'bigcust-%u'",
                 c);
        snprintf(expect, sizeof expect, "%" PRId64 "|%" PRId64 "|0|%" PRId64 "|0",
                 want->placed[c], want->placed[c], want->spent[c]);
        ck_assert_str_eq(row_text(q), expect);
    }
    for (unsigned k = 0; k < BIG_SKUS; k++) {
        snprintf(q, sizeof q,
                 "SELECT on_hand, reserved, available FROM stock WHERE sku = 'bigsku-%u'", k);
        snprintf(expect, sizeof expect, "%u|%" PRId64 "|%" PRId64, BIG_STOCK, want->reserved[k],
                 (int64_t)BIG_STOCK - want->reserved[k]);
        ck_assert_str_eq(row_text(q), expect);
    }
}

START_TEST(kill_9_in_the_middle_neither_loses_nor_double_applies)
{
    static big_expect_t want;
    memset(&want, 0, sizeof want);
    for (unsigned k = 0; k < BIG_SKUS; k++) {
        char sku[16];
        snprintf(sku, sizeof sku, "bigsku-%u", k);
        stock_event("added", sku, NULL, BIG_STOCK);
    }
    const char *small_batches[] = {"--batch-max", "64", NULL};
    proj_start(small_batches);
    const unsigned third = BIG_ORDERS / 3 / BIG_GROUP * BIG_GROUP;

    /* Following live: killed as soon as the first third is appended (it
     * may be just behind, or caught up). */
    big_append(0, third, &want);
    oms_proc_kill(&fx.proj);
    int64_t at_kill = checkpoint();
    ck_assert_int_gt(at_kill, 0);
    big_append(third, 2 * third, &want);

    /* Catching up from disk: killed once it has moved on from there. */
    ck_assert_int_eq(oms_proc_restart(&fx.proj), 0);
    ck_assert(oms_wait_until(passed_some, &at_kill, CATCH_UP_MS_MAX));
    oms_proc_kill(&fx.proj);
    int64_t at_second_kill = checkpoint();
    ck_assert_int_lt(at_second_kill, (int64_t)fx.last_position); /* really in the middle */

    ck_assert_int_eq(oms_proc_restart(&fx.proj), 0);
    big_append(2 * third, BIG_ORDERS, &want);
    wait_caught_up();
    fprintf(stderr, "big run: %" PRIu64 " events; killed at checkpoints %" PRId64 " and %" PRId64
                    "\n",
            fx.last_position + 1, at_kill, at_second_kill);
    big_check(&want);
}
END_TEST

START_TEST(rebuild_gives_the_same_digest)
{
    proj_start(NULL);
    scenario_append();
    wait_caught_up();
    char before[64], tampered[64], after[64];
    digest(before, sizeof before);
    int status = oms_proc_stop(&fx.proj);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Rows that are wrong, which only a rebuild puts right. */
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(fx.db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "UPDATE orders SET status = 'BOGUS'; DELETE FROM stock;"
                                  " UPDATE customers SET spent_cents = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ck_assert_str_ne(digest(tampered, sizeof tampered), before);

    const char *rebuild[] = {"--rebuild", NULL};
    proj_start(rebuild);
    wait_caught_up();
    status = oms_proc_stop(&fx.proj);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_str_eq(digest(after, sizeof after), before);
    scenario_check_rows();
}
END_TEST

START_TEST(a_bad_payload_is_skipped_and_counted)
{
    proj_start(NULL);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
    put_raw("order-bad1", "OrderPlaced", garbage, sizeof garbage);
    Oms__V1__OrderPlaced empty = OMS__V1__ORDER_PLACED__INIT; /* decodes; no order id */
    put("order-bad2", &empty);
    Oms__V1__OrderItem *items[] = {&item_c1};
    order_placed("o-good", "cust-9", items, 1);
    put_raw("payment-o-good", "PaymentProcessed", garbage, sizeof garbage);
    payment_processed("o-good", 150);
    wait_caught_up();
    ck_assert_str_eq(order_row("o-good"), "PAID|cust-9|150|EUR|1|NULL|charged|NULL|NULL|NULL");
    ck_assert_str_eq(row_text("SELECT COUNT(*) FROM orders"), "1");
    ck_assert_str_eq(customer_row("cust-9"), "1|0|0|150|0|o-good");
    ck_assert_int_eq((int)metric("oms_projection_bad_events_total{service=\"projections\"}"), 3);
    ck_assert_int_eq((int)metric("oms_projection_events_total{service=\"projections\","
                                 "type=\"OrderPlaced\"}"),
                     1);
    ck_assert_int_gt(fx.proj.pid, 0);
    ck_assert_int_eq(kill(fx.proj.pid, 0), 0); /* still running */
}
END_TEST

START_TEST(digest_of_a_missing_db_is_a_clear_error)
{
    char missing[PATH_MAX + 32], out[256], err[1024];
    snprintf(missing, sizeof missing, "%s/nowhere/readmodel.db", fx.dir);
    const char *args[] = {"--digest", "--db", missing, NULL};
    ck_assert_int_eq(program_run(args, out, sizeof out, err, sizeof err), 1);
    ck_assert_str_eq(out, "");
    ck_assert_msg(strstr(err, missing) && strstr(err, "No such file"), "stderr: %s", err);
    ck_assert_int_ne(access(missing, F_OK), 0); /* not created */
}
END_TEST

START_TEST(a_store_restart_is_followed_by_a_resumed_subscription)
{
    proj_start(NULL);
    stock_event("added", "sku-r", NULL, 7);
    wait_caught_up();
    evs_close(fx.conn);
    fx.conn = NULL;
    test_server_kill(&fx.srv);
    ck_assert_int_eq(test_server_restart_same_port(&fx.srv), 0);
    store_connect();
    stock_event("reserved", "sku-r", "o-r", 3);
    stock_event("added", "sku-r", NULL, 1);
    wait_caught_up();
    ck_assert_str_eq(stock_row("sku-r"), "8|3|5");
}
END_TEST

/* Either of two processes exited: *status gets how, its pid is cleared. */
typedef struct {
    oms_proc_t *procs[2];
    int status;
} either_exit_t;

static bool either_exited(void *ctx)
{
    either_exit_t *e = ctx;
    for (int i = 0; i < 2; i++) {
        if (proc_wait(e->procs[i]->pid, 0, &e->status) == 0) {
            e->procs[i]->pid = 0;
            return true;
        }
    }
    return false;
}

START_TEST(a_second_writer_of_the_model_stops_instead_of_applying_twice)
{
    proj_start(NULL);
    stock_event("added", "other-x", NULL, 5);
    wait_caught_up();
    oms_proc_t second;
    ck_assert_int_eq(oms_proc_start(&second, "oms-projections", fx.srv.port, fx.dir, fx.args),
                     0);
    scenario_append();
    either_exit_t e = {{&fx.proj, &second}, 0};
    ck_assert(oms_wait_until(either_exited, &e, CATCH_UP_MS_MAX));
    ck_assert(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 1);
    wait_caught_up(); /* the other one goes on */
    scenario_check_rows();
    ck_assert_str_eq(stock_row("other-x"), "5|0|5");
    oms_proc_kill(&second);
}
END_TEST

static Suite *projections_suite(void)
{
    Suite *s = suite_create("oms.projections");
    TCase *tc = tcase_create("projections");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, every_path_of_an_order_leaves_the_exact_rows);
    tcase_add_test(tc, a_model_started_after_the_events_catches_up_to_the_same_rows);
    tcase_add_test(tc, kill_9_in_the_middle_neither_loses_nor_double_applies);
    tcase_add_test(tc, rebuild_gives_the_same_digest);
    tcase_add_test(tc, a_bad_payload_is_skipped_and_counted);
    tcase_add_test(tc, digest_of_a_missing_db_is_a_clear_error);
    tcase_add_test(tc, a_store_restart_is_followed_by_a_resumed_subscription);
    tcase_add_test(tc, a_second_writer_of_the_model_stops_instead_of_applying_twice);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(projections_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
