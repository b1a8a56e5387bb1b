/* oms_system.h -- the whole OMS for end-to-end tests: a real evstored and
 * every service, orders of known kinds placed over HTTP, and readers of the
 * streams that the tests check invariants on. */
#ifndef OMS_SYSTEM_H
#define OMS_SYSTEM_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "evstore.h"
#include "oms_curl.h"
#include "oms_fixture.h"
#include "server_fixture.h"

/* A numeric macro as a string literal: the flag value of a named limit. */
#define SYS_DECIMAL_(x) #x
#define SYS_DECIMAL(x) SYS_DECIMAL_(x)

typedef enum {
    SYS_SAGA, SYS_PAYMENT, SYS_INVENTORY, SYS_SHIPPING, SYS_NOTIFICATION, SYS_PROJECTIONS,
    SYS_ORDER, SYS_PROCS
} sys_proc_t;

typedef struct {
    test_server_t store;
    oms_proc_t procs[SYS_PROCS];
    char dir[PATH_MAX];        /* outputs, read model, outbox */
    char db[PATH_MAX + 16];
    char outbox[PATH_MAX + 16];
    const char *args[SYS_PROCS][8]; /* per-program arguments (kept for restarts) */
} sys_t;

extern const char *const sys_proc_names[SYS_PROCS];

/* Starts evstored and every service. saga_args (NULL-terminated, may be
 * NULL) are added to oms-saga's arguments. Returns 0 or -1. */
int sys_start(sys_t *s, const char *const *saga_args);
/* Stops everything (SIGTERM) and removes the directories. Returns how
 * many programs did not exit with status 0 (under the sanitizers that
 * includes a leak or an error found at exit); each is named on stderr. */
int sys_destroy(sys_t *s);
/* kill -9 evstored and start it again on the same port. */
int sys_store_crash(sys_t *s);

typedef enum { KIND_SUCCESS, KIND_DECLINED, KIND_OOS, KIND_SHIPFAIL, KIND_COUNT } order_kind_t;

extern const char *const kind_names[KIND_COUNT];
extern const char *const kind_reasons[KIND_COUNT]; /* expected failure reason, "" for success */

/* The kind of order number n in the standard mix: 7 in 10 succeed, then
 * one each declined, out of stock, shipping failure. */
order_kind_t sys_kind_of(unsigned n);

/* The customer of order number n ("cust-<n % 17>"). */
void sys_customer_of(unsigned n, char customer_id[16]);

/* How an order ended. */
typedef struct {
    bool completed;  /* OrderCompleted; else OrderFailed */
    char reason[32]; /* OrderFailed's reason; "" when completed */
} sys_outcome_t;

/* How an order of kind ends when no step of its saga times out. */
sys_outcome_t sys_kind_outcome(order_kind_t kind);

/* POSTs order number n of kind over c (Idempotency-Key "key-<n>"),
 * retrying with the same key on a connection error or 5xx for up to
 * retry_ms. Fills order_id (33 bytes). Returns 0, or the last HTTP status
 * or -errno. */
int sys_place(oms_curl_t **c, uint16_t port, unsigned n, order_kind_t kind, int retry_ms,
              char order_id[33]);

/* The types of stream's events, up to max, in order. Returns the count
 * (0 when it does not exist) or a negative error. */
int sys_stream_types(evs_conn_t *c, const char *stream, char types[][40], int max);

/* The verdict of an order: "OrderCompleted", "OrderFailed" (reason copied
 * into reason[32]), or NULL when none yet. Counts verdict events in
 * *verdicts (may be NULL). */
const char *sys_verdict(evs_conn_t *c, const char *order_id, char reason[32], int *verdicts);

/* Orders placed by a test, for the wait conditions below. */
typedef struct {
    evs_conn_t *conn;
    char (*ids)[33];
    int count;
} sys_orders_t;

/* oms_wait_until() conditions on a sys_orders_t: every order has a
 * verdict; every order has exactly one NotificationSent. */
bool sys_all_verdicts(void *orders);
bool sys_all_notified(void *orders);

/* The read model as oms-order serves it, for oms_wait_until(): true when
 * GET /orders/{id} of every order answers from the read model
 * ("source":"readmodel") with the status, failure_reason and
 * payment_status its outcome implies (completed: COMPLETED, charged;
 * failed: FAILED with the reason, declined for payment_declined and
 * refunded for every other failure, whose saga refunds). */
typedef struct {
    uint16_t http_port;        /* oms-order's */
    char (*ids)[33];
    const sys_outcome_t *want; /* per order */
    int count;
    int agreeing;              /* orders the last check found right */
    char why[256];             /* the first disagreement the last check found */
} sys_readmodel_t;

bool sys_readmodel_agrees(void *readmodel);

/* The string value of the first "key": in compact JSON (as jansson's
 * JSON_COMPACT writes it) into out, for values without escapes (ids,
 * names, statuses). Returns 0, 1 when the value is null (out ""), -1 when
 * the key is missing, the value is not a string or does not fit. */
int sys_json_string(const char *json, const char *key, char *out, size_t cap);

/* Connects a client to the system's store. */
evs_conn_t *sys_connect(sys_t *s);

/* Runs oms-projections --digest on the read model: fills digest (33 bytes).
 * Returns 0 or -1. */
int sys_digest(sys_t *s, char digest[33]);

#endif
