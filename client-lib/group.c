/* group.c -- managing persistent subscription groups on a connection:
 * create, update, delete, list, describe, replay parked events. The
 * descriptions point into the decoded answer, which they own. */
#include "client_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int settings_check(const char *what, const evs_group_settings_t *s, bool need_stream)
{
    const char *bad = NULL;
    if (!s || !s->name || !s->name[0])
        bad = "no name";
    else if (need_stream && (!s->stream || !s->stream[0]))
        bad = "no stream";
    else if (s->type_count > EVS_GROUP_TYPES_MAX || (s->type_count && !s->types))
        bad = "too many types, or types missing";
    else if (s->strategy != EVS_GROUP_ROUND_ROBIN && s->strategy != EVS_GROUP_PINNED)
        bad = "unknown strategy";
    if (!bad)
        return 0;
    evsi_errmsg_set("%s: %s", what, bad);
    return -EINVAL;
}

static void settings_to_wire(Evstore__V1__GroupSettings *w, Evstore__V1__EventFilter *filter,
                             const evs_group_settings_t *s)
{
    evstore__v1__group_settings__init(w);
    w->name = (char *)s->name;
    w->stream = (char *)(s->stream ? s->stream : "");
    w->from = s->from;
    w->from_end = s->from_end;
    w->strategy = s->strategy == EVS_GROUP_PINNED ? EVSTORE__V1__GROUP_STRATEGY__PINNED
                                                  : EVSTORE__V1__GROUP_STRATEGY__ROUND_ROBIN;
    w->ack_timeout_ms = s->ack_timeout_ms;
    w->max_retries = s->max_retries;
    w->max_inflight_per_consumer = s->inflight_max_per_consumer;
    if (evsi_filter_fill(filter, s->types, s->type_count, s->type_prefix))
        w->filter = filter;
}

/* Sends a request answered by Done. */
static int request_done(evs_conn_t *conn, envelope_t *env)
{
    envelope_t *resp = NULL;
    int err = evsi_request_expect(conn, env, EVSTORE__V1__ENVELOPE__BODY_DONE, &resp);
    frame_free(resp);
    return err;
}

/* Create or update: the same message, two bodies. */
static int settings_send(evs_conn_t *conn, const evs_group_settings_t *s, bool create)
{
    evsi_errmsg_clear();
    int err = settings_check(create ? "evs_group_create" : "evs_group_update", s, create);
    if (err)
        return err;
    Evstore__V1__GroupSettings w;
    Evstore__V1__EventFilter filter;
    settings_to_wire(&w, &filter, s);
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    if (create) {
        env.body_case = EVSTORE__V1__ENVELOPE__BODY_GROUP_CREATE;
        env.group_create = &w;
    } else {
        env.body_case = EVSTORE__V1__ENVELOPE__BODY_GROUP_UPDATE;
        env.group_update = &w;
    }
    return request_done(conn, &env);
}

int evs_group_create(evs_conn_t *conn, const evs_group_settings_t *settings)
{
    return settings_send(conn, settings, true);
}

int evs_group_update(evs_conn_t *conn, const evs_group_settings_t *settings)
{
    return settings_send(conn, settings, false);
}

/* Fills a GroupName request for name; -EINVAL when it is empty. */
static int name_check(const char *what, const char *name)
{
    if (name && name[0])
        return 0;
    evsi_errmsg_set("%s: no name", what);
    return -EINVAL;
}

int evs_group_delete(evs_conn_t *conn, const char *name)
{
    evsi_errmsg_clear();
    int err = name_check("evs_group_delete", name);
    if (err)
        return err;
    Evstore__V1__GroupName gn = EVSTORE__V1__GROUP_NAME__INIT;
    gn.name = (char *)name;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_GROUP_DELETE;
    env.group_delete = &gn;
    return request_done(conn, &env);
}

int evs_group_replay_parked(evs_conn_t *conn, const char *name)
{
    evsi_errmsg_clear();
    int err = name_check("evs_group_replay_parked", name);
    if (err)
        return err;
    Evstore__V1__GroupName gn = EVSTORE__V1__GROUP_NAME__INIT;
    gn.name = (char *)name;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_GROUP_REPLAY_PARKED;
    env.group_replay_parked = &gn;
    return request_done(conn, &env);
}

/* Points *out at a decoded GroupInfo (no copy; owner_ is left to the caller). */
static void info_from_wire(evs_group_info_t *out, const Evstore__V1__GroupInfo *w)
{
    memset(out, 0, sizeof *out);
    const Evstore__V1__GroupSettings *s = w->settings;
    if (s) {
        out->settings.name = s->name;
        out->settings.stream = s->stream;
        out->settings.from = s->from;
        out->settings.from_end = s->from_end;
        out->settings.strategy = s->strategy == EVSTORE__V1__GROUP_STRATEGY__PINNED
                                     ? EVS_GROUP_PINNED
                                     : EVS_GROUP_ROUND_ROBIN;
        out->settings.ack_timeout_ms = s->ack_timeout_ms;
        out->settings.max_retries = s->max_retries;
        out->settings.inflight_max_per_consumer = s->max_inflight_per_consumer;
        if (s->filter) {
            out->settings.types = (const char *const *)s->filter->types;
            out->settings.type_count = s->filter->n_types;
            out->settings.type_prefix = s->filter->type_prefix;
        }
    } else {
        out->settings.name = out->settings.stream = "";
    }
    out->checkpoint = w->checkpoint;
    out->next = w->next;
    out->lag = w->lag;
    out->consumers = w->consumers;
    out->inflight = w->inflight;
    out->parked = w->parked;
    out->delivered = w->delivered;
    out->acked = w->acked;
    out->redelivered = w->redelivered;
}

int evs_group_info(evs_conn_t *conn, const char *name, evs_group_info_t *out)
{
    memset(out, 0, sizeof *out);
    evsi_errmsg_clear();
    int err = name_check("evs_group_info", name);
    if (err)
        return err;
    Evstore__V1__GroupName gn = EVSTORE__V1__GROUP_NAME__INIT;
    gn.name = (char *)name;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_GROUP_INFO;
    env.group_info = &gn;
    envelope_t *resp = NULL;
    err = evsi_request_expect(conn, &env, EVSTORE__V1__ENVELOPE__BODY_GROUP_INFO_OK, &resp);
    if (err)
        return err;
    info_from_wire(out, resp->group_info_ok);
    out->owner_ = resp;
    return 0;
}

void evs_group_info_free(evs_group_info_t *info)
{
    if (!info)
        return;
    frame_free(info->owner_);
    memset(info, 0, sizeof *info);
}

int evs_group_list(evs_conn_t *conn, evs_group_list_t *out)
{
    memset(out, 0, sizeof *out);
    evsi_errmsg_clear();
    Evstore__V1__GroupListRequest gl = EVSTORE__V1__GROUP_LIST_REQUEST__INIT;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_GROUP_LIST;
    env.group_list = &gl;
    envelope_t *resp = NULL;
    int err = evsi_request_expect(conn, &env, EVSTORE__V1__ENVELOPE__BODY_GROUP_LIST_OK, &resp);
    if (err)
        return err;
    const Evstore__V1__GroupList *list = resp->group_list_ok;
    if (list->n_groups) {
        out->groups = calloc(list->n_groups, sizeof *out->groups);
        if (!out->groups) {
            frame_free(resp);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < list->n_groups; i++)
        info_from_wire(&out->groups[i], list->groups[i]);
    out->count = list->n_groups;
    out->owner_ = resp;
    return 0;
}

void evs_group_list_free(evs_group_list_t *list)
{
    if (!list)
        return;
    free(list->groups);
    frame_free(list->owner_);
    memset(list, 0, sizeof *list);
}
