/* service.c -- the group-driven worker runtime of every OMS service.
 *
 * The calling thread (the dispatcher) pulls events from the service's group
 * consumer, copies each one and queues it on the worker that owns its key
 * (a hash of the stream name's part after the first '-'). Each worker runs
 * the handler on its queue in order, acks or nacks, and runs the handler's
 * tick every tick_ms. The consumer holds at most inflight_max unacked
 * events, so the queues are bounded by it (plus posts, which block when a
 * queue is full). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "oms.h"
#include "util.h"

#define SERVICE_PULL_MS 20          /* the dispatcher's wait: it sees a stop soon, and
                                       sends acks queued meanwhile within this */
#define SERVICE_CONNECT_RETRY_MS 200
#define SERVICE_POST_SLACK 64u      /* queue room for posts beyond inflight_max */
#define SERVICE_ACK_BATCH 32u       /* acks sent together (one frame for many events) */

typedef enum { ITEM_EVENT, ITEM_POST } item_kind_t;

typedef struct {
    item_kind_t kind;
    evs_recorded_event_t ev;  /* ITEM_EVENT: pointers into the allocation's tail */
    uint32_t retry_count;
    oms_post_fn fn;           /* ITEM_POST */
    void *arg;
} item_t;

struct oms_worker {
    oms_service_t *svc;
    unsigned index;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    pthread_cond_t nonfull;
    item_t **queue;           /* ring of cap items */
    size_t head, count, cap;
    void *state;
    char reason[OMS_REASON_BYTES_MAX];
};

struct oms_service {
    oms_config_t cfg;
    const oms_subscription_t *sub;
    const oms_handler_t *h;
    void *svc_ctx;
    oms_store_t *store;
    oms_metrics_t *metrics;
    oms_metrics_http_t *http;
    evs_consumer_t *consumer;
    oms_worker_t workers[OMS_WORKERS_MAX];
    atomic_bool stop;         /* asked to stop: no new events */
    atomic_bool draining;     /* workers: finish the queue, then exit */
    oms_histogram_t *handler_seconds;
    oms_counter_t *retries;
    oms_counter_t *parked;
    pthread_mutex_t ack_lock;  /* acks not yet sent */
    uint64_t acks[SERVICE_ACK_BATCH];
    size_t ack_count;
};

/* ---- signals ---- */

static volatile int stop_flag;
static oms_service_t *volatile running_service;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
    oms_service_t *svc = running_service;
    if (svc)
        atomic_store(&svc->stop, true);
}

volatile int *oms_stop_flag_install(void)
{
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return &stop_flag;
}

void oms_service_stop(oms_service_t *svc)
{
    atomic_store(&svc->stop, true);
}

/* ---- accessors ---- */

oms_store_t *oms_service_store(oms_service_t *svc) { return svc->store; }
oms_metrics_t *oms_service_metrics(oms_service_t *svc) { return svc->metrics; }
const oms_config_t *oms_service_config(oms_service_t *svc) { return &svc->cfg; }
oms_service_t *oms_worker_service(oms_worker_t *w) { return w->svc; }
oms_store_t *oms_worker_store(oms_worker_t *w) { return w->svc->store; }
oms_metrics_t *oms_worker_metrics(oms_worker_t *w) { return w->svc->metrics; }
unsigned oms_worker_index(const oms_worker_t *w) { return w->index; }

void oms_worker_reason(oms_worker_t *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->reason, sizeof w->reason, fmt, ap);
    va_end(ap);
}

/* ---- queues ---- */

static oms_worker_t *worker_of(oms_service_t *svc, const char *key)
{
    uint64_t h = XXH3_64bits(key, strlen(key));
    return &svc->workers[h % svc->cfg.workers];
}

/* Queues it on w, waiting while the queue is full. */
static void worker_push(oms_worker_t *w, item_t *it)
{
    pthread_mutex_lock(&w->lock);
    while (w->count == w->cap)
        pthread_cond_wait(&w->nonfull, &w->lock);
    w->queue[(w->head + w->count) % w->cap] = it;
    w->count++;
    pthread_cond_signal(&w->nonempty);
    pthread_mutex_unlock(&w->lock);
}

/* Takes the next item, waiting until deadline (monotonic ns; INT64_MAX: no
 * deadline, for a handler without a tick, whose workers then sleep until
 * there is work). NULL when the deadline passed or the service drains with
 * an empty queue. */
static item_t *worker_pop(oms_worker_t *w, int64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    pthread_mutex_lock(&w->lock);
    while (w->count == 0 && !atomic_load(&w->svc->draining)) {
        if (deadline_ns == INT64_MAX)
            pthread_cond_wait(&w->nonempty, &w->lock);
        else if (pthread_cond_timedwait(&w->nonempty, &w->lock, &ts) == ETIMEDOUT)
            break;
    }
    item_t *it = NULL;
    if (w->count > 0) {
        it = w->queue[w->head];
        w->head = (w->head + 1) % w->cap;
        w->count--;
        pthread_cond_signal(&w->nonfull);
    }
    pthread_mutex_unlock(&w->lock);
    return it;
}

static bool worker_idle_and_draining(oms_worker_t *w)
{
    pthread_mutex_lock(&w->lock);
    bool done = w->count == 0 && atomic_load(&w->svc->draining);
    pthread_mutex_unlock(&w->lock);
    return done;
}

/* Copies ev into one allocation. */
static item_t *item_copy(const evs_group_event_t *gev)
{
    const evs_recorded_event_t *ev = &gev->event;
    size_t stream_len = strlen(ev->stream) + 1, type_len = strlen(ev->type) + 1;
    item_t *it = malloc(sizeof *it + stream_len + type_len + ev->data_len + ev->metadata_len);
    if (!it)
        return NULL;
    char *tail = (char *)(it + 1);
    *it = (item_t){.kind = ITEM_EVENT, .ev = *ev, .retry_count = gev->retry_count};
    it->ev.stream = memcpy(tail, ev->stream, stream_len);
    tail += stream_len;
    it->ev.type = memcpy(tail, ev->type, type_len);
    tail += type_len;
    it->ev.data = ev->data_len ? memcpy(tail, ev->data, ev->data_len) : NULL;
    tail += ev->data_len;
    it->ev.metadata = ev->metadata_len ? memcpy(tail, ev->metadata, ev->metadata_len) : NULL;
    return it;
}

int oms_service_post(oms_service_t *svc, const char *key, oms_post_fn fn, void *arg)
{
    item_t *it = malloc(sizeof *it);
    if (!it)
        return -ENOMEM;
    *it = (item_t){.kind = ITEM_POST, .fn = fn, .arg = arg};
    worker_push(worker_of(svc, key), it);
    return 0;
}

/* ---- acks ---- */

/* Sends the acks in batch (outside the lock). A lost one only means the
 * event is delivered again after the group's ack timeout. */
static void acks_send(oms_service_t *svc, const uint64_t *batch, size_t n)
{
    if (n && evs_consumer_ack_many(svc->consumer, batch, n) != 0)
        fprintf(stderr, "oms-%s: %zu acks not sent (redelivered later): %s\n", svc->cfg.service,
                n, evs_errmsg());
}

/* Acks position: queued, and sent with others once SERVICE_ACK_BATCH are
 * queued or the dispatcher flushes (within SERVICE_PULL_MS). */
static void service_ack(oms_service_t *svc, uint64_t position)
{
    uint64_t batch[SERVICE_ACK_BATCH];
    size_t n = 0;
    pthread_mutex_lock(&svc->ack_lock);
    svc->acks[svc->ack_count++] = position;
    if (svc->ack_count == SERVICE_ACK_BATCH) {
        n = svc->ack_count;
        memcpy(batch, svc->acks, n * sizeof *batch);
        svc->ack_count = 0;
    }
    pthread_mutex_unlock(&svc->ack_lock);
    acks_send(svc, batch, n);
}

/* Sends every queued ack. Returns how many were sent. */
static size_t service_ack_flush(oms_service_t *svc)
{
    uint64_t batch[SERVICE_ACK_BATCH];
    pthread_mutex_lock(&svc->ack_lock);
    size_t n = svc->ack_count;
    memcpy(batch, svc->acks, n * sizeof *batch);
    svc->ack_count = 0;
    pthread_mutex_unlock(&svc->ack_lock);
    acks_send(svc, batch, n);
    return n;
}

/* ---- workers ---- */

static void count_result(oms_worker_t *w, const char *type, const char *result)
{
    char labels[OMS_NAME_BYTES_MAX + 48];
    snprintf(labels, sizeof labels, "type=\"%s\",result=\"%s\"", type, result);
    oms_counter_add(oms_metrics_counter(w->svc->metrics, "oms_events_handled_total",
                                        "Events handled, by type and result", labels),
                    1);
}

static void worker_handle(oms_worker_t *w, item_t *it)
{
    oms_service_t *svc = w->svc;
    w->reason[0] = '\0';
    int64_t t0 = oms_mono_ns();
    oms_result_t r = svc->h->handle(w, w->state, &it->ev, it->retry_count);
    oms_histogram_observe(svc->handler_seconds, (double)(oms_mono_ns() - t0) / 1e9);
    uint64_t pos = it->ev.position;
    switch (r) {
    case OMS_OK:
        count_result(w, it->ev.type, "ok");
        service_ack(svc, pos);
        break;
    case OMS_RETRY:
        count_result(w, it->ev.type, "retry");
        oms_counter_add(svc->retries, 1);
        fprintf(stderr, "oms-%s: %s at %llu: retry: %s\n", svc->cfg.service, it->ev.type,
                (unsigned long long)pos, w->reason[0] ? w->reason : "transient error");
        evs_consumer_nack(svc->consumer, pos, EVS_NACK_RETRY, w->reason[0] ? w->reason : NULL);
        break;
    case OMS_PARK:
    default:
        count_result(w, it->ev.type, "park");
        oms_counter_add(svc->parked, 1);
        fprintf(stderr, "oms-%s: %s at %llu: parked: %s\n", svc->cfg.service, it->ev.type,
                (unsigned long long)pos, w->reason[0] ? w->reason : "handler refused it");
        evs_consumer_nack(svc->consumer, pos, EVS_NACK_PARK,
                          w->reason[0] ? w->reason : "handler refused it");
        break;
    }
}

static void *worker_main(void *arg)
{
    oms_worker_t *w = arg;
    oms_service_t *svc = w->svc;
    if (svc->h->worker_init)
        w->state = svc->h->worker_init(w, svc->svc_ctx);
    int64_t tick_ns = (int64_t)svc->cfg.tick_ms * 1000000;
    int64_t next_tick = oms_mono_ns() + tick_ns;
    while (!worker_idle_and_draining(w)) {
        item_t *it = worker_pop(w, svc->h->tick ? next_tick : INT64_MAX);
        if (it && it->kind == ITEM_EVENT)
            worker_handle(w, it);
        else if (it)
            it->fn(w, w->state, it->arg);
        free(it);
        int64_t now = oms_mono_ns();
        if (now >= next_tick) {
            if (svc->h->tick && !atomic_load(&svc->draining))
                svc->h->tick(w, w->state, now);
            next_tick = now + tick_ns;
        }
    }
    if (svc->h->worker_free)
        svc->h->worker_free(w->state);
    return NULL;
}

static int workers_start(oms_service_t *svc)
{
    size_t cap = svc->cfg.inflight_max + SERVICE_POST_SLACK;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (unsigned i = 0; i < svc->cfg.workers; i++) {
        oms_worker_t *w = &svc->workers[i];
        w->svc = svc;
        w->index = i;
        w->cap = cap;
        w->queue = calloc(cap, sizeof *w->queue);
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->nonempty, &ca);
        pthread_cond_init(&w->nonfull, NULL);
        if (!w->queue || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pthread_condattr_destroy(&ca);
            return -ENOMEM;
        }
        w->thread_started = true;
    }
    pthread_condattr_destroy(&ca);
    return 0;
}

/* Lets the workers finish their queues, then joins and frees them. */
static void workers_stop(oms_service_t *svc)
{
    atomic_store(&svc->draining, true);
    for (unsigned i = 0; i < svc->cfg.workers; i++) {
        oms_worker_t *w = &svc->workers[i];
        if (!w->queue)
            continue;
        pthread_mutex_lock(&w->lock);
        pthread_cond_broadcast(&w->nonempty);
        pthread_mutex_unlock(&w->lock);
        if (w->thread_started)
            pthread_join(w->thread, NULL);
        for (size_t k = 0; k < w->count; k++)
            free(w->queue[(w->head + k) % w->cap]);
        free(w->queue);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->nonempty);
        pthread_cond_destroy(&w->nonfull);
    }
}

/* ---- start-up ---- */

/* Connects to the store, retrying until it answers or a stop. */
static int service_connect(oms_service_t *svc)
{
    char name[OMS_NAME_BYTES_MAX + 8];
    snprintf(name, sizeof name, "oms-%s", svc->cfg.service);
    bool said = false;
    while (!atomic_load(&svc->stop)) {
        int rc = oms_store_open(&svc->cfg, name, &svc->store);
        if (rc == 0)
            return 0;
        if (!said)
            fprintf(stderr, "oms-%s: waiting for evstored at %s:%u (%s)\n", svc->cfg.service,
                    svc->cfg.store_host, svc->cfg.store_port, evs_strerror(rc));
        said = true;
        util_sleep_ms(SERVICE_CONNECT_RETRY_MS);
    }
    return -EINTR;
}

/* Creates the group, or brings an existing one's settings up to date. */
static int service_group(oms_service_t *svc)
{
    evs_group_settings_t set = {
        .name = svc->sub->group,
        .stream = svc->sub->source,
        .strategy = EVS_GROUP_ROUND_ROBIN,
        .ack_timeout_ms = svc->cfg.ack_timeout_ms,
        .max_retries = svc->cfg.max_retries,
        .inflight_max_per_consumer = svc->cfg.inflight_max,
        .types = svc->sub->types,
        .type_count = svc->sub->type_count,
    };
    evs_conn_t *conn = oms_store_conn(svc->store);
    int rc = evs_group_create(conn, &set);
    if (rc == EVS_EGROUP_EXISTS)
        rc = evs_group_update(conn, &set);
    if (rc != 0)
        fprintf(stderr, "oms-%s: group %s on %s: %s\n", svc->cfg.service, set.name, set.stream,
                evs_strerror(rc));
    return rc;
}

static int service_join(oms_service_t *svc)
{
    evs_options_t opts;
    char name[OMS_NAME_BYTES_MAX + 16];
    snprintf(name, sizeof name, "oms-%s-consumer", svc->cfg.service);
    oms_store_options(&svc->cfg, name, &opts);
    int rc = evs_group_join(&opts, svc->sub->group, svc->cfg.inflight_max, &svc->consumer);
    if (rc != 0)
        fprintf(stderr, "oms-%s: joining group %s: %s\n", svc->cfg.service, svc->sub->group,
                evs_strerror(rc));
    return rc;
}

static int service_metrics(oms_service_t *svc)
{
    svc->handler_seconds = oms_metrics_histogram(svc->metrics, "oms_handler_seconds",
                                                 "Time spent in the event handler", NULL);
    svc->retries = oms_metrics_counter(svc->metrics, "oms_retries_total",
                                       "Events nacked for a retry", NULL);
    svc->parked = oms_metrics_counter(svc->metrics, "oms_parked_total",
                                      "Events parked by the handler", NULL);
    if (svc->cfg.metrics_off)
        return 0;
    uint16_t port = 0;
    svc->http = oms_metrics_http_start(svc->metrics, svc->cfg.metrics_host, svc->cfg.metrics_port,
                                       &port);
    if (!svc->http)
        return -EADDRINUSE;
    svc->cfg.metrics_port = port;
    return 0;
}

/* ---- the dispatcher ---- */

static int service_dispatch(oms_service_t *svc)
{
    while (!atomic_load(&svc->stop) && !stop_flag) {
        evs_group_event_t gev;
        service_ack_flush(svc);
        int rc = evs_consumer_next(svc->consumer, SERVICE_PULL_MS, &gev);
        if (rc == EVS_ETIMEDOUT)
            continue;
        if (rc != 0) {
            fprintf(stderr, "oms-%s: the group consumer ended: %s\n", svc->cfg.service,
                    evs_strerror(rc));
            return 1;
        }
        item_t *it = item_copy(&gev);
        if (!it) {
            evs_consumer_nack(svc->consumer, gev.event.position, EVS_NACK_RETRY, "out of memory");
            continue;
        }
        worker_push(worker_of(svc, oms_stream_key(it->ev.stream)), it);
    }
    return 0;
}

int oms_service_run(const oms_config_t *cfg, const oms_subscription_t *sub,
                    const oms_handler_t *h, void *svc_ctx)
{
    oms_service_t *svc = calloc(1, sizeof *svc);
    if (!svc)
        return 1;
    svc->cfg = *cfg;
    svc->sub = sub;
    svc->h = h;
    svc->svc_ctx = svc_ctx;
    pthread_mutex_init(&svc->ack_lock, NULL);
    running_service = svc;
    oms_stop_flag_install();
    if (stop_flag)
        atomic_store(&svc->stop, true);
    int status = 1;
    svc->metrics = oms_metrics_new(cfg->service);
    if (!svc->metrics || service_metrics(svc) != 0)
        goto out_free;
    if (service_connect(svc) != 0) {
        status = 0; /* stopped before the store answered */
        goto out_free;
    }
    if (service_group(svc) != 0 || workers_start(svc) != 0)
        goto out_workers;
    if (h->start && (status = h->start(svc, svc_ctx)) != 0)
        goto out_workers;
    status = 1;
    if (service_join(svc) != 0)
        goto out_workers;
    if (cfg->metrics_off)
        printf("oms-%s ready metrics=off\n", cfg->service);
    else
        printf("oms-%s ready metrics=%s:%u\n", cfg->service, cfg->metrics_host,
               svc->cfg.metrics_port);
    fflush(stdout);
    status = service_dispatch(svc);
    fprintf(stderr, "oms-%s: stopping\n", cfg->service);
out_workers:
    workers_stop(svc);
    if (svc->consumer)
        service_ack_flush(svc);
    evs_consumer_close(svc->consumer);
    oms_store_close(svc->store);
out_free:
    running_service = NULL;
    oms_metrics_http_stop(svc->http);
    oms_metrics_free(svc->metrics);
    pthread_mutex_destroy(&svc->ack_lock);
    free(svc);
    return status;
}
