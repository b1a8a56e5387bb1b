/* proj_run.c -- the main loop of oms-projections: a catch-up subscription
 * on "$all" from the checkpoint + 1, events applied in batches, one SQLite
 * transaction per batch with the checkpoint in it.
 *
 * A batch commits when it holds batch_max events, when it has been open
 * OMS_PROJ_COMMIT_MS_MAX, when the subscription has nothing more at hand
 * (the next event is not already received: idle, or caught up), and on
 * stop. So an event is visible in the model about as soon as it is
 * applied when events trickle in, and at most OMS_PROJ_COMMIT_MS_MAX
 * after it arrived while they stream. */
#include <errno.h>
#include <stdio.h>

#include "proj.h"

typedef struct {
    oms_proj_db_t *db;
    oms_proj_metrics_t *pm;
    uint32_t batch_max;
    int64_t committed; /* the checkpoint as committed; -1: none */
    int64_t position;  /* last position applied (or skipped) in the open batch */
    bool open;         /* a transaction is open */
    uint32_t events;   /* events in it */
    int64_t opened_ns; /* monotonic time it began */
    int64_t busy_ns;   /* time spent applying and committing it */
} batch_t;

static int batch_begin(batch_t *b)
{
    if (b->open)
        return 0;
    int err = oms_proj_db_begin(b->db, b->committed);
    if (err)
        return err;
    b->open = true;
    b->events = 0;
    b->busy_ns = 0;
    b->opened_ns = oms_mono_ns();
    return 0;
}

/* Commits the open batch with its checkpoint (nothing when none is open).
 * On failure it is rolled back: the model stays at the last checkpoint,
 * behind the subscription, so the caller must end the run (a restart
 * resumes from that checkpoint). */
static int batch_commit(batch_t *b)
{
    if (!b->open)
        return 0;
    int64_t t0 = oms_mono_ns();
    int err = oms_proj_db_commit(b->db, b->position > b->committed ? b->position : -1);
    b->open = false;
    if (err) {
        oms_proj_db_rollback(b->db);
        b->position = b->committed;
        return err;
    }
    b->busy_ns += oms_mono_ns() - t0;
    b->committed = b->position;
    oms_proj_metrics_batch(b->pm, (double)b->busy_ns / 1e9);
    oms_proj_metrics_position(b->pm, b->committed);
    return 0;
}

/* Applies one event in the open batch. A bad event is counted and skipped
 * (its position still counts as done); a database error ends the run. */
static int batch_apply(batch_t *b, const evs_recorded_event_t *ev)
{
    int err = batch_begin(b);
    if (err)
        return err;
    int64_t t0 = oms_mono_ns();
    int index = oms_proj_event_index(ev->type);
    if (index >= 0) /* the filter lets only applied types through */
        err = oms_proj_apply(b->db, (size_t)index, ev);
    if (err == -EBADMSG) {
        fprintf(stderr, "oms-projections: skipped event %llu (%s in %s): bad payload\n",
                (unsigned long long)ev->position, ev->type, ev->stream);
        oms_proj_metrics_bad(b->pm);
        err = 0;
    } else if (!err && index >= 0) {
        oms_proj_metrics_event(b->pm, (size_t)index);
    }
    if (err) {
        fprintf(stderr, "oms-projections: applying event %llu (%s): %s\n",
                (unsigned long long)ev->position, ev->type, evs_strerror(err));
        return err;
    }
    b->position = (int64_t)ev->position;
    b->events++;
    b->busy_ns += oms_mono_ns() - t0;
    return b->events >= b->batch_max ? batch_commit(b) : 0;
}

/* Caught up at next: every event before it has been seen (those the
 * filter dropped too), so the checkpoint moves to next - 1. */
static int batch_caught_up(batch_t *b, uint64_t next)
{
    if (next > 0 && (int64_t)(next - 1) > b->position) {
        int err = batch_begin(b);
        if (err)
            return err;
        b->position = (int64_t)(next - 1);
    }
    return batch_commit(b);
}

/* How long the next wait for an event may be: none while a batch is open
 * (nothing more at hand means idle: commit now), the idle poll otherwise
 * (so a stop is seen soon). */
static int batch_wait_ms(const batch_t *b)
{
    return b->open ? 0 : OMS_PROJ_IDLE_POLL_MS;
}

/* An open batch that is full of time commits even while events keep
 * coming, so the model trails the log by at most OMS_PROJ_COMMIT_MS_MAX. */
static bool batch_due(const batch_t *b)
{
    return b->open && oms_mono_ns() - b->opened_ns >= (int64_t)OMS_PROJ_COMMIT_MS_MAX * 1000000;
}

static int run_loop(batch_t *b, evs_sub_t *sub, volatile int *stop)
{
    while (!*stop) {
        int err = 0;
        evs_sub_item_t item;
        int rc = batch_due(b) ? EVS_ETIMEDOUT : evs_sub_next(sub, batch_wait_ms(b), &item);
        if (rc == EVS_ETIMEDOUT) {
            err = batch_commit(b);
        } else if (rc != 0) {
            fprintf(stderr, "oms-projections: the subscription ended: %s: %s\n",
                    evs_strerror(rc), evs_errmsg());
            batch_commit(b);
            return rc;
        } else if (item.kind == EVS_SUB_EVENT) {
            err = batch_apply(b, &item.event);
        } else {
            err = batch_caught_up(b, item.next);
        }
        if (err) {
            oms_proj_db_rollback(b->db);
            return err;
        }
    }
    return batch_commit(b);
}

/* Subscribes to "$all" from `from`, filtered to the applied types, waiting
 * while the store cannot be reached: each evs_subscribe() waits up to
 * OMS_PROJ_SUBSCRIBE_RETRY_MS_MAX (its retry budget), so a stop is seen
 * between two of them. */
static int subscribe(const oms_config_t *cfg, uint64_t from, volatile int *stop,
                     evs_sub_t **out)
{
    const char *types[EVS_SUB_TYPES_MAX];
    size_t n = oms_proj_event_count();
    for (size_t i = 0; i < n; i++)
        types[i] = oms_proj_event_type(i);
    evs_options_t opts;
    oms_store_options(cfg, "oms-projections", &opts);
    opts.retry_ms_max = OMS_PROJ_SUBSCRIBE_RETRY_MS_MAX;
    evs_subscribe_t req = {.stream = "$all", .from = from, .types = types, .type_count = n};
    for (unsigned attempt = 0; !*stop; attempt++) {
        int err = evs_subscribe(&opts, &req, out);
        if (!err || !evs_error_retryable(err)) {
            if (err)
                fprintf(stderr, "oms-projections: subscribe: %s: %s\n", evs_strerror(err),
                        evs_errmsg());
            return err;
        }
        if (attempt == 0)
            fprintf(stderr, "oms-projections: waiting for the store at %s:%u: %s\n",
                    cfg->store_host, cfg->store_port, evs_strerror(err));
    }
    return -EINTR;
}

/* Starts /metrics (unless off) and prints the ready line. */
static int metrics_start(const oms_config_t *cfg, oms_metrics_t *m, oms_metrics_http_t **http,
                         uint16_t *port)
{
    *http = NULL;
    *port = 0;
    if (!m)
        return 0;
    *http = oms_metrics_http_start(m, cfg->metrics_host, cfg->metrics_port, port);
    return *http ? 0 : -EADDRINUSE;
}

int oms_proj_run(const oms_proj_run_t *run)
{
    const oms_config_t *cfg = run->cfg;
    int status = 1;
    batch_t b = {.batch_max = run->batch_max};
    oms_metrics_t *m = cfg->metrics_off ? NULL : oms_metrics_new("projections");
    oms_metrics_http_t *http = NULL;
    evs_sub_t *sub = NULL;
    uint16_t port = 0;
    b.pm = oms_proj_metrics_new(m);
    if ((!cfg->metrics_off && !m) || !b.pm)
        goto out_free_metrics;
    if (oms_proj_db_open(run->db_path, run->rebuild, &b.db) != 0 ||
        oms_proj_db_checkpoint(b.db, &b.committed) != 0)
        goto out_close_db;
    b.position = b.committed;
    oms_proj_metrics_position(b.pm, b.committed);
    if (metrics_start(cfg, m, &http, &port) != 0)
        goto out_close_db;
    if (subscribe(cfg, (uint64_t)(b.committed + 1), run->stop, &sub) != 0) {
        status = *run->stop ? 0 : 1; /* stopped while waiting for the store */
        goto out_stop_http;
    }
    if (m)
        printf("oms-projections ready metrics=%s:%u\n", cfg->metrics_host, port);
    else
        printf("oms-projections ready metrics=off\n");
    fflush(stdout);
    fprintf(stderr, "oms-projections: %s from position %lld%s\n", run->db_path,
            (long long)(b.committed + 1), run->rebuild ? " (rebuild)" : "");
    status = run_loop(&b, sub, run->stop) == 0 ? 0 : 1;
    evs_sub_close(sub);
out_stop_http:
    oms_metrics_http_stop(http);
out_close_db:
    oms_proj_db_close(b.db);
out_free_metrics:
    oms_proj_metrics_free(b.pm);
    oms_metrics_free(m);
    return status;
}
