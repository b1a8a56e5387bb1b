/* proj_digest.c -- --digest: one XXH64 over every row of the read model.
 *
 * Two read models have the same digest when they hold the same rows: the
 * tables are hashed in a fixed order (orders, stock, customers), each in
 * primary-key order, every column, each value with its SQLite type and (for
 * text) its length, so no two different sets of rows hash the same bytes.
 * projection_checkpoint is left out: it says how far the model got, not
 * what it holds. Everything else is in, last_position and updated_at_ns
 * too: they come from the log (position, the store's timestamp), so a
 * rebuild from the same log gives them the same values. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "proj.h"

typedef struct {
    const char *table;
    const char *key;
} digest_table_t;

static const digest_table_t digest_tables[] = {
    {"orders", "order_id"},
    {"stock", "sku"},
    {"customers", "customer_id"},
};

static void hash_u64(XXH64_state_t *h, uint8_t tag, uint64_t v)
{
    uint8_t b[9] = {tag};
    for (int i = 0; i < 8; i++)
        b[1 + i] = (uint8_t)(v >> (8 * i)); /* little-endian whatever the host */
    XXH64_update(h, b, sizeof b);
}

static void hash_value(XXH64_state_t *h, sqlite3_stmt *st, int col)
{
    int type = sqlite3_column_type(st, col);
    if (type == SQLITE_INTEGER) {
        hash_u64(h, 'I', (uint64_t)sqlite3_column_int64(st, col));
    } else if (type == SQLITE_FLOAT) {
        double d = sqlite3_column_double(st, col);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        hash_u64(h, 'F', bits);
    } else if (type == SQLITE_NULL) {
        XXH64_update(h, "N", 1);
    } else {
        const void *p = type == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, col)
                                            : sqlite3_column_blob(st, col);
        int n = sqlite3_column_bytes(st, col);
        hash_u64(h, type == SQLITE_TEXT ? 'T' : 'B', (uint64_t)n);
        XXH64_update(h, p, (size_t)n);
    }
}

static int hash_table(sqlite3 *sql, const char *path, const digest_table_t *t, XXH64_state_t *h)
{
    char query[128];
    snprintf(query, sizeof query, "SELECT * FROM %s ORDER BY %s", t->table, t->key);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sql, query, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "oms-projections: %s is not a read model: %s\n", path,
                sqlite3_errmsg(sql));
        return -EIO;
    }
    int cols = sqlite3_column_count(st);
    XXH64_update(h, t->table, strlen(t->table) + 1);
    hash_u64(h, 'C', (uint64_t)cols);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        XXH64_update(h, "R", 1);
        for (int c = 0; c < cols; c++)
            hash_value(h, st, c);
    }
    XXH64_update(h, "E", 1);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "oms-projections: %s: reading %s: %s\n", path, t->table,
                sqlite3_errmsg(sql));
        return -EIO;
    }
    return 0;
}

/* Hashes every table inside one read transaction (one snapshot, even while
 * oms-projections writes). */
static int hash_tables(sqlite3 *sql, const char *path, uint64_t *digest)
{
    XXH64_state_t *h = XXH64_createState();
    if (!h)
        return -ENOMEM;
    XXH64_reset(h, 0);
    int err = 0;
    if (sqlite3_exec(sql, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "oms-projections: %s: begin: %s\n", path, sqlite3_errmsg(sql));
        err = -EIO;
    }
    for (size_t i = 0; !err && i < sizeof digest_tables / sizeof digest_tables[0]; i++)
        err = hash_table(sql, path, &digest_tables[i], h);
    sqlite3_exec(sql, "COMMIT", NULL, NULL, NULL);
    *digest = XXH64_digest(h);
    XXH64_freeState(h);
    return err;
}

int oms_proj_digest(const char *path, uint64_t *digest)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int err = -errno;
        fprintf(stderr, "oms-projections: read model %s: %s\n", path, strerror(errno));
        return err;
    }
    sqlite3 *sql = NULL;
    int err = 0;
    if (sqlite3_open_v2(path, &sql, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "oms-projections: open %s: %s\n", path, sqlite3_errmsg(sql));
        err = -EIO;
    } else {
        sqlite3_busy_timeout(sql, OMS_PROJ_BUSY_TIMEOUT_MS);
        err = hash_tables(sql, path, digest);
    }
    sqlite3_close(sql);
    return err;
}
