/* test_server_crash.c -- kill -9 evstored while clients append with
 * durability "always"; after a restart every acknowledged event is there
 * with its content, and no append is there in part. A few rounds; each
 * kills the server once every client is connected and acknowledged, and a
 * seeded-random number of appends were acknowledged in all, so that the
 * kill lands at another point of the log each round however loaded the
 * machine is (a delay would land before the clients connect on a busy
 * machine). The seed is printed; EVSTORE_TEST_SEED=<n> replays the targets. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
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
#define ACKS_TARGET_MAX 2400u        /* a round's kill follows CLIENTS..this acks in all */
#define PROGRESS_MS_MAX 15000        /* a client with no ack for this long fails the round */
#define ANSWER_MS_MAX 60000          /* a client's own bound on one answer (never reached:
                                      * the stall above ends the round first) */
#define WAIT_POLL_US 1000
#define EVENTS_MAX 3u
#define LOG_EVENTS_MAX (ROUNDS * CLIENTS * APPENDS_PER_ROUND_MAX * EVENTS_MAX)

/* An append is named by (round, client, seq); so is each of its events,
 * whose id, type and data all derive from the name. */
typedef struct {
    uint64_t first_position;
    uint32_t seq;
} ack_t;

/* One client of one round. The client thread owns everything; the main
 * thread reads ack_count and done while it runs, the rest after the join. */
typedef struct {
    uint16_t port;
    unsigned client, round;
    ack_t acks[APPENDS_PER_ROUND_MAX];
    atomic_uint ack_count; /* entries of acks[] written (release) */
    atomic_bool done;      /* the client stopped: its connection ended or it failed */
    uint32_t sent;
    uint8_t answered[APPENDS_PER_ROUND_MAX / 8 + 1]; /* by seq: an answer came */
    char failure[256];     /* the first thing that went wrong, or "" */
} client_t;

/* Set just before the kill: from then on a connection may end. */
static atomic_bool server_killed;

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

/* Records the client's first failure (later ones follow from it). */
static void client_fail(client_t *c, const char *fmt, ...)
{
    if (c->failure[0])
        return;
    int n = snprintf(c->failure, sizeof c->failure, "round %u, client %u: ", c->round, c->client);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->failure + n, sizeof c->failure - (size_t)n, fmt, ap);
    va_end(ap);
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

/* The connection ended with rc: expected after the kill (as -EPIPE: a
 * close or a reset), a failure before it or in any other way. */
static void connection_ended(client_t *c, const char *what, int rc)
{
    if (rc == -EPIPE && atomic_load(&server_killed))
        return;
    client_fail(c, "%s: %s%s", what, strerror(-rc),
                atomic_load(&server_killed) ? "" : " before the kill");
}

/* Checks and records one answer; false (with the failure recorded) when
 * it is not the AppendOk of an append in flight. Every error answer fails
 * the test: under kill -9 an append is answered OK or not at all. */
static bool record_answer(client_t *c, const envelope_t *env)
{
    uint64_t seq = env->correlation_id;
    if (seq == 0 || seq > c->sent || c->answered[seq / 8] & 1u << (seq % 8)) {
        client_fail(c, "answer for append %llu, which was not in flight (%u sent)",
                    (unsigned long long)seq, c->sent);
        return false;
    }
    c->answered[seq / 8] |= (uint8_t)(1u << (seq % 8));
    if (env->body_case == BODY(ERROR)) {
        client_fail(c, "append %llu answered with error %d: %s", (unsigned long long)seq,
                    (int)env->error->code, env->error->message);
        return false;
    }
    if (env->body_case != BODY(APPEND_OK)) {
        client_fail(c, "append %llu answered with body %d", (unsigned long long)seq,
                    (int)env->body_case);
        return false;
    }
    if (env->append_ok->event_count != events_of((uint32_t)seq)) {
        client_fail(c, "append %llu: %u events acknowledged, %u sent", (unsigned long long)seq,
                    env->append_ok->event_count, events_of((uint32_t)seq));
        return false;
    }
    unsigned n = atomic_load_explicit(&c->ack_count, memory_order_relaxed);
    c->acks[n] = (ack_t){.first_position = env->append_ok->first_position, .seq = (uint32_t)seq};
    atomic_store_explicit(&c->ack_count, n + 1, memory_order_release);
    return true;
}

/* Keeps IN_FLIGHT appends outstanding and records every answer, until the
 * connection ends (the kill) or something goes wrong. */
static void client_append_until_killed(client_t *c, wire_t *w)
{
    for (uint32_t received = 0;;) {
        while (c->sent < APPENDS_PER_ROUND_MAX && c->sent - received < IN_FLIGHT) {
            int rc = send_append(w, c, c->sent + 1);
            if (rc) {
                connection_ended(c, "send", rc);
                return;
            }
            c->sent++;
        }
        envelope_t *env = NULL;
        int rc = wire_recv(w, ANSWER_MS_MAX, &env);
        if (rc) {
            connection_ended(c, "receive", rc);
            return;
        }
        received++;
        bool ok = record_answer(c, env);
        frame_free(env);
        if (!ok)
            return;
    }
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    wire_t w;
    int rc = wire_open(&w, c->port);
    if (rc == 0) {
        client_append_until_killed(c, &w);
        wire_close(&w);
    } else {
        client_fail(c, "cannot connect: %s", strerror(-rc));
    }
    atomic_store_explicit(&c->done, true, memory_order_release);
    return NULL;
}

/* Waits until every client has had an acknowledgement and they have had
 * target in all, and returns true; false, with the reason in why, when a
 * client stopped first or had none for PROGRESS_MS_MAX. Bounded: every
 * client makes progress towards a finite target or is declared stalled. */
static bool wait_for_target(client_t *cs, unsigned target, char *why, size_t cap)
{
    unsigned seen[CLIENTS] = {0};
    int64_t progress_ms[CLIENTS];
    for (unsigned i = 0; i < CLIENTS; i++)
        progress_ms[i] = (int64_t)util_mono_ms();
    for (;;) {
        bool every_client = true;
        unsigned total = 0;
        int64_t now = (int64_t)util_mono_ms();
        for (unsigned i = 0; i < CLIENTS; i++) {
            client_t *c = &cs[i];
            unsigned n = atomic_load_explicit(&c->ack_count, memory_order_acquire);
            if (atomic_load_explicit(&c->done, memory_order_acquire)) {
                snprintf(why, cap, "client %u stopped before the kill, after %u acks", i, n);
                return false;
            }
            if (n != seen[i]) {
                seen[i] = n;
                progress_ms[i] = now;
            }
            if (now - progress_ms[i] > PROGRESS_MS_MAX) {
                snprintf(why, cap, "client %u had no acknowledgement for %d ms (%u acks)", i,
                         PROGRESS_MS_MAX, n);
                return false;
            }
            every_client = every_client && n > 0;
            total += n;
        }
        if (every_client && total >= target)
            return true;
        usleep(WAIT_POLL_US);
    }
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

/* Runs the clients of one round and kills the server once they have had a
 * random number of acknowledgements; every client ends without a failure. */
static void round_run_and_kill(test_server_t *srv, unsigned round)
{
    pthread_t th[CLIENTS];
    unsigned target = CLIENTS + (unsigned)rand() % (ACKS_TARGET_MAX - CLIENTS + 1);
    atomic_store(&server_killed, false);
    for (unsigned i = 0; i < CLIENTS; i++) {
        client_t *c = &clients[round][i];
        memset(c, 0, sizeof *c);
        c->port = srv->port;
        c->client = i;
        c->round = round;
        atomic_init(&c->ack_count, 0);
        atomic_init(&c->done, false);
        ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, c), 0);
    }
    char why[256] = "";
    bool met = wait_for_target(clients[round], target, why, sizeof why);
    atomic_store(&server_killed, true);
    test_server_kill(srv);
    for (unsigned i = 0; i < CLIENTS; i++)
        pthread_join(th[i], NULL);
    unsigned acks = 0, sent = 0;
    for (unsigned i = 0; i < CLIENTS; i++) {
        const client_t *c = &clients[round][i];
        ck_assert_msg(c->failure[0] == '\0', "%s", c->failure);
        acks += atomic_load(&c->ack_count);
        sent += c->sent;
    }
    ck_assert_msg(met, "round %u: %s", round, why);
    fprintf(stderr, "crash test: round %u: kill -9 after %u acks (target %u), %u appends sent\n",
            round, acks, target, sent);
}

/* Every acknowledged append of every round so far is where its answer
 * said, whole; count is the number of events in the log. */
static void check_acknowledged(unsigned rounds_done, uint64_t count)
{
    for (unsigned r = 0; r < rounds_done; r++)
        for (unsigned i = 0; i < CLIENTS; i++)
            for (unsigned a = 0; a < atomic_load(&clients[r][i].ack_count); a++) {
                const ack_t *ack = &clients[r][i].acks[a];
                uint64_t name = name_of(r, i, ack->seq);
                ck_assert_msg(ack->first_position < count &&
                                  logged[ack->first_position].name == name &&
                                  logged[ack->first_position].k == 0,
                              "acknowledged append %016llx (round %u) at position %llu is lost "
                              "(log has %llu events)", (unsigned long long)name, r,
                              (unsigned long long)ack->first_position, (unsigned long long)count);
            }
}

static unsigned test_seed(void)
{
    const char *env = getenv("EVSTORE_TEST_SEED");
    return env && *env ? (unsigned)strtoul(env, NULL, 0) : (unsigned)time(NULL);
}

START_TEST(every_acknowledged_append_survives_kill_9)
{
    unsigned seed = test_seed();
    fprintf(stderr, "crash test: seed %u (EVSTORE_TEST_SEED=%u replays the kill targets)\n",
            seed, seed);
    srand(seed);
    test_server_t srv;
    ck_assert_int_eq(srv_start(&srv, (const char *[]){"--quiet", "--durability", "always", NULL},
                               NULL),
                     0);
    for (unsigned round = 0; round < ROUNDS; round++) {
        round_run_and_kill(&srv, round);
        ck_assert_int_eq(srv_restart(&srv, NULL), 0);
        uint64_t count = read_log(srv.port);
        check_whole_appends(count);
        check_acknowledged(round + 1, count);
    }
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
