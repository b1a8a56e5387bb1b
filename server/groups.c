/* groups.c -- the persistent subscription group as an object: its settings,
 * lookup by name, lifetime, and the numbers it reports (checkpoint, info).
 *
 * A group reads its stream, category or $all from a cursor and hands each
 * event to one of its consumers; its settings and checkpoint are events of
 * the system stream "$group-<name>", so it survives restarts and resumes from
 * its checkpoint: at-least-once delivery. groups_int.h lists the other files
 * and the states of a delivered event. */
#include "groups_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t group_checkpoint(const group_t *g)
{
    for (uint64_t i = 0; i < g->ring_count; i++)
        if (ring_at(g, i)->state != MSG_DONE)
            return ring_at(g, i)->key;
    return g->next;
}

uint64_t group_replay_checkpoint(const group_t *g)
{
    uint64_t v = g->replay_from;
    for (uint32_t i = 0; i < g->replay_count; i++)
        if (g->replays[i].state != MSG_DONE && g->replays[i].parked_version - 1 < v)
            v = g->replays[i].parked_version - 1;
    return v;
}

uint64_t group_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* ---- settings ---- */

static void group_free_filter(group_t *g)
{
    for (size_t i = 0; i < g->type_count; i++)
        free(g->types[i]);
    free(g->types);
    free(g->type_prefix);
    g->types = NULL;
    g->type_count = 0;
    g->type_prefix = NULL;
}

void group_free(group_t *g)
{
    group_free_filter(g);
    free(g->name);
    free(g->stream);
    free(g->ring);
    free(g->replays);
    free(g->pins);
    free(g);
}

static int group_set_filter(group_t *g, const Evstore__V1__EventFilter *f)
{
    group_free_filter(g);
    if (!f)
        return 0;
    if (f->type_prefix[0] && !(g->type_prefix = strdup(f->type_prefix)))
        return -ENOMEM;
    if (f->n_types && !(g->types = calloc(f->n_types, sizeof *g->types)))
        return -ENOMEM;
    for (size_t i = 0; i < f->n_types; i++, g->type_count++)
        if (!(g->types[i] = strdup(f->types[i])))
            return -ENOMEM;
    return 0;
}

static uint32_t or_default(uint32_t v, uint32_t def) { return v ? v : def; }

int group_apply(group_t *g, const Evstore__V1__GroupSettings *m)
{
    g->strategy = m->strategy;
    g->ack_timeout_ms = or_default(m->ack_timeout_ms, GROUP_ACK_TIMEOUT_MS_DEFAULT);
    g->max_retries = or_default(m->max_retries, GROUP_MAX_RETRIES_DEFAULT);
    g->max_inflight = or_default(m->max_inflight_per_consumer, GROUP_INFLIGHT_DEFAULT);
    if (g->max_inflight > GROUP_INFLIGHT_MAX)
        g->max_inflight = GROUP_INFLIGHT_MAX;
    return group_set_filter(g, m->filter);
}

bool group_by_version(const char *stream)
{
    return strcmp(stream, "$all") != 0 && strncmp(stream, "$ce-", 4) != 0;
}

group_t *group_new(const Evstore__V1__GroupSettings *m, uint64_t start)
{
    group_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->name = strdup(m->name);
    g->stream = strdup(m->stream);
    g->ring = malloc(GROUP_OUTSTANDING_MAX * sizeof *g->ring);
    if (!g->name || !g->stream || !g->ring || group_apply(g, m) != 0) {
        group_free(g);
        return NULL;
    }
    g->by_version = group_by_version(g->stream);
    g->next = start;
    g->checkpoint_written = start;
    g->checkpoint_ns = util_mono_ns();
    return g;
}

void group_settings_of(const group_t *g, Evstore__V1__GroupSettings *m,
                       Evstore__V1__EventFilter *f)
{
    evstore__v1__group_settings__init(m);
    evstore__v1__event_filter__init(f);
    m->name = g->name;
    m->stream = g->stream;
    /* Where a restart resumes if no newer checkpoint is written: never past an
     * event still outstanding. */
    m->from = group_checkpoint(g);
    m->strategy = g->strategy;
    m->ack_timeout_ms = g->ack_timeout_ms;
    m->max_retries = g->max_retries;
    m->max_inflight_per_consumer = g->max_inflight;
    f->types = g->types;
    f->n_types = g->type_count;
    f->type_prefix = g->type_prefix ? g->type_prefix : "";
    m->filter = f;
}

/* ---- the server's list ---- */

group_t *group_find(server_t *srv, const char *name)
{
    for (group_t *g = srv->groups; g; g = g->next_group)
        if (!g->deleted && strcmp(g->name, name) == 0)
            return g;
    return NULL;
}

void group_link(server_t *srv, group_t *g)
{
    g->next_group = srv->groups;
    srv->groups = g;
}

static void group_unlink(server_t *srv, group_t *g)
{
    group_t **p = &srv->groups;
    while (*p && *p != g)
        p = &(*p)->next_group;
    if (*p)
        *p = g->next_group;
    g->next_group = NULL;
}

uint32_t group_count(const server_t *srv)
{
    uint32_t n = 0;
    for (const group_t *g = srv->groups; g; g = g->next_group)
        n += !g->deleted;
    return n;
}

void group_drop(server_t *srv, group_t *g, const char *reason)
{
    while (g->consumers)
        consumer_free(g, g->consumers, reason);
    g->deleted = true;
    group_unlink(srv, g);
}

void groups_free(server_t *srv)
{
    while (srv->groups) {
        group_t *g = srv->groups;
        srv->groups = g->next_group;
        while (g->consumers) {
            consumer_t *k = g->consumers;
            g->consumers = k->next;
            events_free(&k->batch);
            free(k->retries);
            free(k);
        }
        group_free(g);
    }
}

/* ---- what it reports ---- */

uint64_t group_stream_head(server_t *srv, const char *stream)
{
    if (group_by_version(stream)) {
        int64_t v;
        return log_stream_version(srv->log, stream, strlen(stream), &v) == 0 ? (uint64_t)v + 1
                                                                             : 0;
    }
    log_stats_t st;
    log_stats(srv->log, &st);
    return st.durable_position;
}

void group_info_of(server_t *srv, const group_t *g, Evstore__V1__GroupInfo *info,
                   Evstore__V1__GroupSettings *set, Evstore__V1__EventFilter *f)
{
    evstore__v1__group_info__init(info);
    group_settings_of(g, set, f);
    info->settings = set;
    uint64_t cp = group_checkpoint(g);
    info->checkpoint = cp;
    info->next = g->next;
    uint64_t head = group_stream_head(srv, g->stream);
    info->lag = head > cp ? head - cp : 0;
    info->consumers = g->consumer_count;
    uint32_t inflight = 0;
    for (const consumer_t *k = g->consumers; k; k = k->next)
        inflight += k->inflight;
    info->inflight = inflight;
    info->parked = (uint64_t)group_parked_count(srv, g);
    info->delivered = g->delivered;
    info->acked = g->acked;
    info->redelivered = g->redelivered;
}
