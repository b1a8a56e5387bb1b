/* producer.c -- an example libevstore producer: appends --count events of
 * --size bytes to one stream per producer ("example-<random>") in appends of
 * --batch events, all asynchronously on one connection, then prints the
 * throughput. Build it against the installed library:
 *
 *   cc -o producer producer.c $(pkg-config --cflags --libs evstore)
 *   ./producer --port 7411 --count 100000 --batch 100
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c17 */
#include <evstore.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *host;
    unsigned port;
    long count;
    long batch;
    long size;
} config_t;

typedef struct {
    atomic_long events_done;
    atomic_long failures;
    atomic_int first_error;
} progress_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs on the connection's reader thread once per append. */
static void append_done(void *ctx, int status, const evs_append_result_t *res)
{
    progress_t *p = ctx;
    if (status == 0) {
        atomic_fetch_add(&p->events_done, (long)res->event_count);
        return;
    }
    atomic_fetch_add(&p->failures, 1);
    int none = 0;
    atomic_compare_exchange_strong(&p->first_error, &none, status);
}

static int usage(void)
{
    fprintf(stderr, "usage: producer [--host H] [--port P] [--count N] [--batch B] [--size BYTES]\n");
    return 2;
}

static int config_parse(int argc, char **argv, config_t *c)
{
    *c = (config_t){ .host = "127.0.0.1", .port = EVS_PORT_DEFAULT, .count = 100000,
                     .batch = 100, .size = 256 };
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--host"))
            c->host = v;
        else if (!strcmp(k, "--port"))
            c->port = (unsigned)atoi(v);
        else if (!strcmp(k, "--count"))
            c->count = atol(v);
        else if (!strcmp(k, "--batch"))
            c->batch = atol(v);
        else if (!strcmp(k, "--size"))
            c->size = atol(v);
        else
            return -1;
    }
    if (argc % 2 == 0 || c->count < 1 || c->batch < 1 || c->size < 0 || c->port > 65535)
        return -1;
    return 0;
}

/* Sends one append of n events; the ids are fresh, the payload is shared. */
static int send_batch(evs_conn_t *conn, const char *stream, evs_event_t *events, long n,
                      progress_t *p)
{
    for (long i = 0; i < n; i++)
        evs_id_random(events[i].id);
    evs_stream_append_t sa = { .stream = stream, .expected_version = EVS_EXPECT_ANY,
                               .events = events, .event_count = (size_t)n };
    return evs_append_async(conn, &sa, 1, append_done, p);
}

static int produce(evs_conn_t *conn, const config_t *c, progress_t *p)
{
    char *payload = malloc((size_t)c->size + 1);
    evs_event_t *events = calloc((size_t)c->batch, sizeof *events);
    int err = payload && events ? 0 : -1;
    uint8_t tag[EVS_ID_BYTES];
    char stream[64], tag_text[EVS_ID_TEXT_BYTES];
    evs_id_random(tag);
    snprintf(stream, sizeof stream, "example-%.8s", evs_id_format(tag, tag_text));
    if (!err)
        memset(payload, 'x', (size_t)c->size);
    for (long i = 0; !err && i < c->batch; i++)
        events[i] = (evs_event_t){ .type = "ExampleEvent", .data = payload,
                                   .data_len = (size_t)c->size };
    for (long sent = 0; !err && sent < c->count; sent += c->batch) {
        long n = c->count - sent < c->batch ? c->count - sent : c->batch;
        err = send_batch(conn, stream, events, n, p);
        if (err)
            fprintf(stderr, "producer: append: %s (%s)\n", evs_strerror(err), evs_errmsg());
    }
    if (!err)
        err = evs_flush(conn, -1); /* every callback has run */
    printf("producer: stream %s\n", stream);
    free(events);
    free(payload);
    return err;
}

int main(int argc, char **argv)
{
    config_t c;
    if (config_parse(argc, argv, &c))
        return usage();
    evs_options_t opts;
    evs_options_default(&opts);
    opts.host = c.host;
    opts.port = (uint16_t)c.port;
    opts.client_name = "example-producer";
    evs_conn_t *conn;
    int err = evs_connect(&opts, &conn);
    if (err) {
        fprintf(stderr, "producer: connect: %s (%s)\n", evs_strerror(err), evs_errmsg());
        return 3;
    }
    progress_t p = { 0 };
    double start = now_s();
    err = produce(conn, &c, &p);
    double secs = now_s() - start;
    evs_close(conn);
    long done = atomic_load(&p.events_done);
    printf("producer: %ld events in %.3f s: %.0f events/s, %ld failed appends\n", done, secs,
           secs > 0 ? (double)done / secs : 0.0, atomic_load(&p.failures));
    if (atomic_load(&p.failures))
        fprintf(stderr, "producer: first failure: %s\n", evs_strerror(atomic_load(&p.first_error)));
    return err || done != c.count ? 1 : 0;
}
