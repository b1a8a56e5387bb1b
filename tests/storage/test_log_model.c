/* test_log_model.c -- a randomized test of the log against an in-memory
 * model. Thousands of random batches (several streams, several events,
 * sizes from empty to large and compressible, expected versions that are
 * sometimes wrong, retries of earlier batches, groups of asynchronous
 * appends sharing one commit) are applied both to the log and to the model,
 * with the log closed and reopened (with another configuration) every ~200
 * steps. Every outcome is compared with the model; whole reads of streams,
 * categories and $all are compared periodically and after every reopen.
 *
 * The seed is printed; EVSTORE_TEST_SEED=<n> replays a run.
 * EVSTORE_MODEL_STEPS=<n> changes the number of steps.
 */
#define _GNU_SOURCE
#include "log.h"
#include "test_util.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_DEFAULT 0x5eed2024ull
#define STEPS_DEFAULT 3000u
#define STREAMS 50u
#define CATEGORIES 4u
#define BATCH_STREAMS_MAX 5u
#define STREAM_EVENTS_MAX 8u
#define BATCH_EVENTS_MAX (BATCH_STREAMS_MAX * STREAM_EVENTS_MAX)
#define HISTORY 16u       /* recent successful batches kept for retries */
#define GROUP_MAX 4u      /* batches submitted before one drain */
#define REOPEN_EVERY 200u /* on average */
#define CHECK_EVERY 25u   /* partial comparison period */
#define SEGMENT_BYTES (128u * 1024)

static const char *const CATEGORY_NAMES[CATEGORIES] = {"acct", "cart", "ship", "pay"};
static const char *const TYPE_NAMES[] = {"Created", "Updated", "Deleted", "Noted", "Paid"};
#define TYPE_COUNT (sizeof TYPE_NAMES / sizeof TYPE_NAMES[0])

/* ---- the model ----------------------------------------------------------- */

typedef struct {
    uint32_t stream;
    int64_t version;
    uint64_t tag; /* id is (tag, idx) */
    uint32_t idx;
    uint8_t type;
    bool compressible;
    uint32_t metadata_len;
    uint32_t data_len;
    uint64_t seed;
    int64_t timestamp_ns; /* 0: the engine chooses */
} mev_t;

typedef struct {
    uint64_t *v;
    size_t n, cap;
} posvec_t;

typedef struct {
    char name[32];
    int category; /* -1: none */
    posvec_t pos; /* positions of versions 0, 1, ... */
} mstream_t;

typedef struct {
    mev_t *ev; /* by position */
    size_t n, cap;
    mstream_t streams[STREAMS];
    posvec_t categories[CATEGORIES];
} model_t;

static void posvec_push(posvec_t *p, uint64_t x) {
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->v = realloc(p->v, p->cap * sizeof *p->v);
        ck_assert_ptr_nonnull(p->v);
    }
    p->v[p->n++] = x;
}

static int64_t model_version(const model_t *m, uint32_t s) {
    return (int64_t)m->streams[s].pos.n - 1;
}

static void model_init(model_t *m) {
    memset(m, 0, sizeof *m);
    for (uint32_t s = 0; s < STREAMS; s++) {
        mstream_t *ms = &m->streams[s];
        if (s >= 48) { /* two streams without a category */
            snprintf(ms->name, sizeof ms->name, "solo%u", s);
            ms->category = -1;
        } else {
            ms->category = (int)(s % CATEGORIES);
            snprintf(ms->name, sizeof ms->name, "%s-%u", CATEGORY_NAMES[ms->category], s);
        }
    }
}

static void model_free(model_t *m) {
    free(m->ev);
    for (uint32_t s = 0; s < STREAMS; s++) free(m->streams[s].pos.v);
    for (uint32_t c = 0; c < CATEGORIES; c++) free(m->categories[c].v);
}

static void model_append(model_t *m, const mev_t *e_in) {
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 1024;
        m->ev = realloc(m->ev, m->cap * sizeof *m->ev);
        ck_assert_ptr_nonnull(m->ev);
    }
    mev_t e = *e_in;
    mstream_t *ms = &m->streams[e.stream];
    e.version = (int64_t)ms->pos.n;
    uint64_t position = m->n;
    m->ev[m->n++] = e;
    posvec_push(&ms->pos, position);
    if (ms->category >= 0) posvec_push(&m->categories[ms->category], position);
}

/* ---- batches ----------------------------------------------------------- */

typedef struct {
    uint32_t stream_count;
    uint32_t streams[BATCH_STREAMS_MAX];
    int64_t expected[BATCH_STREAMS_MAX];
    uint32_t counts[BATCH_STREAMS_MAX];
    uint32_t event_count;
    mev_t ev[BATCH_EVENTS_MAX]; /* in request order */
    uint64_t first_position;    /* once written */
} mbatch_t;

/* The engine's request for a batch, owning the event bytes. */
typedef struct {
    tu_event_t ev[BATCH_EVENTS_MAX];
    log_event_in_t in[BATCH_EVENTS_MAX];
    log_stream_append_t sa[BATCH_STREAMS_MAX];
    log_append_t req;
} request_t;

static void request_build(request_t *r, const model_t *m, const mbatch_t *b) {
    memset(r, 0, sizeof *r);
    uint32_t k = 0;
    for (uint32_t s = 0; s < b->stream_count; s++) {
        r->sa[s].stream = m->streams[b->streams[s]].name;
        r->sa[s].stream_len = strlen(r->sa[s].stream);
        r->sa[s].expected_version = b->expected[s];
        r->sa[s].events = &r->in[k];
        r->sa[s].event_count = b->counts[s];
        for (uint32_t i = 0; i < b->counts[s]; i++, k++) {
            const mev_t *e = &b->ev[k];
            ck_assert_int_eq(tu_event_make(&r->ev[k], e->tag, e->idx, TYPE_NAMES[e->type],
                                           e->metadata_len, e->data_len, e->seed, e->compressible),
                             0);
            r->ev[k].timestamp_ns = e->timestamp_ns;
            r->in[k] = tu_event_in(&r->ev[k]);
        }
    }
    r->req.streams = r->sa;
    r->req.stream_count = b->stream_count;
}

static void request_free(request_t *r) {
    for (uint32_t k = 0; k < BATCH_EVENTS_MAX; k++) tu_event_free(&r->ev[k]);
}

static uint32_t pick_size(uint64_t *rng, bool *compressible) {
    uint64_t r = tu_rand_below(rng, 100);
    *compressible = false;
    if (r < 60) return (uint32_t)tu_rand_below(rng, 120);
    if (r < 90) return 120 + (uint32_t)tu_rand_below(rng, 800);
    if (r < 98) return 1000 + (uint32_t)tu_rand_below(rng, 3000);
    *compressible = true; /* large, compressible */
    return 4000 + (uint32_t)tu_rand_below(rng, 10000);
}

/* An expected version for stream s: mostly right, sometimes wrong. Sets
 * *wrong when it cannot match. */
static int64_t pick_expected(uint64_t *rng, const model_t *m, uint32_t s, bool *wrong) {
    int64_t cur = model_version(m, s);
    uint64_t r = tu_rand_below(rng, 100);
    *wrong = false;
    if (r < 30) return LOG_EXPECT_ANY;
    if (r < 70) {
        if (cur >= 0) return cur;
        return LOG_EXPECT_NO_STREAM;
    }
    if (r < 88) return cur >= 0 ? LOG_EXPECT_STREAM_EXISTS : LOG_EXPECT_NO_STREAM;
    /* wrong */
    *wrong = true;
    switch (tu_rand_below(rng, 3)) {
    case 0:
        return cur + 1 + (int64_t)tu_rand_below(rng, 3); /* ahead of the stream */
    case 1:
        if (cur >= 1) return (int64_t)tu_rand_below(rng, (uint64_t)cur); /* behind it */
        return cur >= 0 ? LOG_EXPECT_NO_STREAM : 0;
    default:
        return cur >= 0 ? LOG_EXPECT_NO_STREAM : LOG_EXPECT_STREAM_EXISTS;
    }
}

static uint32_t g_wrong_per_mille = 40; /* chance a stream's expected version is picked wrong */

static void batch_make(mbatch_t *b, uint64_t *rng, const model_t *m, uint64_t tag,
                       bool *any_wrong) {
    memset(b, 0, sizeof *b);
    b->stream_count = 1 + (uint32_t)tu_rand_below(rng, BATCH_STREAMS_MAX);
    *any_wrong = false;
    uint32_t raw = 0;
    bool have_large = false;
    for (uint32_t s = 0; s < b->stream_count; s++) {
        uint32_t pick;
        bool dup;
        do { /* distinct streams */
            pick = (uint32_t)tu_rand_below(rng, STREAMS);
            dup = false;
            for (uint32_t t = 0; t < s; t++) dup |= b->streams[t] == pick;
        } while (dup);
        b->streams[s] = pick;
        bool wrong = false;
        if (tu_rand_below(rng, 1000) < g_wrong_per_mille) {
            /* force a wrong pick */
            do b->expected[s] = pick_expected(rng, m, pick, &wrong);
            while (!wrong);
        } else {
            do b->expected[s] = pick_expected(rng, m, pick, &wrong);
            while (wrong);
        }
        *any_wrong |= wrong;
        b->counts[s] = 1 + (uint32_t)tu_rand_below(rng, STREAM_EVENTS_MAX);
        for (uint32_t i = 0; i < b->counts[s]; i++) {
            mev_t *e = &b->ev[b->event_count];
            e->stream = pick;
            e->tag = tag;
            e->idx = b->event_count;
            e->type = (uint8_t)tu_rand_below(rng, TYPE_COUNT);
            e->seed = tu_rand_next(rng);
            e->data_len = pick_size(rng, &e->compressible);
            if (e->compressible && (have_large || raw > 40000)) {
                e->compressible = false; /* one large payload per batch keeps batches small */
                e->data_len = (uint32_t)tu_rand_below(rng, 100);
            }
            have_large |= e->compressible;
            e->metadata_len =
                (uint32_t)tu_rand_below(rng, 4) == 0 ? 0 : (uint32_t)tu_rand_below(rng, 64);
            e->timestamp_ns = tu_rand_below(rng, 4) == 0 ? 0 : 1600000000000000000LL + (int64_t)tag;
            raw += e->data_len + e->metadata_len;
            b->event_count++;
        }
    }
}

/* What an append of b to the model's current state must return: 0, or
 * LOG_EWRONG_VERSION with the streams that mismatch marked in bad[]. */
static int batch_expect(const model_t *m, const mbatch_t *b, bool bad[BATCH_STREAMS_MAX]) {
    int want = 0;
    for (uint32_t s = 0; s < b->stream_count; s++) {
        int64_t cur = model_version(m, b->streams[s]);
        int64_t exp = b->expected[s];
        bool ok = exp == LOG_EXPECT_ANY ||
                  (exp == LOG_EXPECT_NO_STREAM && cur == LOG_VERSION_NONE) ||
                  (exp == LOG_EXPECT_STREAM_EXISTS && cur >= 0) || exp == cur;
        bad[s] = !ok;
        if (!ok) want = LOG_EWRONG_VERSION;
    }
    return want;
}

/* ---- comparing reads with the model -------------------------------------- */

static uint64_t g_seed;
static uint32_t g_step;
static uint8_t *g_scratch;

#define CTX_FMT "seed %" PRIu64 " step %u: "
#define CTX g_seed, g_step

static void assert_event(const model_t *m, uint64_t position, const tu_read_event_t *r,
                         const char *what) {
    tu_require(position < m->n, CTX_FMT "%s: position %" PRIu64 " beyond the model", CTX, what,
               position);
    const mev_t *e = &m->ev[position];
    const mstream_t *ms = &m->streams[e->stream];
    uint8_t id[16];
    tu_id(id, e->tag, e->idx);
    tu_require(r->position == position, CTX_FMT "%s: position %" PRIu64 ", want %" PRIu64, CTX,
               what, r->position, position);
    tu_require(memcmp(r->id, id, 16) == 0, CTX_FMT "%s: id differs at %" PRIu64, CTX, what,
               position);
    tu_require(r->version == e->version, CTX_FMT "%s: version %" PRId64 ", want %" PRId64, CTX,
               what, r->version, e->version);
    tu_require(r->stream_len == strlen(ms->name) && memcmp(r->stream, ms->name, r->stream_len) == 0,
               CTX_FMT "%s: stream %s, want %s", CTX, what, r->stream, ms->name);
    tu_require(strcmp(r->type, TYPE_NAMES[e->type]) == 0, CTX_FMT "%s: type %s at %" PRIu64, CTX,
               what, r->type, position);
    if (e->timestamp_ns != 0)
        tu_require(r->timestamp_ns == e->timestamp_ns, CTX_FMT "%s: timestamp at %" PRIu64, CTX,
                   what, position);
    else
        tu_require(r->timestamp_ns > 0, CTX_FMT "%s: zero timestamp", CTX, what);
    tu_require(r->data_len == e->data_len && r->metadata_len == e->metadata_len,
               CTX_FMT "%s: lengths %zu/%zu, want %u/%u at %" PRIu64, CTX, what, r->metadata_len,
               r->data_len, e->metadata_len, e->data_len, position);
    tu_fill(g_scratch, e->data_len, e->seed, e->compressible);
    tu_require(memcmp(g_scratch, r->data, e->data_len) == 0, CTX_FMT "%s: data at %" PRIu64, CTX,
               what, position);
    tu_fill(g_scratch, e->metadata_len, e->seed ^ 0x5555, e->compressible);
    tu_require(memcmp(g_scratch, r->metadata, e->metadata_len) == 0,
               CTX_FMT "%s: metadata at %" PRIu64, CTX, what, position);
}

static bool type_kept(const log_filter_t *f, uint8_t type) {
    if (f == NULL) return true;
    const char *name = TYPE_NAMES[type];
    for (size_t i = 0; i < f->type_count; i++)
        if (strcmp(f->types[i], name) == 0) return true;
    return f->type_prefix != NULL && strncmp(name, f->type_prefix, strlen(f->type_prefix)) == 0;
}

/* Reads `name` from `from` and compares the events with want[] (positions,
 * in read order), after the filter. */
static void assert_read(log_t *log, const model_t *m, const char *name, uint64_t from,
                        bool backwards, const log_filter_t *filter, const uint64_t *want,
                        size_t want_n, uint32_t page) {
    tu_events_t evs = {0};
    int rc = tu_read_all(log, name, from, backwards, page, filter, &evs, NULL);
    tu_require(rc == 0, CTX_FMT "read %s from %" PRIu64 "%s: %d %s", CTX, name, from,
               backwards ? " backwards" : "", rc, log_strerror(rc));
    size_t k = 0;
    char what[96];
    snprintf(what, sizeof what, "read %s from %" PRIu64 "%s", name, from,
             backwards ? " backwards" : "");
    for (size_t i = 0; i < want_n; i++) {
        if (!type_kept(filter, m->ev[want[i]].type)) continue;
        tu_require(k < evs.n, CTX_FMT "%s: %zu events, want more", CTX, what, evs.n);
        assert_event(m, want[i], &evs.v[k], what);
        k++;
    }
    tu_require(k == evs.n, CTX_FMT "%s: %zu events, want %zu", CTX, what, evs.n, k);
    tu_events_clear(&evs);
}

/* One forward read call of at most max events from `from`: exactly want[]. */
static void assert_page(log_t *log, const model_t *m, const char *name, uint64_t from, uint32_t max,
                        const uint64_t *want, size_t want_n) {
    tu_events_t evs = {0};
    log_read_result_t res;
    int rc = tu_read(log, name, from, false, max, NULL, &evs, &res);
    tu_require(rc == 0, CTX_FMT "read %s from %" PRIu64 ": %d %s", CTX, name, from, rc,
               log_strerror(rc));
    tu_require(evs.n == want_n && res.count == want_n,
               CTX_FMT "read %s from %" PRIu64 " max %u: %zu events, want %zu", CTX, name, from,
               max, evs.n, want_n);
    for (size_t i = 0; i < want_n; i++) assert_event(m, want[i], &evs.v[i], "page");
    tu_events_clear(&evs);
}

/* Positions of a posvec, reversed, into a scratch vector. */
static uint64_t *reversed(const uint64_t *v, size_t n) {
    uint64_t *r = malloc((n + 1) * sizeof *r);
    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i < n; i++) r[i] = v[n - 1 - i];
    return r;
}

static uint64_t *all_positions(size_t n) {
    uint64_t *r = malloc((n + 1) * sizeof *r);
    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i < n; i++) r[i] = i;
    return r;
}

/* Page sizes for paged reads; single-event pages only for streams, where
 * they are cheap (a $all page costs the decoding of a block of batches). */
static uint32_t page_size(uint64_t *rng) {
    static const uint32_t pages[] = {7, 64, 500, 100000};
    return pages[tu_rand_below(rng, sizeof pages / sizeof pages[0])];
}

static uint32_t stream_page_size(uint64_t *rng) {
    return tu_rand_below(rng, 5) == 0 ? 1 : page_size(rng);
}

static void assert_stream(log_t *log, const model_t *m, uint32_t s, bool both_ways, uint64_t *rng) {
    const mstream_t *ms = &m->streams[s];
    int64_t v = -99;
    int rc = log_stream_version(log, ms->name, strlen(ms->name), &v);
    if (ms->pos.n == 0) {
        ck_assert_msg(rc == LOG_ENOT_FOUND, CTX_FMT "version of unused %s: %d", CTX, ms->name, rc);
        tu_events_t evs = {0};
        ck_assert_int_eq(tu_read_all(log, ms->name, 0, false, 10, NULL, &evs, NULL),
                         LOG_ENOT_FOUND);
        tu_events_clear(&evs);
        return;
    }
    ck_assert_msg(rc == 0 && v == model_version(m, s),
                  CTX_FMT "version of %s: %d %" PRId64 ", want %" PRId64, CTX, ms->name, rc, v,
                  model_version(m, s));
    assert_read(log, m, ms->name, 0, false, NULL, ms->pos.v, ms->pos.n, stream_page_size(rng));
    if (both_ways) {
        uint64_t *r = reversed(ms->pos.v, ms->pos.n);
        assert_read(log, m, ms->name, LOG_READ_END, true, NULL, r, ms->pos.n,
                    stream_page_size(rng));
        free(r);
    }
    /* from a version in the middle */
    uint64_t from = tu_rand_below(rng, ms->pos.n);
    assert_read(log, m, ms->name, from, false, NULL, ms->pos.v + from, ms->pos.n - from,
                stream_page_size(rng));
}

static void assert_category(log_t *log, const model_t *m, uint32_t c, bool whole, bool both_ways,
                            const log_filter_t *filter, uint64_t *rng) {
    char name[32];
    snprintf(name, sizeof name, "$ce-%s", CATEGORY_NAMES[c]);
    const posvec_t *p = &m->categories[c];
    if (p->n == 0) return; /* an unused category: not specified */
    if (whole) assert_read(log, m, name, 0, false, filter, p->v, p->n, page_size(rng));
    if (both_ways) {
        uint64_t *r = reversed(p->v, p->n);
        assert_read(log, m, name, LOG_READ_END, true, filter, r, p->n, page_size(rng));
        free(r);
    }
    /* from a position (a recent one unless whole): the first of the
     * category at or after it */
    uint64_t span = whole || m->n < 2000 ? m->n : 2000;
    uint64_t from = m->n - span + tu_rand_below(rng, span);
    size_t k = 0;
    while (k < p->n && p->v[k] < from) k++;
    assert_read(log, m, name, from, false, filter, p->v + k, p->n - k, page_size(rng));
}

static void assert_all(log_t *log, const model_t *m, bool both_ways, uint64_t *rng) {
    log_stats_t st;
    log_stats(log, &st);
    ck_assert_msg(st.head_position == m->n, CTX_FMT "head %" PRIu64 ", want %zu", CTX,
                  st.head_position, m->n);
    uint64_t *all = all_positions(m->n);
    uint64_t from = m->n ? tu_rand_below(rng, m->n) : 0;
    assert_read(log, m, "$all", from, false, NULL, all + from, m->n - from, page_size(rng));
    if (both_ways) {
        assert_read(log, m, "$all", 0, false, NULL, all, m->n, page_size(rng));
        /* a page of one event from a few random places */
        for (int i = 0; i < 20 && m->n > 0; i++) {
            uint64_t p = tu_rand_below(rng, m->n);
            assert_page(log, m, "$all", p, 3, all + p, p + 3 <= m->n ? 3 : m->n - p);
        }
        uint64_t *r = reversed(all, m->n);
        assert_read(log, m, "$all", LOG_READ_END, true, NULL, r, m->n, page_size(rng));
        free(r);
    }
    free(all);
}

static const char *const FILTER_TYPES[] = {"Paid", "Deleted"};

static void assert_everything(log_t *log, const model_t *m, uint64_t *rng) {
    assert_all(log, m, true, rng);
    for (uint32_t s = 0; s < STREAMS; s++) assert_stream(log, m, s, s % 5 == 0, rng);
    log_filter_t f = {.types = FILTER_TYPES, .type_count = 2, .type_prefix = "Up"};
    for (uint32_t c = 0; c < CATEGORIES; c++)
        assert_category(log, m, c, true, c == 0, c == 1 ? &f : NULL, rng);
}

static void assert_some(log_t *log, const model_t *m, uint64_t *rng) {
    for (int i = 0; i < 3; i++)
        assert_stream(log, m, (uint32_t)tu_rand_below(rng, STREAMS), i == 0, rng);
    log_filter_t f = {.type_prefix = "Cre"};
    assert_category(log, m, (uint32_t)tu_rand_below(rng, CATEGORIES), false, false,
                    tu_rand_below(rng, 2) ? &f : NULL, rng);
    /* the recent tail of $all */
    uint64_t from = m->n > 100 ? m->n - 100 : 0;
    uint64_t *all = all_positions(m->n);
    assert_read(log, m, "$all", from, false, NULL, all + from, m->n - from, 33);
    free(all);
}

/* ---- the run ------------------------------------------------------------- */

typedef struct {
    log_config_t cfg;
    char dir[512];
    log_t *log;
    uint32_t reopens;
} run_t;

static void run_open(run_t *r, const model_t *m, uint64_t *rng) {
    tu_config(&r->cfg, r->dir, SEGMENT_BYTES, tu_rand_below(rng, 2) == 0);
    r->cfg.compress_threshold_bytes = 2048;
    static const log_durability_t modes[] = {LOG_DURABILITY_ALWAYS, LOG_DURABILITY_NONE,
                                             LOG_DURABILITY_INTERVAL};
    r->cfg.durability = modes[r->reopens % 3];
    r->cfg.interval_ms = 5;
    log_recovery_t rec;
    int rc = log_open(&r->cfg, &r->log, &rec);
    ck_assert_msg(rc == 0, CTX_FMT "log_open: %d %s (%s)", CTX, rc, log_strerror(rc), rec.problem);
    ck_assert_msg(rec.events == m->n, CTX_FMT "recovered %" PRIu64 " events, want %zu", CTX,
                  rec.events, m->n);
    uint64_t used = 0;
    for (uint32_t s = 0; s < STREAMS; s++) used += m->streams[s].pos.n > 0;
    ck_assert_msg(rec.streams == used, CTX_FMT "recovered %" PRIu64 " streams, want %" PRIu64, CTX,
                  rec.streams, used);
    ck_assert_uint_eq(rec.torn_bytes_cut, 0);
}

static void run_close(run_t *r) {
    int rc = log_close(r->log);
    ck_assert_msg(rc == 0, CTX_FMT "log_close: %d %s", CTX, rc, log_strerror(rc));
    r->log = NULL;
    r->reopens++;
}

/* Checks a result for a batch that the model says succeeds. */
static void assert_success(const log_append_result_t *res, const mbatch_t *b, uint64_t first,
                           const model_t *m, bool idempotent) {
    ck_assert_msg(res->status == 0, CTX_FMT "append: %d %s, want success", CTX, res->status,
                  log_strerror(res->status));
    ck_assert_msg(res->first_position == first, CTX_FMT "first_position %" PRIu64 ", want %" PRIu64,
                  CTX, res->first_position, first);
    ck_assert_msg(res->event_count == b->event_count, CTX_FMT "event_count %u, want %u", CTX,
                  res->event_count, b->event_count);
    ck_assert_msg(res->idempotent == idempotent, CTX_FMT "idempotent %d, want %d", CTX,
                  res->idempotent, idempotent);
    if (!idempotent) {
        for (uint32_t s = 0; s < b->stream_count; s++)
            ck_assert_msg(res->last_versions[s] == model_version(m, b->streams[s]),
                          CTX_FMT "last_versions[%u] %" PRId64 ", want %" PRId64, CTX, s,
                          res->last_versions[s], model_version(m, b->streams[s]));
    }
}

static void assert_wrong_version(const log_append_result_t *res, const mbatch_t *b,
                                 const bool bad[BATCH_STREAMS_MAX], const model_t *m) {
    ck_assert_msg(res->status == LOG_EWRONG_VERSION, CTX_FMT "append: %d %s, want wrong version",
                  CTX, res->status, log_strerror(res->status));
    uint32_t f = res->failed_stream;
    ck_assert_msg(f < b->stream_count && bad[f], CTX_FMT "failed_stream %u is not a mismatch", CTX,
                  f);
    ck_assert_msg(res->actual_version == model_version(m, b->streams[f]),
                  CTX_FMT "actual_version %" PRId64 ", want %" PRId64, CTX, res->actual_version,
                  model_version(m, b->streams[f]));
}

static void model_apply(model_t *m, mbatch_t *b) {
    b->first_position = m->n;
    for (uint32_t k = 0; k < b->event_count; k++) model_append(m, &b->ev[k]);
}

typedef struct {
    mbatch_t hist[HISTORY];
    uint32_t count; /* total successful batches remembered (ring) */
} history_t;

static void history_push(history_t *h, const mbatch_t *b) {
    h->hist[h->count % HISTORY] = *b;
    h->count++;
}

/* One synchronous new batch. */
static void step_single(run_t *r, model_t *m, history_t *h, uint64_t *rng, uint64_t tag) {
    static mbatch_t b;
    static request_t req;
    bool any_wrong;
    batch_make(&b, rng, m, tag, &any_wrong);
    bool bad[BATCH_STREAMS_MAX];
    int want = batch_expect(m, &b, bad);
    ck_assert_int_eq(want != 0, any_wrong);
    request_build(&req, m, &b);
    log_append_result_t res;
    memset(&res, 0, sizeof res);
    int rc = log_append_wait(r->log, &req.req, &res);
    ck_assert_int_eq(rc, res.status);
    if (want == 0) {
        uint64_t first = m->n;
        model_apply(m, &b);
        assert_success(&res, &b, first, m, false);
        history_push(h, &b);
    } else {
        assert_wrong_version(&res, &b, bad, m);
    }
    request_free(&req);
}

typedef struct {
    uint32_t calls;
    log_append_result_t res;
} slot_t;

static void slot_cb(void *ctx, const log_append_result_t *res) {
    slot_t *s = ctx;
    s->calls++;
    s->res = *res;
}

/* Several batches submitted before one drain: one group commit. */
static void step_group(run_t *r, model_t *m, history_t *h, uint64_t *rng, uint64_t tag) {
    static mbatch_t b[GROUP_MAX];
    static request_t req[GROUP_MAX];
    slot_t slots[GROUP_MAX];
    int want[GROUP_MAX];
    uint32_t n = 2 + (uint32_t)tu_rand_below(rng, GROUP_MAX - 1);
    memset(slots, 0, sizeof slots);
    for (uint32_t i = 0; i < n; i++) {
        bool any_wrong, bad[BATCH_STREAMS_MAX];
        batch_make(&b[i], rng, m, tag * GROUP_MAX + i, &any_wrong);
        want[i] = batch_expect(m, &b[i], bad);
        request_build(&req[i], m, &b[i]);
        log_append_result_t failure;
        memset(&failure, 0, sizeof failure);
        int rc = log_append(r->log, &req[i].req, slot_cb, &slots[i], &failure);
        if (want[i] == 0) {
            ck_assert_msg(rc == 0, CTX_FMT "log_append %u: %d %s", CTX, i, rc, log_strerror(rc));
            model_apply(m, &b[i]);
        } else {
            ck_assert_msg(rc == LOG_EWRONG_VERSION, CTX_FMT "log_append %u: %d, want wrong version",
                          CTX, i, rc);
            ck_assert_int_eq(failure.status, rc);
            assert_wrong_version(&failure, &b[i], bad, m);
        }
    }
    ck_assert_int_eq(log_drain(r->log), 0);
    for (uint32_t i = 0; i < n; i++) {
        if (want[i] != 0) {
            ck_assert_uint_eq(slots[i].calls, 0);
        } else {
            ck_assert_msg(slots[i].calls == 1, CTX_FMT "callback %u ran %u times", CTX, i,
                          slots[i].calls);
            ck_assert_msg(slots[i].res.status == 0, CTX_FMT "group append %u: %d", CTX, i,
                          slots[i].res.status);
            ck_assert_uint_eq(slots[i].res.first_position, b[i].first_position);
            ck_assert_uint_eq(slots[i].res.event_count, b[i].event_count);
            ck_assert(!slots[i].res.idempotent);
            history_push(h, &b[i]);
        }
        request_free(&req[i]);
    }
}

/* A retry of a recent successful batch: the original result, nothing new. */
static void step_retry(run_t *r, model_t *m, history_t *h, uint64_t *rng) {
    uint32_t back = 1 + (uint32_t)tu_rand_below(rng, h->count < HISTORY ? h->count : HISTORY);
    const mbatch_t *b = &h->hist[(h->count - back) % HISTORY];
    static request_t req;
    request_build(&req, m, b);
    log_append_result_t res;
    memset(&res, 0, sizeof res);
    int rc = log_append_wait(r->log, &req.req, &res);
    if (rc != 0) {
        /* describe the batch: which streams, expected versions, where its
         * events are now */
        char desc[1024];
        size_t len = 0;
        uint32_t k = 0;
        for (uint32_t s = 0; s < b->stream_count && len < sizeof desc - 200; s++) {
            const mstream_t *ms = &m->streams[b->streams[s]];
            len += (size_t)snprintf(desc + len, sizeof desc - len,
                                    " [%s expected %" PRId64 ", %u events at versions %" PRId64
                                    "..; stream now at %" PRId64 "]",
                                    ms->name, b->expected[s], b->counts[s],
                                    m->ev[b->first_position + k].version, model_version(m, b->streams[s]));
            k += b->counts[s];
        }
        ck_abort_msg(CTX_FMT "retry of the batch at %" PRIu64 " (%u back): %d %s (failed_stream %u);%s",
                     CTX, b->first_position, back, rc, log_strerror(rc), res.failed_stream, desc);
    }
    assert_success(&res, b, b->first_position, m, true);
    log_stats_t st;
    log_stats(r->log, &st);
    ck_assert_uint_eq(st.head_position, m->n);
    request_free(&req);
}

static uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *s = getenv(name);
    if (s == NULL || *s == '\0') return dflt;
    return strtoull(s, NULL, 0);
}

START_TEST(random_batches_match_the_model_across_reopens) {
    g_seed = env_u64("EVSTORE_TEST_SEED", SEED_DEFAULT);
    uint32_t steps = (uint32_t)env_u64("EVSTORE_MODEL_STEPS", STEPS_DEFAULT);
    printf("test_log_model: seed %" PRIu64 " (EVSTORE_TEST_SEED=%" PRIu64 " replays), %u steps\n",
           g_seed, g_seed, steps);
    fflush(stdout);
    uint64_t rng = g_seed;
    g_scratch = malloc(1 << 20);
    ck_assert_ptr_nonnull(g_scratch);
    static model_t m;
    static history_t h;
    model_init(&m);
    memset(&h, 0, sizeof h);
    static run_t r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(tu_dir_make(r.dir, sizeof r.dir), 0);
    run_open(&r, &m, &rng);

    uint32_t next_reopen = REOPEN_EVERY / 2 + (uint32_t)tu_rand_below(&rng, REOPEN_EVERY);
    uint32_t retries = 0, groups = 0;
    for (g_step = 1; g_step <= steps; g_step++) {
        uint64_t kind = tu_rand_below(&rng, 100);
        if (kind < 8 && h.count > 0) {
            step_retry(&r, &m, &h, &rng);
            retries++;
        } else if (kind < 30) {
            step_group(&r, &m, &h, &rng, g_step);
            groups++;
        } else {
            step_single(&r, &m, &h, &rng, (uint64_t)g_step * GROUP_MAX);
        }
        if (g_step % CHECK_EVERY == 0) assert_some(r.log, &m, &rng);
        if (g_step == next_reopen) {
            run_close(&r);
            run_open(&r, &m, &rng);
            assert_everything(r.log, &m, &rng);
            next_reopen += REOPEN_EVERY / 2 + (uint32_t)tu_rand_below(&rng, REOPEN_EVERY);
        }
    }
    assert_everything(r.log, &m, &rng);
    log_stats_t st;
    log_stats(r.log, &st);
    printf("test_log_model: %zu events, %u reopens, %u retries, %u groups, %" PRIu64
           " segments, %" PRIu64 " compressed batches\n",
           m.n, r.reopens, retries, groups, st.segments, st.compressed_batches);
    ck_assert_uint_gt(st.segments, 10);
    run_close(&r);
    /* one last reopen: everything is still there */
    run_open(&r, &m, &rng);
    assert_everything(r.log, &m, &rng);
    run_close(&r);
    ck_assert_int_eq(tu_dir_remove(r.dir), 0);
    model_free(&m);
    free(g_scratch);
}
END_TEST

int main(void) {
    if (tu_root_make("model") == NULL) {
        perror("tu_root_make");
        return 2;
    }
    Suite *s = suite_create("log_model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, random_batches_match_the_model_across_reopens);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_root_remove();
    return failed == 0 ? 0 : 1;
}
