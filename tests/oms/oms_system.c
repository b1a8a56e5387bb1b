/* oms_system.c -- the whole OMS for end-to-end tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oms.h"
#include "oms.pb-c.h"
#include "oms_system.h"
#include "proc.h"
#include "util.h"

#define SYS_DIGEST_MS_MAX 60000 /* oms-projections --digest prints its line and ends */

const char *const sys_proc_names[SYS_PROCS] = {
    [SYS_SAGA] = "oms-saga",         [SYS_PAYMENT] = "oms-payment",
    [SYS_INVENTORY] = "oms-inventory", [SYS_SHIPPING] = "oms-shipping",
    [SYS_NOTIFICATION] = "oms-notification", [SYS_PROJECTIONS] = "oms-projections",
    [SYS_ORDER] = "oms-order",
};

const char *const kind_names[KIND_COUNT] = {"success", "declined", "out_of_stock", "shipfail"};
const char *const kind_reasons[KIND_COUNT] = {"", "payment_declined", "out_of_stock",
                                              "shipping_failed"};

order_kind_t sys_kind_of(unsigned n)
{
    unsigned r = n % 10;
    return r < 7 ? KIND_SUCCESS : (order_kind_t)(r - 6);
}

void sys_customer_of(unsigned n, char customer_id[16])
{
    snprintf(customer_id, 16, "cust-%u", n % 17);
}

sys_outcome_t sys_kind_outcome(order_kind_t kind)
{
    sys_outcome_t o = {.completed = kind == KIND_SUCCESS};
    snprintf(o.reason, sizeof o.reason, "%s", kind_reasons[kind]);
    return o;
}

int sys_start(sys_t *s, const char *const *saga_args)
{
    memset(s, 0, sizeof *s);
    if (test_tmpdir_make("oms-sys", s->dir) != 0)
        return -1;
    snprintf(s->db, sizeof s->db, "%s/readmodel.db", s->dir);
    snprintf(s->outbox, sizeof s->outbox, "%s/outbox.jsonl", s->dir);
    if (test_server_start(&s->store, NULL) != 0)
        return -1;
    int n = 0;
    for (; saga_args && saga_args[n] && n < 7; n++)
        s->args[SYS_SAGA][n] = saga_args[n];
    s->args[SYS_PROJECTIONS][0] = "--db";
    s->args[SYS_PROJECTIONS][1] = s->db;
    s->args[SYS_ORDER][0] = "--readmodel";
    s->args[SYS_ORDER][1] = s->db;
    s->args[SYS_NOTIFICATION][0] = "--outbox";
    s->args[SYS_NOTIFICATION][1] = s->outbox;
    for (int p = 0; p < SYS_PROCS; p++) {
        if (oms_proc_start(&s->procs[p], sys_proc_names[p], s->store.port, s->dir,
                           s->args[p]) != 0)
            return -1;
    }
    return 0;
}

int sys_destroy(sys_t *s)
{
    int unclean = 0;
    for (int p = SYS_PROCS - 1; p >= 0; p--) {
        if (!s->procs[p].pid)
            continue;
        int status = oms_proc_stop(&s->procs[p]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "oms system: %s stopped with status 0x%x\n", sys_proc_names[p],
                    (unsigned)status);
            unclean++;
        }
    }
    test_server_destroy(&s->store);
    if (s->dir[0])
        test_tmpdir_remove(s->dir);
    return unclean;
}

int sys_store_crash(sys_t *s)
{
    test_server_kill(&s->store);
    return test_server_restart_same_port(&s->store);
}

evs_conn_t *sys_connect(sys_t *s)
{
    evs_options_t opts;
    evs_options_default(&opts);
    opts.port = s->store.port;
    evs_conn_t *c = NULL;
    return evs_connect(&opts, &c) == 0 ? c : NULL;
}

/* The JSON body of order n of kind. */
static void order_body(unsigned n, order_kind_t kind, char *out, size_t cap)
{
    char sku[16], customer_id[16];
    sys_customer_of(n, customer_id);
    if (kind == KIND_OOS)
        snprintf(sku, sizeof sku, "sku-oos");
    else
        snprintf(sku, sizeof sku, "sku-%04u", 1 + n % 20);
    snprintf(out, cap,
             "{\"customer_id\":\"%s\",\"items\":[{\"sku\":\"%s\",\"quantity\":%u,"
             "\"unit_price_cents\":1999},{\"sku\":\"sku-%04u\",\"quantity\":1,"
             "\"unit_price_cents\":500}],\"currency\":\"EUR\",\"payment_token\":\"%s\","
             "\"shipping_address\":{\"name\":\"Ada\",\"line1\":\"1 Main St\",\"city\":\"Berlin\","
             "\"postal_code\":\"10115\",\"country\":\"%s\"}}",
             customer_id, sku, 1 + n % 3, 21 + n % 5,
             kind == KIND_DECLINED ? "tok_decline" : "tok_visa",
             kind == KIND_SHIPFAIL ? "ZZ" : "DE");
}

/* Takes "order_id" out of a JSON body (no full parse needed). */
static int order_id_of(const char *body, char order_id[33])
{
    const char *k = strstr(body, "\"order_id\"");
    const char *q = k ? strchr(k + 10, '"') : NULL;
    if (!q || strlen(q + 1) < 33 || q[33] != '"')
        return -EPROTO;
    memcpy(order_id, q + 1, 32);
    order_id[32] = '\0';
    return 0;
}

int sys_place(oms_curl_t **c, uint16_t port, unsigned n, order_kind_t kind, int retry_ms,
              char order_id[33])
{
    char body[1024], key[64];
    order_body(n, kind, body, sizeof body);
    snprintf(key, sizeof key, "Idempotency-Key: key-%u", n);
    const char *headers[] = {"Content-Type: application/json", key, NULL};
    uint64_t deadline = util_mono_ms() + retry_ms;
    int last = -1;
    for (;;) {
        if (!*c && oms_curl_open("127.0.0.1", port, 5000, c) != 0)
            *c = NULL;
        if (*c) {
            oms_curl_response_t res = {0};
            int rc = oms_curl_request(*c, "POST", "/orders", headers, body, strlen(body), &res);
            last = rc != 0 ? rc : res.status;
            if (rc == 0 && res.status == 201) {
                rc = order_id_of(res.body, order_id);
                oms_curl_response_free(&res);
                return rc;
            }
            oms_curl_response_free(&res);
            if (rc == 0 && res.status < 500)
                return last; /* a 4xx is not worth a retry */
            oms_curl_close(*c);
            *c = NULL;
        }
        if (util_mono_ms() >= deadline)
            return last;
        usleep(50000);
    }
}

int sys_stream_types(evs_conn_t *c, const char *stream, char types[][40], int max)
{
    evs_read_t req = {.stream = stream};
    evs_read_result_t res;
    int rc = evs_read(c, &req, &res);
    if (rc == EVS_ESTREAM_NOT_FOUND)
        return 0;
    if (rc != 0)
        return rc;
    int n = 0;
    for (size_t i = 0; i < res.count && n < max; i++)
        snprintf(types[n++], 40, "%s", res.events[i].type);
    evs_read_result_free(&res);
    return n;
}

const char *sys_verdict(evs_conn_t *c, const char *order_id, char reason[32], int *verdicts)
{
    char stream[64];
    snprintf(stream, sizeof stream, "order-%s", order_id);
    evs_read_t req = {.stream = stream};
    evs_read_result_t res;
    const char *verdict = NULL;
    int count = 0;
    if (evs_read(c, &req, &res) != 0)
        return NULL;
    for (size_t i = 0; i < res.count; i++) {
        const evs_recorded_event_t *ev = &res.events[i];
        if (strcmp(ev->type, "OrderCompleted") == 0) {
            verdict = "OrderCompleted";
            count++;
        } else if (strcmp(ev->type, "OrderFailed") == 0) {
            Oms__V1__OrderFailed *f = oms__v1__order_failed__unpack(NULL, ev->data_len, ev->data);
            if (reason)
                snprintf(reason, 32, "%s", f ? f->reason : "?");
            if (f)
                oms__v1__order_failed__free_unpacked(f, NULL);
            verdict = "OrderFailed";
            count++;
        }
    }
    evs_read_result_free(&res);
    if (verdicts)
        *verdicts = count;
    return verdict;
}

bool sys_all_verdicts(void *orders)
{
    sys_orders_t *o = orders;
    for (int i = 0; i < o->count; i++)
        if (!sys_verdict(o->conn, o->ids[i], NULL, NULL))
            return false;
    return true;
}

bool sys_all_notified(void *orders)
{
    sys_orders_t *o = orders;
    char types[8][40], stream[64];
    for (int i = 0; i < o->count; i++) {
        snprintf(stream, sizeof stream, "notification-%.32s", o->ids[i]);
        if (sys_stream_types(o->conn, stream, types, 8) != 1)
            return false;
    }
    return true;
}

int sys_digest(sys_t *s, char digest[33])
{
    char path[PATH_MAX], line[256];
    if (!oms_program_path("oms-projections", path, sizeof path))
        return -1;
    const char *argv[] = {path, "--digest", "--db", s->db, NULL};
    proc_spec_t spec = {.argv = argv, .out = {PROC_IO_PIPE}};
    int out = -1;
    pid_t pid = proc_start(&spec, &out);
    if (pid < 0)
        return -1;
    int rc = proc_read_line(out, line, sizeof line, SYS_DIGEST_MS_MAX);
    if (rc == 0 && sscanf(line, "digest %32s", digest) != 1)
        rc = -1;
    int status = proc_end(pid, 0, SYS_DIGEST_MS_MAX, "oms-projections --digest");
    close(out);
    return rc == 0 && status == 0 ? 0 : -1;
}

int sys_json_string(const char *json, const char *key, char *out, size_t cap)
{
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\":", key);
    const char *v = strstr(json, quoted);
    if (!v)
        return -1;
    v += strlen(quoted);
    out[0] = '\0';
    if (strncmp(v, "null", 4) == 0)
        return 1;
    const char *end = *v == '"' ? strchr(v + 1, '"') : NULL;
    if (!end || (size_t)(end - v - 1) >= cap)
        return -1;
    memcpy(out, v + 1, (size_t)(end - v - 1));
    out[end - v - 1] = '\0';
    return 0;
}

/* What GET /orders/{id} of an order with outcome o must show. */
static void readmodel_want(const sys_outcome_t *o, const char **status,
                           const char **payment_status)
{
    *status = o->completed ? "COMPLETED" : "FAILED";
    if (o->completed)
        *payment_status = "charged";
    else
        *payment_status = strcmp(o->reason, "payment_declined") == 0 ? "declined" : "refunded";
}

/* Whether order i's GET answer shows its outcome; when not, and why is
 * not NULL, says how into why (why_cap bytes). */
static bool readmodel_order_agrees(const sys_readmodel_t *rm, int i, const oms_curl_response_t *res,
                                   char *why, size_t why_cap)
{
    const char *status, *payment_status;
    readmodel_want(&rm->want[i], &status, &payment_status);
    char source[16], got_status[16], reason[32], payment[16];
    const char *body = res->body ? res->body : "";
    bool parsed = sys_json_string(body, "source", source, sizeof source) == 0 &&
                  sys_json_string(body, "status", got_status, sizeof got_status) == 0 &&
                  sys_json_string(body, "failure_reason", reason, sizeof reason) >= 0 &&
                  sys_json_string(body, "payment_status", payment, sizeof payment) >= 0;
    bool agrees = res->status == 200 && parsed && strcmp(source, "readmodel") == 0 &&
                  strcmp(got_status, status) == 0 && strcmp(reason, rm->want[i].reason) == 0 &&
                  strcmp(payment, payment_status) == 0;
    if (!parsed)
        source[0] = got_status[0] = reason[0] = payment[0] = '\0';
    if (!agrees && why)
        snprintf(why, why_cap,
                 "order %d %.32s: want %s \"%s\" %s from the read model; GET says %d: %s \"%s\" "
                 "%s from the %s",
                 i, rm->ids[i], status, rm->want[i].reason, payment_status, res->status,
                 got_status, reason, payment, source);
    return agrees;
}

bool sys_readmodel_agrees(void *readmodel)
{
    sys_readmodel_t *rm = readmodel;
    oms_curl_t *c = NULL;
    rm->agreeing = 0;
    rm->why[0] = '\0';
    if (oms_curl_open("127.0.0.1", rm->http_port, 5000, &c) != 0) {
        snprintf(rm->why, sizeof rm->why, "cannot connect to oms-order");
        return false;
    }
    for (int i = 0; i < rm->count; i++) {
        char path[64];
        snprintf(path, sizeof path, "/orders/%.32s", rm->ids[i]);
        oms_curl_response_t res = {0};
        int rc = oms_curl_request(c, "GET", path, NULL, NULL, 0, &res);
        if (rc != 0) {
            snprintf(rm->why, sizeof rm->why, "GET %s: %d", path, rc);
            break;
        }
        char *why = rm->why[0] ? NULL : rm->why; /* the first disagreement is kept */
        rm->agreeing += readmodel_order_agrees(rm, i, &res, why, sizeof rm->why);
        oms_curl_response_free(&res);
    }
    oms_curl_close(c);
    return rm->agreeing == rm->count;
}
