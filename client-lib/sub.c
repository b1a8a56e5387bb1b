/* sub.c -- catch-up subscriptions: a pull iterator over a link of its own.
 *
 * The subscription remembers where to resume: after the last event handed
 * to the caller (its version + 1 for a stream, its position + 1 for "$ce-"
 * and "$all"), or the server's `next` once a frame was handed out whole or
 * a CaughtUp came. A frame is kept (held) while its events are handed out;
 * the socket is read only when the held frame is used up, so nothing is
 * read ahead of the caller. After a failure the link is reopened with
 * backoff and the subscription sent again from the resume point; the bytes
 * received after the last event handed out are dropped with the old
 * connection, which is why no event is lost or repeated. */
#include "client_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct evs_sub {
    link_t link;
    /* the request (owned copies) */
    char *stream;
    char *type_prefix;
    char *stream_prefix;
    char *types[EVS_SUB_TYPES_MAX];
    size_t type_count;
    uint32_t batch_max;
    bool by_position;      /* "$ce-" or "$all": from is a position, else a version */
    /* where the next subscription starts */
    bool from_end;         /* nothing known yet: from the end again */
    uint64_t resume;
    uint64_t corr;         /* the current subscription's correlation id */
    /* delivery */
    envelope_t *held;      /* SubscriptionEvents being handed out */
    size_t held_next;
    envelope_t *pending;   /* a frame that came before SubscribeOk */
    bool delivered_any;
    uint64_t last_position; /* of the last event handed out */
    int fatal;             /* the error that ended the subscription */
    evs_sub_stats_t stats;
};

static bool stream_by_position(const char *stream)
{
    return strcmp(stream, "$all") == 0 || strncmp(stream, "$ce-", 4) == 0;
}

static int sub_check(const evs_subscribe_t *req)
{
    const char *bad = NULL;
    if (!req || !req->stream || !req->stream[0])
        bad = "no stream";
    else if (req->type_count > EVS_SUB_TYPES_MAX || (req->type_count && !req->types))
        bad = "too many types, or types missing";
    else if (req->batch_max > EVS_SUB_BATCH_MAX_LIMIT)
        bad = "batch_max over EVS_SUB_BATCH_MAX_LIMIT";
    for (size_t i = 0; !bad && i < req->type_count; i++)
        if (!req->types[i] || !req->types[i][0])
            bad = "an empty type";
    if (!bad)
        return 0;
    evsi_errmsg_set("evs_subscribe: %s", bad);
    return -EINVAL;
}

static char *strdup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

static void sub_free(evs_sub_t *sub)
{
    frame_free(sub->held);
    frame_free(sub->pending);
    free(sub->stream);
    free(sub->type_prefix);
    free(sub->stream_prefix);
    for (size_t i = 0; i < sub->type_count; i++)
        free(sub->types[i]);
    evsi_link_destroy(&sub->link);
    free(sub);
}

/* Copies the request into a new subscription with a down link. */
static int sub_alloc(const evs_options_t *opts, const evs_subscribe_t *req, evs_sub_t **out)
{
    evs_sub_t *sub = calloc(1, sizeof *sub);
    if (!sub)
        return -ENOMEM;
    int err = evsi_link_init(&sub->link, opts);
    if (err) {
        free(sub);
        return err;
    }
    sub->stream = strdup(req->stream);
    sub->type_prefix = strdup_or_null(req->type_prefix);
    sub->stream_prefix = strdup_or_null(req->stream_prefix);
    bool nomem = !sub->stream || (req->type_prefix && req->type_prefix[0] && !sub->type_prefix) ||
                 (req->stream_prefix && req->stream_prefix[0] && !sub->stream_prefix);
    for (size_t i = 0; i < req->type_count; i++, sub->type_count++)
        nomem |= !(sub->types[i] = strdup(req->types[i]));
    if (nomem) {
        sub_free(sub);
        return -ENOMEM;
    }
    sub->batch_max = req->batch_max ? req->batch_max : EVS_SUB_BATCH_MAX_DEFAULT;
    sub->by_position = stream_by_position(req->stream);
    sub->from_end = req->from_end;
    sub->resume = req->from;
    *out = sub;
    return 0;
}

/* Sends the SubscribeRequest for the resume point on the open link. */
static int subscribe_send(evs_sub_t *sub)
{
    Evstore__V1__SubscribeRequest sr = EVSTORE__V1__SUBSCRIBE_REQUEST__INIT;
    Evstore__V1__EventFilter filter;
    sr.stream = sub->stream;
    sr.from = sub->from_end ? 0 : sub->resume;
    sr.from_end = sub->from_end;
    sr.stream_prefix = sub->stream_prefix ? sub->stream_prefix : "";
    sr.batch_max = sub->batch_max;
    if (evsi_filter_fill(&filter, (const char *const *)sub->types, sub->type_count, sub->type_prefix))
        sr.filter = &filter;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_SUBSCRIBE;
    env.subscribe = &sr;
    return evsi_link_send(&sub->link, &env, evsi_deadline_after_ms(sub->link.opts.io_timeout_ms),
                     &sub->corr);
}

/* Waits for the answer to the subscription: SubscribeOk, or an Error. A
 * frame of the subscription that comes first is kept as pending. */
static int subscribe_wait(evs_sub_t *sub)
{
    uint64_t deadline = evsi_deadline_after_ms(sub->link.opts.io_timeout_ms);
    envelope_t *env = NULL;
    int err = evsi_link_recv(&sub->link, deadline, &env);
    if (err)
        return err;
    if (env->correlation_id != sub->corr) {
        evsi_errmsg_set("answer to a subscription with correlation id %llu, sent %llu",
                   (unsigned long long)env->correlation_id, (unsigned long long)sub->corr);
        err = EVS_EPROTOCOL;
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_SUBSCRIBE_OK) {
        if (sub->from_end && sub->by_position) {
            sub->from_end = false; /* the head is where "the end" was */
            sub->resume = env->subscribe_ok->head;
        }
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        err = evsi_error_from_envelope(env);
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_SUB_EVENTS ||
               env->body_case == EVSTORE__V1__ENVELOPE__BODY_CAUGHT_UP) {
        sub->pending = env;
        return 0;
    } else {
        evsi_errmsg_set("server answered a subscription with message %d", (int)env->body_case);
        err = EVS_EPROTOCOL;
    }
    frame_free(env);
    return err;
}

/* Opens the link and subscribes. On failure the link is down again, with
 * its next attempt scheduled. */
static int sub_connect(evs_sub_t *sub)
{
    int err = evsi_link_open(&sub->link);
    if (!err)
        err = subscribe_send(sub);
    if (!err)
        err = subscribe_wait(sub);
    if (err)
        evsi_link_down(&sub->link);
    return err;
}

static int sub_connect_cb(void *arg)
{
    return sub_connect(arg);
}

/* Records why the connection failed and takes the link down. */
static void sub_lost(evs_sub_t *sub, int err)
{
    sub->stats.last_error = err;
    snprintf(sub->stats.last_error_msg, sizeof sub->stats.last_error_msg, "%s: %s",
             evs_strerror(err), evs_errmsg());
    frame_free(sub->pending);
    sub->pending = NULL;
    evsi_link_down(&sub->link);
}

/* Ends the subscription with err, for good. */
static int sub_fail(evs_sub_t *sub, int err)
{
    sub_lost(sub, err);
    sub->fatal = err;
    return err;
}

/* Reconnects when the backoff allows, until the deadline. */
static int sub_reconnect(evs_sub_t *sub, uint64_t deadline_ns)
{
    for (;;) {
        int err = evsi_link_wait_retry(&sub->link, deadline_ns);
        if (err)
            return err;
        err = sub_connect(sub);
        if (!err) {
            sub->stats.reconnects++;
            return 0;
        }
        if (!evs_error_retryable(err))
            return sub_fail(sub, err);
        sub->stats.last_error = err;
        snprintf(sub->stats.last_error_msg, sizeof sub->stats.last_error_msg, "%s: %s",
                 evs_strerror(err), evs_errmsg());
    }
}

/* Hands out the next event of the held frame. Returns true with *item;
 * false when the frame is used up (then freed, its `next` adopted). */
static bool held_deliver(evs_sub_t *sub, evs_sub_item_t *item)
{
    const Evstore__V1__SubscriptionEvents *se = sub->held->sub_events;
    while (sub->held_next < se->n_events) {
        const Evstore__V1__RecordedEvent *e = se->events[sub->held_next++];
        if (sub->delivered_any && e->position <= sub->last_position) {
            sub->stats.duplicates_dropped++;
            continue;
        }
        sub->delivered_any = true;
        sub->last_position = e->position;
        sub->from_end = false;
        sub->resume = sub->by_position ? e->position + 1 : (uint64_t)e->version + 1;
        sub->stats.events_delivered++;
        item->kind = EVS_SUB_EVENT;
        evsi_event_from_wire(&item->event, e);
        item->next = sub->resume;
        return true;
    }
    if (se->next > sub->resume || sub->from_end) {
        sub->resume = se->next;
        sub->from_end = false;
    }
    frame_free(sub->held);
    sub->held = NULL;
    return false;
}

/* Acts on one frame of the subscription. Returns 1 with *item (a CaughtUp),
 * 0 to go on, or the error that ended the subscription. */
static int frame_handle(evs_sub_t *sub, envelope_t *env, evs_sub_item_t *item)
{
    int rc = 0;
    if (env->correlation_id != sub->corr) {
        evsi_errmsg_set("frame %d with correlation id %llu, subscribed as %llu", (int)env->body_case,
                   (unsigned long long)env->correlation_id, (unsigned long long)sub->corr);
        sub_lost(sub, EVS_EPROTOCOL);
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_SUB_EVENTS) {
        evsi_link_backoff_reset(&sub->link);
        sub->held = env;
        sub->held_next = 0;
        return 0;
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_CAUGHT_UP) {
        evsi_link_backoff_reset(&sub->link);
        uint64_t next = env->caught_up->next;
        if (next > sub->resume || sub->from_end)
            sub->resume = next;
        sub->from_end = false;
        memset(item, 0, sizeof *item);
        item->kind = EVS_SUB_CAUGHT_UP;
        item->next = sub->resume;
        rc = 1;
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_SUB_DROPPED) {
        evsi_errmsg_set("the server dropped the subscription: %s", env->sub_dropped->reason);
        sub_lost(sub, EVS_ECLOSED);
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        int err = evsi_error_from_envelope(env);
        rc = evs_error_retryable(err) ? (sub_lost(sub, err), 0) : sub_fail(sub, err);
    } else if (env->body_case != EVSTORE__V1__ENVELOPE__BODY_SUBSCRIBE_OK) {
        evsi_errmsg_set("unexpected message %d in a subscription", (int)env->body_case);
        sub_lost(sub, EVS_EPROTOCOL);
    }
    frame_free(env);
    return rc;
}

int evs_subscribe(const evs_options_t *opts, const evs_subscribe_t *req, evs_sub_t **out)
{
    evsi_errmsg_clear();
    int err = sub_check(req);
    evs_sub_t *sub = NULL;
    if (!err)
        err = sub_alloc(opts, req, &sub);
    if (err)
        return err;
    err = evsi_link_first_open(&sub->link, sub_connect_cb, sub);
    if (err) {
        char msg[EVS_MESSAGE_BYTES_MAX];
        snprintf(msg, sizeof msg, "%s", evs_errmsg());
        sub_free(sub);
        evsi_errmsg_set("%s", msg);
        return err;
    }
    evsi_link_backoff_reset(&sub->link);
    *out = sub;
    return 0;
}

int evs_sub_next(evs_sub_t *sub, int timeout_ms, evs_sub_item_t *item)
{
    evsi_errmsg_clear();
    uint64_t deadline = evsi_deadline_after_ms(timeout_ms);
    for (;;) {
        if (sub->fatal) {
            evsi_errmsg_set("%s", sub->stats.last_error_msg);
            return sub->fatal;
        }
        if (sub->held && held_deliver(sub, item))
            return 0;
        if (sub->link.fd < 0) {
            int err = sub_reconnect(sub, deadline);
            if (err)
                return err;
            continue;
        }
        envelope_t *env = sub->pending;
        sub->pending = NULL;
        int err = env ? 0 : evsi_link_recv(&sub->link, deadline, &env);
        if (err == EVS_ETIMEDOUT)
            return err;
        if (err == -ENOMEM)
            return sub_fail(sub, err);
        if (err) {
            sub_lost(sub, err);
            continue;
        }
        int rc = frame_handle(sub, env, item);
        if (rc)
            return rc > 0 ? 0 : rc;
    }
}

void evs_sub_stats(const evs_sub_t *sub, evs_sub_stats_t *out)
{
    *out = sub->stats;
}

#define SUB_CLOSE_SEND_MS_MAX 200 /* the Unsubscribe is a courtesy: do not wait long */

void evs_sub_close(evs_sub_t *sub)
{
    if (!sub)
        return;
    if (sub->link.fd >= 0) {
        Evstore__V1__Unsubscribe un = EVSTORE__V1__UNSUBSCRIBE__INIT;
        envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
        env.body_case = EVSTORE__V1__ENVELOPE__BODY_UNSUBSCRIBE;
        env.unsubscribe = &un;
        (void)evsi_link_send_as(&sub->link, &env, sub->corr, evsi_deadline_after_ms(SUB_CLOSE_SEND_MS_MAX),
                           NULL);
    }
    sub_free(sub);
}
