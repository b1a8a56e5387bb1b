/* test_server_groups.c -- a group's own records across restarts: the
 * checkpoint ("GroupCheckpoint") and the dead letter ("GroupParked") are
 * protobuf messages of evstore.proto that survive a restart, and
 * replay-parked delivers the parked event after it; the records of earlier
 * servers: a raw little-endian "Checkpoint" is still read, a JSON "Parked"
 * dead letter is not replayed and the server says so (docs/groups.md). And
 * a change of strategy with events outstanding.
 *
 * The legacy records are written with the storage API into the data
 * directory of a stopped server (clients may not append to "$" streams).
 * Consumers speak the protocol byte for byte (wire.c): one connection for
 * requests, one per consumer for the events pushed to it. */
#define _GNU_SOURCE
#include <check.h>
#include <endian.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "srv_util.h"
#include "wire.h"

#define BODY(x) EVSTORE__V1__ENVELOPE__BODY_##x

static test_server_t srv;
static char log_dir[PATH_MAX], log_path[PATH_MAX];
static wire_t ctl; /* requests */

static void setup(void)
{
    ck_assert_int_eq(srv_tmpfile("groups-log", log_dir, log_path), 0);
    ck_assert_int_eq(srv_start(&srv, NULL, log_path), 0);
    ck_assert_int_eq(wire_open(&ctl, srv.port), 0);
}

static void teardown(void)
{
    wire_close(&ctl);
    test_server_destroy(&srv);
    test_tmpdir_remove(log_dir);
}

/* ---- requests ---- */

/* Sends body (a member of the envelope's oneof) and returns the answer. */
static envelope_t *call(wire_t *w, Evstore__V1__Envelope__BodyCase kind, void *body)
{
    envelope_t env = EVSTORE__V1__ENVELOPE__INIT;
    env.correlation_id = w->next_corr++;
    env.body_case = kind;
    env.hello = body; /* every member of the oneof shares one slot */
    ck_assert_int_eq(wire_send(w, &env), 0);
    envelope_t *answer = NULL;
    ck_assert_int_eq(wire_recv(w, WIRE_TIMEOUT_MS, &answer), 0);
    ck_assert_uint_eq(answer->correlation_id, env.correlation_id);
    return answer;
}

static void call_done(wire_t *w, Evstore__V1__Envelope__BodyCase kind, void *body)
{
    envelope_t *r = call(w, kind, body);
    ck_assert_answer(r, BODY(DONE));
    frame_free(r);
}

/* Creates group name on stream: from its start, or from its end. */
static void group_create(const char *name, const char *stream, bool from_end)
{
    Evstore__V1__GroupSettings s = EVSTORE__V1__GROUP_SETTINGS__INIT;
    s.name = (char *)name;
    s.stream = (char *)stream;
    s.from_end = from_end;
    s.ack_timeout_ms = 30000;
    call_done(&ctl, BODY(GROUP_CREATE), &s);
}

static void group_set_strategy(const char *name, Evstore__V1__GroupStrategy strategy)
{
    Evstore__V1__GroupSettings s = EVSTORE__V1__GROUP_SETTINGS__INIT;
    s.name = (char *)name;
    s.strategy = strategy;
    s.ack_timeout_ms = 30000;
    call_done(&ctl, BODY(GROUP_UPDATE), &s);
}

static Evstore__V1__GroupName group_name(const char *name)
{
    Evstore__V1__GroupName n = EVSTORE__V1__GROUP_NAME__INIT;
    n.name = (char *)name;
    return n;
}

/* The group's info (free the envelope). */
static envelope_t *group_info(const char *name)
{
    Evstore__V1__GroupName n = group_name(name);
    envelope_t *r = call(&ctl, BODY(GROUP_INFO), &n);
    ck_assert_answer(r, BODY(GROUP_INFO_OK));
    return r;
}

static void ack(const char *name, uint64_t position)
{
    Evstore__V1__GroupAck a = EVSTORE__V1__GROUP_ACK__INIT;
    a.name = (char *)name;
    a.positions = &position;
    a.n_positions = 1;
    call_done(&ctl, BODY(GROUP_ACK), &a);
}

static void nack_park(const char *name, uint64_t position, const char *reason)
{
    Evstore__V1__GroupNack n = EVSTORE__V1__GROUP_NACK__INIT;
    n.name = (char *)name;
    n.positions = &position;
    n.n_positions = 1;
    n.action = EVSTORE__V1__NACK_ACTION__PARK;
    n.reason = (char *)reason;
    call_done(&ctl, BODY(GROUP_NACK), &n);
}

static void replay_parked(const char *name)
{
    Evstore__V1__GroupName n = group_name(name);
    call_done(&ctl, BODY(GROUP_REPLAY_PARKED), &n);
}

/* Appends n events of type "Tick" to stream; returns the first position. */
static uint64_t append_ticks(const char *stream, int n)
{
    static uint64_t seed = 1;
    uint64_t first = 0;
    for (int i = 0; i < n; i++) {
        envelope_t *r = wire_append_one(&ctl, stream, WIRE_ANY, seed++, "Tick", "tick");
        ck_assert_answer(r, BODY(APPEND_OK));
        if (i == 0)
            first = r->append_ok->first_position;
        frame_free(r);
    }
    return first;
}

/* Polls the group's info until `parked` dead letters exist and nothing is in
 * flight, at most WIRE_TIMEOUT_MS (acks and nacks are not waited for). */
static void await_parked(const char *name, uint64_t parked)
{
    int64_t deadline_ms = (int64_t)util_mono_ms() + WIRE_TIMEOUT_MS;
    for (;;) {
        envelope_t *r = group_info(name);
        bool ok = r->group_info_ok->parked == parked && r->group_info_ok->inflight == 0;
        uint64_t seen = r->group_info_ok->parked;
        frame_free(r);
        if (ok)
            return;
        ck_assert_msg((int64_t)util_mono_ms() < deadline_ms, "group %s: %llu parked, want %llu",
                      name, (unsigned long long)seen, (unsigned long long)parked);
        usleep(20000);
    }
}

/* ---- a consumer ---- */

typedef struct {
    wire_t w;
    uint64_t corr;        /* its join's correlation id */
    envelope_t *batch;    /* the GroupEvents being handed out */
    size_t next;
} consumer_t;

static void consumer_join(consumer_t *c, const char *name)
{
    memset(c, 0, sizeof *c);
    ck_assert_int_eq(wire_open(&c->w, srv.port), 0);
    Evstore__V1__GroupJoin j = EVSTORE__V1__GROUP_JOIN__INIT;
    j.name = (char *)name;
    c->corr = c->w.next_corr;
    envelope_t *r = call(&c->w, BODY(GROUP_JOIN), &j);
    ck_assert_answer(r, BODY(GROUP_JOIN_OK));
    frame_free(r);
}

/* The next event delivered to c (valid until the next call). */
static const Evstore__V1__GroupEvent *consumer_next(consumer_t *c)
{
    while (!c->batch || c->next == c->batch->group_events->n_events) {
        frame_free(c->batch);
        c->batch = NULL;
        c->next = 0;
        envelope_t *env = NULL;
        ck_assert_int_eq(wire_recv(&c->w, WIRE_TIMEOUT_MS, &env), 0);
        ck_assert_uint_eq(env->correlation_id, c->corr);
        ck_assert_answer(env, BODY(GROUP_EVENTS));
        c->batch = env;
    }
    return c->batch->group_events->events[c->next++];
}

static void consumer_close(consumer_t *c)
{
    frame_free(c->batch);
    wire_close(&c->w);
}

/* ---- records ---- */

/* The data of the newest event of stream whose type is `type`, decoded with
 * unpack (free with free_fn); NULL if there is none. */
typedef void *unpack_fn(ProtobufCAllocator *, size_t, const uint8_t *);

static void *newest_record(const char *stream, const char *type, unpack_fn *unpack)
{
    envelope_t *r = wire_read(&ctl, &(wire_read_t){.stream = stream, .from = UINT64_MAX,
                                                    .backwards = true, .max_count = 100});
    ck_assert_answer(r, BODY(READ_OK));
    void *m = NULL;
    for (size_t i = 0; i < r->read_ok->n_events && !m; i++) {
        const Evstore__V1__RecordedEvent *ev = r->read_ok->events[i];
        if (strcmp(ev->type, type) == 0) {
            m = unpack(NULL, ev->data.len, ev->data.data);
            ck_assert_msg(m != NULL, "%s in %s does not decode", type, stream);
        }
    }
    frame_free(r);
    return m;
}

/* How many events of stream have type `type`. */
static size_t count_type(const char *stream, const char *type)
{
    envelope_t *r = wire_read(&ctl, &(wire_read_t){.stream = stream, .max_count = 1000});
    ck_assert_answer(r, BODY(READ_OK));
    size_t n = 0;
    for (size_t i = 0; i < r->read_ok->n_events; i++)
        n += strcmp(r->read_ok->events[i]->type, type) == 0;
    frame_free(r);
    return n;
}

static void restart(void)
{
    wire_close(&ctl);
    ck_assert_int_eq(test_server_stop(&srv), 0);
    ck_assert_int_eq(srv_restart(&srv, log_path), 0);
    ck_assert_int_eq(wire_open(&ctl, srv.port), 0);
}

/* Appends one event (type, data) to a system stream of the stopped
 * server's data directory, as an earlier server would have. */
static void legacy_append(const char *stream, const char *type, const void *data, size_t len)
{
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.dir = srv.data_dir;
    cfg.segment_bytes = 1u << 20; /* as srv_start's server */
    log_t *log = NULL;
    ck_assert_int_eq(log_open(&cfg, &log, NULL), 0);
    log_event_in_t ev = {.type = type, .type_len = strlen(type), .data = data, .data_len = len};
    wire_id(ev.id, 0x1e6ac7, (uint64_t)len);
    log_stream_append_t sa = {.stream = stream, .stream_len = strlen(stream),
                              .expected_version = LOG_EXPECT_ANY, .events = &ev,
                              .event_count = 1};
    log_append_t req = {.streams = &sa, .stream_count = 1, .system = true};
    log_append_result_t res;
    ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
    ck_assert_int_eq(log_close(log), 0);
}

/* ---- tests ---- */

START_TEST(checkpoint_and_dead_letter_survive_a_restart_and_replay_delivers_after_it)
{
    group_create("keep", "gk-1", false);
    uint64_t first = append_ticks("gk-1", 5);
    consumer_t c;
    consumer_join(&c, "keep");
    for (int i = 0; i < 5; i++) {
        const Evstore__V1__GroupEvent *ge = consumer_next(&c);
        ck_assert_int_eq(ge->event->version, i);
        if (i == 2)
            nack_park("keep", ge->event->position, "bad input");
        else
            ack("keep", ge->event->position);
    }
    consumer_close(&c);
    await_parked("keep", 1);

    Evstore__V1__ParkedEvent *pe = newest_record(
        "$parked-keep", "GroupParked", (unpack_fn *)evstore__v1__parked_event__unpack);
    ck_assert_ptr_nonnull(pe);
    ck_assert_uint_eq(pe->position, first + 2);
    ck_assert_uint_eq(pe->key, 2);
    ck_assert_str_eq(pe->stream, "gk-1");
    ck_assert_int_eq(pe->version, 2);
    ck_assert_str_eq(pe->type, "Tick");
    ck_assert_str_eq(pe->reason, "bad input");
    evstore__v1__parked_event__free_unpacked(pe, NULL);

    restart();
    /* The stop wrote the checkpoint, as protobuf only. */
    Evstore__V1__GroupCheckpoint *cp = newest_record(
        "$group-keep", "GroupCheckpoint", (unpack_fn *)evstore__v1__group_checkpoint__unpack);
    ck_assert_ptr_nonnull(cp);
    ck_assert_uint_eq(cp->key, 5);
    ck_assert_uint_eq(cp->replay_from, 0);
    ck_assert_uint_eq(cp->replay_restart, 0);
    evstore__v1__group_checkpoint__free_unpacked(cp, NULL);
    ck_assert_uint_eq(count_type("$group-keep", "Checkpoint"), 0);
    envelope_t *r = group_info("keep");
    ck_assert_uint_eq(r->group_info_ok->checkpoint, 5);
    ck_assert_uint_eq(r->group_info_ok->next, 5);
    ck_assert_uint_eq(r->group_info_ok->parked, 1);
    frame_free(r);

    /* Replayed once, then the next new event: nothing before it is again. */
    consumer_join(&c, "keep");
    replay_parked("keep");
    const Evstore__V1__GroupEvent *ge = consumer_next(&c);
    ck_assert_uint_eq(ge->event->position, first + 2);
    ck_assert_int_eq(ge->event->version, 2);
    ack("keep", ge->event->position);
    uint64_t sentinel = append_ticks("gk-1", 1);
    ge = consumer_next(&c);
    ck_assert_uint_eq(ge->event->position, sentinel);
    ack("keep", sentinel);
    consumer_close(&c);
}
END_TEST

START_TEST(a_legacy_raw_checkpoint_is_read_at_start)
{
    group_create("old", "gl-1", false);
    append_ticks("gl-1", 10);
    wire_close(&ctl);
    ck_assert_int_eq(test_server_stop(&srv), 0);
    /* key 7, replay_from 0, replay_restart 0 as little-endian u64s */
    uint64_t raw[3] = {htole64(7), 0, 0};
    legacy_append("$group-old", "Checkpoint", raw, sizeof raw);
    ck_assert_int_eq(srv_restart(&srv, log_path), 0);
    ck_assert_int_eq(wire_open(&ctl, srv.port), 0);

    envelope_t *r = group_info("old");
    ck_assert_uint_eq(r->group_info_ok->checkpoint, 7);
    ck_assert_uint_eq(r->group_info_ok->next, 7);
    frame_free(r);
    consumer_t c;
    consumer_join(&c, "old");
    for (int v = 7; v < 10; v++) {
        const Evstore__V1__GroupEvent *ge = consumer_next(&c);
        ck_assert_int_eq(ge->event->version, v);
        ack("old", ge->event->position);
    }
    consumer_close(&c);
}
END_TEST

START_TEST(a_legacy_json_dead_letter_is_not_replayed_and_the_server_says_so)
{
    uint64_t first = append_ticks("gp-1", 3);
    group_create("oldp", "gp-1", true); /* from the end: only replays come */
    wire_close(&ctl);
    ck_assert_int_eq(test_server_stop(&srv), 0);
    char json[128];
    snprintf(json, sizeof json, "{\"position\":%llu,\"key\":0,\"reason\":\"old\"}",
             (unsigned long long)first);
    legacy_append("$parked-oldp", "Parked", json, strlen(json));
    Evstore__V1__ParkedEvent pe = EVSTORE__V1__PARKED_EVENT__INIT;
    pe.position = first + 1;
    pe.key = 1;
    uint8_t buf[64];
    size_t len = evstore__v1__parked_event__pack(&pe, buf);
    legacy_append("$parked-oldp", "GroupParked", buf, len);
    ck_assert_int_eq(srv_restart(&srv, log_path), 0);
    ck_assert_int_eq(wire_open(&ctl, srv.port), 0);

    consumer_t c;
    consumer_join(&c, "oldp");
    replay_parked("oldp");
    const Evstore__V1__GroupEvent *ge = consumer_next(&c);
    ck_assert_uint_eq(ge->event->position, first + 1);
    ack("oldp", ge->event->position);
    uint64_t sentinel = append_ticks("gp-1", 1);
    ge = consumer_next(&c); /* not the JSON one's event: the next new one */
    ck_assert_uint_eq(ge->event->position, sentinel);
    ack("oldp", sentinel);
    consumer_close(&c);
    ck_assert_msg(srv_file_contains(log_path, "group oldp: 1 dead letters in $parked-oldp are "
                                              "JSON \"Parked\" records"),
                  "the server did not say it passed over the JSON dead letter");
}
END_TEST

/* A pinned stream's events counted in its pin, then round robin ones of the
 * same stream that are not, then pinned again: each event comes once and
 * the group ends with nothing in flight (a debug build also checks the pin
 * counts before and after every loop turn). */
START_TEST(switching_strategy_with_events_outstanding_delivers_each_once)
{
    group_create("sw", "sw-1", false);
    group_set_strategy("sw", EVSTORE__V1__GROUP_STRATEGY__PINNED);
    consumer_t c;
    consumer_join(&c, "sw");
    uint64_t positions[8];
    int64_t version = 0;
    for (int phase = 0; phase < 3; phase++) {
        int n = phase < 2 ? 3 : 2;
        append_ticks("sw-1", n);
        for (int i = 0; i < n; i++, version++) {
            const Evstore__V1__GroupEvent *ge = consumer_next(&c);
            ck_assert_int_eq(ge->event->version, version);
            positions[version] = ge->event->position;
        }
        if (phase == 0) {
            group_set_strategy("sw", EVSTORE__V1__GROUP_STRATEGY__ROUND_ROBIN);
        } else if (phase == 1) {
            for (int v = 0; v < 6; v++)
                ack("sw", positions[v]);
            group_set_strategy("sw", EVSTORE__V1__GROUP_STRATEGY__PINNED);
        }
    }
    ack("sw", positions[6]);
    ack("sw", positions[7]);
    int64_t deadline_ms = (int64_t)util_mono_ms() + WIRE_TIMEOUT_MS;
    for (;;) {
        envelope_t *r = group_info("sw");
        bool done = r->group_info_ok->inflight == 0 && r->group_info_ok->checkpoint == 8;
        frame_free(r);
        if (done)
            break;
        ck_assert_msg((int64_t)util_mono_ms() < deadline_ms, "group sw never got to 8");
        usleep(20000);
    }
    consumer_close(&c);
}
END_TEST

static Suite *groups_suite(void)
{
    Suite *s = suite_create("server_groups");
    TCase *tc = tcase_create("records");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, checkpoint_and_dead_letter_survive_a_restart_and_replay_delivers_after_it);
    tcase_add_test(tc, a_legacy_raw_checkpoint_is_read_at_start);
    tcase_add_test(tc, a_legacy_json_dead_letter_is_not_replayed_and_the_server_says_so);
    tcase_add_test(tc, switching_strategy_with_events_outstanding_delivers_each_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(groups_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
