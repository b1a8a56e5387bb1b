/* client_test.h -- helpers shared by the client tests that run against a
 * real evstored: one server per test program (started by an unchecked
 * fixture, so every forked test talks to it), fresh names per test. */
#ifndef EVSTORE_TEST_CLIENT_TEST_H
#define EVSTORE_TEST_CLIENT_TEST_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evstore.h"
#include "server_fixture.h"
#include "util.h"

extern test_server_t g_server;

/* Unchecked fixture: starts evstored (default durability, small segments
 * so that start-up prepares little). */
static inline void server_setup(void)
{
    static const char *const args[] = { "--segment-bytes", "1048576", NULL };
    if (test_server_start(&g_server, args) != 0) {
        fprintf(stderr, "cannot start evstored\n");
        exit(1);
    }
}

static inline void server_teardown(void)
{
    test_server_destroy(&g_server);
}

/* Connects to 127.0.0.1:port with at most inflight_max requests in flight
 * (0: the default); a failure fails the test. */
static inline evs_conn_t *test_connect_to(uint16_t port, uint32_t inflight_max)
{
    evs_options_t o;
    evs_options_default(&o);
    o.port = port;
    o.client_name = "client-test";
    o.io_timeout_ms = 30000;
    if (inflight_max)
        o.inflight_max = inflight_max;
    evs_conn_t *conn = NULL;
    int err = evs_connect(&o, &conn);
    ck_assert_msg(err == 0, "connect to port %u: %s (%s)", port, evs_strerror(err), evs_errmsg());
    return conn;
}

/* Connects to g_server, as test_connect_to(). */
static inline evs_conn_t *test_connect(uint32_t inflight_max)
{
    return test_connect_to(g_server.port, inflight_max);
}

/* Writes "<prefix><8 random hex>" into out (64 bytes): a name no other test
 * uses, so tests share one server without seeing each other's events. */
static inline const char *uniq(const char *prefix, char out[64])
{
    uint8_t id[EVS_ID_BYTES];
    char text[EVS_ID_TEXT_BYTES];
    evs_id_random(id);
    snprintf(out, 64, "%s%.8s", prefix, evs_id_format(id, text));
    return out;
}

#define ck_evs(expr)                                                                        \
    do {                                                                                    \
        int ck_evs_rc_ = (expr);                                                            \
        ck_assert_msg(ck_evs_rc_ == 0, "%s: %s (%s)", #expr, evs_strerror(ck_evs_rc_),      \
                      evs_errmsg());                                                        \
    } while (0)

#endif
