/* test_oms_order.c -- oms-order, the HTTP/JSON API, over real HTTP against a
 * real evstored: placing orders (computed total, the OrderPlaced written),
 * idempotency keys, every validation rule, 413/415/404/405, reading an
 * order from its stream or the read model, listing with cursors, the
 * audit trail, the OpenAPI document, metrics, and a store outage.
 *
 * The "api" case shares one evstored and one oms-order (started once, in
 * the runner) whose read model the setup writes with sqlite3; each test
 * uses its own customers and keys, so the tests do not see each other's
 * orders. The "outage" case starts its own pair.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oms.h"
#include "oms.pb-c.h"
#include "oms_curl.h"
#include "oms_fixture.h"
#include "pbjson.h"
#include "server_fixture.h"

#define T_HTTP_TIMEOUT_MS 15000
#define T_RM_ROWS 7          /* orders rm-00 .. rm-06 in the read model */
#define T_RM_POSITION_BASE 1000000
#define T_OUTAGE_MS_MAX 20000 /* the store back: a POST succeeds within this */

static struct {
    test_server_t srv;
    oms_proc_t order;
    char dir[PATH_MAX];
    char rm_path[PATH_MAX + 16];
} fx;

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

/* ---- helpers ------------------------------------------------------------- */

/* One request to oms-order on port; returns the parsed JSON body (NULL when
 * it is not JSON) and the status; res (may be NULL) keeps the response. */
static json_t *call_on(uint16_t port, const char *method, const char *path,
                       const char *const *headers, const char *body, int *status,
                       oms_curl_response_t *keep)
{
    oms_curl_response_t res;
    int rc = oms_curl_once("127.0.0.1", port, T_HTTP_TIMEOUT_MS, method, path, headers, body,
                        body ? strlen(body) : 0, &res);
    ck_assert_msg(rc == 0, "%s %s: %s", method, path, strerror(-rc));
    *status = res.status;
    json_t *j = json_loadb(res.body, res.body_len, 0, NULL);
    if (keep)
        *keep = res;
    else
        oms_curl_response_free(&res);
    return j;
}

static json_t *call(const char *method, const char *path, const char *const *headers,
                    const char *body, int *status)
{
    return call_on(fx.order.port, method, path, headers, body, status, NULL);
}

/* A valid order body for customer (jansson object). */
static json_t *order_body(const char *customer)
{
    return json_pack("{s:s,s:[{s:s,s:i,s:i},{s:s,s:i,s:i}],s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s}}",
                     "customer_id", customer, "items", "sku", "sku-red", "quantity", 3,
                     "unit_price_cents", 1250, "sku", "sku-blue", "quantity", 1,
                     "unit_price_cents", 99, "currency", "EUR", "payment_token", "tok_visa",
                     "shipping_address", "name", "Ann Example", "line1", "1 Main St", "city",
                     "Paris", "postal_code", "75001", "country", "FR");
}

static char *order_text(const char *customer)
{
    json_t *b = order_body(customer);
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return text;
}

/* POSTs an order; returns the answer's JSON and status. */
static json_t *place(const char *customer, const char *key, int *status)
{
    char header[200];
    snprintf(header, sizeof header, "Idempotency-Key: %s", key ? key : "");
    const char *headers[] = {"Content-Type: application/json", key ? header : NULL, NULL};
    char *body = order_text(customer);
    json_t *j = call("POST", "/orders", headers, body, status);
    free(body);
    return j;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_int_t jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static evs_conn_t *store_connect(uint16_t port)
{
    evs_options_t o;
    evs_options_default(&o);
    o.port = port;
    evs_conn_t *c = NULL;
    ck_assert_int_eq(evs_connect(&o, &c), 0);
    return c;
}

static uint64_t store_head(void)
{
    evs_conn_t *c = store_connect(fx.srv.port);
    evs_server_stats_t st;
    ck_assert_int_eq(evs_server_stats(c, &st), 0);
    evs_close(c);
    return st.head_position;
}

/* Appends one protobuf message to stream (type: its short name). */
static void store_append(evs_conn_t *c, const char *stream, const void *msg)
{
    evs_event_t ev;
    ck_assert_int_eq(oms_event_make(&ev, msg, stream, "test"), 0);
    ck_assert_int_eq(evs_id_random(ev.id), 0);
    evs_stream_append_t a = {.stream = stream, .expected_version = EVS_EXPECT_ANY,
                             .events = &ev, .event_count = 1};
    ck_assert_int_eq(evs_append(c, &a, 1, NULL), 0);
    oms_event_free_data(&ev);
}

static int stream_count(evs_conn_t *c, const char *stream)
{
    evs_read_t req = {.stream = stream};
    evs_read_result_t res;
    int rc = evs_read(c, &req, &res);
    if (rc == EVS_ESTREAM_NOT_FOUND)
        return 0;
    ck_assert_int_eq(rc, 0);
    int n = (int)res.count;
    evs_read_result_free(&res);
    return n;
}

/* ---- the read model the setup writes ------------------------------------ */

static void rm_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql,
                  err ? err : "?");
}

static const char rm_schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE orders(order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT "
    "NULL, total_cents INTEGER NOT NULL, currency TEXT NOT NULL, items_json TEXT NOT NULL, "
    "item_count INTEGER NOT NULL, failure_reason TEXT, payment_status TEXT, inventory_status "
    "TEXT, shipment_status TEXT, shipment_id TEXT, placed_at_ns INTEGER NOT NULL, updated_at_ns "
    "INTEGER NOT NULL, placed_position INTEGER NOT NULL, last_position INTEGER NOT NULL);"
    "CREATE INDEX orders_by_customer ON orders(customer_id, placed_position);"
    "CREATE INDEX orders_by_status ON orders(status, placed_position);"
    "CREATE TABLE projection_checkpoint(name TEXT PRIMARY KEY, position INTEGER NOT NULL);";

/* rm-00..rm-06: even ones are cust-a's, odd ones cust-b's; statuses cycle
 * COMPLETED, FAILED, PENDING; newer orders have higher positions. */
static const char *rm_status(int i)
{
    static const char *const s[] = {"COMPLETED", "FAILED", "PENDING"};
    return s[i % 3];
}

static void rm_create(const char *path)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    rm_exec(db, rm_schema);
    for (int i = 0; i < T_RM_ROWS; i++) {
        const char *st = rm_status(i);
        bool failed = strcmp(st, "FAILED") == 0, done = strcmp(st, "COMPLETED") == 0;
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "INSERT INTO orders VALUES('rm-%02d','cust-%c','%s',%d,'EUR',"
                 "'[{\"sku\":\"sku-%d\",\"quantity\":2,\"unit_price_cents\":500}]',1,%s,'%s',"
                 "%s,%s,%s,%lld,%lld,%d,%d)",
                 i, i % 2 ? 'b' : 'a', st, 1000, i, failed ? "'payment_declined'" : "NULL",
                 failed ? "declined" : "charged", done ? "'reserved'" : "NULL",
                 done ? "'shipped'" : "NULL", done ? "'shp-1'" : "NULL",
                 1700000000000000000LL + i, 1700000000500000000LL + i,
                 T_RM_POSITION_BASE + 10 * i, T_RM_POSITION_BASE + 10 * i + 5);
        rm_exec(db, sql);
    }
    sqlite3_close(db);
}

/* ---- fixtures ------------------------------------------------------------ */

/* Starts evstored and oms-order in a fresh directory; with_rm: the read
 * model there is written first (else the --readmodel path does not exist). */
static void start_pair(const char *tag, bool with_rm)
{
    ck_assert_int_eq(test_tmpdir_make(tag, fx.dir), 0);
    snprintf(fx.rm_path, sizeof fx.rm_path, "%s/%s", fx.dir,
             with_rm ? "readmodel.db" : "missing.db");
    if (with_rm)
        rm_create(fx.rm_path);
    const char *evs_args[] = {"--durability", "none", "--quiet", NULL};
    ck_assert_int_eq(test_server_start(&fx.srv, evs_args), 0);
    static const char *args[] = {"--readmodel", fx.rm_path, "--store-timeout-ms", "500", NULL};
    ck_assert_int_eq(oms_proc_start(&fx.order, "oms-order", fx.srv.port, fx.dir, args), 0);
}

static void stop_pair(void)
{
    oms_proc_stop(&fx.order);
    test_server_destroy(&fx.srv);
    test_tmpdir_remove(fx.dir);
}

static void api_setup(void)
{
    start_pair("oms-order", true);
}

/* ---- placing orders ------------------------------------------------------ */

START_TEST(placing_an_order_answers_201_with_the_computed_total_and_appends_order_placed)
{
    int status;
    oms_curl_response_t res;
    char *body = order_text("cust-place");
    json_t *o = call_on(fx.order.port, "POST", "/orders", json_ct, body, &status, &res);
    free(body);
    ck_assert_int_eq(status, 201);
    const char *id = jstr(o, "order_id");
    ck_assert_uint_eq(strlen(id), 32);
    ck_assert_str_eq(jstr(o, "status"), "PENDING");
    ck_assert_str_eq(jstr(o, "customer_id"), "cust-place");
    ck_assert_int_eq(jint(o, "total_cents"), 3 * 1250 + 99);
    ck_assert_str_eq(jstr(o, "currency"), "EUR");
    ck_assert_uint_eq(json_array_size(json_object_get(o, "items")), 2);
    ck_assert(jstr(o, "placed_at") != NULL);
    char location[128], want[128];
    ck_assert_int_eq(oms_curl_header(&res, "Location", location, sizeof location), 0);
    snprintf(want, sizeof want, "/orders/%s", id);
    ck_assert_str_eq(location, want);
    ck_assert_int_eq(oms_curl_header(&res, "Idempotent-Replayed", location, sizeof location),
                     -ENOENT);
    oms_curl_response_free(&res);

    char stream[64];
    snprintf(stream, sizeof stream, "order-%s", id);
    evs_conn_t *c = store_connect(fx.srv.port);
    evs_read_t req = {.stream = stream};
    evs_read_result_t rr;
    ck_assert_int_eq(evs_read(c, &req, &rr), 0);
    ck_assert_uint_eq(rr.count, 1);
    ck_assert_str_eq(rr.events[0].type, "OrderPlaced");
    Oms__V1__OrderPlaced *p =
        oms__v1__order_placed__unpack(NULL, rr.events[0].data_len, rr.events[0].data);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->order_id, id);
    ck_assert_str_eq(p->customer_id, "cust-place");
    ck_assert_int_eq(p->total_cents, 3 * 1250 + 99);
    ck_assert_uint_eq(p->n_items, 2);
    ck_assert_str_eq(p->items[0]->sku, "sku-red");
    ck_assert_uint_eq(p->items[0]->quantity, 3);
    ck_assert_int_eq(p->items[1]->unit_price_cents, 99);
    ck_assert_str_eq(p->payment_token, "tok_visa");
    ck_assert_str_eq(p->shipping_address->country, "FR");
    ck_assert_str_eq(p->shipping_address->postal_code, "75001");
    ck_assert_str_eq(p->idempotency_key, "");
    ck_assert_int_gt(p->placed_at_ns, 0);
    oms__v1__order_placed__free_unpacked(p, NULL);
    evs_read_result_free(&rr);
    evs_close(c);
    json_decref(o);
}
END_TEST

START_TEST(a_retry_with_the_same_idempotency_key_returns_the_same_order_and_writes_nothing)
{
    int s1, s2;
    json_t *first = place("cust-idem", "key-1", &s1);
    ck_assert_int_eq(s1, 201);
    uint64_t head = store_head();
    char header[64] = "";
    oms_curl_response_t res;
    char *body = order_text("cust-idem");
    const char *headers[] = {"Content-Type: application/json", "Idempotency-Key: key-1", NULL};
    json_t *again = call_on(fx.order.port, "POST", "/orders", headers, body, &s2, &res);
    free(body);
    ck_assert_int_eq(s2, 201);
    ck_assert_int_eq(oms_curl_header(&res, "Idempotent-Replayed", header, sizeof header), 0);
    ck_assert_str_eq(header, "true");
    oms_curl_response_free(&res);
    ck_assert(json_equal(first, again)); /* placed_at included: the first answer again */
    ck_assert_uint_eq(store_head(), head);

    char stream[64];
    snprintf(stream, sizeof stream, "order-%s", jstr(first, "order_id"));
    evs_conn_t *c = store_connect(fx.srv.port);
    ck_assert_int_eq(stream_count(c, stream), 1);
    evs_close(c);
    json_decref(first);
    json_decref(again);
}
END_TEST

#define T_RACERS 8

typedef struct {
    char order_id[40];
    int status;
    bool replayed;
} racer_t;

static void *racer_run(void *arg)
{
    racer_t *r = arg;
    char *body = order_text("cust-race");
    const char *headers[] = {"Content-Type: application/json", "Idempotency-Key: race", NULL};
    oms_curl_response_t res;
    if (oms_curl_once("127.0.0.1", fx.order.port, T_HTTP_TIMEOUT_MS, "POST", "/orders", headers,
                   body, strlen(body), &res) == 0) {
        char v[16];
        r->status = res.status;
        r->replayed = oms_curl_header(&res, "Idempotent-Replayed", v, sizeof v) == 0;
        json_t *j = json_loads(res.body, 0, NULL);
        snprintf(r->order_id, sizeof r->order_id, "%s", j ? jstr(j, "order_id") : "");
        json_decref(j);
        oms_curl_response_free(&res);
    }
    free(body);
    return NULL;
}

START_TEST(concurrent_posts_with_one_key_place_one_order)
{
    racer_t racers[T_RACERS] = {0};
    pthread_t threads[T_RACERS];
    for (int i = 0; i < T_RACERS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, racer_run, &racers[i]), 0);
    for (int i = 0; i < T_RACERS; i++)
        pthread_join(threads[i], NULL);
    int fresh = 0;
    for (int i = 0; i < T_RACERS; i++) {
        ck_assert_int_eq(racers[i].status, 201);
        ck_assert_str_eq(racers[i].order_id, racers[0].order_id);
        fresh += !racers[i].replayed;
    }
    ck_assert_int_eq(fresh, 1);
    char stream[64];
    snprintf(stream, sizeof stream, "order-%s", racers[0].order_id);
    evs_conn_t *c = store_connect(fx.srv.port);
    ck_assert_int_eq(stream_count(c, stream), 1);
    evs_close(c);
}
END_TEST

START_TEST(a_reused_idempotency_key_with_another_body_is_409)
{
    int status;
    json_decref(place("cust-reuse", "key-r", &status));
    ck_assert_int_eq(status, 201);
    uint64_t head = store_head();
    json_t *b = order_body("cust-reuse");
    json_object_set_new(b, "currency", json_string("USD"));
    char *text = json_dumps(b, JSON_COMPACT);
    const char *headers[] = {"Content-Type: application/json", "Idempotency-Key: key-r", NULL};
    json_t *e = call("POST", "/orders", headers, text, &status);
    ck_assert_int_eq(status, 409);
    json_t *err = json_object_get(e, "error");
    ck_assert_str_eq(jstr(err, "code"), "idempotency_key_reused");
    ck_assert_str_eq(jstr(err, "field"), "Idempotency-Key");
    ck_assert_uint_eq(store_head(), head);
    free(text);
    json_decref(b);
    json_decref(e);
}
END_TEST

START_TEST(one_key_of_two_customers_makes_two_orders)
{
    int s1, s2;
    json_t *a = place("cust-k1", "shared-key", &s1);
    json_t *b = place("cust-k2", "shared-key", &s2);
    ck_assert_int_eq(s1, 201);
    ck_assert_int_eq(s2, 201);
    ck_assert_str_ne(jstr(a, "order_id"), jstr(b, "order_id"));
    json_decref(a);
    json_decref(b);
}
END_TEST

/* ---- validation ------------------------------------------------------------ */

typedef struct {
    const char *path;  /* field to change: "items[0].quantity"; NULL: raw is the body */
    const char *value; /* its new JSON value; NULL: delete the field */
    const char *code;  /* expected error.code */
    const char *field; /* expected error.field; NULL: none */
} bad_case_t;

/* Sets (value JSON) or deletes the field at path in root. */
static void mutate(json_t *root, const char *path, const char *value)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *parent = root;
    char *seg = buf;
    for (;;) {
        char *dot = strchr(seg, '.');
        if (dot)
            *dot = '\0';
        char *br = strchr(seg, '[');
        size_t idx = 0;
        if (br) {
            idx = strtoul(br + 1, NULL, 10);
            *br = '\0';
        }
        if (!dot && !br) {
            if (value)
                json_object_set_new(parent, seg, json_loads(value, JSON_DECODE_ANY, NULL));
            else
                json_object_del(parent, seg);
            return;
        }
        json_t *next = json_object_get(parent, seg);
        if (br && !dot) {
            ck_assert(value != NULL);
            json_array_set_new(next, idx, json_loads(value, JSON_DECODE_ANY, NULL));
            return;
        }
        parent = br ? json_array_get(next, idx) : next;
        seg = dot + 1;
    }
}

static char *repeat(char c, size_t n, bool quoted)
{
    char *s = malloc(n + 3);
    size_t k = 0;
    if (quoted)
        s[k++] = '"';
    memset(s + k, c, n);
    k += n;
    if (quoted)
        s[k++] = '"';
    s[k] = '\0';
    return s;
}

/* 100 distinct items: one over the limit (99). */
static char *too_many_items(void)
{
    json_t *a = json_array();
    for (int i = 0; i < 100; i++) {
        char sku[16];
        snprintf(sku, sizeof sku, "s%d", i);
        json_array_append_new(a, json_pack("{s:s,s:i,s:i}", "sku", sku, "quantity", 1,
                                           "unit_price_cents", 1));
    }
    char *t = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return t;
}

START_TEST(every_invalid_body_is_400_with_its_code_and_field_and_writes_nothing)
{
    char *id65 = repeat('a', 65, true), *tok129 = repeat('t', 129, true);
    char *line257 = repeat('l', 257, true), *items101 = too_many_items();
    const bad_case_t cases[] = {
        {NULL, "{", "invalid_json", NULL},
        {NULL, "[1,2]", "invalid_type", NULL},
        {NULL, "{\"customer_id\":\"a\",\"customer_id\":\"b\"}", "invalid_json", NULL},
        {NULL, "{\"customer_id\":\"c\",\"items\":[{\"sku\":\"s\",\"quantity\":"
               "99999999999999999999999,\"unit_price_cents\":1}]}", "invalid_json", NULL},
        {"coupon", "\"FREE\"", "unknown_field", "coupon"},
        {"customer_id", NULL, "missing_field", "customer_id"},
        {"customer_id", "42", "invalid_type", "customer_id"},
        {"customer_id", "null", "invalid_type", "customer_id"},
        {"customer_id", "\"\"", "invalid_value", "customer_id"},
        {"customer_id", "\"has space\"", "invalid_value", "customer_id"},
        {"customer_id", id65, "invalid_value", "customer_id"},
        {"items", NULL, "missing_field", "items"},
        {"items", "{}", "invalid_type", "items"},
        {"items", "[]", "invalid_value", "items"},
        {"items", items101, "too_many_items", "items"},
        {"items[0]", "\"sku-red\"", "invalid_type", "items[0]"},
        {"items[0].sku", NULL, "missing_field", "items[0].sku"},
        {"items[0].sku", "\"a/b\"", "invalid_value", "items[0].sku"},
        {"items[1].sku", id65, "invalid_value", "items[1].sku"},
        {"items[1].sku", "\"sku-red\"", "duplicate_sku", "items[1].sku"},
        {"items[0].quantity", "0", "out_of_range", "items[0].quantity"},
        {"items[0].quantity", "10001", "out_of_range", "items[0].quantity"},
        {"items[0].quantity", "-1", "out_of_range", "items[0].quantity"},
        {"items[0].quantity", "1.5", "invalid_type", "items[0].quantity"},
        {"items[0].quantity", "\"2\"", "invalid_type", "items[0].quantity"},
        {"items[0].unit_price_cents", "0", "out_of_range", "items[0].unit_price_cents"},
        {"items[0].unit_price_cents", "-5", "out_of_range", "items[0].unit_price_cents"},
        {"items[0].unit_price_cents", "100000001", "out_of_range", "items[0].unit_price_cents"},
        {"items[0].color", "\"red\"", "unknown_field", "items[0].color"},
        {"items", "[{\"sku\":\"a\",\"quantity\":10000,\"unit_price_cents\":100000000},"
                  "{\"sku\":\"b\",\"quantity\":10000,\"unit_price_cents\":100000000}]",
         "total_too_large", "items"},
        {"currency", NULL, "missing_field", "currency"},
        {"currency", "\"eur\"", "invalid_value", "currency"},
        {"currency", "\"EURO\"", "invalid_value", "currency"},
        {"currency", "978", "invalid_type", "currency"},
        {"payment_token", "\"\"", "invalid_value", "payment_token"},
        {"payment_token", "\"tok en\"", "invalid_value", "payment_token"},
        {"payment_token", tok129, "invalid_value", "payment_token"},
        {"shipping_address", NULL, "missing_field", "shipping_address"},
        {"shipping_address", "\"Paris\"", "invalid_type", "shipping_address"},
        {"shipping_address.zip", "\"1\"", "unknown_field", "shipping_address.zip"},
        {"shipping_address.name", "\"\"", "invalid_value", "shipping_address.name"},
        {"shipping_address.name", "\"Ann\\u0001\"", "invalid_value", "shipping_address.name"},
        {"shipping_address.line1", line257, "invalid_value", "shipping_address.line1"},
        {"shipping_address.city", NULL, "missing_field", "shipping_address.city"},
        {"shipping_address.postal_code", "\"75001!\"", "invalid_value",
         "shipping_address.postal_code"},
        {"shipping_address.country", "\"fr\"", "invalid_value", "shipping_address.country"},
        {"shipping_address.country", "\"FRA\"", "invalid_value", "shipping_address.country"},
    };
    uint64_t head = store_head();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case_t *bc = &cases[i];
        char *body;
        if (bc->path) {
            json_t *b = order_body("cust-bad");
            mutate(b, bc->path, bc->value);
            body = json_dumps(b, JSON_COMPACT);
            json_decref(b);
        } else {
            body = strdup(bc->value);
        }
        int status;
        json_t *e = call("POST", "/orders", json_ct, body, &status);
        json_t *err = json_object_get(e, "error");
        ck_assert_msg(status == 400, "case %zu (%s): status %d", i, body, status);
        ck_assert_msg(jstr(err, "code") && strcmp(jstr(err, "code"), bc->code) == 0,
                      "case %zu (%s): code %s, want %s", i, body, jstr(err, "code"), bc->code);
        if (bc->field)
            ck_assert_msg(jstr(err, "field") && strcmp(jstr(err, "field"), bc->field) == 0,
                          "case %zu: field %s, want %s", i, jstr(err, "field"), bc->field);
        else
            ck_assert_msg(!json_object_get(err, "field"), "case %zu: a field", i);
        ck_assert(json_is_string(json_object_get(err, "message")));
        json_decref(e);
        free(body);
    }
    ck_assert_uint_eq(store_head(), head);
    free(id65);
    free(tok129);
    free(line257);
    free(items101);
}
END_TEST

START_TEST(a_bad_idempotency_key_is_400)
{
    char *key = repeat('k', 129, false);
    char header[160];
    snprintf(header, sizeof header, "Idempotency-Key: %s", key);
    const char *headers[] = {"Content-Type: application/json", header, NULL};
    char *body = order_text("cust-badkey");
    uint64_t head = store_head();
    int status;
    json_t *e = call("POST", "/orders", headers, body, &status);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(jstr(json_object_get(e, "error"), "code"), "invalid_idempotency_key");
    ck_assert_uint_eq(store_head(), head);
    json_decref(e);
    free(body);
    free(key);
}
END_TEST

START_TEST(a_body_over_the_limit_is_413)
{
    /* Just over the limit, and far over it. Both are answered from their
     * Content-Length, before the body is read: the far one (over 1 MiB)
     * goes with "Expect: 100-continue", as libcurl sends such bodies, so
     * the 413 comes instead of the go-ahead and no body byte is sent. */
    const size_t sizes[] = {64 * 1024 + 1, 4 * 1024 * 1024};
    uint64_t head = store_head();
    for (size_t i = 0; i < 2; i++) {
        char *body = repeat(' ', sizes[i], false);
        body[0] = '{';
        int status;
        json_t *e = call("POST", "/orders", json_ct, body, &status);
        ck_assert_msg(status == 413, "%zu bytes: %d", sizes[i], status);
        ck_assert_str_eq(jstr(json_object_get(e, "error"), "code"), "payload_too_large");
        json_decref(e);
        free(body);
    }
    ck_assert_uint_eq(store_head(), head);
}
END_TEST

START_TEST(a_body_that_is_not_json_by_content_type_is_415)
{
    char *body = order_text("cust-415");
    const char *plain[] = {"Content-Type: text/plain", NULL};
    const char *form[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    const char *const *cases[] = {plain, form, NULL};
    uint64_t head = store_head();
    for (size_t i = 0; i < 3; i++) {
        int status;
        json_t *e = call("POST", "/orders", cases[i], body, &status);
        ck_assert_msg(status == 415, "case %zu: %d", i, status);
        ck_assert_str_eq(jstr(json_object_get(e, "error"), "code"), "unsupported_media_type");
        json_decref(e);
    }
    const char *with_charset[] = {"Content-Type: application/json; charset=utf-8", NULL};
    int status;
    json_decref(call("POST", "/orders", with_charset, body, &status));
    ck_assert_int_eq(status, 201);
    ck_assert_uint_eq(store_head(), head + 1);
    free(body);
}
END_TEST

START_TEST(unknown_routes_are_404_and_wrong_methods_405_with_allow)
{
    const char *nf[] = {"/", "/order", "/orders/", "/orders/x/y", "/orders/x/events/1",
                        "/ordersx"};
    for (size_t i = 0; i < sizeof nf / sizeof nf[0]; i++) {
        int status;
        json_t *e = call("GET", nf[i], NULL, NULL, &status);
        ck_assert_msg(status == 404, "%s: %d", nf[i], status);
        ck_assert_str_eq(jstr(json_object_get(e, "error"), "code"), "not_found");
        json_decref(e);
    }
    struct {
        const char *method, *path, *allow;
    } na[] = {{"DELETE", "/orders", "GET, HEAD, POST"},
              {"PUT", "/orders/abc", "GET, HEAD"},
              {"POST", "/orders/abc/events", "GET, HEAD"},
              {"POST", "/openapi.json", "GET, HEAD"}};
    for (size_t i = 0; i < sizeof na / sizeof na[0]; i++) {
        int status;
        oms_curl_response_t res;
        json_t *e = call_on(fx.order.port, na[i].method, na[i].path, NULL, NULL, &status, &res);
        ck_assert_msg(status == 405, "%s %s: %d", na[i].method, na[i].path, status);
        ck_assert_str_eq(jstr(json_object_get(e, "error"), "code"), "method_not_allowed");
        char allow[64];
        ck_assert_int_eq(oms_curl_header(&res, "Allow", allow, sizeof allow), 0);
        ck_assert_str_eq(allow, na[i].allow);
        oms_curl_response_free(&res);
        json_decref(e);
    }
}
END_TEST

/* ---- reading one order --------------------------------------------------- */

START_TEST(an_order_not_yet_projected_is_read_from_its_stream)
{
    int status;
    json_t *placed = place("cust-get", NULL, &status);
    ck_assert_int_eq(status, 201);
    const char *id = jstr(placed, "order_id");
    char path[96];
    snprintf(path, sizeof path, "/orders/%s", id);
    json_t *o = call("GET", path, NULL, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(jstr(o, "source"), "store");
    ck_assert_str_eq(jstr(o, "order_id"), id);
    ck_assert_str_eq(jstr(o, "status"), "PENDING");
    ck_assert_int_eq(jint(o, "total_cents"), 3 * 1250 + 99);
    ck_assert_int_eq(jint(o, "item_count"), 2);
    ck_assert_str_eq(jstr(o, "placed_at"), jstr(placed, "placed_at"));
    ck_assert(json_is_null(json_object_get(o, "failure_reason")));
    json_decref(o);

    /* The saga's verdict in the stream shows through. */
    char stream[64];
    snprintf(stream, sizeof stream, "order-%s", id);
    Oms__V1__OrderFailed f = OMS__V1__ORDER_FAILED__INIT;
    f.order_id = (char *)id;
    f.reason = "out_of_stock";
    evs_conn_t *c = store_connect(fx.srv.port);
    store_append(c, stream, &f);
    evs_close(c);
    o = call("GET", path, NULL, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(jstr(o, "status"), "FAILED");
    ck_assert_str_eq(jstr(o, "failure_reason"), "out_of_stock");
    ck_assert_int_gt(jint(o, "last_position"), jint(o, "placed_position"));
    json_decref(o);
    json_decref(placed);
}
END_TEST

START_TEST(a_projected_order_is_read_from_the_read_model)
{
    int status;
    json_t *o = call("GET", "/orders/rm-03", NULL, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(jstr(o, "source"), "readmodel");
    ck_assert_str_eq(jstr(o, "customer_id"), "cust-b");
    ck_assert_str_eq(jstr(o, "status"), rm_status(3));
    ck_assert_str_eq(jstr(o, "payment_status"), "charged");
    ck_assert_int_eq(jint(o, "placed_position"), T_RM_POSITION_BASE + 30);
    json_t *items = json_object_get(o, "items");
    ck_assert_uint_eq(json_array_size(items), 1);
    ck_assert_str_eq(jstr(json_array_get(items, 0), "sku"), "sku-3");
    json_decref(o);
    o = call("GET", "/orders/rm-01", NULL, NULL, &status);
    ck_assert_str_eq(jstr(o, "status"), "FAILED");
    ck_assert_str_eq(jstr(o, "failure_reason"), "payment_declined");
    json_decref(o);
}
END_TEST

START_TEST(an_unknown_order_is_404_and_a_malformed_id_400)
{
    int status;
    json_t *e = call("GET", "/orders/no-such-order", NULL, NULL, &status);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(jstr(json_object_get(e, "error"), "code"), "not_found");
    json_decref(e);
    e = call("GET", "/orders/no-such-order/events", NULL, NULL, &status);
    ck_assert_int_eq(status, 404);
    json_decref(e);
    e = call("GET", "/orders/bad%21id", NULL, NULL, &status);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(jstr(json_object_get(e, "error"), "code"), "invalid_order_id");
    json_decref(e);
}
END_TEST

/* ---- listing ------------------------------------------------------------------ */

/* The order ids of a list answer, comma-separated, into out. */
static void list_ids(json_t *page, char *out, size_t cap)
{
    out[0] = '\0';
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(page, "orders"), i, o) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", i ? "," : "", jstr(o, "order_id"));
    }
}

START_TEST(the_list_pages_newest_first_and_its_cursor_round_trips)
{
    const char *want[] = {"rm-06,rm-05,rm-04", "rm-03,rm-02,rm-01", "rm-00"};
    char path[256] = "/orders?limit=3";
    for (int page = 0; page < 3; page++) {
        int status;
        json_t *p = call("GET", path, NULL, NULL, &status);
        ck_assert_int_eq(status, 200);
        char ids[256];
        list_ids(p, ids, sizeof ids);
        ck_assert_str_eq(ids, want[page]);
        const char *cursor = jstr(p, "next_cursor");
        if (page < 2) {
            ck_assert_ptr_nonnull(cursor);
            snprintf(path, sizeof path, "/orders?limit=3&cursor=%s", cursor);
        } else {
            ck_assert_ptr_null(cursor);
        }
        json_decref(p);
    }
    int status; /* the default limit takes everything here */
    json_t *all = call("GET", "/orders", NULL, NULL, &status);
    ck_assert_uint_eq(json_array_size(json_object_get(all, "orders")), T_RM_ROWS);
    ck_assert_ptr_null(json_object_get(all, "next_cursor"));
    json_decref(all);
}
END_TEST

START_TEST(the_list_filters_by_customer_and_status)
{
    struct {
        const char *query, *ids;
    } cases[] = {
        {"/orders?customer=cust-a", "rm-06,rm-04,rm-02,rm-00"},
        {"/orders?customer=cust-b&limit=2", "rm-05,rm-03"},
        {"/orders?status=FAILED", "rm-04,rm-01"},
        {"/orders?status=COMPLETED&customer=cust-a", "rm-06,rm-00"},
        {"/orders?customer=nobody", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status;
        json_t *p = call("GET", cases[i].query, NULL, NULL, &status);
        ck_assert_int_eq(status, 200);
        char ids[256];
        list_ids(p, ids, sizeof ids);
        ck_assert_msg(strcmp(ids, cases[i].ids) == 0, "%s: %s", cases[i].query, ids);
        json_decref(p);
    }
    /* A filtered cursor continues the filtered list. */
    int status;
    json_t *p = call("GET", "/orders?customer=cust-a&limit=3", NULL, NULL, &status);
    char path[256], ids[256];
    snprintf(path, sizeof path, "/orders?customer=cust-a&limit=3&cursor=%s",
             jstr(p, "next_cursor"));
    json_decref(p);
    p = call("GET", path, NULL, NULL, &status);
    list_ids(p, ids, sizeof ids);
    ck_assert_str_eq(ids, "rm-00");
    json_decref(p);
}
END_TEST

START_TEST(bad_list_parameters_are_400)
{
    struct {
        const char *query, *code, *field;
    } cases[] = {
        {"/orders?limit=0", "invalid_parameter", "limit"},
        {"/orders?limit=501", "invalid_parameter", "limit"},
        {"/orders?limit=ten", "invalid_parameter", "limit"},
        {"/orders?limit=-1", "invalid_parameter", "limit"},
        {"/orders?limit=", "invalid_parameter", "limit"},
        {"/orders?limit=2&limit=3", "invalid_parameter", "limit"},
        {"/orders?status=FAILED&status=PAID", "invalid_parameter", "status"},
        {"/orders?status=LOST", "invalid_parameter", "status"},
        {"/orders?customer=a%20b", "invalid_parameter", "customer"},
        {"/orders?page=2", "invalid_parameter", "page"},
        {"/orders?cursor=not-a-cursor", "invalid_cursor", "cursor"},
        {"/orders?cursor=djE6eA", "invalid_cursor", "cursor"}, /* "v1:x" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status;
        json_t *e = call("GET", cases[i].query, NULL, NULL, &status);
        json_t *err = json_object_get(e, "error");
        ck_assert_msg(status == 400, "%s: %d", cases[i].query, status);
        ck_assert_msg(strcmp(jstr(err, "code"), cases[i].code) == 0, "%s: %s", cases[i].query,
                      jstr(err, "code"));
        ck_assert_str_eq(jstr(err, "field"), cases[i].field);
        json_decref(e);
    }
}
END_TEST

START_TEST(without_a_read_model_the_list_is_empty_and_orders_come_from_the_store)
{
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof missing, "%s/none/readmodel.db", fx.dir);
    const char *args[] = {"--readmodel", missing, NULL};
    oms_proc_t other;
    ck_assert_int_eq(oms_proc_start(&other, "oms-order", fx.srv.port, fx.dir, args), 0);
    int status;
    json_t *p = call_on(other.port, "GET", "/orders", NULL, NULL, &status, NULL);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(p, "orders")), 0);
    ck_assert_ptr_null(json_object_get(p, "next_cursor"));
    json_decref(p);
    json_t *placed = place("cust-norm", NULL, &status);
    char path[96];
    snprintf(path, sizeof path, "/orders/%s", jstr(placed, "order_id"));
    json_t *o = call_on(other.port, "GET", path, NULL, NULL, &status, NULL);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(jstr(o, "source"), "store");
    json_decref(o);
    json_decref(placed);
    ck_assert_int_eq(oms_proc_stop(&other), 0);
}
END_TEST

/* ---- the audit trail --------------------------------------------------------- */

START_TEST(the_audit_trail_merges_the_order_streams_in_position_order_decoded)
{
    int status;
    json_t *placed = place("cust-trail", "trail-key", &status);
    ck_assert_int_eq(status, 201);
    char *id = strdup(jstr(placed, "order_id"));
    char saga[64], pay[64], ship[64], note[64], order[64];
    snprintf(saga, sizeof saga, "saga-%s", id);
    snprintf(pay, sizeof pay, "payment-%s", id);
    snprintf(ship, sizeof ship, "shipment-%s", id);
    snprintf(note, sizeof note, "notification-%s", id);
    snprintf(order, sizeof order, "order-%s", id);
    evs_conn_t *c = store_connect(fx.srv.port);
    Oms__V1__PaymentRequested req = OMS__V1__PAYMENT_REQUESTED__INIT;
    req.order_id = id;
    req.amount_cents = 3849;
    req.attempt = 1;
    store_append(c, saga, &req);
    Oms__V1__PaymentProcessed paid = OMS__V1__PAYMENT_PROCESSED__INIT;
    paid.order_id = id;
    paid.amount_cents = 5000000000LL; /* over 32 bits: still a JSON integer */
    paid.charge_id = "ch_1";
    store_append(c, pay, &paid);
    Oms__V1__SagaStepTimedOut to = OMS__V1__SAGA_STEP_TIMED_OUT__INIT;
    to.order_id = id;
    to.step = OMS__V1__STEP__STEP_SHIPPING;
    store_append(c, saga, &to);
    Oms__V1__OrderShipped shipped = OMS__V1__ORDER_SHIPPED__INIT;
    shipped.order_id = id;
    shipped.shipment_id = "shp-9";
    store_append(c, ship, &shipped);
    /* A type the API does not know: shown as base64. */
    evs_event_t odd = {.type = "MysteryHappened", .data = "\x01\x02\x03", .data_len = 3};
    ck_assert_int_eq(evs_id_random(odd.id), 0);
    evs_stream_append_t a = {.stream = note, .expected_version = EVS_EXPECT_ANY,
                             .events = &odd, .event_count = 1};
    ck_assert_int_eq(evs_append(c, &a, 1, NULL), 0);
    /* An event of another order does not belong to this trail. */
    store_append(c, "payment-other", &paid);
    evs_close(c);

    char path[96];
    snprintf(path, sizeof path, "/orders/%s/events", id);
    json_t *t = call("GET", path, NULL, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_false(json_object_get(t, "truncated")));
    json_t *events = json_object_get(t, "events");
    const char *want_types[] = {"OrderPlaced", "PaymentRequested", "PaymentProcessed",
                                "SagaStepTimedOut", "OrderShipped", "MysteryHappened"};
    const char *want_streams[] = {order, saga, pay, saga, ship, note};
    const int want_versions[] = {0, 0, 0, 1, 0, 0};
    ck_assert_uint_eq(json_array_size(events), 6);
    json_int_t last = -1;
    for (size_t i = 0; i < 6; i++) {
        json_t *ev = json_array_get(events, i);
        ck_assert_str_eq(jstr(ev, "type"), want_types[i]);
        ck_assert_str_eq(jstr(ev, "stream"), want_streams[i]);
        ck_assert_int_eq(jint(ev, "version"), want_versions[i]);
        ck_assert_int_gt(jint(ev, "position"), last);
        ck_assert(jstr(ev, "timestamp") != NULL);
        last = jint(ev, "position");
    }
    json_t *d0 = json_object_get(json_array_get(events, 0), "data");
    ck_assert_str_eq(jstr(d0, "idempotency_key"), "trail-key");
    ck_assert_int_eq(jint(d0, "total_cents"), 3 * 1250 + 99);
    ck_assert_str_eq(jstr(json_object_get(d0, "shipping_address"), "city"), "Paris");
    ck_assert_int_eq(jint(json_array_get(json_object_get(d0, "items"), 0), "quantity"), 3);
    json_t *d2 = json_object_get(json_array_get(events, 2), "data");
    ck_assert(json_is_integer(json_object_get(d2, "amount_cents")));
    ck_assert_int_eq(jint(d2, "amount_cents"), 5000000000LL);
    ck_assert_str_eq(jstr(d2, "charge_id"), "ch_1");
    /* util's pbjson made it: evstore-inspect dump --json shows the same
     * (tests/inspect: dump_decodes_oms_events_with_the_oms_plugin). */
    json_t *want = pbjson_message(&paid.base);
    ck_assert_ptr_nonnull(want);
    ck_assert(json_equal(d2, want));
    json_decref(want);
    json_t *d3 = json_object_get(json_array_get(events, 3), "data");
    ck_assert_str_eq(jstr(d3, "step"), "STEP_SHIPPING");
    json_t *odd_ev = json_array_get(events, 5);
    ck_assert_ptr_null(json_object_get(odd_ev, "data"));
    ck_assert_str_eq(jstr(odd_ev, "data_base64"), "AQID");
    json_decref(t);
    json_decref(placed);
    free(id);
}
END_TEST

/* ---- the document, health and metrics ----------------------------------------- */

START_TEST(the_openapi_document_parses_and_names_every_route)
{
    int status;
    json_t *doc = call("GET", "/openapi.json", NULL, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(jstr(doc, "openapi"), "3.0.3");
    json_t *paths = json_object_get(doc, "paths");
    struct {
        const char *path, *method;
    } routes[] = {{"/orders", "post"},        {"/orders", "get"},
                  {"/orders/{id}", "get"},    {"/orders/{id}/events", "get"},
                  {"/openapi.json", "get"},   {"/health", "get"},
                  {"/metrics", "get"}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        ck_assert_msg(json_object_get(json_object_get(paths, routes[i].path), routes[i].method),
                      "%s %s", routes[i].method, routes[i].path);
    ck_assert_uint_eq(json_object_size(paths), 6);
    json_t *codes = json_object_get(json_object_get(json_object_get(
        json_object_get(doc, "components"), "schemas"), "Error"), "properties");
    ck_assert_ptr_nonnull(codes);
    json_decref(doc);
}
END_TEST

START_TEST(health_answers_and_metrics_count_requests_and_orders)
{
    int status;
    json_t *h = call("GET", "/health", NULL, NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(jstr(h, "status"), "ok");
    json_decref(h);
    json_decref(place("cust-metrics", "m-key", &status));
    json_decref(place("cust-metrics", "m-key", &status));
    oms_curl_response_t res;
    ck_assert_int_eq(oms_curl_once("127.0.0.1", fx.order.port, T_HTTP_TIMEOUT_MS, "GET",
                                "/metrics", NULL, NULL, 0, &res), 0);
    ck_assert_int_eq(res.status, 200);
    const char *want[] = {
        "oms_http_requests_total{service=\"order\",route=\"/orders\",method=\"POST\","
        "code=\"201\"} ",
        "oms_http_requests_total{service=\"order\",route=\"/health\",method=\"GET\","
        "code=\"200\"} ",
        "oms_http_request_seconds_bucket{service=\"order\",route=\"/orders\",le=\"+Inf\"} ",
        "oms_orders_placed_total{service=\"order\"} ",
        "oms_orders_idempotent_replays_total{service=\"order\"} ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *at = strstr(res.body, want[i]);
        ck_assert_msg(at, "no %s in\n%s", want[i], res.body);
        ck_assert_msg(strtoull(at + strlen(want[i]), NULL, 10) >= 1, "%s is 0", want[i]);
    }
    oms_curl_response_free(&res);
}
END_TEST

/* ---- the store going away ------------------------------------------------------- */

static void outage_setup(void)
{
    start_pair("oms-order-outage", false);
}

START_TEST(the_store_down_gives_503_and_back_up_201)
{
    char *body = order_text("cust-outage");
    test_server_kill(&fx.srv);
    int status;
    json_t *e = call("POST", "/orders", json_ct, body, &status);
    ck_assert_int_eq(status, 503);
    ck_assert_str_eq(jstr(json_object_get(e, "error"), "code"), "store_unavailable");
    json_decref(e);
    e = call("GET", "/orders/abc/events", NULL, NULL, &status);
    ck_assert_int_eq(status, 503);
    json_decref(e);

    ck_assert_int_eq(test_server_restart_same_port(&fx.srv), 0);
    int64_t deadline = oms_mono_ns() + (int64_t)T_OUTAGE_MS_MAX * 1000000;
    do {
        json_decref(call("POST", "/orders", json_ct, body, &status));
    } while (status == 503 && oms_mono_ns() < deadline);
    ck_assert_int_eq(status, 201);
    free(body);
}
END_TEST

START_TEST(sigterm_stops_the_service_cleanly)
{
    int st = oms_proc_stop(&fx.order);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

static Suite *order_suite(void)
{
    Suite *s = suite_create("oms.order");
    TCase *api = tcase_create("api");
    tcase_add_unchecked_fixture(api, api_setup, stop_pair);
    tcase_set_timeout(api, 120);
    tcase_add_test(api, placing_an_order_answers_201_with_the_computed_total_and_appends_order_placed);
    tcase_add_test(api, a_retry_with_the_same_idempotency_key_returns_the_same_order_and_writes_nothing);
    tcase_add_test(api, concurrent_posts_with_one_key_place_one_order);
    tcase_add_test(api, a_reused_idempotency_key_with_another_body_is_409);
    tcase_add_test(api, one_key_of_two_customers_makes_two_orders);
    tcase_add_test(api, every_invalid_body_is_400_with_its_code_and_field_and_writes_nothing);
    tcase_add_test(api, a_bad_idempotency_key_is_400);
    tcase_add_test(api, a_body_over_the_limit_is_413);
    tcase_add_test(api, a_body_that_is_not_json_by_content_type_is_415);
    tcase_add_test(api, unknown_routes_are_404_and_wrong_methods_405_with_allow);
    tcase_add_test(api, an_order_not_yet_projected_is_read_from_its_stream);
    tcase_add_test(api, a_projected_order_is_read_from_the_read_model);
    tcase_add_test(api, an_unknown_order_is_404_and_a_malformed_id_400);
    tcase_add_test(api, the_list_pages_newest_first_and_its_cursor_round_trips);
    tcase_add_test(api, the_list_filters_by_customer_and_status);
    tcase_add_test(api, bad_list_parameters_are_400);
    tcase_add_test(api, without_a_read_model_the_list_is_empty_and_orders_come_from_the_store);
    tcase_add_test(api, the_audit_trail_merges_the_order_streams_in_position_order_decoded);
    tcase_add_test(api, the_openapi_document_parses_and_names_every_route);
    tcase_add_test(api, health_answers_and_metrics_count_requests_and_orders);
    suite_add_tcase(s, api);

    TCase *outage = tcase_create("outage");
    tcase_add_checked_fixture(outage, outage_setup, stop_pair);
    tcase_set_timeout(outage, 120);
    tcase_add_test(outage, the_store_down_gives_503_and_back_up_201);
    tcase_add_test(outage, sigterm_stops_the_service_cleanly);
    suite_add_tcase(s, outage);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(order_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
