/* groups_handlers.c -- the requests about persistent subscription groups:
 * create, update, delete, info, list, join, ack, nack, replay-parked, and a
 * consumer leaving (unsubscribe, or its connection gone). Each answers corr
 * on c: Done, the info asked for, or an Error; create, update and delete
 * once their record is durable (groups_store.c). */
#include "groups_int.h"

#include <stdlib.h>
#include <string.h>

static void answer_done(conn_t *c, uint64_t corr)
{
    Evstore__V1__Done d = EVSTORE__V1__DONE__INIT;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_DONE, &d);
}

static void answer_error(conn_t *c, uint64_t corr, int rc)
{
    conn_send_error(c, corr, error_code_of(rc), log_strerror(rc), 0, 0);
}

static bool group_name_ok(conn_t *c, uint64_t corr, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > GROUP_NAME_BYTES_MAX || name[0] == '$') {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BAD_REQUEST,
                        "group names are 1..200 bytes and do not start with '$'", 0, 0);
        return false;
    }
    return true;
}

static group_t *group_or_error(conn_t *c, uint64_t corr, const char *name)
{
    group_t *g = group_find(c->srv, name);
    if (!g)
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__GROUP_NOT_FOUND, "no such group", 0, 0);
    return g;
}

/* Where a new group starts: its `from`, or the head for from_end. */
static uint64_t group_start(server_t *srv, const Evstore__V1__GroupSettings *m)
{
    return m->from_end ? group_stream_head(srv, m->stream) : m->from;
}

void group_create(conn_t *c, uint64_t corr, const Evstore__V1__GroupSettings *m)
{
    server_t *srv = c->srv;
    if (!group_name_ok(c, corr, m->name))
        return;
    if (group_find(srv, m->name)) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__GROUP_EXISTS, "group exists", 0, 0);
        return;
    }
    if (group_count(srv) >= GROUPS_MAX) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "too many groups", 0, 0);
        return;
    }
    group_t *g = group_new(m, group_start(srv, m));
    if (!g) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
        return;
    }
    /* A re-created group does not inherit the dead letters of an old one. */
    g->replay_from = (uint64_t)group_parked_count(srv, g);
    group_link(srv, g);
    int rc = group_save_settings(srv, g, GAPPEND_CREATE, c, corr); /* answered once durable */
    if (rc == 0) {
        group_save_checkpoint(srv, g); /* a restart knows replay_from from the start */
        return;
    }
    answer_error(c, corr, rc);
    group_drop(srv, g, NULL);
    if (g->appends_pending == 0)
        group_free(g);
}

void group_update(conn_t *c, uint64_t corr, const Evstore__V1__GroupSettings *m)
{
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    if (group_apply(g, m) != 0) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
        return;
    }
    for (consumer_t *k = g->consumers; k; k = k->next)
        k->max_inflight = k->requested && k->requested < g->max_inflight ? k->requested
                                                                          : g->max_inflight;
    int rc = group_save_settings(c->srv, g, GAPPEND_PLAIN, c, corr);
    if (rc)
        answer_error(c, corr, rc);
}

void group_delete(conn_t *c, uint64_t corr, const Evstore__V1__GroupName *m)
{
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    /* The group goes when its deletion is durable (groups_store.c). */
    int rc = group_save_deleted(c->srv, g, c, corr);
    if (rc)
        answer_error(c, corr, rc);
}

void group_info(conn_t *c, uint64_t corr, const Evstore__V1__GroupName *m)
{
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    Evstore__V1__GroupInfo info;
    Evstore__V1__GroupSettings set;
    Evstore__V1__EventFilter f;
    group_info_of(c->srv, g, &info, &set, &f);
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_GROUP_INFO_OK, &info);
}

void group_list(conn_t *c, uint64_t corr)
{
    server_t *srv = c->srv;
    uint32_t n = group_count(srv), i = 0;
    Evstore__V1__GroupInfo *infos = calloc(n ? n : 1, sizeof *infos);
    Evstore__V1__GroupSettings *sets = calloc(n ? n : 1, sizeof *sets);
    Evstore__V1__EventFilter *fs = calloc(n ? n : 1, sizeof *fs);
    Evstore__V1__GroupInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!infos || !sets || !fs || !ptrs) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
    } else {
        for (group_t *g = srv->groups; g; g = g->next_group) {
            if (g->deleted)
                continue;
            group_info_of(srv, g, &infos[i], &sets[i], &fs[i]);
            ptrs[i] = &infos[i];
            i++;
        }
        Evstore__V1__GroupList list = EVSTORE__V1__GROUP_LIST__INIT;
        list.groups = ptrs;
        list.n_groups = i;
        send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_GROUP_LIST_OK, &list);
    }
    free(infos);
    free(sets);
    free(fs);
    free(ptrs);
}

void group_join(conn_t *c, uint64_t corr, const Evstore__V1__GroupJoin *m)
{
    server_t *srv = c->srv;
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    if (srv->sub_count >= srv->cfg.subscriptions_max) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "too many subscriptions", 0, 0);
        return;
    }
    consumer_t *k = calloc(1, sizeof *k);
    if (!k) {
        conn_send_error(c, corr, EVSTORE__V1__ERROR_CODE__BUSY, "out of memory", 0, 0);
        return;
    }
    k->g = g;
    k->conn = c;
    k->corr = corr;
    k->requested = m->max_inflight;
    k->max_inflight = m->max_inflight && m->max_inflight < g->max_inflight ? m->max_inflight
                                                                           : g->max_inflight;
    consumer_t **p = &g->consumers; /* at the end: pinned streams keep their consumer */
    while (*p)
        p = &(*p)->next;
    *p = k;
    g->consumer_count++;
    srv->sub_count++;
    Evstore__V1__GroupJoinOk ok = EVSTORE__V1__GROUP_JOIN_OK__INIT;
    send_body(c, corr, EVSTORE__V1__ENVELOPE__BODY_GROUP_JOIN_OK, &ok);
}

void group_ack(conn_t *c, uint64_t corr, const Evstore__V1__GroupAck *m)
{
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    for (size_t i = 0; i < m->n_positions; i++) {
        msg_t *msg = msg_find(g, m->positions[i]);
        if (msg && (msg->state == MSG_INFLIGHT || msg->state == MSG_RETRY))
            msg_done(g, msg);
    }
    answer_done(c, corr);
}

void group_nack(conn_t *c, uint64_t corr, const Evstore__V1__GroupNack *m)
{
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    for (size_t i = 0; i < m->n_positions; i++) {
        msg_t *msg = msg_find(g, m->positions[i]);
        if (!msg || msg->state != MSG_INFLIGHT)
            continue;
        if (m->action == EVSTORE__V1__NACK_ACTION__SKIP)
            msg_done(g, msg);
        else if (m->action == EVSTORE__V1__NACK_ACTION__PARK)
            msg_park(c->srv, g, msg, m->reason);
        else
            msg_retry(c->srv, g, msg, m->reason);
    }
    answer_done(c, corr);
}

void group_replay_parked(conn_t *c, uint64_t corr, const Evstore__V1__GroupName *m)
{
    server_t *srv = c->srv;
    group_t *g = group_or_error(c, corr, m->name);
    if (!g)
        return;
    int rc = group_replay_range(srv, g, UINT64_MAX);
    if (rc) {
        answer_error(c, corr, rc);
        return;
    }
    group_save_checkpoint(srv, g);
    answer_done(c, corr);
}

bool group_leave(conn_t *c, uint64_t corr)
{
    for (group_t *g = c->srv->groups; g; g = g->next_group)
        for (consumer_t *k = g->consumers; k; k = k->next)
            if (k->conn == c && k->corr == corr) {
                consumer_free(g, k, "unsubscribed");
                return true;
            }
    return false;
}

void groups_conn_gone(conn_t *c)
{
    for (group_t *g = c->srv->groups; g; g = g->next_group)
        for (consumer_t *k = g->consumers, *n; k; k = n) {
            n = k->next;
            if (k->conn == c)
                consumer_free(g, k, NULL);
        }
}
