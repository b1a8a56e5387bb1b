/* demo.h -- oms-demo, the load generator of the order management system
 * (internal to services/demo).
 *
 * oms-demo places N orders of a known mix over the HTTP API of oms-order
 * and watches "$ce-order" for the saga's verdicts (OrderCompleted,
 * OrderFailed), so it can say, per kind of order, whether each reached the
 * verdict its kind calls for, and how long each took from just before its
 * POST to the arrival of its verdict.
 *
 *   demo_plan.c    the mix, which order is which kind, each order's JSON
 *   demo_load.c    the threads that POST orders (keep-alive, retries, rate)
 *   demo_watch.c   the subscription thread and the order_id -> order match
 *   demo_report.c  the figures: the table and the --json file
 *   demo_main.c    flags, and the run from start to exit status
 */
#ifndef OMS_DEMO_H
#define OMS_DEMO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* ==== limits and defaults ============================================== */

#define DEMO_ORDERS_MAX 10000000u        /* --orders */
#define DEMO_CONCURRENCY_MAX 1024u       /* --concurrency */
#define DEMO_RATE_MAX 1000000u           /* --rate (orders/s; 0: as fast as it goes) */
#define DEMO_TIMEOUT_S_MAX 3600u         /* --timeout-s */
#define DEMO_TIMEOUT_S_DEFAULT "60"
#define DEMO_ORDERS_DEFAULT "1000"
#define DEMO_CONCURRENCY_DEFAULT "16"
#define DEMO_MIX_DEFAULT "success=70,declined=10,oos=10,shipfail=10"
#define DEMO_HTTP_DEFAULT "127.0.0.1:8080"
#define DEMO_HTTP_TIMEOUT_MS 10000       /* connect, and each request */
#define DEMO_POST_ATTEMPTS_MAX 6u        /* a POST answered 503 or lost: tries in all */
#define DEMO_POST_BACKOFF_MS_FIRST 20    /* wait before the 2nd try, doubled after */
#define DEMO_GIVE_UP_FAILED 32u          /* this many failed orders and none placed: stop */
#define DEMO_ORDER_ID_BYTES_MAX 64u      /* an order id from the API */
#define DEMO_BODY_BYTES_MAX 1024u        /* one order's JSON */
#define DEMO_KEY_BYTES_MAX 64u           /* one Idempotency-Key */
#define DEMO_SKUS 100u                   /* normal SKUs: sku-0001..sku-0100 */
#define DEMO_CUSTOMERS 1000u             /* customers: cust-0001.. */
#define DEMO_ITEMS_MAX 3u                /* normal items per order: 1..this */

/* ==== kinds and verdicts =============================================== */

typedef enum {
    DEMO_SUCCESS = 0, /* normal SKUs, tok_visa, country DE: completed */
    DEMO_DECLINED,    /* tok_decline: failed payment_declined */
    DEMO_OOS,         /* one item of sku-oos: failed out_of_stock */
    DEMO_SHIPFAIL,    /* country ZZ: failed shipping_failed */
    DEMO_KINDS
} demo_kind_t;

/* The reasons of OrderFailed (oms.proto), and one for any other text. */
typedef enum {
    DEMO_R_PAYMENT_DECLINED = 0,
    DEMO_R_OUT_OF_STOCK,
    DEMO_R_SHIPPING_FAILED,
    DEMO_R_PAYMENT_TIMEOUT,
    DEMO_R_INVENTORY_TIMEOUT,
    DEMO_R_SHIPPING_TIMEOUT,
    DEMO_R_OTHER,
    DEMO_REASONS
} demo_reason_t;

typedef enum {
    DEMO_V_NONE = 0,  /* no verdict (yet) */
    DEMO_V_COMPLETED,
    DEMO_V_FAILED,
} demo_verdict_t;

/* "success", "declined", ... */
const char *demo_kind_name(demo_kind_t k);
/* "payment_declined", ... ("other" for DEMO_R_OTHER). */
const char *demo_reason_name(demo_reason_t r);
/* The reason named by text; DEMO_R_OTHER when it is none of the known. */
demo_reason_t demo_reason_parse(const char *text);

/* ==== configuration ===================================================== */

typedef struct {
    char http_host[128];
    uint16_t http_port;
    char store_host[128];
    uint16_t store_port;
    uint32_t orders;
    uint32_t concurrency;
    uint32_t rate;             /* orders/s over all threads; 0: unlimited */
    uint32_t mix[DEMO_KINDS];  /* weights */
    uint32_t timeout_s;
    const char *json_path;     /* NULL: none */
    uint64_t seed;
} demo_config_t;

/* Parses "success=70,declined=10,oos=10,shipfail=10" into weights (kinds
 * left out weigh 0; at least one must weigh more than 0). Returns 0 or
 * -EINVAL with a message on stderr. */
int demo_mix_parse(const char *text, uint32_t mix[DEMO_KINDS]);

/* ==== orders ============================================================ */

typedef enum {
    DEMO_S_PENDING = 0, /* not sent yet */
    DEMO_S_PLACED,      /* the API accepted it (order_id known) */
    DEMO_S_POST_FAILED, /* no accepting answer after the retries */
} demo_state_t;

typedef struct {
    demo_kind_t kind;
    demo_state_t state;
    char order_id[DEMO_ORDER_ID_BYTES_MAX + 1];
    int post_status;        /* last HTTP status, or -errno of the last try */
    uint32_t post_attempts;
    int64_t post_ns;        /* monotonic, just before the first POST */
    int64_t posted_ns;      /* monotonic, when the accepting answer came */
    /* Filled by the watcher under its lock: */
    demo_verdict_t verdict;
    demo_reason_t reason;
    int64_t verdict_ns;     /* monotonic, when the verdict event arrived */
    uint32_t verdicts;      /* verdict events seen for it (more than 1: a bug) */
} demo_order_t;

/* Fills orders[0..n) with kinds in the proportions of mix (exact counts,
 * the remainder to the largest fractions), shuffled by seed. */
void demo_plan_kinds(demo_order_t *orders, size_t n, const uint32_t mix[DEMO_KINDS],
                     uint64_t seed);

/* Writes the JSON body of order i (of kind k; its items, customer and
 * address depend only on seed and i) into buf. Returns its length, or
 * -ENOSPC. */
int demo_plan_body(demo_kind_t k, uint64_t seed, size_t i, char *buf, size_t cap);

/* The Idempotency-Key of order i of a run: "demo-<run>-<i>". */
void demo_plan_key(uint64_t run, size_t i, char *buf, size_t cap);

/* ==== the watcher ======================================================= */

typedef struct demo_watch demo_watch_t;

/* Subscribes to "$ce-order" from its end for OrderCompleted and OrderFailed
 * (so every verdict of an order placed after this returns is seen), and
 * starts the thread that matches verdicts to orders[0..n). Returns 0, or an
 * evs error / -errno with a message on stderr. */
int demo_watch_start(const demo_config_t *cfg, demo_order_t *orders, size_t n,
                     demo_watch_t **out);

/* Tells the watcher that orders[i] was accepted with orders[i].order_id
 * (set it first); a verdict that came before this is applied now. */
void demo_watch_placed(demo_watch_t *w, size_t i);

/* Tells the watcher that no more orders will be placed: `placed` orders
 * were accepted in all. */
void demo_watch_all_placed(demo_watch_t *w, size_t placed);

/* Waits until every placed order has a verdict, or until deadline_ns
 * (monotonic), or until *stop is set. Returns true when all came. */
bool demo_watch_wait(demo_watch_t *w, int64_t deadline_ns, volatile int *stop);

#define DEMO_OTHER_REASONS_MAX 4u  /* distinct unknown OrderFailed reasons kept */
#define DEMO_REASON_BYTES_MAX 64u

/* What the watcher saw besides the verdicts of our orders. */
typedef struct {
    uint64_t foreign;   /* verdicts of orders that are not ours */
    int error;          /* why the subscription ended (0: it did not) */
    char other_reasons[DEMO_OTHER_REASONS_MAX][DEMO_REASON_BYTES_MAX]; /* unknown reason texts */
    size_t other_reason_count;
} demo_watch_stats_t;

/* Stops the thread, closes the subscription and frees w; *stats gets what
 * it saw. */
void demo_watch_stop(demo_watch_t *w, demo_watch_stats_t *stats);

/* ==== the load ========================================================== */

typedef struct {
    int64_t first_post_ns;   /* monotonic; 0 when nothing was sent */
    int64_t last_posted_ns;  /* the last accepting answer */
    size_t placed;
    size_t post_failed;
    size_t not_sent;         /* stopped before sending them */
    uint64_t retries;
} demo_load_result_t;

/* POSTs orders[0..n) from cfg->concurrency threads, each with one
 * keep-alive connection, at most cfg->rate orders/s in all, and tells w of
 * each accepted order. Returns when every order was sent (or *stop was
 * set). Returns 0, or -errno when a thread could not be started. */
int demo_load_run(const demo_config_t *cfg, demo_order_t *orders, size_t n, uint64_t run,
                  demo_watch_t *w, volatile int *stop, demo_load_result_t *res);


/* ==== the report ======================================================== */

typedef struct {
    const demo_config_t *cfg;
    const demo_order_t *orders;
    size_t n;
    const demo_load_result_t *load;
    demo_watch_stats_t watch;
} demo_report_in_t;

/* Prints the table to stdout, writes cfg->json_path when set, and returns
 * true when every order was placed and reached its expected verdict
 * within cfg->timeout_s of its POST (exactly one verdict each). */
bool demo_report(const demo_report_in_t *in);

#endif
