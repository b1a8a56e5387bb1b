/* test_log_crash.c -- crash safety: a child process appends with durability
 * "always" and reports every acknowledged batch to the parent through a
 * pipe; the parent kills it with SIGKILL at a random moment, reopens the log
 * and checks that
 *   - log_open succeeds (the torn tail, if any, is cut),
 *   - every acknowledged batch is there, at its position, byte for byte,
 *   - every batch in the log is whole (no part of a batch is visible),
 *   - batches seen whole after an earlier crash are still there,
 *   - stream versions run 0, 1, 2, ... without gaps,
 * then appends one batch itself and closes; the next round's child appends
 * more to the same log.
 *
 * Each batch is described by one 64-bit seed: its streams, events, sizes,
 * ids and contents all derive from it, and every event's metadata holds
 * (seed, index, count), so the parent can check any batch it finds.
 *
 * EVSTORE_TEST_SEED=<n> changes the random delays and batch seeds.
 */
#define _GNU_SOURCE
#include "log.h"
#include "test_util.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 30u
#define ROUNDS_SECONDS_MAX 100.0 /* stop early past this, to bound the run */
#define KILL_DELAY_US_MIN 2000u
#define KILL_DELAY_US_MAX 200000u
#define SEGMENT_BYTES (128u * 1024)
#define CRASH_STREAMS 8u
#define BATCH_EVENTS_MAX 6u
#define EVENT_DATA_MAX 12000u /* big batches make writes long enough to tear */
#define INFLIGHT_MAX 8u
#define PARENT_ROUND_TAG 0xffffffu

/* ---- batches derived from a seed ----------------------------------------- */

typedef struct {
    uint32_t count;        /* events, 1..BATCH_EVENTS_MAX */
    uint32_t stream_count; /* 1 or 2 */
    uint32_t split;        /* events of the first stream */
    uint32_t streams[2];
    uint32_t data_len[BATCH_EVENTS_MAX];
} shape_t;

static void shape_of(uint64_t seed, shape_t *sh) {
    uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1;
    memset(sh, 0, sizeof *sh);
    sh->count = 1 + (uint32_t)tu_rand_below(&rng, BATCH_EVENTS_MAX);
    sh->stream_count = (sh->count >= 2 && tu_rand_below(&rng, 3) == 0) ? 2 : 1;
    sh->split =
        sh->stream_count == 2 ? 1 + (uint32_t)tu_rand_below(&rng, sh->count - 1) : sh->count;
    sh->streams[0] = (uint32_t)tu_rand_below(&rng, CRASH_STREAMS);
    sh->streams[1] =
        (sh->streams[0] + 1 + (uint32_t)tu_rand_below(&rng, CRASH_STREAMS - 1)) % CRASH_STREAMS;
    for (uint32_t i = 0; i < sh->count; i++) {
        uint64_t r = tu_rand_below(&rng, 10);
        sh->data_len[i] =
            r == 0   ? EVENT_DATA_MAX / 2 + (uint32_t)tu_rand_below(&rng, EVENT_DATA_MAX / 2)
            : r == 1 ? 300 + (uint32_t)tu_rand_below(&rng, 2000)
                     : (uint32_t)tu_rand_below(&rng, 300);
    }
}

static void stream_name(char *buf, size_t cap, uint32_t s) { snprintf(buf, cap, "crash-%u", s); }

static void meta_of(uint8_t meta[24], uint64_t seed, uint32_t i, uint32_t count) {
    tu_id(meta, seed, ((uint64_t)count << 32) | i);
    for (int k = 16; k < 24; k++) meta[k] = (uint8_t)(0xc0 + k);
}

typedef struct {
    shape_t sh;
    char names[2][32];
    uint8_t meta[BATCH_EVENTS_MAX][24];
    uint8_t data[BATCH_EVENTS_MAX][EVENT_DATA_MAX];
    log_event_in_t in[BATCH_EVENTS_MAX];
    log_stream_append_t sa[2];
    log_append_t req;
} batch_t;

static void batch_build(batch_t *b, uint64_t seed) {
    memset(b, 0, sizeof *b);
    shape_of(seed, &b->sh);
    for (uint32_t i = 0; i < b->sh.count; i++) {
        tu_id(b->in[i].id, seed, i);
        b->in[i].type = "Crash";
        b->in[i].type_len = 5;
        meta_of(b->meta[i], seed, i, b->sh.count);
        b->in[i].metadata = b->meta[i];
        b->in[i].metadata_len = 24;
        tu_fill(b->data[i], b->sh.data_len[i], seed ^ ((uint64_t)i << 56), (i & 1) != 0);
        b->in[i].data = b->data[i];
        b->in[i].data_len = b->sh.data_len[i];
    }
    for (uint32_t s = 0; s < b->sh.stream_count; s++) {
        stream_name(b->names[s], sizeof b->names[s], b->sh.streams[s]);
        b->sa[s].stream = b->names[s];
        b->sa[s].stream_len = strlen(b->names[s]);
        b->sa[s].expected_version = LOG_EXPECT_ANY;
        b->sa[s].events = s == 0 ? b->in : b->in + b->sh.split;
        b->sa[s].event_count = s == 0 ? b->sh.split : b->sh.count - b->sh.split;
    }
    b->req.streams = b->sa;
    b->req.stream_count = b->sh.stream_count;
}

/* ---- the child ------------------------------------------------------------ */

typedef struct {
    uint64_t first_position;
    uint32_t event_count;
    uint32_t reserved;
    uint64_t seed;
} ack_t;

typedef struct {
    batch_t batch;
    uint64_t seed;
    bool busy;
} child_slot_t;

static int g_ack_fd = -1;
static uint32_t g_inflight;

static void child_cb(void *ctx, const log_append_result_t *res) {
    child_slot_t *slot = ctx;
    if (res->status != 0) _exit(20); /* an I/O error: the parent reports it */
    ack_t a = {
        .first_position = res->first_position, .event_count = res->event_count, .seed = slot->seed};
    if (res->event_count != slot->batch.sh.count) _exit(21);
    if (write(g_ack_fd, &a, sizeof a) != (ssize_t)sizeof a) _exit(22);
    slot->busy = false;
    g_inflight--;
}

/* Appends until killed. Never returns. */
static void child_run(const char *dir, int ack_fd, uint64_t seed_base, bool prepare) {
    g_ack_fd = ack_fd;
    log_config_t cfg;
    tu_config(&cfg, dir, SEGMENT_BYTES, prepare);
    cfg.durability = LOG_DURABILITY_ALWAYS;
    cfg.compress_threshold_bytes = 512;
    log_t *log = NULL;
    log_recovery_t rec;
    int rc = log_open(&cfg, &log, &rec);
    if (rc != 0) {
        fprintf(stderr, "crash child: log_open: %d %s (%s)\n", rc, log_strerror(rc), rec.problem);
        _exit(10);
    }
    static child_slot_t slots[INFLIGHT_MAX];
    uint64_t counter = 0;
    for (;;) {
        for (uint32_t i = 0; i < INFLIGHT_MAX && counter < 0xffffffu; i++) {
            if (slots[i].busy) continue;
            slots[i].seed = seed_base | counter;
            batch_build(&slots[i].batch, slots[i].seed);
            log_append_result_t failure;
            rc = log_append(log, &slots[i].batch.req, child_cb, &slots[i], &failure);
            if (rc == LOG_EBUSY) break;
            if (rc != 0) {
                fprintf(stderr, "crash child: log_append: %d %s\n", rc, log_strerror(rc));
                _exit(11);
            }
            slots[i].busy = true;
            g_inflight++;
            counter++;
        }
        rc = log_poll(log, -1);
        if (rc < 0) {
            fprintf(stderr, "crash child: log_poll: %d %s\n", rc, log_strerror(rc));
            _exit(12);
        }
    }
}

/* ---- the parent's check ---------------------------------------------------- */

typedef struct {
    uint64_t seed;
    uint64_t first_position;
    uint32_t count;
} seen_t;

typedef struct {
    seen_t *v;
    size_t n, cap;
} seenvec_t;

static void seen_push(seenvec_t *s, uint64_t seed, uint64_t first, uint32_t count) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        ck_assert_ptr_nonnull(s->v);
    }
    s->v[s->n++] = (seen_t){.seed = seed, .first_position = first, .count = count};
}

static int cmp_seen(const void *a, const void *b) {
    const seen_t *x = a, *y = b;
    return x->seed < y->seed ? -1 : x->seed > y->seed;
}

static const seen_t *seen_find(const seenvec_t *s, uint64_t seed) {
    seen_t key = {.seed = seed};
    return bsearch(&key, s->v, s->n, sizeof *s->v, cmp_seen);
}

static uint64_t g_seed;
static uint32_t g_round;
#define CTX_FMT "seed %" PRIu64 " round %u: "
#define CTX g_seed, g_round

/* Walks $all: every batch whole, in order, with the right bytes; stream
 * versions without gaps. Fills *found (sorted by seed). */
static void walk_log(log_t *log, seenvec_t *found) {
    tu_events_t evs = {0};
    int rc = tu_read_all(log, "$all", 0, false, 1000, NULL, &evs, NULL);
    tu_require(rc == 0, CTX_FMT "read $all: %d %s", CTX, rc, log_strerror(rc));
    log_stats_t st;
    log_stats(log, &st);
    tu_require(st.head_position == evs.n, CTX_FMT "head %" PRIu64 " but $all has %zu events", CTX,
               st.head_position, evs.n);
    int64_t next_version[CRASH_STREAMS] = {0};
    static batch_t want;
    size_t k = 0;
    while (k < evs.n) {
        const tu_read_event_t *e = &evs.v[k];
        tu_require(e->position == k, CTX_FMT "position %" PRIu64 " at index %zu", CTX, e->position,
                   k);
        tu_require(e->metadata_len == 24, CTX_FMT "metadata of %zu: %zu bytes", CTX, k,
                   e->metadata_len);
        uint64_t seed = 0, second = 0;
        for (int i = 7; i >= 0; i--) {
            seed = (seed << 8) | e->metadata[i];
            second = (second << 8) | e->metadata[8 + i];
        }
        tu_require((uint32_t)second == 0, CTX_FMT "a batch starts mid-way at position %zu", CTX, k);
        batch_build(&want, seed);
        tu_require(want.sh.count == (uint32_t)(second >> 32), CTX_FMT "batch size at %zu", CTX, k);
        tu_require(k + want.sh.count <= evs.n,
                   CTX_FMT "partial batch at the end: %zu of %u events at %zu", CTX, evs.n - k,
                   want.sh.count, k);
        for (uint32_t i = 0; i < want.sh.count; i++) {
            const tu_read_event_t *x = &evs.v[k + i];
            uint32_t s = i < want.sh.split ? 0 : 1;
            tu_require(memcmp(x->id, want.in[i].id, 16) == 0,
                       CTX_FMT "batch %" PRIx64 " event %u: id differs (partial batch?)", CTX, seed,
                       i);
            tu_require(memcmp(x->metadata, want.meta[i], 24) == 0, CTX_FMT "metadata differs", CTX);
            tu_require(strcmp(x->stream, want.names[s]) == 0, CTX_FMT "stream %s, want %s", CTX,
                       x->stream, want.names[s]);
            tu_require(x->data_len == want.in[i].data_len &&
                           memcmp(x->data, want.data[i], x->data_len) == 0,
                       CTX_FMT "batch %" PRIx64 " event %u: data differs", CTX, seed, i);
            uint32_t sid = want.sh.streams[s];
            tu_require(x->version == next_version[sid],
                       CTX_FMT "%s: version %" PRId64 ", want %" PRId64, CTX, x->stream, x->version,
                       next_version[sid]);
            next_version[sid]++;
        }
        seen_push(found, seed, k, want.sh.count);
        k += want.sh.count;
    }
    tu_events_clear(&evs);
    qsort(found->v, found->n, sizeof *found->v, cmp_seen);
    for (size_t i = 1; i < found->n; i++)
        tu_require(found->v[i].seed != found->v[i - 1].seed,
                   CTX_FMT "batch %" PRIx64 " is in the log twice", CTX, found->v[i].seed);
    for (uint32_t s = 0; s < CRASH_STREAMS; s++) {
        char name[32];
        stream_name(name, sizeof name, s);
        int64_t v = -99;
        int vrc = log_stream_version(log, name, strlen(name), &v);
        if (next_version[s] == 0)
            ck_assert_int_eq(vrc, LOG_ENOT_FOUND);
        else
            tu_require(vrc == 0 && v == next_version[s] - 1, CTX_FMT "version of %s", CTX, name);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(acknowledged_batches_survive_sigkill_and_no_batch_is_partial) {
    const char *env = getenv("EVSTORE_TEST_SEED");
    g_seed = env && *env ? strtoull(env, NULL, 0) : 0xc0ffee;
    printf("test_log_crash: seed %" PRIu64 "\n", g_seed);
    fflush(stdout);
    uint64_t rng = g_seed;
    char dir[512];
    ck_assert_int_eq(tu_dir_make(dir, sizeof dir), 0);

    static seenvec_t acked;   /* acknowledged to a child, or appended by the parent */
    static seenvec_t durable; /* seen whole after a recovery */
    memset(&acked, 0, sizeof acked);
    memset(&durable, 0, sizeof durable);
    double start = now_s();
    uint32_t rounds = 0, acks_total = 0, torn_rounds = 0;
    for (g_round = 0; g_round < ROUNDS && now_s() - start < ROUNDS_SECONDS_MAX; g_round++) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        uint64_t seed_base = (uint64_t)(g_round + 1) << 32 ^ (g_seed << 48);
        bool prepare = g_round % 2 == 0;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            child_run(dir, fds[1], seed_base, prepare);
            _exit(13);
        }
        close(fds[1]);
        uint32_t delay = KILL_DELAY_US_MIN +
                         (uint32_t)tu_rand_below(&rng, KILL_DELAY_US_MAX - KILL_DELAY_US_MIN);
        usleep(delay);
        kill(pid, SIGKILL);
        /* collect the acknowledgements until the pipe closes */
        size_t acked_before = acked.n;
        for (;;) {
            ack_t a;
            ssize_t got = read(fds[0], &a, sizeof a);
            if (got == 0) break;
            if (got < 0 && errno == EINTR) continue;
            ck_assert_int_eq(got, (ssize_t)sizeof a);
            seen_push(&acked, a.seed, a.first_position, a.event_count);
        }
        close(fds[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                      CTX_FMT "the child ended by itself (status 0x%x)", CTX, status);
        acks_total += (uint32_t)(acked.n - acked_before);

        /* recover and check */
        log_config_t cfg;
        tu_config(&cfg, dir, SEGMENT_BYTES, !prepare);
        log_t *log = NULL;
        log_recovery_t rec;
        int rc = log_open(&cfg, &log, &rec);
        ck_assert_msg(rc == 0, CTX_FMT "log_open after SIGKILL: %d %s (%s)", CTX, rc,
                      log_strerror(rc), rec.problem);
        torn_rounds += rec.torn_bytes_cut > 0;
        seenvec_t found = {0};
        walk_log(log, &found);
        qsort(acked.v, acked.n, sizeof *acked.v, cmp_seen);
        for (size_t i = 0; i < acked.n; i++) {
            const seen_t *f = seen_find(&found, acked.v[i].seed);
            tu_require(f != NULL, CTX_FMT "acknowledged batch %" PRIx64 " at %" PRIu64 " is lost",
                       CTX, acked.v[i].seed, acked.v[i].first_position);
            tu_require(
                f->first_position == acked.v[i].first_position && f->count == acked.v[i].count,
                CTX_FMT "batch %" PRIx64 " at %" PRIu64 "+%u, acknowledged at %" PRIu64 "+%u", CTX,
                f->seed, f->first_position, f->count, acked.v[i].first_position, acked.v[i].count);
        }
        for (size_t i = 0; i < durable.n; i++) {
            const seen_t *f = seen_find(&found, durable.v[i].seed);
            tu_require(f != NULL && f->first_position == durable.v[i].first_position,
                       CTX_FMT "batch %" PRIx64 " recovered earlier is gone", CTX,
                       durable.v[i].seed);
        }
        uint64_t events = 0;
        for (size_t i = 0; i < found.n; i++) events += found.v[i].count;
        ck_assert_msg(rec.events == events,
                      CTX_FMT "recovery reports %" PRIu64 " events, the log has %" PRIu64, CTX,
                      rec.events, events);
        free(durable.v);
        durable = found;

        /* the recovered log takes appends */
        static batch_t b;
        uint64_t pseed = ((uint64_t)(g_round + 1) << 32 ^ (g_seed << 48)) | PARENT_ROUND_TAG;
        batch_build(&b, pseed);
        log_append_result_t res;
        rc = log_append_wait(log, &b.req, &res);
        ck_assert_msg(rc == 0, CTX_FMT "append after recovery: %d %s", CTX, rc, log_strerror(rc));
        seen_push(&acked, pseed, res.first_position, res.event_count);
        seen_push(&durable, pseed, res.first_position, res.event_count);
        qsort(durable.v, durable.n, sizeof *durable.v, cmp_seen);
        ck_assert_int_eq(log_close(log), 0);
        rounds++;
    }
    printf(
        "test_log_crash: %u rounds, %u acknowledged batches, %zu batches in the log, %u torn tails "
        "cut\n",
        rounds, acks_total, durable.n, torn_rounds);
    ck_assert_uint_ge(rounds, 5);
    ck_assert_uint_gt(acks_total, 0);
    free(acked.v);
    free(durable.v);
    ck_assert_int_eq(tu_dir_remove(dir), 0);
}
END_TEST

int main(void) {
    if (tu_root_make("crash") == NULL) {
        perror("tu_root_make");
        return 2;
    }
    Suite *s = suite_create("log_crash");
    TCase *tc = tcase_create("sigkill");
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, acknowledged_batches_survive_sigkill_and_no_batch_is_partial);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_root_remove();
    return failed == 0 ? 0 : 1;
}
