/* subs.c -- catch-up and live subscriptions.
 *
 * A subscription is only a cursor into the log (a version for a stream, a
 * position for "$ce-" and "$all") plus its filters. Every turn of the loop,
 * each subscription whose connection has room reads from its cursor and sends
 * what it read; when a read reaches the durable head it says CaughtUp once.
 * Live delivery is the same read, of events just made durable, so there is no
 * switch-over to get wrong: no gap, no duplicate, log order. A subscriber that
 * does not read its socket simply stops being served (its answers back up
 * past SUB_BACKLOG); it resumes from its cursor, reading from disk (the page
 * cache), and the server holds no events for it meanwhile. */
#include "server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SUB_BATCH_DEFAULT 512u
#define SUB_BATCH_MAX 4096u
#define SUB_READS_PER_TURN 4u          /* reads for one subscription in one loop turn */
#define SUB_BACKLOG_FRACTION 4u        /* serve while queued < output_bytes_max / this */

struct sub_s {
    conn_t *conn;
    uint64_t corr;
    char *stream;
    bool by_version;      /* a plain stream: the cursor is a version */
    uint64_t next;        /* cursor */
    char **types;
    size_t type_count;
    char *type_prefix;
    char *stream_prefix;
    uint32_t batch_max;
    bool caught_up;       /* CaughtUp was sent and nothing was missed since */
    uint64_t seen_head;   /* the visible position at the last read that reached the end */
    sub_t *prev, *next_sub;
};

static void sub_free(sub_t *s)
{
    for (size_t i = 0; i < s->type_count; i++)
        free(s->types[i]);
    free(s->types);
    free(s->type_prefix);
    free(s->stream_prefix);
    free(s->stream);
    free(s);
}

static void sub_unlink(server_t *srv, sub_t *s)
{
    if (s->prev)
        s->prev->next_sub = s->next_sub;
    else
        srv->subs = s->next_sub;
    if (s->next_sub)
        s->next_sub->prev = s->prev;
    srv->sub_count--;
}

static void sub_drop(server_t *srv, sub_t *s, const char *reason)
{
    if (reason)
        send_dropped(s->conn, s->corr, reason);
    sub_unlink(srv, s);
    sub_free(s);
}

static char *dup_or_null(const char *t)
{
    return t && t[0] ? strdup(t) : NULL;
}

static int sub_copy_filter(sub_t *s, const Evstore__V1__SubscribeRequest *m)
{
    s->stream_prefix = dup_or_null(m->stream_prefix);
    if (!m->filter)
        return 0;
    s->type_prefix = dup_or_null(m->filter->type_prefix);
    if (m->filter->n_types) {
        s->types = calloc(m->filter->n_types, sizeof *s->types);
        if (!s->types)
            return -ENOMEM;
        for (size_t i = 0; i < m->filter->n_types; i++, s->type_count++)
            if (!(s->types[i] = strdup(m->filter->types[i])))
                return -ENOMEM;
    }
    return 0;
}

/* Where a subscription "from the end" starts: after the last durable event. */
static uint64_t sub_head(server_t *srv, const sub_t *s)
{
    if (!s->by_version) {
        log_stats_t st;
        log_stats(srv->log, &st);
        return st.durable_position;
    }
    int64_t v;
    return log_stream_version(srv->log, s->stream, strlen(s->stream), &v) == 0 ? (uint64_t)v + 1 : 0;
}

static void send_caught_up(sub_t *s)
{
    Evstore__V1__CaughtUp cu = EVSTORE__V1__CAUGHT_UP__INIT;
    cu.next = s->next;
    send_body(s->conn, s->corr, EVSTORE__V1__ENVELOPE__BODY_CAUGHT_UP, &cu);
}

/* One read from the cursor, sent as one SubscriptionEvents frame. Returns 1
 * when the read reached the head, 0 when there is more, or an error. */
static int sub_read_once(server_t *srv, sub_t *s)
{
    log_filter_t filter = {.types = (const char *const *)s->types, .type_count = s->type_count,
                           .type_prefix = s->type_prefix};
    log_read_t req = {.stream = s->stream, .stream_len = strlen(s->stream), .from = s->next,
                      .max_count = s->batch_max,
                      .filter = s->type_count || s->type_prefix ? &filter : NULL};
    events_t acc;
    events_init(&acc, srv->cfg.frame_bytes_max / 2, s->stream_prefix);
    acc.skip_system = !s->by_version;
    log_read_result_t res;
    int rc = events_read(&acc, srv->log, &req, &res);
    if (rc == LOG_ENOT_FOUND) { /* a stream not written yet */
        events_free(&acc);
        return 1;
    }
    if (rc == 0) {
        if (acc.count > 0) {
            Evstore__V1__SubscriptionEvents m = EVSTORE__V1__SUBSCRIPTION_EVENTS__INIT;
            m.events = acc.ptrs;
            m.n_events = acc.count;
            m.next = res.next;
            send_body(s->conn, s->corr, EVSTORE__V1__ENVELOPE__BODY_SUB_EVENTS, &m);
        }
        if (res.next > s->next || acc.count > 0)
            s->next = res.next;
        rc = res.end ? 1 : 0;
    }
    events_free(&acc);
    return rc;
}

static size_t sub_backlog_limit(const server_t *srv)
{
    return srv->cfg.output_bytes_max / SUB_BACKLOG_FRACTION;
}

/* Serves a subscription as far as its connection has room this turn. */
static void sub_pump(server_t *srv, sub_t *s, uint64_t visible)
{
    if (s->caught_up && s->seen_head == visible)
        return; /* nothing new */
    for (uint32_t i = 0; i < SUB_READS_PER_TURN; i++) {
        if (conn_queued_bytes(s->conn) >= sub_backlog_limit(srv)) {
            s->caught_up = false; /* fallen behind: it will be told when it catches up */
            return;
        }
        int rc = sub_read_once(srv, s);
        if (rc < 0) {
            sub_drop(srv, s, log_strerror(rc));
            return;
        }
        if (rc == 1) {
            s->seen_head = visible;
            if (!s->caught_up)
                send_caught_up(s);
            s->caught_up = true;
            return;
        }
    }
}

void subs_pump_all(server_t *srv)
{
    if (!srv->subs)
        return;
    log_stats_t st;
    log_stats(srv->log, &st);
    for (sub_t *s = srv->subs, *n; s; s = n) {
        n = s->next_sub;
        if (!s->conn->dead && !s->conn->close_after_flush) {
            conn_t *c = s->conn;
            sub_pump(srv, s, st.durable_position); /* may drop s */
            conn_flush(c);
        }
    }
}

void sub_start(conn_t *c, uint64_t corr, const Evstore__V1__SubscribeRequest *m)
{
    server_t *srv = c->srv;
    if (srv->sub_count >= srv->cfg.subscriptions_max) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "too many subscriptions", 0, 0);
        return;
    }
    sub_t *s = calloc(1, sizeof *s);
    if (!s || !(s->stream = strdup(m->stream)) || sub_copy_filter(s, m) != 0) {
        if (s)
            sub_free(s);
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
        return;
    }
    s->conn = c;
    s->corr = corr;
    s->by_version = strcmp(s->stream, "$all") != 0 && strncmp(s->stream, "$ce-", 4) != 0;
    s->batch_max = m->batch_max == 0 ? SUB_BATCH_DEFAULT
                   : m->batch_max > SUB_BATCH_MAX ? SUB_BATCH_MAX : m->batch_max;
    uint64_t head = sub_head(srv, s);
    s->next = m->from_end ? head : m->from;
    s->next_sub = srv->subs;
    if (srv->subs)
        srv->subs->prev = s;
    srv->subs = s;
    srv->sub_count++;
    Evstore__V1__SubscribeOk ok = EVSTORE__V1__SUBSCRIBE_OK__INIT;
    ok.head = head;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_SUBSCRIBE_OK, &ok);
}

bool sub_stop(conn_t *c, uint64_t corr)
{
    for (sub_t *s = c->srv->subs; s; s = s->next_sub)
        if (s->conn == c && s->corr == corr) {
            sub_drop(c->srv, s, "unsubscribed");
            return true;
        }
    return false;
}

void subs_conn_gone(conn_t *c)
{
    for (sub_t *s = c->srv->subs, *n; s; s = n) {
        n = s->next_sub;
        if (s->conn == c)
            sub_drop(c->srv, s, NULL);
    }
}
