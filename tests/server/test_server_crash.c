/* test_server_crash.c -- kill -9 evstored while clients append with
 * durability "always"; after a restart every acknowledged event is there
 * with its content, and no append is there in part. A few rounds, each
 * killing the server at another moment. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "srv_util.h"
#include "wire.h"

#define BODY(x) EVSTORE__V1__ENVELOPE__BODY_##x

#define CLIENTS 4u
#define ROUNDS 6u
#define IN_FLIGHT 8u
#define APPENDS_PER_ROUND_MAX 20000u /* per client */
#define KILL_AFTER_MS_MIN 30
#define KILL_AFTER_MS_SPREAD 200
#define EVENTS_MAX 3u
#define LOG_EVENTS_MAX (ROUNDS * CLIENTS * APPENDS_PER_ROUND_MAX * EVENTS_MAX)

/* An append is named by (round, client, seq); so is each of its events,
 * whose id, type and data all derive from the name. */
typedef struct {
    uint64_t first_position;
    uint32_t seq;
} ack_t;

typedef struct {
    uint16_t port;
    unsigned client, round;
    ack_t acks[APPENDS_PER_ROUND_MAX];
    unsigned ack_count;
    unsigned sent;
    char failure[256];
} client_t;

static uint32_t events_of(uint32_t seq) { return seq % EVENTS_MAX + 1; }

static uint64_t name_of(unsigned round, unsigned client, uint32_t seq)
{
    return (uint64_t)round << 48 | (uint64_t)client << 32 | seq;
}

static void event_data(uint64_t name, uint32_t k, char *buf, size_t cap)
{
    snprintf(buf, cap, "{\"append\":\"%016llx\",\"event\":%u,\"pad\":\"%0*d\"}",
             (unsigned long long)name, k, (int)(name % 97), 0);
}

static int send_append(wire_t *w, client_t *c, uint32_t seq)
{
    char stream[32], data[EVENTS_MAX][160];
    wire_event_t e[EVENTS_MAX];
    memset(e, 0, sizeof e);
    uint64_t name = name_of(c->round, c->client, seq);
    snprintf(stream, sizeof stream, "crash-%u", c->client);
    for (uint32_t k = 0; k < events_of(seq); k++) {
        event_data(name, k, data[k], sizeof data[k]);
        e[k].type = k ? "More" : "First";
        e[k].data = data[k];
        e[k].data_len = strlen(data[k]);
        wire_id(e[k].id, name, k);
    }
    wire_stream_t s = {.stream = stream, .expected_version = WIRE_ANY, .events = e,
                       .event_count = events_of(seq)};
    return wire_send_append(w, seq, &s, 1);
}

/* Appends until the server dies (or the bound); records what was acked. */
static void *client_main(void *arg)
{
    client_t *c = arg;
    wire_t w;
    if (wire_open(&w, c->port) != 0) {
        snprintf(c->failure, sizeof c->failure, "client %u: cannot connect", c->client);
        return NULL;
    }
    uint32_t sent = 0, received = 0;
    int64_t deadline = wire_now_ms() + 30000;
    for (;;) {
        while (sent < APPENDS_PER_ROUND_MAX && sent - received < IN_FLIGHT)
            if (send_append(&w, c, ++sent) != 0)
                goto out;
        envelope_t *env = NULL;
        int64_t left = deadline - wire_now_ms();
        if (left <= 0 || wire_recv(&w, (int)left, &env) != 0)
            goto out; /* the kill: the connection ends */
        received++;
        if (env->body_case == BODY(APPEND_OK)) {
            if (env->append_ok->event_count != events_of((uint32_t)env->correlation_id))
                snprintf(c->failure, sizeof c->failure, "client %u: wrong event count",
                         c->client);
            c->acks[c->ack_count++] = (ack_t){.first_position = env->append_ok->first_position,
                                              .seq = (uint32_t)env->correlation_id};
        }
        frame_free(env);
    }
out:
    c->sent = sent;
    wire_close(&w);
    return NULL;
}

/* The log read back: the name of the event at each position. Content is
 * checked as it is read: it derives from the name. */
typedef struct {
    uint64_t name;
    uint32_t k;
    bool present;
} logged_t;

static logged_t logged[LOG_EVENTS_MAX];

static void check_content(const Evstore__V1__RecordedEvent *ev, const logged_t *l)
{
    char stream[32], data[160];
    snprintf(stream, sizeof stream, "crash-%u", (unsigned)(l->name >> 32 & 0xffff));
    event_data(l->name, l->k, data, sizeof data);
    ck_assert_str_eq(ev->stream, stream);
    ck_assert_str_eq(ev->type, l->k ? "More" : "First");
    ck_assert_uint_eq(ev->data.len, strlen(data));
    ck_assert_mem_eq(ev->data.data, data, ev->data.len);
}

/* Reads $all into logged[]; returns the number of events. */
static uint64_t read_log(uint16_t port)
{
    wire_t w;
    ck_assert_int_eq(wire_open(&w, port), 0);
    memset(logged, 0, sizeof logged);
    uint64_t from = 0, count = 0;
    for (int page = 0; page < 10000; page++) {
        envelope_t *r = wire_read(&w, &(wire_read_t){.stream = "$all", .from = from});
        ck_assert_answer(r, BODY(READ_OK));
        for (size_t i = 0; i < r->read_ok->n_events; i++) {
            const Evstore__V1__RecordedEvent *ev = r->read_ok->events[i];
            ck_assert_uint_lt(ev->position, LOG_EVENTS_MAX);
            ck_assert_uint_eq(ev->id.len, 16);
            logged_t *l = &logged[ev->position];
            ck_assert_msg(!l->present, "position %llu read twice",
                          (unsigned long long)ev->position);
            l->present = true;
            uint64_t k = 0;
            for (int j = 0; j < 8; j++) {
                l->name |= (uint64_t)ev->id.data[j] << (8 * j);
                k |= (uint64_t)ev->id.data[8 + j] << (8 * j);
            }
            ck_assert_uint_lt(k, EVENTS_MAX);
            l->k = (uint32_t)k;
            check_content(ev, l);
            count++;
        }
        bool end = r->read_ok->end || r->read_ok->n_events == 0;
        from = r->read_ok->next;
        frame_free(r);
        if (end)
            break;
    }
    wire_close(&w);
    for (uint64_t p = 0; p < count; p++)
        ck_assert_msg(logged[p].present, "gap at position %llu", (unsigned long long)p);
    return count;
}

/* Every logged event is one of a whole append, its events in order. */
static void check_whole_appends(uint64_t count)
{
    for (uint64_t p = 0; p < count;) {
        uint64_t name = logged[p].name;
        uint32_t n = events_of((uint32_t)(name & 0xffffffffu));
        for (uint32_t k = 0; k < n; k++, p++)
            ck_assert_msg(p < count && logged[p].name == name && logged[p].k == k,
                          "append %016llx is in the log in part (event %u missing at %llu)",
                          (unsigned long long)name, k, (unsigned long long)p);
    }
}

static client_t clients[ROUNDS][CLIENTS];

START_TEST(every_acknowledged_append_survives_kill_9)
{
    unsigned seed = (unsigned)time(NULL);
    fprintf(stderr, "crash test: seed %u\n", seed);
    srand(seed);
    test_server_t srv;
    ck_assert_int_eq(srv_start(&srv, (const char *[]){"--quiet", "--durability", "always", NULL},
                               NULL),
                     0);
    uint64_t acked_total = 0;
    for (unsigned round = 0; round < ROUNDS; round++) {
        pthread_t th[CLIENTS];
        for (unsigned i = 0; i < CLIENTS; i++) {
            client_t *c = &clients[round][i];
            memset(c, 0, sizeof *c);
            *c = (client_t){.port = srv.port, .client = i, .round = round};
            ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, c), 0);
        }
        usleep((useconds_t)(KILL_AFTER_MS_MIN + rand() % KILL_AFTER_MS_SPREAD) * 1000);
        test_server_kill(&srv);
        for (unsigned i = 0; i < CLIENTS; i++)
            pthread_join(th[i], NULL);
        unsigned acks = 0, sent = 0;
        for (unsigned i = 0; i < CLIENTS; i++) {
            ck_assert_msg(clients[round][i].failure[0] == '\0', "%s", clients[round][i].failure);
            acks += clients[round][i].ack_count;
            sent += clients[round][i].sent;
        }
        fprintf(stderr, "crash test: round %u: %u appends sent, %u acknowledged before kill -9\n",
                round, sent, acks);
        acked_total += acks;

        ck_assert_int_eq(srv_restart(&srv, NULL), 0);
        uint64_t count = read_log(srv.port);
        check_whole_appends(count);
        /* Every acknowledged append of every round so far is where its
         * answer said, whole. */
        for (unsigned r = 0; r <= round; r++)
            for (unsigned i = 0; i < CLIENTS; i++)
                for (unsigned a = 0; a < clients[r][i].ack_count; a++) {
                    const ack_t *ack = &clients[r][i].acks[a];
                    uint64_t name = name_of(r, i, ack->seq);
                    ck_assert_msg(ack->first_position < count &&
                                      logged[ack->first_position].name == name &&
                                      logged[ack->first_position].k == 0,
                                  "round %u: acknowledged append %016llx at position %llu is "
                                  "lost (log has %llu events)", round, (unsigned long long)name,
                                  (unsigned long long)ack->first_position,
                                  (unsigned long long)count);
                }
    }
    ck_assert_msg(acked_total > 0, "no append was acknowledged in any round");
    test_server_destroy(&srv);
}
END_TEST

static Suite *crash_suite(void)
{
    Suite *s = suite_create("server.crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, every_acknowledged_append_survives_kill_9);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crash_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
