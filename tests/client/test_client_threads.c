/* test_client_threads.c -- one connection shared by many threads: pipelined
 * async appends (every callback runs exactly once, every position is given
 * once), mixed with blocking calls, with a small in-flight limit too, which
 * a relay between client and server measures on the wire. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_test.h"
#include "protocol.h"

test_server_t g_server;

#define THREADS 8
#define APPENDS_PER_THREAD 400
#define EVENTS_PER_APPEND_MAX 3
#define BLOCKING_EVERY 50    /* a ping and a stream info before every 50th append */
#define SMALL_INFLIGHT_MAX 4 /* fewer than the THREADS that send at once */

/* One async append's record, written by its callback. */
typedef struct {
    atomic_int calls;
    int status;
    uint64_t first_position;
    uint32_t event_count;
} record_t;

typedef struct {
    evs_conn_t *conn;
    char stream[64];
    record_t records[APPENDS_PER_THREAD];
    int send_errors;
    int blocking_errors;
} worker_t;

static void record_cb(void *ctx, int status, const evs_append_result_t *res)
{
    record_t *r = ctx;
    r->status = status;
    r->first_position = res->first_position;
    r->event_count = res->event_count;
    atomic_fetch_add(&r->calls, 1);
}

/* Sends APPENDS_PER_THREAD async appends of 1..3 events; every
 * BLOCKING_EVERY appends, a blocking ping and stream info in between. */
static void *worker_main(void *arg)
{
    worker_t *w = arg;
    static const char payload[256] = { 'p' };
    for (int i = 0; i < APPENDS_PER_THREAD; i++) {
        evs_event_t ev[EVENTS_PER_APPEND_MAX] = { 0 };
        size_t n = (size_t)(i % EVENTS_PER_APPEND_MAX) + 1;
        for (size_t k = 0; k < n; k++) {
            evs_id_random(ev[k].id);
            ev[k].type = "Pipelined";
            ev[k].data = payload;
            ev[k].data_len = sizeof payload;
        }
        evs_stream_append_t sa = { .stream = w->stream, .expected_version = EVS_EXPECT_ANY,
                                   .events = ev, .event_count = n };
        if (evs_append_async(w->conn, &sa, 1, record_cb, &w->records[i]) != 0)
            w->send_errors++;
        if (i % BLOCKING_EVERY == 0) {
            evs_stream_info_t info;
            if (evs_ping(w->conn, NULL) || evs_stream_info(w->conn, w->stream, &info))
                w->blocking_errors++;
        }
    }
    return NULL;
}

static int range_cmp(const void *a, const void *b)
{
    const record_t *x = *(record_t *const *)a, *y = *(record_t *const *)b;
    return x->first_position < y->first_position ? -1 : x->first_position > y->first_position;
}

/* Every callback ran once with success; the position ranges do not overlap. */
static void check_records(worker_t *w)
{
    static record_t *all[THREADS * APPENDS_PER_THREAD];
    size_t n = 0;
    for (int t = 0; t < THREADS; t++) {
        ck_assert_int_eq(w[t].send_errors, 0);
        ck_assert_int_eq(w[t].blocking_errors, 0);
        for (int i = 0; i < APPENDS_PER_THREAD; i++) {
            record_t *r = &w[t].records[i];
            ck_assert_int_eq(atomic_load(&r->calls), 1);
            ck_assert_msg(r->status == 0, "append failed: %s", evs_strerror(r->status));
            ck_assert_uint_eq(r->event_count, (unsigned)(i % EVENTS_PER_APPEND_MAX) + 1);
            all[n++] = r;
        }
    }
    qsort(all, n, sizeof all[0], range_cmp);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_ge(all[i]->first_position,
                          all[i - 1]->first_position + all[i - 1]->event_count);
}

/* Each thread's stream holds exactly the events it appended. */
static void check_streams(evs_conn_t *conn, worker_t *w)
{
    size_t per_thread = 0;
    for (int i = 0; i < APPENDS_PER_THREAD; i++)
        per_thread += (size_t)(i % EVENTS_PER_APPEND_MAX) + 1;
    for (int t = 0; t < THREADS; t++) {
        evs_stream_info_t info;
        ck_evs(evs_stream_info(conn, w[t].stream, &info));
        ck_assert_int_eq(info.version, (int64_t)per_thread - 1);
    }
}

/* ---- a relay that measures the requests in flight on the wire ---- */

/* Counts the whole frames of a byte stream that comes in pieces. */
typedef struct {
    uint8_t header[FRAME_HEADER_BYTES];
    uint32_t header_have;
    uint32_t body_left;
} frame_counter_t;

/* Takes n more bytes; returns the number of frames they complete. */
static uint64_t frame_counter_feed(frame_counter_t *fc, const uint8_t *p, size_t n)
{
    uint64_t frames = 0;
    while (n > 0) {
        if (fc->header_have < FRAME_HEADER_BYTES) {
            fc->header[fc->header_have++] = *p++;
            n--;
            if (fc->header_have == FRAME_HEADER_BYTES)
                frame_peek(fc->header, FRAME_HEADER_BYTES, UINT32_MAX, &fc->body_left);
        } else {
            size_t k = n < fc->body_left ? n : fc->body_left;
            fc->body_left -= (uint32_t)k;
            p += k;
            n -= k;
        }
        if (fc->header_have == FRAME_HEADER_BYTES && fc->body_left == 0) {
            frames++;
            fc->header_have = 0;
        }
    }
    return frames;
}

/* A TCP relay for one connection between the client and g_server, in a
 * thread. A request counts once the relay has read all of it, an answer
 * once the relay has read all of it from the server, before passing it on.
 * Requests read minus answers read is then never more than the client's
 * requests in flight (each one counted was sent whole, and its answer has
 * not reached the client): inflight_max measures, outside the library, a
 * number the library's limit must bound. */
typedef struct {
    int listen_fd;
    int stop_pipe[2];       /* written to by relay_stop() */
    uint16_t port;          /* where the client connects */
    pthread_t thread;
    /* Written by the relay thread; read after relay_stop(). */
    uint64_t requests;      /* frames from the client, Hello included */
    uint64_t answers;       /* frames from the server */
    uint64_t inflight_max;  /* the most requests read and not yet answered */
    int error;              /* 0, or the errno that ended the relay */
} relay_t;

#define RELAY_CHUNK_BYTES (64u * 1024)

/* Writes all of buf to fd. 0 or an errno. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EPIPE;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Connects to g_server with Nagle off (the relay must not delay frames). */
static int relay_server_connect(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(g_server.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Relays one chunk from `from` to `to`, counting its frames into *frames.
 * 0, or an errno (ECONNRESET at the end of the stream). */
static int relay_chunk(int from, int to, frame_counter_t *fc, uint64_t *frames)
{
    uint8_t buf[RELAY_CHUNK_BYTES];
    ssize_t n = recv(from, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n <= 0)
        return n < 0 ? errno : ECONNRESET;
    *frames += frame_counter_feed(fc, buf, (size_t)n);
    return write_all(to, buf, (size_t)n);
}

/* Accepts the client, then relays both ways until either side closes or
 * relay_stop() is called. */
static void *relay_main(void *arg)
{
    relay_t *r = arg;
    struct pollfd p[3] = { { .fd = r->listen_fd, .events = POLLIN },
                           { .fd = r->stop_pipe[0], .events = POLLIN } };
    if (poll(p, 2, -1) < 0 || !(p[0].revents & POLLIN)) {
        r->error = ECANCELED;
        return NULL;
    }
    int client = accept(r->listen_fd, NULL, NULL);
    int server = relay_server_connect();
    int one = 1;
    if (client >= 0)
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    frame_counter_t up = { 0 }, down = { 0 };
    while (client >= 0 && server >= 0 && !r->error) {
        p[0] = (struct pollfd){ .fd = client, .events = POLLIN };
        p[1] = (struct pollfd){ .fd = server, .events = POLLIN };
        p[2] = (struct pollfd){ .fd = r->stop_pipe[0], .events = POLLIN };
        if (poll(p, 3, -1) < 0 || (p[2].revents && !p[0].revents && !p[1].revents))
            break; /* stopped, with nothing left to relay */
        if (p[0].revents)
            r->error = relay_chunk(client, server, &up, &r->requests);
        if (!r->error && p[1].revents)
            r->error = relay_chunk(server, client, &down, &r->answers);
        uint64_t inflight = r->requests - r->answers;
        r->inflight_max = inflight > r->inflight_max ? inflight : r->inflight_max;
    }
    if (client < 0 || server < 0)
        r->error = errno;
    if (client >= 0)
        close(client);
    if (server >= 0)
        close(server);
    return NULL;
}

/* Listens on 127.0.0.1:0 and starts the relay thread. */
static void relay_start(relay_t *r)
{
    memset(r, 0, sizeof *r);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(r->listen_fd, 0);
    ck_assert_int_eq(bind(r->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(r->listen_fd, 1), 0);
    ck_assert_int_eq(getsockname(r->listen_fd, (struct sockaddr *)&a, &len), 0);
    r->port = ntohs(a.sin_port);
    ck_assert_int_eq(pipe(r->stop_pipe), 0);
    ck_assert_int_eq(pthread_create(&r->thread, NULL, relay_main, r), 0);
}

/* Stops the relay (at once if the client has not closed yet) and joins it. */
static void relay_stop(relay_t *r)
{
    ck_assert_int_eq(write(r->stop_pipe[1], "x", 1), 1);
    pthread_join(r->thread, NULL);
    close(r->stop_pipe[0]);
    close(r->stop_pipe[1]);
    close(r->listen_fd);
}

/* ---- pipelining ---- */

/* THREADS workers share one connection, through the relay, with at most
 * inflight_max requests in flight (0: the default). */
static void run_pipelined(uint32_t inflight_max)
{
    relay_t relay;
    relay_start(&relay);
    evs_conn_t *conn = test_connect_to(relay.port, inflight_max);
    static worker_t w[THREADS];
    pthread_t t[THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].conn = conn;
        uniq("pipe-", w[i].stream);
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    ck_evs(evs_flush(conn, 60000));
    check_records(w);
    check_streams(conn, w);
    evs_close(conn);
    relay_stop(&relay);
    /* The relay ended with the client's close, having seen every request
     * (Hello, the appends, the blocking calls between them, check_streams'
     * stream infos) and its answer. */
    ck_assert_msg(relay.error == ECONNRESET, "relay: %s", strerror(relay.error));
    uint64_t blocking_per_thread = 2 * ((APPENDS_PER_THREAD + BLOCKING_EVERY - 1) / BLOCKING_EVERY);
    ck_assert_uint_eq(relay.requests,
                      1 + THREADS * (APPENDS_PER_THREAD + blocking_per_thread) + THREADS);
    ck_assert_uint_eq(relay.answers, relay.requests);
    uint32_t limit = inflight_max ? inflight_max : EVS_INFLIGHT_MAX_DEFAULT;
    fprintf(stderr, "pipelining: %llu requests, at most %llu in flight (limit %u)\n",
            (unsigned long long)relay.requests, (unsigned long long)relay.inflight_max, limit);
    ck_assert_msg(relay.inflight_max <= limit, "%llu requests in flight, over the limit of %u",
                  (unsigned long long)relay.inflight_max, limit);
    ck_assert_msg(relay.inflight_max > 1, "never two requests in flight: nothing was pipelined");
}

START_TEST(pipelined_appends_from_many_threads_complete_once_each)
{
    run_pipelined(0);
}
END_TEST

START_TEST(a_small_inflight_limit_makes_senders_wait_not_fail)
{
    run_pipelined(SMALL_INFLIGHT_MAX);
}
END_TEST

typedef struct {
    evs_conn_t *conn;
    char stream[64];
    atomic_int done;
    atomic_int failed;
    int chain_max;
} chain_t;

/* From the callback (the reader thread), sends the next append of the
 * chain: async calls are allowed there. */
static void chain_cb(void *ctx, int status, const evs_append_result_t *res)
{
    chain_t *c = ctx;
    (void)res;
    if (status) {
        atomic_fetch_add(&c->failed, 1);
        return;
    }
    int n = atomic_fetch_add(&c->done, 1) + 1;
    if (n >= c->chain_max)
        return;
    evs_event_t ev = { .type = "Chained" };
    evs_id_random(ev.id);
    evs_stream_append_t sa = { .stream = c->stream, .expected_version = n - 1,
                               .events = &ev, .event_count = 1 };
    if (evs_append_async(c->conn, &sa, 1, chain_cb, c))
        atomic_fetch_add(&c->failed, 1);
}

START_TEST(callbacks_may_send_the_next_async_append)
{
    chain_t c = { .conn = test_connect(0), .chain_max = 20 };
    uniq("chain-", c.stream);
    evs_event_t ev = { .type = "Chained" };
    evs_id_random(ev.id);
    evs_stream_append_t sa = { .stream = c.stream, .expected_version = EVS_EXPECT_NO_STREAM,
                               .events = &ev, .event_count = 1 };
    ck_evs(evs_append_async(c.conn, &sa, 1, chain_cb, &c));
    for (int i = 0; i < 1000 && atomic_load(&c.done) < c.chain_max && !atomic_load(&c.failed); i++)
        ck_evs(evs_flush(c.conn, 10000));
    ck_assert_int_eq(atomic_load(&c.failed), 0);
    ck_assert_int_eq(atomic_load(&c.done), c.chain_max);
    evs_stream_info_t info;
    ck_evs(evs_stream_info(c.conn, c.stream, &info));
    ck_assert_int_eq(info.version, c.chain_max - 1);
    evs_close(c.conn);
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("client_threads");
    TCase *tc = tcase_create("pipelining");
    tcase_add_unchecked_fixture(tc, server_setup, server_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pipelined_appends_from_many_threads_complete_once_each);
    tcase_add_test(tc, a_small_inflight_limit_makes_senders_wait_not_fail);
    tcase_add_test(tc, callbacks_may_send_the_next_async_append);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(threads_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
