/* demo_load.c -- the threads that place the orders: each keeps one
 * keep-alive connection to oms-order and takes the next order to send from
 * a shared counter, so the orders go out in index order whatever the
 * thread count. With a rate, order i is not sent before start + i / rate.
 * A POST answered 503 (or 429), or whose connection failed, is sent again
 * with the same Idempotency-Key (so it is placed at most once), at most
 * DEMO_POST_ATTEMPTS_MAX times in all. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"
#include "oms_curl.h"

#define DEMO_SLEEP_SLICE_MS 100 /* a rate-limited thread checks the stop flag this often */

typedef struct {
    const demo_config_t *cfg;
    demo_order_t *orders;
    size_t n;
    uint64_t run;
    demo_watch_t *watch;
    volatile int *stop;
    int64_t start_ns;
    atomic_size_t next;
    atomic_bool refusal_printed; /* the first refused POST is shown on stderr */
    pthread_mutex_t lock; /* res */
    demo_load_result_t res;
} demo_load_t;

typedef enum { POST_ACCEPTED, POST_RETRY, POST_FAILED } post_outcome_t;

/* Sleeps until the monotonic time at_ns, or until *stop. */
static void sleep_until(int64_t at_ns, volatile int *stop)
{
    for (;;) {
        int64_t now = (int64_t)util_mono_ns();
        if (now >= at_ns || *stop)
            return;
        int64_t wake = at_ns - now > DEMO_SLEEP_SLICE_MS * 1000000ll
                           ? now + DEMO_SLEEP_SLICE_MS * 1000000ll
                           : at_ns;
        struct timespec ts = {.tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

/* Takes order_id out of an accepting answer's JSON body. */
static int answer_order_id(const oms_curl_response_t *res, char *out, size_t cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(res->body, res->body_len, 0, &jerr);
    const char *id = json_string_value(json_object_get(root, "order_id"));
    int rc = -EPROTO;
    if (id != NULL && id[0] != '\0' && strlen(id) < cap) {
        snprintf(out, cap, "%s", id);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* One try of order i's POST on *conn (opened first when NULL; closed
 * and set to NULL when it failed). */
static post_outcome_t post_once(demo_load_t *l, oms_curl_t **conn, size_t i, const char *body,
                                size_t body_len, const char *key_header)
{
    demo_order_t *o = &l->orders[i];
    if (*conn == NULL) {
        int rc = oms_curl_open(l->cfg->http_host, l->cfg->http_port, DEMO_HTTP_TIMEOUT_MS, conn);
        if (rc != 0) {
            *conn = NULL;
            o->post_status = rc;
            return POST_RETRY;
        }
    }
    const char *headers[] = {"Content-Type: application/json", key_header, NULL};
    oms_curl_response_t res;
    int rc = oms_curl_request(*conn, "POST", "/orders", headers, body, body_len, &res);
    if (rc != 0) {
        oms_curl_close(*conn);
        *conn = NULL;
        o->post_status = rc;
        return POST_RETRY;
    }
    o->post_status = res.status;
    post_outcome_t out = POST_FAILED;
    if (res.status == 200 || res.status == 201 || res.status == 202) {
        if (answer_order_id(&res, o->order_id, sizeof o->order_id) == 0)
            out = POST_ACCEPTED;
        else
            o->post_status = -EPROTO;
    } else if (res.status == 503 || res.status == 429) {
        out = POST_RETRY;
    }
    if (out == POST_FAILED && !atomic_exchange(&l->refusal_printed, true))
        fprintf(stderr, "oms-demo: POST /orders answered %d%s: %.200s\n", res.status,
                o->post_status == -EPROTO ? " without an order_id" : "", res.body ? res.body : "");
    oms_curl_response_free(&res);
    return out;
}

/* Places order i: its POST, tried again on 503 and lost connections. */
static void place(demo_load_t *l, oms_curl_t **conn, size_t i)
{
    demo_order_t *o = &l->orders[i];
    char body[DEMO_BODY_BYTES_MAX], key[DEMO_KEY_BYTES_MAX], key_header[DEMO_KEY_BYTES_MAX + 32];
    int len = demo_plan_body(o->kind, l->cfg->seed, i, body, sizeof body);
    demo_plan_key(l->run, i, key, sizeof key);
    snprintf(key_header, sizeof key_header, "Idempotency-Key: %s", key);
    post_outcome_t out = POST_FAILED;
    int backoff_ms = DEMO_POST_BACKOFF_MS_FIRST;
    o->post_ns = (int64_t)util_mono_ns();
    for (uint32_t a = 0; len > 0 && a < DEMO_POST_ATTEMPTS_MAX && !*l->stop; a++) {
        if (a > 0) {
            sleep_until((int64_t)util_mono_ns() + backoff_ms * 1000000ll, l->stop);
            backoff_ms *= 2;
        }
        o->post_attempts = a + 1;
        out = post_once(l, conn, i, body, (size_t)len, key_header);
        if (out != POST_RETRY)
            break;
    }
    pthread_mutex_lock(&l->lock);
    if (out == POST_ACCEPTED) {
        o->posted_ns = (int64_t)util_mono_ns();
        o->state = DEMO_S_PLACED;
        l->res.placed++;
        if (o->posted_ns > l->res.last_posted_ns)
            l->res.last_posted_ns = o->posted_ns;
    } else {
        o->state = DEMO_S_POST_FAILED;
        l->res.post_failed++;
        if (l->res.placed == 0 && l->res.post_failed == DEMO_GIVE_UP_FAILED && !*l->stop) {
            fprintf(stderr, "oms-demo: giving up: the first %u orders all failed (the last: %s)\n",
                    DEMO_GIVE_UP_FAILED, o->post_status < 0 ? strerror(-o->post_status) : "refused");
            *l->stop = 1;
        }
    }
    if (l->res.first_post_ns == 0 || o->post_ns < l->res.first_post_ns)
        l->res.first_post_ns = o->post_ns;
    l->res.retries += o->post_attempts > 1 ? o->post_attempts - 1 : 0;
    pthread_mutex_unlock(&l->lock);
    if (out == POST_ACCEPTED)
        demo_watch_placed(l->watch, i);
}

static void *load_thread(void *arg)
{
    demo_load_t *l = arg;
    oms_curl_t *conn = NULL;
    for (;;) {
        size_t i = atomic_fetch_add(&l->next, 1);
        if (i >= l->n || *l->stop)
            break;
        if (l->cfg->rate > 0)
            sleep_until(l->start_ns + (int64_t)((double)i * 1e9 / l->cfg->rate), l->stop);
        if (*l->stop)
            break;
        place(l, &conn, i);
    }
    if (conn != NULL)
        oms_curl_close(conn);
    return NULL;
}

int demo_load_run(const demo_config_t *cfg, demo_order_t *orders, size_t n, uint64_t run,
                  demo_watch_t *w, volatile int *stop, demo_load_result_t *res)
{
    demo_load_t l = {.cfg = cfg, .orders = orders, .n = n, .run = run, .watch = w, .stop = stop};
    atomic_init(&l.next, 0);
    atomic_init(&l.refusal_printed, false);
    pthread_mutex_init(&l.lock, NULL);
    pthread_t threads[DEMO_CONCURRENCY_MAX];
    uint32_t started = 0;
    int rc = 0;
    l.start_ns = (int64_t)util_mono_ns();
    for (; started < cfg->concurrency; started++) {
        rc = -pthread_create(&threads[started], NULL, load_thread, &l);
        if (rc != 0) {
            fprintf(stderr, "oms-demo: cannot start a sending thread: %s\n", strerror(-rc));
            *stop = 1;
            break;
        }
    }
    for (uint32_t t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    pthread_mutex_destroy(&l.lock);
    l.res.not_sent = n - l.res.placed - l.res.post_failed;
    *res = l.res;
    return rc;
}
