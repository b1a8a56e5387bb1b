/* sys_pg.c -- the PostgreSQL peer: a private cluster (initdb + pg_ctl, as
 * the user "postgres" when we are root) on a free 127.0.0.1 port in a
 * temporary directory, synchronous_commit=on, fsync=on. The table is the
 * usual "event store in a table":
 *
 *   events(position bigint identity unique, stream_id text, version bigint,
 *          event_id uuid, type text, data bytea, primary key (stream_id, version))
 *
 * An append of N events is one INSERT of N rows (one transaction) whose
 * versions are expected+1 .. expected+N: the primary key refuses it when the
 * expected version is stale. Each connection uses libpq's pipeline mode, so
 * its appends in flight are pipelined (each with its own sync: one
 * transaction each); PostgreSQL commits them one after another per
 * connection, and group-commits WAL flushes across connections. */
#define _GNU_SOURCE
#include "bench_proc.h"
#include "bench_sys.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG_USER "postgres"          /* the OS user the cluster runs as under root */
#define PG_INIT_SECONDS_MAX 120.0
#define PG_PARAMS_PER_EVENT 5u

static const char *pg_bindir(void)
{
    static const char *dirs[] = {"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                                 "/usr/lib/postgresql/17/bin", "/usr/local/pgsql/bin"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/pg_ctl", dirs[i]);
        if (access(p, X_OK) == 0)
            return dirs[i];
    }
    return NULL;
}

static PGconn *pg_connect(bench_sys_t *sys)
{
    char conninfo[256];
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%u dbname=postgres user=bench connect_timeout=10",
             sys->port);
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "evstore-bench: postgresql: connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

static int pg_exec(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "evstore-bench: postgresql: %s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
    return ok ? 0 : -EIO;
}

static int pg_start(bench_sys_t *sys)
{
    const char *bin = pg_bindir();
    if (!bin) {
        fprintf(stderr, "evstore-bench: postgresql: skipped: no pg_ctl (apt-get install postgresql-15)\n");
        return -ENOENT;
    }
    const char *run_as = NULL;
    uid_t uid = 0;
    gid_t gid = 0;
    if (geteuid() == 0) {
        if (!proc_user_ids(PG_USER, &uid, &gid)) {
            fprintf(stderr, "evstore-bench: postgresql: skipped: running as root and there is no"
                            " user '%s' to run the cluster as\n", PG_USER);
            return -EPERM;
        }
        run_as = PG_USER;
    }
    int rc = bench_mkdtemp(sys->tmp_root, "postgresql", sys->dir, sizeof sys->dir);
    if (rc)
        return rc;
    if (run_as && chown(sys->dir, uid, gid) != 0)
        return -errno;
    chmod(sys->dir, 0700);
    sys->port = bench_free_port();
    char initdb[300], pg_ctl[300], pgdata[PATH_MAX + 8], log[PATH_MAX + 16], opts[PATH_MAX + 512];
    snprintf(initdb, sizeof initdb, "%s/initdb", bin);
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", bin);
    snprintf(pgdata, sizeof pgdata, "%s/data", sys->dir);
    snprintf(log, sizeof log, "%s/server.log", sys->dir);
    char *init_argv[] = {initdb, "-D", pgdata, "-U", "bench", "-A", "trust", "-E", "UTF8",
                         "--no-sync", NULL};
    rc = bench_run(init_argv, NULL, run_as, PG_INIT_SECONDS_MAX);
    if (rc != 0) {
        fprintf(stderr, "evstore-bench: postgresql: skipped: initdb failed (%d)\n", rc);
        return -EIO;
    }
    snprintf(opts, sizeof opts,
             "-c listen_addresses=127.0.0.1 -c port=%u -c unix_socket_directories=%s"
             " -c synchronous_commit=on -c fsync=on -c wal_sync_method=fdatasync"
             " -c max_connections=300 -c shared_buffers=512MB -c wal_buffers=16MB"
             " -c max_wal_size=8GB -c checkpoint_timeout=30min",
             sys->port, sys->dir);
    char *ctl_argv[] = {pg_ctl, "-D", pgdata, "-l", log, "-o", opts, "-w", "-t", "60", "start",
                        NULL};
    rc = bench_run(ctl_argv, NULL, run_as, BENCH_START_SECONDS_MAX + 10);
    char pidfile[PATH_MAX + 32], line[64] = "";
    snprintf(pidfile, sizeof pidfile, "%s/postmaster.pid", pgdata);
    if (rc != 0 || bench_read_file_line(pidfile, line, sizeof line) != 0) {
        fprintf(stderr, "evstore-bench: postgresql: skipped: pg_ctl start failed (see %s)\n", log);
        sys->keep_data = true;
        return -EIO;
    }
    sys->pid = (pid_t)atoi(line);
    PGconn *pg = pg_connect(sys);
    if (!pg)
        return -ECONNREFUSED;
    rc = pg_exec(pg, "CREATE TABLE events (position bigint GENERATED ALWAYS AS IDENTITY UNIQUE,"
                     " stream_id text NOT NULL, version bigint NOT NULL, event_id uuid NOT NULL,"
                     " type text NOT NULL, data bytea NOT NULL, PRIMARY KEY (stream_id, version))");
    PGresult *r = PQexec(pg, "SHOW server_version");
    char version[64] = "?";
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(version, sizeof version, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(pg);
    sys->syncs_each_ack = true;
    snprintf(sys->durability, sizeof sys->durability, "sync-commit");
    snprintf(sys->note, sizeof sys->note,
             "PostgreSQL %s, synchronous_commit=on, fsync=on, wal_sync_method=fdatasync: each "
             "commit waits for its WAL flush (group commit across backends); expected version by "
             "the primary key (stream_id, version); libpq pipeline mode", version);
    return rc;
}

static void pg_stop(bench_sys_t *sys)
{
    const char *bin = pg_bindir();
    if (sys->pid > 0 && bin) {
        char pg_ctl[300], pgdata[PATH_MAX + 8];
        snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", bin);
        snprintf(pgdata, sizeof pgdata, "%s/data", sys->dir);
        char *argv[] = {pg_ctl, "-D", pgdata, "-m", "fast", "-w", "-t", "30", "stop", NULL};
        if (bench_run(argv, NULL, geteuid() == 0 ? PG_USER : NULL, 40) != 0 && bench_alive(sys->pid))
            bench_stop(sys->pid); /* not our child: SIGTERM is a fast shutdown */
        for (int i = 0; i < 200 && bench_alive(sys->pid); i++)
            usleep(50000);
    }
    sys->pid = 0;
    if (sys->dir[0] && !sys->keep_data)
        bench_rmtree(sys->dir);
    sys->dir[0] = '\0';
}

typedef struct {
    PGconn *pg;
    bench_slot_t **fifo;  /* slots in send order: results come back in that order */
    uint32_t head, count, cap;
    bool prepared;
} pg_conn_t;

static int pg_prepare(pg_conn_t *p, uint32_t events)
{
    size_t cap = 200 + (size_t)events * 64;
    char *sql = malloc(cap);
    if (!sql)
        return -ENOMEM;
    size_t len = (size_t)snprintf(sql, cap, "INSERT INTO events (stream_id, version, event_id,"
                                            " type, data) VALUES ");
    for (uint32_t i = 0; i < events; i++) {
        uint32_t b = i * PG_PARAMS_PER_EVENT;
        len += (size_t)snprintf(sql + len, cap - len, "%s($%u,$%u,$%u,$%u,$%u)", i ? "," : "",
                                b + 1, b + 2, b + 3, b + 4, b + 5);
    }
    PGresult *r = PQprepare(p->pg, "append", sql, 0, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "evstore-bench: postgresql: prepare: %s", PQerrorMessage(p->pg));
    PQclear(r);
    free(sql);
    return ok ? 0 : -EIO;
}

static int pg_conn_open(bench_sys_t *sys, bench_conn_t *c)
{
    pg_conn_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->cap = c->run->load.inflight;
    p->fifo = calloc(p->cap, sizeof *p->fifo);
    p->pg = pg_connect(sys);
    int rc = !p->fifo ? -ENOMEM : !p->pg ? -ECONNREFUSED : pg_prepare(p, c->run->load.events);
    if (rc) {
        PQfinish(p->pg);
        free(p->fifo);
        free(p);
        return rc;
    }
    c->drv = p;
    return 0;
}

static void pg_conn_close(bench_sys_t *sys, bench_conn_t *c)
{
    (void)sys;
    pg_conn_t *p = c->drv;
    PQfinish(p->pg);
    free(p->fifo);
    free(p);
    c->drv = NULL;
}

typedef struct {
    char (*versions)[24];
    const char **values;
    int *lengths, *formats;
} pg_slot_t;

static int pg_slot_init(bench_conn_t *c, bench_slot_t *s)
{
    uint32_t n = c->run->load.events * PG_PARAMS_PER_EVENT;
    pg_slot_t *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->versions = calloc(c->run->load.events, sizeof *d->versions);
    d->values = calloc(n, sizeof *d->values);
    d->lengths = calloc(n, sizeof *d->lengths);
    d->formats = calloc(n, sizeof *d->formats);
    s->drv = d;
    return d->versions && d->values && d->lengths && d->formats ? 0 : -ENOMEM;
}

static void pg_slot_free(bench_conn_t *c, bench_slot_t *s)
{
    (void)c;
    pg_slot_t *d = s->drv;
    if (d) {
        free(d->versions);
        free(d->values);
        free(d->lengths);
        free(d->formats);
    }
    free(d);
    s->drv = NULL;
}

static int pg_append_send(bench_conn_t *c, bench_slot_t *s)
{
    pg_conn_t *p = c->drv;
    pg_slot_t *d = s->drv;
    const bench_load_t *l = &c->run->load;
    if (PQpipelineStatus(p->pg) == PQ_PIPELINE_OFF && PQenterPipelineMode(p->pg) != 1)
        return -EIO;
    for (uint32_t i = 0; i < l->events; i++) {
        uint32_t b = i * PG_PARAMS_PER_EVENT;
        snprintf(d->versions[i], sizeof d->versions[i], "%lld", (long long)(s->version + 1 + i));
        d->values[b] = s->stream;
        d->values[b + 1] = d->versions[i];
        d->values[b + 2] = (const char *)s->ids[i]; /* uuid, binary: 16 bytes */
        d->lengths[b + 2] = 16;
        d->formats[b + 2] = 1;
        d->values[b + 3] = BENCH_EVENT_TYPE;
        d->values[b + 4] = (const char *)s->data[i];
        d->lengths[b + 4] = (int)l->event_bytes;
        d->formats[b + 4] = 1;
    }
    if (PQsendQueryPrepared(p->pg, "append", (int)(l->events * PG_PARAMS_PER_EVENT), d->values,
                            d->lengths, d->formats, 0) != 1 ||
        PQpipelineSync(p->pg) != 1) {
        fprintf(stderr, "evstore-bench: postgresql: send: %s", PQerrorMessage(p->pg));
        return -EIO;
    }
    s->status_pending = 0;
    p->fifo[(p->head + p->count++) % p->cap] = s;
    return 0;
}

/* Consumes the results of the oldest pipelined append if they are all here;
 * true when one completed. */
static bool pg_complete_one(bench_conn_t *c)
{
    pg_conn_t *p = c->drv;
    if (p->count == 0 || PQisBusy(p->pg))
        return false;
    bench_slot_t *s = p->fifo[p->head];
    /* The INSERT's result, its NULL terminator, then the sync's result; an
     * error seen before a return for more input is kept in the slot. */
    for (int i = 0; i < 4; i++) {
        if (PQisBusy(p->pg))
            return false; /* not all here yet: come back (state is kept by libpq) */
        PGresult *r = PQgetResult(p->pg);
        if (!r)
            continue;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED)
            s->status_pending = -EIO;
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC) {
            p->head = (p->head + 1) % p->cap;
            p->count--;
            bench_append_done(s, s->status_pending, s->version + c->run->load.events);
            return true;
        }
    }
    return false;
}

static int pg_poll(bench_conn_t *c, int timeout_ms)
{
    pg_conn_t *p = c->drv;
    if (p->count == 0) {
        if (timeout_ms > 0)
            usleep((useconds_t)timeout_ms * 1000u);
        return 0;
    }
    struct pollfd pfd = {.fd = PQsocket(p->pg), .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return 0;
    if (PQconsumeInput(p->pg) != 1) {
        fprintf(stderr, "evstore-bench: postgresql: %s", PQerrorMessage(p->pg));
        return -EIO;
    }
    while (pg_complete_one(c))
        ;
    return 0;
}

static int pg_leave_pipeline(pg_conn_t *p)
{
    if (PQpipelineStatus(p->pg) != PQ_PIPELINE_OFF && PQexitPipelineMode(p->pg) != 1)
        return -EIO;
    return 0;
}

/* Runs a paged keyset query until a short page or deadline_ns. */
static int pg_read_pages(pg_conn_t *p, const char *sql, const char *stream, int key_col,
                         int data_col, uint64_t deadline_ns, uint64_t *events, uint64_t *bytes)
{
    if (pg_leave_pipeline(p) != 0)
        return -EIO;
    char from[24] = "-1";
    for (;;) {
        const char *values[2] = {from, stream};
        PGresult *r = PQexecParams(p->pg, sql, stream ? 2 : 1, NULL, values, NULL, NULL, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "evstore-bench: postgresql: read: %s", PQerrorMessage(p->pg));
            PQclear(r);
            return -EIO;
        }
        int n = PQntuples(r);
        for (int i = 0; i < n; i++)
            *bytes += (uint64_t)PQgetlength(r, i, data_col);
        *events += (uint64_t)n;
        if (n > 0) {
            uint64_t key = 0; /* bigint, binary: big-endian */
            const unsigned char *v = (const unsigned char *)PQgetvalue(r, n - 1, key_col);
            for (int k = 0; k < 8; k++)
                key = key << 8 | v[k];
            snprintf(from, sizeof from, "%llu", (unsigned long long)key);
        }
        PQclear(r);
        if (n < (int)BENCH_READ_PAGE_EVENTS || util_mono_ns() >= deadline_ns)
            return 0;
    }
}

static int pg_read_stream(bench_conn_t *c, const char *stream, uint64_t *events, uint64_t *bytes)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT version, event_id, type, data FROM events WHERE stream_id = $2 AND version > $1"
             " ORDER BY version LIMIT %u", BENCH_READ_PAGE_EVENTS);
    return pg_read_pages(c->drv, sql, stream, 0, 3, UINT64_MAX, events, bytes);
}

static int pg_read_all(bench_conn_t *c, uint64_t deadline_ns, uint64_t *events, uint64_t *bytes)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT position, stream_id, version, event_id, type, data FROM events"
             " WHERE position > $1 ORDER BY position LIMIT %u", BENCH_READ_PAGE_EVENTS);
    return pg_read_pages(c->drv, sql, NULL, 0, 5, deadline_ns, events, bytes);
}

static void pg_sample(bench_sys_t *sys, bench_srv_sample_t *out)
{
    out->cpu_s = bench_tree_cpu_seconds(sys->pid);
}

const bench_driver_t bench_driver_pg = {
    .name = "postgresql",
    .start = pg_start,
    .stop = pg_stop,
    .conn_open = pg_conn_open,
    .conn_close = pg_conn_close,
    .slot_init = pg_slot_init,
    .slot_free = pg_slot_free,
    .append_send = pg_append_send,
    .poll = pg_poll,
    .read_stream = pg_read_stream,
    .read_all = pg_read_all,
    .sample = pg_sample,
};
