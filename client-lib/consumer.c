/* consumer.c -- group consumers: join a group over a link of their own,
 * pull its events, ack and nack them, rejoin after a failure.
 *
 * The join's correlation id names the consumer in every GroupEvents frame;
 * acks and nacks each get a fresh id, and their answers (Done or Error) are
 * read by evs_consumer_next() along with the events and counted. Acks are
 * sent from any thread (evsi_link_send takes the link's send_lock); everything
 * else runs on the thread that calls evs_consumer_next(). */
#include "client_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct evs_consumer {
    link_t link;
    char *name;
    uint32_t inflight_max;
    uint64_t join_corr;    /* of the current membership */
    envelope_t *held;      /* GroupEvents being handed out */
    size_t held_next;
    envelope_t *pending;   /* a frame that came before GroupJoinOk */
    int fatal;
    pthread_mutex_t stats_lock;
    evs_consumer_stats_t stats;
};

static void consumer_free(evs_consumer_t *c)
{
    frame_free(c->held);
    frame_free(c->pending);
    free(c->name);
    evsi_link_destroy(&c->link);
    pthread_mutex_destroy(&c->stats_lock);
    free(c);
}

static int join_send(evs_consumer_t *c)
{
    Evstore__V1__GroupJoin gj = EVSTORE__V1__GROUP_JOIN__INIT;
    gj.name = c->name;
    gj.max_inflight = c->inflight_max; /* the wire keeps its name */
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_GROUP_JOIN;
    env.group_join = &gj;
    return evsi_link_send(&c->link, &env, evsi_deadline_after_ms(c->link.opts.io_timeout_ms),
                     &c->join_corr);
}

/* Waits for GroupJoinOk or an Error; events that come first are pending. */
static int join_wait(evs_consumer_t *c)
{
    uint64_t deadline = evsi_deadline_after_ms(c->link.opts.io_timeout_ms);
    envelope_t *env = NULL;
    int err = evsi_link_recv(&c->link, deadline, &env);
    if (err)
        return err;
    if (env->correlation_id != c->join_corr) {
        evsi_errmsg_set("answer to a join with correlation id %llu, sent %llu",
                   (unsigned long long)env->correlation_id, (unsigned long long)c->join_corr);
        err = EVS_EPROTOCOL;
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        err = evsi_error_from_envelope(env);
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_GROUP_EVENTS) {
        c->pending = env;
        return 0;
    } else if (env->body_case != EVSTORE__V1__ENVELOPE__BODY_GROUP_JOIN_OK) {
        evsi_errmsg_set("server answered a join with message %d", (int)env->body_case);
        err = EVS_EPROTOCOL;
    }
    frame_free(env);
    return err;
}

/* Opens the link and joins; on failure the link is down again. */
static int consumer_connect(evs_consumer_t *c)
{
    int err = evsi_link_open(&c->link);
    if (!err)
        err = join_send(c);
    if (!err)
        err = join_wait(c);
    if (err)
        evsi_link_down(&c->link);
    return err;
}

static int consumer_connect_cb(void *arg)
{
    return consumer_connect(arg);
}

static void consumer_lost(evs_consumer_t *c, int err)
{
    pthread_mutex_lock(&c->stats_lock);
    c->stats.last_error = err;
    snprintf(c->stats.last_error_msg, sizeof c->stats.last_error_msg, "%s: %s",
             evs_strerror(err), evs_errmsg());
    pthread_mutex_unlock(&c->stats_lock);
    frame_free(c->pending);
    c->pending = NULL;
    evsi_link_down(&c->link);
}

static int consumer_fail(evs_consumer_t *c, int err)
{
    consumer_lost(c, err);
    c->fatal = err;
    return err;
}

static int consumer_rejoin(evs_consumer_t *c, uint64_t deadline_ns)
{
    for (;;) {
        int err = evsi_link_wait_retry(&c->link, deadline_ns);
        if (err)
            return err;
        err = consumer_connect(c);
        if (!err) {
            pthread_mutex_lock(&c->stats_lock);
            c->stats.rejoins++;
            pthread_mutex_unlock(&c->stats_lock);
            return 0;
        }
        if (!evs_error_retryable(err))
            return consumer_fail(c, err);
        pthread_mutex_lock(&c->stats_lock);
        c->stats.last_error = err;
        snprintf(c->stats.last_error_msg, sizeof c->stats.last_error_msg, "%s: %s",
                 evs_strerror(err), evs_errmsg());
        pthread_mutex_unlock(&c->stats_lock);
    }
}

/* Hands out the next event of the held frame; false when used up (freed). */
static bool held_deliver(evs_consumer_t *c, evs_group_event_t *ev)
{
    const Evstore__V1__GroupEvents *ge = c->held->group_events;
    while (c->held_next < ge->n_events) {
        const Evstore__V1__GroupEvent *g = ge->events[c->held_next++];
        if (!g->event)
            continue;
        evsi_event_from_wire(&ev->event, g->event);
        ev->retry_count = g->retry_count;
        pthread_mutex_lock(&c->stats_lock);
        c->stats.events_delivered++;
        pthread_mutex_unlock(&c->stats_lock);
        return true;
    }
    frame_free(c->held);
    c->held = NULL;
    return false;
}

/* The answer to an ack or nack: counted. */
static void ack_answer(evs_consumer_t *c, const envelope_t *env)
{
    pthread_mutex_lock(&c->stats_lock);
    if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_DONE) {
        c->stats.acks_done++;
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        c->stats.ack_errors++;
        c->stats.last_ack_error = evsi_error_from_wire(env->error->code);
    }
    pthread_mutex_unlock(&c->stats_lock);
}

/* Acts on one frame. Returns 0 to go on, or the error that ended the
 * consumer. */
static int frame_handle(evs_consumer_t *c, envelope_t *env)
{
    int rc = 0;
    if (env->correlation_id != c->join_corr) {
        ack_answer(c, env);
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_GROUP_EVENTS) {
        evsi_link_backoff_reset(&c->link);
        c->held = env;
        c->held_next = 0;
        return 0;
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_SUB_DROPPED) {
        evsi_errmsg_set("the server dropped the consumer: %s", env->sub_dropped->reason);
        consumer_lost(c, EVS_ECLOSED);
    } else if (env->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR) {
        int err = evsi_error_from_envelope(env);
        rc = evs_error_retryable(err) ? (consumer_lost(c, err), 0) : consumer_fail(c, err);
    } else if (env->body_case != EVSTORE__V1__ENVELOPE__BODY_GROUP_JOIN_OK) {
        evsi_errmsg_set("unexpected message %d for a group consumer", (int)env->body_case);
        consumer_lost(c, EVS_EPROTOCOL);
    }
    frame_free(env);
    return rc;
}

int evs_group_join(const evs_options_t *opts, const char *name, uint32_t inflight_max,
                   evs_consumer_t **out)
{
    evsi_errmsg_clear();
    if (!name || !name[0]) {
        evsi_errmsg_set("evs_group_join: no name");
        return -EINVAL;
    }
    evs_consumer_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int err = evsi_link_init(&c->link, opts);
    if (err) {
        free(c);
        return err;
    }
    pthread_mutex_init(&c->stats_lock, NULL);
    c->inflight_max = inflight_max;
    c->name = strdup(name);
    err = c->name ? evsi_link_first_open(&c->link, consumer_connect_cb, c) : -ENOMEM;
    if (err) {
        char msg[EVS_MESSAGE_BYTES_MAX];
        snprintf(msg, sizeof msg, "%s", evs_errmsg());
        consumer_free(c);
        evsi_errmsg_set("%s", msg);
        return err;
    }
    evsi_link_backoff_reset(&c->link);
    *out = c;
    return 0;
}

int evs_consumer_next(evs_consumer_t *c, int timeout_ms, evs_group_event_t *ev)
{
    evsi_errmsg_clear();
    uint64_t deadline = evsi_deadline_after_ms(timeout_ms);
    for (;;) {
        if (c->fatal) {
            pthread_mutex_lock(&c->stats_lock);
            evsi_errmsg_set("%s", c->stats.last_error_msg);
            pthread_mutex_unlock(&c->stats_lock);
            return c->fatal;
        }
        if (c->held && held_deliver(c, ev))
            return 0;
        if (c->link.fd < 0) {
            int err = consumer_rejoin(c, deadline);
            if (err)
                return err;
            continue;
        }
        envelope_t *env = c->pending;
        c->pending = NULL;
        int err = env ? 0 : evsi_link_recv(&c->link, deadline, &env);
        if (err == EVS_ETIMEDOUT)
            return err;
        if (err == -ENOMEM)
            return consumer_fail(c, err);
        if (err) {
            consumer_lost(c, err);
            continue;
        }
        err = frame_handle(c, env);
        if (err)
            return err;
    }
}

/* Sends an ack or nack request and counts it. */
static int ack_send(evs_consumer_t *c, envelope_t *env)
{
    int err = evsi_link_send(&c->link, env, evsi_deadline_after_ms(c->link.opts.io_timeout_ms), NULL);
    if (!err) {
        pthread_mutex_lock(&c->stats_lock);
        c->stats.acks_sent++;
        pthread_mutex_unlock(&c->stats_lock);
    }
    return err;
}

int evs_consumer_ack(evs_consumer_t *c, uint64_t position)
{
    return evs_consumer_ack_many(c, &position, 1);
}

int evs_consumer_ack_many(evs_consumer_t *c, const uint64_t *positions, size_t count)
{
    evsi_errmsg_clear();
    if (count == 0 || count > EVS_ACK_MANY_MAX || !positions) {
        evsi_errmsg_set("evs_consumer_ack_many: 1..EVS_ACK_MANY_MAX positions");
        return -EINVAL;
    }
    Evstore__V1__GroupAck ga = EVSTORE__V1__GROUP_ACK__INIT;
    ga.name = c->name;
    ga.n_positions = count;
    ga.positions = (uint64_t *)positions;
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_GROUP_ACK;
    env.group_ack = &ga;
    return ack_send(c, &env);
}

int evs_consumer_nack(evs_consumer_t *c, uint64_t position, evs_nack_action_t action,
                      const char *reason)
{
    evsi_errmsg_clear();
    if ((action != EVS_NACK_RETRY && action != EVS_NACK_PARK && action != EVS_NACK_SKIP) ||
        (reason && strlen(reason) > EVS_NACK_REASON_BYTES_MAX)) {
        evsi_errmsg_set("evs_consumer_nack: bad action or reason too long");
        return -EINVAL;
    }
    Evstore__V1__GroupNack gn = EVSTORE__V1__GROUP_NACK__INIT;
    gn.name = c->name;
    gn.n_positions = 1;
    gn.positions = &position;
    gn.action = action == EVS_NACK_PARK   ? EVSTORE__V1__NACK_ACTION__PARK
                : action == EVS_NACK_SKIP ? EVSTORE__V1__NACK_ACTION__SKIP
                                          : EVSTORE__V1__NACK_ACTION__RETRY;
    gn.reason = (char *)(reason ? reason : "");
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.body_case = EVSTORE__V1__ENVELOPE__BODY_GROUP_NACK;
    env.group_nack = &gn;
    return ack_send(c, &env);
}

void evs_consumer_stats(evs_consumer_t *c, evs_consumer_stats_t *out)
{
    pthread_mutex_lock(&c->stats_lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->stats_lock);
}

#define CONSUMER_CLOSE_SEND_MS_MAX 200 /* the Unsubscribe is a courtesy */

void evs_consumer_close(evs_consumer_t *c)
{
    if (!c)
        return;
    if (c->link.fd >= 0) {
        Evstore__V1__Unsubscribe un = EVSTORE__V1__UNSUBSCRIBE__INIT;
        envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
        env.body_case = EVSTORE__V1__ENVELOPE__BODY_UNSUBSCRIBE;
        env.unsubscribe = &un;
        (void)evsi_link_send_as(&c->link, &env, c->join_corr,
                           evsi_deadline_after_ms(CONSUMER_CLOSE_SEND_MS_MAX), NULL);
    }
    consumer_free(c);
}
