/* test_server_restart.c -- a clean stop (SIGTERM) and a start on the same
 * data directory keep everything: events, versions, streams and positions;
 * appends in flight at SIGTERM are answered before the server exits 0. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "srv_util.h"
#include "wire.h"

#define BODY(x) EVSTORE__V1__ENVELOPE__BODY_##x
#define CODE(x) EVSTORE__V1__ERROR_CODE__##x

#define STREAMS 5u
#define APPENDS 40u

static test_server_t srv;
static char log_dir[PATH_MAX], log_path[PATH_MAX];

static void setup(void)
{
    ck_assert_int_eq(srv_tmpfile("restart-log", log_dir, log_path), 0);
    ck_assert_int_eq(srv_start(&srv, NULL, log_path), 0);
}

static void teardown(void)
{
    test_server_destroy(&srv);
    test_tmpdir_remove(log_dir);
}

/* The content of append number i (1 or 2 events) and its stream. */
static void make_append(unsigned i, wire_event_t e[2], char stream[32], char data[2][48])
{
    snprintf(stream, 32, "keep-%u", i % STREAMS);
    for (unsigned k = 0; k < 2; k++) {
        memset(&e[k], 0, sizeof e[k]);
        snprintf(data[k], 48, "{\"append\":%u,\"event\":%u}", i, k);
        e[k].type = k ? "Second" : "First";
        e[k].data = data[k];
        e[k].data_len = strlen(data[k]);
        e[k].metadata = "m";
        e[k].metadata_len = 1;
        e[k].timestamp_ns = 1000 + i;
        wire_id(e[k].id, 900 + i, k);
    }
}

static uint32_t events_of(unsigned i) { return i % 2 + 1; }

/* Checks that the log holds exactly the APPENDS appends, in order. */
static void check_all(wire_t *w)
{
    envelope_t *r = wire_read(w, &(wire_read_t){.stream = "$all"});
    ck_assert_answer(r, BODY(READ_OK));
    size_t k = 0;
    int64_t versions[STREAMS] = {0};
    for (unsigned i = 0; i < APPENDS; i++) {
        wire_event_t e[2];
        char stream[32], data[2][48];
        make_append(i, e, stream, data);
        for (unsigned j = 0; j < events_of(i); j++, k++) {
            ck_assert_uint_lt(k, r->read_ok->n_events);
            const Evstore__V1__RecordedEvent *ev = r->read_ok->events[k];
            ck_assert_uint_eq(ev->position, k);
            ck_assert_str_eq(ev->stream, stream);
            ck_assert_int_eq(ev->version, versions[i % STREAMS]++);
            ck_assert_mem_eq(ev->id.data, e[j].id, 16);
            ck_assert_str_eq(ev->type, e[j].type);
            ck_assert_uint_eq(ev->data.len, e[j].data_len);
            ck_assert_mem_eq(ev->data.data, e[j].data, e[j].data_len);
            ck_assert_uint_eq(ev->metadata.len, 1);
            ck_assert_int_eq(ev->timestamp_ns, e[j].timestamp_ns);
        }
    }
    ck_assert_uint_eq(r->read_ok->n_events, k);
    frame_free(r);
    for (unsigned s = 0; s < STREAMS; s++) {
        char stream[32];
        snprintf(stream, sizeof stream, "keep-%u", s);
        envelope_t *i = wire_stream_info(w, stream);
        ck_assert_answer(i, BODY(STREAM_INFO_OK));
        ck_assert(i->stream_info_ok->exists);
        ck_assert_int_eq(i->stream_info_ok->version, versions[s] - 1);
        frame_free(i);
    }
}

START_TEST(restart_after_sigterm_keeps_every_event)
{
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    uint64_t head = 0;
    for (unsigned i = 0; i < APPENDS; i++) {
        wire_event_t e[2];
        char stream[32], data[2][48];
        make_append(i, e, stream, data);
        wire_stream_t s = {.stream = stream, .expected_version = WIRE_ANY, .events = e,
                           .event_count = events_of(i)};
        envelope_t *a = wire_append(&w, &s, 1);
        ck_assert_answer(a, BODY(APPEND_OK));
        ck_assert_uint_eq(a->append_ok->first_position, head);
        head += events_of(i);
        frame_free(a);
    }
    check_all(&w);
    wire_close(&w);

    int status = test_server_stop(&srv);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "evstored did not exit 0 on SIGTERM (status 0x%x)", status);
    ck_assert_msg(srv_file_contains(log_path, "stopped cleanly"),
                  "no 'stopped cleanly' in evstored's stderr");

    ck_assert_int_eq(srv_restart(&srv, log_path), 0);
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    check_all(&w);
    envelope_t *l = wire_list_streams(&w, "keep-", "", 0);
    ck_assert_answer(l, BODY(LIST_STREAMS_OK));
    ck_assert_uint_eq(l->list_streams_ok->n_streams, STREAMS);
    frame_free(l);
    /* New appends go on where the old ones stopped, and retries of old
     * ones are still recognised. */
    envelope_t *a = wire_append_one(&w, "keep-0", WIRE_ANY, 5000, "After", "x");
    ck_assert_answer(a, BODY(APPEND_OK));
    ck_assert_uint_eq(a->append_ok->first_position, head);
    frame_free(a);
    wire_event_t e[2];
    char stream[32], data[2][48];
    make_append(APPENDS - 1, e, stream, data);
    wire_stream_t s = {.stream = stream, .expected_version = WIRE_ANY, .events = e,
                       .event_count = events_of(APPENDS - 1)};
    a = wire_append(&w, &s, 1);
    ck_assert_answer(a, BODY(APPEND_OK));
    ck_assert(a->append_ok->idempotent);
    ck_assert_uint_eq(a->append_ok->first_position, head - events_of(APPENDS - 1));
    frame_free(a);
    wire_close(&w);
}
END_TEST

#define INFLIGHT 64u

START_TEST(appends_in_flight_at_sigterm_are_answered_and_kept)
{
    wire_t w;
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    static wire_event_t e[INFLIGHT];
    for (uint64_t c = 1; c <= INFLIGHT; c++) {
        e[c - 1] = (wire_event_t){.type = "Late", .data = "late", .data_len = 4};
        wire_id(e[c - 1].id, 777, c);
        wire_stream_t s = {.stream = "late-1", .expected_version = WIRE_ANY,
                           .events = &e[c - 1], .event_count = 1};
        ck_assert_int_eq(wire_send_append(&w, c, &s, 1), 0);
    }
    kill(srv.pid, SIGTERM);
    /* Every answer that comes is a success or "stopping"; requests the
     * server had not read when it stopped reading get none. */
    static int answered[INFLIGHT + 1];
    static uint64_t position[INFLIGHT + 1];
    static int acked[INFLIGHT + 1];
    unsigned ok = 0;
    for (unsigned n = 0; n < INFLIGHT; n++) {
        envelope_t *env = NULL;
        int rc = wire_recv(&w, WIRE_TIMEOUT_MS, &env);
        if (rc == -EPIPE)
            break;
        ck_assert_msg(rc == 0, "receive: %s", strerror(-rc));
        uint64_t c = env->correlation_id;
        ck_assert(c >= 1 && c <= INFLIGHT && !answered[c]);
        answered[c] = 1;
        if (env->body_case == BODY(APPEND_OK)) {
            position[c] = env->append_ok->first_position;
            acked[c] = 1;
            ok++;
        } else {
            ck_assert_error(env, CODE(NOT_READY));
        }
        frame_free(env);
    }
    wire_close(&w);
    int status = test_server_stop(&srv);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "evstored did not exit 0 on SIGTERM (status 0x%x)", status);
    ck_assert(srv_file_contains(log_path, "stopped cleanly"));

    ck_assert_int_eq(srv_restart(&srv, log_path), 0);
    ck_assert_int_eq(wire_open(&w, srv.port), 0);
    envelope_t *r = wire_read(&w, &(wire_read_t){.stream = "$all"});
    ck_assert_answer(r, BODY(READ_OK));
    ck_assert_uint_ge(r->read_ok->n_events, ok);
    for (uint64_t c = 1; c <= INFLIGHT; c++) {
        if (!acked[c])
            continue;
        ck_assert_msg(position[c] < r->read_ok->n_events,
                      "acknowledged append %llu at position %llu is lost",
                      (unsigned long long)c, (unsigned long long)position[c]);
        const Evstore__V1__RecordedEvent *ev = r->read_ok->events[position[c]];
        ck_assert_uint_eq(ev->position, position[c]);
        ck_assert_mem_eq(ev->id.data, e[c - 1].id, 16);
    }
    frame_free(r);
    wire_close(&w);
}
END_TEST

static Suite *restart_suite(void)
{
    Suite *s = suite_create("server.restart");
    TCase *tc = tcase_create("restart");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, restart_after_sigterm_keeps_every_event);
    tcase_add_test(tc, appends_in_flight_at_sigterm_are_answered_and_kept);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(restart_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
