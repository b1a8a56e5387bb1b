/* test_log_crash.c -- crash safety: a child process appends with durability
 * "always" and reports every acknowledged batch to the parent through a
 * pipe; the parent kills it with SIGKILL once it has received a random
 * number of acknowledgements (so a slow, loaded machine does the same work
 * per round as a quiet one, only slower), reopens the log and checks that
 *   - log_open succeeds (the torn tail, if any, is cut),
 *   - every acknowledged batch is there, at its position, byte for byte,
 *   - every batch in the log is whole (no part of a batch is visible),
 *   - batches seen whole after an earlier crash are still there,
 *   - stream versions run 0, 1, 2, ... without gaps,
 * then appends one batch itself and closes; the next round's child appends
 * more to the same log.
 *
 * A SIGKILL rarely tears a write (the page cache keeps what was written), so
 * every TORN_ROUND_EVERY rounds the parent tears one itself before
 * recovering: past the last whole batch of the last segment (never over an
 * acknowledged one) it writes a prefix of the batch that would come next,
 * with a valid header for that place, as a write cut short by power loss
 * leaves it (a round whose last segment has no tail recovery would judge
 * passes the tear on to the next). Recovery must cut those bytes, show none
 * of them, and leave zeros where they were.
 *
 * Each batch is described by one 64-bit seed: its streams, events, sizes,
 * ids and contents all derive from it, and every event's metadata holds
 * (seed, index, count), so the parent can check any batch it finds.
 *
 * EVSTORE_TEST_SEED=<n> changes the kill points, the tears and the batches.
 */
#define _GNU_SOURCE
#include "log_int.h" /* the on-disk layout, to tear a tail the way a crash does */
#include "proc.h"
#include "test_util.h"
#include "util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 30u
#define ROUNDS_MIN 5u
#define ROUNDS_SECONDS_MAX 60.0 /* past ROUNDS_MIN, no round starts past this */
/* The child is killed right after the parent has read this many
 * acknowledgements (uniform in [MIN, MAX]): batches of about 4 KiB, so up
 * to ten 128 KiB segments a round. */
#define KILL_ACKS_MIN 1u
#define KILL_ACKS_MAX 300u
/* Fallbacks of a round, by wall clock: once acknowledgements flow, a round
 * that has not reached its count after ROUND_SECONDS_MAX is killed anyway
 * (and reported); a child with no acknowledgement for STALL_SECONDS_MAX is
 * stuck, and the test fails. */
#define ROUND_SECONDS_MAX 15.0
#define STALL_SECONDS_MAX 60.0
#define ACK_POLL_MS 100
#define TORN_ROUND_EVERY 3u /* rounds 1, 4, 7, ... tear the tail by hand */
#define SEGMENT_BYTES (128u * 1024)
#define CRASH_STREAMS 8u
#define BATCH_EVENTS_MAX 6u
#define EVENT_DATA_MAX 12000u /* big batches make writes long enough to tear */
#define INFLIGHT_MAX 8u
#define PARENT_ROUND_TAG 0xffffffu
#define TORN_SEED_TAG 0xfffffeu

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

/* ---- the parent's bookkeeping ----------------------------------------------- */

typedef struct {
    uint64_t seed;
    uint64_t first_position;
    uint32_t count;
} seen_t;

typedef struct {
    seen_t *v;
    size_t n, cap;
    uint64_t end_position; /* past the last event of any batch pushed */
} seenvec_t;

static void seen_push(seenvec_t *s, uint64_t seed, uint64_t first, uint32_t count) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        ck_assert_ptr_nonnull(s->v);
    }
    s->v[s->n++] = (seen_t){.seed = seed, .first_position = first, .count = count};
    if (first + count > s->end_position) s->end_position = first + count;
}

static int cmp_seen(const void *a, const void *b) {
    const seen_t *x = a, *y = b;
    return x->seed < y->seed ? -1 : x->seed > y->seed;
}

/* Sorts by seed for seen_find(). An empty vector has no array (v is NULL),
 * which qsort and bsearch must never be given, even with a count of 0. */
static void seen_sort(seenvec_t *s) {
    if (s->n > 1) qsort(s->v, s->n, sizeof *s->v, cmp_seen);
}

static const seen_t *seen_find(const seenvec_t *s, uint64_t seed) {
    if (s->n == 0) return NULL;
    seen_t key = {.seed = seed};
    return bsearch(&key, s->v, s->n, sizeof *s->v, cmp_seen);
}

static uint64_t g_seed;
static uint32_t g_round;
#define CTX_FMT "seed %" PRIu64 " round %u: "
#define CTX g_seed, g_round

/* The high bits of the seeds of this round's batches (the test's seed and
 * the round); the low 24 say who made the batch: the child's counter, or a
 * tag of the parent's. */
static uint64_t round_seed_base(void) { return (uint64_t)(g_round + 1) << 32 ^ (g_seed << 48); }

/* ---- the parent's check ---------------------------------------------------- */

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
    seen_sort(found);
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

/* Every batch of `want` is in `found` at the same place; `what` names them. */
static void expect_all_found(const seenvec_t *want, const seenvec_t *found, const char *what) {
    for (size_t i = 0; i < want->n; i++) {
        const seen_t *w = &want->v[i];
        const seen_t *f = seen_find(found, w->seed);
        tu_require(f != NULL, CTX_FMT "%s batch %" PRIx64 " at %" PRIu64 " is lost", CTX, what,
                   w->seed, w->first_position);
        tu_require(f->first_position == w->first_position && f->count == w->count,
                   CTX_FMT "%s batch %" PRIx64 " is at %" PRIu64 "+%u, was at %" PRIu64 "+%u", CTX,
                   what, f->seed, f->first_position, f->count, w->first_position, w->count);
    }
}

static double now_s(void) { return (double)util_mono_ns() / 1e9; }

/* ---- killing the child after N acknowledgements ------------------------------ */

typedef struct {
    uint32_t acks;  /* acknowledgements read this round, before and after the kill */
    bool clock_cut; /* killed by the ROUND_SECONDS_MAX fallback, short of the target */
    bool stalled;   /* no acknowledgement for STALL_SECONDS_MAX */
    int read_error; /* 0, or -errno of a failed read of the pipe (-EPROTO: short) */
    int status;     /* of waitpid */
    double seconds; /* from the start of the round to the kill */
} round_outcome_t;

/* Reads one acknowledgement: 1, 0 at the end of the pipe (every writer is
 * gone), or -errno. Each one is written whole (24 bytes, under PIPE_BUF, so
 * atomically): anything shorter is -EPROTO. */
static int ack_read(int fd, ack_t *a) {
    for (;;) {
        ssize_t got = read(fd, a, sizeof *a);
        if (got == (ssize_t)sizeof *a) return 1;
        if (got == 0) return 0;
        if (got < 0 && errno == EINTR) continue;
        return got < 0 ? -errno : -EPROTO;
    }
}

/* Reads acknowledgements into *acked until `target` have come (or a
 * fallback fires), kills the child, reads the rest the child wrote before it
 * died and reaps it. Asserts nothing while the child lives: the caller
 * judges *out. */
static void round_kill_after_acks(pid_t pid, int fd, uint32_t target, seenvec_t *acked,
                                  round_outcome_t *out) {
    memset(out, 0, sizeof *out);
    double start = now_s(), last_ack = start;
    int rc = 1;
    while (out->acks < target && rc == 1) {
        double now = now_s();
        if (now - last_ack > STALL_SECONDS_MAX) {
            out->stalled = true;
            break;
        }
        if (out->acks > 0 && now - start > ROUND_SECONDS_MAX) {
            out->clock_cut = true;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ACK_POLL_MS) <= 0) continue; /* a timeout, or EINTR */
        ack_t a;
        rc = ack_read(fd, &a);
        if (rc == 1) {
            seen_push(acked, a.seed, a.first_position, a.event_count);
            out->acks++;
            last_ack = now_s();
        }
    }
    kill(pid, SIGKILL);
    out->seconds = now_s() - start;
    ack_t a;
    while (rc == 1 && (rc = ack_read(fd, &a)) == 1) {
        seen_push(acked, a.seed, a.first_position, a.event_count);
        out->acks++;
    }
    out->read_error = rc < 0 ? rc : 0;
    ck_assert_int_eq(proc_wait(pid, PROC_REAP_MS_LIMIT, &out->status), 0);
}

/* Forks a child that appends to dir until killed, kills it after `target`
 * acknowledgements and checks how the round went. */
static void round_crash(const char *dir, bool prepare, uint32_t target, seenvec_t *acked,
                        round_outcome_t *out) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        /* dies with the test process, whatever ends it */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(14);
        child_run(dir, fds[1], round_seed_base(), prepare);
        _exit(13);
    }
    close(fds[1]);
    round_kill_after_acks(pid, fds[0], target, acked, out);
    close(fds[0]);
    ck_assert_msg(out->read_error == 0, CTX_FMT "reading acknowledgements: %s", CTX,
                  strerror(-out->read_error));
    ck_assert_msg(!out->stalled,
                  CTX_FMT "no acknowledgement for %.0f s (%u of %u): the child is stuck", CTX,
                  STALL_SECONDS_MAX, out->acks, target);
    ck_assert_msg(WIFSIGNALED(out->status) && WTERMSIG(out->status) == SIGKILL,
                  CTX_FMT "the child ended by itself (status 0x%x) after %u of %u acknowledgements",
                  CTX, out->status, out->acks, target);
    ck_assert_msg(out->acks >= target || out->clock_cut, CTX_FMT "%u of %u acknowledgements", CTX,
                  out->acks, target);
    if (out->clock_cut)
        printf("test_log_crash: round %u killed by the clock after %.1f s, %u of %u "
               "acknowledgements\n",
               g_round, out->seconds, out->acks, target);
}

/* ---- a torn tail, made by hand ----------------------------------------------- */

/* The end of the valid data of the last segment, found with the checks
 * recovery applies (walk.c), without opening the log. */
typedef struct {
    char path[512];
    uint64_t segment_bytes;
    uint64_t offset;   /* just past the last whole batch */
    uint64_t position; /* the position the next batch would take */
    uint64_t chain;    /* the chain value it would continue */
    bool tearable;     /* recovery keeps this segment and judges its tail */
} tail_t;

static void tail_walk(int fd, const segment_header_t *h, tail_t *t) {
    void *map = mmap(NULL, h->segment_bytes, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_msg(map != MAP_FAILED, CTX_FMT "mmap %s: %s", CTX, t->path, strerror(errno));
    walk_t w = {0};
    walk_init(&w, map, h->segment_bytes, SEGMENT_HEADER_BYTES, h->first_position, h->prev_checksum);
    walk_status_t st;
    while ((st = walk_batch(&w)) == WALK_OK) walk_advance(&w);
    ck_assert_msg(st != WALK_NO_MEMORY, CTX_FMT "walk: out of memory", CTX);
    t->segment_bytes = h->segment_bytes;
    t->offset = w.offset;
    t->position = w.position;
    t->chain = w.chain;
    walk_free(&w);
    munmap(map, h->segment_bytes);
}

static void tail_find(const char *dir, tail_t *t) {
    memset(t, 0, sizeof *t);
    uint64_t *firsts = NULL;
    uint32_t n = 0;
    int rc = walk_list_segments(dir, &firsts, &n);
    ck_assert_msg(rc == 0, CTX_FMT "list segments: %d", CTX, rc);
    if (n == 0) return;
    uint64_t first = firsts[n - 1];
    free(firsts);
    segment_path(t->path, sizeof t->path, dir, first, "seg");
    int fd = open(t->path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, CTX_FMT "open %s: %s", CTX, t->path, strerror(errno));
    segment_header_t h;
    struct stat st;
    bool whole = fstat(fd, &st) == 0 && pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h &&
                 segment_header_check(&h) == 0 && h.first_position == first &&
                 (uint64_t)st.st_size >= h.segment_bytes;
    /* Not whole: a roll cut short, which recovery deletes. */
    if (whole) tail_walk(fd, &h, t);
    close(fd);
    /* A later segment without a whole first batch is an empty roll, which
     * recovery deletes too; its tail would never be judged. */
    t->tearable =
        whole && (t->offset > SEGMENT_HEADER_BYTES || n == 1) && t->offset < t->segment_bytes;
}

/* The most bytes a batch of batch_build() takes on disk, uncompressed: its
 * longest records are made of a stream name, "Crash", the metadata and
 * EVENT_DATA_MAX bytes of data. */
#define BATCH_STORED_BYTES_MAX                                                                     \
    (sizeof(batch_header_t) +                                                                      \
     BATCH_EVENTS_MAX * align8(sizeof(record_header_t) + sizeof(((batch_t *)0)->names[0]) +        \
                               sizeof "Crash" + sizeof(((batch_t *)0)->meta[0]) + EVENT_DATA_MAX))

/* The bytes of a whole batch of `seed`'s events at t's place, as the writer
 * lays it out uncompressed (the records carry version 0: recovery never
 * decodes a body whose checksum fails). Returns its length; *buf is
 * malloc'ed. */
static size_t torn_batch_encode(const tail_t *t, uint64_t seed, uint8_t **buf) {
    static batch_t b;
    batch_build(&b, seed);
    *buf = calloc(1, BATCH_STORED_BYTES_MAX);
    ck_assert_ptr_nonnull(*buf);
    uint8_t *body = *buf + sizeof(batch_header_t);
    uint64_t position = t->position, raw = 0;
    for (uint32_t s = 0; s < b.sh.stream_count; s++)
        for (uint32_t k = 0; k < b.sa[s].event_count; k++, position++) {
            const log_event_in_t *e = &b.sa[s].events[k];
            record_encode(body + raw, position, b.sa[s].stream, b.sa[s].stream_len, 0, e, 1);
            raw += record_size(b.sa[s].stream_len, e->type_len, e->metadata_len, e->data_len);
        }
    size_t len = align8(sizeof(batch_header_t) + raw);
    ck_assert_uint_le(len, BATCH_STORED_BYTES_MAX);
    batch_header_t h = {.magic = BATCH_MAGIC,
                        .event_count = b.sh.count,
                        .stored_bytes = (uint32_t)raw,
                        .raw_bytes = (uint32_t)raw,
                        .first_position = t->position,
                        .timestamp_ns = 1,
                        .prev_checksum = t->chain};
    h.body_checksum = checksum64(body, raw, h.first_position);
    batch_header_seal(&h);
    memcpy(*buf, &h, sizeof h);
    return len;
}

/* Length of p[0, len) without its trailing zero bytes. */
static size_t nonzero_len(const uint8_t *p, size_t len) {
    while (len > 0 && p[len - 1] == 0) len--;
    return len;
}

typedef struct {
    char path[512];    /* the segment torn */
    uint64_t offset;   /* where the tear starts: the end of the valid data */
    uint64_t position; /* the log's head after recovery */
    size_t written;    /* bytes written there */
    size_t nonzero;    /* of which the last nonzero one ends here */
} tear_t;

/* Writes a strict prefix of the next batch at the end of the valid data of
 * the last segment: a header fit for that place and a body cut short before
 * its last nonzero byte, so it can never pass as whole. False when the last
 * segment has no tail recovery would judge (the caller tries a later round). */
static bool tear_tail(const char *dir, uint64_t *rng, const seenvec_t *acked, tear_t *tear) {
    tail_t t;
    tail_find(dir, &t);
    if (!t.tearable) return false;
    tu_require(t.position >= acked->end_position,
               CTX_FMT "acknowledged batches end at %" PRIu64 ", the valid data at %" PRIu64
                       " (%s offset %" PRIu64 ")",
               CTX, acked->end_position, t.position, t.path, t.offset);
    uint8_t *batch = NULL;
    size_t len = torn_batch_encode(&t, round_seed_base() | TORN_SEED_TAG, &batch);
    size_t cut = 1 + (size_t)tu_rand_below(rng, nonzero_len(batch, len) - 1);
    if (cut > t.segment_bytes - t.offset) cut = (size_t)(t.segment_bytes - t.offset);
    *tear = (tear_t){.offset = t.offset,
                     .position = t.position,
                     .written = cut,
                     .nonzero = nonzero_len(batch, cut)};
    memcpy(tear->path, t.path, sizeof tear->path);
    int rc = tu_file_write(t.path, t.offset, batch, cut);
    free(batch);
    ck_assert_msg(rc == 0, CTX_FMT "tearing %s: %s", CTX, t.path, strerror(-rc));
    return true;
}

/* After recovery: the tear was cut, nothing of it is in the log, and its
 * bytes read as zeros again. */
static void expect_tear_cut(const tear_t *tear, const log_recovery_t *rec) {
    ck_assert_msg(rec->torn_bytes_cut >= tear->nonzero,
                  CTX_FMT "%zu torn bytes written at offset %" PRIu64 ", %" PRIu64 " cut", CTX,
                  tear->nonzero, tear->offset, rec->torn_bytes_cut);
    ck_assert_msg(rec->events == tear->position,
                  CTX_FMT "%" PRIu64 " events after recovery, %" PRIu64 " before the tear", CTX,
                  rec->events, tear->position);
    uint8_t *now = malloc(tear->written);
    ck_assert_ptr_nonnull(now);
    int rc = tu_file_read(tear->path, tear->offset, now, tear->written);
    ck_assert_msg(rc == 0, CTX_FMT "reading %s: %s", CTX, tear->path, strerror(-rc));
    ck_assert_msg(nonzero_len(now, tear->written) == 0,
                  CTX_FMT "torn bytes left at %s offset %" PRIu64, CTX, tear->path, tear->offset);
    free(now);
}

/* ---- the test ------------------------------------------------------------------ */

static log_t *open_after_crash(const char *dir, bool prepare, log_recovery_t *rec) {
    log_config_t cfg;
    tu_config(&cfg, dir, SEGMENT_BYTES, prepare);
    log_t *log = NULL;
    int rc = log_open(&cfg, &log, rec);
    ck_assert_msg(rc == 0, CTX_FMT "log_open after SIGKILL: %d %s (%s)", CTX, rc, log_strerror(rc),
                  rec->problem);
    return log;
}

/* The parent's own batch after recovery: the recovered log takes appends. */
static void append_after_recovery(log_t *log, seenvec_t *acked, seenvec_t *durable) {
    static batch_t b;
    uint64_t pseed = round_seed_base() | PARENT_ROUND_TAG;
    batch_build(&b, pseed);
    log_append_result_t res;
    int rc = log_append_wait(log, &b.req, &res);
    ck_assert_msg(rc == 0, CTX_FMT "append after recovery: %d %s", CTX, rc, log_strerror(rc));
    seen_push(acked, pseed, res.first_position, res.event_count);
    seen_push(durable, pseed, res.first_position, res.event_count);
    seen_sort(durable);
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
    /* the log before any crash: empty, nothing found in it (the sort and
     * search of nothing, which a kill before the first write also gives) */
    log_recovery_t rec;
    log_t *log = open_after_crash(dir, false, &rec);
    walk_log(log, &durable);
    ck_assert_uint_eq(durable.n, 0);
    ck_assert_int_eq(log_close(log), 0);

    double start = now_s();
    uint32_t rounds = 0, acks_total = 0, torn_rounds = 0, tears = 0, clock_cuts = 0;
    bool tear_due = false;
    for (g_round = 0;
         g_round < ROUNDS && (g_round < ROUNDS_MIN || now_s() - start < ROUNDS_SECONDS_MAX);
         g_round++) {
        bool prepare = g_round % 2 == 0;
        uint32_t target =
            KILL_ACKS_MIN + (uint32_t)tu_rand_below(&rng, KILL_ACKS_MAX - KILL_ACKS_MIN + 1);
        round_outcome_t out;
        round_crash(dir, prepare, target, &acked, &out);
        acks_total += out.acks;
        clock_cuts += out.clock_cut;

        tear_due = tear_due || g_round % TORN_ROUND_EVERY == 1;
        tear_t tear;
        bool torn = tear_due && tear_tail(dir, &rng, &acked, &tear);
        tear_due = tear_due && !torn;

        log = open_after_crash(dir, !prepare, &rec);
        torn_rounds += rec.torn_bytes_cut > 0;
        if (torn) {
            expect_tear_cut(&tear, &rec);
            tears++;
        }
        seenvec_t found = {0};
        walk_log(log, &found);
        seen_sort(&acked);
        expect_all_found(&acked, &found, "acknowledged");
        expect_all_found(&durable, &found, "recovered earlier");
        uint64_t events = 0;
        for (size_t i = 0; i < found.n; i++) events += found.v[i].count;
        ck_assert_msg(rec.events == events,
                      CTX_FMT "recovery reports %" PRIu64 " events, the log has %" PRIu64, CTX,
                      rec.events, events);
        free(durable.v);
        durable = found;
        append_after_recovery(log, &acked, &durable);
        ck_assert_int_eq(log_close(log), 0);
        rounds++;
    }
    printf("test_log_crash: %u rounds in %.1f s, %u acknowledged batches, %zu batches in the log, "
           "%u torn tails cut (%u torn by hand), %u rounds cut short by the clock\n",
           rounds, now_s() - start, acks_total, durable.n, torn_rounds, tears, clock_cuts);
    ck_assert_uint_ge(rounds, ROUNDS_MIN);
    ck_assert_msg(tears >= 1, "no round tore the tail by hand");
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
