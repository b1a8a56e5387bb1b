/* proj.h -- oms-projections: the SQLite read model of the OMS (internal).
 *
 * The program follows "$all" with a catch-up subscription (filtered to the
 * event types it applies), applies each event to the tables orders, stock
 * and customers, and writes the position of the last applied event into
 * projection_checkpoint in the same SQLite transaction as the rows. So
 * after a crash the read model and its checkpoint are consistent, and the
 * subscription resumes at checkpoint + 1: nothing is applied twice and
 * nothing is lost. docs/oms-projections.md describes the tables and what
 * every event does to them.
 *
 * Modules (prefix oms_proj_):
 *   proj_db.c       the database: open, schema, pragmas, transactions,
 *                   checkpoint, drop for a rebuild, prepared statements
 *   proj_events.c   the table of applied event types (decode + apply)
 *   proj_order.c    what the order, payment, inventory and shipment
 *                   events do to orders and customers
 *   proj_stock.c    what the stock events do to stock
 *   proj_items.c    items_json of an order
 *   proj_digest.c   --digest: XXH64 over every row
 *   proj_metrics.c  the program's metrics
 *   proj_run.c      the main loop: subscription, batches, commits
 *   main.c          options and modes
 */
#ifndef OMS_PROJ_H
#define OMS_PROJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "evstore.h"
#include "oms.h"

/* ==== limits and defaults ============================================== */

#define OMS_PROJ_DB_DEFAULT "data/oms/readmodel.db"
#define OMS_PROJ_BATCH_MAX_DEFAULT 1000    /* events per transaction */
#define OMS_PROJ_BATCH_MAX_LIMIT 1000000u
#define OMS_PROJ_COMMIT_MS_MAX 10           /* an open transaction commits after this */
#define OMS_PROJ_IDLE_POLL_MS 100           /* wait for events when nothing is open */
#define OMS_PROJ_BUSY_TIMEOUT_MS 5000       /* SQLite waits this long for a lock */
#define OMS_PROJ_SUBSCRIBE_RETRY_MS_MAX 2000 /* one evs_subscribe() waits this long for the store */
#define OMS_PROJ_CHECKPOINT_NAME "main"

/* ==== the database (proj_db.c) ========================================= */

/* The prepared statements, one per SQL text in proj_db.c. */
typedef enum {
    OMS_PROJ_SQL_ORDER_INSERT,
    OMS_PROJ_SQL_ORDER_UPDATE,     /* status (ranked), sub-statuses, reason, shipment */
    OMS_PROJ_SQL_CUSTOMER_PLACED,
    OMS_PROJ_SQL_CUSTOMER_CHARGED, /* once per order: while it has no payment status */
    OMS_PROJ_SQL_CUSTOMER_REFUNDED,/* once per order: until it is refunded */
    OMS_PROJ_SQL_CUSTOMER_FINAL,   /* once per order: while it is not final */
    OMS_PROJ_SQL_STOCK_DELTA,
    OMS_PROJ_SQL_CHECKPOINT_SET,
    OMS_PROJ_SQL_CHECKPOINT_GET,
    OMS_PROJ_SQL_COUNT
} oms_proj_sql_t;

typedef struct oms_proj_db oms_proj_db_t;

/* Opens (creating it and its directory if missing) the read model at path
 * for writing: WAL mode, synchronous=NORMAL, the schema created if absent,
 * every statement prepared. reset: first drop every table (the checkpoint
 * too) and create them again, in one transaction (--rebuild). Returns 0 and
 * *out, or a negative errno with a message on stderr. */
int oms_proj_db_open(const char *path, bool reset, oms_proj_db_t **out);

/* Finalizes the statements and closes the database. NULL is a no-op. */
void oms_proj_db_close(oms_proj_db_t *db);

/* The checkpoint: *position gets the last applied position, or -1 when
 * nothing was ever applied. Returns 0 or -EIO. */
int oms_proj_db_checkpoint(oms_proj_db_t *db, int64_t *position);

/* Begins a write transaction (holding SQLite's write lock until it ends)
 * and checks that the stored checkpoint is still `checkpoint`, the one this
 * process committed last: when another process wrote the model meanwhile,
 * applying on would apply its events twice. Returns 0, -EBUSY (the
 * checkpoint moved; rolled back) or -EIO. */
int oms_proj_db_begin(oms_proj_db_t *db, int64_t checkpoint);

/* Commits with the checkpoint set to position in the same transaction
 * (position < 0: leave it). Returns 0 or -EIO. Rollback never fails
 * visibly (nothing happens when no transaction is open). */
int oms_proj_db_commit(oms_proj_db_t *db, int64_t position);
void oms_proj_db_rollback(oms_proj_db_t *db);

/* The prepared statement which, reset and with no bindings. Bind its
 * parameters, then oms_proj_db_step(). */
sqlite3_stmt *oms_proj_db_stmt(oms_proj_db_t *db, oms_proj_sql_t which);

/* Runs statement which to completion, then resets it and clears its
 * bindings. *changes (may be NULL) gets the rows it changed. Returns 0 or
 * -EIO with a message on stderr. */
int oms_proj_db_step(oms_proj_db_t *db, oms_proj_sql_t which, int *changes);

/* ==== the events (proj_events.c) ======================================= */

/* How the applied event types are known: by index, 0..oms_proj_event_count(). */
size_t oms_proj_event_count(void);
const char *oms_proj_event_type(size_t index);

/* The index of type, or -1 when it is not applied. */
int oms_proj_event_index(const char *type);

/* Decodes ev (of type index) and applies it in the open transaction.
 * Returns 0, -EBADMSG when the payload does not decode or lacks what the
 * event needs (nothing was written), or -EIO / -ENOMEM (the transaction
 * must be rolled back). */
int oms_proj_apply(oms_proj_db_t *db, size_t index, const evs_recorded_event_t *ev);

/* ==== what events do (proj_order.c, proj_stock.c) ====================== */

/* Each takes the decoded message (a ProtobufCMessage of its type) and the
 * recorded event; returns as oms_proj_apply(). */
typedef int (*oms_proj_apply_fn)(oms_proj_db_t *db, const void *msg,
                                 const evs_recorded_event_t *ev);

int oms_proj_order_placed(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev);
int oms_proj_payment_processed(oms_proj_db_t *db, const void *msg,
                               const evs_recorded_event_t *ev);
int oms_proj_payment_failed(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev);
int oms_proj_payment_refunded(oms_proj_db_t *db, const void *msg,
                              const evs_recorded_event_t *ev);
int oms_proj_inventory_reserved(oms_proj_db_t *db, const void *msg,
                                const evs_recorded_event_t *ev);
int oms_proj_inventory_failed(oms_proj_db_t *db, const void *msg,
                              const evs_recorded_event_t *ev);
int oms_proj_inventory_released(oms_proj_db_t *db, const void *msg,
                                const evs_recorded_event_t *ev);
int oms_proj_order_shipped(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev);
int oms_proj_shipment_failed(oms_proj_db_t *db, const void *msg,
                             const evs_recorded_event_t *ev);
int oms_proj_shipment_cancelled(oms_proj_db_t *db, const void *msg,
                                const evs_recorded_event_t *ev);
int oms_proj_refund_requested(oms_proj_db_t *db, const void *msg,
                              const evs_recorded_event_t *ev);
int oms_proj_release_requested(oms_proj_db_t *db, const void *msg,
                               const evs_recorded_event_t *ev);
int oms_proj_order_completed(oms_proj_db_t *db, const void *msg,
                             const evs_recorded_event_t *ev);
int oms_proj_order_failed(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev);
int oms_proj_stock_added(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev);
int oms_proj_stock_reserved(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev);
int oms_proj_stock_released(oms_proj_db_t *db, const void *msg, const evs_recorded_event_t *ev);

/* ==== items_json (proj_items.c) ======================================== */

struct Oms__V1__OrderItem;

/* The JSON array [{"sku":..,"quantity":..,"unit_price_cents":..}, ...] of
 * items[0..count), compact (the keys in that order, as oms-order writes
 * them), malloc'd into *json (the caller frees it). Returns 0, -EBADMSG (an
 * empty sku or one that is not UTF-8 text, a negative price) or -ENOMEM. */
int oms_proj_items_json(struct Oms__V1__OrderItem *const *items, size_t count, char **json);

/* ==== --digest (proj_digest.c) ========================================= */

/* XXH64 over every row of orders, stock and customers (in primary-key
 * order, every column, the checkpoint excluded) of the read model at path,
 * read in one read transaction, opened read-only. Returns 0 and *digest, or
 * -ENOENT (no such file) / -EIO (not a read model, unreadable) with a
 * message on stderr. */
int oms_proj_digest(const char *path, uint64_t *digest);

/* ==== metrics (proj_metrics.c) ========================================= */

typedef struct oms_proj_metrics oms_proj_metrics_t;

/* The series of the program in registry m: oms_projection_position,
 * oms_projection_events_total{type} (one per applied type),
 * oms_projection_batch_seconds, oms_projection_bad_events_total. m may be
 * NULL (metrics off): every update is then a no-op. Returns NULL on ENOMEM. */
oms_proj_metrics_t *oms_proj_metrics_new(oms_metrics_t *m);
void oms_proj_metrics_free(oms_proj_metrics_t *pm);

void oms_proj_metrics_event(oms_proj_metrics_t *pm, size_t index);
void oms_proj_metrics_bad(oms_proj_metrics_t *pm);
void oms_proj_metrics_position(oms_proj_metrics_t *pm, int64_t position);
void oms_proj_metrics_batch(oms_proj_metrics_t *pm, double seconds);

/* ==== the main loop (proj_run.c) ======================================= */

typedef struct {
    const oms_config_t *cfg;
    const char *db_path;
    bool rebuild;         /* drop the tables and replay from position 0 */
    uint32_t batch_max;   /* events per transaction */
    volatile int *stop;   /* set by SIGINT/SIGTERM */
} oms_proj_run_t;

/* Opens the read model, starts /metrics, subscribes to "$all" from the
 * checkpoint + 1, prints the ready line and applies events until *stop;
 * then commits what it has. Returns 0 after a clean stop, or 1 on a fatal
 * error (message on stderr). */
int oms_proj_run(const oms_proj_run_t *run);

#endif
