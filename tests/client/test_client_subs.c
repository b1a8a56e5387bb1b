/* test_client_subs.c -- subscriptions and subscription groups against a real
 * evstored: catch-up then live with a concurrent writer (the switch-over
 * race) on a stream, a category and $all; filters; from_end; many
 * subscribers; a slow subscriber (served from disk, the server's memory
 * bounded); a server restart under a subscription; group management and its
 * errors; competing consumers; redelivery on timeout; parking and replay;
 * pinned order; a consumer rejoining after a server restart.
 *
 * Nothing here waits a fixed time and then judges: waits are for a
 * condition, with a deadline; "nothing else came" is shown by an event that
 * had to come after it. So a loaded machine makes the tests slower, never
 * wrong. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "client_test.h"

test_server_t g_server;

#define WAIT_MS 10000 /* the longest a test waits for one expected item */

/* ---- helpers ---- */

static void opts_for(evs_options_t *o, uint16_t port)
{
    evs_options_default(o);
    o->port = port;
    o->client_name = "subs-test";
    o->io_timeout_ms = 10000;
    o->reconnect_backoff_ms_initial = 20;
    o->reconnect_backoff_ms_max = 500;
}

static evs_sub_t *subscribe_to(uint16_t port, const evs_subscribe_t *req)
{
    evs_options_t o;
    opts_for(&o, port);
    evs_sub_t *sub = NULL;
    int err = evs_subscribe(&o, req, &sub);
    ck_assert_msg(err == 0, "subscribe %s: %s (%s)", req->stream, evs_strerror(err),
                  evs_errmsg());
    return sub;
}

/* Starts a server of the test's own (the shared one must not restart). */
static void own_server_start(test_server_t *srv)
{
    static const char *const args[] = { "--segment-bytes", "1048576", NULL };
    ck_assert_int_eq(test_server_start(srv, args), 0);
}

/* Appends n events (type, data "<stream>:<i>") to stream in appends of up to
 * batch events. Returns the position of the first. */
static uint64_t append_n(evs_conn_t *conn, const char *stream, const char *type, int n, int batch)
{
    enum { BATCH_MAX = 100 };
    char data[BATCH_MAX][96];
    evs_event_t ev[BATCH_MAX];
    uint64_t first = UINT64_MAX;
    batch = batch < 1 ? 1 : batch > BATCH_MAX ? BATCH_MAX : batch;
    for (int done = 0; done < n;) {
        int k = n - done < batch ? n - done : batch;
        memset(ev, 0, sizeof ev);
        for (int i = 0; i < k; i++) {
            evs_id_random(ev[i].id);
            ev[i].type = type;
            ev[i].data_len = (size_t)snprintf(data[i], sizeof data[i], "%s:%d", stream, done + i);
            ev[i].data = data[i];
        }
        evs_stream_append_t sa = { .stream = stream, .expected_version = EVS_EXPECT_ANY,
                                   .events = ev, .event_count = (size_t)k };
        evs_append_result_t res;
        ck_evs(evs_append(conn, &sa, 1, &res));
        if (first == UINT64_MAX)
            first = res.first_position;
        done += k;
    }
    return first;
}

static uint64_t head_position(evs_conn_t *conn)
{
    evs_server_stats_t st;
    ck_evs(evs_server_stats(conn, &st));
    return st.head_position;
}

/* The next event from sub (caught-up markers are counted in *caught_up). */
static void next_event(evs_sub_t *sub, evs_sub_item_t *item, int *caught_up)
{
    for (;;) {
        int err = evs_sub_next(sub, WAIT_MS, item);
        ck_assert_msg(err == 0, "evs_sub_next: %s (%s)", evs_strerror(err), evs_errmsg());
        if (item->kind == EVS_SUB_EVENT)
            return;
        ck_assert_int_eq(item->kind, EVS_SUB_CAUGHT_UP);
        if (caught_up)
            (*caught_up)++;
    }
}

/* "Nothing else came" is checked without a timed wait, which a loaded
 * machine passes by accident: append a sentinel event the subscription must
 * deliver, then expect it as the very next event. The server delivers in
 * log order, so anything the subscription should not have delivered (a
 * duplicate, an event past its filter, a stored event before from_end)
 * would have come before it. */
#define SENTINEL_TYPE "Sentinel"

/* Appends the sentinel to stream; returns its position. */
static uint64_t append_sentinel(evs_conn_t *conn, const char *stream)
{
    return append_n(conn, stream, SENTINEL_TYPE, 1, 1);
}

/* Asserts that the next event from sub (caught-up markers aside) is the one
 * at position. */
static void expect_next_at(evs_sub_t *sub, uint64_t position)
{
    evs_sub_item_t item;
    next_event(sub, &item, NULL);
    ck_assert_msg(item.event.position == position,
                  "unexpected event %s@%lld %s at %llu before the one at %llu", item.event.stream,
                  (long long)item.event.version, item.event.type,
                  (unsigned long long)item.event.position, (unsigned long long)position);
}

static void expect_no_duplicates_dropped(const evs_sub_t *sub)
{
    evs_sub_stats_t st;
    evs_sub_stats(sub, &st);
    ck_assert_msg(st.duplicates_dropped == 0, "the server sent %llu events twice",
                  (unsigned long long)st.duplicates_dropped);
}

/* A writer thread: appends count events to streams "<prefix>1".."<prefix>N"
 * (round robin), 1..5 events per append. */
typedef struct {
    uint16_t port;
    char prefix[80]; /* the longest of the callers' prefix buffers */
    int stream_count;
    int count;
    pthread_t thread;
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    evs_options_t o;
    opts_for(&o, w->port);
    evs_conn_t *conn = NULL;
    if (evs_connect(&o, &conn) != 0)
        return (void *)1;
    for (int done = 0, i = 0; done < w->count; i++) {
        char stream[96];
        snprintf(stream, sizeof stream, "%s%d", w->prefix, i % w->stream_count + 1);
        int k = 1 + i % 5;
        k = k > w->count - done ? w->count - done : k;
        append_n(conn, stream, "Tick", k, k);
        done += k;
    }
    evs_close(conn);
    return NULL;
}

static void writer_start(writer_t *w, uint16_t port, const char *prefix, int streams, int count)
{
    w->port = port;
    snprintf(w->prefix, sizeof w->prefix, "%s", prefix);
    w->stream_count = streams;
    w->count = count;
    ck_assert_int_eq(pthread_create(&w->thread, NULL, writer_main, w), 0);
}

static void writer_join(writer_t *w)
{
    void *rc;
    pthread_join(w->thread, &rc);
    ck_assert_ptr_null(rc);
}

/* Per-stream bookkeeping for order checks: the next version expected. */
typedef struct {
    char name[96];
    int64_t next_version;
} stream_seen_t;

static stream_seen_t *seen_find(stream_seen_t *seen, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp(seen[i].name, name) == 0)
            return &seen[i];
    return NULL;
}

/* ---- catch-up, then live ---- */

START_TEST(stream_catch_up_then_live_without_gap_or_duplicate)
{
    char s[64];
    uniq("subs-", s);
    evs_conn_t *conn = test_connect(0);
    append_n(conn, s, "Tick", 500, 50);
    evs_subscribe_t req = { .stream = s };
    evs_sub_t *sub = subscribe_to(g_server.port, &req);
    int caught_up = 0;
    for (int64_t v = 0; v < 500; v++) {
        evs_sub_item_t item;
        next_event(sub, &item, &caught_up);
        ck_assert_int_eq(item.event.version, v);
        if (v == 250)
            append_n(conn, s, "Tick", 100, 3); /* appended during the catch-up */
    }
    for (int64_t v = 500; v < 600; v++) {
        evs_sub_item_t item;
        next_event(sub, &item, &caught_up);
        ck_assert_int_eq(item.event.version, v);
        ck_assert_str_eq(item.event.stream, s);
        ck_assert_uint_eq(item.next, (uint64_t)v + 1);
    }
    append_n(conn, s, "Tick", 10, 1); /* live; their versions show that nothing came between */
    for (int64_t v = 600; v < 610; v++) {
        evs_sub_item_t item;
        next_event(sub, &item, &caught_up);
        ck_assert_int_eq(item.event.version, v);
    }
    ck_assert_int_ge(caught_up, 1);
    expect_no_duplicates_dropped(sub);
    evs_sub_close(sub);
    evs_close(conn);
}
END_TEST

/* Subscribes to what the writer writes (streams "<prefix>1..N") while it
 * writes, and checks log order, per-stream order and completeness. */
static void concurrent_writer_check(const char *target, const char *prefix, int streams,
                                    int stored, int live)
{
    evs_conn_t *conn = test_connect(0);
    char stream[96];
    for (int i = 1; i <= streams; i++) {
        snprintf(stream, sizeof stream, "%s%d", prefix, i);
        append_n(conn, stream, "Tick", stored / streams, 25);
    }
    evs_subscribe_t req = { .stream = target, .batch_max = 64 };
    evs_sub_t *sub = subscribe_to(g_server.port, &req);
    writer_t w;
    writer_start(&w, g_server.port, prefix, streams, live);
    stream_seen_t seen[16];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < streams; i++)
        snprintf(seen[i].name, sizeof seen[i].name, "%s%d", prefix, i + 1);
    int total = (stored / streams) * streams + live, got = 0, caught_up = 0;
    uint64_t last_position = 0;
    while (got < total) {
        evs_sub_item_t item;
        next_event(sub, &item, &caught_up);
        ck_assert_msg(got == 0 && last_position == 0 ? true : item.event.position > last_position,
                      "position %llu after %llu", (unsigned long long)item.event.position,
                      (unsigned long long)last_position);
        last_position = item.event.position;
        stream_seen_t *ss = seen_find(seen, streams, item.event.stream);
        if (!ss)
            continue; /* $all: another test's event */
        ck_assert_msg(item.event.version == ss->next_version, "%s: version %lld, expected %lld",
                      ss->name, (long long)item.event.version, (long long)ss->next_version);
        ss->next_version++;
        got++;
    }
    writer_join(&w);
    snprintf(stream, sizeof stream, "%s1", prefix); /* a stream every target holds */
    expect_next_at(sub, append_sentinel(conn, stream));
    ck_assert_int_ge(caught_up, 1);
    expect_no_duplicates_dropped(sub);
    evs_sub_close(sub);
    evs_close(conn);
}

START_TEST(stream_switch_over_race_with_a_concurrent_writer)
{
    char p[64], target[80];
    uniq("race-", p);
    strcat(p, "-s");
    snprintf(target, sizeof target, "%s1", p); /* the writer's one stream */
    concurrent_writer_check(target, p, 1, 500, 3000);
}
END_TEST

START_TEST(category_catch_up_then_live_with_a_concurrent_writer)
{
    char cat[64], prefix[80], target[80];
    uniq("cat", cat);
    snprintf(prefix, sizeof prefix, "%s-s", cat);
    snprintf(target, sizeof target, "$ce-%s", cat);
    concurrent_writer_check(target, prefix, 4, 400, 2000);
}
END_TEST

START_TEST(all_catch_up_then_live_with_a_concurrent_writer)
{
    char prefix[64];
    uniq("all-", prefix);
    strcat(prefix, "-s");
    concurrent_writer_check("$all", prefix, 3, 300, 2000);
}
END_TEST

START_TEST(stream_subscription_from_a_version)
{
    char s[64];
    uniq("from-", s);
    evs_conn_t *conn = test_connect(0);
    append_n(conn, s, "Tick", 20, 20);
    evs_subscribe_t req = { .stream = s, .from = 15 };
    evs_sub_t *sub = subscribe_to(g_server.port, &req);
    for (int64_t v = 15; v < 20; v++) {
        evs_sub_item_t item;
        next_event(sub, &item, NULL);
        ck_assert_int_eq(item.event.version, v);
    }
    evs_sub_item_t item;
    ck_assert_int_eq(evs_sub_next(sub, WAIT_MS, &item), 0);
    ck_assert_int_eq(item.kind, EVS_SUB_CAUGHT_UP);
    ck_assert_uint_eq(item.next, 20);
    evs_sub_close(sub);
    evs_close(conn);
}
END_TEST

/* ---- filters, from_end ---- */

START_TEST(filters_by_type_list_type_prefix_and_stream_prefix)
{
    char p[64], a[96], b[96];
    uniq("flt", p);
    snprintf(a, sizeof a, "%s-a", p);
    snprintf(b, sizeof b, "%s-b", p);
    evs_conn_t *conn = test_connect(0);
    uint64_t head = head_position(conn);
    append_n(conn, a, "OrderPlaced", 5, 5);
    append_n(conn, b, "OrderShipped", 5, 5);
    append_n(conn, a, "PaymentDone", 5, 5);
    append_n(conn, b, "Noise", 5, 5);

    const char *types[] = { "PaymentDone", "Noise" };
    evs_subscribe_t by_types = { .stream = "$all", .from = head, .types = types,
                                 .type_count = 2, .stream_prefix = p };
    evs_subscribe_t by_prefix = { .stream = "$all", .from = head, .type_prefix = "Order",
                                  .stream_prefix = p };
    evs_subscribe_t by_stream = { .stream = "$all", .from = head, .stream_prefix = b };
    struct {
        evs_subscribe_t *req;
        const char *types_ok[2];
        const char *stream_ok;
        int stored; /* the earlier cases' live events count for the last one */
    } cases[] = {
        { &by_types, { "PaymentDone", "Noise" }, NULL, 10 },
        { &by_prefix, { "OrderPlaced", "OrderShipped" }, NULL, 10 },
        { &by_stream, { "OrderShipped", "Noise" }, b, 12 },
    };
    for (size_t c = 0; c < 3; c++) {
        evs_sub_t *sub = subscribe_to(g_server.port, cases[c].req);
        for (int i = 0; i < cases[c].stored; i++) {
            evs_sub_item_t item;
            next_event(sub, &item, NULL);
            ck_assert_msg(strcmp(item.event.type, cases[c].types_ok[0]) == 0 ||
                              strcmp(item.event.type, cases[c].types_ok[1]) == 0,
                          "case %zu: type %s", c, item.event.type);
            ck_assert(strncmp(item.event.stream, p, strlen(p)) == 0);
            if (cases[c].stream_ok)
                ck_assert_str_eq(item.event.stream, cases[c].stream_ok);
        }
        /* Live events are filtered too: the wanted one comes next, so neither
         * the unwanted one nor a stored event past the filter came. */
        append_n(conn, a, "Unwanted", 1, 1);
        expect_next_at(sub, append_n(conn, b, cases[c].types_ok[1], 1, 1));
        evs_sub_close(sub);
    }
    evs_close(conn);
}
END_TEST

START_TEST(from_end_delivers_only_new_events)
{
    char s[64], cat[64], cs[96], target[96];
    uniq("end-", s);
    uniq("endcat", cat);
    snprintf(cs, sizeof cs, "%s-1", cat);
    snprintf(target, sizeof target, "$ce-%s", cat);
    evs_conn_t *conn = test_connect(0);
    append_n(conn, s, "Old", 10, 10);
    append_n(conn, cs, "Old", 10, 10);
    evs_subscribe_t rs = { .stream = s, .from_end = true };
    evs_subscribe_t rc = { .stream = target, .from_end = true };
    evs_subscribe_t ra = { .stream = "$all", .from_end = true, .stream_prefix = cat };
    evs_sub_t *subs[3] = { subscribe_to(g_server.port, &rs), subscribe_to(g_server.port, &rc),
                           subscribe_to(g_server.port, &ra) };
    /* evs_subscribe() returned after SubscribeOk, so "the end" is fixed:
     * the first event each delivers must be the first new one. */
    append_n(conn, s, "New", 3, 1);
    append_n(conn, cs, "New", 3, 1);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++) {
            evs_sub_item_t item;
            next_event(subs[i], &item, NULL);
            ck_assert_str_eq(item.event.type, "New");
            ck_assert_int_eq(item.event.version, 10 + k);
        }
    uint64_t sentinel_s = append_sentinel(conn, s), sentinel_cs = append_sentinel(conn, cs);
    for (int i = 0; i < 3; i++) {
        expect_next_at(subs[i], i == 0 ? sentinel_s : sentinel_cs);
        evs_sub_close(subs[i]);
    }
    evs_close(conn);
}
END_TEST

/* ---- many subscribers, slow subscriber ---- */

#define MANY_SUBS 20
#define MANY_EVENTS 1000

typedef struct {
    evs_sub_t *sub;
    int got;
    bool in_order;
} reader_t;

static void *many_reader_main(void *arg)
{
    reader_t *r = arg;
    r->in_order = true;
    while (r->got < MANY_EVENTS) {
        evs_sub_item_t item;
        int err = evs_sub_next(r->sub, WAIT_MS, &item);
        if (err)
            break;
        if (item.kind != EVS_SUB_EVENT)
            continue;
        r->in_order &= item.event.version == r->got;
        r->got++;
    }
    return NULL;
}

START_TEST(many_subscribers_at_once_each_get_everything)
{
    char s[64];
    uniq("many-", s);
    evs_conn_t *conn = test_connect(0);
    append_n(conn, s, "Tick", MANY_EVENTS / 2, 50);
    static reader_t r[MANY_SUBS];
    pthread_t t[MANY_SUBS];
    for (int i = 0; i < MANY_SUBS; i++) {
        evs_subscribe_t req = { .stream = s, .batch_max = (uint32_t)(1 + i * 7) };
        r[i] = (reader_t){ .sub = subscribe_to(g_server.port, &req) };
        ck_assert_int_eq(pthread_create(&t[i], NULL, many_reader_main, &r[i]), 0);
    }
    append_n(conn, s, "Tick", MANY_EVENTS / 2, 7);
    for (int i = 0; i < MANY_SUBS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(r[i].got == MANY_EVENTS && r[i].in_order, "subscriber %d: %d events%s", i,
                      r[i].got, r[i].in_order ? "" : ", out of order");
        expect_no_duplicates_dropped(r[i].sub);
        evs_sub_close(r[i].sub);
    }
    uint64_t rtt;
    ck_evs(evs_ping(conn, &rtt));
    evs_close(conn);
}
END_TEST

/* A slow subscriber has a server of its own with the smallest output limit
 * evstored accepts (twice the frame limit, which must hold four of the
 * largest events): what is written while the subscriber reads nothing is
 * then many times what the server may queue for it. */
#define SLOW_EVENT_BYTES_MAX (16 * 1024)
#define SLOW_FRAME_BYTES_MAX (128 * 1024)
#define SLOW_OUTPUT_BYTES_MAX (2 * SLOW_FRAME_BYTES_MAX)
#define SLOW_EVENTS 5000
#define SLOW_DATA_BYTES 4000
#define SLOW_APPEND_EVENTS 25
/* The most the server holds for one connection's answers: a queue buffer
 * and a sending buffer, each grown by doubling to at most twice the limit. */
#define SLOW_QUEUE_BYTES_MAX (4 * SLOW_OUTPUT_BYTES_MAX)
/* What storing the events costs the server's anonymous memory, whoever
 * reads them (the stream's index, the table of event ids, write buffers):
 * under 2 MiB measured with no subscriber at all; twice that allowed. */
#define SLOW_STORE_BYTES_MAX (4 * 1024 * 1024)
/* The bound on the server's growth while the subscriber reads nothing: far
 * below the SLOW_EVENTS * SLOW_DATA_BYTES (20 MB) it would hold if it kept
 * what it cannot send. */
#define SLOW_ANON_GROWTH_BYTES_MAX (SLOW_QUEUE_BYTES_MAX + SLOW_STORE_BYTES_MAX)

/* Under AddressSanitizer (the sanitizer build compiles evstored with the
 * test's flags) freed memory waits in a quarantine and every heap byte has
 * shadow, so RssAnon says nothing of what the server keeps: the memory bound
 * is checked in the other builds only. */
#if defined(__SANITIZE_ADDRESS__)
#define SLOW_ANON_CHECKED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOW_ANON_CHECKED 0
#endif
#endif
#ifndef SLOW_ANON_CHECKED
#define SLOW_ANON_CHECKED 1
#endif

static void slow_server_start(test_server_t *srv)
{
    char event[16], frame[16], output[16];
    snprintf(event, sizeof event, "%d", SLOW_EVENT_BYTES_MAX);
    snprintf(frame, sizeof frame, "%d", SLOW_FRAME_BYTES_MAX);
    snprintf(output, sizeof output, "%d", SLOW_OUTPUT_BYTES_MAX);
    const char *const args[] = { "--segment-bytes", "4194304", "--max-event-bytes", event,
                                 "--max-frame-bytes", frame, "--max-output-bytes", output,
                                 NULL };
    ck_assert_int_eq(test_server_start(srv, args), 0);
}

/* The anonymous resident memory of a process in bytes (RssAnon: its heap
 * and buffers, not the segment files it maps, whose pages belong to the
 * page cache), or -1. */
static long long anon_bytes(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %lld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

/* Appends SLOW_EVENTS events of SLOW_DATA_BYTES to stream; returns the
 * largest anonymous memory of the server seen after an append. */
static long long slow_write(evs_conn_t *conn, const char *stream, pid_t server)
{
    static char data[SLOW_DATA_BYTES];
    memset(data, 'x', sizeof data);
    evs_event_t ev[SLOW_APPEND_EVENTS];
    long long anon_max = -1;
    for (int n = 0; n < SLOW_EVENTS; n += SLOW_APPEND_EVENTS) {
        memset(ev, 0, sizeof ev);
        for (int i = 0; i < SLOW_APPEND_EVENTS; i++) {
            evs_id_random(ev[i].id);
            ev[i].type = "Big";
            ev[i].data = data;
            ev[i].data_len = sizeof data;
        }
        evs_stream_append_t sa = { .stream = stream, .expected_version = EVS_EXPECT_ANY,
                                   .events = ev, .event_count = SLOW_APPEND_EVENTS };
        ck_evs(evs_append(conn, &sa, 1, NULL));
        long long anon = anon_bytes(server);
        anon_max = anon > anon_max ? anon : anon_max;
    }
    return anon_max;
}

/* The contract: a subscriber that does not read is neither dropped nor
 * buffered for; the server stops serving it and, when it reads again,
 * serves it from disk until it is back at the head (and says CaughtUp
 * again). */
START_TEST(slow_subscriber_is_served_from_disk_with_the_servers_memory_bounded)
{
    test_server_t srv;
    slow_server_start(&srv);
    evs_options_t o;
    opts_for(&o, srv.port);
    evs_conn_t *conn = NULL;
    ck_evs(evs_connect(&o, &conn));
    evs_subscribe_t req = { .stream = "slow-1", .batch_max = 32 };
    evs_sub_t *sub = subscribe_to(srv.port, &req);
    long long anon_before = anon_bytes(srv.pid);
    ck_assert_int_gt(anon_before, 0);
    long long anon_growth = slow_write(conn, "slow-1", srv.pid) - anon_before;
    fprintf(stderr, "slow subscriber: evstored's anonymous memory grew by %lld KiB (bound %d KiB%s) "
                    "while %d KiB were written and not read\n",
            anon_growth / 1024, SLOW_ANON_GROWTH_BYTES_MAX / 1024,
            SLOW_ANON_CHECKED ? "" : ", not checked under ASan",
            SLOW_EVENTS * SLOW_DATA_BYTES / 1024);
    ck_assert_msg(!SLOW_ANON_CHECKED || anon_growth <= SLOW_ANON_GROWTH_BYTES_MAX,
                  "evstored's anonymous memory grew by %lld KiB, over %d KiB", anon_growth / 1024,
                  SLOW_ANON_GROWTH_BYTES_MAX / 1024);
    int caught_up = 0;
    for (int64_t v = 0; v < SLOW_EVENTS; v++) {
        evs_sub_item_t item;
        next_event(sub, &item, &caught_up);
        ck_assert_int_eq(item.event.version, v);
        ck_assert_uint_eq(item.event.data_len, SLOW_DATA_BYTES);
        if (v % 500 == 0)
            usleep(20000); /* and slow now and then while reading */
    }
    evs_sub_stats_t st;
    evs_sub_stats(sub, &st);
    ck_assert_msg(st.reconnects == 0, "the server dropped the slow subscriber: %s",
                  st.last_error_msg);
    ck_assert_uint_eq(st.duplicates_dropped, 0);
    /* Once at the start (the stream was empty), again when it was back at
     * the head after falling behind. */
    ck_assert_int_ge(caught_up, 2);
    uint64_t rtt;
    ck_evs(evs_ping(conn, &rtt));
    evs_sub_close(sub);
    evs_close(conn);
    test_server_destroy(&srv);
}
END_TEST

START_TEST(closing_a_subscription_mid_stream_leaves_the_server_serving)
{
    char s[64];
    uniq("close-", s);
    evs_conn_t *conn = test_connect(0);
    append_n(conn, s, "Tick", 300, 100);
    for (int round = 0; round < 10; round++) {
        evs_subscribe_t req = { .stream = s, .batch_max = 10 };
        evs_sub_t *sub = subscribe_to(g_server.port, &req);
        evs_sub_item_t item;
        next_event(sub, &item, NULL);
        evs_sub_close(sub);
    }
    uint64_t rtt;
    ck_evs(evs_ping(conn, &rtt));
    evs_close(conn);
}
END_TEST

START_TEST(subscribe_checks_its_arguments)
{
    evs_options_t o;
    opts_for(&o, g_server.port);
    evs_sub_t *sub = NULL;
    evs_subscribe_t none = { 0 };
    ck_assert_int_eq(evs_subscribe(&o, &none, &sub), -EINVAL);
    evs_subscribe_t big = { .stream = "x", .batch_max = EVS_SUB_BATCH_MAX_LIMIT + 1 };
    ck_assert_int_eq(evs_subscribe(&o, &big, &sub), -EINVAL);
    evs_subscribe_t ok = { .stream = "x" };
    o.reconnect_backoff_ms_initial = 0;
    ck_assert_int_eq(evs_subscribe(&o, &ok, &sub), -EINVAL);
    opts_for(&o, 1); /* nothing listens on port 1: with no budget, no second attempt */
    o.retry_ms_max = 0;
    ck_assert_int_eq(evs_subscribe(&o, &ok, &sub), -ECONNREFUSED);
    ck_assert_ptr_null(sub);
    evs_consumer_t *c = NULL;
    ck_assert_int_eq(evs_group_join(&o, "", 0, &c), -EINVAL);
    ck_assert_int_eq(evs_group_join(&o, "g", 0, &c), -ECONNREFUSED);
}
END_TEST

/* ---- restarts ---- */

START_TEST(subscription_resumes_after_a_server_restart_without_loss_or_duplicate)
{
    test_server_t srv;
    own_server_start(&srv);
    evs_options_t o;
    opts_for(&o, srv.port);
    evs_conn_t *conn = NULL;
    ck_evs(evs_connect(&o, &conn));
    append_n(conn, "rs-1", "Tick", 300, 50);
    evs_subscribe_t req = { .stream = "rs-1", .batch_max = 16 };
    evs_subscribe_t req_all = { .stream = "$all", .batch_max = 16 };
    evs_sub_t *sub = subscribe_to(srv.port, &req);
    evs_sub_t *sub_all = subscribe_to(srv.port, &req_all);
    evs_sub_item_t item;
    for (int64_t v = 0; v < 100; v++) {
        next_event(sub, &item, NULL);
        ck_assert_int_eq(item.event.version, v);
        next_event(sub_all, &item, NULL);
        ck_assert_int_eq(item.event.version, v);
    }
    evs_close(conn);
    ck_assert_int_eq(test_server_stop(&srv), 0);
    ck_assert_int_eq(test_server_restart_same_port(&srv), 0);
    ck_evs(evs_connect(&o, &conn));
    append_n(conn, "rs-1", "Tick", 300, 50);
    for (int64_t v = 100; v < 600; v++) {
        next_event(sub, &item, NULL);
        ck_assert_int_eq(item.event.version, v);
        next_event(sub_all, &item, NULL);
        ck_assert_int_eq(item.event.version, v);
    }
    uint64_t sentinel = append_sentinel(conn, "rs-1");
    expect_next_at(sub, sentinel);
    expect_next_at(sub_all, sentinel);
    evs_sub_stats_t st;
    evs_sub_stats(sub, &st);
    ck_assert_uint_ge(st.reconnects, 1);
    ck_assert_uint_eq(st.events_delivered, 600 + 1); /* and the sentinel */
    expect_no_duplicates_dropped(sub);
    expect_no_duplicates_dropped(sub_all);
    evs_sub_close(sub);
    evs_sub_close(sub_all);
    evs_close(conn);
    test_server_destroy(&srv);
}
END_TEST

/* A writer that keeps appending to "kill-1" across a crash, counting the
 * events the server acknowledged. */
typedef struct {
    uint16_t port;
    atomic_bool stop;
    atomic_int acked;    /* events acknowledged */
    pthread_t thread;
} crash_writer_t;

#define CRASH_ACKS_AFTER_RESTART 200 /* appends acknowledged by the restarted server */
#define CRASH_WRITER_MS_MAX 60000    /* for those, however loaded the machine */

static void *crash_writer_main(void *arg)
{
    crash_writer_t *w = arg;
    evs_options_t o;
    opts_for(&o, w->port);
    o.io_timeout_ms = 2000;
    o.connect_timeout_ms = 500;
    evs_conn_t *conn = NULL;
    while (!atomic_load(&w->stop)) {
        if (!conn && evs_connect(&o, &conn) != 0) {
            conn = NULL;
            usleep(20000);
            continue;
        }
        evs_event_t ev = { .type = "Tick", .data = "k", .data_len = 1 };
        evs_id_random(ev.id);
        evs_stream_append_t sa = { .stream = "kill-1", .expected_version = EVS_EXPECT_ANY,
                                   .events = &ev, .event_count = 1 };
        if (evs_append(conn, &sa, 1, NULL) == 0) {
            atomic_fetch_add(&w->acked, 1);
        } else {
            evs_close(conn);
            conn = NULL;
        }
    }
    evs_close(conn);
    return NULL;
}

START_TEST(subscription_survives_a_crash_during_concurrent_appends)
{
    test_server_t srv;
    own_server_start(&srv);
    evs_subscribe_t req = { .stream = "kill-1" };
    evs_sub_t *sub = subscribe_to(srv.port, &req);
    static crash_writer_t w;
    w = (crash_writer_t){ .port = srv.port };
    ck_assert_int_eq(pthread_create(&w.thread, NULL, crash_writer_main, &w), 0);
    evs_sub_item_t item;
    int64_t next_version = 0;
    for (; next_version < 200; next_version++) {
        next_event(sub, &item, NULL);
        ck_assert_int_eq(item.event.version, next_version);
    }
    test_server_kill(&srv);
    ck_assert_int_eq(test_server_restart_same_port(&srv), 0);
    /* Counted from the restart, so that the writer has certainly written to
     * the new server (whatever it managed before the kill). */
    int acked_want = atomic_load(&w.acked) + CRASH_ACKS_AFTER_RESTART;
    uint64_t deadline_ms = util_mono_ms() + CRASH_WRITER_MS_MAX;
    while (atomic_load(&w.acked) < acked_want && util_mono_ms() < deadline_ms)
        usleep(10000);
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);
    int acked = atomic_load(&w.acked);
    ck_assert_msg(acked >= acked_want, "the restarted server acknowledged %d of %d appends in %d ms",
                  acked - (acked_want - CRASH_ACKS_AFTER_RESTART), CRASH_ACKS_AFTER_RESTART,
                  CRASH_WRITER_MS_MAX);
    /* Every acknowledged event is there, in order, once. */
    evs_options_t o;
    opts_for(&o, srv.port);
    evs_conn_t *conn = NULL;
    ck_evs(evs_connect(&o, &conn));
    evs_stream_info_t info;
    ck_evs(evs_stream_info(conn, "kill-1", &info));
    ck_assert_int_ge(info.version + 1, acked);
    for (; next_version <= info.version; next_version++) {
        next_event(sub, &item, NULL);
        ck_assert_int_eq(item.event.version, next_version);
    }
    expect_next_at(sub, append_sentinel(conn, "kill-1"));
    expect_no_duplicates_dropped(sub);
    evs_sub_close(sub);
    evs_close(conn);
    test_server_destroy(&srv);
}
END_TEST

/* ---- groups: management ---- */

START_TEST(group_create_list_info_update_delete_and_their_errors)
{
    char g[64], cat[64], target[80];
    uniq("grp-", g);
    uniq("gcat", cat);
    snprintf(target, sizeof target, "$ce-%s", cat);
    evs_conn_t *conn = test_connect(0);
    const char *types[] = { "A", "B" };
    evs_group_settings_t s = { .name = g, .stream = target, .from = 0,
                               .strategy = EVS_GROUP_PINNED, .ack_timeout_ms = 1234,
                               .max_retries = 7, .inflight_max_per_consumer = 9,
                               .types = types, .type_count = 2 };
    ck_evs(evs_group_create(conn, &s));
    ck_assert_int_eq(evs_group_create(conn, &s), EVS_EGROUP_EXISTS);

    evs_group_info_t gi;
    ck_evs(evs_group_info(conn, g, &gi));
    ck_assert_str_eq(gi.settings.name, g);
    ck_assert_str_eq(gi.settings.stream, target);
    ck_assert_int_eq(gi.settings.strategy, EVS_GROUP_PINNED);
    ck_assert_uint_eq(gi.settings.ack_timeout_ms, 1234);
    ck_assert_uint_eq(gi.settings.max_retries, 7);
    ck_assert_uint_eq(gi.settings.inflight_max_per_consumer, 9);
    ck_assert_uint_eq(gi.settings.type_count, 2);
    ck_assert_str_eq(gi.settings.types[1], "B");
    ck_assert_uint_eq(gi.consumers, 0);
    evs_group_info_free(&gi);

    evs_group_list_t list;
    ck_evs(evs_group_list(conn, &list));
    bool found = false;
    for (size_t i = 0; i < list.count; i++)
        found |= strcmp(list.groups[i].settings.name, g) == 0;
    ck_assert(found);
    evs_group_list_free(&list);

    evs_group_settings_t u = { .name = g, .strategy = EVS_GROUP_ROUND_ROBIN,
                               .ack_timeout_ms = 2000, .max_retries = 3,
                               .inflight_max_per_consumer = 5 };
    ck_evs(evs_group_update(conn, &u));
    ck_evs(evs_group_info(conn, g, &gi));
    ck_assert_int_eq(gi.settings.strategy, EVS_GROUP_ROUND_ROBIN);
    ck_assert_uint_eq(gi.settings.ack_timeout_ms, 2000);
    ck_assert_uint_eq(gi.settings.max_retries, 3);
    ck_assert_str_eq(gi.settings.stream, target); /* the stream stays */
    evs_group_info_free(&gi);

    ck_evs(evs_group_delete(conn, g));
    ck_assert_int_eq(evs_group_delete(conn, g), EVS_EGROUP_NOT_FOUND);
    ck_assert_int_eq(evs_group_info(conn, g, &gi), EVS_EGROUP_NOT_FOUND);
    ck_assert_ptr_null(gi.owner_);
    ck_assert_int_eq(evs_group_update(conn, &u), EVS_EGROUP_NOT_FOUND);
    ck_assert_int_eq(evs_group_replay_parked(conn, g), EVS_EGROUP_NOT_FOUND);
    evs_options_t o;
    opts_for(&o, g_server.port);
    evs_consumer_t *c = NULL;
    ck_assert_int_eq(evs_group_join(&o, g, 0, &c), EVS_EGROUP_NOT_FOUND);
    ck_assert_str_eq(evs_strerror(EVS_EGROUP_NOT_FOUND), "subscription group not found");
    ck_assert(evs_is_server_error(EVS_EGROUP_EXISTS));
    /* refused locally */
    evs_group_settings_t bad = { .name = g };
    ck_assert_int_eq(evs_group_create(conn, &bad), -EINVAL);
    ck_assert_int_eq(evs_group_delete(conn, ""), -EINVAL);
    evs_close(conn);
}
END_TEST

/* ---- groups: consumers ---- */

/* Creates a group on "$ce-<cat>" from 0 with the given settings. */
static void group_make(evs_conn_t *conn, const char *g, const char *cat,
                       evs_group_strategy_t strategy, uint32_t ack_timeout_ms,
                       uint32_t max_retries)
{
    char target[96];
    snprintf(target, sizeof target, "$ce-%s", cat);
    evs_group_settings_t s = { .name = g, .stream = target, .strategy = strategy,
                               .ack_timeout_ms = ack_timeout_ms, .max_retries = max_retries };
    ck_evs(evs_group_create(conn, &s));
}

static evs_consumer_t *join(uint16_t port, const char *g, uint32_t inflight_max)
{
    evs_options_t o;
    opts_for(&o, port);
    evs_consumer_t *c = NULL;
    int err = evs_group_join(&o, g, inflight_max, &c);
    ck_assert_msg(err == 0, "join %s: %s (%s)", g, evs_strerror(err), evs_errmsg());
    return c;
}

/* A condition on a group's info, with its argument. */
typedef bool group_cond_fn(const evs_group_info_t *gi, uint64_t arg);

/* Nothing in flight and at least arg events acked. */
static bool group_acked(const evs_group_info_t *gi, uint64_t acked_min)
{
    return gi->inflight == 0 && gi->acked >= acked_min;
}

/* Nothing in flight and the checkpoint past the position arg. */
static bool group_checkpoint_past(const evs_group_info_t *gi, uint64_t position)
{
    return gi->inflight == 0 && gi->checkpoint > position;
}

/* Nothing in flight and arg events parked. */
static bool group_parked(const evs_group_info_t *gi, uint64_t parked)
{
    return gi->inflight == 0 && gi->parked == parked;
}

#define GROUP_POLL_US 20000

/* Acks and nacks are not waited for: polls the group's info until cond
 * holds, at most WAIT_MS, and leaves that info in *gi (the caller frees
 * it). Fails the test, saying what it last saw, if cond never holds. */
static void group_info_await(evs_conn_t *conn, const char *g, group_cond_fn *cond,
                             uint64_t arg, evs_group_info_t *gi)
{
    uint64_t deadline_ms = util_mono_ms() + WAIT_MS;
    for (;;) {
        ck_evs(evs_group_info(conn, g, gi));
        if (cond(gi, arg))
            return;
        ck_assert_msg(util_mono_ms() < deadline_ms,
                      "group %s after %d ms: inflight %u, acked %llu, parked %llu, "
                      "checkpoint %llu, redelivered %llu",
                      g, WAIT_MS, gi->inflight, (unsigned long long)gi->acked,
                      (unsigned long long)gi->parked, (unsigned long long)gi->checkpoint,
                      (unsigned long long)gi->redelivered);
        evs_group_info_free(gi);
        usleep(GROUP_POLL_US);
    }
}

#define SHARE_EVENTS 400

typedef struct {
    evs_consumer_t *c;
    atomic_int *total;      /* events received by all consumers together */
    int want_total;
    uint64_t positions[SHARE_EVENTS * 2];
    char streams[SHARE_EVENTS * 2][48];
    int64_t versions[SHARE_EVENTS * 2];
    int got;
} consumer_run_t;

#define CONSUME_MS_MAX 60000 /* for all of a test's events, however loaded the machine */

/* Consumes and acks until the consumers together have want_total events
 * (or CONSUME_MS_MAX has passed: the test then finds events missing). */
static void *consumer_main(void *arg)
{
    consumer_run_t *r = arg;
    uint64_t deadline_ms = util_mono_ms() + CONSUME_MS_MAX;
    while (atomic_load(r->total) < r->want_total && r->got < SHARE_EVENTS * 2) {
        evs_group_event_t ev;
        int err = evs_consumer_next(r->c, 200, &ev);
        if (err == EVS_ETIMEDOUT && util_mono_ms() < deadline_ms)
            continue;
        if (err)
            break;
        r->positions[r->got] = ev.event.position;
        r->versions[r->got] = ev.event.version;
        snprintf(r->streams[r->got], sizeof r->streams[r->got], "%s", ev.event.stream);
        r->got++;
        atomic_fetch_add(r->total, 1);
        evs_consumer_ack(r->c, ev.event.position);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(two_consumers_share_a_group_each_event_to_one)
{
    char g[64], cat[64], s1[96], s2[96];
    uniq("share-", g);
    uniq("shcat", cat);
    snprintf(s1, sizeof s1, "%s-1", cat);
    snprintf(s2, sizeof s2, "%s-2", cat);
    evs_conn_t *conn = test_connect(0);
    group_make(conn, g, cat, EVS_GROUP_ROUND_ROBIN, 30000, 3);
    append_n(conn, s1, "Tick", SHARE_EVENTS / 4, 10);
    static consumer_run_t r[2];
    atomic_int total = 0;
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i] = (consumer_run_t){ .c = join(g_server.port, g, 10), .total = &total,
                                 .want_total = SHARE_EVENTS };
        ck_assert_int_eq(pthread_create(&t[i], NULL, consumer_main, &r[i]), 0);
    }
    append_n(conn, s2, "Tick", SHARE_EVENTS / 4, 1);
    append_n(conn, s1, "Tick", SHARE_EVENTS / 2, 5);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    static uint64_t all[SHARE_EVENTS * 4];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(r[i].got > 0, "consumer %d got nothing", i);
        for (int k = 0; k < r[i].got; k++)
            all[n++] = r[i].positions[k];
    }
    ck_assert_int_eq(n, SHARE_EVENTS);
    qsort(all, (size_t)n, sizeof all[0], cmp_u64);
    for (int k = 1; k < n; k++)
        ck_assert_msg(all[k] != all[k - 1], "position %llu delivered twice",
                      (unsigned long long)all[k]);
    /* everything acked: the checkpoint passes the last event */
    evs_group_info_t gi;
    group_info_await(conn, g, group_checkpoint_past, all[n - 1], &gi);
    ck_assert_uint_eq(gi.consumers, 2);
    ck_assert_uint_ge(gi.acked, SHARE_EVENTS);
    evs_group_info_free(&gi);
    for (int i = 0; i < 2; i++) {
        evs_consumer_stats_t st;
        evs_consumer_stats(r[i].c, &st);
        ck_assert_uint_eq(st.ack_errors, 0);
        evs_consumer_close(r[i].c);
    }
    evs_close(conn);
}
END_TEST

#define REDELIVERY_ACK_TIMEOUT_MS 300
#define REDELIVERY_RETRIES_MAX 1000 /* never parked, however slow the test (not tested here) */

START_TEST(unacked_event_is_redelivered_after_the_ack_timeout)
{
    char g[64], cat[64], s[96];
    uniq("redeliver-", g);
    uniq("rdcat", cat);
    snprintf(s, sizeof s, "%s-1", cat);
    evs_conn_t *conn = test_connect(0);
    group_make(conn, g, cat, EVS_GROUP_ROUND_ROBIN, REDELIVERY_ACK_TIMEOUT_MS,
               REDELIVERY_RETRIES_MAX);
    evs_consumer_t *c = join(g_server.port, g, 0);
    /* The event is not delivered, so its ack deadline does not start, before
     * it is appended: from here to its redelivery is at least the ack
     * timeout, however loaded the machine (the upper bound is WAIT_MS). */
    uint64_t appended_ms = util_mono_ms();
    uint64_t pos = append_n(conn, s, "Tick", 1, 1);
    evs_group_event_t ev;
    ck_evs(evs_consumer_next(c, WAIT_MS, &ev));
    ck_assert_uint_eq(ev.event.position, pos);
    ck_assert_uint_eq(ev.retry_count, 0);
    ck_evs(evs_consumer_next(c, WAIT_MS, &ev)); /* not acked: it comes back */
    uint64_t redelivered_ms = util_mono_ms() - appended_ms;
    ck_assert_uint_eq(ev.event.position, pos);
    ck_assert_uint_eq(ev.retry_count, 1);
    ck_assert_msg(redelivered_ms >= REDELIVERY_ACK_TIMEOUT_MS,
                  "redelivered %lld ms after the append: the ack timeout is %d ms",
                  (long long)redelivered_ms, REDELIVERY_ACK_TIMEOUT_MS);
    ck_evs(evs_consumer_ack(c, pos));

    /* Once the server has applied the ack, the event never comes again. It
     * may have sent it again before (a test held up past another timeout):
     * those deliveries are in its count. */
    evs_group_info_t gi;
    group_info_await(conn, g, group_acked, 1, &gi);
    uint64_t deliveries_at_ack = 1 + gi.redelivered;
    evs_group_info_free(&gi);
    /* The anchor: a second event, left unacked until it comes back, shows
     * that an ack timeout has passed since. A redelivery of the first that
     * the ack failed to stop would have been due no later, so it would have
     * come before (the server scans deadlines in delivery order). */
    uint64_t pos2 = append_n(conn, s, "Tick", 1, 1);
    uint64_t deliveries = 2;
    for (;;) {
        ck_evs(evs_consumer_next(c, WAIT_MS, &ev));
        if (ev.event.position == pos) {
            deliveries++;
            continue;
        }
        ck_assert_uint_eq(ev.event.position, pos2);
        if (ev.retry_count > 0)
            break;
    }
    ck_assert_msg(deliveries == deliveries_at_ack,
                  "acked event delivered %llu times; %llu before the ack was applied",
                  (unsigned long long)deliveries, (unsigned long long)deliveries_at_ack);
    ck_evs(evs_consumer_ack(c, pos2));
    group_info_await(conn, g, group_acked, 2, &gi);
    ck_assert_uint_eq(gi.acked, 2);
    ck_assert_uint_ge(gi.redelivered, deliveries_at_ack);
    evs_group_info_free(&gi);
    evs_consumer_stats_t st;
    evs_consumer_stats(c, &st);
    ck_assert_uint_eq(st.acks_sent, 2);
    ck_assert_uint_ge(st.acks_done, 1); /* the first ack's answer came before pos2's */
    ck_assert_uint_eq(st.ack_errors, 0);
    evs_consumer_close(c);
    evs_close(conn);
}
END_TEST

START_TEST(many_events_acked_in_one_request)
{
    char g[64], cat[64], s[96];
    uniq("ackmany-", g);
    uniq("amcat", cat);
    snprintf(s, sizeof s, "%s-1", cat);
    evs_conn_t *conn = test_connect(0);
    group_make(conn, g, cat, EVS_GROUP_ROUND_ROBIN, 30000, 3);
    append_n(conn, s, "Tick", 20, 1);
    evs_consumer_t *c = join(g_server.port, g, 0);
    uint64_t positions[20];
    for (int i = 0; i < 20; i++) {
        evs_group_event_t ev;
        ck_evs(evs_consumer_next(c, WAIT_MS, &ev));
        positions[i] = ev.event.position;
    }
    ck_assert_int_eq(evs_consumer_ack_many(c, positions, 0), -EINVAL);
    ck_assert_int_eq(evs_consumer_ack_many(c, positions, EVS_ACK_MANY_MAX + 1), -EINVAL);
    ck_evs(evs_consumer_ack_many(c, positions, 20));
    evs_group_info_t gi;
    group_info_await(conn, g, group_acked, 20, &gi);
    ck_assert_uint_eq(gi.acked, 20);
    ck_assert_uint_gt(gi.checkpoint, positions[19]);
    evs_group_info_free(&gi);
    evs_consumer_stats_t st;
    evs_consumer_stats(c, &st);
    ck_assert_uint_eq(st.acks_sent, 1);
    ck_assert_uint_eq(st.ack_errors, 0);
    evs_consumer_close(c);
    evs_close(conn);
}
END_TEST

START_TEST(event_is_parked_after_max_retries_then_replayed)
{
    char g[64], cat[64], s[96], parked[96];
    uniq("park-", g);
    uniq("pkcat", cat);
    snprintf(s, sizeof s, "%s-1", cat);
    snprintf(parked, sizeof parked, "$parked-%s", g);
    evs_conn_t *conn = test_connect(0);
    const uint32_t max_retries = 2;
    group_make(conn, g, cat, EVS_GROUP_ROUND_ROBIN, 30000, max_retries);
    uint64_t pos = append_n(conn, s, "Tick", 1, 1);
    uint64_t pos2 = append_n(conn, s, "Tick", 1, 1);
    evs_consumer_t *c = join(g_server.port, g, 0);
    evs_group_event_t ev;
    uint32_t deliveries = 0;
    bool second_parked = false;
    while (deliveries < max_retries + 1 || !second_parked) {
        ck_evs(evs_consumer_next(c, WAIT_MS, &ev));
        if (ev.event.position == pos2) { /* nack park: parked at once */
            ck_assert(!second_parked);
            ck_evs(evs_consumer_nack(c, pos2, EVS_NACK_PARK, "bad"));
            second_parked = true;
            continue;
        }
        ck_assert_uint_eq(ev.event.position, pos);
        ck_assert_uint_eq(ev.retry_count, deliveries);
        deliveries++;
        ck_evs(evs_consumer_nack(c, pos, EVS_NACK_RETRY, "try again"));
    }
    /* The last nack parks the first event: both are in the dead-letter
     * stream, and nothing is in flight (as it would be, had the server
     * delivered it again instead). */
    evs_group_info_t gi;
    group_info_await(conn, g, group_parked, 2, &gi);
    evs_group_info_free(&gi);
    evs_read_t rq = { .stream = parked };
    evs_read_result_t rr;
    ck_evs(evs_read(conn, &rq, &rr));
    ck_assert_uint_eq(rr.count, 2);
    evs_read_result_free(&rr);
    /* replay: both come again, once each; ack them */
    ck_evs(evs_group_replay_parked(conn, g));
    bool replayed[2] = { false, false };
    for (int k = 0; k < 2; k++) {
        ck_evs(evs_consumer_next(c, WAIT_MS, &ev));
        ck_assert_str_eq(ev.event.stream, s);
        ck_assert_msg(ev.event.version < 2 && !replayed[ev.event.version],
                      "replay delivered version %lld", (long long)ev.event.version);
        replayed[ev.event.version] = true;
        ck_evs(evs_consumer_ack(c, ev.event.position));
    }
    /* Acked, neither comes again. The anchor: a new event nacked for a
     * retry comes back after the server has applied the acks sent before
     * the nack; an acked event it still meant to deliver would come first. */
    uint64_t pos3 = append_n(conn, s, "Tick", 1, 1);
    ck_evs(evs_consumer_next(c, WAIT_MS, &ev));
    ck_assert_uint_eq(ev.event.position, pos3);
    ck_evs(evs_consumer_nack(c, pos3, EVS_NACK_RETRY, "once more"));
    ck_evs(evs_consumer_next(c, WAIT_MS, &ev));
    ck_assert_uint_eq(ev.event.position, pos3);
    ck_assert_uint_eq(ev.retry_count, 1);
    ck_evs(evs_consumer_ack(c, pos3));
    evs_consumer_stats_t st;
    evs_consumer_stats(c, &st);
    ck_assert_uint_eq(st.ack_errors, 0);
    evs_consumer_close(c);
    evs_close(conn);
}
END_TEST

#define PIN_STREAMS 4
#define PIN_PER_STREAM 50

START_TEST(pinned_keeps_each_streams_events_on_one_consumer_in_order)
{
    char g[64], cat[64], s[96];
    uniq("pin-", g);
    uniq("pncat", cat);
    evs_conn_t *conn = test_connect(0);
    group_make(conn, g, cat, EVS_GROUP_PINNED, 30000, 3);
    static consumer_run_t r[3];
    atomic_int total = 0;
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i] = (consumer_run_t){ .c = join(g_server.port, g, 4), .total = &total,
                                 .want_total = PIN_STREAMS * PIN_PER_STREAM };
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, consumer_main, &r[i]), 0);
    for (int k = 0; k < PIN_PER_STREAM; k += 5)
        for (int i = 1; i <= PIN_STREAMS; i++) {
            snprintf(s, sizeof s, "%s-%d", cat, i);
            append_n(conn, s, "Tick", 5, 5);
        }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    int got_total = atomic_load(&total);
    ck_assert_int_eq(got_total, PIN_STREAMS * PIN_PER_STREAM);
    for (int st = 1; st <= PIN_STREAMS; st++) {
        snprintf(s, sizeof s, "%s-%d", cat, st);
        int owner = -1;
        int64_t next_version = 0;
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < r[i].got; k++) {
                if (strcmp(r[i].streams[k], s) != 0)
                    continue;
                ck_assert_msg(owner == -1 || owner == i, "%s went to consumers %d and %d", s,
                              owner, i);
                owner = i;
                ck_assert_msg(r[i].versions[k] == next_version, "%s: version %lld, expected %lld",
                              s, (long long)r[i].versions[k], (long long)next_version);
                next_version++;
            }
        ck_assert_int_eq(next_version, PIN_PER_STREAM);
    }
    for (int i = 0; i < 3; i++)
        evs_consumer_close(r[i].c);
    evs_close(conn);
}
END_TEST

START_TEST(consumer_rejoins_after_a_server_restart_at_least_once)
{
    test_server_t srv;
    own_server_start(&srv);
    evs_options_t o;
    opts_for(&o, srv.port);
    evs_conn_t *conn = NULL;
    ck_evs(evs_connect(&o, &conn));
    group_make(conn, "rj", "rjcat", EVS_GROUP_ROUND_ROBIN, 2000, 10);
    append_n(conn, "rjcat-1", "Tick", 100, 10);
    evs_consumer_t *c = join(srv.port, "rj", 10);
    static bool seen[200];
    memset(seen, 0, sizeof seen);
    evs_group_event_t ev;
    for (int i = 0; i < 30; i++) {
        ck_evs(evs_consumer_next(c, WAIT_MS, &ev));
        ck_assert_int_lt(ev.event.version, 200);
        seen[ev.event.version] = true;
        ck_evs(evs_consumer_ack(c, ev.event.position));
    }
    evs_close(conn);
    ck_assert_int_eq(test_server_stop(&srv), 0);
    ck_assert_int_eq(test_server_restart_same_port(&srv), 0);
    ck_evs(evs_connect(&o, &conn));
    append_n(conn, "rjcat-1", "Tick", 100, 10);
    int missing = 200;
    for (int i = 0; i < 200; i++)
        missing -= seen[i];
    while (missing > 0) {
        int err = evs_consumer_next(c, WAIT_MS, &ev);
        ck_assert_msg(err == 0, "%d events never came: %s (%s)", missing, evs_strerror(err),
                      evs_errmsg());
        ck_assert_int_lt(ev.event.version, 200);
        if (!seen[ev.event.version])
            missing--;
        seen[ev.event.version] = true;
        evs_consumer_ack(c, ev.event.position);
    }
    evs_consumer_stats_t st;
    evs_consumer_stats(c, &st);
    ck_assert_uint_ge(st.rejoins, 1);
    evs_consumer_close(c);
    evs_close(conn);
    test_server_destroy(&srv);
}
END_TEST

START_TEST(deleting_a_group_ends_its_consumers)
{
    char g[64], cat[64];
    uniq("del-", g);
    uniq("dlcat", cat);
    evs_conn_t *conn = test_connect(0);
    group_make(conn, g, cat, EVS_GROUP_ROUND_ROBIN, 30000, 3);
    evs_consumer_t *c = join(g_server.port, g, 0);
    ck_evs(evs_group_delete(conn, g));
    evs_group_event_t ev;
    int err = evs_consumer_next(c, WAIT_MS, &ev);
    ck_assert_msg(err == EVS_EGROUP_NOT_FOUND, "after delete: %s (%s)", evs_strerror(err),
                  evs_errmsg());
    ck_assert_int_eq(evs_consumer_next(c, 0, &ev), EVS_EGROUP_NOT_FOUND);
    evs_consumer_close(c);
    evs_close(conn);
}
END_TEST

static Suite *subs_suite(void)
{
    Suite *s = suite_create("client_subs");
    TCase *tc = tcase_create("subscriptions");
    tcase_add_unchecked_fixture(tc, server_setup, server_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stream_catch_up_then_live_without_gap_or_duplicate);
    tcase_add_test(tc, stream_switch_over_race_with_a_concurrent_writer);
    tcase_add_test(tc, category_catch_up_then_live_with_a_concurrent_writer);
    tcase_add_test(tc, all_catch_up_then_live_with_a_concurrent_writer);
    tcase_add_test(tc, stream_subscription_from_a_version);
    tcase_add_test(tc, filters_by_type_list_type_prefix_and_stream_prefix);
    tcase_add_test(tc, from_end_delivers_only_new_events);
    tcase_add_test(tc, many_subscribers_at_once_each_get_everything);
    tcase_add_test(tc, slow_subscriber_is_served_from_disk_with_the_servers_memory_bounded);
    tcase_add_test(tc, closing_a_subscription_mid_stream_leaves_the_server_serving);
    tcase_add_test(tc, subscribe_checks_its_arguments);
    suite_add_tcase(s, tc);
    tc = tcase_create("groups");
    tcase_add_unchecked_fixture(tc, server_setup, server_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, group_create_list_info_update_delete_and_their_errors);
    tcase_add_test(tc, two_consumers_share_a_group_each_event_to_one);
    tcase_add_test(tc, unacked_event_is_redelivered_after_the_ack_timeout);
    tcase_add_test(tc, many_events_acked_in_one_request);
    tcase_add_test(tc, event_is_parked_after_max_retries_then_replayed);
    tcase_add_test(tc, pinned_keeps_each_streams_events_on_one_consumer_in_order);
    tcase_add_test(tc, deleting_a_group_ends_its_consumers);
    suite_add_tcase(s, tc);
    tc = tcase_create("restart");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, subscription_resumes_after_a_server_restart_without_loss_or_duplicate);
    tcase_add_test(tc, subscription_survives_a_crash_during_concurrent_appends);
    tcase_add_test(tc, consumer_rejoins_after_a_server_restart_at_least_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(subs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
