/* test_server_pipeline.c -- many threads, each with its own connection and
 * many appends in flight: every append is answered exactly once, and the
 * positions given out tile the log with no gap and no overlap. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_util.h"
#include "wire.h"

#define BODY(x) EVSTORE__V1__ENVELOPE__BODY_##x

#define THREADS 8u
#define APPENDS_PER_THREAD 200u
#define IN_FLIGHT 16u
#define THREAD_MS_MAX 60000

typedef struct {
    uint16_t port;
    unsigned index;
    uint64_t first[APPENDS_PER_THREAD + 1]; /* by correlation id */
    uint32_t count[APPENDS_PER_THREAD + 1];
    int answers[APPENDS_PER_THREAD + 1];
    char failure[256];
} worker_t;

/* Events in append number seq: 1, 2 or 3, so batches are not all alike. */
static uint32_t events_of(uint64_t seq) { return (uint32_t)(seq % 3) + 1; }

static int send_append(wire_t *w, worker_t *wk, uint64_t seq)
{
    char stream[32];
    snprintf(stream, sizeof stream, "pipe-%u", wk->index);
    wire_event_t e[3];
    memset(e, 0, sizeof e);
    for (uint32_t i = 0; i < events_of(seq); i++) {
        e[i].type = "Piped";
        e[i].data = &e[i].id;
        e[i].data_len = 16;
        wire_id(e[i].id, ((uint64_t)wk->index << 32) | seq, i);
    }
    wire_stream_t s = {.stream = stream, .expected_version = WIRE_ANY, .events = e,
                       .event_count = events_of(seq)};
    return wire_send_append(w, seq, &s, 1);
}

/* Receives one answer and records it; returns 0 or a failure. */
static int take_answer(wire_t *w, worker_t *wk, int64_t deadline)
{
    envelope_t *env = NULL;
    int64_t left = deadline - (int64_t)util_mono_ms();
    int rc = left > 0 ? wire_recv(w, (int)left, &env) : -ETIMEDOUT;
    if (rc) {
        snprintf(wk->failure, sizeof wk->failure, "thread %u: receive: %s", wk->index,
                 strerror(-rc));
        return -1;
    }
    uint64_t corr = env->correlation_id;
    if (corr < 1 || corr > APPENDS_PER_THREAD || wk->answers[corr]++ ||
        env->body_case != BODY(APPEND_OK) || env->append_ok->event_count != events_of(corr)) {
        snprintf(wk->failure, sizeof wk->failure,
                 "thread %u: answer for id %llu is unexpected (body %d, answered before: %d)",
                 wk->index, (unsigned long long)corr, (int)env->body_case,
                 corr >= 1 && corr <= APPENDS_PER_THREAD ? wk->answers[corr] - 1 : -1);
        frame_free(env);
        return -1;
    }
    wk->first[corr] = env->append_ok->first_position;
    wk->count[corr] = env->append_ok->event_count;
    frame_free(env);
    return 0;
}

static void *worker_main(void *arg)
{
    worker_t *wk = arg;
    wire_t w;
    int64_t deadline = (int64_t)util_mono_ms() + THREAD_MS_MAX;
    if (wire_open(&w, wk->port) != 0) {
        snprintf(wk->failure, sizeof wk->failure, "thread %u: cannot connect", wk->index);
        return NULL;
    }
    uint64_t sent = 0, received = 0;
    while (received < APPENDS_PER_THREAD) {
        while (sent < APPENDS_PER_THREAD && sent - received < IN_FLIGHT) {
            if (send_append(&w, wk, ++sent) != 0) {
                snprintf(wk->failure, sizeof wk->failure, "thread %u: send failed", wk->index);
                goto out;
            }
        }
        if (take_answer(&w, wk, deadline) != 0)
            goto out;
        received++;
    }
out:
    wire_close(&w);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(appends_from_many_pipelined_connections_get_unique_contiguous_positions)
{
    test_server_t srv;
    ck_assert_int_eq(srv_start(&srv, (const char *[]){"--quiet", NULL}, NULL), 0);
    static worker_t wk[THREADS];
    pthread_t th[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        memset(&wk[i], 0, sizeof wk[i]);
        wk[i].port = srv.port;
        wk[i].index = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &wk[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < THREADS; i++)
        ck_assert_msg(wk[i].failure[0] == '\0', "%s", wk[i].failure);

    /* Every event's position, from the answers: together exactly 0..total-1. */
    static uint64_t pos[THREADS * APPENDS_PER_THREAD * 3];
    size_t total = 0;
    for (unsigned i = 0; i < THREADS; i++)
        for (unsigned c = 1; c <= APPENDS_PER_THREAD; c++) {
            ck_assert_int_eq(wk[i].answers[c], 1);
            for (uint32_t k = 0; k < wk[i].count[c]; k++)
                pos[total++] = wk[i].first[c] + k;
        }
    qsort(pos, total, sizeof pos[0], cmp_u64);
    for (size_t k = 0; k < total; k++)
        ck_assert_msg(pos[k] == k, "position %zu of the sorted answers is %llu", k,
                      (unsigned long long)pos[k]);

    /* The log agrees: each thread's stream holds its events in the order
     * of their positions, with the ids the answers promised. */
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    envelope_t *st = wire_stats(&w);
    ck_assert_answer(st, BODY(SERVER_STATS_OK));
    ck_assert_uint_eq(st->server_stats_ok->head_position, total);
    ck_assert_uint_eq(st->server_stats_ok->appends, THREADS * APPENDS_PER_THREAD);
    frame_free(st);
    for (unsigned i = 0; i < THREADS; i++) {
        char stream[32];
        snprintf(stream, sizeof stream, "pipe-%u", i);
        envelope_t *r = wire_read(&w, &(wire_read_t){.stream = stream});
        ck_assert_answer(r, BODY(READ_OK));
        size_t n = r->read_ok->n_events;
        ck_assert_uint_eq(n, total / THREADS);
        for (size_t k = 0; k < n; k++) {
            const Evstore__V1__RecordedEvent *ev = r->read_ok->events[k];
            ck_assert_int_eq(ev->version, (int64_t)k);
            if (k > 0)
                ck_assert_uint_gt(ev->position, r->read_ok->events[k - 1]->position);
            /* The id names the append; its answer gave this position. */
            uint64_t a = 0, b = 0;
            for (int j = 0; j < 8; j++) {
                a |= (uint64_t)ev->id.data[j] << (8 * j);
                b |= (uint64_t)ev->id.data[8 + j] << (8 * j);
            }
            uint64_t seq = a & 0xffffffffu;
            ck_assert_uint_eq(a >> 32, i);
            ck_assert_uint_eq(ev->position, wk[i].first[seq] + b);
        }
        frame_free(r);
    }
    wire_close(&w);
    test_server_destroy(&srv);
}
END_TEST

static Suite *pipeline_suite(void)
{
    Suite *s = suite_create("server.pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, appends_from_many_pipelined_connections_get_unique_contiguous_positions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pipeline_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
