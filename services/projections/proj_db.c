/* proj_db.c -- the read model's database: schema, transactions, checkpoint,
 * prepared statements. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proj.h"

struct oms_proj_db {
    sqlite3 *sql;
    const char *path; /* for messages; the caller's string */
    sqlite3_stmt *stmt[OMS_PROJ_SQL_COUNT];
};

/* The schema oms-order reads (docs/oms-projections.md). */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS orders(order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL,"
    " status TEXT NOT NULL, total_cents INTEGER NOT NULL, currency TEXT NOT NULL,"
    " items_json TEXT NOT NULL, item_count INTEGER NOT NULL, failure_reason TEXT,"
    " payment_status TEXT, inventory_status TEXT, shipment_status TEXT, shipment_id TEXT,"
    " placed_at_ns INTEGER NOT NULL, updated_at_ns INTEGER NOT NULL,"
    " placed_position INTEGER NOT NULL, last_position INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS orders_by_customer ON orders(customer_id, placed_position);"
    "CREATE INDEX IF NOT EXISTS orders_by_status ON orders(status, placed_position);"
    "CREATE TABLE IF NOT EXISTS stock(sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL,"
    " reserved INTEGER NOT NULL, available INTEGER NOT NULL, last_position INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS customers(customer_id TEXT PRIMARY KEY,"
    " orders_placed INTEGER NOT NULL, orders_completed INTEGER NOT NULL,"
    " orders_failed INTEGER NOT NULL, spent_cents INTEGER NOT NULL,"
    " refunded_cents INTEGER NOT NULL, last_order_id TEXT, last_position INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS projection_checkpoint(name TEXT PRIMARY KEY,"
    " position INTEGER NOT NULL);";

static const char drop_sql[] = "DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS stock;"
                               "DROP TABLE IF EXISTS customers;"
                               "DROP TABLE IF EXISTS projection_checkpoint;";

/* The order of a status: it only moves forwards, and the final ones
 * (COMPLETED, FAILED) never change. */
#define STATUS_RANK(col)                                                                      \
    "(CASE " col " WHEN 'PENDING' THEN 0 WHEN 'PAID' THEN 1 WHEN 'RESERVED' THEN 2"          \
    " WHEN 'SHIPPED' THEN 3 WHEN 'COMPENSATING' THEN 4 ELSE 5 END)"

/* NULL parameters leave their column alone. A refunded payment and a
 * released reservation are the end of their story and stay. */
static const char *const sql_text[OMS_PROJ_SQL_COUNT] = {
    [OMS_PROJ_SQL_ORDER_INSERT] =
        "INSERT INTO orders(order_id, customer_id, status, total_cents, currency, items_json,"
        " item_count, placed_at_ns, updated_at_ns, placed_position, last_position)"
        " VALUES(?1, ?2, 'PENDING', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)"
        " ON CONFLICT(order_id) DO NOTHING",
    [OMS_PROJ_SQL_ORDER_UPDATE] =
        "UPDATE orders SET"
        " status = CASE WHEN ?2 IS NOT NULL AND " STATUS_RANK("status") " < " STATUS_RANK("?2")
        " THEN ?2 ELSE status END,"
        " failure_reason = CASE WHEN ?3 IS NOT NULL AND " STATUS_RANK("status") " < 5"
        " THEN ?3 ELSE failure_reason END,"
        " payment_status = CASE WHEN ?4 IS NULL OR payment_status IS 'refunded'"
        " THEN payment_status ELSE ?4 END,"
        " inventory_status = CASE WHEN ?5 IS NULL OR inventory_status IS 'released'"
        " THEN inventory_status ELSE ?5 END,"
        " shipment_status = COALESCE(?6, shipment_status),"
        " shipment_id = COALESCE(?7, shipment_id),"
        " updated_at_ns = ?8, last_position = ?9"
        " WHERE order_id = ?1",
    [OMS_PROJ_SQL_CUSTOMER_PLACED] =
        "INSERT INTO customers(customer_id, orders_placed, orders_completed, orders_failed,"
        " spent_cents, refunded_cents, last_order_id, last_position)"
        " VALUES(?1, 1, 0, 0, 0, 0, ?2, ?3)"
        " ON CONFLICT(customer_id) DO UPDATE SET orders_placed = orders_placed + 1,"
        " last_order_id = excluded.last_order_id, last_position = excluded.last_position",
    [OMS_PROJ_SQL_CUSTOMER_CHARGED] =
        "UPDATE customers SET spent_cents = spent_cents + ?2, last_position = ?3"
        " WHERE customer_id = (SELECT customer_id FROM orders"
        " WHERE order_id = ?1 AND payment_status IS NULL)",
    [OMS_PROJ_SQL_CUSTOMER_REFUNDED] =
        "UPDATE customers SET refunded_cents = refunded_cents + ?2, last_position = ?3"
        " WHERE customer_id = (SELECT customer_id FROM orders"
        " WHERE order_id = ?1 AND payment_status IS NOT 'refunded')",
    [OMS_PROJ_SQL_CUSTOMER_FINAL] =
        "UPDATE customers SET orders_completed = orders_completed + ?2,"
        " orders_failed = orders_failed + ?3, last_position = ?4"
        " WHERE customer_id = (SELECT customer_id FROM orders"
        " WHERE order_id = ?1 AND status NOT IN ('COMPLETED', 'FAILED'))",
    [OMS_PROJ_SQL_STOCK_DELTA] =
        "INSERT INTO stock(sku, on_hand, reserved, available, last_position)"
        " VALUES(?1, ?2, ?3, ?2 - ?3, ?4)"
        " ON CONFLICT(sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand,"
        " reserved = reserved + excluded.reserved,"
        " available = (on_hand + excluded.on_hand) - (reserved + excluded.reserved),"
        " last_position = excluded.last_position",
    [OMS_PROJ_SQL_CHECKPOINT_SET] =
        "INSERT INTO projection_checkpoint(name, position) VALUES('" OMS_PROJ_CHECKPOINT_NAME
        "', ?1) ON CONFLICT(name) DO UPDATE SET position = excluded.position",
    [OMS_PROJ_SQL_CHECKPOINT_GET] =
        "SELECT position FROM projection_checkpoint WHERE name = '" OMS_PROJ_CHECKPOINT_NAME "'",
};

static int db_fail(oms_proj_db_t *db, const char *what)
{
    fprintf(stderr, "oms-projections: %s: %s: %s\n", db->path, what, sqlite3_errmsg(db->sql));
    return -EIO;
}

static int db_exec(oms_proj_db_t *db, const char *sql, const char *what)
{
    return sqlite3_exec(db->sql, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(db, what);
}

/* Creates the directories above path (mkdir -p of its dirname). */
static int make_parent_dirs(const char *path)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return -ENAMETOOLONG;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            int err = -errno;
            fprintf(stderr, "oms-projections: mkdir %s: %s\n", dir, strerror(errno));
            return err;
        }
        *p = '/';
    }
    return 0;
}

/* journal_mode=WAL answers with the mode it got; anything else is refused. */
static int db_set_wal(oms_proj_db_t *db)
{
    sqlite3_stmt *st = NULL;
    int err = 0;
    if (sqlite3_prepare_v2(db->sql, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        err = db_fail(db, "journal_mode=WAL");
    else if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        fprintf(stderr, "oms-projections: %s: journal_mode is %s, not wal\n", db->path,
                (const char *)sqlite3_column_text(st, 0));
        err = -EIO;
    }
    sqlite3_finalize(st);
    return err;
}

static int db_schema(oms_proj_db_t *db, bool reset)
{
    int err = db_exec(db, "BEGIN IMMEDIATE", "begin");
    if (!err && reset)
        err = db_exec(db, drop_sql, "drop the tables");
    if (!err)
        err = db_exec(db, schema_sql, "create the schema");
    if (!err)
        return db_exec(db, "COMMIT", "commit the schema");
    sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

static int db_prepare(oms_proj_db_t *db)
{
    for (int i = 0; i < OMS_PROJ_SQL_COUNT; i++) {
        if (sqlite3_prepare_v3(db->sql, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &db->stmt[i], NULL) != SQLITE_OK)
            return db_fail(db, "prepare");
    }
    return 0;
}

int oms_proj_db_open(const char *path, bool reset, oms_proj_db_t **out)
{
    *out = NULL;
    int err = make_parent_dirs(path);
    if (err)
        return err;
    oms_proj_db_t *db = calloc(1, sizeof *db);
    if (!db)
        return -ENOMEM;
    db->path = path;
    if (sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        err = db_fail(db, "open");
        goto err_close;
    }
    sqlite3_busy_timeout(db->sql, OMS_PROJ_BUSY_TIMEOUT_MS);
    err = db_set_wal(db);
    if (!err)
        err = db_exec(db, "PRAGMA synchronous=NORMAL", "synchronous=NORMAL");
    if (!err)
        err = db_schema(db, reset);
    if (!err)
        err = db_prepare(db);
    if (err)
        goto err_close;
    *out = db;
    return 0;
err_close:
    oms_proj_db_close(db);
    return err;
}

void oms_proj_db_close(oms_proj_db_t *db)
{
    if (!db)
        return;
    for (int i = 0; i < OMS_PROJ_SQL_COUNT; i++)
        sqlite3_finalize(db->stmt[i]);
    sqlite3_close(db->sql);
    free(db);
}

int oms_proj_db_checkpoint(oms_proj_db_t *db, int64_t *position)
{
    sqlite3_stmt *st = db->stmt[OMS_PROJ_SQL_CHECKPOINT_GET];
    int rc = sqlite3_step(st);
    *position = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    int err = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(db, "read the checkpoint");
    sqlite3_reset(st);
    return err;
}

int oms_proj_db_begin(oms_proj_db_t *db, int64_t checkpoint)
{
    int err = db_exec(db, "BEGIN IMMEDIATE", "begin");
    int64_t stored = -1;
    if (!err)
        err = oms_proj_db_checkpoint(db, &stored);
    if (!err && stored != checkpoint) {
        fprintf(stderr,
                "oms-projections: %s: the checkpoint moved from %lld to %lld under us:"
                " another writer (a second oms-projections?) owns this read model\n",
                db->path, (long long)checkpoint, (long long)stored);
        err = -EBUSY;
    }
    if (err)
        oms_proj_db_rollback(db);
    return err;
}

int oms_proj_db_commit(oms_proj_db_t *db, int64_t position)
{
    if (position >= 0) {
        sqlite3_bind_int64(db->stmt[OMS_PROJ_SQL_CHECKPOINT_SET], 1, position);
        int err = oms_proj_db_step(db, OMS_PROJ_SQL_CHECKPOINT_SET, NULL);
        if (err)
            return err;
    }
    return db_exec(db, "COMMIT", "commit");
}

void oms_proj_db_rollback(oms_proj_db_t *db)
{
    if (!sqlite3_get_autocommit(db->sql))
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3_stmt *oms_proj_db_stmt(oms_proj_db_t *db, oms_proj_sql_t which)
{
    return db->stmt[which];
}

int oms_proj_db_step(oms_proj_db_t *db, oms_proj_sql_t which, int *changes)
{
    sqlite3_stmt *st = db->stmt[which];
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(db, "write");
    if (changes)
        *changes = err ? 0 : sqlite3_changes(db->sql);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}
