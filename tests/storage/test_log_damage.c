/* test_log_damage.c -- recovery from damaged files, using the on-disk
 * layout of log_int.h to find the bytes to damage:
 *   - a torn tail (the last batch zeroed from any offset inside it) is cut
 *     back to the earlier batches, and the log appends afterwards;
 *   - a bit flipped in a sealed segment makes the affected events fail with
 *     LOG_ECORRUPT, never wrong data, while every other event still reads;
 *   - a bit flipped in an index file makes recovery scan instead;
 *   - a bit flipped in the unindexed tail with valid batches far beyond the
 *     last write is corruption, not a torn tail: log_open fails with
 *     LOG_ECORRUPT naming the segment and offset, and destroys nothing.
 */
#define _GNU_SOURCE
#include "log_int.h"
#include "test_util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[512];

static void dir_setup(void) { ck_assert_int_eq(tu_dir_make(g_dir, sizeof g_dir), 0); }
static void dir_teardown(void) { (void)tu_dir_remove(g_dir); }

/* ---- a log whose every event is known by position ------------------------ */

typedef struct {
    uint32_t stream;
    uint32_t data_len;
    bool compressible;
    int64_t version;
} pev_t;

#define MODEL_MAX 20000u
static pev_t g_model[MODEL_MAX];
static uint64_t g_events;

static void event_expect(uint64_t position, const tu_read_event_t *e) {
    tu_require(position < g_events, "position %" PRIu64 " was never written", position);
    const pev_t *p = &g_model[position];
    uint8_t id[16];
    tu_id(id, 0xda, position);
    char stream[16];
    snprintf(stream, sizeof stream, "dmg-%u", p->stream);
    tu_require(e->position == position, "position %" PRIu64 ", want %" PRIu64, e->position,
               position);
    tu_require(memcmp(e->id, id, 16) == 0, "wrong id at %" PRIu64, position);
    tu_require(strcmp(e->stream, stream) == 0, "stream %s at %" PRIu64, e->stream, position);
    tu_require(e->data_len == p->data_len, "data length at %" PRIu64, position);
    uint8_t *want = malloc(p->data_len + 1);
    tu_require(want != NULL, "out of memory");
    tu_fill(want, p->data_len, position * 7919 + 1, p->compressible);
    tu_require(memcmp(want, e->data, p->data_len) == 0, "wrong data at %" PRIu64, position);
    free(want);
}

/* Appends batches of 1..4 events (to 1 stream each) until `bytes` of data
 * have been written; positions continue from g_events. */
static void append_known(log_t *log, uint64_t *rng, size_t bytes, uint32_t len_min,
                         uint32_t len_span) {
    static int64_t versions[6];
    if (g_events == 0) memset(versions, 0, sizeof versions);
    size_t written = 0;
    while (written < bytes) {
        uint32_t n = 1 + (uint32_t)tu_rand_below(rng, 4);
        uint32_t stream = (uint32_t)tu_rand_below(rng, 5);
        tu_event_t ev[4];
        log_event_in_t in[4];
        ck_assert_uint_le(g_events + n, MODEL_MAX);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t pos = g_events + i;
            pev_t *p = &g_model[pos];
            p->stream = stream;
            p->data_len = len_min + (uint32_t)tu_rand_below(rng, len_span);
            p->compressible = tu_rand_below(rng, 4) == 0;
            p->version = versions[stream]++;
            ck_assert_int_eq(tu_event_make(&ev[i], 0xda, pos, "Dmg", 0, p->data_len, pos * 7919 + 1,
                                           p->compressible),
                             0);
            in[i] = tu_event_in(&ev[i]);
            written += p->data_len;
        }
        char name[16];
        snprintf(name, sizeof name, "dmg-%u", stream);
        log_append_result_t res;
        ck_assert_int_eq(tu_append(log, name, LOG_EXPECT_ANY, in, n, &res), 0);
        ck_assert_uint_eq(res.first_position, g_events);
        g_events += n;
        for (uint32_t i = 0; i < n; i++) tu_event_free(&ev[i]);
    }
}

static log_t *open_ok(const log_config_t *cfg, log_recovery_t *rec) {
    log_t *log = NULL;
    int rc = log_open(cfg, &log, rec);
    ck_assert_msg(rc == 0, "log_open: %d %s (%s)", rc, log_strerror(rc), rec->problem);
    return log;
}

/* Reads $all and checks it holds exactly positions [0, n), all correct. */
static void expect_all_exactly(log_t *log, uint64_t n) {
    tu_events_t evs = {0};
    int rc = tu_read_all(log, "$all", 0, false, 500, NULL, &evs, NULL);
    ck_assert_msg(rc == 0, "read $all: %d %s", rc, log_strerror(rc));
    ck_assert_uint_eq(evs.n, n);
    for (size_t i = 0; i < evs.n; i++) event_expect(i, &evs.v[i]);
    tu_events_clear(&evs);
}

/* ---- the on-disk layout ----------------------------------------------------- */

typedef struct {
    uint64_t offset;
    batch_header_t h;
} batch_at_t;

/* Lists the whole batches of a segment file: from the header on, while the
 * magic and the position chain hold. Returns the count. */
static int batches_of(const char *path, batch_at_t *out, int cap) {
    segment_header_t sh;
    ck_assert_int_eq(tu_file_read(path, 0, &sh, sizeof sh), 0);
    ck_assert_mem_eq(sh.magic, SEGMENT_MAGIC, 8);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    uint64_t off = sh.header_bytes;
    uint64_t next = sh.first_position;
    int n = 0;
    while (off + sizeof(batch_header_t) <= (uint64_t)st.st_size && n < cap) {
        batch_header_t h;
        ck_assert_int_eq(tu_file_read(path, off, &h, sizeof h), 0);
        if (h.magic != BATCH_MAGIC || h.event_count == 0 || h.first_position != next) break;
        out[n].offset = off;
        out[n].h = h;
        n++;
        next += h.event_count;
        off += align8(sizeof h + h.stored_bytes);
    }
    return n;
}

static void idx_path_of(char *buf, size_t cap, const char *seg_path) {
    size_t len = strlen(seg_path);
    ck_assert_uint_gt(len, 4);
    ck_assert_uint_lt(len, cap);
    memcpy(buf, seg_path, len - 4);
    memcpy(buf + len - 4, ".idx", 5);
}

static uint8_t *slurp(const char *path, size_t *len) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(tu_file_read(path, 0, buf, (size_t)st.st_size), 0);
    *len = (size_t)st.st_size;
    return buf;
}

static void spill(const char *path, const uint8_t *buf, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, buf + done, len - done);
        ck_assert_int_gt(w, 0);
        done += (size_t)w;
    }
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
}

#define SEG_CAP 64
static char g_segs[SEG_CAP][512];

/* Removes segment files (and their indices) beyond the first `keep`, left
 * by an append that rolled, so that the next damage starts from the same log. */
static void remove_segments_after(int keep) {
    static char now[SEG_CAP][512];
    int n = tu_segments(g_dir, now, SEG_CAP);
    ck_assert_int_ge(n, keep);
    for (int i = keep; i < n; i++) {
        char idx[520];
        idx_path_of(idx, sizeof idx, now[i]);
        (void)unlink(idx);
        ck_assert_int_eq(unlink(now[i]), 0);
    }
}

/* ---- torn tails ------------------------------------------------------------ */

/* Writes a log over several segments, closes it, then for many offsets k
 * inside the last batch of the last segment zeroes [k, batch end), removes
 * that segment's index and reopens: exactly the earlier batches remain. */
static void torn_tail_is_cut(bool prepare) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, 64 * 1024, prepare);
    cfg.compress_threshold_bytes = 1024;
    log_recovery_t rec;
    log_t *log = open_ok(&cfg, &rec);
    uint64_t rng = 42 + prepare;
    g_events = 0;
    append_known(log, &rng, 150 * 1024, 50, 400);
    /* a last batch of 3 events with some compressible data */
    uint64_t before_last = g_events;
    {
        tu_event_t ev[3];
        log_event_in_t in[3];
        for (uint32_t i = 0; i < 3; i++) {
            uint64_t pos = g_events + i;
            g_model[pos] = (pev_t){.stream = 1,
                                   .data_len = 150 + 40 * i,
                                   .compressible = i == 1,
                                   .version = -1 /* not read by stream */};
            ck_assert_int_eq(tu_event_make(&ev[i], 0xda, pos, "Dmg", 0, g_model[pos].data_len,
                                           pos * 7919 + 1, g_model[pos].compressible),
                             0);
            in[i] = tu_event_in(&ev[i]);
        }
        log_append_result_t res;
        ck_assert_int_eq(tu_append(log, "dmg-1", LOG_EXPECT_ANY, in, 3, &res), 0);
        ck_assert_uint_eq(res.first_position, before_last);
        g_events += 3;
        for (uint32_t i = 0; i < 3; i++) tu_event_free(&ev[i]);
    }
    ck_assert_int_eq(log_close(log), 0);

    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_ge(nseg, 2);
    const char *last = g_segs[nseg - 1];
    char idx[520];
    idx_path_of(idx, sizeof idx, last);
    static batch_at_t batches[4096];
    int nb = batches_of(last, batches, 4096);
    ck_assert_int_ge(nb, 2);
    const batch_at_t *lb = &batches[nb - 1];
    ck_assert_uint_eq(lb->h.first_position, before_last);
    ck_assert_uint_eq(lb->h.event_count, 3);

    size_t seg_len;
    uint8_t *pristine = slurp(last, &seg_len);
    uint64_t start = lb->offset;
    uint64_t end = start + sizeof(batch_header_t) + lb->h.stored_bytes;
    uint64_t last_nonzero = start;
    for (uint64_t i = start; i < end; i++)
        if (pristine[i] != 0) last_nonzero = i;
    uint8_t *work = malloc(seg_len);
    ck_assert_ptr_nonnull(work);

    uint32_t tried = 0;
    for (uint64_t k = start; k <= last_nonzero; k++) {
        /* every offset of the header and the first and last bytes of the body; a sample between */
        bool edge = k < start + sizeof(batch_header_t) + 16 || k + 16 > last_nonzero;
        if (!edge && (k - start) % 7 != 0) continue;
        memcpy(work, pristine, seg_len);
        memset(work + k, 0, end - k);
        spill(last, work, seg_len);
        (void)unlink(idx);
        log = open_ok(&cfg, &rec);
        ck_assert_msg(rec.events == before_last,
                      "zeroed from +%" PRIu64 ": %" PRIu64 " events, want %" PRIu64, k - start,
                      rec.events, before_last);
        log_stats_t st;
        log_stats(log, &st);
        ck_assert_uint_eq(st.head_position, before_last);
        if (tried % 16 == 0) {
            expect_all_exactly(log, before_last);
            /* the log goes on from the cut */
            log_append_result_t res;
            ck_assert_int_eq(tu_append_simple(log, "after-1", LOG_EXPECT_NO_STREAM, 1, 2, &res), 0);
            ck_assert_uint_eq(res.first_position, before_last);
            ck_assert_int_eq(log_close(log), 0);
            log = open_ok(&cfg, &rec);
            ck_assert_uint_eq(rec.events, before_last + 2);
            tu_events_t evs = {0};
            ck_assert_int_eq(tu_read_all(log, "after-1", 0, false, 10, NULL, &evs, NULL), 0);
            ck_assert_uint_eq(evs.n, 2);
            ck_assert_uint_eq(evs.v[0].position, before_last);
            tu_events_clear(&evs);
        }
        ck_assert_int_eq(log_close(log), 0);
        remove_segments_after(nseg);
        tried++;
    }
    ck_assert_uint_gt(tried, 64);

    /* and the untouched file keeps everything */
    spill(last, pristine, seg_len);
    (void)unlink(idx);
    log = open_ok(&cfg, &rec);
    ck_assert_uint_eq(rec.events, g_events);
    ck_assert_uint_eq(rec.torn_bytes_cut, 0);
    expect_all_exactly(log, g_events);
    ck_assert_int_eq(log_close(log), 0);
    free(work);
    free(pristine);
}

START_TEST(a_torn_last_batch_is_cut_back_to_the_earlier_batches_with_prepared_segments) {
    torn_tail_is_cut(true);
}
END_TEST

START_TEST(a_torn_last_batch_is_cut_back_to_the_earlier_batches_without_prepared_segments) {
    torn_tail_is_cut(false);
}
END_TEST

START_TEST(a_torn_tail_reports_the_bytes_cut) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, 64 * 1024, true);
    log_recovery_t rec;
    log_t *log = open_ok(&cfg, &rec);
    uint64_t rng = 5;
    g_events = 0;
    append_known(log, &rng, 20 * 1024, 100, 300);
    ck_assert_int_eq(log_close(log), 0);
    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_ge(nseg, 1);
    static batch_at_t batches[4096];
    int nb = batches_of(g_segs[nseg - 1], batches, 4096);
    ck_assert_int_ge(nb, 2);
    const batch_at_t *lb = &batches[nb - 1];
    /* zero the last 8 bytes of the body's meaningful part: header intact, body torn */
    uint64_t end = lb->offset + sizeof(batch_header_t) + lb->h.stored_bytes;
    static const uint8_t zeros[8];
    ck_assert_int_eq(tu_file_write(g_segs[nseg - 1], end - 8, zeros, 8), 0);
    char idx[520];
    idx_path_of(idx, sizeof idx, g_segs[nseg - 1]);
    (void)unlink(idx);
    log = open_ok(&cfg, &rec);
    ck_assert_uint_eq(rec.events, lb->h.first_position);
    ck_assert_uint_gt(rec.torn_bytes_cut, 0);
    ck_assert_uint_gt(rec.bytes_scanned, 0);
    expect_all_exactly(log, lb->h.first_position);
    ck_assert_int_eq(log_close(log), 0);
}
END_TEST

/* ---- corruption in sealed segments ------------------------------------------ */

/* A log of several sealed segments, closed. */
static void write_sealed_log(log_config_t *cfg, uint32_t compress_threshold) {
    tu_config(cfg, g_dir, 64 * 1024, true);
    cfg->compress_threshold_bytes = compress_threshold;
    log_recovery_t rec;
    log_t *log = open_ok(cfg, &rec);
    uint64_t rng = 99;
    g_events = 0;
    append_known(log, &rng, 200 * 1024, 100, 500);
    ck_assert_int_eq(log_close(log), 0);
}

/* Reads event `p` alone, through $all (by position) or through its stream
 * (by version). Returns the read's status; *evs gets what was delivered. */
static int read_one(log_t *log, uint64_t p, bool by_stream, tu_events_t *evs) {
    log_read_result_t res;
    if (!by_stream) return tu_read(log, "$all", p, false, 1, NULL, evs, &res);
    char stream[16];
    snprintf(stream, sizeof stream, "dmg-%u", g_model[p].stream);
    return tu_read(log, stream, (uint64_t)g_model[p].version, false, 1, NULL, evs, &res);
}

/* Reads every position on its own, through $all and through its stream:
 * damaged ones must fail with LOG_ECORRUPT, those in [maybe_first,
 * maybe_end) may fail or be right, every other one must be right. */
static void expect_positions(log_t *log, uint64_t bad_first, uint64_t bad_end, uint64_t maybe_first,
                             uint64_t maybe_end) {
    uint32_t failed = 0;
    for (int by_stream = 1; by_stream >= 0; by_stream--) {
        const char *how = by_stream ? "its stream" : "$all";
        for (uint64_t p = 0; p < g_events; p++) {
            if (by_stream && g_model[p].version < 0) continue;
            tu_events_t evs = {0};
            int rc = read_one(log, p, by_stream, &evs);
            bool bad = p >= bad_first && p < bad_end;
            bool maybe = p >= maybe_first && p < maybe_end;
            if (bad) {
                ck_assert_msg(rc == LOG_ECORRUPT,
                              "damaged position %" PRIu64 " read through %s: %d", p, how, rc);
                failed++;
            } else if (maybe && rc == LOG_ECORRUPT) {
                failed++;
            } else {
                ck_assert_msg(rc == 0,
                              "position %" PRIu64 " (undamaged; damage at [%" PRIu64 ", %" PRIu64
                              ")) read through %s: %d %s, %zu events delivered",
                              p, bad_first, bad_end, how, rc, log_strerror(rc), evs.n);
                ck_assert_uint_eq(evs.n, 1);
                event_expect(p, &evs.v[0]);
            }
            /* whatever was delivered is right and undamaged */
            for (size_t i = 0; i < evs.n; i++) {
                ck_assert(evs.v[i].position < bad_first || evs.v[i].position >= bad_end);
                event_expect(evs.v[i].position, &evs.v[i]);
            }
            tu_events_clear(&evs);
        }
    }
    ck_assert_uint_ge(failed, bad_end - bad_first);
}

/* A whole read that meets damage stops with LOG_ECORRUPT, having delivered
 * only right events, none of them damaged. */
static void expect_read_stops(log_t *log, const char *name, uint64_t bad_first, uint64_t bad_end) {
    tu_events_t evs = {0};
    int rc = tu_read_all(log, name, 0, false, 1000, NULL, &evs, NULL);
    ck_assert_msg(rc == LOG_ECORRUPT, "read %s over damage: %d %s", name, rc, log_strerror(rc));
    for (size_t i = 0; i < evs.n; i++) {
        ck_assert(evs.v[i].position < bad_first || evs.v[i].position >= bad_end);
        event_expect(evs.v[i].position, &evs.v[i]);
    }
    tu_events_clear(&evs);
}

START_TEST(a_flipped_bit_in_a_sealed_batch_header_fails_its_events_only) {
    log_config_t cfg;
    write_sealed_log(&cfg, LOG_COMPRESS_THRESHOLD_BYTES_SUGGESTED);
    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_ge(nseg, 3);
    static batch_at_t batches[4096];
    int nb = batches_of(g_segs[0], batches, 4096);
    ck_assert_int_ge(nb, 8);
    const batch_at_t victim = batches[nb / 2];
    /* a bit of the event_count field */
    ck_assert_int_eq(tu_file_flip(g_segs[0], victim.offset + 8, 1), 0);
    log_recovery_t rec;
    log_t *log = open_ok(&cfg, &rec);
    uint64_t bf = victim.h.first_position, be = bf + victim.h.event_count;
    expect_positions(log, bf, be, bf, be);
    expect_read_stops(log, "$all", bf, be);
    char stream[16];
    snprintf(stream, sizeof stream, "dmg-%u", g_model[bf].stream);
    expect_read_stops(log, stream, bf, be);
    expect_read_stops(log, "$ce-dmg", bf, be);
    ck_assert_int_eq(log_close(log), 0);
}
END_TEST

START_TEST(a_flipped_bit_in_a_sealed_batch_checksum_fails_its_events_only) {
    log_config_t cfg;
    write_sealed_log(&cfg, LOG_COMPRESS_THRESHOLD_BYTES_SUGGESTED);
    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_ge(nseg, 3);
    static batch_at_t batches[4096];
    int nb = batches_of(g_segs[1], batches, 4096);
    ck_assert_int_ge(nb, 8);
    const batch_at_t victim = batches[3];
    ck_assert_int_eq(
        tu_file_flip(g_segs[1], victim.offset + offsetof(batch_header_t, header_checksum) + 3, 6),
        0);
    log_recovery_t rec;
    log_t *log = open_ok(&cfg, &rec);
    uint64_t bf = victim.h.first_position, be = bf + victim.h.event_count;
    expect_positions(log, bf, be, bf, be);
    ck_assert_int_eq(log_close(log), 0);
}
END_TEST

/* The place of event `position`'s data bytes in an uncompressed batch. */
static uint64_t data_offset_of(const char *path, const batch_at_t *b, uint64_t position,
                               uint32_t *data_len) {
    ck_assert_uint_eq(b->h.flags & BATCH_FLAG_LZ4, 0);
    uint64_t rec_off = b->offset + sizeof(batch_header_t);
    for (uint64_t p = b->h.first_position; p < b->h.first_position + b->h.event_count; p++) {
        record_header_t rh;
        ck_assert_int_eq(tu_file_read(path, rec_off, &rh, sizeof rh), 0);
        ck_assert_uint_ge(rh.record_bytes, sizeof rh);
        if (p == position) {
            *data_len = rh.data_len;
            return rec_off + sizeof rh + rh.stream_len + rh.type_len + rh.metadata_len;
        }
        rec_off += align8(rh.record_bytes);
    }
    ck_abort_msg("position %" PRIu64 " is not in the batch", position);
    return 0;
}

START_TEST(a_flipped_bit_in_event_data_fails_that_event_and_never_returns_wrong_data) {
    log_config_t cfg;
    write_sealed_log(&cfg, 0); /* never compress: the data bytes are on disk as written */
    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_ge(nseg, 3);
    static batch_at_t batches[4096];
    int nb = batches_of(g_segs[0], batches, 4096);
    ck_assert_int_ge(nb, 8);
    /* a batch of several events: damage the last one's data */
    int vi = -1;
    for (int i = 2; i < nb && vi < 0; i++)
        if (batches[i].h.event_count >= 2) vi = i;
    ck_assert_int_ge(vi, 0);
    const batch_at_t victim = batches[vi];
    uint64_t pos = victim.h.first_position + victim.h.event_count - 1;
    uint32_t data_len;
    uint64_t off = data_offset_of(g_segs[0], &victim, pos, &data_len);
    ck_assert_uint_eq(data_len, g_model[pos].data_len);
    ck_assert_uint_gt(data_len, 0);
    ck_assert_int_eq(tu_file_flip(g_segs[0], off + data_len / 2, 4), 0);

    log_recovery_t rec;
    log_t *log = open_ok(&cfg, &rec);
    /* the damaged event fails; its batch mates may (the body checksum covers
     * them too) but must never be wrong; every other event reads */
    expect_positions(log, pos, pos + 1, victim.h.first_position,
                     victim.h.first_position + victim.h.event_count);
    char stream[16];
    snprintf(stream, sizeof stream, "dmg-%u", g_model[pos].stream);
    expect_read_stops(log, stream, pos, pos + 1);
    /* backwards reads meet it too */
    tu_events_t evs = {0};
    ck_assert_int_eq(tu_read_all(log, "$all", LOG_READ_END, true, 100, NULL, &evs, NULL),
                     LOG_ECORRUPT);
    for (size_t i = 0; i < evs.n; i++) {
        ck_assert_uint_gt(evs.v[i].position, pos);
        event_expect(evs.v[i].position, &evs.v[i]);
    }
    tu_events_clear(&evs);
    ck_assert_int_eq(log_close(log), 0);
}
END_TEST

START_TEST(a_flipped_bit_in_a_record_header_fails_that_event) {
    log_config_t cfg;
    write_sealed_log(&cfg, 0);
    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_ge(nseg, 3);
    static batch_at_t batches[4096];
    int nb = batches_of(g_segs[1], batches, 4096);
    ck_assert_int_ge(nb, 4);
    const batch_at_t victim = batches[2];
    uint64_t pos = victim.h.first_position;
    /* the version field of the first record */
    uint64_t off = victim.offset + sizeof(batch_header_t) + offsetof(record_header_t, version);
    ck_assert_int_eq(tu_file_flip(g_segs[1], off, 0), 0);
    log_recovery_t rec;
    log_t *log = open_ok(&cfg, &rec);
    expect_positions(log, pos, pos + 1, victim.h.first_position,
                     victim.h.first_position + victim.h.event_count);
    ck_assert_int_eq(log_close(log), 0);
}
END_TEST

/* ---- index files ------------------------------------------------------------ */

START_TEST(a_damaged_index_file_falls_back_to_scanning) {
    log_config_t cfg;
    write_sealed_log(&cfg, LOG_COMPRESS_THRESHOLD_BYTES_SUGGESTED);
    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_ge(nseg, 3);
    char idx[520];
    idx_path_of(idx, sizeof idx, g_segs[0]);
    ck_assert_msg(tu_file_exists(idx), "no index file %s for a sealed segment", idx);
    size_t len;
    uint8_t *pristine = slurp(idx, &len);
    ck_assert_uint_gt(len, sizeof(index_header_t));
    /* header fields, the first entry, the middle, the last byte */
    const uint64_t offsets[] = {0,
                                12,
                                offsetof(index_header_t, end_offset) + 1,
                                offsetof(index_header_t, header_checksum),
                                sizeof(index_header_t) + 3,
                                len / 2,
                                len - 1};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        spill(idx, pristine, len);
        ck_assert_int_eq(tu_file_flip(idx, offsets[i], (unsigned)i % 8), 0);
        log_recovery_t rec;
        log_t *log = open_ok(&cfg, &rec);
        ck_assert_msg(rec.events == g_events, "index flipped at %" PRIu64 ": %" PRIu64 " events",
                      offsets[i], rec.events);
        ck_assert_uint_lt(rec.index_files_loaded, rec.segments);
        ck_assert_uint_gt(rec.bytes_scanned, 0);
        expect_all_exactly(log, g_events);
        for (uint32_t s = 0; s < 5; s++) {
            char stream[16];
            snprintf(stream, sizeof stream, "dmg-%u", s);
            tu_events_t evs = {0};
            ck_assert_int_eq(tu_read_all(log, stream, 0, false, 100, NULL, &evs, NULL), 0);
            for (size_t k = 0; k < evs.n; k++) {
                ck_assert_int_eq(evs.v[k].version, (int64_t)k);
                event_expect(evs.v[k].position, &evs.v[k]);
            }
            tu_events_clear(&evs);
        }
        ck_assert_int_eq(log_close(log), 0);
    }
    free(pristine);
}
END_TEST

START_TEST(a_missing_index_file_falls_back_to_scanning) {
    log_config_t cfg;
    write_sealed_log(&cfg, LOG_COMPRESS_THRESHOLD_BYTES_SUGGESTED);
    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_ge(nseg, 3);
    for (int i = 0; i < nseg; i++) {
        char idx[520];
        idx_path_of(idx, sizeof idx, g_segs[i]);
        (void)unlink(idx);
    }
    log_recovery_t rec;
    log_t *log = open_ok(&cfg, &rec);
    ck_assert_uint_eq(rec.events, g_events);
    ck_assert_uint_eq(rec.index_files_loaded, 0);
    expect_all_exactly(log, g_events);
    ck_assert_int_eq(log_close(log), 0);
    /* the indices are written again: start-up does not scan the log again */
    log = open_ok(&cfg, &rec);
    ck_assert_uint_eq(rec.events, g_events);
    ck_assert_uint_gt(rec.index_files_loaded, 0);
    ck_assert_msg(rec.bytes_scanned < cfg.segment_bytes,
                  "the second open scanned %" PRIu64 " bytes: indices were not rewritten",
                  rec.bytes_scanned);
    expect_all_exactly(log, g_events);
    ck_assert_int_eq(log_close(log), 0);
}
END_TEST

/* ---- damage in the unindexed tail ---------------------------------------------- */

START_TEST(damage_followed_by_valid_batches_beyond_one_write_is_corruption_not_a_torn_tail) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, 2 * 1024 * 1024, false);
    cfg.write_bytes_max = 64 * 1024;
    cfg.compress_threshold_bytes = 0;
    log_recovery_t rec;
    log_t *log = open_ok(&cfg, &rec);
    uint64_t rng = 7;
    g_events = 0;
    append_known(log, &rng, 600 * 1024, 200, 1800);
    ck_assert_int_eq(log_close(log), 0);

    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_eq(nseg, 1);
    const char *seg = g_segs[0];
    char idx[520];
    idx_path_of(idx, sizeof idx, seg);
    (void)unlink(idx); /* the whole segment is now an unindexed tail */
    static batch_at_t batches[8192];
    int nb = batches_of(seg, batches, 8192);
    ck_assert_int_ge(nb, 20);
    /* a batch about 100 KiB in, with > 8 write_bytes_max of batches after it */
    int vi = 0;
    while (vi < nb && batches[vi].offset < 100 * 1024) vi++;
    ck_assert_int_lt(vi, nb);
    const batch_at_t victim = batches[vi];
    const batch_at_t *lastb = &batches[nb - 1];
    ck_assert_uint_gt(lastb->offset - victim.offset, 8 * cfg.write_bytes_max);
    uint64_t flip_at = victim.offset + sizeof(batch_header_t) + victim.h.stored_bytes / 2;
    ck_assert_int_eq(tu_file_flip(seg, flip_at, 3), 0);

    log_t *bad = NULL;
    memset(&rec, 0, sizeof rec);
    int rc = log_open(&cfg, &bad, &rec);
    ck_assert_msg(rc == LOG_ECORRUPT, "log_open over mid-tail damage: %d %s (%s)", rc,
                  log_strerror(rc), rec.problem);
    ck_assert_ptr_null(bad);
    /* the problem names the segment and the offset of the damage */
    const char *base = strrchr(seg, '/') + 1;
    char seg_num[32];
    snprintf(seg_num, sizeof seg_num, "%.20s", base);
    ck_assert_msg(strstr(rec.problem, seg_num) != NULL, "problem \"%s\" does not name segment %s",
                  rec.problem, seg_num);
    char dec[32], hex[32], flip_dec[32], flip_hex[32];
    snprintf(dec, sizeof dec, "%" PRIu64, victim.offset);
    snprintf(hex, sizeof hex, "%" PRIx64, victim.offset);
    snprintf(flip_dec, sizeof flip_dec, "%" PRIu64, flip_at);
    snprintf(flip_hex, sizeof flip_hex, "%" PRIx64, flip_at);
    ck_assert_msg(strstr(rec.problem, dec) || strstr(rec.problem, hex) ||
                      strstr(rec.problem, flip_dec) || strstr(rec.problem, flip_hex),
                  "problem \"%s\" does not name offset %s (or the damaged byte %s)", rec.problem,
                  dec, flip_dec);

    /* a failed open destroys nothing: undo the flip and everything is back */
    ck_assert_int_eq(tu_file_flip(seg, flip_at, 3), 0);
    log = open_ok(&cfg, &rec);
    ck_assert_uint_eq(rec.events, g_events);
    ck_assert_uint_eq(rec.torn_bytes_cut, 0);
    expect_all_exactly(log, g_events);
    ck_assert_int_eq(log_close(log), 0);
}
END_TEST

START_TEST(a_damaged_segment_header_fails_the_open_naming_the_segment) {
    log_config_t cfg;
    write_sealed_log(&cfg, LOG_COMPRESS_THRESHOLD_BYTES_SUGGESTED);
    int nseg = tu_segments(g_dir, g_segs, SEG_CAP);
    ck_assert_int_ge(nseg, 3);
    /* the first_position field of the second segment */
    ck_assert_int_eq(tu_file_flip(g_segs[1], offsetof(segment_header_t, first_position) + 2, 5), 0);
    log_t *log = NULL;
    log_recovery_t rec;
    memset(&rec, 0, sizeof rec);
    int rc = log_open(&cfg, &log, &rec);
    ck_assert_msg(rc == LOG_ECORRUPT || rc == LOG_EFORMAT,
                  "open with a damaged segment header: %d %s", rc, log_strerror(rc));
    const char *base = strrchr(g_segs[1], '/') + 1;
    char seg_num[32];
    snprintf(seg_num, sizeof seg_num, "%.20s", base);
    ck_assert_msg(strstr(rec.problem, seg_num) != NULL, "problem \"%s\" does not name %s",
                  rec.problem, seg_num);
}
END_TEST

static Suite *damage_suite(void) {
    Suite *s = suite_create("log_damage");
    TCase *torn = tcase_create("torn_tail");
    tcase_add_checked_fixture(torn, dir_setup, dir_teardown);
    tcase_set_timeout(torn, 120);
    tcase_add_test(torn,
                   a_torn_last_batch_is_cut_back_to_the_earlier_batches_with_prepared_segments);
    tcase_add_test(torn,
                   a_torn_last_batch_is_cut_back_to_the_earlier_batches_without_prepared_segments);
    tcase_add_test(torn, a_torn_tail_reports_the_bytes_cut);
    suite_add_tcase(s, torn);

    TCase *corrupt = tcase_create("corruption");
    tcase_add_checked_fixture(corrupt, dir_setup, dir_teardown);
    tcase_set_timeout(corrupt, 120);
    tcase_add_test(corrupt, a_flipped_bit_in_a_sealed_batch_header_fails_its_events_only);
    tcase_add_test(corrupt, a_flipped_bit_in_a_sealed_batch_checksum_fails_its_events_only);
    tcase_add_test(corrupt,
                   a_flipped_bit_in_event_data_fails_that_event_and_never_returns_wrong_data);
    tcase_add_test(corrupt, a_flipped_bit_in_a_record_header_fails_that_event);
    tcase_add_test(corrupt, a_damaged_segment_header_fails_the_open_naming_the_segment);
    tcase_add_test(corrupt,
                   damage_followed_by_valid_batches_beyond_one_write_is_corruption_not_a_torn_tail);
    suite_add_tcase(s, corrupt);

    TCase *index = tcase_create("index");
    tcase_add_checked_fixture(index, dir_setup, dir_teardown);
    tcase_set_timeout(index, 120);
    tcase_add_test(index, a_damaged_index_file_falls_back_to_scanning);
    tcase_add_test(index, a_missing_index_file_falls_back_to_scanning);
    suite_add_tcase(s, index);
    return s;
}

int main(void) {
    if (tu_root_make("damage") == NULL) {
        perror("tu_root_make");
        return 2;
    }
    SRunner *sr = srunner_create(damage_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_root_remove();
    return failed == 0 ? 0 : 1;
}
